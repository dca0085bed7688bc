//! After a restore, every piece is read back from the kernel (and rawkvm's own: the user-space
//! PIC's registers, the exception-stub flags) and compared with the snapshot, field by field: a piece the kernel silently dropped or changed (as `KVM_SET_FPU` on a fresh
//! vCPU is dropped under PVM) is a [`SnapshotError::Mismatch`] naming the piece and the field,
//! not a guest that goes wrong later.
//!
//! What legitimately moves between the write and the read is left out of the comparison: the
//! kvmclock advances (it must be no earlier, and less than [`CLOCK_SLACK_NS`] later), the
//! PIT's `count_load_time` is reset by `KVM_SET_PIT2` to the time of the call, and the local
//! APIC's current-count register (offset 0x390) counts down. The interrupt controllers are
//! compared first, right after the clock, before a PIT tick can reach them; one that does
//! anyway (the PIT's timer runs from `KVM_SET_PIT2` on) may only add request bits: the PICs'
//! and IOAPIC's IRR may gain bits, and the PICs' edge detector (`last_irr`) may differ.

use rawkvm_bindings::StructLayout;

use super::SnapshotError;
use super::capture::capture_vcpu;
use super::state::{SlotState, Snapshot, VcpuState};
use crate::devices::pic::Pair;
use crate::error::Error;
use crate::kvm::memory::Region;
use crate::machine::Machine;
use crate::sys::memory::page_size;
use crate::sys::state::{PlainData, as_bytes, words_as_bytes};
use rawkvm_bindings as abi;

/// How much later than the saved value the kvmclock may read right after `KVM_SET_CLOCK`.
pub const CLOCK_SLACK_NS: u64 = 5_000_000_000;

/// MSRs that change on their own between the write and the read: the TSC (which on kvm_pvm
/// is the host's and cannot be set at all) and its adjustment.
const MOVING_MSRS: &[u32] = &[0x10, 0x3b];

/// The local APIC's timer current count register (`TMCCT`), bytes 0x390..0x394.
const LAPIC_CURRENT_COUNT: std::ops::Range<usize> = 0x390..0x394;

/// Reads the machine back and compares it with `snapshot`.
pub(crate) fn verify(machine: &mut Machine, snapshot: &Snapshot) -> Result<(), Error> {
    let user_pic = machine.user_pic().map(|pic| pic.registers());
    if user_pic != snapshot.devices.user_pic {
        let bytes = |pair: Option<Pair>| pair.map_or_else(Vec::new, |p| p.to_bytes().to_vec());
        return Err(mismatch(
            "user PIC",
            "(registers)",
            0,
            &bytes(snapshot.devices.user_pic),
            &bytes(user_pic),
        ));
    }
    let (vm, vcpus) = machine.parts_mut();
    // The clock first: it runs on while the rest is compared.
    let state = &snapshot.vm;
    let clock = vm.clock()?;
    let behind = clock.clock.checked_sub(state.clock.clock);
    if behind.is_none_or(|late| late >= CLOCK_SLACK_NS) {
        return Err(mismatch(
            "clock",
            "clock",
            0,
            &state.clock.clock.to_le_bytes(),
            &clock.clock.to_le_bytes(),
        ));
    }
    if let Some(irqchip) = &state.irqchip {
        for saved in irqchip.chips() {
            let mut got = vm.irqchip(saved.chip_id)?.unwrap_or_default();
            settle_requests(saved, &mut got);
            compare(&format!("irqchip {}", saved.chip_id), saved, &got)?;
        }
    }
    if let Some(saved) = &state.pit {
        let mut saved = *saved;
        let mut got = vm.pit()?.unwrap_or_default();
        for (a, b) in saved.channels.iter_mut().zip(got.channels.iter_mut()) {
            (a.count_load_time, b.count_load_time) = (0, 0);
        }
        compare("pit2", &saved, &got)?;
    }
    let has_xcrs = snapshot.vcpus.iter().any(|vcpu| vcpu.xcrs.is_some());
    for (vcpu, saved) in vcpus.iter_mut().zip(&snapshot.vcpus) {
        let indices: Vec<u32> = saved.msrs.iter().map(|msr| msr.index).collect();
        let mut got = capture_vcpu(vcpu, has_xcrs, &indices)?;
        compare_vcpu(saved, &mut got)?;
        if let Some(khz) = state.settings.tsc_khz {
            let rate = vcpu.tsc_khz()?;
            if rate != khz {
                return Err(mismatch(
                    &format!("vCPU {} TSC rate", saved.id),
                    "tsc_khz",
                    0,
                    &khz.to_le_bytes(),
                    &rate.to_le_bytes(),
                ));
            }
        }
    }
    for (region, saved) in vm.memory().regions().iter().zip(&snapshot.vm.slots) {
        compare_slot(saved, region)?;
    }
    Ok(())
}

