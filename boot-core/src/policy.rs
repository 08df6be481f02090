//! The boot decision (design.md §5 table): which copy to boot, or why none.
//!
//! Pure: the caller supplies the copy the ROM started and, lazily, the verdicts in the order the
//! pairing rule (design.md §5.1) reads them: the started copy first (the SIT before the
//! secondary), the other copy only when the started one is not authentic.

/// A boot copy, numbered as in the cell's word 0 (design.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Slot {
    /// The primary copy (sector 0x42).
    Primary = 1,
    /// The secondary copy (through the SIT).
    Secondary = 2,
}

crate::names! {
    /// `primary` or `secondary`, as the shim's log and the tools say.
    Slot {
        Primary => "primary",
        Secondary => "secondary",
    }
}

/// Verdict on one copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CopyVerdict {
    /// Read completely and authenticated.
    Authentic,
    /// Unreadable, malformed or not authentic.
    NotAuthentic,
}

/// Verdict on the Secondary Image Table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SitVerdict {
    /// Tag right, secondary inside the device, no overlap with the primary.
    Valid,
    /// Tag wrong, out of bounds, overlapping, or unreadable.
    Invalid,
}

/// Why the shim decided as it did; stable values, recorded in the cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Reason {
    /// The primary is authentic.
    PrimaryOk = 1,
    /// The primary failed; the secondary is authentic.
    PrimaryFailed = 2,
    /// The primary failed and there is no valid SIT to fall back through.
    NoFallbackTable = 3,
    /// Both copies failed.
    BothFailed = 4,
    /// The ROM started the secondary SPL, and the secondary copy is authentic: its FIT boots
    /// (pairing, design.md §5.1; record version 4).
    RomSecondary = 5,
    /// The ROM started the secondary SPL, but the secondary copy (or the SIT reaching it)
    /// failed; the primary copy is authentic and its FIT boots (record version 4).
    RomSecondaryFailed = 6,
}

/// The outcome of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The copy to boot, or `None` when nothing is bootable.
    pub slot: Option<Slot>,
    /// Why.
    pub reason: Reason,
}

/// Applies the decision table to a boot the ROM started from `started`. `primary`, `sit` and
/// `secondary` are evaluated only when needed, in the pairing rule's order: started from the
/// primary, the primary, then the SIT and the secondary; started from the secondary, the SIT,
/// the secondary (through a valid SIT only), then the primary.
pub fn decide(
    started: Slot,
    primary: impl FnOnce() -> CopyVerdict,
    sit: impl FnOnce() -> SitVerdict,
    secondary: impl FnOnce() -> CopyVerdict,
) -> Decision {
    let decision = |slot, reason| Decision { slot, reason };
    match started {
        Slot::Primary => {
            if primary() == CopyVerdict::Authentic {
                return decision(Some(Slot::Primary), Reason::PrimaryOk);
            }
            if sit() == SitVerdict::Invalid {
                return decision(None, Reason::NoFallbackTable);
            }
            match secondary() {
                CopyVerdict::Authentic => decision(Some(Slot::Secondary), Reason::PrimaryFailed),
                CopyVerdict::NotAuthentic => decision(None, Reason::BothFailed),
            }
        }
        Slot::Secondary => {
            let sit_valid = sit() == SitVerdict::Valid;
            if sit_valid && secondary() == CopyVerdict::Authentic {
                return decision(Some(Slot::Secondary), Reason::RomSecondary);
            }
            match (primary(), sit_valid) {
                (CopyVerdict::Authentic, _) => {
                    decision(Some(Slot::Primary), Reason::RomSecondaryFailed)
                }
                (CopyVerdict::NotAuthentic, true) => decision(None, Reason::BothFailed),
                (CopyVerdict::NotAuthentic, false) => decision(None, Reason::NoFallbackTable),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CopyVerdict::*;

    #[test]
    fn authentic_primary_boots_slot_1_without_reading_the_sit_or_secondary() {
        let d = decide(
            Slot::Primary,
            || Authentic,
            || panic!("SIT read"),
            || panic!("secondary read"),
        );
        assert_eq!(
            d,
            Decision {
                slot: Some(Slot::Primary),
                reason: Reason::PrimaryOk
            }
        );
    }

    #[test]
    fn failed_primary_falls_back_to_an_authentic_secondary() {
        let d = decide(
            Slot::Primary,
            || NotAuthentic,
            || SitVerdict::Valid,
            || Authentic,
        );
        assert_eq!(
            d,
            Decision {
                slot: Some(Slot::Secondary),
                reason: Reason::PrimaryFailed
            }
        );
        assert_eq!(Slot::Secondary as u32, 2);
    }

    #[test]
    fn invalid_sit_means_nothing_bootable_and_the_secondary_is_not_read() {
        let d = decide(
            Slot::Primary,
            || NotAuthentic,
            || SitVerdict::Invalid,
            || panic!("secondary read"),
        );
        assert_eq!(
            d,
            Decision {
                slot: None,
                reason: Reason::NoFallbackTable
            }
        );
    }

    #[test]
    fn both_failed_means_nothing_bootable() {
        let d = decide(
            Slot::Primary,
            || NotAuthentic,
            || SitVerdict::Valid,
            || NotAuthentic,
        );
        assert_eq!(
            d,
            Decision {
                slot: None,
                reason: Reason::BothFailed
            }
        );
    }

    #[test]
    fn started_from_the_secondary_its_copy_boots_without_reading_the_primary() {
        let d = decide(
            Slot::Secondary,
            || panic!("primary read"),
            || SitVerdict::Valid,
            || Authentic,
        );
        assert_eq!(d.slot, Some(Slot::Secondary));
        assert_eq!(d.reason, Reason::RomSecondary);
    }

    #[test]
    fn started_from_the_secondary_a_failed_copy_falls_back_to_the_primary() {
        let d = decide(
            Slot::Secondary,
            || Authentic,
            || SitVerdict::Valid,
            || NotAuthentic,
        );
        assert_eq!(d.slot, Some(Slot::Primary));
        assert_eq!(d.reason, Reason::RomSecondaryFailed);
        // A SIT that no longer reaches the secondary: the secondary is not read.
        let d = decide(
            Slot::Secondary,
            || Authentic,
            || SitVerdict::Invalid,
            || panic!("secondary read"),
        );
        assert_eq!(d.reason, Reason::RomSecondaryFailed);
        let d = decide(
            Slot::Secondary,
            || NotAuthentic,
            || SitVerdict::Invalid,
            || panic!("secondary read"),
        );
        assert_eq!((d.slot, d.reason), (None, Reason::NoFallbackTable));
        let d = decide(
            Slot::Secondary,
            || NotAuthentic,
            || SitVerdict::Valid,
            || NotAuthentic,
        );
        assert_eq!((d.slot, d.reason), (None, Reason::BothFailed));
    }
}
