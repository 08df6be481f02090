//! The AN12900 update rule as an explicit plan (design.md §7), computed from a [`MediaState`]
//! without touching the device.
//!
//! **Rule.** Running the primary: make the secondary a copy of the primary (only if it differs),
//! write the SIT if it is not valid (only once the secondary is complete), then write the new
//! image to the primary. Running the secondary: write the primary only; the secondary is what
//! the device falls back to and is never written. Already installed (the primary holds the new
//! image and the secondary is a fallback): nothing. A running primary that is no longer
//! authentic on the medium (an update interrupted since the last boot) is treated like a
//! running secondary when the secondary is a valid fallback, and refused otherwise.
//!
//! **How a copy is written** (header-last, with a two-step commit):
//!
//! 1. *invalidate*: the copy's first logical block as it is on the medium, with the 32-byte IVT
//!    zeroed, then a flush. The ROM and the shim refuse a flash.bin without an IVT.
//! 2. *body*: every block after the first.
//! 3. *first block but its IVT*: the new first block with the IVT still zero, then a flush.
//! 4. *commit*: the new first block whole, then a flush: only the IVT bytes change.
//! 5. *read back*: the whole copy, from the medium, compared by SHA-256.
//!
//! Every single block write therefore changes either only the IVT of the copy being written or
//! only bytes of a copy whose IVT is zero: a write torn anywhere leaves that copy either
//! invalid or complete (old or new), never a valid IVT in front of mixed bytes.
//!
//! **Invariant** (design.md §7, checked by the power-cut sweep in `tests/power_cut.rs`): after
//! every block write at least one of {primary, secondary through a valid SIT} is complete and
//! authentic, because a plan only ever writes the copy that is not the fallback, writes the SIT
//! only after the secondary it points to is complete and verified, and writes the primary only
//! once the secondary is a verified fallback.

use std::fmt;
use std::sync::Arc;

use boards::Board;
use imx_hab::hab::Fuses;

use boot_core::examine::Failure;
use boot_core::policy::{CopyVerdict, Slot};
use imx_hab::image::Image;
use imx_hab::ivt::IVT_SIZE;
use imx_hab::sit::build_sector;
use sha2::{Digest, Sha256};

use crate::media::{CopyInfo, MediaState, judge_flash_bin, slot_bytes};

/// The part of the medium a step touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Region {
    /// The primary flash.bin.
    Primary,
    /// The secondary flash.bin.
    Secondary,
    /// The Secondary Image Table sector.
    Sit,
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Region::Primary => "primary",
            Region::Secondary => "secondary",
            Region::Sit => "SIT",
        })
    }
}

/// Which part of a copy (or the table) a write is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The current first block with its IVT zeroed.
    Invalidate,
    /// Every block after the first.
    Body,
    /// The new first block with its IVT still zero.
    HeaderRest,
    /// The new first block whole: writes the IVT, which makes the copy valid.
    Commit,
    /// The SIT sector.
    Table,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Invalidate => "invalidate",
            Part::Body => "body",
            Part::HeaderRest => "first block without IVT",
            Part::Commit => "commit (IVT)",
            Part::Table => "table",
        })
    }
}

/// One thing to do to the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write `data` at `offset`.
    Write {
        /// Region written.
        region: Region,
        /// Which part of it.
        part: Part,
        /// Device byte offset.
        offset: u64,
        /// The bytes.
        data: Arc<[u8]>,
    },
    /// Make every write so far durable before any later write.
    Flush,
    /// Read `expected.len()` bytes back from the medium at `offset` and compare by SHA-256.
    Verify {
        /// Region read back.
        region: Region,
        /// Device byte offset.
        offset: u64,
        /// What must be there.
        expected: Arc<[u8]>,
    },
    /// Layout (b): make `part` the boot partition (one CMD6 on EXT_CSD[179], read back). Its
    /// copy is `region` of the plan's virtual device (README "eMMC layouts").
    Switch {
        /// The boot partition enabled.
        part: crate::emmc::BootPartition,
        /// The copy it holds, in the plan's view.
        region: Region,
    },
}

/// An action and why it is in the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What to do.
    pub action: Action,
    /// Why, in a sentence.
    pub reason: String,
}

