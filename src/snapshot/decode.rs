//! Reading a snapshot file back: [`read_sections`] checks the header and every section's
//! length and checksum, [`decode`] turns the payloads into a [`Snapshot`]. Every length is
//! checked against what is left before anything is sliced, and nothing is returned unless the
//! whole file decoded.

use std::collections::BTreeMap;

use rawkvm_bindings as abi;

use super::crc32::crc32;
use super::format::{
    FORMAT_VERSION, HEADER_LEN, HOST_EXCEPTION_STUB, HOST_FLAGS, MAGIC, MAX_SLOT_SIZE,
    SETTINGS_FLAGS, SETTINGS_USER_SPACE_MSR, SectionHeader, SectionKind, Sections, section_name,
};
use super::state::{
    DeviceState, IrqchipState, Origin, PageRun, SlotState, Snapshot, VcpuState, VmState,
};
use crate::arch::x86_64::msr::Msr;
use crate::devices::pic::{PAIR_BYTES, Pair};
use crate::devices::{Space, WriteOnlyZone};
use crate::error::{FormatError, Problem};
use crate::machine::VmSettings;
use crate::sys::state::{PlainData, from_bytes, words_from_bytes};

fn unpadded(field: &[u8]) -> String {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    String::from_utf8_lossy(&field[..end]).into_owned()
}

/// A cursor over a payload or the file that names what it reads in its errors.
struct Cursor<'a, 's> {
    bytes: &'a [u8],
    at: usize,
    /// File offset of `bytes[0]`.
    base: u64,
    section: &'s str,
}

impl<'a> Cursor<'a, '_> {
    fn error(&self, problem: Problem) -> FormatError {
        FormatError {
            section: self.section.to_string(),
            offset: self.base + self.at as u64,
            problem,
        }
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], FormatError> {
        let available = (self.bytes.len() - self.at) as u64;
        if len > available {
            return Err(self.error(Problem::Truncated {
                needed: len,
                available,
            }));
        }
        // `len <= available`, which fits in usize.
        let taken = &self.bytes[self.at..self.at + len as usize];
        self.at += len as usize;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        let bytes = self.take(8)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(bytes);
        Ok(u64::from_le_bytes(word))
    }

    fn remaining(&self) -> usize {
        self.bytes.len() - self.at
    }
}

/// Reads and checks the header and every section header, length and checksum; payloads are
/// not decoded. What `rawkvm snapshot-info` lists.
pub fn read_sections(bytes: &[u8]) -> Result<Sections<'_>, FormatError> {
    let mut file = Cursor {
        bytes,
        at: 0,
        base: 0,
        section: "header",
    };
    let magic = file.take(8)?;
    if magic != MAGIC {
        return Err(FormatError {
            section: "header".into(),
            offset: 0,
            problem: Problem::BadMagic,
        });
    }
    let version = file.u32()?;
    let at = |offset: u64, problem| FormatError {
        section: "header".into(),
        offset,
        problem,
    };
    // The version before the checksum: a newer format may lay its header out otherwise.
    if version > FORMAT_VERSION {
        return Err(at(
            8,
            Problem::NewerVersion {
                found: version,
                supported: FORMAT_VERSION,
            },
        ));
    }
    if version == 0 {
        return Err(at(
            8,
            Problem::Invalid("format version 0 does not exist".into()),
        ));
    }
    let header = file.take(HEADER_LEN as u64 - 12)?;
    let stored = u32::from_le_bytes([header[60], header[61], header[62], header[63]]);
    let computed = crc32(&bytes[..72]);
    if stored != computed {
        return Err(at(72, Problem::Checksum { stored, computed }));
    }
    let page_size = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    let origin = Origin {
        page_size,
        arch: unpadded(&header[4..20]),
        rawkvm_version: unpadded(&header[20..36]),
        backend: unpadded(&header[36..52]),
    };
    if origin.arch != std::env::consts::ARCH {
        return Err(at(
            16,
            Problem::OtherArchitecture {
                found: origin.arch.clone(),
            },
        ));
    }
    if !page_size.is_power_of_two() || !(4096..=65536).contains(&page_size) {
        return Err(at(
            12,
            Problem::Invalid(format!("page size {page_size} is not 4 KiB to 64 KiB")),
        ));
    }
    let count = u32::from_le_bytes([header[52], header[53], header[54], header[55]]);
    let mut sections = Vec::new();
    for index in 0..count {
        let name = format!("section {index}");
        let offset = file.at as u64;
        let mut piece = Cursor {
            section: &name,
            ..file
        };
        let kind = piece.u32()?;
        let instance = piece.u32()?;
        let length = piece.u64()?;
        let checksum = piece.u32()?;
        let _reserved = piece.u32()?;
        let payload = piece.take(length)?;
        file.at = piece.at;
        let header = SectionHeader {
            offset,
            kind,
            instance,
            length,
            checksum,
        };
        let named = section_name(index, &header);
        let Some(known) = SectionKind::from_number(kind) else {
            return Err(FormatError {
                section: named,
                offset,
                problem: Problem::UnknownKind(kind),
            });
        };
        let since = known.info().since;
        if since > version {
            return Err(FormatError {
                section: named,
                offset,
                problem: Problem::Invalid(format!(
                    "{} sections exist from format version {since} on; this file is version \
                     {version}",
                    known.info().name
                )),
            });
        }
        let computed = crc32(payload);
        if computed != checksum {
            return Err(FormatError {
                section: named,
                offset: offset + 16,
                problem: Problem::Checksum {
                    stored: checksum,
                    computed,
                },
            });
        }
        sections.push((header, payload));
    }
    if file.remaining() != 0 {
        return Err(file.error(Problem::Invalid(format!(
            "{} bytes after the last of the {count} sections the header announces",
            file.remaining()
        ))));
    }
    Ok(Sections {
        origin,
        version,
        sections,
    })
}

