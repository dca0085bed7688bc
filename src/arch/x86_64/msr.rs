//! Model-specific registers and the TSC rate.
//!
//! ```text
//! ioctl(kvm, KVM_GET_MSR_INDEX_LIST, &{ nmsrs: 0 })          E2BIG, nmsrs = how many there are
//! ioctl(kvm, KVM_GET_MSR_INDEX_LIST, &{ nmsrs: n, indices })  the MSRs KVM_GET/SET_MSRS handle
//! ioctl(kvm, KVM_GET_MSR_FEATURE_INDEX_LIST, ...)            the same for the feature MSRs
//! ioctl(kvm, KVM_GET_MSRS, &{ nmsrs, entries: [{ index }] })  the feature MSRs' values
//! ioctl(vcpu, KVM_GET_MSRS, &{ nmsrs, entries: [{ index }] }) returns how many it read
//! ioctl(vcpu, KVM_SET_MSRS, &{ nmsrs, entries: [{ index, data }] })
//!                                                            returns how many it wrote
//! ioctl(vcpu, KVM_GET_TSC_KHZ, 0)                            returns the guest TSC rate, kHz
//! ioctl(vcpu, KVM_SET_TSC_KHZ, khz)                          then GET again: did it take?
//! ```
//!
//! `KVM_GET_MSRS` and `KVM_SET_MSRS` stop at the first MSR they refuse and return how many
//! they handled; [`Vcpu::msrs`] and [`Vcpu::set_msrs`] turn a short count into
//! [`CpuError::MsrRefused`], naming that MSR. MSRs handled in the kernel agree with the guest's
//! own `rdmsr`/`wrmsr`.
//!
//! On `kvm_pvm` the guest TSC is the host's: `KVM_SET_TSC_KHZ` to a lower rate is `EINVAL`, to
//! a higher one succeeds and changes nothing (`KVM_GET_TSC_KHZ` then reads the rate asked for,
//! even after the `EINVAL`: the kernel stores it before it checks). [`Vcpu::set_tsc_khz`]
//! refuses a rate that cannot take effect ([`CpuError::TscKhzIgnored`]).

use std::os::fd::BorrowedFd;

use libc::c_ulong;
use rawkvm_bindings::{KVM_CAP_TSC_CONTROL, kvm_msr_entry, kvm_msr_list, kvm_msrs};

use super::cpuid::flex_error;
use super::msr_names::msr_name;
use crate::error::{CpuError, Error};
use crate::kvm::Kvm;
use crate::kvm::vcpu::Vcpu;
use crate::sys::ioctl::{FlexArray, FlexError, FlexReads, FlexReadsWrites, Ioctl, system, vcpu};

/// One MSR and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msr {
    /// The MSR's index (`ecx` of `rdmsr`).
    pub index: u32,
    /// Its value.
    pub value: u64,
}

impl Msr {
    /// MSR `index` with `value`.
    pub const fn new(index: u32, value: u64) -> Msr {
        Msr { index, value }
    }

    /// The MSR's name, if rawkvm knows it ([`super::msr_names`]).
    pub fn name(&self) -> Option<&'static str> {
        msr_name(self.index)
    }
}

/// How many times an index list is asked for again if it grew between the count and the read.
const LIST_TRIES: usize = 4;

/// `ioctl(kvm, LIST, &{ nmsrs: 0 })` for the count, then with room for it.
fn index_list(
    fd: BorrowedFd<'_>,
    ioctl: &Ioctl<FlexReadsWrites<kvm_msr_list>>,
) -> Result<Vec<u32>, Error> {
    let mut room = 0;
    for _ in 0..LIST_TRIES {
        let mut list = FlexArray::<kvm_msr_list>::with_capacity(room);
        match ioctl.call(fd, &mut list) {
            Ok(_) => return Ok(list.entries().to_vec()),
            // The kernel wrote the count it needs into the header.
            Err(FlexError::Kernel(nix::errno::Errno::E2BIG)) => {
                room = usize::try_from(list.header().nmsrs).unwrap_or(usize::MAX);
            }
            Err(error) => return Err(flex_error(ioctl.name, error)),
        }
    }
    Err(Error::Ioctl {
        ioctl: ioctl.name,
        errno: nix::errno::Errno::E2BIG,
    })
}

/// A `kvm_msrs` buffer with these entries.
fn msrs_buffer(msrs: impl ExactSizeIterator<Item = Msr>) -> FlexArray<kvm_msrs> {
    let entries: Vec<kvm_msr_entry> = msrs
        .map(|msr| kvm_msr_entry {
            index: msr.index,
            reserved: 0,
            data: msr.value,
        })
        .collect();
    FlexArray::from_entries(kvm_msrs::default(), &entries)
}

/// The result of a `KVM_GET_MSRS`/`KVM_SET_MSRS` that returned `handled`: all of them, or the
/// first one refused.
fn check_handled(
    ioctl: &'static str,
    vcpu: Option<u32>,
    buf: &FlexArray<kvm_msrs>,
    handled: i32,
) -> Result<(), Error> {
    let entries = buf.entries();
    let done = usize::try_from(handled).unwrap_or(0);
    match entries.get(done) {
        None => Ok(()),
        Some(refused) => Err(CpuError::MsrRefused {
            ioctl,
            vcpu,
            index: refused.index,
            name: msr_name(refused.index),
            done,
            asked: entries.len(),
        }
        .into()),
    }
}

