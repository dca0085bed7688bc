//! x86 vCPU state of `<asm/kvm.h>` (arch/x86/include/uapi/asm/kvm.h): general registers,
//! segment and control registers, FPU, pending events, debug registers, and the
//! `kvm_sync_regs` that `kvm_run.s` carries.

use crate::layout::abi;
use crate::names::named_constants;

/// Interrupt vectors on x86; `kvm_sregs.interrupt_bitmap` has one bit per vector.
pub const KVM_NR_INTERRUPTS: usize = 256;

abi! {
    /// `struct kvm_regs`, for `KVM_GET_REGS`/`KVM_SET_REGS` and `kvm_run.s.regs.regs`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_regs (size 144, align 8) {
        /// RAX.
        pub rax: u64 => (0, "__u64"),
        /// RBX.
        pub rbx: u64 => (8, "__u64"),
        /// RCX.
        pub rcx: u64 => (16, "__u64"),
        /// RDX.
        pub rdx: u64 => (24, "__u64"),
        /// RSI.
        pub rsi: u64 => (32, "__u64"),
        /// RDI.
        pub rdi: u64 => (40, "__u64"),
        /// RSP.
        pub rsp: u64 => (48, "__u64"),
        /// RBP.
        pub rbp: u64 => (56, "__u64"),
        /// R8.
        pub r8: u64 => (64, "__u64"),
        /// R9.
        pub r9: u64 => (72, "__u64"),
        /// R10.
        pub r10: u64 => (80, "__u64"),
        /// R11.
        pub r11: u64 => (88, "__u64"),
        /// R12.
        pub r12: u64 => (96, "__u64"),
        /// R13.
        pub r13: u64 => (104, "__u64"),
        /// R14.
        pub r14: u64 => (112, "__u64"),
        /// R15.
        pub r15: u64 => (120, "__u64"),
        /// RIP.
        pub rip: u64 => (128, "__u64"),
        /// RFLAGS; bit 1 must be set.
        pub rflags: u64 => (136, "__u64"),
    }
}

abi! {
    /// `struct kvm_segment`: a segment register with its hidden descriptor cache.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_segment (size 24, align 8) {
        /// Base address.
        pub base: u64 => (0, "__u64"),
        /// Limit in bytes (already scaled by `g`).
        pub limit: u32 => (8, "__u32"),
        /// Selector.
        pub selector: u16 => (12, "__u16"),
        /// Descriptor type (4 bits; `type` in C).
        pub type_: u8 => (14, "__u8"),
        /// Present.
        pub present: u8 => (15, "__u8"),
        /// Descriptor privilege level.
        pub dpl: u8 => (16, "__u8"),
        /// Default operation size (0: 16-bit, 1: 32-bit).
        pub db: u8 => (17, "__u8"),
        /// 1 for code/data, 0 for system segments.
        pub s: u8 => (18, "__u8"),
        /// 64-bit code segment.
        pub l: u8 => (19, "__u8"),
        /// Granularity (limit in 4 KiB units).
        pub g: u8 => (20, "__u8"),
        /// Available for software.
        pub avl: u8 => (21, "__u8"),
        /// The segment is unusable (VMX access-rights bit 16).
        pub unusable: u8 => (22, "__u8"),
        /// Padding.
        pub padding: u8 => (23, "__u8"),
    }
}

abi! {
    /// `struct kvm_dtable`: GDTR or IDTR.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_dtable (size 16, align 8) {
        /// Linear base address.
        pub base: u64 => (0, "__u64"),
        /// Limit in bytes, minus one.
        pub limit: u16 => (8, "__u16"),
        /// Padding.
        pub padding: [u16; 3] => (10, "__u16[3]"),
    }
}

