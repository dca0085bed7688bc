//! The vCPU level: `KVM_RUN` and the exit it reports.
//!
//! ```text
//! ioctl(vcpu, KVM_RUN, 0)   returns 0: kvm_run->exit_reason says why the guest stopped
//!                           returns -1/EINTR: a signal or immediate_exit stopped it first
//! ```
//!
//! [`Vcpu::run`] is the hot path: one `ioctl`, then [`crate::exit::decode`] over the mapped
//! page. The returned [`Exit`] borrows the vCPU, so it cannot outlive the next `KVM_RUN`.
//! Architecture-specific register access lives in [`crate::arch`].
//!
//! # Stopping a running vCPU
//!
//! A [`StopHandle`] stops a vCPU from any thread (Firecracker's and the selftests' protocol):
//!
//! ```text
//! kicker                                 vCPU thread (the run loop)
//! stop_requested = true                  ioctl(vcpu, KVM_RUN) == -1, EINTR
//! run->immediate_exit = 1                run->immediate_exit = 0      clear first,
//! tgkill(getpid(), vcpu_tid, SIGRTMIN)   if stop_requested: stop      then check
//!                                        else: KVM_RUN again
//! ```
//!
//! All four accesses are sequentially consistent, so whatever the interleaving either the vCPU
//! thread sees the request when it checks, or `immediate_exit` is still 1 when it next enters
//! `KVM_RUN` and the kernel returns `EINTR` at once. A kick that lands between the check and
//! the ioctl is therefore never lost, and one that arrives while the thread is in user space
//! costs nothing but the next entry.
//!
//! The vCPU thread is named by its kernel thread id, registered with
//! [`Vcpu::register_thread`] and deregistered when the guard it returns is dropped, both under
//! the lock the kicker sends under. The kick itself is `tgkill`, which is sound whatever the
//! id names (see `sys::thread`): a guard leaked with `mem::forget` leaves a stale id behind,
//! which costs at most a stray do-nothing signal, never memory safety.

use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use nix::errno::Errno;

use crate::exit::{self, DecodeError, Exit};
use crate::sys::ioctl::VcpuFd;
use crate::sys::run_page::{RunMapping, RunPage};
use crate::sys::thread;

/// Why [`Vcpu::run`] did not produce an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunError {
    /// `KVM_RUN` returned `EINTR`: a signal arrived, or `immediate_exit` was set. Pending
    /// I/O has been completed; the guest can be re-entered.
    Interrupted,
    /// `KVM_RUN` failed with another errno. `kvm_run.exit_reason` is stale (api.rst).
    Failed(Errno),
    /// `KVM_RUN` succeeded but the page held values the ABI does not allow.
    Decode(DecodeError),
}

/// A virtual CPU, its fd and its `kvm_run` mapping.
///
/// Field order is drop order: `stop` lets go of its share of the `kvm_run` mapping first, so
/// that (with no other stop handle left) `fd` unmaps it before closing the vCPU fd, the
/// teardown order of `docs/ARCHITECTURE.md` ("Teardown order").
#[derive(Debug)]
pub struct Vcpu {
    stop: StopHandle,
    fd: VcpuFd,
    id: u32,
    /// The vector waiting for the guest's interrupt window (`Vcpu::queue_interrupt`, x86).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) queued_interrupt: Option<u8>,
    /// Whether the vCPU's mode installed rawkvm's exception stub (x86 `--mode long|user`): a
    /// halt is then checked for an exception report (`arch::x86_64::exception`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) exception_stub: bool,
    /// Whether the VM had an in-kernel irqchip when this vCPU was made (then `KVM_INTERRUPT`
    /// is refused: the kernel's PIC and LAPIC inject).
    pub(crate) in_kernel_irqchip: bool,
    /// Whether the last `KVM_RUN` may have left an instruction half done, which the kernel
    /// finishes at the next entry (see [`Vcpu::complete_pending_operation`]).
    completion_pending: bool,
    /// Whether `KVM_RUN` has been called on this vCPU: from then on the kernel accepts
    /// `KVM_SET_CPUID2` only with the table it already has (see [`Vcpu::has_run`]).
    has_run: bool,
}

