//! The shim booting from the eMMC on uSDHC3 (issue 14; design.md §5.5): the ROM model reads
//! EXT_CSD[179] and starts the enabled boot partition's SPL, the shim brings the eMMC up
//! (CMD0/1/2/3/7, EXT_CSD, CMD6 partition access, explicit CMD12) and judges the copies with
//! the one judgement on layout (a) (AN12900 inside boot0) and layout (b) (A/B across
//! boot0/boot1, the virtual device). The SD card on bus 1 holds other versions (7, 8): a boot
//! that read it would print them.
//!
//! Eleven QEMU boots of well under a second each: per layout the normal boot, a corrupt primary
//! FIT (the shim's fallback), a corrupt primary SPL (the ROM's fallback: inside the partition
//! on (a); on (b) once with and once without the disputed cross-partition fallback) and both
//! copies bad; layout (b) with a stale layout-(a) SIT in boot0 (the SPL the ROM starts from it
//! is paired with its own FIT, not boot1's); a BOOT_CFG word with an undefined bit (refused). Needs the patched QEMU (`emmc` user-creatable; docs/qemu-imx8mp.md §4.2).

use std::path::PathBuf;
use std::sync::OnceLock;

use boards::EmmcLayout;
use boot_core::cell::{CopyReport, RomLog, SitStatus};
use boot_core::emmc::BootPartition;
use boot_core::examine::Part;
use boot_core::policy::{Reason, Slot};
use xtask::disk::{DiskSpec, ImageCopy, build_disk, flip_byte};
use xtask::emmc::{BOOT_CONFIG_BOOT0, BOOT_CONFIG_BOOT1, EmmcAttach, build_emmc, copy_offsets};
use xtask::qemu::{SimOutcome, Stop, run};
use xtask::sim::SimKit;

fn kit() -> &'static SimKit {
    static KIT: OnceLock<SimKit> = OnceLock::new();
    KIT.get_or_init(|| {
        xtask::qemu::check_qemu(&xtask::qemu::qemu_binary()).unwrap_or_else(|e| panic!("{e}"));
        SimKit::build(b"qemu emmc scenario tests").unwrap_or_else(|e| panic!("{e}"))
    })
}

/// flash.bin versions 1 and 2 (the eMMC) and 7 and 8 (the SD card).
fn images() -> &'static [Vec<u8>; 4] {
    static IMAGES: OnceLock<[Vec<u8>; 4]> = OnceLock::new();
    IMAGES.get_or_init(|| [1, 2, 7, 8].map(|v| kit().flash_bin(v).unwrap()))
}

struct Rig {
    _dir: tempfile::TempDir,
    fuses: PathBuf,
    sd: PathBuf,
    emmc: PathBuf,
    layout: EmmcLayout,
    /// The partition EXT_CSD[179] enables (the active one).
    active: BootPartition,
}

fn rig(layout: EmmcLayout, cross: bool) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let fuses = dir.path().join("fuses.bin");
    let sd = dir.path().join("sd.img");
    let emmc = dir.path().join("emmc.img");
    let [v1, v2, v7, v8] = images();
    let block = xtask::emmc::fuse_block_for(kit().fuses.to_block(), layout, cross);
    std::fs::write(&fuses, block).unwrap();
    build_disk(&sd, &DiskSpec::new(v7.clone(), v8.clone())).unwrap();
    build_emmc(&emmc, layout, v1, v2).unwrap();
    Rig {
        _dir: dir,
        fuses,
        sd,
        emmc,
        layout,
        active: BootPartition::Boot0,
    }
}

impl Rig {
    fn boot(&self) -> SimOutcome {
        let mut config = kit().sim_config(&self.fuses, &self.sd);
        config.emmc = Some(EmmcAttach {
            boot_config: match self.active {
                BootPartition::Boot0 => BOOT_CONFIG_BOOT0,
                BootPartition::Boot1 => BOOT_CONFIG_BOOT1,
            },
            ..EmmcAttach::new(&self.emmc)
        });
        let out = run(&config, &Stop::Boot).unwrap();
        assert!(!out.timed_out, "QEMU timed out:\n{}", out.uart);
        assert!(
            !out.uart_has("version 7") && !out.uart_has("version 8"),
            "{}",
            out.uart
        );
        out
    }

    /// Flips a byte of `copy`'s SPL code (the ROM refuses it) or FIT data (the shim does).
    fn damage(&self, copy: ImageCopy, part: Part) {
        let o = copy_offsets(&self.emmc, self.layout, self.active, copy).unwrap();
        let at = match part {
            Part::Spl => o.spl_code_byte(),
            Part::Fit => o.fit_data_byte().unwrap(),
        };
        flip_byte(&self.emmc, at).unwrap();
    }
}

