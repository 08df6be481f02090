//! eMMC images for QEMU's `emmc` device (docs/qemu-imx8mp.md §4.2; design.md §5.5): one file
//! holding boot0 at \[0, N), boot1 at \[N, 2N) and the user area from 2N, the whole file a power
//! of two (QEMU 10.0 refuses others). N = [`BOOT_PARTITION_BYTES`] (4 MiB), file
//! [`EMMC_BYTES`] (64 MiB) unless a test needs more.
//!
//! - Layout (a): the AN12900 layout inside one boot partition, `firstSectorNumber`
//!   = `boards::MediaLayout::in_boot_partition(N)` (0xFDF for 4 MiB).
//! - Layout (b): one copy at 0x8400 in each boot partition; EXT_CSD\[179\]
//!   (`boot-config`) enables the active one.

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use boards::{AN12900_LAYOUT, BootCfg, BootDevice, EmmcLayout, SECTOR_SIZE};
use boot_core::emmc::BootPartition;

use crate::disk::ImageCopy;
use crate::flash_bin::FlashBinOffsets;
use crate::{Context, Error, Result, bail};

/// Boot partition size N (QEMU `boot-partition-size`, a multiple of 128 KiB).
pub const BOOT_PARTITION_BYTES: u64 = 4 << 20;
/// The image file: 64 MiB (user area 56 MiB).
pub const EMMC_BYTES: u64 = 64 << 20;
/// EXT_CSD\[179\] the contract starts with: BOOT_ACK, boot0 enabled, user area accessed.
pub const BOOT_CONFIG_BOOT0: u8 = 0x48;
/// EXT_CSD\[179\] with boot1 enabled.
pub const BOOT_CONFIG_BOOT1: u8 = 0x50;

/// How QEMU attaches the eMMC (on uSDHC3; the SD card stays on bus 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmmcAttach {
    /// The image (QEMU writes through to it: pass a copy).
    pub image: PathBuf,
    /// `boot-partition-size` in bytes.
    pub boot_partition_bytes: u64,
    /// `boot-config`: EXT_CSD\[179\] at every card reset (our QEMU keeps the enable and ACK
    /// bits a CMD6 wrote within one process).
    pub boot_config: u8,
}

impl EmmcAttach {
    /// The contract's attachment of `image` with boot0 enabled.
    pub fn new(image: impl Into<PathBuf>) -> Self {
        EmmcAttach {
            image: image.into(),
            boot_partition_bytes: BOOT_PARTITION_BYTES,
            boot_config: BOOT_CONFIG_BOOT0,
        }
    }

    /// `-drive if=none,id=emmc0,file=IMG,format=raw -device emmc,id=emmc,drive=emmc0,
    /// bus=sd-bus,boot-partition-size=N,boot-config=0xNN` (`bus=sd-bus` is uSDHC3,
    /// qemu-emmc.md).
    pub fn args(&self) -> Vec<String> {
        let image = self.image.display().to_string().replace(',', ",,");
        vec![
            "-drive".into(),
            format!("if=none,id=emmc0,file={image},format=raw"),
            "-device".into(),
            format!(
                "emmc,id=emmc,drive=emmc0,bus=sd-bus,boot-partition-size={},boot-config={:#04x}",
                self.boot_partition_bytes, self.boot_config
            ),
        ]
    }
}

/// File offset of a boot partition.
pub const fn partition_offset(p: BootPartition) -> u64 {
    match p {
        BootPartition::Boot0 => 0,
        BootPartition::Boot1 => BOOT_PARTITION_BYTES,
    }
}

/// Layout (a)'s `firstSectorNumber` for N = [`BOOT_PARTITION_BYTES`].
pub fn layout_a_first_sector() -> u32 {
    AN12900_LAYOUT
        .in_boot_partition(BOOT_PARTITION_BYTES)
        .expect("4 MiB holds layout (a)")
        .standard_first_sector
}

