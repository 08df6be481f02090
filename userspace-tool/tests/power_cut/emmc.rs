//! The power-cut sweep of the eMMC A/B layout (b): update and sync over both boot partitions
//! and EXT_CSD[179], cut at every block write and at the switch (before and after it), under
//! the worse ROM assumption: the ROM reads the enabled boot partition only, never the other.
//!
//! After each cut: the ROM must start the enabled partition's SPL (copy 1 of the view), the
//! shim must boot an authentic copy byte-identical to a known image, and a re-run after the
//! reboot and one without it must finish (the new image enabled, the other partition an
//! authentic fallback; after a sync, both equal).
//!
//! The default run cuts clean and torn new/old (which covers the switch both before and after
//! the CMD6); `UBOOTCTL_FULL_SWEEP=1` adds torn old/new and garbage blocks (twice the time).

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use boot_core::policy::{CopyVerdict, Slot};
use ubootctl::blockdev::{BlockDevice, MemDevice};
use ubootctl::emmc::ab::{self, AbDevice, ab_state};
use ubootctl::emmc::{BootPartition, ExtCsdAccess, MemExtCsd};
use ubootctl::exec::{ExecOptions, NoProgress};
use ubootctl::plan::Running;

use super::medium::{board, emmc_pair, fuses, identity, image, tampered};
use super::{FLAVOURS, Flavour, Power};

type Shared = Rc<RefCell<Power>>;

/// A boot partition on the cut board.
struct CutPart(MemDevice, Shared);

impl BlockDevice for CutPart {
    fn size(&self) -> u64 {
        self.0.size()
    }
    fn logical_block_size(&self) -> u32 {
        self.0.logical_block_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.1.borrow().check()?;
        self.0.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.1.borrow_mut().write(&mut self.0, offset, data)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.1.borrow().check()
    }
}

/// EXT_CSD on the cut board.
struct CutExt(MemExtCsd, Shared);

impl ExtCsdAccess for CutExt {
    fn read_ext_csd(&mut self) -> io::Result<[u8; 512]> {
        self.1.borrow().check()?;
        self.0.read_ext_csd()
    }
    fn write_byte(&mut self, index: u8, value: u8) -> io::Result<()> {
        self.1.borrow_mut().switch(&mut self.0, index, value)
    }
}

/// A layout (b) medium: both partitions and EXT_CSD.
#[derive(Clone)]
struct Emmc {
    parts: [MemDevice; 2],
    ext: MemExtCsd,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Update,
    Sync,
}

struct Scenario {
    name: &'static str,
    start: Emmc,
    running: Running,
    op: Op,
}

const OPTS: ExecOptions = ExecOptions {
    chunk_size: 64 * 1024,
};

/// Runs `op` on `emmc` with the power cut at write `cut_at`; returns the medium as left, the
/// number of writes (CMD6 included) and whether the run finished.
fn run(
    emmc: &Emmc,
    op: Op,
    running: Running,
    cut_at: usize,
    flavour: Flavour,
) -> (Emmc, usize, bool) {
    let power: Shared = Rc::new(RefCell::new(Power::new(cut_at, flavour)));
    let [b0, b1] = emmc.parts.clone();
    let mut dev = AbDevice::new(
        CutPart(b0, power.clone()),
        CutPart(b1, power.clone()),
        CutExt(emmc.ext.clone(), power.clone()),
        BootPartition::Boot0,
        board(),
    );
    let r = match op {
        Op::Update => ab::update(
            &mut dev,
            board(),
            &fuses(),
            image(2).to_vec(),
            running,
            &OPTS,
            &mut NoProgress,
        ),
        Op::Sync => ab::sync(&mut dev, board(), &fuses(), running, &OPTS, &mut NoProgress),
    };
    let ok = r.is_ok();
    let ext = dev.ext_csd().0.clone();
    let parts = [dev.parts()[0].0.clone(), dev.parts()[1].0.clone()];
    let writes = power.borrow().writes;
    (Emmc { parts, ext }, writes, ok)
}

fn state(e: &Emmc) -> Result<ab::AbState, String> {
    ab_state(
        &e.parts[0],
        &e.parts[1],
        e.ext.partition_config(),
        board(),
        &fuses(),
    )
    .map_err(|e| e.to_string())
}

