//! Decoding a cell: every check the contract names, in order, with the field and offset of
//! the first that fails.

use core::fmt;
use core::mem::offset_of;

use imx_hab::hab::EventSummary;
use zerocopy::FromBytes;

use super::*;

/// Why a cell has no usable slot word or no valid boot record. Every variant names the field
/// and its byte offset from the start of the cell ([`CellError::field`], [`CellError::offset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellError {
    /// The input ends before the field does.
    Truncated {
        /// The field cut off (`slot`, or `record` for everything after word 0).
        field: &'static str,
        /// Its offset.
        offset: usize,
        /// Bytes the cell needs up to the end of that field.
        needed: usize,
        /// Bytes there were.
        available: usize,
    },
    /// Word 0 is not 0, 1 or 2.
    InvalidSlot {
        /// The word.
        found: u32,
    },
    /// Every byte after word 0 is zero: an AN12900-style cell, no record was ever written.
    NoRecord,
    /// The magic is not [`MAGIC`].
    Magic {
        /// The word found.
        found: u32,
    },
    /// The version is not [`VERSION`].
    Version {
        /// The version found.
        found: u16,
    },
    /// The length is not the version's ([`CELL_SIZE`], or [`V1_CELL_SIZE`] for version 1).
    Length {
        /// The length found.
        found: u16,
        /// The version's length.
        expected: u16,
    },
    /// The CRC-32 does not match the bytes.
    Crc {
        /// The CRC stored at `at`.
        stored: u32,
        /// The CRC of bytes `0..at`.
        computed: u32,
        /// Offset of the CRC ([`CRC_OFFSET`], or [`V1_CRC_OFFSET`] for version 1).
        at: usize,
    },
    /// A checksummed field holds a value this version does not allow.
    Value {
        /// The field (`primary.class`, `sit.status`, `reserved`, …).
        field: &'static str,
        /// Its offset.
        offset: usize,
        /// The value found (bytes read little-endian).
        found: u32,
        /// What the field allows.
        expected: &'static str,
    },
    /// The slot word is not the one the record's reason implies.
    SlotMismatch {
        /// The reason code stored (0 = none).
        reason: u32,
        /// The slot word the reason implies.
        expected: u32,
        /// The slot word found.
        found: u32,
    },
}

impl CellError {
    /// The field the error is about.
    pub const fn field(&self) -> &'static str {
        match self {
            CellError::Truncated { field, .. } | CellError::Value { field, .. } => field,
            CellError::InvalidSlot { .. } => "slot",
            CellError::NoRecord => "record",
            CellError::Magic { .. } => "magic",
            CellError::Version { .. } => "version",
            CellError::Length { .. } => "length",
            CellError::Crc { .. } => "crc",
            CellError::SlotMismatch { .. } => "reason",
        }
    }

    /// The byte offset of that field from the start of the cell.
    pub const fn offset(&self) -> usize {
        match self {
            CellError::Truncated { offset, .. } | CellError::Value { offset, .. } => *offset,
            CellError::InvalidSlot { .. } => offset_of!(RawCell, slot),
            CellError::NoRecord => offset_of!(RawCell, magic),
            CellError::Magic { .. } => offset_of!(RawCell, magic),
            CellError::Version { .. } => offset_of!(RawCell, version),
            CellError::Length { .. } => offset_of!(RawCell, length),
            CellError::Crc { at, .. } => *at,
            CellError::SlotMismatch { .. } => offset_of!(RawCell, reason),
        }
    }
}

