//! The C baseline: `baseline.c`, compiled at run time and run as a child process.
//!
//! ```text
//! mkdir $TMPDIR/rawkvm-bench-PID
//! write baseline.c and the guests' flat images (NAME.bin) there
//! $CC -O2 -o baseline baseline.c -lpthread          CC defaults to cc
//! baseline WORKLOAD VARIANT COUNT NAME.bin          one key=value line on stdout
//! rm -r $TMPDIR/rawkvm-bench-PID                    when the harness is done
//! ```

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use rawkvm::machine::guests::Guest;

use super::Workload;

/// The C source, embedded so the harness needs nothing but a C compiler.
const SOURCE: &str = include_str!("baseline.c");

/// A compiled baseline in its own temporary directory, removed on drop.
#[derive(Debug)]
pub struct Baseline {
    dir: PathBuf,
    exe: PathBuf,
    /// The compiler command line, for the report.
    pub compiler: String,
}

impl Baseline {
    /// Writes the source and `guests`' images to a fresh directory and compiles the source.
    /// The error says what failed (no compiler, a compile error with its output).
    pub fn build(guests: &[&Guest]) -> Result<Baseline, String> {
        let dir = std::env::temp_dir().join(format!("rawkvm-bench-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // From here on, dropping `baseline` removes the directory, whatever fails next.
        let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
        let baseline = Baseline {
            exe: dir.join("baseline"),
            compiler: format!("{compiler} -O2"),
            dir,
        };
        let source = baseline.dir.join("baseline.c");
        write(&source, SOURCE.as_bytes())?;
        for guest in guests {
            write(&baseline.image(guest), guest.image)?;
        }
        let output = Command::new(&compiler)
            .args(["-O2", "-Wall", "-o"])
            .arg(&baseline.exe)
            .arg(&source)
            .arg("-lpthread")
            .output()
            .map_err(|e| format!("cannot run the C compiler {compiler:?}: {e}"))?;
        if !output.status.success() {
            return Err(format!(
                "{compiler} failed on baseline.c: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(baseline)
    }

    /// Where `guest`'s image is written.
    fn image(&self, guest: &Guest) -> PathBuf {
        self.dir.join(format!("{}.bin", guest.name))
    }

    /// Runs one measurement and returns the baseline's line.
    pub fn measure(
        &self,
        workload: &Workload,
        variant: &str,
        count: u64,
        guest: &Guest,
    ) -> Result<String, String> {
        let output = Command::new(&self.exe)
            .args([workload.name, variant, &count.to_string()])
            .arg(self.image(guest))
            .output()
            .map_err(|e| format!("cannot run the C baseline: {e}"))?;
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() {
            return Err(format!(
                "the C baseline failed on {} {variant}: {}",
                workload.name,
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        Ok(stdout.trim().to_string())
    }
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

impl Drop for Baseline {
    fn drop(&mut self) {
        // A leftover temporary directory is harmless; nothing to report.
        let _ = fs::remove_dir_all(&self.dir);
    }
}
