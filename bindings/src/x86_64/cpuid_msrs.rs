//! x86 CPUID and MSR structs of `<asm/kvm.h>`: `KVM_GET_SUPPORTED_CPUID`/`KVM_SET_CPUID2`,
//! `KVM_GET_MSR_INDEX_LIST`, `KVM_GET_MSRS`/`KVM_SET_MSRS` and `KVM_X86_SET_MSR_FILTER`.
//!
//! `kvm_cpuid2`, `kvm_msrs` and `kvm_msr_list` end in a C flexible array member. Rust has no such
//! thing, so each is its fixed header only; the entries follow it in the same buffer, at
//! `size_of::<header>() + i * size_of::<entry>()`. The request codes encode the header's size,
//! as the kernel's do.

use crate::layout::abi;
use crate::names::named_constants;

abi! {
    /// `struct kvm_cpuid_entry2`: one CPUID leaf/subleaf.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_cpuid_entry2 (size 40, align 4) {
        /// EAX input (leaf).
        pub function: u32 => (0, "__u32"),
        /// ECX input (subleaf), if `KVM_CPUID_FLAG_SIGNIFCANT_INDEX`.
        pub index: u32 => (4, "__u32"),
        /// `KVM_CPUID_FLAG_*`.
        pub flags: u32 => (8, "__u32"),
        /// EAX output.
        pub eax: u32 => (12, "__u32"),
        /// EBX output.
        pub ebx: u32 => (16, "__u32"),
        /// ECX output.
        pub ecx: u32 => (20, "__u32"),
        /// EDX output.
        pub edx: u32 => (24, "__u32"),
        /// Padding.
        pub padding: [u32; 3] => (28, "__u32[3]"),
    }
}

abi! {
    /// `struct kvm_cpuid2` without `struct kvm_cpuid_entry2 entries[]`: `nent` entries follow.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_cpuid2 (size 8, align 4) {
        /// Number of entries that follow (in: room for; out: filled).
        pub nent: u32 => (0, "__u32"),
        /// Padding.
        pub padding: u32 => (4, "__u32"),
    }
}

named_constants! {
    /// `kvm_cpuid_entry2.flags` bits.
    pub const CPUID_FLAGS: [u32];
    /// `index` matters for this leaf (the kernel's spelling, "SIGNIFCANT").
    KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1 << 0,
    /// Obsolete stateful leaf 2.
    KVM_CPUID_FLAG_STATEFUL_FUNC = 1 << 1,
    /// Obsolete: the next stateful entry to read.
    KVM_CPUID_FLAG_STATE_READ_NEXT = 1 << 2,
}

abi! {
    /// `struct kvm_msr_entry`: one MSR for `KVM_GET_MSRS`/`KVM_SET_MSRS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_msr_entry (size 16, align 8) {
        /// MSR index.
        pub index: u32 => (0, "__u32"),
        /// Reserved.
        pub reserved: u32 => (4, "__u32"),
        /// The value.
        pub data: u64 => (8, "__u64"),
    }
}

abi! {
    /// `struct kvm_msrs` without `struct kvm_msr_entry entries[]`: `nmsrs` entries follow. Aligned
    /// to 8 like the C type, whose alignment comes from the entries.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(align(8))]
    pub struct kvm_msrs (size 8, align 8) {
        /// Number of entries that follow.
        pub nmsrs: u32 => (0, "__u32"),
        /// Padding.
        pub pad: u32 => (4, "__u32"),
    }
}

abi! {
    /// `struct kvm_msr_list` without `__u32 indices[]`, for `KVM_GET_MSR_INDEX_LIST`: `nmsrs`
    /// indices follow.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_msr_list (size 4, align 4) {
        /// In: room for; out: how many (`E2BIG` with the needed count if too few).
        pub nmsrs: u32 => (0, "__u32"),
    }
}

/// Most ranges a `kvm_msr_filter` holds.
pub const KVM_MSR_FILTER_MAX_RANGES: usize = 16;
/// Largest bitmap of one range, in bytes.
pub const KVM_MSR_FILTER_MAX_BITMAP_SIZE: usize = 0x600;

abi! {
    /// `struct kvm_msr_filter_range`: `nmsrs` MSRs from `base`, one bit each in `bitmap`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_msr_filter_range (size 24, align 8) {
        /// `KVM_MSR_FILTER_READ` / `KVM_MSR_FILTER_WRITE`: the accesses a set bit allows.
        pub flags: u32 => (0, "__u32"),
        /// Number of MSRs (bits) in the bitmap.
        pub nmsrs: u32 => (4, "__u32"),
        /// First MSR index.
        pub base: u32 => (8, "__u32"),
        /// Address of the bitmap (C `__u8 *`; the caller stores the pointer).
        pub bitmap: u64 => (16, "__u8 *"),
    }
}

abi! {
    /// `struct kvm_msr_filter`, argument of `KVM_X86_SET_MSR_FILTER`. Unused ranges have
    /// `nmsrs` 0.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_msr_filter (size 392, align 8) {
        /// `KVM_MSR_FILTER_DEFAULT_ALLOW` or `_DENY`, for MSRs no range covers.
        pub flags: u32 => (0, "__u32"),
        /// The ranges.
        pub ranges: [kvm_msr_filter_range; KVM_MSR_FILTER_MAX_RANGES]
            => (8, "struct kvm_msr_filter_range[16]"),
    }
}

named_constants! {
    /// `kvm_msr_filter_range.flags`.
    pub const MSR_FILTER_RANGE_FLAGS: [u32];
    /// A set bit allows reads.
    KVM_MSR_FILTER_READ = 1 << 0,
    /// A set bit allows writes.
    KVM_MSR_FILTER_WRITE = 1 << 1,
}

named_constants! {
    /// `kvm_msr_filter.flags`.
    pub const MSR_FILTER_FLAGS: [u32];
    /// MSRs outside every range are allowed.
    KVM_MSR_FILTER_DEFAULT_ALLOW = 0 << 0,
    /// MSRs outside every range are denied.
    KVM_MSR_FILTER_DEFAULT_DENY = 1 << 0,
}
