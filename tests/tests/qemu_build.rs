//! Our QEMU build (README "Our QEMU", `xtask/src/thirdparty/qemu.rs`): the tests' binary is
//! the patched 10.0.2, it attaches an eMMC to `imx8mp-evk` (patch 0001, which stock 10.0.2
//! refuses), and it exposes EXT_CSD[179] as the `boot-config` property that patch 0002 keeps
//! current. One QEMU start, paused (`-S`): no guest runs.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

#[test]
fn our_qemu_attaches_an_emmc_and_reports_its_partition_config() {
    let qemu = xtask::qemu::qemu_binary();
    let version = xtask::qemu::check_qemu(&qemu).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(version, (10, 0, 2), "{}", qemu.display());

    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("emmc.img");
    // boot0 and boot1, then the user area: the whole file a power of two.
    std::fs::File::create(&img)
        .unwrap()
        .set_len(xtask::emmc::EMMC_BYTES)
        .unwrap();
    let sock = dir.path().join("qmp.sock");
    let mut child = Command::new(&qemu)
        .args(xtask::qemu::machine_args("1G"))
        .args(["-S", "-qmp"])
        .arg(format!("unix:{},server=on,wait=off", sock.display()))
        // The contract's attachment: boot0 enabled with BOOT_ACK (0x48), 4 MiB boot partitions.
        .args(xtask::emmc::EmmcAttach::new(&img).args())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let qmp = xtask::qmp::Qmp::connect(&sock, deadline, || true);
    let result = qmp.and_then(|mut q| {
        let config = q.execute(
            "qom-get",
            Some(json!({"path": "/machine/peripheral/emmc", "property": "boot-config"})),
        )?;
        let size = q.execute(
            "qom-get",
            Some(json!({"path": "/machine/peripheral/emmc", "property": "boot-partition-size"})),
        )?;
        let _ = q.quit();
        Ok((config, size))
    });
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let (config, size) = result.unwrap_or_else(|e| {
        panic!(
            "QMP with an eMMC attached: {e}; QEMU said: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(config, json!(0x48), "BOOT_ACK + boot0 enabled");
    assert_eq!(size, json!(4 << 20));
    assert_eq!(xtask::emmc::BOOT_PARTITION_BYTES, 4 << 20);
}
