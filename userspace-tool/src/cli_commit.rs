//! `ubootctl commit`: advance the anti-rollback minimum once the new image has booted and both
//! copies hold it (design.md §5.3; the rule is `ubootctl::commit`).

use boot_core::cell::SlotWord;
use boot_core::rollback::RollbackFuses;
use serde_json::json;
use ubootctl::commit::{self, BootFacts, CommitPlan, FuseStore, OcotpStore, SimulatedStore};
use ubootctl::media::MediaState;

use crate::cli_update::{self, Common};
use crate::exit::Failure;
use crate::fuses::{FuseValues, Store};
use crate::output::outln;

/// The simulated block in physical memory, written through a mapping of the memory device.
struct MemoryStore {
    path: std::path::PathBuf,
    addr: u64,
}

impl MemoryStore {
    fn at(&self) -> u64 {
        self.addr + boot_core::rollback::SIM_BLOCK_OFFSET as u64
    }
}

impl FuseStore for MemoryStore {
    fn describe(&self) -> String {
        format!(
            "the simulated fuse block's rollback bits at {:#x} in {}",
            self.at(),
            self.path.display()
        )
    }

    fn read(&mut self) -> std::io::Result<RollbackFuses> {
        let mut b = [0u8; 8];
        crate::cell_source::read_phys(&self.path, self.at(), &mut b, "the rollback fuses")
            .map_err(std::io::Error::other)?;
        Ok(RollbackFuses(u64::from_le_bytes(b)))
    }

    fn burn(&mut self, mask: u64) -> std::io::Result<()> {
        let now = self.read()?;
        crate::cell_source::write_phys(&self.path, self.at(), &now.burned(mask).0.to_le_bytes())
            .map_err(std::io::Error::other)
    }
}

/// The store of `store`, opened for writing only when `write`.
fn open_store(store: &Store, write: bool) -> Result<Box<dyn FuseStore>, Failure> {
    Ok(match store {
        Store::Ocotp(p) => {
            Box::new(OcotpStore::open(p, write).map_err(|e| Failure::io("open", p, e))?)
        }
        Store::BlockFile(p) => {
            Box::new(SimulatedStore::open(p, write).map_err(|e| Failure::io("open", p, e))?)
        }
        Store::Memory(p, addr) => Box::new(MemoryStore {
            path: p.clone(),
            addr: *addr,
        }),
    })
}

/// Bit numbers set in `mask` (0 = GP1 word 0 bit 0, 32 = word 1 bit 0).
fn bits(mask: u64) -> Vec<u32> {
    (0..64).filter(|b| mask & (1 << b) != 0).collect()
}

fn plan_json(p: &CommitPlan, store: &str) -> serde_json::Value {
    json!({
        "store": store,
        "primary_epoch": p.primary_epoch,
        "secondary_epoch": p.secondary_epoch,
        "minimum_before": p.current.minimum(),
        "minimum_after": p.target,
        "fuses_before": format!("{:#018x}", p.current.0),
        "burn_mask": format!("{:#018x}", p.burn),
        "burn_bits": bits(p.burn),
    })
}

/// What the boot cell says about this boot: the booted image and the minimum the shim enforced.
fn boot_facts(c: &Common<'_>) -> Result<BootFacts, Failure> {
    crate::cell_source::check(c.mem).map_err(Failure::Usage)?;
    let refused = |why: String| {
        Failure::Refused(format!(
            "refused, nothing burned: no boot record names the running image ({why}); the \
             minimum advances only once the image that booted is known"
        ))
    };
    let cell = crate::cell_source::read(c.mem, c.board.cell_addr).map_err(refused)?;
    match (&cell.slot, &cell.record) {
        (SlotWord::Booted(_), Ok(r)) => Ok(BootFacts {
            booted: r.booted,
            enforced_minimum: r.rollback_minimum,
        }),
        (_, Err(e)) => Err(refused(format!(
            "cell at {:#x} in {}: {e}",
            c.board.cell_addr,
            c.mem.display()
        ))),
        (slot, Ok(_)) => Err(refused(format!("the boot record says {slot:?}"))),
    }
}

