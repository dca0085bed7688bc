//! What a [`Snapshot`] holds: every vCPU's state, the VM's (memory, interrupt controllers,
//! clock), and the host-side devices', as the kernel's own structs.

use rawkvm_bindings::{
    kvm_clock_data, kvm_cpuid_entry2, kvm_debugregs, kvm_irqchip, kvm_lapic_state, kvm_mp_state,
    kvm_pit_state2, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};

use crate::arch::x86_64::msr::Msr;

use crate::devices::WriteOnlyZone;
use crate::devices::pic::Pair;
use crate::machine::VmSettings;

/// A whole stopped machine: enough to build a new VM that continues where this one stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// Where it was taken.
    pub origin: Origin,
    /// Every vCPU, by ascending id.
    pub vcpus: Vec<VcpuState>,
    /// Memory, interrupt controllers, PIT and clock.
    pub vm: VmState,
    /// The host-side devices.
    pub devices: DeviceState,
}

/// The machine a snapshot was taken on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// `target_arch`: `x86_64`.
    pub arch: String,
    /// The rawkvm version that wrote it.
    pub rawkvm_version: String,
    /// The KVM backend module (`kvm_intel`, `kvm_amd`, `kvm_pvm`), or `unknown`.
    pub backend: String,
    /// The host page size, the grain of the memory runs.
    pub page_size: u32,
}

/// One vCPU.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VcpuState {
    /// The vCPU id (`KVM_CREATE_VCPU`'s argument).
    pub id: u32,
    /// General registers, RIP, RFLAGS.
    pub regs: kvm_regs,
    /// Segment, control and descriptor-table registers.
    pub sregs: kvm_sregs,
    /// x87, SSE and the other XSAVE components (`KVM_GET_XSAVE`), which also hold what
    /// `KVM_GET_FPU` would.
    pub xsave: Box<kvm_xsave>,
    /// Extended control registers (XCR0), when the kernel has `KVM_CAP_XCRS`.
    pub xcrs: Option<kvm_xcrs>,
    /// The in-kernel local APIC, when the VM has an in-kernel irqchip.
    pub lapic: Option<Box<kvm_lapic_state>>,
    /// Pending and injected exceptions, interrupts, NMIs; the interrupt shadow.
    pub events: kvm_vcpu_events,
    /// Runnable, halted, waiting for INIT/SIPI.
    pub mp_state: kvm_mp_state,
    /// DR0-DR3, DR6, DR7 as the guest set them.
    pub debugregs: kvm_debugregs,
    /// The CPUID table (`KVM_GET_CPUID2`; empty if none was ever set).
    pub cpuid: Vec<kvm_cpuid_entry2>,
    /// Every MSR of `KVM_GET_MSR_INDEX_LIST` with its value (`KVM_GET_MSRS`).
    pub msrs: Vec<Msr>,
    /// The vector rawkvm was waiting to inject at the guest's next interrupt window (user
    /// space's interrupt queue, without an in-kernel irqchip).
    pub queued_interrupt: Option<u8>,
    /// Whether the vCPU's mode installed rawkvm's exception stub (`--mode long|user`), so a
    /// halt in it is reported as the guest's CPU exception (status 6). Host-side: the kernel
    /// knows nothing of it.
    pub exception_stub: bool,
}

/// The VM: memory slots and the in-kernel devices.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmState {
    /// Every memory slot, by ascending guest physical address.
    pub slots: Vec<SlotState>,
    /// The in-kernel PICs and IOAPIC, when the VM has them (`KVM_CREATE_IRQCHIP`).
    pub irqchip: Option<IrqchipState>,
    /// The in-kernel PIT, when the VM has one (`KVM_CREATE_PIT2`).
    pub pit: Option<kvm_pit_state2>,
    /// The kvmclock.
    pub clock: kvm_clock_data,
    /// What rawkvm enabled on the VM: user-space MSR exits, the guest TSC rate.
    pub settings: VmSettings,
}

/// One memory slot and its contents; pages that are all zero are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotState {
    /// The KVM slot number.
    pub slot: u32,
    /// First guest physical address.
    pub guest_phys_addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// `KVM_MEM_*` flags.
    pub flags: u32,
    /// The pages that are not all zero, in runs of consecutive pages, by ascending page.
    pub runs: Vec<PageRun>,
}

impl SlotState {
    /// Bytes of the slot's pages that are stored (not zero).
    pub fn stored_bytes(&self) -> u64 {
        self.runs
            .iter()
            .map(|run| (run.words.len() * size_of::<u64>()) as u64)
            .sum()
    }
}

/// Consecutive pages of a slot, none all zero.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRun {
    /// The first page's index in the slot.
    pub first_page: u64,
    /// The pages' contents as little-endian 64-bit words (page size / 8 words per page).
    pub words: Vec<u64>,
}

/// The three in-kernel interrupt controllers (`KVM_GET_IRQCHIP` each).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrqchipState {
    /// `KVM_IRQCHIP_PIC_MASTER`.
    pub pic_master: kvm_irqchip,
    /// `KVM_IRQCHIP_PIC_SLAVE`.
    pub pic_slave: kvm_irqchip,
    /// `KVM_IRQCHIP_IOAPIC`.
    pub ioapic: kvm_irqchip,
}

impl IrqchipState {
    /// The three chips in `chip_id` order.
    pub fn chips(&self) -> [&kvm_irqchip; 3] {
        [&self.pic_master, &self.pic_slave, &self.ioapic]
    }
}

/// Host-side device state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DeviceState {
    /// COM1's line control register (its only state: DLAB decides what port 0x3F8 is).
    pub serial_line_control: u8,
    /// The zones registered for coalescing (`KVM_REGISTER_COALESCED_MMIO`), registered again
    /// on restore.
    pub coalesced_zones: Vec<WriteOnlyZone>,
    /// The registers of the user-space 8259 pair (`--irqchip user`), when the machine has one.
    /// [`Machine::snapshot`](crate::machine::Machine::snapshot) fills it from the machine's
    /// own pair, whatever the caller passed.
    pub user_pic: Option<Pair>,
}
