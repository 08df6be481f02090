//! The shim's boot flow (design.md §5), generic over the hardware traits of
//! [`crate::platform`] and over the HAB backend, so host tests run it over in-memory disks and
//! the firmware over the uSDHC.
//!
//! For each copy examined: read the FIT header and size the FIT, read the IVT after it, derive
//! the load address the blob was signed for, check that the blob fits the board's FIT window,
//! read the whole signed blob **once** into the window at that address, authenticate it there,
//! and plan the handoff from the authenticated bytes only (the medium is never read again for
//! that copy). The primary is examined first; the SIT and the secondary only when the primary
//! fails ([`crate::policy::decide`]). The outcome carries the boot record the firmware writes
//! to the cell before it hands off.

pub mod handoff;
pub mod timing;

use core::fmt::{self, Write};

use boards::{Board, Region, SECTOR_SIZE};
use imx_hab::ParseError;
use imx_hab::hab::codes::{context, reason, status};
use imx_hab::hab::{Authenticator, EventSummary};
use imx_hab::image::ivt_offset_for;
use imx_hab::ivt::Ivt;
use imx_hab::sit::Sit;

use crate::cell::{
    BootRecord, CopyReport, FailureClass, RomInfo, ShimVersion, SitReport, SitStatus,
};
use crate::platform::{BLOCK_SIZE, BlockRead, Clock, MediaError, WatchdogService};
use crate::policy::{CopyVerdict, Decision, SitVerdict, Slot, decide};
use handoff::{HandoffError, Plan};
use timing::{ClockMeter, Timings};

/// Bytes read after the IVT offset of a signed FIT: IVT and CSF area, as U-Boot's i.MX SPL reads
/// them (`ALIGN(totalsize, 0x1000) + CONFIG_CSF_SIZE` with CSF_SIZE 0x2000, `arch/arm/mach-imx/
/// spl.c` `board_spl_fit_size_align`; docs/imx8m-facts.md §5).
pub const CSF_AREA: u64 = 0x2000;

/// The hardware the flow runs on.
pub struct Hardware<'a, D, A, C, W> {
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
pub struct Bootable<'w> {
    /// Which copy.
    pub slot: Slot,
    /// Address the blob was authenticated at.
    pub load_address: u64,
    /// Signed blob length (FIT, pad, IVT, CSF area) in the window.
    pub blob_len: u64,
    /// Offset of the blob in the window (`load_address - window_base`).
    pub window_offset: usize,
    /// The handoff; copy sources are offsets in the blob.
    pub plan: Plan<'w>,
}

/// Everything the flow found.
#[derive(Debug, Clone)]
pub struct Outcome<'w> {
    /// The policy's decision.
    pub decision: Decision,
    /// The record for the cell (its slot word follows the decision).
    pub record: BootRecord,
    /// What to hand off to, when something is bootable.
    pub bootable: Option<Bootable<'w>>,
    /// Where the time went.
    pub timings: Timings,
}

/// Why a copy was not authentic or not bootable.
#[derive(Debug, Clone, Copy)]
enum Rejection {
    Read(MediaError),
    /// The copy's SPL IVT at its first byte is missing (invalidated or never written).
    CopyHeader(ParseError),
    Structure(ParseError),
    TooLarge {
        needed: u64,
        slot: u64,
    },
    LoadAddress {
        load: u64,
        len: u64,
        window: Region,
    },
    Auth(imx_hab::hab::AuthFailure),
}

impl Rejection {
    fn class(&self) -> FailureClass {
        match self {
            Rejection::Read(_) => FailureClass::ReadError,
            Rejection::CopyHeader(_) => FailureClass::Ivt,
            Rejection::Structure(e) if e.structure == imx_hab::Structure::Ivt => FailureClass::Ivt,
            Rejection::Structure(_) | Rejection::TooLarge { .. } => FailureClass::Structure,
            Rejection::LoadAddress { .. } => FailureClass::LoadAddress,
            Rejection::Auth(f) => FailureClass::of_auth_failure(f),
        }
    }

