//! `rawkvm bench snapshot [--mem SIZE]... [--fill PERCENT] [--reps N] [--kvm-device PATH]`:
//! what a snapshot of a guest with RAM in use costs, phase by phase, each against a baseline
//! that moves the same bytes the plainest way, measured in the same run. One line per size
//! (default: 1 MiB, 64 MiB and 1 GiB), medians of N repetitions after one untimed warm-up:
//!
//! ```text
//! snapshot mem=64MiB fill=50 reps=3 stored_pages=.. runs=.. file_bytes=..
//!   capture_ms=.. copy_ms=.. capture/copy=..      Machine::snapshot vs a memcpy of the
//!                                                 stored bytes into fresh memory
//!   save_ms=.. write_ms=.. save/write=..          Snapshot::save vs writing the stored bytes
//!                                                 to a file through a 1 MiB buffer
//!   load_ms=.. read_ms=.. load/read=..            Snapshot::load vs std::fs::read of the file
//!   verify_ms=.. restore_ms=.. cold_ms=.. restore/cold=..
//!                                                 Snapshot::restore (its read-back check
//!                                                 included; verify_ms is that check alone,
//!                                                 Snapshot::verify) vs a cold start reaching
//!                                                 the same RAM: Machine::new, then the data
//!                                                 written in
//!   fork_image_ms=.. spawn_ms=.. cold/spawn=..    Snapshot::fork_image once, then
//!                                                 ForkImage::spawn per child (5 a repetition)
//!   backend=..
//! ```
//!
//! The guest is `hlt` with PERCENT (default 50) of its pages filled ([`super::filled`]). The
//! files (the snapshot and the plain copy, each about the filled bytes) go to a fresh directory
//! under `$TMPDIR`, removed when the command ends, failed or not. At most four copies of the
//! filled bytes are in memory at once, besides the files' page cache: 1 GiB at 100 % wants
//! about 6 GiB free.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rawkvm::kvm::{DEFAULT_DEVICE, Kvm};
use rawkvm::snapshot::{DeviceState, Snapshot, SnapshotError};
use rawkvm::units::{Size, parse_u64};

use super::filled::{FilledGuest, PAGE, parse_fill, parse_mem};
use crate::cli::args::{Arg, Args, parse_flag};
use crate::cli::status::CliError;
use crate::cli::{print_out, unexpected};

const COMMAND: &str = "bench snapshot";
/// The sizes measured when no `--mem` is given.
const DEFAULT_SIZES: [u64; 3] = [1 << 20, 64 << 20, 1 << 30];
/// Children spawned from the fork image per repetition.
const CHILDREN: usize = 5;

/// What `bench snapshot` was asked to do.
#[derive(Debug, PartialEq, Eq)]
struct Options {
    sizes: Vec<u64>,
    fill: u64,
    reps: u64,
    device: PathBuf,
}

fn parse(mut args: Args) -> Result<Options, CliError> {
    let mut options = Options {
        sizes: Vec::new(),
        fill: 50,
        reps: 3,
        device: PathBuf::from(DEFAULT_DEVICE),
    };
    while let Some(arg) = args.next_arg() {
        match arg {
            Arg::Flag(flag, inline) if flag == "--mem" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                options.sizes.push(parse_mem(COMMAND, &flag, &value)?);
            }
            Arg::Flag(flag, inline) if flag == "--fill" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                options.fill = parse_fill(COMMAND, &flag, &value)?;
            }
            Arg::Flag(flag, inline) if flag == "--reps" => {
                let value = args.value(&flag, inline).map_err(CliError::Usage)?;
                options.reps = parse_flag(&flag, &value, parse_u64).map_err(CliError::Usage)?;
                if !(1..=1000).contains(&options.reps) {
                    return Err(CliError::Usage(format!(
                        "{COMMAND}: --reps {value}: 1 to 1000"
                    )));
                }
            }
            Arg::Flag(flag, inline) if flag == "--kvm-device" => {
                options.device = PathBuf::from(args.value(&flag, inline).map_err(CliError::Usage)?);
            }
            other => return Err(unexpected(COMMAND, other)),
        }
    }
    if options.sizes.is_empty() {
        options.sizes = DEFAULT_SIZES.to_vec();
    }
    Ok(options)
}

