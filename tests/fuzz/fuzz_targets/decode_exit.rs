//! Arbitrary `kvm_run` bytes through the exit decoder and the dispatch to the devices
//! (`rawkvm::fuzzing::decode_exit` says how the input is laid out and what is checked).
#![no_main]

libfuzzer_sys::fuzz_target!(|input: &[u8]| {
    let _ = rawkvm::fuzzing::decode_exit(input);
});
