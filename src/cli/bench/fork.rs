//! `rawkvm bench fork [--count N] [--mem SIZE] [--fill PERCENT] [--kvm-device PATH]`: the time
//! from nothing to a guest's first exit for N children forked from one snapshot in memory (RAM
//! shared copy-on-write, `ForkImage::spawn`) against N cold starts reaching the same RAM
//! (`Machine::new`, then the filled pages written in), alternating, in one run.
//!
//! The guest is `hlt` in `--mem` of RAM (default 1 MiB) with PERCENT of its pages filled
//! (default 0; [`super::filled`]), whose first instruction exits: so the time to its
//! `KVM_EXIT_HLT` is the time to the first instruction. The snapshot is taken of a machine at
//! its entry that never ran. Medians are printed: `fork children=N fork_us=.. cold_us=..
//! cold/fork=.. mem=.. fill=.. filled_pages=.. backend=..`.

use std::time::{Duration, Instant};

use rawkvm::devices::Devices;
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::machine::{DEFAULT_MEM_SIZE, Machine};
use rawkvm::run_loop::{NoObserver, Outcome};
use rawkvm::snapshot::DeviceState;
use rawkvm::units::{Size, parse_u64};

use super::filled::{FilledGuest, PAGE, parse_fill, parse_mem};
use crate::cli::args::{Arg, Args, parse_flag};
use crate::cli::status::CliError;
use crate::cli::{print_out, unexpected};

/// Runs `machine` to its HLT, which must be its first exit.
fn to_first_exit(mut machine: Machine) -> Result<Machine, CliError> {
    let outcome = machine.run(&mut Devices::new(std::io::sink()), &mut NoObserver)?;
    if outcome != Outcome::Halted {
        return Err(CliError::Usage(format!(
            "the hlt guest ended with {outcome:?}"
        )));
    }
    Ok(machine)
}

fn median(mut times: Vec<Duration>) -> f64 {
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e6
}

/// `rawkvm bench fork`.
pub fn command(mut args: Args) -> Result<i32, CliError> {
    let (mut count, mut device) = (20u64, DEFAULT_DEVICE.into());
    let (mut mem, mut fill) = (DEFAULT_MEM_SIZE, 0);
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, inline) if flag == "--count" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                count = parse_flag(&flag, &value, parse_u64).map_err(CliError::Usage)?;
                if !(1..=10_000).contains(&count) {
                    return Err(CliError::Usage(format!("--count {value}: 1 to 10000")));
                }
            }
            Arg::Flag(flag, inline) if flag == "--mem" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                mem = parse_mem("bench fork", &flag, &value)?;
            }
            Arg::Flag(flag, inline) if flag == "--fill" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                fill = parse_fill("bench fork", &flag, &value)?;
            }
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                device = args.value(&flag, inline).map_err(CliError::Usage)?;
            }
            other => return Err(unexpected("bench fork", other)),
        }
    }
    let kvm = Kvm::open_path(&device)?;
    let guest = FilledGuest::new(mem, fill)?;
    let mut parent = guest.cold_start(&kvm)?;
    let fork_image = parent
        .snapshot(&kvm, &DeviceState::default())?
        .fork_image()?;
    drop(parent);
    let (mut fork, mut cold) = (Vec::new(), Vec::new());
    for _ in 0..count {
        let started = Instant::now();
        let child = to_first_exit(fork_image.spawn(&kvm)?)?;
        fork.push(started.elapsed());
        drop(child);
        let started = Instant::now();
        let fresh = to_first_exit(guest.cold_start(&kvm)?)?;
        cold.push(started.elapsed());
        drop(fresh);
    }
    let (fork_us, cold_us) = (median(fork), median(cold));
    print_out(&format!(
        "fork children={count} fork_us={fork_us:.1} cold_us={cold_us:.1} cold/fork={:.2} \
         mem={} fill={fill} filled_pages={} backend={}\n",
        cold_us / fork_us,
        Size(mem).to_string().replace(' ', ""),
        guest.filled_bytes() / PAGE,
        rawkvm::exit::hardware::kvm_backend().unwrap_or("unknown")
    ))
}
