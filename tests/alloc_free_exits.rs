//! The hot path allocates nothing: 10,000 exits of `pio_loop` under a counting allocator, on
//! the plain loop and on the path `rawkvm run` takes (`Machine::run_all`, a `Mutex<TraceObserver>`
//! with the flight recorder, `Mutex<Devices>`); and `--stats` stops allocating once its
//! per-address tables are full, whatever the guest does.
//!
//! This is its own test binary because the counting allocator is global to the process. A
//! `GlobalAlloc` can only be written with `unsafe`, hence the one allowance outside `src/sys`.
// The embedded guests are x86 real-mode code: other architectures have none to run yet.
#![cfg(target_arch = "x86_64")]
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use common::kvm_or_skip;
use rawkvm::devices::Devices;
use rawkvm::devices::bus::Claim;
use rawkvm::devices::coalesced;
use rawkvm::exit::{Exit, Mmio};
use rawkvm::machine::Machine;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::run_loop::ExitCounter;
use rawkvm::trace::stats::DISTINCT;
use rawkvm::trace::{Stats, TraceObserver, WatchOptions};

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
/// Whether allocations on the threads `Machine::run_all` spawns (named `vcpu<id>`) count.
static COUNTING_VCPU_THREADS: AtomicBool = AtomicBool::new(false);

/// Whether an allocation made now counts: one of the test's own, or one on a vCPU thread
/// while those count.
fn counts() -> bool {
    COUNTING.with(Cell::get)
        || (COUNTING_VCPU_THREADS.load(Ordering::Relaxed) && on_a_vcpu_thread())
}

/// Whether the calling thread is named `vcpu...`. Asks the kernel (`PR_GET_NAME`), which
/// allocates nothing: asking std for the current thread could allocate inside the allocator.
fn on_a_vcpu_thread() -> bool {
    let mut name = [0u8; 16];
    // SAFETY: the kernel's `PR_GET_NAME` writes the thread's name, at most 16 bytes (its
    // TASK_COMM_LEN) with the terminating NUL, into the buffer it is given; `name` is a live,
    // exclusive 16-byte buffer.
    let got = unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    got == 0 && name.starts_with(b"vcpu")
}

// SAFETY: forwards every call unchanged to the system allocator, so each caller's `GlobalAlloc`
// contract is kept; the counter has no effect on the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if counts() {
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
        if counts() {
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
    Some(common::machine_with_param(&kvm, guest, param))
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
    // Every 170th write finds the ring full and exits (tests/coalesced.rs), then the HLT.
    assert_eq!(exits, 10_000 / 170 + 1, "coalesced");
    assert_eq!(allocations, 0, "heap allocations during the run");
}

/// Allocations on the vCPU threads while `run`, minus what std itself allocates to start a
/// thread named like them (its stack-overflow handler keeps a copy of the name): what the run
/// allocated, from the thread's first line of rawkvm code to its last.
fn vcpu_thread_allocations<T>(run: impl FnOnce() -> T) -> (T, u64) {
    let count = |run: &mut dyn FnMut()| {
        ALLOCATIONS.store(0, Ordering::SeqCst);
        COUNTING_VCPU_THREADS.store(true, Ordering::SeqCst);
        run();
        COUNTING_VCPU_THREADS.store(false, Ordering::SeqCst);
        ALLOCATIONS.load(Ordering::SeqCst)
    };
    let mut empty = || {
        std::thread::Builder::new()
            .name("vcpu0".to_string())
            .spawn(|| ())
            .unwrap()
            .join()
            .unwrap();
    };
    let std_start = count(&mut empty);
    let mut run = Some(run);
    let mut result = None;
    let counted = count(&mut || result = run.take().map(|run| run()));
    (result.unwrap(), counted.saturating_sub(std_start))
}

