//! The detached CMS SignedData `cst` writes into a signature record (docs/hab4-format.md §5.3,
//! §6): SignedData v1, digestAlgorithms {sha256}, encapContentInfo {id-data} without content,
//! no certificates, one SignerInfo v1 (issuerAndSerialNumber) with signed attributes
//! contentType, signingTime and messageDigest.

use std::time::Duration;

use der::asn1::{Any, AnyRef, OctetString, SetOfVec, UintRef, UtcTime};
use der::oid::ObjectIdentifier;
use der::{Decode, Encode, Sequence, Tag};
use sha2::{Digest, Sha256};
use x509_cert::attr::Attribute;
use x509_cert::spki::AlgorithmIdentifierOwned;

use super::keys::PrivateKey;
use super::{SignError, SignResult};

const SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const CONTENT_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.3");
const MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
const SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");

#[derive(Sequence)]
struct ContentInfo {
    content_type: ObjectIdentifier,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT")]
    content: SignedData,
}

#[derive(Sequence)]
struct SignedData {
    version: u8,
    digest_algorithms: SetOfVec<AlgorithmIdentifierOwned>,
    encap_content_info: EncapContentInfo,
    signer_infos: SetOfVec<Any>,
}

#[derive(Sequence)]
struct EncapContentInfo {
    e_content_type: ObjectIdentifier,
}

#[derive(Sequence)]
struct SignerInfo<'a> {
    version: u8,
    sid: IssuerAndSerialNumber<'a>,
    digest_algorithm: AlgorithmIdentifierOwned,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    signed_attrs: SetOfVec<Attribute>,
    signature_algorithm: AlgorithmIdentifierOwned,
    signature: OctetString,
}

#[derive(Sequence)]
struct IssuerAndSerialNumber<'a> {
    issuer: AnyRef<'a>,
    serial_number: UintRef<'a>,
}

/// Signs `content` (detached) with `key` for the signer certificate `signer_cert` (DER) and
/// returns the DER ContentInfo. The signature is over the DER of the signed attributes as a
/// SET (tag 0x31), which [`SetOfVec`] keeps sorted by encoding as DER requires. `variant`
/// selects another (deterministic) ECDSA signature, see [`PrivateKey::sign_sha256_variant`].
pub(crate) fn sign_detached(
    content: &[u8],
    signer_cert: &[u8],
    key: &PrivateKey,
    signing_time: u64,
    variant: u32,
) -> SignResult<Vec<u8>> {
    let cert = crate::x509::Certificate::parse(signer_cert)
        .map_err(|e| SignError::Input(format!("signer certificate: {e}")))?;
    let sha256 = AlgorithmIdentifierOwned {
        oid: SHA256,
        parameters: None,
    };
    let time = UtcTime::from_unix_duration(Duration::from_secs(signing_time))?;
    let digest = Sha256::digest(content);
    let attrs = SetOfVec::try_from(vec![
        attribute(CONTENT_TYPE, &DATA)?,
        attribute(SIGNING_TIME, &time)?,
        attribute(MESSAGE_DIGEST, &OctetString::new(digest.as_slice())?)?,
    ])?;
    let signature = key.sign_sha256_variant(&attrs.to_der()?, variant)?;
    let signer = SignerInfo {
        version: 1,
        sid: IssuerAndSerialNumber {
            issuer: AnyRef::new(Tag::Sequence, cert.issuer.raw())?,
            serial_number: UintRef::new(cert.serial)?,
        },
        digest_algorithm: sha256.clone(),
        signed_attrs: attrs,
        signature_algorithm: key.cms_algorithm(),
        signature: OctetString::new(signature)?,
    };
    let ci = ContentInfo {
        content_type: SIGNED_DATA,
        content: SignedData {
            version: 1,
            digest_algorithms: SetOfVec::try_from(vec![sha256])?,
            encap_content_info: EncapContentInfo {
                e_content_type: DATA,
            },
            signer_infos: SetOfVec::try_from(vec![Any::from_der(&signer.to_der()?)?])?,
        },
    };
    Ok(ci.to_der()?)
}

/// An attribute with one value.
fn attribute(oid: ObjectIdentifier, value: &impl Encode) -> SignResult<Attribute> {
    Ok(Attribute {
        oid,
        values: SetOfVec::try_from(vec![Any::from_der(&value.to_der()?)?])?,
    })
}
