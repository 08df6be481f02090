//! SWUpdate 2022.12 with the `ubootctl` Lua image handler
//! (`integrations/swupdate/swupdate_handlers.lua`), run for real: `swupdate -i FILE.swu` on a
//! .swu signed by a test certificate (the Debian build requires signed images and a hardware
//! compatibility entry), and the command of `ubootctl-commit.service` (SWUpdate has no commit
//! step). Nothing is installed in system paths: `LUA_PATH` points at the handler.

mod fleet;
mod medium;

use std::path::{Path, PathBuf};
use std::process::Command;

use boot_core::policy::Reason;
use fleet::{Rig, describe, require, run, test_certificate};
use medium::{image, tampered};
use sha2::{Digest, Sha256};

const HW: &str = "ubootctl-test-board";

/// Builds `NAME.swu`: sw-description naming `flash.bin` (type `ubootctl`, `sha256` = the
/// SHA-256 of `described`), its CMS signature by `cert`, then `payload` as `flash.bin`, packed
/// with `cpio -o -H crc` in that order.
fn swu(
    rig: &Rig,
    name: &str,
    described: &[u8],
    payload: &[u8],
    cert: &(PathBuf, PathBuf),
) -> PathBuf {
    let d = rig.dir.path().join(format!("swu-{name}"));
    std::fs::create_dir_all(&d).unwrap();
    let sha = hex(&Sha256::digest(described));
    std::fs::write(
        d.join("sw-description"),
        format!(
            "software =\n{{\n\tversion = \"2.0.0\";\n\thardware-compatibility: [ \"1.0\" ];\n\
             \timages: (\n\t\t{{\n\t\t\tfilename = \"flash.bin\";\n\t\t\ttype = \"ubootctl\";\n\
             \t\t\tsha256 = \"{sha}\";\n\t\t}}\n\t);\n}}\n"
        ),
    )
    .unwrap();
    std::fs::write(d.join("flash.bin"), payload).unwrap();
    let o = run(Command::new("openssl")
        .args([
            "cms",
            "-sign",
            "-in",
            "sw-description",
            "-out",
            "sw-description.sig",
        ])
        .args(["-outform", "DER", "-nosmimecap", "-binary", "-signer"])
        .arg(&cert.0)
        .arg("-inkey")
        .arg(&cert.1)
        .current_dir(&d));
    assert!(o.status.success(), "openssl cms -sign: {}", describe(&o));
    let out = rig.dir.path().join(format!("{name}.swu"));
    let o = run(Command::new("sh")
        .arg("-c")
        .arg("printf 'sw-description\\nsw-description.sig\\nflash.bin\\n' | cpio -o -H crc --quiet > \"$0\"")
        .arg(&out)
        .current_dir(&d));
    assert!(o.status.success(), "cpio: {}", describe(&o));
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `swupdate -v -k CERT -H BOARD:1.0 -i SWU` with the handler on the Lua path.
fn swupdate(rig: &Rig, cert: &Path, file: &Path) -> std::process::Output {
    // SWUpdate's control sockets and scratch files live in $TMPDIR: two runs at once would
    // share them, so each test has its own, and the runs take turns.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    let tmp = rig.dir.path().join("swupdate-tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let lua = fleet::integrations().join("swupdate");
    run(rig
        .command("swupdate")
        .env("TMPDIR", &tmp)
        .env("LUA_PATH", format!("{}/?.lua;;", lua.display()))
        .arg("-v")
        .arg("-k")
        .arg(cert)
        .arg("-H")
        .arg(format!("{HW}:1.0"))
        .arg("-i")
        .arg(file))
}

/// The command `ubootctl-commit.service` runs (its ExecStart), with the program taken from the
/// rig's PATH (the repository's `ubootctl-fleet`) instead of /usr/sbin.
fn commit_service(rig: &Rig) -> std::process::Output {
    let unit =
        std::fs::read_to_string(fleet::integrations().join("systemd/ubootctl-commit.service"))
            .unwrap();
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart");
    let mut words = exec.split_whitespace();
    let program = Path::new(words.next().unwrap())
        .file_name()
        .unwrap()
        .to_owned();
    assert_eq!(program, "ubootctl-fleet");
    run(rig.command(program).args(words))
}

#[test]
fn swupdate_installs_through_ubootctl_and_the_commit_unit_syncs_after_the_reboot() {
    require(&["swupdate", "cpio", "openssl"]);
    let rig = Rig::healthy();
    let cert = test_certificate(rig.dir.path(), "swu-test");
    let file = swu(&rig, "v2", image(2), image(2), &cert);
    let o = swupdate(&rig, &cert.0, &file);
    assert!(o.status.success(), "swupdate: {}", describe(&o));
    assert!(rig.primary_holds(image(2)) && rig.secondary_holds(image(1)));
    // The commit unit before the reboot: the new image has not booted; nothing is written.
    let before = rig.disk_bytes();
    let o = commit_service(&rig);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(rig.disk_bytes() == before);
    // After a boot of the new primary: the fallback becomes a copy of it.
    rig.reboot_into(Reason::PrimaryOk, image(2));
    let o = commit_service(&rig);
    assert!(o.status.success(), "commit: {}", describe(&o));
    assert!(rig.secondary_holds(image(2)));
    assert_eq!(rig.status()["healthy"], true);
    // Run again (a later boot): nothing left to do, still exit 0.
    let o = commit_service(&rig);
    assert!(o.status.success(), "commit again: {}", describe(&o));
    // Booted from the fallback (the new image failed): no commit.
    rig.reboot_into(Reason::PrimaryFailed, image(2));
    let o = commit_service(&rig);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
}

#[test]
fn swupdate_with_a_tampered_image_fails_and_leaves_the_device_byte_identical() {
    require(&["swupdate", "cpio", "openssl"]);
    let rig = Rig::healthy();
    let before = rig.disk_bytes();
    let cert = test_certificate(rig.dir.path(), "swu-test");
    // Signed into the .swu with its own sha256: SWUpdate accepts it, ubootctl's HAB check not.
    let bad = tampered(2);
    let file = swu(&rig, "tampered", &bad, &bad, &cert);
    let o = swupdate(&rig, &cert.0, &file);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(describe(&o).contains("not authentic"), "{}", describe(&o));
    assert!(rig.disk_bytes() == before, "device byte-identical");
    // A payload that does not match the signed sha256: SWUpdate itself refuses.
    let file = swu(&rig, "swapped", image(2), image(0), &cert);
    let o = swupdate(&rig, &cert.0, &file);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert!(rig.disk_bytes() == before, "device byte-identical");
}
