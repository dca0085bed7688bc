//! The snapshot file: a fixed header, then length-prefixed typed sections, each with its own
//! CRC-32. Everything is little-endian; structs are stored as the kernel lays them out
//! (`rawkvm abi STRUCT` prints each layout).
//!
//! ```text
//! offset  size  header (80 bytes)
//!      0     8  magic "RAWKVMSS"
//!      8     4  format version (FORMAT_VERSION)
//!     12     4  page size (the grain of memory runs)
//!     16    16  architecture, NUL-padded ("x86_64")
//!     32    16  rawkvm version, NUL-padded
//!     48    16  KVM backend, NUL-padded ("kvm_pvm", "kvm_intel", "kvm_amd", "unknown")
//!     64     4  number of sections
//!     68     4  reserved, 0
//!     72     4  CRC-32 of bytes 0..72
//!     76     4  reserved, 0
//!
//!         size  each section: a 24-byte header, then `length` bytes of payload
//!            4  kind (SECTION_KINDS)
//!            4  instance: the vCPU id, slot number or irqchip id (0 otherwise)
//!            8  length of the payload
//!            4  CRC-32 of the payload
//!            4  reserved, 0
//! ```
//!
//! A memory section's payload is `guest_phys_addr: u64, size: u64, flags: u32, runs: u32`,
//! then per run `first_page: u64, pages: u64` and `pages * page_size` bytes: pages that are all
//! zero are not stored. The sections that hold what rawkvm itself owns, not the kernel:
//!
//! ```text
//! kind  name                   payload                                            since
//! 0x09  vcpu.queued_interrupt  u32: 0x100 | vector, or 0                              1
//! 0x0C  vcpu.host              u32 flags: bit 0 the exception stub is installed       2
//! 0x23  vm.settings            u32 flags (bit 0 KVM_CAP_X86_USER_SPACE_MSR enabled),  2
//!                              u32 guest TSC rate in kHz (0: the host's, not set)
//! 0x30  device.serial          u32: COM1's line control register                      1
//! 0x31  device.coalesced_zones per zone space: u32, len: u32, start: u64             1
//! 0x32  device.user_pic        the 8259 pair's registers, 16 bytes (Pair::to_bytes)   2
//! ```
//!
//! Format version 2 added `vcpu.host`, `vm.settings` and `device.user_pic`; a version-1 file
//! still loads, as a machine without them (no user-space PIC, no exception stub, no settings),
//! and a version-1 file holding one of them is refused. A newer version is refused. Decoding checks every length against what is left before it slices,
//! so a truncated, corrupted or hostile file is a [`FormatError`](crate::error::FormatError) naming the section and the
//! byte offset, never a panic, and nothing is restored from a file that did not decode whole.

use rawkvm_bindings::{self as abi, StructLayout};

use std::borrow::Cow;
use std::io::{self, Write};

use super::crc32::{Crc32, crc32};
use super::state::{Origin, SlotState, Snapshot};
use crate::devices::Space;
use crate::sys::state::{as_bytes, words_as_bytes};

/// The file's first eight bytes.
pub const MAGIC: [u8; 8] = *b"RAWKVMSS";
/// The format version this rawkvm writes and the newest it reads (it reads every older one).
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of the file header.
pub const HEADER_LEN: usize = 80;
/// Bytes of a section header.
pub const SECTION_HEADER_LEN: usize = 24;
/// `vcpu.host` flag: the vCPU's mode installed rawkvm's exception stub.
pub const HOST_EXCEPTION_STUB: u32 = 1 << 0;
/// Every `vcpu.host` flag this rawkvm knows.
pub const HOST_FLAGS: u32 = HOST_EXCEPTION_STUB;
/// `vm.settings` flag: `KVM_CAP_X86_USER_SPACE_MSR` was enabled.
pub const SETTINGS_USER_SPACE_MSR: u32 = 1 << 0;
/// Every `vm.settings` flag this rawkvm knows.
pub const SETTINGS_FLAGS: u32 = SETTINGS_USER_SPACE_MSR;
/// The most guest memory one slot of a snapshot may describe (rawkvm's RAM limit, 4 GiB).
pub const MAX_SLOT_SIZE: u64 = crate::machine::MAX_MEM_SIZE;

