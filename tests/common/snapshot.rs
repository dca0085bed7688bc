//! Running a guest up to its snapshot port and taking the snapshot, for the snapshot tests.

use std::sync::Mutex;
use std::time::Duration;

use rawkvm::Kvm;
use rawkvm::devices::Devices;
use rawkvm::machine::Machine;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::machine::trigger::{DEFAULT_SNAPSHOT_PORT, SnapshotPort};
use rawkvm::run_loop::NoObserver;
use rawkvm::snapshot::{DeviceState, Snapshot};

/// Runs `machine` with the snapshot port armed; returns what it printed and whether it
/// stopped for a snapshot.
pub fn run(machine: &mut Machine) -> (Vec<u8>, bool) {
    let control = RunControl::new();
    let devices = SnapshotPort::new(
        Devices::new(Vec::new()),
        Some(DEFAULT_SNAPSHOT_PORT),
        control.clone(),
    );
    let devices = Mutex::new(devices);
    machine
        // A guest whose interrupts were not restored sleeps in the kernel's `hlt`: end it.
        .run_all(
            &devices,
            &NoObserver,
            Some(Duration::from_secs(60)),
            &control,
        )
        .expect("the guest runs");
    let mut devices = devices.into_inner().unwrap();
    devices.inner.console.flush().unwrap();
    let output = devices.inner.console.sink().clone();
    (output, control.stopped_for_snapshot())
}

/// The snapshot of a stopped machine, with no caller-side device state.
pub fn snapshot_of(kvm: &Kvm, machine: &mut Machine) -> Snapshot {
    machine
        .snapshot(kvm, &DeviceState::default())
        .expect("a stopped machine can be snapshotted")
}
