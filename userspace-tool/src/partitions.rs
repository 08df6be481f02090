//! The partition tables on the boot medium (issue 12, item 1): what `ubootctl` must not
//! overwrite when it writes a boot copy or the SIT at their fixed byte offsets (design.md §4).
//!
//! [`read_partition_map`] reads, through [`BlockDevice`] only and without writing:
//!
//! - the DOS/MBR table at LBA 0 (four primary entries) and, for every extended entry, the EBR
//!   chain of its logical partitions (numbered from 5 as Linux does), bounded by [`MAX_EBRS`]
//!   and protected against loops;
//! - the protective MBR (an entry of type 0xEE) and the GPT: the primary header at LBA 1 and its
//!   entry array, and the backup header at the last LBA (or where the primary's `AlternateLBA`
//!   points, when the device grew) and its entry array. Each header is checked as UEFI 2.10
//!   §5.3.2 says: signature, `HeaderSize` within 92..=block size, header CRC32, `MyLBA`, then the
//!   entry array's CRC32. Entry sizes must be 128 × 2ⁿ up to [`MAX_GPT_ENTRY_SIZE`] and the
//!   array at most [`MAX_GPT_ARRAY_BYTES`]; a header that asks for more is treated as damaged.
//!
//! LBAs are in units of the device's logical block size (512 or 4096; any power of two in
//! 512..=65536 is accepted). The result, a [`PartitionMap`], holds the byte range of every
//! partition and of every table (MBR sector, EBRs, both GPT headers and entry arrays), and the
//! [`Damage`] found: a damaged copy of the GPT is reported and the other copy's partitions are
//! used. [`conflicts`] names every partition and table a byte range touches.
//!
//! When in doubt the map says more rather than less: a valid GPT without a protective MBR is
//! still reported, the extended (container) partition is listed beside its logical partitions,
//! a protective MBR whose GPT cannot be read keeps its 0xEE entry as a partition (covering the
//! whole disk), and when the two GPT copies disagree both copies' partitions are listed.
//!
//! Nothing here panics on any content of the medium: every count is bounded, every offset is
//! checked against the device size before a read, and all arithmetic is checked or saturating.
//! An error is returned only when the device itself fails a read inside its size, or reports
//! an unusable logical block size.

use std::fmt;
use std::io;
use std::ops::Range;

use zerocopy::byteorder::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, KnownLayout, Unaligned};

use crate::blockdev::BlockDevice;

/// Most EBRs followed in one extended partition's chain (Linux stops after 100 hops without a
/// partition and at 256 partitions in all).
pub const MAX_EBRS: usize = 128;
/// Largest GPT entry size accepted (UEFI: 128 × 2ⁿ; every tool writes 128).
pub const MAX_GPT_ENTRY_SIZE: u32 = 4096;
/// Largest GPT entry array accepted, in bytes: 8192 entries of 128 bytes (the usual array is
/// 128 entries, 16 KiB).
pub const MAX_GPT_ARRAY_BYTES: u64 = 1 << 20;

/// Bytes of the MBR (and of an EBR) proper.
const MBR_SIZE: usize = 512;
const MBR_ENTRIES: usize = 446;
const MBR_MAGIC: [u8; 2] = [0x55, 0xAA];
const GPT_SIGNATURE: &[u8; 8] = b"EFI PART";
const GPT_HEADER_MIN: u32 = 92;
const GPT_ENTRY_MIN: u32 = 128;
/// DOS partition type of the protective MBR's entry.
const TYPE_PROTECTIVE: u8 = 0xEE;

/// A partition table entry of the MBR or an EBR, as on the medium.
#[derive(Debug, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawDosEntry {
    status: u8,
    first_chs: [u8; 3],
    kind: u8,
    last_chs: [u8; 3],
    start_lba: U32,
    sectors: U32,
}

/// The GPT header fields of UEFI 2.10 table 5-5 (92 bytes).
#[derive(Debug, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawGptHeader {
    signature: [u8; 8],
    revision: U32,
    header_size: U32,
    header_crc32: U32,
    reserved: U32,
    my_lba: U64,
    alternate_lba: U64,
    first_usable_lba: U64,
    last_usable_lba: U64,
    disk_guid: [u8; 16],
    entries_lba: U64,
    entry_count: U32,
    entry_size: U32,
    entries_crc32: U32,
}

/// The first 128 bytes of a GPT entry (UEFI 2.10 table 5-6).
#[derive(Debug, FromBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct RawGptEntry {
    type_guid: [u8; 16],
    unique_guid: [u8; 16],
    first_lba: U64,
    last_lba: U64,
    attributes: U64,
    name: [U16; 36],
}

/// A GUID as stored in a GPT (the first three fields little-endian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Guid(pub [u8; 16]);

impl Guid {
    /// The all-zero GUID, which marks an unused GPT entry.
    pub const ZERO: Guid = Guid([0; 16]);

