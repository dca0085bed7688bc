//! rawkvm's errors: one variant per failing operation, each carrying the errno, naming the
//! ioctl or path and the value that mattered, and saying what to do. Each maps to a stable
//! process exit status ([`Error::exit_status`]).

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

use crate::exit::DecodeError;

mod details;
mod image;
pub use details::{LISTED_VCPUS, StoppedVcpu};
use details::{RejectedValues, StoppedList, signal_name};
pub use image::ImageError;

/// Process exit statuses, as documented in the README.
pub mod status {
    /// The guest halted normally.
    pub const HALTED: i32 = 0;
    /// Usage or configuration error: a bad flag, a bad size.
    pub const USAGE: i32 = 2;
    /// KVM is unavailable or unusable: missing, permission, not a KVM device, API version,
    /// capability.
    pub const KVM_UNAVAILABLE: i32 = 3;
    /// The guest image is missing, empty, too large or not a regular file.
    pub const IMAGE: i32 = 4;
    /// A resource or setup step failed: mmap, memory slot, vCPU creation, registers, thread.
    pub const SETUP: i32 = 5;
    /// The guest faulted: triple fault, failed entry, internal error, undecodable exit.
    pub const GUEST_FAULT: i32 = 6;
    /// The guest was still running at the deadline.
    pub const TIMEOUT: i32 = 7;
    /// The console's reader went away (`EPIPE`): 128 + `SIGPIPE`, what a shell reports for a
    /// program that `SIGPIPE` ended.
    pub const BROKEN_PIPE: i32 = 128 + 13;

    /// A run stopped by signal `signal` (`SIGINT`, `SIGTERM`, ...): 128 + its number, as a
    /// shell reports a program the signal ended.
    pub const fn signal(signal: i32) -> i32 {
        128 + signal
    }
}

/// `EINTR (Interrupted system call)`: an errno by name and by meaning.
pub struct ErrnoDisplay(pub Errno);

impl fmt::Display for ErrnoDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self.0, self.0.desc())
    }
}