impl Step {
    /// A short description of the action: `write secondary body 0x208600+0xade00`.
    pub fn summary(&self) -> String {
        match &self.action {
            Action::Write {
                region,
                part,
                offset,
                data,
            } => format!("write {region} {part} at {offset:#x}+{:#x}", data.len()),
            Action::Flush => "flush".into(),
            Action::Verify {
                region,
                offset,
                expected,
            } => format!("read back {region} at {offset:#x}+{:#x}", expected.len()),
            Action::Switch { part, region } => {
                format!("switch EXT_CSD[179] to {part} (the {region}'s partition)")
            }
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.summary(), self.reason)
    }
}

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// Install a new image.
    Update,
    /// Make the secondary a copy of the running primary.
    Sync,
}

/// What is running: the slot and, from a version-2 boot record, the image's identity
/// (`boot_core::examine::Examined::identity`). Without the identity (a version-1 record or
/// `--running`) the slot rule of AN12900 applies alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Running {
    /// The slot the system booted from.
    pub slot: Option<Slot>,
    /// The identity of the image that booted.
    pub booted: Option<[u8; 32]>,
}

impl From<Option<Slot>> for Running {
    fn from(slot: Option<Slot>) -> Self {
        Running { slot, booted: None }
    }
}

/// Where the image that booted is on the medium.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootedImage {
    /// Not known (no identity in the boot record).
    Unknown,
    /// In the primary (and maybe the secondary too).
    Primary {
        /// The secondary holds it too.
        also_secondary: bool,
    },
    /// In the secondary only.
    SecondaryOnly,
    /// In neither copy: it was overwritten since the boot.
    Lost,
}

/// Where `booted` is on the medium of `state`.
pub fn booted_image(state: &MediaState, booted: Option<&[u8; 32]>) -> BootedImage {
    let Some(id) = booted else {
        return BootedImage::Unknown;
    };
    let holds = |c: &crate::media::CopyState| c.judgement.as_ref().is_ok_and(|i| &i.identity == id);
    match (
        holds(&state.primary),
        holds(&state.secondary) && state.fallback_ok(),
    ) {
        (true, s) => BootedImage::Primary { also_secondary: s },
        (false, true) => BootedImage::SecondaryOnly,
        (false, false) => BootedImage::Lost,
    }
}

/// An ordered list of steps, with notes on what was decided not to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Update or sync.
    pub kind: PlanKind,
    /// The running slot the plan was made for.
    pub running: Slot,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Decisions that produced no step ("the secondary already equals the primary", ...).
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether the plan does nothing.
    pub fn is_noop(&self) -> bool {
        self.steps.is_empty()
    }

    /// The regions the plan writes, in order of first write.
    pub fn regions_written(&self) -> Vec<Region> {
        let mut out = Vec::new();
        for s in &self.steps {
            if let Action::Write { region, .. } = s.action
                && !out.contains(&region)
            {
                out.push(region);
            }
        }
        out
    }

    /// Bytes the plan writes.
    pub fn bytes_written(&self) -> u64 {
        self.steps
            .iter()
            .map(|s| match &s.action {
                Action::Write { data, .. } => data.len() as u64,
                _ => 0,
            })
            .sum()
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            PlanKind::Update => "update",
            PlanKind::Sync => "sync",
        };
        writeln!(
            f,
            "{kind} plan, running slot {} ({}):",
            self.running as u32,
            Region::from(self.running)
        )?;
        for n in &self.notes {
            writeln!(f, "  note: {n}")?;
        }
        if self.steps.is_empty() {
            return writeln!(f, "  nothing to write");
        }
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "  {:>2}. {s}", i + 1)?;
        }
        Ok(())
    }
}

impl From<Slot> for Region {
    fn from(s: Slot) -> Self {
        match s {
            Slot::Primary => Region::Primary,
            Slot::Secondary => Region::Secondary,
        }
    }
}

