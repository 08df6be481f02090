//! The software HAB4 verifier: authenticates a signed FIT at its load address the way the i.MX
//! ROM does (docs/hab4-format.md §6, §9), without allocation.
//!
//! The chain, in CSF command order: the SRK table hashes to the fuses; the installed SRK exists,
//! is a public key and is not revoked; the CSFK certificate is signed by that SRK; the CSF
//! signature (CMS, detached, signed attributes, SHA-256) over the CSF header and commands
//! verifies with the CSFK; each image key certificate is signed by the key in its source slot;
//! each image signature over its Authenticate Data blocks verifies with its image key. The
//! authenticated blocks must lie inside the blob and together cover `[load, load + ivt_offset +
//! 0x20)`: the FIT, its padding and the IVT. `IVT.self` must equal `load + ivt_offset`.
//! Fast-authentication CSFs (no CSFK: the SRK signs the CSF and the data) are accepted.
//!
//! ECDSA P-256 is verified everywhere; RSA PKCS#1 v1.5 (2048-4096 bit) needs the `std`
//! feature. Certificate validity dates are never checked (HAB does not).

use core::fmt;

use p256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

use super::codes::{context, reason, status};
use super::{AuthFailure, Authenticated, Authenticator, EventSummary, Fuses};
use crate::ParseError;
use crate::cms::CmsSignature;
use crate::csf::{Block, CommandKind, Csf, KeyRole, Referenced, Set};
use crate::image::SignedFit;
use crate::ivt::{IVT_SIZE, Ivt};
use crate::srk::{SrkKey, SrkKeyData};
use crate::x509::{Certificate, Curve, PublicKey, SignatureAlgorithm};

/// Number of HAB key slots: 0 SRK, 1 CSFK, 2-4 image keys.
pub const KEY_SLOTS: usize = 5;
/// Most Authenticate Data blocks the coverage check keeps track of.
pub const MAX_BLOCKS: usize = 32;

/// Which signature a failure is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureRole {
    /// The CSF signature (Authenticate CSF).
    Csf,
    /// An image signature (Authenticate Data) verified with key slot `key`.
    Image {
        /// The verifying key slot.
        key: u8,
    },
}

/// What was wrong with a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureFault {
    /// The messageDigest attribute differs from SHA-256 of the signed content.
    DigestMismatch,
    /// The signature value does not verify over the signed attributes.
    BadValue,
    /// The CMS names a signer other than the certificate of the verifying key.
    WrongSigner,
    /// The CMS lacks signed attributes or a 32-byte messageDigest.
    MissingAttributes,
    /// Digest or signature algorithm not SHA-256 with the key's type.
    Algorithm,
    /// The record's version byte differs from the CSF header's (cst writes the same).
    RecordVersion,
}

/// What was wrong with a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateFault {
    /// Its signature does not verify with the key in the source slot.
    NotSignedBySource,
    /// The source slot's key is not a CA key.
    SourceNotCa,
    /// Its signature algorithm does not match the source key's type.
    Algorithm,
    /// The record's version byte differs from the CSF header's (cst writes the same).
    RecordVersion,
}

/// Why a command is not acceptable where it stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandFault {
    /// Write Data, Check Data or Set MID: U-Boot refuses CSFs containing them.
    Forbidden,
    /// A second Install SRK.
    SrkAlreadyInstalled,
    /// Install SRK with a protocol, algorithm or target other than SRK / SHA-256 / slot 0.
    BadSrkInstall,
    /// Install Key into a slot that cannot hold it (CSFK not into 1, image keys not into 2-4).
    BadTarget,
    /// A key slot used before anything was installed in it.
    EmptySlot,
    /// An image key installed or data authenticated before the CSF was authenticated.
    CsfNotAuthenticated,
    /// Authenticate CSF with a key other than the CSFK (or the SRK in fast authentication).
    WrongCsfKey,
    /// Authenticate Data with the CSF key or with a CA key.
    WrongDataKey,
    /// The CSF was authenticated twice.
    CsfAlreadyAuthenticated,
    /// An Install Key whose certificate hash (HSH flag) is present: not supported.
    CertificateHash,
}

/// Why the software verifier rejected an image. Every variant names where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The image or its CSF is malformed.
    Parse(ParseError),
    /// `IVT.self` is not where the blob is loaded.
    IvtSelf {
        /// The IVT's `self`.
        found: u32,
        /// `load + ivt_offset`.
        expected: u64,
    },
    /// The IVT points to a DCD (U-Boot refuses them outside the ROM).
    IvtDcd {
        /// The `dcd` word.
        found: u32,
    },
    /// A command is not acceptable where it stands.
    Command {
        /// Offset of the command in the blob.
        offset: u64,
        /// What is wrong.
        fault: CommandFault,
    },
    /// The SRK table does not hash to the fuses.
    SrkHash {
        /// Offset of the SRK table in the blob.
        offset: u64,
        /// Hash of the table.
        computed: [u8; 32],
    },
    /// The installed SRK is a hash-only record, which cannot be installed.
    SrkHashOnly {
        /// The SRK index.
        index: u8,
    },
    /// The installed SRK is revoked in the fuses.
    SrkRevoked {
        /// The SRK index.
        index: u8,
    },
    /// A key of a type or size this verifier does not support.
    UnsupportedKey {
        /// Offset of the record holding the key.
        offset: u64,
        /// What kind of key it is.
        what: &'static str,
    },
    /// A certificate does not chain to its source key.
    Certificate {
        /// Key slot it was to be installed in.
        slot: u8,
        /// Offset of the certificate record in the blob.
        offset: u64,
        /// What is wrong.
        fault: CertificateFault,
    },
    /// A signature does not verify.
    Signature {
        /// Which signature.
        role: SignatureRole,
        /// Offset of the signature record in the blob.
        offset: u64,
        /// What is wrong.
        fault: SignatureFault,
        /// First block covered (image signatures).
        first_block: Option<Block>,
    },
    /// An Authenticate Data block lies outside the loaded blob.
    BlockOutsideImage {
        /// Offset of the command in the blob.
        offset: u64,
        /// Index of the block in its command.
        index: usize,
        /// The block.
        block: Block,
    },
    /// More blocks than this verifier tracks.
    TooManyBlocks,
    /// Part of `[load, load + ivt_offset + 0x20)` is not covered by an authenticated block.
    NotCovered {
        /// First uncovered address.
        from: u64,
        /// Where the required coverage ends.
        to: u64,
    },
    /// The CSF was never authenticated.
    CsfNotAuthenticated,
}

