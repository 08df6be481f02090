//! Private keys of the test signer: P-256 (derived from a seed or loaded) and RSA (loaded).

use std::fmt;
use std::path::Path;

use der::asn1::{AnyRef, Null};
use der::pem::{self, LineEnding};
use der::{Decode, oid::ObjectIdentifier};
use p256::ecdsa::signature::Signer;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::pkcs1::DecodeRsaPrivateKey;
use rsa::signature::SignatureEncoding;
use rsa::traits::PublicKeyParts;
use sha2::{Digest, Sha256};
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::{SignError, SignResult};

/// ecdsa-with-SHA256 (RFC 5758).
pub(crate) const ECDSA_WITH_SHA256: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.2");
/// sha256WithRSAEncryption (RFC 4055).
pub(crate) const SHA256_WITH_RSA: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.11");
/// rsaEncryption (RFC 8017), what `cst` writes as the CMS signature algorithm of RSA signers.
pub(crate) const RSA_ENCRYPTION: ObjectIdentifier =
    ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Smallest and largest RSA modulus accepted, in bits.
const RSA_BITS: core::ops::RangeInclusive<usize> = 2048..=4096;

/// A private key that can make HAB4 signatures: ECDSA P-256 or RSA (2048-4096 bits).
///
/// **Test keys only**: nothing here is hardened (no zeroisation, no RSA blinding).
#[derive(Clone)]
pub enum PrivateKey {
    /// An ECDSA P-256 key; signatures are deterministic (RFC 6979) ECDSA with SHA-256.
    P256(p256::ecdsa::SigningKey),
    /// An RSA key; signatures are PKCS#1 v1.5 with SHA-256.
    Rsa(Box<rsa::PrivateKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateKey({})", self.describe())
    }
}

impl PrivateKey {
    /// Derives a P-256 key from `seed` and `label`: the scalar is
    /// `SHA-256("imx-hab test PKI v1" ‖ len(seed) ‖ seed ‖ label ‖ counter)` for the first
    /// counter that gives a valid scalar. Same seed and label, same key: **anyone who knows the
    /// seed has the key**.
    pub fn derive_p256(seed: &[u8], label: &str) -> Self {
        for counter in 0u32.. {
            let mut h = Sha256::new();
            h.update(b"imx-hab test PKI v1\0");
            h.update((seed.len() as u64).to_be_bytes());
            h.update(seed);
            h.update(label.as_bytes());
            h.update(b"\0");
            h.update(counter.to_be_bytes());
            if let Ok(k) = p256::ecdsa::SigningKey::from_slice(&h.finalize()) {
                return PrivateKey::P256(k);
            }
        }
        unreachable!("2^32 consecutive SHA-256 outputs outside the P-256 scalar range")
    }

    /// Decodes an unencrypted private key in PEM (text before `-----BEGIN` is ignored): `PRIVATE KEY` (PKCS#8, EC P-256 or RSA),
    /// `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1, P-256).
    pub fn from_pem(text: &str) -> SignResult<Self> {
        let text = pem_text(text.as_bytes()).unwrap_or(text);
        let (label, der) = pem::decode_vec(text.trim().as_bytes())
            .map_err(|e| SignError::Key(format!("PEM: {e}")))?;
        match label {
            "ENCRYPTED PRIVATE KEY" => Err(SignError::EncryptedKey("PEM key".into())),
            "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY" => Self::from_der(&der),
            other => Err(SignError::Key(format!(
                "PEM label {other:?} is not a private key"
            ))),
        }
    }

    /// Decodes an unencrypted private key in DER: PKCS#8 (EC P-256 or RSA), PKCS#1 (RSA) or
    /// SEC1 (P-256).
    pub fn from_der(der: &[u8]) -> SignResult<Self> {
        let key = if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_der(der) {
            PrivateKey::P256(k)
        } else if let Ok(k) = rsa::PrivateKey::from_pkcs8_der(der) {
            PrivateKey::Rsa(Box::new(k))
        } else if let Ok(k) = rsa::PrivateKey::from_pkcs1_der(der) {
            PrivateKey::Rsa(Box::new(k))
        } else if let Ok(k) = p256::SecretKey::from_sec1_der(der) {
            PrivateKey::P256(k.into())
        } else if looks_encrypted(der) {
            return Err(SignError::EncryptedKey("DER key".into()));
        } else {
            return Err(SignError::Key(
                "not an unencrypted PKCS#8, PKCS#1 or SEC1 key of type P-256 or RSA".into(),
            ));
        };
        if let PrivateKey::Rsa(k) = &key {
            let bits = k.size() * 8;
            if !RSA_BITS.contains(&bits) {
                return Err(SignError::Key(format!(
                    "RSA-{bits}: only RSA-2048 to RSA-4096 keys are supported"
                )));
            }
        }
        Ok(key)
    }

    /// Reads a key file, PEM or DER (see [`PrivateKey::from_pem`], [`PrivateKey::from_der`]).
    pub fn from_file(path: &Path) -> SignResult<Self> {
        let bytes = std::fs::read(path).map_err(|e| SignError::Io(path.to_path_buf(), e))?;
        let name = |e: SignError| match e {
            SignError::EncryptedKey(_) => SignError::EncryptedKey(path.display().to_string()),
            SignError::Key(s) => SignError::Key(format!("{}: {s}", path.display())),
            other => other,
        };
        match pem_text(&bytes) {
            Some(text) => Self::from_pem(text).map_err(name),
            None => Self::from_der(&bytes).map_err(name),
        }
    }

