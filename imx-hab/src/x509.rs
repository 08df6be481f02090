//! Allocation-free view of an X.509 v3 certificate as carried in a CSF certificate record
//! (docs/hab4-format.md §5.2). Only what HAB needs is decoded: the signed `tbsCertificate`
//! bytes, serial, issuer, subject, public key, CA flag and the signature.

use core::fmt;

use der::oid::ObjectIdentifier;

use crate::der_util::{self, Cursor, DerFault, Tlv, oids, tag};
use crate::{ErrorKind, ParseError, Result, Structure};

/// A distinguished name, validated as `SEQUENCE OF SET OF { OID, string }`.
#[derive(Debug, Clone, Copy)]
pub struct Name<'a> {
    value: &'a [u8],
    base: usize,
}

impl<'a> Name<'a> {
    pub(crate) fn parse(tlv: &Tlv<'a>, what: &'static str) -> core::result::Result<Self, DerFault> {
        if tlv.tag != tag::SEQUENCE {
            return Err(DerFault {
                offset: tlv.offset,
                what,
            });
        }
        let name = Name {
            value: tlv.value,
            base: tlv.value_offset,
        };
        for item in name.attributes() {
            item?;
        }
        Ok(name)
    }

    /// The attributes in order, each as (type, value string). Values that are not text are
    /// reported as an error by [`Name::parse`], so after parsing every item is `Ok`.
    fn attributes(
        &self,
    ) -> impl Iterator<Item = core::result::Result<(ObjectIdentifier, &'a str), DerFault>> + 'a
    {
        let mut rdns = Cursor::new(self.value, self.base);
        let mut inner: Option<Cursor<'a>> = None;
        core::iter::from_fn(move || {
            loop {
                if let Some(c) = inner.as_mut() {
                    if !c.is_empty() {
                        return Some(attribute(c));
                    }
                    inner = None;
                }
                if rdns.is_empty() {
                    return None;
                }
                match rdns.expect(tag::SET, "relative distinguished name") {
                    Ok(set) => inner = Some(Cursor::inside(&set)),
                    Err(e) => {
                        rdns = Cursor::new(&[], 0);
                        return Some(Err(e));
                    }
                }
            }
        })
    }

    /// The DER content of the name (inside its SEQUENCE), for exact comparisons.
    pub fn raw(&self) -> &'a [u8] {
        self.value
    }

    /// The first common name (CN), if any.
    pub fn common_name(&self) -> Option<&'a str> {
        self.attributes()
            .flatten()
            .find(|(o, _)| *o == oids::COMMON_NAME)
            .map(|(_, v)| v)
    }
}

fn attribute<'a>(
    c: &mut Cursor<'a>,
) -> core::result::Result<(ObjectIdentifier, &'a str), DerFault> {
    let atv = c.expect(tag::SEQUENCE, "attribute")?;
    let mut a = Cursor::inside(&atv);
    let oid = der_util::oid(&a.any("attribute type")?, "attribute type")?;
    let v = a.any("attribute value")?;
    a.finish("attribute")?;
    // UTF8String, PrintableString, IA5String, TeletexString (treated as Latin-1 subset).
    if !matches!(v.tag, 0x0C | 0x13 | 0x16 | 0x14) {
        return Err(DerFault {
            offset: v.offset,
            what: "attribute value",
        });
    }
    let s = core::str::from_utf8(v.value).map_err(|_| DerFault {
        offset: v.offset,
        what: "attribute value",
    })?;
    Ok((oid, s))
}

impl fmt::Display for Name<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (oid, value) in self.attributes().flatten() {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            let short = match oid {
                o if o == oids::COMMON_NAME => "CN",
                o if o == oids::COUNTRY => "C",
                o if o == oids::LOCALITY => "L",
                o if o == oids::STATE => "ST",
                o if o == oids::ORGANIZATION => "O",
                o if o == oids::ORG_UNIT => "OU",
                o => {
                    write!(f, "{o}={value}")?;
                    continue;
                }
            };
            write!(f, "{short}={value}")?;
        }
        Ok(())
    }
}

/// Elliptic curves HAB4 can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Curve {
    /// NIST P-256 (secp256r1).
    P256,
    /// NIST P-384.
    P384,
    /// NIST P-521.
    P521,
}

