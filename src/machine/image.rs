//! Guest images: flat binaries or ELF executables, embedded or read from a file, and where
//! they are loaded.
//!
//! A file is checked before it is read: it must be a regular file (a FIFO would block, a
//! device like `/dev/zero` would never end), non-empty, and no larger than the RAM between the
//! load address and the end of RAM. At most `capacity + 1` bytes are ever read, so a file
//! growing under us cannot make rawkvm read more than it can place; an ELF file (it starts
//! with `0x7f 'E' 'L' 'F'`) may be up to [`MAX_ELF_FILE`] bytes, since its symbols and
//! sections are not loaded. Its `PT_LOAD` segments are placed at their physical addresses
//! ([`super::elf`]) instead of at the load address.

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use std::ops::Range;

use super::elf::{self, Elf};
use crate::error::ImageError;
use crate::kvm::memory::GuestMemory;

/// The largest ELF file rawkvm reads: 64 MiB (a guest with debug information is larger than
/// what it loads).
pub const MAX_ELF_FILE: u64 = 64 << 20;

/// A region of guest memory rawkvm keeps for itself, and what it holds.
pub type Reserved = (Range<u64>, &'static str);

/// A flat binary to load into guest RAM.
#[derive(Debug, Clone)]
pub struct Image {
    /// Where it came from: a path, or `guest:NAME` for an embedded guest.
    pub origin: PathBuf,
    /// The bytes.
    pub bytes: Cow<'static, [u8]>,
}

impl Image {
    /// An embedded guest.
    pub fn embedded(name: &str, bytes: &'static [u8]) -> Image {
        Image {
            origin: PathBuf::from(format!("guest:{name}")),
            bytes: Cow::Borrowed(bytes),
        }
    }

    /// Reads a flat binary from `path`, refusing what cannot fit in `capacity` bytes.
    pub fn from_file(path: &Path, capacity: u64) -> Result<Image, ImageError> {
        let io_error = |error| ImageError::Io {
            path: path.to_path_buf(),
            error,
        };
        // O_NONBLOCK: opening a FIFO with no writer must not hang; it is refused just below.
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(io_error)?;
        let metadata = file.metadata().map_err(io_error)?;
        let file_type = metadata.file_type();
        if !file_type.is_file() {
            let kind = if file_type.is_dir() {
                "directory"
            } else if file_type.is_fifo() {
                "FIFO"
            } else if file_type.is_char_device() {
                "character device"
            } else if file_type.is_block_device() {
                "block device"
            } else if file_type.is_socket() {
                "socket"
            } else {
                "special file"
            };
            return Err(ImageError::NotRegular {
                path: path.to_path_buf(),
                kind,
            });
        }
        let bytes = read_image(file, capacity).map_err(io_error)?;
        let image = Image {
            origin: path.to_path_buf(),
            bytes: Cow::Owned(bytes),
        };
        if image.bytes.is_empty() {
            return Err(ImageError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(image)
    }

    /// The ELF executable this image is, `None` for a flat binary, or what is wrong with it.
    pub fn elf(&self) -> Result<Option<Elf>, ImageError> {
        if !elf::is_elf(&self.bytes) {
            return Ok(None);
        }
        Elf::parse(&self.bytes)
            .map(Some)
            .map_err(|problem| self.bad_elf(problem))
    }

    /// An [`ImageError::Elf`] about this image.
    pub fn bad_elf(&self, problem: elf::ElfProblem) -> ImageError {
        ImageError::Elf {
            path: self.origin.clone(),
            problem,
        }
    }

    /// Checks that the image fits in RAM `[0, ram_end)`, a flat binary at `load_addr`, an ELF
    /// executable's segments at their addresses, and that none of it overlaps a `reserved`
    /// region. A load address at or past the end of RAM leaves room for nothing
    /// (`MachineConfig::validate` refuses it first, as a configuration error).
    pub fn check_fits(
        &self,
        load_addr: u64,
        ram_end: u64,
        reserved: &[Reserved],
    ) -> Result<(), ImageError> {
        if let Some(elf) = self.elf()? {
            return elf
                .check_fits(ram_end, reserved)
                .map_err(|problem| self.bad_elf(problem));
        }
        let capacity = ram_end.saturating_sub(load_addr);
        let size = self.bytes.len() as u64;
        if size > capacity {
            return Err(ImageError::TooLarge {
                path: self.origin.clone(),
                size,
                capacity,
                load_addr,
                ram_end,
            });
        }
        let image = load_addr..load_addr + size;
        if let Some((reserved, what)) = reserved
            .iter()
            .find(|(reserved, _)| image.start < reserved.end && reserved.start < image.end)
        {
            return Err(ImageError::Reserved {
                path: self.origin.clone(),
                image,
                reserved: reserved.clone(),
                what,
            });
        }
        Ok(())
    }
}

impl Image {
    /// Copies the image into `memory`: a flat binary at `load_addr`; each `PT_LOAD` segment of
    /// `elf` (this image, parsed) at its physical address, the rest of its memory size
    /// (`.bss`) zeroed. [`Image::check_fits`] checks every range first.
    pub fn load(
        &self,
        memory: &GuestMemory,
        load_addr: u64,
        elf: Option<&Elf>,
    ) -> Result<(), crate::Error> {
        let Some(elf) = elf else {
            return memory.write(load_addr, &self.bytes);
        };
        for segment in &elf.segments {
            let data = self.bytes.get(segment.file.clone()).unwrap_or_default();
            memory.write(segment.paddr, data)?;
            let zeroed = segment.mem_size - data.len() as u64;
            let len = usize::try_from(zeroed).unwrap_or(usize::MAX);
            memory.fill(segment.paddr + data.len() as u64, len, 0)?;
        }
        Ok(())
    }
}

/// Reads at most `capacity + 1` bytes of a flat binary, or [`MAX_ELF_FILE`] + 1 of an ELF.
fn read_image(mut file: File, capacity: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    (&mut file).take(4).read_to_end(&mut bytes)?;
    let limit = if elf::is_elf(&bytes) {
        MAX_ELF_FILE
    } else {
        capacity
    };
    let rest = read_at_most(
        file,
        limit.saturating_add(1).saturating_sub(bytes.len() as u64),
    )?;
    bytes.extend_from_slice(&rest);
    Ok(bytes)
}

fn read_at_most(file: File, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}
