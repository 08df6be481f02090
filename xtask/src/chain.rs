//! The real boot chain in QEMU (issue 17): shim → TF-A BL31 → U-Boot proper → Linux.
//!
//! **The FIT** is laid out as NXP's flow (U-Boot's `arch/arm/dts/imx8mp-u-boot.dtsi`) lays it
//! out, signed with the test PKI like every simulation image:
//!
//! | image | type / os | load | entry | data |
//! |---|---|---|---|---|
//! | `uboot` | standalone / u-boot | [`UBOOT_LOAD`] | — | `u-boot-nodtb.bin` |
//! | `atf` | firmware / arm-trusted-firmware | [`BL31_LOAD`] | [`BL31_LOAD`] | `bl31.bin` |
//! | `fdt-1` | flat_dt | U-Boot's `_end` | — | U-Boot's control DT (`dts/dt.dtb`) |
//!
//! Configuration `conf-1`: `firmware = "uboot"`, `loadables = "atf"`, `fdt = "fdt-1"` and,
//! when given, `rollback-index`. The shim enters the first loadable with an entry (BL31) at
//! EL3; the handoff contract is design.md §5.4. NXP's FIT leaves the DT without `load`
//! because U-Boot SPL appends it to U-Boot's image; the shim copies only what has a `load`,
//! so the DT carries the address SPL would have used: U-Boot's `_end`, where U-Boot proper
//! (`CONFIG_OF_SEPARATE`) looks for it.
//!
//! **The card** ([`build_card`]) is the AN12900 layout of [`crate::disk`] plus a DOS partition
//! table (sector 0 only) with one bootable ext4 partition at [`BOOT_PART_OFFSET`], clear of
//! both flash.bin copies and of U-Boot's environment at 4 MiB. It holds `Image`, the EVK
//! device tree, the initramfs and `boot.scr`, which U-Boot's distro boot finds and runs
//! ([`BOOT_SCRIPT`]).

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use object::{Object, ObjectSymbol};

use crate::disk::{DiskSpec, build_disk};
use crate::fit::{FitConfig, FitImage, build_fit};
use crate::thirdparty::Firmware;
use crate::{Context, Result, bail};

/// BL31's base: TF-A `plat/imx/imx8m/imx8mp/include/platform_def.h` `BL31_BASE` (2.8).
pub const BL31_LOAD: u32 = 0x0097_0000;
/// BL31's size limit: `BL31_SIZE` (128 KiB) of the same file; OCRAM ends at 0x990000.
pub const BL31_MAX: usize = 128 * 1024;
/// U-Boot proper's `CONFIG_TEXT_BASE` (`imx8mp_evk_defconfig`), also where TF-A enters BL33
/// (`PLAT_NS_IMAGE_OFFSET`).
pub const UBOOT_LOAD: u32 = 0x4020_0000;
/// QEMU's memory for the real chain: U-Boot's `imx8mp_evk.h` has `PHYS_SDRAM_SIZE`
/// 0x80000000 and relocates itself to the top of it, so the machine needs 2 GiB.
pub const MEMORY: &str = "2G";
/// The SD card of the real chain: 128 MiB (an SDSC card for QEMU; power of two).
pub const CARD_SIZE: u64 = 128 << 20;
/// Byte offset of the boot partition: 8 MiB, past the secondary copy's 2 MiB slot (which
/// ends at 0x408400 with the standard SIT) and U-Boot's environment (`CONFIG_ENV_OFFSET`
/// 0x400000, 4 KiB, never saved by the tests).
pub const BOOT_PART_OFFSET: u64 = 8 << 20;
/// Where the boot script loads the kernel: 2 MiB aligned, so `booti` does not move it.
pub const KERNEL_ADDR: u64 = 0x4040_0000;
/// Where the boot script loads the device tree (U-Boot relocates it below `bootm_size`).
pub const FDT_ADDR: u64 = 0x4A00_0000;
/// Where the boot script loads the initramfs.
pub const INITRD_ADDR: u64 = 0x4A10_0000;
/// File names in the boot partition.
pub const KERNEL_FILE: &str = "Image";
/// The device tree's file name.
pub const DTB_FILE: &str = "imx8mp-evk.dtb";
/// The initramfs's file name.
pub const INITRD_FILE: &str = "initrd.cpio.gz";

