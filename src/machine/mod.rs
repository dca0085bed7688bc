//! A whole machine: a VM with its RAM, the image loaded, and its vCPUs at the entry point.
//!
//! The conventions (see `asm-guests/README.md`): one slot of RAM at guest physical address 0
//! (1 MiB unless configured), the image at `0x1000`, a parameter block the host may fill at
//! `0x0F00`, and every vCPU entering in real mode at `0000:1000` with its index in `ESI`.
//! On x86 every vCPU gets `KVM_SET_CPUID2` before anything else (the supported table, the
//! hypervisor leaf naming rawkvm; see [`crate::arch::x86_64::cpu_setup`]), so a guest can
//! switch to long mode by itself.

pub mod elf;
pub mod guests;
pub mod image;
pub mod irq;
#[cfg(target_arch = "x86_64")]
pub mod modes;
pub mod reaper;
#[cfg(target_arch = "x86_64")]
pub mod restart;
pub mod supervisor;
pub mod trigger;

use std::sync::Arc;

use rawkvm_bindings::MemoryRegionFlags;

use crate::arch::{self, Entry};
use crate::devices::IoHandler;
use crate::devices::pic::{Pair, UserPic};
use crate::error::{ConfigError, Error};
use crate::kvm::Kvm;
use crate::kvm::vcpu::Vcpu;
use crate::kvm::vm::{MemoryRegion, Vm};
use crate::machine::image::Image;
use crate::machine::irq::IrqChip;
use crate::run_loop::{self, Observer, Outcome};
use crate::sys::memory::page_size;
use crate::units::{parse_size, parse_u64};

/// Default guest RAM: 1 MiB, all a real-mode guest can address below the HMA.
pub const DEFAULT_MEM_SIZE: u64 = 1 << 20;
/// Default load address of the image.
pub const DEFAULT_LOAD_ADDR: u64 = 0x1000;
/// Guest physical address of the parameter block the host fills before the run.
pub const PARAM_BLOCK: u64 = 0x0F00;
/// The most guest RAM a machine may have: 4 GiB, all a real-mode or 32-bit guest can address.
/// Larger sizes would cost the host without use: the RAM itself is reserved with
/// `MAP_NORESERVE` and costs nothing until touched, but KVM allocates kernel memory and set-up
/// time in proportion to the size of a memory slot (`docs/BACKEND.md`, "Measured costs").
pub const MAX_MEM_SIZE: u64 = 4 << 30;

/// An extra memory slot beyond RAM, pre-filled with one byte value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtraRegion {
    /// First guest physical address.
    pub guest_phys_addr: u64,
    /// Size in bytes.
    pub size: u64,
    /// Slot flags (e.g. `READONLY`).
    pub flags: MemoryRegionFlags,
    /// The byte every location starts as.
    pub fill: u8,
}

/// How to build a [`Machine`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineConfig {
    /// RAM size in bytes (slot 0, at guest physical address 0).
    pub mem_size: u64,
    /// Where the image is loaded.
    pub load_addr: u64,
    /// Where every vCPU starts.
    pub entry: Entry,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// A 32-bit value written at [`PARAM_BLOCK`] (for example a loop count).
    pub param: Option<u32>,
    /// Extra slots, numbered from 1.
    pub extra_regions: Vec<ExtraRegion>,
    /// Ask KVM to send accesses to MSRs it does not know to user space
    /// (`KVM_CAP_X86_USER_SPACE_MSR`) instead of injecting #GP.
    pub user_space_msr: bool,
    /// Inject this interrupt vector as soon as the guest can take one
    /// (`request_interrupt_window`, then `KVM_INTERRUPT`).
    pub inject_irq: Option<u8>,
    /// RAM logs the pages the guest writes (`KVM_MEM_LOG_DIRTY_PAGES`), so the machine can be
    /// restarted in place ([`crate::machine::restart`]).
    pub restartable: bool,
    /// The interrupt controller ([`crate::machine::irq`]): none unless the guest's setup or
    /// `--irqchip` asks.
    pub irqchip: IrqChip,
    /// CPUID and TSC set-up beyond the defaults (`--cpuid-vendor`, `--tsc-khz`); every vCPU
    /// gets `KVM_SET_CPUID2` whatever this holds.
    #[cfg(target_arch = "x86_64")]
    pub cpu: arch::x86_64::cpu_setup::CpuSetup,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            mem_size: DEFAULT_MEM_SIZE,
            load_addr: DEFAULT_LOAD_ADDR,
            entry: Entry::default(),
            vcpus: 1,
            param: None,
            extra_regions: Vec::new(),
            user_space_msr: false,
            inject_irq: None,
            restartable: false,
            irqchip: IrqChip::None,
            #[cfg(target_arch = "x86_64")]
            cpu: Default::default(),
        }
    }
}

