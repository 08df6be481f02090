//! Booting from the card as the ROM would (issue 15; design.md §5.1): QEMU starts the ROM
//! model, which judges the card's SPLs, loads the one it starts into OCRAM and leaves its log;
//! the shim then boots the FIT of that copy first (the pairing rule). Each scenario asserts the
//! ROM model's and the shim's lines, the cell (read over QMP), the payload's version and
//! `ubootctl status` run on the host over the same card and cell.
//!
//! Needs `qemu-system-aarch64` >= 9.2, like `qemu_scenarios.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use boot_core::cell::{CopyReport, RomLog, ShimVersion};
use boot_core::examine::Part;
use boot_core::policy::{Reason, Slot};
use xtask::disk::{DiskSpec, ImageCopy, build_disk, copy_offsets, flip_byte};
use xtask::qemu::{SimOutcome, Stop, run};
use xtask::sim::SimKit;

fn kit() -> &'static SimKit {
    static KIT: OnceLock<SimKit> = OnceLock::new();
    KIT.get_or_init(|| {
        xtask::qemu::check_qemu(&xtask::qemu::qemu_binary()).unwrap_or_else(|e| panic!("{e}"));
        SimKit::build(b"qemu rom scenario tests").unwrap_or_else(|e| panic!("{e}"))
    })
}

/// The host `ubootctl`, built once.
fn ubootctl() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "-p", "ubootctl", "--bin", "ubootctl"])
            .current_dir(xtask::workspace_root());
        xtask::firmware::cargo_build_executable(cmd, "ubootctl", "ubootctl")
            .unwrap_or_else(|e| panic!("{e}"))
            .expect("cargo reports the ubootctl executable")
    })
}

struct Card {
    dir: tempfile::TempDir,
    fuses: PathBuf,
    disk: PathBuf,
}

fn card(primary: Vec<u8>, secondary: Vec<u8>) -> Card {
    let dir = tempfile::tempdir().unwrap();
    let fuses = dir.path().join("fuses.bin");
    let disk = dir.path().join("sd.img");
    kit().write_fuses(&fuses).unwrap();
    build_disk(&disk, &DiskSpec::new(primary, secondary)).unwrap();
    Card { dir, fuses, disk }
}

fn boot(c: &Card) -> SimOutcome {
    let out = run(&kit().sim_config(&c.fuses, &c.disk), &Stop::Boot).unwrap();
    assert!(!out.timed_out, "QEMU timed out:\n{}", out.uart);
    out
}

fn has(out: &SimOutcome, line: &str) {
    assert!(out.uart_has(line), "no `{line}` on the UART\n{}", out.uart);
}

/// Flips one byte in the middle of `copy`'s SPL code: inside the range its CSF signs.
fn damage_spl(c: &Card, copy: ImageCopy) {
    let at = copy_offsets(&c.disk, copy).unwrap().spl_code_byte();
    flip_byte(&c.disk, at).unwrap();
}

fn damage_fit(c: &Card, copy: ImageCopy) {
    let at = copy_offsets(&c.disk, copy)
        .unwrap()
        .fit_data_byte()
        .unwrap();
    flip_byte(&c.disk, at).unwrap();
}

fn record(out: &SimOutcome) -> boot_core::cell::BootRecord {
    out.decoded_cell()
        .unwrap_or_else(|| panic!("no cell\n{}", out.uart))
        .record
        .unwrap_or_else(|e| panic!("no valid record: {e}\n{}", out.uart))
}

