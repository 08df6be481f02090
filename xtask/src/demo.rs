//! `cargo xtask demo`: the mission end to end, narrated, on QEMU's `imx8mp-evk`.
//!
//! 1. Generate a test PKI, build the shim and the test payload, sign version 1 ("old") and
//!    version 2 ("new"), and build a 64 MiB SD image in the state right after an AN12900
//!    update: SIT, primary = v2, secondary = v1; plus the fuse block of a closed part.
//! 2. Boot: the shim authenticates the primary, the cell says slot 1, the payload prints
//!    `version 2 slot 1`.
//! 3. `ubootctl status` on the image (the cell read over QMP is laid out as physical memory in
//!    `mem.bin`): degraded, the fallback is the old v1; `ubootctl sync` makes it a copy of the
//!    primary; `status` healthy.
//! 4. Flip one byte of the primary's FIT data and boot: the shim rejects the primary, falls back
//!    through the SIT, the cell says slot 2 and the payload runs from slot 2.
//! 5. `ubootctl status` reports running on the secondary (degraded); `ubootctl update` with the
//!    v2 flash.bin rewrites the primary only.
//! 6. Boot again: slot 1, `version 2 slot 1`; `status` healthy.
//!
//! Every step checks what it claims (cell slot, payload line, QEMU exit code, `ubootctl` exit
//! codes, bytes on the image); the first step with a failed check stops the demo with an error
//! saying what was expected and what was found. The work directory (default `target/demo`)
//! holds everything the run made; a second run reuses its PKI and rewrites everything else.

use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use boot_core::cell::{Cell, CopyReport, SitStatus, SlotWord};
use boot_core::policy::{Reason, Slot};

use crate::disk::{DiskSpec, ImageCopy, PRIMARY_OFFSET, build_disk, flip_byte, read_copy};
use crate::firmware::{build_spl, cargo};
use crate::qemu::{CELL_ADDR, CELL_SIZE, SimConfig, SimOutcome, Stop, check_qemu, qemu_binary};
use crate::sim::{SIM_BOARD, SimKit, default_payload};
use crate::{Context, Error, Result, bail, workspace_root};

/// The work directory under the workspace root when `--out` is not given.
pub const DEFAULT_OUT: &str = "target/demo";
/// Prefix of the UART lines in the transcript.
pub const UART_PREFIX: &str = "  uart| ";
/// Prefix of the decoded cell lines.
pub const CELL_PREFIX: &str = "  cell| ";
/// Prefix of the output of the commands the demo runs.
pub const OUTPUT_PREFIX: &str = "  | ";
/// The "old" image version (the secondary after the AN12900 update).
pub const OLD_VERSION: u32 = 1;
/// The "new" image version (the primary after the AN12900 update).
pub const NEW_VERSION: u32 = 2;
/// Hard limit of one boot in QEMU.
const BOOT_TIMEOUT: Duration = Duration::from_secs(30);
/// Width of the step headings.
const HEADING_WIDTH: usize = 92;

/// What `cargo xtask demo` is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// The work directory (created; its PKI is reused, everything else is rewritten).
    pub out: PathBuf,
}

impl Default for DemoOptions {
    fn default() -> Self {
        DemoOptions {
            out: workspace_root().join(DEFAULT_OUT),
        }
    }
}

/// Writes `cell` into a sparse file laid out as physical memory: the cell's bytes at offset
/// `addr`, holes before it, the file ending with the cell. This is what `ubootctl --mem FILE`
/// reads in place of `/dev/mem`.
pub fn write_mem_file(path: &Path, addr: u64, cell: &[u8; CELL_SIZE]) -> Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.set_len(addr + CELL_SIZE as u64)?;
    f.seek(SeekFrom::Start(addr))?;
    f.write_all(cell)
        .with_context(|| format!("writing the cell into {}", path.display()))?;
    f.sync_all()?;
    Ok(())
}