/// Why the tool will not do what was asked. The device is untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The running slot is not known (no boot record); the user must name it.
    UnknownRunningSlot,
    /// The image is a FIT, not a flash.bin: there is no SPL to write with it.
    NotAFlashBin {
        /// What the image is.
        kind: &'static str,
    },
    /// The image does not fit in a slot.
    ImageTooLarge {
        /// Its length.
        len: u64,
        /// The slot size.
        max: u64,
    },
    /// The image is not a copy the ROM and the shim would boot on this board (the one
    /// judgement, `boot_core::examine::examine_copy`).
    ImageRejected(Failure),
    /// The device cannot hold both copies.
    DeviceTooSmall {
        /// Its size.
        size: u64,
        /// Bytes needed: the end of the secondary slot.
        needed: u64,
    },
    /// Running the primary, but neither the primary on the medium nor a secondary through a
    /// valid SIT is authentic: there is nothing safe to keep as the fallback.
    NoAuthenticCopy,
    /// Running the secondary, but the secondary through the SIT is not authentic (or the SIT is
    /// not valid): writing the primary would leave nothing to fall back to.
    SecondaryNotAuthentic,
    /// `sync` while running the secondary: the primary is the copy that failed, it must not be
    /// copied; install an image with `update` instead.
    SyncFromSecondary,
    /// `sync` while the primary on the medium is not authentic.
    PrimaryNotAuthentic,
    /// `sync` while the primary holds an image that has not booted: copying it would replace
    /// the proven fallback with an untested image.
    PrimaryNotBooted,
    /// Running the primary, but the image that booted is in neither copy any more: every
    /// copy on the medium is untested.
    BootedImageLost,
    /// A write, or the secondary slot the SIT points to, would touch what is not the boot
    /// area's own: a partition, a partition table, or past the end of the device.
    NotOurs {
        /// What of the boot area (`the SIT`, `the secondary slot`, ...).
        what: &'static str,
        /// Every conflict, as a sentence naming the partition or table and the ranges.
        conflicts: Vec<String>,
    },
    /// The eMMC is not a layout (b) medium (no boot partition enabled, unequal partitions).
    NotAbMedium(String),
    /// Layout (b): the enabled boot partition holds a valid SIT of its own and its copy-1 SPL
    /// fails, so the ROM starts that table's secondary (`boot_core::emmc::EmmcStart::stale_sit`):
    /// a start the A/B view cannot pair. The message says how to recover.
    StaleSit(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::UnknownRunningSlot => f.write_str(
                "the running slot is unknown (no boot record); name it explicitly if you know it",
            ),
            Refusal::NotAFlashBin { kind } => write!(
                f,
                "the image is a {kind}, not a flash.bin: a boot copy needs the SPL with it"
            ),
            Refusal::ImageTooLarge { len, max } => write!(
                f,
                "the image is {len:#x} bytes, larger than a slot ({max:#x} bytes)"
            ),
            Refusal::ImageRejected(e) => write!(f, "the image is refused ({}): {e}", e.class()),
            Refusal::DeviceTooSmall { size, needed } => write!(
                f,
                "the device is {size:#x} bytes; both copies need {needed:#x}"
            ),
            Refusal::NoAuthenticCopy => f.write_str(
                "neither the primary nor a secondary through a valid SIT is authentic on the medium: \
                 nothing would be left to boot if the update were cut; restore a bootable copy first",
            ),
            Refusal::SecondaryNotAuthentic => f.write_str(
                "running from the secondary, but the secondary through the SIT is not authentic on \
                 the medium: writing the primary would leave nothing to fall back to",
            ),
            Refusal::SyncFromSecondary => f.write_str(
                "running from the secondary: the primary failed to boot and must not become the \
                 fallback; install a new image with `update` instead",
            ),
            Refusal::PrimaryNotAuthentic => f.write_str(
                "the primary on the medium is not authentic: there is nothing to copy",
            ),
            Refusal::PrimaryNotBooted => f.write_str(
                "the primary holds an image that has not booted yet (the running image is not \
                 the primary on the medium): copying it would replace the proven fallback; reboot \
                 into the new primary first, then run `ubootctl sync`",
            ),
            Refusal::NotOurs { what, conflicts } => write!(
                f,
                "{what} would touch what is not the boot area's own: {}; re-partition so that \
                 the first partition starts at or after the end of the secondary slot (the \
                 usual 8 MiB), or point the SIT elsewhere",
                conflicts.join("; ")
            ),
            Refusal::NotAbMedium(why) | Refusal::StaleSit(why) => f.write_str(why),
            Refusal::BootedImageLost => f.write_str(
                "the image that is running is in neither copy any more (both were written since \
                 the boot): reboot into the primary first, so that it is tested, then update",
            ),
        }
    }
}

impl std::error::Error for Refusal {}

/// An image checked for installation: a flash.bin that fits a slot, with an authentic signed
/// FIT for the board (and an authentic SPL if its SPL carries a CSF).
#[derive(Debug, Clone)]
pub struct NewImage {
    bytes: Arc<[u8]>,
    info: CopyInfo,
    sha256: [u8; 32],
}

