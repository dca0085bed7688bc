//! Host memory mappings: guest RAM and the `kvm_run` region, with bounds-checked copies.
//!
//! ```text
//! mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0)  guest RAM
//! mmap(NULL, mmap_size, PROT_READ|PROT_WRITE, MAP_SHARED, vcpu_fd, 0)                  kvm_run
//! munmap(addr, len)                                                                     on drop
//! ```
//!
//! Guest RAM is written by the guest (on any vCPU thread, at any time while one runs), so
//! rawkvm never makes a Rust reference (`&[u8]`) into it: [`Mapping::read`] and
//! [`Mapping::write`] copy with volatile accesses after checking `offset + len` against the
//! mapping with checked arithmetic, right where the pointer is formed (the lesson of
//! CVE-2023-41051: re-check lengths at the unsafe site, not only where they were produced).
//!
//! This file holds `unsafe`: `mmap`, `munmap`, and the volatile copies.
#![allow(unsafe_code)]

use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::{self, NonNull};

use nix::errno::Errno;

/// A range `offset..offset + len` that does not fit inside a mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutOfBounds {
    /// Start of the requested range, relative to the mapping.
    pub offset: usize,
    /// Length of the requested range.
    pub len: usize,
    /// Size of the mapping.
    pub mapping_len: usize,
}

/// An `mmap`ed range of this process's address space, unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
    /// Private anonymous memory: a page never touched reads as zeros. (Not so for a private
    /// mapping of a file, whose untouched pages are the file's.)
    anonymous: bool,
}

