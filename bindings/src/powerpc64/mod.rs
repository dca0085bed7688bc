//! PowerPC 64-bit little-endian (ppc64le): `<asm/kvm.h>` (arch/powerpc/include/uapi/asm/kvm.h),
//! the ppc build of `struct kvm_run`, the ppc ioctls and VM types.
//!
//! ```text
//! vm = ioctl(kvm, KVM_CREATE_VM, KVM_VM_PPC_HV)    or KVM_VM_PPC_PR, or 0 for either
//! vcpu = ioctl(vm, KVM_CREATE_VCPU, id)
//! ioctl(vcpu, KVM_SET_REGS, &regs)                  pc, msr, gpr[]
//! ```
//!
//! PowerPC encodes ioctl requests differently ([`IoctlEncoding::Powerpc`]: three direction
//! bits, `_IOW` is 4 and `_IO` is 1, a 13-bit size), so every request here differs from the
//! same ioctl on x86 or arm64; the tables are computed in that encoding on any host. The page
//! size of ppc64le kernels is usually 64 KiB: mappings and memory slots must be aligned to it.

mod regs;

pub use regs::*;

use crate::common::{kvm_interrupt, run::kvm_run};
use crate::ioctls::{IoctlEncoding, ioctls};
use crate::layout::StructLayout;

kvm_run! {
    debug_arch: kvm_debug_exit_arch (size 16, align 8),
    sync_regs: kvm_sync_regs (align 1),
    fields_before_exit {},
    exit at 32, kvm_valid_regs at 288, kvm_dirty_regs at 296, s at 304, size 2352,
}

/// `KVM_CREATE_VM` type: hypervisor-mode KVM (`kvm_hv`).
pub const KVM_VM_PPC_HV: u64 = 1;
/// `KVM_CREATE_VM` type: problem-state KVM (`kvm_pr`).
pub const KVM_VM_PPC_PR: u64 = 2;

ioctls! {
    arch = "powerpc64", encoding = IoctlEncoding::Powerpc;
    /// The ppc-only ioctls, in header order.
    pub const PPC_IOCTLS;

    /// `ioctl(vm_fd, KVM_PPC_GET_PVINFO, &pvinfo)`: the paravirtual hypercall sequence.
    KVM_PPC_GET_PVINFO = _IOW(0xa1, kvm_ppc_pvinfo), Vm, KVM_CAP_PPC_GET_PVINFO;
    /// `ioctl(vm_fd, KVM_PPC_ALLOCATE_HTAB, &order)`: (re)allocate the hash page table.
    KVM_PPC_ALLOCATE_HTAB = _IOWR(0xa7, u32), Vm, KVM_CAP_PPC_ALLOC_HTAB;
    /// `ioctl(vm_fd, KVM_CREATE_SPAPR_TCE_64, &tce)`: a TCE table; returns its fd.
    KVM_CREATE_SPAPR_TCE_64 = _IOW(0xa8, kvm_create_spapr_tce_64), Vm, KVM_CAP_SPAPR_TCE_64;
    /// `ioctl(vm_fd, KVM_PPC_GET_HTAB_FD, &htab)`: an fd to read or write the hash table.
    KVM_PPC_GET_HTAB_FD = _IOW(0xaa, kvm_get_htab_fd), Vm, KVM_CAP_PPC_HTAB_FD;
    /// `ioctl(vm_fd, KVM_PPC_RESIZE_HPT_PREPARE, &resize)`.
    KVM_PPC_RESIZE_HPT_PREPARE = _IOR(0xad, kvm_ppc_resize_hpt), Vm, KVM_CAP_SPAPR_RESIZE_HPT;
    /// `ioctl(vm_fd, KVM_PPC_RESIZE_HPT_COMMIT, &resize)`.
    KVM_PPC_RESIZE_HPT_COMMIT = _IOR(0xae, kvm_ppc_resize_hpt), Vm, KVM_CAP_SPAPR_RESIZE_HPT;
    /// `ioctl(vm_fd, KVM_PPC_CONFIGURE_V3_MMU, &cfg)`: radix or hash MMU (POWER9).
    KVM_PPC_CONFIGURE_V3_MMU = _IOW(0xaf, kvm_ppc_mmuv3_cfg), Vm, KVM_CAP_PPC_MMU_RADIX;
    /// `ioctl(vm_fd, KVM_PPC_GET_CPU_CHAR, &chars)`: speculation-control characteristics.
    KVM_PPC_GET_CPU_CHAR = _IOR(0xb1, kvm_ppc_cpu_char), Vm, KVM_CAP_PPC_GET_CPU_CHAR;
    /// `ioctl(vm_fd, KVM_PPC_SVM_OFF, 0)`: turn a secure VM back into a normal one.
    KVM_PPC_SVM_OFF = _IO(0xb3), Vm, KVM_CAP_PPC_SECURE_GUEST;

    /// `ioctl(vcpu_fd, KVM_GET_REGS, &regs)`.
    KVM_GET_REGS = _IOR(0x81, kvm_regs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_REGS, &regs)`.
    KVM_SET_REGS = _IOW(0x82, kvm_regs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_GET_SREGS, &sregs)`.
    KVM_GET_SREGS = _IOR(0x83, kvm_sregs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_SREGS, &sregs)`.
    KVM_SET_SREGS = _IOW(0x84, kvm_sregs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_INTERRUPT, &irq)`: `KVM_INTERRUPT_SET`, `_UNSET`, `_SET_LEVEL`.
    KVM_INTERRUPT = _IOW(0x86, kvm_interrupt), Vcpu;
    /// `ioctl(vcpu_fd, KVM_GET_FPU, &fpu)`.
    KVM_GET_FPU = _IOR(0x8c, kvm_fpu), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_FPU, &fpu)`.
    KVM_SET_FPU = _IOW(0x8d, kvm_fpu), Vcpu;
}

/// Layouts of the ppc structs, `kvm_run` first.
const PPC_STRUCT_LAYOUTS: &[StructLayout] = &[
    kvm_run::LAYOUT,
    kvm_regs::LAYOUT,
    kvm_sregs::LAYOUT,
    kvm_fpu::LAYOUT,
    kvm_debug_exit_arch::LAYOUT,
    kvm_sync_regs::LAYOUT,
    kvm_ppc_pvinfo::LAYOUT,
    kvm_get_htab_fd::LAYOUT,
    kvm_ppc_resize_hpt::LAYOUT,
    kvm_ppc_mmuv3_cfg::LAYOUT,
    kvm_ppc_cpu_char::LAYOUT,
    kvm_create_spapr_tce_64::LAYOUT,
];

crate::arches::arch_tables!(
    "ppc64le",
    target_arch = "powerpc64",
    IoctlEncoding::Powerpc,
    PPC_STRUCT_LAYOUTS,
    PPC_IOCTLS
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_use_the_powerpc_encoding() {
        // _IOR(KVMIO, 0x81, struct kvm_regs) with READ = 2 in bits 29-31.
        assert_eq!(KVM_GET_REGS as u32, 0x4188_AE81);
        assert_eq!(KVM_SET_REGS as u32, 0x8188_AE82);
        let run = IOCTLS.iter().find(|i| i.name == "KVM_RUN").unwrap();
        assert_eq!(run.request as u32, 0x2000_AE80);
        let one_reg = IOCTLS.iter().find(|i| i.name == "KVM_SET_ONE_REG").unwrap();
        assert_eq!(one_reg.request as u32, 0x8010_AEAC);
    }
}
