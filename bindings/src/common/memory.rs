//! Guest memory in `<linux/kvm.h>`: memory slots (`KVM_SET_USER_MEMORY_REGION[2]`), dirty logs
//! (`KVM_GET_DIRTY_LOG`, `KVM_CLEAR_DIRTY_LOG`) and the coalesced-MMIO ring
//! (`KVM_REGISTER_COALESCED_MMIO`).
//!
//! Where the kernel puts a user-space pointer in a struct (`dirty_bitmap`), the field is a `u64`
//! here: this crate is data only, and the caller stores `pointer as u64` into it.

use crate::layout::abi;

abi! {
    /// `struct kvm_userspace_memory_region`, argument of `KVM_SET_USER_MEMORY_REGION`: map
    /// `memory_size` bytes of this process at `userspace_addr` to guest physical
    /// `guest_phys_addr`. A `memory_size` of 0 deletes the slot.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_userspace_memory_region (size 32, align 8) {
        /// Slot id: bits 0-15 the slot, bits 16-31 the address space.
        pub slot: u32 => (0, "__u32"),
        /// [`MemoryRegionFlags`](crate::MemoryRegionFlags) bits.
        pub flags: u32 => (4, "__u32"),
        /// Guest physical address of the slot, page-aligned.
        pub guest_phys_addr: u64 => (8, "__u64"),
        /// Size in bytes, a multiple of the page size.
        pub memory_size: u64 => (16, "__u64"),
        /// Host virtual address of the backing memory, page-aligned.
        pub userspace_addr: u64 => (24, "__u64"),
    }
}

abi! {
    /// `struct kvm_userspace_memory_region2`, argument of `KVM_SET_USER_MEMORY_REGION2`
    /// (`KVM_CAP_USER_MEMORY2`): the region plus a guest_memfd for private memory.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_userspace_memory_region2 (size 160, align 8, since "6.8") {
        /// As in `kvm_userspace_memory_region`.
        pub slot: u32 => (0, "__u32"),
        /// `MemoryRegionFlags` bits, including `GUEST_MEMFD`.
        pub flags: u32 => (4, "__u32"),
        /// Guest physical address.
        pub guest_phys_addr: u64 => (8, "__u64"),
        /// Size in bytes.
        pub memory_size: u64 => (16, "__u64"),
        /// Host virtual address of the shared backing memory.
        pub userspace_addr: u64 => (24, "__u64"),
        /// Offset into `guest_memfd` of the slot's private memory.
        pub guest_memfd_offset: u64 => (32, "__u64"),
        /// A guest_memfd from `KVM_CREATE_GUEST_MEMFD`, with `KVM_MEM_GUEST_MEMFD`.
        pub guest_memfd: u32 => (40, "__u32"),
        /// Must be zero.
        pub pad1: u32 => (44, "__u32"),
        /// Must be zero.
        pub pad2: [u64; 14] => (48, "__u64[14]"),
    }
}

abi! {
    /// `struct kvm_dirty_log`, argument of `KVM_GET_DIRTY_LOG`. The kernel declares the bitmap
    /// as `union { void *dirty_bitmap; __u64 padding2; }`: one 64-bit word holding a pointer.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_dirty_log (size 16, align 8) {
        /// The slot (with its address space in bits 16-31).
        pub slot: u32 => (0, "__u32"),
        /// Padding.
        pub padding1: u32 => (4, "__u32"),
        /// Address of a buffer of one bit per page of the slot, rounded up to 64 bits; the
        /// caller stores the pointer here.
        pub dirty_bitmap: u64 => (8, "void *"),
    }
}

abi! {
    /// `struct kvm_clear_dirty_log`, argument of `KVM_CLEAR_DIRTY_LOG`
    /// (`KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2`). `dirty_bitmap` is a pointer stored as `u64`, as in
    /// [`kvm_dirty_log`].
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_clear_dirty_log (size 24, align 8) {
        /// The slot (with its address space in bits 16-31).
        pub slot: u32 => (0, "__u32"),
        /// Number of pages to clear; a multiple of 64 unless the range ends the slot.
        pub num_pages: u32 => (4, "__u32"),
        /// First page to clear; a multiple of 64.
        pub first_page: u64 => (8, "__u64"),
        /// Address of the bitmap of pages to clear, bit 0 for `first_page`.
        pub dirty_bitmap: u64 => (16, "void *"),
    }
}

abi! {
    /// `struct kvm_coalesced_mmio_zone`, argument of `KVM_REGISTER_COALESCED_MMIO` and
    /// `KVM_UNREGISTER_COALESCED_MMIO`. The kernel's last member is `union { __u32 pad; __u32
    /// pio; }`; it is `pio` here, the name that carries meaning.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_coalesced_mmio_zone (size 16, align 8) {
        /// First guest physical address (or port) of the zone.
        pub addr: u64 => (0, "__u64"),
        /// Length in bytes.
        pub size: u32 => (8, "__u32"),
        /// 1 for a port-I/O zone (`KVM_CAP_COALESCED_PIO`), 0 for MMIO.
        pub pio: u32 => (12, "__u32"),
    }
}

abi! {
    /// `struct kvm_coalesced_mmio`: one write recorded in the ring instead of an exit.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_coalesced_mmio (size 24, align 8) {
        /// Guest physical address (or port) written.
        pub phys_addr: u64 => (0, "__u64"),
        /// Bytes written, 1 to 8.
        pub len: u32 => (8, "__u32"),
        /// 1 if the write was port I/O (the kernel's `union { pad; pio; }`).
        pub pio: u32 => (12, "__u32"),
        /// The data; only `data[..len]` is meaningful.
        pub data: [u8; 8] => (16, "__u8[8]"),
    }
}

abi! {
    /// `struct kvm_coalesced_mmio_ring`: the header of the page at `KVM_COALESCED_MMIO_PAGE_OFFSET`
    /// in the vCPU mapping. In C, `struct kvm_coalesced_mmio coalesced_mmio[]` follows; Rust has no
    /// flexible array member, so entry `i` is at byte
    /// `size_of::<kvm_coalesced_mmio_ring>() + i * size_of::<kvm_coalesced_mmio>()` of the page,
    /// for `i` below [`KVM_COALESCED_MMIO_MAX`]. The kernel writes at `last`; user space reads
    /// from `first` and advances it, modulo `KVM_COALESCED_MMIO_MAX`. Aligned to 8 like the C
    /// type, whose alignment comes from the entries.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    #[repr(align(8))]
    pub struct kvm_coalesced_mmio_ring (size 8, align 8) {
        /// Next entry for user space to read.
        pub first: u32 => (0, "__u32"),
        /// Next entry the kernel will write; the ring is empty when `first == last`.
        pub last: u32 => (4, "__u32"),
    }
}

/// Entries in the coalesced-MMIO ring with 4 KiB pages: `(PAGE_SIZE - sizeof(ring header)) /
/// sizeof(struct kvm_coalesced_mmio)` = 170 (169 usable: a full ring keeps one slot free).
///
/// The kernel's macro uses the host's `PAGE_SIZE`, so hosts with 16 or 64 KiB pages (arm64,
/// ppc64le) have 682 or 2730 entries: code reading a real ring computes the count from the
/// page size and uses this constant only as the 4 KiB value.
pub const KVM_COALESCED_MMIO_MAX: usize = (4096 - core::mem::size_of::<kvm_coalesced_mmio_ring>())
    / core::mem::size_of::<kvm_coalesced_mmio>();
static_assertions::const_assert_eq!(KVM_COALESCED_MMIO_MAX, 170);
