//! What the boot ROM left for the shim (`BOARD.rom`; imx8m-facts.md §3.3, §3.5, §3.6): the
//! event log behind the pointer at 0x9E0, the ROM API's `BT_STAGE` answer and the
//! PERSIST_SECONDARY_BOOT bit, gathered into the cell's [`RomInfo`]. Parsing is
//! `boot_core::rom`'s; this file only reads memory and calls the ROM.

use boards::Board;
use boot_core::cell::{RomInfo, RomLog};
use boot_core::rom::{self, LOG_WORDS, parse_log};

/// `query_boot_infor` (imx8m-facts.md §3.5).
type QueryBootInfo = extern "C" fn(u32, *mut u32, u32) -> u32;

/// `QUERY_BT_STAGE` (imx8m-facts.md §3.5).
const QUERY_BT_STAGE: u32 = 5;
/// `ROM_API_OKAY`.
const ROM_API_OKAY: u32 = 0xF0;

fn read32(addr: u64) -> u32 {
    // SAFETY: callers pass the board's ROM addresses (the ROM region, or the simulation's
    // OCRAM ROM page) or OCRAM words checked against the board's OCRAM; aligned u32 reads
    // without side effects.
    unsafe { (addr as *const u32).read_volatile() }
}

/// Reads what the ROM left, then clears PERSIST_SECONDARY_BOOT so that the next warm reset
/// tries the primary again (design.md §5.1: after an update of the primary, a warm reboot
/// must reach it; the ROM falls back again if it still fails).
pub fn take(board: &Board) -> RomInfo {
    let mut info = RomInfo::UNKNOWN;
    let ptr = read32(board.rom.log_pointer);
    let ocram = board.memory.ocram;
    if rom::log_pointer_valid(ptr) && ocram.contains_range(u64::from(ptr), 4 * LOG_WORDS as u64) {
        let mut words = [0u32; LOG_WORDS];
        for (i, w) in words.iter_mut().enumerate() {
            *w = read32(u64::from(ptr) + 4 * i as u64);
        }
        let s = parse_log(&words);
        info.log = s.log;
        info.hab = s.hab;
    } else {
        info.log = RomLog::NotRead;
    }
    if let Some(table) = board.rom.api_table {
        let f = u64::from(read32(table + 0x10)) | u64::from(read32(table + 0x14)) << 32;
        if f != 0 {
            let mut stage = 0u32;
            let p = &mut stage as *mut u32;
            // SAFETY: the ROM API table's `query_boot_infor` (imx8m-facts.md §3.5; in the
            // simulation the ROM model's, resident in DRAM that nothing has overwritten yet:
            // the shim calls this before any image copy). The C ABI matches U-Boot's
            // declaration; the ROM may clobber x18, which Rust does not reserve on this target.
            let r = unsafe {
                let query: QueryBootInfo = core::mem::transmute::<usize, QueryBootInfo>(f as usize);
                query(QUERY_BT_STAGE, p, QUERY_BT_STAGE ^ (p as u64 as u32))
            };
            if r == ROM_API_OKAY {
                info.boot_stage = stage;
            }
        }
    }
    if let Some(bit) = board.rom.persist {
        let v = read32(bit.addr);
        info.persist_secondary = Some(v & bit.mask != 0);
        if v & bit.mask != 0 {
            // SAFETY: the board's PERSIST_SECONDARY_BOOT register (SRC_GPR10, secure-only,
            // reachable from EL3 where the shim runs) or the simulation's word in the ROM page.
            unsafe { (bit.addr as *mut u32).write_volatile(v & !bit.mask) };
        }
    }
    info
}
