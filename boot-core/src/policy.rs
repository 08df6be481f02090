//! The boot decision (design.md §5 table): which copy to boot, or why none.
//!
//! Pure: the caller supplies the primary's verdict and, lazily, the SIT's and the secondary's,
//! so that the SIT and the secondary are read only when the primary is not authentic.

/// A boot copy, numbered as in the cell's word 0 (design.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum Slot {
    /// The primary copy (sector 0x42).
    Primary = 1,
    /// The secondary copy (through the SIT).
    Secondary = 2,
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
}

/// The outcome of the decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The copy to boot, or `None` when nothing is bootable.
    pub slot: Option<Slot>,
    /// Why.
    pub reason: Reason,
}

/// Applies the decision table. `sit` and `secondary` are evaluated only when needed, in that
/// order.
pub fn decide(
    primary: CopyVerdict,
    sit: impl FnOnce() -> SitVerdict,
    secondary: impl FnOnce() -> CopyVerdict,
) -> Decision {
    if primary == CopyVerdict::Authentic {
        return Decision {
            slot: Some(Slot::Primary),
            reason: Reason::PrimaryOk,
        };
    }
    if sit() == SitVerdict::Invalid {
        return Decision {
            slot: None,
            reason: Reason::NoFallbackTable,
        };
    }
    match secondary() {
        CopyVerdict::Authentic => Decision {
            slot: Some(Slot::Secondary),
            reason: Reason::PrimaryFailed,
        },
        CopyVerdict::NotAuthentic => Decision {
            slot: None,
            reason: Reason::BothFailed,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CopyVerdict::*;

    #[test]
    fn authentic_primary_boots_slot_1_without_reading_the_sit_or_secondary() {
        let d = decide(
            Authentic,
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
        let d = decide(NotAuthentic, || SitVerdict::Valid, || Authentic);
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
            NotAuthentic,
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
        let d = decide(NotAuthentic, || SitVerdict::Valid, || NotAuthentic);
        assert_eq!(
            d,
            Decision {
                slot: None,
                reason: Reason::BothFailed
            }
        );
    }
}
