//! The proof against the kernel's header.
//!
//! Writes a C program from the crate's own tables (`STRUCT_LAYOUTS`, `IOCTLS` and the constant
//! tables), compiles it against the host's `<linux/kvm.h>` with the system C compiler, runs it,
//! and compares every `sizeof`, `_Alignof`, `offsetof`, member size, request code and constant
//! with the Rust side.
//!
//! The host header may be older than the kernel the crate follows. A member newer than it (by the
//! layout's `since` against `LINUX_VERSION_CODE`) is reported as "not in host header, checked by
//! static assertion only"; a constant or request it does not `#define` as "not in host header,
//! value unchecked" (or checked only through its argument struct). Neither is counted as checked.
//! Without a C compiler or `<linux/kvm.h>` the test says SKIPPED and returns.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use rawkvm_bindings::{IoctlInfo, StructLayout};

/// A constant as the Rust side defines it.
struct Constant {
    table: &'static str,
    name: &'static str,
    value: i128,
}

/// What the host architecture's Rust definitions claim.
struct Claims {
    layouts: &'static [StructLayout],
    ioctls: &'static [IoctlInfo],
    constants: Vec<Constant>,
}

/// Rows of named tables, then single constants, each as a [`Constant`].
macro_rules! constants {
    (tables: [$($table:ident),* $(,)?], single: [$($single:ident),* $(,)?] $(,)?) => {{
        let mut constants = Vec::new();
        $(
            for &(value, name) in rawkvm_bindings::$table {
                constants.push(Constant { table: stringify!($table), name, value: value as i128 });
            }
        )*
        $(
            constants.push(Constant {
                table: "other",
                name: stringify!($single),
                value: rawkvm_bindings::$single as i128,
            });
        )*
        constants
    }};
}

#[cfg(target_arch = "x86_64")]
fn claims() -> Option<Claims> {
    let constants = constants! {
        tables: [
            EXIT_REASONS, CAPABILITIES, INTERNAL_ERRORS, SYSTEM_EVENTS, MSR_EXIT_REASONS,
            MEMORY_FLAGS, GUEST_DEBUG_FLAGS, STATS_FLAGS, X86_GUEST_DEBUG_FLAGS,
            X86_VCPU_EVENT_FLAGS, X86_SYNC_REGS, X86_RUN_FLAGS, CPUID_FLAGS,
            MSR_FILTER_RANGE_FLAGS, MSR_FILTER_FLAGS, VCPU_MMAP_PAGE_OFFSETS,
        ],
        single: [
            KVM_API_VERSION, KVMIO, SYNC_REGS_SIZE_BYTES, KVM_EXIT_IO_IN, KVM_EXIT_IO_OUT,
            KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES, KVM_MSR_EXIT_REASON_VALID_MASK,
            KVM_NOTIFY_CONTEXT_INVALID, KVM_MEMORY_EXIT_FLAG_PRIVATE,
            KVM_EXIT_ARM_SEA_FLAG_GPA_VALID, KVM_EXIT_HYPERV_SYNIC, KVM_EXIT_HYPERV_HCALL,
            KVM_EXIT_HYPERV_SYNDBG, KVM_EXIT_XEN_HCALL, KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE,
            KVM_DIRTY_LOG_INITIALLY_SET, KVM_NR_INTERRUPTS, KVM_SYNC_X86_VALID_FIELDS,
            KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_MAX_BITMAP_SIZE,
        ],
    };
    Some(Claims {
        layouts: rawkvm_bindings::x86_64::STRUCT_LAYOUTS,
        ioctls: rawkvm_bindings::x86_64::IOCTLS,
        constants,
    })
}

/// The crate describes no other host architecture yet.
#[cfg(not(target_arch = "x86_64"))]
fn claims() -> Option<Claims> {
    None
}