impl fmt::Display for CellError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "field `{}` at offset {:#x}: ",
            self.field(),
            self.offset()
        )?;
        match *self {
            CellError::Truncated {
                needed, available, ..
            } => write!(
                f,
                "truncated: the cell needs {needed:#x} bytes, only {available:#x} were read"
            ),
            CellError::InvalidSlot { found } => {
                write!(f, "slot word {found:#x} is not 0, 1 or 2")
            }
            CellError::NoRecord => write!(
                f,
                "no boot record: every byte after the slot word is zero (AN12900-style cell)"
            ),
            CellError::Magic { found } => {
                write!(f, "found {found:#010x}, expected {MAGIC:#010x} (\"IRBR\")")
            }
            CellError::Version { found } => write!(
                f,
                "version {found} is not a version this reader supports ({OLDEST_VERSION}..={VERSION})"
            ),
            CellError::Length { found, expected } => {
                write!(
                    f,
                    "length {found:#x}, expected {expected:#x} for this version"
                )
            }
            CellError::Crc {
                stored,
                computed,
                at,
            } => write!(
                f,
                "CRC-32 stored {stored:#010x}, computed {computed:#010x} over bytes 0x0..{at:#x}"
            ),
            CellError::Value {
                found, expected, ..
            } => write!(f, "value {found:#x} not allowed: {expected}"),
            CellError::SlotMismatch {
                reason,
                expected,
                found,
            } => {
                write!(f, "reason {reason}")?;
                if let Some(r) = reason_from_code(reason) {
                    write!(f, " ({})", reason_name(r))?;
                }
                write!(
                    f,
                    " means slot word {expected}, but the slot word is {found}"
                )
            }
        }
    }
}

impl core::error::Error for CellError {}

/// Decodes a cell read from `cell_addr`. Bytes beyond [`CELL_SIZE`] are ignored.
///
/// Fails only when there is no slot word (fewer than 4 bytes). Otherwise the slot word is
/// returned range-checked, and the record is either fully valid or replaced by the first
/// [`CellError`] that disqualifies it, checked in this order: length of the input, all zero
/// after word 0 ([`CellError::NoRecord`]), magic, version, length, CRC, each field's value and
/// reserved bytes in offset order, the slot word against the reason.
pub fn decode(bytes: &[u8]) -> Result<Cell, CellError> {
    let Some(word) = bytes.first_chunk::<4>() else {
        return Err(CellError::Truncated {
            field: "slot",
            offset: 0,
            needed: 4,
            available: bytes.len(),
        });
    };
    Ok(Cell {
        slot: SlotWord::from_raw(u32::from_le_bytes(*word)),
        record: decode_record(bytes),
    })
}

