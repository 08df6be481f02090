//! `ubootctl` on an eMMC (issue 14): the A/B layout (b) with `--emmc-ab` (update, sync, dry run,
//! status, refusals) and layout (a)'s enabled-partition check, on a fake `/sys` tree and files
//! standing for `/dev/mmcblk2`, `/dev/mmcblk2boot0`, `/dev/mmcblk2boot1` and EXT_CSD (the hidden
//! `--test-ext-csd`). The ioctl itself is exercised by the Linux end-to-end scenarios.

mod medium;

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use medium::{BOOT_PART, board, fuses, identity, image, mem_image, pki, tampered};
use ubootctl::blockdev::MemDevice;
use ubootctl::emmc::ab::{self, AbDevice};
use ubootctl::emmc::{BootPartition, ExtCsdAccess, MemExtCsd};
use ubootctl::exec::{ExecOptions, NoProgress};
use ubootctl::plan::Running;

struct Fake {
    dir: tempfile::TempDir,
}

impl Fake {
    /// An eMMC `mmcblk2` whose boot0 holds `boot0`, boot1 `boot1`, EXT_CSD[179] = `pc`, both
    /// `force_ro` 1.
    fn new(boot0: Option<&[u8]>, boot1: Option<&[u8]>, pc: u8) -> Self {
        Self::sized(boot0, boot1, pc, BOOT_PART)
    }

    /// The same with boot partitions of `part` bytes.
    fn sized(boot0: Option<&[u8]>, boot1: Option<&[u8]>, pc: u8, part: usize) -> Self {
        let f = Fake {
            dir: tempfile::tempdir().unwrap(),
        };
        for d in ["sys/class/block", "sys/block", "proc/self", "dev"] {
            std::fs::create_dir_all(f.path(d)).unwrap();
        }
        std::fs::write(
            f.path("proc/self/mountinfo"),
            "22 27 0:21 / /proc rw,relatime - proc proc rw\n",
        )
        .unwrap();
        std::fs::write(
            f.path("proc/swaps"),
            "Filename\tType\tSize\tUsed\tPriority\n",
        )
        .unwrap();
        std::fs::write(f.path("srk_hash.bin"), pki(0).srk_hash().unwrap()).unwrap();
        std::fs::write(f.path("new.bin"), image(2)).unwrap();
        std::fs::write(f.path("bad.bin"), tampered(2)).unwrap();
        std::fs::write(f.path("mem.bin"), mem_image(None)).unwrap();
        for (name, minor, img, size) in [
            ("mmcblk2", 0, None, 1 << 20),
            ("mmcblk2boot0", 8, boot0, part),
            ("mmcblk2boot1", 16, boot1, part),
        ] {
            let d = f.path(&format!("sys/devices/mmc/{name}"));
            std::fs::create_dir_all(d.join("holders")).unwrap();
            std::fs::write(d.join("dev"), format!("179:{minor}\n")).unwrap();
            std::os::unix::fs::symlink(&d, f.path(&format!("sys/class/block/{name}"))).unwrap();
            std::os::unix::fs::symlink(&d, f.path(&format!("sys/block/{name}"))).unwrap();
            if name.contains("boot") {
                std::fs::write(d.join("force_ro"), "1\n").unwrap();
            }
            let mut bytes = vec![0u8; size];
            if let Some(img) = img {
                bytes[0x8400..0x8400 + img.len()].copy_from_slice(img);
            }
            std::fs::write(f.path(&format!("dev/{name}")), bytes).unwrap();
        }
        let mut ext = [0u8; 512];
        ext[179] = pc;
        std::fs::write(f.path("ext_csd"), ext).unwrap();
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn pc(&self) -> u8 {
        std::fs::read(self.path("ext_csd")).unwrap()[179]
    }

    fn force_ro(&self, part: &str) -> String {
        std::fs::read_to_string(self.path(&format!("sys/block/mmcblk2{part}/force_ro")))
            .unwrap()
            .trim()
            .to_owned()
    }

    fn holds(&self, part: &str, img: &[u8]) -> bool {
        let b = std::fs::read(self.path(&format!("dev/mmcblk2{part}"))).unwrap();
        b[0x8400..0x8400 + img.len()] == *img
    }

    fn run(&self, args: &[&str], device: &str) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ubootctl"));
        c.args(args)
            .arg("--device")
            .arg(self.path(&format!("dev/{device}")))
            .args(["--board", "qemu-imx8mp", "--srk-hash"])
            .arg(self.path("srk_hash.bin"))
            .arg("--mem")
            .arg(self.path("mem.bin"))
            .arg("--test-ext-csd")
            .arg(self.path("ext_csd"));
        if args[0] != "status" {
            c.arg("--sysfs-root")
                .arg(self.path("sys"))
                .arg("--proc-root")
                .arg(self.path("proc"))
                .arg("--lock-dir")
                .arg(self.path("locks"));
        }
        c.output().unwrap()
    }

