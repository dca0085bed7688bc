//! The `decode_exit` harness: arbitrary `kvm_run` bytes through the decoder and the dispatch.

use std::io;
use std::ops::Range;

use rawkvm_bindings::{self as abi, kvm_run};

use super::Input;
use crate::devices::{Claim, Devices, IoHandler};
use nix::errno::Errno;

use crate::devices::bus::{OPEN_BUS, dispatch_io, dispatch_mmio, dispatch_msr};
use crate::exit::fields::{self, Typed};
use crate::exit::{DecodeError, Exit, IoDirection, MAX_NDATA};
use crate::kvm::vcpu::{RunError, exit_of};
use crate::run_loop::fault_of;
use crate::sys::run_page::RunPage;

/// The largest stand-in mapping: three pages, as `KVM_GET_VCPU_MMAP_SIZE` reports on x86.
pub const MAX_MAPPING: usize = 3 * PAGE;
const PAGE: usize = 4096;
const RUN_SIZE: usize = size_of::<kvm_run>();
/// `kvm_run.immediate_exit`, which no byte view may cover.
const IMMEDIATE_EXIT: usize = memoffset::offset_of!(kvm_run, immediate_exit);

/// Flag bits of the input's third byte: nudges that make valid exits likelier.
const RING_PAGE: u8 = 1 << 0;
const OFFSET_INSIDE: u8 = 1 << 1;
const SMALL_COUNT: u8 = 1 << 2;
const SMALL_LENGTHS: u8 = 1 << 3;
const RUN_FAILED: u8 = 1 << 4;

/// Runs one input:
///
/// ```text
/// bytes 0..2   mapping length: 2352 (struct kvm_run) + this % (12288 - 2352 + 1), rounded
///              down to a multiple of 8
/// byte  2      flags: 1 the last page is the shared coalesced-MMIO ring (no view may reach
///              it), 2 io.data_offset taken modulo the length, 4 io.count modulo 1025,
///              8 mmio.len modulo 10 and the ndata fields modulo 20, 16 KVM_RUN "returned
///              -1" with the errno taken from the first script byte (the page must then be
///              neither decoded nor touched)
/// bytes 3..5   P, how many bytes follow for the page
/// next P       the page from offset 0 (the rest of it stays zero)
/// the rest     the script: one byte per access picks who answers (0 Devices, 1 the script,
///              2 nobody), then a read's answer bytes; an empty script means Devices
/// ```
///
/// Returns what the page decoded as: the exit reason, `None` when the input said `KVM_RUN`
/// failed, or the decode error. Panics if the decoder or the dispatch breaks an invariant (see
/// the module docs of [`crate::fuzzing`]).
pub fn decode_exit(input: &[u8]) -> Result<Option<u32>, DecodeError> {
    let mut input = Input::new(input);
    let len = mapping_len(input.u16());
    let flags = input.byte();
    let prefix_len = usize::from(input.u16()).min(len);
    let prefix = input.take(prefix_len);
    let mut handler = Scripted::new(input.rest());

    let mut buffer = PageBuffer::new(len);
    let page = buffer.bytes();
    page[..prefix.len()].copy_from_slice(prefix);
    nudge(page, flags);
    let private_end = if flags & RING_PAGE != 0 && len > 2 * PAGE {
        2 * PAGE
    } else {
        len
    };
    let before = page.to_vec();
    let base = page.as_ptr() as usize;
    let view = RunPage::from_bytes(page)
        .expect("an 8-byte aligned buffer of at least struct kvm_run")
        .with_private_end(private_end);
    if flags & RUN_FAILED != 0 {
        let errno = Errno::from_raw(i32::from(handler.byte()));
        let interpreted = exit_of(Err(errno), view);
        match (errno, interpreted) {
            (Errno::EINTR, Err(RunError::Interrupted)) => {}
            (errno, Err(RunError::Failed(got))) if errno != Errno::EINTR => assert_eq!(got, errno),
            (errno, other) => panic!("KVM_RUN -1 {errno}: {other:?}"),
        }
        Change::None.verify(&before, buffer.bytes());
        return Ok(None);
    }
    let (decoded, expected) = match exit_of(Ok(()), view) {
        Ok(mut exit) => (
            Ok(Some(exit.reason())),
            check_exit(&mut exit, &before, base, private_end, &mut handler),
        ),
        Err(RunError::Decode(error)) => {
            check_error(error, &before, private_end);
            (Err(error), Change::None)
        }
        Err(other) => panic!("a KVM_RUN that returned 0 gave {other:?}"),
    };
    expected.verify(&before, buffer.bytes());
    decoded
}

fn mapping_len(selector: u16) -> usize {
    let span = MAX_MAPPING - RUN_SIZE + 1;
    (RUN_SIZE + usize::from(selector) % span) & !7
}

