//! arm64 ioctls of `<linux/kvm.h>`: vCPU initialisation, device addresses, events, debug, MTE
//! and the counter offset. Registers go through the common `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG`.

use super::{
    kvm_arm_copy_mte_tags, kvm_arm_counter_offset, kvm_arm_device_addr, kvm_guest_debug,
    kvm_vcpu_events, kvm_vcpu_init,
};
use crate::ioctls::ioctls;

ioctls! {
    arch = "aarch64";
    /// The arm64-only ioctls, in header order.
    pub const ARM64_IOCTLS;

    /// `ioctl(vm_fd, KVM_ARM_SET_DEVICE_ADDR, &addr)`: where an in-kernel device (VGICv2)
    /// sits (superseded by `KVM_SET_DEVICE_ATTR`).
    KVM_ARM_SET_DEVICE_ADDR = _IOW(0xab, kvm_arm_device_addr), Vm, KVM_CAP_ARM_SET_DEVICE_ADDR;
    /// `ioctl(vm_fd, KVM_ARM_PREFERRED_TARGET, &init)`: the target (and no features) to pass to
    /// `KVM_ARM_VCPU_INIT` on this host.
    KVM_ARM_PREFERRED_TARGET = _IOR(0xaf, kvm_vcpu_init), Vm;
    /// `ioctl(vm_fd, KVM_ARM_MTE_COPY_TAGS, &copy)`: read or write guest MTE tags.
    KVM_ARM_MTE_COPY_TAGS = _IOR(0xb4, kvm_arm_copy_mte_tags), Vm, KVM_CAP_ARM_MTE;
    /// `ioctl(vm_fd, KVM_ARM_SET_COUNTER_OFFSET, &offset)`: one counter offset for the VM.
    KVM_ARM_SET_COUNTER_OFFSET = _IOW(0xb5, kvm_arm_counter_offset), Vm, KVM_CAP_COUNTER_OFFSET;

    /// `ioctl(vcpu_fd, KVM_SET_GUEST_DEBUG, &dbg)`: single-step, breakpoints, watchpoints.
    KVM_SET_GUEST_DEBUG = _IOW(0x9b, kvm_guest_debug), Vcpu, KVM_CAP_SET_GUEST_DEBUG;
    /// `ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events)`.
    KVM_GET_VCPU_EVENTS = _IOR(0x9f, kvm_vcpu_events), Vcpu, KVM_CAP_VCPU_EVENTS;
    /// `ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &events)`: inject an SError or external abort.
    KVM_SET_VCPU_EVENTS = _IOW(0xa0, kvm_vcpu_events), Vcpu, KVM_CAP_VCPU_EVENTS;
    /// `ioctl(vcpu_fd, KVM_ARM_VCPU_INIT, &init)`: must precede `KVM_RUN` and register access;
    /// puts the vCPU in its reset state (api.rst 4.82).
    KVM_ARM_VCPU_INIT = _IOW(0xae, kvm_vcpu_init), Vcpu;
    /// `ioctl(vcpu_fd, KVM_ARM_VCPU_FINALIZE, &feature)`: fix the configuration of a feature
    /// (`KVM_ARM_VCPU_SVE`) before the first run.
    KVM_ARM_VCPU_FINALIZE = _IOW(0xc2, i32), Vcpu, KVM_CAP_ARM_SVE;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_codes_match_the_header() {
        assert_eq!(KVM_ARM_VCPU_INIT as u32, 0x4020_AEAE);
        assert_eq!(KVM_ARM_PREFERRED_TARGET as u32, 0x8020_AEAF);
        assert_eq!(KVM_ARM_VCPU_FINALIZE as u32, 0x4004_AEC2);
    }
}
