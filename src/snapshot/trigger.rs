//! The snapshot port: a guest that writes any byte to it asks for a snapshot. The write stops
//! every vCPU (through [`RunControl`], as a signal would) and the run ends with `Ok`; the
//! caller then sees [`RunControl::snapshot_requested`] and saves the machine. The guest
//! continues after its `out` when the snapshot is resumed: an `out` leaves nothing pending
//! once `KVM_RUN` has returned `EINTR`.

use std::io;

use crate::devices::{Claim, IoHandler, WriteOnlyZone};
use crate::exit::Io;
use crate::machine::supervisor::{RunControl, StopCause};

/// The port rawkvm's guests use by convention (`--snapshot-on-port 0xF5`).
pub const DEFAULT_SNAPSHOT_PORT: u16 = 0xF5;

/// Devices `inner` with a snapshot port in front of them.
#[derive(Debug)]
pub struct SnapshotPort<H> {
    /// The devices that answer everything else.
    pub inner: H,
    port: u16,
    control: RunControl,
}

impl<H: IoHandler> SnapshotPort<H> {
    /// `inner`, with writes to `port` asking `control` for a snapshot.
    pub fn new(inner: H, port: u16, control: RunControl) -> SnapshotPort<H> {
        SnapshotPort {
            inner,
            port,
            control,
        }
    }
}

impl<H: IoHandler> IoHandler for SnapshotPort<H> {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Claim> {
        self.inner.pio_read(port, data)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Claim> {
        if port == self.port {
            self.control.request_stop(StopCause::Snapshot);
            return Ok(Claim::Claimed);
        }
        self.inner.pio_write(port, data)
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> io::Result<Claim> {
        self.inner.mmio_read(addr, data)
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Claim> {
        self.inner.mmio_write(addr, data)
    }

    fn msr_read(&mut self, index: u32, value: &mut u64) -> io::Result<Claim> {
        self.inner.msr_read(index, value)
    }

    fn msr_write(&mut self, index: u32, value: u64) -> io::Result<Claim> {
        self.inner.msr_write(index, value)
    }

    fn io_exit(&mut self, io: &mut Io<'_>) -> io::Result<Claim> {
        crate::devices::bus::dispatch_io(io, self)
    }

    fn write_only_zones(&self) -> &[WriteOnlyZone] {
        self.inner.write_only_zones()
    }
}
