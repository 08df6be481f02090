//! The boot medium as the shim sees it (design.md §4-§5): the Secondary Image Table, the primary
//! and the secondary flash.bin, each judged as the shim judges it, and [`predict`], the shim's
//! decision for the next boot.
//!
//! A copy is **authentic** when the bytes of its slot parse as a flash.bin (SPL IVT at offset 0,
//! which the ROM needs to start the copy at all, FIT at the layout's `fit_offset`), the FIT is a
//! signed FIT whose blob (FIT, padding, IVT, CSF) lies inside the slot, the load address its IVT
//! was signed for places the whole blob inside the board's FIT window, and the software HAB4
//! verifier accepts the blob at that address against the fuses. The SPL's own signature is the
//! ROM's business, not the shim's, and is not part of a copy's verdict (the image given to an
//! update is checked for it: [`crate::plan::NewImage`]).
//!
//! Slots are [`slot_bytes`] long (2 MiB on the AN12900 layout): the largest flash.bin, and the
//! primary and copy length the SIT is validated with, as the shim validates it.

use std::io;

use boards::{Board, MediaLayout, Region};
use imx_hab::ParseError;
use imx_hab::hab::Fuses;
use imx_hab::hab::software::SoftwareHab;
use imx_hab::hab::software::{VerifyError, verify};
use imx_hab::image::{FitPart, FlashBin};
use imx_hab::sit::{SecondaryArea, Sit};
use sha2::{Digest, Sha256};
use spl_shim::boot::handoff::{self, HandoffError};
use spl_shim::boot::{self, CSF_AREA, Hardware, Memory};
use spl_shim::cell::RomInfo;
use spl_shim::platform::{BlockRead, Clock, MediaError, WatchdogService};
use spl_shim::policy::{CopyVerdict, Decision, SitVerdict, Slot, decide};

use crate::blockdev::{BlockDevice, SECTOR, read_vec};

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

/// Why a copy is not authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyFault {
    /// The slot starts at or beyond the end of the device.
    OutsideDevice {
        /// Offset of the slot.
        offset: u64,
        /// Size of the device.
        device_size: u64,
    },
    /// The bytes are not a flash.bin, or its FIT is malformed (offset relative to the copy).
    Structure(ParseError),
    /// The FIT has no IVT and CSF after it.
    NotSigned,
    /// The signed FIT blob does not lie wholly inside the slot.
    BeyondSlot {
        /// End of the blob, relative to the copy.
        end: u64,
        /// Slot size.
        slot: u64,
    },
    /// The blob, placed where its IVT says, does not lie inside the board's FIT window.
    LoadAddress {
        /// Load address derived from the IVT.
        load: u64,
        /// Bytes of the signed blob.
        len: u64,
        /// The board's FIT window.
        window: Region,
    },
    /// The software HAB4 verifier rejected it.
    Verify(VerifyError),
    /// Authentic, but the shim could not hand off to it (`spl_shim::boot::handoff::plan`).
    Unbootable(&'static str),
}

impl std::fmt::Display for CopyFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CopyFault::OutsideDevice {
                offset,
                device_size,
            } => write!(
                f,
                "slot at {offset:#x} lies beyond the end of the device ({device_size:#x} bytes)"
            ),
            CopyFault::Structure(e) => write!(f, "not a valid flash.bin: {e}"),
            CopyFault::NotSigned => f.write_str("the U-Boot FIT is not signed (no IVT/CSF)"),
            CopyFault::BeyondSlot { end, slot } => write!(
                f,
                "the signed FIT ends at {end:#x}, beyond the {slot:#x}-byte slot"
            ),
            CopyFault::LoadAddress { load, len, window } => write!(
                f,
                "signed for load address {load:#x} (+{len:#x}), outside the board's FIT window {:#x}..{:#x}",
                window.start,
                window.end()
            ),
            CopyFault::Verify(e) => write!(f, "not authentic ({}): {e}", e.check()),
            CopyFault::Unbootable(why) => {
                write!(f, "authentic, but the shim cannot hand off to it: {why}")
            }
        }
    }
}

/// A fixed description of why the shim cannot hand off (the error itself borrows the FIT).
fn handoff_reason(e: &HandoffError<'_>) -> &'static str {
    match e {
        HandoffError::Fit(_) => "its FIT does not parse within the signed bytes",
        HandoffError::NoEntry => "the default configuration has no entry point",
        HandoffError::TooManyImages => "the default configuration loads too many images",
        HandoffError::MissingImage(_) => "the default configuration names a missing image",
        HandoffError::Unsupported { .. } => {
            "an image is compressed or has no load address (the shim copies images as they are)"
        }
        HandoffError::OutsideLoadRanges { .. } => {
            "an image would be loaded outside the board's load ranges"
        }
        HandoffError::Overlap { .. } => "an image would overwrite the FIT or another image",
        HandoffError::EntryOutsideImage { .. } => "the entry point is outside its image",
    }
}

/// What an authentic copy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyInfo {
    /// Load address of the signed FIT (from its IVT).
    pub load_address: u64,
    /// Bytes of the signed FIT blob (FIT, pad, IVT, CSF and its records).
    pub fit_len: u64,
    /// Bytes of the flash.bin that matter: `fit_offset + fit_len`.
    pub extent: u64,
}

