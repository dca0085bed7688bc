//! The hardware's own reasons, for the two exits that carry one: `KVM_EXIT_UNKNOWN`
//! (`hw.hardware_exit_reason`, an exit KVM had no handler for) and `KVM_EXIT_FAIL_ENTRY`
//! (`fail_entry.hardware_entry_failure_reason`, an entry the CPU refused).
//!
//! What the number means depends on the backend. On Intel VMX it is the VM-exit reason (SDM
//! vol. 3, appendix C: bits 15:0 the basic reason, bit 31 "VM-entry failure"), or for a failed
//! `VMLAUNCH`/`VMRESUME` the VM-instruction error (SDM 31.4). On AMD SVM it is the `EXITCODE`
//! of the VMCB (APM vol. 2, appendix C; `<asm/svm.h>`), `VMEXIT_INVALID` (-1) for a failed
//! `VMRUN`. Entry failures are told apart by value; for unknown exits the backend module
//! loaded on this host decides ([`kvm_backend`]), and where it is neither (PVM) both readings
//! are given.

use std::fmt;
use std::path::Path;
use std::sync::OnceLock;

/// Which hardware virtualisation a number comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    /// Intel VMX (`kvm_intel`).
    Vmx,
    /// AMD SVM (`kvm_amd`).
    Svm,
}

/// The KVM backend module loaded on this host: `kvm_intel`, `kvm_amd` or `kvm_pvm`, if any
/// (read once from `/sys/module`).
pub fn kvm_backend() -> Option<&'static str> {
    static BACKEND: OnceLock<Option<&'static str>> = OnceLock::new();
    *BACKEND.get_or_init(|| {
        ["kvm_intel", "kvm_amd", "kvm_pvm"]
            .into_iter()
            .find(|module| Path::new("/sys/module").join(module).exists())
    })
}

/// The vendor whose numbers this host's KVM reports, if it is VMX or SVM.
pub fn host_vendor() -> Option<Vendor> {
    match kvm_backend() {
        Some("kvm_intel") => Some(Vendor::Vmx),
        Some("kvm_amd") => Some(Vendor::Svm),
        _ => None,
    }
}

/// One reading of a hardware reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwareReason {
    /// A VMX exit reason: basic reason in bits 15:0, flags above (bit 31: entry failure).
    VmxExit(u64),
    /// A VMX VM-instruction error (a `VMLAUNCH`/`VMRESUME` that failed outright).
    VmxInstructionError(u64),
    /// An SVM `EXITCODE`.
    SvmExit(u64),
}

/// VMX: bit 31 of the exit reason, "VM-entry failure".
pub const VMX_ENTRY_FAILURE: u64 = 1 << 31;
/// SVM: `VMEXIT_INVALID`, the exit code of a `VMRUN` with invalid guest state (-1).
pub const SVM_EXIT_ERR: u64 = u64::MAX;

/// Reads `fail_entry.hardware_entry_failure_reason`: VMX exit reasons have bit 31 set, SVM
/// reports -1, and anything else is a VMX VM-instruction error number.
pub fn explain_entry_failure(reason: u64) -> HardwareReason {
    if reason == SVM_EXIT_ERR || reason == u64::from(u32::MAX) {
        HardwareReason::SvmExit(SVM_EXIT_ERR)
    } else if reason & VMX_ENTRY_FAILURE != 0 {
        HardwareReason::VmxExit(reason)
    } else {
        HardwareReason::VmxInstructionError(reason)
    }
}

/// Reads `hw.hardware_exit_reason` as `vendor` numbers it.
pub fn explain_exit(reason: u64, vendor: Vendor) -> HardwareReason {
    match vendor {
        Vendor::Vmx => HardwareReason::VmxExit(reason),
        Vendor::Svm => HardwareReason::SvmExit(reason),
    }
}

/// `hw.hardware_exit_reason` as this host's backend numbers it: both readings where the
/// backend is neither VMX nor SVM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostExitReason(pub u64);

impl fmt::Display for HostExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match host_vendor() {
            Some(vendor) => explain_exit(self.0, vendor).fmt(f),
            None => write!(
                f,
                "{} or {}",
                explain_exit(self.0, Vendor::Vmx),
                explain_exit(self.0, Vendor::Svm)
            ),
        }
    }
}