abi! {
    /// `struct kvm_sregs`, for `KVM_GET_SREGS`/`KVM_SET_SREGS` and `kvm_run.s.regs.sregs`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sregs (size 312, align 8) {
        /// CS.
        pub cs: kvm_segment => (0, "struct kvm_segment"),
        /// DS.
        pub ds: kvm_segment => (24, "struct kvm_segment"),
        /// ES.
        pub es: kvm_segment => (48, "struct kvm_segment"),
        /// FS.
        pub fs: kvm_segment => (72, "struct kvm_segment"),
        /// GS.
        pub gs: kvm_segment => (96, "struct kvm_segment"),
        /// SS.
        pub ss: kvm_segment => (120, "struct kvm_segment"),
        /// Task register.
        pub tr: kvm_segment => (144, "struct kvm_segment"),
        /// LDT register.
        pub ldt: kvm_segment => (168, "struct kvm_segment"),
        /// GDTR.
        pub gdt: kvm_dtable => (192, "struct kvm_dtable"),
        /// IDTR.
        pub idt: kvm_dtable => (208, "struct kvm_dtable"),
        /// CR0.
        pub cr0: u64 => (224, "__u64"),
        /// CR2.
        pub cr2: u64 => (232, "__u64"),
        /// CR3.
        pub cr3: u64 => (240, "__u64"),
        /// CR4.
        pub cr4: u64 => (248, "__u64"),
        /// CR8.
        pub cr8: u64 => (256, "__u64"),
        /// EFER.
        pub efer: u64 => (264, "__u64"),
        /// IA32_APIC_BASE.
        pub apic_base: u64 => (272, "__u64"),
        /// Pending external interrupt, one bit per vector, at most one set
        /// (`(KVM_NR_INTERRUPTS + 63) / 64` words).
        pub interrupt_bitmap: [u64; KVM_NR_INTERRUPTS.div_ceil(64)] => (280, "__u64[4]"),
    }
}

abi! {
    /// `struct kvm_fpu`, for `KVM_GET_FPU`/`KVM_SET_FPU` (FXSAVE layout, spread out).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_fpu (size 416, align 8) {
        /// x87 registers ST0-ST7, 80 bits each in 16-byte slots.
        pub fpr: [[u8; 16]; 8] => (0, "__u8[8][16]"),
        /// FPU control word.
        pub fcw: u16 => (128, "__u16"),
        /// FPU status word.
        pub fsw: u16 => (130, "__u16"),
        /// Abridged tag word, FXSAVE format.
        pub ftwx: u8 => (132, "__u8"),
        /// Padding.
        pub pad1: u8 => (133, "__u8"),
        /// Last instruction opcode.
        pub last_opcode: u16 => (134, "__u16"),
        /// Last instruction pointer.
        pub last_ip: u64 => (136, "__u64"),
        /// Last data pointer.
        pub last_dp: u64 => (144, "__u64"),
        /// XMM0-XMM15.
        pub xmm: [[u8; 16]; 16] => (152, "__u8[16][16]"),
        /// MXCSR.
        pub mxcsr: u32 => (408, "__u32"),
        /// Padding.
        pub pad2: u32 => (412, "__u32"),
    }
}

abi! {
    /// `struct kvm_debug_exit_arch` (x86): `kvm_run.debug.arch` of a `KVM_EXIT_DEBUG`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_debug_exit_arch (size 32, align 8) {
        /// Exception vector: 1 (#DB) or 3 (#BP).
        pub exception: u32 => (0, "__u32"),
        /// Padding.
        pub pad: u32 => (4, "__u32"),
        /// Guest RIP (linear).
        pub pc: u64 => (8, "__u64"),
        /// DR6 (bit 14: single step).
        pub dr6: u64 => (16, "__u64"),
        /// DR7.
        pub dr7: u64 => (24, "__u64"),
    }
}

abi! {
    /// `struct kvm_guest_debug_arch` (x86): debug registers for `KVM_SET_GUEST_DEBUG` with
    /// `KVM_GUESTDBG_USE_HW_BP`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_guest_debug_arch (size 64, align 8) {
        /// DR0-DR7 (DR4/DR5 unused).
        pub debugreg: [u64; 8] => (0, "__u64[8]"),
    }
}

