//! The target description gdb reads with `qXfer:features:read:target.xml`: which registers
//! exist, their sizes and their order in the `g` packet. One table per layout; the XML and
//! the register packets are both made from it, so they cannot disagree.
//!
//! Real and protected mode are shown as `i386` (32-bit registers, the segment selectors as
//! `cs`..`gs`); long mode as `i386:x86-64`. The x87 registers gdb's i386 core feature
//! requires are listed and read as unavailable (`xx...`): rawkvm does not fetch the FPU.

use crate::debug::registers::{CpuMode, GP_NAMES, Register, SEGMENT_NAMES};

/// Where a register of the description gets its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A register of the [`crate::debug::registers::RegisterFile`].
    File(Register),
    /// A register rawkvm does not read (x87): `bits / 8` bytes of `xx`.
    Unavailable,
}

/// One register of a layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegisterDesc {
    /// gdb's name.
    pub name: &'static str,
    /// Size in bits.
    pub bits: u32,
    /// gdb's type name.
    pub kind: &'static str,
    /// Where its value comes from.
    pub source: Source,
}

/// A register layout: an architecture and its registers in `g` packet order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `<architecture>`.
    pub architecture: &'static str,
    /// The registers.
    pub registers: &'static [RegisterDesc],
}

const fn reg(name: &'static str, bits: u32, kind: &'static str, r: Register) -> RegisterDesc {
    RegisterDesc {
        name,
        bits,
        kind,
        source: Source::File(r),
    }
}

/// The 24 x87 registers gdb's i386 core feature requires after the segment registers.
const X87: [(&str, u32, &str); 16] = [
    ("st0", 80, "i387_ext"),
    ("st1", 80, "i387_ext"),
    ("st2", 80, "i387_ext"),
    ("st3", 80, "i387_ext"),
    ("st4", 80, "i387_ext"),
    ("st5", 80, "i387_ext"),
    ("st6", 80, "i387_ext"),
    ("st7", 80, "i387_ext"),
    ("fctrl", 32, "int"),
    ("fstat", 32, "int"),
    ("ftag", 32, "int"),
    ("fiseg", 32, "int"),
    ("fioff", 32, "int"),
    ("foseg", 32, "int"),
    ("fooff", 32, "int"),
    ("fop", 32, "int"),
];

/// The general registers of i386 in gdb's order, as indices into [`GP_NAMES`] (rax, rcx,
/// rdx, rbx, rsp, rbp, rsi, rdi: the instruction encoding's order).
const I386_GP: [(&str, usize); 8] = [
    ("eax", 0),
    ("ecx", 2),
    ("edx", 3),
    ("ebx", 1),
    ("esp", 7),
    ("ebp", 6),
    ("esi", 4),
    ("edi", 5),
];

