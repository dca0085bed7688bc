//! Coalesced I/O: writes to a range a device declares write-only and order-insensitive are
//! recorded by the kernel in a ring, without an exit, and handed to the device later, in order.
//!
//! ```text
//! ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_MMIO)  page of the ring in each vCPU
//!                                                          mapping (2 on x86); 0: no ring
//! ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_COALESCED_PIO)   port zones too
//! ioctl(vm, KVM_REGISTER_COALESCED_MMIO, &{ addr, size, pio })   once per zone
//! loop {
//!     ioctl(vcpu, KVM_RUN, 0)          any exit, or -1 EINTR
//!     drain the ring, oldest first     entries = writes made before this exit
//!     handle the exit
//! }
//! ```
//!
//! A coalesced write costs the kernel a small fraction of what an exit costs (`docs/BACKEND.md`,
//! "Measured costs"). The ring is one page: with 4 KiB pages it holds 170 entries, 169
//! usable (682 with 16 KiB pages, 2730 with 64 KiB): when it is full the kernel
//! turns the next write into an ordinary exit. Draining before *every* exit is handled (the
//! full-ring one included, and `EINTR`) is what keeps the device's view in program order, so
//! console bytes come out exactly as they would without coalescing.
//!
//! The ring belongs to the VM and is shared by every vCPU (`sys::run_page::CoalescedRing`
//! serialises the consumers); it is read in place and checked like every other field the
//! kernel writes (`first`, `last`, each entry's `len` and port). A kernel without the
//! capabilities simply keeps the zones as ordinary exits.

use std::io;

use rawkvm_bindings::{self as abi, kvm_coalesced_mmio_zone};

use crate::devices::{IoHandler, Space, WriteOnlyZone};
use crate::error::{ConfigError, Error};
use crate::kvm::vm::Vm;
use crate::sys::ring::ring_offset;
use crate::sys::run_page::{CoalescedRing, DrainError, RingEntry};

/// What the kernel can coalesce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// MMIO zones: `KVM_CAP_COALESCED_MMIO` > 0 and the vCPU mapping holds the ring page.
    pub mmio: bool,
    /// Port zones: `KVM_CAP_COALESCED_PIO`, on top of `mmio`.
    pub pio: bool,
}

impl Support {
    /// Nothing: every write exits. What a kernel without the capabilities gives, and what
    /// `rawkvm run --no-coalesce` asks for.
    pub const NONE: Support = Support {
        mmio: false,
        pio: false,
    };

    /// What `vm`'s kernel offers, and its vCPUs' run loops can drain: a kernel whose ring
    /// page lies outside the vCPU mapping (`KVM_GET_VCPU_MMAP_SIZE`) gets nothing, so no zone
    /// is registered that no run loop would ever drain.
    pub fn of(vm: &Vm) -> Support {
        // The same test `RunMapping` makes when it looks for the ring in each vCPU's mapping.
        let mmio = ring_offset(vm.coalesced_ring_page(), vm.vcpu_mmap_size()).is_some();
        Support {
            mmio,
            pio: mmio && vm.check_extension(abi::KVM_CAP_COALESCED_PIO) > 0,
        }
    }

    /// Whether writes to `zone` can be coalesced.
    pub fn covers(&self, zone: &WriteOnlyZone) -> bool {
        match zone.space {
            Space::Memory => self.mmio,
            Space::Port => self.pio,
        }
    }
}

/// The outcome of [`register`]: which zones now coalesce and which still exit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Registered {
    /// Zones registered with `KVM_REGISTER_COALESCED_MMIO`.
    pub coalesced: Vec<WriteOnlyZone>,
    /// Zones left as ordinary exits (the kernel cannot coalesce them).
    pub exiting: Vec<WriteOnlyZone>,
}

