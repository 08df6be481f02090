//! Issue 12: `ubootctl` never touches what is not its own (partitions, partition tables, past
//! the device's end), locks by what is underneath, and keeps one exit-code contract (README
//! "Exit codes"): every refusal 1, every usage or I/O error 2, a failed write to stdout 2.

mod medium;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use boards::SECTOR_SIZE;
use medium::{Layout, board, image, pki, write_layout};
use ubootctl::blockdev::{BlockDevice, FileDevice};
use ubootctl::storage_lock::{self, LockRoots};
use ubootctl::sysblock::SysRoots;

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Card {
    _dir: tempfile::TempDir,
    path: PathBuf,
    fuses: PathBuf,
    new: PathBuf,
}

/// A sparse card image of `size` bytes holding `layout` (v1 both copies by default).
fn card(size: u64, layout: Layout<'_>) -> Card {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sd.img");
    std::fs::File::create(&path).unwrap().set_len(size).unwrap();
    if size >= 0x40_8400 {
        write_layout(&mut FileDevice::open(&path).unwrap(), layout);
    }
    let fuses = dir.path().join("srk.bin");
    std::fs::write(&fuses, pki(0).srk_hash().unwrap()).unwrap();
    let new = dir.path().join("v2.bin");
    std::fs::write(&new, image(2)).unwrap();
    Card {
        _dir: dir,
        path,
        fuses,
        new,
    }
}

fn both_v1() -> Layout<'static> {
    Layout {
        primary: Some(image(1)),
        secondary: Some(image(1)),
        sit: true,
    }
}

