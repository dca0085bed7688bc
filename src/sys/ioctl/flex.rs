//! Ioctls whose argument is a header struct with a count, followed in the same buffer by that
//! many entries: C's flexible array member.
//!
//! ```text
//! struct kvm_cpuid2 { __u32 nent; __u32 padding; struct kvm_cpuid_entry2 entries[]; };
//! struct kvm_msrs   { __u32 nmsrs; __u32 pad;    struct kvm_msr_entry entries[]; };
//! struct kvm_msr_list { __u32 nmsrs;             __u32 indices[]; };
//!
//! ioctl(fd, KVM_GET_SUPPORTED_CPUID, buf)   the kernel reads nent, writes up to nent entries
//!                                           and the count it filled (E2BIG: too few)
//! ioctl(vcpu, KVM_SET_CPUID2, buf)          the kernel reads nent, then nent entries
//! ```
//!
//! The request code encodes only the header's size: how far the kernel reads or writes past
//! it depends on the count the header holds *when the call is made*. A [`FlexArray`] owns one
//! 8-byte-aligned buffer of a header and room for `capacity` entries, and the only way to put a
//! count into its header is [`FlexArray::set_count`], which refuses a count above the capacity.
//! The call checks it again just before the kernel sees the buffer ([`FlexError::CountTooLarge`]),
//! so no count can make the kernel go past the buffer. After an `_IOWR` call the kernel may leave
//! any count in the header (`KVM_GET_MSR_INDEX_LIST` writes the count it needs with `E2BIG`), so
//! [`FlexArray::entries`] never shows more than the capacity.
//!
//! [`FlexHeader`] names the count member of each header; a new flexible-array ioctl
//! (`KVM_SET_GSI_ROUTING`'s `kvm_irq_routing`, below) needs one impl here and one table entry.

#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // GSI routing is the only one elsewhere

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::c_int;
use nix::errno::Errno;
use nix::sys::ioctl::ioctl_num_type;
use rawkvm_bindings as abi;

use super::{ArgKind, Ioctl, check, encoded_size};

/// A header struct that ends in a flexible array of [`FlexHeader::Entry`], with a count member.
///
/// # Safety
///
/// `Self` and `Entry` are plain-integer `#[repr(C)]` ABI structs (any bytes are valid values,
/// no padding the kernel could not write), the entries start right after the header
/// (`size_of::<Self>()` is a multiple of `align_of::<Entry>()`), neither needs alignment above
/// 8, and [`FlexHeader::count`] reads the member the kernel takes as the number of entries.
pub(crate) unsafe trait FlexHeader: Copy + Default {
    /// One element of the trailing array.
    type Entry: Copy + Default;
    /// The member that counts the entries (`nent`, `nmsrs`, ...).
    fn count(&self) -> u32;
    /// Sets that member.
    fn set_count(&mut self, count: u32);
}

#[cfg(target_arch = "x86_64")]
// SAFETY: `kvm_cpuid2` (8 bytes, align 4) is followed by `kvm_cpuid_entry2` (40 bytes, align
// 4), both of `__u32`s only; `nent` is the count (api.rst, "KVM_SET_CPUID2"); layouts proved
// against the header by the bindings' header proof.
unsafe impl FlexHeader for abi::kvm_cpuid2 {
    type Entry = abi::kvm_cpuid_entry2;
    fn count(&self) -> u32 {
        self.nent
    }
    fn set_count(&mut self, count: u32) {
        self.nent = count;
    }
}

#[cfg(target_arch = "x86_64")]
// SAFETY: `kvm_msrs` (8 bytes, align 8) is followed by `kvm_msr_entry` (16 bytes, align 8),
// both of plain integers; `nmsrs` is the count (api.rst, "KVM_GET_MSRS"); proved against the
// header.
unsafe impl FlexHeader for abi::kvm_msrs {
    type Entry = abi::kvm_msr_entry;
    fn count(&self) -> u32 {
        self.nmsrs
    }
    fn set_count(&mut self, count: u32) {
        self.nmsrs = count;
    }
}

#[cfg(target_arch = "x86_64")]
// SAFETY: `kvm_msr_list` (4 bytes, align 4) is followed by `__u32 indices[]`; `nmsrs` is the
// count (api.rst, "KVM_GET_MSR_INDEX_LIST"); proved against the header.
unsafe impl FlexHeader for abi::kvm_msr_list {
    type Entry = u32;
    fn count(&self) -> u32 {
        self.nmsrs
    }
    fn set_count(&mut self, count: u32) {
        self.nmsrs = count;
    }
}