/// Registers every zone in `zones` that `support` covers with `KVM_REGISTER_COALESCED_MMIO`;
/// the rest keep exiting, which is always correct, only slower. Call it before the vCPUs run:
/// a run loop looks for the ring when it starts.
pub fn register(vm: &Vm, zones: &[WriteOnlyZone], support: Support) -> Result<Registered, Error> {
    let mut registered = Registered::default();
    for zone in zones {
        let end = zone.start.checked_add(u64::from(zone.len));
        let fits = match zone.space {
            Space::Port => end.is_some_and(|end| end <= 0x1_0000),
            Space::Memory => end.is_some(),
        };
        if !fits {
            return Err(Error::Config(ConfigError::ZoneOutOfSpace {
                space: match zone.space {
                    Space::Port => "Port",
                    Space::Memory => "Memory",
                },
                start: zone.start,
                len: zone.len,
            }));
        }
        if !support.covers(zone) || zone.len == 0 {
            registered.exiting.push(*zone);
            continue;
        }
        let request = kvm_coalesced_mmio_zone {
            addr: zone.start,
            size: zone.len,
            pio: u32::from(zone.space == Space::Port),
        };
        vm.register_coalesced_zone(&request)?;
        registered.coalesced.push(*zone);
    }
    Ok(registered)
}

/// Registers the zones `handler` declares ([`IoHandler::write_only_zones`]).
pub fn register_declared<H: IoHandler + ?Sized>(
    vm: &Vm,
    handler: &H,
    support: Support,
) -> Result<Registered, Error> {
    register(vm, handler.write_only_zones(), support)
}

/// Hands `entry` to `handler` as the write it stands for.
fn deliver<H: IoHandler + ?Sized>(handler: &mut H, entry: RingEntry) -> io::Result<()> {
    if entry.pio {
        // `CoalescedRing` refused port entries above 0xFFFF.
        let port = u16::try_from(entry.phys_addr).unwrap_or(u16::MAX);
        handler.pio_write(port, entry.data()).map(drop)
    } else {
        handler.mmio_write(entry.phys_addr, entry.data()).map(drop)
    }
}

