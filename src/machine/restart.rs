//! Restart in place: run a guest again and again on one VM and its vCPUs, every run starting
//! from exactly the state a fresh VM would, for a small fraction of what a new VM costs
//! (`docs/BACKEND.md`, "Measured costs").
//!
//! ```text
//! once, after the image is loaded (Machine::restart_point):
//!   slot created with KVM_MEM_LOG_DIRTY_PAGES            MachineConfig::restartable
//!   ioctl(vm, KVM_GET_DIRTY_LOG, &{ slot, bitmap })      arms the log: forgets earlier writes
//!   copy every page of the slot                          the pristine image (zero pages: none)
//!   ioctl(vcpu, KVM_GET_SREGS / KVM_GET_REGS / KVM_GET_VCPU_EVENTS)   each vCPU's entry
//!   the user-space 8259 pair's registers (--irqchip user)
//!   RestartScope::Full only:
//!     ioctl(kvm, KVM_GET_MSR_INDEX_LIST)                 the MSRs to keep (less IA32_TSC), and
//!                                                        the unlisted ones a guest can write
//!     ioctl(vcpu, KVM_GET_XSAVE), KVM_GET_XCRS (KVM_CAP_XCRS), KVM_GET_DEBUGREGS
//!     ioctl(vcpu, KVM_GET_MSRS), then KVM_SET_MSRS of the same values: the kernel stops at
//!       the first MSR it refuses and returns the count; that MSR is dropped, the rest retried
//!     with an in-kernel irqchip: KVM_GET_LAPIC, KVM_GET_MP_STATE (per vCPU),
//!       ioctl(vm, KVM_GET_IRQCHIP) x3 (PIC master, slave, IOAPIC), KVM_GET_PIT2
//!     ioctl(vm, KVM_GET_CLOCK)
//! after each run (Machine::restart):
//!   if the run ended right after an I/O or MMIO exit:    (not after HLT, a fault or a stop)
//!     run->immediate_exit = 1; ioctl(vcpu, KVM_RUN)      the kernel finishes the instruction,
//!     == -1 EINTR; run->immediate_exit = 0                 then returns before the guest runs
//!   ioctl(vm, KVM_GET_DIRTY_LOG, &{ slot, bitmap })      the pages the guest wrote since
//!   copy those pages back from the pristine image        host writes are not logged
//!   RestartScope::Full, the VM first (its timers must stop before the vCPUs are set):
//!     ioctl(vm, KVM_SET_PIT2)                            stops (or restarts) the PIT's timer
//!     ioctl(vm, KVM_SET_IRQCHIP) x3                      what the PIT or a device had raised
//!     ioctl(vm, KVM_SET_CLOCK, flags 0)                  the kvmclock reads as at the capture
//!   for each vCPU:
//!     run->s.regs.{sregs,regs,events} = entry            KVM_CAP_SYNC_REGS: no system call;
//!     run->kvm_dirty_regs |= SREGS | REGS | EVENTS         the next KVM_RUN loads them
//!       (or KVM_SET_SREGS + KVM_SET_REGS now and KVM_SET_VCPU_EVENTS last, without sync regs
//!        or when asked)
//!     RestartScope::Full:
//!       ioctl(vcpu, KVM_SET_XSAVE)                       x87, MMX, SSE, AVX
//!       ioctl(vcpu, KVM_SET_XCRS)                        XCR0 (KVM_CAP_XCRS)
//!       ioctl(vcpu, KVM_SET_MSRS)                        every MSR kept at the capture
//!       ioctl(vcpu, KVM_SET_DEBUGREGS)                   DR0-DR3, DR6, DR7
//!       ioctl(vcpu, KVM_SET_LAPIC), KVM_SET_MP_STATE     with an in-kernel irqchip
//!     run->request_interrupt_window = 1 if an interrupt  the vector queued at capture (the
//!       was queued at capture                            guest's irq= setup) waits again
//!   the user-space 8259 pair's registers (--irqchip user) put back
//! ```
//!
//! **What each scope puts back.** Both: every page of every writable slot; the general
//! registers with RIP and RFLAGS (so a guest that ended on `hlt` starts at its entry again);
//! the segment, control and descriptor-table registers (EFER, the segment bases and APIC_BASE
//! among them); the pending events (exceptions, interrupts, NMIs, the interrupt shadow); the
//! interrupt rawkvm had queued for the guest's interrupt window ([`Vcpu::queue_interrupt`]);
//! the user-space 8259 pair's registers. [`RestartScope::Full`] (what `--repeat` uses) adds
//! the XSAVE area, XCR0, the MSRs, the debug registers, the kvmclock and, with an in-kernel
//! irqchip, each local APIC and MP state, the PICs, the IOAPIC and the PIT.
//! [`RestartScope::Registers`] is for guests known to leave those alone: with sync regs it
//! makes no vCPU system call but the `KVM_RUN` itself.
//!
//! **Why the scope exists.** On `kvm_pvm` every vCPU ioctl costs about 6.5 µs whatever it
//! carries (`KVM_SET_MSRS` of 49 MSRs costs what one costs, and a refused one as much), as much as a whole `KVM_RUN` that enters the guest and exits, while the VM ioctls
//! (`KVM_SET_IRQCHIP`, `KVM_SET_PIT2`, `KVM_SET_CLOCK`) cost 0.1-0.3 µs. A registers-only
//! restart of `hlt` is one `KVM_RUN` and one `KVM_GET_DIRTY_LOG`, about 8 µs; the full one
//! adds four vCPU ioctls (six with an in-kernel irqchip), about 37 µs: some 20 times faster
//! than a new VM instead of some 90 (`docs/BACKEND.md`, "Measured costs"; `rawkvm bench suite
//! --workload restart`). [`Restored::vcpu_ioctls`] counts them.
//!
//! **Why the full restore is unconditional.** What is skipped is what provably cannot have
//! changed: without an in-kernel irqchip there is no local APIC, PIC, IOAPIC or PIT, and the
//! MP state stays runnable (`hlt` exits to user space instead of halting in the kernel, and
//! `KVM_SET_MP_STATE` refuses anything else then), so none of those is read or set. The rest
//! changes without telling user space: `fxrstor`, `xsetbv`, `wrmsr` and `mov drN` are handled
//! in the kernel (or by the CPU) and never exit, and nothing user space can read without a
//! vCPU ioctl (`kvm_run.s.regs`, the statistics fds) records that they ran. Knowing would
//! cost what restoring costs: a `KVM_GET_*` is as dear as the `KVM_SET_*` it would save. An MSR filter
//! (`KVM_X86_SET_MSR_FILTER`) could make every guest `wrmsr` exit, but then user space would
//! have to perform each write with a host-initiated `KVM_SET_MSRS` (whose checks differ from a
//! guest write's), and `swapgs` changes IA32_KERNEL_GS_BASE without any `wrmsr`. Nor can
//! XCR0 be ruled out by CPUID: on `kvm_pvm` the kernel ORs the host's XSAVE bit into leaf 1,
//! so every guest may `xsetbv`.
//!
//! **The MSRs.** The full scope keeps every MSR of `KVM_GET_MSR_INDEX_LIST` except IA32_TSC,
//! plus those a guest can write that the list leaves out (IA32_SPEC_CTRL, IA32_TSC_AUX, the
//! MTRRs; IA32_APIC_BASE too with an in-kernel LAPIC, which must find it back before
//! `KVM_SET_LAPIC`), and of those only the ones this kernel reads and takes back: the trial
//! write at the capture finds the refused ones ([`RestartPoint::unrestored_msrs`] lists the
//! listed MSRs dropped). A write the kernel refuses at a restore all the same is an error
//! (the restart fails), never silently skipped. EFER and the FS/GS bases are not among them: `kvm_sregs` carries them, and
//! writing EFER before the control registers are back could be refused.
//!
//! **What is not restored.** The TSC: on `kvm_pvm` the guest TSC is the host's and writes to
//! IA32_TSC are ignored, and elsewhere a host write would move the guest's TSC backwards at
//! every restart; it counts on across runs (IA32_TSC_ADJUST is restored as a value only). Line
//! levels the host itself asserted with `KVM_IRQ_LINE` (the kernel's per-source line state is
//! not in `kvm_irqchip`): lowering them is the host's business. A PIT that was running at the
//! restart point starts counting again from the restore. Host-side device state: the caller
//! owns its [`crate::devices::IoHandler`] and resets it as it sees fit. Guest memory that a
//! device writes from the host is not in the dirty log either; rawkvm's devices never write
//! guest memory.
//!
//! A run must have ended before a restore: halted, stopped, faulted, or failed while handling an
//! exit. In the last case the kernel still has the instruction half done: an IN or MMIO read
//! gets its value into RAX and RIP moves past it only at the next `KVM_RUN` (api.rst), which
//! would land on top of the restored registers (with sync regs the kernel even loads them
//! first). So a restore first re-enters such a vCPU once with `immediate_exit` set, which
//! completes the instruction without running the guest on (`Vcpu::complete_pending_operation`;
//! a string instruction that needs more I/O may take a few entries, and one that does not
//! finish is [`RestartError::PendingOperation`]); after `hlt`, a fault or a stop (where `EINTR`
//! has already completed pending I/O) this costs nothing.

