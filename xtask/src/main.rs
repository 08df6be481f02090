//! `cargo xtask`: build, test and simulation tasks for imx-redundant-boot.
//!
//! Each subcommand is documented by its clap doc comment (`cargo xtask --help`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::Duration;

use clap::{Parser, Subcommand};
use xtask::disk::{DiskSpec, SitMode};
use xtask::firmware::{FIRMWARE_TARGET, build_spl, cargo};
use xtask::qemu::{SimConfig, Stop};
use xtask::sim::SimKit;
use xtask::{Context, workspace_root};

/// Build, test and simulation tasks for imx-redundant-boot.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// The README's test command: format check, clippy (warnings are errors), the `no_std`
    /// builds for aarch64-unknown-none, our QEMU (built once and cached), every workspace
    /// test, then the end-to-end scenarios with Linux in QEMU (`e2e`).
    Test,
    /// Builds our QEMU 10.0.2 (Debian's source, `patches/qemu/`; cached under
    /// target/thirdparty/qemu) and prints the binary's path as the last line. Every QEMU run
    /// of the tests, the demo and `e2e` uses it (XTASK_QEMU names another binary).
    Qemu,
    /// Issue 13's side-by-side power-cut sweep: `ubootctl update`, `rauc install` through
    /// integrations/rauc/ubootctl-hook, RAUC's `boot-raw-fallback` slot and AN12900's two `dd`s,
    /// each run for real under strace on an SD image from three starting states; the state
    /// after every write call is scored by the shim's judgement. Prints the README's table.
    /// Needs root, strace, rauc, dbus-run-session and openssl (`.ci/setup`).
    PowercutCompare {
        /// Judge a sample of each run's cut points (the first and last 16 and about 200 spread
        /// over it) instead of every one: the default test's version.
        #[arg(long)]
        quick: bool,
        /// Scratch directory (SD image, bundles, traces).
        #[arg(long, default_value = "target/powercut-compare")]
        out: PathBuf,
    },
    /// Figures: the firmware's `.text`/`.rodata`/`.bss` (it links the software HAB4 verifier),
    /// then the host benchmarks (`cargo bench -p imx-hab`: 2 MiB verification against
    /// `openssl dgst` + `openssl cms -verify`, SHA-256 against `sha256sum`).
    Bench {
        /// Only the firmware figures (sizes, boot time and SHA-256 in QEMU), not the host
        /// benchmarks.
        #[arg(long)]
        firmware: bool,
    },
    /// Builds the shim firmware for a board; prints the ELF's path as the last line.
    BuildSpl {
        /// `qemu-imx8mp` or `imx8mm-evk`.
        #[arg(long, default_value = "qemu-imx8mp")]
        board: String,
    },
    /// Builds simulation images in DIR: fuses.bin (closed part, the PKI's SRK hash), one
    /// flash.bin per version (signed shim SPL + signed FIT at 0x57C00), and sd.img (SIT,
    /// primary = first version, secondary = second version). Generates the test PKI in
    /// DIR/pki unless --pki names one.
    Image {
        /// Output directory (created).
        #[arg(long)]
        out: PathBuf,
        /// PKI directory in cst's layout; generated there (from --seed) if it has none.
        #[arg(long)]
        pki: Option<PathBuf>,
        /// Seed of a generated test PKI.
        #[arg(long, default_value = xtask::pki::DEFAULT_SEED)]
        seed: String,
        /// Image versions: the first goes to the primary slot, the second to the secondary
        /// (default: 1 2). One version puts it in both slots.
        #[arg(long = "version", num_args = 1)]
        versions: Vec<u32>,
        /// Security epoch (`rollback-index` in the FIT's default configuration) per version,
        /// in the order of --version; one value applies to every version (default: no
        /// `rollback-index`, epoch 0).
        #[arg(long = "epoch", num_args = 1)]
        epochs: Vec<u32>,
        /// Version the shim SPL reports (its version stamp, set before signing), per version in
        /// the order of --version; one value applies to every version (default: the crate's).
        #[arg(long = "shim-version", num_args = 1, value_parser = parse_shim_version)]
        shim_versions: Vec<boot_core::cell::ShimVersion>,
        /// Minimum epoch burned into fuses.bin's rollback bits (its lowest N bits; 0..=64).
        #[arg(long, default_value_t = 0)]
        rollback_min: u32,
        /// Payload (flat binary, or ELF linked at 0x40200000) for the FIT; give twice for
        /// different primary/secondary payloads. Default: test-firmware's test-payload if it
        /// exists, else a tiny placeholder.
        #[arg(long = "payload", num_args = 1)]
        payloads: Vec<PathBuf>,
        /// The real chain's FIT instead of a payload: U-Boot proper at 0x40200000, its device
        /// tree, TF-A BL31 at 0x970000 as the entry image (NXP's layout), both built from
        /// Debian's source packages with our QEMU patches (cached under target/thirdparty;
        /// the first build takes minutes). U-Boot needs `-m 2G` in QEMU.
        #[arg(long, conflicts_with = "payloads")]
        real_chain: bool,
        /// Shim ELF to use instead of building it.
        #[arg(long)]
        elf: Option<PathBuf>,
        /// SD image size in MiB (a power of two; >= 4096 makes an SDHC card).
        #[arg(long, default_value_t = 64)]
        disk_mib: u64,
        /// The SIT's firstSectorNumber (where the secondary goes); decimal or 0x hex.
        #[arg(long, default_value = "0x1000", value_parser = parse_u32)]
        first_sector: u32,
        /// Leave the SIT sector empty.
        #[arg(long)]
        no_sit: bool,
        /// Also write emmc.img (64 MiB, 4 MiB boot partitions) in eMMC layout `a` (AN12900
        /// inside boot0: SIT firstSectorNumber 0xFDF) or `b` (primary in boot0, secondary in
        /// boot1), and make fuses.bin's BOOT_CFG select the eMMC (design.md §5.5).
        #[arg(long, value_parser = xtask::emmc::parse_layout)]
        emmc: Option<boards::EmmcLayout>,
        /// With --emmc: the ROM model falls back from one boot partition to the other
        /// (BOOT_CFG bit 17; default: it does not, the worse case).
        #[arg(long, requires = "emmc")]
        rom_cross_fallback: bool,
    },
    /// Damages an SD image in place by flipping one byte (XOR 0xFF) of a copy's part; prints
    /// the offset.
    Corrupt {
        /// SD image.
        #[arg(long)]
        disk: PathBuf,
        /// Which part: fit-data (middle of the FIT's first image), fit-ivt, fit-csf, spl-csf,
        /// spl-code (middle of the SPL's signed code: the ROM refuses that SPL), or sit-tag
        /// (the copy is ignored).
        #[arg(long, value_parser = ["fit-data", "fit-ivt", "fit-csf", "spl-csf", "spl-code", "sit-tag"])]
        part: String,
        /// Which copy: primary or secondary.
        #[arg(long, default_value = "primary", value_parser = ["primary", "secondary"])]
        copy: String,
    },
    /// Runs the QEMU contract on an SD image, shows the UART and the boot cell.
    Sim {
        /// SD image (QEMU writes through to it).
        #[arg(long)]
        disk: PathBuf,
        /// The 64-byte fuse block.
        #[arg(long)]
        fuses: PathBuf,
        /// The firmware QEMU starts at reset (default: build test-firmware's rom-model, the
        /// boot ROM model that loads the SPL from the card; the shim runs from the card's
        /// bytes).
        #[arg(long)]
        rom: Option<PathBuf>,
        /// The shim ELF the card's SPL was built from, to decode its defmt log (QEMU does not
        /// load it; default: build it for qemu-imx8mp, as `image` does).
        #[arg(long)]
        elf: Option<PathBuf>,
        /// Hard timeout in seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Stop at the first UART line containing this text, then read the cell and quit.
        /// Default: wait for the test payload's "press a key" line (read the cell, send a key,
        /// wait for its semihosting exit) or the shim's halt line (read the cell, quit).
        #[arg(long)]
        marker: Option<String>,
        /// eMMC image to attach on uSDHC3 (boot partitions 4 MiB; the SD card stays on bus 1).
        #[arg(long)]
        emmc: Option<PathBuf>,
        /// EXT_CSD[179] the eMMC starts with (QEMU `boot-config`): 0x48 boot0, 0x50 boot1.
        #[arg(long, default_value = "0x48", value_parser = parse_u32, requires = "emmc")]
        emmc_boot_config: u32,
        /// Extra QEMU arguments (after --).
        #[arg(last = true)]
        qemu_args: Vec<String>,
    },
    /// The mission end to end, narrated: test PKI, shim and payload built, v1/v2 signed, SD
    /// image (primary v2, secondary v1); boot slot 1; `ubootctl status`/`sync`; a flipped byte
    /// in the primary; boot falls back to slot 2; `ubootctl update` repairs the primary; boot
    /// slot 1. Exit status 0 only if every step's checks held.
    Demo {
        /// Work directory (created; a second run reuses its PKI).
        #[arg(long, default_value = xtask::demo::DEFAULT_OUT)]
        out: PathBuf,
    },
    /// Runs the shim on a board over a debug probe (probe-rs): loads the ELF into OCRAM, starts
    /// core 0 at its entry and prints the defmt log decoded from the board's console UART.
    /// Needs a JTAG probe on the board (README "Bring-up over JTAG"). Exit status 2 when there
    /// is nothing to run on (no probe, no chip description), 1 when the probe or target fails.
    Run {
        /// Board (`boards` crate); one with a chip description under boards/probe-rs/.
        #[arg(long, default_value = "imx8mm-evk")]
        board: String,
        /// Load and start over a debug probe (the only way `run` works; QEMU: `sim`).
        #[arg(long)]
        probe: bool,
        /// Shim ELF to load instead of building it for the board.
        #[arg(long)]
        elf: Option<PathBuf>,
        /// The board's console UART on this host.
        #[arg(long, default_value = "/dev/ttyUSB0")]
        serial: PathBuf,
        /// Seconds to stream the log.
        #[arg(long, default_value_t = 30)]
        seconds: u64,
    },
    /// End to end with Linux (issues 6, 17): by default the real chain, the shim boots TF-A's
    /// BL31, which starts U-Boot proper (both built from Debian's sources), which loads Debian's
    /// arm64 kernel from the card's boot partition; `--chain stand-in` boots the linux-stand-in
    /// FIT payload instead, with the kernel preloaded by the harness. `ubootctl` in Linux reads
    /// the cell and updates the SD card. Scenarios: a (status, update to v2, reboot into v2), b
    /// (corrupted primary: fallback, degraded status, repair), c (power cuts during the update,
    /// restart, completion), d (anti-rollback). `--prepare` only downloads/caches
    /// the Linux pieces and builds ubootctl; `--smoke` boots the kernel with `-kernel` and checks
    /// `ubootctl status` only.
    E2e {
        /// Boot Linux and check `ubootctl status` (else only prepare).
        #[arg(long)]
        smoke: bool,
        /// Only fetch the cache and build ubootctl.
        #[arg(long, conflicts_with = "smoke")]
        prepare: bool,
        /// Run only these scenarios (a, b, c, d; repeatable); default all.
        #[arg(long, conflicts_with_all = ["smoke", "prepare"])]
        scenario: Vec<xtask::e2e::Scenario>,
        /// What follows the shim: `real` (TF-A BL31 and U-Boot proper built from Debian's
        /// sources, Linux loaded by U-Boot from the card's boot partition) or `stand-in`
        /// (test-firmware's linux-stand-in, the kernel preloaded by the harness).
        #[arg(long, default_value = "real")]
        chain: xtask::e2e::Chain,
        /// Boot from an eMMC in layout `a` (AN12900 inside boot0) or `b` (A/B across
        /// boot0/boot1) instead of the SD card; scenarios a, b, c on the stand-in chain.
        #[arg(long, value_parser = xtask::emmc::parse_layout)]
        emmc: Option<boards::EmmcLayout>,
        /// Echo the UART live (prefix `uart| `).
        #[arg(long)]
        verbose: bool,
        /// Download cache (default target/e2e-cache).
        #[arg(long)]
        cache: Option<PathBuf>,
        /// Work directory (SD images, initramfs, UART logs).
        #[arg(long, default_value = "target/e2e")]
        out: PathBuf,
    },
}

