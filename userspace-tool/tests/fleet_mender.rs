//! Mender 3.4 with the `ubootctl` Update Module v3 (`integrations/mender/ubootctl`), run for
//! real in standalone mode (`mender install|commit|rollback`) on a device image file; the
//! daemon-only states (ArtifactReboot, ArtifactVerifyReboot, ArtifactVerifyRollbackReboot) are
//! called the way the client calls them. The module is installed in
//! `/usr/share/mender/modules/v3/` (Mender 3.4 ignores `ModulesPath`) and `/etc/mender/artifact_info`
//! is created when missing; both are put back as they were on every way out.

mod fleet;
mod medium;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use boot_core::policy::Reason;
use fleet::{Installed, Rig, describe, require, run};
use medium::{Layout, image, tampered};

const DEVICE_TYPE: &str = "ubootctl-test-board";
/// The tests share the module and artifact_info paths: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

struct Mender {
    _module: Installed,
    _artifact_info: Option<Installed>,
    _serial: std::sync::MutexGuard<'static, ()>,
}

fn mender_setup() -> Mender {
    require(&["mender", "mender-artifact", "openssl"]);
    let serial = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let module = std::fs::read(fleet::integrations().join("mender/ubootctl")).unwrap();
    let info = Path::new("/etc/mender/artifact_info");
    Mender {
        _module: Installed::new(
            Path::new("/usr/share/mender/modules/v3/ubootctl"),
            &module,
            0o755,
        ),
        _artifact_info: (!info.exists())
            .then(|| Installed::new(info, b"artifact_name=ubootctl-test-base\n", 0o644)),
        _serial: serial,
    }
}

/// Writes `mender.conf` (with `ArtifactVerifyKey` when `key` is given) and `device_type`.
fn mender_conf(rig: &Rig, key: Option<&Path>) -> PathBuf {
    let d = rig.dir.path();
    std::fs::write(
        d.join("device_type"),
        format!("device_type={DEVICE_TYPE}\n"),
    )
    .unwrap();
    let mut conf = serde_json::json!({"DeviceTypeFile": d.join("device_type")});
    if let Some(k) = key {
        conf["ArtifactVerifyKey"] = serde_json::json!(k);
    }
    std::fs::create_dir_all(d.join("datadir")).unwrap();
    let p = d.join("mender.conf");
    std::fs::write(&p, conf.to_string()).unwrap();
    p
}

/// `mender-artifact write module-image -T ubootctl -f flash.bin` (signed with `key`).
fn artifact(rig: &Rig, name: &str, flash_bin: &[u8], key: Option<&Path>) -> PathBuf {
    let d = rig.dir.path().join(format!("payload-{name}"));
    std::fs::create_dir_all(&d).unwrap();
    let file = d.join("flash.bin");
    std::fs::write(&file, flash_bin).unwrap();
    let out = rig.dir.path().join(format!("{name}.mender"));
    let mut c = Command::new("mender-artifact");
    c.args([
        "write",
        "module-image",
        "-T",
        "ubootctl",
        "-n",
        name,
        "-t",
        DEVICE_TYPE,
    ])
    .arg("-f")
    .arg(&file)
    .arg("-o")
    .arg(&out)
    .args(["--software-name", "u-boot", "--software-version", name]);
    if let Some(k) = key {
        c.arg("-k").arg(k);
    }
    let o = run(&mut c);
    assert!(o.status.success(), "mender-artifact: {}", describe(&o));
    out
}

/// `mender --no-syslog -c CONF -d DATADIR ARGS…` in the rig's environment.
fn mender(rig: &Rig, conf: &Path, args: &[&Path]) -> std::process::Output {
    let mut c = rig.command("mender");
    c.arg("--no-syslog")
        .arg("-c")
        .arg(conf)
        .arg("-d")
        .arg(rig.dir.path().join("datadir"))
        .args(args);
    run(&mut c)
}

#[test]
fn mender_install_reboot_commit_makes_the_fallback_a_copy_of_the_new_image() {
    let _m = mender_setup();
    let rig = Rig::healthy();
    let conf = mender_conf(&rig, None);
    let art = artifact(&rig, "v2", image(2), None);
    let o = mender(&rig, &conf, &[Path::new("install"), &art]);
    assert!(o.status.success(), "install: {}", describe(&o));
    assert!(rig.primary_holds(image(2)) && rig.secondary_holds(image(1)));
    // The reboot: the shim boots the new primary.
    rig.reboot_into(Reason::PrimaryOk, image(2));
    let o = mender(&rig, &conf, &[Path::new("commit")]);
    assert!(o.status.success(), "commit: {}", describe(&o));
    assert!(rig.primary_holds(image(2)) && rig.secondary_holds(image(2)));
    assert_eq!(rig.status()["healthy"], true);
}

