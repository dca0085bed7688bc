//! The contract between the run loop and the devices: who answers an access, and what
//! answering means.
//!
//! ```text
//! KVM_EXIT_IO     io.count accesses of io.size bytes at io.port   -> IoHandler::io_exit
//!                                                                      (pio_read / pio_write)
//! KVM_EXIT_MMIO   mmio.len bytes at mmio.phys_addr                 -> IoHandler::mmio_read/_write
//! KVM_EXIT_X86_RDMSR / _WRMSR  msr.index, msr.data; msr.error      -> IoHandler::msr_read/_write
//! ```
//!
//! The run loop hands each access to an [`IoHandler`] one element at a time (a `rep insb` of
//! 1024 bytes is 1024 calls of one byte), after filling read buffers with [`OPEN_BUS`], the
//! value an open bus reads as. A handler that does not claim an access leaves that filler in
//! place, so stale bytes from an earlier exit can never reach the guest. Each answer is a
//! [`Claim`]; [`Claim::Finish`] ends the run (the exit device).

use std::io;

use crate::exit::{Io, IoDirection, Mmio, MsrAccess};

/// The value an unclaimed read returns, byte by byte: an open bus reads as all ones.
pub const OPEN_BUS: u8 = 0xFF;

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

/// What a handler did with an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// A device took it (and, for a read, filled the data).
    Claimed,
    /// Nothing decodes that address: a read keeps the all-ones filler, a write is dropped.
    Unclaimed,
    /// A device took it and asks for the run to end, reporting `code` (the exit device:
    /// 0 is success). The run loop returns [`crate::run_loop::Outcome::Finished`].
    Finish(u32),
}

impl Claim {
    /// Whether a device took the access (including one that ends the run).
    pub fn is_claimed(self) -> bool {
        self != Claim::Unclaimed
    }

    /// The answer for two parts of one access (two bytes, two elements): a request to end
    /// the run wins, then a claim.
    pub fn and(self, other: Claim) -> Claim {
        match (self, other) {
            (Claim::Finish(code), _) | (_, Claim::Finish(code)) => Claim::Finish(code),
            (Claim::Claimed, _) | (_, Claim::Claimed) => Claim::Claimed,
            (Claim::Unclaimed, Claim::Unclaimed) => Claim::Unclaimed,
        }
    }
}

/// Answers the guest's port and MMIO accesses.
pub trait IoHandler {
    /// An `in` of `data.len()` bytes (1, 2 or 4) at `port`; `data` arrives as all-ones.
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Claim>;
    /// An `out` of `data` at `port`.
    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Claim>;
    /// A read of `data.len()` bytes (1..=8) at guest physical address `addr`; `data` arrives
    /// as all-ones.
    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> io::Result<Claim>;
    /// A write of `data` (1..=8 bytes) at guest physical address `addr`.
    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Claim>;

    /// An `rdmsr` of MSR `index` that KVM forwarded (`KVM_EXIT_X86_RDMSR`): a device that owns
    /// the MSR sets `value` and claims it. Unclaimed (the default), the guest gets #GP.
    fn msr_read(&mut self, _index: u32, _value: &mut u64) -> io::Result<Claim> {
        Ok(Claim::Unclaimed)
    }

    /// A `wrmsr` of `value` to MSR `index` that KVM forwarded (`KVM_EXIT_X86_WRMSR`).
    /// Unclaimed (the default), the guest gets #GP.
    fn msr_write(&mut self, _index: u32, _value: u64) -> io::Result<Claim> {
        Ok(Claim::Unclaimed)
    }

    /// One `KVM_EXIT_IO`: `io.count` accesses of `io.size` bytes at `io.port`. The default
    /// hands them to [`IoHandler::pio_read`] or [`IoHandler::pio_write`] one at a time
    /// ([`dispatch_io`]); a wrapper with work to do once per exit rather than
    /// once per access overrides it ([`crate::machine::supervisor::SharedHandler`] takes its lock once
    /// for a whole batch of a `rep insb`, not 1024 times).
    fn io_exit(&mut self, io: &mut Io<'_>) -> io::Result<Claim> {
        dispatch_io(io, self)
    }

    /// The ranges this handler declares write-only and order-insensitive, whose writes may be
    /// coalesced ([`WriteOnlyZone`]). None unless a handler says so.
    fn write_only_zones(&self) -> &[WriteOnlyZone] {
        &[]
    }
}

/// Hands one IO exit to `handler`, one element (`size` bytes at `port`) at a time. IN data is
/// set to all-ones first, so whatever a handler leaves unanswered reads as an open bus.
pub fn dispatch_io<H: IoHandler + ?Sized>(
    io: &mut Io<'_>,
    handler: &mut H,
) -> std::io::Result<Claim> {
    let (port, direction) = (io.port, io.direction);
    if direction == IoDirection::In {
        io.data.fill(OPEN_BUS);
    }
    let mut claim = Claim::Unclaimed;
    for element in io.elements() {
        let answer = match direction {
            IoDirection::In => handler.pio_read(port, element)?,
            IoDirection::Out => handler.pio_write(port, element)?,
        };
        claim = claim.and(answer);
    }
    Ok(claim)
}

/// Hands one MMIO exit to `handler`. Read data is set to all-ones first.
pub fn dispatch_mmio<H: IoHandler + ?Sized>(
    mmio: &mut Mmio<'_>,
    handler: &mut H,
) -> std::io::Result<Claim> {
    if mmio.is_write {
        handler.mmio_write(mmio.phys_addr, mmio.data)
    } else {
        mmio.data.fill(OPEN_BUS);
        handler.mmio_read(mmio.phys_addr, mmio.data)
    }
}

/// Hands one MSR exit to `handler` (`write`: `KVM_EXIT_X86_WRMSR`). A claimed read puts the
/// value in `msr.data`; an unclaimed access sets `msr.error`, so the guest gets #GP as it would
/// on hardware without that MSR.
pub fn dispatch_msr<H: IoHandler + ?Sized>(
    msr: &mut MsrAccess<'_>,
    write: bool,
    handler: &mut H,
) -> std::io::Result<Claim> {
    let claim = if write {
        handler.msr_write(msr.index, msr.data)?
    } else {
        let mut value = 0;
        let claim = handler.msr_read(msr.index, &mut value)?;
        if claim.is_claimed() {
            msr.set_data(value);
        }
        claim
    };
    msr.set_error(claim == Claim::Unclaimed);
    Ok(claim)
}
