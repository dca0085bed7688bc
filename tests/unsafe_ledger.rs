//! The unsafe ledger: `UNSAFE.md` lists every `unsafe` block, impl, fn and extern block of the
//! repository, and this test keeps it true.
//!
//! It reads every `.rs` file of the repository (not `target/`), finds the `unsafe` keyword in
//! code (comments and string literals are blanked first, so prose about unsafe code does not
//! count), renders the ledger, and compares it with `UNSAFE.md`. Regenerate with
//!
//! ```text
//! UPDATE_UNSAFE_LEDGER=1 cargo test --test unsafe_ledger
//! ```
//!
//! It also fails when:
//!
//! 1. library code (`src/`, `bindings/src/`) holds `unsafe` outside the files of `src/sys/`
//!    that may (`ioctl.rs`, `ioctl/flex.rs` and `ioctl/one_reg.rs`, `memory.rs`, `run_page.rs`,
//!    `state.rs`, `thread.rs`), or any other library file says `allow(unsafe_code)`; test code (`tests/`, `bindings/tests/`, benches,
//!    fuzz targets, examples, build scripts) is listed separately and may hold `unsafe`;
//! 2. an `unsafe` block or impl has no `// SAFETY:` comment right above the line that holds it,
//!    or a library `unsafe fn` has no `# Safety` section in its doc comment (whose guarantor is
//!    by definition the caller; test code's `unsafe fn`s implement traits such as `GlobalAlloc`
//!    whose contract the trait states, and are listed without one);
//! 3. a block's or impl's SAFETY text does not say who guarantees the invariant. The heuristic: it must name one
//!    of the guarantors this project accepts (see [`GUARANTORS`]): the kernel (`kernel`,
//!    `api.rst`), the C library (`POSIX`, `C library`), the caller (`caller`), the type or its
//!    constructor (`constructor`, `owns`, `Field::at`), a check made in the code (`checked`,
//!    `proved`), or the borrow rules (`&mut`, `exclusive`);
//! 4. the crate root stops denying `unsafe_code` or the workspace stops denying
//!    `unsafe_op_in_unsafe_fn` and `clippy::undocumented_unsafe_blocks`.

mod unsafe_scan;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use unsafe_scan::{Kind, Site, blank_comments_and_strings, find_sites};

/// The library files allowed to hold `unsafe`.
const UNSAFE_FILES: [&str; 8] = [
    "src/sys/clmul.rs",
    "src/sys/ioctl.rs",
    "src/sys/ioctl/flex.rs",
    "src/sys/ioctl/one_reg.rs",
    "src/sys/memory.rs",
    "src/sys/run_page.rs",
    "src/sys/state.rs",
    "src/sys/thread.rs",
];

/// Words of which a SAFETY text must hold at least one: who or what guarantees the invariant.
const GUARANTORS: &[&str] = &[
    "kernel",
    "api.rst",
    "POSIX",
    "C library",
    "caller",
    "constructor",
    "owns",
    "Field::at",
    "checked",
    "proved",
    "&mut",
    "exclusive",
];

const LEDGER: &str = "UNSAFE.md";
const REGENERATE: &str = "UPDATE_UNSAFE_LEDGER=1 cargo test --test unsafe_ledger";

