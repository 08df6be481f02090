//! The Linux side of the end-to-end runs (issue 6): Debian's arm64 6.12 kernel, the EVK device
//! tree patched for QEMU, the SD-card modules, `busybox-static`, `ubootctl` built static for
//! `aarch64-unknown-linux-musl`, and a busybox initramfs that runs a caller's script on the SD
//! card. Facts: docs/qemu-imx8mp.md §10.
//!
//! | step | function | what |
//! |---|---|---|
//! | download + cache | [`fetch`] | `apt-get download` of the kernel and busybox (arm64), `dpkg-deb -x`, into `target/e2e-cache/` with a manifest; reused when every file is there |
//! | device tree | [`patch_dtb`] | `dtc -I dtb -O dts`, `cpu-idle-states` lines removed and USDHC2 made `non-removable` ([`patch_dts`]), `dtc -O dtb` (`device-tree-compiler` installed by [`ensure_dtc`] when missing) |
//! | ubootctl | [`build_ubootctl`] | `cargo build --release -p ubootctl --target aarch64-unknown-linux-musl`, linked by `rust-lld` (`.cargo/config.toml`) with the target's self-contained musl CRT: no cross C toolchain |
//! | initramfs | [`build_initramfs`] | newc cpio written here, gzipped with `gzip`; `/init` from [`init_script`] |
//! | chain DT | [`chain_dtb`] | the same DTB plus `/chosen` bootargs + initrd range and `/memory` = `-m`, for a bootloader-started kernel (no QEMU `-kernel`) |
//! | run | [`run_linux`] | QEMU with `-kernel`/`-dtb`/`-initrd` (QEMU provides PSCI), SD on `-drive if=sd,bus=1` |
//! | smoke | [`smoke`] | cell planted at 0x901000, `ubootctl status --json` in Linux: slot 1, both copies authentic |
//!
//! The guest's `/init` prints fixed marker lines ([`MARK_MMC`], [`MARK_OUT_BEGIN`],
//! [`MARK_OUT_END`], [`MARK_DONE`]) so that a harness can cut the script's output out of the
//! UART log ([`script_output`]) and then powers the machine off (`poweroff -f` ends QEMU).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use crate::qemu::{CELL_ADDR, check_qemu, machine_args, qemu_binary};
use crate::{Context, Error, Result, bail, workspace_root};

/// Directory name of the download cache under `target/`.
pub const CACHE_DIR_NAME: &str = "e2e-cache";
/// The cache manifest's file name.
pub const MANIFEST: &str = "manifest.txt";
/// Format of the manifest; bump it when the cached files change meaning.
pub const MANIFEST_FORMAT: &str = "2";
/// First choice for the kernel: the backports metapackage (its dependency is the ABI package).
pub const KERNEL_META_BACKPORTS: &str = "linux-image-arm64:arm64/bookworm-backports";
/// Second choice: the 6.12 metapackage of bookworm-security.
pub const KERNEL_META_612: &str = "linux-image-6.12-arm64:arm64";
/// Every kernel package used must start with this (the 6.12 line).
pub const KERNEL_PREFIX: &str = "linux-image-6.12.";
/// Environment variable naming the exact kernel package to use instead (e.g.
/// `linux-image-6.12.95+deb12-arm64`).
pub const KERNEL_PACKAGE_ENV: &str = "XTASK_E2E_KERNEL_PACKAGE";
/// The busybox package.
pub const BUSYBOX_PACKAGE: &str = "busybox-static:arm64";
/// The EVK device tree inside the kernel package's `/usr/lib/linux-image-<release>/`.
pub const EVK_DTB: &str = "freescale/imx8mp-evk.dtb";
/// SD-card modules in load order (docs/qemu-imx8mp.md §10), then the watchdog.
pub const SD_MODULES: &[&str] = &[
    "sdhci",
    "cqhci",
    "sdhci-pltfm",
    "sdhci-esdhc-imx",
    "imx2_wdt",
];
/// The kernel command line: console on UART2, initramfs `/init`.
pub const CMDLINE: &str = "console=ttymxc1,115200 earlycon rdinit=/init";
/// The Rust target of the Linux userspace binary.
pub const MUSL_TARGET: &str = "aarch64-unknown-linux-musl";
/// The SD bus of the shim's contract (`-drive if=sd,bus=1` = USDHC2).
pub const SD_BUS: u32 = 1;

/// `/init` prints this, then the SD device it found (`E2E-MMC: /dev/mmcblk1`).
pub const MARK_MMC: &str = "E2E-MMC:";
/// `/init` prints this line before the caller's script runs.
pub const MARK_OUT_BEGIN: &str = "E2E-OUT-BEGIN";
/// `/init` prints this, then `rc=N` (the script's exit status), after it.
pub const MARK_OUT_END: &str = "E2E-OUT-END";
/// `/init` prints this last, right before `poweroff -f`.
pub const MARK_DONE: &str = "E2E-DONE";
/// `/init` prints this (and powers off) when no `/dev/mmcblkN` appeared in time.
pub const MARK_NO_MMC: &str = "E2E-NO-MMC";

/// How to get the Debian tools the cache needs.
pub const APT_HINT: &str = "the e2e downloads need Debian's apt-get, apt-cache, dpkg and \
    dpkg-deb (run as root the first time: `dpkg --add-architecture arm64 && apt-get update`), \
    with bookworm-backports or bookworm-security in the sources (docs/qemu-imx8mp.md §10)";

/// `target/e2e-cache` of the workspace.
pub fn cache_dir() -> PathBuf {
    workspace_root().join("target").join(CACHE_DIR_NAME)
}

/// The cached Linux pieces (all paths inside the cache directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxArtifacts {
    /// The cache directory.
    pub dir: PathBuf,
    /// The uncompressed arm64 `Image` (`vmlinuz-<release>` of the package).
    pub kernel: PathBuf,
    /// The EVK device tree patched for QEMU ([`patch_dtb`], regenerated by every [`fetch`]).
    pub dtb: PathBuf,
    /// The EVK device tree as Debian ships it (cached).
    pub original_dtb: PathBuf,
    /// Decompressed modules, in [`SD_MODULES`] order.
    pub modules: Vec<PathBuf>,
    /// The static arm64 busybox.
    pub busybox: PathBuf,
    /// The kernel package (`linux-image-6.12.95+deb12-arm64`).
    pub kernel_package: String,
    /// Its Debian version (`6.12.95-1~bpo12+1`).
    pub kernel_version: String,
    /// The kernel release (`6.12.95+deb12-arm64`).
    pub kernel_release: String,
    /// busybox-static's Debian version.
    pub busybox_version: String,
}