impl VerifyError {
    /// A short, stable name of the check that failed (used by tests and `--json`).
    pub fn check(&self) -> &'static str {
        match self {
            VerifyError::Parse(_) => "structure",
            VerifyError::IvtSelf { .. } | VerifyError::IvtDcd { .. } => "ivt",
            VerifyError::Command { .. } => "command",
            VerifyError::SrkHash { .. } => "srk-hash",
            VerifyError::SrkHashOnly { .. } | VerifyError::SrkRevoked { .. } => "srk-key",
            VerifyError::UnsupportedKey { .. } => "unsupported-key",
            VerifyError::Certificate { .. } => "certificate",
            VerifyError::Signature {
                role: SignatureRole::Csf,
                ..
            } => "csf-signature",
            VerifyError::Signature {
                role: SignatureRole::Image { .. },
                ..
            } => "image-signature",
            VerifyError::BlockOutsideImage { .. }
            | VerifyError::TooManyBlocks
            | VerifyError::NotCovered { .. } => "coverage",
            VerifyError::CsfNotAuthenticated => "csf-signature",
        }
    }

    /// The HAB-style event for this failure (status FAILURE, the ROM's closest reason/context).
    pub fn event(&self) -> EventSummary {
        let (r, c) = match self {
            VerifyError::Parse(_) => (reason::INV_CSF, context::CSF),
            VerifyError::IvtSelf { .. } => (reason::INV_IVT, context::AUTHENTICATE),
            VerifyError::IvtDcd { .. } => (reason::INV_DCD, context::AUTHENTICATE),
            VerifyError::Command {
                fault: CommandFault::Forbidden,
                ..
            } => (reason::UNS_COMMAND, context::CSF),
            VerifyError::Command { .. } => (reason::INV_CALL, context::COMMAND),
            VerifyError::SrkHash { .. }
            | VerifyError::SrkHashOnly { .. }
            | VerifyError::SrkRevoked { .. } => (reason::INV_KEY, context::COMMAND),
            VerifyError::UnsupportedKey { .. } => (reason::UNS_KEY, context::COMMAND),
            VerifyError::Certificate { .. } => (reason::INV_CERTIFICATE, context::COMMAND),
            VerifyError::Signature {
                role: SignatureRole::Csf,
                ..
            } => (reason::INV_SIGNATURE, context::COMMAND),
            VerifyError::Signature { .. } => (reason::INV_SIGNATURE, context::AUT_DAT),
            VerifyError::BlockOutsideImage { .. } => (reason::INV_ADDRESS, context::AUT_DAT),
            VerifyError::TooManyBlocks => (reason::OVR_STORAGE, context::AUT_DAT),
            VerifyError::NotCovered { .. } => (reason::INV_ASSERTION, context::AUTHENTICATE),
            VerifyError::CsfNotAuthenticated => (reason::INV_CSF, context::CSF),
        };
        EventSummary {
            status: status::FAILURE,
            reason: r,
            context: c,
            engine: 0,
        }
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VerifyError::Parse(e) => write!(f, "malformed: {e}"),
            VerifyError::IvtSelf { found, expected } => {
                write!(
                    f,
                    "IVT self is {found:#x} but the blob is loaded so that it sits at {expected:#x}"
                )
            }
            VerifyError::IvtDcd { found } => {
                write!(f, "IVT points to a DCD at {found:#x}; not allowed")
            }
            VerifyError::Command { offset, fault } => {
                let why = match fault {
                    CommandFault::Forbidden => {
                        "is Write Data, Check Data or Set MID, which are refused"
                    }
                    CommandFault::SrkAlreadyInstalled => "installs the SRK a second time",
                    CommandFault::BadSrkInstall => {
                        "installs the SRK with a protocol, algorithm or target other than SRK/SHA-256/0"
                    }
                    CommandFault::BadTarget => "installs a key into a slot that cannot hold it",
                    CommandFault::EmptySlot => "uses a key slot that holds no key",
                    CommandFault::CsfNotAuthenticated => "comes before the CSF is authenticated",
                    CommandFault::WrongCsfKey => {
                        "authenticates the CSF with a key other than the CSFK"
                    }
                    CommandFault::WrongDataKey => "authenticates data with the CSF key or a CA key",
                    CommandFault::CsfAlreadyAuthenticated => "authenticates the CSF a second time",
                    CommandFault::CertificateHash => {
                        "carries a certificate hash (HSH flag), which is not supported"
                    }
                };
                write!(f, "CSF command at {offset:#x} {why}")
            }
            VerifyError::SrkHash { offset, computed } => {
                write!(f, "SRK table at {offset:#x} hashes to ")?;
                for b in computed {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(", not to the SRK fuses")
            }
            VerifyError::SrkHashOnly { index } => write!(
                f,
                "SRK {index} is a hash-only record and cannot be installed"
            ),
            VerifyError::SrkRevoked { index } => write!(f, "SRK {index} is revoked in the fuses"),
            VerifyError::UnsupportedKey { offset, what } => write!(
                f,
                "key in the record at {offset:#x} is {what}: not supported"
            ),
            VerifyError::Certificate {
                slot,
                offset,
                fault,
            } => {
                let why = match fault {
                    CertificateFault::NotSignedBySource => "is not signed by its source key",
                    CertificateFault::SourceNotCa => "has a source key that is not a CA key",
                    CertificateFault::Algorithm => {
                        "uses a signature algorithm that does not match its source key"
                    }
                    CertificateFault::RecordVersion => "has a record version other than the CSF's",
                };
                write!(f, "certificate for key slot {slot} at {offset:#x} {why}")
            }
            VerifyError::Signature {
                role,
                offset,
                fault,
                first_block,
            } => {
                match role {
                    SignatureRole::Csf => f.write_str("CSF signature")?,
                    SignatureRole::Image { .. } => f.write_str("image signature")?,
                }
                let why = match fault {
                    SignatureFault::DigestMismatch => {
                        "messageDigest does not match the signed bytes"
                    }
                    SignatureFault::BadValue => "does not verify",
                    SignatureFault::WrongSigner => {
                        "names a signer other than the key's certificate"
                    }
                    SignatureFault::MissingAttributes => "lacks signed attributes or messageDigest",
                    SignatureFault::Algorithm => {
                        "uses an algorithm other than SHA-256 with the key's type"
                    }
                    SignatureFault::RecordVersion => "has a record version other than the CSF's",
                };
                write!(f, " at {offset:#x} {why}")?;
                match (role, first_block) {
                    (SignatureRole::Csf, _) => f.write_str(" over the CSF commands"),
                    (SignatureRole::Image { .. }, Some(b)) => {
                        write!(f, " over block 0 {:#x}+{:#x}", b.start, b.len)
                    }
                    (SignatureRole::Image { .. }, None) => Ok(()),
                }
            }
            VerifyError::BlockOutsideImage {
                offset,
                index,
                block,
            } => write!(
                f,
                "block {index} {:#x}+{:#x} of the command at {offset:#x} lies outside the loaded image",
                block.start, block.len
            ),
            VerifyError::TooManyBlocks => write!(f, "more than {MAX_BLOCKS} authenticated blocks"),
            VerifyError::NotCovered { from, to } => {
                write!(
                    f,
                    "bytes {from:#x}..{to:#x} (FIT, padding and IVT) are not covered by any image signature"
                )
            }
            VerifyError::CsfNotAuthenticated => f.write_str("the CSF is never authenticated"),
        }
    }
}

