//! The page tables of `--mode long`, `user` and `paged`: an identity map of all of RAM
//! (virtual address = physical address) and of the device window, written into the system
//! area (`layout.rs`).
//!
//! 4-level (long, user; `CR3 = PML4`, `CR4.PAE`, `EFER.LME`):
//!
//! ```text
//! PML4[0] -> PDPT;  PDPT[g] -> PD g (g = 0..3, only those with something mapped)
//! PD 0[0] -> PT_LOW: the first 2 MiB in 4 KiB pages, up to the end of RAM
//! PD g[i] -> a 2 MiB page, for every 2 MiB chunk wholly inside RAM
//! a last chunk RAM fills only partly -> PT_HIGH, 4 KiB pages up to the end of RAM
//! the 2 MiB chunk at 0xD000_0000 (device window), uncached, when RAM ends below it
//! the 2 MiB chunk at 0xFEE0_0000 (local APIC), uncached, supervisor-only, likewise
//! ```
//!
//! Nothing past the end of RAM is mapped (outside the device window and the LAPIC page), so a stray access is a
//! page fault naming its address in CR2. In user mode every entry is user-accessible except
//! the system area's own pages: the program cannot overwrite the tables it runs on.
//!
//! 32-bit (`--mode paged`; `CR4.PSE`, no PAE): one page directory at `PML4` of 4 MiB pages
//! covering RAM rounded up to 4 MiB, and the device window.
//!
//! This module makes no system calls.

use super::layout::{
    DEVICE_WINDOW, LAPIC, PD, PD_COUNT, PDPT, PML4, PT_HIGH, PT_LOW, SYSTEM_AREA, SYSTEM_AREA_END,
    SystemArea,
};

/// Present.
const PRESENT: u64 = 1 << 0;
/// Writable.
const WRITABLE: u64 = 1 << 1;
/// Reachable from CPL 3.
const USER: u64 = 1 << 2;
/// Write-through and cache-disable: the device window is not memory.
const UNCACHED: u64 = 1 << 3 | 1 << 4;
/// A large page (2 MiB in a PD, 4 MiB in a 32-bit PD).
const LARGE: u64 = 1 << 7;

const KIB4: u64 = 0x1000;
const MIB2: u64 = 0x20_0000;
const MIB4: u64 = 0x40_0000;
const GIB1: u64 = 0x4000_0000;

/// Writes the 4-level identity map of `[0, ram_end)` and the device window into `area`;
/// `user` makes it reachable from CPL 3 (the system area excepted).
pub fn identity_map_4level(area: &mut SystemArea, ram_end: u64, user: bool) {
    let table = PRESENT | WRITABLE | if user { USER } else { 0 };
    area.put_u64(PML4, PDPT | table);
    let mut chunk = 0;
    while chunk < ram_end.min(PD_COUNT * GIB1) {
        let entry = PD + (chunk / GIB1) * KIB4 + (chunk % GIB1) / MIB2 * 8;
        if chunk + MIB2 <= ram_end && chunk != 0 {
            area.put_u64(entry, chunk | table | LARGE);
        } else {
            let pt = if chunk == 0 { PT_LOW } else { PT_HIGH };
            area.put_u64(entry, pt | table);
            let mut page = chunk;
            while page < ram_end.min(chunk + MIB2) {
                let system = (SYSTEM_AREA..SYSTEM_AREA_END).contains(&page);
                let flags = if system { table & !USER } else { table };
                area.put_u64(pt + (page - chunk) / KIB4 * 8, page | flags);
                page += KIB4;
            }
        }
        chunk += MIB2;
    }
    // Past the end of RAM: the device window (CPL 3 may reach it: the MMIO console) and the
    // local APIC (CPL 0 only: the program must not reprogram the interrupt controller).
    for (device, flags) in [(DEVICE_WINDOW, table), (LAPIC, table & !USER)] {
        if ram_end <= device {
            let entry = PD + (device / GIB1) * KIB4 + (device % GIB1) / MIB2 * 8;
            area.put_u64(entry, device | flags | LARGE | UNCACHED);
        }
    }
    for gib in 0..PD_COUNT {
        let used = gib * GIB1 < ram_end || [DEVICE_WINDOW, LAPIC].iter().any(|d| d / GIB1 == gib);
        if used {
            area.put_u64(PDPT + gib * 8, (PD + gib * KIB4) | table);
        }
    }
}

/// Writes the 32-bit page directory (4 MiB pages) identity-mapping `[0, ram_end)` rounded up
/// to 4 MiB, and the device window.
pub fn identity_map_32bit(area: &mut SystemArea, ram_end: u64) {
    let page = PRESENT | WRITABLE | LARGE;
    let mut base = 0;
    while base < ram_end {
        area.put(
            PML4 + base / MIB4 * 4,
            &((base | page) as u32).to_le_bytes(),
        );
        base += MIB4;
    }
    let window = DEVICE_WINDOW | page | UNCACHED;
    area.put(
        PML4 + DEVICE_WINDOW / MIB4 * 4,
        &(window as u32).to_le_bytes(),
    );
}

