//! Reading the numbers back from the assembly, and comparing them with the Rust claims.

use std::collections::{HashMap, HashSet};

use super::claims::Claims;
use super::program::is_bitfield;

/// What the compiled file says, keyed by the text before each value.
#[derive(Default)]
pub struct HeaderReport {
    /// `LINUX_VERSION_CODE` as "MAJOR.MINOR".
    pub version: String,
    /// "S kvm_run size" -> 2352, "F kvm_run io.port offset" -> 34, "I KVM_RUN" -> ...
    values: HashMap<String, i128>,
    /// "S name", "F struct field", "I name", "C name" the header lacks.
    missing: HashSet<String>,
}

impl HeaderReport {
    /// Collects every `.ascii "->..."` directive of `assembly`.
    pub fn parse(assembly: &str) -> Self {
        let mut report = Self::default();
        for line in assembly.lines() {
            let Some(start) = line.find("\"->") else {
                continue;
            };
            let text = &line[start + 3..];
            let text = &text[..text.rfind('"').expect("a closing quote")];
            if let Some(missing) = text.strip_prefix("M ") {
                report.missing.insert(missing.to_owned());
                continue;
            }
            let (key, value) = text.rsplit_once(' ').expect("KEY VALUE");
            // x86 prints immediates as `$123`, some targets as `#123`.
            let value: i128 = value
                .trim_start_matches(['$', '#'])
                .parse()
                .unwrap_or_else(|_| panic!("bad number in {text:?}"));
            if key == "V" {
                report.version = format!("{}.{}", value >> 16, (value >> 8) & 0xff);
            } else {
                report.values.insert(key.to_owned(), value);
            }
        }
        report
    }

    fn get(&self, key: &str) -> Option<i128> {
        self.values.get(key).copied()
    }
}

/// Counts of what was compared, and what could not be.
#[derive(Default)]
pub struct Proof {
    /// The architecture.
    pub arch: &'static str,
    /// The header's Linux version.
    pub version: String,
    /// Structs whose size and alignment were compared.
    pub structs: usize,
    /// Members whose offset and size were compared.
    pub fields: usize,
    /// Request codes compared.
    pub ioctls: usize,
    /// Exit reasons compared.
    pub exit_reasons: usize,
    /// Capabilities compared.
    pub caps: usize,
    /// Other constants, and values built by C macros, compared.
    pub other_constants: usize,
    /// Bitfield members (no `offsetof` in C; covered by their neighbours).
    pub bitfields: usize,
    /// Structs the header lacks.
    pub missing_structs: usize,
    /// Members the header lacks.
    pub missing_fields: usize,
    /// Requests the header lacks.
    pub missing_ioctls: usize,
    /// Constants the header lacks.
    pub missing_constants: usize,
    /// What was not checked, and why.
    pub not_in_header: Vec<String>,
    /// Disagreements, each naming the struct and field or the constant.
    pub mismatches: Vec<String>,
}

impl Proof {
    /// Every constant compared, whatever its table.
    pub fn constants(&self) -> usize {
        self.exit_reasons + self.caps + self.other_constants
    }

    /// One line: what was checked and what the header lacked.
    pub fn summary(&self) -> String {
        format!(
            "{} header proof (Linux {} headers): {} structs, {} fields, {} ioctls, {} exit \
             reasons, {} caps, {} other constants checked; not in header: {} structs, {} fields \
             (static assertion only), {} ioctls, {} constants; {} bitfields checked through their \
             neighbours",
            self.arch,
            self.version,
            self.structs,
            self.fields,
            self.ioctls,
            self.exit_reasons,
            self.caps,
            self.other_constants,
            self.missing_structs,
            self.missing_fields,
            self.missing_ioctls,
            self.missing_constants,
            self.bitfields,
        )
    }

    /// Compares one Rust number with the header's, under `what` ("kvm_run.io.port").
    fn check(&mut self, what: &str, quantity: &str, rust: i128, c: i128) {
        // Both sides modulo 2^64: C prints `(long long)` of unsigned 64-bit values.
        if rust as u64 != c as u64 {
            self.mismatches.push(format!(
                "{}: {what}: Rust {quantity}{rust:#x}, C {quantity}{c:#x}",
                self.arch
            ));
        }
    }
}

