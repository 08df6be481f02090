//! The shim firmware in QEMU's `imx8mp-evk` under the simulation contract (issue 4 §8): each
//! scenario builds a real SD image (signed shim SPL + signed FIT per copy, SIT), boots it, and
//! asserts on the cell read over QMP and on the UART (the shim's verdicts and the test
//! payload's marker with the slot it read and the version it was built as).
//!
//! Needs `qemu-system-aarch64` >= 9.2 (`.ci/run` installs it from bookworm-backports); without
//! it these tests fail with the install hint.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use boot_core::cell::{CopyReport, FailureClass, SitStatus};
use boot_core::policy::Reason;
use xtask::disk::{
    DiskSpec, ImageCopy, SDHC_4G, SitMode, build_disk, copy_offsets, flip_byte, primary_csf_offset,
    primary_fit_data_offset, primary_fit_ivt_offset, secondary_fit_data_offset,
};
use xtask::qemu::{SimOutcome, Stop, run};
use xtask::sim::SimKit;

/// One kit (firmware, payload, test PKI) for every scenario; building it runs cargo once.
fn kit() -> &'static SimKit {
    static KIT: OnceLock<SimKit> = OnceLock::new();
    KIT.get_or_init(|| {
        xtask::qemu::check_qemu(&xtask::qemu::qemu_binary()).unwrap_or_else(|e| panic!("{e}"));
        SimKit::build(b"qemu scenario tests").unwrap_or_else(|e| panic!("{e}"))
    })
}

fn images() -> &'static (Vec<u8>, Vec<u8>) {
    static IMAGES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    IMAGES.get_or_init(|| (kit().flash_bin(1).unwrap(), kit().flash_bin(2).unwrap()))
}

struct Scenario {
    _dir: tempfile::TempDir,
    fuses: PathBuf,
    disk: PathBuf,
}

/// A disk with version 1 as primary, version 2 as secondary, adjusted by `f`.
fn scenario(f: impl FnOnce(&mut DiskSpec)) -> Scenario {
    let dir = tempfile::tempdir().unwrap();
    let fuses = dir.path().join("fuses.bin");
    let disk = dir.path().join("sd.img");
    kit().write_fuses(&fuses).unwrap();
    let (v1, v2) = images();
    let mut spec = DiskSpec::new(v1.clone(), v2.clone());
    f(&mut spec);
    build_disk(&disk, &spec).unwrap();
    Scenario {
        _dir: dir,
        fuses,
        disk,
    }
}

fn boot(s: &Scenario) -> SimOutcome {
    let out = run(&kit().sim_config(&s.fuses, &s.disk), &Stop::Boot).unwrap();
    assert!(!out.timed_out, "QEMU timed out:\n{}", out.uart);
    assert_defmt(&out);
    out
}

/// The shim logged defmt frames (issue 16), each decoded with its ELF's table into lines (a
/// frame may carry several) with a timestamp and a level, in time order.
fn assert_defmt(out: &SimOutcome) {
    let st = out.uart_stats;
    assert!(st.defmt, "the shim ELF has no defmt table\n{}", out.uart);
    assert!(!out.uart_has("xtask: "), "undecodable frames\n{}", out.uart);
    let lines = out.shim_lines();
    assert!(lines.len() as u64 > st.frames, "{st:?}\n{}", out.uart);
    assert!(st.frames >= 4, "{st:?}\n{}", out.uart);
    assert!(
        lines.windows(2).all(|w| w[0].seconds <= w[1].seconds),
        "timestamps out of order\n{}",
        out.uart
    );
}

/// On a normal boot the frames take at least 5x fewer UART bytes than the text lines they
/// decode to, which are the text build's lines (issue 16's goal; `cargo xtask bench` measures
/// both builds).
fn assert_compact(out: &SimOutcome) {
    let st = out.uart_stats;
    let text: usize = out
        .shim_lines()
        .iter()
        .map(|d| "shim: \r\n".len() + d.message.len())
        .sum();
    assert!(
        st.shim_bytes > 0 && text as u64 >= 5 * st.shim_bytes,
        "{} UART bytes for {text} bytes of text\n{}",
        st.shim_bytes,
        out.uart
    );
}

fn record(out: &SimOutcome) -> boot_core::cell::BootRecord {
    let cell = out
        .decoded_cell()
        .unwrap_or_else(|| panic!("no cell read over QMP\n{}", out.uart));
    cell.record
        .unwrap_or_else(|e| panic!("no valid boot record: {e}\n{}", out.uart))
}