use std::sync::Arc;

use rawkvm_bindings::{
    self as abi, MemoryRegionFlags, kvm_clock_data, kvm_debugregs, kvm_irqchip, kvm_lapic_state,
    kvm_mp_state, kvm_pit_state2, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
};

use crate::arch::x86_64::msr::Msr;
use crate::arch::x86_64::msr_names::IA32_TSC;
use crate::arch::x86_64::sync_regs::SyncRegs;
use crate::devices::pic::{Pair, UserPic};
use crate::error::{CpuError, Error, RestartError};
use crate::kvm::Kvm;
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::DirtyLogError;
use crate::kvm::vm::Vm;
use crate::machine::Machine;
use crate::sys::ioctl::{dirty_bitmap_words, vm};
use crate::sys::memory::Mapping;
use crate::sys::memory::page_size;

/// `IA32_APIC_BASE`: in `kvm_sregs` too, but the LAPIC restore needs it back first.
const IA32_APIC_BASE: u32 = 0x1b;

/// MSRs a guest can write that `KVM_GET_MSR_INDEX_LIST` leaves out (QEMU saves them too):
/// IA32_SPEC_CTRL, IA32_TSC_AUX (what `rdtscp` returns), the MTRRs (default type, the eleven
/// fixed ones, eight variable pairs: as many as IA32_MTRRCAP says here). Those a kernel does
/// not handle are dropped at the capture.
fn unlisted_msrs() -> impl Iterator<Item = u32> {
    [0x48, 0xc000_0103, 0x2ff, 0x250, 0x258, 0x259]
        .into_iter()
        .chain(0x268..=0x26f)
        .chain(0x200..=0x20f)
}

