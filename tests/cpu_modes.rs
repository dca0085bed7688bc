//! The CPU modes (`--mode protected|long|user`, set up by the host with `KVM_SET_SREGS`) and
//! their guests on the real `/dev/kvm`: exact exit sequences, console bytes, the entry state,
//! and exceptions reported by rawkvm's stub.
//!
//! What differs between KVM backends (HOST-NOTES "CPU modes"): on PVM (`kvm_pvm`) CPL 0 code
//! is emulated and CPL 3 code runs natively, on VMX/SVM both run natively; no test here
//! depends on speed, so each passes on all three and says which backend it saw.
// The guests are x86 code.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{Recorder, Seen, backend, guest_machine, kvm_or_skip};
use rawkvm::arch::x86_64::CpuMode;
use rawkvm::devices::Devices;
use rawkvm::error::{Error, GuestFault};
use rawkvm::machine::MachineConfig;
use rawkvm::run_loop::Outcome;

/// The MMIO console and the exit device (`asm-guests/common64.inc`).
const MMIO_CONSOLE: u64 = 0xD000_0000;
const EXIT_DEVICE: u64 = 0xD000_0008;

/// Runs embedded guest `name` (its own setup, then `adjust`) on vCPU 0: outcome, exits and
/// console bytes.
fn run_guest(
    kvm: &rawkvm::Kvm,
    name: &str,
    adjust: impl FnOnce(&mut MachineConfig),
) -> (Result<Outcome, Error>, Vec<Seen>, Vec<u8>) {
    let mut machine = guest_machine(kvm, name, adjust).unwrap();
    let mut devices = Devices::new(Vec::new());
    let mut recorder = Recorder::default();
    let outcome = machine.run(&mut devices, &mut recorder);
    (
        outcome,
        recorder.exits,
        devices.console.into_sink().unwrap(),
    )
}

/// One `out` exit per byte of `text` to the debug console.
fn outs(text: &str) -> Vec<Seen> {
    text.bytes().map(|byte| Seen::out(0xE9, byte)).collect()
}

/// One MMIO console write exit per byte of `text`.
fn mmio_writes(text: &str) -> Vec<Seen> {
    text.bytes()
        .map(|byte| Seen::Mmio {
            addr: MMIO_CONSOLE,
            is_write: true,
            data: vec![byte],
        })
        .collect()
}

/// The exit device's write of `code`.
fn exit_write(code: u32) -> Seen {
    Seen::Mmio {
        addr: EXIT_DEVICE,
        is_write: true,
        data: code.to_le_bytes().to_vec(),
    }
}

#[test]
fn protected_hello_prints_from_32bit_code_and_halts() {
    let Some(kvm) = kvm_or_skip("protected_hello") else {
        return;
    };
    let (outcome, exits, console) = run_guest(&kvm, "protected_hello", |_| {});
    let text = "Hello from protected mode!\n";
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(exits, [outs(text), vec![Seen::Hlt]].concat());
    assert_eq!(console, text.as_bytes());
    eprintln!("backend {}: protected mode ran", backend());
}

#[test]
fn long_hello_prints_from_64bit_cpl0_code_and_halts() {
    let Some(kvm) = kvm_or_skip("long_hello") else {
        return;
    };
    let (outcome, exits, console) = run_guest(&kvm, "long_hello", |_| {});
    let text = "Hello from long mode!\n";
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(exits, [outs(text), vec![Seen::Hlt]].concat());
    assert_eq!(console, text.as_bytes());
}

#[test]
fn user_hello_prints_through_the_mmio_console_and_ends_through_the_exit_device() {
    let Some(kvm) = kvm_or_skip("user_hello") else {
        return;
    };
    let (outcome, exits, console) = run_guest(&kvm, "user_hello", |_| {});
    let text = "Hello from user mode!\n";
    assert_eq!(outcome.unwrap(), Outcome::Finished(0));
    assert_eq!(exits, [mmio_writes(text), vec![exit_write(0)]].concat());
    assert_eq!(console, text.as_bytes());
}

