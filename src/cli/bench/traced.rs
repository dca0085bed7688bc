//! `rawkvm bench pio|mmio` with trace options (`--trace`, `--trace-file`, `--explain`,
//! `--stats`): what watching costs.
//!
//! Each of [`ROUNDS`] rounds runs the workload untraced and traced on fresh VMs, back to back
//! (in alternating order), and prints
//!
//! ```text
//! pio exits=N ... ns_per_exit=X exits_per_sec=E variant=plain best_of=15
//! pio+trace exits=N ... ns_per_exit=Y exits_per_sec=F variant=plain best_of=15 ratio=R ratio_of_best=B
//! ```
//!
//! `R` is the median over rounds of traced over untraced time per exit (1.02: tracing costs
//! 2 %), `B` the ratio of the best runs. Pairing runs that are close in time keeps the ratio
//! steady on a shared, noisy host where absolute times drift. Every traced run writes to the
//! one trace sink (the `--trace-file` holds all of them); with `--stats`, the statistics of
//! the last traced run are printed on stderr.

use std::io::{self, BufWriter, Write};
use std::time::Instant;

use crate::cli::status::CliError;
use rawkvm::devices::Devices;
use rawkvm::kvm::Kvm;
use rawkvm::machine::Machine;
use rawkvm::machine::guests::Guest;
use rawkvm::machine::image::Image;
use rawkvm::run_loop::{ExitCounter, Observer};

use super::{Options, workloads};
use crate::cli::trace_flags::{TraceFlags, TraceSink, write_stats};

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
        let line = workloads::exit_line(label, self.exits, self.total_ns, "plain");
        format!("{line} best_of={ROUNDS}{extra}\n")
    }
}

/// N accesses by `guest`, each one exit, watched by `observer`, timed from the first
/// `KVM_RUN` to the HLT: the nanoseconds, and the machine for its kernel counters.
fn timed_run<O: Observer>(
    kvm: &Kvm,
    guest: &Guest,
    count: u64,
    observer: &mut O,
) -> Result<(u128, Machine), CliError> {
    let image = Image::embedded(guest.name, guest.image);
    let mut machine = workloads::machine(kvm, &image, count, false)?;
    let mut devices = Devices::new(std::io::sink());
    let started = Instant::now();
    machine.run(&mut devices, observer)?;
    Ok((started.elapsed().as_nanos(), machine))
}

/// One run as `rawkvm bench pio` (plain) makes it: only counted.
fn plain_run(kvm: &Kvm, guest: &Guest, count: u64) -> Result<Timing, CliError> {
    let mut counter = ExitCounter::default();
    let (total_ns, _) = timed_run(kvm, guest, count, &mut counter)?;
    Ok(Timing {
        exits: counter.exits,
        total_ns,
    })
}

/// The traced runs: one trace sink for all of them, and the statistics of the last.
struct TracedRuns<'a> {
    flags: &'a TraceFlags,
    sink: TraceSink,
    last_stats: Vec<u8>,
}

impl TracedRuns<'_> {
    /// One run watched as `rawkvm run` watches (trace, flight recorder, stats if asked for).
    fn run(&mut self, kvm: &Kvm, guest: &Guest, count: u64) -> Result<Timing, CliError> {
        // The observer owns the sink during the run and hands it back after.
        let sink = std::mem::replace(&mut self.sink, BufWriter::new(Box::new(io::sink())));
        let mut observer = self.flags.observer(sink);
        let (total_ns, mut machine) = timed_run(kvm, guest, count, &mut observer)?;
        let timing = Timing {
            exits: observer.exits(),
            total_ns,
        };
        observer
            .flush()
            .map_err(|error| self.flags.output_error(error))?;
        if self.flags.stats {
            self.last_stats.clear();
            // Writing into a Vec cannot fail.
            let _ = write_stats(&observer, &mut machine, &mut self.last_stats);
        }
        self.sink = observer.into_sink();
        Ok(timing)
    }
}

/// [`ROUNDS`] rounds of an untraced and a traced run, back to back; the median of the
/// per-round ratios and the best run of each.
pub fn traced_loop(kvm: &Kvm, options: &Options, sink: TraceSink) -> Result<String, CliError> {
    let (label, guest, count) = (options.workload.name, options.guest, options.count);
    let mut traced = TracedRuns {
        flags: &options.trace,
        sink,
        last_stats: Vec::new(),
    };
    let mut pairs = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let pair = if round % 2 == 0 {
            let plain = plain_run(kvm, guest, count)?;
            (plain, traced.run(kvm, guest, count)?)
        } else {
            let watched = traced.run(kvm, guest, count)?;
            (plain_run(kvm, guest, count)?, watched)
        };
        pairs.push(pair);
    }
    if options.trace.stats {
        // Nobody is left to tell if stderr is gone; the result line still goes to stdout.
        let _ = std::io::stderr().write_all(&traced.last_stats);
    }
    let mut ratios: Vec<f64> = pairs
        .iter()
        .map(|(plain, traced)| traced.per_exit() / plain.per_exit())
        .collect();
    ratios.sort_by(f64::total_cmp);
    let median = ratios[ratios.len() / 2];
    let best = |a: Timing, b: Timing| if a.per_exit() <= b.per_exit() { a } else { b };
    let (mut plain, mut watched) = pairs[0];
    for &(p, t) in &pairs[1..] {
        plain = best(plain, p);
        watched = best(watched, t);
    }
    let of_best = watched.per_exit() / plain.per_exit();
    Ok(format!(
        "{}{}",
        plain.line(label, ""),
        watched.line(
            &format!("{label}+trace"),
            &format!(" ratio={median:.4} ratio_of_best={of_best:.4}")
        )
    ))
}
