//! The rawkvm side of each workload: build, time, and format the one-line result.
//!
//! `baseline.c` takes the same steps in C; keep the two in step.

use std::hint::black_box;
use std::time::Instant;

use crate::cli::status::CliError;
use rawkvm::arch::x86_64::sync_regs::SyncRegs;
use rawkvm::devices::Devices;
use rawkvm::devices::coalesced::{self, Support};
use rawkvm::error::Error;
use rawkvm::exit::Exit;
use rawkvm::kvm::Kvm;
use rawkvm::kvm::vcpu::{RunError, Vcpu};
use rawkvm::machine::guests::Guest;
use rawkvm::machine::image::Image;
use rawkvm::machine::reaper::Reaper;
use rawkvm::machine::restart::{RegisterReset, RestartScope};
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::{self, ExitCounter, NoObserver};

use super::Workload;

/// Untimed iterations before the timed ones, as in `baseline.c`.
const WARM_UP: u64 = 10;

/// Runs `workload` once and returns its result line. `count` has passed
/// [`Workload::check_count`].
pub fn measure(
    kvm: &Kvm,
    workload: &Workload,
    variant: &str,
    count: u64,
    guest: &Guest,
) -> Result<String, CliError> {
    let image = Image::embedded(guest.name, guest.image);
    match workload.name {
        "pio" | "mmio" => exit_loop(kvm, workload.name, variant, count, &image),
        "start" => start(kvm, count, &image),
        "start-async" => start_async(kvm, count, &image),
        "restart" => restart(kvm, variant, count, &image, guest.mode()),
        "modes" => super::modes::modes(kvm, variant, count),
        "user" => super::modes::user(kvm, count),
        "doorbell" => super::doorbell::measure(kvm, variant, count, &image),
        _ => console(kvm, variant, count, &image),
    }
}

/// A machine for `image` with `param` at 0x0F00.
pub(super) fn machine(
    kvm: &Kvm,
    image: &Image,
    param: u64,
    restartable: bool,
) -> Result<Machine, CliError> {
    let param = u32::try_from(param)
        .map_err(|_| CliError::Usage(format!("--count {param}: at most {}", u32::MAX)))?;
    let config = MachineConfig {
        param: Some(param),
        restartable,
        ..MachineConfig::default()
    };
    Ok(Machine::new(kvm, &config, image)?)
}

/// Nanoseconds since `started`, as a whole number (the lines print integers).
fn elapsed_ns(started: Instant) -> u128 {
    started.elapsed().as_nanos()
}

/// N accesses, each one exit, timed from the first `KVM_RUN` to the HLT.
fn exit_loop(
    kvm: &Kvm,
    label: &str,
    variant: &str,
    count: u64,
    image: &Image,
) -> Result<String, CliError> {
    let mut machine = machine(kvm, image, count, false)?;
    let mut devices = Devices::new(std::io::sink());
    let started;
    let exits = if variant == "plain" {
        // The run loop itself: one KVM_RUN and no allocation per exit.
        let mut counter = ExitCounter::default();
        started = Instant::now();
        machine.run(&mut devices, &mut counter)?;
        counter.exits
    } else {
        let vcpu = &mut machine.vcpus_mut()[0];
        if variant == "valid-regs" {
            vcpu.enable_sync_regs(SyncRegs::all())?;
        }
        started = Instant::now();
        exits_reading_rip(vcpu, &mut devices, variant == "valid-regs")?
    };
    Ok(exit_line(label, exits, elapsed_ns(started), variant))
}

/// The result line of an exit loop: `pio exits=N total_ns=T ns_per_exit=X exits_per_sec=R
/// variant=V`.
pub(super) fn exit_line(label: &str, exits: u64, total_ns: u128, variant: &str) -> String {
    let per_exit = total_ns as f64 / exits.max(1) as f64;
    format!(
        "{label} exits={exits} total_ns={total_ns} ns_per_exit={per_exit:.1} \
         exits_per_sec={:.0} variant={variant}",
        1e9 / per_exit
    )
}

/// A run loop that reads RIP at every exit: in place (`kvm_valid_regs` on) or with
/// `KVM_GET_REGS`. Returns the number of exits.
fn exits_reading_rip(
    vcpu: &mut Vcpu,
    devices: &mut Devices<std::io::Sink>,
    in_place: bool,
) -> Result<u64, CliError> {
    let id = vcpu.id();
    let (mut exits, mut rip_sum) = (0u64, 0u64);
    loop {
        let halted = match vcpu.run() {
            Ok(Exit::Hlt) => true,
            Ok(Exit::Io(mut io)) => {
                rawkvm::devices::bus::dispatch_io(&mut io, devices).map_err(Error::Console)?;
                false
            }
            Ok(Exit::Mmio(mut mmio)) => {
                rawkvm::devices::bus::dispatch_mmio(&mut mmio, devices).map_err(Error::Console)?;
                false
            }
            Ok(other) => {
                let fault = run_loop::fault(&other);
                return Err(Error::GuestFault { vcpu: id, fault }.into());
            }
            Err(RunError::Interrupted) => {
                vcpu.acknowledge_kick();
                continue;
            }
            Err(RunError::Failed(errno)) => return Err(Error::Run { vcpu: id, errno }.into()),
            Err(RunError::Decode(error)) => return Err(Error::Decode { vcpu: id, error }.into()),
        };
        exits += 1;
        let regs = if in_place {
            vcpu.registers().regs()?
        } else {
            vcpu.regs()?
        };
        rip_sum = rip_sum.wrapping_add(regs.rip);
        if halted {
            black_box(rip_sum);
            return Ok(exits);
        }
    }
}

