//! Parts of error messages: the vCPUs a stopped run leaves behind ("vCPU 0 stopped at RIP
//! 0x1000"), register values the kernel refused ("CR0=0x60000030, CR4=0x0"), signal names.

use std::fmt;

/// What messages call the instruction pointer.
#[cfg(target_arch = "x86_64")]
pub const IP_NAME: &str = "RIP";
/// What messages call the instruction pointer.
#[cfg(not(target_arch = "x86_64"))]
pub const IP_NAME: &str = "PC";

/// A vCPU that was still running when a run was stopped, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoppedVcpu {
    /// The vCPU id.
    pub id: u32,
    /// Its instruction pointer (`RIP` on x86) after it stopped, if it could be read.
    pub instruction_pointer: Option<u64>,
}

impl fmt::Display for StoppedVcpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "vCPU {} stopped at {} ", self.id, IP_NAME)?;
        match self.instruction_pointer {
            Some(ip) => write!(f, "{ip:#x}"),
            None => f.write_str("unknown"),
        }
    }
}

/// `" (vCPU 0 stopped at RIP 0x1000, vCPU 1 ...)"`, at most [`LISTED_VCPUS`] of them.
pub(super) struct StoppedList<'a>(pub(super) &'a [StoppedVcpu]);

/// How many stopped vCPUs a message lists by name before summing up the rest.
pub const LISTED_VCPUS: usize = 8;

impl fmt::Display for StoppedList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return Ok(());
        }
        f.write_str(" (")?;
        for (i, vcpu) in self.0.iter().take(LISTED_VCPUS).enumerate() {
            write!(f, "{}{vcpu}", if i == 0 { "" } else { ", " })?;
        }
        if let Some(more) = self.0.len().checked_sub(LISTED_VCPUS).filter(|&n| n > 0) {
            write!(f, ", and {more} more")?;
        }
        f.write_str(")")
    }
}

/// A signal's name (`SIGINT`), or its number when it has none.
pub(super) fn signal_name(signal: i32) -> String {
    nix::sys::signal::Signal::try_from(signal)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {signal}"))
}

/// `CR0=0x60000030, CR4=0x0, ...`: register values by name.
pub(super) struct RejectedValues<'a>(pub(super) &'a [(&'static str, u64)]);

impl fmt::Display for RejectedValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.0.iter().enumerate() {
            write!(f, "{}{name}={value:#x}", if i == 0 { "" } else { ", " })?;
        }
        Ok(())
    }
}
