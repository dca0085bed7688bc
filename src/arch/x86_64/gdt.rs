//! The descriptor tables of the protected, long and user modes: the GDT, the 64-bit TSS and
//! the IDT, as bytes for guest memory, and the `kvm_segment` values `KVM_SET_SREGS` gets.
//!
//! ```text
//! GDT at SYSTEM_AREA (layout in modes.rs)     selector  what
//!   0  null                                    0x00
//!   1  32-bit code, flat 4 GiB, DPL 0          0x08      CS of --mode protected
//!   2  32-bit data, flat 4 GiB, DPL 0          0x10      DS..SS of --mode protected
//!   3  64-bit code (L = 1), DPL 0              0x18      CS of --mode long (and the stub)
//!   4  data, DPL 0                             0x20      DS..SS of --mode long
//!   5  data, DPL 3                             0x2B      DS..SS of --mode user (RPL 3)
//!   6  64-bit code (L = 1), DPL 3              0x33      CS of --mode user (RPL 3)
//!   7  64-bit TSS, 16 bytes (two slots)        0x38      TR of --mode long and user (vCPU 0's;
//!                                                        each vCPU's TR base is its own TSS)
//! ```
//!
//! Each segment is described once, as the `kvm_segment` the kernel takes, and the GDT entry is
//! encoded from that same value, so the registers and the table in memory cannot disagree
//! (a VMX entry checks that they match what a `mov` into the segment register would load).
//! The order of slots 5 and 6 is the one `sysret` expects (user data at STAR + 8, user code
//! at STAR + 16), should a guest want to set STAR.
//!
//! This module makes no system calls and holds no `unsafe` code.

use rawkvm_bindings::kvm_segment;

/// Segment type of an executable, readable, accessed code segment.
const TYPE_CODE: u8 = 0xB;
/// Segment type of a writable, accessed data segment.
const TYPE_DATA: u8 = 0x3;
/// System segment type of a 64-bit TSS marked busy, as TR holds it after `ltr`.
pub const TYPE_TSS_BUSY: u8 = 0xB;
/// System segment type of an available 64-bit TSS, as the GDT holds it before `ltr`.
const TYPE_TSS_AVAILABLE: u8 = 0x9;
/// IDT gate type of a 64-bit interrupt gate (IF cleared on entry).
const GATE_INTERRUPT: u8 = 0xE;

/// Selector of the 32-bit flat code segment.
pub const CODE32: u16 = 0x08;
/// Selector of the 32-bit flat data segment.
pub const DATA32: u16 = 0x10;
/// Selector of the 64-bit CPL0 code segment.
pub const CODE64: u16 = 0x18;
/// Selector of the CPL0 data segment of long mode.
pub const DATA64: u16 = 0x20;
/// Selector (RPL 3) of the CPL3 data segment.
pub const USER_DATA: u16 = 0x28 | 3;
/// Selector (RPL 3) of the CPL3 64-bit code segment.
pub const USER_CODE: u16 = 0x30 | 3;
/// Selector of the TSS.
pub const TSS: u16 = 0x38;
/// Bytes of the GDT: eight 8-byte slots, the TSS taking the last two.
pub const GDT_LEN: usize = 9 * 8;
/// Bytes of a 64-bit TSS without an I/O permission bitmap.
pub const TSS_LEN: usize = 0x68;
/// Offset of RSP0 (the stack of a switch to CPL0) in the 64-bit TSS.
const TSS_RSP0: usize = 4;
/// Offset of IST1, the first interrupt stack table entry, in the 64-bit TSS.
const TSS_IST1: usize = 0x24;
/// The IST entry every gate uses: the exception stub always runs on its own stack, even for
/// an exception at CPL 0 whose stack is what failed (a #PF on `push` with RSP unmapped).
const GATE_IST: u64 = 1;
/// Offset of the I/O map base in the 64-bit TSS; pointing it at the TSS's end means "no
/// bitmap": every port is refused at CPL3 (unless IOPL = 3).
const TSS_IOMAP_BASE: usize = 0x66;
/// Bytes of one 64-bit IDT gate.
pub const GATE_LEN: usize = 16;

/// A flat 4 GiB code or data segment (`limit` is in bytes, scaled by `g` in the GDT entry).
fn flat(selector: u16, type_: u8, dpl: u8, long: bool) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xFFFF_FFFF,
        selector,
        type_,
        present: 1,
        dpl,
        // A 64-bit code segment must have D = 0; 32-bit code and all data have D/B = 1.
        db: u8::from(!long),
        s: 1,
        l: u8::from(long),
        g: 1,
        ..kvm_segment::default()
    }
}

/// CS of `--mode protected`.
pub fn code32() -> kvm_segment {
    flat(CODE32, TYPE_CODE, 0, false)
}

/// DS, ES, FS, GS and SS of `--mode protected`.
pub fn data32() -> kvm_segment {
    flat(DATA32, TYPE_DATA, 0, false)
}

/// CS of `--mode long`.
pub fn code64() -> kvm_segment {
    flat(CODE64, TYPE_CODE, 0, true)
}

/// DS, ES, FS, GS and SS of `--mode long`.
pub fn data64() -> kvm_segment {
    flat(DATA64, TYPE_DATA, 0, false)
}

/// CS of `--mode user`: DPL 3, so the program runs at CPL 3.
pub fn user_code() -> kvm_segment {
    flat(USER_CODE, TYPE_CODE, 3, true)
}

/// DS, ES, FS, GS and SS of `--mode user`.
pub fn user_data() -> kvm_segment {
    flat(USER_DATA, TYPE_DATA, 3, false)
}

