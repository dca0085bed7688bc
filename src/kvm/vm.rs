//! The VM level: memory slots and vCPUs.
//!
//! ```text
//! vm = ioctl(kvm, KVM_CREATE_VM, 0)
//! ram = mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0)
//! ioctl(vm, KVM_SET_USER_MEMORY_REGION, &{ slot, flags, guest_phys_addr, size, ram })
//! vcpu = ioctl(vm, KVM_CREATE_VCPU, id)
//! run = mmap(NULL, KVM_GET_VCPU_MMAP_SIZE, PROT_READ|PROT_WRITE, MAP_SHARED, vcpu, 0)
//! ```
//!
//! Teardown happens in the reverse order, whatever the order the values are dropped in: a
//! [`Vcpu`] unmaps `kvm_run` and closes its fd first; the VM fd is closed when the `Vm` and
//! every `Vcpu` are gone; guest RAM is unmapped after that (see `src/sys/ioctl.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rawkvm_bindings::{self as abi, MemoryRegionFlags};

use crate::error::{Error, RegionProblem};
use crate::kvm::memory::{GuestMemory, Region};
use crate::kvm::vcpu::Vcpu;
pub use crate::sys::ioctl::DirtyLogError;
use crate::sys::ioctl::{CreateVcpuError, VmFd, vm};
use crate::sys::memory::Mapping;
use crate::sys::memory::page_size;

/// A memory slot to create: `size` bytes of fresh anonymous memory at `guest_phys_addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryRegion {
    /// The KVM slot number (below `KVM_CAP_NR_MEMSLOTS`).
    pub slot: u32,
    /// First guest physical address; a multiple of the page size.
    pub guest_phys_addr: u64,
    /// Size in bytes; a non-zero multiple of the page size.
    pub size: u64,
    /// `KVM_MEM_LOG_DIRTY_PAGES`, `KVM_MEM_READONLY`.
    pub flags: MemoryRegionFlags,
}

/// What the VM has, for the ordering rules; shared by `&self` methods, so atomics.
#[derive(Debug, Default)]
pub(crate) struct IrqState {
    pub(crate) irqchip: AtomicBool,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // the PIT is x86's
    pub(crate) pit: AtomicBool,
    pub(crate) vcpus: AtomicU32,
    /// GSIs are below this (the routing table's highest GSI + 1), once there is a chip.
    pub(crate) gsi_limit: AtomicU32,
}

impl IrqState {
    /// Counts a vCPU made (the irqchip must come before the first).
    pub(crate) fn vcpu_created(&self) {
        self.vcpus.fetch_add(1, Ordering::SeqCst);
    }
}

/// A virtual machine: its fd, its memory, and what is needed to make vCPUs.
#[derive(Debug)]
pub struct Vm {
    fd: Arc<VmFd>,
    memory: GuestMemory,
    vcpu_mmap_size: usize,
    coalesced_ring_page: Option<usize>,
    max_vcpus: Option<u32>,
    nr_memslots: Option<u32>,
    /// Irqchip, PIT and vCPU count, for the ordering rules (`crate::kvm::irq`).
    pub(crate) irq: IrqState,
}

/// What the system fd knows that every VM needs: the answers to the system-level
/// `KVM_CHECK_EXTENSION`s and `KVM_GET_VCPU_MMAP_SIZE`, asked once per [`Kvm`](crate::kvm::Kvm).
#[derive(Debug, Clone, Copy)]
pub(crate) struct VmCaps {
    /// `KVM_GET_VCPU_MMAP_SIZE`.
    pub(crate) vcpu_mmap_size: usize,
    /// `KVM_CAP_COALESCED_MMIO`: the ring's page in the vCPU mapping, or 0.
    pub(crate) coalesced_mmio: i32,
    /// `KVM_CAP_MAX_VCPUS`.
    pub(crate) max_vcpus: i32,
    /// `KVM_CAP_NR_MEMSLOTS`.
    pub(crate) nr_memslots: i32,
}

