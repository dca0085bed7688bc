//! Why a vCPU's CPUID, MSRs or TSC rate could not be set up as asked (x86).

use std::fmt;

use nix::errno::Errno;

use super::{ErrnoDisplay, status};

/// Why CPUID, MSR or TSC set-up failed; found before asking the kernel where it can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpuError {
    /// `KVM_SET_CPUID2` on a vCPU that has run, with a table other than the one
    /// `KVM_GET_CPUID2` reads back: the kernel would refuse it with `EINVAL`. Not asked.
    CpuidAfterRun {
        /// The vCPU id.
        vcpu: u32,
    },
    /// `KVM_GET_SUPPORTED_CPUID` or `KVM_GET_CPUID2` still said `E2BIG` with room for this many
    /// entries (far above any kernel's `KVM_MAX_CPUID_ENTRIES`).
    CpuidTooLarge {
        /// The ioctl.
        ioctl: &'static str,
        /// Entries offered at the last try.
        entries: usize,
    },
    /// `KVM_GET_MSRS` or `KVM_SET_MSRS` handled fewer MSRs than asked: it stops at the first
    /// MSR it refuses.
    MsrRefused {
        /// The ioctl.
        ioctl: &'static str,
        /// The vCPU id, or `None` for the system fd (feature MSRs).
        vcpu: Option<u32>,
        /// The first MSR not handled.
        index: u32,
        /// Its name, if rawkvm knows it.
        name: Option<&'static str>,
        /// How many were handled before it.
        done: usize,
        /// How many were asked for.
        asked: usize,
    },
    /// `KVM_SET_TSC_KHZ` failed.
    TscKhzRefused {
        /// The rate asked for, in kHz.
        asked: u32,
        /// The vCPU's rate (`KVM_GET_TSC_KHZ`), if it could be read.
        current: Option<u32>,
        /// Why (`EINVAL`: no TSC scaling to that rate; `ENOTTY`: no `KVM_CAP_TSC_CONTROL`).
        errno: Errno,
    },
    /// `KVM_SET_TSC_KHZ` succeeded, but `KVM_GET_TSC_KHZ` reads back another rate: the kernel
    /// accepted the value and did not apply it (PVM: the guest TSC is the host's).
    TscKhzIgnored {
        /// The rate asked for, in kHz.
        asked: u32,
        /// The rate read back, in kHz.
        current: u32,
    },
}

impl CpuError {
    /// The process exit status: every one is a set-up step the kernel refused or would refuse.
    pub fn exit_status(&self) -> i32 {
        status::SETUP
    }
}

impl fmt::Display for CpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CpuError::CpuidAfterRun { vcpu } => write!(
                f,
                "KVM_SET_CPUID2 on vCPU {vcpu} was not made: the vCPU has run, and after the \
                 first KVM_RUN the kernel accepts only the table KVM_GET_CPUID2 reads back \
                 (anything else is EINVAL); set CPUID before the first run, or on a new vCPU"
            ),
            CpuError::CpuidTooLarge { ioctl, entries } => write!(
                f,
                "{ioctl} still wants more room with {entries} entries; this kernel's CPUID table \
                 is larger than rawkvm allows"
            ),
            CpuError::MsrRefused {
                ioctl,
                vcpu,
                index,
                name,
                done,
                asked,
            } => {
                write!(f, "{ioctl} handled {done} of {asked} MSRs")?;
                if let Some(vcpu) = vcpu {
                    write!(f, " on vCPU {vcpu}")?;
                }
                write!(f, ": the kernel refused MSR {index:#x}")?;
                if let Some(name) = name {
                    write!(f, " ({name})")?;
                }
                f.write_str(
                    "; it is not one KVM handles here, or the value is invalid for it (`rawkvm \
                     msrs` lists the MSRs KVM knows)",
                )
            }
            CpuError::TscKhzRefused {
                asked,
                current,
                errno,
            } => {
                write!(
                    f,
                    "KVM_SET_TSC_KHZ {asked} failed: {}; this host cannot run the guest TSC at \
                     that rate (no TSC scaling to it)",
                    ErrnoDisplay(*errno)
                )?;
                match current {
                    Some(khz) => write!(f, "; the guest TSC runs at {khz} kHz, the host's rate"),
                    None => Ok(()),
                }
            }
            CpuError::TscKhzIgnored { asked, current } => write!(
                f,
                "KVM_SET_TSC_KHZ {asked} was accepted but had no effect: KVM_GET_TSC_KHZ still \
                 reads {current} kHz (on this backend the guest TSC is the host's); drop \
                 --tsc-khz or give {current}"
            ),
        }
    }
}
