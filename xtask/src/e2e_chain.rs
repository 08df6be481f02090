//! The end-to-end scenarios on the real chain (issue 17): shim → TF-A BL31 → U-Boot proper →
//! Linux, in place of `linux-stand-in`. The scenarios themselves are [`crate::e2e`]'s; this
//! module holds what differs: the images (the real FIT of [`crate::chain`], v1 and v2 signed
//! with the test PKI), the card (boot partition with `boot.scr`, nothing preloaded by the
//! harness), and how a boot is observed.
//!
//! A boot of the real chain, as the harness sees it on UART2:
//!
//! | line | from | what the harness does |
//! |---|---|---|
//! | `rom: starting the primary SPL …` | the ROM model | which SPL it started; checked against the record's `rom.started` (as on the stand-in) |
//! | `shim: watchdog armed` | shim (decoded defmt line) | start of the boot (time split) |
//! | `shim: slot N handoff to 0x970000 (atf) at EL3` | shim | the slot |
//! | `NOTICE:  BL31: v2.8…` | TF-A | TF-A's banner must appear |
//! | `U-Boot 2023.01…` | U-Boot | U-Boot's banner must appear; the cell is read over QMP here |
//! | `WDT:   Started watchdog@30280000 with servicing…` | U-Boot | U-Boot took the shim's watchdog over |
//! | `boot.scr: loading Linux…` | our boot script on the card | U-Boot found the boot partition |
//! | `Starting kernel ...` | U-Boot `booti` | |
//! | `e2e: init up` | the initramfs's `/init` | end of the split; then the command loop |
//!
//! The image version is not printed by anything in the chain (v1 and v2 carry the same
//! U-Boot): it is the booted image's identity that the shim wrote into the cell
//! (`boot_core::examine::flash_bin_identity` of v1 and v2 computed on the host).
//!
//! Watchdog: the shim arms WDOG1 (60 s, WDE write-once); U-Boot's `imx_watchdog` driver
//! (`CONFIG_WATCHDOG_AUTOSTART`) takes it over and services it until `booti`; then the
//! kernel's `imx2_wdt` (loaded by `/init`) keeps it alive (design.md §5.4). Scenario a
//! checks it by sleeping past the period. `reboot -f` reaches TF-A's PSCI SYSTEM_RESET,
//! which resets through WDOG1 (QEMU resets the machine in the same process);
//! `poweroff -f` reaches PSCI SYSTEM_OFF, which QEMU's SNVS turns into an exit with status 0.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::chain::{BootFiles, ChainImages, build_card, chain_fit, stage_boot_files};
use crate::sim::SimKit;
use crate::thirdparty::Firmware;
use crate::{Result, bail};

/// TF-A's banner (release build: `NOTICE:  BL31: v2.8(release):…`).
pub const TFA_BANNER: &str = "NOTICE:  BL31: v2.8";
/// U-Boot proper's banner.
pub const UBOOT_BANNER: &str = "U-Boot 2023.01";
/// U-Boot's watchdog line (`wdt-uclass.c`): it took WDOG1 over and services it.
pub const UBOOT_WDT: &str = "WDT:   Started watchdog@30280000 with servicing";
/// Our boot script's first line.
pub const SCRIPT_LINE: &str = "boot.scr: loading Linux";
/// U-Boot's last line before the kernel.
pub const KERNEL_START: &str = "Starting kernel ...";
/// `/init`'s first line.
pub const INIT_UP: &str = "e2e: init up";
/// The shim's handoff line.
pub const SHIM_HANDOFF: &str = "shim: slot ";
/// The kernel's line before PSCI SYSTEM_RESET.
pub const KERNEL_RESTART: &str = "reboot: Restarting system";
/// The kernel's line before PSCI SYSTEM_OFF.
pub const KERNEL_POWER_DOWN: &str = "reboot: Power down";
/// Lines that end a wait with a failure on the real chain (U-Boot errors, the autoboot failed).
pub const FATAL: &[&str] = &[
    "### ERROR ###",
    "Synchronous Abort",
    "Bad Linux ARM64 Image magic",
    "SCRIPT FAILED",
    "PANIC at PC",
    // Distro boot found nothing on mmc 1 (no partition table, no boot.scr) and went on to mmc 2,
    // which has no card in QEMU (U-Boot's prompt that follows ends no line).
    "Couldn't find partition mmc 1",
    "Card did not respond to voltage select",
];

/// Added to the kernel command line on the real chain: the EVK device tree lists four CPUs and
/// TF-A's PSCI CPU_ON accepts them, but QEMU (`-smp 1`, no GPC model) never starts them, so
/// Linux would wait 5 s for each; `maxcpus=1` keeps it from asking.
pub const CMDLINE_EXTRA: &str = "maxcpus=1";

/// What the real chain adds to the rig.
#[derive(Debug, Clone)]
pub struct RealChain {
    /// The built firmware.
    pub firmware: Firmware,
    /// Booted-image identity of v1.
    pub v1_id: [u8; 32],
    /// Booted-image identity of v2.
    pub v2_id: [u8; 32],
    /// The boot partition's files.
    pub stage: PathBuf,
}