fn decode_record(bytes: &[u8]) -> Result<BootRecord, CellError> {
    let truncated = |needed| CellError::Truncated {
        field: "record",
        offset: offset_of!(RawCell, magic),
        needed,
        available: bytes.len(),
    };
    let head = bytes.get(..V1_CELL_SIZE).ok_or(truncated(V1_CELL_SIZE))?;
    if head[offset_of!(RawCell, magic)..].iter().all(|&b| b == 0)
        && bytes
            .get(V1_CELL_SIZE..CELL_SIZE)
            .is_none_or(|t| t.iter().all(|&b| b == 0))
    {
        return Err(CellError::NoRecord);
    }
    // A version-1 cell is the first 0x3C bytes of this layout and its CRC: laid into a zeroed
    // version-2 buffer (no digest), the field checks below apply unchanged.
    let version = u16::from_le_bytes([head[8], head[9]]);
    let mut v1 = [0u8; CELL_SIZE];
    let (raw, size, crc_at) = if version == 1 {
        v1[..V1_CRC_OFFSET].copy_from_slice(&head[..V1_CRC_OFFSET]);
        let raw = RawCell::ref_from_bytes(&v1[..]).map_err(|_| truncated(CELL_SIZE))?;
        (raw, V1_CELL_SIZE, V1_CRC_OFFSET)
    } else {
        let raw = RawCell::ref_from_prefix(bytes)
            .map_err(|_| truncated(CELL_SIZE))
            .map(|(r, _)| r);
        // The version and magic checks come first: report them even on a short input.
        match raw {
            Ok(r) => (r, CELL_SIZE, CRC_OFFSET),
            Err(e) => {
                let magic = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                if magic != MAGIC {
                    return Err(CellError::Magic { found: magic });
                }
                if !(OLDEST_VERSION..=VERSION).contains(&version) {
                    return Err(CellError::Version { found: version });
                }
                return Err(e);
            }
        }
    };
    if raw.magic.get() != MAGIC {
        return Err(CellError::Magic {
            found: raw.magic.get(),
        });
    }
    let version = raw.version.get();
    if !(OLDEST_VERSION..=VERSION).contains(&version) {
        return Err(CellError::Version {
            found: raw.version.get(),
        });
    }
    if usize::from(raw.length.get()) != size {
        return Err(CellError::Length {
            found: raw.length.get(),
            expected: size as u16,
        });
    }
    let crc_bytes = &bytes[crc_at..crc_at + 4];
    let stored = u32::from_le_bytes([crc_bytes[0], crc_bytes[1], crc_bytes[2], crc_bytes[3]]);
    let computed = crc32(&bytes[..crc_at]);
    if stored != computed {
        return Err(CellError::Crc {
            stored,
            computed,
            at: crc_at,
        });
    }

    let reason_code = raw.reason.get();
    let reason = match reason_code {
        0 => None,
        c => Some(reason_from_code(c).ok_or(CellError::Value {
            field: "reason",
            offset: offset_of!(RawCell, reason),
            found: c,
            expected: "0 (none) or a reason 1..=6",
        })?),
    };
    if version < 4 && reason_code > 4 {
        return Err(CellError::Value {
            field: "reason",
            offset: offset_of!(RawCell, reason),
            found: reason_code,
            expected: "0 (none) or a reason 1..=4 before version 4",
        });
    }
    let primary = decode_copy(&raw.primary, &PRIMARY, version)?;
    let secondary = decode_copy(&raw.secondary, &SECONDARY, version)?;
    let status = SitStatus::from_code(raw.sit_status).ok_or(CellError::Value {
        field: "sit.status",
        offset: offset_of!(RawCell, sit_status),
        found: raw.sit_status.into(),
        expected: "a SIT status 0..=5",
    })?;
    zero(
        &raw.sit_reserved,
        "sit.reserved",
        offset_of!(RawCell, sit_reserved),
    )?;
    let log = RomLog::from_code(raw.rom_log).ok_or(CellError::Value {
        field: "rom.log",
        offset: offset_of!(RawCell, rom_log),
        found: raw.rom_log.into(),
        expected: "a ROM log code 0..=3",
    })?;
    let persist_secondary = match raw.rom_persist {
        0 => None,
        1 => Some(false),
        2 => Some(true),
        found => {
            return Err(CellError::Value {
                field: "rom.persist_secondary",
                offset: offset_of!(RawCell, rom_persist),
                found: found.into(),
                expected: "0 unknown, 1 clear or 2 set",
            });
        }
    };
    let rom = decode_rom(
        raw,
        version,
        raw.rom_boot_stage.get(),
        log,
        persist_secondary,
    )?;
    let rollback_minimum = decode_rollback(raw, version, &primary, &secondary)?;
    zero(&raw.reserved, "reserved", offset_of!(RawCell, reserved))?;

    let sit = SitReport {
        status,
        first_sector: raw.sit_first_sector.get(),
    };
    // Version 4: the reason follows the pairing rule for the copy the ROM started.
    let started = if version >= 4 { rom.started() } else { None };
    if !follows_the_table(reason, &primary, &secondary, sit.status)
        || (version >= 4 && !follows_the_pairing(reason, started))
    {
        return Err(CellError::Value {
            field: "reason",
            offset: offset_of!(RawCell, reason),
            found: reason_code,
            expected: "a reason that the copy verdicts and the SIT status agree with (the \
                       design.md §5 table: what the shim writes)",
        });
    }
    let expected = slot_word(slot_for_reason(reason));
    if raw.slot.get() != expected {
        return Err(CellError::SlotMismatch {
            reason: reason_code,
            expected,
            found: raw.slot.get(),
        });
    }
    let booted = (raw.booted != [0; 32]).then_some(raw.booted);
    if version >= 2 && booted.is_some() != slot_for_reason(reason).is_some() {
        return Err(CellError::Value {
            field: "booted",
            offset: offset_of!(RawCell, booted),
            found: u32::from_le_bytes([raw.booted[0], raw.booted[1], raw.booted[2], raw.booted[3]]),
            expected: "the booted image's SHA-256 when a slot was booted, else all zero",
        });
    }
    Ok(BootRecord {
        reason,
        primary,
        secondary,
        sit,
        rom,
        shim_version: ShimVersion::from_u32(raw.shim_version.get()),
        booted,
        rollback_minimum,
    })
}

