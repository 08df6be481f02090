//! Layout (b) plans over the virtual device of [`super::ab`] (copy 1 = the active partition's,
//! copy 2 = the other's).
//!
//! **Rule**, safe when the ROM never falls back to the other boot partition (the worse of the
//! two readings, docs/imx8m-facts.md): the enabled partition's copy is never written; the other
//! partition's copy is written header last (`plan::write_copy`) and read back, and only then
//! does a [`Action::Switch`] step make it the enabled one (one CMD6, read back).
//!
//! - `update`, running copy 1: write the new image into copy 2, switch to it. The old image stays
//!   in the now inactive partition: the fallback. Copy 2 already the image: switch only.
//! - `update`, running copy 2 (the shim fell back: copy 1 failed): switch to copy 2's partition
//!   first (the running, authentic copy becomes the one the ROM reads), then write copy 1's
//!   partition, now inactive, and switch to it.
//! - `sync`, running copy 1: make copy 2 equal to copy 1, no switch.
//! - `sync`, running copy 2: switch to it, then make copy 1 equal to it.
//!
//! **Sector 0x41** (the SIT sector) of a partition the plan writes is cleared (zeros, flushed,
//! read back) before that partition's copy is written, and of a partition the plan switches to
//! without writing when it holds a valid table: a partition `ubootctl` writes or enables never
//! carries a SIT the ROM could follow (docs/design.md §5.5, "A stale SIT"). The partition is
//! inactive then, so the clear changes nothing the ROM reads. A device whose ROM would start
//! the enabled partition's own table's secondary ([`AbState::stale_start`]) is refused.

use std::sync::Arc;

use boards::{Board, SECTOR_SIZE};
use boot_core::cell::SitStatus;
use boot_core::policy::{CopyVerdict, Slot};

use super::BootPartition;
use super::ab::AbState;
use crate::plan::{
    Action, BootedImage, NewImage, Part, Plan, PlanKind, Refusal, Region, Running, Step,
    booted_image, check_device, padded, write_copy,
};

/// The partition holding `region`'s copy in the view of `ab`.
fn partition_of(ab: &AbState, region: Region) -> BootPartition {
    match region {
        Region::Primary => ab.active,
        _ => ab.active.other(),
    }
}

/// Clears sector 0x41 of `part` (zeros, flush, read back), once per plan.
fn clear_sit(plan: &mut Plan, ab: &AbState, part: BootPartition, board: &Board) {
    let base = if part == ab.active { 0 } else { ab.part_size };
    let offset = base + board.media.sit_offset();
    let done = plan.steps.iter().any(
        |s| matches!(s.action, Action::Write { region: Region::Sit, offset: o, .. } if o == offset),
    );
    if done {
        return;
    }
    let zeros: Arc<[u8]> = vec![0u8; SECTOR_SIZE as usize].into();
    let own = ab.own_sit[part.index()];
    let why = if own.status == SitStatus::Valid {
        format!(
            "{part} holds a valid SIT of its own (firstSectorNumber {:#x}, a stale layout (a) \
             table): cleared so that the ROM can never start a secondary from it",
            own.first_sector
        )
    } else {
        format!("layout (b): {part} carries no SIT; its sector 0x41 is cleared before its copy")
    };
    plan.steps.push(Step {
        action: Action::Write {
            region: Region::Sit,
            part: Part::Table,
            offset,
            data: zeros.clone(),
        },
        reason: why,
    });
    plan.steps.push(Step {
        action: Action::Flush,
        reason: "make the cleared sector durable before reading it back".into(),
    });
    plan.steps.push(Step {
        action: Action::Verify {
            region: Region::Sit,
            offset,
            expected: zeros,
        },
        reason: format!("check {part}'s sector 0x41 on the medium"),
    });
}

/// Writes `data` as `region`'s copy (`plan::write_copy`), after clearing its partition's
/// sector 0x41.
#[allow(clippy::too_many_arguments)]
fn write_ab_copy(
    plan: &mut Plan,
    ab: &AbState,
    board: &Board,
    region: Region,
    current: &crate::media::CopyState,
    data: Arc<[u8]>,
    what: &str,
) {
    clear_sit(plan, ab, partition_of(ab, region), board);
    write_copy(
        &mut plan.steps,
        region,
        current.offset,
        &current.bytes,
        data,
        ab.media.block_size,
        what,
    );
}