/// Decodes a whole file. Nothing is returned unless every section decoded.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, FormatError> {
    let sections = read_sections(bytes)?;
    let page_size = sections.origin.page_size;
    let mut vcpus: BTreeMap<u32, PartialVcpu> = BTreeMap::new();
    let mut vm = PartialVm::default();
    for (index, (header, payload)) in (0u32..).zip(&sections.sections) {
        let name = section_name(index, header);
        let piece = Piece {
            name: &name,
            header,
            payload,
        };
        // `read_sections` refused unknown kinds.
        let Some(kind) = SectionKind::from_number(header.kind) else {
            return Err(piece.error(0, Problem::UnknownKind(header.kind)));
        };
        match kind {
            SectionKind::Memory => {
                let slot = decode_slot(&piece, page_size)?;
                if vm.slots.iter().any(|s| s.slot == slot.slot) {
                    return Err(piece.error(0, Problem::Duplicate));
                }
                vm.slots.push(slot);
            }
            SectionKind::Irqchip => {
                let chip: abi::kvm_irqchip = piece.plain()?;
                if chip.chip_id != header.instance || chip.chip_id > 2 {
                    return Err(piece.error(
                        0,
                        Problem::Invalid(format!(
                            "chip id {} in a section for chip {} (0, 1 or 2)",
                            chip.chip_id, header.instance
                        )),
                    ));
                }
                piece.store(&mut vm.chips[chip.chip_id as usize], chip)?;
            }
            SectionKind::Pit => piece.store(&mut vm.pit, piece.plain()?)?,
            SectionKind::Clock => piece.store(&mut vm.clock, piece.plain()?)?,
            SectionKind::Serial => {
                let value = piece.small_u32()?;
                let line_control = u8::try_from(value).map_err(|_| {
                    piece.error(
                        0,
                        Problem::Invalid(format!("line control {value:#x} > 0xff")),
                    )
                })?;
                piece.store(&mut vm.serial, line_control)?;
            }
            SectionKind::CoalescedZones => {
                piece.store(&mut vm.zones, decode_zones(&piece)?)?;
            }
            SectionKind::Settings => piece.store(&mut vm.settings, decode_settings(&piece)?)?,
            SectionKind::UserPic => {
                piece.exact_length(PAIR_BYTES)?;
                let pair = Pair::from_bytes(piece.payload).map_err(|why| {
                    piece.error(0, Problem::Invalid(format!("user PIC registers: {why}")))
                })?;
                piece.store(&mut vm.user_pic, pair)?;
            }
            vcpu_kind => {
                let vcpu = vcpus.entry(header.instance).or_default();
                vcpu.add(vcpu_kind, &piece)?;
            }
        }
    }
    let end = bytes.len() as u64;
    let missing = |what: &str| FormatError {
        section: what.to_string(),
        offset: end,
        problem: Problem::Missing,
    };
    if vcpus.is_empty() {
        return Err(missing("vcpu.regs (no vCPU at all)"));
    }
    let vcpus = vcpus
        .into_iter()
        .map(|(id, partial)| partial.finish(id, end))
        .collect::<Result<Vec<_>, _>>()?;
    vm.slots.sort_by_key(|slot| slot.guest_phys_addr);
    check_slots_disjoint(&vm.slots, end)?;
    let irqchip = match vm.chips {
        [None, None, None] => None,
        [Some(pic_master), Some(pic_slave), Some(ioapic)] => Some(IrqchipState {
            pic_master,
            pic_slave,
            ioapic,
        }),
        _ => return Err(missing("vm.irqchip (all three chips or none)")),
    };
    Ok(Snapshot {
        origin: sections.origin,
        vcpus,
        vm: VmState {
            slots: vm.slots,
            irqchip,
            pit: vm.pit,
            clock: vm.clock.ok_or_else(|| missing("vm.clock"))?,
            // Absent from version-1 files: nothing was enabled that a snapshot knew of.
            settings: vm.settings.unwrap_or_default(),
        },
        devices: DeviceState {
            serial_line_control: vm.serial.ok_or_else(|| missing("device.serial"))?,
            coalesced_zones: vm.zones.unwrap_or_default(),
            user_pic: vm.user_pic,
        },
    })
}