/// Builds (cached) TF-A and U-Boot and returns them with flash.bins v1 (epoch 1) and v2
/// (epoch 2) of the real FIT.
pub fn images(kit: &SimKit, log: &mut dyn FnMut(&str)) -> Result<(Firmware, Vec<u8>, Vec<u8>)> {
    let fw = crate::thirdparty::build(log)?;
    let imgs = ChainImages::load(&fw)?;
    log(&format!(
        "real FIT: U-Boot {} bytes at {:#x}, its DT {} bytes at {:#x}, BL31 {} bytes at {:#x} (entry)",
        imgs.uboot.len(),
        crate::chain::UBOOT_LOAD,
        imgs.uboot_dtb.len(),
        imgs.dtb_load,
        imgs.bl31.len(),
        crate::chain::BL31_LOAD
    ));
    let fb = |v: u32| {
        let fit = chain_fit(&imgs, v, Some(v))?;
        crate::flash_bin::build_flash_bin(&kit.shim, &fit, &kit.pki, &kit.options)
    };
    Ok((fw, fb(1)?, fb(2)?))
}

/// The identity the shim records for `flash_bin`.
pub fn identity(flash_bin: &[u8]) -> Result<[u8; 32]> {
    boot_core::examine::flash_bin_identity(flash_bin, boards::AN12900_LAYOUT.fit_offset)
        .ok_or_else(|| crate::Error::msg("cannot compute a flash.bin's identity"))
}

/// Stages the boot partition in `work/boot-partition`.
pub fn stage(
    fw: &Firmware,
    kernel: &Path,
    dtb: &Path,
    initrd: &Path,
    work: &Path,
) -> Result<PathBuf> {
    let dir = work.join("boot-partition");
    stage_boot_files(
        &BootFiles {
            kernel: kernel.into(),
            dtb: dtb.into(),
            initrd: initrd.into(),
            cmdline: format!("{} {CMDLINE_EXTRA}", crate::linux::CMDLINE),
            mkimage: fw.mkimage.clone(),
        },
        &dir,
    )?;
    Ok(dir)
}

impl RealChain {
    /// A card `path` with `primary`, `secondary` and the boot partition.
    pub fn card(&self, path: &Path, primary: &[u8], secondary: &[u8]) -> Result<()> {
        build_card(path, primary, secondary, &self.stage)
    }

    /// The version whose identity is `id` (1, 2), or 0.
    pub fn version_of(&self, id: &[u8]) -> u32 {
        if id == self.v1_id {
            1
        } else if id == self.v2_id {
            2
        } else {
            0
        }
    }
}

/// One boot's wall-clock split, seen from the host on UART2 (QEMU TCG).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BootSplit {
    /// Shim: its first line to its handoff line.
    pub shim: Duration,
    /// BL31: handoff to U-Boot's banner.
    pub bl31: Duration,
    /// U-Boot: banner to `Starting kernel`.
    pub uboot: Duration,
    /// Kernel: `Starting kernel` to `/init`'s first line.
    pub kernel: Duration,
}

impl BootSplit {
    /// The split as one line.
    pub fn line(&self) -> String {
        let s = |d: Duration| d.as_secs_f64();
        format!(
            "shim {:.2} s, BL31 {:.2} s, U-Boot {:.2} s, kernel to /init {:.2} s",
            s(self.shim),
            s(self.bl31),
            s(self.uboot),
            s(self.kernel)
        )
    }

    /// The median of each part over `splits`.
    pub fn median(splits: &[BootSplit]) -> BootSplit {
        let med = |f: fn(&BootSplit) -> Duration| {
            let mut v: Vec<Duration> = splits.iter().map(f).collect();
            v.sort();
            v.get(v.len() / 2).copied().unwrap_or_default()
        };
        BootSplit {
            shim: med(|b| b.shim),
            bl31: med(|b| b.bl31),
            uboot: med(|b| b.uboot),
            kernel: med(|b| b.kernel),
        }
    }
}

/// The slot in the shim's handoff line `shim: slot N handoff to …`.
pub fn handoff_slot(line: &str) -> Result<u32> {
    let rest = line
        .split(SHIM_HANDOFF)
        .nth(1)
        .ok_or_else(|| crate::Error::msg(format!("not a handoff line: `{line}`")))?;
    match rest.split_whitespace().next().map(str::parse::<u32>) {
        Some(Ok(s)) if rest.contains("handoff to") => Ok(s),
        _ => bail!("cannot read the slot in `{line}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_from_the_handoff_line() {
        assert_eq!(
            handoff_slot("shim: slot 2 handoff to 0x970000 (atf) at EL3").unwrap(),
            2
        );
        assert!(handoff_slot("shim: slot x handoff").is_err());
        assert!(handoff_slot("shim: load atf").is_err());
    }

    #[test]
    fn median_of_splits() {
        let s = |n| BootSplit {
            shim: Duration::from_secs(n),
            ..BootSplit::default()
        };
        assert_eq!(BootSplit::median(&[s(3), s(1), s(2)]).shim.as_secs(), 2);
    }
}