abi! {
    /// `struct kvm_guest_debug` (`<linux/kvm.h>`, holding the x86 `kvm_guest_debug_arch`),
    /// argument of `KVM_SET_GUEST_DEBUG`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_guest_debug (size 72, align 8) {
        /// `KVM_GUESTDBG_*` bits ([`GUEST_DEBUG_FLAGS`](crate::GUEST_DEBUG_FLAGS),
        /// [`X86_GUEST_DEBUG_FLAGS`]).
        pub control: u32 => (0, "__u32"),
        /// Padding.
        pub pad: u32 => (4, "__u32"),
        /// Hardware breakpoints.
        pub arch: kvm_guest_debug_arch => (8, "struct kvm_guest_debug_arch"),
    }
}

named_constants! {
    /// x86 `kvm_guest_debug.control` bits, on top of `KVM_GUESTDBG_ENABLE`/`_SINGLESTEP`.
    pub const X86_GUEST_DEBUG_FLAGS: [u32];
    /// `int3` exits with `KVM_EXIT_DEBUG` (exception 3).
    KVM_GUESTDBG_USE_SW_BP = 0x0001_0000,
    /// `kvm_guest_debug.arch.debugreg` are armed.
    KVM_GUESTDBG_USE_HW_BP = 0x0002_0000,
    /// Inject #DB into the guest.
    KVM_GUESTDBG_INJECT_DB = 0x0004_0000,
    /// Inject #BP into the guest.
    KVM_GUESTDBG_INJECT_BP = 0x0008_0000,
    /// Block interrupts while single-stepping.
    KVM_GUESTDBG_BLOCKIRQ = 0x0010_0000,
}

abi! {
    /// `exception` in `struct kvm_vcpu_events`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events_exception in "exception" (size 8, align 4) {
        /// An exception is being delivered.
        pub injected: u8 => (0, "__u8"),
        /// Its vector.
        pub nr: u8 => (1, "__u8"),
        /// `error_code` is valid.
        pub has_error_code: u8 => (2, "__u8"),
        /// An exception is pending (with `KVM_CAP_EXCEPTION_PAYLOAD`).
        pub pending: u8 => (3, "__u8"),
        /// The error code.
        pub error_code: u32 => (4, "__u32"),
    }
}

abi! {
    /// `interrupt` in `struct kvm_vcpu_events`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events_interrupt in "interrupt" (size 4, align 1) {
        /// An interrupt is being delivered.
        pub injected: u8 => (0, "__u8"),
        /// Its vector.
        pub nr: u8 => (1, "__u8"),
        /// It is a software interrupt.
        pub soft: u8 => (2, "__u8"),
        /// Interrupt shadow: `KVM_X86_SHADOW_INT_MOV_SS` (1) / `_STI` (2).
        pub shadow: u8 => (3, "__u8"),
    }
}

abi! {
    /// `nmi` in `struct kvm_vcpu_events`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events_nmi in "nmi" (size 4, align 1) {
        /// An NMI is being delivered.
        pub injected: u8 => (0, "__u8"),
        /// NMIs pending.
        pub pending: u8 => (1, "__u8"),
        /// NMIs are blocked.
        pub masked: u8 => (2, "__u8"),
        /// Padding.
        pub pad: u8 => (3, "__u8"),
    }
}

abi! {
    /// `smi` in `struct kvm_vcpu_events`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events_smi in "smi" (size 4, align 1) {
        /// In system-management mode.
        pub smm: u8 => (0, "__u8"),
        /// An SMI is pending.
        pub pending: u8 => (1, "__u8"),
        /// In SMM, inside an NMI handler.
        pub smm_inside_nmi: u8 => (2, "__u8"),
        /// An INIT arrived during SMM.
        pub latched_init: u8 => (3, "__u8"),
    }
}