/// Everything that can go wrong in rawkvm.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// `open(2)` of the KVM device failed.
    OpenDevice {
        /// The device path.
        path: PathBuf,
        /// Why.
        errno: Errno,
    },
    /// The device opened, but `KVM_GET_API_VERSION` failed: it is not a KVM device.
    NotKvm {
        /// The device path.
        path: PathBuf,
        /// The errno of `KVM_GET_API_VERSION` (`ENOTTY` for most files).
        errno: Errno,
    },
    /// `KVM_GET_API_VERSION` returned something other than 12.
    ApiVersion {
        /// What the kernel reported.
        found: i32,
        /// What rawkvm requires (`KVM_API_VERSION`).
        expected: i32,
    },
    /// A capability rawkvm relies on is absent (`KVM_CHECK_EXTENSION` returned 0).
    MissingCapability {
        /// The `KVM_CAP_*` name.
        capability: &'static str,
        /// What rawkvm needs it for.
        needed_for: &'static str,
    },
    /// `KVM_GET_VCPU_MMAP_SIZE` failed or reported a size too small for `struct kvm_run`.
    VcpuMmapSize {
        /// The size reported, if the ioctl succeeded.
        size: Option<usize>,
        /// The errno, if it failed.
        errno: Option<Errno>,
    },
    /// An ioctl with no more specific variant failed.
    Ioctl {
        /// The kernel's name for the request.
        ioctl: &'static str,
        /// Why.
        errno: Errno,
    },
    /// `KVM_CREATE_VM` failed.
    CreateVm {
        /// Why.
        errno: Errno,
    },
    /// A memory region was refused before asking the kernel.
    InvalidRegion {
        /// The slot it was meant for.
        slot: u32,
        /// Guest physical address.
        guest_phys_addr: u64,
        /// Size in bytes.
        size: u64,
        /// What is wrong with it.
        reason: RegionProblem,
    },
    /// `mmap` of guest RAM failed.
    MapMemory {
        /// Size asked for.
        size: u64,
        /// Why.
        errno: Errno,
    },
    /// `KVM_SET_USER_MEMORY_REGION` failed.
    SetMemoryRegion {
        /// The slot.
        slot: u32,
        /// Guest physical address.
        guest_phys_addr: u64,
        /// Size in bytes.
        size: u64,
        /// Why.
        errno: Errno,
    },
    /// A host access to guest memory fell outside every memory region.
    GuestMemoryRange {
        /// First guest physical address of the access.
        guest_phys_addr: u64,
        /// Length of the access.
        len: u64,
    },
    /// `KVM_CREATE_VCPU` failed.
    CreateVcpu {
        /// The vCPU id asked for.
        id: u32,
        /// Why.
        errno: Errno,
        /// `KVM_CAP_MAX_VCPUS`, for the message.
        max_vcpus: Option<u32>,
    },
    /// `mmap` of a vCPU's `kvm_run` region failed.
    MapRun {
        /// The vCPU id.
        id: u32,
        /// Bytes asked for (`KVM_GET_VCPU_MMAP_SIZE`).
        size: usize,
        /// Why.
        errno: Errno,
    },
    /// The kernel refused register values as architecturally invalid (`EINVAL` from
    /// `KVM_SET_SREGS`: CR0.NW without CR0.CD, CR0.PG without CR0.PE, reserved bits, ...).
    /// Nothing was changed.
    RegistersRejected {
        /// The ioctl.
        ioctl: &'static str,
        /// Why (`EINVAL`).
        errno: Errno,
        /// The values that decide validity, by register name (`CR0`, `CR4`, `EFER`, ...).
        values: Vec<(&'static str, u64)>,
    },
    /// Setting a vCPU's registers failed (`KVM_SET_REGS`, `KVM_SET_SREGS`, ...).
    SetRegisters {
        /// The ioctl.
        ioctl: &'static str,
        /// Why.
        errno: Errno,
    },
    /// A register buffer did not have the size its `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` id
    /// encodes; the ioctl was not made.
    RegisterSize {
        /// The register id.
        id: u64,
        /// `KVM_REG_SIZE(id)`.
        register_size: usize,
        /// The buffer's length.
        buffer: usize,
    },
    /// Installing the handler of the signal that kicks vCPUs failed.
    Signal {
        /// Why.
        errno: Errno,
    },
    /// A vCPU thread could not be started.
    SpawnThread {
        /// The vCPU it was for.
        vcpu: u32,
        /// Why.
        error: std::io::Error,
    },
    /// The guest was still running when the deadline passed; every vCPU was stopped.
    Timeout {
        /// The deadline, counted from the start of the run.
        timeout: Duration,
        /// The vCPUs that were still running, and where they stopped.
        stopped: Vec<StoppedVcpu>,
    },
    /// A signal (`SIGINT`, `SIGTERM`, ...) asked rawkvm to stop; every vCPU was stopped.
    Interrupted {
        /// The signal number.
        signal: i32,
        /// The vCPUs that were still running, and where they stopped.
        stopped: Vec<StoppedVcpu>,
    },
    /// `KVM_RUN` failed with an errno other than `EINTR`.
    Run {
        /// The vCPU id.
        vcpu: u32,
        /// Why.
        errno: Errno,
    },
    /// The `kvm_run` page held something the ABI does not allow.
    Decode {
        /// The vCPU id.
        vcpu: u32,
        /// Which field.
        error: DecodeError,
    },
    /// The guest faulted.
    GuestFault {
        /// The vCPU id.
        vcpu: u32,
        /// What happened.
        fault: GuestFault,
    },
    /// The guest image cannot be used.
    Image(ImageError),
    /// A command-line or configuration value is wrong.
    Usage(String),
    /// The console output could not be written.
    Console(std::io::Error),
    /// Restarting a machine in place failed.
    #[cfg(target_arch = "x86_64")]
    Restart(crate::restart::RestartError),
    /// The thread that drops VMs in the background could not be started.
    Reaper(std::io::Error),
    /// The coalesced-MMIO ring held something the ABI does not allow.
    CoalescedRing {
        /// The vCPU whose run loop was draining it.
        vcpu: u32,
        /// Which field.
        error: crate::sys::run_page::RingError,
    },
}

/// What is wrong with a memory region, found before the kernel is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegionProblem {
    /// Size 0 (which `KVM_SET_USER_MEMORY_REGION` would take as "delete the slot").
    Empty,
    /// Address or size not a multiple of the page size.
    Unaligned,
    /// `guest_phys_addr + size` wraps around.
    Wraps,
    /// The range overlaps an existing slot.
    Overlaps {
        /// The slot it overlaps.
        slot: u32,
        /// That slot's first address.
        start: u64,
        /// That slot's end (exclusive).
        end: u64,
    },
    /// The slot number is already in use.
    SlotInUse,
    /// The host cannot address a region this big.
    TooLarge,
    /// The slot number is not below `KVM_CAP_NR_MEMSLOTS`.
    SlotOutOfRange {
        /// `KVM_CAP_NR_MEMSLOTS`: slots are numbered below it.
        limit: u32,
    },
}

