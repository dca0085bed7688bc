//! Every `ioctl(2)` rawkvm makes, as one typed table, and the only calls to `libc::ioctl`.
//!
//! KVM is three file descriptors deep (api.rst, "2. File descriptors"):
//!
//! ```text
//! open("/dev/kvm")                    system fd   KVM_GET_API_VERSION, KVM_CREATE_VM, ...
//!   ioctl(kvm, KVM_CREATE_VM, 0)      VM fd       KVM_SET_USER_MEMORY_REGION, KVM_CREATE_VCPU, ...
//!     ioctl(vm, KVM_CREATE_VCPU, id)  vCPU fd     KVM_RUN, KVM_GET_REGS, ...
//!       mmap(vcpu, 0, mmap_size)      kvm_run     the page KVM_RUN reports exits in
//! ```
//!
//! An [`Ioctl`] pairs a request code from `rawkvm-bindings` (built with nix's `request_code_*!`
//! macros, so the size field comes from the Rust struct) with the way its argument travels.
//! The argument kind decides what `call` accepts, so a `KVM_GET_REGS` can only be handed a
//! `&mut kvm_regs`. Each constructor is `const` and checks, at compile time, that the size
//! encoded in the request equals `size_of::<T>()`.
//!
//! Two ioctls can break memory safety through what they *mean* rather than through their
//! argument, and they are not in the table as freely callable entries:
//!
//! * `KVM_SET_USER_MEMORY_REGION` lets the guest read and write a range of this process's
//!   memory for as long as the VM lives. [`VmFd::set_user_memory_region`] takes an
//!   `Arc<Mapping>` and keeps it until the VM fd is closed, and every [`VcpuFd`] (which also
//!   keeps the kernel's VM alive) holds an `Arc<VmFd>`. So the memory outlives every fd through
//!   which the kernel could use it (a `kvm_run` mapping kept by a stop handle can keep the
//!   kernel's VM itself alive longer, but unusable: see [`VcpuFd`]).
//! * `KVM_CREATE_VCPU` returns an fd that keeps the kernel's VM alive; [`VmFd::create_vcpu`] is
//!   the only way to make one, and it ties the fd to its `Arc<VmFd>`.
//!
//! And some take a struct holding a *pointer* the kernel reads or writes through, so the
//! buffer behind it is checked before the call:
//!
//! * `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`: the register id encodes the size; [`get_one_reg`]
//!   and [`set_one_reg`] check the buffer against it.
//! * `KVM_GET_DIRTY_LOG` copies one bit per page of a slot to `kvm_dirty_log.dirty_bitmap`.
//!   [`VmFd::get_dirty_log`] sizes the bitmap from the slot as this `VmFd` registered it, and
//!   refuses a buffer that is too small before the kernel sees it.
//!
//! * `KVM_GET_SUPPORTED_CPUID`, `KVM_SET_CPUID2`, `KVM_GET_MSRS`, ... take a header whose
//!   count says how many entries follow it; the request encodes only the header's size.
//!   [`flex`] holds the buffer ([`FlexArray`]) whose count can never exceed its room, checked
//!   again just before each call.
//!
//! This file holds `unsafe`: the `libc::ioctl` calls and `OwnedFd::from_raw_fd`. Each block
//! says which kernel contract (api.rst) makes it sound.
#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use libc::{c_int, c_ulong};
use nix::errno::Errno;
use nix::sys::ioctl::ioctl_num_type;
use rawkvm_bindings as abi;

use super::memory::Mapping;
use super::run_page::{CoalescedRing, RunMapping, RunPage};

mod dirty_log;
mod flex;
mod irq;
mod one_reg;
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_imports))] // CPUID and MSRs are x86's
pub use dirty_log::DirtyLogError;
pub(crate) use dirty_log::dirty_bitmap_words;
#[cfg(target_arch = "x86_64")] // the CPUID and MSR tables
pub(crate) use flex::FlexReadsWrites;
pub(crate) use flex::{FlexArray, FlexError, FlexReads};
pub(crate) use one_reg::{OneRegError, get_one_reg, set_one_reg};

