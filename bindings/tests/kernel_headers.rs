//! The proof against the host's kernel header.
//!
//! Writes a C file from the host architecture's tables (`STRUCT_LAYOUTS`, `IOCTLS` and the
//! constant tables), compiles it to assembly against the host's `<linux/kvm.h>` with the system
//! C compiler, and compares every `sizeof`, `_Alignof`, `offsetof`, member size, request code
//! and constant with the Rust side (the engine is in `header_proof/`, shared with
//! `cross_headers.rs`, which does the same for all five architectures).
//!
//! Without a C compiler or `<linux/kvm.h>` the test says SKIPPED and returns.

mod header_proof;

use header_proof::{WorkDir, claims_for, compiles_kvm_h, prove};

#[test]
fn rust_definitions_match_the_kernel_header() {
    if rawkvm_bindings::arch_abi(rawkvm_bindings::HOST_ARCH).is_none() {
        println!("SKIPPED: this crate has no definitions for the host architecture");
        return;
    }
    let work = WorkDir::new("kernel-headers");
    let candidates: Vec<String> = match std::env::var("CC") {
        Ok(cc) if !cc.is_empty() => vec![cc],
        _ => vec!["cc".into(), "gcc".into()],
    };
    let Some(cc) = candidates
        .into_iter()
        .find(|cc| compiles_kvm_h(cc, work.path()))
    else {
        println!("SKIPPED: C compiler or <linux/kvm.h> unavailable");
        println!(
            "SKIPPED: kernel header proof not run (set CC, or install gcc and linux-libc-dev)"
        );
        return;
    };
    let claims = claims_for(rawkvm_bindings::HOST_ARCH);
    let proof = prove(&cc, work.path(), &claims);
    for item in &proof.not_in_header {
        println!("  not in host header, {item}");
    }
    println!("{}", proof.summary());
    assert!(
        proof.mismatches.is_empty(),
        "Rust and <linux/kvm.h> disagree:\n  {}",
        proof.mismatches.join("\n  ")
    );
}
