//! The flight recorder: the last [`CAPACITY`] exits, decoded, with the time each `KVM_RUN`
//! took, kept in a fixed ring and printed when a run ends in a guest fault.
//!
//! Exits borrow the `kvm_run` page, so the recorder keeps an owned copy of each in a ring
//! allocated once: recording writes a slot in place and allocates nothing. When a text trace
//! is being written anyway, the slot keeps a copy of that line ([`FlightRecorder::record_line`],
//! one `memcpy`); otherwise it keeps the payload items ([`Exit::visit`], data cut to
//! [`KEPT_BYTES`] bytes and [`KEPT_WORDS`] words) and formats them only if they are printed.

use std::io::{self, Write};

use super::text::{LineHeader, push_header_end, push_header_start};
use crate::exit::text::{MAX_SHOWN_BYTES, push_bytes, push_label, push_value};
use crate::exit::{Exit, Item, Value};

/// How many exits the recorder keeps.
pub const CAPACITY: usize = 32;
/// Data bytes kept per exit (the text trace shows at most this many anyway).
pub const KEPT_BYTES: usize = MAX_SHOWN_BYTES;
/// Payload items kept per exit (the most any exit has is 7).
const MAX_ITEMS: usize = 8;
/// Data words kept per exit: all of the largest array in `kvm_run` (`osi.gprs`).
pub const KEPT_WORDS: usize = 32;
/// Bytes of a trace line kept per exit; a longer line is cut and ends in `...`.
pub const KEPT_LINE: usize = 320;

/// A payload value as kept: plain values as they are, data as a range of the record's own
/// buffers.
#[derive(Debug, Clone, Copy)]
enum Kept {
    Plain(Value<'static>),
    Bytes {
        start: usize,
        len: usize,
        total: usize,
    },
    Words {
        start: usize,
        len: usize,
    },
}

/// One recorded exit: its trace line, or its payload items. Everything lives in fixed
/// arrays, so recording writes in place.
#[derive(Debug, Clone, Copy)]
struct Record {
    /// Bytes of `line` in use; 0 when the items are kept instead.
    line_len: usize,
    line: [u8; KEPT_LINE],
    header: LineHeader,
    reason: u32,
    len: usize,
    items: [(&'static str, Kept); MAX_ITEMS],
    bytes: [u8; KEPT_BYTES],
    bytes_used: usize,
    words: [u64; KEPT_WORDS],
    words_used: usize,
}

impl Record {
    const EMPTY: Record = Record {
        line_len: 0,
        line: [0; KEPT_LINE],
        header: LineHeader {
            seq: 0,
            vcpu: 0,
            run_ns: 0,
            dispatch: None,
        },
        reason: 0,
        len: 0,
        items: [("", Kept::Plain(Value::Bool(false))); MAX_ITEMS],
        bytes: [0; KEPT_BYTES],
        bytes_used: 0,
        words: [0; KEPT_WORDS],
        words_used: 0,
    };

    /// Keeps one payload item (in [`Exit::visit`] order).
    fn keep(&mut self, item: &Item<'_>) {
        let kept = match item.value {
            Value::Bytes(bytes) => {
                let start = self.bytes_used;
                let len = bytes.len().min(KEPT_BYTES - start);
                self.bytes[start..start + len].copy_from_slice(&bytes[..len]);
                self.bytes_used += len;
                Kept::Bytes {
                    start,
                    len,
                    total: bytes.len(),
                }
            }
            Value::Words(words) => {
                let start = self.words_used;
                let len = words.len().min(KEPT_WORDS - start);
                self.words[start..start + len].copy_from_slice(&words[..len]);
                self.words_used += len;
                Kept::Words { start, len }
            }
            Value::Hex(v) => Kept::Plain(Value::Hex(v)),
            Value::Dec(v) => Kept::Plain(Value::Dec(v)),
            Value::Bool(v) => Kept::Plain(Value::Bool(v)),
            Value::Word(v) => Kept::Plain(Value::Word(v)),
            Value::Enum { value, name } => Kept::Plain(Value::Enum { value, name }),
            Value::Hardware {
                value,
                entry_failure,
            } => Kept::Plain(Value::Hardware {
                value,
                entry_failure,
            }),
        };
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = (item.label, kept);
            self.len += 1;
        }
    }

    /// Appends the kept items as the text trace shows them.
    fn push_items(&self, out: &mut Vec<u8>) {
        for &(label, kept) in &self.items[..self.len] {
            push_label(out, label);
            match kept {
                Kept::Plain(value) => push_value(out, &value),
                Kept::Bytes { start, len, total } => {
                    push_bytes(out, &self.bytes[start..start + len], total);
                }
                Kept::Words { start, len } => {
                    push_value(out, &Value::Words(&self.words[start..start + len]));
                }
            }
        }
    }
}

/// The last [`CAPACITY`] exits of one vCPU.
#[derive(Debug)]
pub struct FlightRecorder {
    ring: Box<[Record; CAPACITY]>,
    /// Exits recorded so far; the next goes to `recorded % CAPACITY`.
    recorded: u64,
}

impl Default for FlightRecorder {
    fn default() -> Self {
        FlightRecorder {
            ring: Box::new([Record::EMPTY; CAPACITY]),
            recorded: 0,
        }
    }
}

impl FlightRecorder {
    /// Keeps `exit`, dropping the oldest if the ring is full.
    pub fn record(&mut self, header: LineHeader, exit: &Exit<'_>) {
        let record = self.next_slot();
        record.line_len = 0;
        record.header = header;
        record.reason = exit.reason();
        record.len = 0;
        record.bytes_used = 0;
        record.words_used = 0;
        exit.visit(&mut |item| record.keep(&item));
    }

