//! The redundant-boot shim's firmware support: the drivers (`hw`) and arch code (`arch`) of
//! the product firmware (`src/bin/spl-shim.rs`). The boot logic it runs lives in `boot-core`;
//! the test firmware (test payload, Linux stand-in, driver self-test) in `test-firmware`.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(target_os = "none"), forbid(unsafe_code))]
#![cfg_attr(target_os = "none", deny(unsafe_code))]

#[cfg(target_os = "none")]
#[allow(unsafe_code)]
pub mod arch;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
pub mod hw;
