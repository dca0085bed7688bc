//! Restart in place puts the interrupt controllers back: with `--irqchip kernel` the local
//! APIC, the MP state, the PICs, the IOAPIC and the PIT read after a restore are what the
//! restart point captured (the run had changed them all); with `--irqchip user` rawkvm's 8259
//! pair is reset between runs, whichever scope.
#![cfg(target_arch = "x86_64")]

mod common;

use common::process::run;
use common::{guest_machine, kvm_or_skip};
use rawkvm::bindings::{
    self as abi, KVM_MP_STATE_HALTED, kvm_irqchip, kvm_lapic_state, kvm_mp_state, kvm_pit_state2,
};
use rawkvm::devices::Devices;
use rawkvm::devices::pic::Pair;
use rawkvm::machine::Machine;
use rawkvm::machine::irq::IrqChip;
use rawkvm::machine::restart::{RegisterReset, RestartScope};
use rawkvm::run_loop::{NoObserver, Outcome};

/// The local APIC's timer current count (TMCCT), which counts down by itself.
const LAPIC_CURRENT_COUNT: std::ops::Range<usize> = 0x390..0x394;
/// The local APIC's task priority register.
const LAPIC_TPR: usize = 0x80;

/// The in-kernel controllers as the kernel reports them, without what moves by itself: the
/// PIT's `count_load_time` (set to the time of `KVM_SET_PIT2`) and the APIC timer's count.
#[derive(Debug, PartialEq, Eq)]
struct Controllers {
    lapic: kvm_lapic_state,
    mp_state: kvm_mp_state,
    chips: Vec<kvm_irqchip>,
    pit: kvm_pit_state2,
}

fn controllers(machine: &mut Machine) -> Controllers {
    let (vm, vcpus) = machine.parts_mut();
    let mut lapic = *vcpus[0].lapic().unwrap().expect("an in-kernel LAPIC");
    lapic.regs[LAPIC_CURRENT_COUNT].fill(0);
    let mut pit = vm.pit().unwrap().expect("an in-kernel PIT");
    for channel in &mut pit.channels {
        channel.count_load_time = 0;
    }
    let chips = [
        abi::KVM_IRQCHIP_PIC_MASTER,
        abi::KVM_IRQCHIP_PIC_SLAVE,
        abi::KVM_IRQCHIP_IOAPIC,
    ]
    .map(|chip| vm.irqchip(chip).unwrap().expect("an in-kernel irqchip"));
    Controllers {
        lapic,
        mp_state: vcpus[0].mp_state().unwrap(),
        chips: chips.to_vec(),
        pit,
    }
}

#[test]
fn timer_pit_prints_the_same_ticks_every_run() {
    if !common::kvm_present("timer_pit_prints_the_same_ticks_every_run") {
        return;
    }
    let output = run(&["run", "timer_pit", "--repeat", "2", "--param", "20"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "ticks 0014\n".repeat(2)
    );
}

#[test]
fn the_kernel_irqchip_pit_and_lapic_after_a_restore_are_the_captured_ones() {
    let Some(kvm) =
        kvm_or_skip("the_kernel_irqchip_pit_and_lapic_after_a_restore_are_the_captured_ones")
    else {
        return;
    };
    let mut machine = guest_machine(&kvm, "timer_pit", |config| {
        assert_eq!(config.irqchip, IrqChip::Kernel, "the guest's setup");
        config.restartable = true;
        config.param = Some(20);
    })
    .unwrap();
    let has_xcrs = machine.vm().check_extension(abi::KVM_CAP_XCRS) > 0;
    let captured = controllers(&mut machine);
    let mut point = machine
        .restart_point(&kvm, RestartScope::Full, RegisterReset::SyncRegs)
        .unwrap();
    for run in 0..2 {
        let mut devices = Devices::new(Vec::new());
        let outcome = machine.run(&mut devices, &mut NoObserver).unwrap();
        assert_eq!(outcome, Outcome::Finished(0), "run {run}");
        assert_eq!(devices.console.into_sink().unwrap(), b"ticks 0014\n");
        // The guest programmed the PICs (vectors, masks) and the PIT (rate generator); a
        // halted vCPU and a raised task priority stand for what a guest stopped elsewhere
        // could leave.
        let ran = controllers(&mut machine);
        assert_ne!(
            ran.chips[0], captured.chips[0],
            "the master PIC was programmed"
        );
        assert_ne!(ran.pit, captured.pit, "the PIT was programmed");
        let vcpu = &machine.vcpus_mut()[0];
        let mut lapic = ran.lapic;
        lapic.regs[LAPIC_TPR] = 0x50;
        vcpu.set_lapic(&lapic).unwrap();
        vcpu.set_mp_state(&kvm_mp_state {
            mp_state: KVM_MP_STATE_HALTED,
        })
        .unwrap();
        let restored = machine.restart(&mut point).unwrap();
        // XSAVE, XCRS, MSRS, DEBUGREGS, LAPIC, MP_STATE.
        assert_eq!(restored.vcpu_ioctls, 5 + usize::from(has_xcrs));
        assert_eq!(controllers(&mut machine), captured, "after run {run}");
    }
    let unrestored = point.unrestored_msrs();
    if common::backend() == "kvm_pvm" {
        // With an in-kernel LAPIC the kernel takes MSR_KVM_ASYNC_PF_INT back too.
        assert_eq!(unrestored, [0x10], "only IA32_TSC");
    } else {
        eprintln!("{}: unrestored MSRs {unrestored:x?}", common::backend());
    }
}

#[test]
fn the_user_pic_is_reset_between_runs_whichever_scope() {
    let Some(kvm) = kvm_or_skip("the_user_pic_is_reset_between_runs_whichever_scope") else {
        return;
    };
    for scope in [RestartScope::Full, RestartScope::Registers] {
        // irq_user with N = 0 programs the pair (vectors 0x20-0x2F, masks) and prints sixteen
        // zero counts without waiting for an interrupt.
        let mut machine = guest_machine(&kvm, "irq_user", |config| {
            assert_eq!(config.irqchip, IrqChip::User, "the guest's setup");
            config.restartable = true;
            config.param = Some(0);
        })
        .unwrap();
        let pic = std::sync::Arc::clone(machine.user_pic().expect("a user PIC"));
        assert_eq!(pic.registers(), Pair::default());
        let mut point = machine
            .restart_point(&kvm, scope, RegisterReset::SyncRegs)
            .unwrap();
        let mut outputs = Vec::new();
        for _ in 0..2 {
            let mut devices = Devices::new(Vec::new());
            let outcome = machine.run(&mut devices, &mut NoObserver).unwrap();
            assert_eq!(outcome, Outcome::Halted, "{scope:?}");
            outputs.push(devices.console.into_sink().unwrap());
            let ran = pic.registers();
            assert!(
                ran.master.initialised() && ran.slave.initialised(),
                "{ran:?}"
            );
            assert_eq!(ran.master.vector_base, 0x20);
            // A device raised a line after the guest was done: a request the next run must
            // not inherit.
            assert!(pic.raise(3));
            assert_ne!(pic.registers().master.irr, 0);
            machine.restart(&mut point).unwrap();
            assert_eq!(pic.registers(), Pair::default(), "{scope:?}");
        }
        let zeros = format!("{}0000\n00000000\n", "0000 ".repeat(15));
        assert_eq!(outputs, [zeros.as_bytes(), zeros.as_bytes()], "{scope:?}");
    }
}
