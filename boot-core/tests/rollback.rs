//! Anti-rollback in the boot flow (design.md §5.3): a copy whose authentic FIT carries an epoch
//! below the fuse minimum is not booted; the shim falls back and the cell says why; the check
//! runs only on authenticated bytes.

mod common;

use boot_core::cell::{CopyReport, FailureClass, decode};
use boot_core::examine::Part;
use boot_core::policy::{Reason, Slot};
use boot_core::rollback::RollbackFuses;
use common::*;
use imx_hab::hab::Fuses;
use imx_hab::image::SignedFit;
use imx_hab::sit::build_sector;

const DISK: usize = 8 << 20;

fn disk(primary: &[u8], secondary: &[u8]) -> MemDisk {
    let l = BOARD.media;
    let mut d = MemDisk::new(DISK);
    d.put(l.sit_offset(), &build_sector(l.standard_first_sector));
    d.put(l.primary_offset(), primary);
    d.put(
        l.secondary_offset(l.standard_first_sector).unwrap(),
        secondary,
    );
    d
}

/// A signed copy of version `version` at `epoch` (`None`: no `rollback-index`, epoch 0).
fn copy(version: u8, epoch: Option<u32>) -> Vec<u8> {
    flash_bin(&signed(&standard_fit_epoch(version, epoch), LOAD, pki()))
}

/// The minimum `m`: its lowest `m` bits burned.
fn minimum(m: u32) -> RollbackFuses {
    RollbackFuses(if m == 64 { u64::MAX } else { (1u64 << m) - 1 })
}

/// Offset in `tree` (a FIT) of the `rollback-index` property's FDT_PROP token, whose value
/// (one cell) is at +12.
fn rollback_prop(tree: &[u8]) -> usize {
    let word = |at: usize| u32::from_be_bytes(tree[at..at + 4].try_into().unwrap()) as usize;
    let (dt_struct, dt_strings) = (word(8), word(12));
    let name_at = tree
        .windows(15)
        .position(|w| w == b"rollback-index\0")
        .expect("the property name is in the strings block");
    let mut prop = Vec::new();
    prop.extend_from_slice(&3u32.to_be_bytes()); // FDT_PROP
    prop.extend_from_slice(&4u32.to_be_bytes()); // len
    prop.extend_from_slice(&((name_at - dt_strings) as u32).to_be_bytes());
    tree[dt_struct..]
        .windows(12)
        .position(|w| w == prop.as_slice())
        .expect("the rollback-index property")
        + dt_struct
}

