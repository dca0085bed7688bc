//! The `kvm_run` region of a vCPU, read and written in place.
//!
//! ```text
//! run = mmap(NULL, KVM_GET_VCPU_MMAP_SIZE, PROT_READ|PROT_WRITE, MAP_SHARED, vcpu_fd, 0)
//! ioctl(vcpu_fd, KVM_RUN, 0)   the kernel fills run->exit_reason and the exit union
//! run->io.data_offset          points further into the same mapping (page 1 on x86)
//! ```
//!
//! The region is shared memory with three kinds of writers, and the types here keep them apart:
//!
//! * the kernel, during `KVM_RUN` on this vCPU's thread. Every [`RunPage`] borrows the vCPU
//!   exclusively, so no page view exists while `KVM_RUN` is in progress;
//! * other threads writing `immediate_exit` to stop the vCPU. That byte is only ever accessed
//!   as an `AtomicU8`, by whoever kicks the vCPU; [`Field`] refuses offsets that cover
//!   it, and [`RunPage::into_bytes`] refuses ranges that do;
//! * the kernel on behalf of *other* vCPUs, appending to the coalesced-MMIO ring page. Byte
//!   ranges handed out by [`RunPage::into_bytes`] must end before that page; the ring itself is
//!   read in place by `CoalescedRing`, with atomic `first`/`last` and volatile entry copies.
//!
//! ```text
//! ring = run + KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO) * PAGE_SIZE   (page 2 on x86)
//! while ring->first != ring->last:           last: written by the kernel (after smp_wmb)
//!     entry = ring->coalesced_mmio[first]    a write the kernel recorded instead of an exit
//!     ring->first = (first + 1) % entries    entries = (PAGE_SIZE - 8) / 24: the kernel's
//!                                            KVM_COALESCED_MMIO_MAX, 170 with 4 KiB pages
//! ```
//!
//! Fixed fields are read through [`Field`], a typed offset whose bounds and alignment are
//! checked at compile time against `size_of::<kvm_run>()`, so reading one can neither fail nor
//! leave the page. Anything the kernel (or a fuzzer) puts in the page that says where other data
//! lives, like `io.data_offset`, is checked at run time by [`RunPage::into_bytes`].
//!
//! This file holds `unsafe`: the raw reads and writes of the region and the slices made of it.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::ops::Range;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use memoffset::offset_of;
use rawkvm_bindings::{kvm_coalesced_mmio, kvm_run};

use super::memory::{Mapping, page_size};
pub use super::ring::{DrainError, RingEntry, RingError};
use super::ring::{RING_ENTRIES, ring_entries, ring_offset_with};

/// Offset of `kvm_run.immediate_exit`, the one byte other threads write.
const IMMEDIATE_EXIT: usize = offset_of!(kvm_run, immediate_exit);

mod sealed {
    pub trait Sealed {}
}

/// Plain data that any bit pattern is valid for: the types [`Field`] can name. Little
/// integers, and the kernel's register structs that `kvm_run.s.regs` holds (made only of
/// integers, so any bytes the kernel leaves there are a valid value).
pub trait Scalar: Copy + sealed::Sealed {}
macro_rules! scalars {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {} impl Scalar for $t {})* };
}
scalars!(u8, u16, u32, u64);
#[cfg(target_arch = "x86_64")]
scalars!(
    rawkvm_bindings::kvm_regs,
    rawkvm_bindings::kvm_sregs,
    rawkvm_bindings::kvm_vcpu_events
);

/// The fields of `kvm_run` that carry the synchronised registers (`KVM_CAP_SYNC_REGS`).
///
/// ```text
/// run->kvm_valid_regs = KVM_SYNC_X86_REGS | ...   the kernel stores those sets in run->s.regs
///                                                 at every exit (and on EINTR)
/// run->s.regs.regs = ...; run->kvm_dirty_regs |= KVM_SYNC_X86_REGS
///                                                 the next KVM_RUN loads them (like
///                                                 KVM_SET_REGS) and clears the bit
/// ```
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // sync regs are x86-only so far
pub mod sync_regs {
    use super::*;

    /// `kvm_run.kvm_valid_regs`: the sets the kernel writes to `s.regs` on the way out.
    pub const VALID_REGS: Field<u64> = Field::at(offset_of!(kvm_run, kvm_valid_regs));
    /// `kvm_run.kvm_dirty_regs`: the sets the kernel reads from `s.regs` on the way in.
    pub const DIRTY_REGS: Field<u64> = Field::at(offset_of!(kvm_run, kvm_dirty_regs));