impl LinuxArtifacts {
    fn files(dir: &Path) -> (PathBuf, PathBuf, PathBuf, Vec<PathBuf>, PathBuf) {
        (
            dir.join("Image"),
            dir.join("imx8mp-evk-qemu.dtb"),
            dir.join("imx8mp-evk.dtb"),
            SD_MODULES
                .iter()
                .map(|m| dir.join("modules").join(format!("{m}.ko")))
                .collect(),
            dir.join("busybox"),
        )
    }

    fn all_files(&self) -> Vec<&Path> {
        let mut v: Vec<&Path> = vec![&self.kernel, &self.original_dtb, &self.busybox];
        v.extend(self.modules.iter().map(PathBuf::as_path));
        v
    }

    fn manifest_text(&self) -> String {
        format!(
            "format={MANIFEST_FORMAT}\nkernel_package={}\nkernel_version={}\nkernel_release={}\nbusybox_version={}\n",
            self.kernel_package, self.kernel_version, self.kernel_release, self.busybox_version
        )
    }

    /// The artifacts recorded in `dir`'s manifest, if it is of this format and every file
    /// exists.
    pub fn from_cache(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join(MANIFEST)).ok()?;
        let kv: BTreeMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        if kv.get("format") != Some(&MANIFEST_FORMAT) {
            return None;
        }
        let (kernel, dtb, original_dtb, modules, busybox) = Self::files(dir);
        let a = LinuxArtifacts {
            dir: dir.to_path_buf(),
            kernel,
            dtb,
            original_dtb,
            modules,
            busybox,
            kernel_package: kv.get("kernel_package")?.to_string(),
            kernel_version: kv.get("kernel_version")?.to_string(),
            kernel_release: kv.get("kernel_release")?.to_string(),
            busybox_version: kv.get("busybox_version")?.to_string(),
        };
        a.all_files().iter().all(|p| p.is_file()).then_some(a)
    }
}

/// Runs `cmd`, returns its stdout; a missing program or a failure is an error naming the
/// command, its stderr and `hint`.
fn output(mut cmd: Command, hint: &str) -> Result<String> {
    let shown = format!("{cmd:?}");
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::msg(format!("cannot run {shown}: {e}; {hint}")))?;
    if !out.status.success() {
        bail!(
            "{shown} failed ({}): {}; {hint}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The first `Depends:` of `apt-cache depends META` that is a 6.12 kernel ABI package.
fn kernel_from_meta(meta: &str) -> Option<String> {
    let mut c = Command::new("apt-cache");
    c.args(["depends", meta]);
    let text = output(c, APT_HINT).ok()?;
    parse_kernel_dependency(&text)
}

/// Reads `Depends: linux-image-6.12.95+deb12-arm64:arm64` out of `apt-cache depends` output.
pub fn parse_kernel_dependency(text: &str) -> Option<String> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Depends:"))
        .map(|d| d.trim().trim_end_matches(":arm64").to_string())
        .find(|d| d.starts_with(KERNEL_PREFIX) && d.ends_with("-arm64"))
}

/// The kernel ABI package to download: [`KERNEL_PACKAGE_ENV`] if set, else the dependency of
/// [`KERNEL_META_BACKPORTS`] if it is 6.12, else that of [`KERNEL_META_612`].
pub fn resolve_kernel_package() -> Result<String> {
    if let Ok(p) = std::env::var(KERNEL_PACKAGE_ENV)
        && !p.is_empty()
    {
        return Ok(p.trim_end_matches(":arm64").to_string());
    }
    for meta in [KERNEL_META_BACKPORTS, KERNEL_META_612] {
        if let Some(p) = kernel_from_meta(meta) {
            return Ok(p);
        }
    }
    bail!(
        "no Debian arm64 6.12 kernel found: neither `apt-cache depends {KERNEL_META_BACKPORTS}` \
         nor `apt-cache depends {KERNEL_META_612}` names a {KERNEL_PREFIX}* package (list \
         candidates with `apt list 'linux-image-6.12*-arm64'` and set {KERNEL_PACKAGE_ENV}); {APT_HINT}"
    )
}

/// Makes sure dpkg knows the arm64 architecture and the package lists are fresh (root only;
/// without root the lists are used as they are).
fn prepare_apt(log: &mut dyn FnMut(&str)) -> Result<()> {
    let mut c = Command::new("dpkg");
    c.arg("--print-foreign-architectures");
    let archs = output(c, APT_HINT)?;
    let root = is_root();
    if !archs.split_whitespace().any(|a| a == "arm64") {
        if !root {
            bail!("dpkg has no arm64 architecture and this is not root; {APT_HINT}");
        }
        log("dpkg --add-architecture arm64");
        let mut c = Command::new("dpkg");
        c.args(["--add-architecture", "arm64"]);
        output(c, APT_HINT)?;
    }
    if root {
        log("apt-get update");
        let mut c = Command::new("apt-get");
        c.args(["update", "-q"]);
        output(c, APT_HINT)?;
    } else {
        log("not root: using the current apt lists (no apt-get update)");
    }
    Ok(())
}

/// Decompresses `src` (`.ko.xz`) into `dst` with the `xz` command.
fn unxz(src: &Path, dst: &Path) -> Result<()> {
    let mut c = Command::new("xz");
    c.arg("-dc").arg(src);
    let out = c.stdin(Stdio::null()).output().map_err(|e| {
        Error::msg(format!(
            "cannot run xz: {e}; install it with `apt-get install xz-utils`"
        ))
    })?;
    if !out.status.success() {
        bail!(
            "xz -dc {} failed: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    std::fs::write(dst, out.stdout).with_context(|| format!("writing {}", dst.display()))
}

fn find_file(root: &Path, name: &str) -> Option<PathBuf> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).ok()?.flatten() {
            let p = e.path();
            let ft = e.file_type().ok()?;
            if ft.is_dir() {
                stack.push(p);
            } else if e.file_name().to_str() == Some(name) {
                return Some(p);
            }
        }
    }
    None
}

