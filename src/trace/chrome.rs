//! `--trace=chrome PATH`: the run as a Chrome trace-event file, which Perfetto
//! (ui.perfetto.dev) and `chrome://tracing` open.
//!
//! ```text
//! {"traceEvents":[
//! {"name":"process_name","ph":"M","pid":P,"tid":0,"args":{"name":"rawkvm"}},
//! {"name":"thread_name","ph":"M","pid":P,"tid":0,"args":{"name":"vcpu0"}},
//! {"name":"KVM_RUN","cat":"kvm","ph":"X","ts":12.345,"dur":107.669,"pid":P,"tid":0,
//!  "args":{"seq":1,"exit":"KVM_EXIT_IO"}},
//! {"name":"KVM_EXIT_IO","cat":"exit","ph":"i","s":"t","ts":120.014,"pid":P,"tid":0,
//!  "args":{"seq":1,"direction":"in","size":1,"port":1021,...,"claimed":true}},
//! {"name":"rawkvm","cat":"vmm","ph":"X","ts":120.014,"dur":0.412,...},
//! ...
//! ]}
//! ```
//!
//! One track (`tid`) per vCPU: a `KVM_RUN` slice from entry to exit (from the same clock
//! readings `--trace` prints as `run_ns`), an instant event at the exit with its decoded
//! fields as `args` (the same [`Exit::visit`] items as `--trace=json`), and a slice for the
//! time rawkvm spent handling it. A `KVM_RUN` that returned `EINTR` is a slice with
//! `"exit":"EINTR"` and no instant. An interrupt rawkvm injects (`KVM_INTERRUPT`) is an
//! instant event of its own, `KVM_INTERRUPT` with the vector. Times are microseconds from the first event, with
//! nanosecond decimals. Events are written as they happen, into a buffered writer, one reused
//! line buffer, so watching allocates nothing per exit.

use std::io::{self, Write};
use std::time::Instant;

use super::json::{push_item, push_key, push_string};
use super::text::LineHeader;
use crate::devices::Claim;
use crate::exit::Exit;
use crate::exit::text::push_dec;

/// The file being written, and what has been said in it.
pub struct ChromeTrace {
    sink: Box<dyn Write + Send>,
    line: Vec<u8>,
    origin: Option<Instant>,
    pid: u64,
    /// vCPU ids whose track has been named.
    named: Vec<bool>,
    /// Events written so far (each after the first is preceded by a comma).
    events: u64,
    finished: bool,
    error: Option<io::Error>,
}

