//! `rawkvm run`: build a machine from an embedded guest or a flat image, run it, and print
//! the guest's console on stdout.
//!
//! What needs no KVM is done first: the flags (status 2), the image (status 4), the trace
//! file (created). Only then is the KVM device opened, so a usage or image error is the same
//! on a host without KVM.

use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

#[cfg(target_arch = "x86_64")]
use rawkvm::debug::gdb::Listener;
use rawkvm::devices::coalesced::{self, Support};
use rawkvm::devices::{Devices, Serial, WriteOnlyZone};
use rawkvm::error::Error;

use crate::cli::status::{self, CliError};
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::machine::guests::{self, Guest};
use rawkvm::machine::image::Image;
use rawkvm::machine::irq::IrqChip;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::machine::trigger::{SnapshotPort, SnapshotTimer};
use rawkvm::machine::{DEFAULT_LOAD_ADDR, Machine, MachineConfig};
use rawkvm::units::{parse_duration, parse_size, parse_u64};

use super::args::{Arg, Args, parse_flag};
use super::console_out::ConsoleOut;
use super::debug_flags::DebugFlags;
use super::signals::stop_on_signals;
use super::snapshot::{self, SnapshotFlags};
use super::trace_flags::{self, SharedTraceObserver, TraceFlags, TraceSink};
use super::{repeat, unexpected};

/// Elsewhere there is no gdb stub, so never a listener.
#[cfg(not(target_arch = "x86_64"))]
type Listener = std::convert::Infallible;

