//! The interrupt ioctls of a VM fd, re-exported into `ioctl::vm` with the others: none takes
//! a pointer the kernel keeps, so they are plain table entries (`KVM_SET_GSI_ROUTING`'s
//! flexible array goes through [`super::FlexReads`]).

use rawkvm_bindings as abi;

use super::{FlexReads, Ioctl, NoArg, Reads};

/// `KVM_CREATE_IRQCHIP` (`KVM_CAP_IRQCHIP`): the in-kernel interrupt controllers (x86: two
/// 8259 PICs, an IOAPIC and a local APIC per vCPU); only before the first vCPU.
pub(crate) const CREATE_IRQCHIP: Ioctl<NoArg> =
    Ioctl::entry("KVM_CREATE_IRQCHIP", abi::KVM_CREATE_IRQCHIP);
/// `KVM_CREATE_PIT2` (`KVM_CAP_PIT2`): the in-kernel 8254, after the irqchip.
#[cfg(target_arch = "x86_64")]
pub(crate) const CREATE_PIT2: Ioctl<Reads<abi::kvm_pit_config>> =
    Ioctl::reads("KVM_CREATE_PIT2", abi::KVM_CREATE_PIT2);
/// `KVM_IRQ_LINE` (`KVM_CAP_IRQCHIP`): raise or lower a GSI of the in-kernel irqchip.
pub(crate) const IRQ_LINE: Ioctl<Reads<abi::kvm_irq_level>> =
    Ioctl::reads("KVM_IRQ_LINE", abi::KVM_IRQ_LINE);
/// `KVM_SET_GSI_ROUTING` (`KVM_CAP_IRQ_ROUTING`): the whole GSI routing table.
pub(crate) const SET_GSI_ROUTING: Ioctl<FlexReads<abi::kvm_irq_routing>> =
    Ioctl::flex_reads("KVM_SET_GSI_ROUTING", abi::KVM_SET_GSI_ROUTING);
/// `KVM_IRQFD` (`KVM_CAP_IRQFD`): an eventfd that raises a GSI. The kernel takes its own
/// reference to the eventfd, so closing ours later leaves it valid.
pub(crate) const IRQFD: Ioctl<Reads<abi::kvm_irqfd>> = Ioctl::reads("KVM_IRQFD", abi::KVM_IRQFD);
/// `KVM_IOEVENTFD` (`KVM_CAP_IOEVENTFD`): a guest write that signals an eventfd instead of
/// exiting; the kernel holds its own reference to the eventfd.
pub(crate) const IOEVENTFD: Ioctl<Reads<abi::kvm_ioeventfd>> =
    Ioctl::reads("KVM_IOEVENTFD", abi::KVM_IOEVENTFD);
