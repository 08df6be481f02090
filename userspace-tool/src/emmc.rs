//! eMMC hardware boot partitions (issue 14; README "eMMC layouts"): EXT_CSD[179]
//! PARTITION_CONFIG, the one register write `ubootctl` makes (a CMD6 that changes
//! BOOT_PARTITION_ENABLE only), and the two layouts.
//!
//! - **Layout (a)**, AN12900 inside the enabled boot partition: the boot partition is the
//!   device, `boards::AN12900_LAYOUT` applies unchanged; the medium is
//!   [`crate::media::Medium::BootPartition`]. Only the partition EXT_CSD[179] enables is read by
//!   the ROM, so only that one is written.
//! - **Layout (b)**, A/B across `boot0`/`boot1`: see [`ab`].
//!
//! EXT_CSD is reached through [`ExtCsdAccess`]: on Linux the `MMC_IOC_CMD` ioctl on the main
//! block device ([`IoctlExtCsd`]; CMD8 to read, CMD6 to write), in tests an in-memory register
//! ([`MemExtCsd`]) or a 512-byte file standing for it ([`FileExtCsd`]).

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

pub mod ab;
pub mod ab_plan;

pub use boot_core::emmc::{BootEnable, BootPartition, PartitionConfig};

/// Index of PARTITION_CONFIG in EXT_CSD, as an index into the 512 bytes.
const PARTITION_CONFIG: usize = boot_core::emmc::EXT_CSD_PARTITION_CONFIG as usize;

/// The EXT_CSD register of one eMMC: read it whole, write one byte.
pub trait ExtCsdAccess {
    /// CMD8 SEND_EXT_CSD: the 512 bytes.
    fn read_ext_csd(&mut self) -> io::Result<[u8; 512]>;

    /// CMD6 SWITCH, access mode WRITE_BYTE: EXT_CSD[`index`] = `value`
    /// (`boot_core::emmc::switch_argument`). Callers go through [`switch_boot_partition`],
    /// which never sends an index >= 192 or an access value 3-7.
    fn write_byte(&mut self, index: u8, value: u8) -> io::Result<()>;
}

impl<T: ExtCsdAccess + ?Sized> ExtCsdAccess for &mut T {
    fn read_ext_csd(&mut self) -> io::Result<[u8; 512]> {
        (**self).read_ext_csd()
    }
    fn write_byte(&mut self, index: u8, value: u8) -> io::Result<()> {
        (**self).write_byte(index, value)
    }
}

impl<T: ExtCsdAccess + ?Sized> ExtCsdAccess for Box<T> {
    fn read_ext_csd(&mut self) -> io::Result<[u8; 512]> {
        (**self).read_ext_csd()
    }
    fn write_byte(&mut self, index: u8, value: u8) -> io::Result<()> {
        (**self).write_byte(index, value)
    }
}

/// Reads PARTITION_CONFIG.
pub fn read_partition_config(e: &mut dyn ExtCsdAccess) -> io::Result<PartitionConfig> {
    Ok(PartitionConfig(e.read_ext_csd()?[PARTITION_CONFIG]))
}

/// Why the switch did not happen (or did not take).
#[derive(Debug)]
pub enum SwitchError {
    /// The register could not be read or the command failed.
    Io(io::Error),
    /// The value to write has a PARTITION_ACCESS the card must not be sent (3-7): refused.
    BadAccess(PartitionConfig),
    /// The command succeeded but the register reads back unchanged or different: the kernel
    /// bug RAUC documents (README "eMMC layouts").
    NotTaken {
        /// Sent.
        wrote: PartitionConfig,
        /// Read back.
        read: PartitionConfig,
    },
}

impl fmt::Display for SwitchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchError::Io(e) => write!(f, "EXT_CSD[179] access failed: {e}"),
            SwitchError::BadAccess(v) => write!(
                f,
                "EXT_CSD[179] would be {v}: PARTITION_ACCESS 3-7 is never sent; not switched"
            ),
            SwitchError::NotTaken { wrote, read } => write!(
                f,
                "EXT_CSD[179] reads {read} after writing {:#04x}: the switch did not take. \
                 Several stable Linux kernels drop this write (6.8-6.8.2, 6.7.3-6.7.11, \
                 6.6.15-6.6.23, 6.1.76-6.1.83, 5.15.149-153, 5.10.210-214, 5.4.269-273, and \
                 before 4.14.31/4.15.14/4.16, as listed by RAUC); update the kernel",
                wrote.0
            ),
        }
    }
}

