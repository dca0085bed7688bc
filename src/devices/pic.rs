//! A user-space 8259 pair (`--irqchip user`): the master at ports `0x20`/`0x21`, the slave at
//! `0xA0`/`0xA1` cascaded on master pin 2, as a PC has them.
//!
//! ```text
//! device thread:  UserPic::raise(irq)     IRR |= 1 << irq (an edge), kick the vCPU
//! vCPU thread, after every exit (run_loop):
//!     if ready_for_interrupt_injection && if_flag && a vector is pending:
//!         ioctl(vcpu, KVM_INTERRUPT, &{ irq: vector })   IRR -> ISR
//!     run->request_interrupt_window = whether one is (still) pending
//! guest:          out 0x20, 0x20           non-specific EOI: clears the highest ISR bit
//! ```
//!
//! Injecting at *any* exit that reports the guest ready, not only at
//! `KVM_EXIT_IRQ_WINDOW_OPEN`, matters on this project's hosts: there the window exit comes
//! only at the end of a ~1024-instruction emulation batch, so a VMM waiting for it starves
//! its guest. The window is requested only while something is pending, so an idle controller
//! costs no exits.
//!
//! What is modelled: ICW1-ICW4 (vector base, cascade, auto-EOI), OCW1 (the mask), OCW2
//! (non-specific and specific EOI), OCW3 (read IRR or ISR), edge-triggered lines and fixed
//! priority (IRQ 0 highest; the slave's lines at master pin 2's priority). Not modelled:
//! rotation, special mask mode, polling, level triggering.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::devices::bus::{Claim, IoHandler, WriteOnlyZone, dispatch_io};
use crate::exit::Io;
use crate::kvm::vcpu::StopHandle;

/// The master's command and data ports.
pub const MASTER_PORTS: [u16; 2] = [0x20, 0x21];
/// The slave's command and data ports.
pub const SLAVE_PORTS: [u16; 2] = [0xA0, 0xA1];
/// The master pin the slave is cascaded on.
const CASCADE_PIN: u8 = 2;

/// Which initialisation word a chip expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    /// Initialised: data-port writes are OCW1 (the mask).
    Ready,
    /// After ICW1: the vector base.
    Icw2,
    /// After ICW2: the cascade word.
    Icw3,
    /// After ICW3 (or ICW2 when single): ICW4.
    Icw4,
}

impl Init {
    /// By the number [`Pair::to_bytes`] stores: 0 ready, 1-3 waiting for ICW2-ICW4.
    const STAGES: [Init; 4] = [Init::Ready, Init::Icw2, Init::Icw3, Init::Icw4];

    fn number(self) -> u8 {
        match self {
            Init::Ready => 0,
            Init::Icw2 => 1,
            Init::Icw3 => 2,
            Init::Icw4 => 3,
        }
    }
}

/// One 8259.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chip {
    /// Interrupt request register: lines raised and not yet acknowledged.
    pub irr: u8,
    /// In-service register: acknowledged and not yet EOI'd.
    pub isr: u8,
    /// Interrupt mask register.
    pub imr: u8,
    /// The vector of line 0 (ICW2, a multiple of 8).
    pub vector_base: u8,
    init: Init,
    /// Whether the guest has gone through ICW1-ICW4 at least once.
    initialised: bool,
    icw4_needed: bool,
    single: bool,
    auto_eoi: bool,
    read_isr: bool,
}

impl Chip {
    /// Before the guest initialises it: every line masked, vectors from `vector_base`.
    const fn reset(vector_base: u8) -> Chip {
        Chip {
            irr: 0,
            isr: 0,
            imr: 0xFF,
            vector_base,
            init: Init::Ready,
            initialised: false,
            icw4_needed: false,
            single: false,
            auto_eoi: false,
            read_isr: false,
        }
    }

