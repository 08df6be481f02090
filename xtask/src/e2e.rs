//! `cargo xtask e2e`: the end-to-end scenarios of issue 6 (§2-§3) on the whole chain in QEMU.
//!
//! Two chains follow the shim ([`Chain`]): the real one (issue 17: TF-A BL31, U-Boot proper,
//! Linux loaded by U-Boot from the card's boot partition; module [`crate::e2e_chain`]) and
//! `linux-stand-in`, described next. The scenarios are the same on both.
//!
//! With the stand-in, QEMU runs the simulation contract (shim ELF, fuses, SD image on bus 1) and, with
//! `-device loader`, Debian's arm64 kernel `Image`, the EVK device tree prepared for a
//! bootloader-started kernel ([`crate::linux::chain_dtb`]) and a busybox initramfs, at the
//! addresses of `test-firmware`'s `linux-stand-in` contract ([`KERNEL_ADDR`], [`DTB_ADDR`],
//! [`INITRD_ADDR`]). These three are preloaded by the harness the way U-Boot would have loaded
//! them; everything before (ROM stand-in, shim, HAB authentication of the FIT, slot choice) and
//! after (Linux, `ubootctl`, the SD card) is the real code. The FIT payload is the stand-in
//! (its version marker patched: v1 and v2 flash.bin), which prints `stand-in: version V slot S
//! EL3`, starts Linux at EL2 and provides PSCI (SYSTEM_RESET = watchdog reset of the whole
//! chain in the same QEMU process; SYSTEM_OFF = QEMU exits 0).
//!
//! The initramfs carries `ubootctl` (static musl), `/v2.bin` and `/srk_hash.bin`; its `/init`
//! loads the SD and watchdog modules, waits for `/dev/mmcblk1`, then runs [`COMMAND_LOOP`]: a
//! console loop that prints [`MARK_READY`], reads one line, runs it with `sh -c` between
//! [`MARK_CMD_BEGIN`] and [`MARK_CMD_END`]` rc=N`. The harness types the commands of each boot
//! over the UART ([`Machine::run`]).
//!
//! | scenario | what is proved |
//! |---|---|
//! | a | v1/v1: status says slot 1, both authentic; `update /v2.bin`; `reboot -f` → the shim boots v2 from the primary, the secondary holds v1 |
//! | b | primary corrupted: the shim boots slot 2; status degraded (exit 1); `update` writes the primary only; reboot → slot 1 with v2 |
//! | c | power cut (QEMU SIGKILLed, guest paused first) at points chosen from `update --json` events; restart on the same SD: before the commit the secondary (v1) boots, from the commit on the primary (v2), and `ubootctl status` agrees with the shim; `update` completes; reboot → slot 1 with v2 |
//! | d | anti-rollback (module [`crate::e2e_rollback`]): minimum 1, update to epoch 2, reboot, sync, `commit` through `/dev/mem` (minimum 2), the fuses persisted across QEMU runs; `update` of epoch 1 refused, and an epoch-1 primary written on the host refused by the shim |

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::disk::{DiskSpec, ImageCopy, build_disk, flip_byte, primary_fit_data_offset, read_copy};
use crate::e2e_chain::{BootSplit, RealChain};
use crate::linux::{self, CMDLINE, ChainDt, InitSpec, LinuxArtifacts, loader_args};
use crate::qemu::{MarkerWait, Qemu, SimConfig};
use crate::sim::SimKit;
use crate::{Context, Error, Result, bail};

/// Where the harness preloads the kernel `Image` (the stand-in's contract).
pub const KERNEL_ADDR: u64 = 0x4048_0000;
/// Where the harness preloads the chain device tree.
pub const DTB_ADDR: u64 = 0x4300_0000;
/// Where the harness preloads the initramfs.
pub const INITRD_ADDR: u64 = 0x4380_0000;
/// The initramfs must end below this address.
pub const INITRD_LIMIT: u64 = 0x4400_0000;
/// RAM of the contract (`-m 1G`).
pub const MEMORY: u64 = 1 << 30;
/// The SD card of the contract (bus 1 = USDHC2) as Linux names it.
pub const MMC: &str = "/dev/mmcblk1";
/// The board name given to `ubootctl`.
pub const BOARD: &str = "qemu-imx8mp";

/// [`COMMAND_LOOP`] prints this when it waits for a command line.
pub const MARK_READY: &str = "E2E-READY";
/// [`COMMAND_LOOP`] prints this before it runs a command.
pub const MARK_CMD_BEGIN: &str = "E2E-CMD-BEGIN";
/// [`COMMAND_LOOP`] prints this, then `rc=N`, after a command.
pub const MARK_CMD_END: &str = "E2E-CMD-END";

/// The `/e2e.sh` of the scenarios: console echo off, then forever: print [`MARK_READY`], read
/// a line, run it with `sh -c` between [`MARK_CMD_BEGIN`] and [`MARK_CMD_END`] `rc=N`. The
/// command's stderr goes to a file (so `ubootctl` draws no progress bar) and is printed after
/// its stdout, each line prefixed with [`STDERR_PREFIX`].
pub const COMMAND_LOOP: &str = "#!/bin/sh
stty -echo 2>/dev/null
while true; do
    echo E2E-READY
    if ! IFS= read -r line; then sleep 1; continue; fi
    echo E2E-CMD-BEGIN
    sh -c \"$line\" 2>/tmp/e2e.err
    rc=$?
    sed 's/^/! /' /tmp/e2e.err
    echo \"E2E-CMD-END rc=$rc\"
done
";

/// The shim's watchdog period, seconds.
pub const WATCHDOG_S: u32 = 60;
/// The shim's first line after a reset: during a command it means an unexpected reset.
const SHIM_START: &str = "shim: watchdog armed";

/// [`COMMAND_LOOP`] prints a command's stderr lines after its stdout, with this prefix.
pub const STDERR_PREFIX: &str = "! ";

