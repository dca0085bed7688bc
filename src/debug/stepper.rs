//! `rawkvm run --step`: execute the guest one instruction at a time and print each one with
//! the registers it changed.
//!
//! ```text
//! ioctl(vcpu, KVM_SET_GUEST_DEBUG, { ENABLE | SINGLESTEP })
//! loop:
//!   KVM_GET_REGS, KVM_GET_SREGS; read up to 15 bytes of RAM at CS base + RIP
//!   KVM_RUN ... (port/MMIO exits handled and traced on the way) ... KVM_EXIT_DEBUG
//!   KVM_GET_REGS, KVM_GET_SREGS; print CS:IP, the bytes, the registers that changed
//! ```
//!
//! The instruction's bytes are exact when execution went on sequentially (the bytes up to the
//! next instruction); after a jump, call, interrupt or a `rep` iteration the length is unknown
//! (rawkvm has no decoder), so a window of [`WINDOW`] bytes is printed, followed by `..`.
//! On kvm_pvm a single-stepped `out` that exits to user space loses its step: the next
//! instruction runs too, and both show on one line (measured: every `out` of `hello`).
//! A single-stepped `hlt` completes without halting on kvm_pvm (measured), so a `hlt` is run
//! undebugged: the guest halts as it would unwatched, and that is the last line.

use std::io::Write;

use rawkvm_bindings::{KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, kvm_guest_debug};

use crate::debug::registers::{CpuMode, NAMES, Register, RegisterFile};
use crate::devices::{Claim, IoHandler};
use crate::error::{Error, StoppedVcpu};
use crate::exit::Exit;
use crate::exit::text::{push_dec, push_hex_bytes};
use crate::kvm::memory::GuestMemory;
use crate::kvm::vcpu::Vcpu;
use crate::machine::supervisor::{RunControl, StopCause};
use crate::run_loop::{self, Observer, Outcome};
use crate::trace::json::{push_key, push_string};
use crate::trace::{TraceFormat, TraceObserver};

/// The longest x86 instruction.
pub const MAX_INSTRUCTION: usize = 15;
/// How many bytes are shown when the instruction's length is not known.
pub const WINDOW: usize = 8;
const HLT: u8 = 0xF4;

/// An observer that step lines can be written through, so they interleave with the trace
/// of the exits met on the way.
pub trait StepOutput: Observer {
    /// Writes one finished step line.
    fn write_step(&mut self, line: &[u8]);
}

impl<W: Write> StepOutput for TraceObserver<W> {
    fn write_step(&mut self, line: &[u8]) {
        self.write_raw(line);
    }
}

/// How a stepped run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepEnd {
    /// The guest halted (or the exit device ended the run with code 0).
    Halted,
    /// The step limit was reached first.
    LimitReached,
}

/// Single-steps `vcpu` until the guest halts or `limit` instructions have run, writing one
/// line per instruction through `output`, as text or as one JSON object per step. A stop signal (`control`) ends it between two
/// steps with [`Error::Interrupted`].
pub fn step<H, O>(
    vcpu: &mut Vcpu,
    memory: &GuestMemory,
    handler: &mut H,
    output: &mut O,
    control: &RunControl,
    format: TraceFormat,
    limit: Option<u64>,
) -> Result<(StepEnd, u64), Error>
where
    H: IoHandler + ?Sized,
    O: StepOutput + ?Sized,
{
    let single_step = kvm_guest_debug {
        control: KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP,
        ..kvm_guest_debug::default()
    };
    vcpu.set_guest_debug(&single_step)?;
    let mut before = RegisterFile::read(vcpu)?;
    let mut line = Vec::with_capacity(256);
    let mut steps = 0;
    loop {
        if limit.is_some_and(|limit| steps >= limit) {
            return Ok((StepEnd::LimitReached, steps));
        }
        if control.is_stopping() {
            return Err(interrupted(vcpu, control));
        }
        let mut bytes = [0u8; MAX_INSTRUCTION];
        let fetched = fetch(memory, before.pc(), &mut bytes);
        let at_hlt = fetched > 0 && bytes[0] == HLT;
        if at_hlt {
            vcpu.set_guest_debug(&kvm_guest_debug::default())?;
        }
        let outcome = run_loop::run_vcpu(vcpu, handler, &mut OwnStepsHidden(output))?;
        steps += 1;
        let after = RegisterFile::read(vcpu)?;
        line.clear();
        let instruction = Instruction::new(&before, &after, &bytes[..fetched], at_hlt);
        match format {
            TraceFormat::Text => push_text(&mut line, &instruction, &before, &after),
            TraceFormat::Json => push_json(&mut line, steps, &instruction, &before, &after),
        }
        output.write_step(&line);
        match outcome {
            Outcome::Halted | Outcome::Finished(0) => return Ok((StepEnd::Halted, steps)),
            Outcome::Finished(code) => {
                return Err(Error::GuestReportedFailure {
                    vcpu: vcpu.id(),
                    code,
                });
            }
            Outcome::Stopped => return Err(interrupted(vcpu, control)),
            Outcome::Debug => {}
        }
        before = after;
    }
}

/// Passes every exit on but the `KVM_EXIT_DEBUG` of each step: the step line stands for it.
struct OwnStepsHidden<'o, O: ?Sized>(&'o mut O);

