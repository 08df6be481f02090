//! `ubootctl update` / `sync` on an image file: the running slot from a boot cell in a file laid
//! out as physical memory, dry runs, refusals that leave the device byte-identical, JSON events.

mod medium;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use boot_core::policy::Reason;
use medium::{Layout, image, pki, tampered, write_layout};
use ubootctl::blockdev::FileDevice;

struct Setup {
    _dir: tempfile::TempDir,
    device: PathBuf,
    fuses: PathBuf,
    mem: PathBuf,
    new: PathBuf,
    bad: PathBuf,
}

/// An 8 MiB medium file holding `layout`, the fuse file, a memory file whose cell says the
/// board booted `reason` (or holds nothing), and the new image (version 2) and a tampered one.
fn setup(layout: Layout<'_>, reason: Option<Reason>) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let device = dir.path().join("sd.img");
    std::fs::write(&device, vec![0u8; medium::DEVICE]).unwrap();
    {
        let mut dev = FileDevice::open(&device).unwrap();
        write_layout(&mut dev, layout);
    }
    let fuses = dir.path().join("srk_fuse.bin");
    std::fs::write(&fuses, pki(0).srk_hash().unwrap()).unwrap();
    let mem = medium::mem_image(
        reason
            .map(|r| {
                let booted = if r == Reason::PrimaryOk {
                    layout.primary
                } else {
                    layout.secondary
                };
                medium::boot_record(r, booted.expect("the booted copy is on the medium"))
            })
            .as_ref(),
    );
    let mem_path = dir.path().join("mem.bin");
    std::fs::write(&mem_path, mem).unwrap();
    let new = dir.path().join("new.bin");
    std::fs::write(&new, image(2)).unwrap();
    let bad = dir.path().join("bad.bin");
    std::fs::write(&bad, tampered(2)).unwrap();
    Setup {
        _dir: dir,
        device,
        fuses,
        mem: mem_path,
        new,
        bad,
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ubootctl"))
        .args(args)
        .output()
        .unwrap()
}

fn update(st: &Setup, img: &Path, extra: &[&str]) -> Output {
    let mut a = vec![
        "update",
        s(img),
        "--device",
        s(&st.device),
        "--board",
        "qemu-imx8mp",
    ];
    a.extend(["--srk-hash", s(&st.fuses), "--mem", s(&st.mem)]);
    a.extend(extra);
    run(&a)
}

fn at(st: &Setup, offset: u64, len: usize) -> Vec<u8> {
    let d = std::fs::read(&st.device).unwrap();
    d[offset as usize..offset as usize + len].to_vec()
}

const PRIMARY: u64 = 0x8400;
const SECONDARY: u64 = 0x20_8400;

fn running_1_medium() -> Setup {
    setup(
        Layout {
            primary: Some(image(1)),
            secondary: None,
            sit: false,
        },
        Some(Reason::PrimaryOk),
    )
}

#[test]
fn update_running_1_copies_the_primary_then_writes_the_new_image_and_a_rerun_writes_nothing() {
    let st = running_1_medium();
    let out = update(&st, &st.new, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(at(&st, PRIMARY, image(2).len()), image(2));
    assert_eq!(at(&st, SECONDARY, image(1).len()), image(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(": done, wrote secondary, then SIT, then primary ("),
        "{text}"
    );
    assert_eq!(
        at(&st, 0x8200 + 8, 4),
        [0x33, 0x22, 0x11, 0x00],
        "SIT tag written"
    );
    let before = std::fs::read(&st.device).unwrap();
    let again = update(&st, &st.new, &[]);
    assert_eq!(again.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already installed"));
    assert_eq!(
        std::fs::read(&st.device).unwrap(),
        before,
        "nothing written on a re-run"
    );
}

#[test]
fn dry_run_prints_the_plan_and_writes_nothing() {
    let st = running_1_medium();
    let before = std::fs::read(&st.device).unwrap();
    let out = update(&st, &st.new, &["--dry-run"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("nothing is written")
            && text.contains("secondary")
            && text.contains("primary"),
        "{text}"
    );
    assert_eq!(std::fs::read(&st.device).unwrap(), before);
}

#[test]
fn unknown_running_slot_is_refused_unless_named() {
    let st = setup(
        Layout {
            primary: Some(image(1)),
            secondary: None,
            sit: false,
        },
        None,
    );
    let before = std::fs::read(&st.device).unwrap();
    let out = update(&st, &st.new, &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("running slot is unknown") && err.contains("no boot record"),
        "{err}"
    );
    assert_eq!(std::fs::read(&st.device).unwrap(), before);
    let named = update(&st, &st.new, &["--running", "1"]);
    assert_eq!(
        named.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&named.stderr)
    );
}

#[test]
fn running_2_writes_only_the_primary() {
    let st = setup(
        Layout {
            primary: Some(&tampered(1)),
            secondary: Some(image(1)),
            sit: true,
        },
        Some(Reason::PrimaryFailed),
    );
    let secondary_before = at(&st, SECONDARY, 2 << 20);
    let out = update(&st, &st.new, &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(at(&st, PRIMARY, image(2).len()), image(2));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(": done, wrote primary ("), "{text}");
    assert_eq!(
        at(&st, SECONDARY, 2 << 20),
        secondary_before,
        "the running copy is never written"
    );
}

#[test]
fn tampered_image_is_refused_and_the_device_is_unchanged() {
    let st = running_1_medium();
    let before = std::fs::read(&st.device).unwrap();
    let out = update(&st, &st.bad, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing written"));
    assert_eq!(std::fs::read(&st.device).unwrap(), before);
}

#[test]
fn json_prints_one_event_per_line_ending_with_the_result() {
    let st = running_1_medium();
    let out = update(&st, &st.new, &["--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.first().unwrap()["event"], "start");
    assert!(
        lines
            .iter()
            .any(|v| v["event"] == "verified" && v["sha256"].as_str().unwrap().len() == 64)
    );
    assert_eq!(lines.last().unwrap()["event"], "result");
}

#[test]
fn sync_makes_the_secondary_a_copy_of_the_running_primary() {
    let st = running_1_medium();
    let out = run(&[
        "sync",
        "--device",
        s(&st.device),
        "--board",
        "qemu-imx8mp",
        "--srk-hash",
        s(&st.fuses),
        "--mem",
        s(&st.mem),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(at(&st, SECONDARY, image(1).len()), image(1));
    assert_eq!(at(&st, PRIMARY, image(1).len()), image(1));
}

#[test]
fn missing_device_is_a_usage_error() {
    let st = running_1_medium();
    let out = run(&[
        "update",
        s(&st.new),
        "--device",
        "/nonexistent/sd",
        "--srk-hash",
        s(&st.fuses),
    ]);
    assert_eq!(out.status.code(), Some(2));
}

fn status(st: &Setup, json: bool) -> Output {
    let mut a = vec![
        "status",
        "--device",
        s(&st.device),
        "--board",
        "qemu-imx8mp",
    ];
    a.extend(["--srk-hash", s(&st.fuses), "--mem", s(&st.mem)]);
    if json {
        a.push("--json");
    }
    run(&a)
}

#[test]
fn status_is_healthy_with_identical_copies_and_a_valid_table() {
    let st = setup(
        Layout {
            primary: Some(image(1)),
            secondary: Some(image(1)),
            sit: true,
        },
        Some(Reason::PrimaryOk),
    );
    let out = status(&st, false);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("healthy") && text.contains("running      slot 1 (primary-ok)"),
        "{text}"
    );
    let v: serde_json::Value = serde_json::from_slice(&status(&st, true).stdout).unwrap();
    assert_eq!(
        (
            v["healthy"].as_bool(),
            v["next_boot"].as_u64(),
            v["running"].as_u64()
        ),
        (Some(true), Some(1), Some(1))
    );
}

#[test]
fn status_is_degraded_when_running_the_secondary_or_without_fallback_or_record() {
    let st = setup(
        Layout {
            primary: Some(&tampered(1)),
            secondary: Some(image(1)),
            sit: true,
        },
        Some(Reason::PrimaryFailed),
    );
    let out = status(&st, false);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("SECONDARY") && text.contains("next boot    slot 2"),
        "{text}"
    );

    let st = running_1_medium();
    let out = status(&st, true);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["secondary"]["authentic"], false);
    assert!(
        v["actions"][0].as_str().unwrap().contains("ubootctl sync"),
        "{v}"
    );

    let st = setup(
        Layout {
            primary: Some(image(1)),
            secondary: Some(image(1)),
            sit: true,
        },
        None,
    );
    let out = status(&st, false);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no boot record"));
}