/// UART lines that end a wait with a failure.
const FATAL: &[&str] = &[
    "Kernel panic",
    "Unable to handle kernel",
    "Bad mode",
    "stand-in: panic",
    "shim: nothing bootable",
    linux::MARK_NO_MMC,
];

/// One of the scenarios of issue 6 §3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scenario {
    /// Boot, status, update, reboot into v2.
    A,
    /// Corrupted primary: fallback, degraded status, repair, reboot into slot 1.
    B,
    /// Power cuts during the update, restart, completion.
    C,
    /// Anti-rollback: update to epoch 2, reboot, commit, a downgrade refused by both.
    D,
}

impl Scenario {
    /// All scenarios, in order.
    pub const ALL: [Scenario; 4] = [Scenario::A, Scenario::B, Scenario::C, Scenario::D];

    /// `a`, `b` or `c`.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::A => "a",
            Scenario::B => "b",
            Scenario::C => "c",
            Scenario::D => "d",
        }
    }
}

impl FromStr for Scenario {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "a" => Ok(Scenario::A),
            "b" => Ok(Scenario::B),
            "c" => Ok(Scenario::C),
            "d" => Ok(Scenario::D),
            _ => Err(format!("unknown scenario {s:?} (a, b, c or d)")),
        }
    }
}

/// Options of [`run`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct E2eOptions {
    /// The download cache ([`linux::cache_dir`]).
    pub cache: PathBuf,
    /// Work directory (SD images, initramfs, UART logs); created.
    pub work: PathBuf,
    /// The scenarios to run, in order.
    pub scenarios: Vec<Scenario>,
    /// Echo the UART live with this prefix.
    pub echo: Option<String>,
    /// Which firmware follows the shim.
    pub chain: Chain,
    /// Boot from an eMMC in this layout instead of the SD card (issue 14, module
    /// [`crate::e2e_emmc`]; stand-in chain only).
    pub emmc: Option<boards::EmmcLayout>,
}

/// What the shim hands off to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Chain {
    /// The real chain: TF-A BL31, U-Boot proper, Linux loaded by U-Boot from the card
    /// (issue 17, [`crate::e2e_chain`]).
    #[default]
    Real,
    /// `linux-stand-in` (BL31 and U-Boot in one program of ours; the kernel preloaded by the
    /// harness): faster to build and to boot.
    StandIn,
}

impl Chain {
    /// `real` or `stand-in`.
    pub fn name(self) -> &'static str {
        match self {
            Chain::Real => "real",
            Chain::StandIn => "stand-in",
        }
    }
}

impl FromStr for Chain {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "real" => Ok(Chain::Real),
            "stand-in" => Ok(Chain::StandIn),
            _ => Err(format!("unknown chain {s:?} (real or stand-in)")),
        }
    }
}

/// What the harness built once for every scenario.
#[derive(Debug)]
pub struct Rig {
    /// Shim, PKI, fuses.
    pub kit: SimKit,
    /// flash.bin of version 1 at security epoch 1 (stand-in payload); also `/v1.bin` in the
    /// initramfs.
    pub v1: Vec<u8>,
    /// flash.bin of version 2 at security epoch 2 (stand-in payload); also `/v2.bin` in the
    /// initramfs.
    pub v2: Vec<u8>,
    /// The fuse block file.
    pub fuses: PathBuf,
    /// The Linux pieces.
    pub artifacts: LinuxArtifacts,
    /// The chain device tree.
    pub dtb: PathBuf,
    /// The initramfs.
    pub initrd: PathBuf,
    /// Work directory.
    pub work: PathBuf,
    /// UART echo prefix.
    pub echo: Option<String>,
    /// The real chain's parts; `None`: the stand-in.
    pub real: Option<RealChain>,
    /// The boot-time split of every real-chain boot of the rig's machines.
    pub splits: Arc<Mutex<Vec<BootSplit>>>,
    /// The eMMC layout the rig boots from (its fuse block selects the eMMC); `None`: the SD
    /// card.
    pub emmc: Option<boards::EmmcLayout>,
}

/// Timings of a whole [`run`].
#[derive(Debug, Clone, Default)]
pub struct E2eReport {
    /// Fetching (or finding) the download cache.
    pub fetch: Duration,
    /// Building ubootctl, the kit, the stand-in, the images and the initramfs.
    pub build: Duration,
    /// Each scenario and its wall time.
    pub scenarios: Vec<(Scenario, Duration)>,
    /// Number of boots of the chain (shim → stand-in → Linux) over all scenarios.
    pub boots: u32,
    /// The real chain's boot-time split of every boot.
    pub splits: Vec<BootSplit>,
}

/// Prints one transcript line.
pub(crate) fn say(s: impl AsRef<str>) {
    println!("{}", s.as_ref());
}

/// `expected` vs `found` as an error unless `ok`.
pub(crate) fn check(
    ok: bool,
    what: &str,
    expected: impl std::fmt::Display,
    found: impl std::fmt::Display,
) -> Result<()> {
    if ok {
        say(format!("  ok: {what}: {found}"));
        Ok(())
    } else {
        bail!("{what}: expected {expected}, found {found}")
    }
}

