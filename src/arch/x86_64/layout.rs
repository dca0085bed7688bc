//! Where the protected, long and user modes keep their tables: the **system area**, 64 KiB
//! of guest RAM at `0x9_0000..0xA_0000` (below the 640 KiB line, as a PC's BIOS data would
//! be), written by the host before the first run. The image at `0x1000` may use everything
//! below it; an image or ELF segment reaching into it is refused.
//!
//! | GPA | size | what |
//! |---|---|---|
//! | `0x9_0000` | `0x48` | GDT (slots in `gdt.rs`) |
//! | `0x9_0100` | `0x200` | IDT: 32 gates, vectors 0–31, to the exception stub |
//! | `0x9_0300` | `0xD00` | 32 64-bit TSSes, `0x68` bytes each: vCPU `i` uses slot `i % 32` |
//! | `0x9_1000` | `0x1000` | exception stub (`asm-guests/stubs/exception_stub.S`) |
//! | `0x9_2000` | `0x1000` | PML4 (`--mode paged`: the 32-bit page directory) |
//! | `0x9_3000` | `0x1000` | PDPT |
//! | `0x9_4000` | `0x4000` | four page directories, 1 GiB each |
//! | `0x9_8000` | `0x1000` | page table of the first 2 MiB (4 KiB pages) |
//! | `0x9_9000` | `0x1000` | page table of a last partial 2 MiB of RAM |
//! | `0x9_A000` | `0x6000` | exception stacks, `0x300` bytes per TSS slot, slot 0's at the top |
//!
//! `--mode real` writes none of it. This module makes no system calls.

/// First byte of the system area.
pub const SYSTEM_AREA: u64 = 0x9_0000;
/// Bytes of the system area.
pub const SYSTEM_AREA_LEN: u64 = 0x1_0000;
/// First byte past the system area: RAM must reach at least this far outside real mode.
pub const SYSTEM_AREA_END: u64 = SYSTEM_AREA + SYSTEM_AREA_LEN;
/// The GDT.
pub const GDT: u64 = 0x9_0000;
/// The first of the 64-bit TSSes (one per vCPU, up to [`TSS_SLOTS`]).
pub const TSS: u64 = 0x9_0300;
/// How many TSSes there are; vCPU `i` uses slot `i % TSS_SLOTS`.
pub const TSS_SLOTS: u64 = 32;
/// Bytes of each TSS slot.
pub const TSS_SLOT_LEN: u64 = 0x68;
/// Bytes of each slot's exception stack (the stub needs well under 100).
pub const EXCEPTION_STACK_LEN: u64 = 0x300;
/// The IDT.
pub const IDT: u64 = 0x9_0100;
/// Vectors with a gate in the IDT: the 32 exceptions.
pub const IDT_VECTORS: u64 = 32;
/// The exception stub's code.
pub const STUB: u64 = 0x9_1000;
/// Most bytes the stub may take.
pub const STUB_LEN: u64 = 0x1000;
/// The PML4 (or, in `--mode paged`, the 32-bit page directory).
pub const PML4: u64 = 0x9_2000;
/// The page-directory-pointer table.
pub const PDPT: u64 = 0x9_3000;
/// The first of four page directories, one per GiB.
pub const PD: u64 = 0x9_4000;
/// How many page directories there are: enough for 4 GiB.
pub const PD_COUNT: u64 = 4;
/// The page table of the first 2 MiB, so the system area can be supervisor-only in user mode.
pub const PT_LOW: u64 = 0x9_8000;
/// The page table of a last 2 MiB chunk that RAM only partly fills.
pub const PT_HIGH: u64 = 0x9_9000;
/// RSP0 of TSS slot 0: the top of the exception stacks.
pub const EXCEPTION_STACK_TOP: u64 = SYSTEM_AREA_END;

/// vCPU `vcpu`'s TSS and the top of its exception stack: each vCPU its own (up to
/// [`TSS_SLOTS`] vCPUs; beyond, slots are shared), so two vCPUs faulting at once cannot
/// overwrite each other's exception frames.
pub fn tss_of(vcpu: u32) -> (u64, u64) {
    let slot = u64::from(vcpu) % TSS_SLOTS;
    (
        TSS + slot * TSS_SLOT_LEN,
        EXCEPTION_STACK_TOP - slot * EXCEPTION_STACK_LEN,
    )
}
/// The device window, mapped in long and user mode: the MMIO console at `0xD000_0000` and the
/// exit device at `0xD000_0008` (2 MiB, uncached).
pub const DEVICE_WINDOW: u64 = 0xD000_0000;

/// The local APIC's page (`IA32_APIC_BASE` after reset), mapped in long and user mode as one
/// 2 MiB page `0xFEE0_0000..0xFF00_0000`, uncached and supervisor-only: a CPL 0 guest with
/// `--irqchip kernel` programs the in-kernel LAPIC there (timer, EOI), with no exit.
pub const LAPIC: u64 = 0xFEE0_0000;

