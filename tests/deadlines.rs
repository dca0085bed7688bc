//! Deadlines, signals and a closed stdout (`docs/TEST-PLAN.md` §8 B 14, E 32): every way a run can
//! be cut short ends with every vCPU stopped, the console flushed, a message and a documented
//! status. Timing is never asserted beyond a generous watchdog.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use std::io::Read;
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use common::kvm_or_skip;
use common::process::{run, send_signal, spawn, wait, wait_for_thread, wait_output};
use common::status;
use nix::sys::signal::Signal;
use rawkvm::devices::Devices;
use rawkvm::error::{Error, ErrorKind, StoppedVcpu};
use rawkvm::machine::supervisor::{RunControl, StopCause};
use rawkvm::run_loop::NoObserver;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The instruction pointers listed in "vCPU N stopped at RIP 0x...", by vCPU.
fn stopped_at(stderr: &str) -> Vec<(u32, u64)> {
    stderr
        .split("vCPU ")
        .skip(1)
        .filter_map(|part| {
            let (id, rest) = part.split_once(" stopped at RIP 0x")?;
            let hex: String = rest.chars().take_while(char::is_ascii_hexdigit).collect();
            Some((id.parse().ok()?, u64::from_str_radix(&hex, 16).ok()?))
        })
        .collect()
}

#[test]
fn a_guest_that_never_exits_is_stopped_at_the_deadline_with_status_7() {
    if !common::kvm_present("deadline spin") {
        return;
    }
    let output = run(&["run", "spin", "--timeout", "200ms"]);
    assert_eq!(output.status.code(), Some(status::TIMEOUT), "{output:?}");
    assert_eq!(
        stderr_of(&output),
        "rawkvm: error: guest did not halt within 200 ms (vCPU 0 stopped at RIP 0x1000)\n"
    );
    assert!(output.stdout.is_empty());
}

#[test]
fn a_guest_that_exits_constantly_is_stopped_at_the_deadline_with_status_7() {
    if !common::kvm_present("deadline spin_out") {
        return;
    }
    let output = run(&["run", "spin_out", "--timeout", "300ms"]);
    assert_eq!(output.status.code(), Some(status::TIMEOUT), "{output:?}");
    let stderr = stderr_of(&output);
    assert!(
        stderr.starts_with(
            "rawkvm: error: guest did not halt within 300 ms (vCPU 0 stopped at RIP 0x"
        ),
        "{stderr}"
    );
    let stopped = stopped_at(&stderr);
    assert_eq!(stopped.len(), 1, "{stderr}");
    // spin_out's loop is the image's first 16 bytes.
    assert!((0x1000..0x1010).contains(&stopped[0].1), "{stderr}");
    assert!(
        common::SPIN_OUT_INSTRUCTIONS.contains(&stopped[0].1),
        "{stderr}"
    );
}

#[test]
fn every_vcpu_is_stopped_at_the_deadline_and_listed() {
    if !common::kvm_present("deadline vcpus") {
        return;
    }
    let output = run(&["run", "spin", "--vcpus", "4", "--timeout", "200ms"]);
    assert_eq!(output.status.code(), Some(status::TIMEOUT), "{output:?}");
    assert_eq!(
        stderr_of(&output),
        "rawkvm: error: guest did not halt within 200 ms (vCPU 0 stopped at RIP 0x1000, vCPU 1 \
         stopped at RIP 0x1000, vCPU 2 stopped at RIP 0x1000, vCPU 3 stopped at RIP 0x1000)\n"
    );
}