/// `rawkvm bench snapshot`.
pub fn command(args: Args) -> Result<i32, CliError> {
    let options = parse(args)?;
    let kvm = Kvm::open_path(&options.device)?;
    let dir = ScratchDir::new()?;
    for &size in &options.sizes {
        let line = measure(&kvm, &dir.path, size, options.fill, options.reps)?;
        print_out(&line)?;
    }
    Ok(crate::cli::status::HALTED)
}

/// A fresh directory under `$TMPDIR`, removed with its files when dropped (an error
/// included: the `?` that returns it drops it).
struct ScratchDir {
    path: PathBuf,
}

impl ScratchDir {
    fn new() -> Result<ScratchDir, CliError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.subsec_nanos());
        let path = std::env::temp_dir().join(format!(
            "rawkvm-bench-snapshot-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir(&path).map_err(|error| SnapshotError::Write {
            path: path.clone(),
            error,
        })?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        // Nothing to do about a failure here but leave the directory.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// The times of one phase over the repetitions.
#[derive(Default)]
struct Times(Vec<Duration>);

impl Times {
    /// Runs `phase`, timing it.
    fn time<T>(&mut self, phase: impl FnOnce() -> Result<T, CliError>) -> Result<T, CliError> {
        let started = Instant::now();
        let value = phase()?;
        self.0.push(started.elapsed());
        Ok(value)
    }

    /// The median, in milliseconds.
    fn ms(&self) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort();
        sorted
            .get(sorted.len() / 2)
            .map_or(0.0, |t| t.as_secs_f64() * 1e3)
    }
}

#[derive(Default)]
struct Phases {
    capture: Times,
    copy: Times,
    save: Times,
    write: Times,
    load: Times,
    read: Times,
    restore: Times,
    verify: Times,
    cold: Times,
    fork_image: Times,
    spawn: Times,
}

