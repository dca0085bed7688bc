//! The decoder on synthetic pages: every reason, every edge value of the fields that size or
//! locate data. Each page is a 3-page buffer that ends where a `PROT_NONE` page begins, so a
//! read one byte past the mapping would fault the test instead of passing silently.

use std::ops::Range;

use rawkvm_bindings as abi;

use super::fields::{self as f, Member, Typed};
use super::*;
use crate::sys::memory::GuardedBuffer;
use crate::sys::run_page::RunPage;

/// `KVM_GET_VCPU_MMAP_SIZE` on x86 hosts: `kvm_run`, the PIO page, the coalesced-MMIO ring.
const MAPPING: usize = 3 * 4096;

struct Page {
    buffer: GuardedBuffer,
}

impl Page {
    fn new(reason: u32) -> Page {
        let mut page = Page {
            buffer: GuardedBuffer::new(MAPPING).unwrap(),
        };
        page.set(f::EXIT_REASON, reason);
        page
    }

    fn put(&mut self, offset: usize, bytes: &[u8]) {
        self.buffer.bytes()[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    fn set<T: LeBytes>(&mut self, member: Typed<T>, value: T) {
        self.put(member.member.offset, &value.le_bytes());
    }

    /// Fills the exit union (and `ready_for_interrupt_injection`, `if_flag`) with a pattern,
    /// so every payload field holds a distinct non-zero value.
    fn pattern(&mut self) {
        for offset in 12..14 {
            self.put(offset, &[1]);
        }
        for offset in 32..288 {
            self.put(offset, &[(offset * 7 + 3) as u8]);
        }
    }

    /// The buffer's address range, to check slices against.
    fn range(&mut self) -> Range<usize> {
        let bytes = self.buffer.bytes();
        let start = bytes.as_ptr() as usize;
        start..start + bytes.len()
    }

    fn bytes_at(&mut self, offset: u64, len: usize) -> Vec<u8> {
        let offset = usize::try_from(offset).unwrap();
        self.buffer.bytes()[offset..offset + len].to_vec()
    }

    fn decode(&mut self) -> Result<Exit<'_>, DecodeError> {
        decode(RunPage::from_bytes(self.buffer.bytes()).unwrap())
    }
}

trait LeBytes: Copy {
    fn le_bytes(self) -> Vec<u8>;
}
macro_rules! le_bytes {
    ($($t:ty),*) => { $(impl LeBytes for $t {
        fn le_bytes(self) -> Vec<u8> { self.to_le_bytes().to_vec() }
    })* };
}
le_bytes!(u8, u16, u32, u64);

fn io_page(direction: u8, size: u8, count: u32, data_offset: u64) -> Page {
    let mut page = Page::new(abi::KVM_EXIT_IO);
    page.set(f::IO_DIRECTION, direction);
    page.set(f::IO_SIZE, size);
    page.set(f::IO_PORT, 0x3F8);
    page.set(f::IO_COUNT, count);
    page.set(f::IO_DATA_OFFSET, data_offset);
    page
}

/// What the decoder must say about an IO exit, worked out independently of it: the checks
/// in the order api.rst's fields are validated, the data range against the mapping and
/// `immediate_exit` (byte 1, written by other threads).
fn io_oracle(direction: u8, size: u8, count: u32, data_offset: u64) -> Result<usize, DecodeError> {
    if direction > 1 {
        return Err(DecodeError::IoDirection(direction));
    }
    if ![1, 2, 4].contains(&size) {
        return Err(DecodeError::IoSize(size));
    }
    if count == 0 {
        return Err(DecodeError::IoCount);
    }
    let len = u64::from(size) * u64::from(count);
    let end = u128::from(data_offset) + u128::from(len);
    let fits = end <= MAPPING as u128 && (end <= 1 || data_offset > 1);
    if fits {
        Ok(len as usize)
    } else {
        Err(DecodeError::IoData {
            data_offset,
            len,
            mapping_len: MAPPING,
        })
    }
}

#[test]
fn io_edge_values_decode_exactly_or_name_the_field() {
    let mut checked = 0;
    for direction in [0u8, 1, 2, 255] {
        for size in [0u8, 1, 2, 3, 4, 5, 8, 255] {
            for count in [0u32, 1, 1024, 4096, u32::MAX] {
                for data_offset in [0, 1, 2, 4095, 4096, 8192, 12287, 12288, u64::MAX] {
                    let mut page = io_page(direction, size, count, data_offset);
                    let range = page.range();
                    let expected = io_oracle(direction, size, count, data_offset);
                    let case =
                        format!("dir {direction} size {size} count {count} at {data_offset}");
                    match (page.decode(), expected) {
                        (Ok(Exit::Io(io)), Ok(len)) => {
                            let want = if direction == 0 {
                                IoDirection::In
                            } else {
                                IoDirection::Out
                            };
                            assert_eq!(io.direction, want, "{case}");
                            assert_eq!(
                                (io.port, io.size, io.count),
                                (0x3F8, size, count),
                                "{case}"
                            );
                            assert_eq!(io.data_offset, data_offset, "{case}");
                            assert_eq!(io.data.len(), len, "{case}");
                            let start = io.data.as_ptr() as usize;
                            assert_eq!(start, range.start + data_offset as usize, "{case}");
                            assert!(start + len <= range.end, "{case}: slice leaves the buffer");
                        }
                        (Err(got), Err(want)) => assert_eq!(got, want, "{case}"),
                        (got, want) => panic!("{case}: got {got:?}, want {want:?}"),
                    }
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 4 * 8 * 5 * 9);
}

#[test]
fn the_last_byte_of_the_mapping_is_in_and_one_past_is_out() {
    let mut last = io_page(0, 1, 1, (MAPPING - 1) as u64);
    let range = last.range();
    match last.decode() {
        Ok(Exit::Io(io)) => assert_eq!(io.data.as_ptr() as usize, range.end - 1),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        io_page(0, 4, 1, (MAPPING - 3) as u64).decode(),
        Err(DecodeError::IoData { len: 4, .. })
    ));
}

#[test]
fn mmio_len_edges_and_only_len_bytes_are_exposed() {
    for (reason, members, error) in [
        (
            abi::KVM_EXIT_MMIO,
            f::MMIO,
            DecodeError::MmioLen as fn(u32) -> DecodeError,
        ),
        (
            abi::KVM_EXIT_LOONGARCH_IOCSR,
            f::IOCSR,
            DecodeError::IocsrLen,
        ),
    ] {
        let f::MmioMembers {
            phys_addr: addr,
            data,
            len: len_field,
            is_write,
        } = members;
        for len in [0u32, 1, 3, 5, 8, 9, u32::MAX] {
            let mut page = Page::new(reason);
            page.set(addr, 0xFEE0_0000);
            page.put(
                data.offset,
                &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88],
            );
            page.set(len_field, len);
            page.set(is_write, 1);
            let range = page.range();
            match page.decode() {
                Ok(Exit::Mmio(mmio) | Exit::LoongarchIocsr(mmio)) => {
                    assert!((1..=8).contains(&len));
                    assert_eq!((mmio.phys_addr, mmio.is_write), (0xFEE0_0000, true));
                    assert_eq!(
                        mmio.data,
                        &[0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88][..len as usize]
                    );
                    let start = mmio.data.as_ptr() as usize;
                    assert_eq!(start, range.start + data.offset);
                    let expected =
                        u64::from_le_bytes([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
                    let mask = if len == 8 {
                        u64::MAX
                    } else {
                        (1 << (8 * len)) - 1
                    };
                    assert_eq!(mmio.value(), expected & mask);
                }
                Err(got) => {
                    assert!(!(1..=8).contains(&len), "len {len}: {got:?}");
                    assert_eq!(got, error(len));
                }
                Ok(other) => panic!("{other:?}"),
            }
        }
    }
}

#[test]
fn ndata_edges_for_internal_error_and_system_event() {
    for (reason, ndata_field, array, error) in [
        (
            abi::KVM_EXIT_INTERNAL_ERROR,
            f::INTERNAL_NDATA,
            f::INTERNAL_DATA,
            DecodeError::InternalNdata as fn(u32) -> DecodeError,
        ),
        (
            abi::KVM_EXIT_SYSTEM_EVENT,
            f::SYSTEM_EVENT_NDATA,
            f::SYSTEM_EVENT_DATA,
            DecodeError::SystemEventNdata,
        ),
    ] {
        for ndata in [0u32, 1, 16, 17, u32::MAX] {
            let mut page = Page::new(reason);
            page.pattern();
            page.set(ndata_field, ndata);
            let range = page.range();
            let expected_words: Vec<u64> = (0..ndata.min(16) as usize)
                .map(|i| {
                    let bytes = page.bytes_at((array.offset + 8 * i) as u64, 8);
                    u64::from_le_bytes(bytes.try_into().unwrap())
                })
                .collect();
            match page.decode() {
                Ok(Exit::InternalError { data, .. } | Exit::SystemEvent { data, .. }) => {
                    assert!(ndata <= 16);
                    assert_eq!(data, expected_words.as_slice());
                    let start = data.as_ptr() as usize;
                    assert!(start >= range.start && start + 8 * data.len() <= range.end);
                }
                Err(got) => {
                    assert!(ndata > 16);
                    assert_eq!(got, error(ndata));
                }
                Ok(other) => panic!("{other:?}"),
            }
        }
    }
}

/// What an item says was in the page.
enum Claim {
    /// These bytes, little-endian, at the item's source.
    Bytes(Vec<u8>),
    /// A flag: non-zero or not.
    Flag(bool),
    /// A keyword (`in`/`out`), checked elsewhere.
    Word,
}

/// The value an item claims and the bytes at its source must agree: each field of each
/// variant was read from the offset `fields` names. Slices must lie inside the buffer.
fn check_items_against_page(page: &mut Page, reason: u32) {
    let range = page.range();
    let snapshot = page.buffer.bytes().to_vec();
    let mut claims: Vec<(&'static str, Claim, Source)> = Vec::new();
    let exit = page
        .decode()
        .unwrap_or_else(|e| panic!("reason {reason}: {e}"));
    assert_eq!(exit.reason(), reason);
    exit.visit(&mut |item| {
        let claim = match item.value {
            Value::Bytes(bytes) => {
                let start = bytes.as_ptr() as usize;
                assert!(start >= range.start && start + bytes.len() <= range.end);
                Claim::Bytes(bytes.to_vec())
            }
            Value::Words(words) => {
                Claim::Bytes(words.iter().flat_map(|w| w.to_le_bytes()).collect())
            }
            Value::Hex(v) | Value::Dec(v) => Claim::Bytes(v.to_le_bytes().to_vec()),
            Value::Enum { value, .. } | Value::Hardware { value, .. } => {
                Claim::Bytes(value.to_le_bytes().to_vec())
            }
            Value::Bool(b) => Claim::Flag(b),
            Value::Word(_) => Claim::Word,
        };
        claims.push((item.label, claim, item.source));
    });
    for (label, claim, source) in claims {
        let (offset, len) = match source {
            Source::Member(Member { offset, size, .. }) => (offset, size),
            Source::Data { offset, len, .. } => (offset as usize, len),
        };
        let raw = &snapshot[offset..offset + len];
        match claim {
            Claim::Bytes(bytes) => {
                assert_eq!(&bytes[..len], raw, "reason {reason} {label}");
                assert!(
                    bytes[len..].iter().all(|&b| b == 0),
                    "reason {reason} {label}"
                );
            }
            Claim::Flag(flag) => assert_eq!(flag, raw.iter().any(|&b| b != 0), "{reason} {label}"),
            Claim::Word => {}
        }
    }
}

#[test]
fn every_known_reason_decodes_its_payload_from_the_right_offsets() {
    for &(reason, name) in abi::EXIT_REASONS {
        let mut page = Page::new(reason);
        page.pattern();
        // Make the fields that are validated valid.
        match reason {
            abi::KVM_EXIT_IO => {
                page.set(f::IO_DIRECTION, 1);
                page.set(f::IO_SIZE, 2);
                page.set(f::IO_COUNT, 3);
                page.set(f::IO_DATA_OFFSET, 4096);
            }
            abi::KVM_EXIT_MMIO => page.set(f::MMIO_LEN, 5),
            abi::KVM_EXIT_LOONGARCH_IOCSR => page.set(f::IOCSR_LEN, 3),
            abi::KVM_EXIT_INTERNAL_ERROR => page.set(f::INTERNAL_NDATA, 6),
            abi::KVM_EXIT_SYSTEM_EVENT => page.set(f::SYSTEM_EVENT_NDATA, 2),
            abi::KVM_EXIT_HYPERV => page.set(f::hyperv::TYPE, abi::KVM_EXIT_HYPERV_SYNDBG),
            abi::KVM_EXIT_XEN => page.set(f::xen::TYPE, abi::KVM_EXIT_XEN_HCALL),
            _ => {}
        }
        check_items_against_page(&mut page, reason);
        let exit = page.decode().unwrap();
        let mut labels = Vec::new();
        exit.visit(&mut |item| labels.push(item.label));
        for (i, label) in labels.iter().enumerate() {
            assert!(!labels[..i].contains(label), "{name}: {label} twice");
            let reserved = crate::trace::json::RESERVED_KEYS;
            for key in reserved {
                let clash = [*key, &format!("{key}_name"), &format!("{key}_text")];
                assert!(!clash.contains(label), "{name}: {label} clashes with {key}");
            }
        }
        assert_eq!(exit.reason_name(), name);
        assert!(
            !matches!(exit, Exit::Unknown(_)),
            "{name} decoded as Unknown"
        );
    }
}

/// The catalogue test above gives Hyper-V one `type` (SYNDBG); each `type` reads other
/// members, so each is checked against the page here, and must decode as its own variant.
#[test]
fn every_hyperv_type_decodes_its_payload_from_the_right_offsets() {
    for kind in [
        abi::KVM_EXIT_HYPERV_SYNIC,
        abi::KVM_EXIT_HYPERV_HCALL,
        abi::KVM_EXIT_HYPERV_SYNDBG,
    ] {
        let mut page = Page::new(abi::KVM_EXIT_HYPERV);
        page.pattern();
        page.set(f::hyperv::TYPE, kind);
        check_items_against_page(&mut page, abi::KVM_EXIT_HYPERV);
        let exit = page.decode().unwrap();
        let mut items = 0;
        exit.visit(&mut |_| items += 1);
        match (kind, exit) {
            (abi::KVM_EXIT_HYPERV_SYNIC, Exit::HyperV(HyperVExit::Synic { .. })) => {
                assert_eq!(items, 5, "type, msr, control, evt_page, msg_page")
            }
            (abi::KVM_EXIT_HYPERV_HCALL, Exit::HyperV(HyperVExit::Hcall { .. })) => {
                assert_eq!(items, 4, "type, input, result, params")
            }
            (abi::KVM_EXIT_HYPERV_SYNDBG, Exit::HyperV(HyperVExit::Syndbg { .. })) => {
                assert_eq!(items, 7, "type and six members")
            }
            (kind, other) => panic!("type {kind}: {other:?}"),
        }
    }
}

#[test]
fn every_known_reason_with_a_zeroed_payload() {
    for &(reason, name) in abi::EXIT_REASONS {
        let mut page = Page::new(reason);
        match page.decode() {
            Ok(exit) => assert_eq!(exit.reason(), reason, "{name}"),
            // A zeroed IO has size 0, a zeroed MMIO len 0: named errors, never a panic.
            Err(DecodeError::IoSize(0)) => assert_eq!(reason, abi::KVM_EXIT_IO),
            Err(DecodeError::MmioLen(0)) => assert_eq!(reason, abi::KVM_EXIT_MMIO),
            Err(DecodeError::IocsrLen(0)) => assert_eq!(reason, abi::KVM_EXIT_LOONGARCH_IOCSR),
            Err(other) => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn reasons_no_header_defines_are_unknown() {
    for reason in [42, 43, 1000, 0x8000_0000, u32::MAX] {
        let mut page = Page::new(reason);
        page.pattern();
        match page.decode() {
            Ok(Exit::Unknown(r)) => assert_eq!(r, reason),
            other => panic!("{reason}: {other:?}"),
        }
    }
}

#[test]
fn exact_payloads_of_the_exits_with_named_meanings() {
    let mut page = Page::new(abi::KVM_EXIT_FAIL_ENTRY);
    page.set(f::FAIL_ENTRY_REASON, 0x8000_0021);
    page.set(f::FAIL_ENTRY_CPU, 3);
    assert!(matches!(
        page.decode(),
        Ok(Exit::FailEntry {
            hardware_entry_failure_reason: 0x8000_0021,
            cpu: 3
        })
    ));

    let mut page = Page::new(abi::KVM_EXIT_X86_RDMSR);
    page.set(f::MSR_INDEX, 0xC0DE_0001);
    page.set(f::MSR_REASON, abi::KVM_MSR_EXIT_REASON_UNKNOWN);
    match page.decode() {
        Ok(Exit::X86Rdmsr(mut msr)) => {
            assert_eq!(
                (msr.index, msr.reason, msr.data, msr.error),
                (0xC0DE_0001, 2, 0, false)
            );
            msr.set_data(0x1122_3344_5566_7788);
            msr.set_error(true);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        page.bytes_at(f::MSR_DATA.member.offset as u64, 8),
        0x1122_3344_5566_7788u64.to_le_bytes()
    );
    assert_eq!(page.bytes_at(f::MSR_ERROR.member.offset as u64, 1), [1]);

    let mut page = Page::new(abi::KVM_EXIT_HYPERCALL);
    page.set(f::HYPERCALL_NR, 12);
    page.put(f::HYPERCALL_ARGS.member.offset, &7u64.to_le_bytes());
    match page.decode() {
        Ok(Exit::Hypercall(mut call)) => {
            assert_eq!((call.nr, call.args), (12, [7, 0, 0, 0, 0, 0]));
            call.set_ret(0x0BAD_F00D);
            assert_eq!(call.ret, 0x0BAD_F00D);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        page.bytes_at(f::HYPERCALL_RET.member.offset as u64, 8),
        0x0BAD_F00Du64.to_le_bytes(),
        "set_ret wrote hypercall.ret in the page"
    );

    let mut page = Page::new(abi::KVM_EXIT_HYPERV);
    page.set(f::hyperv::TYPE, 99);
    assert!(matches!(
        page.decode(),
        Ok(Exit::HyperV(HyperVExit::Other { kind: 99 }))
    ));
    let mut page = Page::new(abi::KVM_EXIT_XEN);
    page.set(f::xen::TYPE, 7);
    assert!(matches!(
        page.decode(),
        Ok(Exit::Xen(XenExit::Other { kind: 7 }))
    ));

    let mut page = Page::new(abi::KVM_EXIT_TDX);
    page.set(f::TDX_NR, 0x10002);
    match page.decode() {
        Ok(Exit::Tdx(call)) => assert_eq!(call.leaf_name(), Some("GetQuote")),
        other => panic!("{other:?}"),
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn x86_debug_exits_carry_their_registers() {
    use super::x86_64::{DEBUG_DR6, DEBUG_EXCEPTION, DEBUG_PC};
    let mut page = Page::new(abi::KVM_EXIT_DEBUG);
    page.set(DEBUG_EXCEPTION, 1);
    page.set(DEBUG_PC, 0x100C);
    page.set(DEBUG_DR6, 0xFFFF_0FF1);
    match page.decode() {
        Ok(Exit::Debug(debug)) => {
            assert_eq!(
                (debug.exception, debug.pc, debug.dr6),
                (1, 0x100C, 0xFFFF_0FF1)
            );
            assert_eq!(debug.breakpoint(), Some(0));
            assert!(!debug.single_step());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn emulation_failures_give_their_instruction_bytes_when_flagged() {
    let emulation = abi::KVM_INTERNAL_ERROR_EMULATION;
    // flags = 1, insn_size = 3, insn_bytes = ea 10 00 ...
    let low = u64::from_le_bytes([3, 0xEA, 0x10, 0x00, 0, 0, 0, 0]);
    let (bytes, len) = emulation_failure_instruction(emulation, &[1, low, 0]).unwrap();
    assert_eq!(&bytes[..len], [0xEA, 0x10, 0x00]);
    assert_eq!(emulation_failure_instruction(emulation, &[0, low, 0]), None);
    assert_eq!(emulation_failure_instruction(emulation, &[1, low]), None);
    assert_eq!(emulation_failure_instruction(2, &[1, low, 0]), None);
    let huge = u64::from_le_bytes([0xFF, 1, 2, 3, 4, 5, 6, 7]);
    let (_, len) = emulation_failure_instruction(emulation, &[1, huge, 0]).unwrap();
    assert_eq!(len, 15, "insn_size is clamped to the 15 bytes there are");
}
