//! `--trace[=text|json]`, `--trace-file PATH`, `--explain`, `--stats`: parsing, the trace
//! sink, and the reports printed at the end of a run (statistics, the flight recorder).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::cli::status::CliError;
use rawkvm::error::Error;
use rawkvm::machine::Machine;
use rawkvm::trace::chrome::ChromeTrace;
use rawkvm::trace::kernel_stats::KernelStats;
use rawkvm::trace::{KernelCounters, TraceFormat, TraceObserver, WatchOptions};

use super::args::Args;
use super::trace_file;

/// Trace output is buffered in blocks this large: one `write(2)` per few hundred exits.
const TRACE_BUFFER: usize = 64 << 10;

/// The flags that watch a run.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TraceFlags {
    /// `--trace[=FORMAT]`.
    pub format: Option<TraceFormat>,
    /// `--trace-file PATH` (stderr otherwise).
    pub file: Option<PathBuf>,
    /// `--explain`.
    pub explain: bool,
    /// `--stats`.
    pub stats: bool,
    /// `--trace=chrome PATH`: the timeline file.
    pub chrome: Option<PathBuf>,
}

/// The writer a trace goes to.
pub type TraceSink = BufWriter<Box<dyn Write + Send>>;

/// A observer the threads of every vCPU share.
pub type SharedTraceObserver = std::sync::Mutex<TraceObserver<TraceSink>>;

impl TraceFlags {
    /// Whether `flag` is one of these.
    pub fn owns(flag: &str) -> bool {
        matches!(flag, "--trace" | "--trace-file" | "--explain" | "--stats")
    }

    /// Applies `flag` (one of [`TraceFlags::owns`]), taking its value from `inline` or the
    /// next word where it has one. `--trace` takes a value only inline (`--trace=json`), so
    /// `--trace hello` traces the guest `hello`.
    pub fn apply(
        &mut self,
        flag: &str,
        inline: Option<String>,
        args: &mut Args,
    ) -> Result<(), CliError> {
        if matches!(flag, "--explain" | "--stats") && inline.is_some() {
            return Err(CliError::Usage(format!("{flag} takes no value")));
        }
        match flag {
            "--trace" if inline.as_deref() == Some("chrome") => {
                let path = args
                    .value("--trace=chrome", None)
                    .map_err(|_| CliError::Usage("--trace=chrome needs a PATH to write".into()))?;
                self.chrome = Some(PathBuf::from(path));
            }
            "--trace" => {
                let formats = "text, json and chrome PATH";
                self.format = Some(text_or_json(flag, inline.as_deref(), formats)?);
            }
            "--trace-file" => {
                let path = args.value(flag, inline).map_err(CliError::Usage)?;
                if path.is_empty() {
                    return Err(CliError::Usage(
                        "--trace-file: the path is empty; give the file to write the trace to"
                            .to_string(),
                    ));
                }
                self.file = Some(PathBuf::from(path));
            }
            "--explain" => self.explain = true,
            _ => self.stats = true,
        }
        Ok(())
    }

    /// Whether anything was asked for.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // only bench asks
    pub fn any(&self) -> bool {
        self.format.is_some()
            || self.file.is_some()
            || self.explain
            || self.stats
            || self.chrome.is_some()
    }

    /// Whether a trace (or its explanation) shows the exits one by one.
    pub fn shows_exits(&self) -> bool {
        self.options(false).trace.is_some() || self.chrome.is_some()
    }

    /// The observer's options. `--explain` and `--trace-file` imply a text trace.
    pub fn options(&self, flight_recorder: bool) -> WatchOptions {
        let implied = (self.explain || self.file.is_some()).then_some(TraceFormat::Text);
        WatchOptions {
            trace: self.format.or(implied),
            explain: self.explain,
            stats: self.stats,
            flight_recorder,
        }
    }

    /// Where the trace goes: the `--trace-file` (see [`trace_file::open`]: never the `image`,
    /// truncated only if a regular file), else stderr. Open it before the KVM device: a path
    /// that cannot be used is a usage error on any host.
    pub fn open_sink(&self, image: Option<&Path>) -> Result<TraceSink, CliError> {
        let sink: Box<dyn Write + Send> = match &self.file {
            Some(path) => Box::new(trace_file::open(path, image)?),
            None => Box::new(io::stderr()),
        };
        Ok(BufWriter::with_capacity(TRACE_BUFFER, sink))
    }

    /// A observer writing to `sink` (from [`TraceFlags::open_sink`]): these options plus the
    /// flight recorder.
    pub fn observer(&self, sink: TraceSink) -> TraceObserver<TraceSink> {
        TraceObserver::new(self.options(true), sink).with_sink_name(self.sink_name())
    }

    /// The `--trace=chrome` timeline, its file opened now as the trace file is (truncated,
    /// never the `image`, never blocking), before the KVM device. `rawkvm run` only.
    pub fn open_timeline(&self, image: Option<&Path>) -> Result<Option<ChromeTrace>, CliError> {
        let Some(path) = &self.chrome else {
            return Ok(None);
        };
        let file = trace_file::open_for("--trace=chrome", path, image)?;
        let writer = BufWriter::with_capacity(TRACE_BUFFER, file);
        Ok(Some(ChromeTrace::new(Box::new(writer))))
    }

