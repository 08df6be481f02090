//! The signed shim as an imx8mimage-style SPL, and flash.bin = SPL ‖ zero pad to the layout's
//! FIT offset (0x57C00) ‖ signed FIT (design.md §4, docs/hab4-format.md §2).
//!
//! SPL layout (offsets in the file; `self` = shim entry − 0x40):
//!
//! | offset | content |
//! |---|---|
//! | 0x00 | IVT `D1 00 20 41`, entry = shim entry, dcd 0, boot_data = self + 0x20, self, csf = self + csf_off |
//! | 0x20 | boot data {start = self, length = csf_off + 0x2000, plugin = 0} |
//! | 0x40 | the shim's flat binary (it must be linked to run at its entry = its first byte) |
//! | csf_off = ALIGN(0x40 + shim size, 0x1000) | the CSF, in a 0x2000-byte slot |
//!
//! Signed as `nxp_imx8mcst.py` does (`imx_hab::sign::sign_spl`): one block `[self, self +
//! csf_off)`.

use std::ops::Range;

use boards::{AN12900_LAYOUT, MediaLayout};
use imx_hab::hab::software::{verify, verify_spl};
use imx_hab::hab::{Authenticator, Fuses};
use imx_hab::image::{FitPart, FlashBin};
use imx_hab::ivt::IVT_SIZE;
use imx_hab::sign::{Pki, SignOptions};

use crate::firmware::FlatImage;
use crate::fit::FIT_LOAD;
use crate::{Error, Result, bail};

pub use imx_hab::sign::{
    SPL_CSF_ALIGN, SPL_CSF_SLOT as CSF_SLOT_SIZE, SPL_HEADER_SIZE, spl_csf_offset,
};
/// The largest flash.bin: one slot with the standard SIT (`firstSectorNumber × 512` = 2 MiB).
pub const MAX_FLASH_BIN: u64 = AN12900_LAYOUT.slot_size(AN12900_LAYOUT.standard_first_sector);

/// The shim with its version stamp (`boot_core::cell::VersionStamp`) set to `version`: the
/// version the SPL reports on the console and in the cell. The stamp must occur exactly once.
pub fn stamp_shim_version(
    shim: &FlatImage,
    version: boot_core::cell::ShimVersion,
) -> Result<FlatImage> {
    let marker = boot_core::cell::VersionStamp::MARKER;
    let mut hits = shim
        .bytes
        .windows(marker.len())
        .enumerate()
        .filter(|(_, w)| *w == marker)
        .map(|(i, _)| i);
    let (Some(at), None) = (hits.next(), hits.next()) else {
        bail!("the shim does not hold exactly one version stamp (`IRB-SHIM-VERSION`)");
    };
    let word = at + marker.len();
    if word + 4 > shim.bytes.len() {
        bail!("the shim's version stamp is cut off at the end of the binary");
    }
    let mut out = shim.clone();
    out.bytes[word..word + 4].copy_from_slice(&version.to_u32().to_le_bytes());
    Ok(out)
}

/// The unsigned SPL: IVT, boot data, the shim at 0x40, a zeroed CSF slot
/// (`imx_hab::sign::spl_image`).
pub fn spl_image(shim: &FlatImage) -> Result<Vec<u8>> {
    if shim.entry != shim.load_addr {
        bail!(
            "the shim's entry {:#x} is not its first byte {:#x}: the SPL convention needs \
             entry = load address (IVT entry = self + 0x40)",
            shim.entry,
            shim.load_addr
        );
    }
    shim.entry
        .checked_sub(SPL_HEADER_SIZE)
        .and_then(|s| u32::try_from(s).ok())
        .and_then(|s| imx_hab::sign::spl_image(s, &shim.bytes))
        .ok_or_else(|| Error::msg(format!("shim entry {:#x} out of range", shim.entry)))
}

/// The signed SPL: [`spl_image`] signed with `imx_hab::sign::sign_spl`; its length is the
/// boot data length (the CSF slot included).
pub fn signed_spl(shim: &FlatImage, pki: &Pki, options: &SignOptions) -> Result<Vec<u8>> {
    let spl = spl_image(shim)?;
    let len = spl.len();
    let signed = imx_hab::sign::sign_spl(&spl, pki, options)?;
    if signed.len() > len {
        bail!(
            "the SPL CSF ({:#x} bytes) does not fit its {CSF_SLOT_SIZE:#x}-byte slot",
            signed.len() - (len - CSF_SLOT_SIZE as usize)
        );
    }
    Ok(signed)
}

