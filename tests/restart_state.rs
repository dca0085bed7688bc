//! Restart in place puts back more than registers and memory: a restarted guest cannot see
//! the previous run's FPU (MMX) state, its pending events or the interrupt user space had
//! queued for it.
#![cfg(target_arch = "x86_64")]

mod common;

use common::process::run;
use common::{kvm_or_skip, restartable_machine};
use rawkvm::devices::Devices;
use rawkvm::machine::restart::{RegisterReset, RestartScope};
use rawkvm::run_loop::{NoObserver, Outcome};

#[test]
fn a_restarted_guest_reads_a_zero_fpu_not_the_last_runs() {
    if !common::kvm_present("restart fpu") {
        return;
    }
    // Without the XSAVE restore runs 2 and 3 print the marker run 1 left, 0BADC0DEFEEDFACE.
    let output = run(&["run", "dirty_fpu", "--repeat", "3"]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "0000000000000000\n".repeat(3)
    );
}

#[test]
fn the_queued_interrupt_is_queued_again_for_every_run() {
    if !common::kvm_present("restart queued interrupt") {
        return;
    }
    // Without it run 2 waits forever for an interrupt nobody injects (status 7 here).
    let output = run(&["run", "irq_window", "--repeat", "3", "--timeout", "20s"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "irq 20\n".repeat(3)
    );
}

#[test]
fn pending_events_are_reset_with_either_register_reset() {
    let Some(kvm) = kvm_or_skip("restart events") else {
        return;
    };
    for reset in [RegisterReset::SyncRegs, RegisterReset::Ioctls] {
        let mut machine = restartable_machine(&kvm, "hlt");
        let entry = machine.vcpus_mut()[0].registers().events().unwrap();
        let mut point = machine
            .restart_point(&kvm, RestartScope::Full, reset)
            .unwrap();
        let outcome = machine
            .run(&mut Devices::new(Vec::new()), &mut NoObserver)
            .unwrap();
        assert_eq!(outcome, Outcome::Halted);
        // An NMI left pending by the run, and MM0 dirtied through XSAVE (XMM0 bytes too).
        let vcpu = &mut machine.vcpus_mut()[0];
        let mut events = entry;
        events.nmi.pending = 1;
        events.flags |= rawkvm::bindings::KVM_VCPUEVENT_VALID_NMI_PENDING;
        vcpu.set_events(&events).unwrap();
        let mut xsave = vcpu.xsave().unwrap();
        xsave.region[8] = 0x5555_5555;
        xsave.region[128] |= 1;
        vcpu.set_xsave(&xsave).unwrap();
        machine.restart(&mut point).unwrap();
        // With sync regs the events wait in kvm_run.s.regs for the next KVM_RUN, and reading
        // them through `registers()` reads that copy; with the ioctls they are set already.
        // (Running the guest with the NMI still pending would jump through the IVT at 0.)
        let vcpu = &mut machine.vcpus_mut()[0];
        let events = vcpu.registers().events().unwrap();
        assert_eq!(events, entry, "{reset:?}: the NMI is gone");
        assert_ne!(vcpu.xsave().unwrap().region[8], 0x5555_5555, "{reset:?}");
    }
}
