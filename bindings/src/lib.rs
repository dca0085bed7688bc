//! The Linux KVM user-space ABI, written by hand as Rust data: `#[repr(C)]` types, constants and
//! ioctl request codes with the kernel's own names (`kvm_regs`, `KVM_EXIT_IO`, `KVM_RUN`), so
//! that any line here can be found in `<linux/kvm.h>` or `<asm/kvm.h>` and the other way round.
//!
//! The crate is data only: no `unsafe`, no system calls, no allocation (`#![no_std]`). The
//! `rawkvm` crate makes the calls.
//!
//! # Three levels of file descriptors
//!
//! KVM is driven through `ioctl(2)` on three kinds of fd, each made by the one above it:
//!
//! | level  | fd                | made by                         | ioctls, for example           |
//! |--------|-------------------|---------------------------------|-------------------------------|
//! | system | `/dev/kvm`        | `open("/dev/kvm", O_RDWR)`      | `KVM_CHECK_EXTENSION`         |
//! | VM     | anon `kvm-vm`     | `ioctl(kvm, KVM_CREATE_VM, 0)`  | `KVM_SET_USER_MEMORY_REGION`  |
//! | vCPU   | anon `kvm-vcpu:N` | `ioctl(vm, KVM_CREATE_VCPU, N)` | `KVM_RUN`, `KVM_GET_REGS`     |
//!
//! A vCPU fd is also mapped: `mmap(vcpu, KVM_GET_VCPU_MMAP_SIZE bytes)` gives `struct kvm_run` at
//! page 0, where each `KVM_RUN` leaves its exit reason and data, then (x86) the port-I/O data page
//! and the coalesced-MMIO ring. [`x86_64::IOCTLS`] lists every request here with its fd level,
//! its `_IO*` direction, its argument size and the capability it needs.
//!
//! # Reading a struct here against the header
//!
//! Each struct is declared once, with the header's numbers beside each field:
//!
//! ```text
//! abi! {
//!     pub struct kvm_run_exit_io in "io" (size 16, align 8) {
//!         pub direction: u8 => (0, "__u8"),
//!         pub size: u8 => (1, "__u8"),
//!         pub port: u16 => (2, "__u16"),
//!         pub count: u32 => (4, "__u32"),
//!         pub data_offset: u64 => (8, "__u64"),
//!     }
//! }
//! ```
//!
//! - Names are the kernel's. A C member named like a Rust keyword gets a trailing `_`
//!   (`type` is `type_`).
//! - Structs the kernel leaves anonymous get the name of the path to them:
//!   `kvm_run_exit_io` is the `io` member of `kvm_run`'s exit union, `kvm_run_exit_system_event_u`
//!   the anonymous union inside `system_event`. `in "io"` records the C designator.
//! - A C anonymous union inside a struct is a field named `u` (C reaches its members directly:
//!   `system_event.data` is `system_event.u.data` here).
//! - A user-space pointer inside a struct (`kvm_dirty_log.dirty_bitmap`) is a `u64`.
//! - A struct ending in a flexible array member (`kvm_msrs`, `kvm_cpuid2`) is its fixed header;
//!   the entries follow it in the caller's buffer.
//! - Every type implements [`Zeroed`] and `Default` (all bytes zero).
//!
//! # What the assertions prove
//!
//! For every struct and union, the compiler checks that `size_of`, `align_of` and the offset of
//! every field equal the numbers written in its declaration; a wrong field type or order does not
//! compile. The size is checked with `static_assertions::assert_eq_size!` against `[u8; SIZE]`
//! (the error names the type and both sizes), the alignment and every `memoffset::offset_of!`
//! with a `const` assertion whose message names the struct and field. Each type's `LAYOUT` (collected in [`x86_64::STRUCT_LAYOUTS`]) is computed with
//! `offset_of!` and `size_of`, so it describes the types as compiled.
//!
//! The tests then prove the numbers against the kernel: they write a C file from
//! `STRUCT_LAYOUTS`, `IOCTLS` and the constant tables, compile it *to assembly only* (the
//! kernel's asm-offsets technique: every number becomes an immediate in an `.ascii` directive,
//! nothing is run) against `<linux/kvm.h>`, and compare every `sizeof`, `_Alignof`, `offsetof`,
//! member size, request code and constant. `tests/kernel_headers.rs` does it for the host with
//! the host compiler; `tests/cross_headers.rs` for all five architectures with each one's cross
//! compiler and headers (Debian's `gcc-<triple>` and `linux-libc-dev-<arch>-cross`). The headers
//! can be older than the kernel this crate follows (Linux 6.18): members and constants they lack
//! are reported as checked by static assertion only.
//!
//! # Versions
//!
//! The definitions are Linux 6.18's. `KVM_EXIT_ARM_SEA` (41), its `arm_sea` exit member and
//! capabilities 245-246 come from Linux 6.19 and are marked so. A running kernel may be newer than
//! any of this: treat exit reasons and capabilities missing from the tables as unknown
//! ([`exit_reason_name`] returns `None`), never as errors in the kernel.
//!
//! # Layout of the crate
//!
//! - [`common`]: what every architecture shares (exit reasons, capabilities, the exit-data
//!   members of `kvm_run`, memory slots, dirty logs, coalesced MMIO, statistics).
//! - [`x86_64`], [`aarch64`], [`riscv64`], [`s390x`], [`powerpc64`] (little-endian): each
//!   architecture's `<asm/kvm.h>`, its build of `kvm_run`, its ioctls with request codes in its
//!   own encoding. Architecture modules compile on every host, so layouts of another
//!   architecture can be checked and printed anywhere; the host's one is re-exported at the root
//!   and as `arch`. [`ARCHES`] lists them with their encoding, byte order and page sizes.
//! - [`ioctls`](mod@ioctls): request-code types, the common requests (the host's numbers built by nix's
//!   `request_code_*!`), [`IoctlEncoding`] (generic and powerpc packing, as `const fn`s, for
//!   the other architectures' numbers), the [`IoctlInfo`] table type.
//! - [`layout`]: [`StructLayout`] and [`FieldLayout`], the tables tools print.
//!
//! ```
//! use rawkvm_bindings::{KVM_EXIT_IO, STRUCT_LAYOUTS, exit_reason_name, kvm_run};
//!
//! assert_eq!(exit_reason_name(KVM_EXIT_IO), Some("KVM_EXIT_IO"));
//! assert_eq!(STRUCT_LAYOUTS[0].name, "kvm_run");
//! let port = kvm_run::LAYOUT.field("io.port").unwrap();
//! assert_eq!((port.offset, port.size, port.c_type), (34, 2, "__u16"));
//! ```

