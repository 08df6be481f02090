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
//! | 0x08 | 2 | `version` (u16) | [`VERSION`] = 2 (version 1 is still read, see below) |
//! | 0x0A | 2 | `length` (u16) | bytes from offset 0 through the CRC: [`CELL_SIZE`] = 64 |
//! | 0x0C | 4 | `reason` (u32) | [`Reason`] value (1 primary-ok, 2 primary-failed, 3 no-fallback-table, 4 both-failed); 0 = none (stopped before deciding) |
//! | 0x10 | 8 | `primary` | copy verdict, table below |
//! | 0x18 | 8 | `secondary` | copy verdict, table below |
//! | 0x20 | 1 | `sit.status` | [`SitStatus`]: 0 not read, 1 valid, 2 bad tag, 3 outside device, 4 overlaps primary, 5 unreadable |
//! | 0x21 | 3 | `sit.reserved` | 0 |
//! | 0x24 | 4 | `sit.first_sector` (u32) | `firstSectorNumber` the table held (0 when not read or unreadable) |
//! | 0x28 | 4 | `rom.boot_stage` (u32) | ROM API `BT_STAGE` (0x6 primary, 0x9 secondary, 0xA recovery, 0x5 USB); 0 = unknown |
//! | 0x2C | 1 | `rom.log` | [`RomLog`]: 0 not read, 1 primary-boot event 0x50, 2 secondary-boot event 0x51, 3 log without either |
//! | 0x2D | 1 | `rom.persist_secondary` | SRC_GPR10 bit 30: 0 unknown, 1 clear, 2 set |
//! | 0x2E | 2 | `rom.reserved` | 0 |
//! | 0x30 | 4 | `shim_version` (u32) | `major << 16 \| minor << 8 \| patch` ([`ShimVersion`]) |
//! | 0x34 | 8 | `reserved` | 0 |
//! | 0x3C | 4 | `crc` (u32) | CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, as zlib) over bytes 0x00..0x3C |
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
//! Failure classes ([`FailureClass`]; the verifier's names are [`VerifyError::check`]'s):
//!
//! | code | name | code | name | code | name |
//! |---|---|---|---|---|---|
//! | 1 | `structure` | 6 | `unsupported-key` | 11 | `load-address` |
//! | 2 | `ivt` | 7 | `certificate` | 12 | `read-error` |
//! | 3 | `command` | 8 | `csf-signature` | 13 | `not-read` |
//! | 4 | `srk-hash` | 9 | `image-signature` | 14 | `hab-rom` (ROM HAB API rejected it) |
//! | 5 | `srk-key` | 10 | `coverage` | 15 | `not-signed` (closed part, no signature) |
//! | | | | | 16 | `algorithm` (the board's ROM cannot verify the key type) |
//!
//! Rules a reader relies on:
//!
//! - The CRC covers word 0 too: a slot word changed after the shim wrote the cell (by hand, or by
//!   an AN12900-era tool) invalidates the record instead of contradicting it.
//! - The record is valid only if magic, version, length and CRC match, every code is one this
//!   version defines, every reserved byte is 0 and the slot word is the one the reason implies
//!   ([`slot_for_reason`]). Otherwise [`decode`] returns the slot word alone with the
//!   [`CellError`] that disqualified the record, and `ubootctl` reports "no boot record"; it
//!   never guesses from a partial record.
//! - Any change to the layout or to a code table takes a new [`VERSION`]. Codes are never
//!   reused.
//! - Compatibility: this reader accepts version 1 (written by shims before 0.2: `part` and
//!   `flags` reserved and 0, classes 1..=14 only) and version 2; it writes version 2. A reader
//!   of version 1 only reports a version-2 cell as "no boot record" (`CellError::Version`),
//!   never misreads it. A later version must keep fields at their offsets, or be refused here.
//! - The encoding is canonical: a version-2 record that decodes re-encodes to the same bytes.

use core::fmt;
use core::mem::offset_of;

use imx_hab::hab::software::{SignatureRole, VerifyError};
use imx_hab::hab::{AuthFailure, EventSummary};
use zerocopy::byteorder::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::examine::{Part, Warnings};
use crate::policy::{CopyVerdict, Reason, SitVerdict, Slot};

/// Bytes of the cell: word 0 plus the boot record, CRC included.
pub const CELL_SIZE: usize = 64;
/// The record's magic, bytes `"IRBR"` at offset 4 (read as a little-endian u32).
pub const MAGIC: u32 = u32::from_le_bytes(*b"IRBR");
/// The record layout version this module writes and accepts.
pub const VERSION: u16 = 2;
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
    rom_reserved: [u8; 2],
    shim_version: U32,
    reserved: [u8; 8],
    crc: U32,
}

const _: () = assert!(size_of::<RawCell>() == CELL_SIZE);
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

/// The slot word a reason implies (design.md §5 table): primary-ok → 1, primary-failed → 2,
/// no-fallback-table and both-failed → 0; no reason (the shim stopped before deciding) → 0.
pub const fn slot_for_reason(reason: Option<Reason>) -> Option<Slot> {
    match reason {
        Some(Reason::PrimaryOk) => Some(Slot::Primary),
        Some(Reason::PrimaryFailed) => Some(Slot::Secondary),
        Some(Reason::NoFallbackTable | Reason::BothFailed) | None => None,
    }
}

/// The stable name of a reason, as in design.md §5 (`primary-ok`, `primary-failed`,
/// `no-fallback-table`, `both-failed`).
pub const fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::PrimaryOk => "primary-ok",
        Reason::PrimaryFailed => "primary-failed",
        Reason::NoFallbackTable => "no-fallback-table",
        Reason::BothFailed => "both-failed",
    }
}

/// The reason with this stable value (`Reason as u32`), if any; 0 is "none" and is not a reason.
pub const fn reason_from_code(code: u32) -> Option<Reason> {
    match code {
        1 => Some(Reason::PrimaryOk),
        2 => Some(Reason::PrimaryFailed),
        3 => Some(Reason::NoFallbackTable),
        4 => Some(Reason::BothFailed),
        _ => None,
    }
}

