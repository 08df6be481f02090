//! The shim's boot flow (design.md §5), generic over the hardware traits of
//! [`crate::platform`] and over the HAB backend, so host tests run it over in-memory disks and
//! the firmware over the uSDHC.
//!
//! Each copy is judged by [`examine_copy`] (its SPL as the ROM would, then its FIT: read once
//! into the window, authenticated there, the handoff planned from the authenticated bytes).
//! The copy whose SPL the ROM started is examined first (pairing, design.md §5.1; the primary
//! when the ROM said nothing); the other copy only when that one fails, the secondary always
//! through the SIT ([`judge_sit`]; [`crate::policy::decide`]). The outcome carries the boot record the firmware
//! writes to the cell before it hands off.

pub mod handoff;
pub mod timing;

use core::fmt::Write;

use boards::{Board, MediaLayout, Region, SECTOR_SIZE, Sector, SlotRule};
use imx_hab::ParseError;
use imx_hab::hab::codes::status;
use imx_hab::hab::{Authenticator, EventSummary};
use imx_hab::sit::{SecondaryArea, Sit};

use crate::cell::{BootRecord, CopyReport, RomInfo, ShimVersion, SitReport, SitStatus};
use crate::examine::{self, Context, Examined, Failure, Rules, examine_copy};
use crate::log::Text;
use crate::platform::{BlockRead, Clock, WatchdogService};
use crate::policy::{CopyVerdict, Decision, SitVerdict, Slot, decide};
use timing::Timings;

/// Bytes read after the IVT offset of a signed FIT: IVT and CSF area, as U-Boot's i.MX SPL reads
/// them (`ALIGN(totalsize, 0x1000) + CONFIG_CSF_SIZE` with CSF_SIZE 0x2000, `arch/arm/mach-imx/
/// spl.c` `board_spl_fit_size_align`; docs/imx8m-facts.md §5).
pub const CSF_AREA: u64 = 0x2000;

/// The hardware the flow runs on.
pub struct Hardware<'a, D: ?Sized, A, C, W> {
    /// The boot medium.
    pub disk: &'a mut D,
    /// The HAB backend (ROM API on silicon, software verifier in simulation).
    pub hab: &'a mut A,
    /// Time source for the figures.
    pub clock: &'a C,
    /// Serviced between long steps.
    pub watchdog: &'a mut W,
    /// Progress and diagnostics.
    pub console: &'a mut dyn Write,
}

/// Memory the flow works in.
pub struct Memory<'w> {
    /// The board's FIT window: the blob is read to `load - window_base` in it.
    pub window: &'w mut [u8],
    /// Physical address of `window[0]`.
    pub window_base: u64,
    /// Memory the running shim occupies (image, BSS, stack): no image may be copied over it.
    pub shim: &'w [Region],
}

/// A copy that is authentic and can be handed off to.
#[derive(Debug, Clone)]
pub struct Bootable {
    /// Which copy.
    pub slot: Slot,
    /// What [`examine_copy`] established: load address, blob position, the handoff plan.
    pub examined: Examined,
}

/// Everything the flow found.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The policy's decision.
    pub decision: Decision,
    /// The record for the cell (its slot word follows the decision).
    pub record: BootRecord,
    /// What to hand off to, when something is bootable.
    pub bootable: Option<Bootable>,
    /// Why the primary was rejected, when it was.
    pub primary_failure: Option<Failure>,
    /// Why the secondary was rejected, when it was examined and rejected.
    pub secondary_failure: Option<Failure>,
    /// Where the time went.
    pub timings: Timings,
}

/// The cell report of one examination.
pub fn copy_report(r: &Result<Examined, Failure>) -> CopyReport {
    match r {
        Ok(e) => CopyReport::Authentic {
            hab: EventSummary {
                status: status::SUCCESS,
                reason: 0,
                context: 0,
                engine: 0,
            },
            warnings: e.warnings,
        },
        Err(f) => CopyReport::Rejected {
            class: f.class(),
            hab: f.event(),
            part: Some(f.part),
        },
    }
}

