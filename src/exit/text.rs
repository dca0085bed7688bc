//! The text form of an exit's payload: `direction=out port=0x3f8 size=1 count=1
//! data_offset=0x1000 data=41 "A"` (the trace puts `#12 vcpu0 KVM_EXIT_IO(2)` before it and
//! `run_ns=8211` after, `crate::trace::text`), and the number formatting it is built with.
//!
//! Lines are built in a caller's reused `Vec<u8>` with hand-written number formatting, so a
//! traced exit costs little next to the exit itself and no allocation once the buffer has
//! grown.

use crate::exit::{Exit, Item, Value};

/// Data bytes shown per trace line; longer data (a `rep insb` batch) is cut with a count.
pub const MAX_SHOWN_BYTES: usize = 32;

const HEX: &[u8; 16] = b"0123456789abcdef";

/// "00" to "99": two decimal digits per table lookup.
const PAIRS: &[u8; 200] = b"\
    0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839\
    4041424344454647484950515253545556575859\
    6061626364656667686970717273747576777879\
    8081828384858687888990919293949596979899";

/// Appends `value` in decimal.
pub fn push_dec(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut rest = value;
    while rest >= 100 {
        let pair = (rest % 100) as usize * 2;
        rest /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if rest >= 10 {
        let pair = rest as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + rest as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `value` as `0x` and lower-case hex digits, no leading zeros.
pub fn push_hex(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(b"0x");
    push_hex_digits(out, value);
}

fn push_hex_digits(out: &mut Vec<u8>, value: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut rest = value;
    loop {
        i -= 1;
        digits[i] = HEX[(rest & 0xF) as usize];
        rest >>= 4;
        if rest == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `bytes` as two hex digits each, no separator (`48656c6c6f`).
pub fn push_hex_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    for &byte in bytes {
        out.push(HEX[usize::from(byte >> 4)]);
        out.push(HEX[usize::from(byte & 0xF)]);
    }
}

/// Appends `[a,b,...]`, each item written by `each`: the list syntax the text and JSON forms
/// share.
pub fn push_list<T>(
    out: &mut Vec<u8>,
    items: impl IntoIterator<Item = T>,
    mut each: impl FnMut(&mut Vec<u8>, T),
) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, item);
    }
    out.push(b']');
}

/// Whether a byte reads as text: printable ASCII or a common control character.
fn is_texty(byte: u8) -> bool {
    byte.is_ascii_graphic() || matches!(byte, b' ' | b'\n' | b'\r' | b'\t')
}

/// Appends `bytes` as a quoted string if any of them is printable: printable ASCII as is,
/// `\n` `\r` `\t` `\"` `\\` escaped, anything else as `.`.
fn push_chars(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.iter().any(|&b| b.is_ascii_graphic() || b == b' ') {
        return;
    }
    out.extend_from_slice(b" \"");
    for &byte in bytes {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            byte if is_texty(byte) => out.push(byte),
            _ => out.push(b'.'),
        }
    }
    out.push(b'"');
}

/// Appends data bytes: hex, cut after [`MAX_SHOWN_BYTES`] with the `total` length, then the
/// printable ones quoted.
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8], total: usize) {
    let shown = &bytes[..bytes.len().min(MAX_SHOWN_BYTES)];
    push_hex_bytes(out, shown);
    if shown.len() < total {
        out.extend_from_slice(b"...(");
        push_dec(out, total as u64);
        out.extend_from_slice(b" bytes)");
    }
    push_chars(out, shown);
}

/// Appends one value the way the text trace shows it.
pub fn push_value(out: &mut Vec<u8>, value: &Value<'_>) {
    match *value {
        Value::Hex(v) => push_hex(out, v),
        Value::Dec(v) => push_dec(out, v),
        Value::Bool(v) => out.push(if v { b'1' } else { b'0' }),
        Value::Word(word) => out.extend_from_slice(word.as_bytes()),
        Value::Enum { value, name } => {
            push_dec(out, value);
            if let Some(name) = name {
                out.push(b'(');
                out.extend_from_slice(name.as_bytes());
                out.push(b')');
            }
        }
        Value::Hardware {
            value,
            entry_failure,
        } => {
            push_hex(out, value);
            push_hardware_meaning(out, value, entry_failure);
        }
        Value::Bytes(bytes) => push_bytes(out, bytes, bytes.len()),
        Value::Words(words) => push_list(out, words, |out, &word| push_hex(out, word)),
    }
}

