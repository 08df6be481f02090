//! `ubootctl status`: which copy booted (the shim's boot cell), the state of the SIT and both
//! copies on the medium, what the next boot will do, and what to do about it.

use std::path::Path;

use boards::Board;
use boot_core::cell::{Cell, RomInfo, RomLog, SlotWord, reason_name};
use boot_core::examine::Security;
use boot_core::policy::{CopyVerdict, Slot};
use boot_core::rollback::RollbackFuses;
use serde::Serialize;
use ubootctl::blockdev::FileDevice;
use ubootctl::media::{CopyState, MediaState};
use ubootctl::plan::{BootedImage, booted_image};
use ubootctl::storage_lock::{self, LockRoots};
use ubootctl::sysblock::{self, SysRoots, Unsafe};

use crate::cell_source;
use crate::exit::Failure;
use crate::fuses::FuseValues;
use crate::output::outln;

/// Default boot medium: uSDHC2 is `mmc1` in the i.MX 8M device trees' aliases, so the user
/// area of the SD card the ROM boots from is `/dev/mmcblk1` on both boards.
pub const DEFAULT_DEVICE: &str = "/dev/mmcblk1";

/// One copy on the medium.
#[derive(Debug, Serialize)]
pub struct CopyStatus {
    /// Device offset of the flash.bin.
    pub offset: u64,
    /// Whether it is authentic.
    pub authentic: bool,
    /// Bytes of the flash.bin in the copy (SPL to the end of the signed FIT), when authentic:
    /// with `offset`, what to read to save the copy (the fleet integrations' rollback image).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Stable failure class when not authentic (the cell's and `verify`'s vocabulary).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<&'static str>,
    /// The half that failed (`SPL` or `FIT`), when not authentic.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<&'static str>,
    /// Accepted only because the part is open (unsigned SPL or FIT).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<&'static str>,
    /// Its security epoch (the FIT's `rollback-index`), when bootable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<u32>,
}

/// The anti-rollback state (design.md §5.3).
#[derive(Debug, Serialize)]
pub struct RollbackStatus {
    /// The minimum in the fuses (burned bits); `None` when the fuses were not read
    /// (`--srk-hash`).
    pub minimum: Option<u32>,
    /// The rollback fuse bits, hex; `None` when not read.
    pub fuses: Option<String>,
    /// The minimum the shim enforced at this boot, from the boot record (version 3).
    pub enforced_at_boot: Option<u8>,
    /// The minimum `ubootctl commit` would advance to now; `None` when it would refuse or
    /// there is nothing to burn.
    pub commit_would_advance_to: Option<u32>,
}

/// What the ROM told the shim about this boot (boot record version 4; design.md §5.1).
#[derive(Debug, Serialize)]
pub struct RomStatus {
    /// The SPL the ROM started: `primary`, `secondary` or `unknown`.
    pub started: &'static str,
    /// The ROM's HAB result for it: `pass`, `fail`, `warning`; absent when it left none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hab: Option<&'static str>,
    /// The boot-image event of its log: `0x50`, `0x51`, `none` or `not read`.
    pub log: &'static str,
    /// The ROM API's `BT_STAGE` answer, hex; absent when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_stage: Option<String>,
    /// PERSIST_SECONDARY_BOOT as the shim found it (it clears the bit).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persist_secondary: Option<bool>,
}

fn rom_status(rom: &RomInfo) -> RomStatus {
    RomStatus {
        started: slot_name(rom.started()),
        hab: rom.hab.map(|h| match h {
            0xF0 => "pass",
            0x33 => "fail",
            _ => "warning",
        }),
        log: match rom.log {
            RomLog::NotRead => "not read",
            RomLog::PrimaryBoot => "0x50",
            RomLog::SecondaryBoot => "0x51",
            RomLog::NoBootEvent => "none",
        },
        boot_stage: (rom.boot_stage != 0).then(|| format!("{:#x}", rom.boot_stage)),
        persist_secondary: rom.persist_secondary,
    }
}

fn slot_name(slot: Option<Slot>) -> &'static str {
    match slot {
        Some(Slot::Primary) => "primary",
        Some(Slot::Secondary) => "secondary",
        None => "unknown",
    }
}