/// Crates that must build for bare metal without std or alloc.
const NO_STD_CRATES: &[&str] = &[
    "imx-hab",
    "boards",
    "boot-core",
    "spl-shim",
    "test-firmware",
];
/// The firmware packages: the shim, and the test firmware (test payload, Linux stand-in, driver
/// self-test, SHA bench). `cargo xtask test` links them for qemu-imx8mp and runs clippy on them
/// for imx8mm-evk.
const FIRMWARE_PACKAGES: &[&str] = &["spl-shim", "test-firmware"];
/// Runs one step, printing what it runs; returns whether it succeeded.
fn step(title: &str, mut cmd: Command) -> bool {
    eprintln!("\n==> {title}\n    $ {cmd:?}");
    match cmd.status() {
        Ok(s) if s.success() => true,
        Ok(s) => {
            eprintln!("xtask: {title} failed ({s})");
            false
        }
        Err(e) => {
            eprintln!("xtask: cannot run {title}: {e}");
            false
        }
    }
}

fn test() -> bool {
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--", "--check"]);
    let mut clippy = cargo();
    clippy.args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]);
    let mut no_std = cargo();
    no_std.args(["clippy", "--target", FIRMWARE_TARGET]);
    for c in NO_STD_CRATES {
        no_std.args(["-p", c]);
    }
    no_std.args(["--", "-D", "warnings"]);
    // The firmware link proves the no_std crates need no allocator (none is defined).
    let mut firmware = cargo();
    firmware.args([
        "build",
        "--profile",
        "firmware",
        "--target",
        FIRMWARE_TARGET,
    ]);
    // Both boards must build (the imx8mm-evk firmware links the ROM HAB binding).
    let mut imx8mm = cargo();
    imx8mm.args(["clippy", "--target", FIRMWARE_TARGET]);
    for c in FIRMWARE_PACKAGES {
        firmware.args(["-p", c]);
        imx8mm.args(["-p", c]);
    }
    imx8mm.args(["--features", "imx8mm-evk", "--", "-D", "warnings"]);
    // The shim alone: its defmt build (the joint builds above take test-firmware's `text-log`),
    // then the plain-text build (feature text-log), both linked.
    let mut shim_defmt = cargo();
    shim_defmt.args(["clippy", "--target", FIRMWARE_TARGET, "-p", "spl-shim"]);
    shim_defmt.args(["--", "-D", "warnings"]);
    let mut shim_text = cargo();
    shim_text.args([
        "build",
        "--profile",
        "firmware",
        "--target",
        FIRMWARE_TARGET,
        "-p",
        "spl-shim",
        "--features",
        "text-log",
    ]);
    let mut tests = cargo();
    tests.args(["test", "--workspace"]);
    step("format check", fmt)
        && step("clippy", clippy)
        && step(
            "no_std crates for aarch64-unknown-none (clippy, includes the ROM binding)",
            no_std,
        )
        && step(
            "firmware for imx8mm-evk (clippy, links the ROM HAB binding)",
            imx8mm,
        )
        && step("firmware link without an allocator", firmware)
        && step(
            "the shim's defmt build (clippy, spl-shim alone)",
            shim_defmt,
        )
        && step("the shim's plain-text build (feature text-log)", shim_text)
        && our_qemu()
        && run_tests(tests)
        && end_to_end()
}

