//! `rawkvm bench`: one workload, one `key=value` line; or `rawkvm bench suite`, every workload
//! and variant against a C baseline.
//!
//! ```text
//! pio exits=N total_ns=T ns_per_exit=X exits_per_sec=R variant=plain
//! mmio exits=N total_ns=T ns_per_exit=X exits_per_sec=R variant=plain
//! start vms=K total_ns=T us_per_vm=X variant=plain
//! start-async vms=K total_ns=T us_per_vm=X us_to_hlt=Y variant=reaper
//! restart runs=N total_ns=T us_per_run=X dirty_pages=D vcpu_ioctls=K reset=sync-regs variant=full
//! console bytes=N total_ns=T ns_per_byte=X bytes_per_sec=R variant=coalesced
//! modes iterations=N total_ns=T ns_per_iteration=X variant=user
//! user iterations=N total_ns=T ns_per_iteration=X long_iterations=M long_ns_per_iteration=Y long_over_user=R variant=cpl3
//! doorbell writes=2N total_ns=T ns_per_write=X exit_ns_per_write=Y ratio=R variant=ioeventfd
//! ```
//!
//! | workload | what is timed | variants (the first is the default) |
//! |---|---|---|
//! | `pio`, `mmio` | N one-byte accesses, one exit each, from the first `KVM_RUN` to the HLT | `plain`; `valid-regs` (`kvm_valid_regs` on, RIP read in place at each exit); `get-regs` (`KVM_GET_REGS` at each exit) |
//! | `start` | K cycles: create the VM, 1 MiB RAM, image, vCPU, registers, run to HLT, destroy | `plain` |
//! | `start-async` | the same, each VM dropped on the reaper thread; `us_to_hlt` is the median time from the start of a creation to that VM's HLT | `reaper` |
//! | `restart` | N runs on one VM, each followed by a restore; `vcpu_ioctls` is what one restore costs in vCPU ioctls | `full` (what `--repeat` does: dirty pages, registers in place, FPU, MSRs, debug registers, ...), `registers` (`--restart-scope registers`: dirty pages and registers in place only), `ioctl` (the full scope, registers reset by ioctls) |
//! | `console` | N bytes to port 0xE9 (`console_burst`), first `KVM_RUN` to HLT | `coalesced`, `plain` |
//! | `modes` | the `compute` loop (`add; dec; jnz`) in one CPU mode: N iterations, 10,000 N at CPL 3 (`modes.rs`) | `user`, `long`, `protected`, `real` |
//! | `user` | N iterations at CPL 3 and N / 10,000 in long mode at CPL 0, and their ratio | `cpl3` |
//! | `doorbell` | N writes each to port 0x512 and GPA 0x100000 (`doorbell`), first `KVM_RUN` to HLT; `ioeventfd` also times the full exits and gives `ratio` (no C baseline) | `ioeventfd` (`KVM_IOEVENTFD`, no exit), `exit` |
//!
//! `start`, `start-async` and `restart` run 10 untimed iterations first, like the C baseline.
//! Absolute numbers depend on the host; compare ratios measured in one run (the suite).

mod baseline;
mod doorbell;
mod filled;
mod fork;
mod modes;
mod snapshot;
mod suite;
mod traced;
mod workloads;

use std::path::PathBuf;

use crate::cli::status::CliError;
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::machine::guests::{self, Guest};
use rawkvm::units::parse_u64;

use super::args::{Arg, Args, parse_flag};
use super::trace_flags::TraceFlags;
use super::{print_out, unexpected};

/// A workload: its name, variants, guest, the key its line reports per operation, and counts.
#[derive(Debug)]
pub struct Workload {
    /// Name on the command line and first word of the line.
    pub name: &'static str,
    /// Variants, the default first.
    pub variants: &'static [&'static str],
    /// The embedded guest it runs.
    pub guest: &'static str,
    /// The key of the per-operation figure (lower is better).
    pub metric: &'static str,
    /// Default count for a single run.
    pub count: u64,
    /// Count the suite uses.
    pub suite_count: u64,
    /// Whether `baseline.c` has it (the CPU-mode loops have no C counterpart).
    pub c_baseline: bool,
}

