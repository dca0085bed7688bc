//! The kernel layer: the only modules that hold `unsafe` (`ring.rs`, the coalesced ring's
//! geometry and entry checks, is plain safe code beside them).
//!
//! | file | what it does unsafely |
//! |---|---|
//! | `clmul.rs` | the call into the CRC-32 fold compiled for `PCLMULQDQ`, after asking the CPU (x86) |
//! | `ioctl.rs` | every `ioctl(2)`, and taking ownership of the fds they return |
//! | `ioctl/flex.rs` | ioctls whose header counts a trailing array (`kvm_cpuid2`, `kvm_msrs`): the buffer and its checked count |
//! | `ioctl/one_reg.rs` | `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`: the buffer behind their pointer checked against the register id |
//! | `memory.rs` | `mmap`/`munmap`, and bounded volatile copies into and out of mappings |
//! | `run_page.rs` | reads and writes of the `kvm_run` page, slices of it, `immediate_exit` |
//! | `state.rs` | the byte view of plain ABI structs, and the `_IOWR` state ioctl (x86) |
//! | `thread.rs` | `sigaction` for the kick signal, `tgkill` to send it, `sched_setscheduler` for idle helper threads |
//!
//! Each `unsafe` block carries a `// SAFETY:` comment naming the invariant it relies on and
//! who guarantees it: the kernel (per api.rst), a type's constructor, or the caller.

#[cfg(target_arch = "x86_64")]
pub(crate) mod clmul;
pub(crate) mod ioctl;
pub mod memory;
pub(crate) mod ring;
pub mod run_page;
#[cfg(target_arch = "x86_64")]
pub(crate) mod state;
pub mod thread;
