//! The process exit statuses the README documents, as the tests expect them (the CLI's own
//! table is in `src/cli/status.rs`; these numbers are the contract, so they are written out).

/// Usage or configuration error.
pub const USAGE: i32 = 2;
/// KVM unavailable or unusable.
pub const KVM_UNAVAILABLE: i32 = 3;
/// Guest image error.
pub const IMAGE: i32 = 4;
/// Resource or setup failure.
pub const SETUP: i32 = 5;
/// Guest fault.
pub const GUEST_FAULT: i32 = 6;
/// Timeout.
pub const TIMEOUT: i32 = 7;
/// The guest reported failure through the exit device.
pub const GUEST_FAILURE: i32 = 8;
/// stdout's reader went away (128 + SIGPIPE).
pub const BROKEN_PIPE: i32 = 141;
