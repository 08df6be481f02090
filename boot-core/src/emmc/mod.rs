//! eMMC boot partitions (docs/design.md §5.5): the EXT_CSD\[179\] register, a small trait for
//! reading sectors of one boot partition, and the two views the one judgement runs over.
//!
//! - Layout (a), [`OnePartition`]: the enabled boot partition is the whole device, with
//!   [`boards::MediaLayout::in_boot_partition`] (SIT at 0x8200, copies at 0x8400 and
//!   `firstSectorNumber × 512 + 0x8400`).
//! - Layout (b), [`AcrossPartitions`]: a *virtual device* = active partition ‖ inactive
//!   partition (N bytes each) whose SIT sector (0x41) reads as the implied SIT
//!   `{0, 0, 0x00112233, N / 512, 0}` ([`implied_sit`]), so copy 1 is the active partition's copy
//!   and copy 2 the other's, judged by the AN12900 layout unchanged.
//!
//! [`flow`] runs the ROM's choice, the shim's flow and the prediction over them; nothing here
//! judges a copy itself.

pub mod flow;

use boards::{Board, EmmcLayout, SECTOR_SIZE, Sector};

use crate::platform::{BlockRead, MediaError};

pub use flow::{EmmcRomStart, EmmcStart, choose, own_sit, predict, predict_start, run};

/// EXT_CSD index of PARTITION_CONFIG (JEDEC JESD84; docs/imx8m-facts.md §3.8).
pub const EXT_CSD_PARTITION_CONFIG: u8 = 179;
/// EXT_CSD index of BOOT_SIZE_MULT: boot partition size in 128 KiB units.
pub const EXT_CSD_BOOT_SIZE_MULT: usize = 226;
/// EXT_CSD index of SEC_COUNT (4 bytes, LE): user-area size in sectors (devices > 2 GB).
pub const EXT_CSD_SEC_COUNT: usize = 212;
/// The lowest EXT_CSD index that is not writable: a CMD6 to it (or above) leaves SWITCH_ERROR
/// set until CMD0 (QEMU measured, qemu-emmc.md); nothing here builds such a switch.
pub const EXT_CSD_FIRST_READ_ONLY: u8 = 192;
/// EXT_CSD index of PARTITION_SWITCH_TIME: the longest PARTITION_CONFIG switch, in 10 ms
/// units (JESD84 4.41 on; Linux `mmc.h` EXT_CSD_PART_SWITCH_TIME, `mmc.c` `10 * ext_csd[..]`).
pub const EXT_CSD_PARTITION_SWITCH_TIME: usize = 199;
/// EXT_CSD index of GENERIC_CMD6_TIME: the longest other CMD6, in 10 ms units (JESD84 4.5 on;
/// Linux EXT_CSD_GENERIC_CMD6_TIME).
pub const EXT_CSD_GENERIC_CMD6_TIME: usize = 248;
/// The least busy time a CMD6 is given: 500 ms (Linux `DEFAULT_CMD6_TIMEOUT_MS`), also when
/// EXT_CSD states none (0: older devices, where the byte is reserved).
pub const CMD6_MIN_TIMEOUT_US: u64 = 500_000;
/// Bytes of one BOOT_SIZE_MULT unit.
pub const BOOT_SIZE_UNIT: u64 = 128 * 1024;

/// One of the two hardware boot partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootPartition {
    /// `boot0` (PARTITION_ACCESS 1, BOOT_PARTITION_ENABLE 1).
    Boot0,
    /// `boot1` (PARTITION_ACCESS 2, BOOT_PARTITION_ENABLE 2).
    Boot1,
}

impl BootPartition {
    /// Both, in order.
    pub const BOTH: [BootPartition; 2] = [BootPartition::Boot0, BootPartition::Boot1];

    /// 0 or 1: its place in [`BootPartition::BOTH`].
    pub const fn index(self) -> usize {
        self.number() as usize - 1
    }

    /// The other boot partition.
    pub const fn other(self) -> Self {
        match self {
            BootPartition::Boot0 => BootPartition::Boot1,
            BootPartition::Boot1 => BootPartition::Boot0,
        }
    }

    /// Its number in PARTITION_ACCESS and BOOT_PARTITION_ENABLE (1 or 2).
    pub const fn number(self) -> u8 {
        match self {
            BootPartition::Boot0 => 1,
            BootPartition::Boot1 => 2,
        }
    }