impl Rig {
    /// Fetches the Linux pieces, builds ubootctl (musl), the kit, the stand-in images v1 and
    /// v2, the chain DTB and the initramfs.
    pub fn build(opts: &E2eOptions, report: &mut E2eReport) -> Result<Rig> {
        let t0 = Instant::now();
        let artifacts = linux::fetch(&opts.cache, &mut |s| say(format!("e2e: {s}")))?;
        report.fetch = t0.elapsed();
        let t1 = Instant::now();
        say("e2e: building ubootctl for aarch64-unknown-linux-musl");
        let ubootctl = linux::build_ubootctl()?;
        let kit = SimKit::build(crate::pki::DEFAULT_SEED.as_bytes())?;
        let (v1, v2, firmware) = match opts.chain {
            Chain::StandIn => {
                say("e2e: simulation kit (shim, test PKI) and the linux-stand-in payload");
                let elf = crate::firmware::build_test_firmware("linux-stand-in")?;
                let stand_in = crate::sim::read_payload(&elf)?;
                let v1 = kit.flash_bin_epoch(&stand_in, 1, Some(1))?;
                (v1, kit.flash_bin_epoch(&stand_in, 2, Some(2))?, None)
            }
            Chain::Real => {
                say("e2e: simulation kit (shim, test PKI); TF-A and U-Boot from Debian's sources");
                let (fw, v1, v2) =
                    crate::e2e_chain::images(&kit, &mut |s| say(format!("e2e: {s}")))?;
                (v1, v2, Some(fw))
            }
        };
        std::fs::create_dir_all(&opts.work)
            .with_context(|| format!("creating {}", opts.work.display()))?;
        let fuses = opts.work.join("fuses.bin");
        kit.write_fuses(&fuses)?;
        if let Some(layout) = opts.emmc {
            crate::e2e_emmc::select_emmc(&fuses, layout)?;
        }
        let initrd = opts.work.join("initrd.cpio.gz");
        let mut spec = InitSpec::new(COMMAND_LOOP);
        if opts.emmc.is_some() {
            spec.mmc_device = Some(MMC.into());
        }
        spec.files.push(("v1.bin".into(), v1.clone()));
        spec.files.push(("v2.bin".into(), v2.clone()));
        spec.files
            .push(("srk_hash.bin".into(), kit.pki.srk_hash()?.to_vec()));
        linux::build_initramfs(&artifacts, &ubootctl, &spec, &initrd)?;
        let initrd_len = std::fs::metadata(&initrd)?.len();
        if INITRD_ADDR + initrd_len > INITRD_LIMIT {
            bail!(
                "the initramfs is {initrd_len} bytes: it must end below {INITRD_LIMIT:#x} (from {INITRD_ADDR:#x})"
            );
        }
        let original = std::fs::read(&artifacts.original_dtb)
            .with_context(|| format!("reading {}", artifacts.original_dtb.display()))?;
        let dtb_bytes = linux::chain_dtb(
            &original,
            &ChainDt {
                bootargs: match opts.emmc {
                    Some(_) => format!("{CMDLINE} {}", crate::e2e_emmc::KERNEL_ARGS),
                    None => CMDLINE.into(),
                },
                initrd: Some((INITRD_ADDR, initrd_len)),
                memory: MEMORY,
            },
        )?;
        let dtb = opts.work.join("chain.dtb");
        std::fs::write(&dtb, dtb_bytes)?;
        let real = match firmware {
            Some(fw) => Some(RealChain {
                stage: crate::e2e_chain::stage(
                    &fw,
                    &artifacts.kernel,
                    &artifacts.dtb,
                    &initrd,
                    &opts.work,
                )?,
                v1_id: crate::e2e_chain::identity(&v1)?,
                v2_id: crate::e2e_chain::identity(&v2)?,
                firmware: fw,
            }),
            None => None,
        };
        report.build = t1.elapsed();
        say(format!(
            "e2e: kernel {} {}, initramfs {} KiB (ubootctl, busybox, /v2.bin {} bytes, /srk_hash.bin), v1/v2 flash.bin {} bytes",
            artifacts.kernel_package,
            artifacts.kernel_version,
            initrd_len / 1024,
            v2.len(),
            v1.len()
        ));
        Ok(Rig {
            kit,
            v1,
            v2,
            fuses,
            artifacts,
            dtb,
            initrd,
            work: opts.work.clone(),
            echo: opts.echo.clone(),
            real,
            splits: Arc::default(),
            emmc: opts.emmc,
        })
    }

    /// A fresh SD image `name` with `primary` and `secondary`.
    pub(crate) fn disk(&self, name: &str, primary: &[u8], secondary: &[u8]) -> Result<PathBuf> {
        let disk = self.work.join(name);
        match &self.real {
            Some(real) => real.card(&disk, primary, secondary)?,
            None => build_disk(&disk, &DiskSpec::new(primary.to_vec(), secondary.to_vec()))?,
        }
        Ok(disk)
    }

    /// [`Rig::config`] with another fuse block. The real chain: nothing preloaded (U-Boot
    /// loads Linux from the card), and the memory U-Boot's board configuration expects.
    fn config_with(&self, disk: &Path, fuses: &Path) -> SimConfig {
        let mut c = self.kit.sim_config(fuses, disk);
        if self.real.is_some() {
            c.memory = crate::chain::MEMORY.into();
        } else {
            c.extra_args
                .extend(loader_args(&self.artifacts.kernel, KERNEL_ADDR));
            c.extra_args.extend(loader_args(&self.dtb, DTB_ADDR));
            c.extra_args.extend(loader_args(&self.initrd, INITRD_ADDR));
        }
        c.echo = self.echo.clone();
        c.timeout = Duration::from_secs(300);
        c
    }
}

/// What one boot of the chain showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Boot {
    /// The version the stand-in printed.
    pub version: u32,
    /// The slot the stand-in printed.
    pub slot: u32,
    /// The cell's slot word, read over QMP when the stand-in printed its line.
    pub cell_slot: u32,
    /// The SPL the ROM model started for this boot (`primary` or `secondary`): its last
    /// `rom: starting the …` line, which the cell's `rom.started` must agree with.
    pub rom_started: &'static str,
}

/// A running QEMU of the chain, driven over its console.
pub struct Machine {
    pub(crate) q: Qemu,
    log: PathBuf,
    boots: u32,
    /// The real chain's parts (`None`: the stand-in).
    real: Option<RealChain>,
    /// Where each real-chain boot's time split goes (the rig's).
    splits: Arc<Mutex<Vec<BootSplit>>>,
}

