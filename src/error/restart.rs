//! Why a machine cannot be restarted in place (`crate::machine::restart`).

use std::fmt;

use super::{Error, ErrorKind};

/// Why a machine cannot be restarted, or a restore could not be done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartError {
    /// A writable slot does not log dirty pages, so its changes cannot be found cheaply.
    NotLogged {
        /// The slot.
        slot: u32,
    },
    /// The machine has no writable slot that logs dirty pages.
    NothingLogged,
    /// `restore` was given other vCPUs than `capture` (count or ids differ).
    OtherVcpus,
    /// `KVM_GET_DIRTY_LOG` was refused before the call: unknown slot, bitmap too small.
    DirtyBitmap {
        /// The slot.
        slot: u32,
    },
    /// The vCPU's last run ended in the middle of an instruction (a `rep ins` still wanting
    /// I/O, say), and re-entering it with `immediate_exit` did not finish it.
    PendingOperation {
        /// The vCPU.
        vcpu: u32,
    },
}

impl RestartError {
    /// Configuration mistakes are [`ErrorKind::Config`], the rest set-up failures.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RestartError::NotLogged { .. } | RestartError::NothingLogged => ErrorKind::Config,
            RestartError::OtherVcpus
            | RestartError::DirtyBitmap { .. }
            | RestartError::PendingOperation { .. } => ErrorKind::Setup,
        }
    }
}

impl fmt::Display for RestartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartError::NotLogged { slot } => write!(
                f,
                "cannot restart in place: slot {slot} is writable but was not created with \
                 KVM_MEM_LOG_DIRTY_PAGES (MachineConfig::restartable)"
            ),
            RestartError::NothingLogged => f.write_str(
                "cannot restart in place: no memory slot logs dirty pages \
                 (MachineConfig::restartable)",
            ),
            RestartError::OtherVcpus => {
                f.write_str("restore was given other vCPUs than the restart point captured")
            }
            RestartError::DirtyBitmap { slot } => write!(
                f,
                "KVM_GET_DIRTY_LOG for slot {slot} refused: unknown slot or bitmap too small"
            ),
            RestartError::PendingOperation { vcpu } => write!(
                f,
                "cannot restart in place: vCPU {vcpu} stopped in the middle of an instruction \
                 that KVM_RUN with immediate_exit did not finish"
            ),
        }
    }
}

impl std::error::Error for RestartError {}

impl From<RestartError> for Error {
    fn from(error: RestartError) -> Error {
        Error::Restart(error)
    }
}