/// `ubootctl status --json` over the card, with the cell the run left laid out as memory.
fn status(c: &Card, out: &SimOutcome) -> serde_json::Value {
    let mem = c.dir.path().join("mem.bin");
    let cell_addr = xtask::qemu::CELL_ADDR;
    let f = std::fs::File::create(&mem).unwrap();
    f.set_len(cell_addr + 0x1000).unwrap();
    drop(f);
    let cell = out.cell.unwrap_or_else(|| panic!("no cell\n{}", out.uart));
    xtask::disk::write_at(&mem, cell_addr, &cell).unwrap();
    let o = Command::new(ubootctl())
        .args(["status", "--board", "qemu-imx8mp", "--json", "--device"])
        .arg(&c.disk)
        .arg("--mem")
        .arg(&mem)
        .arg("--fuses")
        .arg(&c.fuses)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        matches!(o.status.code(), Some(0 | 1)),
        "ubootctl status: {:?}\n{text}\n{}",
        o.status,
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn images() -> &'static (Vec<u8>, Vec<u8>) {
    static IMAGES: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    IMAGES.get_or_init(|| (kit().flash_bin(1).unwrap(), kit().flash_bin(2).unwrap()))
}

/// A corrupt primary SPL: the ROM refuses it, sets PERSIST_SECONDARY_BOOT, resets through the
/// watchdog (same QEMU process), starts the secondary SPL, and the shim boots the secondary's
/// FIT without reading the primary.
#[test]
fn a_corrupt_primary_spl_runs_the_secondary_spl_with_the_secondary_fit() {
    let (v1, v2) = images();
    let c = card(v1.clone(), v2.clone());
    damage_spl(&c, ImageCopy::Primary);
    let out = boot(&c);
    has(&out, "rom: primary SPL not started: SPL: not authentic");
    has(&out, "rom: PERSIST_SECONDARY_BOOT set; warm reset");
    has(
        &out,
        "rom: i.MX 8M boot ROM model (simulation), PERSIST_SECONDARY_BOOT set",
    );
    has(&out, "rom: starting the secondary SPL from 0x208400");
    has(
        &out,
        "shim: ROM started the secondary SPL (log 0x51, BT_STAGE 0x9, HAB pass, persist set (cleared))",
    );
    assert!(!out.uart_has("shim: primary at"), "{}", out.uart);
    has(&out, "payload: version 2 slot 2 EL3");
    assert_eq!(out.exit_code(), Some(2));
    let r = record(&out);
    assert_eq!(out.slot_word(), Some(2));
    assert_eq!(r.reason, Some(Reason::RomSecondary));
    assert_eq!(r.primary, CopyReport::NotExamined);
    assert!(matches!(r.secondary, CopyReport::Authentic { .. }));
    assert_eq!(r.rom.log, RomLog::SecondaryBoot);
    assert_eq!(r.rom.boot_stage, boot_core::cell::RomInfo::STAGE_SECONDARY);
    assert_eq!(r.rom.persist_secondary, Some(true));
    assert_eq!(r.rom.hab, Some(0xF0));
    assert_eq!(r.rom.started(), Some(Slot::Secondary));
    let st = status(&c, &out);
    assert_eq!(st["running"], 2, "{st:#}");
    assert_eq!(st["boot_reason"], "rom-secondary", "{st:#}");
    assert_eq!(st["rom"]["started"], "secondary", "{st:#}");
    assert_eq!(st["rom"]["hab"], "pass", "{st:#}");
    assert_eq!(st["primary"]["authentic"], false, "{st:#}");
    assert_eq!(st["primary"]["part"], "SPL", "{st:#}");
    assert_eq!(st["next_boot"], 2, "{st:#}");
    assert_eq!(st["next_boot_rom"], "secondary", "{st:#}");
}