/// The way an ioctl's third argument travels; a type-level tag, never constructed.
pub(crate) trait ArgKind {}

/// `ioctl(fd, req, 0)`: no argument (`_IO` with nothing behind it).
pub(crate) enum NoArg {}
/// `ioctl(fd, req, value)`: an integer passed by value (`_IO` that takes a number).
pub(crate) enum Value {}
/// `ioctl(fd, req, value)` that returns a new file descriptor on success.
pub(crate) enum NewFd {}
/// `ioctl(fd, req, &arg)` where the kernel only reads `*arg` (`_IOW`).
pub(crate) struct Reads<T>(PhantomData<T>);
/// `ioctl(fd, req, &mut arg)` where the kernel only writes `*arg` (`_IOR`). (riscv64 makes no
/// such call yet: its registers go through ONE_REG.)
#[cfg_attr(target_arch = "riscv64", allow(dead_code))]
pub(crate) struct Writes<T>(PhantomData<T>);

impl ArgKind for NoArg {}
impl ArgKind for Value {}
impl ArgKind for NewFd {}
impl<T> ArgKind for Reads<T> {}
impl<T> ArgKind for Writes<T> {}

/// One entry of the ioctl table: the kernel's name, the request code, and how the argument
/// travels.
pub(crate) struct Ioctl<K: ArgKind> {
    /// The kernel's name for the request, used in every error message.
    pub(crate) name: &'static str,
    request: ioctl_num_type,
    kind: PhantomData<fn() -> K>,
}

/// The size field of a request code (`_IOC_SIZE`) in the host's encoding (14 bits on x86,
/// arm64, riscv, s390; 13 on powerpc and mips).
pub(super) const fn encoded_size(request: ioctl_num_type) -> usize {
    abi::HOST_IOCTL_ENCODING.size_of(request as u32)
}

impl<K: ArgKind> Ioctl<K> {
    /// The request code (for the other files of `sys` that make calls of new kinds).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only sys/state.rs, x86
    pub(super) const fn request(&self) -> ioctl_num_type {
        self.request
    }

    pub(super) const fn entry(name: &'static str, request: ioctl_num_type) -> Self {
        Ioctl {
            name,
            request,
            kind: PhantomData,
        }
    }
}

impl<T> Ioctl<Reads<T>> {
    pub(super) const fn reads(name: &'static str, request: ioctl_num_type) -> Self {
        assert!(
            encoded_size(request) == size_of::<T>(),
            "request size differs from the struct"
        );
        Self::entry(name, request)
    }
}

#[cfg_attr(target_arch = "riscv64", allow(dead_code))]
impl<T> Ioctl<Writes<T>> {
    pub(super) const fn writes(name: &'static str, request: ioctl_num_type) -> Self {
        assert!(
            encoded_size(request) == size_of::<T>(),
            "request size differs from the struct"
        );
        Self::entry(name, request)
    }
}

/// Turns the C convention (`-1` and `errno`) into a `Result`.
pub(super) fn check(ret: c_int) -> Result<c_int, Errno> {
    Errno::result(ret)
}

impl Ioctl<NoArg> {
    /// `ioctl(fd, request, 0)`.
    pub(crate) fn call(&self, fd: BorrowedFd<'_>) -> Result<c_int, Errno> {
        // SAFETY: every `Ioctl<NoArg>` in this table is a request whose argument the kernel
        // ignores (api.rst lists "Parameters: none"), so no memory is read or written through it.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, 0 as c_ulong) })
    }
}

impl Ioctl<Value> {
    /// `ioctl(fd, request, value)`.
    pub(crate) fn call(&self, fd: BorrowedFd<'_>, value: c_ulong) -> Result<c_int, Errno> {
        // SAFETY: every `Ioctl<Value>` in this table takes its argument as a plain integer
        // (api.rst: "Parameters: ... (in)" by value), so the kernel dereferences nothing.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, value) })
    }
}

