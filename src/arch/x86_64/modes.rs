//! The CPU modes a vCPU can start in, `--mode real|protected|paged|long|user`, set up by the
//! host the way a boot loader would leave the CPU, but in one call:
//!
//! ```text
//! write the system area (layout.rs): GDT, TSS, IDT, exception stub, page tables
//! ioctl(vcpu, KVM_GET_SREGS, &sregs)               what KVM's reset left, then per mode:
//!   sregs.cs, ds, es, fs, gs, ss = flat segments     (gdt.rs; DPL 3 in user mode)
//!   sregs.gdt = { SYSTEM_AREA, 0x47 }, sregs.idt = { IDT, 32 * 16 - 1 }, sregs.tr = the TSS
//!   sregs.cr0 = PE|MP|ET|NE (+ WP|PG), cr3 = PML4, cr4 = PAE|OSFXSR|OSXMMEXCPT (or PSE),
//!   sregs.efer = LME|LMA (long, user)
//! ioctl(vcpu, KVM_SET_SREGS, &sregs)
//! ioctl(vcpu, KVM_SET_REGS, &{ rip: entry, rsp: top of RAM, rflags: 0x2, rsi: vCPU index })
//! ```
//!
//! | mode | CS | paging | CPL | exceptions |
//! |---|---|---|---|---|
//! | `real` | `0000`, 16-bit | off | 0 | the guest's own IVT |
//! | `protected` | `0x08`, 32-bit flat | off | 0 | no IDT: a triple fault (status 6) |
//! | `paged` | `0x08`, 32-bit flat | 32-bit, 4 MiB pages | 0 | no IDT: a triple fault |
//! | `long` | `0x18`, 64-bit | 4-level | 0 | the stub: status 6 naming the exception |
//! | `user` | `0x33`, 64-bit | 4-level, user pages | 3 | the stub: status 6 naming the exception |
//!
//! What differs between KVM backends (see HOST-NOTES "CPU modes"): PVM (`kvm_pvm`) runs paging
//! only in long mode, so `paged` is refused there before any vCPU exists
//! ([`CpuMode::refusal_on`]); VMX and SVM run it. PVM emulates all CPL 0 code and runs CPL 3
//! code natively; VMX and SVM run every mode natively.
//!
//! This module makes no system calls itself; [`super::reset_vcpu`] makes the two above.

use std::fmt;

use rawkvm_bindings::{kvm_dtable, kvm_segment, kvm_sregs};

use super::gdt;
use super::layout::{self, SystemArea};
use super::paging;

/// CR0.PE: protected mode.
pub const CR0_PE: u64 = 1 << 0;
/// CR0.MP: `wait`/`fwait` honour TS.
pub const CR0_MP: u64 = 1 << 1;
/// CR0.ET: the FPU is a 387 (hard-wired to 1).
pub const CR0_ET: u64 = 1 << 4;
/// CR0.NE: FPU errors are exceptions (#MF), not IRQ 13.
pub const CR0_NE: u64 = 1 << 5;
/// CR0.WP: CPL 0 honours read-only pages.
pub const CR0_WP: u64 = 1 << 16;
/// CR0.PG: paging.
pub const CR0_PG: u64 = 1 << 31;
/// CR4.PSE: 4 MiB pages in 32-bit paging.
pub const CR4_PSE: u64 = 1 << 4;
/// CR4.PAE: 64-bit page-table entries (required by long mode).
pub const CR4_PAE: u64 = 1 << 5;
/// CR4.OSFXSR: the OS saves SSE state with `fxsave`, so SSE instructions are allowed.
pub const CR4_OSFXSR: u64 = 1 << 9;
/// CR4.OSXMMEXCPT: SSE floating-point errors are #XM.
pub const CR4_OSXMMEXCPT: u64 = 1 << 10;
/// EFER.LME: long mode enabled.
pub const EFER_LME: u64 = 1 << 8;
/// EFER.LMA: long mode active (with CR0.PG).
pub const EFER_LMA: u64 = 1 << 10;

