//! Running every vCPU of a machine at once: one thread per vCPU, a deadline, stop requests
//! from outside (signals), and the first fault stopping the rest.
//!
//! ```text
//! sigaction(SIGRTMIN, do-nothing handler)          before any vCPU thread starts
//! for each vCPU: spawn a thread running run_vcpu   each registers itself for kicks
//! wait until: every vCPU halted                    → Ok
//!             a vCPU failed (guest fault, EPIPE)   → stop the rest, that error
//!             the deadline passed                  → stop all, Error::Timeout (status 7)
//!             RunControl::request_stop (a signal)  → stop all, Error::Interrupted (128 + signo)
//! stop all:   StopHandle::stop() on every vCPU first (immediate_exit = 1, then the kick),
//!             then join every thread, then read each stopped vCPU's instruction pointer
//! ```
//!
//! Signalling every vCPU before joining any is what keeps stopping N vCPUs as fast as stopping
//! one (cloud-hypervisor's `signal_vcpus`). A stop that reaches a vCPU thread before it has
//! registered is not lost: `immediate_exit` is already 1 when it first enters `KVM_RUN`.
//!
//! The devices are shared behind one `Mutex`, locked once per exit (for the whole batch of a
//! `rep outsb`, for one MMIO access) and once per coalesced write: an exit is never
//! interleaved with another vCPU's, so console bytes stay exactly as each vCPU wrote them.

use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use crate::arch;
use crate::devices::{Claim, IoHandler};
use crate::error::{Error, StoppedVcpu};
use crate::exit::Io;
use crate::kvm::vcpu::{StopHandle, Vcpu};
use crate::machine::Machine;
use crate::run_loop::{self, NoObserver, Observer, Outcome};

/// Whether a signal was left ignored by whoever started this process (`nohup`, `trap ''`):
/// a program that turns signals into [`RunControl::request_stop`] should leave those alone.
pub use crate::sys::thread::signal_is_ignored;

/// Why a run was asked to stop from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StopCause {
    /// A signal (`SIGINT`, `SIGTERM`, ...) arrived; the run ends with
    /// [`Error::Interrupted`].
    Signal(i32),
    /// Someone wants a snapshot (the guest pulled the snapshot port, or `--snapshot-after`
    /// passed): every vCPU is stopped and the run ends with `Ok`; the caller asks
    /// [`RunControl::stopped_for_snapshot`] and saves the machine.
    Snapshot,
}

/// Stops a run of [`Machine::run_all`] from another thread (a signal-waiting thread, say), and
/// tells writers blocked on the console that the run is ending.
///
/// A stop request is sticky: one made before the run starts stops it before any guest code
/// runs. One `RunControl` is meant for one run.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    shared: Arc<ControlShared>,
}

#[derive(Debug, Default)]
struct ControlShared {
    state: Mutex<State>,
    changed: Condvar,
    /// Set once the run has decided to stop its vCPUs, for any reason.
    stopping: AtomicBool,
}

#[derive(Debug, Default)]
struct State {
    cause: Option<StopCause>,
    /// vCPU threads that have returned, in the order they did.
    finished: Vec<(usize, Result<Outcome, Error>)>,
    /// A vCPU thread panicked (a bug): stop the others, join, and pass the panic on.
    panicked: bool,
    /// The running vCPUs' stop handles: a request stops them at once, from the requesting
    /// thread (a device on a vCPU thread must not let its guest run on until the waiting
    /// thread wakes up).
    stops: Vec<StopHandle>,
    /// The last run ended on [`StopCause::Snapshot`].
    stopped_for_snapshot: bool,
}

impl RunControl {
    /// A control with no stop requested.
    pub fn new() -> RunControl {
        RunControl::default()
    }

    /// Asks the run to stop every vCPU and end with `cause`. Only the first request counts.
    pub fn request_stop(&self, cause: StopCause) {
        let mut state = self.lock();
        state.cause.get_or_insert(cause);
        self.shared.stopping.store(true, Ordering::SeqCst);
        state.stops.iter().for_each(StopHandle::stop);
        self.shared.changed.notify_all();
    }

    /// Whether the last run ended because of a [`StopCause::Snapshot`] (not merely whether one
    /// was asked for: a request that comes after every vCPU halted changes nothing).
    pub fn stopped_for_snapshot(&self) -> bool {
        self.lock().stopped_for_snapshot
    }

    /// Why a stop was requested from outside, if it was.
    pub fn stop_cause(&self) -> Option<StopCause> {
        self.lock().cause
    }

