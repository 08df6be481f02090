//! One lock per *storage*: what lies underneath the path given to `update` / `sync`, so that two
//! `ubootctl` runs reaching the same bytes through different paths (`/dev/loop3` and the image
//! file behind it, a partition and its disk, a hard link or a symlink) exclude each other. An
//! `flock` on the opened descriptor ([`crate::blockdev::FileDevice`]) only excludes opens of the
//! same inode: `/dev/loop3` and its backing file are two inodes.
//!
//! A path is resolved ([`resolve`]) to a set of identity [`Key`]s:
//!
//! | path | keys |
//! |---|---|
//! | regular file | `(st_dev, st_ino)`, plus the device number of every loop device backed by it |
//! | block device | its `st_rdev`, a partition counting as its whole disk (sysfs `partition`, parent directory) |
//! | loop device (or a partition of one) | its device number plus its backing file's key (sysfs `loop/backing_file`) |
//!
//! Loop devices backed by a file are found by scanning `SYS/block/*/loop/backing_file` and
//! comparing the `stat` of each backing path with the file's, never the strings. Both sides of a
//! loop device take both keys, so a loop device set up between one run's resolution and its
//! locking is still caught by the other run.
//!
//! Each key is a lock file in a runtime directory (default [`LOCK_DIR`], created `0700`),
//! `blk-MAJ-MIN` or `file-MAJ-MIN-INO` (the file system's device and the inode), taken with
//! `flock(LOCK_EX | LOCK_NB)` in sorted order; a busy key releases what was taken and fails with
//! [`LockError::Busy`], which names what the other holder locked (each exclusive holder writes
//! its pid and description into the lock files it holds). The [`StorageGuard`] releases all on
//! drop. Lock files are never removed (removing one while another process has it open would let
//! two holders lock different inodes of the same name); `/run` is emptied at boot.
//!
//! sysfs is read through [`SysRoots`], so tests pass a fake tree; as in
//! [`sysblock::identify`], under a test root a regular file named like a block device of the
//! tree stands for that device (and keeps its own file key too).

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, DirBuilder, File, Metadata, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{FlockOperation, OFlags, flock};

use crate::sysblock::{self, DevNum, SysRoots, devnum_of, read_devnum};

/// `flock` without blocking, retried for up to [`BUSY_GRACE`]: a lock just released can stay
/// held for a moment by a child that another thread of the same process forked before its
/// `exec` closed the descriptor (a multi-threaded test run; the CLI itself is single-threaded).
fn flock_briefly(file: &File, op: FlockOperation) -> rustix::io::Result<()> {
    let t0 = std::time::Instant::now();
    loop {
        match flock(file, op) {
            Err(e) if e == rustix::io::Errno::WOULDBLOCK && t0.elapsed() < BUSY_GRACE => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            r => return r,
        }
    }
}

/// How long a busy lock is retried before it counts as held by another run.
const BUSY_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

/// The default directory of the lock files.
pub const LOCK_DIR: &str = "/run/ubootctl/locks";

/// Where sysfs is and where the lock files go (tests pass a fake sysfs and a temporary
/// directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockRoots {
    /// sysfs and procfs (only sysfs is read).
    pub sys: SysRoots,
    /// The directory holding one lock file per key, created `0700` when missing.
    pub lock_dir: PathBuf,
}

impl Default for LockRoots {
    fn default() -> Self {
        LockRoots {
            sys: SysRoots::default(),
            lock_dir: PathBuf::from(LOCK_DIR),
        }
    }
}

impl LockRoots {
    /// `sys` and `lock_dir`.
    pub fn new(sys: SysRoots, lock_dir: impl Into<PathBuf>) -> Self {
        LockRoots {
            sys,
            lock_dir: lock_dir.into(),
        }
    }
}

/// One identity of a storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// A whole block device, by device number.
    Block(DevNum),
    /// A file: the device number of its file system and its inode.
    File {
        /// `st_dev`, split.
        dev: DevNum,
        /// `st_ino`.
        ino: u64,
    },
}

impl Key {
    /// The lock file's name: `blk-MAJ-MIN` or `file-MAJ-MIN-INO`.
    pub fn file_name(&self) -> String {
        match self {
            Key::Block((a, b)) => format!("blk-{a}-{b}"),
            Key::File { dev: (a, b), ino } => format!("file-{a}-{b}-{ino}"),
        }
    }