/// 64-bit words in a host page (4 KiB on x86, up to 64 KiB elsewhere): the dirty log's grain.
fn page_words() -> usize {
    page_size() / size_of::<u64>()
}

/// How a restore puts the registers back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterReset {
    /// In place in `kvm_run.s.regs`, marked in `kvm_dirty_regs` (`KVM_CAP_SYNC_REGS`): no
    /// system call; the next `KVM_RUN` loads them.
    SyncRegs,
    /// `KVM_SET_SREGS`, `KVM_SET_REGS` and `KVM_SET_VCPU_EVENTS`: three system calls per vCPU.
    Ioctls,
}

impl RegisterReset {
    /// The short name used by `rawkvm bench` (`sync-regs`, `ioctl`).
    pub fn name(self) -> &'static str {
        match self {
            RegisterReset::SyncRegs => "sync-regs",
            RegisterReset::Ioctls => "ioctl",
        }
    }
}

/// What a restore puts back besides memory (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartScope {
    /// Everything a run can change that the kernel lets user space set back: registers,
    /// events, FPU/XSAVE, XCR0, MSRs, debug registers, kvmclock, the in-kernel LAPIC, MP
    /// state, PICs, IOAPIC and PIT, the user-space 8259 pair.
    #[default]
    Full,
    /// Registers, events, the queued interrupt and the user-space 8259 pair only: for guests
    /// known not to touch the FPU, MSRs, debug registers or the in-kernel irqchip. With sync
    /// regs, no vCPU system call besides `KVM_RUN`.
    Registers,
}

