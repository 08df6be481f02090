//! What the kernel says about the target of `update` / `sync`, through sysfs and procfs:
//! whether it is a partition (the ROM reads the raw device's user area, never a partition),
//! whether it or one of its partitions is mounted, used as swap or held by another driver, and
//! whether it is an eMMC boot partition (`mmcblkXbootY`), whose `force_ro` must be lowered for
//! the write and restored afterwards ([`ForceRoGuard`]).
//!
//! Both roots are injectable ([`SysRoots`]): the tests lay out a fake `/sys` and `/proc` and
//! pass them with the hidden `--sysfs-root` / `--proc-root` options. With the real roots a
//! regular file (an SD card image) has no sysfs identity and is not checked; with a test root a
//! regular file stands for the block device named like the file, described by the fake tree.
//!
//! Files read (Linux `Documentation/ABI/stable/sysfs-block`, `proc(5)`,
//! `Documentation/driver-api/mmc/mmc-dev-parts.rst`):
//!
//! | file | used for |
//! |---|---|
//! | `/sys/dev/block/MAJ:MIN` | the kernel name of a block device node |
//! | `/sys/class/block/NAME/partition` | exists only for a partition (holds its number) |
//! | `/sys/class/block/NAME/dev` | `MAJ:MIN` of a device or partition |
//! | `/sys/class/block/NAME/holders/` | device-mapper / md devices built on it |
//! | `/sys/block/NAME/force_ro` | eMMC boot partition write protection (`1` by default) |
//! | `/proc/self/mountinfo` (else `/proc/mounts`) | mounts, by `MAJ:MIN` and by source |
//! | `/proc/swaps` | active swap areas |

use rustix::fs::{major, minor};
use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where sysfs and procfs are mounted (`/sys`, `/proc`; tests pass fake trees).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysRoots {
    /// The sysfs root.
    pub sys: PathBuf,
    /// The procfs root.
    pub proc: PathBuf,
}

/// The real sysfs root.
pub const SYSFS: &str = "/sys";
/// The real procfs root.
pub const PROCFS: &str = "/proc";

impl Default for SysRoots {
    fn default() -> Self {
        SysRoots {
            sys: PathBuf::from(SYSFS),
            proc: PathBuf::from(PROCFS),
        }
    }
}

impl SysRoots {
    /// Whether these are the system's own roots (not a test tree).
    pub fn is_system(&self) -> bool {
        self.sys == Path::new(SYSFS) && self.proc == Path::new(PROCFS)
    }
}

/// A device number `(major, minor)`.
pub type DevNum = (u32, u32);

/// The target as the kernel knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The path given.
    pub path: PathBuf,
    /// Kernel name (`mmcblk2`, `sda1`, `mmcblk2boot0`), `None` for an image file.
    pub name: Option<String>,
    /// Device number, when known.
    pub devnum: Option<DevNum>,
}

impl Identity {
    /// Whether the target is an eMMC boot partition (`mmcblkXbootY`).
    pub fn is_boot_partition(&self) -> bool {
        self.name.as_deref().is_some_and(is_boot_partition_name)
    }

    /// `force_ro` of an eMMC boot partition: `SYS/block/NAME/force_ro`.
    pub fn force_ro_path(&self, roots: &SysRoots) -> Option<PathBuf> {
        let name = self.name.as_deref().filter(|n| is_boot_partition_name(n))?;
        Some(roots.sys.join("block").join(name).join("force_ro"))
    }
}

/// Whether `name` is an eMMC boot partition's kernel name: `mmcblk<N>boot<M>`.
pub fn is_boot_partition_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("mmcblk") else {
        return false;
    };
    let Some((disk, part)) = rest.split_once("boot") else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(disk) && digits(part)
}

/// Finds out what `path` is (see the module documentation for regular files).
pub fn identify(path: &Path, roots: &SysRoots) -> io::Result<Identity> {
    let meta = fs::metadata(path)?;
    let ft = meta.file_type();
    if ft.is_block_device() {
        let rdev = meta.rdev();
        let devnum = devnum_of(rdev);
        let link = roots
            .sys
            .join("dev/block")
            .join(format!("{}:{}", devnum.0, devnum.1));
        let name = fs::read_link(&link)
            .ok()
            .and_then(|t| t.file_name().map(|n| n.to_string_lossy().into_owned()))
            .or_else(|| {
                fs::canonicalize(path)
                    .ok()
                    .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            });
        return Ok(Identity {
            path: path.to_owned(),
            name,
            devnum: Some(devnum),
        });
    }
    if meta.is_file() && !roots.is_system() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| class_dir(roots, n).exists());
        let devnum = name
            .as_deref()
            .and_then(|n| read_devnum(&class_dir(roots, n)));
        return Ok(Identity {
            path: path.to_owned(),
            name,
            devnum,
        });
    }
    Ok(Identity {
        path: path.to_owned(),
        name: None,
        devnum: None,
    })
}

