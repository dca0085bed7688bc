//! The registers a debugger shows, in one flat table read from and written back to the vCPU.
//!
//! ```text
//! ioctl(vcpu, KVM_GET_REGS, &regs)     rax..r15, rip, rflags
//! ioctl(vcpu, KVM_GET_SREGS, &sregs)   cs..gs selectors and bases, cr0, efer: the CPU mode
//! ioctl(vcpu, KVM_SET_REGS, &regs)     after gdb wrote a register (G, P)
//! ioctl(vcpu, KVM_SET_SREGS, &sregs)   after gdb wrote a segment register
//! ```
//!
//! Both the gdb stub and the single-step tracer read the same [`RegisterFile`]; the tracer
//! prints the registers that changed by the names of [`NAMES`].

use rawkvm_bindings::{kvm_regs, kvm_segment, kvm_sregs};

use crate::error::Error;
use crate::kvm::vcpu::Vcpu;

/// CR0.PE: protected mode.
const CR0_PE: u64 = 1;
/// EFER.LMA: long mode active.
const EFER_LMA: u64 = 1 << 10;

/// The mode the vCPU executes in, from CR0, EFER and CS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuMode {
    /// Real mode: an address is `segment * 16 + offset`.
    Real,
    /// Protected mode (32-bit, or 16-bit code segments).
    Protected,
    /// Long mode, 64-bit code segment.
    Long,
}

impl CpuMode {
    /// The mode `sregs` describe.
    pub fn of(sregs: &kvm_sregs) -> CpuMode {
        if sregs.cr0 & CR0_PE == 0 {
            CpuMode::Real
        } else if sregs.efer & EFER_LMA != 0 && sregs.cs.l != 0 {
            CpuMode::Long
        } else {
            CpuMode::Protected
        }
    }
}

/// How many general-purpose registers [`RegisterFile::gp`] holds: rax..r15.
pub const GP_COUNT: usize = 16;
/// How many segment registers [`RegisterFile::segments`] holds: cs, ss, ds, es, fs, gs.
pub const SEGMENT_COUNT: usize = 6;

/// One register by where it lives in a [`RegisterFile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    /// `gp[n]`, in the order of [`GP_NAMES`].
    Gp(usize),
    /// RIP.
    Rip,
    /// RFLAGS.
    Rflags,
    /// `segments[n]` (the selector), in the order of [`SEGMENT_NAMES`].
    Segment(usize),
}

/// The general-purpose registers in gdb's x86-64 order (which is not `kvm_regs`' order).
pub const GP_NAMES: [&str; GP_COUNT] = [
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
    "r14", "r15",
];

/// The segment registers in gdb's order.
pub const SEGMENT_NAMES: [&str; SEGMENT_COUNT] = ["cs", "ss", "ds", "es", "fs", "gs"];

/// Every register of a [`RegisterFile`] by name, in the order the tracer prints changes.
pub const NAMES: [(&str, Register); GP_COUNT + 2 + SEGMENT_COUNT] = {
    let mut names = [("", Register::Rip); GP_COUNT + 2 + SEGMENT_COUNT];
    let mut i = 0;
    while i < GP_COUNT {
        names[i] = (GP_NAMES[i], Register::Gp(i));
        i += 1;
    }
    names[GP_COUNT] = ("rip", Register::Rip);
    names[GP_COUNT + 1] = ("rflags", Register::Rflags);
    let mut s = 0;
    while s < SEGMENT_COUNT {
        names[GP_COUNT + 2 + s] = (SEGMENT_NAMES[s], Register::Segment(s));
        s += 1;
    }
    names
};

/// The registers of one vCPU as a debugger sees them, plus what is needed to write them back
/// and to turn an instruction pointer into an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterFile {
    /// rax..r15 in [`GP_NAMES`] order.
    pub gp: [u64; GP_COUNT],
    /// RIP (the offset in CS).
    pub rip: u64,
    /// RFLAGS.
    pub rflags: u64,
    /// Segment selectors in [`SEGMENT_NAMES`] order.
    pub segments: [u16; SEGMENT_COUNT],
    /// CS's base: the linear address of the instruction is `cs_base + rip`.
    pub cs_base: u64,
    /// The CPU mode.
    pub mode: CpuMode,
}

impl RegisterFile {
    /// Reads the vCPU's registers (`KVM_GET_REGS`, `KVM_GET_SREGS`).
    pub fn read(vcpu: &Vcpu) -> Result<RegisterFile, Error> {
        Ok(RegisterFile::from_kvm(&vcpu.regs()?, &vcpu.sregs()?))
    }

