//! Issue 12 item 2: the image that booted has an identity (the boot record's FIT digest), and
//! the update rule never overwrites the last copy holding it.

mod medium;

use boot_core::policy::Slot;
use medium::{Layout, board, fuses, identity, image, medium};
use ubootctl::blockdev::{BlockDevice, MemDevice};
use ubootctl::exec::{ExecOptions, NoProgress, execute};
use ubootctl::media::MediaState;
use ubootctl::plan::{
    BootedImage, NewImage, Refusal, Region, Running, booted_image, plan_sync, plan_update,
};

fn state(dev: &MemDevice) -> MediaState {
    MediaState::read(dev, board(), &fuses()).unwrap()
}

fn update(dev: &mut MemDevice, v: u8, running: Running) -> Result<Vec<Region>, Refusal> {
    let new = NewImage::check(image(v).to_vec(), board(), &fuses()).unwrap();
    let p = plan_update(&state(dev), &new, running, board())?;
    execute(dev, &p, &ExecOptions::default(), &mut NoProgress).unwrap();
    Ok(p.regions_written())
}

fn holds(dev: &MemDevice, offset: u64, v: u8) -> bool {
    let img = image(v);
    let mut b = vec![0; img.len()];
    dev.read_at(offset, &mut b).unwrap();
    b == img
}

/// Booted v1 from the primary; both copies v1.
fn booted_v1() -> (MemDevice, Running) {
    let dev = medium(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    let running = Running {
        slot: Some(Slot::Primary),
        booted: Some(identity(image(1))),
    };
    (dev, running)
}

#[test]
fn two_updates_without_a_reboot_keep_the_booted_image_in_the_secondary() {
    let (mut dev, running) = booted_v1();
    assert_eq!(update(&mut dev, 2, running).unwrap(), [Region::Primary]);
    assert_eq!(
        booted_image(&state(&dev), running.booted.as_ref()),
        BootedImage::SecondaryOnly
    );
    // Second update, no reboot: the secondary (v1, the running image) is not touched.
    assert_eq!(update(&mut dev, 0, running).unwrap(), [Region::Primary]);
    assert!(holds(&dev, 0x8400, 0) && holds(&dev, 0x20_8400, 1));
    // Without the identity (slot rule alone) the second update would have synced the
    // never-booted v2 over v1: the identity is what prevents it.
    let (mut dev2, _) = booted_v1();
    update(&mut dev2, 2, Some(Slot::Primary).into()).unwrap();
    let regions = update(&mut dev2, 0, Some(Slot::Primary).into()).unwrap();
    assert_eq!(regions, [Region::Secondary, Region::Primary]);
    assert!(holds(&dev2, 0x20_8400, 2), "the booted v1 is gone");
}

#[test]
fn sync_copies_the_primary_only_when_it_is_the_booted_image() {
    let (mut dev, running) = booted_v1();
    update(&mut dev, 2, running).unwrap();
    assert_eq!(
        plan_sync(&state(&dev), running, board()).unwrap_err(),
        Refusal::PrimaryNotBooted
    );
    // After a reboot into v2 the record names v2: sync now copies it.
    let rebooted = Running {
        slot: Some(Slot::Primary),
        booted: Some(identity(image(2))),
    };
    let p = plan_sync(&state(&dev), rebooted, board()).unwrap();
    assert_eq!(p.regions_written(), [Region::Secondary]);
}

#[test]
fn a_rollback_before_the_reboot_writes_the_primary_only() {
    // Mender-style: install v2 (no reboot), then roll back by installing v1 again.
    let (mut dev, running) = booted_v1();
    update(&mut dev, 2, running).unwrap();
    assert_eq!(update(&mut dev, 1, running).unwrap(), [Region::Primary]);
    assert!(holds(&dev, 0x8400, 1) && holds(&dev, 0x20_8400, 1));
    assert_eq!(
        booted_image(&state(&dev), running.booted.as_ref()),
        BootedImage::Primary {
            also_secondary: true
        }
    );
}

#[test]
fn an_update_when_the_booted_image_is_in_neither_copy_is_refused() {
    // Booted v0, but both copies hold other images (written by another tool since).
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: Some(image(2)),
        sit: true,
    });
    let running = Running {
        slot: Some(Slot::Primary),
        booted: Some(identity(image(0))),
    };
    let before = {
        let mut b = vec![0; dev.size() as usize];
        dev.read_at(0, &mut b).unwrap();
        b
    };
    assert_eq!(update(&mut dev, 2, running), Err(Refusal::BootedImageLost));
    let mut after = vec![0; dev.size() as usize];
    dev.read_at(0, &mut after).unwrap();
    assert!(before == after, "a refusal changes nothing");
    // Writing back the running image itself is allowed, to the primary only.
    assert_eq!(update(&mut dev, 0, running).unwrap(), [Region::Primary]);
    assert!(holds(&dev, 0x8400, 0) && holds(&dev, 0x20_8400, 2));
}

#[test]
fn a_shim_only_update_is_an_untested_image_too() {
    // Same FIT as the booted v1, another SPL: sync before a reboot must not copy it.
    let other_spl = medium::flash_bin_with_fit(9, &medium::signed_fit_with(1, medium::LOAD, 0));
    let (mut dev, running) = booted_v1();
    let new = NewImage::check(other_spl, board(), &fuses()).unwrap();
    let p = plan_update(&state(&dev), &new, running, board()).unwrap();
    execute(&mut dev, &p, &ExecOptions::default(), &mut NoProgress).unwrap();
    assert_eq!(
        plan_sync(&state(&dev), running, board()).unwrap_err(),
        Refusal::PrimaryNotBooted
    );
}
