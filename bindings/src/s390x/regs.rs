//! s390 vCPU state of `<asm/kvm.h>` (arch/s390/include/uapi/asm/kvm.h) and the s390 structs of
//! `<linux/kvm.h>`: general, access, control and floating-point registers, the PSW, and the
//! `kvm_sync_regs` that `kvm_run.s` carries (s390 synchronises almost everything through it).

use crate::common::{KVM_REG_S390, KVM_REG_SIZE_U32, KVM_REG_SIZE_U64};
use crate::layout::abi;
use crate::names::named_constants;

abi! {
    /// `struct kvm_regs` (s390): the general registers, for `KVM_GET_REGS`/`KVM_SET_REGS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_regs (size 128, align 8) {
        /// R0-R15.
        pub gprs: [u64; 16] => (0, "__u64[16]"),
    }
}

abi! {
    /// `struct kvm_sregs` (s390): access and control registers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sregs (size 192, align 8) {
        /// Access registers.
        pub acrs: [u32; 16] => (0, "__u32[16]"),
        /// Control registers.
        pub crs: [u64; 16] => (64, "__u64[16]"),
    }
}

abi! {
    /// `struct kvm_fpu` (s390): floating-point control and registers (4 bytes of padding
    /// after `fpc`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_fpu (size 136, align 8) {
        /// Floating-point control register.
        pub fpc: u32 => (0, "__u32"),
        /// F0-F15.
        pub fprs: [u64; 16] => (8, "__u64[16]"),
    }
}

abi! {
    /// `struct kvm_debug_exit_arch` (s390): `kvm_run.debug.arch` of a `KVM_EXIT_DEBUG`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_debug_exit_arch (size 16, align 8) {
        /// The address of the event.
        pub addr: u64 => (0, "__u64"),
        /// `KVM_SINGLESTEP`, `KVM_HW_BP`, `KVM_HW_WP_WRITE`.
        pub type_: u8 => (8, "__u8"),
        /// Zero.
        pub pad: [u8; 7] => (9, "__u8[7]"),
    }
}

abi! {
    /// The anonymous union in `kvm_sync_regs` (s390): vector or floating-point registers.
    #[derive(Clone, Copy)]
    pub union kvm_sync_regs_vector (size 512, align 8, zeroed by vrs) {
        /// V0-V31 (`KVM_SYNC_VRS`), each two doublewords.
        pub vrs: [[u64; 2]; 32] => (0, "__u64[32][2]"),
        /// F0-F15 (`KVM_SYNC_FPRS`).
        pub fprs: [u64; 16] => (0, "__u64[16]"),
    }
}

abi! {
    /// The anonymous struct inside the last union of `kvm_sync_regs` (s390): guarded storage
    /// and etoken.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sync_regs_gs (size 64, align 8) {
        /// Reserved.
        pub reserved1: [u64; 2] => (0, "__u64[2]"),
        /// Guarded-storage control block (`KVM_SYNC_GSCB`).
        pub gscb: [u64; 4] => (16, "__u64[4]"),
        /// `KVM_SYNC_ETOKEN`.
        pub etoken: u64 => (48, "__u64"),
        /// `KVM_SYNC_ETOKEN`.
        pub etoken_extension: u64 => (56, "__u64"),
    }
}

abi! {
    /// The last anonymous union of `kvm_sync_regs` (s390): the state-description annex, or
    /// guarded storage and etoken.
    #[derive(Clone, Copy)]
    pub union kvm_sync_regs_annex (size 256, align 8, zeroed by sdnx) {
        /// State-description annex.
        pub sdnx: [u8; 256] => (0, "__u8[256]"),
        /// Guarded storage and etoken.
        pub gs: kvm_sync_regs_gs => (0, inline),
    }
}

