//! The ROM's side of a boot (imx8m-facts.md §3): what its event log says, and which SPL it
//! starts from a card.
//!
//! - [`parse_log`] reads the event log the ROM leaves in OCRAM (pointer at 0x9E0 on every
//!   i.MX 8M, §3.6): the boot-image event (0x50 primary, 0x51 secondary) and the HAB result
//!   (0xA0). The shim records both in the cell ([`crate::cell::RomInfo`]).
//! - [`choose`] is the ROM's choice of SPL on the AN12900 layout, built on the SPL half of the
//!   one judgement ([`crate::examine::examine_spl`]). The simulation's ROM model runs it at
//!   every reset, and `ubootctl`'s prediction ([`predict_start`]) runs it before the shim's
//!   flow, so the pairing rule (design.md §5.1) is applied to the copy the ROM would start.

use boards::{Board, SECTOR_SIZE, Sector};
use imx_hab::hab::Authenticator;
use imx_hab::hab::codes::status;

use crate::boot::timing::Timings;
use crate::boot::{Hardware, judge_sit};
use crate::cell::{RomLog, SitStatus};
use crate::examine::{self, Context, Failure, Fault, SplCheck, SplLayout, examine_spl};
use crate::platform::{BlockRead, Clock, WatchdogService};
use crate::policy::Slot;

/// ROM event IDs (bits 31..24 of a log word; imx8m-facts.md §3.6).
pub mod event {
    /// Log version in the low byte.
    pub const LOG_VERSION: u8 = 0x01;
    /// Boot mode (0x10-0x13): internal fuse boot.
    pub const BOOT_MODE_INTERNAL: u8 = 0x12;
    /// Security configuration: closed (0x20 FAB, 0x21 field return, 0x22 open, 0x23 closed).
    pub const SEC_CLOSED: u8 = 0x23;
    /// Security configuration: open.
    pub const SEC_OPEN: u8 = 0x22;
    /// Boot from the primary image.
    pub const BOOT_PRIMARY: u8 = 0x50;
    /// Boot from the secondary image.
    pub const BOOT_SECONDARY: u8 = 0x51;
    /// Primary boot device type (0x60-0x67): "SD or EMMC", one value for both (barebox
    /// `bootrom-cmd.c` `boot_device_0x6y`, after AN12853; imx8m-facts.md §3.6), so the
    /// ROM model logs it for an eMMC boot too.
    pub const DEVICE_SD_EMMC: u8 = 0x61;
    /// Image authentication result (low byte: HAB status, 0xF0 = pass), then two words.
    pub const AUTH_RESULT: u8 = 0xA0;
    /// Jump to the image (offset, ticks).
    pub const JUMP: u8 = 0xC0;
    /// Serial download.
    pub const SERIAL_DOWNLOAD: u8 = 0xD0;
}

/// Words the ROM's log holds at most (imx8m-facts.md §3.6).
pub const LOG_WORDS: usize = 128;

/// Parameter words that follow an event (imx8m-facts.md §3.6 table): 1 for device init and
/// read events (0x80-0x9F), 2 for the HAB result (0xA0) and the jump (0xC0), else 0.
pub const fn extra_words(id: u8) -> usize {
    match id {
        0x80 | 0x81 | 0x82 | 0x8F | 0x90 | 0x91 | 0x9F => 1,
        event::AUTH_RESULT | event::JUMP => 2,
        _ => 0,
    }
}

/// Whether a log pointer read at 0x9E0 may be used: 0x900000 <= ptr < 0xB00000 and 4-byte
/// aligned, as U-Boot and barebox check it (imx8m-facts.md §3.6).
pub const fn log_pointer_valid(ptr: u32) -> bool {
    ptr >= 0x0090_0000 && ptr < 0x00B0_0000 && ptr.is_multiple_of(4)
}

/// What a ROM event log says about the boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSummary {
    /// The boot-image event.
    pub log: RomLog,
    /// The status byte of the last HAB result event (0xA0), if any.
    pub hab: Option<u8>,
}