/// File offset of `copy` on an eMMC image in `layout` whose active partition is `active`
/// (layout (a): in `active`; layout (b): the primary in `active`, the secondary in the other).
pub fn copy_offset(layout: EmmcLayout, active: BootPartition, copy: ImageCopy) -> u64 {
    let base = partition_offset(active);
    match (layout, copy) {
        (_, ImageCopy::Primary) => base + AN12900_LAYOUT.primary_offset(),
        (EmmcLayout::InOnePartition, ImageCopy::Secondary) => {
            base + (u64::from(layout_a_first_sector()) + AN12900_LAYOUT.image_sector) * SECTOR_SIZE
        }
        (EmmcLayout::AcrossPartitions, ImageCopy::Secondary) => {
            partition_offset(active.other()) + AN12900_LAYOUT.primary_offset()
        }
    }
}

/// Where the parts of `copy` lie in the image file (absolute offsets).
pub fn copy_offsets(
    image: &Path,
    layout: EmmcLayout,
    active: BootPartition,
    copy: ImageCopy,
) -> Result<FlashBinOffsets> {
    let at = copy_offset(layout, active, copy);
    let len = crate::flash_bin::MAX_FLASH_BIN.min(BOOT_PARTITION_BYTES - at % BOOT_PARTITION_BYTES);
    let bytes = crate::disk::read_at(image, at, len as usize)?;
    let o = FlashBinOffsets::of(&bytes).map_err(|e: Error| e.context(format!("{copy:?} copy")))?;
    Ok(o.shifted(at))
}

/// The slots `(primary, secondary)` of `layout` on [`BOOT_PARTITION_BYTES`] partitions, as
/// the one judgement bounds them (`boot_core::emmc::board_for`, the SIT this module writes).
pub fn slots(layout: EmmcLayout) -> (u64, u64) {
    let board =
        boot_core::emmc::board_for(&boards::qemu_imx8mp::BOARD, layout, BOOT_PARTITION_BYTES)
            .expect("4 MiB holds both layouts");
    let m = board.media;
    let device = match layout {
        EmmcLayout::InOnePartition => BOOT_PARTITION_BYTES,
        EmmcLayout::AcrossPartitions => 2 * BOOT_PARTITION_BYTES,
    };
    m.slots(m.standard_first_sector, device)
}

