//! Snapshots on the command line: `rawkvm run ... --snapshot-on-port PORT PATH` and
//! `--snapshot-after DURATION PATH` (the run stops, the machine is saved to PATH, status 0),
//! `rawkvm resume PATH [OPTIONS]` (a new process continues the guest), and
//! `rawkvm snapshot-info PATH [--json]` (the file's sections, decoded).

use std::path::PathBuf;
use std::time::Duration;

use rawkvm::devices::WriteOnlyZone;
use rawkvm::kvm::Kvm;
use rawkvm::machine::Machine;
use rawkvm::units::{parse_duration, parse_u64};

use super::args::{Args, parse_flag};
use crate::cli::status::CliError;

/// The snapshot flags of `run` and `resume`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SnapshotFlags {
    /// A guest write to this port asks for the snapshot.
    pub port: Option<u16>,
    /// The snapshot is taken this long after the run starts.
    pub after: Option<Duration>,
    /// Where the snapshot goes.
    pub path: Option<PathBuf>,
}

impl SnapshotFlags {
    /// Whether `flag` is one of these.
    pub fn owns(flag: &str) -> bool {
        matches!(flag, "--snapshot-on-port" | "--snapshot-after")
    }

    /// Whether a snapshot may be taken.
    pub fn armed(&self) -> bool {
        self.path.is_some()
    }

    /// Applies `flag` with its two values, `PORT PATH` or `DURATION PATH`.
    pub fn apply(
        &mut self,
        flag: &str,
        inline: Option<String>,
        args: &mut Args,
    ) -> Result<(), CliError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(CliError::Usage(format!(
                "{flag}: snapshots save x86 state; they are not available on {}",
                rawkvm::bindings::HOST_ARCH
            )));
        }
        let value = args.value(flag, inline).map_err(CliError::Usage)?;
        let path = args
            .value(flag, None)
            .map_err(|_| CliError::Usage(format!("{flag} {value} needs a PATH after it")))?;
        if flag == "--snapshot-on-port" {
            let port = parse_flag(flag, &value, parse_u64).map_err(CliError::Usage)?;
            let port = u16::try_from(port)
                .map_err(|_| CliError::Usage(format!("{flag} {value}: a port is 0..=0xFFFF")))?;
            self.port = Some(port);
        } else {
            self.after = Some(parse_flag(flag, &value, parse_duration).map_err(CliError::Usage)?);
        }
        let path = PathBuf::from(path);
        if self.path.as_ref().is_some_and(|earlier| *earlier != path) {
            return Err(CliError::Usage(format!(
                "{flag}: one snapshot file per run; {} was given already",
                self.path
                    .as_ref()
                    .map_or_else(String::new, |p| p.display().to_string())
            )));
        }
        self.path = Some(path);
        Ok(())
    }
}

/// Saves `machine` (stopped for a snapshot) to the flags' path and says so on stderr.
#[cfg(target_arch = "x86_64")]
pub fn save(
    kvm: &Kvm,
    machine: &mut Machine,
    flags: &SnapshotFlags,
    line_control: u8,
    zones: Vec<WriteOnlyZone>,
) -> Result<(), CliError> {
    use rawkvm::snapshot::DeviceState;
    let Some(path) = &flags.path else {
        return Ok(());
    };
    let started = std::time::Instant::now();
    let devices = DeviceState {
        serial_line_control: line_control,
        coalesced_zones: zones,
        // `Machine::snapshot` takes the user-space PIC's registers from the machine itself.
        user_pic: None,
    };
    let snapshot = machine.snapshot(kvm, &devices)?;
    let bytes = snapshot.save(path)?;
    let pages: u64 = snapshot
        .vm
        .slots
        .iter()
        .map(|slot| slot.stored_bytes() / u64::from(snapshot.origin.page_size))
        .sum();
    eprintln!(
        "rawkvm: snapshot of {} vCPU(s) and {pages} non-zero pages saved to {} ({bytes} bytes, \
         {:.2} ms); continue it with `rawkvm resume {}`",
        snapshot.vcpus.len(),
        path.display(),
        started.elapsed().as_secs_f64() * 1e3,
        path.display()
    );
    Ok(())
}

/// Elsewhere the flags were refused.
#[cfg(not(target_arch = "x86_64"))]
pub fn save(
    _kvm: &Kvm,
    _machine: &mut Machine,
    _flags: &SnapshotFlags,
    _line_control: u8,
    _zones: Vec<WriteOnlyZone>,
) -> Result<(), CliError> {
    Ok(())
}
