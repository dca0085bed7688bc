//! The snapshot loader over arbitrary file bytes (`rawkvm::fuzzing::snapshot_file`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| drop(rawkvm::fuzzing::snapshot_file(input)));
