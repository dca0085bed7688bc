//! Teardown off the critical path: a thread that drops VMs for their owner.
//!
//! ```text
//! caller                                      reaper thread
//! machine = Machine::new(...); run to HLT
//! machine.drop_in_background(&reaper)  ───▶   drop(machine):
//!   (returns at once)                           munmap(kvm_run); close(vcpu fd)
//! next machine = Machine::new(...)              close(vm fd)      the slow part
//!                                               munmap(guest RAM)
//! reaper.join()                               every queued drop done, thread exited
//! ```
//!
//! Closing the VM fd is a large part of a whole create-run-destroy cycle (`docs/BACKEND.md`,
//! "Measured costs"): the kernel tears the VM down synchronously in `close`. A caller that
//! makes VM after VM need not wait for that; it only needs it done before the process ends.
//! The queue is bounded, so a caller that outruns the reaper waits for it instead of piling
//! up fds and mappings, and [`Reaper::join`] (or dropping the reaper) waits until everything
//! handed over has been released.
//!
//! The reaper runs in the `SCHED_IDLE` class: tearing a VM down is mostly kernel work on the
//! CPU, and on a machine whose CPUs are busy a reaper at normal priority takes that CPU time
//! from the very thread it was meant to spare. Idle, it works in the gaps, and when it falls
//! behind, the full queue makes the caller wait for it. With the C baseline's equivalent on
//! 2 CPUs with one busy, an idle destroyer brought the time from the start of a creation to
//! the VM's HLT down by almost half against a normal-priority one, for the same throughput
//! (`docs/BACKEND.md`, "Measured costs").
//!
//! The risk that comes with it is priority inversion. Dropping a machine `munmap`s its
//! `kvm_run` mappings and guest RAM, and `munmap` holds the process's `mmap_lock` while it
//! works (for writing while it edits the address space, then, on current kernels, for reading
//! while it frees the pages). A `SCHED_IDLE` thread preempted there keeps the lock held for as
//! long as it waits for a CPU, which on a saturated host can be long, and the threads that need
//! it wait with it: any `mmap`/`munmap` (a new VM's RAM and `kvm_run`), and, while it is held
//! for writing, page faults that take the lock (a vCPU's first touch of a guest RAM page is
//! one, in the kernel on the vCPU thread). `mmap_lock` has no priority inheritance. On a host
//! with a CPU to spare this does not show; on a saturated one, weigh it, or drop machines on
//! the caller's thread instead.

use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::error::Error;
use crate::machine::Machine;
use crate::sys::thread;

/// Things waiting for the reaper before [`Reaper::reap`] blocks.
pub const DEFAULT_QUEUE: usize = 16;

/// Something the reaper can drop: anything that may move to another thread.
type Garbage = Box<dyn Send>;

/// A thread that drops what it is handed, in order.
#[derive(Debug)]
pub struct Reaper {
    queue: Option<SyncSender<Garbage>>,
    thread: Option<JoinHandle<()>>,
}

impl Reaper {
    /// Starts the reaper thread with a queue of [`DEFAULT_QUEUE`].
    pub fn new() -> Result<Reaper, Error> {
        Reaper::with_queue(DEFAULT_QUEUE)
    }

    /// Starts the reaper thread; [`Reaper::reap`] blocks while `queue` items are waiting.
    pub fn with_queue(queue: usize) -> Result<Reaper, Error> {
        let (sender, receiver) = sync_channel::<Garbage>(queue);
        let thread = std::thread::Builder::new()
            .name("rawkvm-reaper".into())
            .spawn(move || {
                // Best effort: at normal priority the reaper still works, only less politely.
                let _ = thread::make_current_thread_idle();
                // Each item is dropped as it arrives; the loop ends when every sender is gone.
                for garbage in receiver {
                    drop(garbage);
                }
            })
            .map_err(Error::Reaper)?;
        Ok(Reaper {
            queue: Some(sender),
            thread: Some(thread),
        })
    }

    /// Hands `value` to the reaper thread, which drops it. Blocks while the queue is full; if
    /// the thread is gone (it never is unless a `Drop` panicked), drops `value` here.
    pub fn reap<T: Send + 'static>(&self, value: T) {
        // `queue` is `None` only inside `finish`, after which no `&self` remains.
        if let Some(queue) = &self.queue {
            // A send fails only if the thread has ended; the value comes back in the error
            // and is dropped here.
            let _ = queue.send(Box::new(value));
        }
    }

    /// Waits until everything handed over so far has been dropped, and ends the thread.
    pub fn join(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        // Closing the queue ends the thread's loop once it has drained it.
        self.queue = None;
        if let Some(thread) = self.thread.take() {
            // A panic on that thread has already been reported; nothing is left to release.
            let _ = thread.join();
        }
    }
}

impl Drop for Reaper {
    /// Joins the thread: nothing handed over outlives the reaper.
    fn drop(&mut self) {
        self.finish();
    }
}

impl Machine {
    /// Drops this machine on `reaper`'s thread: the vCPU mappings and fds, the VM fd and the
    /// guest RAM are released there, while the caller goes on.
    pub fn drop_in_background(self, reaper: &Reaper) {
        reaper.reap(self);
    }
}