/// The copy the next boot runs, if the device boots under the worse ROM assumption.
fn boots(e: &Emmc) -> Result<(Slot, Vec<u8>), String> {
    let st = state(e)?;
    if st.stale_start() {
        return Err("the ROM would start the enabled partition's stale SIT secondary".into());
    }
    if st.media.rom_start != Some(Slot::Primary) {
        return Err(format!(
            "the ROM would have to start {:?} (the other boot partition): no fallback across \
             partitions assumed",
            st.media.rom_start
        ));
    }
    let slot = st.media.decision().slot.ok_or("nothing bootable")?;
    let copy = match slot {
        Slot::Primary => &st.media.primary,
        Slot::Secondary => &st.media.secondary,
    };
    let img = copy
        .image()
        .ok_or("the booted copy is not authentic")?
        .to_vec();
    if !(0..3).any(|v| image(v).get(..img.len()) == Some(&img[..])) {
        return Err("the booted copy is no known image".into());
    }
    Ok((slot, img))
}

/// What a finished run must leave.
fn finished(e: &Emmc, op: Op, running_img: &[u8]) -> Result<(), String> {
    let st = state(e)?;
    let (p, s) = (&st.media.primary, &st.media.secondary);
    let want = match op {
        Op::Update => image(2),
        Op::Sync => running_img,
    };
    if p.bytes.get(..want.len()) != Some(want) || st.media.rom_start != Some(Slot::Primary) {
        return Err(format!(
            "{} (enabled) does not hold the expected image",
            st.active
        ));
    }
    if s.verdict() != CopyVerdict::Authentic {
        return Err(format!("{} is no authentic fallback", st.active.other()));
    }
    if op == Op::Sync && s.image() != p.image() {
        return Err("after a sync the partitions differ".into());
    }
    // A partition the run wrote or enabled carries no SIT: after an update, the enabled one;
    // after a sync, the other one.
    let checked = match op {
        Op::Update => st.active,
        Op::Sync => st.active.other(),
    };
    if st.own_sit[checked.index()].status == boot_core::cell::SitStatus::Valid {
        return Err(format!("{checked} still holds a valid SIT of its own"));
    }
    Ok(())
}

fn judge(e: &Emmc, s: &Scenario) -> Result<(), String> {
    let (slot, img) = boots(e)?;
    let rebooted = Running {
        slot: Some(slot),
        booted: Some(identity(&img)),
    };
    for (what, running) in [
        ("after the reboot", rebooted),
        ("without a reboot", s.running),
    ] {
        // A sync re-run without a reboot after the update's switch is refused by design; the
        // sweep of a sync starts from a rebooted state, so it only re-runs after the reboot.
        if s.op == Op::Sync && what == "without a reboot" && running.booted.is_none() {
            continue;
        }
        let (after, _, ok) = run(e, s.op, running, usize::MAX, Flavour::Clean);
        if !ok {
            return Err(format!("the re-run {what} failed"));
        }
        let running_img = if what == "without a reboot" {
            start_image(s)
        } else {
            img.clone()
        };
        finished(&after, s.op, &running_img).map_err(|m| format!("re-run {what}: {m}"))?;
    }
    Ok(())
}

fn start_image(s: &Scenario) -> Vec<u8> {
    boots(&s.start).expect("the start state boots").1
}

fn emmc(boot0: Option<&[u8]>, boot1: Option<&[u8]>, pc: u8) -> Emmc {
    Emmc {
        parts: emmc_pair(boot0, boot1),
        ext: MemExtCsd::new(pc),
    }
}

/// `e` with a layout (a) table fitted to the partition (a stale factory SIT) in both
/// partitions' sector 0x41.
fn with_stale_sits(mut e: Emmc) -> Emmc {
    for p in &mut e.parts {
        p.write_at(0x8200, &imx_hab::sit::build_sector(0xFDF))
            .unwrap();
    }
    e
}

