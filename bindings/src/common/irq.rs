//! Interrupt routing and eventfds of `<linux/kvm.h>`: `KVM_SET_GSI_ROUTING` (`kvm_irq_routing`
//! and its entries), `KVM_IRQFD` (an eventfd that raises a GSI) and `KVM_IOEVENTFD` (a guest
//! write that signals an eventfd instead of exiting).
//!
//! `kvm_irq_routing` ends in a C flexible array member (`entries[]`): here it is its fixed
//! header only, and `nr` entries follow it in the same buffer, as for `kvm_cpuid2`.

use crate::layout::abi;
use crate::names::named_constants;

abi! {
    /// `struct kvm_irq_routing_irqchip`: a GSI wired to a pin of an in-kernel controller.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_irq_routing_irqchip (size 8, align 4) {
        /// Which controller (x86: `KVM_IRQCHIP_PIC_MASTER`, `_PIC_SLAVE`, `_IOAPIC`).
        pub irqchip: u32 => (0, "__u32"),
        /// The pin on it (PIC 0-7, IOAPIC 0-23).
        pub pin: u32 => (4, "__u32"),
    }
}

abi! {
    /// `struct kvm_irq_routing_msi`: a GSI that sends a message-signalled interrupt. The last
    /// word is the kernel's anonymous `union { __u32 pad; __u32 devid; }`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_irq_routing_msi (size 16, align 4) {
        /// Low 32 bits of the message address (x86: `0xFEEx_xxxx`, the destination APIC).
        pub address_lo: u32 => (0, "__u32"),
        /// High 32 bits of the message address.
        pub address_hi: u32 => (4, "__u32"),
        /// The message data (x86: vector and delivery mode).
        pub data: u32 => (8, "__u32"),
        /// The requester id, with `KVM_MSI_VALID_DEVID` (arm64 ITS); else padding.
        pub devid: u32 => (12, "__u32"),
    }
}

abi! {
    /// The union `u` of `struct kvm_irq_routing_entry`, as far as rawkvm uses it: `irqchip`,
    /// `msi`, or the `pad[8]` that gives its size (the s390, Hyper-V and Xen members are not
    /// described).
    /// Aligned to 8 like the C union, whose s390 member holds `__u64`s.
    #[derive(Clone, Copy)]
    #[repr(align(8))]
    pub union kvm_irq_routing_entry_u in "u" (size 32, align 8, zeroed by pad) {
        /// `KVM_IRQ_ROUTING_IRQCHIP`.
        pub irqchip: kvm_irq_routing_irqchip => (0, "struct kvm_irq_routing_irqchip"),
        /// `KVM_IRQ_ROUTING_MSI`.
        pub msi: kvm_irq_routing_msi => (0, "struct kvm_irq_routing_msi"),
        /// The union's size.
        pub pad: [u32; 8] => (0, "__u32[8]"),
    }
}

abi! {
    /// `struct kvm_irq_routing_entry`: what one GSI does when raised.
    #[derive(Clone, Copy)]
    pub struct kvm_irq_routing_entry (size 48, align 8) {
        /// The GSI (the number `KVM_IRQ_LINE` and `KVM_IRQFD` name).
        pub gsi: u32 => (0, "__u32"),
        /// `KVM_IRQ_ROUTING_*`: which member of `u` applies.
        pub type_: u32 => (4, "__u32"),
        /// `KVM_MSI_VALID_DEVID` for an MSI; else 0.
        pub flags: u32 => (8, "__u32"),
        /// Must be zero.
        pub pad: u32 => (12, "__u32"),
        /// The route.
        pub u: kvm_irq_routing_entry_u => (16, "union {...}", expand),
    }
}

abi! {
    /// `struct kvm_irq_routing` without `struct kvm_irq_routing_entry entries[]`: `nr` entries
    /// follow. The table replaces the whole previous one. Aligned to 8 like the C type, whose
    /// alignment comes from the entries.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(align(8))]
    pub struct kvm_irq_routing (size 8, align 8) {
        /// Number of entries that follow (at most `KVM_CAP_IRQ_ROUTING`'s answer).
        pub nr: u32 => (0, "__u32"),
        /// Must be zero.
        pub flags: u32 => (4, "__u32"),
    }
}