impl Machine {
    /// Starts QEMU on `disk`; the UART log goes to `log` when the machine ends.
    pub fn start(rig: &Rig, disk: &Path, log: PathBuf) -> Result<Machine> {
        Machine::start_with_fuses(rig, disk, &rig.fuses, log)
    }

    /// [`Machine::start`] with the fuse block `fuses` instead of the rig's.
    pub fn start_with_fuses(rig: &Rig, disk: &Path, fuses: &Path, log: PathBuf) -> Result<Machine> {
        Machine::start_config(rig, rig.config_with(disk, fuses), log)
    }

    /// Starts QEMU on `disk` with the rig's fuses and this eMMC attached.
    pub fn start_emmc(
        rig: &Rig,
        disk: &Path,
        emmc: crate::emmc::EmmcAttach,
        log: PathBuf,
    ) -> Result<Machine> {
        let mut c = rig.config_with(disk, &rig.fuses);
        c.emmc = Some(emmc);
        Machine::start_config(rig, c, log)
    }

    fn start_config(rig: &Rig, config: SimConfig, log: PathBuf) -> Result<Machine> {
        let q = Qemu::start(&config)?;
        Ok(Machine {
            q,
            log,
            boots: 0,
            real: rig.real.clone(),
            splits: rig.splits.clone(),
        })
    }

    /// Reads `len` bytes of guest physical memory over QMP (the guest keeps running).
    pub fn read_physical(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let r = self
            .q
            .qmp_session()
            .and_then(|q| q.read_physical(addr, len));
        r.map_err(|e| self.fail(format!("reading {len} bytes at {addr:#x} over QMP: {e}")))
    }

    /// The UART so far.
    pub fn uart(&self) -> String {
        self.q.uart()
    }

    fn save_log(&self) {
        let _ = std::fs::write(&self.log, self.q.uart());
    }

    /// An error carrying `what` and the last UART lines, the log saved.
    pub(crate) fn fail(&self, what: impl std::fmt::Display) -> Error {
        self.save_log();
        let uart = self.q.uart();
        let lines: Vec<&str> = uart.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        Error::msg(format!(
            "{what}\n--- last UART lines (full log: {}) ---\n{tail}\n--- QEMU stderr ---\n{}",
            self.log.display(),
            self.q.stderr().trim_end()
        ))
    }

    /// Waits for a line containing `marker`; a [`FATAL`] line, QEMU's exit or the deadline is
    /// an error.
    pub(crate) fn expect(&mut self, marker: &str) -> Result<String> {
        self.expect_with(marker, &[])
    }

    /// [`Machine::expect`] with more failure markers.
    pub(crate) fn expect_with(&mut self, marker: &str, fatal: &[&str]) -> Result<String> {
        let mut markers = vec![marker];
        markers.extend_from_slice(FATAL);
        if self.real.is_some() {
            markers.extend_from_slice(crate::e2e_chain::FATAL);
        }
        markers.extend_from_slice(fatal);
        match self.q.wait_for_any(&markers) {
            (Some(0), MarkerWait::Seen(line)) => Ok(line),
            (_, MarkerWait::Seen(line)) => {
                Err(self.fail(format!("waiting for `{marker}`: `{line}`")))
            }
            (_, w) => Err(self.fail(format!("waiting for `{marker}`: {w:?}"))),
        }
    }

    /// Waits for the next boot: the stand-in's line (version, slot; the cell read over QMP at
    /// that moment), then the command loop's first [`MARK_READY`].
    pub fn boot(&mut self) -> Result<Boot> {
        if self.real.is_some() {
            return self.boot_real();
        }
        let t = Instant::now();
        let line = self.expect("stand-in: version ")?;
        let cell = self.q.read_cell();
        let _ = self.q.resume();
        let cell = cell.map_err(|e| self.fail(format!("reading the cell over QMP: {e}")))?;
        let cell_slot = u32::from_le_bytes([cell[0], cell[1], cell[2], cell[3]]);
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |key: &str| {
            words
                .iter()
                .position(|w| *w == key)
                .and_then(|i| words.get(i + 1))
                .and_then(|v| v.parse::<u32>().ok())
        };
        let (Some(version), Some(slot)) = (num("version"), num("slot")) else {
            return Err(self.fail(format!("cannot read the stand-in line `{line}`")));
        };
        let rom_started = self.rom_started(&cell)?;
        let mmc = self.expect(linux::MARK_MMC)?;
        if !mmc.contains(MMC) {
            return Err(self.fail(format!("expected the SD card at {MMC}, found `{mmc}`")));
        }
        self.expect(MARK_READY)?;
        self.boots += 1;
        say(format!(
            "  [{:5.1} s] boot: ROM model -> {rom_started} SPL (shim) -> stand-in `version {version} slot {slot}`, cell slot {cell_slot}; Linux up, {MMC} present, shell ready ({:.1} s)",
            self.q.elapsed().as_secs_f64(),
            t.elapsed().as_secs_f64()
        ));
        Ok(Boot {
            version,
            slot,
            cell_slot,
            rom_started,
        })
    }

