//! `rawkvm bench suite`: every workload and variant, rawkvm and the C baseline alternating,
//! repeated; min / median / max of each, the rawkvm/C ratio, and the project's targets.
//!
//! ```text
//! for each workload, for each variant, R times:
//!     rawkvm (in this process), then C (a child process)     odd repetitions: C first
//! ratio = median over repetitions of rawkvm_i / C_i          pairs measured back to back
//!         (and, in parentheses, min rawkvm / min C: what is left when noise only adds)
//! ```
//!
//! The machine is shared and noisy: medians and back-to-back pairs are what hold up; single
//! numbers do not.

use std::io::Write;
use std::path::PathBuf;

use crate::cli::status::{self, CliError};
use rawkvm::exit::hardware::kvm_backend;
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::units::parse_u64;

use super::baseline::Baseline;
use super::{
    WORKLOADS, Workload, embedded, field, workload, workload as workload_named, workloads,
};
use crate::cli::args::{Arg, Args, parse_flag};
use crate::cli::{stdout_error, unexpected};

/// The most `--reps` the suite accepts: a bound, so that a typo cannot start a run of hours.
const MAX_REPS: u64 = 1000;

/// The workloads whose figures `workload`'s targets divide by, run first with
/// `--workload`: C's create-run-destroy cycle for the two that are judged against it.
fn references(workload: &Workload) -> &'static [&'static str] {
    match workload.name {
        "start-async" | "restart" => &["start"],
        _ => &[],
    }
}

/// What the suite was asked for.
struct Options {
    reps: usize,
    quick: bool,
    baseline: bool,
    markdown: bool,
    only: Option<&'static Workload>,
    device: PathBuf,
}

fn parse(mut args: Args) -> Result<Options, CliError> {
    let mut options = Options {
        reps: 15,
        quick: false,
        baseline: true,
        markdown: false,
        only: None,
        device: PathBuf::from(DEFAULT_DEVICE),
    };
    let mut reps = None;
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, inline) if flag == "--reps" => {
                let text = args.value(&flag, inline).map_err(CliError::Usage)?;
                let in_range = |text: &str| match parse_u64(text)? {
                    value @ 1..=MAX_REPS => Ok(value as usize),
                    _ => Err(format!("repetitions must be 1 to {MAX_REPS}")),
                };
                reps = Some(parse_flag(&flag, &text, in_range).map_err(CliError::Usage)?);
            }
            Arg::Flag(flag, inline) if flag == "--workload" => {
                options.only = Some(workload(
                    &args.value(&flag, inline).map_err(CliError::Usage)?,
                )?);
            }
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                options.device = PathBuf::from(args.value(&flag, inline).map_err(CliError::Usage)?);
            }
            Arg::Flag(flag, None) if flag == "--quick" => options.quick = true,
            Arg::Flag(flag, None) if flag == "--no-baseline" => options.baseline = false,
            Arg::Flag(flag, None) if flag == "--markdown" => options.markdown = true,
            other => return Err(unexpected("bench suite", other)),
        }
    }
    options.reps = reps.unwrap_or(if options.quick { 3 } else { 15 });
    Ok(options)
}

/// Min, median, max of some samples.
#[derive(Debug, Clone, Copy)]
struct Stats {
    min: f64,
    median: f64,
    max: f64,
}

impl Stats {
    fn of(samples: &[f64]) -> Option<Stats> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => return None,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Some(Stats {
            min: sorted[0],
            median,
            max: sorted[n - 1],
        })
    }
}

/// The results for one workload and variant.
struct Row {
    workload: &'static Workload,
    variant: &'static str,
    count: u64,
    rawkvm: Stats,
    c: Option<Stats>,
    /// Median of the back-to-back rawkvm/C ratios.
    ratio: Option<f64>,
}

/// `rawkvm bench suite [--reps R] [--quick] [--no-baseline] [--workload W] [--markdown]`.
pub fn command(args: Args) -> Result<i32, CliError> {
    let options = parse(args)?;
    let selected: Vec<&'static Workload> = match options.only {
        Some(workload) => references(workload)
            .iter()
            .map(|name| workload_named(name))
            .collect::<Result<Vec<_>, _>>()?
            .into_iter()
            .chain([workload])
            .collect(),
        None => WORKLOADS.iter().collect(),
    };
    let guests = selected
        .iter()
        .map(|w| embedded(w.guest))
        .collect::<Result<Vec<_>, _>>()?;
    let kvm = Kvm::open_path(&options.device)?;
    let baseline = if options.baseline {
        Baseline::build(&guests)
            .map_err(|why| eprintln!("bench suite: no C baseline: {why}"))
            .ok()
    } else {
        None
    };
    let mut out = Output::new(options.markdown);
    out.header(&options, baseline.as_ref())?;
    let mut rows = Vec::new();
    for workload in selected {
        for &variant in workload.variants {
            let row = measure_row(&kvm, baseline.as_ref(), workload, variant, &options)?;
            out.row(&row)?;
            rows.push(row);
        }
    }
    out.targets(&rows, !options.quick)?;
    Ok(status::HALTED)
}

