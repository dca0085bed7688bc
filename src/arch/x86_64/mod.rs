//! x86-64: register access and the entry state of every CPU mode.
//!
//! ```text
//! ioctl(vcpu, KVM_GET_SREGS, &sregs)   keep what KVM's reset put there, then
//!   real mode:  sregs.cs = { selector: SEG, base: SEG << 4, ... }   base = selector * 16
//!   the others: flat segments, GDT/IDT/TR, CR0/CR3/CR4/EFER (modes.rs)
//! ioctl(vcpu, KVM_SET_SREGS, &sregs)
//! ioctl(vcpu, KVM_SET_REGS, &{ rip: entry, rflags: 0x2, rsp, rsi: vcpu index })
//! ```
//!
//! A vCPU comes out of `KVM_CREATE_VCPU` in the architectural reset state: real mode,
//! `CS.selector = 0xF000` with `CS.base = 0xFFFF0000`, `IP = 0xFFF0`. rawkvm moves it to the
//! entry point given on the command line (default `0000:1000` in real mode, `0x1000` in the
//! others), in the mode `--mode` names ([`modes::CpuMode`]).

pub mod cpu_setup;
pub mod cpuid;
pub mod cpuid_names;
pub mod exception;
pub mod gdt;
pub mod layout;
pub mod modes;
pub mod msr;
pub mod msr_names;
pub mod paging;
pub mod state;
pub mod sync_regs;

use std::fmt;

use nix::errno::Errno;
use rawkvm_bindings::{kvm_guest_debug, kvm_interrupt, kvm_regs, kvm_sregs};

use crate::error::{Error, IrqError};
use crate::exit::fields::REQUEST_INTERRUPT_WINDOW;
use crate::kvm::vcpu::Vcpu;
use crate::sys::ioctl::{Ioctl, Reads, Writes, vcpu};

pub use modes::CpuMode;

/// Bit 1 of RFLAGS is reserved and always 1; everything else (IF included) starts clear.
pub const RFLAGS_RESERVED: u64 = 0x2;

/// Where a guest starts: the CPU mode, and in it `CS:IP` (real mode) or an address, and the
/// initial stack pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The CPU mode (`--mode`).
    pub mode: CpuMode,
    /// Real mode: the code segment selector; the segment base is `segment * 16`.
    pub segment: u16,
    /// Real mode: the instruction pointer within that segment.
    pub offset: u16,
    /// The other modes: RIP, or `None` for the image's own entry (an ELF's `e_entry`, else
    /// the load address).
    pub address: Option<u64>,
    /// `RSP`: `0x0F00` (with `SS = 0`, below the parameter block) in real mode; in the others
    /// the machine puts it at the top of RAM ([`Entry::with_stack_at_top`]).
    pub stack_pointer: u64,
}

impl Default for Entry {
    /// Real mode at `0000:1000`, stack at `0000:0F00`: the conventions of
    /// `asm-guests/README.md`.
    fn default() -> Self {
        Entry {
            mode: CpuMode::Real,
            segment: 0,
            offset: 0x1000,
            address: None,
            stack_pointer: 0x0F00,
        }
    }
}

impl Entry {
    /// Parses a real-mode `SEG:OFF` in hex (`0000:1000`, `0x0:0x1000`): digits only, one `0x`
    /// at most.
    pub fn parse(text: &str) -> Result<Entry, String> {
        Entry::default().parsed_in(text)
    }

    /// This entry's mode with the entry point `text`: `SEG:OFF` in real mode, a hex address
    /// (`0x1000`, `1000`) in the others.
    pub fn parsed_in(self, text: &str) -> Result<Entry, String> {
        let hex = |part: &str| crate::units::parse_hex(part.trim());
        if self.mode != CpuMode::Real {
            let address = hex(text).ok_or_else(|| {
                format!(
                    "entry {text:?} is not a hex address (for example 0x1000); --mode {} takes \
                     an address, real mode SEG:OFF",
                    self.mode
                )
            })?;
            return Ok(Entry {
                address: Some(address),
                ..self
            });
        }
        let (segment, offset) = text
            .split_once(':')
            .ok_or_else(|| format!("entry {text:?} is not SEG:OFF (for example 0000:1000)"))?;
        let hex16 = |part: &str| {
            hex(part)
                .and_then(|value| u16::try_from(value).ok())
                .ok_or_else(|| format!("{part:?} in entry {text:?} is not a 16-bit hex number"))
        };
        Ok(Entry {
            segment: hex16(segment)?,
            offset: hex16(offset)?,
            ..self
        })
    }

