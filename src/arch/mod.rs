//! What differs per architecture: registers and the state a vCPU starts in.
//!
//! Arch-neutral code (the machine, the run loop, the CLI) uses only the names re-exported
//! here: [`Entry`] (where the guest starts), [`reset_vcpu`] (put a vCPU there),
//! [`instruction_pointer`] and [`IP_NAME`] (where a stopped vCPU is, for messages).

#[cfg(target_arch = "x86_64")]
pub mod x86_64;
#[cfg(target_arch = "x86_64")]
pub use x86_64::{Entry, IP_NAME, instruction_pointer, reset_vcpu};