    /// The GUID from its canonical text (`0FC63DAF-8483-4772-8E79-3D69D8477DE4`), or `None`.
    pub fn parse(text: &str) -> Option<Guid> {
        let dashes = text.bytes().enumerate().filter(|&(_, b)| b == b'-');
        if text.len() != 36 || !dashes.map(|(i, _)| i).eq([8, 13, 18, 23]) {
            return None;
        }
        let digits: Vec<u32> = text
            .chars()
            .filter(|&c| c != '-')
            .map(|c| c.to_digit(16))
            .collect::<Option<_>>()?;
        let mut be = [0u8; 16];
        for (b, pair) in be.iter_mut().zip(digits.chunks_exact(2)) {
            *b = (pair[0] * 16 + pair[1]) as u8;
        }
        let mut g = be;
        g[0..4].reverse();
        g[4..6].reverse();
        g[6..8].reverse();
        Some(Guid(g))
    }

    /// The name `sfdisk` gives this partition type GUID, for the common ones.
    pub fn type_name(&self) -> Option<&'static str> {
        const KNOWN: &[(&str, &str)] = &[
            ("0FC63DAF-8483-4772-8E79-3D69D8477DE4", "Linux filesystem"),
            (
                "B921B045-1DF0-41C3-AF44-4C6F280D3FAE",
                "Linux root (ARM-64)",
            ),
            (
                "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709",
                "Linux root (x86-64)",
            ),
            (
                "B0E01050-EE5F-4390-949A-9101B17104E9",
                "Linux /usr (ARM-64)",
            ),
            ("933AC7E1-2EB4-4F13-B844-0E14E2AEF915", "Linux home"),
            ("0657FD6D-A4AB-43C4-84E5-0933C84B4F4F", "Linux swap"),
            ("E6D6D379-F507-44C2-A23C-238F2A3DF928", "Linux LVM"),
            ("A19D880F-05FC-4D3B-A006-743F0F84911E", "Linux RAID"),
            ("C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "EFI System"),
            (
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7",
                "Microsoft basic data",
            ),
            ("21686148-6449-6E6F-744E-656564454649", "BIOS boot"),
        ];
        let text = self.to_string();
        KNOWN.iter().find(|(g, _)| *g == text).map(|(_, n)| *n)
    }
}

impl fmt::Display for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = &self.0;
        write!(
            f,
            "{:02X}{:02X}{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-{:02X}{:02X}-",
            g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6], g[8], g[9]
        )?;
        g[10..].iter().try_for_each(|b| write!(f, "{b:02X}"))
    }
}

/// The name of a DOS partition type, for the common ones.
pub fn dos_type_name(kind: u8) -> Option<&'static str> {
    Some(match kind {
        0x01 => "FAT12",
        0x04 => "FAT16 <32M",
        0x05 => "Extended",
        0x06 => "FAT16",
        0x07 => "HPFS/NTFS/exFAT",
        0x0b => "W95 FAT32",
        0x0c => "W95 FAT32 (LBA)",
        0x0e => "W95 FAT16 (LBA)",
        0x0f => "W95 Ext'd (LBA)",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x85 => "Linux extended",
        0x8e => "Linux LVM",
        0xda => "Non-FS data",
        0xee => "GPT protective",
        0xef => "EFI (FAT-12/16/32)",
        0xfd => "Linux raid autodetect",
        _ => return None,
    })
}

/// Whether a DOS type is an extended partition (a container of logical partitions).
fn is_extended(kind: u8) -> bool {
    matches!(kind, 0x05 | 0x0f | 0x85)
}

/// Where a DOS partition's entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DosRole {
    /// One of the four entries of the MBR.
    Primary,
    /// An MBR entry of an extended type: the container of the logical partitions.
    Extended,
    /// A logical partition, described by an EBR.
    Logical,
}

/// What kind of partition an entry describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionKind {
    /// An entry of the MBR or of an EBR.
    Dos {
        /// The DOS partition type byte.
        type_byte: u8,
        /// Which kind of entry.
        role: DosRole,
    },
    /// An entry of the GPT.
    Gpt {
        /// The partition type GUID.
        type_guid: Guid,
        /// The partition name (UTF-16 on the medium; invalid units replaced).
        name: String,
    },
}

