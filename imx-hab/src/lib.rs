//! i.MX 8M boot structures as the ROM and NXP's Code Signing Tool define them, parsed in place.
//!
//! `no_std`, no allocation, no `unsafe`: every parser borrows from the input and returns a typed
//! view whose existence proves its checks passed, or a [`ParseError`] naming the structure, the
//! field and the byte offset. Byte layouts follow `docs/hab4-format.md` (what `cst` 3.3.1 emits)
//! and `docs/imx8m-facts.md` (ROM structures); the product design is `docs/design.md`.
//!
//! | module | holds |
//! |---|---|
//! | [`ivt`] | Image Vector Table and boot data |
//! | [`sit`] | the ROM's Secondary Image Table (parse, validate, build) |
//! | [`csf`] | CSF header and every HAB4 command |
//! | [`records`] | what the CSF points to: SRK table, certificates, signatures |
//! | [`srk`] | SRK table and the fuse hash as `srktool` computes it |
//! | [`x509`], [`cms`] | allocation-free views of the DER inside certificate and signature records |
//! | [`fit`] | FIT sizing, images and the default configuration |
//! | [`image`] | what a file is: flash.bin, signed FIT, bare FIT |
//! | [`hab`] | authentication: the [`hab::Authenticator`] trait, the software HAB4 verifier, HAB event records, the ROM binding |
#![cfg_attr(not(any(feature = "std", test)), no_std)]
// `unsafe` is allowed only in the ROM HAB binding (`hab::rom`), which exists only on bare metal.
#![cfg_attr(not(target_os = "none"), forbid(unsafe_code))]
#![cfg_attr(target_os = "none", deny(unsafe_code))]

pub mod cms;
pub mod codes;
pub mod csf;
mod der_util;
mod error;
pub mod fit;
pub mod hab;
pub mod image;
pub mod ivt;
pub mod records;
#[cfg(feature = "sign")]
pub mod sign;
pub mod sit;
pub mod srk;
pub mod x509;

pub use error::{ErrorKind, ParseError, Structure};

/// Result of every parser in this crate.
pub type Result<T> = core::result::Result<T, ParseError>;

/// Rounds `v` up to a multiple of `align` (a power of two); `None` on overflow.
pub(crate) const fn align_up(v: u64, align: u64) -> Option<u64> {
    match v.checked_add(align - 1) {
        Some(x) => Some(x & !(align - 1)),
        None => None,
    }
}
