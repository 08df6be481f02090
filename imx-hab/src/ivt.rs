//! Image Vector Table and boot data (docs/hab4-format.md §3; imx8m-facts.md §2.1).
//!
//! The IVT is the ROM's entry structure: a HAB-style header `D1 0020 4v` followed by seven
//! little-endian words. It heads every flash.bin (the SPL's IVT) and follows a signed FIT at
//! `ALIGN(totalsize, 0x1000)`.

use zerocopy::byteorder::{big_endian, little_endian};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::codes::TAG_IVT;
use crate::{ErrorKind, ParseError, Result, Structure};

/// Size of an IVT in bytes.
pub const IVT_SIZE: usize = 0x20;
/// Size of a boot data structure in bytes.
pub const BOOT_DATA_SIZE: usize = 12;

/// Lowest IVT version byte accepted (HAB 4.0).
pub const IVT_VERSION_MIN: u8 = 0x40;
/// Highest IVT version byte accepted (HAB 4.3; `mkimage` and U-Boot write 0x41).
pub const IVT_VERSION_MAX: u8 = 0x43;

/// The IVT as laid out in memory.
#[derive(Debug, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawIvt {
    /// Tag, 0xD1.
    pub tag: u8,
    /// Length, big-endian, 0x0020.
    pub length: big_endian::U16,
    /// Version, 0x40..=0x43.
    pub version: u8,
    /// Absolute address of the first instruction (or of the signed data).
    pub entry: little_endian::U32,
    /// Reserved, 0.
    pub reserved1: little_endian::U32,
    /// Absolute address of the DCD, 0 when none.
    pub dcd: little_endian::U32,
    /// Absolute address of the boot data, 0 when none.
    pub boot_data: little_endian::U32,
    /// Absolute address the IVT itself is expected at.
    pub self_addr: little_endian::U32,
    /// Absolute address of the CSF, 0 when the image is not signed.
    pub csf: little_endian::U32,
    /// Reserved, 0.
    pub reserved2: little_endian::U32,
}

/// A validated IVT, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub struct Ivt<'a> {
    raw: &'a RawIvt,
}

impl<'a> Ivt<'a> {
    /// Parses the IVT at the start of `bytes`.
    ///
    /// Checks the header (tag 0xD1, length 0x20, version 0x40..=0x43), that `entry` and `self`
    /// are non-zero and that both reserved words are zero. The DCD and CSF pointers are decoded
    /// as they are; callers with a policy on them check [`Ivt::dcd`] and [`Ivt::csf`].
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (raw, _) = RawIvt::ref_from_prefix(bytes).map_err(|_| {
            ParseError::truncated(
                Structure::Ivt,
                "header",
                0,
                IVT_SIZE as u64,
                bytes.len() as u64,
            )
        })?;
        if raw.tag != TAG_IVT {
            return Err(ParseError::mismatch(
                Structure::Ivt,
                "tag",
                0,
                raw.tag.into(),
                TAG_IVT.into(),
            ));
        }
        if raw.length.get() as usize != IVT_SIZE {
            return Err(ParseError::mismatch(
                Structure::Ivt,
                "length",
                1,
                raw.length.get().into(),
                IVT_SIZE as u64,
            ));
        }
        if !(IVT_VERSION_MIN..=IVT_VERSION_MAX).contains(&raw.version) {
            return Err(ParseError::new(
                Structure::Ivt,
                "version",
                3,
                ErrorKind::OutOfRange {
                    found: raw.version.into(),
                    min: IVT_VERSION_MIN.into(),
                    max: IVT_VERSION_MAX.into(),
                },
            ));
        }
        if raw.entry.get() == 0 {
            return Err(ParseError::new(Structure::Ivt, "entry", 4, ErrorKind::Zero));
        }
        if raw.reserved1.get() != 0 {
            return Err(ParseError::new(
                Structure::Ivt,
                "reserved1",
                8,
                ErrorKind::NotZero {
                    found: raw.reserved1.get().into(),
                },
            ));
        }
        if raw.self_addr.get() == 0 {
            return Err(ParseError::new(
                Structure::Ivt,
                "self",
                0x14,
                ErrorKind::Zero,
            ));
        }
        if raw.reserved2.get() != 0 {
            return Err(ParseError::new(
                Structure::Ivt,
                "reserved2",
                0x1C,
                ErrorKind::NotZero {
                    found: raw.reserved2.get().into(),
                },
            ));
        }
        Ok(Ivt { raw })
    }

    /// Whether `bytes` starts with an IVT header (`D1 00 20 4v`), without further checks.
    pub fn has_header(bytes: &[u8]) -> bool {
        matches!(bytes, [TAG_IVT, 0x00, 0x20, v, ..] if (IVT_VERSION_MIN..=IVT_VERSION_MAX).contains(v))
    }

    /// The header bytes read as one little-endian word, as `csf_parser` prints it (0x412000D1).
    pub fn header_word(&self) -> u32 {
        u32::from_le_bytes([
            self.raw.tag,
            self.raw.length.get().to_be_bytes()[0],
            self.raw.length.get().to_be_bytes()[1],
            self.raw.version,
        ])
    }
    /// Version byte.
    pub fn version(&self) -> u8 {
        self.raw.version
    }
    /// `entry` word.
    pub fn entry(&self) -> u32 {
        self.raw.entry.get()
    }
    /// `reserved1` word (always 0 once parsed).
    pub fn reserved1(&self) -> u32 {
        self.raw.reserved1.get()
    }
    /// `dcd` word.
    pub fn dcd(&self) -> u32 {
        self.raw.dcd.get()
    }
    /// `boot_data` word.
    pub fn boot_data(&self) -> u32 {
        self.raw.boot_data.get()
    }
    /// `self` word.
    pub fn self_addr(&self) -> u32 {
        self.raw.self_addr.get()
    }
    /// `csf` word.
    pub fn csf(&self) -> u32 {
        self.raw.csf.get()
    }
    /// `reserved2` word (always 0 once parsed).
    pub fn reserved2(&self) -> u32 {
        self.raw.reserved2.get()
    }

    /// Byte offset of an absolute address relative to this IVT, if the address is at or after it.
    pub fn offset_of(&self, addr: u32) -> Option<u64> {
        addr.checked_sub(self.self_addr()).map(u64::from)
    }
}