impl Curve {
    /// Field size in bits.
    pub const fn bits(self) -> u32 {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
        }
    }
    /// Bytes per coordinate.
    pub const fn coordinate_len(self) -> usize {
        (self.bits() as usize).div_ceil(8)
    }
    /// Name as OpenSSL prints it.
    pub const fn name(self) -> &'static str {
        match self {
            Curve::P256 => "prime256v1",
            Curve::P384 => "secp384r1",
            Curve::P521 => "secp521r1",
        }
    }
}

/// A subject public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublicKey<'a> {
    /// An EC key: the uncompressed SEC1 point `04 ‖ X ‖ Y`.
    Ec {
        /// The curve.
        curve: Curve,
        /// The SEC1 encoded point.
        point: &'a [u8],
    },
    /// An RSA key.
    Rsa {
        /// Modulus, big-endian, no leading zero.
        modulus: &'a [u8],
        /// Public exponent, big-endian, no leading zero.
        exponent: &'a [u8],
    },
}

impl PublicKey<'_> {
    /// Key size in bits (curve size or modulus length).
    pub fn bits(&self) -> u32 {
        match self {
            PublicKey::Ec { curve, .. } => curve.bits(),
            PublicKey::Rsa { modulus, .. } => magnitude_bits(modulus),
        }
    }
    /// Short algorithm description, e.g. `ECDSA P-256 (prime256v1)` or `RSA-2048`.
    pub fn describe(&self) -> KeyDescription {
        KeyDescription(match self {
            PublicKey::Ec { curve, .. } => KeyKind::Ec(*curve),
            PublicKey::Rsa { .. } => KeyKind::Rsa(self.bits()),
        })
    }
}

#[derive(Debug, Clone, Copy)]
enum KeyKind {
    Ec(Curve),
    Rsa(u32),
}

/// Display helper returned by [`PublicKey::describe`].
#[derive(Debug, Clone, Copy)]
pub struct KeyDescription(KeyKind);

impl fmt::Display for KeyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            KeyKind::Ec(c) => write!(f, "ECDSA P-{} ({})", c.bits(), c.name()),
            KeyKind::Rsa(bits) => write!(f, "RSA-{bits}"),
        }
    }
}

fn magnitude_bits(be: &[u8]) -> u32 {
    match be.iter().position(|&b| b != 0) {
        Some(i) => (be.len() - i) as u32 * 8 - be[i].leading_zeros(),
        None => 0,
    }
}

/// Signature algorithms HAB4 uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// ecdsa-with-SHA256.
    EcdsaSha256,
    /// sha256WithRSAEncryption (in certificates).
    RsaSha256,
    /// rsaEncryption (in CMS signer infos: PKCS#1 v1.5, digest from the digest algorithm).
    Rsa,
}

impl SignatureAlgorithm {
    pub(crate) fn from_oid(oid: ObjectIdentifier) -> Option<Self> {
        match oid {
            o if o == oids::ECDSA_WITH_SHA256 => Some(SignatureAlgorithm::EcdsaSha256),
            o if o == oids::SHA256_WITH_RSA => Some(SignatureAlgorithm::RsaSha256),
            o if o == oids::RSA_ENCRYPTION => Some(SignatureAlgorithm::Rsa),
            _ => None,
        }
    }
    /// The algorithm of an AlgorithmIdentifier whose parameters are exactly as RFC 5754 /
    /// RFC 8017 require: absent for ECDSA, NULL for the RSA algorithms.
    pub(crate) fn from_oid_and_params(
        oid: ObjectIdentifier,
        params: Option<Tlv<'_>>,
    ) -> Option<Self> {
        let alg = Self::from_oid(oid)?;
        let null = params.is_some_and(|p| p.tag == tag::NULL && p.value.is_empty());
        let ok = match alg {
            SignatureAlgorithm::EcdsaSha256 => params.is_none(),
            SignatureAlgorithm::RsaSha256 | SignatureAlgorithm::Rsa => null || params.is_none(),
        };
        ok.then_some(alg)
    }

