//! One lock per storage (issue 12 item 4, `ubootctl::storage_lock`): two paths to the same bytes
//! exclude each other (hard link, symlink, a loop device and its backing file in both orders, a
//! partition and its disk), different storage does not, and dropping a guard releases it. The
//! lock directory is a temporary one; sysfs is the real one for real loop devices (skipped, with
//! the reason printed, only when the kernel refuses to set one up) and a fake tree otherwise.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ubootctl::storage_lock::{self, Key, LockError, LockRoots, StorageGuard};
use ubootctl::sysblock::SysRoots;

/// A temporary directory with `locks/` as the lock directory.
struct Env {
    dir: tempfile::TempDir,
    roots: LockRoots,
}

impl Env {
    /// The real sysfs.
    fn real() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let roots = LockRoots::new(SysRoots::default(), dir.path().join("run/locks"));
        Env { dir, roots }
    }

    /// A fake sysfs under `sys/`.
    fn fake() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for d in [
            "sys/class/block",
            "sys/block",
            "sys/dev/block",
            "proc",
            "dev",
        ] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let sys = SysRoots {
            sys: dir.path().join("sys"),
            proc: dir.path().join("proc"),
        };
        let roots = LockRoots::new(sys, dir.path().join("run/locks"));
        Env { dir, roots }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A 1 MiB regular file.
    fn file(&self, rel: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
        p
    }

    fn lock(&self, p: &Path) -> Result<StorageGuard, LockError> {
        storage_lock::lock(p, &self.roots)
    }

    /// A fake block device `name` (`dev` = `MAJ:MIN`) under `parent` (a fake sysfs directory,
    /// `None` for a disk), with `dev/NAME` standing for its node.
    fn fake_dev(&self, name: &str, dev: &str, parent: Option<&str>) -> PathBuf {
        let d = match parent {
            None => self.path(&format!("sys/devices/virtual/block/{name}")),
            Some(p) => self.path(&format!("sys/devices/virtual/block/{p}/{name}")),
        };
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("dev"), format!("{dev}\n")).unwrap();
        std::os::unix::fs::symlink(&d, self.path(&format!("sys/class/block/{name}"))).unwrap();
        std::os::unix::fs::symlink(&d, self.path(&format!("sys/dev/block/{dev}"))).unwrap();
        match parent {
            None => {
                std::os::unix::fs::symlink(&d, self.path(&format!("sys/block/{name}"))).unwrap()
            }
            Some(_) => std::fs::write(d.join("partition"), "1\n").unwrap(),
        }
        self.file(&format!("dev/{name}"))
    }
}

/// The error of a lock that must be refused, with a message naming `holder`.
#[track_caller]
fn busy(r: Result<StorageGuard, LockError>, holder: &str) -> String {
    match r {
        Err(e @ LockError::Busy { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("another ubootctl"), "{msg}");
            assert!(msg.contains(holder), "{msg} does not name {holder}");
            msg
        }
        Err(e) => panic!("expected a busy lock, got: {e}"),
        Ok(g) => panic!("locked {:?} twice", g.storage()),
    }
}

fn rdev(p: &Path) -> (u32, u32) {
    let r = std::fs::metadata(p).unwrap().rdev();
    (rustix::fs::major(r), rustix::fs::minor(r))
}

#[test]
fn a_hard_link_and_a_symlink_lock_the_same_file() {
    let env = Env::real();
    let img = env.file("sd.img");
    let hard = env.path("hard.img");
    std::fs::hard_link(&img, &hard).unwrap();
    let soft = env.path("soft.img");
    std::os::unix::fs::symlink(&img, &soft).unwrap();

    let g = env.lock(&img).unwrap();
    let msg = busy(env.lock(&hard), &img.display().to_string());
    assert!(
        msg.contains(&format!("(pid {})", std::process::id())),
        "{msg}"
    );
    busy(env.lock(&soft), &img.display().to_string());
    busy(storage_lock::lock_shared(&soft, &env.roots), "sd.img");
    drop(g);

    // And the other way round, through the symlink first.
    let g = env.lock(&soft).unwrap();
    busy(env.lock(&img), "soft.img");
    busy(env.lock(&hard), "soft.img");
    drop(g);

    // The directory is private, one file per key.
    let dir = &env.roots.lock_dir;
    let mode = std::fs::metadata(dir).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700, "{mode:o}");
    let m = std::fs::metadata(&img).unwrap();
    let name = format!(
        "file-{}-{}-{}",
        rustix::fs::major(m.dev()),
        rustix::fs::minor(m.dev()),
        m.ino()
    );
    let names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [name]);
}