    /// Whether a stop was requested or the run has started stopping its vCPUs (deadline,
    /// fault). A console writer waiting for a slow reader gives up when this turns true.
    pub fn is_stopping(&self) -> bool {
        self.shared.stopping.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that a vCPU thread panicked, so the run stops instead of waiting for it.
    fn note_panic(&self) {
        self.lock().panicked = true;
        self.shared.changed.notify_all();
    }

    /// Records that vCPU `index`'s thread returned `result`.
    fn finish(&self, index: usize, result: Result<Outcome, Error>) {
        self.lock().finished.push((index, result));
        self.shared.changed.notify_all();
    }

    /// Waits until all `running` threads have returned, one has failed, a stop is requested or
    /// `deadline` passes; says which.
    fn wait(&self, running: usize, deadline: Option<Instant>) -> Ending {
        let mut state = self.lock();
        loop {
            // The request first: a vCPU that fails because the run is stopping (a console
            // writer giving up) must not hide why it stopped.
            if let Some(cause) = state.cause {
                return Ending::Requested(cause);
            }
            if state.panicked || state.finished.iter().any(|(_, result)| result.is_err()) {
                return Ending::Failed;
            }
            if state
                .finished
                .iter()
                .any(|(_, result)| matches!(result, Ok(Outcome::Finished(_))))
            {
                return Ending::Reported;
            }
            if state.finished.len() == running {
                return Ending::Finished;
            }
            let changed = &self.shared.changed;
            state = match deadline {
                None => changed.wait(state).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ending::TimedOut;
                    }
                    changed
                        .wait_timeout(state, deadline - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
    }
}

/// How the waiting ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Finished,
    /// A vCPU's device ended the run ([`Outcome::Finished`]).
    Reported,
    Failed,
    TimedOut,
    Requested(StopCause),
}

/// An [`IoHandler`] shared by several vCPU threads: each exit (a whole port I/O batch) or
/// coalesced write locks the handler for its duration.
#[derive(Debug)]
pub struct SharedHandler<'a, H>(pub &'a Mutex<H>);

impl<H: IoHandler> SharedHandler<'_, H> {
    fn lock(&self) -> MutexGuard<'_, H> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<H: IoHandler> IoHandler for SharedHandler<'_, H> {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> std::io::Result<Claim> {
        self.lock().pio_read(port, data)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> std::io::Result<Claim> {
        self.lock().pio_write(port, data)
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> std::io::Result<Claim> {
        self.lock().mmio_read(addr, data)
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> std::io::Result<Claim> {
        self.lock().mmio_write(addr, data)
    }

    fn msr_read(&mut self, index: u32, value: &mut u64) -> std::io::Result<Claim> {
        self.lock().msr_read(index, value)
    }

    fn msr_write(&mut self, index: u32, value: u64) -> std::io::Result<Claim> {
        self.lock().msr_write(index, value)
    }

    fn sbi_call(
        &mut self,
        extension_id: u64,
        function_id: u64,
        args: &[u64; 6],
        ret: &mut [u64; 2],
    ) -> std::io::Result<Claim> {
        self.lock().sbi_call(extension_id, function_id, args, ret)
    }

    /// One lock for the whole exit: a `rep insb` batch of 1024 accesses would otherwise take
    /// and release it 1024 times.
    fn io_exit(&mut self, io: &mut Io<'_>) -> std::io::Result<Claim> {
        self.lock().io_exit(io)
    }
    // `write_only_zones` keeps its default: zones are registered from the devices themselves
    // before the threads start, never through this wrapper.
}

/// An observer the vCPU threads of one run share: each thread watches through
/// [`SharedObserver::local`].
pub trait SharedObserver: Sync {
    /// What one vCPU thread observes through.
    type Local<'a>: Observer
    where
        Self: 'a;

    /// The view one vCPU thread uses.
    fn local(&self) -> Self::Local<'_>;
}

/// Nothing to share: each thread watches through its own [`NoObserver`], at no cost.
impl SharedObserver for NoObserver {
    type Local<'a> = NoObserver;

    fn local(&self) -> NoObserver {
        NoObserver
    }
}

/// One observer behind a lock, taken for each hook (what `--trace` and `--stats` use; the
/// plain run pays nothing for it, see [`NoObserver`]'s impl).
impl<O: Observer + Send> SharedObserver for Mutex<O> {
    type Local<'a>
        = Locked<'a, O>
    where
        O: 'a;

    fn local(&self) -> Locked<'_, O> {
        Locked {
            observer: self,
            failure: None,
        }
    }
}

/// An observer reached through a lock.
#[derive(Debug)]
pub struct Locked<'a, O> {
    observer: &'a Mutex<O>,
    /// The shared observer's failure, taken under the lock of the exit that caused it, so
    /// asking for it after every exit costs no second lock.
    failure: Option<Error>,
}

impl<O: Observer> Locked<'_, O> {
    fn lock(&self) -> MutexGuard<'_, O> {
        self.observer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<O: Observer> Observer for Locked<'_, O> {
    fn before_run(&mut self, vcpu: u32) {
        self.lock().before_run(vcpu);
    }

    fn after_run(&mut self, vcpu: u32) {
        self.lock().after_run(vcpu);
    }

    fn exit(&mut self, vcpu: u32, exit: &crate::exit::Exit<'_>, dispatch: Option<Claim>) {
        let mut observer = self.observer.lock().unwrap_or_else(PoisonError::into_inner);
        observer.exit(vcpu, exit, dispatch);
        self.failure = observer.failure();
    }

    fn interrupted(&mut self, vcpu: u32, stopping: bool) {
        self.lock().interrupted(vcpu, stopping);
    }

    fn injected(&mut self, vcpu: u32, vector: u8) {
        self.lock().injected(vcpu, vector);
    }

    fn failure(&mut self) -> Option<Error> {
        self.failure.take()
    }
}

impl Machine {
    /// Runs every vCPU on a thread of its own until all have halted (`Ok`), one fails (its
    /// error; the others are stopped), `timeout` passes ([`Error::Timeout`]) or `control`
    /// asks for a stop ([`Error::Interrupted`] for a signal, `Ok` for a snapshot). Every exit goes to `observer` (pass
    /// [`NoObserver`] to watch nothing, at no cost). Every thread has been joined when this
    /// returns, whatever it returns.
    ///
    /// Stops go through `control`. Each run starts by forgetting what the vCPUs'
    /// own [`StopHandle`]s asked before it (a stop that landed after the previous run ended,
    /// say), so it always runs guest code unless `control` already asks to stop. A vCPU
    /// stopped through its own `StopHandle` during the run counts as finished: the others run
    /// on, and the run is `Ok` once all are done. A `timeout` too large to add to the
    /// current time (`Duration::MAX`) means no deadline.
    pub fn run_all<H, S>(
        &mut self,
        handler: &Mutex<H>,
        observer: &S,
        timeout: Option<Duration>,
        control: &RunControl,
    ) -> Result<(), Error>
    where
        H: IoHandler + Send,
        S: SharedObserver,
    {
        let pic = self.user_pic().cloned();
        let pic = pic.as_deref();
        let vcpus = self.vcpus_mut();
        // Before any thread exists, so no kick can ever meet the signal's default action.
        crate::sys::thread::install_kick_handler().map_err(|errno| Error::Signal { errno })?;
        let deadline = timeout.and_then(|timeout| Instant::now().checked_add(timeout));
        let stops: Vec<StopHandle> = vcpus.iter().map(Vcpu::stop_handle).collect();
        {
            let mut state = control.lock();
            state.finished = Vec::with_capacity(vcpus.len());
            state.stops = stops.clone();
        }
        // Stops from before this run (an earlier run's, or a late `StopHandle::stop`) would
        // end it before any guest code ran; this run's stops go through `control`.
        vcpus.iter().for_each(Vcpu::reset_stop);
        // A stop requested before the run (a signal during setup) must not let any guest code
        // run: with `immediate_exit` already 1, every first `KVM_RUN` returns EINTR at once.
        if control.is_stopping() {
            stops.iter().for_each(StopHandle::stop);
        }
        let ending = thread::scope(|scope| {
            let mut threads = Vec::with_capacity(vcpus.len());
            let mut spawn_error = None;
            for (index, vcpu) in vcpus.iter_mut().enumerate() {
                let id = vcpu.id();
                let spawned = thread::Builder::new()
                    .name(format!("vcpu{id}"))
                    .spawn_scoped(scope, move || {
                        let run = AssertUnwindSafe(|| {
                            let mut local = observer.local();
                            // The user-space PIC delivers to vCPU 0, as a PC's 8259 does.
                            let pic = pic.filter(|_| index == 0);
                            let handler = &mut SharedHandler(handler);
                            run_loop::run_vcpu_with_pic(vcpu, handler, &mut local, pic)
                        });
                        match panic::catch_unwind(run) {
                            Ok(result) => control.finish(index, result),
                            Err(payload) => {
                                control.note_panic();
                                panic::resume_unwind(payload);
                            }
                        }
                    });
                match spawned {
                    Ok(thread) => threads.push(thread),
                    Err(error) => {
                        spawn_error = Some(Error::SpawnThread { vcpu: id, error });
                        break;
                    }
                }
            }
            let ending = match spawn_error {
                Some(error) => {
                    control.finish(threads.len(), Err(error));
                    Ending::Failed
                }
                None => control.wait(threads.len(), deadline),
            };
            if ending != Ending::Finished {
                // Reported too: the exit device ends the whole run at once.
                control.shared.stopping.store(true, Ordering::SeqCst);
                // Signal all first, then join all.
                stops.iter().for_each(StopHandle::stop);
            }
            // pthread_join each one: the scope alone only waits for the closures to return,
            // and a thread (its stack, its signal stack) may outlive that for a moment.
            for thread in threads {
                if let Err(payload) = thread.join() {
                    panic::resume_unwind(payload);
                }
            }
            ending
        });
        let mut finished = {
            let mut state = control.lock();
            state.stops.clear();
            state.stopped_for_snapshot = ending == Ending::Requested(StopCause::Snapshot);
            // The exit device stopped the other vCPUs, but the run ended as the guest wanted:
            // a next run on this control (a restart) must not start out stopping.
            if ending == Ending::Reported && state.cause.is_none() {
                control.shared.stopping.store(false, Ordering::SeqCst);
            }
            std::mem::take(&mut state.finished)
        };
        let stopped = || {
            let mut stopped: Vec<StoppedVcpu> = finished
                .iter()
                .filter(|(_, result)| matches!(result, Ok(Outcome::Stopped)))
                .map(|&(index, _)| StoppedVcpu {
                    id: vcpus[index].id(),
                    instruction_pointer: arch::instruction_pointer(&vcpus[index]).ok(),
                })
                .collect();
            stopped.sort_by_key(|vcpu| vcpu.id);
            stopped
        };
        match ending {
            Ending::Finished => Ok(()),
            Ending::Reported => {
                match finished
                    .iter()
                    .find_map(|&(index, ref result)| match result {
                        Ok(Outcome::Finished(code)) => Some((index, *code)),
                        _ => None,
                    }) {
                    Some((index, code)) if code != 0 => Err(Error::GuestReportedFailure {
                        vcpu: vcpus[index].id(),
                        code,
                    }),
                    _ => Ok(()),
                }
            }
            Ending::TimedOut => Err(Error::Timeout {
                timeout: timeout.unwrap_or_default(),
                stopped: stopped(),
            }),
            Ending::Requested(StopCause::Snapshot) => Ok(()),
            Ending::Requested(StopCause::Signal(signal)) => Err(Error::Interrupted {
                signal,
                stopped: stopped(),
            }),
            Ending::Failed => {
                let first_error = finished.iter().position(|(_, result)| result.is_err());
                match first_error.map(|at| finished.swap_remove(at).1) {
                    Some(Err(error)) => Err(error),
                    _ => Ok(()),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::devices::bus::dispatch_io;
    use crate::exit::IoDirection;

    /// Counts the exits and the accesses that reach it.
    #[derive(Debug, Default)]
    struct Counting {
        exits: usize,
        accesses: usize,
    }

    impl IoHandler for Counting {
        fn pio_read(&mut self, _port: u16, data: &mut [u8]) -> io::Result<Claim> {
            self.accesses += 1;
            data.fill(0x5A);
            Ok(Claim::Claimed)
        }
        fn pio_write(&mut self, _port: u16, _data: &[u8]) -> io::Result<Claim> {
            unreachable!("the test only reads")
        }
        fn mmio_read(&mut self, _addr: u64, _data: &mut [u8]) -> io::Result<Claim> {
            unreachable!("the test only does port I/O")
        }
        fn mmio_write(&mut self, _addr: u64, _data: &[u8]) -> io::Result<Claim> {
            unreachable!("the test only does port I/O")
        }
        fn io_exit(&mut self, io: &mut Io<'_>) -> io::Result<Claim> {
            self.exits += 1;
            dispatch_io(io, self)
        }
    }

    #[test]
    fn a_shared_handler_passes_a_port_exit_on_whole_under_one_lock() {
        let shared = Mutex::new(Counting::default());
        let mut data = [0u8; 6];
        let mut io = Io {
            direction: IoDirection::In,
            port: 0x511,
            size: 2,
            count: 3,
            data_offset: 0,
            data: &mut data,
        };
        let dispatch = SharedHandler(&shared).io_exit(&mut io).unwrap();
        assert_eq!(dispatch, Claim::Claimed);
        let counting = shared.into_inner().unwrap();
        assert_eq!(
            (counting.exits, counting.accesses),
            (1, 3),
            "one exit reached the handler whole, then its three accesses"
        );
        assert_eq!(data, [0x5A; 6]);
    }
}
