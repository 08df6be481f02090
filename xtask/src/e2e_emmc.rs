//! The end-to-end scenarios a, b and c on an eMMC (issue 14 item 5): the ROM model starts the
//! SPL from the boot partition EXT_CSD\[179\] enables, the shim boots from the eMMC on uSDHC3
//! (the fuse block's BOOT_CFG selects it), Linux sees `/dev/mmcblk2`, `mmcblk2boot0` and
//! `mmcblk2boot1`, and `ubootctl` in Linux updates the eMMC, in each layout (design.md §5.5):
//!
//! | layout | `ubootctl` runs on | the update |
//! |---|---|---|
//! | (a) AN12900 in boot0 | `--device /dev/mmcblk2boot0` | the SD card's rule inside the boot partition |
//! | (b) A/B across boot0/boot1 | `--emmc-ab --device /dev/mmcblk2` | writes the disabled partition, reads it back, then one CMD6 switches EXT_CSD\[179\] |
//!
//! The chain after the shim is the stand-in (the eMMC changes nothing after the handoff, and the
//! stand-in boots in seconds). An SD card holding v2/v2 stays on bus 1, so a boot that read the
//! card instead of the eMMC would show v2 where v1 is expected. The kernel needs
//! [`KERNEL_ARGS`]: QEMU's SDHCI has no Auto-CMD23 (../shared/docs/qemu-emmc.md).
//!
//! **EXT_CSD\[179\] across QEMU processes.** Our QEMU keeps the enable and ACK bits a CMD6 wrote
//! over every reset of one process (patches/qemu/0002; `reboot -f` is a watchdog reset in the
//! same process). A power cut ends the process: the harness pauses the guest, reads the bits
//! with `qom-get boot-config`, kills QEMU, and starts the next process with them, as the
//! non-volatile register of a real part would keep them.
//!
//! After every `ubootctl` run that wrote a boot partition, the guest must show `force_ro` = 1 on
//! both boot partitions again.

use std::path::{Path, PathBuf};

use boards::EmmcLayout;
use boot_core::emmc::{BootPartition, PartitionConfig};
use serde_json::json;

use crate::disk::{ImageCopy, flip_byte};
use crate::e2e::{
    Boot, Machine, Rig, STDERR_PREFIX, Scenario, Want, check, check_boot, check_status, say,
};
use crate::emmc::{
    BOOT_CONFIG_BOOT0, BOOT_CONFIG_BOOT1, EmmcAttach, build_emmc, copy_offset, copy_offsets,
};
use crate::{Context, Result};

/// The kernel parameter the eMMC needs in QEMU (multi-block reads without Auto-CMD23).
pub const KERNEL_ARGS: &str = "sdhci.debug_quirks2=0x4008";
/// The eMMC's user area in the guest (uSDHC3 = `mmc2`).
pub const EMMC: &str = "/dev/mmcblk2";

/// Rewrites the rig's fuse block `fuses` so BOOT_CFG selects the eMMC in `layout` (the ROM
/// model's cross-partition fallback off: the worse case, imx8m-facts.md §3.9).
pub fn select_emmc(fuses: &Path, layout: EmmcLayout) -> Result<()> {
    let bytes = std::fs::read(fuses).with_context(|| format!("reading {}", fuses.display()))?;
    let block: [u8; 64] = bytes
        .try_into()
        .map_err(|_| crate::Error::msg(format!("{} is not 64 bytes", fuses.display())))?;
    let block = crate::emmc::fuse_block_for(block, layout, false);
    std::fs::write(fuses, block).with_context(|| format!("writing {}", fuses.display()))
}

/// `ubootctl SUB` on the eMMC in `layout`.
fn ubootctl(layout: EmmcLayout, sub: &str, extra: &str) -> String {
    let device = match layout {
        EmmcLayout::InOnePartition => format!("--device {EMMC}boot0"),
        EmmcLayout::AcrossPartitions => format!("--emmc-ab --device {EMMC}"),
    };
    format!(
        "ubootctl {sub}{extra} {device} --board {} --srk-hash /srk_hash.bin",
        crate::e2e::BOARD
    )
}

/// One eMMC of a scenario: its image file and EXT_CSD\[179\] as the next QEMU process starts
/// with it.
struct Emmc {
    layout: EmmcLayout,
    image: PathBuf,
    boot_config: u8,
}

impl Emmc {
    /// A fresh image `name` in `layout` with `primary` (boot0) and `secondary`, boot0 enabled.
    fn new(
        rig: &Rig,
        layout: EmmcLayout,
        name: &str,
        primary: &[u8],
        secondary: &[u8],
    ) -> Result<Self> {
        let image = rig.work.join(name);
        build_emmc(&image, layout, primary, secondary)?;
        Ok(Emmc {
            layout,
            image,
            boot_config: BOOT_CONFIG_BOOT0,
        })
    }

