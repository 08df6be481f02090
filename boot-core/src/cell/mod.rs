//! The boot cell (design.md §6, **contract**): what the shim tells Linux about the boot it did.
//!
//! The shim writes [`CELL_SIZE`] bytes at the board's `cell_addr` (`boards::Board::cell_addr`;
//! qemu-imx8mp: OCRAM `0x0090_1000`) on every boot before handoff, and `ubootctl status` reads
//! them back. Word 0 is the slot exactly as NXP AN12900 defines it, so AN12900's reader keeps
//! working; the checksummed boot record after it says why. Everything is little-endian.
//!
//! | offset | size | field | values |
//! |---|---|---|---|
//! | 0x00 | 4 | `slot` (u32) | 1 primary, 2 secondary, 0 nothing bootable; anything else is invalid |
//! | 0x04 | 4 | `magic` | bytes `"IRBR"` (u32 [`MAGIC`] = 0x5242_5249) |
//! | 0x08 | 2 | `version` (u16) | [`VERSION`] = 4 (versions 1 to 3 are still read, see below) |
//! | 0x0A | 2 | `length` (u16) | bytes from offset 0 through the CRC: [`CELL_SIZE`] = 96 (version 1: 64) |
//! | 0x0C | 4 | `reason` (u32) | [`Reason`] value (1 primary-ok, 2 primary-failed, 3 no-fallback-table, 4 both-failed, 5 rom-secondary, 6 rom-secondary-failed (5 and 6: version 4)); 0 = none (stopped before deciding) |
//! | 0x10 | 8 | `primary` | copy verdict, table below |
//! | 0x18 | 8 | `secondary` | copy verdict, table below |
//! | 0x20 | 1 | `sit.status` | [`SitStatus`]: 0 not read, 1 valid, 2 bad tag, 3 outside device, 4 overlaps primary, 5 unreadable |
//! | 0x21 | 3 | `sit.reserved` | 0 |
//! | 0x24 | 4 | `sit.first_sector` (u32) | `firstSectorNumber` the table held (0 when not read or unreadable) |
//! | 0x28 | 4 | `rom.boot_stage` (u32) | ROM API `BT_STAGE` (0x6 primary, 0x9 secondary, 0xA recovery, 0x5 USB); 0 = unknown |
//! | 0x2C | 1 | `rom.log` | [`RomLog`]: 0 not read, 1 primary-boot event 0x50, 2 secondary-boot event 0x51, 3 log without either |
//! | 0x2D | 1 | `rom.persist_secondary` | SRC_GPR10 bit 30: 0 unknown, 1 clear, 2 set |
//! | 0x2E | 1 | `rom.hab` | the ROM's HAB result for the SPL it started (event 0xA0's status byte: 0xF0 pass, 0x33 fail, 0x69 warning); 0 = no such event (version 4; before: reserved, 0) |
//! | 0x2F | 1 | `rom.started` | the SPL the ROM started, as the shim concluded from `rom.*` ([`RomInfo::started`]): 0 unknown, 1 primary, 2 secondary (version 4; before: reserved, 0) |
//! | 0x30 | 4 | `shim_version` (u32) | `major << 16 \| minor << 8 \| patch` ([`ShimVersion`]) |
//! | 0x34 | 1 | `rollback.status` | 0 not read, 1 read: the shim read the rollback fuses (version 3; before: reserved, 0) |
//! | 0x35 | 1 | `rollback.minimum` | the minimum security epoch the shim enforced: the number of burned rollback fuse bits, 0..=64 ([`crate::rollback`]); 0 when not read |
//! | 0x36 | 6 | `reserved` | 0 |
//! | 0x3C | 32 | `booted` | the booted copy's identity: SHA-256 of its SPL's CSF then its FIT's IVT and CSF ([`crate::examine::Examined::identity`]); all zero exactly when nothing was booted (version 1: absent, the CRC is here) |
//! | 0x5C | 4 | `crc` (u32) | CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, as zlib) over bytes 0x00..0x5C (version 1: over 0x00..0x3C, at 0x3C) |
//!
//! A copy verdict (`primary` at 0x10, `secondary` at 0x18), offsets relative to its start:
//!
//! | offset | size | field | values |
//! |---|---|---|---|
//! | +0 | 1 | `outcome` | 0 not examined, 1 authentic, 2 rejected ([`CopyReport`]) |
//! | +1 | 1 | `class` | [`FailureClass`] code when rejected (never 0), else 0 |
//! | +2 | 1 | `hab.status` | HAB status byte (`imx_hab::hab::codes::status`); 0 when not examined |
//! | +3 | 1 | `hab.reason` | HAB reason byte; 0 when not examined |
//! | +4 | 1 | `hab.context` | HAB context byte; 0 when not examined |
//! | +5 | 1 | `hab.engine` | HAB engine byte; 0 when not examined |
//! | +6 | 1 | `part` | rejected: 1 SPL, 2 FIT ([`Part`]); else 0 (version 1: reserved, 0) |
//! | +7 | 1 | `flags` | authentic: bit 0 unsigned SPL, bit 1 unsigned FIT (open part), bit 2 SPL signature left to the ROM ([`Warnings`]); else 0 (version 1: reserved, 0) |
//!
//! Failure classes ([`FailureClass`]; the verifier's names are [`imx_hab::hab::software::VerifyError::check`]'s):
//!
//! | code | name | code | name | code | name |
//! |---|---|---|---|---|---|
//! | 1 | `structure` | 6 | `unsupported-key` | 11 | `load-address` |
//! | 2 | `ivt` | 7 | `certificate` | 12 | `read-error` |
//! | 3 | `command` | 8 | `csf-signature` | 13 | `not-read` |
//! | 4 | `srk-hash` | 9 | `image-signature` | 14 | `hab-rom` (ROM HAB API rejected it) |
//! | 5 | `srk-key` | 10 | `coverage` | 15 | `not-signed` (closed part, no signature) |
//! | | | | | 16 | `algorithm` (the board's ROM cannot verify the key type) |
//! | | | | | 17 | `rollback` (authentic, epoch below the fuse minimum; version 3) |
//!
//! Rules a reader relies on:
//!
//! - The CRC covers word 0 too: a slot word changed after the shim wrote the cell (by hand, or by
//!   an AN12900-era tool) invalidates the record instead of contradicting it.
//! - The record is valid only if magic, version, length and CRC match, every code is one this
//!   version defines, every reserved byte is 0, the reason agrees with the copy verdicts and the
//!   SIT status as the decision table of design.md §5 has them (`decode::follows_the_table`),
//!   and the slot word is the one the reason implies ([`slot_for_reason`]). Otherwise [`decode`] returns the slot word alone with the
//!   [`CellError`] that disqualified the record, and `ubootctl` reports "no boot record"; it
//!   never guesses from a partial record.
//! - Any change to the layout or to a code table takes a new [`VERSION`]. Codes are never
//!   reused.
//! - Compatibility: this reader accepts version 1 (written by shims before 0.2: 64 bytes, no
//!   `booted` digest, `part` and `flags` reserved and 0, classes 1..=14 only), version 2 (the
//!   `rollback` bytes reserved and 0, classes 1..=16), version 3 (`rom.hab` and `rom.started`
//!   reserved and 0, reasons 1..=4) and version 4; it writes version 4.
//!   A version-2 record says nothing about the rollback fuses (`rollback_minimum` is `None`). A version-1 record says which slot booted but not which image: `ubootctl`
//!   then falls back to the slot rule and says so. A reader
//!   of version 1 only reports a version-2 cell as "no boot record" (`CellError::Version`),
//!   never misreads it; a version-2 reader does the same with a version-3 cell. A later
//!   version must keep fields at their offsets, or be refused here.
//! - A copy rejected as `rollback` needs `rollback.status` 1 and a minimum above 0.
//! - Version 4: `rom.started` is the one [`RomInfo::started`] computes from the other `rom`
//!   fields, and the reason follows the pairing rule (design.md §5.1): reasons 5 and 6 exactly
//!   when the ROM started the secondary.
//! - The encoding is canonical: a version-4 record that decodes re-encodes to the same bytes.