/// flash.bin = `signed_spl` ‖ zeros up to `layout.fit_offset` ‖ `signed_fit`. Fails when the
/// SPL runs into the FIT offset or the result exceeds [`MAX_FLASH_BIN`].
pub fn assemble(signed_spl: &[u8], signed_fit: &[u8], layout: &MediaLayout) -> Result<Vec<u8>> {
    let fit_off = layout.fit_offset as usize;
    if signed_spl.len() > fit_off {
        bail!(
            "the SPL ({:#x} bytes) runs past the FIT offset {fit_off:#x}",
            signed_spl.len()
        );
    }
    let mut out = signed_spl.to_vec();
    out.resize(fit_off, 0);
    out.extend_from_slice(signed_fit);
    if out.len() as u64 > MAX_FLASH_BIN {
        bail!(
            "flash.bin is {:#x} bytes, more than a {MAX_FLASH_BIN:#x}-byte slot",
            out.len()
        );
    }
    Ok(out)
}

/// Builds a complete flash.bin: the shim signed as SPL, and `fit` (unsigned FIT) signed for
/// [`FIT_LOAD`], on the AN12900 layout.
pub fn build_flash_bin(
    shim: &FlatImage,
    fit: &[u8],
    pki: &Pki,
    options: &SignOptions,
) -> Result<Vec<u8>> {
    let spl = signed_spl(shim, pki, options)?;
    let fit = crate::fit::sign_fit(fit, FIT_LOAD, pki, options)?;
    assemble(&spl, &fit, &AN12900_LAYOUT)
}

/// Verifies a flash.bin as the ROM and the shim would: the SPL with `verify_spl`, the FIT with
/// the software HAB at [`FIT_LOAD`], both against `fuses`.
pub fn verify_flash_bin(flash_bin: &[u8], fuses: &Fuses) -> Result<()> {
    verify_spl(flash_bin, &AN12900_LAYOUT, fuses)
        .map_err(|e| Error::msg(format!("SPL does not verify: {e}")))?;
    let fit = flash_bin
        .get(AN12900_LAYOUT.fit_offset as usize..)
        .ok_or_else(|| Error::msg("flash.bin ends before the FIT offset"))?;
    verify(fit, u64::from(FIT_LOAD), fuses)
        .map_err(|e| Error::msg(format!("FIT does not verify: {e}")))?;
    imx_hab::hab::software::SoftwareHab { fuses: *fuses }
        .authenticate(fit, u64::from(FIT_LOAD))
        .map_err(|e| Error::msg(format!("FIT is not authentic: {e:?}")))?;
    Ok(())
}

/// Where the parts of a flash.bin are, as byte offsets from its start (add the copy's device
/// offset for offsets on a disk: [`FlashBinOffsets::shifted`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlashBinOffsets {
    /// The SPL IVT (0).
    pub spl_ivt: u64,
    /// The SPL boot data.
    pub spl_boot_data: u64,
    /// The SPL CSF.
    pub spl_csf: u64,
    /// The FIT (the layout's FIT offset).
    pub fit: u64,
    /// The IVT after the FIT.
    pub fit_ivt: u64,
    /// The FIT's CSF.
    pub fit_csf: u64,
    /// One past the FIT CSF's last record.
    pub fit_end: u64,
    /// Each FIT image's embedded `data`, by name, in tree order.
    pub fit_images: Vec<(String, Range<u64>)>,
}

impl FlashBinOffsets {
    /// Parses `flash_bin` (AN12900 layout, signed SPL and signed FIT).
    pub fn of(flash_bin: &[u8]) -> Result<Self> {
        let fb = FlashBin::parse(flash_bin, &AN12900_LAYOUT)?;
        let spl_csf = fb
            .spl_csf_offset
            .ok_or_else(|| Error::msg("the SPL IVT has no CSF pointer"))?;
        let spl_boot_data = fb
            .spl_ivt
            .offset_of(fb.spl_ivt.boot_data())
            .ok_or_else(|| Error::msg("the SPL IVT has no boot data pointer"))?;
        let FitPart::Signed(sf) = fb.fit else {
            bail!("the FIT in this flash.bin is not signed");
        };
        let base = fb.fit_offset;
        let fit_images = sf
            .fit
            .images()
            .map(|i| {
                let r = i.data.offset + base..i.data.offset + i.data.len + base;
                (i.name.to_string(), r)
            })
            .collect();
        Ok(FlashBinOffsets {
            spl_ivt: 0,
            spl_boot_data,
            spl_csf,
            fit: base,
            fit_ivt: base + sf.ivt_offset,
            fit_csf: base + sf.csf_offset,
            fit_end: base + sf.signed_len(),
            fit_images,
        })
    }

