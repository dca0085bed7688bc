//! Why a snapshot could not be taken, saved, loaded or restored (`crate::snapshot`), and
//! what exactly is wrong with a snapshot file.

use std::fmt;
use std::path::PathBuf;

use super::{CpuError, ErrnoDisplay, Error, ErrorKind, IoErrorDisplay};

/// What is wrong with a snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file ends inside the piece: `needed` more bytes than the `available` ones.
    Truncated {
        /// Bytes the piece needs.
        needed: u64,
        /// Bytes left in the file.
        available: u64,
    },
    /// Not a rawkvm snapshot.
    BadMagic,
    /// Written by a newer rawkvm: a format this one cannot read.
    NewerVersion {
        /// The file's version.
        found: u32,
        /// The newest this rawkvm reads.
        supported: u32,
    },
    /// Taken on another architecture.
    OtherArchitecture {
        /// The file's architecture.
        found: String,
    },
    /// The stored CRC-32 does not match the bytes: the file was corrupted.
    Checksum {
        /// Stored.
        stored: u32,
        /// Computed.
        computed: u32,
    },
    /// A payload of the wrong size for its kind.
    Length {
        /// The size the kind needs.
        expected: u64,
        /// The size given.
        found: u64,
    },
    /// A section kind this rawkvm does not know.
    UnknownKind(u32),
    /// The same piece twice.
    Duplicate,
    /// A piece the snapshot must have is not there.
    Missing,
    /// A memory slot or run that does not fit (`why` says how).
    MemoryDoesNotFit(String),
    /// A value the format does not allow (`why` says which).
    Invalid(String),
}

