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
            found: 2,
            supported: 1
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
    assert_eq!(error.section, "section 10 (memory, slot 0)");
    let error = failure("slot_too_large");
    assert!(
        matches!(error.problem, Problem::MemoryDoesNotFit(_)),
        "{error}"
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