impl From<ParseError> for VerifyError {
    fn from(e: ParseError) -> Self {
        VerifyError::Parse(e)
    }
}

/// A verifying key in a HAB key slot.
#[derive(Debug, Clone, Copy)]
enum Key<'a> {
    P256(p256::ecdsa::VerifyingKey),
    Rsa {
        modulus: &'a [u8],
        exponent: &'a [u8],
    },
}

/// What a slot holds.
#[derive(Debug, Clone, Copy)]
struct Slot<'a> {
    key: Key<'a>,
    is_ca: bool,
    /// The certificate the key came from (none for the SRK).
    certificate: Option<Certificate<'a>>,
}

/// A key description for reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256.
    P256,
    /// RSA with this modulus size in bits.
    Rsa(u32),
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyKind::P256 => f.write_str("ECDSA P-256"),
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
        }
    }
}

impl Key<'_> {
    fn kind(&self) -> KeyKind {
        match self {
            Key::P256(_) => KeyKind::P256,
            Key::Rsa { modulus, exponent } => {
                KeyKind::Rsa(PublicKey::Rsa { modulus, exponent }.bits())
            }
        }
    }
}

/// What a successful verification established.
#[derive(Debug, Clone, Copy)]
pub struct Report<'a> {
    /// The IVT the ROM starts from.
    pub ivt: Ivt<'a>,
    /// Offset of the IVT in the blob.
    pub ivt_offset: u64,
    /// The CSF.
    pub csf: Csf<'a>,
    /// Offset of the CSF in the blob.
    pub csf_offset: u64,
    /// The load address it was verified at.
    pub load_address: u64,
    /// Index of the installed SRK.
    pub srk_index: u8,
    /// Type of the SRK.
    pub srk_key: KeyKind,
    /// The CSFK certificate (absent in fast authentication).
    pub csfk: Option<Certificate<'a>>,
    /// The image key certificate of the last Authenticate Data (absent in fast authentication).
    pub image_key: Option<Certificate<'a>>,
    /// Number of Authenticate Data blocks verified.
    pub blocks: usize,
    /// Bytes those blocks cover.
    pub signed_bytes: u64,
    /// HAB status the ROM would report (always SUCCESS here).
    pub status: u8,
}

