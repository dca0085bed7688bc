//! Standard output as the guest's console sees it: `write(2)` straight to fd 1 (the console
//! already buffers), and a reader that stops reading never holds up a stopping run.
//!
//! ```text
//! poll({ fd 1, POLLOUT }, 100 ms)   until fd 1 can take bytes; on each timeout or EINTR,
//!                                   give up if the run is stopping
//! write(1, bytes, len)              EPIPE when the reader has gone (`rawkvm | head -c1`)
//! ```
//!
//! A slow reader slows the guest down (the console holds at most 4 KiB, so memory stays
//! bounded); a reader that has gone away gives `EPIPE` (Rust ignores `SIGPIPE`), which stops
//! the run with status 141; and once the run is stopping (deadline, signal, fault) a writer
//! waiting for the reader gives up within 100 ms instead of blocking the stop.

use std::io::{self, Write};
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use rawkvm::machine::supervisor::RunControl;

/// How long one wait for the reader lasts before the stop request is checked again.
const WAIT_SLICE_MS: u16 = 100;

/// The process's standard output, for [`rawkvm::devices::Console`].
#[derive(Debug)]
pub struct ConsoleOut {
    control: RunControl,
}

impl ConsoleOut {
    /// Standard output, giving up on a stalled reader once `control` says the run is stopping.
    pub fn new(control: RunControl) -> ConsoleOut {
        ConsoleOut { control }
    }

    fn wait_until_writable(&self, stdout: &io::Stdout) -> io::Result<()> {
        loop {
            let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLOUT)];
            match poll(&mut fds, PollTimeout::from(WAIT_SLICE_MS)) {
                Ok(0) | Err(Errno::EINTR) => {
                    if self.control.is_stopping() {
                        return Err(io::Error::other(
                            "the run stopped while the console's reader was not reading",
                        ));
                    }
                }
                // Writable, or an error condition (POLLERR, POLLHUP) that write() will report.
                Ok(_) => return Ok(()),
                Err(errno) => return Err(errno.into()),
            }
        }
    }
}

impl Write for ConsoleOut {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let stdout = io::stdout();
        self.wait_until_writable(&stdout)?;
        // EINTR comes back as ErrorKind::Interrupted, which write_all retries, through the
        // wait above.
        nix::unistd::write(stdout.as_fd(), bytes).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
