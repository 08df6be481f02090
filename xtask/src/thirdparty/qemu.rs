//! Our QEMU (issue 14): QEMU 10.0.2 built from Debian's source package for `aarch64-softmmu`
//! alone, with the fewest features that run every test, and our patches from `patches/qemu/`
//! (patches/README.md). Every QEMU run of the tests, the demo and the end-to-end scenarios uses
//! this one binary ([`crate::qemu::qemu_binary`]).
//!
//! | step | what |
//! |---|---|
//! | download | `apt-get source --download-only qemu=VERSION` (bookworm-backports `deb-src`, `.ci/setup`): only the upstream tarball is served, and its SHA-256 is checked |
//! | extract | `tar` into `target/thirdparty/qemu/src` (Debian's own patches are in the `.debian.tar.xz` that is not served: this is upstream 10.0.2 without its firmware blobs) |
//! | patch | `patch -p1 --forward` with each `patches/qemu/*.patch`, in name order |
//! | build | [`CONFIGURE`] then `ninja qemu-system-aarch64` |
//! | cache | `target/thirdparty/qemu/stamp`: the SHA-256 of every input (tarball, patches, configure flags, host compiler and meson versions) and of the binary |

use std::path::PathBuf;
use std::process::Command;

use super::{SourcePackage, build_key, fetch_sources, have, jobs, patch_files, run_logged, tree};
use crate::{Context, Result, bail};

/// How to install what the QEMU build needs.
pub const QEMU_SETUP_HINT: &str = "run .ci/setup (as root): it adds a deb-src line for \
    bookworm-backports and installs QEMU's build dependencies (ninja-build, meson and \
    python3-pycotap from bookworm-backports, libglib2.0-dev, libfdt-dev, pkg-config)";

/// QEMU 10.0.2 of bookworm-backports; only the upstream tarball is served for it.
pub const QEMU: SourcePackage = SourcePackage {
    name: "qemu",
    version: "1:10.0.2+ds-2+deb13u1~bpo12+1",
    files: &[(
        "qemu_10.0.2+ds.orig.tar.xz",
        "0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1",
    )],
    setup_hint: QEMU_SETUP_HINT,
};

/// The directory the tarball unpacks to.
const TARBALL_DIR: &str = "qemu-10.0.2";

/// `configure`'s arguments: one target, no optional feature (no display, audio, network
/// back-end, tools or docs), the devices of `patches/qemu/0004` only, the system libfdt, and
/// Debian's Python, which has Debian's meson (the `+ds` tarball ships no meson wheel).
pub const CONFIGURE: &[&str] = &[
    "--python=/usr/bin/python3",
    "--target-list=aarch64-softmmu",
    "--without-default-features",
    "--without-default-devices",
    "--with-devices-aarch64=imx8mp-evk-only",
    "--enable-tcg",
    "--enable-fdt=system",
    "--disable-docs",
    "--disable-install-blobs",
    "--disable-werror",
];

/// The binary, in the cached build tree.
pub fn binary() -> PathBuf {
    tree(&QEMU, String::new()).build.join("qemu-system-aarch64")
}

/// First line of `tool --version`, or "" when it does not run.
fn version_of(tool: &str) -> String {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .unwrap_or("")
                .to_string()
        })
        .unwrap_or_default()
}

/// Checks the host tools of the build.
pub fn check_tools() -> Result<()> {
    let missing: Vec<&str> = [
        "cc",
        "ninja",
        "meson",
        "pkg-config",
        "tar",
        "patch",
        "apt-get",
    ]
    .into_iter()
    .filter(|t| !have(t))
    .collect();
    if !missing.is_empty() {
        bail!(
            "building QEMU needs {}: {QEMU_SETUP_HINT}",
            missing.join(", ")
        );
    }
    if !std::path::Path::new("/usr/bin/python3").is_file() {
        bail!("building QEMU needs /usr/bin/python3: {QEMU_SETUP_HINT}");
    }
    Ok(())
}

/// Builds our QEMU unless the cached build matches every input; returns the binary.
pub fn build(log: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let downloads = super::thirdparty_dir().join("downloads");
    let patches = patch_files(QEMU.name)?;
    let toolchain = format!("{}{}", version_of("cc"), version_of("meson"));
    let key = build_key(&QEMU, &patches, &CONFIGURE.join(" "), &toolchain)?;
    let t = tree(&QEMU, key);
    let bin = t.build.join("qemu-system-aarch64");
    if t.cached(std::slice::from_ref(&bin)) {
        return Ok(bin);
    }
    check_tools()?;
    fetch_sources(&QEMU, &downloads, log)?;
    log(&format!(
        "building QEMU ({} {}, aarch64-softmmu, imx8mp-evk only, {} patch(es); a few minutes)",
        QEMU.name,
        QEMU.version,
        patches.len()
    ));
    let started = std::time::Instant::now();
    t.wipe()?;
    let mut x = Command::new("tar");
    x.arg("-xf")
        .arg(downloads.join(QEMU.files[0].0))
        .arg("-C")
        .arg(&t.root);
    run_logged(x, &t.log, "unpacking the QEMU tarball")?;
    std::fs::rename(t.root.join(TARBALL_DIR), &t.src)
        .with_context(|| format!("renaming {TARBALL_DIR} to {}", t.src.display()))?;
    t.patch(&patches)?;
    let mut configure = Command::new(t.src.join("configure"));
    configure.args(CONFIGURE).current_dir(&t.build);
    run_logged(configure, &t.log, "QEMU's configure")?;
    let mut ninja = Command::new("ninja");
    ninja
        .arg(format!("-j{}", jobs()))
        .arg("qemu-system-aarch64")
        .current_dir(&t.build);
    run_logged(ninja, &t.log, "the QEMU build")?;
    if !bin.is_file() {
        bail!("the QEMU build made no {}", bin.display());
    }
    t.done(std::slice::from_ref(&bin))?;
    log(&format!(
        "built {} in {:.0} s",
        bin.display(),
        started.elapsed().as_secs_f64()
    ));
    Ok(bin)
}

/// Builds our QEMU once per process (under a file lock, so parallel test processes wait for
/// one build) unless it is cached; progress goes to stderr. Returns the binary.
pub fn ensure() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let dir = super::thirdparty_dir();
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            let lock_path = dir.join("qemu.lock");
            let lock = std::fs::File::create(&lock_path)
                .map_err(|e| format!("creating {}: {e}", lock_path.display()))?;
            lock.lock()
                .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
            build(&mut |s| eprintln!("qemu      {s}")).map_err(|e| e.to_string())
        })
        .clone()
        .map_err(crate::Error::msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configuration_names_the_patched_device_list() {
        let dev =
            super::super::patches_dir(QEMU.name).join("0004-qemu-devices-imx8mp-evk-only.patch");
        let text = std::fs::read_to_string(dev).unwrap();
        assert!(text.contains("+++ b/configs/devices/aarch64-softmmu/imx8mp-evk-only.mak"));
        assert!(CONFIGURE.contains(&"--with-devices-aarch64=imx8mp-evk-only"));
        assert!(
            text.contains("+CONFIG_FSL_IMX8MP_EVK=y") && text.contains("+CONFIG_GENERIC_LOADER=y")
        );
    }

    #[test]
    fn the_binary_lives_in_the_cached_tree() {
        let b = binary();
        assert!(
            b.ends_with("thirdparty/qemu/build/qemu-system-aarch64"),
            "{}",
            b.display()
        );
    }
}