    /// The highest-priority line that is requested, unmasked, and more urgent than every
    /// line in service; `extra` are requests from outside (the cascade).
    fn pending(&self, extra: u8) -> Option<u8> {
        if self.init != Init::Ready {
            return None;
        }
        let requested = (self.irr | extra) & !self.imr;
        let line = (0..8).find(|&line| requested & (1 << line) != 0)?;
        let in_service = (0..8).find(|&line| self.isr & (1 << line) != 0);
        match in_service {
            Some(busy) if busy <= line => None,
            _ => Some(line),
        }
    }

    fn acknowledge(&mut self, line: u8) {
        self.irr &= !(1 << line);
        if !self.auto_eoi {
            self.isr |= 1 << line;
        }
    }

    fn write_command(&mut self, value: u8) {
        if value & 0x10 != 0 {
            // ICW1: start initialisation (the mask and the registers are cleared).
            *self = Chip {
                imr: 0,
                init: Init::Icw2,
                icw4_needed: value & 0x01 != 0,
                single: value & 0x02 != 0,
                ..Chip::reset(self.vector_base)
            };
        } else if value & 0x18 == 0x08 {
            // OCW3: which register a command-port read returns.
            if value & 0x02 != 0 {
                self.read_isr = value & 0x01 != 0;
            }
        } else {
            // OCW2: 0x20 non-specific EOI, 0x60 | n specific EOI of line n.
            match value & 0xE0 {
                0x20 => {
                    if let Some(line) = (0..8).find(|&line| self.isr & (1 << line) != 0) {
                        self.isr &= !(1 << line);
                    }
                }
                0x60 => self.isr &= !(1 << (value & 7)),
                _ => {}
            }
        }
    }

    fn write_data(&mut self, value: u8) {
        self.init = match self.init {
            Init::Ready => {
                self.imr = value;
                Init::Ready
            }
            Init::Icw2 => {
                self.vector_base = value & 0xF8;
                match (self.single, self.icw4_needed) {
                    (false, _) => Init::Icw3,
                    (true, true) => Init::Icw4,
                    (true, false) => Init::Ready,
                }
            }
            Init::Icw3 if self.icw4_needed => Init::Icw4,
            Init::Icw3 => Init::Ready,
            Init::Icw4 => {
                self.auto_eoi = value & 0x02 != 0;
                Init::Ready
            }
        };
        if self.init == Init::Ready {
            self.initialised = true;
        }
    }

    /// Whether the guest has initialised the chip (ICW1 to the last ICW).
    pub fn initialised(&self) -> bool {
        self.initialised && self.init == Init::Ready
    }

    fn read(&self, data_port: bool) -> u8 {
        match (data_port, self.read_isr) {
            (true, _) => self.imr,
            (false, true) => self.isr,
            (false, false) => self.irr,
        }
    }
}

/// A chip's flag bits in [`Pair::to_bytes`].
const INITIALISED: u8 = 1 << 0;
const ICW4_NEEDED: u8 = 1 << 1;
const SINGLE: u8 = 1 << 2;
const AUTO_EOI: u8 = 1 << 3;
const READ_ISR: u8 = 1 << 4;
const KNOWN_FLAGS: u8 = INITIALISED | ICW4_NEEDED | SINGLE | AUTO_EOI | READ_ISR;

/// Bytes of one chip in [`Pair::to_bytes`].
const CHIP_BYTES: usize = 6;

