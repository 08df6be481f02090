//! The redundant-boot shim's host-testable logic (design.md §5).
//!
//! [`policy`] holds the boot decision table; [`cell`] the boot record the shim leaves for Linux
//! (design.md §6). The firmware binary (`src/bin/spl-shim.rs`,
//! `aarch64-unknown-none` only) wraps it with the hardware.
#![cfg_attr(not(test), no_std)]
#![cfg_attr(not(target_os = "none"), forbid(unsafe_code))]
#![cfg_attr(target_os = "none", deny(unsafe_code))]

pub mod boot;
pub mod cell;
#[cfg(target_os = "none")]
#[allow(unsafe_code)]
pub mod hw;
pub mod platform;
pub mod policy;
