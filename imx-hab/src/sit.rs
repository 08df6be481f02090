//! The ROM's Secondary Image Table (imx8m-facts.md §3.1-§3.2; U-Boot `doc/board/nxp/psb.rst`).
//!
//! Five little-endian words at sector 0x41: `{chipNum, driveType, tag 0x00112233,
//! firstSectorNumber, sectorCount}`; the unused words are written as 0. `firstSectorNumber` is
//! the offset of the B-copy *area* in sectors: the ROM adds the same image offset it uses for
//! the primary (0x42 on i.MX 8M Mini) to find the secondary flash.bin.

use boards::{MediaLayout, SECTOR_SIZE};
use zerocopy::byteorder::little_endian;
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::{ErrorKind, ParseError, Result, Structure};

/// The SIT tag word (psb.rst).
pub const SIT_TAG: u32 = 0x0011_2233;
/// Bytes of the table proper.
pub const SIT_SIZE: usize = 20;

/// The table as laid out on the medium.
#[derive(Debug, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RawSit {
    /// `chipNum`, unused, 0.
    pub chip_num: little_endian::U32,
    /// `driveType`, unused, 0.
    pub drive_type: little_endian::U32,
    /// Tag, 0x00112233.
    pub tag: little_endian::U32,
    /// B-copy area offset in sectors.
    pub first_sector_number: little_endian::U32,
    /// `sectorCount`, unused, 0.
    pub sector_count: little_endian::U32,
}

/// A decoded (not yet validated) Secondary Image Table.
#[derive(Debug, Clone, Copy)]
pub struct Sit<'a> {
    raw: &'a RawSit,
}

/// Where a valid SIT puts the secondary copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecondaryArea {
    /// `firstSectorNumber` of the table.
    pub first_sector: u32,
    /// Byte offset of the secondary flash.bin on the device.
    pub offset: u64,
    /// Bytes available to the secondary copy before the end of the device.
    pub capacity: u64,
}

impl<'a> Sit<'a> {
    /// Decodes the table at the start of `bytes` (at least 20 bytes). The tag is not checked
    /// here so that a caller can report what it found; [`Sit::validate`] checks it.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let (raw, _) = RawSit::ref_from_prefix(bytes).map_err(|_| {
            ParseError::truncated(
                Structure::Sit,
                "chipNum",
                0,
                SIT_SIZE as u64,
                bytes.len() as u64,
            )
        })?;
        Ok(Sit { raw })
    }

    /// The tag word.
    pub fn tag(&self) -> u32 {
        self.raw.tag.get()
    }
    /// `firstSectorNumber`.
    pub fn first_sector_number(&self) -> u32 {
        self.raw.first_sector_number.get()
    }
    /// The unused words `chipNum`, `driveType`, `sectorCount` in that order.
    pub fn unused_words(&self) -> [u32; 3] {
        [
            self.raw.chip_num.get(),
            self.raw.drive_type.get(),
            self.raw.sector_count.get(),
        ]
    }

    /// Checks the table against a device: the tag, that the secondary copy starts after the
    /// primary copy ends (`primary_len` bytes from the layout's image sector), and that
    /// `copy_len` bytes from the secondary's start lie inside the device.
    pub fn validate(
        &self,
        layout: &MediaLayout,
        device_bytes: u64,
        primary_len: u64,
        copy_len: u64,
    ) -> Result<SecondaryArea> {
        if self.tag() != SIT_TAG {
            return Err(ParseError::mismatch(
                Structure::Sit,
                "tag",
                8,
                self.tag().into(),
                SIT_TAG.into(),
            ));
        }
        let first = self.first_sector_number();
        let offset = layout.secondary_offset(first).ok_or(ParseError::invalid(
            Structure::Sit,
            "firstSectorNumber",
            12,
            "overflows the device address",
        ))?;
        let primary_end = layout.primary_offset().saturating_add(primary_len);
        if offset < primary_end {
            // firstSectorNumber must be at least ceil(primary_len / 512).
            let min = primary_len.div_ceil(SECTOR_SIZE);
            return Err(ParseError::new(
                Structure::Sit,
                "firstSectorNumber",
                12,
                ErrorKind::OutOfRange {
                    found: first.into(),
                    min,
                    max: u32::MAX.into(),
                },
            ));
        }
        let end = offset.checked_add(copy_len);
        match end {
            Some(end) if end <= device_bytes => {}
            _ => {
                let max = (device_bytes.saturating_sub(copy_len) / SECTOR_SIZE)
                    .saturating_sub(layout.image_sector);
                let min = primary_len.div_ceil(SECTOR_SIZE);
                if max < min {
                    return Err(ParseError::invalid(
                        Structure::Sit,
                        "firstSectorNumber",
                        12,
                        "the device is too small for a secondary copy after the primary",
                    ));
                }
                return Err(ParseError::new(
                    Structure::Sit,
                    "firstSectorNumber",
                    12,
                    ErrorKind::OutOfRange {
                        found: first.into(),
                        min,
                        max,
                    },
                ));
            }
        }
        Ok(SecondaryArea {
            first_sector: first,
            offset,
            capacity: device_bytes - offset,
        })
    }
}

