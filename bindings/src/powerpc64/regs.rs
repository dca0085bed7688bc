//! PowerPC vCPU state of `<asm/kvm.h>` (arch/powerpc/include/uapi/asm/kvm.h) and the ppc
//! structs of `<linux/kvm.h>`, as built for 64-bit little-endian (ppc64le).

use crate::common::{KVM_REG_PPC, KVM_REG_SIZE_U32, KVM_REG_SIZE_U64};
use crate::layout::abi;
use crate::names::named_constants;

abi! {
    /// `struct kvm_regs` (ppc), for `KVM_GET_REGS`/`KVM_SET_REGS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_regs (size 392, align 8) {
        /// The program counter (NIP).
        pub pc: u64 => (0, "__u64"),
        /// Condition register.
        pub cr: u64 => (8, "__u64"),
        /// Count register.
        pub ctr: u64 => (16, "__u64"),
        /// Link register.
        pub lr: u64 => (24, "__u64"),
        /// Fixed-point exception register.
        pub xer: u64 => (32, "__u64"),
        /// Machine state register.
        pub msr: u64 => (40, "__u64"),
        /// SRR0.
        pub srr0: u64 => (48, "__u64"),
        /// SRR1.
        pub srr1: u64 => (56, "__u64"),
        /// Process id.
        pub pid: u64 => (64, "__u64"),
        /// SPRG0.
        pub sprg0: u64 => (72, "__u64"),
        /// SPRG1.
        pub sprg1: u64 => (80, "__u64"),
        /// SPRG2.
        pub sprg2: u64 => (88, "__u64"),
        /// SPRG3.
        pub sprg3: u64 => (96, "__u64"),
        /// SPRG4.
        pub sprg4: u64 => (104, "__u64"),
        /// SPRG5.
        pub sprg5: u64 => (112, "__u64"),
        /// SPRG6.
        pub sprg6: u64 => (120, "__u64"),
        /// SPRG7.
        pub sprg7: u64 => (128, "__u64"),
        /// GPR0-GPR31.
        pub gpr: [u64; 32] => (136, "__u64[32]"),
    }
}

abi! {
    /// `struct kvm_sregs` (ppc): the PVR and a union of Book3S and BookE special registers.
    /// The union's members are not spelled out here; its size and place are checked.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sregs (size 1232, align 8) {
        /// Processor version register.
        pub pvr: u32 => (0, "__u32"),
        /// `union { struct {...} s; struct {...} e; __u8 pad[1020]; } u`, as raw doublewords.
        pub u: [u64; 153] => (8, "union {...}"),
    }
}

abi! {
    /// `struct kvm_fpu` (ppc): FPR0-FPR31.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_fpu (size 256, align 8) {
        /// The floating-point registers.
        pub fpr: [u64; 32] => (0, "__u64[32]"),
    }
}

abi! {
    /// `struct kvm_debug_exit_arch` (ppc): `kvm_run.debug.arch` of a `KVM_EXIT_DEBUG`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_debug_exit_arch (size 16, align 8) {
        /// The address of the event.
        pub address: u64 => (0, "__u64"),
        /// `KVMPPC_DEBUG_*` bits.
        pub status: u32 => (8, "__u32"),
        /// Reserved.
        pub reserved: u32 => (12, "__u32"),
    }
}

abi! {
    /// `struct kvm_sync_regs` (ppc): empty.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sync_regs (size 0, align 1) {}
}

abi! {
    /// `struct kvm_ppc_pvinfo`, result of `KVM_PPC_GET_PVINFO`: the hypercall instructions.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_ppc_pvinfo (size 128, align 4) {
        /// `KVM_PPC_PVINFO_FLAGS_*`.
        pub flags: u32 => (0, "__u32"),
        /// The instruction sequence of a hypercall.
        pub hcall: [u32; 4] => (4, "__u32[4]"),
        /// Padding.
        pub pad: [u8; 108] => (20, "__u8[108]"),
    }
}

