//! The target of `update` / `sync` as the kernel describes it (issue 5, items 2 and 4): eMMC boot
//! partitions (`force_ro` lowered for the writes and restored on every way out), partitions and
//! devices in use (refused, byte-identical afterwards). The kernel's view comes from fake
//! `/sys` and `/proc` trees passed with the hidden `--sysfs-root` / `--proc-root` options; a
//! regular file named like the device stands for it. A last test mounts a real loop device.

mod medium;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use boot_core::policy::Slot;
use medium::{Layout, board, fuses, image, pki, tampered, write_layout};
use ubootctl::blockdev::{BlockDevice, FileDevice, MemDevice};
use ubootctl::exec::{ExecOptions, NoProgress, execute};
use ubootctl::media::{MediaState, Medium, layout_for, predict};
use ubootctl::plan::{NewImage, plan_update};
use ubootctl::sysblock::ForceRoGuard;

const PRIMARY: u64 = 0x8400;
/// The secondary in a boot partition of the test size: layout (a) fits the table to the
/// partition (`MediaLayout::in_boot_partition`, as the shim reads it).
fn secondary() -> u64 {
    let l = board()
        .media
        .in_boot_partition(medium::DEVICE as u64)
        .unwrap();
    l.secondary_offset(l.standard_first_sector).unwrap()
}

/// A fake system: `sys/`, `proc/`, `dev/` under one temporary directory.
struct Fake {
    dir: tempfile::TempDir,
    fuses: PathBuf,
    new: PathBuf,
    bad: PathBuf,
}

impl Fake {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "sys/class/block",
            "sys/block",
            "sys/dev/block",
            "proc/self",
            "dev",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let fuses = dir.path().join("srk_fuse.bin");
        std::fs::write(&fuses, pki(0).srk_hash().unwrap()).unwrap();
        let new = dir.path().join("new.bin");
        std::fs::write(&new, image(2)).unwrap();
        let bad = dir.path().join("bad.bin");
        std::fs::write(&bad, tampered(2)).unwrap();
        let f = Fake {
            dir,
            fuses,
            new,
            bad,
        };
        f.mountinfo("22 27 0:21 / /proc rw,relatime - proc proc rw\n");
        std::fs::write(
            f.path("proc/swaps"),
            "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n",
        )
        .unwrap();
        f
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn mountinfo(&self, text: &str) {
        std::fs::write(self.path("proc/self/mountinfo"), text).unwrap();
    }

    /// A disk (or boot partition) `name` with device number `dev` in sysfs, and its medium as
    /// `dev/NAME` holding the running primary only.
    fn disk(&self, name: &str, dev: &str) -> PathBuf {
        let d = self.path(&format!("sys/devices/mmc/{name}"));
        std::fs::create_dir_all(d.join("holders")).unwrap();
        std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
        std::os::unix::fs::symlink(&d, self.path(&format!("sys/class/block/{name}"))).unwrap();
        std::os::unix::fs::symlink(&d, self.path(&format!("sys/block/{name}"))).unwrap();
        let medium = self.path(&format!("dev/{name}"));
        std::fs::write(&medium, vec![0u8; medium::DEVICE]).unwrap();
        // EXT_CSD of the eMMC: a boot partition given as the device is the enabled one.
        let mut ext_csd = [0u8; 512];
        ext_csd[179] = if name.ends_with("boot1") { 0x50 } else { 0x48 };
        std::fs::write(self.path("ext_csd"), ext_csd).unwrap();
        let mut fd = FileDevice::open(&medium).unwrap();
        write_layout(
            &mut fd,
            Layout {
                primary: Some(image(1)),
                secondary: None,
                sit: false,
            },
        );
        medium
    }

