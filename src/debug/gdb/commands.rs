//! Answers gdb's packets: registers, memory, breakpoints, resuming, the target description.
//! Pure protocol logic over a [`Target`] (the vCPU and its RAM in a session, a fake in the
//! tests); resuming is handed back to the session as an [`Action`].
//!
//! ```text
//! qSupported:...        PacketSize=1000;qXfer:features:read+;QStartNoAckMode+;hwbreak+
//! ?                     T05thread:01;           why the guest is stopped
//! g / G                 all registers, in the target description's order, little-endian
//! p n / P n=v           one register
//! m a,l / M a,l:data    guest memory (physical = linear: no paging in these modes)
//! c / s / vCont;c / vCont;s     resume: the session runs the vCPU and sends the stop reply
//! Z0/Z1 a,k / z0/z1     hardware breakpoint in DR0-3 (Z0 too: int3 is not intercepted here)
//! Z2-Z4                 refused: data watchpoints never fire on kvm_pvm
//! k / D                 end the session (kill / detach)
//! anything else         the empty reply: "not supported"
//! ```

use crate::debug::gdb::packet::{MAX_PACKET, parse_hex, parse_hex_bytes, push_hex};
use crate::debug::gdb::target_xml::{Layout, RegisterDesc, Source};
use crate::debug::registers::RegisterFile;

/// What the stub needs from the machine it debugs.
pub trait Target {
    /// The vCPU's registers now.
    fn registers(&mut self) -> Result<RegisterFile, String>;
    /// Writes `file` back (`before` is what [`Target::registers`] returned).
    fn set_registers(&mut self, file: &RegisterFile, before: &RegisterFile) -> Result<(), String>;
    /// Reads guest physical memory; `false` if any of it is outside RAM.
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> bool;
    /// Writes guest physical memory; `false` if any of it is outside RAM.
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> bool;
}

/// How the session resumes the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Run until a breakpoint, Ctrl-C, or the end.
    Continue,
    /// Execute one instruction.
    Step,
}

/// What the session does with a packet's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this reply.
    Reply(Vec<u8>),
    /// Resume the guest, then send the stop reply.
    Resume(Resume),
    /// `k`: end the session, no reply.
    Kill,
    /// `D`: reply `OK`, end the session, let the guest run on undebugged.
    Detach,
}

/// Why the guest stopped (or ended), for the stop reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// A single step completed (SIGTRAP).
    Step,
    /// A hardware breakpoint hit (SIGTRAP, `hwbreak`).
    Breakpoint,
    /// Ctrl-C from gdb (SIGINT).
    Interrupted,
    /// The guest halted: the "process" exited with this status.
    Exited(u8),
    /// The guest faulted: the "process" was terminated by this signal.
    Terminated(u8),
}

impl StopReason {
    /// The stop-reply packet (`T05thread:01;`, `W00`, ...).
    pub fn reply(self) -> Vec<u8> {
        match self {
            StopReason::Step => b"T05thread:01;".to_vec(),
            StopReason::Breakpoint => b"T05hwbreak:;thread:01;".to_vec(),
            StopReason::Interrupted => b"T02thread:01;".to_vec(),
            StopReason::Exited(code) => hex_packet(b'W', code),
            StopReason::Terminated(signal) => hex_packet(b'X', signal),
        }
    }
}

fn hex_packet(letter: u8, value: u8) -> Vec<u8> {
    let mut out = vec![letter];
    push_hex(&mut out, &[value]);
    out
}

/// How many hardware breakpoints x86 has: DR0-DR3.
pub const HW_BREAKPOINTS: usize = 4;

/// The breakpoints gdb set, each in one of DR0-DR3 (`Z0` and `Z1` share them).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Breakpoints {
    slots: [Option<u64>; HW_BREAKPOINTS],
}

