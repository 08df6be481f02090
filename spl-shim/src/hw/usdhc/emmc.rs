//! eMMC on a uSDHC (the EVK's uSDHC3; qemu-emmc.md): bring-up, EXT_CSD, boot partitions.
//!
//! The controller protocol is [`super::Usdhc`]'s; what differs from an SD card:
//!
//! - identification: CMD0, CMD1 (SEND_OP_COND, sector mode asked for, ≤ 1 s until the
//!   power-up bit), CMD2, CMD3 (the host assigns the RCA), CMD9, CMD7;
//! - EXT_CSD through CMD8 (one 512-byte block): PARTITION_CONFIG \[179\], BOOT_SIZE_MULT \[226\],
//!   SEC_COUNT \[212\];
//! - addressing from OCR bits \[30:29\]: sector mode (0b10) uses block numbers, byte mode
//!   (devices ≤ 2 GB, QEMU's 64 MiB image) byte addresses;
//! - multi-block reads end with an explicit CMD12 after the transfer, never Auto-CMD23;
//! - the area read is selected with CMD6 writing EXT_CSD\[179\] with PARTITION_ACCESS 0, 1 or 2
//!   only, BOOT_ACK and BOOT_PARTITION_ENABLE kept as read
//!   ([`boot_core::emmc::PartitionConfig::with_access`]); the index is a constant below 192
//!   ([`boot_core::emmc::switch_argument`]); the busy wait after it is what EXT_CSD states
//!   (PARTITION_SWITCH_TIME / GENERIC_CMD6_TIME, [`boot_core::emmc::cmd6_timeout_us`]); the
//!   switch is checked with CMD13 (SWITCH_ERROR);
//! - every wait is bounded ([`super`]'s deadlines, [`CMD1_TIMEOUT_US`]).

use boards::Sector;
use boot_core::emmc::{
    Area, BootPartition, BootPartitionRead, CMD6_MIN_TIMEOUT_US, EXT_CSD_SEC_COUNT,
    PartitionConfig, boot_partition_bytes, cmd6_timeout_us, switch_argument,
};
use boot_core::platform::{BlockRead, MediaError};
use tock_registers::interfaces::{Readable, Writeable};

use super::{
    MAX_BLOCKS_PER_COMMAND, MIX_READ_SINGLE, PROT_CTRL_4BIT, Response, SYS_CTRL_TRANSFER, Usdhc,
};

/// CMD1 loop until the device reports power-up done (JEDEC: ≤ 1 s), with margin.
pub const CMD1_TIMEOUT_US: u64 = 1_000_000;
/// Pause between two CMD1.
const CMD1_RETRY_US: u32 = 1_000;
/// CMD1 argument: sector access mode (bits 30:29 = 0b10), 2.7-3.6 V window, 1.70-1.95 V.
const CMD1_ARG: u32 = 0x40FF_8080;
/// The RCA the shim assigns with CMD3 (any non-zero value; Linux uses 1 too).
const RCA: u16 = 1;
/// EXT_CSD index of BUS_WIDTH (JEDEC JESD84): 1 = 4-bit.
const EXT_CSD_BUS_WIDTH: u8 = 183;
/// EXT_CSD index of EXT_CSD_REV.
const EXT_CSD_REV: usize = 192;
/// CMD13 status bit 7: SWITCH_ERROR.
const STATUS_SWITCH_ERROR: u32 = 1 << 7;

/// What eMMC initialisation learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmmcInfo {
    /// RCA assigned with CMD3.
    pub rca: u16,
    /// OCR from the last CMD1 response.
    pub ocr: u32,
    /// Sector (block) addressing (OCR \[30:29\] = 0b10); else byte addressing.
    pub sector_addressing: bool,
    /// CID (bits 127:0; bits 7:0 read as 0).
    pub cid: u128,
    /// EXT_CSD_REV \[192\].
    pub ext_csd_rev: u8,
    /// User-area size in 512-byte blocks.
    pub user_blocks: u64,
    /// Size of each boot partition in 512-byte blocks (BOOT_SIZE_MULT × 128 KiB).
    pub boot_blocks: u64,
    /// EXT_CSD\[179\] as read at initialisation.
    pub partition_config: PartitionConfig,
}

/// An eMMC on a uSDHC controller, after [`init`](Self::init) in transfer state.
#[derive(Debug)]
pub struct Emmc {
    host: Usdhc,
    info: Option<EmmcInfo>,
    /// EXT_CSD\[179\] as last written or read.
    config: PartitionConfig,
    /// Busy times for CMD6 (`boot_core::emmc::cmd6_timeout_us`): PARTITION_CONFIG, others.
    cmd6_us: (u64, u64),
}

