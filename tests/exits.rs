//! Exact exit sequences of the foundation guests on the real `/dev/kvm`.
// The embedded guests are x86 real-mode code: other architectures have none to run yet.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{Recorder, Seen, guest_machine, kvm_or_skip};
use rawkvm::devices::Devices;

/// Runs embedded guest `name` with `param` at 0x0F00 and returns its exits and console bytes.
fn run_guest(kvm: &rawkvm::Kvm, name: &str, param: Option<u32>) -> (Vec<Seen>, Vec<u8>) {
    let mut machine = guest_machine(kvm, name, |config| config.param = param).unwrap();
    let mut devices = Devices::new(Vec::new());
    let mut recorder = Recorder::default();
    machine.run(&mut devices, &mut recorder).unwrap();
    (recorder.exits, devices.console.into_sink().unwrap())
}

#[test]
fn hlt_halts_at_once() {
    let Some(kvm) = kvm_or_skip("hlt_halts_at_once") else {
        return;
    };
    let (exits, console) = run_guest(&kvm, "hlt", None);
    assert_eq!(exits, [Seen::Hlt]);
    assert!(console.is_empty());
}

#[test]
fn pio_loop_makes_one_out_exit_per_iteration() {
    let Some(kvm) = kvm_or_skip("pio_loop_makes_one_out_exit_per_iteration") else {
        return;
    };
    for n in [0u32, 1, 1000] {
        let (exits, _) = run_guest(&kvm, "pio_loop", Some(n));
        let expected: Vec<Seen> = (0..n)
            .map(|i| Seen::out(0x510, i as u8))
            .chain([Seen::Hlt])
            .collect();
        assert_eq!(exits.len(), expected.len(), "N = {n}");
        assert_eq!(exits, expected, "N = {n}");
    }
}

#[test]
fn mmio_loop_makes_one_write_exit_per_iteration() {
    let Some(kvm) = kvm_or_skip("mmio_loop_makes_one_write_exit_per_iteration") else {
        return;
    };
    for n in [0u32, 1, 300] {
        let (exits, _) = run_guest(&kvm, "mmio_loop", Some(n));
        let expected: Vec<Seen> = (0..n)
            .map(|i| Seen::Mmio {
                addr: 0x100000,
                is_write: true,
                data: vec![i as u8],
            })
            .chain([Seen::Hlt])
            .collect();
        assert_eq!(exits, expected, "N = {n}");
    }
}

#[test]
fn hello_polls_com1_before_each_byte() {
    let Some(kvm) = kvm_or_skip("hello_polls_com1_before_each_byte") else {
        return;
    };
    let (exits, console) = run_guest(&kvm, "hello", None);
    let message = b"Hello from real mode!\n";
    let expected: Vec<Seen> = message
        .iter()
        .flat_map(|&byte| [Seen::inb(0x3FD, 0x60), Seen::out(0x3F8, byte)])
        .chain([Seen::Hlt])
        .collect();
    assert_eq!(exits, expected);
    assert_eq!(console, message);
}