/// Parses a ROM event log: events until ID 0x00 or [`LOG_WORDS`] words, each followed by its
/// [`extra_words`]. The last 0x50 / 0x51 decides the boot-image event; a log with neither is
/// [`RomLog::NoBootEvent`]. A HAB status byte other than pass, fail or warning is ignored.
pub fn parse_log(words: &[u32]) -> LogSummary {
    let mut summary = LogSummary {
        log: RomLog::NoBootEvent,
        hab: None,
    };
    let words = &words[..words.len().min(LOG_WORDS)];
    let mut i = 0;
    while let Some(&w) = words.get(i) {
        let id = (w >> 24) as u8;
        if id == 0 {
            break;
        }
        match id {
            event::BOOT_PRIMARY => summary.log = RomLog::PrimaryBoot,
            event::BOOT_SECONDARY => summary.log = RomLog::SecondaryBoot,
            event::AUTH_RESULT => {
                let s = w as u8;
                if matches!(s, status::SUCCESS | status::FAILURE | status::WARNING) {
                    summary.hab = Some(s);
                }
            }
            _ => {}
        }
        i += 1 + extra_words(id);
    }
    summary
}

/// What the ROM does with a card at one reset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RomStart {
    /// It starts this copy's SPL.
    Boot {
        /// The copy.
        slot: Slot,
        /// Its byte offset on the medium.
        copy_offset: u64,
        /// How its SPL was judged; `None` for a signature that fails, which an open part's ROM
        /// starts anyway (`hab` is then FAILURE).
        check: Option<SplCheck>,
        /// Where the SPL goes and starts.
        layout: SplLayout,
        /// The HAB status byte the ROM logs (event 0xA0).
        hab: u8,
    },
    /// The primary SPL failed on a cold start: the ROM sets PERSIST_SECONDARY_BOOT and does a
    /// warm reset (psb.rst, imx8m-facts.md §3.3); after it, [`choose`] with `persist` set.
    WarmResetToSecondary {
        /// Why the primary was not started.
        primary: Failure,
    },
    /// No SPL can be started: the ROM falls back to serial download (USB).
    SerialDownload {
        /// Why the primary was not started (`None`: not tried, PERSIST_SECONDARY_BOOT set).
        primary: Option<Failure>,
        /// The SIT's verdict when it was read.
        sit: SitStatus,
        /// Why the secondary was not started (`None`: not reached).
        secondary: Option<Failure>,
    },
}

/// The ROM's choice on the AN12900 layout at one reset (imx8m-facts.md §3.1-§3.3):
/// PERSIST_SECONDARY_BOOT clear: the primary SPL if it passes, else set the bit and warm reset;
/// set: the SIT, then the secondary SPL through it, else serial download. An SPL passes as
/// [`examine_spl`] judges it (IVT, boot data, HAB on a closed part); on an open part a signature
/// that fails is still started with a failing HAB event (*inference* from the NXP KB article
/// on the 8MQ's ROM redundant boot, §3.3: an open part boots the primary even if
/// authentication fails).
/// The SPL is read into the start of `buf`.
pub fn choose<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    ctx: &Context<'_>,
    buf: &mut [u8],
    persist: bool,
) -> RomStart
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let layout = &ctx.board.media;
    let mut timings = Timings::default();
    if !persist {
        let offset = layout.primary_offset();
        return match judge(hw, &mut timings, ctx, buf, offset) {
            Ok((check, l, hab)) => RomStart::Boot {
                slot: Slot::Primary,
                copy_offset: offset,
                check,
                layout: l,
                hab,
            },
            Err(primary) => RomStart::WarmResetToSecondary { primary },
        };
    }
    let mut sector: Sector = [0; SECTOR_SIZE as usize];
    let (sit, first) = match examine::read(hw, &mut timings, layout.sit_offset(), &mut sector) {
        Err(_) => (SitStatus::Unreadable, 0),
        Ok(()) => {
            let device = hw.disk.block_count().saturating_mul(SECTOR_SIZE);
            let report = judge_sit(&sector, layout, device).0;
            (report.status, report.first_sector)
        }
    };
    let offset = match (sit, layout.secondary_offset(first)) {
        (SitStatus::Valid, Some(o)) => o,
        _ => {
            return RomStart::SerialDownload {
                primary: None,
                sit,
                secondary: None,
            };
        }
    };
    match judge(hw, &mut timings, ctx, buf, offset) {
        Ok((check, l, hab)) => RomStart::Boot {
            slot: Slot::Secondary,
            copy_offset: offset,
            check,
            layout: l,
            hab,
        },
        Err(f) => RomStart::SerialDownload {
            primary: None,
            sit,
            secondary: Some(f),
        },
    }
}

