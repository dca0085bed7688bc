//! Exceptions in `--mode long` and `--mode user`: rawkvm's CPL 0 stub
//! (`asm-guests/stubs/exception_stub.S`, at GPA `0x9_1000`) catches vectors 0–31, loads what
//! the CPU pushed into registers and halts; the host turns that halt into
//! [`GuestFault::CpuException`] (status 6), naming the vector, error code, RIP and CR2.
//!
//! ```text
//! guest: exception -> IDT gate -> stub entry (STUB + 16 * vector) -> report -> cli; hlt
//! host:  KVM_EXIT_HLT on a vCPU with the stub installed
//!        ioctl(vcpu, KVM_GET_REGS, &regs)     RIP just past the stub's hlt and RAX = the mark?
//!          yes: GuestFault::CpuException from RBX (vector), RCX (error code), RDX (RIP),
//!               RDI (CS: its low bits are the CPL that faulted), RSI (CR2)
//!          no:  an ordinary halt
//! ```
//!
//! A halt anywhere else (a CPL 0 guest's own `hlt`) is the ordinary end of a run; only vCPUs
//! in those two modes pay for the one `KVM_GET_REGS` per halt.
//!
//! This module holds no `unsafe` code.

use rawkvm_bindings::kvm_regs;

use super::layout;
use crate::error::{Error, GuestFault};
use crate::kvm::vcpu::Vcpu;

/// The stub's code, linked at [`layout::STUB`].
pub static STUB_IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/exception_stub.bin"));
/// Bytes per entry of the stub's table: vector `v` enters at `STUB + 16 * v`.
pub const STUB_ENTRY_LEN: u64 = 16;
/// Offset of the stub's `cli; hlt; jmp` (its `.org 0x280`).
pub const HALT_OFFSET: u64 = 0x280;
/// What the stub puts in RAX before halting: `"EPCXEPER"` read as a little-endian `u64`.
pub const REPORT_MARK: u64 = 0x5245_5045_5843_5045;

/// The vectors' mnemonics and names (Intel SDM vol. 3, table 6-1).
const VECTORS: [(&str, &str); 32] = [
    ("#DE", "divide error"),
    ("#DB", "debug"),
    ("NMI", "non-maskable interrupt"),
    ("#BP", "breakpoint"),
    ("#OF", "overflow"),
    ("#BR", "bound range exceeded"),
    ("#UD", "invalid opcode"),
    ("#NM", "device not available"),
    ("#DF", "double fault"),
    ("#9", "coprocessor segment overrun"),
    ("#TS", "invalid TSS"),
    ("#NP", "segment not present"),
    ("#SS", "stack-segment fault"),
    ("#GP", "general protection"),
    ("#PF", "page fault"),
    ("#15", "reserved"),
    ("#MF", "x87 floating-point error"),
    ("#AC", "alignment check"),
    ("#MC", "machine check"),
    ("#XM", "SIMD floating-point"),
    ("#VE", "virtualization exception"),
    ("#CP", "control protection"),
    ("#22", "reserved"),
    ("#23", "reserved"),
    ("#24", "reserved"),
    ("#25", "reserved"),
    ("#26", "reserved"),
    ("#27", "reserved"),
    ("#HV", "hypervisor injection"),
    ("#VC", "VMM communication"),
    ("#SX", "security exception"),
    ("#31", "reserved"),
];

/// Vectors whose exception pushes an error code (the others report none).
const WITH_ERROR_CODE: [u8; 10] = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30];

/// The mnemonic and name of `vector` (`("#PF", "page fault")`).
pub fn vector_name(vector: u8) -> (&'static str, &'static str) {
    VECTORS
        .get(usize::from(vector))
        .copied()
        .unwrap_or(("#??", "not an exception"))
}

/// The exception a halted vCPU's registers report, if they are the stub's report.
pub fn report_of(regs: &kvm_regs) -> Option<GuestFault> {
    let halt = layout::STUB + HALT_OFFSET;
    // RIP is past the exit device's `out` (halt + 2), past the `hlt` (halt + 4), or at the
    // `cli`/`hlt` if the halt was resumed.
    if regs.rax != REPORT_MARK || !(halt..=halt + 4).contains(&regs.rip) {
        return None;
    }
    let vector = u8::try_from(regs.rbx).ok().filter(|v| *v < 32)?;
    let (mnemonic, name) = vector_name(vector);
    Some(GuestFault::CpuException {
        vector,
        mnemonic,
        name,
        error_code: WITH_ERROR_CODE.contains(&vector).then_some(regs.rcx),
        rip: regs.rdx,
        cpl: (regs.rdi & 3) as u8,
        cr2: (vector == 14).then_some(regs.rsi),
    })
}

/// At `KVM_EXIT_HLT` or the exit device's end of a run: the exception the stub reported, as
/// an error, or `Ok` for an ordinary end. Only vCPUs whose mode installed the stub read their
/// registers.
pub(crate) fn check_halt(vcpu: &Vcpu) -> Result<(), Error> {
    if !vcpu.exception_stub {
        return Ok(());
    }
    match report_of(&vcpu.regs()?) {
        Some(fault) => Err(Error::GuestFault {
            vcpu: vcpu.id(),
            fault,
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stub_has_its_entries_and_halt_where_the_host_expects() {
        assert!(STUB_IMAGE.len() as u64 <= layout::STUB_LEN);
        // Vector 0 pushes a zero error code, then its vector: `push 0; push 0; jmp report`.
        assert_eq!(&STUB_IMAGE[..4], &[0x6A, 0x00, 0x6A, 0x00]);
        // #PF (14) has an error code: only `push 14`.
        let pf = (14 * STUB_ENTRY_LEN) as usize;
        assert_eq!(&STUB_IMAGE[pf..pf + 2], &[0x6A, 14]);
        let halt = HALT_OFFSET as usize;
        assert_eq!(
            &STUB_IMAGE[halt..halt + 4],
            &[0xE6, 0xF4, 0xFA, 0xF4],
            "out 0xF4, al; cli; hlt"
        );
    }

    #[test]
    fn a_report_names_the_page_fault() {
        let regs = kvm_regs {
            rax: REPORT_MARK,
            rbx: 14,
            rcx: 6,
            rdx: 0x1005,
            rdi: 0x33,
            rsi: 0x4000_0000,
            rip: layout::STUB + HALT_OFFSET + 2,
            ..kvm_regs::default()
        };
        let fault = report_of(&regs).expect("a report");
        assert_eq!(
            fault.to_string(),
            "CPU exception #PF (page fault, vector 14) at CPL 3, RIP 0x0000000000001005, \
             error code 0x6 (not present, write, user), CR2 0x0000000040000000"
        );
        let ordinary = kvm_regs {
            rax: REPORT_MARK,
            rip: 0x1002,
            ..regs
        };
        assert!(report_of(&ordinary).is_none());
        let ud = kvm_regs { rbx: 6, ..regs };
        assert_eq!(
            report_of(&ud).unwrap().to_string(),
            "CPU exception #UD (invalid opcode, vector 6) at CPL 3, RIP 0x0000000000001005"
        );
    }
}
