//! The JSON form of an exit, one object per line (JSON Lines):
//!
//! ```text
//! {"seq":3,"vcpu":0,"reason":"KVM_EXIT_IO","nr":2,"direction":"out","port":1016,"size":1,
//!  "count":1,"data_offset":4096,"data":"41","claimed":true,"run_ns":8211}
//! ```
//!
//! Written by hand (rawkvm has no serde): numbers are JSON integers (exact as written; a
//! reader that keeps integers as doubles loses precision above 2^53), data bytes are hex
//! strings, data words arrays of integers, and every string goes through [`push_string`],
//! which escapes what RFC 8259 requires.

use std::io::Write;

use super::text::LineHeader;
use crate::devices::bus::Claim;
use crate::exit::text::{push_dec, push_hex_bytes, push_list};
use crate::exit::{Exit, Item, Value};

/// The keys every trace object has besides the payload (`--explain` adds the last three).
/// Payload labels never use them, nor them with `_name` or `_text` appended.
pub const RESERVED_KEYS: &[&str] = &[
    "seq", "vcpu", "reason", "nr", "claimed", "run_ns", "read", "wrote", "explain",
];

/// Whether a JSON string cannot hold `byte` as it is: `"`, `\` and control characters.
pub fn needs_escape(byte: u8) -> bool {
    matches!(byte, b'"' | b'\\' | 0..=0x1F | 0x7F)
}

/// Appends `text` as a JSON string: quotes, with `"` `\` and control characters escaped.
pub fn push_string(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    for &byte in text.as_bytes() {
        match byte {
            // Multi-byte UTF-8 sequences pass through unchanged: `text` is a valid &str.
            byte if !needs_escape(byte) => out.push(byte),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            // The other control characters.
            control => {
                out.extend_from_slice(b"\\u00");
                push_hex_bytes(out, &[control]);
            }
        }
    }
    out.push(b'"');
}

/// Appends `{"name":..,"offset":..,"size":..` (without the closing brace): a span of bytes
/// by name, as `rawkvm abi` lists struct members and `--explain` the fields it read.
pub fn push_span_start(out: &mut Vec<u8>, name: &str, offset: u64, size: u64) {
    out.extend_from_slice(b"{\"name\":");
    push_string(out, name);
    push_key(out, "offset");
    push_dec(out, offset);
    push_key(out, "size");
    push_dec(out, size);
}

/// Appends `null` or the string.
pub fn push_optional_string(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => push_string(out, text),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `null` or the number in decimal.
pub fn push_optional_dec(out: &mut Vec<u8>, value: Option<u64>) {
    match value {
        Some(value) => push_dec(out, value),
        None => out.extend_from_slice(b"null"),
    }
}

/// Appends `,"key":`.
pub fn push_key(out: &mut Vec<u8>, key: &str) {
    out.push(b',');
    push_string(out, key);
    out.push(b':');
}

/// Appends `,"label":value` (and `,"label_name":"..."` for a named number, `,"label_text":
/// "..."` for a hardware reason).
pub fn push_item(out: &mut Vec<u8>, item: &Item<'_>) {
    push_key(out, item.label);
    match item.value {
        Value::Hex(v) | Value::Dec(v) => push_dec(out, v),
        Value::Bool(v) => out.extend_from_slice(if v { b"true" } else { b"false" }),
        Value::Word(word) => push_string(out, word),
        Value::Enum { value, name } => {
            push_dec(out, value);
            if let Some(name) = name {
                push_suffixed_key(out, item.label, "_name");
                push_string(out, name);
            }
        }
        Value::Hardware {
            value,
            entry_failure,
        } => {
            push_dec(out, value);
            if let Some(text) = hardware_text(value, entry_failure) {
                push_suffixed_key(out, item.label, "_text");
                push_string(out, &text);
            }
        }
        Value::Bytes(bytes) => {
            out.push(b'"');
            push_hex_bytes(out, bytes);
            out.push(b'"');
        }
        Value::Words(words) => push_list(out, words, |out, &word| push_dec(out, word)),
    }
}

fn push_suffixed_key(out: &mut Vec<u8>, label: &str, suffix: &str) {
    out.extend_from_slice(b",\"");
    out.extend_from_slice(label.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    out.extend_from_slice(b"\":");
}

#[cfg(target_arch = "x86_64")]
fn hardware_text(value: u64, entry_failure: bool) -> Option<String> {
    use crate::exit::hardware::{HostExitReason, explain_entry_failure};
    Some(if entry_failure {
        explain_entry_failure(value).to_string()
    } else {
        HostExitReason(value).to_string()
    })
}

#[cfg(not(target_arch = "x86_64"))]
fn hardware_text(_value: u64, _entry_failure: bool) -> Option<String> {
    None
}

/// Appends `{"seq":..,"vcpu":..,"reason":..,"nr":..` and the payload, without the closing
/// brace (the caller may add explain fields).
pub fn push_object_start(out: &mut Vec<u8>, header: &LineHeader, exit: &Exit<'_>) {
    out.extend_from_slice(b"{\"seq\":");
    push_dec(out, header.seq);
    push_key(out, "vcpu");
    push_dec(out, u64::from(header.vcpu));
    push_key(out, "reason");
    push_string(out, exit.reason_name());
    push_key(out, "nr");
    push_dec(out, u64::from(exit.reason()));
    exit.visit(&mut |item| push_item(out, &item));
    if let Some(dispatch) = header.dispatch {
        push_key(out, "claimed");
        let claimed: &[u8] = if dispatch == Claim::Claimed {
            b"true"
        } else {
            b"false"
        };
        out.extend_from_slice(claimed);
    }
    push_key(out, "run_ns");
    push_dec(out, header.run_ns);
}

/// Closes the object and the line.
pub fn push_object_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"}\n");
}

/// Writes `text` formatted with `Display` as a JSON string value of `key`.
pub fn push_display(out: &mut Vec<u8>, key: &str, value: impl std::fmt::Display) {
    push_key(out, key);
    let mut text = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = write!(text, "{value}");
    push_string(out, &String::from_utf8_lossy(&text));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(text: &str) -> String {
        let mut out = Vec::new();
        push_string(&mut out, text);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_are_escaped() {
        assert_eq!(string("KVM_EXIT_IO"), "\"KVM_EXIT_IO\"");
        assert_eq!(string("a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(string("\n\t\u{1}\u{7f}"), "\"\\n\\t\\u0001\\u007f\"");
        assert_eq!(string("µs"), "\"µs\"");
    }

    #[test]
    fn items_become_typed_members() {
        let item = |label, value| {
            let mut out = Vec::new();
            push_item(
                &mut out,
                &Item {
                    label,
                    value,
                    source: crate::exit::Source::Data {
                        name: "data",
                        offset: 0,
                        len: 0,
                    },
                },
            );
            String::from_utf8(out).unwrap()
        };
        assert_eq!(item("port", Value::Hex(0x3F8)), ",\"port\":1016");
        assert_eq!(item("is_write", Value::Bool(true)), ",\"is_write\":true");
        assert_eq!(item("data", Value::Bytes(&[0x41, 0])), ",\"data\":\"4100\"");
        assert_eq!(item("data", Value::Words(&[1, 2])), ",\"data\":[1,2]");
        assert_eq!(
            item(
                "suberror",
                Value::Enum {
                    value: 1,
                    name: Some("X")
                }
            ),
            ",\"suberror\":1,\"suberror_name\":\"X\""
        );
    }
}