impl RestartScope {
    /// The name `--restart-scope` takes (`full`, `registers`).
    pub fn name(self) -> &'static str {
        match self {
            RestartScope::Full => "full",
            RestartScope::Registers => "registers",
        }
    }

    /// The scope called `name`, or a message naming the choices.
    pub fn parse(name: &str) -> Result<RestartScope, String> {
        match name {
            "full" => Ok(RestartScope::Full),
            "registers" => Ok(RestartScope::Registers),
            _ => Err(format!(
                "unknown restart scope {name:?}; choose full or registers"
            )),
        }
    }
}

/// One vCPU's state at the entry: what a run can change besides memory.
#[derive(Debug, Clone)]
struct EntryRegisters {
    id: u32,
    regs: kvm_regs,
    sregs: kvm_sregs,
    /// Pending exceptions, interrupts, NMIs and the interrupt shadow.
    events: kvm_vcpu_events,
    /// [`Vcpu::queue_interrupt`]'s vector (the guest's `irq=` setup), queued again at every
    /// restore: a run that took it must not leave the next one waiting forever.
    queued_interrupt: Option<u8>,
    /// The rest of the vCPU, with [`RestartScope::Full`].
    cpu: Option<EntryCpu>,
}

/// The vCPU state beyond the registers that [`RestartScope::Full`] puts back.
#[derive(Debug, Clone)]
struct EntryCpu {
    /// x87, MMX, SSE, AVX: a run that used the FPU must not leave it to the next.
    xsave: Box<kvm_xsave>,
    /// XCR0, with `KVM_CAP_XCRS`.
    xcrs: Option<kvm_xcrs>,
    /// The MSRs the kernel takes back, in the order they are written.
    msrs: Vec<Msr>,
    debugregs: kvm_debugregs,
    /// The in-kernel local APIC and the MP state, with an in-kernel irqchip.
    lapic: Option<(Box<kvm_lapic_state>, kvm_mp_state)>,
}

/// The VM state [`RestartScope::Full`] puts back.
#[derive(Debug, Clone)]
struct EntryVm {
    clock: kvm_clock_data,
    /// PIC master, PIC slave, IOAPIC, with an in-kernel irqchip.
    irqchip: Option<[kvm_irqchip; 3]>,
    pit: Option<kvm_pit_state2>,
}

/// A slot's pristine contents, page by page; `None` for a page that was all zeros.
#[derive(Debug)]
struct SlotImage {
    slot: u32,
    guest_phys_addr: u64,
    mapping: Arc<Mapping>,
    pages: Vec<Option<Box<[u64]>>>,
}

/// What one restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    /// Pages the guest had written, now copied back.
    pub dirty_pages: usize,
    /// vCPU ioctls the restore made (each ~6.5 µs on `kvm_pvm`), not counting a `KVM_RUN`
    /// that finished an instruction left half done.
    pub vcpu_ioctls: usize,
}

/// The state a machine restarts from: captured once, restored after every run.
#[derive(Debug)]
pub struct RestartPoint {
    scope: RestartScope,
    reset: RegisterReset,
    vcpus: Vec<EntryRegisters>,
    /// With [`RestartScope::Full`].
    vm: Option<EntryVm>,
    /// The user-space 8259 pair's registers, if the machine has one.
    user_pic: Option<Pair>,
    /// MSRs of the index list that are not restored, sorted.
    unrestored_msrs: Vec<u32>,
    slots: Vec<SlotImage>,
    /// Scratch for `KVM_GET_DIRTY_LOG`, sized for the largest slot.
    bitmap: Vec<u64>,
    /// What a page that started as zeros is restored from: one host page of zeros.
    zero_page: Box<[u64]>,
}