    /// The same entry point in `mode` (the stack and real-mode fields kept).
    pub fn in_mode(self, mode: CpuMode) -> Entry {
        Entry { mode, ..self }
    }

    /// Outside real mode: the entry at `image_entry` unless an address was given, and RSP at
    /// the top of RAM (`ram_end`, 16-byte aligned; below 4 GiB in the 32-bit modes).
    pub fn with_stack_at_top(self, ram_end: u64, image_entry: u64) -> Entry {
        if self.mode == CpuMode::Real {
            return self;
        }
        let limit = if self.mode.is_64bit() {
            u64::MAX
        } else {
            0xFFFF_FFF0
        };
        Entry {
            address: Some(self.address.unwrap_or(image_entry)),
            stack_pointer: (ram_end & !0xF).min(limit),
            ..self
        }
    }

    /// The guest physical address the first instruction is fetched from (the identity map
    /// makes it the virtual one too).
    pub fn linear_address(&self) -> u64 {
        match self.mode {
            CpuMode::Real => (u64::from(self.segment) << 4) + u64::from(self.offset),
            _ => self.address.unwrap_or(0x1000),
        }
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.mode {
            CpuMode::Real => write!(f, "{:04x}:{:04x}", self.segment, self.offset),
            _ => write!(f, "{:#x}", self.linear_address()),
        }
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
    /// With an in-kernel irqchip it is refused before the kernel is asked
    /// ([`crate::error::IrqError::InterruptWithIrqchip`]; the kernel would say `ENXIO`).
    pub fn interrupt(&self, vector: u8) -> Result<(), Error> {
        if self.in_kernel_irqchip {
            return Err(IrqError::InterruptWithIrqchip { vector }.into());
        }
        let irq = kvm_interrupt {
            irq: u32::from(vector),
        };
        vcpu::INTERRUPT
            .call(self.fd(), &irq)
            .map(drop)
            .map_err(|errno| IrqError::from_kernel(vcpu::INTERRUPT.name, errno).into())
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
    /// Returns the vector injected, if one was queued.
    pub(crate) fn deliver_queued_interrupt(&mut self) -> Result<Option<u8>, Error> {
        let queued = self.queued_interrupt.take();
        if let Some(vector) = queued {
            self.interrupt(vector)?;
        }
        self.run_page().set(REQUEST_INTERRUPT_WINDOW.field, 0);
        Ok(queued)
    }
}

/// The vCPU's instruction pointer, `RIP` (`KVM_GET_REGS`).
pub fn instruction_pointer(vcpu: &Vcpu) -> Result<u64, Error> {
    Ok(vcpu.regs()?.rip)
}

/// Puts `vcpu` at `entry`, in its mode, with `ESI` = `index` and the other general
/// registers 0; outside real mode vCPU `index` gets its own stack, `index` ×
/// [`layout::STACK_PER_VCPU`] below the entry's. Outside real mode the system area must already be in guest memory
/// ([`modes::system_area`]).
pub fn reset_vcpu(vcpu: &Vcpu, entry: &Entry, index: u32) -> Result<(), Error> {
    let sregs = modes::entry_sregs(entry.mode, vcpu.sregs()?, entry.segment, index);
    let (rip, rsp) = match entry.mode {
        CpuMode::Real => (u64::from(entry.offset), entry.stack_pointer),
        _ => {
            let below = u64::from(index) * layout::STACK_PER_VCPU;
            (
                entry.linear_address(),
                entry.stack_pointer.saturating_sub(below),
            )
        }
    };
    vcpu.set_sregs(&sregs)?;
    let regs = kvm_regs {
        rip,
        rsp,
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

    #[test]
    fn other_modes_take_an_address_and_stack_at_the_top() {
        let long = Entry::default().in_mode(CpuMode::Long);
        assert_eq!(
            long.parsed_in("0x2000").map(|e| e.address),
            Ok(Some(0x2000))
        );
        assert!(long.parsed_in("0000:1000").is_err());
        let placed = long.with_stack_at_top(0x10_0008, 0x1234);
        assert_eq!(
            (placed.address, placed.stack_pointer),
            (Some(0x1234), 0x10_0000)
        );
        assert_eq!(placed.to_string(), "0x1234");
        let protected = Entry::default().in_mode(CpuMode::Protected);
        assert_eq!(
            protected.with_stack_at_top(1 << 32, 0x1000).stack_pointer,
            0xFFFF_FFF0
        );
        let real = Entry::default().with_stack_at_top(1 << 20, 0x1000);
        assert_eq!((real.address, real.stack_pointer), (None, 0x0F00));
    }
}
