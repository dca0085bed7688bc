//! The vCPU level: `KVM_RUN` and the exit it reports.
//!
//! ```text
//! ioctl(vcpu, KVM_RUN, 0)   returns 0: kvm_run->exit_reason says why the guest stopped
//!                           returns -1/EINTR: a signal or immediate_exit stopped it first
//! ```
//!
//! [`Vcpu::run`] is the hot path: one `ioctl`, then [`crate::exit::decode`] over the mapped
//! page. The returned [`Exit`] borrows the vCPU, so it cannot outlive the next `KVM_RUN`.
//! Architecture-specific register access lives in [`crate::arch`].

use std::os::fd::BorrowedFd;

use nix::errno::Errno;

use crate::exit::{self, DecodeError, Exit};
use crate::sys::ioctl::VcpuFd;

/// Why [`Vcpu::run`] did not produce an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunError {
    /// `KVM_RUN` returned `EINTR`: a signal arrived, or `immediate_exit` was set. Pending
    /// I/O has been completed; the guest can be re-entered.
    Interrupted,
    /// `KVM_RUN` failed with another errno. `kvm_run.exit_reason` is stale (api.rst).
    Failed(Errno),
    /// `KVM_RUN` succeeded but the page held values the ABI does not allow.
    Decode(DecodeError),
}

/// A virtual CPU, its fd and its `kvm_run` mapping.
#[derive(Debug)]
pub struct Vcpu {
    fd: VcpuFd,
    id: u32,
}

impl Vcpu {
    pub(crate) fn new(fd: VcpuFd, id: u32) -> Vcpu {
        Vcpu { fd, id }
    }

    /// The vCPU id given to `KVM_CREATE_VCPU`.
    pub fn id(&self) -> u32 {
        self.id
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.fd()
    }

    /// `ioctl(vcpu, KVM_RUN, 0)`, then decodes the exit in place. Exactly one syscall, no
    /// allocation.
    pub fn run(&mut self) -> Result<Exit<'_>, RunError> {
        match self.fd.run() {
            Ok(_) => exit::decode(self.fd.run_page()).map_err(RunError::Decode),
            Err(Errno::EINTR) => Err(RunError::Interrupted),
            Err(errno) => Err(RunError::Failed(errno)),
        }
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Interrupted => f.write_str("KVM_RUN was interrupted (EINTR)"),
            RunError::Failed(errno) => {
                write!(f, "KVM_RUN failed: {}", crate::error::ErrnoDisplay(*errno))
            }
            RunError::Decode(error) => write!(f, "undecodable exit in kvm_run: {error}"),
        }
    }
}

impl std::error::Error for RunError {}
