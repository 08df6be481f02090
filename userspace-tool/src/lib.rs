//! The update side of `ubootctl` (design.md §7, issue 5) as a library: block I/O on the boot
//! medium, reading and judging the two copies and the Secondary Image Table exactly as the shim
//! will, the AN12900 update rule as an explicit plan, and the executor that carries a plan out
//! with read-back verification.
//!
//! | module | holds |
//! |---|---|
//! | [`blockdev`] | the [`blockdev::BlockDevice`] trait, an in-memory device, [`blockdev::FileDevice`] for regular files and Linux block devices (locked, synchronous writes, cache-bypassing read-back) |
//! | [`media`] | the medium's state: SIT, primary and secondary verdicts, and [`media::predict`], the shim's next-boot decision |
//! | [`plan`] | the update and sync plans (pure): which bytes go where, in which order, and why |
//! | [`commit`] | the anti-rollback commit rule (pure) and the fuse stores it burns through |
//! | [`exec`] | runs a plan on a device, reports progress, verifies every copy it writes by SHA-256 |
//! | [`emmc`] | eMMC boot partitions: EXT_CSD[179] through `MMC_IOC_CMD`, the A/B layout's view, device and plans |
//! | [`sysblock`] | what sysfs and procfs say about the target: partition, mounted, eMMC boot partition and its `force_ro` guard |
//!
//! The command-line wiring (`status`, `update`, `sync`) lives in the binary.
// `unsafe` is allowed in one place only: the block-device and MMC ioctls rustix has no safe
// wrapper for (`blockdev::ioctl`).
#![deny(unsafe_code)]

pub mod blockdev;
pub mod commit;
pub mod emmc;
pub mod exec;
pub mod media;
pub mod partitions;
pub mod plan;
pub mod storage_lock;
pub mod sysblock;
