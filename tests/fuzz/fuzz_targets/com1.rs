//! The COM1 UART and the port bus against a model (`rawkvm::fuzzing::com1`).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| rawkvm::fuzzing::com1(input));