abi! {
    /// `struct kvm_sync_regs` (s390): `kvm_run.s.regs`, selected by `KVM_SYNC_*` bits.
    #[derive(Clone, Copy)]
    pub struct kvm_sync_regs (size 1984, align 8) {
        /// Prefix register (`KVM_SYNC_PREFIX`).
        pub prefix: u64 => (0, "__u64"),
        /// R0-R15 (`KVM_SYNC_GPRS`).
        pub gprs: [u64; 16] => (8, "__u64[16]"),
        /// Access registers (`KVM_SYNC_ACRS`).
        pub acrs: [u32; 16] => (136, "__u32[16]"),
        /// Control registers (`KVM_SYNC_CRS`).
        pub crs: [u64; 16] => (200, "__u64[16]"),
        /// TOD programmable register (`KVM_SYNC_ARCH0`).
        pub todpr: u64 => (328, "__u64"),
        /// CPU timer (`KVM_SYNC_ARCH0`).
        pub cputm: u64 => (336, "__u64"),
        /// Clock comparator (`KVM_SYNC_ARCH0`).
        pub ckc: u64 => (344, "__u64"),
        /// Program parameter (`KVM_SYNC_ARCH0`).
        pub pp: u64 => (352, "__u64"),
        /// Guest breaking-event address (`KVM_SYNC_ARCH0`).
        pub gbea: u64 => (360, "__u64"),
        /// Pfault token (`KVM_SYNC_PFAULT`).
        pub pft: u64 => (368, "__u64"),
        /// Pfault select.
        pub pfs: u64 => (376, "__u64"),
        /// Pfault compare.
        pub pfc: u64 => (384, "__u64"),
        /// Vector or floating-point registers.
        pub vector: kvm_sync_regs_vector => (392, inline),
        /// For future vector expansion.
        pub reserved: [u8; 512] => (904, "__u8[512]"),
        /// Floating-point control (with `KVM_SYNC_VRS` or `KVM_SYNC_FPRS`).
        pub fpc: u32 => (1416, "__u32"),
        /// C bitfields `__u8 bpbc : 1` (branch-prediction blocking, `KVM_SYNC_BPBC`, bit 7 of
        /// the byte as s390 numbers bitfields from the top) and `__u8 reserved2 : 7`; C cannot
        /// take their offset, so the proof checks the members around them.
        pub bpbc: u8 => (1420, "__u8 bpbc : 1, reserved2 : 7"),
        /// Aligns `riccb` to 64 bytes.
        pub padding1: [u8; 51] => (1421, "__u8[51]"),
        /// Runtime-instrumentation controls (`KVM_SYNC_RICCB`).
        pub riccb: [u8; 64] => (1472, "__u8[64]"),
        /// Diagnose 0x318 information (`KVM_SYNC_DIAG318`).
        pub diag318: u64 => (1536, "__u64"),
        /// Aligns the annex to 256 bytes.
        pub padding2: [u8; 184] => (1544, "__u8[184]"),
        /// State-description annex, guarded storage, etoken.
        pub annex: kvm_sync_regs_annex => (1728, inline),
    }
}