/// Boot data as laid out in memory (three little-endian words).
#[derive(Debug, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawBootData {
    /// Absolute address the whole image is copied to.
    pub start: little_endian::U32,
    /// Size of the image the ROM copies.
    pub size: little_endian::U32,
    /// Plugin flag.
    pub plugin: little_endian::U32,
}

/// Validated boot data, borrowed from the input.
#[derive(Debug, Clone, Copy)]
pub struct BootData<'a> {
    raw: &'a RawBootData,
}

impl<'a> BootData<'a> {
    /// Parses boot data at the start of `bytes`: `size` must be non-zero and `plugin` 0 or 1.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (raw, _) = RawBootData::ref_from_prefix(bytes).map_err(|_| {
            ParseError::truncated(
                Structure::BootData,
                "start",
                0,
                BOOT_DATA_SIZE as u64,
                bytes.len() as u64,
            )
        })?;
        if raw.size.get() == 0 {
            return Err(ParseError::new(
                Structure::BootData,
                "size",
                4,
                ErrorKind::Zero,
            ));
        }
        if raw.plugin.get() > 1 {
            return Err(ParseError::new(
                Structure::BootData,
                "plugin",
                8,
                ErrorKind::OutOfRange {
                    found: raw.plugin.get().into(),
                    min: 0,
                    max: 1,
                },
            ));
        }
        Ok(BootData { raw })
    }
    /// `start` word.
    pub fn start(&self) -> u32 {
        self.raw.start.get()
    }
    /// `size` word.
    pub fn size(&self) -> u32 {
        self.raw.size.get()
    }
    /// `plugin` word.
    pub fn plugin(&self) -> u32 {
        self.raw.plugin.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fixture IVT of docs/hab4-format.md §3 (load 0x44000000, ivt_off 0x56000).
    const FIT_IVT: [u8; 32] = [
        0xd1, 0x00, 0x20, 0x41, 0x00, 0x00, 0x00, 0x44, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x00,
        0x60, 0x05, 0x44, 0x20, 0x60, 0x05, 0x44, 0, 0, 0, 0,
    ];

    #[test]
    fn decodes_every_field_of_a_fit_ivt() {
        let ivt = Ivt::parse(&FIT_IVT).unwrap();
        assert_eq!(ivt.header_word(), 0x412000D1);
        assert_eq!(ivt.entry(), 0x4400_0000);
        assert_eq!(
            (ivt.reserved1(), ivt.dcd(), ivt.boot_data(), ivt.reserved2()),
            (0, 0, 0, 0)
        );
        assert_eq!(ivt.self_addr(), 0x4405_6000);
        assert_eq!(ivt.csf(), 0x4405_6020);
        assert_eq!(ivt.offset_of(0x4405_6020), Some(0x20));
    }

    #[test]
    fn rejects_each_header_field_with_its_offset() {
        let cases: [(usize, u8, &str, u64); 5] = [
            (0, 0xD2, "tag", 0),
            (2, 0x21, "length", 1),
            (3, 0x44, "version", 3),
            (8, 1, "reserved1", 8),
            (0x1C, 1, "reserved2", 0x1C),
        ];
        for (at, val, field, off) in cases {
            let mut b = FIT_IVT;
            b[at] = val;
            let e = Ivt::parse(&b).unwrap_err();
            assert_eq!((e.field, e.offset), (field, off), "{e}");
        }
        let mut b = FIT_IVT;
        b[4..8].fill(0);
        assert_eq!(Ivt::parse(&b).unwrap_err().kind, ErrorKind::Zero);
    }

    #[test]
    fn truncated_ivt_says_how_much_is_missing() {
        let e = Ivt::parse(&FIT_IVT[..31]).unwrap_err();
        assert_eq!(
            e.kind,
            ErrorKind::Truncated {
                needed: 32,
                available: 31
            }
        );
    }

    #[test]
    fn boot_data_needs_a_size_and_a_boolean_plugin() {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&0x7E0FC0u32.to_le_bytes());
        b[4..8].copy_from_slice(&0x30000u32.to_le_bytes());
        let bd = BootData::parse(&b).unwrap();
        assert_eq!((bd.start(), bd.size(), bd.plugin()), (0x7E0FC0, 0x30000, 0));
        b[8] = 2;
        assert_eq!(BootData::parse(&b).unwrap_err().field, "plugin");
        b[4..8].fill(0);
        assert_eq!(BootData::parse(&b).unwrap_err().field, "size");
    }
}
