//! Watching the ABI: `--trace`, `--explain`, `--stats` and the flight recorder, all one
//! [`Observer`] of the run loop.
//!
//! ```text
//! t0 = clock_gettime(CLOCK_MONOTONIC)     Observer::before_run
//! ioctl(vcpu, KVM_RUN, 0)
//! t1 = clock_gettime(CLOCK_MONOTONIC)     Observer::after_run
//! decode kvm_run, dispatch to devices     (the run loop)
//! t2 = clock_gettime(CLOCK_MONOTONIC)     Observer::exit(&exit): record, count, format
//! ```
//!
//! Everything here reads the same decoded [`Exit`] the loop acted on, after the devices
//! answered it (so an IN shows the bytes the guest will see): there is one decoder. The
//! payload comes from [`Exit::visit`]; [`text`] and [`json`] turn it into lines in a reused
//! buffer, written through the caller's (buffered) writer, so tracing an exit allocates
//! nothing once the buffer has grown. With no observer (`NoObserver`) none of this runs. A
//! write that fails (`EPIPE`, `ENOSPC`) ends the run at that exit ([`Observer::failure`]).

pub mod chrome;
pub mod explain;
pub mod json;
pub mod kernel_stats;
pub mod recorder;
pub mod stats;
pub mod text;

use crate::kvm::irq::{LineEvent, LineObserver};
use std::io::{self, Write};
use std::time::Instant;

use crate::devices::bus::Claim;
use crate::error::Error;
use crate::exit::Exit;
use crate::run_loop::Observer;

pub use recorder::FlightRecorder;
pub use stats::{KernelCounters, Stats};
pub use text::LineHeader;

/// How `--trace` writes exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    /// One line of `label=value` per exit.
    Text,
    /// One JSON object per line.
    Json,
}

/// What a [`TraceObserver`] does with each exit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WatchOptions {
    /// Write each exit in this format.
    pub trace: Option<TraceFormat>,
    /// Add the fields read and written, with offsets, and a sentence (needs `trace`).
    pub explain: bool,
    /// Count exits and time them per reason.
    pub stats: bool,
    /// Keep the last exits for a report if the guest faults.
    pub flight_recorder: bool,
}

impl WatchOptions {
    /// Whether anything needs the clock.
    fn timed(&self) -> bool {
        self.trace.is_some() || self.stats || self.flight_recorder
    }
}

/// When a vCPU last entered (`before`) and left (`after`) `KVM_RUN`.
#[derive(Debug, Default, Clone, Copy)]
struct RunClock {
    before: Option<Instant>,
    after: Option<Instant>,
}

/// The observer behind `--trace`, `--explain`, `--stats` and the flight recorder.
#[derive(Debug)]
pub struct TraceObserver<W: Write> {
    options: WatchOptions,
    sink: W,
    line: Vec<u8>,
    seq: u64,
    /// When each vCPU (by id) last entered and left `KVM_RUN`: one observer can serve the
    /// threads of several vCPUs (behind a lock), each timed on its own.
    clocks: Vec<RunClock>,
    stats: Stats,
    recorder: Option<FlightRecorder>,
    /// The first failed write of the trace, until [`Observer::failure`] or
    /// [`TraceObserver::flush`] reports it.
    /// `--trace=chrome PATH`: the timeline being written.
    timeline: Option<chrome::ChromeTrace>,
    error: Option<io::Error>,
    /// Whether the trace failed: once it has, nothing more is written to it.
    failed: bool,
    /// What the sink is, for the error that stops the run (`the trace file PATH`, `stderr`).
    sink_name: String,
}

impl<W: Write> TraceObserver<W> {
    /// A observer writing its trace (if any) to `sink`; give it a buffered writer.
    pub fn new(options: WatchOptions, sink: W) -> TraceObserver<W> {
        TraceObserver {
            options,
            sink,
            line: Vec::with_capacity(1024),
            seq: 0,
            clocks: Vec::new(),
            stats: Stats::default(),
            recorder: options.flight_recorder.then(FlightRecorder::default),
            timeline: None,
            error: None,
            failed: false,
            sink_name: String::from("the trace"),
        }
    }

    /// Names the sink in the error a failed write ends the run with (`the trace file
    /// out.txt`, `stderr`; "the trace" unless named).
    pub fn with_sink_name(mut self, name: impl Into<String>) -> TraceObserver<W> {
        self.sink_name = name.into();
        self
    }

    /// Also writes the run as a Chrome trace-event timeline ([`chrome`]).
    pub fn with_timeline(mut self, timeline: chrome::ChromeTrace) -> TraceObserver<W> {
        self.timeline = Some(timeline);
        self
    }

    /// Whether anything needs the clock.
    fn timed(&self) -> bool {
        self.options.timed() || self.timeline.is_some()
    }

    /// Makes room for vCPUs with ids below `count` now, so that watching them allocates
    /// nothing later: without it the first exit of each new vCPU grows a table. Call it
    /// before the run with the machine's vCPU count (ids are 0, 1, ...).
    pub fn expect_vcpus(&mut self, count: u32) {
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        if count > self.clocks.len() {
            self.clocks.resize(count, RunClock::default());
        }
        if let Some(timeline) = &mut self.timeline {
            timeline.expect_vcpus(u32::try_from(count).unwrap_or(u32::MAX));
        }
    }

