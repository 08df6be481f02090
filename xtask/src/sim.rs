//! The simulation's images: the payload FIT (a `payload` firmware image and a 4 KiB `blob`
//! loadable that carries the image version), flash.bins for versions, and a kit bundling the
//! shim, the PKI and the payload for the scenario tests and the demo.
//!
//! FIT of the simulation (unsigned form; signed at [`crate::fit::FIT_LOAD`]):
//!
//! | image | type / os / arch | load | entry | data |
//! |---|---|---|---|---|
//! | `payload` | firmware / u-boot / arm64 | 0x4020_0000 | 0x4020_0000 | the payload's flat binary |
//! | `blob` | firmware / u-boot / arm64 | 0x4040_0000 | — | 4 KiB: `"IRBV"`, version (u32 LE), then a fill pattern |
//!
//! Default configuration: `firmware = "payload"`, `loadables = "blob"`.
//!
//! The image version reaches the payload two ways: `test-firmware`'s `test-payload` carries a
//! 48-byte field `IRB-PAYLOAD-VERSION:<text>\0…` that [`patch_payload_version`] fills with the
//! version's decimal text (the payload prints it); and the blob, copied to 0x4040_0000, starts
//! with `"IRBV"` and the version as a u32 (LE).

use std::path::{Path, PathBuf};

use imx_hab::sign::{Pki, SignOptions};

use crate::firmware::{
    FlatImage, PlaceholderEnd, TEST_FIRMWARE_PACKAGE, build_spl, build_test_firmware,
    elf_bytes_to_flat, elf_to_flat, firmware_bin_exists, placeholder_payload,
};
use crate::fit::{FitConfig, FitImage, build_fit};
use crate::pki::{SimFuses, generate};
use crate::qemu::SimConfig;
use crate::{Context, Result, bail};

/// The board the simulation runs.
pub const SIM_BOARD: &str = "qemu-imx8mp";
/// Load and entry address of the payload (where U-Boot proper would go).
pub const PAYLOAD_LOAD: u32 = 0x4020_0000;
/// Load address of the version blob.
pub const BLOB_LOAD: u32 = 0x4040_0000;
/// Size of the version blob.
pub const BLOB_SIZE: usize = 4096;
/// Magic at the start of the version blob.
pub const VERSION_MAGIC: [u8; 4] = *b"IRBV";
/// The test payload's binary in `test-firmware`, built when it exists.
pub const TEST_PAYLOAD_BIN: &str = "test-payload";
/// CMS signing time of simulation images (2026-01-01T00:00:00Z): fixed so that the same
/// inputs give the same bytes.
pub const SIGNING_TIME: u64 = 1_767_225_600;

/// Signing options of simulation images: `cst` defaults with a fixed signing time.
pub fn sign_options() -> SignOptions {
    SignOptions {
        signing_time: Some(SIGNING_TIME),
        ..SignOptions::default()
    }
}

/// The version blob: [`VERSION_MAGIC`], `version` (LE), then `(i * 7 + version) as u8`.
pub fn version_blob(version: u32) -> Vec<u8> {
    let mut b: Vec<u8> = (0..BLOB_SIZE)
        .map(|i| (i as u32).wrapping_mul(7).wrapping_add(version) as u8)
        .collect();
    b[..4].copy_from_slice(&VERSION_MAGIC);
    b[4..8].copy_from_slice(&version.to_le_bytes());
    b
}

/// The simulation FIT (module docs), unsigned, with `rollback-index = <epoch>` when given.
pub fn sim_fit(payload: &[u8], version: u32, epoch: Option<u32>) -> Result<Vec<u8>> {
    build_fit(
        &format!("imx-redundant-boot simulation image, version {version}"),
        &[
            FitImage::firmware("payload", PAYLOAD_LOAD, payload.to_vec()),
            FitImage::data("blob", BLOB_LOAD, version_blob(version)),
        ],
        &FitConfig {
            firmware: "payload".into(),
            loadables: vec!["blob".into()],
            rollback_index: epoch,
            fdt: None,
        },
    )
}

