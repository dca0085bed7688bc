//! Coalesced I/O on real KVM: the console's bytes come out exactly as without coalescing, a
//! full ring turns every 170th write into an exit, MMIO zones work the same way, a stopped
//! run loses nothing, and a kernel without the capability falls back to exits.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use std::io;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{
    CONSOLE_PATTERN, Recorder, Seen, console_pattern, kvm_or_skip, machine, machine_with_param,
};
use rawkvm::Kvm;
use rawkvm::devices::coalesced::{self, Support};
use rawkvm::devices::{Claim, DEBUG_CONSOLE_PORT, Devices, IoHandler, Space, WriteOnlyZone};
use rawkvm::error::ConfigError;
use rawkvm::exit::Exit;
use rawkvm::machine::Machine;
use rawkvm::run_loop::{Observer, Outcome};

/// Ring entries the kernel fills before the next write exits (170 slots, one kept free).
const USABLE: usize = 169;

fn support_or_skip(machine: &Machine, test: &str) -> Option<Support> {
    let support = Support::of(machine.vm());
    if !support.pio || !support.mmio {
        common::skip(format_args!(
            "{test}: the kernel lacks KVM_CAP_COALESCED_MMIO/PIO ({support:?})"
        ));
        return None;
    }
    Some(support)
}

/// Runs `guest` (`console_loop` or `console_burst`) for `n` bytes, coalescing what `support`
/// allows; returns the console bytes and the exits.
fn console_run(kvm: &Kvm, guest: &str, n: u32, support: Support) -> (Vec<u8>, Vec<Seen>) {
    let mut machine = machine_with_param(kvm, guest, n);
    let mut devices = Devices::new(Vec::new());
    let registered = coalesced::register_declared(machine.vm(), &devices, support).unwrap();
    // The debug port and the MMIO console.
    assert_eq!(registered.coalesced.len() + registered.exiting.len(), 2);
    let mut recorder = Recorder::default();
    let outcome = machine.run(&mut devices, &mut recorder).unwrap();
    assert_eq!(outcome, Outcome::Halted);
    (devices.console.into_sink().unwrap(), recorder.exits)
}

#[test]
fn console_bytes_are_identical_with_and_without_coalescing_and_a_full_ring_exits() {
    let Some(kvm) = kvm_or_skip("console_bytes_are_identical_with_and_without_coalescing") else {
        return;
    };
    let Some(support) = support_or_skip(&machine(&kvm, "hlt"), "console coalescing") else {
        return;
    };
    for (guest, n) in ["console_loop", "console_burst"]
        .into_iter()
        .flat_map(|guest| [1usize, 64, USABLE, USABLE + 1, 1000, 5000].map(|n| (guest, n)))
    {
        let expected = console_pattern(n);
        let (plain, plain_exits) = console_run(&kvm, guest, n as u32, Support::NONE);
        assert_eq!(plain, expected, "{guest} n = {n}, plain");
        let mut want_plain: Vec<Seen> = expected
            .iter()
            .map(|&byte| Seen::out(DEBUG_CONSOLE_PORT, byte))
            .collect();
        want_plain.push(Seen::Hlt);
        assert_eq!(
            plain_exits, want_plain,
            "{guest}: one exit per byte, then HLT"
        );

        let (coalesced, exits) = console_run(&kvm, guest, n as u32, support);
        assert_eq!(coalesced, expected, "{guest} n = {n}, coalesced");
        // Every 170th write finds the ring full (169 entries) and exits as an ordinary OUT;
        // the 169 before it are drained first, so the order holds.
        let mut want: Vec<Seen> = (1..=n / (USABLE + 1))
            .map(|k| {
                Seen::out(
                    DEBUG_CONSOLE_PORT,
                    CONSOLE_PATTERN[(k * (USABLE + 1) - 1) % 64],
                )
            })
            .collect();
        want.push(Seen::Hlt);
        assert_eq!(exits, want, "{guest} n = {n}, coalesced exits");
    }
}

/// A device with a write-only MMIO register at 0x100000 (where `mmio_loop` writes).
#[derive(Default)]
struct MmioSink {
    writes: Vec<(u64, Vec<u8>)>,
}

const SINK_ZONE: [WriteOnlyZone; 1] = [WriteOnlyZone {
    space: Space::Memory,
    start: 0x10_0000,
    len: 1,
}];

impl IoHandler for MmioSink {
    fn pio_read(&mut self, _port: u16, _data: &mut [u8]) -> io::Result<Claim> {
        Ok(Claim::Unclaimed)
    }
    fn pio_write(&mut self, _port: u16, _data: &[u8]) -> io::Result<Claim> {
        Ok(Claim::Unclaimed)
    }
    fn mmio_read(&mut self, _addr: u64, _data: &mut [u8]) -> io::Result<Claim> {
        Ok(Claim::Unclaimed)
    }
    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Claim> {
        self.writes.push((addr, data.to_vec()));
        Ok(Claim::Claimed)
    }
    fn write_only_zones(&self) -> &[WriteOnlyZone] {
        &SINK_ZONE
    }
}

