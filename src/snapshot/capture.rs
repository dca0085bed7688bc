//! Taking a snapshot of a stopped machine.
//!
//! ```text
//! ioctl(kvm, KVM_GET_MSR_INDEX_LIST)   the MSRs to save
//! for each vCPU:  (re-enter with immediate_exit = 1 if its last exit left I/O half done)
//!                 KVM_GET_REGS/SREGS/VCPU_EVENTS (or kvm_run.s.regs when current there),
//!                 KVM_GET_XSAVE, KVM_GET_XCRS, KVM_GET_LAPIC, KVM_GET_MP_STATE,
//!                 KVM_GET_DEBUGREGS, KVM_GET_CPUID2, KVM_GET_MSRS (every listed MSR)
//! for each slot:  read every page; keep the ones that are not all zero, in runs
//! the VM:         KVM_GET_IRQCHIP x3, KVM_GET_PIT2 (ENXIO: none), KVM_GET_CLOCK,
//!                 KVM_GET_TSC_KHZ of vCPU 0 if the machine set a TSC rate
//! rawkvm's own:   the user-space 8259 pair's registers, each vCPU's exception-stub flag,
//!                 whether user-space MSR exits were enabled (no ioctl: the machine knows)
//! ```

use rawkvm_bindings as abi;

use super::SnapshotError;
use super::state::{
    DeviceState, IrqchipState, Origin, PageRun, SlotState, Snapshot, VcpuState, VmState,
};
use crate::error::Error;
use crate::kvm::Kvm;
use crate::kvm::memory::Region;
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::Vm;
use crate::machine::{Machine, VmSettings};
use crate::sys::memory::page_size;

impl Machine {
    /// Saves the whole machine. Every vCPU must be out of `KVM_RUN` (the machine is not
    /// running: `run_all` returned); an instruction a vCPU's last exit left half done (an IN
    /// waiting for its value) is completed first, so the saved registers are the ones the
    /// guest would see next. `devices` is the host-side device state, which the caller owns.
    ///
    /// `kvm` gives the MSR index list (`KVM_GET_MSR_INDEX_LIST`): every MSR in it is saved.
    /// The user-space 8259 pair's registers come from the machine itself, not from `devices`.
    pub fn snapshot(&mut self, kvm: &Kvm, devices: &DeviceState) -> Result<Snapshot, Error> {
        let msr_indices = kvm.msr_index_list()?;
        let user_pic = self.user_pic().map(|pic| pic.registers());
        let settings = self.settings();
        let (vm, vcpus) = self.parts_mut();
        let settings = VmSettings {
            // The rate the kernel has, which `Vcpu::set_tsc_khz` checked is the one asked for.
            tsc_khz: match (settings.tsc_khz, vcpus.first()) {
                (Some(_), Some(vcpu)) => Some(vcpu.tsc_khz()?),
                _ => None,
            },
            ..settings
        };
        let xsave = vm.xsave_size();
        if xsave > size_of::<abi::kvm_xsave>() {
            return Err(SnapshotError::XsaveTooLarge { size: xsave }.into());
        }
        let has_xcrs = vm.check_extension(abi::KVM_CAP_XCRS) > 0;
        let vcpus = vcpus
            .iter_mut()
            .map(|vcpu| capture_vcpu(vcpu, has_xcrs, &msr_indices))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Snapshot {
            origin: Origin::here(),
            vcpus,
            vm: capture_vm(vm, settings)?,
            devices: DeviceState {
                user_pic,
                ..devices.clone()
            },
        })
    }
}

impl Origin {
    /// This host: its architecture, this rawkvm's version, the KVM backend, the page size.
    pub fn here() -> Origin {
        Origin {
            arch: std::env::consts::ARCH.to_string(),
            rawkvm_version: env!("CARGO_PKG_VERSION").to_string(),
            backend: crate::exit::hardware::kvm_backend()
                .unwrap_or("unknown")
                .to_string(),
            page_size: page_size() as u32,
        }
    }
}

/// One vCPU's state, after completing what its last exit left pending.
pub(crate) fn capture_vcpu(
    vcpu: &mut Vcpu,
    has_xcrs: bool,
    msr_indices: &[u32],
) -> Result<VcpuState, Error> {
    let id = vcpu.id();
    match vcpu.complete_pending_operation() {
        Ok(true) => {}
        Ok(false) => return Err(SnapshotError::PendingOperation { vcpu: id }.into()),
        Err(errno) => return Err(Error::Run { vcpu: id, errno }),
    }
    let (regs, sregs, events) = {
        let mut registers = vcpu.registers();
        (registers.regs()?, registers.sregs()?, registers.events()?)
    };
    Ok(VcpuState {
        id,
        regs,
        sregs,
        xsave: vcpu.xsave()?,
        xcrs: if has_xcrs { Some(vcpu.xcrs()?) } else { None },
        lapic: vcpu.lapic()?,
        events,
        mp_state: vcpu.mp_state()?,
        debugregs: vcpu.debugregs()?,
        cpuid: vcpu.cpuid()?.entries().to_vec(),
        msrs: vcpu.msrs(msr_indices)?,
        queued_interrupt: vcpu.queued_interrupt,
        exception_stub: vcpu.exception_stub,
    })
}

