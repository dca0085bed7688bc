//! The VM's interrupt controllers, lines and eventfds.
//!
//! ```text
//! ioctl(vm, KVM_CREATE_IRQCHIP, 0)                 before the first KVM_CREATE_VCPU
//! ioctl(vm, KVM_CREATE_PIT2, &{ flags })           x86, after the irqchip
//! ioctl(vm, KVM_SET_GSI_ROUTING, &{ nr, entries }) the whole table at once
//! ioctl(vm, KVM_IRQ_LINE, &{ irq: gsi, level })    raise (1) or lower (0) a line
//! efd = eventfd(0, EFD_CLOEXEC)
//! ioctl(vm, KVM_IRQFD, &{ fd: efd, gsi })          write(efd, 1) raises the GSI, no ioctl
//! ioctl(vm, KVM_IOEVENTFD, &{ datamatch, addr, len, fd, flags })
//!                                                  a guest write there signals fd, no exit
//! ```
//!
//! The ordering rules of api.rst are checked before the kernel is asked ([`IrqError`]): the
//! irqchip before any vCPU and only once, the PIT only after the irqchip, lines only with an
//! irqchip, and (in [`crate::kvm::vcpu::Vcpu::interrupt`]) `KVM_INTERRUPT` only without one.
//! Whatever the kernel still refuses is [`IrqError::Kernel`], its errno explained.

use std::os::fd::{AsFd, AsRawFd};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use nix::errno::Errno;
use nix::sys::eventfd::{EfdFlags, EventFd};
use rawkvm_bindings as abi;

use crate::error::{Error, IrqError};
use crate::kvm::vm::{IrqState, Vm};
use crate::sys::ioctl::{FlexArray, FlexError, VmFd, vm};

/// GSIs the kernel routes once `KVM_CREATE_IRQCHIP` has made its default table (x86: the 24
/// IOAPIC pins, the first 16 also on the PICs).
pub const DEFAULT_GSIS: u32 = 24;

/// One route of the GSI routing table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GsiRoute {
    /// The GSI drives `pin` of the in-kernel controller `chip` (x86:
    /// `KVM_IRQCHIP_PIC_MASTER`, `_PIC_SLAVE`, `_IOAPIC`).
    Irqchip {
        /// The GSI.
        gsi: u32,
        /// The controller.
        chip: u32,
        /// Its pin.
        pin: u32,
    },
    /// The GSI sends a message-signalled interrupt.
    Msi {
        /// The GSI.
        gsi: u32,
        /// The message address (x86: `0xFEE0_0000 | destination << 12`).
        address: u64,
        /// The message data (x86: the vector, delivery mode fixed).
        data: u32,
    },
}

impl GsiRoute {
    /// The GSI this route is for.
    pub fn gsi(&self) -> u32 {
        match *self {
            GsiRoute::Irqchip { gsi, .. } | GsiRoute::Msi { gsi, .. } => gsi,
        }
    }

    fn entry(&self) -> abi::kvm_irq_routing_entry {
        let mut entry = abi::kvm_irq_routing_entry {
            gsi: self.gsi(),
            ..Default::default()
        };
        match *self {
            GsiRoute::Irqchip { chip, pin, .. } => {
                entry.type_ = abi::KVM_IRQ_ROUTING_IRQCHIP;
                entry.u.irqchip = abi::kvm_irq_routing_irqchip { irqchip: chip, pin };
            }
            GsiRoute::Msi { address, data, .. } => {
                entry.type_ = abi::KVM_IRQ_ROUTING_MSI;
                entry.u.msi = abi::kvm_irq_routing_msi {
                    address_lo: address as u32,
                    address_hi: (address >> 32) as u32,
                    data,
                    devid: 0,
                };
            }
        }
        entry
    }
}

impl Vm {
    fn irq(&self) -> &IrqState {
        &self.irq
    }

    /// Whether this VM has an in-kernel irqchip (`KVM_CREATE_IRQCHIP` succeeded).
    pub fn has_irqchip(&self) -> bool {
        self.irq().irqchip.load(Ordering::SeqCst)
    }

