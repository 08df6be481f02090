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
    /// How big the two slots are ([`MediaLayout::slots`]).
    pub slots: SlotRule,
}

/// How the slots of the two copies are sized, which bounds both the SIT a device accepts and
/// the copy each slot holds (docs/design.md §4, §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotRule {
    /// Both slots are `slot_size(standard_first_sector)` whatever the SIT says (the user area
    /// of an SD card or eMMC: 2 MiB, design.md §4). A SIT is valid when both fit the device.
    Fixed,
    /// The slots the SIT itself makes inside the device (an eMMC boot partition, layout (a)):
    /// the primary's runs up to the secondary (`firstSectorNumber × 512`), the secondary's to
    /// the end of the device. A SIT is valid when both slots reach past the FIT offset.
    FromSit,
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
    slots: SlotRule::Fixed,
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
    /// (eMMC layout (a), docs/design.md §5.5): the same SIT, image and FIT offsets, slots
    /// taken from the SIT ([`SlotRule::FromSit`]: any SIT whose two slots reach past the FIT
    /// offset is accepted, e.g. the standard 0x1000 in a 4 MiB partition, or 0xFDF made for
    /// 4 MiB on an 8 MiB one). `standard_first_sector` is only the value tools write: the
    /// largest whose two equal slots fit, `(N − image offset) / 1024` sectors (0xFDF for
    /// N = 4 MiB: two 2031.5 KiB slots, the secondary ending exactly at N). `None` when a slot
    /// would not even reach the FIT offset.
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
            slots: SlotRule::FromSit,
            ..*self
        })
    }

    /// The least bytes each slot must hold for a SIT to be valid: the fixed slot, or (slots
    /// from the SIT) one sector past the FIT offset, so that the FIT's header lies in it.
    pub const fn required_slot(&self) -> u64 {
        match self.slots {
            SlotRule::Fixed => self.slot_size(self.standard_first_sector),
            SlotRule::FromSit => self.fit_offset + SECTOR_SIZE,
        }
    }

    /// The slots `(primary, secondary)` in bytes for a SIT `firstSectorNumber` on a device of
    /// `device_bytes` ([`SlotRule`]); each copy must fit its own. With slots from the SIT, the
    /// secondary's is 0 when it would start past the device.
    pub const fn slots(&self, first_sector: u32, device_bytes: u64) -> (u64, u64) {
        match self.slots {
            SlotRule::Fixed => {
                let s = self.slot_size(self.standard_first_sector);
                (s, s)
            }
            SlotRule::FromSit => {
                let secondary = match self.secondary_offset(first_sector) {
                    Some(o) => device_bytes.saturating_sub(o),
                    None => 0,
                };
                (self.slot_size(first_sector), secondary)
            }
        }
    }

    /// The primary's slot when no valid SIT bounds it: the fixed slot, or (slots from the
    /// SIT) the rest of the device, since nothing else lies there.
    pub const fn primary_slot_alone(&self, device_bytes: u64) -> u64 {
        match self.slots {
            SlotRule::Fixed => self.slot_size(self.standard_first_sector),
            SlotRule::FromSit => device_bytes.saturating_sub(self.primary_offset()),
        }
    }

    /// This layout over eMMC layout (b)'s virtual device (active ‖ inactive boot partition of
    /// `partition_bytes` each, docs/design.md §5.5): fixed slots of the standard 2 MiB, or
    /// `N − image offset` where the partition is smaller (copy 1's slot must end inside the
    /// active partition: 0x1F7C00 for N = 2 MiB). `None` when that does not reach past the
    /// FIT offset.
    pub const fn across_boot_partitions(&self, partition_bytes: u64) -> Option<MediaLayout> {
        let image = self.primary_offset();
        if partition_bytes <= image {
            return None;
        }
        let room = (partition_bytes - image) / SECTOR_SIZE;
        let first = if room < self.standard_first_sector as u64 {
            room
        } else {
            self.standard_first_sector as u64
        };
        if first * SECTOR_SIZE <= self.fit_offset {
            return None;
        }
        Some(MediaLayout {
            standard_first_sector: first as u32,
            slots: SlotRule::Fixed,
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
        assert_eq!(a.slots, SlotRule::FromSit);
        // Too small for two slots reaching the FIT: none.
        assert_eq!(AN12900_LAYOUT.in_boot_partition(0x8400), None);
        assert_eq!(AN12900_LAYOUT.in_boot_partition(0x8400 + 2 * 0x57C00), None);
        assert!(
            AN12900_LAYOUT
                .in_boot_partition(0x8400 + 2 * 0x57E00)
                .is_some()
        );
    }

    #[test]
    fn layout_b_slots_end_inside_the_partition() {
        let l = AN12900_LAYOUT;
        assert_eq!(l.across_boot_partitions(4 << 20), Some(l));
        assert_eq!(l.across_boot_partitions(64 << 20), Some(l));
        for n in [2u64 << 20, 1 << 20, 0x8400 + 0x57E00] {
            let b = l.across_boot_partitions(n).unwrap();
            assert_eq!(b.primary_offset() + b.slot_size(b.standard_first_sector), n);
        }
        assert_eq!(
            l.across_boot_partitions(2 << 20)
                .unwrap()
                .standard_first_sector,
            0xFBE
        );
        assert_eq!(l.across_boot_partitions(0x8400 + 0x57C00), None);
        assert_eq!(l.across_boot_partitions(0x8400), None);
        assert_eq!(l.across_boot_partitions(0), None);
    }

    #[test]
    fn slots_from_the_sit_in_a_boot_partition() {
        let a = AN12900_LAYOUT.in_boot_partition(4 << 20).unwrap();
        // The standard SIT in 4 MiB (NXP community m-p/1897391): 2 MiB, then the rest.
        assert_eq!(a.slots(0x1000, 4 << 20), (2 << 20, (4 << 20) - 0x20_8400));
        // A 4 MiB image (0xFDF) on 8 MiB partitions: the secondary's slot is the rest.
        let b = AN12900_LAYOUT.in_boot_partition(8 << 20).unwrap();
        assert_eq!(
            b.slots(0xFDF, 8 << 20),
            (0xFDF * 512, (8 << 20) - 0x20_4200)
        );
        assert_eq!(a.required_slot(), 0x57C00 + 512);
        assert_eq!(a.primary_slot_alone(4 << 20), (4 << 20) - 0x8400);
        // A secondary past the device has no slot.
        assert_eq!(a.slots(0x4000, 4 << 20).1, 0);
        assert_eq!(a.slots(u32::MAX, 4 << 20).1, (0));
        // The user area keeps its fixed 2 MiB slots.
        let l = AN12900_LAYOUT;
        assert_eq!(l.slots(0x2000, 64 << 20), (2 << 20, 2 << 20));
        assert_eq!(l.required_slot(), 2 << 20);
        assert_eq!(l.primary_slot_alone(64 << 20), 2 << 20);
    }
}