fn rejected(r: &CopyReport) -> (FailureClass, Option<Part>) {
    match r {
        CopyReport::Rejected { class, part, .. } => (*class, *part),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[test]
fn an_epoch_1_primary_under_minimum_2_falls_back_to_the_epoch_2_secondary() {
    let mut d = disk(&copy(1, Some(1)), &copy(2, Some(2)));
    let b = boot_rules(&mut d, fuses(), minimum(2));
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(b.record.reason, Some(Reason::PrimaryFailed));
    assert_eq!(
        rejected(&b.record.primary),
        (FailureClass::Rollback, Some(Part::Fit))
    );
    assert!(matches!(b.record.secondary, CopyReport::Authentic { .. }));
    assert_eq!(b.record.rollback_minimum, Some(2));
    assert!(
        b.console
            .contains("security epoch 1 is below the minimum 2"),
        "{}",
        b.console
    );
    // The cell carries the class and the minimum, and decodes to the same record.
    let cell = decode(&b.record.encode()).unwrap();
    assert_eq!(cell.record, Ok(b.record));
}

#[test]
fn equal_or_higher_epochs_boot_and_no_index_is_epoch_0() {
    for (epoch, min, boots) in [
        (Some(2), 2, true),
        (Some(3), 2, true),
        (None, 0, true),
        (None, 1, false),
        (Some(0), 1, false),
        (Some(64), 64, true),
    ] {
        let mut d = disk(&copy(1, epoch), &copy(2, epoch));
        let b = boot_rules(&mut d, fuses(), minimum(min));
        assert_eq!(
            b.decision.slot.is_some(),
            boots,
            "epoch {epoch:?} minimum {min}"
        );
        if !boots {
            assert_eq!(b.record.reason, Some(Reason::BothFailed));
            assert_eq!(rejected(&b.record.secondary).0, FailureClass::Rollback);
        }
    }
}

/// An epoch the 64 fuse bits cannot enforce is malformed (a commit to it would burn every bit
/// for good): structure, whatever the minimum.
#[test]
fn an_epoch_above_64_is_a_structure_failure() {
    for epoch in [65, u32::MAX] {
        let mut d = disk(&copy(1, Some(epoch)), &copy(2, Some(2)));
        let b = boot_rules(&mut d, fuses(), minimum(0));
        assert_eq!(b.decision.slot, Some(Slot::Secondary), "epoch {epoch}");
        assert_eq!(
            rejected(&b.record.primary),
            (FailureClass::Structure, Some(Part::Fit))
        );
        assert!(b.console.contains("rollback-index"), "{}", b.console);
    }
}

#[test]
fn both_below_the_minimum_is_nothing_bootable() {
    let mut d = disk(&copy(1, Some(1)), &copy(2, Some(1)));
    let b = boot_rules(&mut d, fuses(), minimum(2));
    assert_eq!(b.decision.slot, None);
    assert_eq!(b.record.reason, Some(Reason::BothFailed));
    assert_eq!(rejected(&b.record.primary).0, FailureClass::Rollback);
    assert_eq!(rejected(&b.record.secondary).0, FailureClass::Rollback);
    assert_eq!(b.record.encode()[..4], [0, 0, 0, 0]);
}

#[test]
fn the_epoch_is_judged_only_after_authentication() {
    // A forged high epoch: the FIT's bytes changed after signing. The verdict is the
    // signature, never the epoch.
    let mut p = copy(1, Some(1));
    let fit_off = BOARD.media.fit_offset as usize;
    let fit = SignedFit::parse(&p[fit_off..]).unwrap();
    let at = fit_off + rollback_prop(&p[fit_off..fit_off + fit.fit.totalsize()]);
    p[at + 12..at + 16].copy_from_slice(&9u32.to_be_bytes());
    let mut d = disk(&p, &copy(2, Some(2)));
    let b = boot_rules(&mut d, fuses(), minimum(2));
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(rejected(&b.record.primary).0, FailureClass::ImageSignature);
}

#[test]
fn a_malformed_rollback_index_is_a_structure_failure() {
    // Two cells: not the one-cell u32 the property is; the FIT is signed that way, so the
    // signature holds and the structure check refuses it.
    let mut payload = Img::new("payload", 4096, 0x4020_0000).entry(0x4020_0000);
    payload.data[0] = 1;
    let tree = test_images::fit_with_epoch(&[payload], Some("payload"), &[], Some(1));
    let fit = imx_hab::fit::Fit::parse(&tree).unwrap();
    assert_eq!(fit.default_config().unwrap().rollback_index, Some(1));
    // Length 2: a value that is not one cell (the next token stays aligned: lengths round up
    // to 4).
    let mut bad = tree.clone();
    let p = rollback_prop(&bad);
    bad[p + 4..p + 8].copy_from_slice(&2u32.to_be_bytes());
    let err = imx_hab::fit::Fit::parse(&bad).unwrap_err();
    assert_eq!(err.field, "rollback-index", "{err}");
    // Unsigned on an open part: the epoch still counts (the part's owner chose open).
    let unsigned = test_images::flash_bin(
        &test_images::spl_image(0x0090_FFC0, &filler(0x4000, 7)).unwrap(),
        BOARD.media.fit_offset,
        &tree,
    );
    let mut d = disk(&unsigned, &copy(2, Some(2)));
    let open = Fuses::open_with(pki().srk_hash().unwrap());
    let b = boot_rules(&mut d, open, minimum(2));
    assert_eq!(b.decision.slot, Some(Slot::Secondary));
    assert_eq!(rejected(&b.record.primary).0, FailureClass::Rollback);
}