impl Ioctl<NewFd> {
    /// `ioctl(fd, request, value)` for requests that return a new file descriptor.
    pub(crate) fn call(&self, fd: BorrowedFd<'_>, value: c_ulong) -> Result<OwnedFd, Errno> {
        // SAFETY: as for `Ioctl<Value>`: the kernel takes the argument as an integer (api.rst),
        // not a pointer.
        let new_fd = check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, value) })?;
        // SAFETY: on success these requests return a freshly allocated descriptor that nothing
        // else owns (api.rst: "Returns: a VM fd" / "a vcpu fd" / "a file descriptor" of
        // statistics), so taking ownership is sound.
        Ok(unsafe { OwnedFd::from_raw_fd(new_fd) })
    }
}

impl<T: Copy> Ioctl<Reads<T>> {
    /// `ioctl(fd, request, &arg)`: the kernel copies `size_of::<T>()` bytes in.
    pub(crate) fn call(&self, fd: BorrowedFd<'_>, arg: &T) -> Result<c_int, Errno> {
        let ptr: *const T = arg;
        // SAFETY: the request's size field equals `size_of::<T>()` (checked in `reads`), the
        // kernel only copies that many bytes *from* `arg`, and `arg` is a live reference.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, ptr) })
    }
}

#[cfg_attr(target_arch = "riscv64", allow(dead_code))]
impl<T: Copy> Ioctl<Writes<T>> {
    /// `ioctl(fd, request, &mut arg)`: the kernel copies `size_of::<T>()` bytes out.
    pub(crate) fn call(&self, fd: BorrowedFd<'_>, arg: &mut T) -> Result<c_int, Errno> {
        let ptr: *mut T = arg;
        // SAFETY: the request's size field equals `size_of::<T>()` (checked in `writes`), the
        // kernel writes at most that many bytes into `arg`, which is a live exclusive
        // reference, and `T` is a plain-integer ABI struct for which any bytes are valid.
        check(unsafe { libc::ioctl(fd.as_raw_fd(), self.request, ptr) })
    }
}

/// The ioctls of the system fd (`/dev/kvm`).
pub(crate) mod system {
    use super::*;
    /// `KVM_GET_API_VERSION`: always 12 on any kernel rawkvm supports.
    pub(crate) const GET_API_VERSION: Ioctl<NoArg> =
        Ioctl::entry("KVM_GET_API_VERSION", abi::KVM_GET_API_VERSION);
    /// `KVM_CREATE_VM`: the argument is the machine type (0 on x86).
    pub(crate) const CREATE_VM: Ioctl<NewFd> = Ioctl::entry("KVM_CREATE_VM", abi::KVM_CREATE_VM);
    /// `KVM_CHECK_EXTENSION`: the argument is a `KVM_CAP_*` number; 0 means absent.
    pub(crate) const CHECK_EXTENSION: Ioctl<Value> =
        Ioctl::entry("KVM_CHECK_EXTENSION", abi::KVM_CHECK_EXTENSION);
    /// `KVM_GET_VCPU_MMAP_SIZE`: the size of the region to `mmap` on a vCPU fd.
    pub(crate) const GET_VCPU_MMAP_SIZE: Ioctl<NoArg> =
        Ioctl::entry("KVM_GET_VCPU_MMAP_SIZE", abi::KVM_GET_VCPU_MMAP_SIZE);
    /// `KVM_GET_SUPPORTED_CPUID`: the CPUID leaves KVM can give a guest (`E2BIG`: more room).
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_SUPPORTED_CPUID: Ioctl<FlexReadsWrites<abi::kvm_cpuid2>> =
        Ioctl::flex_reads_writes("KVM_GET_SUPPORTED_CPUID", abi::KVM_GET_SUPPORTED_CPUID);
    /// `KVM_GET_MSR_INDEX_LIST`: the MSRs `KVM_GET_MSRS`/`KVM_SET_MSRS` handle (`E2BIG` with
    /// the count needed).
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_MSR_INDEX_LIST: Ioctl<FlexReadsWrites<abi::kvm_msr_list>> =
        Ioctl::flex_reads_writes("KVM_GET_MSR_INDEX_LIST", abi::KVM_GET_MSR_INDEX_LIST);
    /// `KVM_GET_MSR_FEATURE_INDEX_LIST` (`KVM_CAP_GET_MSR_FEATURES`): the feature MSRs.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_MSR_FEATURE_INDEX_LIST: Ioctl<FlexReadsWrites<abi::kvm_msr_list>> =
        Ioctl::flex_reads_writes(
            "KVM_GET_MSR_FEATURE_INDEX_LIST",
            abi::KVM_GET_MSR_FEATURE_INDEX_LIST,
        );
    /// `KVM_GET_MSRS` on `/dev/kvm`: the feature MSRs' values; returns how many were read.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_FEATURE_MSRS: Ioctl<FlexReadsWrites<abi::kvm_msrs>> =
        Ioctl::flex_reads_writes("KVM_GET_MSRS", abi::KVM_GET_MSRS);
}

