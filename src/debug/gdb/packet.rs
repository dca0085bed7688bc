//! GDB remote serial protocol framing: `$payload#cs` packets, `+`/`-` acknowledgements, the
//! out-of-band interrupt byte `0x03`, and binary escaping (`}` then the byte XOR 0x20).
//!
//! ```text
//! gdb  -> stub   $m1000,4#8e          stub -> gdb   +             (unless no-ack mode)
//! stub -> gdb    $be1e108a#xx         gdb  -> stub  +
//! gdb  -> stub   0x03                 (Ctrl-C while the guest runs: stop it)
//! ```
//!
//! The checksum is the sum of the payload bytes modulo 256, two lower-case hex digits. Pure
//! code over bytes: the session feeds it what the socket read.

/// The byte gdb sends, outside any packet, to interrupt the running target.
pub const INTERRUPT: u8 = 0x03;

/// The largest packet payload the stub accepts and advertises (`PacketSize`, in hex there).
pub const MAX_PACKET: usize = 0x1000;

/// One unit of what gdb sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A packet whose checksum matched, its payload as sent.
    Packet(Vec<u8>),
    /// A packet whose checksum did not match (answered with `-` in ack mode).
    Corrupt,
    /// `0x03`.
    Interrupt,
    /// `+`.
    Ack,
    /// `-`: gdb asks for the last reply again.
    Nack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between packets.
    Idle,
    /// After `$`.
    Payload,
    /// After `#`, with this many checksum digits read.
    Checksum(u8),
}

/// Splits gdb's byte stream into [`Incoming`] units, one byte at a time.
#[derive(Debug)]
pub struct Decoder {
    state: State,
    payload: Vec<u8>,
    sum: u8,
    sent_sum: u8,
    overflow: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            state: State::Idle,
            payload: Vec::with_capacity(MAX_PACKET),
            sum: 0,
            sent_sum: 0,
            overflow: false,
        }
    }
}

impl Decoder {
    /// Takes the next byte; returns a unit when one is complete. A packet longer than
    /// [`MAX_PACKET`] is reported as [`Incoming::Corrupt`] (gdb was told the limit).
    pub fn push(&mut self, byte: u8) -> Option<Incoming> {
        match self.state {
            State::Idle => match byte {
                b'$' => {
                    self.state = State::Payload;
                    self.payload.clear();
                    self.sum = 0;
                    self.overflow = false;
                    None
                }
                INTERRUPT => Some(Incoming::Interrupt),
                b'+' => Some(Incoming::Ack),
                b'-' => Some(Incoming::Nack),
                // Noise between packets (a stray newline) is ignored, as gdbserver does.
                _ => None,
            },
            State::Payload => {
                if byte == b'#' {
                    self.state = State::Checksum(0);
                    self.sent_sum = 0;
                } else {
                    self.sum = self.sum.wrapping_add(byte);
                    if self.payload.len() < MAX_PACKET {
                        self.payload.push(byte);
                    } else {
                        self.overflow = true;
                    }
                }
                None
            }
            State::Checksum(read) => {
                let Some(digit) = hex_digit(byte) else {
                    self.state = State::Idle;
                    return Some(Incoming::Corrupt);
                };
                self.sent_sum = (self.sent_sum << 4) | digit;
                if read == 0 {
                    self.state = State::Checksum(1);
                    return None;
                }
                self.state = State::Idle;
                Some(if self.sent_sum == self.sum && !self.overflow {
                    Incoming::Packet(std::mem::take(&mut self.payload))
                } else {
                    Incoming::Corrupt
                })
            }
        }
    }
}

/// The value of one hex digit.
pub fn hex_digit(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        _ => None,
    }
}

/// Frames `payload` as `$payload#cs` into `out`, escaping `$ # } *` (so binary data, such
/// as `qXfer` contents, survives).
pub fn frame(payload: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.push(b'$');
    let mut sum = 0u8;
    for &byte in payload {
        let escaped: &[u8] = if matches!(byte, b'$' | b'#' | b'}' | b'*') {
            &[b'}', byte ^ 0x20]
        } else {
            std::slice::from_ref(&byte)
        };
        for &b in escaped {
            sum = sum.wrapping_add(b);
            out.push(b);
        }
    }
    out.push(b'#');
    push_hex(out, &[sum]);
}

/// Appends `bytes` as lower-case hex, two digits each.
pub fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        out.push(DIGITS[usize::from(byte >> 4)]);
        out.push(DIGITS[usize::from(byte & 0xF)]);
    }
}

/// Parses a hex number (gdb's addresses and lengths), at most 64 bits.
pub fn parse_hex(text: &[u8]) -> Option<u64> {
    if text.is_empty() || text.len() > 16 {
        return None;
    }
    text.iter().try_fold(0u64, |value, &byte| {
        Some(value << 4 | u64::from(hex_digit(byte)?))
    })
}

/// Parses pairs of hex digits into bytes.
pub fn parse_hex_bytes(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| Some(hex_digit(pair[0])? << 4 | hex_digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Vec<Incoming> {
        let mut decoder = Decoder::default();
        bytes.iter().filter_map(|&b| decoder.push(b)).collect()
    }

    #[test]
    fn packets_acks_and_interrupts_are_told_apart() {
        assert_eq!(
            decode(b"+$g#67\x03-$m1000,4#8e"),
            [
                Incoming::Ack,
                Incoming::Packet(b"g".to_vec()),
                Incoming::Interrupt,
                Incoming::Nack,
                Incoming::Packet(b"m1000,4".to_vec()),
            ]
        );
        assert_eq!(decode(b"$g#00"), [Incoming::Corrupt], "wrong checksum");
        assert_eq!(decode(b"$g#6x"), [Incoming::Corrupt], "not hex");
        let long = [b"$".as_slice(), &[b'a'; MAX_PACKET + 1], b"#00"].concat();
        assert!(matches!(decode(&long).as_slice(), [Incoming::Corrupt]));
    }

    #[test]
    fn frames_carry_a_checksum_and_escape_the_special_bytes() {
        let mut out = Vec::new();
        frame(b"OK", &mut out);
        assert_eq!(out, b"$OK#9a");
        frame(b"a#b", &mut out);
        assert_eq!(out, b"$a}\x03b#43");
        let packet = out.clone();
        // What gdb would unescape is what was framed; the checksum covers the escaped bytes.
        assert_eq!(decode(&packet), [Incoming::Packet(b"a}\x03b".to_vec())]);
    }

    #[test]
    fn hex_numbers_and_bytes() {
        assert_eq!(parse_hex(b"1000"), Some(0x1000));
        assert_eq!(parse_hex(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_hex(b"10000000000000000"), None);
        assert_eq!(parse_hex(b""), None);
        assert_eq!(parse_hex(b"12g"), None);
        assert_eq!(parse_hex_bytes(b"be1e"), Some(vec![0xBE, 0x1E]));
        assert_eq!(parse_hex_bytes(b"b"), None);
        let mut out = Vec::new();
        push_hex(&mut out, &[0, 0xAB]);
        assert_eq!(out, b"00ab");
    }
}