/// What `rawkvm run` does: every vCPU on a thread of `Machine::run_all`, watched through a
/// `Mutex<TraceObserver>` with the flight recorder on and no trace, the devices behind a `Mutex`.
/// Everything the vCPU thread allocates counts, from its start to its end, except std's own
/// thread start-up; what `run_all` does on the calling thread to start it does not.
#[test]
fn ten_thousand_exits_through_run_all_and_the_flight_recorder_allocate_nothing() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let test = "ten_thousand_exits_through_run_all_and_the_flight_recorder_allocate_nothing";
    let Some(mut machine) = machine(test, "pio_loop", 10_000) else {
        return;
    };
    let devices = Mutex::new(Devices::new(std::io::sink()));
    let options = WatchOptions {
        flight_recorder: true,
        ..WatchOptions::default()
    };
    let mut observer = TraceObserver::new(options, std::io::sink());
    observer.expect_vcpus(1);
    let observer = Mutex::new(observer);
    let (result, allocations) =
        vcpu_thread_allocations(|| machine.run_all(&devices, &observer, None, &RunControl::new()));
    result.unwrap();
    let observer = observer.into_inner().unwrap();
    assert_eq!(observer.exits(), 10_001, "10,000 OUT exits and the HLT");
    assert_eq!(observer.recorder().unwrap().recorded(), 10_001);
    assert_eq!(allocations, 0, "heap allocations on the vCPU thread");
}

/// `--stats` counts MMIO exits per address, and the guest picks the addresses: its tables are
/// sized for [`DISTINCT`] keys up front, so 100,000 distinct addresses (the first `DISTINCT`
/// counted, the rest lumped together) allocate nothing at all.
#[test]
fn stats_allocate_nothing_even_for_100000_distinct_addresses() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let mut stats = Stats::default();
    let mut data = [0u8; 4];
    let mut record = |stats: &mut Stats, i: u64| {
        let exit = Exit::Mmio(Mmio {
            phys_addr: 0x1_0000_0000 + 8 * i,
            is_write: i % 2 == 0,
            data: &mut data,
        });
        stats.record(&exit, 1, 1);
    };
    let first = DISTINCT as u64;
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|counting| counting.set(true));
    for i in 0..100_000 {
        record(&mut stats, i);
    }
    COUNTING.with(|counting| counting.set(false));
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "heap allocations");
    assert_eq!(stats.distinct().1, DISTINCT);
    assert_eq!(stats.other_mmio(), 100_000 - first);
}

/// Ends the run at the `left`-th write to port 0x510 (`pio_loop`'s), through the exit
/// device's answer: with an in-kernel irqchip the guest's final `hlt` would never exit.
struct FinishAfter {
    devices: Devices<std::io::Sink>,
    left: u32,
}

impl rawkvm::devices::bus::IoHandler for FinishAfter {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> std::io::Result<Claim> {
        self.devices.pio_read(port, data)
    }
    fn pio_write(&mut self, port: u16, data: &[u8]) -> std::io::Result<Claim> {
        if port != 0x510 {
            return self.devices.pio_write(port, data);
        }
        self.left -= 1;
        Ok(if self.left == 0 {
            Claim::Finish(0)
        } else {
            Claim::Claimed
        })
    }
    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> std::io::Result<Claim> {
        self.devices.mmio_read(addr, data)
    }
    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> std::io::Result<Claim> {
        self.devices.mmio_write(addr, data)
    }
}

#[test]
fn ten_thousand_exits_with_the_in_kernel_irqchip_allocate_nothing() {
    let _alone = ALONE.lock().unwrap_or_else(PoisonError::into_inner);
    let test = "ten_thousand_exits_with_the_in_kernel_irqchip_allocate_nothing";
    let Some(kvm) = kvm_or_skip(test) else {
        return;
    };
    let mut machine = common::guest_machine(&kvm, "pio_loop", |config| {
        config.param = Some(10_000);
        config.irqchip = rawkvm::machine::irq::IrqChip::Kernel;
    })
    .unwrap();
    assert!(machine.vm().has_irqchip());
    let mut handler = FinishAfter {
        devices: Devices::new(std::io::sink()),
        left: 10_000,
    };
    let mut counter = ExitCounter::default();
    ALLOCATIONS.store(0, Ordering::SeqCst);
    COUNTING.with(|counting| counting.set(true));
    let result = machine.run(&mut handler, &mut counter);
    COUNTING.with(|counting| counting.set(false));
    assert_eq!(result.unwrap(), rawkvm::run_loop::Outcome::Finished(0));
    assert_eq!(counter.exits, 10_000);
    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "heap allocations");
}
