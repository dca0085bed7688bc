//! An exit's payload as a list of named values, each with the `kvm_run` member it came from:
//! what tracing prints (text or JSON), what `--explain` turns into offsets, what the flight
//! recorder keeps and what error messages show. One list per exit kind, here, so every output
//! says the same thing.

use rawkvm_bindings as abi;

use super::fields::{self as f, Member, MmioMembers, Typed, hyperv, xen};
use super::{Exit, HyperVExit, Mmio, MsrAccess, XenExit};

/// Where a value was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A fixed member of `struct kvm_run`.
    Member(Member),
    /// Bytes whose place the exit itself gives: IO data at `io.data_offset`, the `len` used
    /// bytes of `mmio.data`, the `ndata` used words of `internal.data`.
    Data {
        /// What the bytes are: `"data"` for IO, else the member (`"mmio.data"`).
        name: &'static str,
        /// Offset from the start of the `kvm_run` mapping.
        offset: u64,
        /// Length in bytes.
        len: usize,
    },
}

/// A decoded value, with how to show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'e> {
    /// An address, port, flags word: shown in hex.
    Hex(u64),
    /// A size or count: shown in decimal.
    Dec(u64),
    /// A flag byte.
    Bool(bool),
    /// A keyword (`"in"`, `"out"`).
    Word(&'static str),
    /// A number with a kernel name, if the bindings know it (`KVM_INTERNAL_ERROR_EMULATION`).
    Enum {
        /// The number.
        value: u64,
        /// Its name.
        name: Option<&'static str>,
    },
    /// A hardware exit or entry-failure reason, explained by [`super::hardware`].
    Hardware {
        /// The number.
        value: u64,
        /// `fail_entry.hardware_entry_failure_reason` (else `hw.hardware_exit_reason`).
        entry_failure: bool,
    },
    /// Data bytes.
    Bytes(&'e [u8]),
    /// Data words.
    Words(&'e [u64]),
}

/// One named value of an exit's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item<'e> {
    /// Short name, used as the JSON key: `"port"`, `"gpa"`, `"data"`. Never one of the keys
    /// every trace object has (`crate::trace::json::RESERVED_KEYS`), so JSON keys are unique.
    pub label: &'static str,
    /// The value.
    pub value: Value<'e>,
    /// Where in `kvm_run` it was.
    pub source: Source,
}

fn member<T>(typed: Typed<T>) -> Source {
    Source::Member(typed.member)
}

fn data(member: Member, len: usize) -> Source {
    Source::Data {
        name: member.name,
        offset: member.offset as u64,
        len,
    }
}

/// Calls `out` once per payload item, in a fixed order. No allocation.
struct Visit<'e, 'f> {
    out: &'f mut dyn FnMut(Item<'e>),
}

