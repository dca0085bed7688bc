//! The hot path allocates nothing: 10,000 exits of `pio_loop` under a counting allocator.
//!
//! This is its own test binary because the counting allocator is global to the process. A
//! `GlobalAlloc` can only be written with `unsafe`, hence the one allowance outside `src/sys`.
// The embedded guests are x86 real-mode code: other architectures have none to run yet.
#![cfg(target_arch = "x86_64")]
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

// SAFETY: forwards every call unchanged to the system allocator, so each caller's `GlobalAlloc`
// contract is kept; the counter has no effect on the memory handed out.
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

/// `guest` with `param` at 0x0F00, or `None` after a SKIPPED line without /dev/kvm.
fn machine(test: &str, guest: &str, param: u32) -> Option<Machine> {
    let kvm = kvm_or_skip(test)?;
    let guest = guests::find(guest).unwrap();
    let config = MachineConfig {
        param: Some(param),
        ..MachineConfig::default()
    };
    Some(Machine::new(&kvm, &config, &Image::embedded(guest.name, guest.image)).unwrap())
}

/// Runs the machine to its HLT with this thread's allocations counted: (exits, allocations).
fn counted_run(machine: &mut Machine, devices: &mut Devices<std::io::Sink>) -> (u64, u64) {
    let mut counter = ExitCounter::default();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|counting| counting.set(true));
    let result = machine.run(devices, &mut counter);
    COUNTING.with(|counting| counting.set(false));
    result.unwrap();
    (counter.exits, ALLOCATIONS.load(Ordering::SeqCst))
}

#[test]
fn ten_thousand_exits_allocate_nothing() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let Some(mut machine) = machine("ten_thousand_exits_allocate_nothing", "pio_loop", 10_000)
    else {
        return;
    };
    let (exits, allocations) = counted_run(&mut machine, &mut Devices::new(std::io::sink()));
    assert_eq!(exits, 10_001, "10,000 OUT exits and the HLT");
    assert_eq!(allocations, 0, "heap allocations during the run");
}

#[test]
fn draining_the_coalesced_ring_allocates_nothing() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let test = "draining_the_coalesced_ring_allocates_nothing";
    let Some(mut machine) = machine(test, "console_burst", 10_000) else {
        return;
    };
    let mut devices = Devices::new(std::io::sink());
    let support = coalesced::Support::of(machine.vm());
    let registered = coalesced::register_declared(machine.vm(), &devices, support).unwrap();
    if registered.coalesced.is_empty() {
        common::skip(format_args!("no coalesced I/O on this kernel ({test})"));
        return;
    }
    let (exits, allocations) = counted_run(&mut machine, &mut devices);
    assert_eq!(devices.console.bytes_written(), 10_000);
    assert!(exits < 100, "{exits} exits: coalesced");
    assert_eq!(allocations, 0, "heap allocations during the run");
}
