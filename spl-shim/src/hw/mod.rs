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

/// Defines [`board_log_name`] and its text from one literal.
macro_rules! board_log_name {
    ($s:literal) => {
        /// "<board> (<SoC>)" for the shim's banner as a [`boot_core::log::Name`] (interned in
        /// the defmt build); an assertion ties it to [`BOARD`] at compile time.
        pub fn board_log_name() -> boot_core::log::Name {
            boot_core::name!($s)
        }

        const BOARD_LOG_NAME: &str = $s;
    };
}

#[cfg(not(feature = "imx8mm-evk"))]
board_log_name!("qemu-imx8mp (i.MX 8M Plus)");
#[cfg(feature = "imx8mm-evk")]
board_log_name!("imx8mm-evk (i.MX 8M Mini)");

const _: () = assert!(is_board_and_soc(BOARD_LOG_NAME.as_bytes()));

/// Whether `s` is `BOARD.name (BOARD.soc.name())`.
const fn is_board_and_soc(s: &[u8]) -> bool {
    let (board, soc) = (BOARD.name.as_bytes(), BOARD.soc.name().as_bytes());
    if s.len() != board.len() + soc.len() + 3 {
        return false;
    }
    let mut i = 0;
    while i < s.len() {
        let expected = if i < board.len() {
            board[i]
        } else if i == board.len() {
            b' '
        } else if i == board.len() + 1 {
            b'('
        } else if i < s.len() - 1 {
            soc[i - board.len() - 2]
        } else {
            b')'
        };
        if s[i] != expected {
            return false;
        }
        i += 1;
    }
    true
}