    fn event(&self) -> EventSummary {
        let (r, c) = match self {
            Rejection::Auth(f) => return f.event(),
            Rejection::Read(_) => (reason::MEM_FAIL, context::FAB),
            Rejection::CopyHeader(_) => (reason::INV_IVT, context::AUTHENTICATE),
            Rejection::Structure(e) if e.structure == imx_hab::Structure::Ivt => {
                (reason::INV_IVT, context::AUTHENTICATE)
            }
            Rejection::Structure(_) | Rejection::TooLarge { .. } => {
                (reason::INV_SIZE, context::AUTHENTICATE)
            }
            Rejection::LoadAddress { .. } => (reason::INV_ADDRESS, context::AUTHENTICATE),
        };
        failure_event(r, c)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejection::Read(e) => write!(f, "read error: {e}"),
            Rejection::CopyHeader(e) => write!(
                f,
                "no boot image header at the copy's start (the ROM would not start it; an \
                 update may have been cut off): {e}"
            ),
            Rejection::Structure(e) => write!(f, "{e}"),
            Rejection::TooLarge { needed, slot } => write!(
                f,
                "signed FIT needs {needed:#x} bytes from the copy's start, the slot has {slot:#x}"
            ),
            Rejection::LoadAddress { load, len, window } => write!(
                f,
                "signed for {load:#x}+{len:#x}, outside the FIT window {:#x}..{:#x}",
                window.start,
                window.end()
            ),
            Rejection::Auth(e) => write!(f, "not authentic: {e}"),
        }
    }
}

/// Runs the boot flow: examines the copies in policy order and returns the decision, the
/// record for the cell and, when something is bootable, the handoff plan over `mem.window`.
pub fn run<'w, D, A, C, W>(
    board: &Board,
    hw: &mut Hardware<'_, D, A, C, W>,
    mem: Memory<'w>,
    rom: RomInfo,
) -> Outcome<'w>
where
    D: BlockRead,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let mut timings = Timings::default();
    let layout = &board.media;
    let slot_bytes = layout.slot_size(layout.standard_first_sector);
    let window = mem.window;
    let place = Placement {
        window: Region::new(mem.window_base, window.len() as u64),
        shim: mem.shim,
        slot_bytes,
    };

    hw.watchdog.service();
    let (primary, primary_loaded) = examine(
        hw,
        &mut timings,
        board,
        &place,
        window,
        Slot::Primary,
        layout.primary_offset(),
    );
    let mut sit = SitReport {
        status: SitStatus::NotRead,
        first_sector: 0,
    };
    let mut secondary = CopyReport::NotExamined;
    let mut loaded = primary_loaded;
    // The policy's order: the SIT only when the primary failed, the secondary only through a
    // valid SIT (`decide` below applies the table to what was read).
    if loaded.is_none() {
        sit = read_sit(hw, &mut timings, board);
        if sit.status == SitStatus::Valid {
            let offset = layout
                .secondary_offset(sit.first_sector)
                .unwrap_or(u64::MAX);
            let (report, found) = examine(
                hw,
                &mut timings,
                board,
                &place,
                window,
                Slot::Secondary,
                offset,
            );
            secondary = report;
            loaded = found;
        }
    }
    let verdict = |r: &CopyReport| r.verdict().unwrap_or(CopyVerdict::NotAuthentic);
    let decision = decide(
        verdict(&primary),
        || sit.status.verdict().unwrap_or(SitVerdict::Invalid),
        || verdict(&secondary),
    );
    let record = BootRecord {
        reason: Some(decision.reason),
        primary,
        secondary,
        sit,
        rom,
        shim_version: ShimVersion::CURRENT,
    };
    // The examination planned the handoff already (a copy that cannot be handed off is not
    // bootable); plan it again over the window, now borrowed for the caller.
    let window: &'w [u8] = window;
    let bootable = match (decision.slot, loaded) {
        (Some(slot), Some(l)) if l.slot == slot => l.bootable(window, board, &place).ok(),
        _ => None,
    };
    hw.watchdog.service();
    Outcome {
        decision,
        record,
        bootable,
        timings,
    }
}

/// Where a blob may be read and what its images may not overwrite.
struct Placement<'s> {
    window: Region,
    shim: &'s [Region],
    slot_bytes: u64,
}

/// A copy read and authenticated in the window (positions only, no borrow).
#[derive(Debug, Clone, Copy)]
struct Loaded {
    slot: Slot,
    load_address: u64,
    ivt_offset: u64,
    blob_len: u64,
    window_offset: usize,
}

