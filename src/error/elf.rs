//! What can be wrong with an ELF image (`machine::elf` reads them): every check of the
//! loader has a variant, and each message names the field and what to do.

use std::fmt;
use std::ops::Range;

/// `ELFCLASS32` / `ELFCLASS64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElfClass {
    /// 32-bit (`ELFCLASS32`, `EM_386`).
    Elf32,
    /// 64-bit (`ELFCLASS64`, `EM_X86_64`).
    Elf64,
}

impl fmt::Display for ElfClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElfClass::Elf32 => "ELF32",
            ElfClass::Elf64 => "ELF64",
        })
    }
}

/// What is wrong with an ELF file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfProblem {
    /// Shorter than a header or table it declares.
    Truncated {
        /// What did not fit.
        what: &'static str,
        /// Bytes it needs, from the file's start.
        needed: u64,
        /// Bytes the file has.
        len: u64,
    },
    /// `e_ident[EI_CLASS]` is neither 1 nor 2.
    Class(u8),
    /// Not little-endian (`e_ident[EI_DATA]`).
    Endianness(u8),
    /// `e_type` is not `ET_EXEC`.
    Type(u16),
    /// `e_machine` is not the one of its class.
    Machine {
        /// The class.
        class: ElfClass,
        /// `e_machine`.
        machine: u16,
    },
    /// `e_phentsize` is not the class's program header size.
    HeaderSize(u16),
    /// `p_filesz > p_memsz`.
    FileLargerThanMemory {
        /// The segment's index among the program headers.
        index: usize,
    },
    /// A segment wraps around the address space.
    Wraps {
        /// The segment's index.
        index: usize,
    },
    /// Two segments overlap.
    Overlap {
        /// One segment's range.
        first: Range<u64>,
        /// The other's.
        second: Range<u64>,
    },
    /// No non-empty `PT_LOAD` segment.
    NothingToLoad,
    /// A segment does not fit in RAM.
    OutsideRam {
        /// Its range.
        segment: Range<u64>,
        /// The end of RAM.
        ram_end: u64,
    },
    /// A segment overlaps a region rawkvm uses.
    Reserved {
        /// Its range.
        segment: Range<u64>,
        /// The reserved range.
        reserved: Range<u64>,
        /// What it holds.
        what: &'static str,
    },
    /// The class cannot run in the CPU mode asked for.
    ClassForMode {
        /// The class.
        class: ElfClass,
        /// The mode's name.
        mode: &'static str,
    },
}

impl fmt::Display for ElfProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ElfProblem::Truncated { what, needed, len } => write!(
                f,
                "truncated: the {what} needs {needed} bytes but the file has {len}"
            ),
            ElfProblem::Class(class) => write!(
                f,
                "class {class} in e_ident is neither ELFCLASS32 (1) nor ELFCLASS64 (2)"
            ),
            ElfProblem::Endianness(data) => write!(
                f,
                "data encoding {data} in e_ident is not little-endian (ELFDATA2LSB, 1)"
            ),
            ElfProblem::Type(kind) => write!(
                f,
                "e_type {kind} is not an executable (ET_EXEC, 2); link with -static -no-pie"
            ),
            ElfProblem::Machine { class, machine } => {
                let (wanted, number) = match class {
                    ElfClass::Elf32 => ("EM_386", 3),
                    ElfClass::Elf64 => ("EM_X86_64", 62),
                };
                write!(
                    f,
                    "machine {machine} is not x86: an {class} guest needs e_machine {wanted} \
                     ({number})"
                )
            }
            ElfProblem::HeaderSize(size) => write!(
                f,
                "e_phentsize {size} is not the size of a program header of this class"
            ),
            ElfProblem::FileLargerThanMemory { index } => {
                write!(f, "program header {index}: p_filesz is larger than p_memsz")
            }
            ElfProblem::Wraps { index } => write!(
                f,
                "program header {index}: the segment runs past the end of the address space"
            ),
            ElfProblem::Overlap { first, second } => write!(
                f,
                "segments overlap: {:#x}..{:#x} and {:#x}..{:#x}",
                first.start, first.end, second.start, second.end
            ),
            ElfProblem::NothingToLoad => f.write_str("no PT_LOAD segment with bytes in memory"),
            ElfProblem::OutsideRam { segment, ram_end } => write!(
                f,
                "segment {:#x}..{:#x} is outside guest RAM [0, {ram_end:#x}); raise --mem or \
                 link it lower",
                segment.start, segment.end
            ),
            ElfProblem::Reserved {
                segment,
                reserved,
                what,
            } => write!(
                f,
                "segment {:#x}..{:#x} overlaps {:#x}..{:#x}, which rawkvm reserves for the \
                 {what}; link it elsewhere",
                segment.start, segment.end, reserved.start, reserved.end
            ),
            ElfProblem::ClassForMode { class, mode } => write!(
                f,
                "an {class} executable cannot run in --mode {mode}: ELF32 runs in protected, \
                 ELF64 in long or user"
            ),
        }
    }
}
