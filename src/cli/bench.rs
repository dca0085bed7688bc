//! `rawkvm bench`: exit round trips and VM start-up, one `key=value` line per run.
//!
//! ```text
//! pio exits=N total_ns=T ns_per_exit=X exits_per_sec=R
//! mmio exits=N total_ns=T ns_per_exit=X exits_per_sec=R
//! start vms=K total_ns=T us_per_vm=X
//! ```
//!
//! `pio` and `mmio` build the VM first and time from just before the first `KVM_RUN` to the
//! final HLT; `exits` counts every exit in that window (the N accesses and the HLT). `start`
//! times K whole cycles: create the VM, map 1 MiB, load `hlt`, create the vCPU, map `kvm_run`,
//! set the registers, run to HLT, tear everything down. Absolute numbers depend on the host;
//! compare ratios measured in one run.
//!
//! With trace options (`--trace`, `--trace-file`, `--explain`, `--stats`), `pio` and `mmio`
//! measure the cost of watching: each of [`ROUNDS`] rounds runs the workload untraced and
//! traced on fresh VMs, back to back (in alternating order), and
//!
//! ```text
//! pio exits=N ... ns_per_exit=X best_of=15
//! pio+trace exits=N ... ns_per_exit=Y best_of=15 ratio=R ratio_of_best=B
//! ```
//!
//! gives `R`, the median over rounds of traced over untraced time per exit (1.02: tracing
//! costs 2 %), and `B`, the ratio of the best runs. Pairing runs that are close in time keeps
//! the ratio steady on a shared, noisy host where absolute times drift.

use std::path::PathBuf;
use std::time::Instant;

use rawkvm::devices::Devices;
use rawkvm::error::{Error, status};
use rawkvm::guests;
use rawkvm::image::Image;
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::{NoObserver, Observer};
use rawkvm::units::parse_u64;

use super::args::{Arg, Args, parse_flag};
use super::trace_flags::TraceFlags;
use super::{print_out, unexpected};

/// Rounds of one untraced and one traced run, when trace options are given.
pub const ROUNDS: usize = 15;

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Workload {
    Pio,
    Mmio,
    Start,
}

impl Workload {
    fn parse(name: &str) -> Result<Workload, Error> {
        Ok(match name {
            "pio" => Workload::Pio,
            "mmio" => Workload::Mmio,
            "start" => Workload::Start,
            other => {
                return Err(Error::Usage(format!(
                    "unknown benchmark {other:?}; choose pio, mmio or start"
                )));
            }
        })
    }

    fn default_count(self) -> u64 {
        match self {
            Workload::Pio | Workload::Mmio => 100_000,
            Workload::Start => 1_000,
        }
    }
}

/// `rawkvm bench WORKLOAD [--count N] [--kvm-device PATH]`.
pub fn command(mut args: Args) -> Result<i32, Error> {
    let mut workload = None;
    let mut count = None;
    let mut device = PathBuf::from(DEFAULT_DEVICE);
    let mut trace = TraceFlags::default();
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Positional(name) if workload.is_none() => workload = Some(Workload::parse(&name)?),
            Arg::Flag(flag, inline) if flag == "--count" => {
                let text = args.value(&flag, inline).map_err(Error::Usage)?;
                count = Some(parse_flag(&flag, &text, parse_u64).map_err(Error::Usage)?);
            }
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                device = PathBuf::from(args.value(&flag, inline).map_err(Error::Usage)?);
            }
            Arg::Flag(flag, inline) if TraceFlags::owns(&flag) => {
                trace.apply(&flag, inline, &mut args)?;
            }
            other => return Err(unexpected("bench", other)),
        }
    }
    let workload = workload
        .ok_or_else(|| Error::Usage("bench needs a workload: pio, mmio or start".into()))?;
    let count = count.unwrap_or(workload.default_count());
    let kvm = Kvm::open_path(&device)?;
    let guest = match workload {
        Workload::Pio => "pio_loop",
        Workload::Mmio => "mmio_loop",
        Workload::Start if trace.any() => {
            return Err(Error::Usage(
                "trace options apply to bench pio and mmio, not start".into(),
            ));
        }
        Workload::Start => return print_out(&start(&kvm, count)?),
    };
    let label = if workload == Workload::Pio {
        "pio"
    } else {
        "mmio"
    };
    let line = if trace.any() {
        traced_loop(&kvm, label, guest, count, &trace)?
    } else {
        let timing = exit_loop(&kvm, guest, count, &mut NoObserver)?;
        timing.line(label, "")
    };
    print_out(&line)?;
    Ok(status::HALTED)
}

fn embedded(name: &str) -> Result<Image, Error> {
    let guest = guests::find(name)
        .ok_or_else(|| Error::Usage(format!("embedded guest {name:?} is missing")))?;
    Ok(Image::embedded(guest.name, guest.image))
}

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

/// Counts the exits an observer sees, passing them on.
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
    fn exit(
        &mut self,
        vcpu: u32,
        exit: &rawkvm::exit::Exit<'_>,
        dispatch: Option<rawkvm::devices::Dispatch>,
    ) {
        self.exits += 1;
        self.inner.exit(vcpu, exit, dispatch);
    }

    #[inline(always)]
    fn interrupted(&mut self, vcpu: u32, stopping: bool) {
        self.inner.interrupted(vcpu, stopping);
    }
}

/// N accesses by `guest`, each one exit, watched by `observer` and timed from the first
/// `KVM_RUN` to the HLT.
fn exit_loop<O: Observer>(
    kvm: &Kvm,
    guest: &str,
    count: u64,
    observer: &mut O,
) -> Result<Timing, Error> {
    let param = u32::try_from(count)
        .map_err(|_| Error::Usage(format!("--count {count}: at most {}", u32::MAX)))?;
    let config = MachineConfig {
        param: Some(param),
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(kvm, &config, &embedded(guest)?)?;
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
fn traced_loop(
    kvm: &Kvm,
    label: &str,
    guest: &str,
    count: u64,
    trace: &TraceFlags,
) -> Result<String, Error> {
    let traced_run = || -> Result<Timing, Error> {
        let mut watcher = trace.watcher()?;
        let timing = exit_loop(kvm, guest, count, &mut watcher)?;
        watcher
            .flush()
            .map_err(|e| Error::Usage(format!("cannot write the trace: {e}")))?;
        Ok(timing)
    };
    let mut pairs = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let pair = if round % 2 == 0 {
            let plain = exit_loop(kvm, guest, count, &mut NoObserver)?;
            (plain, traced_run()?)
        } else {
            let traced = traced_run()?;
            (exit_loop(kvm, guest, count, &mut NoObserver)?, traced)
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

/// K whole create-run-destroy cycles of the `hlt` guest.
fn start(kvm: &Kvm, vms: u64) -> Result<String, Error> {
    let image = embedded("hlt")?;
    let config = MachineConfig::default();
    let mut devices = Devices::new(std::io::sink());
    let started = Instant::now();
    for _ in 0..vms {
        let mut machine = Machine::new(kvm, &config, &image)?;
        machine.run(&mut devices, &mut NoObserver)?;
    }
    let total_ns = started.elapsed().as_nanos();
    let per_vm = total_ns as f64 / vms.max(1) as f64 / 1e3;
    Ok(format!(
        "start vms={vms} total_ns={total_ns} us_per_vm={per_vm:.1}\n"
    ))
}
