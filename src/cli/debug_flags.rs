//! `--gdb ADDR`, `--step[=text|json]`, `--step-limit N`: parsing, the combinations refused,
//! and running the machine under the debugger (x86-64 only).

use crate::cli::status::CliError;
use rawkvm::trace::TraceFormat;
use rawkvm::units::parse_u64;

use super::args::{Args, parse_flag};
use super::trace_flags::text_or_json;

/// The debugging flags of `rawkvm run`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DebugFlags {
    /// `--gdb ADDR`, as given (parsed by [`DebugFlags::check`]).
    pub gdb: Option<String>,
    /// `--step[=FORMAT]`.
    pub step: Option<TraceFormat>,
    /// `--step-limit N`.
    pub step_limit: Option<u64>,
}

impl DebugFlags {
    /// Whether `flag` is one of these.
    pub fn owns(flag: &str) -> bool {
        matches!(flag, "--gdb" | "--step" | "--step-limit")
    }

    /// Applies `flag` (one of [`DebugFlags::owns`]). `--step` takes a value only inline
    /// (`--step=json`), as `--trace` does.
    pub fn apply(
        &mut self,
        flag: &str,
        inline: Option<String>,
        args: &mut Args,
    ) -> Result<(), CliError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(CliError::Usage(format!(
                "{flag}: the debugger shows x86 registers; it is not available on {}",
                rawkvm::bindings::HOST_ARCH
            )));
        }
        match flag {
            "--gdb" => self.gdb = Some(args.value(flag, inline).map_err(CliError::Usage)?),
            "--step" => {
                self.step = Some(text_or_json(flag, inline.as_deref(), "text and json")?);
            }
            _ => {
                let value = args.value(flag, inline).map_err(CliError::Usage)?;
                self.step_limit =
                    Some(parse_flag(flag, &value, parse_u64).map_err(CliError::Usage)?);
            }
        }
        Ok(())
    }

    /// Whether the run is debugged.
    pub fn any(&self) -> bool {
        self.gdb.is_some() || self.step.is_some()
    }

    /// The trace `--step` implies when no `--trace` format was given: the exits met on the
    /// way are printed between the steps, in the steps' format.
    pub fn implied_trace(&self) -> Option<TraceFormat> {
        self.step
    }

    /// Refuses what cannot be debugged: several vCPUs, `--repeat`, a `--timeout` on a gdb
    /// session, `--gdb` with `--step`, `--step-limit` alone.
    pub fn check(&self, vcpus: u32, repeat: bool, timeout: bool) -> Result<(), CliError> {
        let refuse = |text: &str| Err(CliError::Usage(text.to_string()));
        if self.step_limit.is_some() && self.step.is_none() {
            return refuse("--step-limit N needs --step");
        }
        if !self.any() {
            return Ok(());
        }
        let flag = if self.gdb.is_some() {
            "--gdb"
        } else {
            "--step"
        };
        if self.gdb.is_some() && self.step.is_some() {
            return refuse("--gdb and --step are two debuggers; give one (gdb has stepi)");
        }
        if vcpus != 1 {
            return Err(CliError::Usage(format!(
                "{flag} debugs one vCPU; the guest has {vcpus} (give --vcpus 1)"
            )));
        }
        if repeat {
            return Err(CliError::Usage(format!(
                "{flag} cannot be combined with --repeat"
            )));
        }
        if timeout && self.gdb.is_some() {
            return refuse("--gdb waits for the debugger as long as it takes; drop --timeout");
        }
        #[cfg(target_arch = "x86_64")]
        if let Some(address) = &self.gdb {
            rawkvm::debug::gdb::GdbAddress::parse(address)
                .map_err(|e| CliError::Usage(format!("--gdb {address}: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(target_arch = "x86_64")]
pub use debugged::{bind, run};

#[cfg(target_arch = "x86_64")]
mod debugged {
    use std::io::{self, Write};
    use std::sync::{Mutex, PoisonError};

    use rawkvm::debug::gdb::session::{Debuggee, SessionEnd, serve};
    use rawkvm::debug::gdb::{GdbAddress, Listener};
    use rawkvm::debug::stepper::{StepEnd, step};
    use rawkvm::devices::Devices;
    use rawkvm::error::{Error, IoErrorDisplay};
    use rawkvm::machine::Machine;
    use rawkvm::machine::supervisor::RunControl;

    use rawkvm::trace::TraceFormat;

    use super::DebugFlags;
    use crate::cli::console_out::ConsoleOut;
    use crate::cli::status::CliError;
    use crate::cli::trace_flags::SharedTraceObserver;

    /// Binds the `--gdb` socket (before KVM is opened: a bad address is a usage error on any
    /// host).
    pub fn bind(flags: &DebugFlags) -> Result<Option<Listener>, CliError> {
        let Some(text) = &flags.gdb else {
            return Ok(None);
        };
        let address = GdbAddress::parse(text).map_err(CliError::Usage)?;
        let listener = Listener::bind(&address).map_err(|error| {
            CliError::Usage(format!(
                "--gdb {text}: cannot listen there: {}",
                IoErrorDisplay(&error)
            ))
        })?;
        Ok(Some(listener))
    }

    /// Runs vCPU 0 of `machine` under gdb (on `listener`) or the step tracer.
    pub fn run(
        machine: &mut Machine,
        devices: &Mutex<Devices<ConsoleOut>>,
        shared: &SharedTraceObserver,
        control: &RunControl,
        flags: &DebugFlags,
        listener: Option<&Listener>,
    ) -> Result<(), Error> {
        let mut handler = devices.lock().unwrap_or_else(PoisonError::into_inner);
        let mut observer = shared.lock().unwrap_or_else(PoisonError::into_inner);
        let (vm, vcpus) = machine.parts_mut();
        let [vcpu, ..] = vcpus else {
            unreachable!("a Machine always has vCPU 0")
        };
        let mut debuggee = Debuggee {
            vcpu,
            memory: vm.memory(),
            handler: &mut *handler,
            observer: &mut *observer,
            control,
        };
        let Some(listener) = listener else {
            let format = flags.step.unwrap_or(TraceFormat::Text);
            let d = &mut debuggee;
            let (end, steps) = step(
                d.vcpu,
                d.memory,
                d.handler,
                d.observer,
                control,
                format,
                flags.step_limit,
            )?;
            if end == StepEnd::LimitReached {
                let note = format!("rawkvm: --step-limit reached after {steps} steps\n");
                d.observer.write_raw(note.as_bytes());
            }
            return Ok(());
        };
        let mut stderr = io::stderr();
        let addr = listener.local_addr();
        let _ = writeln!(
            stderr,
            "rawkvm: waiting for gdb on {addr} (target remote {addr})"
        );
        let connection = listener.accept()?;
        let end = serve(connection, &mut debuggee, &mut stderr)?;
        drop((handler, observer));
        let said = match end {
            SessionEnd::Halted => return Ok(()),
            SessionEnd::Detached => {
                // gdb let go: the guest runs on as it would have without it.
                return machine.run_all(devices, shared, None, control);
            }
            SessionEnd::Killed => "gdb killed the guest",
            SessionEnd::Disconnected => "gdb went away; the guest is stopped",
        };
        let _ = writeln!(stderr, "rawkvm: {said}");
        Ok(())
    }
}
