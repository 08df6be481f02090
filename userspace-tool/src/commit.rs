//! `ubootctl commit`: advance the anti-rollback minimum (design.md §5.3) once the new image has
//! booted and both copies hold it, by burning fuse bits (`boot_core::rollback`).
//!
//! The rule, pure ([`plan_commit`]): the boot record must come from a shim that enforced the
//! fuses it reads (record version 3, a minimum no higher than the fuses given), and its
//! booted-image identity must be the image in the primary *and* in the secondary (behind a
//! valid SIT), both authentic and signed; the target is the lower of the two epochs
//! ([`boot_core::rollback::advance_target`]), so that no copy stops booting whatever subset of
//! the bits lands. The stores ([`FuseStore`]) burn the bits and read them back.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use boot_core::rollback::{self, RollbackFuses};

use crate::media::MediaState;
use crate::plan::{BootedImage, booted_image};

/// What a commit will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPlan {
    /// The fuses now.
    pub current: RollbackFuses,
    /// The primary's epoch.
    pub primary_epoch: u32,
    /// The secondary's epoch.
    pub secondary_epoch: u32,
    /// The minimum after the commit.
    pub target: u32,
    /// The bits to burn (empty: nothing to do).
    pub burn: u64,
}

impl CommitPlan {
    /// Whether nothing needs burning.
    pub fn is_noop(&self) -> bool {
        self.burn == 0
    }
}

/// What the boot record says about this boot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BootFacts {
    /// The booted image's identity.
    pub booted: Option<[u8; 32]>,
    /// The minimum the shim enforced (record version 3); `None` for an older record.
    pub enforced_minimum: Option<u8>,
}

/// Why a commit is refused (exit 1, nothing burned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitRefusal {
    /// The cell names no booted image (no valid version-2+ record).
    BootedUnknown(String),
    /// The record does not say the shim enforced a minimum (version 2 or older): the running
    /// shim may ignore the fuses.
    ShimIgnoresFuses,
    /// The shim enforced a higher minimum than the fuses given say: not the fuses it read.
    OtherFuses {
        /// What the shim enforced.
        enforced: u8,
        /// What the fuses given say.
        read: u32,
    },
    /// A copy is accepted only because the part is open: its epoch is not authenticated.
    OpenPart(&'static str),
    /// The booted image is not in the primary: the primary holds an image that has not booted
    /// yet (reboot first), or the device runs its fallback.
    NotThePrimary(BootedImage),
    /// The secondary does not hold the booted image (run `ubootctl sync` first).
    SecondaryDiffers,
    /// A copy is not authentic or the SIT does not reach the secondary.
    NotBootable(String),
    /// The target needs more bits than the fuses have.
    Fuses(String),
}

impl fmt::Display for CommitRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitRefusal::BootedUnknown(why) => write!(
                f,
                "the boot record names no booted image ({why}): the minimum advances only once \
                 the image that booted is known to be the new one"
            ),
            CommitRefusal::NotThePrimary(BootedImage::SecondaryOnly) => f.write_str(
                "the running image is the secondary's, not the primary's: the image in the \
                 primary has not booted (reboot into it first), or the device runs its fallback",
            ),
            CommitRefusal::NotThePrimary(BootedImage::Lost) => f.write_str(
                "the running image is in neither copy any more (overwritten since the boot): \
                 reboot into the installed image first",
            ),
            CommitRefusal::NotThePrimary(other) => {
                write!(f, "the running image is not the primary's ({other:?})")
            }
            CommitRefusal::SecondaryDiffers => f.write_str(
                "the secondary does not hold the running image: run `ubootctl sync` first, so \
                 that both copies hold it before the minimum advances",
            ),
            CommitRefusal::ShimIgnoresFuses => f.write_str(
                "the boot record does not say the shim enforced a rollback minimum (a record \
                 before version 3): the running shim may ignore the fuses, so burning them now \
                 would protect nothing; boot a shim that enforces them first",
            ),
            CommitRefusal::OtherFuses { enforced, read } => write!(
                f,
                "the shim enforced minimum {enforced} at this boot, but the fuses given read \
                 minimum {read}: they are not the fuses the shim read (check --fuses / --ocotp)"
            ),
            CommitRefusal::OpenPart(which) => write!(
                f,
                "the {which} is accepted only because the part is open (unsigned): its epoch is \
                 not authenticated, and an open part enforces nothing; close the part first"
            ),
            CommitRefusal::NotBootable(why) => write!(f, "{why}"),
            CommitRefusal::Fuses(why) => write!(f, "{why}"),
        }
    }
}

