//! Why a vCPU's CPUID, MSRs or TSC rate could not be set up as asked (x86). Each is a set-up
//! step the kernel refused or would refuse: [`super::ErrorKind::Setup`].

use std::fmt;

use nix::errno::Errno;

use super::{ErrnoDisplay, SettingNames};

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
        /// The vCPU's rate before (`KVM_GET_TSC_KHZ`): the host's.
        current: u32,
        /// Why (`EINVAL`: no TSC scaling to that rate; `ENOTTY`: no `KVM_CAP_TSC_CONTROL`).
        errno: Errno,
    },
    /// `KVM_SET_TSC_KHZ` succeeded but cannot take effect: the rate reads back differently,
    /// or it needs TSC scaling and the host has none (`KVM_CAP_TSC_CONTROL` 0: the kernel only
    /// corrects the TSC at guest entries, and `rdtsc` does not exit; on PVM the guest TSC is
    /// the host's).
    TscKhzIgnored {
        /// The rate asked for, in kHz.
        asked: u32,
        /// The vCPU's rate before, in kHz: the host's.
        current: u32,
        /// What `KVM_GET_TSC_KHZ` read after the set.
        read_back: u32,
    },
}

impl fmt::Display for CpuError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f, &SettingNames::LIBRARY)
    }
}

impl CpuError {
    /// The message, advice naming settings by `names`.
    pub(super) fn describe(&self, f: &mut fmt::Formatter<'_>, names: &SettingNames) -> fmt::Result {
        let tsc_khz = names.tsc_khz;
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
                     {asked} kHz (no TSC scaling to it), only at the host's {current} kHz; drop \
                     {tsc_khz} or give {current}",
                    ErrnoDisplay(*errno)
                )
            }
            CpuError::TscKhzIgnored {
                asked,
                current,
                read_back,
            } => {
                write!(
                    f,
                    "KVM_SET_TSC_KHZ {asked} was accepted but cannot take effect: "
                )?;
                if read_back != asked {
                    write!(f, "KVM_GET_TSC_KHZ reads back {read_back} kHz")?;
                } else {
                    f.write_str(
                        "this host has no TSC scaling (KVM_CAP_TSC_CONTROL is 0), so the kernel \
                         only corrects the TSC at guest entries while the guest's rdtsc, which \
                         does not exit, keeps",
                    )?;
                    write!(
                        f,
                        " the host's {current} kHz (KVM_GET_TSC_KHZ reads {read_back})"
                    )?;
                }
                write!(f, "; drop {tsc_khz} or give {current}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_names_the_setting_the_caller_knows() {
        let error = CpuError::TscKhzRefused {
            asked: 1000,
            current: 2_000_000,
            errno: Errno::EINVAL,
        };
        let text = error.to_string();
        assert!(text.contains("EINVAL"), "{text}");
        assert!(
            text.ends_with("drop MachineConfig::cpu.tsc_khz or give 2000000"),
            "{text}"
        );
        let refused = CpuError::MsrRefused {
            ioctl: "KVM_SET_MSRS",
            vcpu: Some(1),
            index: 0xc000_0080,
            name: Some("IA32_EFER"),
            done: 0,
            asked: 1,
        };
        assert!(
            refused
                .to_string()
                .starts_with("KVM_SET_MSRS handled 0 of 1 MSRs on vCPU 1: the kernel refused MSR 0xc0000080 (IA32_EFER)")
        );
    }
}