/// The ioctls of a VM fd that are safe whatever their argument.
pub(crate) mod vm {
    use super::*;
    /// `KVM_ARM_PREFERRED_TARGET`: the `kvm_vcpu_init` target for this host (arm64).
    #[cfg(target_arch = "aarch64")]
    pub(crate) const ARM_PREFERRED_TARGET: Ioctl<Writes<abi::kvm_vcpu_init>> =
        Ioctl::writes("KVM_ARM_PREFERRED_TARGET", abi::KVM_ARM_PREFERRED_TARGET);
    /// `KVM_CHECK_EXTENSION` on a VM fd (`KVM_CAP_CHECK_EXTENSION_VM`): per-VM answers.
    pub(crate) const CHECK_EXTENSION: Ioctl<Value> =
        Ioctl::entry("KVM_CHECK_EXTENSION", abi::KVM_CHECK_EXTENSION);
    /// `KVM_ENABLE_CAP` on a VM fd (`KVM_CAP_ENABLE_CAP_VM`).
    pub(crate) const ENABLE_CAP: Ioctl<Reads<abi::kvm_enable_cap>> =
        Ioctl::reads("KVM_ENABLE_CAP", abi::KVM_ENABLE_CAP);
    /// `KVM_GET_STATS_FD` on a VM fd (`KVM_CAP_BINARY_STATS_FD`): the VM's statistics file.
    pub(crate) const GET_STATS_FD: Ioctl<NewFd> =
        Ioctl::entry("KVM_GET_STATS_FD", abi::KVM_GET_STATS_FD);
    // The interrupt ioctls: KVM_CREATE_IRQCHIP, KVM_CREATE_PIT2, KVM_IRQ_LINE,
    // KVM_SET_GSI_ROUTING, KVM_IRQFD, KVM_IOEVENTFD.
    pub(crate) use super::irq::*;
    /// `KVM_REGISTER_COALESCED_MMIO` (`KVM_CAP_COALESCED_MMIO`): writes to the zone are
    /// recorded in the VM's ring instead of exiting. Through [`VmFd::register_coalesced_zone`],
    /// which also tells the vCPUs to drain the ring.
    pub(crate) const REGISTER_COALESCED_MMIO: Ioctl<Reads<abi::kvm_coalesced_mmio_zone>> =
        Ioctl::reads(
            "KVM_REGISTER_COALESCED_MMIO",
            abi::KVM_REGISTER_COALESCED_MMIO,
        );
    /// `KVM_GET_DIRTY_LOG`: its argument points at a bitmap the kernel fills, so it is no
    /// table entry but [`VmFd::get_dirty_log`], which checks the bitmap first; this is its
    /// name for messages.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // restart (in place) is x86-only so far
    pub(crate) const GET_DIRTY_LOG: &str = "KVM_GET_DIRTY_LOG";
}

