//! `KVM_GET_ONE_REG` and `KVM_SET_ONE_REG`: their argument, `struct kvm_one_reg`, holds a
//! pointer the kernel reads or writes `KVM_REG_SIZE(id)` bytes through, so they are no table
//! entries but two functions that check the buffer against the id first.
//!
//! This file holds `unsafe`: the two `libc::ioctl` calls.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};

use nix::errno::Errno;
use rawkvm_bindings as abi;

use super::check;

/// Why a `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` did not happen or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OneRegError {
    /// The buffer is not `KVM_REG_SIZE(id)` bytes; the ioctl was not made.
    Size {
        /// The size the register id encodes.
        register: usize,
    },
    /// The kernel refused (an unknown id is `ENOENT` or `EINVAL`).
    Kernel(Errno),
}

/// `ioctl(vcpu, KVM_GET_ONE_REG, &{ id, addr: value })`: the register's bytes, in the host's
/// byte order, into `value`, which must be exactly `KVM_REG_SIZE(id)` bytes.
pub(crate) fn get_one_reg(
    vcpu: BorrowedFd<'_>,
    id: u64,
    value: &mut [u8],
) -> Result<(), OneRegError> {
    let register = abi::kvm_reg_size(id);
    if value.len() != register {
        return Err(OneRegError::Size { register });
    }
    let arg = abi::kvm_one_reg {
        id,
        addr: value.as_mut_ptr() as u64,
    };
    let ptr: *const abi::kvm_one_reg = &arg;
    // The kernel reads one `kvm_one_reg` from `ptr` (the request's size is that struct's), then
    // writes at most `KVM_REG_SIZE(id)` bytes at `addr` (api.rst 4.69, "KVM_GET_ONE_REG").
    // SAFETY: `ptr` is a live local; `addr` is `value`, an exclusive borrow of exactly
    // `KVM_REG_SIZE(id)` bytes (checked above), and any bytes are valid `u8`s.
    let ret = unsafe { libc::ioctl(vcpu.as_raw_fd(), abi::KVM_GET_ONE_REG, ptr) };
    check(ret).map(drop).map_err(OneRegError::Kernel)
}

/// `ioctl(vcpu, KVM_SET_ONE_REG, &{ id, addr: value })`: `value` must be exactly
/// `KVM_REG_SIZE(id)` bytes, in the host's byte order.
pub(crate) fn set_one_reg(vcpu: BorrowedFd<'_>, id: u64, value: &[u8]) -> Result<(), OneRegError> {
    let register = abi::kvm_reg_size(id);
    if value.len() != register {
        return Err(OneRegError::Size { register });
    }
    let arg = abi::kvm_one_reg {
        id,
        addr: value.as_ptr() as u64,
    };
    let ptr: *const abi::kvm_one_reg = &arg;
    // SAFETY: the kernel reads one `kvm_one_reg` from `ptr` (a live local) and then reads at
    // most `KVM_REG_SIZE(id)` bytes from `addr` (api.rst 4.68, "KVM_SET_ONE_REG"); `addr` is
    // `value`, a live borrow of exactly that many bytes (checked above). Nothing is written.
    let ret = unsafe { libc::ioctl(vcpu.as_raw_fd(), abi::KVM_SET_ONE_REG, ptr) };
    check(ret).map(drop).map_err(OneRegError::Kernel)
}
