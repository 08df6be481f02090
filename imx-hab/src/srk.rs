//! The Super Root Key table and its fuse hash (docs/hab4-format.md §5.1, §7).
//!
//! `D7 | len | 40` followed by 1-4 key records: public keys (`E1`, RSA alg 0x21 or EC alg 0x27)
//! or hash-only records (`EE`). The SRK hash burnt into the fuses is
//! `SHA-256(SHA-256(record_1) ‖ … ‖ SHA-256(record_n))` over complete records, exactly as
//! NXP's `srktool` computes it; a hash-only record contributes its stored digest.

use sha2::{Digest, Sha256};

use crate::codes::{ALG_ECDSA, ALG_PKCS1, ALG_SHA256, TAG_CRT, TAG_KEY_HASH, TAG_KEY_PUBLIC};
use crate::x509::Curve;
use crate::{ErrorKind, ParseError, Result, Structure};

/// Most keys an SRK table holds.
pub const MAX_SRKS: usize = 4;
/// Flag bit in a public-key record: the key comes from a CA certificate.
pub const KEY_FLAG_CA: u8 = 0x80;

/// What one SRK record holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SrkKeyData<'a> {
    /// An RSA public key.
    Rsa {
        /// Modulus, big-endian, as stored.
        modulus: &'a [u8],
        /// Exponent, big-endian, as stored.
        exponent: &'a [u8],
    },
    /// An EC public key.
    Ec {
        /// The curve (from the curve id byte).
        curve: Curve,
        /// X coordinate, big-endian, fixed width.
        x: &'a [u8],
        /// Y coordinate, big-endian, fixed width.
        y: &'a [u8],
    },
    /// A hash-only record (`srktool` `%cert`): cannot be installed.
    HashOnly {
        /// SHA-256 of the full public-key record it replaces.
        digest: &'a [u8],
    },
}

/// One record of the SRK table.
#[derive(Debug, Clone, Copy)]
pub struct SrkKey<'a> {
    /// Index in the table (the Install SRK `src` value that selects it).
    pub index: usize,
    /// Offset of the record from the start of the table.
    pub offset: usize,
    /// The complete record, header included.
    pub bytes: &'a [u8],
    /// Flags byte (bit 7: CA key); 0 for a hash-only record.
    pub flags: u8,
    /// The key.
    pub data: SrkKeyData<'a>,
}