    /// `ioctl(vm, KVM_CREATE_IRQCHIP, 0)`: the in-kernel PIC, IOAPIC and (per vCPU) local APIC,
    /// with the kernel's default routing of GSIs 0..24. Refused before any vCPU exists or twice.
    /// From then on `hlt` waits in the kernel for an interrupt: no `KVM_EXIT_HLT`.
    pub fn create_irqchip(&self) -> Result<(), Error> {
        let state = self.irq();
        if state.irqchip.load(Ordering::SeqCst) {
            return Err(IrqError::IrqchipExists.into());
        }
        let vcpus = state.vcpus.load(Ordering::SeqCst);
        if vcpus > 0 {
            return Err(IrqError::IrqchipAfterVcpu { vcpus }.into());
        }
        kernel(
            vm::CREATE_IRQCHIP.name,
            vm::CREATE_IRQCHIP.call(self.irq_fd().fd()),
        )?;
        state.irqchip.store(true, Ordering::SeqCst);
        state.gsi_limit.store(DEFAULT_GSIS, Ordering::SeqCst);
        Ok(())
    }

    /// `ioctl(vm, KVM_CREATE_PIT2, &{ flags })`: the in-kernel 8254 on ports 0x40-0x43, its
    /// channel 0 raising GSI 0. Only after the irqchip, and once.
    #[cfg(target_arch = "x86_64")]
    pub fn create_pit2(&self, flags: u32) -> Result<(), Error> {
        let state = self.irq();
        if !self.has_irqchip() {
            return Err(IrqError::PitWithoutIrqchip.into());
        }
        if state.pit.load(Ordering::SeqCst) {
            return Err(IrqError::PitExists.into());
        }
        let config = abi::kvm_pit_config {
            flags,
            ..Default::default()
        };
        let ioctl = &vm::CREATE_PIT2;
        kernel(ioctl.name, ioctl.call(self.irq_fd().fd(), &config))?;
        state.pit.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// `ioctl(vm, KVM_SET_GSI_ROUTING, &{ nr, entries })`: replaces the whole routing table.
    pub fn set_gsi_routing(&self, routes: &[GsiRoute]) -> Result<(), Error> {
        const NAME: &str = "KVM_SET_GSI_ROUTING";
        self.require_irqchip(NAME)?;
        let entries: Vec<_> = routes.iter().map(GsiRoute::entry).collect();
        let table = FlexArray::from_entries(abi::kvm_irq_routing::default(), &entries);
        vm::SET_GSI_ROUTING
            .call(self.irq_fd().fd(), &table)
            .map_err(|error| match error {
                FlexError::Kernel(errno) => IrqError::from_kernel(NAME, errno),
                // `from_entries` sets `nr` to the entries it holds; only a table of 2^32
                // entries could differ.
                FlexError::CountTooLarge { .. } => IrqError::Kernel {
                    ioctl: NAME,
                    errno: Errno::E2BIG,
                },
            })?;
        let limit = routes.iter().map(|r| r.gsi() + 1).max().unwrap_or(0);
        self.irq().gsi_limit.store(limit, Ordering::SeqCst);
        Ok(())
    }

    /// `ioctl(vm, KVM_IRQ_LINE, &{ irq: gsi, level })`: raises (`true`) or lowers a line of the
    /// in-kernel irqchip. An edge is a raise then a lower.
    pub fn irq_line(&self, gsi: u32, level: bool) -> Result<(), Error> {
        self.irq_lines()?.set(gsi, level)
    }

    /// A handle a device thread keeps to raise and lower lines ([`IrqLines::set`]), once the
    /// VM has an irqchip.
    pub fn irq_lines(&self) -> Result<IrqLines, Error> {
        self.require_irqchip("KVM_IRQ_LINE")?;
        Ok(IrqLines {
            vm: Arc::clone(self.irq_fd()),
            gsi_limit: self.irq().gsi_limit.load(Ordering::SeqCst),
            observer: None,
        })
    }

    /// `efd = eventfd(0, EFD_CLOEXEC)`, `ioctl(vm, KVM_IRQFD, &{ fd: efd, gsi })`: from now on
    /// [`IrqFd::trigger`] (a `write` of 1 to the eventfd) raises `gsi` inside the kernel,
    /// from any thread or process, with no ioctl. Dropping the [`IrqFd`] deassigns it.
    pub fn irqfd(&self, gsi: u32) -> Result<IrqFd, Error> {
        const NAME: &str = "KVM_IRQFD";
        self.require_irqchip(NAME)?;
        self.check_gsi(gsi)?;
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC).map_err(IrqError::Eventfd)?;
        let request = irqfd_request(&eventfd, gsi, 0);
        kernel(NAME, vm::IRQFD.call(self.irq_fd().fd(), &request))?;
        Ok(IrqFd {
            vm: Arc::clone(self.irq_fd()),
            eventfd,
            gsi,
            observer: None,
        })
    }

