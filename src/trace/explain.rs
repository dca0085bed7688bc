//! `--explain`: for each exit, which `kvm_run` fields rawkvm read (and wrote back) at which
//! offsets, and one sentence on what the guest did, so a reader can follow the ABI live:
//!
//! ```text
//! #1 vcpu0 KVM_EXIT_IO(2) direction=in port=0x3fd size=1 count=1 data_offset=0x1000 data=60 "`" run_ns=8403
//!     read  exit_reason @ +8 (4), io.direction @ +32 (1), io.size @ +33 (1), io.port @ +34 (2), io.count @ +36 (4), io.data_offset @ +40 (8), data @ +4096 (1)
//!     wrote data @ +4096 (1)
//!     The guest read 1 byte from port 0x3fd (COM1 line status); rawkvm answered 60.
//! ```
//!
//! Everything comes from the decoded exit and [`Exit::visit`], so the offsets are the ones the
//! decoder used.

use std::io::Write;

use rawkvm_bindings as abi;

use super::json::{needs_escape, push_key, push_span_start, push_string};
use crate::devices::bus::Claim;
use crate::exit::fields::{self, Member};
use crate::exit::text::{push_dec, push_hex_bytes};
use crate::exit::{Exit, IoDirection, Source};

/// One `kvm_run` location: a name, an offset from the start of the mapping, a length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Member designator, or `data` for the PIO data.
    pub name: &'static str,
    /// Bytes from the start of the `kvm_run` mapping.
    pub offset: u64,
    /// Length in bytes.
    pub len: u64,
}

impl From<Member> for Location {
    fn from(member: Member) -> Self {
        Location {
            name: member.name,
            offset: member.offset as u64,
            len: member.size as u64,
        }
    }
}

impl From<Source> for Location {
    fn from(source: Source) -> Self {
        match source {
            Source::Member(member) => member.into(),
            Source::Data { name, offset, len } => Location {
                name,
                offset,
                len: len as u64,
            },
        }
    }
}

/// Calls `out` with every location the decoder read for `exit`: `exit_reason` first.
pub fn fields_read(exit: &Exit<'_>, out: &mut dyn FnMut(Location)) {
    out(fields::EXIT_REASON.member.into());
    exit.visit(&mut |item| out(item.source.into()));
}

/// Calls `out` with every location rawkvm wrote to answer `exit` (IN data, MMIO read data,
/// MSR answers, the interrupt-window request).
pub fn fields_written(exit: &Exit<'_>, dispatch: Option<Claim>, out: &mut dyn FnMut(Location)) {
    match exit {
        Exit::Io(io) if io.direction == IoDirection::In => out(Location {
            name: "data",
            offset: io.data_offset,
            len: io.data.len() as u64,
        }),
        Exit::Mmio(mmio) if !mmio.is_write => out(Location {
            len: mmio.data.len() as u64,
            ..Location::from(fields::MMIO_DATA)
        }),
        Exit::X86Rdmsr(_) => {
            if dispatch == Some(Claim::Claimed) {
                out(fields::MSR_DATA.member.into());
            }
            out(fields::MSR_ERROR.member.into());
        }
        Exit::X86Wrmsr(_) => out(fields::MSR_ERROR.member.into()),
        Exit::IrqWindowOpen { .. } => out(fields::REQUEST_INTERRUPT_WINDOW.member.into()),
        _ => {}
    }
}

fn push_location(out: &mut Vec<u8>, location: Location) {
    out.extend_from_slice(location.name.as_bytes());
    out.extend_from_slice(b" @ +");
    push_dec(out, location.offset);
    out.extend_from_slice(b" (");
    push_dec(out, location.len);
    out.push(b')');
}

/// Appends the text explanation: a `read` line, a `wrote` line if rawkvm wrote anything, and
/// the sentence, each indented by four spaces.
pub fn push_text(out: &mut Vec<u8>, exit: &Exit<'_>, dispatch: Option<Claim>) {
    let mut first = true;
    out.extend_from_slice(b"    read  ");
    fields_read(exit, &mut |location| {
        if !std::mem::take(&mut first) {
            out.extend_from_slice(b", ");
        }
        push_location(out, location);
    });
    out.push(b'\n');
    let mut wrote = false;
    fields_written(exit, dispatch, &mut |location| {
        out.extend_from_slice(if std::mem::replace(&mut wrote, true) {
            b", "
        } else {
            b"    wrote "
        });
        push_location(out, location);
    });
    if wrote {
        out.push(b'\n');
    }
    out.extend_from_slice(b"    ");
    push_sentence(out, exit, dispatch);
    out.push(b'\n');
}