impl<'a> SrkKey<'a> {
    fn parse(bytes: &'a [u8], index: usize, offset: usize) -> Result<Self> {
        let err = |field, at: usize, kind| {
            ParseError::new(Structure::SrkKey, field, (offset + at) as u64, kind)
        };
        let head = bytes.get(..4).ok_or(ParseError::truncated(
            Structure::SrkKey,
            "header",
            offset as u64,
            4,
            bytes.len() as u64,
        ))?;
        let len = u16::from_be_bytes([head[1], head[2]]) as usize;
        if len < 4 {
            return Err(ParseError::new(
                Structure::SrkKey,
                "length",
                offset as u64 + 1,
                ErrorKind::OutOfRange {
                    found: len as u64,
                    min: 4,
                    max: 0xFFFF,
                },
            ));
        }
        let rec = bytes.get(..len).ok_or(ParseError::truncated(
            Structure::SrkKey,
            "length",
            offset as u64 + 1,
            len as u64,
            bytes.len() as u64,
        ))?;
        match (head[0], head[3]) {
            (TAG_KEY_HASH, alg) => {
                if alg != ALG_SHA256 {
                    return Err(ParseError::mismatch(
                        Structure::SrkKey,
                        "algorithm",
                        (offset + 3) as u64,
                        alg.into(),
                        ALG_SHA256.into(),
                    ));
                }
                if len != 4 + 32 {
                    return Err(ParseError::mismatch(
                        Structure::SrkKey,
                        "length",
                        (offset + 1) as u64,
                        len as u64,
                        36,
                    ));
                }
                Ok(SrkKey {
                    index,
                    offset,
                    bytes: rec,
                    flags: 0,
                    data: SrkKeyData::HashOnly { digest: &rec[4..] },
                })
            }
            (TAG_KEY_PUBLIC, alg) => {
                if rec.len() < 12 {
                    return Err(ParseError::truncated(
                        Structure::SrkKey,
                        "key header",
                        offset as u64,
                        12,
                        rec.len() as u64,
                    ));
                }
                if rec[4..7] != [0, 0, 0] {
                    return Err(err(
                        "reserved",
                        4,
                        ErrorKind::NotZero {
                            found: u32::from_be_bytes([0, rec[4], rec[5], rec[6]]).into(),
                        },
                    ));
                }
                let flags = rec[7];
                let data = match alg {
                    ALG_PKCS1 => {
                        let m = u16::from_be_bytes([rec[8], rec[9]]) as usize;
                        let e = u16::from_be_bytes([rec[10], rec[11]]) as usize;
                        if 12 + m + e != len || m == 0 || e == 0 {
                            return Err(ParseError::mismatch(
                                Structure::SrkKey,
                                "length",
                                (offset + 1) as u64,
                                len as u64,
                                (12 + m + e) as u64,
                            ));
                        }
                        SrkKeyData::Rsa {
                            modulus: &rec[12..12 + m],
                            exponent: &rec[12 + m..],
                        }
                    }
                    ALG_ECDSA => {
                        let curve = match rec[8] {
                            0x4B => Curve::P256,
                            0x4D => Curve::P384,
                            0x4E => Curve::P521,
                            other => {
                                return Err(err(
                                    "curve id",
                                    8,
                                    ErrorKind::Mismatch {
                                        found: other.into(),
                                        expected: 0x4B,
                                    },
                                ));
                            }
                        };
                        let bits = u16::from_be_bytes([rec[10], rec[11]]);
                        if u32::from(bits) != curve.bits() {
                            return Err(err(
                                "key size",
                                10,
                                ErrorKind::Mismatch {
                                    found: bits.into(),
                                    expected: curve.bits().into(),
                                },
                            ));
                        }
                        let c = curve.coordinate_len();
                        if len != 12 + 2 * c {
                            return Err(ParseError::mismatch(
                                Structure::SrkKey,
                                "length",
                                (offset + 1) as u64,
                                len as u64,
                                (12 + 2 * c) as u64,
                            ));
                        }
                        SrkKeyData::Ec {
                            curve,
                            x: &rec[12..12 + c],
                            y: &rec[12 + c..],
                        }
                    }
                    other => {
                        return Err(err(
                            "algorithm",
                            3,
                            ErrorKind::Invalid(if other == 0 {
                                "is 0x0, expected 0x21 (RSA) or 0x27 (ECDSA)"
                            } else {
                                "is not 0x21 (RSA) or 0x27 (ECDSA)"
                            }),
                        ));
                    }
                };
                Ok(SrkKey {
                    index,
                    offset,
                    bytes: rec,
                    flags,
                    data,
                })
            }
            (tag, _) => Err(ParseError::new(
                Structure::SrkKey,
                "tag",
                offset as u64,
                ErrorKind::Mismatch {
                    found: tag.into(),
                    expected: TAG_KEY_PUBLIC.into(),
                },
            )),
        }
    }

    /// Whether the record marks a CA key.
    pub fn is_ca(&self) -> bool {
        self.flags & KEY_FLAG_CA != 0
    }

    /// The digest this record contributes to the SRK hash.
    pub fn digest(&self) -> [u8; 32] {
        match self.data {
            SrkKeyData::HashOnly { digest } => {
                let mut d = [0u8; 32];
                d.copy_from_slice(digest);
                d
            }
            _ => Sha256::digest(self.bytes).into(),
        }
    }

    /// Key size in bits (0 for a hash-only record).
    pub fn bits(&self) -> u32 {
        match self.data {
            SrkKeyData::Rsa { modulus, .. } => crate::x509::PublicKey::Rsa {
                modulus,
                exponent: &[],
            }
            .bits(),
            SrkKeyData::Ec { curve, .. } => curve.bits(),
            SrkKeyData::HashOnly { .. } => 0,
        }
    }
}

/// A validated SRK table.
#[derive(Debug, Clone, Copy)]
pub struct SrkTable<'a> {
    bytes: &'a [u8],
    count: usize,
}

