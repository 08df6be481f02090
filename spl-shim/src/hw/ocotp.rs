//! OCOTP shadow registers: the fuse words the shim decides with (SEC_CONFIG).
//!
//! Shadow register of bank `b` word `w` at base + 0x400 + b × 0x40 + w × 0x10; SEC_CONFIG is
//! bank 1 word 3, bit 25 = closed (`docs/imx8m-facts.md` §6; U-Boot `mxc_ocotp.c`, Linux
//! `imx-ocotp.c`).

use tock_registers::interfaces::Readable;
use tock_registers::register_structs;
use tock_registers::registers::ReadOnly;

register_structs! {
    /// The shadow registers up to bank 1 (the part of the block the shim reads).
    Shadow {
        (0x000 => _ctrl),
        /// Bank 0 words 0-3 (+0x400).
        (0x400 => bank0: [ReadOnly<u32>; 16]),
        /// Bank 1 word 0 (+0x440).
        (0x440 => _bank1_w0),
        /// Bank 1 word 3: SEC_CONFIG (+0x470).
        (0x470 => sec_config: ReadOnly<u32>),
        (0x474 => @END),
    }
}

/// Reads SEC_CONFIG (bank 1 word 3) from the OCOTP block at `base`.
pub fn sec_config(base: u64) -> u32 {
    // SAFETY: `base` is the board's OCOTP register block (boards::FuseSource::Ocotp, 0x30350000
    // on 8MM/8MP, imx8m-facts.md §6); the shadow registers are readable at any time and reading
    // them has no side effect.
    let regs = unsafe { &*(base as *const Shadow) };
    regs.sec_config.get()
}
