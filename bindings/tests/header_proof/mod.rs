//! The engine both header proofs share: write a C file from the Rust tables, compile it to
//! assembly against some architecture's `<linux/kvm.h>`, read the numbers back, compare.
//!
//! The C file uses the kernel's asm-offsets technique: every number becomes the immediate
//! operand of an inline-asm `.ascii "->..."` directive (`"i"` constraint), so compiling with
//! `-S` is enough and nothing is ever run. That is what lets an x86 machine prove the layouts of
//! arm64, riscv64, s390x and ppc64le with their cross compilers.
//!
//! Headers may be older than the Linux 6.18 the crate follows. A struct or member newer than the
//! header (by its `since`, against `LINUX_VERSION_CODE`) is reported as "checked by static
//! assertion only"; a struct that grew since is compared with the size of the members the
//! header has; a constant or request it does not `#define` is reported as unchecked. None of
//! those count as checked.
#![allow(dead_code)]

pub mod claims;
mod program;
mod report;

use std::path::{Path, PathBuf};
use std::process::Command;

/// Prints a line the test harness does not capture (it captures only `print!`/`eprint!`), so
/// `SKIPPED:` lines and the proofs' summaries show in every log, passing tests included.
pub fn say(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// Set by `.ci/run`, which installs every compiler and header the proofs need: a proof that
/// would be skipped there means the set-up broke, so it fails instead of passing quietly.
const REQUIRE_PROOFS: &str = "RAWKVM_REQUIRE_HEADER_PROOFS";

/// Says `SKIPPED: ...` like [`say`], or, when [`REQUIRE_PROOFS`] is set, fails with it.
pub fn skip(line: std::fmt::Arguments<'_>) {
    assert!(
        std::env::var_os(REQUIRE_PROOFS).is_none(),
        "{line} ({REQUIRE_PROOFS} is set: this machine should have everything the proof needs)"
    );
    say(line);
}

pub use claims::{Claims, claims_for};
pub use report::Proof;

/// A unique directory under the system temp dir, removed on drop.
pub struct WorkDir(PathBuf);

impl WorkDir {
    /// Creates `rawkvm-<what>-<pid>-<nanos>`.
    pub fn new(what: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let name = format!("rawkvm-{what}-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create the proof's temp dir");
        Self(path)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Whether `cc` can compile (to assembly) a file that includes `<linux/kvm.h>`.
pub fn compiles_kvm_h(cc: &str, dir: &Path) -> bool {
    let probe = dir.join("probe.c");
    if std::fs::write(&probe, "#include <linux/kvm.h>\nint rawkvm_probe;\n").is_err() {
        return false;
    }
    Command::new(cc)
        .arg("-S")
        .arg("-o")
        .arg(dir.join("probe.s"))
        .arg(&probe)
        .output()
        .is_ok_and(|output| output.status.success())
}

/// Compiles the proof program for `claims` with `cc` to assembly and compares every number.
/// Panics if `cc` rejects the program (a name or `since` in the tables is wrong).
pub fn prove(cc: &str, dir: &Path, claims: &Claims) -> Proof {
    let source = program::c_program(claims);
    let c_file = dir.join(format!("kvm_abi_{}.c", claims.arch));
    let asm_file = dir.join(format!("kvm_abi_{}.s", claims.arch));
    std::fs::write(&c_file, &source).expect("write the proof's C file");
    let compiled = Command::new(cc)
        .args(["-std=gnu11", "-S", "-O0", "-o"])
        .arg(&asm_file)
        .arg(&c_file)
        .output()
        .expect("run the C compiler");
    assert!(
        compiled.status.success(),
        "{cc} rejected the generated program for {} (a name or `since` in the tables is \
         wrong):\n{}",
        claims.arch,
        String::from_utf8_lossy(&compiled.stderr)
    );
    let assembly = std::fs::read_to_string(&asm_file).expect("read the compiled assembly");
    let header = report::HeaderReport::parse(&assembly);
    report::compare(claims, &header)
}
