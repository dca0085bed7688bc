//! The payload views of exits with more than a few scalars: the ones that borrow the page
//! (port I/O data, MMIO data, the MSR and hypercall fields user space writes its answer to)
//! and the ones whose shape depends on a type field (Hyper-V, Xen, TDX).

use std::fmt;

use super::fields::{self, Typed};
use crate::sys::run_page::{RunPage, Scalar};

/// Which way an IO exit moves data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoDirection {
    /// `KVM_EXIT_IO_IN`: the guest reads; rawkvm fills `data`.
    In,
    /// `KVM_EXIT_IO_OUT`: the guest wrote `data`.
    Out,
}

impl IoDirection {
    /// `"in"` or `"out"`.
    pub fn name(self) -> &'static str {
        match self {
            IoDirection::In => "in",
            IoDirection::Out => "out",
        }
    }
}

/// `KVM_EXIT_IO`: the guest executed `in`/`out` (or `ins`/`outs`, possibly with `rep`).
#[derive(Debug)]
pub struct Io<'a> {
    /// In or out.
    pub direction: IoDirection,
    /// The I/O port of the first access.
    pub port: u16,
    /// Bytes per access: 1, 2 or 4.
    pub size: u8,
    /// Number of accesses, at least 1 (`rep ins`/`outs` batches them).
    pub count: u32,
    /// `io.data_offset`: where `data` starts, from the start of the mapping.
    pub data_offset: u64,
    /// `count` elements of `size` bytes each, in the PIO data page. For OUT the guest's bytes;
    /// for IN the bytes to fill, which the guest sees when it next runs.
    pub data: &'a mut [u8],
}

impl Io<'_> {
    /// The accesses one by one: `count` slices of `size` bytes, all at `port`.
    pub fn elements(&mut self) -> std::slice::ChunksExactMut<'_, u8> {
        self.data.chunks_exact_mut(usize::from(self.size))
    }
}

/// `KVM_EXIT_MMIO`: the guest touched a physical address no memory slot backs (or wrote to a
/// read-only slot). Also the shape of `KVM_EXIT_LOONGARCH_IOCSR`.
#[derive(Debug)]
pub struct Mmio<'a> {
    /// Guest physical address of the access.
    pub phys_addr: u64,
    /// True for a write, false for a read.
    pub is_write: bool,
    /// `kvm_run.mmio.data[..len]`, `len` in 1..=8: the value written, or the bytes to answer a
    /// read with. The bytes after `len` are stale and never exposed.
    pub data: &'a mut [u8],
}

impl Mmio<'_> {
    /// The data as a little-endian integer, zero-extended.
    pub fn value(&self) -> u64 {
        let mut bytes = [0u8; 8];
        let len = self.data.len().min(bytes.len());
        bytes[..len].copy_from_slice(&self.data[..len]);
        u64::from_le_bytes(bytes)
    }
}

/// The page, kept by exits that user space answers by writing fields back.
pub(super) struct Reply<'a>(pub(super) RunPage<'a>);

impl Reply<'_> {
    fn set<T: Scalar>(&mut self, member: Typed<T>, value: T) {
        self.0.set(member.field, value);
    }
}

impl fmt::Debug for Reply<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("kvm_run")
    }
}

/// `KVM_EXIT_X86_RDMSR` / `KVM_EXIT_X86_WRMSR`: an MSR access KVM forwards because of
/// `KVM_CAP_X86_USER_SPACE_MSR`. Answer a read with [`MsrAccess::set_data`], refuse either
/// with [`MsrAccess::set_error`] (the guest then gets #GP).
#[derive(Debug)]
pub struct MsrAccess<'a> {
    /// The MSR index (ECX).
    pub index: u32,
    /// Why it came to user space: `KVM_MSR_EXIT_REASON_*` bits.
    pub reason: u32,
    /// The value written (WRMSR), or the value the read will return (RDMSR).
    pub data: u64,
    /// `msr.error` as it stands: non-zero makes KVM inject #GP.
    pub error: bool,
    pub(super) reply: Reply<'a>,
}

impl MsrAccess<'_> {
    /// Writes `msr.data`: the value `rdmsr` returns in EDX:EAX.
    pub fn set_data(&mut self, value: u64) {
        self.reply.set(fields::MSR_DATA, value);
        self.data = value;
    }

    /// Writes `msr.error`: true refuses the access (#GP in the guest).
    pub fn set_error(&mut self, error: bool) {
        self.reply.set(fields::MSR_ERROR, u8::from(error));
        self.error = error;
    }
}