/// Drains `ring` into `handler`, oldest write first; returns how many writes it delivered.
pub(crate) fn drain<H: IoHandler + ?Sized>(
    ring: &CoalescedRing,
    handler: &mut H,
    vcpu: u32,
) -> Result<usize, Error> {
    if ring.is_empty() {
        return Ok(0);
    }
    ring.drain(|entry| deliver(handler, entry))
        .map_err(|error| match error {
            DrainError::Ring(error) => Error::CoalescedRing { vcpu, error },
            DrainError::Consumer(error) => Error::Console(error),
        })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use rawkvm_bindings::{kvm_coalesced_mmio, kvm_coalesced_mmio_ring};

    use super::*;
    use crate::devices::{DEBUG_CONSOLE_PORT, Devices};
    use crate::sys::memory::Mapping;
    use crate::sys::ring::ring_entries;
    use crate::sys::run_page::{RingError, RunMapping};

    const MAX: u32 = abi::KVM_COALESCED_MMIO_MAX as u32;

    /// A stand-in for a 3-page vCPU mapping whose page 2 is the ring, written as the kernel
    /// would.
    struct FakeRing {
        run: Arc<RunMapping>,
        ring: CoalescedRing,
        /// Offset of the ring page.
        at: usize,
        /// Entries in the ring.
        max: u32,
    }

    impl FakeRing {
        /// With 4 KiB pages, as on x86.
        fn new() -> FakeRing {
            FakeRing::with_page(4096)
        }

        /// With pages of `page` bytes, as on an arm64 or ppc64le host.
        fn with_page(page: usize) -> FakeRing {
            let mapping = Mapping::anonymous(3 * page).unwrap();
            let run = Arc::new(RunMapping::for_tests(mapping, Some(2), page));
            let ring = run.coalesced_ring(&Arc::new(Mutex::new(()))).unwrap();
            let max = ring_entries(page) as u32;
            FakeRing {
                run,
                ring,
                at: 2 * page,
                max,
            }
        }

        fn mapping(&self) -> &Mapping {
            self.run.mapping_for_tests()
        }

        fn set_indices(&self, first: u32, last: u32) {
            let mapping = self.mapping();
            mapping.write(self.at, &first.to_ne_bytes()).unwrap();
            mapping.write(self.at + 4, &last.to_ne_bytes()).unwrap();
        }

        fn indices(&self) -> (u32, u32) {
            let mut bytes = [0; 8];
            self.mapping().read(self.at, &mut bytes).unwrap();
            let word = |i: usize| u32::from_ne_bytes(bytes[i..i + 4].try_into().unwrap());
            (word(0), word(4))
        }

        fn put(&self, index: u32, addr: u64, pio: bool, data: &[u8]) {
            let mut raw = [0u8; size_of::<kvm_coalesced_mmio>()];
            raw[..8].copy_from_slice(&addr.to_ne_bytes());
            raw[8..12].copy_from_slice(&(data.len() as u32).to_ne_bytes());
            raw[12..16].copy_from_slice(&u32::from(pio).to_ne_bytes());
            raw[16..16 + data.len().min(8)].copy_from_slice(&data[..data.len().min(8)]);
            let at = self.at
                + size_of::<kvm_coalesced_mmio_ring>()
                + index as usize * size_of::<kvm_coalesced_mmio>();
            self.mapping().write(at, &raw).unwrap();
        }

        /// Appends bytes to port 0xE9 starting at `last`, as the kernel does.
        fn push_console(&self, bytes: &[u8]) {
            let (first, mut last) = self.indices();
            for &byte in bytes {
                self.put(last, u64::from(DEBUG_CONSOLE_PORT), true, &[byte]);
                last = (last + 1) % self.max;
            }
            self.set_indices(first, last);
        }

        fn drain(&self, devices: &mut Devices<Vec<u8>>) -> Result<usize, Error> {
            drain(&self.ring, devices, 0)
        }
    }

    fn console(devices: Devices<Vec<u8>>) -> Vec<u8> {
        devices.console.into_sink().unwrap()
    }

    #[test]
    fn entries_are_delivered_in_order_across_the_wrap_and_first_catches_up() {
        let fake = FakeRing::new();
        fake.set_indices(MAX - 3, MAX - 3);
        fake.push_console(b"wrap!");
        assert_eq!(fake.indices(), (MAX - 3, 2));
        let mut devices = Devices::new(Vec::new());
        assert_eq!(fake.drain(&mut devices).unwrap(), 5);
        assert_eq!(fake.indices(), (2, 2), "first advanced past every entry");
        assert_eq!(fake.drain(&mut devices).unwrap(), 0, "empty now");
        assert_eq!(console(devices), b"wrap!");
    }

    #[test]
    fn the_ring_holds_as_many_entries_as_the_page_size_allows() {
        assert_eq!(ring_entries(4096), 170);
        assert_eq!(ring_entries(16 * 1024), 682);
        assert_eq!(ring_entries(64 * 1024), 2730);
        assert_eq!(ring_entries(4096), abi::KVM_COALESCED_MMIO_MAX);
    }

    /// With 16 and 64 KiB pages the kernel wraps at 682 and 2730, not 170: indices past 170
    /// are valid, and the wrap comes where the kernel's does.
    #[test]
    fn rings_of_larger_pages_wrap_at_their_own_count() {
        for page in [16 * 1024, 64 * 1024] {
            let fake = FakeRing::with_page(page);
            let max = fake.max;
            fake.set_indices(max - 3, max - 3);
            fake.push_console(b"wrap!");
            assert_eq!(fake.indices(), (max - 3, 2), "{page}");
            let mut devices = Devices::new(Vec::new());
            assert_eq!(fake.drain(&mut devices).unwrap(), 5, "{page}");
            assert_eq!(fake.indices(), (2, 2), "{page}");
            assert_eq!(console(devices), b"wrap!", "{page}");
            fake.set_indices(max, 0);
            let error = fake.drain(&mut Devices::new(Vec::new()));
            assert!(
                matches!(error, Err(Error::CoalescedRing { error: RingError::First(first), .. }) if first == max),
                "{page}: {error:?}"
            );
        }
    }

    #[test]
    fn the_ring_is_found_only_when_the_mapping_holds_its_whole_page() {
        let page = crate::sys::memory::page_size();
        assert_eq!(ring_offset(Some(2), 3 * page), Some(2 * page));
        assert_eq!(ring_offset(Some(2), 4 * page), Some(2 * page));
        assert_eq!(ring_offset(Some(2), 3 * page - 1), None, "page 2 cut short");
        assert_eq!(ring_offset(Some(3), 3 * page), None, "past the mapping");
        assert_eq!(ring_offset(None, 3 * page), None, "no ring");
        assert_eq!(ring_offset(Some(usize::MAX), 3 * page), None, "overflow");
        let short = RunMapping::new(Mapping::anonymous(2 * page).unwrap(), Some(2));
        assert!(
            Arc::new(short).coalesced_ring(&Arc::default()).is_none(),
            "Support::of and the run loop agree: no ring page, nothing to drain"
        );
    }

    #[test]
    fn a_full_ring_drains_its_169_entries() {
        let fake = FakeRing::new();
        let bytes: Vec<u8> = (0..MAX - 1).map(|i| b'a' + (i % 26) as u8).collect();
        fake.push_console(&bytes);
        assert_eq!(
            fake.indices(),
            (0, MAX - 1),
            "full: last is one behind first"
        );
        let mut devices = Devices::new(Vec::new());
        assert_eq!(fake.drain(&mut devices).unwrap(), 169);
        assert_eq!(console(devices), bytes);
    }

    #[test]
    fn mmio_and_wide_port_entries_reach_the_handler_as_written() {
        #[derive(Default)]
        struct Log(Vec<(bool, u64, Vec<u8>)>);
        impl IoHandler for Log {
            fn pio_read(&mut self, _: u16, _: &mut [u8]) -> io::Result<crate::devices::bus::Claim> {
                unreachable!("the ring only holds writes")
            }
            fn pio_write(
                &mut self,
                port: u16,
                data: &[u8],
            ) -> io::Result<crate::devices::bus::Claim> {
                self.0.push((true, u64::from(port), data.to_vec()));
                Ok(crate::devices::bus::Claim::Claimed)
            }
            fn mmio_read(
                &mut self,
                _: u64,
                _: &mut [u8],
            ) -> io::Result<crate::devices::bus::Claim> {
                unreachable!("the ring only holds writes")
            }
            fn mmio_write(
                &mut self,
                addr: u64,
                data: &[u8],
            ) -> io::Result<crate::devices::bus::Claim> {
                self.0.push((false, addr, data.to_vec()));
                Ok(crate::devices::bus::Claim::Claimed)
            }
        }
        let fake = FakeRing::new();
        fake.put(0, 0x10_0000, false, &[1, 2, 3, 4, 5, 6, 7, 8]);
        fake.put(1, 0x510, true, &[0xAA, 0xBB]);
        fake.set_indices(0, 2);
        let mut log = Log::default();
        assert_eq!(drain(&fake.ring, &mut log, 0).unwrap(), 2);
        assert_eq!(
            log.0,
            vec![
                (false, 0x10_0000, vec![1, 2, 3, 4, 5, 6, 7, 8]),
                (true, 0x510, vec![0xAA, 0xBB])
            ]
        );
    }

    #[test]
    fn bad_indices_lengths_and_ports_are_named_and_leave_first_alone() {
        let mut devices = Devices::new(Vec::new());
        let ring_error = |result: Result<usize, Error>| match result {
            Err(Error::CoalescedRing { vcpu: 0, error }) => error,
            other => panic!("{other:?}"),
        };
        let fake = FakeRing::new();
        fake.set_indices(MAX, 0);
        assert_eq!(ring_error(fake.drain(&mut devices)), RingError::First(MAX));
        fake.set_indices(0, u32::MAX);
        assert_eq!(
            ring_error(fake.drain(&mut devices)),
            RingError::Last(u32::MAX)
        );
        for len in [0usize, 9] {
            let fake = FakeRing::new();
            fake.put(0, 0xE9, true, &[b'x'; 9][..len]);
            fake.set_indices(0, 1);
            let expected = RingError::EntryLen {
                index: 0,
                len: len as u32,
            };
            assert_eq!(ring_error(fake.drain(&mut devices)), expected);
            assert_eq!(fake.indices(), (0, 1), "the bad entry was not consumed");
        }
        let fake = FakeRing::new();
        fake.put(0, 0x1_0000, true, b"x");
        fake.set_indices(0, 1);
        let expected = RingError::Port {
            index: 0,
            phys_addr: 0x1_0000,
        };
        assert_eq!(ring_error(fake.drain(&mut devices)), expected);
        assert!(console(devices).is_empty());
    }

    #[test]
    fn zones_the_kernel_cannot_coalesce_are_left_exiting() {
        let port = WriteOnlyZone {
            space: Space::Port,
            start: 0xE9,
            len: 1,
        };
        let memory = WriteOnlyZone {
            space: Space::Memory,
            start: 0x10_0000,
            len: 8,
        };
        let mmio_only = Support {
            mmio: true,
            pio: false,
        };
        assert!(!mmio_only.covers(&port) && mmio_only.covers(&memory));
        assert!(!Support::NONE.covers(&port) && !Support::NONE.covers(&memory));
    }
}