/// What a section holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SectionKind {
    /// `kvm_regs`.
    VcpuRegs,
    /// `kvm_sregs`.
    VcpuSregs,
    /// `kvm_xsave`.
    VcpuXsave,
    /// `kvm_xcrs`.
    VcpuXcrs,
    /// `kvm_lapic_state`.
    VcpuLapic,
    /// `kvm_vcpu_events`.
    VcpuEvents,
    /// `kvm_mp_state`.
    VcpuMpState,
    /// `kvm_debugregs`.
    VcpuDebugregs,
    /// `kvm_cpuid_entry2` × n: the CPUID table.
    VcpuCpuid,
    /// `kvm_msr_entry` × n: every MSR of the index list and its value.
    VcpuMsrs,
    /// A `u32`: `0x100 | vector` if rawkvm had an interrupt queued for the vCPU.
    VcpuQueuedInterrupt,
    /// A `u32` of host-side flags: bit 0, the exception stub is installed.
    VcpuHost,
    /// A memory slot and its non-zero pages.
    Memory,
    /// `kvm_irqchip` (instance: the chip id).
    Irqchip,
    /// `kvm_pit_state2`.
    Pit,
    /// `kvm_clock_data`.
    Clock,
    /// What rawkvm enabled on the VM: `flags: u32` (bit 0 user-space MSR exits), `tsc_khz: u32`.
    Settings,
    /// A `u32`: COM1's line control register.
    Serial,
    /// Coalesced zones: per zone `space: u32` (0 port, 1 memory), `len: u32`, `start: u64`.
    CoalescedZones,
    /// The user-space 8259 pair's registers ([`Pair::to_bytes`](crate::devices::pic::Pair::to_bytes)).
    UserPic,
}

/// One row of [`SECTION_KINDS`].
#[derive(Debug, Clone, Copy)]
pub struct KindInfo {
    /// The kind.
    pub kind: SectionKind,
    /// Its number in the file.
    pub number: u32,
    /// Its name, as `snapshot-info` prints it.
    pub name: &'static str,
    /// The kernel struct the payload is, if it is exactly one.
    pub layout: Option<StructLayout>,
    /// The format version that introduced it.
    pub since: u32,
}

/// Every section kind: number, name, payload struct. One table for the encoder, the decoder
/// and `rawkvm snapshot-info`.
pub const SECTION_KINDS: &[KindInfo] = &[
    kind(
        SectionKind::VcpuRegs,
        0x01,
        "vcpu.regs",
        Some(abi::kvm_regs::LAYOUT),
    ),
    kind(
        SectionKind::VcpuSregs,
        0x02,
        "vcpu.sregs",
        Some(abi::kvm_sregs::LAYOUT),
    ),
    kind(
        SectionKind::VcpuXsave,
        0x03,
        "vcpu.xsave",
        Some(abi::kvm_xsave::LAYOUT),
    ),
    kind(
        SectionKind::VcpuXcrs,
        0x04,
        "vcpu.xcrs",
        Some(abi::kvm_xcrs::LAYOUT),
    ),
    kind(
        SectionKind::VcpuLapic,
        0x05,
        "vcpu.lapic",
        Some(abi::kvm_lapic_state::LAYOUT),
    ),
    kind(
        SectionKind::VcpuEvents,
        0x06,
        "vcpu.events",
        Some(abi::kvm_vcpu_events::LAYOUT),
    ),
    kind(
        SectionKind::VcpuMpState,
        0x07,
        "vcpu.mp_state",
        Some(abi::kvm_mp_state::LAYOUT),
    ),
    kind(
        SectionKind::VcpuDebugregs,
        0x08,
        "vcpu.debugregs",
        Some(abi::kvm_debugregs::LAYOUT),
    ),
    kind(
        SectionKind::VcpuCpuid,
        0x0A,
        "vcpu.cpuid",
        Some(abi::kvm_cpuid_entry2::LAYOUT),
    ),
    kind(
        SectionKind::VcpuMsrs,
        0x0B,
        "vcpu.msrs",
        Some(abi::kvm_msr_entry::LAYOUT),
    ),
    kind(
        SectionKind::VcpuQueuedInterrupt,
        0x09,
        "vcpu.queued_interrupt",
        None,
    ),
    kind(SectionKind::VcpuHost, 0x0C, "vcpu.host", None).since(2),
    kind(SectionKind::Memory, 0x10, "memory", None),
    kind(
        SectionKind::Irqchip,
        0x20,
        "vm.irqchip",
        Some(abi::kvm_irqchip::LAYOUT),
    ),
    kind(
        SectionKind::Pit,
        0x21,
        "vm.pit2",
        Some(abi::kvm_pit_state2::LAYOUT),
    ),
    kind(
        SectionKind::Clock,
        0x22,
        "vm.clock",
        Some(abi::kvm_clock_data::LAYOUT),
    ),
    kind(SectionKind::Settings, 0x23, "vm.settings", None).since(2),
    kind(SectionKind::Serial, 0x30, "device.serial", None),
    kind(
        SectionKind::CoalescedZones,
        0x31,
        "device.coalesced_zones",
        None,
    ),
    kind(SectionKind::UserPic, 0x32, "device.user_pic", None).since(2),
];

