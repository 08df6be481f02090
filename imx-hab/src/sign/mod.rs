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
//!
//! # Byte layout
//!
//! The CSF is `D4 len ver`, then Install SRK, Install CSFK, Authenticate CSF, Install Key (slot
//! 0 → 2), Authenticate Data (key 2) and, with [`Engine::Caam`], `cst`'s automatic Unlock CAAM
//! RNG; then the SRK table, the CSFK certificate, the CSF signature, the image-key certificate
//! and the image signature, each 4-byte aligned with zero padding. Signatures are detached CMS
//! SignedData with signed attributes (contentType, signingTime, messageDigest), signed with
//! ECDSA P-256 / SHA-256 or RSA PKCS#1 v1.5 / SHA-256 by key type.
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
mod srk;

use core::fmt;

pub use csf::{Block, build_csf, sign_fit, sign_spl};
pub use keys::PrivateKey;
pub use pki::{CertKey, Pki, SignerKeys, TestPkiOptions};
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

/// How to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignOptions {
    /// CSF header version byte, also written into the certificate and signature records
    /// (`0x45` for `Version = 4.5`, `0x43` for 4.3). Must be `0x40..=0x4F`.
    pub csf_version: u8,
    /// Engine of the Authenticate commands.
    pub engine: Engine,
    /// Install SRK source index: which SRK table record (0-based) verifies the CSF and image
    /// key certificates. The PKI must hold CSF and image keys issued by that SRK.
    pub srk_index: u8,
    /// CMS signingTime as seconds since the Unix epoch (1950..2049: it is a UTCTime); `None`
    /// means the current time, as `cst` does.
    pub signing_time: Option<u64>,
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            csf_version: 0x45,
            engine: Engine::Any,
            srk_index: 0,
            signing_time: None,
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
