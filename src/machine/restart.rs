//! Restart in place: run a guest again and again on one VM and its vCPUs, every run starting
//! from exactly the state a fresh VM would, for a small fraction of what a new VM costs
//! (`docs/BACKEND.md`, "Measured costs").
//!
//! ```text
//! once, after the image is loaded (RestartPoint::capture):
//!   slot created with KVM_MEM_LOG_DIRTY_PAGES            MachineConfig::restartable
//!   ioctl(vm, KVM_GET_DIRTY_LOG, &{ slot, bitmap })      arms the log: forgets earlier writes
//!   copy every page of the slot                          the pristine image (zero pages: none)
//!   ioctl(vcpu, KVM_GET_SREGS / KVM_GET_REGS)            each vCPU's entry registers
//!   ioctl(vcpu, KVM_GET_VCPU_EVENTS / KVM_GET_XSAVE)     its pending events and FPU
//! after each run (RestartPoint::restore):
//!   if the run ended right after an I/O or MMIO exit:    (not after HLT, a fault or a stop)
//!     run->immediate_exit = 1; ioctl(vcpu, KVM_RUN)      the kernel finishes the instruction,
//!     == -1 EINTR; run->immediate_exit = 0                 then returns before the guest runs
//!   ioctl(vm, KVM_GET_DIRTY_LOG, &{ slot, bitmap })      the pages the guest wrote since
//!   copy those pages back from the pristine image        host writes are not logged
//!   run->s.regs.{sregs,regs,events} = entry              KVM_CAP_SYNC_REGS: no system call;
//!   run->kvm_dirty_regs |= SREGS | REGS | EVENTS         the next KVM_RUN loads them
//!     (or KVM_SET_SREGS + KVM_SET_REGS + KVM_SET_VCPU_EVENTS  without it, or when asked)
//!   ioctl(vcpu, KVM_SET_XSAVE, &entry_xsave)             the FPU as it was at the entry
//!   run->request_interrupt_window = 1 if an interrupt    the vector queued at capture (the
//!     was queued at capture                              guest's irq= setup) waits again
//! ```
//!
//! What a restore puts back: the general registers with RIP and RFLAGS (so a guest that ended
//! on `hlt` starts at its entry again, not after the `hlt`), the segment, control and
//! descriptor-table registers, the pending events (exceptions, interrupts, NMIs, the interrupt
//! shadow; in place too, `KVM_SYNC_X86_EVENTS`), the x87/MMX/SSE/AVX state (`KVM_SET_XSAVE`:
//! no sync-regs set carries it, so this is the one system call a restore always makes), the
//! interrupt rawkvm had queued for the guest's interrupt window ([`Vcpu::queue_interrupt`]),
//! and every page of every writable slot. What it does not: MSRs, the TSC, debug registers,
//! and host-side device state (the caller owns its [`crate::devices::IoHandler`] and resets
//! it as it sees fit). Guest
//! memory that a device writes from the host is not in the dirty log either; rawkvm's devices
//! never write guest memory.
//!
//! A run must have ended before a restore: halted, stopped, faulted, or failed while handling an
//! exit. In the last case the kernel still has the instruction half done: an IN or MMIO read
//! gets its value into RAX and RIP moves past it only at the next `KVM_RUN` (api.rst), which
//! would land on top of the restored registers (with sync regs the kernel even loads them
//! first). So a restore first re-enters such a vCPU once with `immediate_exit` set, which
//! completes the instruction without running the guest on (`Vcpu::complete_pending_operation`;
//! a string instruction that needs more I/O may take a few entries, and one that does not
//! finish is [`RestartError::PendingOperation`]); after `hlt`, a fault or a stop (where `EINTR`
//! has already completed pending I/O) this costs nothing.

use std::sync::Arc;

use rawkvm_bindings::{MemoryRegionFlags, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xsave};

use crate::arch::x86_64::sync_regs::SyncRegs;
use crate::error::{Error, RestartError};
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::DirtyLogError;
use crate::kvm::vm::Vm;
use crate::machine::Machine;
use crate::sys::ioctl::{dirty_bitmap_words, vm};
use crate::sys::memory::Mapping;
use crate::sys::memory::page_size;

