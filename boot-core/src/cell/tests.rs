//! The cell contract's tests: layout, golden bytes, compatibility, every rejection.
use super::decode::*;
use super::*;
use crate::policy::SitVerdict;
use crate::policy::decide;
use imx_hab::hab::codes::{context, reason, status};
use imx_hab::hab::software::{CertificateFault, CommandFault, SignatureFault};
use imx_hab::hab::software::{SignatureRole, VerifyError};
use imx_hab::hab::{AuthFailure, RomFailure};
use proptest::prelude::*;

const fn ev(status: u8, reason: u8, context: u8, engine: u8) -> EventSummary {
    EventSummary {
        status,
        reason,
        context,
        engine,
    }
}

/// A record with a distinct, non-default value in every field.
fn sample() -> BootRecord {
    BootRecord {
        reason: Some(Reason::PrimaryFailed),
        primary: CopyReport::Rejected {
            class: FailureClass::ImageSignature,
            hab: ev(
                status::FAILURE,
                reason::INV_SIGNATURE,
                context::AUT_DAT,
                0x1D,
            ),
            part: Some(Part::Fit),
        },
        secondary: CopyReport::Authentic {
            hab: ev(status::SUCCESS, 0, 0, 0),
            warnings: Warnings {
                unsigned_spl: true,
                ..Warnings::default()
            },
        },
        sit: SitReport {
            status: SitStatus::Valid,
            first_sector: 0x1000,
        },
        rom: RomInfo {
            boot_stage: RomInfo::STAGE_PRIMARY,
            log: RomLog::PrimaryBoot,
            persist_secondary: Some(false),
            hab: Some(0xF0),
        },
        shim_version: ShimVersion {
            major: 0x0102,
            minor: 3,
            patch: 4,
        },
        booted: Some(core::array::from_fn(|i| 0xA0 + i as u8)),
        rollback_minimum: Some(2),
    }
}

/// Rewrites the CRC so that a deliberate change is judged by the check after the CRC.
fn fix_crc(cell: &mut [u8]) {
    let at = if cell.len() == V1_CELL_SIZE {
        V1_CRC_OFFSET
    } else {
        CRC_OFFSET
    };
    let crc = crc32(&cell[..at]);
    cell[at..at + 4].copy_from_slice(&crc.to_le_bytes());
}

fn record_err(cell: &[u8]) -> CellError {
    decode(cell).unwrap().record.unwrap_err()
}

#[test]
fn layout_matches_the_documented_table() {
    assert_eq!(size_of::<RawCell>(), CELL_SIZE);
    let table = [
        (offset_of!(RawCell, slot), 0x00),
        (offset_of!(RawCell, magic), 0x04),
        (offset_of!(RawCell, version), 0x08),
        (offset_of!(RawCell, length), 0x0A),
        (offset_of!(RawCell, reason), 0x0C),
        (offset_of!(RawCell, primary), 0x10),
        (offset_of!(RawCell, secondary), 0x18),
        (offset_of!(RawCell, sit_status), 0x20),
        (offset_of!(RawCell, sit_reserved), 0x21),
        (offset_of!(RawCell, sit_first_sector), 0x24),
        (offset_of!(RawCell, rom_boot_stage), 0x28),
        (offset_of!(RawCell, rom_log), 0x2C),
        (offset_of!(RawCell, rom_persist), 0x2D),
        (offset_of!(RawCell, rom_hab), 0x2E),
        (offset_of!(RawCell, rom_started), 0x2F),
        (offset_of!(RawCell, shim_version), 0x30),
        (offset_of!(RawCell, rollback_status), 0x34),
        (offset_of!(RawCell, rollback_minimum), 0x35),
        (offset_of!(RawCell, reserved), 0x36),
        (offset_of!(RawCell, booted), 0x3C),
        (offset_of!(RawCell, crc), 0x5C),
        (offset_of!(RawCopy, outcome), 0),
        (offset_of!(RawCopy, class), 1),
        (offset_of!(RawCopy, hab_status), 2),
        (offset_of!(RawCopy, hab_reason), 3),
        (offset_of!(RawCopy, hab_context), 4),
        (offset_of!(RawCopy, hab_engine), 5),
        (offset_of!(RawCopy, part), 6),
        (offset_of!(RawCopy, flags), 7),
    ];
    for (i, (got, want)) in table.into_iter().enumerate() {
        assert_eq!(got, want, "row {i}");
    }
    assert_eq!(&MAGIC.to_le_bytes(), b"IRBR");
    assert_eq!(MAGIC, 0x5242_5249);
}

#[test]
fn crc32_matches_zlib_check_values() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(
        crc32(b"The quick brown fox jumps over the lazy dog"),
        0x414F_A339
    );
}