    /// The boot partition EXT_CSD\[179\] enables (boot0 when none is: the image's copies
    /// start there).
    fn active(&self) -> BootPartition {
        PartitionConfig(self.boot_config)
            .enabled_partition()
            .unwrap_or(BootPartition::Boot0)
    }

    /// Starts QEMU with the SD card `sd` and this eMMC.
    fn start(&self, rig: &Rig, sd: &Path, log: &str) -> Result<Machine> {
        let mut attach = EmmcAttach::new(&self.image);
        attach.boot_config = self.boot_config;
        Machine::start_emmc(rig, sd, attach, rig.work.join(log))
    }

    /// Checks the copy in `partition` (layout (b)) or `copy` (layout (a), in boot0) on the
    /// host file begins with `image`.
    fn check_copy(&self, copy: ImageCopy, image: &[u8], name: &str) -> Result<()> {
        let at = copy_offset(self.layout, self.active(), copy);
        let bytes = crate::disk::read_at(&self.image, at, image.len())?;
        check(
            bytes == image,
            &format!(
                "eMMC image (host), {copy:?} copy at {at:#x} ({} enabled)",
                self.active().name()
            ),
            name,
            if bytes == image {
                name
            } else {
                "something else"
            },
        )
    }
}

/// Reads EXT_CSD\[179\] as QEMU holds it (`qom-get boot-config`, patches/qemu/0002).
fn boot_config(m: &mut Machine) -> Result<u8> {
    let v =
        m.q.qmp_session()
            .and_then(|q| {
                q.execute(
                    "qom-get",
                    Some(json!({"path": "/machine/peripheral/emmc", "property": "boot-config"})),
                )
            })
            .map_err(|e| m.fail(format!("qom-get boot-config: {e}")))?;
    v.as_u64()
        .and_then(|b| u8::try_from(b).ok())
        .ok_or_else(|| m.fail(format!("qom-get boot-config answered {v}")))
}

/// Waits until Linux shows the eMMC's boot partitions (they probe after the SD card).
fn wait_for_emmc(m: &mut Machine) -> Result<()> {
    let (out, rc) = m.run(&format!(
        "i=0; while [ ! -b {EMMC}boot1 ] && [ $i -lt 150 ]; do sleep 0.1; i=$((i+1)); done; ls {EMMC}boot0 {EMMC}boot1"
    ))?;
    check(
        rc == 0,
        "Linux shows the eMMC boot partitions",
        format!("{EMMC}boot0, {EMMC}boot1"),
        out.trim().replace('\n', ", "),
    )
}

/// Checks `force_ro` is 1 on both boot partitions (ubootctl restores it on every exit path).
fn check_force_ro(m: &mut Machine) -> Result<()> {
    let (out, rc) =
        m.run("cat /sys/block/mmcblk2boot0/force_ro /sys/block/mmcblk2boot1/force_ro")?;
    let values: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with(STDERR_PREFIX))
        .map(str::trim)
        .collect();
    check(
        rc == 0 && values == ["1", "1"],
        "force_ro of mmcblk2boot0 and mmcblk2boot1 after ubootctl",
        "1 1",
        values.join(" "),
    )
}

/// `ubootctl status --json` on the eMMC, checked against `want`.
fn expect_status(m: &mut Machine, layout: EmmcLayout, want: Want) -> Result<serde_json::Value> {
    let (st, rc) = m.run_json(&ubootctl(layout, "status", " --json"))?;
    check_status(&st, rc, want)?;
    Ok(st)
}

/// Runs one scenario on `layout`.
pub fn scenario(rig: &Rig, layout: EmmcLayout, s: Scenario) -> Result<u32> {
    let sd = rig.disk(
        &format!("emmc-{}-{}-sd.img", layout.name(), s.name()),
        &rig.v2,
        &rig.v2,
    )?;
    match s {
        Scenario::A => scenario_a(rig, layout, &sd),
        Scenario::B => scenario_b(rig, layout, &sd),
        Scenario::C => scenario_c(rig, layout, &sd),
        Scenario::D => Err(crate::Error::msg("scenario d does not run on eMMC")),
    }
}