named_constants! {
    /// `kvm_irq_routing_entry.type` values.
    pub const IRQ_ROUTING_TYPES: [u32];
    /// A pin of an in-kernel PIC or IOAPIC (`u.irqchip`).
    KVM_IRQ_ROUTING_IRQCHIP = 1,
    /// A message-signalled interrupt (`u.msi`).
    KVM_IRQ_ROUTING_MSI = 2,
    /// An s390 adapter interrupt.
    KVM_IRQ_ROUTING_S390_ADAPTER = 3,
    /// A Hyper-V synthetic interrupt.
    KVM_IRQ_ROUTING_HV_SINT = 4,
    /// A Xen event channel.
    KVM_IRQ_ROUTING_XEN_EVTCHN = 5,
}

abi! {
    /// `struct kvm_irqfd`, argument of `KVM_IRQFD`: while assigned, each write to `fd` raises
    /// (edge) GSI `gsi` in the kernel, with no system call on the vCPU's side.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_irqfd (size 32, align 4) {
        /// The eventfd.
        pub fd: u32 => (0, "__u32"),
        /// The GSI it raises.
        pub gsi: u32 => (4, "__u32"),
        /// [`IRQFD_FLAGS`].
        pub flags: u32 => (8, "__u32"),
        /// With `KVM_IRQFD_FLAG_RESAMPLE`: the eventfd signalled at the guest's EOI.
        pub resamplefd: u32 => (12, "__u32"),
        /// Must be zero.
        pub pad: [u8; 16] => (16, "__u8[16]"),
    }
}

named_constants! {
    /// `kvm_irqfd.flags` bits.
    pub const IRQFD_FLAGS: [u32];
    /// Remove the (fd, gsi) pair instead of adding it.
    KVM_IRQFD_FLAG_DEASSIGN = 1 << 0,
    /// Level-triggered: the line stays raised until the guest's EOI signals `resamplefd`
    /// (`KVM_CAP_IRQFD_RESAMPLE`).
    KVM_IRQFD_FLAG_RESAMPLE = 1 << 1,
}

abi! {
    /// `struct kvm_ioeventfd`, argument of `KVM_IOEVENTFD`: a guest write of `len` bytes at
    /// `addr` (MMIO, or a port with `KVM_IOEVENTFD_FLAG_PIO`) signals `fd` and the guest goes
    /// on, with no exit to user space.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_ioeventfd (size 64, align 8) {
        /// With `KVM_IOEVENTFD_FLAG_DATAMATCH`: only a write of this value signals.
        pub datamatch: u64 => (0, "__u64"),
        /// The guest physical address or port.
        pub addr: u64 => (8, "__u64"),
        /// 1, 2, 4 or 8; 0 for a write of any width (`KVM_CAP_IOEVENTFD_ANY_LENGTH`, no
        /// datamatch).
        pub len: u32 => (16, "__u32"),
        /// The eventfd.
        pub fd: i32 => (20, "__s32"),
        /// [`IOEVENTFD_FLAGS`].
        pub flags: u32 => (24, "__u32"),
        /// Must be zero.
        pub pad: [u8; 36] => (28, "__u8[36]"),
    }
}

named_constants! {
    /// `kvm_ioeventfd.flags` bits (the header defines them from `kvm_ioeventfd_flag_nr_*`).
    pub const IOEVENTFD_FLAGS: [u32];
    /// Signal only when the written value equals `datamatch`.
    KVM_IOEVENTFD_FLAG_DATAMATCH = 1 << 0,
    /// `addr` is an I/O port, not a guest physical address.
    KVM_IOEVENTFD_FLAG_PIO = 1 << 1,
    /// Remove the registration instead of adding it.
    KVM_IOEVENTFD_FLAG_DEASSIGN = 1 << 2,
    /// s390 virtio-ccw notification.
    KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY = 1 << 3,
}