/// The whole status.
#[derive(Debug, Serialize)]
pub struct Status {
    /// Board.
    pub board: &'static str,
    /// `closed` or `open`, from SEC_CONFIG (closed when only an SRK hash file was given).
    pub security: &'static str,
    /// Boot medium.
    pub device: String,
    /// Slot word of the cell: 1, 2, 0 or an invalid value.
    pub cell_slot: Option<u32>,
    /// Whether the cell holds a valid boot record.
    pub boot_record: bool,
    /// Why there is no valid boot record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_record_problem: Option<String>,
    /// The reason the shim recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot_reason: Option<String>,
    /// The running slot (the copy whose FIT booted), when the record says.
    pub running: Option<u32>,
    /// What the ROM said about this boot, from the record (version 4).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rom: Option<RomStatus>,
    /// SHA-256 identity of the image that booted (the FIT through its CSF), from the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booted_image: Option<String>,
    /// Where that image is on the medium: `primary`, `primary and secondary`,
    /// `secondary only`, `lost` (in neither copy) or `unknown` (no identity in the record).
    pub booted_image_on_medium: &'static str,
    /// SIT: valid, or why not.
    pub sit: String,
    /// The primary copy.
    pub primary: CopyStatus,
    /// The secondary copy.
    pub secondary: CopyStatus,
    /// Whether the secondary holds the same flash.bin as the primary.
    pub secondary_matches_primary: bool,
    /// The slot the next boot takes (0: nothing bootable).
    pub next_boot: u32,
    /// The SPL the ROM starts at the next (cold) boot: `primary`, `secondary` or
    /// `serial download` (no SPL passes the ROM's checks).
    pub next_boot_rom: &'static str,
    /// Healthy: running the primary, authentic identical secondary, valid SIT.
    pub healthy: bool,
    /// Partitions, partition tables or the device end that the SIT sector or a slot overlaps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub boot_area_conflicts: Vec<String>,
    /// What to do, when not healthy.
    pub actions: Vec<String>,
    /// Anti-rollback: the fuse minimum, what the shim enforced, what a commit would do.
    pub rollback: RollbackStatus,
    /// On an eMMC: EXT_CSD[179] decoded and both boot partitions' copies.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emmc: Option<crate::cli_emmc::EmmcStatus>,
}

pub(crate) fn copy_status(c: &CopyState) -> CopyStatus {
    let failure = c.judgement.as_ref().err();
    let mut warnings = Vec::new();
    if let Ok(info) = &c.judgement {
        if info.warnings.unsigned_spl {
            warnings.push("unsigned SPL accepted: the part is open");
        }
        if info.warnings.unsigned_fit {
            warnings.push("unsigned FIT accepted: the part is open");
        }
    }
    CopyStatus {
        offset: c.offset,
        authentic: c.verdict() == CopyVerdict::Authentic,
        size: c.image().map(|i| i.len() as u64),
        problem: failure.map(|e| e.to_string()),
        class: failure.map(|e| e.class().name()),
        part: failure.map(|e| e.part.name()),
        warnings,
        epoch: c.judgement.as_ref().ok().map(|i| i.epoch),
    }
}

fn same_copy(a: &CopyState, b: &CopyState) -> bool {
    match (&a.judgement, &b.judgement) {
        (Ok(x), Ok(y)) if x.extent == y.extent => {
            let n = x.extent as usize;
            a.bytes.get(..n).is_some() && a.bytes.get(..n) == b.bytes.get(..n)
        }
        _ => false,
    }
}

fn cell_facts(
    cell: &Result<Cell, String>,
) -> (Option<u32>, Option<Slot>, Option<String>, Option<String>) {
    match cell {
        Err(e) => (None, None, Some(e.clone()), None),
        Ok(c) => {
            let word = Some(c.slot.raw());
            match (&c.slot, &c.record) {
                (_, Err(e)) => (word, None, Some(e.to_string()), None),
                (SlotWord::Booted(s), Ok(r)) => (
                    word,
                    Some(*s),
                    None,
                    r.reason.map(|x| reason_name(x).to_string()),
                ),
                (_, Ok(r)) => (
                    word,
                    None,
                    None,
                    r.reason.map(|x| reason_name(x).to_string()),
                ),
            }
        }
    }
}

/// What `status` knows when it advises.
struct Facts<'a> {
    state: &'a MediaState,
    board: &'a Board,
    running: Option<Slot>,
    on_medium: BootedImage,
    foreign: &'a [String],
    /// A partition table (not a partition) is among what the boot area overlaps.
    table_in_the_way: bool,
    matches: bool,
}

