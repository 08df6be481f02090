//! SD card images (design.md §4): SIT at sector 0x41, primary flash.bin at sector 0x42,
//! secondary at `(firstSectorNumber + 0x42) × 512`; power-of-two sizes (QEMU's SD model
//! refuses others: ≤ 2 GiB is an SDSC card, 4 GiB an SDHC card); sparse files.
//!
//! Corruption helpers compute offsets by parsing the flash.bin copies on the disk
//! ([`copy_offsets`], [`primary_fit_data_offset`], …) and flip bytes in place ([`flip_byte`]).

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use boards::{AN12900_LAYOUT, SECTOR_SIZE};
use imx_hab::sit::SIT_TAG;

use crate::flash_bin::FlashBinOffsets;
use crate::{Context, Error, Result, bail};

/// 64 MiB: QEMU makes it an SDSC card (byte addressing).
pub const SDSC_64M: u64 = 64 << 20;
/// 4 GiB: QEMU makes it an SDHC card (block addressing). Written sparse.
pub const SDHC_4G: u64 = 4 << 30;

/// What to put in sector 0x41.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SitMode {
    /// A valid SIT with the spec's `first_sector`.
    Valid,
    /// No SIT (the sector stays zero).
    None,
    /// A SIT with this (wrong) tag word instead of 0x00112233.
    BadTag(u32),
}

/// A disk to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    /// Image size in bytes; must be a power of two.
    pub size: u64,
    /// The SIT's `firstSectorNumber` (also where the secondary goes). Default 0x1000.
    pub first_sector: u32,
    /// The SIT sector's content.
    pub sit: SitMode,
    /// The primary flash.bin (at sector 0x42), if any.
    pub primary: Option<Vec<u8>>,
    /// The secondary flash.bin (at `(first_sector + 0x42) × 512`), if any.
    pub secondary: Option<Vec<u8>>,
}

impl DiskSpec {
    /// A 64 MiB disk, standard SIT, both copies.
    pub fn new(primary: Vec<u8>, secondary: Vec<u8>) -> Self {
        DiskSpec {
            size: SDSC_64M,
            first_sector: AN12900_LAYOUT.standard_first_sector,
            sit: SitMode::Valid,
            primary: Some(primary),
            secondary: Some(secondary),
        }
    }

    /// Byte offset of the secondary copy.
    pub fn secondary_offset(&self) -> u64 {
        secondary_offset(self.first_sector)
    }
}

/// Byte offset of the primary flash.bin (sector 0x42 = 0x8400).
pub const PRIMARY_OFFSET: u64 = AN12900_LAYOUT.primary_offset();

/// Byte offset of the secondary flash.bin for a SIT `firstSectorNumber`.
pub fn secondary_offset(first_sector: u32) -> u64 {
    (u64::from(first_sector) + AN12900_LAYOUT.image_sector) * SECTOR_SIZE
}

/// The 512-byte SIT sector for `mode`.
pub fn sit_sector(mode: SitMode, first_sector: u32) -> [u8; SECTOR_SIZE as usize] {
    match mode {
        SitMode::Valid => imx_hab::sit::build_sector(first_sector),
        SitMode::None => [0; SECTOR_SIZE as usize],
        SitMode::BadTag(tag) => {
            let mut s = imx_hab::sit::build_sector(first_sector);
            s[8..12].copy_from_slice(&tag.to_le_bytes());
            s
        }
    }
}

/// Writes the disk image `path` (replacing it): a sparse file of `spec.size` bytes with the
/// SIT and the copies. Checks the size is a power of two, the primary ends before the
/// secondary starts, and everything lies inside the disk.
pub fn build_disk(path: &Path, spec: &DiskSpec) -> Result<()> {
    if !spec.size.is_power_of_two() {
        bail!(
            "disk size {:#x} is not a power of two (QEMU: \"Invalid SD card size\")",
            spec.size
        );
    }
    if matches!(spec.sit, SitMode::BadTag(SIT_TAG)) {
        bail!("SitMode::BadTag with the valid tag");
    }
    let sec_off = spec.secondary_offset();
    let slot = sec_off - PRIMARY_OFFSET;
    if let Some(p) = &spec.primary
        && p.len() as u64 > slot
    {
        bail!(
            "the primary flash.bin ({:#x} bytes) overlaps the secondary at {sec_off:#x}",
            p.len()
        );
    }
    if let Some(s) = &spec.secondary
        && sec_off + s.len() as u64 > spec.size
    {
        bail!(
            "the secondary flash.bin at {sec_off:#x} ({:#x} bytes) ends past the {:#x}-byte disk",
            s.len(),
            spec.size
        );
    }
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(spec.size)?;
    let mut put = |at: u64, bytes: &[u8]| -> Result<()> {
        f.seek(SeekFrom::Start(at))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {} at {at:#x}", path.display()))
    };
    put(
        AN12900_LAYOUT.sit_offset(),
        &sit_sector(spec.sit, spec.first_sector),
    )?;
    if let Some(p) = &spec.primary {
        put(PRIMARY_OFFSET, p)?;
    }
    if let Some(s) = &spec.secondary {
        put(sec_off, s)?;
    }
    f.sync_all()?;
    Ok(())
}

/// Reads `len` bytes at `offset` of a file.
pub fn read_at(path: &Path, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf)
        .with_context(|| format!("reading {len} bytes at {offset:#x} of {}", path.display()))?;
    Ok(buf)
}

