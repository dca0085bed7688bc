//! The coalesced-MMIO ring's geometry and the values read out of it: plain data and checks,
//! no `unsafe` (the reads themselves are in `run_page.rs`).
//!
//! ```text
//! ring page = run + KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO) * PAGE_SIZE  if inside the mapping
//! entries   = (PAGE_SIZE - sizeof(struct kvm_coalesced_mmio_ring)) / sizeof(struct kvm_coalesced_mmio)
//! entry i   = ring page + 8 + 24 * i                                         for i < entries
//! ```
//!
//! The kernel sizes the ring with its own `PAGE_SIZE` (`KVM_COALESCED_MMIO_MAX` in
//! `<linux/kvm.h>`), so the count depends on the host: 170 with 4 KiB pages, 682 with 16 KiB,
//! 2730 with 64 KiB.

use memoffset::offset_of;
use rawkvm_bindings::{kvm_coalesced_mmio, kvm_coalesced_mmio_ring};

use super::memory::page_size;

/// Where the coalesced-MMIO ring page starts in a vCPU mapping of `mapping_len` bytes, if the
/// kernel has a ring (`ring_page`, from `KVM_CAP_COALESCED_MMIO`) and the mapping holds that
/// page whole: the one test of whether a run loop will find a ring to drain.
pub(crate) fn ring_offset(ring_page: Option<usize>, mapping_len: usize) -> Option<usize> {
    ring_offset_with(ring_page, mapping_len, page_size())
}

/// As [`ring_offset`], for pages of `page` bytes.
pub(super) fn ring_offset_with(
    ring_page: Option<usize>,
    mapping_len: usize,
    page: usize,
) -> Option<usize> {
    let start = ring_page?.checked_mul(page)?;
    (start.checked_add(page)? <= mapping_len).then_some(start)
}

/// Entries in a coalesced ring page of `page_size` bytes: the kernel's
/// `KVM_COALESCED_MMIO_MAX`, `(PAGE_SIZE - sizeof(struct kvm_coalesced_mmio_ring)) /
/// sizeof(struct kvm_coalesced_mmio)`: 170 with 4 KiB pages, 682 with 16 KiB, 2730 with 64 KiB.
pub(crate) const fn ring_entries(page_size: usize) -> usize {
    page_size.saturating_sub(size_of::<kvm_coalesced_mmio_ring>()) / size_of::<kvm_coalesced_mmio>()
}

/// One write the kernel recorded in the coalesced ring instead of exiting, copied out of the
/// ring (so the slot can be handed back to the kernel at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingEntry {
    /// The guest physical address written, or the port for port I/O.
    pub phys_addr: u64,
    /// Port I/O (`pio = 1`, `KVM_CAP_COALESCED_PIO`) rather than MMIO.
    pub pio: bool,
    len: u8,
    data: [u8; 8],
}

impl RingEntry {
    /// The bytes written: `data[..len]`, `len` in 1..=8 (checked when the entry was read).
    pub fn data(&self) -> &[u8] {
        &self.data[..usize::from(self.len)]
    }

    /// Checks and decodes entry `index` from its three 64-bit words in memory order
    /// (`phys_addr`; `len`, `pio`; `data`), as copied out of the ring.
    pub(super) fn from_words(index: u32, raw: [u64; 3]) -> Result<RingEntry, RingError> {
        static_assertions::const_assert_eq!(offset_of!(kvm_coalesced_mmio, len), 8);
        static_assertions::const_assert_eq!(offset_of!(kvm_coalesced_mmio, pio), 12);
        static_assertions::const_assert_eq!(offset_of!(kvm_coalesced_mmio, data), 16);
        let phys_addr = raw[0];
        let [l0, l1, l2, l3, p0, p1, p2, p3] = raw[1].to_ne_bytes();
        let (raw_len, raw_pio) = (
            u32::from_ne_bytes([l0, l1, l2, l3]),
            u32::from_ne_bytes([p0, p1, p2, p3]),
        );
        let data = raw[2].to_ne_bytes();
        let len = u8::try_from(raw_len)
            .ok()
            .filter(|len| (1..=8).contains(len))
            .ok_or(RingError::EntryLen {
                index,
                len: raw_len,
            })?;
        let pio = raw_pio != 0;
        if pio && phys_addr > u64::from(u16::MAX) {
            return Err(RingError::Port { index, phys_addr });
        }
        Ok(RingEntry {
            phys_addr,
            pio,
            len,
            data,
        })
    }
}

/// A field of the coalesced ring held a value the ABI does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// `first` was not below the ring's entry count (`KVM_COALESCED_MMIO_MAX`: 170 with 4 KiB
    /// pages, more with larger ones).
    First(u32),
    /// `last` was not below the ring's entry count.
    Last(u32),
    /// An entry's `len` was not in 1..=8.
    EntryLen {
        /// Index of the entry in the ring.
        index: u32,
        /// `len` as found.
        len: u32,
    },
    /// A port-I/O entry's address was not a 16-bit port.
    Port {
        /// Index of the entry in the ring.
        index: u32,
        /// `phys_addr` as found.
        phys_addr: u64,
    },
}

impl std::fmt::Display for RingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            RingError::First(first) => write!(
                f,
                "coalesced ring first = {first}, not below {}",
                ring_entries(page_size())
            ),
            RingError::Last(last) => write!(
                f,
                "coalesced ring last = {last}, not below {}",
                ring_entries(page_size())
            ),
            RingError::EntryLen { index, len } => {
                write!(f, "coalesced ring entry {index} has len {len}, not 1..=8")
            }
            RingError::Port { index, phys_addr } => write!(
                f,
                "coalesced ring entry {index} is port I/O at {phys_addr:#x}, not a 16-bit port"
            ),
        }
    }
}

/// Why `CoalescedRing::drain` stopped early.
#[derive(Debug)]
pub enum DrainError<E> {
    /// The ring itself was malformed.
    Ring(RingError),
    /// The consumer failed on an entry (which stays in the ring).
    Consumer(E),
}

/// Bytes from the start of the ring page to entry 0.
pub(super) const RING_ENTRIES: usize = size_of::<kvm_coalesced_mmio_ring>();
// Every entry index below `ring_entries(page)` lies inside a ring page of `page` bytes.
static_assertions::const_assert!(
    RING_ENTRIES + ring_entries(4096) * size_of::<kvm_coalesced_mmio>() <= 4096
);
static_assertions::const_assert!(
    RING_ENTRIES + ring_entries(65536) * size_of::<kvm_coalesced_mmio>() <= 65536
);
static_assertions::const_assert_eq!(ring_entries(4096), rawkvm_bindings::KVM_COALESCED_MMIO_MAX);
