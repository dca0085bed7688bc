//! Decoding `kvm_run` into an [`Exit`], in place.
//!
//! After `ioctl(vcpu, KVM_RUN, 0)` returns 0, `kvm_run.exit_reason` says why, and the member of
//! the exit union that goes with it says the rest (api.rst, "The kvm_run structure"). [`decode`]
//! reads those fields straight from the mapped page and hands out views that borrow it: an
//! `out` instruction's bytes are a slice of the PIO data page, an MMIO read is answered by
//! writing into `kvm_run.mmio.data`. Nothing is allocated or copied.
//!
//! The decoder is total: whatever bytes the page holds, it returns an [`Exit`] or a
//! [`DecodeError`] naming the field that was out of range. The kernel is trusted to be correct
//! but not to keep rawkvm memory-safe, so every value that sizes or locates data is checked:
//!
//! * IO: `direction` in {IN, OUT}, `size` in {1, 2, 4}, `count >= 1`, and
//!   `data_offset + size * count` inside the mapping (checked arithmetic).
//! * MMIO: `len` in 1..=8, and only `data[..len]` is exposed (the bytes after it are stale).
//! * `internal.ndata` and `system_event.ndata` at most 16.
//! * Reasons no kernel header defines decode as [`Exit::Unknown`]: the running kernel may be
//!   newer than anything rawkvm was written against.

use std::fmt;

use memoffset::offset_of;
use rawkvm_bindings as abi;
use rawkvm_bindings::kvm_run;

use crate::sys::run_page::{Field, RunPage};

/// Where the exit union starts in `struct kvm_run`.
const EXIT: usize = offset_of!(kvm_run, exit);

/// The fields the decoder reads, with their offsets in `struct kvm_run`.
pub mod fields {
    use super::*;

    /// `kvm_run.exit_reason`.
    pub const EXIT_REASON: Field<u32> = Field::at(offset_of!(kvm_run, exit_reason));
    /// `kvm_run.io.direction`.
    pub const IO_DIRECTION: Field<u8> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_io, direction));
    /// `kvm_run.io.size`.
    pub const IO_SIZE: Field<u8> = Field::at(EXIT + offset_of!(abi::kvm_run_exit_io, size));
    /// `kvm_run.io.port`.
    pub const IO_PORT: Field<u16> = Field::at(EXIT + offset_of!(abi::kvm_run_exit_io, port));
    /// `kvm_run.io.count`.
    pub const IO_COUNT: Field<u32> = Field::at(EXIT + offset_of!(abi::kvm_run_exit_io, count));
    /// `kvm_run.io.data_offset`.
    pub const IO_DATA_OFFSET: Field<u64> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_io, data_offset));
    /// `kvm_run.mmio.phys_addr`.
    pub const MMIO_PHYS_ADDR: Field<u64> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_mmio, phys_addr));
    /// `kvm_run.mmio.data` (offset of its first byte).
    pub const MMIO_DATA: usize = EXIT + offset_of!(abi::kvm_run_exit_mmio, data);
    /// `kvm_run.mmio.len`.
    pub const MMIO_LEN: Field<u32> = Field::at(EXIT + offset_of!(abi::kvm_run_exit_mmio, len));
    /// `kvm_run.mmio.is_write`.
    pub const MMIO_IS_WRITE: Field<u8> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_mmio, is_write));
    /// `kvm_run.hw.hardware_exit_reason`.
    pub const HW_EXIT_REASON: Field<u64> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_hw, hardware_exit_reason));
    /// `kvm_run.fail_entry.hardware_entry_failure_reason`.
    pub const FAIL_ENTRY_REASON: Field<u64> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_fail_entry, hardware_entry_failure_reason));
    /// `kvm_run.fail_entry.cpu`.
    pub const FAIL_ENTRY_CPU: Field<u32> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_fail_entry, cpu));
    /// `kvm_run.internal.suberror`.
    pub const INTERNAL_SUBERROR: Field<u32> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_internal, suberror));
    /// `kvm_run.internal.ndata`.
    pub const INTERNAL_NDATA: Field<u32> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_internal, ndata));
    /// `kvm_run.internal.data` (offset of the first word).
    pub const INTERNAL_DATA: usize = EXIT + offset_of!(abi::kvm_run_exit_internal, data);
    /// `kvm_run.system_event.type`.
    pub const SYSTEM_EVENT_TYPE: Field<u32> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_system_event, type_));
    /// `kvm_run.system_event.ndata`.
    pub const SYSTEM_EVENT_NDATA: Field<u32> =
        Field::at(EXIT + offset_of!(abi::kvm_run_exit_system_event, ndata));
    /// `kvm_run.system_event.data` (offset of the first word).
    pub const SYSTEM_EVENT_DATA: usize = EXIT + offset_of!(abi::kvm_run_exit_system_event, u);
}