impl RestartPoint {
    /// Captures `machine`'s writable memory and vCPU state as they are now, and arms the
    /// dirty log. `reset` is how registers will be put back; [`RegisterReset::SyncRegs`] falls
    /// back to the ioctls when the kernel cannot sync `regs`, `sregs` and `events`.
    ///
    /// Every writable slot must log dirty pages; read-only slots are skipped (the guest
    /// cannot change them).
    fn capture(
        kvm: &Kvm,
        machine: &mut Machine,
        scope: RestartScope,
        reset: RegisterReset,
    ) -> Result<RestartPoint, Error> {
        let user_pic = machine.user_pic.as_deref().map(UserPic::registers);
        let (vm, vcpus) = machine.parts_mut();
        let writable = vm
            .memory()
            .regions()
            .iter()
            .filter(|region| !region.flags.contains(MemoryRegionFlags::READONLY));
        let mut slots = Vec::new();
        for region in writable {
            if !region.flags.contains(MemoryRegionFlags::LOG_DIRTY_PAGES) {
                return Err(RestartError::NotLogged { slot: region.slot }.into());
            }
            slots.push(SlotImage {
                slot: region.slot,
                guest_phys_addr: region.guest_phys_addr,
                mapping: Arc::clone(&region.mapping),
                pages: Vec::new(),
            });
        }
        let words = slots
            .iter()
            .map(|slot| dirty_bitmap_words(slot.mapping.len()))
            .max()
            .ok_or(RestartError::NothingLogged)?;
        let mut point = RestartPoint {
            scope,
            reset: Self::resolve(reset, vcpus),
            vcpus: Vec::with_capacity(vcpus.len()),
            vm: None,
            user_pic,
            unrestored_msrs: Vec::new(),
            slots,
            bitmap: vec![0; words],
            zero_page: vec![0; page_words()].into_boxed_slice(),
        };
        for slot in &mut point.slots {
            // Arm first, copy second: a page written in between would be logged, not lost.
            fetch_dirty_log(vm, slot.slot, &mut point.bitmap)?;
            slot.pages = pristine_pages(slot)?;
        }
        let full = scope == RestartScope::Full;
        let listed = if full {
            kvm.msr_index_list()?
        } else {
            Vec::new()
        };
        let has_xcrs = vm.check_extension(abi::KVM_CAP_XCRS) > 0;
        for vcpu in vcpus {
            let cpu = if full {
                Some(capture_cpu(
                    vcpu,
                    &listed,
                    has_xcrs,
                    &mut point.unrestored_msrs,
                )?)
            } else {
                None
            };
            let queued_interrupt = vcpu.queued_interrupt;
            let id = vcpu.id();
            let mut registers = vcpu.registers();
            point.vcpus.push(EntryRegisters {
                id,
                regs: registers.regs()?,
                sregs: registers.sregs()?,
                events: registers.events()?,
                queued_interrupt,
                cpu,
            });
        }
        if full {
            point.vm = Some(capture_vm(vm)?);
        }
        point.unrestored_msrs.sort_unstable();
        point.unrestored_msrs.dedup();
        Ok(point)
    }

    /// `SyncRegs` if every vCPU's VM can sync the three sets, else `Ioctls`.
    fn resolve(wanted: RegisterReset, vcpus: &[Vcpu]) -> RegisterReset {
        let both = SyncRegs::REGS | SyncRegs::SREGS | SyncRegs::EVENTS;
        match wanted {
            RegisterReset::SyncRegs
                if vcpus
                    .iter()
                    .all(|vcpu| vcpu.supported_sync_regs().contains(both)) =>
            {
                RegisterReset::SyncRegs
            }
            _ => RegisterReset::Ioctls,
        }
    }

    /// How registers are put back (after the fallback, if the kernel lacked sync regs).
    pub fn register_reset(&self) -> RegisterReset {
        self.reset
    }

    /// What a restore puts back.
    pub fn scope(&self) -> RestartScope {
        self.scope
    }

    /// The MSRs of `KVM_GET_MSR_INDEX_LIST` a restore does not put back, sorted: IA32_TSC,
    /// and any the kernel refused to read or take back at the capture (none with
    /// [`RestartScope::Registers`], which restores no MSR at all).
    pub fn unrestored_msrs(&self) -> &[u32] {
        &self.unrestored_msrs
    }

