//! The CPU set-up every vCPU of a [`crate::machine::Machine`] gets before its first run, as
//! QEMU's `kvm_arch_init_vcpu` does it:
//!
//! ```text
//! ioctl(kvm, KVM_GET_SUPPORTED_CPUID, ...)    once per device (see cpuid.rs)
//! for each vCPU:
//!   ioctl(vcpu, KVM_SET_CPUID2, &table)       the supported table, hypervisor leaf "rawkvmrawkvm",
//!                                             leaf 0's vendor from --cpuid-vendor
//!   ioctl(vcpu, KVM_SET_TSC_KHZ, khz)         only with --tsc-khz; then KVM_GET_TSC_KHZ to
//!   ioctl(vcpu, KVM_GET_TSC_KHZ, 0)           check that it took
//! ```

use super::cpuid::{CpuidTable, default_table};
use crate::error::Error;
use crate::kvm::Kvm;
use crate::kvm::vcpu::Vcpu;

/// What to set on every vCPU besides the defaults.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuSetup {
    /// Leaf 0's vendor string (`--cpuid-vendor`), instead of the host's.
    pub cpuid_vendor: Option<[u8; 12]>,
    /// The guest TSC rate in kHz (`--tsc-khz`), instead of the host's.
    pub tsc_khz: Option<u32>,
}

impl CpuSetup {
    /// The CPUID table every vCPU gets (see [`default_table`]).
    pub fn cpuid_table(&self, kvm: &Kvm) -> Result<CpuidTable, Error> {
        default_table(kvm, self.cpuid_vendor)
    }

    /// Sets `table` and the TSC rate on a vCPU that has not run yet.
    pub fn apply(&self, vcpu: &Vcpu, table: &CpuidTable) -> Result<(), Error> {
        vcpu.set_cpuid(table)?;
        if let Some(khz) = self.tsc_khz {
            vcpu.set_tsc_khz(khz)?;
        }
        Ok(())
    }
}
