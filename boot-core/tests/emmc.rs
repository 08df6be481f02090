//! eMMC boot partitions over memory (docs/design.md §5.5): layout (a) inside one partition and
//! layout (b) across boot0/boot1 through the virtual device, the ROM's choice with and without
//! its disputed cross-partition fallback, the shim's flow and the prediction `ubootctl` uses.

mod common;

use boards::EmmcLayout;
use boot_core::boot::{Hardware, Memory};
use boot_core::cell::{RomInfo, RomLog};
use boot_core::emmc::{self, BootPartition, BootPartitionRead, EmmcStart};
use boot_core::examine::Rules;
use boot_core::platform::{BlockRead, MediaError};
use boot_core::policy::{Reason, Slot};
use boot_core::rom::RomStart;
use common::*;
use imx_hab::hab::software::SoftwareHab;
use imx_hab::image::SignedFit;

const N: usize = 4 << 20;

/// boot0 and boot1 in memory, of `.1` bytes each.
struct Parts([MemDisk; 2], usize);

impl Parts {
    fn new() -> Self {
        Self::of(N)
    }
    fn of(n: usize) -> Self {
        Parts([MemDisk::new(n), MemDisk::new(n)], n)
    }
    fn disk(&mut self, p: BootPartition) -> &mut MemDisk {
        &mut self.0[usize::from(p.number() - 1)]
    }
}

impl BootPartitionRead for Parts {
    fn partition_blocks(&self) -> u64 {
        (self.1 / 512) as u64
    }
    fn read_partition(
        &mut self,
        p: BootPartition,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), MediaError> {
        self.disk(p).read_blocks(lba, buf)
    }
}

fn v(version: u8) -> Vec<u8> {
    flash_bin(&signed(&standard_fit(version), LOAD, pki()))
}

fn bad_fit(version: u8) -> Vec<u8> {
    let mut f = v(version);
    let at = BOARD.media.fit_offset as usize;
    let data = {
        let s = SignedFit::parse(&f[at..]).unwrap();
        s.fit.image_by_name("payload").unwrap().data.offset as usize
    };
    f[at + data] ^= 0xFF;
    f
}

fn bad_spl(version: u8) -> Vec<u8> {
    let mut f = v(version);
    f[0] ^= 0xFF;
    f
}

/// Layout (b): one copy at 0x8400 in each partition.
fn layout_b(boot0: &[u8], boot1: &[u8]) -> Parts {
    let mut p = Parts::new();
    p.disk(BootPartition::Boot0).put(0x8400, boot0);
    p.disk(BootPartition::Boot1).put(0x8400, boot1);
    p
}

/// Layout (a) in boot0: SIT 0xFDF, copies at 0x8400 and 0x204200.
fn layout_a(primary: &[u8], secondary: &[u8]) -> Parts {
    let mut p = Parts::new();
    let d = p.disk(BootPartition::Boot0);
    d.put(0x8200, &imx_hab::sit::build_sector(0xFDF));
    d.put(0x8400, primary);
    d.put(0x20_4200, secondary);
    p
}

struct Predicted {
    started: Option<EmmcStart>,
    slot: Option<Slot>,
    reason: Option<Reason>,
    booted_payload_version: Option<u8>,
}

fn predict(
    parts: &mut Parts,
    layout: EmmcLayout,
    enabled: BootPartition,
    cross: bool,
) -> Predicted {
    let fuses = fuses();
    let mut hab = SoftwareHab { fuses };
    let clock = StepClock::default();
    let mut wd = CountingWatchdog::default();
    let mut console = String::new();
    let mut window = vec![0u8; WINDOW_LEN];
    let mut hw = Hardware {
        disk: parts,
        hab: &mut hab,
        clock: &clock,
        watchdog: &mut wd,
        console: &mut console,
    };
    let Some((started, o)) = emmc::predict(
        BOARD,
        Rules::of(&fuses),
        layout,
        enabled,
        cross,
        &mut hw,
        Memory {
            window: &mut window,
            window_base: u64::from(LOAD),
            shim: SHIM,
        },
    ) else {
        return Predicted {
            started: None,
            slot: None,
            reason: None,
            booted_payload_version: None,
        };
    };
    // The record the shim would write reads back (the cell's consistency rules, design.md §6).
    if let Err(e) = boot_core::cell::decode(&o.record.encode()) {
        panic!("the record does not decode: {e}\n{console}");
    }
    // The payload's first byte is the FIT's version (test_images::standard_fit).
    let booted_payload_version = o.bootable.as_ref().map(|b| {
        let c = b
            .examined
            .fit
            .plan
            .copies
            .iter()
            .find(|c| c.name.as_str() == "payload")
            .unwrap();
        window[b.examined.fit.window_offset + c.src_offset as usize]
    });
    Predicted {
        started: Some(started),
        slot: o.decision.slot,
        reason: o.record.reason,
        booted_payload_version,
    }
}