/// A fresh v1/v1 eMMC `NAME.img` started with the SD card `sd`: checks the first boot (v1 from
/// the primary) and waits for the eMMC in Linux. The UART log is `NAME.uart.log`.
fn boot_fresh_v1(rig: &Rig, layout: EmmcLayout, sd: &Path, name: &str) -> Result<(Emmc, Machine)> {
    let emmc = Emmc::new(rig, layout, &format!("{name}.img"), &rig.v1, &rig.v1)?;
    let mut m = emmc.start(rig, sd, &format!("{name}.uart.log"))?;
    check_boot(m.boot()?, 1, 1)?;
    wait_for_emmc(&mut m)?;
    Ok((emmc, m))
}

/// Layout (b) enables boot1 after an update of a v1/v1 eMMC running boot0; layout (a) keeps boot0.
fn enabled_after_update(layout: EmmcLayout) -> u8 {
    match layout {
        EmmcLayout::InOnePartition => BOOT_CONFIG_BOOT0,
        EmmcLayout::AcrossPartitions => BOOT_CONFIG_BOOT1,
    }
}

fn scenario_a(rig: &Rig, layout: EmmcLayout, sd: &Path) -> Result<u32> {
    say(format!(
        "\n=== eMMC layout ({}) scenario a: boot, status, update to v2, reboot into v2 ===",
        layout.name()
    ));
    let (mut emmc, mut m) = boot_fresh_v1(rig, layout, sd, &format!("emmc-{}-a", layout.name()))?;
    let st = expect_status(
        &mut m,
        layout,
        Want {
            running: 1,
            primary: true,
            secondary: true,
            healthy: true,
        },
    )?;
    say(format!(
        "  status: {}",
        st.get("emmc").map_or_else(|| "-".into(), |v| v.to_string())
    ));
    let (out, rc) = m.run(&ubootctl(layout, "update /v2.bin", " --dry-run"))?;
    say(format!("  dry run:\n{}", indent(&out)));
    check(rc == 0, "ubootctl update --dry-run exit", 0, rc)?;
    if layout == EmmcLayout::AcrossPartitions {
        check(
            out.contains("switch EXT_CSD[179]"),
            "the dry run shows the switch as its own step",
            "a `switch EXT_CSD[179]` step",
            if out.contains("switch EXT_CSD[179]") {
                "present"
            } else {
                "missing"
            },
        )?;
    }
    let t = std::time::Instant::now();
    let (_, rc) = m.run(&ubootctl(layout, "update /v2.bin", ""))?;
    let update = t.elapsed();
    check(rc == 0, "ubootctl update exit", 0, rc)?;
    check_force_ro(&mut m)?;
    // The figure of issue 14 item 6: the same bytes with `dd` (synchronous, flushed) to the
    // eMMC's user area, 32 MiB in, which holds nothing; timed the same way in the same run.
    let t = std::time::Instant::now();
    let (_, rc) = m.run(&format!(
        "dd if=/v2.bin of={EMMC} bs=64k seek=512 conv=fsync 2>/dev/null"
    ))?;
    let dd = t.elapsed();
    check(rc == 0, "dd of the same bytes exit", 0, rc)?;
    say(format!(
        "  figure: ubootctl update {:.2} s, dd of the same {} bytes {:.2} s: ratio {:.1}",
        update.as_secs_f64(),
        rig.v2.len(),
        dd.as_secs_f64(),
        update.as_secs_f64() / dd.as_secs_f64().max(1e-3)
    ));
    let bc = boot_config(&mut m)?;
    check(
        bc == enabled_after_update(layout),
        "EXT_CSD[179] after the update (QEMU)",
        format!("{:#04x}", enabled_after_update(layout)),
        format!("{bc:#04x}"),
    )?;
    emmc.boot_config = bc;
    m.reboot()?;
    check_boot(m.boot()?, 2, 1)?;
    wait_for_emmc(&mut m)?;
    expect_status(
        &mut m,
        layout,
        Want {
            running: 1,
            primary: true,
            secondary: true,
            healthy: false,
        },
    )?;
    let boots = m.poweroff()?;
    emmc.check_copy(ImageCopy::Primary, &rig.v2, "v2")?;
    emmc.check_copy(ImageCopy::Secondary, &rig.v1, "v1")?;
    Ok(boots)
}

