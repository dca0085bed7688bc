//! Restoring a snapshot into a new VM, in the order that works on every backend measured
//! (HOST-NOTES.md, "Saving and restoring state on kvm_pvm"):
//!
//! ```text
//! vm = ioctl(kvm, KVM_CREATE_VM, 0)
//! before any vCPU, as `Machine::new` does:
//!   with vm.settings' user-space MSR flag: KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR,
//!     KVM_MSR_EXIT_REASON_UNKNOWN)
//!   with an in-kernel irqchip in the snapshot (as `--irqchip kernel` does):
//!     KVM_CREATE_IRQCHIP, KVM_SET_GSI_ROUTING (the default routes), KVM_CREATE_PIT2
//! for each slot: mmap + KVM_SET_USER_MEMORY_REGION, copy the stored page runs in
//! for each vCPU: KVM_CREATE_VCPU, then KVM_SET_CPUID2 (first: it decides which MSRs and XSAVE
//!   components are valid), with vm.settings' TSC rate: KVM_GET_TSC_KHZ and, only if the
//!   fresh vCPU's rate differs, KVM_SET_TSC_KHZ (checked; refused: an error, nothing runs),
//!   KVM_SET_SREGS, KVM_SET_REGS, KVM_SET_XSAVE (not KVM_SET_FPU: lost
//!   on a fresh vCPU under PVM), KVM_SET_XCRS, KVM_SET_MSRS (the MSRs whose value differs
//!   from the fresh vCPU's, read with KVM_GET_MSRS), KVM_SET_LAPIC,
//!   KVM_SET_VCPU_EVENTS, KVM_SET_MP_STATE, KVM_SET_DEBUGREGS; the exception-stub flag
//! the VM: KVM_SET_IRQCHIP x3, KVM_SET_PIT2, KVM_SET_CLOCK
//! the user-space 8259 pair, if saved: a new one holding the saved registers
//! then read every piece back and compare it with the snapshot (verify.rs)
//! ```
//!
//! The TSC itself is not restored: on kvm_pvm the guest TSC is the host's and cannot be set.

use rawkvm_bindings::MemoryRegionFlags;

use super::SnapshotError;
use super::state::{SlotState, Snapshot, VcpuState, VmState};
use super::verify;
use crate::arch::x86_64::cpuid::{CpuidTable, cpuid_string};
use crate::error::CpuMismatch;
use crate::error::Error;
use crate::kvm::Kvm;
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::{MemoryRegion, Vm};
use crate::machine::irq::default_routes;
use crate::machine::{Machine, VmSettings, enable_user_space_msr};
use crate::sys::memory::page_size;

impl Snapshot {
    /// A new machine in exactly the state this snapshot holds, checked by reading everything
    /// back. Its vCPUs continue where the snapshot's stopped when run.
    pub fn restore(&self, kvm: &Kvm) -> Result<Machine, Error> {
        self.check_fits_host(kvm)?;
        let mut vm = create_vm(kvm, self)?;
        for slot in &self.vm.slots {
            restore_slot(&mut vm, slot)?;
        }
        let vcpus = create_vcpus(&vm, self)?;
        apply_vm(&vm, &self.vm)?;
        let mut machine = machine_of(vm, vcpus, self);
        verify::verify(&mut machine, self)?;
        Ok(machine)
    }

