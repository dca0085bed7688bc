//! The ELF reader ([`crate::machine::elf`]) on arbitrary bytes: it either refuses them with a
//! named problem or describes segments that are really there.

use crate::machine::elf::{Elf, MAGIC};

/// RAM sizes the accepted images are checked against: below, at and above where the segments
/// usually end.
const RAM_ENDS: [u64; 3] = [0x1_0000, 0x10_0000, 1 << 32];

/// Parses `input` (with the ELF magic put in front, so the fuzzer need not find it) and
/// checks what an accepted file claims: every segment's bytes lie in the file, no more of them
/// than its memory size, segments sorted, apart, and not wrapping; `check_fits` answers for
/// any RAM size without panicking, and accepts only segments inside that RAM.
pub fn elf(input: &[u8]) -> Option<Elf> {
    let bytes = [MAGIC.as_slice(), input].concat();
    let elf = Elf::parse(&bytes).ok()?;
    let mut end_before = 0;
    for segment in &elf.segments {
        assert!(segment.file.end <= bytes.len(), "{segment:?} past the file");
        assert!(segment.file.start <= segment.file.end);
        assert!(segment.file.len() as u64 <= segment.mem_size, "{segment:?}");
        let end = segment
            .paddr
            .checked_add(segment.mem_size)
            .expect("a segment wraps");
        assert!(segment.paddr >= end_before, "segments overlap");
        end_before = end;
    }
    for ram_end in RAM_ENDS {
        if elf.check_fits(ram_end, &[]).is_ok() {
            assert!(elf.segments.iter().all(|s| s.range().end <= ram_end));
        }
    }
    Some(elf)
}
