//! Architecture-neutral constants of `<linux/kvm.h>`: exit reasons, their sub-codes, memory-slot
//! flags, guest-debug control bits and binary-statistics encoding.
//!
//! Values are those of Linux 6.18 (checked against the host's header, where it has them, by
//! `tests/kernel_headers.rs`). A newer kernel may report values missing here: decode them as
//! unknown, never assume a table is complete.

use crate::names::{name_in, named_constants};

/// `KVM_GET_API_VERSION` returns this; any other value means an ABI this crate does not describe.
pub const KVM_API_VERSION: i32 = 12;

/// The ioctl "type" byte of every KVM request (`#define KVMIO 0xAE`).
pub const KVMIO: u8 = 0xAE;

/// Size of the `s` union at the end of `kvm_run` that holds the synchronised registers.
pub const SYNC_REGS_SIZE_BYTES: usize = 2048;

named_constants! {
    /// Every `kvm_run.exit_reason` Linux defines, through Linux 6.18 (0..=40), plus
    /// `KVM_EXIT_ARM_SEA` (41) from Linux 6.19. See api.rst section 5, "The kvm_run structure".
    pub const EXIT_REASONS: [u32];
    /// The hardware gave an exit reason KVM does not know: `hw.hardware_exit_reason`.
    KVM_EXIT_UNKNOWN = 0,
    /// An exception KVM did not handle: `ex` (not produced by current x86 KVM).
    KVM_EXIT_EXCEPTION = 1,
    /// Port I/O: `io`; the data is at `io.data_offset` bytes into the vCPU mapping.
    KVM_EXIT_IO = 2,
    /// A hypercall enabled for user space with `KVM_CAP_EXIT_HYPERCALL`: `hypercall`.
    KVM_EXIT_HYPERCALL = 3,
    /// A debug event requested with `KVM_SET_GUEST_DEBUG`: `debug`.
    KVM_EXIT_DEBUG = 4,
    /// The guest executed `hlt` and no in-kernel local APIC handles it.
    KVM_EXIT_HLT = 5,
    /// A memory access no slot backs, or a write to a read-only slot: `mmio`.
    KVM_EXIT_MMIO = 6,
    /// The guest can take an interrupt (asked for with `request_interrupt_window`).
    KVM_EXIT_IRQ_WINDOW_OPEN = 7,
    /// The guest shut down (on x86: a triple fault).
    KVM_EXIT_SHUTDOWN = 8,
    /// The hardware refused to enter the guest: `fail_entry`.
    KVM_EXIT_FAIL_ENTRY = 9,
    /// A signal (or `immediate_exit`) interrupted `KVM_RUN`.
    KVM_EXIT_INTR = 10,
    /// Unused by current kernels.
    KVM_EXIT_SET_TPR = 11,
    /// A TPR access reported with `KVM_TPR_ACCESS_REPORTING`: `tpr_access`.
    KVM_EXIT_TPR_ACCESS = 12,
    /// s390: an intercept to handle in user space: `s390_sieic`.
    KVM_EXIT_S390_SIEIC = 13,
    /// s390: a reset request: `s390_reset_flags`.
    KVM_EXIT_S390_RESET = 14,
    /// PowerPC: a DCR access (deprecated): `dcr`.
    KVM_EXIT_DCR = 15,
    /// Unused by current kernels.
    KVM_EXIT_NMI = 16,
    /// KVM cannot go on: `internal`, its suberror named in [`INTERNAL_ERRORS`].
    KVM_EXIT_INTERNAL_ERROR = 17,
    /// PowerPC: an OSI hypercall: `osi`.
    KVM_EXIT_OSI = 18,
    /// PowerPC: a PAPR hypercall: `papr_hcall`.
    KVM_EXIT_PAPR_HCALL = 19,
    /// s390: a fault in a user-controlled VM: `s390_ucontrol`.
    KVM_EXIT_S390_UCONTROL = 20,
    /// PowerPC BookE: the watchdog expired.
    KVM_EXIT_WATCHDOG = 21,
    /// s390: TEST SUBCHANNEL: `s390_tsch`.
    KVM_EXIT_S390_TSCH = 22,
    /// PowerPC: external proxy: `epr`.
    KVM_EXIT_EPR = 23,
    /// Shutdown, reset, crash, ...: `system_event`, its type named in [`SYSTEM_EVENTS`].
    KVM_EXIT_SYSTEM_EVENT = 24,
    /// s390: STORE SYSTEM INFORMATION: `s390_stsi`.
    KVM_EXIT_S390_STSI = 25,
    /// x86 split irqchip: EOI of a level-triggered interrupt: `eoi`.
    KVM_EXIT_IOAPIC_EOI = 26,
    /// Hyper-V SynIC or hypercall: `hyperv`.
    KVM_EXIT_HYPERV = 27,
    /// arm64: a data abort without a valid syndrome: `arm_nisv`.
    KVM_EXIT_ARM_NISV = 28,
    /// x86: `rdmsr` forwarded to user space (`KVM_CAP_X86_USER_SPACE_MSR`): `msr`.
    KVM_EXIT_X86_RDMSR = 29,
    /// x86: `wrmsr` forwarded to user space: `msr`.
    KVM_EXIT_X86_WRMSR = 30,
    /// The vCPU's dirty ring is full (`KVM_CAP_DIRTY_LOG_RING`).
    KVM_EXIT_DIRTY_RING_FULL = 31,
    /// SEV-ES: an AP is in the reset-hold state.
    KVM_EXIT_AP_RESET_HOLD = 32,
    /// x86: the guest took a bus lock (`KVM_CAP_X86_BUS_LOCK_EXIT`).
    KVM_EXIT_X86_BUS_LOCK = 33,
    /// A Xen hypercall: `xen`.
    KVM_EXIT_XEN = 34,
    /// RISC-V: an SBI call: `riscv_sbi`.
    KVM_EXIT_RISCV_SBI = 35,
    /// RISC-V: a CSR access: `riscv_csr`.
    KVM_EXIT_RISCV_CSR = 36,
    /// x86: a notify VM exit (`KVM_CAP_X86_NOTIFY_VMEXIT`): `notify`.
    KVM_EXIT_NOTIFY = 37,
    /// LoongArch: an IOCSR access: `iocsr_io`. Linux 6.7.
    KVM_EXIT_LOONGARCH_IOCSR = 38,
    /// A guest memory fault user space must resolve: `memory_fault`. Linux 6.8. Comes with
    /// `KVM_RUN` failing with `EFAULT` or `EHWPOISON`.
    KVM_EXIT_MEMORY_FAULT = 39,
    /// TDX: a TDVMCALL for user space: `tdx`. Linux 6.16.
    KVM_EXIT_TDX = 40,
    /// arm64: a synchronous external abort: `arm_sea`. Linux 6.19; Linux 6.18 never reports it.
    KVM_EXIT_ARM_SEA = 41,
}

