//! **TEST-KEY SIGNER. NOT FOR PRODUCTION KEYS.**
//!
//! This module (cargo feature `sign`, host only) makes HAB4-signed images byte-compatible with
//! what NXP's `cst` 3.3.1 writes (docs/hab4-format.md), so that the verifier, the CLI and the
//! firmware can be tested against images signed with keys made on the fly. It exists for tests
//! and development boards, and it is deliberately unfit for real keys:
//!
//! - [`Pki::generate_p256`] derives every private key **deterministically from a seed**: anyone
//!   who knows the seed has the keys. Never program the SRK hash of such a PKI into the fuses of
//!   a device that matters (fuses are one-time programmable).
//! - Private keys are kept in memory without zeroisation and written to disk **unencrypted**
//!   (PKCS#8 PEM/DER, [`Pki::write_dir`]).
//! - RSA signatures are computed without blinding, and nothing here defends against side
//!   channels.
//!
//! Production signing belongs to NXP's `cst` with an HSM or at least encrypted keys on an
//! offline machine.
//!
//! # What it does
//!
//! | function | output |
//! |---|---|
//! | [`Pki::generate_p256`] | a P-256 PKI shaped like `hab4_pki_tree.sh -use-ecc y -kl p256 -num-srk 4 -srk-ca y`: CA1, SRK1-4 (CA certificates), CSFn_1 / IMGn_1 (user certificates) for every SRK, the SRK table and fuse hash as `srktool` writes them |
//! | [`Pki::write_dir`], [`Pki::load_dir`] | the PKI as files in `cst`'s layout (`crts/`, `keys/`, `srk_table.bin`, `srk_fuse.bin`); `load_dir` also reads an RSA PKI made by `hab4_pki_tree.sh` once its keys are decrypted |
//! | [`srk_table_from_certificates`], [`srk_fuse_hash`] | the SRK table exactly as `srktool -h 4 -d sha256 -f 1 -c …` builds it, and its 32-byte fuse hash |
//! | [`sign_fit`] | FIT ‖ zero pad to `ALIGN(totalsize, 0x1000)` ‖ IVT ‖ CSF, with `cst`'s commands and records |
//! | [`sign_spl`] | the SPL part of a flash.bin, signed `nxp_imx8mcst.py`-style, CSF written where the SPL IVT's `csf` points |
//! | [`build_csf`] | the CSF alone, for any list of signed blocks |
//! | [`spl_image`] | the unsigned SPL (IVT, boot data, code, CSF slot) as `imx8mimage` lays it out |
//!
//! # Byte layout
//!
//! The CSF is `D4 len ver`, then Install SRK, Install CSFK, Authenticate CSF, Install Key (slot
//! 0 → 2), Authenticate Data (key 2) and, with [`Engine::Caam`], `cst`'s automatic Unlock CAAM
//! RNG; then the SRK table, the CSFK certificate, the CSF signature, the image-key certificate
//! and the image signature, each 4-byte aligned with zero padding (fast authentication: see
//! below). Signatures are detached CMS SignedData with signed attributes (contentType,
//! signingTime, messageDigest), signed with ECDSA P-256 / SHA-256 or RSA PKCS#1 v1.5 / SHA-256
//! by key type.
//!
//! # Fast authentication (`[Install NOCAK]`)
//!
//! With [`SignOptions::fast_auth`] the SRK itself signs the CSF and the image: no CSF key, no
//! image key, no certificates of theirs in the CSF. [`FastAuth::Cst`] reproduces what `cst`
//! 3.3.1 writes for a CSF text with `[Install SRK]`, `[Install NOCAK] File = SRKn certificate`,
//! `[Authenticate CSF]`, `[Authenticate Data] Verification index = 0` (`cst` source:
//! `cmd_handler_installnocak` writes no command, `cmd_handler_authenticatecsf` always names the
//! CSFK slot, `update_offsets_in_csf` and `main` append the NOCAK certificate). Compared with
//! Debian's `cst` 3.3.1 on a generated PKI, Engine ANY and CAAM: the commands, the SRK table
//! and the SRK certificate record are byte-identical, and so are the record offsets whenever
//! the ECDSA signatures have the same length; the signatures differ only by ECDSA nonce and
//! signing time, and name the same signer. There is no `cst`-made fast-authentication fixture
//! in the repository, so no test repeats that comparison.
//!
//! ```text
//! D4 len ver
//! be 00 0c 00  03 17 idx 00  <SRK table>        Install SRK
//!                                               (Install NOCAK writes no command)
//! ca 00 0c 00  01 c5 eng 00  <CSF signature>    Authenticate CSF: key 1 (the CSFK slot, though
//!                                               nothing was installed there)
//! ca len 00    00 c5 eng 00  <image signature> {start, length}...   Authenticate Data, key 0
//! [b2 00 08 1d 00 00 00 02]                     Unlock CAAM RNG (Engine::Caam)
//! SRK table, D7 SRK certificate (the NOCAK file; no command points to it), D8 CSF signature,
//! D8 image signature (4-aligned)
//! ```
//!
//! Both signatures are made with the SRK's private key, and their CMS signer identifier is the
//! SRK certificate's issuer and serial number. [`FastAuth::SrkSlot`] is the same without the
//! unreferenced SRK certificate record and with `key = 0` in Authenticate CSF: not what `cst`
//! writes, but the form imx-hab's software verifier accepts as fast authentication (it rejects
//! [`FastAuth::Cst`]'s key 1 because slot 1 is empty). `cst`'s form is the one NXP documents;
//! whether the ROM also accepts key 0 in Authenticate CSF is not established (no silicon).
//!
//! `hab4_pki_tree.sh -srk-ca n` makes the non-CA SRKs NXP intends for fast authentication;
//! [`Pki::generate_p256`] makes CA SRKs (`-srk-ca y`), which the software verifier accepts for
//! fast authentication as well (it does not require a non-CA key in slot 0). The SRK
//! certificate and private key must be in [`Pki::srks`] (generated PKIs have them; for a loaded
//! PKI, `keys/SRKn_…_key.pem` must be present and unencrypted).
//!
//! # Differences from `cst`
//!
//! Known differences from `cst` output, none of which changes a byte that HAB or `csf_parser`
//! looks at:
//! - ECDSA signatures are deterministic (RFC 6979) where `cst` uses random nonces, and the
//!   signing time is whatever [`SignOptions::signing_time`] says.
//! - In generated certificates the subject key identifier is the first 20 bytes of the SHA-256
//!   of the public key (RFC 7093 method 1); OpenSSL's `subjectKeyIdentifier = hash` uses SHA-1.
//!   The authority key identifier always matches the issuer's subject key identifier.