fn capture_vm(vm: &Vm, settings: VmSettings) -> Result<VmState, Error> {
    let slots = vm
        .memory()
        .regions()
        .iter()
        .map(capture_slot)
        .collect::<Result<Vec<_>, Error>>()?;
    let chips = [
        vm.irqchip(abi::KVM_IRQCHIP_PIC_MASTER)?,
        vm.irqchip(abi::KVM_IRQCHIP_PIC_SLAVE)?,
        vm.irqchip(abi::KVM_IRQCHIP_IOAPIC)?,
    ];
    let irqchip = match chips {
        [Some(pic_master), Some(pic_slave), Some(ioapic)] => Some(IrqchipState {
            pic_master,
            pic_slave,
            ioapic,
        }),
        _ => None,
    };
    Ok(VmState {
        slots,
        irqchip,
        pit: vm.pit()?,
        clock: vm.clock()?,
        settings,
    })
}

/// Which pages of the range at `addr` this process has never touched: neither present nor
/// swapped out (bits 63 and 62 of `/proc/self/pagemap`, `Documentation/admin-guide/mm/
/// pagemap.rst`). For private anonymous memory, guest RAM, such a page reads as zeros, so a
/// snapshot need not read it: reading it would fault the zero page in, about 6 µs a page
/// here (1.7 s for an untouched GiB). `None` if pagemap cannot be read; then every page is.
fn untouched_pages(addr: usize, pages: usize) -> Option<Vec<bool>> {
    use std::os::unix::fs::FileExt;
    const PRESENT: u64 = 1 << 63;
    const SWAPPED: u64 = 1 << 62;
    if cfg!(miri) {
        return None;
    }
    let pagemap = std::fs::File::open("/proc/self/pagemap").ok()?;
    let mut entries = vec![0u8; pages.checked_mul(8)?];
    let offset = u64::try_from(addr / page_size()).ok()?.checked_mul(8)?;
    pagemap.read_exact_at(&mut entries, offset).ok()?;
    Some(
        entries
            .chunks_exact(8)
            .map(|entry| {
                let mut word = [0u8; 8];
                word.copy_from_slice(entry);
                u64::from_le_bytes(word) & (PRESENT | SWAPPED) == 0
            })
            .collect(),
    )
}

/// The slot's pages that are not all zero, in runs. Each page is checked in place (most
/// pages with data are told apart by their first word), and each run is then copied out in
/// one pass into a vector of exactly its size: guest memory is read once, nothing is copied
/// twice, and no vector grows.
pub(crate) fn capture_slot(region: &Region) -> Result<SlotState, Error> {
    let page = page_size();
    let words_per_page = page / size_of::<u64>();
    let pages = region.mapping.len() / page;
    let outside = |index: usize, count: usize| Error::GuestMemoryRange {
        guest_phys_addr: region.guest_phys_addr + (index * page) as u64,
        len: (count * page) as u64,
    };
    // Only anonymous memory reads as zeros where untouched (a fork's pages come from a file).
    let untouched = region
        .mapping
        .is_anonymous()
        .then(|| untouched_pages(region.mapping.as_ptr() as usize, pages))
        .flatten();
    let stored = |index: usize| -> Result<bool, Error> {
        if untouched.as_ref().is_some_and(|untouched| untouched[index]) {
            return Ok(false);
        }
        let zero = region
            .mapping
            .words_are_zero(index * page, words_per_page)
            .map_err(|_| outside(index, 1))?;
        Ok(!zero)
    };
    let mut runs: Vec<PageRun> = Vec::new();
    let mut index = 0;
    while index < pages {
        if !stored(index)? {
            index += 1;
            continue;
        }
        let first = index;
        index += 1;
        while index < pages && stored(index)? {
            index += 1;
        }
        let mut words = Vec::new();
        region
            .mapping
            .append_words(first * page, (index - first) * words_per_page, &mut words)
            .map_err(|_| outside(first, index - first))?;
        runs.push(PageRun {
            first_page: first as u64,
            words,
        });
    }
    Ok(SlotState {
        slot: region.slot,
        guest_phys_addr: region.guest_phys_addr,
        size: region.size(),
        flags: region.flags.bits(),
        runs,
    })
}