/// Why a copy was rejected: one stable code per check of the software verifier
/// ([`VerifyError::check`]) plus the shim's own reasons. Values are part of the cell contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FailureClass {
    /// `structure` (1): the image or its CSF is malformed.
    Structure = 1,
    /// `ivt` (2): `IVT.self` is not where the blob is loaded, or the IVT points to a DCD.
    Ivt = 2,
    /// `command` (3): a CSF command is not acceptable where it stands.
    Command = 3,
    /// `srk-hash` (4): the SRK table does not hash to the fuses.
    SrkHash = 4,
    /// `srk-key` (5): the installed SRK is hash-only or revoked.
    SrkKey = 5,
    /// `unsupported-key` (6): a key of a type or size the verifier does not support.
    UnsupportedKey = 6,
    /// `certificate` (7): a certificate does not chain to its source key.
    Certificate = 7,
    /// `csf-signature` (8): the CSF signature does not verify, or the CSF was never
    /// authenticated.
    CsfSignature = 8,
    /// `image-signature` (9): the image signature does not verify.
    ImageSignature = 9,
    /// `coverage` (10): the signed blocks leave part of the image uncovered or lie outside it.
    Coverage = 10,
    /// `load-address` (11): the load address from the IVT lies outside the board's FIT window.
    LoadAddress = 11,
    /// `read-error` (12): the block device failed while the copy was being read.
    ReadError = 12,
    /// `not-read` (13): authentication never ran because the signed blob was not read: its
    /// size or position (from the FIT header and IVT) lies outside the copy's area or the
    /// device.
    NotRead = 13,
    /// `hab-rom` (14): the ROM's HAB API rejected the copy (or logged a failure event); the
    /// copy's HAB bytes hold the ROM's first failure.
    HabRom = 14,
    /// `not-signed` (15): the SPL or FIT carries no signature and the part is closed.
    NotSigned = 15,
    /// `algorithm` (16): signed with a key type the board's ROM (authenticator) cannot verify.
    Algorithm = 16,
}

impl FailureClass {
    /// Every class, in code order.
    pub const ALL: [FailureClass; 16] = [
        FailureClass::Structure,
        FailureClass::Ivt,
        FailureClass::Command,
        FailureClass::SrkHash,
        FailureClass::SrkKey,
        FailureClass::UnsupportedKey,
        FailureClass::Certificate,
        FailureClass::CsfSignature,
        FailureClass::ImageSignature,
        FailureClass::Coverage,
        FailureClass::LoadAddress,
        FailureClass::ReadError,
        FailureClass::NotRead,
        FailureClass::HabRom,
        FailureClass::NotSigned,
        FailureClass::Algorithm,
    ];

    /// The stable code stored in the cell.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The class with this code; `None` for 0 and for codes this version does not define.
    pub const fn from_code(code: u8) -> Option<Self> {
        if code == 0 || code as usize > Self::ALL.len() {
            None
        } else {
            Some(Self::ALL[code as usize - 1])
        }
    }

    /// The stable name: for the verifier's classes exactly [`VerifyError::check`]'s name.
    pub const fn name(self) -> &'static str {
        match self {
            FailureClass::Structure => "structure",
            FailureClass::Ivt => "ivt",
            FailureClass::Command => "command",
            FailureClass::SrkHash => "srk-hash",
            FailureClass::SrkKey => "srk-key",
            FailureClass::UnsupportedKey => "unsupported-key",
            FailureClass::Certificate => "certificate",
            FailureClass::CsfSignature => "csf-signature",
            FailureClass::ImageSignature => "image-signature",
            FailureClass::Coverage => "coverage",
            FailureClass::LoadAddress => "load-address",
            FailureClass::ReadError => "read-error",
            FailureClass::NotRead => "not-read",
            FailureClass::HabRom => "hab-rom",
            FailureClass::NotSigned => "not-signed",
            FailureClass::Algorithm => "algorithm",
        }
    }

    /// The class with this name (the inverse of [`FailureClass::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// The class of a software-verifier failure; agrees with [`VerifyError::check`] (tested).
    pub const fn of_verify_error(e: &VerifyError) -> Self {
        match e {
            VerifyError::Parse(_) => FailureClass::Structure,
            VerifyError::IvtSelf { .. } | VerifyError::IvtDcd { .. } => FailureClass::Ivt,
            VerifyError::Command { .. } => FailureClass::Command,
            VerifyError::SrkHash { .. } => FailureClass::SrkHash,
            VerifyError::SrkHashOnly { .. } | VerifyError::SrkRevoked { .. } => {
                FailureClass::SrkKey
            }
            VerifyError::UnsupportedKey { .. } => FailureClass::UnsupportedKey,
            VerifyError::Certificate { .. } => FailureClass::Certificate,
            VerifyError::Signature {
                role: SignatureRole::Csf,
                ..
            }
            | VerifyError::CsfNotAuthenticated => FailureClass::CsfSignature,
            VerifyError::Signature {
                role: SignatureRole::Image { .. },
                ..
            } => FailureClass::ImageSignature,
            VerifyError::BlockOutsideImage { .. }
            | VerifyError::TooManyBlocks
            | VerifyError::NotCovered { .. } => FailureClass::Coverage,
        }
    }

    /// The class of an [`imx_hab::hab::Authenticator`] failure: the software verifier's check,
    /// or [`FailureClass::HabRom`] for the ROM.
    pub const fn of_auth_failure(e: &AuthFailure) -> Self {
        match e {
            AuthFailure::Software(v) => Self::of_verify_error(v),
            AuthFailure::Rom(_) => FailureClass::HabRom,
        }
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
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
        /// The HAB-style event of the failure ([`AuthFailure::event`]; the closest event the
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

/// What the shim found in the Secondary Image Table (design.md §5 step 2). Stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SitStatus {
    /// 0: not read (the primary was authentic).
    NotRead = 0,
    /// 1: tag right, secondary inside the device, no overlap with the primary.
    Valid = 1,
    /// 2: the tag is not 0x00112233.
    BadTag = 2,
    /// 3: the secondary it points to lies (partly) outside the device.
    OutsideDevice = 3,
    /// 4: the secondary it points to overlaps the primary.
    OverlapsPrimary = 4,
    /// 5: the sector holding the table could not be read.
    Unreadable = 5,
}

impl SitStatus {
    /// Every status, in code order.
    pub const ALL: [SitStatus; 6] = [
        SitStatus::NotRead,
        SitStatus::Valid,
        SitStatus::BadTag,
        SitStatus::OutsideDevice,
        SitStatus::OverlapsPrimary,
        SitStatus::Unreadable,
    ];

    /// The stable code stored in the cell.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The status with this code, if this version defines it.
    pub const fn from_code(code: u8) -> Option<Self> {
        if code as usize >= Self::ALL.len() {
            None
        } else {
            Some(Self::ALL[code as usize])
        }
    }