    /// Keeps an exit as its one-line text trace (a trailing newline is dropped), cut to
    /// [`KEPT_LINE`] bytes.
    pub fn record_line(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let record = self.next_slot();
        let kept = line.len().min(KEPT_LINE);
        record.line[..kept].copy_from_slice(&line[..kept]);
        if kept < line.len() {
            record.line[KEPT_LINE - 3..].copy_from_slice(b"...");
        }
        record.line_len = kept.max(1);
    }

    fn next_slot(&mut self) -> &mut Record {
        let slot = (self.recorded % CAPACITY as u64) as usize;
        self.recorded += 1;
        &mut self.ring[slot]
    }

    /// How many exits were recorded in all (not only those still kept).
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// The kept exits as trace lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let kept = self.recorded.min(CAPACITY as u64);
        let mut lines = Vec::new();
        for age in (0..kept).rev() {
            let index = ((self.recorded - 1 - age) % CAPACITY as u64) as usize;
            let record = &self.ring[index];
            if record.line_len > 0 {
                let line = &record.line[..record.line_len];
                lines.push(String::from_utf8_lossy(line).trim_end().to_string());
                continue;
            }
            let mut line = Vec::new();
            push_header_start(&mut line, &record.header, record.reason);
            record.push_items(&mut line);
            push_header_end(&mut line, &record.header);
            lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
        }
        lines
    }

    /// Prints the kept exits under a heading saying how many of how many are shown.
    pub fn write_to(&self, out: &mut dyn Write) -> io::Result<()> {
        let lines = self.lines();
        writeln!(
            out,
            "rawkvm: flight recorder: the last {} of {} exits before the fault:",
            lines.len(),
            self.recorded
        )?;
        for line in lines {
            writeln!(out, "  {line}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(seq: u64) -> LineHeader {
        LineHeader {
            seq,
            vcpu: 0,
            run_ns: 10,
            dispatch: None,
        }
    }

    #[test]
    fn the_ring_keeps_the_last_32_in_order_either_way() {
        let mut recorder = FlightRecorder::default();
        for seq in 1..=40 {
            if seq % 2 == 0 {
                recorder.record(header(seq), &Exit::Hlt);
            } else {
                recorder.record_line(format!("#{seq} line\n").as_bytes());
            }
        }
        let lines = recorder.lines();
        assert_eq!(lines.len(), CAPACITY);
        assert_eq!(lines[0], "#9 line");
        assert_eq!(lines[1], "#10 vcpu0 KVM_EXIT_HLT(5) run_ns=10");
        assert_eq!(lines[31], "#40 vcpu0 KVM_EXIT_HLT(5) run_ns=10");
        assert_eq!(recorder.recorded(), 40);
    }

    #[test]
    fn long_lines_are_cut() {
        let mut recorder = FlightRecorder::default();
        recorder.record_line(&[b'x'; 1000]);
        let line = &recorder.lines()[0];
        assert_eq!(line.len(), KEPT_LINE);
        assert!(line.ends_with("x..."));
    }
}