/// One section being decoded.
struct Piece<'a> {
    name: &'a str,
    header: &'a SectionHeader,
    payload: &'a [u8],
}

impl Piece<'_> {
    fn error(&self, payload_offset: u64, problem: Problem) -> FormatError {
        FormatError {
            section: self.name.to_string(),
            offset: self.header.payload_offset() + payload_offset,
            problem,
        }
    }

    fn cursor(&self) -> Cursor<'_, '_> {
        Cursor {
            bytes: self.payload,
            at: 0,
            base: self.header.payload_offset(),
            section: self.name,
        }
    }

    fn plain<T: PlainData>(&self) -> Result<T, FormatError> {
        from_bytes(self.payload).ok_or_else(|| {
            self.error(
                0,
                Problem::Length {
                    expected: size_of::<T>() as u64,
                    found: self.payload.len() as u64,
                },
            )
        })
    }

    /// A payload of `n` structs `T` back to back.
    fn array<T: PlainData>(&self) -> Result<Vec<T>, FormatError> {
        let size = size_of::<T>();
        if self.payload.len() % size != 0 {
            return Err(self.error(
                0,
                Problem::Length {
                    expected: (self.payload.len() / size) as u64 * size as u64,
                    found: self.payload.len() as u64,
                },
            ));
        }
        Ok(self
            .payload
            .chunks_exact(size)
            .filter_map(from_bytes::<T>)
            .collect())
    }

    /// A payload of exactly `len` bytes, or a [`Problem::Length`].
    fn exact_length(&self, len: usize) -> Result<(), FormatError> {
        if self.payload.len() != len {
            return Err(self.error(
                0,
                Problem::Length {
                    expected: len as u64,
                    found: self.payload.len() as u64,
                },
            ));
        }
        Ok(())
    }

    fn small_u32(&self) -> Result<u32, FormatError> {
        self.exact_length(4)?;
        self.cursor().u32()
    }

    /// A `u32` of flags with no bit outside `known`; `what` names them in the error.
    fn flags(&self, value: u32, known: u32, what: &str) -> Result<u32, FormatError> {
        if value & !known != 0 {
            return Err(self.error(
                0,
                Problem::Invalid(format!(
                    "{what} {value:#x}: unknown bits {:#x} (known: {known:#x})",
                    value & !known
                )),
            ));
        }
        Ok(value)
    }

    fn store<T>(&self, slot: &mut Option<T>, value: T) -> Result<(), FormatError> {
        if slot.is_some() {
            return Err(self.error(0, Problem::Duplicate));
        }
        *slot = Some(value);
        Ok(())
    }
}

#[derive(Default)]
struct PartialVm {
    slots: Vec<SlotState>,
    chips: [Option<abi::kvm_irqchip>; 3],
    pit: Option<abi::kvm_pit_state2>,
    clock: Option<abi::kvm_clock_data>,
    serial: Option<u8>,
    zones: Option<Vec<WriteOnlyZone>>,
    settings: Option<VmSettings>,
    user_pic: Option<Pair>,
}