/// A `st_rdev` as `(major, minor)` (`gnu_dev_major`, `gnu_dev_minor`).
pub(crate) fn devnum_of(rdev: u64) -> DevNum {
    (major(rdev), minor(rdev))
}

/// The sysfs directory of the block device `name` (`/sys/class/block/NAME`).
pub(crate) fn class_dir(roots: &SysRoots, name: &str) -> PathBuf {
    roots.sys.join("class/block").join(name)
}

/// The device number in `dir/dev`.
pub(crate) fn read_devnum(dir: &Path) -> Option<DevNum> {
    let s = fs::read_to_string(dir.join("dev")).ok()?;
    let (a, b) = s.trim().split_once(':')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// Why the target must not be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsafe {
    /// The target is a partition of a disk.
    Partition {
        /// The path given.
        path: PathBuf,
        /// Its kernel name.
        name: String,
        /// The whole disk it belongs to, when sysfs says.
        disk: Option<String>,
    },
    /// The target or one of its partitions is mounted.
    Mounted {
        /// The path given.
        path: PathBuf,
        /// The device that is mounted (the target or a partition of it).
        device: String,
        /// Where.
        mount_point: String,
    },
    /// The target or one of its partitions is an active swap area.
    Swap {
        /// The path given.
        path: PathBuf,
        /// The device used as swap.
        device: String,
    },
    /// Another block device (device-mapper, md) is built on the target or a partition of it.
    Held {
        /// The path given.
        path: PathBuf,
        /// The device that is held.
        device: String,
        /// The holder's kernel name.
        holder: String,
    },
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsafe::Partition { path, name, disk } => {
                write!(
                    f,
                    "{} is a partition ({name}); the boot ROM reads the raw device's user area, not a partition: ",
                    path.display()
                )?;
                match disk {
                    Some(d) => write!(f, "use the whole disk, --device /dev/{d}"),
                    None => f.write_str("name the whole disk it belongs to"),
                }
            }
            Unsafe::Mounted {
                path,
                device,
                mount_point,
            } => write!(
                f,
                "{} is in use: {device} is mounted on {mount_point}; unmount it first",
                path.display()
            ),
            Unsafe::Swap { path, device } => write!(
                f,
                "{} is in use: {device} is an active swap area; swapoff it first",
                path.display()
            ),
            Unsafe::Held {
                path,
                device,
                holder,
            } => write!(
                f,
                "{} is in use: {device} is held by {holder} (device-mapper or RAID); release it first",
                path.display()
            ),
        }
    }
}

/// A check that could not be made: a file it needs is unreadable.
#[derive(Debug)]
pub struct CheckError {
    /// The file.
    pub file: PathBuf,
    /// Why.
    pub error: io::Error,
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot read {} to check that the device is not mounted: {}",
            self.file.display(),
            self.error
        )
    }
}

/// The whole disk of a partition: the parent directory of its sysfs directory, when that
/// parent is a block device (has a `dev` file).
fn parent_disk(roots: &SysRoots, name: &str) -> Option<String> {
    let parent = parent_disk_dir(roots, name)?;
    parent.file_name().map(|n| n.to_string_lossy().into_owned())
}

/// The sysfs directory of the disk a partition `name` belongs to (see [`parent_disk`]).
pub(crate) fn parent_disk_dir(roots: &SysRoots, name: &str) -> Option<PathBuf> {
    let real = fs::canonicalize(class_dir(roots, name)).ok()?;
    let parent = real.parent()?;
    parent.join("dev").exists().then(|| parent.to_path_buf())
}

