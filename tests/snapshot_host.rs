//! Snapshots of the state rawkvm itself owns, not the kernel: the user-space 8259 pair
//! (`--irqchip user`), each vCPU's exception-stub flag (`--mode long|user`), and what rawkvm
//! enabled on the VM (user-space MSR exits, the guest TSC rate). Each guest, snapshotted and
//! restored or forked, ends exactly as an uninterrupted run does; a version-1 file (which had
//! none of these) still loads; and the snapshot seeds of the fuzz corpus are made here.
#![cfg(target_arch = "x86_64")]

mod common;

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rawkvm::Kvm;
use rawkvm::devices::pic::UserPic;
use rawkvm::devices::{Claim, Devices, IoHandler};
use rawkvm::machine::Machine;
use rawkvm::machine::irq::IrqChip;
use rawkvm::machine::supervisor::RunControl;
use rawkvm::run_loop::NoObserver;
use rawkvm::snapshot::{DeviceState, Snapshot, SnapshotError};

use common::snapshot::{run, snapshot_of};

/// Every line but master pin 2 (the cascade), in the order the user-PIC test raises them.
const PIC_LINES: [u8; 15] = [0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

/// Edges `range` of the schedule: edge `i` is on line `PIC_LINES[i % 15]`.
fn edges(range: std::ops::Range<usize>) -> Vec<u8> {
    range.map(|i| PIC_LINES[i % PIC_LINES.len()]).collect()
}

/// Runs `machine` (snapshot port armed) while a thread raises `lines` on its user-space PIC,
/// once the guest has initialised both chips. Each edge is raised until it sets its IRR bit
/// (one meeting its line still pending merges, as on the chip), so what the guest takes per
/// line is exactly `lines`, however the threads interleave.
fn run_raising(machine: &mut Machine, lines: Vec<u8>) -> (Vec<u8>, bool) {
    let pic: Arc<UserPic> = Arc::clone(machine.user_pic().expect("a user-space PIC"));
    let raiser = thread::spawn(move || {
        // A guest that never takes them (no PIC after a restore) must not hang the test.
        let deadline = Instant::now() + Duration::from_secs(60);
        let ready = |pic: &UserPic| {
            let registers = pic.registers();
            registers.master.initialised() && registers.slave.initialised()
        };
        while !ready(&pic) && Instant::now() < deadline {
            thread::sleep(Duration::from_micros(200));
        }
        for line in lines {
            while !pic.raise(line) && Instant::now() < deadline {
                thread::sleep(Duration::from_micros(20));
            }
        }
    });
    let result = run(machine);
    raiser.join().unwrap();
    result
}

#[test]
fn a_user_pic_guest_snapshotted_with_a_line_in_service_and_two_pending_finishes_as_if_never_stopped()
 {
    let Some(kvm) = common::kvm_or_skip("snapshot user pic") else {
        return;
    };
    // irq_user takes 40 interrupts; param bit 15: its handler of the 20th pulls the snapshot
    // port before the EOI, so that line is still in service. While stopped, two more edges
    // (lines 0 and 13) are raised: pending in the IRRs of both chips when the snapshot is
    // taken. The remaining 18 edges come after.
    const TAKEN: u32 = 40;
    let param = 0x8000 | TAKEN;
    let (first, pending, rest) = (edges(0..20), [0u8, 13], edges(20..38));
    let irq_user = |kvm: &Kvm| {
        common::guest_machine(kvm, "irq_user", |config| config.param = Some(param)).unwrap()
    };
    let raise_pending = |machine: &Machine| {
        let pic = machine.user_pic().unwrap();
        for line in pending {
            assert!(pic.raise(line), "line {line} was not pending yet");
        }
    };

    // The uninterrupted run: the same machine runs on after its stop, no snapshot between.
    let mut whole = irq_user(&kvm);
    let (before, stopped) = run_raising(&mut whole, first.clone());
    assert!(stopped, "the guest pulls the snapshot port");
    assert!(before.is_empty(), "irq_user prints only at the end");
    raise_pending(&whole);
    let (uninterrupted, _) = run_raising(&mut whole, rest.clone());
    let mut counts = [0u32; 16];
    for &line in first.iter().chain(&pending).chain(&rest) {
        counts[usize::from(line)] += 1;
    }
    let counts: Vec<String> = counts.iter().map(|n| format!("{n:04X}")).collect();
    assert_eq!(
        String::from_utf8_lossy(&uninterrupted),
        format!("{}\n{TAKEN:08X}\n", counts.join(" "))
    );

    let mut machine = irq_user(&kvm);
    let (before, stopped) = run_raising(&mut machine, first);
    assert!(stopped && before.is_empty());
    raise_pending(&machine);
    let registers = machine.user_pic().unwrap().registers();
    assert_ne!(registers.master.isr, 0, "interrupt 20's line is in service");
    assert_eq!(
        (registers.master.irr, registers.slave.irr),
        (1 << 0, 1 << 5),
        "lines 0 and 13 pending"
    );
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    assert_eq!(snapshot.devices.user_pic, Some(registers));
    let loaded = Snapshot::from_bytes(&snapshot.to_bytes()).unwrap();
    assert_eq!(loaded, snapshot);
    let mut restored = loaded.restore(&kvm).expect("restores and verifies");
    assert_eq!(
        restored.user_pic().map(|pic| pic.registers()),
        Some(registers),
        "the restored machine's PIC holds the saved registers"
    );
    let (after, again) = run_raising(&mut restored, rest.clone());
    assert!(!again, "the snapshot port is pulled once");
    assert_eq!(
        String::from_utf8_lossy(&after),
        String::from_utf8_lossy(&uninterrupted)
    );
    let mut child = snapshot.fork_image().unwrap().spawn(&kvm).unwrap();
    assert_eq!(child.user_pic().map(|pic| pic.registers()), Some(registers));
    assert_eq!(run_raising(&mut child, rest).0, uninterrupted, "a fork");
}

/// Runs `machine` to its end, which must be a guest fault: its message.
fn fault_of(machine: &mut Machine) -> String {
    let control = RunControl::new();
    let devices = Mutex::new(Devices::new(Vec::new()));
    let timeout = Some(Duration::from_secs(60));
    let error = machine
        .run_all(&devices, &NoObserver, timeout, &control)
        .expect_err("the guest faults");
    assert!(
        matches!(error, rawkvm::Error::GuestFault { .. }),
        "{error:?}"
    );
    error.to_string()
}

#[test]
fn a_user_mode_guest_snapshotted_before_its_page_fault_still_reports_it() {
    let Some(kvm) = common::kvm_or_skip("snapshot exception stub") else {
        return;
    };
    let expected = fault_of(&mut common::machine(&kvm, "user_fault"));
    assert!(
        expected.contains("CPU exception #PF (page fault, vector 14) at CPL 3"),
        "{expected}"
    );
    let mut machine = common::machine(&kvm, "user_fault");
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    assert!(snapshot.vcpus[0].exception_stub, "mode=user installs it");
    let loaded = Snapshot::from_bytes(&snapshot.to_bytes()).unwrap();
    assert!(loaded.vcpus[0].exception_stub);
    // Without the flag the stub's `hlt` would end the run as an ordinary halt.
    assert_eq!(fault_of(&mut loaded.restore(&kvm).unwrap()), expected);
    let image = loaded.fork_image().unwrap();
    assert_eq!(fault_of(&mut image.spawn(&kvm).unwrap()), expected);
}

/// Answers MSR 0xC0DE0001 (the `msr` guest's), counting the MSR exits; the console is COM1's
/// and the debug port's.
struct MsrDevice {
    devices: Devices<Vec<u8>>,
    msr_exits: u32,
}

const GUEST_MSR: u32 = 0xC0DE_0001;

impl IoHandler for MsrDevice {
    fn pio_read(&mut self, port: u16, data: &mut [u8]) -> std::io::Result<Claim> {
        self.devices.pio_read(port, data)
    }

    fn pio_write(&mut self, port: u16, data: &[u8]) -> std::io::Result<Claim> {
        self.devices.pio_write(port, data)
    }

    fn mmio_read(&mut self, addr: u64, data: &mut [u8]) -> std::io::Result<Claim> {
        self.devices.mmio_read(addr, data)
    }

    fn mmio_write(&mut self, addr: u64, data: &[u8]) -> std::io::Result<Claim> {
        self.devices.mmio_write(addr, data)
    }

    fn msr_read(&mut self, index: u32, value: &mut u64) -> std::io::Result<Claim> {
        self.msr_exits += 1;
        *value = 0x1122_3344_5566_7788;
        Ok(if index == GUEST_MSR {
            Claim::Claimed
        } else {
            Claim::Unclaimed
        })
    }

    fn msr_write(&mut self, index: u32, _value: u64) -> std::io::Result<Claim> {
        self.msr_exits += 1;
        Ok(if index == GUEST_MSR {
            Claim::Claimed
        } else {
            Claim::Unclaimed
        })
    }
}

/// Runs the `msr` guest: what it printed and how many MSR exits it made.
fn run_msr(machine: &mut Machine) -> (String, u32) {
    let mut device = MsrDevice {
        devices: Devices::new(Vec::new()),
        msr_exits: 0,
    };
    machine.run(&mut device, &mut NoObserver).unwrap();
    device.devices.console.flush().unwrap();
    let console = String::from_utf8_lossy(device.devices.console.sink()).into_owned();
    (console, device.msr_exits)
}

#[test]
fn a_user_msr_guest_restored_still_gets_its_msr_exits() {
    let Some(kvm) = common::kvm_or_skip("snapshot user-msr") else {
        return;
    };
    if kvm.check_extension(rawkvm::bindings::KVM_CAP_X86_USER_SPACE_MSR) <= 0 {
        common::skip(format_args!(
            "snapshot user-msr: KVM_CAP_X86_USER_SPACE_MSR absent"
        ));
        return;
    }
    let expected = run_msr(&mut common::machine(&kvm, "msr"));
    assert_eq!(expected, ("1122334455667788\nok\n".to_string(), 2));
    let mut machine = common::machine(&kvm, "msr");
    assert!(machine.settings().user_space_msr, "the setup says user-msr");
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    assert!(snapshot.vm.settings.user_space_msr);
    let loaded = Snapshot::from_bytes(&snapshot.to_bytes()).unwrap();
    // Without user-space MSR exits KVM injects #GP itself: "#GP\n" and no exit.
    let mut restored = loaded.restore(&kvm).unwrap();
    assert!(restored.settings().user_space_msr);
    assert_eq!(run_msr(&mut restored), expected);
    let mut child = loaded.fork_image().unwrap().spawn(&kvm).unwrap();
    assert_eq!(run_msr(&mut child), expected);
}

#[test]
fn the_guest_tsc_rate_is_saved_and_a_rate_the_host_cannot_run_is_refused() {
    let Some(kvm) = common::kvm_or_skip("snapshot tsc rate") else {
        return;
    };
    let host = common::machine(&kvm, "snapshot_count").vcpus_mut()[0]
        .tsc_khz()
        .unwrap();
    let mut machine = common::guest_machine(&kvm, "snapshot_count", |config| {
        config.cpu.tsc_khz = Some(host);
    })
    .unwrap();
    assert_eq!(machine.settings().tsc_khz, Some(host));
    run(&mut machine);
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    assert_eq!(snapshot.vm.settings.tsc_khz, Some(host));
    let restored = snapshot
        .restore(&kvm)
        .expect("the host's own rate restores");
    assert_eq!(restored.settings().tsc_khz, Some(host));
    // A machine without --tsc-khz records none.
    let mut plain = common::machine(&kvm, "snapshot_count");
    assert_eq!(snapshot_of(&kvm, &mut plain).vm.settings.tsc_khz, None);

    // Half the host's rate: only a host with TSC scaling can run it.
    let mut slower = snapshot;
    slower.vm.settings.tsc_khz = Some(host / 2);
    match slower.restore(&kvm) {
        Ok(mut restored) => {
            assert_eq!(restored.vcpus_mut()[0].tsc_khz().unwrap(), host / 2);
        }
        Err(error) => {
            assert!(
                matches!(
                    &error,
                    rawkvm::Error::Snapshot(SnapshotError::TscRate { vcpu: 0, saved, host: here, .. })
                        if *saved == host / 2 && *here == host
                ),
                "{error:?}"
            );
            let text = error.to_string();
            assert!(
                text.starts_with(&format!(
                    "vCPU 0: the snapshot's guest TSC runs at {} kHz, a new vCPU here at {host} kHz, and KVM_SET_TSC_KHZ",
                    host / 2
                )),
                "{text}"
            );
            assert!(text.ends_with("or can be scaled to it"), "{text}");
            assert_eq!(error.kind(), rawkvm::error::ErrorKind::Image, "status 4");
        }
    }
}

/// Writes the snapshot seeds of the `snapshot_file` fuzz target
/// (`tests/fuzz/corpus/snapshot_file/seed_*`, all but `seed_version_1`, which an older
/// rawkvm wrote): a valid file holding every kind of section a machine without an in-kernel
/// irqchip has (`irq_user` at its snapshot port, small, its user-space PIC with one line in
/// service and one pending, user-space MSR exits, the host's TSC rate, two coalesced zones;
/// real mode, so no exception stub), and copies of it broken one way each. `tests/fuzz_corpus.rs` checks that each fails
/// as its name says.
#[test]
#[ignore = "rewrites tests/fuzz/corpus/snapshot_file/seed_*: run with --ignored to regenerate"]
fn regenerate_the_snapshot_file_seeds() {
    use rawkvm::devices::{Space, WriteOnlyZone};
    use rawkvm::snapshot::crc32::crc32;
    use rawkvm::snapshot::decode::read_sections;
    use rawkvm::snapshot::format::SectionKind;

    let kvm = common::kvm_or_skip("snapshot seeds").expect("the seeds need KVM");
    let host = common::machine(&kvm, "snapshot_count").vcpus_mut()[0]
        .tsc_khz()
        .unwrap();
    // irq_user stopped in the handler of its second interrupt (line 1), line 9 raised since.
    let mut machine = common::guest_machine(&kvm, "irq_user", |config| {
        config.param = Some(0x8004);
        config.user_space_msr = true;
        config.cpu.tsc_khz = Some(host);
    })
    .unwrap();
    assert!(
        run_raising(&mut machine, edges(0..2)).1,
        "stopped at the snapshot port"
    );
    assert!(machine.user_pic().unwrap().raise(9));
    let devices = DeviceState {
        coalesced_zones: vec![
            WriteOnlyZone {
                space: Space::Port,
                start: 0xE9,
                len: 1,
            },
            WriteOnlyZone {
                space: Space::Memory,
                start: 0xD000_0000,
                len: 8,
            },
        ],
        ..DeviceState::default()
    };
    let valid = machine.snapshot(&kvm, &devices).unwrap().to_bytes();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/snapshot_file");
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(format!("seed_{name}")), bytes).unwrap();
    };
    // The payload range of the first section of `kind`.
    let payload_of = |kind: SectionKind| {
        let sections = read_sections(&valid).unwrap();
        let (header, payload) = sections
            .sections
            .iter()
            .find(|(header, _)| header.kind == kind.info().number)
            .unwrap();
        let start = header.payload_offset() as usize;
        (header.offset as usize, start..start + payload.len())
    };
    // `valid` with `edit` applied to the payload of `kind`, its checksum made to match.
    let with_payload = |kind: SectionKind, edit: &dyn Fn(&mut [u8])| {
        let (section, payload) = payload_of(kind);
        let mut bytes = valid.clone();
        edit(&mut bytes[payload.clone()]);
        let crc = crc32(&bytes[payload]);
        bytes[section + 16..section + 20].copy_from_slice(&crc.to_le_bytes());
        bytes
    };
    // `valid` with `edit` applied to the header, its checksum made to match.
    let with_header = |edit: &dyn Fn(&mut [u8])| {
        let mut bytes = valid.clone();
        edit(&mut bytes[..72]);
        let crc = crc32(&bytes[..72]);
        bytes[72..76].copy_from_slice(&crc.to_le_bytes());
        bytes
    };
    write("valid", &valid);
    write("header_only", &valid[..80]);
    write("truncated", &valid[..5000]);
    let mut bad_magic = valid.clone();
    bad_magic[0] = b'X';
    write("bad_magic", &bad_magic);
    let mut newer = valid.clone();
    newer[8..12].copy_from_slice(&3u32.to_le_bytes());
    write("newer_version", &newer);
    write(
        "other_arch",
        &with_header(&|header| header[16..32].copy_from_slice(b"aarch64\0\0\0\0\0\0\0\0\0")),
    );
    write(
        "new_section_in_version_1",
        &with_header(&|header| header[8..12].copy_from_slice(&1u32.to_le_bytes())),
    );
    let (_, memory) = payload_of(SectionKind::Memory);
    let mut bad_checksum = valid.clone();
    bad_checksum[memory.end - 1] ^= 0xFF;
    write("bad_checksum", &bad_checksum);
    write(
        "slot_too_large",
        &with_payload(SectionKind::Memory, &|slot| {
            slot[8..16].copy_from_slice(&(8u64 << 30).to_le_bytes());
        }),
    );
    // The master's init stage (byte 8): 4 is none.
    write(
        "bad_user_pic",
        &with_payload(SectionKind::UserPic, &|pic| pic[8] = 4),
    );
    write(
        "bad_vcpu_host",
        &with_payload(SectionKind::VcpuHost, &|host| host[0] = 0b11),
    );
    write(
        "bad_settings",
        &with_payload(SectionKind::Settings, &|settings| settings[0] = 0b101),
    );
}