impl<'e> Visit<'e, '_> {
    fn item(&mut self, label: &'static str, value: Value<'e>, source: Source) {
        (self.out)(Item {
            label,
            value,
            source,
        });
    }

    fn hex<T>(&mut self, label: &'static str, value: impl Into<u64>, from: Typed<T>) {
        self.item(label, Value::Hex(value.into()), member(from));
    }

    fn dec<T>(&mut self, label: &'static str, value: impl Into<u64>, from: Typed<T>) {
        self.item(label, Value::Dec(value.into()), member(from));
    }

    fn flag<T>(&mut self, label: &'static str, value: bool, from: Typed<T>) {
        self.item(label, Value::Bool(value), member(from));
    }

    fn words(&mut self, label: &'static str, words: &'e [u64], from: Member) {
        self.item(label, Value::Words(words), data(from, words.len() * 8));
    }

    fn mmio(&mut self, mmio: &'e Mmio<'_>, members: &MmioMembers) {
        self.hex("gpa", mmio.phys_addr, members.phys_addr);
        let width = mmio.data.len();
        self.dec("len", width as u64, members.len);
        self.flag("is_write", mmio.is_write, members.is_write);
        self.item("data", Value::Bytes(mmio.data), data(members.data, width));
    }

    fn msr(&mut self, msr: &MsrAccess<'_>) {
        self.hex("index", msr.index, f::MSR_INDEX);
        let name = abi::name_in(abi::MSR_EXIT_REASONS, msr.reason);
        let reason = Value::Enum {
            value: msr.reason.into(),
            name,
        };
        self.item("msr_reason", reason, member(f::MSR_REASON));
        self.hex("data", msr.data, f::MSR_DATA);
        self.flag("error", msr.error, f::MSR_ERROR);
    }

    fn counted(&mut self, label: &'static str, words: &'e [u64], ndata: Typed<u32>, array: Member) {
        self.dec("ndata", words.len() as u64, ndata);
        self.words(label, words, array);
    }

    fn hyperv(&mut self, exit: &'e HyperVExit) {
        let (kind, name) = match *exit {
            HyperVExit::Synic { .. } => (abi::KVM_EXIT_HYPERV_SYNIC, Some("KVM_EXIT_HYPERV_SYNIC")),
            HyperVExit::Hcall { .. } => (abi::KVM_EXIT_HYPERV_HCALL, Some("KVM_EXIT_HYPERV_HCALL")),
            HyperVExit::Syndbg { .. } => {
                (abi::KVM_EXIT_HYPERV_SYNDBG, Some("KVM_EXIT_HYPERV_SYNDBG"))
            }
            HyperVExit::Other { kind } => (kind, None),
        };
        let value = Value::Enum {
            value: kind.into(),
            name,
        };
        self.item("type", value, member(hyperv::TYPE));
        match exit {
            HyperVExit::Synic {
                msr,
                control,
                evt_page,
                msg_page,
            } => {
                self.hex("msr", *msr, hyperv::SYNIC_MSR);
                self.hex("control", *control, hyperv::SYNIC_CONTROL);
                self.hex("evt_page", *evt_page, hyperv::SYNIC_EVT_PAGE);
                self.hex("msg_page", *msg_page, hyperv::SYNIC_MSG_PAGE);
            }
            HyperVExit::Hcall {
                input,
                result,
                params,
            } => {
                self.hex("input", *input, hyperv::HCALL_INPUT);
                self.hex("result", *result, hyperv::HCALL_RESULT);
                self.words("params", params, hyperv::HCALL_PARAMS.member);
            }
            HyperVExit::Syndbg {
                msr,
                control,
                status,
                send_page,
                recv_page,
                pending_page,
            } => {
                self.hex("msr", *msr, hyperv::SYNDBG_MSR);
                self.hex("control", *control, hyperv::SYNDBG_CONTROL);
                self.hex("status", *status, hyperv::SYNDBG_STATUS);
                self.hex("send_page", *send_page, hyperv::SYNDBG_SEND_PAGE);
                self.hex("recv_page", *recv_page, hyperv::SYNDBG_RECV_PAGE);
                self.hex("pending_page", *pending_page, hyperv::SYNDBG_PENDING_PAGE);
            }
            HyperVExit::Other { .. } => {}
        }
    }

    fn xen(&mut self, exit: &'e XenExit) {
        match exit {
            XenExit::Hcall {
                longmode,
                cpl,
                input,
                result,
                params,
            } => {
                let value = Value::Enum {
                    value: abi::KVM_EXIT_XEN_HCALL.into(),
                    name: Some("KVM_EXIT_XEN_HCALL"),
                };
                self.item("type", value, member(xen::TYPE));
                self.dec("longmode", *longmode, xen::HCALL_LONGMODE);
                self.dec("cpl", *cpl, xen::HCALL_CPL);
                self.hex("input", *input, xen::HCALL_INPUT);
                self.hex("result", *result, xen::HCALL_RESULT);
                self.words("params", params, xen::HCALL_PARAMS.member);
            }
            XenExit::Other { kind } => {
                let value = Value::Enum {
                    value: (*kind).into(),
                    name: None,
                };
                self.item("type", value, member(xen::TYPE));
            }
        }
    }
}