    /// Puts `machine` (the one captured) back to the captured state: first finishes any
    /// instruction a vCPU's last run left half done (it could write registers and memory),
    /// then the pages the guest wrote, the VM's interrupt controllers and clock, the vCPUs,
    /// the user-space PIC.
    fn restore(&mut self, machine: &mut Machine) -> Result<Restored, Error> {
        let user_pic = machine.user_pic.clone();
        let (vm, vcpus) = machine.parts_mut();
        let same_vcpus = vcpus.len() == self.vcpus.len()
            && vcpus.iter().zip(&self.vcpus).all(|(v, e)| v.id() == e.id);
        if !same_vcpus {
            return Err(RestartError::OtherVcpus.into());
        }
        for vcpu in vcpus.iter_mut() {
            let id = vcpu.id();
            match vcpu.complete_pending_operation() {
                Ok(true) => {}
                Ok(false) => return Err(RestartError::PendingOperation { vcpu: id }.into()),
                Err(errno) => return Err(Error::Run { vcpu: id, errno }),
            }
        }
        let mut dirty_pages = 0;
        for slot in &self.slots {
            fetch_dirty_log(vm, slot.slot, &mut self.bitmap)?;
            dirty_pages += restore_dirty_pages(slot, &self.bitmap, &self.zero_page)?;
        }
        if let Some(entry) = &self.vm {
            restore_vm(vm, entry)?;
        }
        let mut vcpu_ioctls = 0;
        for (vcpu, entry) in vcpus.iter_mut().zip(&self.vcpus) {
            vcpu_ioctls += restore_vcpu(vcpu, entry, self.reset)?;
        }
        if let (Some(pic), Some(pair)) = (user_pic, self.user_pic) {
            pic.set_registers(pair);
        }
        Ok(Restored {
            dirty_pages,
            vcpu_ioctls,
        })
    }
}

/// The full scope's part of one vCPU; the listed MSRs dropped go to `unrestored`.
fn capture_cpu(
    vcpu: &Vcpu,
    listed: &[u32],
    has_xcrs: bool,
    unrestored: &mut Vec<u32>,
) -> Result<EntryCpu, Error> {
    let lapic = if vcpu.in_kernel_irqchip {
        vcpu.lapic()?
    } else {
        None
    };
    let lapic = match lapic {
        Some(lapic) => Some((lapic, vcpu.mp_state()?)),
        None => None,
    };
    if listed.contains(&IA32_TSC) {
        unrestored.push(IA32_TSC);
    }
    let apic_base = lapic.as_ref().map(|_| IA32_APIC_BASE);
    let mut indices: Vec<u32> = Vec::new();
    let wanted = apic_base
        .into_iter()
        .chain(listed.iter().copied().filter(|&index| index != IA32_TSC))
        .chain(unlisted_msrs());
    for index in wanted {
        if !indices.contains(&index) {
            indices.push(index);
        }
    }
    let mut drop_refused = |index: u32, indices: &mut Vec<u32>| {
        let before = indices.len();
        indices.retain(|&kept| kept != index);
        if listed.contains(&index) {
            unrestored.push(index);
        }
        before != indices.len()
    };
    // Read what the kernel lets us read, then write it straight back: what it refuses now it
    // would refuse at every restore.
    let mut msrs = loop {
        match vcpu.msrs(&indices) {
            Err(Error::Cpu(CpuError::MsrRefused { index, .. }))
                if drop_refused(index, &mut indices) => {}
            other => break other?,
        }
    };
    loop {
        match vcpu.set_msrs(&msrs) {
            Err(Error::Cpu(CpuError::MsrRefused { index, .. }))
                if drop_refused(index, &mut indices) =>
            {
                msrs.retain(|msr| msr.index != index);
            }
            other => break other?,
        }
    }
    Ok(EntryCpu {
        xsave: vcpu.xsave()?,
        xcrs: if has_xcrs { Some(vcpu.xcrs()?) } else { None },
        msrs,
        debugregs: vcpu.debugregs()?,
        lapic,
    })
}

/// The full scope's part of the VM: the kvmclock and, with an in-kernel irqchip, its chips.
fn capture_vm(vm: &Vm) -> Result<EntryVm, Error> {
    let irqchip = if vm.has_irqchip() {
        let chips = [
            vm.irqchip(abi::KVM_IRQCHIP_PIC_MASTER)?,
            vm.irqchip(abi::KVM_IRQCHIP_PIC_SLAVE)?,
            vm.irqchip(abi::KVM_IRQCHIP_IOAPIC)?,
        ];
        match chips {
            [Some(master), Some(slave), Some(ioapic)] => Some([master, slave, ioapic]),
            _ => None,
        }
    } else {
        None
    };
    Ok(EntryVm {
        clock: vm.clock()?,
        irqchip,
        pit: vm.pit()?,
    })
}

