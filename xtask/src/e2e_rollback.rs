//! End-to-end scenario d (issue 18): anti-rollback through the shim, Linux and `ubootctl`, with
//! the fuse block persisted by the harness across QEMU runs (design.md §5.3).
//!
//! In QEMU the rollback fuses are bytes 0x28..0x30 of the simulated fuse block that the loader
//! places at [`FUSES_ADDR`]; the guest's `ubootctl` reads and burns them through `/dev/mem`
//! (`--fuses /dev/mem`). The harness reads the block back over QMP after the commit and writes
//! it to the fuse file of the next QEMU run, as fuses outlive a power cycle.
//!
//! Boots (each one needed): 1 the epoch-1 image; 2 the epoch-2 image after the update (the
//! commit needs the new image to have booted); 3 a new QEMU run with the persisted fuses and a
//! downgraded primary, which the shim must refuse.

use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::disk::{ImageCopy, PRIMARY_OFFSET};
use crate::e2e::{BOARD, MMC, Machine, Rig, STDERR_PREFIX, check, check_boot, check_copy, say};
use crate::qemu::FUSES_ADDR;
use crate::{Context, Result};

/// `ubootctl SUB` on the SD card with the fuses (SRK hash, SEC_CONFIG, rollback bits) read from
/// the simulated block in physical memory.
fn ubootctl(sub: &str) -> String {
    format!("ubootctl {sub} --device {MMC} --board {BOARD} --fuses /dev/mem")
}

