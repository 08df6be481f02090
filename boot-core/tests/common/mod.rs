//! Test media for the boot flow: signed FITs with the test-key signer, flash.bin copies, an
//! in-memory disk, and fake clock / watchdog.
#![allow(dead_code, unused_imports)]

use boards::{Board, Region};
use boot_core::boot::{Hardware, Memory, Outcome, run};
use boot_core::cell::RomInfo;
use boot_core::examine::{Rules, Security};
use boot_core::platform::{BlockRead, Clock, MediaError, WatchdogService};
use boot_core::rollback::RollbackFuses;
use imx_hab::hab::Fuses;
use imx_hab::hab::software::SoftwareHab;
use imx_hab::sign::Pki;

pub const BOARD: &Board = &boards::qemu_imx8mp::BOARD;
pub const LOAD: u32 = 0x4400_0000;
/// A 4 MiB FIT window at the board's window start (the real one is 16 MiB).
pub const WINDOW_LEN: usize = 4 << 20;
/// Where the tests pretend the shim runs (the qemu board's SHIM region).
pub const SHIM: &[Region] = &[Region::new(0x0091_0000, 0x6_0000)];

pub use test_images::{Img, filler, fit, signed, standard_fit, standard_fit_epoch};

pub fn pki() -> &'static Pki {
    test_images::pki("boot-flow tests")
}

pub fn other_pki() -> &'static Pki {
    test_images::pki("someone else")
}

pub fn fuses() -> Fuses {
    Fuses::open_with(pki().srk_hash().unwrap())
}

/// A flash.bin as the shim sees it: the SPL (unsigned: the tests' part is open), entry
/// 0x910000, then the signed FIT at the layout's FIT offset.
pub fn flash_bin(signed_fit: &[u8]) -> Vec<u8> {
    let spl = test_images::spl_image(0x0090_FFC0, &filler(0x4000, 7)).unwrap();
    test_images::flash_bin(&spl, BOARD.media.fit_offset, signed_fit)
}

/// An in-memory disk recording every read.
pub struct MemDisk {
    pub bytes: Vec<u8>,
    pub reads: Vec<(u64, usize)>,
    /// Reads touching this byte range fail.
    pub bad: Option<(u64, u64)>,
}

impl MemDisk {
    /// A zeroed disk of `len` bytes.
    pub fn new(len: usize) -> Self {
        MemDisk {
            bytes: vec![0; len],
            reads: Vec::new(),
            bad: None,
        }
    }

    pub fn put(&mut self, at: u64, data: &[u8]) {
        let at = at as usize;
        self.bytes[at..at + data.len()].copy_from_slice(data);
    }

    pub fn read_bytes(&self) -> usize {
        self.reads.iter().map(|r| r.1).sum()
    }
}

impl BlockRead for MemDisk {
    fn block_count(&self) -> u64 {
        self.bytes.len() as u64 / 512
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        let start = lba.checked_mul(512);
        let end = start.and_then(|s| s.checked_add(buf.len() as u64));
        match (start, end) {
            (Some(s), Some(e))
                if !buf.is_empty()
                    && buf.len().is_multiple_of(512)
                    && e <= self.bytes.len() as u64 =>
            {
                if let Some((bs, be)) = self.bad
                    && s < be
                    && bs < e
                {
                    return Err(MediaError::Command {
                        command: 18,
                        int_status: 0x0020_8000,
                    });
                }
                self.reads.push((s, buf.len()));
                buf.copy_from_slice(&self.bytes[s as usize..e as usize]);
                Ok(())
            }
            _ => Err(MediaError::OutOfRange {
                lba,
                len: buf.len(),
            }),
        }
    }
}

/// A clock that advances one tick per call.
#[derive(Default)]
pub struct StepClock(std::cell::Cell<u64>);

impl Clock for StepClock {
    fn ticks(&self) -> u64 {
        let t = self.0.get();
        self.0.set(t + 1);
        t
    }

    fn frequency_hz(&self) -> u64 {
        1_000_000
    }
}

#[derive(Default)]
pub struct CountingWatchdog(pub u32);

impl WatchdogService for CountingWatchdog {
    fn service(&mut self) {
        self.0 += 1;
    }
}

/// A copy (name, source offset, length, destination).
pub type PlannedCopy = (String, u64, u64, u64);

/// The bootable copy: slot, load address, copies, entry.
pub type BootablePlan = (boot_core::policy::Slot, u64, Vec<PlannedCopy>, u64);

/// The result of one boot over `disk`: the outcome (owned parts), the console text, and the
/// window for inspecting plans.
pub struct Booted {
    pub decision: boot_core::policy::Decision,
    pub record: boot_core::cell::BootRecord,
    pub bootable: Option<BootablePlan>,
    pub timings: boot_core::boot::timing::Timings,
    pub console: String,
    pub watchdog_services: u32,
    pub window: Vec<u8>,
}

/// Boots over `disk` with the software verifier and the test fuses.
pub fn boot(disk: &mut MemDisk) -> Booted {
    boot_with(disk, fuses())
}

pub fn boot_with(disk: &mut MemDisk, fuses: Fuses) -> Booted {
    boot_rules(disk, fuses, RollbackFuses::BLANK)
}

/// Boots over `disk` with `fuses` and the rollback fuses `rollback`.
pub fn boot_rules(disk: &mut MemDisk, fuses: Fuses, rollback: RollbackFuses) -> Booted {
    boot_full(disk, fuses, rollback, RomInfo::UNKNOWN)
}

/// Boots over `disk` with the test fuses after a ROM start described by `rom`.
#[allow(dead_code)]
pub fn boot_rom(disk: &mut MemDisk, rom: RomInfo) -> Booted {
    boot_full(disk, fuses(), RollbackFuses::BLANK, rom)
}

/// Boots over `disk` with everything given.
pub fn boot_full(
    disk: &mut MemDisk,
    fuses: Fuses,
    rollback: RollbackFuses,
    rom: RomInfo,
) -> Booted {
    let mut hab = SoftwareHab { fuses };
    let clock = StepClock::default();
    let mut wd = CountingWatchdog::default();
    let mut console = String::new();
    let mut window = vec![0u8; WINDOW_LEN];
    let o: Outcome = {
        let mut hw = Hardware {
            disk,
            hab: &mut hab,
            clock: &clock,
            watchdog: &mut wd,
            console: &mut console,
        };
        run(
            BOARD,
            Rules {
                rollback,
                ..Rules::of(&fuses)
            },
            &mut hw,
            Memory {
                window: &mut window,
                window_base: u64::from(LOAD),
                shim: SHIM,
            },
            rom,
        )
    };
    let bootable = o.bootable.as_ref().map(|b| {
        (
            b.slot,
            b.examined.fit.load_address,
            b.examined
                .fit
                .plan
                .copies
                .iter()
                .map(|c| (c.name.to_string(), c.src_offset, c.len, c.dest))
                .collect(),
            b.examined.fit.plan.entry.address,
        )
    });
    let (decision, record, timings) = (o.decision, o.record, o.timings);
    drop(o);
    Booted {
        decision,
        record,
        bootable,
        timings,
        console,
        watchdog_services: wd.0,
        window,
    }
}
