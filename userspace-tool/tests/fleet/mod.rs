//! The rig of the fleet-client tests (issue 13): a device image file, a boot cell, an SRK hash
//! file and a configuration file that the integrations (`integrations/`) read through
//! `$UBOOTCTL_CONFIG`, with `ubootctl` and `ubootctl-fleet` first in PATH; and guards that
//! remove what a test installs in system paths, on every way out (panics included).
#![allow(dead_code)] // each test crate uses its own subset

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use boot_core::policy::Reason;

use crate::medium::{self, Layout, board, boot_record, image, mem_image, pki};

/// The repository's `integrations/` directory.
pub fn integrations() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../integrations")
}

/// Fails the test with a clear message when a client is not installed (`.ci/setup` installs
/// them) or the test does not run as root.
pub fn require(tools: &[&str]) {
    assert!(
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.trim_ascii() == b"0"),
        "the fleet-client tests run the real clients as root (CI does)"
    );
    for t in tools {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(t).is_file()))
            .unwrap_or(false);
        assert!(found, "{t} is not installed: run .ci/setup");
    }
}

/// A device image, its cell and its configuration in a scratch directory.
pub struct Rig {
    /// The scratch directory.
    pub dir: tempfile::TempDir,
    /// The device image file (8 MiB, the qemu-imx8mp layout).
    pub disk: PathBuf,
    /// The physical-memory file holding the boot cell.
    pub mem: PathBuf,
    /// The configuration file.
    pub config: PathBuf,
    /// PATH with `ubootctl` and `ubootctl-fleet` first.
    pub path: OsString,
}

impl Rig {
    /// A device holding `layout`, booted from `booted` (`Reason::PrimaryOk`: slot 1,
    /// `PrimaryFailed`: slot 2) with the image `booted_image`.
    pub fn new(layout: Layout<'_>, reason: Reason, booted_image: &[u8]) -> Rig {
        let dir = tempfile::Builder::new()
            .prefix("ubootctl-fleet-")
            .tempdir()
            .unwrap();
        let d = dir.path();
        let disk = d.join("disk.img");
        std::fs::write(&disk, medium::medium(layout).bytes()).unwrap();
        let mem = d.join("mem.bin");
        std::fs::write(&mem, mem_image(Some(&boot_record(reason, booted_image)))).unwrap();
        std::fs::write(d.join("srk.bin"), pki(0).srk_hash().unwrap()).unwrap();
        let config = d.join("ubootctl.toml");
        std::fs::write(
            &config,
            format!(
                "# written by the fleet-client tests\ndevice = \"disk.img\"\nboard = \"{}\"\n\
                 srk-hash = \"srk.bin\"\nmem = \"mem.bin\"\n",
                board().name
            ),
        )
        .unwrap();
        let bin = d.join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_ubootctl"), bin.join("ubootctl")).unwrap();
        std::os::unix::fs::symlink(
            integrations().join("ubootctl-fleet"),
            bin.join("ubootctl-fleet"),
        )
        .unwrap();
        let mut paths = vec![bin];
        paths.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        let path = std::env::join_paths(paths).unwrap();
        Rig {
            dir,
            disk,
            mem,
            config,
            path,
        }
    }

    /// [`Rig::new`] whose configuration takes the fuses from a simulated fuse block
    /// (`fuses.bin`, closed part, `rollback` bits burned) instead of the SRK hash file, and
    /// whose boot record says the shim enforced that minimum: what anti-rollback needs.
    pub fn with_rollback_fuses(
        layout: Layout<'_>,
        reason: Reason,
        booted_image: &[u8],
        rollback: u64,
    ) -> Rig {
        let rig = Rig::new(layout, reason, booted_image);
        let d = rig.dir.path();
        std::fs::write(d.join("fuses.bin"), medium::fuse_block(rollback)).unwrap();
        std::fs::write(
            &rig.config,
            format!(
                "# written by the fleet-client tests\ndevice = \"disk.img\"\nboard = \"{}\"\n\
                 fuses = \"fuses.bin\"\nmem = \"mem.bin\"\n",
                board().name
            ),
        )
        .unwrap();
        rig.reboot_into_enforcing(reason, booted_image, rollback);
        rig
    }

