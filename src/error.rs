//! rawkvm's errors: one variant per failing operation, each carrying the errno, naming the
//! ioctl or path and the value that mattered, and saying what to do. Each belongs to one
//! [`ErrorKind`] (what a caller does about it); the CLI maps kinds to process exit statuses.
//!
//! Advice that asks the user to change a setting names it as the caller knows it: the
//! library's [`Display`](fmt::Display) says `MachineConfig::mem_size`, the CLI passes its own
//! [`SettingNames`] (`--mem`) to [`Error::display_with`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nix::errno::Errno;

use crate::exit::DecodeError;

mod config;
mod cpu;
mod details;
mod elf;
mod image;
mod irq;
mod messages;
#[cfg(target_arch = "x86_64")]
mod restart;
#[cfg(target_arch = "x86_64")]
mod snapshot;
pub use config::ConfigError;
pub use cpu::CpuError;
pub use details::{IP_NAME, LISTED_VCPUS, StoppedVcpu};
pub use elf::{ElfClass, ElfProblem};
pub use image::ImageError;
pub use irq::IrqError;
pub use messages::Described;
#[cfg(target_arch = "x86_64")]
pub use restart::RestartError;
#[cfg(target_arch = "x86_64")]
pub use snapshot::{CpuMismatch, FormatError, Problem, SnapshotError};

/// What kind of failure an error is: what a caller (the CLI: which exit status) does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// KVM is missing or unusable: the device, its permissions, the API version, a capability.
    KvmUnavailable,
    /// A configuration value is wrong (a size, an address, a count); nothing was run.
    Config,
    /// The guest image cannot be used.
    Image,
    /// A resource or set-up step failed (mmap, memory slot, vCPU, registers, threads), a
    /// `KVM_RUN` failed, or output could not be written.
    Setup,
    /// The reader of the output went away (`EPIPE`).
    OutputClosed,
    /// The guest faulted (triple fault, failed entry, internal error, undecodable exit).
    GuestFault,
    /// The guest reported failure through the exit device.
    GuestFailure,
    /// The guest was still running at the deadline.
    Timeout,
    /// A signal stopped the run; its number.
    Interrupted(i32),
}

/// The names of the settings an error's advice may ask the user to change, as the caller
/// knows them: struct fields for a library user ([`SettingNames::LIBRARY`]), flags for the CLI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingNames {
    /// Guest RAM size.
    pub memory: &'static str,
    /// Where the image is loaded.
    pub load_address: &'static str,
    /// The number of vCPUs.
    pub vcpus: &'static str,
    /// How the KVM device is named.
    pub kvm_device: &'static str,
    /// The guest TSC rate (x86).
    pub tsc_khz: &'static str,
}

impl SettingNames {
    /// The library's own names, used by `Display`.
    pub const LIBRARY: SettingNames = SettingNames {
        memory: "MachineConfig::mem_size",
        load_address: "MachineConfig::load_addr",
        vcpus: "MachineConfig::vcpus",
        kvm_device: "Kvm::open_path",
        tsc_khz: "MachineConfig::cpu.tsc_khz",
    };
}

/// `EINTR (Interrupted system call)`: an errno by name and by meaning.
pub struct ErrnoDisplay(pub Errno);

impl fmt::Display for ErrnoDisplay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} ({})", self.0, self.0.desc())
    }
}

/// `ENOENT (No such file or directory)` for an I/O error that carries an errno; the error's
/// own text for one that does not.
pub struct IoErrorDisplay<'a>(pub &'a std::io::Error);