#[test]
fn the_unsafe_ledger_is_true() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    collect_rust_files(root, root, &mut files);
    files.sort();
    let mut sites = Vec::new();
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(root.join(file)).expect("read a source file");
        let found = find_sites(file, &text);
        let library = is_library(file);
        if library && !UNSAFE_FILES.contains(&file.as_str()) {
            for site in &found {
                problems.push(format!(
                    "{file}:{}: `unsafe` outside src/sys/ (move it into one of {UNSAFE_FILES:?})",
                    site.line
                ));
            }
            if blank_comments_and_strings(&text).contains("allow(unsafe_code)") {
                problems.push(format!(
                    "{file}: allow(unsafe_code) outside the src/sys files allowed"
                ));
            }
        }
        for site in &found {
            check_safety(site, &mut problems);
        }
        sites.extend(found);
    }
    check_lints(root, &mut problems);

    let rendered = render(&sites);
    let ledger_path = root.join(LEDGER);
    if std::env::var_os("UPDATE_UNSAFE_LEDGER").is_some() {
        std::fs::write(&ledger_path, &rendered).expect("write UNSAFE.md");
        println!("rewrote {LEDGER}: {} unsafe sites", sites.len());
    } else {
        let on_disk = std::fs::read_to_string(&ledger_path).unwrap_or_default();
        if on_disk != rendered {
            problems.push(format!(
                "{LEDGER} does not match the sources (first difference at line {}); \
                 regenerate it with `{REGENERATE}` and commit it",
                first_difference(&on_disk, &rendered)
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "unsafe ledger:\n  {}",
        problems.join("\n  ")
    );
}

/// Library code, as opposed to tests, benches, fuzz targets, examples and build scripts.
fn is_library(file: &str) -> bool {
    file.starts_with("src/") || file.starts_with("bindings/src/")
}

fn collect_rust_files(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target") {
                collect_rust_files(root, &path, out);
            }
        } else if name.ends_with(".rs") {
            let relative: PathBuf = path.strip_prefix(root).expect("under the root").into();
            out.push(relative.to_string_lossy().replace('\\', "/"));
        }
    }
}

fn check_safety(site: &Site, problems: &mut Vec<String>) {
    let place = format!("{}:{}", site.file, site.line);
    match (&site.safety, site.kind) {
        (None, Kind::Fn) if is_library(&site.file) => problems.push(format!(
            "{place}: unsafe fn without a `# Safety` doc section"
        )),
        (_, Kind::Fn) => {}
        (None, _) => problems.push(format!(
            "{place}: unsafe {} without a `// SAFETY:` comment right above it",
            site.kind.label()
        )),
        (Some(text), _) if !GUARANTORS.iter().any(|word| text.contains(word)) => {
            problems.push(format!(
                "{place}: the SAFETY text does not say who guarantees the invariant (name one \
                 of {GUARANTORS:?}): {text:?}"
            ))
        }
        _ => {}
    }
}

fn check_lints(root: &Path, problems: &mut Vec<String>) {
    let lib = std::fs::read_to_string(root.join("src/lib.rs")).expect("read src/lib.rs");
    if !lib.contains("#![deny(unsafe_code)]") {
        problems.push("src/lib.rs: the crate root must say #![deny(unsafe_code)]".into());
    }
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("read Cargo.toml");
    for lint in [
        "unsafe_code = \"deny\"",
        "unsafe_op_in_unsafe_fn = \"deny\"",
        "undocumented_unsafe_blocks = \"deny\"",
    ] {
        if !manifest.contains(lint) {
            problems.push(format!("Cargo.toml: [workspace.lints] must keep `{lint}`"));
        }
    }
}

fn first_difference(a: &str, b: &str) -> usize {
    a.lines()
        .zip(b.lines())
        .position(|(x, y)| x != y)
        .unwrap_or_else(|| a.lines().count().min(b.lines().count()))
        + 1
}

