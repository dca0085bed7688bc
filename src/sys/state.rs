//! Machine-state ioctls (x86) and the byte view of plain ABI structs, for snapshots.
//!
//! ```text
//! ioctl(vcpu, KVM_GET_XSAVE | KVM_GET_XCRS | KVM_GET_LAPIC | KVM_GET_DEBUGREGS | KVM_GET_MP_STATE, &s)
//! ioctl(vcpu, KVM_SET_XSAVE | KVM_SET_XCRS | KVM_SET_LAPIC | KVM_SET_DEBUGREGS | KVM_SET_MP_STATE, &s)
//! ioctl(vm,   KVM_GET_IRQCHIP, &{ chip_id, ... })   the kernel reads chip_id, then writes the rest
//! ioctl(vm,   KVM_SET_IRQCHIP | KVM_GET/SET_PIT2 | KVM_GET/SET_CLOCK, &s)
//! ```
//!
//! [`PlainData`] marks the ABI structs whose every byte belongs to an integer field (no
//! implicit padding, checked at compile time from the struct's layout table), so a snapshot
//! can store a struct as its bytes and read it back from bytes without a field-by-field
//! encoder; [`as_bytes`] and [`from_bytes`] are the two views.
//!
//! This file holds `unsafe`: the byte view, and the `ioctl` for the one argument kind the
//! shared table lacks (`_IOWR`, the kernel reading and then writing the struct).
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::os::fd::{AsRawFd, BorrowedFd};

use libc::c_int;
use nix::errno::Errno;
use nix::sys::ioctl::ioctl_num_type;
use rawkvm_bindings::{self as abi, StructLayout, Zeroed};

use super::ioctl::{ArgKind, Ioctl, Reads, Writes, check, encoded_size};

/// A `#[repr(C)]` ABI struct made only of integers (and arrays and structs of them) that tile
/// it without holes: every bit pattern of its bytes is a valid value and every byte of a value
/// is initialised.
///
/// # Safety
///
/// Implement only through [`plain_data!`], which checks at compile time that the top-level
/// fields of `LAYOUT` (computed by `offset_of!`/`size_of`) cover the struct end to end; the
/// implementor must also hold integer fields only (every `abi!` struct named below does).
pub(crate) unsafe trait PlainData: Copy + Zeroed {
    /// The struct's layout (its `LAYOUT`), for naming fields in comparisons.
    const LAYOUT: StructLayout;
}

/// Whether the top-level fields of `layout` (designators without a `.`) follow one another
/// with no gap from offset 0 to `size`.
const fn fields_tile(layout: &StructLayout) -> bool {
    let mut end = 0;
    let mut i = 0;
    while i < layout.fields.len() {
        let field = layout.fields[i];
        if !has_dot(field.name.as_bytes()) {
            if field.offset != end {
                return false;
            }
            end += field.size;
        }
        i += 1;
    }
    end == layout.size
}

const fn has_dot(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        if name[i] == b'.' {
            return true;
        }
        i += 1;
    }
    false
}

macro_rules! plain_data {
    ($($ty:ident),* $(,)?) => {$(
        const _: () = assert!(
            fields_tile(&abi::$ty::LAYOUT),
            concat!(stringify!($ty), " has bytes that belong to no field")
        );
        // SAFETY: that the fields tile the struct (no padding byte can be uninitialised) is
        // checked by the assertion above, at compile time; and every field of this `abi!` struct is an integer or an array
        // or struct of integers, for which any bytes are a valid value.
        unsafe impl PlainData for abi::$ty {
            const LAYOUT: StructLayout = abi::$ty::LAYOUT;
        }
    )*};
}

plain_data!(
    kvm_regs,
    kvm_sregs,
    kvm_vcpu_events,
    kvm_mp_state,
    kvm_xsave,
    kvm_xcrs,
    kvm_lapic_state,
    kvm_debugregs,
    kvm_irqchip,
    kvm_pic_state,
    kvm_ioapic_state,
    kvm_pit_state2,
    kvm_clock_data,
    kvm_msr_entry,
    kvm_cpuid_entry2,
);

/// The bytes of `value`, in memory order.
pub(crate) fn as_bytes<T: PlainData>(value: &T) -> &[u8] {
    let ptr: *const T = value;
    // SAFETY: `value` is a live reference to `size_of::<T>()` bytes, all initialised (no
    // padding: `PlainData`, checked at compile time by `plain_data!`), borrowed for the
    // lifetime of the slice; `u8` has alignment 1.
    unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), size_of::<T>()) }
}

