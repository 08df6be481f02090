//! A strict DER TLV cursor over borrowed bytes, built on the `der` crate's header decoding.
//!
//! `der` checks definite, minimally encoded lengths and tag forms; this wrapper keeps the byte
//! offset of every TLV so that errors can name where a certificate or signature went wrong.

use der::{Decode, Header, Reader, SliceReader};

/// One TLV: its identifier byte, value bytes, whole encoding and offset in the root input.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Tlv<'a> {
    /// The identifier octet (class, constructed bit, low tag number).
    pub tag: u8,
    /// The value bytes.
    pub value: &'a [u8],
    /// Header and value bytes.
    pub raw: &'a [u8],
    /// Offset of the first header byte from the start of the root input.
    pub offset: usize,
    /// Offset of the first value byte from the start of the root input.
    pub value_offset: usize,
}

/// DER identifier octets used here.
pub(crate) mod tag {
    pub const INTEGER: u8 = 0x02;
    pub const BIT_STRING: u8 = 0x03;
    pub const OCTET_STRING: u8 = 0x04;
    pub const NULL: u8 = 0x05;
    pub const OID: u8 = 0x06;
    pub const BOOLEAN: u8 = 0x01;
    pub const SEQUENCE: u8 = 0x30;
    pub const SET: u8 = 0x31;
    pub const CTX0: u8 = 0xA0;
    pub const CTX1: u8 = 0xA1;
    pub const CTX3: u8 = 0xA3;
}

/// The failure of a cursor step: the offset it happened at and what was expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DerFault {
    pub offset: usize,
    pub what: &'static str,
}

