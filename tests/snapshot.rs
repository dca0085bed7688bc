//! Snapshots of real guests: a guest stopped half way by its snapshot port, saved to bytes,
//! loaded and restored into a new VM, finishes with exactly the output of a run that was
//! never interrupted; every piece of vCPU state set before the snapshot comes back.
#![cfg(target_arch = "x86_64")]

mod common;

use rawkvm::Kvm;
use rawkvm::arch::x86_64::msr::Msr;
use rawkvm::machine::irq::IrqChip;
use rawkvm::snapshot::{Snapshot, SnapshotError};

use common::snapshot::{run, snapshot_of};

fn resume(kvm: &Kvm, snapshot: &Snapshot) -> Vec<u8> {
    let bytes = snapshot.to_bytes();
    let loaded = Snapshot::from_bytes(&bytes).expect("the bytes decode");
    assert_eq!(&loaded, snapshot, "the file holds the snapshot exactly");
    let mut restored = loaded
        .restore(kvm)
        .expect("the snapshot restores and verifies");
    let (output, again) = run(&mut restored);
    assert!(!again, "the snapshot port is pulled once");
    output
}

#[test]
fn a_guest_snapshotted_half_way_finishes_as_if_never_stopped() {
    let Some(kvm) = common::kvm_or_skip("snapshot") else {
        return;
    };
    eprintln!("backend: {}", common::backend());
    let mut whole = common::machine(&kvm, "snapshot_count");
    let (uninterrupted, stopped) = run(&mut whole);
    assert!(stopped, "the guest pulls the snapshot port");
    // The uninterrupted run: resume the same machine without a snapshot in between.
    let (rest, _) = run(&mut whole);
    let uninterrupted = [uninterrupted, rest].concat();
    assert!(uninterrupted.ends_with(b"0010\n05D8:05D8:05D8\n"));

    let mut machine = common::machine(&kvm, "snapshot_count");
    let (first_half, stopped) = run(&mut machine);
    assert!(stopped);
    assert_eq!(
        first_half,
        b"0001\n0002\n0003\n0004\n0005\n0006\n0007\n0008\n"
    );
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    assert_eq!(snapshot.vcpus.len(), 1);
    assert_eq!(snapshot.vm.slots.len(), 1);
    let second_half = resume(&kvm, &snapshot);
    assert_eq!([first_half, second_half].concat(), uninterrupted);
}

#[test]
fn fpu_debug_registers_xcrs_msrs_and_cpuid_set_before_a_snapshot_come_back() {
    let Some(kvm) = common::kvm_or_skip("snapshot state") else {
        return;
    };
    let mut machine = common::machine(&kvm, "snapshot_count");
    run(&mut machine);
    let vcpu = &machine.vcpus_mut()[0];
    let mut xsave = vcpu.xsave().unwrap();
    // MXCSR (byte 24 of the FXSAVE region) and XMM0 (byte 160): values no reset produces,
    // marked present in XSTATE_BV (byte 512: x87 and SSE).
    xsave.region[6] = 0x1F80 | 0x6000; // round toward zero
    xsave.region[40] = 0xDEAD_BEEF;
    xsave.region[128] |= 0b11;
    vcpu.set_xsave(&xsave).unwrap();
    let mut debugregs = vcpu.debugregs().unwrap();
    debugregs.db[0] = 0x1234_5678;
    vcpu.set_debugregs(&debugregs).unwrap();
    // IA32_SYSENTER_EIP, an MSR of the index list no reset sets.
    vcpu.set_msrs(&[Msr::new(0x176, 0xFEED_F00D)]).unwrap();
    let cpuid = vcpu.cpuid().unwrap();
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    assert_eq!(snapshot.vcpus[0].xsave.region[6], 0x7F80);
    let mut restored = snapshot.restore(&kvm).expect("restores and verifies");
    let vcpu = &restored.vcpus_mut()[0];
    assert_eq!(vcpu.xsave().unwrap().region[40], 0xDEAD_BEEF);
    assert_eq!(vcpu.xsave().unwrap().region[6], 0x7F80);
    assert_eq!(vcpu.debugregs().unwrap().db[0], 0x1234_5678);
    assert_eq!(vcpu.msrs(&[0x176]).unwrap(), [Msr::new(0x176, 0xFEED_F00D)]);
    assert!(!cpuid.entries().is_empty(), "rawkvm sets a CPUID table");
    assert!(vcpu.cpuid().unwrap().same_as(&cpuid));
    assert_eq!(
        vcpu.xcrs().unwrap().xcrs[0].value,
        snapshot.vcpus[0].xcrs.unwrap().xcrs[0].value
    );
}

