//! The AN12900 update rule as planned and executed on an 8 MiB in-memory medium (design.md §7,
//! issue 5): plans for running 1 and 2 with and without a correct secondary, missing or wrong
//! SIT, already installed, sync, every refusal (device byte-identical afterwards), the
//! executor's progress events and its read-back check.

mod medium;

use std::io;

use boot_core::cell::FailureClass;
use boot_core::examine::Fault;
use boot_core::policy::{Decision, Reason, Slot};
use imx_hab::sit::build_sector;
use medium::{Layout, board, copy_at, fuses, holds, image, medium, medium_sized, tampered};
use ubootctl::blockdev::{BlockDevice, MemDevice};
use ubootctl::exec::{self, Event, ExecErrorKind, ExecOptions, NoProgress, RunError, execute};
use ubootctl::media::{MediaState, predict, standard_secondary_offset};
use ubootctl::plan::{Action, NewImage, Part, Plan, Refusal, Region, plan_sync, plan_update};

/// 64 KiB chunks (the tool's default is 1 MiB): the tests below count chunks and name the
/// chunk a failure lands in.
const CHUNK_64K: ExecOptions = ExecOptions {
    chunk_size: 64 * 1024,
};

const PRIMARY: u64 = 0x8400;
const SECONDARY: u64 = 0x20_8400;
const SIT: u64 = 0x8200;

fn new_image(v: u8) -> NewImage {
    NewImage::check(image(v).to_vec(), board(), &fuses()).expect("test image is authentic")
}

fn state(dev: &MemDevice) -> MediaState {
    MediaState::read(dev, board(), &fuses()).unwrap()
}

fn plan(dev: &MemDevice, v: u8, running: Option<Slot>) -> Result<Plan, Refusal> {
    plan_update(&state(dev), &new_image(v), running, board())
}

fn run(dev: &mut MemDevice, p: &Plan) {
    execute(dev, p, &ExecOptions::default(), &mut NoProgress).unwrap();
}

/// The (region, part) sequence of the plan's writes.
fn writes(p: &Plan) -> Vec<(Region, Part)> {
    p.steps
        .iter()
        .filter_map(|s| match s.action {
            Action::Write { region, part, .. } => Some((region, part)),
            _ => None,
        })
        .collect()
}

fn copy_sequence(r: Region) -> Vec<(Region, Part)> {
    vec![
        (r, Part::Invalidate),
        (r, Part::Body),
        (r, Part::HeaderRest),
        (r, Part::Commit),
    ]
}

/// After an update to `v`: the primary holds it, the SIT is valid and the secondary through it
/// is authentic, the next boot takes the primary.
fn assert_installed(dev: &MemDevice, v: u8) {
    assert!(holds(dev, PRIMARY, image(v)), "primary holds version {v}");
    let s = state(dev);
    assert!(
        s.fallback_ok(),
        "secondary through a valid SIT is authentic"
    );
    assert_eq!(
        predict(dev, board(), &fuses()),
        Decision {
            slot: Some(Slot::Primary),
            reason: Reason::PrimaryOk
        }
    );
}

#[test]
fn running_1_without_secondary_or_sit_copies_then_writes_the_sit_then_the_primary() {
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: None,
        sit: false,
    });
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    assert_eq!(
        p.regions_written(),
        [Region::Secondary, Region::Sit, Region::Primary]
    );
    let mut expected = copy_sequence(Region::Secondary);
    expected.push((Region::Sit, Part::Table));
    expected.extend(copy_sequence(Region::Primary));
    assert_eq!(writes(&p), expected);
    // Each copy: invalidate, flush, body, first block, flush, commit, flush, read back.
    let kinds: Vec<&str> = p.steps[..8]
        .iter()
        .map(|s| match s.action {
            Action::Write { .. } => "w",
            Action::Flush => "f",
            Action::Verify { .. } => "v",
            Action::Switch { .. } => "s",
        })
        .collect();
    assert_eq!(kinds, ["w", "f", "w", "w", "f", "w", "f", "v"]);
    // The SIT is written only after the secondary has been read back.
    let sit_at = p
        .steps
        .iter()
        .position(|s| {
            matches!(
                s.action,
                Action::Write {
                    region: Region::Sit,
                    ..
                }
            )
        })
        .unwrap();
    assert!(matches!(
        p.steps[sit_at - 1].action,
        Action::Verify {
            region: Region::Secondary,
            ..
        }
    ));
    run(&mut dev, &p);
    assert_installed(&dev, 2);
    assert!(holds(
        &dev,
        SECONDARY,
        &image(1)[..copy_at(&dev, SECONDARY).image().unwrap().len()]
    ));
    assert!(holds(&dev, SIT, &build_sector(0x1000)));
}

