//! X.509 v3 certificates shaped like those of `hab4_pki_tree.sh` (OpenSSL `ca` with
//! `v3_ca.cnf` / `v3_usr.cnf`): basicConstraints, subjectKeyIdentifier and
//! authorityKeyIdentifier (keyid, issuer's issuer DirName, issuer's serial), none critical.

use std::str::FromStr;
use std::time::Duration;

use der::asn1::{AnyRef, BitString, GeneralizedTime, OctetString, UtcTime};
use der::oid::AssociatedOid;
use der::{DateTime, Decode, Encode, Sequence};
use sha2::{Digest, Sha256};
use x509_cert::ext::Extension;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, BasicConstraints, SubjectKeyIdentifier};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::time::{Time, Validity};

use super::keys::PrivateKey;
use super::{SignError, SignResult};

/// TBSCertificate (RFC 5280 §4.1) with the fields `hab4_pki_tree.sh` certificates have.
#[derive(Sequence)]
struct TbsCertificate {
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    version: u8,
    serial_number: SerialNumber,
    signature: AlgorithmIdentifierOwned,
    issuer: Name,
    validity: Validity,
    subject: Name,
    subject_public_key_info: SubjectPublicKeyInfoOwned,
    #[asn1(context_specific = "3", tag_mode = "EXPLICIT")]
    extensions: Vec<Extension>,
}

/// Certificate (RFC 5280 §4.1) around an already encoded TBSCertificate.
#[derive(Sequence)]
struct CertificateDer<'a> {
    tbs_certificate: AnyRef<'a>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: BitString,
}

/// What is being certified.
pub(crate) struct Subject<'a> {
    /// Common name, e.g. `SRK1_sha256_prime256v1_v3_ca`.
    pub cn: &'a str,
    /// Serial number, big-endian magnitude.
    pub serial: &'a [u8],
    /// basicConstraints cA.
    pub is_ca: bool,
    /// notBefore, seconds since the Unix epoch.
    pub not_before: u64,
    /// notAfter, seconds since the Unix epoch.
    pub not_after: u64,
    /// The subject's public key (DER SubjectPublicKeyInfo).
    pub public_key: &'a [u8],
}

/// Builds and signs a certificate for `subject`. `issuer` is the issuer's certificate (DER) and
/// key; `None` makes a self-signed certificate with `self_key`.
pub(crate) fn issue(
    subject: &Subject<'_>,
    issuer: Option<(&[u8], &PrivateKey)>,
    self_key: &PrivateKey,
) -> SignResult<Vec<u8>> {
    let spki = SubjectPublicKeyInfoOwned::from_der(subject.public_key)?;
    let subject_name = Name::from_str(&format!("CN={}", subject.cn))?;
    let serial = SerialNumber::new(subject.serial)?;
    let ski = key_identifier(&spki);
    // OpenSSL's `authorityKeyIdentifier = keyid:always,issuer:always`: the issuer's key id,
    // and the issuer certificate's own issuer name and serial number.
    let (issuer_name, aki_name, aki_serial, aki_keyid, key) = match issuer {
        None => (
            subject_name.clone(),
            subject_name.clone(),
            serial.clone(),
            ski.clone(),
            self_key,
        ),
        Some((cert_der, key)) => {
            let cert = x509_cert::Certificate::from_der(cert_der)?;
            let tbs = cert.tbs_certificate();
            let keyid = match tbs.get_extension::<SubjectKeyIdentifier>()? {
                Some((_, id)) => id.0,
                None => key_identifier(tbs.subject_public_key_info()),
            };
            (
                tbs.subject().clone(),
                tbs.issuer().clone(),
                tbs.serial_number().clone(),
                keyid,
                key,
            )
        }
    };
    let extensions = vec![
        extension(&BasicConstraints {
            ca: subject.is_ca,
            path_len_constraint: None,
        })?,
        extension(&SubjectKeyIdentifier(ski))?,
        extension(&AuthorityKeyIdentifier {
            key_identifier: Some(aki_keyid),
            authority_cert_issuer: Some(vec![GeneralName::DirectoryName(aki_name)]),
            authority_cert_serial_number: Some(aki_serial),
        })?,
    ];
    let algorithm = key.certificate_algorithm()?;
    let tbs = TbsCertificate {
        version: 2,
        serial_number: serial,
        signature: algorithm.clone(),
        issuer: issuer_name,
        validity: Validity::new(time(subject.not_before)?, time(subject.not_after)?),
        subject: subject_name,
        subject_public_key_info: spki,
        extensions,
    }
    .to_der()?;
    let signature = key.sign_sha256(&tbs)?;
    Ok(CertificateDer {
        tbs_certificate: AnyRef::from_der(&tbs)?,
        signature_algorithm: algorithm,
        signature: BitString::from_bytes(&signature)?,
    }
    .to_der()?)
}

/// Subject key identifier: the first 160 bits of SHA-256 over the subjectPublicKey bits
/// (RFC 7093 §2 method 1).
fn key_identifier(spki: &SubjectPublicKeyInfoOwned) -> OctetString {
    let digest = Sha256::digest(spki.subject_public_key.raw_bytes());
    OctetString::new(&digest[..20]).expect("20 bytes fit an OCTET STRING")
}

/// A non-critical extension.
fn extension<T: Encode + AssociatedOid>(value: &T) -> SignResult<Extension> {
    Ok(Extension {
        extn_id: T::OID,
        critical: false,
        extn_value: OctetString::new(value.to_der()?)?,
    })
}

/// UTCTime up to 2049, GeneralizedTime after (RFC 5280 §4.1.2.5).
fn time(unix: u64) -> SignResult<Time> {
    let dt = DateTime::from_unix_duration(Duration::from_secs(unix))?;
    Ok(if dt.year() < 2050 {
        Time::UtcTime(UtcTime::from_date_time(dt)?)
    } else {
        Time::GeneralTime(GeneralizedTime::from_date_time(dt))
    })
}

/// Rejects a certificate the signer cannot use, with the reason.
pub(crate) fn check_parses(der: &[u8], what: &str) -> SignResult<()> {
    crate::x509::Certificate::parse(der)
        .map(|_| ())
        .map_err(|e| SignError::Input(format!("{what}: {e}")))
}
