//! `SIGINT`, `SIGTERM` and `SIGHUP` stop the guest cleanly instead of killing rawkvm.
//!
//! ```text
//! pthread_sigmask(SIG_BLOCK, {SIGINT, SIGTERM, SIGHUP})   main thread, before any other thread
//!                                                         exists, so every thread inherits it
//! thread "signals": sigwait({SIGINT, SIGTERM, SIGHUP})    → RunControl::request_stop
//!                   sigwait again                         → a second signal exits at once
//! ```
//!
//! With the signals blocked everywhere, only `sigwait` ever takes them, so no handler runs on a
//! vCPU thread and nothing here needs `unsafe`. The run then stops every vCPU, the console is
//! flushed, the error says which signal stopped it and where each vCPU was, and the exit status
//! is 128 + the signal's number (130 for `SIGINT`, 143 for `SIGTERM`), as a shell reports it.
//! A second signal ends the process at once with the same status, in case a stalled console
//! reader holds up the clean stop.

use std::io::Write;
use std::thread;

use crate::cli::status;
use nix::sys::signal::{SigSet, Signal};
use rawkvm::machine::supervisor::{RunControl, StopCause};

/// The signals that stop a run.
pub const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// Blocks [`STOP_SIGNALS`] in the calling thread and starts the thread that waits for them.
/// Call it before any other thread is started. If either step fails, rawkvm runs without it
/// (the signals keep their default action, ending the process) and says so on stderr.
pub fn stop_on_signals(control: &RunControl) {
    let set: SigSet = STOP_SIGNALS.into_iter().collect();
    if let Err(errno) = set.thread_block() {
        warn(&format!(
            "cannot block SIGINT/SIGTERM/SIGHUP ({errno}); they will kill rawkvm"
        ));
        return;
    }
    let control = control.clone();
    let waiter = thread::Builder::new()
        .name("signals".into())
        .spawn(move || wait_for_signals(set, &control));
    if let Err(error) = waiter {
        let _ = set.thread_unblock();
        warn(&format!(
            "cannot start the signal thread ({error}); SIGINT/SIGTERM/SIGHUP will kill rawkvm"
        ));
    }
}

fn wait_for_signals(set: SigSet, control: &RunControl) {
    let mut stopping = false;
    while let Ok(signal) = set.wait() {
        let number = signal as i32;
        if stopping {
            warn(&format!("{signal} again: exiting at once"));
            std::process::exit(status::signal(number));
        }
        stopping = true;
        control.request_stop(StopCause::Signal(number));
    }
}

fn warn(message: &str) {
    // Nobody is left to tell if stderr is gone.
    let _ = writeln!(std::io::stderr(), "rawkvm: warning: {message}");
}