#![no_std]
#![forbid(unsafe_code)]
// The kernel's names: `kvm_regs`, not `KvmRegs`.
#![allow(non_camel_case_types)]
// Constants are written as the header writes them: `1 << 0`, `0x0 << KVM_STATS_TYPE_SHIFT`.
#![allow(clippy::identity_op)]

pub mod aarch64;
pub mod arches;
pub mod common;
pub mod ioctls;
pub mod layout;
mod names;
pub mod powerpc64;
pub mod riscv64;
pub mod s390x;
pub mod x86_64;

pub use arches::{ARCHES, ArchAbi, Endian, HOST_ARCH, arch_abi};
pub use common::*;
pub use ioctls::*;
pub use layout::{FieldLayout, StructLayout, Zeroed};
pub use names::name_in;

/// The host architecture's definitions (`kvm_run`, registers, its ioctls, `STRUCT_LAYOUTS`,
/// `IOCTLS`), under one name whatever the host is.
pub mod arch {
    #[cfg(target_arch = "aarch64")]
    pub use crate::aarch64::*;
    #[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
    pub use crate::powerpc64::*;
    #[cfg(target_arch = "riscv64")]
    pub use crate::riscv64::*;
    #[cfg(target_arch = "s390x")]
    pub use crate::s390x::*;
    #[cfg(target_arch = "x86_64")]
    pub use crate::x86_64::*;
}

#[cfg(target_arch = "aarch64")]
pub use aarch64::*;
#[cfg(all(target_arch = "powerpc64", target_endian = "little"))]
pub use powerpc64::*;
#[cfg(target_arch = "riscv64")]
pub use riscv64::*;
#[cfg(target_arch = "s390x")]
pub use s390x::*;
#[cfg(target_arch = "x86_64")]
pub use x86_64::*;