    fn new_bin(&self) -> String {
        self.path("new.bin").display().to_string()
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn ab_update_writes_the_inactive_partition_then_switches_and_restores_force_ro() {
    let f = Fake::new(Some(image(1)), Some(image(0)), 0x48);
    let before0 = std::fs::read(f.path("dev/mmcblk2boot0")).unwrap();
    // The dry run: the switch is its own step, after the read-back; nothing changes.
    let new = f.new_bin();
    let dry = f.run(
        &["update", &new, "--emmc-ab", "--running", "1", "--dry-run"],
        "mmcblk2",
    );
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    let text = stdout(&dry);
    let lines: Vec<&str> = text.lines().collect();
    let last = lines.last().unwrap();
    assert!(last.contains("switch EXT_CSD[179] to boot1"), "{text}");
    assert!(
        lines[lines.len() - 2].contains("read back secondary"),
        "{text}"
    );
    assert!(text.contains("EXT_CSD[179] = 0x48"), "{text}");
    assert_eq!(f.pc(), 0x48);
    assert!(f.holds("boot1", image(0)));
    // The update.
    let out = f.run(
        &["update", &new, "--emmc-ab", "--running", "1", "--json"],
        "mmcblk2",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let switch = events
        .iter()
        .position(|v| v["event"] == "step" && v["action"].as_str().unwrap().starts_with("switch"))
        .expect("a switch step");
    let verified = events
        .iter()
        .rposition(|v| v["event"] == "verified")
        .unwrap();
    assert!(verified < switch, "the switch follows the read-back");
    assert!(f.holds("boot1", image(2)));
    assert_eq!(
        std::fs::read(f.path("dev/mmcblk2boot0")).unwrap(),
        before0,
        "the enabled partition is never written"
    );
    assert_eq!(f.pc(), 0x50, "BOOT_ACK kept, boot1 enabled");
    assert_eq!(
        (f.force_ro("boot0"), f.force_ro("boot1")),
        ("1".into(), "1".into())
    );
    // status reports EXT_CSD[179] and both partitions; copy 1 is boot1's now.
    let st = f.run(&["status", "--emmc-ab", "--json"], "mmcblk2");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&st)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&st)));
    assert_eq!(v["emmc"]["partition_config"], "0x50");
    assert_eq!(v["emmc"]["boot_ack"], true);
    assert_eq!(v["emmc"]["boot_from"], "boot1");
    assert_eq!(v["emmc"]["layout"], "b");
    assert_eq!(v["emmc"]["partitions"][1]["enabled"], true);
    assert_eq!(v["emmc"]["partitions"][0]["copy"]["authentic"], true);
    assert_eq!(v["primary"]["authentic"], true);
    assert_eq!(v["next_boot"], 1);
    let text = stdout(&f.run(&["status", "--emmc-ab"], "mmcblk2"));
    assert!(
        text.contains("EXT_CSD[179] 0x50: BOOT_ACK 1, boot from boot1"),
        "{text}"
    );
    assert!(text.contains("boot1 (enabled) authentic"), "{text}");
    // sync (as after a reboot into boot1): boot0 becomes boot1's copy, no switch.
    let out = f.run(&["sync", "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(f.holds("boot0", image(2)));
    assert_eq!(f.pc(), 0x50);
    assert_eq!(
        (f.force_ro("boot0"), f.force_ro("boot1")),
        ("1".into(), "1".into())
    );
}

#[test]
fn ab_refusals_leave_everything_untouched() {
    // No boot partition enabled: refused (exit 1).
    let f = Fake::new(Some(image(1)), None, 0x38);
    let new = f.new_bin();
    let out = f.run(&["update", &new, "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no boot partition is enabled"),
        "{}",
        stderr(&out)
    );
    assert_eq!(f.pc(), 0x38);
    assert!(!f.holds("boot1", image(2)));
    // A tampered image: refused before anything.
    let f = Fake::new(Some(image(1)), None, 0x48);
    let bad = f.path("bad.bin").display().to_string();
    let out = f.run(&["update", &bad, "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(f.pc(), 0x48);
    assert_eq!(f.force_ro("boot1"), "1");
    // --emmc-ab names the eMMC, not a boot partition (exit 2).
    let out = f.run(
        &["update", &new, "--emmc-ab", "--running", "1"],
        "mmcblk2boot0",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    // A truncated EXT_CSD file stands for an unreadable register: exit 2, nothing written.
    std::fs::write(f.path("ext_csd"), [0u8; 100]).unwrap();
    let out = f.run(&["update", &new, "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("EXT_CSD"), "{}", stderr(&out));
    assert!(!f.holds("boot1", image(2)));
}

#[test]
fn layout_a_writes_only_the_enabled_boot_partition() {
    // boot0 enabled: writing boot1 with the AN12900 layout is refused, naming the register.
    let f = Fake::new(Some(image(1)), None, 0x48);
    let new = f.new_bin();
    let before = std::fs::read(f.path("dev/mmcblk2boot1")).unwrap();
    let out = f.run(&["update", &new, "--running", "1"], "mmcblk2boot1");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not the boot partition the ROM reads") && err.contains("0x48"),
        "{err}"
    );
    assert!(err.contains("--emmc-ab"), "{err}");
    assert_eq!(std::fs::read(f.path("dev/mmcblk2boot1")).unwrap(), before);
    assert_eq!(f.force_ro("boot1"), "1");
    // The enabled one is written with the table fitted to 4 MiB (boards'
    // `in_boot_partition`: firstSectorNumber 0xFDF, the secondary at 0x204200), and status names
    // layout (a).
    let out = f.run(&["update", &new, "--running", "1"], "mmcblk2boot0");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(f.holds("boot0", image(2)));
    let b0 = std::fs::read(f.path("dev/mmcblk2boot0")).unwrap();
    assert_eq!(&b0[0x204200..0x204200 + image(1).len()], image(1));
    assert_eq!(
        &b0[0x8200..0x8210],
        &imx_hab::sit::build_sector(0xFDF)[..16]
    );
    assert_eq!(f.force_ro("boot0"), "1");
    let st = f.run(&["status", "--json"], "mmcblk2boot0");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&st)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&st)));
    assert_eq!(v["emmc"]["layout"], "a");
    assert_eq!(v["emmc"]["partitions"][0]["enabled"], true);
    assert!(v["sit"].as_str().unwrap().contains("0xfdf"), "{v}");
    assert_eq!(v["secondary"]["offset"], 0x204200);
}

#[test]
fn layout_a_in_a_boot_partition_too_small_for_two_copies_is_refused() {
    let f = Fake::sized(None, None, 0x48, 512 << 10);
    let new = f.new_bin();
    let before = std::fs::read(f.path("dev/mmcblk2boot0")).unwrap();
    let out = f.run(&["update", &new, "--running", "1"], "mmcblk2boot0");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cannot hold two copies"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(f.path("dev/mmcblk2boot0")).unwrap(), before);
    let st = f.run(&["status", "--json"], "mmcblk2boot0");
    let v: serde_json::Value = serde_json::from_str(&stdout(&st)).unwrap();
    let actions = v["actions"].to_string();
    assert!(actions.contains("--emmc-ab"), "{actions}");
    assert!(!actions.contains("re-partition"), "{actions}");
}

/// EXT_CSD that records `force_ro` of both partitions at every CMD6.
struct Watching<'a> {
    inner: MemExtCsd,
    files: [&'a Path; 2],
    seen: &'a RefCell<Vec<[String; 2]>>,
}

impl ExtCsdAccess for Watching<'_> {
    fn read_ext_csd(&mut self) -> std::io::Result<[u8; 512]> {
        self.inner.read_ext_csd()
    }
    fn write_byte(&mut self, index: u8, value: u8) -> std::io::Result<()> {
        self.seen.borrow_mut().push(
            self.files
                .map(|p| std::fs::read_to_string(p).unwrap().trim().to_owned()),
        );
        self.inner.write_byte(index, value)
    }
}

