//! One gdb session on one stopped vCPU: read packets, answer them, resume the guest when
//! asked, and send the stop reply when it stops again.
//!
//! ```text
//! thread "gdb-reader" (one per session)      the vCPU's thread (the caller)
//!   read(socket) -> bytes -> channel  ------>  decode packets, answer (ack unless no-ack)
//!   0x03 while running: StopHandle::stop       c/s: KVM_SET_GUEST_DEBUG, run_vcpu
//!   a stop signal (RunControl): the same       stop reply; W00 when the guest halted
//! ```

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use rawkvm_bindings::{
    KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP, kvm_guest_debug,
    kvm_guest_debug_arch,
};

use super::commands::{Action, Resume, StopReason, Stub, Target};
use super::packet::{Decoder, INTERRUPT, Incoming, frame};
use super::target_xml::Layout;
use super::{Connection, connection_error};
use crate::debug::registers::RegisterFile;
use crate::devices::{Claim, IoHandler};
use crate::error::{Error, StoppedVcpu};
use crate::exit::{DebugExit, Exit};
use crate::kvm::memory::GuestMemory;
use crate::kvm::vcpu::{StopHandle, Vcpu};
use crate::machine::supervisor::{RunControl, StopCause};
use crate::run_loop::{self, Observer, Outcome};

/// How often the reader thread looks at the [`RunControl`] while gdb is silent.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// The `hlt` opcode: a single-stepped `hlt` completes without halting, so it is run undebugged.
const HLT: u8 = 0xF4;

/// How a session ended (errors aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The guest halted while gdb watched (gdb was told `W00`).
    Halted,
    /// gdb sent `k`.
    Killed,
    /// gdb sent `D`: the guest should run on, undebugged.
    Detached,
    /// gdb closed the connection.
    Disconnected,
}

/// What the reader thread passes on.
enum Event {
    Bytes(Vec<u8>),
    Closed,
    Signal,
}

/// The vCPU and the machine's RAM, as the stub sees them.
struct VcpuTarget<'a> {
    vcpu: &'a Vcpu,
    memory: &'a GuestMemory,
}

impl Target for VcpuTarget<'_> {
    fn registers(&mut self) -> Result<RegisterFile, String> {
        RegisterFile::read(self.vcpu).map_err(|error| error.to_string())
    }

    fn set_registers(&mut self, file: &RegisterFile, before: &RegisterFile) -> Result<(), String> {
        file.write(self.vcpu, before)
            .map_err(|error| error.to_string())
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.memory.read(addr, buf).is_ok()
    }

    fn write_memory(&mut self, addr: u64, data: &[u8]) -> bool {
        self.memory.write(addr, data).is_ok()
    }
}

/// Passes every exit on and keeps the last `KVM_EXIT_DEBUG` (which DR6 bit fired).
struct Capture<'o, O: ?Sized> {
    inner: &'o mut O,
    debug: Option<DebugExit>,
}

impl<O: Observer + ?Sized> Observer for Capture<'_, O> {
    fn before_run(&mut self, vcpu: u32) {
        self.inner.before_run(vcpu);
    }
    fn after_run(&mut self, vcpu: u32) {
        self.inner.after_run(vcpu);
    }
    fn exit(&mut self, vcpu: u32, exit: &Exit<'_>, dispatch: Option<Claim>) {
        if let Exit::Debug(debug) = exit {
            self.debug = Some(*debug);
        }
        self.inner.exit(vcpu, exit, dispatch);
    }
    fn interrupted(&mut self, vcpu: u32, stopping: bool) {
        self.inner.interrupted(vcpu, stopping);
    }
    fn failure(&mut self) -> Option<Error> {
        self.inner.failure()
    }
    fn injected(&mut self, vcpu: u32, vector: u8) {
        self.inner.injected(vcpu, vector);
    }
}

/// The machine a session debugs, and what watches its exits.
pub struct Debuggee<'a, H: ?Sized, O: ?Sized> {
    /// The vCPU (stopped at its first instruction when the session starts).
    pub vcpu: &'a mut Vcpu,
    /// Its RAM.
    pub memory: &'a GuestMemory,
    /// The devices.
    pub handler: &'a mut H,
    /// Sees every exit (the trace options).
    pub observer: &'a mut O,
    /// Signals stop the session (`Error::Interrupted`).
    pub control: &'a RunControl,
}

struct Session<'a, 'd, H: ?Sized, O: ?Sized> {
    debuggee: &'d mut Debuggee<'a, H, O>,
    stub: Stub,
    connection: Connection,
    running: &'d AtomicBool,
    notes: &'d mut dyn Write,
    out: Vec<u8>,
}