fn scenario_b(rig: &Rig, layout: EmmcLayout, sd: &Path) -> Result<u32> {
    say(format!(
        "\n=== eMMC layout ({}) scenario b: corrupt primary FIT, fallback, repair ===",
        layout.name()
    ));
    let mut emmc = Emmc::new(
        rig,
        layout,
        &format!("emmc-{}-b.img", layout.name()),
        &rig.v1,
        &rig.v1,
    )?;
    let fit =
        copy_offsets(&emmc.image, layout, emmc.active(), ImageCopy::Primary)?.fit_data_byte()?;
    flip_byte(&emmc.image, fit)?;
    say(format!(
        "  flipped the byte at {fit:#x} (primary FIT data, boot0)"
    ));
    let mut m = emmc.start(rig, sd, &format!("emmc-{}-b.uart.log", layout.name()))?;
    check_boot(m.boot()?, 1, 2)?;
    wait_for_emmc(&mut m)?;
    expect_status(
        &mut m,
        layout,
        Want {
            running: 2,
            primary: false,
            secondary: true,
            healthy: false,
        },
    )?;
    let (out, rc) = m.run(&ubootctl(layout, "update /v2.bin", ""))?;
    say(format!("  update:\n{}", indent(&out)));
    check(rc == 0, "ubootctl update exit", 0, rc)?;
    check_force_ro(&mut m)?;
    emmc.boot_config = boot_config(&mut m)?;
    m.reboot()?;
    let b = m.boot()?;
    check_boot(b, 2, 1)?;
    wait_for_emmc(&mut m)?;
    let (st, rc) = m.run_json(&ubootctl(layout, "status", " --json"))?;
    check(
        st["primary"]["authentic"] == true && st["running"] == 1,
        "ubootctl status after the repair",
        "running 1, primary authentic",
        format!(
            "running {}, primary authentic {} (exit {rc})",
            st["running"], st["primary"]["authentic"]
        ),
    )?;
    let boots = m.poweroff()?;
    emmc.check_copy(ImageCopy::Primary, &rig.v2, "v2")?;
    Ok(boots)
}

/// A cut point: when the `step` event with this index appears, or at `done`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    BeforeStep(u64),
    Done,
}

/// The cut points of scenario c from the dry run's steps: after the first write, in the middle
/// of the writes, right before the step that makes the new copy live (layout (b): the switch,
/// so between the partition's read-back and the switch; layout (a): the primary's header),
/// and after everything. Returns them with that step's index.
fn cut_points(steps: &[String]) -> Option<(Vec<Cut>, u64)> {
    let writes: Vec<u64> = (0..steps.len() as u64)
        .filter(|&i| steps[i as usize].starts_with("write "))
        .collect();
    let live = match steps.iter().position(|s| s.starts_with("switch ")) {
        Some(i) => i as u64,
        None => *writes.last()?,
    };
    let middle = writes.get(writes.len() / 2).copied()?;
    let mut cuts = vec![
        Cut::BeforeStep(writes.first()? + 1),
        Cut::BeforeStep(middle),
        Cut::BeforeStep(live),
        Cut::Done,
    ];
    cuts.dedup();
    Some((cuts, live))
}

