//! x86 interrupt controllers of `<asm/kvm.h>` and `<linux/kvm.h>`: the in-kernel PIT
//! (`KVM_CREATE_PIT2`, `kvm_pit_config`) and the controller numbers GSI routes name.

use crate::layout::abi;
use crate::names::named_constants;

abi! {
    /// `struct kvm_pit_config`, argument of `KVM_CREATE_PIT2`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_pit_config (size 64, align 4) {
        /// [`PIT_CONFIG_FLAGS`].
        pub flags: u32 => (0, "__u32"),
        /// Must be zero.
        pub pad: [u32; 15] => (4, "__u32[15]"),
    }
}

named_constants! {
    /// `kvm_pit_config.flags` bits.
    pub const PIT_CONFIG_FLAGS: [u32];
    /// Also emulate port 0x61 (the speaker and PIT channel 2 gate) as a dummy.
    KVM_PIT_SPEAKER_DUMMY = 1,
}

named_constants! {
    /// `kvm_irq_routing_irqchip.irqchip` values on x86 (and `kvm_irqchip.chip_id`).
    pub const X86_IRQCHIPS: [u32];
    /// The master 8259 PIC: GSIs 0-7.
    KVM_IRQCHIP_PIC_MASTER = 0,
    /// The slave 8259 PIC, cascaded on master pin 2: GSIs 8-15.
    KVM_IRQCHIP_PIC_SLAVE = 1,
    /// The IOAPIC: GSIs 0-23.
    KVM_IRQCHIP_IOAPIC = 2,
}

named_constants! {
    /// Sizes of the in-kernel x86 controllers.
    pub const X86_IRQCHIP_SIZES: [u32];
    /// Redirection-table entries of the in-kernel IOAPIC.
    KVM_IOAPIC_NUM_PINS = 24,
}
