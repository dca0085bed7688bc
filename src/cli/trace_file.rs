//! Opening `--trace-file PATH` the way `--image` is opened: nothing blocks, nothing is
//! destroyed by mistake.
//!
//! ```text
//! open(path, O_WRONLY | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0666)
//!                                 O_NONBLOCK: a FIFO no process reads fails with ENXIO at
//!                                 once instead of blocking rawkvm before its guest starts;
//!                                 no O_TRUNC: nothing is lost before the checks below
//! fstat(fd)                       a regular file, a FIFO or pipe with a reader, or a character
//!                                 device (a terminal, /dev/null); a block device is refused
//!                                 (a trace would overwrite a disk); the --image itself (same
//!                                 st_dev and st_ino, whatever the path) is refused
//! ftruncate(fd, 0)                a regular file only: never a FIFO, a device, the image
//! fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
//!                                 the trace's writes then wait for a slow reader as writes to
//!                                 stderr do, instead of failing with EAGAIN
//! ```

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::Path;

use nix::fcntl::{FcntlArg, OFlag, fcntl};
use rawkvm::error::{ErrnoDisplay, IoErrorDisplay};

use crate::cli::status::CliError;

/// Opens `path` for the trace, truncated if it is a regular file. `image` is the `--image`
/// file, which must not be the trace's. Every refusal is a usage error naming the path.
pub fn open(path: &Path, image: Option<&Path>) -> Result<File, CliError> {
    open_for("--trace-file", path, image)
}

/// [`open`] for another flag that writes a file (`--trace=chrome PATH`), named in the errors.
pub fn open_for(flag: &str, path: &Path, image: Option<&Path>) -> Result<File, CliError> {
    let refuse = |why: String| CliError::Usage(format!("{flag} {}: {why}", path.display()));
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|error| refuse(open_failure(path, &error)))?;
    let metadata = file
        .metadata()
        .map_err(|error| refuse(format!("cannot inspect it: {}", IoErrorDisplay(&error))))?;
    let file_type = metadata.file_type();
    if file_type.is_block_device() {
        return Err(refuse(
            "is a block device; a trace would overwrite it: give a regular file".to_string(),
        ));
    }
    if !(file_type.is_file() || file_type.is_fifo() || file_type.is_char_device()) {
        return Err(refuse(
            "is neither a regular file, a pipe nor a terminal: give a regular file".to_string(),
        ));
    }
    if let Some(image) = image
        && let Ok(image_metadata) = std::fs::metadata(image)
        && (image_metadata.dev(), image_metadata.ino()) == (metadata.dev(), metadata.ino())
    {
        return Err(refuse(format!(
            "is the guest image (--image {}); the trace would overwrite it: give another path",
            image.display()
        )));
    }
    if file_type.is_file() {
        file.set_len(0)
            .map_err(|error| refuse(format!("cannot truncate it: {}", IoErrorDisplay(&error))))?;
    }
    fcntl(&file, FcntlArg::F_GETFL)
        .map(OFlag::from_bits_truncate)
        .and_then(|flags| fcntl(&file, FcntlArg::F_SETFL(flags - OFlag::O_NONBLOCK)))
        .map_err(|errno| {
            refuse(format!(
                "cannot make its writes blocking: {}",
                ErrnoDisplay(errno)
            ))
        })?;
    Ok(file)
}

/// Why `open(2)` failed, in words: `ENXIO` on a FIFO means nobody reads it.
fn open_failure(path: &Path, error: &io::Error) -> String {
    let file_type = std::fs::metadata(path).map(|m| m.file_type());
    match file_type {
        Ok(kind) if error.raw_os_error() == Some(libc::ENXIO) && kind.is_fifo() => {
            "is a FIFO that no process has open for reading; opening it would block until one \
             does: start its reader first"
                .to_string()
        }
        Ok(kind) if kind.is_socket() => {
            "is a socket, which cannot be opened as a file: give a regular file".to_string()
        }
        _ => format!("cannot create it: {}", IoErrorDisplay(error)),
    }
}