/// Every workload, in the order the suite runs them.
pub const WORKLOADS: &[Workload] = &[
    Workload {
        name: "pio",
        variants: &["plain", "valid-regs", "get-regs"],
        guest: "pio_loop",
        metric: "ns_per_exit",
        count: 100_000,
        suite_count: 5_000,
        c_baseline: true,
    },
    Workload {
        name: "mmio",
        variants: &["plain", "valid-regs", "get-regs"],
        guest: "mmio_loop",
        metric: "ns_per_exit",
        count: 100_000,
        suite_count: 5_000,
        c_baseline: true,
    },
    Workload {
        name: "start",
        variants: &["plain"],
        guest: "hlt",
        metric: "us_per_vm",
        count: 1_000,
        suite_count: 100,
        c_baseline: true,
    },
    Workload {
        name: "start-async",
        variants: &["reaper"],
        guest: "hlt",
        metric: "us_to_hlt",
        count: 1_000,
        suite_count: 100,
        c_baseline: true,
    },
    Workload {
        name: "restart",
        variants: &["full", "registers", "ioctl"],
        guest: "hlt",
        metric: "us_per_run",
        count: 10_000,
        suite_count: 2_000,
        c_baseline: true,
    },
    Workload {
        name: "console",
        variants: &["coalesced", "plain"],
        guest: "console_burst",
        metric: "ns_per_byte",
        count: 100_000,
        suite_count: 10_000,
        c_baseline: true,
    },
    Workload {
        name: "modes",
        variants: &["user", "long", "protected", "real"],
        guest: "compute",
        metric: "ns_per_iteration",
        count: 100_000,
        suite_count: 20_000,
        c_baseline: false,
    },
    Workload {
        name: "user",
        variants: &["cpl3"],
        guest: "compute",
        metric: "ns_per_iteration",
        count: 1_000_000_000,
        suite_count: 200_000_000,
        c_baseline: false,
    },
    Workload {
        name: "doorbell",
        variants: &["ioeventfd", "exit"],
        guest: "doorbell",
        metric: "ns_per_write",
        count: 10_000,
        suite_count: 2_000,
        c_baseline: false,
    },
];

/// The workload called `name`.
pub fn workload(name: &str) -> Result<&'static Workload, CliError> {
    WORKLOADS.iter().find(|w| w.name == name).ok_or_else(|| {
        let names: Vec<&str> = WORKLOADS.iter().map(|w| w.name).collect();
        CliError::Usage(format!(
            "unknown benchmark {name:?}; choose {}, fork, snapshot or suite",
            names.join(", ")
        ))
    })
}

impl Workload {
    /// Checks a `--count` before anything runs: at least 1, and, where the guest gets it as
    /// its 32-bit parameter (`pio`, `mmio`, `console`, `modes`, `user`), at most 2^32-1.
    pub fn check_count(&self, count: u64) -> Result<(), CliError> {
        if count == 0 {
            return Err(CliError::Usage(format!(
                "bench {}: --count must be at least 1",
                self.name
            )));
        }
        if matches!(
            self.name,
            "pio" | "mmio" | "console" | "modes" | "user" | "doorbell"
        ) && u32::try_from(count).is_err()
        {
            return Err(CliError::Usage(format!(
                "bench {}: --count {count}: at most {}",
                self.name,
                u32::MAX
            )));
        }
        Ok(())
    }

    /// `variant` if this workload has it.
    pub fn variant(&self, variant: &str) -> Result<&'static str, CliError> {
        self.variants
            .iter()
            .copied()
            .find(|v| *v == variant)
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "bench {}: no variant {variant:?}; choose {}",
                    self.name,
                    self.variants.join(", ")
                ))
            })
    }
}

/// An embedded guest by name.
pub fn embedded(name: &str) -> Result<&'static Guest, CliError> {
    guests::find(name).ok_or_else(|| CliError::Usage(format!("no embedded guest {name:?}")))
}

/// The value of `key` in a `key=value` line.
pub fn field(line: &str, key: &str) -> Option<f64> {
    line.split_whitespace()
        .filter_map(|item| item.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, value)| value.parse().ok())
}

/// What `rawkvm bench WORKLOAD` was asked to do.
struct Options {
    workload: &'static Workload,
    variant: &'static str,
    count: u64,
    guest: &'static Guest,
    device: PathBuf,
    trace: TraceFlags,
}