fn measure_row(
    kvm: &Kvm,
    baseline: Option<&Baseline>,
    workload: &'static Workload,
    variant: &'static str,
    options: &Options,
) -> Result<Row, CliError> {
    let count = if options.quick {
        (workload.suite_count / 10).max(1)
    } else {
        workload.suite_count
    };
    let guest = embedded(workload.guest)?;
    let baseline = baseline.filter(|_| workload.c_baseline);
    let metric = |line: &str| {
        field(line, workload.metric)
            .ok_or_else(|| CliError::Usage(format!("no {} in the line {line:?}", workload.metric)))
    };
    let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for rep in 0..options.reps {
        let mut c_value = None;
        let baseline = baseline.filter(|_| workload.c_baseline);
        let run_c = || match baseline.map(|b| b.measure(workload, variant, count, guest)) {
            Some(Ok(line)) => field(&line, workload.metric),
            Some(Err(why)) => {
                eprintln!("bench suite: {why}");
                None
            }
            None => None,
        };
        if rep % 2 == 1 {
            c_value = run_c();
        }
        let value = metric(&workloads::measure(kvm, workload, variant, count, guest)?)?;
        if rep % 2 == 0 {
            c_value = run_c();
        }
        ours.push(value);
        if let Some(c) = c_value {
            theirs.push(c);
            ratios.push(value / c);
        }
    }
    Ok(Row {
        workload,
        variant,
        count,
        rawkvm: Stats::of(&ours).ok_or_else(|| CliError::Usage("no samples".into()))?,
        c: Stats::of(&theirs),
        ratio: Stats::of(&ratios).map(|s| s.median),
    })
}

/// Where the report goes: a plain table, or Markdown for the README.
struct Output {
    markdown: bool,
    stdout: std::io::Stdout,
}

fn three(stats: Option<Stats>) -> String {
    match stats {
        Some(s) => format!("{:.1} / {:.1} / {:.1}", s.min, s.median, s.max),
        None => "-".to_string(),
    }
}

impl Output {
    fn new(markdown: bool) -> Output {
        Output {
            markdown,
            stdout: std::io::stdout(),
        }
    }

    fn line(&mut self, text: &str) -> Result<(), CliError> {
        let mut out = self.stdout.lock();
        writeln!(out, "{text}")
            .and_then(|()| out.flush())
            .map_err(stdout_error)
    }

    fn header(&mut self, options: &Options, baseline: Option<&Baseline>) -> Result<(), CliError> {
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
        let against = baseline.map_or("no C baseline".to_string(), |b| {
            format!("C baseline built with {}", b.compiler)
        });
        self.line(&format!(
            "rawkvm bench suite: KVM backend {}, kernel {}, {cpus} CPUs, load average {}, {} \
             repetitions, rawkvm and C alternating, {against}",
            kvm_backend().unwrap_or("unknown"),
            kernel.trim(),
            load_average(),
            options.reps
        ))?;
        self.line("per-operation times, lower is better: min / median / max")?;
        if self.markdown {
            self.line("")?;
            self.line("| workload | variant | count | per | rawkvm | C | rawkvm/C |")?;
            self.line("|---|---|---|---|---|---|---|")
        } else {
            self.line(&format!(
                "{:<12} {:<10} {:>7} {:<12} {:<30} {:<30} {}",
                "workload", "variant", "count", "per", "rawkvm", "C", "rawkvm/C"
            ))
        }
    }

    fn row(&mut self, row: &Row) -> Result<(), CliError> {
        let ratio = match (row.ratio, row.c) {
            (Some(r), Some(c)) => format!("{r:.3} ({:.3})", row.rawkvm.min / c.min),
            _ => "-".to_string(),
        };
        let (w, v, n, m) = (
            row.workload.name,
            row.variant,
            row.count,
            row.workload.metric,
        );
        let (ours, theirs) = (three(Some(row.rawkvm)), three(row.c));
        if self.markdown {
            self.line(&format!(
                "| {w} | {v} | {n} | {m} | {ours} | {theirs} | {ratio} |"
            ))
        } else {
            self.line(&format!(
                "{w:<12} {v:<10} {n:>7} {m:<12} {ours:<30} {theirs:<30} {ratio}"
            ))
        }
    }

