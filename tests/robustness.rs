//! Hostile input (issue 18): what a careless or hostile user can hand `rawkvm run`, each case
//! with the status and message it must end with. Every test here failed (hung, ran on, or
//! destroyed a file) before its fix; none asserts a time, only statuses, messages and bytes,
//! under the generous watchdog of `common::process`.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Instant;

use common::process::{WATCHDOG, send_signal, spawn, wait, wait_for_thread, wait_output};
use common::{Recorder, ScratchDir, Seen, assert_fails, kvm_or_skip, status};
use nix::sys::signal::Signal;
use rawkvm::bindings::KVM_EXIT_IRQ_WINDOW_OPEN;
use rawkvm::devices::{DEBUG_CONSOLE_PORT, Devices};
use rawkvm::machine::guests;
use rawkvm::machine::restart::{RegisterReset, RestartScope};
use rawkvm::machine::supervisor::RunControl;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `rawkvm args` to the end, stdout piped, under the watchdog.
fn rawkvm(args: &[&str]) -> std::process::Output {
    common::process::run(args)
}

/// A scratch copy of the embedded guest `name` as a flat image file.
fn image_file(dir: &ScratchDir, name: &str) -> (std::path::PathBuf, &'static [u8]) {
    let bytes = guests::find(name).unwrap().image;
    let path = dir.join(&format!("{name}.bin"));
    std::fs::write(&path, bytes).unwrap();
    (path, bytes)
}

// 1. A restarted run gets the interrupt a fresh VM gets.

/// `irq_window` on a fresh VM: the window opens, the handler prints "irq 20\n", HLT.
fn fresh_irq_window_exits() -> Vec<Seen> {
    let mut exits = vec![Seen::Other(KVM_EXIT_IRQ_WINDOW_OPEN)];
    exits.extend(
        b"irq 20\n"
            .iter()
            .map(|&b| Seen::out(DEBUG_CONSOLE_PORT, b)),
    );
    exits.push(Seen::Hlt);
    exits
}