/// The ioctls of a vCPU fd.
pub(crate) mod vcpu {
    use super::*;
    /// `KVM_RUN`: runs the guest until the next exit, reported in the `kvm_run` mapping. Only
    /// through [`VcpuFd::run`]: the kernel writes that mapping, so no page view may live meanwhile.
    pub(super) const RUN: Ioctl<NoArg> = Ioctl::entry("KVM_RUN", abi::KVM_RUN);
    /// `KVM_ARM_VCPU_INIT`: target and features; must precede any other vCPU ioctl (arm64).
    #[cfg(target_arch = "aarch64")]
    pub(crate) const ARM_VCPU_INIT: Ioctl<Reads<abi::kvm_vcpu_init>> =
        Ioctl::reads("KVM_ARM_VCPU_INIT", abi::KVM_ARM_VCPU_INIT);
    /// `KVM_GET_STATS_FD` on a vCPU fd (`KVM_CAP_BINARY_STATS_FD`): the vCPU's statistics.
    pub(crate) const GET_STATS_FD: Ioctl<NewFd> =
        Ioctl::entry("KVM_GET_STATS_FD", abi::KVM_GET_STATS_FD);
    /// `KVM_INTERRUPT`: queue an external interrupt vector (no in-kernel irqchip).
    #[cfg(target_arch = "x86_64")]
    pub(crate) const INTERRUPT: Ioctl<Reads<abi::kvm_interrupt>> =
        Ioctl::reads("KVM_INTERRUPT", abi::KVM_INTERRUPT);
    /// `KVM_SET_GUEST_DEBUG`: single-step and breakpoints, reported as `KVM_EXIT_DEBUG`.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const SET_GUEST_DEBUG: Ioctl<Reads<abi::kvm_guest_debug>> =
        Ioctl::reads("KVM_SET_GUEST_DEBUG", abi::KVM_SET_GUEST_DEBUG);
    /// `KVM_GET_REGS`: the general-purpose registers.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_REGS: Ioctl<Writes<abi::kvm_regs>> =
        Ioctl::writes("KVM_GET_REGS", abi::KVM_GET_REGS);
    /// `KVM_SET_REGS`: the general-purpose registers.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const SET_REGS: Ioctl<Reads<abi::kvm_regs>> =
        Ioctl::reads("KVM_SET_REGS", abi::KVM_SET_REGS);
    /// `KVM_GET_SREGS`: segment, control and descriptor-table registers.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_SREGS: Ioctl<Writes<abi::kvm_sregs>> =
        Ioctl::writes("KVM_GET_SREGS", abi::KVM_GET_SREGS);
    /// `KVM_SET_SREGS`: segment, control and descriptor-table registers.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const SET_SREGS: Ioctl<Reads<abi::kvm_sregs>> =
        Ioctl::reads("KVM_SET_SREGS", abi::KVM_SET_SREGS);
    /// `KVM_GET_VCPU_EVENTS` (`KVM_CAP_VCPU_EVENTS`): pending exceptions, interrupts, NMI.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_VCPU_EVENTS: Ioctl<Writes<abi::kvm_vcpu_events>> =
        Ioctl::writes("KVM_GET_VCPU_EVENTS", abi::KVM_GET_VCPU_EVENTS);
    /// `KVM_SET_VCPU_EVENTS` (`KVM_CAP_VCPU_EVENTS`).
    #[cfg(target_arch = "x86_64")]
    pub(crate) const SET_VCPU_EVENTS: Ioctl<Reads<abi::kvm_vcpu_events>> =
        Ioctl::reads("KVM_SET_VCPU_EVENTS", abi::KVM_SET_VCPU_EVENTS);
    /// `KVM_SET_CPUID2`: the CPUID the guest sees (after the first run: only the same table).
    #[cfg(target_arch = "x86_64")]
    pub(crate) const SET_CPUID2: Ioctl<FlexReads<abi::kvm_cpuid2>> =
        Ioctl::flex_reads("KVM_SET_CPUID2", abi::KVM_SET_CPUID2);
    /// `KVM_GET_CPUID2`: the CPUID the vCPU has, as the kernel adjusted it.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_CPUID2: Ioctl<FlexReadsWrites<abi::kvm_cpuid2>> =
        Ioctl::flex_reads_writes("KVM_GET_CPUID2", abi::KVM_GET_CPUID2);
    /// `KVM_GET_MSRS` on a vCPU: reads the entries' MSRs; returns how many were read.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_MSRS: Ioctl<FlexReadsWrites<abi::kvm_msrs>> =
        Ioctl::flex_reads_writes("KVM_GET_MSRS", abi::KVM_GET_MSRS);
    /// `KVM_SET_MSRS`: writes the entries; returns how many were written (stops at a refusal).
    #[cfg(target_arch = "x86_64")]
    pub(crate) const SET_MSRS: Ioctl<FlexReads<abi::kvm_msrs>> =
        Ioctl::flex_reads("KVM_SET_MSRS", abi::KVM_SET_MSRS);
    /// `KVM_GET_TSC_KHZ` (`KVM_CAP_GET_TSC_KHZ`): returns the guest's TSC rate in kHz.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const GET_TSC_KHZ: Ioctl<NoArg> =
        Ioctl::entry("KVM_GET_TSC_KHZ", abi::KVM_GET_TSC_KHZ);
    /// `KVM_SET_TSC_KHZ` (`KVM_CAP_TSC_CONTROL`): the guest's TSC rate in kHz, by value.
    #[cfg(target_arch = "x86_64")]
    pub(crate) const SET_TSC_KHZ: Ioctl<Value> =
        Ioctl::entry("KVM_SET_TSC_KHZ", abi::KVM_SET_TSC_KHZ);
}