/// The kernel name of exit reason `reason` (`exit_reason_name(2) == Some("KVM_EXIT_IO")`), or
/// `None` for a reason this crate does not know (the running kernel is newer).
pub const fn exit_reason_name(reason: u32) -> Option<&'static str> {
    name_in(EXIT_REASONS, reason)
}

/// `io.direction` of a `KVM_EXIT_IO`: the guest read from the port (`in`).
pub const KVM_EXIT_IO_IN: u8 = 0;
/// `io.direction` of a `KVM_EXIT_IO`: the guest wrote to the port (`out`).
pub const KVM_EXIT_IO_OUT: u8 = 1;

named_constants! {
    /// `internal.suberror` of a `KVM_EXIT_INTERNAL_ERROR`.
    pub const INTERNAL_ERRORS: [u32];
    /// The instruction emulator failed; with `KVM_CAP_EXIT_ON_EMULATION_FAILURE` the exit data
    /// follows the `emulation_failure` layout.
    KVM_INTERNAL_ERROR_EMULATION = 1,
    /// Simultaneous exceptions KVM did not expect.
    KVM_INTERNAL_ERROR_SIMUL_EX = 2,
    /// A VM exit while delivering an event that KVM did not expect.
    KVM_INTERNAL_ERROR_DELIVERY_EV = 3,
    /// A VM exit reason KVM did not expect.
    KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4,
}

/// The kernel name of internal-error suberror `suberror`, if this crate knows it.
pub const fn internal_error_name(suberror: u32) -> Option<&'static str> {
    name_in(INTERNAL_ERRORS, suberror)
}

/// `emulation_failure.flags`: `insn_size` and `insn_bytes` are valid.
pub const KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES: u64 = 1 << 0;

named_constants! {
    /// `system_event.type` of a `KVM_EXIT_SYSTEM_EVENT`.
    pub const SYSTEM_EVENTS: [u32];
    /// The guest asked to power off.
    KVM_SYSTEM_EVENT_SHUTDOWN = 1,
    /// The guest asked to reset.
    KVM_SYSTEM_EVENT_RESET = 2,
    /// The guest reported a crash.
    KVM_SYSTEM_EVENT_CRASH = 3,
    /// arm64: a vCPU woke from a system suspend.
    KVM_SYSTEM_EVENT_WAKEUP = 4,
    /// arm64: the guest asked for a system suspend.
    KVM_SYSTEM_EVENT_SUSPEND = 5,
    /// SEV: the guest asked to terminate.
    KVM_SYSTEM_EVENT_SEV_TERM = 6,
    /// TDX: the TD hit a fatal error. Linux 6.16.
    KVM_SYSTEM_EVENT_TDX_FATAL = 7,
}

