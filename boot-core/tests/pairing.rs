//! The pairing rule (design.md §5.1) over in-memory disks: the FIT of the copy whose SPL the
//! ROM started first, the other copy only when that one fails, and what the record says; and
//! the ROM's own choice of SPL (`boot_core::rom::choose`).

mod common;

use boot_core::boot::Hardware;
use boot_core::cell::{CopyReport, RomInfo, RomLog, SitStatus, decode};
use boot_core::examine::{Context, Security};
use boot_core::policy::{Reason, Slot};
use boot_core::rollback::RollbackFuses;
use boot_core::rom::{self, RomStart};
use common::*;
use imx_hab::hab::software::SoftwareHab;
use imx_hab::image::SignedFit;
use imx_hab::sit::build_sector;

const DISK: usize = 8 << 20;

fn secondary_offset() -> u64 {
    BOARD
        .media
        .secondary_offset(BOARD.media.standard_first_sector)
        .unwrap()
}

fn disk(primary: &[u8], secondary: &[u8]) -> MemDisk {
    let mut d = MemDisk::new(DISK);
    d.put(
        BOARD.media.sit_offset(),
        &build_sector(BOARD.media.standard_first_sector),
    );
    d.put(BOARD.media.primary_offset(), primary);
    d.put(secondary_offset(), secondary);
    d
}

fn v(version: u8) -> Vec<u8> {
    flash_bin(&signed(&standard_fit(version), LOAD, pki()))
}

/// A flash.bin whose FIT payload data has one byte flipped.
fn bad_fit(version: u8) -> Vec<u8> {
    let mut f = v(version);
    let at = BOARD.media.fit_offset as usize;
    let data = {
        let s = SignedFit::parse(&f[at..]).unwrap();
        s.fit.image_by_name("payload").unwrap().data.offset as usize
    };
    f[at + data] ^= 0xFF;
    f
}

/// A flash.bin whose SPL IVT tag is damaged (the ROM does not start it).
fn bad_spl(version: u8) -> Vec<u8> {
    let mut f = v(version);
    f[0] ^= 0xFF;
    f
}

fn from_secondary() -> RomInfo {
    RomInfo {
        log: RomLog::SecondaryBoot,
        hab: Some(0xF0),
        ..RomInfo::UNKNOWN
    }
}

fn from_primary() -> RomInfo {
    RomInfo {
        log: RomLog::PrimaryBoot,
        hab: Some(0xF0),
        ..RomInfo::UNKNOWN
    }
}

#[test]
fn started_from_the_secondary_its_fit_boots_and_the_primary_is_not_read() {
    let mut d = disk(&v(1), &v(2));
    let b = boot_rom(&mut d, from_secondary());
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(b.record.reason, Some(Reason::RomSecondary));
    assert_eq!(b.record.primary, CopyReport::NotExamined);
    assert!(matches!(b.record.secondary, CopyReport::Authentic { .. }));
    assert_eq!(b.record.sit.status, SitStatus::Valid);
    let primary = BOARD.media.primary_offset()..secondary_offset();
    assert!(
        d.reads.iter().all(|(at, _)| !primary.contains(at)),
        "{:?}",
        d.reads
    );
    assert_eq!(
        b.record.booted,
        boot_core::examine::flash_bin_identity(&v(2), BOARD.media.fit_offset)
    );
    // The record reads back with the ROM's information and the pairing reason.
    let cell = decode(&b.record.encode()).unwrap();
    let r = cell.record.unwrap();
    assert_eq!(r.rom.started(), Some(Slot::Secondary));
    assert_eq!(r.rom.hab, Some(0xF0));
}

#[test]
fn started_from_the_secondary_with_a_bad_fit_falls_back_to_the_primary_fit() {
    let mut d = disk(&v(1), &bad_fit(2));
    let b = boot_rom(&mut d, from_secondary());
    assert_eq!(b.decision.slot, Some(Slot::Primary));
    assert_eq!(b.record.reason, Some(Reason::RomSecondaryFailed));
    assert!(matches!(b.record.primary, CopyReport::Authentic { .. }));
    assert!(matches!(b.record.secondary, CopyReport::Rejected { .. }));
    assert!(decode(&b.record.encode()).unwrap().record.is_ok());
}

#[test]
fn started_from_the_primary_with_a_bad_fit_boots_the_secondary_fit_recorded_as_such() {
    let mut d = disk(&bad_fit(1), &v(2));
    let b = boot_rom(&mut d, from_primary());
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(b.record.reason, Some(Reason::PrimaryFailed));
    assert_eq!(b.record.rom.started(), Some(Slot::Primary));
    assert!(matches!(
        b.record.primary,
        CopyReport::Rejected {
            part: Some(boot_core::examine::Part::Fit),
            ..
        }
    ));
}

#[test]
fn started_from_the_secondary_with_nothing_authentic_boots_nothing() {
    let mut d = disk(&bad_fit(1), &bad_fit(2));
    let b = boot_rom(&mut d, from_secondary());
    assert_eq!(b.decision.slot, None);
    assert_eq!(b.record.reason, Some(Reason::BothFailed));
    assert!(decode(&b.record.encode()).unwrap().record.is_ok());
}