/// The software implementation of [`Authenticator`].
#[derive(Debug, Clone, Copy)]
pub struct SoftwareHab {
    /// The fuse values to decide with.
    pub fuses: Fuses,
}

impl Authenticator for SoftwareHab {
    fn authenticate(
        &mut self,
        blob: &[u8],
        load_address: u64,
    ) -> Result<Authenticated, AuthFailure> {
        self.authenticate_metered(blob, load_address, &mut ())
    }

    fn authenticate_metered(
        &mut self,
        blob: &[u8],
        load_address: u64,
        meter: &mut dyn HashMeter,
    ) -> Result<Authenticated, AuthFailure> {
        let r = verify_metered(blob, load_address, &self.fuses, meter)
            .map_err(AuthFailure::Software)?;
        Ok(Authenticated::of_report(&r))
    }

    fn can_authenticate_spl(&self) -> bool {
        true
    }

    fn authenticate_spl(&mut self, spl: &[u8]) -> Option<Result<Authenticated, AuthFailure>> {
        Some(
            verify_spl_image(spl, &self.fuses)
                .map(|r| Authenticated::of_report(&r))
                .map_err(AuthFailure::Software),
        )
    }
}

impl Authenticated {
    /// What a software verification established, as the trait reports it.
    fn of_report(r: &Report<'_>) -> Self {
        Authenticated {
            entry: r.ivt.entry(),
            ivt_offset: r.ivt_offset,
            signed_bytes: r.signed_bytes,
            srk_key: Some(r.srk_key),
        }
    }
}

/// Verifies the signed FIT `blob` as loaded at `load_address` against `fuses`.
pub fn verify<'a>(
    blob: &'a [u8],
    load_address: u64,
    fuses: &Fuses,
) -> Result<Report<'a>, VerifyError> {
    verify_metered(blob, load_address, fuses, &mut ())
}

/// [`verify`], telling `meter` when the SHA-256 passes over signed content begin and end (the
/// shim's boot-time figures split hashing from signature checks with it).
pub fn verify_metered<'a>(
    blob: &'a [u8],
    load_address: u64,
    fuses: &Fuses,
    meter: &mut dyn HashMeter,
) -> Result<Report<'a>, VerifyError> {
    let image = SignedFit::parse(blob)?;
    let expected_self = load_address.wrapping_add(image.ivt_offset);
    if u64::from(image.ivt.self_addr()) != expected_self {
        return Err(VerifyError::IvtSelf {
            found: image.ivt.self_addr(),
            expected: expected_self,
        });
    }
    let must_cover = (load_address, expected_self + IVT_SIZE as u64);
    verify_chain(
        blob,
        load_address,
        image.ivt,
        image.ivt_offset,
        image.csf,
        image.csf_offset,
        fuses,
        must_cover,
        meter,
    )
}

/// Observes the verifier's SHA-256 passes over signed content (certificates' and signatures'
/// small digests are not reported). The unit type ignores them.
pub trait HashMeter {
    /// A pass over signed content starts.
    fn hash_start(&mut self);
    /// The pass that started last has ended, having hashed `bytes` bytes.
    fn hash_end(&mut self, bytes: u64);
}

impl HashMeter for () {
    fn hash_start(&mut self) {}
    fn hash_end(&mut self, _: u64) {}
}

/// Verifies the SPL of a flash.bin: the ROM places file offset 0 (the IVT) at `IVT.self`, and
/// the signature must cover everything from the IVT up to the CSF (U-Boot's binman convention:
/// sign base = loader - 0x40 = self, length = csf - self; docs/imx8m-facts.md §5).
pub fn verify_spl<'a>(
    flash_bin: &'a [u8],
    layout: &boards::MediaLayout,
    fuses: &Fuses,
) -> Result<Report<'a>, VerifyError> {
    crate::image::FlashBin::parse(flash_bin, layout)?;
    verify_spl_image(flash_bin, fuses)
}

/// Verifies an SPL image as the ROM loads it: `spl` starts with the IVT, which the ROM places
/// at `IVT.self`; the CSF is where `IVT.csf` points inside `spl`, and the image signatures must
/// cover `[self, csf)`. An unsigned SPL (no CSF, or a zeroed CSF slot) is
/// [`VerifyError::CsfNotAuthenticated`].
pub fn verify_spl_image<'a>(spl: &'a [u8], fuses: &Fuses) -> Result<Report<'a>, VerifyError> {
    let ivt = Ivt::parse(spl)?;
    let csf_offset = match ivt.csf() {
        0 => return Err(VerifyError::CsfNotAuthenticated),
        a => ivt
            .offset_of(a)
            .filter(|&o| o < spl.len() as u64)
            .ok_or(ParseError::invalid(
                crate::Structure::Ivt,
                "csf",
                0x18,
                "points outside the SPL image",
            ))?,
    };
    let at = &spl[csf_offset as usize..];
    if !Csf::has_header(at) {
        return Err(VerifyError::CsfNotAuthenticated);
    }
    let csf = Csf::parse(at).map_err(|e| e.shifted(csf_offset))?;
    let load = u64::from(ivt.self_addr());
    verify_chain(
        spl,
        load,
        ivt,
        0,
        csf,
        csf_offset,
        fuses,
        (load, load + csf_offset),
        &mut (),
    )
}