/// `ioctl(fd, KVM_GET_MSRS, ...)` for `indices`, on the system fd or a vCPU.
fn get_msrs(
    fd: BorrowedFd<'_>,
    ioctl: &Ioctl<FlexReadsWrites<kvm_msrs>>,
    vcpu: Option<u32>,
    indices: &[u32],
) -> Result<Vec<Msr>, Error> {
    let mut buf = msrs_buffer(indices.iter().map(|&index| Msr { index, value: 0 }));
    let handled = ioctl
        .call(fd, &mut buf)
        .map_err(|error| flex_error(ioctl.name, error))?;
    check_handled(ioctl.name, vcpu, &buf, handled)?;
    Ok(buf
        .entries()
        .iter()
        .map(|e| Msr {
            index: e.index,
            value: e.data,
        })
        .collect())
}

impl Kvm {
    /// `KVM_GET_MSR_INDEX_LIST`: the MSRs a vCPU's `KVM_GET_MSRS`/`KVM_SET_MSRS` handle (what a
    /// VMM saves and restores).
    pub fn msr_index_list(&self) -> Result<Vec<u32>, Error> {
        index_list(self.fd(), &system::GET_MSR_INDEX_LIST)
    }

    /// `KVM_GET_MSR_FEATURE_INDEX_LIST` (`KVM_CAP_GET_MSR_FEATURES`): the feature MSRs, whose
    /// values `/dev/kvm` reports ([`Kvm::feature_msrs`]).
    pub fn feature_msr_index_list(&self) -> Result<Vec<u32>, Error> {
        index_list(self.fd(), &system::GET_MSR_FEATURE_INDEX_LIST)
    }

    /// `ioctl(kvm, KVM_GET_MSRS, ...)`: the values of feature MSRs (what the host lets a
    /// guest see, ARCH_CAPABILITIES and the like).
    pub fn feature_msrs(&self, indices: &[u32]) -> Result<Vec<Msr>, Error> {
        get_msrs(self.fd(), &system::GET_FEATURE_MSRS, None, indices)
    }
}

impl Vcpu {
    /// `ioctl(vcpu, KVM_GET_MSRS, ...)`: the values of `indices`, in that order. An MSR the
    /// kernel does not handle is [`CpuError::MsrRefused`].
    pub fn msrs(&self, indices: &[u32]) -> Result<Vec<Msr>, Error> {
        get_msrs(self.fd(), &vcpu::GET_MSRS, Some(self.id()), indices)
    }

    /// `ioctl(vcpu, KVM_SET_MSRS, ...)`: writes `msrs` in order; the kernel stops at the first
    /// it refuses (unknown, or an invalid value), which is [`CpuError::MsrRefused`] (the ones
    /// before it were written).
    pub fn set_msrs(&self, msrs: &[Msr]) -> Result<(), Error> {
        let set: &Ioctl<FlexReads<kvm_msrs>> = &vcpu::SET_MSRS;
        let buf = msrs_buffer(msrs.iter().copied());
        let handled = set
            .call(self.fd(), &buf)
            .map_err(|error| flex_error(set.name, error))?;
        check_handled(set.name, Some(self.id()), &buf, handled)
    }

    /// `ioctl(vcpu, KVM_GET_TSC_KHZ, 0)`: the guest's TSC rate in kHz.
    pub fn tsc_khz(&self) -> Result<u32, Error> {
        let khz = vcpu::GET_TSC_KHZ
            .call(self.fd())
            .map_err(|errno| Error::Ioctl {
                ioctl: vcpu::GET_TSC_KHZ.name,
                errno,
            })?;
        Ok(u32::try_from(khz).unwrap_or(0))
    }

    /// `ioctl(vcpu, KVM_SET_TSC_KHZ, khz)`, between two `KVM_GET_TSC_KHZ`. The kernel's
    /// refusal is [`CpuError::TscKhzRefused`] (with its errno); a rate the kernel accepted but
    /// cannot apply is [`CpuError::TscKhzIgnored`]: one that reads back differently, or one
    /// that needs TSC scaling on a host without it (`KVM_CAP_TSC_CONTROL` 0), where the kernel
    /// only corrects the TSC at guest entries ("catch-up") and the guest's `rdtsc`, which does
    /// not exit, keeps the host's rate.
    pub fn set_tsc_khz(&self, khz: u32) -> Result<(), Error> {
        // After a refused set the kernel reports the refused rate (it stores it first), so
        // the rate the guest really has is the one read before.
        let host = self.tsc_khz()?;
        if let Err(errno) = vcpu::SET_TSC_KHZ.call(self.fd(), c_ulong::from(khz)) {
            return Err(CpuError::TscKhzRefused {
                asked: khz,
                current: host,
                errno,
            }
            .into());
        }
        let read_back = self.tsc_khz()?;
        let scaling = self.vm_check_extension(KVM_CAP_TSC_CONTROL) > 0;
        if read_back != khz || (needs_scaling(host, khz) && !scaling) {
            return Err(CpuError::TscKhzIgnored {
                asked: khz,
                current: host,
                read_back,
            }
            .into());
        }
        Ok(())
    }
}

/// Whether running at `asked` kHz on a host TSC of `host` kHz needs scaling: outside the
/// kernel's tolerance of 250 parts per million (`tsc_tolerance_ppm`).
pub fn needs_scaling(host: u32, asked: u32) -> bool {
    u64::from(host.abs_diff(asked)) * 1_000_000 > u64::from(host) * TSC_TOLERANCE_PPM
}

/// The kernel's `tsc_tolerance_ppm` default: rates this close to the host's need no scaling.
const TSC_TOLERANCE_PPM: u64 = 250;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scaling_is_needed_beyond_250_ppm() {
        assert!(!needs_scaling(2_000_000, 2_000_000));
        assert!(!needs_scaling(2_000_000, 2_000_500));
        assert!(needs_scaling(2_000_000, 2_000_501));
        assert!(needs_scaling(2_000_000, 1_000));
    }
}