    fn of_file(meta: &Metadata) -> Key {
        Key::File {
            dev: devnum_of(meta.dev()),
            ino: meta.ino(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Block((a, b)) => write!(f, "block device {a}:{b}"),
            Key::File { dev: (a, b), ino } => write!(f, "inode {ino} on device {a}:{b}"),
        }
    }
}

/// What a path resolves to: the keys to lock, each with what it stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Storage {
    /// The path given.
    pub path: PathBuf,
    /// The path and what lies under it, for messages (`/dev/loop3 (backing file /tmp/sd.img)`).
    pub what: String,
    /// Every key, with the description of what it stands for (sorted: the locking order).
    pub keys: BTreeMap<Key, String>,
}

/// Why a storage could not be locked.
#[derive(Debug)]
pub enum LockError {
    /// The path cannot be examined (`stat` failed).
    Resolve {
        /// The path.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// The path is neither a regular file nor a block device.
    NotStorage {
        /// The path.
        path: PathBuf,
    },
    /// The lock directory cannot be created.
    Dir {
        /// The directory.
        dir: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// A lock file cannot be opened or locked.
    LockFile {
        /// The lock file.
        file: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Another process holds a lock on the same storage.
    Busy {
        /// The path given.
        path: PathBuf,
        /// The key found locked.
        key: Key,
        /// What the key stands for, as this run sees it.
        ours: String,
        /// What the other holder wrote in the lock file: its pid (when it wrote one) and what
        /// it locked.
        holder: Option<(Option<u32>, String)>,
    },
}

impl fmt::Display for LockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::Resolve { path, source } => {
                write!(f, "cannot examine {}: {source}", path.display())
            }
            LockError::NotStorage { path } => write!(
                f,
                "{} is neither a block device nor a regular file",
                path.display()
            ),
            LockError::Dir { dir, source } => {
                write!(
                    f,
                    "cannot create the lock directory {}: {source}",
                    dir.display()
                )
            }
            LockError::LockFile { file, source } => {
                write!(f, "cannot lock {}: {source}", file.display())
            }
            LockError::Busy {
                path, ours, holder, ..
            } => {
                write!(f, "cannot lock {}: another ubootctl ", path.display())?;
                match holder {
                    Some((Some(pid), what)) => write!(f, "(pid {pid}) holds {what}"),
                    Some((None, what)) => write!(f, "holds {what}"),
                    None => write!(f, "holds {ours}"),
                }
            }
        }
    }
}