    /// `ioctl(vm, KVM_IOEVENTFD, ...)`: a guest write matching `doorbell` signals an eventfd
    /// in the kernel and the guest goes on, with no exit to user space. A device asks for this
    /// when it needs to know *that* the guest wrote, not to answer it at once ("notify me,
    /// don't stop the guest"). Dropping the [`IoEventFd`] deassigns it.
    pub fn ioeventfd(&self, doorbell: Doorbell) -> Result<IoEventFd, Error> {
        if !matches!(doorbell.len, 0 | 1 | 2 | 4 | 8) {
            return Err(IrqError::DoorbellWidth { len: doorbell.len }.into());
        }
        if doorbell.len == 0 && doorbell.datamatch.is_some() {
            return Err(IrqError::DoorbellAnyWidthMatch.into());
        }
        let eventfd = EventFd::from_flags(EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(IrqError::Eventfd)?;
        let request = doorbell.request(&eventfd, 0);
        kernel(
            "KVM_IOEVENTFD",
            vm::IOEVENTFD.call(self.irq_fd().fd(), &request),
        )?;
        Ok(IoEventFd {
            vm: Arc::clone(self.irq_fd()),
            eventfd,
            doorbell,
        })
    }

    fn require_irqchip(&self, ioctl: &'static str) -> Result<(), IrqError> {
        if self.has_irqchip() {
            Ok(())
        } else {
            Err(IrqError::NoIrqchip { ioctl })
        }
    }

    fn check_gsi(&self, gsi: u32) -> Result<(), IrqError> {
        check_gsi(gsi, self.irq().gsi_limit.load(Ordering::SeqCst))
    }
}

fn check_gsi(gsi: u32, limit: u32) -> Result<(), IrqError> {
    if gsi < limit {
        Ok(())
    } else {
        Err(IrqError::GsiOutOfRange { gsi, limit })
    }
}

/// The kernel's answer to an interrupt ioctl, its refusal mapped to a rule.
fn kernel<T>(ioctl: &'static str, result: Result<T, Errno>) -> Result<T, IrqError> {
    result.map_err(|errno| IrqError::from_kernel(ioctl, errno))
}

fn irqfd_request(eventfd: &EventFd, gsi: u32, flags: u32) -> abi::kvm_irqfd {
    abi::kvm_irqfd {
        fd: eventfd.as_fd().as_raw_fd() as u32,
        gsi,
        flags,
        ..Default::default()
    }
}

/// A line a device set, for a trace ([`LineObserver`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineEvent {
    /// `KVM_IRQ_LINE` of `gsi` to `level`.
    Level {
        /// The GSI.
        gsi: u32,
        /// Raised (`true`) or lowered.
        level: bool,
    },
    /// A write to an irqfd's eventfd: an edge on `gsi`, raised in the kernel.
    Irqfd {
        /// The GSI.
        gsi: u32,
    },
}

/// Told of every line an [`IrqLines`] or [`IrqFd`] sets, from whichever thread sets it (the
/// trace's watcher implements it).
pub trait LineObserver: Send + Sync {
    /// `event` was just made.
    fn line(&self, event: LineEvent);
}

/// Raises and lowers lines of a VM's in-kernel irqchip from any thread (`KVM_IRQ_LINE`).
#[derive(Clone)]
pub struct IrqLines {
    vm: Arc<VmFd>,
    gsi_limit: u32,
    observer: Option<Arc<dyn LineObserver>>,
}

