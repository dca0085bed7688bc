//! `docs/TEST-PLAN.md` §8 A and B through the library: memory slots that overlap, wrap or reuse a
//! slot, a slot number past `KVM_CAP_NR_MEMSLOTS`, address space that cannot be reserved,
//! register values the kernel refuses, vCPU ids taken twice, devices that are not KVM. Each
//! is a named error variant with its exit status and message; none leaves anything behind
//! (tests/leaks.rs counts that).
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{kvm_or_skip, region};
use nix::errno::Errno;
use rawkvm::error::{Error, ErrorKind, RegionProblem};
use rawkvm::kvm::vcpu::RunError;
use rawkvm::{Kvm, arch};

const MIB: u64 = 1 << 20;

#[test]
fn overlapping_regions_are_refused_naming_the_other_slot_and_adjacent_ones_are_fine() {
    let Some(kvm) = kvm_or_skip("overlapping_regions") else {
        return;
    };
    let mut vm = kvm.create_vm().unwrap();
    vm.add_memory_region(region(0, 0, 2 * MIB)).unwrap();
    let error = vm.add_memory_region(region(1, MIB, 2 * MIB)).unwrap_err();
    match &error {
        Error::InvalidRegion {
            slot: 1,
            guest_phys_addr: 0x100000,
            size: 0x200000,
            reason:
                RegionProblem::Overlaps {
                    slot: 0,
                    start: 0,
                    end: 0x200000,
                },
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(
        error.to_string(),
        "memory region [0x100000,0x300000) for slot 1: overlaps slot 0 [0x0,0x200000)"
    );
    assert_eq!(error.kind(), ErrorKind::Config);
    // Touching, not overlapping: [2M, 4M) right after [0, 2M).
    vm.add_memory_region(region(1, 2 * MIB, 2 * MIB)).unwrap();
    assert_eq!(vm.memory().regions().len(), 2);
}

#[test]
fn slot_reuse_wraps_misalignment_and_slots_past_the_limit_are_refused() {
    let Some(kvm) = kvm_or_skip("slot_problems") else {
        return;
    };
    let mut vm = kvm.create_vm().unwrap();
    vm.add_memory_region(region(0, 0, MIB)).unwrap();
    let limit = vm.nr_memslots().expect("KVM_CAP_NR_MEMSLOTS");
    let cases = [
        (region(0, 4 * MIB, 2 * MIB), RegionProblem::SlotInUse),
        (region(1, u64::MAX - 0xFFF, 0x2000), RegionProblem::Wraps),
        (region(1, 0x800 + 8 * MIB, 0x1000), RegionProblem::Unaligned),
        (region(1, 8 * MIB, 0x1800), RegionProblem::Unaligned),
        (region(1, 8 * MIB, 0), RegionProblem::Empty),
        (
            region(limit, 8 * MIB, 0x1000),
            RegionProblem::SlotOutOfRange { limit },
        ),
        (
            region(u32::MAX, 8 * MIB, 0x1000),
            RegionProblem::SlotOutOfRange { limit },
        ),
    ];
    for (bad, problem) in cases {
        match vm.add_memory_region(bad) {
            Err(Error::InvalidRegion { reason, .. }) => assert_eq!(reason, problem, "{bad:?}"),
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    let message = vm
        .add_memory_region(region(limit, 8 * MIB, 0x1000))
        .unwrap_err()
        .to_string();
    assert_eq!(
        message,
        format!(
            "memory region [0x800000,0x801000) for slot {limit}: slot numbers must be below \
             KVM_CAP_NR_MEMSLOTS ({limit})"
        )
    );
    // The last slot number there is works.
    vm.add_memory_region(region(limit - 1, 8 * MIB, 0x1000))
        .unwrap();
    assert_eq!(vm.memory().regions().len(), 2, "nothing else was added");
}

#[test]
fn reserving_256_tib_fails_with_enomem_and_status_5() {
    let Some(kvm) = kvm_or_skip("reserving_256_tib") else {
        return;
    };
    let mut vm = kvm.create_vm().unwrap();
    let error = vm.add_memory_region(region(0, 0, 256 << 40)).unwrap_err();
    match &error {
        Error::MapMemory {
            size,
            errno: Errno::ENOMEM,
        } => assert_eq!(*size, 256 << 40),
        other => panic!("{other:?}"),
    }
    assert_eq!(error.kind(), ErrorKind::Setup);
    assert_eq!(
        error.to_string(),
        "cannot reserve 256 TiB of address space for guest RAM: ENOMEM (Out of memory)"
    );
    assert!(vm.memory().regions().is_empty());
}

#[test]
fn invalid_sregs_are_rejected_with_cr0_named_and_nothing_changes() {
    let Some(kvm) = kvm_or_skip("invalid_sregs") else {
        return;
    };
    let vm = kvm.create_vm().unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    arch::reset_vcpu(&vcpu, &arch::Entry::default(), 0).unwrap();
    let before = vcpu.sregs().unwrap();
    const PE: u64 = 1;
    const NW: u64 = 1 << 29;
    const CD: u64 = 1 << 30;
    const PG: u64 = 1 << 31;
    let mut cases = Vec::new();
    for (what, cr0) in [
        ("CR0.NW without CR0.CD", (before.cr0 | NW) & !CD),
        ("CR0.PG without CR0.PE", (before.cr0 | PG) & !PE),
        ("CR0 bit 40 (reserved)", before.cr0 | (1 << 40)),
    ] {
        let mut sregs = before;
        sregs.cr0 = cr0;
        cases.push((what, sregs));
    }
    let mut sregs = before;
    sregs.apic_base = 1 << 10;
    cases.push(("APIC_BASE x2APIC without enable", sregs));
    for (what, bad) in cases {
        let error = vcpu.set_sregs(&bad).unwrap_err();
        match &error {
            Error::RegistersRejected {
                ioctl: "KVM_SET_SREGS",
                errno: Errno::EINVAL,
                values,
            } => assert_eq!(
                values.as_slice(),
                [
                    ("CR0", bad.cr0),
                    ("CR4", bad.cr4),
                    ("EFER", bad.efer),
                    ("APIC_BASE", bad.apic_base)
                ],
                "{what}"
            ),
            other => panic!("{what}: {other:?}"),
        }
        assert_eq!(error.kind(), ErrorKind::Setup, "{what}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "KVM_SET_SREGS rejected CR0={:#x}, CR4={:#x}, EFER={:#x}, APIC_BASE={:#x}: \
                 EINVAL (Invalid argument)",
                bad.cr0, bad.cr4, bad.efer, bad.apic_base
            )),
            "{what}: {message}"
        );
        assert_eq!(
            vcpu.sregs().unwrap(),
            before,
            "{what}: KVM changed something"
        );
    }
}

#[test]
fn a_duplicate_vcpu_id_is_eexist_named() {
    let Some(kvm) = kvm_or_skip("duplicate_vcpu_id") else {
        return;
    };
    let vm = kvm.create_vm().unwrap();
    let _first = vm.create_vcpu(3).unwrap();
    let error = vm.create_vcpu(3).unwrap_err();
    match &error {
        Error::CreateVcpu {
            id: 3,
            errno: Errno::EEXIST,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(error.kind(), ErrorKind::Setup);
    assert_eq!(
        error.to_string(),
        "cannot create vCPU 3: KVM_CREATE_VCPU failed: EEXIST (File exists) (a vCPU with that \
         id already exists)"
    );
}

#[test]
fn devices_that_are_not_kvm_are_named_errors() {
    match Kvm::open_path("/dev/null") {
        Err(Error::NotKvm {
            errno: Errno::ENOTTY,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    match Kvm::open_path("/") {
        Err(
            error @ Error::OpenDevice {
                errno: Errno::EISDIR,
                ..
            },
        ) => assert_eq!(error.kind(), ErrorKind::KvmUnavailable),
        other => panic!("{other:?}"),
    }
    match Kvm::open_path("/nonexistent/kvm") {
        Err(Error::OpenDevice {
            errno: Errno::ENOENT,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
}

/// §8 B 24: `KVM_RUN` on a VM with no memory at all. PVM says `ENOSPC` (measured, and held to
/// there); VMX and SVM report `KVM_EXIT_INTERNAL_ERROR`. Either way a named result, and a
/// second call is safe.
#[test]
fn kvm_run_without_memory_is_a_named_result_twice() {
    let Some(kvm) = kvm_or_skip("kvm_run_without_memory") else {
        return;
    };
    let vm = kvm.create_vm().unwrap();
    let mut vcpu = vm.create_vcpu(0).unwrap();
    for attempt in 1..=2 {
        match vcpu.run() {
            Err(RunError::Failed(Errno::ENOSPC)) => {
                println!("backend {}: attempt {attempt}: ENOSPC", common::backend())
            }
            Ok(rawkvm::exit::Exit::InternalError { suberror, .. })
                if common::backend() != "kvm_pvm" =>
            {
                println!(
                    "backend {}: attempt {attempt}: INTERNAL_ERROR suberror {suberror}",
                    common::backend()
                )
            }
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
}