#[test]
fn golden_encoding_is_stable() {
    // The CRC was computed independently with Python's `zlib.crc32` over bytes 0..0x5C.
    let expected: [u8; CELL_SIZE] = [
        0x02, 0x00, 0x00, 0x00, // slot 2
        b'I', b'R', b'B', b'R', // magic
        0x04, 0x00, 0x60, 0x00, // version 4, length 96
        0x02, 0x00, 0x00, 0x00, // reason primary-failed
        0x02, 0x09, 0x33, 0x18, 0xDB, 0x1D, 0x02, 0x00, // primary: image-signature, FIT
        0x01, 0x00, 0xF0, 0x00, 0x00, 0x00, 0x00, 0x01, // secondary: authentic, unsigned SPL
        0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, // SIT valid, 0x1000
        0x06, 0x00, 0x00, 0x00, 0x01, 0x01, 0xF0,
        0x01, // ROM: stage 6, 0x50, persist clear, HAB pass, started primary
        0x04, 0x03, 0x02, 0x01, // shim 258.3.4
        0x01, 0x02, // rollback fuses read, minimum 2
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // reserved
        0xA0, 0xA1, 0xA2, 0xA3, 0xA4, 0xA5, 0xA6, 0xA7, 0xA8, 0xA9, 0xAA, 0xAB, 0xAC, 0xAD, 0xAE,
        0xAF, 0xB0, 0xB1, 0xB2, 0xB3, 0xB4, 0xB5, 0xB6, 0xB7, 0xB8, 0xB9, 0xBA, 0xBB, 0xBC, 0xBD,
        0xBE, 0xBF, // booted: the image identity
        0x47, 0x48, 0xC2, 0x09, // CRC-32 0X09C24847
    ];
    assert_eq!(sample().encode(), expected);
    assert_eq!(crc32(&expected[..CRC_OFFSET]), 0x09C2_4847);
}

/// Compatibility (module docs): a version-1 record, as shims before 0.2 wrote it, still
/// reads, with no part and no warnings.
#[test]
fn version_1_records_still_read() {
    let v1: [u8; V1_CELL_SIZE] = [
        0x02, 0x00, 0x00, 0x00, b'I', b'R', b'B', b'R', 0x01, 0x00, 0x40, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x02, 0x09, 0x33, 0x18, 0xDB, 0x1D, 0x00, 0x00, 0x01, 0x00, 0xF0, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x09, 0x00, 0x00, 0x00, 0x02,
        0x02, 0x00, 0x00, 0x04, 0x03, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0xAF, 0x1D, 0x52, 0xF1,
    ];
    let mut want = sample();
    want.primary = CopyReport::Rejected {
        class: FailureClass::ImageSignature,
        hab: ev(
            status::FAILURE,
            reason::INV_SIGNATURE,
            context::AUT_DAT,
            0x1D,
        ),
        part: None,
    };
    want.secondary = CopyReport::Authentic {
        hab: ev(status::SUCCESS, 0, 0, 0),
        warnings: Warnings::default(),
    };
    want.booted = None;
    want.rollback_minimum = None;
    want.rom = RomInfo {
        boot_stage: RomInfo::STAGE_SECONDARY,
        log: RomLog::SecondaryBoot,
        persist_secondary: Some(true),
        hab: None,
    };
    assert_eq!(decode(&v1).unwrap().record, Ok(want));
    // Read from a 96-byte window (what ubootctl reads), whatever follows is ignored.
    let mut window = [0xEEu8; CELL_SIZE];
    window[..V1_CELL_SIZE].copy_from_slice(&v1);
    assert_eq!(decode(&window).unwrap().record, Ok(want));
    // Version 1 defines neither the part/flags bytes nor classes past hab-rom.
    for (at, value) in [(0x16, 2u8), (0x1F, 1), (0x11, 15)] {
        let mut cell = v1;
        cell[at] = value;
        fix_crc(&mut cell);
        assert!(
            matches!(record_err(&cell), CellError::Value { .. }),
            "byte {at:#x}"
        );
    }
}

/// Compatibility: a version-2 record (the rollback bytes reserved) still reads, without a
/// minimum; version 2 defines neither the rollback bytes nor the `rollback` class.
#[test]
fn version_2_records_still_read() {
    let mut want = sample();
    want.rollback_minimum = None;
    want.rom.hab = None;
    let mut v2 = want.encode();
    v2[8] = 2;
    v2[0x2F] = 0;
    fix_crc(&mut v2);
    assert_eq!(decode(&v2).unwrap().record, Ok(want));
    for (at, value, field) in [
        (0x34, 1u8, "reserved"),
        (0x35, 2, "reserved"),
        (0x11, FailureClass::Rollback.code(), "primary.class"),
    ] {
        let mut cell = v2;
        cell[at] = value;
        fix_crc(&mut cell);
        let err = record_err(&cell);
        assert_eq!(err.field(), field, "byte {at:#x}: {err}");
    }
}