/// ` (VMX: ...)` after a hardware reason, on x86 where the tables apply.
#[cfg(target_arch = "x86_64")]
fn push_hardware_meaning(out: &mut Vec<u8>, value: u64, entry_failure: bool) {
    use std::io::Write;

    use crate::exit::hardware::{HostExitReason, explain_entry_failure};
    // Writing into a Vec cannot fail.
    let _ = if entry_failure {
        write!(out, " ({})", explain_entry_failure(value))
    } else {
        write!(out, " ({})", HostExitReason(value))
    };
}

#[cfg(not(target_arch = "x86_64"))]
fn push_hardware_meaning(_out: &mut Vec<u8>, _value: u64, _entry_failure: bool) {}

/// Appends ` label=`.
pub fn push_label(out: &mut Vec<u8>, label: &str) {
    out.push(b' ');
    out.extend_from_slice(label.as_bytes());
    out.push(b'=');
}

/// Appends ` label=value`.
pub fn push_item(out: &mut Vec<u8>, item: &Item<'_>) {
    push_label(out, item.label);
    push_value(out, &item.value);
}

/// Appends `KVM_EXIT_IO(2)`, or `unknown(1000)`.
pub fn push_reason(out: &mut Vec<u8>, reason: u32) {
    let name = rawkvm_bindings::exit_reason_name(reason).unwrap_or("unknown");
    out.extend_from_slice(name.as_bytes());
    out.push(b'(');
    push_dec(out, u64::from(reason));
    out.push(b')');
}

impl Exit<'_> {
    /// The payload alone (`port=0x1234 size=1 ...`), for error messages.
    pub fn payload_string(&self) -> String {
        let mut out = Vec::new();
        self.visit(&mut |item| push_item(&mut out, &item));
        let text = String::from_utf8_lossy(&out);
        text.trim_start().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(f: impl FnOnce(&mut Vec<u8>)) -> String {
        let mut out = Vec::new();
        f(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers() {
        assert_eq!(text(|o| push_dec(o, 0)), "0");
        assert_eq!(text(|o| push_dec(o, u64::MAX)), "18446744073709551615");
        for n in [1u64, 9, 10, 99, 100, 101, 12_345, 1_000_000] {
            assert_eq!(text(|o| push_dec(o, n)), n.to_string());
        }
        assert_eq!(text(|o| push_hex(o, 0)), "0x0");
        assert_eq!(text(|o| push_hex(o, 0x3F8)), "0x3f8");
        assert_eq!(text(|o| push_hex(o, u64::MAX)), "0xffffffffffffffff");
    }

    #[test]
    fn bytes_show_hex_and_printable_text() {
        let show = |bytes: &[u8]| text(|o| push_value(o, &Value::Bytes(bytes)));
        assert_eq!(show(b"A"), "41 \"A\"");
        assert_eq!(show(b"hi\n"), "68690a \"hi\\n\"");
        assert_eq!(show(&[0xFF, 0xFF]), "ffff");
        assert_eq!(show(&[b'"', 0, b'\\']), "22005c \"\\\".\\\\\"");
        let long = [b'x'; 40];
        assert_eq!(
            show(&long),
            format!("{}...(40 bytes) \"{}\"", "78".repeat(32), "x".repeat(32))
        );
    }

    #[test]
    fn enums_words_and_reasons() {
        let e = Value::Enum {
            value: 1,
            name: Some("KVM_INTERNAL_ERROR_EMULATION"),
        };
        assert_eq!(
            text(|o| push_value(o, &e)),
            "1(KVM_INTERNAL_ERROR_EMULATION)"
        );
        assert_eq!(
            text(|o| push_value(o, &Value::Words(&[1, 0x20]))),
            "[0x1,0x20]"
        );
        assert_eq!(text(|o| push_reason(o, 2)), "KVM_EXIT_IO(2)");
        assert_eq!(text(|o| push_reason(o, 1000)), "unknown(1000)");
    }
}