fn deb_field(deb: &Path, field: &str) -> Result<String> {
    let mut c = Command::new("dpkg-deb");
    c.arg("-f").arg(deb).arg(field);
    Ok(output(c, APT_HINT)?.trim().to_string())
}

/// Writes `art.dtb` from `art.original_dtb` ([`patch_dtb`]); done on every [`fetch`], so a
/// change of the patch needs no new download.
fn write_patched_dtb(art: &LinuxArtifacts, log: &mut dyn FnMut(&str)) -> Result<()> {
    ensure_dtc(log)?;
    let original = std::fs::read(&art.original_dtb)
        .with_context(|| format!("reading {}", art.original_dtb.display()))?;
    let (patched, p) = patch_dtb(&original)?;
    std::fs::write(&art.dtb, patched).with_context(|| format!("writing {}", art.dtb.display()))?;
    log(&format!(
        "device tree {}: {} cpu-idle-states line(s) removed, USDHC2 non-removable",
        art.dtb.display(),
        p.idle_states_removed
    ));
    Ok(())
}

/// The cached artifacts in `cache`, downloading and extracting them first if the manifest is
/// missing or a file is gone. `log` gets one line per step.
pub fn fetch(cache: &Path, log: &mut dyn FnMut(&str)) -> Result<LinuxArtifacts> {
    if let Some(a) = LinuxArtifacts::from_cache(cache) {
        log(&format!(
            "cache hit: {} ({} {}), busybox {}",
            cache.display(),
            a.kernel_package,
            a.kernel_version,
            a.busybox_version
        ));
        write_patched_dtb(&a, log)?;
        return Ok(a);
    }
    std::fs::create_dir_all(cache).with_context(|| format!("creating {}", cache.display()))?;
    let _ = std::fs::remove_file(cache.join(MANIFEST));
    prepare_apt(log)?;
    let kernel_package = resolve_kernel_package()?;
    let work = tempfile::Builder::new()
        .prefix("download")
        .tempdir_in(cache)
        .context("temporary download directory")?;
    log(&format!(
        "apt-get download {kernel_package}:arm64 {BUSYBOX_PACKAGE}"
    ));
    let mut c = Command::new("apt-get");
    c.current_dir(work.path())
        .args(["download", "-q"])
        .arg(format!("{kernel_package}:arm64"))
        .arg(BUSYBOX_PACKAGE);
    output(c, APT_HINT)?;
    let debs: Vec<PathBuf> = std::fs::read_dir(work.path())?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    let pick = |prefix: &str| {
        debs.iter()
            .find(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .cloned()
            .ok_or_else(|| Error::msg(format!("apt-get download left no {prefix}*.deb")))
    };
    let kdeb = pick(&format!("{kernel_package}_"))?;
    let bdeb = pick("busybox-static_")?;
    let root = work.path().join("root");
    for deb in [&kdeb, &bdeb] {
        log(&format!("dpkg-deb -x {}", deb.display()));
        let mut c = Command::new("dpkg-deb");
        c.arg("-x").arg(deb).arg(&root);
        output(c, APT_HINT)?;
    }
    let kernel_release = kernel_package
        .strip_prefix("linux-image-")
        .unwrap_or(&kernel_package)
        .to_string();
    let (kernel, dtb, original_dtb, modules, busybox) = LinuxArtifacts::files(cache);
    let a = LinuxArtifacts {
        dir: cache.to_path_buf(),
        kernel,
        dtb,
        original_dtb,
        modules,
        busybox,
        kernel_version: deb_field(&kdeb, "Version")?,
        busybox_version: deb_field(&bdeb, "Version")?,
        kernel_package,
        kernel_release,
    };
    let copy = |from: PathBuf, to: &Path| -> Result<()> {
        std::fs::copy(&from, to)
            .map(|_| ())
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))
    };
    copy(
        root.join("boot")
            .join(format!("vmlinuz-{}", a.kernel_release)),
        &a.kernel,
    )?;
    copy(root.join("bin/busybox"), &a.busybox)?;
    let dtb_src = root
        .join("usr/lib")
        .join(format!("linux-image-{}", a.kernel_release))
        .join(EVK_DTB);
    copy(dtb_src, &a.original_dtb)?;
    std::fs::create_dir_all(cache.join("modules"))?;
    let mod_root = root.join("lib/modules").join(&a.kernel_release);
    for (name, dst) in SD_MODULES.iter().zip(&a.modules) {
        let src = find_file(&mod_root, &format!("{name}.ko.xz"))
            .ok_or_else(|| Error::msg(format!("{name}.ko.xz is not in {}", mod_root.display())))?;
        unxz(&src, dst)?;
    }
    drop(work);
    std::fs::write(cache.join(MANIFEST), a.manifest_text())?;
    write_patched_dtb(&a, log)?;
    log(&format!(
        "cached {} {} and busybox {} in {}",
        a.kernel_package,
        a.kernel_version,
        a.busybox_version,
        cache.display()
    ));
    Ok(a)
}

/// How to get `dtc`.
pub const DTC_HINT: &str =
    "install the device tree compiler: `apt-get install device-tree-compiler`";