    /// Whether this host can take the snapshot at all, checked before any VM is made: the same
    /// page size, and per vCPU the same CPU vendor (leaf 0 of its CPUID table) and no XSAVE
    /// component this host's KVM does not offer. A snapshot from another CPU would otherwise
    /// fail half way, at `KVM_SET_XSAVE` with a bare `EINVAL`.
    pub fn check_fits_host(&self, kvm: &Kvm) -> Result<(), Error> {
        let host_page = page_size() as u32;
        if self.origin.page_size != host_page {
            return Err(SnapshotError::PageSize {
                snapshot: self.origin.page_size,
                host: host_page,
            }
            .into());
        }
        let host = kvm.supported_cpuid()?;
        let host_vendor = host.vendor();
        let host_xcr0 = host
            .get(0xD, 0)
            .map_or(0, |leaf| u64::from(leaf.eax) | u64::from(leaf.edx) << 32);
        for vcpu in &self.vcpus {
            let saved_vendor = CpuidTable::new(vcpu.cpuid.clone()).vendor();
            let mismatch = if let (Some(saved), Some(host)) = (saved_vendor, host_vendor)
                && saved != host
            {
                Some(CpuMismatch::Vendor {
                    saved: cpuid_string(&saved),
                    host: cpuid_string(&host),
                })
            } else {
                let region = &vcpu.xsave.region;
                let saved = u64::from(region[128]) | u64::from(region[129]) << 32;
                (saved & !host_xcr0 != 0).then_some(CpuMismatch::XsaveComponents {
                    saved,
                    host: host_xcr0,
                })
            };
            if let Some(mismatch) = mismatch {
                return Err(SnapshotError::OtherCpu {
                    vcpu: vcpu.id,
                    mismatch,
                }
                .into());
            }
        }
        Ok(())
    }

    /// Whether the snapshot holds in-kernel interrupt controllers (a local APIC, the PICs and
    /// IOAPIC, a PIT) that a new VM must create before their state can be set.
    pub fn needs_irqchip(&self) -> bool {
        self.vm.irqchip.is_some()
            || self.vm.pit.is_some()
            || self.vcpus.iter().any(|vcpu| vcpu.lapic.is_some())
    }
}

/// A new VM with the in-kernel interrupt controllers the snapshot holds, made before any vCPU
/// (`KVM_CREATE_IRQCHIP` after one is `EINVAL`): the PICs, IOAPIC and local APICs with the
/// default GSI routing, and the PIT if it has one. The kernel's irqchip gives every vCPU a
/// local APIC, so the snapshot must hold the PICs and IOAPIC, and a local APIC per vCPU, or
/// none of them.
pub(crate) fn create_vm(kvm: &Kvm, snapshot: &Snapshot) -> Result<Vm, Error> {
    if snapshot.needs_irqchip() {
        let lapics = snapshot.vcpus.iter().filter(|v| v.lapic.is_some()).count();
        if snapshot.vm.irqchip.is_none() || lapics != snapshot.vcpus.len() {
            return Err(SnapshotError::IrqchipIncomplete {
                chips: snapshot.vm.irqchip.is_some(),
                lapics,
                vcpus: snapshot.vcpus.len(),
            }
            .into());
        }
    }
    let vm = kvm.create_vm()?;
    if snapshot.vm.settings.user_space_msr {
        enable_user_space_msr(&vm)?;
    }
    if snapshot.vm.irqchip.is_some() {
        vm.create_irqchip()?;
        vm.set_gsi_routing(&default_routes())?;
    }
    if snapshot.vm.pit.is_some() {
        vm.create_pit2(rawkvm_bindings::KVM_PIT_SPEAKER_DUMMY)?;
    }
    Ok(vm)
}

fn restore_slot(vm: &mut Vm, slot: &SlotState) -> Result<(), Error> {
    let flags = MemoryRegionFlags::from_bits(slot.flags).ok_or(SnapshotError::SlotFlags {
        slot: slot.slot,
        flags: slot.flags,
    })?;
    let region = vm.add_memory_region(MemoryRegion {
        slot: slot.slot,
        guest_phys_addr: slot.guest_phys_addr,
        size: slot.size,
        flags,
    })?;
    write_runs(region, slot)
}

/// Copies the slot's stored pages into `region` (whose other pages are left as they are).
pub(crate) fn write_runs(
    region: &crate::kvm::memory::Region,
    slot: &SlotState,
) -> Result<(), Error> {
    let page = page_size();
    for run in &slot.runs {
        let offset = usize::try_from(run.first_page)
            .ok()
            .and_then(|first| first.checked_mul(page));
        let outside = || Error::GuestMemoryRange {
            guest_phys_addr: slot
                .guest_phys_addr
                .saturating_add(run.first_page.saturating_mul(page as u64)),
            len: (run.words.len() * size_of::<u64>()) as u64,
        };
        let offset = offset.ok_or_else(outside)?;
        region
            .mapping
            .write_words(offset, &run.words)
            .map_err(|_| outside())?;
    }
    Ok(())
}