mod cert;
mod cms;
mod csf;
mod keys;
mod pki;
mod spl;
mod srk;

use core::fmt;

pub use csf::{Block, build_csf, sign_fit, sign_spl};
pub use keys::PrivateKey;
pub use pki::{CertKey, Pki, SignerKeys, TestPkiOptions};
pub use spl::{
    SPL_CSF_ALIGN, SPL_CSF_SLOT, SPL_HEADER_SIZE, boot_data, ivt, spl_csf_offset, spl_image,
};
pub use srk::{srk_fuse_hash, srk_table_from_certificates};

/// Engine of the Authenticate commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Engine {
    /// `Engine = ANY`: `eng` byte 0x00, no Unlock command.
    #[default]
    Any,
    /// `Engine = CAAM`: `eng` byte 0x1D, and `cst`'s automatic `Unlock CAAM RNG`
    /// (`b2 00 08 1d 00 00 00 02`) after the Authenticate Data command.
    Caam,
}

impl Engine {
    /// The `eng` byte of the Authenticate commands.
    pub const fn code(self) -> u8 {
        match self {
            Engine::Any => 0x00,
            Engine::Caam => crate::codes::ENG_CAAM,
        }
    }
}

/// Fast authentication: whether the SRK itself signs the CSF and the image (CST UG
/// `[Install NOCAK]`), and in which byte form (module documentation, "Fast authentication").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FastAuth {
    /// Normal authentication: Install CSFK, Authenticate CSF (key 1), Install Key (slot 0 → 2),
    /// Authenticate Data (key 2), with the CSF and image keys issued by the SRK.
    #[default]
    Off,
    /// What `cst` 3.3.1 writes for `[Install NOCAK]`: Install SRK, Authenticate CSF naming key
    /// slot 1 (the CSFK slot, left empty), Authenticate Data with key 0; the SRK certificate
    /// record follows the SRK table, referenced by no command. imx-hab's software verifier
    /// currently rejects this form (Authenticate CSF uses the empty slot 1).
    Cst,
    /// Install SRK, Authenticate CSF with key 0, Authenticate Data with key 0, no certificate
    /// records: the fast-authentication form imx-hab's software verifier accepts. Not `cst`
    /// output.
    SrkSlot,
}

