//! Every architecture this crate describes, as tables: what `rawkvm abi --arch NAME` prints
//! and what the header proofs check.
//!
//! Each architecture module compiles on every host, so an x86 machine can print (and prove)
//! another architecture's layouts and ioctl numbers.

use crate::ioctls::IoctlInfo;
use crate::layout::StructLayout;

/// One architecture's ABI: its struct layouts and its ioctl table.
#[derive(Debug, Clone, Copy)]
pub struct ArchAbi {
    /// The name Rust uses for the architecture (`target_arch`): `x86_64`, `aarch64`, ...
    pub name: &'static str,
    /// Every struct, `kvm_run` first, then the architecture's own, then the neutral ones.
    pub structs: &'static [StructLayout],
    /// Every ioctl, grouped by fd level, with request numbers in this architecture's encoding.
    pub ioctls: &'static [IoctlInfo],
}

/// The architectures described, in a fixed order.
pub const ARCHES: &[ArchAbi] = &[ArchAbi {
    name: "x86_64",
    structs: crate::x86_64::STRUCT_LAYOUTS,
    ioctls: crate::x86_64::IOCTLS,
}];

/// The architecture called `name`, if this crate describes it.
pub fn arch_abi(name: &str) -> Option<&'static ArchAbi> {
    ARCHES.iter().find(|arch| arch.name == name)
}

/// The name of the architecture this crate was compiled for.
pub const HOST_ARCH: &str = {
    #[cfg(target_arch = "x86_64")]
    let name = "x86_64";
    #[cfg(target_arch = "aarch64")]
    let name = "aarch64";
    #[cfg(target_arch = "riscv64")]
    let name = "riscv64";
    #[cfg(target_arch = "s390x")]
    let name = "s390x";
    #[cfg(target_arch = "powerpc64")]
    let name = "powerpc64";
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "s390x",
        target_arch = "powerpc64"
    )))]
    let name = "unsupported";
    name
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_arch_is_found_by_name_and_has_kvm_run_first() {
        for arch in ARCHES {
            assert_eq!(arch_abi(arch.name).map(|a| a.name), Some(arch.name));
            assert_eq!(arch.structs.first().map(|s| s.name), Some("kvm_run"));
            assert!(!arch.ioctls.is_empty());
        }
        assert!(arch_abi("vax").is_none());
    }
}