/// Why [`VmFd::create_vcpu`] failed: the ioctl, or mapping its `kvm_run` region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CreateVcpuError {
    /// `KVM_CREATE_VCPU` failed.
    Create(Errno),
    /// `mmap` of the vCPU fd failed.
    Map(Errno),
    /// `KVM_GET_VCPU_MMAP_SIZE` reported less than a `struct kvm_run`.
    MmapTooSmall(usize),
}

/// A VM fd, and the host memory it has been given as memory slots.
#[derive(Debug)]
///
/// Field order is drop order: the fd is closed before the slot mappings are unmapped.
pub(crate) struct VmFd {
    fd: OwnedFd,
    /// Each registered slot's id and memory; a slot is never resized or deleted.
    slot_memory: Mutex<Vec<(u32, Arc<Mapping>)>>,
    /// Set once a coalesced zone is registered: from then on vCPUs drain the ring.
    coalescing: AtomicBool,
    /// Taken by whichever vCPU thread drains the VM's coalesced ring.
    ring_consumer: Arc<Mutex<()>>,
    /// `KVM_CHECK_EXTENSION(KVM_CAP_SYNC_REGS)` on this VM, asked the first time it matters.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    sync_regs: OnceLock<u64>,
}

impl VmFd {
    /// `ioctl(kvm, KVM_CREATE_VM, machine_type)`, retried while it fails with `EINTR`
    /// (creating a VM can be interrupted by a signal; api.rst asks callers to retry).
    pub(crate) fn create(kvm: BorrowedFd<'_>, machine_type: c_ulong) -> Result<Arc<VmFd>, Errno> {
        let fd = loop {
            match system::CREATE_VM.call(kvm, machine_type) {
                Err(Errno::EINTR) => continue,
                other => break other?,
            }
        };
        Ok(Arc::new(VmFd {
            fd,
            slot_memory: Mutex::new(Vec::new()),
            coalescing: AtomicBool::new(false),
            ring_consumer: Arc::new(Mutex::new(())),
            sync_regs: OnceLock::new(),
        }))
    }

    /// Borrows the fd for the ioctls of [`vm`].
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// `ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region)` with the host range `mapping`.
    ///
    /// The mapping is kept alive until this VM fd is dropped, which happens only after every
    /// vCPU fd is closed, because each [`VcpuFd`] holds an `Arc<VmFd>`.
    pub(crate) fn set_user_memory_region(
        &self,
        slot: u32,
        flags: u32,
        guest_phys_addr: u64,
        mapping: &Arc<Mapping>,
    ) -> Result<(), Errno> {
        let region = abi::kvm_userspace_memory_region {
            slot,
            flags,
            guest_phys_addr,
            memory_size: mapping.len() as u64,
            userspace_addr: mapping.as_ptr() as u64,
        };
        // Pin first: once the ioctl returns, the guest may touch the range at any time.
        let mut pinned = self
            .slot_memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        pinned.push((slot, Arc::clone(mapping)));
        let ptr: *const abi::kvm_userspace_memory_region = &region;
        // The kernel reads one `kvm_userspace_memory_region` from `ptr` (the request's size is
        // that struct's) and lets the guest reach the range it names until the VM is gone.
        // SAFETY: that range is `mapping`, a live read/write mapping of exactly `memory_size`
        // bytes that `slot_memory` owns until after `self.fd` and every vCPU fd are closed.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), abi::KVM_SET_USER_MEMORY_REGION, ptr) };
        if let Err(errno) = check(ret) {
            pinned.pop();
            return Err(errno);
        }
        Ok(())
    }

