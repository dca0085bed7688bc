//! The behaviour that is the same on every architecture, checked by one source on x86-64,
//! arm64 and riscv64: `hello`'s console text and exact exits, how a run ends, tracing and
//! statistics, deadlines (status 7), signals (128 + N), several vCPUs, bad input. On x86 this
//! runs with the rest of `cargo test`; `.ci/emulated-kvm` cross-builds it and runs it on real
//! KVM inside QEMU for arm64 and riscv64. What each architecture's guests do differently (the
//! UART, the last exit, the instruction pointer's name) is in `tests/common/arch.rs`; the
//! exits only arm64 and riscv64 have (`KVM_EXIT_SYSTEM_EVENT` of every type, the SBI console)
//! are at the end.

mod common;

use std::process::Stdio;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use common::arch::{HELLO_TEXT, NORMAL_END, SPIN_IP, hello_exits};
use common::process::{run, send_signal, spawn, wait_for_thread, wait_output};
use common::{Recorder, assert_fails, guest_machine, kvm_or_skip, kvm_present, machine, status};
use nix::sys::signal::Signal;
use rawkvm::devices::Devices;
use rawkvm::error::IP_NAME;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::run_loop::{NoObserver, Outcome};

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn hello_prints_its_text_with_the_exact_exits() {
    let Some(kvm) = kvm_or_skip("hello_prints_its_text_with_the_exact_exits") else {
        return;
    };
    let mut machine = machine(&kvm, "hello");
    let mut devices = Devices::new(Vec::new());
    let mut recorder = Recorder::default();
    let outcome = machine.run(&mut devices, &mut recorder).unwrap();
    assert_eq!(outcome, NORMAL_END);
    assert_eq!(recorder.exits, hello_exits());
    assert_eq!(devices.console.into_sink().unwrap(), HELLO_TEXT);
}

