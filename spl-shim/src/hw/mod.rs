//! Hardware drivers of the shim firmware (`target_os = "none"` only).
//!
//! One file per block: [`uart`] (console), [`usdhc`] (SD card and eMMC, PIO), [`medium`] (the
//! boot medium BOOT_CFG names and the flow over it), [`timer`] (ARM generic
//! timer), [`watchdog`] (WDOG1), [`ocotp`] (fuse shadow registers), [`rom`] (what the boot ROM left), [`copy`] (the NEON image
//! copy of the handoff) and [`exceptions`] (the report printed by the EL3 exception vectors).
//! What only the test firmware needs (semihosting, GIC, PSCI) lives in `test-firmware`.
//! Register layouts follow `docs/imx8m-facts.md` §9, §10 (i.MX 8M reference-manual register
//! names as used by U-Boot and Linux) and every QEMU deviation `docs/qemu-imx8mp.md` records.
//!
//! `unsafe` is confined to the MMIO and system-instruction boundary; each block says why it is
//! sound.

pub mod copy;
pub mod exceptions;
#[cfg(defmt_log)]
pub mod log;

// boot-core's messages and the shim's go out the same way (both `text-log`, or both defmt).
const _: () = assert!(boot_core::log::DEFMT == cfg!(defmt_log));
pub mod medium;
pub mod ocotp;
pub mod rom;
pub mod timer;
pub mod uart;
pub mod usdhc;
pub mod watchdog;

/// The board this firmware is built for: QEMU's `imx8mp-evk` unless the `imx8mm-evk` feature
/// selects the i.MX 8M Mini EVK (design.md §3). Every driver takes its addresses from here.
#[cfg(not(feature = "imx8mm-evk"))]
pub const BOARD: &boards::Board = &boards::qemu_imx8mp::BOARD;

/// The board this firmware is built for: QEMU's `imx8mp-evk` unless the `imx8mm-evk` feature
/// selects the i.MX 8M Mini EVK (design.md §3). Every driver takes its addresses from here.
#[cfg(feature = "imx8mm-evk")]
pub const BOARD: &boards::Board = &boards::imx8mm_evk::BOARD;