#[test]
fn different_files_do_not_conflict_and_shared_locks_share() {
    let env = Env::real();
    let a = env.file("a.img");
    let b = env.file("b.img");
    let ga = env.lock(&a).unwrap();
    let gb = env.lock(&b).unwrap();
    assert_ne!(ga.keys().collect::<Vec<_>>(), gb.keys().collect::<Vec<_>>());
    drop((ga, gb));
    let s1 = storage_lock::lock_shared(&a, &env.roots).unwrap();
    let s2 = storage_lock::lock_shared(&a, &env.roots).unwrap();
    busy(env.lock(&a), "a.img");
    drop((s1, s2));
    env.lock(&a).unwrap();
}

#[test]
fn dropping_a_guard_releases_it() {
    let env = Env::real();
    let img = env.file("sd.img");
    let g = env.lock(&img).unwrap();
    busy(env.lock(&img), "sd.img");
    drop(g);
    let g = env.lock(&img).unwrap();
    busy(env.lock(&img), "sd.img");
    g.release();
    env.lock(&img).unwrap();
    // A guard dropped by a panic unwinding releases too.
    let r = std::panic::catch_unwind(|| {
        let _g = env.lock(&img).unwrap();
        panic!("during the update");
    });
    assert!(r.is_err());
    env.lock(&img).unwrap();
}

#[test]
fn a_missing_path_or_a_directory_is_an_error() {
    let env = Env::real();
    assert!(matches!(
        env.lock(&env.path("nope")),
        Err(LockError::Resolve { .. })
    ));
    assert!(matches!(
        env.lock(env.dir.path()),
        Err(LockError::NotStorage { .. })
    ));
}

#[test]
fn a_partition_locks_its_whole_disk_fake_sysfs() {
    let env = Env::fake();
    let disk = env.fake_dev("mmcblk2", "179:0", None);
    let p1 = env.fake_dev("mmcblk2p1", "179:1", Some("mmcblk2"));
    let p2 = env.fake_dev("mmcblk2p2", "179:2", Some("mmcblk2"));
    let other = env.fake_dev("mmcblk3", "179:8", None);

    let s = storage_lock::resolve(&p1, &env.roots.sys).unwrap();
    assert!(s.keys.contains_key(&Key::Block((179, 0))), "{s:?}");
    assert!(!s.keys.contains_key(&Key::Block((179, 1))), "{s:?}");
    assert!(s.what.contains("partition of /dev/mmcblk2"), "{}", s.what);

    let g = env.lock(&p1).unwrap();
    busy(env.lock(&disk), "mmcblk2p1 (partition of /dev/mmcblk2)");
    busy(env.lock(&p2), "mmcblk2p1");
    let g3 = env.lock(&other).unwrap();
    drop(g);
    let g = env.lock(&disk).unwrap();
    busy(env.lock(&p1), "mmcblk2");
    drop((g, g3));
}

#[test]
fn a_loop_device_and_its_backing_file_fake_sysfs() {
    let env = Env::fake();
    let img = env.file("sd.img");
    let lo = env.fake_dev("loop3", "7:3", None);
    let lo_dir = env.path("sys/devices/virtual/block/loop3/loop");
    std::fs::create_dir_all(&lo_dir).unwrap();
    // The kernel's string for the file, reached here through a symlink: compared by stat.
    let alias = env.path("alias.img");
    std::os::unix::fs::symlink(&img, &alias).unwrap();
    std::fs::write(
        lo_dir.join("backing_file"),
        format!("{}\n", alias.display()),
    )
    .unwrap();
    std::fs::write(lo_dir.join("offset"), "0\n").unwrap();
    let lo_p1 = env.fake_dev("loop3p1", "259:0", Some("loop3"));

    let s = storage_lock::resolve(&img, &env.roots.sys).unwrap();
    assert!(s.keys.contains_key(&Key::Block((7, 3))), "{s:?}");
    assert!(s.what.contains("backing /dev/loop3"), "{}", s.what);

    let g = env.lock(&lo).unwrap();
    let msg = busy(env.lock(&img), "/dev/loop3");
    assert!(msg.contains("(backing file"), "{msg}");
    busy(env.lock(&lo_p1), "loop3");
    drop(g);
    let g = env.lock(&img).unwrap();
    busy(env.lock(&lo), "sd.img");
    busy(env.lock(&lo_p1), "sd.img");
    drop(g);
    let g = env.lock(&lo_p1).unwrap();
    busy(env.lock(&img), "loop3p1");
    drop(g);
}

/// A real loop device, detached on drop.
struct Loop(PathBuf);