fn push_json_locations(out: &mut Vec<u8>, each: impl FnOnce(&mut dyn FnMut(Location))) {
    out.push(b'[');
    let mut first = true;
    each(&mut |location| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        push_span_start(out, location.name, location.offset, location.len);
        out.push(b'}');
    });
    out.push(b']');
}

/// Appends `,"read":[{"name","offset","size"}...],"wrote":[...],"explain":"..."`.
pub fn push_json(out: &mut Vec<u8>, exit: &Exit<'_>, dispatch: Option<Claim>) {
    push_key(out, "read");
    push_json_locations(out, |f| fields_read(exit, f));
    push_key(out, "wrote");
    push_json_locations(out, |f| fields_written(exit, dispatch, f));
    push_key(out, "explain");
    // The sentence is written in place and then quoted, so a traced exit allocates nothing;
    // only a sentence with a byte JSON must escape (none of rawkvm's own have one) is copied.
    let start = out.len();
    push_sentence(out, exit, dispatch);
    if out[start..].iter().copied().any(needs_escape) {
        let sentence = out.split_off(start);
        push_string(out, &String::from_utf8_lossy(&sentence));
    } else {
        out.insert(start, b'"');
        out.push(b'"');
    }
}

/// After an injection: which `kvm_run` fields decided it, with their offsets.
pub fn push_injection(out: &mut Vec<u8>) {
    out.extend_from_slice(b"    read  ");
    push_location(out, fields::READY_FOR_INTERRUPT_INJECTION.member.into());
    out.extend_from_slice(b", ");
    push_location(out, fields::IF_FLAG.member.into());
    out.extend_from_slice(b"\n    wrote ");
    push_location(out, fields::REQUEST_INTERRUPT_WINDOW.member.into());
    out.extend_from_slice(
        b"\n    The last exit left the guest ready for an interrupt (both fields 1), so rawkvm \
          injected the pending vector before re-entering; request_interrupt_window stays 1 \
          only while another is pending, so an idle controller costs no exits.\n",
    );
}

/// What the well-known ports are.
fn port_name(port: u16) -> Option<&'static str> {
    Some(match port {
        0x20 => "8259 master command: ICW1, EOI, OCW3",
        0x21 => "8259 master data: ICW2-4, mask",
        0x40 => "PIT channel 0",
        0x43 => "PIT mode",
        0xA0 => "8259 slave command",
        0xA1 => "8259 slave data",
        0xE9 => "debug console",
        0xF4 => "exit device",
        0x3F8 => "COM1 data",
        0x3F9 => "COM1 interrupt enable",
        0x3FA => "COM1 interrupt identification",
        0x3FB => "COM1 line control",
        0x3FC => "COM1 modem control",
        0x3FD => "COM1 line status",
        0x3FE => "COM1 modem status",
        0x3FF => "COM1 scratch",
        _ => return None,
    })
}

