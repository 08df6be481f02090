//! The third-party builds, all from Debian's source packages with our patches from `patches/`
//! (patches/README.md): the real boot chain's firmware (issue 17), TF-A BL31 for `imx8mp` and
//! U-Boot proper for `imx8mp_evk` with Debian's cross compiler (`gcc-aarch64-linux-gnu`), and
//! the QEMU every test runs ([`qemu`], issue 14).
//!
//! | step | what |
//! |---|---|
//! | download | `apt-get source --download-only NAME=VERSION` into `target/thirdparty/downloads` (needs a `deb-src` line for bookworm: `.ci/setup`); every file's SHA-256 checked against [`SourcePackage::files`] before use |
//! | extract | `dpkg-source -x` (applies Debian's own patches) into `target/thirdparty/<name>/src` |
//! | patch | `patch -p1 --forward` with each `patches/<name>/*.patch`, in name order |
//! | build | TF-A `make PLAT=imx8mp bl31`; U-Boot `imx8mp_evk_defconfig` + `patches/u-boot/qemu.config`, `make u-boot.bin` (the SPL is not built: the shim takes its place) |
//! | cache | `target/thirdparty/<name>/stamp` holds the SHA-256 of everything that went in (source hashes, patches, config fragment, flags, compiler version) and of every output; a matching stamp with every output present and unchanged skips the work; anything else rebuilds from a fresh extraction |

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sha2::{Digest, Sha256};

use crate::{Context, Result, bail, workspace_root};

pub mod qemu;

/// One Debian source package, pinned: its files and their SHA-256 (from bookworm's `Sources`
/// index, `apt-cache showsrc`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePackage {
    /// Source package name.
    pub name: &'static str,
    /// Exact Debian version.
    pub version: &'static str,
    /// `(file name, SHA-256)`; the `.dsc` first where the build extracts with `dpkg-source`.
    pub files: &'static [(&'static str, &'static str)],
    /// What to run when the download fails.
    pub setup_hint: &'static str,
}

/// TF-A 2.8 of Debian bookworm.
pub const TFA: SourcePackage = SourcePackage {
    name: "arm-trusted-firmware",
    version: "2.8.0+dfsg-1",
    files: &[
        (
            "arm-trusted-firmware_2.8.0+dfsg-1.dsc",
            "9724f19432f9e6565dc0d9a1a4a472596f342d3b8f85a9b78515143079fbf33d",
        ),
        (
            "arm-trusted-firmware_2.8.0+dfsg.orig.tar.xz",
            "a4ecc35e0b893fe8682c075fc1bdb858de87e4cb18fbed9a1597e2c9f6d320de",
        ),
        (
            "arm-trusted-firmware_2.8.0+dfsg-1.debian.tar.xz",
            "c914379e22f7d9092537d3510b16748969ac61a06e503945fb1a37039acc4ec6",
        ),
    ],
    setup_hint: SETUP_HINT,
};

/// U-Boot 2023.01 of Debian bookworm (with its security updates).
pub const UBOOT: SourcePackage = SourcePackage {
    name: "u-boot",
    version: "2023.01+dfsg-2+deb12u3",
    files: &[
        (
            "u-boot_2023.01+dfsg-2+deb12u3.dsc",
            "baf9a1492456920ff66b00fdd19ce8c588261bc2698b4875c9f5fdcfb1332aae",
        ),
        (
            "u-boot_2023.01+dfsg.orig.tar.xz",
            "e75da6f089d063aaef39a1c17f1631791d87700662624e18de2121fa39a1ed44",
        ),
        (
            "u-boot_2023.01+dfsg-2+deb12u3.debian.tar.xz",
            "f9d96a5095d542d8732eccdabcd1d1e7eaaa832311ce395f78b8ead1fad9845e",
        ),
    ],
    setup_hint: SETUP_HINT,
};

/// Debian's cross compiler prefix.
pub const CROSS_COMPILE: &str = "aarch64-linux-gnu-";
/// TF-A's platform.
pub const TFA_PLAT: &str = "imx8mp";
/// U-Boot's board configuration.
pub const UBOOT_DEFCONFIG: &str = "imx8mp_evk_defconfig";
/// Build timestamp of both (reproducible builds: the same inputs give the same bytes):
/// 2023-01-10T00:00:00Z, U-Boot 2023.01's release.
pub const SOURCE_DATE_EPOCH: &str = "1673308800";
/// TF-A's build variables (the measured flags: GCC 12 needs both).
pub const TFA_ENV: &[(&str, &str)] = &[
    ("CFLAGS", "--param=min-pagesize=0"),
    ("TF_LDFLAGS", "--no-warn-rwx-segments"),
    ("LDFLAGS", ""),
];
/// How to install what the build needs.
pub const SETUP_HINT: &str = "run .ci/setup (as root): it adds a deb-src line for bookworm and \
    installs gcc-aarch64-linux-gnu, dpkg-dev and U-Boot's build dependencies";