    /// The targets, judged, or (`judged` false: a `--quick` smoke run, whose few short
    /// repetitions say nothing about speed) shown with their figures but no verdict.
    fn targets(&mut self, rows: &[Row], judged: bool) -> Result<(), CliError> {
        let find = |w: &str, v: &str| rows.iter().find(|r| r.workload.name == w && r.variant == v);
        let rawkvm = |w, v| find(w, v).map(|r| r.rawkvm.median);
        let c = |w, v| find(w, v).and_then(|r| r.c).map(|s| s.median);
        // Targets that compare two workloads use C's fastest cycle: noise only slows a cycle
        // down, and the fastest one makes both of those targets harder, not easier.
        let c_cycle = find("start", "plain").and_then(|r| r.c).map(|s| s.min);
        let ratio = |w, v| find(w, v).and_then(|r| r.ratio);
        let mut lines = Vec::new();
        for w in ["pio", "mmio"] {
            lines.push(judge(
                &format!("{w}: rawkvm/C"),
                ratio(w, "plain"),
                "<=",
                1.01,
            ));
        }
        lines.push(judge(
            "start: rawkvm/C",
            ratio("start", "plain"),
            "<=",
            1.00,
        ));
        lines.push(judge(
            "start-async: rawkvm time to HLT / C's fastest create-run-destroy cycle",
            rawkvm("start-async", "reaper")
                .zip(c_cycle)
                .map(|(a, b)| a / b),
            "<=",
            0.35,
        ));
        // The issue's >= 100x is about the restart `--repeat` does, which puts everything
        // back (FPU, MSRs, debug registers: four vCPU ioctls more than registers only).
        let speedup = |w, v| c_cycle.zip(rawkvm(w, v)).map(|(a, b)| a / b);
        lines.push(judge(
            "restart: C's fastest cycle / rawkvm full restart (FPU, MSRs, debug registers too)",
            speedup("restart", "full"),
            ">=",
            100.0,
        ));
        lines.push(judge(
            "console: coalesced bytes/s / plain bytes/s",
            rawkvm("console", "plain")
                .zip(rawkvm("console", "coalesced"))
                .map(|(a, b)| a / b),
            ">=",
            4.0,
        ));
        if let Some(ratio) = rawkvm("doorbell", "exit").zip(rawkvm("doorbell", "ioeventfd")) {
            lines.push(format!(
                "info    doorbell: a full exit / an ioeventfd write = {:.2}",
                ratio.0 / ratio.1
            ));
        }
        for (variant, what) in [
            (
                "registers",
                "registers-only restart (--restart-scope registers)",
            ),
            ("ioctl", "full restart, registers reset by ioctls"),
        ] {
            if let Some(speedup) = speedup("restart", variant) {
                lines.push(format!(
                    "info    restart ({variant}): C's fastest cycle / rawkvm {what} = {speedup:.1}"
                ));
            }
        }
        // C restores registers only, in place: as fast as a restart can be here.
        if let Some(ceiling) = c_cycle.zip(c("restart", "registers")).map(|(a, b)| a / b) {
            lines.push(format!(
                "info    restart (C, registers only: the ceiling): C's fastest cycle / C's \
                 restart = {ceiling:.1}"
            ));
        }
        for w in ["pio", "mmio"] {
            for v in ["valid-regs", "get-regs"] {
                if let Some(cost) = rawkvm(w, v).zip(rawkvm(w, "plain")).map(|(a, b)| a / b) {
                    lines.push(format!(
                        "info    {w} {v}: {cost:.3} x the plain exit (rawkvm), C {}",
                        c(w, v)
                            .zip(c(w, "plain"))
                            .map_or("-".into(), |(a, b)| format!("{:.3} x", a / b))
                    ));
                }
            }
        }
        let per_mode: Vec<String> = ["real", "protected", "long", "user"]
            .iter()
            .filter_map(|v| rawkvm("modes", v).map(|ns| format!("{v} {ns:.3}")))
            .collect();
        if !per_mode.is_empty() {
            lines.push(format!(
                "info    modes: ns per loop iteration: {}",
                per_mode.join(", ")
            ));
        }
        if let Some(ratio) = rawkvm("modes", "long").zip(rawkvm("modes", "user")) {
            lines.push(format!(
                "info    modes: long (CPL 0) / user (CPL 3) per iteration = {:.0}",
                ratio.0 / ratio.1
            ));
        }
        self.line("")?;
        for line in lines {
            match line.strip_prefix("target  ") {
                Some(target) if !judged && !target.ends_with("(not measured)") => {
                    let figure = target
                        .strip_suffix(": met")
                        .or_else(|| target.strip_suffix(": MISSED"))
                        .unwrap_or(target);
                    self.line(&format!("smoke   {figure}: not judged (--quick)"))?;
                }
                Some(target) if !judged => self.line(&format!("smoke   {target}"))?,
                _ => self.line(&line)?,
            }
        }
        self.line(&format!("load average at the end: {}", load_average()))
    }
}

/// The 1-minute load average (`/proc/loadavg`): how shared the machine was.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// `target NAME: VALUE OP BOUND: met|MISSED`, or n/a when a figure is missing.
fn judge(name: &str, value: Option<f64>, op: &str, bound: f64) -> String {
    match value {
        None => format!("target  {name}: n/a (not measured)"),
        Some(value) => {
            let met = if op == "<=" {
                value <= bound
            } else {
                value >= bound
            };
            let verdict = if met { "met" } else { "MISSED" };
            format!("target  {name}: {value:.3} {op} {bound}: {verdict}")
        }
    }
}
