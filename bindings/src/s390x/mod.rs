//! s390x: `<asm/kvm.h>` (arch/s390/include/uapi/asm/kvm.h), the s390 build of `struct kvm_run`
//! (which inserts the PSW before the exit union), the s390 ioctls and VM type.
//!
//! ```text
//! vm = ioctl(kvm, KVM_CREATE_VM, 0)                      KVM_VM_S390_UCONTROL: user-controlled
//! vcpu = ioctl(vm, KVM_CREATE_VCPU, id)
//! ioctl(vcpu, KVM_S390_INITIAL_RESET, 0)
//! ioctl(vcpu, KVM_S390_SET_INITIAL_PSW, &{ mask, addr })  where the guest starts
//! ioctl(vcpu, KVM_RUN, 0)   kvm_run.psw_mask/psw_addr and kvm_run.s.regs are synchronised
//! ```
//!
//! s390 is big-endian: the structs have the same offsets as elsewhere, but a value read from
//! the page must be read in the target's byte order. This module compiles on every host.

mod regs;

pub use regs::*;

use crate::common::run::kvm_run;
use crate::ioctls::{IoctlEncoding, ioctls};
use crate::layout::StructLayout;

kvm_run! {
    debug_arch: kvm_debug_exit_arch (size 16, align 8),
    sync_regs: kvm_sync_regs (align 8),
    fields_before_exit {
        /// In and out: the PSW mask (s390 only; it moves the exit union 16 bytes down).
        pub psw_mask: u64 => (32, "__u64"),
        /// In and out: the PSW address.
        pub psw_addr: u64 => (40, "__u64"),
    },
    exit at 48, kvm_valid_regs at 304, kvm_dirty_regs at 312, s at 320, size 2368,
}

/// `KVM_CREATE_VM` type for a user-controlled VM (`KVM_CAP_S390_UCONTROL`): user space maps
/// guest memory per vCPU (`KVM_S390_UCAS_MAP`).
pub const KVM_VM_S390_UCONTROL: u64 = 1;
/// Page of the vCPU mapping holding the SIE control block of a user-controlled VM.
pub const KVM_S390_SIE_PAGE_OFFSET: usize = 1;

ioctls! {
    arch = "s390x";
    /// The s390-only ioctls, in header order.
    pub const S390_IOCTLS;

    /// `ioctl(kvm_fd, KVM_S390_ENABLE_SIE, 0)`: prepare the process for SIE (done implicitly by
    /// `KVM_CREATE_VM`).
    KVM_S390_ENABLE_SIE = _IO(0x06), System;
    /// `ioctl(vcpu_fd, KVM_S390_UCAS_MAP, &mapping)` (user-controlled VMs).
    KVM_S390_UCAS_MAP = _IOW(0x50, kvm_s390_ucas_mapping), Vcpu, KVM_CAP_S390_UCONTROL;
    /// `ioctl(vcpu_fd, KVM_S390_UCAS_UNMAP, &mapping)`.
    KVM_S390_UCAS_UNMAP = _IOW(0x51, kvm_s390_ucas_mapping), Vcpu, KVM_CAP_S390_UCONTROL;
    /// `ioctl(vcpu_fd, KVM_S390_VCPU_FAULT, &addr)`: fault in a guest page.
    KVM_S390_VCPU_FAULT = _IOW(0x52, u64), Vcpu, KVM_CAP_S390_UCONTROL;
    /// `ioctl(vm_fd, KVM_S390_GET_SKEYS, &skeys)`: storage keys.
    KVM_S390_GET_SKEYS = _IOW(0xb2, kvm_s390_skeys), Vm, KVM_CAP_S390_SKEYS;
    /// `ioctl(vm_fd, KVM_S390_SET_SKEYS, &skeys)`.
    KVM_S390_SET_SKEYS = _IOW(0xb3, kvm_s390_skeys), Vm, KVM_CAP_S390_SKEYS;

    /// `ioctl(fd, KVM_S390_INTERRUPT, &irq)`: a floating interrupt on a VM fd, a local one on a
    /// vCPU fd.
    KVM_S390_INTERRUPT = _IOW(0x94, kvm_s390_interrupt), VmAndVcpu;
    /// `ioctl(vcpu_fd, KVM_GET_REGS, &regs)`.
    KVM_GET_REGS = _IOR(0x81, kvm_regs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_REGS, &regs)`.
    KVM_SET_REGS = _IOW(0x82, kvm_regs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_GET_SREGS, &sregs)`.
    KVM_GET_SREGS = _IOR(0x83, kvm_sregs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_SREGS, &sregs)`.
    KVM_SET_SREGS = _IOW(0x84, kvm_sregs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_GET_FPU, &fpu)`.
    KVM_GET_FPU = _IOR(0x8c, kvm_fpu), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_FPU, &fpu)`.
    KVM_SET_FPU = _IOW(0x8d, kvm_fpu), Vcpu;
    /// `ioctl(vcpu_fd, KVM_S390_STORE_STATUS, addr)`: store the CPU status at `addr` (or
    /// `KVM_S390_STORE_STATUS_NOADDR`/`_PREFIXED`).
    KVM_S390_STORE_STATUS = _IOW(0x95, u64), Vcpu;
    /// `ioctl(vcpu_fd, KVM_S390_SET_INITIAL_PSW, &psw)`: where the vCPU starts.
    KVM_S390_SET_INITIAL_PSW = _IOW(0x96, kvm_s390_psw), Vcpu;
    /// `ioctl(vcpu_fd, KVM_S390_INITIAL_RESET, 0)`.
    KVM_S390_INITIAL_RESET = _IO(0x97), Vcpu;
    /// `ioctl(vcpu_fd, KVM_S390_NORMAL_RESET, 0)`.
    KVM_S390_NORMAL_RESET = _IO(0xc3), Vcpu, KVM_CAP_S390_VCPU_RESETS;
    /// `ioctl(vcpu_fd, KVM_S390_CLEAR_RESET, 0)`.
    KVM_S390_CLEAR_RESET = _IO(0xc4), Vcpu, KVM_CAP_S390_VCPU_RESETS;
}

/// Layouts of the s390 structs, `kvm_run` first.
const S390_STRUCT_LAYOUTS: &[StructLayout] = &[
    kvm_run::LAYOUT,
    kvm_regs::LAYOUT,
    kvm_sregs::LAYOUT,
    kvm_fpu::LAYOUT,
    kvm_debug_exit_arch::LAYOUT,
    kvm_sync_regs::LAYOUT,
    kvm_s390_psw::LAYOUT,
    kvm_s390_interrupt::LAYOUT,
    kvm_s390_skeys::LAYOUT,
    kvm_s390_ucas_mapping::LAYOUT,
];

crate::arches::arch_tables!(
    "s390x",
    target_arch = "s390x",
    IoctlEncoding::Generic,
    S390_STRUCT_LAYOUTS,
    S390_IOCTLS
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_psw_moves_the_exit_union() {
        let run = &kvm_run::LAYOUT;
        assert_eq!(run.size, 2368);
        let offset = |name: &str| run.field(name).unwrap().offset;
        assert_eq!(offset("psw_mask"), 32);
        assert_eq!(offset("io"), 48);
        assert_eq!(offset("s390_sieic.icptcode"), 48);
        assert_eq!(offset("s"), 320);
    }

    #[test]
    fn sync_regs_members_in_place() {
        let sync = &kvm_sync_regs::LAYOUT;
        assert_eq!(
            sync.field("fprs").map(|f| (f.offset, f.size)),
            Some((392, 128))
        );
        assert_eq!(sync.field("etoken").map(|f| f.offset), Some(1776));
    }
}
