//! Finding `unsafe` in Rust source text without a parser: comments and literals are blanked,
//! then every `unsafe` keyword left is a site, with the code it covers and the SAFETY text above.

/// What kind of `unsafe` a site is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// `unsafe { ... }`.
    Block,
    /// `unsafe impl`.
    Impl,
    /// `unsafe fn`.
    Fn,
    /// `unsafe extern` block.
    Extern,
}

impl Kind {
    /// The word the ledger uses.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Block => "block",
            Kind::Impl => "impl",
            Kind::Fn => "fn",
            Kind::Extern => "extern",
        }
    }
}

/// One `unsafe` in the sources.
pub struct Site {
    /// Path from the repository root.
    pub file: String,
    /// 1-based line of the keyword.
    pub line: usize,
    /// Block, impl, fn or extern block.
    pub kind: Kind,
    /// The block's body or the item's signature, on one line.
    pub operation: String,
    /// The SAFETY comment (or `# Safety` section of an unsafe fn), if any.
    pub safety: Option<String>,
}

/// `text` with every comment and string or char literal replaced by spaces (newlines kept), so
/// that byte offsets and line numbers stay those of the original.
pub fn blank_comments_and_strings(text: &str) -> String {
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
pub fn find_sites(file: &str, text: &str) -> Vec<Site> {
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