// `kvm_irq_routing` (8 bytes, align 8) is followed by `kvm_irq_routing_entry` (48 bytes,
// align 8); the entry's union `u` is `__u32[8]` wide, every member plain integers.
// SAFETY: both are `__u32`s only and `nr` is the count (api.rst, "KVM_SET_GSI_ROUTING"), as
// the bindings' header proof checks against the kernel's header.
unsafe impl FlexHeader for abi::kvm_irq_routing {
    type Entry = abi::kvm_irq_routing_entry;
    fn count(&self) -> u32 {
        self.nr
    }
    fn set_count(&mut self, count: u32) {
        self.nr = count;
    }
}

/// `ioctl(fd, req, buf)` where the kernel reads the header and `count` entries (`_IOW`).
pub(crate) struct FlexReads<H>(PhantomData<H>);
/// `ioctl(fd, req, buf)` where the kernel reads the header (and, for some requests, the
/// entries' inputs such as MSR indices) and writes at most `count` entries and the header back
/// (`_IOWR`).
pub(crate) struct FlexReadsWrites<H>(PhantomData<H>);

impl<H> ArgKind for FlexReads<H> {}
impl<H> ArgKind for FlexReadsWrites<H> {}

impl<H: FlexHeader> Ioctl<FlexReads<H>> {
    pub(crate) const fn flex_reads(name: &'static str, request: ioctl_num_type) -> Self {
        assert!(
            encoded_size(request) == size_of::<H>(),
            "request size differs from the header"
        );
        Self::entry(name, request)
    }

    /// `ioctl(fd, request, buf)`: the kernel copies the header and `count` entries in.
    pub(crate) fn call(&self, fd: BorrowedFd<'_>, buf: &FlexArray<H>) -> Result<c_int, FlexError> {
        buf.check_count()?;
        let ptr = buf.words.as_ptr();
        // The kernel reads `size_of::<H>()` bytes of header, then `count` entries right after
        // it (api.rst for each request of this kind); the buffer owns room for the header and
        // `capacity` entries (its constructor).
        // SAFETY: `count <= capacity` was checked just above, so every byte read is inside
        // `buf`, a live borrow.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, ptr) }).map_err(FlexError::Kernel)
    }
}

impl<H: FlexHeader> Ioctl<FlexReadsWrites<H>> {
    pub(crate) const fn flex_reads_writes(name: &'static str, request: ioctl_num_type) -> Self {
        assert!(
            encoded_size(request) == size_of::<H>(),
            "request size differs from the header"
        );
        Self::entry(name, request)
    }

    /// `ioctl(fd, request, buf)`: the kernel reads the header (and the entries' inputs) and
    /// writes at most `count` entries and the header back.
    pub(crate) fn call(
        &self,
        fd: BorrowedFd<'_>,
        buf: &mut FlexArray<H>,
    ) -> Result<c_int, FlexError> {
        buf.check_count()?;
        let ptr = buf.words.as_mut_ptr();
        // The kernel reads and writes the header and at most `count` entries (api.rst:
        // "KVM_GET_SUPPORTED_CPUID", "KVM_GET_CPUID2", "KVM_GET_MSR_INDEX_LIST", "KVM_GET_MSRS");
        // the buffer owns room for the header and `capacity` entries (its constructor).
        // SAFETY: `count <= capacity` was checked just above, `buf` is an exclusive borrow, and
        // any bytes are valid for the plain-integer header and entries (`FlexHeader`).
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, ptr) }).map_err(FlexError::Kernel)
    }
}

/// Why a flexible-array ioctl did not happen, or what the kernel said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlexError {
    /// The header's count is above the entries the buffer has room for; no call was made.
    CountTooLarge {
        /// The count asked for.
        count: u32,
        /// Entries the buffer holds.
        capacity: usize,
    },
    /// The kernel refused (`E2BIG`: the buffer has too few entries).
    Kernel(Errno),
}

/// A header and room for `capacity` entries in one buffer, as the kernel expects them.
#[derive(Clone)]
pub(crate) struct FlexArray<H: FlexHeader> {
    /// 8-byte words, so the header and the entries are aligned (`FlexHeader` asks for at most 8).
    words: Vec<u64>,
    capacity: usize,
    header: PhantomData<H>,
}

impl<H: FlexHeader> std::fmt::Debug for FlexArray<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlexArray")
            .field("count", &self.header().count())
            .field("capacity", &self.capacity)
            .finish()
    }
}

impl<H: FlexHeader> FlexArray<H> {
    /// Entries start here: right after the header.
    const ENTRIES_OFFSET: usize = {
        assert!(size_of::<H>() % align_of::<H::Entry>() == 0);
        assert!(align_of::<H>() <= 8 && align_of::<H::Entry>() <= 8);
        size_of::<H>()
    };

