//! ELF executables as guest images: the file header and program headers of an ELF32 (i386)
//! or ELF64 (x86-64) little-endian executable, read in safe Rust with checked arithmetic.
//!
//! ```text
//! e_ident: 0x7f 'E' 'L' 'F', class (1: 32-bit, 2: 64-bit), data (1: little-endian), version 1
//! e_type = ET_EXEC (2), e_machine = EM_386 (3) or EM_X86_64 (62), e_entry
//! e_phoff, e_phentsize, e_phnum -> program headers; every PT_LOAD (1) with p_memsz > 0:
//!   copy file[p_offset .. p_offset + p_filesz] to GPA p_paddr, zero up to p_paddr + p_memsz
//! ```
//!
//! Every value the file gives is checked before it is used: the program headers and each
//! segment's bytes must lie inside the file, `p_filesz <= p_memsz`, segments must not overlap
//! each other, and (in [`Elf::check_fits`]) must lie inside RAM and outside the regions rawkvm
//! reserves. No section headers are read: a loader needs only the program headers.
//!
//! This module makes no system calls and holds no `unsafe` code.

use std::ops::Range;

pub use crate::error::{ElfClass, ElfProblem};

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Guest physical address (`p_paddr`).
    pub paddr: u64,
    /// Bytes in guest memory (`p_memsz`); past the file's bytes they are zeroed (`.bss`).
    pub mem_size: u64,
    /// Where its bytes are in the file (`p_offset .. p_offset + p_filesz`).
    pub file: Range<usize>,
}

impl Segment {
    /// The guest physical range it occupies.
    pub fn range(&self) -> Range<u64> {
        self.paddr..self.paddr + self.mem_size
    }
}

/// A parsed ELF executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Elf {
    /// 32- or 64-bit.
    pub class: ElfClass,
    /// `e_entry`.
    pub entry: u64,
    /// The non-empty `PT_LOAD` segments, sorted by address.
    pub segments: Vec<Segment>,
}

/// The four bytes every ELF file starts with.
pub const MAGIC: [u8; 4] = [0x7F, b'E', b'L', b'F'];
const ET_EXEC: u16 = 2;
const EM_386: u16 = 3;
const EM_X86_64: u16 = 62;
const PT_LOAD: u32 = 1;

/// Whether `bytes` start like an ELF file (the rest is for [`Elf::parse`] to judge).
pub fn is_elf(bytes: &[u8]) -> bool {
    bytes.starts_with(&MAGIC)
}

/// Little-endian reads at checked offsets of the file.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn slice(&self, at: u64, len: u64, what: &'static str) -> Result<&[u8], ElfProblem> {
        let truncated = || ElfProblem::Truncated {
            what,
            needed: at.saturating_add(len),
            len: self.bytes.len() as u64,
        };
        let start = usize::try_from(at).map_err(|_| truncated())?;
        let end = usize::try_from(len)
            .ok()
            .and_then(|len| start.checked_add(len))
            .ok_or_else(truncated)?;
        self.bytes.get(start..end).ok_or_else(truncated)
    }

    fn uint(&self, at: u64, width: u64, what: &'static str) -> Result<u64, ElfProblem> {
        let bytes = self.slice(at, width, what)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0, |value, byte| value << 8 | u64::from(*byte)))
    }
}

/// The fields' offsets and widths of one class, from the ELF specification.
struct Layout {
    /// Width of an address/offset field: 4 or 8.
    word: u64,
    entry: u64,
    phoff: u64,
    phentsize: u64,
    phnum: u64,
    header_len: u64,
    ph_len: u64,
    /// Offsets in a program header: type, offset, paddr, filesz, memsz.
    p_offset: u64,
    p_paddr: u64,
    p_filesz: u64,
    p_memsz: u64,
}

const LAYOUT32: Layout = Layout {
    word: 4,
    entry: 0x18,
    phoff: 0x1C,
    phentsize: 0x2A,
    phnum: 0x2C,
    header_len: 0x34,
    ph_len: 0x20,
    p_offset: 0x04,
    p_paddr: 0x0C,
    p_filesz: 0x10,
    p_memsz: 0x14,
};

