//! What `<linux/kvm.h>` defines the same way on every architecture: exit reasons and
//! capabilities, the exit-data members of `kvm_run`, memory slots, dirty logs, coalesced MMIO,
//! `KVM_ENABLE_CAP`, binary statistics, interrupt routing and eventfds, registers by id
//! (`KVM_GET_ONE_REG`), multiprocessing state and in-kernel devices.
//!
//! Nothing here names an architecture's type; the parts of `kvm_run` that differ per architecture
//! are filled in by the `kvm_run!` macro in each architecture module.

mod caps;
mod constants;
mod control;
mod exits;
mod exits_other;
mod irq;
mod memory;
mod one_reg;
pub(crate) mod run;

pub use caps::*;
pub use constants::*;
pub use control::*;
pub use exits::*;
pub use exits_other::*;
pub use irq::*;
pub use memory::*;
pub use one_reg::*;

use crate::layout::StructLayout;

/// Layouts of the kernel-named structs defined here (`kvm_run` is per architecture).
pub const COMMON_STRUCT_LAYOUTS: &[StructLayout] = &[
    kvm_userspace_memory_region::LAYOUT,
    kvm_userspace_memory_region2::LAYOUT,
    kvm_dirty_log::LAYOUT,
    kvm_clear_dirty_log::LAYOUT,
    kvm_coalesced_mmio_zone::LAYOUT,
    kvm_coalesced_mmio::LAYOUT,
    kvm_coalesced_mmio_ring::LAYOUT,
    kvm_enable_cap::LAYOUT,
    kvm_stats_header::LAYOUT,
    kvm_stats_desc::LAYOUT,
    kvm_irq_level::LAYOUT,
    kvm_interrupt::LAYOUT,
    kvm_irq_routing_irqchip::LAYOUT,
    kvm_irq_routing_msi::LAYOUT,
    kvm_irq_routing_entry::LAYOUT,
    kvm_irq_routing::LAYOUT,
    kvm_irqfd::LAYOUT,
    kvm_ioeventfd::LAYOUT,
    kvm_hyperv_exit::LAYOUT,
    kvm_xen_exit::LAYOUT,
    kvm_one_reg::LAYOUT,
    kvm_reg_list::LAYOUT,
    kvm_mp_state::LAYOUT,
    kvm_create_device::LAYOUT,
    kvm_device_attr::LAYOUT,
];
