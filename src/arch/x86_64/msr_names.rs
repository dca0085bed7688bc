//! Names of model-specific registers, as the Intel SDM (vol. 4), the AMD APM (vol. 2,
//! appendix A) and the kernel (`arch/x86/include/asm/msr-index.h`, `uapi/asm/kvm_para.h`) call
//! them: every MSR in `KVM_GET_MSR_INDEX_LIST` and `KVM_GET_MSR_FEATURE_INDEX_LIST` on the
//! project's hosts, and the architectural ones a VMM sets up (EFER, APIC_BASE, the segment
//! bases, MTRRs) whether or not the index list names them.

/// `(index, name)`, sorted by index.
pub const MSR_NAMES: &[(u32, &str)] = &[
    (0x10, "IA32_TSC"),
    (0x11, "MSR_KVM_WALL_CLOCK"),
    (0x12, "MSR_KVM_SYSTEM_TIME"),
    (0x1b, "IA32_APIC_BASE"),
    (0x34, "MSR_SMI_COUNT"),
    (0x3a, "IA32_FEATURE_CONTROL"),
    (0x3b, "IA32_TSC_ADJUST"),
    (0x48, "IA32_SPEC_CTRL"),
    (0x49, "IA32_PRED_CMD"),
    (0x8b, "IA32_UCODE_REV"),
    (0xce, "MSR_PLATFORM_INFO"),
    (0xe7, "IA32_MPERF"),
    (0xe8, "IA32_APERF"),
    (0xfe, "IA32_MTRRCAP"),
    (0x10a, "IA32_ARCH_CAPABILITIES"),
    (0x140, "MSR_MISC_FEATURES_ENABLES"),
    (0x174, "IA32_SYSENTER_CS"),
    (0x175, "IA32_SYSENTER_ESP"),
    (0x176, "IA32_SYSENTER_EIP"),
    (0x179, "IA32_MCG_CAP"),
    (0x17a, "IA32_MCG_STATUS"),
    (0x17b, "IA32_MCG_CTL"),
    (0x1a0, "IA32_MISC_ENABLE"),
    (0x1d9, "IA32_DEBUGCTL"),
    (0x1db, "MSR_LASTBRANCHFROMIP"),
    (0x1dc, "MSR_LASTBRANCHTOIP"),
    (0x1dd, "MSR_LASTINTFROMIP"),
    (0x1de, "MSR_LASTINTTOIP"),
    (0x1fc, "MSR_POWER_CTL"),
    (0x200, "IA32_MTRR_PHYSBASE0"),
    (0x201, "IA32_MTRR_PHYSMASK0"),
    (0x202, "IA32_MTRR_PHYSBASE1"),
    (0x203, "IA32_MTRR_PHYSMASK1"),
    (0x204, "IA32_MTRR_PHYSBASE2"),
    (0x205, "IA32_MTRR_PHYSMASK2"),
    (0x206, "IA32_MTRR_PHYSBASE3"),
    (0x207, "IA32_MTRR_PHYSMASK3"),
    (0x208, "IA32_MTRR_PHYSBASE4"),
    (0x209, "IA32_MTRR_PHYSMASK4"),
    (0x20a, "IA32_MTRR_PHYSBASE5"),
    (0x20b, "IA32_MTRR_PHYSMASK5"),
    (0x20c, "IA32_MTRR_PHYSBASE6"),
    (0x20d, "IA32_MTRR_PHYSMASK6"),
    (0x20e, "IA32_MTRR_PHYSBASE7"),
    (0x20f, "IA32_MTRR_PHYSMASK7"),
    (0x250, "IA32_MTRR_FIX64K_00000"),
    (0x258, "IA32_MTRR_FIX16K_80000"),
    (0x259, "IA32_MTRR_FIX16K_A0000"),
    (0x268, "IA32_MTRR_FIX4K_C0000"),
    (0x269, "IA32_MTRR_FIX4K_C8000"),
    (0x26a, "IA32_MTRR_FIX4K_D0000"),
    (0x26b, "IA32_MTRR_FIX4K_D8000"),
    (0x26c, "IA32_MTRR_FIX4K_E0000"),
    (0x26d, "IA32_MTRR_FIX4K_E8000"),
    (0x26e, "IA32_MTRR_FIX4K_F0000"),
    (0x26f, "IA32_MTRR_FIX4K_F8000"),
    (0x277, "IA32_PAT"),
    (0x2ff, "IA32_MTRR_DEF_TYPE"),
    (0x345, "IA32_PERF_CAPABILITIES"),
    (0x6e0, "IA32_TSC_DEADLINE"),
    (0x4b56_4d00, "MSR_KVM_WALL_CLOCK_NEW"),
    (0x4b56_4d01, "MSR_KVM_SYSTEM_TIME_NEW"),
    (0x4b56_4d02, "MSR_KVM_ASYNC_PF_EN"),
    (0x4b56_4d03, "MSR_KVM_STEAL_TIME"),
    (0x4b56_4d04, "MSR_KVM_PV_EOI_EN"),
    (0x4b56_4d05, "MSR_KVM_POLL_CONTROL"),
    (0x4b56_4d06, "MSR_KVM_ASYNC_PF_INT"),
    (0x4b56_4d07, "MSR_KVM_ASYNC_PF_ACK"),
    (0x4b56_4d08, "MSR_KVM_MIGRATION_CONTROL"),
    (0xc000_0080, "IA32_EFER"),
    (0xc000_0081, "IA32_STAR"),
    (0xc000_0082, "IA32_LSTAR"),
    (0xc000_0083, "IA32_CSTAR"),
    (0xc000_0084, "IA32_FMASK"),
    (0xc000_0100, "IA32_FS_BASE"),
    (0xc000_0101, "IA32_GS_BASE"),
    (0xc000_0102, "IA32_KERNEL_GS_BASE"),
    (0xc000_0103, "IA32_TSC_AUX"),
    (0xc001_0015, "MSR_AMD64_HWCR"),
    (0xc001_0117, "MSR_VM_HSAVE_PA"),
    (0xc001_011f, "MSR_AMD64_VIRT_SPEC_CTRL"),
];