impl std::error::Error for LockError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            LockError::Resolve { source, .. }
            | LockError::Dir { source, .. }
            | LockError::LockFile { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The whole disk under a block device node: `(devnum, kernel name)` of the disk when `name`
/// is a partition (the parent sysfs directory with a `dev` file), else of `name` itself.
fn whole_disk(roots: &SysRoots, name: &str, devnum: DevNum) -> (DevNum, String) {
    if sysblock::class_dir(roots, name).join("partition").exists()
        && let Some(parent) = sysblock::parent_disk_dir(roots, name)
        && let Some(dn) = read_devnum(&parent)
        && let Some(pname) = parent.file_name()
    {
        return (dn, pname.to_string_lossy().into_owned());
    }
    (devnum, name.to_owned())
}

/// A loop device's backing file (sysfs `loop/backing_file`), when `dir` is a bound loop device.
fn backing_file(dir: &Path) -> Option<PathBuf> {
    let s = fs::read_to_string(dir.join("loop/backing_file")).ok()?;
    let s = s.strip_suffix('\n').unwrap_or(&s);
    (!s.is_empty()).then(|| PathBuf::from(s))
}

/// `, offset N` / `, size limit N` from sysfs `loop/offset` / `loop/sizelimit` (nothing when 0).
fn loop_window(dir: &Path) -> String {
    let num = |f: &str| {
        fs::read_to_string(dir.join("loop").join(f))
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .filter(|&n| n != 0)
    };
    let mut s = String::new();
    if let Some(o) = num("offset") {
        s.push_str(&format!(", offset {o}"));
    }
    if let Some(l) = num("sizelimit") {
        s.push_str(&format!(", size limit {l}"));
    }
    s
}

/// The base identity of a path: the whole disk of a block device, or the file itself.
struct Base {
    key: Key,
    /// The kernel name of the node given (`loop0p1`), when sysfs knows it.
    name: Option<String>,
    /// The kernel name of its whole disk (`loop0`).
    disk: Option<String>,
}

/// The [`Base`] of `path` (whose metadata is `meta`); `None` when it is neither a regular file
/// nor a block device.
fn base(path: &Path, meta: &Metadata, roots: &SysRoots) -> Option<Base> {
    let block = meta.file_type().is_block_device();
    if !block && !meta.is_file() {
        return None;
    }
    let id = sysblock::identify(path, roots).ok();
    let devnum = id
        .as_ref()
        .and_then(|i| i.devnum)
        .or_else(|| block.then(|| devnum_of(meta.rdev())));
    let name = id.and_then(|i| i.name);
    Some(match (devnum, &name) {
        (Some(dn), Some(n)) => {
            let (disk, disk_name) = whole_disk(roots, n, dn);
            Base {
                key: Key::Block(disk),
                name,
                disk: Some(disk_name),
            }
        }
        (Some(dn), None) => Base {
            key: Key::Block(dn),
            name,
            disk: None,
        },
        (None, _) => Base {
            key: Key::of_file(meta),
            name: None,
            disk: None,
        },
    })
}

/// The base key of the file or device at `path`, following symlinks.
fn base_key_of(path: &Path, roots: &SysRoots) -> Option<Key> {
    let meta = fs::metadata(path).ok()?;
    base(path, &meta, roots).map(|b| b.key)
}

/// Resolves `path` to the keys of its storage (see the module documentation).
pub fn resolve(path: &Path, roots: &SysRoots) -> Result<Storage, LockError> {
    let meta = fs::metadata(path).map_err(|source| LockError::Resolve {
        path: path.to_owned(),
        source,
    })?;
    let Some(Base { key, name, disk }) = base(path, &meta, roots) else {
        return Err(LockError::NotStorage {
            path: path.to_owned(),
        });
    };
    let shown = path.display().to_string();
    let mut notes = Vec::new();
    let mut keys = BTreeMap::new();
    if meta.is_file() {
        keys.insert(Key::of_file(&meta), shown.clone());
    }
    let mut backing_key = None;
    if let Some(disk) = &disk {
        if name.as_deref() != Some(disk.as_str()) {
            notes.push(format!("partition of /dev/{disk}"));
        }
        let dir = roots.sys.join("class/block").join(disk);
        if let Some(b) = backing_file(&dir) {
            notes.push(format!("backing file {}{}", b.display(), loop_window(&dir)));
            backing_key = base_key_of(&b, roots);
        }
    }
    let described = |notes: &[String]| {
        if notes.is_empty() {
            shown.clone()
        } else {
            format!("{shown} ({})", notes.join(", "))
        }
    };
    let what = described(&notes);
    keys.entry(key).or_insert_with(|| what.clone());
    if let Some(bk) = backing_key {
        keys.entry(bk).or_insert_with(|| what.clone());
    }
    // Every loop device backed by this storage (or by the same file as this loop device).
    let mut loops = Vec::new();
    if let Ok(entries) = fs::read_dir(roots.sys.join("block")) {
        for e in entries.flatten() {
            let dir = e.path();
            let (Some(b), Some(dn)) = (backing_file(&dir), read_devnum(&dir)) else {
                continue;
            };
            if keys.contains_key(&Key::Block(dn)) {
                continue;
            }
            let Some(bk) = base_key_of(&b, roots) else {
                continue;
            };
            if bk == key || Some(bk) == backing_key {
                let loop_name = e.file_name().to_string_lossy().into_owned();
                let desc = format!(
                    "/dev/{loop_name} (backing file {}{})",
                    b.display(),
                    loop_window(&dir)
                );
                loops.push((bk != key, dn, desc, format!("/dev/{loop_name}")));
            }
        }
    }
    loops.sort();
    for (sibling, label) in [(false, "backing"), (true, "same backing file as")] {
        let names: Vec<&str> = loops
            .iter()
            .filter(|l| l.0 == sibling)
            .map(|l| l.3.as_str())
            .collect();
        if !names.is_empty() {
            notes.push(format!("{label} {}", names.join(", ")));
        }
    }
    for (_, dn, desc, _) in loops {
        keys.insert(Key::Block(dn), desc);
    }
    Ok(Storage {
        path: path.to_owned(),
        what: described(&notes),
        keys,
    })
}

/// Exclusive (`update`, `sync`) or shared (readers such as `status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// `LOCK_EX`: no other holder.
    Exclusive,
    /// `LOCK_SH`: other shared holders only.
    Shared,
}

/// Every lock of a storage, held until dropped.
#[derive(Debug)]
pub struct StorageGuard {
    storage: Storage,
    mode: LockMode,
    files: Vec<File>,
}

impl StorageGuard {
    /// What was locked.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// The keys held, in locking order.
    pub fn keys(&self) -> impl Iterator<Item = &Key> {
        self.storage.keys.keys()
    }

