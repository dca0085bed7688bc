//! The rest of an x86 machine's state, beyond the registers: what a snapshot saves.
//!
//! ```text
//! ioctl(vcpu, KVM_GET_XSAVE, &xsave)          x87, SSE, AVX...: the standard XSAVE image
//! ioctl(vcpu, KVM_GET_XCRS, &xcrs)            XCR0
//! ioctl(vcpu, KVM_GET_LAPIC, &lapic)          the in-kernel local APIC (ENXIO: none)
//! ioctl(vcpu, KVM_GET_VCPU_EVENTS, &events)   pending exceptions, interrupts, NMIs
//! ioctl(vcpu, KVM_GET_MP_STATE, &mp)          runnable, halted, waiting for SIPI
//! ioctl(vcpu, KVM_GET_DEBUGREGS, &dregs)      DR0-3, DR6, DR7
//! ioctl(vm, KVM_GET_IRQCHIP, &{ chip_id })    PIC master, slave, IOAPIC (ENXIO: none)
//! ioctl(vm, KVM_GET_PIT2, &pit)               the in-kernel PIT (ENXIO: none)
//! ioctl(vm, KVM_GET_CLOCK, &clock)            the kvmclock
//! ```
//!
//! and each one's `KVM_SET_*`. Pieces that exist only with an in-kernel device come back as
//! `None` when the kernel says there is none (`ENXIO`; `EINVAL` for the local APIC).

use nix::errno::Errno;
use rawkvm_bindings::{
    self as abi, kvm_clock_data, kvm_debugregs, kvm_irqchip, kvm_lapic_state, kvm_mp_state,
    kvm_pit_state2, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};

use super::{get, set};
use crate::error::Error;
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::Vm;
use crate::sys::ioctl::{Ioctl, Reads, Writes, vcpu as vcpu_ioctls};
use crate::sys::state::{self, PlainData};

/// `Ok(None)` when the kernel answers `absent` (the VM has no such in-kernel device), the
/// value otherwise.
fn unless_absent<T>(result: Result<T, Error>, absent: Errno) -> Result<Option<T>, Error> {
    match result {
        Err(Error::Ioctl { errno, .. }) if errno == absent => Ok(None),
        other => other.map(Some),
    }
}

impl Vcpu {
    /// `ioctl(vcpu, KVM_GET_XSAVE, &xsave)`.
    pub fn xsave(&self) -> Result<Box<kvm_xsave>, Error> {
        get(self, &state::vcpu::GET_XSAVE).map(Box::new)
    }

    /// `ioctl(vcpu, KVM_SET_XSAVE, &xsave)`: also how x87/SSE state is restored (on kvm_pvm
    /// `KVM_SET_FPU` on a fresh vCPU is lost).
    pub fn set_xsave(&self, xsave: &kvm_xsave) -> Result<(), Error> {
        set(self, &state::vcpu::SET_XSAVE, xsave)
    }

    /// `ioctl(vcpu, KVM_GET_XCRS, &xcrs)`.
    pub fn xcrs(&self) -> Result<kvm_xcrs, Error> {
        get(self, &state::vcpu::GET_XCRS)
    }

    /// `ioctl(vcpu, KVM_SET_XCRS, &xcrs)`.
    pub fn set_xcrs(&self, xcrs: &kvm_xcrs) -> Result<(), Error> {
        set(self, &state::vcpu::SET_XCRS, xcrs)
    }

    /// `ioctl(vcpu, KVM_GET_LAPIC, &lapic)`; `None` without an in-kernel local APIC (the
    /// kernel says `EINVAL` then).
    pub fn lapic(&self) -> Result<Option<Box<kvm_lapic_state>>, Error> {
        unless_absent(
            get(self, &state::vcpu::GET_LAPIC).map(Box::new),
            Errno::EINVAL,
        )
    }

    /// `ioctl(vcpu, KVM_SET_LAPIC, &lapic)`.
    pub fn set_lapic(&self, lapic: &kvm_lapic_state) -> Result<(), Error> {
        set(self, &state::vcpu::SET_LAPIC, lapic)
    }

    /// `ioctl(vcpu, KVM_SET_VCPU_EVENTS, &events)`.
    pub fn set_events(&self, events: &kvm_vcpu_events) -> Result<(), Error> {
        set(self, &vcpu_ioctls::SET_VCPU_EVENTS, events)
    }

    /// `ioctl(vcpu, KVM_GET_MP_STATE, &mp_state)`.
    pub fn mp_state(&self) -> Result<kvm_mp_state, Error> {
        get(self, &state::vcpu::GET_MP_STATE)
    }