/// A copy rejected as `rollback` needs a minimum the shim read and that is above 0.
#[test]
fn rollback_rejection_needs_a_read_minimum() {
    let mut r = sample();
    r.primary = CopyReport::Rejected {
        class: FailureClass::Rollback,
        hab: ev(status::FAILURE, reason::INV_INDEX, context::AUTHENTICATE, 0),
        part: Some(Part::Fit),
    };
    assert_eq!(decode(&r.encode()).unwrap().record, Ok(r));
    for minimum in [None, Some(0)] {
        let mut bad = r;
        bad.rollback_minimum = minimum;
        let err = record_err(&bad.encode());
        assert_eq!(
            (err.field(), err.offset()),
            ("rollback.minimum", 0x35),
            "{minimum:?}: {err}"
        );
    }
    // Not read means a zero minimum byte.
    let mut cell = sample().encode();
    cell[0x34] = 0;
    fix_crc(&mut cell);
    assert_eq!(record_err(&cell).field(), "rollback.minimum");
}

#[test]
fn round_trip_of_every_field() {
    let r = sample();
    let cell = decode(&r.encode()).unwrap();
    assert_eq!(cell.slot, SlotWord::Booted(Slot::Secondary));
    assert_eq!(cell.slot.slot(), Ok(Some(Slot::Secondary)));
    assert_eq!(cell.record, Ok(r));
    let r = cell.record.unwrap();
    assert_eq!(r.reason, Some(Reason::PrimaryFailed));
    assert_eq!(r.sit.first_sector, 0x1000);
    assert_eq!(r.rom.log.secondary_boot(), Some(false));
    assert_eq!(r.rom.started(), Some(Slot::Primary));
    assert_eq!(r.rom.hab, Some(0xF0));
    assert_eq!(r.shim_version.to_string(), "258.3.4");
}

#[test]
fn every_code_round_trips() {
    let mut r = sample();
    for class in FailureClass::ALL {
        r.secondary = CopyReport::Rejected {
            class,
            hab: ev(status::FAILURE, 1, 2, 3),
            part: Some(Part::Spl),
        };
        r.reason = Some(Reason::BothFailed);
        r.booted = None;
        assert_eq!(decode(&r.encode()).unwrap().record, Ok(r), "{class}");
    }
    for status in SitStatus::ALL {
        // The reason each SIT status goes with in the decision table.
        r.reason = Some(match status {
            SitStatus::NotRead => Reason::PrimaryOk,
            SitStatus::Valid => Reason::BothFailed,
            _ => Reason::NoFallbackTable,
        });
        r.sit.status = status;
        let r = fit_table(r);
        assert_eq!(r.sit.status, status);
        assert_eq!(decode(&r.encode()).unwrap().record, Ok(r), "{status:?}");
    }
    let mut r = sample();
    r.rom.boot_stage = 0;
    for log in RomLog::ALL {
        for persist in [None, Some(false), Some(true)] {
            for hab in [None, Some(0xF0), Some(0x33), Some(0x69)] {
                r.rom.log = log;
                r.rom.persist_secondary = persist;
                r.rom.hab = hab;
                // Started from the secondary: the reason goes with it (pairing, version 4).
                r.reason = Some(if r.rom.started() == Some(Slot::Secondary) {
                    Reason::RomSecondaryFailed
                } else {
                    Reason::PrimaryFailed
                });
                let r = fit_table(r);
                assert_eq!(decode(&r.encode()).unwrap().record, Ok(r), "{:?}", r.rom);
            }
        }
    }
    let mut r = sample();
    for reason in [
        None,
        Some(Reason::PrimaryOk),
        Some(Reason::PrimaryFailed),
        Some(Reason::NoFallbackTable),
        Some(Reason::BothFailed),
        Some(Reason::RomSecondary),
        Some(Reason::RomSecondaryFailed),
    ] {
        r.reason = reason;
        let r = fit_table(r);
        let cell = decode(&r.encode()).unwrap();
        assert_eq!(cell.record, Ok(r));
        assert_eq!(cell.slot.slot(), Ok(slot_for_reason(reason)));
    }
}

/// Records the shim never writes are refused even with a right CRC: a reason the copy
/// verdicts and the SIT status contradict.
#[test]
fn records_off_the_decision_table_are_refused() {
    let ok = sample();
    let mut cases = Vec::new();
    let mut r = ok;
    r.primary = CopyReport::Authentic {
        hab: ev(status::SUCCESS, 0, 0, 0),
        warnings: Warnings::default(),
    };
    cases.push(r); // primary-failed with an authentic primary
    let mut r = ok;
    r.sit.status = SitStatus::BadTag;
    cases.push(r); // primary-failed through an invalid SIT
    let mut r = fit_table(BootRecord {
        reason: Some(Reason::PrimaryOk),
        ..ok
    });
    r.secondary = ok.secondary;
    cases.push(r); // primary-ok with the secondary examined
    for r in cases {
        let err = record_err(&r.encode());
        assert_eq!((err.field(), err.offset()), ("reason", 0x0C), "{err}");
    }
}