/// The `rom` bytes after `rom.persist_secondary`: reserved before version 4; then the ROM's
/// HAB status byte and the started copy, which must be the one the other fields imply.
fn decode_rom(
    raw: &RawCell,
    version: u16,
    boot_stage: u32,
    log: RomLog,
    persist_secondary: Option<bool>,
) -> Result<RomInfo, CellError> {
    let hab_at = offset_of!(RawCell, rom_hab);
    let started_at = offset_of!(RawCell, rom_started);
    if version < 4 {
        zero(&[raw.rom_hab, raw.rom_started], "rom.reserved", hab_at)?;
        return Ok(RomInfo {
            boot_stage,
            log,
            persist_secondary,
            hab: None,
        });
    }
    let hab = match raw.rom_hab {
        0 => None,
        h if RomInfo::valid_hab(h) => Some(h),
        found => {
            return Err(CellError::Value {
                field: "rom.hab",
                offset: hab_at,
                found: found.into(),
                expected: "0 (no event), 0xF0 pass, 0x33 fail or 0x69 warning",
            });
        }
    };
    let rom = RomInfo {
        boot_stage,
        log,
        persist_secondary,
        hab,
    };
    let implied = rom.started().map_or(0, |s| s as u8);
    if raw.rom_started != implied {
        return Err(CellError::Value {
            field: "rom.started",
            offset: started_at,
            found: raw.rom_started.into(),
            expected: "the copy rom.log, rom.boot_stage and rom.persist_secondary imply \
                       (0 unknown, 1 primary, 2 secondary)",
        });
    }
    Ok(rom)
}

/// Whether a version-4 reason agrees with the copy the ROM started (design.md §5.1): reasons
/// 5 and 6 exactly when it started the secondary.
pub fn follows_the_pairing(reason: Option<Reason>, started: Option<Slot>) -> bool {
    let from_secondary = started == Some(Slot::Secondary);
    match reason {
        Some(Reason::PrimaryOk | Reason::PrimaryFailed) => !from_secondary,
        Some(Reason::RomSecondary | Reason::RomSecondaryFailed) => from_secondary,
        Some(Reason::NoFallbackTable | Reason::BothFailed) | None => true,
    }
}

