//! Issue 12 item 7: advice that works. For every degraded state `status` reports, the test
//! reads the printed action, runs the command it names (or does what it says: reboot,
//! re-partition) and checks that it succeeds. Image files and a file laid out as physical
//! memory stand in for the card and `/dev/mem`.

mod medium;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use boot_core::policy::Reason;
use medium::{Layout, image, pki, tampered, write_layout};
use serde_json::Value;
use ubootctl::blockdev::{BlockDevice, FileDevice};

struct Bench {
    dir: tempfile::TempDir,
    device: PathBuf,
    mem: PathBuf,
    fuses: PathBuf,
}

impl Bench {
    fn new(layout: Layout<'_>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let device = dir.path().join("sd.img");
        std::fs::write(&device, vec![0u8; medium::DEVICE]).unwrap();
        write_layout(&mut FileDevice::open(&device).unwrap(), layout);
        let fuses = dir.path().join("srk.bin");
        std::fs::write(&fuses, pki(0).srk_hash().unwrap()).unwrap();
        let mem = dir.path().join("mem.bin");
        std::fs::write(&mem, medium::mem_image(None)).unwrap();
        Bench {
            dir,
            device,
            mem,
            fuses,
        }
    }

    /// The cell of a boot of `reason` whose booted copy held `booted` (a flash.bin).
    fn booted(&self, reason: Reason, booted: &[u8]) {
        let record = medium::boot_record(reason, booted);
        std::fs::write(&self.mem, medium::mem_image(Some(&record))).unwrap();
    }

    fn image(&self, v: u8) -> PathBuf {
        let p = self.dir.path().join(format!("v{v}.bin"));
        std::fs::write(&p, image(v)).unwrap();
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args(args)
            .args(["--device", s(&self.device), "--board", "qemu-imx8mp"])
            .args(["--srk-hash", s(&self.fuses), "--mem", s(&self.mem)])
            .output()
            .unwrap()
    }

