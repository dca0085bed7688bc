//! Threads: the signal that kicks a vCPU thread out of `KVM_RUN`, and the scheduling class of
//! helper threads.
//!
//! ```text
//! sigaction(SIGRTMIN, { handler: does nothing, flags: no SA_RESTART })   once, before any kick
//! run->immediate_exit = 1                                                 the kicker, first
//! pthread_kill(vcpu_thread, SIGRTMIN)                                     the kicker, then
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
//! It also holds the one other call that steers a thread rather than memory or the kernel's
//! VM objects: `sched_setscheduler(0, SCHED_IDLE)`, which helper threads (the VM reaper) use
//! so their work never competes with a vCPU or the thread creating VMs.
//!
//! This file holds `unsafe`: `sigaction`, `pthread_kill` and `sched_setscheduler`.
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
        // SAFETY: the C library's `sigaction` is plain data for which all-zero is a valid value
        // (no flags, empty mask, no handler); the fields that matter are set below.
        let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
        action.sa_sigaction = handler as libc::sighandler_t;
        // No SA_RESTART: KVM_RUN is never restarted anyway (HOST-NOTES.md), and blocking
        // calls elsewhere should see EINTR too. The mask is empty from zeroing.
        action.sa_flags = 0;
        // SAFETY: POSIX asks for a valid `sigaction` and an async-signal-safe handler: `action`
        // is fully initialised and its handler does nothing; the old action is not asked for.
        Errno::result(unsafe { libc::sigaction(kick_signal(), &action, std::ptr::null_mut()) })
            .map(drop)
    })
}

/// The calling thread, as `pthread_kill` names it.
pub fn current_thread() -> libc::pthread_t {
    // SAFETY: POSIX: `pthread_self` has no preconditions and always succeeds.
    unsafe { libc::pthread_self() }
}

/// Sends [`kick_signal`] to `thread`.
///
/// The caller must know `thread` is still running: [`crate::vcpu::StopHandle`] only kicks a
/// thread that has registered itself and has not yet deregistered, under one lock.
pub(crate) fn kick(thread: libc::pthread_t) -> Result<(), Errno> {
    // SAFETY: the caller guarantees `thread` names a live thread of this process (see above),
    // and the signal's handler was installed before the thread registered, so delivery only
    // interrupts a system call.
    match unsafe { libc::pthread_kill(thread, kick_signal()) } {
        // pthread_kill returns the error number itself rather than setting errno.
        0 => Ok(()),
        error => Err(Errno::from_raw(error)),
    }
}

/// Moves the calling thread to the `SCHED_IDLE` class: it runs only on CPU time no other
/// thread wants. For helper threads whose work can wait (dropping VMs), so that on a busy
/// machine they never slow down the thread that creates and runs VMs.
pub(crate) fn make_current_thread_idle() -> Result<(), Errno> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: per the C library's `sched_setscheduler(2)` contract, pid 0 names the calling
    // thread (Linux applies the policy per thread) and `param` is only read; it is an
    // initialised `sched_param`, and SCHED_IDLE takes priority 0. Nothing else in the process
    // is affected.
    Errno::result(unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) }).map(drop)
}
