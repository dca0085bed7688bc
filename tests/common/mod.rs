//! Helpers shared by the integration tests: open KVM or skip loudly, build a guest's machine,
//! record exits, check how the built `rawkvm` binary failed (running it is `process`'s job),
//! scratch directories that clean up after themselves.
#![allow(dead_code)]

pub mod arch;
#[cfg(target_arch = "x86_64")]
pub mod filled;
pub mod json;
pub mod process;
#[cfg(target_arch = "x86_64")]
pub mod snapshot;
pub mod status;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicU32, Ordering};

use rawkvm::Kvm;
use rawkvm::devices::bus::Claim;
use rawkvm::exit::{Exit, IoDirection};
use rawkvm::machine::guests;
use rawkvm::machine::image::Image;
use rawkvm::machine::{Machine, MachineConfig};
use rawkvm::run_loop::Observer;

/// Says loudly that a test, or a part of one, did not run: `SKIPPED: <reason>`. Written
/// through the stderr handle, which the test harness does not capture (it captures only
/// `print!`/`eprint!`), so the line shows in every log, passing tests included.
pub fn skip(reason: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {reason}");
}

/// Whether `/dev/kvm` exists; if not, says `SKIPPED: /dev/kvm unavailable (<test>)`.
pub fn kvm_present(test: &str) -> bool {
    let present = Path::new("/dev/kvm").exists();
    if !present {
        skip(format_args!("/dev/kvm unavailable ({test})"));
    }
    present
}

/// Opens `/dev/kvm`, or says `SKIPPED: /dev/kvm unavailable` and returns `None` when the
/// device does not exist. Any other failure to open it fails the test: a host with a broken
/// KVM must not pass silently.
pub fn kvm_or_skip(test: &str) -> Option<Kvm> {
    kvm_present(test).then(|| Kvm::open().expect("/dev/kvm exists but cannot be used"))
}

/// A memory slot of fresh RAM: `size` bytes at `guest_phys_addr`, no flags.
pub fn region(slot: u32, guest_phys_addr: u64, size: u64) -> rawkvm::kvm::vm::MemoryRegion {
    rawkvm::kvm::vm::MemoryRegion {
        slot,
        guest_phys_addr,
        size,
        flags: rawkvm::MemoryRegionFlags::empty(),
    }
}

/// Which KVM backend this host runs: `kvm_intel`, `kvm_amd`, `kvm_pvm` or `unknown`.
pub fn backend() -> &'static str {
    rawkvm::exit::hardware::kvm_backend().unwrap_or("unknown")
}

/// The 64 bytes `console_loop` and `console_burst` print over and over.
pub const CONSOLE_PATTERN: &[u8; 64] =
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-\n";

/// Where each instruction of `spin_out` starts (`objdump -D -b binary -m i8086` of its image):
/// `mov dx`, `xor ebx`, then the loop `mov al, bl`; `out dx, al`; `inc ebx`; `jmp`. A vCPU
/// stopped in it is at one of these, never between them.
pub const SPIN_OUT_INSTRUCTIONS: [u64; 6] = [0x1000, 0x1003, 0x1006, 0x1008, 0x1009, 0x100B];

/// The first `len` bytes `console_loop` (or `console_burst`) prints.
pub fn console_pattern(len: usize) -> Vec<u8> {
    CONSOLE_PATTERN.iter().copied().cycle().take(len).collect()
}

/// A machine for the embedded guest `name`: the default configuration, the guest's own
/// setup line, then `adjust` (a parameter, more vCPUs, restartable RAM, ...).
pub fn guest_machine(
    kvm: &Kvm,
    name: &str,
    adjust: impl FnOnce(&mut MachineConfig),
) -> Result<Machine, rawkvm::Error> {
    let guest = guests::find(name).unwrap_or_else(|| panic!("no embedded guest {name}"));
    let mut config = MachineConfig::default();
    config.apply_setup(guest.setup).unwrap();
    adjust(&mut config);
    Machine::new(kvm, &config, &Image::embedded(guest.name, guest.image))
}

/// A machine for the embedded guest `name` as its setup line describes it.
pub fn machine(kvm: &Kvm, name: &str) -> Machine {
    guest_machine(kvm, name, |_| {}).unwrap()
}