impl Breakpoints {
    /// Puts a breakpoint at linear address `addr` in a free slot; `false` if all are taken.
    /// A second breakpoint at the same address shares the slot.
    pub fn insert(&mut self, addr: u64) -> bool {
        if self.slots.contains(&Some(addr)) {
            return true;
        }
        match self.slots.iter_mut().find(|slot| slot.is_none()) {
            Some(slot) => {
                *slot = Some(addr);
                true
            }
            None => false,
        }
    }

    /// Removes the breakpoint at `addr`, if there is one.
    pub fn remove(&mut self, addr: u64) {
        for slot in &mut self.slots {
            if *slot == Some(addr) {
                *slot = None;
            }
        }
    }

    /// Whether a breakpoint is set at `addr`.
    pub fn contains(&self, addr: u64) -> bool {
        self.slots.contains(&Some(addr))
    }

    /// Whether any is set.
    pub fn any(&self) -> bool {
        self.slots.iter().any(Option::is_some)
    }

    /// `kvm_guest_debug.arch.debugreg`: DR0-3 the addresses, DR7 a local-enable bit (L0..L3)
    /// per used slot; R/W and LEN stay 00 (execute, 1 byte).
    pub fn debugreg(&self) -> [u64; 8] {
        let mut regs = [0; 8];
        for (i, slot) in self.slots.iter().enumerate() {
            if let Some(addr) = slot {
                regs[i] = *addr;
                regs[7] |= 1 << (2 * i);
            }
        }
        regs
    }
}

/// The protocol state of one gdb connection.
#[derive(Debug)]
pub struct Stub {
    /// gdb and the stub stopped acknowledging packets (`QStartNoAckMode`).
    pub no_ack: bool,
    /// gdb accepts `E.text` error replies (it said `error-message+` in `qSupported`).
    error_messages: bool,
    /// The breakpoints set.
    pub breakpoints: Breakpoints,
    layout: &'static Layout,
    xml: String,
    /// Explanations of plain `Exx` replies, for the console (gdb itself cannot show them
    /// without `error-message+`); the session prints and clears them.
    pub notes: Vec<String>,
}

/// gdb's errno-style code for a bad address.
const EFAULT: u8 = 0x0E;
/// For a request that cannot be honoured.
const EINVAL: u8 = 0x16;
/// For "no room": no free hardware breakpoint.
const ENOSPC: u8 = 0x1C;

impl Stub {
    /// A stub showing registers as `layout`.
    pub fn new(layout: &'static Layout) -> Stub {
        Stub {
            no_ack: false,
            error_messages: false,
            breakpoints: Breakpoints::default(),
            layout,
            xml: layout.xml(),
            notes: Vec::new(),
        }
    }

    /// The answer to `packet`.
    pub fn handle(&mut self, packet: &[u8], target: &mut dyn Target) -> Action {
        let reply = |text: &[u8]| Action::Reply(text.to_vec());
        let (&first, rest) = match packet.split_first() {
            Some(split) => split,
            None => return reply(b""),
        };
        match first {
            b'?' => Action::Reply(StopReason::Step.reply()),
            b'g' => self.read_registers(target),
            b'G' => self.write_registers(rest, target),
            b'p' => self.read_register(rest, target),
            b'P' => self.write_register(rest, target),
            b'm' => self.read_memory(rest, target),
            b'M' => self.write_memory(rest, target),
            b'c' | b's' | b'C' | b'S' => self.resume(first, rest, target),
            b'v' => self.v_packet(packet),
            b'Z' | b'z' => self.breakpoint(first == b'Z', rest),
            b'k' => Action::Kill,
            b'D' => Action::Detach,
            // One thread: whatever thread gdb selects or asks about is it.
            b'H' | b'T' => reply(b"OK"),
            b'q' | b'Q' => self.query(packet),
            _ => reply(b""),
        }
    }

    /// An error reply: `E.text` where gdb understands it, else `Exx` with `text` kept in
    /// [`Stub::notes`].
    fn error(&mut self, code: u8, text: String) -> Action {
        if self.error_messages {
            return Action::Reply(format!("E.{text}").into_bytes());
        }
        self.notes.push(text);
        Action::Reply(hex_packet(b'E', code))
    }