/// Applies the nudges of `flags` to the page.
fn nudge(page: &mut [u8], flags: u8) {
    let len = page.len() as u64;
    if flags & OFFSET_INSIDE != 0 {
        let offset = get(page, fields::IO_DATA_OFFSET) % len;
        put(page, fields::IO_DATA_OFFSET.offset(), &offset.to_le_bytes());
    }
    if flags & SMALL_COUNT != 0 {
        let count = get(page, fields::IO_COUNT) % 1025;
        put(page, fields::IO_COUNT.offset(), &count.to_le_bytes());
    }
    if flags & SMALL_LENGTHS != 0 {
        let mmio_len = get(page, fields::MMIO_LEN) % 10;
        put(page, fields::MMIO_LEN.offset(), &mmio_len.to_le_bytes());
        for ndata in [fields::INTERNAL_NDATA, fields::SYSTEM_EVENT_NDATA] {
            let value = get(page, ndata) % 20;
            put(page, ndata.offset(), &value.to_le_bytes());
        }
    }
}

/// A little-endian field of the page as the kernel would have left it.
fn get<T: FromLe>(page: &[u8], field: Typed<T>) -> T {
    T::from_le(&page[field.offset()..field.offset() + size_of::<T>()])
}

fn put(page: &mut [u8], offset: usize, bytes: &[u8]) {
    page[offset..offset + bytes.len()].copy_from_slice(bytes);
}

/// The integer types the harness reads fields as.
trait FromLe: crate::sys::run_page::Scalar {
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! from_le {
    ($($t:ty),*) => {$(
        impl FromLe for $t {
            fn from_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("field width"))
            }
        }
    )*};
}
from_le!(u8, u16, u32, u64);

/// How the page may differ after the dispatch.
enum Change {
    /// Not at all.
    None,
    /// Only `range`, which must now hold `bytes`.
    Only { range: Range<usize>, bytes: Vec<u8> },
}

impl Change {
    fn verify(self, before: &[u8], after: &[u8]) {
        match self {
            Change::None => assert!(before == after, "the dispatch wrote into the page"),
            Change::Only { range, bytes } => {
                assert_eq!(&after[range.clone()], bytes.as_slice(), "answer bytes");
                assert!(
                    before[..range.start] == after[..range.start]
                        && before[range.end..] == after[range.end..],
                    "the dispatch wrote outside {range:?}"
                );
            }
        }
    }
}

/// The range a view at `base + ptr` of `len` bytes covers, checked against the page's rules.
fn view_range(ptr: *const u8, len: usize, base: usize, private_end: usize) -> Range<usize> {
    let start = (ptr as usize)
        .checked_sub(base)
        .expect("a view before the page");
    let end = start
        .checked_add(len)
        .expect("a view past the address space");
    assert!(end <= private_end, "view {start}..{end} past {private_end}");
    assert!(
        end <= IMMEDIATE_EXIT || start > IMMEDIATE_EXIT,
        "view {start}..{end} covers immediate_exit"
    );
    start..end
}