    /// The data range of FIT image `name`.
    pub fn image_data(&self, name: &str) -> Option<Range<u64>> {
        self.fit_images
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| r.clone())
    }

    /// A byte in the middle of the SPL's signed code (after the IVT and boot data, before its
    /// CSF): a "flipped byte in the SPL's signed range", which the ROM's HAB check refuses.
    pub fn spl_code_byte(&self) -> u64 {
        let start = self.spl_ivt + SPL_HEADER_SIZE;
        start + self.spl_csf.saturating_sub(start) / 2
    }

    /// A byte in the middle of the first FIT image's data (a "flipped byte in the FIT data").
    pub fn fit_data_byte(&self) -> Result<u64> {
        let (_, r) = self
            .fit_images
            .iter()
            .find(|(_, r)| !r.is_empty())
            .ok_or_else(|| Error::msg("the FIT has no image data"))?;
        Ok(r.start + (r.end - r.start) / 2)
    }

    /// The same offsets plus `base` (e.g. the copy's byte offset on the disk).
    pub fn shifted(&self, base: u64) -> Self {
        let s = |r: &Range<u64>| r.start + base..r.end + base;
        FlashBinOffsets {
            spl_ivt: self.spl_ivt + base,
            spl_boot_data: self.spl_boot_data + base,
            spl_csf: self.spl_csf + base,
            fit: self.fit + base,
            fit_ivt: self.fit_ivt + base,
            fit_csf: self.fit_csf + base,
            fit_end: self.fit_end + base,
            fit_images: self
                .fit_images
                .iter()
                .map(|(n, r)| (n.clone(), s(r)))
                .collect(),
        }
    }
}