    fn registers_or_error(&mut self, target: &mut dyn Target) -> Result<RegisterFile, Action> {
        target
            .registers()
            .map_err(|text| self.error(EINVAL, format!("cannot read the registers: {text}")))
    }

    fn read_registers(&mut self, target: &mut dyn Target) -> Action {
        let file = match self.registers_or_error(target) {
            Ok(file) => file,
            Err(action) => return action,
        };
        let mut out = Vec::with_capacity(512);
        for desc in self.layout.registers {
            push_register(&mut out, desc, &file);
        }
        Action::Reply(out)
    }

    fn write_registers(&mut self, data: &[u8], target: &mut dyn Target) -> Action {
        let before = match self.registers_or_error(target) {
            Ok(file) => file,
            Err(action) => return action,
        };
        let mut file = before;
        let mut rest = data;
        for desc in self.layout.registers {
            let len = (desc.bits / 4) as usize;
            if rest.len() < len {
                break;
            }
            let (value, tail) = rest.split_at(len);
            rest = tail;
            if let (Source::File(register), Some(value)) = (desc.source, parse_le(value)) {
                file.set(register, value);
            }
        }
        self.commit(&file, &before, target)
    }

    fn commit(
        &mut self,
        file: &RegisterFile,
        before: &RegisterFile,
        target: &mut dyn Target,
    ) -> Action {
        match target.set_registers(file, before) {
            Ok(()) => Action::Reply(b"OK".to_vec()),
            Err(text) => self.error(EINVAL, format!("cannot write the registers: {text}")),
        }
    }