/// The PIT first (its timer stops, or restarts as captured, and its pending tick is flushed),
/// so nothing raises a line after the chips are back; then the chips, then the clock.
fn restore_vm(vm: &Vm, entry: &EntryVm) -> Result<(), Error> {
    if let Some(pit) = &entry.pit {
        vm.set_pit(pit)?;
    }
    for chip in entry.irqchip.iter().flatten() {
        vm.set_irqchip(chip)?;
    }
    vm.set_clock(&entry.clock)
}

/// Puts one vCPU back; returns how many vCPU ioctls that took.
fn restore_vcpu(
    vcpu: &mut Vcpu,
    entry: &EntryRegisters,
    reset: RegisterReset,
) -> Result<usize, Error> {
    let mut ioctls = 0;
    match reset {
        RegisterReset::SyncRegs => {
            let mut registers = vcpu.registers();
            registers.set_in_place(&entry.sregs);
            registers.set_in_place(&entry.regs);
            registers.set_in_place(&entry.events);
        }
        RegisterReset::Ioctls => {
            vcpu.set_sregs(&entry.sregs)?;
            vcpu.set_regs(&entry.regs)?;
            ioctls += 2;
        }
    }
    if let Some(cpu) = &entry.cpu {
        // The snapshot restore's order: FPU, XCR0, MSRs (APIC_BASE before the LAPIC), then
        // the LAPIC and MP state; the debug registers depend on nothing.
        vcpu.set_xsave(&cpu.xsave)?;
        ioctls += 1;
        if let Some(xcrs) = &cpu.xcrs {
            vcpu.set_xcrs(xcrs)?;
            ioctls += 1;
        }
        if !cpu.msrs.is_empty() {
            vcpu.set_msrs(&cpu.msrs)?;
            ioctls += 1;
        }
        vcpu.set_debugregs(&cpu.debugregs)?;
        ioctls += 1;
        if let Some((lapic, mp_state)) = &cpu.lapic {
            vcpu.set_lapic(lapic)?;
            vcpu.set_mp_state(mp_state)?;
            ioctls += 2;
        }
    }
    if reset == RegisterReset::Ioctls {
        // Last, as in the snapshot restore: after the LAPIC, which events may refer to.
        vcpu.set_events(&entry.events)?;
        ioctls += 1;
    }
    vcpu.requeue_interrupt(entry.queued_interrupt);
    Ok(ioctls)
}

/// `KVM_GET_DIRTY_LOG` of `slot` into `bitmap`.
fn fetch_dirty_log(vm: &Vm, slot: u32, bitmap: &mut [u64]) -> Result<(), Error> {
    vm.get_dirty_log(slot, bitmap).map_err(|error| match error {
        DirtyLogError::Ioctl(errno) => Error::Ioctl {
            ioctl: vm::GET_DIRTY_LOG,
            errno,
        },
        DirtyLogError::UnknownSlot(_) | DirtyLogError::BitmapTooSmall { .. } => {
            RestartError::DirtyBitmap { slot }.into()
        }
    })
}

/// The error for a page of `slot` the mapping refused (slots are whole pages, so never).
fn page_outside(slot: &SlotImage, page: usize) -> Error {
    Error::GuestMemoryRange {
        guest_phys_addr: slot.guest_phys_addr + (page * page_size()) as u64,
        len: page_size() as u64,
    }
}

/// Reads every page of `slot`, keeping only those that are not all zeros.
fn pristine_pages(slot: &SlotImage) -> Result<Vec<Option<Box<[u64]>>>, Error> {
    let page = page_size();
    let mut buffer = vec![0u64; page_words()];
    (0..slot.mapping.len() / page)
        .map(|index| {
            slot.mapping
                .read_words(index * page, &mut buffer)
                .map_err(|_| page_outside(slot, index))?;
            Ok(buffer
                .iter()
                .any(|&word| word != 0)
                .then(|| Box::from(&buffer[..])))
        })
        .collect()
}