/// The firmware files the chain needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Firmware {
    /// TF-A BL31, flat binary for 0x970000.
    pub bl31: PathBuf,
    /// U-Boot proper without its device tree, flat binary for 0x40200000.
    pub uboot_nodtb: PathBuf,
    /// U-Boot's ELF (for `_end`, where its device tree goes).
    pub uboot_elf: PathBuf,
    /// U-Boot's control device tree (`dts/dt.dtb`).
    pub uboot_dtb: PathBuf,
    /// U-Boot's `mkimage` (host tool, for the boot script).
    pub mkimage: PathBuf,
}

/// `target/thirdparty`.
pub fn thirdparty_dir() -> PathBuf {
    workspace_root().join("target").join("thirdparty")
}

/// `patches/<package>` of the repository.
pub fn patches_dir(package: &str) -> PathBuf {
    workspace_root().join("patches").join(package)
}

/// SHA-256 of `data`, lower-case hex.
pub fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether `tool` is on `PATH`.
pub(crate) fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Checks the host tools of the build are installed.
pub fn check_tools() -> Result<()> {
    let tools = [
        format!("{CROSS_COMPILE}gcc"),
        "apt-get".into(),
        "dpkg-source".into(),
        "patch".into(),
        "make".into(),
        "bison".into(),
        "flex".into(),
        "swig".into(),
    ];
    let missing: Vec<&str> = tools
        .iter()
        .map(String::as_str)
        .filter(|t| !have(t))
        .collect();
    if !missing.is_empty() {
        bail!(
            "the real-chain firmware build needs {}: {SETUP_HINT}",
            missing.join(", ")
        );
    }
    Ok(())
}

/// Which files of `pkg` in `dir` are missing or differ from the pinned hashes (with what was
/// found).
pub fn verify_sources(pkg: &SourcePackage, dir: &Path) -> Vec<String> {
    pkg.files
        .iter()
        .filter_map(|(file, want)| match std::fs::read(dir.join(file)) {
            Err(_) => Some(format!("{file}: missing")),
            Ok(data) => {
                let got = sha256_hex(&data);
                (got != *want).then(|| format!("{file}: SHA-256 {got}, expected {want}"))
            }
        })
        .collect()
}

/// Downloads `pkg`'s source files into `dir` unless they are there with the pinned hashes;
/// checks the hashes after the download.
pub fn fetch_sources(pkg: &SourcePackage, dir: &Path, log: &mut dyn FnMut(&str)) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if verify_sources(pkg, dir).is_empty() {
        return Ok(());
    }
    log(&format!(
        "downloading the source package {}={}",
        pkg.name, pkg.version
    ));
    for (file, _) in pkg.files {
        let _ = std::fs::remove_file(dir.join(file));
    }
    let out = Command::new("apt-get")
        .args(["source", "--download-only", "-qq"])
        .arg(format!("{}={}", pkg.name, pkg.version))
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| "running apt-get source")?;
    let bad = verify_sources(pkg, dir);
    if bad.is_empty() {
        // apt-get also fails when a file we do not pin is not served (QEMU's backport: only
        // its upstream tarball is); the pinned files are what counts.
        return Ok(());
    }
    if !out.status.success() {
        bail!(
            "apt-get source {}={} failed ({}): {}; {}",
            pkg.name,
            pkg.version,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            pkg.setup_hint
        );
    }
    bail!(
        "the source package {}={} is not the expected one: {}",
        pkg.name,
        pkg.version,
        bad.join("; ")
    )
}

/// The patch files of `package` (`patches/<package>/*.patch`), in name order.
pub fn patch_files(package: &str) -> Result<Vec<PathBuf>> {
    let dir = patches_dir(package);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "patch"))
        .collect();
    v.sort();
    Ok(v)
}