impl Chip {
    /// IRR, ISR, IMR, vector base, init stage, flags.
    fn to_bytes(self) -> [u8; CHIP_BYTES] {
        let flags = [
            (self.initialised, INITIALISED),
            (self.icw4_needed, ICW4_NEEDED),
            (self.single, SINGLE),
            (self.auto_eoi, AUTO_EOI),
            (self.read_isr, READ_ISR),
        ]
        .iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, bit)| flags | bit);
        [
            self.irr,
            self.isr,
            self.imr,
            self.vector_base,
            self.init.number(),
            flags,
        ]
    }

    /// The inverse of [`Chip::to_bytes`]; `which` names the chip in the error.
    fn from_bytes(bytes: [u8; CHIP_BYTES], which: &str) -> Result<Chip, String> {
        let [irr, isr, imr, vector_base, stage, flags] = bytes;
        let init = *Init::STAGES.get(usize::from(stage)).ok_or_else(|| {
            format!("{which}: init stage {stage}, not 0 (ready) to 3 (waiting for ICW4)")
        })?;
        if flags & !KNOWN_FLAGS != 0 {
            return Err(format!(
                "{which}: unknown flag bits {:#04x} (known: {KNOWN_FLAGS:#04x})",
                flags & !KNOWN_FLAGS
            ));
        }
        if vector_base % 8 != 0 {
            return Err(format!(
                "{which}: vector base {vector_base:#04x} is not a multiple of 8"
            ));
        }
        Ok(Chip {
            irr,
            isr,
            imr,
            vector_base,
            init,
            initialised: flags & INITIALISED != 0,
            icw4_needed: flags & ICW4_NEEDED != 0,
            single: flags & SINGLE != 0,
            auto_eoi: flags & AUTO_EOI != 0,
            read_isr: flags & READ_ISR != 0,
        })
    }
}

/// Bytes of [`Pair::to_bytes`].
pub const PAIR_BYTES: usize = 16;
/// The layout [`Pair::to_bytes`] writes (its byte 0); [`Pair::from_bytes`] reads only this
/// one, so a later layout can add fields under a new number.
pub const PAIR_LAYOUT: u8 = 1;

/// The master and the slave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair {
    /// Lines 0-7.
    pub master: Chip,
    /// Lines 8-15, on master pin 2.
    pub slave: Chip,
}

impl Default for Pair {
    /// Vectors 0x08 and 0x70 until the guest says otherwise, as a PC BIOS leaves them.
    fn default() -> Self {
        Pair {
            master: Chip::reset(0x08),
            slave: Chip::reset(0x70),
        }
    }
}

impl Pair {
    /// Every register in [`PAIR_BYTES`] bytes (a snapshot's `device.user_pic`): byte 0 the
    /// layout ([`PAIR_LAYOUT`]), bytes 1-3 zero, then the master at byte 4 and the slave at
    /// byte 10, each as IRR, ISR, IMR, vector base, init stage (0 ready, 1-3 waiting for
    /// ICW2-ICW4) and flags (bit 0 initialised once, 1 ICW4 needed, 2 single, 3 auto-EOI,
    /// 4 a command-port read returns the ISR).
    pub fn to_bytes(&self) -> [u8; PAIR_BYTES] {
        let mut bytes = [0u8; PAIR_BYTES];
        bytes[0] = PAIR_LAYOUT;
        bytes[4..10].copy_from_slice(&self.master.to_bytes());
        bytes[10..16].copy_from_slice(&self.slave.to_bytes());
        bytes
    }