/// One SPL as the ROM judges it: `(check, layout, HAB status byte)`; `check` is `None` for a
/// failing signature an open part's ROM starts anyway.
fn judge<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    ctx: &Context<'_>,
    buf: &mut [u8],
    offset: u64,
) -> Result<(Option<SplCheck>, SplLayout, u8), Failure>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    match examine_spl(hw, timings, ctx, buf, offset) {
        Ok((check, layout)) => Ok((Some(check), layout, status::SUCCESS)),
        Err(f) if ctx.security == examine::Security::Open && matches!(f.fault, Fault::Auth(_)) => {
            // The layout was valid (authentication ran): read it again from the first sector.
            let sector: &Sector = buf.first_chunk().ok_or(f.clone())?;
            let layout = examine::spl_layout(sector, ctx.board.media.fit_offset)?;
            Ok((None, layout, status::FAILURE))
        }
        Err(f) => Err(f),
    }
}

/// The copy the ROM starts from a cold reset, following [`choose`] through its warm reset;
/// `None` = serial download.
pub fn predict_start<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    ctx: &Context<'_>,
    buf: &mut [u8],
) -> Option<Slot>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let mut persist = false;
    loop {
        match choose(hw, ctx, buf, persist) {
            RomStart::Boot { slot, .. } => return Some(slot),
            RomStart::WarmResetToSecondary { .. } if !persist => persist = true,
            _ => return None,
        }
    }
}

/// The ROM event log of a start: version, boot mode, security configuration, boot device,
/// boot-image event, HAB result, jump; 0-terminated. What the simulation's ROM model writes
/// (the event order is *inferred*: §3.6 lists the IDs, not a sequence).
pub fn log_of_start(closed: bool, slot: Slot, hab: u8, entry: u32) -> [u32; 12] {
    let ev = |id: u8, low: u32| (u32::from(id) << 24) | (low & 0x00FF_FFFF);
    [
        ev(event::LOG_VERSION, 1),
        ev(event::BOOT_MODE_INTERNAL, 0),
        ev(
            if closed {
                event::SEC_CLOSED
            } else {
                event::SEC_OPEN
            },
            0,
        ),
        ev(event::DEVICE_SD_EMMC, 0),
        ev(
            match slot {
                Slot::Primary => event::BOOT_PRIMARY,
                Slot::Secondary => event::BOOT_SECONDARY,
            },
            0,
        ),
        ev(event::AUTH_RESULT, u32::from(hab)),
        0,
        0,
        ev(event::JUMP, 0),
        entry,
        0,
        0,
    ]
}

/// The `BT_STAGE` answer of the ROM API for a start from `slot` (imx8m-facts.md §3.5).
pub const fn boot_stage(slot: Slot) -> u32 {
    match slot {
        Slot::Primary => crate::cell::RomInfo::STAGE_PRIMARY,
        Slot::Secondary => crate::cell::RomInfo::STAGE_SECONDARY,
    }
}