/// Copies back every page `bitmap` marks in `slot` (a page that started as zeros from
/// `zero_page`); bits past the slot's end are ignored.
fn restore_dirty_pages(
    slot: &SlotImage,
    bitmap: &[u64],
    zero_page: &[u64],
) -> Result<usize, Error> {
    let words = dirty_bitmap_words(slot.mapping.len()).min(bitmap.len());
    let mut restored = 0;
    for (word_index, &word) in bitmap[..words].iter().enumerate() {
        let mut bits = word;
        while bits != 0 {
            let page = word_index * 64 + bits.trailing_zeros() as usize;
            bits &= bits - 1;
            let Some(image) = slot.pages.get(page) else {
                continue;
            };
            let source = image.as_deref().unwrap_or(zero_page);
            slot.mapping
                .write_words(page * page_size(), source)
                .map_err(|_| page_outside(slot, page))?;
            restored += 1;
        }
    }
    Ok(restored)
}

impl Machine {
    /// Captures this machine's state as a [`RestartPoint`] (build it with
    /// [`crate::machine::MachineConfig::restartable`]): what `scope` restores, registers put
    /// back as `reset` says. `kvm` gives the MSR index list ([`RestartScope::Full`]).
    pub fn restart_point(
        &mut self,
        kvm: &Kvm,
        scope: RestartScope,
        reset: RegisterReset,
    ) -> Result<RestartPoint, Error> {
        RestartPoint::capture(kvm, self, scope, reset)
    }

    /// Puts this machine back to `point`, ready to run again.
    pub fn restart(&mut self, point: &mut RestartPoint) -> Result<Restored, Error> {
        point.restore(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvm::Kvm;
    use crate::kvm::vm::DirtyLogError;
    use crate::kvm::vm::MemoryRegion;

    #[test]
    fn dirty_bitmaps_have_one_bit_per_page_in_whole_words() {
        assert_eq!(dirty_bitmap_words(0), 0);
        assert_eq!(dirty_bitmap_words(4096), 1);
        assert_eq!(dirty_bitmap_words(64 * 4096), 1);
        assert_eq!(dirty_bitmap_words(65 * 4096), 2);
        assert_eq!(dirty_bitmap_words(1 << 20), 4);
        assert_eq!(
            dirty_bitmap_words(4097),
            1,
            "a partial page still needs its bit"
        );
    }

    #[test]
    #[cfg_attr(miri, ignore = "opens /dev/kvm")]
    fn the_dirty_log_is_refused_before_the_kernel_for_unknown_slots_and_short_bitmaps() {
        if !std::path::Path::new("/dev/kvm").exists() {
            println!("SKIPPED: /dev/kvm unavailable (dirty log refusals)");
            return;
        }
        let kvm = Kvm::open().unwrap();
        let mut vm = kvm.create_vm().unwrap();
        for (slot, guest_phys_addr, flags) in [
            (0, 0, MemoryRegionFlags::LOG_DIRTY_PAGES),
            (1, 1 << 20, MemoryRegionFlags::empty()),
        ] {
            let region = MemoryRegion {
                slot,
                guest_phys_addr,
                size: 65 * 4096,
                flags,
            };
            vm.add_memory_region(region).unwrap();
        }
        let mut bitmap = [u64::MAX; 2];
        assert_eq!(vm.get_dirty_log(0, &mut bitmap), Ok(()));
        assert_eq!(
            bitmap,
            [0, 0],
            "nothing written yet; the kernel wrote both words"
        );
        assert_eq!(
            vm.get_dirty_log(0, &mut bitmap[..1]),
            Err(DirtyLogError::BitmapTooSmall {
                needed: 2,
                given: 1
            })
        );
        assert_eq!(
            vm.get_dirty_log(7, &mut bitmap),
            Err(DirtyLogError::UnknownSlot(7))
        );
        assert_eq!(
            vm.get_dirty_log(1, &mut bitmap),
            Err(DirtyLogError::Ioctl(nix::errno::Errno::ENOENT)),
            "a slot that does not log"
        );
    }
}