/// Makes sure `dtc` runs, installing `device-tree-compiler` with apt-get when it is missing
/// and this is root.
pub fn ensure_dtc(log: &mut dyn FnMut(&str)) -> Result<()> {
    let runs = || {
        Command::new("dtc")
            .arg("--version")
            .stdin(Stdio::null())
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs() {
        return Ok(());
    }
    if !is_root() {
        bail!("dtc is missing and this is not root; {DTC_HINT}");
    }
    log("apt-get install device-tree-compiler");
    let mut c = Command::new("apt-get");
    c.args([
        "install",
        "-y",
        "-q",
        "--no-install-recommends",
        "device-tree-compiler",
    ])
    .env("DEBIAN_FRONTEND", "noninteractive");
    output(c, DTC_HINT)?;
    if !runs() {
        bail!("dtc still does not run after installing it; {DTC_HINT}");
    }
    Ok(())
}

/// Runs `dtc` with `args`, feeding `input`; returns its stdout.
fn dtc(args: &[&str], input: &[u8]) -> Result<Vec<u8>> {
    let mut child = Command::new("dtc")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::msg(format!("cannot run dtc: {e}; {DTC_HINT}")))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let data = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output()?;
    writer
        .join()
        .map_err(|_| Error::msg("dtc writer thread panicked"))??;
    if !out.status.success() {
        bail!(
            "dtc {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

/// The node of USDHC2, the controller of `-drive if=sd,bus=1` (the shim's SD card).
pub const USDHC2_NODE: &str = "mmc@30b50000 {";

/// What [`patch_dts`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DtbPatch {
    /// `cpu-idle-states` lines removed.
    pub idle_states_removed: usize,
    /// Whether the USDHC2 node was found and made `non-removable` (its `cd-gpios` and
    /// `vmmc-supply` removed).
    pub usdhc2_non_removable: bool,
}

/// Patches a device tree source for QEMU's `imx8mp-evk`:
/// - removes the lines naming `cpu-idle-states` (the `sed '/cpu-idle-states/d'` of
///   docs/qemu-imx8mp.md §10; Debian's 6.12.95 DTB has none);
/// - USDHC2 (`mmc@30b50000`, the SD card on `bus=1`): removes `cd-gpios` and `vmmc-supply`
///   and adds `non-removable`. *Measured*: with the EVK's `cd-gpios` (GPIO2_IO12, not wired to
///   QEMU's SD model) Linux never sees the card, and the probe waits ~10 s for the deferred
///   probe timeout; USDHC3 (`bus=2`) is `non-removable` in the EVK tree already.
pub fn patch_dts(dts: &str) -> (String, DtbPatch) {
    let mut patch = DtbPatch::default();
    let mut out = String::with_capacity(dts.len());
    let mut in_usdhc2: Option<usize> = None;
    for line in dts.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t.contains("cpu-idle-states") {
            patch.idle_states_removed += 1;
            continue;
        }
        if let Some(depth) = in_usdhc2 {
            if t.starts_with("cd-gpios") || t.starts_with("vmmc-supply") {
                continue;
            }
            if t == "};" && indent == depth {
                out.push_str(&line[..indent]);
                out.push_str("\tnon-removable;\n");
                patch.usdhc2_non_removable = true;
                in_usdhc2 = None;
            }
        } else if t == USDHC2_NODE {
            in_usdhc2 = Some(indent);
        }
        out.push_str(line);
        out.push('\n');
    }
    (out, patch)
}

/// The EVK device tree for QEMU: `dtc -I dtb -O dts`, [`patch_dts`], `dtc -O dtb` (QEMU's
/// `imx8mp-evk` documentation, docs/qemu-imx8mp.md §10). Needs `dtc` ([`ensure_dtc`]).
/// (`dtoolkit` 0.4 refuses Debian's DTB: "Invalid property name".)
pub fn patch_dtb(dtb: &[u8]) -> Result<(Vec<u8>, DtbPatch)> {
    let dts = dtc(&["-q", "-I", "dtb", "-O", "dts", "-"], dtb)?;
    let (dts, patch) = patch_dts(&String::from_utf8_lossy(&dts));
    if !patch.usdhc2_non_removable {
        bail!("the EVK device tree has no {USDHC2_NODE:?} node to patch");
    }
    Ok((
        dtc(&["-q", "-I", "dts", "-O", "dtb", "-"], dts.as_bytes())?,
        patch,
    ))
}

/// What a boot stage's device tree needs when no QEMU `-kernel` loader fills it in (the
/// shim → stand-in → kernel chain): the command line, the initramfs range and the RAM size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainDt {
    /// `/chosen/bootargs`.
    pub bootargs: String,
    /// Physical start and length of the initramfs (`linux,initrd-start` / `-end`), if any.
    pub initrd: Option<(u64, u64)>,
    /// DRAM bytes from 0x4000_0000 (QEMU's `-m`); replaces the EVK's 6 GiB `/memory` `reg`.
    pub memory: u64,
}

/// Adds [`ChainDt`] to a device tree source (after [`patch_dts`]): `bootargs` and the initrd
/// range into `/chosen`, and `memory@40000000`'s `reg` set to `-m`. QEMU's `-kernel` path
/// does this itself; a bootloader (U-Boot, or the simulation's stand-in) has to. Fails when
/// either node is missing.
pub fn chain_dts(dts: &str, c: &ChainDt) -> Result<String> {
    let cells = |v: u64| format!("0x{:x} 0x{:x}", v >> 32, v & 0xffff_ffff);
    let mut out = String::with_capacity(dts.len() + 256);
    let (mut chosen, mut memory, mut in_memory) = (false, false, false);
    for line in dts.lines() {
        let indent = &line[..line.len() - line.trim_start().len()];
        let t = line.trim();
        if in_memory && t.starts_with("reg = ") {
            out.push_str(&format!(
                "{indent}reg = <{} {}>;\n",
                cells(0x4000_0000),
                cells(c.memory)
            ));
            memory = true;
            continue;
        }
        if t == "};" {
            in_memory = false;
        }
        out.push_str(line);
        out.push('\n');
        if t == "chosen {" && indent == "\t" {
            let bootargs = c.bootargs.replace('\\', "\\\\").replace('"', "\\\"");
            out.push_str(&format!("{indent}\tbootargs = \"{bootargs}\";\n"));
            if let Some((start, len)) = c.initrd {
                out.push_str(&format!(
                    "{indent}\tlinux,initrd-start = <{}>;\n{indent}\tlinux,initrd-end = <{}>;\n",
                    cells(start),
                    cells(start + len)
                ));
            }
            chosen = true;
        } else if t == "memory@40000000 {" {
            in_memory = true;
        }
    }
    if !chosen || !memory {
        bail!("the device tree has no top-level /chosen or memory@40000000 node to fill in");
    }
    Ok(out)
}

/// [`patch_dtb`] then [`chain_dts`]: the DTB a bootloader hands to the kernel in the chain.
pub fn chain_dtb(original_dtb: &[u8], c: &ChainDt) -> Result<Vec<u8>> {
    let dts = dtc(&["-q", "-I", "dtb", "-O", "dts", "-"], original_dtb)?;
    let (dts, patch) = patch_dts(&String::from_utf8_lossy(&dts));
    if !patch.usdhc2_non_removable {
        bail!("the EVK device tree has no {USDHC2_NODE:?} node to patch");
    }
    let dts = chain_dts(&dts, c)?;
    dtc(&["-q", "-I", "dts", "-O", "dtb", "-"], dts.as_bytes())
}