#[test]
fn compute_gives_the_same_sum_at_cpl3_and_cpl0() {
    let Some(kvm) = kvm_or_skip("compute") else {
        return;
    };
    // 1 + 2 + ... + 1000 = 500500 = 0x7A314.
    let text = "000000000007A314\n";
    for mode in [CpuMode::User, CpuMode::Long] {
        let (outcome, exits, console) = run_guest(&kvm, "compute", |config| {
            config.param = Some(1000);
            config.entry = config.entry.in_mode(mode);
        });
        assert_eq!(outcome.unwrap(), Outcome::Finished(0), "{mode}");
        assert_eq!(exits, [mmio_writes(text), vec![exit_write(0)]].concat());
        assert_eq!(console, text.as_bytes(), "{mode}");
    }
}

#[test]
fn the_compute_loops_of_real_and_protected_mode_agree() {
    let Some(kvm) = kvm_or_skip("compute_real") else {
        return;
    };
    for name in ["compute_real", "compute_protected"] {
        let (outcome, exits, console) = run_guest(&kvm, name, |c| c.param = Some(1000));
        assert_eq!(outcome.unwrap(), Outcome::Halted, "{name}");
        assert_eq!(exits, [outs("0007A314\n"), vec![Seen::Hlt]].concat());
        assert_eq!(console, b"0007A314\n", "{name}");
    }
}

#[test]
fn a_page_fault_at_cpl3_is_reported_with_its_address() {
    let Some(kvm) = kvm_or_skip("user_fault") else {
        return;
    };
    let (outcome, exits, console) = run_guest(&kvm, "user_fault", |_| {});
    let Err(Error::GuestFault { vcpu: 0, fault }) = outcome else {
        panic!("{outcome:?}");
    };
    assert_eq!(
        fault,
        GuestFault::CpuException {
            vector: 14,
            mnemonic: "#PF",
            name: "page fault",
            error_code: Some(0x6),
            rip: 0x1005,
            cpl: 3,
            cr2: Some(0x4000_0000),
        }
    );
    // The stub's write to the exit device (AL: the report mark's low byte, 0x45) is the only
    // exit: the fault itself never leaves the kernel.
    assert_eq!(exits, [Seen::out(0xF4, 0x45)]);
    assert!(console.is_empty());
    eprintln!("backend {}: #PF delivered to the CPL 0 stub", backend());
}

#[test]
fn msr_kernel_reads_back_what_it_wrote_and_so_does_the_host() {
    const KERNEL_GS_BASE: u32 = 0xC000_0102;
    let Some(kvm) = kvm_or_skip("msr_kernel") else {
        return;
    };
    let mut machine = guest_machine(&kvm, "msr_kernel", |_| {}).unwrap();
    // Before the run the MSR holds its reset value, 0.
    let before = machine.vcpus_mut()[0].msrs(&[KERNEL_GS_BASE]).unwrap();
    assert_eq!(before[0].value, 0);
    let mut devices = Devices::new(Vec::new());
    let mut recorder = Recorder::default();
    let outcome = machine.run(&mut devices, &mut recorder).unwrap();
    assert_eq!(outcome, Outcome::Halted);
    // The guest's wrmsr and rdmsr never left the kernel: only its console and the halt exit.
    assert_eq!(
        recorder.exits,
        [outs("0000123456789000\n"), vec![Seen::Hlt]].concat()
    );
    assert_eq!(devices.console.into_sink().unwrap(), b"0000123456789000\n");
    // KVM_GET_MSRS reads back what the guest wrote.
    let after = machine.vcpus_mut()[0].msrs(&[KERNEL_GS_BASE]).unwrap();
    assert_eq!(
        (after[0].index, after[0].value),
        (KERNEL_GS_BASE, 0x1234_5678_9000)
    );
    eprintln!(
        "backend {}: the guest's wrmsr agrees with KVM_GET_MSRS",
        backend()
    );
}

