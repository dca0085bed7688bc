//! [`decode`]: `kvm_run` page in, [`Exit`] or [`DecodeError`] out.

use rawkvm_bindings as abi;

use super::fields::{self as f, Member, MmioMembers, Typed, hyperv, xen};
use super::views::{
    HyperVExit, Hypercall, Io, IoDirection, Mmio, MsrAccess, Reply, SbiCall, TdxCall,
};
use super::{DecodeError, Exit, MAX_NDATA};
use crate::sys::run_page::RunPage;

/// Decodes the exit `KVM_RUN` left in `page`. Total: never panics, never reads outside `page`.
pub fn decode(page: RunPage<'_>) -> Result<Exit<'_>, DecodeError> {
    use abi::*;
    let get = |member: Typed<u64>| member.get(&page);
    let reason = f::EXIT_REASON.get(&page);
    Ok(match reason {
        KVM_EXIT_UNKNOWN => Exit::HardwareUnknown {
            hardware_exit_reason: get(f::HW_EXIT_REASON),
        },
        KVM_EXIT_EXCEPTION => Exit::Exception {
            exception: f::EX_EXCEPTION.get(&page),
            error_code: f::EX_ERROR_CODE.get(&page),
        },
        KVM_EXIT_IO => Exit::Io(decode_io(page)?),
        KVM_EXIT_HYPERCALL => Exit::Hypercall(Hypercall {
            nr: get(f::HYPERCALL_NR),
            args: f::HYPERCALL_ARGS.get(&page),
            ret: get(f::HYPERCALL_RET),
            flags: get(f::HYPERCALL_FLAGS),
            reply: Reply(page),
        }),
        KVM_EXIT_DEBUG => Exit::Debug(decode_debug(&page)),
        KVM_EXIT_HLT => Exit::Hlt,
        KVM_EXIT_MMIO => Exit::Mmio(decode_mmio(page, &f::MMIO).map_err(DecodeError::MmioLen)?),
        KVM_EXIT_IRQ_WINDOW_OPEN => Exit::IrqWindowOpen {
            ready_for_interrupt_injection: f::READY_FOR_INTERRUPT_INJECTION.get(&page) != 0,
            if_flag: f::IF_FLAG.get(&page) != 0,
        },
        KVM_EXIT_SHUTDOWN => Exit::Shutdown,
        KVM_EXIT_FAIL_ENTRY => Exit::FailEntry {
            hardware_entry_failure_reason: get(f::FAIL_ENTRY_REASON),
            cpu: f::FAIL_ENTRY_CPU.get(&page),
        },
        KVM_EXIT_INTR => Exit::Intr,
        KVM_EXIT_SET_TPR => Exit::SetTpr,
        KVM_EXIT_TPR_ACCESS => Exit::TprAccess {
            rip: get(f::TPR_ACCESS_RIP),
            is_write: f::TPR_ACCESS_IS_WRITE.get(&page) != 0,
        },
        KVM_EXIT_S390_SIEIC => Exit::S390Sieic {
            icptcode: f::S390_SIEIC_ICPTCODE.get(&page),
            ipa: f::S390_SIEIC_IPA.get(&page),
            ipb: f::S390_SIEIC_IPB.get(&page),
        },
        KVM_EXIT_S390_RESET => Exit::S390Reset {
            flags: get(f::S390_RESET_FLAGS),
        },
        KVM_EXIT_DCR => Exit::Dcr {
            dcrn: f::DCR_DCRN.get(&page),
            data: f::DCR_DATA.get(&page),
            is_write: f::DCR_IS_WRITE.get(&page) != 0,
        },
        KVM_EXIT_NMI => Exit::Nmi,
        KVM_EXIT_INTERNAL_ERROR => {
            let suberror = f::INTERNAL_SUBERROR.get(&page);
            let data = counted_words(page, f::INTERNAL_NDATA, f::INTERNAL_DATA)
                .map_err(DecodeError::InternalNdata)?;
            Exit::InternalError { suberror, data }
        }
        KVM_EXIT_OSI => Exit::Osi {
            gprs: all_words(page, f::OSI_GPRS),
        },
        KVM_EXIT_PAPR_HCALL => Exit::PaprHcall {
            nr: get(f::PAPR_HCALL_NR),
            args: all_words(page, f::PAPR_HCALL_ARGS),
        },
        KVM_EXIT_S390_UCONTROL => Exit::S390Ucontrol {
            trans_exc_code: get(f::S390_UCONTROL_TRANS_EXC_CODE),
            pgm_code: f::S390_UCONTROL_PGM_CODE.get(&page),
        },
        KVM_EXIT_WATCHDOG => Exit::Watchdog,
        KVM_EXIT_S390_TSCH => Exit::S390Tsch {
            subchannel_id: f::S390_TSCH_SUBCHANNEL_ID.get(&page),
            subchannel_nr: f::S390_TSCH_SUBCHANNEL_NR.get(&page),
            io_int_parm: f::S390_TSCH_IO_INT_PARM.get(&page),
            io_int_word: f::S390_TSCH_IO_INT_WORD.get(&page),
            ipb: f::S390_TSCH_IPB.get(&page),
            dequeued: f::S390_TSCH_DEQUEUED.get(&page) != 0,
        },
        KVM_EXIT_EPR => Exit::Epr {
            epr: f::EPR_EPR.get(&page),
        },
        KVM_EXIT_SYSTEM_EVENT => {
            let event_type = f::SYSTEM_EVENT_TYPE.get(&page);
            let data = counted_words(page, f::SYSTEM_EVENT_NDATA, f::SYSTEM_EVENT_DATA)
                .map_err(DecodeError::SystemEventNdata)?;
            Exit::SystemEvent { event_type, data }
        }
        KVM_EXIT_S390_STSI => Exit::S390Stsi {
            addr: get(f::S390_STSI_ADDR),
            ar: f::S390_STSI_AR.get(&page),
            fc: f::S390_STSI_FC.get(&page),
            sel1: f::S390_STSI_SEL1.get(&page),
            sel2: f::S390_STSI_SEL2.get(&page),
        },
        KVM_EXIT_IOAPIC_EOI => Exit::IoapicEoi {
            vector: f::EOI_VECTOR.get(&page),
        },
        KVM_EXIT_HYPERV => Exit::HyperV(decode_hyperv(&page)),
        KVM_EXIT_ARM_NISV => Exit::ArmNisv {
            esr_iss: get(f::ARM_NISV_ESR_ISS),
            fault_ipa: get(f::ARM_NISV_FAULT_IPA),
        },
        KVM_EXIT_X86_RDMSR => Exit::X86Rdmsr(decode_msr(page)),
        KVM_EXIT_X86_WRMSR => Exit::X86Wrmsr(decode_msr(page)),
        KVM_EXIT_DIRTY_RING_FULL => Exit::DirtyRingFull,
        KVM_EXIT_AP_RESET_HOLD => Exit::ApResetHold,
        KVM_EXIT_X86_BUS_LOCK => Exit::X86BusLock,
        KVM_EXIT_XEN => Exit::Xen(decode_xen(&page)),
        KVM_EXIT_RISCV_SBI => Exit::RiscvSbi(SbiCall {
            extension_id: get(f::RISCV_SBI_EXTENSION_ID),
            function_id: get(f::RISCV_SBI_FUNCTION_ID),
            args: f::RISCV_SBI_ARGS.get(&page),
            ret: f::RISCV_SBI_RET.get(&page),
            reply: Reply(page),
        }),
        KVM_EXIT_RISCV_CSR => Exit::RiscvCsr {
            csr_num: get(f::RISCV_CSR_NUM),
            new_value: get(f::RISCV_CSR_NEW_VALUE),
            write_mask: get(f::RISCV_CSR_WRITE_MASK),
        },
        KVM_EXIT_NOTIFY => Exit::Notify {
            flags: f::NOTIFY_FLAGS.get(&page),
        },
        KVM_EXIT_LOONGARCH_IOCSR => {
            Exit::LoongarchIocsr(decode_mmio(page, &f::IOCSR).map_err(DecodeError::IocsrLen)?)
        }
        KVM_EXIT_MEMORY_FAULT => Exit::MemoryFault {
            flags: get(f::MEMORY_FAULT_FLAGS),
            gpa: get(f::MEMORY_FAULT_GPA),
            size: get(f::MEMORY_FAULT_SIZE),
        },
        KVM_EXIT_TDX => Exit::Tdx(TdxCall {
            flags: get(f::TDX_FLAGS),
            nr: get(f::TDX_NR),
            ret: get(f::TDX_RET),
            data: f::TDX_DATA.get(&page),
        }),
        KVM_EXIT_ARM_SEA => Exit::ArmSea {
            flags: get(f::ARM_SEA_FLAGS),
            esr: get(f::ARM_SEA_ESR),
            gva: get(f::ARM_SEA_GVA),
            gpa: get(f::ARM_SEA_GPA),
        },
        reason => Exit::Unknown(reason),
    })
}

#[cfg(target_arch = "x86_64")]
fn decode_debug(page: &RunPage<'_>) -> super::DebugExit {
    super::x86_64::decode_debug(page)
}

#[cfg(not(target_arch = "x86_64"))]
fn decode_debug(_page: &RunPage<'_>) -> super::DebugExit {
    super::DebugExit {}
}

/// The first `ndata` words of the `__u64[16]` array at `array`; `Err(ndata)` if `ndata` is
/// above 16.
fn counted_words(page: RunPage<'_>, ndata: Typed<u32>, array: Member) -> Result<&[u64], u32> {
    let ndata = ndata.get(&page);
    if ndata > MAX_NDATA {
        return Err(ndata);
    }
    usize::try_from(ndata)
        .ok()
        .and_then(|n| page.into_words(array.offset, n))
        .ok_or(ndata)
}

/// The whole `__u64[N]` array `array`. It lies inside `struct kvm_run` and is 8-byte aligned
/// (both checked when the layout was compiled), so the view always exists.
fn all_words(page: RunPage<'_>, array: Member) -> &[u64] {
    page.into_words(array.offset, array.size / 8).unwrap_or(&[])
}

fn decode_io(page: RunPage<'_>) -> Result<Io<'_>, DecodeError> {
    let direction = match f::IO_DIRECTION.get(&page) {
        abi::KVM_EXIT_IO_IN => IoDirection::In,
        abi::KVM_EXIT_IO_OUT => IoDirection::Out,
        other => return Err(DecodeError::IoDirection(other)),
    };
    let size = f::IO_SIZE.get(&page);
    if !matches!(size, 1 | 2 | 4) {
        return Err(DecodeError::IoSize(size));
    }
    let count = f::IO_COUNT.get(&page);
    if count == 0 {
        return Err(DecodeError::IoCount);
    }
    let port = f::IO_PORT.get(&page);
    let data_offset = f::IO_DATA_OFFSET.get(&page);
    let len = u64::from(size) * u64::from(count); // at most 4 * u32::MAX: cannot overflow u64
    let mapping_len = page.len();
    let data = usize::try_from(len)
        .ok()
        .and_then(|len| page.into_bytes(data_offset, len))
        .ok_or(DecodeError::IoData {
            data_offset,
            len,
            mapping_len,
        })?;
    Ok(Io {
        direction,
        port,
        size,
        count,
        data_offset,
        data,
    })
}

/// An MMIO-shaped exit; `Err(len)` if `len` is not 1..=8.
fn decode_mmio<'a>(page: RunPage<'a>, members: &MmioMembers) -> Result<Mmio<'a>, u32> {
    let len = members.len.get(&page);
    if !(1..=8).contains(&len) {
        return Err(len);
    }
    let phys_addr = members.phys_addr.get(&page);
    let is_write = members.is_write.get(&page) != 0;
    let data = usize::try_from(len)
        .ok()
        .filter(|&len| len <= members.data.size)
        .and_then(|len| page.into_bytes(members.data.offset as u64, len))
        .ok_or(len)?;
    Ok(Mmio {
        phys_addr,
        is_write,
        data,
    })
}

