//! Devices: who answers the guest's port and MMIO accesses.
//!
//! The run loop hands each access to an [`IoHandler`] one element at a time (a `rep insb` of
//! 1024 bytes is 1024 calls of one byte), after filling read buffers with `0xFF`, the value an
//! open bus reads as. A handler that does not claim an access leaves that filler in place, so
//! stale bytes from an earlier exit can never reach the guest.
//!
//! [`Devices`] is the default set, the same in every CPU mode:
//!
//! | device | where | what it does |
//! |---|---|---|
//! | debug console | port `0xE9` | each byte written is output (coalesced where the kernel can) |
//! | COM1 | ports `0x3F8..0x400` | transmit register output; line status reads "empty" |
//! | MMIO console | GPA `0xD000_0000..0xD000_0008` | each byte written is output (coalesced); for code that cannot do port I/O (CPL3) |
//! | exit device | port `0xF4` (a byte), GPA `0xD000_0008` (32 bits) | ends the run with the value written as its code ([`Claim::Finish`]): 0 is success |
//!
//! The loop↔device contract itself ([`IoHandler`], [`Claim`]) is in [`bus`].

pub mod bus;
pub mod coalesced;
pub mod console;
pub mod pic;
pub mod serial;

use std::io::{self, Write};

pub use bus::{Claim, IoHandler, Space, WriteOnlyZone};

pub use console::Console;
pub use serial::Serial;

/// Port `0xE9`: the Bochs/QEMU debug console; every byte written is output.
pub const DEBUG_CONSOLE_PORT: u16 = 0xE9;

/// Port `0xF4`: the exit device's port (QEMU's `isa-debug-exit`); a byte written there ends
/// the run with that byte as its code.
pub const EXIT_PORT: u16 = 0xF4;

/// Guest physical address of the MMIO console: each byte written in
/// `MMIO_CONSOLE..MMIO_CONSOLE + MMIO_CONSOLE_LEN` is output, in address order.
pub const MMIO_CONSOLE: u64 = 0xD000_0000;

/// Bytes of the MMIO console's window: an aligned 8-byte store prints eight bytes.
pub const MMIO_CONSOLE_LEN: u32 = 8;

/// Guest physical address of the exit device's MMIO register: a 32-bit write ends the run
/// with the value as its code.
pub const EXIT_MMIO: u64 = MMIO_CONSOLE + MMIO_CONSOLE_LEN as u64;

/// The consoles take bytes and answer nothing: the debug port and the MMIO console's window
/// are write-only zones.
const DEVICES_WRITE_ONLY: [WriteOnlyZone; 2] = [
    WriteOnlyZone {
        space: Space::Port,
        start: DEBUG_CONSOLE_PORT as u64,
        len: 1,
    },
    WriteOnlyZone {
        space: Space::Memory,
        start: MMIO_CONSOLE,
        len: MMIO_CONSOLE_LEN,
    },
];

/// The default devices: debug console and COM1, both printing to one [`Console`].
#[derive(Debug)]
pub struct Devices<W: Write> {
    /// Where printed bytes go.
    pub console: Console<W>,
    /// COM1.
    pub com1: Serial,
}

impl<W: Write> Devices<W> {
    /// Devices printing to `sink`.
    pub fn new(sink: W) -> Devices<W> {
        Devices {
            console: Console::new(sink),
            com1: Serial::new(),
        }
    }

    /// The COM1 register a port addresses, if any.
    fn com1_offset(port: u16) -> Option<u16> {
        port.checked_sub(serial::COM1_BASE)
            .filter(|&offset| offset < serial::PORTS)
    }

    fn read_byte(&mut self, port: u16) -> Option<u8> {
        Self::com1_offset(port).map(|offset| self.com1.read(offset))
    }

    fn write_byte(&mut self, port: u16, value: u8) -> io::Result<Claim> {
        if port == EXIT_PORT {
            return Ok(Claim::Finish(value.into()));
        }
        let output = if port == DEBUG_CONSOLE_PORT {
            Some(value)
        } else if let Some(offset) = Self::com1_offset(port) {
            self.com1.write(offset, value)
        } else {
            return Ok(Claim::Unclaimed);
        };
        if let Some(byte) = output {
            self.console.push(byte)?;
        }
        Ok(Claim::Claimed)
    }
}