impl NewImage {
    /// Checks `bytes` for installation on `board` with `fuses`.
    pub fn check(bytes: Vec<u8>, board: &Board, fuses: &Fuses) -> Result<Self, Refusal> {
        let max = slot_bytes(&board.media);
        if bytes.len() as u64 > max {
            return Err(Refusal::ImageTooLarge {
                len: bytes.len() as u64,
                max,
            });
        }
        // A FIT given alone is named as such; everything else is judged as a copy.
        if let Ok(other @ (Image::SignedFit(_) | Image::BareFit(_))) =
            Image::parse(&bytes, &board.media)
        {
            return Err(Refusal::NotAFlashBin {
                kind: other.kind_name(),
            });
        }
        let info = judge_flash_bin(&bytes, board, fuses).map_err(Refusal::ImageRejected)?;
        let sha256 = Sha256::digest(&bytes).into();
        Ok(NewImage {
            bytes: bytes.into(),
            info,
            sha256,
        })
    }

    /// The flash.bin.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Its signed FIT.
    pub fn info(&self) -> &CopyInfo {
        &self.info
    }

    /// SHA-256 of the whole file.
    pub fn sha256(&self) -> &[u8; 32] {
        &self.sha256
    }
}

/// Whether the primary on the medium holds `image` (its whole length).
pub fn is_installed(state: &MediaState, image: &NewImage) -> bool {
    state.primary.bytes.get(..image.bytes.len()) == Some(image.bytes())
}

/// Plans installing `image` (design.md §7). `running` is the slot the system booted from and,
/// when known, the identity of the image that booted: the copy holding the only instance of
/// that image is never overwritten.
pub fn plan_update(
    state: &MediaState,
    image: &NewImage,
    running: impl Into<Running>,
    board: &Board,
) -> Result<Plan, Refusal> {
    let plan = update_steps(state, image, running.into(), board)?;
    check_ours(state, board, &plan)?;
    Ok(plan)
}

fn update_steps(
    state: &MediaState,
    image: &NewImage,
    running: Running,
    board: &Board,
) -> Result<Plan, Refusal> {
    check_device(state, board)?;
    // (already a Running)
    let booted = booted_image(state, running.booted.as_ref());
    let running_id = running.booted;
    let running = running.slot.ok_or(Refusal::UnknownRunningSlot)?;
    let mut plan = Plan {
        kind: PlanKind::Update,
        running,
        steps: Vec::new(),
        notes: Vec::new(),
    };
    let installed = is_installed(state, image);
    let primary_ok = state.primary.verdict() == CopyVerdict::Authentic;
    match running {
        Slot::Primary if primary_ok && booted == BootedImage::SecondaryOnly => {
            if installed {
                plan.notes.push(
                    "already installed: the primary holds the image; the secondary holds the \
                     image that is running and stays the fallback"
                        .into(),
                );
                return Ok(plan);
            }
            plan.notes.push(
                "the image that is running is only in the secondary (the primary was written \
                 since the boot and has not booted): the secondary is kept as the fallback; \
                 writing the primary only"
                    .into(),
            );
        }
        Slot::Primary if primary_ok && booted == BootedImage::Lost => {
            // Only the running image itself may be written back: it restores the tested image.
            if running_id != Some(image.info().identity) {
                return Err(Refusal::BootedImageLost);
            }
            if !state.fallback_ok() {
                return Err(Refusal::NoAuthenticCopy);
            }
            plan.notes.push(
                "the image that is running was in neither copy: writing it back to the primary \
                 only (the secondary stays the fallback)"
                    .into(),
            );
        }
        Slot::Primary if primary_ok => {
            if installed && state.fallback_ok() {
                plan.notes.push(
                    "already installed: the primary holds the image and the secondary is an authentic fallback"
                        .into(),
                );
                return Ok(plan);
            }
            sync_steps(state, board, &mut plan);
            if installed {
                plan.notes
                    .push("the primary already holds the image: not rewritten".into());
                return Ok(plan);
            }
        }
        Slot::Primary => {
            plan.notes.push(if state.fallback_ok() {
                "the primary on the medium is not authentic (an interrupted update?): the \
                 authentic secondary is the fallback and is left alone; writing the primary only"
                    .into()
            } else {
                nothing_bootable_note()
            });
        }
        Slot::Secondary if !state.fallback_ok() && !primary_ok => {
            plan.notes.push(nothing_bootable_note());
        }
        Slot::Secondary => {
            if !state.fallback_ok() {
                return Err(Refusal::SecondaryNotAuthentic);
            }
            if installed {
                plan.notes.push(
                    "already installed: the primary holds the image; the secondary, which is \
                     running, is the fallback"
                        .into(),
                );
                return Ok(plan);
            }
            plan.notes.push(
                "running from the secondary: it is the fallback and is not written; writing the \
                 primary only"
                    .into(),
            );
        }
    }
    let data = padded(image.bytes(), state.block_size);
    write_copy(
        &mut plan.steps,
        Region::Primary,
        state.primary.offset,
        &state.primary.bytes,
        data,
        state.block_size,
        "the new image",
    );
    Ok(plan)
}