    /// The mode held.
    pub fn mode(&self) -> LockMode {
        self.mode
    }

    /// Releases every lock now (the same as dropping the guard).
    pub fn release(self) {}
}

impl Drop for StorageGuard {
    fn drop(&mut self) {
        if self.mode == LockMode::Exclusive {
            for f in &self.files {
                // Still held: no other holder can be writing its own description.
                let _ = f.set_len(0);
            }
        }
        // Closing each file releases its flock.
    }
}

/// Creates `dir` (and missing parents) with mode `0700`.
fn make_dir(dir: &Path) -> Result<(), LockError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| LockError::Dir {
            dir: dir.to_owned(),
            source,
        })
}

/// `pid N` and the description, as an exclusive holder writes them; `None` when empty.
fn parse_holder(text: &str) -> Option<(Option<u32>, String)> {
    let mut lines = text.lines();
    let first = lines.next()?;
    match first
        .strip_prefix("pid ")
        .and_then(|p| p.trim().parse().ok())
    {
        Some(pid) => {
            let what = lines.next().unwrap_or("").trim();
            (!what.is_empty()).then(|| (Some(pid), what.to_owned()))
        }
        None => (!first.trim().is_empty()).then(|| (None, first.trim().to_owned())),
    }
}

impl Storage {
    /// Takes the lock of every key in `lock_dir` (created `0700` when missing), in order,
    /// without waiting: the first busy key releases what was taken and fails with
    /// [`LockError::Busy`].
    pub fn lock(self, lock_dir: &Path, mode: LockMode) -> Result<StorageGuard, LockError> {
        make_dir(lock_dir)?;
        let mut files = Vec::with_capacity(self.keys.len());
        for (key, desc) in &self.keys {
            let file_path = lock_dir.join(key.file_name());
            let lock_err = |source| LockError::LockFile {
                file: file_path.clone(),
                source,
            };
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(OFlags::NOFOLLOW.bits() as i32)
                .open(&file_path)
                .map_err(lock_err)?;
            let op = match mode {
                LockMode::Exclusive => FlockOperation::NonBlockingLockExclusive,
                LockMode::Shared => FlockOperation::NonBlockingLockShared,
            };
            match flock_briefly(&file, op) {
                Ok(()) => {}
                Err(e) if e == rustix::io::Errno::WOULDBLOCK => {
                    let mut text = String::new();
                    let _ = (&file).take(4096).read_to_string(&mut text);
                    return Err(LockError::Busy {
                        path: self.path.clone(),
                        key: *key,
                        ours: desc.clone(),
                        holder: parse_holder(&text),
                    });
                }
                Err(e) => return Err(lock_err(e.into())),
            }
            if mode == LockMode::Exclusive {
                let note = format!("pid {}\n{}\n", std::process::id(), self.what);
                file.set_len(0).map_err(lock_err)?;
                file.write_all_at(note.as_bytes(), 0).map_err(lock_err)?;
            }
            files.push(file);
        }
        Ok(StorageGuard {
            storage: self,
            mode,
            files,
        })
    }
}

/// Resolves `path` and locks its storage exclusively (for `update` and `sync`).
pub fn lock(path: &Path, roots: &LockRoots) -> Result<StorageGuard, LockError> {
    resolve(path, &roots.sys)?.lock(&roots.lock_dir, LockMode::Exclusive)
}

/// Resolves `path` and locks its storage shared (for readers: refused while an update holds it).
pub fn lock_shared(path: &Path, roots: &LockRoots) -> Result<StorageGuard, LockError> {
    resolve(path, &roots.sys)?.lock(&roots.lock_dir, LockMode::Shared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_and_order() {
        assert_eq!(Key::Block((179, 0)).file_name(), "blk-179-0");
        let f = Key::File {
            dev: (8, 1),
            ino: 42,
        };
        assert_eq!(f.file_name(), "file-8-1-42");
        assert!(Key::Block((259, 9)) < f);
        assert!(Key::Block((7, 3)) < Key::Block((179, 0)));
    }

    #[test]
    fn holder_notes_parse() {
        assert_eq!(
            parse_holder("pid 12\n/dev/loop3 (backing file /tmp/sd.img)\n"),
            Some((Some(12), "/dev/loop3 (backing file /tmp/sd.img)".into()))
        );
        assert_eq!(parse_holder(""), None);
        assert_eq!(parse_holder("pid 12\n"), None);
        assert_eq!(parse_holder("x\n"), Some((None, "x".into())));
    }
}