#[test]
fn rust_definitions_match_the_kernel_header() {
    let Some(claims) = claims() else {
        println!("SKIPPED: this crate has no definitions for the host architecture");
        return;
    };
    let work = WorkDir::new();
    let Some(cc) = find_c_compiler(work.path()) else {
        println!("SKIPPED: C compiler or <linux/kvm.h> unavailable");
        println!(
            "SKIPPED: kernel header proof not run (set CC, or install gcc and linux-libc-dev)"
        );
        return;
    };
    let source = c_program(&claims);
    let output = compile_and_run(&cc, work.path(), &source);
    let host = HostReport::parse(&output);
    let proof = compare(&claims, &host);

    println!(
        "kernel header proof against <linux/kvm.h> of Linux {}",
        host.version
    );
    for item in &proof.not_in_host {
        println!("  not in host header, {item}");
    }
    println!("{}", proof.summary());
    assert!(
        proof.mismatches.is_empty(),
        "Rust and <linux/kvm.h> disagree:\n  {}",
        proof.mismatches.join("\n  ")
    );
}

/// A unique directory under the system temp dir, removed on drop.
struct WorkDir(PathBuf);

impl WorkDir {
    fn new() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| elapsed.as_nanos());
        let name = format!("rawkvm-bindings-proof-{}-{nanos}", std::process::id());
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir_all(&path).expect("create the proof's temp dir");
        Self(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `$CC`, else `cc`, else `gcc`: the first that compiles a program including `<linux/kvm.h>`.
fn find_c_compiler(dir: &Path) -> Option<String> {
    let probe = dir.join("probe.c");
    std::fs::write(
        &probe,
        "#include <linux/kvm.h>\nint main(void) { return 0; }\n",
    )
    .ok()?;
    let candidates: Vec<String> = match std::env::var("CC") {
        Ok(cc) if !cc.is_empty() => vec![cc],
        _ => vec!["cc".into(), "gcc".into()],
    };
    candidates.into_iter().find(|cc| {
        Command::new(cc)
            .arg("-o")
            .arg(dir.join("probe"))
            .arg(&probe)
            .output()
            .is_ok_and(|output| output.status.success())
    })
}

fn compile_and_run(cc: &str, dir: &Path, source: &str) -> String {
    let c_file = dir.join("kvm_abi_proof.c");
    let binary = dir.join("kvm_abi_proof");
    std::fs::write(&c_file, source).expect("write the proof's C program");
    let compiled = Command::new(cc)
        .args(["-std=gnu11", "-Wall", "-o"])
        .arg(&binary)
        .arg(&c_file)
        .output()
        .expect("run the C compiler");
    assert!(
        compiled.status.success(),
        "{cc} rejected the generated program (a name or `since` in the tables is wrong):\n{}",
        String::from_utf8_lossy(&compiled.stderr)
    );
    let ran = Command::new(&binary)
        .output()
        .expect("run the proof program");
    assert!(
        ran.status.success(),
        "the proof program failed: {}",
        ran.status
    );
    String::from_utf8(ran.stdout).expect("the proof program prints ASCII")
}

/// `#if` condition for "the host header is at least Linux `since`" ("6.8" -> 6, 8).
fn at_least(since: &str) -> String {
    let (major, minor) = since.split_once('.').expect("`since` is MAJOR.MINOR");
    format!("HOST_AT_LEAST({major}, {minor})")
}

/// The C program: one line of output per fact, `M ...` for what the host header lacks.
fn c_program(claims: &Claims) -> String {
    let mut c = String::from(
        "#include <stddef.h>\n#include <stdio.h>\n#include <linux/kvm.h>\n\
         #if defined(__has_include)\n#if __has_include(<linux/version.h>)\n\
         #include <linux/version.h>\n#endif\n#endif\n\
         #ifdef LINUX_VERSION_CODE\n\
         #define HOST_AT_LEAST(major, minor) \\\n\
         \t(LINUX_VERSION_CODE >= KERNEL_VERSION(major, minor, 0))\n\
         #else\n#define HOST_AT_LEAST(major, minor) 0\n#define LINUX_VERSION_CODE 0\n#endif\n\n\
         int main(void)\n{\n\
         \tprintf(\"V %d.%d\\n\", LINUX_VERSION_CODE >> 16, (LINUX_VERSION_CODE >> 8) & 0xff);\n",
    );
    for layout in claims.layouts {
        let ty = format!("struct {}", layout.name);
        let guard = layout.since.map(at_least);
        if let Some(guard) = &guard {
            let _ = writeln!(c, "#if {guard}");
        }
        let _ = writeln!(
            c,
            "\tprintf(\"S {} %zu %zu\\n\", sizeof({ty}), _Alignof({ty}));",
            layout.name
        );
        for field in layout.fields {
            let field_guard = field.since.filter(|_| guard.is_none()).map(at_least);
            if let Some(field_guard) = &field_guard {
                let _ = writeln!(c, "#if {field_guard}");
            }
            let _ = writeln!(
                c,
                "\tprintf(\"F {} {} %zu %zu\\n\", offsetof({ty}, {}), sizeof((({ty} *)0)->{}));",
                layout.name, field.name, field.name, field.name
            );
            if field_guard.is_some() {
                let _ = writeln!(
                    c,
                    "#else\n\tprintf(\"M F {} {}\\n\");\n#endif",
                    layout.name, field.name
                );
            }
        }
        if guard.is_some() {
            let _ = writeln!(c, "#else\n\tprintf(\"M S {}\\n\");\n#endif", layout.name);
        }
    }
    for ioctl in claims.ioctls {
        let name = ioctl.name;
        let _ = writeln!(
            c,
            "#ifdef {name}\n\tprintf(\"I {name} %u\\n\", (unsigned int)({name}));\n\
             #else\n\tprintf(\"M I {name}\\n\");\n#endif"
        );
    }
    for constant in &claims.constants {
        let name = constant.name;
        let _ = writeln!(
            c,
            "#ifdef {name}\n\tprintf(\"C {name} %lld\\n\", (long long)({name}));\n\
             #else\n\tprintf(\"M C {name}\\n\");\n#endif"
        );
    }
    c.push_str("\treturn 0;\n}\n");
    c
}

/// What the compiled program printed.
#[derive(Default)]
struct HostReport {
    version: String,
    /// `struct` -> (sizeof, _Alignof).
    structs: HashMap<String, (usize, usize)>,
    /// (`struct`, designator) -> (offsetof, sizeof).
    fields: HashMap<(String, String), (usize, usize)>,
    /// Request codes.
    ioctls: HashMap<String, u32>,
    /// Constants.
    constants: HashMap<String, i128>,
    /// `"S name"`, `"F struct field"`, `"I name"`, `"C name"` the header lacks.
    missing: HashSet<String>,
}

impl HostReport {
    fn parse(output: &str) -> Self {
        let mut report = Self::default();
        for line in output.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let number = |i: usize| -> i128 {
                words[i]
                    .parse()
                    .unwrap_or_else(|_| panic!("bad number in {line:?}"))
            };
            match words[..] {
                ["V", version] => report.version = version.to_owned(),
                ["S", name, ..] => {
                    report
                        .structs
                        .insert(name.to_owned(), (number(2) as usize, number(3) as usize));
                }
                ["F", name, field, ..] => {
                    let key = (name.to_owned(), field.to_owned());
                    report
                        .fields
                        .insert(key, (number(3) as usize, number(4) as usize));
                }
                ["I", name, _] => {
                    report.ioctls.insert(name.to_owned(), number(2) as u32);
                }
                ["C", name, _] => {
                    report.constants.insert(name.to_owned(), number(2));
                }
                ["M", ..] => {
                    report.missing.insert(words[1..].join(" "));
                }
                _ => panic!("unexpected line from the proof program: {line:?}"),
            }
        }
        report
    }
}