fn json_u64(v: &serde_json::Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

/// Runs `status --json` and checks the minimum and the epochs it reports.
fn check_rollback_status(m: &mut Machine, minimum: u64, primary_epoch: Option<u64>) -> Result<()> {
    let (st, _) = m.run_json(&ubootctl("status --json"))?;
    check(
        json_u64(&st, &["rollback", "minimum"]) == Some(minimum),
        "status: rollback minimum",
        minimum,
        st["rollback"]["minimum"].clone(),
    )?;
    check(
        json_u64(&st, &["primary", "epoch"]) == primary_epoch,
        "status: primary epoch",
        format!("{primary_epoch:?}"),
        st["primary"]["epoch"].clone(),
    )
}

/// Scenario d: min 1, both copies v1 (epoch 1). Update to v2 (epoch 2), reboot, sync, commit
/// (min 2). The harness persists the fuses and powers off. `ubootctl update /v1.bin` is refused;
/// a v1 written over the primary behind the tool's back is refused by the shim, which boots the
/// v2 secondary and records why.
pub fn scenario_d(rig: &Rig) -> Result<u32> {
    say(
        "\n=== scenario d: anti-rollback: update to epoch 2, reboot, commit, downgrade refused ===",
    );
    let disk = rig.disk("d-sd.img", &rig.v1, &rig.v1)?;
    let fuses = rig.work.join("d-fuses.bin");
    crate::pki::SimFuses {
        rollback: 0b1,
        ..rig.kit.fuses
    }
    .write(&fuses)?;
    say("  SD image: v1 (epoch 1) in both copies; fuses: rollback minimum 1");
    let mut m = Machine::start_with_fuses(rig, &disk, &fuses, rig.work.join("d1.uart.log"))?;
    check_boot(m.boot()?, 1, 1)?;
    check(
        m.uart().contains("shim: closed part, rollback minimum 1"),
        "shim: enforced minimum",
        "rollback minimum 1",
        "rollback minimum 1",
    )?;
    check_rollback_status(&mut m, 1, Some(1))?;
    let (_, rc) = m.run(&ubootctl("update /v2.bin"))?;
    check(rc == 0, "ubootctl update /v2.bin exit", 0, rc)?;
    let (out, rc) = m.run(&ubootctl("commit --dry-run"))?;
    check(
        rc == 1 && out.contains("has not booted"),
        "commit before the reboot",
        "refused (exit 1): the new image has not booted",
        format!("exit {rc}"),
    )?;
    m.reboot()?;
    check_boot(m.boot()?, 2, 1)?;
    let (out, rc) = m.run(&ubootctl("commit --yes"))?;
    check(
        rc == 1 && out.contains("run `ubootctl sync` first"),
        "commit before the sync",
        "refused (exit 1): the secondary differs",
        format!("exit {rc}"),
    )?;
    let (_, rc) = m.run(&ubootctl("sync"))?;
    check(rc == 0, "ubootctl sync exit", 0, rc)?;
    let (out, rc) = m.run(&ubootctl("commit --dry-run"))?;
    check(
        rc == 0 && out.contains("would burn bits [1]"),
        "commit --dry-run",
        "bit 1 (minimum 1 -> 2)",
        format!("exit {rc}"),
    )?;
    let (plan, rc) = m.run_json(&ubootctl("commit --yes --json"))?;
    check(
        rc == 0 && json_u64(&plan, &["minimum"]) == Some(2),
        "commit --yes",
        "burned, minimum 2",
        format!("exit {rc}, {}", plan["minimum"]),
    )?;
    check_rollback_status(&mut m, 2, Some(2))?;
    let (out, rc) = m.run(&ubootctl("update /v1.bin"))?;
    let refused = out
        .lines()
        .any(|l| l.starts_with(STDERR_PREFIX) && l.contains("below the minimum 2"));
    check(
        rc == 1 && refused,
        "ubootctl update /v1.bin (epoch 1)",
        "refused (exit 1): below the minimum 2",
        format!("exit {rc}"),
    )?;
    // Fuses outlive the power cycle: the harness keeps what the guest burned.
    let block = m.read_physical(FUSES_ADDR, 64)?;
    let bits = u64::from_le_bytes(block[0x28..0x30].try_into().expect("8 bytes"));
    check(
        bits == 0b11,
        "fuse block after the commit (read over QMP)",
        "rollback bits 0b11",
        format!("{bits:#b}"),
    )?;
    std::fs::write(&fuses, &block).with_context(|| format!("writing {}", fuses.display()))?;
    let mut boots = m.poweroff()?;
    check_copy(&disk, ImageCopy::Primary, &rig.v2, "v2")?;
    check_copy(&disk, ImageCopy::Secondary, &rig.v2, "v2")?;

    write_primary(&disk, &rig.v1)?;
    say("  host: v1 (epoch 1, authentic) written over the primary, as a downgrade by `dd` would");
    let mut m = Machine::start_with_fuses(rig, &disk, &fuses, rig.work.join("d2.uart.log"))?;
    check_boot(m.boot()?, 2, 2)?;
    let uart = m.uart();
    check(
        uart.contains("shim: closed part, rollback minimum 2")
            && uart.contains("security epoch 1 is below the minimum 2"),
        "shim: the epoch-1 primary refused after authentication",
        "rollback minimum 2, epoch 1 below it",
        "both lines on the UART",
    )?;
    let (st, rc) = m.run_json(&ubootctl("status --json"))?;
    check(
        rc == 1
            && st["primary"]["class"] == "rollback"
            && json_u64(&st, &["running"]) == Some(2)
            && json_u64(&st, &["rollback", "enforced_at_boot"]) == Some(2),
        "status after the downgrade",
        "degraded, running 2, primary `rollback`, enforced minimum 2",
        format!(
            "exit {rc}, running {}, primary {}, enforced {}",
            st["running"], st["primary"]["class"], st["rollback"]["enforced_at_boot"]
        ),
    )?;
    boots += m.poweroff()?;
    Ok(boots)
}

/// Writes `image` at the primary's offset of the SD image `disk` (QEMU not running).
fn write_primary(disk: &Path, image: &[u8]) -> Result<()> {
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .with_context(|| format!("opening {}", disk.display()))?;
    f.write_all_at(image, PRIMARY_OFFSET)
        .with_context(|| format!("writing the primary of {}", disk.display()))?;
    f.sync_all()
        .with_context(|| format!("syncing {}", disk.display()))
}
