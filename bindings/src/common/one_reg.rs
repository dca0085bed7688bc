//! Registers one at a time (`<linux/kvm.h>`): `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` with a
//! `struct kvm_one_reg`, `KVM_GET_REG_LIST`, and the 64-bit register ids they take.
//!
//! ```text
//! id = KVM_REG_<ARCH> | KVM_REG_SIZE_U<bits> | <architecture's own fields>
//! ioctl(vcpu, KVM_GET_ONE_REG, &{ id, addr: &value })   the kernel writes KVM_REG_SIZE(id) bytes
//! ioctl(vcpu, KVM_SET_ONE_REG, &{ id, addr: &value })   the kernel reads them
//! ```
//!
//! The id says how many bytes `addr` points at: `1 << ((id & KVM_REG_SIZE_MASK) >>
//! KVM_REG_SIZE_SHIFT)` ([`kvm_reg_size`]). arm64 and riscv have no `KVM_GET_REGS`; their
//! program counter and general registers are reached only this way (api.rst 4.68).

use crate::layout::abi;
use crate::names::named_constants;

abi! {
    /// `struct kvm_one_reg`, argument of `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`. `addr` is a
    /// user-space pointer to [`kvm_reg_size`]`(id)` bytes.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_one_reg (size 16, align 8) {
        /// The register id: architecture, size and number.
        pub id: u64 => (0, "__u64"),
        /// Where the value is read from or written to (a user-space address).
        pub addr: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_reg_list` without its trailing `__u64 reg[]`: argument of `KVM_GET_REG_LIST`.
    /// User space sets `n` to the room it has; the kernel sets it to the number of registers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_reg_list (size 8, align 8) {
        /// Number of ids that follow.
        pub n: u64 => (0, "__u64"),
    }
}

named_constants! {
    /// The architecture field of a register id (bits 56-63): which `asm/kvm.h` numbers the rest.
    pub const REG_ARCHES: [u64];
    /// The architecture bits of an id.
    KVM_REG_ARCH_MASK = 0xff00_0000_0000_0000,
    /// Registers every architecture has.
    KVM_REG_GENERIC = 0x0000_0000_0000_0000,
    /// PowerPC.
    KVM_REG_PPC = 0x1000_0000_0000_0000,
    /// x86.
    KVM_REG_X86 = 0x2000_0000_0000_0000,
    /// IA-64 (gone).
    KVM_REG_IA64 = 0x3000_0000_0000_0000,
    /// 32-bit Arm (gone).
    KVM_REG_ARM = 0x4000_0000_0000_0000,
    /// s390.
    KVM_REG_S390 = 0x5000_0000_0000_0000,
    /// arm64.
    KVM_REG_ARM64 = 0x6000_0000_0000_0000,
    /// MIPS.
    KVM_REG_MIPS = 0x7000_0000_0000_0000,
    /// RISC-V.
    KVM_REG_RISCV = 0x8000_0000_0000_0000,
    /// LoongArch.
    KVM_REG_LOONGARCH = 0x9000_0000_0000_0000,
}

named_constants! {
    /// The size field of a register id (bits 52-55): log2 of the value's size in bytes.
    pub const REG_SIZES: [u64];
    /// The size bits of an id.
    KVM_REG_SIZE_MASK = 0x00f0_0000_0000_0000,
    /// 1 byte.
    KVM_REG_SIZE_U8 = 0x0000_0000_0000_0000,
    /// 2 bytes.
    KVM_REG_SIZE_U16 = 0x0010_0000_0000_0000,
    /// 4 bytes.
    KVM_REG_SIZE_U32 = 0x0020_0000_0000_0000,
    /// 8 bytes.
    KVM_REG_SIZE_U64 = 0x0030_0000_0000_0000,
    /// 16 bytes.
    KVM_REG_SIZE_U128 = 0x0040_0000_0000_0000,
    /// 32 bytes.
    KVM_REG_SIZE_U256 = 0x0050_0000_0000_0000,
    /// 64 bytes.
    KVM_REG_SIZE_U512 = 0x0060_0000_0000_0000,
    /// 128 bytes.
    KVM_REG_SIZE_U1024 = 0x0070_0000_0000_0000,
    /// 256 bytes.
    KVM_REG_SIZE_U2048 = 0x0080_0000_0000_0000,
}

/// Where the size field starts in a register id.
pub const KVM_REG_SIZE_SHIFT: u32 = 52;

/// `KVM_REG_SIZE(id)`: how many bytes the value of register `id` has (1 to 256).
pub const fn kvm_reg_size(id: u64) -> usize {
    1 << ((id & KVM_REG_SIZE_MASK) >> KVM_REG_SIZE_SHIFT)
}

named_constants! {
    /// `kvm_mp_state.mp_state` values (api.rst, `KVM_GET_MP_STATE`).
    pub const MP_STATES: [u32];
    /// Running, or ready to run.
    KVM_MP_STATE_RUNNABLE = 0,
    /// x86: waiting for INIT.
    KVM_MP_STATE_UNINITIALIZED = 1,
    /// x86: INIT received.
    KVM_MP_STATE_INIT_RECEIVED = 2,
    /// Halted until an interrupt.
    KVM_MP_STATE_HALTED = 3,
    /// x86: SIPI received.
    KVM_MP_STATE_SIPI_RECEIVED = 4,
    /// arm64, riscv, s390: stopped (powered off).
    KVM_MP_STATE_STOPPED = 5,
    /// s390: check-stop.
    KVM_MP_STATE_CHECK_STOP = 6,
    /// s390: operating.
    KVM_MP_STATE_OPERATING = 7,
    /// s390: in the load state.
    KVM_MP_STATE_LOAD = 8,
    /// x86 SEV-ES: AP reset hold.
    KVM_MP_STATE_AP_RESET_HOLD = 9,
    /// arm64: suspended (`PSCI_SYSTEM_SUSPEND`).
    KVM_MP_STATE_SUSPENDED = 10,
}

abi! {
    /// `struct kvm_mp_state`, argument of `KVM_GET_MP_STATE`/`KVM_SET_MP_STATE`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_mp_state (size 4, align 4) {
        /// One of [`MP_STATES`].
        pub mp_state: u32 => (0, "__u32"),
    }
}

abi! {
    /// `struct kvm_create_device`, argument of `KVM_CREATE_DEVICE` (api.rst 4.80): an in-kernel
    /// device (GIC, AIA, FLIC, XIVE, VFIO) with its own fd.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_create_device (size 12, align 4) {
        /// `KVM_DEV_TYPE_*`.
        pub type_: u32 => (0, "__u32"),
        /// Out: the device fd.
        pub fd: u32 => (4, "__u32"),
        /// `KVM_CREATE_DEVICE_TEST`: only ask whether the type is supported.
        pub flags: u32 => (8, "__u32"),
    }
}

abi! {
    /// `struct kvm_device_attr`, argument of `KVM_SET/GET/HAS_DEVICE_ATTR` on device, VM and
    /// vCPU fds.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_device_attr (size 24, align 8) {
        /// Must be zero.
        pub flags: u32 => (0, "__u32"),
        /// The attribute group (device specific).
        pub group: u32 => (4, "__u32"),
        /// The attribute within the group.
        pub attr: u64 => (8, "__u64"),
        /// User-space address of the value.
        pub addr: u64 => (16, "__u64"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn register_sizes_decode_from_the_id() {
        assert_eq!(
            kvm_reg_size(KVM_REG_ARM64 | KVM_REG_SIZE_U64 | 0x10_0040),
            8
        );
        assert_eq!(kvm_reg_size(KVM_REG_SIZE_U8), 1);
        assert_eq!(kvm_reg_size(KVM_REG_RISCV | KVM_REG_SIZE_U2048), 256);
        assert_eq!(kvm_reg_size(KVM_REG_SIZE_U32), 4);
    }
}