#[test]
fn every_restarted_run_of_irq_window_is_injected_its_interrupt() {
    let Some(kvm) = kvm_or_skip("restarted interrupt") else {
        return;
    };
    for reset in [RegisterReset::SyncRegs, RegisterReset::Ioctls] {
        let mut machine = common::restartable_machine(&kvm, "irq_window");
        let mut point = machine
            .restart_point(&kvm, RestartScope::Full, reset)
            .unwrap();
        for run in 0..3 {
            if run > 0 {
                machine.restart(&mut point).unwrap();
            }
            // Under the watchdog: a run that never gets its interrupt spins for ever.
            let devices = Mutex::new(Devices::new(Vec::new()));
            let recorder = Mutex::new(Recorder::default());
            let outcome = machine.run_all(&devices, &recorder, Some(WATCHDOG), &RunControl::new());
            assert!(outcome.is_ok(), "{reset:?} run {run}: {outcome:?}");
            assert_eq!(
                recorder.into_inner().unwrap().exits,
                fresh_irq_window_exits(),
                "{reset:?} run {run}"
            );
            let console = devices.into_inner().unwrap().console.into_sink().unwrap();
            assert_eq!(console, b"irq 20\n", "{reset:?} run {run}");
        }
    }
    // The reproducer: printed "irq 20" once, then timed out (status 7).
    let output = rawkvm(&["run", "irq_window", "--repeat", "3", "--timeout", "30s"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(output.stdout, b"irq 20\nirq 20\nirq 20\n");
}

// 2. A FIFO as the trace file.

#[test]
fn a_fifo_nobody_reads_is_refused_at_once_and_one_with_a_reader_gets_the_trace() {
    let dir = ScratchDir::new("trace-fifo");
    let fifo = dir.join("f");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let fifo_arg = fifo.to_str().unwrap();
    // The reproducer: blocked in open(2) for ever, before --timeout applied.
    let output = rawkvm(&["run", "hello", "--timeout", "1s", "--trace-file", fifo_arg]);
    assert_fails(&output, status::USAGE, "");
    assert_eq!(
        stderr_of(&output),
        format!(
            "rawkvm: error: --trace-file {fifo_arg}: is a FIFO that no process has open for \
             reading; opening it would block until one does: start its reader first\n(see \
             rawkvm --help)\n"
        )
    );
    if kvm_or_skip("trace to a FIFO with a reader").is_none() {
        return;
    }
    // With a reader the FIFO is a pipe like any other: the trace arrives whole.
    let mut reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let output = rawkvm(&["run", "hello", "--trace-file", fifo_arg]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    assert_eq!(output.stdout, b"Hello from real mode!\n");
    let mut trace = String::new();
    reader.read_to_string(&mut trace).unwrap();
    let lines: Vec<&str> = trace.lines().collect();
    assert!(lines[0].starts_with("#1 vcpu0 KVM_EXIT_IO(2) "), "{trace}");
    let last = lines.last().unwrap();
    assert!(
        last.starts_with(&format!("#{} vcpu0 KVM_EXIT_HLT(5) ", lines.len())),
        "{trace}"
    );
}

// 3. A trace sink that fails stops the guest at once.

#[test]
fn a_trace_whose_reader_went_away_stops_the_guest_with_status_141() {
    if !common::kvm_present("trace EPIPE") {
        return;
    }
    // `rawkvm run spin_out --trace 2>&1 | head -c1`: ran on until a signal. The deadline is
    // only there so that the broken behaviour ends (with 7) instead of hanging the test.
    let mut child = Command::new(env!("CARGO_BIN_EXE_rawkvm"))
        .args(["run", "spin_out", "--trace", "--timeout", "30s"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(status::BROKEN_PIPE), "{status:?}");
}

#[test]
fn a_trace_file_on_a_full_disk_stops_the_guest_with_status_5() {
    if !common::kvm_present("trace ENOSPC") {
        return;
    }
    if !Path::new("/dev/full").exists() {
        common::skip(format_args!("/dev/full unavailable (trace ENOSPC)"));
        return;
    }
    let output = rawkvm(&[
        "run",
        "spin_out",
        "--trace-file",
        "/dev/full",
        "--timeout",
        "30s",
    ]);
    assert_fails(&output, status::SETUP, "");
    assert_eq!(
        stderr_of(&output),
        "rawkvm: error: cannot write to the trace file /dev/full: ENOSPC (No space left on \
         device); check that it has room and is writable\n"
    );
}

// 4. The trace must never overwrite the image, nor truncate what is not a regular file.

#[test]
fn the_image_itself_is_refused_as_trace_file_by_any_name() {
    let dir = ScratchDir::new("trace-image");
    let (image, bytes) = image_file(&dir, "hello");
    let link = dir.join("hard-link.bin");
    std::fs::hard_link(&image, &link).unwrap();
    let symlink = dir.join("symlink.bin");
    std::os::unix::fs::symlink(&image, &symlink).unwrap();
    let image_arg = image.to_str().unwrap();
    for trace in [&image, &link, &symlink] {
        let trace_arg = trace.to_str().unwrap();
        let output = rawkvm(&["run", "--image", image_arg, "--trace-file", trace_arg]);
        assert_fails(&output, status::USAGE, "");
        assert_eq!(
            stderr_of(&output),
            format!(
                "rawkvm: error: --trace-file {trace_arg}: is the guest image (--image \
                 {image_arg}); the trace would overwrite it: give another path\n(see rawkvm \
                 --help)\n"
            )
        );
        assert_eq!(std::fs::read(&image).unwrap(), bytes, "the image is intact");
    }
}

#[test]
fn only_a_regular_file_is_truncated_and_a_directory_is_refused() {
    let dir = ScratchDir::new("trace-kinds");
    let dir_arg = dir.path().to_str().unwrap();
    let output = rawkvm(&["run", "hello", "--trace-file", dir_arg]);
    assert_eq!(
        stderr_of(&output),
        format!(
            "rawkvm: error: --trace-file {dir_arg}: cannot create it: EISDIR (Is a \
             directory)\n(see rawkvm --help)\n"
        )
    );
    assert_eq!(output.status.code(), Some(status::USAGE));
    let socket = dir.join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let socket_arg = socket.to_str().unwrap();
    let output = rawkvm(&["run", "hello", "--trace-file", socket_arg]);
    assert_eq!(
        stderr_of(&output),
        format!(
            "rawkvm: error: --trace-file {socket_arg}: is a socket, which cannot be opened as a \
             file: give a regular file\n(see rawkvm --help)\n"
        )
    );
    assert_eq!(output.status.code(), Some(status::USAGE));
    if kvm_or_skip("trace file kinds").is_none() {
        return;
    }
    // A regular file with old contents: truncated, then the trace alone.
    let file = dir.join("old.txt");
    std::fs::write(
        &file,
        "old contents that are longer than nothing\n".repeat(1000),
    )
    .unwrap();
    let output = rawkvm(&["run", "hello", "--trace-file", file.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let trace = std::fs::read_to_string(&file).unwrap();
    assert!(trace.starts_with("#1 vcpu0 KVM_EXIT_IO(2) "), "{trace}");
    assert!(!trace.contains("old contents"), "{trace}");
    // A character device (the null device) takes the trace as it is, and stays a device.
    let output = rawkvm(&["run", "hello", "--trace-file", "/dev/null"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr_of(&output));
    let null = std::fs::metadata("/dev/null").unwrap().file_type();
    assert!(null.is_char_device(), "{null:?}");
}

// 5. Signals the parent ignored, two signals, and typos in numbers and paths.

/// The kernel thread id of the thread of `pid` called `name`.
fn thread_id(pid: u32, name: &str) -> Option<u32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .find(|task| {
            std::fs::read_to_string(task.path().join("comm")).is_ok_and(|comm| comm.trim() == name)
        })?
        .file_name()
        .to_str()?
        .parse()
        .ok()
}

/// Waits until thread `name` of `pid` is blocked in `write(fd, ...)` (`/proc/PID/task/TID/
/// syscall` starts with the syscall number, 1 on x86-64, and the fd in hex), under the
/// watchdog.
fn wait_until_blocked_writing(pid: u32, name: &str, fd: u32) {
    let started = Instant::now();
    let expected = format!("1 {fd:#x} ");
    loop {
        let syscall = thread_id(pid, name).and_then(|tid| {
            std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall")).ok()
        });
        if syscall.as_deref().is_some_and(|s| s.starts_with(&expected)) {
            return;
        }
        assert!(
            started.elapsed() < WATCHDOG,
            "{name} of {pid} never blocked in write({fd}): {syscall:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// `rawkvm ARGS` started by a shell that ignores `signals` (`trap '' HUP INT`) and then
/// `exec`s it, which keeps ignored signals ignored (as `nohup` does for `SIGHUP`).
fn spawn_ignoring(signals: &str, args: &str) -> std::process::Child {
    Command::new("sh")
        .args([
            "-c",
            &format!("trap '' {signals}; exec \"$0\" {args}"),
            env!("CARGO_BIN_EXE_rawkvm"),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start sh")
}

#[test]
fn signals_the_parent_ignored_stay_ignored() {
    if !common::kvm_present("ignored signals") {
        return;
    }
    // `nohup rawkvm run spin --timeout 2s & kill -HUP $!` exited 129, and so did SIGINT under
    // `trap '' INT`: now both are left ignored and the deadline ends the run. (`exec` keeps
    // ignored dispositions, as nohup does.)
    let child = spawn_ignoring("HUP INT", "run spin --timeout 2s");
    let pid = child.id();
    wait_for_thread(pid, "vcpu0");
    send_signal(pid, Signal::SIGHUP);
    send_signal(pid, Signal::SIGINT);
    let output = wait_output(child);
    assert_fails(&output, status::TIMEOUT, "");
    assert_eq!(
        stderr_of(&output),
        "rawkvm: error: guest did not halt within 2 s (vCPU 0 stopped at RIP 0x1000)\n"
    );
    // SIGTERM, which the parent did not ignore, still stops the run.
    let child = spawn_ignoring("HUP", "run spin");
    let pid = child.id();
    wait_for_thread(pid, "vcpu0");
    send_signal(pid, Signal::SIGTERM);
    let output = wait_output(child);
    assert_fails(&output, 128 + libc::SIGTERM, "stopped by SIGTERM");
}

#[test]
fn a_second_signal_exits_at_once_with_the_first_ones_status_even_with_stderr_stalled() {
    if !common::kvm_present("second signal") {
        return;
    }
    // Nobody reads stderr, where the trace goes: vCPU 0 blocks in write(2), holding up the
    // clean stop, and a warning written to stderr would block as well.
    let mut child = spawn(&["run", "spin_out", "--trace"], Stdio::null());
    let pid = child.id();
    wait_until_blocked_writing(pid, "vcpu0", 2);
    send_signal(pid, Signal::SIGINT);
    send_signal(pid, Signal::SIGTERM);
    // Was 143 (the second signal's status), or a hang on the warning.
    let status = wait(&mut child);
    assert_eq!(status.code(), Some(128 + libc::SIGINT), "{status:?}");
}

#[test]
fn typos_in_entries_numbers_and_paths_are_refused() {
    for (args, message) in [
        (
            &["--entry", "0:+1000"][..],
            "--entry 0:+1000: \"+1000\" in entry \"0:+1000\" is not a 16-bit hex number",
        ),
        (
            &["--entry", "0:0x0x1000"],
            "--entry 0:0x0x1000: \"0x0x1000\" in entry \"0:0x0x1000\" is not a 16-bit hex \
             number",
        ),
        (
            &["--entry", "+0:1000"],
            "--entry +0:1000: \"+0\" in entry \"+0:1000\" is not a 16-bit hex number",
        ),
        (
            &["--param", "+5"],
            "--param +5: \"+5\" is not a number (write decimal, or hex with 0x)",
        ),
        (
            &["--trace-file", ""],
            "--trace-file: the path is empty; give the file to write the trace to",
        ),
        (
            &["--image", ""],
            "--image: the path is empty; give the flat binary to run",
        ),
    ] {
        let mut run_args = vec!["run"];
        run_args.extend_from_slice(args);
        let output = rawkvm(&run_args);
        assert_eq!(output.status.code(), Some(status::USAGE), "{args:?}");
        assert_eq!(
            stderr_of(&output),
            format!("rawkvm: error: {message}\n(see rawkvm --help)\n"),
            "{args:?}"
        );
    }
}
