//! The kernel's three levels of file descriptors, and the guest memory they share.
//!
//! ```text
//! /dev/kvm   open(2)            system.rs   Kvm    KVM_GET_API_VERSION, KVM_CHECK_EXTENSION,
//!                                                  KVM_CREATE_VM, KVM_GET_VCPU_MMAP_SIZE
//!  └ kvm-vm  KVM_CREATE_VM      vm.rs       Vm     KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU,
//!                                                  KVM_GET_DIRTY_LOG, KVM_REGISTER_COALESCED_MMIO
//!            irq.rs  (Vm)  KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_SET_GSI_ROUTING,
//!                          KVM_IRQ_LINE, KVM_IRQFD, KVM_IOEVENTFD
//!     └ kvm-vcpu:N  KVM_CREATE_VCPU  vcpu.rs  Vcpu  KVM_RUN (and the kvm_run mapping)
//! guest RAM  mmap(2)            memory.rs   GuestMemory   bounds-checked host access
//! ```
//!
//! Imports run one way only: `system → vm → vcpu`, each level handed the values it needs by
//! the level above (never a reference back up). Nothing here knows about devices, machines or
//! the run loop; the architecture's register set-up is in [`crate::arch`].

pub mod irq;
pub mod memory;
pub mod system;
pub mod vcpu;
pub mod vm;

pub use memory::GuestMemory;
pub use system::{DEFAULT_DEVICE, Kvm};
pub use vcpu::{RunError, StopHandle, Vcpu};
pub use vm::{MemoryRegion, Vm};
