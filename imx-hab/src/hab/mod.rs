//! Authentication "as the i.MX ROM does it" behind one trait (design.md §5; issue 3).
//!
//! [`Authenticator`] is implemented by the software HAB4 verifier ([`software`], used in QEMU and
//! on the host) and by the ROM's HAB API (`rom`, bare metal only). Both report failures in
//! HAB's own vocabulary (status, reason, context, engine: imx8m-facts.md §4.2), the software
//! verifier with a precise [`software::VerifyError`] on top.

pub mod codes;
pub mod event;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
pub mod rom;
pub mod software;

use core::fmt;

/// Fuse values HAB decides with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fuses {
    /// SRK hash exactly as `srktool` writes its fuse file (OCOTP bank 6-7 as LE words).
    pub srk_hash: [u8; 32],
    /// SEC_CONFIG word (OCOTP bank 1 word 3); bit 25 set = closed.
    pub sec_config: u32,
    /// SRK revocation mask: bit n set = SRK n revoked.
    pub srk_revoke_mask: u32,
    /// The 64 anti-rollback fuse bits (OCOTP GP1; block bytes 0x28..0x30). HAB ignores them;
    /// `boot_core::rollback` gives them their meaning.
    pub rollback: u64,
}

impl Fuses {
    /// SEC_CONFIG\[1\], the "closed" bit (imx8m-facts.md §6: bank 1 word 3 bit 25).
    pub const SEC_CONFIG_CLOSED: u32 = 1 << 25;

    /// Fuses of an open part with this SRK hash and nothing revoked.
    pub const fn open_with(srk_hash: [u8; 32]) -> Self {
        Fuses {
            srk_hash,
            sec_config: 0,
            srk_revoke_mask: 0,
            rollback: 0,
        }
    }

    /// Whether the part is closed (HAB enforces).
    pub const fn is_closed(&self) -> bool {
        self.sec_config & Self::SEC_CONFIG_CLOSED != 0
    }

    /// Whether SRK `index` is revoked.
    pub const fn is_revoked(&self, index: usize) -> bool {
        index < 32 && self.srk_revoke_mask & (1 << index) != 0
    }

    /// Decodes the simulator's 64-byte fuse block (boards `FuseSource::SimulatedBlock`):
    /// bytes 0..32 the SRK hash, 32..36 SEC_CONFIG (LE), 36..40 the revoke mask (LE), 40..48 the
    /// rollback bits (LE words 0 and 1). Bytes 48..52, the boot-device selection, are not HAB's:
    /// `boards::BootCfg::from_simulated_block` decodes them.
    pub fn from_simulated_block(block: &[u8; 64]) -> Self {
        let mut srk_hash = [0u8; 32];
        srk_hash.copy_from_slice(&block[..32]);
        let word = |at: usize| {
            u32::from_le_bytes([block[at], block[at + 1], block[at + 2], block[at + 3]])
        };
        Fuses {
            srk_hash,
            sec_config: word(32),
            srk_revoke_mask: word(36),
            rollback: u64::from(word(40)) | u64::from(word(44)) << 32,
        }
    }
}

/// What a successful authentication yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authenticated {
    /// The IVT's entry word.
    pub entry: u32,
    /// Offset of the IVT in the blob.
    pub ivt_offset: u64,
    /// Bytes covered by the image signature.
    pub signed_bytes: u64,
    /// The installed SRK's key type, where the backend can tell (the software verifier can;
    /// the ROM does not say).
    pub srk_key: Option<software::KeyKind>,
}

/// One HAB event, as `report_event` returns it or as the software verifier would log it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventSummary {
    /// HAB status (`codes::status`).
    pub status: u8,
    /// Reason (`codes::reason`).
    pub reason: u8,
    /// Context (`codes::context`).
    pub context: u8,
    /// Engine (`crate::codes::engine_name`).
    pub engine: u8,
}

/// What the ROM said when it did not authenticate an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RomFailure {
    /// Status returned by the failing call (or by `report_status`).
    pub status: u8,
    /// Security configuration from `report_status` (`codes::config`).
    pub config: u8,
    /// Security state from `report_status` (`codes::state`).
    pub state: u8,
    /// The first event whose status is not SUCCESS, if any.
    pub first_failure: Option<EventSummary>,
    /// Number of events the ROM logged.
    pub events: u32,
}

/// Why an image is not authentic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// The software verifier rejected it, with the check that failed.
    Software(software::VerifyError),
    /// The ROM rejected it (or logged a failure event on an open part).
    Rom(RomFailure),
}

impl AuthFailure {
    /// The HAB-style event describing the failure.
    pub fn event(&self) -> EventSummary {
        match self {
            AuthFailure::Software(e) => e.event(),
            AuthFailure::Rom(r) => r.first_failure.unwrap_or(EventSummary {
                status: r.status,
                reason: codes::reason::ANY,
                context: codes::context::ANY,
                engine: 0,
            }),
        }
    }
}

impl fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthFailure::Software(e) => e.fmt(f),
            AuthFailure::Rom(r) => {
                write!(
                    f,
                    "HAB ROM: status {:#04x}, config {:#04x}, state {:#04x}, {} event(s)",
                    r.status, r.config, r.state, r.events
                )?;
                if let Some(e) = r.first_failure {
                    write!(
                        f,
                        "; first failure: reason {} in context {}",
                        codes::reason_name(e.reason).unwrap_or("unknown"),
                        codes::context_name(e.context).unwrap_or("unknown")
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// Decides "authentic or not" for a signed blob that lies in memory at its load address.
///
/// `blob` is the signed FIT with its IVT and CSF (docs/hab4-format.md §2); on silicon it must
/// actually be at `load_address` in memory, because the ROM works on absolute addresses.
pub trait Authenticator {
    /// Authenticates `blob`, loaded at `load_address`.
    fn authenticate(
        &mut self,
        blob: &[u8],
        load_address: u64,
    ) -> Result<Authenticated, AuthFailure>;

    /// [`authenticate`](Self::authenticate), reporting the SHA-256 passes over signed content
    /// to `meter` where the backend can observe them (the software verifier does; the ROM's
    /// hashing is invisible and this default ignores the meter).
    fn authenticate_metered(
        &mut self,
        blob: &[u8],
        load_address: u64,
        meter: &mut dyn software::HashMeter,
    ) -> Result<Authenticated, AuthFailure> {
        let _ = meter;
        self.authenticate(blob, load_address)
    }

    /// Whether [`authenticate_spl`](Self::authenticate_spl) answers (so a caller reads an SPL
    /// only for a backend that will judge it).
    fn can_authenticate_spl(&self) -> bool {
        false
    }

    /// Authenticates an SPL image as the ROM does before it starts it: `spl` is what the ROM
    /// loads (IVT at offset 0, up to the boot data's size), judged as if placed at `IVT.self`.
    ///
    /// `None`: this backend cannot judge an SPL away from its load address (the ROM's HAB API
    /// works on absolute addresses, and an SPL's address is where the running shim sits); the
    /// ROM itself judged the copy it started. The software verifier always answers.
    fn authenticate_spl(&mut self, spl: &[u8]) -> Option<Result<Authenticated, AuthFailure>> {
        let _ = spl;
        None
    }
}