fn plural(n: u64) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// Appends one sentence on what the guest did and what rawkvm does about it.
pub fn push_sentence(out: &mut Vec<u8>, exit: &Exit<'_>, dispatch: Option<Claim>) {
    let claimed = dispatch == Some(Claim::Claimed);
    // Writing into a Vec cannot fail.
    let _ = match exit {
        Exit::Io(io) => {
            let bytes = io.data.len() as u64;
            let (verb, preposition) = match io.direction {
                IoDirection::In => ("read", "from"),
                IoDirection::Out => ("wrote", "to"),
            };
            let _ = write!(
                out,
                "The guest {verb} {bytes} byte{} {preposition} port {:#x}",
                plural(bytes),
                io.port
            );
            if let Some(name) = port_name(io.port) {
                let _ = write!(out, " ({name})");
            }
            if io.count > 1 {
                let _ = write!(out, " with a string instruction, {} at once", io.count);
            }
            match (io.direction, claimed) {
                (IoDirection::In, true) => {
                    out.extend_from_slice(b"; rawkvm answered ");
                    push_hex_bytes(out, &io.data[..io.data.len().min(16)]);
                    write!(out, ".")
                }
                (IoDirection::In, false) => write!(
                    out,
                    "; no device there, so it reads all-ones, as an open bus does."
                ),
                (IoDirection::Out, true) => write!(out, "; the device took it."),
                (IoDirection::Out, false) => write!(out, "; no device there, so it is dropped."),
            }
        }
        Exit::Mmio(mmio) => {
            let (verb, preposition) = if mmio.is_write {
                ("wrote", "to")
            } else {
                ("read", "from")
            };
            let _ = write!(
                out,
                "The guest {verb} {} byte{} {preposition} guest physical address {:#x}, which no \
                 memory slot backs (or a read-only one)",
                mmio.data.len(),
                plural(mmio.data.len() as u64),
                mmio.phys_addr
            );
            match (mmio.is_write, claimed) {
                (false, true) => write!(out, "; rawkvm answered {:#x}.", mmio.value()),
                (false, false) => write!(out, "; nothing answers there, so it reads all-ones."),
                (true, true) => write!(out, "; the device took {:#x}.", mmio.value()),
                (true, false) => write!(out, "; nothing is there, so the write is dropped."),
            }
        }
        Exit::X86Rdmsr(msr) => {
            let _ = write!(out, "The guest executed RDMSR of MSR {:#x}, ", msr.index);
            if claimed {
                write!(
                    out,
                    "which KVM does not know; rawkvm answered {:#x}.",
                    msr.data
                )
            } else {
                write!(
                    out,
                    "which KVM does not know and no device owns; msr.error = 1, so the guest \
                     gets #GP."
                )
            }
        }
        Exit::X86Wrmsr(msr) => {
            let _ = write!(
                out,
                "The guest executed WRMSR of {:#x} to MSR {:#x}, ",
                msr.data, msr.index
            );
            if claimed {
                write!(out, "which KVM does not know; a device took it.")
            } else {
                write!(
                    out,
                    "which KVM does not know and no device owns; msr.error = 1, so the guest \
                     gets #GP."
                )
            }
        }
        Exit::InternalError { suberror, data } => {
            let _ = write!(
                out,
                "KVM gave up on the guest: {} (suberror {suberror}), with {} data word{}",
                abi::internal_error_name(*suberror).unwrap_or("an unknown internal error"),
                data.len(),
                plural(data.len() as u64)
            );
            match crate::exit::emulation_failure_instruction(*suberror, data) {
                Some((bytes, len)) => {
                    out.extend_from_slice(b"; the instruction's bytes were ");
                    push_hex_bytes(out, &bytes[..len]);
                    write!(out, ".")
                }
                None => write!(out, "."),
            }
        }
        Exit::SystemEvent { event_type, .. } => write!(
            out,
            "The guest asked for a system event: {}.",
            abi::system_event_name(*event_type).unwrap_or("a type rawkvm does not know")
        ),
        other => {
            out.extend_from_slice(reason_sentence(other.reason()).as_bytes());
            push_detail(out, other)
        }
    };
}

/// The sentence's second half for exits whose first half is fixed (only x86 has any yet).
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables, clippy::ptr_arg))]
fn push_detail(out: &mut Vec<u8>, exit: &Exit<'_>) -> std::io::Result<()> {
    match exit {
        #[cfg(target_arch = "x86_64")]
        Exit::Debug(debug) => {
            let _ = match (debug.single_step(), debug.breakpoint()) {
                (true, _) => write!(out, " It was a single step"),
                (false, Some(n)) => write!(out, " It was hardware breakpoint {n} (DR{n})"),
                (false, None) => write!(out, " It was exception {}", debug.exception),
            };
            write!(out, ", at pc {:#x}.", debug.pc)
        }
        #[cfg(target_arch = "x86_64")]
        &Exit::FailEntry {
            hardware_entry_failure_reason,
            ..
        } => write!(
            out,
            " The hardware says: {}.",
            crate::exit::hardware::explain_entry_failure(hardware_entry_failure_reason)
        ),
        #[cfg(target_arch = "x86_64")]
        &Exit::HardwareUnknown {
            hardware_exit_reason,
        } => write!(
            out,
            " The hardware says: {}.",
            crate::exit::hardware::HostExitReason(hardware_exit_reason)
        ),
        _ => Ok(()),
    }
}