/// Refuses a device whose ROM would start the enabled partition's stale table's secondary
/// ([`AbState::stale_start`]), saying how to recover (`status` gives the same as its action).
pub fn check_stale(ab: &AbState) -> Result<(), Refusal> {
    if !ab.stale_start() {
        return Ok(());
    }
    let first = ab.own_sit[ab.active.index()].first_sector;
    let other = ab.active.other();
    let fix = if ab.media.secondary.verdict() == CopyVerdict::Authentic {
        format!(
            "{other} holds an authentic copy: enable it (e.g. `mmc bootpart enable {} {} \
             /dev/mmcblkN`), reboot into it, then run again; the run rewrites {} and clears \
             its table",
            other.number(),
            u8::from(ab.config.boot_ack()),
            ab.active
        )
    } else {
        format!(
            "{other} holds no authentic copy either: recover the device by other means \
             (serial download)"
        )
    };
    Err(Refusal::StaleSit(format!(
        "{} (enabled, EXT_CSD[179] = {}) holds a valid SIT of its own (firstSectorNumber \
         {first:#x}, a stale layout (a) table) and its copy at 0x8400 does not start, so the ROM \
         starts that table's secondary: neither copy of the A/B layout, and clearing the table \
         in the enabled partition would leave the ROM nothing to start; {fix}",
        ab.active, ab.config
    )))
}

fn switch(plan: &mut Plan, ab: &AbState, region: Region, why: &str, board: &Board) {
    let part = partition_of(ab, region);
    if ab.own_sit[part.index()].status == SitStatus::Valid {
        clear_sit(plan, ab, part, board);
    }
    plan.steps.push(Step {
        action: Action::Switch { part, region },
        reason: format!(
            "{why}: one CMD6 changes BOOT_PARTITION_ENABLE only (BOOT_ACK and the access bits \
             kept), then EXT_CSD[179] is read back and must name {part}"
        ),
    });
}

fn new_plan(kind: PlanKind, running: Slot) -> Plan {
    Plan {
        kind,
        running,
        steps: Vec::new(),
        notes: Vec::new(),
    }
}

/// The copy that is running, in the view of `state`. The boot record's slot is relative to the
/// partition enabled *at boot*, which a switch since changes; the image identity is not: with
/// one, the running copy is the one holding it (copy 1 when both do). Without one (a version-1
/// record, `--running`), the slot is taken relative to the partition enabled now.
pub fn running_copy(state: &crate::media::MediaState, running: Running) -> Result<Slot, Refusal> {
    match booted_image(state, running.booted.as_ref()) {
        BootedImage::Primary { .. } => Ok(Slot::Primary),
        BootedImage::SecondaryOnly => Ok(Slot::Secondary),
        BootedImage::Lost => Err(Refusal::BootedImageLost),
        BootedImage::Unknown => running.slot.ok_or(Refusal::UnknownRunningSlot),
    }
}

