//! The one judgement of a boot copy, shared by the shim firmware and every `ubootctl` command
//! (design.md §2, §5).
//!
//! [`examine`] judges a copy as the ROM and then the shim would (SPL, then FIT); [`policy`]
//! holds the boot decision table; [`rollback`] the security epoch against the fuse minimum; [`boot`] the boot flow over the [`platform`] traits; [`rom`] the ROM's event log and its
//! choice of SPL; [`cell`]
//! the boot record the shim leaves for Linux (design.md §6). Pure logic: no hardware, no
//! allocator, no `unsafe`.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod boot;
pub mod cell;
pub mod emmc;
pub mod examine;
pub mod log;
pub mod platform;
pub mod policy;
pub mod rollback;
pub mod rom;
