//! The packet answers, against a fake target: 64 KiB of RAM and a register file.

use super::*;
use crate::debug::gdb::target_xml::{I386, X86_64};
use crate::debug::registers::{CpuMode, RegisterFile};

struct Fake {
    file: RegisterFile,
    ram: Vec<u8>,
}

impl Fake {
    fn new() -> Fake {
        let mut gp = [0; 16];
        gp[0] = 0x1122_3344; // rax
        gp[7] = 0xF00; // rsp
        Fake {
            file: RegisterFile {
                gp,
                rip: 0x1000,
                rflags: 0x2,
                segments: [0; 6],
                cs_base: 0,
                mode: CpuMode::Real,
            },
            ram: (0..=255).cycle().take(0x10000).collect(),
        }
    }
}

impl Target for Fake {
    fn registers(&mut self) -> Result<RegisterFile, String> {
        Ok(self.file)
    }
    fn set_registers(&mut self, file: &RegisterFile, _: &RegisterFile) -> Result<(), String> {
        self.file = *file;
        Ok(())
    }
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        let start = addr as usize;
        match self.ram.get(start..start + buf.len()) {
            Some(bytes) => {
                buf.copy_from_slice(bytes);
                true
            }
            None => false,
        }
    }
    fn write_memory(&mut self, addr: u64, data: &[u8]) -> bool {
        let start = addr as usize;
        match self.ram.get_mut(start..start + data.len()) {
            Some(bytes) => {
                bytes.copy_from_slice(data);
                true
            }
            None => false,
        }
    }
}

fn answer(stub: &mut Stub, fake: &mut Fake, packet: &str) -> String {
    match stub.handle(packet.as_bytes(), fake) {
        Action::Reply(reply) => String::from_utf8(reply).unwrap(),
        other => format!("{other:?}"),
    }
}

#[test]
fn registers_are_sent_in_the_layouts_order_little_endian() {
    let (mut stub, mut fake) = (Stub::new(&I386), Fake::new());
    let g = answer(&mut stub, &mut fake, "g");
    // eax, ecx, edx, ebx, esp ... eip at index 8, eflags, cs..gs, then 16 x87 unavailable.
    assert!(
        g.starts_with("44332211000000000000000000000000000f0000"),
        "{g}"
    );
    assert_eq!(&g[64..72], "00100000", "eip");
    assert_eq!(&g[72..80], "02000000", "eflags");
    assert_eq!(g.len(), 2 * (16 * 4 + 8 * 10 + 8 * 4));
    assert!(g.ends_with(&"x".repeat(64)));
    assert_eq!(answer(&mut stub, &mut fake, "p8"), "00100000");
    assert_eq!(answer(&mut stub, &mut fake, "P8=03100000"), "OK");
    assert_eq!(fake.file.rip, 0x1003);
    assert_eq!(answer(&mut stub, &mut fake, "P0=78563412"), "OK");
    assert_eq!(fake.file.gp[0], 0x1234_5678);
    assert_eq!(answer(&mut stub, &mut fake, "p63"), "E16");
    assert_eq!(stub.notes, ["no register 63 in the i386 layout"]);
    // G writes every register back (the x87 'x' digits are skipped).
    let g = answer(&mut stub, &mut fake, "g").replacen("78563412", "01000000", 1);
    assert_eq!(answer(&mut stub, &mut fake, &format!("G{g}")), "OK");
    assert_eq!(fake.file.gp[0], 1);
    let long = answer(&mut Stub::new(&X86_64), &mut fake, "g");
    assert_eq!(&long[..16], "0100000000000000");
}

#[test]
fn memory_is_read_and_written_within_ram_only() {
    let (mut stub, mut fake) = (Stub::new(&I386), Fake::new());
    assert_eq!(answer(&mut stub, &mut fake, "m1000,4"), "00010203");
    assert_eq!(answer(&mut stub, &mut fake, "M1000,2:abcd"), "OK");
    assert_eq!(answer(&mut stub, &mut fake, "m1000,4"), "abcd0203");
    assert_eq!(answer(&mut stub, &mut fake, "mffff,2"), "E0e");
    assert_eq!(
        answer(&mut stub, &mut fake, "M1000,2:ab"),
        "E16",
        "length mismatch"
    );
    assert!(
        stub.notes[0].contains("cannot read 2 bytes at 0xffff"),
        "{:?}",
        stub.notes
    );
}