/// The `rollback` bytes: reserved before version 3; a status, a minimum no larger than the
/// fuses can hold, and read whenever a copy was rejected as `rollback`.
fn decode_rollback(
    raw: &RawCell,
    version: u16,
    primary: &CopyReport,
    secondary: &CopyReport,
) -> Result<Option<u8>, CellError> {
    let status_at = offset_of!(RawCell, rollback_status);
    let minimum_at = offset_of!(RawCell, rollback_minimum);
    if version < 3 {
        zero(
            &[raw.rollback_status, raw.rollback_minimum],
            "reserved",
            status_at,
        )?;
        return Ok(None);
    }
    let minimum = match raw.rollback_status {
        0 => {
            only_zero(raw.rollback_minimum, "rollback.minimum", minimum_at)?;
            None
        }
        1 if u32::from(raw.rollback_minimum) <= crate::rollback::FUSE_BITS => {
            Some(raw.rollback_minimum)
        }
        1 => {
            return Err(CellError::Value {
                field: "rollback.minimum",
                offset: minimum_at,
                found: raw.rollback_minimum.into(),
                expected: "0..=64 (burned rollback fuse bits)",
            });
        }
        found => {
            return Err(CellError::Value {
                field: "rollback.status",
                offset: status_at,
                found: found.into(),
                expected: "0 not read or 1 read",
            });
        }
    };
    let rolled_back = |c: &CopyReport| {
        matches!(
            c,
            CopyReport::Rejected {
                class: FailureClass::Rollback,
                ..
            }
        )
    };
    if (rolled_back(primary) || rolled_back(secondary)) && minimum.is_none_or(|m| m == 0) {
        return Err(CellError::Value {
            field: "rollback.minimum",
            offset: minimum_at,
            found: raw.rollback_minimum.into(),
            expected: "a minimum above 0, read from the fuses, when a copy was rejected as `rollback`",
        });
    }
    Ok(minimum)
}

/// Whether a record's reason, copy verdicts and SIT status are what the shim's flow writes
/// (design.md §5): the primary always examined once a decision is made, the SIT and the
/// secondary only when the primary failed, the secondary only through a valid SIT.
pub fn follows_the_table(
    reason: Option<Reason>,
    primary: &CopyReport,
    secondary: &CopyReport,
    sit: SitStatus,
) -> bool {
    use CopyReport::{Authentic, NotExamined, Rejected};
    match reason {
        None => {
            matches!(primary, NotExamined)
                && matches!(secondary, NotExamined)
                && sit == SitStatus::NotRead
        }
        Some(Reason::PrimaryOk) => {
            matches!(primary, Authentic { .. })
                && matches!(secondary, NotExamined)
                && sit == SitStatus::NotRead
        }
        Some(Reason::PrimaryFailed) => {
            matches!(primary, Rejected { .. })
                && matches!(secondary, Authentic { .. })
                && sit == SitStatus::Valid
        }
        Some(Reason::NoFallbackTable) => {
            matches!(primary, Rejected { .. })
                && matches!(secondary, NotExamined)
                && !matches!(sit, SitStatus::NotRead | SitStatus::Valid)
        }
        Some(Reason::BothFailed) => {
            matches!(primary, Rejected { .. })
                && matches!(secondary, Rejected { .. })
                && sit == SitStatus::Valid
        }
        Some(Reason::RomSecondary) => {
            matches!(primary, NotExamined)
                && matches!(secondary, Authentic { .. })
                && sit == SitStatus::Valid
        }
        Some(Reason::RomSecondaryFailed) => {
            matches!(primary, Authentic { .. })
                && match sit {
                    SitStatus::Valid => matches!(secondary, Rejected { .. }),
                    SitStatus::NotRead => false,
                    _ => matches!(secondary, NotExamined),
                }
        }
    }
}

/// Field names and the offset of one copy verdict.
struct CopyFields {
    base: usize,
    outcome: &'static str,
    class: &'static str,
    hab: &'static str,
    part: &'static str,
    flags: &'static str,
}

const PRIMARY: CopyFields = CopyFields {
    base: offset_of!(RawCell, primary),
    outcome: "primary.outcome",
    class: "primary.class",
    hab: "primary.hab",
    part: "primary.part",
    flags: "primary.flags",
};

const SECONDARY: CopyFields = CopyFields {
    base: offset_of!(RawCell, secondary),
    outcome: "secondary.outcome",
    class: "secondary.class",
    hab: "secondary.hab",
    part: "secondary.part",
    flags: "secondary.flags",
};