    /// Name as OpenSSL prints it.
    pub const fn name(self) -> &'static str {
        match self {
            SignatureAlgorithm::EcdsaSha256 => "ecdsa-with-SHA256",
            SignatureAlgorithm::RsaSha256 => "sha256WithRSAEncryption",
            SignatureAlgorithm::Rsa => "rsaEncryption",
        }
    }
}

/// A parsed certificate, borrowed from the record.
#[derive(Debug, Clone, Copy)]
pub struct Certificate<'a> {
    /// The whole DER encoding.
    pub der: &'a [u8],
    /// The `tbsCertificate` TLV: the bytes the issuer signed.
    pub tbs: &'a [u8],
    /// Serial number magnitude, big-endian.
    pub serial: &'a [u8],
    /// Issuer name.
    pub issuer: Name<'a>,
    /// Subject name.
    pub subject: Name<'a>,
    /// Subject public key.
    pub public_key: PublicKey<'a>,
    /// `basicConstraints` cA flag (false when absent).
    pub is_ca: bool,
    /// Algorithm of the issuer's signature.
    pub signature_algorithm: SignatureAlgorithm,
    /// The signature value (DER `Ecdsa-Sig-Value` or raw RSA bytes).
    pub signature: &'a [u8],
}

impl<'a> Certificate<'a> {
    /// Parses a DER certificate that must fill `der` exactly. Error offsets are from the
    /// start of `der`.
    pub fn parse(der: &'a [u8]) -> Result<Self> {
        Self::parse_inner(der).map_err(|f| {
            ParseError::new(
                Structure::Certificate,
                f.what,
                f.offset as u64,
                ErrorKind::Der,
            )
        })
    }

    fn parse_inner(der: &'a [u8]) -> core::result::Result<Self, DerFault> {
        let cert = der_util::single(der, tag::SEQUENCE, "Certificate")?;
        let mut c = Cursor::inside(&cert);
        let tbs = c.expect(tag::SEQUENCE, "tbsCertificate")?;
        let sig_alg = algorithm_identifier(&mut c, "signatureAlgorithm")?;
        let signature = bit_string(&mut c, "signatureValue")?;
        c.finish("Certificate")?;
        let signature_algorithm = SignatureAlgorithm::from_oid_and_params(sig_alg.0, sig_alg.1)
            .ok_or(DerFault {
                offset: cert.value_offset + tbs.raw.len(),
                what: "signatureAlgorithm",
            })?;

        let mut t = Cursor::inside(&tbs);
        if let Some(v) = t.optional(tag::CTX0, "version")? {
            let mut vc = Cursor::inside(&v);
            let n = vc.expect(tag::INTEGER, "version")?;
            if n.value != [2] {
                return Err(DerFault {
                    offset: n.offset,
                    what: "version (must be v3)",
                });
            }
        }
        let serial = der_util::unsigned(&t.expect(tag::INTEGER, "serialNumber")?, "serialNumber")?;
        algorithm_identifier(&mut t, "signature")?;
        let issuer = Name::parse(&t.any("issuer")?, "issuer")?;
        t.expect(tag::SEQUENCE, "validity")?;
        let subject = Name::parse(&t.any("subject")?, "subject")?;
        let public_key =
            subject_public_key_info(&t.expect(tag::SEQUENCE, "subjectPublicKeyInfo")?)?;
        t.optional(0x81, "issuerUniqueID")?;
        t.optional(0x82, "subjectUniqueID")?;
        let is_ca = match t.optional(tag::CTX3, "extensions")? {
            Some(ext) => basic_constraints_ca(&ext)?,
            None => false,
        };
        t.finish("tbsCertificate")?;
        Ok(Certificate {
            der,
            tbs: tbs.raw,
            serial,
            issuer,
            subject,
            public_key,
            is_ca,
            signature_algorithm,
            signature,
        })
    }
}

/// Reads `AlgorithmIdentifier ::= SEQUENCE { OID, parameters ANY OPTIONAL }`.
pub(crate) fn algorithm_identifier<'a>(
    c: &mut Cursor<'a>,
    what: &'static str,
) -> core::result::Result<(ObjectIdentifier, Option<Tlv<'a>>), DerFault> {
    let seq = c.expect(tag::SEQUENCE, what)?;
    let mut a = Cursor::inside(&seq);
    let oid = der_util::oid(&a.any(what)?, what)?;
    let params = if a.is_empty() {
        None
    } else {
        Some(a.any(what)?)
    };
    a.finish(what)?;
    Ok((oid, params))
}