    /// The SPL the ROM model started for the boot whose cell is `cell`: its last
    /// `rom: starting the …` line, checked against the record's `rom.started` (the shim ran
    /// from the card's bytes and read what the ROM left, design.md §5.1).
    fn rom_started(&self, cell: &[u8]) -> Result<&'static str> {
        let uart = self.q.uart();
        let line = uart
            .lines()
            .rev()
            .find(|l| l.starts_with("rom: starting the "))
            .unwrap_or_default();
        let model = ["primary", "secondary"]
            .into_iter()
            .find(|n| line.starts_with(&format!("rom: starting the {n} SPL")));
        let record = boot_core::cell::decode(cell)
            .ok()
            .and_then(|c| c.record.ok())
            .and_then(|r| r.rom.started());
        let recorded = record.map(|s| match s {
            boot_core::policy::Slot::Primary => "primary",
            boot_core::policy::Slot::Secondary => "secondary",
        });
        match (model, recorded) {
            (Some(m), Some(r)) if m == r => Ok(m),
            (m, r) => Err(self.fail(format!(
                "the ROM model started the {m:?} SPL but the boot record says {r:?}"
            ))),
        }
    }

    /// [`Machine::boot`] on the real chain (module [`crate::e2e_chain`]): the shim's handoff
    /// line (slot), TF-A's and U-Boot's banners (the cell read over QMP at U-Boot's), the boot
    /// script, the kernel, `/init`, then [`MARK_READY`]; records the time split.
    fn boot_real(&mut self) -> Result<Boot> {
        use crate::e2e_chain as ec;
        let t = Instant::now();
        self.expect(SHIM_START)?;
        let t_shim = self.q.elapsed();
        let handoff = self.expect(ec::SHIM_HANDOFF)?;
        let t_handoff = self.q.elapsed();
        let slot = ec::handoff_slot(&handoff).map_err(|e| self.fail(e))?;
        let tfa = self.expect(ec::TFA_BANNER)?;
        let uboot = self.expect(ec::UBOOT_BANNER)?;
        let t_uboot = self.q.elapsed();
        let cell = self.q.read_cell();
        let _ = self.q.resume();
        let cell = cell.map_err(|e| self.fail(format!("reading the cell over QMP: {e}")))?;
        let cell_slot = u32::from_le_bytes([cell[0], cell[1], cell[2], cell[3]]);
        let rom_started = self.rom_started(&cell)?;
        let id = boot_core::cell::decode(&cell)
            .ok()
            .and_then(|c| c.record.ok())
            .and_then(|r| r.booted);
        let version = match (&self.real, id) {
            (Some(real), Some(id)) => real.version_of(&id),
            _ => 0,
        };
        self.expect(ec::UBOOT_WDT)?;
        self.expect(ec::SCRIPT_LINE)?;
        self.expect(ec::KERNEL_START)?;
        let t_kernel = self.q.elapsed();
        self.expect(ec::INIT_UP)?;
        let t_init = self.q.elapsed();
        let mmc = self.expect(linux::MARK_MMC)?;
        if !mmc.contains(MMC) {
            return Err(self.fail(format!("expected the SD card at {MMC}, found `{mmc}`")));
        }
        self.expect(MARK_READY)?;
        self.boots += 1;
        let split = BootSplit {
            shim: t_handoff.saturating_sub(t_shim),
            bl31: t_uboot.saturating_sub(t_handoff),
            uboot: t_kernel.saturating_sub(t_uboot),
            kernel: t_init.saturating_sub(t_kernel),
        };
        if let Ok(mut v) = self.splits.lock() {
            v.push(split);
        }
        say(format!(
            "  [{:5.1} s] boot: ROM model -> {rom_started} SPL (shim) slot {slot} -> `{}` -> `{}` (cell slot {cell_slot}, booted image v{version}) -> boot.scr -> Linux, {MMC} present, shell ready ({:.1} s)",
            self.q.elapsed().as_secs_f64(),
            tfa.trim(),
            uboot.trim(),
            t.elapsed().as_secs_f64()
        ));
        say(format!("    time split: {}", split.line()));
        Ok(Boot {
            version,
            slot,
            cell_slot,
            rom_started,
        })
    }

    pub(crate) fn send(&mut self, cmd: &str) -> Result<()> {
        say(format!("  # {cmd}"));
        self.q
            .send_uart(format!("{cmd}\n").as_bytes())
            .map_err(|e| self.fail(format!("typing `{cmd}`: {e}")))
    }

    /// Types `cmd` (the loop must be at [`MARK_READY`]), returns its output and exit status,
    /// and waits for the next [`MARK_READY`]. The output is printed, indented.
    pub fn run(&mut self, cmd: &str) -> Result<(String, i32)> {
        let start = self.q.uart().len();
        self.send(cmd)?;
        let end = self.expect_with(MARK_CMD_END, &[SHIM_START])?;
        let rc = end
            .split_once("rc=")
            .and_then(|(_, r)| r.trim().parse::<i32>().ok())
            .ok_or_else(|| self.fail(format!("bad end line `{end}`")))?;
        let uart = self.q.uart();
        let out = cmd_output(&uart[start.min(uart.len())..]);
        for l in out.lines() {
            say(format!("    {l}"));
        }
        say(format!("    (exit {rc})"));
        self.expect(MARK_READY)?;
        Ok((out, rc))
    }

    /// [`Machine::run`] of a command printing one JSON document.
    pub fn run_json(&mut self, cmd: &str) -> Result<(serde_json::Value, i32)> {
        let (out, rc) = self.run(cmd)?;
        let stdout: String = out
            .lines()
            .filter(|l| !l.starts_with(STDERR_PREFIX))
            .map(|l| format!("{l}\n"))
            .collect();
        let v = serde_json::from_str(stdout.trim())
            .map_err(|e| self.fail(format!("`{cmd}` did not print JSON ({e}): {out}")))?;
        Ok((v, rc))
    }

    /// Runs `ubootctl status --json` and checks it says what `want` says.
    pub fn expect_status(&mut self, want: Want) -> Result<()> {
        let (st, rc) = self.run_json(&status_cmd())?;
        check_status(&st, rc, want)
    }

    /// Types `reboot -f` and waits for the stand-in's PSCI SYSTEM_RESET line (the real chain:
    /// the kernel's restart line; TF-A's PSCI resets through WDOG1).
    pub fn reboot(&mut self) -> Result<()> {
        self.send("reboot -f")?;
        if self.real.is_some() {
            self.expect(crate::e2e_chain::KERNEL_RESTART)?;
            say("  PSCI SYSTEM_RESET (TF-A) -> watchdog reset (same QEMU process)");
            return Ok(());
        }
        self.expect("stand-in: PSCI SYSTEM_RESET")?;
        say("  PSCI SYSTEM_RESET -> watchdog reset (same QEMU process)");
        Ok(())
    }

    /// Types `poweroff -f`; QEMU must exit with 0 (PSCI SYSTEM_OFF).
    pub fn poweroff(mut self) -> Result<u32> {
        self.send("poweroff -f")?;
        self.expect(if self.real.is_some() {
            crate::e2e_chain::KERNEL_POWER_DOWN
        } else {
            "stand-in: PSCI SYSTEM_OFF"
        })?;
        let status = self.q.wait_exit();
        self.save_log();
        if status.and_then(|s| s.code()) != Some(0) {
            return Err(self.fail(format!(
                "expected QEMU to exit 0 after SYSTEM_OFF, found {status:?}"
            )));
        }
        say("  PSCI SYSTEM_OFF -> QEMU exited 0");
        Ok(self.boots)
    }

    /// Power cut: pauses the guest (QMP `stop`) and kills QEMU (SIGKILL).
    pub fn power_cut(mut self) -> u32 {
        let _ = self.q.pause();
        self.save_log();
        let boots = self.boots;
        drop(self.q);
        boots
    }
}