/// The actions for a degraded device, each one that works as printed (tested case by case in
/// `tests/advice.rs`): its command is accepted by `update`/`sync` in that state, or it is the
/// documented last resort. Empty when healthy.
fn advice(f: &Facts<'_>) -> Vec<String> {
    let st = f.state;
    let p = st.primary.verdict() == CopyVerdict::Authentic;
    let s = st.fallback_ok();
    let mut out = Vec::new();
    if !f.foreign.is_empty() {
        let end = st.secondary.offset + ubootctl::media::slot_bytes(&f.board.media);
        let fix = if f.table_in_the_way {
            "move the partition table's entry array out of the boot area (with sgdisk: \
             `sgdisk -j 2 DEVICE` keeps it at its usual LBA 2) and make the first partition \
             start at or after"
        } else {
            "re-partition so that the first partition starts at or after"
        };
        out.push(format!(
            "the boot area overlaps what is not its own ({}): update and sync refuse to write \
             there; {fix} {end:#x} (the usual 8 MiB), then run `ubootctl status` again",
            f.foreign.join("; ")
        ));
        return out;
    }
    if !p && !s {
        let srk = |c: &ubootctl::media::CopyState| {
            c.judgement
                .as_ref()
                .is_err_and(|e| e.class() == boot_core::cell::FailureClass::SrkHash)
        };
        if srk(&st.primary) && srk(&st.secondary) {
            out.push(
                "every copy fails at the SRK hash: check the fuse source (--srk-hash, --fuses, \
                 --ocotp); if it is right, the images were signed for another part: install one \
                 signed for this part with `ubootctl update IMAGE`"
                    .into(),
            );
        } else {
            out.push(
                "NOTHING on the medium would boot: install a good image now with `ubootctl \
                 update IMAGE` and keep power until it is done; if the system cannot do that, \
                 re-flash the board over the ROM's serial download mode (NXP `uuu`)"
                    .into(),
            );
        }
        if f.running.is_none() {
            out.push(
                "no boot record: add `--running 1` (or 2, the copy you know is running) to that \
                 update"
                    .into(),
            );
        }
        return out;
    }
    match (f.running, f.on_medium) {
        (None, _) => out.push(format!(
            "no boot record at {:#x}: it is not known which copy is running; name it with \
             `ubootctl update IMAGE --running 1` (or 2) when you know it",
            f.board.cell_addr
        )),
        (Some(Slot::Secondary), _) if s => out.push(
            "running the SECONDARY copy: the primary failed to boot; install a good image with \
             `ubootctl update IMAGE`"
                .into(),
        ),
        (Some(Slot::Secondary), _) => out.push(
            "running the secondary, which is no longer authentic on the medium, while the \
             primary is: reboot (the next boot takes the primary), then run `ubootctl sync`"
                .into(),
        ),
        (Some(Slot::Primary), _) if !p => out.push(
            "the primary on the medium is not authentic although this boot took it (damaged or \
             rewritten since): write it again with `ubootctl update IMAGE`; the secondary stays \
             the fallback"
                .into(),
        ),
        (Some(Slot::Primary), BootedImage::SecondaryOnly | BootedImage::Lost) => out.push(
            "the primary holds an image that has not booted yet (written since this boot): \
             reboot to test it, then run `ubootctl sync`"
                .into(),
        ),
        (Some(Slot::Primary), _) if !s || !f.matches || st.sit.judgement.is_err() => out.push(
            "the fallback is missing, invalid or differs from the primary, which booted: run \
             `ubootctl sync`"
                .into(),
        ),
        (Some(Slot::Primary), _) => {}
    }
    out
}

