//! `rawkvm run --step`: one line per instruction of `hello`, with the bytes and the registers
//! that changed, and the exits met on the way between them (as `--trace` prints them).
// The debugger is x86-64 only.
#![cfg(target_arch = "x86_64")]

mod common;

use common::process::run;
use common::{assert_fails, backend, kvm_present};

/// stderr's lines, each without the `run_ns=` that depends on the clock.
fn untimed_lines(stderr: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(stderr)
        .lines()
        .map(|line| {
            line.split_once(" run_ns=")
                .map_or(line, |(head, _)| head)
                .to_string()
        })
        .collect()
}

/// `hello`'s first bytes, stepped (asm-guests/hello.S).
const FIRST_STEPS: [&str; 12] = [
    "0000:1000  be 1e 10                    rsi 0x0 -> 0x101e",
    "0000:1003  8a 1c                       rbx 0x0 -> 0x48",
    "0000:1005  84 db                       rflags 0x2 -> 0x6",
    "0000:1007  74 11",
    "0000:1009  ba fd 03                    rdx 0x0 -> 0x3fd",
    "#1 vcpu0 KVM_EXIT_IO(2) direction=in size=1 port=0x3fd count=1 data_offset=0x1000 data=60 \"`\"",
    "0000:100c  ec                          rax 0x0 -> 0x60",
    "0000:100d  a8 20                       rflags 0x6 -> 0x2",
    "0000:100f  74 fb",
    "0000:1011  88 d8                       rax 0x60 -> 0x48",
    "0000:1013  ba f8 03                    rdx 0x3fd -> 0x3f8",
    "#2 vcpu0 KVM_EXIT_IO(2) direction=out size=1 port=0x3f8 count=1 data_offset=0x1000 data=48 \"H\"",
];