/// Runs `f` with the board's hardware over `disk` (open part, test fuses).
fn with_hw<T>(
    disk: &mut MemDisk,
    security: Security,
    f: impl FnOnce(
        &mut Hardware<'_, MemDisk, SoftwareHab, StepClock, CountingWatchdog>,
        &Context<'_>,
        &mut [u8],
    ) -> T,
) -> T {
    let mut hab = SoftwareHab { fuses: fuses() };
    let clock = StepClock::default();
    let mut wd = CountingWatchdog::default();
    let mut console = String::new();
    let mut hw = Hardware {
        disk,
        hab: &mut hab,
        clock: &clock,
        watchdog: &mut wd,
        console: &mut console,
    };
    let ctx = Context {
        board: BOARD,
        security,
        rollback: RollbackFuses::BLANK,
        slot_bytes: BOARD.media.slot_size(BOARD.media.standard_first_sector),
        shim: SHIM,
    };
    let mut buf = vec![0u8; BOARD.media.fit_offset as usize];
    f(&mut hw, &ctx, &mut buf)
}

#[test]
fn the_rom_starts_the_primary_spl_when_it_passes() {
    let mut d = disk(&bad_fit(1), &v(2));
    let start = with_hw(&mut d, Security::Open, |hw, ctx, buf| {
        rom::choose(hw, ctx, buf, false)
    });
    let RomStart::Boot {
        slot, layout, hab, ..
    } = start
    else {
        panic!("{start:?}")
    };
    // The ROM judges the SPL only: a bad FIT does not stop it.
    assert_eq!((slot, hab), (Slot::Primary, 0xF0));
    assert_eq!((layout.self_addr, layout.entry), (0x0090_FFC0, 0x0091_0000));
}

#[test]
fn a_failed_primary_spl_takes_a_warm_reset_to_the_secondary() {
    let mut d = disk(&bad_spl(1), &v(2));
    let (cold, warm, predicted) = with_hw(&mut d, Security::Open, |hw, ctx, buf| {
        (
            rom::choose(hw, ctx, buf, false),
            rom::choose(hw, ctx, buf, true),
            rom::predict_start(hw, ctx, buf),
        )
    });
    assert!(
        matches!(cold, RomStart::WarmResetToSecondary { .. }),
        "{cold:?}"
    );
    assert!(
        matches!(
            warm,
            RomStart::Boot {
                slot: Slot::Secondary,
                ..
            }
        ),
        "{warm:?}"
    );
    assert_eq!(predicted, Some(Slot::Secondary));
}

#[test]
fn two_failed_spls_are_serial_download() {
    let mut d = disk(&bad_spl(1), &bad_spl(2));
    let (warm, predicted) = with_hw(&mut d, Security::Open, |hw, ctx, buf| {
        (
            rom::choose(hw, ctx, buf, true),
            rom::predict_start(hw, ctx, buf),
        )
    });
    assert!(
        matches!(
            warm,
            RomStart::SerialDownload {
                sit: SitStatus::Valid,
                secondary: Some(_),
                ..
            }
        ),
        "{warm:?}"
    );
    assert_eq!(predicted, None);
    // Without a SIT, PERSIST_SECONDARY_BOOT leads nowhere either.
    let mut d = disk(&bad_spl(1), &v(2));
    d.put(BOARD.media.sit_offset(), &[0u8; 512]);
    let warm = with_hw(&mut d, Security::Open, |hw, ctx, buf| {
        rom::choose(hw, ctx, buf, true)
    });
    assert!(
        matches!(
            warm,
            RomStart::SerialDownload {
                sit: SitStatus::BadTag,
                secondary: None,
                ..
            }
        ),
        "{warm:?}"
    );
}

#[test]
fn a_closed_part_does_not_start_an_unsigned_spl() {
    let mut d = disk(&v(1), &v(2));
    let predicted = with_hw(&mut d, Security::Closed, |hw, ctx, buf| {
        rom::predict_start(hw, ctx, buf)
    });
    assert_eq!(predicted, None);
}

/// A flash.bin with a signed SPL (test PKI) whose code has one byte flipped.
fn forged_spl(version: u8) -> Vec<u8> {
    let mut spl = test_images::signed_spl(
        0x0090_FFC0,
        &filler(0x4000, 7),
        pki(),
        &imx_hab::sign::SignOptions::default(),
    );
    spl[0x1000] ^= 0xFF;
    test_images::flash_bin(
        &spl,
        BOARD.media.fit_offset,
        &signed(&standard_fit(version), LOAD, pki()),
    )
}

/// An open part's ROM starts an SPL whose signature fails, logging HAB FAILURE (*inference*,
/// design.md §5.1); a closed part's does not; the shim refuses that copy either way.
#[test]
fn an_open_part_starts_a_forged_spl_with_a_failing_hab_event_a_closed_one_does_not() {
    let mut d = disk(&forged_spl(1), &v(2));
    let (open, closed) = (
        with_hw(&mut d, Security::Open, |hw, ctx, buf| {
            rom::choose(hw, ctx, buf, false)
        }),
        with_hw(&mut d, Security::Closed, |hw, ctx, buf| {
            rom::choose(hw, ctx, buf, false)
        }),
    );
    assert!(
        matches!(
            open,
            RomStart::Boot {
                slot: Slot::Primary,
                check: None,
                hab: 0x33,
                ..
            }
        ),
        "{open:?}"
    );
    assert!(
        matches!(closed, RomStart::WarmResetToSecondary { .. }),
        "{closed:?}"
    );
    let b = boot_rom(&mut d, from_primary());
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert!(matches!(
        b.record.primary,
        CopyReport::Rejected {
            part: Some(boot_core::examine::Part::Spl),
            ..
        }
    ));
}
