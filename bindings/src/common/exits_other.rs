//! The members of `kvm_run`'s exit union that other architectures, hypervisor emulations and
//! confidential-computing guests produce (`<linux/kvm.h>`, `struct kvm_run`, and the named
//! `struct kvm_hyperv_exit` and `struct kvm_xen_exit` it contains).
//!
//! An x86 VMM never sees most of these, but the union is one layout on every architecture and a
//! decoder that knows every member can say what an unexpected exit was. Naming follows
//! [`exits`](super::exits): `kvm_run_exit_<member>`, and `_u` for a nested union.
//!
//! `riscv_sbi` and `riscv_csr` use C `unsigned long`; every architecture KVM supports today is
//! 64-bit, so it is `u64` here.

use crate::layout::abi;

abi! {
    /// `KVM_EXIT_S390_SIEIC`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_s390_sieic in "s390_sieic" (size 8, align 4) {
        /// Interception code.
        pub icptcode: u8 => (0, "__u8"),
        /// Instruction parameter A.
        pub ipa: u16 => (2, "__u16"),
        /// Instruction parameter B.
        pub ipb: u32 => (4, "__u32"),
    }
}

abi! {
    /// `KVM_EXIT_S390_UCONTROL`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_s390_ucontrol in "s390_ucontrol" (size 16, align 8) {
        /// Translation-exception code.
        pub trans_exc_code: u64 => (0, "__u64"),
        /// Program interruption code.
        pub pgm_code: u32 => (8, "__u32"),
    }
}

abi! {
    /// `KVM_EXIT_DCR` (deprecated).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_dcr in "dcr" (size 12, align 4) {
        /// DCR number.
        pub dcrn: u32 => (0, "__u32"),
        /// The value.
        pub data: u32 => (4, "__u32"),
        /// Non-zero for a write.
        pub is_write: u8 => (8, "__u8"),
    }
}

abi! {
    /// `KVM_EXIT_OSI`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_osi in "osi" (size 256, align 8) {
        /// The guest's general-purpose registers.
        pub gprs: [u64; 32] => (0, "__u64[32]"),
    }
}

abi! {
    /// `KVM_EXIT_PAPR_HCALL`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_papr_hcall in "papr_hcall" (size 88, align 8) {
        /// Hypercall number.
        pub nr: u64 => (0, "__u64"),
        /// Return value, written by user space.
        pub ret: u64 => (8, "__u64"),
        /// Arguments.
        pub args: [u64; 9] => (16, "__u64[9]"),
    }
}

abi! {
    /// `KVM_EXIT_S390_TSCH`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_s390_tsch in "s390_tsch" (size 20, align 4) {
        /// Subchannel id.
        pub subchannel_id: u16 => (0, "__u16"),
        /// Subchannel number.
        pub subchannel_nr: u16 => (2, "__u16"),
        /// I/O interruption parameter.
        pub io_int_parm: u32 => (4, "__u32"),
        /// I/O interruption word.
        pub io_int_word: u32 => (8, "__u32"),
        /// Instruction parameter B.
        pub ipb: u32 => (12, "__u32"),
        /// Non-zero if an interrupt was dequeued.
        pub dequeued: u8 => (16, "__u8"),
    }
}

abi! {
    /// `KVM_EXIT_EPR`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_epr in "epr" (size 4, align 4) {
        /// External proxy register value, written by user space.
        pub epr: u32 => (0, "__u32"),
    }
}

abi! {
    /// `KVM_EXIT_S390_STSI`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_s390_stsi in "s390_stsi" (size 16, align 8) {
        /// Guest address of the result block.
        pub addr: u64 => (0, "__u64"),
        /// Access register.
        pub ar: u8 => (8, "__u8"),
        /// Reserved.
        pub reserved: u8 => (9, "__u8"),
        /// Function code.
        pub fc: u8 => (10, "__u8"),
        /// Selector 1.
        pub sel1: u8 => (11, "__u8"),
        /// Selector 2.
        pub sel2: u16 => (12, "__u16"),
    }
}

abi! {
    /// `KVM_EXIT_HYPERV`, type `KVM_EXIT_HYPERV_SYNIC`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_hyperv_exit_synic in "u.synic" (size 32, align 8) {
        /// The SynIC MSR written.
        pub msr: u32 => (0, "__u32"),
        /// Padding.
        pub pad2: u32 => (4, "__u32"),
        /// SCONTROL.
        pub control: u64 => (8, "__u64"),
        /// SIEFP.
        pub evt_page: u64 => (16, "__u64"),
        /// SIMP.
        pub msg_page: u64 => (24, "__u64"),
    }
}