/// One copy's verdict from the cell in words: `authentic`, `not examined`, or
/// `REJECTED (class; HAB names)`.
pub fn copy_text(report: &CopyReport) -> String {
    use imx_hab::hab::codes::{context_name, reason_name, status_name};
    match report {
        CopyReport::NotExamined => "not examined".into(),
        CopyReport::Authentic { .. } => "authentic".into(),
        CopyReport::Rejected { class, hab, part } => {
            let class = match part {
                Some(p) => format!("{class} in the {}", p.name()),
                None => class.to_string(),
            };
            let names: Vec<String> = [
                status_name(hab.status).map(str::to_string),
                reason_name(hab.reason).map(str::to_string),
                context_name(hab.context).map(str::to_string),
            ]
            .into_iter()
            .flatten()
            .collect();
            if names.is_empty() {
                format!("REJECTED ({class})")
            } else {
                format!("REJECTED ({class}; {})", names.join(" "))
            }
        }
    }
}

/// The decoded cell in two short lines: the slot word and the reason, then the verdicts on
/// the primary, the SIT and the secondary (in the order the shim examines them).
pub fn cell_lines(cell: &Cell) -> Vec<String> {
    let slot = match cell.slot {
        SlotWord::Nothing => "0 (nothing bootable)".to_string(),
        SlotWord::Booted(Slot::Primary) => "1 (the primary was booted)".to_string(),
        SlotWord::Booted(Slot::Secondary) => "2 (the secondary was booted)".to_string(),
        SlotWord::Invalid(w) => format!("{w:#x} (not a slot)"),
    };
    match &cell.record {
        Err(e) => vec![format!("slot word {slot}; no valid boot record: {e}")],
        Ok(r) => {
            let reason = r.reason.map_or(
                "none (stopped before deciding)",
                boot_core::cell::reason_name,
            );
            let sit = match r.sit.status {
                SitStatus::NotRead => "not read".to_string(),
                SitStatus::Valid => format!("valid (firstSectorNumber {:#x})", r.sit.first_sector),
                s => s.name().to_string(),
            };
            vec![
                format!("slot word {slot}, reason {reason}"),
                format!(
                    "primary {} · SIT {sit} · secondary {}",
                    copy_text(&r.primary),
                    copy_text(&r.secondary)
                ),
            ]
        }
    }
}

/// The value of a `name   value` line of `ubootctl status`'s table, if there is one.
pub fn status_field<'a>(output: &'a str, name: &str) -> Option<&'a str> {
    output.lines().find_map(|l| {
        let rest = l.strip_prefix(name)?;
        rest.starts_with(char::is_whitespace).then(|| rest.trim())
    })
}