/// Plans installing `image` on a layout (b) medium.
pub fn plan_ab_update(
    ab: &AbState,
    image: &NewImage,
    running: impl Into<Running>,
    board: &Board,
) -> Result<Plan, Refusal> {
    let state = &ab.media;
    check_stale(ab)?;
    let slot = running_copy(state, running.into())?;
    let mut plan = new_plan(PlanKind::Update, slot);
    let bs = state.block_size;
    let data = padded(image.bytes(), bs);
    let primary_ok = state.primary.verdict() == CopyVerdict::Authentic;
    let secondary_ok = state.secondary.verdict() == CopyVerdict::Authentic;
    let holds =
        |c: &crate::media::CopyState| c.bytes.get(..image.bytes().len()) == Some(image.bytes());
    match slot {
        Slot::Primary if primary_ok || !secondary_ok => {
            if holds(&state.primary) && primary_ok {
                plan.notes.push(format!(
                    "already installed: {} (enabled) holds the image",
                    ab.active
                ));
                return Ok(plan);
            }
            if !primary_ok {
                plan.notes.push(format!(
                    "nothing on the medium would boot now ({} and {} both fail): writing {} and \
                     enabling it; keep power until it is done",
                    ab.active,
                    ab.active.other(),
                    ab.active.other()
                ));
            }
            check_device(state, board)?;
            if holds(&state.secondary) && secondary_ok {
                plan.notes.push(format!(
                    "{} already holds the image (an update stopped before its switch): not rewritten",
                    ab.active.other()
                ));
            } else {
                write_ab_copy(
                    &mut plan,
                    ab,
                    board,
                    Region::Secondary,
                    &state.secondary,
                    data,
                    "the new image",
                );
            }
            switch(
                &mut plan,
                ab,
                Region::Secondary,
                &format!(
                    "make {} (the new image, verified) the boot partition; {} keeps the running \
                     image as the fallback",
                    ab.active.other(),
                    ab.active
                ),
                board,
            );
        }
        // Running copy 1 that is no longer authentic, with an authentic copy 2: as copy 2.
        Slot::Primary | Slot::Secondary => {
            if !secondary_ok {
                return Err(Refusal::SecondaryNotAuthentic);
            }
            check_device(state, board)?;
            if holds(&state.primary) {
                plan.notes.push(format!(
                    "already installed: {} (enabled) holds the image; {}, which is running, is \
                     the fallback",
                    ab.active,
                    ab.active.other()
                ));
                return Ok(plan);
            }
            plan.notes.push(format!(
                "{} (enabled) failed and {} is the authentic fallback: it becomes the boot \
                 partition first, then {} is written and enabled",
                ab.active,
                ab.active.other(),
                ab.active
            ));
            switch(
                &mut plan,
                ab,
                Region::Secondary,
                &format!(
                    "make {} (the authentic fallback) the boot partition before anything is written",
                    ab.active.other()
                ),
                board,
            );
            write_ab_copy(
                &mut plan,
                ab,
                board,
                Region::Primary,
                &state.primary,
                data,
                "the new image",
            );
            switch(
                &mut plan,
                ab,
                Region::Primary,
                &format!(
                    "make {} (the new image, verified) the boot partition",
                    ab.active
                ),
                board,
            );
        }
    }
    Ok(plan)
}

/// Plans making the inactive partition's copy equal to the running one.
pub fn plan_ab_sync(
    ab: &AbState,
    running: impl Into<Running>,
    board: &Board,
) -> Result<Plan, Refusal> {
    let state = &ab.media;
    check_stale(ab)?;
    let running: Running = running.into();
    let slot = running_copy(state, running)?;
    // Booted from copy 1, and the image is now copy 2 only: a switch was made since the boot
    // (an update not yet rebooted into); copying back would undo it.
    if running.slot == Some(Slot::Primary) && slot == Slot::Secondary {
        return Err(Refusal::PrimaryNotBooted);
    }
    check_device(state, board)?;
    let mut plan = new_plan(PlanKind::Sync, slot);
    let bs = state.block_size;
    let (from, to, to_region) = match slot {
        Slot::Primary => {
            if state.primary.verdict() != CopyVerdict::Authentic {
                return Err(Refusal::PrimaryNotAuthentic);
            }
            (&state.primary, &state.secondary, Region::Secondary)
        }
        Slot::Secondary => {
            if state.secondary.verdict() != CopyVerdict::Authentic {
                return Err(Refusal::SecondaryNotAuthentic);
            }
            plan.notes.push(format!(
                "running from {}: {} (enabled) failed; {} becomes the boot partition, then {} \
                 is made its copy",
                ab.active.other(),
                ab.active,
                ab.active.other(),
                ab.active
            ));
            switch(
                &mut plan,
                ab,
                Region::Secondary,
                &format!(
                    "make {} (running, authentic) the boot partition",
                    ab.active.other()
                ),
                board,
            );
            (&state.secondary, &state.primary, Region::Primary)
        }
    };
    let extent = from.judgement.as_ref().map(|i| i.extent).unwrap_or(0);
    let len = (extent.div_ceil(u64::from(bs)) * u64::from(bs)) as usize;
    let source = &from.bytes[..len.min(from.bytes.len())];
    if to.bytes.get(..source.len()) == Some(source) && to.verdict() == CopyVerdict::Authentic {
        plan.notes
            .push("the other boot partition already holds the same copy: not rewritten".into());
        let target = partition_of(ab, to_region);
        if ab.own_sit[target.index()].status == SitStatus::Valid {
            clear_sit(&mut plan, ab, target, board);
        }
    } else {
        write_ab_copy(
            &mut plan,
            ab,
            board,
            to_region,
            to,
            source.into(),
            "a copy of the running image",
        );
    }
    Ok(plan)
}
