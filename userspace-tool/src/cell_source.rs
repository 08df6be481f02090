//! Reading the boot cell the shim leaves in memory (design.md §6): from `/dev/mem` through a
//! page-aligned read-only mapping, or from a file laid out as physical memory (`--mem FILE`,
//! byte offset = physical address), as tests and offline analysis use.

use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use boot_core::cell::{self, CELL_SIZE, Cell};

/// Default physical-memory device.
pub const DEV_MEM: &str = "/dev/mem";

/// Whether `path` can be physical memory: a regular file laid out as memory, or a character
/// device (`/dev/mem`). A missing path is allowed (no record); a FIFO, a directory, a socket or
/// a block device is a usage error, said without blocking.
pub fn check(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::metadata(path) {
        Err(_) => Ok(()),
        Ok(m) if m.is_file() || m.file_type().is_char_device() => Ok(()),
        Ok(_) => Err(format!(
            "--mem {}: not physical memory (a regular file laid out as memory, or /dev/mem)",
            path.display()
        )),
    }
}

/// Reads `CELL_SIZE` bytes at physical address `addr` from `path` and decodes them.
pub fn read(path: &Path, addr: u64) -> Result<Cell, String> {
    let mut buf = [0u8; CELL_SIZE];
    read_phys(path, addr, &mut buf, "the cell")?;
    cell::decode(&buf).map_err(|e| format!("cell at {addr:#x}: {e}"))
}

/// The page-aligned window of physical memory that covers `len` bytes at `addr`.
fn window(addr: u64, len: usize) -> (u64, usize, usize) {
    let page = 4096u64;
    let base = addr & !(page - 1);
    let within = (addr - base) as usize;
    (base, within, (within + len).next_multiple_of(page as usize))
}

/// Reads `buf.len()` bytes at physical address `addr` (`what` names them in errors) from a
/// file laid out as memory or from a memory device, through a read-only mapping.
pub fn read_phys(path: &Path, addr: u64, buf: &mut [u8], what: &str) -> Result<(), String> {
    // Non-blocking: a FIFO given as --mem must not hang the open (it is refused by `check`).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    if meta.is_file() {
        return file.read_exact_at(buf, addr).map_err(|e| {
            format!(
                "cannot read {what} at {addr:#x} from {} ({} bytes): {e}",
                path.display(),
                meta.len()
            )
        });
    }
    let (base, within, len) = window(addr, buf.len());
    // SAFETY: a read-only shared mapping of physical memory the kernel lets us map; nothing
    // in this process writes through it, and it is dropped before returning. Another agent
    // (the firmware, long gone) could change it, which only makes the copy stale.
    let map = unsafe { memmap2::MmapOptions::new().offset(base).len(len).map(&file) }
        .map_err(|e| format!("cannot map {:#x} from {}: {e}", base, path.display()))?;
    buf.copy_from_slice(&map[within..within + buf.len()]);
    Ok(())
}

/// Writes `bytes` at physical address `addr` of a memory device (`/dev/mem`) through a
/// writable shared mapping, then reads them back through it (the caller reads back again
/// through a new mapping).
pub fn write_phys(path: &Path, addr: u64, bytes: &[u8]) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| format!("cannot open {} for writing: {e}", path.display()))?;
    let (base, within, len) = window(addr, bytes.len());
    // SAFETY: a shared mapping of the physical memory the caller names (the board's fuse block,
    // which nothing else uses while Linux runs); this process writes only `bytes` through it,
    // and it is dropped before returning.
    let mut map = unsafe {
        memmap2::MmapOptions::new()
            .offset(base)
            .len(len)
            .map_mut(&file)
    }
    .map_err(|e| format!("cannot map {:#x} of {} writable: {e}", base, path.display()))?;
    // A device mapping of /dev/mem is not page cache: the stores reach memory directly, and
    // msync(2) on it fails (EINVAL), so there is nothing to flush.
    map[within..within + bytes.len()].copy_from_slice(bytes);
    if &map[within..within + bytes.len()] != bytes {
        return Err(format!(
            "{:#x} of {} did not keep what was written",
            addr,
            path.display()
        ));
    }
    Ok(())
}
