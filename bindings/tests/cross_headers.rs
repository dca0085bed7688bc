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

use header_proof::{Proof, WorkDir, claims_for, compiles_kvm_h, prove, say, skip};
use rawkvm_bindings::ARCHES;

#[test]
fn every_architecture_matches_its_own_kernel_headers() {
    let work = WorkDir::new("cross-headers");
    let mut proofs: Vec<Proof> = Vec::new();
    for arch in ARCHES {
        let cc = format!("{}-gcc", arch.gnu_triple);
        if !compiles_kvm_h(&cc, work.path()) {
            skip(format_args!(
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

/// What a line of `bindings/src` declares that the proof must compare.
enum Declared<'a> {
    /// `pub const EXIT_REASONS: [u32];`, the head of a `named_constants!` table.
    Table(&'a str),
    /// `pub const KVMIO: u8 = 0xAE;`.
    Constant(&'a str),
    /// `pub struct kvm_regs (size 144, align 8) {` in an `abi!` block.
    Struct(&'a str),
    /// `pub struct kvm_run_exit_io in "io" (size 16, align 8) {`: a type the kernel leaves
    /// anonymous, compared through the fields of its parent named with this designator.
    Member(&'a str),
}

fn declared(line: &str) -> Option<Declared<'_>> {
    let line = line.trim();
    if let Some(declaration) = line.strip_prefix("pub const ") {
        let (name, ty) = declaration.split_once(':')?;
        let ty = ty.trim();
        return if ty.starts_with('[') && ty.ends_with("];") {
            Some(Declared::Table(name))
        } else if name.starts_with("KVM") && !NOT_IN_UAPI.contains(&name) {
            Some(Declared::Constant(name))
        } else {
            None
        };
    }
    let declaration = line
        .strip_prefix("pub struct ")
        .or_else(|| line.strip_prefix("pub union "))?;
    let (head, _) = declaration.split_once("(size ")?;
    if head.starts_with('$') {
        return None; // a macro's template (riscv's `empty_structs!`), not a declaration
    }
    Some(match head.trim().split_once(" in ") {
        Some((_, designator)) => Declared::Member(designator.trim_matches('"')),
        None => Declared::Struct(head.trim()),
    })
}

/// The claims are hand-written lists (`header_proof/claims.rs`, each module's
/// `*_STRUCT_LAYOUTS`): every `named_constants!` table, single `pub const KVM_*` and `abi!` type
/// in `bindings/src/common` and in an architecture's module must reach the claims of every
/// architecture that module belongs to, or it would never be compared with a header.
#[test]
fn everything_the_crate_declares_is_claimed() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unclaimed = Vec::new();
    let mut seen = 0;
    for module in ["common"]
        .into_iter()
        .chain(ARCHES.iter().map(|arch| arch.name))
    {
        let claims: Vec<_> = ARCHES
            .iter()
            .filter(|arch| module == "common" || arch.name == module)
            .map(|arch| claims_for(arch.name))
            .collect();
        let mut text = String::new();
        for entry in std::fs::read_dir(src.join(module)).expect("read a module directory") {
            let path = entry.expect("a directory entry").path();
            text += &std::fs::read_to_string(path).expect("read a source file");
        }
        // C anonymous members (`exit: kvm_run_exit => (32, inline)`): their fields are listed
        // in the parent's layout under no designator of their own.
        let inline = |name: &str| {
            text.lines()
                .any(|line| line.contains(&format!(": {name} =>")) && line.contains("inline"))
        };
        for item in text.lines().filter_map(declared) {
            seen += 1;
            for claims in &claims {
                let (kind, name, claimed) = match item {
                    Declared::Table(name) => ("table", name, claims.has_table(name)),
                    Declared::Constant(name) => ("constant", name, claims.has_constant(name)),
                    Declared::Struct(name) if inline(name) => continue,
                    Declared::Struct(name) => (
                        "struct",
                        name,
                        claims.layouts.iter().any(|layout| layout.name == name),
                    ),
                    Declared::Member(designator) => (
                        "anonymous member",
                        designator,
                        claims.layouts.iter().flat_map(|l| l.fields).any(|field| {
                            field.name == designator
                                || field.name.starts_with(&format!("{designator}."))
                        }),
                    ),
                };
                if !claimed {
                    unclaimed.push(format!("{}: {kind} {name} (src/{module})", claims.arch));
                }
            }
        }
    }
    assert!(
        seen > 150,
        "only {seen} declarations found: has the syntax changed?"
    );
    assert!(
        unclaimed.is_empty(),
        "never compared with a header (not in the claims):\n  {}",
        unclaimed.join("\n  ")
    );
}