fn start(partition: BootPartition, slot: Slot) -> Option<EmmcStart> {
    Some(EmmcStart { partition, slot })
}

#[test]
fn layout_b_boots_the_enabled_partitions_copy() {
    for enabled in [BootPartition::Boot0, BootPartition::Boot1] {
        let mut p = layout_b(&v(1), &v(2));
        let r = predict(&mut p, EmmcLayout::AcrossPartitions, enabled, false);
        assert_eq!(r.started, start(enabled, Slot::Primary));
        assert_eq!(
            (r.slot, r.reason),
            (Some(Slot::Primary), Some(Reason::PrimaryOk))
        );
        assert_eq!(r.booted_payload_version, Some(enabled.number()));
    }
}

#[test]
fn layout_b_with_a_bad_active_fit_boots_the_other_partition() {
    let mut p = layout_b(&bad_fit(1), &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.started, start(BootPartition::Boot0, Slot::Primary));
    assert_eq!(
        (r.slot, r.reason, r.booted_payload_version),
        (Some(Slot::Secondary), Some(Reason::PrimaryFailed), Some(2))
    );
}

#[test]
fn layout_b_bad_active_spl_depends_on_the_roms_cross_partition_fallback() {
    // Without the fallback (the worse case ubootctl plans for) the device does not boot.
    let mut p = layout_b(&bad_spl(1), &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        false,
    );
    assert_eq!((r.started, r.slot), (None, None));
    // With it, the ROM starts boot1's SPL, logged as the secondary; the shim pairs it with
    // boot1's FIT without reading boot0.
    let mut p = layout_b(&bad_spl(1), &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        true,
    );
    assert_eq!(r.started, start(BootPartition::Boot1, Slot::Secondary));
    assert_eq!(
        (r.slot, r.reason, r.booted_payload_version),
        (Some(Slot::Secondary), Some(Reason::RomSecondary), Some(2))
    );
}

#[test]
fn layout_b_ignores_whatever_the_active_partition_holds_at_the_sit_sector() {
    let mut p = layout_b(&bad_fit(1), &v(2));
    // A SIT pointing elsewhere in boot0 is not the implied one.
    p.disk(BootPartition::Boot0)
        .put(0x8200, &imx_hab::sit::build_sector(0x100));
    let r = predict(
        &mut p,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.booted_payload_version, Some(2));
}

#[test]
fn layout_a_falls_back_inside_the_partition() {
    let mut p = layout_a(&v(1), &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.started, start(BootPartition::Boot0, Slot::Primary));
    assert_eq!(r.booted_payload_version, Some(1));

    let mut p = layout_a(&bad_fit(1), &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(
        (r.slot, r.reason, r.booted_payload_version),
        (Some(Slot::Secondary), Some(Reason::PrimaryFailed), Some(2))
    );

    // A bad primary SPL: the ROM's warm reset to the SIT's secondary, knob or not.
    for cross in [false, true] {
        let mut p = layout_a(&bad_spl(1), &v(2));
        let r = predict(
            &mut p,
            EmmcLayout::InOnePartition,
            BootPartition::Boot0,
            cross,
        );
        assert_eq!(r.started, start(BootPartition::Boot0, Slot::Secondary));
        assert_eq!(
            (r.slot, r.reason, r.booted_payload_version),
            (Some(Slot::Secondary), Some(Reason::RomSecondary), Some(2))
        );
    }

    let mut p = layout_a(&bad_spl(1), &bad_spl(2));
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        true,
    );
    assert_eq!((r.started, r.slot), (None, None));
}

#[test]
fn layout_a_in_the_other_partition_is_not_read() {
    // Layout (a) in boot1 with boot0 enabled: boot0 is empty, nothing starts.
    let mut p = Parts::new();
    let d = p.disk(BootPartition::Boot1);
    d.put(0x8200, &imx_hab::sit::build_sector(0xFDF));
    d.put(0x8400, &v(1));
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        false,
    );
    assert_eq!((r.started, r.slot), (None, None));
    assert!(p.disk(BootPartition::Boot1).reads.is_empty());
}

