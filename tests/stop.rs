//! Stopping a vCPU from another thread: `immediate_exit` plus the kick signal.
// The embedded guests are x86 real-mode code: other architectures have none to run yet.
#![cfg(target_arch = "x86_64")]

mod common;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use common::process::WATCHDOG;
use common::{SPIN_OUT_INSTRUCTIONS, kvm_or_skip, machine, machine_with_param};
use rawkvm::devices::{Claim, Devices};
use rawkvm::exit::Exit;
use rawkvm::run_loop::{NoObserver, Observer, Outcome};

#[test]
fn a_spinning_guest_is_stopped_from_another_thread() {
    let Some(kvm) = kvm_or_skip("a_spinning_guest_is_stopped_from_another_thread") else {
        return;
    };
    for guest in ["spin", "spin_out"] {
        let mut machine = machine(&kvm, guest);
        let stop = machine.vcpus_mut()[0].stop_handle();
        let stopper = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            stop.stop();
        });
        let started = Instant::now();
        let outcome = machine.run(&mut Devices::new(std::io::sink()), &mut NoObserver);
        stopper.join().unwrap();
        assert_eq!(outcome.unwrap(), Outcome::Stopped, "{guest}");
        assert!(
            started.elapsed() < WATCHDOG,
            "{guest} took {:?}",
            started.elapsed()
        );
        // The vCPU is parked at its loop: `jmp $` at 0x1000 for spin.
        let rip = machine.vcpus_mut()[0].regs().unwrap().rip;
        assert!((0x1000..0x1100).contains(&rip), "{guest}: rip {rip:#x}");
        let parked_at: &[u64] = match guest {
            "spin" => &[0x1000],
            _ => &SPIN_OUT_INSTRUCTIONS,
        };
        assert!(parked_at.contains(&rip), "{guest}: rip {rip:#x}");
    }
}

#[test]
fn a_stop_requested_before_the_run_stops_at_the_first_entry() {
    let Some(kvm) = kvm_or_skip("a_stop_requested_before_the_run_stops_at_the_first_entry") else {
        return;
    };
    let mut machine = machine(&kvm, "spin");
    machine.vcpus_mut()[0].stop_handle().stop();
    let outcome = machine
        .run(&mut Devices::new(std::io::sink()), &mut NoObserver)
        .unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    assert_eq!(
        machine.vcpus_mut()[0].regs().unwrap().rip,
        0x1000,
        "not one instruction ran"
    );
}

/// Waits in the third `before_run`, just before `KVM_RUN`, until the test has requested the
/// stop: the window in which a kick without `immediate_exit` would be lost. Waiting for the
/// stop, not sleeping for a while, keeps it in the window however late the stopper runs.
struct WidenedWindow {
    runs: u32,
    in_window: mpsc::Sender<()>,
    stop_requested: mpsc::Receiver<()>,
}

impl Observer for WidenedWindow {
    fn before_run(&mut self, _vcpu: u32) {
        self.runs += 1;
        if self.runs == 3 {
            self.in_window.send(()).unwrap();
            self.stop_requested.recv().unwrap();
        }
    }
}

#[test]
fn a_stop_between_the_check_and_kvm_run_is_not_lost() {
    let Some(kvm) = kvm_or_skip("a_stop_between_the_check_and_kvm_run_is_not_lost") else {
        return;
    };
    // spin_out exits constantly, so the loop reaches its third entry quickly; after that the
    // guest would run forever without the stop.
    let mut machine = machine(&kvm, "spin_out");
    let stop = machine.vcpus_mut()[0].stop_handle();
    let (in_window, window_reached) = mpsc::channel();
    let (stopped, stop_requested) = mpsc::channel();
    let stopper = thread::spawn(move || {
        window_reached.recv().unwrap();
        stop.stop(); // lands while the vCPU thread waits in before_run
        stopped.send(()).unwrap();
    });
    let mut observer = WidenedWindow {
        runs: 0,
        in_window,
        stop_requested,
    };
    let started = Instant::now();
    let outcome = machine
        .run(&mut Devices::new(std::io::sink()), &mut observer)
        .unwrap();
    stopper.join().unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    assert_eq!(observer.runs, 3, "the very next KVM_RUN returned EINTR");
    assert!(started.elapsed() < WATCHDOG);
}

/// Holds the vCPU at every [`PACE`]th exit until the storm has sent one more kick, so kicks
/// land all through the run however the two threads are scheduled: at least
/// `exits / PACE` of them, whatever the host's load.
struct PacedByKicks<'a> {
    sent: &'a AtomicU32,
    exits: u32,
}

/// Exits between two kicks the vCPU waits for.
const PACE: u32 = 500;

impl Observer for PacedByKicks<'_> {
    fn exit(&mut self, _vcpu: u32, _exit: &Exit<'_>, _dispatch: Option<Claim>) {
        self.exits += 1;
        if self.exits % PACE == 0 {
            let before = self.sent.load(Ordering::Acquire);
            while self.sent.load(Ordering::Acquire) == before {
                thread::yield_now();
            }
        }
    }
}

#[test]
fn a_kick_storm_loses_and_duplicates_no_output() {
    let Some(kvm) = kvm_or_skip("a_kick_storm_loses_and_duplicates_no_output") else {
        return;
    };
    let bytes = 10_000;
    let mut machine = machine_with_param(&kvm, "console_loop", bytes);
    let kicker = machine.vcpus_mut()[0].stop_handle();
    let sent = AtomicU32::new(0);
    let done = AtomicBool::new(false);
    let mut devices = Devices::new(Vec::new());
    let (outcome, kicks) = thread::scope(|scope| {
        let storm = scope.spawn(|| {
            while !done.load(Ordering::Acquire) {
                kicker.kick();
                sent.fetch_add(1, Ordering::Release);
                thread::sleep(Duration::from_micros(200));
            }
        });
        let mut paced = PacedByKicks {
            sent: &sent,
            exits: 0,
        };
        let outcome = machine.run(&mut devices, &mut paced);
        done.store(true, Ordering::Release);
        storm.join().unwrap();
        (outcome, sent.load(Ordering::Acquire))
    });
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    let output = devices.console.into_sink().unwrap();
    let expected = common::console_pattern(bytes as usize);
    assert_eq!(output.len(), expected.len());
    assert!(output == expected, "output differs after {kicks} kicks");
    assert!(kicks > 10, "the storm sent only {kicks} kicks");
}
