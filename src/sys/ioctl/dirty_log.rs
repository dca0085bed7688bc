//! What `KVM_GET_DIRTY_LOG` needs besides the call ([`super::VmFd::get_dirty_log`]): the
//! size of the bitmap, and why a call was refused.

use nix::errno::Errno;

use crate::sys::memory::page_size;

/// Why `KVM_GET_DIRTY_LOG` was not asked (the slot and the bitmap are checked first), or
/// what the kernel said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirtyLogError {
    /// This VM fd never registered that slot, so its size (and the bitmap's) is unknown.
    UnknownSlot(u32),
    /// The bitmap has fewer 64-bit words than the slot has pages / 64, rounded up.
    BitmapTooSmall {
        /// Words the slot needs.
        needed: usize,
        /// Words given.
        given: usize,
    },
    /// `KVM_GET_DIRTY_LOG` failed (`ENOENT`: the slot does not log dirty pages).
    Ioctl(Errno),
}

/// The 64-bit words of a dirty bitmap for a slot of `slot_len` bytes: one bit per page. The
/// kernel copies `ALIGN(npages, BITS_PER_LONG) / 8` bytes; with pages of at least 4 KiB (every
/// Linux architecture) and longs of at most 64 bits, this many words always hold them.
pub(crate) fn dirty_bitmap_words(slot_len: usize) -> usize {
    slot_len.div_ceil(page_size()).div_ceil(64)
}