/// Builds the status.
fn status(
    device: &Path,
    board: &'static Board,
    values: &FuseValues,
    mem: &Path,
    emmc: &crate::cli_update::EmmcOptions,
) -> Result<Status, Failure> {
    let fuses = &values.fuses;
    // A partition is not a boot medium: the boot area lies before the partitions, on the disk.
    let roots = SysRoots::default();
    if let Ok(id) = sysblock::identify(device, &roots)
        && let Ok(Err(Unsafe::Partition { name, disk, .. })) = sysblock::check_writable(&id, &roots)
    {
        let disk = disk.map_or_else(|| "the whole disk".to_owned(), |d| format!("/dev/{d}"));
        return Err(Failure::Refused(format!(
            "refused: {} is a partition ({name}): the boot copies are on the whole disk; run \
             `ubootctl status --device {disk}`",
            device.display()
        )));
    }
    cell_source::check(mem).map_err(Failure::Usage)?;
    let cell = cell_source::read(mem, board.cell_addr);
    let (cell_slot, running, record_problem, boot_reason) = cell_facts(&cell);
    let record = cell.as_ref().ok().and_then(|c| c.record.as_ref().ok());
    let booted = record.and_then(|r| r.booted);
    let enforced_at_boot = record.and_then(|r| r.rollback_minimum);
    // A shared lock: an update in progress on the same storage (through any alias) is not
    // read half-written; that is an error of this run (exit 2), not a verdict on the device.
    let _lock = storage_lock::lock_shared(device, &LockRoots::default()).map_err(|e| match e {
        storage_lock::LockError::Busy { .. } => Failure::Refused(format!(
            "refused: the state cannot be read while another run writes it: {e}"
        )),
        other => Failure::Usage(format!("cannot read a consistent state: {other}")),
    })?;
    let facts = crate::cli_emmc::emmc_facts(device, board, fuses, emmc)?;
    let dev = FileDevice::open_read_only(device).map_err(|e| Failure::Usage(e.to_string()))?;
    // Layout (a): the table and slots fitted to the boot partition, as the shim reads them.
    let fitted = facts
        .as_ref()
        .filter(|f| f.status.layout == "a")
        .and_then(|_| {
            use ubootctl::blockdev::BlockDevice;
            boot_core::emmc::board_for(board, boards::EmmcLayout::InOnePartition, dev.size())
        });
    let board: &Board = fitted.as_ref().unwrap_or(board);
    let state = crate::cli_emmc::state_for_status(facts.as_ref(), &dev, board, fuses)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", device.display())))?;
    let ab = facts.as_ref().and_then(|f| f.ab.as_ref());
    // The next boot as the shim's own boot flow decides it, over the same bytes.
    let decision = state.decision();
    let sit = match &state.sit.judgement {
        Ok(_) if let Some(ab) = ab => format!(
            "implied (A/B layout): copy 1 in {} (enabled), copy 2 in {}",
            ab.active,
            ab.active.other()
        ),
        Ok(a) => format!(
            "valid, firstSectorNumber {:#x} (secondary at {:#x})",
            a.first_sector, a.offset
        ),
        Err(e) => format!("invalid: {e}"),
    };
    let primary = copy_status(&state.primary);
    let secondary = copy_status(&state.secondary);
    let matches = same_copy(&state.primary, &state.secondary);
    let on_medium = booted_image(&state, booted.as_ref());
    let conflicts = state.boot_area_conflicts(board);
    let table_in_the_way = conflicts
        .iter()
        .any(|(_, c)| matches!(c, ubootctl::partitions::Conflict::Table { .. }));
    let foreign: Vec<String> = conflicts
        .into_iter()
        .map(|(what, c)| format!("{what}: {c}"))
        .collect();
    let actions = advice(&Facts {
        state: &state,
        board,
        running,
        on_medium,
        foreign: &foreign,
        table_in_the_way,
        matches,
    });
    let actions = crate::cli_emmc::adjust_actions(actions, facts.as_ref(), &state, board);
    let healthy = actions.is_empty();
    let rollback_fuses = RollbackFuses(fuses.rollback);
    let rollback = RollbackStatus {
        minimum: values.rollback_known.then(|| rollback_fuses.minimum()),
        fuses: values
            .rollback_known
            .then(|| format!("{:#018x}", rollback_fuses.0)),
        enforced_at_boot,
        commit_would_advance_to: if values.rollback_known {
            let boot = ubootctl::commit::BootFacts {
                booted,
                enforced_minimum: enforced_at_boot,
            };
            ubootctl::commit::plan_commit(&state, &boot, rollback_fuses)
                .ok()
                .filter(|p| !p.is_noop())
                .map(|p| p.target)
        } else {
            None
        },
    };
    Ok(Status {
        board: board.name,
        security: Security::of(fuses).name(),
        device: device.display().to_string(),
        cell_slot,
        boot_record: record_problem.is_none() && cell.is_ok(),
        boot_record_problem: record_problem,
        boot_reason,
        running: running.map(|s| s as u32),
        rom: record
            .filter(|r| r.rom.started().is_some() || r.rom.hab.is_some())
            .map(|r| rom_status(&r.rom)),
        booted_image: booted.map(|d| d.iter().map(|b| format!("{b:02x}")).collect()),
        booted_image_on_medium: match on_medium {
            BootedImage::Unknown => "unknown",
            BootedImage::Primary {
                also_secondary: true,
            } => "primary and secondary",
            BootedImage::Primary {
                also_secondary: false,
            } => "primary",
            BootedImage::SecondaryOnly => "secondary only",
            BootedImage::Lost => "lost",
        },
        sit,
        primary,
        secondary,
        secondary_matches_primary: matches,
        next_boot: decision.slot.map_or(0, |s| s as u32),
        next_boot_rom: match state.rom_start {
            None => "serial download",
            s => slot_name(s),
        },
        healthy,
        boot_area_conflicts: foreign,
        actions,
        rollback,
        emmc: facts.map(|f| f.status),
    })
}

