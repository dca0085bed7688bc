//! The proof for every architecture: for each of `rawkvm_bindings::ARCHES` (x86_64, aarch64,
//! riscv64, s390x, powerpc64le), compile a C file against that architecture's `<linux/kvm.h>`
//! with its cross compiler (`<triple>-gcc`, headers under `/usr/<triple>/include`, from Debian's
//! `gcc-<triple>` and `linux-libc-dev-<arch>-cross`) to assembly only, read back every `sizeof`,
//! `_Alignof`, `offsetof`, member size, request code (in that architecture's encoding) and
//! constant, and compare field by field with the Rust tables. Nothing compiled is ever run.
//!
//! An architecture whose cross compiler or headers are missing prints
//! `SKIPPED: <arch> cross headers unavailable`; `.ci/run` installs them.

mod header_proof;

use header_proof::{Proof, WorkDir, claims_for, compiles_kvm_h, prove, say};
use rawkvm_bindings::ARCHES;

#[test]
fn every_architecture_matches_its_own_kernel_headers() {
    let work = WorkDir::new("cross-headers");
    let mut proofs: Vec<Proof> = Vec::new();
    for arch in ARCHES {
        let cc = format!("{}-gcc", arch.gnu_triple);
        if !compiles_kvm_h(&cc, work.path()) {
            say(format_args!(
                "SKIPPED: {} cross headers unavailable ({cc} with <linux/kvm.h>)",
                arch.name
            ));
            continue;
        }
        let proof = prove(&cc, work.path(), &claims_for(arch.name));
        for item in &proof.not_in_header {
            println!("  {}: not in header, {item}", arch.name);
        }
        say(format_args!("{}", proof.summary()));
        proofs.push(proof);
    }
    print_table(&proofs);
    let mismatches: Vec<&String> = proofs.iter().flat_map(|p| &p.mismatches).collect();
    assert!(
        mismatches.is_empty(),
        "Rust and the architectures' <linux/kvm.h> disagree:\n  {}",
        mismatches
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
}

/// architecture x (structs, fields, ioctls, constants) proven.
fn print_table(proofs: &[Proof]) {
    say(format_args!(
        "| architecture | headers | structs | fields | ioctls | constants |"
    ));
    say(format_args!("|---|---|---|---|---|---|"));
    for p in proofs {
        say(format_args!(
            "| {} | Linux {} | {} | {} | {} | {} |",
            p.arch,
            p.version,
            p.structs,
            p.fields,
            p.ioctls,
            p.constants()
        ));
    }
}