/// A partition and the bytes it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// Its number as Linux gives it: MBR entries 1-4, logical partitions from 5 in chain order,
    /// GPT entry index + 1.
    pub number: u32,
    /// Its table and type.
    pub kind: PartitionKind,
    /// Its byte range on the device (it may extend past the device end: see
    /// [`Damage::PartitionPastEnd`]).
    pub range: Range<u64>,
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            PartitionKind::Dos { type_byte, role } => {
                let role = match role {
                    DosRole::Primary => "",
                    DosRole::Extended => "extended ",
                    DosRole::Logical => "logical ",
                };
                write!(
                    f,
                    "DOS {role}partition {} (type {type_byte:#04x}",
                    self.number
                )?;
                if let Some(name) = dos_type_name(*type_byte) {
                    write!(f, ", {name}")?;
                }
                f.write_str(")")?;
            }
            PartitionKind::Gpt { type_guid, name } => {
                write!(f, "GPT partition {}", self.number)?;
                if !name.is_empty() {
                    write!(f, " {name:?}")?;
                }
                match type_guid.type_name() {
                    Some(t) => write!(f, " ({t})")?,
                    None => write!(f, " (type {type_guid})")?,
                }
            }
        }
        write!(f, " at {}", hex_range(&self.range))
    }
}

/// Which copy of the GPT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GptCopy {
    /// The primary copy: header at LBA 1, entries usually at LBA 2.
    Primary,
    /// The backup copy: header at the last LBA, entries just before it.
    Backup,
}

impl fmt::Display for GptCopy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GptCopy::Primary => "primary",
            GptCopy::Backup => "backup",
        })
    }
}

/// What a table region holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableKind {
    /// LBA 0 holding a DOS partition table.
    Mbr,
    /// LBA 0 holding a protective (or hybrid) MBR in front of a GPT.
    ProtectiveMbr,
    /// An extended boot record.
    Ebr {
        /// The logical partition it describes, if it describes one.
        logical: Option<u32>,
    },
    /// A GPT header.
    GptHeader(GptCopy),
    /// A GPT partition entry array.
    GptEntries(GptCopy),
}

/// A region of the device holding a partition table (or where one belongs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// What it is.
    pub kind: TableKind,
    /// Its byte range (whole logical blocks).
    pub range: Range<u64>,
    /// `false` when the table there is damaged or missing and this is where a repair would
    /// write it (such a region is reported all the same: overwriting it loses the repair).
    pub intact: bool,
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            TableKind::Mbr => f.write_str("the MBR")?,
            TableKind::ProtectiveMbr => f.write_str("the protective MBR")?,
            TableKind::Ebr { logical: Some(n) } => write!(f, "the EBR of logical partition {n}")?,
            TableKind::Ebr { logical: None } => f.write_str("an EBR")?,
            TableKind::GptHeader(c) => write!(f, "the {c} GPT header")?,
            TableKind::GptEntries(c) => write!(f, "the {c} GPT entry array")?,
        }
        write!(f, " at {}", hex_range(&self.range))?;
        if !self.intact {
            f.write_str(" (damaged or missing)")?;
        }
        Ok(())
    }
}

/// Why a copy of the GPT was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GptProblem {
    /// No "EFI PART" signature where the header belongs.
    Missing,
    /// `HeaderSize` is outside 92..=block size.
    HeaderSize(u32),
    /// The header's CRC32 does not match.
    HeaderCrc {
        /// Stored in the header.
        stored: u32,
        /// Computed over the header.
        computed: u32,
    },
    /// `MyLBA` is not the LBA the header was read from.
    WrongLba {
        /// Stored in the header.
        stored: u64,
    },
    /// The entry size is not 128 × 2ⁿ up to [`MAX_GPT_ENTRY_SIZE`].
    EntrySize(u32),
    /// The entry array would exceed [`MAX_GPT_ARRAY_BYTES`].
    ArrayTooLarge {
        /// Number of entries the header gives.
        entries: u32,
        /// Size of an entry.
        entry_size: u32,
    },
    /// The entry array does not lie inside the device, or covers LBA 0 or its own header.
    ArrayMisplaced {
        /// First LBA of the array.
        lba: u64,
        /// Its length in logical blocks.
        blocks: u64,
    },
    /// The entry array's CRC32 does not match the header's.
    EntriesCrc {
        /// Stored in the header.
        stored: u32,
        /// Computed over the array.
        computed: u32,
    },
}

impl fmt::Display for GptProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GptProblem::Missing => f.write_str("no header (no \"EFI PART\" signature)"),
            GptProblem::HeaderSize(s) => write!(f, "header size {s} is not within 92..=block size"),
            GptProblem::HeaderCrc { stored, computed } => {
                write!(
                    f,
                    "header CRC32 {stored:#010x} does not match {computed:#010x}"
                )
            }
            GptProblem::WrongLba { stored } => {
                write!(f, "the header says it is at LBA {stored}")
            }
            GptProblem::EntrySize(s) => write!(
                f,
                "entry size {s} is not 128 x 2^n up to {MAX_GPT_ENTRY_SIZE}"
            ),
            GptProblem::ArrayTooLarge {
                entries,
                entry_size,
            } => write!(
                f,
                "{entries} entries of {entry_size} bytes exceed {MAX_GPT_ARRAY_BYTES} bytes"
            ),
            GptProblem::ArrayMisplaced { lba, blocks } => write!(
                f,
                "the entry array (LBA {lba}, {blocks} blocks) does not lie inside the device \
                 clear of LBA 0 and its header"
            ),
            GptProblem::EntriesCrc { stored, computed } => write!(
                f,
                "entry array CRC32 {stored:#010x} does not match {computed:#010x}"
            ),
        }
    }
}