/// Builds our QEMU before the tests run it (cached; a fresh build takes a few minutes), and
/// prints how long that took.
fn our_qemu() -> bool {
    eprintln!("\n==> our QEMU (target/thirdparty/qemu; built once, then cached)");
    let t0 = std::time::Instant::now();
    let Some(bin) = report(xtask::thirdparty::qemu::ensure()) else {
        return false;
    };
    println!(
        "qemu: {} ({:.0} s)",
        bin.display(),
        t0.elapsed().as_secs_f64()
    );
    true
}

/// `cargo xtask powercut-compare`: builds ubootctl, runs the comparison, prints the table.
fn powercut_compare(quick: bool, out: PathBuf) -> bool {
    let Some(ubootctl) = report(xtask::powercut::build_ubootctl()) else {
        return false;
    };
    let t0 = std::time::Instant::now();
    let opts = xtask::powercut::Options {
        out,
        quick,
        ubootctl,
    };
    let Some(rows) = report(xtask::powercut::run(&opts)) else {
        return false;
    };
    println!("\n{}", xtask::powercut::table(&rows));
    println!(
        "powercut-compare: {} runs, {:.1} s{}",
        rows.len(),
        t0.elapsed().as_secs_f64(),
        if quick {
            " (--quick: sampled cut points)"
        } else {
            ""
        }
    );
    true
}

/// The end-to-end scenarios with Linux. a, b and c on the real chain (shim -> TF-A BL31 ->
/// U-Boot -> Debian kernel -> ubootctl; TF-A and U-Boot built once and cached under
/// `target/thirdparty`); d (anti-rollback) on the stand-in: what it proves is the shim's and
/// ubootctl's judgement of epochs and fuses, which does not depend on what follows the shim,
/// and its three boots are faster there. The Linux pieces are downloaded once into
/// `target/e2e-cache` (needs root and apt).
fn end_to_end() -> bool {
    use xtask::e2e::{Chain, Scenario};
    let target = workspace_root().join("target");
    eprintln!("\n==> end to end with Linux in QEMU, real chain (scenarios a, b, c)");
    let real = vec![Scenario::A, Scenario::B, Scenario::C];
    let ok = report(e2e(
        false,
        false,
        E2eRuns {
            scenarios: real,
            chain: Chain::Real,
            emmc: None,
        },
        false,
        None,
        target.join("e2e-real"),
    ))
    .is_some();
    println!("e2e (real chain): {}", if ok { "passed" } else { "FAILED" });
    if !ok {
        return false;
    }
    eprintln!("\n==> end to end with Linux in QEMU, stand-in (scenario d)");
    let ok = report(e2e(
        false,
        false,
        E2eRuns {
            scenarios: vec![Scenario::D],
            chain: Chain::StandIn,
            emmc: None,
        },
        false,
        None,
        target.join("e2e"),
    ))
    .is_some();
    println!("e2e (stand-in): {}", if ok { "passed" } else { "FAILED" });
    if !ok {
        return false;
    }
    // Issue 14: a, b and c on each eMMC layout, on the stand-in (the eMMC does not change what
    // follows the shim; 2 x 16 boots there take minutes, on the real chain they would take
    // about 15).
    for layout in [
        boards::EmmcLayout::InOnePartition,
        boards::EmmcLayout::AcrossPartitions,
    ] {
        eprintln!(
            "\n==> end to end with Linux in QEMU on eMMC layout ({}), stand-in (scenarios a, b, c)",
            layout.name()
        );
        let ok = report(e2e(
            false,
            false,
            E2eRuns {
                scenarios: vec![Scenario::A, Scenario::B, Scenario::C],
                chain: Chain::StandIn,
                emmc: Some(layout),
            },
            false,
            None,
            target.join(format!("e2e-emmc-{}", layout.name())),
        ))
        .is_some();
        println!(
            "e2e (eMMC layout {}): {}",
            layout.name(),
            if ok { "passed" } else { "FAILED" }
        );
        if !ok {
            return false;
        }
    }
    true
}

