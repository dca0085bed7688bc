//! Restart in place puts back more than registers and memory: a restarted guest cannot see
//! the previous run's FPU (MMX, SSE) state, MSRs, debug registers, XCR0, its pending events or
//! the interrupt user space had queued for it; the registers-only scope is shown to leave the
//! FPU, MSRs and debug registers as the run left them. (The interrupt controllers:
//! `restart_irqchip.rs`.)
#![cfg(target_arch = "x86_64")]

mod common;

use common::process::run;
use common::{kvm_or_skip, restartable_machine};
use rawkvm::arch::x86_64::msr::Msr;
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

/// `dirty_state`'s line on a fresh vCPU, and the one it prints after a run left its markers.
const FRESH_STATE: &str = "mm0 0000000000000000 xmm0 00000000000000000000000000000000 \
    sysenter_esp 0000000000000000 kernel_gs_base 0000000000000000 \
    dr0-3 00000000 00000000 00000000 00000000\n";
const DIRTIED_STATE: &str = "mm0 0BADC0DEFEEDFACE xmm0 0123456789ABCDEFFEDCBA9876543210 \
    sysenter_esp 000000005EE5E5E5 kernel_gs_base 00007FFF12345678 \
    dr0-3 D0D0D000 D1D1D100 D2D2D200 D3D3D300\n";

#[test]
fn a_restarted_guest_sees_none_of_the_last_runs_fpu_msrs_or_debug_registers() {
    if !common::kvm_present("restart dirty_state") {
        return;
    }
    let output = run(&["run", "dirty_state", "--repeat", "3"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        FRESH_STATE.repeat(3)
    );
    // The registers-only scope restores none of them: the test above could not pass without
    // the full restore.
    let output = run(&[
        "run",
        "dirty_state",
        "--repeat",
        "3",
        "--restart-scope",
        "registers",
    ]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        format!("{FRESH_STATE}{}", DIRTIED_STATE.repeat(2))
    );
}

#[test]
fn the_full_scope_puts_back_xcr0_msrs_and_debug_registers_and_the_registers_scope_does_not() {
    let Some(kvm) = kvm_or_skip("restart scopes") else {
        return;
    };
    const MSRS: [u32; 3] = [0x175, 0xc000_0102, 0x277]; // SYSENTER_ESP, KERNEL_GS_BASE, PAT
    for scope in [RestartScope::Full, RestartScope::Registers] {
        let mut machine = restartable_machine(&kvm, "hlt");
        let has_xcrs = machine.vm().check_extension(rawkvm::bindings::KVM_CAP_XCRS) > 0;
        let vcpu = &machine.vcpus_mut()[0];
        let entry = (
            vcpu.xcrs().unwrap(),
            vcpu.debugregs().unwrap(),
            vcpu.msrs(&MSRS).unwrap(),
        );
        let mut point = machine
            .restart_point(&kvm, scope, RegisterReset::SyncRegs)
            .unwrap();
        let outcome = machine
            .run(&mut Devices::new(Vec::new()), &mut NoObserver)
            .unwrap();
        assert_eq!(outcome, Outcome::Halted);
        // What a guest could have left: SSE enabled in XCR0, breakpoint addresses, MSRs.
        let vcpu = &machine.vcpus_mut()[0];
        let mut xcrs = entry.0;
        xcrs.xcrs[0].value |= 0b10;
        vcpu.set_xcrs(&xcrs).unwrap();
        let mut debugregs = entry.1;
        debugregs.db = [0xd000, 0xd100, 0xd200, 0xd300];
        vcpu.set_debugregs(&debugregs).unwrap();
        let msrs = [
            Msr::new(MSRS[0], 0x5ee5),
            Msr::new(MSRS[1], 0x7fff_1234_5000),
            Msr::new(MSRS[2], 0x0606_0606_0606_0606),
        ];
        vcpu.set_msrs(&msrs).unwrap();
        let restored = machine.restart(&mut point).unwrap();
        let vcpu = &machine.vcpus_mut()[0];
        let now = (
            vcpu.xcrs().unwrap(),
            vcpu.debugregs().unwrap(),
            vcpu.msrs(&MSRS).unwrap(),
        );
        let by_ioctl = if point.register_reset() == RegisterReset::Ioctls {
            3
        } else {
            0
        };
        match scope {
            RestartScope::Full => {
                assert_eq!(now, entry, "all three back");
                // XSAVE, XCRS, MSRS, DEBUGREGS: no irqchip, so no LAPIC or MP state.
                assert_eq!(restored.vcpu_ioctls, by_ioctl + 3 + usize::from(has_xcrs));
                let unrestored = point.unrestored_msrs();
                assert!(unrestored.contains(&0x10), "IA32_TSC: {unrestored:x?}");
                if common::backend() == "kvm_pvm" {
                    // MSR_KVM_ASYNC_PF_INT: refused at its default without an in-kernel LAPIC.
                    assert_eq!(unrestored, [0x10, 0x4b56_4d06]);
                } else {
                    eprintln!("{}: unrestored MSRs {unrestored:x?}", common::backend());
                }
            }
            RestartScope::Registers => {
                assert_eq!(now, (xcrs, debugregs, msrs.to_vec()), "none put back");
                assert_eq!(restored.vcpu_ioctls, by_ioctl);
                assert!(point.unrestored_msrs().is_empty());
            }
        }
    }
}
