//! arm64 vCPU state of `<asm/kvm.h>` (arch/arm64/include/uapi/asm/kvm.h) and `<asm/ptrace.h>`:
//! the core registers, vCPU initialisation, debug and event structs, and the register ids
//! `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` take.
//!
//! arm64 has no `KVM_GET_REGS`: `struct kvm_regs` exists only to number the core registers.
//! A core register's id is `KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE` plus its
//! offset in `kvm_regs` counted in 32-bit words ([`arm64_core_reg`]).

use memoffset::offset_of;

use crate::common::{KVM_REG_ARM64, KVM_REG_SIZE_U64};
use crate::layout::abi;
use crate::names::named_constants;

/// `KVM_NR_SPSR`: banked SPSRs in `kvm_regs.spsr`.
pub const KVM_NR_SPSR: usize = 5;
/// `KVM_ARM_MAX_DBG_REGS`: breakpoint and watchpoint registers of each kind.
pub const KVM_ARM_MAX_DBG_REGS: usize = 16;

abi! {
    /// `struct user_pt_regs` (`<asm/ptrace.h>`): X0-X30, SP (SP_EL0), PC and PSTATE.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct user_pt_regs (size 272, align 8) {
        /// X0-X30.
        pub regs: [u64; 31] => (0, "__u64[31]"),
        /// SP_EL0.
        pub sp: u64 => (248, "__u64"),
        /// The program counter.
        pub pc: u64 => (256, "__u64"),
        /// PSTATE (SPSR layout: mode, DAIF, NZCV).
        pub pstate: u64 => (264, "__u64"),
    }
}

abi! {
    /// `struct user_fpsimd_state` (`<asm/ptrace.h>`): V0-V31, FPSR, FPCR. The C type of `vregs`
    /// is `__uint128_t`, aligned to 16; Rust's `u128` is not 16-aligned on every host, so the
    /// registers are pairs of `u64` (low half first on little-endian) and the struct carries the
    /// alignment.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(align(16))]
    pub struct user_fpsimd_state (size 528, align 16) {
        /// V0-V31.
        pub vregs: [[u64; 2]; 32] => (0, "__uint128_t[32]"),
        /// FPSR.
        pub fpsr: u32 => (512, "__u32"),
        /// FPCR.
        pub fpcr: u32 => (516, "__u32"),
        /// Reserved.
        pub __reserved: [u32; 2] => (520, "__u32[2]"),
    }
}

abi! {
    /// `struct kvm_regs` (arm64): the layout `KVM_REG_ARM_CORE` ids index into. Not an ioctl
    /// argument: arm64 refuses `KVM_GET_REGS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_regs (size 864, align 16) {
        /// X0-X30, SP_EL0, PC, PSTATE.
        pub regs: user_pt_regs => (0, "struct user_pt_regs"),
        /// SP_EL1.
        pub sp_el1: u64 => (272, "__u64"),
        /// ELR_EL1.
        pub elr_el1: u64 => (280, "__u64"),
        /// SPSR_EL1 and the 32-bit banked SPSRs.
        pub spsr: [u64; KVM_NR_SPSR] => (288, "__u64[5]"),
        /// The FP/SIMD registers.
        pub fp_regs: user_fpsimd_state => (336, "struct user_fpsimd_state"),
    }
}

abi! {
    /// `struct kvm_vcpu_init`, argument of `KVM_ARM_VCPU_INIT` and result of
    /// `KVM_ARM_PREFERRED_TARGET`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_init (size 32, align 4) {
        /// A `KVM_ARM_TARGET_*` (use the one `KVM_ARM_PREFERRED_TARGET` returns).
        pub target: u32 => (0, "__u32"),
        /// Bitmap of `KVM_ARM_VCPU_*` feature numbers ([`ARM_VCPU_FEATURES`]).
        pub features: [u32; 7] => (4, "__u32[7]"),
    }
}

abi! {
    /// `struct kvm_sregs` (arm64): empty; arm64 has no `KVM_GET_SREGS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sregs (size 0, align 1) {}
}

abi! {
    /// `struct kvm_fpu` (arm64): empty; FP registers are core registers here.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_fpu (size 0, align 1) {}
}

