//! Fork: children spawned from one snapshot in memory share its RAM copy-on-write, and each
//! continues the guest exactly as a restore would, unaffected by its siblings' writes.
#![cfg(target_arch = "x86_64")]

mod common;

use std::sync::Mutex;
use std::time::Instant;

use rawkvm::devices::Devices;
use rawkvm::machine::Machine;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::machine::trigger::{DEFAULT_SNAPSHOT_PORT, SnapshotPort};
use rawkvm::run_loop::NoObserver;
use rawkvm::snapshot::DeviceState;

fn run(machine: &mut Machine) -> (Vec<u8>, bool) {
    let control = RunControl::new();
    let port = Some(DEFAULT_SNAPSHOT_PORT);
    let devices = Mutex::new(SnapshotPort::new(
        Devices::new(Vec::new()),
        port,
        control.clone(),
    ));
    machine
        .run_all(&devices, &NoObserver, None, &control)
        .expect("the guest runs");
    let mut devices = devices.into_inner().unwrap().inner;
    devices.console.flush().unwrap();
    (
        devices.console.sink().clone(),
        control.stopped_for_snapshot(),
    )
}

#[test]
fn forked_children_each_finish_the_guest_and_do_not_see_each_others_writes() {
    let Some(kvm) = common::kvm_or_skip("snapshot fork") else {
        return;
    };
    let mut parent = common::machine(&kvm, "snapshot_count");
    let (first_half, stopped) = run(&mut parent);
    assert!(stopped);
    let snapshot = parent.snapshot(&kvm, &DeviceState::default()).unwrap();
    let mut restored = snapshot.restore(&kvm).unwrap();
    let (expected, _) = run(&mut restored);
    assert!(expected.ends_with(b"0010\n05D8:05D8:05D8\n"));
    let image = snapshot.fork_image().unwrap();
    assert!(
        image
            .state()
            .vm
            .slots
            .iter()
            .all(|slot| slot.runs.is_empty())
    );
    let mut fork_ns = Vec::new();
    for child in 0..3 {
        let started = Instant::now();
        let mut machine = image.spawn(&kvm).unwrap();
        fork_ns.push(started.elapsed().as_nanos());
        // Every child writes the checksum at GPA 0x20000 on top of the snapshot's value; a
        // child that saw a sibling's writes would print another checksum.
        let (output, _) = run(&mut machine);
        assert_eq!(
            String::from_utf8_lossy(&output),
            String::from_utf8_lossy(&expected),
            "child {child}"
        );
    }
    let started = Instant::now();
    let cold = common::machine(&kvm, "snapshot_count");
    let cold_ns = started.elapsed().as_nanos();
    drop(cold);
    eprintln!(
        "backend {}: spawn of a child {fork_ns:?} ns, a cold Machine::new {cold_ns} ns \
         (first half was {} bytes)",
        common::backend(),
        first_half.len()
    );
}