#[derive(Default)]
struct PartialVcpu {
    regs: Option<abi::kvm_regs>,
    sregs: Option<abi::kvm_sregs>,
    xsave: Option<Box<abi::kvm_xsave>>,
    xcrs: Option<abi::kvm_xcrs>,
    lapic: Option<Box<abi::kvm_lapic_state>>,
    events: Option<abi::kvm_vcpu_events>,
    mp_state: Option<abi::kvm_mp_state>,
    debugregs: Option<abi::kvm_debugregs>,
    cpuid: Option<Vec<abi::kvm_cpuid_entry2>>,
    msrs: Option<Vec<Msr>>,
    queued_interrupt: Option<Option<u8>>,
    exception_stub: Option<bool>,
}

impl PartialVcpu {
    fn add(&mut self, kind: SectionKind, piece: &Piece<'_>) -> Result<(), FormatError> {
        match kind {
            SectionKind::VcpuRegs => piece.store(&mut self.regs, piece.plain()?),
            SectionKind::VcpuSregs => piece.store(&mut self.sregs, piece.plain()?),
            SectionKind::VcpuXsave => piece.store(&mut self.xsave, Box::new(piece.plain()?)),
            SectionKind::VcpuXcrs => {
                let xcrs: abi::kvm_xcrs = piece.plain()?;
                if xcrs.nr_xcrs as usize > abi::KVM_MAX_XCRS {
                    return Err(piece.error(
                        0,
                        Problem::Invalid(format!("nr_xcrs {} > 16", xcrs.nr_xcrs)),
                    ));
                }
                piece.store(&mut self.xcrs, xcrs)
            }
            SectionKind::VcpuLapic => piece.store(&mut self.lapic, Box::new(piece.plain()?)),
            SectionKind::VcpuEvents => piece.store(&mut self.events, piece.plain()?),
            SectionKind::VcpuMpState => piece.store(&mut self.mp_state, piece.plain()?),
            SectionKind::VcpuDebugregs => piece.store(&mut self.debugregs, piece.plain()?),
            SectionKind::VcpuCpuid => {
                let entries = piece.array::<abi::kvm_cpuid_entry2>()?;
                piece.store(&mut self.cpuid, entries)
            }
            SectionKind::VcpuMsrs => {
                let entries = piece.array::<abi::kvm_msr_entry>()?;
                let msrs = entries
                    .iter()
                    .map(|entry| Msr::new(entry.index, entry.data))
                    .collect();
                piece.store(&mut self.msrs, msrs)
            }
            SectionKind::VcpuQueuedInterrupt => {
                let value = piece.small_u32()?;
                let queued = match value {
                    0 => None,
                    0x100..=0x1FF => Some((value & 0xFF) as u8),
                    other => {
                        return Err(piece.error(
                            0,
                            Problem::Invalid(format!(
                                "queued interrupt {other:#x}: 0 or 0x100 | vector"
                            )),
                        ));
                    }
                };
                piece.store(&mut self.queued_interrupt, queued)
            }
            SectionKind::VcpuHost => {
                let flags = piece.flags(piece.small_u32()?, HOST_FLAGS, "host flags")?;
                piece.store(&mut self.exception_stub, flags & HOST_EXCEPTION_STUB != 0)
            }
            _ => Err(piece.error(0, Problem::Invalid("not a vCPU section".into()))),
        }
    }

    fn finish(self, id: u32, end: u64) -> Result<VcpuState, FormatError> {
        let missing = |what: &str| FormatError {
            section: format!("{what} of vCPU {id}"),
            offset: end,
            problem: Problem::Missing,
        };
        Ok(VcpuState {
            id,
            regs: self.regs.ok_or_else(|| missing("vcpu.regs"))?,
            sregs: self.sregs.ok_or_else(|| missing("vcpu.sregs"))?,
            xsave: self.xsave.ok_or_else(|| missing("vcpu.xsave"))?,
            xcrs: self.xcrs,
            lapic: self.lapic,
            events: self.events.ok_or_else(|| missing("vcpu.events"))?,
            mp_state: self.mp_state.ok_or_else(|| missing("vcpu.mp_state"))?,
            debugregs: self.debugregs.ok_or_else(|| missing("vcpu.debugregs"))?,
            cpuid: self.cpuid.unwrap_or_default(),
            msrs: self.msrs.unwrap_or_default(),
            queued_interrupt: self.queued_interrupt.unwrap_or(None),
            // Absent from version-1 files, which knew no exception stub.
            exception_stub: self.exception_stub.unwrap_or(false),
        })
    }
}