/// Builds `ubootctl` for [`MUSL_TARGET`] (release, static) and returns the binary's path.
/// The workspace's `.cargo/config.toml` links this target with `rust-lld` and the target's
/// self-contained musl CRT objects, so no cross C toolchain is needed.
pub fn build_ubootctl() -> Result<PathBuf> {
    let mut c = crate::firmware::cargo();
    c.args([
        "build",
        "--release",
        "-p",
        "ubootctl",
        "--bin",
        "ubootctl",
        "--target",
        MUSL_TARGET,
    ]);
    let bin = crate::firmware::cargo_build_executable(c, "ubootctl", "the static ubootctl build")
        .map_err(|e| {
            e.context(format_args!(
                "the target needs `rustup target add {MUSL_TARGET}` (rust-toolchain.toml lists \
                 it) and `rust-lld`, which ships with rustup toolchains"
            ))
        })?
        .unwrap_or_else(|| {
            workspace_root()
                .join("target")
                .join(MUSL_TARGET)
                .join("release")
                .join("ubootctl")
        });
    let data = std::fs::read(&bin).with_context(|| format!("reading {}", bin.display()))?;
    check_static_aarch64(&data).with_context(|| bin.display())?;
    Ok(bin)
}

/// Checks an ELF is an aarch64 executable without a program interpreter (statically linked).
pub fn check_static_aarch64(elf: &[u8]) -> Result<()> {
    use object::{Architecture, Object};
    let f = object::File::parse(elf).map_err(|e| Error::msg(format!("not an ELF: {e}")))?;
    if f.architecture() != Architecture::Aarch64 {
        bail!("not an aarch64 binary ({:?})", f.architecture());
    }
    let dynamic = elf.windows(b"ld-musl".len()).any(|w| w == b"ld-musl")
        || elf
            .windows(b"/lib/ld-linux".len())
            .any(|w| w == b"/lib/ld-linux");
    if dynamic {
        bail!("dynamically linked (names a program interpreter)");
    }
    Ok(())
}

/// A newc (`070701`) cpio archive being written, as the kernel's initramfs unpacker reads it.
#[derive(Debug, Default)]
pub struct Cpio {
    out: Vec<u8>,
    ino: u32,
}

impl Cpio {
    /// An empty archive.
    pub fn new() -> Self {
        Cpio::default()
    }

    fn entry(&mut self, name: &str, mode: u32, rdev: (u32, u32), data: &[u8]) {
        let name = name.trim_start_matches('/');
        self.ino += 1;
        let fields = [
            self.ino,
            mode,
            0,
            0,
            if mode & 0o170000 == 0o040000 { 2 } else { 1 },
            0,
            data.len() as u32,
            0,
            0,
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0,
        ];
        self.out.extend_from_slice(b"070701");
        for f in fields {
            self.out.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.out.extend_from_slice(name.as_bytes());
        self.out.push(0);
        self.pad();
        self.out.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.out.len().is_multiple_of(4) {
            self.out.push(0);
        }
    }

    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) -> &mut Self {
        self.entry(name, 0o040755, (0, 0), &[]);
        self
    }

    /// A regular file with permission bits `perm` (e.g. 0o755).
    pub fn file(&mut self, name: &str, perm: u32, data: &[u8]) -> &mut Self {
        self.entry(name, 0o100000 | (perm & 0o7777), (0, 0), data);
        self
    }

    /// A character device node.
    pub fn char_dev(&mut self, name: &str, perm: u32, major: u32, minor: u32) -> &mut Self {
        self.entry(name, 0o020000 | (perm & 0o7777), (major, minor), &[]);
        self
    }

    /// The archive with its `TRAILER!!!` entry.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, (0, 0), &[]);
        self.out
    }
}

/// What the initramfs's `/init` does besides the fixed steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitSpec {
    /// The shell script run after the SD card appeared (`sh /e2e.sh`, environment `E2E_MMC` =
    /// the `/dev/mmcblkN` found). Its output goes between [`MARK_OUT_BEGIN`] and
    /// [`MARK_OUT_END`].
    pub script: String,
    /// Extra files: path in the initramfs, contents (mode 0644).
    pub files: Vec<(String, Vec<u8>)>,
    /// How long `/init` waits for `/dev/mmcblkN`, in tenths of a second.
    pub mmc_wait_ds: u32,
    /// The device `/init` waits for; `None`: the first `/dev/mmcblkN` (with an eMMC attached
    /// too, the SD card's `/dev/mmcblk1` must be named: either may appear first).
    pub mmc_device: Option<String>,
}

impl InitSpec {
    /// A spec running `script`, no extra files, 20 s for the SD card.
    pub fn new(script: impl Into<String>) -> Self {
        InitSpec {
            script: script.into(),
            files: Vec::new(),
            mmc_wait_ds: 200,
            mmc_device: None,
        }
    }
}

/// The `/init` script: busybox applets installed, proc/sys/devtmpfs mounted, the modules
/// (named in order, each with the command line's `module.param=value` words, as modprobe would
/// pass them) loaded, the first `/dev/mmcblkN` waited for, console messages quietened,
/// `/e2e.sh` run between markers, then `poweroff -f`.
pub fn init_script(modules: &[&str], mmc_wait_ds: u32, mmc_device: Option<&str>) -> String {
    let mods = modules.join(" ");
    let devices = mmc_device.unwrap_or("/dev/mmcblk[0-9]");
    format!(
        r#"#!/bin/busybox sh
/bin/busybox mkdir -p /sbin /usr/bin /usr/sbin /proc /sys /dev /tmp
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "e2e: init up, $(uname -r)"
for m in {mods}; do
    # As modprobe does: the command line's `module.param=value` words go to insmod.
    args=$(tr ' ' '\n' < /proc/cmdline | sed -n "s/^$(echo $m | tr - _)\.//p")
    insmod /lib/modules/$m.ko $args || echo "e2e: insmod $m failed"
done
mmc=
i=0
while [ $i -lt {mmc_wait_ds} ]; do
    for d in {devices}; do
        if [ -b "$d" ]; then mmc=$d; break 2; fi
    done
    sleep 0.1
    i=$((i+1))
done
if [ -z "$mmc" ]; then
    echo "{MARK_NO_MMC}"
    echo "{MARK_DONE}"
    poweroff -f
fi
echo "{MARK_MMC} $mmc"
dmesg -n 1
export E2E_MMC=$mmc
echo "{MARK_OUT_BEGIN}"
sh /e2e.sh
rc=$?
echo "{MARK_OUT_END} rc=$rc"
echo "{MARK_DONE}"
poweroff -f
"#
    )
}