fn compiler_version() -> Result<String> {
    let out = Command::new(format!("{CROSS_COMPILE}gcc"))
        .arg("--version")
        .output()
        .with_context(|| format!("running {CROSS_COMPILE}gcc: {SETUP_HINT}"))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .to_string())
}

/// The cache key of a package build: every input's bytes or text, the build's flags and the
/// versions of the tools that build it (`toolchain`).
pub(crate) fn build_key(
    pkg: &SourcePackage,
    inputs: &[PathBuf],
    flags: &str,
    toolchain: &str,
) -> Result<String> {
    let mut h = Sha256::new();
    for (file, hash) in pkg.files {
        h.update(format!("{file} {hash}\n"));
    }
    for p in inputs {
        let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        let name = p.file_name().map(|n| n.to_string_lossy().into_owned());
        h.update(format!(
            "{} {}\n",
            name.unwrap_or_default(),
            sha256_hex(&data)
        ));
    }
    h.update(flags);
    h.update(toolchain);
    Ok(sha256_hex(&h.finalize()))
}

/// Runs `cmd`, its output appended to `log`; a failure is an error with the log's tail.
pub(crate) fn run_logged(mut cmd: Command, log: &Path, what: &str) -> Result<()> {
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    let err = file.try_clone()?;
    let status = cmd
        .stdin(Stdio::null())
        .stdout(file)
        .stderr(err)
        .status()
        .with_context(|| format!("running {what}"))?;
    if !status.success() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        bail!(
            "{what} failed ({status}); last lines of {}:\n{}",
            log.display(),
            lines[lines.len().saturating_sub(25)..].join("\n")
        );
    }
    Ok(())
}

/// A prepared package tree: fresh extraction with our patches, or the cached build.
pub(crate) struct Tree {
    root: PathBuf,
    src: PathBuf,
    build: PathBuf,
    log: PathBuf,
    key: String,
}

impl Tree {
    pub(crate) fn stamp(&self) -> PathBuf {
        self.root.join("stamp")
    }

    /// The stamp's text for `outputs`: the key, then each output's SHA-256 and name.
    fn stamp_text(&self, outputs: &[PathBuf]) -> Option<String> {
        let mut text = format!("{}\n", self.key);
        for o in outputs {
            let data = std::fs::read(o).ok()?;
            let name = o.strip_prefix(&self.root).unwrap_or(o);
            text.push_str(&format!("{} {}\n", sha256_hex(&data), name.display()));
        }
        Some(text)
    }

    /// Whether the stamp names this key and every output is there, unchanged.
    pub(crate) fn cached(&self, outputs: &[PathBuf]) -> bool {
        let Ok(stamp) = std::fs::read_to_string(self.stamp()) else {
            return false;
        };
        self.stamp_text(outputs).is_some_and(|t| t == stamp)
    }

    /// Wipes the tree, extracts the verified sources (Debian's patches applied) and applies
    /// ours.
    fn extract(&self, pkg: &SourcePackage, downloads: &Path, patches: &[PathBuf]) -> Result<()> {
        self.wipe()?;
        let mut x = Command::new("dpkg-source");
        x.arg("-x")
            .arg(downloads.join(pkg.files[0].0))
            .arg(&self.src);
        run_logged(x, &self.log, &format!("dpkg-source -x of {}", pkg.name))?;
        self.patch(patches)
    }

    /// Removes the whole tree and creates an empty build directory.
    pub(crate) fn wipe(&self) -> Result<()> {
        if self.root.exists() {
            std::fs::remove_dir_all(&self.root)
                .with_context(|| format!("removing {}", self.root.display()))?;
        }
        std::fs::create_dir_all(&self.build)
            .with_context(|| format!("creating {}", self.build.display()))
    }

    /// Applies `patches` to the extracted sources, in order.
    pub(crate) fn patch(&self, patches: &[PathBuf]) -> Result<()> {
        for p in patches {
            let mut c = Command::new("patch");
            c.args(["-p1", "--forward", "--batch", "-i"])
                .arg(p)
                .current_dir(&self.src);
            run_logged(c, &self.log, &format!("applying {}", p.display()))?;
        }
        Ok(())
    }

    pub(crate) fn done(&self, outputs: &[PathBuf]) -> Result<()> {
        let Some(text) = self.stamp_text(outputs) else {
            bail!("an output of {} is missing", self.root.display());
        };
        std::fs::write(self.stamp(), text)
            .with_context(|| format!("writing {}", self.stamp().display()))
    }
}

