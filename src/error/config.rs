//! Configuration values found wrong before the kernel is asked: sizes, addresses, counts.

use std::fmt;

use super::SettingNames;
use crate::units::Size;

/// A configuration value that cannot work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// Guest RAM of size 0.
    RamEmpty {
        /// The host page size: the least RAM there can be.
        page: u64,
    },
    /// Guest RAM above rawkvm's limit.
    RamTooLarge {
        /// What was asked for.
        size: u64,
        /// The limit (`MAX_MEM_SIZE`).
        limit: u64,
    },
    /// Guest RAM not a multiple of the host page size.
    RamUnaligned {
        /// What was asked for.
        size: u64,
        /// The host page size.
        page: u64,
    },
    /// The load address is not inside guest RAM.
    LoadAddressOutsideRam {
        /// The load address.
        load_addr: u64,
        /// The RAM size.
        mem_size: u64,
    },
    /// No vCPUs.
    NoVcpus,
    /// Too little RAM for the system area of an x86 CPU mode (`0x9_0000..0xA_0000`).
    RamTooSmallForMode {
        /// The mode's name.
        mode: &'static str,
        /// The RAM size.
        size: u64,
        /// The least RAM the mode needs.
        needed: u64,
    },
    /// A device declared a write-only zone that runs past the end of its address space
    /// (ports end at `0x10000`, guest physical addresses at 2^64).
    ZoneOutOfSpace {
        /// `Port` or `Memory` (the zone's `Space`).
        space: &'static str,
        /// First port or address.
        start: u64,
        /// Length.
        len: u32,
    },
    /// An arm64 vCPU feature bit beyond `kvm_vcpu_init.features`.
    ArmFeatureOutOfRange {
        /// The feature number.
        feature: u32,
    },
}

impl ConfigError {
    /// The message, advice naming settings by `names`.
    pub(super) fn describe(&self, f: &mut fmt::Formatter<'_>, names: &SettingNames) -> fmt::Result {
        let SettingNames {
            memory,
            load_address,
            ..
        } = names;
        match *self {
            ConfigError::RamEmpty { page } => write!(
                f,
                "RAM size 0: guest RAM must be at least one page ({page} bytes); raise {memory}"
            ),
            ConfigError::RamTooLarge { size, limit } => write!(
                f,
                "RAM size {} is above rawkvm's limit of {}: its guests run in real or 32-bit \
                 mode and address at most 4 GiB, and KVM would spend about 2 MiB of kernel \
                 memory per GiB; lower {memory}",
                Size(size),
                Size(limit)
            ),
            ConfigError::RamUnaligned { size, page } => write!(
                f,
                "RAM size {size} ({size:#x}) must be a multiple of the page size {page}; round \
                 {memory} up to {rounded} ({rounded:#x})",
                rounded = size.next_multiple_of(page),
            ),
            ConfigError::LoadAddressOutsideRam {
                load_addr,
                mem_size,
            } => write!(
                f,
                "load address {load_addr:#x} is outside guest RAM [0, {mem_size:#x}); lower \
                 {load_address} or raise {memory}"
            ),
            ConfigError::NoVcpus => f.write_str("the number of vCPUs must be at least 1"),
            ConfigError::RamTooSmallForMode { mode, size, needed } => write!(
                f,
                "RAM size {} is too small for --mode {mode}: its tables live at \
                 0x90000..0xa0000, so RAM must be at least {} ({needed:#x}); raise {memory}",
                Size(size),
                Size(needed)
            ),
            ConfigError::ZoneOutOfSpace { space, start, len } => write!(
                f,
                "write-only zone WriteOnlyZone {{ space: {space}, start: {start}, len: {len} }} \
                 does not fit its address space"
            ),
            ConfigError::ArmFeatureOutOfRange { feature } => {
                write!(f, "arm64 vCPU feature {feature} out of range")
            }
        }
    }
}
