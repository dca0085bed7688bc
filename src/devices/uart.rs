//! The platform UART of the arm64 and riscv64 guests, reached by MMIO: a PL011 on arm64, an
//! NS16550 on riscv64, each at the address QEMU's `virt` machine gives it, so a guest written
//! for that machine's console prints here too.
//!
//! | target | UART | base | registers rawkvm models |
//! |---|---|---|---|
//! | aarch64 | PL011 | `0x0900_0000` (4 KiB) | `UARTDR` (+0x00): a written byte is output; `UARTFR` (+0x18) reads `0x90` (TXFE, RXFE: never full) |
//! | riscv64 | NS16550 | `0x1000_0000` (8 bytes) | the COM1 model of [`super::serial`]: THR (+0) output, LSR (+5) reads `0x60` |
//!
//! Every other register of the range reads 0 and ignores writes. x86 has no platform UART
//! (its console is COM1 and port `0xE9`). Compiled on every host, so the models are tested
//! everywhere; [`PLATFORM_UART`] picks the target's.

use super::serial::{PORTS, Serial};

/// Which UART the platform has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartKind {
    /// Arm PrimeCell UART (PL011).
    Pl011,
    /// 16550-compatible UART with byte-wide registers.
    Ns16550,
}

/// A UART at a guest physical address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlatformUart {
    /// The model.
    pub kind: UartKind,
    /// Guest physical address of its first register.
    pub base: u64,
}

/// QEMU virt's PL011 (arm64).
pub const PL011: PlatformUart = PlatformUart {
    kind: UartKind::Pl011,
    base: 0x0900_0000,
};
/// QEMU virt's NS16550 (riscv64).
pub const NS16550: PlatformUart = PlatformUart {
    kind: UartKind::Ns16550,
    base: 0x1000_0000,
};

/// The target's platform UART.
#[cfg(target_arch = "aarch64")]
pub const PLATFORM_UART: Option<PlatformUart> = Some(PL011);
/// The target's platform UART.
#[cfg(target_arch = "riscv64")]
pub const PLATFORM_UART: Option<PlatformUart> = Some(NS16550);
/// The target's platform UART: none on x86, whose console is COM1.
#[cfg(not(any(target_arch = "aarch64", target_arch = "riscv64")))]
pub const PLATFORM_UART: Option<PlatformUart> = None;

/// PL011 data register.
const PL011_DR: u64 = 0x00;
/// PL011 flag register.
const PL011_FR: u64 = 0x18;
/// `UARTFR` as rawkvm answers it: TXFE (bit 7) and RXFE (bit 4), transmit FIFO empty and
/// nothing received.
pub const PL011_FR_IDLE: u32 = 0x90;

impl PlatformUart {
    /// Bytes of guest physical address space the UART decodes.
    pub const fn size(&self) -> u64 {
        match self.kind {
            UartKind::Pl011 => 0x1000,
            UartKind::Ns16550 => PORTS as u64,
        }
    }

    /// The register offset `addr` falls on, if the UART decodes it.
    pub fn offset(&self, addr: u64) -> Option<u64> {
        addr.checked_sub(self.base)
            .filter(|&offset| offset < self.size())
    }

    /// A read of `data.len()` bytes at register offset `offset`: byte `i` is byte `i` of the
    /// little-endian register space from `offset` on.
    pub fn read(&self, state: &Serial, offset: u64, data: &mut [u8]) {
        for (at, byte) in (offset..).zip(data.iter_mut()) {
            *byte = match self.kind {
                UartKind::Pl011 if at & !3 == PL011_FR => {
                    PL011_FR_IDLE.to_le_bytes()[(at & 3) as usize]
                }
                UartKind::Pl011 => 0,
                UartKind::Ns16550 => u16::try_from(at).map_or(0, |at| state.read(at)),
            };
        }
    }

    /// A write of `data` at register offset `offset`; `output` gets each byte transmitted.
    pub fn write<E>(
        &self,
        state: &mut Serial,
        offset: u64,
        data: &[u8],
        mut output: impl FnMut(u8) -> Result<(), E>,
    ) -> Result<(), E> {
        match self.kind {
            // A store of any width to UARTDR transmits its low byte (bits 7:0 are the data).
            UartKind::Pl011 if offset == PL011_DR => match data.first() {
                Some(&byte) => output(byte),
                None => Ok(()),
            },
            UartKind::Pl011 => Ok(()),
            UartKind::Ns16550 => {
                for (at, &value) in (offset..).zip(data) {
                    if let Some(byte) = u16::try_from(at).ok().and_then(|at| state.write(at, value))
                    {
                        output(byte)?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `data` at `offset` of `uart` and returns what it transmitted.
    fn transmitted(uart: PlatformUart, state: &mut Serial, offset: u64, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        uart.write(state, offset, data, |byte| -> Result<(), ()> {
            out.push(byte);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn the_pl011_prints_its_data_register_and_is_never_full() {
        let mut state = Serial::new();
        assert_eq!(PL011.offset(0x0900_0000), Some(0));
        assert_eq!(PL011.offset(0x0900_1000), None);
        assert_eq!(PL011.offset(0x08FF_FFFF), None);
        let mut flags = [0xFF; 4];
        PL011.read(&state, PL011_FR, &mut flags);
        assert_eq!(flags, [0x90, 0, 0, 0]);
        let mut other = [0xFF; 4];
        PL011.read(&state, 0x30, &mut other);
        assert_eq!(other, [0; 4]);
        assert_eq!(transmitted(PL011, &mut state, 0, b"h"), b"h");
        assert_eq!(transmitted(PL011, &mut state, 0, &[b'i', 0, 0, 0]), b"i");
        assert_eq!(transmitted(PL011, &mut state, 0x24, b"x"), b"");
    }

    #[test]
    fn the_ns16550_is_the_com1_model_by_mmio() {
        let mut state = Serial::new();
        let mut lsr = [0xFF];
        NS16550.read(&state, 5, &mut lsr);
        assert_eq!(lsr, [0x60]);
        assert_eq!(NS16550.offset(0x1000_0000), Some(0));
        assert_eq!(NS16550.offset(0x1000_0008), None);
        assert_eq!(transmitted(NS16550, &mut state, 0, b"A"), b"A");
        // With the divisor latch open (LCR bit 7), offset 0 is the divisor, not output.
        assert_eq!(transmitted(NS16550, &mut state, 3, &[0x80]), b"");
        assert_eq!(transmitted(NS16550, &mut state, 0, b"B"), b"");
    }
}