impl std::fmt::Debug for IrqLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqLines")
            .field("vm", &self.vm)
            .field("gsi_limit", &self.gsi_limit)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl IrqLines {
    /// The same lines, each `KVM_IRQ_LINE` also told to `observer` (a trace).
    pub fn observed(self, observer: Arc<dyn LineObserver>) -> IrqLines {
        IrqLines {
            observer: Some(observer),
            ..self
        }
    }

    /// `ioctl(vm, KVM_IRQ_LINE, &{ irq: gsi, level })`.
    pub fn set(&self, gsi: u32, level: bool) -> Result<(), Error> {
        check_gsi(gsi, self.gsi_limit)?;
        let request = abi::kvm_irq_level {
            irq: gsi,
            level: u32::from(level),
        };
        kernel("KVM_IRQ_LINE", vm::IRQ_LINE.call(self.vm.fd(), &request))?;
        if let Some(observer) = &self.observer {
            observer.line(LineEvent::Level { gsi, level });
        }
        Ok(())
    }

    /// An edge on `gsi`: raise, then lower (what an ISA device's pulse looks like to the PIC).
    pub fn pulse(&self, gsi: u32) -> Result<(), Error> {
        self.set(gsi, true)?;
        self.set(gsi, false)
    }
}

/// An eventfd wired to a GSI with `KVM_IRQFD`; deassigned when dropped.
pub struct IrqFd {
    vm: Arc<VmFd>,
    eventfd: EventFd,
    gsi: u32,
    observer: Option<Arc<dyn LineObserver>>,
}

impl std::fmt::Debug for IrqFd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IrqFd")
            .field("eventfd", &self.eventfd)
            .field("gsi", &self.gsi)
            .field("observed", &self.observer.is_some())
            .finish()
    }
}

impl IrqFd {
    /// The same irqfd, each trigger also told to `observer` (a trace).
    pub fn observed(mut self, observer: Arc<dyn LineObserver>) -> IrqFd {
        self.observer = Some(observer);
        self
    }

    /// `write(efd, 1)`: the kernel raises the GSI (an edge) with no ioctl.
    pub fn trigger(&self) -> Result<(), Error> {
        self.eventfd
            .write(1)
            .map_err(|errno| Error::from(IrqError::Eventfd(errno)))?;
        if let Some(observer) = &self.observer {
            observer.line(LineEvent::Irqfd { gsi: self.gsi });
        }
        Ok(())
    }

    /// The GSI it raises.
    pub fn gsi(&self) -> u32 {
        self.gsi
    }
}

impl Drop for IrqFd {
    fn drop(&mut self) {
        let request = irqfd_request(&self.eventfd, self.gsi, abi::KVM_IRQFD_FLAG_DEASSIGN);
        // Nothing to do if it fails: closing the VM releases the assignment too.
        let _ = vm::IRQFD.call(self.vm.fd(), &request);
    }
}

/// The bus a [`Doorbell`] is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// I/O ports (`out`): `KVM_IOEVENTFD_FLAG_PIO`.
    Pio,
    /// Guest physical addresses (a store no memory slot backs).
    Mmio,
}

/// Which guest writes an [`IoEventFd`] catches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Doorbell {
    /// Ports or guest physical addresses.
    pub bus: Bus,
    /// The port or address.
    pub addr: u64,
    /// The write's width: 1, 2, 4 or 8, or 0 for any width (`KVM_CAP_IOEVENTFD_ANY_LENGTH`).
    pub len: u32,
    /// Catch only writes of this value (`KVM_IOEVENTFD_FLAG_DATAMATCH`); others exit as usual.
    pub datamatch: Option<u64>,
}

impl Doorbell {
    fn request(&self, eventfd: &EventFd, extra_flags: u32) -> abi::kvm_ioeventfd {
        let mut flags = extra_flags;
        if self.bus == Bus::Pio {
            flags |= abi::KVM_IOEVENTFD_FLAG_PIO;
        }
        if self.datamatch.is_some() {
            flags |= abi::KVM_IOEVENTFD_FLAG_DATAMATCH;
        }
        abi::kvm_ioeventfd {
            datamatch: self.datamatch.unwrap_or(0),
            addr: self.addr,
            len: self.len,
            fd: eventfd.as_fd().as_raw_fd(),
            flags,
            ..Default::default()
        }
    }
}

