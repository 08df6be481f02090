//! The fleet clients' commit step advances the anti-rollback minimum (issue 18: "fleet
//! integrations call it from their commit step"): `ubootctl-fleet commit`, the one place
//! Mender's ArtifactCommit and the SWUpdate/RAUC `ubootctl-commit.service` run, syncs the
//! fallback and then runs `ubootctl commit --yes`.

mod fleet;
mod medium;

use boot_core::policy::Reason;
use fleet::{Rig, describe, run};
use medium::epoch_image;

/// Both copies at epoch 1 (minimum 1); then `ubootctl update` to epoch 2 and a reboot into it.
fn updated_to_epoch_2() -> (Rig, Vec<u8>) {
    let e2 = epoch_image(2, 2);
    let rig = Rig::epoch_1_at_minimum_1();
    let new = rig.file("e2.bin", &e2);
    let o = run(rig.command("ubootctl").arg("update").arg(&new));
    assert!(o.status.success(), "update: {}", describe(&o));
    rig.reboot_into_enforcing(Reason::PrimaryOk, &e2, 0b1);
    (rig, e2)
}

#[test]
fn the_commit_step_syncs_then_advances_the_minimum() {
    let (rig, e2) = updated_to_epoch_2();
    let o = run(rig.command("ubootctl-fleet").arg("commit"));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(rig.primary_holds(&e2) && rig.secondary_holds(&e2));
    assert_eq!(rig.rollback_bits(), 0b11, "{}", describe(&o));
    // Again: nothing to sync, nothing to burn.
    let o = run(rig.command("ubootctl-fleet").arg("commit"));
    assert!(o.status.success(), "{}", describe(&o));
    assert_eq!(rig.rollback_bits(), 0b11);
    // An epoch-1 image is now refused by the update the clients run.
    let old = rig.file("e1.bin", &epoch_image(1, 1));
    let o = run(rig.command("ubootctl").arg("update").arg(&old));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
}

#[test]
fn the_commit_step_before_the_reboot_burns_nothing() {
    let (rig, _) = updated_to_epoch_2();
    // The record still names the epoch-1 image: the new one has not booted.
    rig.reboot_into_enforcing(Reason::PrimaryOk, &epoch_image(1, 1), 0b1);
    let before = rig.disk_bytes();
    let o = run(rig.command("ubootctl-fleet").arg("commit"));
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert_eq!(rig.rollback_bits(), 0b1);
    assert_eq!(rig.disk_bytes(), before);
}

#[test]
fn a_refused_rollback_commit_leaves_the_update_committed_and_says_why() {
    let (rig, e2) = updated_to_epoch_2();
    // A boot record from a shim that does not report the minimum (it may ignore the fuses).
    rig.reboot_into(Reason::PrimaryOk, &e2);
    let mut r = medium::boot_record(Reason::PrimaryOk, &e2);
    r.rollback_minimum = None;
    std::fs::write(&rig.mem, medium::mem_image(Some(&r))).unwrap();
    let o = run(rig.command("ubootctl-fleet").arg("commit"));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(rig.secondary_holds(&e2), "the sync happened");
    assert_eq!(rig.rollback_bits(), 0b1, "nothing burned");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the rollback minimum was not advanced"),
        "{}",
        describe(&o)
    );
}

#[test]
fn without_rollback_fuses_in_the_configuration_the_minimum_is_not_managed() {
    let rig = Rig::healthy();
    let o = run(rig.command("ubootctl-fleet").arg("commit"));
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the rollback minimum is not managed"),
        "{}",
        describe(&o)
    );
}