abi! {
    /// `triple_fault` in `struct kvm_vcpu_events`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events_triple_fault in "triple_fault" (size 1, align 1) {
        /// A triple fault is pending (with `KVM_CAP_X86_TRIPLE_FAULT_EVENT`).
        pub pending: u8 => (0, "__u8"),
    }
}

abi! {
    /// `struct kvm_vcpu_events`, for `KVM_GET_VCPU_EVENTS`/`KVM_SET_VCPU_EVENTS` and
    /// `kvm_run.s.regs.events`: exceptions, interrupts, NMIs and SMIs in flight.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_vcpu_events (size 64, align 8) {
        /// Exception state.
        pub exception: kvm_vcpu_events_exception => (0, "struct {...}", expand),
        /// Interrupt state.
        pub interrupt: kvm_vcpu_events_interrupt => (8, "struct {...}", expand),
        /// NMI state.
        pub nmi: kvm_vcpu_events_nmi => (12, "struct {...}", expand),
        /// Pending SIPI vector.
        pub sipi_vector: u32 => (16, "__u32"),
        /// `KVM_VCPUEVENT_VALID_*`: which optional fields are valid.
        pub flags: u32 => (20, "__u32"),
        /// SMM state.
        pub smi: kvm_vcpu_events_smi => (24, "struct {...}", expand),
        /// Triple-fault state.
        pub triple_fault: kvm_vcpu_events_triple_fault => (28, "struct {...}", expand),
        /// Reserved.
        pub reserved: [u8; 26] => (29, "__u8[26]"),
        /// `exception_payload` is valid.
        pub exception_has_payload: u8 => (55, "__u8"),
        /// CR2 or DR6 payload of the exception.
        pub exception_payload: u64 => (56, "__u64"),
    }
}

named_constants! {
    /// `kvm_vcpu_events.flags`: which optional fields `KVM_SET_VCPU_EVENTS` should apply.
    pub const X86_VCPU_EVENT_FLAGS: [u32];
    /// `nmi.pending`.
    KVM_VCPUEVENT_VALID_NMI_PENDING = 0x0000_0001,
    /// `sipi_vector`.
    KVM_VCPUEVENT_VALID_SIPI_VECTOR = 0x0000_0002,
    /// `interrupt.shadow`.
    KVM_VCPUEVENT_VALID_SHADOW = 0x0000_0004,
    /// `smi`.
    KVM_VCPUEVENT_VALID_SMM = 0x0000_0008,
    /// `exception.pending` and the payload.
    KVM_VCPUEVENT_VALID_PAYLOAD = 0x0000_0010,
    /// `triple_fault`.
    KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x0000_0020,
}

abi! {
    /// `struct kvm_sync_regs` (x86): `kvm_run.s.regs`, the registers `KVM_CAP_SYNC_REGS` shares.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub struct kvm_sync_regs (size 520, align 8) {
        /// Valid with `KVM_SYNC_X86_REGS`.
        pub regs: kvm_regs => (0, "struct kvm_regs"),
        /// Valid with `KVM_SYNC_X86_SREGS`.
        pub sregs: kvm_sregs => (144, "struct kvm_sregs"),
        /// Valid with `KVM_SYNC_X86_EVENTS`.
        pub events: kvm_vcpu_events => (456, "struct kvm_vcpu_events"),
    }
}

named_constants! {
    /// `kvm_run.kvm_valid_regs` / `kvm_dirty_regs` bits on x86.
    pub const X86_SYNC_REGS: [u64];
    /// `s.regs.regs`.
    KVM_SYNC_X86_REGS = 1 << 0,
    /// `s.regs.sregs`.
    KVM_SYNC_X86_SREGS = 1 << 1,
    /// `s.regs.events`.
    KVM_SYNC_X86_EVENTS = 1 << 2,
}

/// Every `KVM_SYNC_X86_*` bit.
pub const KVM_SYNC_X86_VALID_FIELDS: u64 =
    KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS;