    /// The stable name (`not-read`, `valid`, `bad-tag`, `outside-device`, `overlaps-primary`,
    /// `unreadable`).
    pub const fn name(self) -> &'static str {
        match self {
            SitStatus::NotRead => "not-read",
            SitStatus::Valid => "valid",
            SitStatus::BadTag => "bad-tag",
            SitStatus::OutsideDevice => "outside-device",
            SitStatus::OverlapsPrimary => "overlaps-primary",
            SitStatus::Unreadable => "unreadable",
        }
    }

    /// The policy's view of the table; `None` when it was not read.
    pub const fn verdict(self) -> Option<SitVerdict> {
        match self {
            SitStatus::NotRead => None,
            SitStatus::Valid => Some(SitVerdict::Valid),
            _ => Some(SitVerdict::Invalid),
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

/// What the ROM's event log said about the copy it booted (imx8m-facts.md §3.6). Stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum RomLog {
    /// 0: no log read (no valid pointer at 0x9E0, or not looked at).
    NotRead = 0,
    /// 1: the log shows event 0x50, boot from the primary image.
    PrimaryBoot = 1,
    /// 2: the log shows event 0x51, boot from the secondary image.
    SecondaryBoot = 2,
    /// 3: a log without either event.
    NoBootEvent = 3,
}

impl RomLog {
    /// Every value, in code order.
    pub const ALL: [RomLog; 4] = [
        RomLog::NotRead,
        RomLog::PrimaryBoot,
        RomLog::SecondaryBoot,
        RomLog::NoBootEvent,
    ];

    /// The stable code stored in the cell.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The value with this code, if this version defines it.
    pub const fn from_code(code: u8) -> Option<Self> {
        if code as usize >= Self::ALL.len() {
            None
        } else {
            Some(Self::ALL[code as usize])
        }
    }

    /// Whether the log showed a secondary boot (`None` when no log was read).
    pub const fn secondary_boot(self) -> Option<bool> {
        match self {
            RomLog::NotRead => None,
            RomLog::SecondaryBoot => Some(true),
            RomLog::PrimaryBoot | RomLog::NoBootEvent => Some(false),
        }
    }
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
}

impl RomInfo {
    /// Nothing known from the ROM.
    pub const UNKNOWN: RomInfo = RomInfo {
        boot_stage: 0,
        log: RomLog::NotRead,
        persist_secondary: None,
    };
    /// `BT_STAGE` value: primary boot.
    pub const STAGE_PRIMARY: u32 = 0x6;
    /// `BT_STAGE` value: secondary boot.
    pub const STAGE_SECONDARY: u32 = 0x9;
    /// `BT_STAGE` value: recovery boot.
    pub const STAGE_RECOVERY: u32 = 0xA;
    /// `BT_STAGE` value: USB (serial download).
    pub const STAGE_USB: u32 = 0x5;
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
            rom_reserved: [0; 2],
            shim_version: U32::new(self.shim_version.to_u32()),
            reserved: [0; 8],
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

/// Why a cell has no usable slot word or no valid boot record. Every variant names the field
/// and its byte offset from the start of the cell ([`CellError::field`], [`CellError::offset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellError {
    /// The input ends before the field does.
    Truncated {
        /// The field cut off (`slot`, or `record` for everything after word 0).
        field: &'static str,
        /// Its offset.
        offset: usize,
        /// Bytes the cell needs up to the end of that field.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// Word 0 is not 0, 1 or 2.
    InvalidSlot {
        /// The word.
        found: u32,
    },
    /// Every byte after word 0 is zero: an AN12900-style cell, no record was ever written.
    NoRecord,
    /// The magic is not [`MAGIC`].
    Magic {
        /// The word found.
        found: u32,
    },
    /// The version is not [`VERSION`].
    Version {
        /// The version found.
        found: u16,
    },
    /// The length is not [`CELL_SIZE`].
    Length {
        /// The length found.
        found: u16,
    },
    /// The CRC-32 does not match the bytes.
    Crc {
        /// The CRC stored at [`CRC_OFFSET`].
        stored: u32,
        /// The CRC of bytes `0..CRC_OFFSET`.
        computed: u32,
    },
    /// A checksummed field holds a value this version does not allow.
    Value {
        /// The field (`primary.class`, `sit.status`, `reserved`, …).
        field: &'static str,
        /// Its offset.
        offset: usize,
        /// The value found (bytes read little-endian).
        found: u32,
        /// What the field allows.
        expected: &'static str,
    },
    /// The slot word is not the one the record's reason implies.
    SlotMismatch {
        /// The reason code stored (0 = none).
        reason: u32,
        /// The slot word the reason implies.
        expected: u32,
        /// The slot word found.
        found: u32,
    },
}

impl CellError {
    /// The field the error is about.
    pub const fn field(&self) -> &'static str {
        match self {
            CellError::Truncated { field, .. } | CellError::Value { field, .. } => field,
            CellError::InvalidSlot { .. } => "slot",
            CellError::NoRecord => "record",
            CellError::Magic { .. } => "magic",
            CellError::Version { .. } => "version",
            CellError::Length { .. } => "length",
            CellError::Crc { .. } => "crc",
            CellError::SlotMismatch { .. } => "reason",
        }
    }

    /// The byte offset of that field from the start of the cell.
    pub const fn offset(&self) -> usize {
        match self {
            CellError::Truncated { offset, .. } | CellError::Value { offset, .. } => *offset,
            CellError::InvalidSlot { .. } => offset_of!(RawCell, slot),
            CellError::NoRecord => offset_of!(RawCell, magic),
            CellError::Magic { .. } => offset_of!(RawCell, magic),
            CellError::Version { .. } => offset_of!(RawCell, version),
            CellError::Length { .. } => offset_of!(RawCell, length),
            CellError::Crc { .. } => CRC_OFFSET,
            CellError::SlotMismatch { .. } => offset_of!(RawCell, reason),
        }
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "field `{}` at offset {:#x}: ",
            self.field(),
            self.offset()
        )?;
        match *self {
            CellError::Truncated {
                needed, available, ..
            } => write!(
                f,
                "truncated: the cell needs {needed:#x} bytes, only {available:#x} were read"
            ),
            CellError::InvalidSlot { found } => {
                write!(f, "slot word {found:#x} is not 0, 1 or 2")
            }
            CellError::NoRecord => write!(
                f,
                "no boot record: every byte after the slot word is zero (AN12900-style cell)"
            ),
            CellError::Magic { found } => {
                write!(f, "found {found:#010x}, expected {MAGIC:#010x} (\"IRBR\")")
            }
            CellError::Version { found } => write!(
                f,
                "version {found} is not a version this reader supports ({OLDEST_VERSION}..={VERSION})"
            ),
            CellError::Length { found } => {
                write!(f, "length {found:#x}, expected {CELL_SIZE:#x}")
            }
            CellError::Crc { stored, computed } => write!(
                f,
                "CRC-32 stored {stored:#010x}, computed {computed:#010x} over bytes 0x0..{CRC_OFFSET:#x}"
            ),
            CellError::Value {
                found, expected, ..
            } => write!(f, "value {found:#x} not allowed: {expected}"),
            CellError::SlotMismatch {
                reason,
                expected,
                found,
            } => {
                write!(f, "reason {reason}")?;
                if let Some(r) = reason_from_code(reason) {
                    write!(f, " ({})", reason_name(r))?;
                }
                write!(
                    f,
                    " means slot word {expected}, but the slot word is {found}"
                )
            }
        }
    }
}

impl core::error::Error for CellError {}