/// Where the guest's code comes from.
#[derive(Debug)]
pub enum Source {
    /// An embedded guest (`rawkvm run NAME`), with its setup applied to the machine.
    Embedded(&'static Guest),
    /// A flat binary (`--image PATH`).
    File(PathBuf),
    /// A snapshot (`rawkvm resume PATH`): the machine comes from it, not from an image.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // resume is x86-only
    Snapshot(PathBuf),
}

/// What `rawkvm run` was asked to do.
#[derive(Debug)]
pub struct RunOptions {
    /// The guest's code.
    pub source: Source,
    /// The machine (restartable when `--repeat` asks for several runs).
    pub config: MachineConfig,
    /// The KVM device.
    pub device: PathBuf,
    /// `--trace`, `--trace-file`, `--explain`, `--stats`.
    pub trace: TraceFlags,
    /// `--repeat N`: run N times on one VM, restarting it in place between runs.
    pub repeat: Option<u64>,
    /// `--restart-scope`: what `--repeat` puts back between runs (default: everything).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // --repeat is x86-only
    pub restart_scope: repeat::Scope,
    /// Register the devices' write-only zones for coalescing: not with `--no-coalesce`, nor
    /// when a trace shows every exit.
    pub coalesce: bool,
    /// Stop the guest (status 7) if it has not halted this long after the run starts.
    pub timeout: Option<Duration>,
    /// `--snapshot-on-port PORT PATH`, `--snapshot-after DURATION PATH`.
    pub snapshot: SnapshotFlags,
    /// COM1's line control register at the start (a resumed snapshot's).
    pub line_control: u8,
    /// `--mode` was given (else an ELF image picks the mode from its class).
    pub mode_given: bool,
    /// `--entry`, parsed once the mode is known (an ELF image may still choose it).
    pub entry: Option<String>,
    /// `--gdb`, `--step`, `--step-limit`.
    pub debug: DebugFlags,
}

/// The flags that shape the machine, each taking a value.
const MACHINE_FLAGS: [&str; 11] = [
    "--mode",
    "--mem",
    "--load-addr",
    "--entry",
    "--param",
    "--kvm-device",
    "--vcpus",
    "--timeout",
    "--irqchip",
    "--cpuid-vendor",
    "--tsc-khz",
];

/// Applies one of [`MACHINE_FLAGS`] with its value.
fn apply_machine_flag(flag: &str, value: &str, options: &mut RunOptions) -> Result<(), String> {
    let config = &mut options.config;
    match flag {
        "--mem" => config.mem_size = parse_flag(flag, value, parse_size)?,
        "--load-addr" => {
            config.load_addr = parse_flag(flag, value, parse_u64)?;
            // The embedded guests are linked at 0x1000: anywhere else their first jump or
            // data access lands on zeros, and the run does nothing visible.
            if matches!(options.source, Source::Embedded(_))
                && config.load_addr != DEFAULT_LOAD_ADDR
            {
                return Err(format!(
                    "{flag} {value}: the embedded guests are linked at {DEFAULT_LOAD_ADDR:#x} \
                     and run only there; give --image PATH for code built for another address"
                ));
            }
        }
        "--entry" => options.entry = Some(value.to_string()),
        "--mode" => {
            config
                .set_mode(value)
                .map_err(|e| format!("{flag} {value}: {e}"))?;
            options.mode_given = true;
        }
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
        "--irqchip" => config.irqchip = parse_flag(flag, value, IrqChip::parse)?,
        "--cpuid-vendor" | "--tsc-khz" => apply_cpu_flag(flag, value, config)?,
        _ => options.device = PathBuf::from(value),
    }
    Ok(())
}

/// `--cpuid-vendor STR` (12 bytes) and `--tsc-khz N` (x86 only).
#[cfg(target_arch = "x86_64")]
fn apply_cpu_flag(flag: &str, value: &str, config: &mut MachineConfig) -> Result<(), String> {
    use rawkvm::arch::x86_64::cpuid::parse_vendor;
    if flag == "--cpuid-vendor" {
        config.cpu.cpuid_vendor = Some(parse_flag(flag, value, parse_vendor)?);
    } else {
        let khz = parse_flag(flag, value, parse_u64)?;
        config.cpu.tsc_khz = Some(
            u32::try_from(khz)
                .ok()
                .filter(|&khz| khz > 0)
                .ok_or_else(|| format!("{flag} {value}: a rate in kHz, 1 up to 2^32-1"))?,
        );
    }
    Ok(())
}

#[cfg(not(target_arch = "x86_64"))]
fn apply_cpu_flag(flag: &str, _: &str, _: &mut MachineConfig) -> Result<(), String> {
    Err(format!(
        "{flag} sets x86 CPUID or TSC; there is none on {}",
        rawkvm::bindings::HOST_ARCH
    ))
}

fn parse(mut args: Args) -> Result<RunOptions, CliError> {
    let (mut name, mut image, mut no_coalesce) = (None, None, false);
    let (mut trace, mut repeat) = (TraceFlags::default(), None);
    let mut restart_scope = None;
    let mut snapshot = SnapshotFlags::default();
    let mut debug = DebugFlags::default();
    // Explicit flags are applied after the guest's own setup, so they win.
    let mut flags = Vec::new();
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Positional(word) if name.is_none() => name = Some(word),
            Arg::Flag(flag, inline) if flag == "--image" => {
                let path = args.value(&flag, inline).map_err(CliError::Usage)?;
                if path.is_empty() {
                    return Err(CliError::Usage(
                        "--image: the path is empty; give the flat binary to run".to_string(),
                    ));
                }
                image = Some(PathBuf::from(path));
            }
            Arg::Flag(flag, inline) if MACHINE_FLAGS.contains(&flag.as_str()) => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                flags.push((flag, value));
            }
            Arg::Flag(flag, inline) if TraceFlags::owns(&flag) => {
                trace.apply(&flag, inline, &mut args)?;
            }
            Arg::Flag(flag, inline) if DebugFlags::owns(&flag) => {
                debug.apply(&flag, inline, &mut args)?;
            }
            Arg::Flag(flag, inline) if flag == "--repeat" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                repeat = Some(repeat::parse_count(&flag, &value).map_err(CliError::Usage)?);
            }
            Arg::Flag(flag, inline) if flag == "--restart-scope" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                restart_scope = Some(repeat::parse_scope(&flag, &value).map_err(CliError::Usage)?);
            }
            Arg::Flag(flag, None) if flag == "--no-coalesce" => no_coalesce = true,
            Arg::Flag(flag, inline) if SnapshotFlags::owns(&flag) => {
                snapshot.apply(&flag, inline, &mut args)?;
            }
            other => return Err(unexpected("run", other)),
        }
    }
    if snapshot.armed() && debug.any() {
        return Err(CliError::Usage(
            "the debugger drives the vCPU itself; it cannot be combined with a snapshot".into(),
        ));
    }
    if restart_scope.is_some() && repeat.is_none() {
        return Err(CliError::Usage(
            "--restart-scope says what --repeat puts back between runs; give --repeat N too".into(),
        ));
    }
    if snapshot.armed() && repeat.is_some() {
        return Err(CliError::Usage(
            "--repeat restarts the guest in place; it cannot be combined with a snapshot".into(),
        ));
    }
    let mut config = MachineConfig::default();
    let source = match (name, image) {
        (Some(_), Some(_)) => {
            return Err(CliError::Usage(
                "give a guest name or --image PATH, not both".into(),
            ));
        }
        (None, Some(path)) => Source::File(path),
        (name, None) => {
            let name = name.as_deref().unwrap_or("hello");
            let guest = guests::find(name).ok_or_else(|| {
                CliError::Usage(format!(
                    "no embedded guest {name:?}; `rawkvm list` shows them"
                ))
            })?;
            config.apply_setup(guest.setup).map_err(CliError::Usage)?;
            Source::Embedded(guest)
        }
    };
    // `--step` prints the exits met between the steps: a trace in its format.
    if trace.format.is_none() {
        trace.format = debug.implied_trace();
    }
    let mut options = RunOptions {
        source,
        config: MachineConfig {
            // Restarting in place needs the dirty log of the RAM slot.
            restartable: repeat.is_some(),
            ..config
        },
        device: PathBuf::from(DEFAULT_DEVICE),
        // Watching means seeing every exit: coalesced console writes never exit, so a trace
        // or an explanation asks for one exit per write (as --no-coalesce does).
        coalesce: !no_coalesce && !trace.shows_exits(),
        trace,
        repeat,
        restart_scope: restart_scope.unwrap_or_default(),
        timeout: None,
        snapshot,
        line_control: 0,
        mode_given: false,
        entry: None,
        debug,
    };
    for (flag, value) in flags {
        apply_machine_flag(&flag, &value, &mut options).map_err(CliError::Usage)?;
    }
    // A file without --mode may be an ELF image, which picks the mode the entry is parsed in:
    // `load_image` parses it then. Otherwise a bad entry shows before any file is read.
    if options.mode_given || !matches!(options.source, Source::File(_)) {
        apply_entry(&mut options)?;
    }
    options.config.validate()?;
    let repeat = options.repeat.is_some();
    let timeout = options.timeout.is_some();
    options.debug.check(options.config.vcpus, repeat, timeout)?;
    Ok(options)
}