impl<W: Write> IoHandler for Devices<W> {
    /// A wide access reaches consecutive ports, byte `i` at `port + i`, as on x86 hardware.
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Claim> {
        let mut claim = Claim::Unclaimed;
        for (i, byte) in (0u16..).zip(data.iter_mut()) {
            if let Some(value) = self.read_byte(port.wrapping_add(i)) {
                *byte = value;
                claim = Claim::Claimed;
            }
        }
        Ok(claim)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Claim> {
        let mut claim = Claim::Unclaimed;
        for (i, &byte) in (0u16..).zip(data) {
            claim = claim.and(self.write_byte(port.wrapping_add(i), byte)?);
        }
        Ok(claim)
    }

    /// Both consoles and the exit device are write-only: reads keep the open-bus filler.
    fn mmio_read(&mut self, _addr: u64, _data: &mut [u8]) -> io::Result<Claim> {
        Ok(Claim::Unclaimed)
    }

    /// A write inside the MMIO console's window prints its bytes (a store that runs past the
    /// window prints only the bytes inside it); a write that starts at [`EXIT_MMIO`] ends the
    /// run with its first four bytes, little-endian, as the code (a narrower write is
    /// zero-extended).
    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Claim> {
        if addr == EXIT_MMIO {
            let mut code = [0u8; 4];
            let len = data.len().min(4);
            code[..len].copy_from_slice(&data[..len]);
            return Ok(Claim::Finish(u32::from_le_bytes(code)));
        }
        let Some(offset) = addr
            .checked_sub(MMIO_CONSOLE)
            .filter(|&o| o < MMIO_CONSOLE_LEN.into())
        else {
            return Ok(Claim::Unclaimed);
        };
        // offset < 8, so the window's remaining length fits any slice index.
        let inside = (u64::from(MMIO_CONSOLE_LEN) - offset) as usize;
        for &byte in &data[..data.len().min(inside)] {
            self.console.push(byte)?;
        }
        Ok(Claim::Claimed)
    }

    /// Port `0xE9` and the MMIO console. Not COM1: its transmit register shares a port with the receive buffer
    /// and the divisor latch, and the guest polls the line status in between.
    fn write_only_zones(&self) -> &[WriteOnlyZone] {
        &DEVICES_WRITE_ONLY
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::bus::OPEN_BUS;

    #[test]
    fn debug_console_and_com1_print_and_the_rest_is_open_bus() {
        let mut devices = Devices::new(Vec::new());
        assert_eq!(devices.pio_write(0xE9, b"h").unwrap(), Claim::Claimed);
        assert_eq!(devices.pio_write(0x3F8, b"i").unwrap(), Claim::Claimed);
        assert_eq!(devices.pio_write(0x510, b"x").unwrap(), Claim::Unclaimed);
        let mut lsr = [0xFF];
        assert_eq!(devices.pio_read(0x3FD, &mut lsr).unwrap(), Claim::Claimed);
        assert_eq!(lsr, [0x60]);
        let mut open = [0xFF; 4];
        assert_eq!(
            devices.pio_read(0x1234, &mut open).unwrap(),
            Claim::Unclaimed
        );
        assert_eq!(open, [0xFF; 4]);
        // A 16-bit out to 0xE9 prints its low byte; the high byte goes to 0xEA, which is open.
        devices.pio_write(0xE9, b"!?").unwrap();
        devices.console.flush().unwrap();
        assert_eq!(devices.console.sink().as_slice(), b"hi!");
    }

    #[test]
    fn the_mmio_console_prints_the_bytes_inside_its_window() {
        let mut devices = Devices::new(Vec::new());
        assert_eq!(
            devices.mmio_write(MMIO_CONSOLE, b"ok").unwrap(),
            Claim::Claimed
        );
        // An 8-byte store at offset 6 prints the two bytes still inside the window.
        assert_eq!(
            devices.mmio_write(MMIO_CONSOLE + 6, b"!\nXXXXXX").unwrap(),
            Claim::Claimed
        );
        assert_eq!(
            devices.mmio_write(MMIO_CONSOLE - 1, b"Z").unwrap(),
            Claim::Unclaimed
        );
        let mut read = [OPEN_BUS; 4];
        assert_eq!(
            devices.mmio_read(MMIO_CONSOLE, &mut read).unwrap(),
            Claim::Unclaimed
        );
        devices.console.flush().unwrap();
        assert_eq!(devices.console.sink().as_slice(), b"ok!\n");
    }

    #[test]
    fn the_exit_device_ends_the_run_with_the_value_written() {
        let mut devices = Devices::new(Vec::new());
        assert_eq!(
            devices.pio_write(EXIT_PORT, &[0]).unwrap(),
            Claim::Finish(0)
        );
        assert_eq!(
            devices.pio_write(EXIT_PORT, &[7]).unwrap(),
            Claim::Finish(7)
        );
        // A 16-bit out: the byte at 0xF4 is the code, the one at 0xF5 nobody decodes.
        assert_eq!(
            devices.pio_write(EXIT_PORT, &[9, 1]).unwrap(),
            Claim::Finish(9)
        );
        let code = 0xDEAD_BEEF_u32.to_le_bytes();
        assert_eq!(
            devices.mmio_write(EXIT_MMIO, &code).unwrap(),
            Claim::Finish(0xDEAD_BEEF)
        );
        assert_eq!(
            devices.mmio_write(EXIT_MMIO, &[5]).unwrap(),
            Claim::Finish(5)
        );
        assert_eq!(
            devices.mmio_write(EXIT_MMIO + 1, &[5]).unwrap(),
            Claim::Unclaimed
        );
    }

    #[test]
    fn claims_combine_with_an_end_of_run_first() {
        use Claim::{Claimed, Finish, Unclaimed};
        assert_eq!(Unclaimed.and(Unclaimed), Unclaimed);
        assert_eq!(Unclaimed.and(Claimed), Claimed);
        assert_eq!(Claimed.and(Unclaimed), Claimed);
        assert_eq!(Claimed.and(Finish(3)), Finish(3));
        assert_eq!(Finish(4).and(Claimed), Finish(4));
    }
}