impl std::fmt::Debug for ChromeTrace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChromeTrace")
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl ChromeTrace {
    /// A trace written to `sink` (give it a buffered writer); writes the opening and the
    /// process's name at once.
    pub fn new(sink: Box<dyn Write + Send>) -> ChromeTrace {
        let mut trace = ChromeTrace {
            sink,
            line: Vec::with_capacity(1024),
            origin: None,
            pid: u64::from(std::process::id()),
            named: Vec::new(),
            events: 0,
            finished: false,
            error: None,
        };
        trace.line.extend_from_slice(b"{\"traceEvents\":[\n");
        trace.push_metadata("process_name", 0, "rawkvm");
        trace.write_line();
        trace
    }

    /// Names the tracks of vCPUs `0..count` now, so the run allocates nothing later.
    pub fn expect_vcpus(&mut self, count: u32) {
        for vcpu in 0..count {
            self.name_track(vcpu);
        }
    }

    /// One `KVM_RUN` from `before` to `after`, the exit it returned (`None`: `EINTR`), and
    /// rawkvm's handling of it until `handled`.
    pub fn run(&mut self, header: &LineHeader, times: [Instant; 3], exit: Option<&Exit<'_>>) {
        let [before, after, handled] = times;
        self.name_track(header.vcpu);
        let exit_name = exit.map_or("EINTR", Exit::reason_name);
        self.push_event("KVM_RUN", "kvm", b'X', before, Some(after), header.vcpu);
        self.line.extend_from_slice(b",\"args\":{\"seq\":");
        push_dec(&mut self.line, header.seq);
        push_key(&mut self.line, "exit");
        push_string(&mut self.line, exit_name);
        self.line.extend_from_slice(b"}}");
        if let Some(exit) = exit {
            self.push_event(exit_name, "exit", b'i', after, None, header.vcpu);
            self.line
                .extend_from_slice(b",\"s\":\"t\",\"args\":{\"seq\":");
            push_dec(&mut self.line, header.seq);
            let line = &mut self.line;
            exit.visit(&mut |item| push_item(line, &item));
            if let Some(dispatch) = header.dispatch {
                push_key(&mut self.line, "claimed");
                let claimed = dispatch == Claim::Claimed;
                self.line
                    .extend_from_slice(if claimed { b"true" } else { b"false" });
            }
            self.line.extend_from_slice(b"}}");
            self.push_event("rawkvm", "vmm", b'X', after, Some(handled), header.vcpu);
            self.line.extend_from_slice(b",\"args\":{\"seq\":");
            push_dec(&mut self.line, header.seq);
            self.line.extend_from_slice(b"}}");
        }
        self.write_line();
    }

    /// rawkvm injected `vector` (`KVM_INTERRUPT`) at `at`: an instant event on the vCPU's
    /// track, before the `KVM_RUN` that delivers it.
    pub fn injected(&mut self, vcpu: u32, vector: u8, at: Instant) {
        self.name_track(vcpu);
        self.push_event("KVM_INTERRUPT", "irq", b'i', at, None, vcpu);
        self.line
            .extend_from_slice(b",\"s\":\"t\",\"args\":{\"vector\":");
        push_dec(&mut self.line, u64::from(vector));
        self.line.extend_from_slice(b"}}");
        self.write_line();
    }

    /// Closes the event list and flushes; later calls only flush. Reports the first write
    /// error of the run.
    pub fn finish(&mut self) -> io::Result<()> {
        if !self.finished {
            self.finished = true;
            self.line.clear();
            self.line.extend_from_slice(b"\n]}\n");
            self.write_all();
        }
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        self.sink.flush()
    }

    fn name_track(&mut self, vcpu: u32) {
        let index = usize::try_from(vcpu).unwrap_or(usize::MAX);
        if self.named.get(index) == Some(&true) {
            return;
        }
        if index >= self.named.len() {
            self.named.resize(index.saturating_add(1), false);
        }
        self.named[index] = true;
        let mut name = [0u8; 16];
        let len = {
            let mut cursor = io::Cursor::new(&mut name[..]);
            let _ = write!(cursor, "vcpu{vcpu}");
            cursor.position() as usize
        };
        let name = std::str::from_utf8(&name[..len]).unwrap_or("vcpu");
        self.push_metadata("thread_name", vcpu, name);
        self.write_line();
    }

    /// Starts an event: a comma and a line break after the one before.
    fn separate(&mut self) {
        if self.events > 0 {
            self.line.extend_from_slice(b",\n");
        }
        self.events += 1;
    }

    fn push_metadata(&mut self, kind: &str, tid: u32, name: &str) {
        self.separate();
        self.line.extend_from_slice(b"{\"name\":");
        push_string(&mut self.line, kind);
        self.line.extend_from_slice(b",\"ph\":\"M\"");
        self.push_ids(tid);
        self.line.extend_from_slice(b",\"args\":{\"name\":");
        push_string(&mut self.line, name);
        self.line.extend_from_slice(b"}}");
    }

    fn push_ids(&mut self, tid: u32) {
        push_key(&mut self.line, "pid");
        push_dec(&mut self.line, self.pid);
        push_key(&mut self.line, "tid");
        push_dec(&mut self.line, u64::from(tid));
    }

    /// `{"name":..,"cat":..,"ph":..,"ts":..[,"dur":..],"pid":..,"tid":..` (open).
    fn push_event(
        &mut self,
        name: &str,
        category: &str,
        phase: u8,
        start: Instant,
        end: Option<Instant>,
        tid: u32,
    ) {
        let origin = *self.origin.get_or_insert(start);
        self.separate();
        self.line.extend_from_slice(b"{\"name\":");
        push_string(&mut self.line, name);
        push_key(&mut self.line, "cat");
        push_string(&mut self.line, category);
        self.line.extend_from_slice(b",\"ph\":\"");
        self.line.push(phase);
        self.line.push(b'"');
        push_key(&mut self.line, "ts");
        push_micros(&mut self.line, nanos(origin, start));
        if let Some(end) = end {
            push_key(&mut self.line, "dur");
            push_micros(&mut self.line, nanos(start, end));
        }
        self.push_ids(tid);
    }

    /// Writes the events built.
    fn write_line(&mut self) {
        self.write_all();
    }

    fn write_all(&mut self) {
        if self.error.is_none()
            && let Err(error) = self.sink.write_all(&self.line)
        {
            self.error = Some(error);
        }
        self.line.clear();
    }
}