/// Why an EBR chain was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EbrProblem {
    /// The EBR lacks the 0x55AA signature.
    BadSignature,
    /// The EBR lies past the end of the device.
    OutsideDevice,
    /// The chain leads back to an EBR already read.
    Loop,
    /// The chain is longer than [`MAX_EBRS`].
    TooLong,
}

/// Something found damaged or inconsistent while reading the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    /// LBA 0 ends in 0x55AA but an entry's boot indicator is neither 0 nor 0x80: a boot sector
    /// (a FAT file system on the whole device?) rather than a partition table.
    MbrNotATable,
    /// A protective MBR (type 0xEE) whose GPT could not be read from either copy; its 0xEE
    /// entry is kept as a partition.
    GptUnreadable,
    /// A valid GPT with no protective MBR in front of it (Linux ignores such a GPT, other tools
    /// may not; possibly a stale table).
    GptWithoutProtectiveMbr,
    /// A copy of the GPT that was not used.
    Gpt {
        /// Which copy.
        copy: GptCopy,
        /// The LBA its header was looked for at.
        lba: u64,
        /// What is wrong with it.
        problem: GptProblem,
    },
    /// Both copies are valid but list different partitions; both lists are in the map.
    GptCopiesDiffer,
    /// The backup GPT is valid where the primary's `AlternateLBA` points but not at the last LBA
    /// (the device is larger than the image written to it).
    GptBackupNotAtEnd {
        /// Where it is.
        lba: u64,
        /// The device's last LBA.
        last_lba: u64,
    },
    /// A used GPT entry whose last LBA lies before its first (skipped).
    GptEntryInverted {
        /// Which copy.
        copy: GptCopy,
        /// Partition number (entry index + 1).
        number: u32,
        /// First LBA stored.
        first_lba: u64,
        /// Last LBA stored.
        last_lba: u64,
    },
    /// An EBR chain that stops early.
    Ebr {
        /// The LBA of the EBR that could not be used.
        lba: u64,
        /// Why.
        problem: EbrProblem,
    },
    /// A partition that extends past the end of the device.
    PartitionPastEnd(Partition),
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::MbrNotATable => f.write_str(
                "LBA 0 has the 0x55AA signature but is not a partition table (a boot sector?)",
            ),
            Damage::GptUnreadable => {
                f.write_str("the protective MBR announces a GPT, but neither GPT copy is readable")
            }
            Damage::GptWithoutProtectiveMbr => {
                f.write_str("a valid GPT has no protective MBR in front of it")
            }
            Damage::Gpt { copy, lba, problem } => {
                write!(f, "the {copy} GPT (LBA {lba}) is not usable: {problem}")
            }
            Damage::GptCopiesDiffer => {
                f.write_str("the primary and backup GPT list different partitions")
            }
            Damage::GptBackupNotAtEnd { lba, last_lba } => write!(
                f,
                "the backup GPT is at LBA {lba}, not at the last LBA {last_lba}"
            ),
            Damage::GptEntryInverted {
                copy,
                number,
                first_lba,
                last_lba,
            } => write!(
                f,
                "{copy} GPT entry {number} ends (LBA {last_lba}) before it starts (LBA {first_lba})"
            ),
            Damage::Ebr { lba, problem } => {
                let why = match problem {
                    EbrProblem::BadSignature => "lacks the 0x55AA signature",
                    EbrProblem::OutsideDevice => "lies past the end of the device",
                    EbrProblem::Loop => "was already read: the EBR chain loops",
                    EbrProblem::TooLong => "is past the limit of EBRs in one chain",
                };
                write!(
                    f,
                    "the EBR at LBA {lba} {why}; logical partitions after it are unknown"
                )
            }
            Damage::PartitionPastEnd(p) => {
                write!(f, "{p} extends past the end of the device")
            }
        }
    }
}

/// Every partition and partition table on a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMap {
    /// The logical block size the LBAs were read in.
    pub block_size: u32,
    /// The device size in bytes.
    pub device_size: u64,
    /// Every partition, GPT first, then DOS (MBR entries, each extended partition followed by
    /// its logical partitions).
    pub partitions: Vec<Partition>,
    /// Every table region.
    pub tables: Vec<Table>,
    /// What was found damaged or inconsistent.
    pub damage: Vec<Damage>,
}

impl PartitionMap {
    /// Whether no partition table was found at all.
    pub fn is_unpartitioned(&self) -> bool {
        self.tables.is_empty() && self.partitions.is_empty()
    }