    fn register_desc(&mut self, number: &[u8]) -> Result<&'static RegisterDesc, Action> {
        let layout = self.layout;
        parse_hex(number)
            .and_then(|n| layout.registers.get(usize::try_from(n).ok()?))
            .ok_or_else(|| {
                self.error(
                    EINVAL,
                    format!(
                        "no register {} in the {} layout",
                        String::from_utf8_lossy(number),
                        layout.architecture
                    ),
                )
            })
    }

    fn read_register(&mut self, number: &[u8], target: &mut dyn Target) -> Action {
        let desc = match self.register_desc(number) {
            Ok(desc) => desc,
            Err(action) => return action,
        };
        match self.registers_or_error(target) {
            Ok(file) => {
                let mut out = Vec::new();
                push_register(&mut out, desc, &file);
                Action::Reply(out)
            }
            Err(action) => action,
        }
    }

    fn write_register(&mut self, args: &[u8], target: &mut dyn Target) -> Action {
        let Some((number, value)) = split_at_byte(args, b'=') else {
            return self.error(EINVAL, "P needs n=value".into());
        };
        let desc = match self.register_desc(number) {
            Ok(desc) => desc,
            Err(action) => return action,
        };
        let before = match self.registers_or_error(target) {
            Ok(file) => file,
            Err(action) => return action,
        };
        let mut file = before;
        match (desc.source, parse_le(value)) {
            (Source::File(register), Some(value)) => file.set(register, value),
            // The x87 registers are not kept: a write to one changes nothing.
            (Source::Unavailable, _) => return Action::Reply(b"OK".to_vec()),
            (_, None) => return self.error(EINVAL, "P: the value is not hex".into()),
        }
        self.commit(&file, &before, target)
    }

    fn read_memory(&mut self, args: &[u8], target: &mut dyn Target) -> Action {
        let Some((addr, len)) = parse_range(args) else {
            return self.error(EINVAL, "m needs addr,length in hex".into());
        };
        // Two hex digits per byte must fit in a packet.
        let len = len.min(MAX_PACKET as u64 / 2) as usize;
        let mut buf = vec![0u8; len];
        if !target.read_memory(addr, &mut buf) {
            return self.error(EFAULT, outside_ram("read", addr, len));
        }
        let mut out = Vec::with_capacity(2 * len);
        push_hex(&mut out, &buf);
        Action::Reply(out)
    }

    fn write_memory(&mut self, args: &[u8], target: &mut dyn Target) -> Action {
        let parsed = split_at_byte(args, b':').and_then(|(range, data)| {
            let (addr, len) = parse_range(range)?;
            let data = parse_hex_bytes(data)?;
            (data.len() as u64 == len).then_some((addr, data))
        });
        let Some((addr, data)) = parsed else {
            return self.error(EINVAL, "M needs addr,length:bytes in hex".into());
        };
        if !target.write_memory(addr, &data) {
            return self.error(EFAULT, outside_ram("write", addr, data.len()));
        }
        Action::Reply(b"OK".to_vec())
    }

    /// `c [addr]`, `s [addr]`, `C sig[;addr]`, `S sig[;addr]`: resume, at `addr` if given
    /// (the signal is ignored: there is no guest process to deliver it to).
    fn resume(&mut self, letter: u8, args: &[u8], target: &mut dyn Target) -> Action {
        let addr = match letter {
            b'c' | b's' => args,
            _ => split_at_byte(args, b';').map_or(&[][..], |(_, addr)| addr),
        };
        if !addr.is_empty() {
            let Some(addr) = parse_hex(addr) else {
                return self.error(EINVAL, "resume address is not hex".into());
            };
            let before = match self.registers_or_error(target) {
                Ok(file) => file,
                Err(action) => return action,
            };
            let mut file = before;
            file.rip = addr;
            if let Err(text) = target.set_registers(&file, &before) {
                return self.error(EINVAL, format!("cannot set the resume address: {text}"));
            }
        }
        Action::Resume(if matches!(letter, b's' | b'S') {
            Resume::Step
        } else {
            Resume::Continue
        })
    }

    /// `vCont?`, `vCont;ACTION[:thread][;...]` (one thread: the first action counts),
    /// `vMustReplyEmpty` and the rest: empty.
    fn v_packet(&mut self, packet: &[u8]) -> Action {
        if packet == b"vCont?" {
            return Action::Reply(b"vCont;c;C;s;S".to_vec());
        }
        let Some(actions) = packet.strip_prefix(b"vCont;") else {
            return Action::Reply(Vec::new());
        };
        match actions.first() {
            Some(b'c' | b'C') => Action::Resume(Resume::Continue),
            Some(b's' | b'S') => Action::Resume(Resume::Step),
            _ => self.error(
                EINVAL,
                format!(
                    "vCont action {:?} is not supported (c, C, s, S are)",
                    String::from_utf8_lossy(actions)
                ),
            ),
        }
    }

    fn breakpoint(&mut self, insert: bool, args: &[u8]) -> Action {
        let parsed = split_at_byte(args, b',').and_then(|(kind, rest)| {
            let (addr, _size) = split_at_byte(rest, b',').unwrap_or((rest, b""));
            Some((kind, parse_hex(addr)?))
        });
        let Some((kind, addr)) = parsed else {
            return self.error(EINVAL, "Z/z needs type,addr,kind".into());
        };
        match kind {
            b"0" | b"1" if !insert => {
                self.breakpoints.remove(addr);
                Action::Reply(b"OK".to_vec())
            }
            b"0" | b"1" => {
                if self.breakpoints.insert(addr) {
                    return Action::Reply(b"OK".to_vec());
                }
                let what = if kind == b"0" {
                    "software breakpoints are hardware ones here (kvm_pvm does not intercept \
                     int3), and"
                } else {
                    "hardware breakpoints:"
                };
                self.error(
                    ENOSPC,
                    format!(
                        "no breakpoint at {addr:#x}: {what} all {HW_BREAKPOINTS} debug registers \
                         DR0-DR3 are in use; delete one first"
                    ),
                )
            }
            b"2" | b"3" | b"4" => self.error(
                EINVAL,
                format!(
                    "no watchpoint at {addr:#x}: data watchpoints never fire on this KVM backend \
                     (measured on kvm_pvm), so rawkvm refuses them rather than never stopping"
                ),
            ),
            _ => Action::Reply(Vec::new()),
        }
    }

    fn query(&mut self, packet: &[u8]) -> Action {
        let reply = |text: &[u8]| Action::Reply(text.to_vec());
        if let Some(features) = packet.strip_prefix(b"qSupported") {
            self.error_messages = features
                .split(|&b| b == b';' || b == b':')
                .any(|feature| feature == b"error-message+");
            return Action::Reply(
                format!(
                    "PacketSize={MAX_PACKET:x};qXfer:features:read+;QStartNoAckMode+;hwbreak+;\
                     vContSupported+"
                )
                .into_bytes(),
            );
        }
        if let Some(args) = packet.strip_prefix(b"qXfer:features:read:") {
            return self.read_features(args);
        }
        match packet {
            b"QStartNoAckMode" => {
                self.no_ack = true;
                reply(b"OK")
            }
            // The guest was started for this session: quitting gdb kills it.
            b"qAttached" => reply(b"0"),
            b"qC" => reply(b"QC01"),
            b"qfThreadInfo" => reply(b"m01"),
            b"qsThreadInfo" => reply(b"l"),
            _ => reply(b""),
        }
    }

    /// `qXfer:features:read:target.xml:offset,length`: `m` + a chunk, or `l` + the last one.
    fn read_features(&mut self, args: &[u8]) -> Action {
        let Some((annex, range)) = split_at_byte(args, b':') else {
            return self.error(EINVAL, "qXfer needs annex:offset,length".into());
        };
        if annex != b"target.xml" {
            return self.error(
                EINVAL,
                format!("no feature file {:?}", String::from_utf8_lossy(annex)),
            );
        }
        let Some((offset, len)) = parse_range(range) else {
            return self.error(EINVAL, "qXfer needs offset,length in hex".into());
        };
        let xml = self.xml.as_bytes();
        let start = usize::try_from(offset).unwrap_or(usize::MAX).min(xml.len());
        let len = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(MAX_PACKET - 1);
        let end = start.saturating_add(len).min(xml.len());
        let mut out = vec![if end == xml.len() { b'l' } else { b'm' }];
        out.extend_from_slice(&xml[start..end]);
        Action::Reply(out)
    }
}