/// Writes the gzipped initramfs to `out`: busybox, `ubootctl` in `/bin`, the modules in
/// `/lib/modules/NAME.ko`, `/dev/console`, `/init` ([`init_script`]), `/e2e.sh` and the
/// extra files.
pub fn build_initramfs(
    art: &LinuxArtifacts,
    ubootctl: &Path,
    spec: &InitSpec,
    out: &Path,
) -> Result<()> {
    let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let mut c = Cpio::new();
    for d in [
        "bin",
        "sbin",
        "dev",
        "proc",
        "sys",
        "tmp",
        "etc",
        "lib",
        "lib/modules",
        "usr",
    ] {
        c.dir(d);
    }
    c.char_dev("dev/console", 0o600, 5, 1);
    c.file("bin/busybox", 0o755, &read(&art.busybox)?);
    c.file("bin/ubootctl", 0o755, &read(ubootctl)?);
    let mut names = Vec::new();
    for (name, path) in SD_MODULES.iter().zip(&art.modules) {
        c.file(&format!("lib/modules/{name}.ko"), 0o644, &read(path)?);
        names.push(*name);
    }
    c.file(
        "init",
        0o755,
        init_script(&names, spec.mmc_wait_ds, spec.mmc_device.as_deref()).as_bytes(),
    );
    c.file("e2e.sh", 0o755, spec.script.as_bytes());
    for (name, data) in &spec.files {
        c.file(name, 0o644, data);
    }
    let cpio = c.finish();
    let mut child = Command::new("gzip")
        .args(["-6", "-n", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| {
            Error::msg(format!(
                "cannot run gzip: {e}; install it with `apt-get install gzip`"
            ))
        })?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || stdin.write_all(&cpio));
    let mut gz = Vec::new();
    child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_end(&mut gz)?;
    writer
        .join()
        .map_err(|_| Error::msg("gzip writer thread panicked"))??;
    if !child.wait()?.success() {
        bail!("gzip failed");
    }
    std::fs::write(out, gz).with_context(|| format!("writing {}", out.display()))
}

/// A QEMU run of the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxRunConfig {
    /// The QEMU binary.
    pub qemu: PathBuf,
    /// The kernel `Image`.
    pub kernel: PathBuf,
    /// The patched device tree.
    pub dtb: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// The SD image on `-drive if=sd,bus=`[`SD_BUS`] (QEMU writes through to it).
    pub disk: PathBuf,
    /// The kernel command line.
    pub cmdline: String,
    /// `-m`.
    pub memory: String,
    /// Arguments appended at the end (e.g. a `-device loader` planting the cell).
    pub extra_args: Vec<String>,
    /// Echo UART lines live with this prefix.
    pub echo: Option<String>,
    /// Hard limit.
    pub timeout: Duration,
}

impl LinuxRunConfig {
    /// The kernel of `art` with `initrd` and `disk`, [`CMDLINE`], 1 GiB, 120 s.
    pub fn new(art: &LinuxArtifacts, initrd: &Path, disk: &Path) -> Self {
        LinuxRunConfig {
            qemu: qemu_binary(),
            kernel: art.kernel.clone(),
            dtb: art.dtb.clone(),
            initrd: initrd.to_path_buf(),
            disk: disk.to_path_buf(),
            cmdline: CMDLINE.into(),
            memory: "1G".into(),
            extra_args: Vec::new(),
            echo: None,
            timeout: Duration::from_secs(120),
        }
    }

    /// The command-line arguments: [`machine_args`], `-kernel`, `-dtb`, `-initrd`, `-append`,
    /// the SD drive, then the extra arguments.
    pub fn args(&self) -> Vec<String> {
        let p = |path: &Path| path.display().to_string().replace(',', ",,");
        let mut a = machine_args(&self.memory);
        for (opt, val) in [
            ("-kernel", self.kernel.display().to_string()),
            ("-dtb", self.dtb.display().to_string()),
            ("-initrd", self.initrd.display().to_string()),
            ("-append", self.cmdline.clone()),
            (
                "-drive",
                format!("if=sd,bus={SD_BUS},file={},format=raw", p(&self.disk)),
            ),
        ] {
            a.push(opt.into());
            a.push(val);
        }
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// `-device loader` arguments planting `file` at `addr` as raw bytes.
pub fn loader_args(file: &Path, addr: u64) -> Vec<String> {
    vec![
        "-device".into(),
        format!(
            "loader,file={},addr={addr:#x},force-raw=on",
            file.display().to_string().replace(',', ",,")
        ),
    ]
}

/// What a Linux run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinuxOutcome {
    /// QEMU's exit status if it exited on its own (`poweroff -f`: success).
    pub exit_status: Option<ExitStatus>,
    /// UART2, lines joined with `\n`, CRs removed.
    pub uart: String,
    /// QEMU's stderr.
    pub stderr: String,
    /// Whether the timeout expired (QEMU was killed).
    pub timed_out: bool,
    /// Wall time from start to [`MARK_MMC`] (kernel boot, modules, SD card), if seen.
    pub to_mmc: Option<Duration>,
    /// Wall time of the whole run.
    pub wall: Duration,
}

impl LinuxOutcome {
    /// The caller script's output ([`script_output`]).
    pub fn script_output(&self) -> Option<(String, i32)> {
        script_output(&self.uart)
    }

