//! Test firmware for the redundant-boot shim, kept out of the product crate (`spl-shim`): the
//! simulation's test payload and Linux stand-in (the FIT payloads the shim boots in QEMU), the
//! driver self-test (`hw-selftest`) and the SHA-256 bench (`sha-bench`), all
//! `aarch64-unknown-none` binaries in `src/bin/`.
//!
//! They take the entry code (`spl_shim::arch`) and the product drivers (`spl_shim::hw`) from
//! the shim; this library adds the drivers only they need (`hw`, bare metal only). On a host
//! target the library is empty and each binary only explains how to build it.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(target_os = "none"), forbid(unsafe_code))]
#![cfg_attr(target_os = "none", deny(unsafe_code))]

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
pub mod hw;