/// The note of an update onto a medium where nothing would boot: writing the primary cannot
/// make it worse, and is the way out.
fn nothing_bootable_note() -> String {
    "nothing on the medium would boot now (neither the primary nor a secondary through a valid \
     SIT is authentic): writing the primary only; keep power until it is done"
        .into()
}

/// Refuses a plan when the fallback the SIT points to, or any write, touches a partition, a
/// partition table or the device's end (`MediaState::boot_area_conflicts`).
fn check_ours(state: &MediaState, board: &Board, plan: &Plan) -> Result<(), Refusal> {
    let names = |cs: Vec<crate::partitions::Conflict>| cs.iter().map(|c| c.to_string()).collect();
    let writes_sit = plan.steps.iter().any(|s| {
        matches!(
            s.action,
            Action::Write {
                region: Region::Sit,
                ..
            }
        )
    });
    // The whole slot a valid SIT points to (or the one the plan's SIT will) is the fallback's:
    // nothing else may live there, even past the bytes written now.
    if state.sit.judgement.is_ok() || writes_sit {
        let slot = slot_bytes(&board.media);
        let at = state.secondary.offset;
        let cs = crate::partitions::conflicts(
            &state.partitions,
            at..at.saturating_add(slot),
            state.device_size,
        );
        if !cs.is_empty() {
            return Err(Refusal::NotOurs {
                what: "the secondary slot the SIT points to",
                conflicts: names(cs),
            });
        }
    }
    for step in &plan.steps {
        if let Action::Write {
            region,
            offset,
            data,
            ..
        } = &step.action
        {
            let cs = crate::partitions::conflicts(
                &state.partitions,
                *offset..offset.saturating_add(data.len() as u64),
                state.device_size,
            );
            if !cs.is_empty() {
                return Err(Refusal::NotOurs {
                    what: match region {
                        Region::Primary => "the write of the primary",
                        Region::Secondary => "the write of the secondary",
                        Region::Sit => "the write of the SIT",
                    },
                    conflicts: names(cs),
                });
            }
        }
    }
    Ok(())
}

/// Plans making the secondary a verified copy of the running primary and the SIT valid.
pub fn plan_sync(
    state: &MediaState,
    running: impl Into<Running>,
    board: &Board,
) -> Result<Plan, Refusal> {
    check_device(state, board)?;
    let running: Running = running.into();
    let booted = booted_image(state, running.booted.as_ref());
    let running = running.slot.ok_or(Refusal::UnknownRunningSlot)?;
    if running == Slot::Secondary {
        return Err(Refusal::SyncFromSecondary);
    }
    if state.primary.verdict() != CopyVerdict::Authentic {
        return Err(Refusal::PrimaryNotAuthentic);
    }
    if matches!(booted, BootedImage::SecondaryOnly | BootedImage::Lost) {
        return Err(Refusal::PrimaryNotBooted);
    }
    let mut plan = Plan {
        kind: PlanKind::Sync,
        running,
        steps: Vec::new(),
        notes: Vec::new(),
    };
    sync_steps(state, board, &mut plan);
    check_ours(state, board, &plan)?;
    Ok(plan)
}

/// The device must hold the secondary slot where the SIT puts it (or will put it).
pub(crate) fn check_device(state: &MediaState, board: &Board) -> Result<(), Refusal> {
    let needed = state.secondary.offset + slot_bytes(&board.media);
    if state.device_size < needed {
        return Err(Refusal::DeviceTooSmall {
            size: state.device_size,
            needed,
        });
    }
    Ok(())
}

