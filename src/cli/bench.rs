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

use std::path::PathBuf;
use std::time::Instant;

use rawkvm::devices::Devices;
use rawkvm::error::{Error, status};
use rawkvm::guests;
use rawkvm::image::Image;
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::{ExitCounter, NoObserver};
use rawkvm::units::parse_u64;

use super::args::{Arg, Args, parse_flag};
use super::{print_out, unexpected};

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
            other => return Err(unexpected("bench", other)),
        }
    }
    let workload = workload
        .ok_or_else(|| Error::Usage("bench needs a workload: pio, mmio or start".into()))?;
    let count = count.unwrap_or(workload.default_count());
    let kvm = Kvm::open_path(&device)?;
    let line = match workload {
        Workload::Pio => exit_loop(&kvm, "pio", "pio_loop", count)?,
        Workload::Mmio => exit_loop(&kvm, "mmio", "mmio_loop", count)?,
        Workload::Start => start(&kvm, count)?,
    };
    print_out(&line)?;
    Ok(status::HALTED)
}

fn embedded(name: &str) -> Result<Image, Error> {
    let guest = guests::find(name)
        .ok_or_else(|| Error::Usage(format!("embedded guest {name:?} is missing")))?;
    Ok(Image::embedded(guest.name, guest.image))
}

/// N accesses by `guest`, each one exit, timed from the first `KVM_RUN` to the HLT.
fn exit_loop(kvm: &Kvm, label: &str, guest: &str, count: u64) -> Result<String, Error> {
    let param = u32::try_from(count)
        .map_err(|_| Error::Usage(format!("--count {count}: at most {}", u32::MAX)))?;
    let config = MachineConfig {
        param: Some(param),
        ..MachineConfig::default()
    };
    let mut machine = Machine::new(kvm, &config, &embedded(guest)?)?;
    let mut devices = Devices::new(std::io::sink());
    let mut counter = ExitCounter::default();
    let started = Instant::now();
    machine.run(&mut devices, &mut counter)?;
    let total_ns = started.elapsed().as_nanos();
    let exits = counter.exits;
    let per_exit = total_ns as f64 / exits.max(1) as f64;
    Ok(format!(
        "{label} exits={exits} total_ns={total_ns} ns_per_exit={per_exit:.1} exits_per_sec={:.0}\n",
        1e9 / per_exit
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
