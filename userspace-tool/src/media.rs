//! The boot medium as the ROM and the shim see it (design.md §4-§5): the Secondary Image Table,
//! the primary and the secondary flash.bin, and the next boot's decision.
//!
//! Nothing here judges a copy itself: a copy (on the medium, or an image file) is judged by
//! `boot_core::examine::examine_copy`, the shim's own code, with the software HAB4 verifier
//! standing in for the board's HAB backend and the fuses' security state; the SIT by
//! `boot_core::boot::judge_sit`; the decision by `boot_core::boot::run`, the shim's boot flow,
//! run over a snapshot of the bytes [`MediaState::read`] read once.
//!
//! Slots are [`slot_bytes`] long (2 MiB on the AN12900 layout): the largest flash.bin, and the
//! primary and copy length the SIT is validated with, as the shim validates it.

use std::io;

use boards::{Board, MediaLayout, SECTOR_SIZE};
use boot_core::boot::timing::Timings;
use boot_core::boot::{self, Hardware, Memory, Outcome};
use boot_core::cell::SitReport;
use boot_core::examine::{
    Context, Examined, ExaminedFit, Failure, Fault, Part, Rules, Security, SplCheck, Warnings,
    examine_copy, examine_fit,
};
use boot_core::platform::{BlockRead, Clock, MediaError, WatchdogService};
use boot_core::policy::{CopyVerdict, Decision, Reason, SitVerdict, Slot};
use boot_core::rollback::RollbackFuses;
use imx_hab::ParseError;
use imx_hab::hab::Fuses;
use imx_hab::hab::software::SoftwareHab;
use imx_hab::ivt::IVT_SIZE;
use imx_hab::sit::SecondaryArea;
use sha2::{Digest, Sha256};

use crate::blockdev::{BlockDevice, read_vec};
use crate::partitions::{Conflict, PartitionMap, conflicts, read_partition_map};

/// Bytes of one slot: the largest flash.bin, `standard_first_sector × 512` (2 MiB on the
/// AN12900 layout; design.md §4).
pub const fn slot_bytes(layout: &MediaLayout) -> u64 {
    layout.slot_size(layout.standard_first_sector)
}

/// Byte offset of the secondary slot when the SIT is the standard one.
pub fn standard_secondary_offset(layout: &MediaLayout) -> u64 {
    layout
        .secondary_offset(layout.standard_first_sector)
        .expect("the standard first sector is small")
}

/// The part of an SD card or eMMC the images are written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    /// The user area (`/dev/mmcblkN`), or an image file of it.
    UserArea,
    /// An eMMC hardware boot partition (`/dev/mmcblkNboot0`, `boot1`).
    BootPartition,
}

/// The media layout of `board` on `medium`, or `None` when where the ROM reads a boot
/// partition is not known for the board's layout.
///
/// imx8m-facts.md §1 ("flash.bin in eMMC boot0/boot1"): the i.MX 8M Mini ROM reads flash.bin
/// at 33 KiB (sector 0x42) in a boot partition, as in the user area (U-Boot
/// `doc/board/gateworks/imx8mm_venice.rst`), so the AN12900 layout, which both boards use
/// (design.md §3), applies unchanged: SIT at 0x8200, primary at 0x8400, FIT at 0x60000. On the
/// 8M Plus / Nano silicon layout flash.bin starts at 0 in a boot partition (FIT at sector
/// 0x2C0, `imx8mp_venice.rst`); no board uses that layout yet, so it is not encoded.
pub fn layout_for(board: &Board, medium: Medium) -> Option<MediaLayout> {
    match medium {
        Medium::UserArea => Some(board.media),
        Medium::BootPartition => (board.media == boards::AN12900_LAYOUT).then_some(board.media),
    }
}

/// `board` with the media layout of `medium` (see [`layout_for`]).
pub fn board_for(board: &Board, medium: Medium) -> Option<Board> {
    let media = layout_for(board, medium)?;
    Some(Board { media, ..*board })
}

/// What an accepted copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyInfo {
    /// Load address of the FIT (from its IVT; the window's start for an unsigned FIT).
    pub load_address: u64,
    /// Bytes of the FIT blob the shim reads (FIT, pad, IVT, CSF area).
    pub fit_len: u64,
    /// Bytes of the flash.bin that matter: up to the end of the FIT's CSF.
    pub extent: u64,
    /// How the SPL was judged.
    pub spl: SplCheck,
    /// What was accepted without a signature (open part).
    pub warnings: Warnings,
    /// Bytes of the SPL the ROM loads, from the copy's start.
    pub spl_len: u64,
    /// The image's identity, as the shim records it for the copy it boots.
    pub identity: [u8; 32],
    /// Its security epoch (the FIT's `rollback-index`; 0 when absent).
    pub epoch: u32,
}