/// A fixed sentence per reason.
fn reason_sentence(reason: u32) -> &'static str {
    use abi::*;
    match reason {
        KVM_EXIT_UNKNOWN => "The CPU left the guest for a reason KVM has no handler for.",
        KVM_EXIT_EXCEPTION => "The guest raised an exception KVM did not handle.",
        KVM_EXIT_HYPERCALL => "The guest made a hypercall that KVM forwards to user space.",
        KVM_EXIT_DEBUG => "A debug event armed with KVM_SET_GUEST_DEBUG stopped the guest.",
        KVM_EXIT_HLT => {
            "The guest executed HLT, and with no in-kernel interrupt controller \
                         KVM hands that to user space: the run ends."
        }
        KVM_EXIT_IRQ_WINDOW_OPEN => {
            "The guest can take an interrupt now (IF set, no \
                                     shadow); rawkvm injects the queued vector with \
                                     KVM_INTERRUPT and stops asking for the window."
        }
        KVM_EXIT_SHUTDOWN => {
            "The guest shut down: on x86 a triple fault, an exception that \
                              could not be delivered even as a double fault."
        }
        KVM_EXIT_FAIL_ENTRY => "The CPU refused to enter the guest.",
        KVM_EXIT_INTR => "A signal interrupted KVM_RUN before the guest exited by itself.",
        KVM_EXIT_SET_TPR | KVM_EXIT_NMI => "A reason current kernels never report.",
        KVM_EXIT_TPR_ACCESS => "The guest touched the local APIC's task-priority register.",
        KVM_EXIT_S390_SIEIC => "s390: an interception KVM hands to user space.",
        KVM_EXIT_S390_RESET => "s390: the guest asked for a reset.",
        KVM_EXIT_DCR => "PowerPC: the guest accessed a device control register.",
        KVM_EXIT_OSI => "PowerPC: the guest made an OSI hypercall.",
        KVM_EXIT_PAPR_HCALL => "PowerPC: the guest made a PAPR hypercall.",
        KVM_EXIT_S390_UCONTROL => "s390: a fault in a user-controlled VM.",
        KVM_EXIT_WATCHDOG => "PowerPC: the BookE watchdog expired.",
        KVM_EXIT_S390_TSCH => "s390: TEST SUBCHANNEL for user space.",
        KVM_EXIT_EPR => "PowerPC: the guest read the external proxy register.",
        KVM_EXIT_S390_STSI => "s390: STORE SYSTEM INFORMATION for user space.",
        KVM_EXIT_IOAPIC_EOI => {
            "The guest acknowledged a level-triggered interrupt (split \
                                irqchip)."
        }
        KVM_EXIT_HYPERV => "The guest used a Hyper-V enlightenment KVM forwards.",
        KVM_EXIT_ARM_NISV => "arm64: a data abort without a valid syndrome.",
        KVM_EXIT_DIRTY_RING_FULL => {
            "The vCPU's dirty ring is full: harvest it, then run \
                                     again."
        }
        KVM_EXIT_AP_RESET_HOLD => "SEV-ES: an application processor is waiting in reset hold.",
        KVM_EXIT_X86_BUS_LOCK => "The guest took a bus lock (a split-lock access).",
        KVM_EXIT_XEN => "The guest made a Xen hypercall.",
        KVM_EXIT_RISCV_SBI => "RISC-V: the guest made an SBI call.",
        KVM_EXIT_RISCV_CSR => "RISC-V: the guest accessed a CSR KVM forwards.",
        KVM_EXIT_NOTIFY => {
            "The guest kept the CPU busy without an exit for too long \
                            (notify VM exit)."
        }
        KVM_EXIT_LOONGARCH_IOCSR => "LoongArch: the guest accessed IOCSR space.",
        KVM_EXIT_MEMORY_FAULT => {
            "The guest touched memory KVM cannot map; user space must \
                                  fix the range (KVM_RUN failed with EFAULT)."
        }
        KVM_EXIT_TDX => "TDX: the guest made a TDVMCALL KVM forwards.",
        KVM_EXIT_ARM_SEA => "arm64: a synchronous external abort.",
        _ => "A reason no kernel header rawkvm knows defines: the running kernel is newer.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::Io;

    #[test]
    fn json_gives_the_fields_and_the_sentence_as_one_string() {
        let mut data = [0x60];
        let exit = Exit::Io(Io {
            direction: IoDirection::In,
            port: 0x3FD,
            size: 1,
            count: 1,
            data_offset: 4096,
            data: &mut data,
        });
        let mut out = b"{\"seq\":1".to_vec();
        push_json(&mut out, &exit, Some(Claim::Claimed));
        let json = String::from_utf8(out).unwrap();
        let read = "{\"name\":\"exit_reason\",\"offset\":8,\"size\":4},\
                    {\"name\":\"io.direction\",\"offset\":32,\"size\":1}";
        assert!(
            json.starts_with(&format!("{{\"seq\":1,\"read\":[{read},")),
            "{json}"
        );
        assert!(
            json.ends_with(
                ",\"wrote\":[{\"name\":\"data\",\"offset\":4096,\"size\":1}],\"explain\":\
                 \"The guest read 1 byte from port 0x3fd (COM1 line status); rawkvm answered \
                 60.\""
            ),
            "{json}"
        );
    }
}