/// Appends one register's value, little-endian hex (or `xx` per byte if unavailable).
fn push_register(out: &mut Vec<u8>, desc: &RegisterDesc, file: &RegisterFile) {
    let bytes = (desc.bits / 8) as usize;
    match desc.source {
        Source::File(register) => push_hex(out, &file.get(register).to_le_bytes()[..bytes]),
        Source::Unavailable => out.extend(std::iter::repeat_n(b'x', 2 * bytes)),
    }
}

/// A little-endian hex value of up to 8 bytes (longer ones keep their low 8).
fn parse_le(hex: &[u8]) -> Option<u64> {
    let bytes = parse_hex_bytes(hex)?;
    let mut value = [0u8; 8];
    for (slot, byte) in value.iter_mut().zip(bytes) {
        *slot = byte;
    }
    Some(u64::from_le_bytes(value))
}

fn split_at_byte(text: &[u8], separator: u8) -> Option<(&[u8], &[u8])> {
    let at = text.iter().position(|&b| b == separator)?;
    Some((&text[..at], &text[at + 1..]))
}

/// `addr,length` in hex.
fn parse_range(text: &[u8]) -> Option<(u64, u64)> {
    let (addr, len) = split_at_byte(text, b',')?;
    Some((parse_hex(addr)?, parse_hex(len)?))
}

fn outside_ram(what: &str, addr: u64, len: usize) -> String {
    format!(
        "cannot {what} {len} bytes at {addr:#x}: not all of it is guest RAM (addresses are \
         guest physical; real mode: segment * 16 + offset)"
    )
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