#[test]
fn every_single_bit_flip_invalidates_the_record_but_the_slot_word_still_reads() {
    let good = sample().encode();
    for bit in 0..CELL_SIZE * 8 {
        let mut cell = good;
        cell[bit / 8] ^= 1 << (bit % 8);
        let decoded = decode(&cell).unwrap();
        let word = u32::from_le_bytes(cell[..4].try_into().unwrap());
        assert_eq!(decoded.slot.raw(), word, "bit {bit}");
        let err = decoded.record.unwrap_err();
        let byte = bit / 8;
        let expected_field = match byte {
            // Version 4 with a bit flipped is 5, 6 or 0 (unknown) or 12, 20, ... (unknown).
            4..=7 => "magic",
            8..=9 => "version",
            10..=11 => "length",
            _ => "crc",
        };
        assert_eq!(err.field(), expected_field, "bit {bit}: {err}");
        if expected_field == "crc" {
            assert!(matches!(err, CellError::Crc { .. }), "bit {bit}: {err}");
        }
    }
}

#[test]
fn wrong_magic_version_or_length_is_no_record() {
    let good = sample().encode();

    let mut cell = good;
    cell[4..8].copy_from_slice(b"IRBS");
    fix_crc(&mut cell);
    let err = record_err(&cell);
    assert_eq!(
        err,
        CellError::Magic {
            found: u32::from_le_bytes(*b"IRBS")
        }
    );
    assert_eq!((err.field(), err.offset()), ("magic", 4));

    let mut cell = good;
    cell[8..10].copy_from_slice(&5u16.to_le_bytes());
    fix_crc(&mut cell);
    let err = record_err(&cell);
    assert_eq!(err, CellError::Version { found: 5 });
    assert_eq!((err.field(), err.offset()), ("version", 8));

    let mut cell = good;
    cell[10..12].copy_from_slice(&128u16.to_le_bytes());
    fix_crc(&mut cell);
    let err = record_err(&cell);
    assert_eq!(
        err,
        CellError::Length {
            found: 128,
            expected: CELL_SIZE as u16
        }
    );
    assert_eq!((err.field(), err.offset()), ("length", 10));

    // The slot word survives in every case.
    assert_eq!(
        decode(&cell).unwrap().slot,
        SlotWord::Booted(Slot::Secondary)
    );
}

#[test]
fn an12900_cell_decodes_to_slot_2_without_record() {
    let mut cell = [0u8; CELL_SIZE];
    cell[0] = 2;
    let decoded = decode(&cell).unwrap();
    assert_eq!(decoded.slot, SlotWord::Booted(Slot::Secondary));
    assert_eq!(decoded.record, Err(CellError::NoRecord));
    assert_eq!(decoded.record.unwrap_err().offset(), 4);
    // Just the word, as AN12900's reader reads it.
    let decoded = decode(&2u32.to_le_bytes()).unwrap();
    assert_eq!(decoded.slot.slot(), Ok(Some(Slot::Secondary)));
    assert!(matches!(
        decoded.record,
        Err(CellError::Truncated {
            field: "record",
            offset: 4,
            needed: V1_CELL_SIZE,
            available: 4
        })
    ));
}

#[test]
fn slot_word_7_is_reported_invalid() {
    let mut cell = [0u8; CELL_SIZE];
    cell[0] = 7;
    let decoded = decode(&cell).unwrap();
    assert_eq!(decoded.slot, SlotWord::Invalid(7));
    assert_eq!(decoded.slot.raw(), 7);
    let err = decoded.slot.slot().unwrap_err();
    assert_eq!(err, CellError::InvalidSlot { found: 7 });
    assert_eq!((err.field(), err.offset()), ("slot", 0));
    assert_eq!(
        err.to_string(),
        "field `slot` at offset 0x0: slot word 0x7 is not 0, 1 or 2"
    );
    // A checksummed record cannot vouch for slot word 7 either.
    let mut cell = sample().encode();
    cell[..4].copy_from_slice(&7u32.to_le_bytes());
    fix_crc(&mut cell);
    let decoded = decode(&cell).unwrap();
    assert_eq!(decoded.slot, SlotWord::Invalid(7));
    assert_eq!(
        decoded.record,
        Err(CellError::SlotMismatch {
            reason: 2,
            expected: 2,
            found: 7
        })
    );
}