    /// `status --json`: (exit code, the JSON).
    fn status(&self) -> (i32, Value) {
        let o = self.run(&["status", "--json"]);
        let v = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stdout)));
        (o.status.code().unwrap(), v)
    }

    /// The one action of a degraded status, which must contain `needle`.
    fn action(&self, needle: &str) -> String {
        let (code, v) = self.status();
        assert_eq!(code, 1, "degraded: {v:#}");
        let actions: Vec<String> = v["actions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_owned())
            .collect();
        let a = actions
            .iter()
            .find(|a| a.contains(needle))
            .unwrap_or_else(|| panic!("no action with {needle:?}: {actions:#?}"));
        a.clone()
    }

    fn ok(&self, args: &[&str]) {
        let o = self.run(args);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{args:?}: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn healthy(&self) {
        let (code, v) = self.status();
        assert_eq!((code, v["healthy"].as_bool()), (0, Some(true)), "{v:#}");
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_healthy_device_has_no_action() {
    let b = Bench::new(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    b.booted(Reason::PrimaryOk, image(1));
    b.healthy();
}

#[test]
fn no_boot_record_names_running_and_update_with_it_works() {
    let b = Bench::new(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    b.action("`ubootctl update IMAGE --running 1`");
    let v2 = b.image(2);
    b.ok(&["update", s(&v2), "--running", "1"]);
}

#[test]
fn running_the_secondary_update_works() {
    let b = Bench::new(Layout {
        primary: Some(&tampered(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    b.booted(Reason::PrimaryFailed, image(1));
    b.action("`ubootctl update IMAGE`");
    let v2 = b.image(2);
    b.ok(&["update", s(&v2)]);
    // The next boot takes the new primary; after it, sync makes the device healthy.
    b.booted(Reason::PrimaryOk, image(2));
    b.action("`ubootctl sync`");
    b.ok(&["sync"]);
    b.healthy();
}

#[test]
fn running_a_secondary_damaged_since_reboot_then_sync() {
    let b = Bench::new(Layout {
        primary: Some(image(2)),
        secondary: Some(&tampered(1)),
        sit: true,
    });
    b.booted(Reason::PrimaryFailed, image(1));
    let a = b.action("`ubootctl sync`");
    assert!(a.contains("reboot"), "{a}");
    b.booted(Reason::PrimaryOk, image(2));
    b.ok(&["sync"]);
    b.healthy();
}

#[test]
fn an_untested_primary_reboot_then_sync() {
    let b = Bench::new(Layout {
        primary: Some(image(2)),
        secondary: Some(image(1)),
        sit: true,
    });
    b.booted(Reason::PrimaryOk, image(1));
    let a = b.action("`ubootctl sync`");
    assert!(a.contains("reboot"), "{a}");
    // Before the reboot, sync refuses (it would replace the proven fallback).
    assert_eq!(b.run(&["sync"]).status.code(), Some(1));
    b.booted(Reason::PrimaryOk, image(2));
    b.ok(&["sync"]);
    b.healthy();
}

#[test]
fn a_damaged_primary_that_booted_update_works() {
    let b = Bench::new(Layout {
        primary: Some(&tampered(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    b.booted(Reason::PrimaryOk, image(1));
    b.action("`ubootctl update IMAGE`");
    let v1 = b.image(1);
    b.ok(&["update", s(&v1)]);
    b.healthy();
}

#[test]
fn a_missing_fallback_sync_works() {
    for sit in [true, false] {
        let b = Bench::new(Layout {
            primary: Some(image(1)),
            secondary: None,
            sit,
        });
        b.booted(Reason::PrimaryOk, image(1));
        b.action("`ubootctl sync`");
        b.ok(&["sync"]);
        b.healthy();
    }
}

#[test]
fn nothing_bootable_update_works() {
    let b = Bench::new(Layout {
        primary: Some(&tampered(1)),
        secondary: Some(&tampered(0)),
        sit: true,
    });
    b.booted(Reason::PrimaryOk, image(1));
    let a = b.action("`ubootctl update IMAGE`");
    assert!(
        a.contains("serial download"),
        "the last resort is named: {a}"
    );
    let v2 = b.image(2);
    b.ok(&["update", s(&v2)]);
    b.booted(Reason::PrimaryOk, image(2));
    b.ok(&["sync"]);
    b.healthy();
}

#[test]
fn a_wrong_srk_hash_says_to_check_the_fuse_source() {
    let b = Bench::new(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    b.booted(Reason::PrimaryOk, image(1));
    let right = std::fs::read(&b.fuses).unwrap();
    std::fs::write(&b.fuses, pki(1).srk_hash().unwrap()).unwrap();
    b.action("check the fuse source");
    // Doing what it says: the right fuse source, and the device is healthy.
    std::fs::write(&b.fuses, right).unwrap();
    b.healthy();
}

#[test]
fn a_partition_over_the_secondary_repartition_then_sync() {
    let b = Bench::new(Layout {
        primary: Some(image(1)),
        secondary: None,
        sit: false,
    });
    b.booted(Reason::PrimaryOk, image(1));
    let before = std::fs::read(&b.device).unwrap();
    // A DOS partition from 3 MiB, over the standard secondary slot.
    let mut dev = FileDevice::open(&b.device).unwrap();
    dev.write_at(0, &mbr(3 << 20, 4 << 20)).unwrap();
    dev.flush().unwrap();
    drop(dev);
    let a = b.action("re-partition");
    assert!(a.contains("DOS partition 1"), "{a}");
    let with_table = std::fs::read(&b.device).unwrap();
    assert_eq!(b.run(&["sync"]).status.code(), Some(1));
    assert_eq!(
        std::fs::read(&b.device).unwrap(),
        with_table,
        "a refusal writes nothing"
    );
    assert_ne!(before, with_table);
    // Re-partitioned: the partition now starts at the usual 8 MiB... of a 16 MiB card.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&b.device)
        .unwrap();
    f.set_len(16 << 20).unwrap();
    drop(f);
    let mut dev = FileDevice::open(&b.device).unwrap();
    dev.write_at(0, &mbr(8 << 20, 8 << 20)).unwrap();
    dev.flush().unwrap();
    drop(dev);
    b.action("`ubootctl sync`");
    b.ok(&["sync"]);
    b.healthy();
}

/// A DOS MBR with one Linux partition at byte `start` of `len` bytes.
fn mbr(start: u64, len: u64) -> [u8; 512] {
    let mut m = [0u8; 512];
    let e = &mut m[0x1BE..0x1CE];
    e[4] = 0x83;
    e[8..12].copy_from_slice(&((start / 512) as u32).to_le_bytes());
    e[12..16].copy_from_slice(&((len / 512) as u32).to_le_bytes());
    m[510] = 0x55;
    m[511] = 0xAA;
    m
}

#[test]
fn a_gpt_entry_array_in_the_primary_slot_move_it_then_update() {
    let b = Bench::new(Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    });
    b.booted(Reason::PrimaryOk, image(1));
    std::fs::OpenOptions::new()
        .write(true)
        .open(&b.device)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let sgdisk = |args: &[&str]| {
        let o = Command::new("sgdisk")
            .args(args)
            .arg(&b.device)
            .output()
            .expect("sgdisk (gdisk) is installed by .ci/setup");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    };
    // The entry array at LBA 66 (0x8400): inside the primary slot; the partition at 8 MiB.
    sgdisk(&["-j", "66", "-n", "1:16384:+4M"]);
    let a = b.action("sgdisk -j 2");
    assert!(a.contains("GPT"), "{a}");
    sgdisk(&["-j", "2"]);
    let (_, v) = b.status();
    assert!(v.get("boot_area_conflicts").is_none(), "{v:#}");
    // The array had overwritten the primary's start: the advice is now to write it again.
    b.action("`ubootctl update IMAGE`");
    let v1 = b.image(1);
    b.ok(&["update", s(&v1)]);
    b.healthy();
}
