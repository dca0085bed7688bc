//! RISC-V (64-bit): `<asm/kvm.h>` (arch/riscv/include/uapi/asm/kvm.h), the riscv build of
//! `struct kvm_run`, and the riscv ioctls.
//!
//! ```text
//! vm = ioctl(kvm, KVM_CREATE_VM, 0)                         no VM types on riscv
//! vcpu = ioctl(vm, KVM_CREATE_VCPU, id)                     starts in S-mode, paging off
//! ioctl(vcpu, KVM_SET_ONE_REG, &{ RISCV_REG_PC, &pc })      no KVM_SET_REGS on riscv
//! ioctl(vcpu, KVM_SET_ONE_REG, &{ RISCV_REG_A0, &hart })
//! ```
//!
//! Guests call the host through SBI (`KVM_EXIT_RISCV_SBI`) and reach devices through MMIO; a
//! guest asks for shutdown with SBI SRST, which KVM turns into `KVM_EXIT_SYSTEM_EVENT`.
//!
//! This module compiles on every host; the crate root re-exports it on riscv64 hosts.

mod regs;

pub use regs::*;

use crate::common::{kvm_interrupt, run::kvm_run};
use crate::ioctls::{IoctlEncoding, ioctls};
use crate::layout::StructLayout;
use crate::names::named_constants;

kvm_run! {
    debug_arch: kvm_debug_exit_arch (size 0, align 1),
    sync_regs: kvm_sync_regs (align 1),
    fields_before_exit {},
    exit at 32, kvm_valid_regs at 288, kvm_dirty_regs at 296, s at 304, size 2352,
}

named_constants! {
    /// Pages of the vCPU mapping after `kvm_run` at page 0.
    pub const VCPU_MMAP_PAGE_OFFSETS: [usize];
    /// The coalesced-MMIO ring.
    KVM_COALESCED_MMIO_PAGE_OFFSET = 1,
    /// The first page of the dirty ring.
    KVM_DIRTY_LOG_PAGE_OFFSET = 64,
}

ioctls! {
    arch = "riscv64";
    /// The riscv-only ioctls.
    pub const RISCV_IOCTLS;

    /// `ioctl(vcpu_fd, KVM_INTERRUPT, &irq)`: `KVM_INTERRUPT_SET` or `_UNSET` the vCPU's
    /// external interrupt (without an in-kernel AIA).
    KVM_INTERRUPT = _IOW(0x86, kvm_interrupt), Vcpu;
}

/// Layouts of the riscv structs, `kvm_run` first.
const RISCV_STRUCT_LAYOUTS: &[StructLayout] = &[
    kvm_run::LAYOUT,
    kvm_regs::LAYOUT,
    kvm_fpu::LAYOUT,
    kvm_sregs::LAYOUT,
    kvm_debug_exit_arch::LAYOUT,
    kvm_guest_debug_arch::LAYOUT,
    kvm_sync_regs::LAYOUT,
    user_regs_struct::LAYOUT,
    kvm_riscv_core::LAYOUT,
    kvm_riscv_config::LAYOUT,
    kvm_riscv_csr::LAYOUT,
    kvm_riscv_timer::LAYOUT,
];

crate::arches::arch_tables!(
    "riscv64",
    target_arch = "riscv64",
    IoctlEncoding::Generic,
    RISCV_STRUCT_LAYOUTS,
    RISCV_IOCTLS
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kvm_run_has_an_empty_debug_member() {
        let run = &kvm_run::LAYOUT;
        assert_eq!(run.size, 2352);
        assert_eq!(run.field("debug.arch").map(|f| f.size), Some(0));
        assert_eq!(
            run.field("riscv_sbi.extension_id").map(|f| f.offset),
            Some(32)
        );
    }

    #[test]
    fn core_register_ids_count_unsigned_longs() {
        assert_eq!(RISCV_REG_PC, 0x8030_0000_0200_0000);
        assert_eq!(RISCV_REG_A0, RISCV_REG_PC + 10);
        assert_eq!(RISCV_REG_MODE, RISCV_REG_PC + 32);
    }
}
