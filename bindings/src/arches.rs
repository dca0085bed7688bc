//! Every architecture this crate describes, as tables: what `rawkvm abi --arch NAME` prints
//! and what the header proofs check.
//!
//! Each architecture module compiles on every host, so an x86 machine can print (and prove)
//! another architecture's layouts and ioctl numbers.

use crate::ioctls::{IoctlEncoding, IoctlInfo};
use crate::layout::StructLayout;

/// Byte order of an architecture (as Linux builds it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// Least significant byte first.
    Little,
    /// Most significant byte first (s390).
    Big,
}

/// One architecture's ABI: its struct layouts and its ioctl table.
#[derive(Debug, Clone, Copy)]
pub struct ArchAbi {
    /// The name Rust uses for the architecture (`target_arch`): `x86_64`, `aarch64`, ...
    pub name: &'static str,
    /// The GNU triple of its Linux toolchain (`aarch64-linux-gnu`): the cross compiler and
    /// headers the header proof uses are `<triple>-gcc` and `/usr/<triple>/include`.
    pub gnu_triple: &'static str,
    /// How its ioctl request codes are packed.
    pub ioctl_encoding: IoctlEncoding,
    /// Its byte order: values in `kvm_run` and register buffers are in this order.
    pub endian: Endian,
    /// Page sizes its Linux kernels are built with, the usual one first: memory slots and the
    /// `kvm_run` mapping are multiples of the kernel's page size.
    pub page_sizes: &'static [usize],
    /// Every struct, `kvm_run` first, then the architecture's own, then the neutral ones.
    pub structs: &'static [StructLayout],
    /// Every ioctl, grouped by fd level, with request numbers in this architecture's encoding.
    pub ioctls: &'static [IoctlInfo],
}

/// Declares an architecture module's `STRUCT_LAYOUTS` (its own structs, `kvm_run` first, then
/// the common ones) and `IOCTLS` (the common requests with its own, grouped by fd level; nix's
/// numbers when `target_arch` is the host, else re-encoded in `encoding`).
macro_rules! arch_tables {
    ($arch:literal, target_arch = $target_arch:literal, $encoding:expr, $structs:ident,
        $ioctls:ident) => {
        #[doc = concat!("Every kernel-named struct of the ", $arch, " ABI this crate defines, ",
            "`kvm_run` first: the ", $arch, " structs, then the architecture-neutral ones. ",
            "Field order is declaration order; `kvm_run` lists each exit-union member and its ",
            "fields (`io`, `io.direction`, ...).")]
        pub const STRUCT_LAYOUTS: &[$crate::layout::StructLayout] = &$crate::layout::concat::<
            $crate::layout::StructLayout,
            { $structs.len() + $crate::common::COMMON_STRUCT_LAYOUTS.len() },
        >($structs, $crate::common::COMMON_STRUCT_LAYOUTS);

        #[doc = concat!("Every ioctl this crate defines for ", $arch, ", grouped by fd level ",
            "(system, then VM, then vCPU), with request codes in its encoding.")]
        pub const IOCTLS: &[$crate::ioctls::IoctlInfo] = &$crate::ioctls::grouped_by_level::<
            { $crate::ioctls::COMMON_IOCTLS.len() + $ioctls.len() },
        >(
            $encoding,
            cfg!(target_arch = $target_arch),
            $crate::ioctls::COMMON_IOCTLS,
            $ioctls,
        );
    };
}
pub(crate) use arch_tables;

/// The architectures described, in a fixed order.
pub const ARCHES: &[ArchAbi] = &[
    ArchAbi {
        name: "x86_64",
        gnu_triple: "x86_64-linux-gnu",
        ioctl_encoding: IoctlEncoding::Generic,
        endian: Endian::Little,
        page_sizes: &[4096],
        structs: crate::x86_64::STRUCT_LAYOUTS,
        ioctls: crate::x86_64::IOCTLS,
    },
    ArchAbi {
        name: "aarch64",
        gnu_triple: "aarch64-linux-gnu",
        ioctl_encoding: IoctlEncoding::Generic,
        endian: Endian::Little,
        page_sizes: &[4096, 16384, 65536],
        structs: crate::aarch64::STRUCT_LAYOUTS,
        ioctls: crate::aarch64::IOCTLS,
    },
    ArchAbi {
        name: "riscv64",
        gnu_triple: "riscv64-linux-gnu",
        ioctl_encoding: IoctlEncoding::Generic,
        endian: Endian::Little,
        page_sizes: &[4096],
        structs: crate::riscv64::STRUCT_LAYOUTS,
        ioctls: crate::riscv64::IOCTLS,
    },
    ArchAbi {
        name: "s390x",
        gnu_triple: "s390x-linux-gnu",
        ioctl_encoding: IoctlEncoding::Generic,
        endian: Endian::Big,
        page_sizes: &[4096],
        structs: crate::s390x::STRUCT_LAYOUTS,
        ioctls: crate::s390x::IOCTLS,
    },
    ArchAbi {
        name: "powerpc64",
        gnu_triple: "powerpc64le-linux-gnu",
        ioctl_encoding: IoctlEncoding::Powerpc,
        endian: Endian::Little,
        page_sizes: &[65536, 4096],
        structs: crate::powerpc64::STRUCT_LAYOUTS,
        ioctls: crate::powerpc64::IOCTLS,
    },
];

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
    #[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
    let name = "powerpc64";
    #[cfg(not(any(
        target_arch = "x86_64",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "s390x",
        all(target_arch = "powerpc64", target_endian = "little")
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

    #[test]
    fn field_names_are_unique_per_struct() {
        for arch in ARCHES {
            for layout in arch.structs {
                for (i, field) in layout.fields.iter().enumerate() {
                    let first = layout
                        .fields
                        .iter()
                        .position(|other| other.name == field.name);
                    assert_eq!(
                        first,
                        Some(i),
                        "{}: {}.{} listed twice",
                        arch.name,
                        layout.name,
                        field.name
                    );
                }
            }
        }
    }

    #[test]
    fn five_architectures_each_in_its_own_encoding() {
        let names: [&str; 5] = core::array::from_fn(|i| ARCHES[i].name);
        assert_eq!(
            names,
            ["x86_64", "aarch64", "riscv64", "s390x", "powerpc64"]
        );
        for arch in ARCHES {
            for ioctl in arch.ioctls {
                let expected =
                    arch.ioctl_encoding
                        .encode(ioctl.direction, crate::KVMIO, ioctl.nr, ioctl.size);
                assert_eq!(
                    ioctl.request as u32, expected,
                    "{} {}",
                    arch.name, ioctl.name
                );
            }
        }
    }

    #[test]
    fn the_same_ioctl_differs_only_on_powerpc() {
        let run = |arch: &str| {
            let abi = arch_abi(arch).unwrap();
            abi.ioctls
                .iter()
                .find(|i| i.name == "KVM_SET_ONE_REG")
                .unwrap()
                .request as u32
        };
        assert_eq!(run("x86_64"), 0x4010_AEAC);
        assert_eq!(run("aarch64"), 0x4010_AEAC);
        assert_eq!(run("s390x"), 0x4010_AEAC);
        assert_eq!(run("powerpc64"), 0x8010_AEAC);
    }
}
