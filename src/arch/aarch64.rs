//! arm64: vCPU initialisation and the entry state, through `KVM_ARM_VCPU_INIT` and ONE_REG.
//!
//! ```text
//! ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init)    the target KVM wants for this host's CPUs
//! init.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2 (PSCI SYSTEM_OFF ends the run as a
//!                                                 KVM_EXIT_SYSTEM_EVENT)
//! ioctl(vcpu, KVM_ARM_VCPU_INIT, &init)         reset state: EL1, MMU and caches off
//! ioctl(vcpu, KVM_SET_ONE_REG, PSTATE = EL1h with D, A, I, F masked)
//! ioctl(vcpu, KVM_SET_ONE_REG, SP_EL1 = entry.stack_pointer)
//! ioctl(vcpu, KVM_SET_ONE_REG, X0 = vCPU index)
//! ioctl(vcpu, KVM_SET_ONE_REG, PC = entry.pc)
//! ```
//!
//! arm64 has no `KVM_SET_REGS`; every register is a ONE_REG id (`ARM64_REG_*` in
//! `rawkvm_bindings::aarch64`, each proven against `KVM_REG_ARM_CORE_REG()` of the arm64
//! header). **This path is type-checked (`cargo check --target aarch64-unknown-linux-gnu`), not
//! yet run on real arm64 hardware.**

use rawkvm_bindings::aarch64::{
    ARM64_REG_PC, ARM64_REG_PSTATE, ARM64_REG_SP_EL1, ARM64_REG_X0, KVM_ARM_VCPU_PSCI_0_2,
    PSR_A_BIT, PSR_D_BIT, PSR_F_BIT, PSR_I_BIT, PSR_MODE_EL1h, kvm_vcpu_init,
};

pub use super::flat::FlatEntry as Entry;
use crate::error::{ConfigError, Error};
use crate::kvm::vcpu::Vcpu;
use crate::sys::ioctl::{vcpu, vm};

/// PSTATE at entry: EL1 on SP_EL1, all exceptions masked.
pub const ENTRY_PSTATE: u64 = PSR_MODE_EL1h | PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT;

impl Vcpu {
    /// `KVM_ARM_PREFERRED_TARGET` on the VM, then `KVM_ARM_VCPU_INIT` with that target and the
    /// feature bits `features` (numbers from `ARM_VCPU_FEATURES`). Must come before any other
    /// ioctl on the vCPU, `KVM_RUN` included.
    pub fn arm_vcpu_init(&self, features: &[u32]) -> Result<(), Error> {
        let mut init = kvm_vcpu_init::default();
        vm::ARM_PREFERRED_TARGET
            .call(self.vm_fd(), &mut init)
            .map_err(|errno| Error::Ioctl {
                ioctl: vm::ARM_PREFERRED_TARGET.name,
                errno,
            })?;
        for &feature in features {
            let word = init
                .features
                .get_mut(feature as usize / 32)
                .ok_or(Error::Config(ConfigError::ArmFeatureOutOfRange { feature }))?;
            *word |= 1 << (feature % 32);
        }
        vcpu::ARM_VCPU_INIT
            .call(self.fd(), &init)
            .map(drop)
            .map_err(|errno| Error::Ioctl {
                ioctl: vcpu::ARM_VCPU_INIT.name,
                errno,
            })
    }
}

/// Initialises `vcpu` (PSCI 0.2+) and puts it at `entry` in EL1h with its index in `X0`.
pub fn reset_vcpu(vcpu: &Vcpu, entry: &Entry, index: u32) -> Result<(), Error> {
    vcpu.arm_vcpu_init(&[KVM_ARM_VCPU_PSCI_0_2])?;
    vcpu.set_one_reg_u64(ARM64_REG_PSTATE, ENTRY_PSTATE)?;
    vcpu.set_one_reg_u64(ARM64_REG_SP_EL1, entry.stack_pointer)?;
    vcpu.set_one_reg_u64(ARM64_REG_X0, u64::from(index))?;
    vcpu.set_one_reg_u64(ARM64_REG_PC, entry.pc)
}

/// `ioctl(vcpu, KVM_GET_ONE_REG, PC)`: where the vCPU is.
pub fn instruction_pointer(vcpu: &Vcpu) -> Result<u64, Error> {
    vcpu.one_reg_u64(ARM64_REG_PC)
}