use core::fmt;
use core::mem::offset_of;

use imx_hab::hab::EventSummary;
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::examine::{Part, Warnings};
use crate::policy::{CopyVerdict, Reason, Slot};

/// Bytes of the cell: word 0 plus the boot record, CRC included.
pub const CELL_SIZE: usize = 96;
/// Bytes of a version-1 cell (its CRC at [`V1_CRC_OFFSET`]).
pub const V1_CELL_SIZE: usize = 64;
/// Offset of a version-1 cell's CRC-32 (over bytes `0..V1_CRC_OFFSET`).
pub const V1_CRC_OFFSET: usize = offset_of!(RawCell, booted);
/// The record's magic, bytes `"IRBR"` at offset 4 (read as a little-endian u32).
pub const MAGIC: u32 = u32::from_le_bytes(*b"IRBR");
/// The record layout version this module writes and accepts.
pub const VERSION: u16 = 4;
/// The oldest record version this module still reads.
pub const OLDEST_VERSION: u16 = 1;
/// Offset of the CRC-32; it covers bytes `0..CRC_OFFSET`.
pub const CRC_OFFSET: usize = offset_of!(RawCell, crc);

/// One copy's verdict as laid out in the cell (8 bytes).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawCopy {
    outcome: u8,
    class: u8,
    hab_status: u8,
    hab_reason: u8,
    hab_context: u8,
    hab_engine: u8,
    part: u8,
    flags: u8,
}