fn decode_copy(raw: &RawCopy, names: &CopyFields, version: u16) -> Result<CopyReport, CellError> {
    let hab = EventSummary {
        status: raw.hab_status,
        reason: raw.hab_reason,
        context: raw.hab_context,
        engine: raw.hab_engine,
    };
    let class_error = |expected| CellError::Value {
        field: names.class,
        offset: names.base + offset_of!(RawCopy, class),
        found: raw.class.into(),
        expected,
    };
    let report = match raw.outcome {
        0 => {
            if raw.class != 0 {
                return Err(class_error("0 for a copy that was not examined"));
            }
            if hab != NO_HAB {
                return Err(CellError::Value {
                    field: names.hab,
                    offset: names.base + offset_of!(RawCopy, hab_status),
                    found: u32::from_le_bytes([
                        raw.hab_status,
                        raw.hab_reason,
                        raw.hab_context,
                        raw.hab_engine,
                    ]),
                    expected: "0 for a copy that was not examined",
                });
            }
            only_zero(raw.part, names.part, names.base + offset_of!(RawCopy, part))?;
            only_zero(
                raw.flags,
                names.flags,
                names.base + offset_of!(RawCopy, flags),
            )?;
            CopyReport::NotExamined
        }
        1 => {
            if raw.class != 0 {
                return Err(class_error("0 for an authentic copy"));
            }
            only_zero(raw.part, names.part, names.base + offset_of!(RawCopy, part))?;
            let flags_error = |expected| CellError::Value {
                field: names.flags,
                offset: names.base + offset_of!(RawCopy, flags),
                found: raw.flags.into(),
                expected,
            };
            if version == 1 && raw.flags != 0 {
                return Err(flags_error("reserved, 0 (version 1)"));
            }
            let warnings =
                Warnings::from_bits(raw.flags).ok_or_else(|| flags_error("bits 0..=2 only"))?;
            CopyReport::Authentic { hab, warnings }
        }
        2 => {
            let class = FailureClass::from_code(raw.class)
                .filter(|c| match version {
                    1 => c.code() <= FailureClass::HabRom.code(),
                    2 => c.code() <= FailureClass::Algorithm.code(),
                    _ => true,
                })
                .ok_or_else(|| class_error("a failure class this version defines"))?;
            let part = match (version, raw.part) {
                (1, 0) => None,
                (1, _) => {
                    return Err(CellError::Value {
                        field: names.part,
                        offset: names.base + offset_of!(RawCopy, part),
                        found: raw.part.into(),
                        expected: "reserved, 0 (version 1)",
                    });
                }
                (_, p) => Some(Part::from_code(p).ok_or(CellError::Value {
                    field: names.part,
                    offset: names.base + offset_of!(RawCopy, part),
                    found: p.into(),
                    expected: "1 SPL or 2 FIT for a rejected copy",
                })?),
            };
            only_zero(
                raw.flags,
                names.flags,
                names.base + offset_of!(RawCopy, flags),
            )?;
            CopyReport::Rejected { class, hab, part }
        }
        found => {
            return Err(CellError::Value {
                field: names.outcome,
                offset: names.base + offset_of!(RawCopy, outcome),
                found: found.into(),
                expected: "0 not examined, 1 authentic or 2 rejected",
            });
        }
    };
    Ok(report)
}

/// Checks that a byte that must be 0 in this context is.
fn only_zero(b: u8, field: &'static str, offset: usize) -> Result<(), CellError> {
    if b == 0 {
        Ok(())
    } else {
        Err(CellError::Value {
            field,
            offset,
            found: b.into(),
            expected: "0 here",
        })
    }
}

/// Checks that a reserved field is zero; reports the first non-zero byte.
fn zero(bytes: &[u8], field: &'static str, offset: usize) -> Result<(), CellError> {
    match bytes.iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => Err(CellError::Value {
            field,
            offset: offset + i,
            found: bytes[i].into(),
            expected: "reserved, 0",
        }),
    }
}