#[test]
fn stepping_hello_prints_each_instruction_with_what_it_changed() {
    if !kvm_present("stepping_hello_prints_each_instruction_with_what_it_changed") {
        return;
    }
    let output = run(&["run", "hello", "--step"]);
    let lines = untimed_lines(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{lines:#?}");
    assert_eq!(output.stdout, b"Hello from real mode!\n");
    assert_eq!(lines[..12], FIRST_STEPS, "{lines:#?}");
    // `out dx,al` then `inc si`. On kvm_pvm the step trap of an OUT that exits to user space
    // is lost and `inc si` runs in the same step (measured); elsewhere each has its line.
    let out_step: &[&str] = if backend() == "kvm_pvm" {
        &["0000:1016  ee 46                       rsi 0x101e -> 0x101f"]
    } else {
        &[
            "0000:1016  ee",
            "0000:1017  46                          rsi 0x101e -> 0x101f",
        ]
    };
    println!("{}: the OUT step is {out_step:?}", backend());
    assert_eq!(lines[12..12 + out_step.len()], *out_step, "{lines:#?}");
    // `jmp next_byte` goes backwards: its length is unknown, so a window of 8 bytes and `..`.
    assert_eq!(
        lines[12 + out_step.len()],
        "0000:1018  eb e9 fa f4 eb fc 48 65 .."
    );
    // The end: the NUL ends the loop (`je done`, taken), `cli`, and `hlt`, run undebugged
    // so that the guest halts (its exit comes before its line, as every exit does).
    let end = &lines[lines.len() - 4..];
    assert_eq!(
        end,
        [
            "0000:1007  74 11 ba fd 03 ec a8 20 ..",
            "0000:101a  fa",
            "#45 vcpu0 KVM_EXIT_HLT(5)",
            "0000:101b  f4",
        ],
        "{lines:#?}"
    );
    // Every byte came through the trace as one IO exit each: 22 reads and 22 writes.
    let exits = lines
        .iter()
        .filter(|l| l.contains("KVM_EXIT_IO(2)"))
        .count();
    assert_eq!(exits, 44);
    assert!(
        !lines.iter().any(|l| l.contains("KVM_EXIT_DEBUG")),
        "the steps' own exits are the step lines"
    );
}

#[test]
fn json_steps_and_the_step_limit() {
    if !kvm_present("json_steps_and_the_step_limit") {
        return;
    }
    let output = run(&["run", "hello", "--step=json", "--step-limit", "6"]);
    assert_eq!(output.status.code(), Some(0));
    let text = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8, "6 steps, 1 exit, the note: {text}");
    assert_eq!(
        lines[0],
        "{\"step\":1,\"cs\":0,\"rip\":4096,\"pc\":4096,\"bytes\":\"be1e10\",\"sequential\":true,\
         \"changed\":{\"rsi\":[0,4126]}}"
    );
    assert_eq!(
        lines[3],
        "{\"step\":4,\"cs\":0,\"rip\":4103,\"pc\":4103,\"bytes\":\"7411\",\"sequential\":true,\
         \"changed\":{}}"
    );
    let exit = common::json::parse(lines[5]).expect("the exit is a JSON trace object");
    assert_eq!(
        exit.get("reason").and_then(|r| r.as_str()),
        Some("KVM_EXIT_IO")
    );
    assert_eq!(exit.get("port").and_then(|p| p.as_u64()), Some(0x3FD));
    for line in &lines[..7] {
        common::json::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
    }
    assert_eq!(lines[7], "rawkvm: --step-limit reached after 6 steps");
    assert!(output.stdout.is_empty(), "stopped before the first byte");
}

#[test]
fn step_flags_that_cannot_work_are_refused() {
    let output = run(&["run", "hello", "--step-limit", "3"]);
    assert_fails(&output, 2, "--step-limit N needs --step");
    let output = run(&["run", "hello", "--step", "--repeat", "2"]);
    assert_fails(&output, 2, "--step cannot be combined with --repeat");
    let output = run(&["run", "hello", "--step=yaml"]);
    assert_fails(&output, 2, "--step=yaml: the formats are text and json");
    let output = run(&["run", "hello", "--step", "--step-limit", "x"]);
    assert_fails(&output, 2, "--step-limit x");
}

#[test]
fn stepping_a_long_mode_guest_prints_linear_addresses() {
    if !kvm_present("stepping_a_long_mode_guest_prints_linear_addresses") {
        return;
    }
    let output = run(&["run", "long_hello", "--step", "--step-limit", "9"]);
    assert_eq!(output.status.code(), Some(0));
    let lines = untimed_lines(&output.stderr);
    assert_eq!(
        lines,
        [
            "0x1000  48 8d 35 09 00 00 00        rsi 0x0 -> 0x1010",
            "0x1007  e8 1b 00 00 00 fa f4 eb ..  rsp 0x100000 -> 0xffff8",
            "0x1027  50                          rsp 0xffff8 -> 0xffff0",
            "0x1028  56                          rsp 0xffff0 -> 0xfffe8",
            "0x1029  57                          rsp 0xfffe8 -> 0xfffe0",
            "0x102a  bf 00 00 00 d0              rdi 0x0 -> 0xd0000000",
            "0x102f  8a 06                       rax 0x0 -> 0x48",
            "0x1031  84 c0                       rflags 0x2 -> 0x6",
            "0x1033  74 07",
            "rawkvm: --step-limit reached after 9 steps",
        ]
    );
}

#[test]
fn stepping_user_mode_fails_clearly_where_cpl3_does_not_trap() {
    if !kvm_present("stepping_user_mode_fails_clearly_where_cpl3_does_not_trap") {
        return;
    }
    let output = run(&["run", "user_hello", "--step"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{}: {stderr}", backend());
    if backend() == "kvm_pvm" {
        // At CPL 3 the single-step #DB goes into the guest (measured): rawkvm's exception
        // stub takes it and ends the run, naming it, instead of the step never coming back.
        assert_eq!(output.status.code(), Some(6), "{stderr}");
        assert!(
            stderr.contains("CPU exception #DB (debug, vector 1) at CPL 3"),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
    } else {
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        assert_eq!(output.stdout, b"Hello from user mode!\n");
    }
}