impl MachineConfig {
    /// Applies a guest's `setup` line (see `asm-guests/README.md`): space-separated
    /// `mem=SIZE`, `readonly=GPA+SIZE:BYTE`, `param=N`, `vcpus=N`, `user-msr`, `irq=VECTOR`,
    /// `irqchip=kernel|user|none`.
    pub fn apply_setup(&mut self, setup: &str) -> Result<(), String> {
        for item in setup.split_whitespace() {
            let (key, value) = item.split_once('=').unwrap_or((item, ""));
            let number = |text: &str| parse_u64(text).map_err(|e| format!("setup {item:?}: {e}"));
            match key {
                "mem" => {
                    self.mem_size = parse_size(value).map_err(|e| format!("setup {item:?}: {e}"))?
                }
                "param" => {
                    self.param = Some(
                        u32::try_from(number(value)?)
                            .map_err(|_| format!("setup {item:?}: above 2^32-1"))?,
                    );
                }
                "vcpus" => {
                    self.vcpus = u32::try_from(number(value)?)
                        .map_err(|_| format!("setup {item:?}: too many"))?;
                }
                "readonly" => {
                    self.extra_regions
                        .push(parse_readonly(value).ok_or_else(|| {
                            format!("setup {item:?}: expected readonly=GPA+SIZE:BYTE")
                        })?)
                }
                "user-msr" => self.user_space_msr = true,
                "mode" => self.set_mode(value)?,
                "irqchip" => {
                    self.irqchip =
                        IrqChip::parse(value).map_err(|e| format!("setup {item:?}: {e}"))?
                }
                "irq" => {
                    self.inject_irq = Some(
                        u8::try_from(number(value)?)
                            .map_err(|_| format!("setup {item:?}: a vector is 0..=255"))?,
                    );
                }
                _ => return Err(format!("unknown setup key {key:?} in {setup:?}")),
            }
        }
        Ok(())
    }

    /// `--mode NAME` or the setup key `mode=NAME`: the CPU mode every vCPU starts in (x86).
    #[cfg(target_arch = "x86_64")]
    pub fn set_mode(&mut self, name: &str) -> Result<(), String> {
        let mode = arch::x86_64::CpuMode::parse(name)?;
        self.entry = self.entry.in_mode(mode);
        Ok(())
    }

    /// `--mode` exists on x86 only.
    #[cfg(not(target_arch = "x86_64"))]
    pub fn set_mode(&mut self, name: &str) -> Result<(), String> {
        Err(format!(
            "CPU mode {name:?}: CPU modes are x86's; this architecture starts every guest at \
             an address"
        ))
    }

    /// The regions of guest memory rawkvm writes for itself, which an image must leave alone:
    /// the system area of the x86 CPU modes.
    pub fn reserved(&self) -> Vec<image::Reserved> {
        #[cfg(target_arch = "x86_64")]
        if self.entry.mode.uses_system_area() {
            use arch::x86_64::layout::{SYSTEM_AREA, SYSTEM_AREA_END};
            return vec![(
                SYSTEM_AREA..SYSTEM_AREA_END,
                "system area of the CPU modes (GDT, TSS, IDT, exception stub, page tables)",
            )];
        }
        Vec::new()
    }

    /// Checks what can be checked without the kernel.
    pub fn validate(&self) -> Result<(), Error> {
        let page = page_size() as u64;
        let problem = if self.mem_size == 0 {
            ConfigError::RamEmpty { page }
        } else if self.mem_size > MAX_MEM_SIZE {
            ConfigError::RamTooLarge {
                size: self.mem_size,
                limit: MAX_MEM_SIZE,
            }
        } else if self.mem_size % page != 0 {
            ConfigError::RamUnaligned {
                size: self.mem_size,
                page,
            }
        } else if self.load_addr >= self.mem_size {
            ConfigError::LoadAddressOutsideRam {
                load_addr: self.load_addr,
                mem_size: self.mem_size,
            }
        } else if self.vcpus == 0 {
            ConfigError::NoVcpus
        } else {
            #[cfg(target_arch = "x86_64")]
            modes::validate(self)?;
            return Ok(());
        };
        Err(Error::Config(problem))
    }
}

