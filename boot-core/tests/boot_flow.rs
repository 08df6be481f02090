//! The boot flow of design.md §5 over in-memory disks, with the software HAB4 verifier and
//! images signed on the fly: the decision table, what the cell records, what is read (once),
//! and what the handoff plan holds.

mod common;

use boot_core::cell::{CopyReport, FailureClass, SitStatus, decode};
use boot_core::policy::{Reason, Slot};
use common::*;
use imx_hab::hab::codes::status;
use imx_hab::image::SignedFit;
use imx_hab::sit::build_sector;

const DISK: usize = 8 << 20;

fn layout() -> boards::MediaLayout {
    BOARD.media
}

fn secondary_at(first: u32) -> u64 {
    layout().secondary_offset(first).unwrap()
}

/// A disk with a valid SIT (standard firstSectorNumber) and the given copies.
fn disk(primary: Option<&[u8]>, secondary: Option<&[u8]>) -> MemDisk {
    let mut d = MemDisk::new(DISK);
    d.put(
        layout().sit_offset(),
        &build_sector(layout().standard_first_sector),
    );
    if let Some(p) = primary {
        d.put(layout().primary_offset(), p);
    }
    if let Some(s) = secondary {
        d.put(secondary_at(layout().standard_first_sector), s);
    }
    d
}

fn v(version: u8) -> Vec<u8> {
    flash_bin(&signed(&standard_fit(version), LOAD, pki()))
}

/// Offset of the signed FIT's payload image data inside a flash.bin.
fn payload_offset(flash: &[u8]) -> usize {
    let fit_off = layout().fit_offset as usize;
    let s = SignedFit::parse(&flash[fit_off..]).unwrap();
    let img = s.fit.image_by_name("payload").unwrap();
    fit_off + img.data.offset as usize
}

fn ivt_offset(flash: &[u8]) -> usize {
    let fit_off = layout().fit_offset as usize;
    fit_off + SignedFit::parse(&flash[fit_off..]).unwrap().ivt_offset as usize
}

fn csf_offset(flash: &[u8]) -> usize {
    let fit_off = layout().fit_offset as usize;
    fit_off + SignedFit::parse(&flash[fit_off..]).unwrap().csf_offset as usize
}