/// Counts of what was compared, and what could not be.
#[derive(Default)]
struct Proof {
    structs: usize,
    fields: usize,
    ioctls: usize,
    exit_reasons: usize,
    caps: usize,
    other_constants: usize,
    missing_structs: usize,
    missing_fields: usize,
    missing_ioctls: usize,
    missing_exit_reasons: usize,
    missing_caps: usize,
    missing_other: usize,
    not_in_host: Vec<String>,
    mismatches: Vec<String>,
}

impl Proof {
    fn summary(&self) -> String {
        format!(
            "kernel header proof: {} structs, {} fields, {} ioctls, {} exit reasons, {} caps, \
             {} other constants checked; not in host header: {} structs, {} fields (static \
             assertion only), {} ioctls, {} exit reasons, {} caps, {} other constants",
            self.structs,
            self.fields,
            self.ioctls,
            self.exit_reasons,
            self.caps,
            self.other_constants,
            self.missing_structs,
            self.missing_fields,
            self.missing_ioctls,
            self.missing_exit_reasons,
            self.missing_caps,
            self.missing_other,
        )
    }

    /// Compares one Rust number with the host's, under `what` ("kvm_run.io.port: ... offset").
    fn check(&mut self, what: &str, quantity: &str, rust: impl Into<i128>, c: impl Into<i128>) {
        let (rust, c) = (rust.into(), c.into());
        if rust != c {
            self.mismatches
                .push(format!("{what}: Rust {quantity}{rust}, C {quantity}{c}"));
        }
    }
}