/// `path` relative to `base` if it lies under it, else as given.
pub fn relative_to(path: &Path, base: &Path) -> PathBuf {
    path.strip_prefix(base)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Builds `ubootctl` (`cargo build --release -p ubootctl`) and returns the executable's path
/// (from cargo's JSON messages, so a custom target directory is honoured).
pub fn build_ubootctl() -> Result<PathBuf> {
    let mut cmd = cargo();
    cmd.args(["build", "--release", "-p", "ubootctl", "--bin", "ubootctl"]);
    crate::firmware::cargo_build_executable(cmd, "ubootctl", "building ubootctl")?
        .filter(|p| p.is_file())
        .ok_or_else(|| Error::msg("cargo built ubootctl but named no executable"))
}

/// Runs the demo (module docs): prints the transcript and returns `Ok` only if every step's
/// checks held.
pub fn run(options: &DemoOptions) -> Result<()> {
    let started = Instant::now();
    let mut demo = Demo::prepare(options)?;
    demo.step1_build()?;
    demo.step2_boot_primary()?;
    demo.step3_status_and_sync()?;
    demo.step4_corrupt_and_fall_back()?;
    demo.step5_repair()?;
    demo.step6_boot_repaired()?;
    demo.summary(started.elapsed());
    Ok(())
}

/// The state of a run.
struct Demo {
    dir: PathBuf,
    ubootctl: PathBuf,
    kit: Option<SimKit>,
    fuses: PathBuf,
    disk: PathBuf,
    mem: PathBuf,
    srk_hash: PathBuf,
    step: u32,
    failed: Vec<String>,
    checks: usize,
    qemu_shown: bool,
}

impl Demo {
    fn prepare(options: &DemoOptions) -> Result<Self> {
        let dir = if options.out.is_absolute() {
            options.out.clone()
        } else {
            std::env::current_dir()?.join(&options.out)
        };
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        println!(
            "imx-redundant-boot demo: two signed boot images, a bit flip, a fallback, a repair"
        );
        println!("(QEMU's imx8mp-evk standing in for an i.MX 8M board; TEST KEYS throughout)");
        println!("work dir: {}", shown(&dir));
        Ok(Demo {
            fuses: dir.join("fuses.bin"),
            disk: dir.join("sd.img"),
            mem: dir.join("mem.bin"),
            srk_hash: dir.join("pki").join("srk_fuse.bin"),
            dir,
            ubootctl: PathBuf::new(),
            kit: None,
            step: 0,
            failed: Vec::new(),
            checks: 0,
            qemu_shown: false,
        })
    }

    fn kit(&self) -> &SimKit {
        self.kit.as_ref().expect("step 1 builds the kit")
    }

    /// A numbered heading and the narration under it.
    fn heading(&mut self, title: &str, narration: &[&str]) {
        self.step += 1;
        let head = format!("── {}. {title} ", self.step);
        let fill = HEADING_WIDTH.saturating_sub(head.chars().count());
        println!("\n{head}{}", "─".repeat(fill));
        for line in narration {
            println!("{line}");
        }
        println!();
    }

    /// Records and prints a check.
    fn check(
        &mut self,
        what: &str,
        expected: impl std::fmt::Display,
        found: impl std::fmt::Display,
    ) {
        let (e, f) = (expected.to_string(), found.to_string());
        self.checks += 1;
        if e == f {
            println!("  ok    {what}");
        } else {
            println!("  FAIL  {what}: expected {e}, found {f}");
            self.failed.push(format!(
                "step {}: {what}: expected {e}, found {f}",
                self.step
            ));
        }
    }

    /// Ends a step: an error naming every failed check, if any.
    fn end_step(&self) -> Result<()> {
        if self.failed.is_empty() {
            return Ok(());
        }
        Err(Error::msg(format!(
            "the demo stopped at step {}: {} check(s) did not hold:\n  {}",
            self.step,
            self.failed.len(),
            self.failed.join("\n  ")
        )))
    }

    fn rel(&self, p: &Path) -> String {
        relative_to(p, &self.dir).display().to_string()
    }

    fn step1_build(&mut self) -> Result<()> {
        self.heading(
            "Build: test PKI, shim, payload, two signed versions, an SD card",
            &[
                "A product ships HAB-signed boot images; here a deterministic test PKI signs them. The shim",
                "is built for qemu-imx8mp, the test payload (the stand-in for bl31/U-Boot) prints its",
                "version and the slot it reads from the boot cell. The card is left as AN12900's update",
                "leaves it: the new image (v2) in the primary, the previous one (v1) in the secondary.",
            ],
        );
        let qv = check_qemu(&qemu_binary())?;
        item(
            "qemu",
            format!("{} {}.{}.{}", qemu_binary().display(), qv.0, qv.1, qv.2),
        );
        let pki_dir = self.dir.join("pki");
        let (pki, generated) =
            crate::pki::load_or_generate(&pki_dir, crate::pki::DEFAULT_SEED.as_bytes())?;
        let hash = pki.srk_hash()?;
        if !self.srk_hash.is_file() {
            std::fs::write(&self.srk_hash, hash)
                .with_context(|| format!("writing {}", self.srk_hash.display()))?;
        }
        item(
            "pki/",
            format!(
                "P-256 HAB4 PKI, {} from seed {:?}",
                if generated { "generated" } else { "reused" },
                crate::pki::DEFAULT_SEED
            ),
        );
        item(
            "",
            format!(
                "TEST KEYS: never fuse this SRK hash ({}…) into a real part",
                hex(&hash[..4])
            ),
        );
        let shim = build_spl(SIM_BOARD)?;
        let shim_copy = self.dir.join("spl-shim.elf");
        std::fs::copy(&shim, &shim_copy)
            .with_context(|| format!("copying {} to the work dir", shim.display()))?;
        item(
            "spl-shim.elf",
            format!("the shim for {SIM_BOARD} (built as {})", shown(&shim)),
        );
        let (payload, what) = default_payload()?;
        item(
            "payload",
            format!("{} ({} bytes flat)", shown(Path::new(&what)), payload.len()),
        );
        let rom = crate::firmware::build_test_firmware(crate::sim::ROM_MODEL_BIN)?;
        let rom_copy = self.dir.join("rom-model.elf");
        std::fs::copy(&rom, &rom_copy)
            .with_context(|| format!("copying {} to the work dir", rom.display()))?;
        item(
            "rom-model.elf",
            format!(
                "the boot ROM model QEMU starts at reset: it loads the card's SPL (built as {})",
                shown(&rom)
            ),
        );
        let kit = SimKit::new(shim_copy, rom_copy, pki, payload)?;
        kit.write_fuses(&self.fuses)?;
        item(
            "fuses.bin",
            "closed part (SEC_CONFIG bit 25), SRK hash of pki/, nothing revoked",
        );
        let mut bins = Vec::new();
        for (v, label) in [(OLD_VERSION, "old"), (NEW_VERSION, "new")] {
            let fb = kit.flash_bin(v)?;
            let path = self.flash_bin_path(v);
            std::fs::write(&path, &fb).with_context(|| format!("writing {}", path.display()))?;
            item(
                &self.rel(&path),
                format!(
                    "version {v} ({label}): signed shim SPL + signed FIT at 0x57C00, {} bytes",
                    fb.len()
                ),
            );
            bins.push(fb);
        }
        let spec = DiskSpec::new(bins[1].clone(), bins[0].clone());
        build_disk(&self.disk, &spec)?;
        item(
            "sd.img",
            format!(
                "64 MiB sparse image = an SDSC card; SIT at 0x8200 (firstSectorNumber {:#x}),",
                spec.first_sector
            ),
        );
        item(
            "",
            format!(
                "primary = v{NEW_VERSION} at {PRIMARY_OFFSET:#x}, secondary = v{OLD_VERSION} at {:#x}",
                spec.secondary_offset()
            ),
        );
        self.kit = Some(kit);
        self.ubootctl = build_ubootctl()?;
        item(
            "ubootctl",
            format!(
                "{} (the Linux tool, built for the host)",
                shown(&self.ubootctl)
            ),
        );
        for (v, fb, copy) in [
            (NEW_VERSION, &bins[1], ImageCopy::Primary),
            (OLD_VERSION, &bins[0], ImageCopy::Secondary),
        ] {
            let on_disk = copy_matches(&self.disk, copy, fb)?;
            let name = if copy == ImageCopy::Primary {
                "primary"
            } else {
                "secondary"
            };
            self.check(
                &format!("the {name} copy on sd.img is flash-v{v}.bin"),
                true,
                on_disk,
            );
        }
        self.end_step()
    }

    fn flash_bin_path(&self, version: u32) -> PathBuf {
        self.dir.join(format!("flash-v{version}.bin"))
    }

    /// Boots the card once, echoing the UART, and prints the decoded cell.
    fn boot(&mut self) -> Result<SimOutcome> {
        let mut config: SimConfig = self.kit().sim_config(&self.fuses, &self.disk);
        config.echo = Some(UART_PREFIX.into());
        config.timeout = BOOT_TIMEOUT;
        if self.qemu_shown {
            println!("  $ qemu-system-aarch64 …   (the same command)");
        } else {
            let prefix = format!("{}/", self.dir.display());
            let args: Vec<String> = config
                .args(Path::new("QMP.sock"))
                .iter()
                .map(|a| a.replace(&prefix, ""))
                .collect();
            let lines = wrap_command(&config.qemu.display().to_string(), &args);
            for (i, l) in lines.iter().enumerate() {
                let more = if i + 1 < lines.len() { " \\" } else { "" };
                let lead = if i == 0 { "  $ " } else { "      " };
                println!("{lead}{l}{more}");
            }
            self.qemu_shown = true;
        }
        let out = crate::qemu::run(&config, &Stop::Boot)?;
        if out.timed_out {
            println!("  (QEMU timed out after {} s)", BOOT_TIMEOUT.as_secs());
        }
        if !out.stderr.trim().is_empty() {
            for l in out.stderr.trim_end().lines() {
                println!("  qemu stderr| {l}");
            }
        }
        match out.decoded_cell() {
            Some(cell) => {
                for l in cell_lines(&cell) {
                    println!("{CELL_PREFIX}{l}");
                }
            }
            None => println!("{CELL_PREFIX}not read (QEMU ended before it could be read over QMP)"),
        }
        Ok(out)
    }

    /// Checks a boot: slot word, reason, the payload's line and its exit code.
    fn check_boot(&mut self, out: &SimOutcome, slot: u32, reason: Reason, version: u32) {
        let word = out
            .slot_word()
            .map_or("no cell".to_string(), |w| w.to_string());
        self.check(&format!("cell word 0 = {slot}"), slot, word);
        let found_reason = match out.decoded_cell().map(|c| c.record) {
            Some(Ok(r)) => r
                .reason
                .map_or("none", boot_core::cell::reason_name)
                .to_string(),
            Some(Err(e)) => format!("no boot record ({e})"),
            None => "no cell".into(),
        };
        self.check(
            &format!(
                "boot record reason {}",
                boot_core::cell::reason_name(reason)
            ),
            boot_core::cell::reason_name(reason),
            found_reason,
        );
        let marker = format!("payload: version {version} slot {slot}");
        let seen = out
            .uart
            .lines()
            .find(|l| l.starts_with("payload: version"))
            .map_or("no payload line".to_string(), |l| {
                l.trim_end_matches(" EL3").to_string()
            });
        self.check(&format!("the payload printed `{marker}`"), &marker, seen);
        self.check(
            "QEMU exit code = the slot (the payload's semihosting exit)",
            slot,
            out.exit_code()
                .map_or("none".to_string(), |c| c.to_string()),
        );
    }

    /// Writes `mem.bin` from a boot's cell.
    fn write_mem(&self, out: &SimOutcome) -> Result<()> {
        let Some(cell) = out.cell else {
            bail!("no cell was read over QMP: cannot build mem.bin");
        };
        write_mem_file(&self.mem, CELL_ADDR, &cell)?;
        println!(
            "  mem.bin: the {CELL_SIZE} cell bytes read over QMP, at {CELL_ADDR:#x} of a sparse file laid out as"
        );
        println!("  physical memory (what ubootctl reads from /dev/mem on the board)");
        Ok(())
    }

    /// Runs `ubootctl ARGS` in the work dir, printing the command and its output; returns the
    /// exit code and the output.
    fn ubootctl(&mut self, args: &[&str]) -> Result<(i32, String)> {
        println!("  $ ubootctl {}", args.join(" "));
        let (reader, writer) = std::io::pipe()?;
        let mut cmd = Command::new(&self.ubootctl);
        cmd.args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(writer.try_clone()?)
            .stderr(writer);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.ubootctl.display()))?;
        // The command holds the only write ends now: the pipe ends when it exits.
        drop(cmd);
        let mut text = String::new();
        for line in BufReader::new(reader).lines() {
            let line = line?;
            println!("{OUTPUT_PREFIX}{line}");
            text.push_str(&line);
            text.push('\n');
        }
        let status = child.wait()?;
        let code = status.code().unwrap_or(-1);
        println!("  (exit {code})");
        Ok((code, text))
    }

    fn common_args(&self) -> Vec<String> {
        vec![
            "--device".into(),
            "sd.img".into(),
            "--board".into(),
            SIM_BOARD.into(),
            "--srk-hash".into(),
            self.rel(&self.srk_hash),
            "--mem".into(),
            "mem.bin".into(),
        ]
    }

    fn run_tool(&mut self, verb: &[&str]) -> Result<(i32, String)> {
        let common = self.common_args();
        let mut args: Vec<&str> = verb.to_vec();
        args.extend(common.iter().map(String::as_str));
        self.ubootctl(&args)
    }

    fn step2_boot_primary(&mut self) -> Result<()> {
        self.heading(
            "Boot: the shim authenticates the primary",
            &[
                "QEMU starts a model of the boot ROM: it checks the primary's SPL (HAB against the",
                "fuses), copies it from the card into OCRAM and starts it, as the ROM does. That SPL",
                "is the shim: it reads the primary copy's FIT, checks its HAB signature, records its",
                "decision in the boot cell (OCRAM 0x901000) and hands off to the payload.",
            ],
        );
        let out = self.boot()?;
        self.check_boot(&out, 1, Reason::PrimaryOk, NEW_VERSION);
        self.end_step()?;
        self.write_mem(&out)
    }

    fn step3_status_and_sync(&mut self) -> Result<()> {
        self.heading(
            "Linux side: ubootctl status, then sync the fallback",
            &[
                "On the device, ubootctl reads the cell from /dev/mem and judges both copies as the shim",
                "would. The secondary still holds v1: authentic, but not the image that booted, so the",
                "device is DEGRADED until the new primary has proved itself and is copied over (AN12900).",
            ],
        );
        let (code, _) = self.run_tool(&["status"])?;
        self.check(
            "ubootctl status exit 1 (degraded: secondary differs)",
            1,
            code,
        );
        println!();
        println!("  v2 booted from slot 1, so it is good: make the secondary a copy of it.");
        let (code, _) = self.run_tool(&["sync"])?;
        self.check("ubootctl sync exit 0", 0, code);
        let v2 = std::fs::read(self.flash_bin_path(NEW_VERSION))?;
        let same = copy_matches(&self.disk, ImageCopy::Secondary, &v2)?;
        self.check(
            "the secondary copy on sd.img is now flash-v2.bin",
            true,
            same,
        );
        println!();
        let (code, _) = self.run_tool(&["status"])?;
        self.check("ubootctl status exit 0 (healthy)", 0, code);
        self.end_step()
    }

    fn step4_corrupt_and_fall_back(&mut self) -> Result<()> {
        self.heading(
            "Corrupt the primary and boot again: fallback to slot 2",
            &[
                "One flipped byte in the primary's FIT data stands in for bit rot or a write cut off by",
                "a power loss. The signature no longer matches: the shim must refuse the primary and",
                "boot the secondary it finds through the Secondary Image Table (since step 3 the v2 copy).",
            ],
        );
        let at = crate::disk::primary_fit_data_offset(&self.disk)?;
        let old = flip_byte(&self.disk, at)?;
        println!(
            "  flipped the byte at {at:#x} of sd.img (inside the primary FIT's payload data): {old:#04x} -> {:#04x}",
            old ^ 0xFF
        );
        println!();
        let out = self.boot()?;
        let rejection = out
            .uart
            .lines()
            .find_map(|l| {
                let m = l.split_once("shim: ")?.1;
                m.strip_prefix(&format!("primary at {PRIMARY_OFFSET:#x}:"))
                    .map(|rest| rest.split(':').next().unwrap_or("").trim().to_string())
            })
            .unwrap_or_else(|| "no verdict line".to_string());
        self.check(
            "the shim rejected the primary (its UART verdict line)",
            "rejected (image-signature)",
            rejection,
        );
        self.check_boot(&out, 2, Reason::PrimaryFailed, NEW_VERSION);
        self.end_step()?;
        self.write_mem(&out)
    }

    fn step5_repair(&mut self) -> Result<()> {
        self.heading(
            "Repair from Linux: ubootctl update rewrites the primary only",
            &[
                "The device runs, but on its fallback. ubootctl sees it in the cell and says what to do.",
                "update verifies the image first; running slot 2, AN12900's rule writes only the",
                "primary (header last, read back), so the copy that is running is never touched.",
            ],
        );
        let (code, text) = self.run_tool(&["status"])?;
        self.check(
            "ubootctl status exit 1 (degraded: running the secondary)",
            1,
            code,
        );
        self.check(
            "ubootctl status names the running slot",
            "slot 2",
            status_field(&text, "running")
                .and_then(|v| v.split(" (").next())
                .unwrap_or("no `running` line"),
        );
        println!();
        let secondary_before = read_copy(&self.disk, ImageCopy::Secondary)?;
        let image = self.rel(&self.flash_bin_path(NEW_VERSION));
        println!("  First the plan (--dry-run writes nothing), then the update:");
        let (code, text) = self.run_tool(&["update", &image, "--dry-run"])?;
        self.check("ubootctl update --dry-run exit 0", 0, code);
        self.check(
            "the plan writes the primary only",
            true,
            text.contains("write primary") && !text.contains("write secondary"),
        );
        println!();
        let (code, _) = self.run_tool(&["update", &image])?;
        self.check("ubootctl update exit 0", 0, code);
        let v2 = std::fs::read(self.flash_bin_path(NEW_VERSION))?;
        let repaired = copy_matches(&self.disk, ImageCopy::Primary, &v2)?;
        self.check(
            "the primary copy on sd.img is flash-v2.bin again",
            true,
            repaired,
        );
        let untouched = read_copy(&self.disk, ImageCopy::Secondary)? == secondary_before;
        self.check("the running secondary was not written", true, untouched);
        self.end_step()
    }

    fn step6_boot_repaired(&mut self) -> Result<()> {
        self.heading(
            "Boot the repaired card: slot 1 again",
            &[
                "Next power-on: the primary is authentic again, so the shim boots it and the device is",
                "back on slot 1, with an identical fallback behind it.",
            ],
        );
        let out = self.boot()?;
        self.check_boot(&out, 1, Reason::PrimaryOk, NEW_VERSION);
        self.end_step()?;
        self.write_mem(&out)?;
        println!();
        let (code, _) = self.run_tool(&["status"])?;
        self.check("ubootctl status exit 0 (healthy)", 0, code);
        self.end_step()
    }

    fn summary(&mut self, elapsed: Duration) {
        self.heading("What was shown", &[]);
        println!(
            "  - The shim authenticated the HAB-signed primary (v2) and booted slot 1; the boot cell"
        );
        println!("    told Linux which copy runs and why.");
        println!(
            "  - A single flipped byte made the primary fail its signature check; the shim fell back"
        );
        println!(
            "    through the SIT to the secondary, recorded slot 2, and the device still came up."
        );
        println!(
            "  - ubootctl read the cell, reported the degraded state, and repaired the primary with"
        );
        println!(
            "    AN12900's rule (only the copy not running is written); the next boot was slot 1."
        );
        println!();
        println!(
            "all {} checks held ({:.1} s); the images are in {}",
            self.checks,
            elapsed.as_secs_f64(),
            shown(&self.dir)
        );
    }
}