fn class(r: &CopyReport) -> Option<FailureClass> {
    match r {
        CopyReport::Rejected { class, .. } => Some(*class),
        _ => None,
    }
}

/// Asserts the payload of `version` ran from `slot` and exited with the slot.
fn assert_booted(out: &SimOutcome, slot: u32, version: u32) {
    assert_eq!(out.slot_word(), Some(slot), "cell word 0\n{}", out.uart);
    let marker = format!("payload: version {version} slot {slot} EL3");
    assert!(
        out.uart_has(&marker),
        "no `{marker}` on the UART\n{}",
        out.uart
    );
    assert!(
        out.shim_logged(
            "INFO",
            &format!("slot {slot} handoff to 0x40200000 (payload) at EL3")
        ),
        "{}",
        out.uart
    );
    assert_eq!(out.exit_code(), Some(slot as i32), "{}", out.uart);
}

fn assert_nothing_booted(out: &SimOutcome, reason: Reason) {
    assert_eq!(out.slot_word(), Some(0), "{}", out.uart);
    assert!(!out.uart_has("payload:"), "a payload ran\n{}", out.uart);
    let name = boot_core::cell::reason_name(reason);
    assert!(
        out.shim_logged("ERROR", &format!("nothing bootable ({name})")),
        "{}",
        out.uart
    );
    assert_eq!(record(out).reason, Some(reason));
}

fn flip(disk: &Path, at: xtask::Result<u64>) {
    flip_byte(disk, at.unwrap()).unwrap();
}

#[test]
fn good_primary_boots_slot_1_and_its_payload_runs() {
    let s = scenario(|_| {});
    let out = boot(&s);
    assert_booted(&out, 1, 1);
    assert_compact(&out);
    let r = record(&out);
    assert_eq!(r.reason, Some(Reason::PrimaryOk));
    assert!(matches!(r.primary, CopyReport::Authentic { .. }));
    assert_eq!(r.secondary, CopyReport::NotExamined);
    assert_eq!(r.sit.status, SitStatus::NotRead);
    assert!(
        out.shim_logged("INFO", "uSDHC2: SDSC card, 131072 blocks"),
        "{}",
        out.uart
    );
}

#[test]
fn a_flipped_byte_in_the_primary_fit_data_boots_the_secondary() {
    let s = scenario(|_| {});
    flip(&s.disk, primary_fit_data_offset(&s.disk));
    let out = boot(&s);
    assert_booted(&out, 2, 2);
    let r = record(&out);
    assert_eq!(r.reason, Some(Reason::PrimaryFailed));
    assert_eq!(class(&r.primary), Some(FailureClass::ImageSignature));
    assert!(matches!(r.secondary, CopyReport::Authentic { .. }));
    assert_eq!(
        (r.sit.status, r.sit.first_sector),
        (SitStatus::Valid, 0x1000)
    );
    // The verdicts as decoded lines, at their levels, in the flow's order.
    let p = copy_offsets(&s.disk, ImageCopy::Primary).unwrap().spl_ivt;
    let sec = copy_offsets(&s.disk, ImageCopy::Secondary).unwrap().spl_ivt;
    let order = [
        (
            "WARN",
            format!("primary at {p:#x}: rejected (image-signature)"),
        ),
        ("INFO", "SIT valid, firstSectorNumber 0x1000".to_string()),
        ("INFO", format!("secondary at {sec:#x}: authentic")),
        ("INFO", "slot 2 handoff to 0x40200000".to_string()),
    ];
    let lines = out.shim_lines();
    let at = |(level, msg): &(&str, String)| {
        lines
            .iter()
            .position(|d| d.level == *level && d.message.starts_with(msg.as_str()))
            .unwrap_or_else(|| panic!("no {level} `{msg}`\n{}", out.uart))
    };
    let found: Vec<usize> = order.iter().map(at).collect();
    assert!(found.is_sorted(), "{found:?}\n{}", out.uart);
}

#[test]
fn a_damaged_primary_ivt_boots_the_secondary() {
    let s = scenario(|_| {});
    flip(&s.disk, primary_fit_ivt_offset(&s.disk));
    let out = boot(&s);
    assert_booted(&out, 2, 2);
    assert_eq!(class(&record(&out).primary), Some(FailureClass::Ivt));
}