impl Vm {
    pub(crate) fn new(fd: Arc<VmFd>, caps: VmCaps) -> Vm {
        let positive = |answer: i32| u32::try_from(answer).ok().filter(|&v| v > 0);
        Vm {
            fd,
            memory: GuestMemory::default(),
            vcpu_mmap_size: caps.vcpu_mmap_size,
            coalesced_ring_page: positive(caps.coalesced_mmio).map(|p| p as usize),
            max_vcpus: positive(caps.max_vcpus),
            nr_memslots: positive(caps.nr_memslots),
            irq: IrqState::default(),
        }
    }

    /// The VM fd, for the VM-level ioctls of other modules (the machine-state ones of
    /// `arch::x86_64::state`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.fd()
    }

    /// The VM's memory slots, for host reads and writes by guest physical address.
    pub fn memory(&self) -> &GuestMemory {
        &self.memory
    }

    /// `ioctl(vm, KVM_GET_DIRTY_LOG, &{ slot, dirty_bitmap })`: one bit per page of `slot`
    /// (bit `i` of word `w`: page `64 w + i`) written since the last call, which clears the log.
    /// The slot must have been added with [`MemoryRegionFlags::LOG_DIRTY_PAGES`], and `bitmap`
    /// must hold [`Vm::dirty_bitmap_words`] words: both are checked before the kernel is asked.
    pub fn get_dirty_log(&self, slot: u32, bitmap: &mut [u64]) -> Result<(), DirtyLogError> {
        self.fd.get_dirty_log(slot, bitmap)
    }

    /// How many 64-bit words [`Vm::get_dirty_log`] needs for a slot of `size` bytes.
    pub fn dirty_bitmap_words(size: u64) -> usize {
        crate::sys::ioctl::dirty_bitmap_words(usize::try_from(size).unwrap_or(usize::MAX))
    }

    /// `ioctl(vm, KVM_REGISTER_COALESCED_MMIO, &zone)` (`zone.pio = 1`: ports, with
    /// `KVM_CAP_COALESCED_PIO`): from now on the kernel records guest writes inside the zone in
    /// each vCPU's coalesced ring instead of exiting, and every run loop started afterwards
    /// drains that ring after each `KVM_RUN` ([`crate::devices::coalesced`]).
    pub fn register_coalesced_zone(
        &self,
        zone: &abi::kvm_coalesced_mmio_zone,
    ) -> Result<(), Error> {
        self.fd
            .register_coalesced_zone(zone)
            .map_err(|errno| Error::Ioctl {
                ioctl: vm::REGISTER_COALESCED_MMIO.name,
                errno,
            })
    }

    /// `ioctl(vm, KVM_CHECK_EXTENSION, cap)` on the VM fd: the answer for this VM.
    pub fn check_extension(&self, cap: u32) -> i32 {
        vm::CHECK_EXTENSION
            .call(self.fd.fd(), libc::c_ulong::from(cap))
            .unwrap_or(0)
    }

    /// `ioctl(vm, KVM_ENABLE_CAP, &{ cap, args })`.
    pub fn enable_cap(&self, cap: u32, args: [u64; 4]) -> Result<(), Error> {
        let request = abi::kvm_enable_cap {
            cap,
            args,
            ..Default::default()
        };
        vm::ENABLE_CAP
            .call(self.fd.fd(), &request)
            .map(drop)
            .map_err(|errno| Error::Ioctl {
                ioctl: vm::ENABLE_CAP.name,
                errno,
            })
    }

    /// Maps fresh anonymous memory and hands it to the guest as a memory slot.
    ///
    /// The region is checked first (non-empty, page-aligned, no wrap, no overlap with an
    /// existing slot, slot number free and below `KVM_CAP_NR_MEMSLOTS`) so the common
    /// mistakes get a precise message instead of the kernel's bare `EINVAL`/`EEXIST`; what the
    /// kernel still refuses is [`Error::SetMemoryRegion`] with the errno explained.
    pub fn add_memory_region(&mut self, region: MemoryRegion) -> Result<&Region, Error> {
        self.add_memory_region_with(region, Mapping::anonymous)
    }

    /// [`Vm::add_memory_region`] with the slot's memory from `map` (given the length): a
    /// private mapping of a snapshot's memfd, for a fork.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // fork is x86-only
    pub(crate) fn add_memory_region_with(
        &mut self,
        region: MemoryRegion,
        map: impl FnOnce(usize) -> Result<Mapping, nix::errno::Errno>,
    ) -> Result<&Region, Error> {
        let MemoryRegion {
            slot,
            guest_phys_addr,
            size,
            flags,
        } = region;
        let invalid = |reason| Error::InvalidRegion {
            slot,
            guest_phys_addr,
            size,
            reason,
        };
        let page = page_size() as u64;
        if size == 0 {
            return Err(invalid(RegionProblem::Empty));
        }
        if guest_phys_addr % page != 0 || size % page != 0 {
            return Err(invalid(RegionProblem::Unaligned));
        }
        let end = guest_phys_addr
            .checked_add(size)
            .ok_or(invalid(RegionProblem::Wraps))?;
        if let Some(other) = self
            .memory
            .regions()
            .iter()
            .find(|r| r.guest_phys_addr < end && guest_phys_addr < r.end())
        {
            let (start, end) = (other.guest_phys_addr, other.end());
            return Err(invalid(RegionProblem::Overlaps {
                slot: other.slot,
                start,
                end,
            }));
        }
        if self.memory.regions().iter().any(|r| r.slot == slot) {
            return Err(invalid(RegionProblem::SlotInUse));
        }
        if let Some(limit) = self.nr_memslots.filter(|&limit| slot >= limit) {
            return Err(invalid(RegionProblem::SlotOutOfRange { limit }));
        }
        let len = usize::try_from(size).map_err(|_| invalid(RegionProblem::TooLarge))?;
        let mapping = Arc::new(map(len).map_err(|errno| Error::MapMemory { size, errno })?);
        self.fd
            .set_user_memory_region(slot, flags.bits(), guest_phys_addr, &mapping)
            .map_err(|errno| Error::SetMemoryRegion {
                slot,
                guest_phys_addr,
                size,
                errno,
            })?;
        Ok(self.memory.insert(Region {
            slot,
            guest_phys_addr,
            flags,
            mapping,
        }))
    }

    /// `ioctl(vm, KVM_CREATE_VCPU, id)` and the `mmap` of its `kvm_run` region.
    pub fn create_vcpu(&self, id: u32) -> Result<Vcpu, Error> {
        let size = self.vcpu_mmap_size;
        let fd = self
            .fd
            .create_vcpu(id, size, self.coalesced_ring_page)
            .map_err(|error| match error {
                CreateVcpuError::Create(errno) => Error::CreateVcpu {
                    id,
                    errno,
                    max_vcpus: self.max_vcpus,
                },
                CreateVcpuError::Map(errno) => Error::MapRun { id, size, errno },
                CreateVcpuError::MmapTooSmall(size) => Error::VcpuMmapSize {
                    size: Some(size),
                    errno: None,
                },
            })?;
        self.irq.vcpu_created();
        let mut vcpu = Vcpu::new(fd, id);
        vcpu.in_kernel_irqchip = self.has_irqchip();
        Ok(vcpu)
    }

    /// `ioctl(vm, KVM_GET_STATS_FD, 0)`: the VM's binary statistics file
    /// (`KVM_CAP_BINARY_STATS_FD`; see [`crate::trace::kernel_stats`]).
    pub fn stats_fd(&self) -> Result<std::fs::File, Error> {
        vm::GET_STATS_FD
            .call(self.fd.fd(), 0)
            .map(std::fs::File::from)
            .map_err(|errno| Error::Ioctl {
                ioctl: vm::GET_STATS_FD.name,
                errno,
            })
    }

    /// `KVM_CAP_COALESCED_MMIO`: the page of each vCPU mapping that holds the VM's
    /// coalesced ring, if the kernel has one.
    pub fn coalesced_ring_page(&self) -> Option<usize> {
        self.coalesced_ring_page
    }

    /// `KVM_GET_VCPU_MMAP_SIZE`: the size of each vCPU's `kvm_run` mapping.
    pub(crate) fn vcpu_mmap_size(&self) -> usize {
        self.vcpu_mmap_size
    }

    /// The VM fd, for the interrupt ioctls of the sibling module `kvm::irq` only.
    pub(super) fn irq_fd(&self) -> &Arc<VmFd> {
        &self.fd
    }

    /// `KVM_CAP_MAX_VCPUS`: the most vCPUs this VM may have, if the kernel says.
    pub fn max_vcpus(&self) -> Option<u32> {
        self.max_vcpus
    }

    /// `KVM_CAP_NR_MEMSLOTS`: slot numbers are below it, if the kernel says.
    pub fn nr_memslots(&self) -> Option<u32> {
        self.nr_memslots
    }
}

