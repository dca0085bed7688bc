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
use crate::devices::pic::{PicPorts, UserPic};
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

    /// rawkvm injected `vector` with `KVM_INTERRUPT` (the user-space PIC, or a queued
    /// vector at the interrupt window), before the next `KVM_RUN`.
    #[inline(always)]
    fn injected(&mut self, _vcpu: u32, _vector: u8) {}

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
    run_with(vcpu, handler, observer, None)
}

/// As [`run_vcpu`], with the user-space 8259 pair `pic` (`--irqchip user`) answering its
/// ports and injecting: before every `KVM_RUN`, a pending vector is injected with
/// `KVM_INTERRUPT` if the last exit reported `ready_for_interrupt_injection` and `if_flag`,
/// and `request_interrupt_window` is set exactly while one is pending. A `hlt` with
/// interrupts enabled waits for a line instead of ending the run.
pub fn run_vcpu_with_pic<H, O>(
    vcpu: &mut Vcpu,
    handler: &mut H,
    observer: &mut O,
    pic: Option<&UserPic>,
) -> Result<Outcome, Error>
where
    H: IoHandler + ?Sized,
    O: Observer + ?Sized,
{
    match pic {
        Some(pic) => {
            pic.attach(vcpu.stop_handle());
            let mut ports = PicPorts::new(pic, handler);
            run_with(vcpu, &mut ports, observer, Some(pic))
        }
        None => run_with(vcpu, handler, observer, None),
    }
}

fn run_with<H, O>(
    vcpu: &mut Vcpu,
    handler: &mut H,
    observer: &mut O,
    pic: Option<&UserPic>,
) -> Result<Outcome, Error>
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
        if let Some(pic) = pic {
            service_pic(vcpu, pic, observer)?;
        }
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
            // The exception stub ends runs through the exit device too: check for its report.
            return halted(vcpu).map(|_| Outcome::Finished(code));
        }
        let window_open = match exit {
            Exit::Io(_) | Exit::Mmio(_) | Exit::Intr | Exit::X86Rdmsr(_) | Exit::X86Wrmsr(_) => {
                false
            }
            Exit::IrqWindowOpen {
                ready_for_interrupt_injection,
                ..
            } => ready_for_interrupt_injection,
            Exit::Hlt => match pic {
                Some(pic) if vcpu_if_flag(vcpu) => {
                    if wait_for_line(vcpu, pic) {
                        return Ok(Outcome::Stopped);
                    }
                    false
                }
                _ => return halted(vcpu),
            },
            Exit::Debug(_) => return Ok(Outcome::Debug),
            other => {
                let fault = fault(&other);
                return Err(Error::GuestFault { vcpu: id, fault });
            }
        };
        if window_open {
            deliver_queued_interrupt(vcpu, observer)?;
        }
    }
}

/// Before a `KVM_RUN` with the user-space PIC: inject if the guest is ready and a vector is
/// pending, and ask for the window exactly while one (still) is.
#[cfg(target_arch = "x86_64")]
fn service_pic<O: Observer + ?Sized>(
    vcpu: &mut Vcpu,
    pic: &UserPic,
    observer: &mut O,
) -> Result<(), Error> {
    use crate::exit::fields::{IF_FLAG, READY_FOR_INTERRUPT_INJECTION, REQUEST_INTERRUPT_WINDOW};
    let page = vcpu.run_page();
    let ready = page.get(READY_FOR_INTERRUPT_INJECTION.field) != 0 && page.get(IF_FLAG.field) != 0;
    let service = pic.service(ready);
    if let Some(vector) = service.inject {
        vcpu.interrupt(vector)?;
        observer.injected(vcpu.id(), vector);
    }
    vcpu.run_page().set(
        REQUEST_INTERRUPT_WINDOW.field,
        u8::from(service.request_window),
    );
    Ok(())
}

/// Only x86 has the 8259 pair.
#[cfg(not(target_arch = "x86_64"))]
fn service_pic<O: Observer + ?Sized>(
    _vcpu: &mut Vcpu,
    _pic: &UserPic,
    _observer: &mut O,
) -> Result<(), Error> {
    Ok(())
}

/// `kvm_run.if_flag` as the last exit left it.
fn vcpu_if_flag(vcpu: &mut Vcpu) -> bool {
    vcpu.run_page().get(crate::exit::fields::IF_FLAG.field) != 0
}

/// The guest ran `hlt` with interrupts enabled: wait until a line is pending, or a stop is
/// requested (returns `true`).
fn wait_for_line(vcpu: &Vcpu, pic: &UserPic) -> bool {
    const POLL: std::time::Duration = std::time::Duration::from_millis(5);
    loop {
        if vcpu.stop_handle_ref().stop_requested() {
            return true;
        }
        if pic.wait_pending(POLL) {
            return false;
        }
    }
}

/// At `KVM_EXIT_HLT`: the end of the run, unless rawkvm's exception stub halted to report a
/// CPU exception (x86 `--mode long|user`), which is a guest fault.
#[cfg(target_arch = "x86_64")]
fn halted(vcpu: &Vcpu) -> Result<Outcome, Error> {
    crate::arch::x86_64::exception::check_halt(vcpu).map(|()| Outcome::Halted)
}

/// Elsewhere a halt always ends the run.
#[cfg(not(target_arch = "x86_64"))]
fn halted(_vcpu: &Vcpu) -> Result<Outcome, Error> {
    Ok(Outcome::Halted)
}

/// At `KVM_EXIT_IRQ_WINDOW_OPEN`: injects the vector queued with
/// [`Vcpu::queue_interrupt`] (`KVM_INTERRUPT`), and stops asking for the window once nothing
/// is queued.
#[cfg(target_arch = "x86_64")]
fn deliver_queued_interrupt<O: Observer + ?Sized>(
    vcpu: &mut Vcpu,
    observer: &mut O,
) -> Result<(), Error> {
    if let Some(vector) = vcpu.deliver_queued_interrupt()? {
        observer.injected(vcpu.id(), vector);
    }
    Ok(())
}

/// Only x86 injects interrupts with `KVM_INTERRUPT` from this loop.
#[cfg(not(target_arch = "x86_64"))]
fn deliver_queued_interrupt<O: Observer + ?Sized>(
    _vcpu: &mut Vcpu,
    _observer: &mut O,
) -> Result<(), Error> {
    Ok(())
}