#[test]
fn a_declared_mmio_zone_is_coalesced_in_order() {
    let Some(kvm) = kvm_or_skip("a_declared_mmio_zone_is_coalesced_in_order") else {
        return;
    };
    let n = 600;
    let mut machine = machine_with_param(&kvm, "mmio_loop", n);
    let Some(support) = support_or_skip(&machine, "mmio coalescing") else {
        return;
    };
    let mut sink = MmioSink::default();
    let registered = coalesced::register_declared(machine.vm(), &sink, support).unwrap();
    assert_eq!(registered.coalesced, SINK_ZONE);
    let mut recorder = Recorder::default();
    machine.run(&mut sink, &mut recorder).unwrap();
    let want: Vec<(u64, Vec<u8>)> = (0..n).map(|i| (0x10_0000, vec![i as u8])).collect();
    assert_eq!(sink.writes, want, "every write, in order");
    let mmio_exits = recorder
        .exits
        .iter()
        .filter(|exit| matches!(exit, Seen::Mmio { .. }))
        .count();
    assert_eq!(
        mmio_exits,
        n as usize / (USABLE + 1),
        "only full-ring writes exit"
    );
}

/// Says when the run has made its `nth` exit.
struct NthExit {
    exits: u32,
    nth: u32,
    reached: mpsc::Sender<()>,
}

impl Observer for NthExit {
    fn exit(&mut self, _vcpu: u32, _exit: &Exit<'_>, _dispatch: Option<Claim>) {
        self.exits += 1;
        if self.exits == self.nth {
            self.reached.send(()).unwrap();
        }
    }
}

#[test]
fn a_stopped_run_hands_over_what_the_ring_holds() {
    let Some(kvm) = kvm_or_skip("a_stopped_run_hands_over_what_the_ring_holds") else {
        return;
    };
    // Far more bytes than the run lasts: it ends by a stop, with the ring part full.
    let mut machine = machine_with_param(&kvm, "console_loop", u32::MAX);
    let Some(support) = support_or_skip(&machine, "stop with coalescing") else {
        return;
    };
    let mut devices = Devices::new(Vec::new());
    coalesced::register_declared(machine.vm(), &devices, support).unwrap();
    let stop = machine.vcpus_mut()[0].stop_handle();
    let (full_twice, ring_wrapped) = mpsc::channel();
    let stopper = thread::spawn(move || {
        // After the second full-ring exit the guest has written at least 2 × 170 bytes,
        // however slowly it was scheduled; then let the ring fill part way.
        ring_wrapped.recv().unwrap();
        thread::sleep(Duration::from_millis(20));
        stop.stop();
    });
    let mut observer = NthExit {
        exits: 0,
        nth: 2,
        reached: full_twice,
    };
    let outcome = machine.run(&mut devices, &mut observer).unwrap();
    stopper.join().unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    let console = devices.console.into_sink().unwrap();
    // EBX counts the bytes whose `out` is done, but the stop may land between the `out` and
    // the `inc ebx`: the guest wrote EBX or EBX + 1 bytes, and every one of them is here.
    let written = machine.vcpus_mut()[0].regs().unwrap().rbx as usize;
    assert!(
        written > USABLE,
        "the run was long enough to wrap the ring ({written})"
    );
    assert!(
        console.len() == written || console.len() == written + 1,
        "{} bytes out, the guest wrote {written}",
        console.len()
    );
    assert_eq!(console, console_pattern(console.len()));
}

#[test]
fn without_port_coalescing_the_console_falls_back_to_exits() {
    let Some(kvm) = kvm_or_skip("without_port_coalescing_the_console_falls_back_to_exits") else {
        return;
    };
    // A kernel with KVM_CAP_COALESCED_MMIO but not KVM_CAP_COALESCED_PIO, as configured.
    let mmio_only = Support {
        mmio: true,
        pio: false,
    };
    let mut burst = machine_with_param(&kvm, "console_burst", 300);
    let mut devices = Devices::new(Vec::new());
    let registered = coalesced::register_declared(burst.vm(), &devices, mmio_only).unwrap();
    // The MMIO console is still coalesced; the debug port exits.
    let [port_zone, mmio_zone] = devices.write_only_zones() else {
        panic!("the devices declare the debug port and the MMIO console");
    };
    assert_eq!(
        (port_zone.space, mmio_zone.space),
        (Space::Port, Space::Memory)
    );
    assert_eq!(registered.coalesced, [*mmio_zone]);
    assert_eq!(registered.exiting, [*port_zone]);
    let mut recorder = Recorder::default();
    burst.run(&mut devices, &mut recorder).unwrap();
    assert_eq!(recorder.exits.len(), 301, "one exit per byte, then HLT");
    assert_eq!(devices.console.into_sink().unwrap(), console_pattern(300));

    // A zone that leaves its address space is refused before the kernel is asked.
    let beyond = [WriteOnlyZone {
        space: Space::Port,
        start: 0xFFFF,
        len: 2,
    }];
    let hlt = machine(&kvm, "hlt");
    match coalesced::register(hlt.vm(), &beyond, Support::of(hlt.vm())) {
        Err(error @ rawkvm::error::Error::Config(ConfigError::ZoneOutOfSpace { .. })) => {
            assert_eq!(
                error.to_string(),
                format!(
                    "write-only zone {:?} does not fit its address space",
                    beyond[0]
                )
            );
        }
        other => panic!("{other:?}"),
    }
}