/// The target and its partitions: `(kernel name, device number)`.
fn with_partitions(roots: &SysRoots, id: &Identity) -> Vec<(String, Option<DevNum>)> {
    let mut out = Vec::new();
    let Some(name) = &id.name else {
        return out;
    };
    out.push((name.clone(), id.devnum));
    if let Ok(entries) = fs::read_dir(class_dir(roots, name)) {
        let mut parts: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("partition").exists())
            .filter_map(|p| {
                let n = p.file_name()?.to_string_lossy().into_owned();
                Some((n, read_devnum(&p)))
            })
            .collect();
        parts.sort();
        out.extend(parts);
    }
    out
}

/// Decodes the octal escapes (`\040` for a space) of a mount table field.
fn unescape(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let v = (b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One mount: device number (mountinfo only), source and mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// `MAJ:MIN` of the mounted file system (mountinfo).
    pub devnum: Option<DevNum>,
    /// The source (`/dev/mmcblk2p1`).
    pub source: String,
    /// The mount point.
    pub mount_point: String,
}

/// Parses `/proc/self/mountinfo`. Malformed lines are skipped.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let (a, b) = f.get(2)?.split_once(':')?;
            let devnum = Some((a.parse().ok()?, b.parse().ok()?));
            let mount_point = unescape(f.get(4)?);
            let source = unescape(right.split(' ').nth(1).unwrap_or(""));
            Some(Mount {
                devnum,
                source,
                mount_point,
            })
        })
        .collect()
}

/// Parses `/proc/mounts`. Malformed lines are skipped.
pub fn parse_mounts(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let mut f = line.split(' ');
            let source = unescape(f.next()?);
            let mount_point = unescape(f.next()?);
            Some(Mount {
                devnum: None,
                source,
                mount_point,
            })
        })
        .collect()
}

/// The kernel name a mount source or swap file names, when it is `/dev/NAME`.
fn dev_name(source: &str) -> Option<&str> {
    source.strip_prefix("/dev/").filter(|n| !n.contains('/'))
}

/// Refuses a partition, and a device that is (or has a partition that is) mounted, used as
/// swap or held by another block device. An image file under the system roots passes.
pub fn check_writable(id: &Identity, roots: &SysRoots) -> Result<Result<(), Unsafe>, CheckError> {
    let Some(name) = &id.name else {
        return Ok(Ok(()));
    };
    let dir = class_dir(roots, name);
    if dir.join("partition").exists() {
        return Ok(Err(Unsafe::Partition {
            path: id.path.clone(),
            name: name.clone(),
            disk: parent_disk(roots, name),
        }));
    }
    let devices = with_partitions(roots, id);
    let info = roots.proc.join("self/mountinfo");
    let mounts = match fs::read_to_string(&info) {
        Ok(t) => parse_mountinfo(&t),
        Err(e) => {
            let plain = roots.proc.join("mounts");
            match fs::read_to_string(&plain) {
                Ok(t) => parse_mounts(&t),
                Err(_) => {
                    return Err(CheckError {
                        file: info,
                        error: e,
                    });
                }
            }
        }
    };
    for m in &mounts {
        let hit = devices.iter().find(|(n, d)| {
            (d.is_some() && *d == m.devnum) || dev_name(&m.source) == Some(n.as_str())
        });
        if let Some((n, _)) = hit {
            return Ok(Err(Unsafe::Mounted {
                path: id.path.clone(),
                device: n.clone(),
                mount_point: m.mount_point.clone(),
            }));
        }
    }
    if let Ok(swaps) = fs::read_to_string(roots.proc.join("swaps")) {
        for line in swaps.lines().skip(1) {
            let file = unescape(line.split_whitespace().next().unwrap_or(""));
            if let Some((n, _)) = devices
                .iter()
                .find(|(n, _)| dev_name(&file) == Some(n.as_str()))
            {
                return Ok(Err(Unsafe::Swap {
                    path: id.path.clone(),
                    device: n.clone(),
                }));
            }
        }
    }
    for (n, _) in &devices {
        if let Ok(mut holders) = fs::read_dir(class_dir(roots, n).join("holders"))
            && let Some(Ok(h)) = holders.next()
        {
            return Ok(Err(Unsafe::Held {
                path: id.path.clone(),
                device: n.clone(),
                holder: h.file_name().to_string_lossy().into_owned(),
            }));
        }
    }
    Ok(Ok(()))
}

/// Write access to an eMMC boot partition: `force_ro` lowered to `0` by
/// [`ForceRoGuard::lower`] and put back to its previous value by [`ForceRoGuard::restore`] or,
/// on every other way out (an error, a panic unwinding), by `Drop`.
#[derive(Debug)]
pub struct ForceRoGuard {
    path: PathBuf,
    previous: String,
    restored: bool,
}

