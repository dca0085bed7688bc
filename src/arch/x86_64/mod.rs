//! x86-64: register access and the real-mode entry state.
//!
//! ```text
//! ioctl(vcpu, KVM_GET_SREGS, &sregs)   keep what KVM's reset put there, then
//!   sregs.cs = { selector: SEG, base: SEG << 4, ... }   real mode: base = selector * 16
//! ioctl(vcpu, KVM_SET_SREGS, &sregs)
//! ioctl(vcpu, KVM_SET_REGS, &{ rip: OFF, rflags: 0x2, rsp, rsi: vcpu index })
//! ```
//!
//! A vCPU comes out of `KVM_CREATE_VCPU` in the architectural reset state: real mode,
//! `CS.selector = 0xF000` with `CS.base = 0xFFFF0000`, `IP = 0xFFF0`. rawkvm moves it to the
//! entry point given on the command line (default `0000:1000`).

pub mod cpu_setup;
pub mod cpuid;
pub mod cpuid_names;
pub mod msr;
pub mod msr_names;
pub mod state;
pub mod sync_regs;

use std::fmt;

use nix::errno::Errno;
use rawkvm_bindings::{kvm_guest_debug, kvm_interrupt, kvm_regs, kvm_sregs};

use crate::error::Error;
use crate::exit::fields::REQUEST_INTERRUPT_WINDOW;
use crate::kvm::vcpu::Vcpu;
use crate::sys::ioctl::{Ioctl, Reads, Writes, vcpu};

/// Bit 1 of RFLAGS is reserved and always 1; everything else (IF included) starts clear.
pub const RFLAGS_RESERVED: u64 = 0x2;

/// Where a real-mode guest starts: `CS:IP`, and the initial stack pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The code segment selector; real mode puts the segment base at `segment * 16`.
    pub segment: u16,
    /// The instruction pointer within that segment.
    pub offset: u16,
    /// `SP` (with `SS = 0`); below the parameter block at `0x0F00`.
    pub stack_pointer: u16,
}

impl Default for Entry {
    /// `0000:1000`, stack at `0000:0F00`: the conventions of `asm-guests/README.md`.
    fn default() -> Self {
        Entry {
            segment: 0,
            offset: 0x1000,
            stack_pointer: 0x0F00,
        }
    }
}

impl Entry {
    /// Parses `SEG:OFF` in hex (`0000:1000`, `0x0:0x1000`): digits only, one `0x` at most.
    pub fn parse(text: &str) -> Result<Entry, String> {
        let (segment, offset) = text
            .split_once(':')
            .ok_or_else(|| format!("entry {text:?} is not SEG:OFF (for example 0000:1000)"))?;
        let hex16 = |part: &str| {
            crate::units::parse_hex(part.trim())
                .and_then(|value| u16::try_from(value).ok())
                .ok_or_else(|| format!("{part:?} in entry {text:?} is not a 16-bit hex number"))
        };
        Ok(Entry {
            segment: hex16(segment)?,
            offset: hex16(offset)?,
            ..Entry::default()
        })
    }

    /// The guest physical address the first instruction is fetched from.
    pub fn linear_address(&self) -> u64 {
        (u64::from(self.segment) << 4) + u64::from(self.offset)
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04x}:{:04x}", self.segment, self.offset)
    }
}

/// `ioctl(vcpu, GET, &mut value)` for a register-reading ioctl.
pub(crate) fn get<T: Copy + Default>(vcpu: &Vcpu, ioctl: &Ioctl<Writes<T>>) -> Result<T, Error> {
    let mut value = T::default();
    ioctl
        .call(vcpu.fd(), &mut value)
        .map_err(|errno| Error::Ioctl {
            ioctl: ioctl.name,
            errno,
        })?;
    Ok(value)
}

