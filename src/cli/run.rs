//! `rawkvm run`: build a machine from an embedded guest or a flat image, run it, and print
//! the guest's console on stdout.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use rawkvm::arch::Entry;
use rawkvm::devices::Devices;
use rawkvm::error::{Error, status};
use rawkvm::guests;
use rawkvm::image::Image;
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::supervisor::RunControl;
use rawkvm::units::{parse_duration, parse_size, parse_u64};

use super::args::{Arg, Args, parse_flag};
use super::console_out::ConsoleOut;
use super::signals::stop_on_signals;
use super::trace_flags::{self, TraceFlags};
use super::{repeat, unexpected};

/// What `rawkvm run` was asked to do.
#[derive(Debug)]
pub struct RunOptions {
    /// The embedded guest to run, if no `--image`.
    pub guest: Option<String>,
    /// A flat binary to run instead.
    pub image: Option<PathBuf>,
    /// The machine.
    pub config: MachineConfig,
    /// The KVM device.
    pub device: PathBuf,
    /// `--trace`, `--trace-file`, `--explain`, `--stats`.
    pub trace: TraceFlags,
    /// `--repeat N`: run N times on one VM, restarting it in place between runs.
    pub repeat: Option<u64>,
    /// Register the devices' write-only zones for coalescing (off with `--no-coalesce`).
    pub coalesce: bool,
    /// Stop the guest (status 7) if it has not halted this long after the run starts.
    pub timeout: Option<Duration>,
}

/// The flags that shape the machine, each taking a value.
const MACHINE_FLAGS: [&str; 7] = [
    "--mem",
    "--load-addr",
    "--entry",
    "--param",
    "--kvm-device",
    "--vcpus",
    "--timeout",
];

/// Applies one of [`MACHINE_FLAGS`] with its value.
fn apply_machine_flag(flag: &str, value: &str, options: &mut RunOptions) -> Result<(), String> {
    let config = &mut options.config;
    match flag {
        "--mem" => config.mem_size = parse_flag(flag, value, parse_size)?,
        "--load-addr" => config.load_addr = parse_flag(flag, value, parse_u64)?,
        "--entry" => config.entry = parse_flag(flag, value, Entry::parse)?,
        "--param" => {
            let number = parse_flag(flag, value, parse_u64)?;
            let param =
                u32::try_from(number).map_err(|_| format!("{flag} {value}: above 2^32-1"))?;
            config.param = Some(param);
        }
        "--vcpus" => {
            let number = parse_flag(flag, value, parse_u64)?;
            config.vcpus = u32::try_from(number)
                .map_err(|_| format!("{flag} {value}: KVM allows far fewer vCPUs"))?;
        }
        "--timeout" => options.timeout = Some(parse_flag(flag, value, parse_duration)?),
        _ => options.device = PathBuf::from(value),
    }
    Ok(())
}

fn parse(mut args: Args) -> Result<RunOptions, Error> {
    let mut options = RunOptions {
        guest: None,
        image: None,
        config: MachineConfig::default(),
        device: PathBuf::from(DEFAULT_DEVICE),
        trace: TraceFlags::default(),
        repeat: None,
        coalesce: true,
        timeout: None,
    };
    // Explicit flags are applied after the guest's own setup, so they win.
    let mut flags = Vec::new();
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Positional(name) if options.guest.is_none() => options.guest = Some(name),
            Arg::Flag(flag, inline) if flag == "--image" => {
                options.image = Some(PathBuf::from(
                    args.value(&flag, inline).map_err(Error::Usage)?,
                ));
            }
            Arg::Flag(flag, inline) if MACHINE_FLAGS.contains(&flag.as_str()) => {
                let value = args.value(&flag, inline).map_err(Error::Usage)?;
                flags.push((flag, value));
            }
            Arg::Flag(flag, inline) if TraceFlags::owns(&flag) => {
                options.trace.apply(&flag, inline, &mut args)?;
            }
            Arg::Flag(flag, inline) if flag == "--repeat" => {
                let value = args.value(&flag, inline).map_err(Error::Usage)?;
                options.repeat = Some(repeat::parse_count(&flag, &value).map_err(Error::Usage)?);
            }
            Arg::Flag(flag, None) if flag == "--no-coalesce" => options.coalesce = false,
            other => return Err(unexpected("run", other)),
        }
    }
    if options.guest.is_some() && options.image.is_some() {
        return Err(Error::Usage(
            "give a guest name or --image PATH, not both".into(),
        ));
    }
    if options.image.is_none() {
        let name = options.guest.get_or_insert_with(|| "hello".to_string());
        let guest = guests::find(name).ok_or_else(|| {
            Error::Usage(format!(
                "no embedded guest {name:?}; `rawkvm list` shows them"
            ))
        })?;
        options
            .config
            .apply_setup(guest.setup)
            .map_err(Error::Usage)?;
    }
    for (flag, value) in flags {
        apply_machine_flag(&flag, &value, &mut options).map_err(Error::Usage)?;
    }
    options.config.validate()?;
    Ok(options)
}

/// Loads the image the options name: an embedded guest, or a file checked against the RAM.
pub fn load_image(options: &RunOptions) -> Result<Image, Error> {
    let config = &options.config;
    match (&options.image, &options.guest) {
        (Some(path), _) => {
            let capacity = config.mem_size.saturating_sub(config.load_addr);
            Ok(Image::from_file(path, capacity)?)
        }
        (None, name) => {
            let name = name.as_deref().unwrap_or("hello");
            let guest = guests::find(name)
                .ok_or_else(|| Error::Usage(format!("no embedded guest {name:?}")))?;
            Ok(Image::embedded(guest.name, guest.image))
        }
    }
}

/// `rawkvm run`: every vCPU on a thread of its own, the devices shared, `SIGINT`/`SIGTERM`/
/// `SIGHUP` and the deadline stopping them all.
pub fn command(args: Args) -> Result<i32, Error> {
    let options = parse(args)?;
    let control = RunControl::new();
    // Before any other thread exists (see signals.rs); a signal during setup stops the run
    // before the guest starts.
    stop_on_signals(&control);
    let image = load_image(&options)?;
    image.check_fits(options.config.load_addr, options.config.mem_size)?;
    let kvm = Kvm::open_path(&options.device)?;
    if let Some(runs) = options.repeat {
        return repeat::run(&kvm, &options, &image, runs, &control);
    }
    let mut machine = Machine::new(&kvm, &options.config, &image)?;
    let devices = Devices::new(ConsoleOut::new(control.clone()));
    // Watching means seeing every exit: coalesced console writes never exit, so a trace or
    // an explanation asks for one exit per write (as --no-coalesce does).
    let coalesce = options.coalesce && !options.trace.shows_exits();
    repeat::coalesce(&machine, &devices, coalesce)?;
    let devices = Mutex::new(devices);
    // Always watched: the flight recorder is printed if the guest faults.
    let watcher = Mutex::new(options.trace.watcher()?);
    let outcome = machine.run_all(&devices, &watcher, options.timeout, &control);
    let mut devices = devices.into_inner().unwrap_or_else(PoisonError::into_inner);
    let mut watcher = watcher.into_inner().unwrap_or_else(PoisonError::into_inner);
    // The console and the trace are complete before any report or error.
    let flushed = devices.console.flush().map_err(Error::Console);
    let traced = watcher.flush();
    trace_flags::report_run(&options.trace, &watcher, &mut machine, &outcome);
    outcome?;
    flushed?;
    traced.map_err(|e| Error::Usage(format!("cannot write the trace: {e}")))?;
    Ok(status::HALTED)
}
