//! Running the `rawkvm` binary as a child with a watchdog, and looking at it through `/proc`.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// The bound for anything that "ends promptly": generous, so a loaded CI machine never trips
/// it; only a hang does.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Starts the built `rawkvm` binary with `args`, stdin closed, stdout as given, stderr piped.
pub fn spawn(args: &[&str], stdout: Stdio) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rawkvm"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start the rawkvm binary")
}

/// Waits for `child` to exit; kills it and fails the test if it takes longer than `WATCHDOG`.
pub fn wait(child: &mut Child) -> ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if started.elapsed() > WATCHDOG {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rawkvm did not exit within {WATCHDOG:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits for `child` and collects what it wrote (stdout only if it was piped).
pub fn wait_output(mut child: Child) -> Output {
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_all = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                pipe.read_to_end(&mut bytes).expect("read child output");
            }
            bytes
        })
    };
    let stdout = read_all(stdout.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = read_all(stderr.map(|p| Box::new(p) as Box<dyn Read + Send>));
    let status = wait(&mut child);
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Runs `rawkvm args` to the end under the watchdog.
pub fn run(args: &[&str]) -> Output {
    wait_output(spawn(args, Stdio::piped()))
}

/// Runs `program args` (e.g. `setpriv ...`) to the end under the watchdog.
pub fn run_program(program: &str, args: &[&str]) -> std::io::Result<Output> {
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    Ok(wait_output(child))
}

/// Waits until a thread of process `pid` is called `name` (e.g. `vcpu0`, which exists once
/// the run has started and the stop signals are blocked), under the watchdog.
pub fn wait_for_thread(pid: u32, name: &str) {
    let started = Instant::now();
    while !thread_names(pid).iter().any(|n| n == name) {
        assert!(
            started.elapsed() < WATCHDOG,
            "no thread {name} in process {pid}"
        );
        thread::sleep(Duration::from_millis(5));
    }
}

/// The names of the threads of process `pid` (`/proc/PID/task/*/comm`).
pub fn thread_names(pid: u32) -> Vec<String> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_string())
        .collect()
}

/// `VmRSS` of process `pid` in KiB, from `/proc/PID/status`, if it is still there.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Sends `signal` to process `pid`.
pub fn send_signal(pid: u32, signal: nix::sys::signal::Signal) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    nix::sys::signal::kill(pid, signal).expect("kill");
}
