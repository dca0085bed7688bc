//! Fork: many new machines from one snapshot held in memory, guest RAM shared copy-on-write,
//! so a child starts without copying RAM.
//!
//! ```text
//! once (Snapshot::fork_image), per slot:
//!   memfd_create("rawkvm-fork", MFD_CLOEXEC); ftruncate(memfd, size)   a file of zeros
//!   pwrite(memfd, run, first_page * page)                              the stored pages
//! per child (ForkImage::spawn):
//!   KVM_CREATE_VM (+ user-space MSR exits, KVM_CREATE_IRQCHIP, the default GSI routes,
//!                  KVM_CREATE_PIT2 if saved)
//!   mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_NORESERVE, memfd, 0)
//!   KVM_SET_USER_MEMORY_REGION                                         the child's RAM: the
//!                                                                       file's pages until it
//!                                                                       writes one
//!   KVM_CREATE_VCPU, then the vCPU state as restore.rs sets it (TSC rate, exception-stub
//!   flag included); irqchip, PIT, clock; a user-space 8259 pair with the saved registers
//! ```
//!
//! The children share the page cache of the memfd for every page none of them wrote; a write
//! copies that page for the writer alone (the mapping is private), so siblings never see each
//! other. Unlike [`Snapshot::restore`] a spawn does not read everything back: it is the fast
//! path, and the same state was checked when the image's snapshot was restored once, if the
//! caller wants that.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;

use nix::sys::memfd::{MFdFlags, memfd_create};
use rawkvm_bindings::MemoryRegionFlags;

use super::SnapshotError;
use super::restore::{apply_vm, create_vcpus, create_vm, machine_of};
use super::state::Snapshot;
use crate::error::Error;
use crate::kvm::Kvm;
use crate::kvm::vm::MemoryRegion;
use crate::machine::Machine;
use crate::sys::memory::Mapping;
use crate::sys::state::words_as_bytes;

/// A snapshot ready to fork from: its state, and each slot's memory in a memfd.
#[derive(Debug)]
pub struct ForkImage {
    /// The snapshot with its page runs moved into the memfds (each slot's `runs` is empty).
    state: Snapshot,
    /// One memfd per slot, in `state.vm.slots` order.
    memory: Vec<File>,
}

impl Snapshot {
    /// Writes each slot's stored pages into a memfd of the slot's size; the image forks
    /// children that share them ([`ForkImage::spawn`]).
    pub fn fork_image(mut self) -> Result<ForkImage, Error> {
        let page = u64::from(self.origin.page_size);
        let mut memory = Vec::with_capacity(self.vm.slots.len());
        for slot in &mut self.vm.slots {
            let failed = |error: std::io::Error| SnapshotError::Memfd(error);
            let fd = memfd_create("rawkvm-fork", MFdFlags::MFD_CLOEXEC)
                .map_err(|errno| failed(errno.into()))?;
            let file = File::from(fd);
            file.set_len(slot.size).map_err(failed)?;
            for run in std::mem::take(&mut slot.runs) {
                file.write_all_at(words_as_bytes(&run.words), run.first_page * page)
                    .map_err(failed)?;
            }
            memory.push(file);
        }
        Ok(ForkImage {
            state: self,
            memory,
        })
    }
}

impl ForkImage {
    /// A new machine in the image's state, its RAM a private mapping of the image's memfds.
    pub fn spawn(&self, kvm: &Kvm) -> Result<Machine, Error> {
        let state = &self.state;
        state.check_fits_host(kvm)?;
        let mut vm = create_vm(kvm, state)?;
        for (slot, file) in state.vm.slots.iter().zip(&self.memory) {
            let flags =
                MemoryRegionFlags::from_bits(slot.flags).ok_or(SnapshotError::SlotFlags {
                    slot: slot.slot,
                    flags: slot.flags,
                })?;
            let region = MemoryRegion {
                slot: slot.slot,
                guest_phys_addr: slot.guest_phys_addr,
                size: slot.size,
                flags,
            };
            vm.add_memory_region_with(region, |len| Mapping::private_file(file.as_fd(), len))?;
        }
        let vcpus = create_vcpus(&vm, state)?;
        apply_vm(&vm, &state.vm)?;
        Ok(machine_of(vm, vcpus, state))
    }

    /// The snapshot the image forks (its slots' runs are in the memfds, not here).
    pub fn state(&self) -> &Snapshot {
        &self.state
    }
}