/// Serves gdb on `connection` until it kills, detaches or goes away, or the guest halts or
/// faults. Explanations of error replies gdb cannot show go to `notes` (stderr).
pub fn serve<H, O>(
    connection: Connection,
    debuggee: &mut Debuggee<'_, H, O>,
    notes: &mut dyn Write,
) -> Result<SessionEnd, Error>
where
    H: IoHandler + ?Sized,
    O: Observer + ?Sized,
{
    let mode = RegisterFile::read(debuggee.vcpu)?.mode;
    let reader = connection
        .try_clone()
        .and_then(|reader| reader.set_read_timeout(Some(SIGNAL_POLL)).map(|()| reader))
        .map_err(|error| connection_error(&error))?;
    let running = AtomicBool::new(false);
    let stop = debuggee.vcpu.stop_handle();
    let control = debuggee.control.clone();
    let (sender, receiver) = mpsc::channel();
    thread::scope(|scope| {
        let reader_thread = thread::Builder::new()
            .name("gdb-reader".into())
            .spawn_scoped(scope, || {
                read_loop(reader, &sender, &running, &stop, &control)
            })
            .map_err(|error| Error::SpawnThread {
                vcpu: debuggee.vcpu.id(),
                error,
            })?;
        let mut session = Session {
            debuggee,
            stub: Stub::new(Layout::for_mode(mode)),
            connection,
            running: &running,
            notes,
            out: Vec::with_capacity(1024),
        };
        let ended = session.packets(&receiver);
        session.connection.shutdown();
        drop(reader_thread.join());
        ended
    })
}

/// The reader thread: socket bytes to the channel; Ctrl-C (while the guest runs) and stop
/// signals (at any time) kick the vCPU.
fn read_loop(
    mut reader: Connection,
    sender: &Sender<Event>,
    running: &AtomicBool,
    stop: &StopHandle,
    control: &RunControl,
) {
    let mut buf = [0u8; 4096];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                if running.load(Ordering::SeqCst) && buf[..n].contains(&INTERRUPT) {
                    stop.stop();
                }
                if sender.send(Event::Bytes(buf[..n].to_vec())).is_err() {
                    return;
                }
            }
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) =>
            {
                if control.is_stopping() {
                    stop.stop();
                    let _ = sender.send(Event::Signal);
                    return;
                }
            }
            Err(_) => break,
        }
    }
    let _ = sender.send(Event::Closed);
}

impl<H: IoHandler + ?Sized, O: Observer + ?Sized> Session<'_, '_, H, O> {
    fn packets(&mut self, receiver: &Receiver<Event>) -> Result<SessionEnd, Error> {
        let mut decoder = Decoder::default();
        let mut last_reply = Vec::new();
        loop {
            let bytes = match receiver.recv() {
                Ok(Event::Bytes(bytes)) => bytes,
                Ok(Event::Signal) => return Err(self.interrupted()),
                Ok(Event::Closed) | Err(_) => return Ok(SessionEnd::Disconnected),
            };
            for byte in bytes {
                let reply = match decoder.push(byte) {
                    Some(Incoming::Packet(packet)) => {
                        if !self.stub.no_ack {
                            self.send_raw(b"+")?;
                        }
                        match self.answer(&packet)? {
                            Ok(reply) => reply,
                            Err(end) => return Ok(end),
                        }
                    }
                    Some(Incoming::Corrupt) if !self.stub.no_ack => {
                        self.send_raw(b"-")?;
                        continue;
                    }
                    Some(Incoming::Nack) if !self.stub.no_ack => last_reply.clone(),
                    // An interrupt while stopped has nothing to stop; acks need nothing.
                    _ => continue,
                };
                self.send_raw(&reply)?;
                last_reply = reply;
            }
        }
    }

    /// The framed reply to `packet`, or how the session ends.
    fn answer(&mut self, packet: &[u8]) -> Result<Result<Vec<u8>, SessionEnd>, Error> {
        let debuggee = &mut *self.debuggee;
        let mut target = VcpuTarget {
            vcpu: debuggee.vcpu,
            memory: debuggee.memory,
        };
        let action = self.stub.handle(packet, &mut target);
        for note in self.stub.notes.drain(..) {
            let _ = writeln!(self.notes, "rawkvm: gdb: {note}");
        }
        let payload = match action {
            Action::Reply(payload) => payload,
            Action::Kill => return Ok(Err(SessionEnd::Killed)),
            Action::Detach => {
                self.send(b"OK")?;
                self.disarm()?;
                return Ok(Err(SessionEnd::Detached));
            }
            Action::Resume(how) => {
                let reason = match self.resume(how) {
                    Ok(reason) => reason,
                    Err(error) => {
                        // gdb hears that the "process" died; the error says how.
                        let _ = self.send(&StopReason::Terminated(0x0B).reply());
                        return Err(error);
                    }
                };
                if reason == StopReason::Exited(0) {
                    self.send(&reason.reply())?;
                    return Ok(Err(SessionEnd::Halted));
                }
                reason.reply()
            }
        };
        frame(&payload, &mut self.out);
        Ok(Ok(self.out.clone()))
    }

