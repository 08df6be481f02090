//! What an input file is, and its parts: a flash.bin (SPL IVT at offset 0, FIT at the layout's
//! FIT offset), a HAB-signed FIT (FIT ‖ pad ‖ IVT at `ALIGN(totalsize, 0x1000)` ‖ CSF), or a
//! bare FIT (docs/hab4-format.md §2; imx8m-facts.md §2.1).

use boards::MediaLayout;

use crate::csf::Csf;
use crate::fit::{self, Fit};
use crate::ivt::{BootData, IVT_SIZE, Ivt};
use crate::{ErrorKind, ParseError, Result, Structure, align_up};

/// Alignment of the IVT after a signed FIT (U-Boot `spl_load_simple_fit_fix_load()`).
pub const FIT_IVT_ALIGN: u64 = 0x1000;

/// A FIT followed by an IVT and a CSF, as U-Boot's i.MX 8M HAB flow lays it out.
#[derive(Debug, Clone, Copy)]
pub struct SignedFit<'a> {
    /// The whole blob (FIT, padding, IVT, CSF and anything after it).
    pub blob: &'a [u8],
    /// The FIT.
    pub fit: Fit<'a>,
    /// Offset of the IVT in the blob: `ALIGN(totalsize, 0x1000)`.
    pub ivt_offset: u64,
    /// The IVT.
    pub ivt: Ivt<'a>,
    /// Offset of the CSF in the blob (`ivt_offset + csf - self`).
    pub csf_offset: u64,
    /// The CSF.
    pub csf: Csf<'a>,
}

impl<'a> SignedFit<'a> {
    /// Parses a signed FIT at the start of `bytes`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        let fit = Fit::parse(bytes)?;
        let ivt_offset = ivt_offset_for(fit.totalsize() as u64);
        let ivt_bytes = usize::try_from(ivt_offset)
            .ok()
            .and_then(|o| bytes.get(o..))
            .ok_or(ParseError::truncated(
                Structure::Ivt,
                "header",
                ivt_offset,
                IVT_SIZE as u64,
                0,
            ))?;
        let ivt = Ivt::parse(ivt_bytes).map_err(|e| e.shifted(ivt_offset))?;
        if ivt.csf() == 0 {
            return Err(ParseError::new(
                Structure::Ivt,
                "csf",
                ivt_offset + 0x18,
                ErrorKind::Zero,
            ));
        }
        let rel = ivt
            .offset_of(ivt.csf())
            .filter(|&r| r >= IVT_SIZE as u64)
            .ok_or(ParseError::invalid(
                Structure::Ivt,
                "csf",
                ivt_offset + 0x18,
                "points before the end of the IVT",
            ))?;
        let csf_offset = ivt_offset + rel;
        let csf_bytes = usize::try_from(csf_offset)
            .ok()
            .and_then(|o| bytes.get(o..))
            .ok_or(ParseError::truncated(
                Structure::CsfHeader,
                "header",
                csf_offset,
                4,
                0,
            ))?;
        let csf = Csf::parse(csf_bytes).map_err(|e| e.shifted(csf_offset))?;
        Ok(SignedFit {
            blob: bytes,
            fit,
            ivt_offset,
            ivt,
            csf_offset,
            csf,
        })
    }

    /// The load address the blob was signed for: `self - ivt_offset`.
    pub fn load_address(&self) -> u64 {
        u64::from(self.ivt.self_addr()).wrapping_sub(self.ivt_offset)
    }

    /// Bytes of the blob up to the end of the CSF's last record.
    pub fn signed_len(&self) -> u64 {
        self.csf_offset + self.csf.extent() as u64
    }
}

/// `ALIGN(totalsize, 0x1000)`: where the IVT follows a FIT of `totalsize` bytes.
pub fn ivt_offset_for(totalsize: u64) -> u64 {
    align_up(totalsize, FIT_IVT_ALIGN).unwrap_or(u64::MAX)
}

/// The FIT part of a flash.bin.
#[derive(Debug, Clone, Copy)]
pub enum FitPart<'a> {
    /// A signed FIT.
    Signed(SignedFit<'a>),
    /// A FIT without an IVT after it.
    Bare(Fit<'a>),
}

/// A flash.bin: SPL (IVT, boot data, optional CSF) and the U-Boot FIT.
#[derive(Debug, Clone, Copy)]
pub struct FlashBin<'a> {
    /// The whole file.
    pub bytes: &'a [u8],
    /// The SPL's IVT at offset 0.
    pub spl_ivt: Ivt<'a>,
    /// The SPL's boot data, if the IVT points to it.
    pub boot_data: Option<BootData<'a>>,
    /// Offset of the SPL CSF, if the IVT points to one.
    pub spl_csf_offset: Option<u64>,
    /// The SPL CSF, if there is one at that offset (a zeroed reserved slot gives `None`).
    pub spl_csf: Option<Csf<'a>>,
    /// Offset of the FIT.
    pub fit_offset: u64,
    /// The FIT.
    pub fit: FitPart<'a>,
}