    /// A zeroed header and `capacity` default entries, the count set to `capacity` (what the
    /// `GET` requests want: "room for").
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        let bytes = Self::ENTRIES_OFFSET + capacity * size_of::<H::Entry>();
        let mut array = FlexArray {
            words: vec![0; bytes.div_ceil(8)],
            capacity,
            header: PhantomData,
        };
        array.write_header(H::default());
        for entry in array.entries_mut_all() {
            *entry = H::Entry::default();
        }
        let count = u32::try_from(capacity).unwrap_or(u32::MAX);
        // Cannot fail: `count <= capacity`.
        let _ = array.set_count(count);
        array
    }

    /// The header `header` (its count replaced by `entries.len()`) and a copy of `entries`.
    pub(crate) fn from_entries(header: H, entries: &[H::Entry]) -> Self {
        let mut array = Self::with_capacity(entries.len());
        let count = array.header().count();
        array.write_header(header);
        let _ = array.set_count(count);
        array.entries_mut_all().copy_from_slice(entries);
        array
    }

    /// A copy of the header (its count as the kernel left it, possibly above the capacity).
    pub(crate) fn header(&self) -> H {
        let ptr = self.words.as_ptr().cast::<H>();
        // SAFETY: the buffer starts with `size_of::<H>()` initialised bytes (the constructor
        // sized and zeroed it), 8-aligned, and any bytes are a valid `H` (`FlexHeader`).
        unsafe { ptr.read() }
    }

    fn write_header(&mut self, header: H) {
        let ptr = self.words.as_mut_ptr().cast::<H>();
        // SAFETY: as in `header`; `&mut self` makes the write exclusive.
        unsafe { ptr.write(header) }
    }

    /// Sets the header's count; refused (and nothing changed) above the capacity.
    pub(crate) fn set_count(&mut self, count: u32) -> Result<(), FlexError> {
        if usize::try_from(count).map_or(true, |count| count > self.capacity) {
            return Err(FlexError::CountTooLarge {
                count,
                capacity: self.capacity,
            });
        }
        let mut header = self.header();
        header.set_count(count);
        self.write_header(header);
        Ok(())
    }

    fn check_count(&self) -> Result<(), FlexError> {
        let count = self.header().count();
        if usize::try_from(count).map_or(true, |count| count > self.capacity) {
            return Err(FlexError::CountTooLarge {
                count,
                capacity: self.capacity,
            });
        }
        Ok(())
    }

    /// The first `min(count, capacity)` entries.
    pub(crate) fn entries(&self) -> &[H::Entry] {
        let count = usize::try_from(self.header().count()).unwrap_or(usize::MAX);
        let len = count.min(self.capacity);
        let ptr = self
            .words
            .as_ptr()
            .cast::<u8>()
            .wrapping_add(Self::ENTRIES_OFFSET)
            .cast::<H::Entry>();
        // SAFETY: the buffer holds `capacity` entries after the header (the constructor sized
        // and initialised them), aligned (checked in `ENTRIES_OFFSET`), `len <= capacity`, and
        // the shared borrow of `self` keeps them alive and unwritten.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    }

    /// All `capacity` entries, whatever the count, for filling in inputs (MSR indices).
    pub(crate) fn entries_mut_all(&mut self) -> &mut [H::Entry] {
        let ptr = self
            .words
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(Self::ENTRIES_OFFSET)
            .cast::<H::Entry>();
        // SAFETY: as in `entries`, for all `capacity` entries; `&mut self` makes it exclusive,
        // and any bytes written are valid entries (`FlexHeader`).
        unsafe { std::slice::from_raw_parts_mut(ptr, self.capacity) }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn the_count_cannot_exceed_the_buffer() {
        let mut msrs = FlexArray::<abi::kvm_msrs>::with_capacity(3);
        assert_eq!((msrs.header().nmsrs, msrs.capacity), (3, 3));
        assert_eq!(msrs.entries().len(), 3);
        assert_eq!(
            msrs.set_count(4),
            Err(FlexError::CountTooLarge {
                count: 4,
                capacity: 3
            })
        );
        assert_eq!(msrs.header().nmsrs, 3);
        msrs.set_count(1).unwrap();
        assert_eq!(msrs.entries().len(), 1);
        assert!(msrs.check_count().is_ok());
    }

    #[test]
    fn entries_follow_the_header() {
        let entry = abi::kvm_cpuid_entry2 {
            function: 0x4000_0000,
            eax: 7,
            ..Default::default()
        };
        let cpuid = FlexArray::from_entries(abi::kvm_cpuid2::default(), &[entry, entry]);
        assert_eq!(cpuid.header().nent, 2);
        assert_eq!(cpuid.entries(), &[entry, entry]);
        // Byte 8 is the first entry's `function`.
        assert_eq!(cpuid.words[1] as u32, 0x4000_0000);
        let list = FlexArray::<abi::kvm_msr_list>::from_entries(Default::default(), &[0x10, 0x1b]);
        assert_eq!(list.words[0], 0x10 << 32 | 2);
        assert_eq!(list.entries(), &[0x10, 0x1b]);
        let empty = FlexArray::<abi::kvm_msr_list>::with_capacity(0);
        assert_eq!((empty.header().nmsrs, empty.entries().len()), (0, 0));
    }
}
