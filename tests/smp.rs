//! Several vCPUs (`docs/TEST-PLAN.md` §8 C 26): one thread each, all entering the same image with
//! their index in ESI, the devices shared; the run ends when all have halted, or at the first
//! fault with the others stopped; more vCPUs than `KVM_CAP_MAX_VCPUS` is an error naming the cap.
// These run the embedded x86 real-mode guests.
#![cfg(target_arch = "x86_64")]

mod common;

use std::sync::Mutex;
use std::time::Instant;

use common::kvm_or_skip;
use common::process::run;
use nix::errno::Errno;
use rawkvm::Kvm;
use rawkvm::devices::Devices;
use rawkvm::error::{Error, ErrorKind, GuestFault};
use rawkvm::machine::Machine;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::run_loop::NoObserver;

/// A machine for `guest` on `vcpus` vCPUs.
fn machine(kvm: &Kvm, guest: &str, vcpus: u32) -> Result<Machine, Error> {
    common::guest_machine(kvm, guest, |config| config.vcpus = vcpus)
}

/// `KVM_CAP_MAX_VCPUS` for a VM of this host.
fn max_vcpus(kvm: &Kvm) -> u32 {
    let vm = kvm.create_vm().unwrap();
    vm.max_vcpus().expect("KVM_CAP_MAX_VCPUS")
}

/// What the smp guest prints with `vcpus` vCPUs, sorted: `'0' + (i & 0x3F)` for each i.
fn expected_smp_bytes(vcpus: u32) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..vcpus).map(|i| b'0' + (i & 0x3F) as u8).collect();
    bytes.sort_unstable();
    bytes
}

/// Runs `machine` with shared devices and returns its console bytes, sorted.
fn run_sorted(machine: &mut Machine) -> Vec<u8> {
    let devices = Mutex::new(Devices::new(Vec::new()));
    machine
        .run_all(&devices, &NoObserver, None, &RunControl::new())
        .unwrap();
    let mut bytes = devices.into_inner().unwrap().console.into_sink().unwrap();
    bytes.sort_unstable();
    bytes
}

#[test]
fn sixty_four_vcpus_each_print_their_byte_exactly_once() {
    let Some(kvm) = kvm_or_skip("sixty_four_vcpus") else {
        return;
    };
    let mut machine = machine(&kvm, "smp", 64).unwrap();
    assert_eq!(run_sorted(&mut machine), expected_smp_bytes(64));
}