/// The names of CR0's bits that rawkvm sets or that KVM's reset leaves.
const CR0_BITS: &[(u64, &str)] = &[
    (CR0_PE, "PE"),
    (CR0_MP, "MP"),
    (1 << 2, "EM"),
    (1 << 3, "TS"),
    (CR0_ET, "ET"),
    (CR0_NE, "NE"),
    (CR0_WP, "WP"),
    (1 << 18, "AM"),
    (1 << 29, "NW"),
    (1 << 30, "CD"),
    (CR0_PG, "PG"),
];
/// The names of CR4's bits.
const CR4_BITS: &[(u64, &str)] = &[
    (1 << 0, "VME"),
    (1 << 1, "PVI"),
    (1 << 2, "TSD"),
    (1 << 3, "DE"),
    (CR4_PSE, "PSE"),
    (CR4_PAE, "PAE"),
    (1 << 6, "MCE"),
    (1 << 7, "PGE"),
    (CR4_OSFXSR, "OSFXSR"),
    (CR4_OSXMMEXCPT, "OSXMMEXCPT"),
    (1 << 18, "OSXSAVE"),
];
/// The names of EFER's bits.
const EFER_BITS: &[(u64, &str)] = &[
    (1 << 0, "SCE"),
    (EFER_LME, "LME"),
    (EFER_LMA, "LMA"),
    (1 << 11, "NXE"),
];

/// The mode a vCPU starts in (`--mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CpuMode {
    /// 16-bit real mode, as KVM's reset leaves the vCPU (at the given `SEG:OFF`).
    #[default]
    Real,
    /// 32-bit protected mode, flat segments, no paging, CPL 0.
    Protected,
    /// 32-bit protected mode with 32-bit paging (4 MiB pages), CPL 0.
    Paged,
    /// 64-bit long mode, CPL 0, RAM identity-mapped with 4-level tables.
    Long,
    /// 64-bit long mode at CPL 3, user-accessible identity map, rawkvm's exception stub.
    User,
}

impl CpuMode {
    /// Every mode, in `--help` order.
    pub const ALL: [CpuMode; 5] = [
        CpuMode::Real,
        CpuMode::Protected,
        CpuMode::Paged,
        CpuMode::Long,
        CpuMode::User,
    ];

    /// Its `--mode` name.
    pub fn name(self) -> &'static str {
        match self {
            CpuMode::Real => "real",
            CpuMode::Protected => "protected",
            CpuMode::Paged => "paged",
            CpuMode::Long => "long",
            CpuMode::User => "user",
        }
    }

    /// Parses a `--mode` name.
    pub fn parse(text: &str) -> Result<CpuMode, String> {
        CpuMode::ALL
            .into_iter()
            .find(|mode| mode.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = CpuMode::ALL.iter().map(|mode| mode.name()).collect();
                format!(
                    "unknown CPU mode {text:?}; the modes are {}",
                    names.join(", ")
                )
            })
    }

    /// Whether code runs 64-bit (long, user).
    pub fn is_64bit(self) -> bool {
        matches!(self, CpuMode::Long | CpuMode::User)
    }

    /// Whether the host writes the system area (every mode but real).
    pub fn uses_system_area(self) -> bool {
        self != CpuMode::Real
    }

    /// Whether exceptions go to rawkvm's stub, which reports them (long, user).
    pub fn has_exception_stub(self) -> bool {
        self.is_64bit()
    }

    /// Why `backend` (`kvm_pvm`, `kvm_intel`, ...) cannot run this mode, if it cannot.
    pub fn refusal_on(self, backend: Option<&str>) -> Option<&'static str> {
        match (self, backend) {
            (CpuMode::Paged, Some("kvm_pvm")) => Some(
                "PVM runs guest paging only in long mode: KVM_SET_SREGS accepts CR0.PG without \
                 EFER.LME, then the first KVM_RUN ends in KVM_EXIT_SHUTDOWN (use --mode long \
                 or user for paging)",
            ),
            _ => None,
        }
    }

    /// One line on what the mode is, for `--explain` and `rawkvm list`.
    pub fn summary(self) -> &'static str {
        match self {
            CpuMode::Real => "16-bit real mode, CPL 0, as KVM's reset leaves the vCPU",
            CpuMode::Protected => "32-bit protected mode, flat segments, no paging, CPL 0",
            CpuMode::Paged => "32-bit protected mode with 32-bit paging (4 MiB pages), CPL 0",
            CpuMode::Long => "64-bit long mode, CPL 0, RAM identity-mapped (4-level tables)",
            CpuMode::User => {
                "64-bit long mode at CPL 3, RAM identity-mapped user-accessible, exceptions to \
                 rawkvm's CPL 0 stub"
            }
        }
    }
}