/// Where a chip's request bits are in `kvm_irqchip.chip`: a PIC's `irr` is byte 1 (after
/// `last_irr`, byte 0), the IOAPIC's is bytes 16..20 (after `base_address` and `ioregsel`,
/// `id`).
const PIC_LAST_IRR: usize = 0;
const PIC_IRR: std::ops::Range<usize> = 1..2;
const IOAPIC_IRR: std::ops::Range<usize> = 16..20;

/// Forgives in `got` what an interrupt that arrived after the restore changed: request bits
/// added to a chip's IRR (none taken away), and a PIC's edge detector.
fn settle_requests(saved: &abi::kvm_irqchip, got: &mut abi::kvm_irqchip) {
    let saved_bytes = words_as_bytes(&saved.chip);
    let mut bytes = words_as_bytes(&got.chip).to_vec();
    let irr = if saved.chip_id == abi::KVM_IRQCHIP_IOAPIC {
        IOAPIC_IRR
    } else {
        bytes[PIC_LAST_IRR] = saved_bytes[PIC_LAST_IRR];
        PIC_IRR
    };
    let only_added = bytes[irr.clone()]
        .iter()
        .zip(&saved_bytes[irr.clone()])
        .all(|(got, saved)| got & saved == *saved);
    if only_added {
        bytes[irr.clone()].copy_from_slice(&saved_bytes[irr]);
    }
    for (word, chunk) in got.chip.iter_mut().zip(bytes.chunks_exact(8)) {
        *word = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
    }
}

fn compare_vcpu(saved: &VcpuState, got: &mut VcpuState) -> Result<(), Error> {
    let piece = |what: &str| format!("vCPU {} {what}", saved.id);
    compare(&piece("sregs"), &saved.sregs, &got.sregs)?;
    compare(&piece("regs"), &saved.regs, &got.regs)?;
    compare(&piece("xsave"), &*saved.xsave, &*got.xsave)?;
    if let (Some(saved), Some(got)) = (&saved.xcrs, &got.xcrs) {
        compare(&piece("xcrs"), saved, got)?;
    }
    match (&saved.lapic, &mut got.lapic) {
        (Some(saved), Some(got)) => {
            let mut saved = **saved;
            saved.regs[LAPIC_CURRENT_COUNT].fill(0);
            got.regs[LAPIC_CURRENT_COUNT].fill(0);
            compare(&piece("lapic"), &saved, &**got)?;
        }
        (None, None) => {}
        _ => return Err(mismatch(&piece("lapic"), "(presence)", 0, &[], &[])),
    }
    if saved.cpuid != got.cpuid {
        let first = saved.cpuid.iter().zip(&got.cpuid).position(|(a, b)| a != b);
        let leaf = first.map_or(saved.cpuid.len() as u64, |at| {
            u64::from(saved.cpuid[at].function)
        });
        return Err(mismatch(&piece("cpuid"), "leaf", leaf, &[], &[]));
    }
    for (saved, got) in saved.msrs.iter().zip(&got.msrs) {
        if saved.value != got.value && !MOVING_MSRS.contains(&saved.index) {
            return Err(mismatch(
                &piece("msrs"),
                &format!("MSR {:#x}", saved.index),
                u64::from(saved.index),
                &saved.value.to_le_bytes(),
                &got.value.to_le_bytes(),
            ));
        }
    }
    if saved.exception_stub != got.exception_stub {
        return Err(mismatch(
            &piece("host"),
            "exception_stub",
            0,
            &[u8::from(saved.exception_stub)],
            &[u8::from(got.exception_stub)],
        ));
    }
    compare(&piece("events"), &saved.events, &got.events)?;
    compare(&piece("mp_state"), &saved.mp_state, &got.mp_state)?;
    compare(&piece("debugregs"), &saved.debugregs, &got.debugregs)
}