/// `bytes` (a version-2 file) as the version-1 file an older rawkvm would have written: the
/// sections format version 2 added left out, the header saying version 1.
fn as_version_1(bytes: &[u8]) -> Vec<u8> {
    use rawkvm::snapshot::crc32::crc32;
    use rawkvm::snapshot::decode::read_sections;
    use rawkvm::snapshot::format::{HEADER_LEN, SectionKind};
    let sections = read_sections(bytes).unwrap();
    let kept: Vec<_> = sections
        .sections
        .iter()
        .filter(|(header, _)| {
            SectionKind::from_number(header.kind).is_some_and(|kind| kind.info().since == 1)
        })
        .collect();
    let mut out = bytes[..HEADER_LEN].to_vec();
    out[8..12].copy_from_slice(&1u32.to_le_bytes());
    out[64..68].copy_from_slice(&(kept.len() as u32).to_le_bytes());
    let crc = crc32(&out[..72]);
    out[72..76].copy_from_slice(&crc.to_le_bytes());
    for (header, payload) in kept {
        let start = header.offset as usize;
        out.extend_from_slice(&bytes[start..start + 24]);
        out.extend_from_slice(payload);
    }
    out
}

#[test]
fn a_version_1_file_loads_as_a_machine_without_the_sections_version_2_added() {
    let Some(kvm) = common::kvm_or_skip("snapshot version 1") else {
        return;
    };
    let mut machine = common::guest_machine(&kvm, "snapshot_count", |config| {
        config.irqchip = IrqChip::User;
    })
    .unwrap();
    let (first_half, _) = run(&mut machine);
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    assert!(snapshot.devices.user_pic.is_some());
    let old = Snapshot::from_bytes(&as_version_1(&snapshot.to_bytes())).expect("version 1 loads");
    assert_eq!(
        old.devices.user_pic, None,
        "version 1 had no user-space PIC"
    );
    assert_eq!(
        old,
        Snapshot {
            devices: DeviceState {
                user_pic: None,
                ..snapshot.devices.clone()
            },
            ..snapshot.clone()
        }
    );
    let mut restored = old.restore(&kvm).unwrap();
    assert!(restored.user_pic().is_none());
    let mut whole = common::machine(&kvm, "snapshot_count");
    let uninterrupted = [run(&mut whole).0, run(&mut whole).0].concat();
    assert_eq!([first_half, run(&mut restored).0].concat(), uninterrupted);
}

