//! Guest physical memory as the host sees it: the memory slots of one VM, and host reads and
//! writes by guest physical address.
//!
//! Every access goes through [`GuestMemory::read`] or [`GuestMemory::write`]: find the one
//! region that holds `[gpa, gpa + len)` (checked arithmetic), then a bounds-checked volatile
//! copy in the region's mapping (`sys::memory::Mapping`). No Rust reference into guest RAM is ever made, because a running vCPU
//! may write it at any moment.

use std::sync::Arc;

use rawkvm_bindings::MemoryRegionFlags;

use crate::error::Error;
use crate::sys::memory::{Mapping, OutOfBounds};

/// One memory slot: a range of guest physical addresses backed by host memory.
#[derive(Debug, Clone)]
pub struct Region {
    /// The KVM slot number.
    pub slot: u32,
    /// First guest physical address.
    pub guest_phys_addr: u64,
    /// `KVM_MEM_*` flags the slot was registered with.
    pub flags: MemoryRegionFlags,
    pub(crate) mapping: Arc<Mapping>,
}

impl Region {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.mapping.len() as u64
    }

    /// One past the last guest physical address (saturating: a region is checked not to wrap
    /// when it is added, and this stays total regardless).
    pub fn end(&self) -> u64 {
        self.guest_phys_addr.saturating_add(self.size())
    }

    /// The offset of `[gpa, gpa + len)` inside this region, if it lies wholly inside.
    fn offset_of(&self, gpa: u64, len: u64) -> Option<usize> {
        let offset = gpa.checked_sub(self.guest_phys_addr)?;
        let end = offset.checked_add(len)?;
        (end <= self.size()).then_some(usize::try_from(offset).ok()?)
    }
}

/// The memory slots of a VM, sorted by guest physical address.
#[derive(Debug, Default)]
pub struct GuestMemory {
    regions: Vec<Region>,
}