#[test]
fn mender_commit_without_a_reboot_is_refused_and_rolled_back() {
    let _m = mender_setup();
    let rig = Rig::healthy();
    let before = rig.disk_bytes();
    let conf = mender_conf(&rig, None);
    let art = artifact(&rig, "v2", image(2), None);
    let o = mender(&rig, &conf, &[Path::new("install"), &art]);
    assert!(o.status.success(), "install: {}", describe(&o));
    // The new image has not booted: the module refuses to commit it, and the client rolls back.
    let o = mender(&rig, &conf, &[Path::new("commit")]);
    assert!(
        !o.status.success(),
        "commit before the reboot: {}",
        describe(&o)
    );
    let log = describe(&o);
    assert!(
        log.contains("the image that booted is not the primary"),
        "{log}"
    );
    assert!(
        rig.disk_bytes() == before,
        "rolled back: the device is as before the install\n{log}"
    );
}

#[test]
fn mender_rollback_without_a_reboot_restores_the_device() {
    let _m = mender_setup();
    let rig = Rig::healthy();
    let before = rig.disk_bytes();
    let conf = mender_conf(&rig, None);
    let art = artifact(&rig, "v2", image(2), None);
    let o = mender(&rig, &conf, &[Path::new("install"), &art]);
    assert!(o.status.success(), "install: {}", describe(&o));
    assert!(rig.primary_holds(image(2)));
    let o = mender(&rig, &conf, &[Path::new("rollback")]);
    assert!(o.status.success(), "rollback: {}", describe(&o));
    assert!(
        rig.disk_bytes() == before,
        "the device is as before the install"
    );
}

