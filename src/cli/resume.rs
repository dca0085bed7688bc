//! `rawkvm resume PATH [OPTIONS]`: load a snapshot (status 4 if the file cannot be used),
//! restore it into a new VM (checked piece by piece), and run it on as `rawkvm run` would,
//! printing the rest of the guest's console.

use std::path::PathBuf;

use rawkvm::devices::coalesced::{self, Support};
use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::machine::MachineConfig;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::snapshot::Snapshot;
use rawkvm::units::parse_duration;

use super::args::{Arg, Args, parse_flag};
use super::run::{RunOptions, Source, Watching, drive};
use super::signals::stop_on_signals;
use super::snapshot::SnapshotFlags;
use super::trace_flags::TraceFlags;
use super::unexpected;
use crate::cli::status::CliError;

fn parse(mut args: Args) -> Result<(PathBuf, RunOptions), CliError> {
    let (mut path, mut no_coalesce, mut timeout) = (None, false, None);
    let (mut trace, mut snapshot) = (TraceFlags::default(), SnapshotFlags::default());
    let mut device = PathBuf::from(DEFAULT_DEVICE);
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Positional(word) if path.is_none() => path = Some(PathBuf::from(word)),
            Arg::Flag(flag, inline) if flag == "--timeout" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                timeout = Some(parse_flag(&flag, &value, parse_duration).map_err(CliError::Usage)?);
            }
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                device = PathBuf::from(args.value(&flag, inline).map_err(CliError::Usage)?);
            }
            Arg::Flag(flag, inline) if TraceFlags::owns(&flag) => {
                trace.apply(&flag, inline, &mut args)?;
            }
            Arg::Flag(flag, inline) if SnapshotFlags::owns(&flag) => {
                snapshot.apply(&flag, inline, &mut args)?;
            }
            Arg::Flag(flag, None) if flag == "--no-coalesce" => no_coalesce = true,
            other => return Err(unexpected("resume", other)),
        }
    }
    let path = path.ok_or_else(|| {
        CliError::Usage("resume: give the snapshot's PATH (`rawkvm resume PATH`)".into())
    })?;
    let options = RunOptions {
        source: Source::Snapshot(path.clone()),
        config: MachineConfig::default(),
        device,
        coalesce: !no_coalesce && !trace.shows_exits(),
        trace,
        repeat: None,
        restart_scope: Default::default(),
        timeout,
        snapshot,
        line_control: 0,
        mode_given: false,
        entry: None,
        debug: Default::default(),
    };
    Ok((path, options))
}

/// `rawkvm resume PATH`.
pub fn command(args: Args) -> Result<i32, CliError> {
    let (path, mut options) = parse(args)?;
    let control = RunControl::new();
    stop_on_signals(&control);
    // The file first: a bad snapshot is status 4 on any host, KVM or not.
    let snapshot = Snapshot::load(&path)?;
    let sink = options.trace.open_sink(Some(&path))?;
    let kvm = Kvm::open_path(&options.device)?;
    let mut machine = snapshot.restore(&kvm)?;
    let support = if options.coalesce {
        Support::of(machine.vm())
    } else {
        Support::NONE
    };
    let zones =
        coalesced::register(machine.vm(), &snapshot.devices.coalesced_zones, support)?.coalesced;
    options.config.vcpus = snapshot.vcpus.len() as u32;
    options.line_control = snapshot.devices.serial_line_control;
    drop(snapshot);
    let watching = Watching {
        sink,
        timeline: None,
        listener: None,
    };
    drive(&kvm, &options, &mut machine, watching, &control, zones)
}
