//! Decoding `kvm_run` into an [`Exit`], in place.
//!
//! After `ioctl(vcpu, KVM_RUN, 0)` returns 0, `kvm_run.exit_reason` says why, and the member of
//! the exit union that goes with it says the rest (api.rst, "The kvm_run structure"). [`decode()`]
//! reads those fields straight from the mapped page and hands out views that borrow it: an
//! `out` instruction's bytes are a slice of the PIO data page, an MMIO read is answered by
//! writing into `kvm_run.mmio.data`, an `rdmsr` by [`MsrAccess::set_data`]. Nothing is
//! allocated or copied beyond a few scalars.
//!
//! Every `KVM_EXIT_*` reason the bindings know (0 to 41) decodes into a variant with named
//! fields; the members only one architecture defines the layout of (`debug.arch`) are decoded
//! by that architecture's module. Reasons no header known to rawkvm defines decode as
//! [`Exit::Unknown`]: the running kernel may be newer than anything rawkvm was written
//! against.
//!
//! The decoder is total: whatever bytes the page holds, it returns an [`Exit`] or a
//! [`DecodeError`] naming the field that was out of range. The kernel is trusted to be correct
//! but not to keep rawkvm memory-safe, so every value that sizes or locates data is checked:
//!
//! * IO: `direction` in {IN, OUT}, `size` in {1, 2, 4}, `count >= 1`, and
//!   `data_offset + size * count` inside the mapping (checked arithmetic).
//! * MMIO (and LoongArch IOCSR): `len` in 1..=8, and only `data[..len]` is exposed (the bytes
//!   after it are stale).
//! * `internal.ndata` and `system_event.ndata` at most 16.
//!
//! [`fields`] names every member read, with its offset; [`Exit::visit`] lists the decoded
//! payload field by field, which is what tracing, `--explain` and error messages print.

#[macro_use]
pub mod fields;
mod decode;
pub mod hardware;
mod payload;
#[cfg(test)]
mod tests;
pub mod text;
mod views;
#[cfg(target_arch = "x86_64")]
pub mod x86_64;

use std::fmt;

use rawkvm_bindings as abi;

/// A buffer followed by a `PROT_NONE` page, to decode synthetic pages with an out-of-bounds
/// oracle (the `fuzzing` feature).
#[cfg(any(test, feature = "fuzzing"))]
pub use crate::sys::memory::GuardedBuffer;
/// The `kvm_run` page [`decode()`] reads: a vCPU's mapping, or (for tests and fuzzing) bytes.
pub use crate::sys::run_page::RunPage;
pub use decode::decode;
pub use payload::{Item, Source, Value};
pub use views::{
    HyperVExit, Hypercall, Io, IoDirection, KVM_EXIT_HYPERCALL_LONG_MODE, Mmio, MsrAccess,
    TDVMCALL_LEAVES, TdxCall, XenExit,
};
#[cfg(target_arch = "x86_64")]
pub use x86_64::DebugExit;

/// `KVM_EXIT_DEBUG` on an architecture whose `struct kvm_debug_exit_arch` rawkvm does not
/// decode yet: the exit is recognised, its registers are not read.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebugExit {}

/// The most data words `internal` and `system_event` can carry (`__u64 data[16]`).
pub const MAX_NDATA: u32 = 16;

