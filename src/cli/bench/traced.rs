//! `rawkvm bench pio|mmio` with trace options (`--trace`, `--trace-file`, `--explain`,
//! `--stats`): what watching costs.
//!
//! Each of [`ROUNDS`] rounds runs the workload untraced and traced on fresh VMs, back to back
//! (in alternating order), and prints
//!
//! ```text
//! pio exits=N ... ns_per_exit=X best_of=15
//! pio+trace exits=N ... ns_per_exit=Y best_of=15 ratio=R ratio_of_best=B
//! ```
//!
//! `R` is the median over rounds of traced over untraced time per exit (1.02: tracing costs
//! 2 %), `B` the ratio of the best runs. Pairing runs that are close in time keeps the ratio
//! steady on a shared, noisy host where absolute times drift.

use std::time::Instant;

use rawkvm::devices::{Devices, Dispatch};
use rawkvm::error::Error;
use rawkvm::exit::Exit;
use rawkvm::guests::Guest;
use rawkvm::image::Image;
use rawkvm::kvm::Kvm;
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::{NoObserver, Observer};

use super::super::trace_flags::TraceFlags;

/// Rounds of one untraced and one traced run.
pub const ROUNDS: usize = 15;

/// Exits and time of one timed run.
#[derive(Debug, Clone, Copy)]
struct Timing {
    exits: u64,
    total_ns: u128,
}

impl Timing {
    fn per_exit(&self) -> f64 {
        self.total_ns as f64 / self.exits.max(1) as f64
    }

    fn line(&self, label: &str, extra: &str) -> String {
        let per_exit = self.per_exit();
        format!(
            "{label} exits={} total_ns={} ns_per_exit={per_exit:.1} exits_per_sec={:.0}{extra}\n",
            self.exits,
            self.total_ns,
            1e9 / per_exit
        )
    }
}

/// Counts the exits an observer sees, passing every hook on.
struct Counting<'a, O: Observer> {
    inner: &'a mut O,
    exits: u64,
}

impl<O: Observer> Observer for Counting<'_, O> {
    #[inline(always)]
    fn before_run(&mut self, vcpu: u32) {
        self.inner.before_run(vcpu);
    }

    #[inline(always)]
    fn after_run(&mut self, vcpu: u32) {
        self.inner.after_run(vcpu);
    }

    #[inline(always)]
    fn exit(&mut self, vcpu: u32, exit: &Exit<'_>, dispatch: Option<Dispatch>) {
        self.exits += 1;
        self.inner.exit(vcpu, exit, dispatch);
    }

    #[inline(always)]
    fn interrupted(&mut self, vcpu: u32, stopping: bool) {
        self.inner.interrupted(vcpu, stopping);
    }
}

/// N accesses by `guest`, each one exit, watched by `observer`, timed from the first
/// `KVM_RUN` to the HLT.
fn timed_run<O: Observer>(
    kvm: &Kvm,
    guest: &Guest,
    count: u64,
    observer: &mut O,
) -> Result<Timing, Error> {
    let param = u32::try_from(count)
        .map_err(|_| Error::Usage(format!("--count {count}: at most {}", u32::MAX)))?;
    let config = MachineConfig {
        param: Some(param),
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(kvm, &config, &Image::embedded(guest.name, guest.image))?;
    let mut devices = Devices::new(std::io::sink());
    let mut counting = Counting {
        inner: observer,
        exits: 0,
    };
    let started = Instant::now();
    machine.run(&mut devices, &mut counting)?;
    Ok(Timing {
        exits: counting.exits,
        total_ns: started.elapsed().as_nanos(),
    })
}

/// [`ROUNDS`] rounds of an untraced and a traced run, back to back; the median of the
/// per-round ratios and the best run of each. The traced runs watch as `rawkvm run` does
/// (trace, flight recorder, and stats if asked for).
pub fn traced_loop(
    kvm: &Kvm,
    label: &str,
    guest: &Guest,
    count: u64,
    trace: &TraceFlags,
) -> Result<String, Error> {
    let traced_run = || -> Result<Timing, Error> {
        let mut watcher = trace.watcher()?;
        let timing = timed_run(kvm, guest, count, &mut watcher)?;
        watcher
            .flush()
            .map_err(|e| Error::Usage(format!("cannot write the trace: {e}")))?;
        Ok(timing)
    };
    let mut pairs = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let pair = if round % 2 == 0 {
            let plain = timed_run(kvm, guest, count, &mut NoObserver)?;
            (plain, traced_run()?)
        } else {
            let traced = traced_run()?;
            (timed_run(kvm, guest, count, &mut NoObserver)?, traced)
        };
        pairs.push(pair);
    }
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|(plain, traced)| traced.per_exit() / plain.per_exit())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let best = |a: Timing, b: Timing| if a.per_exit() <= b.per_exit() { a } else { b };
    let (mut plain, mut traced) = pairs[0];
    for &(p, t) in &pairs[1..] {
        plain = best(plain, p);
        traced = best(traced, t);
    }
    let of_best = traced.per_exit() / plain.per_exit();
    Ok(format!(
        "{}{}",
        plain.line(label, &format!(" best_of={ROUNDS}")),
        traced.line(
            &format!("{label}+trace"),
            &format!(" best_of={ROUNDS} ratio={median:.4} ratio_of_best={of_best:.4}")
        )
    ))
}
