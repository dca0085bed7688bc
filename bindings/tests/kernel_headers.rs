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

use header_proof::claims::Expression;
use header_proof::{WorkDir, claims_for, compiles_kvm_h, prove, say, skip};

#[test]
fn rust_definitions_match_the_kernel_header() {
    if rawkvm_bindings::arch_abi(rawkvm_bindings::HOST_ARCH).is_none() {
        skip(format_args!(
            "SKIPPED: this crate has no definitions for the host architecture"
        ));
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
        skip(format_args!(
            "SKIPPED: kernel header proof not run: no C compiler with <linux/kvm.h> (set CC, or \
             install gcc and linux-libc-dev)"
        ));
        return;
    };
    let claims = claims_for(rawkvm_bindings::HOST_ARCH);
    let proof = prove(&cc, work.path(), &claims);
    for item in &proof.not_in_header {
        println!("  not in host header, {item}");
    }
    say(format_args!("{}", proof.summary()));
    assert!(
        proof.mismatches.is_empty(),
        "Rust and <linux/kvm.h> disagree:\n  {}",
        proof.mismatches.join("\n  ")
    );
}

/// The comparison is not vacuous: a wrong offset, member size, struct size, alignment, request
/// code, constant or macro-computed value in the claims is reported, naming the struct and field
/// (or the ioctl, the constant, the expression).
#[test]
fn a_wrong_claim_is_named() {
    use rawkvm_bindings::{FieldLayout, IoctlInfo, StructLayout};

    let work = WorkDir::new("kernel-headers-negative");
    let Some(cc) = ["cc", "gcc"]
        .into_iter()
        .find(|cc| compiles_kvm_h(cc, work.path()))
    else {
        skip(format_args!(
            "SKIPPED: C compiler or <linux/kvm.h> unavailable"
        ));
        return;
    };
    let mut claims = claims_for(rawkvm_bindings::HOST_ARCH);
    // kvm_one_reg { __u64 id; __u64 addr; }: claim `addr` at 16 and 4 bytes wide.
    let fields: &'static [FieldLayout] = Box::leak(Box::new([
        rawkvm_bindings::kvm_one_reg::LAYOUT.fields[0],
        FieldLayout {
            offset: 16,
            size: 4,
            ..rawkvm_bindings::kvm_one_reg::LAYOUT.fields[1]
        },
    ]));
    // ... and the struct 24 bytes long, 4-aligned (it is 16, 8-aligned).
    let wrong_struct = StructLayout {
        fields,
        size: 24,
        align: 4,
        ..rawkvm_bindings::kvm_one_reg::LAYOUT
    };
    claims.layouts = Box::leak(Box::new([wrong_struct]));
    let run = *claims.ioctls.iter().find(|i| i.name == "KVM_RUN").unwrap();
    let wrong_run = IoctlInfo {
        request: run.request + 1,
        ..run
    };
    claims.ioctls = Box::leak(Box::new([wrong_run]));
    claims.constants.retain(|c| c.name == "KVMIO");
    claims.constants[0].value += 1;
    claims.expressions = vec![Expression {
        table: "test",
        name: "RUN_PLUS_TWO",
        c: "KVM_RUN + 2",
        value: i128::from(run.request as u32) + 3,
    }];

    let proof = prove(cc, work.path(), &claims);
    let arch = rawkvm_bindings::HOST_ARCH;
    assert_eq!(
        proof.mismatches,
        [
            format!("{arch}: kvm_one_reg.addr: Rust offset 0x10, C offset 0x8"),
            format!("{arch}: kvm_one_reg.addr: Rust size 0x4, C size 0x8"),
            format!("{arch}: kvm_one_reg: Rust size 0x18, C size 0x10"),
            format!("{arch}: kvm_one_reg: Rust alignment 0x4, C alignment 0x8"),
            format!(
                "{arch}: KVM_RUN: Rust {:#x}, C {:#x}",
                run.request + 1,
                run.request
            ),
            format!("{arch}: other KVMIO: Rust 0xaf, C 0xae"),
            format!(
                "{arch}: RUN_PLUS_TWO = KVM_RUN + 2: Rust {:#x}, C {:#x}",
                run.request + 3,
                run.request + 2
            ),
        ]
    );
}
