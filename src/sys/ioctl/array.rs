//! Ioctls whose argument is a header followed by a C flexible array member
//! (`struct kvm_irq_routing { __u32 nr; __u32 flags; struct kvm_irq_routing_entry entries[]; }`).
//!
//! ```text
//! buf = [ header | entries[0] | entries[1] | ... | entries[n-1] ]   one 8-byte-aligned buffer
//! ioctl(fd, REQUEST, buf)        the request encodes only sizeof(header); the kernel reads
//!                                header.count entries after it
//! ```
//!
//! [`ReadsArray`] is the argument kind. The count the kernel will read is taken from the header
//! by [`ArrayHeader::count`] and must equal the number of entries given, so the kernel never
//! reads past the buffer. The buffer is allocated per call: these ioctls are set-up calls, never
//! on the exit path.
//!
//! This file holds `unsafe`: the typed writes into the buffer and the `libc::ioctl` call.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::c_int;
use nix::errno::Errno;
use nix::sys::ioctl::ioctl_num_type;
use rawkvm_bindings as abi;

use super::{ArgKind, Ioctl, check, encoded_size};

/// `ioctl(fd, req, &{ header, entries[] })` where the kernel only reads (`_IOW` of the header,
/// then `count` entries).
pub(crate) struct ReadsArray<H, E>(PhantomData<(H, E)>);

impl<H, E> ArgKind for ReadsArray<H, E> {}

/// A header whose member says how many entries follow it.
pub(crate) trait ArrayHeader {
    /// The number of entries the kernel will read after this header.
    fn count(&self) -> usize;
}

impl ArrayHeader for abi::kvm_irq_routing {
    fn count(&self) -> usize {
        self.nr as usize
    }
}

/// Why a [`ReadsArray`] call was not made, or what the kernel said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArrayError {
    /// The header's count is not the number of entries given; nothing was asked.
    CountMismatch {
        /// What the header says.
        header: usize,
        /// Entries given.
        entries: usize,
    },
    /// The kernel refused.
    Kernel(Errno),
}

impl<H: ArrayHeader + Copy, E: Copy> Ioctl<ReadsArray<H, E>> {
    /// An entry whose request encodes `size_of::<H>()`, checked at compile time, as is the
    /// layout the buffer relies on: entries start right after the header, at their alignment,
    /// and neither needs more than the buffer's 8-byte alignment.
    pub(super) const fn reads_array(name: &'static str, request: ioctl_num_type) -> Self {
        assert!(
            encoded_size(request) == size_of::<H>(),
            "request size differs from the header"
        );
        assert!(
            size_of::<H>() % align_of::<E>() == 0,
            "entries would be misaligned"
        );
        assert!(
            align_of::<H>() <= 8 && align_of::<E>() <= 8,
            "over-aligned types"
        );
        Self::entry(name, request)
    }

    /// `ioctl(fd, request, &{ header, entries })`. `header.count()` must be `entries.len()`.
    pub(crate) fn call(
        &self,
        fd: BorrowedFd<'_>,
        header: &H,
        entries: &[E],
    ) -> Result<c_int, ArrayError> {
        if header.count() != entries.len() {
            return Err(ArrayError::CountMismatch {
                header: header.count(),
                entries: entries.len(),
            });
        }
        let bytes = size_of::<H>() + size_of_val(entries);
        let mut buffer = vec![0u64; bytes.div_ceil(8)];
        let base = buffer.as_mut_ptr().cast::<u8>();
        // SAFETY: `buffer` holds at least `size_of::<H>()` bytes and is 8-byte aligned, which
        // `reads_array` checked is enough for `H`; the write stays inside the allocation.
        unsafe { base.cast::<H>().write(*header) };
        for (i, entry) in entries.iter().enumerate() {
            let at = base
                .wrapping_add(size_of::<H>() + i * size_of::<E>())
                .cast::<E>();
            // SAFETY: `at + size_of::<E>()` is at most `bytes`, inside `buffer` (`bytes` was
            // computed from the same terms), and `at` is a multiple of `align_of::<E>()` from
            // the 8-aligned base (`reads_array` checked that the header size is, and every
            // entry adds `size_of::<E>()`, a multiple of its alignment).
            unsafe { at.write(*entry) };
        }
        // SAFETY: the request's size field is `size_of::<H>()` (checked in `reads_array`); the
        // kernel copies the header from `base`, then `header.count()` entries after it (api.rst,
        // "KVM_SET_GSI_ROUTING"), which is exactly `entries.len()` (checked above), all inside
        // `buffer`, which lives until the call returns. Nothing is written through it.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, base) })
            .map_err(ArrayError::Kernel)
    }
}