    /// `ioctl(vm, KVM_GET_DIRTY_LOG, &{ slot, dirty_bitmap })`: one bit per page of `slot`,
    /// set for each page the guest wrote since the previous call (which the kernel clears and
    /// write-protects again). `bitmap` must have [`dirty_bitmap_words`] of the slot's size.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn get_dirty_log(&self, slot: u32, bitmap: &mut [u64]) -> Result<(), DirtyLogError> {
        let slot_len = self
            .slot_memory
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|(id, _)| *id == slot)
            .map(|(_, mapping)| mapping.len())
            .ok_or(DirtyLogError::UnknownSlot(slot))?;
        let needed = dirty_bitmap_words(slot_len);
        if bitmap.len() < needed {
            return Err(DirtyLogError::BitmapTooSmall {
                needed,
                given: bitmap.len(),
            });
        }
        let log = abi::kvm_dirty_log {
            slot,
            padding1: 0,
            dirty_bitmap: bitmap.as_mut_ptr() as u64,
        };
        let ptr: *const abi::kvm_dirty_log = &log;
        // The kernel reads one `kvm_dirty_log` from `ptr` (the request's size is that struct's)
        // and writes `ALIGN(npages, BITS_PER_LONG) / 8` bytes through `dirty_bitmap` (api.rst,
        // "KVM_GET_DIRTY_LOG"; `kvm_dirty_bitmap_bytes`), `npages` being the slot's size as this
        // VM fd gave it (recorded in `slot_memory`; slots are never resized or deleted) divided
        // by the page size; for any page size >= 4 KiB that fits in `dirty_bitmap_words`.
        // SAFETY: `bitmap` is an exclusive borrow of at least `dirty_bitmap_words` (checked
        // just above) that outlives the call, and any bits are a valid `u64`.
        let ret = unsafe { libc::ioctl(self.fd.as_raw_fd(), abi::KVM_GET_DIRTY_LOG, ptr) };
        check(ret).map(drop).map_err(DirtyLogError::Ioctl)
    }

    /// `ioctl(vm, KVM_REGISTER_COALESCED_MMIO, &zone)`; on success every vCPU's run loop
    /// drains the ring from its next start on.
    pub(crate) fn register_coalesced_zone(
        &self,
        zone: &abi::kvm_coalesced_mmio_zone,
    ) -> Result<(), Errno> {
        vm::REGISTER_COALESCED_MMIO.call(self.fd(), zone)?;
        self.coalescing.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// `KVM_CHECK_EXTENSION(KVM_CAP_SYNC_REGS)` on this VM: the register sets `kvm_run.s.regs`
    /// can carry (0 if none). Asked once.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn sync_regs_supported(&self) -> u64 {
        *self.sync_regs.get_or_init(|| {
            vm::CHECK_EXTENSION
                .call(self.fd(), c_ulong::from(abi::KVM_CAP_SYNC_REGS))
                .map_or(0, |sets| u64::try_from(sets).unwrap_or(0))
        })
    }

    /// `ioctl(vm, KVM_CREATE_VCPU, id)`, then `mmap(vcpu, 0, mmap_size)` of its `kvm_run`
    /// region, shared and read/write.
    ///
    /// `ring_page` is where the coalesced-MMIO ring sits in that region, if the kernel has one.
    pub(crate) fn create_vcpu(
        self: &Arc<Self>,
        id: u32,
        mmap_size: usize,
        ring_page: Option<usize>,
    ) -> Result<VcpuFd, CreateVcpuError> {
        const CREATE_VCPU: Ioctl<NewFd> = Ioctl::entry("KVM_CREATE_VCPU", abi::KVM_CREATE_VCPU);
        // `RunMapping::new` insists on it too; asking first leaves no vCPU made in vain.
        if mmap_size < size_of::<abi::kvm_run>() {
            return Err(CreateVcpuError::MmapTooSmall(mmap_size));
        }
        let fd = CREATE_VCPU
            .call(self.fd(), c_ulong::from(id))
            .map_err(CreateVcpuError::Create)?;
        let run = Mapping::shared_fd(fd.as_fd(), mmap_size).map_err(CreateVcpuError::Map)?;
        let run = Arc::new(RunMapping::new(run, ring_page));
        Ok(VcpuFd {
            run,
            fd,
            vm: Arc::clone(self),
        })
    }
}