#[test]
fn a_pit_ticked_guest_with_the_kernels_irqchip_restores_and_forks_half_way() {
    let Some(kvm) = common::kvm_or_skip("snapshot irqchip") else {
        return;
    };
    eprintln!("backend: {}", common::backend());
    // 100 ticks at 1 kHz, the snapshot port pulled at tick 50 (param bit 15).
    let mut machine = common::machine_with_param(&kvm, "timer_pit", 0x8064);
    let (first_half, stopped) = run(&mut machine);
    assert!(stopped);
    assert_eq!(first_half, b"half 0032\n");
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    let vm = &snapshot.vm;
    assert!(vm.irqchip.is_some() && vm.pit.is_some() && snapshot.vcpus[0].lapic.is_some());
    // The PIC master as the guest programmed it: vectors from 0x20, all but IRQ 0 masked.
    let master = vm.irqchip.as_ref().unwrap().pic_master.chip[0].to_le_bytes();
    assert_eq!((master[2], master[5]), (0xFE, 0x20), "imr, irq_base");
    assert_eq!(vm.pit.unwrap().channels[0].count, 1193);
    assert_eq!(resume(&kvm, &snapshot), b"ticks 0064\n");
    let image = snapshot.clone().fork_image().unwrap();
    for child in 0..2 {
        let mut child_machine = image.spawn(&kvm).unwrap();
        assert!(child_machine.vm().has_irqchip());
        assert_eq!(run(&mut child_machine).0, b"ticks 0064\n", "child {child}");
    }
    // Part of an irqchip is a file rawkvm never wrote: refused (status 4), nothing created.
    let mut partial = snapshot;
    partial.vm.irqchip = None;
    let error = partial.restore(&kvm).unwrap_err();
    assert!(
        matches!(
            error,
            rawkvm::Error::Snapshot(SnapshotError::IrqchipIncomplete {
                chips: false,
                lapics: 1,
                vcpus: 1
            })
        ),
        "{error}"
    );
    assert_eq!(
        error.to_string(),
        "the snapshot holds no PICs or IOAPIC and a local APIC for 1 of its 1 vCPUs: an \
         in-kernel irqchip has all of them or none; the file is not one rawkvm wrote"
    );
}

#[test]
fn long_and_user_mode_guests_snapshotted_before_their_first_run_restore_and_finish() {
    let Some(kvm) = common::kvm_or_skip("snapshot modes") else {
        return;
    };
    // Long mode at CPL 0 (port console, hlt), at CPL 3 (MMIO console, exit device), and long
    // mode with the kernel's LAPIC timer: the restored VM has the paging, segments, GDT/IDT
    // and (for timer_lapic) the irqchip the snapshot holds, or it prints something else.
    for (guest, irqchip, text) in [
        ("long_hello", IrqChip::None, "Hello from long mode!\n"),
        ("user_hello", IrqChip::None, "Hello from user mode!\n"),
        ("timer_lapic", IrqChip::Kernel, "ticks 0000000000000064\n"),
    ] {
        let mut machine = common::machine(&kvm, guest);
        let snapshot = snapshot_of(&kvm, &mut machine);
        drop(machine);
        assert_eq!(
            snapshot.vm.irqchip.is_some(),
            irqchip == IrqChip::Kernel,
            "{guest}"
        );
        assert_eq!(
            String::from_utf8_lossy(&resume(&kvm, &snapshot)),
            text,
            "{guest}"
        );
    }
}