/// The chain of trust shared by FIT and SPL verification; `must_cover` is the address range the
/// image signatures together must cover.
#[allow(clippy::too_many_arguments)]
fn verify_chain<'a>(
    blob: &'a [u8],
    load_address: u64,
    ivt: Ivt<'a>,
    ivt_offset: u64,
    csf: Csf<'a>,
    csf_base: u64,
    fuses: &Fuses,
    must_cover: (u64, u64),
    meter: &mut dyn HashMeter,
) -> Result<Report<'a>, VerifyError> {
    if ivt.dcd() != 0 {
        return Err(VerifyError::IvtDcd { found: ivt.dcd() });
    }
    let mut slots: [Option<Slot<'a>>; KEY_SLOTS] = [None; KEY_SLOTS];
    let mut srk_index = None;
    let mut srk_kind = KeyKind::P256;
    let mut csf_authenticated = false;
    let mut image_key = None;
    let mut covered = Coverage::new();

    for cmd in csf.commands() {
        let at = csf_base + cmd.offset;
        let fault = |fault| VerifyError::Command { offset: at, fault };
        match cmd.kind {
            CommandKind::WriteData(_)
            | CommandKind::CheckData(_)
            | CommandKind::Set(Set::Mid { .. }) => {
                return Err(fault(CommandFault::Forbidden));
            }
            CommandKind::Set(Set::Engine { .. })
            | CommandKind::Unlock(_)
            | CommandKind::Init(_)
            | CommandKind::Nop => {}
            CommandKind::InstallKey(k) => {
                if k.hash.is_some() {
                    return Err(fault(CommandFault::CertificateHash));
                }
                match (k.role(), csf.referenced(&cmd)) {
                    (KeyRole::Srk, Some(Referenced::SrkTable(t))) => {
                        if slots[0].is_some() {
                            return Err(fault(CommandFault::SrkAlreadyInstalled));
                        }
                        if k.algorithm != crate::codes::ALG_SHA256 || k.target != 0 {
                            return Err(fault(CommandFault::BadSrkInstall));
                        }
                        let table_at = csf_base + t.record.offset;
                        let computed = t.table.hash();
                        if computed != fuses.srk_hash {
                            return Err(VerifyError::SrkHash {
                                offset: table_at,
                                computed,
                            });
                        }
                        let index = k.source;
                        // Csf::parse checked that the index exists in the table.
                        let srk = t
                            .table
                            .key(index.into())
                            .ok_or(fault(CommandFault::BadSrkInstall))?;
                        if fuses.is_revoked(index.into()) {
                            return Err(VerifyError::SrkRevoked { index });
                        }
                        let key = srk_key(&srk, index, table_at + srk.offset as u64)?;
                        srk_kind = key.kind();
                        slots[0] = Some(Slot {
                            key,
                            is_ca: srk.is_ca(),
                            certificate: None,
                        });
                        srk_index = Some(index);
                    }
                    (role, Some(Referenced::Certificate(c))) => {
                        let (source, target) = (usize::from(k.source), usize::from(k.target));
                        let ok_target = match role {
                            KeyRole::Csfk => target == 1 && source == 0,
                            _ => (2..KEY_SLOTS).contains(&target),
                        };
                        if !ok_target {
                            return Err(fault(CommandFault::BadTarget));
                        }
                        if role != KeyRole::Csfk && !csf_authenticated {
                            return Err(fault(CommandFault::CsfNotAuthenticated));
                        }
                        let src = slots
                            .get(source)
                            .copied()
                            .flatten()
                            .ok_or(fault(CommandFault::EmptySlot))?;
                        let rec_at = csf_base + c.record.offset;
                        let cert_err = |fault| VerifyError::Certificate {
                            slot: k.target,
                            offset: rec_at,
                            fault,
                        };
                        if c.record.version != csf.version() {
                            return Err(cert_err(CertificateFault::RecordVersion));
                        }
                        if !src.is_ca {
                            return Err(cert_err(CertificateFault::SourceNotCa));
                        }
                        check_certificate(&c.certificate, &src.key).map_err(cert_err)?;
                        let key = certificate_key(&c.certificate, rec_at)?;
                        slots[target] = Some(Slot {
                            key,
                            is_ca: c.certificate.is_ca,
                            certificate: Some(c.certificate),
                        });
                    }
                    // Csf::parse resolved every Install Key to a table or certificate.
                    _ => return Err(fault(CommandFault::BadSrkInstall)),
                }
            }
            CommandKind::Authenticate(a) => {
                let Some(Referenced::Signature(s)) = csf.referenced(&cmd) else {
                    return Err(fault(CommandFault::EmptySlot));
                };
                let sig_at = csf_base + s.record.offset;
                if s.record.version != csf.version() {
                    let role = if a.is_csf() {
                        SignatureRole::Csf
                    } else {
                        SignatureRole::Image { key: a.key }
                    };
                    let fault = SignatureFault::RecordVersion;
                    return Err(VerifyError::Signature {
                        role,
                        offset: sig_at,
                        fault,
                        first_block: a.blocks().next(),
                    });
                }
                let fast = slots[1].is_none();
                // cst's fast authentication ([Install NOCAK]) installs no CSFK yet names key 1
                // in Authenticate CSF: the SRK in slot 0 signs (observed with cst 3.3.1).
                let key_slot = if a.is_csf() && a.key == 1 && fast {
                    0
                } else {
                    a.key
                };
                let slot = slots
                    .get(usize::from(key_slot))
                    .copied()
                    .flatten()
                    .ok_or(fault(CommandFault::EmptySlot))?;
                if a.is_csf() {
                    if csf_authenticated {
                        return Err(fault(CommandFault::CsfAlreadyAuthenticated));
                    }
                    // The CSFK signs the CSF; in fast authentication (no CSFK) the SRK does.
                    if !(a.key == 1 || (a.key == 0 && fast)) {
                        return Err(fault(CommandFault::WrongCsfKey));
                    }
                    let content = [csf.signed_bytes()];
                    check_cms(&s.signature, &slot, content.iter().copied(), meter).map_err(
                        |fault| VerifyError::Signature {
                            role: SignatureRole::Csf,
                            offset: sig_at,
                            fault,
                            first_block: None,
                        },
                    )?;
                    csf_authenticated = true;
                } else {
                    if !csf_authenticated {
                        return Err(fault(CommandFault::CsfNotAuthenticated));
                    }
                    let allowed = if a.key == 0 {
                        fast
                    } else {
                        a.key >= 2 && !slot.is_ca
                    };
                    if !allowed {
                        return Err(fault(CommandFault::WrongDataKey));
                    }
                    // Every block must lie inside the loaded blob before anything is hashed.
                    for (index, block) in a.blocks().enumerate() {
                        if block_range(blob, load_address, &block).is_none() {
                            return Err(VerifyError::BlockOutsideImage {
                                offset: at,
                                index,
                                block,
                            });
                        }
                    }
                    let parts = a
                        .blocks()
                        .filter_map(|b| block_range(blob, load_address, &b).map(|r| &blob[r]));
                    let first_block = a.blocks().next();
                    check_cms(&s.signature, &slot, parts, meter).map_err(|fault| {
                        VerifyError::Signature {
                            role: SignatureRole::Image { key: a.key },
                            offset: sig_at,
                            fault,
                            first_block,
                        }
                    })?;
                    for b in a.blocks() {
                        covered.add(b)?;
                    }
                    image_key = slot.certificate;
                }
            }
        }
    }
    if !csf_authenticated {
        return Err(VerifyError::CsfNotAuthenticated);
    }
    if let Some(from) = covered.first_gap(must_cover.0, must_cover.1) {
        return Err(VerifyError::NotCovered {
            from,
            to: must_cover.1,
        });
    }
    Ok(Report {
        ivt,
        ivt_offset,
        csf,
        csf_offset: csf_base,
        load_address,
        srk_index: srk_index.unwrap_or(0),
        srk_key: srk_kind,
        csfk: slots[1].and_then(|s| s.certificate),
        image_key,
        blocks: covered.len,
        signed_bytes: covered.total(),
        status: status::SUCCESS,
    })
}