/// Why `KVM_RUN` returned, decoded from the `kvm_run` page: one variant per `KVM_EXIT_*`.
///
/// Variants borrow the page (`'a`), so an exit cannot outlive the next `KVM_RUN`. Payload
/// fields keep the kernel's names; values that only mean something as a set of flags or an
/// enumeration stay numbers, and [`Exit::visit`] names them.
#[derive(Debug)]
#[non_exhaustive]
pub enum Exit<'a> {
    /// `KVM_EXIT_UNKNOWN` (0): the hardware exited for a reason KVM does not handle.
    HardwareUnknown {
        /// The hardware's own exit reason (VMX basic exit reason or SVM exit code); see
        /// [`hardware::explain_exit`].
        hardware_exit_reason: u64,
    },
    /// `KVM_EXIT_EXCEPTION` (1): an exception KVM did not handle (not produced by x86 KVM).
    Exception {
        /// The vector.
        exception: u32,
        /// Its error code.
        error_code: u32,
    },
    /// `KVM_EXIT_IO` (2): port I/O.
    Io(Io<'a>),
    /// `KVM_EXIT_HYPERCALL` (3): a hypercall forwarded with `KVM_CAP_EXIT_HYPERCALL`.
    Hypercall(Hypercall<'a>),
    /// `KVM_EXIT_DEBUG` (4): a debug event asked for with `KVM_SET_GUEST_DEBUG`.
    Debug(DebugExit),
    /// `KVM_EXIT_HLT` (5): the guest executed `hlt` (no in-kernel interrupt controller).
    Hlt,
    /// `KVM_EXIT_MMIO` (6): memory-mapped I/O.
    Mmio(Mmio<'a>),
    /// `KVM_EXIT_IRQ_WINDOW_OPEN` (7): the guest can take an interrupt now (asked for with
    /// `request_interrupt_window`).
    IrqWindowOpen {
        /// `kvm_run.ready_for_interrupt_injection`.
        ready_for_interrupt_injection: bool,
        /// `kvm_run.if_flag`: the guest's RFLAGS.IF.
        if_flag: bool,
    },
    /// `KVM_EXIT_SHUTDOWN` (8): the guest shut down; on x86, a triple fault.
    Shutdown,
    /// `KVM_EXIT_FAIL_ENTRY` (9): the hardware refused to enter the guest.
    FailEntry {
        /// VMX: the exit reason with bit 31 set (e.g. `0x80000021`, invalid guest state) or a
        /// VM-instruction error; SVM: `VMEXIT_INVALID` (-1). See [`hardware::explain_entry_failure`].
        hardware_entry_failure_reason: u64,
        /// The host CPU the entry was attempted on.
        cpu: u32,
    },
    /// `KVM_EXIT_INTR` (10): a signal interrupted the guest.
    Intr,
    /// `KVM_EXIT_SET_TPR` (11): unused by current kernels.
    SetTpr,
    /// `KVM_EXIT_TPR_ACCESS` (12): a TPR access reported with `KVM_TPR_ACCESS_REPORTING`.
    TprAccess {
        /// Guest RIP of the access.
        rip: u64,
        /// A write (else a read).
        is_write: bool,
    },
    /// `KVM_EXIT_S390_SIEIC` (13): an s390 intercept for user space.
    S390Sieic {
        /// Interception code.
        icptcode: u8,
        /// Instruction parameter A.
        ipa: u16,
        /// Instruction parameter B.
        ipb: u32,
    },
    /// `KVM_EXIT_S390_RESET` (14): an s390 reset request.
    S390Reset {
        /// `KVM_S390_RESET_*` bits.
        flags: u64,
    },
    /// `KVM_EXIT_DCR` (15): a PowerPC DCR access (deprecated).
    Dcr {
        /// DCR number.
        dcrn: u32,
        /// The value.
        data: u32,
        /// A write (else a read).
        is_write: bool,
    },
    /// `KVM_EXIT_NMI` (16): unused by current kernels.
    Nmi,
    /// `KVM_EXIT_INTERNAL_ERROR` (17): KVM could not go on, e.g. it failed to emulate.
    InternalError {
        /// `KVM_INTERNAL_ERROR_*`: 1 emulation, 2 simultaneous exceptions, 3 delivery, ...
        suberror: u32,
        /// `internal.data[..ndata]`.
        data: &'a [u64],
    },
    /// `KVM_EXIT_OSI` (18): a PowerPC OSI hypercall.
    Osi {
        /// The guest's 32 general-purpose registers.
        gprs: &'a [u64],
    },
    /// `KVM_EXIT_PAPR_HCALL` (19): a PowerPC PAPR hypercall.
    PaprHcall {
        /// Hypercall number.
        nr: u64,
        /// The nine arguments.
        args: &'a [u64],
    },
    /// `KVM_EXIT_S390_UCONTROL` (20): a fault in a user-controlled s390 VM.
    S390Ucontrol {
        /// Translation-exception code.
        trans_exc_code: u64,
        /// Program interruption code.
        pgm_code: u32,
    },
    /// `KVM_EXIT_WATCHDOG` (21): the PowerPC BookE watchdog expired.
    Watchdog,
    /// `KVM_EXIT_S390_TSCH` (22): s390 TEST SUBCHANNEL.
    S390Tsch {
        /// Subchannel id.
        subchannel_id: u16,
        /// Subchannel number.
        subchannel_nr: u16,
        /// I/O interruption parameter.
        io_int_parm: u32,
        /// I/O interruption word.
        io_int_word: u32,
        /// Instruction parameter B.
        ipb: u32,
        /// An interrupt was dequeued.
        dequeued: bool,
    },
    /// `KVM_EXIT_EPR` (23): PowerPC external proxy.
    Epr {
        /// The external proxy register value.
        epr: u32,
    },
    /// `KVM_EXIT_SYSTEM_EVENT` (24): the guest asked for a shutdown, reset, crash report, ...
    SystemEvent {
        /// `KVM_SYSTEM_EVENT_*`.
        event_type: u32,
        /// `system_event.data[..ndata]`.
        data: &'a [u64],
    },
    /// `KVM_EXIT_S390_STSI` (25): s390 STORE SYSTEM INFORMATION.
    S390Stsi {
        /// Guest address of the result block.
        addr: u64,
        /// Access register.
        ar: u8,
        /// Function code.
        fc: u8,
        /// Selector 1.
        sel1: u8,
        /// Selector 2.
        sel2: u16,
    },
    /// `KVM_EXIT_IOAPIC_EOI` (26): EOI of a level-triggered interrupt (split irqchip).
    IoapicEoi {
        /// The vector acknowledged.
        vector: u8,
    },
    /// `KVM_EXIT_HYPERV` (27): Hyper-V SynIC, hypercall or synthetic debugger.
    HyperV(HyperVExit),
    /// `KVM_EXIT_ARM_NISV` (28): an arm64 data abort without a valid syndrome.
    ArmNisv {
        /// ESR_EL2 ISS bits.
        esr_iss: u64,
        /// Faulting intermediate physical address.
        fault_ipa: u64,
    },
    /// `KVM_EXIT_X86_RDMSR` (29): `rdmsr` forwarded with `KVM_CAP_X86_USER_SPACE_MSR`; answer
    /// with [`MsrAccess::set_data`] or [`MsrAccess::set_error`].
    X86Rdmsr(MsrAccess<'a>),
    /// `KVM_EXIT_X86_WRMSR` (30): `wrmsr` forwarded with `KVM_CAP_X86_USER_SPACE_MSR`.
    X86Wrmsr(MsrAccess<'a>),
    /// `KVM_EXIT_DIRTY_RING_FULL` (31): the vCPU's dirty ring is full.
    DirtyRingFull,
    /// `KVM_EXIT_AP_RESET_HOLD` (32): an SEV-ES AP is in reset hold.
    ApResetHold,
    /// `KVM_EXIT_X86_BUS_LOCK` (33): the guest took a bus lock.
    X86BusLock,
    /// `KVM_EXIT_XEN` (34): a Xen hypercall.
    Xen(XenExit),
    /// `KVM_EXIT_RISCV_SBI` (35): a RISC-V SBI call.
    RiscvSbi {
        /// Extension id.
        extension_id: u64,
        /// Function id.
        function_id: u64,
        /// The six arguments.
        args: &'a [u64],
    },
    /// `KVM_EXIT_RISCV_CSR` (36): a RISC-V CSR access.
    RiscvCsr {
        /// CSR number.
        csr_num: u64,
        /// Value being written.
        new_value: u64,
        /// Bits being written.
        write_mask: u64,
    },
    /// `KVM_EXIT_NOTIFY` (37): a notify VM exit (the guest blocked the CPU too long).
    Notify {
        /// `KVM_NOTIFY_CONTEXT_INVALID` if the guest cannot go on.
        flags: u32,
    },
    /// `KVM_EXIT_LOONGARCH_IOCSR` (38): a LoongArch IOCSR access, shaped like MMIO.
    LoongarchIocsr(Mmio<'a>),
    /// `KVM_EXIT_MEMORY_FAULT` (39): a guest memory fault user space must resolve.
    MemoryFault {
        /// `KVM_MEMORY_EXIT_FLAG_PRIVATE`.
        flags: u64,
        /// First guest physical address.
        gpa: u64,
        /// Length in bytes.
        size: u64,
    },
    /// `KVM_EXIT_TDX` (40): a TDVMCALL for user space.
    Tdx(TdxCall),
    /// `KVM_EXIT_ARM_SEA` (41): an arm64 synchronous external abort.
    ArmSea {
        /// `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`.
        flags: u64,
        /// Sanitised ESR_EL2.
        esr: u64,
        /// Faulting guest virtual address.
        gva: u64,
        /// Faulting guest physical address, if `flags` says so.
        gpa: u64,
    },
    /// A reason no kernel header known to rawkvm defines.
    Unknown(u32),
}

/// The instruction KVM failed to emulate, from the data of a `KVM_EXIT_INTERNAL_ERROR` with
/// suberror `KVM_INTERNAL_ERROR_EMULATION`, if KVM included it: the `emulation_failure`
/// overlay puts `flags` in `data[0]` and, with
/// `KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES`, `insn_size` and 15 `insn_bytes` in
/// the next 16 bytes. Returns the bytes and how many are valid.
pub fn emulation_failure_instruction(suberror: u32, data: &[u64]) -> Option<([u8; 15], usize)> {
    if suberror != abi::KVM_INTERNAL_ERROR_EMULATION {
        return None;
    }
    let [flags, low, high, ..] = *data else {
        return None;
    };
    if flags & abi::KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES == 0 {
        return None;
    }
    let mut overlay = [0u8; 16];
    overlay[..8].copy_from_slice(&low.to_le_bytes());
    overlay[8..].copy_from_slice(&high.to_le_bytes());
    let mut bytes = [0u8; 15];
    bytes.copy_from_slice(&overlay[1..]);
    Some((bytes, usize::from(overlay[0]).min(15)))
}

impl Exit<'_> {
    /// The `KVM_EXIT_*` number this exit was decoded from.
    pub fn reason(&self) -> u32 {
        use abi::*;
        match self {
            Exit::HardwareUnknown { .. } => KVM_EXIT_UNKNOWN,
            Exit::Exception { .. } => KVM_EXIT_EXCEPTION,
            Exit::Io(_) => KVM_EXIT_IO,
            Exit::Hypercall(_) => KVM_EXIT_HYPERCALL,
            Exit::Debug(_) => KVM_EXIT_DEBUG,
            Exit::Hlt => KVM_EXIT_HLT,
            Exit::Mmio(_) => KVM_EXIT_MMIO,
            Exit::IrqWindowOpen { .. } => KVM_EXIT_IRQ_WINDOW_OPEN,
            Exit::Shutdown => KVM_EXIT_SHUTDOWN,
            Exit::FailEntry { .. } => KVM_EXIT_FAIL_ENTRY,
            Exit::Intr => KVM_EXIT_INTR,
            Exit::SetTpr => KVM_EXIT_SET_TPR,
            Exit::TprAccess { .. } => KVM_EXIT_TPR_ACCESS,
            Exit::S390Sieic { .. } => KVM_EXIT_S390_SIEIC,
            Exit::S390Reset { .. } => KVM_EXIT_S390_RESET,
            Exit::Dcr { .. } => KVM_EXIT_DCR,
            Exit::Nmi => KVM_EXIT_NMI,
            Exit::InternalError { .. } => KVM_EXIT_INTERNAL_ERROR,
            Exit::Osi { .. } => KVM_EXIT_OSI,
            Exit::PaprHcall { .. } => KVM_EXIT_PAPR_HCALL,
            Exit::S390Ucontrol { .. } => KVM_EXIT_S390_UCONTROL,
            Exit::Watchdog => KVM_EXIT_WATCHDOG,
            Exit::S390Tsch { .. } => KVM_EXIT_S390_TSCH,
            Exit::Epr { .. } => KVM_EXIT_EPR,
            Exit::SystemEvent { .. } => KVM_EXIT_SYSTEM_EVENT,
            Exit::S390Stsi { .. } => KVM_EXIT_S390_STSI,
            Exit::IoapicEoi { .. } => KVM_EXIT_IOAPIC_EOI,
            Exit::HyperV(_) => KVM_EXIT_HYPERV,
            Exit::ArmNisv { .. } => KVM_EXIT_ARM_NISV,
            Exit::X86Rdmsr(_) => KVM_EXIT_X86_RDMSR,
            Exit::X86Wrmsr(_) => KVM_EXIT_X86_WRMSR,
            Exit::DirtyRingFull => KVM_EXIT_DIRTY_RING_FULL,
            Exit::ApResetHold => KVM_EXIT_AP_RESET_HOLD,
            Exit::X86BusLock => KVM_EXIT_X86_BUS_LOCK,
            Exit::Xen(_) => KVM_EXIT_XEN,
            Exit::RiscvSbi { .. } => KVM_EXIT_RISCV_SBI,
            Exit::RiscvCsr { .. } => KVM_EXIT_RISCV_CSR,
            Exit::Notify { .. } => KVM_EXIT_NOTIFY,
            Exit::LoongarchIocsr(_) => KVM_EXIT_LOONGARCH_IOCSR,
            Exit::MemoryFault { .. } => KVM_EXIT_MEMORY_FAULT,
            Exit::Tdx(_) => KVM_EXIT_TDX,
            Exit::ArmSea { .. } => KVM_EXIT_ARM_SEA,
            Exit::Unknown(reason) => *reason,
        }
    }

    /// The kernel's name for the reason, e.g. `"KVM_EXIT_IO"`, or `"unknown"`.
    pub fn reason_name(&self) -> &'static str {
        abi::exit_reason_name(self.reason()).unwrap_or("unknown")
    }
}

/// A field of the `kvm_run` page held a value the ABI does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// `io.direction` was neither `KVM_EXIT_IO_IN` (0) nor `KVM_EXIT_IO_OUT` (1).
    IoDirection(u8),
    /// `io.size` was not 1, 2 or 4.
    IoSize(u8),
    /// `io.count` was 0.
    IoCount,
    /// `io.data_offset + io.size * io.count` left the mapping, or overlapped bytes another
    /// thread may write (`immediate_exit`, the coalesced-MMIO ring).
    IoData {
        /// `io.data_offset` as found.
        data_offset: u64,
        /// `io.size * io.count`.
        len: u64,
        /// Size of the `kvm_run` mapping.
        mapping_len: usize,
    },
    /// `mmio.len` was not in 1..=8.
    MmioLen(u32),
    /// `iocsr_io.len` was not in 1..=8.
    IocsrLen(u32),
    /// `internal.ndata` was above 16.
    InternalNdata(u32),
    /// `system_event.ndata` was above 16.
    SystemEventNdata(u32),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::IoDirection(d) => write!(f, "io.direction is {d}, not 0 (in) or 1 (out)"),
            DecodeError::IoSize(s) => write!(f, "io.size is {s}, not 1, 2 or 4"),
            DecodeError::IoCount => write!(f, "io.count is 0"),
            DecodeError::IoData {
                data_offset,
                len,
                mapping_len,
            } => write!(
                f,
                "io.data_offset {data_offset:#x} + {len} bytes is outside the {mapping_len}-byte \
                 kvm_run mapping's private part"
            ),
            DecodeError::MmioLen(len) => write!(f, "mmio.len is {len}, not 1..=8"),
            DecodeError::IocsrLen(len) => write!(f, "iocsr_io.len is {len}, not 1..=8"),
            DecodeError::InternalNdata(n) => write!(f, "internal.ndata is {n}, more than 16"),
            DecodeError::SystemEventNdata(n) => {
                write!(f, "system_event.ndata is {n}, more than 16")
            }
        }
    }
}

impl std::error::Error for DecodeError {}
