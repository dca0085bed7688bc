//! RISC-V (64-bit): the entry state, through ONE_REG.
//!
//! ```text
//! vcpu = ioctl(vm, KVM_CREATE_VCPU, id)          reset state: S-mode, satp = 0 (paging off)
//! ioctl(vcpu, KVM_SET_ONE_REG, SP = entry.stack_pointer)
//! ioctl(vcpu, KVM_SET_ONE_REG, A0 = hart id)      the boot protocol's a0
//! ioctl(vcpu, KVM_SET_ONE_REG, A1 = 0)            no device tree
//! ioctl(vcpu, KVM_SET_ONE_REG, PC = entry.pc)
//!
//! ioctl(vcpu, KVM_GET_ONE_REG, KVM_REG_RISCV_ISA_EXT | i)   1 if the guest has extension i
//!                                                         (ENOENT: this kernel knows no i)
//! ```
//!
//! riscv has no `KVM_SET_REGS` and no vCPU-init ioctl; every register is a ONE_REG id
//! (`RISCV_REG_*` in `rawkvm_bindings::riscv64`, each proven against `KVM_REG_RISCV_CORE_REG()`
//! of the riscv header). It runs in CI on real KVM inside QEMU (`-cpu rv64,h=true`, see
//! `.ci/emulated-kvm`): the guests of `asm-guests/riscv64/` end with SBI SRST shutdown, which
//! KVM implements and reports as `KVM_EXIT_SYSTEM_EVENT` type `SHUTDOWN`.

use memoffset::offset_of;
use nix::errno::Errno;
use rawkvm_bindings::riscv64::{
    RISCV_ISA_EXTS, RISCV_REG_A0, RISCV_REG_A1, RISCV_REG_PC, riscv_core_reg, riscv_isa_ext_reg,
    user_regs_struct,
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

/// ISA extension indices asked by [`isa_extensions`]: `enum KVM_RISCV_ISA_EXT_ID` had 60-odd
/// members by Linux 6.12; an index a kernel does not know answers `ENOENT`.
pub const ISA_EXT_INDICES: u64 = 128;

/// One ISA extension register of a vCPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsaExtension {
    /// `KVM_RISCV_ISA_EXT_*` index.
    pub index: u64,
    /// Its name without the prefix (`"H"`, `"SSTC"`) when the bindings know it.
    pub name: Option<&'static str>,
    /// The register: 1 if the guest has the extension, 0 if not.
    pub value: u64,
}

/// `KVM_GET_ONE_REG` of every ISA extension register this kernel has
/// (`KVM_REG_RISCV_ISA_EXT | index` for index below [`ISA_EXT_INDICES`]), in index order.
pub fn isa_extensions(vcpu: &Vcpu) -> Result<Vec<IsaExtension>, Error> {
    let mut found = Vec::new();
    for index in 0..ISA_EXT_INDICES {
        let value = match vcpu.one_reg_u64(riscv_isa_ext_reg(index)) {
            Ok(value) => value,
            Err(Error::Ioctl {
                errno: Errno::ENOENT | Errno::EINVAL,
                ..
            }) => continue,
            Err(other) => return Err(other),
        };
        let name = RISCV_ISA_EXTS
            .iter()
            .find(|&&(known, _)| known == index)
            .map(|&(_, name)| name.trim_start_matches("KVM_RISCV_ISA_EXT_"));
        found.push(IsaExtension { index, name, value });
    }
    Ok(found)
}
