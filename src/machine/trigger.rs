//! What asks for a snapshot: the snapshot port, a guest's `out` to which stops every vCPU
//! (through [`RunControl`], as a signal would, with [`StopCause::Snapshot`]), and a timer
//! that does the same after a while. The run then ends with `Ok`, the caller sees
//! [`RunControl::stopped_for_snapshot`] and saves the machine (`Machine::snapshot`, x86). The
//! guest continues after its `out` when the snapshot is resumed: an `out` leaves nothing
//! pending once `KVM_RUN` has returned `EINTR`.
//!
//! ```text
//! guest: out 0xF5, al   ->  RunControl::request_stop(Snapshot): immediate_exit = 1 and a
//!                           kick for every vCPU, from the vCPU thread that took the exit
//! SnapshotTimer         ->  the same from its own thread after the duration
//! ```

use std::io;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::devices::{Claim, IoHandler, WriteOnlyZone};
use crate::error::Error;
use crate::exit::Io;
use crate::machine::supervisor::{RunControl, StopCause};

/// The port rawkvm's guests use by convention (`--snapshot-on-port 0xF5`).
pub const DEFAULT_SNAPSHOT_PORT: u16 = 0xF5;

/// Devices `inner` with a snapshot port in front of them.
#[derive(Debug)]
pub struct SnapshotPort<H> {
    /// The devices that answer everything else.
    pub inner: H,
    port: Option<u16>,
    control: RunControl,
}

impl<H: IoHandler> SnapshotPort<H> {
    /// `inner`, with writes to `port` (if any) asking `control` for a snapshot.
    pub fn new(inner: H, port: Option<u16>, control: RunControl) -> SnapshotPort<H> {
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
        if Some(port) == self.port {
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

/// Asks a run for a snapshot after a delay, from a thread of its own, unless dropped first
/// (dropping it wakes the thread and joins it).
#[derive(Debug)]
pub struct SnapshotTimer {
    cancel: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl SnapshotTimer {
    /// Starts the timer: after `delay`, `control.request_stop(StopCause::Snapshot)`.
    pub fn start(delay: Duration, control: RunControl) -> Result<SnapshotTimer, Error> {
        let (cancel, cancelled) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("snapshot-timer".into())
            .spawn(move || {
                if cancelled.recv_timeout(delay) == Err(RecvTimeoutError::Timeout) {
                    control.request_stop(StopCause::Snapshot);
                }
            })
            .map_err(Error::SnapshotTimer)?;
        Ok(SnapshotTimer {
            cancel: Some(cancel),
            thread: Some(thread),
        })
    }
}

impl Drop for SnapshotTimer {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread with `Disconnected`.
        drop(self.cancel.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
