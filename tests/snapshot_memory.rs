//! Snapshots of a guest with RAM in use: a 64 MiB guest with half its pages filled is captured
//! in exactly the runs its pages make, round-trips through a file byte for byte, and the file
//! is exactly its header and sections; `rawkvm bench snapshot` and `bench fork` refuse bad
//! arguments with status 2 and report the pages they filled.
#![cfg(target_arch = "x86_64")]

mod common;

use common::filled::{self, PAGE, WORDS_PER_PAGE};
use common::process::{spawn, wait_output};
use common::{ScratchDir, assert_fails, status};
use rawkvm::snapshot::decode::read_sections;
use rawkvm::snapshot::format::{HEADER_LEN, SECTION_HEADER_LEN, SectionKind};
use rawkvm::snapshot::{DeviceState, Snapshot};

/// Page 20, in a gap between filled clusters, whose only non-zero byte is its last.
const LAST_BYTE_PAGE: u64 = 20;
/// Page 50, in another gap, written with zeros: touched, but not stored.
const ZERO_WRITTEN_PAGE: u64 = 50;
/// The last page of RAM, after the last filled cluster, written with data.
const LAST_PAGE: u64 = filled::MEM / PAGE - 1;

/// `(first page, pages)` of each run of slot 0.
fn runs_of(snapshot: &Snapshot) -> Vec<(u64, u64)> {
    snapshot.vm.slots[0]
        .runs
        .iter()
        .map(|run| (run.first_page, run.words.len() as u64 / WORDS_PER_PAGE))
        .collect()
}

/// Where two word strings first differ, if they do.
fn first_difference(a: &[u64], b: &[u64]) -> Option<usize> {
    a.iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .or((a.len() != b.len()).then(|| a.len().min(b.len())))
}

#[test]
fn a_filled_64_mib_guest_round_trips_through_a_file_byte_for_byte() {
    let Some(kvm) = common::kvm_or_skip("filled snapshot round trip") else {
        return;
    };
    let mut machine = filled::filled_machine(&kvm);
    let memory = machine.vm().memory();
    memory
        .write(LAST_BYTE_PAGE * PAGE + PAGE - 1, &[0xAB])
        .unwrap();
    memory
        .write(ZERO_WRITTEN_PAGE * PAGE, &[0; PAGE as usize])
        .unwrap();
    memory
        .write_words(LAST_PAGE * PAGE, &filled::words(LAST_PAGE, 1))
        .unwrap();
    let snapshot = machine.snapshot(&kvm, &DeviceState::default()).unwrap();

    // The hlt image's page, the page with one byte, the filled clusters and the last page:
    // nothing else (not the page of zeros).
    let mut expected = vec![(1, 1), (LAST_BYTE_PAGE, 1)];
    expected.extend(filled::filled_runs());
    expected.push((LAST_PAGE, 1));
    assert_eq!(runs_of(&snapshot), expected);
    let runs = &snapshot.vm.slots[0].runs;
    let mut last_byte = vec![0u64; WORDS_PER_PAGE as usize];
    last_byte[WORDS_PER_PAGE as usize - 1] = 0xAB << 56;
    assert_eq!(runs[1].words, last_byte);
    assert_eq!(runs[2].words, filled::words(32, 16));
    assert_eq!(runs[runs.len() - 1].words, filled::words(LAST_PAGE, 1));

    let dir = ScratchDir::new("snapshot-memory");
    let path = dir.join("filled.snap");
    let saved = snapshot.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(saved, bytes.len() as u64);
    // The file is its header and its sections, nothing more; the memory section is the
    // slot's header and each run's header and pages.
    let sections = read_sections(&bytes).unwrap();
    let total: u64 = sections
        .sections
        .iter()
        .map(|(header, _)| SECTION_HEADER_LEN as u64 + header.length)
        .sum();
    assert_eq!(HEADER_LEN as u64 + total, saved);
    let memory_kind = SectionKind::Memory.info().number;
    let memory: Vec<u64> = sections
        .sections
        .iter()
        .filter(|(header, _)| header.kind == memory_kind)
        .map(|(header, _)| header.length)
        .collect();
    let pages: u64 = expected.iter().map(|(_, pages)| pages).sum();
    assert_eq!(memory, [24 + 16 * expected.len() as u64 + pages * PAGE]);

    let loaded = Snapshot::load(&path).unwrap();
    assert!(loaded == snapshot, "the loaded snapshot differs");
    let mut restored = loaded.restore(&kvm).unwrap();
    loaded.verify(&mut restored).unwrap();
    let (original, back) = (filled::ram(&machine), filled::ram(&restored));
    assert_eq!(first_difference(&original, &back), None);
}