#[test]
fn slot_word_contradicting_the_reason_is_no_record() {
    let mut cell = sample().encode();
    cell[0] = 1;
    // Rewritten slot word without a new CRC: the CRC catches it.
    assert!(matches!(record_err(&cell), CellError::Crc { .. }));
    // Even with a matching CRC the record does not vouch for a different slot.
    fix_crc(&mut cell);
    let err = record_err(&cell);
    assert_eq!(
        err,
        CellError::SlotMismatch {
            reason: 2,
            expected: 2,
            found: 1
        }
    );
    assert_eq!((err.field(), err.offset()), ("reason", 0x0C));
    assert_eq!(
        err.to_string(),
        "field `reason` at offset 0xc: reason 2 (primary-failed) means slot word 2, but the slot word is 1"
    );
}

#[test]
fn unknown_codes_and_reserved_bytes_name_field_and_offset() {
    let cases: &[(usize, u8, &str, usize)] = &[
        (0x0C, 9, "reason", 0x0C),
        (0x10, 3, "primary.outcome", 0x10),
        (0x11, 0, "primary.class", 0x11),
        (0x11, 18, "primary.class", 0x11),
        (0x16, 3, "primary.part", 0x16),
        (0x17, 1, "primary.flags", 0x17),
        (0x19, 4, "secondary.class", 0x19),
        (0x1E, 1, "secondary.part", 0x1E),
        (0x1F, 8, "secondary.flags", 0x1F),
        (0x20, 6, "sit.status", 0x20),
        (0x22, 1, "sit.reserved", 0x22),
        (0x2C, 4, "rom.log", 0x2C),
        (0x2D, 3, "rom.persist_secondary", 0x2D),
        (0x2E, 0x12, "rom.hab", 0x2E),
        (0x2F, 2, "rom.started", 0x2F),
        (0x2F, 0, "rom.started", 0x2F),
        (0x34, 2, "rollback.status", 0x34),
        (0x35, 65, "rollback.minimum", 0x35),
        (0x3B, 1, "reserved", 0x3B),
    ];
    for &(at, value, field, offset) in cases {
        let mut cell = sample().encode();
        cell[at] = value;
        fix_crc(&mut cell);
        let err = record_err(&cell);
        assert!(matches!(err, CellError::Value { .. }), "{field}: {err}");
        assert_eq!((err.field(), err.offset()), (field, offset), "{err}");
    }
    // A copy that was not examined carries no HAB bytes.
    let mut r = sample();
    r.reason = Some(Reason::PrimaryOk);
    r.primary = CopyReport::Authentic {
        hab: ev(status::SUCCESS, 0, 0, 0),
        warnings: Warnings::default(),
    };
    r.secondary = CopyReport::NotExamined;
    let mut cell = r.encode();
    cell[0x1A] = status::FAILURE;
    fix_crc(&mut cell);
    let err = record_err(&cell);
    assert_eq!((err.field(), err.offset()), ("secondary.hab", 0x1A));
    // Before version 4 the two ROM bytes are reserved, and reasons 5 and 6 do not exist.
    let mut v3 = sample();
    v3.rom.hab = None;
    let mut cell = v3.encode();
    cell[8] = 3;
    cell[0x2F] = 0;
    fix_crc(&mut cell);
    assert_eq!(decode(&cell).unwrap().record, Ok(v3));
    for (at, value, field) in [(0x2E, 0xF0u8, "rom.reserved"), (0x0C, 5, "reason")] {
        let mut bad = cell;
        bad[at] = value;
        fix_crc(&mut bad);
        assert_eq!(record_err(&bad).field(), field);
    }
}

/// Version 4: the reason follows the pairing rule for the copy the ROM started.
#[test]
fn reasons_follow_the_copy_the_rom_started() {
    let mut r = sample(); // primary-failed, started from the primary
    r.rom.log = RomLog::SecondaryBoot;
    let err = record_err(&r.encode());
    assert_eq!(err.field(), "reason", "{err}");
    let r = fit_table(BootRecord {
        reason: Some(Reason::RomSecondary),
        ..r
    });
    assert_eq!(decode(&r.encode()).unwrap().record, Ok(r));
    let mut wrong = r;
    wrong.rom.log = RomLog::PrimaryBoot;
    wrong.rom.boot_stage = RomInfo::STAGE_PRIMARY;
    wrong.rom.persist_secondary = Some(false);
    assert_eq!(record_err(&wrong.encode()).field(), "reason");
    // rom-secondary-failed needs an authentic primary.
    let mut wrong = fit_table(BootRecord {
        reason: Some(Reason::RomSecondaryFailed),
        ..r
    });
    assert_eq!(decode(&wrong.encode()).unwrap().record, Ok(wrong));
    wrong.primary = CopyReport::NotExamined;
    assert_eq!(record_err(&wrong.encode()).field(), "reason");
}

