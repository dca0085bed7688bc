//! The entry point of architectures whose guests start at a plain physical address with the
//! MMU off (arm64, riscv64): a program counter and an initial stack pointer.
//!
//! Compiled on every host so its parsing is tested everywhere; the arm64 and riscv64 modules
//! re-export it as their `Entry`.

use std::fmt;

/// Where a guest starts: the program counter, and the stack pointer it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlatEntry {
    /// Guest physical address of the first instruction.
    pub pc: u64,
    /// Initial stack pointer (below the parameter block at `0x0F00`, as on x86).
    pub stack_pointer: u64,
}

impl Default for FlatEntry {
    /// `pc = 0x1000` (the default load address), `sp = 0x0F00`.
    fn default() -> Self {
        FlatEntry {
            pc: 0x1000,
            stack_pointer: 0x0F00,
        }
    }
}

impl FlatEntry {
    /// Parses a hex guest physical address (`1000`, `0x80001000`).
    pub fn parse(text: &str) -> Result<FlatEntry, String> {
        let pc = crate::units::parse_hex(text.trim())
            .ok_or_else(|| format!("entry {text:?} is not a hex address (for example 0x1000)"))?;
        Ok(FlatEntry {
            pc,
            ..FlatEntry::default()
        })
    }

    /// This entry with the program counter `text` (a hex address), the stack kept.
    pub fn parsed_in(self, text: &str) -> Result<FlatEntry, String> {
        Ok(FlatEntry {
            pc: FlatEntry::parse(text)?.pc,
            ..self
        })
    }

    /// The same entry: the program counter and stack pointer stay where they were given (only
    /// x86's CPU modes move the stack to the top of RAM).
    pub fn with_stack_at_top(self, _ram_end: u64, _image_entry: u64) -> FlatEntry {
        self
    }

    /// The guest physical address the first instruction is fetched from.
    pub fn linear_address(&self) -> u64 {
        self.pc
    }
}

impl fmt::Display for FlatEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.pc)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_hex_addresses() {
        assert_eq!(FlatEntry::parse("0x1000").map(|e| e.pc), Ok(0x1000));
        assert_eq!(FlatEntry::parse("80001000").map(|e| e.pc), Ok(0x8000_1000));
        assert_eq!(FlatEntry::parse("0x40").unwrap().to_string(), "0x40");
        assert_eq!(FlatEntry::default().stack_pointer, 0x0F00);
        for bad in [
            "",
            "0x",
            "g",
            "0000:1000",
            "10000000000000000",
            "+1000",
            "0x0x1000",
        ] {
            assert!(FlatEntry::parse(bad).is_err(), "{bad:?}");
        }
    }
}
