//! Every member of `struct kvm_run` the decoder reads or writes: its C designator, offset and
//! size, and a typed [`Field`] to read it with.
//!
//! The offsets are not written here: each constant looks its designator up in the bindings'
//! layout of `kvm_run` (`rawkvm_bindings::kvm_run::LAYOUT`, computed with `offset_of!`) at
//! compile time, and the build fails if the name is missing or the size differs from the Rust
//! type. So the decoder, `--explain` (which prints `io.port @ +34`) and `rawkvm abi` cannot
//! disagree about where a field is.

use rawkvm_bindings::{StructLayout, kvm_run};

/// A typed `kvm_run` member at a fixed offset, read and written through a [`RunPage`].
pub use crate::sys::run_page::Field;
use crate::sys::run_page::{RunPage, Scalar};

/// A member of `struct kvm_run`: the C designator `offsetof()` accepts, offset and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// `"io.port"`, `"exit_reason"`, `"debug.arch.pc"`.
    pub name: &'static str,
    /// Bytes from the start of `struct kvm_run`.
    pub offset: usize,
    /// Size in bytes.
    pub size: usize,
}

/// A scalar member and the typed field that reads it.
#[derive(Debug)]
pub struct Typed<T> {
    /// Where it is.
    pub member: Member,
    /// How to read it.
    pub field: Field<T>,
}

impl<T> Clone for Typed<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Typed<T> {}

impl<T: Scalar> Typed<T> {
    /// Offset in bytes from the start of `struct kvm_run` (as [`Field::offset`]).
    pub const fn offset(self) -> usize {
        self.member.offset
    }

    /// Reads the member from `page`.
    pub fn get(self, page: &RunPage<'_>) -> T {
        page.get(self.field)
    }
}

/// An array of `N` little-endian `u64` words, read by value.
#[derive(Debug, Clone, Copy)]
pub struct Words<const N: usize> {
    /// Where the array is.
    pub member: Member,
    fields: [Field<u64>; N],
}

impl<const N: usize> Words<N> {
    /// Reads all `N` words.
    pub fn get(&self, page: &RunPage<'_>) -> [u64; N] {
        self.fields.map(|field| page.get(field))
    }
}

/// The member called `name` in `layout`, with `shift` added to its offset and `full_name` as
/// its name. Fails to compile if there is none.
const fn find(layout: &StructLayout, name: &str, shift: usize, full_name: &'static str) -> Member {
    match layout.field_named(name) {
        Some(field) => Member {
            name: full_name,
            offset: shift + field.offset,
            size: field.size,
        },
        None => panic!("no such member in the layout"),
    }
}

/// The member of `kvm_run` called `name`.
pub const fn member(name: &'static str) -> Member {
    find(&kvm_run::LAYOUT, name, 0, name)
}

/// A member of a kernel-named struct nested in `kvm_run` as `parent` (whose own fields the
/// `kvm_run` layout does not list): `nested("hyperv", &kvm_hyperv_exit::LAYOUT, "type",
/// "hyperv.type")`. `full_name` must be `parent.name`.
pub const fn nested(
    parent: &'static str,
    layout: &StructLayout,
    name: &'static str,
    full_name: &'static str,
) -> Member {
    let (p, n, f) = (parent.as_bytes(), name.as_bytes(), full_name.as_bytes());
    assert!(
        f.len() == p.len() + 1 + n.len(),
        "full_name is not parent.name"
    );
    let mut i = 0;
    while i < f.len() {
        let expected = if i < p.len() {
            p[i]
        } else if i == p.len() {
            b'.'
        } else {
            n[i - p.len() - 1]
        };
        assert!(f[i] == expected, "full_name is not parent.name");
        i += 1;
    }
    find(layout, name, member(parent).offset, full_name)
}

/// `member` as a typed scalar; fails to compile if its size is not `size_of::<T>()`.
pub const fn typed<T: Scalar>(member: Member) -> Typed<T> {
    assert!(
        member.size == size_of::<T>(),
        "member size differs from the type"
    );
    Typed {
        member,
        field: Field::at(member.offset),
    }
}

/// `member` as `N` words; fails to compile if its size is not `8 * N`.
pub const fn words<const N: usize>(member: Member) -> Words<N> {
    assert!(member.size == 8 * N, "member size differs from the array");
    let mut fields = [Field::at(member.offset); N];
    let mut i = 0;
    while i < N {
        fields[i] = Field::at(member.offset + 8 * i);
        i += 1;
    }
    Words { member, fields }
}

