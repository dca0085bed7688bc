//! One line per section for `rawkvm snapshot-info`: what the payload says, decoded from the
//! kernel structs the section holds (a payload that does not decode says so instead).

use rawkvm_bindings::{self as abi, kvm_ioapic_state, kvm_pic_state};

use super::format::{HOST_EXCEPTION_STUB, SETTINGS_USER_SPACE_MSR, SectionHeader, SectionKind};
use crate::devices::pic::{Chip, Pair};
use crate::sys::state::{PlainData, as_bytes, from_bytes};

/// A short human summary of one section's payload: `rip=0x1042 rsp=0xefe rflags=0x2`,
/// `slot 0 at 0x0, 1 MiB, 3 runs, 5 pages stored`, ...
pub fn summary(header: &SectionHeader, payload: &[u8], page_size: u32) -> String {
    let Some(kind) = SectionKind::from_number(header.kind) else {
        return format!("unknown kind {:#x}", header.kind);
    };
    summarise(kind, payload, page_size).unwrap_or_else(|| "(does not decode)".to_string())
}

fn plain<T: PlainData>(payload: &[u8]) -> Option<T> {
    from_bytes(payload)
}

fn word(payload: &[u8], at: usize) -> Option<u64> {
    let bytes = payload.get(at..at + 8)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes);
    Some(u64::from_le_bytes(word))
}

