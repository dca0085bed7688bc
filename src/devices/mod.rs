//! Devices: who answers the guest's port and MMIO accesses.
//!
//! The run loop hands each access to an [`IoHandler`] one element at a time (a `rep insb` of
//! 1024 bytes is 1024 calls of one byte), after filling read buffers with `0xFF`, the value an
//! open bus reads as. A handler that does not claim an access leaves that filler in place, so
//! stale bytes from an earlier exit can never reach the guest.
//!
//! [`Devices`] is the default set: the debug console at port `0xE9` and COM1 at `0x3F8`.

pub mod coalesced;
pub mod console;
pub mod pic;
pub mod serial;

use std::io::{self, Write};

use crate::exit::Io;

pub use console::Console;
pub use serial::Serial;

/// Port `0xE9`: the Bochs/QEMU debug console; every byte written is output.
pub const DEBUG_CONSOLE_PORT: u16 = 0xE9;

/// The address space of a [`WriteOnlyZone`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Space {
    /// I/O ports (`in`/`out`).
    Port,
    /// Guest physical addresses (MMIO).
    Memory,
}

/// A range a device declares write-only and order-insensitive: reading it means nothing (or
/// is answered as usual, by an exit), and the device does not care *when* a write arrives, as
/// long as writes arrive in order and before anything the guest does after them that needs a
/// reply. The kernel may then record writes there in the coalesced ring instead of exiting
/// (`KVM_REGISTER_COALESCED_MMIO`); the run loop hands them to the device, in order, right
/// after `KVM_RUN` returns and before it handles the exit. See [`crate::devices::coalesced`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteOnlyZone {
    /// Ports or memory.
    pub space: Space,
    /// First port or guest physical address.
    pub start: u64,
    /// Length in ports or bytes, at least 1.
    pub len: u32,
}

/// The debug console takes bytes and answers nothing: its port is a write-only zone.
const DEVICES_WRITE_ONLY: [WriteOnlyZone; 1] = [WriteOnlyZone {
    space: Space::Port,
    start: DEBUG_CONSOLE_PORT as u64,
    len: 1,
}];

/// What a handler did with an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// A device took it (and, for a read, filled the data).
    Claimed,
    /// Nothing decodes that address: a read keeps the all-ones filler, a write is dropped.
    Unclaimed,
}

/// Answers the guest's port and MMIO accesses.
pub trait IoHandler {
    /// An `in` of `data.len()` bytes (1, 2 or 4) at `port`; `data` arrives as all-ones.
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Dispatch>;
    /// An `out` of `data` at `port`.
    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Dispatch>;
    /// A read of `data.len()` bytes (1..=8) at guest physical address `addr`; `data` arrives
    /// as all-ones.
    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> io::Result<Dispatch>;
    /// A write of `data` (1..=8 bytes) at guest physical address `addr`.
    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Dispatch>;

    /// An `rdmsr` of MSR `index` that KVM forwarded (`KVM_EXIT_X86_RDMSR`): a device that owns
    /// the MSR sets `value` and claims it. Unclaimed (the default), the guest gets #GP.
    fn msr_read(&mut self, _index: u32, _value: &mut u64) -> io::Result<Dispatch> {
        Ok(Dispatch::Unclaimed)
    }

    /// A `wrmsr` of `value` to MSR `index` that KVM forwarded (`KVM_EXIT_X86_WRMSR`).
    /// Unclaimed (the default), the guest gets #GP.
    fn msr_write(&mut self, _index: u32, _value: u64) -> io::Result<Dispatch> {
        Ok(Dispatch::Unclaimed)
    }

    /// One `KVM_EXIT_IO`: `io.count` accesses of `io.size` bytes at `io.port`. The default
    /// hands them to [`IoHandler::pio_read`] or [`IoHandler::pio_write`] one at a time
    /// ([`crate::run_loop::dispatch_io`]); a wrapper with work to do once per exit rather than
    /// once per access overrides it ([`crate::machine::supervisor::SharedHandler`] takes its lock once
    /// for a whole batch of a `rep insb`, not 1024 times).
    fn io_exit(&mut self, io: &mut Io<'_>) -> io::Result<Dispatch> {
        crate::run_loop::dispatch_io(io, self)
    }

    /// The ranges this handler declares write-only and order-insensitive, whose writes may be
    /// coalesced ([`WriteOnlyZone`]). None unless a handler says so.
    fn write_only_zones(&self) -> &[WriteOnlyZone] {
        &[]
    }
}

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

    fn write_byte(&mut self, port: u16, value: u8) -> io::Result<Dispatch> {
        let output = if port == DEBUG_CONSOLE_PORT {
            Some(value)
        } else if let Some(offset) = Self::com1_offset(port) {
            self.com1.write(offset, value)
        } else {
            return Ok(Dispatch::Unclaimed);
        };
        if let Some(byte) = output {
            self.console.push(byte)?;
        }
        Ok(Dispatch::Claimed)
    }
}

/// Combines the dispatch of the bytes of one access: claimed if any byte was.
fn either(a: Dispatch, b: Dispatch) -> Dispatch {
    if a == Dispatch::Claimed { a } else { b }
}

impl<W: Write> IoHandler for Devices<W> {
    /// A wide access reaches consecutive ports, byte `i` at `port + i`, as on x86 hardware.
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Dispatch> {
        let mut dispatch = Dispatch::Unclaimed;
        for (i, byte) in (0u16..).zip(data.iter_mut()) {
            if let Some(value) = self.read_byte(port.wrapping_add(i)) {
                *byte = value;
                dispatch = Dispatch::Claimed;
            }
        }
        Ok(dispatch)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Dispatch> {
        let mut dispatch = Dispatch::Unclaimed;
        for (i, &byte) in (0u16..).zip(data) {
            dispatch = either(dispatch, self.write_byte(port.wrapping_add(i), byte)?);
        }
        Ok(dispatch)
    }

    fn mmio_read(&mut self, _addr: u64, _data: &mut [u8]) -> io::Result<Dispatch> {
        Ok(Dispatch::Unclaimed)
    }

    fn mmio_write(&mut self, _addr: u64, _data: &[u8]) -> io::Result<Dispatch> {
        Ok(Dispatch::Unclaimed)
    }

    /// Port `0xE9`. Not COM1: its transmit register shares a port with the receive buffer
    /// and the divisor latch, and the guest polls the line status in between.
    fn write_only_zones(&self) -> &[WriteOnlyZone] {
        &DEVICES_WRITE_ONLY
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_console_and_com1_print_and_the_rest_is_open_bus() {
        let mut devices = Devices::new(Vec::new());
        assert_eq!(devices.pio_write(0xE9, b"h").unwrap(), Dispatch::Claimed);
        assert_eq!(devices.pio_write(0x3F8, b"i").unwrap(), Dispatch::Claimed);
        assert_eq!(devices.pio_write(0x510, b"x").unwrap(), Dispatch::Unclaimed);
        let mut lsr = [0xFF];
        assert_eq!(
            devices.pio_read(0x3FD, &mut lsr).unwrap(),
            Dispatch::Claimed
        );
        assert_eq!(lsr, [0x60]);
        let mut open = [0xFF; 4];
        assert_eq!(
            devices.pio_read(0x1234, &mut open).unwrap(),
            Dispatch::Unclaimed
        );
        assert_eq!(open, [0xFF; 4]);
        // A 16-bit out to 0xE9 prints its low byte; the high byte goes to 0xEA, which is open.
        devices.pio_write(0xE9, b"!?").unwrap();
        devices.console.flush().unwrap();
        assert_eq!(devices.console.sink().as_slice(), b"hi!");
    }
}
