//! Anti-rollback (design.md §5.3): a copy's *security epoch*, the `rollback-index` of its FIT's
//! default configuration (signed with the FIT), against a minimum kept in fuses.
//!
//! The minimum is the number of 1-bits in 64 fuse bits, one bit per epoch, because a fuse only
//! ever goes from 0 to 1: raising the minimum burns more bits, and a burn cut short leaves a
//! value between the old minimum and the target, never past it (imx8m-facts.md §6.1).
//!
//! Where the bits are:
//! - silicon: OCOTP GP1, bank 14 words 0–1 (shadow registers `0x30350780`, `0x30350790`; nvmem
//!   byte offset `0xE0`); GP1_LOCK is bits 21:20 of bank 0 word 0 (the LOCK word, nvmem 0x0);
//! - QEMU (`FuseSource::SimulatedBlock`): bytes `0x28..0x30` of the 64-byte block, little-endian.

use core::fmt;

/// Fuse bits, hence the largest minimum.
pub const FUSE_BITS: u32 = 64;
/// Offset of the rollback bits in the simulated 64-byte fuse block (LE u64).
pub const SIM_BLOCK_OFFSET: usize = 0x28;
/// OCOTP bank of GP1 (imx8m-facts.md §6.1).
pub const OCOTP_BANK: u32 = 14;
/// nvmem byte offset of GP1 word 0 in Linux's imx-ocotp device: (bank × 4 + word) × 4.
pub const OCOTP_NVMEM_OFFSET: usize = (OCOTP_BANK as usize * 4) * 4;
/// nvmem byte offset of the LOCK word (bank 0 word 0).
pub const OCOTP_LOCK_NVMEM_OFFSET: usize = 0;
/// GP1_LOCK in the LOCK word: bit 20 blocks programming GP1, bit 21 blocks overriding its
/// shadow registers (imx8m-facts.md §6.1).
pub const GP1_LOCK_MASK: u32 = 0b11 << 20;
/// The GP1_LOCK bit that makes the fuses unprogrammable.
pub const GP1_WRITE_LOCK: u32 = 1 << 20;

/// The 64 rollback fuse bits (word 0 in bits 0..32, word 1 in bits 32..64).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct RollbackFuses(pub u64);

impl RollbackFuses {
    /// No bit burned: minimum 0, every epoch boots.
    pub const BLANK: RollbackFuses = RollbackFuses(0);

    /// From the two fuse words (GP1 word 0, word 1).
    pub const fn from_words(w0: u32, w1: u32) -> Self {
        RollbackFuses((w1 as u64) << 32 | w0 as u64)
    }

    /// The two fuse words.
    pub const fn words(self) -> [u32; 2] {
        [self.0 as u32, (self.0 >> 32) as u32]
    }

    /// The minimum epoch: the number of burned bits, whichever they are.
    pub const fn minimum(self) -> u32 {
        self.0.count_ones()
    }

    /// The bits to burn so that the minimum becomes `target`: the lowest blank bits. Empty when
    /// the minimum is already `target` or more (the minimum never goes down, and nothing is
    /// burned to stay). Any subset of the result, burned, gives a minimum between the current
    /// one and `target`.
    pub fn burn_for(self, target: u32) -> Result<u64, RollbackError> {
        if target > FUSE_BITS {
            return Err(RollbackError::TooHigh { target });
        }
        let mut need = target.saturating_sub(self.minimum());
        let mut mask = 0u64;
        let mut bit = 0;
        while need > 0 && bit < FUSE_BITS {
            if self.0 & (1 << bit) == 0 {
                mask |= 1 << bit;
                need -= 1;
            }
            bit += 1;
        }
        Ok(mask)
    }

    /// The fuses after `mask` is burned (fuses only go from 0 to 1).
    pub const fn burned(self, mask: u64) -> Self {
        RollbackFuses(self.0 | mask)
    }
}

/// The epoch a FIT's `rollback-index` gives (absent = 0).
pub const fn epoch(rollback_index: Option<u32>) -> u32 {
    match rollback_index {
        Some(e) => e,
        None => 0,
    }
}