/// The commit rule over the medium's state and what the boot record says.
pub fn plan_commit(
    state: &MediaState,
    boot: &BootFacts,
    current: RollbackFuses,
) -> Result<CommitPlan, CommitRefusal> {
    let authentic = |name: &'static str, c: &crate::media::CopyState| match &c.judgement {
        Ok(info) if info.warnings.any() => Err(CommitRefusal::OpenPart(name)),
        Ok(info) => Ok(info.epoch),
        Err(f) => Err(CommitRefusal::NotBootable(format!(
            "the {name} is not bootable ({f}): nothing advances until both copies are"
        ))),
    };
    let primary_epoch = authentic("primary", &state.primary)?;
    let secondary_epoch = authentic("secondary", &state.secondary)?;
    if !state.fallback_ok() {
        return Err(CommitRefusal::NotBootable(
            "the SIT does not lead the ROM to the secondary: run `ubootctl sync` first".into(),
        ));
    }
    match booted_image(state, boot.booted.as_ref()) {
        BootedImage::Unknown => {
            return Err(CommitRefusal::BootedUnknown(
                "no valid boot record of version 2 or later".into(),
            ));
        }
        BootedImage::Primary {
            also_secondary: true,
        } => {}
        BootedImage::Primary {
            also_secondary: false,
        } => return Err(CommitRefusal::SecondaryDiffers),
        other => return Err(CommitRefusal::NotThePrimary(other)),
    }
    match boot.enforced_minimum {
        None => return Err(CommitRefusal::ShimIgnoresFuses),
        Some(e) if u32::from(e) > current.minimum() => {
            return Err(CommitRefusal::OtherFuses {
                enforced: e,
                read: current.minimum(),
            });
        }
        Some(_) => {}
    }
    let target = rollback::advance_target(primary_epoch, secondary_epoch);
    let burn = current
        .burn_for(target)
        .map_err(|e| CommitRefusal::Fuses(e.to_string()))?;
    Ok(CommitPlan {
        current,
        primary_epoch,
        secondary_epoch,
        target: target.max(current.minimum()),
        burn,
    })
}

/// Where the rollback fuses are, for reading and burning.
pub trait FuseStore {
    /// Where (for messages).
    fn describe(&self) -> String;
    /// Why the fuses cannot be programmed (a lock), if they cannot; checked before planning
    /// output and before the burn.
    fn locked(&mut self) -> io::Result<Option<String>> {
        Ok(None)
    }
    /// The fuses as they are now.
    fn read(&mut self) -> io::Result<RollbackFuses>;
    /// Burns `mask` (sets those bits; a fuse never goes back to 0). The caller reads back.
    fn burn(&mut self, mask: u64) -> io::Result<()>;
}

/// Linux's OCOTP nvmem device (`imx-ocotp`): GP1 at [`rollback::OCOTP_NVMEM_OFFSET`]; a write of
/// a word programs its 1-bits, and the driver reloads the shadow registers after it.
pub struct OcotpStore {
    path: PathBuf,
    file: File,
}

impl OcotpStore {
    /// Opens the nvmem device, for writing too when `write`.
    pub fn open(path: &Path, write: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(write).open(path)?;
        Ok(OcotpStore {
            path: path.to_owned(),
            file,
        })
    }

    fn word(&self, at: usize) -> io::Result<u32> {
        let mut b = [0u8; 4];
        self.file.read_exact_at(&mut b, at as u64)?;
        Ok(u32::from_le_bytes(b))
    }
}

impl FuseStore for OcotpStore {
    fn describe(&self) -> String {
        format!(
            "OCOTP GP1 (bank 14 words 0-1) through {}",
            self.path.display()
        )
    }

    fn locked(&mut self) -> io::Result<Option<String>> {
        let lock = self.word(rollback::OCOTP_LOCK_NVMEM_OFFSET)?;
        Ok((lock & rollback::GP1_WRITE_LOCK != 0).then(|| {
            format!(
                "GP1 is write-locked (LOCK word {lock:#010x}, GP1_LOCK bits 21:20): its fuses \
                 cannot be programmed on this part"
            )
        }))
    }

    fn read(&mut self) -> io::Result<RollbackFuses> {
        let at = rollback::OCOTP_NVMEM_OFFSET;
        Ok(RollbackFuses::from_words(
            self.word(at)?,
            self.word(at + 4)?,
        ))
    }

    fn burn(&mut self, mask: u64) -> io::Result<()> {
        if let Some(why) = self.locked()? {
            return Err(io::Error::new(io::ErrorKind::PermissionDenied, why));
        }
        let words = RollbackFuses(mask).words();
        for (i, w) in words.into_iter().enumerate() {
            if w != 0 {
                // Only the new bits: programming a word sets its 1-bits and leaves the rest.
                let at = rollback::OCOTP_NVMEM_OFFSET + 4 * i;
                self.file.write_all_at(&w.to_le_bytes(), at as u64)?;
            }
        }
        Ok(())
    }
}

