//! Why a guest image cannot be used: missing, unreadable, not a regular file, empty, or too
//! large for the RAM after the load address. (A load address outside RAM is a configuration
//! error, found by `MachineConfig::validate` before any image is looked at.)

use std::fmt;
use std::io::ErrorKind;
use std::path::PathBuf;

use super::{ElfProblem, IoErrorDisplay, SettingNames};

/// Why a guest image cannot be used.
#[derive(Debug)]
pub enum ImageError {
    /// Opening or reading the file failed.
    Io {
        /// The path.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// Not a regular file (a directory, FIFO, device, ...).
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is empty.
    Empty {
        /// The path.
        path: PathBuf,
    },
    /// The image does not fit between the load address and the end of RAM.
    TooLarge {
        /// The path (or the embedded guest's name).
        path: PathBuf,
        /// Image size in bytes.
        size: u64,
        /// Bytes available.
        capacity: u64,
        /// Load address.
        load_addr: u64,
        /// End of RAM (exclusive).
        ram_end: u64,
    },
    /// A flat image overlaps a region rawkvm reserves (the system area of the CPU modes).
    Reserved {
        /// The path (or the embedded guest's name).
        path: PathBuf,
        /// Where the image would be.
        image: std::ops::Range<u64>,
        /// The reserved range.
        reserved: std::ops::Range<u64>,
        /// What the reserved range holds.
        what: &'static str,
    },
    /// An ELF executable that cannot be loaded.
    Elf {
        /// The path (or the embedded guest's name).
        path: PathBuf,
        /// What is wrong.
        problem: ElfProblem,
    },
}

impl fmt::Display for ImageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.describe(f, &SettingNames::LIBRARY)
    }
}

impl ImageError {
    /// The message, advice naming settings by `names`.
    pub(super) fn describe(&self, f: &mut fmt::Formatter<'_>, names: &SettingNames) -> fmt::Result {
        match self {
            ImageError::Io { path, error } => {
                write!(
                    f,
                    "cannot read guest image {}: {}; ",
                    path.display(),
                    IoErrorDisplay(error)
                )?;
                f.write_str(match error.kind() {
                    ErrorKind::NotFound => "check the path (a dangling link counts as missing)",
                    ErrorKind::PermissionDenied => {
                        "make the file readable by this user, or run rawkvm as one who can read it"
                    }
                    _ => "pass a readable flat binary file",
                })
            }
            ImageError::NotRegular { path, kind } => write!(
                f,
                "guest image {} is a {kind}, not a regular file; pass a flat binary file",
                path.display()
            ),
            ImageError::Empty { path } => {
                write!(
                    f,
                    "guest image {} is empty; pass a flat binary with code in it",
                    path.display()
                )
            }
            ImageError::TooLarge {
                path,
                size,
                capacity,
                load_addr,
                ram_end,
            } => write!(
                f,
                "guest image {} is {size} bytes but only {capacity} bytes fit between load \
                 address {load_addr:#x} and end of RAM {ram_end:#x}; raise {} or lower {}",
                path.display(),
                names.memory,
                names.load_address
            ),
            ImageError::Reserved {
                path,
                image,
                reserved,
                what,
            } => write!(
                f,
                "guest image {} at {:#x}..{:#x} overlaps {:#x}..{:#x}, which rawkvm reserves \
                 for the {what}; make the image smaller or load it above {:#x}",
                path.display(),
                image.start,
                image.end,
                reserved.start,
                reserved.end,
                reserved.end
            ),
            ImageError::Elf { path, problem } => write!(
                f,
                "guest image {} is not a loadable ELF executable: {problem}",
                path.display()
            ),
        }
    }
}