fn small(payload: &[u8]) -> Option<u32> {
    let bytes: [u8; 4] = payload.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Leaf 0's vendor string: EBX, EDX, ECX.
fn vendor(leaf0: &abi::kvm_cpuid_entry2) -> [u8; 12] {
    let mut vendor = [0u8; 12];
    vendor[..4].copy_from_slice(&leaf0.ebx.to_le_bytes());
    vendor[4..8].copy_from_slice(&leaf0.edx.to_le_bytes());
    vendor[8..].copy_from_slice(&leaf0.ecx.to_le_bytes());
    vendor
}

fn summarise(kind: SectionKind, payload: &[u8], page_size: u32) -> Option<String> {
    Some(match kind {
        SectionKind::VcpuRegs => {
            let r: abi::kvm_regs = plain(payload)?;
            format!(
                "rip={:#x} rsp={:#x} rflags={:#x} rax={:#x}",
                r.rip, r.rsp, r.rflags, r.rax
            )
        }
        SectionKind::VcpuSregs => {
            let s: abi::kvm_sregs = plain(payload)?;
            format!(
                "cs={:#x}(base {:#x}) cr0={:#x} cr4={:#x} efer={:#x} apic_base={:#x}",
                s.cs.selector, s.cs.base, s.cr0, s.cr4, s.efer, s.apic_base
            )
        }
        SectionKind::VcpuXsave => {
            let x: abi::kvm_xsave = plain(payload)?;
            let xstate_bv = u64::from(x.region[128]) | u64::from(x.region[129]) << 32;
            format!(
                "fcw={:#x} mxcsr={:#x} xstate_bv={xstate_bv:#x}",
                x.region[0] & 0xFFFF,
                x.region[6]
            )
        }
        SectionKind::VcpuXcrs => {
            let x: abi::kvm_xcrs = plain(payload)?;
            let xcr0 = x
                .xcrs
                .iter()
                .take(x.nr_xcrs as usize)
                .find(|xcr| xcr.xcr == 0);
            format!(
                "{} XCRs, xcr0={:#x}",
                x.nr_xcrs,
                xcr0.map_or(0, |xcr| xcr.value)
            )
        }
        SectionKind::VcpuLapic => {
            let l: abi::kvm_lapic_state = plain(payload)?;
            let register = |offset: usize| {
                u32::from_le_bytes([
                    l.regs[offset],
                    l.regs[offset + 1],
                    l.regs[offset + 2],
                    l.regs[offset + 3],
                ])
            };
            format!(
                "id={} tpr={:#x} svr={:#x} lvt_timer={:#x} timer_initial={}",
                register(0x20) >> 24,
                register(0x80),
                register(0xF0),
                register(0x320),
                register(0x380)
            )
        }
        SectionKind::VcpuEvents => {
            let e: abi::kvm_vcpu_events = plain(payload)?;
            format!(
                "exception {}{} interrupt {}{} nmi pending={} masked={} shadow={} flags={:#x}",
                if e.exception.injected != 0 {
                    "injected #"
                } else {
                    "none"
                },
                if e.exception.injected != 0 {
                    e.exception.nr.to_string()
                } else {
                    String::new()
                },
                if e.interrupt.injected != 0 {
                    "injected "
                } else {
                    "none"
                },
                if e.interrupt.injected != 0 {
                    e.interrupt.nr.to_string()
                } else {
                    String::new()
                },
                e.nmi.pending,
                e.nmi.masked,
                e.interrupt.shadow,
                e.flags
            )
        }
        SectionKind::VcpuMpState => {
            let m: abi::kvm_mp_state = plain(payload)?;
            abi::name_in(abi::MP_STATES, m.mp_state)
                .map_or_else(|| format!("mp_state {}", m.mp_state), str::to_string)
        }
        SectionKind::VcpuDebugregs => {
            let d: abi::kvm_debugregs = plain(payload)?;
            format!("dr0={:#x} dr6={:#x} dr7={:#x}", d.db[0], d.dr6, d.dr7)
        }
        SectionKind::VcpuCpuid => {
            let entries = payload.len() / size_of::<abi::kvm_cpuid_entry2>();
            let leaf0: Option<abi::kvm_cpuid_entry2> = payload.get(..40).and_then(plain);
            match leaf0 {
                Some(leaf0) => format!(
                    "{entries} leaves, max leaf {:#x}, vendor {}",
                    leaf0.eax,
                    crate::arch::x86_64::cpuid::cpuid_string(&vendor(&leaf0))
                ),
                None => "no table (none was set)".to_string(),
            }
        }
        SectionKind::VcpuMsrs => {
            let entries: Vec<abi::kvm_msr_entry> =
                payload.chunks_exact(16).filter_map(plain).collect();
            let efer = entries.iter().find(|e| e.index == 0xC000_0080);
            format!(
                "{} MSRs{}",
                entries.len(),
                efer.map_or_else(String::new, |e| format!(", EFER={:#x}", e.data))
            )
        }
        SectionKind::VcpuQueuedInterrupt => match small(payload)? {
            0 => "none".to_string(),
            value => format!("vector {:#x}", value & 0xFF),
        },
        SectionKind::VcpuHost => {
            let flags = small(payload)?;
            let stub = if flags & HOST_EXCEPTION_STUB != 0 {
                "exception stub installed (a fault in it is status 6)"
            } else {
                "no exception stub"
            };
            format!("flags={flags:#x}: {stub}")
        }
        SectionKind::Memory => {
            let gpa = word(payload, 0)?;
            let size = word(payload, 8)?;
            let flags = small(payload.get(16..20)?)?;
            let runs = small(payload.get(20..24)?)?;
            let stored = payload.len().saturating_sub(24 + 16 * runs as usize) as u64;
            format!(
                "at {gpa:#x}, {}, flags {flags:#x}, {runs} runs, {} pages stored",
                crate::units::Size(size),
                stored / u64::from(page_size.max(1))
            )
        }
        SectionKind::Irqchip => describe_irqchip(&plain(payload)?)?,
        SectionKind::Pit => describe_pit(&plain(payload)?),
        SectionKind::Clock => {
            let c: abi::kvm_clock_data = plain(payload)?;
            format!("clock={} ns flags={:#x}", c.clock, c.flags)
        }
        SectionKind::Settings => {
            let flags = small(payload.get(..4)?)?;
            let tsc_khz = small(payload.get(4..)?)?;
            let msr = if flags & SETTINGS_USER_SPACE_MSR != 0 {
                "on"
            } else {
                "off"
            };
            let tsc = match tsc_khz {
                0 => "the host's".to_string(),
                khz => format!("{khz} kHz"),
            };
            format!("flags={flags:#x}: user-space MSR exits {msr}, guest TSC {tsc}")
        }
        SectionKind::Serial => format!("COM1 line control={:#x}", small(payload)?),
        SectionKind::CoalescedZones => {
            let zones = payload.len() / 16;
            let list: Vec<String> = payload
                .chunks_exact(16)
                .map(|zone| {
                    let space = if zone[0] == 0 { "port" } else { "mmio" };
                    let len = u32::from_le_bytes([zone[4], zone[5], zone[6], zone[7]]);
                    let start = word(zone, 8).unwrap_or(0);
                    format!("{space} {start:#x}+{len}")
                })
                .collect();
            format!("{zones} zones: {}", list.join(", "))
        }
        SectionKind::UserPic => describe_user_pic(&Pair::from_bytes(payload).ok()?),
    })
}

/// The user-space 8259 pair in a line: per chip its vector base, IMR, IRR, ISR and whether
/// the guest has initialised it (or which ICW it waits for).
pub fn describe_user_pic(pair: &Pair) -> String {
    let chip = |name: &str, chip: &Chip| {
        format!(
            "{name} base={:#x} imr={:#x} irr={:#x} isr={:#x}{}",
            chip.vector_base,
            chip.imr,
            chip.irr,
            chip.isr,
            if chip.initialised() {
                ""
            } else {
                " (not initialised)"
            }
        )
    };
    format!(
        "{}; {}; pending vector {}",
        chip("master", &pair.master),
        chip("slave", &pair.slave),
        pair.pending_vector()
            .map_or_else(|| "none".to_string(), |v| format!("{v:#x}"))
    )
}

/// One in-kernel interrupt controller in a line: a PIC's vector base and IMR/IRR/ISR, or the
/// IOAPIC's base, id, IRR and how many pins are unmasked. Also what rawkvm prints about the
/// controllers after a guest fault. `None` for a chip id the kernel does not define.
pub fn describe_irqchip(chip: &abi::kvm_irqchip) -> Option<String> {
    // The union `chip` follows `chip_id` and `pad`.
    let bytes = &as_bytes(chip)[8..];
    Some(match chip.chip_id {
        abi::KVM_IRQCHIP_IOAPIC => {
            let io: kvm_ioapic_state = plain(bytes.get(..216)?)?;
            let unmasked = io.redirtbl.iter().filter(|e| *e & (1 << 16) == 0).count();
            format!(
                "IOAPIC base={:#x} id={} irr={:#x}, {unmasked} pins unmasked",
                io.base_address, io.id, io.irr
            )
        }
        abi::KVM_IRQCHIP_PIC_MASTER | abi::KVM_IRQCHIP_PIC_SLAVE => {
            let pic: kvm_pic_state = plain(bytes.get(..16)?)?;
            let which = if chip.chip_id == abi::KVM_IRQCHIP_PIC_MASTER {
                "master"
            } else {
                "slave"
            };
            format!(
                "PIC {which} irq_base={:#x} imr={:#x} irr={:#x} isr={:#x}",
                pic.irq_base, pic.imr, pic.irr, pic.isr
            )
        }
        _ => return None,
    })
}

/// The in-kernel PIT in a line: each channel's count, mode and gate, and the flags.
pub fn describe_pit(pit: &abi::kvm_pit_state2) -> String {
    let channels: Vec<String> = pit
        .channels
        .iter()
        .enumerate()
        .map(|(i, c)| {
            format!(
                "channel {i}: count={} mode={} gate={}",
                c.count, c.mode, c.gate
            )
        })
        .collect();
    format!("PIT {}; flags={:#x}", channels.join(", "), pit.flags)
}
