//! The identity of a copy (design.md §7): SHA-256 of its SPL's CSF followed by its FIT's IVT and
//! CSF (the whole SPL / FIT where unsigned), computed the same way over the bytes the shim read
//! and over a flash.bin file.

use sha2::{Digest, Sha256};

use boards::Sector;
use imx_hab::image::{SignedFit, ivt_offset_for};
use imx_hab::ivt::IVT_SIZE;

use super::{SplLayout, spl_layout, spl_signed};

/// The part of an SPL of `layout` that goes into its copy's identity: its CSF when `signed`,
/// the whole SPL when not.
pub(super) fn spl_identity_range(signed: bool, layout: &SplLayout) -> core::ops::Range<usize> {
    match (signed, layout.csf) {
        (true, Some(csf)) => csf as usize..layout.len as usize,
        _ => 0..layout.len as usize,
    }
}

/// The part of a FIT (relative to its start) that goes into its copy's identity: its IVT and
/// CSF (`ivt_offset..image_len`) when `signed`, the whole FIT through its zero IVT when not.
pub(super) fn fit_identity_range(
    signed: bool,
    ivt_offset: u64,
    image_len: u64,
) -> core::ops::Range<usize> {
    if signed {
        ivt_offset as usize..image_len as usize
    } else {
        0..image_len as usize
    }
}

/// SHA-256 of a copy's identity parts in order: [`identity_parts`] of its SPL, then of its FIT.
/// [`super::Examined::identity`] is this, computed over the bytes read.
pub fn image_identity(spl_part: &[u8], fit_part: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(spl_part);
    h.update(fit_part);
    h.finalize().into()
}

/// The identity parts of a flash.bin file whose FIT lies at `fit_offset` (see
/// [`super::Examined::identity`]); `None` when its SPL or FIT does not parse or the file is short.
pub fn identity_parts(flash_bin: &[u8], fit_offset: u64) -> Option<(&[u8], &[u8])> {
    let sector: &Sector = flash_bin.first_chunk()?;
    let layout = spl_layout(sector, fit_offset).ok()?;
    let spl = flash_bin.get(..layout.len as usize)?;
    let spl_part = spl.get(spl_identity_range(spl_signed(spl, &layout), &layout))?;
    let fit = flash_bin.get(usize::try_from(fit_offset).ok()?..)?;
    let total = u64::from(imx_hab::fit::totalsize(fit).ok()?);
    let ivt_offset = ivt_offset_for(total);
    let signed = fit
        .get(ivt_offset as usize..)
        .is_some_and(|i| i.iter().take(IVT_SIZE).any(|&b| b != 0));
    let image_len = if signed {
        SignedFit::parse(fit).ok()?.signed_len()
    } else {
        ivt_offset + IVT_SIZE as u64
    };
    let fit_part = fit.get(fit_identity_range(signed, ivt_offset, image_len))?;
    Some((spl_part, fit_part))
}

/// [`image_identity`] of a flash.bin file ([`identity_parts`]).
pub fn flash_bin_identity(flash_bin: &[u8], fit_offset: u64) -> Option<[u8; 32]> {
    identity_parts(flash_bin, fit_offset).map(|(s, f)| image_identity(s, f))
}