    /// The device `/init` found (`/dev/mmcblk1`).
    pub fn mmc_device(&self) -> Option<String> {
        self.uart
            .lines()
            .find_map(|l| l.split_once(MARK_MMC).map(|(_, d)| d.trim().to_string()))
    }
}

/// The lines between [`MARK_OUT_BEGIN`] and [`MARK_OUT_END`] and the `rc=` after the latter.
pub fn script_output(uart: &str) -> Option<(String, i32)> {
    let mut lines = uart.lines().skip_while(|l| !l.contains(MARK_OUT_BEGIN));
    lines.next()?;
    let mut body = String::new();
    for l in lines {
        if let Some((_, rest)) = l.split_once(MARK_OUT_END) {
            let rc = rest.trim().strip_prefix("rc=")?.trim().parse().ok()?;
            return Some((body, rc));
        }
        body.push_str(l);
        body.push('\n');
    }
    None
}

/// Boots the kernel in QEMU and collects the UART until QEMU exits (the `/init`'s `poweroff
/// -f`) or the timeout (then QEMU is killed).
pub fn run_linux(cfg: &LinuxRunConfig) -> Result<LinuxOutcome> {
    check_qemu(&cfg.qemu)?;
    for (what, p) in [
        ("kernel", &cfg.kernel),
        ("device tree", &cfg.dtb),
        ("initramfs", &cfg.initrd),
        ("disk image", &cfg.disk),
    ] {
        if !p.is_file() {
            bail!("{what} {} does not exist", p.display());
        }
    }
    let started = Instant::now();
    let mut child = Command::new(&cfg.qemu)
        .args(cfg.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", cfg.qemu.display()))?;
    let (tx, rx) = channel::<String>();
    let out = child.stdout.take().expect("piped stdout");
    let echo = cfg.echo.clone();
    std::thread::spawn(move || {
        let mut r = BufReader::new(out);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .replace('\r', "");
            if let Some(prefix) = &echo {
                println!("{prefix}{line}");
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let err = child.stderr.take().expect("piped stderr");
    let err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = BufReader::new(err).read_to_string(&mut s);
        s
    });
    let deadline = started + cfg.timeout;
    let (mut uart, mut to_mmc, mut timed_out) = (String::new(), None, false);
    loop {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            let _ = child.kill();
            break;
        }
        match rx.recv_timeout((deadline - now).min(Duration::from_millis(100))) {
            Ok(line) => {
                if to_mmc.is_none() && line.contains(MARK_MMC) {
                    to_mmc = Some(started.elapsed());
                }
                uart.push_str(&line);
                uart.push('\n');
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    let status = child.wait()?;
    let wall = started.elapsed();
    let stderr = err_thread.join().unwrap_or_default();
    Ok(LinuxOutcome {
        exit_status: (!timed_out).then_some(status),
        uart,
        stderr,
        timed_out,
        to_mmc,
        wall,
    })
}

/// Options of [`smoke`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeOptions {
    /// The download cache ([`cache_dir`]).
    pub cache: PathBuf,
    /// Work directory for the disk, cell and initramfs (created).
    pub work: PathBuf,
    /// Echo the UART live with this prefix.
    pub echo: Option<String>,
}

/// What [`smoke`] found.
#[derive(Debug, Clone)]
pub struct SmokeReport {
    /// The Linux pieces used.
    pub artifacts: LinuxArtifacts,
    /// The run.
    pub outcome: LinuxOutcome,
    /// The `ubootctl status --json` document.
    pub status: serde_json::Value,
    /// ubootctl's exit status.
    pub status_rc: i32,
    /// Time to fetch (or find) the cache.
    pub fetch_time: Duration,
    /// Time to build ubootctl, the kit, the disk and the initramfs.
    pub build_time: Duration,
}

/// The `/e2e.sh` of the smoke run: `ubootctl status --json` on the SD card found by `/init`,
/// fuses from `/srk_hash.bin`.
pub const SMOKE_SCRIPT: &str = "#!/bin/sh\nubootctl status --json --device \"$E2E_MMC\" \
    --board qemu-imx8mp --srk-hash /srk_hash.bin\n";

/// The boot cell the shim writes after booting the primary (slot 1, primary authentic, SIT
/// not read, secondary not examined) whose FIT has identity `booted`
/// (`boot_core::examine::flash_bin_identity`).
pub fn primary_ok_cell(booted: [u8; 32]) -> [u8; boot_core::cell::CELL_SIZE] {
    use boot_core::cell::{BootRecord, CopyReport, RomInfo, ShimVersion, SitReport, SitStatus};
    use boot_core::policy::Reason;
    use imx_hab::hab::EventSummary;
    BootRecord {
        reason: Some(Reason::PrimaryOk),
        primary: CopyReport::Authentic {
            hab: EventSummary {
                status: 0xf0,
                reason: 0,
                context: 0,
                engine: 0,
            },
            warnings: boot_core::examine::Warnings::default(),
        },
        secondary: CopyReport::NotExamined,
        sit: SitReport {
            status: SitStatus::NotRead,
            first_sector: 0,
        },
        rom: RomInfo::UNKNOWN,
        shim_version: ShimVersion::CURRENT,
        booted: Some(booted),
        rollback_minimum: Some(0),
    }
    .encode()
}

/// The smoke run: fetch the Linux pieces, build `ubootctl` (musl, static) and the simulation
/// kit, make an SD image with version 1 in both slots, plant a slot-1 cell at the board's cell
/// address, boot Linux on it and run `ubootctl status --json`; checks that it reports running
/// slot 1 and both copies authentic.
pub fn smoke(opts: &SmokeOptions, log: &mut dyn FnMut(&str)) -> Result<SmokeReport> {
    let t0 = Instant::now();
    let artifacts = fetch(&opts.cache, log)?;
    let fetch_time = t0.elapsed();
    let t1 = Instant::now();
    log("building ubootctl for aarch64-unknown-linux-musl");
    let ubootctl = build_ubootctl()?;
    log("building the simulation kit (shim, payload, test PKI)");
    let kit = crate::sim::SimKit::build(crate::pki::DEFAULT_SEED.as_bytes())?;
    std::fs::create_dir_all(&opts.work)
        .with_context(|| format!("creating {}", opts.work.display()))?;
    let disk = opts.work.join("sd.img");
    let v1 = kit.flash_bin(1)?;
    let booted = boot_core::examine::flash_bin_identity(&v1, boards::AN12900_LAYOUT.fit_offset)
        .ok_or_else(|| Error::msg("the simulation kit's flash.bin does not parse"))?;
    crate::disk::build_disk(&disk, &crate::disk::DiskSpec::new(v1.clone(), v1))?;
    let cell = opts.work.join("cell.bin");
    std::fs::write(&cell, primary_ok_cell(booted))?;
    let initrd = opts.work.join("initrd.cpio.gz");
    let mut spec = InitSpec::new(SMOKE_SCRIPT);
    spec.files
        .push(("srk_hash.bin".into(), kit.pki.srk_hash()?.to_vec()));
    build_initramfs(&artifacts, &ubootctl, &spec, &initrd)?;
    let build_time = t1.elapsed();
    let mut cfg = LinuxRunConfig::new(&artifacts, &initrd, &disk);
    cfg.extra_args = loader_args(&cell, CELL_ADDR);
    cfg.echo = opts.echo.clone();
    log(&format!("{} {}", cfg.qemu.display(), cfg.args().join(" ")));
    let outcome = run_linux(&cfg)?;
    let fail = |what: String| -> Error {
        Error::msg(format!(
            "{what}\n--- UART ---\n{}\n--- QEMU stderr ---\n{}",
            outcome.uart.trim_end(),
            outcome.stderr.trim_end()
        ))
    };
    if outcome.timed_out {
        return Err(fail(format!(
            "Linux did not power off within {:?}",
            cfg.timeout
        )));
    }
    let Some((text, status_rc)) = outcome.script_output() else {
        return Err(fail("no script output between the markers".into()));
    };
    let status: serde_json::Value = serde_json::from_str(text.trim())
        .map_err(|e| fail(format!("ubootctl status --json is not JSON ({e}): {text}")))?;
    let running = status.get("running").and_then(serde_json::Value::as_u64);
    let authentic = |copy: &str| {
        status
            .get(copy)
            .and_then(|c| c.get("authentic"))
            .and_then(serde_json::Value::as_bool)
            == Some(true)
    };
    if running != Some(1) || !authentic("primary") || !authentic("secondary") {
        return Err(fail(format!(
            "expected running slot 1 and both copies authentic, got {status}"
        )));
    }
    Ok(SmokeReport {
        artifacts,
        outcome,
        status,
        status_rc,
        fetch_time,
        build_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_dependency_is_parsed() {
        let text = "linux-image-arm64:arm64\n  Depends: linux-image-6.12.95+deb12-arm64:arm64\n";
        assert_eq!(
            parse_kernel_dependency(text).as_deref(),
            Some("linux-image-6.12.95+deb12-arm64")
        );
        assert_eq!(
            parse_kernel_dependency("x\n  Depends: linux-image-6.1.0-37-arm64:arm64\n"),
            None
        );
    }

    #[test]
    fn cpio_is_newc_and_aligned() {
        let mut c = Cpio::new();
        c.dir("bin").file("/init", 0o755, b"#!/bin/sh\n");
        let a = c.finish();
        assert!(a.starts_with(b"070701"));
        assert_eq!(a.len() % 4, 0);
        // Header 110 bytes + "bin\0" = 114, padded to 116.
        assert_eq!(&a[116..122], b"070701");
        let init_hdr = &a[116..];
        // mode field (2nd) of the file.
        assert_eq!(&init_hdr[14..22], b"000081ED");
        assert!(a.windows(11).any(|w| w == b"TRAILER!!!\0"));
    }

    #[test]
    fn script_output_is_cut_between_markers() {
        let uart = "boot\nE2E-MMC: /dev/mmcblk1\nE2E-OUT-BEGIN\n{\n \"a\": 1\n}\nE2E-OUT-END rc=3\nE2E-DONE\n";
        let (body, rc) = script_output(uart).unwrap();
        assert_eq!(body, "{\n \"a\": 1\n}\n");
        assert_eq!(rc, 3);
        assert_eq!(script_output("E2E-OUT-BEGIN\nx\n"), None);
    }

    #[test]
    fn init_script_names_markers_and_modules() {
        let s = init_script(&["sdhci", "cqhci"], 50, None);
        assert!(init_script(&[], 50, Some("/dev/mmcblk1")).contains("for d in /dev/mmcblk1; do"));
        assert!(s.starts_with("#!/bin/busybox sh\n"));
        assert!(s.contains("for m in sdhci cqhci; do"));
        assert!(s.contains("[ $i -lt 50 ]"));
        for m in [MARK_MMC, MARK_OUT_BEGIN, MARK_OUT_END, MARK_DONE] {
            assert!(s.contains(m));
        }
    }

    #[test]
    fn dts_patch_makes_usdhc2_non_removable() {
        let dts = "/ {\n\tcpus {\n\t\tcpu@0 {\n\t\t\tcpu-idle-states = <0x1>;\n\t\t};\n\t};\n\t\tmmc@30b50000 {\n\t\t\tbus-width = <0x04>;\n\t\t\tcd-gpios = <0x47 0x0c 0x01>;\n\t\t\tvmmc-supply = <0x48>;\n\t\t};\n\t\tmmc@30b60000 {\n\t\t\tvmmc-supply = <0x49>;\n\t\t};\n};\n";
        let (out, p) = patch_dts(dts);
        assert_eq!(p.idle_states_removed, 1);
        assert!(p.usdhc2_non_removable);
        assert!(!out.contains("cd-gpios") && !out.contains("cpu-idle-states"));
        assert!(
            out.contains(
                "\t\t\tbus-width = <0x04>;\n\t\t\tnon-removable;\n\t\t};\n\t\tmmc@30b60000"
            )
        );
        assert!(out.contains("vmmc-supply = <0x49>;"), "only USDHC2 changes");
    }

    #[test]
    fn chain_dts_fills_chosen_and_memory() {
        let dts = "/ {\n\tchosen {\n\t\tstdout-path = \"/serial\";\n\t};\n\n\tmemory@40000000 {\n\t\tdevice_type = \"memory\";\n\t\treg = <0x00 0x40000000 0x00 0xc0000000 0x01 0x00 0x00 0xc0000000>;\n\t};\n\tx {\n\t\treg = <0x1>;\n\t};\n};\n";
        let c = ChainDt {
            bootargs: CMDLINE.into(),
            initrd: Some((0x4380_0000, 0x1000)),
            memory: 1 << 30,
        };
        let out = chain_dts(dts, &c).unwrap();
        assert!(out.contains("\t\tbootargs = \"console=ttymxc1,115200 earlycon rdinit=/init\";\n"));
        assert!(out.contains("linux,initrd-start = <0x0 0x43800000>;"));
        assert!(out.contains("linux,initrd-end = <0x0 0x43801000>;"));
        assert!(out.contains("\t\treg = <0x0 0x40000000 0x0 0x40000000>;\n"));
        assert!(out.contains("\t\treg = <0x1>;"), "other nodes untouched");
        assert!(chain_dts("/ {\n};\n", &c).is_err());
    }

    #[test]
    fn smoke_cell_says_slot_one() {
        let cell = primary_ok_cell([3; 32]);
        let c = boot_core::cell::decode(&cell).unwrap();
        assert_eq!(u32::from_le_bytes(cell[..4].try_into().unwrap()), 1);
        assert!(c.record.is_ok());
    }
}