/// Decodes a cell read from `cell_addr`. Bytes beyond [`CELL_SIZE`] are ignored.
///
/// Fails only when there is no slot word (fewer than 4 bytes). Otherwise the slot word is
/// returned range-checked, and the record is either fully valid or replaced by the first
/// [`CellError`] that disqualifies it, checked in this order: length of the input, all zero
/// after word 0 ([`CellError::NoRecord`]), magic, version, length, CRC, each field's value and
/// reserved bytes in offset order, the slot word against the reason.
pub fn decode(bytes: &[u8]) -> Result<Cell, CellError> {
    let Some(word) = bytes.first_chunk::<4>() else {
        return Err(CellError::Truncated {
            field: "slot",
            offset: 0,
            needed: 4,
            available: bytes.len(),
        });
    };
    Ok(Cell {
        slot: SlotWord::from_raw(u32::from_le_bytes(*word)),
        record: decode_record(bytes),
    })
}

fn decode_record(bytes: &[u8]) -> Result<BootRecord, CellError> {
    let Ok((raw, _)) = RawCell::ref_from_prefix(bytes) else {
        return Err(CellError::Truncated {
            field: "record",
            offset: offset_of!(RawCell, magic),
            needed: CELL_SIZE,
            available: bytes.len(),
        });
    };
    let body = &raw.as_bytes()[offset_of!(RawCell, magic)..];
    if body.iter().all(|&b| b == 0) {
        return Err(CellError::NoRecord);
    }
    if raw.magic.get() != MAGIC {
        return Err(CellError::Magic {
            found: raw.magic.get(),
        });
    }
    let version = raw.version.get();
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(CellError::Version {
            found: raw.version.get(),
        });
    }
    if usize::from(raw.length.get()) != CELL_SIZE {
        return Err(CellError::Length {
            found: raw.length.get(),
        });
    }
    let computed = crc32(&raw.as_bytes()[..CRC_OFFSET]);
    if raw.crc.get() != computed {
        return Err(CellError::Crc {
            stored: raw.crc.get(),
            computed,
        });
    }

    let reason_code = raw.reason.get();
    let reason = match reason_code {
        0 => None,
        c => Some(reason_from_code(c).ok_or(CellError::Value {
            field: "reason",
            offset: offset_of!(RawCell, reason),
            found: c,
            expected: "0 (none) or a reason 1..=4",
        })?),
    };
    let primary = decode_copy(&raw.primary, &PRIMARY, version)?;
    let secondary = decode_copy(&raw.secondary, &SECONDARY, version)?;
    let status = SitStatus::from_code(raw.sit_status).ok_or(CellError::Value {
        field: "sit.status",
        offset: offset_of!(RawCell, sit_status),
        found: raw.sit_status.into(),
        expected: "a SIT status 0..=5",
    })?;
    zero(
        &raw.sit_reserved,
        "sit.reserved",
        offset_of!(RawCell, sit_reserved),
    )?;
    let log = RomLog::from_code(raw.rom_log).ok_or(CellError::Value {
        field: "rom.log",
        offset: offset_of!(RawCell, rom_log),
        found: raw.rom_log.into(),
        expected: "a ROM log code 0..=3",
    })?;
    let persist_secondary = match raw.rom_persist {
        0 => None,
        1 => Some(false),
        2 => Some(true),
        found => {
            return Err(CellError::Value {
                field: "rom.persist_secondary",
                offset: offset_of!(RawCell, rom_persist),
                found: found.into(),
                expected: "0 unknown, 1 clear or 2 set",
            });
        }
    };
    zero(
        &raw.rom_reserved,
        "rom.reserved",
        offset_of!(RawCell, rom_reserved),
    )?;
    zero(&raw.reserved, "reserved", offset_of!(RawCell, reserved))?;

    let expected = slot_word(slot_for_reason(reason));
    if raw.slot.get() != expected {
        return Err(CellError::SlotMismatch {
            reason: reason_code,
            expected,
            found: raw.slot.get(),
        });
    }
    Ok(BootRecord {
        reason,
        primary,
        secondary,
        sit: SitReport {
            status,
            first_sector: raw.sit_first_sector.get(),
        },
        rom: RomInfo {
            boot_stage: raw.rom_boot_stage.get(),
            log,
            persist_secondary,
        },
        shim_version: ShimVersion::from_u32(raw.shim_version.get()),
    })
}

/// Field names and the offset of one copy verdict.
struct CopyFields {
    base: usize,
    outcome: &'static str,
    class: &'static str,
    hab: &'static str,
    part: &'static str,
    flags: &'static str,
}

const PRIMARY: CopyFields = CopyFields {
    base: offset_of!(RawCell, primary),
    outcome: "primary.outcome",
    class: "primary.class",
    hab: "primary.hab",
    part: "primary.part",
    flags: "primary.flags",
};

const SECONDARY: CopyFields = CopyFields {
    base: offset_of!(RawCell, secondary),
    outcome: "secondary.outcome",
    class: "secondary.class",
    hab: "secondary.hab",
    part: "secondary.part",
    flags: "secondary.flags",
};

fn decode_copy(raw: &RawCopy, names: &CopyFields, version: u16) -> Result<CopyReport, CellError> {
    let hab = EventSummary {
        status: raw.hab_status,
        reason: raw.hab_reason,
        context: raw.hab_context,
        engine: raw.hab_engine,
    };
    let class_error = |expected| CellError::Value {
        field: names.class,
        offset: names.base + offset_of!(RawCopy, class),
        found: raw.class.into(),
        expected,
    };
    let report = match raw.outcome {
        0 => {
            if raw.class != 0 {
                return Err(class_error("0 for a copy that was not examined"));
            }
            if hab != NO_HAB {
                return Err(CellError::Value {
                    field: names.hab,
                    offset: names.base + offset_of!(RawCopy, hab_status),
                    found: u32::from_le_bytes([
                        raw.hab_status,
                        raw.hab_reason,
                        raw.hab_context,
                        raw.hab_engine,
                    ]),
                    expected: "0 for a copy that was not examined",
                });
            }
            only_zero(raw.part, names.part, names.base + offset_of!(RawCopy, part))?;
            only_zero(
                raw.flags,
                names.flags,
                names.base + offset_of!(RawCopy, flags),
            )?;
            CopyReport::NotExamined
        }
        1 => {
            if raw.class != 0 {
                return Err(class_error("0 for an authentic copy"));
            }
            only_zero(raw.part, names.part, names.base + offset_of!(RawCopy, part))?;
            let flags_error = |expected| CellError::Value {
                field: names.flags,
                offset: names.base + offset_of!(RawCopy, flags),
                found: raw.flags.into(),
                expected,
            };
            if version == 1 && raw.flags != 0 {
                return Err(flags_error("reserved, 0 (version 1)"));
            }
            let warnings =
                Warnings::from_bits(raw.flags).ok_or_else(|| flags_error("bits 0..=2 only"))?;
            CopyReport::Authentic { hab, warnings }
        }
        2 => {
            let class = FailureClass::from_code(raw.class)
                .filter(|c| version >= 2 || c.code() <= FailureClass::HabRom.code())
                .ok_or_else(|| class_error("a failure class this version defines"))?;
            let part = match (version, raw.part) {
                (1, 0) => None,
                (1, _) => {
                    return Err(CellError::Value {
                        field: names.part,
                        offset: names.base + offset_of!(RawCopy, part),
                        found: raw.part.into(),
                        expected: "reserved, 0 (version 1)",
                    });
                }
                (_, p) => Some(Part::from_code(p).ok_or(CellError::Value {
                    field: names.part,
                    offset: names.base + offset_of!(RawCopy, part),
                    found: p.into(),
                    expected: "1 SPL or 2 FIT for a rejected copy",
                })?),
            };
            only_zero(
                raw.flags,
                names.flags,
                names.base + offset_of!(RawCopy, flags),
            )?;
            CopyReport::Rejected { class, hab, part }
        }
        found => {
            return Err(CellError::Value {
                field: names.outcome,
                offset: names.base + offset_of!(RawCopy, outcome),
                found: found.into(),
                expected: "0 not examined, 1 authentic or 2 rejected",
            });
        }
    };
    Ok(report)
}