    /// `boot0` or `boot1`, as Linux names the block devices.
    pub const fn name(self) -> &'static str {
        match self {
            BootPartition::Boot0 => "boot0",
            BootPartition::Boot1 => "boot1",
        }
    }
}

impl core::fmt::Display for BootPartition {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// What BOOT_PARTITION_ENABLE (EXT_CSD\[179\] bits \[5:3\]) names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootEnable {
    /// 0: boot not enabled.
    None,
    /// 1 or 2: a boot partition.
    Partition(BootPartition),
    /// 7: the user area.
    User,
    /// 3 to 6: reserved values.
    Reserved(u8),
}

impl core::fmt::Display for BootEnable {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BootEnable::None => f.write_str("not enabled"),
            BootEnable::Partition(p) => f.write_str(p.name()),
            BootEnable::User => f.write_str("user area"),
            BootEnable::Reserved(v) => write!(f, "reserved ({v})"),
        }
    }
}

/// The area PARTITION_ACCESS (bits \[2:0\]) selects for reads and writes. Only these three are
/// ever sent: QEMU aborts on 3-7 (RPMB, general purpose areas) and nothing here needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// 0: the user area.
    User,
    /// 1 or 2: a boot partition.
    Boot(BootPartition),
}

/// EXT_CSD\[179\] PARTITION_CONFIG: bit 6 BOOT_ACK, \[5:3\] BOOT_PARTITION_ENABLE, \[2:0\]
/// PARTITION_ACCESS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionConfig(pub u8);

impl PartitionConfig {
    /// BOOT_ACK (bit 6).
    pub const fn boot_ack(self) -> bool {
        self.0 & 0x40 != 0
    }

    /// BOOT_PARTITION_ENABLE.
    pub const fn enabled(self) -> BootEnable {
        match (self.0 >> 3) & 7 {
            0 => BootEnable::None,
            1 => BootEnable::Partition(BootPartition::Boot0),
            2 => BootEnable::Partition(BootPartition::Boot1),
            7 => BootEnable::User,
            v => BootEnable::Reserved(v),
        }
    }

    /// The boot partition BOOT_PARTITION_ENABLE names, when it names one.
    pub const fn enabled_partition(self) -> Option<BootPartition> {
        match self.enabled() {
            BootEnable::Partition(p) => Some(p),
            _ => None,
        }
    }

    /// PARTITION_ACCESS (0-7 as read).
    pub const fn access(self) -> u8 {
        self.0 & 7
    }

    /// The value that selects `area` for access, keeping bit 7, BOOT_ACK and the enable bits.
    pub const fn with_access(self, area: Area) -> Self {
        let access = match area {
            Area::User => 0,
            Area::Boot(p) => p.number(),
        };
        PartitionConfig((self.0 & !7) | access)
    }

    /// The value that enables booting from `p`, keeping bit 7, BOOT_ACK and the access bits
    /// (the switch of layout (b); `ubootctl` writes it).
    pub const fn with_enabled(self, p: BootPartition) -> Self {
        PartitionConfig((self.0 & !0x38) | (p.number() << 3))
    }

    /// The CMD6 argument that writes this value to EXT_CSD\[179\] ([`switch_argument`]).
    pub const fn switch_argument(self) -> u32 {
        match switch_argument(EXT_CSD_PARTITION_CONFIG, self.0) {
            Some(a) => a,
            None => unreachable!(),
        }
    }
}

/// `0x48 (BOOT_ACK 1, boot from boot0, access user)`.
impl core::fmt::Display for PartitionConfig {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:#04x} (BOOT_ACK {}, boot from {}, access ",
            self.0,
            u8::from(self.boot_ack()),
            self.enabled()
        )?;
        match self.access() {
            0 => f.write_str("user")?,
            1 => f.write_str("boot0")?,
            2 => f.write_str("boot1")?,
            3 => f.write_str("RPMB")?,
            v => write!(f, "GP{}", v - 3)?,
        }
        f.write_str(")")
    }
}

/// The CMD6 (SWITCH) argument writing `value` to EXT_CSD\[`index`\] (access mode 3, write
/// byte; command set 0), or `None` for an index >= [`EXT_CSD_FIRST_READ_ONLY`], which a card
/// answers with a SWITCH_ERROR that only CMD0 clears.
pub const fn switch_argument(index: u8, value: u8) -> Option<u32> {
    if index >= EXT_CSD_FIRST_READ_ONLY {
        return None;
    }
    Some((3 << 24) | ((index as u32) << 16) | ((value as u32) << 8))
}

