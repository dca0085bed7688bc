//! What differs per architecture: registers and the state a vCPU starts in.
//!
//! Arch-neutral code (the machine, the run loop, the CLI) uses only the names re-exported
//! here: [`Entry`] (where the guest starts: `Default`, `parse`, `Display`), [`reset_vcpu`]
//! (put a vCPU there), [`instruction_pointer`] and [`IP_NAME`] (where a stopped vCPU is, for
//! messages). Each architecture's module provides them all:
//!
//! | architecture | module | entry | registers through |
//! |---|---|---|---|
//! | x86-64 | `x86_64` | real-mode `SEG:OFF` | `KVM_SET_SREGS`, `KVM_SET_REGS` |
//! | arm64 | `aarch64` | physical address | `KVM_ARM_VCPU_INIT`, `KVM_SET_ONE_REG` |
//! | riscv64 | `riscv64` | physical address | `KVM_SET_ONE_REG` |
//!
//! The arm64 and riscv64 paths are type-checked (`cargo check --target ...`), not yet run on
//! real hardware. [`one_reg`] (registers by id) and [`flat`] (the address entry) compile on
//! every host.

pub mod flat;
pub mod one_reg;

pub use crate::error::IP_NAME;

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{Entry, instruction_pointer, reset_vcpu};

#[cfg(target_arch = "aarch64")]
pub mod aarch64;
#[cfg(target_arch = "aarch64")]
pub use aarch64::{Entry, instruction_pointer, reset_vcpu};

#[cfg(target_arch = "riscv64")]
pub mod riscv64;
#[cfg(target_arch = "riscv64")]
pub use riscv64::{Entry, instruction_pointer, reset_vcpu};
