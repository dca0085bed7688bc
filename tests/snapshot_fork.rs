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

#[test]
fn children_of_a_filled_guest_see_its_pages_and_only_their_own_writes() {
    use common::filled::{self, PAGE, WORDS_PER_PAGE};
    let Some(kvm) = common::kvm_or_skip("fork of a filled guest") else {
        return;
    };
    let mut parent = filled::filled_machine(&kvm);
    let parent_ram = filled::ram(&parent);
    let image = parent
        .snapshot(&kvm, &DeviceState::default())
        .unwrap()
        .fork_image()
        .unwrap();
    drop(parent);
    let mut children = [image.spawn(&kvm).unwrap(), image.spawn(&kvm).unwrap()];
    // Each child writes its own byte over page 31 (in a gap) and page 32 (the first filled).
    for (child, byte) in children.iter().zip([0xA1u8, 0xB2]) {
        assert!(
            filled::ram(child) == parent_ram,
            "a child starts with the parent's RAM"
        );
        child
            .vm()
            .memory()
            .fill(31 * PAGE, 2 * PAGE as usize, byte)
            .unwrap();
    }
    let written = 31 * WORDS_PER_PAGE as usize..33 * WORDS_PER_PAGE as usize;
    for (child, byte) in children.iter().zip([0xA1u8, 0xB2]) {
        let ram = filled::ram(child);
        let word = u64::from_ne_bytes([byte; 8]);
        assert!(ram[written.clone()].iter().all(|&w| w == word), "{byte:#x}");
        assert!(ram[..written.start] == parent_ram[..written.start]);
        assert!(ram[written.end..] == parent_ram[written.end..]);
    }
    // A child spawned after them sees none of their writes: they never reached the image.
    let late = image.spawn(&kvm).unwrap();
    assert!(filled::ram(&late) == parent_ram);
    // A child's RAM is a file's mapping, so its snapshot reads every page: the parent's runs,
    // with the written pages joined to the first filled cluster.
    let snapshot = children[0].snapshot(&kvm, &DeviceState::default()).unwrap();
    let runs: Vec<(u64, u64)> = snapshot.vm.slots[0]
        .runs
        .iter()
        .map(|run| (run.first_page, run.words.len() as u64 / WORDS_PER_PAGE))
        .collect();
    let mut expected = vec![(1, 1), (31, 17)];
    expected.extend(filled::filled_runs().into_iter().skip(1));
    assert_eq!(runs, expected);
    let first = &snapshot.vm.slots[0].runs[1].words;
    assert!(
        first[..2 * WORDS_PER_PAGE as usize]
            .iter()
            .all(|&w| w == 0xA1A1_A1A1_A1A1_A1A1)
    );
    assert_eq!(first[2 * WORDS_PER_PAGE as usize..], filled::words(33, 15));
}