/// The busy time to allow a CMD6 to EXT_CSD\[`index`\]: PARTITION_SWITCH_TIME for
/// PARTITION_CONFIG, GENERIC_CMD6_TIME for any other index, × 10 ms as the device states it
/// (so at most 2.55 s), never less than [`CMD6_MIN_TIMEOUT_US`].
pub fn cmd6_timeout_us(ext_csd: &[u8; 512], index: u8) -> u64 {
    let field = if index == EXT_CSD_PARTITION_CONFIG {
        EXT_CSD_PARTITION_SWITCH_TIME
    } else {
        EXT_CSD_GENERIC_CMD6_TIME
    };
    (u64::from(ext_csd[field]) * 10_000).max(CMD6_MIN_TIMEOUT_US)
}

/// Boot partition size in bytes from EXT_CSD (BOOT_SIZE_MULT × 128 KiB).
pub fn boot_partition_bytes(ext_csd: &[u8; 512]) -> u64 {
    u64::from(ext_csd[EXT_CSD_BOOT_SIZE_MULT]) * BOOT_SIZE_UNIT
}

/// Reads sectors of one eMMC boot partition (the shim over its uSDHC with CMD6 switches,
/// `ubootctl` over `/dev/mmcblkNbootM`, tests over memory).
pub trait BootPartitionRead {
    /// Sectors ([`boards::SECTOR_SIZE`] bytes) in each boot partition.
    fn partition_blocks(&self) -> u64;

    /// Reads `buf.len() / SECTOR_SIZE` sectors from sector `lba` of `partition`. The length
    /// rules and errors are those of [`BlockRead::read_blocks`], within one partition.
    fn read_partition(
        &mut self,
        partition: BootPartition,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), MediaError>;
}

/// Checks a read request against a device of `blocks` sectors.
fn check(lba: u64, buf: &[u8], blocks: u64) -> Result<u64, MediaError> {
    let len = buf.len() as u64;
    let err = MediaError::OutOfRange {
        lba,
        len: buf.len(),
    };
    if len == 0 || !len.is_multiple_of(SECTOR_SIZE) {
        return Err(err);
    }
    let n = len / SECTOR_SIZE;
    match lba.checked_add(n) {
        Some(end) if end <= blocks => Ok(n),
        _ => Err(err),
    }
}

/// Layout (a)'s device: one boot partition.
pub struct OnePartition<'a, P> {
    /// The partitions.
    pub parts: &'a mut P,
    /// The one read.
    pub partition: BootPartition,
}

impl<P: BootPartitionRead> BlockRead for OnePartition<'_, P> {
    fn block_count(&self) -> u64 {
        self.parts.partition_blocks()
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        check(lba, buf, self.block_count())?;
        self.parts.read_partition(self.partition, lba, buf)
    }
}

/// The Secondary Image Table layout (b)'s virtual device shows at sector 0x41: copy 2 starts
/// one partition in (`firstSectorNumber` = N / 512).
pub fn implied_sit(partition_bytes: u64) -> Sector {
    let first = u32::try_from(partition_bytes / SECTOR_SIZE).unwrap_or(u32::MAX);
    imx_hab::sit::build_sector(first)
}

/// Layout (b)'s virtual device: `active` ‖ its other partition, with the implied SIT at the
/// AN12900 SIT sector (whatever the active partition holds there).
pub struct AcrossPartitions<'a, P> {
    /// The partitions.
    pub parts: &'a mut P,
    /// The partition BOOT_PARTITION_ENABLE names: copy 1.
    pub active: BootPartition,
}

impl<P: BootPartitionRead> AcrossPartitions<'_, P> {
    /// The SIT sector the view substitutes.
    pub const SIT_SECTOR: u64 = boards::AN12900_LAYOUT.sit_sector;
}

impl<P: BootPartitionRead> BlockRead for AcrossPartitions<'_, P> {
    fn block_count(&self) -> u64 {
        self.parts.partition_blocks().saturating_mul(2)
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        check(lba, buf, self.block_count())?;
        let per = self.parts.partition_blocks();
        let mut at = lba;
        let mut rest = buf;
        while !rest.is_empty() {
            // The next run: up to the SIT sector, the SIT sector alone, or up to the boundary.
            let (partition, local, limit) = if at < per {
                (self.active, at, per)
            } else {
                (self.active.other(), at - per, 2 * per)
            };
            let run = if at == Self::SIT_SECTOR {
                1
            } else if at < Self::SIT_SECTOR {
                Self::SIT_SECTOR.min(limit) - at
            } else {
                limit - at
            };
            let bytes = (run * SECTOR_SIZE).min(rest.len() as u64) as usize;
            let (now, later) = rest.split_at_mut(bytes);
            if at == Self::SIT_SECTOR {
                now.copy_from_slice(&implied_sit(per * SECTOR_SIZE));
            } else {
                self.parts.read_partition(partition, local, now)?;
            }
            at += (bytes as u64) / SECTOR_SIZE;
            rest = later;
        }
        Ok(())
    }
}