impl<O: Observer + ?Sized> Observer for OwnStepsHidden<'_, O> {
    fn before_run(&mut self, vcpu: u32) {
        self.0.before_run(vcpu);
    }
    fn after_run(&mut self, vcpu: u32) {
        self.0.after_run(vcpu);
    }
    fn exit(&mut self, vcpu: u32, exit: &Exit<'_>, dispatch: Option<Claim>) {
        if !matches!(exit, Exit::Debug(_)) {
            self.0.exit(vcpu, exit, dispatch);
        }
    }
    fn interrupted(&mut self, vcpu: u32, stopping: bool) {
        self.0.interrupted(vcpu, stopping);
    }
    fn failure(&mut self) -> Option<Error> {
        self.0.failure()
    }
    fn injected(&mut self, vcpu: u32, vector: u8) {
        self.0.injected(vcpu, vector);
    }
}

/// Reads up to [`MAX_INSTRUCTION`] bytes at `pc`, fewer near the end of RAM; how many.
fn fetch(memory: &GuestMemory, pc: u64, bytes: &mut [u8; MAX_INSTRUCTION]) -> usize {
    (1..=MAX_INSTRUCTION)
        .rev()
        .find(|&len| memory.read(pc, &mut bytes[..len]).is_ok())
        .unwrap_or(0)
}

/// One executed instruction: where, its bytes, and whether their length is known.
struct Instruction<'a> {
    bytes: &'a [u8],
    sequential: bool,
}

impl<'a> Instruction<'a> {
    fn new(before: &RegisterFile, after: &RegisterFile, fetched: &'a [u8], hlt: bool) -> Self {
        let advance = after.rip.wrapping_sub(before.rip);
        let sequential =
            after.cs_base == before.cs_base && (1..=fetched.len() as u64).contains(&advance);
        let len = if hlt {
            1
        } else if sequential {
            advance as usize
        } else {
            WINDOW
        };
        Instruction {
            bytes: &fetched[..len.min(fetched.len())],
            sequential: sequential || hlt,
        }
    }
}

/// The registers that changed, in [`NAMES`] order (RIP is the line's own address).
fn changes<'r>(
    before: &'r RegisterFile,
    after: &'r RegisterFile,
) -> impl Iterator<Item = (&'static str, u64, u64)> + 'r {
    NAMES
        .iter()
        .filter(|(_, register)| *register != Register::Rip)
        .map(|&(name, register)| (name, before.get(register), after.get(register)))
        .filter(|(_, old, new)| old != new)
}

fn push_text(
    line: &mut Vec<u8>,
    instruction: &Instruction<'_>,
    before: &RegisterFile,
    after: &RegisterFile,
) {
    let _ = match before.mode {
        CpuMode::Real => write!(line, "{:04x}:{:04x} ", before.segments[0], before.rip),
        _ => write!(line, "{:#x} ", before.pc()),
    };
    let start = line.len();
    for byte in instruction.bytes {
        let _ = write!(line, " {byte:02x}");
    }
    if !instruction.sequential {
        line.extend_from_slice(b" ..");
    }
    // The bytes in a column wide enough for 8 of them and the `..`.
    let width = 3 * WINDOW + 3;
    let pad = width.saturating_sub(line.len() - start);
    line.extend(std::iter::repeat_n(b' ', pad));
    let mut first = true;
    for (name, old, new) in changes(before, after) {
        let _ = write!(
            line,
            "{}{name} {old:#x} -> {new:#x}",
            if first { "  " } else { ", " }
        );
        first = false;
    }
    while line.last() == Some(&b' ') {
        line.pop();
    }
    line.push(b'\n');
}

fn push_json(
    line: &mut Vec<u8>,
    step: u64,
    instruction: &Instruction<'_>,
    before: &RegisterFile,
    after: &RegisterFile,
) {
    line.extend_from_slice(b"{\"step\":");
    push_dec(line, step);
    push_key(line, "cs");
    push_dec(line, u64::from(before.segments[0]));
    push_key(line, "rip");
    push_dec(line, before.rip);
    push_key(line, "pc");
    push_dec(line, before.pc());
    push_key(line, "bytes");
    line.push(b'"');
    push_hex_bytes(line, instruction.bytes);
    line.push(b'"');
    push_key(line, "sequential");
    line.extend_from_slice(if instruction.sequential {
        b"true"
    } else {
        b"false"
    });
    push_key(line, "changed");
    line.push(b'{');
    for (i, (name, old, new)) in changes(before, after).enumerate() {
        if i > 0 {
            line.push(b',');
        }
        push_string(line, name);
        line.extend_from_slice(b":[");
        push_dec(line, old);
        line.push(b',');
        push_dec(line, new);
        line.push(b']');
    }
    line.extend_from_slice(b"}}\n");
}

fn interrupted(vcpu: &Vcpu, control: &RunControl) -> Error {
    let signal = match control.stop_cause() {
        Some(StopCause::Signal(signal)) => signal,
        // A snapshot request cannot reach a debugged run (the flags are refused together).
        Some(StopCause::Snapshot) | None => libc::SIGINT,
    };
    Error::Interrupted {
        signal,
        stopped: vec![StoppedVcpu {
            id: vcpu.id(),
            instruction_pointer: crate::arch::instruction_pointer(vcpu).ok(),
        }],
    }
}