impl Vcpu {
    pub(crate) fn new(fd: VcpuFd, id: u32) -> Vcpu {
        let stop = StopHandle {
            shared: Arc::new(StopState {
                requested: AtomicBool::new(false),
                run: Arc::clone(fd.run_mapping()),
                thread: Mutex::new(None),
            }),
        };
        Vcpu {
            stop,
            fd,
            id,
            queued_interrupt: None,
            exception_stub: false,
            in_kernel_irqchip: false,
            completion_pending: false,
            has_run: false,
        }
    }

    /// A handle other threads can use to stop this vCPU.
    pub fn stop_handle(&self) -> StopHandle {
        self.stop.clone()
    }

    /// This vCPU's own stop handle, borrowed (no clone: for the run loop's checks).
    pub(crate) fn stop_handle_ref(&self) -> &StopHandle {
        &self.stop
    }

    /// Registers the calling thread as the one running this vCPU, so kicks reach it, until the
    /// returned guard is dropped (on this thread: the guard is not `Send`). Installs the kick
    /// signal's handler first.
    pub fn register_thread(&self) -> Result<ThreadRegistration, Errno> {
        thread::install_kick_handler()?;
        let tid = thread::current_thread();
        *self.stop.shared.lock_thread() = Some(tid);
        Ok(ThreadRegistration {
            stop: self.stop.clone(),
            tid,
            not_send: PhantomData,
        })
    }

    /// Forgets any stop requested through this vCPU's [`StopHandle`]s and clears
    /// `immediate_exit`, so the next run starts afresh ([`Machine::run_all`] does this first).
    ///
    /// [`Machine::run_all`]: crate::machine::Machine::run_all
    pub(crate) fn reset_stop(&self) {
        let state = &self.stop.shared;
        state.requested.store(false, Ordering::SeqCst);
        state.set_immediate_exit(0);
    }

    /// After `KVM_RUN` returned `EINTR`: clears `immediate_exit`, then says whether a stop was
    /// requested (in that order; see the module docs).
    pub fn acknowledge_kick(&self) -> bool {
        let state = &self.stop.shared;
        state.set_immediate_exit(0);
        state.requested.load(Ordering::SeqCst)
    }

    /// Whether `KVM_RUN` has been called on this vCPU (even one that returned `EINTR` at once).
    /// After the first run the kernel refuses a `KVM_SET_CPUID2` that would change the table
    /// (`EINVAL`), so `Vcpu::set_cpuid` (x86) checks this first.
    pub fn has_run(&self) -> bool {
        self.has_run
    }

    /// The vCPU id given to `KVM_CREATE_VCPU`.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }

    /// The fd of the VM this vCPU belongs to (arm64: `KVM_ARM_PREFERRED_TARGET`).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn vm_fd(&self) -> BorrowedFd<'_> {
        self.fd.vm_fd()
    }

    /// The `kvm_run` page as the last `KVM_RUN` left it, for writing its "in" fields
    /// (`request_interrupt_window`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn run_page(&mut self) -> RunPage<'_> {
        self.fd.run_page()
    }

    /// `ioctl(vcpu, KVM_GET_STATS_FD, 0)`: this vCPU's binary statistics file
    /// (`KVM_CAP_BINARY_STATS_FD`; see [`crate::trace::kernel_stats`]).
    pub fn stats_fd(&self) -> Result<std::fs::File, crate::Error> {
        use crate::sys::ioctl::vcpu;
        vcpu::GET_STATS_FD
            .call(self.fd(), 0)
            .map(std::fs::File::from)
            .map_err(|errno| crate::Error::Ioctl {
                ioctl: vcpu::GET_STATS_FD.name,
                errno,
            })
    }

    /// The coalesced-MMIO ring of this vCPU's mapping, once a zone is registered (the run loop
    /// drains it after every `KVM_RUN`).
    pub(crate) fn coalesced_ring(&self) -> Option<crate::sys::run_page::CoalescedRing> {
        self.fd.coalesced_ring()
    }

    /// `ioctl(vm, KVM_CHECK_EXTENSION, cap)` on this vCPU's VM: 0 when absent or refused.
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn vm_check_extension(&self, cap: u32) -> i32 {
        crate::sys::ioctl::vm::CHECK_EXTENSION
            .call(self.fd.vm().fd(), libc::c_ulong::from(cap))
            .unwrap_or(0)
    }

    /// Which register sets the VM can keep in `kvm_run.s` (`KVM_CAP_SYNC_REGS`, asked once).
    #[cfg(target_arch = "x86_64")]
    pub(crate) fn sync_regs_supported(&self) -> u64 {
        self.fd.vm().sync_regs_supported()
    }

    /// `ioctl(vcpu, KVM_RUN, 0)`, then decodes the exit in place. Exactly one syscall, no
    /// allocation.
    pub fn run(&mut self) -> Result<Exit<'_>, RunError> {
        self.has_run = true;
        let returned = self.fd.run().map(drop);
        let exit = exit_of(returned, self.fd.run_page());
        self.completion_pending = !leaves_nothing_pending(&exit);
        exit
    }

    /// Finishes the instruction the last run left half done, if it may have left one.
    ///
    /// After an I/O, MMIO, MSR or hypercall exit the kernel completes the instruction (an IN
    /// or MMIO read's value into RAX, RIP past the instruction) only when `KVM_RUN` is entered
    /// again; api.rst ("KVM_RUN"): "the corresponding operations are complete (and guest state
    /// is consistent) only after userspace has re-entered the kernel with KVM_RUN". Registers
    /// set in between would be overwritten by that completion. Re-entering with
    /// `immediate_exit = 1` completes it and returns `EINTR` before the guest runs another
    /// instruction ("userspace can re-enter the guest ... with the immediate_exit field set to
    /// complete pending operations"), as the selftests' `vcpu_run_complete_io` does.
    ///
    /// A string instruction may need more I/O to finish (the kernel then returns an exit, not
    /// `EINTR`): this re-enters up to `MAX_ENTRIES` times, with whatever data the page holds.
    /// Returns whether nothing is pending now. After `hlt`, a fault or a stop (the common
    /// case) it makes no system call at all. A stop requested meanwhile stays requested.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // restart is x86-only so far
    pub(crate) fn complete_pending_operation(&mut self) -> Result<bool, Errno> {
        const MAX_ENTRIES: usize = 16;
        for _ in 0..MAX_ENTRIES {
            if !self.completion_pending {
                break;
            }
            self.stop.shared.set_immediate_exit(1);
            let failed = match self.run() {
                Err(RunError::Failed(errno)) => Some(errno),
                _ => None,
            };
            // As after any EINTR: clear first, then look; a stop that came meanwhile is armed
            // again for the next run.
            if self.acknowledge_kick() {
                self.stop.shared.set_immediate_exit(1);
            }
            if let Some(errno) = failed {
                return Err(errno);
            }
        }
        Ok(!self.completion_pending)
    }
}

/// Whether a `KVM_RUN` that gave `exit` left nothing for the next entry to finish: it ended
/// on `hlt`, a fault, a debug event or an interrupt window, or returned `EINTR` (which the
/// kernel returns only after completing pending I/O). Every other exit may have (api.rst lists
/// IO, MMIO, OSI, PAPR, EPR, X86_RDMSR/WRMSR, XEN, RISCV_SBI/CSR, NOTIFY; hypercalls too), and
/// an unknown or undecodable one is assumed to.
fn leaves_nothing_pending(exit: &Result<Exit<'_>, RunError>) -> bool {
    matches!(
        exit,
        Ok(Exit::Hlt
            | Exit::Shutdown
            | Exit::FailEntry { .. }
            | Exit::InternalError { .. }
            | Exit::Debug(_)
            | Exit::IrqWindowOpen { .. }
            | Exit::Intr)
            | Err(RunError::Interrupted)
    )
}

