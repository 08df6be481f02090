//! [`FileDevice`]: a regular file or a Linux block device as a [`BlockDevice`].
//!
//! What is done, and why:
//!
//! - **Durability points are exactly the flushes** ([`BlockDevice::flush`]): `fdatasync`, which
//!   on a block device (and through the file system for a regular file) also sends the drive a
//!   cache flush, plus `BLKFLSBUF` on a block device. The plan puts a flush wherever order
//!   matters (header-last, `plan.rs`); a write between two flushes is not durable on its own,
//!   and is not meant to be. (`O_SYNC` would make every write a durability point of its own:
//!   nothing safer, only more cache flushes.)
//! - **Writes with `O_DIRECT`** through a second descriptor ([`IoMode::Direct`]): a write of
//!   whole logical blocks at a block-aligned offset is copied into a page-aligned buffer and
//!   handed to the device without the page cache (the kernel drops cached pages of the range).
//!   A write that is not block-aligned (a 512-byte SIT sector on a 4096-byte-block device), or
//!   any write when the file system refuses `O_DIRECT` (tmpfs before Linux 6.6, some FUSE file
//!   systems: [`IoMode::Buffered`]), goes through the page cache; the next flush's `fdatasync`
//!   makes it durable all the same.
//! - **Claimed exclusively** on a block device with `O_EXCL`: the kernel refuses the open
//!   (`EBUSY`, [`OpenError::InUse`]) while the device or one of its partitions is mounted or
//!   held by another driver or exclusive opener, whatever `/proc` says.
//! - **Locked** with `flock(LOCK_EX | LOCK_NB)` ([`File::try_lock`]) for the lifetime of the
//!   value: a second `ubootctl` on the same device is refused, not queued.
//! - **Size** from the metadata (regular file) or `BLKGETSIZE64` (block device); **logical
//!   block size** from `BLKSSZGET` (block device) or 512 (regular file).
//! - **Flush on a block device** also issues `BLKFLSBUF`, which writes back and drops the
//!   device's page cache, so that no later buffered read is served from memory.
//! - **Read-back** ([`BlockDevice::read_back_at`]) goes through the `O_DIRECT` descriptor
//!   ([`IoMode::Direct`]): the kernel reads the medium into an aligned buffer (the range widened
//!   to the logical block size). When the file system refuses `O_DIRECT`, the read-back is
//!   `fdatasync` + `posix_fadvise(POSIX_FADV_DONTNEED)` on the range + a buffered read
//!   ([`IoMode::Buffered`]): the clean pages are dropped, so the read comes from the file
//!   system's storage; on a memory-backed file system there is no storage beyond those pages.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::num::NonZeroU64;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{Advice, OFlags, fadvise, ioctl_blksszget};

use super::{BlockDevice, checked_range, ioctl};

/// What a [`FileDevice`] is backed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceKind {
    /// A regular file (an SD card or eMMC image).
    RegularFile,
    /// A block device (`/dev/mmcblk0`, `/dev/loop0`, ...).
    BlockDevice,
}

/// How a [`FileDevice`] writes and how [`BlockDevice::read_back_at`] bypasses the page cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoMode {
    /// A second descriptor opened with `O_DIRECT`: block-aligned writes and every read-back go
    /// to the medium without the page cache.
    Direct,
    /// Buffered writes (made durable by the flushes' `fdatasync`); read-back by `fdatasync`,
    /// `posix_fadvise(DONTNEED)` on the range (plus `BLKFLSBUF` on a block device at every
    /// flush), then a buffered read.
    Buffered,
}

/// The former name of [`IoMode`].
pub type ReadBack = IoMode;

/// Why a device could not be opened.
#[derive(Debug)]
pub enum OpenError {
    /// A system call failed.
    Io {
        /// The device.
        path: PathBuf,
        /// What was being done ("open", "read the size of", ...).
        what: &'static str,
        /// The error.
        source: io::Error,
    },
    /// The path is neither a regular file nor a block device.
    NotADevice {
        /// The path.
        path: PathBuf,
    },
    /// Another process holds the device's lock (another `ubootctl` is running on it).
    Busy {
        /// The device.
        path: PathBuf,
    },
    /// The kernel refused an exclusive open of the block device (`EBUSY`): it or one of its
    /// partitions is mounted, or another driver or program has claimed it.
    InUse {
        /// The device.
        path: PathBuf,
    },
    /// The logical block size is not a power of two between 512 and 4096.
    BlockSize {
        /// The device.
        path: PathBuf,
        /// What `BLKSSZGET` said.
        size: u32,
    },
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpenError::Io { path, what, source } => {
                write!(f, "cannot {what} {}: {source}", path.display())
            }
            OpenError::NotADevice { path } => write!(
                f,
                "{} is neither a block device nor a regular file",
                path.display()
            ),
            OpenError::Busy { path } => write!(
                f,
                "{} is locked by another process (is another ubootctl running?)",
                path.display()
            ),
            OpenError::InUse { path } => write!(
                f,
                "{} is in use: the kernel refuses an exclusive open (mounted, or claimed by another driver or program)",
                path.display()
            ),
            OpenError::BlockSize { path, size } => write!(
                f,
                "{} has a logical block size of {size} bytes; only 512..4096 is supported",
                path.display()
            ),
        }
    }
}