/// The board's media layout and OCRAM bound an SPL must respect to be placed by the ROM:
/// `[self_addr, self_addr + len)` inside OCRAM and clear of `reserved` (the ROM's own data;
/// *inference*: the RM's OCRAM map is not in our sources).
pub fn placement_ok(board: &Board, layout: &SplLayout, reserved: boards::Region) -> bool {
    board
        .memory
        .ocram
        .contains_range(layout.self_addr, layout.len)
        && !reserved.overlaps(&boards::Region::new(layout.self_addr, layout.len))
        && layout.entry >= layout.self_addr
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log as the 8M Mini ROM leaves it after a secondary boot (event sequence of
    /// imx8m-facts.md §3.6; read events with their offset parameter).
    const SECONDARY_BOOT: [u32; 16] = [
        0x0100_0002,
        0x1200_0000,
        0x2300_0000,
        0x6100_0000,
        0x8000_0000,
        0x0000_1234,
        0x8100_0000,
        0x0000_2345,
        0x5100_0000,
        0x9000_0000,
        0x0020_8400,
        0xA000_00F0,
        0x0000_0000,
        0x0000_4567,
        0xC000_0000,
        0x0091_0000,
    ];

    #[test]
    fn a_recorded_secondary_boot_log() {
        let s = parse_log(&SECONDARY_BOOT);
        assert_eq!(s.log, RomLog::SecondaryBoot);
        assert_eq!(s.hab, Some(0xF0));
    }

    #[test]
    fn parameter_words_are_not_events() {
        // A read event whose offset parameter looks like event 0x51 is not a secondary boot.
        let log = [
            0x5000_0000,
            0x9000_0000,
            0x5100_0000,
            0xA000_0033,
            0x5100_0000,
            1,
            0,
        ];
        let s = parse_log(&log);
        assert_eq!(s.log, RomLog::PrimaryBoot);
        assert_eq!(s.hab, Some(0x33));
    }

    #[test]
    fn the_log_ends_at_id_0_or_128_words() {
        assert_eq!(parse_log(&[0, 0x5100_0000]).log, RomLog::NoBootEvent);
        let mut long = [0x1200_0000u32; 200];
        long[150] = 0x5100_0000;
        assert_eq!(parse_log(&long).log, RomLog::NoBootEvent);
        assert_eq!(parse_log(&[]).log, RomLog::NoBootEvent);
        // A truncated parameter list does not read past the slice.
        assert_eq!(parse_log(&[0xA000_00F0]).hab, Some(0xF0));
    }

    #[test]
    fn unknown_hab_bytes_are_ignored() {
        assert_eq!(parse_log(&[0xA000_0012, 0, 0]).hab, None);
    }

    #[test]
    fn the_model_log_reads_back() {
        for (slot, log) in [
            (Slot::Primary, RomLog::PrimaryBoot),
            (Slot::Secondary, RomLog::SecondaryBoot),
        ] {
            let words = log_of_start(true, slot, 0x33, 0x91_0000);
            let s = parse_log(&words);
            assert_eq!((s.log, s.hab), (log, Some(0x33)));
        }
    }

    #[test]
    fn an_spl_is_placed_only_in_ocram_clear_of_the_roms_data() {
        let board = &boards::qemu_imx8mp::BOARD;
        let reserved = boards::Region::new(0x0090_0000, 0x3000);
        let at = |self_addr, len, entry| SplLayout {
            len,
            csf: None,
            self_addr,
            entry,
        };
        assert!(placement_ok(
            board,
            &at(0x0090_FFC0, 0x2_0000, 0x0091_0000),
            reserved
        ));
        // Over the ROM's data, past OCRAM's end, in DRAM, entry before the image.
        assert!(!placement_ok(
            board,
            &at(0x0090_2FC0, 0x1000, 0x0090_3000),
            reserved
        ));
        assert!(!placement_ok(
            board,
            &at(0x0098_FFC0, 0x1000, 0x0099_0000),
            reserved
        ));
        assert!(!placement_ok(
            board,
            &at(0x4000_0000, 0x1000, 0x4000_0040),
            reserved
        ));
        assert!(!placement_ok(
            board,
            &at(0x0091_0000, 0x1000, 0x0090_F000),
            reserved
        ));
    }

    #[test]
    fn log_pointers() {
        assert!(log_pointer_valid(0x0090_2A00));
        assert!(!log_pointer_valid(0));
        assert!(!log_pointer_valid(0x0090_2A02));
        assert!(!log_pointer_valid(0x00B0_0000));
    }
}