/// A `T` made from exactly `size_of::<T>()` bytes, or `None` if `bytes` is another length.
pub(crate) fn from_bytes<T: PlainData>(bytes: &[u8]) -> Option<T> {
    if bytes.len() != size_of::<T>() {
        return None;
    }
    let mut value = T::ZERO;
    let ptr: *mut T = &mut value;
    // SAFETY: `ptr` is an exclusive, aligned `T` of `size_of::<T>()` bytes, `bytes` has that
    // many (checked above) and does not overlap a local, and any bytes are a valid `T`
    // (`PlainData`).
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr.cast::<u8>(), bytes.len()) };
    Some(value)
}

/// The bytes of `words` in memory order (little-endian on x86, where this file is built).
pub(crate) fn words_as_bytes(words: &[u64]) -> &[u8] {
    // SAFETY: `words` is a live slice of `len * 8` initialised bytes (every bit pattern of a
    // `u64` is initialised), borrowed for the slice's lifetime; `u8` has alignment 1. The
    // length cannot overflow: the slice already occupies that many bytes (checked by Rust).
    unsafe { std::slice::from_raw_parts(words.as_ptr().cast::<u8>(), size_of_val(words)) }
}

/// `bytes` (a multiple of 8 long; the rest is dropped) as 64-bit words in memory order: one
/// copy into a vector of exactly that size, which is not zeroed first.
pub(crate) fn words_from_bytes(bytes: &[u8]) -> Vec<u64> {
    let count = bytes.len() / size_of::<u64>();
    let mut words = Vec::<u64>::with_capacity(count);
    let len = count * size_of::<u64>();
    // SAFETY: `words` owns room for `count` words, `len` writable bytes (`with_capacity`), and
    // `bytes` has at least `len` (its length was divided down above, a bound checked by the
    // arithmetic); the two do not overlap (`words` is a fresh allocation).
    unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), words.as_mut_ptr().cast::<u8>(), len) };
    // SAFETY: the copy just above initialised all `count` words within the capacity `words`
    // owns, and any bytes are valid `u64`s.
    unsafe { words.set_len(count) };
    words
}

/// `ioctl(fd, req, &mut arg)` where the kernel reads `*arg` and then writes it (`_IOWR`).
pub(crate) struct Updates<T>(PhantomData<T>);
impl<T> ArgKind for Updates<T> {}

const fn updates<T>(name: &'static str, request: ioctl_num_type) -> Ioctl<Updates<T>> {
    assert!(
        encoded_size(request) == size_of::<T>(),
        "request size differs from the struct"
    );
    Ioctl::entry(name, request)
}

impl<T: PlainData> Ioctl<Updates<T>> {
    /// `ioctl(fd, request, &mut arg)`: the kernel copies `size_of::<T>()` bytes in, then out.
    pub(crate) fn call(&self, fd: BorrowedFd<'_>, arg: &mut T) -> Result<c_int, Errno> {
        let ptr: *mut T = arg;
        // SAFETY: the request's size field equals `size_of::<T>()` (checked in `updates`); the
        // kernel reads and writes at most that many bytes of `arg`, a live exclusive reference,
        // and any bytes are a valid `T` (`PlainData`).
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request(), ptr) })
    }
}

/// The state ioctls of a VM fd.
pub(crate) mod vm {
    use super::*;
    /// `KVM_GET_IRQCHIP`: `chip_id` in, that controller's state out.
    pub(crate) const GET_IRQCHIP: Ioctl<Updates<abi::kvm_irqchip>> =
        updates("KVM_GET_IRQCHIP", abi::KVM_GET_IRQCHIP);
    /// `KVM_SET_IRQCHIP` (encoded `_IOR`, read by the kernel).
    pub(crate) const SET_IRQCHIP: Ioctl<Reads<abi::kvm_irqchip>> =
        Ioctl::reads("KVM_SET_IRQCHIP", abi::KVM_SET_IRQCHIP);
    /// `KVM_GET_PIT2`.
    pub(crate) const GET_PIT2: Ioctl<Writes<abi::kvm_pit_state2>> =
        Ioctl::writes("KVM_GET_PIT2", abi::KVM_GET_PIT2);
    /// `KVM_SET_PIT2`.
    pub(crate) const SET_PIT2: Ioctl<Reads<abi::kvm_pit_state2>> =
        Ioctl::reads("KVM_SET_PIT2", abi::KVM_SET_PIT2);
    /// `KVM_GET_CLOCK`.
    pub(crate) const GET_CLOCK: Ioctl<Writes<abi::kvm_clock_data>> =
        Ioctl::writes("KVM_GET_CLOCK", abi::KVM_GET_CLOCK);
    /// `KVM_SET_CLOCK`.
    pub(crate) const SET_CLOCK: Ioctl<Reads<abi::kvm_clock_data>> =
        Ioctl::reads("KVM_SET_CLOCK", abi::KVM_SET_CLOCK);
}