    /// The registers [`Pair::to_bytes`] wrote, every field checked: the length, the layout,
    /// the zero bytes, each chip's init stage (0-3), its flags (no unknown bit) and its vector
    /// base (a multiple of 8). The error says which field of which chip is wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Pair, String> {
        let bytes: [u8; PAIR_BYTES] = bytes.try_into().map_err(|_| {
            format!(
                "{} bytes; the registers of the pair are {PAIR_BYTES}",
                bytes.len()
            )
        })?;
        if bytes[0] != PAIR_LAYOUT {
            return Err(format!(
                "layout {}; this rawkvm reads layout {PAIR_LAYOUT}",
                bytes[0]
            ));
        }
        if bytes[1..4] != [0; 3] {
            return Err("bytes 1-3 are reserved and must be zero".into());
        }
        let chip = |at: usize| {
            let mut chip = [0u8; CHIP_BYTES];
            chip.copy_from_slice(&bytes[at..at + CHIP_BYTES]);
            chip
        };
        Ok(Pair {
            master: Chip::from_bytes(chip(4), "master")?,
            slave: Chip::from_bytes(chip(10), "slave")?,
        })
    }

    /// An edge on line `irq` (0-15): whether it was newly requested (`false`: already
    /// pending, so this edge merges with it, as on the chip).
    pub fn raise(&mut self, irq: u8) -> bool {
        let (chip, line) = self.chip_of(irq);
        let newly = chip.irr & (1 << line) == 0;
        chip.irr |= 1 << line;
        newly
    }

    fn chip_of(&mut self, irq: u8) -> (&mut Chip, u8) {
        if irq < 8 {
            (&mut self.master, irq)
        } else {
            (&mut self.slave, irq & 7)
        }
    }

    /// The master's view of the slave's output: pin 2 requested while the slave has one.
    fn cascade(&self) -> u8 {
        if self.slave.pending(0).is_some() {
            1 << CASCADE_PIN
        } else {
            0
        }
    }

    /// The vector the pair would deliver now, if any.
    pub fn pending_vector(&self) -> Option<u8> {
        let line = self.master.pending(self.cascade())?;
        if line == CASCADE_PIN && self.cascade() != 0 {
            let slave_line = self.slave.pending(0)?;
            return Some(self.slave.vector_base + slave_line);
        }
        Some(self.master.vector_base + line)
    }

    /// The CPU's acknowledge cycle: the pending vector, its lines moved to in-service.
    /// Returns the vector and the line (0-15).
    pub fn acknowledge(&mut self) -> Option<(u8, u8)> {
        let line = self.master.pending(self.cascade())?;
        if line == CASCADE_PIN && self.cascade() != 0 {
            let slave_line = self.slave.pending(0)?;
            self.slave.acknowledge(slave_line);
            self.master.acknowledge(CASCADE_PIN);
            return Some((self.slave.vector_base + slave_line, 8 + slave_line));
        }
        self.master.acknowledge(line);
        Some((self.master.vector_base + line, line))
    }

    /// The chip a port addresses and whether it is the data port.
    fn port(&mut self, port: u16) -> Option<(&mut Chip, bool)> {
        match port {
            0x20 | 0x21 => Some((&mut self.master, port == 0x21)),
            0xA0 | 0xA1 => Some((&mut self.slave, port == 0xA1)),
            _ => None,
        }
    }

    /// A guest `out` to `port`; `false` if it is not one of the pair's.
    pub fn write(&mut self, port: u16, value: u8) -> bool {
        let Some((chip, data)) = self.port(port) else {
            return false;
        };
        if data {
            chip.write_data(value);
        } else {
            chip.write_command(value);
        }
        true
    }

    /// A guest `in` from `port`, if it is one of the pair's.
    pub fn read(&mut self, port: u16) -> Option<u8> {
        self.port(port).map(|(chip, data)| chip.read(data))
    }
}

/// Buckets of the latency histograms: `[0, 1)`, `[1, 2)`, `[2, 4)`, ... `[2^30, ∞)`.
pub const LATENCY_BUCKETS: usize = 32;

/// A histogram with power-of-two buckets (fixed size: recording allocates nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Histogram {
    /// Counts per bucket: bucket 0 is `[0, 1)`, bucket `i > 0` is `[2^(i-1), 2^i)`.
    pub buckets: [u64; LATENCY_BUCKETS],
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            buckets: [0; LATENCY_BUCKETS],
        }
    }
}

impl Histogram {
    fn record(&mut self, value: u64) {
        let bucket = (u64::BITS - value.leading_zeros()) as usize;
        self.buckets[bucket.min(LATENCY_BUCKETS - 1)] += 1;
    }

    /// Values recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The bucket holding the median, as its `[low, high)` bounds.
    pub fn median_bucket(&self) -> Option<(u64, u64)> {
        let half = self.count().div_ceil(2);
        let mut seen = 0;
        for (i, &n) in self.buckets.iter().enumerate() {
            seen += n;
            if n > 0 && seen >= half {
                return Some(Self::bounds(i));
            }
        }
        None
    }