/// Builds the 512-byte sector holding a SIT with `first_sector` (unused words and the rest of
/// the sector zero, as imx-mkimage's `gen_sit.sh` writes it).
pub fn build_sector(first_sector: u32) -> [u8; SECTOR_SIZE as usize] {
    let mut s = [0u8; SECTOR_SIZE as usize];
    s[8..12].copy_from_slice(&SIT_TAG.to_le_bytes());
    s[12..16].copy_from_slice(&first_sector.to_le_bytes());
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use boards::AN12900_LAYOUT as L;

    const MIB: u64 = 1 << 20;

    #[test]
    fn standard_table_round_trips_with_psb_rst_bytes() {
        let s = build_sector(0x1000);
        assert_eq!(
            &s[..20],
            &[
                0, 0, 0, 0, 0, 0, 0, 0, 0x33, 0x22, 0x11, 0, 0, 0x10, 0, 0, 0, 0, 0, 0
            ]
        );
        let sit = Sit::parse(&s).unwrap();
        let area = sit.validate(&L, 64 * MIB, 2 * MIB, 2 * MIB).unwrap();
        assert_eq!(
            area,
            SecondaryArea {
                first_sector: 0x1000,
                offset: 0x20_8400,
                capacity: 64 * MIB - 0x20_8400
            }
        );
    }

    #[test]
    fn wrong_tag_is_named() {
        let mut s = build_sector(0x1000);
        s[8] = 0x34;
        let e = Sit::parse(&s)
            .unwrap()
            .validate(&L, 64 * MIB, 2 * MIB, 2 * MIB)
            .unwrap_err();
        assert_eq!((e.field, e.offset), ("tag", 8));
        assert_eq!(
            e.kind,
            ErrorKind::Mismatch {
                found: 0x0011_2234,
                expected: SIT_TAG as u64
            }
        );
    }

    #[test]
    fn secondary_overlapping_the_primary_is_rejected() {
        let s = build_sector(0x800); // 1 MiB area: overlaps a 2 MiB primary
        let e = Sit::parse(&s)
            .unwrap()
            .validate(&L, 64 * MIB, 2 * MIB, 2 * MIB)
            .unwrap_err();
        assert_eq!(e.field, "firstSectorNumber");
        assert!(
            matches!(
                e.kind,
                ErrorKind::OutOfRange {
                    found: 0x800,
                    min: 0x1000,
                    ..
                }
            ),
            "{e}"
        );
        assert!(
            Sit::parse(&build_sector(0))
                .unwrap()
                .validate(&L, 64 * MIB, 1, 1)
                .is_err()
        );
    }

    #[test]
    fn secondary_past_the_end_of_the_device_is_rejected() {
        let s = build_sector(0x1000);
        assert!(
            Sit::parse(&s)
                .unwrap()
                .validate(&L, 4 * MIB, 2 * MIB, 2 * MIB)
                .is_err()
        );
        let huge = build_sector(u32::MAX);
        assert!(
            Sit::parse(&huge)
                .unwrap()
                .validate(&L, u64::MAX, 1, 1)
                .is_ok()
        );
        assert!(
            Sit::parse(&huge)
                .unwrap()
                .validate(&L, 1 << 40, 1, 1)
                .is_err()
        );
    }

    #[test]
    fn a_device_too_small_for_any_secondary_says_so() {
        let s = build_sector(0x1000);
        let e = Sit::parse(&s)
            .unwrap()
            .validate(&L, 4 * MIB, 2 * MIB, 2 * MIB)
            .unwrap_err();
        assert!(e.to_string().contains("too small"), "{e}");
    }

    #[test]
    fn short_input_is_truncated() {
        assert!(matches!(
            Sit::parse(&[0; 19]).unwrap_err().kind,
            ErrorKind::Truncated {
                needed: 20,
                available: 19
            }
        ));
    }
}
