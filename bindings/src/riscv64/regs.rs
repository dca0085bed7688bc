//! RISC-V vCPU state of `<asm/kvm.h>` (arch/riscv/include/uapi/asm/kvm.h) and
//! `<asm/ptrace.h>`, and the register ids of `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`.
//!
//! riscv has no `KVM_GET_REGS`: `kvm_regs`, `kvm_sregs` and `kvm_fpu` are empty, and every
//! register is reached by id: `KVM_REG_RISCV | KVM_REG_SIZE_U64 | <type> | <index>`, where the
//! index counts `unsigned long`s into the struct of that type ([`riscv_core_reg`]).
//!
//! Members newer than Linux 6.1 carry the version that added them (`since`); the header
//! proof uses it only to decide whether an older host header should have them.

use crate::common::{KVM_REG_RISCV, KVM_REG_SIZE_U64};
use crate::layout::abi;
use crate::names::named_constants;

macro_rules! empty_structs {
    ($($(#[$attr:meta])* $name:ident;)*) => {$(
        abi! {
            $(#[$attr])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct $name (size 0, align 1) {}
        }
    )*};
}

empty_structs! {
    /// `struct kvm_regs` (riscv): empty; registers go through `KVM_GET_ONE_REG`.
    kvm_regs;
    /// `struct kvm_fpu` (riscv): empty.
    kvm_fpu;
    /// `struct kvm_sregs` (riscv): empty.
    kvm_sregs;
    /// `struct kvm_debug_exit_arch` (riscv): empty.
    kvm_debug_exit_arch;
    /// `struct kvm_guest_debug_arch` (riscv): empty.
    kvm_guest_debug_arch;
    /// `struct kvm_sync_regs` (riscv): empty; `kvm_run.s` carries nothing.
    kvm_sync_regs;
}

abi! {
    /// `struct user_regs_struct` (`<asm/ptrace.h>`): the PC and x1-x31 by ABI name.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct user_regs_struct (size 256, align 8) {
        /// The program counter.
        pub pc: u64 => (0, "unsigned long"),
        /// x1.
        pub ra: u64 => (8, "unsigned long"),
        /// x2.
        pub sp: u64 => (16, "unsigned long"),
        /// x3.
        pub gp: u64 => (24, "unsigned long"),
        /// x4.
        pub tp: u64 => (32, "unsigned long"),
        /// x5.
        pub t0: u64 => (40, "unsigned long"),
        /// x6.
        pub t1: u64 => (48, "unsigned long"),
        /// x7.
        pub t2: u64 => (56, "unsigned long"),
        /// x8.
        pub s0: u64 => (64, "unsigned long"),
        /// x9.
        pub s1: u64 => (72, "unsigned long"),
        /// x10: first argument, and the hart id at boot.
        pub a0: u64 => (80, "unsigned long"),
        /// x11: second argument (the device tree at boot).
        pub a1: u64 => (88, "unsigned long"),
        /// x12.
        pub a2: u64 => (96, "unsigned long"),
        /// x13.
        pub a3: u64 => (104, "unsigned long"),
        /// x14.
        pub a4: u64 => (112, "unsigned long"),
        /// x15.
        pub a5: u64 => (120, "unsigned long"),
        /// x16.
        pub a6: u64 => (128, "unsigned long"),
        /// x17.
        pub a7: u64 => (136, "unsigned long"),
        /// x18.
        pub s2: u64 => (144, "unsigned long"),
        /// x19.
        pub s3: u64 => (152, "unsigned long"),
        /// x20.
        pub s4: u64 => (160, "unsigned long"),
        /// x21.
        pub s5: u64 => (168, "unsigned long"),
        /// x22.
        pub s6: u64 => (176, "unsigned long"),
        /// x23.
        pub s7: u64 => (184, "unsigned long"),
        /// x24.
        pub s8: u64 => (192, "unsigned long"),
        /// x25.
        pub s9: u64 => (200, "unsigned long"),
        /// x26.
        pub s10: u64 => (208, "unsigned long"),
        /// x27.
        pub s11: u64 => (216, "unsigned long"),
        /// x28.
        pub t3: u64 => (224, "unsigned long"),
        /// x29.
        pub t4: u64 => (232, "unsigned long"),
        /// x30.
        pub t5: u64 => (240, "unsigned long"),
        /// x31.
        pub t6: u64 => (248, "unsigned long"),
    }
}

abi! {
    /// `struct kvm_riscv_core`: the layout `KVM_REG_RISCV_CORE` ids index into.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_riscv_core (size 264, align 8) {
        /// PC and x1-x31.
        pub regs: user_regs_struct => (0, "struct user_regs_struct"),
        /// `KVM_RISCV_MODE_S` or `KVM_RISCV_MODE_U`: the privilege mode the vCPU runs in.
        pub mode: u64 => (256, "unsigned long"),
    }
}

