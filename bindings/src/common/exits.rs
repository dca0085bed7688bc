//! The members of `kvm_run`'s exit union that x86 produces, or that every architecture shares
//! (`<linux/kvm.h>`, `struct kvm_run`, the anonymous union after `apic_base`; api.rst section 5,
//! "The kvm_run structure").
//!
//! The kernel declares these structs anonymously inside `kvm_run`; here each is a named type
//! `kvm_run_exit_<member>`, and `in "<member>"` records the C designator that reaches it, so the
//! layout of `kvm_run` lists `io.port`, `mmio.len`, ... Offsets are relative to the member; the
//! member itself starts at `kvm_run` offset 32 on x86.
//!
//! These are the bytes of a page the kernel writes while the vCPU runs: read them, check them
//! (`io.size`, `mmio.len`, `internal.ndata` are not guaranteed sane), never trust them.

use crate::layout::abi;

abi! {
    /// `KVM_EXIT_UNKNOWN`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_hw in "hw" (size 8, align 8) {
        /// The hardware's exit reason (VMX/SVM exit code), when KVM did not know it.
        pub hardware_exit_reason: u64 => (0, "__u64"),
    }
}

abi! {
    /// `KVM_EXIT_FAIL_ENTRY`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_fail_entry in "fail_entry" (size 16, align 8) {
        /// Why the hardware refused VM entry (on VMX, the exit reason with bit 31 set).
        pub hardware_entry_failure_reason: u64 => (0, "__u64"),
        /// The host CPU the entry failed on.
        pub cpu: u32 => (8, "__u32"),
    }
}

abi! {
    /// `KVM_EXIT_EXCEPTION` (not produced by current x86 KVM).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_ex in "ex" (size 8, align 4) {
        /// Exception vector.
        pub exception: u32 => (0, "__u32"),
        /// Its error code.
        pub error_code: u32 => (4, "__u32"),
    }
}

abi! {
    /// `KVM_EXIT_IO`: `count` accesses of `size` bytes each to `port`; the bytes are at
    /// `data_offset` in the vCPU mapping (to be filled by user space for `in`).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_io in "io" (size 16, align 8) {
        /// `KVM_EXIT_IO_IN` (0) or `KVM_EXIT_IO_OUT` (1).
        pub direction: u8 => (0, "__u8"),
        /// Bytes per access: 1, 2 or 4.
        pub size: u8 => (1, "__u8"),
        /// The I/O port.
        pub port: u16 => (2, "__u16"),
        /// Number of accesses (more than 1 for `rep ins`/`rep outs`).
        pub count: u32 => (4, "__u32"),
        /// Offset of the data from the start of the `kvm_run` mapping (not of this struct).
        pub data_offset: u64 => (8, "__u64"),
    }
}

abi! {
    /// `KVM_EXIT_MMIO`: a guest memory access no slot backs, or a write to a read-only slot.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_mmio in "mmio" (size 24, align 8) {
        /// Guest physical address of the access.
        pub phys_addr: u64 => (0, "__u64"),
        /// The data: written by the guest, or to be filled by user space for a read. Only
        /// `data[..len]` is meaningful; the rest is stale.
        pub data: [u8; 8] => (8, "__u8[8]"),
        /// Access width, 1 to 8.
        pub len: u32 => (16, "__u32"),
        /// Non-zero for a write.
        pub is_write: u8 => (20, "__u8"),
    }
}

abi! {
    /// `KVM_EXIT_LOONGARCH_IOCSR`: the same shape as `mmio`, for LoongArch IOCSR space.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_iocsr_io in "iocsr_io" (size 24, align 8, since "6.7") {
        /// IOCSR address.
        pub phys_addr: u64 => (0, "__u64"),
        /// The data; only `data[..len]` is meaningful.
        pub data: [u8; 8] => (8, "__u8[8]"),
        /// Access width in bytes.
        pub len: u32 => (16, "__u32"),
        /// Non-zero for a write.
        pub is_write: u8 => (20, "__u8"),
    }
}

abi! {
    /// The union at the end of `hypercall`: `longmode` until Linux 6.4 made it `flags`.
    #[derive(Clone, Copy)]
    pub union kvm_run_exit_hypercall_u in "hypercall" (size 8, align 8, zeroed by flags) {
        /// Old spelling: non-zero if the hypercall was made in 64-bit mode.
        pub longmode: u32 => (0, "__u32"),
        /// x86: `KVM_EXIT_HYPERCALL_LONG_MODE`; arm64: SMC/16-bit flags.
        pub flags: u64 => (0, "__u64", since "6.4"),
    }
}

abi! {
    /// `KVM_EXIT_HYPERCALL`.
    #[derive(Clone, Copy)]
    pub struct kvm_run_exit_hypercall in "hypercall" (size 72, align 8) {
        /// Hypercall number.
        pub nr: u64 => (0, "__u64"),
        /// Arguments.
        pub args: [u64; 6] => (8, "__u64[6]"),
        /// Return value, written by user space.
        pub ret: u64 => (56, "__u64"),
        /// `longmode` / `flags` (a C anonymous union).
        pub u: kvm_run_exit_hypercall_u => (64, inline),
    }
}