/// The lines between [`MARK_CMD_BEGIN`] and [`MARK_CMD_END`] in `uart`.
pub fn cmd_output(uart: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for l in uart.lines() {
        if l.contains(MARK_CMD_BEGIN) {
            inside = true;
        } else if l.contains(MARK_CMD_END) {
            break;
        } else if inside {
            out.push_str(l.trim_end_matches('\r'));
            out.push('\n');
        }
    }
    out
}

fn ubootctl(sub: &str, extra: &str) -> String {
    format!("ubootctl {sub}{extra} --device {MMC} --board {BOARD} --srk-hash /srk_hash.bin")
}

fn status_cmd() -> String {
    ubootctl("status", " --json")
}

pub(crate) fn json_u64(v: &serde_json::Value, path: &[&str]) -> Option<u64> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_u64()
}

fn json_bool(v: &serde_json::Value, path: &[&str]) -> Option<bool> {
    path.iter().try_fold(v, |v, k| v.get(k))?.as_bool()
}

pub(crate) fn check_boot(b: Boot, version: u32, slot: u32) -> Result<()> {
    check(
        b.version == version && b.slot == slot && b.cell_slot == slot,
        "boot",
        format!("version {version} slot {slot}, cell slot {slot}"),
        format!(
            "version {} slot {}, cell slot {}",
            b.version, b.slot, b.cell_slot
        ),
    )
}

/// What `ubootctl status --json` must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Want {
    /// The running slot.
    pub running: u64,
    /// Whether the primary is authentic.
    pub primary: bool,
    /// Whether the secondary is authentic.
    pub secondary: bool,
    /// `healthy` (exit 0) or degraded (exit 1).
    pub healthy: bool,
}

pub(crate) fn check_status(st: &serde_json::Value, rc: i32, w: Want) -> Result<()> {
    let found = (
        json_u64(st, &["running"]),
        json_bool(st, &["primary", "authentic"]),
        json_bool(st, &["secondary", "authentic"]),
        json_bool(st, &["healthy"]),
        rc,
    );
    let show = |r: Option<u64>, p: Option<bool>, s: Option<bool>, h: Option<bool>, rc: i32| {
        let opt = |v: Option<bool>| v.map_or("?".to_string(), |b| b.to_string());
        format!(
            "running {}, primary authentic {}, secondary authentic {}, healthy {} (exit {rc})",
            r.map_or("?".to_string(), |r| r.to_string()),
            opt(p),
            opt(s),
            opt(h)
        )
    };
    let want_rc = if w.healthy { 0 } else { 1 };
    check(
        found
            == (
                Some(w.running),
                Some(w.primary),
                Some(w.secondary),
                Some(w.healthy),
                want_rc,
            ),
        "ubootctl status",
        show(
            Some(w.running),
            Some(w.primary),
            Some(w.secondary),
            Some(w.healthy),
            want_rc,
        ),
        show(found.0, found.1, found.2, found.3, rc),
    )
}

/// Checks the copy on `disk` begins with `image`.
pub(crate) fn check_copy(disk: &Path, copy: ImageCopy, image: &[u8], name: &str) -> Result<()> {
    let bytes = read_copy(disk, copy)?;
    check(
        bytes.starts_with(image),
        &format!("SD image (host), {copy:?} copy"),
        name,
        if bytes.starts_with(image) {
            name
        } else {
            "something else"
        },
    )
}

