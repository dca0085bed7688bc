//! VM and vCPU control structs of `<linux/kvm.h>`: `KVM_ENABLE_CAP`, binary statistics
//! (`KVM_GET_STATS_FD`), and interrupt lines (`KVM_IRQ_LINE`, `KVM_INTERRUPT`).

use crate::layout::abi;

abi! {
    /// `struct kvm_enable_cap`, argument of `KVM_ENABLE_CAP` (api.rst section 6 for vCPU
    /// capabilities, 7 for VM ones).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_enable_cap (size 104, align 8) {
        /// The `KVM_CAP_*` to enable.
        pub cap: u32 => (0, "__u32"),
        /// Must be zero.
        pub flags: u32 => (4, "__u32"),
        /// Arguments, meaning per capability.
        pub args: [u64; 4] => (8, "__u64[4]"),
        /// Must be zero.
        pub pad: [u8; 64] => (40, "__u8[64]"),
    }
}

abi! {
    /// `struct kvm_stats_header`: the start of the file `KVM_GET_STATS_FD` returns. Offsets are
    /// from the start of that file.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_stats_header (size 24, align 4) {
        /// Zero for now.
        pub flags: u32 => (0, "__u32"),
        /// Bytes of the name that follows each descriptor, including its NUL.
        pub name_size: u32 => (4, "__u32"),
        /// Number of statistics.
        pub num_desc: u32 => (8, "__u32"),
        /// Offset of the id string ("kvm-PID" or "kvm-PID/vcpu-N").
        pub id_offset: u32 => (12, "__u32"),
        /// Offset of the first descriptor.
        pub desc_offset: u32 => (16, "__u32"),
        /// Offset of the data block (`__u64` values).
        pub data_offset: u32 => (20, "__u32"),
    }
}

abi! {
    /// `struct kvm_stats_desc` without its trailing `char name[]`: descriptors are
    /// `size_of::<kvm_stats_desc>() + name_size` bytes apart, the name right after this header.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_stats_desc (size 16, align 4) {
        /// Type, unit and base: [`STATS_FLAGS`](crate::STATS_FLAGS).
        pub flags: u32 => (0, "__u32"),
        /// Power of the base to scale values by.
        pub exponent: i16 => (4, "__s16"),
        /// Number of `__u64` values (more than 1 for histograms).
        pub size: u16 => (6, "__u16"),
        /// Offset of the values from `data_offset`.
        pub offset: u32 => (8, "__u32"),
        /// Bucket size of a linear histogram.
        pub bucket_size: u32 => (12, "__u32"),
    }
}

abi! {
    /// `struct kvm_irq_level`, argument of `KVM_IRQ_LINE`. The kernel's first member is
    /// `union { __u32 irq; __s32 status; }`: `status` is the same word, written back by
    /// `KVM_IRQ_LINE_STATUS`; read it as `irq as i32`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_irq_level (size 8, align 4) {
        /// The GSI (x86: PIC 0-15, IOAPIC 0-23).
        pub irq: u32 => (0, "__u32"),
        /// 1 to raise the line, 0 to lower it.
        pub level: u32 => (4, "__u32"),
    }
}

abi! {
    /// `struct kvm_interrupt`, argument of `KVM_INTERRUPT` (without an in-kernel irqchip).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_interrupt (size 4, align 4) {
        /// x86: the vector to inject.
        pub irq: u32 => (0, "__u32"),
    }
}