/// TR: the 64-bit TSS at `base`, busy (as `ltr` leaves it).
pub fn task_register(base: u64) -> kvm_segment {
    kvm_segment {
        base,
        limit: TSS_LEN as u32 - 1,
        selector: TSS,
        type_: TYPE_TSS_BUSY,
        present: 1,
        ..kvm_segment::default()
    }
}

/// The 8-byte GDT entry of a code, data or (low half of a) system segment.
pub fn descriptor(segment: &kvm_segment) -> u64 {
    let limit = if segment.g != 0 {
        segment.limit >> 12
    } else {
        segment.limit
    };
    let (limit, base) = (u64::from(limit), segment.base);
    (limit & 0xFFFF)
        | (base & 0xFF_FFFF) << 16
        | u64::from(segment.type_ & 0xF) << 40
        | u64::from(segment.s & 1) << 44
        | u64::from(segment.dpl & 3) << 45
        | u64::from(segment.present & 1) << 47
        | (limit >> 16 & 0xF) << 48
        | u64::from(segment.avl & 1) << 52
        | u64::from(segment.l & 1) << 53
        | u64::from(segment.db & 1) << 54
        | u64::from(segment.g & 1) << 55
        | (base >> 24 & 0xFF) << 56
}

/// The GDT of the table above, its TSS descriptor pointing at `tss_base`.
pub fn gdt(tss_base: u64) -> [u8; GDT_LEN] {
    let tss = kvm_segment {
        type_: TYPE_TSS_AVAILABLE,
        ..task_register(tss_base)
    };
    let slots = [
        0,
        descriptor(&code32()),
        descriptor(&data32()),
        descriptor(&code64()),
        descriptor(&data64()),
        descriptor(&user_data()),
        descriptor(&user_code()),
        descriptor(&tss),
        // The upper half of a 16-byte system descriptor: base bits 32..63.
        tss_base >> 32,
    ];
    let mut bytes = [0; GDT_LEN];
    for (chunk, slot) in bytes.chunks_exact_mut(8).zip(slots) {
        chunk.copy_from_slice(&slot.to_le_bytes());
    }
    bytes
}

/// A 64-bit TSS whose RSP0 and IST1 are `stack` (where an exception switches the stack to,
/// from CPL 3 and, through the gates' IST field, from CPL 0 too).
pub fn tss(stack: u64) -> [u8; TSS_LEN] {
    let mut bytes = [0; TSS_LEN];
    bytes[TSS_RSP0..TSS_RSP0 + 8].copy_from_slice(&stack.to_le_bytes());
    bytes[TSS_IST1..TSS_IST1 + 8].copy_from_slice(&stack.to_le_bytes());
    bytes[TSS_IOMAP_BASE..TSS_IOMAP_BASE + 2].copy_from_slice(&(TSS_LEN as u16).to_le_bytes());
    bytes
}

/// A 64-bit interrupt gate to `handler` in the CPL0 code segment, on IST1; `dpl` 3 lets
/// CPL3 code reach it with `int N` (used for `int3`), 0 makes such an `int` a #GP.
pub fn interrupt_gate(handler: u64, dpl: u8) -> [u8; GATE_LEN] {
    let low = (handler & 0xFFFF)
        | u64::from(CODE64) << 16
        | GATE_IST << 32
        | u64::from(GATE_INTERRUPT) << 40
        | u64::from(dpl & 3) << 45
        | 1 << 47
        | (handler >> 16 & 0xFFFF) << 48;
    let high = handler >> 32;
    let mut bytes = [0; GATE_LEN];
    bytes[..8].copy_from_slice(&low.to_le_bytes());
    bytes[8..].copy_from_slice(&high.to_le_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptors_match_the_well_known_encodings() {
        // The values every OS tutorial gives for flat segments.
        assert_eq!(descriptor(&code32()), 0x00CF_9B00_0000_FFFF);
        assert_eq!(descriptor(&data32()), 0x00CF_9300_0000_FFFF);
        assert_eq!(descriptor(&code64()), 0x00AF_9B00_0000_FFFF);
        assert_eq!(descriptor(&user_code()), 0x00AF_FB00_0000_FFFF);
        assert_eq!(descriptor(&user_data()), 0x00CF_F300_0000_FFFF);
    }

    #[test]
    fn the_gdt_puts_each_selector_at_its_slot() {
        let table = gdt(0x9_0300);
        let slot = |selector: u16| {
            let at = usize::from(selector & !7);
            u64::from_le_bytes(table[at..at + 8].try_into().unwrap())
        };
        assert_eq!(slot(0), 0);
        assert_eq!(slot(CODE64), descriptor(&code64()));
        assert_eq!(slot(USER_CODE), descriptor(&user_code()));
        assert_eq!(slot(USER_DATA), descriptor(&user_data()));
        // TSS: limit 0x67, base 0x90300, type 9, present.
        assert_eq!(slot(TSS), 0x0000_8909_0300_0067);
        assert_eq!(slot(TSS + 8), 0);
    }

    #[test]
    fn gates_and_tss_hold_their_addresses() {
        let gate = interrupt_gate(0x1234_5678_9ABC_DEF0, 3);
        assert_eq!(
            u64::from_le_bytes(gate[..8].try_into().unwrap()),
            0x9ABC_EE01_0018_DEF0
        );
        assert_eq!(
            u64::from_le_bytes(gate[8..].try_into().unwrap()),
            0x1234_5678
        );
        let tss = tss(0xA_0000);
        assert_eq!(&tss[4..12], &0xA_0000u64.to_le_bytes());
        assert_eq!(&tss[0x24..0x2C], &0xA_0000u64.to_le_bytes());
        assert_eq!(&tss[0x66..], &[0x68, 0]);
    }
}
