//! Reading the boot cell the shim leaves in memory (design.md §6): from `/dev/mem` through a
//! page-aligned read-only mapping, or from a file laid out as physical memory (`--mem FILE`,
//! byte offset = physical address), as tests and offline analysis use.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use boot_core::cell::{self, CELL_SIZE, Cell};

/// Default physical-memory device.
pub const DEV_MEM: &str = "/dev/mem";

/// Reads `CELL_SIZE` bytes at physical address `addr` from `path` and decodes them.
pub fn read(path: &Path, addr: u64) -> Result<Cell, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
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
