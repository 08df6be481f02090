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
    // Non-blocking: a FIFO given as --mem must not hang the open (it is refused by `check`).
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot stat {}: {e}", path.display()))?;
    let mut buf = [0u8; CELL_SIZE];
    if meta.is_file() {
        file.read_exact_at(&mut buf, addr).map_err(|e| {
            format!(
                "cannot read the cell at {addr:#x} from {} ({} bytes): {e}",
                path.display(),
                meta.len()
            )
        })?;
    } else {
        let page = 4096u64;
        let base = addr & !(page - 1);
        let within = (addr - base) as usize;
        let len = (within + CELL_SIZE).next_multiple_of(page as usize);
        // SAFETY: a read-only shared mapping of physical memory the kernel lets us map; nothing
        // in this process writes through it, and it is dropped before returning. Another agent
        // (the firmware, long gone) could change it, which only makes the copy stale.
        let map = unsafe { memmap2::MmapOptions::new().offset(base).len(len).map(&file) }
            .map_err(|e| format!("cannot map {:#x} from {}: {e}", base, path.display()))?;
        buf.copy_from_slice(&map[within..within + CELL_SIZE]);
    }
    cell::decode(&buf).map_err(|e| format!("cell at {addr:#x}: {e}"))
}