#[test]
fn mender_install_of_a_tampered_image_fails_and_leaves_the_device_byte_identical() {
    let _m = mender_setup();
    let rig = Rig::healthy();
    let before = rig.disk_bytes();
    let conf = mender_conf(&rig, None);
    let art = artifact(&rig, "bad", &tampered(2), None);
    let o = mender(&rig, &conf, &[Path::new("install"), &art]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let all = describe(&o);
    assert!(
        all.contains("not authentic"),
        "ubootctl's refusal is in the log: {all}"
    );
    assert!(rig.disk_bytes() == before, "device byte-identical");
}

#[test]
fn mender_with_a_verify_key_installs_signed_artifacts_and_rejects_unsigned_ones() {
    let _m = mender_setup();
    let rig = Rig::healthy();
    let d = rig.dir.path();
    let key = d.join("artifact-key.pem");
    let public = d.join("artifact-key.pub");
    // PKCS#1 ("traditional"): what mender-artifact 3.9 parses.
    let o = run(Command::new("openssl")
        .args(["genrsa", "-traditional", "-out"])
        .arg(&key)
        .arg("3072"));
    assert!(o.status.success(), "{}", describe(&o));
    let o = run(Command::new("openssl")
        .arg("rsa")
        .arg("-in")
        .arg(&key)
        .arg("-pubout")
        .arg("-out")
        .arg(&public));
    assert!(o.status.success(), "{}", describe(&o));
    let conf = mender_conf(&rig, Some(&public));
    let before = rig.disk_bytes();
    let unsigned = artifact(&rig, "v2-unsigned", image(2), None);
    let o = mender(&rig, &conf, &[Path::new("install"), &unsigned]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(
        rig.disk_bytes() == before,
        "unsigned artifact: device byte-identical"
    );
    let signed = artifact(&rig, "v2-signed", image(2), Some(&key));
    let o = mender(&rig, &conf, &[Path::new("install"), &signed]);
    assert!(o.status.success(), "signed install: {}", describe(&o));
    assert!(rig.primary_holds(image(2)) && rig.secondary_holds(image(1)));
}

/// Runs the module for `state` the way the client does: `MODULE STATE FILES_DIR`.
fn module(rig: &Rig, state: &str, files: &Path) -> std::process::Output {
    run(rig
        .command(fleet::integrations().join("mender/ubootctl"))
        .arg(state)
        .arg(files))
}

/// The module saved `img` (the authentic extent of it, as `status --json` sizes the copy).
fn assert_saved(tree: &Path, img: &[u8]) {
    let saved = std::fs::read(tree.join("tmp/previous.bin")).unwrap();
    let extent = ubootctl::media::judge_flash_bin(img, medium::board(), &medium::fuses())
        .unwrap()
        .extent as usize;
    assert!(
        saved.len() == extent && img.starts_with(&saved),
        "previous.bin: {} bytes, the image's extent {extent}",
        saved.len()
    );
}

/// A module work tree holding `flash_bin` as its payload.
fn tree(rig: &Rig, flash_bin: &[u8]) -> PathBuf {
    let t = rig.dir.path().join("tree");
    std::fs::create_dir_all(t.join("files")).unwrap();
    std::fs::create_dir_all(t.join("tmp")).unwrap();
    std::fs::write(t.join("files/flash.bin"), flash_bin).unwrap();
    t
}

#[test]
fn module_daemon_states_verify_the_booted_image_and_roll_back_after_a_reboot() {
    require(&[]);
    let rig = Rig::healthy();
    let t = tree(&rig, image(2));
    let out = |o: &std::process::Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert_eq!(out(&module(&rig, "SupportsRollback", &t)), "Yes");
    assert_eq!(out(&module(&rig, "NeedsArtifactReboot", &t)), "Automatic");
    let o = module(&rig, "ArtifactInstall", &t);
    assert!(o.status.success(), "{}", describe(&o));
    assert_saved(&t, image(1));
    assert!(module(&rig, "ArtifactReboot", &t).status.success());
    // Booted the old image still (no reboot happened): verification fails.
    let o = module(&rig, "ArtifactVerifyReboot", &t);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    // The new primary failed and the shim fell back: verification fails.
    rig.reboot_into(Reason::PrimaryFailed, image(1));
    let o = module(&rig, "ArtifactVerifyReboot", &t);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    // It booted the new primary: verified.
    rig.reboot_into(Reason::PrimaryOk, image(2));
    let o = module(&rig, "ArtifactVerifyReboot", &t);
    assert!(o.status.success(), "{}", describe(&o));
    // The server says roll back (a failed health check): the previous image goes back to the
    // primary, the running new one stays behind it as the fallback (AN12900's rule).
    let o = module(&rig, "ArtifactRollback", &t);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(rig.primary_holds(image(1)) && rig.secondary_holds(image(2)));
    assert!(module(&rig, "ArtifactRollbackReboot", &t).status.success());
    rig.reboot_into(Reason::PrimaryOk, image(1));
    let o = module(&rig, "ArtifactVerifyRollbackReboot", &t);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(module(&rig, "ArtifactFailure", &t).status.success());
    assert!(module(&rig, "Cleanup", &t).status.success());
    // Every way through leaves a bootable device.
    assert_eq!(rig.status()["next_boot"], 1);
}

#[test]
fn module_rollback_after_falling_back_rewrites_the_primary_only() {
    require(&[]);
    let rig = Rig::healthy();
    let t = tree(&rig, image(2));
    assert!(module(&rig, "ArtifactInstall", &t).status.success());
    rig.reboot_into(Reason::PrimaryFailed, image(1));
    let o = module(&rig, "ArtifactRollback", &t);
    assert!(o.status.success(), "{}", describe(&o));
    assert!(rig.primary_holds(image(1)) && rig.secondary_holds(image(1)));
    // Commit refuses while the fallback runs.
    let o = module(&rig, "ArtifactCommit", &t);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
}

#[test]
fn module_install_from_the_fallback_saves_the_running_secondary() {
    require(&[]);
    let damaged = tampered(1);
    let rig = Rig::new(
        Layout {
            primary: Some(&damaged),
            secondary: Some(image(1)),
            sit: true,
        },
        Reason::PrimaryFailed,
        image(1),
    );
    let t = tree(&rig, image(2));
    let o = module(&rig, "ArtifactInstall", &t);
    assert!(o.status.success(), "{}", describe(&o));
    assert_saved(&t, image(1));
    assert!(rig.primary_holds(image(2)) && rig.secondary_holds(image(1)));
}

/// Anti-rollback through Mender: with the fuses in the configuration, ArtifactCommit (the
/// fleet commit step) syncs the fallback and advances the minimum to the new image's epoch.
#[test]
fn mender_commit_advances_the_rollback_minimum() {
    let _m = mender_setup();
    let e2 = medium::epoch_image(2, 2);
    let rig = Rig::epoch_1_at_minimum_1();
    let conf = mender_conf(&rig, None);
    let art = artifact(&rig, "e2", &e2, None);
    let o = mender(&rig, &conf, &[Path::new("install"), &art]);
    assert!(o.status.success(), "install: {}", describe(&o));
    assert_eq!(rig.rollback_bits(), 0b1, "nothing burned at install");
    rig.reboot_into_enforcing(Reason::PrimaryOk, &e2, 0b1);
    let o = mender(&rig, &conf, &[Path::new("commit")]);
    assert!(o.status.success(), "commit: {}", describe(&o));
    assert!(rig.primary_holds(&e2) && rig.secondary_holds(&e2));
    assert_eq!(rig.rollback_bits(), 0b11, "{}", describe(&o));
}
