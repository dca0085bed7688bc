//! Registers read and written in place in `kvm_run.s.regs` (`KVM_CAP_SYNC_REGS`).
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{guest_machine, kvm_or_skip};
use rawkvm::arch::x86_64::sync_regs::SyncRegs;
use rawkvm::bindings::kvm_regs;
use rawkvm::exit::Exit;
use rawkvm::kvm::vcpu::{RunError, Vcpu};
use rawkvm::machine::Machine;

/// A machine running `guest`, if KVM is there and can sync every register set; `None` after
/// a SKIPPED line otherwise.
fn machine_or_skip(test: &str, guest: &str, param: Option<u32>) -> Option<Machine> {
    let kvm = kvm_or_skip(test)?;
    let mut machine = guest_machine(&kvm, guest, |config| config.param = param).unwrap();
    let supported = machine.vcpus_mut()[0].supported_sync_regs();
    if !supported.contains(SyncRegs::all()) {
        common::skip(format_args!(
            "{test}: KVM_CAP_SYNC_REGS gives only {supported:?}"
        ));
        return None;
    }
    Some(machine)
}

/// Is the exit a HLT? (The exit borrows the vCPU; this ends the borrow.)
fn run_to_next_exit(vcpu: &mut Vcpu) -> bool {
    match vcpu.run() {
        Ok(Exit::Hlt) => true,
        Ok(Exit::Io(_)) => false,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn with_valid_regs_every_exit_reads_the_registers_from_the_page() {
    let test = "with_valid_regs_every_exit_reads_the_registers_from_the_page";
    let Some(mut machine) = machine_or_skip(test, "pio_loop", Some(40)) else {
        return;
    };
    let vcpu = &mut machine.vcpus_mut()[0];
    assert_eq!(
        vcpu.sync_regs_enabled(),
        SyncRegs::empty(),
        "off by default"
    );
    vcpu.enable_sync_regs(SyncRegs::all()).unwrap();
    assert_eq!(vcpu.sync_regs_enabled(), SyncRegs::all());
    // Current at once, before any run: copied in by the ioctls.
    assert_eq!(vcpu.registers().regs().unwrap(), vcpu.regs().unwrap());
    assert_eq!(vcpu.registers().regs().unwrap().rip, 0x1000);

    let mut exits = 0;
    loop {
        let halted = run_to_next_exit(vcpu);
        exits += 1;
        let in_place = vcpu.registers().regs().unwrap();
        let by_ioctl = vcpu.regs().unwrap();
        assert_eq!(in_place, by_ioctl, "exit {exits}");
        assert_eq!(vcpu.registers().sregs().unwrap(), vcpu.sregs().unwrap());
        if !halted {
            // pio_loop: EBX is the index of the byte just written, which is AL.
            assert_eq!(in_place.rbx, exits - 1);
            assert_eq!(in_place.rax & 0xFF, (exits - 1) & 0xFF);
        }
        // The view reads the page, not the kernel: an ioctl write it does not see yet proves
        // it (then put the real values back).
        let scribble = kvm_regs {
            rflags: 2,
            rip: 0xDEAD,
            ..kvm_regs::default()
        };
        vcpu.set_regs(&scribble).unwrap();
        assert_eq!(vcpu.registers().regs().unwrap(), in_place, "read in place");
        vcpu.set_regs(&in_place).unwrap();
        if halted {
            break;
        }
    }
    assert_eq!(exits, 41, "40 OUTs and the HLT");
}

#[test]
fn registers_written_in_place_are_loaded_by_the_next_run() {
    let test = "registers_written_in_place_are_loaded_by_the_next_run";
    let Some(mut machine) = machine_or_skip(test, "hlt", None) else {
        return;
    };
    let vcpu = &mut machine.vcpus_mut()[0];
    let mut regs = vcpu.registers().regs().unwrap();
    regs.rip = 0x1001; // straight to the `hlt`, past the `cli`
    regs.rax = 0x1234_5678;
    let mut sregs = vcpu.registers().sregs().unwrap();
    sregs.es.selector = 0x0800;
    sregs.es.base = 0x8000;
    {
        let mut registers = vcpu.registers();
        registers.set_regs(&regs).unwrap();
        registers.set_sregs(&sregs).unwrap();
        assert_eq!(
            registers.regs().unwrap(),
            regs,
            "a read sees the pending write"
        );
    }
    assert_eq!(
        vcpu.regs().unwrap().rip,
        0x1000,
        "not loaded before KVM_RUN"
    );
    assert!(run_to_next_exit(vcpu));
    let after = vcpu.regs().unwrap();
    assert_eq!((after.rip, after.rax), (0x1002, 0x1234_5678));
    assert_eq!(vcpu.sregs().unwrap().es.base, 0x8000);
    // Loaded, so no longer pending: with kvm_valid_regs off, reads go to the kernel again.
    assert_eq!(vcpu.registers().regs().unwrap(), after);
}

#[test]
fn an_interrupted_run_still_loads_and_stores_the_page() {
    let test = "an_interrupted_run_still_loads_and_stores_the_page";
    let Some(mut machine) = machine_or_skip(test, "hlt", None) else {
        return;
    };
    let vcpu = &mut machine.vcpus_mut()[0];
    let mut regs = vcpu.registers().regs().unwrap();
    regs.rdx = 0xD0D0;
    vcpu.registers().set_regs(&regs).unwrap();
    vcpu.enable_sync_regs(SyncRegs::REGS).unwrap();
    // immediate_exit: KVM_RUN returns EINTR before running one instruction, but after
    // loading kvm_dirty_regs and before storing kvm_valid_regs.
    vcpu.stop_handle().kick();
    assert!(matches!(vcpu.run(), Err(RunError::Interrupted)));
    vcpu.acknowledge_kick();
    assert_eq!(
        vcpu.regs().unwrap(),
        regs,
        "loaded by the interrupted KVM_RUN"
    );
    assert_eq!(vcpu.registers().regs().unwrap(), regs);
}
