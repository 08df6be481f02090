//! What a judgement concludes: the security rules it applies, the part of a copy a failure is in,
//! warnings on an accepted copy, and why a copy is not bootable ([`Failure`], [`Fault`]).

use core::fmt;

use boards::Region;
use imx_hab::hab::codes::{context, reason, status};
use imx_hab::hab::software::KeyKind;
use imx_hab::hab::{AuthFailure, EventSummary, Fuses};
use imx_hab::{ParseError, Structure};

use super::failure_event;
use crate::boot::handoff::HandoffError;
use crate::cell::FailureClass;
use crate::platform::MediaError;
use crate::rollback::RollbackFuses;

/// Whether HAB enforces on the part (SEC_CONFIG, imx8m-facts.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Closed: the ROM refuses an unsigned or failing SPL, and so does the shim for a FIT.
    Closed,
    /// Open: the ROM starts an unsigned SPL; unsigned images are accepted with a warning.
    Open,
}

impl Security {
    /// The security state the fuses say.
    pub const fn of(fuses: &Fuses) -> Self {
        if fuses.is_closed() {
            Security::Closed
        } else {
            Security::Open
        }
    }
}

crate::names! {
    /// Stable name (`closed`, `open`).
    Security {
        Closed => "closed",
        Open => "open",
    }
}

/// What the fuses make the judgement enforce beyond signatures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Closed or open (SEC_CONFIG).
    pub security: Security,
    /// The anti-rollback fuses: a FIT whose epoch is below their minimum is refused.
    pub rollback: RollbackFuses,
}

impl Rules {
    /// `security` with blank rollback fuses (minimum 0).
    pub const fn new(security: Security) -> Self {
        Rules {
            security,
            rollback: RollbackFuses::BLANK,
        }
    }

    /// What `fuses` say: SEC_CONFIG and the rollback bits.
    pub const fn of(fuses: &Fuses) -> Self {
        Rules {
            security: Security::of(fuses),
            rollback: RollbackFuses(fuses.rollback),
        }
    }
}

/// The half of a copy a failure is in. Stable codes (the cell's copy `part` byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Part {
    /// The SPL: what the ROM loads and authenticates (IVT at the copy's first byte).
    Spl = 1,
    /// The U-Boot FIT at the layout's FIT offset: what the shim authenticates and hands off to.
    Fit = 2,
}

impl Part {
    /// Stable name (`SPL`, `FIT`).
    pub const fn name(self) -> &'static str {
        match self {
            Part::Spl => "SPL",
            Part::Fit => "FIT",
        }
    }

    /// The part with this code.
    pub const fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Part::Spl),
            2 => Some(Part::Fit),
            _ => None,
        }
    }
}

/// What the SPL check established.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplCheck {
    /// Signed and authenticated by the board's backend.
    Authenticated,
    /// No signature, accepted because the part is open (as its ROM does).
    UnsignedOpen,
    /// Structure checked; the signature is the ROM's to judge (its HAB API cannot authenticate
    /// an SPL away from the address the running shim occupies).
    RomJudged,
}

/// Warnings on an accepted copy (the cell's copy `flags` byte; stable bits).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Warnings {
    /// The SPL is unsigned (open part).
    pub unsigned_spl: bool,
    /// The FIT is unsigned (open part).
    pub unsigned_fit: bool,
    /// The SPL's signature was left to the ROM.
    pub spl_rom_judged: bool,
}

impl Warnings {
    /// The flags byte: bit 0 unsigned SPL, bit 1 unsigned FIT, bit 2 SPL judged by the ROM.
    pub const fn bits(self) -> u8 {
        (self.unsigned_spl as u8)
            | (self.unsigned_fit as u8) << 1
            | (self.spl_rom_judged as u8) << 2
    }

    /// The warnings of a flags byte; `None` when an undefined bit is set.
    pub const fn from_bits(b: u8) -> Option<Self> {
        if b & !0b111 != 0 {
            return None;
        }
        Some(Warnings {
            unsigned_spl: b & 1 != 0,
            unsigned_fit: b & 2 != 0,
            spl_rom_judged: b & 4 != 0,
        })
    }

    /// Whether any warning is set.
    pub const fn any(self) -> bool {
        self.bits() != 0
    }
}