#[test]
fn the_rom_choice_reports_offsets_inside_the_partition() {
    let mut p = layout_b(&bad_spl(1), &v(2));
    let fuses = fuses();
    let mut hab = SoftwareHab { fuses };
    let clock = StepClock::default();
    let mut wd = CountingWatchdog::default();
    let mut console = String::new();
    let mut buf = vec![0u8; BOARD.media.fit_offset as usize];
    let mut hw = Hardware {
        disk: &mut p,
        hab: &mut hab,
        clock: &clock,
        watchdog: &mut wd,
        console: &mut console,
    };
    let rules = Rules::of(&fuses);
    let cold = emmc::choose(
        &mut hw,
        BOARD,
        rules,
        BootPartition::Boot0,
        true,
        &mut buf,
        false,
    );
    assert!(
        matches!(cold.start, RomStart::WarmResetToSecondary { .. }),
        "{cold:?}"
    );
    let warm = emmc::choose(
        &mut hw,
        BOARD,
        rules,
        BootPartition::Boot0,
        true,
        &mut buf,
        true,
    );
    assert_eq!(warm.partition, BootPartition::Boot1);
    let RomStart::Boot {
        copy_offset, slot, ..
    } = warm.start
    else {
        panic!("{warm:?}")
    };
    assert_eq!((copy_offset, slot), (0x8400, Slot::Secondary));
    // The shim's flow, told the ROM started the secondary, reads boot1's copy only.
    let rom = RomInfo {
        log: RomLog::SecondaryBoot,
        ..RomInfo::UNKNOWN
    };
    let mut window = vec![0u8; WINDOW_LEN];
    p.disk(BootPartition::Boot0).reads.clear();
    let mut hw = Hardware {
        disk: &mut p,
        hab: &mut hab,
        clock: &clock,
        watchdog: &mut wd,
        console: &mut console,
    };
    let o = emmc::run(
        BOARD,
        rules,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        &mut hw,
        Memory {
            window: &mut window,
            window_base: u64::from(LOAD),
            shim: SHIM,
        },
        rom,
    );
    assert_eq!(o.decision.slot, Some(Slot::Secondary));
    // Of boot0 only its SIT sector, to rule out a stale table of its own (emmc::own_sit).
    assert_eq!(
        p.disk(BootPartition::Boot0).reads,
        [(0x8200, 512)],
        "boot0 was read"
    );
}

/// Layout (b) whose active partition still holds a valid SIT of its own (a factory image in
/// layout (a)): with a bad copy-1 SPL the ROM starts that table's secondary (log 0x51). The
/// shim pairs it with its own FIT in boot0, never with boot1's copy 2, and the prediction
/// flags the start as contradicting the layout; with a good copy 1 nothing is flagged.
#[test]
fn layout_b_with_a_stale_sit_in_the_active_partition() {
    let stale = || {
        let mut p = layout_b(&bad_spl(1), &v(2));
        let d = p.disk(BootPartition::Boot0);
        d.put(0x8200, &imx_hab::sit::build_sector(0xFDF));
        d.put(0x20_4200, &v(3));
        p
    };
    for cross in [false, true] {
        let mut p = stale();
        let r = predict(
            &mut p,
            EmmcLayout::AcrossPartitions,
            BootPartition::Boot0,
            cross,
        );
        let s = r.started.unwrap();
        assert_eq!(
            s,
            EmmcStart {
                partition: BootPartition::Boot0,
                slot: Slot::Secondary
            }
        );
        assert!(s.stale_sit(EmmcLayout::AcrossPartitions, BootPartition::Boot0));
        assert!(!s.stale_sit(EmmcLayout::InOnePartition, BootPartition::Boot0));
        assert_eq!(
            (r.slot, r.reason, r.booted_payload_version),
            (Some(Slot::Secondary), Some(Reason::RomSecondary), Some(3)),
            "the SPL from boot0 was paired with another FIT (cross {cross})"
        );
        assert!(p.disk(BootPartition::Boot1).reads.is_empty(), "boot1 read");
    }
    // The stale secondary's FIT bad: boot1's FIT is still not paired with boot0's SPL.
    let mut p = stale();
    let fit = bad_fit(3);
    p.disk(BootPartition::Boot0).put(0x20_4200, &fit);
    let r = predict(
        &mut p,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.booted_payload_version, None);
    // A good copy 1: the ROM starts it, nothing contradicts layout (b).
    let mut p = stale();
    p.disk(BootPartition::Boot0).put(0x8400, &v(1));
    let r = predict(
        &mut p,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        false,
    );
    assert!(
        !r.started
            .unwrap()
            .stale_sit(EmmcLayout::AcrossPartitions, BootPartition::Boot0)
    );
    assert_eq!(r.booted_payload_version, Some(1));
    // The API ubootctl checks each partition with.
    let mut p = stale();
    assert_eq!(
        emmc::own_sit(&mut p, BOARD, BootPartition::Boot0).status,
        boot_core::cell::SitStatus::Valid
    );
    assert_eq!(
        emmc::own_sit(&mut p, BOARD, BootPartition::Boot1).status,
        boot_core::cell::SitStatus::BadTag
    );
}