/// 64-bit words in a host page (4 KiB on x86, up to 64 KiB elsewhere): the dirty log's grain.
fn page_words() -> usize {
    page_size() / size_of::<u64>()
}

/// How a restore puts the registers back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterReset {
    /// In place in `kvm_run.s.regs`, marked in `kvm_dirty_regs` (`KVM_CAP_SYNC_REGS`): no
    /// system call; the next `KVM_RUN` loads them.
    SyncRegs,
    /// `KVM_SET_SREGS` and `KVM_SET_REGS`: two system calls per vCPU.
    Ioctls,
}

impl RegisterReset {
    /// The short name used by `rawkvm bench` (`sync-regs`, `ioctl`).
    pub fn name(self) -> &'static str {
        match self {
            RegisterReset::SyncRegs => "sync-regs",
            RegisterReset::Ioctls => "ioctl",
        }
    }
}

/// One vCPU's state at the entry: what a run can change besides memory.
#[derive(Debug, Clone)]
struct EntryRegisters {
    id: u32,
    regs: kvm_regs,
    sregs: kvm_sregs,
    /// Pending exceptions, interrupts, NMIs and the interrupt shadow.
    events: kvm_vcpu_events,
    /// x87, MMX, SSE, AVX state: a run that used the FPU must not leave it to the next.
    xsave: Box<kvm_xsave>,
    /// [`Vcpu::queue_interrupt`]'s vector (the guest's `irq=` setup), queued again at every
    /// restore: a run that took it must not leave the next one waiting forever.
    queued_interrupt: Option<u8>,
}

/// A slot's pristine contents, page by page; `None` for a page that was all zeros.
#[derive(Debug)]
struct SlotImage {
    slot: u32,
    guest_phys_addr: u64,
    mapping: Arc<Mapping>,
    pages: Vec<Option<Box<[u64]>>>,
}

/// What one restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Pages the guest had written, now copied back.
    pub dirty_pages: usize,
}

/// The state a machine restarts from: captured once, restored after every run.
#[derive(Debug)]
pub struct RestartPoint {
    reset: RegisterReset,
    vcpus: Vec<EntryRegisters>,
    slots: Vec<SlotImage>,
    /// Scratch for `KVM_GET_DIRTY_LOG`, sized for the largest slot.
    bitmap: Vec<u64>,
    /// What a page that started as zeros is restored from: one host page of zeros.
    zero_page: Box<[u64]>,
}

impl RestartPoint {
    /// Captures `vm`'s writable memory and `vcpus`' registers as they are now, and arms the
    /// dirty log. `reset` is how registers will be put back; [`RegisterReset::SyncRegs`] falls
    /// back to the ioctls when the kernel cannot sync both `regs` and `sregs`.
    ///
    /// Every writable slot must log dirty pages; read-only slots are skipped (the guest
    /// cannot change them).
    pub fn capture(
        vm: &Vm,
        vcpus: &mut [Vcpu],
        reset: RegisterReset,
    ) -> Result<RestartPoint, Error> {
        let writable = vm
            .memory()
            .regions()
            .iter()
            .filter(|region| !region.flags.contains(MemoryRegionFlags::READONLY));
        let mut slots = Vec::new();
        for region in writable {
            if !region.flags.contains(MemoryRegionFlags::LOG_DIRTY_PAGES) {
                return Err(RestartError::NotLogged { slot: region.slot }.into());
            }
            slots.push(SlotImage {
                slot: region.slot,
                guest_phys_addr: region.guest_phys_addr,
                mapping: Arc::clone(&region.mapping),
                pages: Vec::new(),
            });
        }
        let words = slots
            .iter()
            .map(|slot| dirty_bitmap_words(slot.mapping.len()))
            .max()
            .ok_or(RestartError::NothingLogged)?;
        let mut point = RestartPoint {
            reset: Self::resolve(reset, vcpus),
            vcpus: Vec::with_capacity(vcpus.len()),
            slots,
            bitmap: vec![0; words],
            zero_page: vec![0; page_words()].into_boxed_slice(),
        };
        for slot in &mut point.slots {
            // Arm first, copy second: a page written in between would be logged, not lost.
            fetch_dirty_log(vm, slot.slot, &mut point.bitmap)?;
            slot.pages = pristine_pages(slot)?;
        }
        for vcpu in vcpus {
            let id = vcpu.id();
            let xsave = vcpu.xsave()?;
            let queued_interrupt = vcpu.queued_interrupt;
            let mut registers = vcpu.registers();
            point.vcpus.push(EntryRegisters {
                id,
                regs: registers.regs()?,
                sregs: registers.sregs()?,
                events: registers.events()?,
                xsave,
                queued_interrupt,
            });
        }
        Ok(point)
    }