abi! {
    /// `struct kvm_get_htab_fd`, argument of `KVM_PPC_GET_HTAB_FD`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_get_htab_fd (size 32, align 8) {
        /// `KVM_GET_HTAB_*`.
        pub flags: u64 => (0, "__u64"),
        /// First HPTE index.
        pub start_index: u64 => (8, "__u64"),
        /// Reserved.
        pub reserved: [u64; 2] => (16, "__u64[2]"),
    }
}

abi! {
    /// `struct kvm_ppc_resize_hpt`, argument of `KVM_PPC_RESIZE_HPT_PREPARE`/`_COMMIT`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_ppc_resize_hpt (size 16, align 8) {
        /// Must be zero.
        pub flags: u64 => (0, "__u64"),
        /// log2 of the new hash page table size.
        pub shift: u32 => (8, "__u32"),
        /// Padding.
        pub pad: u32 => (12, "__u32"),
    }
}

abi! {
    /// `struct kvm_ppc_mmuv3_cfg`, argument of `KVM_PPC_CONFIGURE_V3_MMU`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_ppc_mmuv3_cfg (size 16, align 8) {
        /// `KVM_PPC_MMUV3_*`.
        pub flags: u64 => (0, "__u64"),
        /// Second doubleword of the partition-table entry.
        pub process_table: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_ppc_cpu_char`, result of `KVM_PPC_GET_CPU_CHAR`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_ppc_cpu_char (size 32, align 8) {
        /// `KVM_PPC_CPU_CHAR_*`.
        pub character: u64 => (0, "__u64"),
        /// `KVM_PPC_CPU_BEHAV_*`.
        pub behaviour: u64 => (8, "__u64"),
        /// Valid bits of `character`.
        pub character_mask: u64 => (16, "__u64"),
        /// Valid bits of `behaviour`.
        pub behaviour_mask: u64 => (24, "__u64"),
    }
}

abi! {
    /// `struct kvm_create_spapr_tce_64`, argument of `KVM_CREATE_SPAPR_TCE_64`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_create_spapr_tce_64 (size 32, align 8) {
        /// Logical I/O bus number.
        pub liobn: u64 => (0, "__u64"),
        /// IOMMU page size, log2.
        pub page_shift: u32 => (8, "__u32"),
        /// Must be zero.
        pub flags: u32 => (12, "__u32"),
        /// Window offset, in pages.
        pub offset: u64 => (16, "__u64"),
        /// Window size, in pages.
        pub size: u64 => (24, "__u64"),
    }
}

named_constants! {
    /// `kvm_interrupt.irq` values on ppc (`KVM_INTERRUPT`).
    pub const PPC_INTERRUPT_LEVELS: [u32];
    /// Raise the external interrupt (edge).
    KVM_INTERRUPT_SET = -1i32 as u32,
    /// Lower it.
    KVM_INTERRUPT_UNSET = -2i32 as u32,
    /// Raise it as a level.
    KVM_INTERRUPT_SET_LEVEL = -3i32 as u32,
}

named_constants! {
    /// Some ppc registers of `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`.
    pub const PPC_REG_IDS: [u64];
    /// Hardware interrupt offset register (PR KVM).
    KVM_REG_PPC_HIOR = KVM_REG_PPC | KVM_REG_SIZE_U64 | 0x1,
    /// DSISR.
    KVM_REG_PPC_DSISR = KVM_REG_PPC | KVM_REG_SIZE_U32 | 0xd,
    /// Timebase offset.
    KVM_REG_PPC_TB_OFFSET = KVM_REG_PPC | KVM_REG_SIZE_U64 | 0x9c,
    /// Process id (POWER9).
    KVM_REG_PPC_PID = KVM_REG_PPC | KVM_REG_SIZE_U64 | 0xb2,
    /// Architecture compatibility level.
    KVM_REG_PPC_ARCH_COMPAT = KVM_REG_PPC | KVM_REG_SIZE_U32 | 0xb7,
    /// Decrementer expiry time.
    KVM_REG_PPC_DEC_EXPIRY = KVM_REG_PPC | KVM_REG_SIZE_U64 | 0xbe,
}