impl Loaded {
    /// The handoff plan over the authenticated bytes.
    fn bootable<'w>(
        &self,
        window: &'w [u8],
        board: &Board,
        place: &Placement<'_>,
    ) -> Result<Bootable<'w>, HandoffError<'w>> {
        let start = self.window_offset;
        let fit_bytes = &window[start..start + self.ivt_offset as usize];
        let blob_region = Region::new(self.load_address, self.blob_len);
        let plan = handoff::plan(fit_bytes, blob_region, place.shim, &board.memory)?;
        Ok(Bootable {
            slot: self.slot,
            load_address: self.load_address,
            blob_len: self.blob_len,
            window_offset: start,
            plan,
        })
    }
}

/// Reads and classifies the Secondary Image Table as the ROM and `ubootctl` do: tag, secondary
/// after a full primary slot, a full slot inside the device.
fn read_sit<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    board: &Board,
) -> SitReport
where
    D: BlockRead,
    C: Clock,
{
    let layout = &board.media;
    let mut sector = [0u8; BLOCK_SIZE];
    if let Err(e) = timed_read(hw, timings, layout.sit_sector, &mut sector) {
        let _ = writeln!(
            hw.console,
            "shim: SIT at sector {:#x}: {e}",
            layout.sit_sector
        );
        return SitReport {
            status: SitStatus::Unreadable,
            first_sector: 0,
        };
    }
    let slot = layout.slot_size(layout.standard_first_sector);
    let device = hw.disk.block_count().saturating_mul(SECTOR_SIZE);
    let sit = match Sit::parse(&sector) {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(hw.console, "shim: SIT: {e}");
            return SitReport {
                status: SitStatus::BadTag,
                first_sector: 0,
            };
        }
    };
    let first_sector = sit.first_sector_number();
    let status = match sit.validate(layout, device, slot, slot) {
        Ok(_) => SitStatus::Valid,
        Err(e) => {
            let _ = writeln!(hw.console, "shim: SIT: {e}");
            if e.field == "tag" {
                SitStatus::BadTag
            } else if layout
                .secondary_offset(first_sector)
                .is_some_and(|o| o < layout.primary_offset() + slot)
            {
                SitStatus::OverlapsPrimary
            } else {
                SitStatus::OutsideDevice
            }
        }
    };
    if status == SitStatus::Valid {
        let _ = writeln!(
            hw.console,
            "shim: SIT valid, firstSectorNumber {first_sector:#x}"
        );
    }
    SitReport {
        status,
        first_sector,
    }
}

/// Examines one copy; returns its report for the cell and, if bootable, where it lies.
fn examine<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    board: &Board,
    place: &Placement<'_>,
    window: &mut [u8],
    slot: Slot,
    copy_offset: u64,
) -> (CopyReport, Option<Loaded>)
where
    D: BlockRead,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let name = match slot {
        Slot::Primary => "primary",
        Slot::Secondary => "secondary",
    };
    hw.watchdog.service();
    let why = match load_and_authenticate(hw, timings, board, place, window, slot, copy_offset) {
        Ok(loaded) => match loaded.bootable(window, board, place) {
            Ok(b) => {
                let _ = writeln!(
                    hw.console,
                    "shim: {name} at {copy_offset:#x}: authentic, FIT at {:#x} ({:#x} bytes), \
                     entry {:#x} ({})",
                    b.load_address, b.blob_len, b.plan.entry.address, b.plan.entry.image
                );
                let report = CopyReport::Authentic {
                    hab: EventSummary {
                        status: status::SUCCESS,
                        reason: 0,
                        context: 0,
                        engine: 0,
                    },
                };
                return (report, Some(loaded));
            }
            Err(e) => {
                // Authentic but not bootable: the error borrows the FIT, so report it here.
                let class = match e {
                    HandoffError::Fit(_) | HandoffError::NoEntry => FailureClass::Structure,
                    _ => FailureClass::LoadAddress,
                };
                let _ = writeln!(
                    hw.console,
                    "shim: {name} at {copy_offset:#x}: rejected ({class}): authentic but cannot \
                     be handed off: {e}"
                );
                return (
                    CopyReport::Rejected {
                        class,
                        hab: failure_event(reason::INV_ADDRESS, context::AUTHENTICATE),
                    },
                    None,
                );
            }
        },
        Err(why) => why,
    };
    let class = why.class();
    let _ = writeln!(
        hw.console,
        "shim: {name} at {copy_offset:#x}: rejected ({class}): {why}"
    );
    (
        CopyReport::Rejected {
            class,
            hab: why.event(),
        },
        None,
    )
}