/// What one `KVM_RUN` that returned `returned` means, given the page it left: the decoded exit
/// if it succeeded; otherwise the errno, without looking at the page at all (api.rst: after a
/// failed `KVM_RUN`, `exit_reason` is stale).
#[inline]
pub fn exit_of(returned: Result<(), Errno>, page: RunPage<'_>) -> Result<Exit<'_>, RunError> {
    match returned {
        Ok(()) => exit::decode(page).map_err(RunError::Decode),
        Err(Errno::EINTR) => Err(RunError::Interrupted),
        Err(errno) => Err(RunError::Failed(errno)),
    }
}

/// Stops a vCPU from another thread: sets the request, sets `immediate_exit`, and signals the
/// vCPU's thread if one is registered.
#[derive(Debug, Clone)]
pub struct StopHandle {
    shared: Arc<StopState>,
}

#[derive(Debug)]
struct StopState {
    requested: AtomicBool,
    /// Keeps the `kvm_run` mapping (and so `immediate_exit`) alive as long as any handle.
    run: Arc<RunMapping>,
    /// The kernel thread id of the thread inside the run loop, if any. Kicks are sent under
    /// this lock, and the thread deregisters under it before it exits, so a kick targets a
    /// finished thread only if its registration was leaked (harmless: see `sys::thread`).
    thread: Mutex<Option<thread::ThreadId>>,
}

impl StopState {
    /// `kvm_run.immediate_exit = value`, sequentially consistent (see the module docs); 1
    /// makes the next `KVM_RUN` return `EINTR` at once.
    fn set_immediate_exit(&self, value: u8) {
        self.run.immediate_exit().store(value, Ordering::SeqCst);
    }

    fn lock_thread(&self) -> std::sync::MutexGuard<'_, Option<thread::ThreadId>> {
        self.thread.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StopHandle {
    /// Asks the vCPU to stop: its run loop returns at the next exit, or at once if it is in
    /// the guest. Safe to call any number of times, from any thread, before or during a run.
    pub fn stop(&self) {
        self.shared.requested.store(true, Ordering::SeqCst);
        self.kick();
    }

    /// Interrupts `KVM_RUN` without asking to stop: the run loop clears `immediate_exit` and
    /// re-enters the guest. Pending I/O is completed first, so the guest sees nothing.
    pub fn kick(&self) {
        let state = &self.shared;
        state.set_immediate_exit(1);
        if let Some(tid) = *state.lock_thread() {
            // ESRCH only if a leaked registration outlived its thread: nothing to interrupt.
            let _ = thread::kick(tid);
        }
    }

    /// Whether [`StopHandle::stop`] has been called.
    pub fn stop_requested(&self) -> bool {
        self.shared.requested.load(Ordering::SeqCst)
    }
}

/// Marks the current thread as the one running a vCPU; deregisters it on drop.
///
/// Not `Send`: it names the thread that made it, so it is dropped there.
#[derive(Debug)]
pub struct ThreadRegistration {
    stop: StopHandle,
    tid: thread::ThreadId,
    not_send: PhantomData<*const ()>,
}

impl Drop for ThreadRegistration {
    fn drop(&mut self) {
        let mut registered = self.stop.shared.lock_thread();
        // Only our own entry: a later registration (another thread) stays in place.
        if *registered == Some(self.tid) {
            *registered = None;
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Interrupted => f.write_str("KVM_RUN was interrupted (EINTR)"),
            RunError::Failed(errno) => {
                write!(f, "KVM_RUN failed: {}", crate::error::ErrnoDisplay(*errno))
            }
            RunError::Decode(error) => write!(f, "undecodable exit in kvm_run: {error}"),
        }
    }
}

impl std::error::Error for RunError {}