impl std::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// A regular file or a Linux block device, opened for the update (see the module
/// documentation for the I/O discipline). Locked until dropped.
#[derive(Debug)]
pub struct FileDevice {
    path: PathBuf,
    file: File,
    direct: Option<File>,
    kind: DeviceKind,
    size: u64,
    block_size: u32,
}

/// Alignment of the `O_DIRECT` bounce buffer in memory (a page: enough for every device).
const DIRECT_BUFFER_ALIGN: usize = 4096;

impl FileDevice {
    /// Opens `path` read-write and takes its exclusive lock; writes and read-back use
    /// `O_DIRECT` when the file system takes it.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_mode(path, true, true)
    }

    /// Like [`FileDevice::open`], but in [`IoMode::Buffered`] whatever the file system: the
    /// discipline used where `O_DIRECT` is refused (for tests of that fallback).
    pub fn open_buffered(path: &Path) -> Result<Self, OpenError> {
        Self::open_mode(path, true, false)
    }

    /// Opens `path` read-only under a shared lock (for `status`: an update holding the
    /// exclusive lock makes this fail with [`OpenError::Busy`] instead of reading half-written
    /// copies). Writes to a device opened this way fail.
    pub fn open_read_only(path: &Path) -> Result<Self, OpenError> {
        Self::open_mode(path, false, true)
    }

    fn open_mode(path: &Path, writable: bool, direct: bool) -> Result<Self, OpenError> {
        let io_err = |what| {
            let path = path.to_owned();
            move |source| OpenError::Io { path, what, source }
        };
        let mut options = OpenOptions::new();
        options.read(true);
        // O_NONBLOCK: a FIFO (or a character device) given as the device must not block the
        // open; the type is checked right after and the flag cleared for real devices.
        let mut flags = OFlags::NONBLOCK;
        if writable {
            // O_EXCL without O_CREAT claims a block device; on anything else it means nothing
            // defined, so it is only asked for a block device.
            if std::fs::metadata(path).is_ok_and(|m| m.file_type().is_block_device()) {
                flags |= OFlags::EXCL;
            }
            options.write(true);
        }
        options.custom_flags(flags.bits() as i32);
        let file = options.open(path).map_err(|e| {
            if writable && e.raw_os_error() == Some(rustix::io::Errno::BUSY.raw_os_error()) {
                OpenError::InUse {
                    path: path.to_owned(),
                }
            } else {
                io_err("open")(e)
            }
        })?;
        let meta = file.metadata().map_err(io_err("stat"))?;
        let kind = if meta.file_type().is_block_device() {
            DeviceKind::BlockDevice
        } else if meta.is_file() {
            DeviceKind::RegularFile
        } else {
            return Err(OpenError::NotADevice {
                path: path.to_owned(),
            });
        };
        let fl =
            rustix::fs::fcntl_getfl(&file).map_err(|e| io_err("read the flags of")(e.into()))?;
        rustix::fs::fcntl_setfl(&file, fl - OFlags::NONBLOCK)
            .map_err(|e| io_err("set the flags of")(e.into()))?;
        let locked = if writable {
            file.try_lock()
        } else {
            file.try_lock_shared()
        };
        match locked {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(OpenError::Busy {
                    path: path.to_owned(),
                });
            }
            Err(TryLockError::Error(e)) => return Err(io_err("lock")(e)),
        }
        let (size, block_size) = match kind {
            DeviceKind::RegularFile => (meta.len(), boards::SECTOR_SIZE as u32),
            DeviceKind::BlockDevice => (
                ioctl::blkgetsize64(&file).map_err(io_err("read the size (BLKGETSIZE64) of"))?,
                ioctl_blksszget(&file)
                    .map_err(|e| io_err("read the block size (BLKSSZGET) of")(e.into()))?,
            ),
        };
        if !(512..=4096).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(OpenError::BlockSize {
                path: path.to_owned(),
                size: block_size,
            });
        }
        let mut dev = FileDevice {
            path: path.to_owned(),
            file,
            direct: None,
            kind,
            size,
            block_size,
        };
        // O_DIRECT if the file system takes it: probe with one aligned block read. Opened
        // without O_EXCL: the first descriptor holds the exclusive claim, and a second
        // exclusive open would be refused by it; the flock is on the first descriptor too.
        if let Some(Ok(direct)) = direct.then(|| {
            OpenOptions::new()
                .read(true)
                .write(writable)
                .custom_flags(OFlags::DIRECT.bits() as i32)
                .open(path)
        }) {
            let probe = (size >= u64::from(block_size))
                .then(|| dev.read_direct(&direct, 0, &mut vec![0; block_size as usize]));
            if matches!(probe, Some(Ok(()))) {
                dev.direct = Some(direct);
            }
        }
        Ok(dev)
    }

    /// The path it was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Regular file or block device.
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }

    /// How writes and read-back bypass the page cache here.
    pub fn io_mode(&self) -> IoMode {
        if self.direct.is_some() {
            IoMode::Direct
        } else {
            IoMode::Buffered
        }
    }

    /// The former name of [`FileDevice::io_mode`].
    pub fn read_back_mode(&self) -> IoMode {
        self.io_mode()
    }

    /// An `O_DIRECT` write of `data` (whole logical blocks at a block-aligned `offset`) through
    /// `direct`, from a page-aligned copy.
    fn write_direct(direct: &File, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut bounce = vec![0u8; data.len() + DIRECT_BUFFER_ALIGN];
        let pad = bounce.as_ptr().align_offset(DIRECT_BUFFER_ALIGN);
        let aligned = &mut bounce[pad..pad + data.len()];
        aligned.copy_from_slice(data);
        direct.write_all_at(aligned, offset)
    }

    /// An `O_DIRECT` read of `buf.len()` bytes at `offset` through `direct`: the range is
    /// widened to whole logical blocks and read into a page-aligned bounce buffer.
    fn read_direct(&self, direct: &File, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bs = u64::from(self.block_size);
        let start = offset / bs * bs;
        let end = (offset + buf.len() as u64).div_ceil(bs) * bs;
        let len = usize::try_from(end - start).map_err(io::Error::other)?;
        let mut bounce = vec![0u8; len + DIRECT_BUFFER_ALIGN];
        let pad = bounce.as_ptr().align_offset(DIRECT_BUFFER_ALIGN);
        let aligned = &mut bounce[pad..pad + len];
        let mut done = 0;
        while done < len {
            // A short read happens only at the end of a regular file whose size is not a
            // multiple of the block size; the requested range was checked to lie before it.
            match direct.read_at(&mut aligned[done..], start + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        let from = (offset - start) as usize;
        if done < from + buf.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("O_DIRECT read at {offset:#x} ended early"),
            ));
        }
        buf.copy_from_slice(&aligned[from..from + buf.len()]);
        Ok(())
    }
}