impl HardwareReason {
    /// The name of the reason in its table, if it has one.
    pub fn name(&self) -> Option<&'static str> {
        match *self {
            HardwareReason::VmxExit(reason) => lookup(VMX_EXIT_REASONS, reason & 0xFFFF),
            HardwareReason::VmxInstructionError(error) => lookup(VMX_INSTRUCTION_ERRORS, error),
            HardwareReason::SvmExit(code) => lookup(SVM_EXIT_CODES, code),
        }
    }
}

impl fmt::Display for HardwareReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HardwareReason::VmxExit(reason) => {
                let basic = reason & 0xFFFF;
                let name = self.name().unwrap_or("unknown basic exit reason");
                write!(f, "VMX: {name} ({basic})")
            }
            HardwareReason::VmxInstructionError(error) => {
                let name = self.name().unwrap_or("unknown error");
                write!(f, "VMX: VM-instruction error {error}: {name}")
            }
            HardwareReason::SvmExit(code) => match self.name() {
                Some(name) => write!(f, "SVM: {name} ({code:#x})"),
                None => svm_range(f, code),
            },
        }
    }
}

/// SVM codes that come in ranges: control and debug register accesses, exceptions.
fn svm_range(f: &mut fmt::Formatter<'_>, code: u64) -> fmt::Result {
    let (what, base) = match code {
        0x000..=0x00F => ("read of CR", 0x000),
        0x010..=0x01F => ("write of CR", 0x010),
        0x020..=0x02F => ("read of DR", 0x020),
        0x030..=0x03F => ("write of DR", 0x030),
        0x040..=0x05F => ("exception vector ", 0x040),
        0x090..=0x09F => ("trap after a write of CR", 0x090),
        _ => return write!(f, "SVM: unknown exit code ({code:#x})"),
    };
    write!(f, "SVM: {what}{} ({code:#x})", code - base)
}