fn nanos(from: Instant, to: Instant) -> u64 {
    u64::try_from(to.saturating_duration_since(from).as_nanos()).unwrap_or(u64::MAX)
}

/// Appends `ns` as microseconds with three decimals (`107.669`).
fn push_micros(out: &mut Vec<u8>, ns: u64) {
    push_dec(out, ns / 1000);
    let fraction = ns % 1000;
    out.push(b'.');
    out.push(b'0' + (fraction / 100) as u8);
    out.push(b'0' + (fraction / 10 % 10) as u8);
    out.push(b'0' + (fraction % 10) as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exit::{Io, IoDirection};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// A writer whose bytes the test can read after the trace is done with it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_run_is_a_slice_an_instant_and_a_handling_slice_on_the_vcpus_track() {
        let out = Shared::default();
        let mut trace = ChromeTrace::new(Box::new(out.clone()));
        trace.expect_vcpus(1);
        let t0 = Instant::now();
        let times = [
            t0,
            t0 + Duration::from_nanos(107_669),
            t0 + Duration::from_nanos(108_081),
        ];
        let mut data = [0x60];
        let exit = Exit::Io(Io {
            direction: IoDirection::In,
            port: 0x3FD,
            size: 1,
            count: 1,
            data_offset: 4096,
            data: &mut data,
        });
        let header = LineHeader {
            seq: 1,
            vcpu: 0,
            run_ns: 107_669,
            dispatch: Some(Claim::Claimed),
        };
        trace.run(&header, times, Some(&exit));
        trace.run(&LineHeader { seq: 2, ..header }, times, None);
        trace.finish().unwrap();
        trace.finish().unwrap();
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let pid = std::process::id();
        assert!(text.starts_with("{\"traceEvents\":[\n"), "{text}");
        assert!(text.ends_with("}}\n]}\n"), "closed once: {text}");
        assert!(text.contains(&format!(
            "{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":{pid},\"tid\":0,\"args\":{{\"name\":\"vcpu0\"}}}}"
        )));
        assert!(
            text.contains(&format!(
                "{{\"name\":\"KVM_RUN\",\"cat\":\"kvm\",\"ph\":\"X\",\"ts\":0.000,\"dur\":107.669,\
             \"pid\":{pid},\"tid\":0,\"args\":{{\"seq\":1,\"exit\":\"KVM_EXIT_IO\"}}}}"
            )),
            "{text}"
        );
        assert!(
            text.contains("\"ph\":\"i\",\"ts\":107.669,\"pid\""),
            "{text}"
        );
        assert!(
            text.contains(
                "\"s\":\"t\",\"args\":{\"seq\":1,\"direction\":\"in\",\"size\":1,\"port\":1021,\
             \"count\":1,\"data_offset\":4096,\"data\":\"60\",\"claimed\":true}}"
            ),
            "{text}"
        );
        assert!(text.contains(
            "\"name\":\"rawkvm\",\"cat\":\"vmm\",\"ph\":\"X\",\"ts\":107.669,\"dur\":0.412"
        ));
        assert!(text.contains("\"args\":{\"seq\":2,\"exit\":\"EINTR\"}"));
        assert_eq!(
            text.matches("\"ph\":\"i\"").count(),
            1,
            "no instant for EINTR"
        );
    }
}
