//! The four writers of the comparison, each run for real on `disk.img` under `strace`:
//! `ubootctl update`, RAUC 1.8's `boot-raw-fallback` slot, `rauc install` through
//! `integrations/rauc/ubootctl-hook`, and AN12900's two `dd` commands.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::trace;
use crate::{Context, Result, bail};

/// Largest buffer strace prints in full (RAUC writes at most a few hundred KiB per call).
const STRACE_STRING_MAX: &str = "16777216";

/// A writer of the comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// `ubootctl update v2.bin` (device, board, fuses and cell from the configuration file).
    Ubootctl,
    /// RAUC's `boot-raw-fallback` slot type, `region-start=33K`, `region-size=4M`.
    RaucBootRawFallback,
    /// `rauc install` with a raw slot and `integrations/rauc/ubootctl-hook`.
    RaucHook,
    /// AN12900's `dd` of the primary to the secondary, then `dd` of the new image.
    An12900Dd,
}

impl Writer {
    /// All four, in table order.
    pub const ALL: [Writer; 4] = [
        Writer::Ubootctl,
        Writer::RaucHook,
        Writer::RaucBootRawFallback,
        Writer::An12900Dd,
    ];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Writer::Ubootctl => "`ubootctl update`",
            Writer::RaucHook => "`rauc install` + ubootctl-hook",
            Writer::RaucBootRawFallback => "RAUC `boot-raw-fallback`",
            Writer::An12900Dd => "AN12900 `dd` × 2",
        }
    }
}

/// The scratch directory of the runs and what is in it.
pub struct Work {
    /// The directory.
    pub dir: PathBuf,
    /// The `ubootctl` binary.
    pub ubootctl: PathBuf,
}

impl Work {
    fn p(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The device file every writer writes.
    pub fn disk(&self) -> PathBuf {
        self.p("disk.img")
    }
}

fn run(cmd: &mut Command, what: &str) -> Result<std::process::Output> {
    let o = cmd.output().with_context(|| format!("cannot run {what}"))?;
    Ok(o)
}

fn check(o: &std::process::Output, what: &str) -> Result<()> {
    if !o.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(())
}

/// Writes the files every run needs once: the RAUC signing certificate, both bundles, the
/// system.conf files, the configuration file of ubootctl.
pub fn prepare(work: &Work, v2: &[u8], board: &str) -> Result<()> {
    let d = &work.dir;
    std::fs::write(work.p("v2.bin"), v2)?;
    let o = run(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "3650",
            ])
            .args([
                "-subj",
                "/CN=powercut-compare",
                "-keyout",
                "key.pem",
                "-out",
                "cert.pem",
            ])
            .current_dir(d),
        "openssl req",
    )?;
    check(&o, "openssl req")?;
    std::fs::write(
        work.p("ubootctl.toml"),
        format!(
            "device = \"disk.img\"\nboard = \"{board}\"\nsrk-hash = \"srk.bin\"\nmem = \"mem.bin\"\n"
        ),
    )?;
    let bin = work.p("bin");
    std::fs::create_dir_all(&bin)?;
    let link = bin.join("ubootctl");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&work.ubootctl, &link)?;
    let hook = crate::workspace_root().join("integrations/rauc/ubootctl-hook");
    for (name, hooked) in [("hook", true), ("brf", false)] {
        let c = work.p(&format!("bundle-{name}"));
        let _ = std::fs::remove_dir_all(&c);
        std::fs::create_dir_all(&c)?;
        // RAUC takes a raw image for a boot-raw-fallback slot by its `.img` suffix.
        let file = if hooked { "flash.bin" } else { "flash.img" };
        std::fs::write(c.join(file), v2)?;
        let mut manifest = String::from(
            "[update]\ncompatible=powercut-compare\nversion=2\n\n[bundle]\nformat=plain\n\n",
        );
        if hooked {
            std::fs::copy(&hook, c.join("ubootctl-hook"))?;
            manifest.push_str("[hooks]\nfilename=ubootctl-hook\n\n[image.boot]\nfilename=flash.bin\nhooks=install\n");
        } else {
            manifest.push_str("[image.boot]\nfilename=flash.img\n");
        }
        std::fs::write(c.join("manifest.raucm"), manifest)?;
        let out = work.p(&format!("{name}.raucb"));
        let _ = std::fs::remove_file(&out);
        let o = run(
            Command::new("rauc")
                .args(["bundle", "--cert=cert.pem", "--key=key.pem"])
                .arg(&c)
                .arg(&out)
                .current_dir(d),
            "rauc bundle",
        )?;
        check(&o, "rauc bundle")?;
        let slot = if hooked {
            "type=raw".to_string()
        } else {
            "type=boot-raw-fallback\nregion-start=33K\nregion-size=4M".to_string()
        };
        std::fs::create_dir_all(work.p(&format!("rauc-{name}")))?;
        std::fs::create_dir_all(work.p("mnt"))?;
        std::fs::write(
            work.p(&format!("system-{name}.conf")),
            format!(
                "[system]\ncompatible=powercut-compare\nbootloader=noop\ndata-directory={}\n\
                 mountprefix={}\n\n[keyring]\npath={}\n\n[slot.boot.0]\ndevice={}\n{slot}\n",
                work.p(&format!("rauc-{name}")).display(),
                work.p("mnt").display(),
                work.p("cert.pem").display(),
                work.disk().display()
            ),
        )?;
    }
    Ok(())
}