    /// `SyncRegs` if every vCPU's VM can sync the three sets, else `Ioctls`.
    fn resolve(wanted: RegisterReset, vcpus: &[Vcpu]) -> RegisterReset {
        let both = SyncRegs::REGS | SyncRegs::SREGS | SyncRegs::EVENTS;
        match wanted {
            RegisterReset::SyncRegs
                if vcpus
                    .iter()
                    .all(|vcpu| vcpu.supported_sync_regs().contains(both)) =>
            {
                RegisterReset::SyncRegs
            }
            _ => RegisterReset::Ioctls,
        }
    }

    /// How registers are put back (after the fallback, if the kernel lacked sync regs).
    pub fn register_reset(&self) -> RegisterReset {
        self.reset
    }

    /// Puts `vm` and `vcpus` (the same, in the same order, as captured) back to the captured
    /// state: first finishes any instruction a vCPU's last run left half done (it could write
    /// registers and memory), then the pages the guest wrote, then the registers.
    pub fn restore(&mut self, vm: &Vm, vcpus: &mut [Vcpu]) -> Result<Restored, Error> {
        let same_vcpus = vcpus.len() == self.vcpus.len()
            && vcpus.iter().zip(&self.vcpus).all(|(v, e)| v.id() == e.id);
        if !same_vcpus {
            return Err(RestartError::OtherVcpus.into());
        }
        for vcpu in vcpus.iter_mut() {
            let id = vcpu.id();
            match vcpu.complete_pending_operation() {
                Ok(true) => {}
                Ok(false) => return Err(RestartError::PendingOperation { vcpu: id }.into()),
                Err(errno) => return Err(Error::Run { vcpu: id, errno }),
            }
        }
        let mut dirty_pages = 0;
        for slot in &self.slots {
            fetch_dirty_log(vm, slot.slot, &mut self.bitmap)?;
            dirty_pages += restore_dirty_pages(slot, &self.bitmap, &self.zero_page)?;
        }
        for (vcpu, entry) in vcpus.iter_mut().zip(&self.vcpus) {
            match self.reset {
                RegisterReset::SyncRegs => {
                    let mut registers = vcpu.registers();
                    registers.set_in_place(&entry.sregs);
                    registers.set_in_place(&entry.regs);
                    registers.set_in_place(&entry.events);
                }
                RegisterReset::Ioctls => {
                    vcpu.set_sregs(&entry.sregs)?;
                    vcpu.set_regs(&entry.regs)?;
                    vcpu.set_events(&entry.events)?;
                }
            }
            // No sync-regs set carries the FPU: one ioctl, whatever the reset.
            vcpu.set_xsave(&entry.xsave)?;
            vcpu.requeue_interrupt(entry.queued_interrupt);
        }
        Ok(Restored { dirty_pages })
    }
}

/// `KVM_GET_DIRTY_LOG` of `slot` into `bitmap`.
fn fetch_dirty_log(vm: &Vm, slot: u32, bitmap: &mut [u64]) -> Result<(), Error> {
    vm.get_dirty_log(slot, bitmap).map_err(|error| match error {
        DirtyLogError::Ioctl(errno) => Error::Ioctl {
            ioctl: vm::GET_DIRTY_LOG,
            errno,
        },
        DirtyLogError::UnknownSlot(_) | DirtyLogError::BitmapTooSmall { .. } => {
            RestartError::DirtyBitmap { slot }.into()
        }
    })
}

/// The error for a page of `slot` the mapping refused (slots are whole pages, so never).
fn page_outside(slot: &SlotImage, page: usize) -> Error {
    Error::GuestMemoryRange {
        guest_phys_addr: slot.guest_phys_addr + (page * page_size()) as u64,
        len: page_size() as u64,
    }
}