const LAYOUT64: Layout = Layout {
    word: 8,
    entry: 0x18,
    phoff: 0x20,
    phentsize: 0x36,
    phnum: 0x38,
    header_len: 0x40,
    ph_len: 0x38,
    p_offset: 0x08,
    p_paddr: 0x18,
    p_filesz: 0x20,
    p_memsz: 0x28,
};

impl Elf {
    /// Parses the headers of `bytes` (which start with [`MAGIC`]).
    pub fn parse(bytes: &[u8]) -> Result<Elf, ElfProblem> {
        let file = Reader { bytes };
        let ident = file.slice(0, 16, "ELF identification")?;
        let (class, layout, machine) = match ident[4] {
            1 => (ElfClass::Elf32, &LAYOUT32, EM_386),
            2 => (ElfClass::Elf64, &LAYOUT64, EM_X86_64),
            other => return Err(ElfProblem::Class(other)),
        };
        if ident[5] != 1 {
            return Err(ElfProblem::Endianness(ident[5]));
        }
        file.slice(0, layout.header_len, "ELF header")?;
        let kind = file.uint(0x10, 2, "ELF header")? as u16;
        if kind != ET_EXEC {
            return Err(ElfProblem::Type(kind));
        }
        let found = file.uint(0x12, 2, "ELF header")? as u16;
        if found != machine {
            return Err(ElfProblem::Machine {
                class,
                machine: found,
            });
        }
        let entry = file.uint(layout.entry, layout.word, "ELF header")?;
        let phoff = file.uint(layout.phoff, layout.word, "ELF header")?;
        let phentsize = file.uint(layout.phentsize, 2, "ELF header")?;
        let phnum = file.uint(layout.phnum, 2, "ELF header")?;
        if phentsize != layout.ph_len {
            return Err(ElfProblem::HeaderSize(phentsize as u16));
        }
        // phnum and phentsize are 16-bit: the product cannot overflow.
        file.slice(phoff, phnum * phentsize, "program header table")?;
        let mut segments = Vec::new();
        for index in 0..phnum {
            let at = phoff + index * phentsize;
            let field = |offset: u64| file.uint(at + offset, layout.word, "program header");
            if file.uint(at, 4, "program header")? != u64::from(PT_LOAD) {
                continue;
            }
            let (offset, paddr) = (field(layout.p_offset)?, field(layout.p_paddr)?);
            let (file_size, mem_size) = (field(layout.p_filesz)?, field(layout.p_memsz)?);
            let index = index as usize;
            if file_size > mem_size {
                return Err(ElfProblem::FileLargerThanMemory { index });
            }
            if mem_size == 0 {
                continue;
            }
            if paddr.checked_add(mem_size).is_none() {
                return Err(ElfProblem::Wraps { index });
            }
            file.slice(offset, file_size, "segment")?;
            // Both fit in usize: the slice above exists.
            let start = offset as usize;
            segments.push(Segment {
                paddr,
                mem_size,
                file: start..start + file_size as usize,
            });
        }
        segments.sort_by_key(|segment| segment.paddr);
        if let Some(pair) = segments
            .windows(2)
            .find(|pair| pair[0].range().end > pair[1].paddr)
        {
            return Err(ElfProblem::Overlap {
                first: pair[0].range(),
                second: pair[1].range(),
            });
        }
        if segments.is_empty() {
            return Err(ElfProblem::NothingToLoad);
        }
        Ok(Elf {
            class,
            entry,
            segments,
        })
    }

    /// Checks that every segment lies in RAM `[0, ram_end)` and outside each `reserved`
    /// range (with what it holds).
    pub fn check_fits(
        &self,
        ram_end: u64,
        reserved: &[(Range<u64>, &'static str)],
    ) -> Result<(), ElfProblem> {
        for segment in &self.segments {
            let range = segment.range();
            if range.end > ram_end {
                return Err(ElfProblem::OutsideRam {
                    segment: range,
                    ram_end,
                });
            }
            if let Some((reserved, what)) = reserved
                .iter()
                .find(|(reserved, _)| range.start < reserved.end && reserved.start < range.end)
            {
                return Err(ElfProblem::Reserved {
                    segment: range,
                    reserved: reserved.clone(),
                    what,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "elf_tests.rs"]
mod tests;