#[cfg(test)]
mod tests {
    use nix::errno::Errno;

    use super::*;

    /// What the kernel says when rawkvm's own checks are bypassed: the errno explained in the
    /// message (`docs/TEST-PLAN.md` §8 A 12 and 13).
    #[test]
    #[cfg_attr(
        miri,
        ignore = "opens /dev/kvm and makes ioctls, which Miri cannot run"
    )]
    fn the_kernels_own_refusals_are_explained() {
        if !std::path::Path::new(crate::kvm::DEFAULT_DEVICE).exists() {
            println!("SKIPPED: /dev/kvm unavailable (the_kernels_own_refusals_are_explained)");
            return;
        }
        let kvm = crate::kvm::Kvm::open().unwrap();
        let mut vm = kvm.create_vm().unwrap();
        let two_mib = 2 << 20;
        vm.add_memory_region(MemoryRegion {
            slot: 0,
            guest_phys_addr: 0,
            size: two_mib,
            flags: MemoryRegionFlags::empty(),
        })
        .unwrap();
        let mapping = Arc::new(Mapping::anonymous(two_mib as usize).unwrap());
        let refused = |slot, guest_phys_addr| {
            let errno = vm
                .fd
                .set_user_memory_region(slot, 0, guest_phys_addr, &mapping)
                .unwrap_err();
            Error::SetMemoryRegion {
                slot,
                guest_phys_addr,
                size: two_mib,
                errno,
            }
        };
        let overlap = refused(1, 1 << 20);
        assert!(matches!(
            overlap,
            Error::SetMemoryRegion {
                errno: Errno::EEXIST,
                ..
            }
        ));
        assert_eq!(
            overlap.to_string(),
            "KVM_SET_USER_MEMORY_REGION(slot 1, gpa 0x100000, size 0x200000) failed: EEXIST \
             (File exists) (the range overlaps an existing memory slot)"
        );
        let unaligned = refused(1, 0x800 + (8 << 20));
        assert!(matches!(
            unaligned,
            Error::SetMemoryRegion {
                errno: Errno::EINVAL,
                ..
            }
        ));
        assert!(
            unaligned
                .to_string()
                .ends_with("failed: EINVAL (Invalid argument) (guest_phys_addr, size and the host address must be page-aligned, the slot below KVM_CAP_NR_MEMSLOTS, the range must not wrap)"),
            "{unaligned}"
        );
        let slot_past_limit = refused(vm.nr_memslots().unwrap(), 8 << 20);
        assert!(matches!(
            slot_past_limit,
            Error::SetMemoryRegion {
                errno: Errno::EINVAL,
                ..
            }
        ));
        assert_eq!(overlap.kind(), crate::error::ErrorKind::Setup);
    }
}