impl Exit<'_> {
    /// Calls `out` with each payload field, in a fixed order: label, value, and the `kvm_run`
    /// member it was read from. Exits without a payload (`HLT`, `SHUTDOWN`, ...) call it not
    /// at all. Allocates nothing.
    pub fn visit<'e>(&'e self, out: &mut dyn FnMut(Item<'e>)) {
        let mut v = Visit { out };
        match self {
            &Exit::HardwareUnknown {
                hardware_exit_reason,
            } => {
                let value = Value::Hardware {
                    value: hardware_exit_reason,
                    entry_failure: false,
                };
                v.item("hardware_exit_reason", value, member(f::HW_EXIT_REASON));
            }
            &Exit::Exception {
                exception,
                error_code,
            } => {
                v.dec("exception", exception, f::EX_EXCEPTION);
                v.hex("error_code", error_code, f::EX_ERROR_CODE);
            }
            Exit::Io(io) => {
                v.item(
                    "direction",
                    Value::Word(io.direction.name()),
                    member(f::IO_DIRECTION),
                );
                v.dec("size", io.size, f::IO_SIZE);
                v.hex("port", io.port, f::IO_PORT);
                v.dec("count", io.count, f::IO_COUNT);
                v.hex("data_offset", io.data_offset, f::IO_DATA_OFFSET);
                let source = Source::Data {
                    name: "data",
                    offset: io.data_offset,
                    len: io.data.len(),
                };
                v.item("data", Value::Bytes(io.data), source);
            }
            Exit::Hypercall(call) => {
                v.dec("hcall_nr", call.nr, f::HYPERCALL_NR);
                v.words("args", &call.args, f::HYPERCALL_ARGS.member);
                v.hex("ret", call.ret, f::HYPERCALL_RET);
                v.hex("flags", call.flags, f::HYPERCALL_FLAGS);
            }
            Exit::Debug(debug) => debug_items(&mut v, debug),
            Exit::Mmio(mmio) => v.mmio(mmio, &f::MMIO),
            &Exit::IrqWindowOpen {
                ready_for_interrupt_injection,
                if_flag,
            } => {
                v.flag(
                    "ready_for_interrupt_injection",
                    ready_for_interrupt_injection,
                    f::READY_FOR_INTERRUPT_INJECTION,
                );
                v.flag("if_flag", if_flag, f::IF_FLAG);
            }
            &Exit::FailEntry {
                hardware_entry_failure_reason,
                cpu,
            } => {
                let value = Value::Hardware {
                    value: hardware_entry_failure_reason,
                    entry_failure: true,
                };
                v.item(
                    "hardware_entry_failure_reason",
                    value,
                    member(f::FAIL_ENTRY_REASON),
                );
                v.dec("cpu", cpu, f::FAIL_ENTRY_CPU);
            }
            &Exit::TprAccess { rip, is_write } => {
                v.hex("rip", rip, f::TPR_ACCESS_RIP);
                v.flag("is_write", is_write, f::TPR_ACCESS_IS_WRITE);
            }
            &Exit::S390Sieic { icptcode, ipa, ipb } => {
                v.dec("icptcode", icptcode, f::S390_SIEIC_ICPTCODE);
                v.hex("ipa", ipa, f::S390_SIEIC_IPA);
                v.hex("ipb", ipb, f::S390_SIEIC_IPB);
            }
            &Exit::S390Reset { flags } => v.hex("flags", flags, f::S390_RESET_FLAGS),
            &Exit::Dcr {
                dcrn,
                data,
                is_write,
            } => {
                v.hex("dcrn", dcrn, f::DCR_DCRN);
                v.hex("data", data, f::DCR_DATA);
                v.flag("is_write", is_write, f::DCR_IS_WRITE);
            }
            Exit::InternalError { suberror, data } => {
                let value = Value::Enum {
                    value: (*suberror).into(),
                    name: abi::internal_error_name(*suberror),
                };
                v.item("suberror", value, member(f::INTERNAL_SUBERROR));
                v.counted("data", data, f::INTERNAL_NDATA, f::INTERNAL_DATA);
            }
            Exit::Osi { gprs } => v.words("gprs", gprs, f::OSI_GPRS),
            Exit::PaprHcall { nr, args } => {
                v.hex("hcall_nr", *nr, f::PAPR_HCALL_NR);
                v.words("args", args, f::PAPR_HCALL_ARGS);
            }
            &Exit::S390Ucontrol {
                trans_exc_code,
                pgm_code,
            } => {
                v.hex(
                    "trans_exc_code",
                    trans_exc_code,
                    f::S390_UCONTROL_TRANS_EXC_CODE,
                );
                v.hex("pgm_code", pgm_code, f::S390_UCONTROL_PGM_CODE);
            }
            &Exit::S390Tsch {
                subchannel_id,
                subchannel_nr,
                io_int_parm,
                io_int_word,
                ipb,
                dequeued,
            } => {
                v.hex("subchannel_id", subchannel_id, f::S390_TSCH_SUBCHANNEL_ID);
                v.hex("subchannel_nr", subchannel_nr, f::S390_TSCH_SUBCHANNEL_NR);
                v.hex("io_int_parm", io_int_parm, f::S390_TSCH_IO_INT_PARM);
                v.hex("io_int_word", io_int_word, f::S390_TSCH_IO_INT_WORD);
                v.hex("ipb", ipb, f::S390_TSCH_IPB);
                v.flag("dequeued", dequeued, f::S390_TSCH_DEQUEUED);
            }
            &Exit::Epr { epr } => v.hex("epr", epr, f::EPR_EPR),
            Exit::SystemEvent { event_type, data } => {
                let value = Value::Enum {
                    value: (*event_type).into(),
                    name: abi::system_event_name(*event_type),
                };
                v.item("type", value, member(f::SYSTEM_EVENT_TYPE));
                v.counted("data", data, f::SYSTEM_EVENT_NDATA, f::SYSTEM_EVENT_DATA);
            }
            &Exit::S390Stsi {
                addr,
                ar,
                fc,
                sel1,
                sel2,
            } => {
                v.hex("addr", addr, f::S390_STSI_ADDR);
                v.dec("ar", ar, f::S390_STSI_AR);
                v.dec("fc", fc, f::S390_STSI_FC);
                v.dec("sel1", sel1, f::S390_STSI_SEL1);
                v.dec("sel2", sel2, f::S390_STSI_SEL2);
            }
            &Exit::IoapicEoi { vector } => v.hex("vector", vector, f::EOI_VECTOR),
            Exit::HyperV(exit) => v.hyperv(exit),
            &Exit::ArmNisv { esr_iss, fault_ipa } => {
                v.hex("esr_iss", esr_iss, f::ARM_NISV_ESR_ISS);
                v.hex("fault_ipa", fault_ipa, f::ARM_NISV_FAULT_IPA);
            }
            Exit::X86Rdmsr(msr) | Exit::X86Wrmsr(msr) => v.msr(msr),
            Exit::Xen(exit) => v.xen(exit),
            Exit::RiscvSbi(call) => {
                v.hex("extension_id", call.extension_id, f::RISCV_SBI_EXTENSION_ID);
                v.hex("function_id", call.function_id, f::RISCV_SBI_FUNCTION_ID);
                v.words("args", &call.args, f::RISCV_SBI_ARGS.member);
                v.words("ret", &call.ret, f::RISCV_SBI_RET.member);
            }
            &Exit::RiscvCsr {
                csr_num,
                new_value,
                write_mask,
            } => {
                v.hex("csr_num", csr_num, f::RISCV_CSR_NUM);
                v.hex("new_value", new_value, f::RISCV_CSR_NEW_VALUE);
                v.hex("write_mask", write_mask, f::RISCV_CSR_WRITE_MASK);
            }
            &Exit::Notify { flags } => v.hex("flags", flags, f::NOTIFY_FLAGS),
            Exit::LoongarchIocsr(mmio) => v.mmio(mmio, &f::IOCSR),
            &Exit::MemoryFault { flags, gpa, size } => {
                v.hex("flags", flags, f::MEMORY_FAULT_FLAGS);
                v.hex("gpa", gpa, f::MEMORY_FAULT_GPA);
                v.hex("size", size, f::MEMORY_FAULT_SIZE);
            }
            Exit::Tdx(call) => {
                v.hex("flags", call.flags, f::TDX_FLAGS);
                let nr = Value::Enum {
                    value: call.nr,
                    name: call.leaf_name(),
                };
                v.item("leaf", nr, member(f::TDX_NR));
                v.hex("ret", call.ret, f::TDX_RET);
                v.words("data", &call.data, f::TDX_DATA.member);
            }
            &Exit::ArmSea {
                flags,
                esr,
                gva,
                gpa,
            } => {
                v.hex("flags", flags, f::ARM_SEA_FLAGS);
                v.hex("esr", esr, f::ARM_SEA_ESR);
                v.hex("gva", gva, f::ARM_SEA_GVA);
                v.hex("gpa", gpa, f::ARM_SEA_GPA);
            }
            Exit::Hlt
            | Exit::Shutdown
            | Exit::Intr
            | Exit::SetTpr
            | Exit::Nmi
            | Exit::Watchdog
            | Exit::DirtyRingFull
            | Exit::ApResetHold
            | Exit::X86BusLock
            | Exit::Unknown(_) => {}
        }
    }
}

#[cfg(target_arch = "x86_64")]
fn debug_items(v: &mut Visit<'_, '_>, debug: &super::DebugExit) {
    use super::x86_64::{DEBUG_DR6, DEBUG_DR7, DEBUG_EXCEPTION, DEBUG_PC};
    v.dec("exception", debug.exception, DEBUG_EXCEPTION);
    v.hex("pc", debug.pc, DEBUG_PC);
    v.hex("dr6", debug.dr6, DEBUG_DR6);
    v.hex("dr7", debug.dr7, DEBUG_DR7);
}

#[cfg(not(target_arch = "x86_64"))]
fn debug_items(_v: &mut Visit<'_, '_>, _debug: &super::DebugExit) {}