#[test]
fn running_1_with_a_correct_secondary_writes_the_primary_only() {
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    let before_secondary = dev.bytes()[SECONDARY as usize..].to_vec();
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    assert_eq!(writes(&p), copy_sequence(Region::Primary));
    assert!(
        p.notes
            .iter()
            .any(|n| n.contains("already equals the primary")),
        "{p}"
    );
    assert!(p.notes.iter().any(|n| n.contains("SIT is valid")), "{p}");
    run(&mut dev, &p);
    assert_installed(&dev, 2);
    assert_eq!(dev.bytes()[SECONDARY as usize..], before_secondary[..]);
}

#[test]
fn running_1_with_a_stale_secondary_replaces_it_with_the_running_primary() {
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: Some(image(0)),
        sit: true,
    });
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    assert_eq!(p.regions_written(), [Region::Secondary, Region::Primary]);
    run(&mut dev, &p);
    assert_installed(&dev, 2);
    assert_eq!(
        copy_at(&dev, SECONDARY).sha256(),
        copy_at(
            &medium(Layout {
                primary: Some(image(1)),
                secondary: None,
                sit: false,
            }),
            PRIMARY
        )
        .sha256()
    );
}

#[test]
fn running_1_with_a_correct_secondary_and_no_sit_writes_the_sit_then_the_primary() {
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: false,
    });
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    assert_eq!(p.regions_written(), [Region::Sit, Region::Primary]);
    run(&mut dev, &p);
    assert_installed(&dev, 2);
}

#[test]
fn a_wrong_sit_is_rewritten_after_the_secondary_is_complete() {
    for bad in [
        {
            let mut s = build_sector(0x1000);
            s[8] ^= 1; // tag
            s
        },
        build_sector(0x800),  // secondary would overlap a 2 MiB primary
        build_sector(0x4000), // secondary beyond the 8 MiB device
    ] {
        let mut dev = medium(Layout {
            primary: Some(image(1)),
            secondary: Some(image(1)),
            sit: false,
        });
        dev.write_at(SIT, &bad).unwrap();
        let s = state(&dev);
        assert!(s.sit.judgement.is_err());
        let p = plan_update(&s, &new_image(2), Some(Slot::Primary), board()).unwrap();
        assert_eq!(p.regions_written(), [Region::Sit, Region::Primary], "{p}");
        run(&mut dev, &p);
        assert_installed(&dev, 2);
        assert!(holds(&dev, SIT, &build_sector(0x1000)));
    }
}

#[test]
fn running_2_writes_the_primary_only_and_never_the_secondary() {
    for primary in [tampered(1), vec![0xFF; 4096]] {
        let mut dev = medium(Layout {
            primary: Some(&primary),
            secondary: Some(image(1)),
            sit: true,
        });
        assert_eq!(predict(&dev, board(), &fuses()).slot, Some(Slot::Secondary));
        let untouched = dev.bytes()[..PRIMARY as usize].to_vec();
        let secondary = dev.bytes()[SECONDARY as usize..].to_vec();
        let p = plan(&dev, 2, Some(Slot::Secondary)).unwrap();
        assert_eq!(writes(&p), copy_sequence(Region::Primary));
        assert!(
            p.notes
                .iter()
                .any(|n| n.contains("running from the secondary"))
        );
        run(&mut dev, &p);
        assert_installed(&dev, 2);
        assert_eq!(dev.bytes()[SECONDARY as usize..], secondary[..]);
        assert_eq!(
            dev.bytes()[..PRIMARY as usize],
            untouched[..],
            "SIT untouched"
        );
    }
}