/// Runs `cargo test`, passing its output through, and closes with one line that totals every
/// test binary's `test result:` line (cargo's own last line is often an empty doc-test run).
fn run_tests(mut cmd: Command) -> bool {
    eprintln!("\n==> workspace tests\n    $ {cmd:?}");
    let child = cmd.stdout(Stdio::piped()).spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xtask: cannot run cargo test: {e}");
            return false;
        }
    };
    let (mut passed, mut failed) = (0u64, 0u64);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            println!("{line}");
            if let Some((p, f)) = parse_result_line(&line) {
                passed += p;
                failed += f;
            }
        }
    }
    let ok = child.wait().is_ok_and(|s| s.success());
    println!("\ntests: {passed} passed, {failed} failed");
    ok && failed == 0
}

/// Reads `test result: ok. 5 passed; 0 failed; ...` into (passed, failed).
fn parse_result_line(line: &str) -> Option<(u64, u64)> {
    let rest = line.strip_prefix("test result: ")?;
    let num = |word: &str| {
        rest.split(';')
            .find_map(|part| {
                part.trim()
                    .trim_start_matches("ok. ")
                    .trim_start_matches("FAILED. ")
                    .strip_suffix(word)
            })
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    Some((num(" passed")?, num(" failed")?))
}

/// The sections `firmware_sizes` reports.
const FIRMWARE_SECTIONS: [&str; 5] = [".text", ".rodata", ".data", ".bss", ".stack"];

/// The sizes of [`FIRMWARE_SECTIONS`] in the ELF at `elf` (0 for a missing section).
fn section_sizes(elf: &std::path::Path) -> xtask::Result<[u64; 5]> {
    use object::{Object, ObjectSection};
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*data)
        .map_err(|e| xtask::Error::msg(format!("{} is not an ELF file: {e}", elf.display())))?;
    Ok(FIRMWARE_SECTIONS.map(|name| file.section_by_name(name).map_or(0, |s| s.size())))
}

