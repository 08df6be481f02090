//! Test media for the boot flow: signed FITs with the test-key signer, flash.bin copies, an
//! in-memory disk, and fake clock / watchdog.
#![allow(dead_code)]

use std::sync::OnceLock;

use boards::{Board, Region};
use boot_core::boot::{Hardware, Memory, Outcome, run};
use boot_core::cell::RomInfo;
use boot_core::examine::Security;
use boot_core::platform::{BlockRead, Clock, MediaError, WatchdogService};
use dtoolkit::model::{DeviceTree, DeviceTreeNode, DeviceTreeProperty};
use imx_hab::hab::Fuses;
use imx_hab::hab::software::SoftwareHab;
use imx_hab::sign::{Pki, SignOptions, TestPkiOptions, sign_fit};

pub const BOARD: &Board = &boards::qemu_imx8mp::BOARD;
pub const LOAD: u32 = 0x4400_0000;
/// A 4 MiB FIT window at the board's window start (the real one is 16 MiB).
pub const WINDOW_LEN: usize = 4 << 20;
/// Where the tests pretend the shim runs (the qemu board's SHIM region).
pub const SHIM: &[Region] = &[Region::new(0x0091_0000, 0x6_0000)];

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::generate_p256(b"boot-flow tests", &TestPkiOptions::default()).unwrap())
}

pub fn other_pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| Pki::generate_p256(b"someone else", &TestPkiOptions::default()).unwrap())
}

pub fn fuses() -> Fuses {
    Fuses::open_with(pki().srk_hash().unwrap())
}

pub fn options() -> SignOptions {
    SignOptions {
        signing_time: Some(1_780_000_000),
        ..SignOptions::default()
    }
}

/// Deterministic filler.
pub fn filler(len: usize, mut seed: u64) -> Vec<u8> {
    seed |= 1;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// One FIT image node.
#[derive(Clone)]
pub struct Img {
    pub name: &'static str,
    pub data: Vec<u8>,
    pub load: Option<u32>,
    pub entry: Option<u32>,
    pub compression: &'static str,
}

impl Img {
    pub fn new(name: &'static str, len: usize, load: u32) -> Self {
        Img {
            name,
            data: filler(len, len as u64 ^ u64::from(load)),
            load: Some(load),
            entry: None,
            compression: "none",
        }
    }

    pub fn entry(mut self, entry: u32) -> Self {
        self.entry = Some(entry);
        self
    }
}

fn prop<T: dtoolkit::ToPropertyValue>(name: &str, v: T) -> DeviceTreeProperty {
    DeviceTreeProperty::new(name, v).unwrap()
}

/// A FIT with embedded data: `firmware` + `loadables` in the default configuration.
pub fn fit(images: &[Img], firmware: Option<&str>, loadables: &[&str]) -> Vec<u8> {
    let mut images_node = DeviceTreeNode::builder("images").unwrap();
    for i in images {
        let mut n = DeviceTreeNode::builder(i.name)
            .unwrap()
            .property(prop("data", i.data.clone()))
            .property(prop("type", "firmware"))
            .property(prop("arch", "arm64"))
            .property(prop("compression", i.compression));
        if let Some(l) = i.load {
            n = n.property(prop("load", l));
        }
        if let Some(e) = i.entry {
            n = n.property(prop("entry", e));
        }
        images_node = images_node.child(n.build());
    }
    let mut conf = DeviceTreeNode::builder("conf-1").unwrap();
    if let Some(f) = firmware {
        conf = conf.property(prop("firmware", f));
    }
    if !loadables.is_empty() {
        let list: Vec<u8> = loadables
            .iter()
            .flat_map(|s| s.bytes().chain([0]))
            .collect();
        conf = conf.property(DeviceTreeProperty::new("loadables", list).unwrap());
    }
    let mut tree = DeviceTree::new();
    tree.root
        .add_property(prop("description", "boot-flow test FIT"));
    tree.root.add_property(prop("#address-cells", 1u32));
    tree.root.add_child(images_node.build());
    tree.root.add_child(
        DeviceTreeNode::builder("configurations")
            .unwrap()
            .property(prop("default", "conf-1"))
            .child(conf.build())
            .build(),
    );
    tree.to_dtb()
}

/// The standard test FIT: a payload (firmware, entry) and a data loadable without entry.
pub fn standard_fit(version: u8) -> Vec<u8> {
    let mut payload = Img::new("payload", 24 * 1024, 0x4020_0000).entry(0x4020_0000);
    payload.data[0] = version;
    fit(
        &[payload, Img::new("blob", 4096, 0x4040_0000)],
        Some("payload"),
        &["blob"],
    )
}

pub fn signed(fit: &[u8], load: u32, pki: &Pki) -> Vec<u8> {
    sign_fit(fit, load, pki, &options()).unwrap()
}

/// A flash.bin as the shim sees it: something at offset 0 (the SPL, the ROM's business) and
/// the signed FIT at the layout's FIT offset.
pub fn flash_bin(signed_fit: &[u8]) -> Vec<u8> {
    // The SPL (IVT at offset 0, boot data, code, an empty CSF slot: the tests' part is open),
    // entry 0x910000, then zeros up to the FIT.
    let mut v = imx_hab::sign::spl_image(0x0090_FFC0, &filler(0x4000, 7)).unwrap();
    v.resize(BOARD.media.fit_offset as usize, 0);
    v.extend_from_slice(signed_fit);
    v
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
            Security::of(&fuses),
            &mut hw,
            Memory {
                window: &mut window,
                window_base: u64::from(LOAD),
                shim: SHIM,
            },
            RomInfo::UNKNOWN,
        )
    };
    let bootable = o.bootable.as_ref().map(|b| {
        (
            b.slot,
            b.examined.load_address,
            b.examined
                .plan
                .copies
                .iter()
                .map(|c| (c.name.to_string(), c.src_offset, c.len, c.dest))
                .collect(),
            b.examined.plan.entry.address,
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