impl std::error::Error for SwitchError {}

impl From<io::Error> for SwitchError {
    fn from(e: io::Error) -> Self {
        SwitchError::Io(e)
    }
}

/// What a switch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switched {
    /// The register before.
    pub before: PartitionConfig,
    /// The register after (read back).
    pub after: PartitionConfig,
}

/// Makes `to` the boot partition: reads EXT_CSD[179], sends one CMD6 that changes
/// BOOT_PARTITION_ENABLE only, and reads the register back. Already enabled: nothing sent.
pub fn switch_boot_partition(
    e: &mut dyn ExtCsdAccess,
    to: BootPartition,
) -> Result<Switched, SwitchError> {
    let before = read_partition_config(e)?;
    let wanted = before.with_enabled(to);
    if wanted == before {
        return Ok(Switched {
            before,
            after: before,
        });
    }
    if wanted.access() > 2 {
        return Err(SwitchError::BadAccess(wanted));
    }
    e.write_byte(boot_core::emmc::EXT_CSD_PARTITION_CONFIG, wanted.0)?;
    let after = read_partition_config(e)?;
    if after.enabled_partition() != Some(to) {
        return Err(SwitchError::NotTaken {
            wrote: wanted,
            read: after,
        });
    }
    Ok(Switched { before, after })
}

/// An EXT_CSD in memory, checking what the card would refuse (the tests' eMMC).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemExtCsd {
    /// The register.
    pub bytes: [u8; 512],
    /// Commands sent so far (`(index, value)`).
    pub writes: Vec<(u8, u8)>,
    /// Simulates the kernel bug: writes are accepted and dropped.
    pub drop_writes: bool,
}

impl MemExtCsd {
    /// A register with PARTITION_CONFIG = `pc`, everything else zero.
    pub fn new(pc: u8) -> Self {
        let mut bytes = [0; 512];
        bytes[PARTITION_CONFIG] = pc;
        MemExtCsd {
            bytes,
            writes: Vec::new(),
            drop_writes: false,
        }
    }

    /// PARTITION_CONFIG now.
    pub fn partition_config(&self) -> PartitionConfig {
        PartitionConfig(self.bytes[PARTITION_CONFIG])
    }
}

impl ExtCsdAccess for MemExtCsd {
    fn read_ext_csd(&mut self) -> io::Result<[u8; 512]> {
        Ok(self.bytes)
    }

    fn write_byte(&mut self, index: u8, value: u8) -> io::Result<()> {
        check_write(index, value)?;
        self.writes.push((index, value));
        if !self.drop_writes {
            self.bytes[usize::from(index)] = value;
        }
        Ok(())
    }
}

/// What a card (or QEMU) would fail on: an index in the read-only segment (no
/// `boot_core::emmc::switch_argument`), an access value 3-7 in PARTITION_CONFIG.
fn check_write(index: u8, value: u8) -> io::Result<()> {
    if boot_core::emmc::switch_argument(index, value).is_none()
        || (index == boot_core::emmc::EXT_CSD_PARTITION_CONFIG
            && PartitionConfig(value).access() > 2)
    {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("SWITCH_ERROR: EXT_CSD[{index}] = {value:#04x}"),
        ));
    }
    Ok(())
}

/// A 512-byte file standing for EXT_CSD (the hidden `--test-ext-csd` option of the CLI tests):
/// read whole, written one byte at a time, with the card's checks.
#[derive(Debug, Clone)]
pub struct FileExtCsd(pub PathBuf);

impl ExtCsdAccess for FileExtCsd {
    fn read_ext_csd(&mut self) -> io::Result<[u8; 512]> {
        let b = fs::read(&self.0)?;
        b.try_into().map_err(|b: Vec<u8>| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{} holds {} bytes, EXT_CSD is 512",
                    self.0.display(),
                    b.len()
                ),
            )
        })
    }

    fn write_byte(&mut self, index: u8, value: u8) -> io::Result<()> {
        check_write(index, value)?;
        let mut b = self.read_ext_csd()?;
        b[usize::from(index)] = value;
        fs::write(&self.0, b)
    }
}