impl<'a> SrkTable<'a> {
    /// Parses an SRK table that fills `bytes` up to its header length (trailing bytes are
    /// ignored, as in a CSF). Requires 1-4 well-formed key records that fill the table exactly.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let head = bytes.get(..4).ok_or(ParseError::truncated(
            Structure::SrkTable,
            "header",
            0,
            4,
            bytes.len() as u64,
        ))?;
        if head[0] != TAG_CRT {
            return Err(ParseError::mismatch(
                Structure::SrkTable,
                "tag",
                0,
                head[0].into(),
                TAG_CRT.into(),
            ));
        }
        if head[3] & 0xF0 != 0x40 {
            return Err(ParseError::new(
                Structure::SrkTable,
                "version",
                3,
                ErrorKind::OutOfRange {
                    found: head[3].into(),
                    min: 0x40,
                    max: 0x4F,
                },
            ));
        }
        let len = u16::from_be_bytes([head[1], head[2]]) as usize;
        if len <= 4 {
            return Err(ParseError::new(
                Structure::SrkTable,
                "length",
                1,
                ErrorKind::OutOfRange {
                    found: len as u64,
                    min: 5,
                    max: 0xFFFF,
                },
            ));
        }
        let table = bytes.get(..len).ok_or(ParseError::truncated(
            Structure::SrkTable,
            "length",
            1,
            len as u64,
            bytes.len() as u64,
        ))?;
        let mut off = 4;
        let mut count = 0;
        while off < len {
            if count == MAX_SRKS {
                return Err(ParseError::invalid(
                    Structure::SrkTable,
                    "length",
                    1,
                    "holds more than 4 keys",
                ));
            }
            let key = SrkKey::parse(&table[off..], count, off)?;
            off += key.bytes.len();
            count += 1;
        }
        Ok(SrkTable {
            bytes: table,
            count,
        })
    }

    /// The whole table, header included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Always false: a parsed table holds at least one key.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The keys in table order.
    pub fn keys(&self) -> impl Iterator<Item = SrkKey<'a>> + 'a {
        let bytes = self.bytes;
        let mut off = 4;
        let mut index = 0;
        core::iter::from_fn(move || {
            let key = SrkKey::parse(bytes.get(off..)?, index, off).ok()?;
            off += key.bytes.len();
            index += 1;
            Some(key)
        })
    }

    /// Key `index`, if the table has it.
    pub fn key(&self, index: usize) -> Option<SrkKey<'a>> {
        self.keys().nth(index)
    }

    /// The SRK hash as `srktool` writes it into its fuse file.
    pub fn hash(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for k in self.keys() {
            h.update(k.digest());
        }
        h.finalize().into()
    }

    /// Whether the table's hash equals a 32-byte fuse file.
    pub fn matches_fuses(&self, fuse_file: &[u8; 32]) -> bool {
        self.hash() == *fuse_file
    }
}

/// The eight fuse words (OCOTP bank 6 words 0-3, bank 7 words 0-3) of an SRK hash: word k is
/// the little-endian u32 of hash bytes `[4k, 4k + 4)` (docs/hab4-format.md §7).
pub fn fuse_words(hash: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (k, c) in hash.chunks_exact(4).enumerate() {
        w[k] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ec_record(fill: u8) -> [u8; 76] {
        let mut r = [fill; 76];
        r[..12].copy_from_slice(&[
            0xE1, 0x00, 0x4C, 0x27, 0, 0, 0, 0x80, 0x4B, 0x00, 0x01, 0x00,
        ]);
        r
    }

    fn table(records: &[[u8; 76]]) -> Vec<u8> {
        let len = 4 + 76 * records.len();
        let mut t = vec![0xD7, (len >> 8) as u8, len as u8, 0x40];
        for r in records {
            t.extend_from_slice(r);
        }
        t
    }

    #[test]
    fn hash_is_sha256_of_record_digests() {
        let t = table(&[ec_record(1), ec_record(2)]);
        let srk = SrkTable::parse(&t).unwrap();
        assert_eq!(srk.len(), 2);
        let mut cat = Vec::new();
        cat.extend_from_slice(&Sha256::digest(ec_record(1)));
        cat.extend_from_slice(&Sha256::digest(ec_record(2)));
        assert_eq!(srk.hash(), <[u8; 32]>::from(Sha256::digest(&cat)));
        assert!(srk.key(1).unwrap().is_ca());
    }

    #[test]
    fn hash_only_record_contributes_its_stored_digest() {
        let full = SrkTable::parse(&table(&[ec_record(1), ec_record(2)]))
            .unwrap()
            .hash();
        let mut t = table(&[ec_record(1)]);
        t.extend_from_slice(&[0xEE, 0x00, 0x24, 0x17]);
        t.extend_from_slice(&Sha256::digest(ec_record(2)));
        let len = t.len();
        t[1..3].copy_from_slice(&(len as u16).to_be_bytes());
        let mixed = SrkTable::parse(&t).unwrap();
        assert!(matches!(
            mixed.key(1).unwrap().data,
            SrkKeyData::HashOnly { .. }
        ));
        assert_eq!(mixed.hash(), full);
    }

    #[test]
    fn five_keys_and_bad_records_are_rejected_with_offsets() {
        assert!(SrkTable::parse(&table(&[ec_record(0); 5])).is_err());
        let mut t = table(&[ec_record(0), ec_record(0)]);
        t[4 + 76 + 8] = 0x4C; // unknown curve id in record 1
        let e = SrkTable::parse(&t).unwrap_err();
        assert_eq!(
            (e.structure, e.field, e.offset),
            (Structure::SrkKey, "curve id", 4 + 76 + 8)
        );
    }

    #[test]
    fn fuse_words_are_little_endian() {
        let mut h = [0u8; 32];
        h[..4].copy_from_slice(&[0xff, 0x4a, 0xfa, 0x52]);
        assert_eq!(fuse_words(&h)[0], 0x52FA4AFF);
    }
}
