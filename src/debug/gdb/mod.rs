//! `rawkvm run --gdb ADDR`: a GDB remote serial protocol stub, written by hand.
//!
//! ```text
//! socket/bind/listen(ADDR)             TCP 127.0.0.1:PORT (port 0: the kernel picks) or a
//!                                      Unix socket path
//! accept                               one gdb; the guest waits before its first instruction
//! loop: read a packet, answer it       registers (KVM_GET/SET_REGS, _SREGS), memory (the
//!                                      RAM mapping), breakpoints (kept until resuming)
//!   c:  KVM_SET_GUEST_DEBUG(USE_HW_BP, DR0-3, DR7), KVM_RUN ... until KVM_EXIT_DEBUG/HLT
//!   s:  KVM_SET_GUEST_DEBUG(SINGLESTEP), KVM_RUN ... until KVM_EXIT_DEBUG
//!   Ctrl-C (0x03) while running: the session's reader thread kicks the vCPU (StopHandle)
//! ```
//!
//! What this backend (kvm_pvm) cannot do shapes the stub (see HOST-NOTES.md, "Debugging on
//! kvm_pvm"): `int3` is not intercepted, so `Z0` takes a debug register like `Z1`; a hardware
//! breakpoint fires again at the same RIP however often the guest is resumed, so resuming
//! from a breakpoint first single-steps with the breakpoints disarmed; data watchpoints never
//! fire, so `Z2`-`Z4` are refused; and a single-stepped `hlt` completes without halting, so
//! resuming at a `hlt` runs it undebugged, and the guest halts as it would without gdb.
//!
//! The stub runs on the thread that runs the vCPU, only while it is stopped; one reader thread
//! per session passes gdb's bytes on and watches for Ctrl-C while the guest runs.

pub mod commands;
pub mod packet;
pub mod session;
pub mod target_xml;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::Error;

/// Where the stub listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GdbAddress {
    /// `HOST:PORT` (port 0: any free port; the listener says which).
    Tcp(SocketAddr),
    /// A path for a Unix socket (anything with a `/`).
    Unix(PathBuf),
}

impl GdbAddress {
    /// Parses `127.0.0.1:1234`, `[::1]:1234` or a path containing `/` (`./gdb.sock`).
    pub fn parse(text: &str) -> Result<GdbAddress, String> {
        if let Ok(addr) = text.parse::<SocketAddr>() {
            return Ok(GdbAddress::Tcp(addr));
        }
        if text.contains('/') {
            return Ok(GdbAddress::Unix(PathBuf::from(text)));
        }
        Err(format!(
            "{text:?} is neither IP:PORT (127.0.0.1:1234; port 0 picks a free one) nor a Unix \
             socket path (write ./{text} for one in this directory)"
        ))
    }
}

/// A bound, listening socket for one gdb.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix socket, removed again when the listener is dropped.
    Unix(UnixListener, PathBuf),
}

impl Listener {
    /// `socket`, `bind`, `listen`. A Unix socket path that exists is refused
    /// (`EADDRINUSE`), not replaced.
    pub fn bind(address: &GdbAddress) -> io::Result<Listener> {
        match address {
            GdbAddress::Tcp(addr) => TcpListener::bind(addr).map(Listener::Tcp),
            GdbAddress::Unix(path) => {
                UnixListener::bind(path).map(|listener| Listener::Unix(listener, path.clone()))
            }
        }
    }

    /// Where gdb should connect: `127.0.0.1:41234` (the real port when 0 was asked for) or
    /// the socket's path.
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(listener) => listener
                .local_addr()
                .map_or_else(|_| "?".to_string(), |addr| addr.to_string()),
            Listener::Unix(_, path) => path.display().to_string(),
        }
    }

    /// Waits for gdb to connect.
    pub fn accept(&self) -> Result<Connection, Error> {
        let accepted = match self {
            Listener::Tcp(listener) => listener.accept().map(|(stream, _)| {
                // Packets are small and interactive: send each at once.
                let _ = stream.set_nodelay(true);
                Connection::Tcp(stream)
            }),
            Listener::Unix(listener, _) => listener
                .accept()
                .map(|(stream, _)| Connection::Unix(stream)),
        };
        accepted.map_err(|error| connection_error(&error))
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, path) = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The connection to gdb.
#[derive(Debug)]
pub enum Connection {
    /// TCP.
    Tcp(TcpStream),
    /// A Unix socket.
    Unix(UnixStream),
}

impl Connection {
    /// A second handle on the same socket (the session's reader thread reads through it).
    pub fn try_clone(&self) -> io::Result<Connection> {
        Ok(match self {
            Connection::Tcp(stream) => Connection::Tcp(stream.try_clone()?),
            Connection::Unix(stream) => Connection::Unix(stream.try_clone()?),
        })
    }

    /// `SO_RCVTIMEO`: how long a read waits (for the whole socket, every handle).
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.set_read_timeout(timeout),
            Connection::Unix(stream) => stream.set_read_timeout(timeout),
        }
    }

    /// `shutdown(SHUT_RDWR)`: a blocked read on any handle returns.
    pub fn shutdown(&self) {
        let _ = match self {
            Connection::Tcp(stream) => stream.shutdown(Shutdown::Both),
            Connection::Unix(stream) => stream.shutdown(Shutdown::Both),
        };
    }
}

impl Read for Connection {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(stream) => stream.read(buf),
            Connection::Unix(stream) => stream.read(buf),
        }
    }
}

impl Write for Connection {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Connection::Tcp(stream) => stream.write(buf),
            Connection::Unix(stream) => stream.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Connection::Tcp(stream) => stream.flush(),
            Connection::Unix(stream) => stream.flush(),
        }
    }
}

/// An I/O failure on the gdb connection (status 5).
fn connection_error(error: &io::Error) -> Error {
    Error::Output {
        target: "the gdb connection".to_string(),
        error: io::Error::new(error.kind(), error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_tcp_or_unix_paths() {
        assert_eq!(
            GdbAddress::parse("127.0.0.1:1234"),
            Ok(GdbAddress::Tcp("127.0.0.1:1234".parse().unwrap()))
        );
        assert_eq!(
            GdbAddress::parse("/tmp/x.sock"),
            Ok(GdbAddress::Unix("/tmp/x.sock".into()))
        );
        let error = GdbAddress::parse("gdb.sock").unwrap_err();
        assert!(error.contains("./gdb.sock"), "{error}");
        assert!(GdbAddress::parse("localhost:1234").is_err());
    }
}
