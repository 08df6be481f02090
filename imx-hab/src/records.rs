//! The records a CSF points to (docs/hab4-format.md §5): an SRK table (`D7` … `40`), X.509
//! certificates (`D7`) and CMS signatures (`D8`), each `tag | len (BE) | version | body`,
//! located by CSF-relative offsets in the commands, never by position.

use crate::cms::CmsSignature;
use crate::codes::{TAG_CRT, TAG_SIG};
use crate::srk::SrkTable;
use crate::x509::Certificate;
use crate::{ErrorKind, ParseError, Result, Structure};

/// Size of a record header.
pub const RECORD_HEADER_SIZE: usize = 4;

/// A record header and its bytes, borrowed from the CSF.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Offset of the record from the start of the CSF.
    pub offset: u64,
    /// Tag byte.
    pub tag: u8,
    /// Version byte (0x40 for SRK tables, the CSF version for certificates and signatures).
    pub version: u8,
    /// The whole record, header included (`len` bytes).
    pub bytes: &'a [u8],
}

impl<'a> Record<'a> {
    /// Parses the record at `offset` in `csf` and requires tag `tag` and a HAB 4.x version.
    pub fn parse(csf: &'a [u8], offset: u64, tag: u8, structure: Structure) -> Result<Self> {
        let avail = (csf.len() as u64).saturating_sub(offset);
        let start = usize::try_from(offset).ok().filter(|&o| o <= csf.len());
        let head = start.and_then(|s| csf.get(s..s + RECORD_HEADER_SIZE));
        let (Some(start), Some(head)) = (start, head) else {
            return Err(ParseError::truncated(
                structure,
                "header",
                offset,
                RECORD_HEADER_SIZE as u64,
                avail,
            ));
        };
        if head[0] != tag {
            return Err(ParseError::mismatch(
                structure,
                "tag",
                offset,
                head[0].into(),
                tag.into(),
            ));
        }
        let len = u16::from_be_bytes([head[1], head[2]]) as usize;
        if len <= RECORD_HEADER_SIZE {
            return Err(ParseError::new(
                structure,
                "length",
                offset + 1,
                ErrorKind::OutOfRange {
                    found: len as u64,
                    min: RECORD_HEADER_SIZE as u64 + 1,
                    max: 0xFFFF,
                },
            ));
        }
        if head[3] & 0xF0 != 0x40 {
            return Err(ParseError::new(
                structure,
                "version",
                offset + 3,
                ErrorKind::OutOfRange {
                    found: head[3].into(),
                    min: 0x40,
                    max: 0x4F,
                },
            ));
        }
        let bytes = csf.get(start..start + len).ok_or(ParseError::truncated(
            structure,
            "length",
            offset + 1,
            len as u64,
            avail,
        ))?;
        Ok(Record {
            offset,
            tag,
            version: head[3],
            bytes,
        })
    }

    /// Length from the header (whole record).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always false: a parsed record holds at least its header and one body byte.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The record body (after the 4-byte header).
    pub fn body(&self) -> &'a [u8] {
        &self.bytes[RECORD_HEADER_SIZE..]
    }

    /// Offset of the body from the start of the CSF (what `csf_parser` prints as "Offset").
    pub fn body_offset(&self) -> u64 {
        self.offset + RECORD_HEADER_SIZE as u64
    }
}

/// A certificate record with its certificate decoded.
#[derive(Debug, Clone, Copy)]
pub struct CertificateRecord<'a> {
    /// The record.
    pub record: Record<'a>,
    /// The certificate in its body.
    pub certificate: Certificate<'a>,
}

impl<'a> CertificateRecord<'a> {
    /// Parses the `D7` record at `offset` in `csf` and the X.509 DER in it.
    pub fn parse(csf: &'a [u8], offset: u64) -> Result<Self> {
        let record = Record::parse(csf, offset, TAG_CRT, Structure::Certificate)?;
        let certificate =
            Certificate::parse(record.body()).map_err(|e| e.shifted(record.body_offset()))?;
        Ok(CertificateRecord {
            record,
            certificate,
        })
    }
}

/// A signature record with its CMS decoded.
#[derive(Debug, Clone, Copy)]
pub struct SignatureRecord<'a> {
    /// The record.
    pub record: Record<'a>,
    /// The CMS SignedData in its body.
    pub signature: CmsSignature<'a>,
}

impl<'a> SignatureRecord<'a> {
    /// Parses the `D8` record at `offset` in `csf` and the CMS DER in it.
    pub fn parse(csf: &'a [u8], offset: u64) -> Result<Self> {
        let record = Record::parse(csf, offset, TAG_SIG, Structure::Signature)?;
        let signature =
            CmsSignature::parse(record.body()).map_err(|e| e.shifted(record.body_offset()))?;
        Ok(SignatureRecord { record, signature })
    }
}

/// An SRK table record with its keys decoded.
#[derive(Debug, Clone, Copy)]
pub struct SrkTableRecord<'a> {
    /// The record.
    pub record: Record<'a>,
    /// The table (the same bytes, decoded).
    pub table: SrkTable<'a>,
}

impl<'a> SrkTableRecord<'a> {
    /// Parses the SRK table at `offset` in `csf`.
    pub fn parse(csf: &'a [u8], offset: u64) -> Result<Self> {
        let record = Record::parse(csf, offset, TAG_CRT, Structure::SrkTable)?;
        let table = SrkTable::parse(record.bytes).map_err(|e| e.shifted(offset))?;
        Ok(SrkTableRecord { record, table })
    }
}