/// A guest fault, owned (the exit it came from borrowed the `kvm_run` page).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuestFault {
    /// `KVM_EXIT_SHUTDOWN`: a triple fault.
    Shutdown,
    /// `KVM_EXIT_FAIL_ENTRY`.
    FailEntry {
        /// Hardware entry failure reason.
        hardware_entry_failure_reason: u64,
        /// Host CPU.
        cpu: u32,
    },
    /// `KVM_EXIT_INTERNAL_ERROR`.
    InternalError {
        /// `KVM_INTERNAL_ERROR_*`.
        suberror: u32,
        /// `internal.data[..ndata]`.
        data: Vec<u64>,
    },
    /// `KVM_EXIT_UNKNOWN`.
    HardwareUnknown {
        /// Hardware exit reason.
        hardware_exit_reason: u64,
    },
    /// `KVM_EXIT_SYSTEM_EVENT` with a type rawkvm does not treat as a normal end.
    SystemEvent {
        /// `KVM_SYSTEM_EVENT_*`.
        event_type: u32,
        /// `system_event.data[..ndata]`.
        data: Vec<u64>,
    },
    /// An exit rawkvm has no handler for.
    Unhandled {
        /// The `KVM_EXIT_*` number.
        reason: u32,
        /// Its decoded payload, as the trace prints it (`flags=0x0 gpa=0x1000 ...`).
        payload: String,
    },
}

