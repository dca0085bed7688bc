//! `rawkvm run GUEST --repeat N`: N runs on one VM, restarted in place between them, and the
//! console coalescing that `rawkvm run` asks for.

use rawkvm::coalesced::{self, Support};
use rawkvm::devices::Devices;
use rawkvm::error::Error;
use rawkvm::image::Image;
use rawkvm::kvm::Kvm;
use rawkvm::machine::Machine;
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
/// for every run; the console output of all runs goes to stdout in order.
#[cfg(target_arch = "x86_64")]
pub fn run(
    kvm: &Kvm,
    options: &super::run::RunOptions,
    image: &Image,
    runs: u64,
) -> Result<i32, Error> {
    use rawkvm::error::status;
    use rawkvm::machine::MachineConfig;
    use rawkvm::restart::RegisterReset;
    use rawkvm::run_loop::NoObserver;

    let config = MachineConfig {
        restartable: true,
        ..options.config.clone()
    };
    let mut machine = Machine::new(kvm, &config, image)?;
    let mut point = machine.restart_point(RegisterReset::SyncRegs)?;
    let mut stdout = std::io::stdout().lock();
    for run in 0..runs {
        if run > 0 {
            machine.restart(&mut point)?;
        }
        let mut devices = Devices::new(&mut stdout);
        if run == 0 {
            coalesce(&machine, &devices, options.coalesce)?;
        }
        let outcome = machine.run(&mut devices, &mut NoObserver);
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
) -> Result<i32, Error> {
    Err(Error::Usage(format!(
        "--repeat restarts the x86 register state; it is not available on {}",
        rawkvm::bindings::HOST_ARCH
    )))
}