fn decode_msr(page: RunPage<'_>) -> MsrAccess<'_> {
    MsrAccess {
        index: f::MSR_INDEX.get(&page),
        reason: f::MSR_REASON.get(&page),
        data: f::MSR_DATA.get(&page),
        error: f::MSR_ERROR.get(&page) != 0,
        reply: Reply(page),
    }
}

fn decode_hyperv(page: &RunPage<'_>) -> HyperVExit {
    let kind = hyperv::TYPE.get(page);
    match kind {
        abi::KVM_EXIT_HYPERV_SYNIC => HyperVExit::Synic {
            msr: hyperv::SYNIC_MSR.get(page),
            control: hyperv::SYNIC_CONTROL.get(page),
            evt_page: hyperv::SYNIC_EVT_PAGE.get(page),
            msg_page: hyperv::SYNIC_MSG_PAGE.get(page),
        },
        abi::KVM_EXIT_HYPERV_HCALL => HyperVExit::Hcall {
            input: hyperv::HCALL_INPUT.get(page),
            result: hyperv::HCALL_RESULT.get(page),
            params: hyperv::HCALL_PARAMS.get(page),
        },
        abi::KVM_EXIT_HYPERV_SYNDBG => HyperVExit::Syndbg {
            msr: hyperv::SYNDBG_MSR.get(page),
            control: hyperv::SYNDBG_CONTROL.get(page),
            status: hyperv::SYNDBG_STATUS.get(page),
            send_page: hyperv::SYNDBG_SEND_PAGE.get(page),
            recv_page: hyperv::SYNDBG_RECV_PAGE.get(page),
            pending_page: hyperv::SYNDBG_PENDING_PAGE.get(page),
        },
        kind => HyperVExit::Other { kind },
    }
}

fn decode_xen(page: &RunPage<'_>) -> super::XenExit {
    match xen::TYPE.get(page) {
        abi::KVM_EXIT_XEN_HCALL => super::XenExit::Hcall {
            longmode: xen::HCALL_LONGMODE.get(page),
            cpl: xen::HCALL_CPL.get(page),
            input: xen::HCALL_INPUT.get(page),
            result: xen::HCALL_RESULT.get(page),
            params: xen::HCALL_PARAMS.get(page),
        },
        kind => super::XenExit::Other { kind },
    }
}