abi! {
    /// `struct kvm_s390_psw`: a program-status word, argument of `KVM_S390_SET_INITIAL_PSW`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_s390_psw (size 16, align 8) {
        /// The mask (addressing mode, interrupt masks, condition code).
        pub mask: u64 => (0, "__u64"),
        /// The instruction address.
        pub addr: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_s390_interrupt`, argument of `KVM_S390_INTERRUPT`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_s390_interrupt (size 16, align 8) {
        /// `KVM_S390_INT_*` / `KVM_S390_PROGRAM_INT` / ...
        pub type_: u32 => (0, "__u32"),
        /// First parameter.
        pub parm: u32 => (4, "__u32"),
        /// Second parameter.
        pub parm64: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_s390_skeys`, argument of `KVM_S390_GET_SKEYS`/`KVM_S390_SET_SKEYS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_s390_skeys (size 64, align 8) {
        /// First guest frame.
        pub start_gfn: u64 => (0, "__u64"),
        /// Number of frames.
        pub count: u64 => (8, "__u64"),
        /// User-space buffer of one key byte per frame.
        pub skeydata_addr: u64 => (16, "__u64"),
        /// Must be zero.
        pub flags: u32 => (24, "__u32"),
        /// Must be zero.
        pub reserved: [u32; 9] => (28, "__u32[9]"),
    }
}

abi! {
    /// `struct kvm_s390_ucas_mapping`, argument of `KVM_S390_UCAS_MAP`/`_UNMAP` (user-controlled
    /// VMs, `KVM_VM_S390_UCONTROL`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_s390_ucas_mapping (size 24, align 8) {
        /// User-space address.
        pub user_addr: u64 => (0, "__u64"),
        /// Guest address.
        pub vcpu_addr: u64 => (8, "__u64"),
        /// Length in bytes.
        pub length: u64 => (16, "__u64"),
    }
}

named_constants! {
    /// `kvm_run.kvm_valid_regs` / `kvm_dirty_regs` bits on s390.
    pub const S390_SYNC_REGS: [u64];
    /// `prefix`.
    KVM_SYNC_PREFIX = 1 << 0,
    /// `gprs`.
    KVM_SYNC_GPRS = 1 << 1,
    /// `acrs`.
    KVM_SYNC_ACRS = 1 << 2,
    /// `crs`.
    KVM_SYNC_CRS = 1 << 3,
    /// `todpr`, `cputm`, `ckc`, `pp`, `gbea`.
    KVM_SYNC_ARCH0 = 1 << 4,
    /// `pft`, `pfs`, `pfc`.
    KVM_SYNC_PFAULT = 1 << 5,
    /// `vrs`.
    KVM_SYNC_VRS = 1 << 6,
    /// `riccb`.
    KVM_SYNC_RICCB = 1 << 7,
    /// `fprs`.
    KVM_SYNC_FPRS = 1 << 8,
    /// `gscb`.
    KVM_SYNC_GSCB = 1 << 9,
    /// `bpbc`.
    KVM_SYNC_BPBC = 1 << 10,
    /// `etoken`.
    KVM_SYNC_ETOKEN = 1 << 11,
    /// `diag318`.
    KVM_SYNC_DIAG318 = 1 << 12,
}

named_constants! {
    /// s390 registers of `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`.
    pub const S390_REG_IDS: [u64];
    /// TOD programmable register.
    KVM_REG_S390_TODPR = KVM_REG_S390 | KVM_REG_SIZE_U32 | 0x1,
    /// TOD epoch difference.
    KVM_REG_S390_EPOCHDIFF = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x2,
    /// CPU timer.
    KVM_REG_S390_CPU_TIMER = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x3,
    /// Clock comparator.
    KVM_REG_S390_CLOCK_COMP = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x4,
    /// Pfault token.
    KVM_REG_S390_PFTOKEN = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x5,
    /// Pfault compare.
    KVM_REG_S390_PFCOMPARE = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x6,
    /// Pfault select.
    KVM_REG_S390_PFSELECT = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x7,
    /// Program parameter.
    KVM_REG_S390_PP = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x8,
    /// Guest breaking-event address.
    KVM_REG_S390_GBEA = KVM_REG_S390 | KVM_REG_SIZE_U64 | 0x9,
}

named_constants! {
    /// `kvm_run.s390_reset_flags` of `KVM_EXIT_S390_RESET`.
    pub const S390_RESET_FLAGS: [u64];
    /// Power-on reset.
    KVM_S390_RESET_POR = 1,
    /// Clear reset.
    KVM_S390_RESET_CLEAR = 2,
    /// Subsystem reset.
    KVM_S390_RESET_SUBSYSTEM = 4,
    /// CPU initial reset.
    KVM_S390_RESET_CPU_INIT = 8,
    /// Initial program load.
    KVM_S390_RESET_IPL = 16,
}
