//! Debugging a guest: a gdb stub ([`gdb`]) and a single-step tracer ([`stepper`]), both
//! built on `KVM_SET_GUEST_DEBUG` and `KVM_EXIT_DEBUG`, and on one register table
//! ([`registers`]).
//!
//! ```text
//! ioctl(vcpu, KVM_SET_GUEST_DEBUG, { ENABLE | SINGLESTEP })          one KVM_EXIT_DEBUG
//!                                                                    per instruction
//! ioctl(vcpu, KVM_SET_GUEST_DEBUG, { ENABLE | USE_HW_BP, DR0-3, DR7 })  a KVM_EXIT_DEBUG
//!                                                                    before the instruction
//! ioctl(vcpu, KVM_GET_REGS / KVM_GET_SREGS)                           what gdb and the tracer show
//! ```
//!
//! What the KVM backend of these hosts (kvm_pvm) can and cannot do was measured
//! (HOST-NOTES.md, "Debugging on kvm_pvm") and shapes both: single steps and hardware
//! execution breakpoints work at CPL0; a breakpoint fires again at the same RIP until it is
//! stepped over with the breakpoints disarmed; data watchpoints never fire; `int3` is not
//! intercepted; a stepped `hlt` does not halt.
//!
//! x86-64 only: the registers are x86's.

pub mod gdb;
pub mod registers;
pub mod stepper;