fn lookup(table: &[(u64, &'static str)], value: u64) -> Option<&'static str> {
    table
        .iter()
        .find(|(number, _)| *number == value)
        .map(|(_, name)| *name)
}

/// VMX basic exit reasons (Intel SDM vol. 3, appendix C).
pub const VMX_EXIT_REASONS: &[(u64, &str)] = &[
    (0, "exception or non-maskable interrupt"),
    (1, "external interrupt"),
    (2, "triple fault"),
    (3, "INIT signal"),
    (4, "start-up IPI"),
    (5, "I/O system-management interrupt"),
    (6, "other SMI"),
    (7, "interrupt window"),
    (8, "NMI window"),
    (9, "task switch"),
    (10, "CPUID"),
    (11, "GETSEC"),
    (12, "HLT"),
    (13, "INVD"),
    (14, "INVLPG"),
    (15, "RDPMC"),
    (16, "RDTSC"),
    (17, "RSM"),
    (18, "VMCALL"),
    (19, "VMCLEAR"),
    (20, "VMLAUNCH"),
    (21, "VMPTRLD"),
    (22, "VMPTRST"),
    (23, "VMREAD"),
    (24, "VMRESUME"),
    (25, "VMWRITE"),
    (26, "VMXOFF"),
    (27, "VMXON"),
    (28, "control-register access"),
    (29, "MOV DR"),
    (30, "I/O instruction"),
    (31, "RDMSR"),
    (32, "WRMSR"),
    (33, "VM-entry failure due to invalid guest state"),
    (34, "VM-entry failure due to MSR loading"),
    (36, "MWAIT"),
    (37, "monitor trap flag"),
    (39, "MONITOR"),
    (40, "PAUSE"),
    (41, "VM-entry failure due to machine-check event"),
    (43, "TPR below threshold"),
    (44, "APIC access"),
    (45, "virtualized EOI"),
    (46, "access to GDTR or IDTR"),
    (47, "access to LDTR or TR"),
    (48, "EPT violation"),
    (49, "EPT misconfiguration"),
    (50, "INVEPT"),
    (51, "RDTSCP"),
    (52, "VMX-preemption timer expired"),
    (53, "INVVPID"),
    (54, "WBINVD or WBNOINVD"),
    (55, "XSETBV"),
    (56, "APIC write"),
    (57, "RDRAND"),
    (58, "INVPCID"),
    (59, "VMFUNC"),
    (60, "ENCLS"),
    (61, "RDSEED"),
    (62, "page-modification log full"),
    (63, "XSAVES"),
    (64, "XRSTORS"),
    (65, "PCONFIG"),
    (66, "SPP-related event"),
    (67, "UMWAIT"),
    (68, "TPAUSE"),
    (69, "LOADIWKEY"),
    (70, "ENCLV"),
    (72, "ENQCMD PASID translation failure"),
    (73, "ENQCMDS PASID translation failure"),
    (74, "bus lock"),
    (75, "instruction timeout"),
    (76, "SEAMCALL"),
    (77, "TDCALL"),
    (78, "RDMSRLIST"),
    (79, "WRMSRLIST"),
];

/// VMX VM-instruction error numbers (Intel SDM vol. 3, section 31.4).
pub const VMX_INSTRUCTION_ERRORS: &[(u64, &str)] = &[
    (1, "VMCALL executed in VMX root operation"),
    (2, "VMCLEAR with invalid physical address"),
    (3, "VMCLEAR with VMXON pointer"),
    (4, "VMLAUNCH with non-clear VMCS"),
    (5, "VMRESUME with non-launched VMCS"),
    (6, "VMRESUME after VMXOFF"),
    (7, "VM entry with invalid control field(s)"),
    (8, "VM entry with invalid host-state field(s)"),
    (9, "VMPTRLD with invalid physical address"),
    (10, "VMPTRLD with VMXON pointer"),
    (11, "VMPTRLD with incorrect VMCS revision identifier"),
    (12, "VMREAD/VMWRITE from/to unsupported VMCS component"),
    (13, "VMWRITE to read-only VMCS component"),
    (15, "VMXON executed in VMX root operation"),
    (16, "VM entry with invalid executive-VMCS pointer"),
    (17, "VM entry with non-launched executive VMCS"),
    (18, "VM entry with executive-VMCS pointer not VMXON pointer"),
    (19, "VMCALL with non-clear VMCS"),
    (20, "VMCALL with invalid VM-exit control fields"),
    (22, "VMCALL with incorrect MSEG revision identifier"),
    (23, "VMXOFF under dual-monitor treatment of SMIs and SMM"),
    (24, "VMCALL with invalid SMM-monitor features"),
    (
        25,
        "VM entry with invalid VM-execution control fields in executive VMCS",
    ),
    (26, "VM entry with events blocked by MOV SS"),
    (28, "invalid operand to INVEPT/INVVPID"),
];

/// SVM exit codes with one meaning each (`<asm/svm.h>`; ranges are in `svm_range`).
pub const SVM_EXIT_CODES: &[(u64, &str)] = &[
    (0x060, "VMEXIT_INTR: physical interrupt"),
    (0x061, "VMEXIT_NMI"),
    (0x062, "VMEXIT_SMI"),
    (0x063, "VMEXIT_INIT"),
    (0x064, "VMEXIT_VINTR: virtual interrupt window"),
    (0x065, "VMEXIT_CR0_SEL_WRITE"),
    (0x066, "VMEXIT_IDTR_READ"),
    (0x067, "VMEXIT_GDTR_READ"),
    (0x068, "VMEXIT_LDTR_READ"),
    (0x069, "VMEXIT_TR_READ"),
    (0x06a, "VMEXIT_IDTR_WRITE"),
    (0x06b, "VMEXIT_GDTR_WRITE"),
    (0x06c, "VMEXIT_LDTR_WRITE"),
    (0x06d, "VMEXIT_TR_WRITE"),
    (0x06e, "VMEXIT_RDTSC"),
    (0x06f, "VMEXIT_RDPMC"),
    (0x070, "VMEXIT_PUSHF"),
    (0x071, "VMEXIT_POPF"),
    (0x072, "VMEXIT_CPUID"),
    (0x073, "VMEXIT_RSM"),
    (0x074, "VMEXIT_IRET"),
    (0x075, "VMEXIT_SWINT: software interrupt"),
    (0x076, "VMEXIT_INVD"),
    (0x077, "VMEXIT_PAUSE"),
    (0x078, "VMEXIT_HLT"),
    (0x079, "VMEXIT_INVLPG"),
    (0x07a, "VMEXIT_INVLPGA"),
    (0x07b, "VMEXIT_IOIO: port I/O"),
    (0x07c, "VMEXIT_MSR"),
    (0x07d, "VMEXIT_TASK_SWITCH"),
    (0x07e, "VMEXIT_FERR_FREEZE"),
    (0x07f, "VMEXIT_SHUTDOWN"),
    (0x080, "VMEXIT_VMRUN"),
    (0x081, "VMEXIT_VMMCALL"),
    (0x082, "VMEXIT_VMLOAD"),
    (0x083, "VMEXIT_VMSAVE"),
    (0x084, "VMEXIT_STGI"),
    (0x085, "VMEXIT_CLGI"),
    (0x086, "VMEXIT_SKINIT"),
    (0x087, "VMEXIT_RDTSCP"),
    (0x088, "VMEXIT_ICEBP"),
    (0x089, "VMEXIT_WBINVD"),
    (0x08a, "VMEXIT_MONITOR"),
    (0x08b, "VMEXIT_MWAIT"),
    (0x08c, "VMEXIT_MWAIT_CONDITIONAL"),
    (0x08d, "VMEXIT_XSETBV"),
    (0x08e, "VMEXIT_RDPRU"),
    (0x08f, "VMEXIT_EFER_WRITE_TRAP"),
    (0x0a0, "VMEXIT_INVLPGB"),
    (0x0a1, "VMEXIT_INVLPGB_ILLEGAL"),
    (0x0a2, "VMEXIT_INVPCID"),
    (0x0a3, "VMEXIT_MCOMMIT"),
    (0x0a4, "VMEXIT_TLBSYNC"),
    (0x0a5, "VMEXIT_BUSLOCK"),
    (0x0a6, "VMEXIT_IDLE_HLT"),
    (0x400, "VMEXIT_NPF: nested page fault"),
    (0x401, "VMEXIT_AVIC_INCOMPLETE_IPI"),
    (0x402, "VMEXIT_AVIC_NOACCEL"),
    (0x403, "VMEXIT_VMGEXIT"),
    (
        SVM_EXIT_ERR,
        "VMEXIT_INVALID: invalid guest state in the VMCB",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_example_is_explained() {
        let reason = explain_entry_failure(0x8000_0021);
        assert_eq!(reason, HardwareReason::VmxExit(0x8000_0021));
        assert_eq!(
            reason.to_string(),
            "VMX: VM-entry failure due to invalid guest state (33)"
        );
    }

    #[test]
    fn entry_failures_are_told_apart_by_value() {
        assert_eq!(
            explain_entry_failure(7).to_string(),
            "VMX: VM-instruction error 7: VM entry with invalid control field(s)"
        );
        for svm in [u64::MAX, 0xFFFF_FFFF] {
            assert_eq!(
                explain_entry_failure(svm).to_string(),
                "SVM: VMEXIT_INVALID: invalid guest state in the VMCB (0xffffffffffffffff)"
            );
        }
    }

    #[test]
    fn exit_codes_by_vendor_and_range() {
        assert_eq!(explain_exit(12, Vendor::Vmx).to_string(), "VMX: HLT (12)");
        assert_eq!(
            explain_exit(0x7b, Vendor::Svm).to_string(),
            "SVM: VMEXIT_IOIO: port I/O (0x7b)"
        );
        assert_eq!(
            explain_exit(0x4d, Vendor::Svm).to_string(),
            "SVM: exception vector 13 (0x4d)"
        );
        assert_eq!(
            explain_exit(0x13, Vendor::Svm).to_string(),
            "SVM: write of CR3 (0x13)"
        );
        assert_eq!(
            explain_exit(0x300, Vendor::Svm).to_string(),
            "SVM: unknown exit code (0x300)"
        );
        assert_eq!(
            explain_exit(71, Vendor::Vmx).to_string(),
            "VMX: unknown basic exit reason (71)"
        );
    }

    #[test]
    fn tables_are_sorted_and_unique() {
        for table in [VMX_EXIT_REASONS, VMX_INSTRUCTION_ERRORS, SVM_EXIT_CODES] {
            assert!(table.windows(2).all(|pair| pair[0].0 < pair[1].0));
        }
    }
}
