//! x86 ioctls of `<linux/kvm.h>`: the requests only x86 has, or whose argument is an x86 struct.

use super::{
    kvm_cpuid2, kvm_fpu, kvm_guest_debug, kvm_msr_filter, kvm_msr_list, kvm_msrs, kvm_pit_config,
    kvm_regs, kvm_sregs, kvm_vcpu_events,
};
use crate::common::kvm_interrupt;
use crate::ioctls::ioctls;

ioctls! {
    arch = "x86_64";
    /// The x86-only ioctls, in header order.
    pub const X86_IOCTLS;

    /// `ioctl(kvm_fd, KVM_GET_MSR_INDEX_LIST, &list)`: the MSRs `KVM_GET_MSRS` can read.
    KVM_GET_MSR_INDEX_LIST = _IOWR(0x02, kvm_msr_list), System;
    /// `ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, &cpuid2)`: the CPUID leaves KVM can expose.
    KVM_GET_SUPPORTED_CPUID = _IOWR(0x05, kvm_cpuid2), System, KVM_CAP_EXT_CPUID;
    /// `ioctl(kvm_fd, KVM_GET_MSR_FEATURE_INDEX_LIST, &list)`: the feature MSRs `KVM_GET_MSRS`
    /// reads on `/dev/kvm` (what the host lets a guest see of its MSR-reported features).
    KVM_GET_MSR_FEATURE_INDEX_LIST = _IOWR(0x0a, kvm_msr_list), System, KVM_CAP_GET_MSR_FEATURES;

    /// `ioctl(vm_fd, KVM_SET_TSS_ADDR, addr)`: three pages of guest physical space for the TSS
    /// VMX needs for real mode.
    KVM_SET_TSS_ADDR = _IO(0x47), Vm, KVM_CAP_SET_TSS_ADDR;
    /// `ioctl(vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &addr)`: one page for VMX's real-mode identity
    /// page table.
    KVM_SET_IDENTITY_MAP_ADDR = _IOW(0x48, u64), Vm, KVM_CAP_SET_IDENTITY_MAP_ADDR;
    /// `ioctl(vm_fd, KVM_CREATE_PIT2, &config)`: the in-kernel 8254 PIT, after
    /// `KVM_CREATE_IRQCHIP` (its channel 0 drives GSI 0).
    KVM_CREATE_PIT2 = _IOW(0x77, kvm_pit_config), Vm, KVM_CAP_PIT2;
    /// `ioctl(vm_fd, KVM_X86_SET_MSR_FILTER, &filter)`: which MSR accesses exit to user space.
    KVM_X86_SET_MSR_FILTER = _IOW(0xc6, kvm_msr_filter), Vm, KVM_CAP_X86_MSR_FILTER;

    /// `ioctl(vcpu_fd, KVM_GET_REGS, &regs)`.
    KVM_GET_REGS = _IOR(0x81, kvm_regs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_REGS, &regs)`.
    KVM_SET_REGS = _IOW(0x82, kvm_regs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_GET_SREGS, &sregs)`.
    KVM_GET_SREGS = _IOR(0x83, kvm_sregs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_SREGS, &sregs)`.
    KVM_SET_SREGS = _IOW(0x84, kvm_sregs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_INTERRUPT, &irq)`: queue an external interrupt (no in-kernel irqchip).
    KVM_INTERRUPT = _IOW(0x86, kvm_interrupt), Vcpu;
    /// `ioctl(fd, KVM_GET_MSRS, &msrs)`: returns how many entries were read. On `/dev/kvm` it
    /// reads feature MSRs (`KVM_CAP_GET_MSR_FEATURES`).
    KVM_GET_MSRS = _IOWR(0x88, kvm_msrs), SystemAndVcpu;
    /// `ioctl(vcpu_fd, KVM_SET_MSRS, &msrs)`: returns how many entries were written.
    KVM_SET_MSRS = _IOW(0x89, kvm_msrs), Vcpu;
    /// `ioctl(vcpu_fd, KVM_GET_FPU, &fpu)`.
    KVM_GET_FPU = _IOR(0x8c, kvm_fpu), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_FPU, &fpu)`.
    KVM_SET_FPU = _IOW(0x8d, kvm_fpu), Vcpu;
    /// `ioctl(vcpu_fd, KVM_SET_CPUID2, &cpuid2)`: the CPUID the guest sees.
    KVM_SET_CPUID2 = _IOW(0x90, kvm_cpuid2), Vcpu, KVM_CAP_EXT_CPUID;
    /// `ioctl(vcpu_fd, KVM_GET_CPUID2, &cpuid2)`: the CPUID the vCPU has now (as the kernel
    /// adjusted it).
    KVM_GET_CPUID2 = _IOWR(0x91, kvm_cpuid2), Vcpu, KVM_CAP_EXT_CPUID;
    /// `ioctl(vcpu_fd, KVM_SET_GUEST_DEBUG, &dbg)`: single-step and breakpoints.
    KVM_SET_GUEST_DEBUG = _IOW(0x9b, kvm_guest_debug), Vcpu, KVM_CAP_SET_GUEST_DEBUG;
    /// `ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events)`.
    KVM_GET_VCPU_EVENTS = _IOR(0x9f, kvm_vcpu_events), Vcpu, KVM_CAP_VCPU_EVENTS;
    /// `ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &events)`.
    KVM_SET_VCPU_EVENTS = _IOW(0xa0, kvm_vcpu_events), Vcpu, KVM_CAP_VCPU_EVENTS;
    /// `ioctl(vcpu_fd, KVM_SET_TSC_KHZ, khz)`: the guest's TSC rate (needs TSC scaling).
    KVM_SET_TSC_KHZ = _IO(0xa2), Vcpu, KVM_CAP_TSC_CONTROL;
    /// `ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0)`: returns the guest's TSC rate in kHz.
    KVM_GET_TSC_KHZ = _IO(0xa3), Vcpu, KVM_CAP_GET_TSC_KHZ;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_the_header() {
        assert_eq!(KVM_GET_REGS, 0x8090_AE81);
        assert_eq!(KVM_SET_SREGS, 0x4138_AE84);
        assert_eq!(KVM_GET_SUPPORTED_CPUID, 0xC008_AE05);
        assert_eq!(KVM_SET_GUEST_DEBUG, 0x4048_AE9B);
        assert_eq!(KVM_SET_TSS_ADDR, 0xAE47);
        assert_eq!(KVM_SET_CPUID2, 0x4008_AE90);
        assert_eq!(KVM_GET_CPUID2, 0xC008_AE91);
        assert_eq!(KVM_GET_MSR_FEATURE_INDEX_LIST, 0xC004_AE0A);
        assert_eq!(KVM_GET_TSC_KHZ, 0xAEA3);
    }
}