/// Create the VM, run it to HLT, and return it (for the caller to drop, one way or another).
fn cycle(
    kvm: &Kvm,
    image: &Image,
    devices: &mut Devices<std::io::Sink>,
) -> Result<Machine, CliError> {
    let mut machine = Machine::new(kvm, &MachineConfig::default(), image)?;
    machine.run(devices, &mut NoObserver)?;
    Ok(machine)
}

/// K whole create-run-destroy cycles.
fn start(kvm: &Kvm, vms: u64, image: &Image) -> Result<String, CliError> {
    let mut devices = Devices::new(std::io::sink());
    let mut started = Instant::now();
    for i in 0..WARM_UP + vms {
        if i == WARM_UP {
            started = Instant::now();
        }
        drop(cycle(kvm, image, &mut devices)?);
    }
    let total_ns = elapsed_ns(started);
    let per_vm = total_ns as f64 / vms as f64 / 1e3;
    Ok(format!(
        "start vms={vms} total_ns={total_ns} us_per_vm={per_vm:.1} variant=plain"
    ))
}

/// K cycles with each VM dropped on the reaper thread: the time to each HLT, and overall.
fn start_async(kvm: &Kvm, vms: u64, image: &Image) -> Result<String, CliError> {
    let mut devices = Devices::new(std::io::sink());
    let reaper = Reaper::new()?;
    let mut to_hlt = Vec::with_capacity(usize::try_from(vms).unwrap_or(0));
    let mut started = Instant::now();
    for i in 0..WARM_UP + vms {
        if i == WARM_UP {
            started = Instant::now();
        }
        let begin = Instant::now();
        let machine = cycle(kvm, image, &mut devices)?;
        if i >= WARM_UP {
            to_hlt.push(begin.elapsed().as_nanos());
        }
        machine.drop_in_background(&reaper);
    }
    let total_ns = elapsed_ns(started);
    // Everything released before the result is reported.
    reaper.join();
    to_hlt.sort_unstable();
    let median_us = to_hlt.get(to_hlt.len() / 2).copied().unwrap_or(0) as f64 / 1e3;
    let per_vm = total_ns as f64 / vms as f64 / 1e3;
    Ok(format!(
        "start-async vms={vms} total_ns={total_ns} us_per_vm={per_vm:.1} \
         us_to_hlt={median_us:.1} variant=reaper"
    ))
}

/// N runs on one VM, each followed by a restore: `full` (dirty pages, registers, FPU, MSRs,
/// debug registers, ...: what `--repeat` does), `registers` (dirty pages and registers only)
/// or `ioctl` (the full scope with the registers reset by ioctls instead of in place).
fn restart(
    kvm: &Kvm,
    variant: &str,
    runs: u64,
    image: &Image,
    mode: &str,
) -> Result<String, CliError> {
    let (scope, reset) = match variant {
        "registers" => (RestartScope::Registers, RegisterReset::SyncRegs),
        "ioctl" => (RestartScope::Full, RegisterReset::Ioctls),
        _ => (RestartScope::Full, RegisterReset::SyncRegs),
    };
    // The guest's CPU mode (`--guest long_hello`), the rest of its setup left as C's.
    let mut config = MachineConfig {
        restartable: true,
        param: Some(0),
        ..MachineConfig::default()
    };
    config.set_mode(mode).map_err(CliError::Usage)?;
    let mut machine = Machine::new(kvm, &config, image)?;
    let mut point = machine.restart_point(kvm, scope, reset)?;
    let mut devices = Devices::new(std::io::sink());
    let (mut dirty_pages, mut vcpu_ioctls) = (0, 0);
    let mut started = Instant::now();
    for i in 0..WARM_UP + runs {
        if i == WARM_UP {
            started = Instant::now();
            dirty_pages = 0;
        }
        machine.run(&mut devices, &mut NoObserver)?;
        let restored = machine.restart(&mut point)?;
        dirty_pages += restored.dirty_pages;
        vcpu_ioctls = restored.vcpu_ioctls;
    }
    let total_ns = elapsed_ns(started);
    let per_run = total_ns as f64 / runs as f64 / 1e3;
    Ok(format!(
        "restart runs={runs} total_ns={total_ns} us_per_run={per_run:.2} \
         dirty_pages={dirty_pages} vcpu_ioctls={vcpu_ioctls} reset={} variant={variant}",
        point.register_reset().name()
    ))
}

/// N console bytes, coalesced or one exit each.
fn console(kvm: &Kvm, variant: &str, bytes: u64, image: &Image) -> Result<String, CliError> {
    let mut machine = machine(kvm, image, bytes, false)?;
    let mut devices = Devices::new(std::io::sink());
    let support = if variant == "plain" {
        Support::NONE
    } else {
        Support::of(machine.vm())
    };
    let registered = coalesced::register_declared(machine.vm(), &devices, support)?;
    let variant = if registered.coalesced.is_empty() {
        "plain"
    } else {
        "coalesced"
    };
    let started = Instant::now();
    machine.run(&mut devices, &mut NoObserver)?;
    let total_ns = elapsed_ns(started);
    let per_byte = total_ns as f64 / bytes as f64;
    Ok(format!(
        "console bytes={bytes} total_ns={total_ns} ns_per_byte={per_byte:.1} \
         bytes_per_sec={:.0} variant={variant}",
        1e9 / per_byte
    ))
}
