//! Anti-rollback in `ubootctl` (design.md §5.3): `update` refuses an image below the fuse
//! minimum, `status` shows the epochs and the minimum, and `commit` advances the minimum only
//! when the running image is the new one and both copies hold it; every refusal burns nothing
//! and writes nothing.

mod medium;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use boot_core::policy::{Reason, Slot};
use boot_core::rollback::RollbackFuses;
use medium::{Layout, board, epoch_image, fuse_block, write_layout};
use ubootctl::blockdev::{FileDevice, MemDevice};
use ubootctl::commit::{BootFacts, CommitRefusal, plan_commit};
use ubootctl::media::{MediaState, predict};

struct Setup {
    dir: tempfile::TempDir,
    device: PathBuf,
    fuses: PathBuf,
    mem: PathBuf,
}

impl Setup {
    /// A medium holding `layout`, a fuse block with `rollback` burned, and a cell saying the
    /// board booted `booted` (a flash.bin) from `slot` (`None`: no record).
    fn new(layout: Layout<'_>, rollback: u64, booted: Option<(Slot, &[u8])>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("sd.img");
        std::fs::write(&device, vec![0u8; medium::DEVICE]).unwrap();
        {
            let mut dev = FileDevice::open(&device).unwrap();
            write_layout(&mut dev, layout);
        }
        let fuses = dir.path().join("fuses.bin");
        std::fs::write(&fuses, fuse_block(rollback)).unwrap();
        let record = booted.map(|(slot, image)| {
            let reason = match slot {
                Slot::Primary => Reason::PrimaryOk,
                Slot::Secondary => Reason::PrimaryFailed,
            };
            let mut r = medium::boot_record(reason, image);
            r.rollback_minimum = Some(RollbackFuses(rollback).minimum() as u8);
            r
        });
        let mem = dir.path().join("mem.bin");
        std::fs::write(&mem, medium::mem_image(record.as_ref())).unwrap();
        Setup {
            dir,
            device,
            fuses,
            mem,
        }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn run(&self, cmd: &[&str], extra: &[&str]) -> Output {
        let mut a: Vec<&str> = cmd.to_vec();
        a.extend([
            "--device",
            s(&self.device),
            "--board",
            "qemu-imx8mp",
            "--mem",
            s(&self.mem),
        ]);
        if !extra
            .iter()
            .any(|e| ["--srk-hash", "--ocotp", "--fuses"].contains(e))
        {
            a.extend(["--fuses", s(&self.fuses)]);
        }
        a.extend(extra);
        Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args(&a)
            .output()
            .unwrap()
    }

    fn snapshot(&self) -> (Vec<u8>, Vec<u8>) {
        (
            std::fs::read(&self.device).unwrap(),
            std::fs::read(&self.fuses).unwrap(),
        )
    }

    fn rollback_bits(&self) -> u64 {
        let b = std::fs::read(&self.fuses).unwrap();
        u64::from_le_bytes(b[0x28..0x30].try_into().unwrap())
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Both copies hold `e2` (version 2, epoch 2), booted from the primary; minimum 1.
fn synced_epoch_2() -> (Setup, Vec<u8>) {
    let e2 = epoch_image(2, 2);
    let st = Setup::new(
        Layout {
            primary: Some(&e2),
            secondary: Some(&e2),
            sit: true,
        },
        0b1,
        Some((Slot::Primary, &e2)),
    );
    (st, e2)
}

#[test]
fn update_refuses_an_image_below_the_minimum_and_changes_nothing() {
    let e2 = epoch_image(2, 2);
    let st = Setup::new(
        Layout {
            primary: Some(&e2),
            secondary: Some(&e2),
            sit: true,
        },
        0b11,
        Some((Slot::Primary, &e2)),
    );
    let old = st.file("old.bin", &epoch_image(1, 1));
    let before = st.snapshot();
    for extra in [&[][..], &["--dry-run"], &["--json"]] {
        let o = st.run(&["update", s(&old)], extra);
        assert_eq!(o.status.code(), Some(1), "{extra:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("security epoch 1 is below the minimum 2"),
            "{}",
            text(&o)
        );
        assert_eq!(st.snapshot(), before, "{extra:?}: nothing changed");
    }
    // At the minimum and above: accepted (a dry run shows the plan).
    for (v, e) in [(0u8, 2u32), (1, 3)] {
        let ok = st.file("ok.bin", &epoch_image(v, e));
        let o = st.run(&["update", s(&ok)], &["--dry-run"]);
        assert_eq!(o.status.code(), Some(0), "epoch {e}: {}", text(&o));
    }
    // An image with no rollback-index is epoch 0: below any minimum.
    let none = st.file("none.bin", medium::image(1));
    let o = st.run(&["update", s(&none)], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("security epoch 0"));
    assert_eq!(st.snapshot(), before);
}

#[test]
fn update_with_only_an_srk_hash_says_the_minimum_was_not_checked() {
    let (st, _) = synced_epoch_2();
    let hash = st.file("srk.bin", &medium::pki(0).srk_hash().unwrap());
    let old = st.file("old.bin", &epoch_image(1, 1));
    let o = st.run(&["update", s(&old)], &["--srk-hash", s(&hash), "--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the rollback fuses were not read"),
        "{}",
        text(&o)
    );
}

#[test]
fn status_shows_each_epoch_the_minimum_and_what_a_commit_would_do() {
    let (st, _) = synced_epoch_2();
    let o = st.run(&["status"], &["--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["primary"]["epoch"], 2);
    assert_eq!(v["secondary"]["epoch"], 2);
    assert_eq!(v["rollback"]["minimum"], 1);
    assert_eq!(v["rollback"]["enforced_at_boot"], 1);
    assert_eq!(v["rollback"]["commit_would_advance_to"], 2);
    let o = st.run(&["status"], &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("epoch 2"), "{out}");
    assert!(
        out.contains("rollback     minimum epoch 1") && out.contains("would raise it to 2"),
        "{out}"
    );
    // A copy below the minimum is reported as such, with its class.
    let e2 = epoch_image(2, 2);
    let e1 = epoch_image(1, 1);
    let st = Setup::new(
        Layout {
            primary: Some(&e1),
            secondary: Some(&e2),
            sit: true,
        },
        0b11,
        Some((Slot::Secondary, &e2)),
    );
    let o = st.run(&["status"], &["--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["primary"]["class"], "rollback", "{}", text(&o));
    assert_eq!(v["primary"]["part"], "FIT");
    assert_eq!(v["next_boot"], 2);
}

#[test]
fn commit_burns_to_the_running_epoch_once_and_reads_back() {
    let (st, _) = synced_epoch_2();
    // A dry run names the bits and burns nothing; without --yes nothing is burned (exit 2).
    let before = st.snapshot();
    let o = st.run(&["commit"], &["--dry-run"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("would burn bits [1]") && out.contains("1 -> 2"),
        "{out}"
    );
    assert!(out.contains("irreversible"), "{out}");
    let o = st.run(&["commit"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--yes"));
    assert_eq!(st.snapshot(), before);
    // Burn.
    let o = st.run(&["commit"], &["--yes", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("irreversible"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["burned"], true);
    assert_eq!(v["minimum"], 2);
    assert_eq!(v["plan"]["burn_bits"], serde_json::json!([1]));
    assert_eq!(st.rollback_bits(), 0b11);
    assert_eq!(
        std::fs::read(&st.device).unwrap(),
        before.0,
        "the medium is never written"
    );
    // Again: nothing to burn.
    let o = st.run(&["commit"], &["--yes"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("nothing to burn"));
    assert_eq!(st.rollback_bits(), 0b11);
}

#[test]
fn commit_refuses_before_the_new_image_booted_and_before_sync() {
    let e1 = epoch_image(1, 1);
    let e2 = epoch_image(2, 2);
    // Updated to e2 but not rebooted: the running image (e1) is in the secondary only.
    let not_rebooted = Setup::new(
        Layout {
            primary: Some(&e2),
            secondary: Some(&e1),
            sit: true,
        },
        0b1,
        Some((Slot::Primary, &e1)),
    );
    // Rebooted into e2, not synced: the secondary still holds e1.
    let not_synced = Setup::new(
        Layout {
            primary: Some(&e2),
            secondary: Some(&e1),
            sit: true,
        },
        0b1,
        Some((Slot::Primary, &e2)),
    );
    // No boot record: the running image is not known.
    let no_record = Setup::new(
        Layout {
            primary: Some(&e2),
            secondary: Some(&e2),
            sit: true,
        },
        0b1,
        None,
    );
    // Running the fallback (the primary failed): never advance.
    let mut broken = e2.clone();
    broken[board().media.fit_offset as usize + 0x100] ^= 1;
    let fallback = Setup::new(
        Layout {
            primary: Some(&broken),
            secondary: Some(&e2),
            sit: true,
        },
        0b1,
        Some((Slot::Secondary, &e2)),
    );
    // The SIT is gone: the secondary is not a fallback.
    let no_sit = Setup::new(
        Layout {
            primary: Some(&e2),
            secondary: Some(&e2),
            sit: false,
        },
        0b1,
        Some((Slot::Primary, &e2)),
    );
    for (st, why) in [
        (&not_rebooted, "has not booted"),
        (&not_synced, "run `ubootctl sync` first"),
        (&no_record, "no boot record names the running image"),
        (&fallback, "primary is not bootable"),
        (&no_sit, "SIT does not lead"),
    ] {
        let before = st.snapshot();
        for extra in [&["--yes"][..], &["--dry-run"]] {
            let o = st.run(&["commit"], extra);
            assert_eq!(o.status.code(), Some(1), "{why}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("refused, nothing burned") && err.contains(why),
                "{why}: {}",
                text(&o)
            );
            assert_eq!(st.snapshot(), before, "{why}: nothing changed");
        }
    }
}

#[test]
fn commit_usage_errors_burn_nothing() {
    let (st, _) = synced_epoch_2();
    let before = st.snapshot();
    let hash = st.file("srk.bin", &medium::pki(0).srk_hash().unwrap());
    for (extra, why) in [
        (
            vec!["--yes", "--srk-hash", s(&hash)],
            "needs the rollback fuses",
        ),
        (vec!["--yes", "--running", "1"], "--running"),
        (vec!["--yes", "--dry-run"], "cannot be used with"),
    ] {
        let o = st.run(&["commit"], &extra);
        assert_eq!(o.status.code(), Some(2), "{why}: {}", text(&o));
        assert!(
            String::from_utf8_lossy(&o.stderr).contains(why),
            "{}",
            text(&o)
        );
        assert_eq!(st.snapshot(), before);
    }
}

/// An OCOTP nvmem image (a file laid out like Linux's imx-ocotp device): the commit programs
/// only the new bits of each GP1 word (a real device ORs them in; a plain file keeps just them,
/// so the read-back must catch a burn that did not take), and a write-locked GP1 is refused
/// before any write.
#[test]
fn commit_through_ocotp_writes_only_new_bits_and_respects_the_lock() {
    let (st, _) = synced_epoch_2();
    let mut nvmem = vec![0u8; 0x100];
    nvmem[0x1C..0x20].copy_from_slice(&imx_hab::hab::Fuses::SEC_CONFIG_CLOSED.to_le_bytes());
    nvmem[0x60..0x80].copy_from_slice(&medium::pki(0).srk_hash().unwrap());
    nvmem[0xE0] = 0b1;
    let ocotp = st.file("nvmem", &nvmem);
    let o = st.run(&["commit"], &["--ocotp", s(&ocotp), "--yes"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the burn did not take (the minimum is now 1"),
        "{}",
        text(&o)
    );
    let after = std::fs::read(&ocotp).unwrap();
    assert_eq!(after[0xE0], 0b10, "only the new bit is programmed");
    assert_eq!(&after[..0xE0], &nvmem[..0xE0]);
    assert_eq!(&after[0xE1..], &nvmem[0xE1..]);
    // Blank GP1 while the shim enforced minimum 1: not the fuses the shim read.
    nvmem[0xE0] = 0;
    let blank = st.file("nvmem-blank", &nvmem);
    let o = st.run(&["commit"], &["--ocotp", s(&blank), "--yes"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not the fuses the shim read"));
    assert_eq!(std::fs::read(&blank).unwrap(), nvmem);
    nvmem[0xE0] = 0b1;

    // GP1 write-locked (LOCK word bit 20): refused with the reason, nothing written.
    nvmem[0..4].copy_from_slice(&(1u32 << 20).to_le_bytes());
    let locked = st.file("nvmem-locked", &nvmem);
    for extra in ["--yes", "--dry-run"] {
        let o = st.run(&["commit"], &["--ocotp", s(&locked), extra]);
        assert_eq!(o.status.code(), Some(1), "{extra}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("write-locked"), "{}", text(&o));
        assert!(
            !err.contains("irreversible"),
            "no warning before a refusal: {}",
            text(&o)
        );
        assert_eq!(std::fs::read(&locked).unwrap(), nvmem);
    }
    // An nvmem device too short to hold GP1 is an error, not a minimum of 0.
    let short = st.file("nvmem-short", &nvmem[..0xE4]);
    let o = st.run(&["status"], &["--ocotp", s(&short)]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("GP1"),
        "{}",
        text(&o)
    );
}

/// A power cut during the burn lands any subset of the planned bits: whatever landed, the
/// shim's judgement still boots the device, from the primary, and a re-run finishes the burn.
#[test]
fn a_partial_burn_always_leaves_a_bootable_device() {
    let e3 = epoch_image(2, 3);
    let mut dev = MemDevice::new(medium::DEVICE);
    write_layout(
        &mut dev,
        Layout {
            primary: Some(&e3),
            secondary: Some(&e3),
            sit: true,
        },
    );
    let booted = medium::identity(&e3);
    for start in [0u64, 0b1, 0b100, 1 << 63] {
        let current = RollbackFuses(start);
        let fuses = |bits: u64| imx_hab::hab::Fuses {
            rollback: bits,
            ..medium::fuses()
        };
        let state = MediaState::read(&dev, board(), &fuses(start)).unwrap();
        let facts = |m: u32| BootFacts {
            booted: Some(booted),
            enforced_minimum: Some(m as u8),
        };
        let plan = plan_commit(&state, &facts(current.minimum()), current).unwrap();
        assert_eq!(plan.target, 3.max(current.minimum()));
        let mut subset = plan.burn;
        loop {
            let landed = current.burned(subset);
            let d = predict(&dev, board(), &fuses(landed.0));
            assert_eq!(
                d.slot,
                Some(Slot::Primary),
                "start {start:#x}, landed {subset:#x}"
            );
            // The re-run plans exactly the bits still missing.
            let state = MediaState::read(&dev, board(), &fuses(landed.0)).unwrap();
            let rerun = plan_commit(&state, &facts(current.minimum()), landed).unwrap();
            assert_eq!(landed.burned(rerun.burn).minimum(), plan.target);
            if subset == 0 {
                break;
            }
            subset = (subset - 1) & plan.burn;
        }
    }
}

/// The commit rule is never past what a bootable copy needs: with copies at different epochs
/// (a state only reachable by hand), the target is the lower one; and a refused state
/// returns the refusal, not a plan.
#[test]
fn the_target_never_passes_a_bootable_copy() {
    let e2 = epoch_image(2, 2);
    let e5 = epoch_image(2, 5);
    let mut dev = MemDevice::new(medium::DEVICE);
    write_layout(
        &mut dev,
        Layout {
            primary: Some(&e5),
            secondary: Some(&e2),
            sit: true,
        },
    );
    let state = MediaState::read(&dev, board(), &medium::fuses()).unwrap();
    let boot = BootFacts {
        booted: Some(medium::identity(&e5)),
        enforced_minimum: Some(0),
    };
    let r = plan_commit(&state, &boot, RollbackFuses::BLANK);
    assert_eq!(r, Err(CommitRefusal::SecondaryDiffers));
    // Same image identity cannot hold two epochs; the rule itself caps at the lower epoch.
    assert_eq!(boot_core::rollback::advance_target(5, 2), 2);
}

/// `--fuses` naming a character device reads the board's simulated block in physical memory;
/// a board whose fuses are OCOTP has none (exit 2), and a device that cannot be mapped is an
/// error, never a minimum of 0.
#[test]
fn fuses_from_memory_need_a_board_with_a_simulated_block() {
    let (st, _) = synced_epoch_2();
    let o = Command::new(env!("CARGO_BIN_EXE_ubootctl"))
        .args(["status", "--board", "imx8mm-evk", "--fuses", "/dev/null"])
        .args(["--device", s(&st.device), "--mem", s(&st.mem)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no simulated fuse block in memory"),
        "{}",
        text(&o)
    );
    let o = st.run(&["commit", "--dry-run"], &["--fuses", "/dev/null"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("fuse block"),
        "{}",
        text(&o)
    );
}

/// `verify` judges the epoch as the shim does: below the minimum is `rollback` (exit 1); an
/// accepted image shows its epoch and the minimum.
#[test]
fn verify_shows_the_epoch_and_refuses_below_the_minimum() {
    let (st, _) = synced_epoch_2();
    std::fs::write(&st.fuses, fuse_block(0b11)).unwrap();
    let verify = |img: &[u8]| {
        let p = st.file("img.bin", img);
        Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args([
                "verify",
                s(&p),
                "--board",
                "qemu-imx8mp",
                "--json",
                "--fuses",
            ])
            .arg(&st.fuses)
            .output()
            .unwrap()
    };
    let o = verify(&epoch_image(2, 2));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rollback_minimum"], 2);
    assert_eq!(v["parts"][1]["epoch"], 2);
    let o = verify(&epoch_image(1, 1));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["parts"][1]["check"], "rollback");
    assert_eq!(v["parts"][1]["part"], "FIT");
}

/// The boot record must come from a shim that enforced the fuses given: a version-2 record
/// (an older shim that ignores them) and a record whose enforced minimum is above the fuses
/// given (another fuse source) are refused; so is a device whose copies are accepted only
/// because the part is open (their epochs are not authenticated).
#[test]
fn commit_refuses_a_shim_that_ignores_the_fuses_other_fuses_and_an_open_part() {
    let (st, e2) = synced_epoch_2();
    let before = st.snapshot();
    // Version 2: the same record, no rollback bytes.
    let mut r = medium::boot_record(Reason::PrimaryOk, &e2);
    r.rollback_minimum = None;
    let mut cell = r.encode();
    cell[8] = 2;
    let crc = boot_core::cell::crc32(&cell[..boot_core::cell::CRC_OFFSET]);
    cell[boot_core::cell::CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
    let mut mem = medium::mem_image(None);
    let at = board().cell_addr as usize;
    mem[at..at + cell.len()].copy_from_slice(&cell);
    let v2 = st.file("mem-v2.bin", &mem);
    let o = st.run(&["commit", "--yes"], &[]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "the v3 record commits: {}",
        text(&o)
    );
    std::fs::write(&st.fuses, &before.1).unwrap();
    let mut a: Vec<String> = ["commit", "--yes", "--board", "qemu-imx8mp"]
        .map(String::from)
        .to_vec();
    a.extend(
        [
            "--device",
            s(&st.device),
            "--fuses",
            s(&st.fuses),
            "--mem",
            s(&v2),
        ]
        .map(String::from),
    );
    let o = Command::new(env!("CARGO_BIN_EXE_ubootctl"))
        .args(&a)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("may ignore the fuses"),
        "{}",
        text(&o)
    );
    assert_eq!(st.snapshot(), before);

    // The record says the shim enforced 1; fuses reading 0 are not the ones it read.
    let other = st.file("other-fuses.bin", &fuse_block(0));
    let o = st.run(&["commit", "--yes"], &["--fuses", s(&other)]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("not the fuses the shim read"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(&other).unwrap(), fuse_block(0));

    // An open part with unsigned copies (epoch 2, unauthenticated).
    // Through the FIT's zero IVT, which the shim reads and the identity covers.
    let mut unsigned = medium::flash_bin_with_fit(2, &test_images::standard_fit_epoch(2, Some(2)));
    unsigned.resize(unsigned.len() + 0x2000, 0);
    let open = Setup::new(
        Layout {
            primary: Some(&unsigned),
            secondary: Some(&unsigned),
            sit: true,
        },
        0b1,
        Some((Slot::Primary, &unsigned)),
    );
    let mut block = fuse_block(0b1);
    block[32..36].fill(0);
    std::fs::write(&open.fuses, block).unwrap();
    let before = open.snapshot();
    let o = open.run(&["commit", "--dry-run"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("the part is open"),
        "{}",
        text(&o)
    );
    assert_eq!(open.snapshot(), before);
}

/// `status` names a rolled-back copy as refused, not as damaged.
#[test]
fn status_says_a_rolled_back_copy_is_refused_not_damaged() {
    let e2 = epoch_image(2, 2);
    let e1 = epoch_image(1, 1);
    let st = Setup::new(
        Layout {
            primary: Some(&e1),
            secondary: Some(&e2),
            sit: true,
        },
        0b11,
        Some((Slot::Secondary, &e2)),
    );
    let o = st.run(&["status"], &[]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("REFUSED, rolled back"), "{out}");
    assert!(!out.contains("NOT authentic"), "{out}");
}