/// Declares member constants: `NAME: scalar<u16> = "io.port";` is a [`Typed`],
/// `words<6>` a [`Words`], `bytes` a plain [`Member`] (arrays read as slices).
macro_rules! members {
    ($( $(#[$doc:meta])* $name:ident: $kind:ident $(<$arg:tt>)? = $designator:literal; )*) => {
        $(
            $(#[$doc])*
            #[doc = concat!("\n\n`kvm_run.", $designator, "`.")]
            pub const $name: members!(@type $kind $(<$arg>)?) =
                members!(@make $kind $(<$arg>)?, member($designator));
        )*
    };
    (@type scalar <$ty:tt>) => { Typed<$ty> };
    (@type words <$n:tt>) => { Words<$n> };
    (@type bytes) => { Member };
    (@make scalar <$ty:tt>, $member:expr) => { typed::<$ty>($member) };
    (@make words <$n:tt>, $member:expr) => { words::<$n>($member) };
    (@make bytes, $member:expr) => { $member };
}

members! {
    /// In: ask for `KVM_EXIT_IRQ_WINDOW_OPEN` as soon as the guest can take an interrupt.
    REQUEST_INTERRUPT_WINDOW: scalar<u8> = "request_interrupt_window";
    /// Why `KVM_RUN` returned.
    EXIT_REASON: scalar<u32> = "exit_reason";
    /// Out: an interrupt can be injected now.
    READY_FOR_INTERRUPT_INJECTION: scalar<u8> = "ready_for_interrupt_injection";
    /// Out: the guest's RFLAGS.IF.
    IF_FLAG: scalar<u8> = "if_flag";

    /// Hardware exit reason of `KVM_EXIT_UNKNOWN`.
    HW_EXIT_REASON: scalar<u64> = "hw.hardware_exit_reason";
    /// Hardware entry-failure reason of `KVM_EXIT_FAIL_ENTRY`.
    FAIL_ENTRY_REASON: scalar<u64> = "fail_entry.hardware_entry_failure_reason";
    /// Host CPU of `KVM_EXIT_FAIL_ENTRY`.
    FAIL_ENTRY_CPU: scalar<u32> = "fail_entry.cpu";
    /// Vector of `KVM_EXIT_EXCEPTION`.
    EX_EXCEPTION: scalar<u32> = "ex.exception";
    /// Error code of `KVM_EXIT_EXCEPTION`.
    EX_ERROR_CODE: scalar<u32> = "ex.error_code";

    /// `KVM_EXIT_IO_IN` or `KVM_EXIT_IO_OUT`.
    IO_DIRECTION: scalar<u8> = "io.direction";
    /// Bytes per access.
    IO_SIZE: scalar<u8> = "io.size";
    /// The port.
    IO_PORT: scalar<u16> = "io.port";
    /// Number of accesses.
    IO_COUNT: scalar<u32> = "io.count";
    /// Where the data is, from the start of the mapping.
    IO_DATA_OFFSET: scalar<u64> = "io.data_offset";

    /// Guest physical address of `KVM_EXIT_MMIO`.
    MMIO_PHYS_ADDR: scalar<u64> = "mmio.phys_addr";
    /// The 8 data bytes of `KVM_EXIT_MMIO` (only `len` of them count).
    MMIO_DATA: bytes = "mmio.data";
    /// Access width of `KVM_EXIT_MMIO`.
    MMIO_LEN: scalar<u32> = "mmio.len";
    /// Non-zero for an MMIO write.
    MMIO_IS_WRITE: scalar<u8> = "mmio.is_write";

    /// IOCSR address of `KVM_EXIT_LOONGARCH_IOCSR`.
    IOCSR_PHYS_ADDR: scalar<u64> = "iocsr_io.phys_addr";
    /// Its data bytes.
    IOCSR_DATA: bytes = "iocsr_io.data";
    /// Its width.
    IOCSR_LEN: scalar<u32> = "iocsr_io.len";
    /// Non-zero for an IOCSR write.
    IOCSR_IS_WRITE: scalar<u8> = "iocsr_io.is_write";

    /// Hypercall number.
    HYPERCALL_NR: scalar<u64> = "hypercall.nr";
    /// Hypercall arguments.
    HYPERCALL_ARGS: words<6> = "hypercall.args";
    /// Hypercall return value, written by user space.
    HYPERCALL_RET: scalar<u64> = "hypercall.ret";
    /// Hypercall flags (`KVM_EXIT_HYPERCALL_LONG_MODE`).
    HYPERCALL_FLAGS: scalar<u64> = "hypercall.flags";

    /// Guest RIP of `KVM_EXIT_TPR_ACCESS`.
    TPR_ACCESS_RIP: scalar<u64> = "tpr_access.rip";
    /// Non-zero for a TPR write.
    TPR_ACCESS_IS_WRITE: scalar<u32> = "tpr_access.is_write";

    /// s390 interception code.
    S390_SIEIC_ICPTCODE: scalar<u8> = "s390_sieic.icptcode";
    /// s390 instruction parameter A.
    S390_SIEIC_IPA: scalar<u16> = "s390_sieic.ipa";
    /// s390 instruction parameter B.
    S390_SIEIC_IPB: scalar<u32> = "s390_sieic.ipb";
    /// s390 reset flags.
    S390_RESET_FLAGS: scalar<u64> = "s390_reset_flags";
    /// s390 translation-exception code.
    S390_UCONTROL_TRANS_EXC_CODE: scalar<u64> = "s390_ucontrol.trans_exc_code";
    /// s390 program interruption code.
    S390_UCONTROL_PGM_CODE: scalar<u32> = "s390_ucontrol.pgm_code";

    /// DCR number.
    DCR_DCRN: scalar<u32> = "dcr.dcrn";
    /// DCR value.
    DCR_DATA: scalar<u32> = "dcr.data";
    /// Non-zero for a DCR write.
    DCR_IS_WRITE: scalar<u8> = "dcr.is_write";

    /// `KVM_INTERNAL_ERROR_*`.
    INTERNAL_SUBERROR: scalar<u32> = "internal.suberror";
    /// Valid words of `internal.data`.
    INTERNAL_NDATA: scalar<u32> = "internal.ndata";
    /// `internal.data[16]`.
    INTERNAL_DATA: bytes = "internal.data";

    /// PowerPC OSI registers.
    OSI_GPRS: bytes = "osi.gprs";
    /// PAPR hypercall number.
    PAPR_HCALL_NR: scalar<u64> = "papr_hcall.nr";
    /// PAPR hypercall arguments.
    PAPR_HCALL_ARGS: bytes = "papr_hcall.args";

    /// s390 subchannel id.
    S390_TSCH_SUBCHANNEL_ID: scalar<u16> = "s390_tsch.subchannel_id";
    /// s390 subchannel number.
    S390_TSCH_SUBCHANNEL_NR: scalar<u16> = "s390_tsch.subchannel_nr";
    /// s390 I/O interruption parameter.
    S390_TSCH_IO_INT_PARM: scalar<u32> = "s390_tsch.io_int_parm";
    /// s390 I/O interruption word.
    S390_TSCH_IO_INT_WORD: scalar<u32> = "s390_tsch.io_int_word";
    /// s390 instruction parameter B.
    S390_TSCH_IPB: scalar<u32> = "s390_tsch.ipb";
    /// Non-zero if an interrupt was dequeued.
    S390_TSCH_DEQUEUED: scalar<u8> = "s390_tsch.dequeued";

    /// PowerPC external proxy register.
    EPR_EPR: scalar<u32> = "epr.epr";

    /// `KVM_SYSTEM_EVENT_*`.
    SYSTEM_EVENT_TYPE: scalar<u32> = "system_event.type";
    /// Valid words of `system_event.data`.
    SYSTEM_EVENT_NDATA: scalar<u32> = "system_event.ndata";
    /// `system_event.data[16]`.
    SYSTEM_EVENT_DATA: bytes = "system_event.data";

    /// s390 STSI result address.
    S390_STSI_ADDR: scalar<u64> = "s390_stsi.addr";
    /// s390 STSI access register.
    S390_STSI_AR: scalar<u8> = "s390_stsi.ar";
    /// s390 STSI function code.
    S390_STSI_FC: scalar<u8> = "s390_stsi.fc";
    /// s390 STSI selector 1.
    S390_STSI_SEL1: scalar<u8> = "s390_stsi.sel1";
    /// s390 STSI selector 2.
    S390_STSI_SEL2: scalar<u16> = "s390_stsi.sel2";

    /// The vector of `KVM_EXIT_IOAPIC_EOI`.
    EOI_VECTOR: scalar<u8> = "eoi.vector";

    /// arm64 ESR ISS bits.
    ARM_NISV_ESR_ISS: scalar<u64> = "arm_nisv.esr_iss";
    /// arm64 faulting IPA.
    ARM_NISV_FAULT_IPA: scalar<u64> = "arm_nisv.fault_ipa";

    /// In: non-zero injects #GP for the MSR access.
    MSR_ERROR: scalar<u8> = "msr.error";
    /// `KVM_MSR_EXIT_REASON_*` bits.
    MSR_REASON: scalar<u32> = "msr.reason";
    /// The MSR index.
    MSR_INDEX: scalar<u32> = "msr.index";
    /// The value written, or (in) the value a read returns.
    MSR_DATA: scalar<u64> = "msr.data";

    /// SBI extension id.
    RISCV_SBI_EXTENSION_ID: scalar<u64> = "riscv_sbi.extension_id";
    /// SBI function id.
    RISCV_SBI_FUNCTION_ID: scalar<u64> = "riscv_sbi.function_id";
    /// SBI arguments.
    RISCV_SBI_ARGS: bytes = "riscv_sbi.args";
    /// SBI return values.
    RISCV_SBI_RET: bytes = "riscv_sbi.ret";
    /// CSR number.
    RISCV_CSR_NUM: scalar<u64> = "riscv_csr.csr_num";
    /// CSR value written.
    RISCV_CSR_NEW_VALUE: scalar<u64> = "riscv_csr.new_value";
    /// CSR bits written.
    RISCV_CSR_WRITE_MASK: scalar<u64> = "riscv_csr.write_mask";
    /// CSR value to return.
    RISCV_CSR_RET_VALUE: scalar<u64> = "riscv_csr.ret_value";

    /// `KVM_NOTIFY_CONTEXT_INVALID`.
    NOTIFY_FLAGS: scalar<u32> = "notify.flags";

    /// `KVM_MEMORY_EXIT_FLAG_PRIVATE`.
    MEMORY_FAULT_FLAGS: scalar<u64> = "memory_fault.flags";
    /// First faulting guest physical address.
    MEMORY_FAULT_GPA: scalar<u64> = "memory_fault.gpa";
    /// Length of the faulting range.
    MEMORY_FAULT_SIZE: scalar<u64> = "memory_fault.size";

    /// TDX flags.
    TDX_FLAGS: scalar<u64> = "tdx.flags";
    /// TDVMCALL leaf.
    TDX_NR: scalar<u64> = "tdx.nr";
    /// TDVMCALL return code (the first word of every member of the union).
    TDX_RET: scalar<u64> = "tdx.unknown.ret";
    /// The five words after `ret`, as the `unknown` member lays them out.
    TDX_DATA: words<5> = "tdx.unknown.data";

    /// arm64 SEA flags.
    ARM_SEA_FLAGS: scalar<u64> = "arm_sea.flags";
    /// arm64 SEA syndrome.
    ARM_SEA_ESR: scalar<u64> = "arm_sea.esr";
    /// arm64 SEA faulting virtual address.
    ARM_SEA_GVA: scalar<u64> = "arm_sea.gva";
    /// arm64 SEA faulting physical address.
    ARM_SEA_GPA: scalar<u64> = "arm_sea.gpa";
}

/// The members of an MMIO-shaped exit: `mmio`, and LoongArch's `iocsr_io`, which has the
/// same four fields.
#[derive(Debug, Clone, Copy)]
pub struct MmioMembers {
    /// The address accessed.
    pub phys_addr: Typed<u64>,
    /// The 8 data bytes (only `len` of them count).
    pub data: Member,
    /// The access width.
    pub len: Typed<u32>,
    /// Non-zero for a write.
    pub is_write: Typed<u8>,
}

/// `kvm_run.mmio` (`KVM_EXIT_MMIO`).
pub const MMIO: MmioMembers = MmioMembers {
    phys_addr: MMIO_PHYS_ADDR,
    data: MMIO_DATA,
    len: MMIO_LEN,
    is_write: MMIO_IS_WRITE,
};

/// `kvm_run.iocsr_io` (`KVM_EXIT_LOONGARCH_IOCSR`).
pub const IOCSR: MmioMembers = MmioMembers {
    phys_addr: IOCSR_PHYS_ADDR,
    data: IOCSR_DATA,
    len: IOCSR_LEN,
    is_write: IOCSR_IS_WRITE,
};

/// Declares members of a kernel-named struct nested in `kvm_run` (whose fields the `kvm_run`
/// layout does not list): `NAME: Typed<u32> = "type";` is `parent.type`.
macro_rules! nested_members {
    ($parent:literal, $layout:expr; $( $name:ident: $kind:ident<$arg:tt> = $field:literal; )*) => {
        $(
            #[doc = concat!("`kvm_run.", $parent, ".", $field, "`.")]
            pub const $name: nested_members!(@type $kind<$arg>) = nested_members!(
                @make $kind<$arg>,
                $crate::exit::fields::nested($parent, $layout, $field, concat!($parent, ".", $field))
            );
        )*
    };
    (@type Typed<$ty:tt>) => { $crate::exit::fields::Typed<$ty> };
    (@type Words<$n:tt>) => { $crate::exit::fields::Words<$n> };
    (@make Typed<$ty:tt>, $member:expr) => { $crate::exit::fields::typed::<$ty>($member) };
    (@make Words<$n:tt>, $member:expr) => { $crate::exit::fields::words::<$n>($member) };
}

/// Members of `struct kvm_hyperv_exit` (`kvm_run.hyperv`).
pub mod hyperv {
    nested_members! {
        "hyperv", &rawkvm_bindings::kvm_hyperv_exit::LAYOUT;
        TYPE: Typed<u32> = "type";
        SYNIC_MSR: Typed<u32> = "u.synic.msr";
        SYNIC_CONTROL: Typed<u64> = "u.synic.control";
        SYNIC_EVT_PAGE: Typed<u64> = "u.synic.evt_page";
        SYNIC_MSG_PAGE: Typed<u64> = "u.synic.msg_page";
        HCALL_INPUT: Typed<u64> = "u.hcall.input";
        HCALL_RESULT: Typed<u64> = "u.hcall.result";
        HCALL_PARAMS: Words<2> = "u.hcall.params";
        SYNDBG_MSR: Typed<u32> = "u.syndbg.msr";
        SYNDBG_CONTROL: Typed<u64> = "u.syndbg.control";
        SYNDBG_STATUS: Typed<u64> = "u.syndbg.status";
        SYNDBG_SEND_PAGE: Typed<u64> = "u.syndbg.send_page";
        SYNDBG_RECV_PAGE: Typed<u64> = "u.syndbg.recv_page";
        SYNDBG_PENDING_PAGE: Typed<u64> = "u.syndbg.pending_page";
    }
}

/// Members of `struct kvm_xen_exit` (`kvm_run.xen`).
pub mod xen {
    nested_members! {
        "xen", &rawkvm_bindings::kvm_xen_exit::LAYOUT;
        TYPE: Typed<u32> = "type";
        HCALL_LONGMODE: Typed<u32> = "u.hcall.longmode";
        HCALL_CPL: Typed<u32> = "u.hcall.cpl";
        HCALL_INPUT: Typed<u64> = "u.hcall.input";
        HCALL_RESULT: Typed<u64> = "u.hcall.result";
        HCALL_PARAMS: Words<6> = "u.hcall.params";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_the_kernel_headers() {
        // The offsets measured against the host header (`docs/BACKEND.md`, "The kvm_run mapping").
        assert_eq!(EXIT_REASON.member.offset, 8);
        assert_eq!(IO_PORT.member.offset, 34);
        assert_eq!(IO_DATA_OFFSET.member.offset, 40);
        assert_eq!(MMIO_LEN.member.offset, 48);
        assert_eq!(INTERNAL_NDATA.member.offset, 36);
        assert_eq!(INTERNAL_DATA.offset, 40);
        assert_eq!(SYSTEM_EVENT_DATA.offset, 40);
        assert_eq!(MSR_DATA.member.offset, 48);
        assert_eq!(HYPERCALL_ARGS.member, member("hypercall.args"));
        assert_eq!(hyperv::HCALL_INPUT.member.offset, 40);
        assert_eq!(hyperv::HCALL_PARAMS.member.offset, 56);
        assert_eq!(xen::HCALL_PARAMS.member.offset, 64);
        assert_eq!(TDX_DATA.member.offset, 56);
    }

    #[test]
    fn nested_names_are_parent_dot_name() {
        assert_eq!(hyperv::TYPE.member.name, "hyperv.type");
        assert_eq!(xen::HCALL_CPL.member.name, "xen.u.hcall.cpl");
    }
}