/// Checks that a byte that must be 0 in this context is.
fn only_zero(b: u8, field: &'static str, offset: usize) -> Result<(), CellError> {
    if b == 0 {
        Ok(())
    } else {
        Err(CellError::Value {
            field,
            offset,
            found: b.into(),
            expected: "0 here",
        })
    }
}

/// Checks that a reserved field is zero; reports the first non-zero byte.
fn zero(bytes: &[u8], field: &'static str, offset: usize) -> Result<(), CellError> {
    match bytes.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(CellError::Value {
            field,
            offset: offset + i,
            found: bytes[i].into(),
            expected: "reserved, 0",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::decide;
    use imx_hab::hab::RomFailure;
    use imx_hab::hab::codes::{context, reason, status};
    use imx_hab::hab::software::{CertificateFault, CommandFault, SignatureFault};
    use proptest::prelude::*;

    const fn ev(status: u8, reason: u8, context: u8, engine: u8) -> EventSummary {
        EventSummary {
            status,
            reason,
            context,
            engine,
        }
    }

    /// A record with a distinct, non-default value in every field.
    fn sample() -> BootRecord {
        BootRecord {
            reason: Some(Reason::PrimaryFailed),
            primary: CopyReport::Rejected {
                class: FailureClass::ImageSignature,
                hab: ev(
                    status::FAILURE,
                    reason::INV_SIGNATURE,
                    context::AUT_DAT,
                    0x1D,
                ),
                part: Some(Part::Fit),
            },
            secondary: CopyReport::Authentic {
                hab: ev(status::SUCCESS, 0, 0, 0),
                warnings: Warnings {
                    unsigned_spl: true,
                    ..Warnings::default()
                },
            },
            sit: SitReport {
                status: SitStatus::Valid,
                first_sector: 0x1000,
            },
            rom: RomInfo {
                boot_stage: RomInfo::STAGE_SECONDARY,
                log: RomLog::SecondaryBoot,
                persist_secondary: Some(true),
            },
            shim_version: ShimVersion {
                major: 0x0102,
                minor: 3,
                patch: 4,
            },
        }
    }

    /// Rewrites the CRC so that a deliberate change is judged by the check after the CRC.
    fn fix_crc(cell: &mut [u8; CELL_SIZE]) {
        let crc = crc32(&cell[..CRC_OFFSET]);
        cell[CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
    }

    fn record_err(cell: &[u8]) -> CellError {
        decode(cell).unwrap().record.unwrap_err()
    }

    #[test]
    fn layout_matches_the_documented_table() {
        assert_eq!(size_of::<RawCell>(), CELL_SIZE);
        let table = [
            (offset_of!(RawCell, slot), 0x00),
            (offset_of!(RawCell, magic), 0x04),
            (offset_of!(RawCell, version), 0x08),
            (offset_of!(RawCell, length), 0x0A),
            (offset_of!(RawCell, reason), 0x0C),
            (offset_of!(RawCell, primary), 0x10),
            (offset_of!(RawCell, secondary), 0x18),
            (offset_of!(RawCell, sit_status), 0x20),
            (offset_of!(RawCell, sit_reserved), 0x21),
            (offset_of!(RawCell, sit_first_sector), 0x24),
            (offset_of!(RawCell, rom_boot_stage), 0x28),
            (offset_of!(RawCell, rom_log), 0x2C),
            (offset_of!(RawCell, rom_persist), 0x2D),
            (offset_of!(RawCell, rom_reserved), 0x2E),
            (offset_of!(RawCell, shim_version), 0x30),
            (offset_of!(RawCell, reserved), 0x34),
            (offset_of!(RawCell, crc), 0x3C),
            (offset_of!(RawCopy, outcome), 0),
            (offset_of!(RawCopy, class), 1),
            (offset_of!(RawCopy, hab_status), 2),
            (offset_of!(RawCopy, hab_reason), 3),
            (offset_of!(RawCopy, hab_context), 4),
            (offset_of!(RawCopy, hab_engine), 5),
            (offset_of!(RawCopy, part), 6),
            (offset_of!(RawCopy, flags), 7),
        ];
        for (i, (got, want)) in table.into_iter().enumerate() {
            assert_eq!(got, want, "row {i}");
        }
        assert_eq!(&MAGIC.to_le_bytes(), b"IRBR");
        assert_eq!(MAGIC, 0x5242_5249);
    }

    #[test]
    fn crc32_matches_zlib_check_values() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(
            crc32(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn golden_encoding_is_stable() {
        // The CRC was computed independently with Python's `zlib.crc32` over bytes 0..0x3C.
        let expected: [u8; CELL_SIZE] = [
            0x02, 0x00, 0x00, 0x00, // slot 2
            b'I', b'R', b'B', b'R', // magic
            0x02, 0x00, 0x40, 0x00, // version 2, length 64
            0x02, 0x00, 0x00, 0x00, // reason primary-failed
            0x02, 0x09, 0x33, 0x18, 0xDB, 0x1D, 0x02, 0x00, // primary: image-signature, FIT
            0x01, 0x00, 0xF0, 0x00, 0x00, 0x00, 0x00,
            0x01, // secondary: authentic, unsigned SPL
            0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, // SIT valid, 0x1000
            0x09, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, // ROM: stage 9, 0x51, persist set
            0x04, 0x03, 0x02, 0x01, // shim 258.3.4
            0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // reserved
            0x19, 0x3D, 0x60, 0xE8, // CRC-32 0xE8603D19
        ];
        assert_eq!(sample().encode(), expected);
        assert_eq!(crc32(&expected[..CRC_OFFSET]), 0xE860_3D19);
    }

    /// Compatibility (module docs): a version-1 record, as shims before 0.2 wrote it, still
    /// reads, with no part and no warnings.
    #[test]
    fn version_1_records_still_read() {
        let v1: [u8; CELL_SIZE] = [
            0x02, 0x00, 0x00, 0x00, b'I', b'R', b'B', b'R', 0x01, 0x00, 0x40, 0x00, 0x02, 0x00,
            0x00, 0x00, 0x02, 0x09, 0x33, 0x18, 0xDB, 0x1D, 0x00, 0x00, 0x01, 0x00, 0xF0, 0x00,
            0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x09, 0x00,
            0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x00, 0x00, 0x00, 0x00, 0xAF, 0x1D, 0x52, 0xF1,
        ];
        let mut want = sample();
        want.primary = CopyReport::Rejected {
            class: FailureClass::ImageSignature,
            hab: ev(
                status::FAILURE,
                reason::INV_SIGNATURE,
                context::AUT_DAT,
                0x1D,
            ),
            part: None,
        };
        want.secondary = CopyReport::Authentic {
            hab: ev(status::SUCCESS, 0, 0, 0),
            warnings: Warnings::default(),
        };
        assert_eq!(decode(&v1).unwrap().record, Ok(want));
        // Version 1 defines neither the part/flags bytes nor classes past hab-rom.
        for (at, value) in [(0x16, 2u8), (0x1F, 1), (0x11, 15)] {
            let mut cell = v1;
            cell[at] = value;
            fix_crc(&mut cell);
            assert!(
                matches!(record_err(&cell), CellError::Value { .. }),
                "byte {at:#x}"
            );
        }
    }

    #[test]
    fn round_trip_of_every_field() {
        let r = sample();
        let cell = decode(&r.encode()).unwrap();
        assert_eq!(cell.slot, SlotWord::Booted(Slot::Secondary));
        assert_eq!(cell.slot.slot(), Ok(Some(Slot::Secondary)));
        assert_eq!(cell.record, Ok(r));
        let r = cell.record.unwrap();
        assert_eq!(r.reason, Some(Reason::PrimaryFailed));
        assert_eq!(r.sit.first_sector, 0x1000);
        assert_eq!(r.rom.log.secondary_boot(), Some(true));
        assert_eq!(r.shim_version.to_string(), "258.3.4");
    }

    #[test]
    fn every_code_round_trips() {
        let mut r = sample();
        for class in FailureClass::ALL {
            r.secondary = CopyReport::Rejected {
                class,
                hab: ev(status::FAILURE, 1, 2, 3),
                part: Some(Part::Spl),
            };
            r.reason = Some(Reason::BothFailed);
            assert_eq!(decode(&r.encode()).unwrap().record, Ok(r), "{class}");
        }
        for status in SitStatus::ALL {
            r.sit.status = status;
            assert_eq!(decode(&r.encode()).unwrap().record, Ok(r), "{status:?}");
        }
        for log in RomLog::ALL {
            for persist in [None, Some(false), Some(true)] {
                r.rom.log = log;
                r.rom.persist_secondary = persist;
                assert_eq!(decode(&r.encode()).unwrap().record, Ok(r));
            }
        }
        for reason in [
            None,
            Some(Reason::PrimaryOk),
            Some(Reason::PrimaryFailed),
            Some(Reason::NoFallbackTable),
            Some(Reason::BothFailed),
        ] {
            r.reason = reason;
            let cell = decode(&r.encode()).unwrap();
            assert_eq!(cell.record, Ok(r));
            assert_eq!(cell.slot.slot(), Ok(slot_for_reason(reason)));
        }
        r.primary = CopyReport::NotExamined;
        r.secondary = CopyReport::NotExamined;
        assert_eq!(decode(&r.encode()).unwrap().record, Ok(r));
    }

    #[test]
    fn every_single_bit_flip_invalidates_the_record_but_the_slot_word_still_reads() {
        let good = sample().encode();
        for bit in 0..CELL_SIZE * 8 {
            let mut cell = good;
            cell[bit / 8] ^= 1 << (bit % 8);
            let decoded = decode(&cell).unwrap();
            let word = u32::from_le_bytes(cell[..4].try_into().unwrap());
            assert_eq!(decoded.slot.raw(), word, "bit {bit}");
            let err = decoded.record.unwrap_err();
            let byte = bit / 8;
            let expected_field = match byte {
                4..=7 => "magic",
                8..=9 => "version",
                10..=11 => "length",
                _ => "crc",
            };
            assert_eq!(err.field(), expected_field, "bit {bit}: {err}");
            if expected_field == "crc" {
                assert!(matches!(err, CellError::Crc { .. }), "bit {bit}: {err}");
            }
        }
    }

    #[test]
    fn wrong_magic_version_or_length_is_no_record() {
        let good = sample().encode();

        let mut cell = good;
        cell[4..8].copy_from_slice(b"IRBS");
        fix_crc(&mut cell);
        let err = record_err(&cell);
        assert_eq!(
            err,
            CellError::Magic {
                found: u32::from_le_bytes(*b"IRBS")
            }
        );
        assert_eq!((err.field(), err.offset()), ("magic", 4));

        let mut cell = good;
        cell[8..10].copy_from_slice(&3u16.to_le_bytes());
        fix_crc(&mut cell);
        let err = record_err(&cell);
        assert_eq!(err, CellError::Version { found: 3 });
        assert_eq!((err.field(), err.offset()), ("version", 8));

        let mut cell = good;
        cell[10..12].copy_from_slice(&128u16.to_le_bytes());
        fix_crc(&mut cell);
        let err = record_err(&cell);
        assert_eq!(err, CellError::Length { found: 128 });
        assert_eq!((err.field(), err.offset()), ("length", 10));

        // The slot word survives in every case.
        assert_eq!(
            decode(&cell).unwrap().slot,
            SlotWord::Booted(Slot::Secondary)
        );
    }

    #[test]
    fn an12900_cell_decodes_to_slot_2_without_record() {
        let mut cell = [0u8; CELL_SIZE];
        cell[0] = 2;
        let decoded = decode(&cell).unwrap();
        assert_eq!(decoded.slot, SlotWord::Booted(Slot::Secondary));
        assert_eq!(decoded.record, Err(CellError::NoRecord));
        assert_eq!(decoded.record.unwrap_err().offset(), 4);
        // Just the word, as AN12900's reader reads it.
        let decoded = decode(&2u32.to_le_bytes()).unwrap();
        assert_eq!(decoded.slot.slot(), Ok(Some(Slot::Secondary)));
        assert!(matches!(
            decoded.record,
            Err(CellError::Truncated {
                field: "record",
                offset: 4,
                needed: CELL_SIZE,
                available: 4
            })
        ));
    }

    #[test]
    fn slot_word_7_is_reported_invalid() {
        let mut cell = [0u8; CELL_SIZE];
        cell[0] = 7;
        let decoded = decode(&cell).unwrap();
        assert_eq!(decoded.slot, SlotWord::Invalid(7));
        assert_eq!(decoded.slot.raw(), 7);
        let err = decoded.slot.slot().unwrap_err();
        assert_eq!(err, CellError::InvalidSlot { found: 7 });
        assert_eq!((err.field(), err.offset()), ("slot", 0));
        assert_eq!(
            err.to_string(),
            "field `slot` at offset 0x0: slot word 0x7 is not 0, 1 or 2"
        );
        // A checksummed record cannot vouch for slot word 7 either.
        let mut cell = sample().encode();
        cell[..4].copy_from_slice(&7u32.to_le_bytes());
        fix_crc(&mut cell);
        let decoded = decode(&cell).unwrap();
        assert_eq!(decoded.slot, SlotWord::Invalid(7));
        assert_eq!(
            decoded.record,
            Err(CellError::SlotMismatch {
                reason: 2,
                expected: 2,
                found: 7
            })
        );
    }

    #[test]
    fn slot_word_contradicting_the_reason_is_no_record() {
        let mut cell = sample().encode();
        cell[0] = 1;
        // Rewritten slot word without a new CRC: the CRC catches it.
        assert!(matches!(record_err(&cell), CellError::Crc { .. }));
        // Even with a matching CRC the record does not vouch for a different slot.
        fix_crc(&mut cell);
        let err = record_err(&cell);
        assert_eq!(
            err,
            CellError::SlotMismatch {
                reason: 2,
                expected: 2,
                found: 1
            }
        );
        assert_eq!((err.field(), err.offset()), ("reason", 0x0C));
        assert_eq!(
            err.to_string(),
            "field `reason` at offset 0xc: reason 2 (primary-failed) means slot word 2, but the slot word is 1"
        );
    }

    #[test]
    fn unknown_codes_and_reserved_bytes_name_field_and_offset() {
        let cases: &[(usize, u8, &str, usize)] = &[
            (0x0C, 9, "reason", 0x0C),
            (0x10, 3, "primary.outcome", 0x10),
            (0x11, 0, "primary.class", 0x11),
            (0x11, 17, "primary.class", 0x11),
            (0x16, 3, "primary.part", 0x16),
            (0x17, 1, "primary.flags", 0x17),
            (0x19, 4, "secondary.class", 0x19),
            (0x1E, 1, "secondary.part", 0x1E),
            (0x1F, 8, "secondary.flags", 0x1F),
            (0x20, 6, "sit.status", 0x20),
            (0x22, 1, "sit.reserved", 0x22),
            (0x2C, 4, "rom.log", 0x2C),
            (0x2D, 3, "rom.persist_secondary", 0x2D),
            (0x2F, 1, "rom.reserved", 0x2F),
            (0x3B, 1, "reserved", 0x3B),
        ];
        for &(at, value, field, offset) in cases {
            let mut cell = sample().encode();
            cell[at] = value;
            fix_crc(&mut cell);
            let err = record_err(&cell);
            assert!(matches!(err, CellError::Value { .. }), "{field}: {err}");
            assert_eq!((err.field(), err.offset()), (field, offset), "{err}");
        }
        // A copy that was not examined carries no HAB bytes.
        let mut r = sample();
        r.reason = Some(Reason::PrimaryOk);
        r.primary = CopyReport::Authentic {
            hab: ev(status::SUCCESS, 0, 0, 0),
            warnings: Warnings::default(),
        };
        r.secondary = CopyReport::NotExamined;
        let mut cell = r.encode();
        cell[0x1A] = status::FAILURE;
        fix_crc(&mut cell);
        let err = record_err(&cell);
        assert_eq!((err.field(), err.offset()), ("secondary.hab", 0x1A));
    }

    #[test]
    fn short_inputs() {
        for n in 0..4 {
            let err = decode(&[1u8; 4][..n]).unwrap_err();
            assert_eq!((err.field(), err.offset()), ("slot", 0));
        }
        let cell = sample().encode();
        for n in 4..CELL_SIZE {
            let decoded = decode(&cell[..n]).unwrap();
            assert_eq!(decoded.slot.raw(), 2);
            assert!(matches!(
                decoded.record,
                Err(CellError::Truncated {
                    field: "record",
                    ..
                })
            ));
        }
        // Bytes after the cell are ignored.
        let mut longer = [0xA5u8; 100];
        longer[..CELL_SIZE].copy_from_slice(&cell);
        assert_eq!(decode(&longer).unwrap().record, Ok(sample()));
    }

    #[test]
    fn failure_classes_have_stable_codes_and_names() {
        let names = [
            "structure",
            "ivt",
            "command",
            "srk-hash",
            "srk-key",
            "unsupported-key",
            "certificate",
            "csf-signature",
            "image-signature",
            "coverage",
            "load-address",
            "read-error",
            "not-read",
            "hab-rom",
            "not-signed",
            "algorithm",
        ];
        for (i, (class, name)) in FailureClass::ALL.into_iter().zip(names).enumerate() {
            assert_eq!(class.code() as usize, i + 1);
            assert_eq!(class.name(), name);
            assert_eq!(FailureClass::from_code(class.code()), Some(class));
            assert_eq!(FailureClass::from_name(name), Some(class));
        }
        assert_eq!(FailureClass::from_code(0), None);
        assert_eq!(FailureClass::from_code(17), None);
        for (i, s) in SitStatus::ALL.into_iter().enumerate() {
            assert_eq!(s.code() as usize, i);
            assert_eq!(SitStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(SitStatus::from_code(6), None);
        for (i, l) in RomLog::ALL.into_iter().enumerate() {
            assert_eq!(l.code() as usize, i);
            assert_eq!(RomLog::from_code(l.code()), Some(l));
        }
    }

    #[test]
    fn failure_class_agrees_with_verify_error_check() {
        let block = imx_hab::csf::Block { start: 0, len: 4 };
        let parse_error = imx_hab::sit::Sit::parse(&[]).unwrap_err();
        let errors = [
            VerifyError::Parse(parse_error),
            VerifyError::IvtSelf {
                found: 0,
                expected: 0,
            },
            VerifyError::IvtDcd { found: 1 },
            VerifyError::Command {
                offset: 0,
                fault: CommandFault::Forbidden,
            },
            VerifyError::SrkHash {
                offset: 0,
                computed: [0; 32],
            },
            VerifyError::SrkHashOnly { index: 0 },
            VerifyError::SrkRevoked { index: 0 },
            VerifyError::UnsupportedKey {
                offset: 0,
                what: "rsa",
            },
            VerifyError::Certificate {
                slot: 2,
                offset: 0,
                fault: CertificateFault::NotSignedBySource,
            },
            VerifyError::Signature {
                role: SignatureRole::Csf,
                offset: 0,
                fault: SignatureFault::BadValue,
                first_block: None,
            },
            VerifyError::Signature {
                role: SignatureRole::Image { key: 3 },
                offset: 0,
                fault: SignatureFault::BadValue,
                first_block: Some(block),
            },
            VerifyError::BlockOutsideImage {
                offset: 0,
                index: 0,
                block,
            },
            VerifyError::TooManyBlocks,
            VerifyError::NotCovered { from: 0, to: 1 },
            VerifyError::CsfNotAuthenticated,
        ];
        for e in errors {
            let class = FailureClass::of_verify_error(&e);
            assert_eq!(class.name(), e.check(), "{e:?}");
            assert_eq!(
                FailureClass::of_auth_failure(&AuthFailure::Software(e)),
                class
            );
        }
        let rom = AuthFailure::Rom(RomFailure {
            status: status::FAILURE,
            config: 0,
            state: 0,
            first_failure: None,
            events: 0,
        });
        assert_eq!(FailureClass::of_auth_failure(&rom), FailureClass::HabRom);
    }

    #[test]
    fn slot_follows_the_policy_decision() {
        use CopyVerdict::{Authentic, NotAuthentic};
        for p in [Authentic, NotAuthentic] {
            for s in [SitVerdict::Valid, SitVerdict::Invalid] {
                for q in [Authentic, NotAuthentic] {
                    let d = decide(p, || s, || q);
                    assert_eq!(slot_for_reason(Some(d.reason)), d.slot, "{d:?}");
                    assert_eq!(reason_from_code(d.reason as u32), Some(d.reason));
                }
            }
        }
        assert_eq!(reason_from_code(0), None);
        assert_eq!(reason_from_code(5), None);
    }

    #[test]
    fn shim_version_is_the_crate_version() {
        let v = ShimVersion::CURRENT;
        assert_eq!(v.to_string(), env!("CARGO_PKG_VERSION"));
        assert_eq!(ShimVersion::from_u32(v.to_u32()), v);
        assert_eq!(ShimVersion::from_u32(0x0001_0203).to_string(), "1.2.3");
    }

    #[test]
    fn error_messages_name_field_and_offset() {
        let mut cell = sample().encode();
        cell[0x20] ^= 1;
        let err = record_err(&cell);
        let msg = err.to_string();
        assert!(
            msg.starts_with("field `crc` at offset 0x3c: CRC-32 stored"),
            "{msg}"
        );
        let msg = CellError::NoRecord.to_string();
        assert!(msg.contains("no boot record"), "{msg}");
    }

    fn any_hab() -> impl Strategy<Value = EventSummary> {
        any::<[u8; 4]>().prop_map(|b| ev(b[0], b[1], b[2], b[3]))
    }

    fn any_copy() -> impl Strategy<Value = CopyReport> {
        prop_oneof![
            Just(CopyReport::NotExamined),
            (any_hab(), 0u8..8).prop_map(|(hab, bits)| CopyReport::Authentic {
                hab,
                warnings: Warnings::from_bits(bits).unwrap_or_default(),
            }),
            (
                prop::sample::select(FailureClass::ALL.to_vec()),
                any_hab(),
                prop::sample::select(vec![Part::Spl, Part::Fit]),
            )
                .prop_map(|(class, hab, part)| CopyReport::Rejected {
                    class,
                    hab,
                    part: Some(part),
                }),
        ]
    }

    fn any_record() -> impl Strategy<Value = BootRecord> {
        (
            prop::sample::select(vec![
                None,
                Some(Reason::PrimaryOk),
                Some(Reason::PrimaryFailed),
                Some(Reason::NoFallbackTable),
                Some(Reason::BothFailed),
            ]),
            any_copy(),
            any_copy(),
            prop::sample::select(SitStatus::ALL.to_vec()),
            any::<u32>(),
            any::<u32>(),
            prop::sample::select(RomLog::ALL.to_vec()),
            prop::sample::select(vec![None, Some(false), Some(true)]),
            any::<u32>(),
        )
            .prop_map(
                |(reason, primary, secondary, status, first_sector, stage, log, persist, v)| {
                    BootRecord {
                        reason,
                        primary,
                        secondary,
                        sit: SitReport {
                            status,
                            first_sector,
                        },
                        rom: RomInfo {
                            boot_stage: stage,
                            log,
                            persist_secondary: persist,
                        },
                        shim_version: ShimVersion::from_u32(v),
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn prop_round_trip(r in any_record()) {
            let cell = r.encode();
            let decoded = decode(&cell).unwrap();
            prop_assert_eq!(decoded.slot.slot(), Ok(r.slot()));
            prop_assert_eq!(decoded.record, Ok(r));
        }

        #[test]
        fn prop_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
            match decode(&bytes) {
                Err(e) => prop_assert!(bytes.len() < 4 && e.field() == "slot", "{e}"),
                Ok(cell) => {
                    let word = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                    prop_assert_eq!(cell.slot.raw(), word);
                    if let Ok(r) = cell.record {
                        prop_assert_eq!(&r.encode()[..], &bytes[..CELL_SIZE]);
                    }
                }
            }
        }

        /// Random bodies behind a right header and CRC reach every field check: decoding
        /// never panics, and whatever decodes re-encodes to the same bytes (canonical).
        #[test]
        fn prop_checksummed_random_records_never_panic(mut cell in any::<[u8; CELL_SIZE]>()) {
            cell[4..8].copy_from_slice(&MAGIC.to_le_bytes());
            cell[8..10].copy_from_slice(&VERSION.to_le_bytes());
            cell[10..12].copy_from_slice(&(CELL_SIZE as u16).to_le_bytes());
            fix_crc(&mut cell);
            let decoded = decode(&cell).unwrap();
            match decoded.record {
                Ok(r) => prop_assert_eq!(r.encode(), cell),
                Err(e) => {
                    prop_assert!(e.offset() < CELL_SIZE);
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }

        /// A valid record with one byte replaced and the CRC rewritten: either it decodes and
        /// re-encodes to the same bytes, or the error names a field at or before that byte.
        #[test]
        fn prop_mutated_records_are_rejected_or_canonical(
            r in any_record(),
            at in 0..CRC_OFFSET,
            value in any::<u8>(),
        ) {
            let mut cell = r.encode();
            cell[at] = value;
            fix_crc(&mut cell);
            let decoded = decode(&cell).unwrap();
            prop_assert_eq!(decoded.slot.raw(), u32::from_le_bytes(cell[..4].try_into().unwrap()));
            match decoded.record {
                Ok(d) => prop_assert_eq!(d.encode(), cell),
                // Fields of one group are checked against each other (a copy's outcome and
                // class, the SIT status and its first sector, the ROM log and its stage): the
                // error may name a later field of the group the changed byte belongs to.
                Err(e) => prop_assert!(
                    e.offset() <= at
                        || e.field() == "reason" && at < 4
                        || (0x10..0x30).contains(&at) && at / 8 == e.offset() / 8,
                    "byte {at:#x}: {e}"
                ),
            }
        }
    }
}