const fn kind(
    kind: SectionKind,
    number: u32,
    name: &'static str,
    layout: Option<StructLayout>,
) -> KindInfo {
    KindInfo {
        kind,
        number,
        name,
        layout,
        since: 1,
    }
}

impl KindInfo {
    const fn since(self, version: u32) -> KindInfo {
        KindInfo {
            since: version,
            ..self
        }
    }
}

impl SectionKind {
    /// This kind's row of [`SECTION_KINDS`].
    pub fn info(self) -> &'static KindInfo {
        SECTION_KINDS
            .iter()
            .find(|row| row.kind == self)
            .unwrap_or(&SECTION_KINDS[0])
    }

    /// Whether a section of this kind belongs to one vCPU (its instance is the vCPU id).
    pub fn per_vcpu(self) -> bool {
        self <= SectionKind::VcpuHost
    }

    /// The kind numbered `number` in a file, if any.
    pub fn from_number(number: u32) -> Option<SectionKind> {
        SECTION_KINDS
            .iter()
            .find(|row| row.number == number)
            .map(|row| row.kind)
    }
}

/// A section as the file lays it out, before its payload is decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionHeader {
    /// Offset of the section header in the file.
    pub offset: u64,
    /// The kind number (known: [`SectionKind::from_number`]).
    pub kind: u32,
    /// vCPU id, slot or chip id.
    pub instance: u32,
    /// Payload bytes.
    pub length: u64,
    /// CRC-32 of the payload, as stored (checked when the section was read).
    pub checksum: u32,
}

impl SectionHeader {
    /// Where the payload starts.
    pub fn payload_offset(&self) -> u64 {
        self.offset + SECTION_HEADER_LEN as u64
    }
}

/// A file's header and its sections, each checked (lengths, checksums), with payloads.
#[derive(Debug)]
pub struct Sections<'a> {
    /// Architecture, versions, backend, page size.
    pub origin: Origin,
    /// Format version.
    pub version: u32,
    /// Each section and its payload.
    pub sections: Vec<(SectionHeader, &'a [u8])>,
}

fn padded<const N: usize>(text: &str) -> [u8; N] {
    let mut field = [0u8; N];
    let bytes = text.as_bytes();
    let len = bytes.len().min(N);
    field[..len].copy_from_slice(&bytes[..len]);
    field
}

/// A snapshot as a file's bytes ([`write_to`] into memory).
pub fn encode(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a `Vec` cannot fail.
    write_to(snapshot, &mut out).map_or_else(|_| Vec::new(), |_| out)
}

/// One section to write: its kind, instance, and payload in pieces (the memory pages are
/// borrowed from the snapshot, not copied).
type Pieces<'a> = (u32, u32, Vec<Cow<'a, [u8]>>);