impl CopyInfo {
    fn of(e: &Examined) -> Self {
        CopyInfo {
            load_address: e.fit.load_address,
            fit_len: e.fit.blob_len,
            extent: e.image_len,
            spl: e.spl,
            warnings: e.warnings,
            spl_len: e.spl_len,
            identity: e.identity,
            epoch: e.fit.epoch,
        }
    }
}

/// The examination context for `board` with `fuses`: the host knows no shim memory.
fn context<'a>(board: &'a Board, fuses: &Fuses) -> Context<'a> {
    Context {
        board,
        security: Security::of(fuses),
        rollback: RollbackFuses(fuses.rollback),
        slot_bytes: slot_bytes(&board.media),
        shim: &[],
    }
}

/// Runs `f` with the shim's hardware over `disk`: the software verifier with `fuses`, no clock,
/// no watchdog, a FIT window of the board's size.
pub(crate) fn with_shim<D: ?Sized, R>(
    disk: &mut D,
    board: &Board,
    fuses: &Fuses,
    f: impl FnOnce(&mut Hardware<'_, D, SoftwareHab, NoClock, NoWatchdog>, Memory<'_>) -> R,
) -> R {
    let mut hab = SoftwareHab { fuses: *fuses };
    let mut log = String::new();
    // Zeroed pages are mapped lazily: the 16 MiB window costs what the copies touch.
    let mut window = vec![0u8; board.memory.fit_window.size as usize];
    let mut hw = Hardware {
        disk,
        hab: &mut hab,
        clock: &NoClock,
        watchdog: &mut NoWatchdog,
        console: &mut log,
    };
    let memory = Memory {
        window: &mut window,
        window_base: board.memory.fit_window.start,
        shim: &[],
    };
    f(&mut hw, memory)
}

/// Judges a flash.bin held in memory as the ROM and the shim judge a copy
/// (`boot_core::examine::examine_copy`). `bytes` is the slot or the file; what follows the
/// image in the slot is read as zeros.
pub fn judge_flash_bin(bytes: &[u8], board: &Board, fuses: &Fuses) -> Result<CopyInfo, Failure> {
    let slot = slot_bytes(&board.media);
    if bytes.len() as u64 > slot {
        return Err(Failure {
            part: Part::Fit,
            fault: Fault::TooLarge {
                needed: bytes.len() as u64,
                available: slot,
            },
        });
    }
    let info = examine_at(&mut Snapshot::padded(bytes, slot), board, fuses, 0)
        // A missing signature stays the answer on a closed part; other failures of a short file are
        // reported where the file ends.
        .map_err(|f| match f.fault {
            Fault::NotSigned => f,
            _ => truncation(bytes, board).unwrap_or(f),
        })?;
    // Every byte that makes the image must come from the file: a truncated file would
    // otherwise borrow whatever the slot holds after it.
    for (part, end) in [(Part::Spl, info.spl_len), (Part::Fit, info.extent)] {
        if end > bytes.len() as u64 {
            return Err(Failure {
                part,
                fault: Fault::TooLarge {
                    needed: end,
                    available: bytes.len() as u64,
                },
            });
        }
    }
    Ok(info)
}

/// When `bytes` ends before what its own headers say the ROM or the shim reads (the SPL's boot
/// data size, the FIT header, the FIT's IVT), that is the failure to report: the judgement of a
/// file saw zeros there.
fn truncation(bytes: &[u8], board: &Board) -> Option<Failure> {
    let len = bytes.len() as u64;
    let short = |part, needed: u64| {
        (len < needed).then_some(Failure {
            part,
            fault: Fault::TooLarge {
                needed,
                available: len,
            },
        })
    };
    // Only a file that starts as a boot image can be a cut one.
    if !imx_hab::ivt::Ivt::has_header(bytes) {
        return None;
    }
    let Some(sector) = bytes.first_chunk::<{ SECTOR_SIZE as usize }>() else {
        return short(Part::Spl, SECTOR_SIZE);
    };
    let fit_offset = board.media.fit_offset;
    if let Ok(spl) = boot_core::examine::spl_layout(sector, fit_offset)
        && let Some(f) = short(Part::Spl, spl.len)
    {
        return Some(f);
    }
    if let Some(f) = short(Part::Fit, fit_offset + SECTOR_SIZE) {
        return Some(f);
    }
    let total = u64::from(imx_hab::fit::totalsize(&bytes[fit_offset as usize..]).ok()?);
    let ivt_end = fit_offset + imx_hab::image::ivt_offset_for(total) + IVT_SIZE as u64;
    short(Part::Fit, ivt_end)
}