/// Runs the boot flow: examines the copies in policy order ([`examine_copy`], the one
/// judgement) and returns the decision, the record for the cell and, when something is
/// bootable, the handoff plan over `mem.window`.
pub fn run<D, A, C, W>(
    board: &Board,
    rules: Rules,
    hw: &mut Hardware<'_, D, A, C, W>,
    mem: Memory<'_>,
    rom: RomInfo,
) -> Outcome
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let mut timings = Timings::default();
    let layout = &board.media;
    // Each copy is judged against its own slot (boards::SlotRule).
    let ctx = |slot_bytes| Context {
        board,
        security: rules.security,
        rollback: rules.rollback,
        slot_bytes,
        shim: mem.shim,
    };
    let window = mem.window;
    let device = hw.disk.block_count().saturating_mul(SECTOR_SIZE);

    hw.watchdog.service();
    let base = mem.window_base;
    // The pairing rule (design.md §5.1): the copy whose SPL the ROM started first, the other
    // copy only when that one fails; unknown = the primary (no ROM information).
    let started = rom.started().unwrap_or(Slot::Primary);
    let mut sit = SitReport {
        status: SitStatus::NotRead,
        first_sector: 0,
    };
    // Slots taken from the SIT (an eMMC boot partition): the SIT bounds the primary too, so
    // it is read first. The record reports it only where the decision consults it (after the
    // primary failed or the ROM started the secondary; design.md §6: `primary-ok` = not read).
    let mut bound = (layout.slots == SlotRule::FromSit).then(|| read_sit(hw, &mut timings, board));
    let primary_slot = |sit: Option<&SitReport>| match sit {
        Some(r) if r.status == SitStatus::Valid => layout.slots(r.first_sector, device).0,
        _ => layout.primary_slot_alone(device),
    };
    let (mut primary, mut secondary) = (None, None);
    let primary_at = layout.primary_offset();
    if started == Slot::Primary {
        primary = Some(examine_logged(
            hw,
            &mut timings,
            &ctx(primary_slot(bound.as_ref())),
            window,
            base,
            Slot::Primary,
            primary_at,
        ));
    }
    if primary.as_ref().is_none_or(Result::is_err) {
        sit = match bound.take() {
            Some(r) => r,
            None => read_sit(hw, &mut timings, board),
        };
        if sit.status == SitStatus::Valid {
            let offset = layout
                .secondary_offset(sit.first_sector)
                .unwrap_or(u64::MAX);
            let r = examine_logged(
                hw,
                &mut timings,
                &ctx(layout.slots(sit.first_sector, device).1),
                window,
                base,
                Slot::Secondary,
                offset,
            );
            secondary = Some(r);
        }
        if primary.is_none() && secondary.as_ref().is_none_or(Result::is_err) {
            primary = Some(examine_logged(
                hw,
                &mut timings,
                &ctx(primary_slot(Some(&sit))),
                window,
                base,
                Slot::Primary,
                primary_at,
            ));
        }
    }
    let verdict = |r: &Option<Result<Examined, Failure>>| match r {
        Some(Ok(_)) => CopyVerdict::Authentic,
        _ => CopyVerdict::NotAuthentic,
    };
    let decision = decide(
        started,
        || verdict(&primary),
        || sit.status.verdict().unwrap_or(SitVerdict::Invalid),
        || verdict(&secondary),
    );
    let booted = match (decision.slot, &primary, &secondary) {
        (Some(Slot::Primary), Some(Ok(e)), _) | (Some(Slot::Secondary), _, Some(Ok(e))) => {
            Some(e.identity)
        }
        _ => None,
    };
    let record = BootRecord {
        reason: Some(decision.reason),
        primary: primary
            .as_ref()
            .map_or(CopyReport::NotExamined, copy_report),
        secondary: secondary
            .as_ref()
            .map_or(CopyReport::NotExamined, copy_report),
        sit,
        rom,
        shim_version: ShimVersion::CURRENT,
        booted,
        rollback_minimum: Some(rules.rollback.minimum() as u8),
    };
    let (mut bootable, mut primary_failure, mut secondary_failure) = (None, None, None);
    for (slot, r) in [(Slot::Primary, primary), (Slot::Secondary, secondary)] {
        match r {
            Some(Ok(examined)) if decision.slot == Some(slot) => {
                bootable = Some(Bootable { slot, examined })
            }
            Some(Err(f)) if slot == Slot::Primary => primary_failure = Some(f),
            Some(Err(f)) => secondary_failure = Some(f),
            _ => {}
        }
    }
    debug_assert_eq!(bootable.as_ref().map(|b| b.slot), decision.slot);
    hw.watchdog.service();
    Outcome {
        decision,
        record,
        bootable,
        primary_failure,
        secondary_failure,
        timings,
    }
}

/// The next boot from a cold start, as the ROM and then the shim decide it: the ROM's choice of
/// SPL ([`crate::rom::predict_start`], through its warm reset to the secondary), then [`run`]
/// with the ROM information that start leaves (pairing, design.md §5.1). Returns the copy the
/// ROM starts (`None`: serial download; the flow then runs as if the ROM said nothing, and
/// finds nothing bootable, since each copy's SPL is judged the same way) and the flow's outcome.
/// `ubootctl`'s prediction calls it.
pub fn predict<D, A, C, W>(
    board: &Board,
    rules: Rules,
    hw: &mut Hardware<'_, D, A, C, W>,
    mem: Memory<'_>,
) -> (Option<Slot>, Outcome)
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let layout = &board.media;
    let ctx = Context {
        board,
        security: rules.security,
        rollback: rules.rollback,
        slot_bytes: layout.slot_size(layout.standard_first_sector),
        shim: mem.shim,
    };
    let started = crate::rom::predict_start(hw, &ctx, &mut *mem.window);
    let rom = match started {
        Some(slot) => RomInfo {
            log: match slot {
                Slot::Primary => crate::cell::RomLog::PrimaryBoot,
                Slot::Secondary => crate::cell::RomLog::SecondaryBoot,
            },
            ..RomInfo::UNKNOWN
        },
        None => RomInfo::UNKNOWN,
    };
    (started, run(board, rules, hw, mem, rom))
}

