//! The redundant-boot shim's host-testable logic (design.md §5).
//!
//! [`policy`] holds the boot decision table; [`cell`] the boot record the shim leaves for Linux
//! (design.md §6). The firmware binary (`src/bin/spl-shim.rs`,
//! `aarch64-unknown-none` only) wraps it with the hardware.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod cell;
pub mod platform;
pub mod policy;