impl BlockDevice for FileDevice {
    fn size(&self) -> u64 {
        self.size
    }

    fn logical_block_size(&self) -> u32 {
        self.block_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        checked_range(offset, buf.len(), self.size)?;
        self.file.read_exact_at(buf, offset)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        checked_range(offset, data.len(), self.size)?;
        let bs = u64::from(self.block_size);
        if let Some(direct) = &self.direct
            && offset.is_multiple_of(bs)
            && (data.len() as u64).is_multiple_of(bs)
        {
            match Self::write_direct(direct, offset, data) {
                // EINVAL: the file system refuses this O_DIRECT write (alignment or support)
                // before writing anything; the buffered write below does the same work.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::INVAL.raw_os_error()) => {}
                other => return other,
            }
        }
        self.file.write_all_at(data, offset)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        if self.kind == DeviceKind::BlockDevice {
            match ioctl::blkflsbuf(&self.file) {
                Ok(()) => {}
                // Without CAP_SYS_ADMIN the cache stays; the O_DIRECT read-back does not need
                // it dropped, the buffered fallback does.
                Err(e) if self.direct.is_some() && e.kind() == io::ErrorKind::PermissionDenied => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn read_back_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        checked_range(offset, buf.len(), self.size)?;
        if let Some(direct) = &self.direct {
            return self.read_direct(direct, offset, buf);
        }
        if self.kind == DeviceKind::RegularFile {
            self.file.sync_data()?;
            fadvise(
                &self.file,
                offset,
                NonZeroU64::new(buf.len() as u64),
                Advice::DontNeed,
            )?;
        }
        self.file.read_exact_at(buf, offset)
    }
}