    /// Whether the GPT was read from a valid copy.
    pub fn has_gpt(&self) -> bool {
        self.partitions
            .iter()
            .any(|p| matches!(p.kind, PartitionKind::Gpt { .. }))
            || self
                .tables
                .iter()
                .any(|t| t.intact && matches!(t.kind, TableKind::GptHeader(_)))
    }
}

impl fmt::Display for PartitionMap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_unpartitioned() {
            return f.write_str("no partition table");
        }
        let mut first = true;
        let mut line = |f: &mut fmt::Formatter<'_>, s: String| {
            if !std::mem::take(&mut first) {
                f.write_str("\n")?;
            }
            f.write_str(&s)
        };
        for p in &self.partitions {
            line(f, p.to_string())?;
        }
        for t in &self.tables {
            line(f, format!("table: {t}"))?;
        }
        for d in &self.damage {
            line(f, format!("damage: {d}"))?;
        }
        Ok(())
    }
}

/// What a byte range touches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conflict {
    /// The range lies (partly) past the end of the device.
    PastEnd {
        /// The range.
        range: Range<u64>,
        /// The device size in bytes.
        device_size: u64,
    },
    /// The range overlaps a partition table.
    Table {
        /// The range.
        range: Range<u64>,
        /// The table.
        table: Table,
    },
    /// The range overlaps a partition.
    Partition {
        /// The range.
        range: Range<u64>,
        /// The partition.
        partition: Partition,
    },
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conflict::PastEnd { range, device_size } => write!(
                f,
                "bytes {} extend past the end of the device ({device_size:#x} bytes)",
                hex_range(range)
            ),
            Conflict::Table { range, table } => {
                write!(f, "bytes {} overlap {table}", hex_range(range))
            }
            Conflict::Partition { range, partition } => {
                write!(f, "bytes {} overlap {partition}", hex_range(range))
            }
        }
    }
}

/// Every partition and table of `map` that `range` touches, and whether it lies past
/// `device_size`: past-end first, then tables, then partitions, each in map order. An empty
/// range touches nothing.
pub fn conflicts(map: &PartitionMap, range: Range<u64>, device_size: u64) -> Vec<Conflict> {
    let mut out = Vec::new();
    if range.start >= range.end {
        return out;
    }
    let touches = |r: &Range<u64>| r.start < range.end && range.start < r.end;
    if range.end > device_size {
        out.push(Conflict::PastEnd {
            range: range.clone(),
            device_size,
        });
    }
    for t in map.tables.iter().filter(|t| touches(&t.range)) {
        out.push(Conflict::Table {
            range: range.clone(),
            table: t.clone(),
        });
    }
    for p in map.partitions.iter().filter(|p| touches(&p.range)) {
        out.push(Conflict::Partition {
            range: range.clone(),
            partition: p.clone(),
        });
    }
    out
}

fn hex_range(r: &Range<u64>) -> String {
    format!("{:#x}..{:#x}", r.start, r.end)
}

/// Reads every partition table on `dev` (see the module documentation).
///
/// Errors: a read inside the device that fails, or a logical block size that is not a power of
/// two in 512..=65536. Damaged or absurd tables are never errors: they are reported in
/// [`PartitionMap::damage`].
pub fn read_partition_map<D: BlockDevice + ?Sized>(dev: &D) -> io::Result<PartitionMap> {
    let bs = dev.logical_block_size();
    if !bs.is_power_of_two() || !(512..=65536).contains(&bs) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unusable logical block size {bs}"),
        ));
    }
    let mut r = Reader {
        dev,
        bs: u64::from(bs),
        blocks: dev.size() / u64::from(bs),
        map: PartitionMap {
            block_size: bs,
            device_size: dev.size(),
            partitions: Vec::new(),
            tables: Vec::new(),
            damage: Vec::new(),
        },
    };
    if r.blocks == 0 {
        return Ok(r.map);
    }
    r.read_all()?;
    let size = r.map.device_size;
    let past: Vec<Damage> = r
        .map
        .partitions
        .iter()
        .filter(|p| p.range.end > size)
        .map(|p| Damage::PartitionPastEnd(p.clone()))
        .collect();
    r.map.damage.extend(past);
    Ok(r.map)
}

/// The decoded MBR sector.
struct Mbr {
    /// (status, type, start LBA, sectors) of the four entries.
    entries: [(u8, u8, u32, u32); 4],
    /// Every boot indicator is 0 or 0x80.
    boot_ok: bool,
}

impl Mbr {
    /// The table in a 512-byte sector, or `None` without the 0x55AA signature.
    fn parse(sector: &[u8]) -> Option<Mbr> {
        if sector.get(510..512)? != MBR_MAGIC {
            return None;
        }
        let mut entries = [(0, 0, 0, 0); 4];
        for (i, e) in entries.iter_mut().enumerate() {
            let at = MBR_ENTRIES + 16 * i;
            let (raw, _) = RawDosEntry::ref_from_prefix(sector.get(at..at + 16)?).ok()?;
            *e = (raw.status, raw.kind, raw.start_lba.get(), raw.sectors.get());
        }
        let boot_ok = entries.iter().all(|e| e.0 == 0 || e.0 == 0x80);
        Some(Mbr { entries, boot_ok })
    }