/// [`examine_copy`] of the copy at `offset` (`window` the FIT window, at physical `base`), its
/// verdict printed on the console.
fn examine_logged<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    ctx: &Context<'_>,
    window: &mut [u8],
    base: u64,
    slot: Slot,
    offset: u64,
) -> Result<Examined, Failure>
where
    D: BlockRead + ?Sized,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let r = examine_copy(hw, timings, ctx, window, base, offset);
    log_copy(hw.console, slot, offset, &r);
    r
}

/// Prints one copy's verdict on the console.
///
/// An authentic copy is the one handed off to: its entry and images are in the handoff's
/// messages, not repeated here.
fn log_copy(console: &mut dyn Write, slot: Slot, offset: u64, r: &Result<Examined, Failure>) {
    let name = slot.log_name();
    match r {
        Ok(b) => crate::shim_log!(
            info,
            console,
            "{=istr} at {=u64:#x}: authentic, FIT at {=u64:#x} ({=u64:#x} bytes)",
            name,
            offset,
            b.fit.load_address,
            b.fit.blob_len
        ),
        Err(f) => crate::shim_log!(
            warn,
            console,
            "{=istr} at {=u64:#x}: rejected ({=istr}): {}",
            name,
            offset,
            f.class().log_name(),
            Text(f)
        ),
    }
    if let Ok(b) = r
        && (b.warnings.unsigned_spl || b.warnings.unsigned_fit)
    {
        let what = match (b.warnings.unsigned_spl, b.warnings.unsigned_fit) {
            (true, true) => crate::name!("SPL and FIT"),
            (true, false) => crate::name!("SPL"),
            _ => crate::name!("FIT"),
        };
        crate::shim_log!(
            warn,
            console,
            "{=istr}: WARNING: unsigned {=istr} accepted because the part is open",
            name,
            what
        );
    }
}

/// Classifies a Secondary Image Table sector as the ROM and the shim do, for a device of
/// `device_bytes`: tag, then both slots at least [`MediaLayout::required_slot`] (the fixed
/// slot on a user area; past the FIT offset with slots from the SIT, boards::SlotRule): the
/// secondary after the primary's slot, its own slot inside the device. The one SIT judgement:
/// the ROM model, the shim's flow and `ubootctl` all call it.
pub fn judge_sit(
    sector: &[u8],
    layout: &MediaLayout,
    device_bytes: u64,
) -> (SitReport, Result<SecondaryArea, ParseError>) {
    let slot = layout.required_slot();
    let sit = match Sit::parse(sector) {
        Ok(s) => s,
        Err(e) => {
            let report = SitReport {
                status: SitStatus::BadTag,
                first_sector: 0,
            };
            return (report, Err(e));
        }
    };
    let first_sector = sit.first_sector_number();
    let judgement = sit.validate(layout, device_bytes, slot, slot);
    let status = match &judgement {
        Ok(_) => SitStatus::Valid,
        Err(e) if e.field == "tag" => SitStatus::BadTag,
        Err(_)
            if layout
                .secondary_offset(first_sector)
                .is_some_and(|o| o < layout.primary_offset() + slot) =>
        {
            SitStatus::OverlapsPrimary
        }
        Err(_) => SitStatus::OutsideDevice,
    };
    let report = SitReport {
        status,
        first_sector,
    };
    (report, judgement)
}

/// Reads the Secondary Image Table and judges it ([`judge_sit`]).
fn read_sit<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    board: &Board,
) -> SitReport
where
    D: BlockRead + ?Sized,
    C: Clock,
{
    let layout = &board.media;
    let mut sector: Sector = [0; SECTOR_SIZE as usize];
    if let Err(e) = examine::read(hw, timings, layout.sit_offset(), &mut sector) {
        let at = layout.sit_sector;
        match e {
            examine::Fault::Read(m) => {
                crate::shim_log!(
                    warn,
                    hw.console,
                    "SIT at sector {=u64:#x}: {}",
                    at,
                    Text(&m)
                )
            }
            _ => crate::shim_log!(warn, hw.console, "SIT at sector {=u64:#x}: unreadable", at),
        }
        return SitReport {
            status: SitStatus::Unreadable,
            first_sector: 0,
        };
    }
    let device = hw.disk.block_count().saturating_mul(SECTOR_SIZE);
    let (report, judgement) = judge_sit(&sector, layout, device);
    match judgement {
        Ok(_) => crate::shim_log!(
            info,
            hw.console,
            "SIT valid, firstSectorNumber {=u32:#x}",
            report.first_sector
        ),
        Err(e) => crate::shim_log!(warn, hw.console, "SIT: {}", Text(&e)),
    }
    report
}