/// EXT_CSD of a Linux eMMC through `MMC_IOC_CMD` on its main block device (`/dev/mmcblkN`):
/// the kernel sends the command between its own requests, so the card's partition access is
/// the kernel's business (it restores its own on the next request).
#[derive(Debug)]
pub struct IoctlExtCsd {
    file: fs::File,
    path: PathBuf,
}

impl IoctlExtCsd {
    /// Opens `path` (`/dev/mmcblkN`, not a boot partition) read-only: the ioctl needs
    /// CAP_SYS_RAWIO, not a writable descriptor.
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = fs::File::open(path)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(IoctlExtCsd {
            file,
            path: path.to_owned(),
        })
    }
}

impl ExtCsdAccess for IoctlExtCsd {
    fn read_ext_csd(&mut self) -> io::Result<[u8; 512]> {
        crate::blockdev::ioctl::mmc_send_ext_csd(&self.file)
            .map_err(|e| io::Error::new(e.kind(), format!("CMD8 on {}: {e}", self.path.display())))
    }

    fn write_byte(&mut self, index: u8, value: u8) -> io::Result<()> {
        check_write(index, value)?;
        crate::blockdev::ioctl::mmc_switch_write_byte(&self.file, index, value)
            .map_err(|e| io::Error::new(e.kind(), format!("CMD6 on {}: {e}", self.path.display())))
    }
}

/// The main eMMC device of a boot partition path: `/dev/mmcblk2boot0` -> `/dev/mmcblk2`
/// (the same for a test file named so).
pub fn main_device_of(boot_partition: &Path) -> Option<PathBuf> {
    let name = boot_partition.file_name()?.to_str()?;
    let cut = name.rfind("boot")?;
    crate::sysblock::is_boot_partition_name(name)
        .then(|| boot_partition.with_file_name(&name[..cut]))
}

/// A boot partition's path from the main device's: `/dev/mmcblk2` -> `/dev/mmcblk2boot1`.
pub fn boot_partition_path(main: &Path, part: BootPartition) -> PathBuf {
    let mut s = main.as_os_str().to_owned();
    s.push(part.name());
    PathBuf::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn switch_sends_one_command_and_reads_back() {
        let mut e = MemExtCsd::new(0x48);
        let s = switch_boot_partition(&mut e, BootPartition::Boot1).unwrap();
        assert_eq!((s.before.0, s.after.0), (0x48, 0x50));
        assert_eq!(e.writes, [(179, 0x50)]);
        // Already there: nothing sent.
        switch_boot_partition(&mut e, BootPartition::Boot1).unwrap();
        assert_eq!(e.writes.len(), 1);
        // The kernel bug: accepted, not applied.
        let mut bug = MemExtCsd::new(0x48);
        bug.drop_writes = true;
        let err = switch_boot_partition(&mut bug, BootPartition::Boot1).unwrap_err();
        assert!(matches!(err, SwitchError::NotTaken { .. }), "{err}");
        assert!(err.to_string().contains("6.6.15-6.6.23"));
        // An access value the card must not get is never sent.
        let mut odd = MemExtCsd::new(0x4B);
        assert!(matches!(
            switch_boot_partition(&mut odd, BootPartition::Boot1),
            Err(SwitchError::BadAccess(_))
        ));
        assert!(odd.writes.is_empty());
        assert!(odd.write_byte(192, 0).is_err());
        assert!(odd.write_byte(179, 0x4B).is_err());
    }

    #[test]
    fn device_paths() {
        assert_eq!(
            main_device_of(Path::new("/dev/mmcblk2boot1")),
            Some(PathBuf::from("/dev/mmcblk2"))
        );
        assert_eq!(main_device_of(Path::new("/dev/mmcblk2")), None);
        assert_eq!(main_device_of(Path::new("/dev/mmcblk2p1")), None);
        assert_eq!(
            boot_partition_path(Path::new("/dev/mmcblk2"), BootPartition::Boot1),
            PathBuf::from("/dev/mmcblk2boot1")
        );
    }
}