    #[cfg(target_arch = "x86_64")]
    const S: usize = offset_of!(kvm_run, s);
    /// `kvm_run.s.regs.regs` (x86, `KVM_SYNC_X86_REGS`).
    #[cfg(target_arch = "x86_64")]
    pub const REGS: Field<rawkvm_bindings::kvm_regs> =
        Field::at(S + offset_of!(rawkvm_bindings::kvm_sync_regs, regs));
    /// `kvm_run.s.regs.sregs` (x86, `KVM_SYNC_X86_SREGS`).
    #[cfg(target_arch = "x86_64")]
    pub const SREGS: Field<rawkvm_bindings::kvm_sregs> =
        Field::at(S + offset_of!(rawkvm_bindings::kvm_sync_regs, sregs));
    /// `kvm_run.s.regs.events` (x86, `KVM_SYNC_X86_EVENTS`).
    #[cfg(target_arch = "x86_64")]
    pub const EVENTS: Field<rawkvm_bindings::kvm_vcpu_events> =
        Field::at(S + offset_of!(rawkvm_bindings::kvm_sync_regs, events));
}

/// A field of `struct kvm_run`: its offset and type.
///
/// Built only by the `const fn` [`Field::at`], which fails to compile (or, called at run time,
/// panics) unless the field lies inside `struct kvm_run`, is aligned for `T`, and does not
/// overlap `immediate_exit`.
#[derive(Debug)]
pub struct Field<T> {
    offset: usize,
    ty: PhantomData<fn() -> T>,
}

impl<T> Clone for Field<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Field<T> {}

impl<T: Scalar> Field<T> {
    /// The field of type `T` at `offset` bytes into `struct kvm_run`. Use it in a `const`
    /// so the checks run at compile time.
    pub const fn at(offset: usize) -> Field<T> {
        // Checked: called outside a `const` in a release build, a plain `+` would wrap, and
        // `usize::MAX - 7` would pass as a field that ends at 0.
        let end = match offset.checked_add(size_of::<T>()) {
            Some(end) if end <= size_of::<kvm_run>() => end,
            _ => panic!("field lies outside struct kvm_run"),
        };
        assert!(offset % align_of::<T>() == 0, "field is misaligned");
        // A page's base is only promised 8-byte alignment (`RunPage::from_bytes`).
        assert!(
            align_of::<T>() <= align_of::<u64>(),
            "type needs more than 8-byte alignment"
        );
        assert!(
            end <= IMMEDIATE_EXIT || offset > IMMEDIATE_EXIT,
            "field covers immediate_exit"
        );
        Field {
            offset,
            ty: PhantomData,
        }
    }

    /// Offset in bytes from the start of `struct kvm_run`.
    pub const fn offset(self) -> usize {
        self.offset
    }
}

/// A vCPU's `kvm_run` mapping, as shared with the threads that may stop it.
///
/// Holders of an `Arc<RunMapping>` can reach only the `immediate_exit` byte; a [`RunPage`] over
/// the rest needs exclusive access to the vCPU.
#[derive(Debug)]
pub(crate) struct RunMapping {
    mapping: Mapping,
    /// Where bytes stop being private to this vCPU (the coalesced-MMIO ring page, if any).
    private_end: usize,
    /// The coalesced-MMIO ring page, if the kernel has one and it is mapped whole.
    ring: Option<RingPage>,
}

/// Where the coalesced ring lies in a vCPU mapping, and how many entries it holds.
#[derive(Debug, Clone, Copy)]
struct RingPage {
    /// Offset of the page in the mapping; the whole page lies inside it.
    offset: usize,
    /// `ring_entries` of the page size the offset was computed with.
    entries: u32,
}

impl RunMapping {
    /// Wraps the `kvm_run` mapping. `ring_page` is the page index of the coalesced-MMIO ring
    /// (`KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO)`), or `None` if the kernel has none.
    pub(crate) fn new(mapping: Mapping, ring_page: Option<usize>) -> RunMapping {
        Self::with_page_size(mapping, ring_page, page_size())
    }

