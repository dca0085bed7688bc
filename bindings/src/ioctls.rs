//! ioctl request codes (`<linux/kvm.h>`, "ioctls for /dev/kvm fds", "... VM fds", "... vcpu fds")
//! and the table that describes them.
//!
//! An ioctl request packs four things into one number: the direction of the data (`_IO` none,
//! `_IOR` kernel to user, `_IOW` user to kernel, `_IOWR` both), the size of the argument struct,
//! the type byte [`KVMIO`] and a number. The header writes, for example,
//! `#define KVM_GET_REGS _IOR(KVMIO, 0x81, struct kvm_regs)`; here that is
//! `KVM_GET_REGS = _IOR(0x81, kvm_regs)` in an `ioctls!` list, which builds the constant with
//! nix's `request_code_read!` and the size with `size_of::<kvm_regs>()`, so a wrong struct size
//! shows up as a wrong request number.
//!
//! The four parts are packed differently on some architectures ([`IoctlEncoding`]): x86, arm64,
//! riscv64, s390 and loongarch share the generic layout; powerpc (and mips, sparc) put the
//! direction in three bits and leave 13 for the size. So there are two sources of numbers:
//!
//! - **the host's numbers come from nix.** Every request code `ioctl(2)` is called with (the
//!   common table and the host architecture's, which `src/sys/ioctl.rs` calls through) is built
//!   in const context by nix's `request_code_none!`/`read!`/`write!`/`readwrite!`, the same
//!   macros nix's own ioctl wrappers use, so the running VMM's numbers are the well-trodden
//!   ones and not this crate's arithmetic.
//! - **every other architecture's numbers come from [`IoctlEncoding::encode`]**, a `const fn`,
//!   because nix's macros only know the layout of the host they are compiled on: the tables
//!   of `rawkvm abi --arch` and the cross-header proofs need powerpc numbers on an x86 host.
//!
//! The two are tied together: a test proves the encoder gives nix's number for every request
//! of the host, and the header proofs check each architecture's table against that
//! architecture's own header. The table records direction, number and size separately, so a
//! whole table can be re-encoded for another architecture.
//!
//! The requests listed for every architecture are here; each architecture module lists its own.

#[cfg(doc)]
use crate::common::KVMIO;
use crate::common::{
    kvm_clear_dirty_log, kvm_coalesced_mmio_zone, kvm_create_device, kvm_device_attr,
    kvm_dirty_log, kvm_enable_cap, kvm_ioeventfd, kvm_irq_level, kvm_irq_routing, kvm_irqfd,
    kvm_mp_state, kvm_one_reg, kvm_reg_list, kvm_userspace_memory_region,
    kvm_userspace_memory_region2,
};

/// An ioctl request code as `ioctl(2)` takes it on this host.
pub type Request = nix::sys::ioctl::ioctl_num_type;

/// Which file descriptors accept an ioctl (api.rst section 4 gives each one's "Type").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FdLevel {
    /// `/dev/kvm`.
    System,
    /// A VM fd from `KVM_CREATE_VM`.
    Vm,
    /// A vCPU fd from `KVM_CREATE_VCPU`.
    Vcpu,
    /// `/dev/kvm` and VM fds (`KVM_CHECK_EXTENSION`).
    SystemAndVm,
    /// `/dev/kvm` and vCPU fds (x86 `KVM_GET_MSRS`: feature MSRs on the system fd).
    SystemAndVcpu,
    /// VM and vCPU fds (`KVM_ENABLE_CAP`, `KVM_GET_STATS_FD`).
    VmAndVcpu,
}

impl FdLevel {
    /// Whether `/dev/kvm` accepts the ioctl.
    pub const fn on_system(self) -> bool {
        matches!(self, Self::System | Self::SystemAndVm | Self::SystemAndVcpu)
    }

    /// Whether a VM fd accepts the ioctl.
    pub const fn on_vm(self) -> bool {
        matches!(self, Self::Vm | Self::SystemAndVm | Self::VmAndVcpu)
    }

    /// Whether a vCPU fd accepts the ioctl.
    pub const fn on_vcpu(self) -> bool {
        matches!(self, Self::Vcpu | Self::SystemAndVcpu | Self::VmAndVcpu)
    }

