//! `rawkvm run --trace/--explain/--stats`, the flight recorder, `rawkvm abi` and `rawkvm caps`
//! as a user runs them: exact lines, exit statuses, and JSON that real parsers accept.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::json::{self, Json};
use common::process::run;
use common::{ScratchDir, assert_fails, backend, field};

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("UTF-8 output")
}

/// The trace lines of `run hello`, without the `run_ns=` timing at the end of each.
fn untimed(line: &str) -> &str {
    line.rsplit_once(" run_ns=").map_or(line, |(head, _)| head)
}

#[test]
fn trace_text_names_every_field_of_every_exit() {
    if !common::kvm_present("trace_text_names_every_field_of_every_exit") {
        return;
    }
    let output = run(&["run", "hello", "--trace"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        output.stdout, b"Hello from real mode!\n",
        "the console is untouched"
    );
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().map(untimed).collect();
    assert_eq!(lines.len(), 45, "{stderr}");
    assert_eq!(
        lines[0],
        "#1 vcpu0 KVM_EXIT_IO(2) direction=in size=1 port=0x3fd count=1 data_offset=0x1000 \
         data=60 \"`\""
    );
    assert_eq!(
        lines[1],
        "#2 vcpu0 KVM_EXIT_IO(2) direction=out size=1 port=0x3f8 count=1 data_offset=0x1000 \
         data=48 \"H\""
    );
    assert_eq!(lines[44], "#45 vcpu0 KVM_EXIT_HLT(5)");
    for line in stderr.lines() {
        let (_, ns) = line
            .rsplit_once(" run_ns=")
            .expect("every line has its KVM_RUN time");
        ns.parse::<u64>().expect("run_ns is a number");
    }
}

#[test]
fn an_unclaimed_in_is_marked_and_shows_the_filler() {
    if !common::kvm_present("an_unclaimed_in_is_marked_and_shows_the_filler") {
        return;
    }
    let output = run(&["run", "in_unhandled", "--trace"]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().map(untimed).collect();
    assert_eq!(
        lines[1],
        "#2 vcpu0 KVM_EXIT_IO(2) direction=in size=1 port=0x1234 count=1 data_offset=0x1000 \
         data=ff unclaimed"
    );
}

#[test]
fn trace_json_parses_and_carries_the_fields_the_issue_names() {
    if !common::kvm_present("trace_json_parses_and_carries_the_fields_the_issue_names") {
        return;
    }
    for guest in ["hello", "mmio_widths", "msr", "irq_window", "insb"] {
        let output = run(&["run", guest, "--trace=json", "--explain"]);
        assert_eq!(output.status.code(), Some(0), "{guest}");
        let stderr = text(&output.stderr);
        let objects = json::parse_lines(&stderr);
        // --explain opens with the CPU mode and the registers rawkvm set (tests/cpu_modes_cli.rs).
        let (mode, objects) = objects.split_first().unwrap();
        assert_eq!(
            mode.get("mode").and_then(Json::as_str),
            Some("real"),
            "{guest}"
        );
        for (i, object) in objects.iter().enumerate() {
            assert_eq!(object.get("seq").and_then(Json::as_u64), Some(i as u64 + 1));
            assert_eq!(object.get("vcpu").and_then(Json::as_u64), Some(0));
            assert!(object.get("run_ns").and_then(Json::as_u64).is_some());
            assert!(object.get("read").and_then(Json::as_array).is_some());
            assert!(object.get("explain").and_then(Json::as_str).is_some());
        }
        let first = &objects[0];
        let nr = first.get("nr").and_then(Json::as_u64).unwrap();
        let reason = first.get("reason").and_then(Json::as_str).unwrap();
        assert_eq!(rawkvm::bindings::exit_reason_name(nr as u32), Some(reason));
        let keys: &[&str] = match reason {
            "KVM_EXIT_IO" => &["direction", "port", "size", "count", "data"],
            "KVM_EXIT_MMIO" => &["gpa", "len", "is_write", "data"],
            "KVM_EXIT_X86_RDMSR" => &["index", "reason", "data", "error"],
            "KVM_EXIT_IRQ_WINDOW_OPEN" => &["ready_for_interrupt_injection", "if_flag"],
            other => panic!("{guest}: first exit {other}"),
        };
        for key in keys {
            assert!(
                first.get(key).is_some(),
                "{guest}: {key} missing in {first:?}"
            );
        }
    }
    let output = run(&["run", "hello", "--trace=json"]);
    let objects = json::parse_lines(&text(&output.stderr));
    let first = &objects[0];
    assert_eq!(first.get("direction").and_then(Json::as_str), Some("in"));
    assert_eq!(first.get("port").and_then(Json::as_u64), Some(0x3FD));
    assert_eq!(first.get("data").and_then(Json::as_str), Some("60"));
    assert_eq!(first.get("claimed"), Some(&Json::Bool(true)));
}

#[test]
fn explain_gives_each_field_read_with_its_offset_and_a_sentence() {
    if !common::kvm_present("explain_gives_each_field_read_with_its_offset_and_a_sentence") {
        return;
    }
    let output = run(&["run", "hello", "--explain"]);
    assert_eq!(output.status.code(), Some(0));
    let stderr = text(&output.stderr);
    // The explanation opens with the CPU mode (tests/cpu_modes_cli.rs), then the exits.
    assert!(stderr.starts_with("mode real: "), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .skip_while(|line| !line.starts_with("#1 "))
        .collect();
    assert_eq!(
        lines[1],
        "    read  exit_reason @ +8 (4), io.direction @ +32 (1), io.size @ +33 (1), \
         io.port @ +34 (2), io.count @ +36 (4), io.data_offset @ +40 (8), data @ +4096 (1)"
    );
    assert_eq!(lines[2], "    wrote data @ +4096 (1)");
    assert_eq!(
        lines[3],
        "    The guest read 1 byte from port 0x3fd (COM1 line status); rawkvm answered 60."
    );
    assert!(
        stderr.contains("The guest wrote 1 byte to port 0x3f8 (COM1 data); the device took it.")
    );
    let mmio = text(&run(&["run", "mmio_widths", "--explain"]).stderr);
    assert!(mmio.contains("mmio.phys_addr @ +32 (8), mmio.len @ +48 (4), mmio.is_write @ +52 (1), mmio.data @ +40 (1)"), "{mmio}");
}

#[test]
fn trace_file_takes_the_trace_and_stats_count_exits_per_reason() {
    if !common::kvm_present("trace_file_takes_the_trace_and_stats_count_exits_per_reason") {
        return;
    }
    let dir = ScratchDir::new("trace-file");
    let path = dir.join("trace.txt");
    let output = run(&[
        "run",
        "hello",
        "--stats",
        "--trace-file",
        path.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0));
    let trace = std::fs::read_to_string(&path).unwrap();
    assert_eq!(trace.lines().count(), 45);
    let stats = text(&output.stderr);
    println!("{stats}");
    let row = |name: &str| {
        stats
            .lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no {name} row in {stats}"))
            .split_whitespace()
            .nth(1)
            .unwrap()
            .to_string()
    };
    assert_eq!(row("KVM_EXIT_IO(2)"), "44");
    assert_eq!(row("KVM_EXIT_HLT(5)"), "1");
    assert!(stats.contains("rawkvm stats, vCPU 0: 45 exits"), "{stats}");
    assert!(
        stats.contains("top ports: 0x3f8 out 22, 0x3fd in 22"),
        "{stats}"
    );
    let has_binary_stats = rawkvm::Kvm::open()
        .unwrap()
        .check_extension(rawkvm::bindings::KVM_CAP_BINARY_STATS_FD)
        > 0;
    if has_binary_stats {
        assert!(stats.contains("KVM_GET_STATS_FD"), "{stats}");
        let exits = stats
            .lines()
            .find(|l| l.trim_start().starts_with("exits "))
            .expect("the kernel's exits counter beside ours");
        let numbers: Vec<&str> = exits.split_whitespace().collect();
        assert_eq!(numbers[2], "45", "rawkvm's column: {exits}");
        println!("{}: kernel vs rawkvm: {exits}", backend());
    } else {
        common::skip(format_args!(
            "kernel counters: KVM_CAP_BINARY_STATS_FD absent"
        ));
    }
}

#[test]
fn a_fault_prints_the_flight_recorder_then_the_error() {
    if !common::kvm_present("a_fault_prints_the_flight_recorder_then_the_error") {
        return;
    }
    let output = run(&["run", "triple_fault"]);
    assert_fails(&output, 6, "guest triple-faulted (KVM_EXIT_SHUTDOWN)");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        "rawkvm: flight recorder: the last 1 of 1 exits before the fault:"
    );
    assert!(
        lines[1].starts_with("  #1 vcpu0 KVM_EXIT_SHUTDOWN(8) run_ns="),
        "{stderr}"
    );
    assert!(lines[2].starts_with("rawkvm: error: vCPU 0: guest triple-faulted"));

    // 40 console bytes, then a far jump into unbacked memory: only the last 32 are kept.
    let dir = ScratchDir::new("recorder");
    let image = dir.join("forty.bin");
    let mut code: Vec<u8> = Vec::new();
    for _ in 0..40 {
        code.extend_from_slice(&[0xB0, b'x', 0xE6, 0xE9]); // mov al, 'x'; out 0xe9, al
    }
    code.extend_from_slice(&[0xEA, 0x10, 0x00, 0xFF, 0xFF]); // jmp 0xffff:0x0010
    std::fs::write(&image, &code).unwrap();
    // Coalesced (the default), the 40 writes never exit: the recorder holds only the fault,
    // yet the ring was drained first, so every byte is out.
    let coalesced = run(&["run", "--image", image.to_str().unwrap()]);
    assert_fails(&coalesced, 6, "KVM_INTERNAL_ERROR_EMULATION (suberror 1)");
    assert_eq!(coalesced.stdout, vec![b'x'; 40]);
    let first = text(&coalesced.stderr)
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let kvm = rawkvm::Kvm::open().unwrap();
    if rawkvm::devices::coalesced::Support::of(&kvm.create_vm().unwrap()).pio {
        assert_eq!(
            first,
            "rawkvm: flight recorder: the last 1 of 1 exits before the fault:"
        );
    } else {
        // A kernel without KVM_CAP_COALESCED_PIO exits on every write instead.
        assert_eq!(
            first,
            "rawkvm: flight recorder: the last 32 of 41 exits before the fault:"
        );
        common::skip(format_args!(
            "the flight recorder of a coalesced run: this kernel cannot coalesce port writes"
        ));
    }
    // One exit per write: the recorder keeps the last 32 of them.
    let output = run(&["run", "--no-coalesce", "--image", image.to_str().unwrap()]);
    assert_fails(&output, 6, "KVM_INTERNAL_ERROR_EMULATION (suberror 1)");
    assert_eq!(output.stdout, vec![b'x'; 40]);
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0],
        "rawkvm: flight recorder: the last 32 of 41 exits before the fault:"
    );
    assert!(lines[1].starts_with("  #10 vcpu0 KVM_EXIT_IO(2) direction=out size=1 port=0xe9"));
    assert!(lines[32].starts_with(
        "  #41 vcpu0 KVM_EXIT_INTERNAL_ERROR(17) suberror=1(KVM_INTERNAL_ERROR_EMULATION)"
    ));
}

