//! Taking a snapshot of a stopped machine.
//!
//! ```text
//! for each vCPU:  (re-enter with immediate_exit = 1 if its last exit left I/O half done)
//!                 KVM_GET_REGS/SREGS/VCPU_EVENTS (or kvm_run.s.regs when current there),
//!                 KVM_GET_XSAVE, KVM_GET_XCRS, KVM_GET_LAPIC, KVM_GET_MP_STATE,
//!                 KVM_GET_DEBUGREGS
//! for each slot:  read every page; keep the ones that are not all zero, in runs
//! the VM:         KVM_GET_IRQCHIP x3, KVM_GET_PIT2 (ENXIO: none), KVM_GET_CLOCK
//! ```

use rawkvm_bindings as abi;

use super::SnapshotError;
use super::state::{
    DeviceState, IrqchipState, Origin, PageRun, SlotState, Snapshot, VcpuState, VmState,
};
use crate::error::Error;
use crate::kvm::memory::Region;
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::Vm;
use crate::machine::Machine;
use crate::sys::memory::page_size;

impl Machine {
    /// Saves the whole machine. Every vCPU must be out of `KVM_RUN` (the machine is not
    /// running: `run_all` returned); an instruction a vCPU's last exit left half done (an IN
    /// waiting for its value) is completed first, so the saved registers are the ones the
    /// guest would see next. `devices` is the host-side device state, which the caller owns.
    pub fn snapshot(&mut self, devices: &DeviceState) -> Result<Snapshot, Error> {
        let (vm, vcpus) = self.parts_mut();
        let xsave = vm.xsave_size();
        if xsave > abi::KVM_XSAVE_SIZE {
            return Err(SnapshotError::XsaveTooLarge { size: xsave }.into());
        }
        let has_xcrs = vm.check_extension(abi::KVM_CAP_XCRS) > 0;
        let vcpus = vcpus
            .iter_mut()
            .map(|vcpu| capture_vcpu(vcpu, has_xcrs))
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Snapshot {
            origin: Origin::here(),
            vcpus,
            vm: capture_vm(vm)?,
            devices: devices.clone(),
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
pub(crate) fn capture_vcpu(vcpu: &mut Vcpu, has_xcrs: bool) -> Result<VcpuState, Error> {
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
        queued_interrupt: vcpu.queued_interrupt,
    })
}

fn capture_vm(vm: &Vm) -> Result<VmState, Error> {
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
    })
}

/// The slot's pages that are not all zero, in runs.
pub(crate) fn capture_slot(region: &Region) -> Result<SlotState, Error> {
    let page = page_size();
    let words_per_page = page / size_of::<u64>();
    let mut buffer = vec![0u64; words_per_page];
    let mut runs: Vec<PageRun> = Vec::new();
    let pages = region.mapping.len() / page;
    for index in 0..pages {
        region
            .mapping
            .read_words(index * page, &mut buffer)
            .map_err(|_| Error::GuestMemoryRange {
                guest_phys_addr: region.guest_phys_addr + (index * page) as u64,
                len: page as u64,
            })?;
        if buffer.iter().all(|&word| word == 0) {
            continue;
        }
        let index = index as u64;
        match runs.last_mut() {
            Some(run) if run.first_page + (run.words.len() / words_per_page) as u64 == index => {
                run.words.extend_from_slice(&buffer);
            }
            _ => runs.push(PageRun {
                first_page: index,
                words: buffer.clone(),
            }),
        }
    }
    Ok(SlotState {
        slot: region.slot,
        guest_phys_addr: region.guest_phys_addr,
        size: region.size(),
        flags: region.flags.bits(),
        runs,
    })
}
