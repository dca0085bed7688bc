//! What the portable guests (`hello`, `spin`, and on arm64/riscv64 `mmio_widths`, `shutdown`)
//! do on each architecture, so one test source (`tests/portable.rs`) checks all three: the
//! console text, the exact exit sequence of `hello`, how a normal run ends, and what the
//! instruction pointer is called in messages.

use rawkvm::run_loop::Outcome;

use super::Seen;

/// The text `hello` prints.
#[cfg(target_arch = "x86_64")]
pub const HELLO_TEXT: &[u8] = b"Hello from real mode!\n";
/// The text `hello` prints.
#[cfg(target_arch = "aarch64")]
pub const HELLO_TEXT: &[u8] = b"Hello from aarch64!\n";
/// The text `hello` prints.
#[cfg(target_arch = "riscv64")]
pub const HELLO_TEXT: &[u8] = b"Hello from riscv64!\n";

/// How a guest that ends normally ends: `hlt` on x86, powering the machine off elsewhere.
#[cfg(target_arch = "x86_64")]
pub const NORMAL_END: Outcome = Outcome::Halted;
/// How a guest that ends normally ends: `hlt` on x86, powering the machine off elsewhere.
#[cfg(not(target_arch = "x86_64"))]
pub const NORMAL_END: Outcome = Outcome::Finished(0);

/// The exit a guest that ends normally ends with.
pub fn normal_end_exit() -> Seen {
    if cfg!(target_arch = "x86_64") {
        Seen::Hlt
    } else {
        power_off()
    }
}

/// `KVM_EXIT_SYSTEM_EVENT` type `KVM_SYSTEM_EVENT_SHUTDOWN`, data `[0]`: what PSCI
/// `SYSTEM_OFF` and SBI SRST shutdown (reason 0) give.
pub fn power_off() -> Seen {
    Seen::SystemEvent {
        event_type: rawkvm::bindings::KVM_SYSTEM_EVENT_SHUTDOWN,
        data: vec![0],
    }
}

/// The exits of one byte of `hello`: the UART status read (with rawkvm's answer), then the
/// byte written to the transmit register.
pub fn hello_exits_of_byte(byte: u8) -> [Seen; 2] {
    if cfg!(target_arch = "x86_64") {
        [Seen::inb(0x3FD, 0x60), Seen::out(0x3F8, byte)]
    } else if cfg!(target_arch = "aarch64") {
        [
            Seen::Mmio {
                addr: 0x0900_0018,
                is_write: false,
                data: vec![0x90, 0, 0, 0],
            },
            Seen::Mmio {
                addr: 0x0900_0000,
                is_write: true,
                data: vec![byte],
            },
        ]
    } else {
        [
            Seen::Mmio {
                addr: 0x1000_0005,
                is_write: false,
                data: vec![0x60],
            },
            Seen::Mmio {
                addr: 0x1000_0000,
                is_write: true,
                data: vec![byte],
            },
        ]
    }
}

/// Every exit of `hello`, in order.
pub fn hello_exits() -> Vec<Seen> {
    let mut exits: Vec<Seen> = HELLO_TEXT
        .iter()
        .flat_map(|&byte| hello_exits_of_byte(byte))
        .collect();
    exits.push(normal_end_exit());
    exits
}

/// Where `spin` loops: its first (and only) instruction.
pub const SPIN_IP: u64 = 0x1000;
