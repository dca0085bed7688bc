//! `--irqchip kernel`: the in-kernel PIC and PIT tick a real-mode guest, and the in-kernel
//! LAPIC timer a long-mode one, with no exit per tick and no `KVM_EXIT_HLT`; lines raised with `KVM_IRQ_LINE` from a device thread and through
//! an eventfd (`KVM_IRQFD`) all arrive; and the irqchip's ordering rules are refused by name.
// The embedded guests are x86 real-mode code.
#![cfg(target_arch = "x86_64")]

mod common;

use std::io;
use std::sync::{Arc, Condvar, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::{Recorder, Seen, guest_machine, kvm_or_skip};
use nix::errno::Errno;
use rawkvm::arch::x86_64::CpuMode;
use rawkvm::devices::Devices;
use rawkvm::devices::bus::{Claim, IoHandler};
use rawkvm::error::{Error, IrqError};
use rawkvm::machine::irq::IrqChip;
use rawkvm::run_loop::Outcome;
use rawkvm::trace::{TraceFormat, TraceObserver, WatchOptions};

/// The exits of a guest that prints `text` on port 0xE9 (not coalesced: `Machine::run`
/// registers no zone) and then writes 0 to the exit device.
fn prints_then_exits(text: &str) -> Vec<Seen> {
    text.bytes()
        .map(|byte| Seen::out(0xE9, byte))
        .chain([Seen::out(0xF4, 0)])
        .collect()
}

#[test]
fn the_in_kernel_pit_ticks_without_exits_or_hlt() {
    let Some(kvm) = kvm_or_skip("the_in_kernel_pit_ticks_without_exits_or_hlt") else {
        return;
    };
    // 100 ticks at the default 1 kHz, 20 at 100 Hz (reload 11932 in the parameter's top half).
    for (param, text) in [(100, "ticks 0064\n"), (11932 << 16 | 20, "ticks 0014\n")] {
        let mut machine = guest_machine(&kvm, "timer_pit", |config| {
            assert_eq!(config.irqchip, IrqChip::Kernel);
            config.param = Some(param);
        })
        .unwrap();
        assert!(machine.vm().has_irqchip());
        let mut devices = Devices::new(Vec::new());
        let mut recorder = Recorder::default();
        let outcome = machine.run(&mut devices, &mut recorder).unwrap();
        assert_eq!(outcome, Outcome::Finished(0));
        assert_eq!(recorder.exits, prints_then_exits(text), "param {param:#x}");
        assert_eq!(devices.console.into_sink().unwrap(), text.as_bytes());
    }
}

#[test]
fn the_in_kernel_lapic_timer_ticks_a_long_mode_guest_without_exits_or_hlt() {
    let Some(kvm) =
        kvm_or_skip("the_in_kernel_lapic_timer_ticks_a_long_mode_guest_without_exits_or_hlt")
    else {
        return;
    };
    // The guest's setup (mode=long irqchip=kernel param=100), then 20 ticks.
    for (param, text) in [
        (None, "ticks 0000000000000064\n"),
        (Some(20), "ticks 0000000000000014\n"),
    ] {
        let mut machine = guest_machine(&kvm, "timer_lapic", |config| {
            assert_eq!(config.irqchip, IrqChip::Kernel);
            assert_eq!(config.entry.mode, CpuMode::Long);
            config.param = param.or(config.param);
        })
        .unwrap();
        // A timer that never fires would leave the guest asleep in the kernel: stop it after
        // a minute, so the run returns and the exits below say what went wrong.
        let (done, watchdog) = mpsc::channel::<()>();
        let stop = machine.vcpus_mut()[0].stop_handle();
        let watchdog = thread::spawn(move || {
            if watchdog.recv_timeout(Duration::from_secs(60)).is_err() {
                stop.stop();
            }
        });
        let mut devices = Devices::new(Vec::new());
        let mut recorder = Recorder::default();
        let started = Instant::now();
        let outcome = machine.run(&mut devices, &mut recorder).unwrap();
        let elapsed = started.elapsed();
        done.send(()).unwrap();
        watchdog.join().unwrap();
        // Only the console bytes and the exit device: no exit per tick or per LAPIC access,
        // no KVM_EXIT_HLT.
        assert_eq!(recorder.exits, prints_then_exits(text), "param {param:?}");
        assert_eq!(outcome, Outcome::Finished(0));
        assert_eq!(devices.console.into_sink().unwrap(), text.as_bytes());
        // Reported, not asserted: the rate depends on the host's load.
        let ticks = u64::from(param.unwrap_or(100));
        println!(
            "timer_lapic ({}): {ticks} ticks in {elapsed:?}, {:.1} Hz for 1 kHz programmed",
            common::backend(),
            ticks as f64 / elapsed.as_secs_f64()
        );
    }
}

#[test]
fn timer_pit_runs_from_the_command_line() {
    if !common::kvm_present("timer_pit_runs_from_the_command_line") {
        return;
    }
    let output = common::process::run(&["run", "timer_pit"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "ticks 0064\n");
}

/// The devices, plus port 0x510: the guest's running total of interrupts taken, which the
/// raising thread waits for before its next edge.
struct Paced {
    devices: Devices<Vec<u8>>,
    taken: Arc<(Mutex<Option<u16>>, Condvar)>,
}

impl IoHandler for Paced {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> io::Result<Claim> {
        self.devices.pio_read(port, data)
    }
    fn pio_write(&mut self, port: u16, data: &[u8]) -> io::Result<Claim> {
        if let (0x510, &[low, high]) = (port, data) {
            let (total, changed) = &*self.taken;
            *total.lock().unwrap() = Some(u16::from_le_bytes([low, high]));
            changed.notify_all();
            return Ok(Claim::Claimed);
        }
        self.devices.pio_write(port, data)
    }
    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> io::Result<Claim> {
        self.devices.mmio_read(addr, data)
    }
    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> io::Result<Claim> {
        self.devices.mmio_write(addr, data)
    }
}

#[test]
fn lines_raised_with_irq_line_and_irqfd_all_arrive() {
    let Some(kvm) = kvm_or_skip("lines_raised_with_irq_line_and_irqfd_all_arrive") else {
        return;
    };
    const EACH: u16 = 100;
    let mut machine = guest_machine(&kvm, "irq_line", |config| {
        config.param = Some(u32::from(EACH))
    })
    .unwrap();
    // A text trace told of every line set from the device thread.
    let watcher = Arc::new(Mutex::new(TraceObserver::new(
        WatchOptions {
            trace: Some(TraceFormat::Text),
            stats: true,
            ..WatchOptions::default()
        },
        Vec::new(),
    )));
    let lines = machine.vm().irq_lines().unwrap().observed(watcher.clone());
    let irqfd = machine.vm().irqfd(4).unwrap().observed(watcher.clone());
    let taken = Arc::new((Mutex::new(None), Condvar::new()));
    let stop = machine.vcpus_mut()[0].stop_handle();
    let raiser = {
        let taken = Arc::clone(&taken);
        thread::spawn(move || -> Result<(), String> {
            // A lost edge leaves the guest asleep: stop it, so the run returns and says so.
            let stop_on_failure = Stopper(stop);
            // Wait for the guest's report of 0 (ready).
            let (total, changed) = &*taken;
            drop(
                changed
                    .wait_while(total.lock().unwrap(), |t| t.is_none())
                    .unwrap(),
            );
            for edge in 0..2 * EACH {
                // Even edges on GSI 3 with KVM_IRQ_LINE, odd ones on GSI 4 through the irqfd.
                if edge % 2 == 0 {
                    lines.pulse(3).map_err(|e| e.to_string())?;
                } else {
                    irqfd.trigger().map_err(|e| e.to_string())?;
                }
                let (total, changed) = &*taken;
                let (total, timeout) = changed
                    .wait_timeout_while(total.lock().unwrap(), Duration::from_secs(5), |t| {
                        t.is_none_or(|t| t <= edge)
                    })
                    .unwrap();
                if timeout.timed_out() {
                    return Err(format!("edge {edge} not taken: the guest has {total:?}"));
                }
            }
            std::mem::forget(stop_on_failure);
            Ok(())
        })
    };
    let mut paced = Paced {
        devices: Devices::new(Vec::new()),
        taken,
    };
    let mut recorder = Recorder::default();
    let outcome = machine.run(&mut paced, &mut recorder).unwrap();
    raiser.join().unwrap().unwrap();
    assert_eq!(outcome, Outcome::Finished(0));
    let reports: Vec<Seen> = (0..=2 * EACH)
        .map(|total| Seen::Io {
            direction: rawkvm::exit::IoDirection::Out,
            port: 0x510,
            size: 2,
            count: 1,
            data: total.to_le_bytes().to_vec(),
        })
        .chain(prints_then_exits("0064 0064\n"))
        .collect();
    assert_eq!(recorder.exits, reports, "no HLT, no edge lost or doubled");
    assert_eq!(paced.devices.console.into_sink().unwrap(), b"0064 0064\n");
    let watcher = Arc::into_inner(watcher).unwrap().into_inner().unwrap();
    assert_eq!(watcher.stats().line_events(), 3 * u64::from(EACH));
    let trace = String::from_utf8(watcher.into_sink()).unwrap();
    let expected: String = (0..EACH)
        .map(|_| "    KVM_IRQ_LINE gsi=3 level=1\n    KVM_IRQ_LINE gsi=3 level=0\n    irqfd gsi=4 (eventfd write, KVM_IRQFD)\n")
        .collect();
    assert_eq!(trace, expected, "each line set, in order");
}

/// Stops the vCPU when dropped (unless forgotten).
struct Stopper(rawkvm::kvm::StopHandle);

impl Drop for Stopper {
    fn drop(&mut self) {
        self.0.stop();
    }
}

fn irq_error(error: Error) -> IrqError {
    match error {
        Error::Irq(error) => error,
        other => panic!("not an interrupt error: {other}"),
    }
}

#[test]
fn the_ordering_rules_are_refused_before_the_kernel_is_asked() {
    let Some(kvm) = kvm_or_skip("the_ordering_rules_are_refused_before_the_kernel_is_asked") else {
        return;
    };
    // No irqchip: no lines, no irqfd, no PIT.
    let vm = kvm.create_vm().unwrap();
    let no_chip = irq_error(vm.irq_line(3, true).unwrap_err());
    assert_eq!(
        no_chip,
        IrqError::NoIrqchip {
            ioctl: "KVM_IRQ_LINE"
        }
    );
    assert_eq!(no_chip.errno(), Some(Errno::ENXIO));
    assert!(matches!(
        irq_error(vm.irqfd(4).unwrap_err()),
        IrqError::NoIrqchip { ioctl: "KVM_IRQFD" }
    ));
    let pit = irq_error(vm.create_pit2(0).unwrap_err());
    assert_eq!(pit, IrqError::PitWithoutIrqchip);
    assert_eq!(pit.errno(), Some(Errno::ENOENT));
    // After a vCPU: too late for the irqchip.
    let _vcpu = vm.create_vcpu(0).unwrap();
    let late = irq_error(vm.create_irqchip().unwrap_err());
    assert_eq!(late, IrqError::IrqchipAfterVcpu { vcpus: 1 });
    assert_eq!(late.errno(), Some(Errno::EINVAL));
    assert!(late.to_string().contains("before the first vCPU"), "{late}");
    // Twice: EEXIST. A PIT twice too. KVM_INTERRUPT with the chip: ENXIO.
    let vm = kvm.create_vm().unwrap();
    vm.create_irqchip().unwrap();
    assert_eq!(
        irq_error(vm.create_irqchip().unwrap_err()),
        IrqError::IrqchipExists
    );
    vm.create_pit2(0).unwrap();
    assert_eq!(
        irq_error(vm.create_pit2(0).unwrap_err()),
        IrqError::PitExists
    );
    let vcpu = vm.create_vcpu(0).unwrap();
    let injected = irq_error(vcpu.interrupt(0x20).unwrap_err());
    assert_eq!(injected, IrqError::InterruptWithIrqchip { vector: 0x20 });
    assert_eq!(injected.errno(), Some(Errno::ENXIO));
    // A GSI past the routing table, and an any-width doorbell with a datamatch.
    assert_eq!(
        irq_error(vm.irq_line(24, true).unwrap_err()),
        IrqError::GsiOutOfRange { gsi: 24, limit: 24 }
    );
    vm.irq_line(23, true).unwrap();
    vm.irq_line(23, false).unwrap();
}

#[test]
fn stats_and_trace_show_the_interrupts() {
    if !common::kvm_present("stats_and_trace_show_the_interrupts") {
        return;
    }
    // The kernel injected at least the 100 ticks counted (more may land before `cli`);
    // rawkvm injected none.
    let output = common::process::run(&["run", "timer_pit", "--stats"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr
        .lines()
        .find(|l| l.starts_with("  interrupts: "))
        .unwrap_or_else(|| panic!("no interrupts line: {stderr}"));
    assert!(
        line.starts_with(
            "  interrupts: rawkvm injected 0 (KVM_INTERRUPT), devices set 0 lines (KVM_IRQ_LINE, \
             irqfd); the kernel: "
        ),
        "{line}"
    );
    let injections: u64 = line
        .split([' ', ','])
        .find_map(|item| item.strip_prefix("irq_injections="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{line}"));
    assert!(injections >= 100, "{line}");
    // Each injection rawkvm makes, after the exit that allowed it.
    let output = common::process::run(&["run", "irq_window", "--trace", "--stats"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines[0].starts_with("#1 vcpu0 KVM_EXIT_IRQ_WINDOW_OPEN(7)"),
        "{stderr}"
    );
    assert_eq!(
        lines[1],
        "    vcpu0 injected vector 0x20 with KVM_INTERRUPT"
    );
    assert!(
        stderr.contains("  interrupts: rawkvm injected 1 (KVM_INTERRUPT)"),
        "{stderr}"
    );
}

#[test]
fn irqchip_flag_is_checked_and_hlt_blocks_with_the_kernels() {
    let output = common::process::run(&["run", "hello", "--irqchip", "split"]);
    common::assert_fails(
        &output,
        2,
        "--irqchip split: irqchip \"split\": expected kernel",
    );
    if !common::kvm_present("irqchip_flag_is_checked_and_hlt_blocks_with_the_kernels") {
        return;
    }
    // Why `none` is the default: with the in-kernel LAPIC, `cli; hlt` waits in the kernel,
    // so a guest written to the conventions runs until the deadline.
    let output = common::process::run(&["run", "hlt", "--irqchip", "kernel", "--timeout", "200ms"]);
    common::assert_fails(&output, 7, "did not halt within 200 ms");
    let output = common::process::run(&["run", "hlt", "--irqchip", "user"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}