#[test]
fn a_damaged_primary_csf_boots_the_secondary() {
    let s = scenario(|_| {});
    flip(&s.disk, primary_csf_offset(&s.disk));
    let out = boot(&s);
    assert_booted(&out, 2, 2);
    assert!(class(&record(&out).primary).is_some(), "{}", out.uart);
}

#[test]
fn primary_bad_and_sit_tag_wrong_boots_nothing_and_says_why() {
    let s = scenario(|spec| spec.sit = SitMode::BadTag(0x0011_2234));
    flip(&s.disk, primary_fit_data_offset(&s.disk));
    let out = boot(&s);
    assert_nothing_booted(&out, Reason::NoFallbackTable);
    let r = record(&out);
    assert_eq!(r.sit.status, SitStatus::BadTag);
    assert_eq!(r.secondary, CopyReport::NotExamined);
}

#[test]
fn both_copies_bad_boots_nothing() {
    let s = scenario(|_| {});
    flip(&s.disk, primary_fit_data_offset(&s.disk));
    flip(&s.disk, secondary_fit_data_offset(&s.disk));
    let out = boot(&s);
    assert_nothing_booted(&out, Reason::BothFailed);
    let r = record(&out);
    assert_eq!(class(&r.secondary), Some(FailureClass::ImageSignature));
}

#[test]
fn a_secondary_at_a_non_standard_first_sector_is_booted_through_the_sit() {
    let s = scenario(|spec| spec.first_sector = 0x3000);
    flip(&s.disk, primary_fit_data_offset(&s.disk));
    let out = boot(&s);
    assert_booted(&out, 2, 2);
    let r = record(&out);
    assert_eq!(r.sit.first_sector, 0x3000);
    let off = copy_offsets(&s.disk, ImageCopy::Secondary).unwrap();
    assert!(
        out.shim_logged(
            "INFO",
            &format!("secondary at {:#x}: authentic", off.spl_ivt)
        ),
        "{}",
        out.uart
    );
}

#[test]
fn a_4_gib_sdhc_card_boots_both_copies() {
    let s = scenario(|spec| spec.size = SDHC_4G);
    let out = boot(&s);
    assert!(
        out.shim_logged("INFO", "uSDHC2: SDHC card, 8388608 blocks"),
        "{}",
        out.uart
    );
    assert_booted(&out, 1, 1);
    flip(&s.disk, primary_fit_data_offset(&s.disk));
    let out = boot(&s);
    assert_booted(&out, 2, 2);
}

/// Anti-rollback in the shim (design.md §5.3; the one boot that shows the firmware reads the
/// rollback fuses and enforces them): fuses with minimum 2, an authentic epoch-1 primary and an
/// epoch-2 secondary. The shim refuses the primary after authenticating it, boots the
/// secondary, and records why (class `rollback`, the FIT, minimum 2) in the cell.
#[test]
fn an_epoch_1_primary_under_minimum_2_boots_the_epoch_2_secondary() {
    let k = kit();
    let s = scenario(|spec| {
        spec.primary = Some(k.flash_bin_epoch(&k.payload, 1, Some(1)).unwrap());
        spec.secondary = Some(k.flash_bin_epoch(&k.payload, 2, Some(2)).unwrap());
    });
    xtask::pki::SimFuses {
        rollback: 0b11,
        ..k.fuses
    }
    .write(&s.fuses)
    .unwrap();
    let out = boot(&s);
    assert_booted(&out, 2, 2);
    assert!(
        out.shim_logged("INFO", "closed part, rollback minimum 2"),
        "{}",
        out.uart
    );
    assert!(
        out.shim_lines().iter().any(|d| d.level == "WARN"
            && d.message.contains("rejected (rollback)")
            && d.message
                .contains("security epoch 1 is below the minimum 2")),
        "{}",
        out.uart
    );
    let r = record(&out);
    assert_eq!(r.reason, Some(Reason::PrimaryFailed));
    assert_eq!(class(&r.primary), Some(FailureClass::Rollback));
    assert!(matches!(
        r.primary,
        CopyReport::Rejected {
            part: Some(boot_core::examine::Part::Fit),
            ..
        }
    ));
    assert!(matches!(r.secondary, CopyReport::Authentic { .. }));
    assert_eq!(r.rollback_minimum, Some(2));
}