/// Reads a BIT STRING with no unused bits and returns its bytes.
pub(crate) fn bit_string<'a>(
    c: &mut Cursor<'a>,
    what: &'static str,
) -> core::result::Result<&'a [u8], DerFault> {
    let bs = c.expect(tag::BIT_STRING, what)?;
    match bs.value.split_first() {
        Some((0, rest)) => Ok(rest),
        _ => Err(DerFault {
            offset: bs.offset,
            what,
        }),
    }
}

fn subject_public_key_info<'a>(spki: &Tlv<'a>) -> core::result::Result<PublicKey<'a>, DerFault> {
    let mut c = Cursor::inside(spki);
    let (alg, params) = algorithm_identifier(&mut c, "subjectPublicKeyInfo.algorithm")?;
    let key = bit_string(&mut c, "subjectPublicKey")?;
    c.finish("subjectPublicKeyInfo")?;
    let fault = DerFault {
        offset: spki.offset,
        what: "subjectPublicKeyInfo.algorithm",
    };
    if alg == oids::EC_PUBLIC_KEY {
        let curve_oid = der_util::oid(&params.ok_or(fault)?, "namedCurve")?;
        let curve = match curve_oid {
            o if o == oids::SECP256R1 => Curve::P256,
            o if o == oids::SECP384R1 => Curve::P384,
            o if o == oids::SECP521R1 => Curve::P521,
            _ => {
                return Err(DerFault {
                    offset: spki.offset,
                    what: "namedCurve",
                });
            }
        };
        if key.len() != 1 + 2 * curve.coordinate_len() || key[0] != 0x04 {
            return Err(DerFault {
                offset: spki.offset,
                what: "subjectPublicKey (uncompressed point)",
            });
        }
        Ok(PublicKey::Ec { curve, point: key })
    } else if alg == oids::RSA_ENCRYPTION {
        if params.is_some_and(|p| p.tag != tag::NULL || !p.value.is_empty()) {
            return Err(fault);
        }
        // The BIT STRING holds RSAPublicKey ::= SEQUENCE { modulus, publicExponent }.
        let rsa = der_util::single(key, tag::SEQUENCE, "RSAPublicKey").map_err(|f| DerFault {
            offset: spki.offset,
            ..f
        })?;
        let mut r = Cursor::inside(&rsa);
        let modulus = der_util::unsigned(&r.expect(tag::INTEGER, "modulus")?, "modulus")?;
        let exponent =
            der_util::unsigned(&r.expect(tag::INTEGER, "publicExponent")?, "publicExponent")?;
        r.finish("RSAPublicKey")?;
        Ok(PublicKey::Rsa { modulus, exponent })
    } else {
        Err(fault)
    }
}

/// Finds basicConstraints in `[3] EXPLICIT Extensions` and returns its cA flag.
fn basic_constraints_ca(ext: &Tlv<'_>) -> core::result::Result<bool, DerFault> {
    let mut outer = Cursor::inside(ext);
    let list = outer.expect(tag::SEQUENCE, "extensions")?;
    outer.finish("extensions")?;
    let mut exts = Cursor::inside(&list);
    let mut ca = false;
    while !exts.is_empty() {
        let e = exts.expect(tag::SEQUENCE, "extension")?;
        let mut ec = Cursor::inside(&e);
        let id = der_util::oid(&ec.any("extnID")?, "extnID")?;
        ec.optional(tag::BOOLEAN, "critical")?;
        let value = ec.expect(tag::OCTET_STRING, "extnValue")?;
        ec.finish("extension")?;
        if id == oids::BASIC_CONSTRAINTS {
            let bc =
                der_util::single(value.value, tag::SEQUENCE, "basicConstraints").map_err(|f| {
                    DerFault {
                        offset: value.offset,
                        ..f
                    }
                })?;
            let mut b = Cursor::inside(&bc);
            if let Some(flag) = b.optional(tag::BOOLEAN, "basicConstraints.cA")? {
                ca = flag.value == [0xFF];
            }
        }
    }
    Ok(ca)
}