/// Size of the SPL IVT, for callers that damage it.
pub const SPL_IVT_SIZE: usize = IVT_SIZE;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::{FitConfig, FitImage, build_fit};
    use crate::pki::{SimFuses, generate};
    use imx_hab::hab::software::SoftwareHab;

    fn shim() -> FlatImage {
        FlatImage {
            load_addr: 0x0091_0000,
            entry: 0x0091_0000,
            bytes: (0..10_000u32).map(|i| (i * 31 + 7) as u8).collect(),
        }
    }

    #[test]
    fn the_version_stamp_is_patched_once_or_refused() {
        use boot_core::cell::{ShimVersion, VersionStamp};
        let v = ShimVersion {
            major: 9,
            minor: 8,
            patch: 7,
        };
        let mut s = shim();
        s.bytes[100..116].copy_from_slice(&VersionStamp::MARKER);
        let out = stamp_shim_version(&s, v).unwrap();
        assert_eq!(&out.bytes[116..120], &v.to_u32().to_le_bytes());
        assert_eq!(out.bytes[..116], s.bytes[..116]);
        assert_eq!(out.bytes[120..], s.bytes[120..]);
        // No stamp, two stamps, a stamp cut off at the end: refused.
        assert!(stamp_shim_version(&shim(), v).is_err());
        let mut two = s.clone();
        two.bytes[500..516].copy_from_slice(&VersionStamp::MARKER);
        assert!(stamp_shim_version(&two, v).is_err());
        let mut cut = shim();
        let n = cut.bytes.len();
        cut.bytes[n - 18..n - 2].copy_from_slice(&VersionStamp::MARKER);
        assert!(stamp_shim_version(&cut, v).is_err());
    }

    fn fit() -> Vec<u8> {
        build_fit(
            "xtask test",
            &[
                FitImage::firmware("payload", 0x4020_0000, vec![0xAA; 3000]),
                FitImage::data("blob", 0x4040_0000, vec![0x55; 4096]),
            ],
            &FitConfig {
                firmware: "payload".into(),
                loadables: vec!["blob".into()],
                rollback_index: None,
                fdt: None,
            },
        )
        .unwrap()
    }

    fn opts() -> SignOptions {
        SignOptions {
            signing_time: Some(1_767_225_600),
            ..SignOptions::default()
        }
    }

    #[test]
    fn spl_ivt_and_boot_data() {
        let spl = spl_image(&shim()).unwrap();
        let w = |at: usize| u32::from_le_bytes(spl[at..at + 4].try_into().unwrap());
        assert_eq!(&spl[..4], &[0xD1, 0x00, 0x20, 0x41]);
        let self_addr = 0x0091_0000 - 0x40;
        assert_eq!(w(4), 0x0091_0000); // entry
        assert_eq!(w(0x10), self_addr + 0x20); // boot_data
        assert_eq!(w(0x14), self_addr); // self
        assert_eq!(w(0x18), self_addr + 0x3000); // csf = ALIGN(0x40 + 10000, 0x1000)
        assert_eq!((w(0x20), w(0x24), w(0x28)), (self_addr, 0x5000, 0));
        assert_eq!(&spl[0x40..0x40 + 10_000], &shim().bytes[..]);
        assert_eq!(spl.len(), 0x5000);
    }

    #[test]
    fn flash_bin_parses_and_verifies_against_the_pki_fuses() {
        let pki = generate(b"xtask flash.bin test").unwrap();
        let fb = build_flash_bin(&shim(), &fit(), &pki, &opts()).unwrap();
        let fuses = SimFuses::closed_for(&pki).unwrap().fuses();

        let parsed = FlashBin::parse(&fb, &AN12900_LAYOUT).unwrap();
        assert!(parsed.spl_csf.is_some());
        assert!(matches!(parsed.fit, FitPart::Signed(_)));
        assert_eq!(parsed.boot_data.unwrap().size(), 0x5000);

        let spl = verify_spl(&fb, &AN12900_LAYOUT, &fuses).unwrap();
        assert_eq!(spl.load_address, 0x0091_0000 - 0x40);
        let fit = &fb[AN12900_LAYOUT.fit_offset as usize..];
        let auth = SoftwareHab { fuses }
            .authenticate(fit, u64::from(FIT_LOAD))
            .unwrap();
        assert_eq!(auth.entry, FIT_LOAD);
        verify_flash_bin(&fb, &fuses).unwrap();

        // Another PKI's fuses reject both parts.
        let other = SimFuses::closed_for(&generate(b"other").unwrap())
            .unwrap()
            .fuses();
        assert!(verify_spl(&fb, &AN12900_LAYOUT, &other).is_err());
        assert!(verify_flash_bin(&fb, &other).is_err());
    }

    #[test]
    fn offsets_point_at_the_parts_and_flips_break_verification() {
        let pki = generate(b"xtask offsets test").unwrap();
        let fuses = SimFuses::closed_for(&pki).unwrap().fuses();
        let fb = build_flash_bin(&shim(), &fit(), &pki, &opts()).unwrap();
        let o = FlashBinOffsets::of(&fb).unwrap();
        assert_eq!(o.fit, 0x57C00);
        assert_eq!(o.spl_csf, 0x3000);
        assert_eq!(
            &fb[o.fit_ivt as usize..o.fit_ivt as usize + 4],
            &[0xD1, 0, 0x20, 0x41]
        );
        assert_eq!(fb[o.fit_csf as usize], 0xD4);
        assert_eq!(fb[o.spl_csf as usize], 0xD4);
        let payload = o.image_data("payload").unwrap();
        assert_eq!(payload.end - payload.start, 3000);
        assert!(
            fb[payload.start as usize..payload.end as usize]
                .iter()
                .all(|&b| b == 0xAA)
        );
        for at in [o.fit_data_byte().unwrap(), o.fit_ivt + 4, o.fit_csf + 0x10] {
            let mut bad = fb.clone();
            bad[at as usize] ^= 0x01;
            let fit = &bad[AN12900_LAYOUT.fit_offset as usize..];
            assert!(
                SoftwareHab { fuses }
                    .authenticate(fit, u64::from(FIT_LOAD))
                    .is_err(),
                "flip at {at:#x}"
            );
        }
        let mut bad = fb.clone();
        bad[0x100] ^= 1;
        assert!(verify_spl(&bad, &AN12900_LAYOUT, &fuses).is_err());
        assert_eq!(o.shifted(0x8400).fit, 0x60000);
    }

    #[test]
    fn oversized_flash_bin_is_refused() {
        let pki = generate(b"xtask big").unwrap();
        let big = build_fit(
            "big",
            &[FitImage::firmware("payload", 0x4020_0000, vec![1; 2 << 20])],
            &FitConfig {
                firmware: "payload".into(),
                loadables: vec![],
                rollback_index: None,
                fdt: None,
            },
        )
        .unwrap();
        let e = build_flash_bin(&shim(), &big, &pki, &opts()).unwrap_err();
        assert!(e.message().contains("slot"), "{e}");
    }
}
