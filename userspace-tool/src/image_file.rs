//! Reading an image file given on the command line: bounded, and never blocking on something
//! that is not a regular file.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use boards::MediaLayout;

use crate::exit::Failure;

/// Reads the image at `path`: a regular file, at most one slot plus one byte (so an oversized
/// image is still recognised as such and refused). A FIFO, a device or a directory is a usage
/// error, found without blocking (opened with `O_NONBLOCK`, checked with `fstat`).
pub fn read_image(path: &Path, layout: &MediaLayout) -> Result<Vec<u8>, Failure> {
    let slot = layout.slot_size(layout.standard_first_sector);
    let bytes = read_regular(path, slot + 1, "an image")?;
    if bytes.len() as u64 > slot {
        let size = std::fs::metadata(path).map_or(bytes.len() as u64, |m| m.len());
        return Err(Failure::Refused(format!(
            "{}: {size:#x} bytes, larger than a boot copy's slot ({slot:#x} bytes): not a boot \
             image for this layout",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Reads at most `limit` bytes of the regular file at `path` (`what` names it in the error).
/// A FIFO, a device or a directory is a usage error, found without blocking.
pub fn read_regular(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, Failure> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| Failure::io("open", path, e))?;
    let meta = file.metadata().map_err(|e| Failure::io("stat", path, e))?;
    if !meta.is_file() {
        return Err(Failure::Usage(format!(
            "{}: not a regular file (a {}): {what} must be a file",
            path.display(),
            kind(&meta)
        )));
    }
    let mut bytes = Vec::new();
    File::take(file, limit)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::io("read", path, e))?;
    Ok(bytes)
}

fn kind(meta: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    if t.is_dir() {
        "directory"
    } else if t.is_fifo() {
        "FIFO"
    } else if t.is_char_device() {
        "character device"
    } else if t.is_block_device() {
        "block device"
    } else if t.is_socket() {
        "socket"
    } else {
        "special file"
    }
}
