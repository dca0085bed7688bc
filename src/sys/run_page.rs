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
//!   ranges handed out by [`RunPage::into_bytes`] must end before that page.
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
use std::sync::atomic::AtomicU8;

use memoffset::offset_of;
use rawkvm_bindings::kvm_run;

use super::memory::Mapping;

/// Offset of `kvm_run.immediate_exit`, the one byte other threads write.
const IMMEDIATE_EXIT: usize = offset_of!(kvm_run, immediate_exit);

mod sealed {
    pub trait Sealed {}
}

/// Plain little integers that any bit pattern is valid for: the types [`Field`] can name.
pub trait Scalar: Copy + sealed::Sealed {}
macro_rules! scalars {
    ($($t:ty),*) => { $(impl sealed::Sealed for $t {} impl Scalar for $t {})* };
}
scalars!(u8, u16, u32, u64);

/// A field of `struct kvm_run`: its offset and type.
///
/// Built only by the `const fn` [`Field::at`], which fails to compile unless the field lies
/// inside `struct kvm_run`, is aligned for `T`, and does not overlap `immediate_exit`.
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
        let end = offset + size_of::<T>();
        assert!(
            end <= size_of::<kvm_run>(),
            "field lies outside struct kvm_run"
        );
        assert!(offset % align_of::<T>() == 0, "field is misaligned");
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
}

impl RunMapping {
    /// Wraps the `kvm_run` mapping. `ring_page` is the page index of the coalesced-MMIO ring
    /// (`KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO)`), or `None` if the kernel has none.
    pub(crate) fn new(mapping: Mapping, ring_page: Option<usize>) -> RunMapping {
        let len = mapping.len();
        let private_end = ring_page
            .and_then(|page| page.checked_mul(page_size()))
            .map_or(len, |ring| ring.min(len));
        RunMapping {
            mapping,
            private_end,
        }
    }

    /// `kvm_run.immediate_exit`, the byte that makes the next (or current) `KVM_RUN` return
    /// `EINTR` (api.rst: "polled once when KVM_RUN starts").
    pub(crate) fn immediate_exit(&self) -> &AtomicU8 {
        let byte = self.mapping.as_ptr().wrapping_add(IMMEDIATE_EXIT);
        // SAFETY: the mapping holds at least a `struct kvm_run` (checked when the vCPU is
        // created), so the byte is in bounds, aligned (any address is, for a u8) and lives as
        // long as `self`. From Rust this byte is only ever accessed atomically: `Field` and
        // `into_bytes` refuse to cover it, and nothing else reads the mapping.
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

/// System page size; 4 KiB on every architecture rawkvm runs on today.
pub(crate) fn page_size() -> usize {
    4096
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
        // SAFETY: `Field::at` proved `offset + size_of::<T>() <= size_of::<kvm_run>()` and the
        // alignment; every constructor of `RunPage` ensures `len >= size_of::<kvm_run>()` and
        // an 8-byte-aligned base. The byte range excludes `immediate_exit`, and the kernel does
        // not write this vCPU's page outside `KVM_RUN`, which `'a` rules out. Any bits are a
        // valid `T: Scalar`. Volatile: the kernel, not Rust code, wrote these bytes.
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
        // SAFETY: `private_range` proved the range lies inside the page's private part and
        // clear of `immediate_exit`, so nothing else reads or writes it while `'a` lasts:
        // the kernel writes it only during this vCPU's `KVM_RUN`, and the view borrows the
        // vCPU exclusively. `self` is consumed, so no second slice can alias this one.
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