/// Reads every page of `slot`, keeping only those that are not all zeros.
fn pristine_pages(slot: &SlotImage) -> Result<Vec<Option<Box<[u64]>>>, Error> {
    let page = page_size();
    let mut buffer = vec![0u64; page_words()];
    (0..slot.mapping.len() / page)
        .map(|index| {
            slot.mapping
                .read_words(index * page, &mut buffer)
                .map_err(|_| page_outside(slot, index))?;
            Ok(buffer
                .iter()
                .any(|&word| word != 0)
                .then(|| Box::from(&buffer[..])))
        })
        .collect()
}

/// Copies back every page `bitmap` marks in `slot` (a page that started as zeros from
/// `zero_page`); bits past the slot's end are ignored.
fn restore_dirty_pages(
    slot: &SlotImage,
    bitmap: &[u64],
    zero_page: &[u64],
) -> Result<usize, Error> {
    let words = dirty_bitmap_words(slot.mapping.len()).min(bitmap.len());
    let mut restored = 0;
    for (word_index, &word) in bitmap[..words].iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let page = word_index * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let Some(image) = slot.pages.get(page) else {
                continue;
            };
            let source = image.as_deref().unwrap_or(zero_page);
            slot.mapping
                .write_words(page * page_size(), source)
                .map_err(|_| page_outside(slot, page))?;
            restored += 1;
        }
    }
    Ok(restored)
}

impl Machine {
    /// Captures this machine's state as a [`RestartPoint`] (build it with
    /// [`crate::machine::MachineConfig::restartable`]).
    pub fn restart_point(&mut self, reset: RegisterReset) -> Result<RestartPoint, Error> {
        let (vm, vcpus) = self.parts_mut();
        RestartPoint::capture(vm, vcpus, reset)
    }

    /// Puts this machine back to `point`, ready to run again.
    pub fn restart(&mut self, point: &mut RestartPoint) -> Result<Restored, Error> {
        let (vm, vcpus) = self.parts_mut();
        point.restore(vm, vcpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvm::Kvm;
    use crate::kvm::vm::DirtyLogError;
    use crate::kvm::vm::MemoryRegion;

    #[test]
    fn dirty_bitmaps_have_one_bit_per_page_in_whole_words() {
        assert_eq!(dirty_bitmap_words(0), 0);
        assert_eq!(dirty_bitmap_words(4096), 1);
        assert_eq!(dirty_bitmap_words(64 * 4096), 1);
        assert_eq!(dirty_bitmap_words(65 * 4096), 2);
        assert_eq!(dirty_bitmap_words(1 << 20), 4);
        assert_eq!(
            dirty_bitmap_words(4097),
            1,
            "a partial page still needs its bit"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "opens /dev/kvm")]
    fn the_dirty_log_is_refused_before_the_kernel_for_unknown_slots_and_short_bitmaps() {
        if !std::path::Path::new("/dev/kvm").exists() {
            println!("SKIPPED: /dev/kvm unavailable (dirty log refusals)");
            return;
        }
        let kvm = Kvm::open().unwrap();
        let mut vm = kvm.create_vm().unwrap();
        for (slot, guest_phys_addr, flags) in [
            (0, 0, MemoryRegionFlags::LOG_DIRTY_PAGES),
            (1, 1 << 20, MemoryRegionFlags::empty()),
        ] {
            let region = MemoryRegion {
                slot,
                guest_phys_addr,
                size: 65 * 4096,
                flags,
            };
            vm.add_memory_region(region).unwrap();
        }
        let mut bitmap = [u64::MAX; 2];
        assert_eq!(vm.get_dirty_log(0, &mut bitmap), Ok(()));
        assert_eq!(
            bitmap,
            [0, 0],
            "nothing written yet; the kernel wrote both words"
        );
        assert_eq!(
            vm.get_dirty_log(0, &mut bitmap[..1]),
            Err(DirtyLogError::BitmapTooSmall {
                needed: 2,
                given: 1
            })
        );
        assert_eq!(
            vm.get_dirty_log(7, &mut bitmap),
            Err(DirtyLogError::UnknownSlot(7))
        );
        assert_eq!(
            vm.get_dirty_log(1, &mut bitmap),
            Err(DirtyLogError::Ioctl(nix::errno::Errno::ENOENT)),
            "a slot that does not log"
        );
    }
}
