//! The guests built into rawkvm: real-mode ones, and (in subfolders) protected, long, user
//! and C ones that name their CPU mode in their setup (`mode=long`).
//!
//! `build.rs` assembles every `asm-guests/**/*.S` into an image and generates the table
//! [`EMBEDDED`] from the header comment of each source. `asm-guests/README.md` gives the
//! conventions the VMM guarantees to every guest (memory, entry state, ports, setup keys) and
//! the header format.
//!
//! This module holds no `unsafe` code.

use std::fmt;

/// One embedded guest: a flat image and what its header comment says about it.
#[derive(Clone, Copy)]
pub struct Guest {
    /// Name, the file stem of its source (`hello` for `asm-guests/hello.S`).
    pub name: &'static str,
    /// One line that says what the guest does.
    pub description: &'static str,
    /// The exits a run produces, in order, one item per line, as in the header comment.
    pub exits: &'static str,
    /// Space-separated `key=value` (or bare `key`) items the VMM applies before the run, or
    /// `""`. Keys: `mem=SIZE`, `readonly=GPA+SIZE:BYTE`, `param=N`, `user-msr`, `vcpus=N`,
    /// `irq=VECTOR`, `mode=protected|long|user` (meanings in `asm-guests/README.md`).
    pub setup: &'static str,
    /// The image: a flat binary loaded at GPA `0x1000` and entered there (at `CS:IP =
    /// 0000:1000` in real mode), or (`asm-guests/c/`) an ELF executable.
    pub image: &'static [u8],
}

impl Guest {
    /// The setup items, split: `"mem=64K user-msr"` gives `("mem", Some("64K"))` and
    /// `("user-msr", None)`.
    #[must_use = "the iterator does nothing unless consumed"]
    pub fn setup_items(&self) -> impl Iterator<Item = (&'static str, Option<&'static str>)> {
        self.setup
            .split_whitespace()
            .map(|item| match item.split_once('=') {
                Some((key, value)) => (key, Some(value)),
                None => (item, None),
            })
    }
}

impl Guest {
    /// The CPU mode it runs in: its `mode=` setup item, or `real`.
    pub fn mode(&self) -> &'static str {
        self.setup_items()
            .find_map(|(key, value)| (key == "mode").then_some(value).flatten())
            .unwrap_or("real")
    }
}

impl fmt::Debug for Guest {
    /// Shows the image's length, not its bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guest")
            .field("name", &self.name)
            .field("description", &self.description)
            .field("exits", &self.exits)
            .field("setup", &self.setup)
            .field("image_len", &self.image.len())
            .finish()
    }
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// Every embedded guest, sorted by name.
#[must_use]
pub fn all() -> &'static [Guest] {
    EMBEDDED
}

/// The embedded guest called `name`, if there is one.
#[must_use]
pub fn find(name: &str) -> Option<&'static Guest> {
    EMBEDDED
        .binary_search_by(|guest| guest.name.cmp(name))
        .ok()
        .map(|index| &EMBEDDED[index])
}

// The guests are embedded for x86-64 targets only (see build.rs).
#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_sorted() {
        let names: Vec<&str> = all().iter().map(|guest| guest.name).collect();
        assert!(!names.is_empty());
        assert!(
            names.windows(2).all(|pair| pair[0] < pair[1]),
            "not sorted or not unique: {names:?}"
        );
    }

    #[test]
    fn every_guest_is_complete() {
        for guest in all() {
            assert!(!guest.image.is_empty(), "{}: empty image", guest.name);
            assert!(
                guest.image.len() <= 0xF000,
                "{}: image too large",
                guest.name
            );
            assert!(
                !guest.description.is_empty(),
                "{}: no description",
                guest.name
            );
            assert!(!guest.exits.is_empty(), "{}: no exits", guest.name);
        }
    }

    #[test]
    fn find_hello() {
        let hello = find("hello").expect("hello is embedded");
        assert_eq!(hello.name, "hello");
        assert_eq!(hello.setup, "");
        assert!(hello.exits.ends_with("HLT"));
        assert!(find("no_such_guest").is_none());
        for guest in all() {
            assert_eq!(find(guest.name).map(|found| found.name), Some(guest.name));
        }
    }

    #[test]
    fn hlt_is_cli_hlt() {
        // `cli; hlt; jmp back to cli` (see HALT in asm-guests/common.inc).
        assert_eq!(find("hlt").unwrap().image, &[0xFA, 0xF4, 0xEB, 0xFC]);
    }

    #[test]
    fn setup_items_split() {
        let readonly = find("readonly").unwrap();
        let items: Vec<_> = readonly.setup_items().collect();
        assert_eq!(
            items,
            [
                ("mem", Some("64K")),
                ("readonly", Some("0x20000+0x1000:0xa5"))
            ]
        );
        let msr = find("msr").unwrap();
        assert_eq!(msr.setup_items().collect::<Vec<_>>(), [("user-msr", None)]);
        assert_eq!(msr.mode(), "real");
        assert_eq!(find("user_hello").unwrap().mode(), "user");
        assert_eq!(find("long_hello").unwrap().mode(), "long");
    }

    #[test]
    fn the_c_guest_is_an_elf64_executable_and_the_others_flat() {
        use crate::machine::elf::{Elf, ElfClass, is_elf};
        let c_hello = find("c_hello").unwrap();
        let elf = Elf::parse(c_hello.image).expect("c_hello parses");
        assert_eq!((elf.class, elf.entry), (ElfClass::Elf64, 0x1000));
        // Code at 0x1000, then data with its .bss (memory larger than the file's bytes).
        assert_eq!(elf.segments[0].paddr, 0x1000);
        let data = &elf.segments[1];
        assert!(data.mem_size > data.file.len() as u64, "{data:?}");
        let flat: Vec<&str> = all()
            .iter()
            .filter(|guest| !is_elf(guest.image))
            .map(|guest| guest.name)
            .collect();
        assert_eq!(flat.len(), all().len() - 1, "only c_hello is an ELF");
    }
}