impl<'a> FlashBin<'a> {
    /// Parses a flash.bin whose FIT sits at `layout.fit_offset`.
    pub fn parse(bytes: &'a [u8], layout: &MediaLayout) -> Result<Self> {
        let spl_ivt = Ivt::parse(bytes)?;
        let rel = |addr: u32, field| {
            spl_ivt
                .offset_of(addr)
                .filter(|&o| o < bytes.len() as u64)
                .ok_or(ParseError::invalid(
                    Structure::Ivt,
                    field,
                    if field == "boot_data" { 0x10 } else { 0x18 },
                    "points outside the flash.bin",
                ))
        };
        let boot_data = match spl_ivt.boot_data() {
            0 => None,
            a => {
                let off = rel(a, "boot_data")?;
                Some(BootData::parse(&bytes[off as usize..]).map_err(|e| e.shifted(off))?)
            }
        };
        let (spl_csf_offset, spl_csf) = match spl_ivt.csf() {
            0 => (None, None),
            a => {
                let off = rel(a, "csf")?;
                let at = &bytes[off as usize..];
                // An unsigned build leaves the reserved CSF slot zeroed; anything else must be
                // a CSF, and a damaged one is an error.
                let csf = if at.iter().take(4).any(|&b| b != 0) {
                    Some(Csf::parse(at).map_err(|e| e.shifted(off))?)
                } else {
                    None
                };
                (Some(off), csf)
            }
        };
        let fit_offset = layout.fit_offset;
        let fit_bytes = usize::try_from(fit_offset)
            .ok()
            .and_then(|o| bytes.get(o..))
            .ok_or(ParseError::truncated(
                Structure::FlashBin,
                "FIT",
                fit_offset,
                fit::FDT_HEADER_SIZE as u64,
                0,
            ))?;
        let fit = parse_fit(fit_bytes).map_err(|e| e.shifted(fit_offset))?;
        Ok(FlashBin {
            bytes,
            spl_ivt,
            boot_data,
            spl_csf_offset,
            spl_csf,
            fit_offset,
            fit,
        })
    }
}

fn parse_fit(bytes: &[u8]) -> Result<FitPart<'_>> {
    let total = fit::totalsize(bytes)?;
    let ivt_at = ivt_offset_for(total.into());
    // Anything but zeros where the IVT belongs means the blob claims to be signed: parse the
    // IVT strictly so that a damaged IVT is reported, not mistaken for an unsigned FIT.
    let after = usize::try_from(ivt_at)
        .ok()
        .and_then(|o| bytes.get(o..))
        .unwrap_or(&[]);
    if after.iter().take(IVT_SIZE).any(|&b| b != 0) {
        SignedFit::parse(bytes).map(FitPart::Signed)
    } else {
        Fit::parse(bytes).map(FitPart::Bare)
    }
}

/// A decoded input file.
#[derive(Debug, Clone, Copy)]
pub enum Image<'a> {
    /// A flash.bin (SPL + FIT).
    FlashBin(FlashBin<'a>),
    /// A signed FIT blob.
    SignedFit(SignedFit<'a>),
    /// A FIT with no IVT/CSF after it.
    BareFit(Fit<'a>),
}

impl<'a> Image<'a> {
    /// Detects what `bytes` is and decodes it. A flash.bin is recognised by the IVT header at
    /// offset 0, a FIT by the FDT magic; a FIT is signed when an IVT header sits at
    /// `ALIGN(totalsize, 0x1000)`.
    pub fn parse(bytes: &'a [u8], layout: &MediaLayout) -> Result<Self> {
        if bytes.len() < 4 {
            return Err(ParseError::truncated(
                Structure::Image,
                "header",
                0,
                4,
                bytes.len() as u64,
            ));
        }
        if Ivt::has_header(bytes) {
            return FlashBin::parse(bytes, layout).map(Image::FlashBin);
        }
        if fit::has_magic(bytes) {
            return Ok(match parse_fit(bytes)? {
                FitPart::Signed(s) => Image::SignedFit(s),
                FitPart::Bare(f) => Image::BareFit(f),
            });
        }
        Err(ParseError::invalid(
            Structure::Image,
            "header",
            0,
            "is neither an IVT header (D1 00 20 4x: flash.bin) nor the FDT magic (D0 0D FE ED: FIT)",
        ))
    }

    /// Short name of the kind.
    pub fn kind_name(&self) -> &'static str {
        match self {
            Image::FlashBin(_) => "flash.bin",
            Image::SignedFit(_) => "signed FIT",
            Image::BareFit(_) => "bare FIT",
        }
    }
}