    /// `ioctl(vcpu, KVM_SET_MP_STATE, &mp_state)`.
    pub fn set_mp_state(&self, mp_state: &kvm_mp_state) -> Result<(), Error> {
        set(self, &state::vcpu::SET_MP_STATE, mp_state)
    }

    /// `ioctl(vcpu, KVM_GET_DEBUGREGS, &debugregs)`.
    pub fn debugregs(&self) -> Result<kvm_debugregs, Error> {
        get(self, &state::vcpu::GET_DEBUGREGS)
    }

    /// `ioctl(vcpu, KVM_SET_DEBUGREGS, &debugregs)`.
    pub fn set_debugregs(&self, debugregs: &kvm_debugregs) -> Result<(), Error> {
        set(self, &state::vcpu::SET_DEBUGREGS, debugregs)
    }
}

/// `ioctl(vm, GET, &mut value)`.
fn vm_get<T: PlainData>(vm: &Vm, ioctl: &Ioctl<Writes<T>>) -> Result<T, Error> {
    let mut value = T::ZERO;
    ioctl
        .call(vm.fd(), &mut value)
        .map_err(|errno| Error::Ioctl {
            ioctl: ioctl.name,
            errno,
        })?;
    Ok(value)
}

/// `ioctl(vm, SET, &value)`.
fn vm_set<T: PlainData>(vm: &Vm, ioctl: &Ioctl<Reads<T>>, value: &T) -> Result<(), Error> {
    ioctl
        .call(vm.fd(), value)
        .map(drop)
        .map_err(|errno| Error::Ioctl {
            ioctl: ioctl.name,
            errno,
        })
}

impl Vm {
    /// `ioctl(vm, KVM_GET_IRQCHIP, &{ chip_id })`: one of the in-kernel interrupt controllers
    /// (`KVM_IRQCHIP_PIC_MASTER`, `_PIC_SLAVE`, `_IOAPIC`); `None` without an in-kernel
    /// irqchip.
    pub fn irqchip(&self, chip_id: u32) -> Result<Option<kvm_irqchip>, Error> {
        let mut chip = kvm_irqchip {
            chip_id,
            ..Default::default()
        };
        let ioctl = &state::vm::GET_IRQCHIP;
        let got = ioctl
            .call(self.fd(), &mut chip)
            .map_err(|errno| Error::Ioctl {
                ioctl: ioctl.name,
                errno,
            });
        unless_absent(got.map(|_| chip), Errno::ENXIO)
    }

    /// `ioctl(vm, KVM_SET_IRQCHIP, &chip)`.
    pub fn set_irqchip(&self, chip: &kvm_irqchip) -> Result<(), Error> {
        vm_set(self, &state::vm::SET_IRQCHIP, chip)
    }

    /// `ioctl(vm, KVM_GET_PIT2, &pit)`; `None` without an in-kernel PIT.
    pub fn pit(&self) -> Result<Option<kvm_pit_state2>, Error> {
        unless_absent(vm_get(self, &state::vm::GET_PIT2), Errno::ENXIO)
    }

    /// `ioctl(vm, KVM_SET_PIT2, &pit)`.
    pub fn set_pit(&self, pit: &kvm_pit_state2) -> Result<(), Error> {
        vm_set(self, &state::vm::SET_PIT2, pit)
    }

    /// `ioctl(vm, KVM_GET_CLOCK, &clock)`.
    pub fn clock(&self) -> Result<kvm_clock_data, Error> {
        vm_get(self, &state::vm::GET_CLOCK)
    }

    /// `ioctl(vm, KVM_SET_CLOCK, &clock)` with `flags` 0: the guest clock reads `clock.clock`
    /// from now on, as if it had been paused meanwhile (with `KVM_CLOCK_REALTIME` the kernel
    /// would add the host time that passed since `clock.realtime`).
    pub fn set_clock(&self, clock: &kvm_clock_data) -> Result<(), Error> {
        let clock = kvm_clock_data { flags: 0, ..*clock };
        vm_set(self, &state::vm::SET_CLOCK, &clock)
    }

    /// The XSAVE area's size (`KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2)`), or 4096 when the kernel
    /// does not say.
    pub fn xsave_size(&self) -> usize {
        match usize::try_from(self.check_extension(abi::KVM_CAP_XSAVE2)) {
            Ok(size) if size > 0 => size,
            _ => size_of::<kvm_xsave>(),
        }
    }
}