abi! {
    /// `struct kvm_riscv_config`: `KVM_REG_RISCV_CONFIG` registers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_riscv_config (size 64, align 8) {
        /// The base ISA bits (one per letter).
        pub isa: u64 => (0, "unsigned long"),
        /// Zicbom cache block size.
        pub zicbom_block_size: u64 => (8, "unsigned long"),
        /// `mvendorid` the guest sees.
        pub mvendorid: u64 => (16, "unsigned long", since "6.2"),
        /// `marchid` the guest sees.
        pub marchid: u64 => (24, "unsigned long", since "6.2"),
        /// `mimpid` the guest sees.
        pub mimpid: u64 => (32, "unsigned long", since "6.2"),
        /// Zicboz cache block size.
        pub zicboz_block_size: u64 => (40, "unsigned long", since "6.4"),
        /// The largest `satp` mode the guest may use.
        pub satp_mode: u64 => (48, "unsigned long", since "6.5"),
        /// Zicbop cache block size.
        pub zicbop_block_size: u64 => (56, "unsigned long", since "6.18"),
    }
}

abi! {
    /// `struct kvm_riscv_csr`: the general `KVM_REG_RISCV_CSR` registers (VS-level CSRs).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_riscv_csr (size 88, align 8) {
        /// `sstatus`.
        pub sstatus: u64 => (0, "unsigned long"),
        /// `sie`.
        pub sie: u64 => (8, "unsigned long"),
        /// `stvec`.
        pub stvec: u64 => (16, "unsigned long"),
        /// `sscratch`.
        pub sscratch: u64 => (24, "unsigned long"),
        /// `sepc`.
        pub sepc: u64 => (32, "unsigned long"),
        /// `scause`.
        pub scause: u64 => (40, "unsigned long"),
        /// `stval`.
        pub stval: u64 => (48, "unsigned long"),
        /// `sip`.
        pub sip: u64 => (56, "unsigned long"),
        /// `satp`: 0 at reset, so the guest starts with paging off.
        pub satp: u64 => (64, "unsigned long"),
        /// `scounteren`.
        pub scounteren: u64 => (72, "unsigned long"),
        /// `senvcfg`.
        pub senvcfg: u64 => (80, "unsigned long", since "6.7"),
    }
}

abi! {
    /// `struct kvm_riscv_timer`: `KVM_REG_RISCV_TIMER` registers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_riscv_timer (size 32, align 8) {
        /// Timebase frequency in Hz (read-only).
        pub frequency: u64 => (0, "__u64"),
        /// The guest's `time`.
        pub time: u64 => (8, "__u64"),
        /// The next timer interrupt.
        pub compare: u64 => (16, "__u64"),
        /// `KVM_RISCV_TIMER_STATE_ON` or `_OFF`.
        pub state: u64 => (24, "__u64"),
    }
}

