//! Restart in place: run 1 and run 1,000 on one VM are indistinguishable from a fresh VM's run.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{Recorder, Seen, kvm_or_skip, machine, restartable_machine};
use rawkvm::bindings::{kvm_regs, kvm_sregs};
use rawkvm::devices::{DEBUG_CONSOLE_PORT, Devices};
use rawkvm::error::Error;
use rawkvm::error::RestartError;
use rawkvm::kvm::vcpu::RunError;
use rawkvm::machine::Machine;
use rawkvm::machine::restart::{RegisterReset, RestartScope};
use rawkvm::run_loop::Outcome;

/// Everything a run shows: its exits, its console bytes, and the registers at the end.
#[derive(Debug, PartialEq)]
struct RunRecord {
    exits: Vec<Seen>,
    console: Vec<u8>,
    regs: kvm_regs,
    sregs: kvm_sregs,
}

fn run_once(machine: &mut Machine) -> RunRecord {
    let mut devices = Devices::new(Vec::new());
    let mut recorder = Recorder::default();
    let outcome = machine.run(&mut devices, &mut recorder).unwrap();
    assert_eq!(outcome, Outcome::Halted);
    let vcpu = &machine.vcpus_mut()[0];
    RunRecord {
        regs: vcpu.regs().unwrap(),
        sregs: vcpu.sregs().unwrap(),
        exits: recorder.exits,
        console: devices.console.into_sink().unwrap(),
    }
}

/// The exits `mutate` makes on a fresh VM: "00000001\n" on the debug console, then HLT.
fn fresh_mutate_exits() -> Vec<Seen> {
    let mut exits: Vec<Seen> = b"00000001\n"
        .iter()
        .map(|&byte| Seen::out(DEBUG_CONSOLE_PORT, byte))
        .collect();
    exits.push(Seen::Hlt);
    exits
}

#[test]
fn run_1_and_run_1000_of_mutate_match_a_fresh_vm_with_either_register_reset() {
    let Some(kvm) = kvm_or_skip("run_1_and_run_1000_of_mutate_match_a_fresh_vm") else {
        return;
    };
    let fresh = run_once(&mut machine(&kvm, "mutate"));
    assert_eq!(fresh.exits, fresh_mutate_exits());
    assert_eq!(fresh.console, b"00000001\n");
    assert_eq!(fresh.regs.rbx, 0xB0B0_B0B0, "the guest's final registers");

    for reset in [RegisterReset::SyncRegs, RegisterReset::Ioctls] {
        let mut machine = restartable_machine(&kvm, "mutate");
        let mut point = machine
            .restart_point(&kvm, RestartScope::Full, reset)
            .unwrap();
        if reset == RegisterReset::SyncRegs && point.register_reset() == RegisterReset::Ioctls {
            common::skip(format_args!(
                "sync-regs reset: this kernel lacks KVM_CAP_SYNC_REGS"
            ));
        }
        let first = run_once(&mut machine);
        assert_eq!(first, fresh, "{reset:?}: run 1");
        for run in 2..=1000 {
            let restored = machine.restart(&mut point).unwrap();
            // The counter page (image), the stack page, 0x8000 and 0x9000.
            assert_eq!(restored.dirty_pages, 4, "{reset:?}: before run {run}");
            // 0x8000 and 0x9000 started as zeros: they are restored from a page of zeros.
            for gpa in [0x8000, 0x9000] {
                let mut word = [0xFFu8; 4];
                machine.vm().memory().read(gpa, &mut word).unwrap();
                assert_eq!(word, [0; 4], "{reset:?}: GPA {gpa:#x} before run {run}");
            }
            let record = run_once(&mut machine);
            if run == 1000 {
                assert_eq!(record, fresh, "{reset:?}: run 1000");
            } else {
                assert_eq!(record.console, b"00000001\n", "{reset:?}: run {run}");
            }
        }
    }
}

#[test]
fn without_a_memory_restore_the_counter_goes_on_and_without_a_register_reset_hlt_repeats() {
    let Some(kvm) = kvm_or_skip("without_a_restore_state_carries_over") else {
        return;
    };
    // Registers only (a restart point restores both, so reset them by hand here): the
    // counter kept in the image says 2. This is what the memory restore prevents.
    let mut machine = machine(&kvm, "mutate");
    let vcpu = &machine.vcpus_mut()[0];
    let (regs, sregs) = (vcpu.regs().unwrap(), vcpu.sregs().unwrap());
    run_once(&mut machine);
    let vcpu = &machine.vcpus_mut()[0];
    vcpu.set_sregs(&sregs).unwrap();
    vcpu.set_regs(&regs).unwrap();
    assert_eq!(run_once(&mut machine).console, b"00000002\n");

    // No reset at all: RIP is after the `hlt`, whose `jmp` goes back to the `cli` just
    // before it, so the run is one HLT exit and nothing else.
    let again = run_once(&mut machine);
    assert_eq!(again.exits, vec![Seen::Hlt]);
    assert!(again.console.is_empty());
}

#[test]
fn hlt_restarts_from_the_entry_every_time() {
    let Some(kvm) = kvm_or_skip("hlt_restarts_from_the_entry_every_time") else {
        return;
    };
    let mut machine = restartable_machine(&kvm, "hlt");
    let mut point = machine
        .restart_point(&kvm, RestartScope::Full, RegisterReset::SyncRegs)
        .unwrap();
    for _ in 0..200 {
        let record = run_once(&mut machine);
        assert_eq!(record.exits, vec![Seen::Hlt]);
        // `cli` at 0x1000, `hlt` at 0x1001: the exit leaves RIP after the `hlt`.
        assert_eq!(record.regs.rip, 0x1002);
        machine.restart(&mut point).unwrap();
        // The `hlt` guest (`FA F4 EB FC`: cli; hlt; jmp 0x1000) jumps back to the `cli` at
        // 0x1000 anyway, so the exits alone cannot tell a reset from none: enter the vCPU with
        // immediate_exit set, which loads the registers (kvm_dirty_regs) and returns before
        // running an instruction.
        let vcpu = &mut machine.vcpus_mut()[0];
        vcpu.stop_handle().kick();
        assert!(matches!(vcpu.run(), Err(RunError::Interrupted)));
        vcpu.acknowledge_kick();
        assert_eq!(vcpu.regs().unwrap().rip, 0x1000, "back at the entry");
    }
}

#[test]
fn a_machine_without_dirty_logging_cannot_make_a_restart_point() {
    let Some(kvm) = kvm_or_skip("a_machine_without_dirty_logging_cannot_make_a_restart_point")
    else {
        return;
    };
    let mut machine = machine(&kvm, "hlt");
    match machine.restart_point(&kvm, RestartScope::Full, RegisterReset::SyncRegs) {
        Err(Error::Restart(RestartError::NotLogged { slot: 0 })) => {}
        other => panic!("{other:?}"),
    }
    // A read-only extra slot needs no log; RAM still does.
    let mut machine = restartable_machine(&kvm, "readonly");
    assert!(
        machine
            .restart_point(&kvm, RestartScope::Full, RegisterReset::Ioctls)
            .is_ok()
    );
}
