//! Replays the checked-in fuzz corpus (`tests/fuzz/corpus/<target>/*`) through the same
//! harnesses the cargo-fuzz targets run (`rawkvm::fuzzing`), so every `cargo test`, on stable
//! Rust, exercises the decoder, the dispatch and COM1 with what the fuzzer found, including
//! any input that once crashed (kept as `crash-*` / `regression-*` files).
//!
//! Under Miri the replay is limited to the hand-written seeds (`seed_*`), to keep it short.

use std::path::{Path, PathBuf};

/// `tests/fuzz/corpus/<target>`.
fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(target)
}

/// The corpus files of `target`, sorted (under Miri only the seeds).
fn corpus(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            !cfg!(miri)
                || path
                    .file_name()
                    .and_then(|name| name.to_str())
                    .is_some_and(|name| name.starts_with("seed_"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no corpus in {}", dir.display());
    files
}

fn replay<T>(target: &str, harness: fn(&[u8]) -> T) {
    let files = corpus(target);
    for path in &files {
        let input = std::fs::read(path).unwrap();
        let outcome = std::panic::catch_unwind(|| drop(harness(&input)));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
    println!("{target}: {} inputs replayed", files.len());
}

#[test]
fn decode_exit_corpus() {
    replay("decode_exit", rawkvm::fuzzing::decode_exit);
}

/// The hand-written seeds decode as their names say, so the corpus starts from every kind of
/// exit and every kind of error. (Under Miri the replay above already runs every seed.)
#[test]
#[cfg_attr(
    miri,
    ignore = "the replay test already runs every seed under Miri; this one only re-reads them"
)]
fn the_seeds_mean_what_their_names_say() {
    use rawkvm::bindings as abi;
    use rawkvm::exit::DecodeError;
    let seed = |name: &str| {
        let path = corpus_dir("decode_exit").join(format!("seed_{name}"));
        rawkvm::fuzzing::decode_exit(&std::fs::read(path).unwrap())
    };
    let ok = [
        ("io_out_e9", abi::KVM_EXIT_IO),
        ("io_in_insb_batch_scripted", abi::KVM_EXIT_IO),
        ("io_in_last_byte", abi::KVM_EXIT_IO),
        ("io_offset_inside", abi::KVM_EXIT_IO),
        ("smallest_mapping", abi::KVM_EXIT_IO),
        ("mmio_read4", abi::KVM_EXIT_MMIO),
        ("mmio_write1_stale", abi::KVM_EXIT_MMIO),
        ("internal_error_6", abi::KVM_EXIT_INTERNAL_ERROR),
        ("system_event_2", abi::KVM_EXIT_SYSTEM_EVENT),
        ("fail_entry", abi::KVM_EXIT_FAIL_ENTRY),
        ("unknown_1000", 1000),
    ];
    for (name, reason) in ok {
        assert_eq!(seed(name), Ok(Some(reason)), "{name}");
    }
    assert_eq!(seed("run_failed_eintr"), Ok(None));
    assert_eq!(seed("run_failed_enospc"), Ok(None));
    assert_eq!(seed("io_bad_size"), Err(DecodeError::IoSize(3)));
    assert_eq!(seed("io_bad_direction"), Err(DecodeError::IoDirection(2)));
    assert_eq!(seed("io_count_zero"), Err(DecodeError::IoCount));
    assert_eq!(seed("mmio_len9"), Err(DecodeError::MmioLen(9)));
    assert_eq!(
        seed("internal_error_17"),
        Err(DecodeError::InternalNdata(17))
    );
    for name in [
        "io_ring_page_refused",
        "io_past_end",
        "io_immediate_exit",
        "io_huge_count",
    ] {
        assert!(
            matches!(seed(name), Err(DecodeError::IoData { .. })),
            "{name}"
        );
    }
}

#[test]
fn com1_corpus() {
    replay("com1", rawkvm::fuzzing::com1);
}

#[test]
#[cfg(target_arch = "x86_64")]
fn snapshot_file_corpus() {
    replay("snapshot_file", rawkvm::fuzzing::snapshot_file);
}

/// Each hand-made snapshot seed fails (or loads) as its name says, naming the section and the
/// byte where the problem is.
#[test]
#[cfg(target_arch = "x86_64")]
#[cfg_attr(miri, ignore)]
fn the_snapshot_seeds_mean_what_their_names_say() {
    use rawkvm::snapshot::Problem;
    let load = |name: &str| {
        let path = corpus_dir("snapshot_file").join(format!("seed_{name}"));
        rawkvm::fuzzing::snapshot_file(&std::fs::read(path).unwrap())
    };
    assert_eq!(load("valid"), Ok(1));
    assert_eq!(load("version_1"), Ok(1), "a version-1 file still loads");
    let snapshot = |name: &str| {
        let path = corpus_dir("snapshot_file").join(format!("seed_{name}"));
        rawkvm::snapshot::Snapshot::from_bytes(&std::fs::read(path).unwrap()).unwrap()
    };
    // Version 1 had no rawkvm-side sections: a machine without them.
    let old = snapshot("version_1");
    assert_eq!(old.devices.user_pic, None);
    assert!(!old.vcpus[0].exception_stub);
    assert_eq!(old.vm.settings, Default::default());
    // The valid seed holds each of them.
    let new = snapshot("valid");
    let pic = new.devices.user_pic.expect("a user-space PIC");
    assert_eq!((pic.master.isr, pic.slave.irr), (1 << 1, 1 << 1));
    assert!(new.vm.settings.user_space_msr && new.vm.settings.tsc_khz.is_some());
    assert_eq!(new.devices.coalesced_zones.len(), 2);
    let failure = |name: &str| load(name).expect_err(name);
    let error = failure("truncated");
    assert!(
        matches!(error.problem, Problem::Truncated { .. }),
        "{error}"
    );
    assert_eq!((error.section.as_str(), error.offset), ("section 3", 4728));
    let error = failure("header_only");
    assert_eq!((error.section.as_str(), error.offset), ("section 0", 80));
    assert!(matches!(
        error.problem,
        Problem::Truncated {
            needed: 4,
            available: 0
        }
    ));
    assert_eq!(failure("bad_magic").problem, Problem::BadMagic);
    assert_eq!(
        failure("newer_version").problem,
        Problem::NewerVersion {
            found: 3,
            supported: 2
        }
    );
    let error = failure("other_arch");
    assert_eq!(
        (error.offset, error.problem),
        (
            16,
            Problem::OtherArchitecture {
                found: "aarch64".into()
            }
        )
    );
    let error = failure("bad_checksum");
    assert!(matches!(error.problem, Problem::Checksum { .. }), "{error}");
    assert_eq!(error.section, "section 11 (memory, slot 0)");
    let error = failure("slot_too_large");
    assert!(
        matches!(error.problem, Problem::MemoryDoesNotFit(_)),
        "{error}"
    );
    // The rawkvm-side sections are checked field by field, the error naming the section.
    let invalid = |name: &str| {
        let error = failure(name);
        let Problem::Invalid(why) = &error.problem else {
            panic!("{name}: {error}")
        };
        (error.section.clone(), why.clone())
    };
    assert_eq!(
        invalid("bad_user_pic"),
        (
            "section 16 (device.user_pic)".to_string(),
            "user PIC registers: master: init stage 4, not 0 (ready) to 3 (waiting for ICW4)"
                .to_string()
        )
    );
    assert_eq!(
        invalid("bad_vcpu_host"),
        (
            "section 10 (vcpu.host, vCPU 0)".to_string(),
            "host flags 0x3: unknown bits 0x2 (known: 0x1)".to_string()
        )
    );
    assert_eq!(
        invalid("bad_settings"),
        (
            "section 13 (vm.settings)".to_string(),
            "settings flags 0x5: unknown bits 0x4 (known: 0x1)".to_string()
        )
    );
    let (section, why) = invalid("new_section_in_version_1");
    assert_eq!(section, "section 10 (vcpu.host, vCPU 0)");
    assert_eq!(
        why,
        "vcpu.host sections exist from format version 2 on; this file is version 1"
    );
}

#[test]
fn elf_corpus() {
    replay("elf", rawkvm::fuzzing::elf);
}

/// The ELF seeds: the embedded C guest (accepted, two segments) and broken copies of it.
#[test]
#[cfg_attr(miri, ignore)]
fn the_elf_seeds_parse_as_their_names_say() {
    let seed = |name: &str| {
        let path = corpus_dir("elf").join(format!("seed_{name}"));
        rawkvm::fuzzing::elf(&std::fs::read(path).unwrap())
    };
    let c_hello = seed("c_hello").expect("the C guest parses");
    assert_eq!((c_hello.entry, c_hello.segments.len()), (0x1000, 2));
    for broken in ["truncated", "bad_class", "overlap"] {
        assert!(seed(broken).is_none(), "{broken}");
    }
}