/// The marker in front of the test payload's version field.
pub const PAYLOAD_VERSION_MARKER: &[u8] = b"IRB-PAYLOAD-VERSION:";
/// Bytes of the version field after the marker (the payload's 48-byte static minus the marker).
pub const PAYLOAD_VERSION_LEN: usize = 28;

/// Writes `version` (NUL-padded) into the field after [`PAYLOAD_VERSION_MARKER`] in `payload`.
/// A payload without the marker (the placeholder, foreign binaries) is returned unchanged.
pub fn patch_payload_version(payload: &[u8], version: &str) -> Result<Vec<u8>> {
    let mut out = payload.to_vec();
    let Some(at) = payload
        .windows(PAYLOAD_VERSION_MARKER.len())
        .position(|w| w == PAYLOAD_VERSION_MARKER)
    else {
        return Ok(out);
    };
    let field = at + PAYLOAD_VERSION_MARKER.len();
    if version.len() > PAYLOAD_VERSION_LEN || version.contains('\0') {
        bail!("payload version {version:?} does not fit the {PAYLOAD_VERSION_LEN}-byte field");
    }
    if field + PAYLOAD_VERSION_LEN > out.len() {
        bail!("the payload's version field is cut off at the end of the binary");
    }
    out[field..field + PAYLOAD_VERSION_LEN].fill(0);
    out[field..field + version.len()].copy_from_slice(version.as_bytes());
    Ok(out)
}

/// Reads a payload file: an ELF is flattened (its load address must be [`PAYLOAD_LOAD`]),
/// anything else is taken as a flat binary for [`PAYLOAD_LOAD`].
pub fn read_payload(path: &Path) -> Result<Vec<u8>> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if data.starts_with(b"\x7fELF") {
        let flat = elf_bytes_to_flat(&data).with_context(|| path.display())?;
        if flat.load_addr != u64::from(PAYLOAD_LOAD) || flat.entry != u64::from(PAYLOAD_LOAD) {
            bail!(
                "{}: payload ELF loads at {:#x} with entry {:#x}; the sim FIT needs both at {PAYLOAD_LOAD:#x}",
                path.display(),
                flat.load_addr,
                flat.entry
            );
        }
        return Ok(flat.bytes);
    }
    Ok(data)
}

/// The default payload: `test-firmware`'s `test-payload` binary if the crate has it (built and
/// flattened), else the hand-assembled placeholder that prints
/// `xtask placeholder payload` and waits. Returns the bytes and what they are.
pub fn default_payload() -> Result<(Vec<u8>, String)> {
    if firmware_bin_exists(TEST_FIRMWARE_PACKAGE, TEST_PAYLOAD_BIN) {
        let elf = build_test_firmware(TEST_PAYLOAD_BIN)?;
        let bytes = read_payload(&elf)?;
        return Ok((bytes, format!("{}", elf.display())));
    }
    Ok((
        placeholder_payload(
            "xtask placeholder payload (test-firmware has no test-payload yet)",
            PlaceholderEnd::Wait,
        ),
        "xtask placeholder payload".into(),
    ))
}

/// The ROM model in `test-firmware` (design.md §5.1): what QEMU starts at every reset.
pub const ROM_MODEL_BIN: &str = "rom-model";

/// Everything needed to make simulation images: the shim (ELF and flat), the ROM model, the
/// PKI, the fuse values, the payload and the signing options.
#[derive(Debug)]
pub struct SimKit {
    /// The shim ELF (flattened into the SPL of every flash.bin; QEMU never loads it itself).
    pub shim_elf: PathBuf,
    /// The ROM model ELF QEMU starts at every reset; it loads the SPL from the card.
    pub rom_elf: PathBuf,
    /// The shim as a flat binary (for the SPL in flash.bin).
    pub shim: FlatImage,
    /// The test PKI.
    pub pki: Pki,
    /// The fuses of a closed part fused with the PKI.
    pub fuses: SimFuses,
    /// The payload's flat binary (at [`PAYLOAD_LOAD`]).
    pub payload: Vec<u8>,
    /// Signing options.
    pub options: SignOptions,
}

