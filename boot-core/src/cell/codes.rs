//! The cell's stable code tables: reasons, failure classes, SIT statuses, ROM log codes.

use core::fmt;

use imx_hab::hab::AuthFailure;
use imx_hab::hab::software::{SignatureRole, VerifyError};

use crate::policy::{Reason, SitVerdict, Slot};

/// The slot word a reason implies (design.md §5 table): primary-ok → 1, primary-failed → 2,
/// no-fallback-table and both-failed → 0; no reason (the shim stopped before deciding) → 0.
pub const fn slot_for_reason(reason: Option<Reason>) -> Option<Slot> {
    match reason {
        Some(Reason::PrimaryOk | Reason::RomSecondaryFailed) => Some(Slot::Primary),
        Some(Reason::PrimaryFailed | Reason::RomSecondary) => Some(Slot::Secondary),
        Some(Reason::NoFallbackTable | Reason::BothFailed) | None => None,
    }
}

/// The stable name of a reason, as in design.md §5 (`primary-ok`, `primary-failed`,
/// `no-fallback-table`, `both-failed`, `rom-secondary`, `rom-secondary-failed`).
pub const fn reason_name(reason: Reason) -> &'static str {
    match reason {
        Reason::PrimaryOk => "primary-ok",
        Reason::PrimaryFailed => "primary-failed",
        Reason::NoFallbackTable => "no-fallback-table",
        Reason::BothFailed => "both-failed",
        Reason::RomSecondary => "rom-secondary",
        Reason::RomSecondaryFailed => "rom-secondary-failed",
    }
}

/// The reason with this stable value (`Reason as u32`), if any; 0 is "none" and is not a reason.
pub const fn reason_from_code(code: u32) -> Option<Reason> {
    match code {
        1 => Some(Reason::PrimaryOk),
        2 => Some(Reason::PrimaryFailed),
        3 => Some(Reason::NoFallbackTable),
        4 => Some(Reason::BothFailed),
        5 => Some(Reason::RomSecondary),
        6 => Some(Reason::RomSecondaryFailed),
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
    /// `rollback` (17): authentic, but the FIT's security epoch is below the minimum in the
    /// rollback fuses (version 3).
    Rollback = 17,
}

impl FailureClass {
    /// Every class, in code order.
    pub const ALL: [FailureClass; 17] = [
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
        FailureClass::Rollback,
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

crate::names! {
    /// The stable name: for the verifier's classes exactly [`VerifyError::check`]'s name.
    FailureClass {
        Structure => "structure",
        Ivt => "ivt",
        Command => "command",
        SrkHash => "srk-hash",
        SrkKey => "srk-key",
        UnsupportedKey => "unsupported-key",
        Certificate => "certificate",
        CsfSignature => "csf-signature",
        ImageSignature => "image-signature",
        Coverage => "coverage",
        LoadAddress => "load-address",
        ReadError => "read-error",
        NotRead => "not-read",
        HabRom => "hab-rom",
        NotSigned => "not-signed",
        Algorithm => "algorithm",
        Rollback => "rollback",
    }
}

impl fmt::Display for FailureClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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