/// The name of MSR `index`, if rawkvm knows it.
pub fn msr_name(index: u32) -> Option<&'static str> {
    MSR_NAMES
        .binary_search_by_key(&index, |&(i, _)| i)
        .ok()
        .map(|at| MSR_NAMES[at].1)
}

/// The index of the MSR called `name` (`IA32_EFER`, or without the prefix, `EFER`).
pub fn msr_index(name: &str) -> Option<u32> {
    MSR_NAMES
        .iter()
        .find(|(_, n)| {
            n.eq_ignore_ascii_case(name)
                || ["IA32_", "MSR_"].iter().any(|prefix| {
                    n.strip_prefix(prefix)
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
        })
        .map(|&(i, _)| i)
}

/// `IA32_SYSENTER_CS`: the selector `sysenter` loads; any 16-bit value round-trips.
pub const IA32_SYSENTER_CS: u32 = 0x174;
/// `IA32_STAR`: the selectors `syscall`/`sysret` load.
pub const IA32_STAR: u32 = 0xc000_0081;
/// `IA32_EFER`: long mode enable (LME, bit 8) and active (LMA, bit 10), NX (bit 11), SCE.
pub const IA32_EFER: u32 = 0xc000_0080;
/// `IA32_TSC`: the time-stamp counter.
pub const IA32_TSC: u32 = 0x10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_sorted_and_unique() {
        assert!(MSR_NAMES.windows(2).all(|w| w[0].0 < w[1].0));
        let mut names: Vec<_> = MSR_NAMES.iter().map(|(_, n)| n).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), MSR_NAMES.len());
    }

    #[test]
    fn lookups_both_ways() {
        assert_eq!(msr_name(0xc000_0080), Some("IA32_EFER"));
        assert_eq!(msr_name(0x1b), Some("IA32_APIC_BASE"));
        assert_eq!(msr_name(0x4b56_4d01), Some("MSR_KVM_SYSTEM_TIME_NEW"));
        assert_eq!(msr_name(0xdead), None);
        assert_eq!(msr_index("efer"), Some(IA32_EFER));
        assert_eq!(msr_index("IA32_STAR"), Some(IA32_STAR));
        assert_eq!(msr_index("SYSENTER_CS"), Some(IA32_SYSENTER_CS));
        assert_eq!(msr_index("KVM_STEAL_TIME"), Some(0x4b56_4d03));
        assert_eq!(msr_index("nonsense"), None);
    }
}