fn check_exit(
    exit: &mut Exit<'_>,
    before: &[u8],
    base: usize,
    private_end: usize,
    handler: &mut Scripted<'_>,
) -> Change {
    let reason = get(before, fields::EXIT_REASON);
    assert_eq!(exit.reason(), reason);
    let fault = fault_of(exit);
    match exit {
        Exit::Io(io) => {
            assert!(fault.is_none());
            let range = view_range(io.data.as_ptr(), io.data.len(), base, private_end);
            assert_eq!(range.start as u64, get(before, fields::IO_DATA_OFFSET));
            assert_eq!(io.port, get(before, fields::IO_PORT));
            assert_eq!(io.size, get(before, fields::IO_SIZE));
            assert_eq!(io.count, get(before, fields::IO_COUNT));
            assert_eq!(
                range.len() as u64,
                u64::from(io.size) * u64::from(io.count),
                "len == size * count"
            );
            let written = io.data.to_vec();
            let dispatch = dispatch_io(io, handler).expect("the handlers never fail");
            handler.check_accesses(u64::from(io.port), usize::from(io.size), io.count, dispatch);
            match io.direction {
                IoDirection::In => Change::Only {
                    range,
                    bytes: handler.answers(),
                },
                IoDirection::Out => {
                    assert_eq!(handler.offered(), written, "OUT elements as written");
                    Change::None
                }
            }
        }
        Exit::Mmio(mmio) => {
            assert!(fault.is_none());
            let range = view_range(mmio.data.as_ptr(), mmio.data.len(), base, private_end);
            assert_eq!(range.start, fields::MMIO_DATA.offset);
            assert!((1..=8).contains(&range.len()));
            assert_eq!(range.len() as u32, get(before, fields::MMIO_LEN));
            assert_eq!(mmio.phys_addr, get(before, fields::MMIO_PHYS_ADDR));
            let mut value = [0u8; 8];
            value[..range.len()].copy_from_slice(&before[range.clone()]);
            assert_eq!(
                mmio.value(),
                u64::from_le_bytes(value),
                "zero-extended data[..len]"
            );
            let written = mmio.data.to_vec();
            let dispatch = dispatch_mmio(mmio, handler).expect("the handlers never fail");
            handler.check_accesses(mmio.phys_addr, range.len(), 1, dispatch);
            if mmio.is_write {
                assert_eq!(handler.offered(), written);
                Change::None
            } else {
                Change::Only {
                    range,
                    bytes: handler.answers(),
                }
            }
        }
        Exit::InternalError { data, .. } | Exit::SystemEvent { data, .. } => {
            assert!(fault.is_some());
            let (offset, ndata) = if reason == abi::KVM_EXIT_INTERNAL_ERROR {
                (
                    fields::INTERNAL_DATA.offset,
                    get(before, fields::INTERNAL_NDATA),
                )
            } else {
                (
                    fields::SYSTEM_EVENT_DATA.offset,
                    get(before, fields::SYSTEM_EVENT_NDATA),
                )
            };
            let range = view_range(data.as_ptr().cast(), data.len() * 8, base, private_end);
            assert_eq!((range.start, data.len() as u32), (offset, ndata));
            assert!(ndata <= MAX_NDATA);
            for (i, &word) in data.iter().enumerate() {
                let at = offset + 8 * i;
                assert_eq!(word, <u64 as FromLe>::from_le(&before[at..at + 8]));
            }
            Change::None
        }
        Exit::X86Rdmsr(msr) | Exit::X86Wrmsr(msr) => {
            assert!(fault.is_none());
            assert_eq!(msr.index, get(before, fields::MSR_INDEX));
            assert_eq!(msr.data, get(before, fields::MSR_DATA));
            // The scripted devices own no MSR: the answer is a refusal (#GP), and the one byte
            // the loop may write is `msr.error`.
            let write = reason == abi::KVM_EXIT_X86_WRMSR;
            let dispatch = dispatch_msr(msr, write, handler).expect("the handlers never fail");
            assert_eq!(dispatch, Claim::Unclaimed);
            let error = fields::MSR_ERROR.offset();
            Change::Only {
                range: error..error + 1,
                bytes: vec![1],
            }
        }
        Exit::Hlt | Exit::Intr | Exit::IrqWindowOpen { .. } | Exit::Debug(_) => {
            // Handled by the loop (or, for DEBUG, handed back to the caller): not faults.
            assert!(fault.is_none());
            Change::None
        }
        Exit::Unknown(reason) => {
            assert!(abi::exit_reason_name(*reason).is_none());
            assert!(fault.is_some());
            Change::None
        }
        _ => {
            assert!(abi::exit_reason_name(exit.reason()).is_some());
            assert!(fault.is_some(), "{exit:?} is not a fault");
            Change::None
        }
    }
}

/// Checks that a decode error names a field that really is out of range.
fn check_error(error: DecodeError, before: &[u8], private_end: usize) {
    let reason = get(before, fields::EXIT_REASON);
    let io = reason == abi::KVM_EXIT_IO;
    match error {
        DecodeError::IoDirection(direction) => {
            assert!(io && direction == get(before, fields::IO_DIRECTION) && direction > 1)
        }
        DecodeError::IoSize(size) => {
            assert!(io && size == get(before, fields::IO_SIZE) && !matches!(size, 1 | 2 | 4))
        }
        DecodeError::IoCount => assert!(io && get(before, fields::IO_COUNT) == 0),
        DecodeError::IoData {
            data_offset,
            len,
            mapping_len,
        } => {
            assert!(io && data_offset == get(before, fields::IO_DATA_OFFSET));
            let expected_len =
                u64::from(get(before, fields::IO_SIZE)) * u64::from(get(before, fields::IO_COUNT));
            assert_eq!((len, mapping_len), (expected_len, before.len()));
            let end = data_offset.checked_add(len);
            let fits = end.is_some_and(|end| end <= private_end as u64)
                && (end.is_some_and(|end| end <= IMMEDIATE_EXIT as u64)
                    || data_offset > IMMEDIATE_EXIT as u64);
            assert!(!fits, "IoData refused a range that fits: {error}");
        }
        DecodeError::MmioLen(len) => assert!(
            reason == abi::KVM_EXIT_MMIO
                && len == get(before, fields::MMIO_LEN)
                && !(1..=8).contains(&len)
        ),
        DecodeError::IocsrLen(len) => assert!(
            reason == abi::KVM_EXIT_LOONGARCH_IOCSR
                && len == get(before, fields::IOCSR_LEN)
                && !(1..=8).contains(&len)
        ),
        DecodeError::InternalNdata(ndata) => assert!(
            reason == abi::KVM_EXIT_INTERNAL_ERROR
                && ndata == get(before, fields::INTERNAL_NDATA)
                && ndata > MAX_NDATA
        ),
        DecodeError::SystemEventNdata(ndata) => assert!(
            reason == abi::KVM_EXIT_SYSTEM_EVENT
                && ndata == get(before, fields::SYSTEM_EVENT_NDATA)
                && ndata > MAX_NDATA
        ),
    }
    assert!(!error.to_string().is_empty());
}