fn scenario_a(rig: &Rig) -> Result<u32> {
    say("\n=== scenario a: boot, status, update to v2, reboot into v2 ===");
    let disk = rig.disk("a-sd.img", &rig.v1, &rig.v1)?;
    say("  SD image: v1 in the primary and the secondary");
    let mut m = Machine::start(rig, &disk, rig.work.join("a.uart.log"))?;
    check_boot(m.boot()?, 1, 1)?;
    let (wdt, _) = m.run("grep -o '^imx2_wdt .* Live' /proc/modules; ls /dev/watchdog0")?;
    check(
        wdt.contains("imx2_wdt") && wdt.contains("/dev/watchdog0"),
        "imx2_wdt loaded",
        "imx2_wdt live and /dev/watchdog0",
        wdt.lines().next().unwrap_or("nothing"),
    )?;
    say(format!(
        "  the shim armed the watchdog for {} s (WDE is write-once); nothing in userspace opens /dev/watchdog0,",
        WATCHDOG_S
    ));
    say("  so only the kernel's imx2_wdt (WDOG_HW_RUNNING) can keep this boot alive past it:");
    let (up, rc) = m.run(&format!(
        "sleep {}; cut -d' ' -f1 /proc/uptime",
        WATCHDOG_S + 5
    ))?;
    check(
        rc == 0
            && up
                .trim()
                .parse::<f64>()
                .is_ok_and(|u| u > WATCHDOG_S as f64),
        "still up after the watchdog period, no reset",
        format!("uptime > {WATCHDOG_S} s"),
        format!("uptime {} s", up.trim()),
    )?;
    m.expect_status(Want {
        running: 1,
        primary: true,
        secondary: true,
        healthy: true,
    })?;
    let (_, rc) = m.run(&ubootctl("update /v2.bin", ""))?;
    check(rc == 0, "ubootctl update exit", 0, rc)?;
    m.reboot()?;
    check_boot(m.boot()?, 2, 1)?;
    say(
        "  v2 runs from the primary; the secondary still holds v1, so status reports the fallback as",
    );
    say("  differing (degraded, exit 1) and recommends `ubootctl sync` once v2 is known good:");
    m.expect_status(Want {
        running: 1,
        primary: true,
        secondary: true,
        healthy: false,
    })?;
    let boots = m.poweroff()?;
    check_copy(&disk, ImageCopy::Primary, &rig.v2, "v2")?;
    check_copy(&disk, ImageCopy::Secondary, &rig.v1, "v1")?;
    Ok(boots)
}

fn scenario_b(rig: &Rig) -> Result<u32> {
    say("\n=== scenario b: corrupted primary, fallback to slot 2, repair, back to slot 1 ===");
    let disk = rig.disk("b-sd.img", &rig.v1, &rig.v1)?;
    let at = primary_fit_data_offset(&disk)?;
    let old = flip_byte(&disk, at)?;
    say(format!(
        "  SD image: v1/v1, then the byte at {at:#x} (primary FIT data) flipped: {old:#04x} -> {:#04x}",
        old ^ 0xff
    ));
    let secondary_before = read_copy(&disk, ImageCopy::Secondary)?;
    let mut m = Machine::start(rig, &disk, rig.work.join("b.uart.log"))?;
    check_boot(m.boot()?, 1, 2)?;
    m.expect_status(Want {
        running: 2,
        primary: false,
        secondary: true,
        healthy: false,
    })?;
    let (out, rc) = m.run(&ubootctl("update /v2.bin", " --json"))?;
    check(rc == 0, "ubootctl update exit", 0, rc)?;
    let writes: Vec<String> = out
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["event"] == "step")
        .filter_map(|v| v["action"].as_str().map(str::to_string))
        .filter(|a| a.starts_with("write"))
        .collect();
    check(
        !writes.is_empty() && writes.iter().all(|w| w.contains("primary")),
        "update writes",
        "the primary only",
        writes.join("; "),
    )?;
    m.reboot()?;
    check_boot(m.boot()?, 2, 1)?;
    m.expect_status(Want {
        running: 1,
        primary: true,
        secondary: true,
        healthy: false,
    })?;
    let boots = m.poweroff()?;
    check_copy(&disk, ImageCopy::Primary, &rig.v2, "v2")?;
    let secondary_after = read_copy(&disk, ImageCopy::Secondary)?;
    check(
        secondary_before == secondary_after,
        "SD image (host), secondary",
        "unchanged (v1)",
        if secondary_before == secondary_after {
            "unchanged (v1)"
        } else {
            "changed"
        },
    )?;
    Ok(boots)
}

/// Where scenario c cuts the power, from the `ubootctl update --json` events on the UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutPoint {
    /// When the step event with this index appears (the steps before it are done).
    BeforeStep(u64),
    /// When the `done` event appears (every step written, flushed and read back).
    AfterCommit,
}

impl std::fmt::Display for CutPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CutPoint::BeforeStep(i) => write!(f, "at the start of step {i}"),
            CutPoint::AfterCommit => write!(f, "right after the commit (`done` event)"),
        }
    }
}

impl CutPoint {
    /// The boot expected after a cut here, `(version, slot)`: before the commit the primary's
    /// IVT is zero, so the shim (like the ROM) refuses it and boots the secondary (v1); from
    /// the commit write on, the primary is v2. (In QEMU the SD model writes through to the
    /// image file at once, so a commit issued but not flushed has reached the medium.)
    pub fn expected_boot(self) -> (u32, u32) {
        match self {
            CutPoint::BeforeStep(i) if i <= 5 => (1, 2),
            _ => (2, 1),
        }
    }
}

/// The cut points of scenario c. The plan of `update /v2.bin` on a v1/v1 card running slot 1
/// has 8 steps: 0 write primary invalidate, 1 flush, 2 write primary body, 3 write primary
/// first block without IVT, 4 flush, 5 write primary commit (IVT), 6 flush, 7 read back.
pub const CUT_POINTS: &[CutPoint] = &[
    // The primary's header invalidated: no primary, the secondary (v1) must boot.
    CutPoint::BeforeStep(1),
    // The body written, the header still invalid.
    CutPoint::BeforeStep(3),
    // The commit write issued, not yet flushed.
    CutPoint::BeforeStep(6),
    // Everything written, flushed and read back; the result not printed yet.
    CutPoint::AfterCommit,
];