    /// Sort key that groups the table: system, then VM, then vCPU ioctls.
    pub(crate) const fn rank(self) -> u8 {
        match self {
            Self::System => 0,
            Self::SystemAndVm => 1,
            Self::SystemAndVcpu => 2,
            Self::Vm => 3,
            Self::VmAndVcpu => 4,
            Self::Vcpu => 5,
        }
    }
}

/// How an architecture packs an ioctl request code (`asm-generic/ioctl.h` and the
/// architecture's own `asm/ioctl.h`).
///
/// | encoding  | direction bits | `_IO` | `_IOW` | `_IOR` | `_IOWR` | size bits |
/// |-----------|----------------|-------|--------|--------|---------|-----------|
/// | generic   | 30-31          | 0     | 1      | 2      | 3       | 16-29     |
/// | powerpc   | 29-31          | 1     | 4      | 2      | 6       | 16-28     |
///
/// Both put the type byte (`KVMIO`) in bits 8-15 and the number in bits 0-7.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoctlEncoding {
    /// x86, arm64, riscv, s390, loongarch.
    Generic,
    /// powerpc and powerpc64 (also mips and sparc, which this crate does not describe).
    Powerpc,
}

impl IoctlEncoding {
    /// Number of bits of the size field.
    pub const fn size_bits(self) -> u32 {
        match self {
            Self::Generic => 14,
            Self::Powerpc => 13,
        }
    }

    /// The value the direction field holds for `direction`.
    pub const fn direction_bits(self, direction: IoctlDirection) -> u32 {
        match (self, direction) {
            (Self::Generic, IoctlDirection::None) => 0,
            (Self::Generic, IoctlDirection::Write) => 1,
            (Self::Generic, IoctlDirection::Read) => 2,
            (Self::Generic, IoctlDirection::ReadWrite) => 3,
            (Self::Powerpc, IoctlDirection::None) => 1,
            (Self::Powerpc, IoctlDirection::Read) => 2,
            (Self::Powerpc, IoctlDirection::Write) => 4,
            (Self::Powerpc, IoctlDirection::ReadWrite) => 6,
        }
    }

    /// `_IOC(dir, type, nr, size)` in this encoding. Fails to compile (in a constant) or panics
    /// if `size` does not fit the size field.
    pub const fn encode(self, direction: IoctlDirection, ty: u8, nr: u8, size: usize) -> u32 {
        assert!(
            size < (1 << self.size_bits()),
            "ioctl argument too large for the size field"
        );
        (self.direction_bits(direction) << (16 + self.size_bits()))
            | ((size as u32) << 16)
            | ((ty as u32) << 8)
            | nr as u32
    }

    /// The size field of `request` (`_IOC_SIZE`).
    pub const fn size_of(self, request: u32) -> usize {
        ((request >> 16) & ((1 << self.size_bits()) - 1)) as usize
    }
}

/// The encoding of the architecture this crate was compiled for: the one `ioctl(2)` expects.
pub const HOST_IOCTL_ENCODING: IoctlEncoding = if cfg!(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)) {
    IoctlEncoding::Powerpc
} else {
    IoctlEncoding::Generic
};

/// Which way the argument goes, from user space's point of view (the `_IO*` macro used).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IoctlDirection {
    /// `_IO`: no argument struct (an integer argument, or none).
    None,
    /// `_IOR`: the kernel writes the struct.
    Read,
    /// `_IOW`: the kernel reads the struct.
    Write,
    /// `_IOWR`: both.
    ReadWrite,
}

/// One ioctl: how it is encoded, where it applies and what it needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoctlInfo {
    /// The kernel's name, `"KVM_GET_REGS"`.
    pub name: &'static str,
    /// Which fds accept it.
    pub level: FdLevel,
    /// The `_IO*` direction.
    pub direction: IoctlDirection,
    /// The number within [`KVMIO`].
    pub nr: u8,
    /// Size of the argument struct encoded in the request (0 for `_IO`).
    pub size: usize,
    /// The request code in the encoding of the table's architecture (on its own host, the
    /// number `ioctl(2)` takes).
    pub request: Request,
    /// The capability to check before use (`KVM_CHECK_EXTENSION`), if it is not basic API.
    pub capability: Option<&'static str>,
}