    /// As [`RunMapping::new`], for pages of `page` bytes (tests play other hosts' page sizes).
    fn with_page_size(mapping: Mapping, ring_page: Option<usize>, page: usize) -> RunMapping {
        let len = mapping.len();
        // What `immediate_exit` and every `RunPage` rely on. `VmFd::create_vcpu` refuses a
        // smaller `KVM_GET_VCPU_MMAP_SIZE` before making the vCPU, so this never fires there.
        assert!(
            len >= size_of::<kvm_run>(),
            "a kvm_run mapping of {len} bytes is smaller than struct kvm_run"
        );
        let ring_start = ring_page.and_then(|index| index.checked_mul(page));
        let private_end = ring_start.map_or(len, |ring| ring.min(len));
        let ring = ring_offset_with(ring_page, len, page).and_then(|offset| {
            Some(RingPage {
                offset,
                entries: u32::try_from(ring_entries(page)).ok().filter(|&n| n > 0)?,
            })
        });
        RunMapping {
            mapping,
            private_end,
            ring,
        }
    }

    /// As [`RunMapping::new`] with pages of `page` bytes: for tests of other hosts' rings.
    #[cfg(test)]
    pub(crate) fn for_tests(mapping: Mapping, ring_page: Option<usize>, page: usize) -> Self {
        Self::with_page_size(mapping, ring_page, page)
    }

    /// The mapping, for tests that play the kernel's part.
    #[cfg(test)]
    pub(crate) fn mapping_for_tests(&self) -> &Mapping {
        &self.mapping
    }

    /// `kvm_run.immediate_exit`, the byte that makes the next (or current) `KVM_RUN` return
    /// `EINTR` (api.rst: "polled once when KVM_RUN starts").
    pub(crate) fn immediate_exit(&self) -> &AtomicU8 {
        let byte = self.mapping.as_ptr().wrapping_add(IMMEDIATE_EXIT);
        // From Rust this byte is only ever accessed atomically: `Field` and `into_bytes`
        // refuse to cover it, and nothing else reads the mapping.
        // SAFETY: the mapping holds a whole `struct kvm_run` (checked by this type's
        // constructor), so the byte is in bounds, aligned (any address is, for a u8) and lives
        // as long as `self`.
        unsafe { AtomicU8::from_ptr(byte) }
    }

    /// An exclusive view of the page.
    ///
    /// # Safety
    /// For as long as the returned view lives, nothing else may read or write the mapping
    /// except through [`RunMapping::immediate_exit`]: in particular no `KVM_RUN` on this vCPU
    /// and no second view. The vCPU's owner guarantees it by borrowing the vCPU mutably.
    pub(super) unsafe fn page(&self) -> RunPage<'_> {
        RunPage {
            base: self.mapping.base(),
            len: self.mapping.len(),
            private_end: self.private_end,
            lifetime: PhantomData,
        }
    }
}

/// Why a byte buffer cannot serve as a `kvm_run` page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageError {
    /// The buffer is smaller than `struct kvm_run`.
    TooSmall {
        /// Length of the buffer.
        len: usize,
    },
    /// The buffer does not start on an 8-byte boundary.
    Misaligned,
}

/// An exclusive view of a `kvm_run` region for the time between two `KVM_RUN` calls.
#[derive(Debug)]
pub struct RunPage<'a> {
    base: NonNull<u8>,
    len: usize,
    private_end: usize,
    lifetime: PhantomData<&'a mut [u8]>,
}

impl<'a> RunPage<'a> {
    /// A page over ordinary bytes: for decoder tests, fuzzing and Miri. The buffer must hold
    /// at least a `struct kvm_run` and start on an 8-byte boundary.
    pub fn from_bytes(buf: &'a mut [u8]) -> Result<RunPage<'a>, PageError> {
        if buf.len() < size_of::<kvm_run>() {
            return Err(PageError::TooSmall { len: buf.len() });
        }
        if buf.as_ptr().align_offset(align_of::<u64>()) != 0 {
            return Err(PageError::Misaligned);
        }
        Ok(RunPage {
            base: NonNull::from(&mut *buf).cast(),
            len: buf.len(),
            private_end: buf.len(),
            lifetime: PhantomData,
        })
    }

    /// Ends the part of the page that byte views may cover at `end`, as a real mapping's
    /// coalesced-MMIO ring page does (for tests and fuzzing of that rule). It can only shrink:
    /// an `end` past the current one changes nothing.
    pub fn with_private_end(mut self, end: usize) -> RunPage<'a> {
        self.private_end = self.private_end.min(end);
        self
    }