named_constants! {
    /// Fields of a riscv register id, below `KVM_REG_RISCV | KVM_REG_SIZE_*`.
    pub const RISCV_REG_FIELDS: [u64];
    /// The register type bits.
    KVM_REG_RISCV_TYPE_MASK = 0x0000_0000_FF00_0000,
    /// Where the type starts.
    KVM_REG_RISCV_TYPE_SHIFT = 24,
    /// The subtype bits (CSR groups, SBI register sets).
    KVM_REG_RISCV_SUBTYPE_MASK = 0x0000_0000_00FF_0000,
    /// Where the subtype starts.
    KVM_REG_RISCV_SUBTYPE_SHIFT = 16,
    /// `struct kvm_riscv_config`, by `unsigned long` index.
    KVM_REG_RISCV_CONFIG = 0x01 << KVM_REG_RISCV_TYPE_SHIFT,
    /// `struct kvm_riscv_core`, by `unsigned long` index.
    KVM_REG_RISCV_CORE = 0x02 << KVM_REG_RISCV_TYPE_SHIFT,
    /// CSRs.
    KVM_REG_RISCV_CSR = 0x03 << KVM_REG_RISCV_TYPE_SHIFT,
    /// `struct kvm_riscv_timer`, by `__u64` index.
    KVM_REG_RISCV_TIMER = 0x04 << KVM_REG_RISCV_TYPE_SHIFT,
    /// F-extension registers.
    KVM_REG_RISCV_FP_F = 0x05 << KVM_REG_RISCV_TYPE_SHIFT,
    /// D-extension registers.
    KVM_REG_RISCV_FP_D = 0x06 << KVM_REG_RISCV_TYPE_SHIFT,
    /// One register per ISA extension: 1 if the guest has it.
    KVM_REG_RISCV_ISA_EXT = 0x07 << KVM_REG_RISCV_TYPE_SHIFT,
    /// One register per SBI extension.
    KVM_REG_RISCV_SBI_EXT = 0x08 << KVM_REG_RISCV_TYPE_SHIFT,
    /// V-extension registers.
    KVM_REG_RISCV_VECTOR = 0x09 << KVM_REG_RISCV_TYPE_SHIFT,
    /// State of individual SBI extensions.
    KVM_REG_RISCV_SBI_STATE = 0x0a << KVM_REG_RISCV_TYPE_SHIFT,
    /// CSR subtype: the general CSRs of `struct kvm_riscv_csr`.
    KVM_REG_RISCV_CSR_GENERAL = 0x0 << KVM_REG_RISCV_SUBTYPE_SHIFT,
    /// CSR subtype: AIA CSRs.
    KVM_REG_RISCV_CSR_AIA = 0x1 << KVM_REG_RISCV_SUBTYPE_SHIFT,
    /// CSR subtype: Smstateen CSRs.
    KVM_REG_RISCV_CSR_SMSTATEEN = 0x2 << KVM_REG_RISCV_SUBTYPE_SHIFT,
}

/// `KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE | index`: the id of the core register
/// at byte `offset` of `struct kvm_riscv_core` (`KVM_REG_RISCV_CORE_REG(name)` counts
/// `unsigned long`s).
pub const fn riscv_core_reg(offset: usize) -> u64 {
    assert!(offset % 8 == 0 && offset < size_of::<kvm_riscv_core>());
    KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE | (offset / 8) as u64
}

/// The id of a general CSR at byte `offset` of `struct kvm_riscv_csr`.
pub const fn riscv_csr_reg(offset: usize) -> u64 {
    assert!(offset % 8 == 0 && offset < size_of::<kvm_riscv_csr>());
    KVM_REG_RISCV
        | KVM_REG_SIZE_U64
        | KVM_REG_RISCV_CSR
        | KVM_REG_RISCV_CSR_GENERAL
        | (offset / 8) as u64
}

/// The id of a config register at byte `offset` of `struct kvm_riscv_config`.
pub const fn riscv_config_reg(offset: usize) -> u64 {
    assert!(offset % 8 == 0 && offset < size_of::<kvm_riscv_config>());
    KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CONFIG | (offset / 8) as u64
}

named_constants! {
    /// Register ids rawkvm uses, each checked against the C macro that builds it.
    pub const RISCV_REG_IDS: [u64];
    /// The program counter (`regs.pc`).
    RISCV_REG_PC = riscv_core_reg(0),
    /// `a0` (`regs.a0`): the hart id at boot.
    RISCV_REG_A0 = riscv_core_reg(80),
    /// `a1` (`regs.a1`): the device tree address at boot.
    RISCV_REG_A1 = riscv_core_reg(88),
    /// The privilege mode (`mode`).
    RISCV_REG_MODE = riscv_core_reg(256),
    /// `satp` (`KVM_REG_RISCV_CSR_REG(satp)`).
    RISCV_REG_SATP = riscv_csr_reg(64),
    /// The base ISA (`KVM_REG_RISCV_CONFIG_REG(isa)`).
    RISCV_REG_ISA = riscv_config_reg(0),
}