#[test]
fn trace_flags_are_checked() {
    assert_fails(
        &run(&["run", "--trace=xml"]),
        2,
        "--trace=xml: the formats are text, json and chrome PATH",
    );
    assert_fails(&run(&["run", "--stats=yes"]), 2, "--stats takes no value");
    assert_fails(
        &run(&["run", "--trace-file"]),
        2,
        "--trace-file needs a value",
    );
    assert_fails(
        &run(&["run", "--trace-file", "/nonexistent/dir/trace"]),
        2,
        "--trace-file /nonexistent/dir/trace: cannot create it",
    );
    assert_fails(
        &run(&["bench", "start", "--trace"]),
        2,
        "apply to bench pio and mmio",
    );
}

#[test]
fn bench_reports_the_trace_overhead_as_a_ratio() {
    if !common::kvm_present("bench_reports_the_trace_overhead_as_a_ratio") {
        return;
    }
    let dir = ScratchDir::new("bench-trace");
    let trace = dir.join("trace.txt");
    let output = run(&[
        "bench",
        "pio",
        "--count",
        "200",
        "--trace-file",
        trace.to_str().unwrap(),
    ]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    for (line, label) in lines.iter().zip(["pio", "pio+trace"]) {
        assert_eq!(line.split_whitespace().next(), Some(label), "{stdout}");
        assert_eq!(field(line, "exits"), Some("201"), "{line}");
        assert_eq!(field(line, "variant"), Some("plain"), "{line}");
        assert_eq!(field(line, "best_of"), Some("15"), "{line}");
    }
    // What tracing costs is the benchmark's to measure, not this test's to bound (a timed
    // bound flakes on a loaded host). What must hold on any host: both ratios are positive
    // numbers, and the ratio of the best runs is the ratio of the two lines' times, which
    // are those best runs (both made the same number of exits).
    let number = |line: &str, key: &str| -> f64 {
        field(line, key)
            .unwrap_or_else(|| panic!("no {key} in {line}"))
            .parse()
            .unwrap_or_else(|e| panic!("{key} in {line}: {e}"))
    };
    for key in ["ratio", "ratio_of_best"] {
        let ratio = number(lines[1], key);
        assert!(ratio.is_finite() && ratio > 0.0, "{key}={ratio}: {stdout}");
    }
    let of_times = number(lines[1], "total_ns") / number(lines[0], "total_ns");
    let printed = number(lines[1], "ratio_of_best");
    assert!(
        (printed - of_times).abs() <= 0.5e-4 + 1e-9,
        "ratio_of_best={printed}, but the times give {of_times:.6}: {stdout}"
    );
    // Every traced run went to the one file: 15 runs of 201 exits, numbered per run.
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert_eq!(trace.lines().count(), 15 * 201);
    assert_eq!(
        trace
            .lines()
            .filter(|l| l.starts_with("#201 vcpu0 KVM_EXIT_HLT(5)"))
            .count(),
        15
    );
}

#[test]
fn bench_stats_print_the_last_traced_runs_table() {
    if !common::kvm_present("bench_stats_print_the_last_traced_runs_table") {
        return;
    }
    let output = run(&["bench", "mmio", "--count", "100", "--stats"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("rawkvm stats, vCPU 0: 101 exits\n"),
        "{stderr}"
    );
    let mmio = stderr
        .lines()
        .find(|l| l.trim_start().starts_with("KVM_EXIT_MMIO(6)"))
        .unwrap_or_else(|| panic!("no MMIO row: {stderr}"));
    assert_eq!(mmio.split_whitespace().nth(1), Some("100"), "{stderr}");
    assert_eq!(text(&output.stdout).lines().count(), 2);
}

#[test]
fn repeated_runs_are_watched_by_one_observer() {
    if !common::kvm_present("repeated_runs_are_watched_by_one_observer") {
        return;
    }
    // mutate: 9 console bytes and a HLT per run, numbered on across the three runs.
    let output = run(&["run", "mutate", "--repeat", "3", "--trace", "--stats"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "00000001\n".repeat(3));
    let stderr = text(&output.stderr);
    let hlts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with('#') && l.contains(" KVM_EXIT_HLT(5) "))
        .map(untimed)
        .collect();
    assert_eq!(
        hlts,
        [
            "#10 vcpu0 KVM_EXIT_HLT(5)",
            "#20 vcpu0 KVM_EXIT_HLT(5)",
            "#30 vcpu0 KVM_EXIT_HLT(5)"
        ],
        "{stderr}"
    );
    assert!(
        stderr.contains("rawkvm stats, vCPU 0: 30 exits"),
        "{stderr}"
    );

    // A fault in the first run: the flight recorder, then the error.
    let output = run(&["run", "triple_fault", "--repeat", "2"]);
    assert_fails(&output, 6, "guest triple-faulted (KVM_EXIT_SHUTDOWN)");
    assert!(
        text(&output.stderr)
            .starts_with("rawkvm: flight recorder: the last 1 of 1 exits before the fault:\n"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn abi_prints_layouts_pahole_style_and_json_that_parses() {
    let output = run(&["abi", "kvm_run"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("struct kvm_run {"), "{stdout}");
    let port = stdout.lines().find(|l| l.contains(" io.port;")).unwrap();
    assert!(port.trim_start().starts_with("__u16 io.port;"), "{port}");
    assert!(port.ends_with("/*    34     2 */"), "{port}");
    assert!(
        !stdout.contains("KVM_RUN "),
        "a struct filter prints no ioctls"
    );

    let output = run(&["abi", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let all = json::parse(&text(&output.stdout)).unwrap();
    json::python_parses(&text(&output.stdout));
    let structs = all.get("structs").and_then(Json::as_array).unwrap();
    let kvm_run_struct = &structs[0];
    assert_eq!(
        kvm_run_struct.get("name").and_then(Json::as_str),
        Some("kvm_run")
    );
    assert_eq!(
        kvm_run_struct.get("size").and_then(Json::as_u64),
        Some(2352)
    );
    assert_eq!(kvm_run_struct.get("align").and_then(Json::as_u64), Some(8));
    let fields = kvm_run_struct
        .get("fields")
        .and_then(Json::as_array)
        .unwrap();
    let io_port = fields
        .iter()
        .find(|f| f.get("name").and_then(Json::as_str) == Some("io.port"))
        .unwrap();
    assert_eq!(io_port.get("offset").and_then(Json::as_u64), Some(34));
    assert_eq!(io_port.get("size").and_then(Json::as_u64), Some(2));
    let ioctls = all.get("ioctls").and_then(Json::as_array).unwrap();
    let kvm_run = ioctls
        .iter()
        .find(|i| i.get("name").and_then(Json::as_str) == Some("KVM_RUN"))
        .unwrap();
    assert_eq!(kvm_run.get("level").and_then(Json::as_str), Some("vcpu"));
    assert_eq!(kvm_run.get("nr").and_then(Json::as_u64), Some(0x80));
    assert_eq!(
        structs.len(),
        rawkvm::bindings::arch_abi(rawkvm::bindings::HOST_ARCH)
            .unwrap()
            .structs
            .len()
    );

    let output = run(&["abi", "KVM_RUN"]);
    let stdout = text(&output.stdout);
    assert!(stdout.contains("KVM_RUN"), "{stdout}");
    assert!(!stdout.contains("struct "), "{stdout}");
    // Its table row: name, fd level, direction, size, nr, request, capability.
    let row = stdout
        .lines()
        .find(|l| l.starts_with("KVM_RUN "))
        .unwrap_or_else(|| panic!("no KVM_RUN row: {stdout}"));
    assert_eq!(
        row.split_whitespace().collect::<Vec<_>>(),
        ["KVM_RUN", "vcpu", "_IO", "0", "0x80", "0xae80", "-"],
        "{stdout}"
    );
}

#[test]
fn abi_refuses_unknown_architectures_and_names() {
    let known: Vec<&str> = rawkvm::bindings::ARCHES.iter().map(|a| a.name).collect();
    assert_fails(
        &run(&["abi", "--arch", "vax"]),
        2,
        &format!("unknown architecture \"vax\"; known: {}", known.join(", ")),
    );
    assert_fails(
        &run(&["abi", "kvm_nothing"]),
        2,
        "no struct or ioctl \"kvm_nothing\"",
    );
    for arch in known {
        let output = run(&["abi", "--arch", arch, "--json"]);
        assert_eq!(output.status.code(), Some(0), "{arch}");
        let value = json::parse(&text(&output.stdout)).unwrap();
        assert_eq!(value.get("arch").and_then(Json::as_str), Some(arch));
    }
}

#[test]
fn caps_lists_every_capability_with_the_kernels_answer() {
    if !common::kvm_present("caps_lists_every_capability_with_the_kernels_answer") {
        return;
    }
    let output = run(&["caps"]);
    assert_eq!(output.status.code(), Some(0));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("KVM API version   12"), "{stdout}");
    assert!(
        stdout.contains(&format!("backend module    {}", backend())),
        "{stdout}"
    );
    let kvm = rawkvm::Kvm::open().unwrap();
    let mmap = format!("vCPU mmap size    {} bytes", kvm.vcpu_mmap_size());
    assert!(stdout.contains(&mmap), "{stdout}");

    let output = run(&["caps", "--json"]);
    let caps = json::parse(&text(&output.stdout)).unwrap();
    json::python_parses(&text(&output.stdout));
    assert_eq!(caps.get("api_version").and_then(Json::as_u64), Some(12));
    let list = caps.get("capabilities").and_then(Json::as_array).unwrap();
    assert_eq!(list.len(), rawkvm::bindings::CAPABILITIES.len());
    for cap in list {
        let nr = cap.get("nr").and_then(Json::as_u64).unwrap() as u32;
        let value = cap.get("value").unwrap();
        let expected = kvm.check_extension(nr);
        assert_eq!(value, &Json::Number(expected.to_string()), "{cap:?}");
    }
    let user_memory = list
        .iter()
        .find(|c| c.get("name").and_then(Json::as_str) == Some("KVM_CAP_USER_MEMORY"))
        .unwrap();
    assert_eq!(user_memory.get("value").and_then(Json::as_u64), Some(1));
}

#[test]
fn the_test_json_parser_is_strict() {
    assert!(json::parse(r#"{"a":[1,-2,3.5e-1,"x\u0041\n"],"b":null,"c":true}"#).is_ok());
    for bad in [
        "{",
        "[1,]",
        "01",
        "\"\u{1}\"",
        "{\"a\":1,\"a\":2}",
        "1 2",
        "\"\\x\"",
    ] {
        assert!(json::parse(bad).is_err(), "{bad:?} accepted");
    }
}