/// A vCPU fd with its `kvm_run` mapping.
///
/// Field order is drop order: let go of this value's share of the `kvm_run` mapping, close the
/// vCPU fd, then let go of the VM (whose memory is unmapped only when the last holder is gone).
///
/// The mapping is unmapped only with its last `Arc<RunMapping>`, and this is not the only
/// holder: every [`crate::kvm::vcpu::StopHandle`] and every [`CoalescedRing`] made from it hold one
/// too, so the mapping may outlive the fd (a stop handle kept after its machine is dropped,
/// say). That is sound: stop handles only ever touch the `immediate_exit` byte, atomically,
/// and a ring only exists inside a run loop that borrows the vCPU. It has one consequence
/// worth knowing: the kernel's mapping of a vCPU fd holds a reference to the vCPU's file, so
/// the kernel vCPU, and with it the VM, stays alive until the last holder is gone, possibly
/// after the VM fd is closed and the slot memory unmapped. Nothing can use that VM then: with
/// both fds closed there is no `KVM_RUN` and no ioctl through which the kernel would touch
/// guest memory, and rawkvm sets up nothing that the kernel writes guest memory through on its
/// own (an irqfd or ioeventfd only raises lines and signals eventfds; no Xen shared pages).
#[derive(Debug)]
pub(crate) struct VcpuFd {
    run: Arc<RunMapping>,
    fd: OwnedFd,
    /// Holding it keeps the slot memory mapped while this vCPU fd lives.
    vm: Arc<VmFd>,
}

impl VcpuFd {
    /// Borrows the fd for the ioctls of [`vcpu`].
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Borrows the fd of the VM this vCPU belongs to (arm64 asks it for the preferred target).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn vm_fd(&self) -> BorrowedFd<'_> {
        self.vm.fd()
    }

    /// The `kvm_run` mapping, as shared with the threads that may stop this vCPU.
    pub(crate) fn run_mapping(&self) -> &Arc<RunMapping> {
        &self.run
    }

    /// `ioctl(vcpu, KVM_RUN, 0)`: exactly one syscall. `&mut self` because the kernel writes
    /// the `kvm_run` page meanwhile: no [`RunPage`] (which borrows this mutably) is alive.
    pub(crate) fn run(&mut self) -> Result<c_int, Errno> {
        vcpu::RUN.call(self.fd())
    }

    /// The VM this vCPU belongs to.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn vm(&self) -> &Arc<VmFd> {
        &self.vm
    }

    /// The VM's coalesced ring through this vCPU's mapping, once a zone has been registered
    /// and if the mapping holds the ring page; `None` otherwise (nothing to drain).
    pub(crate) fn coalesced_ring(&self) -> Option<CoalescedRing> {
        if !self.vm.coalescing.load(Ordering::SeqCst) {
            return None;
        }
        self.run.coalesced_ring(&self.vm.ring_consumer)
    }

    /// The `kvm_run` page as the last `KVM_RUN` left it.
    pub(crate) fn run_page(&mut self) -> RunPage<'_> {
        // SAFETY: `&mut self` is exclusive access to this vCPU: no `KVM_RUN` can start on it
        // and no other page view can be made while the returned view lives. Other holders of
        // the mapping only reach `immediate_exit`, atomically.
        unsafe { self.run.page() }
    }
}