/// Parses `--entry` in the configured mode: `SEG:OFF` in real mode, an address otherwise.
fn apply_entry(options: &mut RunOptions) -> Result<(), CliError> {
    if let Some(text) = &options.entry {
        let entry = options.config.entry;
        options.config.entry =
            parse_flag("--entry", text, |text| entry.parsed_in(text)).map_err(CliError::Usage)?;
    }
    Ok(())
}

/// An ELF image without `--mode` runs in the mode of its class (ELF32: protected, ELF64:
/// long), entered at its `e_entry` unless `--entry` says otherwise.
#[cfg(target_arch = "x86_64")]
fn adopt_image_mode(options: &mut RunOptions, image: &Image) -> Result<(), CliError> {
    if options.mode_given || !matches!(options.source, Source::File(_)) {
        return Ok(());
    }
    let elf = image.elf()?;
    let mode = rawkvm::machine::modes::default_mode_for(elf.as_ref());
    options.config.entry = options.config.entry.in_mode(mode);
    apply_entry(options)?;
    Ok(options.config.validate()?)
}

/// Elsewhere there are no modes; the entry is an address.
#[cfg(not(target_arch = "x86_64"))]
fn adopt_image_mode(options: &mut RunOptions, _image: &Image) -> Result<(), CliError> {
    if options.mode_given || !matches!(options.source, Source::File(_)) {
        return Ok(());
    }
    apply_entry(options)
}

/// Loads the image the options name, an embedded guest or a file, lets an ELF image pick
/// the mode, and checks that it fits in RAM (a flat file is never read past what could fit).
fn load_image(options: &mut RunOptions) -> Result<Image, CliError> {
    let config = &options.config;
    let image = match &options.source {
        Source::Embedded(guest) => Image::embedded(guest.name, guest.image),
        Source::File(path) => {
            Image::from_file(path, config.mem_size.saturating_sub(config.load_addr))?
        }
        Source::Snapshot(path) => {
            return Err(CliError::Usage(format!(
                "{} is a snapshot: `rawkvm resume` restores it; there is no image to load",
                path.display()
            )));
        }
    };
    adopt_image_mode(options, &image)?;
    let config = &options.config;
    image.check_fits(config.load_addr, config.mem_size, &config.reserved())?;
    Ok(image)
}