/// The C expression for each entry of [`RISCV_REG_IDS`]: what the header proof compiles.
pub const RISCV_REG_ID_EXPRESSIONS: &[(&str, &str)] = &[
    (
        "RISCV_REG_PC",
        "KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE | KVM_REG_RISCV_CORE_REG(regs.pc)",
    ),
    (
        "RISCV_REG_A0",
        "KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE | KVM_REG_RISCV_CORE_REG(regs.a0)",
    ),
    (
        "RISCV_REG_A1",
        "KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE | KVM_REG_RISCV_CORE_REG(regs.a1)",
    ),
    (
        "RISCV_REG_MODE",
        "KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CORE | KVM_REG_RISCV_CORE_REG(mode)",
    ),
    (
        "RISCV_REG_SATP",
        "KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CSR | KVM_REG_RISCV_CSR_REG(satp)",
    ),
    (
        "RISCV_REG_ISA",
        "KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_CONFIG | KVM_REG_RISCV_CONFIG_REG(isa)",
    ),
];

named_constants! {
    /// Values of `kvm_riscv_core.mode`.
    pub const RISCV_MODES: [u64];
    /// User mode.
    KVM_RISCV_MODE_U = 0,
    /// Supervisor mode: where a kernel starts.
    KVM_RISCV_MODE_S = 1,
}

named_constants! {
    /// `kvm_interrupt.irq` values on riscv (`KVM_INTERRUPT`): raise or lower the external
    /// interrupt of a vCPU without an in-kernel AIA.
    pub const RISCV_INTERRUPT_LEVELS: [u32];
    /// Raise.
    KVM_INTERRUPT_SET = -1i32 as u32,
    /// Lower.
    KVM_INTERRUPT_UNSET = -2i32 as u32,
}

named_constants! {
    /// Values of `kvm_riscv_timer.state`.
    pub const RISCV_TIMER_STATES: [u64];
    /// The timer is off.
    KVM_RISCV_TIMER_STATE_OFF = 0,
    /// The timer is armed.
    KVM_RISCV_TIMER_STATE_ON = 1,
}

named_constants! {
    /// `enum KVM_RISCV_ISA_EXT_ID`: the index of each ISA extension's register
    /// (`KVM_REG_RISCV_ISA_EXT | index`, value 1 if the guest has the extension). These are
    /// the ones the 6.1 header names; newer kernels have more (rawkvm shows them by index).
    pub const RISCV_ISA_EXTS: [u64];
    /// Atomics.
    KVM_RISCV_ISA_EXT_A = 0,
    /// Compressed instructions.
    KVM_RISCV_ISA_EXT_C = 1,
    /// Double-precision floating point.
    KVM_RISCV_ISA_EXT_D = 2,
    /// Single-precision floating point.
    KVM_RISCV_ISA_EXT_F = 3,
    /// The hypervisor extension.
    KVM_RISCV_ISA_EXT_H = 4,
    /// The base integer ISA.
    KVM_RISCV_ISA_EXT_I = 5,
    /// Multiply and divide.
    KVM_RISCV_ISA_EXT_M = 6,
    /// Page-based memory types.
    KVM_RISCV_ISA_EXT_SVPBMT = 7,
    /// Supervisor timer compare (`stimecmp`).
    KVM_RISCV_ISA_EXT_SSTC = 8,
    /// Fine-grained address-translation cache invalidation.
    KVM_RISCV_ISA_EXT_SVINVAL = 9,
    /// The `pause` hint.
    KVM_RISCV_ISA_EXT_ZIHINTPAUSE = 10,
    /// Cache-block management.
    KVM_RISCV_ISA_EXT_ZICBOM = 11,
}

/// `KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_ISA_EXT | index`: the register that says
/// whether the guest has ISA extension `index` (`KVM_RISCV_ISA_EXT_*`).
pub const fn riscv_isa_ext_reg(index: u64) -> u64 {
    KVM_REG_RISCV | KVM_REG_SIZE_U64 | KVM_REG_RISCV_ISA_EXT | index
}