#[test]
fn short_inputs() {
    for n in 0..4 {
        let err = decode(&[1u8; 4][..n]).unwrap_err();
        assert_eq!((err.field(), err.offset()), ("slot", 0));
    }
    let cell = sample().encode();
    for n in 4..CELL_SIZE {
        let decoded = decode(&cell[..n]).unwrap();
        assert_eq!(decoded.slot.raw(), 2);
        assert!(matches!(
            decoded.record,
            Err(CellError::Truncated {
                field: "record",
                ..
            })
        ));
    }
    // Bytes after the cell are ignored.
    let mut longer = [0xA5u8; 100];
    longer[..CELL_SIZE].copy_from_slice(&cell);
    assert_eq!(decode(&longer).unwrap().record, Ok(sample()));
}

#[test]
fn failure_classes_have_stable_codes_and_names() {
    let names = [
        "structure",
        "ivt",
        "command",
        "srk-hash",
        "srk-key",
        "unsupported-key",
        "certificate",
        "csf-signature",
        "image-signature",
        "coverage",
        "load-address",
        "read-error",
        "not-read",
        "hab-rom",
        "not-signed",
        "algorithm",
        "rollback",
    ];
    for (i, (class, name)) in FailureClass::ALL.into_iter().zip(names).enumerate() {
        assert_eq!(class.code() as usize, i + 1);
        assert_eq!(class.name(), name);
        assert_eq!(FailureClass::from_code(class.code()), Some(class));
        assert_eq!(FailureClass::from_name(name), Some(class));
    }
    assert_eq!(FailureClass::from_code(0), None);
    assert_eq!(FailureClass::from_code(18), None);
    for (i, s) in SitStatus::ALL.into_iter().enumerate() {
        assert_eq!(s.code() as usize, i);
        assert_eq!(SitStatus::from_code(s.code()), Some(s));
    }
    assert_eq!(SitStatus::from_code(6), None);
    for (i, l) in RomLog::ALL.into_iter().enumerate() {
        assert_eq!(l.code() as usize, i);
        assert_eq!(RomLog::from_code(l.code()), Some(l));
    }
}

#[test]
fn failure_class_agrees_with_verify_error_check() {
    let block = imx_hab::csf::Block { start: 0, len: 4 };
    let parse_error = imx_hab::sit::Sit::parse(&[]).unwrap_err();
    let errors = [
        VerifyError::Parse(parse_error),
        VerifyError::IvtSelf {
            found: 0,
            expected: 0,
        },
        VerifyError::IvtDcd { found: 1 },
        VerifyError::Command {
            offset: 0,
            fault: CommandFault::Forbidden,
        },
        VerifyError::SrkHash {
            offset: 0,
            computed: [0; 32],
        },
        VerifyError::SrkHashOnly { index: 0 },
        VerifyError::SrkRevoked { index: 0 },
        VerifyError::UnsupportedKey {
            offset: 0,
            what: "rsa",
        },
        VerifyError::Certificate {
            slot: 2,
            offset: 0,
            fault: CertificateFault::NotSignedBySource,
        },
        VerifyError::Signature {
            role: SignatureRole::Csf,
            offset: 0,
            fault: SignatureFault::BadValue,
            first_block: None,
        },
        VerifyError::Signature {
            role: SignatureRole::Image { key: 3 },
            offset: 0,
            fault: SignatureFault::BadValue,
            first_block: Some(block),
        },
        VerifyError::BlockOutsideImage {
            offset: 0,
            index: 0,
            block,
        },
        VerifyError::TooManyBlocks,
        VerifyError::NotCovered { from: 0, to: 1 },
        VerifyError::CsfNotAuthenticated,
    ];
    for e in errors {
        let class = FailureClass::of_verify_error(&e);
        assert_eq!(class.name(), e.check(), "{e:?}");
        assert_eq!(
            FailureClass::of_auth_failure(&AuthFailure::Software(e)),
            class
        );
    }
    let rom = AuthFailure::Rom(RomFailure {
        status: status::FAILURE,
        config: 0,
        state: 0,
        first_failure: None,
        events: 0,
    });
    assert_eq!(FailureClass::of_auth_failure(&rom), FailureClass::HabRom);
}

#[test]
fn slot_follows_the_policy_decision() {
    use CopyVerdict::{Authentic, NotAuthentic};
    for p in [Authentic, NotAuthentic] {
        for s in [SitVerdict::Valid, SitVerdict::Invalid] {
            for q in [Authentic, NotAuthentic] {
                for started in [Slot::Primary, Slot::Secondary] {
                    let d = decide(started, || p, || s, || q);
                    assert_eq!(slot_for_reason(Some(d.reason)), d.slot, "{d:?}");
                    assert_eq!(reason_from_code(d.reason as u32), Some(d.reason));
                }
            }
        }
    }
    assert_eq!(reason_from_code(0), None);
    assert_eq!(reason_from_code(7), None);
}

#[test]
fn shim_version_is_the_crate_version() {
    let v = ShimVersion::CURRENT;
    assert_eq!(v.to_string(), env!("CARGO_PKG_VERSION"));
    assert_eq!(ShimVersion::from_u32(v.to_u32()), v);
    assert_eq!(ShimVersion::from_u32(0x0001_0203).to_string(), "1.2.3");
}

