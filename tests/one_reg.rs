//! `KVM_GET_ONE_REG`/`KVM_SET_ONE_REG` on every architecture: the buffer is checked against the
//! size the register id encodes before any system call, and a refusal names the ioctl.

mod common;

use common::kvm_or_skip;
use nix::errno::Errno;
use rawkvm::Error;
use rawkvm::bindings::{KVM_REG_ARM64, KVM_REG_SIZE_U32, KVM_REG_SIZE_U64, KVM_REG_X86};

/// An id no architecture defines: x86's arch field with a type byte KVM does not use.
const UNKNOWN_ID: u64 = KVM_REG_X86 | KVM_REG_SIZE_U64 | 0x00ff_0000_dead;

#[test]
fn a_buffer_of_the_wrong_size_is_refused_before_the_ioctl() {
    let Some(kvm) = kvm_or_skip("a_buffer_of_the_wrong_size_is_refused_before_the_ioctl") else {
        return;
    };
    let vm = kvm.create_vm().unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    let id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | 0x0010_0040;
    let mut four = [0u8; 4];
    match vcpu.one_reg(id, &mut four) {
        Err(Error::RegisterSize {
            id: got,
            register_size: 8,
            buffer: 4,
        }) => assert_eq!(got, id),
        other => panic!("expected RegisterSize, got {other:?}"),
    }
    match vcpu.set_one_reg(KVM_REG_X86 | KVM_REG_SIZE_U32 | 1, &[0; 8]) {
        Err(Error::RegisterSize {
            register_size: 4,
            buffer: 8,
            ..
        }) => {}
        other => panic!("expected RegisterSize, got {other:?}"),
    }
}

#[test]
fn an_unknown_register_is_refused_by_the_kernel_and_named() {
    let Some(kvm) = kvm_or_skip("an_unknown_register_is_refused_by_the_kernel_and_named") else {
        return;
    };
    let vm = kvm.create_vm().unwrap();
    let vcpu = vm.create_vcpu(0).unwrap();
    // arm64 refuses every register of a vCPU that KVM_ARM_VCPU_INIT has not initialised
    // (measured inside QEMU, Linux 6.1): ENOEXEC, whatever the id.
    #[cfg(target_arch = "aarch64")]
    {
        match vcpu.one_reg_u64(UNKNOWN_ID) {
            Err(Error::Ioctl {
                ioctl: "KVM_GET_ONE_REG",
                errno: Errno::ENOEXEC,
            }) => {}
            other => panic!("expected ENOEXEC before KVM_ARM_VCPU_INIT, got {other:?}"),
        }
        vcpu.arm_vcpu_init(&[]).unwrap();
    }
    // Kernels without x86 ONE_REG support answer EINVAL; with it (and on arm64 and riscv64),
    // an unknown id is ENOENT.
    let refused = [Errno::EINVAL, Errno::ENOENT];
    match vcpu.one_reg_u64(UNKNOWN_ID) {
        Err(Error::Ioctl {
            ioctl: "KVM_GET_ONE_REG",
            errno,
        }) => assert!(refused.contains(&errno), "{errno}"),
        other => panic!("expected KVM_GET_ONE_REG to fail, got {other:?}"),
    }
    match vcpu.set_one_reg_u64(UNKNOWN_ID, 1) {
        Err(Error::SetRegisters {
            ioctl: "KVM_SET_ONE_REG",
            errno,
        }) => assert!(refused.contains(&errno), "{errno}"),
        other => panic!("expected KVM_SET_ONE_REG to fail, got {other:?}"),
    }
}
