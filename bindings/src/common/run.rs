//! `struct kvm_run` (`<linux/kvm.h>`), the page shared with the kernel at offset 0 of every vCPU
//! mapping, stamped out per architecture by [`kvm_run!`].
//!
//! Most of `kvm_run` is the same everywhere, but three parts are not: the `debug` exit member
//! holds the architecture's `struct kvm_debug_exit_arch`, the `s` union holds its
//! `struct kvm_sync_regs`, and s390 inserts `psw_mask`/`psw_addr` before the exit union (moving
//! everything after it). An architecture module invokes the macro once with those parts and the
//! header's offsets for its build; the exit union's members come from [`exits`](super::exits) and
//! [`exits_other`](super::exits_other).

/// Defines `kvm_run_exit_debug`, the exit union `kvm_run_exit`, the sync-regs union `kvm_run_s`
/// and `kvm_run` itself for one architecture, in the invoking module.
///
/// ```text
/// kvm_run! {
///     debug_arch: kvm_debug_exit_arch (size 32, align 8),
///     sync_regs: kvm_sync_regs (align 8),  // the union `s` takes its alignment
///     fields_before_exit {},          // s390: `pub psw_mask: u64 => (32, "__u64"), ...`
///     exit at 32, kvm_valid_regs at 288, kvm_dirty_regs at 296, s at 304, size 2352,
/// }
/// ```
///
/// The numbers are the header's for that architecture and are asserted like every other layout.
macro_rules! kvm_run {
    (
        debug_arch: $debug_arch:ident (size $debug_size:literal, align $debug_align:literal),
        sync_regs: $sync_regs:ident (align $sync_align:literal),
        fields_before_exit { $($before_exit:tt)* },
        exit at $exit:literal, kvm_valid_regs at $valid:literal, kvm_dirty_regs at $dirty:literal,
        s at $s:literal, size $size:literal $(,)?
    ) => {
        $crate::layout::abi! {
            /// `KVM_EXIT_DEBUG`: the architecture's debug exit data.
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct kvm_run_exit_debug in "debug" (size $debug_size, align $debug_align) {
                /// What triggered the exit.
                pub arch: $debug_arch => (0, "struct kvm_debug_exit_arch"),
            }
        }

        $crate::layout::abi! {
            /// The anonymous union in `kvm_run` after `apic_base`: the data of the exit named by
            /// `exit_reason`. Reading a member is only meaningful for its exit reason.
            #[derive(Clone, Copy)]
            pub union kvm_run_exit (size 256, align 8, zeroed by padding) {
                /// `KVM_EXIT_UNKNOWN`.
                pub hw: $crate::common::kvm_run_exit_hw => (0, "struct {...}", expand),
                /// `KVM_EXIT_FAIL_ENTRY`.
                pub fail_entry: $crate::common::kvm_run_exit_fail_entry
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_EXCEPTION`.
                pub ex: $crate::common::kvm_run_exit_ex => (0, "struct {...}", expand),
                /// `KVM_EXIT_IO`.
                pub io: $crate::common::kvm_run_exit_io => (0, "struct {...}", expand),
                /// `KVM_EXIT_DEBUG`.
                pub debug: kvm_run_exit_debug => (0, "struct {...}", expand),
                /// `KVM_EXIT_MMIO`.
                pub mmio: $crate::common::kvm_run_exit_mmio => (0, "struct {...}", expand),
                /// `KVM_EXIT_LOONGARCH_IOCSR`.
                pub iocsr_io: $crate::common::kvm_run_exit_iocsr_io
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_HYPERCALL`.
                pub hypercall: $crate::common::kvm_run_exit_hypercall
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_TPR_ACCESS`.
                pub tpr_access: $crate::common::kvm_run_exit_tpr_access
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_S390_SIEIC`.
                pub s390_sieic: $crate::common::kvm_run_exit_s390_sieic
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_S390_RESET`: `KVM_S390_RESET_*` bits.
                pub s390_reset_flags: u64 => (0, "__u64"),
                /// `KVM_EXIT_S390_UCONTROL`.
                pub s390_ucontrol: $crate::common::kvm_run_exit_s390_ucontrol
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_DCR`.
                pub dcr: $crate::common::kvm_run_exit_dcr => (0, "struct {...}", expand),
                /// `KVM_EXIT_INTERNAL_ERROR`.
                pub internal: $crate::common::kvm_run_exit_internal
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_INTERNAL_ERROR` with `KVM_INTERNAL_ERROR_EMULATION`.
                pub emulation_failure: $crate::common::kvm_run_exit_emulation_failure
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_OSI`.
                pub osi: $crate::common::kvm_run_exit_osi => (0, "struct {...}", expand),
                /// `KVM_EXIT_PAPR_HCALL`.
                pub papr_hcall: $crate::common::kvm_run_exit_papr_hcall
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_S390_TSCH`.
                pub s390_tsch: $crate::common::kvm_run_exit_s390_tsch
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_EPR`.
                pub epr: $crate::common::kvm_run_exit_epr => (0, "struct {...}", expand),
                /// `KVM_EXIT_SYSTEM_EVENT`.
                pub system_event: $crate::common::kvm_run_exit_system_event
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_S390_STSI`.
                pub s390_stsi: $crate::common::kvm_run_exit_s390_stsi
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_IOAPIC_EOI`.
                pub eoi: $crate::common::kvm_run_exit_eoi => (0, "struct {...}", expand),
                /// `KVM_EXIT_HYPERV`.
                pub hyperv: $crate::common::kvm_hyperv_exit => (0, "struct kvm_hyperv_exit"),
                /// `KVM_EXIT_ARM_NISV`.
                pub arm_nisv: $crate::common::kvm_run_exit_arm_nisv
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_X86_RDMSR` / `KVM_EXIT_X86_WRMSR`.
                pub msr: $crate::common::kvm_run_exit_msr => (0, "struct {...}", expand),
                /// `KVM_EXIT_XEN`.
                pub xen: $crate::common::kvm_xen_exit => (0, "struct kvm_xen_exit"),
                /// `KVM_EXIT_RISCV_SBI`.
                pub riscv_sbi: $crate::common::kvm_run_exit_riscv_sbi
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_RISCV_CSR`.
                pub riscv_csr: $crate::common::kvm_run_exit_riscv_csr
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_NOTIFY`.
                pub notify: $crate::common::kvm_run_exit_notify => (0, "struct {...}", expand),
                /// `KVM_EXIT_MEMORY_FAULT`.
                pub memory_fault: $crate::common::kvm_run_exit_memory_fault
                    => (0, "struct {...}", expand),
                /// `KVM_EXIT_TDX`.
                pub tdx: $crate::common::kvm_run_exit_tdx => (0, "struct {...}", expand),
                /// `KVM_EXIT_ARM_SEA`.
                pub arm_sea: $crate::common::kvm_run_exit_arm_sea => (0, "struct {...}", expand),
                /// Fixes the size of the union.
                pub padding: [u8; 256] => (0, "char[256]"),
            }
        }

        $crate::layout::abi! {
            /// The union `s` at the end of `kvm_run`: registers synchronised on every exit
            /// (`KVM_CAP_SYNC_REGS`).
            #[derive(Clone, Copy)]
            pub union kvm_run_s in "s" (size 2048, align $sync_align, zeroed by padding) {
                /// The architecture's register sets, selected by `kvm_valid_regs` and
                /// `kvm_dirty_regs`.
                pub regs: $sync_regs => (0, "struct kvm_sync_regs"),
                /// Fixes the size of the union (`SYNC_REGS_SIZE_BYTES`).
                pub padding: [u8; $crate::common::SYNC_REGS_SIZE_BYTES] => (0, "char[2048]"),
            }
        }

        $crate::layout::abi! {
            /// `struct kvm_run`: offset 0 of the vCPU mapping (`mmap(vcpu_fd, 0)` of
            /// `KVM_GET_VCPU_MMAP_SIZE` bytes). The kernel writes it during `KVM_RUN`; user space
            /// writes the "in" fields and the exit data it answers with.
            #[derive(Clone, Copy)]
            pub struct kvm_run (size $size, align 8) {
                /// In: ask for `KVM_EXIT_IRQ_WINDOW_OPEN` when the guest can take an interrupt.
                pub request_interrupt_window: u8 => (0, "__u8"),
                /// In: non-zero makes `KVM_RUN` return `EINTR` at once
                /// (`KVM_CAP_IMMEDIATE_EXIT`). Written from other threads: use an atomic store.
                pub immediate_exit: u8 => (1, "__u8"),
                /// Padding.
                pub padding1: [u8; 6] => (2, "__u8[6]"),
                /// Out: one of [`EXIT_REASONS`](crate::EXIT_REASONS) (or a newer one).
                pub exit_reason: u32 => (8, "__u32"),
                /// Out: the guest can take an interrupt now.
                pub ready_for_interrupt_injection: u8 => (12, "__u8"),
                /// Out: the guest's interrupt flag.
                pub if_flag: u8 => (13, "__u8"),
                /// Out: architecture flags (`KVM_RUN_X86_*` on x86).
                pub flags: u16 => (14, "__u16"),
                /// In and out: CR8 (x86 task priority).
                pub cr8: u64 => (16, "__u64"),
                /// In and out: the APIC base MSR.
                pub apic_base: u64 => (24, "__u64"),
                $($before_exit)*
                /// Out: the data of the exit named by `exit_reason` (a C anonymous union).
                pub exit: kvm_run_exit => ($exit, inline),
                /// In: register sets the kernel should write to `s.regs` on exit.
                pub kvm_valid_regs: u64 => ($valid, "__u64"),
                /// In: register sets user space changed in `s.regs`.
                pub kvm_dirty_regs: u64 => ($dirty, "__u64"),
                /// Registers shared with the kernel.
                pub s: kvm_run_s => ($s, "union {...}", expand),
            }
        }
    };
}
pub(crate) use kvm_run;