    /// The error for a failed write of the trace: to the `--trace-file`, or to stderr.
    pub fn output_error(&self, error: io::Error) -> Error {
        Error::Output {
            target: self.sink_name(),
            error,
        }
    }

    /// What the trace is written to, in errors: `the trace file PATH`, or `stderr`.
    fn sink_name(&self) -> String {
        match &self.file {
            Some(path) => format!("the trace file {}", path.display()),
            None => "stderr".to_string(),
        }
    }
}

/// The value of `--trace` or `--step`: `text` (or none) or `json`; an error lists `formats`.
pub fn text_or_json(
    flag: &str,
    value: Option<&str>,
    formats: &str,
) -> Result<TraceFormat, CliError> {
    match value {
        None | Some("text") => Ok(TraceFormat::Text),
        Some("json") => Ok(TraceFormat::Json),
        Some(other) => Err(CliError::Usage(format!(
            "{flag}={other}: the formats are {formats}"
        ))),
    }
}

/// After a run: the flight recorder if the guest faulted, the statistics if asked for.
/// Report failures on stderr are ignored: the run's own result matters more.
pub fn report_run<T>(
    flags: &TraceFlags,
    observer: &TraceObserver<TraceSink>,
    machine: &mut Machine,
    outcome: &Result<T, CliError>,
) {
    let mut stderr = io::stderr().lock();
    if matches!(
        outcome,
        Err(CliError::Vmm(
            Error::GuestFault { .. } | Error::Decode { .. }
        ))
    ) && let Some(recorder) = observer.recorder()
    {
        let _ = recorder.write_to(&mut stderr);
        #[cfg(target_arch = "x86_64")]
        let _ = write_interrupt_controllers(machine, &mut stderr);
    }
    if flags.stats {
        let _ = write_stats(observer, machine, &mut stderr);
    }
}

/// After a guest fault with the kernel's irqchip: its PICs, IOAPIC and PIT as they were left
/// (`KVM_GET_IRQCHIP` ×3, `KVM_GET_PIT2`), one line each; nothing without an irqchip.
#[cfg(target_arch = "x86_64")]
fn write_interrupt_controllers(machine: &Machine, out: &mut dyn Write) -> io::Result<()> {
    use rawkvm::bindings as abi;
    use rawkvm::snapshot::info::{describe_irqchip, describe_pit};
    let vm = machine.vm();
    if !vm.has_irqchip() {
        return Ok(());
    }
    writeln!(
        out,
        "rawkvm: the in-kernel interrupt controllers at the fault (KVM_GET_IRQCHIP, KVM_GET_PIT2):"
    )?;
    for id in [
        abi::KVM_IRQCHIP_PIC_MASTER,
        abi::KVM_IRQCHIP_PIC_SLAVE,
        abi::KVM_IRQCHIP_IOAPIC,
    ] {
        if let Ok(Some(chip)) = vm.irqchip(id)
            && let Some(line) = describe_irqchip(&chip)
        {
            writeln!(out, "  {line}")?;
        }
    }
    if let Ok(Some(pit)) = vm.pit() {
        writeln!(out, "  {}", describe_pit(&pit))?;
    }
    Ok(())
}

/// The statistics table of `observer`, which watched every vCPU of `machine`, with the
/// kernel's own counters of the same vCPUs beside rawkvm's where the kernel has them.
pub fn write_stats(
    observer: &TraceObserver<TraceSink>,
    machine: &mut Machine,
    out: &mut dyn Write,
) -> io::Result<()> {
    let vcpus = machine.vcpus_mut().len();
    let kernel = kernel_counters(machine);
    observer.stats().write_table(out, vcpus, kernel.as_ref())
}

/// The kernel's counters of the VM and of its vCPUs summed (the observer counts the exits of
/// all of them), if the kernel has binary statistics. The vCPU side is `None` unless every
/// vCPU's file could be read: a partial sum would not compare with rawkvm's count.
pub fn kernel_counters(machine: &mut Machine) -> Option<KernelCounters> {
    let cap = rawkvm::bindings::KVM_CAP_BINARY_STATS_FD;
    if machine.vm().check_extension(cap) <= 0 {
        return None;
    }
    let read = |file: Result<File, Error>| file.ok().and_then(|f| KernelStats::read(&f).ok());
    let vm = read(machine.vm().stats_fd());
    let mut each = machine.vcpus_mut().iter().map(|v| read(v.stats_fd()));
    let mut vcpu = each.next().flatten();
    let mut others = 0;
    for stats in each {
        match (&mut vcpu, stats) {
            (Some(sum), Some(stats)) => sum.accumulate(&stats),
            _ => vcpu = None,
        }
        others += 1;
    }
    if let Some(sum) = vcpu.as_mut().filter(|_| others > 0) {
        sum.id = format!("{} and {others} more vCPUs, summed", sum.id);
    }
    Some(KernelCounters { vcpu, vm })
}