impl ForceRoGuard {
    /// Reads `force_ro` at `path` and, unless it is already `0`, writes `0` and checks that it
    /// reads back as `0`.
    pub fn lower(path: &Path) -> io::Result<Self> {
        let previous = fs::read_to_string(path)?.trim().to_owned();
        let mut guard = ForceRoGuard {
            path: path.to_owned(),
            previous,
            restored: false,
        };
        if guard.previous != "0" {
            fs::write(path, "0\n")?;
            let now = fs::read_to_string(path)?;
            if now.trim() != "0" {
                guard.restored = true; // nothing to undo: the write did not take
                return Err(io::Error::other(format!(
                    "{} reads {:?} after writing 0",
                    path.display(),
                    now.trim()
                )));
            }
        }
        Ok(guard)
    }

    /// The `force_ro` file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The value found before lowering (`"1"` normally).
    pub fn previous(&self) -> &str {
        &self.previous
    }

    /// Writes the previous value back now, reporting failure.
    pub fn restore(mut self) -> io::Result<()> {
        self.put_back()
    }

    fn put_back(&mut self) -> io::Result<()> {
        if self.restored {
            return Ok(());
        }
        self.restored = true;
        if self.previous == "0" {
            return Ok(());
        }
        fs::write(&self.path, format!("{}\n", self.previous))
    }
}

impl Drop for ForceRoGuard {
    fn drop(&mut self) {
        if let Err(e) = self.put_back() {
            // Not eprintln!, which panics when standard error is closed (in a drop).
            let _ = writeln!(
                io::stderr(),
                "ubootctl: cannot restore {} to {}: {e}",
                self.path.display(),
                self.previous
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_partition_names() {
        assert!(is_boot_partition_name("mmcblk2boot0"));
        assert!(is_boot_partition_name("mmcblk10boot1"));
        for n in [
            "mmcblk2",
            "mmcblk2p1",
            "mmcblkboot0",
            "mmcblk2boot",
            "sda",
            "mmcblk2boot0p1",
        ] {
            assert!(!is_boot_partition_name(n), "{n}");
        }
    }

    #[test]
    fn mountinfo_and_mounts_are_parsed_with_escapes() {
        let info = "36 35 179:1 / /mnt/my\\040card rw,relatime shared:1 - vfat /dev/mmcblk2p1 rw\n\
                    bad line\n\
                    37 35 0:45 / /data rw - btrfs /dev/sda2 rw\n";
        let m = parse_mountinfo(info);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].devnum, Some((179, 1)));
        assert_eq!(m[0].mount_point, "/mnt/my card");
        assert_eq!(m[0].source, "/dev/mmcblk2p1");
        assert_eq!(m[1].source, "/dev/sda2");
        let m = parse_mounts("/dev/sda1 /boot\\011x ext4 rw 0 0\n");
        assert_eq!(m[0].mount_point, "/boot\tx");
        assert_eq!(unescape("a\\04"), "a\\04");
    }

    #[test]
    fn device_numbers_decode_like_glibc() {
        let dev = (179u64 << 8) | 24; // 179:24
        assert_eq!((major(dev), minor(dev)), (179, 24));
        let big = (259u64 << 8) | ((1u64 << 20) << 12) | 5;
        assert_eq!(major(big), 259);
        assert_eq!(minor(big), (1 << 20) | 5);
    }

    #[test]
    fn the_guard_restores_on_drop_and_on_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("force_ro");
        fs::write(&p, "1\n").unwrap();
        let g = ForceRoGuard::lower(&p).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap().trim(), "0");
        assert_eq!(g.previous(), "1");
        drop(g);
        assert_eq!(fs::read_to_string(&p).unwrap().trim(), "1");
        let r = std::panic::catch_unwind(|| {
            let _g = ForceRoGuard::lower(&p).unwrap();
            assert_eq!(fs::read_to_string(&p).unwrap().trim(), "0");
            panic!("during the write");
        });
        assert!(r.is_err());
        assert_eq!(fs::read_to_string(&p).unwrap().trim(), "1");
        // Already writable: left as found.
        fs::write(&p, "0\n").unwrap();
        ForceRoGuard::lower(&p).unwrap().restore().unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap().trim(), "0");
    }
}
