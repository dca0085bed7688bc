//! The hot path allocates nothing: 10,000 exits of `pio_loop` under a counting allocator.
//!
//! This is its own test binary because the counting allocator is global to the process. A
//! `GlobalAlloc` can only be written with `unsafe`, hence the one allowance outside `src/sys`.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use common::kvm_or_skip;
use rawkvm::coalesced;
use rawkvm::devices::Devices;
use rawkvm::guests;
use rawkvm::image::Image;
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::ExitCounter;

/// Counts allocations made while `COUNTING` is set.
struct CountingAllocator;

thread_local! {
    /// Whether this thread's allocations count: only the test's own, not those of the test
    /// harness printing another test's result meanwhile.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
/// One test at a time: the counter is global to the process, and the tests of one binary run
/// in parallel threads.
static ALONE: Mutex<()> = Mutex::new(());
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the counter has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc` is passed on unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

#[test]
fn ten_thousand_exits_allocate_nothing() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(kvm) = kvm_or_skip("ten_thousand_exits_allocate_nothing") else {
        return;
    };
    let guest = guests::find("pio_loop").unwrap();
    let config = MachineConfig {
        param: Some(10_000),
        ..MachineConfig::default()
    };
    let mut machine =
        Machine::new(&kvm, &config, &Image::embedded(guest.name, guest.image)).unwrap();
    let mut devices = Devices::new(std::io::sink());
    let mut counter = ExitCounter::default();

    COUNTING.with(|counting| counting.set(true));
    let result = machine.run(&mut devices, &mut counter);
    COUNTING.with(|counting| counting.set(false));

    result.unwrap();
    assert_eq!(counter.exits, 10_001, "10,000 OUT exits and the HLT");
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "heap allocations during the run"
    );
}

#[test]
fn draining_the_coalesced_ring_allocates_nothing() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(kvm) = kvm_or_skip("draining_the_coalesced_ring_allocates_nothing") else {
        return;
    };
    let guest = guests::find("console_burst").unwrap();
    let config = MachineConfig {
        param: Some(10_000),
        ..MachineConfig::default()
    };
    let mut machine =
        Machine::new(&kvm, &config, &Image::embedded(guest.name, guest.image)).unwrap();
    let mut devices = Devices::new(std::io::sink());
    let support = coalesced::Support::of(machine.vm());
    let registered = coalesced::register_declared(machine.vm(), &devices, support).unwrap();
    if registered.coalesced.is_empty() {
        println!("SKIPPED: no coalesced I/O on this kernel (draining_the_coalesced_ring)");
        return;
    }
    let mut counter = ExitCounter::default();

    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|counting| counting.set(true));
    let result = machine.run(&mut devices, &mut counter);
    COUNTING.with(|counting| counting.set(false));

    result.unwrap();
    assert_eq!(devices.console.bytes_written(), 10_000);
    assert!(counter.exits < 100, "{} exits: coalesced", counter.exits);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "heap allocations");
}
