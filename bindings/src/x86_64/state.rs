//! x86 machine state of `<asm/kvm.h>` and `<linux/kvm.h>` that a snapshot saves and restores:
//! the extended FPU area (`KVM_GET_XSAVE`), extended control registers (`KVM_GET_XCRS`), the
//! in-kernel local APIC page (`KVM_GET_LAPIC`), debug registers (`KVM_GET_DEBUGREGS`), the
//! in-kernel PICs and IOAPIC (`KVM_GET_IRQCHIP`), the in-kernel PIT (`KVM_GET_PIT2`) and the
//! kvmclock (`KVM_GET_CLOCK`).
//!
//! Every struct here is plain integers with explicit padding (no implicit holes), so its bytes
//! are its value: a snapshot stores them as they are, in the host's (little-endian) order.

use crate::layout::abi;
use crate::names::named_constants;

/// Extended control registers `kvm_xcrs` has room for.
pub const KVM_MAX_XCRS: usize = 16;
/// Bytes of the local APIC register page (`KVM_APIC_REG_SIZE`).
pub const KVM_APIC_REG_SIZE: usize = 0x400;

abi! {
    /// `struct kvm_xsave`: the guest's XSAVE area in the standard (non-compacted) format.
    /// The header ends it with `__u32 extra[]` (since 5.17), which `KVM_GET_XSAVE2` fills
    /// beyond 4096 bytes; this is the fixed part.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_xsave (size 4096, align 4) {
        /// The XSAVE image: legacy FXSAVE region (512 bytes), XSAVE header (64), components.
        pub region: [u32; 1024] => (0, "__u32[1024]"),
    }
}