/// The physical address `virt` maps to in the 4-level tables of `area`, and whether CPL 3
/// may reach it: a page walk, for tests and `--explain`.
pub fn walk_4level(area: &SystemArea, virt: u64) -> Option<(u64, bool)> {
    let index = |shift: u32| (virt >> shift) & 0x1FF;
    let pml4e = area.u64_at(PML4 + index(39) * 8);
    let pdpte = present(pml4e).then(|| area.u64_at(frame(pml4e) + index(30) * 8))?;
    let pde = present(pdpte).then(|| area.u64_at(frame(pdpte) + index(21) * 8))?;
    let user = |entries: &[u64]| entries.iter().all(|e| e & USER != 0);
    if !present(pde) {
        return None;
    }
    if pde & LARGE != 0 {
        return Some((frame(pde) + virt % MIB2, user(&[pml4e, pdpte, pde])));
    }
    let pte = area.u64_at(frame(pde) + index(12) * 8);
    present(pte).then(|| (frame(pte) + virt % KIB4, user(&[pml4e, pdpte, pde, pte])))
}

fn present(entry: u64) -> bool {
    entry & PRESENT != 0
}

/// The address bits of an entry (a 2 MiB page's low bits are zero anyway).
fn frame(entry: u64) -> u64 {
    entry & 0x000F_FFFF_FFFF_F000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(ram_end: u64, user: bool) -> SystemArea {
        let mut area = SystemArea::default();
        identity_map_4level(&mut area, ram_end, user);
        area
    }

    #[test]
    fn one_mib_maps_every_page_and_nothing_past_it() {
        let area = map(0x10_0000, true);
        for page in (0..0x10_0000).step_by(0x1000) {
            let system = (0x9_0000..0xA_0000).contains(&page);
            assert_eq!(
                walk_4level(&area, page + 0x123),
                Some((page + 0x123, !system))
            );
        }
        assert_eq!(walk_4level(&area, 0x10_0000), None);
        assert_eq!(walk_4level(&area, 0x4000_0000), None);
        assert_eq!(walk_4level(&area, 0xD000_0008), Some((0xD000_0008, true)));
        assert_eq!(walk_4level(&area, 0xD020_0000), None);
        assert_eq!(walk_4level(&area, 0xFEE0_00B0), Some((0xFEE0_00B0, false)));
        assert_eq!(walk_4level(&area, 0xFEDF_F000), None);
        assert_eq!(walk_4level(&area, 0xFF00_0000), None);
        let lapic = PD + 3 * 0x1000 + (0xFEE0_0000 % (1 << 30)) / 0x20_0000 * 8;
        assert_eq!(area.u64_at(lapic), 0xFEE0_0000 | 0x9B);
    }

    #[test]
    fn large_ram_uses_2mib_pages_and_a_table_for_the_partial_end() {
        // 5 MiB + 4 KiB: chunk 0 by PT_LOW, chunk 1 a 2 MiB page, chunk 2 (partly RAM) by
        // PT_HIGH.
        let ram_end = 0x50_1000;
        let area = map(ram_end, false);
        assert_eq!(area.u64_at(PD), PT_LOW | 0x3);
        assert_eq!(area.u64_at(PD + 8), 0x20_0000 | 0x83);
        assert_eq!(area.u64_at(PD + 16), PT_HIGH | 0x3);
        assert_eq!(area.u64_at(PD + 24), 0);
        assert_eq!(walk_4level(&area, 0x50_0FFF), Some((0x50_0FFF, false)));
        assert_eq!(walk_4level(&area, 0x50_1000), None);
        assert_eq!(walk_4level(&area, 0x9_0000), Some((0x9_0000, false)));
    }

    #[test]
    fn four_gib_fills_every_directory() {
        let area = map(4 << 30, false);
        for gib in 0..4u64 {
            assert_eq!(area.u64_at(PDPT + gib * 8), (PD + gib * 0x1000) | 0x3);
        }
        assert_eq!(walk_4level(&area, 0xFFFF_FFFF), Some((0xFFFF_FFFF, false)));
        assert_eq!(walk_4level(&area, 0xD000_0000), Some((0xD000_0000, false)));
        assert_eq!(walk_4level(&area, 1 << 32), None);
    }

    #[test]
    fn the_32bit_directory_maps_4mib_pages() {
        let mut area = SystemArea::default();
        identity_map_32bit(&mut area, 0x50_0000);
        assert_eq!(area.u64_at(PML4) & 0xFFFF_FFFF, 0x83);
        assert_eq!(area.u64_at(PML4 + 4) & 0xFFFF_FFFF, 0x40_0083);
        assert_eq!(area.u64_at(PML4 + 8) & 0xFFFF_FFFF, 0);
        assert_eq!(area.u64_at(PML4 + 0xD00) & 0xFFFF_FFFF, 0xD000_009B);
    }
}
