//! `rawkvm run --snapshot-on-port / --snapshot-after`, `rawkvm resume` and
//! `rawkvm snapshot-info` as a user runs them: a guest snapshotted half way and resumed in a
//! new process prints, byte for byte, what an uninterrupted run prints; a bad snapshot file is
//! status 4 naming the section and the byte.
#![cfg(target_arch = "x86_64")]

mod common;

use common::process::run;
use common::{ScratchDir, assert_fails};

fn stdout_of(args: &[&str]) -> Vec<u8> {
    let output = run(args);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// `rawkvm run GUEST` vs `rawkvm run GUEST --snapshot-on-port 0xF5 PATH` + `rawkvm resume PATH`.
fn resumed_equals_uninterrupted(dir: &ScratchDir, guest: &[&str]) -> Vec<u8> {
    resumed_with(dir, guest, &[])
}

/// As [`resumed_equals_uninterrupted`], with `resume_flags` after `rawkvm resume PATH`.
fn resumed_with(dir: &ScratchDir, guest: &[&str], resume_flags: &[&str]) -> Vec<u8> {
    let path = dir.join("half.snap");
    let path = path.to_str().unwrap();
    let whole = stdout_of(guest);
    let first = stdout_of(&[guest, &["--snapshot-on-port", "0xF5", path]].concat());
    let second = stdout_of(&[&["resume", path][..], resume_flags].concat());
    assert!(
        !first.is_empty() && !second.is_empty(),
        "the snapshot is half way"
    );
    assert_eq!(
        String::from_utf8_lossy(&[first, second].concat()),
        String::from_utf8_lossy(&whole)
    );
    whole
}

#[test]
fn a_guest_resumed_in_a_new_process_prints_what_an_uninterrupted_run_prints() {
    if !common::kvm_present("snapshot cli") {
        return;
    }
    eprintln!("backend: {}", common::backend());
    let dir = ScratchDir::new("snapshot-cli");
    let whole = resumed_equals_uninterrupted(&dir, &["run", "snapshot_count"]);
    assert!(whole.ends_with(b"05D8:05D8:05D8\n"));
    let whole = resumed_equals_uninterrupted(&dir, &["run", "snapshot_count", "--param", "100"]);
    assert!(
        whole.ends_with(b"0064\n29AE:29AE:29AE\n"),
        "sum of i^2 to 100 = 338350 = 0x529AE"
    );
}

#[test]
fn a_pit_ticked_guest_with_the_kernels_irqchip_resumes_counting_where_it_stopped() {
    if !common::kvm_present("snapshot of the kernel's irqchip") {
        return;
    }
    eprintln!("backend: {}", common::backend());
    let dir = ScratchDir::new("snapshot-irqchip");
    // timer_pit (irqchip=kernel): 100 PIT ticks at 1 kHz, the snapshot port pulled at tick 50
    // (param bit 15). The resumed guest counts on only if the new VM's PICs route IRQ 0 to
    // vector 0x20 unmasked and its PIT ticks as programmed: a VM without them sleeps in `hlt`
    // until the timeout (status 7).
    let timeout = ["--timeout", "60s"];
    let guest = [&["run", "timer_pit", "--param", "0x8064"][..], &timeout].concat();
    let whole = resumed_with(&dir, &guest, &timeout);
    assert_eq!(String::from_utf8_lossy(&whole), "half 0032\nticks 0064\n");
    // The file holds the PICs, the IOAPIC, the PIT and the local APIC.
    let path = dir.join("half.snap");
    let text = String::from_utf8(stdout_of(&["snapshot-info", path.to_str().unwrap()])).unwrap();
    for kind in ["vm.irqchip", "vm.pit2", "vcpu.lapic"] {
        assert!(
            text.contains(&format!("  {kind} ")),
            "{kind} missing:\n{text}"
        );
    }
}

#[test]
fn snapshot_info_lists_every_section_with_offsets_and_checksums() {
    if !common::kvm_present("snapshot-info") {
        return;
    }
    let dir = ScratchDir::new("snapshot-info");
    let path = dir.join("s.snap");
    let path = path.to_str().unwrap();
    stdout_of(&["run", "snapshot_count", "--snapshot-on-port", "0xf5", path]);
    let text = String::from_utf8(stdout_of(&["snapshot-info", path])).unwrap();
    assert!(text.starts_with(&format!("snapshot {path}: format 2, x86_64, rawkvm ")));
    for kind in [
        "vcpu.regs",
        "vcpu.sregs",
        "vcpu.xsave",
        "vcpu.events",
        "vcpu.mp_state",
        "vcpu.debugregs",
        "memory",
        "vm.clock",
        "device.serial",
    ] {
        assert!(
            text.contains(&format!("  {kind} ")),
            "{kind} missing:\n{text}"
        );
    }
    // The guest stopped right after its `out 0xF5, al` with the count 8 in AL.
    assert!(text.contains("rax=0x8"), "{text}");
    assert!(
        text.contains("        80  vcpu.regs"),
        "the first section follows the header"
    );
    let json = String::from_utf8(stdout_of(&["snapshot-info", path, "--json"])).unwrap();
    let json = common::json::parse(json.trim()).unwrap();
    assert_eq!(json.get("arch").and_then(|v| v.as_str()), Some("x86_64"));
    let sections = json.get("sections").and_then(|v| v.as_array()).unwrap();
    assert_eq!(sections[0].get("offset").and_then(|v| v.as_u64()), Some(80));
    assert_eq!(
        sections[0].get("length").and_then(|v| v.as_u64()),
        Some(144)
    );
    let size = std::fs::metadata(path).unwrap().len();
    assert_eq!(json.get("file_size").and_then(|v| v.as_u64()), Some(size));
}

#[test]
fn a_snapshot_after_a_duration_of_a_spinning_guest_resumes_spinning() {
    if !common::kvm_present("snapshot-after") {
        return;
    }
    let dir = ScratchDir::new("snapshot-after");
    let path = dir.join("spin.snap");
    let path = path.to_str().unwrap();
    stdout_of(&["run", "spin", "--snapshot-after", "100ms", path]);
    let output = run(&["resume", path, "--timeout", "100ms"]);
    assert_fails(
        &output,
        7,
        "guest did not halt within 100 ms (vCPU 0 stopped at RIP 0x1000)",
    );
}

#[test]
fn bad_snapshot_files_are_status_4_naming_the_section_and_byte() {
    let dir = ScratchDir::new("snapshot-bad");
    let seeds =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz/corpus/snapshot_file");
    let seed = |name: &str| {
        seeds
            .join(format!("seed_{name}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    for command in ["resume", "snapshot-info"] {
        let output = run(&[command, &seed("truncated")]);
        assert_fails(&output, 4, "section 3 at byte 4728: the file is truncated");
        let output = run(&[command, &seed("bad_checksum")]);
        assert_fails(&output, 4, "section 11 (memory, slot 0) at byte");
        assert_fails(&output, 4, "checksum mismatch");
        assert_fails(
            &run(&[command, &seed("newer_version")]),
            4,
            "format version 3 is newer",
        );
        assert_fails(&run(&[command, &seed("other_arch")]), 4, "taken on aarch64");
        assert_fails(
            &run(&[command, &seed("slot_too_large")]),
            4,
            "memory does not fit",
        );
        assert_fails(
            &run(&[command, &seed("bad_magic")]),
            4,
            "not a rawkvm snapshot",
        );
        let missing = dir.join("missing.snap");
        assert_fails(&run(&[command, missing.to_str().unwrap()]), 4, "ENOENT");
    }
}

#[test]
fn snapshot_flags_are_checked() {
    let bad = [
        (&["run", "--snapshot-on-port", "0xF5"][..], "needs a PATH"),
        (
            &["run", "--snapshot-on-port", "0x10000", "x"][..],
            "a port is 0..=0xFFFF",
        ),
        (
            &["run", "--snapshot-after", "soon", "x"][..],
            "--snapshot-after soon",
        ),
        (
            &[
                "run",
                "--snapshot-on-port",
                "0xF5",
                "a",
                "--snapshot-after",
                "1s",
                "b",
            ][..],
            "one snapshot file",
        ),
        (
            &[
                "run",
                "mutate",
                "--repeat",
                "2",
                "--snapshot-on-port",
                "0xF5",
                "x",
            ][..],
            "--repeat",
        ),
        (&["resume"][..], "give the snapshot's PATH"),
        (&["snapshot-info"][..], "give the snapshot's PATH"),
    ];
    for (args, needle) in bad {
        assert_fails(&run(args), 2, needle);
    }
}

/// The last line of a run's stderr: the error.
fn last_stderr_line(output: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    stderr.lines().last().unwrap_or_default().to_string()
}

#[test]
fn a_user_mode_guest_resumed_before_its_page_fault_ends_with_status_6_and_the_same_message() {
    let Some(kvm) = common::kvm_or_skip("snapshot of user_fault") else {
        return;
    };
    let whole = run(&["run", "user_fault"]);
    assert_fails(
        &whole,
        6,
        "CPU exception #PF (page fault, vector 14) at CPL 3",
    );
    // No port to pull at CPL 3: the snapshot is taken before the first instruction.
    let dir = ScratchDir::new("snapshot-user-fault");
    let path = dir.join("fault.snap");
    let mut machine = common::machine(&kvm, "user_fault");
    let snapshot = machine
        .snapshot(&kvm, &rawkvm::snapshot::DeviceState::default())
        .unwrap();
    snapshot.save(&path).unwrap();
    let path = path.to_str().unwrap();
    let info = String::from_utf8(stdout_of(&["snapshot-info", path])).unwrap();
    assert!(
        info.contains("  vcpu.host                vCPU 0            4  ")
            && info.contains("flags=0x1: exception stub installed"),
        "{info}"
    );
    let resumed = run(&["resume", path]);
    assert_fails(&resumed, 6, "CPU exception #PF");
    assert_eq!(last_stderr_line(&resumed), last_stderr_line(&whole));
}

#[test]
fn a_user_pic_and_a_tsc_rate_are_saved_listed_and_resumed() {
    if !common::kvm_present("snapshot of the user PIC and TSC rate") {
        return;
    }
    let caps = String::from_utf8(stdout_of(&["caps", "--json"])).unwrap();
    let caps = common::json::parse(caps.trim()).unwrap();
    let Some(khz) = caps.get("tsc_khz").and_then(|v| v.as_u64()) else {
        common::skip(format_args!(
            "snapshot TSC rate: KVM_GET_TSC_KHZ unavailable"
        ));
        return;
    };
    let dir = ScratchDir::new("snapshot-user-pic");
    let khz = khz.to_string();
    // snapshot_count takes no interrupts: the PIC comes back as the guest left it (reset), and
    // the resumed run still prints what an uninterrupted one does.
    let guest = [
        "run",
        "snapshot_count",
        "--irqchip",
        "user",
        "--tsc-khz",
        &khz,
    ];
    resumed_equals_uninterrupted(&dir, &guest);
    let path = dir.join("half.snap");
    let path = path.to_str().unwrap();
    let text = String::from_utf8(stdout_of(&["snapshot-info", path])).unwrap();
    for (kind, summary) in [
        ("vcpu.host", "flags=0x0: no exception stub".to_string()),
        (
            "vm.settings",
            format!("flags=0x0: user-space MSR exits off, guest TSC {khz} kHz"),
        ),
        (
            "device.user_pic",
            "master base=0x8 imr=0xff irr=0x0 isr=0x0 (not initialised); slave base=0x70 \
             imr=0xff irr=0x0 isr=0x0 (not initialised); pending vector none"
                .to_string(),
        ),
    ] {
        let line = text
            .lines()
            .find(|line| line.contains(&format!("  {kind} ")))
            .unwrap_or_else(|| panic!("{kind} missing:\n{text}"));
        assert!(line.ends_with(&summary), "{line}");
    }
    let json = String::from_utf8(stdout_of(&["snapshot-info", path, "--json"])).unwrap();
    let json = common::json::parse(json.trim()).unwrap();
    assert_eq!(json.get("format_version").and_then(|v| v.as_u64()), Some(2));
    let sections = json.get("sections").and_then(|v| v.as_array()).unwrap();
    let user_pic = sections
        .iter()
        .find(|s| s.get("kind").and_then(|v| v.as_str()) == Some("device.user_pic"))
        .expect("a device.user_pic section");
    assert_eq!(user_pic.get("number").and_then(|v| v.as_u64()), Some(0x32));
    assert_eq!(user_pic.get("length").and_then(|v| v.as_u64()), Some(16));
    // Without --irqchip user there is no such section.
    let plain = dir.join("plain.snap");
    let plain = plain.to_str().unwrap();
    stdout_of(&["run", "snapshot_count", "--snapshot-on-port", "0xf5", plain]);
    let text = String::from_utf8(stdout_of(&["snapshot-info", plain])).unwrap();
    assert!(!text.contains("device.user_pic"), "{text}");
    assert!(
        text.contains("flags=0x0: user-space MSR exits off, guest TSC the host's"),
        "{text}"
    );
}
