//! The small traits through which the boot flow reaches the hardware (design.md §5), so the same
//! flow runs over the uSDHC and the ROM on silicon, over QEMU's models in simulation and over
//! in-memory disks in host tests.

use core::fmt;

/// A block device the shim reads the boot images from (the user area of an SD card or eMMC).
pub trait BlockRead {
    /// Number of sectors ([`boards::SECTOR_SIZE`] bytes each) on the medium.
    fn block_count(&self) -> u64;

    /// Reads `buf.len() / SECTOR_SIZE` sectors starting at sector `lba` into `buf`. `buf.len()`
    /// must be a non-zero multiple of [`boards::SECTOR_SIZE`]; anything else, and any range past
    /// [`block_count`](Self::block_count), is a [`MediaError::OutOfRange`].
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError>;
}

/// A failed medium access. Every timeout and every error bit of the controller ends up here:
/// the shim never waits forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaError {
    /// No card in the slot (card-detect clear, or no response to the first command).
    NoCard,
    /// A wait for the controller or the card ran out of time.
    Timeout {
        /// Command index being executed (`0xFF` = none: reset or line wait).
        command: u8,
        /// What was awaited.
        waiting_for: &'static str,
        /// Interrupt status register at the time.
        int_status: u32,
    },
    /// The controller reported an error bit for a command.
    Command {
        /// Command index.
        command: u8,
        /// Interrupt status register (error bits 16 and up).
        int_status: u32,
    },
    /// The card's response says it cannot do what the shim needs.
    Card {
        /// Command index whose response was wrong.
        command: u8,
        /// The response word.
        response: u32,
        /// What was wrong.
        what: &'static str,
    },
    /// A read outside the medium, or a buffer that is not a whole number of blocks.
    OutOfRange {
        /// First block asked for.
        lba: u64,
        /// Bytes asked for.
        len: usize,
    },
}

impl fmt::Display for MediaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MediaError::NoCard => f.write_str("no card in the slot"),
            MediaError::Timeout {
                command,
                waiting_for,
                int_status,
            } => write!(
                f,
                "timeout waiting for {waiting_for} (CMD{command}, INT_STATUS {int_status:#010x})"
            ),
            MediaError::Command {
                command,
                int_status,
            } => write!(f, "CMD{command} failed: INT_STATUS {int_status:#010x}"),
            MediaError::Card {
                command,
                response,
                what,
            } => write!(f, "CMD{command} response {response:#010x}: {what}"),
            MediaError::OutOfRange { lba, len } => {
                write!(
                    f,
                    "read of {len} bytes at block {lba} is outside the medium"
                )
            }
        }
    }
}

/// A free-running monotonic clock (the ARM generic timer on silicon and in QEMU).
pub trait Clock {
    /// Current tick count.
    fn ticks(&self) -> u64;
    /// Ticks per second.
    fn frequency_hz(&self) -> u64;

    /// Microseconds in `ticks` ticks of this clock.
    fn micros(&self, ticks: u64) -> u64 {
        // Whole seconds and the remainder separately: no overflow for any realistic frequency,
        // and no 128-bit division in the firmware.
        let f = self.frequency_hz().max(1);
        (ticks / f)
            .saturating_mul(1_000_000)
            .saturating_add((ticks % f).saturating_mul(1_000_000) / f)
    }
}

/// Where the shim leaves its boot record (design.md §6): the board's cell address.
pub trait CellStore {
    /// Writes the whole cell (word 0 the slot, then the record).
    fn store(&mut self, cell: &[u8; crate::cell::CELL_SIZE]);
}

/// The watchdog the shim services while it works (long media reads, verification).
pub trait WatchdogService {
    /// Restarts the watchdog's countdown.
    fn service(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(u64);

    impl Clock for Fixed {
        fn ticks(&self) -> u64 {
            0
        }
        fn frequency_hz(&self) -> u64 {
            self.0
        }
    }

    #[test]
    fn micros_are_exact_and_never_overflow() {
        let c = Fixed(8_000_000);
        assert_eq!(c.micros(8), 1);
        assert_eq!(c.micros(7), 0);
        assert_eq!(c.micros(8_000_000 * 3 + 4), 3_000_000);
        // A year of ticks at 8 MHz and the largest count both come out right or saturated.
        assert_eq!(c.micros(8_000_000 * 31_536_000), 31_536_000_000_000);
        assert_eq!(
            c.micros(u64::MAX),
            u64::MAX / 8_000_000 * 1_000_000 + 693_951
        );
        assert_eq!(
            Fixed(0).micros(5),
            5_000_000,
            "a zero frequency counts as 1 Hz"
        );
    }
}
