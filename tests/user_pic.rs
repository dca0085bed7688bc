//! `--irqchip user`: rawkvm's 8259 pair injects with `KVM_INTERRUPT` at any exit that reports
//! `ready_for_interrupt_injection`, and loses or duplicates nothing.
//!
//! A thread raises 1,000 edges, round robin on 15 lines (every line but the cascade), each
//! one only once its line's previous edge has been taken (an 8259 merges an edge into a
//! request still pending, by design; those merges are counted apart and retried). The guest
//! `irq_user` counts per line what it took and prints it: every count must equal what was
//! raised on that line, and the controller's own injection counts too.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rawkvm::devices::Devices;
use rawkvm::devices::pic::{Histogram, LATENCY_BUCKETS, UserPic};
use rawkvm::machine::irq::IrqChip;
use rawkvm::run_loop::{ExitCounter, Outcome};

const INTERRUPTS: u32 = 1000;
/// Every line but master pin 2, where the slave is cascaded.
const LINES: [u8; 15] = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// Raises `total` edges round robin on [`LINES`], each accepted one counted per line.
fn raise_all(pic: &UserPic, total: u32) -> ([u64; 16], u64) {
    while !(pic.registers().master.initialised() && pic.registers().slave.initialised()) {
        thread::sleep(Duration::from_micros(200));
    }
    let (mut raised, mut merged, mut sent) = ([0u64; 16], 0, 0);
    for line in LINES.iter().cycle() {
        if sent == total {
            break;
        }
        if pic.raise(*line) {
            raised[usize::from(*line)] += 1;
            sent += 1;
        } else {
            merged += 1;
            thread::sleep(Duration::from_micros(20));
        }
    }
    (raised, merged)
}

fn describe(name: &str, unit: &str, histogram: &Histogram) -> String {
    let rows: Vec<String> = (0..LATENCY_BUCKETS)
        .filter(|&i| histogram.buckets[i] > 0)
        .map(|i| {
            let (low, high) = Histogram::bounds(i);
            format!("[{low},{high}) {unit}: {}", histogram.buckets[i])
        })
        .collect();
    format!(
        "{name}: median in {:?} {unit}; {}",
        histogram.median_bucket(),
        rows.join(", ")
    )
}

#[test]
fn a_thousand_interrupts_arrive_once_each() {
    let Some(kvm) = common::kvm_or_skip("a_thousand_interrupts_arrive_once_each") else {
        return;
    };
    let mut machine = common::guest_machine(&kvm, "irq_user", |config| {
        assert_eq!(
            config.irqchip,
            IrqChip::User,
            "the guest's setup asks for it"
        );
        config.param = Some(INTERRUPTS);
    })
    .unwrap();
    let pic = Arc::clone(machine.user_pic().expect("a user PIC"));
    let raiser = {
        let pic = Arc::clone(&pic);
        thread::spawn(move || raise_all(&pic, INTERRUPTS))
    };
    let mut devices = Devices::new(Vec::new());
    let mut exits = ExitCounter::default();
    let outcome = machine.run(&mut devices, &mut exits).unwrap();
    let (raised, merged) = raiser.join().unwrap();
    assert_eq!(outcome, Outcome::Halted);
    devices.console.flush().unwrap();
    let console = String::from_utf8(devices.console.sink().clone()).unwrap();
    let expected_counts: Vec<String> = raised.iter().map(|n| format!("{n:04X}")).collect();
    assert_eq!(
        console,
        format!("{}\n{:08X}\n", expected_counts.join(" "), INTERRUPTS),
        "the guest took exactly what was raised, line by line"
    );
    let stats = pic.stats();
    assert_eq!(stats.injected, raised, "one KVM_INTERRUPT per edge raised");
    assert_eq!(stats.raised, u64::from(INTERRUPTS));
    assert_eq!(stats.merged, merged);
    assert_eq!(stats.latency_us.count(), u64::from(INTERRUPTS));
    // Reported, not asserted: how long an edge waited for its injection.
    eprintln!(
        "user PIC: {INTERRUPTS} raised, 0 lost, 0 duplicated ({merged} edges merged into a \
         pending request and raised again), {} exits",
        exits.exits
    );
    eprintln!("{}", describe("latency", "us", &stats.latency_us));
    eprintln!("{}", describe("latency", "exits", &stats.latency_exits));
}