/// Every vCPU of the snapshot, made and given its state.
pub(crate) fn create_vcpus(vm: &Vm, snapshot: &Snapshot) -> Result<Vec<Vcpu>, Error> {
    snapshot
        .vcpus
        .iter()
        .map(|state| {
            let mut vcpu = vm.create_vcpu(state.id)?;
            apply_vcpu(&mut vcpu, state, &snapshot.vm.settings)?;
            Ok(vcpu)
        })
        .collect()
}

/// The machine of a restored VM and its vCPUs, with the snapshot's settings and, if it had
/// one, a user-space 8259 pair holding the saved registers (the run loop injects from it).
pub(crate) fn machine_of(vm: Vm, vcpus: Vec<Vcpu>, snapshot: &Snapshot) -> Machine {
    Machine::from_parts(vm, vcpus, snapshot.vm.settings, snapshot.devices.user_pic)
}

/// Applies a vCPU's state, in the working order.
pub(crate) fn apply_vcpu(
    vcpu: &mut Vcpu,
    state: &VcpuState,
    settings: &VmSettings,
) -> Result<(), Error> {
    // CPUID first: which MSRs and XSAVE components the vCPU accepts depends on it.
    if !state.cpuid.is_empty() {
        vcpu.set_cpuid(&CpuidTable::new(state.cpuid.clone()))?;
    }
    if let Some(khz) = settings.tsc_khz {
        restore_tsc_khz(vcpu, khz)?;
    }
    vcpu.set_sregs(&state.sregs)?;
    vcpu.set_regs(&state.regs)?;
    vcpu.set_xsave(&state.xsave)?;
    if let Some(xcrs) = &state.xcrs {
        vcpu.set_xcrs(xcrs)?;
    }
    // Only the MSRs whose value differs from a fresh vCPU's: the kernel refuses some at their
    // defaults in some configurations (MSR_KVM_ASYNC_PF_INT without an in-kernel LAPIC).
    let indices: Vec<u32> = state.msrs.iter().map(|msr| msr.index).collect();
    let fresh = vcpu.msrs(&indices)?;
    let changed: Vec<_> = state
        .msrs
        .iter()
        .zip(&fresh)
        .filter(|(saved, fresh)| saved.value != fresh.value)
        .map(|(saved, _)| *saved)
        .collect();
    if !changed.is_empty() {
        vcpu.set_msrs(&changed)?;
    }
    if let Some(lapic) = &state.lapic {
        vcpu.set_lapic(lapic)?;
    }
    vcpu.set_events(&state.events)?;
    vcpu.set_mp_state(&state.mp_state)?;
    vcpu.set_debugregs(&state.debugregs)?;
    vcpu.requeue_interrupt(state.queued_interrupt);
    vcpu.exception_stub = state.exception_stub;
    Ok(())
}

/// Gives a fresh vCPU the snapshot's TSC rate, if its own differs: a host whose TSC runs
/// otherwise and cannot be scaled to it is [`SnapshotError::TscRate`], before any guest code
/// runs at the wrong rate.
fn restore_tsc_khz(vcpu: &Vcpu, khz: u32) -> Result<(), Error> {
    let host = vcpu.tsc_khz()?;
    if host == khz {
        return Ok(());
    }
    vcpu.set_tsc_khz(khz).map_err(|error| match error {
        Error::Cpu(cause) => SnapshotError::TscRate {
            vcpu: vcpu.id(),
            saved: khz,
            host,
            cause,
        }
        .into(),
        other => other,
    })
}

pub(crate) fn apply_vm(vm: &Vm, state: &VmState) -> Result<(), Error> {
    if let Some(irqchip) = &state.irqchip {
        for chip in irqchip.chips() {
            vm.set_irqchip(chip)?;
        }
    }
    if let Some(pit) = &state.pit {
        vm.set_pit(pit)?;
    }
    vm.set_clock(&state.clock)
}