/// The minimum the commit rule advances to: the lower of the two copies' epochs (both authentic,
/// so that neither stops booting), capped at what the fuses can hold.
pub fn advance_target(primary_epoch: u32, secondary_epoch: u32) -> u32 {
    primary_epoch.min(secondary_epoch).min(FUSE_BITS)
}

/// Why the rollback fuses cannot be set as asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollbackError {
    /// More than [`FUSE_BITS`] bits would be needed.
    TooHigh {
        /// The minimum asked for.
        target: u32,
    },
}

impl fmt::Display for RollbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RollbackError::TooHigh { target } => write!(
                f,
                "minimum {target} needs more than the {FUSE_BITS} rollback fuse bits"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimum_counts_bits_wherever_they_are() {
        assert_eq!(RollbackFuses::BLANK.minimum(), 0);
        assert_eq!(RollbackFuses(0b1011).minimum(), 3);
        assert_eq!(RollbackFuses::from_words(0, 0x8000_0001).minimum(), 2);
        assert_eq!(RollbackFuses(u64::MAX).minimum(), 64);
        assert_eq!(RollbackFuses::from_words(5, 7).words(), [5, 7]);
    }

    #[test]
    fn burn_takes_the_lowest_blank_bits_and_never_lowers() {
        assert_eq!(RollbackFuses::BLANK.burn_for(2), Ok(0b11));
        // A stray bit (burned out of order, or by hand) counts: only one more is needed.
        assert_eq!(RollbackFuses(0b100).burn_for(2), Ok(0b001));
        assert_eq!(RollbackFuses(0b111).burn_for(2), Ok(0));
        assert_eq!(RollbackFuses(0b111).burn_for(3), Ok(0));
        assert_eq!(
            RollbackFuses(u64::MAX >> 1).burn_for(64),
            Ok(1 << 63),
            "the last bit"
        );
        assert_eq!(
            RollbackFuses::BLANK.burn_for(65),
            Err(RollbackError::TooHigh { target: 65 })
        );
        // Across the word boundary.
        let f = RollbackFuses::from_words(u32::MAX, 0);
        assert_eq!(f.burn_for(34), Ok(0b11 << 32));
    }

    #[test]
    fn every_torn_burn_lands_between_the_old_and_the_new_minimum() {
        // A burn cut short leaves any subset of the planned bits: exhaustive over small plans,
        // from several starting patterns, including one bit already burned out of order.
        for start in [0u64, 0b1, 0b100, 0xF0, 1 << 40] {
            let fuses = RollbackFuses(start);
            for target in 0..=10u32 {
                let mask = fuses.burn_for(target).unwrap();
                assert_eq!(
                    fuses.burned(mask).minimum(),
                    target.max(fuses.minimum()),
                    "a complete burn reaches the target exactly"
                );
                let mut subset = mask;
                loop {
                    let m = fuses.burned(subset).minimum();
                    assert!(m >= fuses.minimum() && m <= target.max(fuses.minimum()));
                    if subset == 0 {
                        break;
                    }
                    subset = (subset - 1) & mask;
                }
            }
        }
    }

    #[test]
    fn simulated_block_bits_are_little_endian_at_0x28() {
        let mut block = [0u8; 64];
        block[SIM_BLOCK_OFFSET] = 0b11;
        block[SIM_BLOCK_OFFSET + 7] = 0x80;
        let f = RollbackFuses(imx_hab::hab::Fuses::from_simulated_block(&block).rollback);
        assert_eq!(f.0, 0x8000_0000_0000_0003);
        assert_eq!(f.minimum(), 3);
        assert_eq!(OCOTP_NVMEM_OFFSET, 0xE0);
    }

    #[test]
    fn target_is_the_lower_epoch_capped_at_the_fuses() {
        assert_eq!(advance_target(3, 2), 2);
        assert_eq!(advance_target(2, 3), 2);
        assert_eq!(advance_target(100, 90), 64);
        assert_eq!(epoch(None), 0);
        assert_eq!(epoch(Some(7)), 7);
    }
}