/// The most data words `internal` and `system_event` can carry (`__u64 data[16]`).
pub const MAX_NDATA: u32 = 16;

/// Which way an IO exit moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDirection {
    /// `KVM_EXIT_IO_IN`: the guest reads; rawkvm fills `data`.
    In,
    /// `KVM_EXIT_IO_OUT`: the guest wrote `data`.
    Out,
}

/// `KVM_EXIT_IO`: the guest executed `in`/`out` (or `ins`/`outs`, possibly with `rep`).
#[derive(Debug)]
pub struct Io<'a> {
    /// In or out.
    pub direction: IoDirection,
    /// The I/O port of the first access.
    pub port: u16,
    /// Bytes per access: 1, 2 or 4.
    pub size: u8,
    /// Number of accesses, at least 1 (`rep ins`/`outs` batches them).
    pub count: u32,
    /// `count` elements of `size` bytes each, in the PIO data page. For OUT the guest's bytes;
    /// for IN the bytes to fill, which the guest sees when it next runs.
    pub data: &'a mut [u8],
}

impl Io<'_> {
    /// The accesses one by one: `count` slices of `size` bytes, all at `port`.
    pub fn elements(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        self.data.chunks_exact_mut(usize::from(self.size))
    }
}

/// `KVM_EXIT_MMIO`: the guest touched a physical address no memory slot backs (or wrote to a
/// read-only slot).
#[derive(Debug)]
pub struct Mmio<'a> {
    /// Guest physical address of the access.
    pub phys_addr: u64,
    /// True for a write, false for a read.
    pub is_write: bool,
    /// `kvm_run.mmio.data[..len]`, `len` in 1..=8: the value written, or the bytes to answer a
    /// read with. The bytes after `len` are stale and never exposed.
    pub data: &'a mut [u8],
}

impl Mmio<'_> {
    /// The data as a little-endian integer, zero-extended.
    pub fn value(&self) -> u64 {
        let mut bytes = [0u8; 8];
        bytes[..self.data.len()].copy_from_slice(self.data);
        u64::from_le_bytes(bytes)
    }
}