/// The boot script's source (`boot.cmd`, wrapped by `mkimage -T script` into `boot.scr`).
/// U-Boot's distro boot sets `devnum` and `distro_bootpart` before it runs it.
pub fn boot_script(cmdline: &str) -> String {
    format!(
        "# imx-redundant-boot real chain (xtask/src/chain.rs): load Linux from this partition.\n\
         echo \"boot.scr: loading Linux from mmc ${{devnum}}:${{distro_bootpart}}\"\n\
         setenv bootargs \"{cmdline}\"\n\
         load mmc ${{devnum}}:${{distro_bootpart}} {KERNEL_ADDR:#x} /{KERNEL_FILE}\n\
         load mmc ${{devnum}}:${{distro_bootpart}} {FDT_ADDR:#x} /{DTB_FILE}\n\
         load mmc ${{devnum}}:${{distro_bootpart}} {INITRD_ADDR:#x} /{INITRD_FILE}\n\
         booti {KERNEL_ADDR:#x} {INITRD_ADDR:#x}:${{filesize}} {FDT_ADDR:#x}\n"
    )
}

/// The three images of the real FIT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainImages {
    /// `bl31.bin`.
    pub bl31: Vec<u8>,
    /// `u-boot-nodtb.bin`.
    pub uboot: Vec<u8>,
    /// U-Boot's control device tree.
    pub uboot_dtb: Vec<u8>,
    /// Where the DT goes: U-Boot's `_end`.
    pub dtb_load: u32,
}

/// The value of symbol `name` in the ELF `elf`.
pub fn elf_symbol(elf: &[u8], name: &str) -> Result<u64> {
    let file = object::File::parse(elf).map_err(|e| crate::Error::msg(format!("ELF: {e}")))?;
    file.symbols()
        .find(|s| s.name() == Ok(name))
        .map(|s| s.address())
        .ok_or_else(|| crate::Error::msg(format!("the ELF has no symbol `{name}`")))
}

impl ChainImages {
    /// Reads the built firmware and checks it fits the layout.
    pub fn load(fw: &Firmware) -> Result<Self> {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
        let (bl31, uboot, uboot_dtb) = (
            read(&fw.bl31)?,
            read(&fw.uboot_nodtb)?,
            read(&fw.uboot_dtb)?,
        );
        let end =
            elf_symbol(&read(&fw.uboot_elf)?, "_end").with_context(|| fw.uboot_elf.display())?;
        if end != u64::from(UBOOT_LOAD) + uboot.len() as u64 || end % 8 != 0 {
            bail!(
                "U-Boot's _end {end:#x} is not {UBOOT_LOAD:#x} + the {} bytes of {} (8-byte aligned)",
                uboot.len(),
                fw.uboot_nodtb.display()
            );
        }
        if bl31.is_empty() || bl31.len() > BL31_MAX {
            bail!(
                "{} is {} bytes: BL31 must fit {BL31_MAX} bytes at {BL31_LOAD:#x}",
                fw.bl31.display(),
                bl31.len()
            );
        }
        Ok(ChainImages {
            bl31,
            uboot,
            uboot_dtb,
            dtb_load: end as u32,
        })
    }
}

/// The real FIT of image `version` (module docs), unsigned; `rollback-index = <epoch>` when
/// given. The version goes into the description, so v1 and v2 are different signed images.
pub fn chain_fit(imgs: &ChainImages, version: u32, epoch: Option<u32>) -> Result<Vec<u8>> {
    let uboot = FitImage {
        image_type: "standalone".into(),
        entry: None,
        ..FitImage::firmware("uboot", UBOOT_LOAD, imgs.uboot.clone())
    };
    let atf = FitImage {
        os: "arm-trusted-firmware".into(),
        ..FitImage::firmware("atf", BL31_LOAD, imgs.bl31.clone())
    };
    let fdt = FitImage {
        image_type: "flat_dt".into(),
        os: String::new(),
        entry: None,
        ..FitImage::firmware("fdt-1", imgs.dtb_load, imgs.uboot_dtb.clone())
    };
    build_fit(
        &format!("imx-redundant-boot real chain (TF-A BL31, U-Boot), version {version}"),
        &[uboot, atf, fdt],
        &FitConfig {
            firmware: "uboot".into(),
            loadables: vec!["atf".into()],
            rollback_index: epoch,
            fdt: Some("fdt-1".into()),
        },
    )
}

/// The files of the boot partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFiles {
    /// Kernel `Image`.
    pub kernel: PathBuf,
    /// Device tree.
    pub dtb: PathBuf,
    /// Initramfs.
    pub initrd: PathBuf,
    /// Kernel command line.
    pub cmdline: String,
    /// U-Boot's `mkimage`.
    pub mkimage: PathBuf,
}