fn compare(claims: &Claims, host: &HostReport) -> Proof {
    let mut proof = Proof::default();
    for layout in claims.layouts {
        let since =
            |version: Option<&str>| version.map_or(String::new(), |v| format!(" (Linux {v})"));
        if host.missing.contains(&format!("S {}", layout.name)) {
            proof.missing_structs += 1;
            proof.missing_fields += layout.fields.len();
            proof.not_in_host.push(format!(
                "checked by static assertion only: struct {}{}",
                layout.name,
                since(layout.since)
            ));
            continue;
        }
        let &(size, align) = host
            .structs
            .get(layout.name)
            .expect("every struct is printed");
        proof.check(layout.name, "size ", layout.size as u64, size as u64);
        proof.check(layout.name, "alignment ", layout.align as u64, align as u64);
        proof.structs += 1;
        for field in layout.fields {
            let what = format!("{}.{}", layout.name, field.name);
            if host
                .missing
                .contains(&format!("F {} {}", layout.name, field.name))
            {
                proof.missing_fields += 1;
                proof.not_in_host.push(format!(
                    "checked by static assertion only: {what}{}",
                    since(field.since)
                ));
                continue;
            }
            let key = (layout.name.to_owned(), field.name.to_owned());
            let &(offset, size) = host.fields.get(&key).expect("every field is printed");
            proof.check(&what, "offset ", field.offset as u64, offset as u64);
            proof.check(&what, "size ", field.size as u64, size as u64);
            proof.fields += 1;
        }
    }
    for ioctl in claims.ioctls {
        let Some(&request) = host.ioctls.get(ioctl.name) else {
            proof.missing_ioctls += 1;
            proof.not_in_host.push(format!(
                "request code checked only through its asserted argument struct: {}",
                ioctl.name
            ));
            continue;
        };
        // Linux request codes are 32 bits; `Request` is `c_ulong` or `c_int` depending on libc.
        let rust = ioctl.request as u32;
        if rust != request {
            proof
                .mismatches
                .push(format!("{}: Rust {rust:#x}, C {request:#x}", ioctl.name));
        }
        proof.ioctls += 1;
    }
    for constant in &claims.constants {
        let (checked, missing) = match constant.table {
            "EXIT_REASONS" => (&mut proof.exit_reasons, &mut proof.missing_exit_reasons),
            "CAPABILITIES" => (&mut proof.caps, &mut proof.missing_caps),
            _ => (&mut proof.other_constants, &mut proof.missing_other),
        };
        let Some(&value) = host.constants.get(constant.name) else {
            *missing += 1;
            proof.not_in_host.push(format!(
                "value unchecked: {} ({})",
                constant.name, constant.table
            ));
            continue;
        };
        *checked += 1;
        let what = format!("{} {}", constant.table, constant.name);
        proof.check(&what, "", constant.value, value);
    }
    proof
}