#[test]
fn a_halting_guest_beats_its_deadline() {
    if !common::kvm_present("deadline hello") {
        return;
    }
    let output = run(&["run", "hello", "--timeout", "1m"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(output.stdout, b"Hello from real mode!\n");
}

#[test]
fn the_library_reports_a_timeout_with_every_stopped_vcpu() {
    let Some(kvm) = kvm_or_skip("the_library_reports_a_timeout") else {
        return;
    };
    let mut machine = common::guest_machine(&kvm, "spin", |config| config.vcpus = 2).unwrap();
    let devices = Mutex::new(Devices::new(Vec::new()));
    let timeout = Duration::from_millis(100);
    let error = machine
        .run_all(&devices, &NoObserver, Some(timeout), &RunControl::new())
        .unwrap_err();
    let at = |id| StoppedVcpu {
        id,
        instruction_pointer: Some(0x1000),
    };
    match &error {
        Error::Timeout {
            timeout: t,
            stopped,
        } => {
            assert_eq!(*t, timeout);
            assert_eq!(stopped.as_slice(), [at(0), at(1)]);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error.kind(), ErrorKind::Timeout);
}

#[test]
fn a_stop_requested_before_the_run_runs_no_guest_code() {
    let Some(kvm) = kvm_or_skip("a_stop_requested_before_the_run") else {
        return;
    };
    let mut machine = common::guest_machine(&kvm, "console_loop", |config| {
        config.param = Some(1000);
        config.vcpus = 3;
    })
    .unwrap();
    let devices = Mutex::new(Devices::new(Vec::new()));
    let control = RunControl::new();
    control.request_stop(StopCause::Signal(libc::SIGTERM));
    let error = machine
        .run_all(&devices, &NoObserver, None, &control)
        .unwrap_err();
    match &error {
        Error::Interrupted { signal, stopped } => {
            assert_eq!(*signal, libc::SIGTERM);
            assert_eq!(stopped.len(), 3);
            assert!(
                stopped
                    .iter()
                    .all(|v| v.instruction_pointer == Some(0x1000)),
                "{stopped:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error.kind(), ErrorKind::Interrupted(libc::SIGTERM));
    let output = devices.into_inner().unwrap().console.into_sink().unwrap();
    assert!(output.is_empty(), "no guest byte was printed");
}

/// Starts `rawkvm run ARGS`, waits until its vCPU 0 thread exists (so the stop signals are
/// blocked and the run has begun) and then `delay`, sends `signal`, and checks the status and
/// message.
fn stop_after(signal: Signal, args: &[&str], delay: Duration) -> (std::process::Output, String) {
    let mut run_args = vec!["run"];
    run_args.extend_from_slice(args);
    let child = spawn(&run_args, Stdio::piped());
    wait_for_thread(child.id(), "vcpu0");
    std::thread::sleep(delay);
    send_signal(child.id(), signal);
    let output = wait_output(child);
    let stderr = stderr_of(&output);
    assert_eq!(
        output.status.code(),
        Some(128 + signal as i32),
        "{signal}: {stderr}"
    );
    assert!(
        stderr.starts_with(&format!(
            "rawkvm: error: stopped by {} (vCPU 0 stopped at RIP 0x",
            signal.as_str()
        )),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (output, stderr)
}

/// [`stop_after`] with no delay.
fn stop_with(signal: Signal, args: &[&str]) -> (std::process::Output, String) {
    stop_after(signal, args, Duration::ZERO)
}

#[test]
fn sigint_sigterm_and_sighup_stop_a_spinning_guest_cleanly() {
    if !common::kvm_present("signals") {
        return;
    }
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        let (_, stderr) = stop_with(signal, &["spin"]);
        assert_eq!(stopped_at(&stderr), [(0, 0x1000)], "{stderr}");
    }
    let (_, stderr) = stop_with(Signal::SIGTERM, &["spin_out", "--vcpus", "3"]);
    let stopped = stopped_at(&stderr);
    assert_eq!(
        stopped.iter().map(|&(id, _)| id).collect::<Vec<_>>(),
        [0, 1, 2],
        "{stderr}"
    );
    assert!(
        stopped
            .iter()
            .all(|(_, rip)| common::SPIN_OUT_INSTRUCTIONS.contains(rip)),
        "{stderr}"
    );
}

/// A guest that writes [`FLUSH_BYTES`] console bytes with one `rep outsb`, none of them a
/// newline, then spins in `jmp $` at [`FLUSH_SPIN`]: every byte stays in rawkvm's console
/// buffer (4 KiB, written out at a newline or when full) until the run ends.
fn unflushed_writer() -> Vec<u8> {
    let data = 0x1000 + 14;
    let mut code = vec![0xBE, data as u8, (data >> 8) as u8]; // mov si, data
    code.extend_from_slice(&[0xB9, FLUSH_BYTES as u8, (FLUSH_BYTES >> 8) as u8]); // mov cx, N
    code.extend_from_slice(&[0xBA, 0xE9, 0x00]); // mov dx, 0xe9
    code.extend_from_slice(&[0xFC, 0xF3, 0x6E]); // cld; rep outsb
    code.extend_from_slice(&[0xEB, 0xFE]); // jmp $ (at FLUSH_SPIN)
    assert_eq!(code.len(), 14);
    code.extend(flush_data());
    code
}

/// How many bytes [`unflushed_writer`] writes: fewer than the console buffer holds.
const FLUSH_BYTES: usize = 1000;
const _: () = assert!(FLUSH_BYTES < rawkvm::devices::console::BUFFER_SIZE);
/// Where [`unflushed_writer`] spins once it has written them all.
const FLUSH_SPIN: u64 = 0x100C;

/// The bytes [`unflushed_writer`] writes: `A..Z` over and over, no newline.
fn flush_data() -> Vec<u8> {
    (b'A'..=b'Z').cycle().take(FLUSH_BYTES).collect()
}

#[test]
fn a_signal_flushes_the_console_byte_exact() {
    if !common::kvm_present("signal flush") {
        return;
    }
    let dir = common::ScratchDir::new("flush");
    let image = dir.join("unflushed.bin");
    std::fs::write(&image, unflushed_writer()).unwrap();
    let image = image.to_str().unwrap();
    // Coalesced (the ring is drained when the stop interrupts KVM_RUN) and one exit per byte.
    for extra in [&[][..], &["--no-coalesce"]] {
        let mut args = vec!["--image", image];
        args.extend_from_slice(extra);
        // Once the guest spins, all its bytes were written and none was flushed: only the
        // final flush of a stopped run can put them on stdout. A signal that comes before
        // the spin (a very slow host) is tried again, later.
        let mut delay = Duration::from_millis(50);
        loop {
            let (output, stderr) = stop_after(Signal::SIGINT, &args, delay);
            if stopped_at(&stderr) == [(0, FLUSH_SPIN)] {
                assert_eq!(
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&flush_data()),
                    "{extra:?}: {stderr}"
                );
                break;
            }
            assert!(
                flush_data().starts_with(&output.stdout),
                "{extra:?}: not a prefix of the data: {stderr}"
            );
            assert!(
                delay < common::process::WATCHDOG,
                "the guest never reached its spin"
            );
            delay *= 2;
        }
    }
}

#[test]
fn a_closed_stdout_ends_the_run_with_status_141() {
    if !common::kvm_present("closed stdout") {
        return;
    }
    // `rawkvm run console_loop --param 100000000 | head -c1`
    let mut child = spawn(
        &["run", "console_loop", "--param", "100000000"],
        Stdio::piped(),
    );
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(first, *b"0");
    drop(stdout);
    let status = wait(&mut child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(status::BROKEN_PIPE), "{stderr}");
    assert_eq!(
        stderr,
        "rawkvm: error: the guest's console output was closed by its reader: EPIPE (Broken \
         pipe); the guest was stopped\n"
    );
}

#[test]
fn a_stalled_reader_does_not_block_a_signal_stop() {
    if !common::kvm_present("stalled reader") {
        return;
    }
    // Nobody reads stdout: the pipe fills and the console's write waits. SIGTERM must still
    // stop the run (the waiting writer gives up once the run is stopping).
    let child = spawn(
        &["run", "console_loop", "--param", "100000000"],
        Stdio::piped(),
    );
    let pid = child.id();
    wait_for_thread(pid, "vcpu0");
    std::thread::sleep(Duration::from_millis(300)); // let the pipe fill (not required)
    send_signal(pid, Signal::SIGTERM);
    let mut child = child;
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(128 + libc::SIGTERM));
}

#[test]
fn sixty_four_spinning_vcpus_all_stop_at_the_deadline() {
    if !common::kvm_present("deadline 64 vcpus") {
        return;
    }
    let output = run(&["run", "spin", "--vcpus", "64", "--timeout", "200ms"]);
    assert_eq!(output.status.code(), Some(status::TIMEOUT), "{output:?}");
    let stderr = stderr_of(&output);
    let listed: Vec<(u32, u64)> = (0..8).map(|id| (id, 0x1000)).collect();
    assert_eq!(stopped_at(&stderr), listed, "{stderr}");
    assert!(stderr.ends_with(", and 56 more)\n"), "{stderr}");
}