/// Walks the TLVs inside one constructed value (or a whole input).
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `bytes`, which start at `base` in the root input.
    pub fn new(bytes: &'a [u8], base: usize) -> Self {
        Cursor {
            bytes,
            pos: 0,
            base,
        }
    }

    /// A cursor over the value of a constructed TLV.
    pub fn inside(tlv: &Tlv<'a>) -> Self {
        Cursor::new(tlv.value, tlv.value_offset)
    }

    /// Whether every byte was consumed.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Offset of the next TLV in the root input.
    pub fn offset(&self) -> usize {
        self.base + self.pos
    }

    /// Identifier byte of the next TLV, if any.
    pub fn peek_tag(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// Reads the next TLV, whatever its tag.
    pub fn any(&mut self, what: &'static str) -> Result<Tlv<'a>, DerFault> {
        let fault = DerFault {
            offset: self.offset(),
            what,
        };
        let rest = self.bytes.get(self.pos..).ok_or(fault)?;
        let &tag = rest.first().ok_or(fault)?;
        if tag & 0x1F == 0x1F {
            return Err(fault); // high tag numbers never occur in X.509/CMS as used by HAB
        }
        let mut reader = SliceReader::new(rest).map_err(|_| fault)?;
        let header = Header::decode(&mut reader).map_err(|_| fault)?;
        let hlen = usize::try_from(reader.position()).map_err(|_| fault)?;
        let value = reader.read_slice(header.length()).map_err(|_| fault)?;
        let total = hlen + value.len();
        let tlv = Tlv {
            tag,
            value,
            raw: &rest[..total],
            offset: self.offset(),
            value_offset: self.offset() + hlen,
        };
        self.pos += total;
        Ok(tlv)
    }

    /// Reads the next TLV and requires its identifier byte to be `tag`.
    pub fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, DerFault> {
        let at = self.offset();
        let tlv = self.any(what)?;
        if tlv.tag != tag {
            return Err(DerFault { offset: at, what });
        }
        Ok(tlv)
    }

    /// Reads the next TLV only if its identifier byte is `tag`.
    pub fn optional(&mut self, tag: u8, what: &'static str) -> Result<Option<Tlv<'a>>, DerFault> {
        if self.peek_tag() == Some(tag) {
            self.expect(tag, what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Requires the cursor to be exhausted.
    pub fn finish(&self, what: &'static str) -> Result<(), DerFault> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(DerFault {
                offset: self.offset(),
                what,
            })
        }
    }
}

/// Decodes one whole input as exactly one TLV with identifier `tag`.
pub(crate) fn single<'a>(
    bytes: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<Tlv<'a>, DerFault> {
    let mut c = Cursor::new(bytes, 0);
    let tlv = c.expect(tag, what)?;
    c.finish(what)?;
    Ok(tlv)
}

/// An OBJECT IDENTIFIER's content bytes, validated by `const-oid` (re-exported by `der`).
pub(crate) fn oid(
    tlv: &Tlv<'_>,
    what: &'static str,
) -> Result<der::oid::ObjectIdentifier, DerFault> {
    if tlv.tag != tag::OID {
        return Err(DerFault {
            offset: tlv.offset,
            what,
        });
    }
    der::oid::ObjectIdentifier::from_bytes(tlv.value).map_err(|_| DerFault {
        offset: tlv.offset,
        what,
    })
}

/// An unsigned INTEGER's magnitude without its sign-padding zero (rejecting negatives).
pub(crate) fn unsigned<'a>(tlv: &Tlv<'a>, what: &'static str) -> Result<&'a [u8], DerFault> {
    let fault = DerFault {
        offset: tlv.offset,
        what,
    };
    if tlv.tag != tag::INTEGER || tlv.value.is_empty() {
        return Err(fault);
    }
    let uint = der::asn1::UintRef::new(tlv.value).map_err(|_| fault)?;
    if tlv.value[0] & 0x80 != 0 {
        return Err(fault);
    }
    Ok(uint.as_bytes())
}

/// Well-known object identifiers.
pub(crate) mod oids {
    use der::oid::ObjectIdentifier as Oid;
    pub const EC_PUBLIC_KEY: Oid = Oid::new_unwrap("1.2.840.10045.2.1");
    pub const RSA_ENCRYPTION: Oid = Oid::new_unwrap("1.2.840.113549.1.1.1");
    pub const SHA256_WITH_RSA: Oid = Oid::new_unwrap("1.2.840.113549.1.1.11");
    pub const ECDSA_WITH_SHA256: Oid = Oid::new_unwrap("1.2.840.10045.4.3.2");
    pub const SECP256R1: Oid = Oid::new_unwrap("1.2.840.10045.3.1.7");
    pub const SECP384R1: Oid = Oid::new_unwrap("1.3.132.0.34");
    pub const SECP521R1: Oid = Oid::new_unwrap("1.3.132.0.35");
    pub const SHA256: Oid = Oid::new_unwrap("2.16.840.1.101.3.4.2.1");
    pub const SIGNED_DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.2");
    pub const DATA: Oid = Oid::new_unwrap("1.2.840.113549.1.7.1");
    pub const MESSAGE_DIGEST: Oid = Oid::new_unwrap("1.2.840.113549.1.9.4");
    pub const BASIC_CONSTRAINTS: Oid = Oid::new_unwrap("2.5.29.19");
    pub const COMMON_NAME: Oid = Oid::new_unwrap("2.5.4.3");
    pub const COUNTRY: Oid = Oid::new_unwrap("2.5.4.6");
    pub const LOCALITY: Oid = Oid::new_unwrap("2.5.4.7");
    pub const STATE: Oid = Oid::new_unwrap("2.5.4.8");
    pub const ORGANIZATION: Oid = Oid::new_unwrap("2.5.4.10");
    pub const ORG_UNIT: Oid = Oid::new_unwrap("2.5.4.11");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_nested_tlvs_with_offsets() {
        // SEQUENCE { INTEGER 5, OCTET STRING 'ab' }
        let b = [0x30, 0x07, 0x02, 0x01, 0x05, 0x04, 0x02, b'a', b'b'];
        let seq = single(&b, tag::SEQUENCE, "seq").unwrap();
        let mut c = Cursor::inside(&seq);
        let i = c.expect(tag::INTEGER, "int").unwrap();
        assert_eq!((i.offset, i.value), (2, &[5u8][..]));
        let o = c.expect(tag::OCTET_STRING, "oct").unwrap();
        assert_eq!((o.offset, o.value_offset, o.value), (5, 7, &b"ab"[..]));
        assert!(c.finish("end").is_ok());
    }

    #[test]
    fn rejects_overlong_lengths_trailing_bytes_and_truncation() {
        assert!(single(&[0x04, 0x81, 0x01, 0x00], tag::OCTET_STRING, "x").is_err()); // non-minimal
        assert!(single(&[0x04, 0x01, 0x00, 0x00], tag::OCTET_STRING, "x").is_err()); // trailing
        assert!(single(&[0x04, 0x05, 0x00], tag::OCTET_STRING, "x").is_err()); // truncated
        assert!(single(&[], tag::OCTET_STRING, "x").is_err());
        assert!(single(&[0x1F, 0x81, 0x00, 0x00], 0x1F, "x").is_err()); // high tag number
    }
}