#[test]
fn the_cli_runs_hello_by_default() {
    if !kvm_present("the_cli_runs_hello_by_default") {
        return;
    }
    let output = run(&["run"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(output.stdout, HELLO_TEXT);
    assert_eq!(stderr_of(&output), "");
}

#[test]
fn trace_shows_every_exit_and_how_the_run_ended() {
    if !kvm_present("trace_shows_every_exit_and_how_the_run_ended") {
        return;
    }
    let output = run(&["run", "hello", "--trace"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(output.stdout, HELLO_TEXT);
    let stderr = stderr_of(&output);
    let lines: Vec<&str> = stderr.lines().collect();
    let exits = hello_exits().len();
    assert_eq!(lines.len(), exits, "{stderr}");
    for (seq, line) in (1..).zip(&lines) {
        assert!(line.starts_with(&format!("#{seq} vcpu0 ")), "{line}");
    }
    let last = lines[exits - 1];
    let expected_end = if cfg!(target_arch = "x86_64") {
        "KVM_EXIT_HLT(5) run_ns="
    } else {
        "KVM_EXIT_SYSTEM_EVENT(24) type=1(KVM_SYSTEM_EVENT_SHUTDOWN) ndata=1 data=[0x0] run_ns="
    };
    assert!(
        last.starts_with(&format!("#{exits} vcpu0 {expected_end}")),
        "{last}"
    );
}

#[test]
fn stats_count_every_exit() {
    if !kvm_present("stats_count_every_exit") {
        return;
    }
    let output = run(&["run", "hello", "--stats"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let stderr = stderr_of(&output);
    let exits = hello_exits().len();
    assert!(
        stderr.starts_with(&format!("rawkvm stats, vCPU 0: {exits} exits\n")),
        "{stderr}"
    );
    let reason = if cfg!(target_arch = "x86_64") {
        "KVM_EXIT_IO(2)"
    } else {
        "KVM_EXIT_MMIO(6)"
    };
    let row = stderr
        .lines()
        .find(|line| line.trim_start().starts_with(reason))
        .unwrap_or_else(|| panic!("no {reason} row: {stderr}"));
    let count: usize = row.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert_eq!(count, exits - 1, "{row}");
}

#[test]
fn a_deadline_stops_a_spinning_guest_with_status_7() {
    if !kvm_present("a_deadline_stops_a_spinning_guest_with_status_7") {
        return;
    }
    let output = run(&["run", "spin", "--timeout", "300ms"]);
    assert_fails(
        &output,
        status::TIMEOUT,
        &format!(
            "rawkvm: error: guest did not halt within 300 ms (vCPU 0 stopped at {IP_NAME} \
             {SPIN_IP:#x})"
        ),
    );
    assert_eq!(output.stdout, b"");
}

#[test]
fn a_deadline_stops_every_vcpu() {
    if !kvm_present("a_deadline_stops_every_vcpu") {
        return;
    }
    let output = run(&["run", "spin", "--vcpus", "2", "--timeout", "300ms"]);
    assert_fails(
        &output,
        status::TIMEOUT,
        &format!(
            "(vCPU 0 stopped at {IP_NAME} {SPIN_IP:#x}, vCPU 1 stopped at {IP_NAME} {SPIN_IP:#x})"
        ),
    );
}

#[test]
fn sigterm_stops_a_spinning_guest_with_status_143() {
    if !kvm_present("sigterm_stops_a_spinning_guest_with_status_143") {
        return;
    }
    let child = spawn(&["run", "spin"], Stdio::piped());
    wait_for_thread(child.id(), "vcpu0");
    send_signal(child.id(), Signal::SIGTERM);
    let output = wait_output(child);
    assert_fails(
        &output,
        128 + libc::SIGTERM,
        &format!("rawkvm: error: stopped by SIGTERM (vCPU 0 stopped at {IP_NAME} {SPIN_IP:#x})"),
    );
}

#[test]
fn a_stop_from_another_thread_leaves_the_vcpu_at_its_loop() {
    let Some(kvm) = kvm_or_skip("a_stop_from_another_thread_leaves_the_vcpu_at_its_loop") else {
        return;
    };
    let mut machine = machine(&kvm, "spin");
    let stop = machine.vcpus_mut()[0].stop_handle();
    let stopper = thread::spawn(move || {
        thread::sleep(Duration::from_millis(100));
        stop.stop();
    });
    let mut devices = Devices::new(Vec::new());
    let outcome = machine.run(&mut devices, &mut NoObserver).unwrap();
    stopper.join().unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    let vcpu = &machine.vcpus_mut()[0];
    assert_eq!(rawkvm::arch::instruction_pointer(vcpu).unwrap(), SPIN_IP);
}

#[test]
fn every_vcpu_runs_and_the_run_ends_normally() {
    let Some(kvm) = kvm_or_skip("every_vcpu_runs_and_the_run_ends_normally") else {
        return;
    };
    // Two vCPUs spinning, stopped by a deadline: both are reported where they loop.
    let mut spinning = guest_machine(&kvm, "spin", |config| config.vcpus = 2).unwrap();
    let devices = Mutex::new(Devices::new(Vec::new()));
    let error = spinning
        .run_all(
            &devices,
            &NoObserver,
            Some(Duration::from_millis(200)),
            &RunControl::new(),
        )
        .unwrap_err();
    match error {
        rawkvm::Error::Timeout { stopped, .. } => {
            let at: Vec<_> = stopped
                .iter()
                .map(|vcpu| (vcpu.id, vcpu.instruction_pointer))
                .collect();
            assert_eq!(at, [(0, Some(SPIN_IP)), (1, Some(SPIN_IP))]);
        }
        other => panic!("{other:?}"),
    }
    // hello on one vCPU through the supervisor ends as a plain run does.
    let mut machine = machine(&kvm, "hello");
    let devices = Mutex::new(Devices::new(Vec::new()));
    machine
        .run_all(&devices, &NoObserver, None, &RunControl::new())
        .unwrap();
    let console = devices.into_inner().unwrap().console.into_sink().unwrap();
    assert_eq!(console, HELLO_TEXT);
}

#[test]
fn bad_input_is_refused_with_its_status_and_what_to_do() {
    if !kvm_present("bad_input_is_refused_with_its_status_and_what_to_do") {
        return;
    }
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &["run", "no_such_guest"],
            status::USAGE,
            "no embedded guest \"no_such_guest\"; `rawkvm list` shows them",
        ),
        (
            &["run", "--mem", "0"],
            status::USAGE,
            "RAM size 0: guest RAM must be at least one page",
        ),
        (
            &["run", "--vcpus", "0"],
            status::USAGE,
            "the number of vCPUs must be at least 1",
        ),
        (
            &["run", "--image", "/nonexistent"],
            status::IMAGE,
            "cannot read guest image /nonexistent: ENOENT",
        ),
        (
            &["run", "--kvm-device", "/dev/null"],
            status::KVM_UNAVAILABLE,
            "/dev/null is not a KVM device: KVM_GET_API_VERSION failed with ENOTTY",
        ),
    ];
    for (args, expected, needle) in cases {
        let output = run(args);
        assert_fails(&output, expected, needle);
        assert_eq!(stdout_of(&output), "", "{args:?}");
    }
}

/// The guests of arm64 and riscv64 end by powering off; these exits exist only there.
#[cfg(not(target_arch = "x86_64"))]
mod power_and_firmware {
    use super::*;
    use common::Seen;
    use common::arch::{normal_end_exit, power_off};

    fn mmio(addr: u64, is_write: bool, data: &[u8]) -> Seen {
        Seen::Mmio {
            addr,
            is_write,
            data: data.to_vec(),
        }
    }

    #[test]
    fn mmio_widths_reads_the_open_bus_and_writes_it_back() {
        let Some(kvm) = kvm_or_skip("mmio_widths_reads_the_open_bus_and_writes_it_back") else {
            return;
        };
        let mut machine = machine(&kvm, "mmio_widths");
        let mut devices = Devices::new(Vec::new());
        let mut recorder = Recorder::default();
        let outcome = machine.run(&mut devices, &mut recorder).unwrap();
        assert_eq!(outcome, Outcome::Finished(0));
        let ones = [0xFF; 8];
        assert_eq!(
            recorder.exits,
            [
                mmio(0x10_0000, false, &ones[..1]),
                mmio(0x10_0010, false, &ones[..2]),
                mmio(0x10_0020, false, &ones[..4]),
                mmio(0x10_0030, false, &ones),
                mmio(0x10_0040, true, &ones),
                mmio(0x10_0050, true, &ones[..4]),
                mmio(0x10_0060, true, &ones[..2]),
                mmio(0x10_0070, true, &ones[..1]),
                mmio(0x10_0080, true, &0xFFEE_DDCC_BBAA_9988u64.to_le_bytes()),
                power_off(),
            ]
        );
    }

    #[test]
    fn shutdown_powers_the_machine_off_with_status_0() {
        let Some(kvm) = kvm_or_skip("shutdown_powers_the_machine_off_with_status_0") else {
            return;
        };
        let mut machine = machine(&kvm, "shutdown");
        let mut recorder = Recorder::default();
        let outcome = machine
            .run(&mut Devices::new(Vec::new()), &mut recorder)
            .unwrap();
        assert_eq!(outcome, Outcome::Finished(0));
        assert_eq!(recorder.exits, [normal_end_exit()]);
        let output = run(&["run", "shutdown"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        assert_eq!(stderr_of(&output), "");
    }

    #[test]
    fn a_reset_request_is_a_guest_fault_with_status_6() {
        let Some(kvm) = kvm_or_skip("a_reset_request_is_a_guest_fault_with_status_6") else {
            return;
        };
        let mut machine = common::machine_with_param(&kvm, "shutdown", 1);
        let mut recorder = Recorder::default();
        let error = machine
            .run(&mut Devices::new(Vec::new()), &mut recorder)
            .unwrap_err();
        let reset = Seen::SystemEvent {
            event_type: rawkvm::bindings::KVM_SYSTEM_EVENT_RESET,
            data: vec![0],
        };
        assert_eq!(recorder.exits, [reset]);
        assert!(
            matches!(
                &error,
                rawkvm::Error::GuestFault {
                    vcpu: 0,
                    fault: rawkvm::error::GuestFault::SystemEvent { event_type: 2, data },
                } if data == &[0]
            ),
            "{error:?}"
        );
        let output = run(&["run", "shutdown", "--param", "1"]);
        assert_fails(
            &output,
            status::GUEST_FAULT,
            "rawkvm: error: vCPU 0: system event (KVM_EXIT_SYSTEM_EVENT) type 2 \
             (KVM_SYSTEM_EVENT_RESET), data [0]",
        );
    }

    #[test]
    fn explain_names_the_system_event_fields_and_offsets() {
        if !kvm_present("explain_names_the_system_event_fields_and_offsets") {
            return;
        }
        let output = run(&["run", "shutdown", "--explain"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        assert_eq!(
            stderr_of(&output).lines().skip(1).collect::<Vec<_>>(),
            [
                "    read  exit_reason @ +8 (4), system_event.type @ +32 (4), \
                 system_event.ndata @ +36 (4), system_event.data @ +40 (8)",
                "    The guest asked for a system event: KVM_SYSTEM_EVENT_SHUTDOWN.",
            ]
        );
    }

    #[test]
    fn powering_off_ends_every_vcpu() {
        if !kvm_present("powering_off_ends_every_vcpu") {
            return;
        }
        // Both vCPUs print; the first to power off ends the run for both (a vCPU left running
        // would hit the deadline: status 7), so the console holds one whole greeting and at
        // most one more, however far the other vCPU got.
        let output = run(&["run", "hello", "--vcpus", "2", "--timeout", "60s"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        assert_eq!(stderr_of(&output), "");
        let text = HELLO_TEXT.len();
        assert!(
            (text..=2 * text).contains(&output.stdout.len()),
            "{:?}",
            stdout_of(&output)
        );
    }

    #[cfg(target_arch = "riscv64")]
    #[test]
    fn the_sbi_console_is_answered_through_the_exit() {
        let Some(kvm) = kvm_or_skip("the_sbi_console_is_answered_through_the_exit") else {
            return;
        };
        let mut machine = machine(&kvm, "sbi_console");
        let mut devices = Devices::new(Vec::new());
        let mut recorder = Recorder::default();
        let outcome = machine.run(&mut devices, &mut recorder).unwrap();
        assert_eq!(outcome, Outcome::Finished(0));
        let console = rawkvm::devices::RAWKVM_SBI_CONSOLE;
        let mut expected: Vec<Seen> = b"SBI!\n"
            .iter()
            .map(|&byte| Seen::Sbi {
                extension_id: console,
                function_id: 0,
                a0: u64::from(byte),
                ret: [0, 0],
            })
            .collect();
        expected.push(Seen::Sbi {
            extension_id: console,
            function_id: 1,
            a0: 0,
            ret: [rawkvm::devices::bus::SBI_ERR_NOT_SUPPORTED as u64, 0],
        });
        expected.push(power_off());
        assert_eq!(recorder.exits, expected);
        assert_eq!(devices.console.into_sink().unwrap(), b"SBI!\n");
    }

    #[cfg(target_arch = "riscv64")]
    #[test]
    fn caps_shows_the_isa_extension_registers() {
        if !kvm_present("caps_shows_the_isa_extension_registers") {
            return;
        }
        let output = run(&["caps"]);
        assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
        let text = stdout_of(&output);
        let has = text
            .lines()
            .find_map(|line| line.strip_prefix("  has:   "))
            .unwrap_or_else(|| panic!("no 'has:' line: {text}"));
        let has: Vec<&str> = has.split_whitespace().collect();
        // Every RISC-V Linux machine has the base ISA and M, A, C; KVM reports them as 1.
        for base in ["i", "m", "a", "c"] {
            assert!(has.contains(&base), "{base} missing from {has:?}");
        }
        let json = stdout_of(&run(&["caps", "--json"]));
        assert!(
            json.contains(r#"{"index":5,"name":"I","value":1}"#),
            "{json}"
        );
        assert!(json.trim_end().ends_with("]}"), "{json}");
    }
}