    /// The statistics so far (empty unless `stats` was asked for).
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The flight recorder, if it was asked for.
    pub fn recorder(&self) -> Option<&FlightRecorder> {
        self.recorder.as_ref()
    }

    /// Exits seen so far.
    pub fn exits(&self) -> u64 {
        self.seq
    }

    /// The trace's writer (after [`TraceObserver::flush`], everything written is in it).
    pub fn into_sink(self) -> W {
        self.sink
    }

    /// Flushes the trace, reporting the first write error of the run unless
    /// [`Observer::failure`] already ended the run with it.
    pub fn flush(&mut self) -> io::Result<()> {
        // The timeline is its own file: closed whatever became of the trace.
        let timeline = self
            .timeline
            .as_mut()
            .map_or(Ok(()), chrome::ChromeTrace::finish);
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if !self.failed {
            self.sink.flush()?;
        }
        timeline
    }

    /// Writes `bytes` (a finished line of another report, such as `--step`'s) into the
    /// trace between two exits; a failure is reported by [`TraceObserver::flush`].
    pub fn write_raw(&mut self, bytes: &[u8]) {
        if !self.failed
            && let Err(error) = self.sink.write_all(bytes)
        {
            self.failed = true;
            self.error = Some(error);
        }
    }

    /// The clock of vCPU `vcpu`; grows the table the first time a vCPU is seen, unless
    /// [`TraceObserver::expect_vcpus`] made room for it.
    fn clock(&mut self, vcpu: u32) -> &mut RunClock {
        let index = usize::try_from(vcpu).unwrap_or(usize::MAX);
        if index >= self.clocks.len() {
            self.clocks
                .resize(index.saturating_add(1), RunClock::default());
        }
        &mut self.clocks[index]
    }

    fn elapsed_ns(from: Option<Instant>, to: Option<Instant>) -> u64 {
        match (from, to) {
            (Some(from), Some(to)) => {
                u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
            }
            _ => 0,
        }
    }

    fn write_trace(&mut self, format: TraceFormat, header: &LineHeader, exit: &Exit<'_>) {
        self.line.clear();
        match format {
            TraceFormat::Text => {
                text::push_line(&mut self.line, header, exit);
                // The recorder keeps the line just made: one copy, no second walk.
                if let Some(recorder) = &mut self.recorder {
                    recorder.record_line(&self.line);
                }
                if self.options.explain {
                    explain::push_text(&mut self.line, exit, header.dispatch);
                }
            }
            TraceFormat::Json => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.record(*header, exit);
                }
                json::push_object_start(&mut self.line, header, exit);
                if self.options.explain {
                    explain::push_json(&mut self.line, exit, header.dispatch);
                }
                json::push_object_end(&mut self.line);
            }
        }
        self.write_line();
    }

    /// Writes the line just built, unless the trace already failed (then it stays failed,
    /// and the error is kept for [`Observer::failure`]).
    fn write_line(&mut self) {
        if !self.failed
            && let Err(error) = self.sink.write_all(&self.line)
        {
            self.failed = true;
            self.error = Some(error);
        }
    }

    /// A line a device raised or lowered outside any exit (`KVM_IRQ_LINE`, an irqfd write):
    /// counted in the statistics, and in a text trace a line of its own.
    pub fn line_event(&mut self, event: LineEvent) {
        if self.options.stats {
            self.stats.record_line_event();
        }
        if self.options.trace == Some(TraceFormat::Text) {
            self.line.clear();
            text::push_line_event(&mut self.line, event);
            self.write_line();
        }
    }
}

/// Lines raised from device threads reach a shared watcher (`rawkvm run`'s) through its lock.
impl<W: Write + Send> LineObserver for std::sync::Mutex<TraceObserver<W>> {
    fn line(&self, event: LineEvent) {
        self.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .line_event(event);
    }
}

impl<W: Write> Observer for TraceObserver<W> {
    fn before_run(&mut self, vcpu: u32) {
        if self.timed() {
            self.clock(vcpu).before = Some(Instant::now());
        }
    }

    fn after_run(&mut self, vcpu: u32) {
        if self.timed() {
            self.clock(vcpu).after = Some(Instant::now());
        }
    }