fn scenario_c(rig: &Rig, layout: EmmcLayout, sd: &Path) -> Result<u32> {
    say(format!(
        "\n=== eMMC layout ({}) scenario c: power cuts during the update ===",
        layout.name()
    ));
    let mut boots = 0;
    // The plan, from a dry run on a fresh v1/v1 eMMC.
    let (_, mut m) = boot_fresh_v1(rig, layout, sd, &format!("emmc-{}-c0", layout.name()))?;
    let (plan, rc) = m.run_json(&ubootctl(layout, "update /v2.bin", " --dry-run --json"))?;
    check(rc == 0, "ubootctl update --dry-run --json exit", 0, rc)?;
    boots += m.poweroff()?;
    let steps: Vec<String> = plan["plan"]["steps"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s["action"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let Some((cuts, live)) = cut_points(&steps) else {
        return Err(crate::Error::msg(format!(
            "cannot choose cut points from the plan {plan}"
        )));
    };
    for (i, s) in steps.iter().enumerate() {
        say(format!("    step {i}: {s}"));
    }
    for (n, cut) in cuts.iter().enumerate() {
        let n = n + 1;
        say(format!(
            "\n--- eMMC ({}) c{n}: power cut {cut:?} (step {live} makes v2 live) ---",
            layout.name()
        ));
        let (mut emmc, mut m) =
            boot_fresh_v1(rig, layout, sd, &format!("emmc-{}-c{n}", layout.name()))?;
        m.send(&ubootctl(
            layout,
            "update /v2.bin",
            " --json --test-step-delay-ms 400",
        ))?;
        loop {
            // The command ending before the cut point is a failure at once, with its output.
            let line = m.expect_with("\"event\":", &[crate::e2e::MARK_CMD_END])?;
            let Some(v) = line
                .find('{')
                .and_then(|i| serde_json::from_str::<serde_json::Value>(&line[i..]).ok())
            else {
                continue;
            };
            if v["event"] == "result" {
                return Err(m.fail(format!("the update ended before the cut point ({cut:?})")));
            }
            let hit = match cut {
                Cut::BeforeStep(i) => v["event"] == "step" && v["index"].as_u64() == Some(*i),
                Cut::Done => v["event"] == "done",
            };
            if hit {
                break;
            }
        }
        let _ = m.q.pause();
        emmc.boot_config = boot_config(&mut m)?;
        boots += m.power_cut();
        say(format!(
            "  POWER CUT: guest paused, EXT_CSD[179] = {:#04x} kept, QEMU killed",
            emmc.boot_config
        ));
        let mut m = emmc.start(rig, sd, &format!("emmc-{}-c{n}-2.uart.log", layout.name()))?;
        let b: Boot = m.boot()?;
        let new_live = matches!(cut, Cut::Done) || matches!(cut, Cut::BeforeStep(i) if *i > live);
        let (want_version, want_slot) = match (new_live, layout) {
            (true, _) => (2, 1),
            (false, EmmcLayout::AcrossPartitions) => (1, 1),
            (false, EmmcLayout::InOnePartition) => (1, 2),
        };
        check(
            b.version == want_version && b.slot == want_slot && b.cell_slot == want_slot,
            "boot after the cut",
            format!("version {want_version} slot {want_slot}"),
            format!(
                "version {} slot {} (cell slot {})",
                b.version, b.slot, b.cell_slot
            ),
        )?;
        wait_for_emmc(&mut m)?;
        check_force_ro(&mut m)?;
        let (st, rc) = m.run_json(&ubootctl(layout, "status", " --json"))?;
        // The copy that booted is authentic in status too. Layout (a) keeps the secondary a
        // fallback throughout (the plan writes the primary only); layout (b) rewrites the
        // disabled partition's copy before the switch, so until then only the enabled one is.
        let booted = if b.slot == 1 { "primary" } else { "secondary" };
        let fallback_kept =
            layout == EmmcLayout::AcrossPartitions || st["secondary"]["authentic"] == true;
        check(
            st["running"] == u64::from(b.slot)
                && st[booted]["authentic"] == true
                && fallback_kept
                && (rc == 0 || rc == 1),
            "ubootctl status after the cut agrees with the shim",
            format!("running {}, the {booted} authentic", b.slot),
            format!(
                "running {}, primary authentic {}, secondary authentic {} (exit {rc})",
                st["running"], st["primary"]["authentic"], st["secondary"]["authentic"]
            ),
        )?;
        let (_, rc) = m.run(&ubootctl(layout, "update /v2.bin", ""))?;
        check(rc == 0, "ubootctl update (completion) exit", 0, rc)?;
        check_force_ro(&mut m)?;
        emmc.boot_config = boot_config(&mut m)?;
        m.reboot()?;
        check_boot(m.boot()?, 2, 1)?;
        boots += m.poweroff()?;
        emmc.check_copy(ImageCopy::Primary, &rig.v2, "v2")?;
    }
    Ok(boots)
}

fn indent(s: &str) -> String {
    s.lines()
        .map(|l| format!("    {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn steps(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn cuts_land_between_the_partition_write_and_the_switch() {
        let b = steps(&[
            "write secondary invalidate",
            "flush",
            "write secondary body",
            "write secondary header",
            "flush",
            "read back secondary",
            "switch EXT_CSD[179] to boot1",
            "read back",
        ]);
        let (cuts, live) = cut_points(&b).unwrap();
        assert_eq!(live, 6);
        assert_eq!(
            cuts,
            [
                Cut::BeforeStep(1),
                Cut::BeforeStep(2),
                Cut::BeforeStep(6),
                Cut::Done
            ]
        );
        let a = steps(&[
            "write primary invalidate",
            "flush",
            "write primary body",
            "write primary first",
            "flush",
            "write primary commit",
            "flush",
            "read back",
        ]);
        let (cuts, live) = cut_points(&a).unwrap();
        assert_eq!(live, 5);
        assert!(
            cuts.contains(&Cut::BeforeStep(5)) && cuts.len() == 4,
            "{cuts:?}"
        );
        assert!(cut_points(&steps(&["flush"])).is_none());
    }

    #[test]
    fn the_tool_is_pointed_at_the_layouts_device() {
        assert!(
            ubootctl(EmmcLayout::InOnePartition, "status", "")
                .contains("--device /dev/mmcblk2boot0")
        );
        assert!(
            ubootctl(EmmcLayout::AcrossPartitions, "status", "")
                .contains("--emmc-ab --device /dev/mmcblk2 ")
        );
    }
}