/// `rawkvm run`: every vCPU on a thread of its own, the devices shared, `SIGINT`/`SIGTERM`/
/// `SIGHUP` and the deadline stopping them all.
pub fn command(args: Args) -> Result<i32, CliError> {
    let control = RunControl::new();
    // First, before any other thread exists (see signals.rs): a signal during start-up waits
    // for the signal thread and stops the run before the guest starts.
    stop_on_signals(&control);
    let mut options = parse(args)?;
    let image = load_image(&mut options)?;
    let image_path = match &options.source {
        Source::File(path) => Some(path.as_path()),
        Source::Embedded(_) | Source::Snapshot(_) => None,
    };
    let mut sink = options.trace.open_sink(image_path)?;
    let timeline = options.trace.open_timeline(image_path)?;
    #[cfg(target_arch = "x86_64")]
    let listener = super::debug_flags::bind(&options.debug)?;
    let kvm = Kvm::open_path(&options.device)?;
    let mut machine = Machine::new(&kvm, &options.config, &image)?;
    if options.trace.explain {
        explain_mode(&mut machine, &options, &mut sink)
            .map_err(|error| options.trace.output_error(error))?;
    }
    let zones = coalesce(&machine, options.coalesce)?;
    #[cfg(target_arch = "x86_64")]
    let listener = listener.as_ref();
    #[cfg(not(target_arch = "x86_64"))]
    let listener = None;
    let watching = Watching {
        sink,
        timeline,
        listener,
    };
    drive(&kvm, &options, &mut machine, watching, &control, zones)
}

/// Where a run's trace, timeline and debugger connection go.
pub struct Watching<'a> {
    /// The trace sink.
    pub sink: TraceSink,
    /// `--timeline`'s Chrome trace, if asked for.
    pub timeline: Option<rawkvm::trace::chrome::ChromeTrace>,
    /// The gdb listener (`--gdb`, x86-64), if asked for.
    pub listener: Option<&'a Listener>,
}

/// Runs `machine` as `options` say (once, `--repeat` times, or until a snapshot is asked
/// for), watched and reported on; saves the snapshot if the run stopped for one. `zones` are
/// the coalesced zones registered for the machine, which a snapshot records.
pub fn drive(
    kvm: &Kvm,
    options: &RunOptions,
    machine: &mut Machine,
    watching: Watching<'_>,
    control: &RunControl,
    zones: Vec<WriteOnlyZone>,
) -> Result<i32, CliError> {
    let Watching {
        sink,
        timeline,
        listener,
    } = watching;
    // Always watched: the flight recorder is printed if the guest faults. With --repeat one
    // observer sees every run, so the trace and the statistics cover them all.
    let mut observer = options.trace.observer(sink);
    if let Some(timeline) = timeline {
        observer = observer.with_timeline(timeline);
    }
    // Every vCPU's clock exists before the first entry: the watched run allocates nothing.
    observer.expect_vcpus(options.config.vcpus);
    let observer = Mutex::new(observer);
    let paused = Mutex::new(None);
    let run = |machine: &mut Machine, _first: bool| {
        let line_control = run_once(machine, options, &observer, control, listener)?;
        *paused.lock().unwrap_or_else(PoisonError::into_inner) = line_control;
        Ok(())
    };
    let timer = options
        .snapshot
        .after
        .map(|delay| SnapshotTimer::start(delay, control.clone()))
        .transpose()?;
    #[cfg(target_arch = "x86_64")]
    let outcome = match options.repeat {
        Some(runs) => repeat::run(kvm, machine, runs, options.restart_scope, run),
        None => run(machine, true),
    };
    // Elsewhere `--repeat` was refused with the flags.
    #[cfg(not(target_arch = "x86_64"))]
    let outcome = {
        debug_assert!(options.repeat.is_none());
        run(machine, true)
    };
    drop(timer);
    let mut observer = observer
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner);
    // The console (flushed by each run) and the trace are complete before any report or error.
    let traced = observer.flush();
    trace_flags::report_run(&options.trace, &observer, machine, &outcome);
    outcome?;
    traced.map_err(|error| options.trace.output_error(error))?;
    if let Some(line_control) = paused.into_inner().unwrap_or_else(PoisonError::into_inner) {
        snapshot::save(kvm, machine, &options.snapshot, line_control, zones)?;
    }
    Ok(status::HALTED)
}