/// Judges a signed FIT given on its own, as the shim judges a copy's FIT
/// (`boot_core::examine::examine_fit`).
pub fn judge_fit(bytes: &[u8], board: &Board, fuses: &Fuses) -> Result<ExaminedFit, Failure> {
    let fit_offset = board.media.fit_offset as usize;
    let mut copy = vec![0u8; fit_offset];
    copy.extend_from_slice(bytes);
    let mut disk = Snapshot::padded(&copy, slot_bytes(&board.media));
    let ctx = context(board, fuses);
    with_shim(&mut disk, board, fuses, |hw, mem| {
        examine_fit(
            hw,
            &mut Timings::default(),
            &ctx,
            mem.window,
            mem.window_base,
            0,
        )
    })
}

/// One copy as read from the device.
#[derive(Debug, Clone)]
pub struct CopyState {
    /// Which copy.
    pub slot: Slot,
    /// Device offset of the flash.bin.
    pub offset: u64,
    /// The slot's bytes: [`slot_bytes`] of them, fewer where the device ends first.
    pub bytes: Vec<u8>,
    /// The judgement (`examine_copy`).
    pub judgement: Result<CopyInfo, Failure>,
}

impl CopyState {
    /// Reads the copy at `offset` and judges it on its own.
    pub fn read<D: BlockDevice + ?Sized>(
        dev: &D,
        board: &Board,
        fuses: &Fuses,
        slot: Slot,
        offset: u64,
    ) -> io::Result<Self> {
        let bytes = read_slot(dev, board, offset)?;
        let mut disk = Snapshot::new(dev.size(), vec![(offset, &bytes[..])]);
        let judgement = examine_at(&mut disk, board, fuses, offset);
        Ok(CopyState {
            slot,
            offset,
            bytes,
            judgement,
        })
    }

    /// The verdict the shim's policy takes.
    pub fn verdict(&self) -> CopyVerdict {
        match self.judgement {
            Ok(_) => CopyVerdict::Authentic,
            Err(_) => CopyVerdict::NotAuthentic,
        }
    }

    /// The bytes that make up an accepted copy (`..extent`), or `None` when not accepted.
    pub fn image(&self) -> Option<&[u8]> {
        let info = self.judgement.as_ref().ok()?;
        self.bytes.get(..info.extent as usize)
    }

    /// SHA-256 of [`CopyState::image`].
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.image().map(|b| Sha256::digest(b).into())
    }
}

/// The slot's bytes at `offset`: [`slot_bytes`], fewer where the device ends first, none past it.
fn read_slot<D: BlockDevice + ?Sized>(dev: &D, board: &Board, offset: u64) -> io::Result<Vec<u8>> {
    let size = dev.size();
    if offset >= size {
        return Ok(Vec::new());
    }
    let len = slot_bytes(&board.media).min(size - offset) as usize;
    read_vec(dev, offset, len)
}

/// `examine_copy` at `offset` of `disk`.
fn examine_at(
    disk: &mut Snapshot<'_>,
    board: &Board,
    fuses: &Fuses,
    offset: u64,
) -> Result<CopyInfo, Failure> {
    let ctx = context(board, fuses);
    with_shim(disk, board, fuses, |hw, mem| {
        examine_copy(
            hw,
            &mut Timings::default(),
            &ctx,
            mem.window,
            mem.window_base,
            offset,
        )
        .map(|e| CopyInfo::of(&e))
    })
}

/// The Secondary Image Table as read from the device.
#[derive(Debug, Clone)]
pub struct SitState {
    /// The 512-byte sector.
    pub sector: Vec<u8>,
    /// The shim's classification (`boot_core::boot::judge_sit`).
    pub report: SitReport,
    /// Where it puts the secondary, or why it is not valid.
    pub judgement: Result<SecondaryArea, ParseError>,
}

