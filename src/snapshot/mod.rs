//! Snapshots: a whole stopped machine (every vCPU's registers, FPU/XSAVE, XCRs, local APIC,
//! pending events, MP state, debug registers; the VM's memory, in-kernel PICs, IOAPIC, PIT and
//! clock; the host-side devices) as one typed [`Snapshot`], a file format for it, and a
//! restore into a new VM that reads everything back to check it.
//!
//! ```text
//! Machine::snapshot(&devices)   capture.rs   KVM_GET_* of every piece, RAM without zero pages
//! format::encode / decode       format.rs    the file: header, typed sections, a CRC-32 each
//! Snapshot::restore(&kvm)       restore.rs   a new VM, KVM_SET_* in the working order,
//!                               verify.rs    then KVM_GET_* again, compared field by field
//! ```
//!
//! x86-64 only, like the state it saves. Per vCPU also the CPUID table and every MSR of
//! `KVM_GET_MSR_INDEX_LIST`. What rawkvm itself owns is saved too: the user-space 8259 pair's
//! registers (`--irqchip user`), each vCPU's exception-stub flag (a fault after the resume is
//! still reported), and what it enabled on the VM ([`VmSettings`]: user-space MSR exits, the
//! guest TSC rate), which a restore enables again before the vCPUs. What is not saved: the TSC
//! itself (on kvm_pvm the guest TSC is the host's and cannot be set), nested-virtualisation
//! state, the user-space PIC's statistics, and anything a caller's own devices hold beyond
//! [`DeviceState`]. A snapshot with in-kernel interrupt controllers is restored
//! into a VM given them (`KVM_CREATE_IRQCHIP`, the default GSI routes, `KVM_CREATE_PIT2`)
//! before its vCPUs, as `--irqchip kernel` does.

pub mod capture;
pub mod crc32;
pub mod decode;
pub mod fork;
pub mod format;
pub mod info;
pub mod restore;
pub mod state;
pub mod verify;

use std::path::Path;

pub use crate::error::{FormatError, Problem, SnapshotError};
pub use crate::machine::VmSettings;
pub use state::{
    DeviceState, IrqchipState, Origin, PageRun, SlotState, Snapshot, VcpuState, VmState,
};

use crate::error::Error;
use crate::machine::Machine;

impl Snapshot {
    /// The file's bytes ([`format::encode`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Decodes a file's bytes ([`decode::decode`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, FormatError> {
        decode::decode(bytes)
    }

    /// Writes the snapshot to `path` (created or truncated); returns its size in bytes.
    pub fn save(&self, path: &Path) -> Result<u64, Error> {
        use std::io::Write;
        let failed = |error| SnapshotError::Write {
            path: path.to_path_buf(),
            error,
        };
        let file = std::fs::File::create(path).map_err(failed)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let written = format::write_to(self, &mut out).map_err(failed)?;
        out.flush().map_err(failed)?;
        Ok(written)
    }

    /// Reads and decodes the snapshot at `path`.
    pub fn load(path: &Path) -> Result<Snapshot, Error> {
        let bytes = std::fs::read(path).map_err(|error| SnapshotError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Snapshot::from_bytes(&bytes)?)
    }

    /// Reads `machine` back and compares it with this snapshot, field by field and page by
    /// page, as the last step of [`Snapshot::restore`] does (`verify.rs`); for timing that
    /// step alone, or checking a machine restored earlier.
    pub fn verify(&self, machine: &mut Machine) -> Result<(), Error> {
        verify::verify(machine, self)
    }
}
