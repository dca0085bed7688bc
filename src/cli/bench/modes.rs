//! `rawkvm bench modes` and `rawkvm bench user`: what one iteration of the same tight loop
//! (`add; dec; jnz`, the `compute` guests) costs in each CPU mode.
//!
//! ```text
//! modes iterations=N total_ns=T ns_per_iteration=X variant=real|protected|long|user
//! user iterations=N total_ns=T ns_per_iteration=X long_iterations=M long_ns_per_iteration=Y long_over_user=R variant=cpl3
//! ```
//!
//! Each run is timed from the first `KVM_RUN` to the end of the run (the guest's few console
//! exits and the exit device are a rounding error beside the loop). On PVM every CPL 0
//! instruction is emulated while CPL 3 code runs natively, so the user loop is given
//! [`USER_SCALE`] times the iterations of the others to run for a comparable time; on VMX/SVM
//! all four run natively and the emulated modes' counts are simply short.

use std::time::Instant;

use crate::cli::status::CliError;
use rawkvm::arch::x86_64::CpuMode;
use rawkvm::devices::Devices;
use rawkvm::kvm::Kvm;
use rawkvm::machine::guests;
use rawkvm::machine::image::Image;
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::NoObserver;

/// How many more iterations the CPL 3 loop runs than the emulated ones.
pub const USER_SCALE: u64 = 10_000;

/// The guest and mode of each `bench modes` variant.
fn guest_of(variant: &str) -> (&'static str, CpuMode) {
    match variant {
        "real" => ("compute_real", CpuMode::Real),
        "protected" => ("compute_protected", CpuMode::Protected),
        "long" => ("compute", CpuMode::Long),
        _ => ("compute", CpuMode::User),
    }
}

/// Runs the loop of `variant` for `iterations` (at most 2^32-1: the guest's parameter) and
/// returns the nanoseconds it took.
fn time_loop(kvm: &Kvm, variant: &str, iterations: u64) -> Result<u128, CliError> {
    let (name, mode) = guest_of(variant);
    let guest =
        guests::find(name).ok_or_else(|| CliError::Usage(format!("no embedded guest {name:?}")))?;
    let mut config = MachineConfig::default();
    config.apply_setup(guest.setup).map_err(CliError::Usage)?;
    config.entry = config.entry.in_mode(mode);
    config.param = Some(u32::try_from(iterations).unwrap_or(u32::MAX));
    let mut machine = Machine::new(kvm, &config, &Image::embedded(guest.name, guest.image))?;
    let mut devices = Devices::new(std::io::sink());
    let started = Instant::now();
    machine.run(&mut devices, &mut NoObserver)?;
    Ok(started.elapsed().as_nanos())
}

/// The iterations `bench modes` gives `variant` for a `count`.
pub fn iterations(variant: &str, count: u64) -> u64 {
    let scaled = if variant == "user" {
        count.saturating_mul(USER_SCALE)
    } else {
        count
    };
    scaled.min(u64::from(u32::MAX))
}

/// `bench modes --variant V --count N`: one line.
pub fn modes(kvm: &Kvm, variant: &str, count: u64) -> Result<String, CliError> {
    let iterations = iterations(variant, count);
    let total_ns = time_loop(kvm, variant, iterations)?;
    Ok(format!(
        "modes iterations={iterations} total_ns={total_ns} ns_per_iteration={:.3} \
         variant={variant}",
        total_ns as f64 / iterations as f64
    ))
}

/// `bench user --count N`: N iterations at CPL 3, N / [`USER_SCALE`] at CPL 0 in long mode,
/// and the ratio of their times per iteration, measured in the same run.
pub fn user(kvm: &Kvm, count: u64) -> Result<String, CliError> {
    let long_iterations = (count / USER_SCALE).max(1);
    let user_ns = time_loop(kvm, "user", count)?;
    let long_ns = time_loop(kvm, "long", long_iterations)?;
    let per_user = user_ns as f64 / count as f64;
    let per_long = long_ns as f64 / long_iterations as f64;
    Ok(format!(
        "user iterations={count} total_ns={user_ns} ns_per_iteration={per_user:.3} \
         long_iterations={long_iterations} long_ns_per_iteration={per_long:.3} \
         long_over_user={:.1} variant=cpl3",
        per_long / per_user
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_loop_is_scaled_and_capped() {
        assert_eq!(iterations("real", 20_000), 20_000);
        assert_eq!(iterations("user", 20_000), 200_000_000);
        assert_eq!(iterations("user", 1 << 40), u64::from(u32::MAX));
        assert_eq!(
            guest_of("protected"),
            ("compute_protected", CpuMode::Protected)
        );
        assert_eq!(guest_of("user"), ("compute", CpuMode::User));
    }
}
