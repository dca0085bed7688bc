//! What a stop handle leaves behind: a leaked thread registration cannot make a kick unsound,
//! a stop that lands after a run has ended does not eat the next run, and a deadline too far
//! away to compute is no deadline.
// The embedded guests are x86 real-mode code: other architectures have none to run yet.
#![cfg(target_arch = "x86_64")]

mod common;

use std::sync::Mutex;
use std::thread;
use std::time::Duration;

use common::{kvm_or_skip, machine, restartable_machine};
use rawkvm::devices::Devices;
use rawkvm::machine::Machine;
use rawkvm::machine::restart::{RegisterReset, RestartScope};
use rawkvm::machine::supervisor::RunControl;
use rawkvm::run_loop::{NoObserver, Outcome};

/// Runs every vCPU through `run_all` and returns the console bytes.
fn run_all_console(machine: &mut Machine, timeout: Option<Duration>) -> Vec<u8> {
    let devices = Mutex::new(Devices::new(Vec::new()));
    machine
        .run_all(&devices, &NoObserver, timeout, &RunControl::new())
        .unwrap();
    devices.into_inner().unwrap().console.into_sink().unwrap()
}

// The guard names the thread that made it, so it cannot be sent away and dropped elsewhere.
static_assertions::assert_not_impl_any!(rawkvm::kvm::vcpu::ThreadRegistration: Send, Sync);

/// A registration leaked on a thread that then exits leaves that thread's id registered.
/// Kicking it must be harmless. With the `pthread_t` kick this replaced, the kick called
/// `pthread_kill` on the exited thread's descriptor, which glibc may already have freed or
/// handed to a new thread: undefined behaviour, reachable from safe code. (glibc usually keeps
/// exited descriptors in its stack cache, so the old code mostly got away with it and this
/// test cannot catch it reliably; it pins the new behaviour.) Now the kick is `tgkill` on the
/// kernel thread id, which the kernel answers with `ESRCH`, or, if a thread of this process
/// reused the id, with one do-nothing signal.
#[test]
fn kicking_a_vcpu_whose_registered_thread_has_exited_is_harmless() {
    let Some(kvm) = kvm_or_skip("kicking_a_vcpu_whose_registered_thread_has_exited") else {
        return;
    };
    let mut machine = machine(&kvm, "spin");
    let stop = machine.vcpus_mut()[0].stop_handle();
    thread::scope(|scope| {
        let vcpu = &machine.vcpus_mut()[0];
        scope
            .spawn(|| std::mem::forget(vcpu.register_thread().unwrap()))
            .join()
            .unwrap();
    });
    // Threads that come and go meanwhile, so a freed descriptor would be reused.
    for _ in 0..16 {
        thread::spawn(|| ()).join().unwrap();
    }
    for _ in 0..100 {
        stop.kick();
    }
    stop.stop();
    // The vCPU still stops at its first entry: the stale id did not get in the way.
    let outcome = machine
        .run(&mut Devices::new(std::io::sink()), &mut NoObserver)
        .unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    assert_eq!(machine.vcpus_mut()[0].regs().unwrap().rip, 0x1000);
}

/// A stop that arrives through a vCPU's own handle after its run ended (a late signal, a
/// watchdog) must not make the next `run_all` end at once without running the guest.
#[test]
fn a_stop_after_a_run_does_not_stop_the_next_run_all() {
    let Some(kvm) = kvm_or_skip("a_stop_after_a_run_does_not_stop_the_next_run_all") else {
        return;
    };
    let mut machine = restartable_machine(&kvm, "mutate");
    let mut point = machine
        .restart_point(&kvm, RestartScope::Full, RegisterReset::Ioctls)
        .unwrap();
    assert_eq!(run_all_console(&mut machine, None), b"00000001\n");
    machine.vcpus_mut()[0].stop_handle().stop();
    machine.restart(&mut point).unwrap();
    assert_eq!(
        run_all_console(&mut machine, None),
        b"00000001\n",
        "the second run ran the guest"
    );
}

/// `Duration::MAX` cannot be added to the current time: no deadline, no panic.
#[test]
fn a_timeout_of_duration_max_is_no_deadline() {
    let Some(kvm) = kvm_or_skip("a_timeout_of_duration_max_is_no_deadline") else {
        return;
    };
    let mut machine = machine(&kvm, "mutate");
    assert_eq!(
        run_all_console(&mut machine, Some(Duration::MAX)),
        b"00000001\n"
    );
}