impl Error {
    /// The process exit status for this error (see [`status`]).
    pub fn exit_status(&self) -> i32 {
        match self {
            Error::OpenDevice { .. }
            | Error::NotKvm { .. }
            | Error::ApiVersion { .. }
            | Error::MissingCapability { .. }
            | Error::VcpuMmapSize { .. } => status::KVM_UNAVAILABLE,
            Error::Usage(_) | Error::InvalidRegion { .. } => status::USAGE,
            Error::Image(_) => status::IMAGE,
            Error::Ioctl { .. }
            | Error::CreateVm { .. }
            | Error::MapMemory { .. }
            | Error::SetMemoryRegion { .. }
            | Error::GuestMemoryRange { .. }
            | Error::CreateVcpu { .. }
            | Error::MapRun { .. }
            | Error::SetRegisters { .. }
            | Error::RegisterSize { .. }
            | Error::RegistersRejected { .. }
            | Error::Run { .. }
            | Error::Signal { .. }
            | Error::SpawnThread { .. }
            | Error::Reaper(_) => status::SETUP,
            Error::Console(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {
                status::BROKEN_PIPE
            }
            Error::Console(_) => status::SETUP,
            Error::Decode { .. } | Error::GuestFault { .. } | Error::CoalescedRing { .. } => {
                status::GUEST_FAULT
            }
            #[cfg(target_arch = "x86_64")]
            Error::Restart(error) => error.exit_status(),
            Error::Timeout { .. } => status::TIMEOUT,
            Error::Interrupted { signal, .. } => status::signal(*signal),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::OpenDevice { path, errno } => {
                write!(
                    f,
                    "cannot open {}: {}; ",
                    path.display(),
                    ErrnoDisplay(*errno)
                )?;
                f.write_str(match errno {
                    Errno::ENOENT => {
                        "is the kvm module loaded (modprobe kvm_intel or kvm_amd) \
                                     and does the device exist?"
                    }
                    Errno::EACCES | Errno::EPERM => {
                        "add the user to the kvm group or fix the \
                                                    device's ACL (setfacl -m u:$USER:rw /dev/kvm)"
                    }
                    Errno::EISDIR => "that is a directory; pass the KVM character device",
                    _ => "pass the KVM device with --kvm-device PATH",
                })
            }
            Error::NotKvm { path, errno } => write!(
                f,
                "{} is not a KVM device: KVM_GET_API_VERSION failed with {}; pass the KVM \
                 character device (usually /dev/kvm)",
                path.display(),
                ErrnoDisplay(*errno)
            ),
            Error::ApiVersion { found, expected } => write!(
                f,
                "kernel reports KVM API version {found}, rawkvm requires {expected}; this \
                 kernel's KVM is not the stable API rawkvm speaks"
            ),
            Error::MissingCapability {
                capability,
                needed_for,
            } => write!(
                f,
                "the kernel lacks {capability} (KVM_CHECK_EXTENSION returned 0), which rawkvm \
                 needs for {needed_for}; use a newer kernel"
            ),
            Error::VcpuMmapSize { size, errno } => match (size, errno) {
                (_, Some(errno)) => {
                    write!(f, "KVM_GET_VCPU_MMAP_SIZE failed: {}", ErrnoDisplay(*errno))
                }
                (size, None) => write!(
                    f,
                    "KVM_GET_VCPU_MMAP_SIZE reported {} bytes, less than struct kvm_run ({} \
                     bytes); this kernel's KVM is unusable",
                    size.unwrap_or(0),
                    size_of::<rawkvm_bindings::kvm_run>()
                ),
            },
            Error::Ioctl { ioctl, errno } => write!(f, "{ioctl} failed: {}", ErrnoDisplay(*errno)),
            Error::CreateVm { errno } => write!(
                f,
                "KVM_CREATE_VM failed: {}; the host may be out of memory or file descriptors",
                ErrnoDisplay(*errno)
            ),
            Error::InvalidRegion {
                slot,
                guest_phys_addr,
                size,
                reason,
            } => {
                let end = guest_phys_addr.wrapping_add(*size);
                write!(
                    f,
                    "memory region [{guest_phys_addr:#x},{end:#x}) for slot {slot}: "
                )?;
                match reason {
                    RegionProblem::Empty => f.write_str("size must be at least one page"),
                    RegionProblem::Unaligned => f.write_str(
                        "guest address and size must be multiples of the page size 4096",
                    ),
                    RegionProblem::Wraps => f.write_str("guest address + size wraps around"),
                    RegionProblem::Overlaps { slot, start, end } => {
                        write!(f, "overlaps slot {slot} [{start:#x},{end:#x})")
                    }
                    RegionProblem::SlotInUse => f.write_str("the slot is already in use"),
                    RegionProblem::TooLarge => f.write_str("too large for this host"),
                    RegionProblem::SlotOutOfRange { limit } => write!(
                        f,
                        "slot numbers must be below KVM_CAP_NR_MEMSLOTS ({limit})"
                    ),
                }
            }
            Error::MapMemory { size, errno } => write!(
                f,
                "cannot reserve {} of address space for guest RAM: {}",
                crate::units::Size(*size),
                ErrnoDisplay(*errno)
            ),
            Error::SetMemoryRegion {
                slot,
                guest_phys_addr,
                size,
                errno,
            } => {
                write!(
                    f,
                    "KVM_SET_USER_MEMORY_REGION(slot {slot}, gpa {guest_phys_addr:#x}, size \
                     {size:#x}) failed: {}",
                    ErrnoDisplay(*errno)
                )?;
                f.write_str(match *errno {
                    Errno::EEXIST => " (the range overlaps an existing memory slot)",
                    Errno::EINVAL => {
                        " (guest_phys_addr, size and the host address must be page-aligned, \
                         the slot below KVM_CAP_NR_MEMSLOTS, the range must not wrap)"
                    }
                    _ => "",
                })
            }
            Error::GuestMemoryRange {
                guest_phys_addr,
                len,
            } => write!(
                f,
                "guest physical range [{guest_phys_addr:#x}, +{len:#x}) is not inside one \
                 memory region"
            ),
            Error::CreateVcpu {
                id,
                errno,
                max_vcpus,
            } => {
                write!(
                    f,
                    "cannot create vCPU {id}: KVM_CREATE_VCPU failed: {}",
                    ErrnoDisplay(*errno)
                )?;
                match (errno, max_vcpus) {
                    (Errno::EINVAL, Some(max)) => {
                        write!(f, " (KVM_CAP_MAX_VCPUS is {max}; ask for fewer vCPUs)")
                    }
                    (Errno::EEXIST, _) => f.write_str(" (a vCPU with that id already exists)"),
                    _ => Ok(()),
                }
            }
            Error::MapRun { id, size, errno } => write!(
                f,
                "cannot mmap the {size}-byte kvm_run region of vCPU {id}: {}",
                ErrnoDisplay(*errno)
            ),
            Error::SetRegisters { ioctl, errno } => {
                write!(
                    f,
                    "{ioctl} failed: {}; the kernel rejected the register values",
                    ErrnoDisplay(*errno)
                )
            }
            Error::RegisterSize {
                id,
                register_size,
                buffer,
            } => write!(
                f,
                "register {id:#x} holds {register_size} bytes but the buffer has {buffer}; \
                 KVM_GET_ONE_REG/KVM_SET_ONE_REG not called"
            ),
            Error::RegistersRejected {
                ioctl,
                errno,
                values,
            } => write!(
                f,
                "{ioctl} rejected {}: {}; the kernel refuses architecturally invalid values \
                 (e.g. CR0.NW without CR0.CD, CR0.PG without CR0.PE, reserved bits) and changed \
                 nothing",
                RejectedValues(values),
                ErrnoDisplay(*errno)
            ),
            Error::SpawnThread { vcpu, error } => write!(
                f,
                "cannot start the thread of vCPU {vcpu}: {error}; lower --vcpus or raise the \
                 process's thread limit"
            ),
            Error::Timeout { timeout, stopped } => write!(
                f,
                "guest did not halt within {}{}",
                crate::units::Millis(*timeout),
                StoppedList(stopped)
            ),
            Error::Interrupted { signal, stopped } => write!(
                f,
                "stopped by {}{}",
                signal_name(*signal),
                StoppedList(stopped)
            ),
            Error::Signal { errno } => write!(
                f,
                "cannot install the handler of the vCPU kick signal (SIGRTMIN): {}",
                ErrnoDisplay(*errno)
            ),
            Error::Run { vcpu, errno } => {
                write!(f, "KVM_RUN on vCPU {vcpu} failed: {}", ErrnoDisplay(*errno))?;
                if *errno == Errno::ENOSPC {
                    f.write_str(" (the VM has no memory slots)")?;
                }
                Ok(())
            }
            Error::Decode { vcpu, error } => {
                write!(f, "vCPU {vcpu}: undecodable exit in kvm_run: {error}")
            }
            Error::GuestFault { vcpu, fault } => write!(f, "vCPU {vcpu}: {fault}"),
            Error::Image(error) => error.fmt(f),
            Error::Usage(message) => f.write_str(message),
            Error::Console(error) if error.kind() == std::io::ErrorKind::BrokenPipe => write!(
                f,
                "the guest's console output was closed by its reader ({error}); the guest was \
                 stopped"
            ),
            Error::Console(error) => write!(f, "cannot write the guest's console output: {error}"),
            #[cfg(target_arch = "x86_64")]
            Error::Restart(error) => error.fmt(f),
            Error::CoalescedRing { vcpu, error } => write!(f, "vCPU {vcpu}: {error}"),
            Error::Reaper(error) => write!(f, "cannot start the VM reaper thread: {error}"),
        }
    }
}

impl fmt::Display for GuestFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GuestFault::Shutdown => f.write_str("guest triple-faulted (KVM_EXIT_SHUTDOWN)"),
            GuestFault::FailEntry {
                hardware_entry_failure_reason,
                cpu,
            } => {
                write!(
                    f,
                    "VM entry failed (KVM_EXIT_FAIL_ENTRY): hardware_entry_failure_reason \
                     {hardware_entry_failure_reason:#x}"
                )?;
                #[cfg(target_arch = "x86_64")]
                write!(
                    f,
                    " ({})",
                    crate::exit::hardware::explain_entry_failure(*hardware_entry_failure_reason)
                )?;
                write!(f, " on host CPU {cpu}")
            }
            GuestFault::InternalError { suberror, data } => {
                let what = rawkvm_bindings::internal_error_name(*suberror).unwrap_or("unknown");
                write!(
                    f,
                    "KVM internal error (KVM_EXIT_INTERNAL_ERROR): {what} (suberror {suberror}), data: ["
                )?;
                for (i, word) in data.iter().enumerate() {
                    write!(f, "{}{word:#x}", if i == 0 { "" } else { ", " })?;
                }
                f.write_str("]")
            }
            GuestFault::HardwareUnknown {
                hardware_exit_reason,
            } => {
                write!(
                    f,
                    "unhandled hardware exit (KVM_EXIT_UNKNOWN): hardware_exit_reason \
                     {hardware_exit_reason:#x}"
                )?;
                #[cfg(target_arch = "x86_64")]
                write!(
                    f,
                    " ({})",
                    crate::exit::hardware::HostExitReason(*hardware_exit_reason)
                )?;
                Ok(())
            }
            GuestFault::SystemEvent { event_type, data } => write!(
                f,
                "system event (KVM_EXIT_SYSTEM_EVENT) type {event_type} ({}), data {data:x?}",
                rawkvm_bindings::system_event_name(*event_type).unwrap_or("unknown")
            ),
            GuestFault::Unhandled { reason, payload } => {
                write!(
                    f,
                    "unhandled exit {} ({reason})",
                    rawkvm_bindings::exit_reason_name(*reason).unwrap_or("unknown")
                )?;
                if !payload.is_empty() {
                    write!(f, ": {payload}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<ImageError> for Error {
    fn from(error: ImageError) -> Self {
        Error::Image(error)
    }
}
