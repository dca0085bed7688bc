//! The `com1` harness: the UART and the port bus against a model.

use super::Input;
use crate::devices::bus::OPEN_BUS;
use crate::devices::serial::{COM1_BASE, LSR_IDLE, PORTS};
use crate::devices::{Claim, DEBUG_CONSOLE_PORT, Devices, IoHandler, Serial};

/// What the UART should do, written as simply as possible.
#[derive(Debug, Default)]
struct Model {
    line_control: u8,
    output: Vec<u8>,
}

impl Model {
    fn read(&self, offset: u16) -> u8 {
        if offset == 5 { LSR_IDLE } else { 0 }
    }

    fn write(&mut self, offset: u16, value: u8) -> Option<u8> {
        match offset {
            0 if self.line_control & 0x80 == 0 => Some(value),
            3 => {
                self.line_control = value;
                None
            }
            _ => None,
        }
    }

    /// One byte on the port bus: COM1's registers, the debug console, or nothing.
    fn bus_read(&self, port: u16) -> Option<u8> {
        let offset = port.wrapping_sub(COM1_BASE);
        (offset < PORTS).then(|| self.read(offset))
    }

    fn bus_write(&mut self, port: u16, value: u8) -> bool {
        let offset = port.wrapping_sub(COM1_BASE);
        let output = if port == DEBUG_CONSOLE_PORT {
            Some(value)
        } else if offset < PORTS {
            self.write(offset, value)
        } else {
            return false;
        };
        self.output.extend(output);
        true
    }
}

/// Runs one input: a sequence of (operation, offset, byte) triples.
///
/// ```text
/// op % 4 == 0   Serial::read(offset % 8)
/// op % 4 == 1   Serial::write(offset % 8, byte)
/// op % 4 == 2   Serial::read/write (op bit 2) at the wide offset byte * 257: outside 0..8
/// op % 4 == 3   the port bus of Devices, size 1, 2 or 4 (op bits 3-4), in or out (op bit 2),
///               out data from the byte, at a port chosen by op bits 6-7: 0 and 1 give
///               COM1_BASE - 16 + offset, 2 gives 0xFFF0 + offset % 16 (so wide accesses wrap
///               past 0xFFFF), 3 gives 0xE7 + offset % 4 (around the debug console)
/// ```
///
/// Panics if a register read, a transmitted byte, a dispatch or the console output differs
/// from the model.
pub fn com1(input: &[u8]) {
    let mut input = Input::new(input);
    let mut serial = Serial::new();
    let mut serial_model = Model::default();
    let mut devices = Devices::new(Vec::new());
    let mut bus_model = Model::default();
    while !input.is_empty() {
        let (op, offset, byte) = (input.byte(), input.byte(), input.byte());
        match op % 4 {
            0 => {
                let offset = u16::from(offset % 8);
                assert_eq!(serial.read(offset), serial_model.read(offset));
            }
            1 => {
                let offset = u16::from(offset % 8);
                assert_eq!(serial.write(offset, byte), serial_model.write(offset, byte));
            }
            2 => {
                let wide = u16::from(offset) * 257;
                if op & 4 == 0 {
                    assert_eq!(serial.read(wide), serial_model.read(wide));
                } else {
                    assert_eq!(serial.write(wide, byte), serial_model.write(wide, byte));
                }
            }
            _ => bus_access(&mut devices, &mut bus_model, op, offset, byte),
        }
    }
    devices.console.flush().expect("a Vec never fails");
    assert_eq!(
        devices.console.sink().as_slice(),
        bus_model.output.as_slice()
    );
}

fn bus_access(devices: &mut Devices<Vec<u8>>, model: &mut Model, op: u8, offset: u8, byte: u8) {
    let port = match op >> 6 {
        0 | 1 => COM1_BASE - 16 + u16::from(offset),
        2 => 0xFFF0 + u16::from(offset % 16),
        _ => DEBUG_CONSOLE_PORT - 2 + u16::from(offset % 4),
    };
    let size = [1, 2, 4, 1][usize::from((op >> 3) & 3)];
    let ports = (0..size).map(|i: u16| port.wrapping_add(i));
    if op & 4 == 0 {
        let mut data = [OPEN_BUS; 4];
        let data = &mut data[..usize::from(size)];
        let dispatch = devices.pio_read(port, data).expect("reads never fail");
        let expected: Vec<Option<u8>> = ports.map(|p| model.bus_read(p)).collect();
        for (got, want) in data.iter().zip(&expected) {
            assert_eq!(*got, want.unwrap_or(OPEN_BUS), "port {port:#x} size {size}");
        }
        let claimed = expected.iter().any(Option::is_some);
        assert_eq!(dispatch == Claim::Claimed, claimed);
    } else {
        let data: Vec<u8> = (0..size).map(|i| byte.wrapping_add(i as u8)).collect();
        let dispatch = devices.pio_write(port, &data).expect("a Vec never fails");
        let claimed = ports
            .zip(&data)
            .fold(false, |any, (p, &b)| model.bus_write(p, b) | any);
        assert_eq!(dispatch == Claim::Claimed, claimed);
    }
}