pub(crate) fn tree(pkg: &SourcePackage, key: String) -> Tree {
    let root = thirdparty_dir().join(pkg.name);
    Tree {
        src: root.join("src"),
        build: root.join("build"),
        log: root.join("build.log"),
        root,
        key,
    }
}

pub(crate) fn jobs() -> String {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .to_string()
}

/// Builds TF-A BL31 (cached); returns `bl31.bin`.
pub fn build_bl31(log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let downloads = thirdparty_dir().join("downloads");
    fetch_sources(&TFA, &downloads, log)?;
    let patches = patch_files(TFA.name)?;
    let flags = format!(
        "PLAT={TFA_PLAT} bl31 BUILD_STRING={} {TFA_ENV:?} SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}",
        TFA.version
    );
    let t = tree(
        &TFA,
        build_key(&TFA, &patches, &flags, &compiler_version()?)?,
    );
    let bl31 = t.build.join(TFA_PLAT).join("release").join("bl31.bin");
    if t.cached(std::slice::from_ref(&bl31)) {
        return Ok(bl31);
    }
    log(&format!(
        "building TF-A BL31 ({} {}, PLAT={TFA_PLAT}, {} patch(es))",
        TFA.name,
        TFA.version,
        patches.len()
    ));
    t.extract(&TFA, &downloads, &patches)?;
    let mut make = Command::new("make");
    make.current_dir(&t.src)
        .arg(format!("-j{}", jobs()))
        .arg(format!("CROSS_COMPILE={CROSS_COMPILE}"))
        .arg(format!("PLAT={TFA_PLAT}"))
        .arg(format!("BUILD_BASE={}", t.build.display()))
        // TF-A would take `git describe` of the enclosing repository (ours).
        .arg(format!("BUILD_STRING={}", TFA.version))
        .arg("bl31")
        .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
    for (k, v) in TFA_ENV {
        make.env(k, v);
    }
    run_logged(make, &t.log, "the TF-A build")?;
    if !bl31.is_file() {
        bail!("the TF-A build made no {}", bl31.display());
    }
    t.done(std::slice::from_ref(&bl31))?;
    Ok(bl31)
}