abi! {
    /// `KVM_EXIT_TPR_ACCESS`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_tpr_access in "tpr_access" (size 16, align 8) {
        /// Guest RIP of the access.
        pub rip: u64 => (0, "__u64"),
        /// Non-zero for a write.
        pub is_write: u32 => (8, "__u32"),
        /// Padding.
        pub pad: u32 => (12, "__u32"),
    }
}

abi! {
    /// `KVM_EXIT_INTERNAL_ERROR`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_internal in "internal" (size 136, align 8) {
        /// One of [`INTERNAL_ERRORS`](crate::INTERNAL_ERRORS).
        pub suberror: u32 => (0, "__u32"),
        /// How many of `data` are valid (with `KVM_CAP_INTERNAL_ERROR_DATA`); at most 16.
        pub ndata: u32 => (4, "__u32"),
        /// Extra information, meaning per suberror.
        pub data: [u64; 16] => (8, "__u64[16]"),
    }
}

abi! {
    /// `KVM_EXIT_INTERNAL_ERROR` with suberror `KVM_INTERNAL_ERROR_EMULATION`: an overlay of
    /// `internal` that is ABI (api.rst). The kernel wraps `insn_size`/`insn_bytes` in an anonymous
    /// union of one anonymous struct, which lays out exactly like the two fields here.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_emulation_failure in "emulation_failure" (size 32, align 8) {
        /// `KVM_INTERNAL_ERROR_EMULATION`.
        pub suberror: u32 => (0, "__u32"),
        /// Valid 64-bit words from `flags` on, as in `internal.ndata`.
        pub ndata: u32 => (4, "__u32"),
        /// Which fields below are valid: `KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES`.
        pub flags: u64 => (8, "__u64"),
        /// How many of `insn_bytes` are valid.
        pub insn_size: u8 => (16, "__u8"),
        /// The bytes of the instruction that failed to emulate.
        pub insn_bytes: [u8; 15] => (17, "__u8[15]"),
    }
}

abi! {
    /// The union after `ndata` in `system_event`.
    #[derive(Clone, Copy)]
    pub union kvm_run_exit_system_event_u in "system_event"
        (size 128, align 8, zeroed by data) {
        /// Old spelling of `data[0]`, from before `KVM_CAP_SYSTEM_EVENT_DATA`.
        pub flags: u64 => (0, "__u64"),
        /// Event data, `ndata` words of it.
        pub data: [u64; 16] => (0, "__u64[16]"),
    }
}

abi! {
    /// `KVM_EXIT_SYSTEM_EVENT`. The kernel's anonymous union of `flags` and `data[16]` is the
    /// field `u` here; in C both are reached directly (`system_event.data`).
    #[derive(Clone, Copy)]
    pub struct kvm_run_exit_system_event in "system_event" (size 136, align 8) {
        /// One of [`SYSTEM_EVENTS`](crate::SYSTEM_EVENTS) (`type` in C).
        pub type_: u32 => (0, "__u32"),
        /// How many words of `u.data` are valid (with `KVM_CAP_SYSTEM_EVENT_DATA`); at most 16.
        pub ndata: u32 => (4, "__u32"),
        /// `flags` / `data` (a C anonymous union).
        pub u: kvm_run_exit_system_event_u => (8, inline),
    }
}

abi! {
    /// `KVM_EXIT_IOAPIC_EOI`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_eoi in "eoi" (size 1, align 1) {
        /// The vector the guest acknowledged.
        pub vector: u8 => (0, "__u8"),
    }
}

abi! {
    /// `KVM_EXIT_X86_RDMSR` / `KVM_EXIT_X86_WRMSR`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_msr in "msr" (size 24, align 8) {
        /// Written by user space: non-zero injects #GP into the guest.
        pub error: u8 => (0, "__u8"),
        /// Padding.
        pub pad: [u8; 7] => (1, "__u8[7]"),
        /// Why the access exited: [`MSR_EXIT_REASONS`](crate::MSR_EXIT_REASONS) bits.
        pub reason: u32 => (8, "__u32"),
        /// The MSR index.
        pub index: u32 => (12, "__u32"),
        /// The value written, or the value to return for a read.
        pub data: u64 => (16, "__u64"),
    }
}

abi! {
    /// `KVM_EXIT_NOTIFY`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_notify in "notify" (size 4, align 4) {
        /// `KVM_NOTIFY_CONTEXT_INVALID` if the guest cannot go on.
        pub flags: u32 => (0, "__u32"),
    }
}

abi! {
    /// `KVM_EXIT_MEMORY_FAULT`: the guest range user space must resolve.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_memory_fault in "memory_fault" (size 24, align 8, since "6.8") {
        /// `KVM_MEMORY_EXIT_FLAG_PRIVATE` for a fault on private memory.
        pub flags: u64 => (0, "__u64"),
        /// First guest physical address.
        pub gpa: u64 => (8, "__u64"),
        /// Length in bytes.
        pub size: u64 => (16, "__u64"),
    }
}