#[test]
fn c_hello_is_an_elf_guest_with_a_zeroed_bss() {
    let Some(kvm) = kvm_or_skip("c_hello") else {
        return;
    };
    let (outcome, exits, console) = run_guest(&kvm, "c_hello", |_| {});
    let text = "Hello from C at CPL 3!\nbss is zero\n6 * 7 = 42\n";
    assert_eq!(outcome.unwrap(), Outcome::Finished(0));
    assert_eq!(exits, [mmio_writes(text), vec![exit_write(0)]].concat());
    assert_eq!(String::from_utf8_lossy(&console), text);
}

#[test]
fn the_32_and_64_bit_modes_enter_with_rsp_at_the_top_of_ram_and_rsi_the_vcpu_index() {
    let Some(kvm) = kvm_or_skip("entry_state") else {
        return;
    };
    for (mode, cs, cr0, efer) in [
        (CpuMode::Long, 0x18, 0x8001_0033, 0x500),
        (CpuMode::User, 0x33, 0x8001_0033, 0x500),
        (CpuMode::Protected, 0x08, 0x33, 0),
    ] {
        let mut machine = guest_machine(&kvm, "long_hello", |config| {
            config.mem_size = 2 << 20;
            config.vcpus = 2;
            config.entry = config.entry.in_mode(mode);
        })
        .unwrap();
        for (index, vcpu) in machine.vcpus_mut().iter().enumerate() {
            let (regs, sregs) = (vcpu.regs().unwrap(), vcpu.sregs().unwrap());
            // Each vCPU its own stack, 16 KiB below the one before.
            let rsp = 0x20_0000 - index as u64 * 0x4000;
            assert_eq!((regs.rip, regs.rsp, regs.rflags), (0x1000, rsp, 0x2));
            assert_eq!(regs.rsi, index as u64);
            assert_eq!((sregs.cs.selector, sregs.cr0, sregs.efer), (cs, cr0, efer));
            if mode != CpuMode::Protected {
                // Each vCPU its own TSS, so its own exception stack.
                assert_eq!(sregs.tr.base, 0x9_0300 + index as u64 * 0x68, "{mode}");
            }
        }
    }
}

/// The host's CPU vendor string (`vendor_id` in `/proc/cpuinfo`): what CPUID leaf 0 gives a
/// guest whose vCPU got the supported table.
fn host_vendor() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("vendor_id"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default()
}

/// Every vCPU gets `KVM_SET_CPUID2` before its first run (the supported table): without it
/// every leaf would read 0.
#[test]
fn cpuid_prints_the_vendor_and_sse2() {
    let Some(kvm) = kvm_or_skip("cpuid") else {
        return;
    };
    let (outcome, exits, console) = run_guest(&kvm, "cpuid", |_| {});
    let text = format!("vendor {}\nSSE2 yes\n\n", host_vendor());
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(exits, [outs(&text), vec![Seen::Hlt]].concat());
    assert_eq!(String::from_utf8_lossy(&console), text);
    eprintln!("backend {}: CPUID answered in the kernel", backend());
}

/// Needs the vCPU's CPUID table (set before the first run): without it `wrmsr EFER.LME`
/// raises #GP, as HOST-NOTES measured.
#[test]
fn mode_switch_goes_from_real_to_protected_to_long_by_itself() {
    let Some(kvm) = kvm_or_skip("mode_switch") else {
        return;
    };
    let (outcome, exits, console) = run_guest(&kvm, "mode_switch", |_| {});
    let text = "real mode\nprotected mode\nlong mode\n";
    assert_eq!(outcome.unwrap(), Outcome::Halted);
    assert_eq!(exits, [outs(text), vec![Seen::Hlt]].concat());
    assert_eq!(String::from_utf8_lossy(&console), text);
}