/// The kernel name of system-event type `event_type`, if this crate knows it.
pub const fn system_event_name(event_type: u32) -> Option<&'static str> {
    name_in(SYSTEM_EVENTS, event_type)
}

named_constants! {
    /// `msr.reason` bits of `KVM_EXIT_X86_RDMSR`/`KVM_EXIT_X86_WRMSR`: why the access came to
    /// user space (chosen with `KVM_CAP_X86_USER_SPACE_MSR`).
    pub const MSR_EXIT_REASONS: [u32];
    /// The access would have raised #GP in the kernel.
    KVM_MSR_EXIT_REASON_INVAL = 1 << 0,
    /// KVM does not know the MSR.
    KVM_MSR_EXIT_REASON_UNKNOWN = 1 << 1,
    /// The MSR filter (`KVM_X86_SET_MSR_FILTER`) denied the access.
    KVM_MSR_EXIT_REASON_FILTER = 1 << 2,
}

/// All defined `msr.reason` bits. Linux 6.4.
pub const KVM_MSR_EXIT_REASON_VALID_MASK: u32 =
    KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER;

/// `notify.flags`: the VM context is corrupted and the guest cannot go on.
pub const KVM_NOTIFY_CONTEXT_INVALID: u32 = 1 << 0;
/// `memory_fault.flags`: the fault was on private (guest_memfd) memory.
pub const KVM_MEMORY_EXIT_FLAG_PRIVATE: u64 = 1 << 3;
/// `arm_sea.flags`: `arm_sea.gpa` is valid. Linux 6.19.
pub const KVM_EXIT_ARM_SEA_FLAG_GPA_VALID: u64 = 1 << 0;
/// `hyperv.type`: a SynIC MSR write.
pub const KVM_EXIT_HYPERV_SYNIC: u32 = 1;
/// `hyperv.type`: a Hyper-V hypercall.
pub const KVM_EXIT_HYPERV_HCALL: u32 = 2;
/// `hyperv.type`: a synthetic debugger MSR access.
pub const KVM_EXIT_HYPERV_SYNDBG: u32 = 3;
/// `xen.type`: a Xen hypercall.
pub const KVM_EXIT_XEN_HCALL: u32 = 1;

named_constants! {
    /// `kvm_userspace_memory_region.flags` bits (api.rst, `KVM_SET_USER_MEMORY_REGION`);
    /// [`MemoryRegionFlags`] is the typed form.
    pub const MEMORY_FLAGS: [u32];
    /// Track writes to the slot for `KVM_GET_DIRTY_LOG`.
    KVM_MEM_LOG_DIRTY_PAGES = 1 << 0,
    /// Guest writes to the slot exit as `KVM_EXIT_MMIO` (`KVM_CAP_READONLY_MEM`).
    KVM_MEM_READONLY = 1 << 1,
    /// The slot is backed by a guest_memfd (`KVM_SET_USER_MEMORY_REGION2`). Linux 6.8.
    KVM_MEM_GUEST_MEMFD = 1 << 2,
}

bitflags::bitflags! {
    /// Memory-slot flags, the typed form of [`MEMORY_FLAGS`]
    /// (`kvm_userspace_memory_region.flags`).
    #[repr(transparent)]
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub struct MemoryRegionFlags: u32 {
        /// `KVM_MEM_LOG_DIRTY_PAGES`.
        const LOG_DIRTY_PAGES = KVM_MEM_LOG_DIRTY_PAGES;
        /// `KVM_MEM_READONLY`.
        const READONLY = KVM_MEM_READONLY;
        /// `KVM_MEM_GUEST_MEMFD`.
        const GUEST_MEMFD = KVM_MEM_GUEST_MEMFD;
    }
}

/// `KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)` argument: `KVM_GET_DIRTY_LOG` no longer
/// write-protects; user space clears with `KVM_CLEAR_DIRTY_LOG`.
pub const KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE: u64 = 1 << 0;
/// `KVM_ENABLE_CAP(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2)` argument: new slots start all dirty.
pub const KVM_DIRTY_LOG_INITIALLY_SET: u64 = 1 << 1;