/// Overwrites bytes at `offset` of a file.
pub fn write_at(path: &Path, offset: u64, bytes: &[u8]) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// XORs the byte at `offset` of a file with 0xFF (a "flipped byte"); returns the old value.
pub fn flip_byte(path: &Path, offset: u64) -> Result<u8> {
    let old = read_at(path, offset, 1)?[0];
    write_at(path, offset, &[old ^ 0xFF])?;
    Ok(old)
}

/// Copies `src` to `dst` keeping holes where `src` has whole zero 64 KiB blocks (so a 4 GiB
/// sparse image stays sparse). Use a copy per run: the SD model writes through to the file.
pub fn copy_sparse(src: &Path, dst: &Path) -> Result<()> {
    let mut i = File::open(src).with_context(|| format!("opening {}", src.display()))?;
    let len = i.metadata()?.len();
    let mut o = File::create(dst).with_context(|| format!("creating {}", dst.display()))?;
    o.set_len(len)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0u64;
    while at < len {
        let n = (len - at).min(buf.len() as u64) as usize;
        i.read_exact(&mut buf[..n])?;
        if buf[..n].iter().any(|&b| b != 0) {
            o.seek(SeekFrom::Start(at))?;
            o.write_all(&buf[..n])?;
        }
        at += n as u64;
    }
    o.sync_all()?;
    Ok(())
}

/// Reads the SIT of a disk: `(tag, firstSectorNumber)`.
pub fn read_sit(disk: &Path) -> Result<(u32, u32)> {
    let s = read_at(disk, AN12900_LAYOUT.sit_offset(), 16)?;
    let w = |at: usize| u32::from_le_bytes([s[at], s[at + 1], s[at + 2], s[at + 3]]);
    Ok((w(8), w(12)))
}

/// Which copy on a disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageCopy {
    /// At sector 0x42.
    Primary,
    /// Where the disk's SIT points (the SIT must have the right tag).
    Secondary,
}

/// Byte offset of a copy on `disk` (the secondary's from the disk's SIT).
pub fn copy_offset(disk: &Path, copy: ImageCopy) -> Result<u64> {
    match copy {
        ImageCopy::Primary => Ok(PRIMARY_OFFSET),
        ImageCopy::Secondary => {
            let (tag, first) = read_sit(disk)?;
            if tag != SIT_TAG {
                bail!(
                    "the SIT of {} has tag {tag:#x}: no secondary",
                    disk.display()
                );
            }
            Ok(secondary_offset(first))
        }
    }
}

/// Reads the flash.bin copy (up to a 2 MiB slot, less at the end of the disk).
pub fn read_copy(disk: &Path, copy: ImageCopy) -> Result<Vec<u8>> {
    let at = copy_offset(disk, copy)?;
    let size = std::fs::metadata(disk)?.len();
    let len = crate::flash_bin::MAX_FLASH_BIN.min(size.saturating_sub(at));
    read_at(disk, at, len as usize)
}

/// Where the parts of a copy lie **on the disk** (absolute byte offsets): parse the copy and
/// shift its [`FlashBinOffsets`] by the copy's offset.
pub fn copy_offsets(disk: &Path, copy: ImageCopy) -> Result<FlashBinOffsets> {
    let at = copy_offset(disk, copy)?;
    let bytes = read_copy(disk, copy)?;
    let o = FlashBinOffsets::of(&bytes).map_err(|e: Error| e.context(format!("{copy:?} copy")))?;
    Ok(o.shifted(at))
}

