//! `rawkvm run GUEST --repeat N`: N runs on one VM, restarted in place between them.

#[cfg(target_arch = "x86_64")]
use rawkvm::machine::Machine;
use rawkvm::units::parse_u64;

#[cfg(target_arch = "x86_64")]
use crate::cli::status::CliError;

use super::args::parse_flag;

/// `--repeat N`: at least 1 run, and only where the registers can be reset in place.
pub fn parse_count(flag: &str, text: &str) -> Result<u64, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err(format!(
            "{flag}: restarting resets the x86 register state; it is not available on {}",
            rawkvm::bindings::HOST_ARCH
        ));
    }
    match parse_flag(flag, text, parse_u64)? {
        0 => Err(format!("{flag} {text}: at least 1 run")),
        runs => Ok(runs),
    }
}

/// Runs the guest `runs` times on `machine` (made restartable) with `run_once`, whose second
/// argument says whether this is the machine's first run. After each run, the pages it wrote
/// are copied back and the registers reset, so every run starts as the first did. Each run is
/// supervised like a single one (`--timeout` applies to each, a signal stops the lot); the
/// first that fails ends the repeat.
#[cfg(target_arch = "x86_64")]
pub fn run(
    machine: &mut Machine,
    runs: u64,
    mut run_once: impl FnMut(&mut Machine, bool) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut point = machine.restart_point(rawkvm::machine::restart::RegisterReset::SyncRegs)?;
    for run in 0..runs {
        if run > 0 {
            machine.restart(&mut point)?;
        }
        run_once(machine, run == 0)?;
    }
    Ok(())
}