impl fmt::Display for CpuMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The system area of `mode` for `ram_end` bytes of RAM, or `None` in real mode.
pub fn system_area(mode: CpuMode, ram_end: u64) -> Option<SystemArea> {
    if !mode.uses_system_area() {
        return None;
    }
    let mut area = SystemArea::default();
    area.put(layout::GDT, &gdt::gdt(layout::TSS));
    for vcpu in 0..layout::TSS_SLOTS as u32 {
        let (tss, stack) = layout::tss_of(vcpu);
        area.put(tss, &gdt::tss(stack));
    }
    match mode {
        CpuMode::Paged => paging::identity_map_32bit(&mut area, ram_end),
        CpuMode::Long | CpuMode::User => {
            paging::identity_map_4level(&mut area, ram_end, mode == CpuMode::User);
            area.put(layout::STUB, super::exception::STUB_IMAGE);
            for vector in 0..layout::IDT_VECTORS {
                let handler = layout::STUB + vector * super::exception::STUB_ENTRY_LEN;
                // `int3` from CPL 3 reaches its gate as #BP; any other `int N` is a #GP.
                let dpl = if vector == 3 { 3 } else { 0 };
                let gate = gdt::interrupt_gate(handler, dpl);
                area.put(layout::IDT + vector * gdt::GATE_LEN as u64, &gate);
            }
        }
        CpuMode::Real | CpuMode::Protected => {}
    }
    Some(area)
}

/// DS, ES, FS, GS and SS: the segments every mode sets alike.
fn data_segments(sregs: &mut kvm_sregs) -> [&mut kvm_segment; 5] {
    [
        &mut sregs.ds,
        &mut sregs.es,
        &mut sregs.fs,
        &mut sregs.gs,
        &mut sregs.ss,
    ]
}

/// `reset` (what `KVM_GET_SREGS` gave) changed for `mode`, for vCPU `vcpu` (whose TR is its
/// own TSS, [`layout::tss_of`]). Real mode keeps KVM's reset state but for the segments: CS =
/// `real_segment` (base = selector * 16), the others 0.
pub fn entry_sregs(mode: CpuMode, reset: kvm_sregs, real_segment: u16, vcpu: u32) -> kvm_sregs {
    let mut sregs = reset;
    let (code, data) = match mode {
        CpuMode::Real => {
            sregs.cs.selector = real_segment;
            sregs.cs.base = u64::from(real_segment) << 4;
            for segment in data_segments(&mut sregs) {
                segment.selector = 0;
                segment.base = 0;
            }
            return sregs;
        }
        CpuMode::Protected | CpuMode::Paged => (gdt::code32(), gdt::data32()),
        CpuMode::Long => (gdt::code64(), gdt::data64()),
        CpuMode::User => (gdt::user_code(), gdt::user_data()),
    };
    sregs.cs = code;
    for segment in data_segments(&mut sregs) {
        *segment = data;
    }
    sregs.gdt = kvm_dtable {
        base: layout::GDT,
        limit: gdt::GDT_LEN as u16 - 1,
        ..kvm_dtable::default()
    };
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE;
    sregs.cr4 = 0;
    sregs.efer = 0;
    // No IDT in 32-bit modes: a 32-bit `iret` cannot be emulated on PVM, so a handler could
    // never return; any exception there is a triple fault instead.
    sregs.idt = kvm_dtable::default();
    match mode {
        CpuMode::Paged => {
            sregs.cr0 |= CR0_WP | CR0_PG;
            sregs.cr3 = layout::PML4;
            sregs.cr4 = CR4_PSE;
        }
        CpuMode::Long | CpuMode::User => {
            sregs.cr0 |= CR0_WP | CR0_PG;
            sregs.cr3 = layout::PML4;
            sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT;
            sregs.efer = EFER_LME | EFER_LMA;
            sregs.idt = kvm_dtable {
                base: layout::IDT,
                limit: (layout::IDT_VECTORS * gdt::GATE_LEN as u64 - 1) as u16,
                ..kvm_dtable::default()
            };
            // TR's base is what the CPU uses (the GDT's descriptor matters only to `ltr`): each
            // vCPU points at its own TSS, so each has its own exception stack.
            sregs.tr = gdt::task_register(layout::tss_of(vcpu).0);
        }
        CpuMode::Real | CpuMode::Protected => {}
    }
    sregs
}