abi! {
    /// `struct kvm_debug_exit_arch` (arm64): `kvm_run.debug.arch` of a `KVM_EXIT_DEBUG`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_debug_exit_arch (size 16, align 8) {
        /// ESR_EL2 bits 31:0 of the debug exception.
        pub hsr: u32 => (0, "__u32"),
        /// ESR_EL2 bits 61:32, valid when `kvm_run.flags` has `KVM_DEBUG_ARCH_HSR_HIGH_VALID`.
        pub hsr_high: u32 => (4, "__u32"),
        /// The faulting address of a watchpoint.
        pub far: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_guest_debug_arch` (arm64): hardware breakpoints and watchpoints.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_guest_debug_arch (size 512, align 8) {
        /// DBGBCRn_EL1.
        pub dbg_bcr: [u64; KVM_ARM_MAX_DBG_REGS] => (0, "__u64[16]"),
        /// DBGBVRn_EL1.
        pub dbg_bvr: [u64; KVM_ARM_MAX_DBG_REGS] => (128, "__u64[16]"),
        /// DBGWCRn_EL1.
        pub dbg_wcr: [u64; KVM_ARM_MAX_DBG_REGS] => (256, "__u64[16]"),
        /// DBGWVRn_EL1.
        pub dbg_wvr: [u64; KVM_ARM_MAX_DBG_REGS] => (384, "__u64[16]"),
    }
}

abi! {
    /// `struct kvm_guest_debug` with the arm64 `kvm_guest_debug_arch`: argument of
    /// `KVM_SET_GUEST_DEBUG`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_guest_debug (size 520, align 8) {
        /// `KVM_GUESTDBG_*` bits.
        pub control: u32 => (0, "__u32"),
        /// Padding.
        pub pad: u32 => (4, "__u32"),
        /// Hardware breakpoints and watchpoints.
        pub arch: kvm_guest_debug_arch => (8, "struct kvm_guest_debug_arch"),
    }
}

abi! {
    /// `struct kvm_sync_regs` (arm64): `kvm_run.s.regs`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sync_regs (size 8, align 8) {
        /// Timer and PMU interrupt lines for a user-space irqchip (`KVM_CAP_ARM_USER_IRQ`).
        pub device_irq_level: u64 => (0, "__u64"),
    }
}

abi! {
    /// The `exception` member of the arm64 `struct kvm_vcpu_events`. (Linux 6.19 turns one
    /// byte of `pad` into `ext_iabt_pending`; the layout is unchanged.)
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events_exception in "exception" (size 16, align 8) {
        /// An SError is pending.
        pub serror_pending: u8 => (0, "__u8"),
        /// `serror_esr` is valid.
        pub serror_has_esr: u8 => (1, "__u8"),
        /// Inject an external data abort (after `KVM_EXIT_MMIO` or `KVM_EXIT_ARM_NISV`).
        pub ext_dabt_pending: u8 => (2, "__u8"),
        /// Padding.
        pub pad: [u8; 5] => (3, "__u8[5]"),
        /// The SError syndrome.
        pub serror_esr: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_vcpu_events` (arm64), for `KVM_GET_VCPU_EVENTS`/`KVM_SET_VCPU_EVENTS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events (size 64, align 8) {
        /// SError and external-abort state.
        pub exception: kvm_vcpu_events_exception => (0, "struct {...}", expand),
        /// Reserved.
        pub reserved: [u32; 12] => (16, "__u32[12]"),
    }
}

abi! {
    /// `struct kvm_arm_device_addr` (`<linux/kvm.h>`), argument of `KVM_ARM_SET_DEVICE_ADDR`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_arm_device_addr (size 16, align 8) {
        /// Device id and address type (`KVM_ARM_DEVICE_*`, `KVM_VGIC_V2_ADDR_TYPE_*`).
        pub id: u64 => (0, "__u64"),
        /// Guest physical base address.
        pub addr: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_arm_copy_mte_tags`, argument of `KVM_ARM_MTE_COPY_TAGS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_arm_copy_mte_tags (size 48, align 8) {
        /// First guest physical address.
        pub guest_ipa: u64 => (0, "__u64"),
        /// Bytes of guest memory covered.
        pub length: u64 => (8, "__u64"),
        /// User-space buffer of tags (`void __user *`).
        pub addr: u64 => (16, "void *"),
        /// `KVM_ARM_TAGS_TO_GUEST` or `KVM_ARM_TAGS_FROM_GUEST`.
        pub flags: u64 => (24, "__u64"),
        /// Must be zero.
        pub reserved: [u64; 2] => (32, "__u64[2]"),
    }
}

abi! {
    /// `struct kvm_arm_counter_offset`, argument of `KVM_ARM_SET_COUNTER_OFFSET`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_arm_counter_offset (size 16, align 8, since "6.4") {
        /// Subtracted from the physical counter for the whole VM.
        pub counter_offset: u64 => (0, "__u64"),
        /// Must be zero.
        pub reserved: u64 => (8, "__u64"),
    }
}

named_constants! {
    /// `kvm_vcpu_init.target` values; `KVM_ARM_PREFERRED_TARGET` says which to use.
    pub const ARM_TARGETS: [u32];
    /// ARM Architecture Envelope Model.
    KVM_ARM_TARGET_AEM_V8 = 0,
    /// The Foundation model.
    KVM_ARM_TARGET_FOUNDATION_V8 = 1,
    /// Cortex-A57.
    KVM_ARM_TARGET_CORTEX_A57 = 2,
    /// X-Gene Potenza.
    KVM_ARM_TARGET_XGENE_POTENZA = 3,
    /// Cortex-A53.
    KVM_ARM_TARGET_CORTEX_A53 = 4,
    /// Any other ARMv8 CPU.
    KVM_ARM_TARGET_GENERIC_V8 = 5,
    /// Number of targets.
    KVM_ARM_NUM_TARGETS = 6,
}

named_constants! {
    /// Feature bit numbers of `kvm_vcpu_init.features` (bit `n` is `features[n / 32] & (1 << n % 32)`).
    pub const ARM_VCPU_FEATURES: [u32];
    /// The vCPU starts powered off (secondary CPUs brought up by PSCI `CPU_ON`).
    KVM_ARM_VCPU_POWER_OFF = 0,
    /// The vCPU runs AArch32 at EL1.
    KVM_ARM_VCPU_EL1_32BIT = 1,
    /// PSCI v0.2 or later (the default PSCI version comes from `KVM_REG_ARM_PSCI_VERSION`).
    KVM_ARM_VCPU_PSCI_0_2 = 2,
    /// A PMUv3 for the guest.
    KVM_ARM_VCPU_PMU_V3 = 3,
    /// SVE (finalise with `KVM_ARM_VCPU_FINALIZE`).
    KVM_ARM_VCPU_SVE = 4,
    /// Pointer authentication, address keys.
    KVM_ARM_VCPU_PTRAUTH_ADDRESS = 5,
    /// Pointer authentication, generic key.
    KVM_ARM_VCPU_PTRAUTH_GENERIC = 6,
    /// Nested virtualisation: the vCPU starts at EL2.
    KVM_ARM_VCPU_HAS_EL2 = 7,
    /// Nested virtualisation with `HCR_EL2.E2H` fixed to 0.
    KVM_ARM_VCPU_HAS_EL2_E2H0 = 8,
}

named_constants! {
    /// Fields of an arm64 register id, below `KVM_REG_ARM64 | KVM_REG_SIZE_*`.
    pub const ARM64_REG_FIELDS: [u64];
    /// The register class ("coprocessor") bits.
    KVM_REG_ARM_COPROC_MASK = 0x0000_0000_0FFF_0000,
    /// Where the class starts.
    KVM_REG_ARM_COPROC_SHIFT = 16,
    /// Core registers: the low bits are an offset into `struct kvm_regs` in 32-bit words.
    KVM_REG_ARM_CORE = 0x0010 << KVM_REG_ARM_COPROC_SHIFT,
    /// Demultiplexed registers (CCSIDR).
    KVM_REG_ARM_DEMUX = 0x0011 << KVM_REG_ARM_COPROC_SHIFT,
    /// System registers by `op0, op1, CRn, CRm, op2` ([`arm64_sys_reg`]).
    KVM_REG_ARM64_SYSREG = 0x0013 << KVM_REG_ARM_COPROC_SHIFT,
    /// Firmware pseudo-registers (PSCI version, SMCCC workarounds).
    KVM_REG_ARM_FW = 0x0014 << KVM_REG_ARM_COPROC_SHIFT,
    /// SVE registers.
    KVM_REG_ARM64_SVE = 0x0015 << KVM_REG_ARM_COPROC_SHIFT,
    /// Firmware feature bitmaps.
    KVM_REG_ARM_FW_FEAT_BMAP = 0x0016 << KVM_REG_ARM_COPROC_SHIFT,
    /// `op0` bits of a system register id.
    KVM_REG_ARM64_SYSREG_OP0_MASK = 0xc000,
    /// Where `op0` starts.
    KVM_REG_ARM64_SYSREG_OP0_SHIFT = 14,
    /// `op1` bits.
    KVM_REG_ARM64_SYSREG_OP1_MASK = 0x3800,
    /// Where `op1` starts.
    KVM_REG_ARM64_SYSREG_OP1_SHIFT = 11,
    /// `CRn` bits.
    KVM_REG_ARM64_SYSREG_CRN_MASK = 0x0780,
    /// Where `CRn` starts.
    KVM_REG_ARM64_SYSREG_CRN_SHIFT = 7,
    /// `CRm` bits.
    KVM_REG_ARM64_SYSREG_CRM_MASK = 0x0078,
    /// Where `CRm` starts.
    KVM_REG_ARM64_SYSREG_CRM_SHIFT = 3,
    /// `op2` bits.
    KVM_REG_ARM64_SYSREG_OP2_MASK = 0x0007,
    /// Where `op2` starts.
    KVM_REG_ARM64_SYSREG_OP2_SHIFT = 0,
}

/// `KVM_REG_ARM64 | size | KVM_REG_ARM_CORE | offset / 4`: the id of the core register at byte
/// `offset` of `struct kvm_regs` (`KVM_REG_ARM_CORE_REG(name)` in C).
pub const fn arm64_core_reg(offset: usize, size: u64) -> u64 {
    assert!(offset % 4 == 0 && offset < size_of::<kvm_regs>());
    KVM_REG_ARM64 | size | KVM_REG_ARM_CORE | (offset / 4) as u64
}

/// `ARM64_SYS_REG(op0, op1, crn, crm, op2)`: the 64-bit system register with that encoding.
pub const fn arm64_sys_reg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64) -> u64 {
    KVM_REG_ARM64
        | KVM_REG_SIZE_U64
        | KVM_REG_ARM64_SYSREG
        | ((op0 << KVM_REG_ARM64_SYSREG_OP0_SHIFT) & KVM_REG_ARM64_SYSREG_OP0_MASK)
        | ((op1 << KVM_REG_ARM64_SYSREG_OP1_SHIFT) & KVM_REG_ARM64_SYSREG_OP1_MASK)
        | ((crn << KVM_REG_ARM64_SYSREG_CRN_SHIFT) & KVM_REG_ARM64_SYSREG_CRN_MASK)
        | ((crm << KVM_REG_ARM64_SYSREG_CRM_SHIFT) & KVM_REG_ARM64_SYSREG_CRM_MASK)
        | ((op2 << KVM_REG_ARM64_SYSREG_OP2_SHIFT) & KVM_REG_ARM64_SYSREG_OP2_MASK)
}

/// `KVM_REG_ARM_FW_REG(r)`: a firmware pseudo-register.
pub const fn arm64_fw_reg(r: u64) -> u64 {
    KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_FW | (r & 0xffff)
}

/// The id of general register `Xn` (`n` in 0..=30).
pub const fn arm64_x_reg(n: usize) -> u64 {
    assert!(n < 31);
    arm64_core_reg(offset_of!(user_pt_regs, regs) + n * 8, KVM_REG_SIZE_U64)
}

named_constants! {
    /// Register ids rawkvm uses, each checked against the C macro that builds it.
    pub const ARM64_REG_IDS: [u64];
    /// `X0`: the first argument register (`KVM_REG_ARM_CORE_REG(regs.regs[0])`).
    ARM64_REG_X0 = arm64_x_reg(0),
    /// `SP_EL0` (`regs.sp`).
    ARM64_REG_SP = arm64_core_reg(offset_of!(user_pt_regs, sp), KVM_REG_SIZE_U64),
    /// The program counter (`regs.pc`).
    ARM64_REG_PC = arm64_core_reg(offset_of!(user_pt_regs, pc), KVM_REG_SIZE_U64),
    /// PSTATE (`regs.pstate`).
    ARM64_REG_PSTATE = arm64_core_reg(offset_of!(user_pt_regs, pstate), KVM_REG_SIZE_U64),
    /// `SP_EL1` (`sp_el1`).
    ARM64_REG_SP_EL1 = arm64_core_reg(offset_of!(kvm_regs, sp_el1), KVM_REG_SIZE_U64),
    /// The virtual timer's control register (`KVM_REG_ARM_TIMER_CTL`).
    KVM_REG_ARM_TIMER_CTL = arm64_sys_reg(3, 3, 14, 3, 1),
    /// The virtual timer's count (`KVM_REG_ARM_TIMER_CNT`; its encoding is swapped with CVAL
    /// in the kernel's ABI, kept as is).
    KVM_REG_ARM_TIMER_CNT = arm64_sys_reg(3, 3, 14, 3, 2),
    /// The virtual timer's compare value (`KVM_REG_ARM_TIMER_CVAL`).
    KVM_REG_ARM_TIMER_CVAL = arm64_sys_reg(3, 3, 14, 0, 2),
    /// The PSCI version the guest sees.
    KVM_REG_ARM_PSCI_VERSION = arm64_fw_reg(0),
}

/// The C expression for each entry of [`ARM64_REG_IDS`] that is not a `#define` of its own:
/// what the header proof compiles to check the Rust value.
pub const ARM64_REG_ID_EXPRESSIONS: &[(&str, &str)] = &[
    (
        "ARM64_REG_X0",
        "KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.regs[0])",
    ),
    (
        "ARM64_REG_SP",
        "KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.sp)",
    ),
    (
        "ARM64_REG_PC",
        "KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pc)",
    ),
    (
        "ARM64_REG_PSTATE",
        "KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(regs.pstate)",
    ),
    (
        "ARM64_REG_SP_EL1",
        "KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | KVM_REG_ARM_CORE_REG(sp_el1)",
    ),
];

named_constants! {
    /// PSTATE bits (`<asm/ptrace.h>`) for a vCPU's reset state.
    pub const ARM64_PSTATE_BITS: [u64];
    /// AArch64 EL1 using SP_EL1 ("EL1h").
    #[allow(non_upper_case_globals)]
    PSR_MODE_EL1h = 0x0000_0005,
    /// FIQ masked.
    PSR_F_BIT = 0x0000_0040,
    /// IRQ masked.
    PSR_I_BIT = 0x0000_0080,
    /// SError masked.
    PSR_A_BIT = 0x0000_0100,
    /// Debug exceptions masked.
    PSR_D_BIT = 0x0000_0200,
}

named_constants! {
    /// arm64 `kvm_guest_debug.control` bits, on top of `KVM_GUESTDBG_ENABLE`/`_SINGLESTEP`.
    pub const ARM64_GUEST_DEBUG_FLAGS: [u32];
    /// Software breakpoints (`BRK`) exit to user space.
    KVM_GUESTDBG_USE_SW_BP = 1 << 16,
    /// `kvm_guest_debug.arch` is armed.
    KVM_GUESTDBG_USE_HW = 1 << 17,
}

named_constants! {
    /// `kvm_run.s.regs.device_irq_level` bits.
    pub const ARM64_DEVICE_IRQ_LEVELS: [u64];
    /// The EL1 virtual timer's line.
    KVM_ARM_DEV_EL1_VTIMER = 1 << 0,
    /// The EL1 physical timer's line.
    KVM_ARM_DEV_EL1_PTIMER = 1 << 1,
    /// The PMU's line.
    KVM_ARM_DEV_PMU = 1 << 2,
}

/// `kvm_run.flags` on `KVM_EXIT_DEBUG`: `debug.arch.hsr_high` is valid.
pub const KVM_DEBUG_ARCH_HSR_HIGH_VALID: u16 = 1 << 0;