/// What rawkvm enabled on a VM beyond the kernel's defaults, remembered so that a snapshot
/// can record it and a restore enable it again.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmSettings {
    /// `KVM_CAP_X86_USER_SPACE_MSR` with `KVM_MSR_EXIT_REASON_UNKNOWN` (setup key `user-msr`).
    pub user_space_msr: bool,
    /// The guest TSC rate in kHz every vCPU was given (`--tsc-khz`); `None`: the host's.
    pub tsc_khz: Option<u32>,
}

/// A VM ready to run: RAM, image, vCPUs.
#[derive(Debug)]
pub struct Machine {
    vcpus: Vec<Vcpu>,
    vm: Vm,
    /// The user-space 8259 pair, with `IrqChip::User`.
    user_pic: Option<Arc<UserPic>>,
    settings: VmSettings,
}

impl Machine {
    /// Creates the VM, its memory and vCPUs, loads `image`, and puts every vCPU at the entry.
    /// On failure everything built so far is released.
    pub fn new(kvm: &Kvm, config: &MachineConfig, image: &Image) -> Result<Machine, Error> {
        config.validate()?;
        image.check_fits(config.load_addr, config.mem_size, &config.reserved())?;
        let elf = image.elf()?;
        #[cfg(target_arch = "x86_64")]
        modes::check_image(config, image, elf.as_ref())?;
        let image_entry = elf.as_ref().map_or(config.load_addr, |elf| elf.entry);
        let entry = config.entry.with_stack_at_top(config.mem_size, image_entry);
        let mut vm = kvm.create_vm_of_type(arch::vm_type(kvm))?;
        if config.user_space_msr {
            enable_user_space_msr(&vm)?;
        }
        // Before any vCPU: KVM_CREATE_IRQCHIP after one is EINVAL.
        #[cfg(target_arch = "x86_64")]
        if config.irqchip == IrqChip::Kernel {
            irq::create_kernel_irqchip(&vm)?;
        }
        let user_pic = (config.irqchip == IrqChip::User).then(irq::create_user_pic);
        let ram = MemoryRegion {
            slot: 0,
            guest_phys_addr: 0,
            size: config.mem_size,
            flags: if config.restartable {
                MemoryRegionFlags::LOG_DIRTY_PAGES
            } else {
                MemoryRegionFlags::empty()
            },
        };
        vm.add_memory_region(ram)?;
        for (slot, extra) in (1..).zip(&config.extra_regions) {
            let region = MemoryRegion {
                slot,
                guest_phys_addr: extra.guest_phys_addr,
                size: extra.size,
                flags: extra.flags,
            };
            vm.add_memory_region(region)?;
            let len = usize::try_from(extra.size).unwrap_or(usize::MAX);
            vm.memory().fill(extra.guest_phys_addr, len, extra.fill)?;
        }
        image.load(vm.memory(), config.load_addr, elf.as_ref())?;
        #[cfg(target_arch = "x86_64")]
        modes::write_system_area(&vm, &entry, config.mem_size)?;
        if let Some(param) = config.param {
            vm.memory().write_u32(PARAM_BLOCK, param)?;
        }
        // One table for every vCPU: a guest sees the same CPU whichever vCPU it runs on.
        #[cfg(target_arch = "x86_64")]
        let cpuid = config.cpu.cpuid_table(kvm)?;
        let vcpus = (0..config.vcpus)
            .map(|index| {
                #[cfg_attr(not(target_arch = "x86_64"), allow(unused_mut))]
                let mut vcpu = vm.create_vcpu(index)?;
                #[cfg(target_arch = "x86_64")]
                config.cpu.apply(&vcpu, &cpuid)?;
                arch::reset_vcpu(&vcpu, &entry, index)?;
                #[cfg(target_arch = "x86_64")]
                if let Some(vector) = config.inject_irq {
                    vcpu.queue_interrupt(vector);
                }
                #[cfg(target_arch = "x86_64")]
                {
                    vcpu.exception_stub = entry.mode.has_exception_stub();
                }
                Ok(vcpu)
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let settings = VmSettings {
            user_space_msr: config.user_space_msr,
            #[cfg(target_arch = "x86_64")]
            tsc_khz: config.cpu.tsc_khz,
            #[cfg(not(target_arch = "x86_64"))]
            tsc_khz: None,
        };
        Ok(Machine {
            vcpus,
            vm,
            user_pic,
            settings,
        })
    }

    /// A machine of an existing VM and its vCPUs (a restored snapshot, say), made with
    /// `settings`, and a user-space 8259 pair holding `user_pic` if given.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))] // snapshots are x86-only
    pub(crate) fn from_parts(
        vm: Vm,
        vcpus: Vec<Vcpu>,
        settings: VmSettings,
        user_pic: Option<Pair>,
    ) -> Machine {
        let user_pic = user_pic.map(|registers| {
            let pic = irq::create_user_pic();
            pic.set_registers(registers);
            pic
        });
        Machine {
            vcpus,
            vm,
            user_pic,
            settings,
        }
    }

    /// What rawkvm enabled on the VM ([`VmSettings`]).
    pub fn settings(&self) -> VmSettings {
        self.settings
    }

    /// The VM (for its memory).
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    /// The user-space 8259 pair, if the machine has one (`IrqChip::User`): device threads
    /// raise its lines with [`UserPic::raise`].
    pub fn user_pic(&self) -> Option<&Arc<UserPic>> {
        self.user_pic.as_ref()
    }

    /// The vCPUs.
    pub fn vcpus_mut(&mut self) -> &mut [Vcpu] {
        &mut self.vcpus
    }

    /// The VM and the vCPUs at once (for restoring both, [`crate::machine::restart`]).
    pub fn parts_mut(&mut self) -> (&Vm, &mut [Vcpu]) {
        (&self.vm, &mut self.vcpus)
    }

    /// Runs vCPU 0 on the calling thread until the guest halts, is stopped, or faults.
    pub fn run<H, O>(&mut self, handler: &mut H, observer: &mut O) -> Result<Outcome, Error>
    where
        H: IoHandler + ?Sized,
        O: Observer + ?Sized,
    {
        // `Machine::new` makes at least one vCPU (`MachineConfig::validate` refuses zero) and
        // nothing removes one, so vCPU 0 is always there.
        let [vcpu, ..] = self.vcpus.as_mut_slice() else {
            unreachable!("a Machine always has vCPU 0")
        };
        run_loop::run_vcpu_with_pic(vcpu, handler, observer, self.user_pic.as_deref())
    }
}

/// `KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_UNKNOWN)`: accesses to MSRs
/// KVM does not know exit as `KVM_EXIT_X86_RDMSR`/`WRMSR` instead of raising #GP in the guest.
/// Called before any vCPU is made, by `Machine::new` and by a snapshot's restore.
pub(crate) fn enable_user_space_msr(vm: &Vm) -> Result<(), Error> {
    use rawkvm_bindings as abi;
    if vm.check_extension(abi::KVM_CAP_X86_USER_SPACE_MSR) <= 0 {
        return Err(Error::MissingCapability {
            capability: "KVM_CAP_X86_USER_SPACE_MSR",
            needed_for: "MSR exits to user space (setup key user-msr)",
        });
    }
    let reasons = u64::from(abi::KVM_MSR_EXIT_REASON_UNKNOWN);
    vm.enable_cap(abi::KVM_CAP_X86_USER_SPACE_MSR, [reasons, 0, 0, 0])
}

/// `GPA+SIZE:BYTE`, e.g. `0x20000+0x1000:0xa5`: a read-only slot pre-filled with `BYTE`.
fn parse_readonly(text: &str) -> Option<ExtraRegion> {
    let (range, fill) = text.split_once(':')?;
    let (gpa, size) = range.split_once('+')?;
    Some(ExtraRegion {
        guest_phys_addr: parse_u64(gpa).ok()?,
        size: parse_size(size).ok()?,
        flags: MemoryRegionFlags::READONLY,
        fill: u8::try_from(parse_u64(fill).ok()?).ok()?,
    })
}
