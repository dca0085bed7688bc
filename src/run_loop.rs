//! The `KVM_RUN` loop: run, decode, dispatch, repeat until the guest halts or faults.
//!
//! ```text
//! loop {
//!     ioctl(vcpu, KVM_RUN, 0)
//!     switch (run->exit_reason) {
//!     case KVM_EXIT_IO:   count accesses of size bytes at run + run->io.data_offset
//!     case KVM_EXIT_MMIO: run->mmio.data[0..len] at run->mmio.phys_addr
//!     case KVM_EXIT_HLT:  done
//!     case KVM_EXIT_X86_RDMSR/WRMSR: run->msr.data, run->msr.error = the device's answer
//!     case KVM_EXIT_IRQ_WINDOW_OPEN: ioctl(vcpu, KVM_INTERRUPT, &vector) if one is queued
//!     case KVM_EXIT_DEBUG: stop, so the caller can look at the guest
//!     default:            a guest fault (triple fault, failed entry, internal error, ...)
//!     }
//! }
//! ```
//!
//! Per exit this does one `ioctl` and no allocation: the exit is decoded in place, the handler
//! writes IN and MMIO-read answers straight into the page, and the observer (tracing, stats)
//! is a type parameter that compiles to nothing when it is [`NoObserver`]. An observer that
//! fails (a trace whose reader went away) ends the run at that exit, as a console write that
//! fails does.

use crate::devices::bus::{Claim, IoHandler, dispatch_mmio, dispatch_msr};
use crate::devices::coalesced;
use crate::error::{Error, GuestFault};
use crate::exit::Exit;
use crate::kvm::vcpu::{RunError, Vcpu};

/// Watches the loop: the moments around each `KVM_RUN`, and every exit after it has been
/// handled (IN and MMIO-read data already filled in). Every method has an empty default, and
/// the loop is generic over the observer, so an observer that does nothing costs nothing.
pub trait Observer {
    /// Just before `KVM_RUN`, after the stop request was last checked.
    #[inline(always)]
    fn before_run(&mut self, _vcpu: u32) {}

    /// Just after `KVM_RUN` returned, before the exit is decoded and handled.
    #[inline(always)]
    fn after_run(&mut self, _vcpu: u32) {}

    /// Once per exit, with how the access was dispatched (`None` for exits that are not port
    /// or MMIO accesses).
    #[inline(always)]
    fn exit(&mut self, _vcpu: u32, _exit: &Exit<'_>, _dispatch: Option<Claim>) {}

    /// `KVM_RUN` returned `EINTR`; `stopping` says whether a stop was requested.
    #[inline(always)]
    fn interrupted(&mut self, _vcpu: u32, _stopping: bool) {}

    /// Asked after every [`Observer::exit`]: an error that must end the run now, such as a
    /// trace that can no longer be written (its reader went away, its disk is full). The
    /// loop returns it as the vCPU's error. An observer reports its failure once; `None`
    /// (the default, which compiles to nothing) carries on.
    #[inline(always)]
    fn failure(&mut self) -> Option<Error> {
        None
    }
}

/// How a run loop ended without an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The guest executed `hlt`.
    Halted,
    /// A [`crate::kvm::vcpu::StopHandle`] asked the vCPU to stop.
    Stopped,
    /// `KVM_EXIT_DEBUG`: a breakpoint or single step armed with `KVM_SET_GUEST_DEBUG` hit.
    /// The observer saw the exit; running again continues the guest.
    Debug,
    /// A device ended the run ([`Claim::Finish`]: the exit device), reporting `code`; 0 is
    /// success.
    Finished(u32),
}

/// The observer that observes nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoObserver;

impl Observer for NoObserver {}

/// Counts exits; what `rawkvm bench` uses.
#[derive(Debug, Default, Clone, Copy)]
pub struct ExitCounter {
    /// Exits seen.
    pub exits: u64,
}

impl Observer for ExitCounter {
    #[inline(always)]
    fn exit(&mut self, _vcpu: u32, _exit: &Exit<'_>, _dispatch: Option<Claim>) {
        self.exits += 1;
    }
}