/// Why a copy is not bootable: the detail behind its [`FailureClass`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The medium failed while the copy was read.
    Read(MediaError),
    /// A structure (IVT, boot data, FIT header, the FIT's IVT) is malformed; offsets are
    /// relative to the copy's first byte.
    Parse(ParseError),
    /// The part is not signed and the part (SoC) is closed.
    NotSigned,
    /// What the part needs lies outside the copy's slot or the device.
    TooLarge {
        /// End of what must be read, relative to the copy.
        needed: u64,
        /// Bytes available from the copy's start (slot, or to the device's end).
        available: u64,
    },
    /// The FIT was signed for an address that puts the blob outside the board's FIT window.
    LoadAddress {
        /// Load address from the IVT.
        load: u64,
        /// Bytes the shim reads there.
        len: u64,
        /// The board's FIT window.
        window: Region,
    },
    /// The HAB backend rejected it.
    Auth(AuthFailure),
    /// Signed with a key the board's authenticator cannot verify.
    Algorithm {
        /// The board.
        board: &'static str,
        /// The SRK's key type.
        key: KeyKind,
    },
    /// Authentic, but the shim cannot hand off to it.
    Handoff(HandoffError),
    /// Authentic, but its security epoch is below the minimum in the rollback fuses.
    Rollback {
        /// The FIT's `rollback-index` (0 when absent).
        epoch: u32,
        /// The fuses' minimum.
        minimum: u32,
    },
}

/// A copy that is not bootable: in which part, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// SPL or FIT.
    pub part: Part,
    /// Why.
    pub fault: Fault,
}

impl Failure {
    pub(super) const fn spl(fault: Fault) -> Self {
        Failure {
            part: Part::Spl,
            fault,
        }
    }

    pub(super) const fn fit(fault: Fault) -> Self {
        Failure {
            part: Part::Fit,
            fault,
        }
    }

    /// The stable failure class (the one vocabulary of the cell, `--json` and the text).
    pub fn class(&self) -> FailureClass {
        match &self.fault {
            Fault::Read(_) => FailureClass::ReadError,
            Fault::Parse(e) if e.structure == Structure::Ivt => FailureClass::Ivt,
            Fault::Parse(_) => FailureClass::Structure,
            Fault::NotSigned => FailureClass::NotSigned,
            Fault::TooLarge { .. } => FailureClass::NotRead,
            Fault::LoadAddress { .. } => FailureClass::LoadAddress,
            Fault::Auth(a) => FailureClass::of_auth_failure(a),
            Fault::Algorithm { .. } => FailureClass::Algorithm,
            Fault::Handoff(HandoffError::Fit(_) | HandoffError::NoEntry) => FailureClass::Structure,
            Fault::Handoff(_) => FailureClass::LoadAddress,
            Fault::Rollback { .. } => FailureClass::Rollback,
        }
    }

    /// The HAB-style event: the backend's own for an authentication failure, else the ROM's
    /// closest reason and context.
    pub fn event(&self) -> EventSummary {
        let (r, c) = match &self.fault {
            Fault::Auth(a) => return a.event(),
            Fault::Read(_) => (reason::MEM_FAIL, context::AUTHENTICATE),
            Fault::Parse(e) if e.structure == Structure::Ivt => {
                (reason::INV_IVT, context::AUTHENTICATE)
            }
            Fault::Parse(_) | Fault::TooLarge { .. } => (reason::INV_SIZE, context::AUTHENTICATE),
            Fault::NotSigned => (reason::INV_CSF, context::AUTHENTICATE),
            Fault::Algorithm { .. } => (reason::UNS_ALGORITHM, context::AUTHENTICATE),
            Fault::LoadAddress { .. } | Fault::Handoff(_) => (reason::INV_ADDRESS, context::TARGET),
            // Not a HAB failure: HAB accepted it, and the event says so.
            Fault::Rollback { .. } => {
                return EventSummary {
                    status: status::SUCCESS,
                    reason: 0,
                    context: 0,
                    engine: 0,
                };
            }
        };
        failure_event(r, c)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let part = self.part.name();
        match &self.fault {
            Fault::Read(e) => write!(f, "{part}: read error: {e}"),
            Fault::Parse(e) if self.part == Part::Spl && e.offset == 0 && e.field == "tag" => {
                write!(
                    f,
                    "SPL: no boot image header at the copy's start (the ROM would not start it; \
                     an update may have been cut off): {e}"
                )
            }
            Fault::Parse(e) => write!(f, "{part}: {e}"),
            Fault::NotSigned => write!(
                f,
                "{part}: not signed, and the part is closed (its ROM or the shim refuses it)"
            ),
            Fault::TooLarge { needed, available } => write!(
                f,
                "{part}: needs {needed:#x} bytes from the copy's start, {available:#x} are available"
            ),
            Fault::LoadAddress { load, len, window } => write!(
                f,
                "{part}: signed for {load:#x}+{len:#x}, outside the board's FIT window {:#x}..{:#x}",
                window.start,
                window.end()
            ),
            Fault::Auth(e) => write!(f, "{part}: not authentic: {e}"),
            Fault::Algorithm { board, key } => write!(
                f,
                "{part}: signed with {key}, which {board}'s ROM cannot authenticate"
            ),
            Fault::Handoff(e) => write!(
                f,
                "{part}: authentic, but the shim cannot hand off to it: {e}"
            ),
            Fault::Rollback { epoch, minimum } => write!(
                f,
                "{part}: authentic, but its security epoch {epoch} is below the minimum {minimum} \
                 in the rollback fuses (a rolled-back image)"
            ),
        }
    }
}