/// One access as the handler saw it.
struct Access {
    at: u64,
    offered: Vec<u8>,
    answered: Vec<u8>,
    dispatch: Claim,
}

/// Answers accesses as the script says: forwarded to [`Devices`], answered with script bytes,
/// or left unclaimed. Records every access.
struct Scripted<'a> {
    script: &'a [u8],
    next: usize,
    devices: Devices<io::Sink>,
    accesses: Vec<Access>,
}

impl<'a> Scripted<'a> {
    fn new(script: &'a [u8]) -> Scripted<'a> {
        Scripted {
            script,
            next: 0,
            devices: Devices::new(io::sink()),
            accesses: Vec::new(),
        }
    }

    fn byte(&mut self) -> u8 {
        if self.script.is_empty() {
            return 0;
        }
        let byte = self.script[self.next % self.script.len()];
        self.next = self.next.wrapping_add(1);
        byte
    }

    fn read(
        &mut self,
        at: u64,
        data: &mut [u8],
        forward: impl FnOnce(&mut Devices<io::Sink>, &mut [u8]) -> io::Result<Claim>,
    ) -> io::Result<Claim> {
        assert!(
            data.iter().all(|&b| b == OPEN_BUS),
            "read data must arrive as all-ones"
        );
        let offered = data.to_vec();
        let dispatch = match self.byte() % 3 {
            0 => forward(&mut self.devices, data)?,
            1 => {
                data.iter_mut().for_each(|b| *b = self.byte());
                Claim::Claimed
            }
            _ => Claim::Unclaimed,
        };
        self.accesses.push(Access {
            at,
            offered,
            answered: data.to_vec(),
            dispatch,
        });
        Ok(dispatch)
    }

    fn write(
        &mut self,
        at: u64,
        data: &[u8],
        forward: impl FnOnce(&mut Devices<io::Sink>, &[u8]) -> io::Result<Claim>,
    ) -> io::Result<Claim> {
        let dispatch = match self.byte() % 3 {
            0 => forward(&mut self.devices, data)?,
            1 => Claim::Claimed,
            _ => Claim::Unclaimed,
        };
        self.accesses.push(Access {
            at,
            offered: data.to_vec(),
            answered: data.to_vec(),
            dispatch,
        });
        Ok(dispatch)
    }

    /// Checks the recorded accesses: `count` of `size` bytes, all at `at`, and the dispatch
    /// claimed if any access was.
    fn check_accesses(&self, at: u64, size: usize, count: u32, dispatch: Claim) {
        assert_eq!(
            self.accesses.len() as u64,
            u64::from(count),
            "one call per element"
        );
        for access in &self.accesses {
            assert_eq!((access.at, access.offered.len()), (at, size));
        }
        let claimed = self.accesses.iter().any(|a| a.dispatch == Claim::Claimed);
        assert_eq!(dispatch == Claim::Claimed, claimed);
    }

    fn offered(&self) -> Vec<u8> {
        self.accesses
            .iter()
            .flat_map(|a| a.offered.clone())
            .collect()
    }

    fn answers(&self) -> Vec<u8> {
        self.accesses
            .iter()
            .flat_map(|a| a.answered.clone())
            .collect()
    }
}

impl IoHandler for Scripted<'_> {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Claim> {
        self.read(u64::from(port), data, |d, data| d.pio_read(port, data))
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Claim> {
        self.write(u64::from(port), data, |d, data| d.pio_write(port, data))
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> io::Result<Claim> {
        self.read(addr, data, |d, data| d.mmio_read(addr, data))
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Claim> {
        self.write(addr, data, |d, data| d.mmio_write(addr, data))
    }
}

/// The stand-in for the `kvm_run` mapping: it ends at a `PROT_NONE` guard page (under Miri, at
/// the end of its allocation), so a read or write one byte past it is caught.
struct PageBuffer(crate::sys::memory::GuardedBuffer);

impl PageBuffer {
    fn new(len: usize) -> PageBuffer {
        PageBuffer(crate::sys::memory::GuardedBuffer::new(len).expect("mmap a guarded buffer"))
    }

    fn bytes(&mut self) -> &mut [u8] {
        self.0.bytes()
    }
}
