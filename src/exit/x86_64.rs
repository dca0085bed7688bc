//! x86-64's part of the decoder: `kvm_run.debug.arch`, which is `struct kvm_debug_exit_arch`
//! of `<asm/kvm.h>` and so has a different shape on every architecture.

use rawkvm_bindings::kvm_debug_exit_arch;

use crate::sys::run_page::RunPage;

nested_members! {
    "debug.arch", &kvm_debug_exit_arch::LAYOUT;
    DEBUG_EXCEPTION: Typed<u32> = "exception";
    DEBUG_PC: Typed<u64> = "pc";
    DEBUG_DR6: Typed<u64> = "dr6";
    DEBUG_DR7: Typed<u64> = "dr7";
}

/// DR6 bit 14 (BS): the debug exception came from single-stepping.
pub const DR6_SINGLE_STEP: u64 = 1 << 14;

/// `KVM_EXIT_DEBUG` on x86: which debug exception stopped the guest, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebugExit {
    /// 1 (#DB: hardware breakpoint, single step) or 3 (#BP: `int3`).
    pub exception: u32,
    /// Guest RIP, linear (CS base added).
    pub pc: u64,
    /// DR6: which breakpoint hit (bits 0-3), single step (bit 14).
    pub dr6: u64,
    /// DR7 as the guest debug state armed it.
    pub dr7: u64,
}

impl DebugExit {
    /// Which of DR0-DR3 matched (DR6 bits 0-3), if any.
    pub fn breakpoint(&self) -> Option<u8> {
        (0..4u8).find(|&i| self.dr6 & (1 << i) != 0)
    }

    /// Whether the exit is a single step (DR6.BS).
    pub fn single_step(&self) -> bool {
        self.dr6 & DR6_SINGLE_STEP != 0
    }
}

pub(super) fn decode_debug(page: &RunPage<'_>) -> DebugExit {
    DebugExit {
        exception: DEBUG_EXCEPTION.get(page),
        pc: DEBUG_PC.get(page),
        dr6: DEBUG_DR6.get(page),
        dr7: DEBUG_DR7.get(page),
    }
}