/// Writes the eMMC image `path` (replacing it, sparse, [`EMMC_BYTES`]): layout (a) in boot0
/// (SIT, primary, secondary) or layout (b) (primary in boot0, secondary in boot1). Each copy
/// must fit its slot ([`slots`]).
pub fn build_emmc(path: &Path, layout: EmmcLayout, primary: &[u8], secondary: &[u8]) -> Result<()> {
    let active = BootPartition::Boot0;
    let p_at = copy_offset(layout, active, ImageCopy::Primary);
    let s_at = copy_offset(layout, active, ImageCopy::Secondary);
    let (p_slot, s_slot) = slots(layout);
    for (what, bytes, slot) in [
        ("primary", primary, p_slot),
        ("secondary", secondary, s_slot),
    ] {
        if bytes.len() as u64 > slot {
            bail!(
                "the {what} flash.bin ({:#x} bytes) does not fit the {:#x}-byte slot of eMMC \
                 layout ({})",
                bytes.len(),
                slot,
                layout.name()
            );
        }
    }
    let mut f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(EMMC_BYTES)?;
    let mut put = |at: u64, bytes: &[u8]| -> Result<()> {
        f.seek(SeekFrom::Start(at))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {} at {at:#x}", path.display()))
    };
    if layout == EmmcLayout::InOnePartition {
        put(
            partition_offset(active) + AN12900_LAYOUT.sit_offset(),
            &imx_hab::sit::build_sector(layout_a_first_sector()),
        )?;
    }
    put(p_at, primary)?;
    put(s_at, secondary)?;
    f.sync_all()?;
    Ok(())
}

/// The 64-byte fuse block `block` with BOOT_CFG selecting the eMMC in `layout`
/// (`rom_cross_fallback`: the ROM model's knob).
pub fn fuse_block_for(block: [u8; 64], layout: EmmcLayout, rom_cross_fallback: bool) -> [u8; 64] {
    let mut b = block;
    let cfg = BootCfg::of(BootDevice::Emmc(layout), rom_cross_fallback);
    let at = boards::boot_cfg::SIM_BLOCK_OFFSET;
    b[at..at + 4].copy_from_slice(&cfg.0.to_le_bytes());
    b
}

/// Parses `a` or `b`.
pub fn parse_layout(s: &str) -> std::result::Result<EmmcLayout, String> {
    match s {
        "a" => Ok(EmmcLayout::InOnePartition),
        "b" => Ok(EmmcLayout::AcrossPartitions),
        _ => Err(format!(
            "eMMC layout {s:?}: `a` (AN12900 inside boot0) or `b` (A/B across boot0/boot1)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_layouts_on_file() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("emmc.img");
        build_emmc(&img, EmmcLayout::InOnePartition, &[1; 1000], &[2; 1000]).unwrap();
        assert_eq!(std::fs::metadata(&img).unwrap().len(), EMMC_BYTES);
        let sit = crate::disk::read_at(&img, 0x8200, 16).unwrap();
        assert_eq!(&sit[8..16], &[0x33, 0x22, 0x11, 0, 0xDF, 0x0F, 0, 0]);
        assert_eq!(crate::disk::read_at(&img, 0x8400, 2).unwrap(), [1, 1]);
        assert_eq!(crate::disk::read_at(&img, 0x20_4200, 2).unwrap(), [2, 2]);
        build_emmc(&img, EmmcLayout::AcrossPartitions, &[1; 1000], &[2; 1000]).unwrap();
        assert_eq!(crate::disk::read_at(&img, 0x8200, 16).unwrap(), [0; 16]);
        assert_eq!(crate::disk::read_at(&img, 0x8400, 1).unwrap(), [1]);
        assert_eq!(
            crate::disk::read_at(&img, (4 << 20) + 0x8400, 1).unwrap(),
            [2]
        );
        assert_eq!(
            copy_offset(
                EmmcLayout::AcrossPartitions,
                BootPartition::Boot1,
                ImageCopy::Secondary
            ),
            0x8400
        );
        // A copy larger than layout (a)'s slot is refused.
        let big = vec![0u8; 0x1F_C000];
        assert!(build_emmc(&img, EmmcLayout::InOnePartition, &big, &[1]).is_err());
        // Layout (b): the judgement's 2 MiB slot on 4 MiB partitions, not N - 0x8400.
        assert_eq!(slots(EmmcLayout::AcrossPartitions), (2 << 20, 2 << 20));
        let over = vec![0u8; (2 << 20) + 512];
        for (p, s) in [(&over[..], &[1u8][..]), (&[1u8][..], &over[..])] {
            let e = build_emmc(&img, EmmcLayout::AcrossPartitions, p, s).unwrap_err();
            assert!(format!("{e:#}").contains("0x200000-byte slot"), "{e:#}");
        }
        let fits = vec![0u8; 2 << 20];
        build_emmc(&img, EmmcLayout::AcrossPartitions, &fits, &fits).unwrap();
    }

    #[test]
    fn attachment_arguments() {
        let a = EmmcAttach::new("/t/e,1.img").args().join(" ");
        assert_eq!(
            a,
            "-drive if=none,id=emmc0,file=/t/e,,1.img,format=raw -device \
             emmc,id=emmc,drive=emmc0,bus=sd-bus,boot-partition-size=4194304,boot-config=0x48"
        );
    }

    #[test]
    fn fuse_word() {
        let b = fuse_block_for([0; 64], EmmcLayout::AcrossPartitions, true);
        assert_eq!(&b[48..52], &[0x00, 0x20, 0x03, 0x00]);
        assert_eq!(
            BootCfg::from_simulated_block(&b).device(),
            Ok(BootDevice::Emmc(EmmcLayout::AcrossPartitions))
        );
        assert!(parse_layout("c").is_err());
    }
}
