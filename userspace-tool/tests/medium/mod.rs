//! Test media for the update tests: flash.bins signed on the fly with the test-key signer, and
//! 8 MiB devices laid out per design.md §4 (SIT at 0x8200, primary at 0x8400, secondary at
//! 0x208400 with the standard table).
#![allow(dead_code)] // each test crate uses its own subset

use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use boards::Board;
use imx_hab::hab::Fuses;
use imx_hab::sign::{Pki, SignOptions, sign_fit};
use imx_hab::sit::build_sector;
use ubootctl::blockdev::{BlockDevice, MemDevice};
use ubootctl::media::{CopyState, standard_secondary_offset};

/// Load address every test FIT is signed for (the QEMU board's FIT window starts there).
pub const LOAD: u32 = 0x4400_0000;
/// Size of the test devices.
pub const DEVICE: usize = 8 << 20;
/// SPL entry of the fake SPL.
const SPL_ENTRY: u32 = 0x7E_1000;
/// Offset of a FIT payload byte (inside the U-Boot image data; `layout.env`
/// PAYLOAD_FLIP_TEST_OFFSET): changing it makes another "version" that still parses.
const PAYLOAD_BYTE: usize = 0x12445;

/// The board the tests run on.
pub fn board() -> &'static Board {
    boards::by_name("qemu-imx8mp").expect("board exists")
}

/// The bare FIT of the ecc-p256 cst fixture.
fn fixture_fit() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/hab4/ecc-p256/signed.bin"
    );
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    let total = imx_hab::fit::totalsize(&b).expect("fixture FIT") as usize;
    b[..total].to_vec()
}

/// Test PKIs: 0 is the device's, 1 a foreign one.
pub fn pki(which: usize) -> &'static Pki {
    test_images::pki(["ubootctl-update-tests", "ubootctl-foreign"][which])
}

/// The fuses of a closed part with `pki(0)`'s SRK hash (as `--srk-hash` is taken).
pub fn fuses() -> Fuses {
    Fuses {
        sec_config: Fuses::SEC_CONFIG_CLOSED,
        ..Fuses::open_with(pki(0).srk_hash().expect("SRK hash"))
    }
}

fn options() -> SignOptions {
    SignOptions {
        signing_time: Some(1_790_000_000),
        ..SignOptions::default()
    }
}

/// The FIT of `version`: the fixture FIT with one payload byte changed.
pub fn fit(version: u8) -> Vec<u8> {
    let mut f = fixture_fit();
    f[PAYLOAD_BYTE] ^= version;
    f
}

/// The FIT of `version` signed for `load` with PKI `which`.
pub fn signed_fit_with(version: u8, load: u32, which: usize) -> Vec<u8> {
    sign_fit(&fit(version), load, pki(which), &options()).expect("signing")
}

/// The SPL (`test_images::signed_spl`: IVT at 0, entry 0x7E1000, boot data, a
/// version-dependent pattern as code) signed with `pki(0)`, as a closed part's ROM needs it.
pub fn spl(version: u8) -> Vec<u8> {
    static SPLS: OnceLock<std::sync::Mutex<std::collections::HashMap<u8, Vec<u8>>>> =
        OnceLock::new();
    let cache = SPLS.get_or_init(Default::default);
    if let Some(s) = cache.lock().unwrap().get(&version) {
        return s.clone();
    }
    let code: Vec<u8> = (0..0x30000usize)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(version))
        .collect();
    let s = test_images::signed_spl(SPL_ENTRY - 0x40, &code, pki(0), &options());
    cache.lock().unwrap().insert(version, s.clone());
    s
}

/// A flash.bin: the signed SPL then `fit` at the FIT offset.
pub fn flash_bin_with_fit(version: u8, fit: &[u8]) -> Vec<u8> {
    test_images::flash_bin(&spl(version), board().media.fit_offset, fit)
}

/// The identity the shim records for a copy holding `flash_bin` (SPL then FIT).
pub fn identity(flash_bin: &[u8]) -> [u8; 32] {
    boot_core::examine::flash_bin_identity(flash_bin, board().media.fit_offset)
        .expect("a flash.bin")
}

/// The boot record the shim writes after a boot of `reason` (`PrimaryOk` or `PrimaryFailed`)
/// from a copy holding `booted`: the copy verdicts and SIT status of the decision table, and the
/// copy's identity.
pub fn boot_record(
    reason: boot_core::policy::Reason,
    booted: &[u8],
) -> boot_core::cell::BootRecord {
    use boot_core::cell::{
        BootRecord, CopyReport, FailureClass, RomInfo, ShimVersion, SitReport, SitStatus,
    };
    use imx_hab::hab::EventSummary;
    let ok = CopyReport::Authentic {
        hab: EventSummary {
            status: 0xF0,
            reason: 0,
            context: 0,
            engine: 0,
        },
        warnings: boot_core::examine::Warnings::default(),
    };
    let failed = CopyReport::Rejected {
        class: FailureClass::ImageSignature,
        hab: EventSummary {
            status: 0x33,
            reason: 0x18,
            context: 0xC0,
            engine: 0,
        },
        part: Some(boot_core::examine::Part::Fit),
    };
    let primary_ok = reason == boot_core::policy::Reason::PrimaryOk;
    BootRecord {
        reason: Some(reason),
        primary: if primary_ok { ok } else { failed },
        secondary: if primary_ok {
            CopyReport::NotExamined
        } else {
            ok
        },
        sit: if primary_ok {
            SitReport {
                status: SitStatus::NotRead,
                first_sector: 0,
            }
        } else {
            SitReport {
                status: SitStatus::Valid,
                first_sector: 0x1000,
            }
        },
        rom: RomInfo::UNKNOWN,
        shim_version: ShimVersion::CURRENT,
        booted: Some(identity(booted)),
        rollback_minimum: Some(0),
    }
}

