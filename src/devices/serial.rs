//! COM1, a 16550 UART reduced to what a polling guest needs.
//!
//! Registers at `base + 0..=7` (base `0x3F8`). Writes to the transmit holding register
//! (offset 0, with the divisor latch closed) are output bytes. The line status register
//! (offset 5) always reads `0x60`: transmitter holding register empty (bit 5) and transmitter
//! empty (bit 6), so a guest that polls before each byte never waits. Every other register
//! reads 0. Offsets 0 and 1 address the divisor latch while `LCR.DLAB` (bit 7) is set, so a
//! guest programming the baud rate does not print its divisor.
//!
//! The state is one byte (the line control register), so no guest sequence of reads and
//! writes can make this device index out of bounds or grow.

/// The I/O port of COM1.
pub const COM1_BASE: u16 = 0x3F8;
/// Number of ports the UART decodes.
pub const PORTS: u16 = 8;

const THR: u16 = 0;
const LCR: u16 = 3;
const LSR: u16 = 5;
const LCR_DLAB: u8 = 0x80;
/// `LSR.THRE | LSR.TEMT`: ready to take a byte, nothing in flight.
pub const LSR_IDLE: u8 = 0x60;

/// The UART's state.
#[derive(Debug, Default, Clone)]
pub struct Serial {
    line_control: u8,
}

impl Serial {
    /// A reset UART.
    pub fn new() -> Serial {
        Serial::default()
    }

    /// The line control register: the UART's only state (snapshots save it).
    pub fn line_control(&self) -> u8 {
        self.line_control
    }

    /// A UART whose line control register holds `value` (a restored snapshot's).
    pub fn with_line_control(value: u8) -> Serial {
        Serial {
            line_control: value,
        }
    }

    /// A guest read of register `offset` (0..=7; others read 0).
    pub fn read(&self, offset: u16) -> u8 {
        match offset {
            LSR => LSR_IDLE,
            _ => 0,
        }
    }

    /// A guest write of `value` to register `offset`; returns the byte to transmit, if any.
    pub fn write(&mut self, offset: u16, value: u8) -> Option<u8> {
        match offset {
            THR if self.line_control & LCR_DLAB == 0 => Some(value),
            LCR => {
                self.line_control = value;
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmits_only_with_the_divisor_latch_closed() {
        let mut uart = Serial::new();
        assert_eq!(uart.write(THR, b'A'), Some(b'A'));
        assert_eq!(uart.write(LCR, LCR_DLAB | 0x03), None);
        assert_eq!(
            uart.write(THR, 0x01),
            None,
            "divisor low byte is not output"
        );
        assert_eq!(uart.write(1, 0x00), None);
        assert_eq!(uart.write(LCR, 0x03), None);
        assert_eq!(uart.write(THR, b'B'), Some(b'B'));
    }

    #[test]
    fn line_status_is_always_idle_and_the_rest_read_zero() {
        let mut uart = Serial::new();
        uart.write(LCR, 0xFF);
        assert_eq!(uart.read(LSR), 0x60);
        for offset in (0..8).filter(|&o| o != LSR) {
            assert_eq!(uart.read(offset), 0, "offset {offset}");
        }
    }
}