    /// The key as unencrypted PKCS#8 DER.
    pub fn to_pkcs8_der(&self) -> SignResult<Vec<u8>> {
        let doc = match self {
            PrivateKey::P256(k) => k.to_pkcs8_der(),
            PrivateKey::Rsa(k) => rsa::pkcs8::EncodePrivateKey::to_pkcs8_der(k.as_ref()),
        }
        .map_err(|e| SignError::Key(format!("PKCS#8 encoding: {e}")))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub fn to_pkcs8_pem(&self) -> SignResult<String> {
        pem::encode_string("PRIVATE KEY", LineEnding::LF, &self.to_pkcs8_der()?)
            .map_err(|e| SignError::Key(format!("PEM encoding: {e}")))
    }

    /// The public key as a DER SubjectPublicKeyInfo.
    pub fn public_key_der(&self) -> SignResult<Vec<u8>> {
        let doc = match self {
            PrivateKey::P256(k) => k.verifying_key().to_public_key_der(),
            PrivateKey::Rsa(k) => {
                rsa::pkcs8::EncodePublicKey::to_public_key_der(&k.to_public_key())
            }
        }
        .map_err(|e| SignError::Key(format!("SPKI encoding: {e}")))?;
        Ok(doc.as_bytes().to_vec())
    }

    /// `ECDSA P-256` or `RSA-<bits>`.
    pub fn describe(&self) -> String {
        match self {
            PrivateKey::P256(_) => "ECDSA P-256".into(),
            PrivateKey::Rsa(k) => format!("RSA-{}", k.size() * 8),
        }
    }

    /// Signs SHA-256(`msg`): a DER `Ecdsa-Sig-Value` for P-256, the raw PKCS#1 v1.5 signature
    /// (modulus length) for RSA.
    pub(crate) fn sign_sha256(&self, msg: &[u8]) -> SignResult<Vec<u8>> {
        self.sign_sha256_variant(msg, 0)
    }

    /// [`PrivateKey::sign_sha256`], where ECDSA variant `n > 0` feeds `n` to RFC 6979 as
    /// additional data: another valid signature (of possibly another DER length), still
    /// deterministic. RSA PKCS#1 v1.5 has a single signature and ignores `n`.
    pub(crate) fn sign_sha256_variant(&self, msg: &[u8], n: u32) -> SignResult<Vec<u8>> {
        match self {
            PrivateKey::P256(k) => {
                let sig: p256::ecdsa::Signature = if n == 0 {
                    k.try_sign(msg)
                        .map_err(|e| SignError::Key(format!("ECDSA: {e}")))?
                } else {
                    ecdsa::hazmat::sign_prehashed_rfc6979::<p256::NistP256, Sha256>(
                        k.as_nonzero_scalar(),
                        &Sha256::digest(msg),
                        &n.to_be_bytes(),
                    )
                    .0
                };
                Ok(sig.to_der().as_bytes().to_vec())
            }
            PrivateKey::Rsa(k) => {
                let signer = rsa::pkcs1v15::SigningKey::<Sha256>::new(k.as_ref().clone());
                let sig = signer
                    .try_sign(msg)
                    .map_err(|e| SignError::Key(format!("RSA: {e}")))?;
                Ok(sig.to_vec())
            }
        }
    }

    /// signatureAlgorithm of a certificate this key signs: ecdsa-with-SHA256 (no parameters)
    /// or sha256WithRSAEncryption (NULL parameters).
    pub(crate) fn certificate_algorithm(&self) -> SignResult<AlgorithmIdentifierOwned> {
        Ok(match self {
            PrivateKey::P256(_) => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            PrivateKey::Rsa(_) => AlgorithmIdentifierOwned {
                oid: SHA256_WITH_RSA,
                parameters: Some(Null.into()),
            },
        })
    }

    /// signatureAlgorithm of a CMS SignerInfo this key signs, as `cst` writes it:
    /// ecdsa-with-SHA256 (no parameters) or rsaEncryption (NULL parameters).
    pub(crate) fn cms_algorithm(&self) -> AlgorithmIdentifierOwned {
        match self {
            PrivateKey::P256(_) => AlgorithmIdentifierOwned {
                oid: ECDSA_WITH_SHA256,
                parameters: None,
            },
            PrivateKey::Rsa(_) => AlgorithmIdentifierOwned {
                oid: RSA_ENCRYPTION,
                parameters: Some(Null.into()),
            },
        }
    }
}

/// An EncryptedPrivateKeyInfo starts with an AlgorithmIdentifier (SEQUENCE), a PrivateKeyInfo
/// with its version (INTEGER).
fn looks_encrypted(der: &[u8]) -> bool {
    AnyRef::from_der(der).is_ok_and(|a| a.value().first() == Some(&0x30))
}

/// The PEM part of a file, from its `-----BEGIN` line on (OpenSSL may write a text dump of the
/// certificate before it); `None` when the file is not PEM.
pub(crate) fn pem_text(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    text.find("-----BEGIN ").map(|i| &text[i..])
}
