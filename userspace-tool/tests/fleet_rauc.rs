//! RAUC 1.8 with the `ubootctl` slot-install hook (`integrations/rauc/ubootctl-hook`), run for
//! real: `rauc service` (bootloader=noop, --override-boot-slot=_external_) and `rauc install`
//! under `dbus-run-session` on the session bus, with a plain bundle built by `rauc bundle`. The
//! bundle's loop mount under the scratch `mountprefix` and its loop devices are released after
//! every run, whatever happened (a guard, on panics too).

mod fleet;
mod medium;

use std::path::{Path, PathBuf};
use std::process::Command;

use boot_core::policy::Reason;
use fleet::{Rig, describe, require, run, test_certificate};
use medium::{image, tampered};

const COMPATIBLE: &str = "ubootctl-test-board";

/// A bundle holding `flash_bin` and the hook, with the repository's example manifest's
/// structure (compatible and format adapted to the test).
fn bundle(rig: &Rig, name: &str, flash_bin: &[u8], cert: &(PathBuf, PathBuf)) -> PathBuf {
    let d = rig.dir.path().join(format!("bundle-{name}"));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::write(d.join("flash.bin"), flash_bin).unwrap();
    std::fs::copy(
        fleet::integrations().join("rauc/ubootctl-hook"),
        d.join("ubootctl-hook"),
    )
    .unwrap();
    let example =
        std::fs::read_to_string(fleet::integrations().join("rauc/manifest.raucm")).unwrap();
    let manifest = example
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            if l.starts_with("compatible=") {
                format!("compatible={COMPATIBLE}")
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(manifest.contains("hooks=install") && manifest.contains("format=plain"));
    std::fs::write(d.join("manifest.raucm"), manifest + "\n").unwrap();
    let out = rig.dir.path().join(format!("{name}.raucb"));
    let o = run(Command::new("rauc")
        .arg("bundle")
        .arg(format!("--cert={}", cert.0.display()))
        .arg(format!("--key={}", cert.1.display()))
        .arg(&d)
        .arg(&out));
    assert!(o.status.success(), "rauc bundle: {}", describe(&o));
    out
}

/// The test's system.conf: the example's slot (raw, the device of the configuration file),
/// bootloader=noop and scratch directories.
fn system_conf(rig: &Rig, cert: &Path) -> PathBuf {
    let d = rig.dir.path();
    let p = d.join("system.conf");
    std::fs::create_dir_all(d.join("rauc-data")).unwrap();
    std::fs::create_dir_all(d.join("mnt")).unwrap();
    std::fs::write(
        &p,
        format!(
            "[system]\ncompatible={COMPATIBLE}\nbootloader=noop\ndata-directory={}\nmountprefix={}\n\n\
             [keyring]\npath={}\n\n[slot.bootimage.0]\ndevice={}\ntype=raw\n",
            d.join("rauc-data").display(),
            d.join("mnt").display(),
            cert.display(),
            rig.disk.display()
        ),
    )
    .unwrap();
    p
}

/// Releases what a RAUC run may leave behind: mounts under the scratch mountprefix, loop
/// devices backed by the bundles.
struct Released<'a>(&'a Rig);

impl Released<'_> {
    fn leftovers(&self) -> (Vec<String>, Vec<String>) {
        let dir = self.0.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&dir))
            .collect();
        let loops = Command::new("losetup")
            .args(["-n", "-O", "NAME,BACK-FILE", "-l"])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .filter(|l| l.contains(&dir))
                    .filter_map(|l| l.split_whitespace().next().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        (mounts, loops)
    }
}

impl Drop for Released<'_> {
    fn drop(&mut self) {
        let (mounts, loops) = self.leftovers();
        for m in mounts.iter().rev() {
            let _ = Command::new("umount").arg("-l").arg(m).status();
        }
        for l in loops {
            let _ = Command::new("losetup").arg("-d").arg(l).status();
        }
    }
}

/// `rauc service` then `rauc install BUNDLE` on a private session bus.
fn rauc_install(rig: &Rig, conf: &Path, bundle: &Path) -> std::process::Output {
    let script = r#"
        export DBUS_STARTER_BUS_TYPE=session
        rauc service --conf="$1" --override-boot-slot=_external_ &
        svc=$!
        i=0
        until dbus-send --session --print-reply --dest=de.pengutronix.rauc / \
                org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1; do
            i=$((i + 1)); [ $i -lt 100 ] || { echo "rauc service did not start" >&2; kill $svc; exit 3; }
            sleep 0.1
        done
        rauc install "$2"; rc=$?
        kill $svc; wait $svc
        exit $rc
    "#;
    run(rig
        .command("timeout")
        .args([
            "120",
            "dbus-run-session",
            "--",
            "sh",
            "-c",
            script,
            "rauc-test",
        ])
        .arg(conf)
        .arg(bundle))
}

#[test]
fn rauc_installs_through_the_hook_and_refuses_a_tampered_image() {
    require(&[
        "rauc",
        "mksquashfs",
        "dbus-run-session",
        "dbus-send",
        "openssl",
        "losetup",
    ]);
    let rig = Rig::healthy();
    let released = Released(&rig);
    let cert = test_certificate(rig.dir.path(), "rauc-test");
    let conf = system_conf(&rig, &cert.0);

    // A failing image first: the hook's ubootctl refuses, RAUC fails the install.
    let before = rig.disk_bytes();
    let bad = bundle(&rig, "tampered", &tampered(2), &cert);
    let o = rauc_install(&rig, &conf, &bad);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(describe(&o).contains("not authentic"), "{}", describe(&o));
    assert!(rig.disk_bytes() == before, "device byte-identical");

    let good = bundle(&rig, "v2", image(2), &cert);
    let o = rauc_install(&rig, &conf, &good);
    assert!(o.status.success(), "rauc install: {}", describe(&o));
    assert!(rig.primary_holds(image(2)) && rig.secondary_holds(image(1)));

    // The commit after the boot of the new image (ubootctl-commit.service's command).
    rig.reboot_into(Reason::PrimaryOk, image(2));
    let o = run(rig.command("ubootctl-fleet").arg("commit"));
    assert!(o.status.success(), "commit: {}", describe(&o));
    assert!(rig.secondary_holds(image(2)));

    let (mounts, loops) = released.leftovers();
    assert!(
        mounts.is_empty() && loops.is_empty(),
        "left mounted: {mounts:?}, loops: {loops:?}"
    );
}