named_constants! {
    /// `kvm_guest_debug.control` bits every architecture has (api.rst,
    /// `KVM_SET_GUEST_DEBUG`); architectures add their own.
    pub const GUEST_DEBUG_FLAGS: [u32];
    /// Debugging is on; without it the other bits are ignored.
    KVM_GUESTDBG_ENABLE = 0x0000_0001,
    /// Exit with `KVM_EXIT_DEBUG` after every instruction.
    KVM_GUESTDBG_SINGLESTEP = 0x0000_0002,
}

named_constants! {
    /// `kvm_stats_desc.flags` fields: type, unit and base of each statistic read from the fd of
    /// `KVM_GET_STATS_FD` (api.rst, `KVM_GET_STATS_FD`).
    pub const STATS_FLAGS: [u32];
    /// Where the type sits in `flags`.
    KVM_STATS_TYPE_SHIFT = 0,
    /// The type bits.
    KVM_STATS_TYPE_MASK = 0xF << KVM_STATS_TYPE_SHIFT,
    /// A counter that only grows.
    KVM_STATS_TYPE_CUMULATIVE = 0x0 << KVM_STATS_TYPE_SHIFT,
    /// A value that goes up and down.
    KVM_STATS_TYPE_INSTANT = 0x1 << KVM_STATS_TYPE_SHIFT,
    /// The highest value seen.
    KVM_STATS_TYPE_PEAK = 0x2 << KVM_STATS_TYPE_SHIFT,
    /// A histogram with buckets of `bucket_size`.
    KVM_STATS_TYPE_LINEAR_HIST = 0x3 << KVM_STATS_TYPE_SHIFT,
    /// A histogram with power-of-two buckets.
    KVM_STATS_TYPE_LOG_HIST = 0x4 << KVM_STATS_TYPE_SHIFT,
    /// The highest type defined.
    KVM_STATS_TYPE_MAX = KVM_STATS_TYPE_LOG_HIST,
    /// Where the unit sits in `flags`.
    KVM_STATS_UNIT_SHIFT = 4,
    /// The unit bits.
    KVM_STATS_UNIT_MASK = 0xF << KVM_STATS_UNIT_SHIFT,
    /// A plain number.
    KVM_STATS_UNIT_NONE = 0x0 << KVM_STATS_UNIT_SHIFT,
    /// Bytes.
    KVM_STATS_UNIT_BYTES = 0x1 << KVM_STATS_UNIT_SHIFT,
    /// Seconds.
    KVM_STATS_UNIT_SECONDS = 0x2 << KVM_STATS_UNIT_SHIFT,
    /// CPU cycles.
    KVM_STATS_UNIT_CYCLES = 0x3 << KVM_STATS_UNIT_SHIFT,
    /// 0 or 1.
    KVM_STATS_UNIT_BOOLEAN = 0x4 << KVM_STATS_UNIT_SHIFT,
    /// The highest unit defined.
    KVM_STATS_UNIT_MAX = KVM_STATS_UNIT_BOOLEAN,
    /// Where the exponent's base sits in `flags`.
    KVM_STATS_BASE_SHIFT = 8,
    /// The base bits.
    KVM_STATS_BASE_MASK = 0xF << KVM_STATS_BASE_SHIFT,
    /// `exponent` is a power of 10.
    KVM_STATS_BASE_POW10 = 0x0 << KVM_STATS_BASE_SHIFT,
    /// `exponent` is a power of 2.
    KVM_STATS_BASE_POW2 = 0x1 << KVM_STATS_BASE_SHIFT,
    /// The highest base defined.
    KVM_STATS_BASE_MAX = KVM_STATS_BASE_POW2,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_reason_names() {
        assert_eq!(exit_reason_name(2), Some("KVM_EXIT_IO"));
        assert_eq!(exit_reason_name(KVM_EXIT_TDX), Some("KVM_EXIT_TDX"));
        assert_eq!(exit_reason_name(41), Some("KVM_EXIT_ARM_SEA"));
        assert_eq!(exit_reason_name(42), None);
        assert_eq!(exit_reason_name(u32::MAX), None);
    }

    #[test]
    fn exit_reasons_are_dense_from_zero() {
        for (index, (value, _)) in EXIT_REASONS.iter().enumerate() {
            assert_eq!(*value as usize, index);
        }
    }

    #[test]
    fn sub_code_names() {
        assert_eq!(internal_error_name(1), Some("KVM_INTERNAL_ERROR_EMULATION"));
        assert_eq!(internal_error_name(0), None);
        assert_eq!(system_event_name(2), Some("KVM_SYSTEM_EVENT_RESET"));
        assert_eq!(system_event_name(8), None);
    }

    #[test]
    fn memory_region_flags_match_the_constants() {
        assert_eq!(MemoryRegionFlags::all().bits(), 0b111);
        assert_eq!(MemoryRegionFlags::READONLY.bits(), KVM_MEM_READONLY);
    }
}