    fn send(&mut self, payload: &[u8]) -> Result<(), Error> {
        let mut out = Vec::with_capacity(payload.len() + 4);
        frame(payload, &mut out);
        self.send_raw(&out)
    }

    fn send_raw(&mut self, bytes: &[u8]) -> Result<(), Error> {
        match self.connection.write_all(bytes) {
            Ok(()) => Ok(()),
            // gdb went away mid-reply: the next read says so and ends the session.
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(connection_error(&error)),
        }
    }

    /// `KVM_SET_GUEST_DEBUG(control = 0)`: nothing armed.
    fn disarm(&mut self) -> Result<(), Error> {
        self.debuggee.vcpu.set_guest_debug(&guest_debug(0, [0; 8]))
    }

    /// Runs the guest as `how` asks and says why it stopped.
    fn resume(&mut self, how: Resume) -> Result<StopReason, Error> {
        let pc = RegisterFile::read(self.debuggee.vcpu)?.pc();
        let mut opcode = [0u8];
        let at_hlt = self.debuggee.memory.read(pc, &mut opcode).is_ok() && opcode[0] == HLT;
        if at_hlt {
            // Stepped, a hlt would complete and the guest never halt (measured on kvm_pvm).
            self.disarm()?;
            return self.run(false);
        }
        if how == Resume::Step || self.stub.breakpoints.contains(pc) {
            // A breakpoint here would fire again at once: step past it with none armed.
            let step = guest_debug(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP, [0; 8]);
            self.debuggee.vcpu.set_guest_debug(&step)?;
            let reason = self.run(false)?;
            if how == Resume::Step || reason != StopReason::Step {
                return Ok(reason);
            }
        }
        let debug = if self.stub.breakpoints.any() {
            let control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
            guest_debug(control, self.stub.breakpoints.debugreg())
        } else {
            guest_debug(0, [0; 8])
        };
        self.debuggee.vcpu.set_guest_debug(&debug)?;
        self.run(true)
    }

    /// One `run_vcpu` until the next stop; `interruptible`: Ctrl-C may stop it.
    fn run(&mut self, interruptible: bool) -> Result<StopReason, Error> {
        let debuggee = &mut *self.debuggee;
        let mut capture = Capture {
            inner: &mut *debuggee.observer,
            debug: None,
        };
        self.running.store(interruptible, Ordering::SeqCst);
        let outcome = run_loop::run_vcpu(debuggee.vcpu, debuggee.handler, &mut capture);
        self.running.store(false, Ordering::SeqCst);
        // A Ctrl-C that raced with another stop must not stop the next run at once.
        debuggee.vcpu.reset_stop();
        if debuggee.control.is_stopping() {
            return Err(self.interrupted());
        }
        let (outcome, debug) = (outcome?, capture.debug);
        Ok(match outcome {
            Outcome::Halted | Outcome::Finished(0) => StopReason::Exited(0),
            // The exit device's code, as the "process" exit status gdb shows.
            Outcome::Finished(code) => {
                let vcpu = self.debuggee.vcpu.id();
                let _ = self.send(&StopReason::Exited(code.min(255) as u8).reply());
                return Err(Error::GuestReportedFailure { vcpu, code });
            }
            Outcome::Stopped => StopReason::Interrupted,
            Outcome::Debug => match debug.and_then(|debug| debug.breakpoint()) {
                Some(_) => StopReason::Breakpoint,
                None => StopReason::Step,
            },
        })
    }

    /// The error for a stop signal: the signal and where the vCPU is.
    fn interrupted(&self) -> Error {
        let signal = match self.debuggee.control.stop_cause() {
            Some(StopCause::Signal(signal)) => signal,
            // A snapshot request cannot reach a debugged run (the flags are refused together).
            Some(StopCause::Snapshot) | None => libc::SIGINT,
        };
        let vcpu = &*self.debuggee.vcpu;
        Error::Interrupted {
            signal,
            stopped: vec![StoppedVcpu {
                id: vcpu.id(),
                instruction_pointer: crate::arch::instruction_pointer(vcpu).ok(),
            }],
        }
    }
}

fn guest_debug(control: u32, debugreg: [u64; 8]) -> kvm_guest_debug {
    kvm_guest_debug {
        control,
        pad: 0,
        arch: kvm_guest_debug_arch { debugreg },
    }
}