/// The byte range of `block` inside `blob` loaded at `load`, if it lies wholly inside.
pub(super) fn block_range(
    blob: &[u8],
    load: u64,
    block: &Block,
) -> Option<core::ops::Range<usize>> {
    let start = u64::from(block.start).checked_sub(load)?;
    let end = start.checked_add(block.len.into())?;
    if end > blob.len() as u64 {
        return None;
    }
    Some(start as usize..end as usize)
}

fn srk_key<'a>(srk: &SrkKey<'a>, index: u8, offset: u64) -> Result<Key<'a>, VerifyError> {
    match srk.data {
        SrkKeyData::HashOnly { .. } => Err(VerifyError::SrkHashOnly { index }),
        SrkKeyData::Ec {
            curve: Curve::P256,
            x,
            y,
        } => p256_key(x, y, offset),
        SrkKeyData::Ec { .. } => Err(VerifyError::UnsupportedKey {
            offset,
            what: "an EC key on a curve other than P-256",
        }),
        SrkKeyData::Rsa { modulus, exponent } => rsa_key(modulus, exponent, offset),
    }
}

fn certificate_key<'a>(cert: &Certificate<'a>, offset: u64) -> Result<Key<'a>, VerifyError> {
    match cert.public_key {
        PublicKey::Ec {
            curve: Curve::P256,
            point,
        } => match point {
            [0x04, xy @ ..] if xy.len() == 64 => {
                let (x, y) = xy.split_at(32);
                p256_key(x, y, offset)
            }
            _ => Err(VerifyError::UnsupportedKey {
                offset,
                what: "a P-256 point not in uncompressed form (0x04 || X || Y)",
            }),
        },
        PublicKey::Ec { .. } => Err(VerifyError::UnsupportedKey {
            offset,
            what: "an EC key on a curve other than P-256",
        }),
        PublicKey::Rsa { modulus, exponent } => rsa_key(modulus, exponent, offset),
    }
}

/// A P-256 verifying key from affine coordinates (big-endian, 32 bytes each), checked to be on
/// the curve. Only the uncompressed form is accepted (SRK tables store X and Y; `cst` and
/// OpenSSL write certificates that way), which also keeps point decompression (a field square
/// root) out of the firmware.
fn p256_key<'a>(x: &[u8], y: &[u8], offset: u64) -> Result<Key<'a>, VerifyError> {
    use p256::elliptic_curve::point::AffineCoordinates;
    let (Ok(x), Ok(y)) = (<[u8; 32]>::try_from(x), <[u8; 32]>::try_from(y)) else {
        return Err(VerifyError::UnsupportedKey {
            offset,
            what: "a P-256 coordinate that is not 32 bytes",
        });
    };
    Option::from(p256::AffinePoint::from_coordinates(&x.into(), &y.into()))
        .and_then(|p| p256::ecdsa::VerifyingKey::from_affine(p).ok())
        .map(Key::P256)
        .ok_or(VerifyError::UnsupportedKey {
            offset,
            what: "not a point on P-256",
        })
}