/// `ubootctl commit --device DEV`: `yes` confirms the burn.
pub fn commit(c: &Common<'_>, fuses: &FuseValues, yes: bool) -> Result<(), Failure> {
    let store_at = fuses.store.as_ref().ok_or_else(|| {
        Failure::Usage(format!(
            "commit needs the rollback fuses, and {} has none: give --ocotp (the nvmem \
             device) or --fuses (a simulated block), not --srk-hash",
            fuses.source
        ))
    })?;
    // Shared lock, read-only: nothing on the medium is written, and no update can change the
    // copies between the check and the burn.
    let t = cli_update::open_to_read(c)?;
    let boot = boot_facts(c)?;
    let state = MediaState::read(&t.dev, &t.board, &c.fuses)
        .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", c.device.display())))?;
    let current = RollbackFuses(c.fuses.rollback);
    let plan = commit::plan_commit(&state, &boot, current)
        .map_err(|r| Failure::Refused(format!("refused, nothing burned: {r}")))?;
    // Planned and checked read-only; the store is opened for writing only to burn.
    let mut store = open_store(store_at, false)?;
    let where_ = store.describe();
    if plan.is_noop() {
        if c.json {
            outln!(
                "{}",
                json!({"event": "result", "burned": false, "plan": plan_json(&plan, &where_)})
            );
        } else {
            outln!(
                "nothing to burn: the rollback minimum is {} and both copies are at epoch {} \
                 (primary) and {} (secondary)",
                plan.current.minimum(),
                plan.primary_epoch,
                plan.secondary_epoch
            );
        }
        return Ok(());
    }
    if let Some(why) = store
        .locked()
        .map_err(|e| Failure::io("read the lock word of", std::path::Path::new(&where_), e))?
    {
        return Err(Failure::Refused(format!("refused, nothing burned: {why}")));
    }
    let irreversible = format!(
        "burning fuses is irreversible: the minimum becomes {} for the life of this part, and \
         no image with a lower epoch will ever boot on it again",
        plan.target
    );
    if c.dry_run {
        if c.json {
            outln!(
                "{}",
                json!({"event": "plan", "dry_run": true, "plan": plan_json(&plan, &where_)})
            );
        } else {
            outln!(
                "dry run; nothing is burned. The running image is in both copies (primary epoch \
                 {}, secondary epoch {}).",
                plan.primary_epoch,
                plan.secondary_epoch
            );
            outln!(
                "  would burn bits {:?} (mask {:#018x}) of {where_}",
                bits(plan.burn),
                plan.burn
            );
            outln!(
                "  rollback minimum {} -> {}; {irreversible}",
                plan.current.minimum(),
                plan.target
            );
        }
        return Ok(());
    }
    if !yes {
        return Err(Failure::Usage(format!(
            "commit would burn bits {:?} of {where_} (minimum {} -> {}); {irreversible}. Run \
             with --dry-run to review, and with --yes to burn",
            bits(plan.burn),
            plan.current.minimum(),
            plan.target
        )));
    }
    let mut store = open_store(store_at, true)?;
    let _ = std::io::Write::write_all(
        &mut std::io::stderr(),
        format!("ubootctl: warning: {irreversible}\n").as_bytes(),
    );
    let after = commit::burn(store.as_mut(), &plan).map_err(|e| Failure::Io {
        what: "burn the rollback fuses".into(),
        error: std::io::Error::other(e),
    })?;
    if c.json {
        outln!(
            "{}",
            json!({"event": "result", "burned": true, "fuses_after": format!("{:#018x}", after.0),
                   "minimum": after.minimum(), "plan": plan_json(&plan, &where_)})
        );
    } else {
        outln!(
            "burned bits {:?} of {where_}, read back {:#018x}: the rollback minimum is now {}",
            bits(plan.burn),
            after.0,
            after.minimum()
        );
    }
    drop(t);
    Ok(())
}