#[test]
fn a_snapshot_from_another_cpu_is_refused_before_any_vm_is_made() {
    let Some(kvm) = common::kvm_or_skip("snapshot from another CPU") else {
        return;
    };
    let mut machine = common::machine(&kvm, "hlt");
    let snapshot = snapshot_of(&kvm, &mut machine);
    drop(machine);
    let host_vendor = kvm.supported_cpuid().unwrap().vendor().unwrap();
    // Leaf 0 of the saved table says another vendor (ebx, edx, ecx spell "OtherVendor!").
    let mut other_vendor = snapshot.clone();
    let leaf0 = other_vendor.vcpus[0]
        .cpuid
        .iter_mut()
        .find(|e| e.function == 0)
        .expect("a CPUID table with leaf 0");
    let name = *b"OtherVendor!";
    let word = |i: usize| u32::from_le_bytes(name[i..i + 4].try_into().unwrap());
    (leaf0.ebx, leaf0.edx, leaf0.ecx) = (word(0), word(4), word(8));
    let error = other_vendor.restore(&kvm).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "vCPU 0's CPU vendor is OtherVendor!, this host's {}: register state, MSRs and \
             the XSAVE layout follow the vendor; resume the snapshot on a host whose vendor is \
             OtherVendor!",
            String::from_utf8_lossy(&host_vendor)
        )
    );
    assert_eq!(error.kind(), rawkvm::error::ErrorKind::Image, "status 4");
    let image = other_vendor.fork_image().unwrap();
    assert!(matches!(
        image.spawn(&kvm).unwrap_err(),
        rawkvm::Error::Snapshot(SnapshotError::OtherCpu { vcpu: 0, .. })
    ));
    // An XSAVE component no x86 CPU has (bit 60 of XSTATE_BV) would be EINVAL in the kernel.
    let mut other_xsave = snapshot.clone();
    other_xsave.vcpus[0].xsave.region[129] |= 1 << 28;
    let error = other_xsave.restore(&kvm).unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("vCPU 0's XSAVE area holds components 0x10000000")
            && text.contains(": 0x1000000000000000 would be refused;"),
        "{text}"
    );
    // The snapshot itself still restores.
    snapshot.restore(&kvm).unwrap();
}