impl SitState {
    /// Reads and validates the SIT as the shim does.
    pub fn read<D: BlockDevice + ?Sized>(dev: &D, layout: &MediaLayout) -> io::Result<Self> {
        // A device that ends before the table has none: judged as an absent (all-zero) table,
        // so that a too-small device is a refusal of the plan, not an I/O error.
        let sector = if layout.sit_offset() + SECTOR_SIZE <= dev.size() {
            read_vec(dev, layout.sit_offset(), SECTOR_SIZE as usize)?
        } else {
            vec![0; SECTOR_SIZE as usize]
        };
        let (report, judgement) = boot::judge_sit(&sector, layout, dev.size());
        Ok(SitState {
            sector,
            report,
            judgement,
        })
    }

    /// The verdict the shim's policy takes.
    pub fn verdict(&self) -> SitVerdict {
        match self.judgement {
            Ok(_) => SitVerdict::Valid,
            Err(_) => SitVerdict::Invalid,
        }
    }
}

/// Everything on the medium the update rule and `status` need, read once.
#[derive(Debug, Clone)]
pub struct MediaState {
    /// Device size in bytes.
    pub device_size: u64,
    /// Logical block size of the device.
    pub block_size: u32,
    /// The SIT.
    pub sit: SitState,
    /// The primary copy.
    pub primary: CopyState,
    /// The secondary copy: where the SIT puts it when valid, else at the standard place
    /// (where an update would write it).
    pub secondary: CopyState,
    /// The SPL the ROM starts at the next (cold) boot; `None`: serial download.
    pub rom_start: Option<Slot>,
    /// The shim's boot flow run over the bytes read after that start (pairing, design.md
    /// §5.1): the next boot's decision and record.
    pub outcome: Outcome,
    /// The device's partition tables (DOS and both GPT copies): what the boot area must never
    /// touch.
    pub partitions: PartitionMap,
}

impl MediaState {
    /// Reads the SIT and both slots once, runs the shim's boot flow over those bytes, and
    /// judges the copy the flow did not need (the secondary after an authentic primary) with
    /// the same `examine_copy`.
    pub fn read<D: BlockDevice + ?Sized>(
        dev: &D,
        board: &Board,
        fuses: &Fuses,
    ) -> io::Result<Self> {
        let layout = &board.media;
        let partitions = read_partition_map(dev)?;
        let sit = SitState::read(dev, layout)?;
        let primary_offset = layout.primary_offset();
        let secondary_offset = match &sit.judgement {
            Ok(area) => area.offset,
            Err(_) => standard_secondary_offset(layout),
        };
        let primary_bytes = read_slot(dev, board, primary_offset)?;
        let secondary_bytes = read_slot(dev, board, secondary_offset)?;
        let mut disk = Snapshot::new(
            dev.size(),
            vec![
                (layout.sit_offset(), &sit.sector[..]),
                (primary_offset, &primary_bytes[..]),
                (secondary_offset, &secondary_bytes[..]),
            ],
        );
        let rules = Rules::of(fuses);
        let (rom_start, outcome) = with_shim(&mut disk, board, fuses, |hw, mem| {
            boot::predict(board, rules, hw, mem)
        });
        let examined = |slot| {
            outcome
                .bootable
                .as_ref()
                .filter(|b| b.slot == slot)
                .map(|b| CopyInfo::of(&b.examined))
        };
        let primary = match (examined(Slot::Primary), &outcome.primary_failure) {
            (Some(info), _) => Ok(info),
            (None, Some(f)) => Err(f.clone()),
            (None, None) => examine_at(&mut disk, board, fuses, primary_offset),
        };
        let secondary = match (examined(Slot::Secondary), &outcome.secondary_failure) {
            (Some(info), _) => Ok(info),
            (None, Some(f)) => Err(f.clone()),
            (None, None) => examine_at(&mut disk, board, fuses, secondary_offset),
        };
        Ok(MediaState {
            device_size: dev.size(),
            block_size: dev.logical_block_size(),
            sit,
            primary: CopyState {
                slot: Slot::Primary,
                offset: primary_offset,
                bytes: primary_bytes,
                judgement: primary,
            },
            secondary: CopyState {
                slot: Slot::Secondary,
                offset: secondary_offset,
                bytes: secondary_bytes,
                judgement: secondary,
            },
            rom_start,
            outcome,
            partitions,
        })
    }