    /// `[low, high)` of bucket `i`.
    pub fn bounds(i: usize) -> (u64, u64) {
        match i {
            0 => (0, 1),
            i => (1 << (i - 1), 1 << i),
        }
    }
}

/// What the controller did: injections and their latencies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PicStats {
    /// Edges that set an IRR bit.
    pub raised: u64,
    /// Edges that found their IRR bit already set (merged, as on the chip).
    pub merged: u64,
    /// Vectors injected with `KVM_INTERRUPT`, per line 0-15.
    pub injected: [u64; 16],
    /// From the edge to `KVM_INTERRUPT`, in microseconds.
    pub latency_us: Histogram,
    /// From the edge to `KVM_INTERRUPT`, in exits of the vCPU.
    pub latency_exits: Histogram,
}

#[derive(Debug, Default)]
struct Shared {
    pair: Pair,
    stats: PicStats,
    /// When each line's pending edge was raised, and the exit count then.
    raised_at: [Option<(Instant, u64)>; 16],
    /// Exits the vCPU has had (counted in [`UserPic::service`]).
    exits: u64,
    /// The vCPU to kick when a line is raised while it runs.
    vcpu: Option<StopHandle>,
}

/// The 8259 pair shared between the device threads that raise lines and the vCPU thread that
/// injects (vCPU 0 only).
#[derive(Debug, Default)]
pub struct UserPic {
    shared: Mutex<Shared>,
    raised: Condvar,
}

/// What [`UserPic::service`] asks the run loop to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// Inject this vector now (`KVM_INTERRUPT`).
    pub inject: Option<u8>,
    /// Set `request_interrupt_window` to this.
    pub request_window: bool,
}

impl UserPic {
    /// A pair in its reset state.
    pub fn new() -> UserPic {
        UserPic::default()
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Names the vCPU that takes the interrupts, so a raise can kick it out of `KVM_RUN`.
    pub fn attach(&self, vcpu: StopHandle) {
        self.lock().vcpu = Some(vcpu);
    }

    /// An edge on line `irq` (0-15) from any thread; whether it set the IRR bit (`false`: it
    /// merged with an edge not yet taken). Kicks the vCPU so the next exit injects it.
    pub fn raise(&self, irq: u8) -> bool {
        let mut shared = self.lock();
        let newly = shared.pair.raise(irq & 15);
        if newly {
            shared.stats.raised += 1;
            shared.raised_at[usize::from(irq & 15)] = Some((Instant::now(), shared.exits));
        } else {
            shared.stats.merged += 1;
        }
        if let Some(vcpu) = &shared.vcpu {
            vcpu.kick();
        }
        drop(shared);
        self.raised.notify_all();
        newly
    }

    /// After an exit: what to inject (if the guest is ready and a vector is pending; the
    /// vector is then acknowledged, IRR to ISR) and whether to keep asking for the window.
    pub fn service(&self, ready: bool) -> Service {
        let mut shared = self.lock();
        shared.exits += 1;
        let acknowledged = if ready {
            shared.pair.acknowledge()
        } else {
            None
        };
        let inject = acknowledged.map(|(vector, line)| {
            let line = usize::from(line);
            shared.stats.injected[line] += 1;
            if let Some((at, exits_then)) = shared.raised_at[line].take() {
                let exits = shared.exits - exits_then;
                shared
                    .stats
                    .latency_us
                    .record(at.elapsed().as_micros() as u64);
                shared.stats.latency_exits.record(exits);
            }
            vector
        });
        Service {
            inject,
            request_window: shared.pair.pending_vector().is_some(),
        }
    }

    /// Waits (at most `limit`) until a vector is pending: the guest halted with interrupts on.
    pub fn wait_pending(&self, limit: Duration) -> bool {
        let shared = self.lock();
        let (shared, _) = self
            .raised
            .wait_timeout_while(shared, limit, |s| s.pair.pending_vector().is_none())
            .unwrap_or_else(PoisonError::into_inner);
        shared.pair.pending_vector().is_some()
    }

    /// A guest `out` to one of the pair's ports; `false` if the port is not one of them.
    pub fn write(&self, port: u16, value: u8) -> bool {
        let claimed = self.lock().pair.write(port, value);
        // An EOI or an unmask may let a waiting vector through.
        self.raised.notify_all();
        claimed
    }

    /// A guest `in` from one of the pair's ports.
    pub fn read(&self, port: u16) -> Option<u8> {
        self.lock().pair.read(port)
    }

    /// The registers as they are now.
    pub fn registers(&self) -> Pair {
        self.lock().pair
    }

    /// Puts the registers back to `pair` (a restart in place, a restored snapshot): what the
    /// guest had programmed, requested and had in service is `pair`'s from now on. A vCPU
    /// waiting in `hlt` for a line is woken: the new registers may hold a pending vector.
    pub fn set_registers(&self, pair: Pair) {
        self.lock().pair = pair;
        self.raised.notify_all();
    }

    /// What it has done so far.
    pub fn stats(&self) -> PicStats {
        self.lock().stats
    }
}

/// The pair's ports, answered by the pair; every other access goes on to `inner`.
pub struct PicPorts<'a, H: ?Sized> {
    pic: &'a UserPic,
    inner: &'a mut H,
}