// SAFETY: a `Mapping` owns its address range like a `Box<[u8]>` does, and nothing about it is
// tied to the thread that made it: it may be used, and unmapped on drop, from any thread.
unsafe impl Send for Mapping {}
// What `Sync` does not promise here: that concurrent copies are free of races. Two threads copying
// into the same bytes at once, or one copying in while another copies out, race exactly as the
// guest's vCPUs racing on that memory do, and as vm-memory's copies do: the bytes seen may mix
// both writes (at byte granularity for `read`/`write`, word granularity for the word copies).
// These are racing non-atomic accesses in Rust's memory model; they are tolerated here, as in
// vm-memory, because the bytes are only ever copied out as integers (any value is valid) and
// the range is memory the guest writes behind Rust's back anyway. rawkvm's own host writes to
// guest memory (loading the image, a restart's restore) happen while no vCPU runs, from one
// thread; callers that want consistent contents must order their copies the same way.
//
// SAFETY: a `Mapping` owns its range, and `&Mapping` only allows reading `ptr`/`len` and
// volatile copies bounded by `len` (checked at each copy); no Rust reference into the range is
// ever handed out, so sharing it aliases no `&`/`&mut`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Reserves `len` bytes of zeroed, private, anonymous memory for guest RAM.
    ///
    /// `MAP_NORESERVE`: a real-mode guest touches a few pages of whatever it is given, so
    /// only the touched pages should count against the host's memory.
    pub fn anonymous(len: usize) -> Result<Mapping, Errno> {
        // Miri models only MAP_PRIVATE|MAP_ANONYMOUS; without NORESERVE the memory is the same.
        let noreserve = if cfg!(miri) { 0 } else { libc::MAP_NORESERVE };
        let flags = libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | noreserve;
        // Set in place: `Mapping { anonymous: true, ..mapping }` would copy the pointer out
        // and then drop (unmap) `mapping`.
        let mut mapping = Self::map(len, flags, -1)?;
        mapping.anonymous = true;
        Ok(mapping)
    }

    /// Maps `len` bytes of the file `fd` (a memfd holding a snapshot's RAM) from offset 0,
    /// private and read/write: copy-on-write, so every mapping of the same file starts with its
    /// contents and shares its pages until it writes them; writes never reach the file.
    ///
    /// ```text
    /// mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_NORESERVE, memfd, 0)
    /// ```
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // fork is x86-only
    pub(crate) fn private_file(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping, Errno> {
        let noreserve = if cfg!(miri) { 0 } else { libc::MAP_NORESERVE };
        Self::map(len, libc::MAP_PRIVATE | noreserve, fd.as_raw_fd())
    }

    /// Whether this is private anonymous memory, whose untouched pages read as zeros.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // snapshots are x86-only
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Maps `len` bytes of `fd` from offset 0, shared and read/write: the `kvm_run` region of
    /// a vCPU fd. `MAP_PRIVATE` would be accepted by the kernel but is a trap: writes to
    /// `immediate_exit` would land in a private copy the kernel never sees (`docs/BACKEND.md`,
    /// "The kvm_run mapping").
    pub(crate) fn shared_fd(fd: BorrowedFd<'_>, len: usize) -> Result<Mapping, Errno> {
        Self::map(len, libc::MAP_SHARED, fd.as_raw_fd())
    }

    fn map(len: usize, flags: libc::c_int, fd: libc::c_int) -> Result<Mapping, Errno> {
        if len == 0 {
            // mmap(0) is EINVAL anyway; say so before asking.
            return Err(Errno::EINVAL);
        }
        let prot = libc::PROT_READ | libc::PROT_WRITE;
        // SAFETY: asking for a fresh mapping at an address of the kernel's choosing (NULL hint,
        // no MAP_FIXED) cannot disturb any existing memory; the result is checked below.
        let addr = unsafe { libc::mmap(ptr::null_mut(), len, prot, flags, fd, 0) };
        if addr == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let ptr = NonNull::new(addr.cast::<u8>()).ok_or(Errno::ENOMEM)?;
        Ok(Mapping {
            ptr,
            len,
            anonymous: false,
        })
    }

    /// Size of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Address of the first byte (for handing to the kernel, never to dereference directly).
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Address of the first byte, non-null.
    pub(crate) fn base(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Checks that `offset..offset + len` lies inside the mapping, with checked arithmetic.
    pub fn check_range(&self, offset: usize, len: usize) -> Result<(), OutOfBounds> {
        match offset.checked_add(len) {
            Some(end) if end <= self.len => Ok(()),
            _ => Err(OutOfBounds {
                offset,
                len,
                mapping_len: self.len,
            }),
        }
    }

    /// Copies `buf.len()` bytes starting at `offset` out of the mapping.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), OutOfBounds> {
        self.check_range(offset, buf.len())?;
        let src = self.ptr.as_ptr().wrapping_add(offset);
        for (i, byte) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + buf.len() <= self.len` was checked just above, so
            // `src + i` is inside the live mapping this `Mapping` owns.
            *byte = unsafe { ptr::read_volatile(src.wrapping_add(i)) };
        }
        Ok(())
    }

    /// Copies `data` into the mapping starting at `offset`.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), OutOfBounds> {
        self.check_range(offset, data.len())?;
        let dst = self.ptr.as_ptr().wrapping_add(offset);
        for (i, &byte) in data.iter().enumerate() {
            // SAFETY: `offset + data.len() <= self.len` was checked just above, so `dst + i`
            // is inside the live, writable mapping this `Mapping` owns.
            unsafe { ptr::write_volatile(dst.wrapping_add(i), byte) };
        }
        Ok(())
    }

    /// Checks that `offset` is 8-byte aligned and that `words` 64-bit words from it lie inside
    /// the mapping; returns the byte length.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // restart (in place) is x86-only so far
    fn check_words(&self, offset: usize, words: usize) -> Result<usize, OutOfBounds> {
        let out_of_bounds = OutOfBounds {
            offset,
            len: words.saturating_mul(size_of::<u64>()),
            mapping_len: self.len,
        };
        let len = words.checked_mul(size_of::<u64>()).ok_or(out_of_bounds)?;
        if offset % align_of::<u64>() != 0 {
            return Err(out_of_bounds);
        }
        self.check_range(offset, len).map(|()| len)
    }

    /// Copies `buf.len()` 64-bit words starting at `offset` (a multiple of 8) out of the
    /// mapping: a page in 512 volatile loads instead of 4096.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // restart (in place) is x86-only so far
    pub fn read_words(&self, offset: usize, buf: &mut [u64]) -> Result<(), OutOfBounds> {
        self.check_words(offset, buf.len())?;
        let src = self.ptr.as_ptr().wrapping_add(offset).cast::<u64>();
        for (i, word) in buf.iter_mut().enumerate() {
            // SAFETY: `offset + 8 * buf.len() <= self.len` and `offset % 8 == 0` were checked
            // just above, and the mapping is page-aligned, so `src + i` is an aligned `u64`
            // inside the live mapping. Any bits are a valid `u64`.
            *word = unsafe { ptr::read_volatile(src.wrapping_add(i)) };
        }
        Ok(())
    }

    /// Appends `count` 64-bit words starting at `offset` (a multiple of 8) to `out`, read
    /// straight into its spare capacity: one pass over guest memory, no zeroing of the
    /// destination first.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // snapshots are x86-only
    pub fn append_words(
        &self,
        offset: usize,
        count: usize,
        out: &mut Vec<u64>,
    ) -> Result<(), OutOfBounds> {
        self.check_words(offset, count)?;
        out.reserve_exact(count);
        let src = self.ptr.as_ptr().wrapping_add(offset).cast::<u64>();
        let spare = &mut out.spare_capacity_mut()[..count];
        for (i, word) in spare.iter_mut().enumerate() {
            // SAFETY: `offset + 8 * count <= self.len` and `offset % 8 == 0` were checked
            // just above, and the mapping is page-aligned, so `src + i` is an aligned `u64`
            // inside the live mapping. Any bits are a valid `u64`.
            word.write(unsafe { ptr::read_volatile(src.wrapping_add(i)) });
        }
        let len = out.len() + count;
        // SAFETY: the `count` words after the old length were each written just above, into
        // spare capacity `reserve_exact` made and that `&mut out` gives exclusive access to;
        // so all `len` elements are initialised and within the capacity.
        unsafe { out.set_len(len) };
        Ok(())
    }

    /// Whether the `words` 64-bit words starting at `offset` (a multiple of 8) are all zero,
    /// read in place (stopping at the first that is not), without copying them anywhere.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // snapshots are x86-only
    pub fn words_are_zero(&self, offset: usize, words: usize) -> Result<bool, OutOfBounds> {
        self.check_words(offset, words)?;
        let src = self.ptr.as_ptr().wrapping_add(offset).cast::<u64>();
        // SAFETY: `offset + 8 * words <= self.len` and `offset % 8 == 0` were checked just
        // above, and the mapping is page-aligned, so every `src + i` is an aligned `u64`
        // inside the live mapping. Any bits are a valid `u64`.
        Ok((0..words).all(|i| unsafe { ptr::read_volatile(src.wrapping_add(i)) } == 0))
    }

    /// Whether the `expected.len()` 64-bit words starting at `offset` (a multiple of 8) equal
    /// `expected`, read in place (stopping at the first that does not), without copying them.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // snapshots are x86-only
    pub fn words_equal(&self, offset: usize, expected: &[u64]) -> Result<bool, OutOfBounds> {
        self.check_words(offset, expected.len())?;
        let src = self.ptr.as_ptr().wrapping_add(offset).cast::<u64>();
        Ok(expected.iter().enumerate().all(|(i, &word)| {
            // SAFETY: `offset + 8 * expected.len() <= self.len` and `offset % 8 == 0` were
            // checked just above, and the mapping is page-aligned, so every `src + i` is an
            // aligned `u64` inside the live mapping. Any bits are a valid `u64`.
            let got = unsafe { ptr::read_volatile(src.wrapping_add(i)) };
            got == word
        }))
    }

    /// Copies `words` into the mapping starting at `offset` (a multiple of 8).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // restart (in place) is x86-only so far
    pub fn write_words(&self, offset: usize, words: &[u64]) -> Result<(), OutOfBounds> {
        self.check_words(offset, words.len())?;
        let dst = self.ptr.as_ptr().wrapping_add(offset).cast::<u64>();
        for (i, &word) in words.iter().enumerate() {
            // SAFETY: `offset + 8 * words.len() <= self.len` and `offset % 8 == 0` were checked
            // just above, and the mapping is page-aligned, so `dst + i` is an aligned `u64`
            // inside the live, writable mapping this `Mapping` owns.
            unsafe { ptr::write_volatile(dst.wrapping_add(i), word) };
        }
        Ok(())
    }

    /// Sets `len` bytes starting at `offset` to `byte`.
    pub fn fill(&self, offset: usize, len: usize, byte: u8) -> Result<(), OutOfBounds> {
        self.check_range(offset, len)?;
        let dst = self.ptr.as_ptr().wrapping_add(offset);
        for i in 0..len {
            // SAFETY: `offset + len <= self.len` was checked just above.
            unsafe { ptr::write_volatile(dst.wrapping_add(i), byte) };
        }
        Ok(())
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr..ptr + len` is a mapping this value created and still owns; nothing
        // else refers to it (every holder shares this value through an `Arc`, and this is the
        // last one). munmap only fails for invalid arguments, which these are not.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// A byte buffer that ends exactly where a `PROT_NONE` page begins, so reading or writing one
/// byte past its end faults at once instead of silently touching other memory: the oracle for
/// tests and fuzzing of code that parses pages the kernel writes (`docs/TEST-PLAN.md`, "OOB
/// oracle").
///
/// ```text
/// mmap(NULL, pages + 1 page, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
/// mprotect(last page, PROT_NONE)
/// buffer = [last page - len, last page)
/// ```
///
/// A `len` that is a multiple of 8 gives an 8-byte-aligned buffer.
///
/// Under Miri, which cannot `mprotect` but checks every access against its allocation, there
/// is no guard page: the buffer ends exactly where the allocation does (Miri's `mmap` rounds
/// the length up to a page, so the buffer sits at the end of the rounded pages, as above), and
/// one byte past it is out of the allocation: the same oracle.
#[cfg(any(test, feature = "fuzzing"))]
#[derive(Debug)]
pub struct GuardedBuffer {
    mapping: Mapping,
    start: usize,
    len: usize,
}

#[cfg(any(test, feature = "fuzzing"))]
impl GuardedBuffer {
    /// A zeroed buffer of `len` bytes (at least 1) followed by a guard page.
    pub fn new(len: usize) -> Result<GuardedBuffer, Errno> {
        let page = page_size();
        let data_pages = len.checked_next_multiple_of(page).ok_or(Errno::ENOMEM)?;
        let guard_pages = if cfg!(miri) { 0 } else { page };
        let total = data_pages.checked_add(guard_pages).ok_or(Errno::ENOMEM)?;
        let mapping = Mapping::anonymous(total)?;
        #[cfg(not(miri))]
        {
            let guard = mapping.as_ptr().wrapping_add(data_pages);
            // SAFETY: `guard..guard + page` is the last page of a mapping this function just
            // made and still owns exclusively (`data_pages` is a multiple of the page size, so
            // it is page-aligned); nothing refers into it, so revoking access is sound.
            Errno::result(unsafe { libc::mprotect(guard.cast(), page, libc::PROT_NONE) })?;
        }
        Ok(GuardedBuffer {
            mapping,
            start: data_pages - len,
            len,
        })
    }

    /// The buffer.
    pub fn bytes(&mut self) -> &mut [u8] {
        let start = self.mapping.as_ptr().wrapping_add(self.start);
        // `start + len` is exactly the guard page (under Miri, the allocation's end).
        // SAFETY: `start..start + len` lies in the mapping's read/write pages, as `new` checked;
        // this value owns the mapping and `&mut self` makes the slice its only access.
        unsafe { std::slice::from_raw_parts_mut(start, self.len) }
    }
}

/// The host's page size (`sysconf(_SC_PAGESIZE)`, read once): 4 KiB on x86, 4, 16 or 64 KiB on
/// arm64, usually 64 KiB on ppc64le. Memory slots and the vCPU mapping's pages are multiples of
/// it; 4096 if the C library cannot say.
pub(crate) fn page_size() -> usize {
    static PAGE_SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        let size = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE);
        size.ok()
            .flatten()
            .and_then(|size| usize::try_from(size).ok())
            .filter(|size| size.is_power_of_two())
            .unwrap_or(4096)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guarded_buffer_is_zeroed_writable_and_aligned() {
        for len in [1, 8, 4096, 3 * 4096, 3 * 4096 + 8] {
            let mut buffer = GuardedBuffer::new(len).unwrap();
            let bytes = buffer.bytes();
            assert_eq!(bytes.len(), len);
            assert!(bytes.iter().all(|&b| b == 0));
            bytes[len - 1] = 0xAB;
            if len % 8 == 0 {
                assert_eq!(bytes.as_ptr().align_offset(8), 0);
            }
            // What mmap really reserved is whole pages (Miri rounds up too), and the buffer
            // ends where access ends: at the guard page, or under Miri at the allocation's end.
            let page = page_size();
            let guard = if cfg!(miri) { 0 } else { page };
            assert_eq!(buffer.mapping.len() % page, 0, "{len}");
            assert_eq!(buffer.start + len, buffer.mapping.len() - guard, "{len}");
        }
    }

    #[test]
    fn mapping_copies_are_bounds_checked() {
        let mapping = Mapping::anonymous(4096).unwrap();
        mapping.write(4090, b"abcdef").unwrap();
        let mut out = [0; 6];
        mapping.read(4090, &mut out).unwrap();
        assert_eq!(&out, b"abcdef");
        let past = OutOfBounds {
            offset: 4091,
            len: 6,
            mapping_len: 4096,
        };
        assert_eq!(mapping.write(4091, b"abcdef"), Err(past));
        assert!(
            mapping.read(usize::MAX, &mut out).is_err(),
            "offset + len overflows"
        );
        assert!(mapping.fill(0, 4097, 0).is_err());

        let words = [0x1122_3344_5566_7788, u64::MAX];
        mapping.write_words(4080, &words).unwrap();
        let mut back = [0; 2];
        mapping.read_words(4080, &mut back).unwrap();
        assert_eq!(back, words);
        let mut bytes = [0; 8];
        mapping.read(4080, &mut bytes).unwrap();
        assert_eq!(u64::from_ne_bytes(bytes), words[0]);
        assert!(mapping.write_words(4084, &[0]).is_err(), "misaligned");
        assert!(
            mapping.write_words(4088, &words).is_err(),
            "one word past the end"
        );
        assert!(
            mapping.read_words(8, &mut [0; 512]).is_err(),
            "ends past the mapping"
        );
        assert!(
            mapping.read_words(0, &mut [0; 512]).is_ok(),
            "exactly the page"
        );
        assert_eq!(Mapping::anonymous(0).unwrap_err(), Errno::EINVAL);
    }

    #[test]
    fn words_are_checked_for_zero_and_appended_in_place() {
        let mapping = Mapping::anonymous(2 * 4096).unwrap();
        assert_eq!(mapping.words_are_zero(0, 1024), Ok(true));
        mapping.write_words(8184, &[7]).unwrap();
        assert_eq!(
            mapping.words_are_zero(0, 1023),
            Ok(true),
            "stops before the word"
        );
        assert_eq!(mapping.words_are_zero(0, 1024), Ok(false));
        assert!(
            mapping.words_are_zero(8, 1024).is_err(),
            "ends past the mapping"
        );
        assert!(mapping.words_are_zero(4, 1).is_err(), "misaligned");
        assert_eq!(mapping.words_equal(8176, &[0, 7]), Ok(true));
        assert_eq!(
            mapping.words_equal(8176, &[0, 8]),
            Ok(false),
            "the last word"
        );
        assert!(
            mapping.words_equal(8184, &[7, 0]).is_err(),
            "ends past the mapping"
        );
        assert!(mapping.words_equal(4, &[0]).is_err(), "misaligned");

        let mut out = vec![1, 2];
        mapping.append_words(8168, 3, &mut out).unwrap();
        assert_eq!(out, [1, 2, 0, 0, 7]);
        assert!(mapping.append_words(8184, 2, &mut out).is_err());
        assert_eq!(out.len(), 5, "nothing appended on a refusal");
        mapping.append_words(0, 0, &mut out).unwrap();
        assert_eq!(out.len(), 5);
    }
}