#[test]
fn running_1_with_an_interrupted_primary_writes_the_primary_only() {
    // An update cut during the primary write, re-run without a reboot: the running slot is
    // still 1, but the primary on the medium is not authentic; the secondary is the fallback.
    let mut primary = image(1).to_vec();
    primary[..32].fill(0);
    let mut dev = medium(Layout {
        primary: Some(&primary),
        secondary: Some(image(1)),
        sit: true,
    });
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    assert_eq!(p.regions_written(), [Region::Primary]);
    assert!(p.notes.iter().any(|n| n.contains("not authentic")));
    run(&mut dev, &p);
    assert_installed(&dev, 2);
}

#[test]
fn an_installed_image_is_a_noop_that_writes_nothing() {
    for running in [Slot::Primary, Slot::Secondary] {
        let mut dev = medium(Layout {
            primary: Some(image(2)),
            secondary: Some(image(1)),
            sit: true,
        });
        let before = dev.clone();
        let out = exec::update(
            &mut dev,
            board(),
            &fuses(),
            image(2).to_vec(),
            Some(running),
            &ExecOptions::default(),
            &mut NoProgress,
        )
        .unwrap();
        assert!(out.plan.is_noop(), "{}", out.plan);
        assert!(out.plan.notes[0].starts_with("already installed"));
        assert_eq!(out.summary.write_calls, 0);
        assert!(dev == before);
    }
}

#[test]
fn an_installed_primary_without_a_fallback_gets_one_but_is_not_rewritten() {
    let mut dev = medium(Layout {
        primary: Some(image(2)),
        secondary: None,
        sit: false,
    });
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    assert_eq!(p.regions_written(), [Region::Secondary, Region::Sit]);
    assert!(p.notes.iter().any(|n| n.contains("not rewritten")));
    run(&mut dev, &p);
    assert_installed(&dev, 2);
}

#[test]
fn sync_makes_the_secondary_a_copy_of_the_primary_and_the_sit_valid() {
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: Some(&tampered(0)),
        sit: false,
    });
    let out = exec::sync(
        &mut dev,
        board(),
        &fuses(),
        Some(Slot::Primary),
        &ExecOptions::default(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(out.plan.regions_written(), [Region::Secondary, Region::Sit]);
    assert_installed(&dev, 1);
    let again = plan_sync(&state(&dev), Some(Slot::Primary), board()).unwrap();
    assert!(again.is_noop(), "{again}");
}

#[test]
fn a_4096_byte_block_device_writes_whole_blocks() {
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: None,
        sit: false,
    })
    .with_block_size(4096);
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    for s in &p.steps {
        if let Action::Write { part, data, .. } = &s.action
            && *part != Part::Table
        {
            assert_eq!(data.len() % 4096, 0, "{}", s.summary());
        }
    }
    run(&mut dev, &p);
    assert_installed(&dev, 2);
}

#[test]
fn the_dry_run_text_names_offsets_order_and_reasons() {
    let dev = medium(Layout {
        primary: Some(image(1)),
        secondary: None,
        sit: false,
    });
    let text = plan(&dev, 2, Some(Slot::Primary)).unwrap().to_string();
    assert!(
        text.starts_with("update plan, running slot 1 (primary):"),
        "{text}"
    );
    for needle in [
        " 1. write secondary invalidate at 0x208400+0x200: invalidate the secondary",
        "write secondary body at 0x208600+",
        "write SIT table at 0x8200+0x200: the SIT is not valid",
        "read back secondary at 0x208400+",
        "write primary commit (IVT) at 0x8400+0x200: commit",
    ] {
        assert!(text.contains(needle), "{needle:?} not in\n{text}");
    }
}

