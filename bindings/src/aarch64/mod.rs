//! arm64: `<asm/kvm.h>` (arch/arm64/include/uapi/asm/kvm.h), the arm64 build of
//! `struct kvm_run`, the arm64 ioctls and the VM type of `KVM_CREATE_VM`.
//!
//! ```text
//! vm = ioctl(kvm, KVM_CREATE_VM, KVM_VM_TYPE_ARM_IPA_SIZE(bits))   0: the default 40-bit IPA
//! ioctl(vm, KVM_ARM_PREFERRED_TARGET, &init)                       the target for this host
//! vcpu = ioctl(vm, KVM_CREATE_VCPU, id)
//! ioctl(vcpu, KVM_ARM_VCPU_INIT, &init)                            reset state, features
//! ioctl(vcpu, KVM_SET_ONE_REG, &{ ARM64_REG_PC, &pc })             no KVM_SET_REGS on arm64
//! ```
//!
//! This module compiles on every host; the crate root re-exports it on arm64 hosts. Request
//! codes are computed in arm64's (generic) ioctl encoding whatever the host.

mod ioctls;
mod regs;

pub use ioctls::*;
pub use regs::*;

use crate::common::run::kvm_run;
use crate::ioctls::IoctlEncoding;
use crate::layout::StructLayout;
use crate::names::named_constants;

kvm_run! {
    debug_arch: kvm_debug_exit_arch (size 16, align 8),
    sync_regs: kvm_sync_regs (align 8),
    fields_before_exit {},
    exit at 32, kvm_valid_regs at 288, kvm_dirty_regs at 296, s at 304, size 2352,
}

named_constants! {
    /// Pages of the vCPU mapping (`mmap(vcpu_fd)`) after `kvm_run` at page 0. arm64 has no
    /// port I/O, so the coalesced-MMIO ring follows `kvm_run` directly.
    pub const VCPU_MMAP_PAGE_OFFSETS: [usize];
    /// The coalesced-MMIO ring (`kvm_coalesced_mmio_ring`).
    KVM_COALESCED_MMIO_PAGE_OFFSET = 1,
    /// The first page of the dirty ring (`KVM_CAP_DIRTY_LOG_RING`).
    KVM_DIRTY_LOG_PAGE_OFFSET = 64,
}

/// The IPA-size bits of the `KVM_CREATE_VM` type argument.
pub const KVM_VM_TYPE_ARM_IPA_SIZE_MASK: u64 = 0xff;

/// `KVM_VM_TYPE_ARM_IPA_SIZE(bits)`: the `KVM_CREATE_VM` type asking for a guest physical
/// address space of `bits` bits (32 up to `KVM_CHECK_EXTENSION(KVM_CAP_ARM_VM_IPA_SIZE)`); 0
/// means the default 40 bits.
#[allow(non_snake_case)]
pub const fn KVM_VM_TYPE_ARM_IPA_SIZE(bits: u64) -> u64 {
    bits & KVM_VM_TYPE_ARM_IPA_SIZE_MASK
}

/// Layouts of the arm64 structs, `kvm_run` first.
const ARM64_STRUCT_LAYOUTS: &[StructLayout] = &[
    kvm_run::LAYOUT,
    user_pt_regs::LAYOUT,
    user_fpsimd_state::LAYOUT,
    kvm_regs::LAYOUT,
    kvm_vcpu_init::LAYOUT,
    kvm_sregs::LAYOUT,
    kvm_fpu::LAYOUT,
    kvm_debug_exit_arch::LAYOUT,
    kvm_guest_debug_arch::LAYOUT,
    kvm_guest_debug::LAYOUT,
    kvm_sync_regs::LAYOUT,
    kvm_vcpu_events::LAYOUT,
    kvm_arm_device_addr::LAYOUT,
    kvm_arm_copy_mte_tags::LAYOUT,
    kvm_arm_counter_offset::LAYOUT,
];

crate::arches::arch_tables!(
    "arm64",
    target_arch = "aarch64",
    IoctlEncoding::Generic,
    ARM64_STRUCT_LAYOUTS,
    ARM64_IOCTLS
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::common::{KVM_REG_ARM64, KVM_REG_SIZE_U64};

    #[test]
    fn kvm_run_layout() {
        let run = &kvm_run::LAYOUT;
        assert_eq!((run.size, run.align), (2352, 8));
        assert_eq!(
            run.field("debug.arch").map(|f| (f.offset, f.size)),
            Some((32, 16))
        );
        assert_eq!(
            run.field("s.regs").map(|f| (f.offset, f.size)),
            Some((304, 8))
        );
        assert_eq!(run.field("arm_nisv.esr_iss").map(|f| f.offset), Some(32));
    }

    #[test]
    fn core_register_ids_count_32_bit_words() {
        // KVM_REG_ARM_CORE_REG(regs.pc) = offsetof(struct kvm_regs, regs.pc) / 4 = 256 / 4.
        assert_eq!(
            ARM64_REG_PC,
            KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | 64
        );
        assert_eq!(ARM64_REG_PC, 0x6030_0000_0010_0040);
        assert_eq!(ARM64_REG_X0, 0x6030_0000_0010_0000);
        assert_eq!(arm64_x_reg(1), ARM64_REG_X0 + 2);
        assert_eq!(KVM_REG_ARM_TIMER_CTL, 0x6030_0000_0013_DF19);
    }

    #[test]
    fn vm_type_keeps_only_the_ipa_bits() {
        assert_eq!(KVM_VM_TYPE_ARM_IPA_SIZE(48), 48);
        assert_eq!(KVM_VM_TYPE_ARM_IPA_SIZE(0x1_30), 0x30);
    }

    #[test]
    fn ioctls_are_grouped_and_generic() {
        assert!(
            IOCTLS
                .windows(2)
                .all(|p| p[0].level.rank() <= p[1].level.rank())
        );
        let init = IOCTLS
            .iter()
            .find(|i| i.name == "KVM_ARM_VCPU_INIT")
            .unwrap();
        assert_eq!(init.request as u32, 0x4020_AEAE);
        let run = IOCTLS.iter().find(|i| i.name == "KVM_RUN").unwrap();
        assert_eq!(run.request as u32, 0xAE80);
    }
}