fn rejected_class(r: &CopyReport) -> FailureClass {
    match r {
        CopyReport::Rejected { class, hab, .. } => {
            assert_eq!(hab.status, status::FAILURE);
            *class
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn authentic_primary_boots_slot_1_reading_it_once_and_nothing_else() {
    let p = v(1);
    let mut d = disk(Some(&p), Some(&v(2)));
    let b = boot(&mut d);
    assert_eq!(b.decision.slot, Some(Slot::Primary));
    assert_eq!(b.record.reason, Some(Reason::PrimaryOk));
    assert!(
        matches!(b.record.primary, CopyReport::Authentic { hab, .. } if hab.status == status::SUCCESS)
    );
    assert_eq!(b.record.secondary, CopyReport::NotExamined);
    assert_eq!(b.record.sit.status, SitStatus::NotRead);
    // The record names the booted image: the digest of its SPL and its FIT through the CSF,
    // the same identity `ubootctl` computes for a copy or an image file.
    assert_eq!(
        b.record.booted,
        boot_core::examine::flash_bin_identity(&p, layout().fit_offset)
    );
    assert!(b.record.booted.is_some());
    // The copy's own IVT sector, the SPL as the ROM loads it (boot data size), the FIT header
    // sector, the FIT's IVT sector, then the whole blob in one read: nothing else, and nothing
    // from the SIT or the secondary.
    assert_eq!(d.reads.len(), 5, "{:?}", d.reads);
    assert_eq!(d.reads[0], (layout().primary_offset(), 512));
    let spl_len = u32::from_le_bytes(p[0x24..0x28].try_into().unwrap()) as usize;
    assert_eq!(d.reads[1], (layout().primary_offset(), spl_len));
    let fit_dev = layout().primary_fit_offset();
    assert_eq!(d.reads[2], (fit_dev, 512));
    assert_eq!(d.reads[4].0, fit_dev);
    let ivt = (ivt_offset(&p) - layout().fit_offset as usize) as u64;
    assert_eq!(d.reads[4].1 as u64, ivt + boot_core::boot::CSF_AREA);
    assert_eq!(b.timings.read_bytes as usize, d.read_bytes());
    // The blob sits at its load address in the window, byte-identical to the medium.
    let fit_off = layout().fit_offset as usize;
    assert_eq!(
        &b.window[..ivt as usize + 0x20],
        &p[fit_off..fit_off + ivt as usize + 0x20]
    );
    assert!(b.watchdog_services >= 4, "{}", b.watchdog_services);
    assert!(
        b.console.contains("primary at 0x8400: authentic"),
        "{}",
        b.console
    );
}

#[test]
fn the_plan_copies_the_default_configuration_and_enters_the_firmware() {
    let mut d = disk(Some(&v(1)), None);
    let b = boot(&mut d);
    let (slot, load, copies, entry) = b.bootable.expect("bootable");
    assert_eq!(
        (slot, load, entry),
        (Slot::Primary, u64::from(LOAD), 0x4020_0000)
    );
    let names: Vec<_> = copies.iter().map(|c| (c.0.as_str(), c.2, c.3)).collect();
    assert_eq!(
        names,
        [
            ("payload", 24 * 1024, 0x4020_0000),
            ("blob", 4096, 0x4040_0000)
        ]
    );
    // Sources are inside the authenticated FIT and hold the images' bytes.
    let fit = standard_fit(1);
    let (_, src, len, _) = &copies[0];
    let src = *src as usize;
    assert_eq!(
        &b.window[src..src + *len as usize],
        &fit[src..src + *len as usize]
    );
    assert_eq!(b.window[src], 1, "payload version byte");
}

#[test]
fn a_flipped_byte_in_the_primary_fit_data_falls_back_to_slot_2() {
    let mut p = v(1);
    let at = payload_offset(&p) + 100;
    p[at] ^= 0x01;
    let mut d = disk(Some(&p), Some(&v(2)));
    let b = boot(&mut d);
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(b.record.reason, Some(Reason::PrimaryFailed));
    assert_eq!(
        rejected_class(&b.record.primary),
        FailureClass::ImageSignature
    );
    assert!(matches!(b.record.secondary, CopyReport::Authentic { .. }));
    assert_eq!(b.record.sit.status, SitStatus::Valid);
    assert_eq!(b.record.sit.first_sector, 0x1000);
    let (slot, _, copies, _) = b.bootable.unwrap();
    assert_eq!(slot, Slot::Secondary);
    // The window now holds the secondary's payload (version 2).
    assert_eq!(b.window[copies[0].1 as usize], 2);
    assert!(
        b.console.contains("rejected (image-signature)"),
        "{}",
        b.console
    );
}

#[test]
fn a_damaged_primary_ivt_or_csf_falls_back_to_slot_2() {
    for (what, at, class) in [
        ("IVT header", ivt_offset(&v(1)), FailureClass::Ivt),
        (
            "IVT self",
            ivt_offset(&v(1)) + 0x17,
            FailureClass::LoadAddress,
        ),
        ("CSF header", csf_offset(&v(1)), FailureClass::Structure),
        (
            "CSF body",
            csf_offset(&v(1)) + 0x40,
            FailureClass::Structure,
        ),
    ] {
        let mut p = v(1);
        p[at] ^= 0x10;
        let mut d = disk(Some(&p), Some(&v(2)));
        let b = boot(&mut d);
        assert_eq!(
            b.decision.slot,
            Some(Slot::Secondary),
            "{what}: {}",
            b.console
        );
        let found = rejected_class(&b.record.primary);
        // The exact class depends on which byte of the structure; the decision never does.
        if what.ends_with("header") || what == "IVT self" {
            assert_eq!(found, class, "{what}: {}", b.console);
        }
    }
}

#[test]
fn a_primary_signed_with_other_keys_is_rejected_at_the_srk_hash() {
    let p = flash_bin(&signed(&standard_fit(1), LOAD, other_pki()));
    let mut d = disk(Some(&p), Some(&v(2)));
    let b = boot(&mut d);
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(rejected_class(&b.record.primary), FailureClass::SrkHash);
}

#[test]
fn primary_bad_and_sit_tag_wrong_boots_nothing_and_records_why() {
    let mut d = disk(None, Some(&v(2)));
    let mut sit = build_sector(0x1000);
    sit[8] ^= 0xFF;
    d.put(layout().sit_offset(), &sit);
    let b = boot(&mut d);
    assert_eq!(b.decision.slot, None);
    assert_eq!(b.record.reason, Some(Reason::NoFallbackTable));
    assert_eq!(rejected_class(&b.record.primary), FailureClass::Ivt);
    assert_eq!(b.record.sit.status, SitStatus::BadTag);
    assert_eq!(b.record.secondary, CopyReport::NotExamined);
    assert!(b.bootable.is_none());
    // The cell says 0 and why.
    let cell = decode(&b.record.encode()).unwrap();
    assert_eq!(cell.slot.raw(), 0);
    assert_eq!(cell.record.unwrap(), b.record);
}

#[test]
fn both_bad_boots_nothing() {
    let mut p = v(1);
    let at = payload_offset(&p);
    p[at] ^= 1;
    let mut s = v(2);
    s[at] ^= 1;
    let mut d = disk(Some(&p), Some(&s));
    let b = boot(&mut d);
    assert_eq!(b.decision.slot, None);
    assert_eq!(b.record.reason, Some(Reason::BothFailed));
    assert_eq!(
        rejected_class(&b.record.secondary),
        FailureClass::ImageSignature
    );
    assert!(b.bootable.is_none());
    assert_eq!(b.record.encode()[0..4], [0, 0, 0, 0]);
}

#[test]
fn a_secondary_at_a_non_standard_first_sector_is_found_through_the_sit() {
    let first = 0x2000;
    let mut d = MemDisk::new(DISK);
    d.put(layout().sit_offset(), &build_sector(first));
    d.put(secondary_at(first), &v(2));
    let b = boot(&mut d);
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(b.record.sit.first_sector, first);
    assert!(
        d.reads
            .iter()
            .any(|r| r.0 == secondary_at(first) + layout().fit_offset)
    );
}

#[test]
fn sit_pointing_into_the_primary_or_past_the_device_is_invalid() {
    for (first, status) in [
        (0x10, SitStatus::OverlapsPrimary),
        (0x3F00, SitStatus::OutsideDevice),
        (u32::MAX - 0x41, SitStatus::OutsideDevice),
    ] {
        let mut d = MemDisk::new(DISK);
        d.put(layout().sit_offset(), &build_sector(first));
        let b = boot(&mut d);
        assert_eq!(b.record.sit.status, status, "{first:#x}: {}", b.console);
        assert_eq!(b.record.reason, Some(Reason::NoFallbackTable));
    }
}

#[test]
fn a_read_error_in_the_primary_is_a_read_error_verdict_and_falls_back() {
    let mut d = disk(Some(&v(1)), Some(&v(2)));
    let fit = layout().primary_fit_offset();
    d.bad = Some((fit + 0x1000, fit + 0x1200));
    let b = boot(&mut d);
    assert_eq!(rejected_class(&b.record.primary), FailureClass::ReadError);
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert!(b.console.contains("CMD18 failed"), "{}", b.console);
}

#[test]
fn a_fit_signed_for_an_address_outside_the_window_is_rejected_before_reading_it() {
    let p = flash_bin(&signed(&standard_fit(1), 0x5000_0000, pki()));
    let mut d = disk(Some(&p), Some(&v(2)));
    let b = boot(&mut d);
    assert_eq!(rejected_class(&b.record.primary), FailureClass::LoadAddress);
    // Only the copy's IVT sector, its SPL, the FIT header and the FIT's IVT sectors of the
    // primary were read.
    let primary_reads = d
        .reads
        .iter()
        .filter(|r| r.0 < layout().primary_offset() + (2 << 20))
        .count();
    assert_eq!(primary_reads, 4 + 1, "{:?}", d.reads); // + the SIT sector
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
}

#[test]
fn an_authentic_fit_that_cannot_be_handed_off_is_not_booted() {
    // Signed with the right keys, but its payload would overwrite the shim.
    let bad = fit(
        &[Img::new("payload", 4096, 0x0091_0000).entry(0x0091_0000)],
        Some("payload"),
        &[],
    );
    let p = flash_bin(&signed(&bad, LOAD, pki()));
    let mut d = disk(Some(&p), Some(&v(2)));
    let b = boot(&mut d);
    assert_eq!(rejected_class(&b.record.primary), FailureClass::LoadAddress);
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert!(b.console.contains("cannot hand off to it"), "{}", b.console);
}

#[test]
fn a_fit_too_large_for_its_slot_is_rejected() {
    // Big enough that FIT + CSF area runs past the 2 MiB slot.
    let big = fit(
        &[Img::new("payload", (2 << 20) - 0x57C00 - 0x1000, 0x4020_0000).entry(0x4020_0000)],
        Some("payload"),
        &[],
    );
    let p = flash_bin(&signed(&big, LOAD, pki()));
    let mut d = disk(None, Some(&v(2)));
    d.put(layout().primary_offset(), &p[..(2 << 20).min(p.len())]);
    let b = boot(&mut d);
    assert_eq!(rejected_class(&b.record.primary), FailureClass::NotRead);
    assert!(
        b.console.contains("0x200000 are available"),
        "{}",
        b.console
    );
}

#[test]
fn the_timings_split_reading_hashing_and_signatures() {
    let mut d = disk(Some(&v(1)), None);
    let b = boot(&mut d);
    let t = b.timings;
    assert!(t.read_ticks > 0 && t.auth_ticks > 0 && t.hash_ticks > 0);
    assert!(t.hash_ticks <= t.auth_ticks);
    assert!(t.hash_bytes > 24 * 1024, "{t:?}");
    assert_eq!(t.signature_ticks(), t.auth_ticks - t.hash_ticks);
}

#[test]
fn the_record_round_trips_through_the_cell() {
    let mut p = v(1);
    let at = payload_offset(&p);
    p[at] ^= 4;
    let mut d = disk(Some(&p), Some(&v(2)));
    let b = boot(&mut d);
    let bytes = b.record.encode();
    assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()), 2);
    assert_eq!(decode(&bytes).unwrap().record.unwrap(), b.record);
}

#[test]
fn a_copy_whose_header_an_update_zeroed_is_not_booted_even_with_an_authentic_fit() {
    // ubootctl zeroes a copy's IVT before rewriting it and writes it last: a cut between the
    // two leaves an authentic FIT (old or new) behind a zero header. The ROM would not start
    // that copy, so the shim must not boot it either.
    let mut p = v(1);
    p[..0x20].fill(0);
    let mut d = disk(Some(&p), Some(&v(2)));
    let b = boot(&mut d);
    assert_eq!(rejected_class(&b.record.primary), FailureClass::Ivt);
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert!(
        b.console
            .contains("no boot image header at the copy's start"),
        "{}",
        b.console
    );
    // Rejected from its first sector: the FIT was never read.
    assert!(!d.reads.iter().any(|r| r.0 == layout().primary_fit_offset()));
}
