//! `SIGINT`, `SIGTERM` and `SIGHUP` stop the guest cleanly instead of killing rawkvm, unless
//! whoever started rawkvm ignored them.
//!
//! ```text
//! sigaction(signal, NULL, &old)                           each of SIGINT, SIGTERM, SIGHUP:
//!                                                         left alone if old is SIG_IGN
//! pthread_sigmask(SIG_BLOCK, {the others})                main thread, before any other thread
//!                                                         exists, so every thread inherits it
//! thread "signals": sigwait({the others})                 → RunControl::request_stop
//!                   sigwait again                         → a second signal exits at once
//! ```
//!
//! With the signals blocked everywhere, only `sigwait` ever takes them, so no handler runs on a
//! vCPU thread and nothing here needs `unsafe`. The run then stops every vCPU, the console is
//! flushed, the error says which signal stopped it and where each vCPU was, and the exit status
//! is 128 + the signal's number (130 for `SIGINT`, 143 for `SIGTERM`), as a shell reports it.
//! A second signal ends the process at once with the *first* signal's status (the one the
//! run was stopping for), in case a stalled console or trace reader holds up the clean stop;
//! its warning is written only if stderr can take it without blocking, since a stalled
//! stderr may be what holds the stop up.
//!
//! A signal the parent ignored (`nohup rawkvm ...` for `SIGHUP`, `trap '' INT` for `SIGINT`)
//! stays ignored: rawkvm neither blocks nor waits for it, so the kernel discards it. The
//! dispositions are only read, never changed, and the signals are blocked at the start of
//! `rawkvm run`, before its flags are read, so a signal that arrives during start-up waits
//! for the signal thread instead of being lost.

use std::io::Write;
use std::os::fd::AsFd;
use std::thread;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use rawkvm::machine::supervisor::{RunControl, StopCause, signal_is_ignored};

use crate::cli::status;

/// The signals that stop a run.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Blocks those of [`STOP_SIGNALS`] the parent did not ignore in the calling thread, and
/// starts the thread that waits for them. Call it before any other thread is started. If
/// either step fails, rawkvm runs without it (the signals keep their default action, ending
/// the process) and says so on stderr.
pub fn stop_on_signals(control: &RunControl) {
    // A disposition that cannot be read is taken over, as before this check existed.
    let taken: SigSet = STOP_SIGNALS
        .into_iter()
        .filter(|&signal| signal_is_ignored(signal as i32) != Ok(true))
        .collect();
    if STOP_SIGNALS.iter().all(|&signal| !taken.contains(signal)) {
        return;
    }
    if let Err(errno) = taken.thread_block() {
        warn(&format!(
            "cannot block SIGINT/SIGTERM/SIGHUP ({errno}); they will kill rawkvm"
        ));
        return;
    }
    let control = control.clone();
    let waiter = thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_for_signals(taken, &control));
    if let Err(error) = waiter {
        let _ = taken.thread_unblock();
        warn(&format!(
            "cannot start the signal thread ({error}); SIGINT/SIGTERM/SIGHUP will kill rawkvm"
        ));
    }
}

fn wait_for_signals(set: SigSet, control: &RunControl) {
    let mut first: Option<Signal> = None;
    while let Ok(signal) = set.wait() {
        if let Some(first) = first {
            warn_if_stderr_is_ready(&format!(
                "{signal} while stopping for {first}: exiting at once"
            ));
            std::process::exit(status::signal(first as i32));
        }
        first = Some(signal);
        control.request_stop(StopCause::Signal(signal as i32));
    }
}

fn warn(message: &str) {
    // Nobody is left to tell if stderr is gone.
    let _ = writeln!(std::io::stderr(), "rawkvm: warning: {message}");
}

/// [`warn`], but only if stderr can take a line now (`poll` with no timeout): a reader that
/// stopped reading stderr must not hold up the exit this warning announces.
fn warn_if_stderr_is_ready(message: &str) {
    let stderr = std::io::stderr();
    let mut fds = [PollFd::new(stderr.as_fd(), PollFlags::POLLOUT)];
    let ready = poll(&mut fds, PollTimeout::ZERO).is_ok_and(|ready| ready > 0)
        && fds[0]
            .revents()
            .is_some_and(|events| events.contains(PollFlags::POLLOUT));
    if ready {
        warn(message);
    }
}