fn rsa_key<'a>(modulus: &'a [u8], exponent: &'a [u8], offset: u64) -> Result<Key<'a>, VerifyError> {
    let bits = PublicKey::Rsa { modulus, exponent }.bits();
    if !(2048..=4096).contains(&bits) {
        return Err(VerifyError::UnsupportedKey {
            offset,
            what: "an RSA key outside 2048-4096 bits",
        });
    }
    if cfg!(feature = "std") {
        Ok(Key::Rsa { modulus, exponent })
    } else {
        Err(VerifyError::UnsupportedKey {
            offset,
            what: "an RSA key (RSA needs the `std` feature)",
        })
    }
}

/// Checks that `cert` is signed by `issuer` (over its `tbsCertificate`, SHA-256).
fn check_certificate(cert: &Certificate<'_>, issuer: &Key<'_>) -> Result<(), CertificateFault> {
    let digest: [u8; 32] = Sha256::digest(cert.tbs).into();
    match (issuer, cert.signature_algorithm) {
        (Key::P256(_), SignatureAlgorithm::EcdsaSha256)
        | (Key::Rsa { .. }, SignatureAlgorithm::RsaSha256) => {}
        _ => return Err(CertificateFault::Algorithm),
    }
    if verify_digest(issuer, &digest, cert.signature) {
        Ok(())
    } else {
        Err(CertificateFault::NotSignedBySource)
    }
}

/// Checks a CMS signature over the concatenation of `content` with the key in `slot`.
fn check_cms<'c>(
    cms: &CmsSignature<'_>,
    slot: &Slot<'_>,
    content: impl Iterator<Item = &'c [u8]>,
    meter: &mut dyn HashMeter,
) -> Result<(), SignatureFault> {
    if !cms.strict_sha256 {
        return Err(SignatureFault::Algorithm);
    }
    match (slot.key, cms.signature_algorithm) {
        (Key::P256(_), SignatureAlgorithm::EcdsaSha256)
        | (Key::Rsa { .. }, SignatureAlgorithm::Rsa) => {}
        (Key::Rsa { .. }, SignatureAlgorithm::RsaSha256) => {}
        _ => return Err(SignatureFault::Algorithm),
    }
    if let Some(cert) = &slot.certificate
        && (cms.signer_serial != cert.serial || cms.signer_issuer.raw() != cert.issuer.raw())
    {
        return Err(SignatureFault::WrongSigner);
    }
    let (Some(attrs), Some(md)) = (cms.signed_attributes, cms.message_digest) else {
        return Err(SignatureFault::MissingAttributes);
    };
    if md.len() != 32 {
        return Err(SignatureFault::MissingAttributes);
    }
    meter.hash_start();
    let mut h = Sha256::new();
    let mut hashed = 0u64;
    for part in content {
        h.update(part);
        hashed += part.len() as u64;
    }
    let content_digest = h.finalize();
    meter.hash_end(hashed);
    if content_digest.as_slice() != md {
        return Err(SignatureFault::DigestMismatch);
    }
    // The signature covers the DER of signedAttrs with its [0] IMPLICIT tag replaced by SET.
    let mut h = Sha256::new();
    h.update([0x31]);
    h.update(&attrs[1..]);
    let digest: [u8; 32] = h.finalize().into();
    if verify_digest(&slot.key, &digest, cms.signature) {
        Ok(())
    } else {
        Err(SignatureFault::BadValue)
    }
}

/// Verifies a signature over a SHA-256 digest: DER ECDSA for P-256, PKCS#1 v1.5 for RSA.
fn verify_digest(key: &Key<'_>, digest: &[u8; 32], signature: &[u8]) -> bool {
    match key {
        Key::P256(k) => match p256::ecdsa::Signature::from_der(signature) {
            Ok(sig) => k.verify_prehash(digest, &sig).is_ok(),
            Err(_) => false,
        },
        Key::Rsa { modulus, exponent } => rsa_verify(modulus, exponent, digest, signature),
    }
}

/// DER DigestInfo prefix for SHA-256 (RFC 8017 §9.2 note 1).
#[cfg(feature = "std")]
const SHA256_DIGEST_INFO: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// RSASSA-PKCS1-v1_5 verification with SHA-256 (RFC 8017 §8.2.2), on the host only.
#[cfg(feature = "std")]
fn rsa_verify(modulus: &[u8], exponent: &[u8], digest: &[u8; 32], signature: &[u8]) -> bool {
    use num_bigint::BigUint;
    let n = BigUint::from_bytes_be(modulus);
    let k = modulus.iter().skip_while(|&&b| b == 0).count();
    if signature.len() != k {
        return false;
    }
    let s = BigUint::from_bytes_be(signature);
    if s >= n {
        return false;
    }
    let m = s
        .modpow(&BigUint::from_bytes_be(exponent), &n)
        .to_bytes_be();
    if m.len() > k {
        return false;
    }
    // EM = 0x00 || 0x01 || PS (0xFF, at least 8) || 0x00 || DigestInfo || H; `m` lacks the
    // leading zero byte.
    let tail = SHA256_DIGEST_INFO.len() + digest.len();
    if k < tail + 11 || m.len() != k - 1 {
        return false;
    }
    let ps_len = k - 3 - tail;
    m[0] == 0x01
        && m[1..1 + ps_len].iter().all(|&b| b == 0xFF)
        && m[1 + ps_len] == 0x00
        && m[2 + ps_len..2 + ps_len + SHA256_DIGEST_INFO.len()] == SHA256_DIGEST_INFO
        && m[k - 1 - digest.len()..] == digest[..]
}