/// Every stored page reads back as saved. (The others were never written in the new VM's
/// fresh memory, so they are zeros, as saved.)
fn compare_slot(saved: &SlotState, region: &Region) -> Result<(), Error> {
    let piece = format!("memory slot {}", saved.slot);
    let got = (region.guest_phys_addr, region.size(), region.flags.bits());
    if (saved.guest_phys_addr, saved.size, saved.flags) != got {
        return Err(mismatch(&piece, "(address, size or flags)", 0, &[], &[]));
    }
    let page = page_size();
    let words_per_page = page / size_of::<u64>();
    for run in &saved.runs {
        for (index, expected) in (run.first_page..).zip(run.words.chunks_exact(words_per_page)) {
            let offset = usize::try_from(index)
                .unwrap_or(usize::MAX)
                .saturating_mul(page);
            // Compared in place: no copy of guest memory (a GiB restore reads every page).
            if !region
                .mapping
                .words_equal(offset, expected)
                .unwrap_or(false)
            {
                return Err(mismatch(&piece, "page", index, &[], &[]));
            }
        }
    }
    Ok(())
}

/// Compares two values of one ABI struct; the first differing leaf field is the error.
fn compare<T: PlainData>(piece: &str, saved: &T, got: &T) -> Result<(), Error> {
    let (a, b) = (as_bytes(saved), as_bytes(got));
    let Some(first) = a.iter().zip(b).position(|(x, y)| x != y) else {
        return Ok(());
    };
    let layout: StructLayout = T::LAYOUT;
    let leaf = layout
        .fields
        .iter()
        .filter(|field| {
            let prefix = format!("{}.", field.name);
            !layout
                .fields
                .iter()
                .any(|other| other.name.starts_with(&prefix))
        })
        .find(|field| (field.offset..field.offset + field.size).contains(&first));
    let (name, range) = match leaf {
        Some(field) if field.size <= 16 => (field.name, field.offset..field.offset + field.size),
        Some(field) => (
            field.name,
            first..(first + 8).min(field.offset + field.size),
        ),
        None => ("(byte)", first..first + 1),
    };
    Err(mismatch(
        piece,
        name,
        first as u64,
        &a[range.clone()],
        &b[range],
    ))
}

fn mismatch(piece: &str, field: &str, offset: u64, saved: &[u8], got: &[u8]) -> Error {
    let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
    SnapshotError::Mismatch {
        piece: piece.to_string(),
        field: field.to_string(),
        offset,
        saved: hex(saved),
        read_back: hex(got),
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_differing_leaf_field_is_named() {
        let saved = abi::kvm_sregs::default();
        let mut got = saved;
        got.cs.selector = 0x1234;
        got.cr0 = 1;
        let error = compare("vCPU 0 sregs", &saved, &got).unwrap_err();
        let Error::Snapshot(SnapshotError::Mismatch {
            field,
            offset,
            read_back,
            ..
        }) = error
        else {
            panic!("{error:?}")
        };
        // `cs` is a `struct kvm_segment`, one field of `kvm_sregs`; 8 bytes from the change.
        assert_eq!((field.as_str(), offset), ("cs", 12));
        assert_eq!(read_back, "3412000000000000");
        assert!(compare("same", &saved, &saved).is_ok());
    }
}
