//! Registers read and written in place, in `kvm_run->s.regs` (`KVM_CAP_SYNC_REGS`, x86).
//!
//! ```text
//! ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_SYNC_REGS)   the sets s.regs can carry (7 here:
//!                                                     regs, sregs, events)
//! run->kvm_valid_regs = REGS | ...    every KVM_RUN stores those sets in run->s.regs on the
//!                                     way out (exits and EINTR alike)
//! read run->s.regs.regs               instead of ioctl(vcpu, KVM_GET_REGS)
//! run->s.regs.regs = ...              instead of ioctl(vcpu, KVM_SET_REGS): the next KVM_RUN
//! run->kvm_dirty_regs |= REGS         loads the set and clears its bit
//! ```
//!
//! A `KVM_GET_REGS` or `KVM_SET_SREGS` costs a system call each, a large share of an exit on
//! this project's PVM hosts (`docs/BACKEND.md`, "Measured costs"); through the page they cost
//! a copy. Storing the sets on every exit is not free for the kernel either, so
//! `kvm_valid_regs` stays 0 unless someone asks: the plain run loop never pays for it
//! (`rawkvm bench pio --variant valid-regs` measures what it costs).
//!
//! [`Registers`] is the view that picks the cheap path: it reads a set from the page when the
//! page holds its current value (the set is in `kvm_valid_regs`, or written in place and not
//! yet loaded), and writes in place whenever the kernel can sync that set; otherwise it falls
//! back to the ioctls.

use bitflags::bitflags;
use rawkvm_bindings::{self as abi, kvm_regs, kvm_sregs, kvm_vcpu_events};

use crate::error::Error;
use crate::kvm::vcpu::Vcpu;
use crate::sys::ioctl::vcpu as vcpu_ioctls;
use crate::sys::run_page::{Field, Scalar, sync_regs};

bitflags! {
    /// Register sets `kvm_run.s.regs` carries (`KVM_SYNC_X86_*`).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
    pub struct SyncRegs: u64 {
        /// `s.regs.regs`: general registers, RIP, RFLAGS (`kvm_regs`).
        const REGS = abi::KVM_SYNC_X86_REGS;
        /// `s.regs.sregs`: segment, control and descriptor-table registers (`kvm_sregs`).
        const SREGS = abi::KVM_SYNC_X86_SREGS;
        /// `s.regs.events`: pending exceptions, interrupts, NMI (`kvm_vcpu_events`).
        const EVENTS = abi::KVM_SYNC_X86_EVENTS;
    }
}

/// A register set that can travel through `kvm_run.s.regs` or through its ioctls:
/// `kvm_regs`, `kvm_sregs`, `kvm_vcpu_events`.
pub trait SyncedSet: Copy + Default + Scalar + sealed::ByIoctl {
    /// Its `KVM_SYNC_X86_*` bit.
    const SET: SyncRegs;
    /// Where it sits in `kvm_run`.
    const FIELD: Field<Self>;
}

mod sealed {
    use super::*;
    use crate::arch::x86_64::{get, set};

    /// The ioctls that move a set when the page cannot (and seal [`SyncedSet`]).
    pub trait ByIoctl: Sized {
        /// `ioctl(vcpu, KVM_GET_*, &value)`.
        fn get_by_ioctl(vcpu: &Vcpu) -> Result<Self, Error>;
        /// `ioctl(vcpu, KVM_SET_*, &value)`.
        fn set_by_ioctl(vcpu: &Vcpu, value: &Self) -> Result<(), Error>;
    }

    macro_rules! by_ioctl {
        ($($set:ty => $get_ioctl:ident, $set_ioctl:ident;)*) => {$(
            impl ByIoctl for $set {
                fn get_by_ioctl(vcpu: &Vcpu) -> Result<Self, Error> {
                    get(vcpu, &vcpu_ioctls::$get_ioctl)
                }
                fn set_by_ioctl(vcpu: &Vcpu, value: &Self) -> Result<(), Error> {
                    set(vcpu, &vcpu_ioctls::$set_ioctl, value)
                }
            }
        )*};
    }
    by_ioctl! {
        kvm_regs => GET_REGS, SET_REGS;
        kvm_sregs => GET_SREGS, SET_SREGS;
        kvm_vcpu_events => GET_VCPU_EVENTS, SET_VCPU_EVENTS;
    }
}

impl SyncedSet for kvm_regs {
    const SET: SyncRegs = SyncRegs::REGS;
    const FIELD: Field<Self> = sync_regs::REGS;
}

impl SyncedSet for kvm_sregs {
    const SET: SyncRegs = SyncRegs::SREGS;
    const FIELD: Field<Self> = sync_regs::SREGS;
}

impl SyncedSet for kvm_vcpu_events {
    const SET: SyncRegs = SyncRegs::EVENTS;
    const FIELD: Field<Self> = sync_regs::EVENTS;
}

impl Vcpu {
    /// `KVM_CHECK_EXTENSION(KVM_CAP_SYNC_REGS)` on this vCPU's VM: the sets the page can carry.
    /// Asked once per VM.
    pub fn supported_sync_regs(&self) -> SyncRegs {
        SyncRegs::from_bits_truncate(self.sync_regs_supported())
    }