/// The cell as laid out in memory (module table).
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawCell {
    slot: U32,
    magic: U32,
    version: U16,
    length: U16,
    reason: U32,
    primary: RawCopy,
    secondary: RawCopy,
    sit_status: u8,
    sit_reserved: [u8; 3],
    sit_first_sector: U32,
    rom_boot_stage: U32,
    rom_log: u8,
    rom_persist: u8,
    rom_hab: u8,
    rom_started: u8,
    shim_version: U32,
    rollback_status: u8,
    rollback_minimum: u8,
    reserved: [u8; 6],
    booted: [u8; 32],
    crc: U32,
}

const _: () = assert!(size_of::<RawCell>() == CELL_SIZE);
const _: () = assert!(CELL_SIZE as u64 <= boards::CELL_AREA);
const _: () = assert!(size_of::<RawCopy>() == 8);

/// CRC-32 as zlib computes it (IEEE 802.3: reflected, polynomial 0xEDB88320, initial value and
/// final XOR 0xFFFFFFFF). Bitwise: the cell is 60 bytes, so a table is not worth its 1 KiB.
pub const fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    let mut i = 0;
    while i < bytes.len() {
        crc ^= bytes[i] as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
            bit += 1;
        }
        i += 1;
    }
    !crc
}

/// What the shim found out about one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyReport {
    /// Not examined (outcome 0): e.g. the secondary when the primary is authentic.
    NotExamined,
    /// Read completely and authenticated (outcome 1).
    Authentic {
        /// HAB's verdict bytes (status SUCCESS from the ROM; the software verifier reports
        /// SUCCESS with reason and context 0).
        hab: EventSummary,
        /// What was accepted without a signature (open part) or left to the ROM.
        warnings: Warnings,
    },
    /// Unreadable, malformed or not authentic (outcome 2).
    Rejected {
        /// Which check failed.
        class: FailureClass,
        /// The HAB-style event of the failure ([`imx_hab::hab::AuthFailure::event`]; the closest event the
        /// shim can name for its own classes).
        hab: EventSummary,
        /// The half of the copy that failed (`None` in a version-1 record).
        part: Option<Part>,
    },
}