fn decode_slot(piece: &Piece<'_>, page_size: u32) -> Result<SlotState, FormatError> {
    let mut cursor = piece.cursor();
    let guest_phys_addr = cursor.u64()?;
    let size = cursor.u64()?;
    let flags = cursor.u32()?;
    let runs = cursor.u32()?;
    let page = u64::from(page_size);
    let unfit = |offset: u64, why: String| piece.error(offset, Problem::MemoryDoesNotFit(why));
    if size == 0 || size > MAX_SLOT_SIZE || size % page != 0 || guest_phys_addr % page != 0 {
        return Err(unfit(
            0,
            format!(
                "slot {} of {size:#x} bytes at {guest_phys_addr:#x}: a slot is a non-zero \
                 multiple of the {page}-byte page, page-aligned, at most {MAX_SLOT_SIZE:#x}",
                piece.header.instance
            ),
        ));
    }
    if guest_phys_addr.checked_add(size).is_none() {
        return Err(unfit(0, "the slot wraps around the address space".into()));
    }
    let pages = size / page;
    let mut decoded = Vec::new();
    let mut next_free = 0u64;
    for _ in 0..runs {
        let run_offset = cursor.at as u64;
        let first_page = cursor.u64()?;
        let count = cursor.u64()?;
        let fits = first_page >= next_free
            && count > 0
            && first_page
                .checked_add(count)
                .is_some_and(|end| end <= pages);
        if !fits {
            return Err(unfit(
                run_offset,
                format!(
                    "run of {count} pages at page {first_page}: runs are non-empty, ascending, \
                     disjoint and inside the slot's {pages} pages"
                ),
            ));
        }
        // `count <= pages <= 2^20`, so the product fits.
        let data = cursor.take(count * page)?;
        decoded.push(PageRun {
            first_page,
            words: words_from_bytes(data),
        });
        next_free = first_page + count;
    }
    if cursor.remaining() != 0 {
        return Err(cursor.error(Problem::Invalid(format!(
            "{} bytes after the last of the {runs} runs",
            cursor.remaining()
        ))));
    }
    Ok(SlotState {
        slot: piece.header.instance,
        guest_phys_addr,
        size,
        flags,
        runs: decoded,
    })
}

/// `vm.settings`: `flags: u32`, `tsc_khz: u32` (0: not set).
fn decode_settings(piece: &Piece<'_>) -> Result<VmSettings, FormatError> {
    piece.exact_length(8)?;
    let mut cursor = piece.cursor();
    let flags = piece.flags(cursor.u32()?, SETTINGS_FLAGS, "settings flags")?;
    let tsc_khz = cursor.u32()?;
    Ok(VmSettings {
        user_space_msr: flags & SETTINGS_USER_SPACE_MSR != 0,
        tsc_khz: (tsc_khz != 0).then_some(tsc_khz),
    })
}

fn decode_zones(piece: &Piece<'_>) -> Result<Vec<WriteOnlyZone>, FormatError> {
    if piece.payload.len() % 16 != 0 {
        return Err(piece.error(
            0,
            Problem::Length {
                expected: (piece.payload.len() as u64 / 16 + 1) * 16,
                found: piece.payload.len() as u64,
            },
        ));
    }
    let mut cursor = piece.cursor();
    let mut zones = Vec::new();
    while cursor.remaining() > 0 {
        let at = cursor.at as u64;
        let space = match cursor.u32()? {
            0 => Space::Port,
            1 => Space::Memory,
            other => {
                return Err(piece.error(at, Problem::Invalid(format!("zone space {other}"))));
            }
        };
        let len = cursor.u32()?;
        let start = cursor.u64()?;
        if len == 0 || start.checked_add(u64::from(len)).is_none() {
            return Err(piece.error(at, Problem::Invalid(format!("zone of {len} at {start:#x}"))));
        }
        zones.push(WriteOnlyZone { space, start, len });
    }
    Ok(zones)
}

fn check_slots_disjoint(slots: &[SlotState], end: u64) -> Result<(), FormatError> {
    for pair in slots.windows(2) {
        if pair[0].guest_phys_addr + pair[0].size > pair[1].guest_phys_addr {
            return Err(FormatError {
                section: format!("memory slots {} and {}", pair[0].slot, pair[1].slot),
                offset: end,
                problem: Problem::MemoryDoesNotFit("the slots overlap".into()),
            });
        }
    }
    Ok(())
}