    /// Both copies hold `epoch_image(1, 1)`, booted from the primary by a shim that enforced
    /// minimum 1 (one rollback bit burned).
    pub fn epoch_1_at_minimum_1() -> Rig {
        let e1 = medium::epoch_image(1, 1);
        Rig::with_rollback_fuses(
            Layout {
                primary: Some(&e1),
                secondary: Some(&e1),
                sit: true,
            },
            Reason::PrimaryOk,
            &e1,
            0b1,
        )
    }

    /// [`Rig::reboot_into`] by a shim that enforced the minimum of the rollback bits `rollback`.
    pub fn reboot_into_enforcing(&self, reason: Reason, booted: &[u8], rollback: u64) {
        let mut r = boot_record(reason, booted);
        r.rollback_minimum = Some(rollback.count_ones() as u8);
        std::fs::write(&self.mem, mem_image(Some(&r))).unwrap();
    }

    /// The rollback bits in the rig's `fuses.bin`.
    pub fn rollback_bits(&self) -> u64 {
        let b = std::fs::read(self.dir.path().join("fuses.bin")).unwrap();
        u64::from_le_bytes(b[0x28..0x30].try_into().unwrap())
    }

    /// A healthy device: `image(1)` in both copies, slot 1 booted from it.
    pub fn healthy() -> Rig {
        Rig::new(
            Layout {
                primary: Some(image(1)),
                secondary: Some(image(1)),
                sit: true,
            },
            Reason::PrimaryOk,
            image(1),
        )
    }

    /// A file in the scratch directory.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// The device bytes.
    pub fn disk_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.disk).unwrap()
    }

    /// Simulates a reboot after which the shim booted `booted` (`reason` as in [`Rig::new`]).
    pub fn reboot_into(&self, reason: Reason, booted: &[u8]) {
        std::fs::write(&self.mem, mem_image(Some(&boot_record(reason, booted)))).unwrap();
    }

    /// A command with the rig's environment (PATH, `$UBOOTCTL_CONFIG`).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env("PATH", &self.path)
            .env("UBOOTCTL_CONFIG", &self.config)
            .current_dir(self.dir.path());
        c
    }

    /// Whether the primary holds `img`.
    pub fn primary_holds(&self, img: &[u8]) -> bool {
        let off = board().media.primary_offset() as usize;
        self.disk_bytes().get(off..off + img.len()) == Some(img)
    }

    /// Whether the secondary holds `img`.
    pub fn secondary_holds(&self, img: &[u8]) -> bool {
        let off = ubootctl::media::standard_secondary_offset(&board().media) as usize;
        self.disk_bytes().get(off..off + img.len()) == Some(img)
    }

    /// `ubootctl status --json` through the configuration file.
    pub fn status(&self) -> serde_json::Value {
        let o = self
            .command("ubootctl")
            .args(["status", "--json"])
            .output()
            .unwrap();
        assert!(o.status.code().unwrap_or(9) <= 1, "{}", describe(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// Exit code, stdout and stderr of a run.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs `c`, returning its output.
pub fn run(c: &mut Command) -> Output {
    c.output()
        .unwrap_or_else(|e| panic!("cannot run {:?}: {e}", c.get_program()))
}

/// A file installed in a system path for the duration of a test: a file that was there before
/// is put back, one that was not is removed, on drop (so on a panic too).
pub struct Installed {
    path: PathBuf,
    before: Option<Vec<u8>>,
    created_dirs: Vec<PathBuf>,
}

impl Installed {
    /// Writes `bytes` (mode `mode`) to `path`, creating missing parent directories.
    pub fn new(path: &Path, bytes: &[u8], mode: u32) -> Installed {
        use std::os::unix::fs::PermissionsExt;
        let mut created_dirs = Vec::new();
        let mut d = path.parent();
        while let Some(dir) = d {
            if dir.exists() {
                break;
            }
            created_dirs.push(dir.to_path_buf());
            d = dir.parent();
        }
        let guard = Installed {
            path: path.to_path_buf(),
            before: std::fs::read(path).ok(),
            created_dirs,
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
        guard
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        match &self.before {
            Some(b) => {
                let _ = std::fs::write(&self.path, b);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
                for d in &self.created_dirs {
                    let _ = std::fs::remove_dir(d);
                }
            }
        }
    }
}

/// The test signing certificate and key (self-signed, as the clients' test setups use),
/// written to `dir` as `cert.pem` and `key.pem`.
pub fn test_certificate(dir: &Path, cn: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let o = run(Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650", "-subj",
        ])
        .arg(format!("/CN={cn}"))
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert));
    assert!(o.status.success(), "openssl req: {}", describe(&o));
    (cert, key)
}
