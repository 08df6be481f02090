//! The unsigned SPL image every flash.bin starts with, as `imx8mimage` lays it out (test keys
//! and tools only): the one builder of SPL IVTs for the workspace's images and tests.
//!
//! | offset | content |
//! |---|---|
//! | 0x00 | IVT `D1 00 20 41`: entry = self + 0x40, dcd 0, boot_data = self + 0x20, self, csf = self + csf_off |
//! | 0x20 | boot data {start = self, length = csf_off + [`SPL_CSF_SLOT`], plugin = 0} |
//! | 0x40 | the code |
//! | csf_off = ALIGN(0x40 + code, 0x1000) | a zeroed CSF slot of [`SPL_CSF_SLOT`] bytes |

use crate::ivt::{BOOT_DATA_SIZE, IVT_SIZE};

/// Bytes before the code: IVT (0x20), boot data (0x0C), padding.
pub const SPL_HEADER_SIZE: u64 = 0x40;
/// Alignment of the CSF offset (imx8mimage pads the SPL to 4 KiB before the CSF).
pub const SPL_CSF_ALIGN: u64 = 0x1000;
/// Size of the CSF slot after the SPL (binman / imx8mimage `CSF_SIZE`).
pub const SPL_CSF_SLOT: u64 = 0x2000;

/// An IVT for a FIT or an SPL (docs/hab4-format.md §3): `D1 0020 41`, then the LE words entry,
/// reserved1 0, dcd 0, `boot_data`, `self`, `csf`, reserved2 0.
pub fn ivt(entry: u32, boot_data: u32, self_addr: u32, csf: u32) -> [u8; IVT_SIZE] {
    let mut v = [0u8; IVT_SIZE];
    v[..4].copy_from_slice(&[0xD1, 0x00, 0x20, 0x41]);
    for (i, w) in [entry, 0, 0, boot_data, self_addr, csf, 0]
        .into_iter()
        .enumerate()
    {
        v[4 + 4 * i..8 + 4 * i].copy_from_slice(&w.to_le_bytes());
    }
    v
}

/// Boot data (start, size, plugin) as LE words.
pub fn boot_data(start: u32, size: u32, plugin: u32) -> [u8; BOOT_DATA_SIZE] {
    let mut v = [0u8; BOOT_DATA_SIZE];
    for (i, w) in [start, size, plugin].into_iter().enumerate() {
        v[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
    }
    v
}

/// Offset of the CSF in an SPL holding `code_len` bytes of code.
pub fn spl_csf_offset(code_len: u64) -> u64 {
    (SPL_HEADER_SIZE + code_len).next_multiple_of(SPL_CSF_ALIGN)
}

/// The unsigned SPL (module table) for code linked to run at `self_addr + 0x40`; sign it with
/// [`super::sign_spl`]. `None` when the image would not fit below 4 GiB.
pub fn spl_image(self_addr: u32, code: &[u8]) -> Option<Vec<u8>> {
    let csf_off = spl_csf_offset(code.len() as u64);
    let total = csf_off + SPL_CSF_SLOT;
    if u64::from(self_addr) + total > u64::from(u32::MAX) {
        return None;
    }
    let s = self_addr;
    let mut out = vec![0u8; total as usize];
    out[..IVT_SIZE].copy_from_slice(&ivt(s + 0x40, s + 0x20, s, s + csf_off as u32));
    out[0x20..0x20 + BOOT_DATA_SIZE].copy_from_slice(&boot_data(s, total as u32, 0));
    out[SPL_HEADER_SIZE as usize..SPL_HEADER_SIZE as usize + code.len()].copy_from_slice(code);
    Some(out)
}
