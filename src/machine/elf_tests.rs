//! Unit tests of the ELF reader, on files built here byte by byte.

use super::*;

/// One program header: type, offset, paddr, filesz, memsz.
type Phdr = (u32, u64, u64, u64, u64);

/// Where [`elf`] puts the body: after room for the headers.
const BODY: u64 = 0x200;

/// An ELF file of `class` with `phdrs`, entry 0x1000, and `body` bytes from offset [`BODY`].
fn elf(class: ElfClass, phdrs: &[Phdr], body: &[u8]) -> Vec<u8> {
    let (layout, machine, class_byte) = match class {
        ElfClass::Elf32 => (&LAYOUT32, EM_386, 1),
        ElfClass::Elf64 => (&LAYOUT64, EM_X86_64, 2),
    };
    let mut file = vec![0u8; BODY as usize];
    let put = |file: &mut Vec<u8>, at: u64, width: u64, value: u64| {
        let at = at as usize;
        file[at..at + width as usize].copy_from_slice(&value.to_le_bytes()[..width as usize]);
    };
    file[..4].copy_from_slice(&MAGIC);
    file[4] = class_byte;
    file[5] = 1;
    file[6] = 1;
    put(&mut file, 0x10, 2, u64::from(ET_EXEC));
    put(&mut file, 0x12, 2, u64::from(machine));
    put(&mut file, layout.entry, layout.word, 0x1000);
    put(&mut file, layout.phoff, layout.word, layout.header_len);
    put(&mut file, layout.phentsize, 2, layout.ph_len);
    put(&mut file, layout.phnum, 2, phdrs.len() as u64);
    for (i, &(kind, offset, paddr, filesz, memsz)) in phdrs.iter().enumerate() {
        let at = layout.header_len + i as u64 * layout.ph_len;
        put(&mut file, at, 4, u64::from(kind));
        put(&mut file, at + layout.p_offset, layout.word, offset);
        put(&mut file, at + layout.p_paddr, layout.word, paddr);
        put(&mut file, at + layout.p_filesz, layout.word, filesz);
        put(&mut file, at + layout.p_memsz, layout.word, memsz);
    }
    file.extend_from_slice(body);
    file
}

#[test]
fn both_classes_parse_their_load_segments() {
    for class in [ElfClass::Elf32, ElfClass::Elf64] {
        let phdrs = [
            (PT_LOAD, BODY, 0x2000, 4, 0x20),
            (4, 0, 0, 0, 0), // PT_NOTE: skipped
            (PT_LOAD, BODY, 0x1000, 2, 2),
            (PT_LOAD, 0, 0x5000, 0, 0), // empty: skipped
        ];
        let parsed = Elf::parse(&elf(class, &phdrs, &[1, 2, 3, 4])).unwrap();
        assert_eq!((parsed.class, parsed.entry), (class, 0x1000));
        assert_eq!(
            parsed.segments,
            [
                Segment {
                    paddr: 0x1000,
                    mem_size: 2,
                    file: 0x200..0x202
                },
                Segment {
                    paddr: 0x2000,
                    mem_size: 0x20,
                    file: 0x200..0x204
                },
            ]
        );
        assert_eq!(parsed.check_fits(0x10_0000, &[]), Ok(()));
    }
}

#[test]
fn bad_files_name_what_is_wrong() {
    let good = elf(ElfClass::Elf64, &[(PT_LOAD, BODY, 0x1000, 4, 4)], &[0; 4]);
    let with = |at: usize, byte: u8| {
        let mut bytes = good.clone();
        bytes[at] = byte;
        Elf::parse(&bytes).unwrap_err()
    };
    assert_eq!(with(4, 3), ElfProblem::Class(3));
    assert_eq!(with(5, 2), ElfProblem::Endianness(2));
    assert_eq!(with(0x10, 3), ElfProblem::Type(3));
    assert_eq!(
        with(0x12, 40).to_string(),
        "machine 40 is not x86: an ELF64 guest needs e_machine EM_X86_64 (62)"
    );
    assert_eq!(with(0x36, 0x20), ElfProblem::HeaderSize(0x20));
    assert_eq!(
        Elf::parse(&good[..0x30]).unwrap_err().to_string(),
        "truncated: the ELF header needs 64 bytes but the file has 48"
    );
    assert_eq!(
        Elf::parse(&good[..0x202]).unwrap_err(),
        ElfProblem::Truncated {
            what: "segment",
            needed: 0x204,
            len: 0x202
        }
    );
    assert_eq!(
        Elf::parse(&good[..0x50]).unwrap_err(),
        ElfProblem::Truncated {
            what: "program header table",
            needed: 0x78,
            len: 0x50
        }
    );
}

#[test]
fn segments_are_checked_against_each_other_and_ram() {
    let parse = |phdrs: &[Phdr]| Elf::parse(&elf(ElfClass::Elf64, phdrs, &[0; 16]));
    assert_eq!(
        parse(&[(PT_LOAD, BODY, 0x1000, 0x10, 8)]),
        Err(ElfProblem::FileLargerThanMemory { index: 0 })
    );
    assert_eq!(
        parse(&[(PT_LOAD, BODY, u64::MAX - 1, 0, 8)]),
        Err(ElfProblem::Wraps { index: 0 })
    );
    assert_eq!(
        parse(&[
            (PT_LOAD, BODY, 0x1000, 4, 0x100),
            (PT_LOAD, BODY, 0x10F0, 4, 4)
        ])
        .unwrap_err()
        .to_string(),
        "segments overlap: 0x1000..0x1100 and 0x10f0..0x10f4"
    );
    assert_eq!(parse(&[]), Err(ElfProblem::NothingToLoad));
    // A huge p_offset must be a truncation, not an overflow.
    assert!(matches!(
        parse(&[(PT_LOAD, u64::MAX, 0x1000, 4, 4)]),
        Err(ElfProblem::Truncated { .. })
    ));
    let elf = parse(&[(PT_LOAD, BODY, 0xF_FFF0, 4, 0x20)]).unwrap();
    assert_eq!(
        elf.check_fits(0x10_0000, &[]).unwrap_err().to_string(),
        "segment 0xffff0..0x100010 is outside guest RAM [0, 0x100000); raise --mem or link it \
         lower"
    );
    let reserved = [(0x10_0000..0x10_8000, "system area")];
    assert_eq!(
        elf.check_fits(0x20_0000, &reserved)
            .unwrap_err()
            .to_string(),
        "segment 0xffff0..0x100010 overlaps 0x100000..0x108000, which rawkvm reserves for the \
         system area; link it elsewhere"
    );
}