#[test]
fn progress_events_cover_every_step_and_byte() {
    let mut dev = medium(Layout {
        primary: Some(image(1)),
        secondary: None,
        sit: false,
    });
    let p = plan(&dev, 2, Some(Slot::Primary)).unwrap();
    let mut steps = 0;
    let mut verified = Vec::new();
    let mut total = 0;
    let mut last_done = std::collections::HashMap::new();
    let mut done = None;
    let mut events = |e: &Event<'_>| match e {
        Event::Start { total_bytes, .. } => total = *total_bytes,
        Event::Step { .. } => steps += 1,
        Event::Bytes { index, done, len } => {
            assert!(done <= len);
            last_done.insert(*index, *done);
        }
        Event::Verified { region, len, .. } => verified.push((*region, *len)),
        Event::Done(s) => done = Some(*s),
    };
    let summary = execute(&mut dev, &p, &CHUNK_64K, &mut events).unwrap();
    assert_eq!(steps, p.steps.len());
    assert_eq!(
        verified.iter().map(|v| v.0).collect::<Vec<_>>(),
        [Region::Secondary, Region::Sit, Region::Primary]
    );
    assert_eq!(done, Some(summary));
    assert_eq!(summary.bytes_written, p.bytes_written());
    assert_eq!(total, summary.bytes_written + summary.bytes_verified);
    assert_eq!(last_done.values().sum::<u64>(), total);
    // 64 KiB chunks: the body of a ~0xAE400-byte copy takes 11 writes.
    assert!(
        summary.write_calls > 20 && summary.write_calls < 40,
        "{summary:?}"
    );
}

/// A device whose writes touching one byte are silently lost (`fail: false`; the read-back
/// must catch it) or fail (`fail: true`).
struct LosesWrites {
    inner: MemDevice,
    lost: u64,
    fail: bool,
}

