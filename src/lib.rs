//! rawkvm: a virtual machine monitor that drives Linux KVM through `open`, `ioctl` and `mmap`
//! on `/dev/kvm`, with nothing in between.
//!
//! # A whole run, in the order of the raw calls
//!
//! ```
//! use rawkvm::exit::{Exit, IoDirection};
//! use rawkvm::kvm::vm::MemoryRegion;
//! use rawkvm::{Kvm, MemoryRegionFlags, arch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # if !std::path::Path::new("/dev/kvm").exists() {
//! #     // Through the stderr handle, which no harness captures: the line shows in every log.
//! #     use std::io::Write;
//! #     writeln!(std::io::stderr(), "SKIPPED: /dev/kvm unavailable (the lib.rs walkthrough)")?;
//! #     return Ok(());
//! # }
//! // 1. open("/dev/kvm", O_RDWR | O_CLOEXEC); KVM_GET_API_VERSION must say 12;
//! //    KVM_CHECK_EXTENSION for what rawkvm needs; KVM_GET_VCPU_MMAP_SIZE.
//! let kvm = Kvm::open()?;
//!
//! // 2. ioctl(kvm, KVM_CREATE_VM, 0): a VM fd.
//! let mut vm = kvm.create_vm()?;
//!
//! // 3. mmap 64 KiB of anonymous memory and KVM_SET_USER_MEMORY_REGION it at guest
//! //    physical address 0 (slot 0).
//! let ram = MemoryRegion {
//!     slot: 0,
//!     guest_phys_addr: 0,
//!     size: 64 << 10,
//!     flags: MemoryRegionFlags::empty(),
//! };
//! vm.add_memory_region(ram)?;
//!
//! // A guest, hand-assembled: mov al, 'K' ; out 0xE9, al ; hlt
//! vm.memory().write(0x1000, &[0xB0, b'K', 0xE6, 0xE9, 0xF4])?;
//!
//! // 4. ioctl(vm, KVM_CREATE_VCPU, 0), then mmap the vCPU fd: the kvm_run region.
//! let mut vcpu = vm.create_vcpu(0)?;
//!
//! // 5. KVM_GET_SREGS / KVM_SET_SREGS / KVM_SET_REGS: real mode, CS:IP = 0000:1000.
//! arch::reset_vcpu(&vcpu, &arch::Entry::default(), 0)?;
//!
//! // 6. ioctl(vcpu, KVM_RUN, 0). The exit is read in place from kvm_run: here
//! //    exit_reason = KVM_EXIT_IO, and io.data_offset points at the byte the guest wrote.
//! match vcpu.run()? {
//!     Exit::Io(io) => {
//!         assert_eq!((io.direction, io.port, io.size, io.count), (IoDirection::Out, 0xE9, 1, 1));
//!         assert_eq!(io.data, b"K");
//!     }
//!     other => panic!("expected an OUT, got {other:?}"),
//! }
//!
//! // 7. KVM_RUN again: the guest executes hlt, and with no in-kernel interrupt controller
//! //    that is KVM_EXIT_HLT.
//! assert!(matches!(vcpu.run()?, Exit::Hlt));
//!
//! // 8. Dropping unmaps kvm_run, closes the vCPU fd, closes the VM fd, unmaps RAM.
//! # Ok(())
//! # }
//! ```
//!
//! # The floor plan
//!
//! Each module imports only from the rows above it (`tests/layering.rs` checks it; the
//! reasons are in `docs/ARCHITECTURE.md`):
//!
//! | module | what it holds |
//! |---|---|
//! | `sys` (crate-private) | the only `unsafe`: every `ioctl(2)`, `mmap`, the `kvm_run` page, the kick signal |
//! | [`units`] | sizes and durations, parsed and printed |
//! | [`exit`] | the total decoder of the `kvm_run` page: every `KVM_EXIT_*`, in place |
//! | [`error`] | typed errors, each of an [`error::ErrorKind`] |
//! | [`kvm`] | the three fd levels, [`Kvm`] → [`Vm`] → [`Vcpu`], and guest memory |
//! | [`arch`] | per-architecture vCPU set-up (`arch::x86_64`: registers, sync regs) |
//! | [`devices`] | the loop↔device contract ([`devices::bus`]) and the devices: consoles, COM1, exit device, the coalesced ring |
//! | [`run_loop`] | `KVM_RUN`, decode, dispatch, repeat; the [`run_loop::Observer`] trait |
//! | [`trace`] | observers: `--trace`, `--explain`, `--stats`, the flight recorder, the kernel's counters |
//! | [`machine`] | a whole machine: RAM, image, vCPUs; a thread per vCPU with deadlines and stops; restart in place; the reaper; the embedded guests |
//! | `fuzzing` (feature `fuzzing`) | the harnesses the fuzz targets and the corpus replay share |
//!
//! The command line (`src/cli/`) is the binary's, not the library's: process exit statuses and
//! flag names live there, and the library never mentions them.
//!
//! # Doing less
//!
//! An exit costs what the kernel makes it cost; a VMM can only avoid exits and avoid rebuilding
//! what it has. `machine::restart` (x86) runs a guest again on the same VM, restoring only the
//! pages the dirty log reports and the registers (in place, through
//! `arch::x86_64::sync_regs`); [`devices::coalesced`] lets the kernel batch writes to
//! write-only ranges like the debug console; [`machine::reaper`] takes VM teardown off the
//! caller's thread. `rawkvm bench suite` measures each against a C baseline.
//!
//! # Where the `unsafe` is
//!
//! `unsafe_code` is denied for the crate; the files of the crate-private `sys` module allow
//! it, and only they talk to the kernel or to raw memory: `sys/ioctl.rs` (every `ioctl(2)`),
//! `sys/memory.rs` (`mmap`, `munmap`, copies into guest RAM), `sys/run_page.rs` (the
//! `kvm_run` page) and `sys/thread.rs` (the signal that kicks a vCPU thread out of
//! `KVM_RUN`, signal dispositions, and helper threads' scheduling class). Everything else is
//! safe Rust over them; `UNSAFE.md` lists every block.
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod arch;
#[cfg(target_arch = "x86_64")]
pub mod debug;
pub mod devices;
pub mod error;
pub mod exit;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod kvm;
pub mod machine;
pub mod run_loop;
#[cfg(target_arch = "x86_64")]
pub mod snapshot;
pub(crate) mod sys;
pub mod trace;
pub mod units;

pub use error::Error;
pub use exit::Exit;
pub use kvm::{Kvm, MemoryRegion, RunError, Vcpu, Vm};
pub use rawkvm_bindings as bindings;
pub use rawkvm_bindings::MemoryRegionFlags;
