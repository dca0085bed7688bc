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
//! 1. library code (`src/`, `bindings/src/`) holds `unsafe` outside the four files of
//!    `src/sys/` that may (`ioctl.rs`, `memory.rs`, `run_page.rs`, `signal.rs`), or any other
//!    library file says `allow(unsafe_code)`; test code (`tests/`, `bindings/tests/`, benches,
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

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The library files allowed to hold `unsafe`.
const UNSAFE_FILES: [&str; 4] = [
    "src/sys/ioctl.rs",
    "src/sys/memory.rs",
    "src/sys/run_page.rs",
    "src/sys/signal.rs",
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

/// What kind of `unsafe` a site is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Block,
    Impl,
    Fn,
    Extern,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Impl => "impl",
            Kind::Fn => "fn",
            Kind::Extern => "extern",
        }
    }
}

/// One `unsafe` in the sources.
struct Site {
    file: String,
    line: usize,
    kind: Kind,
    operation: String,
    safety: Option<String>,
}

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
                    "{file}: allow(unsafe_code) outside the four src/sys files"
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

/// `text` with every comment and string or char literal replaced by spaces (newlines kept), so
/// that byte offsets and line numbers stay those of the original.
fn blank_comments_and_strings(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = bytes.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for byte in &mut out[from..to.min(bytes.len())] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    };
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"//") {
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |n| i + n);
            blank(&mut out, i, end);
            i = end;
        } else if rest.starts_with(b"/*") {
            let (mut depth, mut j) = (0usize, i);
            while j < bytes.len() {
                if bytes[j..].starts_with(b"/*") {
                    depth += 1;
                    j += 2;
                } else if bytes[j..].starts_with(b"*/") {
                    depth -= 1;
                    j += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    j += 1;
                }
            }
            blank(&mut out, i, j);
            i = j;
        } else if let Some(end) = raw_string_end(bytes, i) {
            blank(&mut out, i, end);
            i = end;
        } else if bytes[i] == b'"' {
            let mut j = i + 1;
            while j < bytes.len() && bytes[j] != b'"' {
                j += if bytes[j] == b'\\' { 2 } else { 1 };
            }
            blank(&mut out, i, j + 1);
            i = j + 1;
        } else if bytes[i] == b'\'' {
            // A char literal ('a', '\n', '\u{..}') or a lifetime ('a): only the first is text.
            let end = if rest.get(1) == Some(&b'\\') {
                rest[2..]
                    .iter()
                    .position(|&b| b == b'\'')
                    .map(|n| i + n + 3)
            } else {
                let width = text[i + 1..].chars().next().map_or(1, char::len_utf8);
                (rest.get(1 + width) == Some(&b'\'')).then_some(i + width + 2)
            };
            match end {
                Some(end) => {
                    blank(&mut out, i, end);
                    i = end;
                }
                None => i += 1,
            }
        } else {
            i += 1;
        }
    }
    String::from_utf8(out).expect("blanking keeps UTF-8 (multi-byte text is all blanked)")
}

/// If a raw string (`r"..."`, `r#"..."#`, `br"..."`) starts at `i`, where it ends.
fn raw_string_end(bytes: &[u8], i: usize) -> Option<usize> {
    let after_prefix = match bytes.get(i..i + 2)? {
        [b'r', b'"' | b'#'] => i + 1,
        [b'b', b'r'] => i + 2,
        _ => return None,
    };
    if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
        return None;
    }
    let hashes = bytes[after_prefix..]
        .iter()
        .take_while(|&&b| b == b'#')
        .count();
    if bytes.get(after_prefix + hashes) != Some(&b'"') {
        return None;
    }
    let close: Vec<u8> = std::iter::once(b'"')
        .chain(std::iter::repeat_n(b'#', hashes))
        .collect();
    let body = after_prefix + hashes + 1;
    bytes[body..]
        .windows(close.len())
        .position(|window| window == close.as_slice())
        .map(|n| body + n + close.len())
}