/// `ioctl(vcpu, REQUEST, &value)` for an ioctl that passes a value in; `error` names the
/// failure.
fn put<T: Copy>(
    vcpu: &Vcpu,
    ioctl: &Ioctl<Reads<T>>,
    value: &T,
    error: fn(&'static str, nix::errno::Errno) -> Error,
) -> Result<(), Error> {
    ioctl
        .call(vcpu.fd(), value)
        .map(drop)
        .map_err(|errno| error(ioctl.name, errno))
}

/// `ioctl(vcpu, SET, &value)` for a register-writing ioctl.
pub(crate) fn set<T: Copy>(vcpu: &Vcpu, ioctl: &Ioctl<Reads<T>>, value: &T) -> Result<(), Error> {
    put(vcpu, ioctl, value, |ioctl, errno| Error::SetRegisters {
        ioctl,
        errno,
    })
}

/// `ioctl(vcpu, REQUEST, &value)` for an ioctl that is not a register write.
fn call<T: Copy>(vcpu: &Vcpu, ioctl: &Ioctl<Reads<T>>, value: &T) -> Result<(), Error> {
    put(vcpu, ioctl, value, |ioctl, errno| Error::Ioctl {
        ioctl,
        errno,
    })
}

impl Vcpu {
    /// `ioctl(vcpu, KVM_GET_REGS, &regs)`: the general-purpose registers, RIP and RFLAGS.
    pub fn regs(&self) -> Result<kvm_regs, Error> {
        get(self, &vcpu::GET_REGS)
    }

    /// `ioctl(vcpu, KVM_SET_REGS, &regs)`.
    pub fn set_regs(&self, regs: &kvm_regs) -> Result<(), Error> {
        set(self, &vcpu::SET_REGS, regs)
    }

    /// `ioctl(vcpu, KVM_GET_SREGS, &sregs)`: segment, control and descriptor-table registers.
    pub fn sregs(&self) -> Result<kvm_sregs, Error> {
        get(self, &vcpu::GET_SREGS)
    }

    /// `ioctl(vcpu, KVM_SET_SREGS, &sregs)`. The kernel refuses architecturally invalid
    /// values (CR0.NW without CR0.CD, CR0.PG without CR0.PE, ...) with `EINVAL` and changes
    /// nothing; that is [`Error::RegistersRejected`], naming CR0, CR4, EFER and APIC_BASE.
    pub fn set_sregs(&self, sregs: &kvm_sregs) -> Result<(), Error> {
        set(self, &vcpu::SET_SREGS, sregs).map_err(|error| match error {
            Error::SetRegisters {
                ioctl,
                errno: errno @ Errno::EINVAL,
            } => Error::RegistersRejected {
                ioctl,
                errno,
                values: vec![
                    ("CR0", sregs.cr0),
                    ("CR4", sregs.cr4),
                    ("EFER", sregs.efer),
                    ("APIC_BASE", sregs.apic_base),
                ],
            },
            other => other,
        })
    }

    /// `ioctl(vcpu, KVM_SET_GUEST_DEBUG, &debug)`: arm single-stepping
    /// (`KVM_GUESTDBG_SINGLESTEP`) or hardware breakpoints (`KVM_GUESTDBG_USE_HW_BP` with
    /// `debug.arch.debugreg[0..4]` the addresses and `[7]` DR7); hits come back as
    /// `KVM_EXIT_DEBUG`. `control = 0` turns it all off.
    pub fn set_guest_debug(&self, debug: &kvm_guest_debug) -> Result<(), Error> {
        call(self, &vcpu::SET_GUEST_DEBUG, debug)
    }

    /// `ioctl(vcpu, KVM_INTERRUPT, &{ irq: vector })`: inject an external interrupt now. Only
    /// without an in-kernel irqchip, and only when the guest can take it
    /// (`ready_for_interrupt_injection`); see [`Vcpu::queue_interrupt`].
    pub fn interrupt(&self, vector: u8) -> Result<(), Error> {
        let irq = kvm_interrupt {
            irq: u32::from(vector),
        };
        call(self, &vcpu::INTERRUPT, &irq)
    }

    /// Injects `vector` as soon as the guest can take an interrupt: sets
    /// `kvm_run.request_interrupt_window`, so `KVM_RUN` returns `KVM_EXIT_IRQ_WINDOW_OPEN` once
    /// the guest has IF set and no interrupt shadow, where [`crate::run_loop::run_vcpu`] calls
    /// `KVM_INTERRUPT`.
    pub fn queue_interrupt(&mut self, vector: u8) {
        self.queued_interrupt = Some(vector);
        self.run_page().set(REQUEST_INTERRUPT_WINDOW.field, 1);
    }

    /// Puts back what [`Vcpu::queue_interrupt`] had queued (`Some`), or clears the queue and
    /// the window request (`None`): a restarted run waits for the same interrupt a fresh VM
    /// would.
    pub fn requeue_interrupt(&mut self, queued: Option<u8>) {
        match queued {
            Some(vector) => self.queue_interrupt(vector),
            None => {
                self.queued_interrupt = None;
                self.run_page().set(REQUEST_INTERRUPT_WINDOW.field, 0);
            }
        }
    }

    /// At `KVM_EXIT_IRQ_WINDOW_OPEN`: injects the queued vector, if any, and stops asking for
    /// the window.
    pub(crate) fn deliver_queued_interrupt(&mut self) -> Result<(), Error> {
        if let Some(vector) = self.queued_interrupt.take() {
            self.interrupt(vector)?;
        }
        self.run_page().set(REQUEST_INTERRUPT_WINDOW.field, 0);
        Ok(())
    }
}

/// The vCPU's instruction pointer, `RIP` (`KVM_GET_REGS`).
pub fn instruction_pointer(vcpu: &Vcpu) -> Result<u64, Error> {
    Ok(vcpu.regs()?.rip)
}

/// Puts `vcpu` in real mode at `entry`, with `ESI` = `index` and the other general registers 0.
pub fn reset_vcpu(vcpu: &Vcpu, entry: &Entry, index: u32) -> Result<(), Error> {
    let mut sregs = vcpu.sregs()?;
    sregs.cs.selector = entry.segment;
    sregs.cs.base = u64::from(entry.segment) << 4;
    for segment in [
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.fs,
        &mut sregs.gs,
        &mut sregs.ss,
    ] {
        segment.selector = 0;
        segment.base = 0;
    }
    vcpu.set_sregs(&sregs)?;
    let regs = kvm_regs {
        rip: u64::from(entry.offset),
        rsp: u64::from(entry.stack_pointer),
        rsi: u64::from(index),
        rflags: RFLAGS_RESERVED,
        ..kvm_regs::default()
    };
    vcpu.set_regs(&regs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_as_hex_seg_off() {
        assert_eq!(
            Entry::parse("0000:1000").map(|e| e.linear_address()),
            Ok(0x1000)
        );
        assert_eq!(
            Entry::parse("0x100:0x10").map(|e| e.linear_address()),
            Ok(0x1010)
        );
        assert_eq!(
            Entry::parse("ffff:0010").map(|e| e.linear_address()),
            Ok(0x100000)
        );
        assert_eq!(Entry::parse("f000:fff0").unwrap().to_string(), "f000:fff0");
        for bad in ["1000", "10000:0", "0:10000", "x:y", ":", ""] {
            assert!(Entry::parse(bad).is_err(), "{bad:?}");
        }
    }
}
