//! RISC-V (64-bit): the entry state, through ONE_REG.
//!
//! ```text
//! vcpu = ioctl(vm, KVM_CREATE_VCPU, id)          reset state: S-mode, satp = 0 (paging off)
//! ioctl(vcpu, KVM_SET_ONE_REG, SP = entry.stack_pointer)
//! ioctl(vcpu, KVM_SET_ONE_REG, A0 = hart id)      the boot protocol's a0
//! ioctl(vcpu, KVM_SET_ONE_REG, A1 = 0)            no device tree
//! ioctl(vcpu, KVM_SET_ONE_REG, PC = entry.pc)
//! ```
//!
//! riscv has no `KVM_SET_REGS` and no vCPU-init ioctl; every register is a ONE_REG id
//! (`RISCV_REG_*` in `rawkvm_bindings::riscv64`, each proven against `KVM_REG_RISCV_CORE_REG()`
//! of the riscv header). **This path is type-checked (`cargo check --target
//! riscv64gc-unknown-linux-gnu`), not yet run on real RISC-V hardware.**

use memoffset::offset_of;
use rawkvm_bindings::riscv64::{
    RISCV_REG_A0, RISCV_REG_A1, RISCV_REG_PC, riscv_core_reg, user_regs_struct,
};

pub use super::flat::FlatEntry as Entry;
use crate::error::Error;
use crate::kvm::vcpu::Vcpu;

/// The id of `sp` (x2) in `struct kvm_riscv_core`.
const RISCV_REG_SP: u64 = riscv_core_reg(offset_of!(user_regs_struct, sp));

/// Puts `vcpu` at `entry` in S-mode with its index (hart id) in `a0`.
pub fn reset_vcpu(vcpu: &Vcpu, entry: &Entry, index: u32) -> Result<(), Error> {
    vcpu.set_one_reg_u64(RISCV_REG_SP, entry.stack_pointer)?;
    vcpu.set_one_reg_u64(RISCV_REG_A0, u64::from(index))?;
    vcpu.set_one_reg_u64(RISCV_REG_A1, 0)?;
    vcpu.set_one_reg_u64(RISCV_REG_PC, entry.pc)
}

/// `ioctl(vcpu, KVM_GET_ONE_REG, pc)`: where the vCPU is.
pub fn instruction_pointer(vcpu: &Vcpu) -> Result<u64, Error> {
    vcpu.one_reg_u64(RISCV_REG_PC)
}