#[test]
fn the_cli_runs_sixty_four_vcpus() {
    if !common::kvm_present("the_cli_runs_sixty_four_vcpus") {
        return;
    }
    let output = run(&["run", "smp", "--vcpus", "64"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let mut bytes = output.stdout;
    bytes.sort_unstable();
    assert_eq!(bytes, expected_smp_bytes(64));
}

#[test]
fn kvm_cap_max_vcpus_vcpus_all_run() {
    let Some(kvm) = kvm_or_skip("kvm_cap_max_vcpus_vcpus_all_run") else {
        return;
    };
    let max = max_vcpus(&kvm);
    let started = Instant::now();
    let mut machine = machine(&kvm, "smp", max).unwrap();
    let built = started.elapsed();
    assert_eq!(run_sorted(&mut machine), expected_smp_bytes(max));
    println!(
        "{max} vCPUs (backend {}): built in {built:?}, built and ran in {:?}",
        common::backend(),
        started.elapsed()
    );
}

#[test]
fn one_vcpu_more_than_the_cap_fails_naming_it() {
    let Some(kvm) = kvm_or_skip("one_vcpu_more_than_the_cap") else {
        return;
    };
    let max = max_vcpus(&kvm);
    let error = machine(&kvm, "smp", max + 1).unwrap_err();
    match &error {
        Error::CreateVcpu {
            id,
            errno: Errno::EINVAL,
            max_vcpus: Some(cap),
        } => assert_eq!((*id, *cap), (max, max)),
        other => panic!("{other:?}"),
    }
    assert_eq!(error.kind(), ErrorKind::Setup);
    assert_eq!(
        error.to_string(),
        format!(
            "cannot create vCPU {max}: KVM_CREATE_VCPU failed: EINVAL (Invalid argument) \
             (KVM_CAP_MAX_VCPUS is {max}; ask for fewer vCPUs)"
        )
    );
    // The CLI says the same with status 5.
    let output = run(&["run", "smp", "--vcpus", &(max + 1).to_string()]);
    assert_eq!(output.status.code(), Some(5), "{output:?}");
    assert!(
        String::from_utf8_lossy(&output.stderr).contains(&format!("KVM_CAP_MAX_VCPUS is {max}")),
        "{output:?}"
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("rawkvm: error: {error}\n"),
        "the whole of stderr is the library's message"
    );
}

#[test]
fn the_first_fault_stops_the_spinning_vcpus() {
    let Some(kvm) = kvm_or_skip("the_first_fault_stops_the_spinning_vcpus") else {
        return;
    };
    for vcpus in [1, 4, 16] {
        let mut machine = machine(&kvm, "smp_fault", vcpus).unwrap();
        let devices = Mutex::new(Devices::new(Vec::new()));
        let error = machine
            .run_all(&devices, &NoObserver, None, &RunControl::new())
            .unwrap_err();
        match &error {
            Error::GuestFault {
                vcpu: 0,
                fault: GuestFault::InternalError { suberror: 1, .. },
            } => {}
            other => panic!("{vcpus} vCPUs: {other:?}"),
        }
        assert_eq!(error.kind(), ErrorKind::GuestFault);
        // The spinning vCPUs were stopped in their loop: at `test esi, esi` (0x1000, not
        // entered yet), `jz` (0x1003) or `jmp $` (0x1005).
        for vcpu in &machine.vcpus_mut()[1..] {
            let rip = rawkvm::arch::instruction_pointer(vcpu).unwrap();
            assert!(
                (0x1000..0x1010).contains(&rip),
                "vCPU {}: {rip:#x}",
                vcpu.id()
            );
            assert!(
                [0x1000, 0x1003, 0x1005].contains(&rip),
                "vCPU {}: {rip:#x}",
                vcpu.id()
            );
        }
    }
    if common::kvm_present("the CLI's first fault") {
        let output = run(&["run", "smp_fault", "--vcpus", "8"]);
        assert_eq!(output.status.code(), Some(6), "{output:?}");
        // The flight recorder comes first; the error is the last line.
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.lines().last().unwrap_or_default().starts_with(
                "rawkvm: error: vCPU 0: KVM internal error (KVM_EXIT_INTERNAL_ERROR): \
                 KVM_INTERNAL_ERROR_EMULATION (suberror 1)"
            ),
            "{output:?}"
        );
    }
}

/// A device that panics (a bug) on the 100th write it sees.
#[derive(Default)]
struct PanicsOnce {
    writes: u32,
}

impl rawkvm::devices::IoHandler for PanicsOnce {
    fn pio_read(&mut self, _: u16, _: &mut [u8]) -> std::io::Result<rawkvm::devices::bus::Claim> {
        Ok(rawkvm::devices::bus::Claim::Unclaimed)
    }

    fn pio_write(&mut self, _: u16, _: &[u8]) -> std::io::Result<rawkvm::devices::bus::Claim> {
        self.writes += 1;
        assert!(self.writes != 100, "a device bug");
        Ok(rawkvm::devices::bus::Claim::Claimed)
    }

    fn mmio_read(&mut self, _: u64, _: &mut [u8]) -> std::io::Result<rawkvm::devices::bus::Claim> {
        Ok(rawkvm::devices::bus::Claim::Unclaimed)
    }

    fn mmio_write(&mut self, _: u64, _: &[u8]) -> std::io::Result<rawkvm::devices::bus::Claim> {
        Ok(rawkvm::devices::bus::Claim::Unclaimed)
    }
}

/// A panic on one vCPU thread (always a bug) stops the other vCPUs and reaches the caller,
/// instead of leaving the run waiting for a thread that will never report.
#[test]
fn a_panicking_device_stops_the_run_and_the_panic_reaches_the_caller() {
    let Some(kvm) = kvm_or_skip("a_panicking_device_stops_the_run") else {
        return;
    };
    let mut machine = machine(&kvm, "spin_out", 4).unwrap();
    let devices = Mutex::new(PanicsOnce::default());
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        machine.run_all(&devices, &NoObserver, None, &RunControl::new())
    }));
    let payload = outcome.expect_err("the panic must reach the caller");
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str));
    assert_eq!(message, Some("a device bug"));
}