    /// Partition `number` of `disk`, named `name`, with device number `dev`; its medium file
    /// (`dev/NAME`) is a copy of the disk's.
    fn partition(&self, disk: &str, name: &str, number: u32, dev: &str) -> PathBuf {
        let d = self.path(&format!("sys/devices/mmc/{disk}/{name}"));
        std::fs::create_dir_all(d.join("holders")).unwrap();
        std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
        std::fs::write(d.join("partition"), format!("{number}\n")).unwrap();
        std::os::unix::fs::symlink(&d, self.path(&format!("sys/class/block/{name}"))).unwrap();
        let medium = self.path(&format!("dev/{name}"));
        std::fs::copy(self.path(&format!("dev/{disk}")), &medium).unwrap();
        medium
    }

    fn force_ro(&self, name: &str) -> PathBuf {
        self.path(&format!("sys/block/{name}/force_ro"))
    }

    /// `ubootctl CMD [IMAGE] --device DEV` with the fake roots and `--running 1`.
    fn run(&self, cmd: &str, image: Option<&Path>, device: &Path, extra: &[&str]) -> Output {
        let mut c = self.command(cmd, image, device, extra);
        c.output().unwrap()
    }

    fn command(&self, cmd: &str, image: Option<&Path>, device: &Path, extra: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_ubootctl"));
        c.arg(cmd);
        if let Some(i) = image {
            c.arg(i);
        }
        c.arg("--device")
            .arg(device)
            .args(["--board", "qemu-imx8mp", "--running", "1", "--srk-hash"])
            .arg(&self.fuses)
            .arg("--sysfs-root")
            .arg(self.path("sys"))
            .arg("--proc-root")
            .arg(self.path("proc"))
            // The fake sysfs gives every test the same device numbers: each test locks in
            // its own directory.
            .arg("--lock-dir")
            .arg(self.path("locks"))
            .arg("--test-ext-csd")
            .arg(self.path("ext_csd"))
            .args(extra);
        c
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

fn text(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap().trim().to_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

#[test]
fn boot_partition_force_ro_is_0_during_every_write_and_restored_afterwards() {
    let f = Fake::new();
    let dev = f.disk("mmcblk2boot0", "179:8");
    std::fs::write(f.force_ro("mmcblk2boot0"), "1\n").unwrap();
    let out = f.run("update", Some(&f.new), &dev, &["--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = json_lines(&out);
    // Lowered before the first event of the execution, restored after the last.
    assert_eq!(lines[0]["event"], "force_ro");
    assert_eq!(lines[0]["previous"], "1");
    assert_eq!(lines[0]["value"], "0");
    let writes: Vec<_> = lines
        .iter()
        .filter(|v| v["event"] == "step" && v["action"].as_str().unwrap().starts_with("write"))
        .collect();
    assert!(writes.len() >= 8, "both copies and the SIT are written");
    for w in &writes {
        assert_eq!(w["force_ro"], "0", "force_ro read during {}", w["action"]);
    }
    let restored = lines.iter().position(|v| v["restored"] == true).unwrap();
    let done = lines.iter().position(|v| v["event"] == "done").unwrap();
    assert!(restored > done);
    assert_eq!(lines.last().unwrap()["event"], "result");
    assert_eq!(text(&f.force_ro("mmcblk2boot0")), "1");
    // Installed at the board's boot-partition offsets (8M Mini layout: as in the user area).
    let bytes = read(&dev);
    assert_eq!(&bytes[PRIMARY as usize..][..image(2).len()], image(2));
    assert_eq!(&bytes[secondary() as usize..][..image(1).len()], image(1));
    // Already installed: nothing written, force_ro not touched at all.
    std::fs::write(f.force_ro("mmcblk2boot0"), "1\n").unwrap();
    let again = f.run("update", Some(&f.new), &dev, &["--json"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(json_lines(&again).iter().all(|v| v["event"] != "force_ro"));
    assert_eq!(read(&dev), bytes);
}

#[test]
fn boot_partition_refusals_and_dry_runs_leave_force_ro_and_the_device_untouched() {
    let f = Fake::new();
    let dev = f.disk("mmcblk2boot1", "179:16");
    let ro = f.force_ro("mmcblk2boot1");
    std::fs::write(&ro, "1\n").unwrap();
    let before = read(&dev);
    let out = f.run("update", Some(&f.bad), &dev, &["--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("nothing written"), "{}", stderr(&out));
    assert!(json_lines(&out).iter().all(|v| v["event"] != "force_ro"));
    assert_eq!(text(&ro), "1");
    assert_eq!(read(&dev), before);
    let dry = f.run("update", Some(&f.new), &dev, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(0), "{}", stderr(&dry));
    assert_eq!(text(&ro), "1");
    assert_eq!(read(&dev), before);
}

#[test]
fn boot_partition_closed_stdout_stops_cleanly_before_any_write_and_restores_force_ro() {
    // The JSON output goes to a closed pipe: the first line printed once force_ro is lowered
    // fails. That is not a panic (exit 101) but a recorded output error: the execution stops
    // at its first stop point, before any write, force_ro is put back, and the exit code is 2.
    let f = Fake::new();
    let dev = f.disk("mmcblk0boot0", "179:32");
    let ro = f.force_ro("mmcblk0boot0");
    std::fs::write(&ro, "1\n").unwrap();
    let before = read(&dev);
    let mut child = f
        .command("update", Some(&f.new), &dev, &["--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("write to standard output"), "{err}");
    assert_eq!(text(&ro), "1", "{err}");
    assert_eq!(read(&dev), before);
}

/// Spawns `update --json` on a fresh boot partition with a pause before every step, reads
/// its JSON lines until the step `index` has been announced (the secondary is being written),
/// then calls `interrupt` with the child and the line reader; returns the output once the
/// child is done (stdout as far as read), the device and its `force_ro` file.
fn interrupted_update(
    f: &Fake,
    index: u64,
    interrupt: impl FnOnce(
        &std::process::Child,
        &mut Option<std::io::BufReader<std::process::ChildStdout>>,
    ),
) -> (
    std::process::ExitStatus,
    String,
    Vec<serde_json::Value>,
    PathBuf,
    PathBuf,
) {
    use std::io::BufRead;
    let dev = f.disk("mmcblk2boot1", "179:16");
    let ro = f.force_ro("mmcblk2boot1");
    std::fs::write(&ro, "1\n").unwrap();
    let mut child = f
        .command(
            "update",
            Some(&f.new),
            &dev,
            &["--json", "--test-step-delay-ms", "150"],
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut reader = Some(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        let n = reader.as_mut().unwrap().read_line(&mut l).unwrap();
        assert!(n > 0, "the update ended before step {index}: {lines:?}");
        let v: serde_json::Value = serde_json::from_str(&l).unwrap();
        let here = v["event"] == "step" && v["index"] == index;
        lines.push(v);
        if here {
            break;
        }
    }
    // The step announced is a write inside the secondary copy (the copy runs to step 7).
    assert_eq!(
        lines.last().unwrap()["action"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("write")
    );
    interrupt(&child, &mut reader);
    if let Some(r) = reader {
        for l in r.lines() {
            lines.push(serde_json::from_str(&l.unwrap()).unwrap());
        }
    }
    let out = child.wait_with_output().unwrap();
    (out.status, stderr(&out), lines, dev, ro)
}

/// After a run stopped between copies: the secondary is complete and verified behind no SIT
/// yet, the primary untouched, the device boots the primary, and a re-run finishes.
fn assert_stopped_after_the_secondary(f: &Fake, dev: &Path, ro: &Path) {
    let bytes = read(dev);
    assert_eq!(
        &bytes[PRIMARY as usize..][..image(1).len()],
        image(1),
        "primary untouched"
    );
    assert_eq!(
        &bytes[secondary() as usize..][..image(1).len()],
        image(1),
        "secondary complete"
    );
    let mem = MemDevice::from_bytes(bytes);
    assert_eq!(predict(&mem, board(), &fuses()).slot, Some(Slot::Primary));
    let again = f.run("update", Some(&f.new), dev, &[]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert_eq!(text(ro), "1");
    let bytes = read(dev);
    assert_eq!(&bytes[PRIMARY as usize..][..image(2).len()], image(2));
    assert_eq!(&bytes[secondary() as usize..][..image(1).len()], image(1));
}

#[test]
fn sigterm_during_a_copy_completes_that_copy_then_stops_restoring_force_ro() {
    let f = Fake::new();
    let (status, err, lines, dev, ro) = interrupted_update(&f, 2, |child, _| {
        let st = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    });
    assert_eq!(status.code(), Some(143), "128 + SIGTERM: {err}");
    assert!(err.contains("SIGTERM received"), "{err}");
    assert!(err.contains("stopped before step 9"), "{err}");
    // The copy in progress was finished and read back; nothing after it was started.
    let verified: Vec<_> = lines.iter().filter(|v| v["event"] == "verified").collect();
    assert_eq!(verified.len(), 1, "{lines:?}");
    assert_eq!(verified[0]["region"], "secondary");
    assert!(
        lines
            .iter()
            .all(|v| v["index"].as_u64().is_none_or(|i| i <= 7)),
        "{lines:?}"
    );
    assert_eq!(lines.last().unwrap()["restored"], true, "{lines:?}");
    assert_eq!(text(&ro), "1");
    assert_stopped_after_the_secondary(&f, &dev, &ro);
}

#[test]
fn stdout_closed_during_a_copy_completes_that_copy_then_exits_2() {
    let f = Fake::new();
    let (status, err, lines, dev, ro) = interrupted_update(&f, 2, |_, reader| {
        drop(reader.take());
    });
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("write to standard output"), "{err}");
    assert!(err.contains("stopped before step 9"), "{err}");
    assert!(
        lines.iter().all(|v| v["event"] != "verified"),
        "read no further"
    );
    assert_eq!(text(&ro), "1");
    assert_stopped_after_the_secondary(&f, &dev, &ro);
}

/// A device whose every write checks that `force_ro` reads 0, and that fails at write `fail_at`.
struct WatchedDevice<'a> {
    inner: MemDevice,
    force_ro: &'a Path,
    writes: usize,
    fail_at: usize,
}

impl BlockDevice for WatchedDevice<'_> {
    fn size(&self) -> u64 {
        self.inner.size()
    }
    fn logical_block_size(&self) -> u32 {
        self.inner.logical_block_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        assert_eq!(
            text(self.force_ro),
            "0",
            "write at {offset:#x} while read-only"
        );
        self.writes += 1;
        if self.writes == self.fail_at {
            return Err(std::io::Error::other("simulated I/O error"));
        }
        self.inner.write_at(offset, data)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn library_guard_holds_force_ro_at_0_for_every_write_and_restores_it_after_a_failed_step() {
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("force_ro");
    let layout = layout_for(board(), Medium::BootPartition).unwrap();
    assert_eq!(
        layout.primary_offset(),
        PRIMARY,
        "8M Mini layout in boot0/boot1"
    );
    for fail_at in [0, 3] {
        std::fs::write(&ro, "1\n").unwrap();
        let mut dev = WatchedDevice {
            inner: medium::medium(Layout {
                primary: Some(image(1)),
                secondary: None,
                sit: false,
            }),
            force_ro: &ro,
            writes: 0,
            fail_at,
        };
        let new = NewImage::check(image(2).to_vec(), board(), &fuses()).unwrap();
        let state = MediaState::read(&dev, board(), &fuses()).unwrap();
        let plan = plan_update(&state, &new, Some(Slot::Primary), board()).unwrap();
        let result = {
            let _guard = ForceRoGuard::lower(&ro).unwrap();
            execute(&mut dev, &plan, &ExecOptions::default(), &mut NoProgress)
        };
        assert_eq!(result.is_ok(), fail_at == 0);
        assert_eq!(text(&ro), "1", "restored (fail_at {fail_at})");
    }
}

#[test]
fn a_partition_is_refused_naming_the_whole_disk_and_left_byte_identical() {
    let f = Fake::new();
    f.disk("mmcblk1", "179:0");
    let part = f.partition("mmcblk1", "mmcblk1p1", 1, "179:1");
    let before = read(&part);
    for (cmd, img) in [("update", Some(f.new.as_path())), ("sync", None)] {
        let out = f.run(cmd, img, &part, &[]);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
        let e = stderr(&out);
        assert!(e.contains("is a partition (mmcblk1p1)"), "{e}");
        assert!(e.contains("raw device"), "{e}");
        assert!(e.contains("--device /dev/mmcblk1"), "{e}");
        assert!(e.contains("nothing written"), "{e}");
        assert_eq!(read(&part), before);
    }
}

#[test]
fn a_mounted_device_or_partition_swap_or_holder_is_refused_naming_it() {
    let f = Fake::new();
    let disk = f.disk("mmcblk1", "179:0");
    f.partition("mmcblk1", "mmcblk1p1", 1, "179:1");
    f.partition("mmcblk1", "mmcblk1p2", 2, "179:2");
    let before = read(&disk);
    let base = "22 27 0:21 / /proc rw,relatime - proc proc rw\n";
    let cases = [
        (
            // A partition, by device number; the mount point has an escaped space.
            format!(
                "{base}40 27 179:2 / /mnt/my\\040data rw,relatime shared:5 - ext4 /dev/mmcblk1p2 rw\n"
            ),
            "mmcblk1p2 is mounted on /mnt/my data",
        ),
        (
            // The whole disk, by source only (btrfs reports an anonymous device number).
            format!("{base}41 27 0:55 / /data rw - btrfs /dev/mmcblk1 rw\n"),
            "mmcblk1 is mounted on /data",
        ),
    ];
    for (info, expect) in &cases {
        f.mountinfo(info);
        for (cmd, img) in [("update", Some(f.new.as_path())), ("sync", None)] {
            let out = f.run(cmd, img, &disk, &[]);
            assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
            assert!(stderr(&out).contains(expect), "{cmd}: {}", stderr(&out));
            assert!(
                stderr(&out).contains("unmount it first"),
                "{}",
                stderr(&out)
            );
            assert_eq!(read(&disk), before);
        }
    }
    // Without /proc/self/mountinfo, /proc/mounts is read.
    std::fs::remove_file(f.path("proc/self/mountinfo")).unwrap();
    std::fs::write(f.path("proc/mounts"), "/dev/mmcblk1p1 /boot vfat rw 0 0\n").unwrap();
    let out = f.run("update", Some(&f.new), &disk, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("mmcblk1p1 is mounted on /boot"),
        "{}",
        stderr(&out)
    );
    // Neither: the check cannot be made, which is an error (exit 2), not a guess.
    std::fs::remove_file(f.path("proc/mounts")).unwrap();
    let out = f.run("update", Some(&f.new), &disk, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("mountinfo"), "{}", stderr(&out));
    f.mountinfo(base);
    // Swap on a partition.
    std::fs::write(
        f.path("proc/swaps"),
        "Filename Type Size Used Priority\n/dev/mmcblk1p1 partition 1024 0 -2\n",
    )
    .unwrap();
    let out = f.run("update", Some(&f.new), &disk, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("mmcblk1p1 is an active swap area"),
        "{}",
        stderr(&out)
    );
    std::fs::write(f.path("proc/swaps"), "Filename Type Size Used Priority\n").unwrap();
    // A device-mapper holder on a partition.
    std::fs::create_dir(f.path("sys/devices/mmc/mmcblk1/mmcblk1p2/holders/dm-0")).unwrap();
    let out = f.run("update", Some(&f.new), &disk, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("held by dm-0"), "{}", stderr(&out));
    assert_eq!(read(&disk), before);
    // Nothing in use any more: the same command installs.
    std::fs::remove_dir(f.path("sys/devices/mmc/mmcblk1/mmcblk1p2/holders/dm-0")).unwrap();
    let out = f.run("update", Some(&f.new), &disk, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(&read(&disk)[PRIMARY as usize..][..image(2).len()], image(2));
}

/// Unmounts on drop.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_really_mounted_loop_device_is_refused_with_the_real_proc_and_sys() {
    let dir = tempfile::tempdir().unwrap();
    let backing = dir.path().join("fs.img");
    std::fs::write(&backing, vec![0u8; medium::DEVICE]).unwrap();
    let skip = |why: String| println!("SKIPPED a_really_mounted_loop_device_is_refused: {why}");
    let lo = match medium::Loop::attach(&backing) {
        Ok(l) => l,
        Err(why) => return skip(why),
    };
    match Command::new("mkfs.ext2")
        .args(["-q", "-F"])
        .arg(&lo.0)
        .output()
    {
        Ok(o) if o.status.success() => {}
        Ok(o) => return skip(format!("mkfs.ext2: {}", String::from_utf8_lossy(&o.stderr))),
        Err(e) => return skip(format!("cannot run mkfs.ext2: {e}")),
    }
    let mnt = dir.path().join("mnt point");
    std::fs::create_dir(&mnt).unwrap();
    match Command::new("mount").arg(&lo.0).arg(&mnt).output() {
        Ok(o) if o.status.success() => {}
        Ok(o) => return skip(format!("mount: {}", String::from_utf8_lossy(&o.stderr))),
        Err(e) => return skip(format!("cannot run mount: {e}")),
    }
    let m = Mounted(mnt.clone());
    let fuses = dir.path().join("srk_fuse.bin");
    std::fs::write(&fuses, pki(0).srk_hash().unwrap()).unwrap();
    let new = dir.path().join("new.bin");
    std::fs::write(&new, image(2)).unwrap();
    let before = read(&backing);
    let out = Command::new(env!("CARGO_BIN_EXE_ubootctl"))
        .arg("update")
        .arg(&new)
        .args([
            "--device",
            &lo.0,
            "--board",
            "qemu-imx8mp",
            "--running",
            "1",
        ])
        .arg("--srk-hash")
        .arg(&fuses)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("is mounted on {}", mnt.display())),
        "{}",
        stderr(&out)
    );
    assert!(read(&backing) == before, "byte-identical");
    drop(m);
    drop(lo);
}

/// `commit` writes no block of the medium: a disk whose partition is mounted (the usual root
/// file system on the same eMMC) is read, not refused; a partition is still refused, as it is
/// not where the ROM reads.
#[test]
fn commit_reads_a_disk_with_a_mounted_partition_and_refuses_a_partition() {
    let f = Fake::new();
    let disk = f.disk("mmcblk1", "179:0");
    let part = f.partition("mmcblk1", "mmcblk1p1", 1, "179:1");
    f.mountinfo(
        "22 27 0:21 / /proc rw,relatime - proc proc rw\n40 1 179:1 / / rw - ext4 /dev/mmcblk1p1 rw\n",
    );
    let fuses = f.path("fuses.bin");
    std::fs::write(&fuses, medium::fuse_block(0)).unwrap();
    let mem = f.path("mem.bin");
    std::fs::write(&mem, medium::mem_image(None)).unwrap();
    let commit = |device: &Path| {
        Command::new(env!("CARGO_BIN_EXE_ubootctl"))
            .arg("commit")
            .arg("--device")
            .arg(device)
            .args(["--board", "qemu-imx8mp", "--dry-run", "--fuses"])
            .arg(&fuses)
            .arg("--mem")
            .arg(&mem)
            .arg("--sysfs-root")
            .arg(f.path("sys"))
            .arg("--proc-root")
            .arg(f.path("proc"))
            .arg("--lock-dir")
            .arg(f.path("locks"))
            .output()
            .unwrap()
    };
    // The memory holds no boot record: the commit is refused for that, not for the mount.
    let out = commit(&disk);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no boot record") && !stderr(&out).contains("mounted"),
        "{}",
        stderr(&out)
    );
    let out = commit(&part);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is a partition (mmcblk1p1)"),
        "{}",
        stderr(&out)
    );
}
