//! A guest with RAM in use, for the snapshot tests: the `hlt` guest in 64 MiB with the even
//! 64 KiB clusters of 16 pages filled from cluster 2 (page 32) on, as `rawkvm bench snapshot
//! --fill 50` fills it, every word non-zero and different.

use rawkvm::Kvm;
use rawkvm::machine::Machine;

/// The x86 page.
pub const PAGE: u64 = 4096;
/// The guest's RAM.
pub const MEM: u64 = 64 << 20;
/// 64-bit words in a page.
pub const WORDS_PER_PAGE: u64 = PAGE / 8;

/// The word filled in at word index `index` of guest memory (odd, so never zero).
pub fn word(index: u64) -> u64 {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

/// The filled pages as runs: (first page, pages).
pub fn filled_runs() -> Vec<(u64, u64)> {
    (2..MEM / PAGE / 16)
        .step_by(2)
        .map(|cluster| (cluster * 16, 16))
        .collect()
}

/// The words of `pages` pages from `first`.
pub fn words(first: u64, pages: u64) -> Vec<u64> {
    (first * WORDS_PER_PAGE..(first + pages) * WORDS_PER_PAGE)
        .map(word)
        .collect()
}

/// The `hlt` guest in [`MEM`] of RAM with [`filled_runs`] written in.
pub fn filled_machine(kvm: &Kvm) -> Machine {
    let machine = super::guest_machine(kvm, "hlt", |config| config.mem_size = MEM).unwrap();
    for (first, pages) in filled_runs() {
        machine
            .vm()
            .memory()
            .write_words(first * PAGE, &words(first, pages))
            .unwrap();
    }
    machine
}

/// All of a machine's RAM as 64-bit words, read through the host.
pub fn ram(machine: &Machine) -> Vec<u64> {
    let mut words = vec![0; (MEM / 8) as usize];
    machine.vm().memory().read_words(0, &mut words).unwrap();
    words
}
