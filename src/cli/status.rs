//! What the command line adds to the library's errors: usage errors, process exit statuses,
//! and advice that names flags.
//!
//! The library classifies every error by [`ErrorKind`] and words its advice with
//! [`SettingNames`]; this module maps kinds to the documented statuses and passes the flag
//! names, so `rawkvm run --mem 0` says "raise --mem" where a library user reads
//! "raise MachineConfig::mem_size".

use std::io::Write;

use rawkvm::error::{Error, ErrorKind, SettingNames};

/// The guest halted normally.
pub const HALTED: i32 = 0;
/// Usage or configuration error: a bad flag, a bad size.
pub const USAGE: i32 = 2;
/// KVM is unavailable or unusable: missing, permission, not a KVM device, API version,
/// capability.
pub const KVM_UNAVAILABLE: i32 = 3;
/// The guest image is missing, empty, too large or not a regular file.
pub const IMAGE: i32 = 4;
/// A resource or setup step failed (mmap, memory slot, vCPU creation, registers, threads),
/// `KVM_RUN` failed, or output could not be written (other than `EPIPE`).
pub const SETUP: i32 = 5;
/// The guest faulted: triple fault, failed entry, internal error, undecodable exit.
pub const GUEST_FAULT: i32 = 6;
/// The guest was still running at the deadline.
pub const TIMEOUT: i32 = 7;
/// The guest reported failure through the exit device (a code other than 0).
pub const GUEST_FAILURE: i32 = 8;
/// The reader of the console, of the trace or of rawkvm's own output went away (`EPIPE`):
/// 128 + `SIGPIPE`, what a shell reports for a program that `SIGPIPE` ended.
pub const BROKEN_PIPE: i32 = 128 + 13;

/// A run stopped by signal `signal` (`SIGINT`, `SIGTERM`, ...): 128 + its number, as a
/// shell reports a program the signal ended.
pub const fn signal(signal: i32) -> i32 {
    128 + signal
}

/// The flags that set what the library's advice names.
pub const FLAG_NAMES: SettingNames = SettingNames {
    memory: "--mem",
    load_address: "--load-addr",
    vcpus: "--vcpus",
    kvm_device: "--kvm-device PATH",
    tsc_khz: "--tsc-khz",
};

/// Everything a command can fail with: a command line that makes no sense, or a library
/// error.
#[derive(Debug)]
pub enum CliError {
    /// A bad flag, value or argument; the message says which.
    Usage(String),
    /// What the library reported.
    Vmm(Error),
}

/// Any library error, or one of its parts (an [`rawkvm::error::ImageError`], ...).
impl<E: Into<Error>> From<E> for CliError {
    fn from(error: E) -> CliError {
        CliError::Vmm(error.into())
    }
}

/// The process exit status of an error kind (the table in `--help` and the README).
pub fn of_kind(kind: ErrorKind) -> i32 {
    match kind {
        ErrorKind::KvmUnavailable => KVM_UNAVAILABLE,
        ErrorKind::Config => USAGE,
        ErrorKind::Image => IMAGE,
        ErrorKind::Setup => SETUP,
        ErrorKind::OutputClosed => BROKEN_PIPE,
        ErrorKind::GuestFault => GUEST_FAULT,
        ErrorKind::GuestFailure => GUEST_FAILURE,
        ErrorKind::Timeout => TIMEOUT,
        ErrorKind::Interrupted(number) => signal(number),
    }
}

impl CliError {
    /// The process exit status.
    pub fn exit_status(&self) -> i32 {
        match self {
            CliError::Usage(_) => USAGE,
            CliError::Vmm(error) => of_kind(error.kind()),
        }
    }
}

/// Prints `error` on stderr, advice naming flags, and returns its exit status.
pub fn report(error: &CliError) -> i32 {
    // If stderr itself is gone there is nobody left to tell.
    let _ = match error {
        CliError::Usage(message) => {
            writeln!(
                std::io::stderr(),
                "rawkvm: error: {message}\n(see rawkvm --help)"
            )
        }
        CliError::Vmm(error) => {
            // A value the user typed was wrong: point at the help, as for a bad flag.
            let help = if matches!(error, Error::Config(_)) {
                "\n(see rawkvm --help)"
            } else {
                ""
            };
            writeln!(
                std::io::stderr(),
                "rawkvm: error: {}{help}",
                error.display_with(&FLAG_NAMES)
            )
        }
    };
    error.exit_status()
}
