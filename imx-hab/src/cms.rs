//! Allocation-free view of the detached CMS `SignedData` that `cst` writes into a signature
//! record (docs/hab4-format.md §5.3): one signer, SHA-256, signed attributes.

use der::oid::ObjectIdentifier;

use crate::der_util::{self, Cursor, DerFault, oids, tag};
use crate::x509::{Name, SignatureAlgorithm, algorithm_identifier};
use crate::{ErrorKind, ParseError, Result, Structure};

/// A parsed CMS signature, borrowed from the record.
#[derive(Debug, Clone, Copy)]
pub struct CmsSignature<'a> {
    /// The whole DER encoding.
    pub der: &'a [u8],
    /// Digest algorithm of the signer (SHA-256 for HAB4 as `cst` writes it).
    pub digest_algorithm: ObjectIdentifier,
    /// Whether the signer and every entry of `digestAlgorithms` are SHA-256 (absent or NULL
    /// parameters).
    pub strict_sha256: bool,
    /// Whether the encapsulated content is absent (a detached signature).
    pub detached: bool,
    /// Whether the SignedData carries certificates.
    pub has_certificates: bool,
    /// Issuer of the signer's certificate.
    pub signer_issuer: Name<'a>,
    /// Serial number of the signer's certificate, big-endian magnitude.
    pub signer_serial: &'a [u8],
    /// The `[0] IMPLICIT` signed attributes TLV as it appears in the encoding, if present.
    pub signed_attributes: Option<&'a [u8]>,
    /// The messageDigest attribute, if signed attributes are present.
    pub message_digest: Option<&'a [u8]>,
    /// The signature algorithm.
    pub signature_algorithm: SignatureAlgorithm,
    /// The signature value (DER `Ecdsa-Sig-Value` or raw RSA bytes).
    pub signature: &'a [u8],
}

impl<'a> CmsSignature<'a> {
    /// Parses a DER ContentInfo(SignedData) that must fill `der` exactly. Error offsets are
    /// from the start of `der`.
    pub fn parse(der: &'a [u8]) -> Result<Self> {
        Self::parse_inner(der).map_err(|f| {
            ParseError::new(
                Structure::Signature,
                f.what,
                f.offset as u64,
                ErrorKind::Der,
            )
        })
    }

