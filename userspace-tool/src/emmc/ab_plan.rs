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

use boards::Board;
use boot_core::policy::{CopyVerdict, Slot};

use super::ab::AbState;
use crate::plan::{
    Action, BootedImage, NewImage, Plan, PlanKind, Refusal, Region, Running, Step, booted_image,
    check_device, padded, write_copy,
};

fn switch(plan: &mut Plan, ab: &AbState, region: Region, why: &str) {
    let part = match region {
        Region::Primary => ab.active,
        _ => ab.active.other(),
    };
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
                write_copy(
                    &mut plan.steps,
                    Region::Secondary,
                    state.secondary.offset,
                    &state.secondary.bytes,
                    data,
                    bs,
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
            );
            write_copy(
                &mut plan.steps,
                Region::Primary,
                state.primary.offset,
                &state.primary.bytes,
                data,
                bs,
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
    } else {
        write_copy(
            &mut plan.steps,
            to_region,
            to.offset,
            &to.bytes,
            source.into(),
            bs,
            "a copy of the running image",
        );
    }
    Ok(plan)
}