/// Runs `status`; returns whether the device is healthy.
pub fn run(
    device: &Path,
    board: &'static Board,
    fuses: &FuseValues,
    mem: &Path,
    emmc: &crate::cli_update::EmmcOptions,
    json: bool,
) -> Result<bool, Failure> {
    let st = status(device, board, fuses, mem, emmc)?;
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&st).expect("plain data serialises")
        );
        return Ok(st.healthy);
    }
    let epoch = |c: &CopyStatus| c.epoch.map_or(String::new(), |e| format!(", epoch {e}"));
    let copy = |c: &CopyStatus| match &c.problem {
        None if c.warnings.is_empty() => format!("authentic (at {:#x}{})", c.offset, epoch(c)),
        None => format!(
            "accepted (at {:#x}{}), WARNING: {}",
            c.offset,
            epoch(c),
            c.warnings.join("; ")
        ),
        // Authentic but below the fuse minimum: refused, not damaged.
        Some(p) if c.class == Some("rollback") => {
            format!("REFUSED, rolled back (at {:#x}): {p}", c.offset)
        }
        Some(p) => format!("NOT authentic (at {:#x}): {p}", c.offset),
    };
    outln!("board        {} ({} part)", st.board, st.security);
    outln!("device       {}", st.device);
    match (st.running, &st.boot_record_problem) {
        (Some(r), _) => outln!(
            "running      slot {r} ({})",
            st.boot_reason.as_deref().unwrap_or("?")
        ),
        (None, Some(p)) => outln!("running      unknown: no boot record ({p})"),
        (None, None) => outln!("running      nothing (the shim found nothing bootable)"),
    }
    if let Some(r) = &st.rom {
        let mut detail = vec![format!("log event {}", r.log)];
        if let Some(b) = &r.boot_stage {
            detail.push(format!("BT_STAGE {b}"));
        }
        if let Some(h) = r.hab {
            detail.push(format!("HAB {h}"));
        }
        let paired = match (r.started, st.running) {
            ("primary", Some(2)) => "; the shim booted the secondary's FIT (the primary's failed)",
            ("secondary", Some(1)) => {
                "; the shim booted the primary's FIT (the secondary's failed)"
            }
            _ => "",
        };
        outln!(
            "ROM          started the {} SPL ({}){paired}",
            r.started,
            detail.join(", ")
        );
    }
    match &st.booted_image {
        Some(d) => outln!(
            "booted image {}… ({} on the medium)",
            &d[..16],
            st.booted_image_on_medium
        ),
        None if st.running.is_some() => {
            outln!("booted image unknown (a version-1 boot record names the slot only)")
        }
        None => {}
    }
    if let Some(e) = &st.emmc {
        crate::cli_emmc::print_status(e, &copy);
    }
    outln!("SIT          {}", st.sit);
    outln!("primary      {}", copy(&st.primary));
    outln!(
        "secondary    {}{}",
        copy(&st.secondary),
        if st.secondary_matches_primary {
            ", same as the primary"
        } else {
            ""
        }
    );
    let rb = &st.rollback;
    let mut line = match rb.minimum {
        Some(m) => format!(
            "minimum epoch {m} (fuses {})",
            rb.fuses.as_deref().unwrap_or("?")
        ),
        None => "minimum epoch unknown (the fuses were not read: --srk-hash)".to_owned(),
    };
    if let Some(e) = rb.enforced_at_boot {
        line.push_str(&format!("; the shim enforced {e} at this boot"));
    }
    if let Some(t) = rb.commit_would_advance_to {
        line.push_str(&format!("; `ubootctl commit` would raise it to {t}"));
    }
    outln!("rollback     {line}");
    outln!(
        "next boot    {}",
        match (st.next_boot, st.next_boot_rom) {
            (0, "serial download") =>
                "NOTHING BOOTABLE (the ROM falls back to serial download)".to_owned(),
            (0, rom) => format!("NOTHING BOOTABLE (the ROM starts the {rom} SPL)"),
            (n, rom) => format!("slot {n} (the ROM starts the {rom} SPL)"),
        }
    );
    if st.healthy {
        outln!("status       healthy");
    } else {
        outln!("status       DEGRADED");
        for a in &st.actions {
            outln!("  - {a}");
        }
    }
    Ok(st.healthy)
}