#[test]
fn force_ro_is_lowered_for_the_writes_only_and_is_back_at_every_switch_and_after_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    let files = [dir.path().join("ro0"), dir.path().join("ro1")];
    for f in &files {
        std::fs::write(f, "1\n").unwrap();
    }
    let seen = RefCell::new(Vec::new());
    let pair = medium::emmc_pair(Some(&tampered(0)), Some(image(1)));
    let [b0, b1]: [MemDevice; 2] = pair;
    let ext = Watching {
        inner: MemExtCsd::new(0x48),
        files: [&files[0], &files[1]],
        seen: &seen,
    };
    let mut dev = AbDevice::new(b0, b1, ext, BootPartition::Boot0, board())
        .with_force_ro([Some(files[0].clone()), Some(files[1].clone())]);
    // Running copy 2 (boot0's FIT is damaged): switch, write boot0, switch.
    let running = Running {
        slot: Some(boot_core::policy::Slot::Secondary),
        booted: Some(identity(image(1))),
    };
    let out = ab::update(
        &mut dev,
        board(),
        &fuses(),
        image(2).to_vec(),
        running,
        &ExecOptions::default(),
        &mut NoProgress,
    )
    .unwrap();
    assert_eq!(out.summary.switches, 2);
    assert_eq!(*seen.borrow(), vec![["1".to_owned(), "1".to_owned()]; 2]);
    for f in &files {
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "1");
    }
    // A failing write: force_ro is put back by the run.
    struct Failing(MemDevice);
    impl ubootctl::blockdev::BlockDevice for Failing {
        fn size(&self) -> u64 {
            self.0.size()
        }
        fn logical_block_size(&self) -> u32 {
            512
        }
        fn read_at(&self, o: u64, b: &mut [u8]) -> std::io::Result<()> {
            self.0.read_at(o, b)
        }
        fn write_at(&mut self, _: u64, _: &[u8]) -> std::io::Result<()> {
            Err(std::io::Error::other("simulated I/O error"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let [b0, b1] = medium::emmc_pair(Some(image(1)), None).map(Failing);
    let mut dev = AbDevice::new(b0, b1, MemExtCsd::new(0x48), BootPartition::Boot0, board())
        .with_force_ro([Some(files[0].clone()), Some(files[1].clone())]);
    let r = ab::update(
        &mut dev,
        board(),
        &fuses(),
        image(2).to_vec(),
        Some(boot_core::policy::Slot::Primary),
        &ExecOptions::default(),
        &mut NoProgress,
    );
    assert!(r.is_err());
    assert_eq!(
        dev.ext_csd().partition_config().0,
        0x48,
        "no switch after a failed write"
    );
    for f in &files {
        assert_eq!(std::fs::read_to_string(f).unwrap().trim(), "1");
    }
}

#[test]
fn ab_status_of_a_degraded_pair_advises_the_ab_commands() {
    // boot1 enabled holds the running image, boot0 a stale one: degraded, sync advised.
    let f = Fake::new(Some(image(0)), Some(image(1)), 0x50);
    let st = f.run(&["status", "--emmc-ab", "--json"], "mmcblk2");
    assert_eq!(st.status.code(), Some(1), "{}", stderr(&st));
    let v: serde_json::Value = serde_json::from_str(&stdout(&st)).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["secondary_matches_primary"], false);
    assert!(v["sit"].as_str().unwrap().starts_with("implied"), "{v}");
    let actions = v["actions"].to_string();
    assert!(actions.contains("--emmc-ab"), "{actions}");
    // Unequal partitions are no A/B pair: refused, naming both sizes.
    let g = Fake::new(Some(image(1)), None, 0x48);
    std::fs::write(g.path("dev/mmcblk2boot1"), vec![0u8; 2 << 20]).unwrap();
    let st = g.run(&["status", "--emmc-ab"], "mmcblk2");
    assert_eq!(st.status.code(), Some(1), "{}", stderr(&st));
    assert!(
        stderr(&st).contains("equal boot partitions"),
        "{}",
        stderr(&st)
    );
}

#[test]
fn the_user_area_of_an_emmc_booting_from_a_boot_partition_is_refused() {
    let f = Fake::new(Some(image(1)), None, 0x48);
    let new = f.new_bin();
    let before = std::fs::read(f.path("dev/mmcblk2")).unwrap();
    let out = f.run(&["update", &new, "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("boots from boot0") && err.contains("--emmc-ab"),
        "{err}"
    );
    assert_eq!(std::fs::read(f.path("dev/mmcblk2")).unwrap(), before);
}

impl Fake {
    /// Writes `bytes` at `offset` of `/dev/mmcblk2{part}`.
    fn patch(&self, part: &str, offset: usize, bytes: &[u8]) {
        let p = self.path(&format!("dev/mmcblk2{part}"));
        let mut b = std::fs::read(&p).unwrap();
        b[offset..offset + bytes.len()].copy_from_slice(bytes);
        std::fs::write(p, b).unwrap();
    }

    fn sit_sector(&self, part: &str) -> Vec<u8> {
        std::fs::read(self.path(&format!("dev/mmcblk2{part}"))).unwrap()[0x8200..0x8400].to_vec()
    }
}

/// A layout (a) table fitted to a 4 MiB boot partition: the secondary at 0x204200.
fn stale_sit() -> Vec<u8> {
    imx_hab::sit::build_sector(0xFDF).to_vec()
}

#[test]
fn ab_status_warns_of_a_stale_sit_and_every_partition_written_or_enabled_is_cleared() {
    // boot0 (enabled, booting fine) and boot1 both carry a layout (a) table.
    let f = Fake::new(Some(image(1)), Some(image(0)), 0x48);
    f.patch("boot0", 0x8200, &stale_sit());
    f.patch("boot1", 0x8200, &stale_sit());
    let st = f.run(&["status", "--emmc-ab", "--json"], "mmcblk2");
    let v: serde_json::Value =
        serde_json::from_str(&stdout(&st)).unwrap_or_else(|e| panic!("{e}: {}", stderr(&st)));
    let w = v["emmc"]["warnings"].to_string();
    assert!(
        w.contains("boot0 (enabled) holds a valid SIT") && w.contains("0xfdf"),
        "{w}"
    );
    assert!(w.contains("boot1 holds a valid SIT"), "{w}");
    let text = stdout(&f.run(&["status", "--emmc-ab"], "mmcblk2"));
    assert!(
        text.contains("warning: boot0 (enabled) holds a valid SIT"),
        "{text}"
    );
    // The dry run shows the clear of boot1's sector 0x41 before its copy, read back.
    let new = f.new_bin();
    let dry = stdout(&f.run(
        &["update", &new, "--emmc-ab", "--running", "1", "--dry-run"],
        "mmcblk2",
    ));
    let clear = dry
        .find("write SIT table at 0x408200+0x200")
        .unwrap_or_else(|| panic!("{dry}"));
    assert!(
        clear < dry.find("read back SIT at 0x408200").unwrap(),
        "{dry}"
    );
    assert!(
        dry.find("read back SIT at 0x408200").unwrap()
            < dry.find("write secondary invalidate").unwrap(),
        "{dry}"
    );
    assert_eq!(
        f.sit_sector("boot1"),
        stale_sit(),
        "a dry run writes nothing"
    );
    // The update writes boot1 (its table cleared) and enables it; boot0 is not written.
    let before0 = std::fs::read(f.path("dev/mmcblk2boot0")).unwrap();
    let out = f.run(&["update", &new, "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.pc(), 0x50);
    assert_eq!(f.sit_sector("boot1"), vec![0u8; 512]);
    assert_eq!(std::fs::read(f.path("dev/mmcblk2boot0")).unwrap(), before0);
    // The sync after the reboot rewrites boot0 and clears its table: no warning left.
    let out = f.run(&["sync", "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.sit_sector("boot0"), vec![0u8; 512]);
    let st = f.run(&["status", "--emmc-ab", "--json"], "mmcblk2");
    let v: serde_json::Value = serde_json::from_str(&stdout(&st)).unwrap();
    assert!(v["emmc"].get("warnings").is_none(), "{v}");
    assert_eq!(v["next_boot"], 1);
}

#[test]
fn a_sync_of_an_equal_copy_still_clears_a_stale_sit_of_the_partition_it_would_write() {
    let f = Fake::new(Some(image(1)), Some(image(1)), 0x48);
    f.patch("boot1", 0x8200, &stale_sit());
    let out = f.run(&["sync", "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("wrote SIT (512 bytes"),
        "{}",
        stdout(&out)
    );
    assert_eq!(f.sit_sector("boot1"), vec![0u8; 512]);
    assert_eq!(f.pc(), 0x48);
}

#[test]
fn the_rom_starting_the_enabled_partitions_stale_sit_secondary_is_refused() {
    // boot0 enabled: no copy at 0x8400 (its SPL fails), but a valid layout (a) table whose
    // secondary (0x204200) holds a factory image: the ROM starts that, which is neither copy of
    // the A/B layout. boot1 holds an authentic copy.
    let f = Fake::new(None, Some(image(1)), 0x48);
    f.patch("boot0", 0x8200, &stale_sit());
    f.patch("boot0", 0x204200, image(0));
    let files =
        || ["boot0", "boot1"].map(|p| std::fs::read(f.path(&format!("dev/mmcblk2{p}"))).unwrap());
    let before = files();
    let new = f.new_bin();
    for args in [
        &["update", &new, "--emmc-ab", "--running", "2"][..],
        &["update", &new, "--emmc-ab", "--running", "1"],
        &["sync", "--emmc-ab", "--running", "2"],
        &["update", &new, "--emmc-ab", "--running", "2", "--dry-run"],
    ] {
        let out = f.run(args, "mmcblk2");
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("stale layout (a) table")
                && err.contains("starts that table's secondary")
                && err.contains("mmc bootpart enable 2 1"),
            "{args:?}: {err}"
        );
        assert_eq!(files(), before, "{args:?}: nothing written");
        assert_eq!(f.pc(), 0x48);
        assert_eq!(
            (f.force_ro("boot0"), f.force_ro("boot1")),
            ("1".into(), "1".into())
        );
    }
    // status: not healthy, the same advice.
    let st = f.run(&["status", "--emmc-ab", "--json"], "mmcblk2");
    assert_eq!(st.status.code(), Some(1), "{}", stderr(&st));
    let v: serde_json::Value = serde_json::from_str(&stdout(&st)).unwrap();
    assert_eq!(v["healthy"], false);
    assert!(
        v["actions"].to_string().contains("mmc bootpart enable 2 1"),
        "{v}"
    );
    // Following it (boot1 enabled by hand): the update rewrites boot0, clearing its table.
    std::fs::write(f.path("ext_csd"), {
        let mut e = [0u8; 512];
        e[179] = 0x50;
        e
    })
    .unwrap();
    let out = f.run(&["update", &new, "--emmc-ab", "--running", "1"], "mmcblk2");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(f.sit_sector("boot0"), vec![0u8; 512]);
    assert!(f.holds("boot0", image(2)));
    assert_eq!(f.pc(), 0x48);
}