/// An intact primary SPL with a corrupt primary FIT: the ROM starts the primary SPL, which
/// boots the secondary's FIT, and the record says both.
#[test]
fn an_intact_primary_spl_with_a_corrupt_fit_runs_the_secondary_fit() {
    let (v1, v2) = images();
    let c = card(v1.clone(), v2.clone());
    damage_fit(&c, ImageCopy::Primary);
    let out = boot(&c);
    assert!(!out.uart_has("warm reset"), "{}", out.uart);
    has(&out, "rom: starting the primary SPL from 0x8400");
    has(
        &out,
        "shim: ROM started the primary SPL (log 0x50, BT_STAGE 0x6, HAB pass, persist clear)",
    );
    has(&out, "shim: primary at 0x8400: rejected (image-signature)");
    has(&out, "payload: version 2 slot 2 EL3");
    let r = record(&out);
    assert_eq!(out.slot_word(), Some(2));
    assert_eq!(r.reason, Some(Reason::PrimaryFailed));
    assert_eq!(r.rom.started(), Some(Slot::Primary));
    assert_eq!(r.rom.log, RomLog::PrimaryBoot);
    assert!(matches!(
        r.primary,
        CopyReport::Rejected {
            part: Some(Part::Fit),
            ..
        }
    ));
    assert!(matches!(r.secondary, CopyReport::Authentic { .. }));
    let st = status(&c, &out);
    assert_eq!(st["running"], 2, "{st:#}");
    assert_eq!(st["boot_reason"], "primary-failed", "{st:#}");
    assert_eq!(st["rom"]["started"], "primary", "{st:#}");
    assert_eq!(st["primary"]["part"], "FIT", "{st:#}");
    assert_eq!(st["next_boot"], 2, "{st:#}");
    assert_eq!(st["next_boot_rom"], "primary", "{st:#}");
}

/// The SPL that runs is the card's: a secondary whose SPL reports another version runs only
/// when the ROM starts it, and the cell carries that version.
#[test]
fn an_spl_of_another_version_in_the_secondary_runs_when_the_rom_starts_it() {
    let other = ShimVersion {
        major: 9,
        minor: 8,
        patch: 7,
    };
    assert_ne!(other, ShimVersion::CURRENT);
    let (v1, _) = images();
    let v2 = kit().flash_bin_shim_version(2, other).unwrap();
    let c = card(v1.clone(), v2);
    let out = boot(&c);
    has(
        &out,
        &format!("imx-redundant-boot {} on", ShimVersion::CURRENT),
    );
    has(&out, "payload: version 1 slot 1 EL3");
    assert_eq!(record(&out).shim_version, ShimVersion::CURRENT);
    damage_spl(&c, ImageCopy::Primary);
    let out = boot(&c);
    has(&out, "imx-redundant-boot 9.8.7 on");
    has(&out, "payload: version 2 slot 2 EL3");
    let r = record(&out);
    assert_eq!(r.shim_version, other);
    assert_eq!(r.reason, Some(Reason::RomSecondary));
    let st = status(&c, &out);
    assert_eq!(st["running"], 2, "{st:#}");
    assert_eq!(st["rom"]["started"], "secondary", "{st:#}");
    assert_eq!(st["secondary"]["authentic"], true, "{st:#}");
}

/// Both SPLs corrupt: the ROM starts nothing and falls back to serial download; the shim never
/// runs, the cell holds no record, and `status` predicts the same.
#[test]
fn two_corrupt_spls_are_the_roms_serial_download() {
    let (v1, v2) = images();
    let c = card(v1.clone(), v2.clone());
    damage_spl(&c, ImageCopy::Primary);
    damage_spl(&c, ImageCopy::Secondary);
    let out = boot(&c);
    assert!(out.serial_download(), "{}", out.uart);
    has(&out, "rom: secondary SPL not started: SPL: not authentic");
    assert!(!out.uart_has("imx-redundant-boot "), "{}", out.uart);
    assert!(!out.uart_has("payload:"), "{}", out.uart);
    let cell = out.decoded_cell().expect("the cell memory was read");
    assert_eq!(cell.slot.raw(), 0);
    assert!(cell.record.is_err(), "{:?}", cell.record);
    let st = status(&c, &out);
    assert_eq!(st["boot_record"], false, "{st:#}");
    assert_eq!(st["next_boot"], 0, "{st:#}");
    assert_eq!(st["next_boot_rom"], "serial download", "{st:#}");
    assert_eq!(st["healthy"], false, "{st:#}");
}
