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
//! x86-64 only, like the state it saves. What is not saved: the TSC (on kvm_pvm the guest TSC
//! is the host's and cannot be set), CPUID and MSRs (not yet: the ioctls come with the CPUID
//! work), nested-virtualisation state, and anything a caller's own devices hold beyond
//! [`DeviceState`].

pub mod capture;
pub mod crc32;
pub mod decode;
pub mod format;
pub mod info;
pub mod restore;
pub mod state;
pub mod verify;

use std::fmt;
use std::path::{Path, PathBuf};

pub use format::{FormatError, Problem};
pub use state::{
    DeviceState, IrqchipState, Origin, PageRun, SlotState, Snapshot, VcpuState, VmState,
};

use crate::error::{Error, ErrorKind, IoErrorDisplay};

/// Why a snapshot could not be taken, saved, loaded or restored.
#[derive(Debug)]
pub enum SnapshotError {
    /// The file is not a snapshot this rawkvm can load (status 4).
    Format(FormatError),
    /// Reading the file failed (status 4).
    Read {
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Writing the file failed (status 5).
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A vCPU's last exit left an instruction half done that re-entering did not finish.
    PendingOperation {
        /// The vCPU.
        vcpu: u32,
    },
    /// The guest's XSAVE area is larger than the 4096 bytes `KVM_GET_XSAVE` copies.
    XsaveTooLarge {
        /// Its size (`KVM_CAP_XSAVE2`).
        size: usize,
    },
    /// The snapshot has in-kernel interrupt controllers, which this build cannot create.
    NeedsIrqchip,
    /// The snapshot's page size is not this host's (status 4: its memory does not fit).
    PageSize {
        /// The snapshot's.
        snapshot: u32,
        /// This host's.
        host: u32,
    },
    /// A memory slot's flags are not ones this rawkvm knows (status 4).
    SlotFlags {
        /// The slot.
        slot: u32,
        /// The flags.
        flags: u32,
    },
    /// After the restore, the kernel reported a piece other than the one set.
    Mismatch {
        /// `vCPU 0 xsave`, `irqchip 2`, `memory slot 0`, ...
        piece: String,
        /// The first field that differs (a C designator of the piece's struct).
        field: String,
        /// Its byte offset in the struct (for memory: the page).
        offset: u64,
        /// The bytes saved, hex.
        saved: String,
        /// The bytes read back, hex.
        read_back: String,
    },
}

impl SnapshotError {
    /// What kind of failure it is: a file that cannot be used is [`ErrorKind::Image`] (status 4
    /// in the CLI, like a bad guest image), a failed capture, write or restore
    /// [`ErrorKind::Setup`] (status 5).
    pub fn kind(&self) -> ErrorKind {
        match self {
            SnapshotError::Format(_)
            | SnapshotError::Read { .. }
            | SnapshotError::PageSize { .. }
            | SnapshotError::SlotFlags { .. } => ErrorKind::Image,
            SnapshotError::Write { .. }
            | SnapshotError::PendingOperation { .. }
            | SnapshotError::XsaveTooLarge { .. }
            | SnapshotError::NeedsIrqchip
            | SnapshotError::Mismatch { .. } => ErrorKind::Setup,
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotError::Format(error) => write!(f, "snapshot file: {error}"),
            SnapshotError::Read { path, error } => write!(
                f,
                "cannot read snapshot {}: {}",
                path.display(),
                IoErrorDisplay(error)
            ),
            SnapshotError::Write { path, error } => write!(
                f,
                "cannot write snapshot {}: {}",
                path.display(),
                IoErrorDisplay(error)
            ),
            SnapshotError::PendingOperation { vcpu } => write!(
                f,
                "vCPU {vcpu}: its last instruction still wants I/O after re-entering with \
                 immediate_exit; a snapshot needs a stopped vCPU"
            ),
            SnapshotError::XsaveTooLarge { size } => write!(
                f,
                "the guest's XSAVE area is {size} bytes (KVM_CAP_XSAVE2); rawkvm saves the \
                 4096 bytes of KVM_GET_XSAVE and cannot snapshot this guest"
            ),
            SnapshotError::NeedsIrqchip => f.write_str(
                "the snapshot holds in-kernel interrupt controllers (LAPIC, PIC, IOAPIC or PIT), \
                 which this build of rawkvm cannot create",
            ),
            SnapshotError::PageSize { snapshot, host } => write!(
                f,
                "the snapshot's memory is in pages of {snapshot} bytes, this host's are {host}: \
                 it does not fit; resume it on a host with {snapshot}-byte pages"
            ),
            SnapshotError::SlotFlags { slot, flags } => {
                write!(f, "memory slot {slot} has unknown flags {flags:#x}")
            }
            SnapshotError::Mismatch {
                piece,
                field,
                offset,
                saved,
                read_back,
            } => write!(
                f,
                "restore check failed: {piece}: {field} (byte {offset}) was set to {saved} but \
                 reads back as {read_back}"
            ),
        }
    }
}

impl From<SnapshotError> for Error {
    fn from(error: SnapshotError) -> Error {
        Error::Snapshot(error)
    }
}

impl From<FormatError> for Error {
    fn from(error: FormatError) -> Error {
        Error::Snapshot(SnapshotError::Format(error))
    }
}

impl Snapshot {
    /// The file's bytes ([`format::encode`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        format::encode(self)
    }

    /// Decodes a file's bytes ([`decode::decode`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Snapshot, FormatError> {
        decode::decode(bytes)
    }

    /// Writes the snapshot to `path` (created or truncated).
    pub fn save(&self, path: &Path) -> Result<u64, Error> {
        let bytes = self.to_bytes();
        std::fs::write(path, &bytes).map_err(|error| SnapshotError::Write {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(bytes.len() as u64)
    }

    /// Reads and decodes the snapshot at `path`.
    pub fn load(path: &Path) -> Result<Snapshot, Error> {
        let bytes = std::fs::read(path).map_err(|error| SnapshotError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Ok(Snapshot::from_bytes(&bytes)?)
    }
}