#[test]
fn breakpoints_take_the_four_debug_registers_and_watchpoints_are_refused() {
    let (mut stub, mut fake) = (Stub::new(&I386), Fake::new());
    for addr in ["1000", "1003", "1005"] {
        assert_eq!(answer(&mut stub, &mut fake, &format!("Z1,{addr},1")), "OK");
    }
    assert_eq!(answer(&mut stub, &mut fake, "Z0,1007,1"), "OK");
    assert_eq!(
        stub.breakpoints.debugreg(),
        [0x1000, 0x1003, 0x1005, 0x1007, 0, 0, 0, 0x55]
    );
    assert_eq!(answer(&mut stub, &mut fake, "Z0,1009,1"), "E1c");
    assert!(stub.notes[0].contains("kvm_pvm does not intercept int3"));
    assert_eq!(answer(&mut stub, &mut fake, "z1,1003,1"), "OK");
    assert_eq!(
        answer(&mut stub, &mut fake, "Z1,1009,1"),
        "OK",
        "a slot is free again"
    );
    assert_eq!(stub.breakpoints.debugreg()[1], 0x1009);
    assert_eq!(answer(&mut stub, &mut fake, "Z2,2000,4"), "E16");
    assert!(stub.notes[1].contains("watchpoints never fire"));
    // With error-message+ the text goes to gdb itself.
    answer(
        &mut stub,
        &mut fake,
        "qSupported:multiprocess+;error-message+",
    );
    let reply = answer(&mut stub, &mut fake, "Z3,2000,4");
    assert!(reply.starts_with("E.no watchpoint at 0x2000"), "{reply}");
}

#[test]
fn resuming_and_ending_are_handed_to_the_session() {
    let (mut stub, mut fake) = (Stub::new(&I386), Fake::new());
    let action = |stub: &mut Stub, fake: &mut Fake, p: &str| stub.handle(p.as_bytes(), fake);
    assert_eq!(
        action(&mut stub, &mut fake, "c"),
        Action::Resume(Resume::Continue)
    );
    assert_eq!(
        action(&mut stub, &mut fake, "s"),
        Action::Resume(Resume::Step)
    );
    assert_eq!(
        action(&mut stub, &mut fake, "vCont;s:1;c"),
        Action::Resume(Resume::Step)
    );
    assert_eq!(
        action(&mut stub, &mut fake, "vCont;c"),
        Action::Resume(Resume::Continue)
    );
    assert_eq!(
        action(&mut stub, &mut fake, "c1005"),
        Action::Resume(Resume::Continue)
    );
    assert_eq!(fake.file.rip, 0x1005);
    assert_eq!(action(&mut stub, &mut fake, "k"), Action::Kill);
    assert_eq!(action(&mut stub, &mut fake, "D;1"), Action::Detach);
    assert_eq!(answer(&mut stub, &mut fake, "vCont?"), "vCont;c;C;s;S");
    assert_eq!(answer(&mut stub, &mut fake, "?"), "T05thread:01;");
    assert_eq!(answer(&mut stub, &mut fake, "qAttached"), "0");
    assert_eq!(answer(&mut stub, &mut fake, "vMustReplyEmpty"), "");
    assert_eq!(answer(&mut stub, &mut fake, "qTStatus"), "");
    assert_eq!(StopReason::Exited(0).reply(), b"W00");
    assert_eq!(StopReason::Breakpoint.reply(), b"T05hwbreak:;thread:01;");
}

#[test]
fn the_target_description_is_served_in_chunks() {
    let (mut stub, mut fake) = (Stub::new(&I386), Fake::new());
    let supported = answer(&mut stub, &mut fake, "qSupported:xmlRegisters=i386");
    assert!(supported.contains("qXfer:features:read+"), "{supported}");
    assert!(supported.contains("PacketSize=1000"));
    let xml = I386.xml();
    let first = answer(&mut stub, &mut fake, "qXfer:features:read:target.xml:0,10");
    assert_eq!(first, format!("m{}", &xml[..16]));
    let all = answer(&mut stub, &mut fake, "qXfer:features:read:target.xml:0,ffb");
    assert_eq!(all, format!("l{xml}"));
    assert_eq!(
        answer(&mut stub, &mut fake, "qXfer:features:read:other.xml:0,10"),
        "E16"
    );
    assert_eq!(answer(&mut stub, &mut fake, "QStartNoAckMode"), "OK");
    assert!(stub.no_ack);
}