/// How a writer runs under strace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Record every call ([`trace::TRACED`]) with its bytes.
    Record,
    /// Kill the writing process (SIGKILL) on entering its k-th write call to the disk (1-based):
    /// a real power cut after k - 1 calls.
    Cut(usize),
}

fn strace_args(log: &Path, mode: Mode, disk: &Path) -> Vec<String> {
    if let Mode::Cut(k) = mode {
        return [
            "-f",
            "-qq",
            "-P",
            &disk.display().to_string(),
            "-e",
            "trace=write,pwrite64",
            "-e",
            &format!("inject=write,pwrite64:signal=SIGKILL:when={k}"),
            "-e",
            "signal=none",
            "-o",
            &log.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
    }
    [
        "-f",
        "-qq",
        "-y",
        "-xx",
        "-s",
        STRACE_STRING_MAX,
        "-e",
        &format!("trace={}", trace::TRACED),
        "-e",
        "signal=none",
        "-o",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([log.display().to_string()])
    .collect()
}

/// Runs `writer` on `disk.img` (already holding the starting state, with `mem.bin` and
/// `srk.bin` beside it) under strace; returns its write calls to the disk, in order.
pub fn trace_writer(work: &Work, writer: Writer) -> Result<Vec<trace::Write>> {
    let log = work.p("trace.log");
    let o = run_writer(work, writer, Mode::Record, &log)?;
    check(&o, writer.name())?;
    let text =
        std::fs::read_to_string(&log).with_context(|| format!("cannot read {}", log.display()))?;
    trace::writes(&text, &work.disk().display().to_string())
}

/// Runs `writer` on `disk.img` and cuts its power for real: SIGKILL on entering its `k`-th
/// write call to the disk. Whether the writer failed is not checked (it was killed).
pub fn cut_writer(work: &Work, writer: Writer, k: usize) -> Result<()> {
    run_writer(work, writer, Mode::Cut(k), &work.p("cut.log")).map(|_| ())
}

fn run_writer(work: &Work, writer: Writer, mode: Mode, log: &Path) -> Result<std::process::Output> {
    let _ = std::fs::remove_file(log);
    let disk = work.disk();
    let path_env = std::env::join_paths(std::iter::once(work.p("bin")).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .map_err(|e| crate::Error::msg(e.to_string()))?;
    let mut cmd = match writer {
        Writer::Ubootctl => {
            let mut c = Command::new("strace");
            c.args(strace_args(log, mode, &disk))
                .args(["ubootctl", "update", "v2.bin"]);
            c
        }
        Writer::An12900Dd => {
            let mut c = Command::new("strace");
            // AN12900's commands, with conv=notrunc because the device is a file here.
            c.args(strace_args(log, mode, &disk)).args([
                "sh",
                "-c",
                "dd if=disk.img of=disk.img bs=1k count=2048 skip=33 seek=2081 conv=notrunc status=none && \
                 dd if=v2.bin of=disk.img bs=1K seek=33 conv=notrunc status=none && sync",
            ]);
            c
        }
        Writer::RaucBootRawFallback | Writer::RaucHook => {
            let name = if writer == Writer::RaucHook {
                "hook"
            } else {
                "brf"
            };
            let script = format!(
                r#"export DBUS_STARTER_BUS_TYPE=session
                strace {} rauc service --conf=system-{name}.conf --override-boot-slot=_external_ &
                tracer=$!
                i=0
                until dbus-send --session --print-reply --dest=de.pengutronix.rauc / \
                        org.freedesktop.DBus.Peer.Ping >/dev/null 2>&1; do
                    i=$((i + 1)); [ $i -lt 200 ] || {{ echo "rauc service did not start" >&2; exit 3; }}
                    sleep 0.1
                done
                rauc install {name}.raucb; rc=$?
                svc=$(pgrep -P $tracer)
                [ -n "$svc" ] && kill $svc
                wait $tracer
                exit $rc"#,
                strace_args(log, mode, &disk).join(" ")
            );
            let mut c = Command::new("timeout");
            c.args(["300", "dbus-run-session", "--", "sh", "-c", &script]);
            c
        }
    };
    cmd.current_dir(&work.dir)
        .env("PATH", path_env)
        .env("UBOOTCTL_CONFIG", work.p("ubootctl.toml"));
    let o = run(&mut cmd, writer.name())?;
    release_rauc(work);
    Ok(o)
}

/// Unmounts what a RAUC run may have left under the scratch mountprefix and detaches loop
/// devices backed by its bundles.
pub fn release_rauc(work: &Work) {
    let dir = work.dir.display().to_string();
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m.starts_with(&dir))
        .collect();
    for m in mounts.iter().rev() {
        let _ = Command::new("umount").arg("-l").arg(m).status();
    }
    if let Ok(o) = Command::new("losetup")
        .args(["-n", "-O", "NAME,BACK-FILE", "-l"])
        .output()
    {
        for l in String::from_utf8_lossy(&o.stdout).lines() {
            if l.contains(&dir)
                && let Some(dev) = l.split_whitespace().next()
            {
                let _ = Command::new("losetup").arg("-d").arg(dev).status();
            }
        }
    }
}
