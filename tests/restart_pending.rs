//! Restarting after a run that ended in the middle of an instruction: the handler failed on an
//! IN or an MMIO read, so `KVM_RUN` returned that exit and was never entered again. The kernel
//! finishes such an instruction (the value into RAX, RIP past it) at the next entry; without
//! `complete_pending_operation` that completion lands on top of the restored registers and the
//! next run resumes after the IN instead of at the entry.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use std::io;

use common::{Recorder, Seen, kvm_or_skip, restartable_machine};
use rawkvm::devices::{Claim, Devices, IoHandler};
use rawkvm::error::Error;
use rawkvm::machine::Machine;
use rawkvm::machine::restart::{RegisterReset, RestartScope};
use rawkvm::run_loop::Outcome;

/// The devices, except that every port read or every MMIO read fails, as a device whose
/// backend has gone away would.
struct FailingReads {
    devices: Devices<Vec<u8>>,
    port_reads: bool,
    mmio_reads: bool,
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::BrokenPipe, "the device's backend is gone")
}

impl IoHandler for FailingReads {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Claim> {
        if self.port_reads {
            return Err(gone());
        }
        self.devices.pio_read(port, data)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Claim> {
        self.devices.pio_write(port, data)
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> io::Result<Claim> {
        if self.mmio_reads {
            return Err(gone());
        }
        self.devices.mmio_read(addr, data)
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Claim> {
        self.devices.mmio_write(addr, data)
    }
}

/// A whole run with working devices: its exits and console bytes.
fn run_to_hlt(machine: &mut Machine) -> (Vec<Seen>, Vec<u8>) {
    let mut devices = Devices::new(Vec::new());
    let mut recorder = Recorder::default();
    let outcome = machine.run(&mut devices, &mut recorder).unwrap();
    assert_eq!(outcome, Outcome::Halted);
    (recorder.exits, devices.console.into_sink().unwrap())
}

#[test]
fn a_restart_after_a_failed_in_or_mmio_read_starts_from_the_entry() {
    let Some(kvm) = kvm_or_skip("a_restart_after_a_failed_in_or_mmio_read") else {
        return;
    };
    // in_unhandled: OUT 'A', then IN from 0x1234; mmio_widths: an MMIO read first.
    for (guest, port_reads, mmio_reads) in
        [("in_unhandled", true, false), ("mmio_widths", false, true)]
    {
        let fresh = run_to_hlt(&mut restartable_machine(&kvm, guest));
        for reset in [RegisterReset::SyncRegs, RegisterReset::Ioctls] {
            let mut machine = restartable_machine(&kvm, guest);
            let mut point = machine
                .restart_point(&kvm, RestartScope::Full, reset)
                .unwrap();
            if reset != point.register_reset() {
                common::skip(format_args!(
                    "{guest}: sync-regs reset (this kernel lacks KVM_CAP_SYNC_REGS)"
                ));
                continue;
            }
            let mut failing = FailingReads {
                devices: Devices::new(Vec::new()),
                port_reads,
                mmio_reads,
            };
            let mut recorder = Recorder::default();
            match machine.run(&mut failing, &mut recorder) {
                Err(Error::Console(error)) => assert_eq!(error.kind(), io::ErrorKind::BrokenPipe),
                other => panic!("{guest}: {other:?}"),
            }
            let at_failure = recorder.exits.len();
            assert_eq!(
                recorder.exits[..],
                fresh.0[..at_failure],
                "{guest}: the run up to the failing read"
            );
            machine.restart(&mut point).unwrap();
            let again = run_to_hlt(&mut machine);
            assert_eq!(
                again, fresh,
                "{guest}, {reset:?}: the run after the restart"
            );
            // And the restart after a clean HLT still works as before.
            machine.restart(&mut point).unwrap();
            assert_eq!(
                run_to_hlt(&mut machine),
                fresh,
                "{guest}, {reset:?}: once more"
            );
        }
    }
}