/// Judges a flash.bin held in memory as the shim judges a copy (see the module documentation).
/// `bytes` is the slot (or the file); anything after the signed FIT is ignored.
pub fn judge_flash_bin(bytes: &[u8], board: &Board, fuses: &Fuses) -> Result<CopyInfo, CopyFault> {
    let fb = FlashBin::parse(bytes, &board.media).map_err(CopyFault::Structure)?;
    let FitPart::Signed(fit) = fb.fit else {
        return Err(CopyFault::NotSigned);
    };
    let fit_len = fit.signed_len();
    let extent = fb.fit_offset + fit_len;
    if extent > bytes.len() as u64 {
        return Err(CopyFault::BeyondSlot {
            end: extent,
            slot: bytes.len() as u64,
        });
    }
    let load = fit.load_address();
    let window = board.memory.fit_window;
    if !window.contains_range(load, fit_len) {
        return Err(CopyFault::LoadAddress {
            load,
            len: fit_len,
            window,
        });
    }
    // The shim reads the FIT up to its IVT plus the whole CSF area (spl_shim::boot::CSF_AREA),
    // which must stay inside the slot.
    let shim_read_end = fb.fit_offset + fit.ivt_offset + CSF_AREA;
    let slot = slot_bytes(&board.media);
    if shim_read_end > slot {
        return Err(CopyFault::BeyondSlot {
            end: shim_read_end,
            slot,
        });
    }
    let blob = &bytes[fb.fit_offset as usize..extent as usize];
    verify(blob, load, fuses).map_err(CopyFault::Verify)?;
    // The shim's handoff checks (images of the default configuration inside the board's load
    // ranges, clear of the FIT and of each other, entry inside its image); the shim's own
    // memory is not known here, so that one check is the shim's alone.
    let fit_bytes = &blob[..fit.ivt_offset as usize];
    handoff::plan(
        fit_bytes,
        Region::new(load, fit.ivt_offset + CSF_AREA),
        &[],
        &board.memory,
    )
    .map_err(|e| CopyFault::Unbootable(handoff_reason(&e)))?;
    Ok(CopyInfo {
        load_address: load,
        fit_len,
        extent,
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
    /// The judgement.
    pub judgement: Result<CopyInfo, CopyFault>,
}

impl CopyState {
    /// Reads and judges the copy at `offset`.
    pub fn read<D: BlockDevice + ?Sized>(
        dev: &D,
        board: &Board,
        fuses: &Fuses,
        slot: Slot,
        offset: u64,
    ) -> io::Result<Self> {
        let size = dev.size();
        if offset >= size {
            return Ok(CopyState {
                slot,
                offset,
                bytes: Vec::new(),
                judgement: Err(CopyFault::OutsideDevice {
                    offset,
                    device_size: size,
                }),
            });
        }
        let len = slot_bytes(&board.media).min(size - offset) as usize;
        let bytes = read_vec(dev, offset, len)?;
        let judgement = judge_flash_bin(&bytes, board, fuses);
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

    /// The bytes that make up an authentic copy (`..extent`), or `None` when not authentic.
    pub fn image(&self) -> Option<&[u8]> {
        let info = self.judgement.as_ref().ok()?;
        Some(&self.bytes[..info.extent as usize])
    }

    /// SHA-256 of [`CopyState::image`].
    pub fn sha256(&self) -> Option<[u8; 32]> {
        self.image().map(|b| Sha256::digest(b).into())
    }
}

/// The Secondary Image Table as read from the device.
#[derive(Debug, Clone)]
pub struct SitState {
    /// The 512-byte sector.
    pub sector: Vec<u8>,
    /// Where it puts the secondary, or why it is not valid.
    pub judgement: Result<SecondaryArea, ParseError>,
}

impl SitState {
    /// Reads and validates the SIT as the shim does.
    pub fn read<D: BlockDevice + ?Sized>(dev: &D, layout: &MediaLayout) -> io::Result<Self> {
        let sector = read_vec(dev, layout.sit_offset(), SECTOR as usize)?;
        let judgement = judge_sit(&sector, layout, dev.size());
        Ok(SitState { sector, judgement })
    }

    /// The verdict the shim's policy takes.
    pub fn verdict(&self) -> SitVerdict {
        match self.judgement {
            Ok(_) => SitVerdict::Valid,
            Err(_) => SitVerdict::Invalid,
        }
    }
}

/// Validates a SIT sector for a device of `device_size` bytes, with the primary and the copy
/// [`slot_bytes`] long.
pub fn judge_sit(
    sector: &[u8],
    layout: &MediaLayout,
    device_size: u64,
) -> Result<SecondaryArea, ParseError> {
    let slot = slot_bytes(layout);
    Sit::parse(sector)?.validate(layout, device_size, slot, slot)
}

/// Everything on the medium the update rule and `status` need.
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
}

impl MediaState {
    /// Reads the SIT and both copies and judges them.
    pub fn read<D: BlockDevice + ?Sized>(
        dev: &D,
        board: &Board,
        fuses: &Fuses,
    ) -> io::Result<Self> {
        let layout = &board.media;
        let sit = SitState::read(dev, layout)?;
        let primary = CopyState::read(dev, board, fuses, Slot::Primary, layout.primary_offset())?;
        let secondary_offset = match &sit.judgement {
            Ok(area) => area.offset,
            Err(_) => standard_secondary_offset(layout),
        };
        let secondary = CopyState::read(dev, board, fuses, Slot::Secondary, secondary_offset)?;
        Ok(MediaState {
            device_size: dev.size(),
            block_size: dev.logical_block_size(),
            sit,
            primary,
            secondary,
        })
    }

    /// Whether the secondary is reached through a valid SIT and is authentic: a fallback.
    pub fn fallback_ok(&self) -> bool {
        self.sit.verdict() == SitVerdict::Valid
            && self.secondary.verdict() == CopyVerdict::Authentic
    }

    /// The shim's decision on this state (same as [`predict`] on the device it was read from).
    pub fn decision(&self) -> Decision {
        decide(
            self.primary.verdict(),
            || self.sit.verdict(),
            || self.secondary.verdict(),
        )
    }
}

/// What the shim will decide on the next boot from this device: the shim's own boot flow
/// ([`spl_shim::boot::run`]) run over the device with the software HAB4 verifier and a FIT
/// window in memory, so the prediction is the shim's code, not a model of it. A read that fails
/// counts as "not authentic" / "invalid", as it does for the shim.
pub fn predict<D: BlockDevice + ?Sized>(dev: &D, board: &Board, fuses: &Fuses) -> Decision {
    let mut disk = ShimDisk(dev);
    let mut hab = SoftwareHab { fuses: *fuses };
    let mut watchdog = NoWatchdog;
    let mut log = String::new();
    let mut window = vec![0u8; board.memory.fit_window.size as usize];
    let mut hw = Hardware {
        disk: &mut disk,
        hab: &mut hab,
        clock: &NoClock,
        watchdog: &mut watchdog,
        console: &mut log,
    };
    let memory = Memory {
        window: &mut window,
        window_base: board.memory.fit_window.start,
        // The shim's own memory is not known here; the flow's other handoff checks apply.
        shim: &[],
    };
    boot::run(board, &mut hw, memory, RomInfo::UNKNOWN).decision
}

/// Bytes per block of the shim's reads.
const BLOCK: u64 = spl_shim::platform::BLOCK_SIZE as u64;

/// A [`BlockDevice`] as the shim's [`BlockRead`].
struct ShimDisk<'a, D: ?Sized>(&'a D);

impl<D: BlockDevice + ?Sized> BlockRead for ShimDisk<'_, D> {
    fn block_count(&self) -> u64 {
        self.0.size() / BLOCK
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        let out_of_range = MediaError::OutOfRange {
            lba,
            len: buf.len(),
        };
        let end = lba
            .checked_add(buf.len() as u64 / BLOCK)
            .ok_or(out_of_range)?;
        if buf.is_empty() || !(buf.len() as u64).is_multiple_of(BLOCK) || end > self.block_count() {
            return Err(out_of_range);
        }
        // An I/O error reads as the controller's data error would on the board.
        self.0
            .read_at(lba * BLOCK, buf)
            .map_err(|_| MediaError::Command {
                command: 18,
                int_status: 0,
            })
    }
}

/// The flow's watchdog: nothing to service on the host.
struct NoWatchdog;

impl WatchdogService for NoWatchdog {
    fn service(&mut self) {}
}

/// The flow's clock: the figures are of no interest here.
struct NoClock;

impl Clock for NoClock {
    fn ticks(&self) -> u64 {
        0
    }

    fn frequency_hz(&self) -> u64 {
        1
    }
}