/// The guest fault an exit stands for, if it is one: every exit the loop does not handle.
pub fn fault_of(exit: &Exit<'_>) -> Option<GuestFault> {
    Some(match exit {
        Exit::Shutdown => GuestFault::Shutdown,
        &Exit::FailEntry {
            hardware_entry_failure_reason,
            cpu,
        } => GuestFault::FailEntry {
            hardware_entry_failure_reason,
            cpu,
        },
        Exit::InternalError { suberror, data } => GuestFault::InternalError {
            suberror: *suberror,
            data: data.to_vec(),
        },
        &Exit::HardwareUnknown {
            hardware_exit_reason,
        } => GuestFault::HardwareUnknown {
            hardware_exit_reason,
        },
        Exit::SystemEvent { event_type, data } => GuestFault::SystemEvent {
            event_type: *event_type,
            data: data.to_vec(),
        },
        Exit::Io(_)
        | Exit::Mmio(_)
        | Exit::Hlt
        | Exit::Intr
        | Exit::X86Rdmsr(_)
        | Exit::X86Wrmsr(_)
        | Exit::IrqWindowOpen { .. }
        | Exit::Debug(_) => return None,
        other => GuestFault::Unhandled {
            reason: other.reason(),
            payload: other.payload_string(),
        },
    })
}

/// The fault an exit that ends a run stands for: a named guest fault, or an unhandled exit
/// with its decoded payload.
pub fn fault(exit: &Exit<'_>) -> GuestFault {
    fault_of(exit).unwrap_or_else(|| GuestFault::Unhandled {
        reason: exit.reason(),
        payload: exit.payload_string(),
    })
}

/// Runs `vcpu` on the calling thread until the guest halts, a stop is requested through its
/// [`crate::kvm::vcpu::StopHandle`], or the guest faults (`Err`). Port and MMIO accesses go to
/// `handler`, every exit to `observer`.
pub fn run_vcpu<H, O>(vcpu: &mut Vcpu, handler: &mut H, observer: &mut O) -> Result<Outcome, Error>
where
    H: IoHandler + ?Sized,
    O: Observer + ?Sized,
{
    let id = vcpu.id();
    let _registration = vcpu
        .register_thread()
        .map_err(|errno| Error::Signal { errno })?;
    // Present only once a coalesced zone is registered: the plain loop pays nothing for it.
    let ring = vcpu.coalesced_ring();
    loop {
        observer.before_run(id);
        let result = vcpu.run();
        observer.after_run(id);
        // Writes the kernel coalesced happened before this exit (or EINTR): hand them over
        // first, so the handler sees everything in program order.
        if let Some(ring) = &ring {
            coalesced::drain(ring, handler, id)?;
        }
        let mut exit = match result {
            Ok(exit) => exit,
            Err(RunError::Interrupted) => {
                let stopping = vcpu.acknowledge_kick();
                observer.interrupted(id, stopping);
                if stopping {
                    return Ok(Outcome::Stopped);
                }
                continue;
            }
            Err(RunError::Failed(errno)) => return Err(Error::Run { vcpu: id, errno }),
            Err(RunError::Decode(error)) => return Err(Error::Decode { vcpu: id, error }),
        };
        let dispatch = match &mut exit {
            Exit::Io(io) => Some(handler.io_exit(io)),
            Exit::Mmio(mmio) => Some(dispatch_mmio(mmio, handler)),
            Exit::X86Rdmsr(msr) => Some(dispatch_msr(msr, false, handler)),
            Exit::X86Wrmsr(msr) => Some(dispatch_msr(msr, true, handler)),
            _ => None,
        }
        .transpose()
        .map_err(Error::Console)?;
        observer.exit(id, &exit, dispatch);
        if let Some(error) = observer.failure() {
            return Err(error);
        }
        if let Some(Claim::Finish(code)) = dispatch {
            return Ok(Outcome::Finished(code));
        }
        let window_open = match exit {
            Exit::Io(_) | Exit::Mmio(_) | Exit::Intr | Exit::X86Rdmsr(_) | Exit::X86Wrmsr(_) => {
                false
            }
            Exit::IrqWindowOpen {
                ready_for_interrupt_injection,
                ..
            } => ready_for_interrupt_injection,
            Exit::Hlt => return Ok(Outcome::Halted),
            Exit::Debug(_) => return Ok(Outcome::Debug),
            other => {
                let fault = fault(&other);
                return Err(Error::GuestFault { vcpu: id, fault });
            }
        };
        if window_open {
            deliver_queued_interrupt(vcpu)?;
        }
    }
}

/// At `KVM_EXIT_IRQ_WINDOW_OPEN`: injects the vector queued with
/// [`Vcpu::queue_interrupt`] (`KVM_INTERRUPT`), and stops asking for the window once nothing
/// is queued.
#[cfg(target_arch = "x86_64")]
fn deliver_queued_interrupt(vcpu: &mut Vcpu) -> Result<(), Error> {
    vcpu.deliver_queued_interrupt()
}

/// Only x86 injects interrupts with `KVM_INTERRUPT` from this loop.
#[cfg(not(target_arch = "x86_64"))]
fn deliver_queued_interrupt(_vcpu: &mut Vcpu) -> Result<(), Error> {
    Ok(())
}