/// Steps making the secondary equal the (authentic) primary, then the SIT valid.
fn sync_steps(state: &MediaState, board: &Board, plan: &mut Plan) {
    let bs = state.block_size;
    let extent = state
        .primary
        .judgement
        .as_ref()
        .map(|i| i.extent)
        .expect("only called with an authentic primary");
    let len = (extent.div_ceil(u64::from(bs)) * u64::from(bs)) as usize;
    let source = &state.primary.bytes[..len];
    if state.secondary.bytes.get(..len) == Some(source)
        && state.secondary.verdict() == CopyVerdict::Authentic
    {
        plan.notes.push(format!(
            "the secondary at {:#x} already equals the primary: not rewritten",
            state.secondary.offset
        ));
    } else {
        write_copy(
            &mut plan.steps,
            Region::Secondary,
            state.secondary.offset,
            &state.secondary.bytes,
            source.into(),
            bs,
            "a copy of the running primary",
        );
    }
    match &state.sit.judgement {
        Ok(area) => plan.notes.push(format!(
            "the SIT is valid (firstSectorNumber {:#x}): kept",
            area.first_sector
        )),
        Err(why) => {
            let layout = &board.media;
            plan.steps.push(Step {
                action: Action::Write {
                    region: Region::Sit,
                    part: Part::Table,
                    offset: layout.sit_offset(),
                    data: Arc::new(build_sector(layout.standard_first_sector)),
                },
                reason: format!(
                    "the SIT is not valid ({why}); write the standard table (firstSectorNumber \
                     {:#x}) now that the secondary it points to is complete",
                    layout.standard_first_sector
                ),
            });
            flush(
                &mut plan.steps,
                "make the table durable before reading it back",
            );
            plan.steps.push(Step {
                action: Action::Verify {
                    region: Region::Sit,
                    offset: layout.sit_offset(),
                    expected: Arc::new(build_sector(layout.standard_first_sector)),
                },
                reason: "check the table on the medium".into(),
            });
        }
    }
}

/// `bytes` padded with zeros to a whole number of `block_size` blocks.
pub(crate) fn padded(bytes: &[u8], block_size: u32) -> Arc<[u8]> {
    let bs = block_size as usize;
    let mut v = bytes.to_vec();
    v.resize(bytes.len().div_ceil(bs) * bs, 0);
    v.into()
}

pub(crate) fn flush(steps: &mut Vec<Step>, why: &str) {
    steps.push(Step {
        action: Action::Flush,
        reason: why.into(),
    });
}

/// Header-last write of `data` (whole blocks) to the copy at `offset` whose current bytes are
/// `current` (see the module documentation).
pub(crate) fn write_copy(
    steps: &mut Vec<Step>,
    region: Region,
    offset: u64,
    current: &[u8],
    data: Arc<[u8]>,
    block_size: u32,
    what: &str,
) {
    let bs = block_size as usize;
    let mut invalid = current
        .get(..bs)
        .map_or_else(|| vec![0; bs], <[u8]>::to_vec);
    invalid[..IVT_SIZE].fill(0);
    steps.push(Step {
        action: Action::Write {
            region,
            part: Part::Invalidate,
            offset,
            data: invalid.into(),
        },
        reason: format!(
            "invalidate the {region}: zero its IVT (nothing else in the block changes) so that \
             no partly written copy is ever taken for an image"
        ),
    });
    flush(
        steps,
        "the invalidation reaches the medium before any other byte of the copy",
    );
    if data.len() > bs {
        steps.push(Step {
            action: Action::Write {
                region,
                part: Part::Body,
                offset: offset + bs as u64,
                data: data[bs..].into(),
            },
            reason: format!("write {what} after its first block"),
        });
    }
    let mut first = data[..bs].to_vec();
    first[..IVT_SIZE].fill(0);
    steps.push(Step {
        action: Action::Write {
            region,
            part: Part::HeaderRest,
            offset,
            data: first.into(),
        },
        reason: format!("write the first block of {what}, its IVT still zero"),
    });
    flush(
        steps,
        "the whole copy but its IVT is durable before the commit",
    );
    steps.push(Step {
        action: Action::Write {
            region,
            part: Part::Commit,
            offset,
            data: data[..bs].into(),
        },
        reason: format!(
            "commit: write the IVT, the only bytes that still differ; the {region} becomes valid"
        ),
    });
    flush(steps, "the commit is durable before it is read back");
    steps.push(Step {
        action: Action::Verify {
            region,
            offset,
            expected: data,
        },
        reason: format!("read the {region} back from the medium and compare by SHA-256"),
    });
}