/// Builds a layout table: `gp`, then the instruction pointer, eflags, the six segment
/// selectors and the x87 registers.
const fn layout<const N: usize>(
    gp: [(&'static str, usize); N],
    gp_bits: u32,
    ip: &'static str,
) -> [RegisterDesc; 40] {
    let placeholder = reg("", 0, "", Register::Rip);
    let mut table = [placeholder; 40];
    let mut i = 0;
    while i < N {
        let kind = if gp_bits == 64 { "int64" } else { "int32" };
        table[i] = reg(gp[i].0, gp_bits, kind, Register::Gp(gp[i].1));
        i += 1;
    }
    table[N] = reg(ip, gp_bits, "code_ptr", Register::Rip);
    table[N + 1] = reg("eflags", 32, "i386_eflags", Register::Rflags);
    let mut s = 0;
    while s < SEGMENT_NAMES.len() {
        table[N + 2 + s] = reg(SEGMENT_NAMES[s], 32, "int32", Register::Segment(s));
        s += 1;
    }
    let mut x = 0;
    while x < X87.len() {
        table[N + 8 + x] = RegisterDesc {
            name: X87[x].0,
            bits: X87[x].1,
            kind: X87[x].2,
            source: Source::Unavailable,
        };
        x += 1;
    }
    table
}

const fn x86_64_gp() -> [(&'static str, usize); 16] {
    let mut gp = [("", 0); 16];
    let mut i = 0;
    while i < 16 {
        gp[i] = (GP_NAMES[i], i);
        i += 1;
    }
    gp
}

static I386_TABLE: [RegisterDesc; 40] = layout(I386_GP, 32, "eip");
/// The i386 table is 8 + 2 + 6 + 16 = 32 registers long; the rest of the array is unused.
const I386_LEN: usize = 32;
static X86_64_TABLE: [RegisterDesc; 40] = layout(x86_64_gp(), 64, "rip");

/// Real and protected mode: 32-bit registers with the segment selectors.
pub static I386: Layout = Layout {
    architecture: "i386",
    registers: I386_TABLE.split_at(I386_LEN).0,
};

/// Long mode.
pub static X86_64: Layout = Layout {
    architecture: "i386:x86-64",
    registers: &X86_64_TABLE,
};

/// The eflags bits gdb names in `info registers`.
const EFLAGS: [(&str, u32); 10] = [
    ("CF", 0),
    ("PF", 2),
    ("AF", 4),
    ("ZF", 6),
    ("SF", 7),
    ("TF", 8),
    ("IF", 9),
    ("DF", 10),
    ("OF", 11),
    ("RF", 16),
];

impl Layout {
    /// The layout gdb is shown for a vCPU in `mode`.
    pub fn for_mode(mode: CpuMode) -> &'static Layout {
        match mode {
            CpuMode::Real | CpuMode::Protected => &I386,
            CpuMode::Long => &X86_64,
        }
    }

    /// The target description XML.
    pub fn xml(&self) -> String {
        let mut xml = String::from(
            "<?xml version=\"1.0\"?>\n<!DOCTYPE target SYSTEM \"gdb-target.dtd\">\n<target>\n",
        );
        xml += &format!("  <architecture>{}</architecture>\n", self.architecture);
        xml += "  <feature name=\"org.gnu.gdb.i386.core\">\n";
        xml += "    <flags id=\"i386_eflags\" size=\"4\">\n";
        for (name, bit) in EFLAGS {
            xml += &format!("      <field name=\"{name}\" start=\"{bit}\" end=\"{bit}\"/>\n");
        }
        xml += "    </flags>\n";
        for register in self.registers {
            xml += &format!(
                "    <reg name=\"{}\" bitsize=\"{}\" type=\"{}\"/>\n",
                register.name, register.bits, register.kind
            );
        }
        xml += "  </feature>\n</target>\n";
        xml
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layouts_have_gdbs_core_registers_in_order() {
        let names = |layout: &Layout| layout.registers.iter().map(|r| r.name).collect::<Vec<_>>();
        let i386 = names(&I386);
        assert_eq!(i386.len(), 32);
        assert_eq!(
            i386[..16],
            [
                "eax", "ecx", "edx", "ebx", "esp", "ebp", "esi", "edi", "eip", "eflags", "cs",
                "ss", "ds", "es", "fs", "gs"
            ]
        );
        assert_eq!(i386[31], "fop");
        let x86_64 = names(&X86_64);
        assert_eq!(x86_64.len(), 40);
        assert_eq!(x86_64[..3], ["rax", "rbx", "rcx"]);
        assert_eq!(x86_64[16..18], ["rip", "eflags"]);
        assert_eq!(
            I386.registers[4].source,
            Source::File(Register::Gp(7)),
            "esp"
        );
    }

    #[test]
    fn the_xml_names_the_architecture_and_every_register() {
        let xml = I386.xml();
        assert!(xml.contains("<architecture>i386</architecture>"), "{xml}");
        assert!(xml.contains("<reg name=\"eip\" bitsize=\"32\" type=\"code_ptr\"/>"));
        assert_eq!(xml.matches("<reg ").count(), 32);
        assert!(
            X86_64
                .xml()
                .contains("<architecture>i386:x86-64</architecture>")
        );
        // Nothing in it needs escaping in a packet.
        assert!(!xml.contains(['$', '#', '}', '*']));
    }
}
