//! Fuzzing harnesses: what the cargo-fuzz targets in `tests/fuzz/` run on each input, and what
//! `tests/fuzz_corpus.rs` replays on the checked-in corpus in every `cargo test`.
//!
//! Each harness takes arbitrary bytes, drives one part of rawkvm the guest (or the kernel)
//! controls, and panics if an invariant breaks, which is how a fuzzer learns of a bug:
//!
//! | harness | drives | checks |
//! |---|---|---|
//! | [`decode_exit`] | [`crate::exit::decode`] over arbitrary `kvm_run` bytes, then [`crate::devices::bus::dispatch_io`] / [`crate::devices::bus::dispatch_mmio`] into [`crate::devices::Devices`] with fuzzed IN and MMIO-read answers | slices lie where the page says and inside it, `len == size * count`, IN writes touch only `[data_offset, data_offset + size * count)`, MMIO reads only `data[..len]`, every decode error names a field that really is out of range |
//! | [`snapshot_file`] (x86-64) | the snapshot loader ([`crate::snapshot::decode`]) over arbitrary file bytes | no panic, every error's offset inside the file, a file that loads encodes back to the same snapshot |
//! | [`elf`] | [`crate::machine::elf::Elf::parse`] and `check_fits` over arbitrary bytes after the ELF magic | an accepted file's segments lie inside it, hold no more file bytes than memory, are sorted, apart and do not wrap; `check_fits` accepts only segments inside RAM |
//! | [`com1`] | [`crate::devices::Serial`] and the port bus of [`crate::devices::Devices`] with (operation, offset, byte) tuples | every answer and every console byte equals a model of the UART |
//!
//! The `kvm_run` stand-in ends exactly at a `PROT_NONE` page ([`GuardedBuffer`]), so reading
//! or writing one byte past it faults at once. Under Miri (which cannot `mprotect`) it is an
//! ordinary heap buffer, and Miri itself catches any access past it.
//!
//! [`GuardedBuffer`]: crate::sys::memory::GuardedBuffer

mod com1;
mod decode;
mod elf;
#[cfg(target_arch = "x86_64")]
mod snapshot_file;

pub use com1::com1;
pub use decode::{MAX_MAPPING, decode_exit};
pub use elf::elf;
#[cfg(target_arch = "x86_64")]
pub use snapshot_file::snapshot_file;

/// Reads the input front to back; past its end every read gives zeros, so any input is a
/// complete one.
#[derive(Debug)]
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    fn byte(&mut self) -> u8 {
        match self.bytes.split_first() {
            Some((&first, rest)) => {
                self.bytes = rest;
                first
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }

    /// Up to `len` bytes, fewer if the input ends first.
    fn take(&mut self, len: usize) -> &'a [u8] {
        let (taken, rest) = self.bytes.split_at(len.min(self.bytes.len()));
        self.bytes = rest;
        taken
    }

    fn rest(self) -> &'a [u8] {
        self.bytes
    }

    fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}
