//! The layering rule of `docs/ARCHITECTURE.md`, checked from the code's own imports: every
//! `crate::` path in a library file (grouped `use crate::{a, b::c}` included; comments, doc
//! links and `#[cfg(test)]` modules excluded) may name only its own module or one in a lower
//! layer. A new upward import, and so any circle, fails this test with the file, the line and
//! the two layers.
//!
//! Run it alone: `cargo test --test layering`; `LAYERING_REPORT=1` prints every edge.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// The library's modules, lowest first. A module may import from its own row and the rows
/// above it. `kvm` is split into its fd levels: guest memory, then vCPU, VM, system.
const LAYERS: &[&[&str]] = &[
    &["sys"],
    &["units"],
    &["exit"],
    &["error"],
    &["kvm::memory"],
    &["kvm::vcpu"],
    &["kvm::vm"],
    &["kvm::system", "kvm"],
    &["arch"],
    &["devices"],
    &["run_loop"],
    &["trace"],
    &["machine"],
    &["debug", "snapshot"],
    &["fuzzing"],
];

/// The layer of a module path (`kvm::vcpu`, `devices::bus`, ...): its longest prefix in
/// [`LAYERS`].
fn layer_of(module: &str) -> Option<usize> {
    let parts: Vec<&str> = module.split("::").collect();
    (1..=parts.len()).rev().find_map(|len| {
        let prefix = parts[..len].join("::");
        LAYERS.iter().position(|row| row.contains(&prefix.as_str()))
    })
}

/// `src/kvm/vcpu.rs` → `kvm::vcpu`; `src/devices/mod.rs` → `devices`.
fn module_of(src: &Path, file: &Path) -> String {
    let relative = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = relative
        .with_extension("")
        .iter()
        .map(|part| part.to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|last| last == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn library_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .expect("src is readable")
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            // The CLI is the binary's, above every library module.
            if path.file_name().is_some_and(|name| name != "cli") {
                library_files(&path, out);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs")
            && path.file_name().is_some_and(|name| {
                !["lib.rs", "main.rs", "tests.rs"].contains(&name.to_str().unwrap_or(""))
            })
        {
            out.push(path);
        }
    }
}

/// The code of `text` without comments and without `#[cfg(test)] mod ... { }` blocks.
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    let mut skipping_test_module = false;
    let mut depth = 0i32;
    let mut pending_cfg_test = false;
    for (number, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("").to_string();
        if skipping_test_module {
            depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            if depth <= 0 {
                skipping_test_module = false;
            }
            continue;
        }
        if code.trim() == "#[cfg(test)]" {
            pending_cfg_test = true;
            continue;
        }
        if pending_cfg_test && code.trim_start().starts_with("mod ") && code.contains('{') {
            skipping_test_module = true;
            depth = code.matches('{').count() as i32 - code.matches('}').count() as i32;
            pending_cfg_test = false;
            continue;
        }
        pending_cfg_test = false;
        lines.push((number + 1, code));
    }
    lines
}

/// Every module path a piece of code names through `crate::`, expanding `crate::{a, b::c}`.
fn crate_paths(code: &str) -> Vec<String> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = matching_brace(group);
            for item in split_top_level(&group[..end]) {
                paths.push(path_head(item.trim()));
            }
            rest = &group[end..];
        } else {
            paths.push(path_head(rest));
        }
    }
    paths.retain(|path| !path.is_empty() && path != "self");
    paths
}

fn matching_brace(text: &str) -> usize {
    let mut depth = 0;
    for (at, ch) in text.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' if depth == 0 => return at,
            '}' => depth -= 1,
            _ => {}
        }
    }
    text.len()
}

fn split_top_level(text: &str) -> Vec<&str> {
    let (mut items, mut depth, mut start) = (Vec::new(), 0, 0);
    for (at, ch) in text.char_indices() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                items.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    items.push(&text[start..]);
    items
}

/// `kvm::vcpu::Vcpu` from `kvm::vcpu::Vcpu, ...`; `devices::bus` from `devices::bus::{...}`.
fn path_head(text: &str) -> String {
    text.chars()
        .take_while(|ch| ch.is_alphanumeric() || *ch == '_' || *ch == ':')
        .collect::<String>()
        .trim_end_matches(':')
        .to_string()
}

#[test]
fn library_modules_import_only_downward() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    library_files(&src, &mut files);
    let mut upward = Vec::new();
    let mut edges = BTreeSet::new();
    for file in &files {
        let module = module_of(&src, file);
        let Some(own) = layer_of(&module) else {
            upward.push(format!("{module}: not in LAYERS; give it a layer"));
            continue;
        };
        let text = fs::read_to_string(file).expect("readable");
        for (line, code) in code_lines(&text) {
            for path in crate_paths(&code) {
                let Some(target) = layer_of(&path) else {
                    continue; // a root re-export such as crate::Error, named by its real path elsewhere
                };
                let target_module = LAYERS[target]
                    .iter()
                    .find(|name| path == **name || path.starts_with(&format!("{name}::")))
                    .copied()
                    .unwrap_or("?");
                edges.insert(format!("{module} -> {target_module}"));
                if target > own {
                    upward.push(format!(
                        "{}:{line}: {module} (layer {own}) imports crate::{path} (layer {target})",
                        file.strip_prefix(&src).unwrap_or(file).display()
                    ));
                }
            }
        }
    }
    if std::env::var_os("LAYERING_REPORT").is_some() {
        for edge in &edges {
            eprintln!("{edge}");
        }
    }
    eprintln!(
        "layering: {} library files, {} module edges, {} upward",
        files.len(),
        edges.len(),
        upward.len()
    );
    assert!(upward.is_empty(), "upward imports:\n{}", upward.join("\n"));
}

#[test]
fn grouped_imports_are_expanded() {
    assert_eq!(
        crate_paths("use crate::{error::Error, kvm::vcpu::{Vcpu, StopHandle}, exit};"),
        ["error::Error", "kvm::vcpu::", "exit"].map(|p| p.trim_end_matches(':').to_string())
    );
    assert_eq!(layer_of("kvm::vcpu::Vcpu"), Some(5));
    assert_eq!(layer_of("devices::bus::Claim"), Some(9));
}