/// `value` with its set bits named: `0x80050033 (PE MP ET NE WP PG)`.
pub fn bits_named(value: u64, names: &[(u64, &str)]) -> String {
    let mut named: Vec<&str> = names
        .iter()
        .filter(|(bit, _)| value & bit != 0)
        .map(|(_, name)| *name)
        .collect();
    let unnamed = names.iter().fold(value, |rest, (bit, _)| rest & !bit);
    let other = format!("{unnamed:#x}");
    if unnamed != 0 {
        named.push(&other);
    }
    format!("{value:#x} ({})", named.join(" "))
}

/// What `--explain` says before the first exit: the mode, and every `kvm_sregs` field
/// rawkvm set, with why. Lines end with `\n`.
pub fn explain(mode: CpuMode, sregs: &kvm_sregs, entry: u64, stack: u64) -> String {
    let mut text = format!("mode {mode}: {}\n", mode.summary());
    let mut line = |field: &str, value: String, why: &str| {
        text.push_str(&format!("  KVM_SET_SREGS {field:<10} = {value}: {why}\n"));
    };
    let segment = |s: &rawkvm_bindings::kvm_segment| {
        format!(
            "selector {:#06x} base {:#x} limit {:#x} type {:#x} dpl {} db {} l {} g {}",
            s.selector, s.base, s.limit, s.type_, s.dpl, s.db, s.l, s.g
        )
    };
    if mode == CpuMode::Real {
        line(
            "cs",
            segment(&sregs.cs),
            "real mode: base = selector * 16, the entry segment",
        );
        line("ds..ss", segment(&sregs.ds), "segment 0");
        line(
            "cr0",
            bits_named(sregs.cr0, CR0_BITS),
            "left as KVM's reset set it (PE clear: real mode)",
        );
    } else {
        let why_cs = match mode {
            CpuMode::User => "64-bit code (L = 1) at DPL 3: the program runs at CPL 3",
            CpuMode::Long => "64-bit code (L = 1), DPL 0",
            _ => "32-bit code (D = 1), flat 4 GiB, DPL 0",
        };
        line("cs", segment(&sregs.cs), why_cs);
        line(
            "ds..ss",
            segment(&sregs.ds),
            "flat data; matches its GDT slot",
        );
        line(
            "gdt",
            format!("base {:#x} limit {:#x}", sregs.gdt.base, sregs.gdt.limit),
            "rawkvm's GDT in the system area",
        );
        let why_idt = if mode.has_exception_stub() {
            "32 gates to the exception stub at 0x91000 (status 6 naming the exception)"
        } else {
            "none: a 32-bit iret cannot be emulated on PVM; an exception is a triple fault"
        };
        line(
            "idt",
            format!("base {:#x} limit {:#x}", sregs.idt.base, sregs.idt.limit),
            why_idt,
        );
        if mode.has_exception_stub() {
            line(
                "tr",
                segment(&sregs.tr),
                "this vCPU's 64-bit TSS: RSP0 = IST1, its own stack, which every exception \
                 switches to",
            );
        }
        let why_cr0 = if sregs.cr0 & CR0_PG != 0 {
            "protected mode with paging; WP: CPL 0 honours read-only pages"
        } else {
            "protected mode, no paging"
        };
        line("cr0", bits_named(sregs.cr0, CR0_BITS), why_cr0);
        if sregs.cr0 & CR0_PG != 0 {
            let why_cr3 = if mode == CpuMode::Paged {
                "the 32-bit page directory (4 MiB pages)"
            } else {
                "the PML4 of the identity map"
            };
            line("cr3", format!("{:#x}", sregs.cr3), why_cr3);
        }
        let why_cr4 = match mode {
            CpuMode::Paged => "PSE: 4 MiB pages",
            CpuMode::Long | CpuMode::User => {
                "PAE: required by long mode; OSFXSR, OSXMMEXCPT: SSE allowed"
            }
            _ => "nothing extra",
        };
        line("cr4", bits_named(sregs.cr4, CR4_BITS), why_cr4);
        let why_efer = if mode.is_64bit() {
            "LME: long mode enabled; LMA: active (as the CPU sets it once CR0.PG is on)"
        } else {
            "no long mode"
        };
        line("efer", bits_named(sregs.efer, EFER_BITS), why_efer);
    }
    text.push_str(&format!(
        "  KVM_SET_REGS  rip = {entry:#x}, rsp = {stack:#x}, rflags = 0x2 (IF clear), rsi = vCPU index\n"
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_by_name() {
        for mode in CpuMode::ALL {
            assert_eq!(CpuMode::parse(mode.name()), Ok(mode));
        }
        let error = CpuMode::parse("virtual86").unwrap_err();
        assert_eq!(
            error,
            "unknown CPU mode \"virtual86\"; the modes are real, protected, paged, long, user"
        );
    }

    #[test]
    fn long_mode_registers_name_their_bits() {
        let sregs = entry_sregs(CpuMode::Long, kvm_sregs::default(), 0, 0);
        assert_eq!(sregs.cr0, 0x8001_0033);
        assert_eq!(
            bits_named(sregs.cr0, CR0_BITS),
            "0x80010033 (PE MP ET NE WP PG)"
        );
        assert_eq!(
            bits_named(sregs.cr4, CR4_BITS),
            "0x620 (PAE OSFXSR OSXMMEXCPT)"
        );
        assert_eq!(bits_named(sregs.efer, EFER_BITS), "0x500 (LME LMA)");
        assert_eq!(
            bits_named(1 << 40, EFER_BITS),
            "0x10000000000 (0x10000000000)"
        );
        assert_eq!((sregs.cs.selector, sregs.cs.l, sregs.cs.db), (0x18, 1, 0));
        assert_eq!(
            (sregs.cr3, sregs.idt.base, sregs.idt.limit),
            (0x9_2000, 0x9_0100, 0x1FF)
        );
        assert_eq!((sregs.tr.selector, sregs.tr.base), (0x38, 0x9_0300));
        let second = entry_sregs(CpuMode::Long, kvm_sregs::default(), 0, 1);
        assert_eq!(second.tr.base, 0x9_0368);
    }

    #[test]
    fn user_mode_is_cpl3_and_protected_has_no_paging() {
        let user = entry_sregs(CpuMode::User, kvm_sregs::default(), 0, 0);
        assert_eq!((user.cs.selector, user.cs.dpl, user.ss.dpl), (0x33, 3, 3));
        let protected = entry_sregs(CpuMode::Protected, kvm_sregs::default(), 0, 0);
        assert_eq!(
            (protected.cr0, protected.efer, protected.idt.limit),
            (0x33, 0, 0)
        );
        assert_eq!((protected.cs.selector, protected.cs.db), (0x08, 1));
        let real = entry_sregs(CpuMode::Real, kvm_sregs::default(), 0x100, 0);
        assert_eq!(
            (real.cs.selector, real.cs.base, real.cr0),
            (0x100, 0x1000, 0)
        );
    }

    #[test]
    fn paged_is_refused_on_pvm_only() {
        assert!(CpuMode::Paged.refusal_on(Some("kvm_pvm")).is_some());
        assert_eq!(CpuMode::Paged.refusal_on(Some("kvm_intel")), None);
        assert_eq!(CpuMode::Long.refusal_on(Some("kvm_pvm")), None);
    }

    #[test]
    fn the_system_area_of_user_mode_holds_gates_to_the_stub() {
        let area = system_area(CpuMode::User, 1 << 20).unwrap();
        // Gate 14 (#PF) points at STUB + 14 * 16 through CS 0x18, DPL 0, present.
        let gate = area.u64_at(layout::IDT + 14 * 16);
        assert_eq!(gate & 0xFFFF, (layout::STUB + 14 * 16) & 0xFFFF);
        assert_eq!(gate >> 16 & 0xFFFF, 0x18);
        assert_eq!(gate >> 32 & 0xFF, 1, "IST1");
        assert_eq!(gate >> 40 & 0xFF, 0x8E);
        assert_eq!(area.u64_at(layout::IDT + 3 * 16) >> 40 & 0xFF, 0xEE);
        assert!(system_area(CpuMode::Real, 1 << 20).is_none());
    }

    #[test]
    fn explain_names_the_mode_and_the_fields() {
        let sregs = entry_sregs(CpuMode::User, kvm_sregs::default(), 0, 0);
        let text = explain(CpuMode::User, &sregs, 0x1000, 0x10_0000);
        assert!(
            text.starts_with("mode user: 64-bit long mode at CPL 3"),
            "{text}"
        );
        for expected in [
            "cs",
            "cr0",
            "0x500 (LME LMA)",
            "tr",
            "rip = 0x1000, rsp = 0x100000",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
    }
}
