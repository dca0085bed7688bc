//! Guest faults end the run with status 6 and a message naming the exit (`docs/TEST-PLAN.md`
//! §8 B 15, 17, 18), and never take rawkvm down with them.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use common::kvm_or_skip;
use common::process::run;
use common::status;
use rawkvm::arch;
use rawkvm::devices::Devices;
use rawkvm::error::{Error, ErrorKind, GuestFault};
use rawkvm::exit::Exit;
use rawkvm::run_loop::{NoObserver, Outcome};

#[test]
fn a_triple_fault_exits_6_naming_kvm_exit_shutdown() {
    if kvm_or_skip("a_triple_fault_exits_6").is_none() {
        return;
    }
    let output = run(&["run", "triple_fault"]);
    assert_eq!(
        output.status.code(),
        Some(status::GUEST_FAULT),
        "{output:?}"
    );
    // The error is the last line (the flight recorder before it is tests/trace_cli.rs's).
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.lines().last(),
        Some("rawkvm: error: vCPU 0: guest triple-faulted (KVM_EXIT_SHUTDOWN)"),
        "{stderr}"
    );
}

#[test]
fn an_emulation_failure_exits_6_with_its_suberror_and_data() {
    if kvm_or_skip("an_emulation_failure_exits_6").is_none() {
        return;
    }
    let output = run(&["run", "emulation_failure"]);
    assert_eq!(
        output.status.code(),
        Some(status::GUEST_FAULT),
        "{output:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let error = stderr.lines().last().unwrap_or_default();
    assert!(
        error.starts_with(
            "rawkvm: error: vCPU 0: KVM internal error (KVM_EXIT_INTERNAL_ERROR): \
             KVM_INTERNAL_ERROR_EMULATION (suberror 1), data: ["
        ),
        "{stderr}"
    );
    assert!(
        stderr.starts_with("rawkvm: flight recorder: the last 1 of 1 exits before the fault:\n"),
        "{stderr}"
    );
}

/// `KVM_RUN` again after an internal error does no harm (the selftests' pattern): the same
/// failure again, and the vCPU's registers still readable.
#[test]
fn running_again_after_an_internal_error_is_harmless() {
    let Some(kvm) = kvm_or_skip("running_again_after_an_internal_error") else {
        return;
    };
    let mut machine = common::machine(&kvm, "emulation_failure");
    let vcpu = &mut machine.vcpus_mut()[0];
    for attempt in 1..=2 {
        match vcpu.run() {
            Ok(Exit::InternalError { suberror: 1, .. }) => {}
            other => panic!("attempt {attempt}: {other:?}"),
        }
    }
    assert!(arch::instruction_pointer(vcpu).is_ok());
    // Where the far jump went, FFFF:0010, whose code KVM cannot fetch.
    assert_eq!(arch::instruction_pointer(vcpu).unwrap(), 0x10);
    assert_eq!(vcpu.sregs().unwrap().cs.selector, 0xFFFF);
}

/// §8 B 17: an unusable TR in real mode. VMX checks the guest state at entry and refuses it
/// (`KVM_EXIT_FAIL_ENTRY`, reason `0x80000021`), or KVM's emulation of invalid state gives up
/// (`KVM_EXIT_INTERNAL_ERROR`); PVM accepts it and runs the guest (measured). The message of
/// a failed entry is also checked on a synthetic fault below.
#[test]
fn an_unusable_task_register_fails_entry_where_the_backend_checks_it() {
    let Some(kvm) = kvm_or_skip("an_unusable_task_register_fails_entry") else {
        return;
    };
    let mut machine = common::machine(&kvm, "hlt");
    let vcpu = &mut machine.vcpus_mut()[0];
    let mut sregs = vcpu.sregs().unwrap();
    sregs.tr.unusable = 1;
    vcpu.set_sregs(&sregs).unwrap();
    let error = match machine.run(&mut Devices::new(Vec::new()), &mut NoObserver) {
        Err(error) => error,
        Ok(Outcome::Halted) => {
            common::skip(format_args!(
                "KVM_EXIT_FAIL_ENTRY: backend {} accepted an unusable TR in real mode and ran \
                 the guest to its HLT, so entry never failed",
                common::backend()
            ));
            return;
        }
        Ok(other) => panic!("{other:?}"),
    };
    assert_eq!(error.kind(), ErrorKind::GuestFault, "{error}");
    let message = error.to_string();
    match &error {
        Error::GuestFault {
            vcpu: 0,
            fault:
                GuestFault::FailEntry {
                    hardware_entry_failure_reason,
                    ..
                },
        } => {
            assert_eq!(*hardware_entry_failure_reason, 0x8000_0021, "{message}");
            assert!(
                message.contains("VM-entry failure due to invalid guest state (33)"),
                "{message}"
            );
        }
        Error::GuestFault {
            vcpu: 0,
            fault: GuestFault::InternalError { suberror, data },
        } => {
            // A named suberror, at most 16 words of data, and a message that says both.
            let name = rawkvm::bindings::internal_error_name(*suberror)
                .unwrap_or_else(|| panic!("unknown suberror: {message}"));
            assert!(data.len() <= 16, "{message}");
            assert!(
                message.contains(&format!(
                    "(KVM_EXIT_INTERNAL_ERROR): {name} (suberror {suberror})"
                )),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// What a failed entry would say, wherever the backend produces one.
#[test]
fn a_failed_entry_is_reported_with_its_reason_and_cpu() {
    let error = Error::GuestFault {
        vcpu: 0,
        fault: GuestFault::FailEntry {
            hardware_entry_failure_reason: 0x8000_0021,
            cpu: 1,
        },
    };
    assert_eq!(error.kind(), ErrorKind::GuestFault);
    assert_eq!(
        error.to_string(),
        "vCPU 0: VM entry failed (KVM_EXIT_FAIL_ENTRY): hardware_entry_failure_reason \
         0x80000021 (VMX: VM-entry failure due to invalid guest state (33)) on host CPU 1"
    );
}

#[test]
fn a_fault_with_the_kernels_irqchip_shows_its_controllers() {
    let Some(_kvm) = kvm_or_skip("a_fault_with_the_kernels_irqchip_shows_its_controllers") else {
        return;
    };
    let output = run(&["run", "triple_fault", "--irqchip", "kernel"]);
    assert_eq!(
        output.status.code(),
        Some(status::GUEST_FAULT),
        "{output:?}"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    // The flight recorder (2 lines), the controllers (5), the error.
    assert_eq!(lines.len(), 8, "{stderr}");
    assert_eq!(
        lines[2],
        "rawkvm: the in-kernel interrupt controllers at the fault (KVM_GET_IRQCHIP, KVM_GET_PIT2):"
    );
    assert!(lines[3].starts_with("  PIC master irq_base=0x"), "{stderr}");
    assert!(lines[4].starts_with("  PIC slave irq_base=0x"), "{stderr}");
    // The IOAPIC sits at its architectural address.
    assert!(
        lines[5].starts_with("  IOAPIC base=0xfec00000 id=0 irr=0x"),
        "{stderr}"
    );
    assert!(lines[6].starts_with("  PIT channel 0: count="), "{stderr}");
    assert!(lines[6].contains(", channel 1: count=") && lines[6].contains(", channel 2: count="));
    assert_eq!(
        lines[7],
        "rawkvm: error: vCPU 0: guest triple-faulted (KVM_EXIT_SHUTDOWN)"
    );
    // Without an irqchip there is nothing to show.
    let output = run(&["run", "triple_fault"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("interrupt controllers"), "{stderr}");
}