/// An eventfd the kernel signals on each guest write matching a [`Doorbell`]; deassigned when
/// dropped.
#[derive(Debug)]
pub struct IoEventFd {
    vm: Arc<VmFd>,
    eventfd: EventFd,
    doorbell: Doorbell,
}

impl IoEventFd {
    /// `read(efd)`: the writes caught since the last call (0 if none; never blocks).
    pub fn take_count(&self) -> Result<u64, Error> {
        match self.eventfd.read() {
            Ok(count) => Ok(count),
            Err(Errno::EAGAIN) => Ok(0),
            Err(errno) => Err(IrqError::Eventfd(errno).into()),
        }
    }

    /// What it catches.
    pub fn doorbell(&self) -> Doorbell {
        self.doorbell
    }
}

impl Drop for IoEventFd {
    fn drop(&mut self) {
        let request = self
            .doorbell
            .request(&self.eventfd, abi::KVM_IOEVENTFD_FLAG_DEASSIGN);
        // Nothing to do if it fails: closing the VM releases the assignment too.
        let _ = vm::IOEVENTFD.call(self.vm.fd(), &request);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvm::Kvm;

    /// What the kernel itself says when rawkvm's checks are bypassed: the errnos of the
    /// ordering rules (HOST-NOTES, "Interrupts and exit-free I/O"), each explained by name.
    #[test]
    #[cfg_attr(miri, ignore)]
    fn the_kernel_enforces_the_same_ordering_rules() {
        if !std::path::Path::new(crate::kvm::DEFAULT_DEVICE).exists() {
            println!("SKIPPED: /dev/kvm unavailable (the_kernel_enforces_the_same_ordering_rules)");
            return;
        }
        let kvm = Kvm::open().unwrap();
        let explained = |ioctl, errno: Errno| IrqError::from_kernel(ioctl, errno).to_string();
        // Without an irqchip: KVM_IRQ_LINE is ENXIO, KVM_CREATE_PIT2 ENOENT.
        let vm = kvm.create_vm().unwrap();
        let fd = vm.irq_fd().fd();
        let line = abi::kvm_irq_level { irq: 3, level: 1 };
        assert_eq!(vm::IRQ_LINE.call(fd, &line), Err(Errno::ENXIO));
        assert!(explained("KVM_IRQ_LINE", Errno::ENXIO).ends_with("KVM_CREATE_IRQCHIP first)"));
        #[cfg(target_arch = "x86_64")]
        assert_eq!(
            vm::CREATE_PIT2.call(fd, &abi::kvm_pit_config::default()),
            Err(Errno::ENOENT)
        );
        // After a vCPU: KVM_CREATE_IRQCHIP is EINVAL.
        let _vcpu = vm.create_vcpu(0).unwrap();
        assert_eq!(vm::CREATE_IRQCHIP.call(fd), Err(Errno::EINVAL));
        assert!(
            explained("KVM_CREATE_IRQCHIP", Errno::EINVAL)
                .contains("create the irqchip before the first KVM_CREATE_VCPU")
        );
        // Twice: EEXIST. With the chip, KVM_INTERRUPT is ENXIO.
        let vm = kvm.create_vm().unwrap();
        let fd = vm.irq_fd().fd();
        assert_eq!(vm::CREATE_IRQCHIP.call(fd), Ok(0));
        assert_eq!(vm::CREATE_IRQCHIP.call(fd), Err(Errno::EEXIST));
        #[cfg(target_arch = "x86_64")]
        {
            let mut vcpu = vm.create_vcpu(0).unwrap();
            vcpu.in_kernel_irqchip = false; // bypass the check, to hear the kernel
            let refused = vcpu.interrupt(0x20).unwrap_err();
            assert_eq!(
                refused.to_string(),
                "KVM_INTERRUPT failed: ENXIO (No such device or address) (the VM has an \
                 in-kernel irqchip, which injects by itself; raise a line with KVM_IRQ_LINE \
                 instead)"
            );
        }
    }
}