/// Outside real mode vCPU `i` starts with its stack this much below vCPU 0's (the top of RAM),
/// so that several vCPUs running the same image do not share one.
pub const STACK_PER_VCPU: u64 = 0x4000;

/// The rows of the table above, in address order, for `rawkvm list`: address, size, what.
pub const ROWS: &[(u64, u64, &str)] = &[
    (GDT, 0x48, "GDT"),
    (
        IDT,
        IDT_VECTORS * 16,
        "IDT: vectors 0-31 to the exception stub",
    ),
    (
        TSS,
        TSS_SLOTS * TSS_SLOT_LEN,
        "64-bit TSSes, one per vCPU (i % 32)",
    ),
    (STUB, STUB_LEN, "exception stub (long, user)"),
    (PML4, 0x1000, "PML4 (paged: 32-bit page directory)"),
    (PDPT, 0x1000, "PDPT"),
    (PD, PD_COUNT * 0x1000, "page directories, 1 GiB each"),
    (PT_LOW, 0x1000, "page table of the first 2 MiB"),
    (PT_HIGH, 0x1000, "page table of a partial last 2 MiB"),
    (
        EXCEPTION_STACK_TOP - TSS_SLOTS * EXCEPTION_STACK_LEN,
        TSS_SLOTS * EXCEPTION_STACK_LEN,
        "exception stacks, 0x300 bytes per vCPU",
    ),
    (
        DEVICE_WINDOW,
        0x20_0000,
        "device window (MMIO console, exit device)",
    ),
    (
        LAPIC,
        0x20_0000,
        "local APIC page (CPL 0; in-kernel LAPIC with --irqchip kernel)",
    ),
];

/// The system area's bytes, built on the host and copied into guest RAM in one write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemArea {
    bytes: Vec<u8>,
}

impl Default for SystemArea {
    fn default() -> Self {
        SystemArea {
            bytes: vec![0; SYSTEM_AREA_LEN as usize],
        }
    }
}

impl SystemArea {
    /// The bytes, for `GPA SYSTEM_AREA`.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Copies `data` to `gpa`. Every caller passes an address from the constants above with
    /// data that fits before the next one; anything else is a bug in rawkvm, caught by the
    /// unit tests (the copy is skipped, never out of bounds).
    pub fn put(&mut self, gpa: u64, data: &[u8]) {
        let start = gpa
            .checked_sub(SYSTEM_AREA)
            .and_then(|o| usize::try_from(o).ok());
        let range = start.and_then(|start| Some(start..start.checked_add(data.len())?));
        match range.and_then(|range| self.bytes.get_mut(range)) {
            Some(place) => place.copy_from_slice(data),
            None => debug_assert!(false, "{gpa:#x}+{} is outside the system area", data.len()),
        }
    }

    /// Writes a little-endian `u64` (a page-table entry) at `gpa`.
    pub fn put_u64(&mut self, gpa: u64, value: u64) {
        self.put(gpa, &value.to_le_bytes());
    }

    /// The little-endian `u64` at `gpa` (0 outside the area); for tests and `--explain`.
    pub fn u64_at(&self, gpa: u64) -> u64 {
        let start = gpa
            .checked_sub(SYSTEM_AREA)
            .and_then(|o| usize::try_from(o).ok());
        start
            .and_then(|start| self.bytes.get(start..start.checked_add(8)?))
            .and_then(|bytes| bytes.try_into().ok())
            .map_or(0, u64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rows_of_the_system_area_do_not_overlap_and_stay_inside_it() {
        let mut rows: Vec<_> = ROWS
            .iter()
            .filter(|row| row.0 < DEVICE_WINDOW.min(LAPIC))
            .collect();
        rows.sort();
        for pair in rows.windows(2) {
            assert!(pair[0].0 + pair[0].1 <= pair[1].0, "{pair:?}");
        }
        for (at, len, what) in rows {
            assert!(*at >= SYSTEM_AREA && at + len <= SYSTEM_AREA_END, "{what}");
        }
    }

    #[test]
    fn each_vcpu_has_its_own_tss_and_exception_stack() {
        assert_eq!(tss_of(0), (0x9_0300, 0xA_0000));
        assert_eq!(tss_of(1), (0x9_0368, 0x9_FD00));
        assert_eq!(tss_of(31), (0x9_0F98, 0x9_A300));
        assert_eq!(tss_of(32), tss_of(0));
        assert_eq!(TSS + TSS_SLOTS * TSS_SLOT_LEN, STUB);
    }

    #[test]
    fn put_and_read_back() {
        let mut area = SystemArea::default();
        area.put_u64(PML4, 0x9_3003);
        assert_eq!(area.u64_at(PML4), 0x9_3003);
        assert_eq!(area.u64_at(SYSTEM_AREA_END), 0);
        assert_eq!(area.bytes().len(), 0x1_0000);
    }
}
