//! `rawkvm run GUEST --repeat N [--restart-scope full|registers]`: N runs on one VM, restarted
//! in place between them.

#[cfg(target_arch = "x86_64")]
use rawkvm::kvm::Kvm;
#[cfg(target_arch = "x86_64")]
use rawkvm::machine::Machine;
#[cfg(target_arch = "x86_64")]
use rawkvm::machine::restart::RegisterReset;
use rawkvm::units::parse_u64;

#[cfg(target_arch = "x86_64")]
use crate::cli::status::CliError;

use super::args::parse_flag;

/// What `--restart-scope` chooses: what a restart puts back (x86-64).
#[cfg(target_arch = "x86_64")]
pub use rawkvm::machine::restart::RestartScope as Scope;

/// Elsewhere there is no restart in place, so no scope; the flag is refused.
#[cfg(not(target_arch = "x86_64"))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Scope;

/// The message for a restart flag on an architecture without restarts.
fn not_here(flag: &str) -> String {
    format!(
        "{flag}: restarting resets the x86 register state; it is not available on {}",
        rawkvm::bindings::HOST_ARCH
    )
}

/// `--repeat N`: at least 1 run, and only where the registers can be reset in place.
pub fn parse_count(flag: &str, text: &str) -> Result<u64, String> {
    if !cfg!(target_arch = "x86_64") {
        return Err(not_here(flag));
    }
    match parse_flag(flag, text, parse_u64)? {
        0 => Err(format!("{flag} {text}: at least 1 run")),
        runs => Ok(runs),
    }
}

/// `--restart-scope full|registers`.
pub fn parse_scope(flag: &str, text: &str) -> Result<Scope, String> {
    #[cfg(target_arch = "x86_64")]
    return Scope::parse(text).map_err(|why| format!("{flag} {text}: {why}"));
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = text;
        Err(not_here(flag))
    }
}

/// Runs the guest `runs` times on `machine` (made restartable) with `run_once`, whose second
/// argument says whether this is the machine's first run. After each run, the machine is put
/// back as `scope` says (dirty pages, registers, and with the full scope the FPU, MSRs, debug
/// registers and interrupt controllers), so every run starts as the first did. Each run is
/// supervised like a single one (`--timeout` applies to each, a signal stops the lot); the
/// first that fails ends the repeat.
#[cfg(target_arch = "x86_64")]
pub fn run(
    kvm: &Kvm,
    machine: &mut Machine,
    runs: u64,
    scope: Scope,
    mut run_once: impl FnMut(&mut Machine, bool) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut point = machine.restart_point(kvm, scope, RegisterReset::SyncRegs)?;
    for run in 0..runs {
        if run > 0 {
            machine.restart(&mut point)?;
        }
        run_once(machine, run == 0)?;
    }
    Ok(())
}