fn scenario_c(rig: &Rig) -> Result<u32> {
    say("\n=== scenario c: power cuts during the update, restart, completion ===");
    let mut boots = 0;
    for (n, cut) in CUT_POINTS.iter().enumerate() {
        say(format!("\n--- c{}: power cut {cut} ---", n + 1));
        let disk = rig.disk(&format!("c{}-sd.img", n + 1), &rig.v1, &rig.v1)?;
        let mut m = Machine::start(rig, &disk, rig.work.join(format!("c{}-1.uart.log", n + 1)))?;
        check_boot(m.boot()?, 1, 1)?;
        // The pause after each step's announcement makes the cut land before that step's I/O
        // (without it the guest can run a few small steps ahead of the harness's QMP stop).
        let cmd = ubootctl("update /v2.bin", " --json --test-step-delay-ms 400");
        m.send(&cmd)?;
        let mut cut_at = None;
        while cut_at.is_none() {
            let line = m.expect("\"event\":")?;
            let Some(json) = line.find('{').map(|i| &line[i..]) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(json) else {
                continue;
            };
            say(format!("    {json}"));
            let hit = match cut {
                CutPoint::BeforeStep(i) => v["event"] == "step" && v["index"].as_u64() == Some(*i),
                CutPoint::AfterCommit => v["event"] == "done",
            };
            if v["event"] == "result" {
                return Err(m.fail(format!("the update ended before the cut point ({cut})")));
            }
            if hit {
                cut_at = Some(m.q.elapsed());
            }
        }
        boots += m.power_cut();
        say(format!(
            "  POWER CUT: guest paused and QEMU killed (SIGKILL) at {:.1} s",
            cut_at.unwrap_or_default().as_secs_f64()
        ));
        let mut m = Machine::start(rig, &disk, rig.work.join(format!("c{}-2.uart.log", n + 1)))?;
        say("  QEMU restarted on the same SD image");
        let b = m.boot()?;
        let (want_version, want_slot) = cut.expected_boot();
        check(
            b.slot == want_slot && b.version == want_version && b.cell_slot == b.slot,
            "boot after the cut",
            format!("version {want_version} slot {want_slot}, cell slot {want_slot}"),
            format!(
                "version {} slot {}, cell slot {}",
                b.version, b.slot, b.cell_slot
            ),
        )?;
        let (st, rc) = m.run_json(&status_cmd())?;
        let primary_ok = st["primary"]["authentic"] == true;
        // Pairing (design.md §5.1): an SPL the ROM started from the secondary boots the
        // secondary's FIT here (it is intact), and ubootctl reads the same ROM facts.
        check(
            (b.rom_started == "primary" || b.slot == 2) && st["rom"]["started"] == b.rom_started,
            "the ROM's start, the slot and ubootctl status agree",
            format!(
                "rom.started {} in status; slot 2 if the secondary SPL ran",
                b.rom_started
            ),
            format!("rom {}, slot {}", st["rom"], b.slot),
        )?;
        check(
            json_u64(&st, &["running"]) == Some(u64::from(b.slot))
                && primary_ok == (b.slot == 1)
                && st["secondary"]["authentic"] == true,
            "ubootctl status after the cut agrees with the shim",
            format!(
                "running {}, primary authentic {}, secondary authentic true",
                b.slot,
                b.slot == 1
            ),
            format!(
                "running {}, primary authentic {}, secondary authentic {} (exit {rc})",
                st["running"], st["primary"]["authentic"], st["secondary"]["authentic"]
            ),
        )?;
        let (_, rc) = m.run(&ubootctl("update /v2.bin", ""))?;
        check(rc == 0, "ubootctl update exit", 0, rc)?;
        m.reboot()?;
        let b = m.boot()?;
        // A warm reset in the same QEMU process: the shim cleared PERSIST_SECONDARY_BOOT, so
        // the ROM tries the repaired primary first (design.md §5.1).
        check(
            b.rom_started == "primary",
            "the ROM starts the repaired primary SPL after the warm reboot",
            "primary",
            b.rom_started,
        )?;
        check_boot(b, 2, 1)?;
        m.expect_status(Want {
            running: 1,
            primary: true,
            secondary: true,
            healthy: false,
        })?;
        boots += m.poweroff()?;
        check_copy(&disk, ImageCopy::Primary, &rig.v2, "v2")?;
    }
    Ok(boots)
}

/// Builds the rig and runs the scenarios in order; the first failure ends the run with an
/// error naming what was expected and what was found (and the UART log).
pub fn run(opts: &E2eOptions) -> Result<E2eReport> {
    let mut report = E2eReport::default();
    if opts.emmc.is_some()
        && (opts.chain != Chain::StandIn || opts.scenarios.contains(&Scenario::D))
    {
        bail!("the eMMC scenarios are a, b and c on the stand-in chain (--chain stand-in)");
    }
    let rig = Rig::build(opts, &mut report)?;
    for s in &opts.scenarios {
        let t = Instant::now();
        let boots = match (s, rig.emmc) {
            (_, Some(layout)) => crate::e2e_emmc::scenario(&rig, layout, *s),
            (Scenario::A, None) => scenario_a(&rig),
            (Scenario::B, None) => scenario_b(&rig),
            (Scenario::C, None) => scenario_c(&rig),
            (Scenario::D, None) => crate::e2e_rollback::scenario_d(&rig),
        }
        .map_err(|e| e.context(format!("scenario {} failed", s.name())))?;
        report.boots += boots;
        report.scenarios.push((*s, t.elapsed()));
        if let Ok(v) = rig.splits.lock() {
            report.splits = v.clone();
        }
        say(format!(
            "=== scenario {}: PASS ({boots} boots, {:.1} s) ===",
            s.name(),
            t.elapsed().as_secs_f64()
        ));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_output_is_cut_between_markers() {
        let uart = "E2E-READY\nE2E-CMD-BEGIN\n{\n\"a\": 1\n}\nE2E-CMD-END rc=1\nE2E-READY\n";
        assert_eq!(cmd_output(uart), "{\n\"a\": 1\n}\n");
    }

    #[test]
    fn scenarios_parse() {
        assert_eq!("B".parse::<Scenario>(), Ok(Scenario::B));
        assert_eq!("d".parse::<Scenario>(), Ok(Scenario::D));
        assert!("e".parse::<Scenario>().is_err());
    }

    #[test]
    fn loop_prints_the_markers() {
        for m in [MARK_READY, MARK_CMD_BEGIN, MARK_CMD_END] {
            assert!(COMMAND_LOOP.contains(m));
        }
    }
}