    fn exit(&mut self, vcpu: u32, exit: &Exit<'_>, dispatch: Option<Claim>) {
        let handled = self.options.stats.then(Instant::now);
        self.seq += 1;
        let clock = *self.clock(vcpu);
        let header = LineHeader {
            seq: self.seq,
            vcpu,
            run_ns: Self::elapsed_ns(clock.before, clock.after),
            dispatch,
        };
        if self.options.stats {
            let handle_ns = Self::elapsed_ns(clock.after, handled);
            self.stats.record(exit, header.run_ns, handle_ns);
        }
        if let (Some(timeline), Some(before), Some(after)) =
            (&mut self.timeline, clock.before, clock.after)
        {
            let handled = handled.unwrap_or_else(Instant::now);
            timeline.run(&header, [before, after, handled], Some(exit));
        }
        match self.options.trace {
            Some(format) => self.write_trace(format, &header, exit),
            None => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.record(header, exit);
                }
            }
        }
    }

    /// Counted in the statistics; in a text trace, an indented line after the exit it
    /// follows (a JSON trace keeps one object per exit).
    fn injected(&mut self, vcpu: u32, vector: u8) {
        if let Some(timeline) = &mut self.timeline {
            timeline.injected(vcpu, vector, Instant::now());
        }
        if self.options.stats {
            self.stats.record_injection();
        }
        if self.options.trace == Some(TraceFormat::Text) {
            self.line.clear();
            text::push_injection(&mut self.line, vcpu, vector);
            if self.options.explain {
                explain::push_injection(&mut self.line);
            }
            self.write_line();
        }
    }

    fn interrupted(&mut self, vcpu: u32, _stopping: bool) {
        let clock = *self.clock(vcpu);
        if let (Some(timeline), Some(before), Some(after)) =
            (&mut self.timeline, clock.before, clock.after)
        {
            let header = LineHeader {
                seq: self.seq,
                vcpu,
                run_ns: Self::elapsed_ns(clock.before, clock.after),
                dispatch: None,
            };
            timeline.run(&header, [before, after, after], None);
        }
        if self.options.stats {
            let run_ns = Self::elapsed_ns(clock.before, clock.after);
            self.stats.record_interrupted(run_ns);
        }
    }

    /// The trace's write error, once: the run stops at the exit whose line could not be
    /// written (`EPIPE` is status 141, as for the console). Checking costs a branch on the
    /// result `write_all` already returned; the untraced run never asks.
    fn failure(&mut self) -> Option<Error> {
        let error = self.error.take()?;
        Some(Error::Output {
            target: self.sink_name.clone(),
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{Io, IoDirection};

    /// Two vCPUs through one observer: each exit numbered once, on the vCPU that made it, in
    /// the trace, the flight recorder and the statistics alike.
    fn watch(trace: TraceFormat) -> (String, Vec<String>, u64) {
        let options = WatchOptions {
            trace: Some(trace),
            explain: false,
            stats: true,
            flight_recorder: true,
        };
        let mut observer = TraceObserver::new(options, Vec::new());
        observer.expect_vcpus(2);
        let mut data = [b'A'];
        let out = Exit::Io(Io {
            direction: IoDirection::Out,
            port: 0xE9,
            size: 1,
            count: 1,
            data_offset: 4096,
            data: &mut data,
        });
        for (vcpu, exit) in [(1, &out), (0, &Exit::Hlt), (1, &Exit::Hlt)] {
            observer.before_run(vcpu);
            observer.after_run(vcpu);
            let dispatch = matches!(exit, Exit::Io(_)).then_some(Claim::Claimed);
            observer.exit(vcpu, exit, dispatch);
        }
        observer.flush().unwrap();
        let (exits, lines) = (
            observer.stats().total().count,
            observer.recorder().unwrap().lines(),
        );
        let trace = String::from_utf8(observer.into_sink()).unwrap();
        (trace, lines, exits)
    }

    /// A line without its `run_ns=`, which depends on the clock.
    fn untimed(line: &str) -> &str {
        line.rsplit_once(" run_ns=").map_or(line, |(head, _)| head)
    }

    /// The text lines of [`watch`]'s exits, without their times.
    const TEXT: [&str; 3] = [
        "#1 vcpu1 KVM_EXIT_IO(2) direction=out size=1 port=0xe9 count=1 data_offset=0x1000 \
         data=41 \"A\"",
        "#2 vcpu0 KVM_EXIT_HLT(5)",
        "#3 vcpu1 KVM_EXIT_HLT(5)",
    ];

    #[test]
    fn text_trace_recorder_and_stats_see_the_same_exits() {
        let (trace, recorded, exits) = watch(TraceFormat::Text);
        let traced: Vec<&str> = trace.lines().map(untimed).collect();
        assert_eq!(traced, TEXT, "{trace}");
        let recorded: Vec<&str> = recorded.iter().map(|l| untimed(l)).collect();
        assert_eq!(recorded, TEXT);
        assert_eq!(exits, 3);
    }

    #[test]
    fn a_json_trace_still_records_text_lines() {
        let (trace, recorded, exits) = watch(TraceFormat::Json);
        assert_eq!(trace.lines().count(), 3, "{trace}");
        assert!(
            trace.starts_with(
                "{\"seq\":1,\"vcpu\":1,\"reason\":\"KVM_EXIT_IO\",\"nr\":2,\"direction\":\"out\""
            ),
            "{trace}"
        );
        let recorded: Vec<&str> = recorded.iter().map(|l| untimed(l)).collect();
        assert_eq!(
            recorded, TEXT,
            "the recorder formats kept items as the text trace does"
        );
        assert_eq!(exits, 3);
    }
}