/// The simulated fuse block (qemu-imx8mp contract) in a 64-byte file. Burning ORs the bits in,
/// as fuses do. (The block in physical memory, `/dev/mem`, is the binary's store: it needs a
/// mapping.)
pub struct SimulatedStore {
    path: PathBuf,
    file: File,
}

impl SimulatedStore {
    const AT: u64 = rollback::SIM_BLOCK_OFFSET as u64;

    /// Opens the 64-byte block file `path`, for writing too when `write`.
    pub fn open(path: &Path, write: bool) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(write).open(path)?;
        let meta = file.metadata()?;
        if !(meta.is_file() && meta.len() == 64) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is not a 64-byte fuse block", path.display()),
            ));
        }
        Ok(SimulatedStore {
            path: path.to_owned(),
            file,
        })
    }
}

impl FuseStore for SimulatedStore {
    fn describe(&self) -> String {
        format!(
            "the simulated fuse block's rollback bits (bytes 0x28..0x30) in {}",
            self.path.display()
        )
    }

    fn read(&mut self) -> io::Result<RollbackFuses> {
        let mut b = [0u8; 8];
        self.file.read_exact_at(&mut b, Self::AT)?;
        Ok(RollbackFuses(u64::from_le_bytes(b)))
    }

    fn burn(&mut self, mask: u64) -> io::Result<()> {
        let now = self.read()?;
        self.file
            .write_all_at(&now.burned(mask).0.to_le_bytes(), Self::AT)?;
        self.file.sync_all()
    }
}

/// Burns `plan.burn` into `store` and reads the fuses back: the result must hold every old bit
/// and every planned bit.
pub fn burn(store: &mut dyn FuseStore, plan: &CommitPlan) -> Result<RollbackFuses, String> {
    let before = store
        .read()
        .map_err(|e| format!("cannot read {}: {e}", store.describe()))?;
    if before != plan.current {
        return Err(format!(
            "{} changed since the plan ({:#018x}, now {:#018x}): nothing burned; run the \
             command again",
            store.describe(),
            plan.current.0,
            before.0
        ));
    }
    if let Err(e) = store.burn(plan.burn) {
        // Part of it may have landed: say what the fuses hold now.
        let left = match store.read() {
            Ok(f) => format!("the fuses read {:#018x} now, minimum {}", f.0, f.minimum()),
            Err(r) => format!("the fuses cannot be read back ({r})"),
        };
        return Err(format!(
            "burning {:#018x} into {}: {e}; {left}; every copy at epoch {} or more still \
             boots; run the command again",
            plan.burn,
            store.describe(),
            plan.target
        ));
    }
    let after = store
        .read()
        .map_err(|e| format!("cannot read back {}: {e}", store.describe()))?;
    let want = plan.current.burned(plan.burn);
    if after.0 & want.0 != want.0 {
        return Err(format!(
            "read back {:#018x} from {}, expected at least {:#018x}: the burn did not take \
             (the minimum is now {}: every copy at epoch {} or more still boots; run the \
             command again)",
            after.0,
            store.describe(),
            want.0,
            after.minimum(),
            after.minimum()
        ));
    }
    Ok(after)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An in-memory store that can fail, tear or lie.
    struct Mem {
        bits: u64,
        /// Only these bits of a burn land (a torn burn).
        lands: u64,
    }

    impl FuseStore for Mem {
        fn describe(&self) -> String {
            "memory".into()
        }
        fn read(&mut self) -> io::Result<RollbackFuses> {
            Ok(RollbackFuses(self.bits))
        }
        fn burn(&mut self, mask: u64) -> io::Result<()> {
            self.bits |= mask & self.lands;
            Ok(())
        }
    }

    fn plan(current: u64, target: u32) -> CommitPlan {
        let current = RollbackFuses(current);
        CommitPlan {
            current,
            primary_epoch: target,
            secondary_epoch: target,
            target,
            burn: current.burn_for(target).unwrap(),
        }
    }

    #[test]
    fn a_complete_burn_reads_back() {
        let mut m = Mem {
            bits: 0b1,
            lands: u64::MAX,
        };
        let after = burn(&mut m, &plan(0b1, 3)).unwrap();
        assert_eq!(after.minimum(), 3);
    }

    #[test]
    fn a_torn_burn_is_reported_with_the_minimum_it_left() {
        let mut m = Mem {
            bits: 0,
            lands: 0b01,
        };
        let e = burn(&mut m, &plan(0, 3)).unwrap_err();
        assert!(e.contains("the minimum is now 1"), "{e}");
    }

    #[test]
    fn fuses_changed_since_the_plan_burn_nothing() {
        let mut m = Mem {
            bits: 0b10,
            lands: u64::MAX,
        };
        let e = burn(&mut m, &plan(0, 2)).unwrap_err();
        assert!(e.contains("changed since the plan"), "{e}");
        assert_eq!(m.bits, 0b10);
    }
}