/// Every `unsafe` keyword in the code of `text`.
fn find_sites(file: &str, text: &str) -> Vec<Site> {
    let code = blank_comments_and_strings(text);
    let lines: Vec<&str> = text.lines().collect();
    let is_ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut sites = Vec::new();
    for (at, _) in code.match_indices("unsafe") {
        let bytes = code.as_bytes();
        let before = at.checked_sub(1).map(|i| bytes[i]);
        let after = bytes.get(at + "unsafe".len()).copied();
        if before.is_some_and(is_ident) || after.is_some_and(is_ident) {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let next = code[at + "unsafe".len()..].trim_start();
        let kind = if next.starts_with('{') {
            Kind::Block
        } else if next.starts_with("impl") {
            Kind::Impl
        } else if next.starts_with("extern") && !next.contains_before("fn", '{') {
            Kind::Extern
        } else {
            Kind::Fn
        };
        let operation = operation(&code, text, at, kind);
        let safety = match kind {
            Kind::Fn => safety_section(&lines, line),
            _ => safety_comment(&lines, line),
        };
        sites.push(Site {
            file: file.to_owned(),
            line,
            kind,
            operation,
            safety,
        });
    }
    sites
}

trait ContainsBefore {
    fn contains_before(&self, needle: &str, stop: char) -> bool;
}

impl ContainsBefore for str {
    /// Whether `needle` occurs before the first `stop`.
    fn contains_before(&self, needle: &str, stop: char) -> bool {
        let end = self.find(stop).unwrap_or(self.len());
        self[..end].contains(needle)
    }
}

/// What the site does: the body of a block, or the signature of an impl, fn or extern block,
/// on one line.
fn operation(code: &str, text: &str, at: usize, kind: Kind) -> String {
    let open = code[at..].find('{').map(|n| at + n);
    let raw = match (kind, open) {
        (Kind::Block, Some(open)) => {
            let mut depth = 0;
            let mut close = code.len();
            for (n, c) in code[open..].char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            close = open + n;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            &text[open + 1..close]
        }
        _ => {
            let start = text[..at].rfind('\n').map_or(0, |n| n + 1);
            let end = code[at..].find(['{', ';']).map_or(code.len(), |n| at + n);
            &text[start..end]
        }
    };
    let one_line = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    let one_line = one_line.trim_end_matches(';').trim().to_owned();
    if one_line.chars().count() > 110 {
        format!("{}...", one_line.chars().take(107).collect::<String>())
    } else {
        one_line
    }
}

/// The `// SAFETY:` comment right above line `line` (1-based), joined into one paragraph.
fn safety_comment(lines: &[&str], line: usize) -> Option<String> {
    let mut group = Vec::new();
    let mut i = line - 1;
    while i > 0 {
        let above = lines[i - 1].trim();
        if !above.starts_with("//") || above.starts_with("///") || above.starts_with("//!") {
            break;
        }
        group.push(above.trim_start_matches('/').trim());
        i -= 1;
    }
    group.reverse();
    let joined = group.join(" ");
    joined
        .find("SAFETY:")
        .map(|n| joined[n + "SAFETY:".len()..].trim().to_owned())
}

/// The `# Safety` section of the doc comment above line `line` (attributes skipped).
fn safety_section(lines: &[&str], line: usize) -> Option<String> {
    let mut docs = Vec::new();
    let mut i = line - 1;
    while i > 0 {
        let above = lines[i - 1].trim();
        if above.starts_with("#[") {
            i -= 1;
            continue;
        }
        let Some(doc) = above.strip_prefix("///") else {
            break;
        };
        docs.push(doc.trim());
        i -= 1;
    }
    docs.reverse();
    let start = docs.iter().position(|doc| *doc == "# Safety")?;
    let section: Vec<&str> = docs[start + 1..]
        .iter()
        .take_while(|doc| !doc.starts_with('#'))
        .copied()
        .collect();
    Some(section.join(" ").trim().to_owned())
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
    out.push_str(&format!(
        "# The unsafe ledger\n\n\
         Every `unsafe` block, impl, fn and extern block in the repository, generated from the \
         sources by\n`tests/unsafe_ledger.rs`; do not edit by hand. After changing any `unsafe`, \
         regenerate it with\n\n```text\n{REGENERATE}\n```\n\n\
         and commit it: the test fails while this file and the code disagree. It also fails if \
         library code\nholds `unsafe` outside `src/sys/{{ioctl,memory,run_page,signal}}.rs`, if a \
         block or impl has no\n`// SAFETY:` comment (or a library `unsafe fn` no `# Safety` \
         section), or if a block's SAFETY text\nnames none of the guarantors: the kernel (`kernel`, `api.rst`), the \
         C library (`POSIX`, `C library`), the\n`caller`, the type (`constructor`, `owns`, \
         `Field::at`), a check (`checked`, `proved`), or the\nborrow rules (`&mut`, \
         `exclusive`).\n\n"
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