/// The ledger as Markdown: a summary table per file, then every site.
fn render(sites: &[Site]) -> String {
    let mut out = String::new();
    let allowed: Vec<String> = UNSAFE_FILES.iter().map(|f| format!("`{f}`")).collect();
    out.push_str(&format!(
        "# The unsafe ledger\n\n\
         Every `unsafe` block, impl, fn and extern block in the repository, generated from the \
         sources by\n`tests/unsafe_ledger.rs`; do not edit by hand. After changing any `unsafe`, \
         regenerate it with\n\n```text\n{REGENERATE}\n```\n\n\
         and commit it: the test fails while this file and the code disagree. It also fails if \
         library code\nholds `unsafe` outside {},\nif a \
         block or impl has no `// SAFETY:` comment (or a library `unsafe fn` no `# Safety` \
         section), or if a block's\nSAFETY text names none of the guarantors: the kernel (`kernel`, `api.rst`), the \
         C library (`POSIX`, `C library`), the\n`caller`, the type (`constructor`, `owns`, \
         `Field::at`), a check (`checked`, `proved`), or the\nborrow rules (`&mut`, \
         `exclusive`).\n\n",
        allowed.join(", ")
    ));
    for (title, library) in [
        ("Library code", true),
        ("Test code (not part of the library)", false),
    ] {
        let part: Vec<&Site> = sites
            .iter()
            .filter(|s| is_library(&s.file) == library)
            .collect();
        let _ = writeln!(out, "## {title}\n");
        let _ = writeln!(
            out,
            "| file | blocks | impls | fns | extern | total |\n|---|---|---|---|---|---|"
        );
        let mut files: Vec<&str> = part.iter().map(|s| s.file.as_str()).collect();
        files.dedup();
        let count = |file: Option<&str>, kind: Option<Kind>| {
            part.iter()
                .filter(|s| file.is_none_or(|f| s.file == f) && kind.is_none_or(|k| s.kind == k))
                .count()
        };
        for file in files.iter().map(|f| Some(*f)).chain([None]) {
            let name = file.map_or("**total**".to_owned(), |f| format!("`{f}`"));
            let _ = writeln!(
                out,
                "| {name} | {} | {} | {} | {} | {} |",
                count(file, Some(Kind::Block)),
                count(file, Some(Kind::Impl)),
                count(file, Some(Kind::Fn)),
                count(file, Some(Kind::Extern)),
                count(file, None),
            );
        }
        out.push('\n');
        for file in &files {
            let _ = writeln!(
                out,
                "### `{file}`\n\n| line | kind | operation | SAFETY |\n|---|---|---|---|"
            );
            for site in part.iter().filter(|s| s.file == *file) {
                let _ = writeln!(
                    out,
                    "| {} | {} | `{}` | {} |",
                    site.line,
                    site.kind.label(),
                    escape(&site.operation).replace('`', "'"),
                    escape(site.safety.as_deref().unwrap_or("(missing)")),
                );
            }
            out.push('\n');
        }
    }
    let _ = writeln!(out, "Total: {} unsafe sites.", sites.len());
    out
}

fn escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// The scanner is not vacuous: it skips prose and literals, finds every kind of site, reads the
/// SAFETY text, and flags a missing comment and a comment that names no guarantor.
#[test]
fn the_scanner_finds_code_and_ignores_prose() {
    const SAMPLE: &str = r##"// unsafe in a line comment
/* unsafe { in a block comment } */
fn a() { let s = "unsafe { in a string }"; let r = r#"unsafe"#; let c = '"'; }
fn b<'a>(x: &'a u8) -> u8 {
    // SAFETY: the caller passes a live reference.
    unsafe { *(x as *const u8) }
}
fn c() {
    unsafe { work() }
}
/// Does things.
///
/// # Safety
/// The caller keeps `p` valid.
pub unsafe fn d(p: *const u8) {}
// SAFETY: nobody in particular.
unsafe impl Send for X {}
"##;
    let sites = find_sites("src/sample.rs", SAMPLE);
    let summary: Vec<(usize, Kind, &str, Option<&str>)> = sites
        .iter()
        .map(|s| (s.line, s.kind, s.operation.as_str(), s.safety.as_deref()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                6,
                Kind::Block,
                "*(x as *const u8)",
                Some("the caller passes a live reference.")
            ),
            (9, Kind::Block, "work()", None),
            (
                15,
                Kind::Fn,
                "pub unsafe fn d(p: *const u8)",
                Some("The caller keeps `p` valid.")
            ),
            (
                17,
                Kind::Impl,
                "unsafe impl Send for X",
                Some("nobody in particular.")
            ),
        ]
    );
    let mut problems = Vec::new();
    for site in &sites {
        check_safety(site, &mut problems);
    }
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].starts_with("src/sample.rs:9: unsafe block without a `// SAFETY:`"));
    assert!(problems[1].starts_with("src/sample.rs:17: the SAFETY text does not say who"));
}