/// A FAILURE event with the ROM's closest reason and context.
const fn failure_event(r: u8, c: u8) -> EventSummary {
    EventSummary {
        status: status::FAILURE,
        reason: r,
        context: c,
        engine: 0,
    }
}

/// Reads the copy's signed FIT into the window at its load address and authenticates it there.
fn load_and_authenticate<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    board: &Board,
    place: &Placement<'_>,
    window: &mut [u8],
    slot: Slot,
    copy_offset: u64,
) -> Result<Loaded, Rejection>
where
    D: BlockRead,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let fit_offset = board.media.fit_offset;
    let fit_lba = copy_offset.saturating_add(fit_offset) / SECTOR_SIZE;
    let room = place.slot_bytes.saturating_sub(fit_offset);

    // 0. The copy's own IVT (flash.bin offset 0): the ROM starts a copy only through it, and
    //    `ubootctl` zeroes it first and writes it last when it rewrites a copy, so a copy
    //    without it is one the ROM would not boot, or one whose write was cut off.
    let mut sector = [0u8; BLOCK_SIZE];
    timed_read(hw, timings, copy_offset / SECTOR_SIZE, &mut sector).map_err(Rejection::Read)?;
    Ivt::parse(&sector).map_err(Rejection::CopyHeader)?;

    // 1. The FIT header: its totalsize places the IVT.
    timed_read(hw, timings, fit_lba, &mut sector).map_err(Rejection::Read)?;
    let total = u64::from(imx_hab::fit::totalsize(&sector).map_err(Rejection::Structure)?);
    let ivt_offset = ivt_offset_for(total);
    let blob_len = ivt_offset.saturating_add(CSF_AREA);
    if blob_len > room {
        return Err(Rejection::TooLarge {
            needed: fit_offset.saturating_add(blob_len),
            slot: place.slot_bytes,
        });
    }

    // 2. The IVT: where the blob was signed to be.
    timed_read(hw, timings, fit_lba + ivt_offset / SECTOR_SIZE, &mut sector)
        .map_err(Rejection::Read)?;
    let ivt = Ivt::parse(&sector).map_err(|e| Rejection::Structure(e.shifted(ivt_offset)))?;
    let load = u64::from(ivt.self_addr()).wrapping_sub(ivt_offset);
    if u64::from(ivt.self_addr()) < ivt_offset || !place.window.contains_range(load, blob_len) {
        return Err(Rejection::LoadAddress {
            load,
            len: blob_len,
            window: board.memory.fit_window,
        });
    }

    // 3. The whole blob, once, into the window at the load address.
    let start = (load - place.window.start) as usize;
    let blob = &mut window[start..start + blob_len as usize];
    hw.watchdog.service();
    timed_read(hw, timings, fit_lba, blob).map_err(Rejection::Read)?;
    hw.watchdog.service();

    // 4. Authenticate in place.
    let blob: &[u8] = blob;
    let t0 = hw.clock.ticks();
    let auth = {
        let mut meter = ClockMeter {
            clock: hw.clock,
            timings,
            started: t0,
        };
        hw.hab.authenticate_metered(blob, load, &mut meter)
    };
    timings.auth_ticks += hw.clock.ticks().saturating_sub(t0);
    hw.watchdog.service();
    let auth = auth.map_err(Rejection::Auth)?;
    if auth.ivt_offset != ivt_offset {
        return Err(Rejection::Structure(ParseError::new(
            imx_hab::Structure::Ivt,
            "self",
            ivt_offset + 0x14,
            imx_hab::ErrorKind::Mismatch {
                found: auth.ivt_offset,
                expected: ivt_offset,
            },
        )));
    }
    Ok(Loaded {
        slot,
        load_address: load,
        ivt_offset,
        blob_len,
        window_offset: start,
    })
}

/// Reads whole blocks and adds the time and bytes to `timings`.
fn timed_read<D, A, C, W>(
    hw: &mut Hardware<'_, D, A, C, W>,
    timings: &mut Timings,
    lba: u64,
    buf: &mut [u8],
) -> Result<(), MediaError>
where
    D: BlockRead,
    C: Clock,
{
    let t0 = hw.clock.ticks();
    let r = hw.disk.read_blocks(lba, buf);
    timings.read_ticks += hw.clock.ticks().saturating_sub(t0);
    if r.is_ok() {
        timings.read_bytes += buf.len() as u64;
    }
    r
}