abi! {
    /// `KVM_EXIT_HYPERV`, type `KVM_EXIT_HYPERV_HCALL`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_hyperv_exit_hcall in "u.hcall" (size 32, align 8) {
        /// Hypercall input value.
        pub input: u64 => (0, "__u64"),
        /// Result, written by user space.
        pub result: u64 => (8, "__u64"),
        /// Parameters.
        pub params: [u64; 2] => (16, "__u64[2]"),
    }
}

abi! {
    /// `KVM_EXIT_HYPERV`, type `KVM_EXIT_HYPERV_SYNDBG`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_hyperv_exit_syndbg in "u.syndbg" (size 48, align 8) {
        /// The synthetic-debugger MSR accessed.
        pub msr: u32 => (0, "__u32"),
        /// Padding.
        pub pad2: u32 => (4, "__u32"),
        /// Control.
        pub control: u64 => (8, "__u64"),
        /// Status.
        pub status: u64 => (16, "__u64"),
        /// Send page.
        pub send_page: u64 => (24, "__u64"),
        /// Receive page.
        pub recv_page: u64 => (32, "__u64"),
        /// Pending page.
        pub pending_page: u64 => (40, "__u64"),
    }
}

abi! {
    /// The union `u` of `struct kvm_hyperv_exit`, chosen by its `type`.
    #[derive(Clone, Copy)]
    pub union kvm_hyperv_exit_u in "u" (size 48, align 8, zeroed by syndbg) {
        /// `KVM_EXIT_HYPERV_SYNIC`.
        pub synic: kvm_hyperv_exit_synic => (0, "struct {...}", expand),
        /// `KVM_EXIT_HYPERV_HCALL`.
        pub hcall: kvm_hyperv_exit_hcall => (0, "struct {...}", expand),
        /// `KVM_EXIT_HYPERV_SYNDBG`.
        pub syndbg: kvm_hyperv_exit_syndbg => (0, "struct {...}", expand),
    }
}

abi! {
    /// `struct kvm_hyperv_exit`: the `hyperv` member of `kvm_run` (`KVM_EXIT_HYPERV`).
    #[derive(Clone, Copy)]
    pub struct kvm_hyperv_exit (size 56, align 8) {
        /// `KVM_EXIT_HYPERV_SYNIC`, `_HCALL` or `_SYNDBG` (`type` in C).
        pub type_: u32 => (0, "__u32"),
        /// Padding.
        pub pad1: u32 => (4, "__u32"),
        /// Data chosen by `type`.
        pub u: kvm_hyperv_exit_u => (8, "union {...}", expand),
    }
}

abi! {
    /// `KVM_EXIT_ARM_NISV`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_arm_nisv in "arm_nisv" (size 16, align 8) {
        /// ESR_EL2 ISS bits.
        pub esr_iss: u64 => (0, "__u64"),
        /// Faulting intermediate physical address.
        pub fault_ipa: u64 => (8, "__u64"),
    }
}

abi! {
    /// `KVM_EXIT_XEN`, type `KVM_EXIT_XEN_HCALL`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_xen_exit_hcall in "u.hcall" (size 72, align 8) {
        /// Non-zero if the guest was in 64-bit mode.
        pub longmode: u32 => (0, "__u32"),
        /// The guest's privilege level.
        pub cpl: u32 => (4, "__u32"),
        /// Hypercall number.
        pub input: u64 => (8, "__u64"),
        /// Result, written by user space.
        pub result: u64 => (16, "__u64"),
        /// Parameters.
        pub params: [u64; 6] => (24, "__u64[6]"),
    }
}

abi! {
    /// The union `u` of `struct kvm_xen_exit`.
    #[derive(Clone, Copy)]
    pub union kvm_xen_exit_u in "u" (size 72, align 8, zeroed by hcall) {
        /// `KVM_EXIT_XEN_HCALL`.
        pub hcall: kvm_xen_exit_hcall => (0, "struct {...}", expand),
    }
}

abi! {
    /// `struct kvm_xen_exit`: the `xen` member of `kvm_run` (`KVM_EXIT_XEN`).
    #[derive(Clone, Copy)]
    pub struct kvm_xen_exit (size 80, align 8) {
        /// `KVM_EXIT_XEN_HCALL` (`type` in C).
        pub type_: u32 => (0, "__u32"),
        /// Data chosen by `type`.
        pub u: kvm_xen_exit_u => (8, "union {...}", expand),
    }
}

abi! {
    /// `KVM_EXIT_RISCV_SBI`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_riscv_sbi in "riscv_sbi" (size 80, align 8) {
        /// SBI extension id.
        pub extension_id: u64 => (0, "unsigned long"),
        /// SBI function id.
        pub function_id: u64 => (8, "unsigned long"),
        /// Arguments.
        pub args: [u64; 6] => (16, "unsigned long[6]"),
        /// Return values, written by user space.
        pub ret: [u64; 2] => (64, "unsigned long[2]"),
    }
}