    fn parse_inner(der: &'a [u8]) -> core::result::Result<Self, DerFault> {
        let ci = der_util::single(der, tag::SEQUENCE, "ContentInfo")?;
        let mut c = Cursor::inside(&ci);
        let ct = c.any("contentType")?;
        if der_util::oid(&ct, "contentType")? != oids::SIGNED_DATA {
            return Err(DerFault {
                offset: ct.offset,
                what: "contentType (must be signedData)",
            });
        }
        let explicit = c.expect(tag::CTX0, "content")?;
        c.finish("ContentInfo")?;
        let mut e = Cursor::inside(&explicit);
        let sd = e.expect(tag::SEQUENCE, "SignedData")?;
        e.finish("content")?;

        let mut s = Cursor::inside(&sd);
        let v = s.expect(tag::INTEGER, "SignedData.version")?;
        if v.value != [1] {
            return Err(DerFault {
                offset: v.offset,
                what: "SignedData.version (must be 1)",
            });
        }
        let digests = s.expect(tag::SET, "digestAlgorithms")?;
        let mut dc = Cursor::inside(&digests);
        let mut all_digests_sha256 = !dc.is_empty();
        while !dc.is_empty() {
            let (oid, params) = algorithm_identifier(&mut dc, "digestAlgorithms")?;
            all_digests_sha256 &= oid == oids::SHA256
                && params.is_none_or(|p| p.tag == tag::NULL && p.value.is_empty());
        }
        let encap = s.expect(tag::SEQUENCE, "encapContentInfo")?;
        let mut ec = Cursor::inside(&encap);
        let ect = ec.any("eContentType")?;
        if der_util::oid(&ect, "eContentType")? != oids::DATA {
            return Err(DerFault {
                offset: ect.offset,
                what: "eContentType (must be id-data)",
            });
        }
        let detached = ec.optional(tag::CTX0, "eContent")?.is_none();
        ec.finish("encapContentInfo")?;
        let has_certificates = s.optional(tag::CTX0, "certificates")?.is_some();
        s.optional(tag::CTX1, "crls")?;
        let signers = s.expect(tag::SET, "signerInfos")?;
        s.finish("SignedData")?;

        let mut sc = Cursor::inside(&signers);
        let si = sc.expect(tag::SEQUENCE, "SignerInfo")?;
        if !sc.is_empty() {
            return Err(DerFault {
                offset: sc.offset(),
                what: "signerInfos (HAB signatures have exactly one signer)",
            });
        }
        let mut i = Cursor::inside(&si);
        let v = i.expect(tag::INTEGER, "SignerInfo.version")?;
        if v.value != [1] {
            return Err(DerFault {
                offset: v.offset,
                what: "SignerInfo.version (must be 1 for issuerAndSerialNumber)",
            });
        }
        let sid = i.expect(tag::SEQUENCE, "sid (issuerAndSerialNumber)")?;
        let mut sidc = Cursor::inside(&sid);
        let signer_issuer = Name::parse(&sidc.any("sid.issuer")?, "sid.issuer")?;
        let signer_serial = der_util::unsigned(
            &sidc.expect(tag::INTEGER, "sid.serialNumber")?,
            "sid.serialNumber",
        )?;
        sidc.finish("sid")?;
        let (digest_algorithm, digest_params) = algorithm_identifier(&mut i, "digestAlgorithm")?;
        let digest_params_ok =
            digest_params.is_none_or(|p| p.tag == tag::NULL && p.value.is_empty());
        let attrs = i.optional(tag::CTX0, "signedAttrs")?;
        let mut message_digest = None;
        if let Some(a) = &attrs {
            let mut ac = Cursor::inside(a);
            while !ac.is_empty() {
                let attr = ac.expect(tag::SEQUENCE, "signedAttrs attribute")?;
                let mut at = Cursor::inside(&attr);
                let id = der_util::oid(&at.any("attrType")?, "attrType")?;
                let values = at.expect(tag::SET, "attrValues")?;
                at.finish("signedAttrs attribute")?;
                if id == oids::MESSAGE_DIGEST {
                    let mut vc = Cursor::inside(&values);
                    let md = vc.expect(tag::OCTET_STRING, "messageDigest")?;
                    vc.finish("messageDigest (exactly one value)")?;
                    if message_digest.replace(md.value).is_some() {
                        return Err(DerFault {
                            offset: attr.offset,
                            what: "messageDigest (present twice)",
                        });
                    }
                }
            }
        }
        let (sig_oid, sig_params) = algorithm_identifier(&mut i, "signatureAlgorithm")?;
        let signature_algorithm = SignatureAlgorithm::from_oid_and_params(sig_oid, sig_params)
            .ok_or(DerFault {
                offset: i.offset(),
                what: "signatureAlgorithm",
            })?;
        let signature = i.expect(tag::OCTET_STRING, "signature")?.value;
        i.optional(0xA1, "unsignedAttrs")?;
        i.finish("SignerInfo")?;
        Ok(CmsSignature {
            der,
            digest_algorithm,
            strict_sha256: all_digests_sha256
                && digest_params_ok
                && digest_algorithm == oids::SHA256,
            detached,
            has_certificates,
            signer_issuer,
            signer_serial,
            signed_attributes: attrs.map(|a| a.raw),
            message_digest,
            signature_algorithm,
            signature,
        })
    }

    /// Whether the signer's digest algorithm is SHA-256.
    pub fn digest_is_sha256(&self) -> bool {
        self.digest_algorithm == oids::SHA256
    }
}