/// The lines of a Kconfig fragment that set something (comments and blanks dropped).
pub fn config_lines(fragment: &str) -> Vec<&str> {
    fragment
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// Builds U-Boot proper (cached).
pub fn build_uboot(log: &mut dyn FnMut(&str)) -> Result<Firmware> {
    let downloads = thirdparty_dir().join("downloads");
    fetch_sources(&UBOOT, &downloads, log)?;
    let mut inputs = patch_files(UBOOT.name)?;
    let patches = inputs.clone();
    let fragment_path = patches_dir(UBOOT.name).join("qemu.config");
    inputs.push(fragment_path.clone());
    let fragment = std::fs::read_to_string(&fragment_path)
        .with_context(|| format!("reading {}", fragment_path.display()))?;
    let flags = format!("{UBOOT_DEFCONFIG} u-boot.bin SOURCE_DATE_EPOCH={SOURCE_DATE_EPOCH}");
    let t = tree(
        &UBOOT,
        build_key(&UBOOT, &inputs, &flags, &compiler_version()?)?,
    );
    let fw = Firmware {
        bl31: PathBuf::new(),
        uboot_nodtb: t.build.join("u-boot-nodtb.bin"),
        uboot_elf: t.build.join("u-boot"),
        uboot_dtb: t.build.join("dts").join("dt.dtb"),
        mkimage: t.build.join("tools").join("mkimage"),
    };
    let outputs = [
        fw.uboot_nodtb.clone(),
        fw.uboot_elf.clone(),
        fw.uboot_dtb.clone(),
        fw.mkimage.clone(),
    ];
    if t.cached(&outputs) {
        return Ok(fw);
    }
    log(&format!(
        "building U-Boot proper ({} {}, {UBOOT_DEFCONFIG}, {} patch(es) + qemu.config; several minutes)",
        UBOOT.name,
        UBOOT.version,
        patches.len()
    ));
    t.extract(&UBOOT, &downloads, &patches)?;
    let make = |args: &[&str]| {
        let mut m = Command::new("make");
        m.current_dir(&t.src)
            .arg(format!("O={}", t.build.display()))
            .arg(format!("CROSS_COMPILE={CROSS_COMPILE}"))
            .args(args)
            .env("SOURCE_DATE_EPOCH", SOURCE_DATE_EPOCH);
        m
    };
    run_logged(make(&[UBOOT_DEFCONFIG]), &t.log, "U-Boot defconfig")?;
    let config = t.build.join(".config");
    let mut text = std::fs::read_to_string(&config)
        .with_context(|| format!("reading {}", config.display()))?;
    text.push_str(&fragment);
    std::fs::write(&config, text)?;
    run_logged(make(&["olddefconfig"]), &t.log, "U-Boot olddefconfig")?;
    let merged = std::fs::read_to_string(&config)?;
    for line in config_lines(&fragment) {
        if !merged.lines().any(|l| l.trim() == line) {
            bail!(
                "U-Boot's configuration did not take `{line}` from {}",
                fragment_path.display()
            );
        }
    }
    let j = format!("-j{}", jobs());
    run_logged(make(&[&j, "u-boot.bin"]), &t.log, "the U-Boot build")?;
    for o in &outputs {
        if !o.is_file() {
            bail!("the U-Boot build made no {}", o.display());
        }
    }
    t.done(&outputs)?;
    Ok(fw)
}

/// Builds both (cached): BL31, then U-Boot.
pub fn build(log: &mut dyn FnMut(&str)) -> Result<Firmware> {
    check_tools()?;
    let bl31 = build_bl31(log)?;
    let fw = build_uboot(log)?;
    Ok(Firmware { bl31, ..fw })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_checked_by_hash() {
        let dir = tempfile::tempdir().unwrap();
        let bad = verify_sources(&TFA, dir.path());
        assert_eq!(bad.len(), 3);
        assert!(bad[0].contains("missing"));
        std::fs::write(dir.path().join(TFA.files[0].0), b"not the dsc").unwrap();
        let bad = verify_sources(&TFA, dir.path());
        assert!(bad[0].contains("SHA-256") && bad[0].contains(TFA.files[0].1));
    }

    #[test]
    fn every_patch_hunk_says_which_qemu_gap_it_bridges() {
        for pkg in [TFA.name, UBOOT.name, qemu::QEMU.name] {
            let files = patch_files(pkg).unwrap();
            assert!(!files.is_empty(), "{pkg} has no patches");
            for f in files {
                let text = std::fs::read_to_string(&f).unwrap();
                let hunks: Vec<&str> = text.split("\n@@ ").skip(1).collect();
                assert!(!hunks.is_empty(), "{}: no hunk", f.display());
                for h in hunks {
                    assert!(
                        h.lines().any(|l| l.starts_with('+') && l.contains("QEMU")),
                        "{}: a hunk without a `QEMU` comment:\n{h}",
                        f.display()
                    );
                }
            }
        }
        let frag = std::fs::read_to_string(patches_dir(UBOOT.name).join("qemu.config")).unwrap();
        let lines: Vec<&str> = frag.lines().collect();
        for (i, l) in lines.iter().enumerate() {
            if l.starts_with("CONFIG_") {
                assert!(
                    i > 0 && lines[i - 1].starts_with('#'),
                    "qemu.config: `{l}` has no comment above it"
                );
            }
        }
    }

    #[test]
    fn cache_needs_the_same_key_and_unchanged_outputs() {
        let dir = tempfile::tempdir().unwrap();
        let t = |key: &str| Tree {
            root: dir.path().to_path_buf(),
            src: dir.path().join("src"),
            build: dir.path().join("build"),
            log: dir.path().join("build.log"),
            key: key.into(),
        };
        let out = dir.path().join("bl31.bin");
        let outputs = [out.clone()];
        assert!(!t("k1").cached(&outputs), "no stamp yet");
        assert!(t("k1").done(&outputs).is_err(), "no output yet");
        std::fs::write(&out, b"firmware").unwrap();
        t("k1").done(&outputs).unwrap();
        assert!(t("k1").cached(&outputs));
        assert!(!t("k2").cached(&outputs), "another key (a patch changed)");
        std::fs::write(&out, b"firmwarE").unwrap();
        assert!(!t("k1").cached(&outputs), "an output changed");
        std::fs::remove_file(&out).unwrap();
        assert!(!t("k1").cached(&outputs), "an output is missing");
    }

    #[test]
    fn config_fragment_lines() {
        assert_eq!(
            config_lines("# c\n\nCONFIG_A=1\n  CONFIG_B=y \n"),
            ["CONFIG_A=1", "CONFIG_B=y"]
        );
    }
}
