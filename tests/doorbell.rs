//! `KVM_IOEVENTFD`: a guest write to a doorbell signals an eventfd in the kernel and makes no
//! exit; with a datamatch only the matching writes do; length 0 catches any width. The
//! `doorbell` guest writes byte i = i & 0xFF, N times to port 0x512 and N times to GPA
//! 0x100000.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{Recorder, Seen, guest_machine, kvm_or_skip};
use rawkvm::devices::Devices;
use rawkvm::error::{Error, IrqError};
use rawkvm::kvm::irq::{Bus, Doorbell};

const N: u32 = 300;

fn port_write(i: u32) -> Seen {
    Seen::out(0x512, i as u8)
}

fn mmio_write(i: u32) -> Seen {
    Seen::Mmio {
        addr: 0x100000,
        is_write: true,
        data: vec![i as u8],
    }
}

/// Runs `doorbell` with the given doorbells registered; returns the exits and each
/// eventfd's count.
fn run(kvm: &rawkvm::Kvm, doorbells: &[Doorbell]) -> (Vec<Seen>, Vec<u64>) {
    let mut machine = guest_machine(kvm, "doorbell", |config| config.param = Some(N)).unwrap();
    let eventfds: Vec<_> = doorbells
        .iter()
        .map(|&doorbell| machine.vm().ioeventfd(doorbell).unwrap())
        .collect();
    let mut recorder = Recorder::default();
    machine
        .run(&mut Devices::new(Vec::new()), &mut recorder)
        .unwrap();
    let counts = eventfds.iter().map(|e| e.take_count().unwrap()).collect();
    (recorder.exits, counts)
}

#[test]
fn doorbells_signal_eventfds_instead_of_exiting() {
    let Some(kvm) = kvm_or_skip("doorbells_signal_eventfds_instead_of_exiting") else {
        return;
    };
    let port = Doorbell {
        bus: Bus::Pio,
        addr: 0x512,
        len: 1,
        datamatch: None,
    };
    let memory_any_width = Doorbell {
        bus: Bus::Mmio,
        addr: 0x100000,
        len: 0,
        datamatch: None,
    };
    // Without ioeventfds: every write exits.
    let (exits, _) = run(&kvm, &[]);
    let every: Vec<Seen> = (0..N)
        .map(port_write)
        .chain((0..N).map(mmio_write))
        .chain([Seen::Hlt])
        .collect();
    assert_eq!(exits, every);
    // Both doorbells: no exit but the HLT, and each eventfd counted N writes.
    let (exits, counts) = run(&kvm, &[port, memory_any_width]);
    assert_eq!(exits, [Seen::Hlt]);
    assert_eq!(counts, [u64::from(N), u64::from(N)]);
    // A datamatch of 7 on the port: the two writes of 7 (i = 7, 263) are caught, the rest exit.
    let matching = Doorbell {
        datamatch: Some(7),
        ..port
    };
    let (exits, counts) = run(&kvm, &[matching]);
    let expected: Vec<Seen> = (0..N)
        .filter(|i| i & 0xFF != 7)
        .map(port_write)
        .chain((0..N).map(mmio_write))
        .chain([Seen::Hlt])
        .collect();
    assert_eq!(exits, expected);
    assert_eq!(counts, [2]);
    // A 4-byte doorbell does not catch the guest's 1-byte writes.
    let wide = Doorbell {
        len: 4,
        ..memory_any_width
    };
    let (exits, counts) = run(&kvm, &[wide]);
    assert_eq!(exits, every);
    assert_eq!(counts, [0]);
}

#[test]
fn doorbells_kvm_cannot_take_are_refused_by_name() {
    let Some(kvm) = kvm_or_skip("doorbells_kvm_cannot_take_are_refused_by_name") else {
        return;
    };
    let vm = kvm.create_vm().unwrap();
    let refused = |doorbell| match vm.ioeventfd(doorbell) {
        Err(Error::Irq(error)) => error,
        other => panic!("not refused: {other:?}"),
    };
    let base = Doorbell {
        bus: Bus::Pio,
        addr: 0x512,
        len: 3,
        datamatch: None,
    };
    assert_eq!(refused(base), IrqError::DoorbellWidth { len: 3 });
    assert_eq!(
        refused(Doorbell {
            len: 0,
            datamatch: Some(1),
            ..base
        }),
        IrqError::DoorbellAnyWidthMatch
    );
    // The same doorbell twice: the kernel's EEXIST, explained.
    let first = vm.ioeventfd(Doorbell { len: 1, ..base }).unwrap();
    let twice = refused(first.doorbell());
    assert!(
        twice
            .to_string()
            .starts_with("KVM_IOEVENTFD failed: EEXIST (File exists) (that address"),
        "{twice}"
    );
    // Deassigned when dropped: the same doorbell can then be had again.
    drop(first);
    vm.ioeventfd(Doorbell { len: 1, ..base }).unwrap();
}