    /// Size of the whole mapping (`KVM_GET_VCPU_MMAP_SIZE`), the bound for `io.data_offset`.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a page holds at least a `struct kvm_run`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Reads a fixed field.
    pub fn get<T: Scalar>(&self, field: Field<T>) -> T {
        // Every constructor of `RunPage` ensures `len >= size_of::<kvm_run>()` and an 8-byte
        // aligned base; the kernel does not write this vCPU's page outside `KVM_RUN`, which `'a`
        // rules out. Volatile: the kernel, not Rust code, wrote these bytes.
        // SAFETY: `Field::at` proved the field in bounds of `kvm_run`, aligned and clear of
        // `immediate_exit`, and any bits are a valid `T: Scalar`.
        unsafe { ptr::read_volatile(self.base.as_ptr().wrapping_add(field.offset).cast::<T>()) }
    }

    /// Writes a fixed field (for example `request_interrupt_window` or `kvm_dirty_regs`).
    pub fn set<T: Scalar>(&mut self, field: Field<T>, value: T) {
        // SAFETY: as for `get`; `&mut self` makes this the only access to the page.
        unsafe {
            ptr::write_volatile(
                self.base.as_ptr().wrapping_add(field.offset).cast::<T>(),
                value,
            )
        }
    }

    /// Turns the view into the `len` bytes at `offset`, if they lie inside the mapping, before
    /// the shared coalesced-MMIO ring page, and clear of `immediate_exit`; `None` otherwise.
    /// Checked arithmetic throughout: `offset` may come straight from the page.
    pub fn into_bytes(self, offset: u64, len: usize) -> Option<&'a mut [u8]> {
        let range = self.private_range(offset, len)?;
        // The kernel writes the page only during this vCPU's `KVM_RUN`, which the view's
        // exclusive borrow of the vCPU rules out while `'a` lasts.
        // SAFETY: `private_range` checked the range lies in the page's private part, clear of
        // `immediate_exit`; `self` is consumed, so no second slice can alias this one.
        Some(unsafe {
            std::slice::from_raw_parts_mut(
                self.base.as_ptr().wrapping_add(range.start),
                range.len(),
            )
        })
    }

    /// Turns the view into `count` little-endian `u64` words at `offset` (for example
    /// `internal.data`), under the same rules as [`RunPage::into_bytes`] plus alignment.
    pub fn into_words(self, offset: usize, count: usize) -> Option<&'a [u64]> {
        let len = count.checked_mul(size_of::<u64>())?;
        if offset % align_of::<u64>() != 0 {
            return None;
        }
        let range = self.private_range(offset as u64, len)?;
        // SAFETY: as in `into_bytes`; in addition the base is 8-byte aligned (page-aligned for
        // a mapping, checked by `from_bytes` otherwise) and `offset` is a multiple of 8, so the
        // words are aligned. Any bits are a valid `u64`.
        Some(unsafe {
            std::slice::from_raw_parts(self.base.as_ptr().wrapping_add(range.start).cast(), count)
        })
    }

    fn private_range(&self, offset: u64, len: usize) -> Option<Range<usize>> {
        let start = usize::try_from(offset).ok()?;
        let end = start.checked_add(len)?;
        let clear_of_immediate_exit = end <= IMMEDIATE_EXIT || start > IMMEDIATE_EXIT;
        (end <= self.private_end && clear_of_immediate_exit).then_some(start..end)
    }
}

/// The coalesced-MMIO ring of a VM, read in place through one vCPU's mapping.
///
/// The page is the VM's, not the vCPU's: every vCPU mapping shows the same ring, and the
/// kernel appends to it from any vCPU thread at any time (under its own lock, then a write
/// barrier, then `last`). So `first` and `last` are only touched as atomics, entries are
/// copied out with volatile reads and only from `[first, last)` (slots the kernel will not
/// write until `first` moves past them), and consumers of one VM take turns through one
/// shared lock.
#[derive(Debug)]
pub(crate) struct CoalescedRing {
    run: Arc<RunMapping>,
    /// Offset of the ring page in the mapping; `RunMapping::new` checked the page is whole.
    offset: usize,
    /// Entries in the ring: `ring_entries` of the page size `offset` was computed with, so
    /// every entry below it lies inside the ring page.
    entries: u32,
    /// Held while consuming, so two vCPU threads never advance `first` together.
    consumer: Arc<Mutex<()>>,
}

impl RunMapping {
    /// The VM's coalesced ring as this mapping shows it, if it maps the ring page whole.
    /// `consumer` is the VM-wide lock that serialises draining.
    pub(crate) fn coalesced_ring(
        self: &Arc<Self>,
        consumer: &Arc<Mutex<()>>,
    ) -> Option<CoalescedRing> {
        let ring = self.ring?;
        Some(CoalescedRing {
            offset: ring.offset,
            entries: ring.entries,
            run: Arc::clone(self),
            consumer: Arc::clone(consumer),
        })
    }
}