/// Options that start a new line when a command is shown wrapped.
const WRAP_BEFORE: &[&str] = &["-semihosting-config", "-device", "-drive", "-qmp"];

/// `program args…` split into lines for the transcript: a new line before each option of
/// [`WRAP_BEFORE`] (the caller adds the `\\` continuations).
pub fn wrap_command(program: &str, args: &[String]) -> Vec<String> {
    let mut lines = vec![program.to_string()];
    for a in args {
        if WRAP_BEFORE.contains(&a.as_str()) {
            lines.push(a.clone());
        } else {
            let last = lines.last_mut().expect("never empty");
            last.push(' ');
            last.push_str(a);
        }
    }
    lines
}

/// Whether the copy on `disk` starts with exactly `image`.
fn copy_matches(disk: &Path, copy: ImageCopy, image: &[u8]) -> Result<bool> {
    let on_disk = read_copy(disk, copy)?;
    Ok(on_disk.len() >= image.len() && on_disk[..image.len()] == *image)
}

/// One line of step 1's inventory: a name column, then what it is.
fn item(name: &str, text: impl std::fmt::Display) {
    println!("  {name:<13} {text}");
}

/// A path for the transcript: relative to the current directory when under it.
fn shown(p: &Path) -> String {
    match std::env::current_dir() {
        Ok(cwd) => relative_to(p, &cwd).display().to_string(),
        Err(_) => p.display().to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use boot_core::cell::{BootRecord, FailureClass, RomInfo, ShimVersion, SitReport, decode};
    use imx_hab::hab::EventSummary;

    #[test]
    fn mem_file_holds_the_cell_at_its_address_and_is_sparse() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mem.bin");
        let mut cell = [0u8; CELL_SIZE];
        for (i, b) in cell.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        write_mem_file(&path, 0x90_1000, &cell).unwrap();
        let data = std::fs::read(&path).unwrap();
        assert_eq!(data.len(), 0x90_1000 + CELL_SIZE);
        assert_eq!(&data[0x90_1000..], &cell);
        assert!(data[..0x90_1000].iter().all(|&b| b == 0));
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let blocks = std::fs::metadata(&path).unwrap().blocks();
            assert!(blocks * 512 < 1 << 20, "not sparse: {blocks} blocks");
        }
        // Rewriting replaces the cell.
        let other = [0xAAu8; CELL_SIZE];
        write_mem_file(&path, 0x90_1000, &other).unwrap();
        assert_eq!(&std::fs::read(&path).unwrap()[0x90_1000..], &other);
    }

    #[test]
    fn cell_lines_name_slot_reason_and_verdicts() {
        let record = BootRecord {
            reason: Some(Reason::PrimaryFailed),
            primary: CopyReport::Rejected {
                class: FailureClass::ImageSignature,
                hab: EventSummary {
                    status: 0x33,
                    reason: 0x18,
                    context: 0xdb,
                    engine: 0,
                },
                part: Some(boot_core::examine::Part::Fit),
            },
            secondary: CopyReport::Authentic {
                hab: EventSummary {
                    status: 0xf0,
                    reason: 0,
                    context: 0,
                    engine: 0,
                },
                warnings: boot_core::examine::Warnings::default(),
            },
            sit: SitReport {
                status: SitStatus::Valid,
                first_sector: 0x1000,
            },
            rom: RomInfo::UNKNOWN,
            shim_version: ShimVersion::CURRENT,
            booted: Some([0x11; 32]),
            rollback_minimum: Some(0),
        };
        let cell = decode(&record.encode()).unwrap();
        let lines = cell_lines(&cell);
        assert_eq!(
            lines[0],
            "slot word 2 (the secondary was booted), reason primary-failed"
        );
        assert!(
            lines[1].starts_with("primary REJECTED (image-signature in the FIT; HAB_FAILURE"),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with("· SIT valid (firstSectorNumber 0x1000) · secondary authentic"),
            "{}",
            lines[1]
        );
        let mut bytes = record.encode();
        bytes[0x3C] ^= 1;
        let lines = cell_lines(&decode(&bytes).unwrap());
        assert_eq!(lines.len(), 1);
        assert!(lines[0].contains("no valid boot record"), "{}", lines[0]);
    }

    #[test]
    fn a_failed_check_stops_the_step_saying_expected_and_found() {
        let dir = tempfile::tempdir().unwrap();
        let mut demo = Demo::prepare(&DemoOptions {
            out: dir.path().to_path_buf(),
        })
        .unwrap();
        demo.step = 4;
        demo.check("fine", 0, 0);
        assert!(demo.end_step().is_ok());
        demo.check("cell word 0 = 2", 2, 1);
        let e = demo.end_step().unwrap_err();
        assert!(
            e.message()
                .contains("step 4: cell word 0 = 2: expected 2, found 1"),
            "{e}"
        );
        assert_eq!(demo.checks, 2);
    }

    #[test]
    fn commands_wrap_before_the_long_options() {
        let args: Vec<String> = [
            "-M",
            "imx8mp-evk",
            "-device",
            "loader,file=a",
            "-drive",
            "x",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            wrap_command("qemu", &args),
            ["qemu -M imx8mp-evk", "-device loader,file=a", "-drive x"]
        );
        assert_eq!(wrap_command("ubootctl", &[]), ["ubootctl"]);
    }

    #[test]
    fn status_fields_and_relative_paths() {
        let out = "board        qemu-imx8mp\nrunning      slot 2 (primary-failed)\nrunningx y\n";
        assert_eq!(
            status_field(out, "running"),
            Some("slot 2 (primary-failed)")
        );
        assert_eq!(status_field(out, "SIT"), None);
        assert_eq!(
            relative_to(Path::new("/w/d/pki/srk_fuse.bin"), Path::new("/w/d")),
            PathBuf::from("pki/srk_fuse.bin")
        );
        assert_eq!(
            relative_to(Path::new("/x/y"), Path::new("/w/d")),
            PathBuf::from("/x/y")
        );
    }
}
