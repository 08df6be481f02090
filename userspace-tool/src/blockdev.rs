//! Block I/O on the boot medium: the [`BlockDevice`] trait the media reader, the planner's
//! executor and the tests share, an in-memory device ([`MemDevice`]) and [`FileDevice`] for a
//! regular file (an SD card image) or a Linux block device.

use std::io;
use std::ops::Range;

mod file;
pub(crate) mod ioctl;

pub use file::{DeviceKind, FileDevice, IoMode, OpenError, ReadBack};

/// A byte-addressed device of fixed size.
///
/// Offsets and lengths need not be aligned: an implementation that needs alignment (O_DIRECT)
/// widens the access itself. Every access outside `[0, size)` is an error, never a short read
/// or an extension of the device.
pub trait BlockDevice {
    /// Size of the device in bytes.
    fn size(&self) -> u64;

    /// Logical block size in bytes: `BLKSSZGET` for a block device, 512 for files and memory.
    fn logical_block_size(&self) -> u32;

    /// Reads exactly `buf.len()` bytes at `offset` (from caches if the system has them).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Writes all of `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()>;

    /// Makes every write so far durable on the medium (and orders it before later writes).
    fn flush(&mut self) -> io::Result<()>;

    /// Reads exactly `buf.len()` bytes at `offset` from the medium itself, bypassing any cache,
    /// to verify what was written. Call [`BlockDevice::flush`] first. The default reads with
    /// [`BlockDevice::read_at`], right for devices without a cache.
    fn read_back_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_at(offset, buf)
    }

    /// Makes `to` the eMMC boot partition the ROM reads (EXT_CSD[179], read back): only a
    /// device spanning both boot partitions (layout (b), [`crate::emmc::ab::AbDevice`]) can;
    /// every other device refuses.
    fn switch_boot_partition(&mut self, to: crate::emmc::BootPartition) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("this device cannot switch the eMMC boot partition to {to}"),
        ))
    }
}

/// Reads `len` bytes at `offset` into a new vector.
pub fn read_vec<D: BlockDevice + ?Sized>(dev: &D, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0; len];
    dev.read_at(offset, &mut v)?;
    Ok(v)
}

/// The byte range `[offset, offset + len)` as indices into a device of `size` bytes, or an
/// `InvalidInput` error naming the range when it does not lie wholly inside the device.
pub fn checked_range(offset: u64, len: usize, size: u64) -> io::Result<Range<usize>> {
    offset
        .checked_add(len as u64)
        .filter(|&end| end <= size)
        .and_then(|end| Some(usize::try_from(offset).ok()?..usize::try_from(end).ok()?))
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("access {offset:#x}+{len:#x} lies outside the device ({size:#x} bytes)"),
            )
        })
}

/// A device held in memory: the tests' medium, and a scratch copy for dry runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemDevice {
    bytes: Vec<u8>,
    block_size: u32,
}

impl MemDevice {
    /// A zero-filled device of `size` bytes with 512-byte blocks.
    pub fn new(size: usize) -> Self {
        Self::from_bytes(vec![0; size])
    }

    /// A device holding `bytes`, with 512-byte blocks.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        MemDevice {
            bytes,
            block_size: boards::SECTOR_SIZE as u32,
        }
    }

    /// The same device reporting `block_size` as its logical block size.
    pub fn with_block_size(mut self, block_size: u32) -> Self {
        self.block_size = block_size;
        self
    }

    /// The contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The contents, mutable (for tests that damage a medium on purpose).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.bytes
    }

    /// The contents, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

impl BlockDevice for MemDevice {
    fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn logical_block_size(&self) -> u32 {
        self.block_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let r = checked_range(offset, buf.len(), self.size())?;
        buf.copy_from_slice(&self.bytes[r]);
        Ok(())
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let r = checked_range(offset, data.len(), self.size())?;
        self.bytes[r].copy_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_device_refuses_accesses_outside_it() {
        let mut d = MemDevice::new(4096);
        d.write_at(4000, &[1; 96]).unwrap();
        assert_eq!(read_vec(&d, 4095, 1).unwrap(), [1]);
        assert!(d.write_at(4001, &[1; 96]).is_err());
        assert!(d.read_at(u64::MAX, &mut [0; 2]).is_err());
        assert!(d.read_at(4096, &mut []).is_ok());
        assert_eq!(d.size(), 4096);
        assert_eq!(d.logical_block_size(), 512);
    }
}