fn scenarios() -> Vec<Scenario> {
    let r = |slot, img: &[u8]| Running {
        slot: Some(slot),
        booted: Some(identity(img)),
    };
    let damaged = tampered(0);
    let (i0, i1, i2) = (image(0), image(1), image(2));
    let s = |name, start, running, op| Scenario {
        name,
        start,
        running,
        op,
    };
    vec![
        s(
            "update, boot0 active, boot1 empty",
            emmc(Some(i1), None, 0x48),
            r(Slot::Primary, i1),
            Op::Update,
        ),
        s(
            "update, boot0 active, boot1 stale",
            emmc(Some(i1), Some(i0), 0x48),
            r(Slot::Primary, i1),
            Op::Update,
        ),
        s(
            "update, boot1 active, boot0 stale",
            emmc(Some(i0), Some(i1), 0x50),
            r(Slot::Primary, i1),
            Op::Update,
        ),
        s(
            "update, boot1 holds it, not switched",
            emmc(Some(i1), Some(i2), 0x48),
            r(Slot::Primary, i1),
            Op::Update,
        ),
        s(
            "update, no identity (--running 1)",
            emmc(Some(i1), Some(i0), 0x48),
            Slot::Primary.into_running(),
            Op::Update,
        ),
        s(
            "update, running 2, boot0's FIT damaged",
            emmc(Some(&damaged), Some(i1), 0x48),
            r(Slot::Secondary, i1),
            Op::Update,
        ),
        s(
            "update, running 2, boot0 old",
            emmc(Some(i0), Some(i1), 0x08),
            r(Slot::Secondary, i1),
            Op::Update,
        ),
        s(
            "update, both partitions with a stale SIT",
            with_stale_sits(emmc(Some(i1), Some(i0), 0x48)),
            r(Slot::Primary, i1),
            Op::Update,
        ),
        s(
            "update, running 2, stale SITs",
            with_stale_sits(emmc(Some(&damaged), Some(i1), 0x48)),
            r(Slot::Secondary, i1),
            Op::Update,
        ),
        s(
            "update, boot1 holds it, stale SITs",
            with_stale_sits(emmc(Some(i1), Some(i2), 0x48)),
            r(Slot::Primary, i1),
            Op::Update,
        ),
        s(
            "sync, stale SITs",
            with_stale_sits(emmc(Some(i1), Some(i0), 0x48)),
            r(Slot::Primary, i1),
            Op::Sync,
        ),
        s(
            "sync, boot0 active, boot1 stale",
            emmc(Some(i1), Some(i0), 0x48),
            r(Slot::Primary, i1),
            Op::Sync,
        ),
        s(
            "sync, running 2, boot0's FIT damaged",
            emmc(Some(&damaged), Some(i1), 0x48),
            r(Slot::Secondary, i1),
            Op::Sync,
        ),
    ]
}

trait IntoRunning {
    fn into_running(self) -> Running;
}

impl IntoRunning for Slot {
    fn into_running(self) -> Running {
        Some(self).into()
    }
}

/// The flavours of this run (see the module documentation).
fn flavours() -> Vec<Flavour> {
    if std::env::var_os("UBOOTCTL_FULL_SWEEP").is_some_and(|v| v == "1") {
        FLAVOURS.to_vec()
    } else {
        vec![Flavour::Clean, Flavour::TornNewOld]
    }
}

