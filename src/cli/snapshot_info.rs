//! `rawkvm snapshot-info PATH [--json]`: the file's header and every section (offset, kind,
//! instance, length, CRC-32, decoded summary), after checking the whole file as `resume`
//! would. `--json`: `{"path","format_version","arch","rawkvm_version","backend","page_size",
//! "file_size","sections":[{"offset","kind","number","instance","length","crc32","summary"}]}`.

use std::path::PathBuf;

use rawkvm::exit::text::{push_dec, push_list};
use rawkvm::snapshot::decode::read_sections;
use rawkvm::snapshot::format::{SectionKind, Sections};
use rawkvm::snapshot::{SnapshotError, decode, info};
use rawkvm::trace::json::{push_key, push_string};

use super::args::{Arg, Args};
use super::{print_out, unexpected};
use crate::cli::status::CliError;

/// `rawkvm snapshot-info`.
pub fn command(mut args: Args) -> Result<i32, CliError> {
    let (mut path, mut json) = (None, false);
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Positional(word) if path.is_none() => path = Some(PathBuf::from(word)),
            Arg::Flag(flag, None) if flag == "--json" => json = true,
            other => return Err(unexpected("snapshot-info", other)),
        }
    }
    let path =
        path.ok_or_else(|| CliError::Usage("snapshot-info: give the snapshot's PATH".into()))?;
    let bytes = std::fs::read(&path).map_err(|error| SnapshotError::Read {
        path: path.clone(),
        error,
    })?;
    // Everything `resume` would refuse is refused here too, with the same message.
    decode::decode(&bytes)?;
    let sections = read_sections(&bytes)?;
    let rows = rows(&sections);
    let text = if json {
        to_json(&path, &sections, &rows, bytes.len())
    } else {
        to_text(&path, &sections, &rows, bytes.len())
    };
    print_out(&text)
}

struct Row {
    offset: u64,
    kind: &'static str,
    number: u32,
    instance: String,
    length: u64,
    crc32: u32,
    summary: String,
}

fn rows(sections: &Sections<'_>) -> Vec<Row> {
    sections
        .sections
        .iter()
        .map(|(header, payload)| {
            let kind = SectionKind::from_number(header.kind);
            let instance = match kind {
                Some(SectionKind::Memory) => format!("slot {}", header.instance),
                Some(SectionKind::Irqchip) => format!("chip {}", header.instance),
                Some(k) if k.per_vcpu() => format!("vCPU {}", header.instance),
                _ => "-".to_string(),
            };
            Row {
                offset: header.offset,
                kind: kind.map_or("unknown", |k| k.info().name),
                number: header.kind,
                instance,
                length: header.length,
                crc32: header.checksum,
                summary: info::summary(header, payload, sections.origin.page_size),
            }
        })
        .collect()
}

fn to_text(path: &std::path::Path, sections: &Sections<'_>, rows: &[Row], size: usize) -> String {
    let origin = &sections.origin;
    let mut out = format!(
        "snapshot {}: format {}, {}, rawkvm {}, backend {}, page size {}, {} sections, {size} \
         bytes\n",
        path.display(),
        sections.version,
        origin.arch,
        origin.rawkvm_version,
        origin.backend,
        origin.page_size,
        rows.len()
    );
    out.push_str(&format!(
        "  {:>10}  {:<24} {:<8} {:>10}  {:<10}  summary\n",
        "offset", "kind", "instance", "length", "crc32"
    ));
    for row in rows {
        out.push_str(&format!(
            "  {:>10}  {:<24} {:<8} {:>10}  {:#010x}  {}\n",
            row.offset, row.kind, row.instance, row.length, row.crc32, row.summary
        ));
    }
    out
}

fn to_json(path: &std::path::Path, sections: &Sections<'_>, rows: &[Row], size: usize) -> String {
    let origin = &sections.origin;
    let mut out = Vec::new();
    out.extend_from_slice(b"{\"path\":");
    push_string(&mut out, &path.display().to_string());
    push_key(&mut out, "format_version");
    push_dec(&mut out, u64::from(sections.version));
    for (key, value) in [
        ("arch", &origin.arch),
        ("rawkvm_version", &origin.rawkvm_version),
        ("backend", &origin.backend),
    ] {
        push_key(&mut out, key);
        push_string(&mut out, value);
    }
    push_key(&mut out, "page_size");
    push_dec(&mut out, u64::from(origin.page_size));
    push_key(&mut out, "file_size");
    push_dec(&mut out, size as u64);
    push_key(&mut out, "sections");
    push_list(&mut out, rows, |out, row| {
        out.extend_from_slice(b"{\"offset\":");
        push_dec(out, row.offset);
        push_key(out, "kind");
        push_string(out, row.kind);
        push_key(out, "number");
        push_dec(out, u64::from(row.number));
        push_key(out, "instance");
        push_string(out, &row.instance);
        push_key(out, "length");
        push_dec(out, row.length);
        push_key(out, "crc32");
        push_dec(out, u64::from(row.crc32));
        push_key(out, "summary");
        push_string(out, &row.summary);
        out.push(b'}');
    });
    out.extend_from_slice(b"}\n");
    String::from_utf8_lossy(&out).into_owned()
}