/// The state ioctls of a vCPU fd.
pub(crate) mod vcpu {
    use super::*;
    /// `KVM_GET_XSAVE`: the first 4096 bytes of the XSAVE area.
    pub(crate) const GET_XSAVE: Ioctl<Writes<abi::kvm_xsave>> =
        Ioctl::writes("KVM_GET_XSAVE", abi::KVM_GET_XSAVE);
    /// `KVM_SET_XSAVE`.
    pub(crate) const SET_XSAVE: Ioctl<Reads<abi::kvm_xsave>> =
        Ioctl::reads("KVM_SET_XSAVE", abi::KVM_SET_XSAVE);
    /// `KVM_GET_XCRS`.
    pub(crate) const GET_XCRS: Ioctl<Writes<abi::kvm_xcrs>> =
        Ioctl::writes("KVM_GET_XCRS", abi::KVM_GET_XCRS);
    /// `KVM_SET_XCRS`.
    pub(crate) const SET_XCRS: Ioctl<Reads<abi::kvm_xcrs>> =
        Ioctl::reads("KVM_SET_XCRS", abi::KVM_SET_XCRS);
    /// `KVM_GET_LAPIC` (`ENXIO` without an in-kernel irqchip).
    pub(crate) const GET_LAPIC: Ioctl<Writes<abi::kvm_lapic_state>> =
        Ioctl::writes("KVM_GET_LAPIC", abi::KVM_GET_LAPIC);
    /// `KVM_SET_LAPIC`.
    pub(crate) const SET_LAPIC: Ioctl<Reads<abi::kvm_lapic_state>> =
        Ioctl::reads("KVM_SET_LAPIC", abi::KVM_SET_LAPIC);
    /// `KVM_GET_DEBUGREGS`.
    pub(crate) const GET_DEBUGREGS: Ioctl<Writes<abi::kvm_debugregs>> =
        Ioctl::writes("KVM_GET_DEBUGREGS", abi::KVM_GET_DEBUGREGS);
    /// `KVM_SET_DEBUGREGS`.
    pub(crate) const SET_DEBUGREGS: Ioctl<Reads<abi::kvm_debugregs>> =
        Ioctl::reads("KVM_SET_DEBUGREGS", abi::KVM_SET_DEBUGREGS);
    /// `KVM_GET_MP_STATE`.
    pub(crate) const GET_MP_STATE: Ioctl<Writes<abi::kvm_mp_state>> =
        Ioctl::writes("KVM_GET_MP_STATE", abi::KVM_GET_MP_STATE);
    /// `KVM_SET_MP_STATE`.
    pub(crate) const SET_MP_STATE: Ioctl<Reads<abi::kvm_mp_state>> =
        Ioctl::reads("KVM_SET_MP_STATE", abi::KVM_SET_MP_STATE);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_other_lengths_are_refused() {
        let regs = abi::kvm_regs {
            rip: 0x1234,
            rflags: 2,
            ..Default::default()
        };
        let bytes = as_bytes(&regs);
        assert_eq!(bytes.len(), 144);
        assert_eq!(&bytes[128..130], &[0x34, 0x12]);
        assert_eq!(from_bytes::<abi::kvm_regs>(bytes), Some(regs));
        assert_eq!(from_bytes::<abi::kvm_regs>(&bytes[1..]), None);
        let words = [0x0102_0304_0506_0708u64, u64::MAX];
        assert_eq!(words_as_bytes(&words)[..2], [8, 7]);
        assert_eq!(words_from_bytes(words_as_bytes(&words)), words);
        assert_eq!(words_from_bytes(&[1, 0, 0, 0, 0, 0, 0, 0, 9]), [1]);
    }

    #[test]
    fn nested_members_count_once_and_a_short_layout_does_not_tile() {
        assert!(fields_tile(&abi::kvm_vcpu_events::LAYOUT));
        let short = StructLayout {
            size: abi::kvm_regs::LAYOUT.size + 8,
            ..abi::kvm_regs::LAYOUT
        };
        assert!(!fields_tile(&short));
    }
}