abi! {
    /// `struct kvm_xcr`: one extended control register.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_xcr (size 16, align 8) {
        /// Which XCR (0: XCR0, the enabled XSAVE components).
        pub xcr: u32 => (0, "__u32"),
        /// Reserved.
        pub reserved: u32 => (4, "__u32"),
        /// Its value.
        pub value: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_xcrs`, for `KVM_GET_XCRS`/`KVM_SET_XCRS` (`KVM_CAP_XCRS`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_xcrs (size 392, align 8) {
        /// How many of `xcrs` are used.
        pub nr_xcrs: u32 => (0, "__u32"),
        /// No flags are defined.
        pub flags: u32 => (4, "__u32"),
        /// The registers.
        pub xcrs: [kvm_xcr; KVM_MAX_XCRS] => (8, "struct kvm_xcr[16]"),
        /// Padding.
        pub padding: [u64; 16] => (264, "__u64[16]"),
    }
}

abi! {
    /// `struct kvm_lapic_state`: the in-kernel local APIC's 1 KiB register page, for
    /// `KVM_GET_LAPIC`/`KVM_SET_LAPIC` (only with an in-kernel irqchip).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_lapic_state (size 1024, align 1) {
        /// The registers at their MMIO offsets (ID at 0x20, TPR at 0x80, ...).
        pub regs: [u8; KVM_APIC_REG_SIZE] => (0, "char[1024]"),
    }
}

abi! {
    /// `struct kvm_debugregs`, for `KVM_GET_DEBUGREGS`/`KVM_SET_DEBUGREGS`
    /// (`KVM_CAP_DEBUGREGS`): the guest's own debug registers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_debugregs (size 128, align 8) {
        /// DR0-DR3.
        pub db: [u64; 4] => (0, "__u64[4]"),
        /// DR6.
        pub dr6: u64 => (32, "__u64"),
        /// DR7.
        pub dr7: u64 => (40, "__u64"),
        /// No flags are defined.
        pub flags: u64 => (48, "__u64"),
        /// Reserved.
        pub reserved: [u64; 9] => (56, "__u64[9]"),
    }
}

abi! {
    /// `struct kvm_pic_state`: one in-kernel 8259A (`kvm_irqchip.chip.pic`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_pic_state (size 16, align 1) {
        /// Edge detection: the IRR as last sampled.
        pub last_irr: u8 => (0, "__u8"),
        /// Interrupt request register.
        pub irr: u8 => (1, "__u8"),
        /// Interrupt mask register.
        pub imr: u8 => (2, "__u8"),
        /// In-service register.
        pub isr: u8 => (3, "__u8"),
        /// Highest priority (rotation).
        pub priority_add: u8 => (4, "__u8"),
        /// Vector of IRQ 0 (ICW2).
        pub irq_base: u8 => (5, "__u8"),
        /// OCW3: read ISR instead of IRR.
        pub read_reg_select: u8 => (6, "__u8"),
        /// Poll mode.
        pub poll: u8 => (7, "__u8"),
        /// Special mask mode.
        pub special_mask: u8 => (8, "__u8"),
        /// Initialisation step (ICW sequence).
        pub init_state: u8 => (9, "__u8"),
        /// Automatic EOI.
        pub auto_eoi: u8 => (10, "__u8"),
        /// Rotate on automatic EOI.
        pub rotate_on_auto_eoi: u8 => (11, "__u8"),
        /// Special fully nested mode.
        pub special_fully_nested_mode: u8 => (12, "__u8"),
        /// ICW4 expected.
        pub init4: u8 => (13, "__u8"),
        /// PIIX edge/level control register.
        pub elcr: u8 => (14, "__u8"),
        /// Writable bits of `elcr`.
        pub elcr_mask: u8 => (15, "__u8"),
    }
}

abi! {
    /// `struct kvm_ioapic_state`: the in-kernel IOAPIC (`kvm_irqchip.chip.ioapic`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_ioapic_state (size 216, align 8) {
        /// MMIO base (0xFEC00000).
        pub base_address: u64 => (0, "__u64"),
        /// IOREGSEL: the register the window addresses.
        pub ioregsel: u32 => (8, "__u32"),
        /// IOAPIC id.
        pub id: u32 => (12, "__u32"),
        /// Pending requests, one bit per pin.
        pub irr: u32 => (16, "__u32"),
        /// Padding.
        pub pad: u32 => (20, "__u32"),
        /// The redirection table; each entry is a `union { __u64 bits; struct {...} fields; }`,
        /// kept here as its `bits`.
        pub redirtbl: [u64; super::KVM_IOAPIC_NUM_PINS as usize] => (24, "union {...}[24]"),
    }
}

abi! {
    /// `struct kvm_irqchip`, for `KVM_GET_IRQCHIP`/`KVM_SET_IRQCHIP`: one of the in-kernel
    /// interrupt controllers, chosen by `chip_id`. `chip` is the header's union of
    /// `char dummy[512]`, `struct kvm_pic_state pic` and `struct kvm_ioapic_state ioapic`, kept
    /// as its 512 bytes: [`kvm_pic_state`] is its first 16 bytes, [`kvm_ioapic_state`] its
    /// first 216.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_irqchip (size 520, align 8) {
        /// `KVM_IRQCHIP_PIC_MASTER`, `KVM_IRQCHIP_PIC_SLAVE` or `KVM_IRQCHIP_IOAPIC`.
        pub chip_id: u32 => (0, "__u32"),
        /// Padding.
        pub pad: u32 => (4, "__u32"),
        /// The chip's state: the union's 512 bytes, as 64-bit words (its `ioapic` member makes
        /// it 8-byte aligned).
        pub chip: [u64; 64] => (8, "union {...}"),
    }
}

abi! {
    /// `struct kvm_pit_channel_state`: one channel of the in-kernel 8254.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_pit_channel_state (size 24, align 8) {
        /// The reload value (65536 for 0).
        pub count: u32 => (0, "__u32"),
        /// The latched count.
        pub latched_count: u16 => (4, "__u16"),
        /// A count is latched.
        pub count_latched: u8 => (6, "__u8"),
        /// The status is latched.
        pub status_latched: u8 => (7, "__u8"),
        /// The latched status byte.
        pub status: u8 => (8, "__u8"),
        /// Where a read of the counter is (low/high byte).
        pub read_state: u8 => (9, "__u8"),
        /// Where a write of the counter is.
        pub write_state: u8 => (10, "__u8"),
        /// The byte written first.
        pub write_latch: u8 => (11, "__u8"),
        /// Access mode (RW bits of the control word).
        pub rw_mode: u8 => (12, "__u8"),
        /// Counter mode 0-5.
        pub mode: u8 => (13, "__u8"),
        /// BCD counting.
        pub bcd: u8 => (14, "__u8"),
        /// The gate input.
        pub gate: u8 => (15, "__u8"),
        /// When the count was loaded, kernel monotonic nanoseconds.
        pub count_load_time: i64 => (16, "__s64"),
    }
}

abi! {
    /// `struct kvm_pit_state2`, for `KVM_GET_PIT2`/`KVM_SET_PIT2` (`KVM_CAP_PIT_STATE2`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_pit_state2 (size 112, align 8) {
        /// Channels 0-2.
        pub channels: [kvm_pit_channel_state; 3] => (0, "struct kvm_pit_channel_state[3]"),
        /// `KVM_PIT_FLAGS_*`.
        pub flags: u32 => (72, "__u32"),
        /// Reserved.
        pub reserved: [u32; 9] => (76, "__u32[9]"),
    }
}

named_constants! {
    /// `kvm_pit_state2.flags` bits.
    pub const PIT_FLAGS: [u32];
    /// The HPET is in legacy-replacement mode (the PIT's interrupt is off).
    KVM_PIT_FLAGS_HPET_LEGACY = 0x0000_0001,
    /// The PC speaker's data line (port 0x61 bit 1) is on.
    KVM_PIT_FLAGS_SPEAKER_DATA_ON = 0x0000_0002,
}

abi! {
    /// `struct kvm_clock_data`, for `KVM_GET_CLOCK`/`KVM_SET_CLOCK` (`KVM_CAP_ADJUST_CLOCK`):
    /// the kvmclock's nanoseconds.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_clock_data (size 48, align 8) {
        /// Guest nanoseconds.
        pub clock: u64 => (0, "__u64"),
        /// `KVM_CLOCK_*`: which of the other fields are valid.
        pub flags: u32 => (8, "__u32"),
        /// Padding.
        pub pad0: u32 => (12, "__u32"),
        /// Host `CLOCK_REALTIME` at `clock`, with `KVM_CLOCK_REALTIME`.
        pub realtime: u64 => (16, "__u64"),
        /// Host TSC at `clock`, with `KVM_CLOCK_HOST_TSC`.
        pub host_tsc: u64 => (24, "__u64"),
        /// Padding.
        pub pad: [u32; 4] => (32, "__u32[4]"),
    }
}

named_constants! {
    /// `kvm_clock_data.flags` bits.
    pub const CLOCK_FLAGS: [u32];
    /// The clock is the same on every host CPU.
    KVM_CLOCK_TSC_STABLE = 2,
    /// `realtime` is valid.
    KVM_CLOCK_REALTIME = 1 << 2,
    /// `host_tsc` is valid.
    KVM_CLOCK_HOST_TSC = 1 << 3,
}

mod ioctls {
    use super::{
        kvm_clock_data, kvm_debugregs, kvm_irqchip, kvm_lapic_state, kvm_pit_state2, kvm_xcrs,
        kvm_xsave,
    };
    use crate::ioctls::ioctls;

    ioctls! {
        arch = "x86_64";
        /// The x86 ioctls that read and write machine state, in header order.
        pub const X86_STATE_IOCTLS;

        /// `ioctl(vm_fd, KVM_GET_IRQCHIP, &chip)`: the kernel reads `chip.chip_id`, then fills
        /// that controller's state (`ENXIO` without `KVM_CREATE_IRQCHIP`).
        KVM_GET_IRQCHIP = _IOWR(0x62, kvm_irqchip), Vm, KVM_CAP_IRQCHIP;
        /// `ioctl(vm_fd, KVM_SET_IRQCHIP, &chip)`: the header encodes it `_IOR` although the
        /// kernel reads the struct.
        KVM_SET_IRQCHIP = _IOR(0x63, kvm_irqchip), Vm, KVM_CAP_IRQCHIP;
        /// `ioctl(vm_fd, KVM_SET_CLOCK, &clock)`: sets the kvmclock (`clock`; `realtime` with
        /// `KVM_CLOCK_REALTIME`).
        KVM_SET_CLOCK = _IOW(0x7b, kvm_clock_data), Vm, KVM_CAP_ADJUST_CLOCK;
        /// `ioctl(vm_fd, KVM_GET_CLOCK, &clock)`.
        KVM_GET_CLOCK = _IOR(0x7c, kvm_clock_data), Vm, KVM_CAP_ADJUST_CLOCK;
        /// `ioctl(vm_fd, KVM_GET_PIT2, &pit)`: the in-kernel PIT (`ENXIO` without one).
        KVM_GET_PIT2 = _IOR(0x9f, kvm_pit_state2), Vm, KVM_CAP_PIT_STATE2;
        /// `ioctl(vm_fd, KVM_SET_PIT2, &pit)`.
        KVM_SET_PIT2 = _IOW(0xa0, kvm_pit_state2), Vm, KVM_CAP_PIT_STATE2;
        /// `ioctl(vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2)` gives the size `KVM_GET_XSAVE2`
        /// needs; `ioctl(vcpu_fd, KVM_GET_XSAVE2, buf)` fills that many bytes.
        KVM_GET_XSAVE2 = _IOR(0xcf, kvm_xsave), Vcpu, KVM_CAP_XSAVE2;

        /// `ioctl(vcpu_fd, KVM_GET_LAPIC, &lapic)`: the in-kernel local APIC's registers.
        KVM_GET_LAPIC = _IOR(0x8e, kvm_lapic_state), Vcpu, KVM_CAP_IRQCHIP;
        /// `ioctl(vcpu_fd, KVM_SET_LAPIC, &lapic)`.
        KVM_SET_LAPIC = _IOW(0x8f, kvm_lapic_state), Vcpu, KVM_CAP_IRQCHIP;
        /// `ioctl(vcpu_fd, KVM_GET_DEBUGREGS, &dregs)`.
        KVM_GET_DEBUGREGS = _IOR(0xa1, kvm_debugregs), Vcpu, KVM_CAP_DEBUGREGS;
        /// `ioctl(vcpu_fd, KVM_SET_DEBUGREGS, &dregs)`.
        KVM_SET_DEBUGREGS = _IOW(0xa2, kvm_debugregs), Vcpu, KVM_CAP_DEBUGREGS;
        /// `ioctl(vcpu_fd, KVM_GET_XSAVE, &xsave)`: the first 4096 bytes of the XSAVE area.
        KVM_GET_XSAVE = _IOR(0xa4, kvm_xsave), Vcpu, KVM_CAP_XSAVE;
        /// `ioctl(vcpu_fd, KVM_SET_XSAVE, &xsave)`: also the way to restore x87/SSE state
        /// (`KVM_SET_FPU` on a fresh vCPU is lost on kvm_pvm).
        KVM_SET_XSAVE = _IOW(0xa5, kvm_xsave), Vcpu, KVM_CAP_XSAVE;
        /// `ioctl(vcpu_fd, KVM_GET_XCRS, &xcrs)`.
        KVM_GET_XCRS = _IOR(0xa6, kvm_xcrs), Vcpu, KVM_CAP_XCRS;
        /// `ioctl(vcpu_fd, KVM_SET_XCRS, &xcrs)`.
        KVM_SET_XCRS = _IOW(0xa7, kvm_xcrs), Vcpu, KVM_CAP_XCRS;
    }
}

pub use ioctls::*;

/// Layouts of the state structs, for the crate's table.
pub(crate) const X86_STATE_LAYOUTS: [crate::layout::StructLayout; 11] = [
    kvm_xsave::LAYOUT,
    kvm_xcr::LAYOUT,
    kvm_xcrs::LAYOUT,
    kvm_lapic_state::LAYOUT,
    kvm_debugregs::LAYOUT,
    kvm_pic_state::LAYOUT,
    kvm_ioapic_state::LAYOUT,
    kvm_irqchip::LAYOUT,
    kvm_pit_channel_state::LAYOUT,
    kvm_pit_state2::LAYOUT,
    kvm_clock_data::LAYOUT,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_the_header() {
        assert_eq!(KVM_GET_IRQCHIP, 0xC208_AE62);
        assert_eq!(KVM_SET_IRQCHIP, 0x8208_AE63);
        assert_eq!(KVM_GET_XSAVE, 0x9000_AEA4);
        assert_eq!(KVM_GET_CLOCK, 0x8030_AE7C);
        assert_eq!(KVM_SET_PIT2, 0x4070_AEA0);
    }
}