/// Builds the shim for every board and prints its section sizes against the `.text` budget.
fn firmware_sizes() -> bool {
    eprintln!("\n==> firmware builds (profile firmware: opt-level z, P-256 and SHA-256 at 3, LTO)");
    for (board, _) in xtask::firmware::BOARDS {
        let Some(elf) = report(build_spl(board)) else {
            return false;
        };
        let Some(sizes) = report(section_sizes(&elf)) else {
            return false;
        };
        let hab = match boards::by_name(board).map(|b| b.hab) {
            Some(boards::HabBackend::Software) => {
                "software HAB: links the SHA-256 + P-256 + DER verifier"
            }
            Some(boards::HabBackend::Rom { .. }) => "ROM HAB binding",
            None => "not in the boards crate",
        };
        println!("\nfirmware for {board} ({hab}), {}:", elf.display());
        for (name, size) in FIRMWARE_SECTIONS.iter().zip(sizes) {
            println!(
                "  {name:<8} {size:>8} bytes ({:.1} KiB)",
                size as f64 / 1024.0
            );
        }
        println!(
            "  .text budget <= 96 KiB: {}",
            // FIRMWARE_SECTIONS[0] is .text.
            if sizes[0] <= 96 * 1024 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    true
}

fn bench(firmware_only: bool) -> bool {
    let mut hab = cargo();
    hab.args([
        "bench",
        "-p",
        "imx-hab",
        "--features",
        "sign",
        "--bench",
        "hab",
    ]);
    let mut update = cargo();
    update.args(["bench", "-p", "ubootctl", "--bench", "update"]);
    firmware_sizes()
        && log_figures()
        && firmware_figures()
        && (firmware_only
            || step("host benchmarks: HAB4 verification and SHA-256", hab)
                && step("host benchmarks: ubootctl update vs AN12900's dd", update))
}

/// The shim's defmt build against its text build (issue 16): `.text` and `.rodata` per board,
/// and the UART bytes of a normal and of a fallback boot in QEMU.
fn log_figures() -> bool {
    use xtask::figures::console_bytes;
    use xtask::firmware::{Log, build_spl_with};
    eprintln!("\n==> the shim's log: defmt frames against text lines (feature text-log)");
    let mut text_smaller = true;
    for (board, _) in xtask::firmware::BOARDS {
        let mut sizes = Vec::new();
        for log in [Log::Defmt, Log::Text] {
            let Some(elf) = report(build_spl_with(board, log)) else {
                return false;
            };
            let Some(s) = report(section_sizes(&elf)) else {
                return false;
            };
            sizes.push(s);
        }
        println!("\n{board}:          defmt       text");
        for (i, name) in [(0, ".text"), (1, ".rodata")] {
            println!(
                "  {name:<8} {:>10} {:>10}  ({:+} bytes)",
                sizes[0][i],
                sizes[1][i],
                sizes[0][i] as i64 - sizes[1][i] as i64
            );
        }
        text_smaller &= sizes[0][0] < sizes[1][0];
    }
    let seed = xtask::pki::DEFAULT_SEED.as_bytes();
    let mut bytes = Vec::new();
    for log in [Log::Defmt, Log::Text] {
        let kit = build_spl_with(xtask::sim::SIM_BOARD, log).and_then(|elf| {
            let (payload, _) = xtask::sim::default_payload()?;
            let rom = xtask::firmware::build_test_firmware(xtask::sim::ROM_MODEL_BIN)?;
            SimKit::new(elf, rom, xtask::pki::generate(seed)?, payload)
        });
        let Some(kit) = report(kit) else {
            return false;
        };
        let Some(dir) = report(tempfile::tempdir().context("temporary directory")) else {
            return false;
        };
        let Some(b) = report(console_bytes(&kit, dir.path())) else {
            return false;
        };
        bytes.push(b);
    }
    let (d, t) = (bytes[0], bytes[1]);
    let ratio = |t: u64, d: u64| t as f64 / d.max(1) as f64;
    println!(
        "\nUART bytes of the shim's log in QEMU (a normal boot: {} lines, in {} defmt frames):",
        d.normal_lines, d.normal_frames
    );
    println!("                 defmt       text");
    println!(
        "  normal     {:>9} {:>10}  ({:.1}x fewer; goal >= 5x: {})",
        d.normal,
        t.normal,
        ratio(t.normal, d.normal),
        if ratio(t.normal, d.normal) >= 5.0 {
            "met"
        } else {
            "NOT met"
        }
    );
    println!(
        "  fallback   {:>9} {:>10}  ({:.1}x fewer)",
        d.fallback,
        t.fallback,
        ratio(t.fallback, d.fallback)
    );
    println!(
        "  smaller .text with defmt (goal): {}",
        if text_smaller { "met" } else { "NOT met" }
    );
    true
}

/// Boot time and SHA-256 throughput of the firmware, measured in QEMU (issue 4 §9 budgets).
fn firmware_figures() -> bool {
    use xtask::figures::{
        GuestTime, ShaBackend, boot_times, build_sha_bench, median, sha_throughput,
    };
    eprintln!(
        "\n==> firmware figures in QEMU (guest generic timer; QEMU TCG on this host, not an A53)"
    );
    let Some(kit) = report(SimKit::build(xtask::pki::DEFAULT_SEED.as_bytes())) else {
        return false;
    };
    let Some(dir) = report(tempfile::tempdir().context("temporary directory")) else {
        return false;
    };
    const RUNS: usize = 5;
    let Some(times) = report(boot_times(&kit, dir.path(), RUNS)) else {
        return false;
    };
    let pick = |f: fn(&xtask::figures::BootTime) -> u64| median(times.iter().map(f).collect());
    let (total, read, hash, sig, other, copies) = (
        pick(|t| t.total_us),
        pick(|t| t.read_us),
        pick(|t| t.hash_us),
        pick(|t| t.signature_us),
        pick(|t| t.other_us),
        pick(|t| t.copy_us),
    );
    let ms = |us: u64| us as f64 / 1000.0;
    let pct = |us: u64| 100.0 * us as f64 / total.max(1) as f64;
    let t0 = times[0];
    println!(
        "\nboot entry-to-handoff, FIT of {:.2} MiB read ({} bytes) and {:.2} MiB hashed, median of {RUNS}:",
        t0.read_bytes as f64 / 1048576.0,
        t0.read_bytes,
        t0.hash_bytes as f64 / 1048576.0
    );
    println!("  total       {:>9.1} ms", ms(total));
    println!("  media read  {:>9.1} ms  {:>5.1} %", ms(read), pct(read));
    println!("  hashing     {:>9.1} ms  {:>5.1} %", ms(hash), pct(hash));
    println!("  signatures  {:>9.1} ms  {:>5.1} %", ms(sig), pct(sig));
    println!(
        "  other       {:>9.1} ms  {:>5.1} %  (card init, console, image copies: {:.1} ms)",
        ms(other),
        pct(other),
        ms(copies)
    );
    let beyond: Vec<u64> = times.iter().map(|t| t.total_us - t.read_us).collect();
    let beyond_share = 100.0 * median(beyond) as f64 / total.max(1) as f64;
    println!(
        "  beyond the media read: {beyond_share:.1} % of entry-to-handoff (budget <= 10 %: {})",
        if beyond_share <= 10.0 {
            "met"
        } else {
            "NOT met"
        }
    );

    let mut elfs = Vec::new();
    for b in ShaBackend::ALL {
        let Some(elf) = report(build_sha_bench(b)) else {
            return false;
        };
        elfs.push((b, elf));
    }
    let mut digests = Vec::new();
    for time in [GuestTime::Host, GuestTime::Instructions] {
        println!(
            "\nSHA-256 of 2 MiB in the firmware under QEMU, {} (best of 5 in the guest):",
            time.label()
        );
        let mut results = Vec::new();
        for (b, elf) in &elfs {
            let Some((us, digest)) = report(sha_throughput(elf, time)) else {
                return false;
            };
            println!(
                "  {:<26} {:>8.1} ms  {:>7.1} MB/s",
                b.label(),
                ms(us),
                2.0 * 1048576.0 / us.max(1) as f64
            );
            results.push((*b, us));
            digests.push(digest);
        }
        let us_of = |b| results.iter().find(|r| r.0 == b).map_or(1, |r| r.1.max(1)) as f64;
        let hw = us_of(ShaBackend::Instructions);
        for soft in [ShaBackend::Software, ShaBackend::SoftwareCompact] {
            let ratio = us_of(soft) / hw;
            println!(
                "  instructions vs {:<26} {ratio:.2}x (budget >= 2x: {})",
                soft.label(),
                if ratio >= 2.0 { "met" } else { "NOT met" }
            );
        }
    }
    if digests.windows(2).any(|w| w[0] != w[1]) {
        eprintln!("xtask: the SHA-256 backends disagree on the digest");
        return false;
    }
    println!(
        "  note: in host time TCG runs each of the 56 SHA instructions per 64-byte block through \
         a helper call (about 11 ns each here), a floor of about 600 ns per block for any guest \
         code, while sha2's software rounds translate to inline integer code (about 1000 ns per \
         block): the instructions cannot reach 2x there. Counted in instructions, they do. The \
         firmware links the instructions (2.5 KiB of code)."
    );
    true
}

/// Parses a decimal or `0x` hexadecimal number.
fn parse_u32(s: &str) -> Result<u32, String> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

/// `MAJOR.MINOR.PATCH` as the cell stores it (major < 65536, minor and patch < 256).
fn parse_shim_version(s: &str) -> Result<boot_core::cell::ShimVersion, String> {
    let parts: Vec<&str> = s.split('.').collect();
    let [major, minor, patch] = parts[..] else {
        return Err(format!("{s}: expected MAJOR.MINOR.PATCH"));
    };
    let n = |p: &str, what: &str| {
        p.parse::<u16>()
            .map_err(|e| format!("{s}: {what} {p:?}: {e}"))
    };
    let (major, minor, patch) = (n(major, "major")?, n(minor, "minor")?, n(patch, "patch")?);
    let byte = |v: u16, what: &str| {
        u8::try_from(v).map_err(|_| format!("{s}: {what} {v} does not fit the cell (0..=255)"))
    };
    Ok(boot_core::cell::ShimVersion {
        major,
        minor: byte(minor, "minor")?,
        patch: byte(patch, "patch")?,
    })
}

/// Prints an error of a library call and turns it into `false`.
fn report<T>(r: xtask::Result<T>) -> Option<T> {
    r.map_err(|e| eprintln!("xtask: {e}")).ok()
}

fn build_spl_task(board: &str) -> bool {
    match report(build_spl(board)) {
        Some(elf) => {
            println!("{}", elf.display());
            true
        }
        None => false,
    }
}

#[allow(clippy::too_many_arguments)]
fn image(
    out: PathBuf,
    pki_dir: Option<PathBuf>,
    seed: &str,
    versions: Vec<u32>,
    epochs: Vec<u32>,
    shim_versions: Vec<boot_core::cell::ShimVersion>,
    rollback_min: u32,
    payloads: Vec<PathBuf>,
    real_chain: bool,
    elf: Option<PathBuf>,
    disk_mib: u64,
    first_sector: u32,
    no_sit: bool,
    emmc: Option<(boards::EmmcLayout, bool)>,
) -> xtask::Result<()> {
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let pki_dir = pki_dir.unwrap_or_else(|| out.join("pki"));
    let (pki, generated) = xtask::pki::load_or_generate(&pki_dir, seed.as_bytes())?;
    println!(
        "PKI       {} ({})",
        pki_dir.display(),
        if generated {
            "generated, TEST KEYS"
        } else {
            "loaded"
        }
    );
    let elf = match elf {
        Some(e) => e,
        None => build_spl(xtask::sim::SIM_BOARD)?,
    };
    println!("shim      {}", elf.display());
    let payloads: Vec<(Vec<u8>, String)> = if payloads.is_empty() {
        vec![xtask::sim::default_payload()?]
    } else {
        payloads
            .iter()
            .map(|p| Ok((xtask::sim::read_payload(p)?, p.display().to_string())))
            .collect::<xtask::Result<_>>()?
    };
    let rom = xtask::firmware::build_test_firmware(xtask::sim::ROM_MODEL_BIN)?;
    let mut kit = SimKit::new(elf, rom, pki, payloads[0].0.clone())?;
    let rollback = boot_core::rollback::RollbackFuses::BLANK
        .burn_for(rollback_min)
        .map_err(|e| xtask::Error::msg(format!("--rollback-min {rollback_min}: {e}")))?;
    kit.fuses.rollback = rollback;
    let fuses = out.join("fuses.bin");
    kit.write_fuses(&fuses)?;
    println!(
        "fuses     {} (closed, SRK hash of the PKI, rollback minimum {rollback_min})",
        fuses.display()
    );
    let versions = if versions.is_empty() {
        vec![1, 2]
    } else {
        versions
    };
    if let Some(e) = epochs.iter().find(|&&e| e > boot_core::rollback::FUSE_BITS) {
        return Err(xtask::Error::msg(format!(
            "--epoch {e}: above {}, the most the rollback fuses can enforce (the shim refuses \
             such an image)",
            boot_core::rollback::FUSE_BITS
        )));
    }
    if epochs.len() > 1 && epochs.len() != versions.len() {
        return Err(xtask::Error::msg(format!(
            "--epoch given {} times for {} versions: give one per --version, or one for all",
            epochs.len(),
            versions.len()
        )));
    }
    let chain = if real_chain {
        let fw = xtask::thirdparty::build(&mut |s| println!("chain     {s}"))?;
        let imgs = xtask::chain::ChainImages::load(&fw)?;
        println!(
            "chain     U-Boot {} ({} bytes at {:#x}), its DT at {:#x}, BL31 {} ({} bytes at {:#x}, entry)",
            fw.uboot_nodtb.display(),
            imgs.uboot.len(),
            xtask::chain::UBOOT_LOAD,
            imgs.dtb_load,
            fw.bl31.display(),
            imgs.bl31.len(),
            xtask::chain::BL31_LOAD
        );
        Some(imgs)
    } else {
        None
    };
    let mut bins = Vec::new();
    for (i, v) in versions.iter().enumerate() {
        let (payload, what) = &payloads[i.min(payloads.len() - 1)];
        let epoch = epochs.get(i).or(epochs.first()).copied();
        let shim_version = shim_versions.get(i).or(shim_versions.first()).copied();
        let (fb, what) = match &chain {
            Some(imgs) => {
                let fit = xtask::chain::chain_fit(imgs, *v, epoch)?;
                let shim = match shim_version {
                    Some(sv) => xtask::flash_bin::stamp_shim_version(&kit.shim, sv)?,
                    None => kit.shim.clone(),
                };
                let fb = xtask::flash_bin::build_flash_bin(&shim, &fit, &kit.pki, &kit.options)?;
                (fb, "real chain: U-Boot, its DT, BL31")
            }
            None => (
                kit.flash_bin_full(payload, *v, epoch, shim_version)?,
                what.as_str(),
            ),
        };
        let path = out.join(format!("flash-v{v}.bin"));
        std::fs::write(&path, &fb).with_context(|| format!("writing {}", path.display()))?;
        println!(
            "flash.bin {} (version {v}, epoch {}, {} bytes, payload {what})",
            path.display(),
            epoch.map_or("none (0)".into(), |e| e.to_string()),
            fb.len()
        );
        bins.push(fb);
    }
    let primary = bins[0].clone();
    let secondary = bins.get(1).cloned().unwrap_or_else(|| primary.clone());
    let (spec_primary, spec_secondary) = (primary.clone(), secondary.clone());
    let spec = DiskSpec {
        size: disk_mib << 20,
        first_sector,
        sit: if no_sit {
            SitMode::None
        } else {
            SitMode::Valid
        },
        primary: Some(primary),
        secondary: Some(secondary),
    };
    let disk = out.join("sd.img");
    xtask::disk::build_disk(&disk, &spec)?;
    println!(
        "disk      {} ({disk_mib} MiB, SIT {}, primary at {:#x}, secondary at {:#x})",
        disk.display(),
        if no_sit {
            "none".to_string()
        } else {
            format!("firstSectorNumber {first_sector:#x}")
        },
        xtask::disk::PRIMARY_OFFSET,
        spec.secondary_offset()
    );
    let emmc_arg = match emmc {
        Some((layout, cross)) => {
            let img = out.join("emmc.img");
            xtask::emmc::build_emmc(&img, layout, &spec_primary, &spec_secondary)?;
            let block = xtask::emmc::fuse_block_for(kit.fuses.to_block(), layout, cross);
            std::fs::write(&fuses, block)
                .with_context(|| format!("writing {}", fuses.display()))?;
            let word = boards::BootCfg::from_simulated_block(&block).0;
            println!(
                "emmc      {} (64 MiB, boot partitions 4 MiB, layout ({}), primary at file offset {:#x}, \
                 secondary at {:#x}; EXT_CSD[179] 0x48 = boot0 enabled)",
                img.display(),
                layout.name(),
                xtask::emmc::copy_offset(
                    layout,
                    boot_core::emmc::BootPartition::Boot0,
                    xtask::disk::ImageCopy::Primary
                ),
                xtask::emmc::copy_offset(
                    layout,
                    boot_core::emmc::BootPartition::Boot0,
                    xtask::disk::ImageCopy::Secondary
                ),
            );
            println!(
                "fuses     BOOT_CFG (bytes 48..52) = {word:#010x}: eMMC, layout ({}), ROM \
                 cross-partition fallback {}",
                layout.name(),
                if cross { "on" } else { "off" }
            );
            format!(" --emmc {}", img.display())
        }
        None => String::new(),
    };
    println!(
        "run it:   cargo xtask sim --disk {} --fuses {} --rom {} --elf {}{emmc_arg}{}",
        disk.display(),
        fuses.display(),
        kit.rom_elf.display(),
        kit.shim_elf.display(),
        if real_chain {
            " --timeout 60 --marker 'Hit any key to stop autoboot' -- -m 2G\n          (stops when U-Boot starts its autoboot; this card has no boot partition, so U-Boot would end at its\n          prompt: `cargo xtask e2e` builds the card with Linux)"
        } else {
            ""
        }
    );
    Ok(())
}

fn corrupt(disk: &std::path::Path, part: &str, copy: &str) -> xtask::Result<()> {
    use xtask::disk::{ImageCopy, SIT_TAG_OFFSET, copy_offsets, flip_byte};
    let copy = if copy == "secondary" {
        ImageCopy::Secondary
    } else {
        ImageCopy::Primary
    };
    let at = match part {
        "sit-tag" => SIT_TAG_OFFSET,
        _ => {
            let o = copy_offsets(disk, copy)?;
            match part {
                "fit-data" => o.fit_data_byte()?,
                "fit-ivt" => o.fit_ivt + 4,
                "fit-csf" => o.fit_csf + 0x10,
                "spl-code" => o.spl_code_byte(),
                _ => o.spl_csf + 0x10,
            }
        }
    };
    let old = flip_byte(disk, at)?;
    println!(
        "{}: flipped byte {at:#x} ({part}{}): {old:#04x} -> {:#04x}",
        disk.display(),
        if part == "sit-tag" {
            String::new()
        } else {
            format!(" of the {copy:?} copy")
        },
        old ^ 0xFF
    );
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sim(
    disk: PathBuf,
    fuses: PathBuf,
    rom: Option<PathBuf>,
    elf: Option<PathBuf>,
    timeout: u64,
    marker: Option<String>,
    emmc: Option<(PathBuf, u32)>,
    qemu_args: Vec<String>,
) -> xtask::Result<bool> {
    let rom = match rom {
        Some(e) => e,
        None => xtask::firmware::build_test_firmware(xtask::sim::ROM_MODEL_BIN)?,
    };
    let elf = match elf {
        Some(e) => e,
        None => build_spl(xtask::sim::SIM_BOARD)?,
    };
    let mut config = SimConfig::new(rom, fuses, disk);
    config.log_elf = Some(elf);
    config.timeout = Duration::from_secs(timeout);
    config.echo = Some("uart| ".into());
    config.extra_args = qemu_args;
    if let Some((image, boot_config)) = emmc {
        let boot_config = u8::try_from(boot_config).map_err(|_| {
            xtask::Error::msg(format!(
                "--emmc-boot-config {boot_config:#x}: EXT_CSD[179] is one byte"
            ))
        })?;
        if boot_config & 7 > 2 {
            return Err(xtask::Error::msg(format!(
                "--emmc-boot-config {boot_config:#04x}: PARTITION_ACCESS (bits 2:0) above 2 \
                 aborts QEMU"
            )));
        }
        config.emmc = Some(xtask::emmc::EmmcAttach {
            boot_config,
            ..xtask::emmc::EmmcAttach::new(image)
        });
    }
    println!(
        "==> {} {}",
        config.qemu.display(),
        config.args(std::path::Path::new("QMP.sock")).join(" ")
    );
    let stop = marker.map_or(Stop::Boot, Stop::Marker);
    let out = xtask::qemu::run(&config, &stop)?;
    println!("\nwall time {:.2} s", out.wall.as_secs_f64());
    if out.serial_download() {
        println!(
            "ROM outcome: serial download (no SPL on the card could be started; the shim never ran)"
        );
    }
    match out.exit_status {
        Some(s) => println!("QEMU exited: {s}"),
        None if out.timed_out => println!("timed out after {timeout} s; QEMU quit over QMP"),
        None => println!("stop line seen; QEMU quit over QMP"),
    }
    if !out.stderr.trim().is_empty() {
        println!("QEMU stderr:\n{}", out.stderr.trim_end());
    }
    match out.cell {
        Some(cell) => {
            println!("cell at {:#x}:", xtask::qemu::CELL_ADDR);
            for row in cell.chunks(16) {
                let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
                println!("  {}", hex.join(" "));
            }
            match boot_core::cell::decode(&cell) {
                Ok(c) => {
                    println!("  slot word: {:?}", c.slot);
                    match c.record {
                        Ok(r) => println!("  boot record: {r:#?}"),
                        Err(e) => println!("  no boot record ({e})"),
                    }
                }
                Err(e) => println!("  undecodable: {e}"),
            }
        }
        None => println!("cell: not read (QEMU had exited; print a marker line before exiting)"),
    }
    Ok(out.exit_status.is_none_or(|s| s.success()))
}

/// `cargo xtask e2e`: the scenarios of issue 6, or `--prepare` / `--smoke` (see the
/// subcommand's doc).
/// Which end-to-end runs `cargo xtask e2e` makes: the scenarios, on which chain and medium.
struct E2eRuns {
    scenarios: Vec<xtask::e2e::Scenario>,
    chain: xtask::e2e::Chain,
    emmc: Option<boards::EmmcLayout>,
}

fn e2e(
    smoke: bool,
    prepare: bool,
    runs: E2eRuns,
    verbose: bool,
    cache: Option<PathBuf>,
    out: PathBuf,
) -> xtask::Result<()> {
    use xtask::linux;
    let E2eRuns {
        scenarios,
        chain,
        emmc,
    } = runs;
    let cache = cache.unwrap_or_else(linux::cache_dir);
    let mut log = |s: &str| println!("e2e: {s}");
    if prepare {
        let t = std::time::Instant::now();
        let art = linux::fetch(&cache, &mut log)?;
        println!(
            "e2e: cache ready in {:.1} s: {art:#?}",
            t.elapsed().as_secs_f64()
        );
        let bin = linux::build_ubootctl()?;
        println!(
            "e2e: ubootctl (static, {}) {}",
            linux::MUSL_TARGET,
            bin.display()
        );
        return Ok(());
    }
    if !smoke {
        let t = std::time::Instant::now();
        let mut scenarios = if scenarios.is_empty() && emmc.is_some() {
            vec![
                xtask::e2e::Scenario::A,
                xtask::e2e::Scenario::B,
                xtask::e2e::Scenario::C,
            ]
        } else if scenarios.is_empty() {
            xtask::e2e::Scenario::ALL.to_vec()
        } else {
            scenarios
        };
        scenarios.sort();
        scenarios.dedup();
        let opts = xtask::e2e::E2eOptions {
            cache,
            work: workspace_root().join(&out),
            scenarios,
            echo: verbose.then(|| "uart| ".to_string()),
            chain,
            emmc,
        };
        let r = xtask::e2e::run(&opts)?;
        println!(
            "
e2e: PASS"
        );
        println!("  fetch/cache   {:.1} s", r.fetch.as_secs_f64());
        println!("  builds        {:.1} s", r.build.as_secs_f64());
        for (s, d) in &r.scenarios {
            println!("  scenario {}    {:.1} s", s.name(), d.as_secs_f64());
        }
        println!(
            "  total         {:.1} s, {} boots of the chain",
            t.elapsed().as_secs_f64(),
            r.boots
        );
        if !r.splits.is_empty() {
            println!(
                "  boot-time split (median of {} boots, host wall time under TCG): {}",
                r.splits.len(),
                xtask::e2e_chain::BootSplit::median(&r.splits).line()
            );
        }
        return Ok(());
    }
    let opts = linux::SmokeOptions {
        cache,
        work: workspace_root().join(&out),
        echo: Some("uart| ".into()),
    };
    let r = linux::smoke(&opts, &mut log)?;
    let o = &r.outcome;
    println!("\ne2e smoke: PASS");
    println!(
        "  kernel        {} {} ({})",
        r.artifacts.kernel_package,
        r.artifacts.kernel_version,
        r.artifacts.kernel.display()
    );
    println!("  SD device     {}", o.mmc_device().unwrap_or_default());
    println!(
        "  ubootctl      status rc={}, running {}, primary authentic {}, secondary authentic {}",
        r.status_rc,
        r.status["running"],
        r.status["primary"]["authentic"],
        r.status["secondary"]["authentic"]
    );
    println!("  fetch/cache   {:.1} s", r.fetch_time.as_secs_f64());
    println!("  builds        {:.1} s", r.build_time.as_secs_f64());
    if let Some(t) = o.to_mmc {
        println!("  QEMU start -> SD card in Linux {:.1} s", t.as_secs_f64());
    }
    println!(
        "  QEMU start -> power-off        {:.1} s",
        o.wall.as_secs_f64()
    );
    Ok(())
}

/// `run --probe` (xtask::probe): exit 2 for usage and environment errors, 1 for failures.
fn run_probe(
    board: String,
    probe: bool,
    elf: Option<PathBuf>,
    serial: PathBuf,
    seconds: u64,
) -> ExitCode {
    use xtask::probe::{ProbeError, ProbeRun};
    let r = (|| {
        if !probe {
            return Err(ProbeError::Usage(
                "`run` needs --probe (a board over JTAG); in QEMU use `cargo xtask sim`".into(),
            ));
        }
        if xtask::probe::chip_for(&board).is_none() {
            let known: Vec<&str> = xtask::probe::CHIPS.iter().map(|c| c.0).collect();
            return Err(ProbeError::Usage(format!(
                "no probe-rs chip description for board `{board}` (boards with one: {})",
                known.join(", ")
            )));
        }
        let elf = match elf {
            Some(e) => e,
            None => build_spl(&board).map_err(|e| ProbeError::Failed(e.to_string()))?,
        };
        xtask::probe::run(&ProbeRun {
            board,
            elf,
            serial,
            duration: Duration::from_secs(seconds),
        })
    })();
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: run: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let ok = match cli.task {
        Task::Run {
            board,
            probe,
            elf,
            serial,
            seconds,
        } => return run_probe(board, probe, elf, serial, seconds),
        Task::Test => test(),
        Task::Qemu => report(xtask::thirdparty::qemu::ensure())
            .map(|p| println!("{}", p.display()))
            .is_some(),
        Task::PowercutCompare { quick, out } => powercut_compare(quick, out),
        Task::Bench { firmware } => bench(firmware),
        Task::BuildSpl { board } => build_spl_task(&board),
        Task::Image {
            out,
            pki,
            seed,
            versions,
            epochs,
            shim_versions,
            rollback_min,
            payloads,
            real_chain,
            elf,
            disk_mib,
            first_sector,
            no_sit,
            emmc,
            rom_cross_fallback,
        } => report(image(
            out,
            pki,
            &seed,
            versions,
            epochs,
            shim_versions,
            rollback_min,
            payloads,
            real_chain,
            elf,
            disk_mib,
            first_sector,
            no_sit,
            emmc.map(|l| (l, rom_cross_fallback)),
        ))
        .is_some(),
        Task::Corrupt { disk, part, copy } => report(corrupt(&disk, &part, &copy)).is_some(),
        Task::Sim {
            disk,
            fuses,
            rom,
            elf,
            timeout,
            marker,
            emmc,
            emmc_boot_config,
            qemu_args,
        } => report(sim(
            disk,
            fuses,
            rom,
            elf,
            timeout,
            marker,
            emmc.map(|e| (e, emmc_boot_config)),
            qemu_args,
        ))
        .unwrap_or(false),
        Task::Demo { out } => report(xtask::demo::run(&xtask::demo::DemoOptions { out })).is_some(),
        Task::E2e {
            smoke,
            prepare,
            scenario,
            chain,
            emmc,
            verbose,
            cache,
            out,
        } => report(e2e(
            smoke,
            prepare,
            E2eRuns {
                scenarios: scenario,
                chain,
                emmc,
            },
            verbose,
            cache,
            out,
        ))
        .is_some(),
    };
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::parse_result_line;

    #[test]
    fn totals_come_from_cargo_result_lines() {
        let ok = "test result: ok. 23 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 1.2s";
        assert_eq!(parse_result_line(ok), Some((23, 0)));
        let bad = "test result: FAILED. 3 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out";
        assert_eq!(parse_result_line(bad), Some((3, 2)));
        assert_eq!(parse_result_line("running 3 tests"), None);
    }
}