/// Layout (a) with the standard SIT 0x1000 in a 4 MiB boot0, as NXP's community thread
/// m-p/1897391 shows a real 8MM booting its secondary from it: the slots come from the SIT
/// (2 MiB, then the rest of the partition), for the shim's fallback and the ROM's alike.
#[test]
fn layout_a_takes_its_slots_from_the_sit() {
    let sit_0x1000 = |primary: &[u8], secondary: &[u8]| {
        let mut p = Parts::new();
        let d = p.disk(BootPartition::Boot0);
        d.put(0x8200, &imx_hab::sit::build_sector(0x1000));
        d.put(0x8400, primary);
        d.put(0x20_8400, secondary);
        p
    };
    let mut p = sit_0x1000(&bad_fit(1), &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.started, start(BootPartition::Boot0, Slot::Primary));
    assert_eq!(
        (r.slot, r.reason, r.booted_payload_version),
        (Some(Slot::Secondary), Some(Reason::PrimaryFailed), Some(2))
    );
    let mut p = sit_0x1000(&bad_spl(1), &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.started, start(BootPartition::Boot0, Slot::Secondary));
    assert_eq!(r.booted_payload_version, Some(2));

    // An image made for 4 MiB (SIT 0xFDF) on a part with 8 MiB boot partitions.
    let mut p = Parts::of(8 << 20);
    let d = p.disk(BootPartition::Boot0);
    d.put(0x8200, &imx_hab::sit::build_sector(0xFDF));
    d.put(0x8400, &bad_fit(1));
    d.put(0x20_4200, &v(2));
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(
        (r.slot, r.booted_payload_version),
        (Some(Slot::Secondary), Some(2))
    );
}

/// The slots from the SIT still bound what each copy may be: a primary whose FIT runs into
/// the secondary's slot, a SIT leaving the primary no room for its FIT, a secondary past the
/// end of the partition.
#[test]
fn layout_a_refuses_slots_that_do_not_hold_their_copy() {
    let copy = v(1);
    // A valid SIT whose primary slot reaches past the FIT offset but ends one sector before
    // the primary's FIT does.
    let first = (find_fit_end(&copy) / 512 - 1) as u32;
    assert!(u64::from(first) * 512 > BOARD.media.fit_offset);
    let mut p = Parts::new();
    let d = p.disk(BootPartition::Boot0);
    d.put(0x8200, &imx_hab::sit::build_sector(first));
    d.put(0x8400, &copy);
    let r = predict(
        &mut p,
        EmmcLayout::InOnePartition,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.started, start(BootPartition::Boot0, Slot::Primary));
    assert_eq!(r.slot, None, "a primary larger than its slot was booted");

    for first in [0x2BE, 0x2000, 0x1FFE] {
        let mut p = Parts::new();
        let d = p.disk(BootPartition::Boot0);
        d.put(0x8200, &imx_hab::sit::build_sector(first));
        d.put(0x8400, &bad_spl(1));
        let r = predict(
            &mut p,
            EmmcLayout::InOnePartition,
            BootPartition::Boot0,
            false,
        );
        assert_eq!((r.started, r.slot), (None, None), "SIT {first:#x}");
    }
}

/// Bytes of a flash.bin up to the end of its FIT's CSF area (what its slot must hold).
fn find_fit_end(copy: &[u8]) -> usize {
    let at = BOARD.media.fit_offset as usize;
    let total = imx_hab::fit::totalsize(&copy[at..at + 512]).unwrap() as u64;
    at + (imx_hab::image::ivt_offset_for(total) + boot_core::boot::CSF_AREA) as usize
}

/// Layout (b) on boot partitions of 2 MiB and 1 MiB: copy 1's slot ends at N, and copy 2 is
/// still the fallback.
#[test]
fn layout_b_keeps_its_fallback_on_small_partitions() {
    for n in [2usize << 20, 1 << 20] {
        let mut p = Parts::of(n);
        p.disk(BootPartition::Boot0).put(0x8400, &bad_fit(1));
        p.disk(BootPartition::Boot1).put(0x8400, &v(2));
        let r = predict(
            &mut p,
            EmmcLayout::AcrossPartitions,
            BootPartition::Boot0,
            false,
        );
        assert_eq!(
            r.started,
            start(BootPartition::Boot0, Slot::Primary),
            "N {n:#x}"
        );
        assert_eq!(
            (r.slot, r.booted_payload_version),
            (Some(Slot::Secondary), Some(2)),
            "N {n:#x}"
        );
    }
    // Partitions too small for a slot reaching the FIT: nothing boots.
    let n = 256 << 10;
    let mut p = Parts::of(n);
    let c = v(1);
    p.disk(BootPartition::Boot0)
        .put(0x8400, &c[..c.len().min(n - 0x8400)]);
    let r = predict(
        &mut p,
        EmmcLayout::AcrossPartitions,
        BootPartition::Boot0,
        false,
    );
    assert_eq!(r.slot, None);
}
