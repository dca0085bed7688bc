//! Registers one at a time, on every architecture: `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`.
//!
//! ```text
//! ioctl(vcpu, KVM_GET_ONE_REG, &{ id, addr: &value })   KVM_REG_SIZE(id) bytes written at addr
//! ioctl(vcpu, KVM_SET_ONE_REG, &{ id, addr: &value })   KVM_REG_SIZE(id) bytes read from addr
//! ```
//!
//! The id encodes the register's size (`rawkvm_bindings::kvm_reg_size`); a buffer of another
//! size is refused with [`Error::RegisterSize`] before any system call. arm64 and riscv have no
//! `KVM_GET_REGS`: this is how their program counter and general registers are set. Values are
//! in the host's byte order (KVM runs guests of the host's architecture only).

use rawkvm_bindings::kvm_reg_size;

use crate::error::Error;
use crate::kvm::vcpu::Vcpu;
use crate::sys::ioctl::{OneRegError, get_one_reg, set_one_reg};

impl Vcpu {
    /// `ioctl(vcpu, KVM_GET_ONE_REG, &{ id, value })`: `value` must be `KVM_REG_SIZE(id)` bytes.
    pub fn one_reg(&self, id: u64, value: &mut [u8]) -> Result<(), Error> {
        let buffer = value.len();
        get_one_reg(self.fd(), id, value).map_err(|error| match error {
            OneRegError::Size { register } => size_error(id, register, buffer),
            OneRegError::Kernel(errno) => Error::Ioctl {
                ioctl: "KVM_GET_ONE_REG",
                errno,
            },
        })
    }

    /// `ioctl(vcpu, KVM_SET_ONE_REG, &{ id, value })`: `value` must be `KVM_REG_SIZE(id)` bytes.
    pub fn set_one_reg(&self, id: u64, value: &[u8]) -> Result<(), Error> {
        set_one_reg(self.fd(), id, value).map_err(|error| match error {
            OneRegError::Size { register } => size_error(id, register, value.len()),
            OneRegError::Kernel(errno) => Error::SetRegisters {
                ioctl: "KVM_SET_ONE_REG",
                errno,
            },
        })
    }

    /// A 64-bit register by id (`KVM_REG_SIZE_U64` ids).
    pub fn one_reg_u64(&self, id: u64) -> Result<u64, Error> {
        let mut bytes = [0; 8];
        self.one_reg(id, &mut bytes)?;
        Ok(u64::from_ne_bytes(bytes))
    }

    /// Sets a 64-bit register by id (`KVM_REG_SIZE_U64` ids).
    pub fn set_one_reg_u64(&self, id: u64, value: u64) -> Result<(), Error> {
        self.set_one_reg(id, &value.to_ne_bytes())
    }
}

fn size_error(id: u64, register_size: usize, buffer: usize) -> Error {
    debug_assert_eq!(register_size, kvm_reg_size(id));
    Error::RegisterSize {
        id,
        register_size,
        buffer,
    }
}