/// `rawkvm bench WORKLOAD [--variant V] [--count N] [--guest NAME] [--kvm-device PATH]`, or
/// `rawkvm bench suite ...`. Every flag is checked, and the trace file created, before the
/// KVM device is opened.
pub fn command(mut args: Args) -> Result<i32, CliError> {
    let name = match args.next_arg() {
        Some(Arg::Positional(name)) => name,
        Some(other) => return Err(unexpected("bench", other)),
        None => {
            return Err(CliError::Usage(
                "bench needs a workload: pio, mmio, start, start-async, restart, console, modes, \
                 user, doorbell, fork, snapshot or suite"
                    .into(),
            ));
        }
    };
    if name == "suite" {
        return suite::command(args);
    }
    if name == "fork" {
        return fork::command(args);
    }
    if name == "snapshot" {
        return snapshot::command(args);
    }
    let options = parse(workload(&name)?, args)?;
    if options.trace.chrome.is_some() {
        return Err(CliError::Usage(
            "--trace=chrome PATH is for rawkvm run (bench runs many rounds; one timeline \
             would not say which)"
                .into(),
        ));
    }
    if options.trace.any() {
        // What watching costs: untraced and traced runs paired (see `traced`).
        let sink = options.trace.open_sink(None)?;
        let kvm = Kvm::open_path(&options.device)?;
        let report = traced::traced_loop(&kvm, &options, sink)?;
        return print_out(&report);
    }
    let kvm = Kvm::open_path(&options.device)?;
    let line = workloads::measure(
        &kvm,
        options.workload,
        options.variant,
        options.count,
        options.guest,
    )?;
    print_out(&format!("{line}\n"))
}

fn parse(workload: &'static Workload, mut args: Args) -> Result<Options, CliError> {
    let mut variant = workload.variants[0];
    let mut count = workload.count;
    let mut guest = None;
    let mut device = PathBuf::from(DEFAULT_DEVICE);
    let mut trace = TraceFlags::default();
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, inline) if TraceFlags::owns(&flag) => {
                trace.apply(&flag, inline, &mut args)?;
            }
            Arg::Flag(flag, inline) if flag == "--variant" => {
                variant = workload.variant(&args.value(&flag, inline).map_err(CliError::Usage)?)?;
            }
            Arg::Flag(flag, inline) if flag == "--count" => {
                let text = args.value(&flag, inline).map_err(CliError::Usage)?;
                count = parse_flag(&flag, &text, parse_u64).map_err(CliError::Usage)?;
            }
            Arg::Flag(flag, inline) if flag == "--guest" && workload.name == "restart" => {
                guest = Some(embedded(
                    &args.value(&flag, inline).map_err(CliError::Usage)?,
                )?);
            }
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                device = PathBuf::from(args.value(&flag, inline).map_err(CliError::Usage)?);
            }
            other => return Err(unexpected("bench", other)),
        }
    }
    workload.check_count(count)?;
    if trace.any() && (!matches!(workload.name, "pio" | "mmio") || variant != "plain") {
        return Err(CliError::Usage(
            "trace options apply to bench pio and mmio (variant plain) only".into(),
        ));
    }
    let guest = match guest {
        Some(guest) => guest,
        None => embedded(workload.guest)?,
    };
    Ok(Options {
        workload,
        variant,
        count,
        guest,
        device,
        trace,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workload_has_its_guest_and_fields_parse() {
        for workload in WORKLOADS {
            assert!(guests::find(workload.guest).is_some(), "{}", workload.name);
            assert_eq!(
                workload.variant(workload.variants[0]).unwrap(),
                workload.variants[0]
            );
            assert!(workload.variant("no-such").is_err());
            assert!(matches!(workload.check_count(0), Err(CliError::Usage(_))));
            assert!(workload.check_count(u64::from(u32::MAX)).is_ok());
            // The guests that take the count as their 32-bit parameter refuse more.
            let parameter = matches!(
                workload.name,
                "pio" | "mmio" | "console" | "modes" | "user" | "doorbell"
            );
            assert_eq!(
                workload.check_count(1 << 32).is_err(),
                parameter,
                "{}",
                workload.name
            );
        }
        let line = "restart runs=10 total_ns=99 us_per_run=9.90 dirty_pages=0 variant=ioctl";
        assert_eq!(field(line, "us_per_run"), Some(9.9));
        assert_eq!(field(line, "variant"), None, "not a number");
        assert_eq!(field(line, "missing"), None);
    }
}