/// How to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOptions {
    /// CSF header version byte, also written into the certificate and signature records
    /// (`0x45` for `Version = 4.5`, `0x43` for 4.3). Must be `0x40..=0x4F`.
    pub csf_version: u8,
    /// Engine of the Authenticate commands.
    pub engine: Engine,
    /// Install SRK source index: which SRK table record (0-based) verifies the CSF and image
    /// key certificates. The PKI must hold CSF and image keys issued by that SRK (with
    /// [`SignOptions::fast_auth`]: that SRK's certificate and private key).
    pub srk_index: u8,
    /// CMS signingTime as seconds since the Unix epoch (1950..2049: it is a UTCTime); `None`
    /// means the current time, as `cst` does.
    pub signing_time: Option<u64>,
    /// Fast authentication: SRK `srk_index` signs the CSF and the image itself (its
    /// certificate and private key must be in [`Pki::srks`]); no CSF or image key is used.
    pub fast_auth: FastAuth,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            csf_version: 0x45,
            engine: Engine::Any,
            srk_index: 0,
            signing_time: None,
            fast_auth: FastAuth::Off,
        }
    }
}

/// Why signing, key handling or PKI input/output failed.
#[derive(Debug)]
pub enum SignError {
    /// Encoding or decoding DER failed.
    Der(der::Error),
    /// A key could not be used or decoded.
    Key(String),
    /// A private key file is encrypted; decrypt it first (`openssl pkcs8 -topk8 -nocrypt`).
    EncryptedKey(String),
    /// The PKI has no private key for a role the signature needs.
    MissingKey(String),
    /// The input (image, options, PKI) is unusable; the text says why.
    Input(String),
    /// The input or a produced structure does not parse.
    Parse(crate::ParseError),
    /// Reading or writing a file failed.
    Io(std::path::PathBuf, std::io::Error),
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignError::Der(e) => write!(f, "DER: {e}"),
            SignError::Key(s) => write!(f, "key: {s}"),
            SignError::EncryptedKey(s) => write!(
                f,
                "{s}: the private key is encrypted; decrypt it first \
                 (openssl pkcs8 -in KEY -topk8 -nocrypt -out PLAIN)"
            ),
            SignError::MissingKey(s) => write!(f, "no private key for {s}"),
            SignError::Input(s) => f.write_str(s),
            SignError::Parse(e) => write!(f, "{e}"),
            SignError::Io(p, e) => write!(f, "{}: {e}", p.display()),
        }
    }
}

impl std::error::Error for SignError {}

impl From<der::Error> for SignError {
    fn from(e: der::Error) -> Self {
        SignError::Der(e)
    }
}

impl From<crate::ParseError> for SignError {
    fn from(e: crate::ParseError) -> Self {
        SignError::Parse(e)
    }
}

/// Result of the signer.
pub type SignResult<T> = core::result::Result<T, SignError>;