impl SimKit {
    /// A kit from parts.
    pub fn new(shim_elf: PathBuf, rom_elf: PathBuf, pki: Pki, payload: Vec<u8>) -> Result<Self> {
        let shim = elf_to_flat(&shim_elf)?;
        let fuses = SimFuses::closed_for(&pki)?;
        Ok(SimKit {
            shim_elf,
            rom_elf,
            shim,
            pki,
            fuses,
            payload,
            options: sign_options(),
        })
    }

    /// Builds the shim for `qemu-imx8mp`, the ROM model and the default payload, and generates
    /// the PKI from `seed` (`DEFAULT_SEED.as_bytes()` of [`crate::pki`] for the standard one).
    pub fn build(seed: &[u8]) -> Result<Self> {
        let elf = build_spl(SIM_BOARD)?;
        let rom = build_test_firmware(ROM_MODEL_BIN)?;
        let (payload, _) = default_payload()?;
        SimKit::new(elf, rom, generate(seed)?, payload)
    }

    /// flash.bin of image `version`: the signed shim SPL and the signed simulation FIT.
    pub fn flash_bin(&self, version: u32) -> Result<Vec<u8>> {
        self.flash_bin_with_payload(&self.payload, version)
    }

    /// flash.bin of image `version` with another payload (its version field patched, see
    /// [`patch_payload_version`]).
    pub fn flash_bin_with_payload(&self, payload: &[u8], version: u32) -> Result<Vec<u8>> {
        self.flash_bin_epoch(payload, version, None)
    }

    /// [`flash_bin_with_payload`](Self::flash_bin_with_payload) whose FIT carries the security
    /// epoch `epoch` (`rollback-index`; none: epoch 0).
    pub fn flash_bin_epoch(
        &self,
        payload: &[u8],
        version: u32,
        epoch: Option<u32>,
    ) -> Result<Vec<u8>> {
        self.flash_bin_full(payload, version, epoch, None)
    }

    /// [`flash_bin_epoch`](Self::flash_bin_epoch) whose SPL reports `shim_version` when given
    /// (its version stamp set before signing, [`crate::flash_bin::stamp_shim_version`]).
    pub fn flash_bin_full(
        &self,
        payload: &[u8],
        version: u32,
        epoch: Option<u32>,
        shim_version: Option<boot_core::cell::ShimVersion>,
    ) -> Result<Vec<u8>> {
        let payload = patch_payload_version(payload, &version.to_string())?;
        let fit = sim_fit(&payload, version, epoch)?;
        let shim = match shim_version {
            Some(v) => crate::flash_bin::stamp_shim_version(&self.shim, v)?,
            None => self.shim.clone(),
        };
        crate::flash_bin::build_flash_bin(&shim, &fit, &self.pki, &self.options)
    }

    /// flash.bin of image `version` whose SPL reports `shim_version` (its version stamp set
    /// before signing, [`crate::flash_bin::stamp_shim_version`]): an SPL of another version.
    pub fn flash_bin_shim_version(
        &self,
        version: u32,
        shim_version: boot_core::cell::ShimVersion,
    ) -> Result<Vec<u8>> {
        self.flash_bin_full(&self.payload, version, None, Some(shim_version))
    }

    /// Writes `fuses.bin` to `path`.
    pub fn write_fuses(&self, path: &Path) -> Result<()> {
        self.fuses.write(path)
    }