impl Loop {
    /// `losetup -f --show FILE` (with `-P` when `partscan`), or why the kernel refused.
    fn attach(file: &Path, partscan: bool) -> Result<Loop, String> {
        let mut c = Command::new("losetup");
        c.arg("-f").arg("--show");
        if partscan {
            c.arg("-P");
        }
        let out = c
            .arg(file)
            .output()
            .map_err(|e| format!("cannot run losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "losetup -f --show {} failed: {}",
                file.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let dev = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        if dev.is_empty() {
            return Err("losetup printed no device".into());
        }
        Ok(Loop(PathBuf::from(dev)))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

#[test]
fn a_real_loop_device_and_its_backing_file_in_both_orders() {
    let env = Env::real();
    let img = env.file("sd.img");
    let lo = match Loop::attach(&img, false) {
        Ok(l) => l,
        Err(why) => {
            eprintln!("skipped: the kernel refuses a loop device here: {why}");
            return;
        }
    };
    let lo_path = lo.0.clone();
    let shown = lo_path.display().to_string();
    let link = env.path("link.img");
    std::fs::hard_link(&img, &link).unwrap();

    let s = storage_lock::resolve(&img, &env.roots.sys).unwrap();
    assert!(s.keys.contains_key(&Key::Block(rdev(&lo_path))), "{s:?}");

    // The device first: the file (and a hard link to it) is refused.
    let g = env.lock(&lo_path).unwrap();
    let msg = busy(env.lock(&img), &format!("{shown} (backing file "));
    assert!(msg.contains("sd.img"), "{msg}");
    eprintln!("{msg}");
    busy(env.lock(&link), &shown);
    drop(g);

    // The file first: the device is refused.
    let g = env.lock(&img).unwrap();
    let msg = busy(
        env.lock(&lo_path),
        &format!("{} (backing {shown})", img.display()),
    );
    eprintln!("{msg}");
    drop(g);

    // A second loop device on the same file is the same storage too.
    if let Ok(lo2) = Loop::attach(&img, false) {
        let g = env.lock(&lo_path).unwrap();
        busy(env.lock(&lo2.0), &shown);
        drop(g);
        let g = env.lock(&lo2.0).unwrap();
        busy(env.lock(&lo_path), &lo2.0.display().to_string());
        drop(g);
    }
    // Detached: the file no longer reaches the device.
    drop(lo);
    let s = storage_lock::resolve(&img, &env.roots.sys).unwrap();
    assert_eq!(s.keys.len(), 1, "{s:?}");
}

#[test]
fn a_real_partition_of_a_loop_device_locks_the_disk_and_the_file() {
    let env = Env::real();
    let img = env.path("parted.img");
    std::fs::write(&img, vec![0u8; 8 << 20]).unwrap();
    let sfdisk = Command::new("sfdisk")
        .arg("-q")
        .arg(&img)
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(b"label: dos\n,4M\n,\n")?;
            c.wait()
        });
    match sfdisk {
        Ok(s) if s.success() => {}
        other => {
            eprintln!("skipped: sfdisk cannot partition the image here: {other:?}");
            return;
        }
    }
    let lo = match Loop::attach(&img, true) {
        Ok(l) => l,
        Err(why) => {
            eprintln!("skipped: the kernel refuses a loop device here: {why}");
            return;
        }
    };
    let p1 = PathBuf::from(format!("{}p1", lo.0.display()));
    if !p1.exists() {
        // Some kernels have no partition-table parser built in; partx adds them (BLKPG).
        let _ = Command::new("partx").arg("-a").arg(&lo.0).status();
    }
    let start = Instant::now();
    while !p1.exists() && start.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    if !p1.exists() {
        eprintln!(
            "skipped: the kernel shows no partitions of {} (no {})",
            lo.0.display(),
            p1.display()
        );
        return;
    }
    let disk = lo.0.display().to_string();

    let s = storage_lock::resolve(&p1, &env.roots.sys).unwrap();
    assert!(s.keys.contains_key(&Key::Block(rdev(&lo.0))), "{s:?}");
    assert!(!s.keys.contains_key(&Key::Block(rdev(&p1))), "{s:?}");

    let g = env.lock(&p1).unwrap();
    let msg = busy(env.lock(&lo.0), &format!("partition of {disk}"));
    eprintln!("{msg}");
    busy(env.lock(&img), &p1.display().to_string());
    drop(g);
    let g = env.lock(&lo.0).unwrap();
    busy(env.lock(&p1), &disk);
    drop(g);
    let g = env.lock(&img).unwrap();
    busy(env.lock(&p1), "parted.img");
    drop(g);
}