impl BlockDevice for LosesWrites {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_block_size(&self) -> u32 {
        512
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        if (offset..offset + data.len() as u64).contains(&self.lost) {
            return match self.fail {
                false => Ok(()),
                true => Err(io::Error::other("medium error")),
            };
        }
        self.inner.write_at(offset, data)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_read_back_mismatch_stops_the_update_naming_the_step_and_offset() {
    let mut dev = LosesWrites {
        inner: medium(Layout {
            primary: Some(image(1)),
            secondary: Some(image(0)),
            sit: true,
        }),
        lost: SECONDARY + 0x1_2345,
        fail: false,
    };
    let p = plan_update(
        &MediaState::read(&dev, board(), &fuses()).unwrap(),
        &new_image(2),
        Some(Slot::Primary),
        board(),
    )
    .unwrap();
    let e = execute(&mut dev, &p, &CHUNK_64K, &mut NoProgress).unwrap_err();
    assert!(matches!(e.kind, ExecErrorKind::Mismatch { .. }));
    assert_eq!(e.step, 7, "{e}");
    assert!(
        e.summary.starts_with("read back secondary at 0x208400"),
        "{e}"
    );
    // The lost chunk is the 64 KiB body chunk holding the byte; its first byte that differs
    // from what was written is where the error points.
    // The lost write is the second 64 KiB body chunk (the body starts one block in); the SPL
    // patterns of versions 0 and 1 differ at every byte, so the first difference is its start.
    assert_eq!(e.offset, Some(SECONDARY + 0x200 + 0x1_0000), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("step 8 (read back secondary"), "{msg}");
    assert!(
        msg.contains("first difference at 0x218600; SHA-256 "),
        "{msg}"
    );
    // The primary was never touched: the device still boots the running image.
    assert!(holds(&dev.inner, PRIMARY, image(1)));
}

#[test]
fn predict_agrees_with_the_state_on_every_combination() {
    let t = tampered(1);
    let copies: [Option<&[u8]>; 3] = [None, Some(image(1)), Some(&t)];
    for primary in copies {
        for secondary in copies {
            for sit in [false, true] {
                let dev = medium(Layout {
                    primary,
                    secondary,
                    sit,
                });
                let d = predict(&dev, board(), &fuses());
                assert_eq!(d, state(&dev).decision());
                let expected = if primary == Some(image(1)) {
                    Some(Slot::Primary)
                } else if sit && secondary == Some(image(1)) {
                    Some(Slot::Secondary)
                } else {
                    None
                };
                assert_eq!(
                    d.slot,
                    expected,
                    "{:?} {:?} {sit}",
                    primary.map(<[u8]>::len),
                    secondary.map(<[u8]>::len)
                );
            }
        }
    }
}

#[test]
fn copy_verdicts_name_why() {
    let fault = |bytes: &[u8]| {
        let dev = medium(Layout {
            primary: Some(bytes),
            secondary: None,
            sit: false,
        });
        copy_at(&dev, PRIMARY).judgement.unwrap_err()
    };
    assert_eq!(fault(&tampered(1)).class(), FailureClass::ImageSignature);
    assert_eq!(fault(&[0; 64]).class(), FailureClass::Ivt);
    let unsigned = medium::flash_bin_with_fit(1, &medium::fit(1));
    assert_eq!(fault(&unsigned).class(), FailureClass::NotSigned);
    let low = medium::flash_bin_with_fit(1, &medium::signed_fit_with(1, 0x4000_0000, 0));
    assert!(matches!(
        fault(&low).fault,
        Fault::LoadAddress {
            load: 0x4000_0000,
            ..
        }
    ));
    let foreign = medium::flash_bin_with_fit(1, &medium::signed_fit_with(1, medium::LOAD, 1));
    assert_eq!(fault(&foreign).class(), FailureClass::SrkHash);
}

/// Runs the whole update pipeline and asserts it is refused with `want` and that the device is
/// byte-identical afterwards.
fn assert_refused(
    mut dev: MemDevice,
    img: Vec<u8>,
    running: Option<Slot>,
    want: impl Fn(&Refusal) -> bool,
) {
    let before = dev.clone();
    let e = exec::update(
        &mut dev,
        board(),
        &fuses(),
        img,
        running,
        &ExecOptions::default(),
        &mut NoProgress,
    )
    .unwrap_err();
    let RunError::Refused(r) = &e else {
        panic!("not a refusal: {e}")
    };
    assert!(want(r), "unexpected refusal: {r}");
    assert!(!r.to_string().is_empty());
    assert!(dev == before, "device changed by a refused update ({r})");
}

fn healthy() -> MemDevice {
    medium(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    })
}

#[test]
fn refusals_leave_the_device_byte_identical() {
    let p = Some(Slot::Primary);
    assert_refused(healthy(), image(2).to_vec(), None, |r| {
        *r == Refusal::UnknownRunningSlot
    });
    let mut big = image(2).to_vec();
    big.resize((2 << 20) + 1, 0);
    assert_refused(healthy(), big, p, |r| {
        matches!(r, Refusal::ImageTooLarge { max: 0x20_0000, .. })
    });
    let fit_only = medium::signed_fit_with(2, medium::LOAD, 0);
    assert_refused(healthy(), fit_only, p, |r| {
        *r == Refusal::NotAFlashBin { kind: "signed FIT" }
    });
    assert_refused(
        healthy(),
        medium::flash_bin_with_fit(2, &medium::fit(2)),
        p,
        |r| matches!(r, Refusal::ImageRejected(f) if f.class() == FailureClass::NotSigned),
    );
    assert_refused(
        healthy(),
        tampered(2),
        p,
        |r| matches!(r, Refusal::ImageRejected(f) if f.class() == FailureClass::ImageSignature),
    );
    let foreign = medium::flash_bin_with_fit(2, &medium::signed_fit_with(2, medium::LOAD, 1));
    assert_refused(
        healthy(),
        foreign,
        p,
        |r| matches!(r, Refusal::ImageRejected(f) if f.class() == FailureClass::SrkHash),
    );
    let outside = medium::flash_bin_with_fit(2, &medium::signed_fit_with(2, 0x4600_0000, 0));
    assert_refused(
        healthy(),
        outside,
        p,
        |r| matches!(r, Refusal::ImageRejected(f) if matches!(f.fault, Fault::LoadAddress { .. })),
    );
    // Authentic, but its ATF would be copied into the FIT window: the shim would refuse to
    // hand off to it, so the update refuses to install it.
    let mut fit = medium::fit(2);
    let atf_load = 0x0097_0000u32.to_be_bytes();
    let places: Vec<usize> = fit
        .windows(4)
        .enumerate()
        .filter(|(_, w)| *w == atf_load)
        .map(|(i, _)| i)
        .collect();
    assert_eq!(places.len(), 2, "the fixture's atf load and entry");
    for i in places {
        fit[i..i + 4].copy_from_slice(&0x4400_1000u32.to_be_bytes());
    }
    let signed = imx_hab::sign::sign_fit(
        &fit,
        medium::LOAD,
        medium::pki(0),
        &imx_hab::sign::SignOptions::default(),
    )
    .unwrap();
    assert_refused(
        healthy(),
        medium::flash_bin_with_fit(2, &signed),
        p,
        |r| matches!(r, Refusal::ImageRejected(f) if f.to_string().contains("load ranges")),
    );
    assert_refused(
        healthy(),
        b"not an image at all".to_vec(),
        p,
        |r| matches!(r, Refusal::ImageRejected(f) if matches!(f.fault, Fault::Parse(_))),
    );
    let small = medium_sized(
        Layout {
            primary: Some(image(1)),
            secondary: None,
            sit: false,
        },
        4 << 20,
    );
    assert_refused(small, image(2).to_vec(), p, |r| {
        *r == Refusal::DeviceTooSmall {
            size: 4 << 20,
            needed: standard_secondary_offset(&board().media) + (2 << 20),
        }
    });
    // Running 2, but the secondary is not a fallback (damaged, or no SIT) while the primary
    // is authentic: writing the primary would lose the only bootable copy.
    for (secondary, sit) in [(tampered(1), true), (image(1).to_vec(), false)] {
        let dev = medium(Layout {
            primary: Some(image(0)),
            secondary: Some(&secondary),
            sit,
        });
        assert_refused(dev, image(2).to_vec(), Some(Slot::Secondary), |r| {
            *r == Refusal::SecondaryNotAuthentic
        });
    }
}

/// With nothing bootable on the medium, writing the primary cannot make things worse: it is the
/// way out that `status` advises, whichever slot is running.
#[test]
fn nothing_bootable_writes_the_primary_only() {
    for running in [Slot::Primary, Slot::Secondary] {
        let mut dev = medium(Layout {
            primary: Some(&tampered(1)),
            secondary: Some(&tampered(0)),
            sit: true,
        });
        let p = plan(&dev, 2, Some(running)).unwrap();
        assert_eq!(p.regions_written(), [Region::Primary], "{p}");
        run(&mut dev, &p);
        assert_eq!(predict(&dev, board(), &fuses()).slot, Some(Slot::Primary));
    }
}

#[test]
fn sync_refusals_leave_the_device_byte_identical() {
    let cases: [(MemDevice, Option<Slot>, Refusal); 3] = [
        (healthy(), None, Refusal::UnknownRunningSlot),
        (healthy(), Some(Slot::Secondary), Refusal::SyncFromSecondary),
        (
            medium(Layout {
                primary: Some(&tampered(1)),
                secondary: Some(image(1)),
                sit: true,
            }),
            Some(Slot::Primary),
            Refusal::PrimaryNotAuthentic,
        ),
    ];
    for (mut dev, running, want) in cases {
        let before = dev.clone();
        let e = exec::sync(
            &mut dev,
            board(),
            &fuses(),
            running,
            &ExecOptions::default(),
            &mut NoProgress,
        )
        .unwrap_err();
        assert!(matches!(&e, RunError::Refused(r) if *r == want), "{e}");
        assert!(dev == before);
    }
}

#[test]
fn a_failed_write_stops_the_update_naming_the_step_and_offset() {
    let mut dev = LosesWrites {
        inner: medium(Layout {
            primary: Some(image(1)),
            secondary: Some(image(1)),
            sit: true,
        }),
        lost: PRIMARY + 0x3_0000,
        fail: true,
    };
    let e = exec::update(
        &mut dev,
        board(),
        &fuses(),
        image(2).to_vec(),
        Some(Slot::Primary),
        &CHUNK_64K,
        &mut NoProgress,
    )
    .unwrap_err();
    let RunError::Exec(e) = e else { panic!("{e}") };
    assert!(matches!(e.kind, ExecErrorKind::Io(_)));
    assert_eq!(e.step, 2, "{e}");
    assert_eq!(e.offset, Some(PRIMARY + 0x200 + 0x2_0000));
    assert_eq!(
        e.to_string(),
        "step 3 (write primary body at 0x8600+0xae200) failed at 0x28600: medium error"
    );
    // The primary is invalid, the secondary is the fallback.
    assert_eq!(
        predict(&dev.inner, board(), &fuses()).slot,
        Some(Slot::Secondary)
    );
}

/// Records where [`exec::Progress::stop`] is asked, and stops at the `stop_at`-th question.
struct StopProbe {
    asked_before: Vec<usize>,
    next_step: usize,
    stop_at: Option<usize>,
}

impl exec::Progress for StopProbe {
    fn event(&mut self, event: &Event<'_>) {
        if let Event::Step { index, .. } = event {
            self.next_step = index + 1;
        }
    }