impl Emmc {
    /// The eMMC on the controller at `base`, untouched until [`init`](Self::init).
    ///
    /// # Safety
    ///
    /// As [`Usdhc::from_base`]: `base` is a uSDHC register block and nothing else drives it.
    pub const unsafe fn from_base(base: u64) -> Self {
        Emmc {
            // SAFETY: forwarded from the caller's contract.
            host: unsafe { Usdhc::from_base(base) },
            info: None,
            config: PartitionConfig(0),
            cmd6_us: (CMD6_MIN_TIMEOUT_US, CMD6_MIN_TIMEOUT_US),
        }
    }

    /// What [`init`](Self::init) found.
    pub fn info(&self) -> Option<&EmmcInfo> {
        self.info.as_ref()
    }

    /// Resets the controller and brings the eMMC to transfer state, 4-bit bus: CMD0, CMD1
    /// (until power-up, ≤ 1 s), CMD2, CMD3, CMD9, CMD7, CMD8 (EXT_CSD), CMD16, CMD6
    /// (BUS_WIDTH), CMD13. No answer to CMD1: [`MediaError::NoCard`].
    pub fn init(&mut self) -> Result<EmmcInfo, MediaError> {
        self.info = None;
        let h = &mut self.host;
        h.card = None;
        h.reset_controller()?;
        h.command(0, 0, Response::None)?;
        let mut deadline = h.timer.deadline_us(CMD1_TIMEOUT_US);
        let ocr = loop {
            let ocr = match h.command(1, CMD1_ARG, Response::R3) {
                Ok(r) => r[0],
                Err(MediaError::Command { int_status, .. })
                    if int_status & super::INT_CTOE != 0 =>
                {
                    return Err(MediaError::NoCard);
                }
                Err(e) => return Err(e),
            };
            if ocr & (1 << 31) != 0 {
                break ocr;
            }
            if deadline.expired() {
                return Err(MediaError::Timeout {
                    command: 1,
                    waiting_for: "eMMC power-up (OCR bit 31)",
                    int_status: h.regs().int_status.get(),
                });
            }
            embedded_hal::delay::DelayNs::delay_us(&mut h.timer, CMD1_RETRY_US);
        };
        let sector_addressing = (ocr >> 29) & 3 == 0b10;
        let cid = super::long_response(&h.command(2, 0, Response::R2)?);
        let rca_arg = u32::from(RCA) << 16;
        h.command(3, rca_arg, Response::R1)?;
        let csd = super::long_response(&h.command(9, rca_arg, Response::R2)?);
        h.set_clock(SYS_CTRL_TRANSFER);
        h.command(7, rca_arg, Response::R1b)?;
        h.wait_dat0(7)?;

        let mut ext = [0u8; 512];
        h.send(8, 0, Response::R1, MIX_READ_SINGLE, Some(1))
            .and_then(|_| h.read_data(8, &mut ext))
            .inspect_err(|_| h.reset_lines())?;
        h.command(16, size_of::<Sector>() as u32, Response::R1)?;
        let sec_count = u32::from_le_bytes([
            ext[EXT_CSD_SEC_COUNT],
            ext[EXT_CSD_SEC_COUNT + 1],
            ext[EXT_CSD_SEC_COUNT + 2],
            ext[EXT_CSD_SEC_COUNT + 3],
        ]);
        let user_blocks = match (sector_addressing, sec_count) {
            (true, 0) => {
                return Err(MediaError::Card {
                    command: 8,
                    response: 0,
                    what: "EXT_CSD SEC_COUNT is 0 on a sector-addressed eMMC",
                });
            }
            (_, n) if n != 0 => u64::from(n),
            _ => csd_capacity_blocks(csd).ok_or(MediaError::Card {
                command: 9,
                response: (csd >> 96) as u32,
                what: "CSD capacity fields out of range",
            })?,
        };
        self.config = PartitionConfig(ext[boot_core::emmc::EXT_CSD_PARTITION_CONFIG as usize]);
        self.cmd6_us = (
            cmd6_timeout_us(&ext, boot_core::emmc::EXT_CSD_PARTITION_CONFIG),
            cmd6_timeout_us(&ext, EXT_CSD_BUS_WIDTH),
        );
        // 4-bit bus: EXT_CSD[183] = 1 (index below 192), then the host side.
        self.switch(EXT_CSD_BUS_WIDTH, 1)?;
        self.host.regs().prot_ctrl.set(PROT_CTRL_4BIT);
        self.host.transfer_state(RCA)?;
        let info = EmmcInfo {
            rca: RCA,
            ocr,
            sector_addressing,
            cid,
            ext_csd_rev: ext[EXT_CSD_REV],
            user_blocks,
            boot_blocks: boot_partition_bytes(&ext) / size_of::<Sector>() as u64,
            partition_config: self.config,
        };
        self.info = Some(info);
        Ok(info)
    }