/// Declares request constants and their table from one list mirroring the header's `#define`s.
///
/// ```text
/// ioctls! {
///     arch = "powerpc64", encoding = IoctlEncoding::Powerpc;   // encoding optional: generic
///     /// Table doc.
///     pub const PPC_IOCTLS;
///     /// Doc of the request.
///     KVM_GET_DIRTY_LOG = _IOW(0x42, kvm_dirty_log), Vm;
///     KVM_CLEAR_DIRTY_LOG = _IOWR(0xc0, kvm_clear_dirty_log), Vm,
///         KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
/// }
/// ```
///
/// `arch` is the table's `target_arch` (`host` for the common table, which is always the
/// host's). When the crate is compiled for that architecture each request code is nix's
/// `request_code_none!`/`read!`/`write!`/`readwrite!` of [`KVMIO`], the number and
/// `size_of` the argument struct: the number `ioctl(2)` is called with. On any other host the
/// code is [`IoctlEncoding::encode`] of the same three in the table's encoding, which nix
/// cannot produce. The capability is a path to its `KVM_CAP_*` constant, so a misspelt name
/// does not compile.
macro_rules! ioctls {
    (
        arch = $arch:tt;
        $($rest:tt)*
    ) => {
        $crate::ioctls::ioctls! {
            arch = $arch, encoding = $crate::ioctls::IoctlEncoding::Generic;
            $($rest)*
        }
    };
    (
        arch = $arch:tt, encoding = $encoding:expr;
        $(#[$table_attr:meta])*
        pub const $table:ident;
        $(
            $(#[$attr:meta])*
            $name:ident = $kind:ident($nr:literal $(, $arg:ty)?), $level:ident $(, $cap:ident)?;
        )*
    ) => {
        $(
            $(#[$attr])*
            #[doc = concat!("\n\n`", stringify!($kind), "(KVMIO, ", stringify!($nr)
                $(, ", ", stringify!($arg))?, ")` on ", $crate::ioctls::ioctls!(@level_doc $level),
                $(", needs `", stringify!($cap), "`",)? ".")]
            pub const $name: $crate::ioctls::Request =
                $crate::ioctls::ioctls!(@request $arch, $encoding, $kind($nr $(, $arg)?));
        )*

        $(#[$table_attr])*
        pub const $table: &[$crate::ioctls::IoctlInfo] = &[$(
            $crate::ioctls::IoctlInfo {
                name: stringify!($name),
                level: $crate::ioctls::FdLevel::$level,
                direction: $crate::ioctls::ioctls!(@direction $kind),
                nr: $nr,
                size: $crate::ioctls::ioctls!(@size $($arg)?),
                request: $name,
                capability: $crate::ioctls::ioctls!(@capability $($cap)?),
            }
        ),*];
    };

    // The host's request codes come from nix; another architecture's from the encoder.
    (@request host, $encoding:expr, $kind:ident($($call:tt)*)) => {
        $crate::ioctls::ioctls!(@nix $kind($($call)*))
    };
    (@request $arch:literal, $encoding:expr, $kind:ident($nr:literal $(, $arg:ty)?)) => {
        if cfg!(target_arch = $arch) {
            $crate::ioctls::ioctls!(@nix $kind($nr $(, $arg)?))
        } else {
            $encoding.encode(
                $crate::ioctls::ioctls!(@direction $kind),
                $crate::common::KVMIO,
                $nr,
                $crate::ioctls::ioctls!(@size $($arg)?),
            ) as $crate::ioctls::Request
        }
    };

    (@nix _IO($nr:literal)) => { nix::request_code_none!($crate::common::KVMIO, $nr) };
    (@nix _IOR($nr:literal, $arg:ty)) => {
        nix::request_code_read!($crate::common::KVMIO, $nr, core::mem::size_of::<$arg>())
    };
    (@nix _IOW($nr:literal, $arg:ty)) => {
        nix::request_code_write!($crate::common::KVMIO, $nr, core::mem::size_of::<$arg>())
    };
    (@nix _IOWR($nr:literal, $arg:ty)) => {
        nix::request_code_readwrite!($crate::common::KVMIO, $nr, core::mem::size_of::<$arg>())
    };

    (@direction _IO) => { $crate::ioctls::IoctlDirection::None };
    (@direction _IOR) => { $crate::ioctls::IoctlDirection::Read };
    (@direction _IOW) => { $crate::ioctls::IoctlDirection::Write };
    (@direction _IOWR) => { $crate::ioctls::IoctlDirection::ReadWrite };

    (@size) => { 0 };
    (@size $arg:ty) => { core::mem::size_of::<$arg>() };

    (@capability) => { None };
    (@capability $cap:ident) => {{
        let _checked_to_exist: u32 = $crate::common::$cap;
        Some(stringify!($cap))
    }};

    (@level_doc System) => { "`/dev/kvm`" };
    (@level_doc Vm) => { "a VM fd" };
    (@level_doc Vcpu) => { "a vCPU fd" };
    (@level_doc SystemAndVm) => { "`/dev/kvm` and VM fds" };
    (@level_doc SystemAndVcpu) => { "`/dev/kvm` and vCPU fds" };
    (@level_doc VmAndVcpu) => { "VM and vCPU fds" };
}
pub(crate) use ioctls;

/// The common table followed by an architecture's, stably sorted so system ioctls come first,
/// then VM, then vCPU ones. For the host's table (`is_host`) every request code stays nix's;
/// for another architecture's, every request is re-encoded in that architecture's `encoding`
/// (the common constants are the host's).
pub(crate) const fn grouped_by_level<const N: usize>(
    encoding: IoctlEncoding,
    is_host: bool,
    common: &[IoctlInfo],
    arch: &[IoctlInfo],
) -> [IoctlInfo; N] {
    let mut table: [IoctlInfo; N] = crate::layout::concat(common, arch);
    let mut row = 0;
    while row < N && !is_host {
        let info = table[row];
        table[row].request =
            encoding.encode(info.direction, crate::common::KVMIO, info.nr, info.size) as Request;
        row += 1;
    }
    // Insertion sort: stable, and the table is a few dozen rows.
    let mut i = 1;
    while i < N {
        let mut j = i;
        while j > 0 && table[j - 1].level.rank() > table[j].level.rank() {
            let moved = table[j];
            table[j] = table[j - 1];
            table[j - 1] = moved;
            j -= 1;
        }
        i += 1;
    }
    table
}

ioctls! {
    arch = host, encoding = HOST_IOCTL_ENCODING;
    /// The ioctls of every architecture, in header order, with the host's request codes (nix's).
    pub const COMMON_IOCTLS;

    /// `ioctl(kvm_fd, KVM_GET_API_VERSION, 0)`: returns
    /// [`KVM_API_VERSION`](crate::KVM_API_VERSION).
    KVM_GET_API_VERSION = _IO(0x00), System;
    /// `ioctl(kvm_fd, KVM_CREATE_VM, type)`: returns a VM fd; `type` 0 is the default VM.
    KVM_CREATE_VM = _IO(0x01), System;
    /// `ioctl(fd, KVM_CHECK_EXTENSION, cap)`: 0 if `cap` is absent, else a positive value (often
    /// 1, sometimes a number). VM fds need `KVM_CAP_CHECK_EXTENSION_VM`.
    KVM_CHECK_EXTENSION = _IO(0x03), SystemAndVm;
    /// `ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0)`: bytes to map from each vCPU fd.
    KVM_GET_VCPU_MMAP_SIZE = _IO(0x04), System;

    /// `ioctl(vm_fd, KVM_CREATE_VCPU, id)`: returns a vCPU fd.
    KVM_CREATE_VCPU = _IO(0x41), Vm;
    /// `ioctl(vm_fd, KVM_GET_DIRTY_LOG, &kvm_dirty_log)`: fills the slot's dirty bitmap.
    KVM_GET_DIRTY_LOG = _IOW(0x42, kvm_dirty_log), Vm;
    /// `ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &region)`: creates, moves, changes the flags of,
    /// or (size 0) deletes a memory slot.
    KVM_SET_USER_MEMORY_REGION = _IOW(0x46, kvm_userspace_memory_region), Vm, KVM_CAP_USER_MEMORY;
    /// `ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, &region2)`: the same with a guest_memfd.
    KVM_SET_USER_MEMORY_REGION2 = _IOW(0x49, kvm_userspace_memory_region2), Vm,
        KVM_CAP_USER_MEMORY2;
    /// `ioctl(vm_fd, KVM_CREATE_IRQCHIP, 0)`: in-kernel interrupt controller.
    KVM_CREATE_IRQCHIP = _IO(0x60), Vm, KVM_CAP_IRQCHIP;
    /// `ioctl(vm_fd, KVM_IRQ_LINE, &irq_level)`: raise or lower an interrupt line of the
    /// in-kernel interrupt controller (arm64 encodes type, vCPU and number in `irq`).
    KVM_IRQ_LINE = _IOW(0x61, kvm_irq_level), Vm, KVM_CAP_IRQCHIP;
    /// `ioctl(vm_fd, KVM_REGISTER_COALESCED_MMIO, &zone)`: writes to the zone go to the ring.
    KVM_REGISTER_COALESCED_MMIO = _IOW(0x67, kvm_coalesced_mmio_zone), Vm, KVM_CAP_COALESCED_MMIO;
    /// `ioctl(vm_fd, KVM_UNREGISTER_COALESCED_MMIO, &zone)`.
    KVM_UNREGISTER_COALESCED_MMIO = _IOW(0x68, kvm_coalesced_mmio_zone), Vm, KVM_CAP_COALESCED_MMIO;
    /// `ioctl(vm_fd, KVM_SET_GSI_ROUTING, &routing)`: replaces the GSI routing table with the
    /// `routing.nr` entries that follow the header.
    KVM_SET_GSI_ROUTING = _IOW(0x6a, kvm_irq_routing), Vm, KVM_CAP_IRQ_ROUTING;
    /// `ioctl(vm_fd, KVM_IRQFD, &irqfd)`: a write to the eventfd raises the GSI in the kernel.
    KVM_IRQFD = _IOW(0x76, kvm_irqfd), Vm, KVM_CAP_IRQFD;
    /// `ioctl(vm_fd, KVM_IOEVENTFD, &ioeventfd)`: a guest write to the address signals the
    /// eventfd instead of exiting.
    KVM_IOEVENTFD = _IOW(0x79, kvm_ioeventfd), Vm, KVM_CAP_IOEVENTFD;
    /// `ioctl(vm_fd, KVM_CLEAR_DIRTY_LOG, &clear)`: re-protects pages after a manual-protect read.
    KVM_CLEAR_DIRTY_LOG = _IOWR(0xc0, kvm_clear_dirty_log), Vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
    /// `ioctl(vm_fd, KVM_CREATE_DEVICE, &create)`: an in-kernel device; `create.fd` is its fd.
    KVM_CREATE_DEVICE = _IOWR(0xe0, kvm_create_device), Vm, KVM_CAP_DEVICE_CTRL;

    /// `ioctl(fd, KVM_ENABLE_CAP, &cap)`: on vCPU fds with `KVM_CAP_ENABLE_CAP`, on VM fds with
    /// `KVM_CAP_ENABLE_CAP_VM`.
    KVM_ENABLE_CAP = _IOW(0xa3, kvm_enable_cap), VmAndVcpu, KVM_CAP_ENABLE_CAP;
    /// `ioctl(fd, KVM_GET_STATS_FD, 0)`: returns a read-only fd of binary statistics.
    KVM_GET_STATS_FD = _IO(0xce), VmAndVcpu, KVM_CAP_BINARY_STATS_FD;
    /// `ioctl(fd, KVM_SET_DEVICE_ATTR, &attr)` on a device, VM or vCPU fd.
    KVM_SET_DEVICE_ATTR = _IOW(0xe1, kvm_device_attr), VmAndVcpu, KVM_CAP_DEVICE_CTRL;
    /// `ioctl(fd, KVM_GET_DEVICE_ATTR, &attr)`: the kernel writes the value at `attr.addr`.
    KVM_GET_DEVICE_ATTR = _IOW(0xe2, kvm_device_attr), VmAndVcpu, KVM_CAP_DEVICE_CTRL;
    /// `ioctl(fd, KVM_HAS_DEVICE_ATTR, &attr)`: 0 if the attribute exists.
    KVM_HAS_DEVICE_ATTR = _IOW(0xe3, kvm_device_attr), VmAndVcpu, KVM_CAP_DEVICE_CTRL;

    /// `ioctl(vcpu_fd, KVM_RUN, 0)`: runs the vCPU until an exit user space must handle.
    KVM_RUN = _IO(0x80), Vcpu;
    /// `ioctl(vcpu_fd, KVM_GET_MP_STATE, &state)`.
    KVM_GET_MP_STATE = _IOR(0x98, kvm_mp_state), Vcpu, KVM_CAP_MP_STATE;
    /// `ioctl(vcpu_fd, KVM_SET_MP_STATE, &state)`: for example power a vCPU off or on.
    KVM_SET_MP_STATE = _IOW(0x99, kvm_mp_state), Vcpu, KVM_CAP_MP_STATE;
    /// `ioctl(vcpu_fd, KVM_GET_ONE_REG, &one_reg)`: the kernel writes `kvm_reg_size(id)` bytes
    /// at `one_reg.addr`.
    KVM_GET_ONE_REG = _IOW(0xab, kvm_one_reg), Vcpu, KVM_CAP_ONE_REG;
    /// `ioctl(vcpu_fd, KVM_SET_ONE_REG, &one_reg)`: the kernel reads `kvm_reg_size(id)` bytes
    /// from `one_reg.addr`.
    KVM_SET_ONE_REG = _IOW(0xac, kvm_one_reg), Vcpu, KVM_CAP_ONE_REG;
    /// `ioctl(vcpu_fd, KVM_GET_REG_LIST, &list)`: the ids `KVM_GET_ONE_REG` accepts; `E2BIG`
    /// (with `n` set) when the caller's room is too small.
    KVM_GET_REG_LIST = _IOWR(0xb0, kvm_reg_list), Vcpu, KVM_CAP_ONE_REG;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_the_header() {
        assert_eq!(KVM_RUN, 0xAE80);
        assert_eq!(KVM_GET_API_VERSION, 0xAE00);
        assert_eq!(KVM_SET_USER_MEMORY_REGION, 0x4020_AE46);
        assert_eq!(KVM_CLEAR_DIRTY_LOG, 0xC018_AEC0);
    }

    #[test]
    fn table_rows_describe_their_constants() {
        let row = COMMON_IOCTLS
            .iter()
            .find(|row| row.name == "KVM_CLEAR_DIRTY_LOG")
            .unwrap();
        assert_eq!(row.request, KVM_CLEAR_DIRTY_LOG);
        assert_eq!(row.direction, IoctlDirection::ReadWrite);
        assert_eq!((row.nr, row.size), (0xc0, 24));
        assert_eq!(row.capability, Some("KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2"));
    }

    /// The host's request codes are nix's (`ioctls!` builds them with `request_code_*!`); the
    /// `const fn` encoder, which builds every other architecture's, must give exactly those
    /// numbers for every request of the host's table, and the table must hold nix's numbers.
    #[test]
    fn the_encoder_equals_nix_for_every_host_ioctl() {
        use crate::common::KVMIO;
        let host = crate::arch_abi(crate::HOST_ARCH).expect("the host architecture is described");
        assert_eq!(host.ioctl_encoding, HOST_IOCTL_ENCODING);
        for info in host.ioctls.iter().chain(COMMON_IOCTLS) {
            let (nr, size) = (info.nr, info.size);
            let nix: Request = match info.direction {
                IoctlDirection::None => nix::request_code_none!(KVMIO, nr),
                IoctlDirection::Read => nix::request_code_read!(KVMIO, nr, size),
                IoctlDirection::Write => nix::request_code_write!(KVMIO, nr, size),
                IoctlDirection::ReadWrite => nix::request_code_readwrite!(KVMIO, nr, size),
            };
            assert_eq!(info.request, nix, "{} is not nix's number", info.name);
            let encoded = HOST_IOCTL_ENCODING.encode(info.direction, KVMIO, nr, size);
            assert_eq!(
                encoded as Request, nix,
                "the encoder differs on {}",
                info.name
            );
        }
    }

    #[test]
    fn powerpc_packs_direction_in_three_bits() {
        let ppc = IoctlEncoding::Powerpc;
        assert_eq!(ppc.encode(IoctlDirection::None, 0xAE, 0x80, 0), 0x2000_AE80);
        assert_eq!(
            ppc.encode(IoctlDirection::Write, 0xAE, 0x46, 32),
            0x8020_AE46
        );
        assert_eq!(
            ppc.encode(IoctlDirection::ReadWrite, 0xAE, 0x05, 8),
            0xC008_AE05
        );
        assert_eq!(ppc.size_of(0x8188_AE82), 392);
        let generic = IoctlEncoding::Generic;
        assert_eq!(
            generic.encode(IoctlDirection::Write, 0xAE, 0x46, 32),
            0x4020_AE46
        );
        assert_eq!(generic.size_of(0x4138_AE84), 312);
    }

    #[test]
    fn levels() {
        assert!(FdLevel::SystemAndVm.on_system() && FdLevel::SystemAndVm.on_vm());
        assert!(!FdLevel::Vm.on_vcpu());
        assert!(FdLevel::VmAndVcpu.on_vcpu());
    }
}
