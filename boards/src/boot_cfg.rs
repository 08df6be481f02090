//! The boot-device selection: which medium the ROM (and the shim after it) boots from.
//!
//! On silicon this is the BOOT_CFG fuse field: OCOTP bank 1 word 3 (shadow 0x470) bits
//! \[15:12\] select the boot device class, 0b0010 = MMC/eMMC (NXP community thread "question on
//! iMX8MN eMMC boot via eFuse": `BOOT_MODE_FUSES = 0b0010` programmed as
//! `fuse prog 1 3 0x00002A00`; imx8m-facts.md §3.8). In simulation the word lives at bytes
//! 48..52 of the 64-byte fuse block ([`SIM_BLOCK_OFFSET`]) with the device field at the same
//! bit positions; bits 16 and 17 are simulation-only (no fuse holds them on silicon):
//!
//! | bits | field | values |
//! |---|---|---|
//! | 15:12 | boot device | 0 = the board's default (SD on `Board::boot_usdhc`, today's behaviour), 1 = SD (same), 2 = eMMC on `Board::emmc`; others: not supported (the ROM model falls back to serial download, the shim stops) |
//! | 16 | eMMC layout | 0 = (a) AN12900 inside the enabled boot partition, 1 = (b) A/B across boot0/boot1 |
//! | 17 | ROM cross-partition fallback (ROM model only) | 0 = the ROM does **not** fall back to the other boot partition (the worse case), 1 = it does |
//! | others | not defined | must be 0: the shim and the ROM model refuse the word |
//!
//! An all-zero word is today's SD boot. The layout is a product decision, fixed at manufacture
//! like the boot device, so it sits next to it: the shim and `ubootctl` read it from one place
//! instead of guessing from the content (docs/design.md §5.5).

/// Byte offset of the BOOT_CFG word (LE u32) in the simulated fuse block.
pub const SIM_BLOCK_OFFSET: usize = 48;

/// The boot device field, bits \[15:12\].
const DEVICE_SHIFT: u32 = 12;
/// Device value "SD/eSD" (the board's SD slot).
pub const DEVICE_SD: u32 = 0b0001;
/// Device value "MMC/eMMC" (imx8m-facts.md §3.8).
pub const DEVICE_EMMC: u32 = 0b0010;
/// Simulation-only: eMMC layout (b).
pub const LAYOUT_B: u32 = 1 << 16;
/// Simulation-only, ROM model only: the ROM falls back from one boot partition to the other.
pub const ROM_CROSS_FALLBACK: u32 = 1 << 17;
/// The bits the simulated word defines (the table above); any other bit set is refused
/// ([`BootCfg::undefined_bits`]) rather than ignored, so that a word meant for silicon (e.g.
/// a uSDHC port in \[11:8\]) is not read as something else.
pub const DEFINED_BITS: u32 = (0xF << DEVICE_SHIFT) | LAYOUT_B | ROM_CROSS_FALLBACK;

/// The medium the ROM boots from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootDevice {
    /// The SD card on the board's boot uSDHC (design.md §4 layout on its user area).
    Sd,
    /// The eMMC on the board's eMMC uSDHC, in one of the two layouts.
    Emmc(EmmcLayout),
}

/// How the two copies lie on an eMMC (docs/design.md §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmmcLayout {
    /// (a) The AN12900 layout inside the enabled boot partition: SIT at 0x8200, primary at
    /// 0x8400, secondary at `firstSectorNumber × 512 + 0x8400`
    /// ([`crate::MediaLayout::in_boot_partition`]).
    InOnePartition,
    /// (b) One copy at 0x8400 in each boot partition; EXT_CSD\[179\] BOOT_PARTITION_ENABLE names
    /// the active one.
    AcrossPartitions,
}

impl EmmcLayout {
    /// "a" or "b", as on command lines and in logs.
    pub const fn name(self) -> &'static str {
        match self {
            EmmcLayout::InOnePartition => "a",
            EmmcLayout::AcrossPartitions => "b",
        }
    }
}

/// A decoded BOOT_CFG word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootCfg(pub u32);

impl BootCfg {
    /// Today's default: SD.
    pub const SD: BootCfg = BootCfg(0);

    /// The word at [`SIM_BLOCK_OFFSET`] of a simulated fuse block.
    pub const fn from_simulated_block(block: &[u8; 64]) -> Self {
        let at = SIM_BLOCK_OFFSET;
        BootCfg(u32::from_le_bytes([
            block[at],
            block[at + 1],
            block[at + 2],
            block[at + 3],
        ]))
    }

    /// The word for `device`, with the ROM model's cross-partition knob.
    pub const fn of(device: BootDevice, rom_cross_fallback: bool) -> Self {
        let mut w = match device {
            BootDevice::Sd => 0,
            BootDevice::Emmc(EmmcLayout::InOnePartition) => DEVICE_EMMC << DEVICE_SHIFT,
            BootDevice::Emmc(EmmcLayout::AcrossPartitions) => {
                (DEVICE_EMMC << DEVICE_SHIFT) | LAYOUT_B
            }
        };
        if rom_cross_fallback {
            w |= ROM_CROSS_FALLBACK;
        }
        BootCfg(w)
    }

    /// The boot device, or `Err(field value)` for a device class this project does not boot.
    pub const fn device(self) -> Result<BootDevice, u32> {
        match (self.0 >> DEVICE_SHIFT) & 0xF {
            0 | DEVICE_SD => Ok(BootDevice::Sd),
            DEVICE_EMMC => Ok(BootDevice::Emmc(if self.0 & LAYOUT_B != 0 {
                EmmcLayout::AcrossPartitions
            } else {
                EmmcLayout::InOnePartition
            })),
            other => Err(other),
        }
    }

    /// The bits set that the simulation does not define (0: none). The shim and the ROM model
    /// refuse such a word (spl-shim `medium::open`).
    pub const fn undefined_bits(self) -> u32 {
        self.0 & !DEFINED_BITS
    }

    /// Whether the (modelled) ROM falls back from one boot partition to the other.
    pub const fn rom_cross_fallback(self) -> bool {
        self.0 & ROM_CROSS_FALLBACK != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_is_sd_and_words_round_trip() {
        assert_eq!(BootCfg(0).device(), Ok(BootDevice::Sd));
        assert_eq!(BootCfg::from_simulated_block(&[0; 64]), BootCfg::SD);
        for d in [
            BootDevice::Sd,
            BootDevice::Emmc(EmmcLayout::InOnePartition),
            BootDevice::Emmc(EmmcLayout::AcrossPartitions),
        ] {
            for knob in [false, true] {
                let c = BootCfg::of(d, knob);
                assert_eq!((c.device(), c.rom_cross_fallback()), (Ok(d), knob));
                let mut block = [0u8; 64];
                block[48..52].copy_from_slice(&c.0.to_le_bytes());
                assert_eq!(BootCfg::from_simulated_block(&block), c);
            }
        }
        // The silicon value of the community thread's `fuse prog 1 3 0x00002A00` is eMMC.
        assert_eq!(
            BootCfg(0x2A00).device(),
            Ok(BootDevice::Emmc(EmmcLayout::InOnePartition))
        );
        assert_eq!(BootCfg(0x3000).device(), Err(3));
        // Bits outside the table are reported, the defined ones never.
        assert_eq!(BootCfg(0x2A00).undefined_bits(), 0xA00);
        assert_eq!(BootCfg(0x0012_2000 | 1 << 31).undefined_bits(), 0x8010_0000);
        assert_eq!(BootCfg(0x0003_F000).undefined_bits(), 0);
    }
}