/// The board the one judgement uses for `layout` on boot partitions of `partition_bytes`:
/// layout (a) with [`boards::MediaLayout::in_boot_partition`] (slots from the SIT), layout (b)
/// with [`boards::MediaLayout::across_boot_partitions`] over the virtual device of 2N bytes
/// (2 MiB slots, fewer bytes where copy 1 would run past N). `None` when a slot of `layout`
/// would not reach past the FIT offset on such partitions: nothing can boot from them.
pub fn board_for(board: &Board, layout: EmmcLayout, partition_bytes: u64) -> Option<Board> {
    let media = match layout {
        EmmcLayout::InOnePartition => board.media.in_boot_partition(partition_bytes)?,
        EmmcLayout::AcrossPartitions => board.media.across_boot_partitions(partition_bytes)?,
    };
    Some(Board { media, ..*board })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_config_fields_and_switches() {
        let c = PartitionConfig(0x48);
        assert!(c.boot_ack());
        assert_eq!(c.enabled(), BootEnable::Partition(BootPartition::Boot0));
        assert_eq!(c.access(), 0);
        assert_eq!(c.with_access(Area::Boot(BootPartition::Boot1)).0, 0x4A);
        assert_eq!(
            PartitionConfig(0x4A).with_access(Area::User).0,
            0x48,
            "access back to user keeps ACK and enable"
        );
        assert_eq!(c.with_enabled(BootPartition::Boot1).0, 0x50);
        assert_eq!(PartitionConfig(0x78).enabled(), BootEnable::User);
        assert_eq!(PartitionConfig(0x18).enabled(), BootEnable::Reserved(3));
        assert_eq!(PartitionConfig(0).enabled(), BootEnable::None);
        assert_eq!(c.switch_argument(), 0x03B3_4800);
        assert_eq!(c.enabled_partition(), Some(BootPartition::Boot0));
        assert_eq!(PartitionConfig(0x38).enabled_partition(), None);
        assert_eq!(BootPartition::Boot1.index(), 1);
        assert_eq!(BootPartition::BOTH.map(BootPartition::index), [0, 1]);
        assert_eq!(
            c.to_string(),
            "0x48 (BOOT_ACK 1, boot from boot0, access user)"
        );
        assert_eq!(
            PartitionConfig(0x1F).to_string(),
            "0x1f (BOOT_ACK 0, boot from reserved (3), access GP4)"
        );
        assert_eq!(PartitionConfig(0x3B).enabled().to_string(), "user area");
        assert_eq!(PartitionConfig(0x03).enabled().to_string(), "not enabled");
        assert_eq!(switch_argument(191, 1), Some(0x03BF_0100));
        assert_eq!(switch_argument(192, 1), None);
        assert_eq!(switch_argument(255, 0), None);
        // Whatever was read, an access value built here is 0, 1 or 2.
        for v in 0..=255u8 {
            for a in [
                Area::User,
                Area::Boot(BootPartition::Boot0),
                Area::Boot(BootPartition::Boot1),
            ] {
                assert!(PartitionConfig(v).with_access(a).access() <= 2);
            }
        }
    }

    /// Two partitions of `blocks` sectors; every sector holds its partition and number.
    struct Parts {
        blocks: u64,
        reads: u32,
    }

    impl BootPartitionRead for Parts {
        fn partition_blocks(&self) -> u64 {
            self.blocks
        }
        fn read_partition(
            &mut self,
            p: BootPartition,
            lba: u64,
            buf: &mut [u8],
        ) -> Result<(), MediaError> {
            check(lba, buf, self.blocks)?;
            self.reads += 1;
            for (i, s) in buf.chunks_exact_mut(512).enumerate() {
                s.fill(p.number());
                s[..8].copy_from_slice(&(lba + i as u64).to_le_bytes());
            }
            Ok(())
        }
    }

    fn sector_of(buf: &[u8]) -> (u8, u64) {
        (buf[8], u64::from_le_bytes(buf[..8].try_into().unwrap()))
    }

    #[test]
    fn the_virtual_device_maps_copies_and_implies_the_sit() {
        let mut parts = Parts {
            blocks: 0x2000,
            reads: 0,
        };
        let mut d = AcrossPartitions {
            parts: &mut parts,
            active: BootPartition::Boot1,
        };
        assert_eq!(d.block_count(), 0x4000);
        // A read across the SIT sector and one across the partition boundary.
        let mut buf = vec![0u8; 4 * 512];
        d.read_blocks(0x40, &mut buf).unwrap();
        assert_eq!(sector_of(&buf[..512]), (2, 0x40));
        assert_eq!(&buf[512..1024], &implied_sit(0x2000 * 512)[..]);
        let sit = imx_hab::sit::Sit::parse(&buf[512..1024]).unwrap();
        assert_eq!(sit.first_sector_number(), 0x2000);
        assert_eq!(sector_of(&buf[1024..1536]), (2, 0x42));
        assert_eq!(sector_of(&buf[1536..]), (2, 0x43));
        d.read_blocks(0x1FFF, &mut buf[..1024]).unwrap();
        assert_eq!(sector_of(&buf[..512]), (2, 0x1FFF));
        assert_eq!(sector_of(&buf[512..1024]), (1, 0));
        // Copy 2's SIT-numbered sector is the other partition's own sector 0x41.
        d.read_blocks(0x2041, &mut buf[..512]).unwrap();
        assert_eq!(sector_of(&buf[..512]), (1, 0x41));
        // Out of range, empty and ragged reads are refused without reading.
        let before = d.parts.reads;
        assert!(d.read_blocks(0x3FFF, &mut buf[..1024]).is_err());
        assert!(d.read_blocks(0, &mut []).is_err());
        assert!(d.read_blocks(0, &mut buf[..100]).is_err());
        assert!(d.read_blocks(u64::MAX, &mut buf[..512]).is_err());
        assert_eq!(d.parts.reads, before);
    }

    #[test]
    fn one_partition_is_the_partition() {
        let mut parts = Parts {
            blocks: 0x100,
            reads: 0,
        };
        let mut d = OnePartition {
            parts: &mut parts,
            partition: BootPartition::Boot0,
        };
        let mut buf = [0u8; 1024];
        d.read_blocks(0x41, &mut buf).unwrap();
        assert_eq!(sector_of(&buf[..512]), (1, 0x41));
        assert!(d.read_blocks(0xFF, &mut buf).is_err());
    }

    #[test]
    fn boards_for_each_layout() {
        let b = &boards::qemu_imx8mp::BOARD;
        let a = board_for(b, EmmcLayout::InOnePartition, 4 << 20).unwrap();
        assert_eq!(a.media.standard_first_sector, 0xFDF);
        let v = board_for(b, EmmcLayout::AcrossPartitions, 4 << 20).unwrap();
        assert_eq!(v.media, b.media);
        // Smaller partitions: copy 1's slot ends at N, never in the other partition.
        for n in [2u64 << 20, 1 << 20] {
            let v = board_for(b, EmmcLayout::AcrossPartitions, n).unwrap();
            let m = v.media;
            assert_eq!(m.primary_offset() + m.slot_size(m.standard_first_sector), n);
        }
        assert!(board_for(b, EmmcLayout::AcrossPartitions, 256 << 10).is_none());
        assert!(board_for(b, EmmcLayout::InOnePartition, 64 << 10).is_none());
        let mut ext = [0u8; 512];
        ext[EXT_CSD_BOOT_SIZE_MULT] = 32;
        assert_eq!(boot_partition_bytes(&ext), 4 << 20);
    }

    #[test]
    fn cmd6_busy_times_follow_ext_csd() {
        let mut ext = [0u8; 512];
        // Nothing stated: the 500 ms floor for either switch.
        assert_eq!(cmd6_timeout_us(&ext, EXT_CSD_PARTITION_CONFIG), 500_000);
        assert_eq!(cmd6_timeout_us(&ext, 183), 500_000);
        ext[EXT_CSD_PARTITION_SWITCH_TIME] = 255;
        ext[EXT_CSD_GENERIC_CMD6_TIME] = 100;
        assert_eq!(cmd6_timeout_us(&ext, EXT_CSD_PARTITION_CONFIG), 2_550_000);
        assert_eq!(cmd6_timeout_us(&ext, 183), 1_000_000);
        // A stated time under the floor does not shorten the wait.
        ext[EXT_CSD_GENERIC_CMD6_TIME] = 3;
        assert_eq!(cmd6_timeout_us(&ext, 183), 500_000);
    }
}
