//! `rawkvm run GUEST --repeat N`: N runs on one VM, restarted in place between them, and the
//! console coalescing that `rawkvm run` asks for.

use rawkvm::coalesced::{self, Support};
use rawkvm::devices::Devices;
use rawkvm::error::Error;
use rawkvm::image::Image;
use rawkvm::kvm::Kvm;
use rawkvm::machine::Machine;
use rawkvm::supervisor::RunControl;
use rawkvm::units::parse_u64;

use super::args::parse_flag;

/// `--repeat N`: at least 1.
pub fn parse_count(flag: &str, text: &str) -> Result<u64, String> {
    match parse_flag(flag, text, parse_u64)? {
        0 => Err(format!("{flag} {text}: at least 1 run")),
        runs => Ok(runs),
    }
}

/// Registers the devices' write-only zones for coalescing, if `wanted` and the kernel can;
/// otherwise every write keeps exiting.
pub fn coalesce<W: std::io::Write>(
    machine: &Machine,
    devices: &Devices<W>,
    wanted: bool,
) -> Result<(), Error> {
    let support = if wanted {
        Support::of(machine.vm())
    } else {
        Support::NONE
    };
    coalesced::register_declared(machine.vm(), devices, support).map(drop)
}

/// Runs the guest `runs` times on one machine: after each run, the pages it wrote are copied
/// back and the registers reset, so every run starts as the first did. Device state is fresh
/// for every run; the console output of all runs goes to stdout in order. Each run is
/// supervised like `rawkvm run`'s: `--timeout` applies to each, and a signal stops the lot.
#[cfg(target_arch = "x86_64")]
pub fn run(
    kvm: &Kvm,
    options: &super::run::RunOptions,
    image: &Image,
    runs: u64,
    control: &RunControl,
) -> Result<i32, Error> {
    use std::sync::{Mutex, PoisonError};

    use rawkvm::error::status;
    use rawkvm::machine::MachineConfig;
    use rawkvm::restart::RegisterReset;
    use rawkvm::run_loop::NoObserver;

    use super::console_out::ConsoleOut;

    let config = MachineConfig {
        restartable: true,
        ..options.config.clone()
    };
    let mut machine = Machine::new(kvm, &config, image)?;
    let mut point = machine.restart_point(RegisterReset::SyncRegs)?;
    for run in 0..runs {
        if run > 0 {
            machine.restart(&mut point)?;
        }
        let devices = Devices::new(ConsoleOut::new(control.clone()));
        if run == 0 {
            coalesce(&machine, &devices, options.coalesce)?;
        }
        let devices = Mutex::new(devices);
        let outcome = machine.run_all(&devices, &NoObserver, options.timeout, control);
        let mut devices = devices.into_inner().unwrap_or_else(PoisonError::into_inner);
        // The console is complete before any error is reported.
        let flushed = devices.console.flush().map_err(Error::Console);
        outcome?;
        flushed?;
    }
    Ok(status::HALTED)
}

/// `--repeat` resets registers through the x86 restart path; elsewhere it is refused.
#[cfg(not(target_arch = "x86_64"))]
pub fn run(
    _kvm: &Kvm,
    _options: &super::run::RunOptions,
    _image: &Image,
    _runs: u64,
    _control: &RunControl,
) -> Result<i32, Error> {
    Err(Error::Usage(format!(
        "--repeat restarts the x86 register state; it is not available on {}",
        rawkvm::bindings::HOST_ARCH
    )))
}