/// `--explain`, before the first exit: the CPU mode and every `kvm_sregs` field rawkvm set,
/// as vCPU 0 holds them (`KVM_GET_SREGS`, `KVM_GET_REGS`); one JSON object with `--trace=json`.
#[cfg(target_arch = "x86_64")]
fn explain_mode(
    machine: &mut Machine,
    options: &RunOptions,
    sink: &mut trace_flags::TraceSink,
) -> std::io::Result<()> {
    use std::io::Write;

    use rawkvm::arch::x86_64::modes;

    let Some(vcpu) = machine.vcpus_mut().first() else {
        return Ok(());
    };
    let (Ok(sregs), Ok(regs)) = (vcpu.sregs(), vcpu.regs()) else {
        return Ok(());
    };
    let mode = options.config.entry.mode;
    let text = modes::explain(mode, &sregs, regs.rip, regs.rsp);
    if options.trace.format == Some(rawkvm::trace::TraceFormat::Json) {
        let mut line = Vec::new();
        line.extend_from_slice(format!("{{\"mode\":\"{mode}\",\"explain\":").as_bytes());
        rawkvm::trace::json::push_string(&mut line, &text);
        line.extend_from_slice(b"}\n");
        sink.write_all(&line)
    } else {
        sink.write_all(text.as_bytes())
    }
}

/// Elsewhere a vCPU has no modes to explain.
#[cfg(not(target_arch = "x86_64"))]
fn explain_mode(
    _machine: &mut Machine,
    _options: &RunOptions,
    _sink: &mut trace_flags::TraceSink,
) -> std::io::Result<()> {
    Ok(())
}

/// One run of every vCPU on fresh devices (behind the snapshot port, if armed), watched by
/// `observer`. The console is flushed before any error is returned. Returns COM1's line
/// control register if the run stopped for a snapshot.
fn run_once(
    machine: &mut Machine,
    options: &RunOptions,
    observer: &SharedTraceObserver,
    control: &RunControl,
    listener: Option<&Listener>,
) -> Result<Option<u8>, CliError> {
    let mut devices = Devices::new(ConsoleOut::new(control.clone()));
    devices.com1 = Serial::with_line_control(options.line_control);
    // The debugger's loop drives the plain devices; snapshot flags were refused with it.
    #[cfg(target_arch = "x86_64")]
    if options.debug.any() {
        let devices = Mutex::new(devices);
        let outcome = super::debug_flags::run(
            machine,
            &devices,
            observer,
            control,
            &options.debug,
            listener,
        );
        let mut devices = devices.into_inner().unwrap_or_else(PoisonError::into_inner);
        let flushed = devices.console.flush().map_err(Error::Console);
        outcome.and(flushed)?;
        return Ok(None);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = listener;
    let devices = SnapshotPort::new(devices, options.snapshot.port, control.clone());
    let devices = Mutex::new(devices);
    let outcome = machine.run_all(&devices, observer, options.timeout, control);
    let mut devices = devices
        .into_inner()
        .unwrap_or_else(PoisonError::into_inner)
        .inner;
    let flushed = devices.console.flush().map_err(Error::Console);
    outcome.and(flushed)?;
    Ok(control
        .stopped_for_snapshot()
        .then(|| devices.com1.line_control()))
}

/// Registers the devices' write-only zones for coalescing (they are declared by the device
/// types, the same for every run), if `wanted` and the kernel can; otherwise every write
/// keeps exiting. Returns the zones registered.
fn coalesce(machine: &Machine, wanted: bool) -> Result<Vec<WriteOnlyZone>, CliError> {
    let support = if wanted {
        Support::of(machine.vm())
    } else {
        Support::NONE
    };
    let declaring = Devices::new(std::io::sink());
    Ok(coalesced::register_declared(machine.vm(), &declaring, support)?.coalesced)
}