/// The booted digest is present exactly when a slot was booted (version 2).
#[test]
fn the_booted_digest_follows_the_slot() {
    let mut r = sample();
    r.booted = None;
    let err = record_err(&r.encode());
    assert_eq!((err.field(), err.offset()), ("booted", 0x3C), "{err}");
    let mut r = fit_table(BootRecord {
        reason: Some(Reason::BothFailed),
        ..sample()
    });
    r.booted = Some([1; 32]);
    let err = record_err(&r.encode());
    assert_eq!((err.field(), err.offset()), ("booted", 0x3C), "{err}");
}

#[test]
fn error_messages_name_field_and_offset() {
    let mut cell = sample().encode();
    cell[0x20] ^= 1;
    let err = record_err(&cell);
    let msg = err.to_string();
    assert!(
        msg.starts_with("field `crc` at offset 0x5c: CRC-32 stored"),
        "{msg}"
    );
    let msg = CellError::NoRecord.to_string();
    assert!(msg.contains("no boot record"), "{msg}");
}

fn any_hab() -> impl Strategy<Value = EventSummary> {
    any::<[u8; 4]>().prop_map(|b| ev(b[0], b[1], b[2], b[3]))
}

fn any_copy() -> impl Strategy<Value = CopyReport> {
    prop_oneof![
        Just(CopyReport::NotExamined),
        (any_hab(), 0u8..8).prop_map(|(hab, bits)| CopyReport::Authentic {
            hab,
            warnings: Warnings::from_bits(bits).unwrap_or_default(),
        }),
        (
            prop::sample::select(FailureClass::ALL.to_vec()),
            any_hab(),
            prop::sample::select(vec![Part::Spl, Part::Fit]),
        )
            .prop_map(|(class, hab, part)| CopyReport::Rejected {
                class,
                hab,
                part: Some(part),
            }),
    ]
}

/// `r` made to follow the decision table for its reason (`decode::follows_the_table`),
/// keeping whatever verdict details already fit.
fn fit_table(mut r: BootRecord) -> BootRecord {
    let authentic = |c: CopyReport| match c {
        CopyReport::Authentic { .. } => c,
        _ => CopyReport::Authentic {
            hab: ev(status::SUCCESS, 0, 0, 0),
            warnings: Warnings::default(),
        },
    };
    let rejected = |c: CopyReport| match c {
        CopyReport::Rejected { .. } => c,
        _ => CopyReport::Rejected {
            class: FailureClass::Structure,
            hab: ev(status::FAILURE, 1, 2, 3),
            part: Some(Part::Fit),
        },
    };
    let (p, sec, sit) = match r.reason {
        None => (
            CopyReport::NotExamined,
            CopyReport::NotExamined,
            SitStatus::NotRead,
        ),
        Some(Reason::PrimaryOk) => (
            authentic(r.primary),
            CopyReport::NotExamined,
            SitStatus::NotRead,
        ),
        Some(Reason::PrimaryFailed) => (
            rejected(r.primary),
            authentic(r.secondary),
            SitStatus::Valid,
        ),
        Some(Reason::NoFallbackTable) => (
            rejected(r.primary),
            CopyReport::NotExamined,
            match r.sit.status {
                SitStatus::NotRead | SitStatus::Valid => SitStatus::BadTag,
                other => other,
            },
        ),
        Some(Reason::BothFailed) => (rejected(r.primary), rejected(r.secondary), SitStatus::Valid),
        Some(Reason::RomSecondary) => (
            CopyReport::NotExamined,
            authentic(r.secondary),
            SitStatus::Valid,
        ),
        Some(Reason::RomSecondaryFailed) => match r.sit.status {
            SitStatus::Valid | SitStatus::NotRead => (
                authentic(r.primary),
                rejected(r.secondary),
                SitStatus::Valid,
            ),
            other => (authentic(r.primary), CopyReport::NotExamined, other),
        },
    };
    // The pairing (version 4): reasons 5 and 6 exactly when the ROM started the secondary.
    match r.reason {
        Some(Reason::RomSecondary | Reason::RomSecondaryFailed) => {
            r.rom.log = RomLog::SecondaryBoot
        }
        Some(Reason::PrimaryOk | Reason::PrimaryFailed)
            if r.rom.started() == Some(Slot::Secondary) =>
        {
            r.rom.log = RomLog::PrimaryBoot;
            r.rom.boot_stage = RomInfo::STAGE_PRIMARY;
            r.rom.persist_secondary = Some(false);
        }
        _ => {}
    }
    r.primary = p;
    r.secondary = sec;
    r.sit.status = sit;
    r.booted = slot_for_reason(r.reason).map(|_| [0x5A; 32]);
    let rolled_back = |c: &CopyReport| {
        matches!(
            c,
            CopyReport::Rejected {
                class: FailureClass::Rollback,
                ..
            }
        )
    };
    if rolled_back(&r.primary) || rolled_back(&r.secondary) {
        r.rollback_minimum = Some(r.rollback_minimum.unwrap_or(0).max(1));
    }
    r
}

