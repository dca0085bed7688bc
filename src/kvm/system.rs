//! The system level: `/dev/kvm`.
//!
//! ```text
//! kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC)
//! ioctl(kvm, KVM_GET_API_VERSION, 0)        == 12, or nothing else is meaningful
//! ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_*) 0 = absent, > 0 = present (sometimes a count)
//! ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0)      bytes to mmap on each vCPU fd
//! ioctl(kvm, KVM_CREATE_VM, 0)               a VM fd (see [`crate::kvm::vm`])
//! ```

use std::fs::OpenOptions;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use nix::errno::Errno;
use rawkvm_bindings as abi;

use crate::error::Error;
use crate::kvm::vm::{Vm, VmCaps};
use crate::sys::ioctl::{VmFd, system};

/// Where the KVM device usually is.
pub const DEFAULT_DEVICE: &str = "/dev/kvm";

/// The capabilities rawkvm cannot work without, with what each is for.
pub const REQUIRED_CAPABILITIES: &[(u32, &str, &str)] = &[
    (
        abi::KVM_CAP_USER_MEMORY,
        "KVM_CAP_USER_MEMORY",
        "guest RAM (KVM_SET_USER_MEMORY_REGION)",
    ),
    (
        abi::KVM_CAP_IMMEDIATE_EXIT,
        "KVM_CAP_IMMEDIATE_EXIT",
        "stopping a running vCPU",
    ),
];

/// Checks the value `KVM_GET_API_VERSION` returned. Every kernel since 2.6.22 says 12.
pub fn check_api_version(found: i32) -> Result<(), Error> {
    let expected = abi::KVM_API_VERSION;
    if found == expected {
        Ok(())
    } else {
        Err(Error::ApiVersion { found, expected })
    }
}

/// Checks that every capability in [`REQUIRED_CAPABILITIES`] is present, asking `check` for
/// each (a pure function, so it can be tested with a table of answers).
pub fn check_required_capabilities(mut check: impl FnMut(u32) -> i32) -> Result<(), Error> {
    for &(cap, capability, needed_for) in REQUIRED_CAPABILITIES {
        if check(cap) <= 0 {
            return Err(Error::MissingCapability {
                capability,
                needed_for,
            });
        }
    }
    Ok(())
}

/// An open KVM device, checked to speak API version 12.
#[derive(Debug)]
pub struct Kvm {
    fd: OwnedFd,
    path: PathBuf,
    vcpu_mmap_size: usize,
    /// Capabilities every VM wants, asked once: a VM created in a hurry should not pay
    /// system calls for constants.
    vm_caps: OnceLock<VmCaps>,
    /// `KVM_GET_SUPPORTED_CPUID`, asked once (see [`crate::arch::x86_64::cpuid`]): every
    /// vCPU of every VM starts from it.
    #[cfg(target_arch = "x86_64")]
    pub(crate) supported_cpuid: OnceLock<Vec<abi::kvm_cpuid_entry2>>,
}

impl Kvm {
    /// Opens [`DEFAULT_DEVICE`].
    pub fn open() -> Result<Kvm, Error> {
        Kvm::open_path(DEFAULT_DEVICE)
    }

