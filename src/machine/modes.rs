//! The x86 CPU modes' part of building a machine (`--mode`, `arch::x86_64::modes`): checks of
//! the configuration and the image against the mode, and the system area written into RAM.
//!
//! ```text
//! validate:   RAM reaches past the system area (0xA_0000) outside real mode;
//!             the backend can run the mode (PVM refuses --mode paged)
//! image:      an ELF's class fits the mode (ELF32: protected, paged; ELF64: long, user)
//! memory:     write(SYSTEM_AREA, GDT + TSS + IDT + stub + page tables), one copy
//! ```
//!
//! This module holds no `unsafe` code.

use crate::arch::Entry;
use crate::arch::x86_64::CpuMode;
use crate::arch::x86_64::layout::SYSTEM_AREA_END;
use crate::arch::x86_64::modes::system_area;
use crate::error::{ConfigError, ElfClass, ElfProblem, Error};
use crate::kvm::vm::Vm;
use crate::machine::MachineConfig;
use crate::machine::elf::Elf;
use crate::machine::image::Image;

// The page tables (arch, above the devices) map the device window by their own constant: it
// must be where the devices are, and hold the exit device.
const _: () = {
    use crate::arch::x86_64::layout::DEVICE_WINDOW;
    use crate::devices::{EXIT_MMIO, MMIO_CONSOLE};
    assert!(DEVICE_WINDOW == MMIO_CONSOLE && EXIT_MMIO + 4 <= DEVICE_WINDOW + 0x20_0000);
};

/// Refuses what the mode cannot do: too little RAM for the system area, a backend that cannot
/// run it.
pub(super) fn validate(config: &MachineConfig) -> Result<(), Error> {
    let mode = config.entry.mode;
    if mode.uses_system_area() && config.mem_size < SYSTEM_AREA_END {
        return Err(Error::Config(ConfigError::RamTooSmallForMode {
            mode: mode.name(),
            size: config.mem_size,
            needed: SYSTEM_AREA_END,
        }));
    }
    let backend = crate::exit::hardware::kvm_backend();
    if let (Some(reason), Some(backend)) = (mode.refusal_on(backend), backend) {
        return Err(Error::UnsupportedMode {
            mode: mode.name(),
            backend,
            reason,
        });
    }
    Ok(())
}

/// An ELF image must be of the class the mode runs: 32-bit code in the 32-bit modes, 64-bit
/// in long and user mode, none in real mode.
pub(super) fn check_image(
    config: &MachineConfig,
    image: &Image,
    elf: Option<&Elf>,
) -> Result<(), Error> {
    let Some(elf) = elf else { return Ok(()) };
    let mode = config.entry.mode;
    let fits = match elf.class {
        ElfClass::Elf32 => matches!(mode, CpuMode::Protected | CpuMode::Paged),
        ElfClass::Elf64 => mode.is_64bit(),
    };
    if fits {
        return Ok(());
    }
    let problem = ElfProblem::ClassForMode {
        class: elf.class,
        mode: mode.name(),
    };
    Err(image.bad_elf(problem).into())
}

/// Writes the system area of `entry`'s mode for `mem_size` bytes of RAM (nothing in real
/// mode).
pub(super) fn write_system_area(vm: &Vm, entry: &Entry, mem_size: u64) -> Result<(), Error> {
    match system_area(entry.mode, mem_size) {
        Some(area) => vm
            .memory()
            .write(crate::arch::x86_64::layout::SYSTEM_AREA, area.bytes()),
        None => Ok(()),
    }
}

/// The mode an image runs in when none was asked for: ELF32 in protected mode, ELF64 in long
/// mode, a flat binary in real mode (the embedded guests say theirs in their setup).
pub fn default_mode_for(elf: Option<&Elf>) -> CpuMode {
    match elf.map(|elf| elf.class) {
        Some(ElfClass::Elf32) => CpuMode::Protected,
        Some(ElfClass::Elf64) => CpuMode::Long,
        None => CpuMode::Real,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elf_classes_pick_their_modes() {
        let elf = |class| Elf {
            class,
            entry: 0x1000,
            segments: Vec::new(),
        };
        assert_eq!(default_mode_for(None), CpuMode::Real);
        assert_eq!(
            default_mode_for(Some(&elf(ElfClass::Elf32))),
            CpuMode::Protected
        );
        assert_eq!(default_mode_for(Some(&elf(ElfClass::Elf64))), CpuMode::Long);
    }
}
