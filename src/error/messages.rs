//! What each error says: the message names the operation (the ioctl by name), the errno by
//! name and meaning, the value that mattered, and what to do.

use std::fmt;

use nix::errno::Errno;

use super::details::{RejectedValues, StoppedList, signal_name};
use super::{ErrnoDisplay, Error, GuestFault, IoErrorDisplay, RegionProblem, SettingNames};

/// An error's message with its advice naming settings as a caller knows them
/// ([`Error::display_with`]).
#[derive(Debug, Clone, Copy)]
pub struct Described<'a> {
    error: &'a Error,
    names: &'a SettingNames,
}

impl Error {
    /// The message, with advice that names settings by `names` (the CLI passes its flags).
    pub fn display_with<'a>(&'a self, names: &'a SettingNames) -> Described<'a> {
        Described { error: self, names }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.display_with(&SettingNames::LIBRARY).fmt(f)
    }
}

impl fmt::Display for Described<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = self.names;
        match self.error {
            Error::OpenDevice { path, errno } => {
                write!(
                    f,
                    "cannot open {}: {}; ",
                    path.display(),
                    ErrnoDisplay(*errno)
                )?;
                f.write_str(match errno {
                    Errno::ENOENT => {
                        "is a KVM module loaded (kvm_intel, kvm_amd, ...) and does the device \
                         exist?"
                    }
                    Errno::EACCES | Errno::EPERM => {
                        "add the user to the kvm group or fix the \
                                                    device's ACL (setfacl -m u:$USER:rw /dev/kvm)"
                    }
                    Errno::EISDIR => "that is a directory; pass the KVM character device",
                    _ => return write!(f, "pass the KVM device with {}", names.kvm_device),
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
            Error::UnsupportedMode {
                mode,
                backend,
                reason,
            } => write!(
                f,
                "--mode {mode} is not supported by this host's KVM backend {backend}: {reason}"
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
                "cannot start the thread of vCPU {vcpu}: {error}; lower {} or raise the \
                 process's thread limit",
                names.vcpus
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
            Error::Image(error) => error.describe(f, names),
            Error::Config(error) => error.describe(f, names),
            Error::Cpu(error) => error.describe(f, names),
            Error::GuestReportedFailure { vcpu, code } => {
                write!(f, "vCPU {vcpu}: guest reported failure (code {code})")
            }
            Error::Console(error) if error.kind() == std::io::ErrorKind::BrokenPipe => write!(
                f,
                "the guest's console output was closed by its reader: {}; the guest was stopped",
                IoErrorDisplay(error)
            ),
            Error::Console(error) => write!(
                f,
                "cannot write the guest's console output: {}; the guest was stopped",
                IoErrorDisplay(error)
            ),
            Error::Output { target, error } if error.kind() == std::io::ErrorKind::BrokenPipe => {
                write!(f, "{target} was closed")
            }
            Error::Output { target, error } => write!(
                f,
                "cannot write to {target}: {}; check that it has room and is writable",
                IoErrorDisplay(error)
            ),
            #[cfg(target_arch = "x86_64")]
            Error::Restart(error) => error.fmt(f),
            #[cfg(target_arch = "x86_64")]
            Error::Snapshot(error) => error.fmt(f),
            Error::CoalescedRing { vcpu, error } => write!(f, "vCPU {vcpu}: {error}"),
            Error::Irq(error) => error.fmt(f),
            Error::Reaper(error) => write!(f, "cannot start the VM reaper thread: {error}"),
            Error::SnapshotTimer(error) => {
                write!(f, "cannot start the snapshot timer thread: {error}")
            }
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
            GuestFault::CpuException {
                vector,
                mnemonic,
                name,
                error_code,
                rip,
                cpl,
                cr2,
            } => {
                write!(
                    f,
                    "CPU exception {mnemonic} ({name}, vector {vector}) at CPL {cpl}, RIP \
                     {rip:#018x}"
                )?;
                if let Some(code) = error_code {
                    write!(f, ", error code {code:#x}")?;
                    if *vector == PAGE_FAULT {
                        write!(f, " ({})", page_fault_cause(*code))?;
                    }
                }
                if let Some(address) = cr2 {
                    write!(f, ", CR2 {address:#018x}")?;
                }
                Ok(())
            }
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

/// The x86 page-fault vector.
const PAGE_FAULT: u8 = 14;

/// What a page fault's error code says: `not present, write, user`.
fn page_fault_cause(error_code: u64) -> String {
    let mut parts = vec![
        if error_code & 1 != 0 {
            "protection violation"
        } else {
            "not present"
        },
        if error_code & 2 != 0 { "write" } else { "read" },
        if error_code & 4 != 0 {
            "user"
        } else {
            "supervisor"
        },
    ];
    if error_code & 8 != 0 {
        parts.push("reserved bit set");
    }
    if error_code & 16 != 0 {
        parts.push("instruction fetch");
    }
    parts.join(", ")
}