impl CoalescedRing {
    /// `ring->first` (header offset 0) or `ring->last` (offset 4), as an atomic.
    fn index(&self, header_offset: usize) -> &AtomicU32 {
        debug_assert!(header_offset == 0 || header_offset == 4);
        let ptr = self
            .run
            .mapping
            .as_ptr()
            .wrapping_add(self.offset + header_offset);
        // Rust code only ever accesses these words through this atomic; the kernel's own
        // accesses (`READ_ONCE(first)`, a store to `last` after `smp_wmb`) are atomic too.
        // SAFETY: `RunMapping::new` checked the page-aligned ring page lies inside the mapping
        // `self` holds, so a `u32` at offset 0 or 4 is in bounds, aligned and live.
        unsafe { AtomicU32::from_ptr(ptr.cast()) }
    }

    /// Whether the kernel has recorded nothing since the last drain: two loads, no lock.
    pub(crate) fn is_empty(&self) -> bool {
        self.index(0).load(Ordering::Acquire) == self.index(4).load(Ordering::Acquire)
    }

    /// Copies entry `index` (below `self.entries`) out of the ring.
    fn entry(&self, index: u32) -> Result<RingEntry, RingError> {
        debug_assert!(index < self.entries);
        let at = self.offset + RING_ENTRIES + index as usize * size_of::<kvm_coalesced_mmio>();
        let words = self.run.mapping.as_ptr().wrapping_add(at).cast::<u64>();
        // Three word loads, not one of the whole struct (which compiles to byte loads).
        let raw: [u64; 3] = std::array::from_fn(|i| {
            // `entries` is `ring_entries(page)`, and `8 + ring_entries(page) * 24 <= page` by
            // that function's definition, so entry `index` (24 bytes from 8 bytes into the
            // page-aligned ring page) lies inside the ring page, its words aligned. The slot is
            // in `[first, last)`, which the kernel does not write until `first` moves past it.
            // SAFETY: `index < self.entries` (checked by the caller) and `RunMapping` checked
            // the ring page lies inside the live mapping `self.run` holds; any bits are a `u64`.
            unsafe { ptr::read_volatile(words.wrapping_add(i)) }
        });
        RingEntry::from_words(index, raw)
    }

    /// Hands the recorded writes to `consume` oldest first, handing each slot back to the
    /// kernel (advancing `first`) once `consume` has taken it. Stops when the ring is empty,
    /// after one ring's worth of entries (so a guest filling it from another vCPU cannot keep
    /// this thread here), or at the first error. Returns the number consumed.
    pub(crate) fn drain<E>(
        &self,
        mut consume: impl FnMut(RingEntry) -> Result<(), E>,
    ) -> Result<usize, DrainError<E>> {
        let (first, last) = (self.index(0), self.index(4));
        let _turn = self.consumer.lock().unwrap_or_else(PoisonError::into_inner);
        // Only consumers write `first`, and they take turns: it cannot move under us.
        let mut head = first.load(Ordering::Acquire);
        let entries = self.entries;
        if head >= entries {
            return Err(DrainError::Ring(RingError::First(head)));
        }
        let limit = entries as usize;
        let mut consumed = 0;
        while consumed < limit {
            // Acquire pairs with the kernel's smp_wmb() before it publishes `last`: the entries
            // before `last` are complete once it says so.
            let tail = last.load(Ordering::Acquire);
            if tail >= entries {
                return Err(DrainError::Ring(RingError::Last(tail)));
            }
            if head == tail {
                break;
            }
            while head != tail && consumed < limit {
                let entry = self.entry(head).map_err(DrainError::Ring)?;
                consume(entry).map_err(DrainError::Consumer)?;
                head = if head + 1 == entries { 0 } else { head + 1 };
                // Release: the copy above is finished before the kernel may reuse the slot.
                first.store(head, Ordering::Release);
                consumed += 1;
            }
        }
        Ok(consumed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "field lies outside struct kvm_run")]
    fn a_field_whose_end_wraps_around_is_refused() {
        // At run time, so the check is the function's own, not const evaluation's.
        let offset = std::hint::black_box(usize::MAX - 7);
        Field::<u64>::at(offset);
    }

    #[test]
    #[should_panic(expected = "smaller than struct kvm_run")]
    fn a_mapping_smaller_than_kvm_run_cannot_become_a_run_mapping() {
        let short = Mapping::anonymous(size_of::<kvm_run>() - 1).unwrap();
        RunMapping::new(short, None);
    }
}