    fn stop(&mut self) -> Option<String> {
        self.asked_before.push(self.next_step);
        (self.stop_at == Some(self.asked_before.len() - 1)).then(|| "asked to".into())
    }
}

#[test]
fn stop_requests_are_honoured_only_between_copies() {
    let start = medium(Layout {
        primary: Some(image(1)),
        secondary: Some(image(0)),
        sit: false,
    });
    let state = MediaState::read(&start, board(), &fuses()).unwrap();
    let new = NewImage::check(image(2).to_vec(), board(), &fuses()).unwrap();
    let plan = plan_update(&state, &new, Some(Slot::Primary), board()).unwrap();
    // Never stopping: asked before the first step and after each read-back but the last.
    let mut probe = StopProbe {
        asked_before: Vec::new(),
        next_step: 0,
        stop_at: None,
    };
    let mut dev = start.clone();
    execute(&mut dev, &plan, &ExecOptions::default(), &mut probe).unwrap();
    let starts: Vec<usize> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| {
            matches!(
                s.action,
                Action::Write {
                    part: Part::Invalidate | Part::Table,
                    ..
                }
            )
        })
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 3, "secondary, SIT, primary");
    assert_eq!(probe.asked_before, starts);
    // Stopping at each of them: the step named is the one not started, the medium boots, and
    // each copy written so far is complete.
    for (n, &at) in starts.iter().enumerate() {
        let mut probe = StopProbe {
            asked_before: Vec::new(),
            next_step: 0,
            stop_at: Some(n),
        };
        let mut dev = start.clone();
        let e = execute(&mut dev, &plan, &ExecOptions::default(), &mut probe).unwrap_err();
        assert_eq!(e.step, at);
        assert!(matches!(e.kind, ExecErrorKind::Stopped(_)), "{e}");
        assert!(e.to_string().contains("not started: asked to"), "{e}");
        assert_eq!(predict(&dev, board(), &fuses()).slot, Some(Slot::Primary));
        assert!(holds(&dev, 0x8400, image(1)), "primary untouched");
        if n >= 1 {
            assert!(holds(&dev, 0x20_8400, image(1)), "secondary complete");
        }
    }
}

/// `predict` runs the ROM's choice and the shim's own boot flow: a primary whose IVT an
/// interrupted update zeroed is not started by the ROM even though its FIT is still authentic;
/// the ROM starts the secondary SPL, whose FIT boots (pairing, design.md §5.1), and `status`'s
/// judgement agrees.
#[test]
fn the_prediction_is_the_shims_flow_and_the_judgement_agrees_with_it() {
    let mut dev = healthy();
    assert_eq!(
        predict(&dev, board(), &fuses()),
        Decision {
            slot: Some(Slot::Primary),
            reason: Reason::PrimaryOk
        }
    );
    dev.write_at(PRIMARY, &[0u8; 0x20]).unwrap();
    let d = predict(&dev, board(), &fuses());
    assert_eq!(
        d,
        Decision {
            slot: Some(Slot::Secondary),
            reason: Reason::RomSecondary
        }
    );
    assert_eq!(state(&dev).decision(), d);
    assert_eq!(state(&dev).rom_start, Some(Slot::Secondary));
    assert!(state(&dev).primary.judgement.is_err());
}