/// A snapshot file that cannot be loaded: which section, at which byte, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormatError {
    /// The piece: `header`, `section 3 (vcpu.sregs, vCPU 0)`, ...
    pub section: String,
    /// The byte offset in the file where the piece starts (or where it was expected).
    pub offset: u64,
    /// What is wrong.
    pub problem: Problem,
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}: ", self.section, self.offset)?;
        match &self.problem {
            Problem::Truncated { needed, available } => write!(
                f,
                "the file is truncated: {needed} bytes needed, {available} left"
            ),
            Problem::BadMagic => f.write_str("not a rawkvm snapshot (no \"RAWKVMSS\" magic)"),
            Problem::NewerVersion { found, supported } => write!(
                f,
                "format version {found} is newer than this rawkvm reads ({supported}); use a \
                 newer rawkvm"
            ),
            Problem::OtherArchitecture { found } => write!(
                f,
                "taken on {found}, this is {}; resume it on a {found} host",
                std::env::consts::ARCH
            ),
            Problem::Checksum { stored, computed } => write!(
                f,
                "checksum mismatch (stored {stored:#010x}, computed {computed:#010x}): the file \
                 is corrupted"
            ),
            Problem::Length { expected, found } => {
                write!(f, "payload of {found} bytes, the kind needs {expected}")
            }
            Problem::UnknownKind(number) => write!(f, "unknown section kind {number:#x}"),
            Problem::Duplicate => f.write_str("the same piece appears twice"),
            Problem::Missing => f.write_str("a piece the snapshot needs is missing"),
            Problem::MemoryDoesNotFit(why) => write!(f, "memory does not fit: {why}"),
            Problem::Invalid(why) => f.write_str(why),
        }
    }
}

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
    /// Making the memfd a fork image keeps guest memory in failed (status 5).
    Memfd(std::io::Error),
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
    /// The snapshot holds part of the in-kernel interrupt controllers (a local APIC or a PIT
    /// without the PICs and IOAPIC, or local APICs for some vCPUs only), which no VM the
    /// kernel makes can hold (status 4).
    IrqchipIncomplete {
        /// Whether it holds the PICs and IOAPIC.
        chips: bool,
        /// How many vCPUs have a local APIC.
        lapics: usize,
        /// How many vCPUs it holds.
        vcpus: usize,
    },
    /// The snapshot's page size is not this host's (status 4: its memory does not fit).
    PageSize {
        /// The snapshot's.
        snapshot: u32,
        /// This host's.
        host: u32,
    },
    /// The snapshot's guest TSC rate (`--tsc-khz` when it was taken) is not this host's, and
    /// the kernel cannot give a new vCPU that rate (status 4: the snapshot does not fit here).
    TscRate {
        /// The vCPU.
        vcpu: u32,
        /// The rate saved, in kHz.
        saved: u32,
        /// A fresh vCPU's rate here, in kHz.
        host: u32,
        /// What `Vcpu::set_tsc_khz` reported: refused, or accepted without effect.
        cause: CpuError,
    },
    /// The snapshot was taken on a CPU whose state this host cannot take: another vendor, or
    /// XSAVE components this host's KVM does not offer (status 4: the snapshot does not fit).
    OtherCpu {
        /// The vCPU whose state does not fit.
        vcpu: u32,
        /// What differs.
        mismatch: CpuMismatch,
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

/// How a snapshot's CPU differs from this host's (see [`SnapshotError::OtherCpu`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuMismatch {
    /// The CPUID vendor strings (leaf 0) differ: register layouts and MSRs are the vendor's.
    Vendor {
        /// The snapshot's vCPU's, e.g. `AuthenticAMD`.
        saved: String,
        /// This host's (`KVM_GET_SUPPORTED_CPUID`), e.g. `GenuineIntel`.
        host: String,
    },
    /// The XSAVE area holds components (its `XSTATE_BV`) that this host's KVM does not offer a
    /// guest (leaf 0xD's supported XCR0): `KVM_SET_XSAVE` would be refused with `EINVAL`.
    XsaveComponents {
        /// The saved `XSTATE_BV`.
        saved: u64,
        /// The components this host offers.
        host: u64,
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
            | SnapshotError::TscRate { .. }
            | SnapshotError::OtherCpu { .. }
            | SnapshotError::SlotFlags { .. }
            | SnapshotError::IrqchipIncomplete { .. } => ErrorKind::Image,
            SnapshotError::Write { .. }
            | SnapshotError::Memfd(_)
            | SnapshotError::PendingOperation { .. }
            | SnapshotError::XsaveTooLarge { .. }
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
            SnapshotError::Memfd(error) => write!(
                f,
                "cannot put the snapshot's memory in a memfd for forking: {}",
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
            SnapshotError::IrqchipIncomplete {
                chips,
                lapics,
                vcpus,
            } => write!(
                f,
                "the snapshot holds {} and a local APIC for {lapics} of its {vcpus} vCPUs: an \
                 in-kernel irqchip has all of them or none; the file is not one rawkvm wrote",
                if *chips {
                    "the PICs and IOAPIC"
                } else {
                    "no PICs or IOAPIC"
                }
            ),
            SnapshotError::PageSize { snapshot, host } => write!(
                f,
                "the snapshot's memory is in pages of {snapshot} bytes, this host's are {host}: \
                 it does not fit; resume it on a host with {snapshot}-byte pages"
            ),
            SnapshotError::TscRate {
                vcpu,
                saved,
                host,
                cause,
            } => {
                write!(
                    f,
                    "vCPU {vcpu}: the snapshot's guest TSC runs at {saved} kHz, a new vCPU here \
                     at {host} kHz, and "
                )?;
                match cause {
                    CpuError::TscKhzRefused { errno, .. } => write!(
                        f,
                        "KVM_SET_TSC_KHZ {saved} failed: {}",
                        ErrnoDisplay(*errno)
                    )?,
                    CpuError::TscKhzIgnored { read_back, .. } if read_back != saved => write!(
                        f,
                        "KVM_SET_TSC_KHZ {saved} was accepted but reads back {read_back} kHz"
                    )?,
                    CpuError::TscKhzIgnored { .. } => write!(
                        f,
                        "KVM_SET_TSC_KHZ {saved} was accepted but cannot take effect (no TSC \
                         scaling: KVM_CAP_TSC_CONTROL is 0)"
                    )?,
                    other => write!(f, "{other}")?,
                }
                write!(
                    f,
                    "; the guest would see its clock run at another rate: resume it on a host \
                     whose TSC runs at {saved} kHz or can be scaled to it"
                )
            }
            SnapshotError::OtherCpu { vcpu, mismatch } => match mismatch {
                CpuMismatch::Vendor { saved, host } => write!(
                    f,
                    "vCPU {vcpu}'s CPU vendor is {saved}, this host's {host}: register \
                     state, MSRs and the XSAVE layout follow the vendor; resume the snapshot \
                     on a host whose vendor is {saved}"
                ),
                CpuMismatch::XsaveComponents { saved, host } => write!(
                    f,
                    "vCPU {vcpu}'s XSAVE area holds components {saved:#x} (XSTATE_BV) and KVM \
                     here offers {host:#x} (CPUID 0xD.0): {:#x} would be refused; resume the \
                     snapshot on a host whose CPU has them",
                    saved & !host
                ),
            },
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