#[test]
fn every_power_cut_of_the_ab_layout_leaves_the_enabled_partition_bootable() {
    let mut total = 0;
    let mut bricks = Vec::new();
    let scenarios = scenarios();
    let tallies: Vec<(usize, usize, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = scenarios
            .iter()
            .map(|s| {
                scope.spawn(move || {
                    let (done, writes, ok) =
                        run(&s.start, s.op, s.running, usize::MAX, Flavour::Clean);
                    assert!(ok, "{}: the uncut run fails", s.name);
                    finished(&done, s.op, &start_image(s))
                        .unwrap_or_else(|e| panic!("{}: {e}", s.name));
                    let mut bricks = Vec::new();
                    let mut points = 0;
                    for flavour in flavours() {
                        for k in 0..=writes {
                            let (cut, _, ok) = run(&s.start, s.op, s.running, k, flavour);
                            assert_eq!(ok, k == writes, "{}: cut at {k}", s.name);
                            points += 1;
                            if let Err(why) = judge(&cut, s) {
                                bricks.push(format!(
                                    "{}: {flavour:?} cut at write {k}/{writes}: {why}",
                                    s.name
                                ));
                            }
                        }
                    }
                    (writes, points, bricks)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (s, (writes, points, b)) in scenarios.iter().zip(tallies) {
        println!(
            "power-cut sweep (eMMC A/B): {:<40} {:>3} writes incl. CMD6, {:>4} cut points, {} bricks",
            s.name,
            writes,
            points,
            b.len()
        );
        total += points;
        bricks.extend(b);
    }
    println!(
        "power-cut sweep (eMMC A/B): {total} cut points, {} bricks",
        bricks.len()
    );
    assert!(
        bricks.is_empty(),
        "{} bricks:\n{}",
        bricks.len(),
        bricks.join("\n")
    );
    assert!(total > 250, "{total}");
}

#[test]
fn the_ab_plan_shows_the_switch_as_its_own_step_and_never_writes_the_enabled_partition() {
    let start = emmc(Some(image(1)), Some(image(0)), 0x48);
    let st = state(&start).unwrap();
    let new = ubootctl::plan::NewImage::check(image(2).to_vec(), board(), &fuses()).unwrap();
    let running = Running {
        slot: Some(Slot::Primary),
        booted: Some(identity(image(1))),
    };
    let plan = ubootctl::emmc::ab_plan::plan_ab_update(&st, &new, running, board()).unwrap();
    let text = plan.to_string();
    let last = plan.steps.last().unwrap().summary();
    assert_eq!(
        last, "switch EXT_CSD[179] to boot1 (the secondary's partition)",
        "{text}"
    );
    let n = st.part_size;
    for s in &plan.steps {
        if let ubootctl::plan::Action::Write { offset, .. } = s.action {
            assert!(offset >= n, "a write to the enabled partition: {text}");
        }
    }
    // The switch keeps BOOT_ACK and the access bits, and is one CMD6.
    let (done, _, ok) = run(&start, Op::Update, running, usize::MAX, Flavour::Clean);
    assert!(ok);
    assert_eq!(done.ext.partition_config().0, 0x50);
    assert_eq!(done.ext.writes, [(179, 0x50)]);
    // The kernel bug: the CMD6 "succeeds" and the register is unchanged: the run fails, naming it.
    let mut bug = start.clone();
    bug.ext.drop_writes = true;
    let [b0, b1] = bug.parts.clone();
    let mut dev = AbDevice::new(b0, b1, bug.ext.clone(), BootPartition::Boot0, board());
    let err = ab::update(
        &mut dev,
        board(),
        &fuses(),
        image(2).to_vec(),
        running,
        &OPTS,
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("did not take") && err.contains("6.6.15-6.6.23"),
        "{err}"
    );
    // No boot partition enabled: refused before anything is written.
    let mut off = start.clone();
    off.ext = MemExtCsd::new(0x38);
    let [b0, b1] = off.parts.clone();
    let mut dev = AbDevice::new(b0, b1, off.ext.clone(), BootPartition::Boot0, board());
    let err = ab::update(
        &mut dev,
        board(),
        &fuses(),
        image(2).to_vec(),
        running,
        &OPTS,
        &mut NoProgress,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no boot partition is enabled"), "{err}");
    assert_eq!(dev.parts()[1].bytes(), off.parts[1].bytes());
}

#[test]
fn the_ab_judge_catches_a_write_to_the_enabled_partition() {
    // Control experiment: `dd` of the new image into the enabled partition (no switch) is cut
    // at every 64 KiB write; the same judge must find bricks (no fallback across partitions).
    let start = emmc(Some(image(1)), None, 0x48);
    let chunks = image(2).len().div_ceil(64 * 1024);
    let mut bricks = 0;
    for k in 0..chunks {
        let power: Shared = Rc::new(RefCell::new(Power::new(k, Flavour::Clean)));
        let mut b0 = CutPart(start.parts[0].clone(), power);
        for (i, piece) in image(2).chunks(64 * 1024).enumerate() {
            if b0.write_at(0x8400 + (i * 64 * 1024) as u64, piece).is_err() {
                break;
            }
        }
        let cut = Emmc {
            parts: [b0.0, start.parts[1].clone()],
            ext: start.ext.clone(),
        };
        if boots(&cut).is_err() {
            bricks += 1;
        }
    }
    println!("control (dd into the enabled partition): {chunks} cut points, {bricks} bricks");
    assert!(bricks > 0);
}