    /// Opens the KVM device at `path` (`O_RDWR | O_CLOEXEC`), checks the API version and the
    /// capabilities rawkvm needs, and reads the vCPU mmap size.
    pub fn open_path(path: impl AsRef<Path>) -> Result<Kvm, Error> {
        let path = path.as_ref().to_path_buf();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| Error::OpenDevice {
                path: path.clone(),
                errno: io_errno(&e),
            })?;
        let fd = OwnedFd::from(file);
        let version = system::GET_API_VERSION
            .call(fd.as_fd())
            .map_err(|errno| Error::NotKvm {
                path: path.clone(),
                errno,
            })?;
        check_api_version(version)?;
        let mut kvm = Kvm {
            fd,
            path,
            vcpu_mmap_size: 0,
            vm_caps: OnceLock::new(),
            #[cfg(target_arch = "x86_64")]
            supported_cpuid: OnceLock::new(),
        };
        check_required_capabilities(|cap| kvm.check_extension(cap))?;
        kvm.vcpu_mmap_size = kvm.read_vcpu_mmap_size()?;
        Ok(kvm)
    }

    fn read_vcpu_mmap_size(&self) -> Result<usize, Error> {
        let size = system::GET_VCPU_MMAP_SIZE
            .call(self.fd.as_fd())
            .map_err(|errno| Error::VcpuMmapSize {
                size: None,
                errno: Some(errno),
            })?;
        let size = usize::try_from(size).unwrap_or(0);
        if size < size_of::<abi::kvm_run>() {
            return Err(Error::VcpuMmapSize {
                size: Some(size),
                errno: None,
            });
        }
        Ok(size)
    }

    /// Borrows the fd for the system ioctls of the architecture modules (CPUID, MSR lists).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The device path this was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `KVM_GET_API_VERSION` (always 12 once opened).
    pub fn api_version(&self) -> i32 {
        abi::KVM_API_VERSION
    }

    /// `ioctl(kvm, KVM_CHECK_EXTENSION, cap)`: 0 if absent, a positive value if present.
    /// Failures (which only an unknown request would cause) read as absent.
    pub fn check_extension(&self, cap: u32) -> i32 {
        system::CHECK_EXTENSION
            .call(self.fd.as_fd(), libc::c_ulong::from(cap))
            .unwrap_or(0)
    }

    /// The capabilities every VM wants, asked the first time.
    pub(crate) fn vm_caps(&self) -> VmCaps {
        *self.vm_caps.get_or_init(|| VmCaps {
            vcpu_mmap_size: self.vcpu_mmap_size,
            coalesced_mmio: self.check_extension(abi::KVM_CAP_COALESCED_MMIO),
            max_vcpus: self.check_extension(abi::KVM_CAP_MAX_VCPUS),
            nr_memslots: self.check_extension(abi::KVM_CAP_NR_MEMSLOTS),
        })
    }

    /// `KVM_GET_VCPU_MMAP_SIZE`: the size of each vCPU's `kvm_run` region (3 pages on x86:
    /// `kvm_run`, the PIO data page, the coalesced-MMIO ring).
    pub fn vcpu_mmap_size(&self) -> usize {
        self.vcpu_mmap_size
    }

    /// `ioctl(kvm, KVM_CREATE_VM, 0)`, retried on `EINTR`.
    pub fn create_vm(&self) -> Result<Vm, Error> {
        let fd = VmFd::create(self.fd.as_fd(), 0).map_err(|errno| Error::CreateVm { errno })?;
        Ok(Vm::new(fd, self.vm_caps()))
    }
}

/// The errno behind an `io::Error` from `std::fs`.
pub(crate) fn io_errno(error: &std::io::Error) -> Errno {
    error
        .raw_os_error()
        .map_or(Errno::UnknownErrno, Errno::from_raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_version_12_is_accepted() {
        assert!(check_api_version(12).is_ok());
        for found in [11, 13, -1, i32::MIN, 0] {
            match check_api_version(found) {
                Err(Error::ApiVersion {
                    found: f,
                    expected: 12,
                }) => assert_eq!(f, found),
                other => panic!("{found}: {other:?}"),
            }
        }
        let message = check_api_version(11).unwrap_err().to_string();
        assert!(message.contains("kernel reports KVM API version 11, rawkvm requires 12"));
    }

    #[test]
    fn a_missing_capability_is_named() {
        assert!(check_required_capabilities(|_| 1).is_ok());
        let error =
            check_required_capabilities(|cap| i32::from(cap != abi::KVM_CAP_IMMEDIATE_EXIT))
                .unwrap_err();
        match &error {
            Error::MissingCapability {
                capability: "KVM_CAP_IMMEDIATE_EXIT",
                ..
            } => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(error.kind(), crate::error::ErrorKind::KvmUnavailable);
        assert!(error.to_string().contains("KVM_CAP_IMMEDIATE_EXIT"));
    }

    #[test]
    fn every_required_capability_is_checked_and_named() {
        for &(missing, name, needed_for) in REQUIRED_CAPABILITIES {
            let error = check_required_capabilities(|cap| i32::from(cap != missing)).unwrap_err();
            assert!(
                matches!(error, Error::MissingCapability { capability, .. } if capability == name),
                "{name}: {error:?}"
            );
            assert_eq!(
                error.to_string(),
                format!(
                    "the kernel lacks {name} (KVM_CHECK_EXTENSION returned 0), which rawkvm \
                     needs for {needed_for}; use a newer kernel"
                )
            );
        }
        // A negative answer (an error read as absent) is absent too.
        assert!(check_required_capabilities(|_| -1).is_err());
    }
}