/// The 16-byte DOS partition entry of a bootable Linux partition at LBA `start`, `sectors`
/// long (CHS fields saturated, as for any disk past 8 GiB; U-Boot and Linux use the LBAs).
pub fn dos_entry(start: u32, sectors: u32) -> [u8; 16] {
    let mut e = [0u8; 16];
    e[0] = 0x80;
    e[1..4].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[4] = 0x83;
    e[5..8].copy_from_slice(&[0xFE, 0xFF, 0xFF]);
    e[8..12].copy_from_slice(&start.to_le_bytes());
    e[12..16].copy_from_slice(&sectors.to_le_bytes());
    e
}

/// Writes a DOS partition table with one entry into sector 0 of `disk` (bytes 0x1BE..0x200;
/// the rest of the sector stays as it is: zero on our cards).
pub fn write_partition_table(disk: &Path, start: u64, len: u64) -> Result<()> {
    let (start_lba, sectors) = (start / 512, len / 512);
    let (Ok(s), Ok(n)) = (u32::try_from(start_lba), u32::try_from(sectors)) else {
        bail!("partition {start:#x}+{len:#x} does not fit a DOS partition table");
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .with_context(|| format!("opening {}", disk.display()))?;
    f.seek(SeekFrom::Start(0x1BE))?;
    f.write_all(&dos_entry(s, n))?;
    f.write_all(&[0u8; 48])?;
    f.write_all(&[0x55, 0xAA])?;
    Ok(())
}

/// Builds the boot partition's directory in `stage` (kernel, DT, initramfs, `boot.cmd` and
/// `boot.scr`).
pub fn stage_boot_files(files: &BootFiles, stage: &Path) -> Result<()> {
    if stage.exists() {
        std::fs::remove_dir_all(stage).with_context(|| format!("removing {}", stage.display()))?;
    }
    std::fs::create_dir_all(stage).with_context(|| format!("creating {}", stage.display()))?;
    for (src, name) in [
        (&files.kernel, KERNEL_FILE),
        (&files.dtb, DTB_FILE),
        (&files.initrd, INITRD_FILE),
    ] {
        std::fs::copy(src, stage.join(name))
            .with_context(|| format!("copying {} into the boot partition", src.display()))?;
    }
    let cmd = stage.join("boot.cmd");
    std::fs::write(&cmd, boot_script(&files.cmdline))?;
    let out = Command::new(&files.mkimage)
        .args(["-A", "arm64", "-O", "linux", "-T", "script", "-C", "none"])
        .args(["-n", "imx-redundant-boot: boot Linux"])
        .arg("-d")
        .arg(&cmd)
        .arg(stage.join("boot.scr"))
        .output()
        .with_context(|| format!("running {}", files.mkimage.display()))?;
    if !out.status.success() {
        bail!(
            "mkimage of boot.scr failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Writes the card `path`: [`CARD_SIZE`], SIT, `primary` and `secondary` (as
/// [`crate::disk::build_disk`]), the partition table, and an ext4 file system made by
/// `mke2fs -d` from `stage` ([`stage_boot_files`]) at [`BOOT_PART_OFFSET`].
pub fn build_card(path: &Path, primary: &[u8], secondary: &[u8], stage: &Path) -> Result<()> {
    let spec = DiskSpec {
        size: CARD_SIZE,
        ..DiskSpec::new(primary.to_vec(), secondary.to_vec())
    };
    let copies_end = spec.secondary_offset() + secondary.len() as u64;
    if copies_end > BOOT_PART_OFFSET {
        bail!("the secondary copy ends at {copies_end:#x}, past the boot partition");
    }
    build_disk(path, &spec)?;
    let len = CARD_SIZE - BOOT_PART_OFFSET;
    write_partition_table(path, BOOT_PART_OFFSET, len)?;
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-L", "boot", "-b", "4096"])
        .arg("-d")
        .arg(stage)
        .arg("-E")
        .arg(format!("offset={BOOT_PART_OFFSET}"))
        .arg(path)
        .arg(format!("{}k", len / 1024))
        .env("E2FSPROGS_FAKE_TIME", "1767225600")
        .output()
        .with_context(|| "running mke2fs (e2fsprogs)")?;
    if !out.status.success() {
        bail!(
            "mke2fs of the boot partition in {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let size = std::fs::metadata(path)?.len();
    if size != CARD_SIZE {
        bail!("mke2fs changed the card's size to {size:#x}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_entry_is_bootable_linux_at_lba() {
        let e = dos_entry(16384, 245760);
        assert_eq!(e[0], 0x80);
        assert_eq!(e[4], 0x83);
        assert_eq!(u32::from_le_bytes(e[8..12].try_into().unwrap()), 16384);
        assert_eq!(u32::from_le_bytes(e[12..16].try_into().unwrap()), 245760);
    }

    #[test]
    fn boot_script_loads_the_three_files() {
        let s = boot_script("console=ttymxc1,115200");
        for f in [KERNEL_FILE, DTB_FILE, INITRD_FILE] {
            assert!(s.contains(&format!("/{f}\n")), "{s}");
        }
        assert!(s.contains("booti 0x40400000 0x4a100000:${filesize} 0x4a000000"));
    }

    fn have(tool: &str) -> bool {
        Command::new(tool).arg("-V").output().is_ok()
    }

    /// The card as `sfdisk` and `debugfs` (e2fsprogs) read it: one bootable Linux partition at
    /// 8 MiB to the end, an ext4 file system holding the staged files, the copies in place.
    #[test]
    fn card_has_the_partition_and_the_files() {
        if !(have("sfdisk") && have("debugfs") && have("mke2fs")) {
            eprintln!(
                "skipped: sfdisk/debugfs/mke2fs missing (.ci/setup installs fdisk, e2fsprogs)"
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let stage = dir.path().join("stage");
        std::fs::create_dir(&stage).unwrap();
        for (f, n) in [(KERNEL_FILE, 300_000), (DTB_FILE, 1000), ("boot.scr", 600)] {
            std::fs::write(stage.join(f), vec![0x5A; n]).unwrap();
        }
        let card = dir.path().join("sd.img");
        let (p, s) = (vec![0x11u8; 700_000], vec![0x22u8; 700_000]);
        build_card(&card, &p, &s, &stage).unwrap();
        assert_eq!(std::fs::metadata(&card).unwrap().len(), CARD_SIZE);
        let out = Command::new("sfdisk")
            .arg("--json")
            .arg(&card)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let parts = v["partitiontable"]["partitions"].as_array().unwrap();
        assert_eq!(v["partitiontable"]["label"], "dos");
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0]["start"], BOOT_PART_OFFSET / 512);
        assert_eq!(parts[0]["size"], (CARD_SIZE - BOOT_PART_OFFSET) / 512);
        assert_eq!(parts[0]["type"], "83");
        assert_eq!(parts[0]["bootable"], true);
        let bytes = std::fs::read(&card).unwrap();
        assert_eq!(&bytes[0x8400..0x8400 + p.len()], &p[..]);
        let sec = crate::disk::secondary_offset(boards::AN12900_LAYOUT.standard_first_sector);
        assert_eq!(&bytes[sec as usize..sec as usize + s.len()], &s[..]);
        let part = dir.path().join("part.img");
        std::fs::write(&part, &bytes[BOOT_PART_OFFSET as usize..]).unwrap();
        let ls = Command::new("debugfs")
            .args(["-R", "ls -p /"])
            .arg(&part)
            .output()
            .unwrap();
        let ls = String::from_utf8_lossy(&ls.stdout);
        for (f, n) in [(KERNEL_FILE, 300_000), (DTB_FILE, 1000), ("boot.scr", 600)] {
            assert!(
                ls.contains(&format!("/{f}/{n}/")),
                "{f} ({n} bytes) in:\n{ls}"
            );
        }
        // A secondary reaching into the boot partition is refused.
        let big = vec![0u8; (BOOT_PART_OFFSET - 0x20_0000) as usize];
        assert!(build_card(&card, &p, &big, &stage).is_err());
    }

    #[test]
    fn fit_has_nxp_layout() {
        let imgs = ChainImages {
            bl31: vec![1; 100],
            uboot: vec![2; 1000],
            uboot_dtb: vec![3; 64],
            dtb_load: UBOOT_LOAD + 1000,
        };
        let fit = chain_fit(&imgs, 2, Some(3)).unwrap();
        let f = imx_hab::fit::Fit::parse(&fit).unwrap();
        let c = f.default_config().unwrap();
        assert_eq!(c.firmware, Some("uboot"));
        assert_eq!(c.fdt, Some("fdt-1"));
        assert_eq!(c.rollback_index, Some(3));
        let atf = f.image_by_name("atf").unwrap();
        assert_eq!((atf.load, atf.entry), (Some(0x970000), Some(0x970000)));
        let u = f.image_by_name("uboot").unwrap();
        assert_eq!((u.load, u.entry), (Some(0x4020_0000), None));
        let plan = boot_core::boot::handoff::plan(
            &fit,
            boards::qemu_imx8mp::FIT_WINDOW,
            &[boards::Region::new(0x91_0000, 0x6_0000)],
            &boards::qemu_imx8mp::BOARD.memory,
        )
        .unwrap();
        assert_eq!(plan.entry.address, 0x970000);
        assert_eq!(plan.copies.len(), 3);
        assert_eq!(plan.copies[2].dest, u64::from(UBOOT_LOAD) + 1000);
    }
}