    /// CMD6 writing `value` to EXT_CSD\[`index`\], then the busy wait and CMD13: the device must
    /// be back in TRAN without SWITCH_ERROR.
    fn switch(&mut self, index: u8, value: u8) -> Result<(), MediaError> {
        let arg = switch_argument(index, value).ok_or(MediaError::Card {
            command: 6,
            response: u32::from(index),
            what: "EXT_CSD index not writable (>= 192): switch not sent",
        })?;
        let busy_us = if index == boot_core::emmc::EXT_CSD_PARTITION_CONFIG {
            self.cmd6_us.0
        } else {
            self.cmd6_us.1
        };
        let h = &mut self.host;
        h.command(6, arg, Response::R1b)?;
        h.wait_dat0_for(6, busy_us)?;
        let status = h.command(13, u32::from(RCA) << 16, Response::R1)?[0];
        if status & STATUS_SWITCH_ERROR != 0 || (status >> 9) & 0xF != 4 {
            return Err(MediaError::Card {
                command: 6,
                response: status,
                what: "SWITCH_ERROR or not back in TRAN after CMD6",
            });
        }
        Ok(())
    }

    /// Makes `area` the one reads go to (one CMD6 when it is not already).
    pub fn select(&mut self, area: Area) -> Result<(), MediaError> {
        let want = self.config.with_access(area);
        if want != self.config {
            self.switch(boot_core::emmc::EXT_CSD_PARTITION_CONFIG, want.0)?;
            self.config = want;
        }
        Ok(())
    }

    /// The blocks of `area`.
    fn area_blocks(&self, area: Area) -> u64 {
        self.info.map_or(0, |i| match area {
            Area::User => i.user_blocks,
            Area::Boot(_) => i.boot_blocks,
        })
    }

    /// Reads whole blocks of `area` from `lba`: CMD17, or CMD18 with an explicit CMD12, at
    /// most 65535 blocks per command.
    pub fn read_area(&mut self, area: Area, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        let info = self.info.ok_or(MediaError::NoCard)?;
        let out_of_range = MediaError::OutOfRange {
            lba,
            len: buf.len(),
        };
        let block = size_of::<Sector>();
        if buf.is_empty() || !buf.len().is_multiple_of(block) {
            return Err(out_of_range);
        }
        match lba.checked_add((buf.len() / block) as u64) {
            Some(end) if end <= self.area_blocks(area) => {}
            _ => return Err(out_of_range),
        }
        self.select(area)?;
        let mut next = lba;
        for chunk in buf.chunks_mut(MAX_BLOCKS_PER_COMMAND as usize * block) {
            let n = chunk.len() / block;
            let arg = if info.sector_addressing {
                Some(next)
            } else {
                next.checked_mul(block as u64)
            }
            .and_then(|a| u32::try_from(a).ok())
            .ok_or(out_of_range)?;
            if let Err(e) = self.host.read_command(arg, n as u32, chunk, true) {
                self.host.recover(n > 1);
                return Err(e);
            }
            next += n as u64;
        }
        Ok(())
    }

    /// The user area as a block device.
    pub fn user(&mut self) -> UserArea<'_> {
        UserArea(self)
    }
}

/// MMC CSD capacity (CSD_STRUCTURE any; devices ≤ 2 GB): (C_SIZE + 1) × 2^(C_SIZE_MULT + 2)
/// blocks of 2^READ_BL_LEN bytes, in 512-byte blocks.
fn csd_capacity_blocks(csd: u128) -> Option<u64> {
    let bits = |hi: u32, lo: u32| -> u64 { ((csd >> lo) & ((1u128 << (hi - lo + 1)) - 1)) as u64 };
    let read_bl_len = bits(83, 80);
    if !(9..=11).contains(&read_bl_len) {
        return None;
    }
    let bytes = (bits(73, 62) + 1) << (bits(49, 47) + 2 + read_bl_len);
    Some(bytes / size_of::<Sector>() as u64)
}

impl BootPartitionRead for Emmc {
    fn partition_blocks(&self) -> u64 {
        self.area_blocks(Area::Boot(BootPartition::Boot0))
    }

    fn read_partition(
        &mut self,
        partition: BootPartition,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), MediaError> {
        self.read_area(Area::Boot(partition), lba, buf)
    }
}

/// The user area of an [`Emmc`].
pub struct UserArea<'a>(&'a mut Emmc);

impl BlockRead for UserArea<'_> {
    fn block_count(&self) -> u64 {
        self.0.area_blocks(Area::User)
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        self.0.read_area(Area::User, lba, buf)
    }
}