impl GuestMemory {
    /// The regions, sorted by guest physical address.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    pub(crate) fn insert(&mut self, region: Region) -> &Region {
        let at = self
            .regions
            .partition_point(|r| r.guest_phys_addr < region.guest_phys_addr);
        self.regions.insert(at, region);
        &self.regions[at]
    }

    /// Finds the one region holding all of `[gpa, gpa + len)` and runs `access` on its
    /// mapping at the offset of `gpa`. The mapping checks the range again where it copies.
    fn access<T>(
        &self,
        gpa: u64,
        len: usize,
        access: impl FnOnce(&Mapping, usize) -> Result<T, OutOfBounds>,
    ) -> Result<T, Error> {
        let not_inside = || Error::GuestMemoryRange {
            guest_phys_addr: gpa,
            len: len as u64,
        };
        let index = self.regions.partition_point(|r| r.guest_phys_addr <= gpa);
        let region = index
            .checked_sub(1)
            .map(|i| &self.regions[i])
            .ok_or_else(not_inside)?;
        let offset = region.offset_of(gpa, len as u64).ok_or_else(not_inside)?;
        access(&region.mapping, offset).map_err(|_| not_inside())
    }

    /// Copies `buf.len()` bytes of guest memory starting at `gpa` into `buf`.
    pub fn read(&self, gpa: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.access(gpa, buf.len(), |mapping, offset| mapping.read(offset, buf))
    }

    /// Copies `data` into guest memory starting at `gpa` (read-only slots included: the host
    /// may always write).
    pub fn write(&self, gpa: u64, data: &[u8]) -> Result<(), Error> {
        self.access(gpa, data.len(), |mapping, offset| {
            mapping.write(offset, data)
        })
    }

    /// Copies `buf.len()` 64-bit words of guest memory starting at `gpa` (a multiple of 8)
    /// into `buf`: eight times fewer loads than [`GuestMemory::read`] makes.
    pub fn read_words(&self, gpa: u64, buf: &mut [u64]) -> Result<(), Error> {
        let len = buf.len().saturating_mul(size_of::<u64>());
        self.access(gpa, len, |mapping, offset| mapping.read_words(offset, buf))
    }

    /// Copies `words` into guest memory starting at `gpa` (a multiple of 8) as 64-bit words:
    /// eight times fewer stores than [`GuestMemory::write`] makes.
    pub fn write_words(&self, gpa: u64, words: &[u64]) -> Result<(), Error> {
        let len = words.len().saturating_mul(size_of::<u64>());
        self.access(gpa, len, |mapping, offset| {
            mapping.write_words(offset, words)
        })
    }

    /// Sets `len` bytes of guest memory starting at `gpa` to `byte`.
    pub fn fill(&self, gpa: u64, len: usize, byte: u8) -> Result<(), Error> {
        self.access(gpa, len, |mapping, offset| mapping.fill(offset, len, byte))
    }

    /// Reads a little-endian `u32` at `gpa`.
    pub fn read_u32(&self, gpa: u64) -> Result<u32, Error> {
        let mut bytes = [0; 4];
        self.read(gpa, &mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    /// Writes a little-endian `u32` at `gpa`.
    pub fn write_u32(&self, gpa: u64, value: u32) -> Result<(), Error> {
        self.write(gpa, &value.to_le_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two regions with a hole between them: [0x1000, 0x3000) and [0x4000, 0x5000).
    fn memory() -> GuestMemory {
        let mut memory = GuestMemory::default();
        for (slot, guest_phys_addr, len) in [(1, 0x4000, 0x1000), (0, 0x1000, 0x2000)] {
            memory.insert(Region {
                slot,
                guest_phys_addr,
                flags: MemoryRegionFlags::empty(),
                mapping: Arc::new(Mapping::anonymous(len).unwrap()),
            });
        }
        memory
    }

    #[test]
    fn accesses_inside_one_region_work_and_land_where_they_should() {
        let memory = memory();
        assert_eq!(
            memory.regions().iter().map(|r| r.slot).collect::<Vec<_>>(),
            [0, 1],
            "sorted by address"
        );
        memory.write(0x2FFC, b"abcd").unwrap();
        memory.write_u32(0x4000, 0x1234_5678).unwrap();
        let mut bytes = [0; 4];
        memory.read(0x2FFC, &mut bytes).unwrap();
        assert_eq!(&bytes, b"abcd");
        assert_eq!(memory.read_u32(0x4000).unwrap(), 0x1234_5678);
        memory.fill(0x1000, 0x2000, 0xA5).unwrap();
        assert_eq!(memory.read_u32(0x2FFC).unwrap(), 0xA5A5_A5A5);
        memory.read(0x1000, &mut []).unwrap();
    }

    #[test]
    fn accesses_that_leave_a_region_are_refused() {
        let memory = memory();
        let mut four = [0; 4];
        for gpa in [
            0x0FFF,       // starts before the first region
            0x2FFD,       // runs one byte past the first region
            0x3000,       // in the hole
            0x4FFD,       // runs past the second region
            0x5000,       // after everything
            u64::MAX - 1, // gpa + len overflows
            u64::MAX,     // likewise
        ] {
            match memory.read(gpa, &mut four) {
                Err(Error::GuestMemoryRange {
                    guest_phys_addr,
                    len: 4,
                }) => assert_eq!(guest_phys_addr, gpa),
                other => panic!("{gpa:#x}: {other:?}"),
            }
            assert!(memory.write(gpa, &four).is_err(), "{gpa:#x}");
        }
        // A range spanning the hole is refused even though both ends are backed.
        assert!(memory.fill(0x2000, 0x3000, 0).is_err());
        assert!(memory.fill(0x1000, usize::MAX, 0).is_err());
        // Nothing was written by the refused accesses.
        assert_eq!(memory.read_u32(0x2FFC).unwrap(), 0);
    }
}