fn since(version: Option<&str>) -> String {
    version.map_or(String::new(), |v| format!(" (Linux {v})"))
}

/// Compares every claim with `header`.
pub fn compare(claims: &Claims, header: &HeaderReport) -> Proof {
    let mut proof = Proof {
        arch: claims.arch,
        version: header.version.clone(),
        ..Proof::default()
    };
    for layout in claims.layouts {
        if header.missing.contains(&format!("S {}", layout.name)) {
            proof.missing_structs += 1;
            proof.missing_fields += layout.fields.len();
            proof.not_in_header.push(format!(
                "checked by static assertion only: struct {}{}",
                layout.name,
                since(layout.since)
            ));
            continue;
        }
        // A struct that grew after the header: its size there is that of the members it has.
        let mut present_end = 0;
        let mut grew = false;
        for field in layout.fields {
            let what = format!("{}.{}", layout.name, field.name);
            if is_bitfield(field.c_type) {
                proof.bitfields += 1;
                present_end = present_end.max(field.offset + field.size);
                continue;
            }
            if header
                .missing
                .contains(&format!("F {} {}", layout.name, field.name))
            {
                grew = true;
                proof.missing_fields += 1;
                proof.not_in_header.push(format!(
                    "checked by static assertion only: {what}{}",
                    since(field.since)
                ));
                continue;
            }
            let key = format!("F {} {}", layout.name, field.name);
            let (Some(offset), Some(size)) = (
                header.get(&format!("{key} offset")),
                header.get(&format!("{key} size")),
            ) else {
                panic!(
                    "{}: {what} was neither printed nor reported missing",
                    claims.arch
                );
            };
            proof.check(&what, "offset ", field.offset as i128, offset);
            proof.check(&what, "size ", field.size as i128, size);
            present_end = present_end.max(field.offset + field.size);
            proof.fields += 1;
        }
        let (Some(size), Some(align)) = (
            header.get(&format!("S {} size", layout.name)),
            header.get(&format!("S {} align", layout.name)),
        ) else {
            panic!("{}: struct {} was not printed", claims.arch, layout.name);
        };
        let expected_size = if grew {
            present_end.next_multiple_of(layout.align)
        } else {
            layout.size
        };
        let quantity = if grew {
            "size (members in header) "
        } else {
            "size "
        };
        proof.check(layout.name, quantity, expected_size as i128, size);
        proof.check(layout.name, "alignment ", layout.align as i128, align);
        proof.structs += 1;
    }
    for ioctl in claims.ioctls {
        match header.get(&format!("I {}", ioctl.name)) {
            Some(request) => {
                // Linux request codes are 32 bits; `Request` is `c_ulong` or `c_int`.
                proof.check(ioctl.name, "", i128::from(ioctl.request as u32), request);
                proof.ioctls += 1;
            }
            None => {
                proof.missing_ioctls += 1;
                proof.not_in_header.push(format!(
                    "request code checked only through its asserted argument struct: {}",
                    ioctl.name
                ));
            }
        }
    }
    for constant in &claims.constants {
        let Some(value) = header.get(&format!("C {}", constant.name)) else {
            proof.missing_constants += 1;
            proof.not_in_header.push(format!(
                "value unchecked: {} ({})",
                constant.name, constant.table
            ));
            continue;
        };
        match constant.table {
            "EXIT_REASONS" => proof.exit_reasons += 1,
            "CAPABILITIES" => proof.caps += 1,
            _ => proof.other_constants += 1,
        }
        let what = format!("{} {}", constant.table, constant.name);
        proof.check(&what, "", constant.value, value);
    }
    for expression in &claims.expressions {
        let value = header
            .get(&format!("X {}", expression.name))
            .unwrap_or_else(|| panic!("{} was not printed", expression.name));
        proof.other_constants += 1;
        let what = format!("{} = {}", expression.name, expression.c);
        proof.check(&what, "", expression.value, value);
    }
    proof
}