/// A machine for the embedded guest `name` with `param` at 0x0F00 instead of its setup's.
pub fn machine_with_param(kvm: &Kvm, name: &str, param: u32) -> Machine {
    guest_machine(kvm, name, |config| config.param = Some(param)).unwrap()
}

/// A machine for the embedded guest `name` whose RAM is dirty-logged, so it can restart.
pub fn restartable_machine(kvm: &Kvm, name: &str) -> Machine {
    guest_machine(kvm, name, |config| config.restartable = true).unwrap()
}

/// A fresh directory under the system temp dir, removed with everything in it when dropped,
/// so tests leave nothing behind in /tmp, pass or fail.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    /// `$TMPDIR/rawkvm-<name>-<pid>-<n>`: unique to this process and this call.
    pub fn new(name: &str) -> ScratchDir {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rawkvm-{name}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).expect("create a scratch directory");
        ScratchDir { path }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `file` inside the directory.
    pub fn join(&self, file: &str) -> PathBuf {
        self.path.join(file)
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// An exit, owned, for comparing whole sequences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// `KVM_EXIT_IO`.
    Io {
        direction: IoDirection,
        port: u16,
        size: u8,
        count: u32,
        data: Vec<u8>,
    },
    /// `KVM_EXIT_MMIO`.
    Mmio {
        addr: u64,
        is_write: bool,
        data: Vec<u8>,
    },
    /// `KVM_EXIT_HLT`.
    Hlt,
    /// `KVM_EXIT_SYSTEM_EVENT`.
    SystemEvent { event_type: u32, data: Vec<u64> },
    /// `KVM_EXIT_RISCV_SBI`, after rawkvm answered it.
    Sbi {
        extension_id: u64,
        function_id: u64,
        a0: u64,
        ret: [u64; 2],
    },
    /// Anything else, by reason number.
    Other(u32),
}

impl Seen {
    /// The exit, copied out of the `kvm_run` page.
    pub fn of(exit: &Exit<'_>) -> Seen {
        match exit {
            Exit::Io(io) => Seen::Io {
                direction: io.direction,
                port: io.port,
                size: io.size,
                count: io.count,
                data: io.data.to_vec(),
            },
            Exit::Mmio(mmio) => Seen::Mmio {
                addr: mmio.phys_addr,
                is_write: mmio.is_write,
                data: mmio.data.to_vec(),
            },
            Exit::Hlt => Seen::Hlt,
            Exit::SystemEvent { event_type, data } => Seen::SystemEvent {
                event_type: *event_type,
                data: data.to_vec(),
            },
            Exit::RiscvSbi(call) => Seen::Sbi {
                extension_id: call.extension_id,
                function_id: call.function_id,
                a0: call.args[0],
                ret: call.ret,
            },
            other => Seen::Other(other.reason()),
        }
    }

    /// A one-byte OUT.
    pub fn out(port: u16, byte: u8) -> Seen {
        Seen::Io {
            direction: IoDirection::Out,
            port,
            size: 1,
            count: 1,
            data: vec![byte],
        }
    }

    /// A one-byte IN that returned `byte`.
    pub fn inb(port: u16, byte: u8) -> Seen {
        Seen::Io {
            direction: IoDirection::In,
            port,
            size: 1,
            count: 1,
            data: vec![byte],
        }
    }
}

/// Records every exit the run loop sees.
#[derive(Debug, Default)]
pub struct Recorder {
    pub exits: Vec<Seen>,
}

impl Observer for Recorder {
    fn exit(&mut self, _vcpu: u32, exit: &Exit<'_>, _dispatch: Option<Claim>) {
        self.exits.push(Seen::of(exit));
    }
}

/// The value of `key` in a `key=value ...` line such as `rawkvm bench` prints.
pub fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .filter_map(|item| item.split_once('='))
        .find_map(|(k, value)| (k == key).then_some(value))
}

/// Asserts the process exited with `status`, printed nothing that looks like a panic, and
/// said `needle` on stderr.
pub fn assert_fails(output: &Output, status: i32, needle: &str) {
    use std::os::unix::process::ExitStatusExt;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(status),
        "killed by signal {:?}, core dumped {}; stdout: {}; stderr: {stderr}",
        output.status.signal(),
        output.status.core_dumped(),
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    assert!(
        stderr.contains(needle),
        "{needle:?} not in stderr: {stderr}"
    );
}