impl CopyReport {
    /// The outcome byte (0 not examined, 1 authentic, 2 rejected).
    pub const fn outcome_code(&self) -> u8 {
        match self {
            CopyReport::NotExamined => 0,
            CopyReport::Authentic { .. } => 1,
            CopyReport::Rejected { .. } => 2,
        }
    }

    /// The policy's view of the copy; `None` when it was not examined.
    pub const fn verdict(&self) -> Option<CopyVerdict> {
        match self {
            CopyReport::NotExamined => None,
            CopyReport::Authentic { .. } => Some(CopyVerdict::Authentic),
            CopyReport::Rejected { .. } => Some(CopyVerdict::NotAuthentic),
        }
    }
}

/// The SIT verdict with the `firstSectorNumber` the table held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SitReport {
    /// What the shim concluded.
    pub status: SitStatus,
    /// `firstSectorNumber` as read (0 when not read or unreadable).
    pub first_sector: u32,
}

/// Boot-stage information from the ROM, where the SoC provides it (imx8m-facts.md §3.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RomInfo {
    /// ROM API `query_boot_infor(BT_STAGE)` (8MN/8MP), raw; 0 = unknown (no ROM API).
    pub boot_stage: u32,
    /// The ROM event log's boot-image event.
    pub log: RomLog,
    /// SRC_GPR10 bit 30 PERSIST_SECONDARY_BOOT (8MM/8MQ); `None` = unknown.
    pub persist_secondary: Option<bool>,
    /// The ROM's HAB result for the SPL it started (the status byte of log event 0xA0: 0xF0
    /// pass, 0x33 fail, 0x69 warning); `None` = no such event.
    pub hab: Option<u8>,
}

impl RomInfo {
    /// Nothing known from the ROM.
    pub const UNKNOWN: RomInfo = RomInfo {
        boot_stage: 0,
        log: RomLog::NotRead,
        persist_secondary: None,
        hab: None,
    };
    /// `BT_STAGE` value: primary boot.
    pub const STAGE_PRIMARY: u32 = 0x6;
    /// `BT_STAGE` value: secondary boot.
    pub const STAGE_SECONDARY: u32 = 0x9;
    /// `BT_STAGE` value: recovery boot.
    pub const STAGE_RECOVERY: u32 = 0xA;
    /// `BT_STAGE` value: USB (serial download).
    pub const STAGE_USB: u32 = 0x5;

    /// The SPL the ROM started: the secondary if the log shows event 0x51, `BT_STAGE` is 0x9
    /// or PERSIST_SECONDARY_BOOT is set (psb.rst: with the bit set the ROM boots B); else the
    /// primary if the log shows 0x50 or `BT_STAGE` is 0x6; else unknown (imx8m-facts.md §3.8).
    pub const fn started(&self) -> Option<Slot> {
        if matches!(self.log, RomLog::SecondaryBoot)
            || self.boot_stage == Self::STAGE_SECONDARY
            || matches!(self.persist_secondary, Some(true))
        {
            Some(Slot::Secondary)
        } else if matches!(self.log, RomLog::PrimaryBoot) || self.boot_stage == Self::STAGE_PRIMARY
        {
            Some(Slot::Primary)
        } else {
            None
        }
    }

    /// Whether `hab` is a status byte the record may hold (0xF0, 0x33, 0x69).
    pub const fn valid_hab(hab: u8) -> bool {
        matches!(hab, 0xF0 | 0x33 | 0x69)
    }
}

/// The shim's version, stored as `major << 16 | minor << 8 | patch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShimVersion {
    /// Major (16 bits).
    pub major: u16,
    /// Minor.
    pub minor: u8,
    /// Patch.
    pub patch: u8,
}