impl fmt::Display for IoErrorDisplay<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.raw_os_error() {
            Some(errno) => ErrnoDisplay(Errno::from_raw(errno)).fmt(f),
            None => self.0.fmt(f),
        }
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
    /// The KVM backend cannot run the CPU mode asked for (`--mode paged` on PVM).
    UnsupportedMode {
        /// The mode's name.
        mode: &'static str,
        /// The backend's module (`kvm_pvm`).
        backend: &'static str,
        /// Why, as measured on that backend.
        reason: &'static str,
    },
    /// A vCPU's CPUID, MSRs or TSC rate could not be set up as asked (x86).
    Cpu(CpuError),
    /// A configuration value is wrong; found before the kernel was asked.
    Config(ConfigError),
    /// The guest ended the run through the exit device with a code other than 0.
    GuestReportedFailure {
        /// The vCPU that wrote it.
        vcpu: u32,
        /// The code it wrote.
        code: u32,
    },
    /// The guest's console output could not be written (the guest was stopped).
    Console(std::io::Error),
    /// rawkvm's own output (help, lists, tables, bench lines, the trace) could not be
    /// written.
    Output {
        /// Where it was going: `stdout`, `stderr`, or the trace file's path.
        target: String,
        /// Why.
        error: std::io::Error,
    },
    /// Restarting a machine in place failed.
    #[cfg(target_arch = "x86_64")]
    Restart(RestartError),
    /// Taking, saving, loading or restoring a snapshot failed.
    #[cfg(target_arch = "x86_64")]
    Snapshot(SnapshotError),
    /// The thread that drops VMs in the background could not be started.
    Reaper(std::io::Error),
    /// The thread that asks for a snapshot after a delay could not be started.
    SnapshotTimer(std::io::Error),
    /// Interrupt set-up or delivery failed, or broke an ordering rule of the irqchip.
    Irq(IrqError),
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
    /// A CPU exception in `--mode long` or `--mode user`, reported by rawkvm's exception stub
    /// (x86).
    CpuException {
        /// The vector, 0..=31.
        vector: u8,
        /// Its mnemonic (`#PF`).
        mnemonic: &'static str,
        /// Its name (`page fault`).
        name: &'static str,
        /// The error code, for the vectors that push one.
        error_code: Option<u64>,
        /// RIP of the faulting instruction.
        rip: u64,
        /// The privilege level the exception came from (CS's low bits).
        cpl: u8,
        /// CR2, the faulting address, for a page fault.
        cr2: Option<u64>,
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
    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::OpenDevice { .. }
            | Error::NotKvm { .. }
            | Error::ApiVersion { .. }
            | Error::MissingCapability { .. }
            | Error::UnsupportedMode { .. }
            | Error::VcpuMmapSize { .. } => ErrorKind::KvmUnavailable,
            Error::Config(_) | Error::InvalidRegion { .. } => ErrorKind::Config,
            Error::Image(_) => ErrorKind::Image,
            Error::Cpu(_) => ErrorKind::Setup,
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
            | Error::Irq(_)
            | Error::SpawnThread { .. }
            | Error::Reaper(_)
            | Error::SnapshotTimer(_) => ErrorKind::Setup,
            Error::Console(error) | Error::Output { error, .. }
                if error.kind() == std::io::ErrorKind::BrokenPipe =>
            {
                ErrorKind::OutputClosed
            }
            Error::Console(_) | Error::Output { .. } => ErrorKind::Setup,
            Error::Decode { .. } | Error::GuestFault { .. } | Error::CoalescedRing { .. } => {
                ErrorKind::GuestFault
            }
            Error::GuestReportedFailure { .. } => ErrorKind::GuestFailure,
            #[cfg(target_arch = "x86_64")]
            Error::Restart(error) => error.kind(),
            #[cfg(target_arch = "x86_64")]
            Error::Snapshot(error) => error.kind(),
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Interrupted { signal, .. } => ErrorKind::Interrupted(*signal),
        }
    }
}

impl std::error::Error for Error {}

impl From<IrqError> for Error {
    fn from(error: IrqError) -> Self {
        Error::Irq(error)
    }
}

impl From<CpuError> for Error {
    fn from(error: CpuError) -> Self {
        Error::Cpu(error)
    }
}

impl From<ImageError> for Error {
    fn from(error: ImageError) -> Self {
        Error::Image(error)
    }
}
