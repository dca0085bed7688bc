//! Threads: the signal that kicks a vCPU thread out of `KVM_RUN`, and the scheduling class of
//! helper threads.
//!
//! ```text
//! sigaction(SIGRTMIN, { handler: does nothing, flags: no SA_RESTART })   once, before any kick
//! sigaction(SIGHUP, NULL, &old)                                           is it ignored?
//! tid = gettid()                                                          the vCPU thread, once
//! run->immediate_exit = 1                                                 the kicker, first
//! tgkill(getpid(), tid, SIGRTMIN)                                         the kicker, then
//! ioctl(vcpu, KVM_RUN, 0) == -1, errno == EINTR                           the vCPU thread
//! ```
//!
//! A signal delivered while the thread is inside `KVM_RUN` makes it return `EINTR`. One
//! delivered a moment *before* the thread enters `KVM_RUN` would be lost, which is why the
//! kicker sets `immediate_exit` first: the kernel polls it when `KVM_RUN` starts (api.rst, "The
//! kvm_run structure"), so the next entry returns `EINTR` at once. The handler has nothing to
//! do; it exists so the signal interrupts instead of killing the process (the default action
//! of a real-time signal is to terminate).
//!
//! The target is named by its kernel thread id and the signal sent with `tgkill`, not
//! `pthread_kill`: a `pthread_t` is a pointer into the C library's thread descriptor, and
//! `pthread_kill` on a thread that has exited reads freed memory (undefined behaviour in
//! glibc). `tgkill` takes only integers and the kernel checks them: a thread id that no
//! longer names a thread of this process gives `ESRCH`. So a kick can never be unsound, even
//! if the thread it names is gone; at worst a thread of this process that reused the id gets
//! one do-nothing signal (a blocking call there returns `EINTR` once).
//!
//! `sigaction(signal, NULL, &old)` reads a signal's inherited disposition, so the CLI leaves
//! a signal its parent ignored alone ([`signal_is_ignored`]).
//!
//! It also holds the one other call that steers a thread rather than memory or the kernel's
//! VM objects: `sched_setscheduler(0, SCHED_IDLE)`, which helper threads (the VM reaper) use
//! so their work never competes with a vCPU or the thread creating VMs.
//!
//! This file holds `unsafe`: `sigaction`, `tgkill` and `sched_setscheduler`, which nix offers no
//! safe way to make (its `sigaction` cannot name a real-time signal, and it has no `tgkill` or
//! `sched_setscheduler`). `gettid` comes from nix, safely.
#![allow(unsafe_code)]

use std::sync::OnceLock;

use nix::errno::Errno;

/// The kick signal: the first real-time signal the C library leaves free (`SIGRTMIN`).
pub fn kick_signal() -> libc::c_int {
    libc::SIGRTMIN()
}

extern "C" fn on_kick(_signal: libc::c_int) {
    // Nothing: being interrupted is the whole point.
}

/// Installs the do-nothing handler for [`kick_signal`], once per process. Every path that
/// can send a kick calls this first.
pub fn install_kick_handler() -> Result<(), Errno> {
    static INSTALLED: OnceLock<Result<(), Errno>> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let handler: extern "C" fn(libc::c_int) = on_kick;
        // Zeroed, not nix's `SigAction::new`: that leaves the C library's `sa_restorer`
        // uninitialised (nix 0.32), and nix's own `sigaction` cannot name a real-time signal.
        // SAFETY: the C library's `sigaction` is plain data for which all-zero is a valid value
        // (no flags, empty mask, no handler, no restorer); the handler is set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as libc::sighandler_t;
        // No SA_RESTART: KVM_RUN is never restarted anyway (`docs/BACKEND.md`, "Stopping a
        // vCPU"), and blocking calls elsewhere should see EINTR too. The mask is empty from
        // zeroing.
        action.sa_flags = 0;
        // SAFETY: POSIX asks for a valid `sigaction` and an async-signal-safe handler: `action`
        // is fully initialised and its handler does nothing; the old action is not asked for.
        Errno::result(unsafe { libc::sigaction(kick_signal(), &action, std::ptr::null_mut()) })
            .map(drop)
    })
}

/// Whether `signal` is ignored (`SIG_IGN`), as a parent leaves it for its child across
/// `exec` (`nohup` ignores `SIGHUP`, `trap '' INT` in a shell `SIGINT`): a program that takes
/// such a signal over would undo what whoever started it asked for. `sigaction(signal, NULL,
/// &old)` only reads the disposition; nothing changes, so no signal can slip through a window.
pub fn signal_is_ignored(signal: libc::c_int) -> Result<bool, Errno> {
    // SAFETY: all-zero is a valid `sigaction` (plain data, see `install_kick_handler`); the
    // kernel overwrites it.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: POSIX allows a null new action, which makes `sigaction` only store the current
    // one in `old`, a valid, exclusive `&mut` for the duration of the call.
    Errno::result(unsafe { libc::sigaction(signal, std::ptr::null(), &mut old) })?;
    Ok(old.sa_sigaction == libc::SIG_IGN)
}

/// A thread of this process as the kernel names it (`gettid()`): what a kick is sent to.
pub type ThreadId = libc::pid_t;

/// The calling thread's kernel thread id.
pub fn current_thread() -> ThreadId {
    nix::unistd::gettid().as_raw()
}

/// Sends [`kick_signal`] to thread `tid` of this process: `tgkill(getpid(), tid, SIGRTMIN)`.
///
/// Sound for any `tid`: `ESRCH` if it names no thread of this process (it has exited, say).
/// [`crate::kvm::vcpu::StopHandle`] only kicks a thread that registered itself and has not yet
/// deregistered (under one lock), so with every registration dropped in time the signal always
/// reaches the vCPU's thread; a registration leaked with `mem::forget` can at worst send one
/// do-nothing signal to a thread that reused the id.
pub(crate) fn kick(tid: ThreadId) -> Result<(), Errno> {
    let pid = libc::pid_t::try_from(std::process::id()).map_err(|_| Errno::ESRCH)?;
    // The signal's handler does nothing: the caller (`StopHandle::kick`, after
    // `Vcpu::register_thread`) installed it before any thread could be registered, so delivery
    // only interrupts a system call.
    // SAFETY: `tgkill(2)` reads or writes no memory of this process, and the kernel checks that
    // `tid` is a thread of group `pid` (ESRCH if not), so no value of `tid` can do harm.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_tgkill,
            libc::c_long::from(pid),
            libc::c_long::from(tid),
            libc::c_long::from(kick_signal()),
        )
    };
    Errno::result(sent).map(drop)
}

/// Moves the calling thread to the `SCHED_IDLE` class: it runs only on CPU time no other
/// thread wants. For helper threads whose work can wait (dropping VMs), so that on a busy
/// machine they never slow down the thread that creates and runs VMs.
pub(crate) fn make_current_thread_idle() -> Result<(), Errno> {
    let param = libc::sched_param { sched_priority: 0 };
    // Pid 0 names the calling thread (Linux applies the policy per thread); SCHED_IDLE takes
    // priority 0, and nothing else in the process is affected.
    // SAFETY: per the C library's `sched_setscheduler(2)` contract `param` is only read, and it
    // is an initialised `sched_param` that outlives the call.
    Errno::result(unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) }).map(drop)
}
