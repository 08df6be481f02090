//! OCOTP shadow registers: the fuse words the shim decides with (SEC_CONFIG, the rollback
//! fuses).
//!
//! Shadow register of bank `b` word `w` at base + 0x400 + b × 0x40 + w × 0x10; SEC_CONFIG is
//! bank 1 word 3, bit 25 = closed; GP1 (the rollback fuses) is bank 14 words 0–1
//! (`docs/imx8m-facts.md` §6, §6.1; U-Boot `mxc_ocotp.c`, Linux `imx-ocotp.c`).

use boot_core::rollback::RollbackFuses;
use tock_registers::interfaces::Readable;
use tock_registers::register_structs;
use tock_registers::registers::ReadOnly;

register_structs! {
    /// The shadow registers up to bank 14 (the part of the block the shim reads).
    Shadow {
        (0x000 => _ctrl),
        /// Bank 0 words 0-3 (+0x400).
        (0x400 => bank0: [ReadOnly<u32>; 16]),
        /// Bank 1 word 0 (+0x440).
        (0x440 => _bank1_w0),
        /// Bank 1 word 3: SEC_CONFIG (+0x470).
        (0x470 => sec_config: ReadOnly<u32>),
        (0x474 => _to_bank14),
        /// Bank 14 word 0: GP1[31:0] (+0x780).
        (0x780 => gp1_w0: ReadOnly<u32>),
        (0x784 => _gp1_pad),
        /// Bank 14 word 1: GP1[63:32] (+0x790).
        (0x790 => gp1_w1: ReadOnly<u32>),
        (0x794 => @END),
    }
}

fn shadow(base: u64) -> &'static Shadow {
    // SAFETY: `base` is the board's OCOTP register block (boards::FuseSource::Ocotp, 0x30350000
    // on 8MM/8MP, imx8m-facts.md §6); the shadow registers are readable at any time and reading
    // them has no side effect.
    unsafe { &*(base as *const Shadow) }
}

/// Reads SEC_CONFIG (bank 1 word 3) from the OCOTP block at `base`.
pub fn sec_config(base: u64) -> u32 {
    shadow(base).sec_config.get()
}

/// Reads the rollback fuses (GP1, bank 14 words 0–1) from the OCOTP block at `base`.
pub fn rollback(base: u64) -> RollbackFuses {
    let regs = shadow(base);
    RollbackFuses::from_words(regs.gp1_w0.get(), regs.gp1_w1.get())
}