/// Why `KVM_RUN` returned, decoded from the `kvm_run` page.
#[derive(Debug)]
#[non_exhaustive]
pub enum Exit<'a> {
    /// `KVM_EXIT_UNKNOWN` (0): the hardware exited for a reason KVM does not handle.
    HardwareUnknown {
        /// The hardware's own exit reason (VMX basic exit reason or SVM exit code).
        hardware_exit_reason: u64,
    },
    /// `KVM_EXIT_IO` (2): port I/O.
    Io(Io<'a>),
    /// `KVM_EXIT_HLT` (5): the guest executed `hlt` (no in-kernel interrupt controller).
    Hlt,
    /// `KVM_EXIT_MMIO` (6): memory-mapped I/O.
    Mmio(Mmio<'a>),
    /// `KVM_EXIT_SHUTDOWN` (8): the guest triple-faulted.
    Shutdown,
    /// `KVM_EXIT_FAIL_ENTRY` (9): the hardware refused to enter the guest.
    FailEntry {
        /// VMX: the VM-entry failure exit reason (e.g. `0x80000021`, invalid guest state).
        hardware_entry_failure_reason: u64,
        /// The host CPU the entry was attempted on.
        cpu: u32,
    },
    /// `KVM_EXIT_INTR` (10): a signal interrupted the guest.
    Intr,
    /// `KVM_EXIT_INTERNAL_ERROR` (17): KVM could not go on, e.g. it failed to emulate.
    InternalError {
        /// `KVM_INTERNAL_ERROR_*`: 1 emulation, 2 simultaneous exceptions, 3 delivery, ...
        suberror: u32,
        /// `internal.data[..ndata]`.
        data: &'a [u64],
    },
    /// `KVM_EXIT_SYSTEM_EVENT` (24): the guest asked for a shutdown, reset, crash report, ...
    SystemEvent {
        /// `KVM_SYSTEM_EVENT_*`.
        event_type: u32,
        /// `system_event.data[..ndata]`.
        data: &'a [u64],
    },
    /// A reason the kernel defines but this decoder reports without a payload view.
    Other {
        /// The `KVM_EXIT_*` number.
        reason: u32,
    },
    /// A reason no kernel header known to rawkvm defines.
    Unknown(u32),
}

impl Exit<'_> {
    /// The `KVM_EXIT_*` number this exit was decoded from.
    pub fn reason(&self) -> u32 {
        match self {
            Exit::HardwareUnknown { .. } => abi::KVM_EXIT_UNKNOWN,
            Exit::Io(_) => abi::KVM_EXIT_IO,
            Exit::Hlt => abi::KVM_EXIT_HLT,
            Exit::Mmio(_) => abi::KVM_EXIT_MMIO,
            Exit::Shutdown => abi::KVM_EXIT_SHUTDOWN,
            Exit::FailEntry { .. } => abi::KVM_EXIT_FAIL_ENTRY,
            Exit::Intr => abi::KVM_EXIT_INTR,
            Exit::InternalError { .. } => abi::KVM_EXIT_INTERNAL_ERROR,
            Exit::SystemEvent { .. } => abi::KVM_EXIT_SYSTEM_EVENT,
            Exit::Other { reason } | Exit::Unknown(reason) => *reason,
        }
    }

    /// The kernel's name for the reason, e.g. `"KVM_EXIT_IO"`, or `"unknown"`.
    pub fn reason_name(&self) -> &'static str {
        abi::exit_reason_name(self.reason()).unwrap_or("unknown")
    }
}