    /// The sets the kernel stores in the page at every exit (`kvm_run.kvm_valid_regs`).
    pub fn sync_regs_enabled(&mut self) -> SyncRegs {
        let page = self.run_page();
        SyncRegs::from_bits_truncate(page.get(sync_regs::VALID_REGS))
    }

    /// Sets `kvm_run.kvm_valid_regs` to `sets`: from the next `KVM_RUN` on, the kernel stores
    /// them in the page at every exit, and [`Registers`] reads them there. Sets newly enabled
    /// are copied into the page at once (by their ioctls), so reads are right before the next
    /// run too. Fails, changing nothing, if the kernel cannot sync one of them.
    pub fn enable_sync_regs(&mut self, sets: SyncRegs) -> Result<(), Error> {
        if !self.supported_sync_regs().contains(sets) {
            return Err(Error::MissingCapability {
                capability: "KVM_CAP_SYNC_REGS",
                needed_for: "reading registers in place (kvm_run.kvm_valid_regs)",
            });
        }
        let (valid, dirty) = {
            let page = self.run_page();
            (
                page.get(sync_regs::VALID_REGS),
                page.get(sync_regs::DIRTY_REGS),
            )
        };
        // A set already valid, or written in place and not yet loaded, is current already.
        let stale = sets - SyncRegs::from_bits_truncate(valid | dirty);
        self.refresh::<kvm_regs>(stale)?;
        self.refresh::<kvm_sregs>(stale)?;
        self.refresh::<kvm_vcpu_events>(stale)?;
        self.run_page().set(sync_regs::VALID_REGS, sets.bits());
        Ok(())
    }

    /// Copies set `T` into the page by its ioctl if `stale` has it.
    fn refresh<T: SyncedSet>(&mut self, stale: SyncRegs) -> Result<(), Error> {
        if stale.contains(T::SET) {
            let value = T::get_by_ioctl(self)?;
            self.run_page().set(T::FIELD, value);
        }
        Ok(())
    }

    /// The registers, through the page where it can and the ioctls where it must.
    pub fn registers(&mut self) -> Registers<'_> {
        let supported = self.supported_sync_regs();
        Registers {
            vcpu: self,
            supported,
        }
    }
}

/// Register access between two runs of a vCPU: in place in `kvm_run.s.regs` where possible.
///
/// Reads come from the page when it holds the set's current value: the set is in
/// `kvm_valid_regs` (the kernel stored it at the last exit), or was written in place and not
/// yet loaded. Writes go to the page, marking `kvm_dirty_regs`, whenever the kernel can sync
/// the set; the next `KVM_RUN` loads them. Everything else uses the ioctls.
///
/// Mixing paths: the ioctls on [`Vcpu`] (`regs`, `set_regs`, ...) do not see writes made here
/// until the next `KVM_RUN` has loaded them, and a write made through them is not seen here
/// while the page holds an older copy of the same set. Use one path per set between runs.
#[derive(Debug)]
pub struct Registers<'a> {
    vcpu: &'a mut Vcpu,
    supported: SyncRegs,
}

impl Registers<'_> {
    /// Whether the page holds the current value of `set`.
    fn current_in_page(&mut self, set: SyncRegs) -> bool {
        let page = self.vcpu.run_page();
        let fresh = page.get(sync_regs::VALID_REGS) | page.get(sync_regs::DIRTY_REGS);
        fresh & set.bits() != 0
    }

    /// Reads set `T`: from the page if current there, else by its ioctl.
    pub fn get<T: SyncedSet>(&mut self) -> Result<T, Error> {
        if self.current_in_page(T::SET) {
            Ok(self.vcpu.run_page().get(T::FIELD))
        } else {
            T::get_by_ioctl(self.vcpu)
        }
    }

    /// Writes set `T`: in place with its `kvm_dirty_regs` bit if the kernel can sync it (no
    /// system call; applied by the next `KVM_RUN`), else by its ioctl (applied now).
    pub fn set<T: SyncedSet>(&mut self, value: &T) -> Result<(), Error> {
        if self.supported.contains(T::SET) {
            self.set_in_place(value);
            Ok(())
        } else {
            T::set_by_ioctl(self.vcpu, value)
        }
    }

    /// Writes set `T` in place and marks it dirty; the caller knows the kernel syncs it.
    pub(crate) fn set_in_place<T: SyncedSet>(&mut self, value: &T) {
        let mut page = self.vcpu.run_page();
        page.set(T::FIELD, *value);
        let dirty = page.get(sync_regs::DIRTY_REGS);
        page.set(sync_regs::DIRTY_REGS, dirty | T::SET.bits());
    }

    /// The general registers, RIP and RFLAGS.
    pub fn regs(&mut self) -> Result<kvm_regs, Error> {
        self.get()
    }

    /// Writes the general registers, RIP and RFLAGS.
    pub fn set_regs(&mut self, regs: &kvm_regs) -> Result<(), Error> {
        self.set(regs)
    }

    /// The segment, control and descriptor-table registers.
    pub fn sregs(&mut self) -> Result<kvm_sregs, Error> {
        self.get()
    }

    /// Writes the segment, control and descriptor-table registers.
    pub fn set_sregs(&mut self, sregs: &kvm_sregs) -> Result<(), Error> {
        self.set(sregs)
    }

    /// Pending exceptions, interrupts and NMIs.
    pub fn events(&mut self) -> Result<kvm_vcpu_events, Error> {
        self.get()
    }
}