fn any_record() -> impl Strategy<Value = BootRecord> {
    (
        prop::sample::select(vec![
            None,
            Some(Reason::PrimaryOk),
            Some(Reason::PrimaryFailed),
            Some(Reason::NoFallbackTable),
            Some(Reason::BothFailed),
            Some(Reason::RomSecondary),
            Some(Reason::RomSecondaryFailed),
        ]),
        any_copy(),
        any_copy(),
        prop::sample::select(SitStatus::ALL.to_vec()),
        any::<u32>(),
        any::<u32>(),
        prop::sample::select(RomLog::ALL.to_vec()),
        prop::sample::select(vec![None, Some(false), Some(true)]),
        any::<u32>(),
        prop::option::of(0u8..=64),
        prop::sample::select(vec![None, Some(0xF0u8), Some(0x33), Some(0x69)]),
    )
        .prop_map(
            |(
                reason,
                primary,
                secondary,
                status,
                first_sector,
                stage,
                log,
                persist,
                v,
                min,
                hab,
            )| {
                BootRecord {
                    reason,
                    primary,
                    secondary,
                    sit: SitReport {
                        status,
                        first_sector,
                    },
                    rom: RomInfo {
                        boot_stage: stage,
                        log,
                        persist_secondary: persist,
                        hab,
                    },
                    shim_version: ShimVersion::from_u32(v),
                    booted: None,
                    rollback_minimum: min,
                }
            },
        )
        .prop_map(fit_table)
}

proptest! {
    #[test]
    fn prop_round_trip(r in any_record()) {
        let cell = r.encode();
        let decoded = decode(&cell).unwrap();
        prop_assert_eq!(decoded.slot.slot(), Ok(r.slot()));
        prop_assert_eq!(decoded.record, Ok(r));
    }

    #[test]
    fn prop_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..160)) {
        match decode(&bytes) {
            Err(e) => prop_assert!(bytes.len() < 4 && e.field() == "slot", "{e}"),
            Ok(cell) => {
                let word = u32::from_le_bytes(bytes[..4].try_into().unwrap());
                prop_assert_eq!(cell.slot.raw(), word);
                if let Ok(r) = cell.record {
                    prop_assert_eq!(&r.encode()[..], &bytes[..CELL_SIZE]);
                }
            }
        }
    }

    /// Random bodies behind a right header and CRC reach every field check: decoding
    /// never panics, and whatever decodes re-encodes to the same bytes (canonical).
    #[test]
    fn prop_checksummed_random_records_never_panic(mut cell in any::<[u8; CELL_SIZE]>()) {
        cell[4..8].copy_from_slice(&MAGIC.to_le_bytes());
        cell[8..10].copy_from_slice(&VERSION.to_le_bytes());
        cell[10..12].copy_from_slice(&(CELL_SIZE as u16).to_le_bytes());
        fix_crc(&mut cell);
        let decoded = decode(&cell).unwrap();
        match decoded.record {
            Ok(r) => prop_assert_eq!(r.encode(), cell),
            Err(e) => {
                prop_assert!(e.offset() < CELL_SIZE);
                prop_assert!(!e.to_string().is_empty());
            }
        }
    }

    /// A valid record with one byte replaced and the CRC rewritten: either it decodes and
    /// re-encodes to the same bytes, or the error names a field at or before that byte.
    #[test]
    fn prop_mutated_records_are_rejected_or_canonical(
        r in any_record(),
        at in 0..CRC_OFFSET,
        value in any::<u8>(),
    ) {
        let mut cell = r.encode();
        cell[at] = value;
        fix_crc(&mut cell);
        let decoded = decode(&cell).unwrap();
        prop_assert_eq!(decoded.slot.raw(), u32::from_le_bytes(cell[..4].try_into().unwrap()));
        match decoded.record {
            Ok(d) => prop_assert_eq!(d.encode(), cell),
            // Fields of one group are checked against each other (a copy's outcome and
            // class, the SIT status and its first sector, the ROM log and its stage): the
            // error may name a later field of the group the changed byte belongs to.
            Err(e) => prop_assert!(
                e.offset() <= at
                    || e.field() == "reason" && at < 4
                    || (0x10..0x30).contains(&at) && at / 8 == e.offset() / 8
                    // A class changed to or from `rollback` is checked against the minimum.
                    || e.field() == "rollback.minimum" && (0x10..0x20).contains(&at),
                "byte {at:#x}: {e}"
            ),
        }
    }
}