    /// The file `regs` and `sregs` describe.
    pub fn from_kvm(regs: &kvm_regs, sregs: &kvm_sregs) -> RegisterFile {
        let r = regs;
        RegisterFile {
            gp: [
                r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp, r.rsp, r.r8, r.r9, r.r10, r.r11,
                r.r12, r.r13, r.r14, r.r15,
            ],
            rip: r.rip,
            rflags: r.rflags,
            segments: segments(sregs).map(|segment| segment.selector),
            cs_base: sregs.cs.base,
            mode: CpuMode::of(sregs),
        }
    }

    /// The value of `register`.
    pub fn get(&self, register: Register) -> u64 {
        match register {
            Register::Gp(n) => self.gp[n],
            Register::Rip => self.rip,
            Register::Rflags => self.rflags,
            Register::Segment(n) => u64::from(self.segments[n]),
        }
    }

    /// Sets `register` (a selector keeps its low 16 bits).
    pub fn set(&mut self, register: Register, value: u64) {
        match register {
            Register::Gp(n) => self.gp[n] = value,
            Register::Rip => self.rip = value,
            Register::Rflags => self.rflags = value,
            Register::Segment(n) => self.segments[n] = value as u16,
        }
    }

    /// The linear address of the next instruction: CS base + RIP (in real mode CS * 16 + IP).
    pub fn pc(&self) -> u64 {
        self.cs_base.wrapping_add(self.rip)
    }

    /// Writes the file back: `KVM_SET_REGS`, and `KVM_SET_SREGS` if a selector changed from
    /// `before`. In real mode a new selector also sets the segment's base (selector * 16);
    /// in the other modes the descriptor cache is not reloaded, so a selector written there
    /// changes only the selector.
    pub fn write(&self, vcpu: &Vcpu, before: &RegisterFile) -> Result<(), Error> {
        let mut regs = vcpu.regs()?;
        let g = &self.gp;
        (regs.rax, regs.rbx, regs.rcx, regs.rdx) = (g[0], g[1], g[2], g[3]);
        (regs.rsi, regs.rdi, regs.rbp, regs.rsp) = (g[4], g[5], g[6], g[7]);
        (regs.r8, regs.r9, regs.r10, regs.r11) = (g[8], g[9], g[10], g[11]);
        (regs.r12, regs.r13, regs.r14, regs.r15) = (g[12], g[13], g[14], g[15]);
        (regs.rip, regs.rflags) = (self.rip, self.rflags);
        vcpu.set_regs(&regs)?;
        if self.segments != before.segments {
            let mut sregs = vcpu.sregs()?;
            let real = CpuMode::of(&sregs) == CpuMode::Real;
            for (segment, &selector) in segments_mut(&mut sregs).into_iter().zip(&self.segments) {
                segment.selector = selector;
                if real {
                    segment.base = u64::from(selector) << 4;
                }
            }
            vcpu.set_sregs(&sregs)?;
        }
        Ok(())
    }
}

/// The segment registers of `sregs` in [`SEGMENT_NAMES`] order.
fn segments(sregs: &kvm_sregs) -> [kvm_segment; SEGMENT_COUNT] {
    [sregs.cs, sregs.ss, sregs.ds, sregs.es, sregs.fs, sregs.gs]
}

fn segments_mut(sregs: &mut kvm_sregs) -> [&mut kvm_segment; SEGMENT_COUNT] {
    [
        &mut sregs.cs,
        &mut sregs.ss,
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.fs,
        &mut sregs.gs,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mode_follows_cr0_efer_and_cs() {
        let mut sregs = kvm_sregs::default();
        assert_eq!(CpuMode::of(&sregs), CpuMode::Real);
        sregs.cr0 = CR0_PE;
        assert_eq!(CpuMode::of(&sregs), CpuMode::Protected);
        sregs.efer = EFER_LMA;
        assert_eq!(
            CpuMode::of(&sregs),
            CpuMode::Protected,
            "compatibility mode"
        );
        sregs.cs.l = 1;
        assert_eq!(CpuMode::of(&sregs), CpuMode::Long);
    }

    #[test]
    fn registers_read_by_name_in_gdb_order() {
        let regs = kvm_regs {
            rbx: 2,
            rbp: 7,
            rsp: 8,
            rip: 0x1000,
            ..kvm_regs::default()
        };
        let mut sregs = kvm_sregs::default();
        sregs.cs.selector = 0x100;
        sregs.cs.base = 0x1000;
        let file = RegisterFile::from_kvm(&regs, &sregs);
        let value = |name| {
            NAMES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|&(_, r)| file.get(r))
        };
        assert_eq!(value("rbx"), Some(2));
        assert_eq!(value("rbp"), Some(7));
        assert_eq!(value("rsp"), Some(8));
        assert_eq!(value("cs"), Some(0x100));
        assert_eq!(file.pc(), 0x2000);
    }
}
