//! The ELF image reader on arbitrary headers (`rawkvm::fuzzing::elf`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| drop(rawkvm::fuzzing::elf(input)));