/// A field of the `kvm_run` page held a value the ABI does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// `io.direction` was neither `KVM_EXIT_IO_IN` (0) nor `KVM_EXIT_IO_OUT` (1).
    IoDirection(u8),
    /// `io.size` was not 1, 2 or 4.
    IoSize(u8),
    /// `io.count` was 0.
    IoCount,
    /// `io.data_offset + io.size * io.count` left the mapping, or overlapped bytes another
    /// thread may write (`immediate_exit`, the coalesced-MMIO ring).
    IoData {
        /// `io.data_offset` as found.
        data_offset: u64,
        /// `io.size * io.count`.
        len: u64,
        /// Size of the `kvm_run` mapping.
        mapping_len: usize,
    },
    /// `mmio.len` was not in 1..=8.
    MmioLen(u32),
    /// `internal.ndata` was above 16.
    InternalNdata(u32),
    /// `system_event.ndata` was above 16.
    SystemEventNdata(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::IoDirection(d) => write!(f, "io.direction is {d}, not 0 (in) or 1 (out)"),
            DecodeError::IoSize(s) => write!(f, "io.size is {s}, not 1, 2 or 4"),
            DecodeError::IoCount => write!(f, "io.count is 0"),
            DecodeError::IoData {
                data_offset,
                len,
                mapping_len,
            } => write!(
                f,
                "io.data_offset {data_offset:#x} + {len} bytes is outside the {mapping_len}-byte \
                 kvm_run mapping's private part"
            ),
            DecodeError::MmioLen(len) => write!(f, "mmio.len is {len}, not 1..=8"),
            DecodeError::InternalNdata(n) => write!(f, "internal.ndata is {n}, more than 16"),
            DecodeError::SystemEventNdata(n) => {
                write!(f, "system_event.ndata is {n}, more than 16")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes the exit `KVM_RUN` left in `page`. Total: never panics, never reads outside `page`.
pub fn decode(page: RunPage<'_>) -> Result<Exit<'_>, DecodeError> {
    let reason = page.get(fields::EXIT_REASON);
    Ok(match reason {
        abi::KVM_EXIT_UNKNOWN => Exit::HardwareUnknown {
            hardware_exit_reason: page.get(fields::HW_EXIT_REASON),
        },
        abi::KVM_EXIT_IO => Exit::Io(decode_io(page)?),
        abi::KVM_EXIT_HLT => Exit::Hlt,
        abi::KVM_EXIT_MMIO => Exit::Mmio(decode_mmio(page)?),
        abi::KVM_EXIT_SHUTDOWN => Exit::Shutdown,
        abi::KVM_EXIT_FAIL_ENTRY => Exit::FailEntry {
            hardware_entry_failure_reason: page.get(fields::FAIL_ENTRY_REASON),
            cpu: page.get(fields::FAIL_ENTRY_CPU),
        },
        abi::KVM_EXIT_INTR => Exit::Intr,
        abi::KVM_EXIT_INTERNAL_ERROR => {
            let suberror = page.get(fields::INTERNAL_SUBERROR);
            let ndata = page.get(fields::INTERNAL_NDATA);
            let data = words(page, fields::INTERNAL_DATA, ndata)
                .ok_or(DecodeError::InternalNdata(ndata))?;
            Exit::InternalError { suberror, data }
        }
        abi::KVM_EXIT_SYSTEM_EVENT => {
            let event_type = page.get(fields::SYSTEM_EVENT_TYPE);
            let ndata = page.get(fields::SYSTEM_EVENT_NDATA);
            let data = words(page, fields::SYSTEM_EVENT_DATA, ndata)
                .ok_or(DecodeError::SystemEventNdata(ndata))?;
            Exit::SystemEvent { event_type, data }
        }
        reason if abi::exit_reason_name(reason).is_some() => Exit::Other { reason },
        reason => Exit::Unknown(reason),
    })
}

/// `ndata` words at `offset`, if `ndata <= 16`.
fn words(page: RunPage<'_>, offset: usize, ndata: u32) -> Option<&[u64]> {
    if ndata > MAX_NDATA {
        return None;
    }
    page.into_words(offset, usize::try_from(ndata).ok()?)
}

fn decode_io(page: RunPage<'_>) -> Result<Io<'_>, DecodeError> {
    let direction = match page.get(fields::IO_DIRECTION) {
        abi::KVM_EXIT_IO_IN => IoDirection::In,
        abi::KVM_EXIT_IO_OUT => IoDirection::Out,
        other => return Err(DecodeError::IoDirection(other)),
    };
    let size = page.get(fields::IO_SIZE);
    if !matches!(size, 1 | 2 | 4) {
        return Err(DecodeError::IoSize(size));
    }
    let count = page.get(fields::IO_COUNT);
    if count == 0 {
        return Err(DecodeError::IoCount);
    }
    let port = page.get(fields::IO_PORT);
    let data_offset = page.get(fields::IO_DATA_OFFSET);
    let len = u64::from(size) * u64::from(count); // at most 4 * u32::MAX: cannot overflow u64
    let mapping_len = page.len();
    let data = usize::try_from(len)
        .ok()
        .and_then(|len| page.into_bytes(data_offset, len))
        .ok_or(DecodeError::IoData {
            data_offset,
            len,
            mapping_len,
        })?;
    Ok(Io {
        direction,
        port,
        size,
        count,
        data,
    })
}

fn decode_mmio(page: RunPage<'_>) -> Result<Mmio<'_>, DecodeError> {
    let len = page.get(fields::MMIO_LEN);
    if !(1..=8).contains(&len) {
        return Err(DecodeError::MmioLen(len));
    }
    let phys_addr = page.get(fields::MMIO_PHYS_ADDR);
    let is_write = page.get(fields::MMIO_IS_WRITE) != 0;
    let data = usize::try_from(len)
        .ok()
        .and_then(|len| page.into_bytes(fields::MMIO_DATA as u64, len))
        .ok_or(DecodeError::MmioLen(len))?;
    Ok(Mmio {
        phys_addr,
        is_write,
        data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page-aligned stand-in for the 3-page `kvm_run` mapping.
    #[repr(C, align(4096))]
    struct Page([u8; 3 * 4096]);

    impl Page {
        fn new(reason: u32) -> Box<Page> {
            let mut page = Box::new(Page([0; 3 * 4096]));
            page.put(fields::EXIT_REASON.offset(), &reason.to_le_bytes());
            page
        }

        fn put(&mut self, offset: usize, bytes: &[u8]) {
            self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
        }

        fn io(direction: u8, size: u8, port: u16, count: u32, data_offset: u64) -> Box<Page> {
            let mut page = Page::new(abi::KVM_EXIT_IO);
            page.put(fields::IO_DIRECTION.offset(), &[direction]);
            page.put(fields::IO_SIZE.offset(), &[size]);
            page.put(fields::IO_PORT.offset(), &port.to_le_bytes());
            page.put(fields::IO_COUNT.offset(), &count.to_le_bytes());
            page.put(fields::IO_DATA_OFFSET.offset(), &data_offset.to_le_bytes());
            page
        }

        fn decode(&mut self) -> Result<Exit<'_>, DecodeError> {
            decode(RunPage::from_bytes(&mut self.0).unwrap())
        }
    }

    #[test]
    fn an_out_exposes_exactly_its_bytes() {
        let mut page = Page::io(1, 2, 0x3F8, 3, 4096);
        page.put(4096, b"abcdefXX");
        match page.decode().unwrap() {
            Exit::Io(mut io) => {
                assert_eq!(
                    (io.direction, io.port, io.size, io.count),
                    (IoDirection::Out, 0x3F8, 2, 3)
                );
                assert_eq!(io.data, b"abcdef");
                let elements: Vec<Vec<u8>> = io.elements().map(|e| e.to_vec()).collect();
                assert_eq!(elements, [b"ab".to_vec(), b"cd".to_vec(), b"ef".to_vec()]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn io_fields_out_of_range_are_named_errors() {
        assert_eq!(
            Page::io(2, 1, 0, 1, 4096).decode().unwrap_err(),
            DecodeError::IoDirection(2)
        );
        assert_eq!(
            Page::io(0, 3, 0, 1, 4096).decode().unwrap_err(),
            DecodeError::IoSize(3)
        );
        assert_eq!(
            Page::io(0, 1, 0, 0, 4096).decode().unwrap_err(),
            DecodeError::IoCount
        );
        for (count, data_offset) in [
            (1, 3 * 4096),
            (4097, 2 * 4096),
            (u32::MAX, 4096),
            (1, u64::MAX),
            (1, 0),
        ] {
            match Page::io(0, 4, 0, count, data_offset).decode() {
                Err(DecodeError::IoData { .. }) => {}
                other => panic!("count {count} offset {data_offset:#x}: {other:?}"),
            }
        }
        // The last byte of the mapping is fine; one past it is not.
        assert!(Page::io(0, 1, 0, 1, 3 * 4096 - 1).decode().is_ok());
    }

    #[test]
    fn mmio_exposes_only_len_bytes() {
        let mut page = Page::new(abi::KVM_EXIT_MMIO);
        page.put(fields::MMIO_PHYS_ADDR.offset(), &0xA0000u64.to_le_bytes());
        page.put(fields::MMIO_DATA, &[0x11, 0x55, 0x66, 0x77, 1, 2, 3, 4]);
        page.put(fields::MMIO_LEN.offset(), &1u32.to_le_bytes());
        page.put(fields::MMIO_IS_WRITE.offset(), &[1]);
        match page.decode().unwrap() {
            Exit::Mmio(mmio) => {
                assert_eq!(
                    (mmio.phys_addr, mmio.is_write, mmio.value()),
                    (0xA0000, true, 0x11)
                );
                assert_eq!(mmio.data, [0x11]);
            }
            other => panic!("{other:?}"),
        }
        for len in [0, 9, u32::MAX] {
            page.put(fields::MMIO_LEN.offset(), &len.to_le_bytes());
            assert_eq!(page.decode().unwrap_err(), DecodeError::MmioLen(len));
        }
    }

    #[test]
    fn ndata_above_16_is_an_error_and_unknown_reasons_decode() {
        let mut page = Page::new(abi::KVM_EXIT_INTERNAL_ERROR);
        page.put(fields::INTERNAL_NDATA.offset(), &16u32.to_le_bytes());
        assert!(matches!(page.decode(), Ok(Exit::InternalError { data, .. }) if data.len() == 16));
        page.put(fields::INTERNAL_NDATA.offset(), &17u32.to_le_bytes());
        assert_eq!(page.decode().unwrap_err(), DecodeError::InternalNdata(17));
        for reason in [42, 1000, u32::MAX] {
            assert!(matches!(Page::new(reason).decode(), Ok(Exit::Unknown(r)) if r == reason));
        }
    }
}