#[cfg(not(feature = "std"))]
fn rsa_verify(_: &[u8], _: &[u8], _: &[u8; 32], _: &[u8]) -> bool {
    // rsa_key() refuses RSA keys without `std`, so no RSA key reaches here.
    false
}

/// The authenticated blocks, for the coverage check (shared with the ROM binding's pre-checks).
pub(super) struct Coverage {
    blocks: [Block; MAX_BLOCKS],
    len: usize,
}

impl Coverage {
    pub(super) fn new() -> Self {
        Coverage {
            blocks: [Block { start: 0, len: 0 }; MAX_BLOCKS],
            len: 0,
        }
    }

    pub(super) fn add(&mut self, b: Block) -> Result<(), VerifyError> {
        let slot = self
            .blocks
            .get_mut(self.len)
            .ok_or(VerifyError::TooManyBlocks)?;
        *slot = b;
        self.len += 1;
        Ok(())
    }

    pub(super) fn total(&self) -> u64 {
        self.blocks[..self.len]
            .iter()
            .map(|b| u64::from(b.len))
            .sum()
    }

    /// The first address in `[from, to)` no block covers, if any.
    pub(super) fn first_gap(&self, from: u64, to: u64) -> Option<u64> {
        let mut cursor = from;
        while cursor < to {
            let next = self.blocks[..self.len]
                .iter()
                .filter(|b| {
                    u64::from(b.start) <= cursor && cursor < u64::from(b.start) + u64::from(b.len)
                })
                .map(|b| u64::from(b.start) + u64::from(b.len))
                .max();
            // No block covers `cursor`: that is the gap.
            let Some(next) = next else {
                return Some(cursor);
            };
            cursor = next;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cov(blocks: &[(u32, u32)]) -> Coverage {
        let mut c = Coverage::new();
        for &(start, len) in blocks {
            c.add(Block { start, len }).unwrap();
        }
        c
    }

    /// cst's CSF key certificate (P-256, uncompressed point), signed by SRK 1.
    const CSF1_CERT: &[u8] = include_bytes!(
        "../../../tests/fixtures/hab4/ecc-p256/crts/CSF1_1_sha256_prime256v1_v3_usr_crt.der"
    );

    #[test]
    fn certificate_keys_must_be_uncompressed_points_on_p256() {
        let cert = Certificate::parse(CSF1_CERT).unwrap();
        let PublicKey::Ec { point, .. } = cert.public_key else {
            panic!("the fixture holds an EC key");
        };
        assert_eq!((point.len(), point[0]), (65, 0x04));
        assert!(matches!(certificate_key(&cert, 7), Ok(Key::P256(_))));

        // The same X in compressed form (SEC1 0x02/0x03 || X): refused, not decompressed.
        let mut compressed = [0u8; 33];
        compressed[0] = 0x02 | (point[64] & 1);
        compressed[1..].copy_from_slice(&point[1..33]);
        let mut c = cert;
        c.public_key = PublicKey::Ec {
            curve: Curve::P256,
            point: &compressed,
        };
        match certificate_key(&c, 7) {
            Err(VerifyError::UnsupportedKey { offset: 7, what }) => {
                assert!(what.contains("uncompressed"), "{what}")
            }
            other => panic!("compressed point: {other:?}"),
        }

        // Y off by one: not on the curve.
        let mut off_curve = [0u8; 65];
        off_curve.copy_from_slice(point);
        off_curve[64] ^= 1;
        c.public_key = PublicKey::Ec {
            curve: Curve::P256,
            point: &off_curve,
        };
        match certificate_key(&c, 9) {
            Err(VerifyError::UnsupportedKey { offset: 9, what }) => {
                assert_eq!(what, "not a point on P-256")
            }
            other => panic!("off-curve point: {other:?}"),
        }
    }

    #[test]
    fn coverage_finds_the_first_uncovered_address() {
        assert_eq!(cov(&[(0x100, 0x100)]).first_gap(0x100, 0x200), None);
        assert_eq!(cov(&[(0x100, 0xE0)]).first_gap(0x100, 0x200), Some(0x1E0));
        assert_eq!(cov(&[(0x180, 0x80)]).first_gap(0x100, 0x200), Some(0x100));
        assert_eq!(
            cov(&[(0x100, 0x80), (0x180, 0x80)]).first_gap(0x100, 0x200),
            None
        );
        assert_eq!(
            cov(&[(0x100, 0x40), (0x180, 0x80)]).first_gap(0x100, 0x200),
            Some(0x140)
        );
        assert_eq!(
            cov(&[(0x180, 0x80), (0x100, 0x90)]).first_gap(0x100, 0x200),
            None
        );
        assert_eq!(cov(&[]).first_gap(0x100, 0x200), Some(0x100));
    }

    #[test]
    fn more_blocks_than_tracked_is_an_error() {
        let mut c = Coverage::new();
        for i in 0..MAX_BLOCKS as u32 {
            c.add(Block { start: i, len: 1 }).unwrap();
        }
        assert_eq!(
            c.add(Block { start: 0, len: 1 }),
            Err(VerifyError::TooManyBlocks)
        );
    }
}
