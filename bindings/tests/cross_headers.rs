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

use std::path::Path;

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

/// Constants the proof cannot compare: `KVM_COALESCED_MMIO_MAX` is computed from the kernel's
/// `PAGE_SIZE`, which user-space headers do not define.
const NOT_IN_UAPI: &[&str] = &["KVM_COALESCED_MMIO_MAX"];

/// The claims are a hand-written list (`header_proof/claims.rs`): every `named_constants!` table
/// and every single `pub const KVM_*` in `bindings/src/common` and in an architecture's module
/// must be on it, for every architecture that module belongs to, or it would never be compared.
#[test]
fn every_constant_of_the_crate_is_claimed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unclaimed = Vec::new();
    let mut seen = 0;
    for module in ["common"]
        .into_iter()
        .chain(ARCHES.iter().map(|arch| arch.name))
    {
        let arches: Vec<&str> = ARCHES
            .iter()
            .map(|arch| arch.name)
            .filter(|&arch| module == "common" || arch == module)
            .collect();
        let dir = std::fs::read_dir(src.join(module)).expect("read a module directory");
        for file in dir.map(|entry| entry.expect("a directory entry").path()) {
            let text = std::fs::read_to_string(&file).expect("read a source file");
            for line in text.lines() {
                let Some(declaration) = line.trim().strip_prefix("pub const ") else {
                    continue;
                };
                let Some((name, ty)) = declaration.split_once(':') else {
                    continue;
                };
                // `pub const EXIT_REASONS: [u32];` opens a `named_constants!` table.
                let table = ty.trim().starts_with('[') && ty.trim().ends_with("];");
                if !table && (!name.starts_with("KVM") || NOT_IN_UAPI.contains(&name)) {
                    continue;
                }
                seen += 1;
                for &arch in &arches {
                    let claims = claims_for(arch);
                    let claimed = if table {
                        claims.has_table(name)
                    } else {
                        claims.has_constant(name)
                    };
                    if !claimed {
                        unclaimed.push(format!("{arch}: {name} ({})", file.display()));
                    }
                }
            }
        }
    }
    assert!(
        seen > 50,
        "only {seen} constants and tables found: has the syntax changed?"
    );
    assert!(
        unclaimed.is_empty(),
        "not in header_proof/claims.rs, so never compared with a header:\n  {}",
        unclaimed.join("\n  ")
    );
}