/// `KVM_EXIT_RISCV_SBI`: an SBI call KVM leaves to user space (the legacy console, an
/// extension it does not implement). Answer with [`SbiCall::set_ret`]; KVM puts `ret` in the
/// guest's `a0`/`a1` and resumes after the `ecall`.
#[derive(Debug)]
pub struct SbiCall<'a> {
    /// Extension id (the guest's `a7`).
    pub extension_id: u64,
    /// Function id (`a6`).
    pub function_id: u64,
    /// The arguments (`a0`..`a5`).
    pub args: [u64; 6],
    /// `riscv_sbi.ret` as it stands: the error code and the value.
    pub ret: [u64; 2],
    pub(super) reply: Reply<'a>,
}

impl SbiCall<'_> {
    /// Writes `riscv_sbi.ret`: `[error, value]` as the guest's `a0` and `a1`.
    pub fn set_ret(&mut self, ret: [u64; 2]) {
        fields::RISCV_SBI_RET.set(&mut self.reply.0, ret);
        self.ret = ret;
    }
}

/// `hypercall.flags` bit: the hypercall was made in 64-bit mode (x86).
pub const KVM_EXIT_HYPERCALL_LONG_MODE: u64 = 1 << 0;

/// `KVM_EXIT_HYPERCALL`: a hypercall KVM forwards (`KVM_CAP_EXIT_HYPERCALL`). Answer with
/// [`Hypercall::set_ret`].
#[derive(Debug)]
pub struct Hypercall<'a> {
    /// Hypercall number (`KVM_HC_*`).
    pub nr: u64,
    /// The arguments.
    pub args: [u64; 6],
    /// `hypercall.ret` as it stands.
    pub ret: u64,
    /// `KVM_EXIT_HYPERCALL_LONG_MODE` on x86 (`longmode` before Linux 6.4).
    pub flags: u64,
    pub(super) reply: Reply<'a>,
}

impl Hypercall<'_> {
    /// Writes `hypercall.ret`, the value the guest sees returned.
    pub fn set_ret(&mut self, value: u64) {
        self.reply.set(fields::HYPERCALL_RET, value);
        self.ret = value;
    }
}

/// `KVM_EXIT_HYPERV`: `struct kvm_hyperv_exit`, by its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HyperVExit {
    /// `KVM_EXIT_HYPERV_SYNIC`: a SynIC MSR was written.
    Synic {
        /// The MSR.
        msr: u32,
        /// SCONTROL.
        control: u64,
        /// SIEFP.
        evt_page: u64,
        /// SIMP.
        msg_page: u64,
    },
    /// `KVM_EXIT_HYPERV_HCALL`: a Hyper-V hypercall.
    Hcall {
        /// Hypercall input value.
        input: u64,
        /// `result` as it stands.
        result: u64,
        /// Parameters.
        params: [u64; 2],
    },
    /// `KVM_EXIT_HYPERV_SYNDBG`: a synthetic-debugger MSR access.
    Syndbg {
        /// The MSR.
        msr: u32,
        /// Control.
        control: u64,
        /// Status.
        status: u64,
        /// Send page.
        send_page: u64,
        /// Receive page.
        recv_page: u64,
        /// Pending page.
        pending_page: u64,
    },
    /// A `type` this decoder does not know (a newer kernel).
    Other {
        /// `hyperv.type`.
        kind: u32,
    },
}

/// `KVM_EXIT_XEN`: `struct kvm_xen_exit`, by its `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XenExit {
    /// `KVM_EXIT_XEN_HCALL`.
    Hcall {
        /// Non-zero in 64-bit mode.
        longmode: u32,
        /// The guest's privilege level.
        cpl: u32,
        /// Hypercall number.
        input: u64,
        /// `result` as it stands.
        result: u64,
        /// Parameters.
        params: [u64; 6],
    },
    /// A `type` this decoder does not know.
    Other {
        /// `xen.type`.
        kind: u32,
    },
}

/// `KVM_EXIT_TDX`: a TDVMCALL. Every member of the union after `nr` starts with `ret`; the
/// five words after it mean what [`TdxCall::nr`] says (`get_quote`: `gpa`, `size`;
/// `get_tdvmcall_info`: `leaf`, `r11`..`r14`; `setup_event_notify`: `vector`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TdxCall {
    /// Flags, none defined yet.
    pub flags: u64,
    /// The TDVMCALL leaf.
    pub nr: u64,
    /// `ret` as it stands.
    pub ret: u64,
    /// The five words after `ret`.
    pub data: [u64; 5],
}

/// The TDVMCALL leaves KVM forwards to user space (the GHCI's numbering).
pub const TDVMCALL_LEAVES: &[(u64, &str)] = &[
    (0x10000, "GetTdVmCallInfo"),
    (0x10002, "GetQuote"),
    (0x10004, "SetupEventNotifyInterrupt"),
];

impl TdxCall {
    /// The leaf's GHCI name, if it is one KVM forwards.
    pub fn leaf_name(&self) -> Option<&'static str> {
        TDVMCALL_LEAVES
            .iter()
            .find(|(nr, _)| *nr == self.nr)
            .map(|(_, name)| *name)
    }
}