/// Writes a snapshot as a file to `out`; returns the bytes written. Each section's checksum
/// is computed over its pieces before they are written, so guest memory is never copied into
/// one buffer.
pub fn write_to(snapshot: &Snapshot, out: &mut impl Write) -> io::Result<u64> {
    let sections = sections_of(snapshot);
    let origin = &snapshot.origin;
    let mut header = Vec::with_capacity(HEADER_LEN);
    header.extend_from_slice(&MAGIC);
    header.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    header.extend_from_slice(&origin.page_size.to_le_bytes());
    header.extend_from_slice(&padded::<16>(&origin.arch));
    header.extend_from_slice(&padded::<16>(&origin.rawkvm_version));
    header.extend_from_slice(&padded::<16>(&origin.backend));
    header.extend_from_slice(&(sections.len() as u32).to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    let header_crc = crc32(&header);
    header.extend_from_slice(&header_crc.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    out.write_all(&header)?;
    let mut written = header.len() as u64;
    for (kind, instance, pieces) in &sections {
        let mut crc = Crc32::default();
        let mut length = 0u64;
        for piece in pieces {
            crc.update(piece);
            length += piece.len() as u64;
        }
        let mut section = [0u8; SECTION_HEADER_LEN];
        section[0..4].copy_from_slice(&kind.to_le_bytes());
        section[4..8].copy_from_slice(&instance.to_le_bytes());
        section[8..16].copy_from_slice(&length.to_le_bytes());
        section[16..20].copy_from_slice(&crc.finish().to_le_bytes());
        out.write_all(&section)?;
        for piece in pieces {
            out.write_all(piece)?;
        }
        written += SECTION_HEADER_LEN as u64 + length;
    }
    Ok(written)
}

fn sections_of(snapshot: &Snapshot) -> Vec<Pieces<'_>> {
    let mut sections: Vec<Pieces<'_>> = Vec::new();
    let mut add = |kind: SectionKind, instance: u32, payload: Vec<u8>| {
        sections.push((kind.info().number, instance, vec![Cow::Owned(payload)]));
    };
    for vcpu in &snapshot.vcpus {
        let id = vcpu.id;
        add(SectionKind::VcpuRegs, id, as_bytes(&vcpu.regs).to_vec());
        add(SectionKind::VcpuSregs, id, as_bytes(&vcpu.sregs).to_vec());
        add(SectionKind::VcpuXsave, id, as_bytes(&*vcpu.xsave).to_vec());
        if let Some(xcrs) = &vcpu.xcrs {
            add(SectionKind::VcpuXcrs, id, as_bytes(xcrs).to_vec());
        }
        if let Some(lapic) = &vcpu.lapic {
            add(SectionKind::VcpuLapic, id, as_bytes(&**lapic).to_vec());
        }
        add(SectionKind::VcpuEvents, id, as_bytes(&vcpu.events).to_vec());
        add(
            SectionKind::VcpuMpState,
            id,
            as_bytes(&vcpu.mp_state).to_vec(),
        );
        add(
            SectionKind::VcpuDebugregs,
            id,
            as_bytes(&vcpu.debugregs).to_vec(),
        );
        let cpuid: Vec<u8> = vcpu
            .cpuid
            .iter()
            .flat_map(|entry| as_bytes(entry).to_vec())
            .collect();
        add(SectionKind::VcpuCpuid, id, cpuid);
        let msrs: Vec<u8> = vcpu
            .msrs
            .iter()
            .flat_map(|msr| {
                let entry = abi::kvm_msr_entry {
                    index: msr.index,
                    reserved: 0,
                    data: msr.value,
                };
                as_bytes(&entry).to_vec()
            })
            .collect();
        add(SectionKind::VcpuMsrs, id, msrs);
        let queued = vcpu.queued_interrupt.map_or(0, |v| 0x100 | u32::from(v));
        add(
            SectionKind::VcpuQueuedInterrupt,
            id,
            queued.to_le_bytes().to_vec(),
        );
        let host = if vcpu.exception_stub {
            HOST_EXCEPTION_STUB
        } else {
            0
        };
        add(SectionKind::VcpuHost, id, host.to_le_bytes().to_vec());
    }
    let memory = snapshot
        .vm
        .slots
        .iter()
        .map(|slot| (slot.slot, slot_pieces(slot, snapshot.origin.page_size)))
        .collect::<Vec<_>>();
    if let Some(irqchip) = &snapshot.vm.irqchip {
        for chip in irqchip.chips() {
            add(SectionKind::Irqchip, chip.chip_id, as_bytes(chip).to_vec());
        }
    }
    if let Some(pit) = &snapshot.vm.pit {
        add(SectionKind::Pit, 0, as_bytes(pit).to_vec());
    }
    add(SectionKind::Clock, 0, as_bytes(&snapshot.vm.clock).to_vec());
    let settings = &snapshot.vm.settings;
    let mut payload = Vec::with_capacity(8);
    let flags = if settings.user_space_msr {
        SETTINGS_USER_SPACE_MSR
    } else {
        0
    };
    payload.extend_from_slice(&flags.to_le_bytes());
    payload.extend_from_slice(&settings.tsc_khz.unwrap_or(0).to_le_bytes());
    add(SectionKind::Settings, 0, payload);
    let serial = u32::from(snapshot.devices.serial_line_control);
    add(SectionKind::Serial, 0, serial.to_le_bytes().to_vec());
    let mut zones = Vec::new();
    for zone in &snapshot.devices.coalesced_zones {
        let space: u32 = match zone.space {
            Space::Port => 0,
            Space::Memory => 1,
        };
        zones.extend_from_slice(&space.to_le_bytes());
        zones.extend_from_slice(&zone.len.to_le_bytes());
        zones.extend_from_slice(&zone.start.to_le_bytes());
    }
    add(SectionKind::CoalescedZones, 0, zones);
    if let Some(pair) = &snapshot.devices.user_pic {
        add(SectionKind::UserPic, 0, pair.to_bytes().to_vec());
    }

    // Memory after the vCPUs, before the VM devices: the order `snapshot-info` lists.
    let first_vm_section = sections
        .iter()
        .position(|(kind, _, _)| SectionKind::from_number(*kind).is_some_and(|k| !k.per_vcpu()))
        .unwrap_or(sections.len());
    let number = SectionKind::Memory.info().number;
    sections.splice(
        first_vm_section..first_vm_section,
        memory
            .into_iter()
            .map(|(slot, pieces)| (number, slot, pieces)),
    );
    sections
}

/// A memory section's payload: the slot's header, then per run its header and its pages
/// (borrowed).
fn slot_pieces(slot: &SlotState, page_size: u32) -> Vec<Cow<'_, [u8]>> {
    let words_per_page = (page_size as usize / size_of::<u64>()).max(1);
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&slot.guest_phys_addr.to_le_bytes());
    header.extend_from_slice(&slot.size.to_le_bytes());
    header.extend_from_slice(&slot.flags.to_le_bytes());
    header.extend_from_slice(&(slot.runs.len() as u32).to_le_bytes());
    let mut pieces = vec![Cow::Owned(header)];
    for run in &slot.runs {
        let mut run_header = Vec::with_capacity(16);
        run_header.extend_from_slice(&run.first_page.to_le_bytes());
        run_header.extend_from_slice(&((run.words.len() / words_per_page) as u64).to_le_bytes());
        pieces.push(Cow::Owned(run_header));
        pieces.push(Cow::Borrowed(words_as_bytes(&run.words)));
    }
    pieces
}

/// `section 3 (vcpu.sregs, vCPU 0)`.
pub fn section_name(index: u32, header: &SectionHeader) -> String {
    match SectionKind::from_number(header.kind) {
        Some(kind) => {
            let instance = match kind {
                SectionKind::Memory => format!(", slot {}", header.instance),
                SectionKind::Irqchip => format!(", chip {}", header.instance),
                k if k.per_vcpu() => format!(", vCPU {}", header.instance),
                _ => String::new(),
            };
            format!("section {index} ({}{instance})", kind.info().name)
        }
        None => format!("section {index} (kind {:#x})", header.kind),
    }
}