impl Card {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args(args)
            .args(["--device", s(&self.path), "--board", "qemu-imx8mp"])
            .args(["--srk-hash", s(&self.fuses), "--mem", "/nonexistent"])
            .output()
            .unwrap()
    }

    fn update(&self) -> Output {
        self.run(&["update", s(&self.new), "--running", "1"])
    }

    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }

    /// Runs `sfdisk`/`sgdisk` style commands on the image.
    fn sh(&self, cmd: &str, stdin: &str) {
        let mut c = Command::new("sh")
            .args(["-c", cmd])
            .env("IMG", &self.path)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
        use std::io::Write;
        c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let o = c.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "{cmd}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

fn text(o: &Output) -> String {
    format!(
        "exit {:?}\n{}{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A refusal: exit 1, the message names `needle`, the card is byte-identical.
fn refused(c: &Card, o: &Output, before: &[u8], needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{}", text(o));
    assert!(text(o).contains(needle), "{needle:?} not in {}", text(o));
    assert!(c.bytes() == before, "a refusal changed the card");
}

#[test]
fn a_dos_partition_over_the_secondary_slot_is_never_written() {
    let c = card(8 << 20, both_v1());
    // sfdisk: one Linux partition from 3 MiB (over the standard secondary slot).
    c.sh(
        "sfdisk --no-reread --no-tell-kernel -q \"$IMG\"",
        "3M,4M,83\n",
    );
    let before = c.bytes();
    refused(&c, &c.update(), &before, "DOS partition 1");
    refused(
        &c,
        &c.run(&["sync", "--running", "1"]),
        &before,
        "DOS partition 1",
    );
    let st = c.run(&["status", "--json"]);
    assert_eq!(st.status.code(), Some(1), "degraded: {}", text(&st));
    assert!(text(&st).contains("boot_area_conflicts"), "{}", text(&st));
}

#[test]
fn a_sit_pointing_into_a_partition_is_refused_naming_both() {
    // 64 MiB card, rootfs at 8 MiB, a SIT whose firstSectorNumber has one flipped bit
    // (0x1000 -> 0x9000: secondary at 0x1208400, inside the rootfs).
    let c = card(64 << 20, both_v1());
    c.sh(
        "sfdisk --no-reread --no-tell-kernel -q \"$IMG\"",
        "8M,,83\n",
    );
    let mut dev = FileDevice::open(&c.path).unwrap();
    dev.write_at(
        board().media.sit_offset(),
        &imx_hab::sit::build_sector(0x9000),
    )
    .unwrap();
    dev.flush().unwrap();
    drop(dev);
    let before = c.bytes();
    for o in [c.update(), c.run(&["sync", "--running", "1"])] {
        refused(&c, &o, &before, "the secondary slot the SIT points to");
        assert!(text(&o).contains("DOS partition 1"), "{}", text(&o));
    }
}

#[test]
fn a_16_gib_card_with_rootfs_at_8_mib_updates() {
    let c = card(16 << 30, both_v1());
    c.sh(
        "sfdisk --no-reread --no-tell-kernel -q \"$IMG\"",
        "8M,,83\n",
    );
    let o = c.update();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let st = c.run(&["status", "--json"]);
    assert!(!text(&st).contains("boot_area_conflicts"), "{}", text(&st));
}

#[test]
fn a_gpt_backup_table_inside_the_secondary_slot_is_refused() {
    // A card that ends just after the secondary slot: its backup GPT entry array lies inside
    // the slot.
    let c = card(0x40_A000, both_v1());
    c.sh("sgdisk -o \"$IMG\" >/dev/null", "");
    let before = c.bytes();
    refused(
        &c,
        &c.run(&["sync", "--running", "1"]),
        &before,
        "backup GPT",
    );
}

#[test]
fn small_devices_are_a_refusal_at_every_size() {
    for size in [0x4000u64, 0x8400, 0x8400 + 4 * SECTOR_SIZE, 3 << 20] {
        let c = card(size, both_v1());
        let before = c.bytes();
        let o = c.update();
        refused(&c, &o, &before, "");
        let st = c.run(&["status"]);
        assert_eq!(st.status.code(), Some(1), "{size:#x}: {}", text(&st));
    }
}

#[test]
fn running_contradicting_a_valid_record_is_a_usage_error() {
    let c = card(8 << 20, both_v1());
    let dir = tempfile::tempdir().unwrap();
    let mem = dir.path().join("mem.bin");
    let record = medium::boot_record(boot_core::policy::Reason::PrimaryFailed, image(1));
    std::fs::write(&mem, medium::mem_image(Some(&record))).unwrap();
    let before = c.bytes();
    let o = Command::new(env!("CARGO_BIN_EXE_ubootctl"))
        .args(["update", s(&c.new), "--running", "1", "--mem", s(&mem)])
        .args(["--device", s(&c.path), "--board", "qemu-imx8mp"])
        .args(["--srk-hash", s(&c.fuses)])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("--running 1") && text(&o).contains("slot 2"),
        "{}",
        text(&o)
    );
    assert!(c.bytes() == before);
}

#[test]
fn a_failed_write_to_stdout_is_exit_2_healthy_or_not() {
    for layout in [
        both_v1(),
        Layout {
            primary: Some(image(1)),
            secondary: None,
            sit: false,
        },
    ] {
        let c = card(8 << 20, layout);
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args(["status", "--device", s(&c.path), "--board", "qemu-imx8mp"])
            .args(["--srk-hash", s(&c.fuses), "--mem", "/nonexistent"])
            .stdout(full)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(
            text(&o).contains("write to standard output"),
            "{}",
            text(&o)
        );
    }
}

/// Runs `losetup`; `None` when the kernel refuses loop devices.
fn losetup(file: &Path) -> Option<String> {
    let o = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(file)
        .output()
        .ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim().to_owned())
}

#[test]
fn another_run_on_the_same_storage_through_an_alias_is_a_refusal() {
    let c = card(8 << 20, both_v1());
    let before = c.bytes();
    // Held on the file: an update on the file is refused (exit 1, nothing written).
    let guard = storage_lock::lock(&c.path, &LockRoots::default()).unwrap();
    refused(&c, &c.update(), &before, "another ubootctl");
    // status cannot read a state being written: a refusal too (exit 1).
    let st = c.run(&["status"]);
    assert_eq!(st.status.code(), Some(1), "{}", text(&st));
    assert!(text(&st).contains("another ubootctl"), "{}", text(&st));
    drop(guard);
    let Some(dev) = losetup(&c.path) else {
        eprintln!("skipped the loop-device half: the kernel refuses loop devices here");
        return;
    };
    // Held on the loop device: an update on its backing file is refused, and the other way.
    let run_on = |device: &str| {
        Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args(["update", s(&c.new), "--running", "1", "--device", device])
            .args(["--board", "qemu-imx8mp", "--srk-hash", s(&c.fuses)])
            .args(["--mem", "/nonexistent"])
            .output()
            .unwrap()
    };
    let guard = storage_lock::lock(Path::new(&dev), &LockRoots::default()).unwrap();
    let o = run_on(s(&c.path));
    let g2 = storage_lock::lock(
        &c.path,
        &LockRoots::new(SysRoots::default(), storage_lock::LOCK_DIR),
    );
    drop(guard);
    let guard = storage_lock::lock(&c.path, &LockRoots::default()).unwrap();
    let o2 = run_on(&dev);
    drop(guard);
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    assert!(g2.is_err(), "the file is locked while its loop device is");
    refused(&c, &o, &before, "another ubootctl");
    refused(&c, &o2, &before, "another ubootctl");
}

#[test]
fn fifos_devices_and_directories_are_usage_errors_without_blocking() {
    let c = card(8 << 20, both_v1());
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(
        Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    let odd = [s(&fifo), "/dev/zero", "/dev/null", s(dir.path())];
    let bounded = |args: &[&str]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let t0 = std::time::Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(
                t0.elapsed() < std::time::Duration::from_secs(20),
                "{args:?} blocks"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        child.wait_with_output().unwrap()
    };
    let fuses = s(&c.fuses);
    for path in odd {
        for args in [
            vec!["verify", path, "--srk-hash", fuses],
            vec!["inspect", path],
            vec![
                "update",
                path,
                "--device",
                s(&c.path),
                "--running",
                "1",
                "--srk-hash",
                fuses,
            ],
            vec!["status", "--device", path, "--srk-hash", fuses],
            vec![
                "status",
                "--device",
                s(&c.path),
                "--mem",
                path,
                "--srk-hash",
                fuses,
            ],
            vec![
                "update",
                s(&c.new),
                "--device",
                s(&c.path),
                "--mem",
                path,
                "--srk-hash",
                fuses,
            ],
            vec![
                "update",
                s(&c.new),
                "--device",
                path,
                "--running",
                "1",
                "--srk-hash",
                fuses,
            ],
        ] {
            // A character device is a valid --mem (it is how /dev/mem is read).
            if args.contains(&"--mem") && path.starts_with("/dev/") {
                continue;
            }
            let mut args = args;
            args.extend(["--board", "qemu-imx8mp"]);
            let o = bounded(&args);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        }
    }
}

#[test]
fn a_partition_as_the_device_is_refused_naming_the_disk() {
    let c = card(16 << 20, both_v1());
    c.sh(
        "sfdisk --no-reread --no-tell-kernel -q \"$IMG\"",
        "8M,,83\n",
    );
    let Some(dev) = losetup(&c.path) else {
        eprintln!("skipped: the kernel refuses loop devices here");
        return;
    };
    let _ = Command::new("partx").args(["-a", &dev]).status();
    let part = format!("{dev}p1");
    let present = Path::new(&part).exists();
    let outs: Vec<Output> = if present {
        [
            vec!["status", "--device", &part],
            vec!["update", s(&c.new), "--device", &part, "--running", "1"],
        ]
        .into_iter()
        .map(|a| {
            Command::new(env!("CARGO_BIN_EXE_ubootctl"))
                .args(a)
                .args(["--board", "qemu-imx8mp", "--srk-hash", s(&c.fuses)])
                .args(["--mem", "/nonexistent"])
                .output()
                .unwrap()
        })
        .collect()
    } else {
        Vec::new()
    };
    let _ = Command::new("losetup").args(["-d", &dev]).status();
    if !present {
        eprintln!("skipped: no partition device for {dev} (partx failed)");
        return;
    }
    let disk = dev.trim_start_matches("/dev/");
    for o in outs {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(disk), "{}", text(&o));
    }
}

#[test]
fn fuse_sources_at_their_edges() {
    let c = card(8 << 20, both_v1());
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zero-hash.bin");
    std::fs::write(&zeros, [0u8; 32]).unwrap();
    let v = |fuse_args: &[&str], image: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .args(["verify", s(image), "--board", "qemu-imx8mp"])
            .args(fuse_args)
            .output()
            .unwrap()
    };
    // An all-zero SRK hash file: a closed part against which nothing authenticates (exit 1).
    let o = v(&["--srk-hash", s(&zeros)], &c.new);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("all zero"), "{}", text(&o));
    // An open part with unprogrammed SRK fuses boots unsigned images: accepted with warnings.
    let block = dir.path().join("open-blank.bin");
    std::fs::write(&block, [0u8; 64]).unwrap();
    let mut unsigned = image(1).to_vec();
    let word = |at: usize| u32::from_le_bytes(unsigned[at..at + 4].try_into().unwrap()) as usize;
    let csf = word(0x18) - word(0x14);
    unsigned[csf..csf + 0x2000].fill(0);
    let fit_ivt = board().media.fit_offset as usize + 0x56000;
    unsigned.truncate(fit_ivt + 0x20);
    unsigned[fit_ivt..].fill(0);
    let img = dir.path().join("unsigned.bin");
    std::fs::write(&img, &unsigned).unwrap();
    let o = v(&["--fuses", s(&block), "--json"], &img);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("unsigned SPL accepted"), "{}", text(&o));
    assert!(text(&o).contains("unsigned FIT accepted"), "{}", text(&o));
    // The same image on a closed part with the same blank fuses: refused as not programmed.
    let mut closed = [0u8; 64];
    closed[32..36].copy_from_slice(&(1u32 << 25).to_le_bytes());
    std::fs::write(&block, closed).unwrap();
    assert_eq!(v(&["--fuses", s(&block)], &img).status.code(), Some(1));
    // An image larger than a slot: refused by verify as by update, with its real size.
    let big = dir.path().join("big.bin");
    let mut b = image(1).to_vec();
    b.resize(3 << 20, 0);
    std::fs::write(&big, b).unwrap();
    let o = v(&["--srk-hash", s(&c.fuses)], &big);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("0x300000 bytes"), "{}", text(&o));
}
