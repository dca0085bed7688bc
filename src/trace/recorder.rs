//! The flight recorder: the last [`CAPACITY`] exits, decoded, with the time each `KVM_RUN`
//! took, kept in a fixed ring and printed when a run ends in a guest fault.
//!
//! Exits borrow the `kvm_run` page, so the recorder keeps an owned copy of each payload
//! ([`Exit::visit`] items, data cut to [`KEPT_BYTES`] bytes). The ring is allocated once;
//! recording an exit copies a few hundred bytes and allocates nothing.

use std::io::{self, Write};

use super::text::{LineHeader, push_header_end, push_header_start, push_item};
use crate::exit::{Exit, Item, Source, Value};

/// How many exits the recorder keeps.
pub const CAPACITY: usize = 32;
/// Data bytes kept per item (the text trace shows at most this many anyway).
pub const KEPT_BYTES: usize = super::text::MAX_SHOWN_BYTES;
/// Payload items kept per exit (the most any exit has is 7).
const MAX_ITEMS: usize = 8;
/// Data words kept per item (`internal.data` has at most 16).
const KEPT_WORDS: usize = 16;

/// A [`Value`] that owns its data.
#[derive(Debug, Clone, Copy)]
enum OwnedValue {
    Plain(Value<'static>),
    Bytes { head: [u8; KEPT_BYTES], len: usize },
    Words { head: [u64; KEPT_WORDS], len: usize },
}

#[derive(Debug, Clone, Copy)]
struct OwnedItem {
    label: &'static str,
    value: OwnedValue,
    source: Source,
}

impl OwnedItem {
    fn capture(item: &Item<'_>) -> OwnedItem {
        let value = match item.value {
            Value::Bytes(bytes) => {
                let mut head = [0; KEPT_BYTES];
                let len = bytes.len().min(KEPT_BYTES);
                head[..len].copy_from_slice(&bytes[..len]);
                OwnedValue::Bytes { head, len }
            }
            Value::Words(words) => {
                let mut head = [0; KEPT_WORDS];
                let len = words.len().min(KEPT_WORDS);
                head[..len].copy_from_slice(&words[..len]);
                OwnedValue::Words { head, len }
            }
            Value::Hex(v) => OwnedValue::Plain(Value::Hex(v)),
            Value::Dec(v) => OwnedValue::Plain(Value::Dec(v)),
            Value::Bool(v) => OwnedValue::Plain(Value::Bool(v)),
            Value::Word(v) => OwnedValue::Plain(Value::Word(v)),
            Value::Enum { value, name } => OwnedValue::Plain(Value::Enum { value, name }),
            Value::Hardware {
                value,
                entry_failure,
            } => OwnedValue::Plain(Value::Hardware {
                value,
                entry_failure,
            }),
        };
        OwnedItem {
            label: item.label,
            value,
            source: item.source,
        }
    }

    fn item(&self) -> Item<'_> {
        let value = match &self.value {
            OwnedValue::Plain(value) => *value,
            OwnedValue::Bytes { head, len } => Value::Bytes(&head[..*len]),
            OwnedValue::Words { head, len } => Value::Words(&head[..*len]),
        };
        Item {
            label: self.label,
            value,
            source: self.source,
        }
    }
}

/// One recorded exit.
#[derive(Debug, Clone, Copy)]
struct Record {
    header: LineHeader,
    reason: u32,
    items: [Option<OwnedItem>; MAX_ITEMS],
}

/// The last [`CAPACITY`] exits of one vCPU.
#[derive(Debug)]
pub struct FlightRecorder {
    ring: Box<[Option<Record>; CAPACITY]>,
    /// Exits recorded so far; the next goes to `recorded % CAPACITY`.
    recorded: u64,
}

impl Default for FlightRecorder {
    fn default() -> Self {
        FlightRecorder {
            ring: Box::new([None; CAPACITY]),
            recorded: 0,
        }
    }
}

impl FlightRecorder {
    /// Keeps `exit`, dropping the oldest if the ring is full.
    pub fn record(&mut self, header: LineHeader, exit: &Exit<'_>) {
        let mut items = [None; MAX_ITEMS];
        let mut next = 0;
        exit.visit(&mut |item| {
            if let Some(slot) = items.get_mut(next) {
                *slot = Some(OwnedItem::capture(&item));
                next += 1;
            }
        });
        let slot = (self.recorded % CAPACITY as u64) as usize;
        self.ring[slot] = Some(Record {
            header,
            reason: exit.reason(),
            items,
        });
        self.recorded += 1;
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
            if let Some(record) = &self.ring[index] {
                let mut line = Vec::new();
                push_header_start(&mut line, &record.header, record.reason);
                for item in record.items.iter().flatten() {
                    push_item(&mut line, &item.item());
                }
                push_header_end(&mut line, &record.header);
                lines.push(String::from_utf8_lossy(&line).trim_end().to_string());
            }
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