    /// The QEMU contract for this kit, with `fuses` and `disk`: the ROM model starts the SPL
    /// the card holds.
    pub fn sim_config(&self, fuses: &Path, disk: &Path) -> SimConfig {
        let mut c = SimConfig::new(&self.rom_elf, fuses, disk);
        c.log_elf = Some(self.shim_elf.clone());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flash_bin::{FlashBinOffsets, verify_flash_bin};
    use imx_hab::image::{FitPart, FlashBin};

    #[test]
    fn sim_flash_bin_carries_payload_and_version() {
        let dir = tempfile::tempdir().unwrap();
        let shim = FlatImage {
            load_addr: 0x0091_0000,
            entry: 0x0091_0000,
            bytes: vec![0x11; 4000],
        };
        let elf = dir.path().join("shim.elf");
        std::fs::write(&elf, crate::firmware::flat_to_elf(&shim)).unwrap();
        let payload = placeholder_payload("p", PlaceholderEnd::Wait);
        let kit = SimKit::new(
            elf.clone(),
            elf,
            generate(b"xtask sim test").unwrap(),
            payload.clone(),
        )
        .unwrap();
        let fb = kit.flash_bin(7).unwrap();
        verify_flash_bin(&fb, &kit.fuses.fuses()).unwrap();
        let parsed = FlashBin::parse(&fb, &boards::AN12900_LAYOUT).unwrap();
        let FitPart::Signed(sf) = parsed.fit else {
            panic!("unsigned FIT")
        };
        let blob = sf.fit.image_by_name("blob").unwrap();
        assert_eq!(&sf.fit.data(&blob)[..8], b"IRBV\x07\0\0\0");
        assert_eq!(blob.entry, None);
        let p = sf.fit.image_by_name("payload").unwrap();
        let o = FlashBinOffsets::of(&fb).unwrap();
        assert!(o.image_data("blob").is_some());
        // The placeholder has no version field: unchanged.
        assert_eq!(sf.fit.data(&p), &payload[..]);
        // Same inputs, same bytes.
        assert_eq!(kit.flash_bin(7).unwrap(), fb);
    }
}

#[cfg(test)]
mod version_tests {
    use super::*;

    #[test]
    fn version_field_is_patched() {
        let mut bin = vec![0xEEu8; 16];
        bin.extend_from_slice(b"IRB-PAYLOAD-VERSION:unversioned\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0");
        bin.extend_from_slice(&[0xEE; 8]);
        let out = patch_payload_version(&bin, "12").unwrap();
        assert_eq!(&out[36..40], b"12\0\0");
        assert!(out[38..64].iter().all(|&b| b == 0));
        assert_eq!(&out[64..], &[0xEE; 8]);
        assert!(patch_payload_version(&bin, &"9".repeat(29)).is_err());
        assert_eq!(patch_payload_version(&[1, 2, 3], "1").unwrap(), [1, 2, 3]);
    }
}

/// End to end with the real firmware (builds the shim and the test payload, runs QEMU):
/// `cargo test -p xtask -- --ignored`. The scenario tests in `tests/` own the full matrix; this
/// is the library's usage example.
#[cfg(test)]
mod end_to_end {
    use super::*;
    use crate::disk::{DiskSpec, build_disk, flip_byte, primary_fit_data_offset};
    use crate::qemu::{Stop, run};

    #[test]
    #[ignore = "builds the firmware and runs QEMU"]
    fn primary_then_fallback() {
        let kit = SimKit::build(crate::pki::DEFAULT_SEED.as_bytes()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (fuses, disk) = (dir.path().join("fuses.bin"), dir.path().join("sd.img"));
        kit.write_fuses(&fuses).unwrap();
        let spec = DiskSpec::new(kit.flash_bin(1).unwrap(), kit.flash_bin(2).unwrap());
        build_disk(&disk, &spec).unwrap();

        let out = run(&kit.sim_config(&fuses, &disk), &Stop::Boot).unwrap();
        assert_eq!(out.slot_word(), Some(1), "{}", out.uart);
        assert!(out.uart_has("payload: version 1 slot 1"), "{}", out.uart);
        assert_eq!(out.exit_code(), Some(1));
        assert!(out.decoded_cell().unwrap().record.is_ok());

        flip_byte(&disk, primary_fit_data_offset(&disk).unwrap()).unwrap();
        let out = run(&kit.sim_config(&fuses, &disk), &Stop::Boot).unwrap();
        assert_eq!(out.slot_word(), Some(2), "{}", out.uart);
        assert!(out.uart_has("payload: version 2 slot 2"), "{}", out.uart);
        assert_eq!(out.exit_code(), Some(2));
    }
}