    fn protective(&self) -> bool {
        self.entries
            .iter()
            .any(|e| e.1 == TYPE_PROTECTIVE && e.3 != 0)
    }
}

/// A GPT entry in use.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GptEntry {
    number: u32,
    type_guid: Guid,
    first_lba: u64,
    last_lba: u64,
    name: String,
}

/// A valid copy of the GPT.
struct GptRead {
    alternate_lba: u64,
    /// LBA range of the entry array.
    array: Range<u64>,
    entries: Vec<GptEntry>,
    inverted: Vec<(u32, u64, u64)>,
}

enum Probe {
    Valid(GptRead),
    /// The header's problem, and the array's LBA range when the header was good enough to
    /// place it.
    Damaged(GptProblem, Option<Range<u64>>),
}

impl Probe {
    fn valid(&self) -> Option<&GptRead> {
        match self {
            Probe::Valid(g) => Some(g),
            Probe::Damaged(..) => None,
        }
    }
    fn signature_found(&self) -> bool {
        !matches!(self, Probe::Damaged(GptProblem::Missing, _))
    }
}

struct Reader<'a, D: BlockDevice + ?Sized> {
    dev: &'a D,
    bs: u64,
    blocks: u64,
    map: PartitionMap,
}

impl<D: BlockDevice + ?Sized> Reader<'_, D> {
    /// The byte range of `count` blocks at `lba`, saturating.
    fn bytes(&self, lba: u64, count: u64) -> Range<u64> {
        let start = lba.saturating_mul(self.bs);
        start..lba.saturating_add(count).saturating_mul(self.bs)
    }

    /// `len` bytes at block `lba`, which the caller has checked lies inside the device.
    fn read(&self, lba: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.dev.read_at(lba * self.bs, &mut buf)?;
        Ok(buf)
    }

    fn read_all(&mut self) -> io::Result<()> {
        let mbr = Mbr::parse(&self.read(0, MBR_SIZE)?);
        let protective = mbr.as_ref().is_some_and(Mbr::protective);
        let dos_table = mbr.as_ref().is_some_and(|m| m.boot_ok);
        if mbr.is_some() && !dos_table && !protective {
            self.map.damage.push(Damage::MbrNotATable);
        }
        if protective || dos_table {
            self.map.tables.push(Table {
                kind: if protective {
                    TableKind::ProtectiveMbr
                } else {
                    TableKind::Mbr
                },
                range: self.bytes(0, 1),
                intact: true,
            });
        }

        let gpt_valid = self.read_gpt(protective)?;
        if protective && !gpt_valid {
            self.map.damage.push(Damage::GptUnreadable);
        }
        if gpt_valid && !protective {
            self.map.damage.push(Damage::GptWithoutProtectiveMbr);
        }

        let Some(mbr) = mbr else { return Ok(()) };
        // Entries are listed from a DOS table, or (only the 0xEE one) from a protective MBR
        // whose GPT could not be read.
        let keep_protective = protective && !gpt_valid;
        if !dos_table && !keep_protective {
            return Ok(());
        }
        let mut next_logical = 5;
        for (i, &(_, kind, start, sectors)) in mbr.entries.iter().enumerate() {
            if sectors == 0 || (kind == TYPE_PROTECTIVE && gpt_valid) {
                continue;
            }
            // Without a usable DOS table only the 0xEE entry (covering the GPT's disk) is kept.
            if !dos_table && kind != TYPE_PROTECTIVE {
                continue;
            }
            let extended = is_extended(kind);
            self.map.partitions.push(Partition {
                number: i as u32 + 1,
                kind: PartitionKind::Dos {
                    type_byte: kind,
                    role: if extended {
                        DosRole::Extended
                    } else {
                        DosRole::Primary
                    },
                },
                range: self.bytes(u64::from(start), u64::from(sectors)),
            });
            if extended {
                self.read_ebr_chain(u64::from(start), &mut next_logical)?;
            }
        }
        Ok(())
    }

    /// Follows the EBR chain of the extended partition starting at `ext_start`.
    fn read_ebr_chain(&mut self, ext_start: u64, next_logical: &mut u32) -> io::Result<()> {
        let mut visited: Vec<u64> = Vec::new();
        let mut lba = ext_start;
        loop {
            let problem = if visited.len() == MAX_EBRS {
                Some(EbrProblem::TooLong)
            } else if lba >= self.blocks {
                Some(EbrProblem::OutsideDevice)
            } else if visited.contains(&lba) {
                Some(EbrProblem::Loop)
            } else {
                None
            };
            if let Some(problem) = problem {
                self.map.damage.push(Damage::Ebr { lba, problem });
                return Ok(());
            }
            visited.push(lba);
            let Some(ebr) = Mbr::parse(&self.read(lba, MBR_SIZE)?) else {
                // An empty extended partition need not hold an EBR at all.
                if visited.len() > 1 {
                    self.map.damage.push(Damage::Ebr {
                        lba,
                        problem: EbrProblem::BadSignature,
                    });
                }
                return Ok(());
            };
            let table_at = self.map.tables.len();
            self.map.tables.push(Table {
                kind: TableKind::Ebr { logical: None },
                range: self.bytes(lba, 1),
                intact: true,
            });
            let mut link = None;
            for &(_, kind, start, sectors) in &ebr.entries {
                if sectors == 0 {
                    continue;
                }
                if is_extended(kind) {
                    link.get_or_insert(start);
                    continue;
                }
                let number = *next_logical;
                *next_logical = next_logical.saturating_add(1);
                if let TableKind::Ebr { logical: l @ None } = &mut self.map.tables[table_at].kind {
                    *l = Some(number);
                }
                self.map.partitions.push(Partition {
                    number,
                    kind: PartitionKind::Dos {
                        type_byte: kind,
                        role: DosRole::Logical,
                    },
                    range: self.bytes(lba + u64::from(start), u64::from(sectors)),
                });
            }
            match link {
                Some(rel) => lba = ext_start + u64::from(rel),
                None => return Ok(()),
            }
        }
    }

    /// Reads both GPT copies, records their tables, partitions and damage; returns whether a
    /// valid copy was found.
    fn read_gpt(&mut self, protective: bool) -> io::Result<bool> {
        if self.blocks < 3 {
            return Ok(false);
        }
        let last = self.blocks - 1;
        let primary = self.probe_gpt(1)?;
        let mut backup_lba = last;
        let mut backup = self.probe_gpt(last)?;
        if backup.valid().is_none()
            && let Some(p) = primary.valid()
            && p.alternate_lba != last
            && (2..last).contains(&p.alternate_lba)
        {
            let alt = p.alternate_lba;
            let moved = self.probe_gpt(alt)?;
            if moved.valid().is_some() {
                if backup.signature_found()
                    && let Probe::Damaged(problem, _) = backup
                {
                    self.map.damage.push(Damage::Gpt {
                        copy: GptCopy::Backup,
                        lba: last,
                        problem,
                    });
                }
                self.map.damage.push(Damage::GptBackupNotAtEnd {
                    lba: alt,
                    last_lba: last,
                });
                backup = moved;
                backup_lba = alt;
            }
        }
        if !protective && !primary.signature_found() && !backup.signature_found() {
            return Ok(false);
        }

        let good = primary.valid().or(backup.valid());
        let good_blocks = good.map(|g| g.array.end - g.array.start);
        for (copy, lba, probe) in [
            (GptCopy::Primary, 1, &primary),
            (GptCopy::Backup, backup_lba, &backup),
        ] {
            self.map.tables.push(Table {
                kind: TableKind::GptHeader(copy),
                range: self.bytes(lba, 1),
                intact: probe.valid().is_some(),
            });
            let array = match probe {
                Probe::Valid(g) => Some(g.array.clone()),
                Probe::Damaged(_, Some(a)) => Some(a.clone()),
                Probe::Damaged(_, None) => good_blocks.and_then(|n| match copy {
                    GptCopy::Primary => Some(2..2 + n),
                    GptCopy::Backup => lba.checked_sub(n).filter(|&s| s >= 2).map(|s| s..lba),
                }),
            };
            if let Some(a) = array.filter(|a| a.start < a.end) {
                self.map.tables.push(Table {
                    kind: TableKind::GptEntries(copy),
                    range: self.bytes(a.start, a.end - a.start),
                    intact: probe.valid().is_some(),
                });
            }
            if let Probe::Damaged(problem, _) = probe {
                self.map.damage.push(Damage::Gpt {
                    copy,
                    lba,
                    problem: problem.clone(),
                });
            }
        }

        let mut entries: Vec<(GptCopy, &GptEntry)> = Vec::new();
        let mut inverted = Vec::new();
        for (copy, probe) in [(GptCopy::Primary, &primary), (GptCopy::Backup, &backup)] {
            if let Some(g) = probe.valid() {
                inverted.extend(g.inverted.iter().map(|&(n, a, b)| (copy, n, a, b)));
            }
        }
        if let Some(p) = primary.valid() {
            entries.extend(p.entries.iter().map(|e| (GptCopy::Primary, e)));
        }
        if let Some(b) = backup.valid() {
            if primary.valid().is_some_and(|p| p.entries != b.entries) {
                self.map.damage.push(Damage::GptCopiesDiffer);
            }
            for e in &b.entries {
                if !entries.iter().any(|(_, x)| *x == e) {
                    entries.push((GptCopy::Backup, e));
                }
            }
        }
        for (copy, number, first_lba, last_lba) in inverted {
            // Reported once when both copies carry the same inverted entry.
            let d = Damage::GptEntryInverted {
                copy,
                number,
                first_lba,
                last_lba,
            };
            let dup = copy == GptCopy::Backup
                && self.map.damage.contains(&Damage::GptEntryInverted {
                    copy: GptCopy::Primary,
                    number,
                    first_lba,
                    last_lba,
                });
            if !dup {
                self.map.damage.push(d);
            }
        }
        for (_, e) in entries {
            let range = self.bytes(e.first_lba, (e.last_lba - e.first_lba).saturating_add(1));
            self.map.partitions.push(Partition {
                number: e.number,
                kind: PartitionKind::Gpt {
                    type_guid: e.type_guid,
                    name: e.name.clone(),
                },
                range,
            });
        }
        Ok(good.is_some())
    }

    /// Reads and checks the GPT header at `lba` (inside the device, not LBA 0) and its array.
    fn probe_gpt(&self, lba: u64) -> io::Result<Probe> {
        let bs = self.bs as usize;
        let block = self.read(lba, bs)?;
        let Ok((h, _)) = RawGptHeader::ref_from_prefix(&block) else {
            return Ok(Probe::Damaged(GptProblem::Missing, None));
        };
        if &h.signature != GPT_SIGNATURE {
            return Ok(Probe::Damaged(GptProblem::Missing, None));
        }
        let header_size = h.header_size.get();
        if header_size < GPT_HEADER_MIN || header_size as usize > bs {
            return Ok(Probe::Damaged(GptProblem::HeaderSize(header_size), None));
        }
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&block[..16]);
        hasher.update(&[0; 4]);
        hasher.update(&block[20..header_size as usize]);
        let computed = hasher.finalize();
        let stored = h.header_crc32.get();
        if computed != stored {
            return Ok(Probe::Damaged(
                GptProblem::HeaderCrc { stored, computed },
                None,
            ));
        }
        if h.my_lba.get() != lba {
            let stored = h.my_lba.get();
            return Ok(Probe::Damaged(GptProblem::WrongLba { stored }, None));
        }
        let entry_size = h.entry_size.get();
        if !(GPT_ENTRY_MIN..=MAX_GPT_ENTRY_SIZE).contains(&entry_size)
            || entry_size % GPT_ENTRY_MIN != 0
            || !(entry_size / GPT_ENTRY_MIN).is_power_of_two()
        {
            return Ok(Probe::Damaged(GptProblem::EntrySize(entry_size), None));
        }
        let count = h.entry_count.get();
        let array_bytes = u64::from(count) * u64::from(entry_size);
        if array_bytes > MAX_GPT_ARRAY_BYTES {
            return Ok(Probe::Damaged(
                GptProblem::ArrayTooLarge {
                    entries: count,
                    entry_size,
                },
                None,
            ));
        }
        let array_lba = h.entries_lba.get();
        let array_blocks = array_bytes.div_ceil(self.bs);
        let array = array_lba..array_lba.saturating_add(array_blocks);
        if array_blocks > 0 && (array.start == 0 || array.end > self.blocks || array.contains(&lba))
        {
            return Ok(Probe::Damaged(
                GptProblem::ArrayMisplaced {
                    lba: array_lba,
                    blocks: array_blocks,
                },
                None,
            ));
        }
        // Bounded by MAX_GPT_ARRAY_BYTES above.
        let bytes = if array_blocks > 0 {
            self.read(array_lba, array_bytes as usize)?
        } else {
            Vec::new()
        };
        let computed = crc32fast::hash(&bytes);
        let stored = h.entries_crc32.get();
        if computed != stored {
            return Ok(Probe::Damaged(
                GptProblem::EntriesCrc { stored, computed },
                Some(array),
            ));
        }
        let mut entries = Vec::new();
        let mut inverted = Vec::new();
        for (i, chunk) in bytes.chunks_exact(entry_size as usize).enumerate() {
            let Ok((e, _)) = RawGptEntry::ref_from_prefix(chunk) else {
                continue;
            };
            if e.type_guid == Guid::ZERO.0 {
                continue;
            }
            let number = i as u32 + 1;
            let (first_lba, last_lba) = (e.first_lba.get(), e.last_lba.get());
            if last_lba < first_lba {
                inverted.push((number, first_lba, last_lba));
                continue;
            }
            let units = e.name.iter().map(|u| u.get()).take_while(|&u| u != 0);
            let name = char::decode_utf16(units)
                .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
                .collect();
            entries.push(GptEntry {
                number,
                type_guid: Guid(e.type_guid),
                first_lba,
                last_lba,
                name,
            });
        }
        Ok(Probe::Valid(GptRead {
            alternate_lba: h.alternate_lba.get(),
            array,
            entries,
            inverted,
        }))
    }
}