    /// What the boot area of this medium touches that is not its own: for the SIT sector, the
    /// primary slot and the secondary slot (where the SIT puts it, or the standard place), every
    /// partition, partition table or device end it overlaps (`partitions::conflicts`).
    pub fn boot_area_conflicts(&self, board: &Board) -> Vec<(&'static str, Conflict)> {
        let slot = slot_bytes(&board.media);
        let areas = [
            ("the SIT", board.media.sit_offset(), SECTOR_SIZE),
            ("the primary slot", self.primary.offset, slot),
            ("the secondary slot", self.secondary.offset, slot),
        ];
        areas
            .into_iter()
            .flat_map(|(what, at, len)| {
                conflicts(
                    &self.partitions,
                    at..at.saturating_add(len),
                    self.device_size,
                )
                .into_iter()
                .map(move |c| (what, c))
            })
            .collect()
    }

    /// Whether the secondary is reached through a valid SIT and is authentic: a fallback.
    pub fn fallback_ok(&self) -> bool {
        self.sit.verdict() == SitVerdict::Valid
            && self.secondary.verdict() == CopyVerdict::Authentic
    }

    /// The shim's decision on this state (its boot flow over the bytes read).
    pub fn decision(&self) -> Decision {
        self.outcome.decision
    }
}

/// What the shim will decide on the next boot from this device: [`MediaState::read`]'s run of
/// the shim's boot flow. A device that cannot be read at all predicts nothing bootable.
pub fn predict<D: BlockDevice + ?Sized>(dev: &D, board: &Board, fuses: &Fuses) -> Decision {
    MediaState::read(dev, board, fuses).map_or(
        Decision {
            slot: None,
            reason: Reason::BothFailed,
        },
        |s| s.decision(),
    )
}

/// Bytes read once from a device (or an image), served to the shim's code as its medium.
/// A read outside what was captured fails as the controller's data error would.
struct Snapshot<'a> {
    size: u64,
    pieces: Vec<(u64, &'a [u8])>,
    /// One piece at 0, zeros after it.
    padded: bool,
}

impl<'a> Snapshot<'a> {
    fn new(size: u64, pieces: Vec<(u64, &'a [u8])>) -> Self {
        Snapshot {
            size,
            pieces,
            padded: false,
        }
    }

    /// `bytes` at offset 0 of a medium `len` bytes long (at least `bytes.len()`), zeros after.
    fn padded(bytes: &'a [u8], len: u64) -> Self {
        let size = len.max(bytes.len() as u64).next_multiple_of(SECTOR_SIZE);
        Snapshot {
            size,
            pieces: vec![(0, bytes)],
            padded: true,
        }
    }
}

impl BlockRead for Snapshot<'_> {
    fn block_count(&self) -> u64 {
        self.size / SECTOR_SIZE
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        let out_of_range = MediaError::OutOfRange {
            lba,
            len: buf.len(),
        };
        let start = lba.checked_mul(SECTOR_SIZE).ok_or(out_of_range)?;
        let end = start.checked_add(buf.len() as u64).ok_or(out_of_range)?;
        if buf.is_empty() || !(buf.len() as u64).is_multiple_of(SECTOR_SIZE) || end > self.size {
            return Err(out_of_range);
        }
        if !self.padded {
            let (at, bytes) = self
                .pieces
                .iter()
                .find(|(at, b)| *at <= start && end <= at + b.len() as u64)
                .ok_or(MediaError::Command {
                    command: 18,
                    int_status: 0,
                })?;
            let from = (start - at) as usize;
            buf.copy_from_slice(&bytes[from..from + buf.len()]);
            return Ok(());
        }
        // One piece at 0 followed by zero padding.
        let bytes = self.pieces[0].1;
        for (i, b) in buf.iter_mut().enumerate() {
            let at = start as usize + i;
            *b = bytes.get(at).copied().unwrap_or(0);
        }
        Ok(())
    }
}

/// The flow's watchdog: nothing to service on the host.
pub(crate) struct NoWatchdog;

impl WatchdogService for NoWatchdog {
    fn service(&mut self) {}
}

/// The flow's clock: the figures are of no interest here.
pub(crate) struct NoClock;

impl Clock for NoClock {
    fn ticks(&self) -> u64 {
        0
    }

    fn frequency_hz(&self) -> u64 {
        1
    }
}