fn has(out: &SimOutcome, line: &str) {
    assert!(out.uart_has(line), "no `{line}` on the UART\n{}", out.uart);
}

fn record(out: &SimOutcome) -> boot_core::cell::BootRecord {
    out.decoded_cell()
        .unwrap_or_else(|| panic!("no cell\n{}", out.uart))
        .record
        .unwrap_or_else(|e| panic!("no valid record: {e}\n{}", out.uart))
}

/// The record's SIT names the layout: (a) the table in boot0 (0xFDF), (b) the implied one
/// (N / 512 = 0x2000).
fn sit_of(layout: EmmcLayout) -> u32 {
    match layout {
        EmmcLayout::InOnePartition => 0xFDF,
        EmmcLayout::AcrossPartitions => 0x2000,
    }
}

fn assert_booted(out: &SimOutcome, layout: EmmcLayout, slot: Slot, reason: Reason, version: u32) {
    has(
        out,
        &format!("payload: version {version} slot {} EL3", slot as u32),
    );
    let r = record(out);
    assert_eq!(out.slot_word(), Some(slot as u32));
    assert_eq!(r.reason, Some(reason), "{}", out.uart);
    if r.sit.status != SitStatus::NotRead {
        assert_eq!(
            (r.sit.status, r.sit.first_sector),
            (SitStatus::Valid, sit_of(layout))
        );
    }
}

#[test]
fn layout_a_normal_fit_fallback_rom_fallback_and_both_bad() {
    let l = EmmcLayout::InOnePartition;
    let r = rig(l, false);
    let out = r.boot();
    has(
        &out,
        "rom: eMMC EXT_CSD[179] 0x48: boot0 enabled, cross-partition fallback off",
    );
    has(&out, "rom: starting the primary SPL from boot0 0x8400");
    assert!(
        out.shim_logged(
            "INFO",
            "uSDHC3: eMMC, 114688 user blocks, boot partitions 8192 blocks, EXT_CSD[179] 0x48: booting boot0 (layout a)"
        ),
        "{}",
        out.uart
    );
    has(&out, "shim: primary at 0x8400: authentic");
    assert_booted(&out, l, Slot::Primary, Reason::PrimaryOk, 1);

    // The shim's fallback inside boot0: primary FIT bad, the SIT's secondary at 0x204200.
    r.damage(ImageCopy::Primary, Part::Fit);
    let out = r.boot();
    has(&out, "shim: primary at 0x8400: rejected (image-signature)");
    has(&out, "shim: SIT valid, firstSectorNumber 0xfdf");
    has(&out, "shim: secondary at 0x204200: authentic");
    assert_booted(&out, l, Slot::Secondary, Reason::PrimaryFailed, 2);
    let rec = record(&out);
    assert!(matches!(
        rec.primary,
        CopyReport::Rejected {
            part: Some(Part::Fit),
            ..
        }
    ));

    // The ROM's fallback: primary SPL bad too, warm reset, the secondary SPL through the SIT
    // inside the partition; the shim pairs it with the secondary's FIT.
    r.damage(ImageCopy::Primary, Part::Spl);
    let out = r.boot();
    has(&out, "rom: PERSIST_SECONDARY_BOOT set; warm reset");
    has(&out, "rom: starting the secondary SPL from boot0 0x204200");
    assert!(!out.uart_has("shim: primary at"), "{}", out.uart);
    assert_booted(&out, l, Slot::Secondary, Reason::RomSecondary, 2);
    let rec = record(&out);
    assert_eq!(rec.rom.log, RomLog::SecondaryBoot);
    assert_eq!(rec.primary, CopyReport::NotExamined);

    // Both SPLs bad: serial download, the shim never runs.
    r.damage(ImageCopy::Secondary, Part::Spl);
    let out = r.boot();
    assert!(out.serial_download(), "{}", out.uart);
    has(&out, "rom: secondary SPL not started: SPL: not authentic");
    assert!(!out.uart_has("imx-redundant-boot "), "{}", out.uart);
}

#[test]
fn layout_b_follows_boot_partition_enable_and_falls_back_to_the_other_partition() {
    let l = EmmcLayout::AcrossPartitions;
    // boot1 enabled: its copy (version 2) is copy 1.
    let mut r = rig(l, false);
    r.active = BootPartition::Boot1;
    let out = r.boot();
    has(
        &out,
        "rom: eMMC EXT_CSD[179] 0x50: boot1 enabled, cross-partition fallback off",
    );
    has(&out, "rom: starting the primary SPL from boot1 0x8400");
    has(&out, "(layout b)");
    assert_booted(&out, l, Slot::Primary, Reason::PrimaryOk, 2);

    // boot0 enabled, its FIT bad: the shim boots boot1's copy (virtual copy 2 at N + 0x8400).
    r.active = BootPartition::Boot0;
    r.damage(ImageCopy::Primary, Part::Fit);
    let out = r.boot();
    has(&out, "rom: starting the primary SPL from boot0 0x8400");
    has(&out, "shim: primary at 0x8400: rejected (image-signature)");
    has(&out, "shim: SIT valid, firstSectorNumber 0x2000");
    has(&out, "shim: secondary at 0x408400: authentic");
    assert_booted(&out, l, Slot::Secondary, Reason::PrimaryFailed, 2);
}