abi! {
    /// `KVM_EXIT_RISCV_CSR`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_riscv_csr in "riscv_csr" (size 32, align 8) {
        /// CSR number.
        pub csr_num: u64 => (0, "unsigned long"),
        /// Value being written.
        pub new_value: u64 => (8, "unsigned long"),
        /// Bits being written.
        pub write_mask: u64 => (16, "unsigned long"),
        /// Value to return, written by user space.
        pub ret_value: u64 => (24, "unsigned long"),
    }
}

abi! {
    /// `KVM_EXIT_TDX`, a TDVMCALL KVM does not know.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_tdx_unknown in "tdx.unknown" (size 48, align 8, since "6.16") {
        /// Return code, written by user space.
        pub ret: u64 => (0, "__u64"),
        /// The call's registers.
        pub data: [u64; 5] => (8, "__u64[5]"),
    }
}

abi! {
    /// `KVM_EXIT_TDX`, TDVMCALL `GetQuote`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_tdx_get_quote in "tdx.get_quote" (size 24, align 8, since "6.16") {
        /// Return code, written by user space.
        pub ret: u64 => (0, "__u64"),
        /// Guest physical address of the shared buffer.
        pub gpa: u64 => (8, "__u64"),
        /// Its size.
        pub size: u64 => (16, "__u64"),
    }
}

abi! {
    /// `KVM_EXIT_TDX`, TDVMCALL `GetTdVmCallInfo`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_tdx_get_tdvmcall_info in "tdx.get_tdvmcall_info"
        (size 48, align 8, since "6.16") {
        /// Return code, written by user space.
        pub ret: u64 => (0, "__u64"),
        /// The leaf asked for.
        pub leaf: u64 => (8, "__u64"),
        /// Output R11.
        pub r11: u64 => (16, "__u64"),
        /// Output R12.
        pub r12: u64 => (24, "__u64"),
        /// Output R13.
        pub r13: u64 => (32, "__u64"),
        /// Output R14.
        pub r14: u64 => (40, "__u64"),
    }
}

abi! {
    /// `KVM_EXIT_TDX`, TDVMCALL `SetupEventNotifyInterrupt`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_tdx_setup_event_notify in "tdx.setup_event_notify"
        (size 16, align 8, since "6.16") {
        /// Return code, written by user space.
        pub ret: u64 => (0, "__u64"),
        /// The interrupt vector.
        pub vector: u64 => (8, "__u64"),
    }
}

abi! {
    /// The anonymous union after `nr` in `tdx`, chosen by `nr`.
    #[derive(Clone, Copy)]
    pub union kvm_run_exit_tdx_u in "tdx" (size 48, align 8, zeroed by unknown, since "6.16") {
        /// A call KVM does not know.
        pub unknown: kvm_run_exit_tdx_unknown => (0, "struct {...}", expand),
        /// `GetQuote`.
        pub get_quote: kvm_run_exit_tdx_get_quote => (0, "struct {...}", expand),
        /// `GetTdVmCallInfo`.
        pub get_tdvmcall_info: kvm_run_exit_tdx_get_tdvmcall_info
            => (0, "struct {...}", expand),
        /// `SetupEventNotifyInterrupt`.
        pub setup_event_notify: kvm_run_exit_tdx_setup_event_notify
            => (0, "struct {...}", expand),
    }
}

abi! {
    /// `KVM_EXIT_TDX`.
    #[derive(Clone, Copy)]
    pub struct kvm_run_exit_tdx in "tdx" (size 64, align 8, since "6.16") {
        /// Flags, none defined yet.
        pub flags: u64 => (0, "__u64"),
        /// The TDVMCALL leaf; selects the member of `u`.
        pub nr: u64 => (8, "__u64"),
        /// Per-call data (a C anonymous union).
        pub u: kvm_run_exit_tdx_u => (16, inline),
    }
}

abi! {
    /// `KVM_EXIT_ARM_SEA` (Linux 6.19; absent from Linux 6.18, whose union is the same size).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_run_exit_arm_sea in "arm_sea" (size 32, align 8, since "6.19") {
        /// `KVM_EXIT_ARM_SEA_FLAG_GPA_VALID`.
        pub flags: u64 => (0, "__u64"),
        /// Sanitised ESR_EL2.
        pub esr: u64 => (8, "__u64"),
        /// Faulting guest virtual address.
        pub gva: u64 => (16, "__u64"),
        /// Faulting guest physical address, if `flags` says so.
        pub gpa: u64 => (24, "__u64"),
    }
}