#[test]
fn bench_snapshot_and_fork_refuse_bad_arguments_with_status_2() {
    let size = "RAM must be a multiple of 4 KiB, from 8 KiB (the image is at 0x1000) to 4 GiB";
    let share = "the share of the guest's pages to fill, in percent: 0 to 100";
    let cases: [(&[&str], String); 9] = [
        (&["--mem", "0"], format!("bench snapshot: --mem 0: {size}")),
        (
            &["--mem", "8G"],
            format!("bench snapshot: --mem 8G: {size}"),
        ),
        (
            &["--mem", "6000"],
            format!("bench snapshot: --mem 6000: {size}"),
        ),
        (
            &["--mem", "x"],
            "--mem x: \"x\" has an unknown suffix (use K, M, G or T)".into(),
        ),
        (
            &["--fill", "101"],
            format!("bench snapshot: --fill 101: {share}"),
        ),
        (
            &["--reps", "0"],
            "bench snapshot: --reps 0: 1 to 1000".into(),
        ),
        (&["--what"], "bench snapshot: unknown option --what".into()),
        (&["--mem"], "--mem needs a value".into()),
        (
            &["extra"],
            "bench snapshot: unexpected argument \"extra\"".into(),
        ),
    ];
    for (args, message) in cases {
        let output = common::process::run(&[&["bench", "snapshot"][..], args].concat());
        assert_fails(
            &output,
            status::USAGE,
            &format!("rawkvm: error: {message}\n"),
        );
    }
    for (args, message) in [
        (["--mem", "4K"], format!("bench fork: --mem 4K: {size}")),
        (
            ["--fill", "101"],
            format!("bench fork: --fill 101: {share}"),
        ),
    ] {
        let output = common::process::run(&[&["bench", "fork"][..], &args].concat());
        assert_fails(
            &output,
            status::USAGE,
            &format!("rawkvm: error: {message}\n"),
        );
    }
}

/// The `key=value` fields of a bench line.
fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split_whitespace()
        .filter_map(|item| item.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, value)| value)
}

#[test]
fn bench_snapshot_and_fork_report_the_pages_they_filled_and_leave_no_files() {
    if !common::kvm_present("bench snapshot") {
        return;
    }
    let child = spawn(
        &["bench", "snapshot", "--mem", "1M", "--reps", "1"],
        std::process::Stdio::piped(),
    );
    let pid = child.id();
    let output = wait_output(child);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    // 1 MiB is 16 clusters of 16 pages; at 50 % the even ones, 2 to 14, are filled: 7 runs of
    // 16 pages, and the hlt image's page is a run of its own.
    assert!(
        lines[0].starts_with("snapshot mem=1MiB fill=50 reps=1 stored_pages=113 runs=8 "),
        "{stdout}"
    );
    for key in [
        "file_bytes",
        "capture/copy",
        "save/write",
        "load/read",
        "restore/cold",
        "verify_ms",
        "cold/spawn",
    ] {
        let value = field(lines[0], key).unwrap_or_else(|| panic!("{key} in {stdout}"));
        assert!(value.parse::<f64>().is_ok(), "{key}={value}");
    }
    let prefix = format!("rawkvm-bench-snapshot-{pid}-");
    let left: Vec<_> = std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|entry| entry.ok())
        .filter(|entry| entry.file_name().to_string_lossy().starts_with(&prefix))
        .collect();
    assert!(left.is_empty(), "{left:?} left behind");

    let output = common::process::run(&[
        "bench", "fork", "--mem", "1M", "--fill", "50", "--count", "1",
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("fork children=1 fork_us="), "{stdout}");
    assert!(
        stdout.contains(" mem=1MiB fill=50 filled_pages=112 "),
        "{stdout}"
    );
}
