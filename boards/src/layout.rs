//! Boot media layout (design.md §4): where the Secondary Image Table and the two flash.bin
//! copies live on the user area of an SD card or eMMC.

/// Bytes per sector on SD/eMMC; every ROM offset is counted in these.
///
/// Source: psb.rst (U-Boot `doc/board/nxp/psb.rst`), which counts the SIT and images in 512-byte
/// sectors (`dd bs=512 seek=65`).
pub const SECTOR_SIZE: u64 = 512;

/// One sector's bytes: the unit of SD/eMMC block I/O, of the ROM's offsets and of the SIT.
/// `size_of::<Sector>()` is [`SECTOR_SIZE`] where a `usize` is needed.
pub type Sector = [u8; SECTOR_SIZE as usize];

/// Placement of the redundant boot images on the medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLayout {
    /// Sector holding the Secondary Image Table.
    pub sit_sector: u64,
    /// Sector of the primary flash.bin; the ROM adds the same offset to the SIT's
    /// `firstSectorNumber` to find the secondary.
    pub image_sector: u64,
    /// Offset of the signed U-Boot FIT inside a flash.bin.
    pub fit_offset: u64,
    /// The `firstSectorNumber` the tools write into a new SIT.
    pub standard_first_sector: u32,
}

/// The AN12900 / i.MX 8M Mini layout, used by both boards (design.md §3-§4).
pub const AN12900_LAYOUT: MediaLayout = MediaLayout {
    // psb.rst: SIT at sector 0x41 (byte 0x8200); TF-A 9ce232fe "reads that secondary image
    // table from address 0x8200".
    sit_sector: 0x41,
    // U-Boot `doc/board/nxp/imx8mm_evk.rst` (dd seek=33 with bs=1K): flash.bin at 33 KiB.
    image_sector: 0x42,
    // U-Boot `include/configs/imx8mm_evk.h` UBOOT_ITB_OFFSET / `imx8mm-u-boot.dtsi` binman
    // offset: 0x60000 on the device - 0x8400 = 0x57C00 inside flash.bin.
    fit_offset: 0x57C00,
    // psb.rst and TF-A 9ce232fe worked example: firstSectorNumber 0x1000 (2 MiB).
    standard_first_sector: 0x1000,
};

impl MediaLayout {
    /// Byte offset of the Secondary Image Table on the device.
    pub const fn sit_offset(&self) -> u64 {
        self.sit_sector * SECTOR_SIZE
    }

    /// Byte offset of the primary flash.bin.
    pub const fn primary_offset(&self) -> u64 {
        self.image_sector * SECTOR_SIZE
    }

    /// Byte offset of the secondary flash.bin for a SIT `firstSectorNumber`, or `None` when the
    /// sum overflows.
    pub const fn secondary_offset(&self, first_sector: u32) -> Option<u64> {
        match (first_sector as u64).checked_add(self.image_sector) {
            Some(s) => s.checked_mul(SECTOR_SIZE),
            None => None,
        }
    }

    /// Largest flash.bin that fits in a slot before the secondary begins
    /// (`firstSectorNumber × 512`; 2 MiB for the standard table, imx8m-facts.md §2.2).
    pub const fn slot_size(&self, first_sector: u32) -> u64 {
        first_sector as u64 * SECTOR_SIZE
    }

    /// This layout applied to an eMMC boot partition of `partition_bytes` as the whole device
    /// (eMMC layout (a), docs/design.md §5.5): the same SIT, image and FIT offsets, with the
    /// largest `firstSectorNumber` whose two equal slots fit, `(N − image offset) / 1024`
    /// sectors (0xFDF for N = 4 MiB: two 2031.5 KiB slots, the secondary ending exactly at N;
    /// the standard 0x1000 does not fit, its secondary would end at 0x408400). `None` when a
    /// slot would not even reach the FIT offset.
    pub const fn in_boot_partition(&self, partition_bytes: u64) -> Option<MediaLayout> {
        let image = self.primary_offset();
        if partition_bytes <= image {
            return None;
        }
        let first = (partition_bytes - image) / (2 * SECTOR_SIZE);
        if first * SECTOR_SIZE <= self.fit_offset || first > u32::MAX as u64 {
            return None;
        }
        Some(MediaLayout {
            standard_first_sector: first as u32,
            ..*self
        })
    }

    /// Byte offset of the signed FIT of the primary copy.
    pub const fn primary_fit_offset(&self) -> u64 {
        self.primary_offset() + self.fit_offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an12900_offsets_match_the_documented_dd_commands() {
        let l = AN12900_LAYOUT;
        assert_eq!(l.sit_offset(), 0x8200); // dd bs=512 seek=65
        assert_eq!(l.primary_offset(), 0x8400); // seek=66
        assert_eq!(l.secondary_offset(0x1000), Some(0x20_8400)); // seek=4162
        assert_eq!(l.primary_fit_offset(), 0x60000); // RAW_MODE_U_BOOT_SECTOR 0x300
        assert_eq!(l.slot_size(0x1000), 2 << 20);
        assert_eq!(
            l.secondary_offset(u32::MAX),
            Some((u32::MAX as u64 + 0x42) * 512)
        );
    }

    #[test]
    fn layout_a_fills_a_4_mib_boot_partition() {
        let a = AN12900_LAYOUT.in_boot_partition(4 << 20).unwrap();
        assert_eq!(a.standard_first_sector, 0xFDF);
        let slot = a.slot_size(0xFDF);
        let second = a.secondary_offset(0xFDF).unwrap();
        assert_eq!(second, 0x20_4200);
        assert_eq!(second + slot, 4 << 20);
        assert_eq!(a.primary_offset() + slot, second);
        assert_eq!(
            (a.sit_sector, a.image_sector, a.fit_offset),
            (0x41, 0x42, 0x57C00)
        );
        // Too small for two slots reaching the FIT: none.
        assert_eq!(AN12900_LAYOUT.in_boot_partition(0x8400), None);
        assert_eq!(AN12900_LAYOUT.in_boot_partition(0x8400 + 2 * 0x57C00), None);
        assert!(
            AN12900_LAYOUT
                .in_boot_partition(0x8400 + 2 * 0x57E00)
                .is_some()
        );
    }
}