impl ShimVersion {
    /// This crate's version (from `Cargo.toml`; the build fails if it does not fit).
    pub const CURRENT: ShimVersion = ShimVersion {
        major: parse_version_part(env!("CARGO_PKG_VERSION_MAJOR"), u16::MAX as u32) as u16,
        minor: parse_version_part(env!("CARGO_PKG_VERSION_MINOR"), u8::MAX as u32) as u8,
        patch: parse_version_part(env!("CARGO_PKG_VERSION_PATCH"), u8::MAX as u32) as u8,
    };

    /// The stored word.
    pub const fn to_u32(self) -> u32 {
        (self.major as u32) << 16 | (self.minor as u32) << 8 | self.patch as u32
    }

    /// The version a stored word means (every word is one).
    pub const fn from_u32(word: u32) -> Self {
        ShimVersion {
            major: (word >> 16) as u16,
            minor: (word >> 8) as u8,
            patch: word as u8,
        }
    }
}

impl fmt::Display for ShimVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// The shim image's version stamp: [`VersionStamp::MARKER`] then the version word the shim
/// reports. The firmware keeps one in its read-only data; an image builder may patch the word
/// (found by the marker) before signing the SPL, so a build carries its own label
/// (`cargo xtask image --shim-version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct VersionStamp {
    /// [`VersionStamp::MARKER`].
    pub marker: [u8; 16],
    /// [`ShimVersion::to_u32`] of the version reported.
    pub version: u32,
}

impl VersionStamp {
    /// The marker in front of the word.
    pub const MARKER: [u8; 16] = *b"IRB-SHIM-VERSION";
    /// This crate's version.
    pub const CURRENT: VersionStamp = VersionStamp {
        marker: Self::MARKER,
        version: ShimVersion::CURRENT.to_u32(),
    };
}

/// Decimal digits to a number no larger than `max` (const: a bad version fails the build).
const fn parse_version_part(s: &str, max: u32) -> u32 {
    let b = s.as_bytes();
    assert!(!b.is_empty(), "empty version part");
    let mut v: u32 = 0;
    let mut i = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "version part is not decimal");
        v = v * 10 + (b[i] - b'0') as u32;
        assert!(v <= max, "version part does not fit the cell");
        i += 1;
    }
    v
}

/// The boot record: everything the cell says beyond the slot word, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootRecord {
    /// The decision's reason; `None` if the shim stopped before deciding. Determines the slot
    /// word ([`slot_for_reason`]).
    pub reason: Option<Reason>,
    /// The primary copy.
    pub primary: CopyReport,
    /// The secondary copy.
    pub secondary: CopyReport,
    /// The Secondary Image Table.
    pub sit: SitReport,
    /// What the ROM said about this boot.
    pub rom: RomInfo,
    /// The shim that wrote the record.
    pub shim_version: ShimVersion,
    /// The booted image's identity ([`crate::examine::Examined::identity`]); `None` when
    /// nothing was booted or the record is version 1.
    pub booted: Option<[u8; 32]>,
    /// The minimum security epoch the shim enforced (burned rollback fuse bits, 0..=64);
    /// `None` when it did not read the fuses (stopped before, or a record before version 3).
    pub rollback_minimum: Option<u8>,
}

impl BootRecord {
    /// The copy this record says was booted: the slot word [`encode`](Self::encode) writes.
    pub const fn slot(&self) -> Option<Slot> {
        slot_for_reason(self.reason)
    }