/// The bytes of a file laid out as physical memory (`--mem`) holding `record` at the board's
/// cell address, or no record at all.
pub fn mem_image(record: Option<&boot_core::cell::BootRecord>) -> Vec<u8> {
    let at = board().cell_addr as usize;
    let mut mem = vec![0u8; at + boot_core::cell::CELL_SIZE];
    if let Some(r) = record {
        mem[at..].copy_from_slice(&r.encode());
    }
    mem
}

/// The authentic flash.bin of `version` (cached).
pub fn image(version: u8) -> &'static [u8] {
    static IMAGES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    &IMAGES.get_or_init(|| {
        (0..3)
            .map(|v| flash_bin_with_fit(v, &signed_fit_with(v, LOAD, 0)))
            .collect()
    })[version as usize]
}

/// A flash.bin of `version` whose FIT's default configuration carries `rollback-index =
/// <epoch>` (the test-images standard FIT, signed with `pki(0)`; cached).
pub fn epoch_image(version: u8, epoch: u32) -> Vec<u8> {
    type Cache = std::sync::Mutex<std::collections::HashMap<(u8, u32), Vec<u8>>>;
    static IMAGES: OnceLock<Cache> = OnceLock::new();
    let cache = IMAGES.get_or_init(Default::default);
    if let Some(i) = cache.lock().unwrap().get(&(version, epoch)) {
        return i.clone();
    }
    let fit = test_images::standard_fit_epoch(version, Some(epoch));
    let signed = sign_fit(&fit, LOAD, pki(0), &options()).expect("signing");
    let img = flash_bin_with_fit(version, &signed);
    cache.lock().unwrap().insert((version, epoch), img.clone());
    img
}

/// The 64-byte simulated fuse block of a closed part with `pki(0)`'s SRK hash and the
/// rollback bits `rollback` (bytes 0x28..0x30).
pub fn fuse_block(rollback: u64) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[..32].copy_from_slice(&pki(0).srk_hash().expect("SRK hash"));
    b[32..36].copy_from_slice(&Fuses::SEC_CONFIG_CLOSED.to_le_bytes());
    let at = boot_core::rollback::SIM_BLOCK_OFFSET;
    b[at..at + 8].copy_from_slice(&rollback.to_le_bytes());
    b
}

/// `image(version)` with one FIT payload byte flipped: parses, is not authentic.
pub fn tampered(version: u8) -> Vec<u8> {
    let mut v = image(version).to_vec();
    v[board().media.fit_offset as usize + PAYLOAD_BYTE] ^= 0x80;
    v
}

/// What goes on a test medium.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// The primary flash.bin, if any.
    pub primary: Option<&'a [u8]>,
    /// The secondary flash.bin (at the standard place), if any.
    pub secondary: Option<&'a [u8]>,
    /// Whether the standard SIT is written.
    pub sit: bool,
}

/// An 8 MiB device holding `layout`.
pub fn medium(layout: Layout<'_>) -> MemDevice {
    medium_sized(layout, DEVICE)
}

/// A device of `size` bytes holding `layout`.
pub fn medium_sized(layout: Layout<'_>, size: usize) -> MemDevice {
    let mut d = MemDevice::new(size);
    write_layout(&mut d, layout);
    d
}

/// Writes `layout` onto `dev`.
pub fn write_layout(dev: &mut dyn BlockDevice, layout: Layout<'_>) {
    let m = &board().media;
    if layout.sit {
        dev.write_at(m.sit_offset(), &build_sector(m.standard_first_sector))
            .unwrap();
    }
    if let Some(p) = layout.primary {
        dev.write_at(m.primary_offset(), p).unwrap();
    }
    if let Some(s) = layout.secondary {
        dev.write_at(standard_secondary_offset(m), s).unwrap();
    }
    dev.flush().unwrap();
}

/// The copy at `offset` of `dev`, judged.
pub fn copy_at(dev: &dyn BlockDevice, offset: u64) -> CopyState {
    CopyState::read(
        dev,
        board(),
        &fuses(),
        boot_core::policy::Slot::Primary,
        offset,
    )
    .unwrap()
}

/// Whether `dev` holds `image` at `offset`.
pub fn holds(dev: &dyn BlockDevice, offset: u64, image: &[u8]) -> bool {
    let mut b = vec![0; image.len()];
    dev.read_at(offset, &mut b).is_ok() && b == image
}

/// A loop device attached to a file; detached on drop.
pub struct Loop(pub String);

impl Loop {
    /// `losetup -f --show FILE`; the error says why the kernel or the tool refused.
    pub fn attach(file: &Path) -> Result<Self, String> {
        let out = Command::new("losetup")
            .args(["-f", "--show"])
            .arg(file)
            .output()
            .map_err(|e| format!("cannot run losetup: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "losetup -f --show failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Loop(String::from_utf8_lossy(&out.stdout).trim().to_owned()))
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").arg("-d").arg(&self.0).status();
    }
}

/// Size of each test eMMC boot partition (the QEMU contract's N).
pub const BOOT_PART: usize = 4 << 20;

/// Two eMMC boot partitions of the A/B layout (b): `boot0` and `boot1` each at 0x8400 of its
/// partition, when given.
pub fn emmc_pair(boot0: Option<&[u8]>, boot1: Option<&[u8]>) -> [MemDevice; 2] {
    [boot0, boot1].map(|img| {
        let mut d = MemDevice::new(BOOT_PART);
        if let Some(img) = img {
            d.write_at(board().media.primary_offset(), img).unwrap();
        }
        d
    })
}
