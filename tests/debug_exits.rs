//! `KVM_EXIT_DEBUG` through `KVM_SET_GUEST_DEBUG` (hardware breakpoints, single-stepping,
//! software breakpoints). What PVM cannot do is reported as `SKIPPED: <reason>`. (The entry
//! failure a VMX host gives for invalid guest state is `guest_faults.rs`'s.)
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{backend, kvm_or_skip, machine};
use rawkvm::bindings::{
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP, KVM_GUESTDBG_USE_SW_BP,
    kvm_guest_debug, kvm_guest_debug_arch,
};
use rawkvm::devices::{Claim, Devices};
use rawkvm::exit::{DebugExit, Exit};
use rawkvm::run_loop::{Observer, Outcome};

/// The debug exits seen, and how many exits in all.
#[derive(Debug, Default)]
struct DebugExits {
    debug: Vec<DebugExit>,
    exits: usize,
}

impl Observer for DebugExits {
    fn exit(&mut self, _vcpu: u32, exit: &Exit<'_>, _dispatch: Option<Claim>) {
        self.exits += 1;
        if let Exit::Debug(debug) = exit {
            self.debug.push(*debug);
        }
    }
}

fn guest_debug(control: u32, debugreg: [u64; 8]) -> kvm_guest_debug {
    kvm_guest_debug {
        control,
        pad: 0,
        arch: kvm_guest_debug_arch { debugreg },
    }
}

/// Where `int3.S` keeps its `int3` (after two 6-byte `SET_IVT` moves).
const INT3_AT: u64 = 0x100C;

#[test]
fn a_hardware_breakpoint_stops_the_run_with_a_debug_exit() {
    let Some(kvm) = kvm_or_skip("a_hardware_breakpoint_stops_the_run_with_a_debug_exit") else {
        return;
    };
    println!("KVM backend {}", backend());
    let mut machine = machine(&kvm, "int3");
    // DR0 = the int3's address, DR7 = L0 (local enable of DR0, execute, 1 byte).
    let debug = guest_debug(
        KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP,
        [INT3_AT, 0, 0, 0, 0, 0, 0, 0x1],
    );
    machine.vcpus_mut()[0].set_guest_debug(&debug).unwrap();
    let mut devices = Devices::new(Vec::new());
    let mut seen = DebugExits::default();
    let outcome = machine.run(&mut devices, &mut seen).unwrap();
    assert_eq!(outcome, Outcome::Debug);
    assert_eq!(
        seen.exits, 1,
        "the breakpoint comes before any console exit"
    );
    let hit = seen.debug[0];
    assert_eq!((hit.exception, hit.pc), (1, INT3_AT), "{hit:?}");
    assert_eq!(
        hit.breakpoint(),
        Some(0),
        "DR6 says DR0 matched: {:#x}",
        hit.dr6
    );
    assert!(!hit.single_step());

    // Disarm and go on: the guest's own int3 handler runs, then the code after it.
    let off = guest_debug(0, [0; 8]);
    machine.vcpus_mut()[0].set_guest_debug(&off).unwrap();
    let outcome = machine.run(&mut devices, &mut seen).unwrap();
    assert_eq!(outcome, Outcome::Halted);
    assert_eq!(devices.console.into_sink().unwrap(), b"int3 guest\nafter\n");
}

#[test]
fn single_stepping_gives_one_debug_exit_per_instruction() {
    let Some(kvm) = kvm_or_skip("single_stepping_gives_one_debug_exit_per_instruction") else {
        return;
    };
    // The `hlt` guest: cli (0x1000), hlt (0x1001), jmp back (0x1002).
    let mut machine = machine(&kvm, "hlt");
    let step = guest_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, [0; 8]);
    machine.vcpus_mut()[0].set_guest_debug(&step).unwrap();
    let mut devices = Devices::new(Vec::new());
    let mut seen = DebugExits::default();
    assert_eq!(
        machine.run(&mut devices, &mut seen).unwrap(),
        Outcome::Debug
    );
    let first = seen.debug[0];
    assert_eq!(first.exception, 1);
    assert!(first.single_step(), "DR6.BS: {:#x}", first.dr6);
    assert_eq!(first.pc, 0x1001, "stopped after `cli`");
    assert_eq!(
        machine.run(&mut devices, &mut seen).unwrap(),
        Outcome::Debug
    );
    let second = seen.debug[1];
    assert!(second.single_step());
    assert!(
        second.pc > first.pc,
        "the next step moved on: {:#x} -> {:#x}",
        first.pc,
        second.pc
    );
    // A stepped `hlt` completes (KVM skips it and reports the step) instead of halting.
    assert_eq!(second.pc, 0x1002, "stopped after `hlt`");
    println!(
        "{}: single steps at {:#x} then {:#x}",
        backend(),
        first.pc,
        second.pc
    );
}

#[test]
fn software_breakpoints_exit_where_the_backend_intercepts_int3() {
    let Some(kvm) = kvm_or_skip("software_breakpoints_exit_where_the_backend_intercepts_int3")
    else {
        return;
    };
    let mut machine = machine(&kvm, "int3");
    let debug = guest_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_SW_BP, [0; 8]);
    machine.vcpus_mut()[0].set_guest_debug(&debug).unwrap();
    let mut devices = Devices::new(Vec::new());
    let mut seen = DebugExits::default();
    match machine.run(&mut devices, &mut seen).unwrap() {
        Outcome::Debug => {
            let hit = seen.debug[0];
            assert_eq!((hit.exception, hit.pc), (3, INT3_AT), "{hit:?}");
        }
        Outcome::Halted => {
            // The guest's handler ran: the backend never intercepted the int3.
            assert!(seen.debug.is_empty());
            assert_eq!(devices.console.into_sink().unwrap(), b"int3 guest\nafter\n");
            common::skip(format_args!(
                "KVM_GUESTDBG_USE_SW_BP does not intercept a real-mode int3 on {} \
                 (measured); hardware breakpoints and single steps are tested instead",
                backend()
            ));
        }
        other => panic!("{other:?}"),
    }
}