    /// The whole cell: slot word, record, CRC.
    pub fn encode(&self) -> [u8; CELL_SIZE] {
        let mut raw = RawCell {
            slot: U32::new(slot_word(self.slot())),
            magic: U32::new(MAGIC),
            version: U16::new(VERSION),
            length: U16::new(CELL_SIZE as u16),
            reason: U32::new(self.reason.map_or(0, |r| r as u32)),
            primary: encode_copy(&self.primary),
            secondary: encode_copy(&self.secondary),
            sit_status: self.sit.status.code(),
            sit_reserved: [0; 3],
            sit_first_sector: U32::new(self.sit.first_sector),
            rom_boot_stage: U32::new(self.rom.boot_stage),
            rom_log: self.rom.log.code(),
            rom_persist: match self.rom.persist_secondary {
                None => 0,
                Some(false) => 1,
                Some(true) => 2,
            },
            rom_hab: self.rom.hab.unwrap_or(0),
            rom_started: self.rom.started().map_or(0, |s| s as u8),
            shim_version: U32::new(self.shim_version.to_u32()),
            rollback_status: u8::from(self.rollback_minimum.is_some()),
            rollback_minimum: self.rollback_minimum.unwrap_or(0),
            reserved: [0; 6],
            booted: self.booted.unwrap_or([0; 32]),
            crc: U32::new(0),
        };
        raw.crc = U32::new(crc32(&raw.as_bytes()[..CRC_OFFSET]));
        let mut out = [0u8; CELL_SIZE];
        out.copy_from_slice(raw.as_bytes());
        out
    }
}

/// The slot word for a slot (0 = nothing bootable).
const fn slot_word(slot: Option<Slot>) -> u32 {
    match slot {
        Some(s) => s as u32,
        None => 0,
    }
}

fn encode_copy(c: &CopyReport) -> RawCopy {
    let (class, hab, part, flags) = match *c {
        CopyReport::NotExamined => (0, NO_HAB, 0, 0),
        CopyReport::Authentic { hab, warnings } => (0, hab, 0, warnings.bits()),
        CopyReport::Rejected { class, hab, part } => {
            (class.code(), hab, part.map_or(0, |p| p as u8), 0)
        }
    };
    RawCopy {
        outcome: c.outcome_code(),
        class,
        hab_status: hab.status,
        hab_reason: hab.reason,
        hab_context: hab.context,
        hab_engine: hab.engine,
        part,
        flags,
    }
}

/// The HAB bytes of a copy that was not examined.
const NO_HAB: EventSummary = EventSummary {
    status: 0,
    reason: 0,
    context: 0,
    engine: 0,
};

/// Word 0 of the cell, interpreted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotWord {
    /// 0: nothing bootable.
    Nothing,
    /// 1 or 2: the copy that was booted.
    Booted(Slot),
    /// Any other value: not a slot; the word is reported as found.
    Invalid(u32),
}

impl SlotWord {
    /// Interprets a raw word.
    pub const fn from_raw(word: u32) -> Self {
        match word {
            0 => SlotWord::Nothing,
            1 => SlotWord::Booted(Slot::Primary),
            2 => SlotWord::Booted(Slot::Secondary),
            w => SlotWord::Invalid(w),
        }
    }

    /// The raw word.
    pub const fn raw(self) -> u32 {
        match self {
            SlotWord::Nothing => 0,
            SlotWord::Booted(s) => s as u32,
            SlotWord::Invalid(w) => w,
        }
    }

    /// The booted copy (`None` = nothing bootable), or [`CellError::InvalidSlot`].
    pub const fn slot(self) -> Result<Option<Slot>, CellError> {
        match self {
            SlotWord::Nothing => Ok(None),
            SlotWord::Booted(s) => Ok(Some(s)),
            SlotWord::Invalid(found) => Err(CellError::InvalidSlot { found }),
        }
    }
}

/// A decoded cell: the slot word always (when 4 bytes were there), the record only if valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cell {
    /// Word 0, range-checked.
    pub slot: SlotWord,
    /// The boot record, or why there is no valid one (report "no boot record"; never guess).
    pub record: Result<BootRecord, CellError>,
}

mod codes;
mod decode;
#[cfg(test)]
mod tests;

pub use codes::{FailureClass, RomLog, SitStatus, reason_from_code, reason_name, slot_for_reason};
pub use decode::{CellError, decode};
