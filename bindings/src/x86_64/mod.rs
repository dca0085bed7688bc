//! x86-64: `<asm/kvm.h>` (arch/x86/include/uapi/asm/kvm.h), the x86 build of `struct kvm_run`,
//! and the x86 ioctls.
//!
//! This module compiles on every host (nothing in it is `cfg`-gated), so its layouts can be
//! checked anywhere; the crate root re-exports it only on x86-64 hosts. Request codes are
//! computed in x86's (generic) ioctl encoding whatever the host.

mod cpuid_msrs;
mod ioctls;
mod irq;
mod regs;
mod state;

pub use cpuid_msrs::*;
pub use ioctls::*;
pub use irq::*;
pub use regs::*;
pub use state::*;

use crate::common::run::kvm_run;
use crate::ioctls::IoctlEncoding;
use crate::layout::StructLayout;
use crate::names::named_constants;

kvm_run! {
    debug_arch: kvm_debug_exit_arch (size 32, align 8),
    sync_regs: kvm_sync_regs (align 8),
    fields_before_exit {},
    exit at 32, kvm_valid_regs at 288, kvm_dirty_regs at 296, s at 304, size 2352,
}

named_constants! {
    /// Pages of the vCPU mapping (`mmap(vcpu_fd)`) after `kvm_run` at page 0.
    pub const VCPU_MMAP_PAGE_OFFSETS: [usize];
    /// The data of `KVM_EXIT_IO` (`io.data_offset` points into it).
    KVM_PIO_PAGE_OFFSET = 1,
    /// The coalesced-MMIO ring (`kvm_coalesced_mmio_ring`).
    KVM_COALESCED_MMIO_PAGE_OFFSET = 2,
    /// The first page of the dirty ring (`KVM_CAP_DIRTY_LOG_RING`).
    KVM_DIRTY_LOG_PAGE_OFFSET = 64,
}

named_constants! {
    /// `kvm_run.flags` bits on x86.
    pub const X86_RUN_FLAGS: [u16];
    /// The vCPU is in system-management mode.
    KVM_RUN_X86_SMM = 1 << 0,
    /// The exit follows a bus lock (`KVM_CAP_X86_BUS_LOCK_EXIT`).
    KVM_RUN_X86_BUS_LOCK = 1 << 1,
    /// The vCPU is running a nested guest (`KVM_CAP_X86_GUEST_MODE`).
    KVM_RUN_X86_GUEST_MODE = 1 << 2,
}

/// Layouts of the x86 structs, `kvm_run` first.
const X86_STRUCT_LAYOUTS: &[StructLayout] = &crate::layout::concat::<
    StructLayout,
    { X86_REGISTER_LAYOUTS.len() + state::X86_STATE_LAYOUTS.len() },
>(X86_REGISTER_LAYOUTS, &state::X86_STATE_LAYOUTS);

/// Layouts of the x86 run page, register, CPUID and MSR structs.
const X86_REGISTER_LAYOUTS: &[StructLayout] = &[
    kvm_run::LAYOUT,
    kvm_regs::LAYOUT,
    kvm_segment::LAYOUT,
    kvm_dtable::LAYOUT,
    kvm_sregs::LAYOUT,
    kvm_fpu::LAYOUT,
    kvm_vcpu_events::LAYOUT,
    kvm_sync_regs::LAYOUT,
    kvm_debug_exit_arch::LAYOUT,
    kvm_guest_debug_arch::LAYOUT,
    kvm_guest_debug::LAYOUT,
    kvm_cpuid_entry2::LAYOUT,
    kvm_cpuid2::LAYOUT,
    kvm_msr_entry::LAYOUT,
    kvm_msrs::LAYOUT,
    kvm_msr_list::LAYOUT,
    kvm_msr_filter_range::LAYOUT,
    kvm_msr_filter::LAYOUT,
    kvm_pit_config::LAYOUT,
];

crate::arches::arch_tables!(
    "x86-64",
    target_arch = "x86_64",
    IoctlEncoding::Generic,
    X86_STRUCT_LAYOUTS,
    X86_ALL_IOCTLS
);

/// The x86 ioctls: registers, CPUID, MSRs, then machine state.
const X86_ALL_IOCTLS: &[crate::ioctls::IoctlInfo] = &crate::layout::concat::<
    crate::ioctls::IoctlInfo,
    { X86_IOCTLS.len() + X86_STATE_IOCTLS.len() },
>(X86_IOCTLS, X86_STATE_IOCTLS);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ioctls::COMMON_IOCTLS;

    #[test]
    fn kvm_run_layout_has_the_exit_members() {
        let run = &kvm_run::LAYOUT;
        assert_eq!((run.size, run.align), (2352, 8));
        let offset = |name: &str| run.field(name).unwrap().offset;
        assert_eq!(offset("immediate_exit"), 1);
        assert_eq!(offset("io"), 32);
        assert_eq!(offset("io.data_offset"), 40);
        assert_eq!(offset("mmio.len"), 48);
        assert_eq!(offset("internal.ndata"), 36);
        assert_eq!(offset("system_event.data"), 40);
        assert_eq!(offset("hypercall.flags"), 96);
        assert_eq!(offset("debug.arch"), 32);
        assert_eq!(offset("tdx.get_quote.size"), 64);
        assert_eq!(offset("kvm_valid_regs"), 288);
        assert_eq!(offset("s.regs"), 304);
    }

    #[test]
    fn since_marks_fields_newer_than_6_1() {
        let run = &kvm_run::LAYOUT;
        let since = |name: &str| run.field(name).unwrap().since;
        assert_eq!(since("io.port"), None);
        assert_eq!(since("memory_fault"), Some("6.8"));
        assert_eq!(since("memory_fault.gpa"), Some("6.8"));
        assert_eq!(since("hypercall.longmode"), None);
        assert_eq!(since("hypercall.flags"), Some("6.4"));
        assert_eq!(since("tdx.get_quote.gpa"), Some("6.16"));
        assert_eq!(since("arm_sea.esr"), Some("6.19"));
    }

    #[test]
    fn ioctls_are_grouped_by_level() {
        assert!(
            IOCTLS
                .windows(2)
                .all(|pair| pair[0].level.rank() <= pair[1].level.rank())
        );
        assert_eq!(IOCTLS[0].name, "KVM_GET_API_VERSION");
        assert_eq!(
            IOCTLS.len(),
            COMMON_IOCTLS.len() + X86_IOCTLS.len() + X86_STATE_IOCTLS.len()
        );
    }

    #[test]
    fn zeroed_values() {
        use crate::layout::Zeroed;
        assert_eq!(kvm_sregs::ZERO.interrupt_bitmap, [0; 4]);
        assert_eq!(kvm_regs::default(), kvm_regs::ZERO);
        assert_eq!(kvm_run::ZERO.exit_reason, 0);
    }
}