/// Disk offset of a byte in the middle of the primary FIT's first image data.
pub fn primary_fit_data_offset(disk: &Path) -> Result<u64> {
    copy_offsets(disk, ImageCopy::Primary)?.fit_data_byte()
}

/// Disk offset of the primary FIT's IVT (flip `+ 4`, the entry word, or `+ 0` the tag).
pub fn primary_fit_ivt_offset(disk: &Path) -> Result<u64> {
    Ok(copy_offsets(disk, ImageCopy::Primary)?.fit_ivt)
}

/// Disk offset of the primary FIT's CSF (the one the shim checks).
pub fn primary_csf_offset(disk: &Path) -> Result<u64> {
    Ok(copy_offsets(disk, ImageCopy::Primary)?.fit_csf)
}

/// Disk offset of the primary SPL's CSF (checked by the ROM on silicon, not by the shim).
pub fn primary_spl_csf_offset(disk: &Path) -> Result<u64> {
    Ok(copy_offsets(disk, ImageCopy::Primary)?.spl_csf)
}

/// Disk offset of a byte in the middle of the secondary FIT's first image data.
pub fn secondary_fit_data_offset(disk: &Path) -> Result<u64> {
    copy_offsets(disk, ImageCopy::Secondary)?.fit_data_byte()
}

/// Disk offset of the SIT tag word (flip it for "SIT tag wrong").
pub const SIT_TAG_OFFSET: u64 = AN12900_LAYOUT.sit_offset() + 8;

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_copy(fill: u8, len: usize) -> Vec<u8> {
        vec![fill; len]
    }

    #[test]
    fn layout_on_disk() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("sd.img");
        build_disk(&img, &DiskSpec::new(fake_copy(1, 1000), fake_copy(2, 1000))).unwrap();
        assert_eq!(std::fs::metadata(&img).unwrap().len(), SDSC_64M);
        let sit = read_at(&img, 0x8200, 512).unwrap();
        assert_eq!(
            &sit[..20],
            &[
                0, 0, 0, 0, 0, 0, 0, 0, 0x33, 0x22, 0x11, 0, 0, 0x10, 0, 0, 0, 0, 0, 0
            ]
        );
        assert!(sit[20..].iter().all(|&b| b == 0));
        assert_eq!(read_at(&img, 0x8400, 1000).unwrap(), fake_copy(1, 1000));
        assert_eq!(read_at(&img, 0x20_8400, 1000).unwrap(), fake_copy(2, 1000));
        assert_eq!(read_sit(&img).unwrap(), (SIT_TAG, 0x1000));
        assert_eq!(copy_offset(&img, ImageCopy::Secondary).unwrap(), 0x20_8400);
        assert_eq!(flip_byte(&img, 0x8400).unwrap(), 1);
        assert_eq!(read_at(&img, 0x8400, 1).unwrap(), [0xFE]);
    }

    #[test]
    fn non_standard_first_sector_bad_tag_and_no_sit() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("sd.img");
        let mut spec = DiskSpec::new(fake_copy(1, 100), fake_copy(2, 100));
        spec.first_sector = 0x2345;
        build_disk(&img, &spec).unwrap();
        assert_eq!(
            read_at(&img, (0x2345 + 0x42) * 512, 100).unwrap(),
            fake_copy(2, 100)
        );
        assert_eq!(read_sit(&img).unwrap(), (SIT_TAG, 0x2345));
        spec.sit = SitMode::BadTag(0x00112234);
        build_disk(&img, &spec).unwrap();
        assert!(copy_offset(&img, ImageCopy::Secondary).is_err());
        spec.sit = SitMode::None;
        build_disk(&img, &spec).unwrap();
        assert_eq!(read_sit(&img).unwrap(), (0, 0));
    }

    #[test]
    fn sizes_are_checked_and_4g_is_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("sd.img");
        let mut spec = DiskSpec::new(fake_copy(1, 100), fake_copy(2, 100));
        spec.size = 48 << 20;
        assert!(build_disk(&img, &spec).is_err());
        spec.size = SDSC_64M;
        spec.primary = Some(fake_copy(1, (2 << 20) + 1));
        assert!(build_disk(&img, &spec).is_err());
        spec.primary = Some(fake_copy(1, 100));
        spec.size = SDHC_4G;
        build_disk(&img, &spec).unwrap();
        let meta = std::fs::metadata(&img).unwrap();
        assert_eq!(meta.len(), SDHC_4G);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            assert!(meta.blocks() * 512 < 16 << 20, "not sparse");
        }
    }
}