/// One size: a warm-up round, then `reps` timed ones; the line.
fn measure(kvm: &Kvm, dir: &Path, size: u64, fill: u64, reps: u64) -> Result<String, CliError> {
    let guest = FilledGuest::new(size, fill)?;
    let mut parent = guest.cold_start(kvm)?;
    let file = dir.join("guest.snap");
    let plain = dir.join("plain.bin");
    let mut timed = Phases::default();
    let mut warm_up = Phases::default();
    let (mut file_bytes, mut stored_pages, mut runs) = (0, 0, 0);
    for round in 0..=reps {
        let t = if round == 0 { &mut warm_up } else { &mut timed };
        let snapshot = t
            .capture
            .time(|| Ok(parent.snapshot(kvm, &DeviceState::default())?))?;
        drop(t.copy.time(|| Ok(guest.runs.clone()))?);
        file_bytes = t.save.time(|| Ok(snapshot.save(&file)?))?;
        t.write.time(|| write_plain(&plain, &guest))?;
        // Untimed: the written pages go to disk now, not while the next phases are timed.
        sync(&file)?;
        sync(&plain)?;
        let slots = &snapshot.vm.slots;
        stored_pages = slots.iter().map(|s| s.stored_bytes()).sum::<u64>() / PAGE;
        runs = slots.iter().map(|s| s.runs.len()).sum::<usize>();
        // The fork first: it consumes the snapshot, so no more than four copies of the filled
        // bytes (the parent's RAM, the guest's runs, the loaded snapshot, the restored RAM)
        // are ever held at once.
        let image = t.fork_image.time(|| Ok(snapshot.fork_image()?))?;
        for _ in 0..CHILDREN {
            drop(t.spawn.time(|| Ok(image.spawn(kvm)?))?);
        }
        drop(image);
        let loaded = t.load.time(|| Ok(Snapshot::load(&file)?))?;
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| SnapshotError::Read {
                path: path.to_path_buf(),
                error,
            })
        };
        drop(t.read.time(|| Ok(read(&file)?))?);
        let mut restored = t.restore.time(|| Ok(loaded.restore(kvm)?))?;
        t.verify.time(|| Ok(loaded.verify(&mut restored)?))?;
        drop((restored, loaded));
        drop(t.cold.time(|| guest.cold_start(kvm))?);
    }
    let _ = std::fs::remove_file(&plain);
    let t = &timed;
    // `NAME_ms=.. BASE_ms=.. NAME/BASE=..`: a phase, its baseline and their ratio.
    let against = |name: &str, phase: &Times, base: &str, baseline: &Times| {
        let ratio = phase.ms() / baseline.ms().max(1e-9);
        format!(
            "{name}_ms={:.2} {base}_ms={:.2} {name}/{base}={ratio:.2}",
            phase.ms(),
            baseline.ms()
        )
    };
    let fields = [
        format!(
            "snapshot mem={} fill={fill} reps={reps} stored_pages={stored_pages} runs={runs} \
             file_bytes={file_bytes}",
            Size(size).to_string().replace(' ', "")
        ),
        against("capture", &t.capture, "copy", &t.copy),
        against("save", &t.save, "write", &t.write),
        against("load", &t.load, "read", &t.read),
        format!("verify_ms={:.2}", t.verify.ms()),
        against("restore", &t.restore, "cold", &t.cold),
        format!(
            "fork_image_ms={:.2} spawn_ms={:.3} cold/spawn={:.1}",
            t.fork_image.ms(),
            t.spawn.ms(),
            t.cold.ms() / t.spawn.ms().max(1e-9)
        ),
        format!(
            "backend={}",
            rawkvm::exit::hardware::kvm_backend().unwrap_or("unknown")
        ),
    ];
    Ok(format!("{}\n", fields.join(" ")))
}

/// `fsync(2)` of the file at `path`.
fn sync(path: &Path) -> Result<(), CliError> {
    let failed = |error| SnapshotError::Write {
        path: path.to_path_buf(),
        error,
    };
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(failed)?;
    Ok(())
}

/// The baseline of a save: the guest's filled bytes written to `path` through a 1 MiB buffer.
fn write_plain(path: &Path, guest: &FilledGuest) -> Result<(), CliError> {
    let failed = |error| SnapshotError::Write {
        path: path.to_path_buf(),
        error,
    };
    let mut file = File::create(path).map_err(failed)?;
    let mut buffer = Vec::with_capacity(1 << 20);
    for run in &guest.runs {
        for chunk in run.words.chunks((1 << 20) / 8) {
            buffer.clear();
            buffer.extend(chunk.iter().flat_map(|word| word.to_le_bytes()));
            file.write_all(&buffer).map_err(failed)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsString;

    fn parsed(words: &[&str]) -> Result<Options, CliError> {
        parse(Args::new(words.iter().map(OsString::from).collect()).unwrap())
    }

    #[test]
    fn flags_parse_and_sizes_default_to_three() {
        let options = parsed(&[]).unwrap();
        assert_eq!(options.sizes, DEFAULT_SIZES);
        assert_eq!((options.fill, options.reps), (50, 3));
        let options = parsed(&["--mem", "2M", "--mem=8M", "--fill", "0", "--reps", "1"]).unwrap();
        assert_eq!(options.sizes, [2 << 20, 8 << 20]);
        assert_eq!((options.fill, options.reps), (0, 1));
        for bad in [
            &["--reps", "0"][..],
            &["--fill", "200"],
            &["--mem", "0"],
            &["--what"],
            &["extra"],
        ] {
            assert!(matches!(parsed(bad), Err(CliError::Usage(_))), "{bad:?}");
        }
    }
}
