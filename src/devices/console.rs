//! The console: where the guest's debug-port and COM1 bytes go.
//!
//! Bytes are kept in a fixed 4 KiB buffer and written to the sink when a line ends, when the
//! buffer is full, and when the run ends ([`Console::flush`]), so a guest printing a line costs
//! one `write(2)`, not one per byte, and memory stays bounded however much the guest prints: a
//! slow reader slows the guest down instead of growing a queue.

use std::io::{self, Write};

/// Bytes held before a forced write.
pub const BUFFER_SIZE: usize = 4096;

/// A bounded, line-flushed byte sink.
#[derive(Debug)]
pub struct Console<W: Write> {
    sink: W,
    buffer: [u8; BUFFER_SIZE],
    len: usize,
    written: u64,
}

impl<W: Write> Console<W> {
    /// A console writing to `sink`.
    pub fn new(sink: W) -> Console<W> {
        Console {
            sink,
            buffer: [0; BUFFER_SIZE],
            len: 0,
            written: 0,
        }
    }

    /// Takes one byte from the guest.
    pub fn push(&mut self, byte: u8) -> io::Result<()> {
        self.buffer[self.len] = byte;
        self.len += 1;
        self.written += 1;
        if byte == b'\n' || self.len == BUFFER_SIZE {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes out whatever is buffered.
    pub fn flush(&mut self) -> io::Result<()> {
        let pending = &self.buffer[..self.len];
        self.len = 0;
        self.sink.write_all(pending)?;
        self.sink.flush()
    }

    /// Bytes the guest has printed so far.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// The sink (for tests that capture output in a `Vec<u8>`).
    pub fn sink(&self) -> &W {
        &self.sink
    }

    /// Flushes and returns the sink.
    pub fn into_sink(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.sink)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_full_buffers_are_written_through() {
        let mut console = Console::new(Vec::new());
        for &b in b"ab" {
            console.push(b).unwrap();
        }
        assert!(console.sink().is_empty(), "no newline yet");
        console.push(b'\n').unwrap();
        assert_eq!(console.sink().as_slice(), b"ab\n");
        for _ in 0..BUFFER_SIZE {
            console.push(b'x').unwrap();
        }
        assert_eq!(console.sink().len(), 3 + BUFFER_SIZE);
        console.push(b'y').unwrap();
        assert_eq!(console.into_sink().unwrap().len(), 3 + BUFFER_SIZE + 1);
    }
}