#[test]
fn layout_b_bad_active_spl_boots_only_where_the_rom_crosses_partitions() {
    let l = EmmcLayout::AcrossPartitions;
    // The worse case: the ROM does not fall back to boot1. Serial download.
    let r = rig(l, false);
    r.damage(ImageCopy::Primary, Part::Spl);
    let out = r.boot();
    has(&out, "rom: PERSIST_SECONDARY_BOOT set; warm reset");
    has(&out, "rom: SIT: bad-tag");
    assert!(out.serial_download(), "{}", out.uart);
    assert!(!out.uart_has("imx-redundant-boot "), "{}", out.uart);

    // A ROM that does: boot1's SPL, logged as the secondary; the shim boots boot1's FIT
    // without reading boot0.
    let r = rig(l, true);
    r.damage(ImageCopy::Primary, Part::Spl);
    let out = r.boot();
    has(
        &out,
        "rom: eMMC EXT_CSD[179] 0x48: boot0 enabled, cross-partition fallback on",
    );
    has(&out, "rom: starting the secondary SPL from boot1 0x8400");
    has(
        &out,
        "shim: ROM started the secondary SPL (log 0x51, BT_STAGE 0x9, HAB pass, persist set (cleared))",
    );
    assert!(!out.uart_has("shim: primary at"), "{}", out.uart);
    assert_booted(&out, l, Slot::Secondary, Reason::RomSecondary, 2);
    assert_eq!(record(&out).primary, CopyReport::NotExamined);

    // Both bad: nothing to fall back to even for that ROM.
    r.damage(ImageCopy::Secondary, Part::Spl);
    let out = r.boot();
    assert!(out.serial_download(), "{}", out.uart);
    has(&out, "rom: secondary SPL not started: SPL: not authentic");
}

/// Layout (b) whose boot0 still holds a valid SIT of its own with a copy behind it (a factory
/// image in layout (a)): with copy 1's SPL bad the ROM starts that table's secondary (0x51);
/// the shim judges boot0 as layout (a) and boots that copy's FIT (version 1), never boot1's
/// (version 2), whose SPL did not run.
#[test]
fn layout_b_stale_sit_in_the_active_partition_is_not_paired_with_boot1() {
    use std::os::unix::fs::FileExt;
    let l = EmmcLayout::AcrossPartitions;
    let r = rig(l, false);
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&r.emmc)
        .unwrap();
    f.write_all_at(&imx_hab::sit::build_sector(0xFDF), 0x8200)
        .unwrap();
    f.write_all_at(&images()[0], 0x20_4200).unwrap();
    drop(f);
    r.damage(ImageCopy::Primary, Part::Spl);
    let out = r.boot();
    has(&out, "rom: starting the secondary SPL from boot0 0x204200");
    has(
        &out,
        "shim: eMMC layout (b): the ROM started the secondary of boot0's own SIT (firstSectorNumber 0xfdf, a stale layout (a) table): boot0 judged as layout (a)",
    );
    has(&out, "shim: secondary at 0x204200: authentic");
    has(&out, "payload: version 1 slot 2 EL3");
    let rec = record(&out);
    assert_eq!(rec.reason, Some(Reason::RomSecondary), "{}", out.uart);
    assert_eq!(
        (rec.sit.status, rec.sit.first_sector),
        (SitStatus::Valid, 0xFDF)
    );
}

/// A BOOT_CFG word with a bit the simulation does not define is refused, not half-read: the
/// ROM model names the word and the bits and goes to serial download; no shim runs.
#[test]
fn boot_cfg_with_an_undefined_bit_is_refused() {
    let r = rig(EmmcLayout::InOnePartition, false);
    let mut block = std::fs::read(&r.fuses).unwrap();
    let at = boards::boot_cfg::SIM_BLOCK_OFFSET;
    block[at + 2] |= 0x10; // bit 20
    std::fs::write(&r.fuses, &block).unwrap();
    let out = r.boot();
    has(
        &out,
        "rom: boot device: BOOT_CFG 0x00102000 sets bits 0x00100000 the simulation does not define",
    );
    assert!(out.serial_download(), "{}", out.uart);
    assert!(!out.uart_has("imx-redundant-boot "), "{}", out.uart);
}
