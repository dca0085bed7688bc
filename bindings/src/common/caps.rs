//! Every `KVM_CAP_*` of `<linux/kvm.h>`: the argument of `KVM_CHECK_EXTENSION` and
//! `KVM_ENABLE_CAP`.
//!
//! The list is Linux 6.18's (0 to 244; the kernel skips 5, 17, 19, 20, 27 and 28), plus the two
//! capabilities Linux 6.19 adds (245, 246), marked as such. `KVM_CHECK_EXTENSION` returns 0 for a
//! capability the running kernel lacks, so asking for a newer one is harmless. api.rst sections 6
//! to 8 document each capability.

use crate::names::{name_in, named_constants};

named_constants! {
    /// Every capability this crate knows, in numeric order.
    pub const CAPABILITIES: [u32];
    /// In-kernel PIC/IOAPIC/local APIC (`KVM_CREATE_IRQCHIP`).
    KVM_CAP_IRQCHIP = 0,
    /// `hlt` exits to user space as `KVM_EXIT_HLT` when no in-kernel APIC handles it.
    KVM_CAP_HLT = 1,
    KVM_CAP_MMU_SHADOW_CACHE_CONTROL = 2,
    /// `KVM_SET_USER_MEMORY_REGION`.
    KVM_CAP_USER_MEMORY = 3,
    /// x86: `KVM_SET_TSS_ADDR`.
    KVM_CAP_SET_TSS_ADDR = 4,
    KVM_CAP_VAPIC = 6,
    /// x86: `KVM_GET_SUPPORTED_CPUID` and `KVM_SET_CPUID2`.
    KVM_CAP_EXT_CPUID = 7,
    KVM_CAP_CLOCKSOURCE = 8,
    /// The recommended number of vCPUs per VM.
    KVM_CAP_NR_VCPUS = 9,
    /// The number of memory slots per address space.
    KVM_CAP_NR_MEMSLOTS = 10,
    KVM_CAP_PIT = 11,
    KVM_CAP_NOP_IO_DELAY = 12,
    KVM_CAP_PV_MMU = 13,
    KVM_CAP_MP_STATE = 14,
    /// The page offset of the coalesced-MMIO ring in the vCPU mapping (0: none).
    KVM_CAP_COALESCED_MMIO = 15,
    /// Changes to the host mapping of guest memory are seen by the guest.
    KVM_CAP_SYNC_MMU = 16,
    KVM_CAP_IOMMU = 18,
    KVM_CAP_DESTROY_MEMORY_REGION_WORKS = 21,
    KVM_CAP_USER_NMI = 22,
    /// `KVM_SET_GUEST_DEBUG`.
    KVM_CAP_SET_GUEST_DEBUG = 23,
    KVM_CAP_REINJECT_CONTROL = 24,
    KVM_CAP_IRQ_ROUTING = 25,
    KVM_CAP_IRQ_INJECT_STATUS = 26,
    KVM_CAP_ASSIGN_DEV_IRQ = 29,
    KVM_CAP_JOIN_MEMORY_REGIONS_WORKS = 30,
    KVM_CAP_MCE = 31,
    KVM_CAP_IRQFD = 32,
    KVM_CAP_PIT2 = 33,
    KVM_CAP_SET_BOOT_CPU_ID = 34,
    KVM_CAP_PIT_STATE2 = 35,
    KVM_CAP_IOEVENTFD = 36,
    /// x86: `KVM_SET_IDENTITY_MAP_ADDR`.
    KVM_CAP_SET_IDENTITY_MAP_ADDR = 37,
    KVM_CAP_XEN_HVM = 38,
    KVM_CAP_ADJUST_CLOCK = 39,
    /// `internal.ndata`/`internal.data` are filled on `KVM_EXIT_INTERNAL_ERROR`.
    KVM_CAP_INTERNAL_ERROR_DATA = 40,
    /// `KVM_GET_VCPU_EVENTS`/`KVM_SET_VCPU_EVENTS`.
    KVM_CAP_VCPU_EVENTS = 41,
    KVM_CAP_S390_PSW = 42,
    KVM_CAP_PPC_SEGSTATE = 43,
    KVM_CAP_HYPERV = 44,
    KVM_CAP_HYPERV_VAPIC = 45,
    KVM_CAP_HYPERV_SPIN = 46,
    KVM_CAP_PCI_SEGMENT = 47,
    KVM_CAP_PPC_PAIRED_SINGLES = 48,
    KVM_CAP_INTR_SHADOW = 49,
    KVM_CAP_DEBUGREGS = 50,
    KVM_CAP_X86_ROBUST_SINGLESTEP = 51,
    KVM_CAP_PPC_OSI = 52,
    KVM_CAP_PPC_UNSET_IRQ = 53,
    /// `KVM_ENABLE_CAP` on a vCPU fd.
    KVM_CAP_ENABLE_CAP = 54,
    KVM_CAP_XSAVE = 55,
    KVM_CAP_XCRS = 56,
    KVM_CAP_PPC_GET_PVINFO = 57,
    KVM_CAP_PPC_IRQ_LEVEL = 58,
    KVM_CAP_ASYNC_PF = 59,
    KVM_CAP_TSC_CONTROL = 60,
    KVM_CAP_GET_TSC_KHZ = 61,
    KVM_CAP_PPC_BOOKE_SREGS = 62,
    KVM_CAP_SPAPR_TCE = 63,
    KVM_CAP_PPC_SMT = 64,
    KVM_CAP_PPC_RMA = 65,
    /// The maximum number of vCPUs per VM.
    KVM_CAP_MAX_VCPUS = 66,
    KVM_CAP_PPC_HIOR = 67,
    KVM_CAP_PPC_PAPR = 68,
    KVM_CAP_SW_TLB = 69,
    KVM_CAP_ONE_REG = 70,
    KVM_CAP_S390_GMAP = 71,
    KVM_CAP_TSC_DEADLINE_TIMER = 72,
    KVM_CAP_S390_UCONTROL = 73,
    /// The register sets `kvm_run.s.regs` can carry (`KVM_SYNC_X86_*` bits on x86).
    KVM_CAP_SYNC_REGS = 74,
    KVM_CAP_PCI_2_3 = 75,
    KVM_CAP_KVMCLOCK_CTRL = 76,
    KVM_CAP_SIGNAL_MSI = 77,
    KVM_CAP_PPC_GET_SMMU_INFO = 78,
    KVM_CAP_S390_COW = 79,
    KVM_CAP_PPC_ALLOC_HTAB = 80,
    /// `KVM_MEM_READONLY` slots.
    KVM_CAP_READONLY_MEM = 81,
    KVM_CAP_IRQFD_RESAMPLE = 82,
    KVM_CAP_PPC_BOOKE_WATCHDOG = 83,
    KVM_CAP_PPC_HTAB_FD = 84,
    KVM_CAP_S390_CSS_SUPPORT = 85,
    KVM_CAP_PPC_EPR = 86,
    KVM_CAP_ARM_PSCI = 87,
    KVM_CAP_ARM_SET_DEVICE_ADDR = 88,
    KVM_CAP_DEVICE_CTRL = 89,
    KVM_CAP_IRQ_MPIC = 90,
    KVM_CAP_PPC_RTAS = 91,
    KVM_CAP_IRQ_XICS = 92,
    KVM_CAP_ARM_EL1_32BIT = 93,
    KVM_CAP_SPAPR_MULTITCE = 94,
    KVM_CAP_EXT_EMUL_CPUID = 95,
    KVM_CAP_HYPERV_TIME = 96,
    KVM_CAP_IOAPIC_POLARITY_IGNORED = 97,
    /// `KVM_ENABLE_CAP` on a VM fd.
    KVM_CAP_ENABLE_CAP_VM = 98,
    KVM_CAP_S390_IRQCHIP = 99,
    KVM_CAP_IOEVENTFD_NO_LENGTH = 100,
    KVM_CAP_VM_ATTRIBUTES = 101,
    KVM_CAP_ARM_PSCI_0_2 = 102,
    KVM_CAP_PPC_FIXUP_HCALL = 103,
    KVM_CAP_PPC_ENABLE_HCALL = 104,
    /// `KVM_CHECK_EXTENSION` on a VM fd.
    KVM_CAP_CHECK_EXTENSION_VM = 105,
    KVM_CAP_S390_USER_SIGP = 106,
    KVM_CAP_S390_VECTOR_REGISTERS = 107,
    KVM_CAP_S390_MEM_OP = 108,
    KVM_CAP_S390_USER_STSI = 109,
    KVM_CAP_S390_SKEYS = 110,
    KVM_CAP_MIPS_FPU = 111,
    KVM_CAP_MIPS_MSA = 112,
    KVM_CAP_S390_INJECT_IRQ = 113,
    KVM_CAP_S390_IRQ_STATE = 114,
    KVM_CAP_PPC_HWRNG = 115,
    KVM_CAP_DISABLE_QUIRKS = 116,
    KVM_CAP_X86_SMM = 117,
    KVM_CAP_MULTI_ADDRESS_SPACE = 118,
    KVM_CAP_GUEST_DEBUG_HW_BPS = 119,
    KVM_CAP_GUEST_DEBUG_HW_WPS = 120,
    KVM_CAP_SPLIT_IRQCHIP = 121,
    KVM_CAP_IOEVENTFD_ANY_LENGTH = 122,
    KVM_CAP_HYPERV_SYNIC = 123,
    KVM_CAP_S390_RI = 124,
    KVM_CAP_SPAPR_TCE_64 = 125,
    KVM_CAP_ARM_PMU_V3 = 126,
    KVM_CAP_VCPU_ATTRIBUTES = 127,
    /// The highest vCPU id plus one.
    KVM_CAP_MAX_VCPU_ID = 128,
    KVM_CAP_X2APIC_API = 129,
    KVM_CAP_S390_USER_INSTR0 = 130,
    KVM_CAP_MSI_DEVID = 131,
    KVM_CAP_PPC_HTM = 132,
    KVM_CAP_SPAPR_RESIZE_HPT = 133,
    KVM_CAP_PPC_MMU_RADIX = 134,
    KVM_CAP_PPC_MMU_HASH_V3 = 135,
    /// `kvm_run.immediate_exit`.
    KVM_CAP_IMMEDIATE_EXIT = 136,
    KVM_CAP_MIPS_VZ = 137,
    KVM_CAP_MIPS_TE = 138,
    KVM_CAP_MIPS_64BIT = 139,
    KVM_CAP_S390_GS = 140,
    KVM_CAP_S390_AIS = 141,
    KVM_CAP_SPAPR_TCE_VFIO = 142,
    KVM_CAP_X86_DISABLE_EXITS = 143,
    KVM_CAP_ARM_USER_IRQ = 144,
    KVM_CAP_S390_CMMA_MIGRATION = 145,
    KVM_CAP_PPC_FWNMI = 146,
    KVM_CAP_PPC_SMT_POSSIBLE = 147,
    KVM_CAP_HYPERV_SYNIC2 = 148,
    KVM_CAP_HYPERV_VP_INDEX = 149,
    KVM_CAP_S390_AIS_MIGRATION = 150,
    KVM_CAP_PPC_GET_CPU_CHAR = 151,
    KVM_CAP_S390_BPB = 152,
    KVM_CAP_GET_MSR_FEATURES = 153,
    KVM_CAP_HYPERV_EVENTFD = 154,
    KVM_CAP_HYPERV_TLBFLUSH = 155,
    KVM_CAP_S390_HPAGE_1M = 156,
    KVM_CAP_NESTED_STATE = 157,
    KVM_CAP_ARM_INJECT_SERROR_ESR = 158,
    KVM_CAP_MSR_PLATFORM_INFO = 159,
    KVM_CAP_PPC_NESTED_HV = 160,
    KVM_CAP_HYPERV_SEND_IPI = 161,
    /// Coalesced port I/O zones (`kvm_coalesced_mmio_zone.pio = 1`).
    KVM_CAP_COALESCED_PIO = 162,
    KVM_CAP_HYPERV_ENLIGHTENED_VMCS = 163,
    KVM_CAP_EXCEPTION_PAYLOAD = 164,
    KVM_CAP_ARM_VM_IPA_SIZE = 165,
    /// Obsolete: superseded by `KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`.
    KVM_CAP_MANUAL_DIRTY_LOG_PROTECT = 166,
    KVM_CAP_HYPERV_CPUID = 167,
    /// `KVM_CLEAR_DIRTY_LOG`; the value is the flags it supports.
    KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 = 168,
    KVM_CAP_PPC_IRQ_XIVE = 169,
    KVM_CAP_ARM_SVE = 170,
    KVM_CAP_ARM_PTRAUTH_ADDRESS = 171,
    KVM_CAP_ARM_PTRAUTH_GENERIC = 172,
    KVM_CAP_PMU_EVENT_FILTER = 173,
    KVM_CAP_ARM_IRQ_LINE_LAYOUT_2 = 174,
    KVM_CAP_HYPERV_DIRECT_TLBFLUSH = 175,
    KVM_CAP_PPC_GUEST_DEBUG_SSTEP = 176,
    KVM_CAP_ARM_NISV_TO_USER = 177,
    KVM_CAP_ARM_INJECT_EXT_DABT = 178,
    KVM_CAP_S390_VCPU_RESETS = 179,
    KVM_CAP_S390_PROTECTED = 180,
    KVM_CAP_PPC_SECURE_GUEST = 181,
    KVM_CAP_HALT_POLL = 182,
    KVM_CAP_ASYNC_PF_INT = 183,
    KVM_CAP_LAST_CPU = 184,
    KVM_CAP_SMALLER_MAXPHYADDR = 185,
    KVM_CAP_S390_DIAG318 = 186,
    KVM_CAP_STEAL_TIME = 187,
    /// x86: MSR accesses can exit to user space (`KVM_EXIT_X86_RDMSR`/`WRMSR`).
    KVM_CAP_X86_USER_SPACE_MSR = 188,
    /// x86: `KVM_X86_SET_MSR_FILTER`.
    KVM_CAP_X86_MSR_FILTER = 189,
    KVM_CAP_ENFORCE_PV_FEATURE_CPUID = 190,
    KVM_CAP_SYS_HYPERV_CPUID = 191,
    /// Per-vCPU dirty rings; the value is the largest ring in bytes.
    KVM_CAP_DIRTY_LOG_RING = 192,
    KVM_CAP_X86_BUS_LOCK_EXIT = 193,
    KVM_CAP_PPC_DAWR1 = 194,
    KVM_CAP_SET_GUEST_DEBUG2 = 195,
    KVM_CAP_SGX_ATTRIBUTE = 196,
    KVM_CAP_VM_COPY_ENC_CONTEXT_FROM = 197,
    KVM_CAP_PTP_KVM = 198,
    KVM_CAP_HYPERV_ENFORCE_CPUID = 199,
    KVM_CAP_SREGS2 = 200,
    /// Hypercalls that can exit to user space as `KVM_EXIT_HYPERCALL` (a bitmap).
    KVM_CAP_EXIT_HYPERCALL = 201,
    KVM_CAP_PPC_RPT_INVALIDATE = 202,
    /// `KVM_GET_STATS_FD`.
    KVM_CAP_BINARY_STATS_FD = 203,
    /// x86: emulation failures report `emulation_failure` data.
    KVM_CAP_EXIT_ON_EMULATION_FAILURE = 204,
    KVM_CAP_ARM_MTE = 205,
    KVM_CAP_VM_MOVE_ENC_CONTEXT_FROM = 206,
    KVM_CAP_VM_GPA_BITS = 207,
    KVM_CAP_XSAVE2 = 208,
    KVM_CAP_SYS_ATTRIBUTES = 209,
    KVM_CAP_PPC_AIL_MODE_3 = 210,
    KVM_CAP_S390_MEM_OP_EXTENSION = 211,
    KVM_CAP_PMU_CAPABILITY = 212,
    KVM_CAP_DISABLE_QUIRKS2 = 213,
    KVM_CAP_VM_TSC_CONTROL = 214,
    /// `system_event.ndata`/`system_event.data`.
    KVM_CAP_SYSTEM_EVENT_DATA = 215,
    KVM_CAP_ARM_SYSTEM_SUSPEND = 216,
    KVM_CAP_S390_PROTECTED_DUMP = 217,
    /// x86: `kvm_vcpu_events.triple_fault`.
    KVM_CAP_X86_TRIPLE_FAULT_EVENT = 218,
    /// x86: `KVM_EXIT_NOTIFY`.
    KVM_CAP_X86_NOTIFY_VMEXIT = 219,
    KVM_CAP_VM_DISABLE_NX_HUGE_PAGES = 220,
    KVM_CAP_S390_ZPCI_OP = 221,
    KVM_CAP_S390_CPU_TOPOLOGY = 222,
    KVM_CAP_DIRTY_LOG_RING_ACQ_REL = 223,
    KVM_CAP_S390_PROTECTED_ASYNC_DISABLE = 224,
    KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP = 225,
    KVM_CAP_PMU_EVENT_MASKED_EVENTS = 226,
    KVM_CAP_COUNTER_OFFSET = 227,
    KVM_CAP_ARM_EAGER_SPLIT_CHUNK_SIZE = 228,
    KVM_CAP_ARM_SUPPORTED_BLOCK_SIZES = 229,
    KVM_CAP_ARM_SUPPORTED_REG_MASK_RANGES = 230,
    /// `KVM_SET_USER_MEMORY_REGION2`. Linux 6.8.
    KVM_CAP_USER_MEMORY2 = 231,
    /// `KVM_EXIT_MEMORY_FAULT` accompanies some `EFAULT`s from `KVM_RUN`. Linux 6.8.
    KVM_CAP_MEMORY_FAULT_INFO = 232,
    /// `KVM_SET_MEMORY_ATTRIBUTES`. Linux 6.8.
    KVM_CAP_MEMORY_ATTRIBUTES = 233,
    /// `KVM_CREATE_GUEST_MEMFD`. Linux 6.8.
    KVM_CAP_GUEST_MEMFD = 234,
    /// The VM types `KVM_CREATE_VM` accepts (a bitmap). Linux 6.8.
    KVM_CAP_VM_TYPES = 235,
    KVM_CAP_PRE_FAULT_MEMORY = 236,
    KVM_CAP_X86_APIC_BUS_CYCLES_NS = 237,
    KVM_CAP_X86_GUEST_MODE = 238,
    KVM_CAP_ARM_WRITABLE_IMP_ID_REGS = 239,
    KVM_CAP_ARM_EL2 = 240,
    KVM_CAP_ARM_EL2_E2H0 = 241,
    KVM_CAP_RISCV_MP_STATE_RESET = 242,
    KVM_CAP_ARM_CACHEABLE_PFNMAP_SUPPORTED = 243,
    /// The `KVM_CREATE_GUEST_MEMFD` flags supported. Linux 6.18.
    KVM_CAP_GUEST_MEMFD_FLAGS = 244,
    /// arm64: synchronous external aborts exit as `KVM_EXIT_ARM_SEA`. Linux 6.19; not in 6.18.
    KVM_CAP_ARM_SEA_TO_USER = 245,
    /// s390: operation exceptions exit to user space. Linux 6.19; not in Linux 6.18.
    KVM_CAP_S390_USER_OPEREXEC = 246,
}

/// The kernel name of capability `cap` (`capability_name(3) == Some("KVM_CAP_USER_MEMORY")`).
pub const fn capability_name(cap: u32) -> Option<&'static str> {
    name_in(CAPABILITIES, cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names() {
        assert_eq!(capability_name(3), Some("KVM_CAP_USER_MEMORY"));
        assert_eq!(
            capability_name(KVM_CAP_SYNC_REGS),
            Some("KVM_CAP_SYNC_REGS")
        );
        assert_eq!(capability_name(5), None);
        assert_eq!(capability_name(247), None);
    }

    #[test]
    fn capabilities_are_sorted_and_unique() {
        assert!(CAPABILITIES.windows(2).all(|pair| pair[0].0 < pair[1].0));
        assert_eq!(CAPABILITIES.len(), 241);
    }
}