impl<'a, H: ?Sized> PicPorts<'a, H> {
    /// `pic` in front of `inner`.
    pub fn new(pic: &'a UserPic, inner: &'a mut H) -> Self {
        PicPorts { pic, inner }
    }
}

impl<H: IoHandler + ?Sized> IoHandler for PicPorts<'_, H> {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> std::io::Result<Claim> {
        match (self.pic.read(port), data) {
            (Some(value), [byte]) => {
                *byte = value;
                Ok(Claim::Claimed)
            }
            (_, data) => self.inner.pio_read(port, data),
        }
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> std::io::Result<Claim> {
        match data {
            [value] if self.pic.write(port, *value) => Ok(Claim::Claimed),
            _ => self.inner.pio_write(port, data),
        }
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> std::io::Result<Claim> {
        self.inner.mmio_read(addr, data)
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> std::io::Result<Claim> {
        self.inner.mmio_write(addr, data)
    }

    fn msr_read(&mut self, index: u32, value: &mut u64) -> std::io::Result<Claim> {
        self.inner.msr_read(index, value)
    }

    fn msr_write(&mut self, index: u32, value: u64) -> std::io::Result<Claim> {
        self.inner.msr_write(index, value)
    }

    fn io_exit(&mut self, io: &mut Io<'_>) -> std::io::Result<Claim> {
        if is_pic_port(io.port) {
            dispatch_io(io, self)
        } else {
            self.inner.io_exit(io)
        }
    }

    fn write_only_zones(&self) -> &[WriteOnlyZone] {
        self.inner.write_only_zones()
    }
}

fn is_pic_port(port: u16) -> bool {
    MASTER_PORTS.contains(&port) || SLAVE_PORTS.contains(&port)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ICW1-ICW4 as a real-mode guest writes them: master at 0x20, slave at 0x28, all unmasked.
    fn initialised() -> Pair {
        let mut pair = Pair::default();
        for (port, value) in [
            (0x20, 0x11),
            (0xA0, 0x11),
            (0x21, 0x20),
            (0xA1, 0x28),
            (0x21, 0x04),
            (0xA1, 0x02),
            (0x21, 0x01),
            (0xA1, 0x01),
            (0x21, 0x00),
            (0xA1, 0x00),
        ] {
            assert!(pair.write(port, value));
        }
        pair
    }

    #[test]
    fn priority_isr_and_eoi() {
        let mut pair = initialised();
        assert!(pair.raise(4));
        assert!(pair.raise(1));
        assert!(!pair.raise(1), "a second edge merges");
        assert_eq!(pair.acknowledge(), Some((0x21, 1)));
        // IRQ 4 waits behind IRQ 1 in service.
        assert_eq!(pair.pending_vector(), None);
        assert!(pair.raise(0));
        assert_eq!(pair.acknowledge(), Some((0x20, 0)), "IRQ 0 preempts IRQ 1");
        pair.write(0x20, 0x20);
        pair.write(0x20, 0x20);
        assert_eq!(pair.acknowledge(), Some((0x24, 4)));
        assert_eq!(pair.master.isr, 1 << 4);
    }

    #[test]
    fn the_slave_cascades_on_pin_2_and_the_mask_holds() {
        let mut pair = initialised();
        pair.write(0xA1, 0xFF);
        pair.raise(12);
        assert_eq!(pair.pending_vector(), None, "masked on the slave");
        pair.write(0xA1, 0x00);
        assert_eq!(pair.acknowledge(), Some((0x2C, 12)));
        assert_eq!((pair.master.isr, pair.slave.isr), (1 << 2, 1 << 4));
        pair.write(0x0A, 0); // not a PIC port
        pair.write(0x20, 0x0B); // OCW3: read ISR
        assert_eq!(pair.read(0x20), Some(1 << 2));
        assert_eq!(pair.read(0x21), Some(0));
    }

    #[test]
    fn the_registers_round_trip_through_their_bytes() {
        let mut pair = initialised();
        pair.raise(3);
        assert_eq!(pair.acknowledge(), Some((0x23, 3)));
        pair.raise(12);
        pair.write(0xA0, 0x0B); // OCW3 on the slave: read ISR
        pair.write(0x20, 0x11); // the master half way through a new initialisation
        let bytes = pair.to_bytes();
        assert_eq!(
            bytes,
            [
                1, 0, 0, 0, 0x00, 0x00, 0x00, 0x20, 1, 0x02, 0x10, 0x00, 0x00, 0x28, 0, 0x13
            ]
        );
        assert_eq!(Pair::from_bytes(&bytes), Ok(pair));
        assert_eq!(
            Pair::from_bytes(&Pair::default().to_bytes()),
            Ok(Pair::default())
        );
    }

    #[test]
    fn bad_register_bytes_are_refused_naming_the_field() {
        let good = initialised().to_bytes();
        let with = |at: usize, value: u8| {
            let mut bytes = good;
            bytes[at] = value;
            Pair::from_bytes(&bytes).unwrap_err()
        };
        assert_eq!(
            Pair::from_bytes(&good[..15]).unwrap_err(),
            "15 bytes; the registers of the pair are 16"
        );
        assert_eq!(with(0, 2), "layout 2; this rawkvm reads layout 1");
        assert!(with(2, 1).contains("reserved"));
        assert_eq!(
            with(8, 4),
            "master: init stage 4, not 0 (ready) to 3 (waiting for ICW4)"
        );
        assert_eq!(
            with(15, 0x21),
            "slave: unknown flag bits 0x20 (known: 0x1f)"
        );
        assert_eq!(
            with(13, 0x29),
            "slave: vector base 0x29 is not a multiple of 8"
        );
    }

    #[test]
    fn set_registers_replaces_them() {
        let pic = UserPic::new();
        let mut pair = initialised();
        pair.raise(5);
        pic.set_registers(pair);
        assert_eq!(pic.registers(), pair);
        assert!(pic.wait_pending(Duration::ZERO), "the vector is pending");
        assert_eq!(pic.service(true).inject, Some(0x25));
    }

    #[test]
    fn the_median_bucket() {
        let mut histogram = Histogram::default();
        for value in [0, 3, 3, 5, 100] {
            histogram.record(value);
        }
        assert_eq!(histogram.count(), 5);
        assert_eq!(histogram.median_bucket(), Some((2, 4)));
    }
}
