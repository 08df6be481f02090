//! Layout (b), A/B across `boot0`/`boot1`: one flash.bin at 0x8400 in each boot partition,
//! BOOT_PARTITION_ENABLE names the active one.
//!
//! It is judged by the one judgement unchanged (issue 14 contract): the AN12900 rule over a
//! *virtual device* = active partition ‖ inactive partition, whose SIT sector reads as the
//! implied table `firstSectorNumber = N / 512`, so copy 1 (the primary) is the active
//! partition's copy and copy 2 (the secondary) the other's. [`ab_state`] reads it through
//! boot-core's view (`boot_core::emmc::AcrossPartitions`); [`AbDevice`] carries a plan out on
//! the two partitions and EXT_CSD.

use std::io;
use std::path::PathBuf;

use std::cell::RefCell;

use boards::{Board, EmmcLayout, SECTOR_SIZE};
use boot_core::cell::{SitReport, SitStatus};
use boot_core::emmc::{self, BootPartitionRead, EmmcStart};
use boot_core::examine::Rules;
use boot_core::platform::{BlockRead, MediaError};
use imx_hab::hab::Fuses;

use super::{BootPartition, ExtCsdAccess, PartitionConfig, switch_boot_partition};
use crate::blockdev::{BlockDevice, checked_range};
use crate::exec::{ExecOptions, Outcome, Progress, RunError, execute};
use crate::media::MediaState;
use crate::plan::{NewImage, Plan, Refusal, Running};
use crate::sysblock::ForceRoGuard;

/// Why a device is not a layout (b) medium.
#[derive(Debug)]
pub enum AbError {
    /// BOOT_PARTITION_ENABLE names neither boot partition.
    NotEnabled(PartitionConfig),
    /// The two partitions differ in size, or the size is not whole sectors.
    Sizes {
        /// boot0's size.
        boot0: u64,
        /// boot1's size.
        boot1: u64,
    },
    /// A read failed.
    Io(io::Error),
}

impl std::fmt::Display for AbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AbError::NotEnabled(pc) => write!(
                f,
                "EXT_CSD[179] is {pc}: no boot partition is enabled, so neither is the active \
                 copy of the A/B layout; enable the one holding a good copy first (mmc-utils \
                 `mmc bootpart enable 1 1 /dev/mmcblkN`)"
            ),
            AbError::Sizes { boot0, boot1 } => write!(
                f,
                "boot0 is {boot0:#x} bytes and boot1 {boot1:#x}: the A/B layout needs two equal \
                 boot partitions of whole sectors"
            ),
            AbError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for AbError {}

impl From<io::Error> for AbError {
    fn from(e: io::Error) -> Self {
        AbError::Io(e)
    }
}

/// A layout (b) medium as the one judgement sees it.
#[derive(Debug, Clone)]
pub struct AbState {
    /// The partition BOOT_PARTITION_ENABLE names (copy 1).
    pub active: BootPartition,
    /// EXT_CSD[179] as read.
    pub config: PartitionConfig,
    /// Bytes of one boot partition (N).
    pub part_size: u64,
    /// The media state of the virtual device active ‖ inactive.
    pub media: MediaState,
    /// Each partition's own SIT at sector 0x41, judged as layout (a) would
    /// (`boot_core::emmc::own_sit`), indexed by `BootPartition::index`. Under layout (b) a
    /// `Valid` one is stale: `status` warns, a plan clears it before it could matter.
    pub own_sit: [SitReport; 2],
    /// The SPL the ROM starts from a cold reset when it never crosses partitions (the worse
    /// reading; `boot_core::emmc::predict_start`); `None`: serial download.
    pub rom_start: Option<EmmcStart>,
}

impl AbState {
    /// Whether the ROM would start the secondary of the enabled partition's own (stale) SIT:
    /// a start the view cannot pair (`EmmcStart::stale_sit`), which the planner refuses.
    pub fn stale_start(&self) -> bool {
        self.rom_start
            .is_some_and(|s| s.stale_sit(EmmcLayout::AcrossPartitions, self.active))
    }

    /// The partitions holding a valid SIT of their own, with its firstSectorNumber.
    pub fn stale_sits(&self) -> Vec<(BootPartition, u32)> {
        BootPartition::BOTH
            .into_iter()
            .filter(|p| self.own_sit[p.index()].status == SitStatus::Valid)
            .map(|p| (p, self.own_sit[p.index()].first_sector))
            .collect()
    }
}

/// The [`MediaState`] to plan over for a layout (b) device, from the two partitions and
/// EXT_CSD[179]: the one judgement over boot-core's virtual device
/// (`boot_core::emmc::AcrossPartitions`: active ‖ inactive with the implied SIT), with the board
/// `boot_core::emmc::board_for` gives layout (b).
pub fn ab_state(
    boot0: &dyn BlockDevice,
    boot1: &dyn BlockDevice,
    config: PartitionConfig,
    board: &Board,
    fuses: &Fuses,
) -> Result<AbState, AbError> {
    let active = config
        .enabled_partition()
        .ok_or(AbError::NotEnabled(config))?;
    let (b0, b1) = (boot0.size(), boot1.size());
    let n = b0;
    if b0 != b1 || n == 0 || !n.is_multiple_of(SECTOR_SIZE) || n / SECTOR_SIZE > u64::from(u32::MAX)
    {
        return Err(AbError::Sizes {
            boot0: b0,
            boot1: b1,
        });
    }
    let original = board;
    let board = emmc::board_for(board, EmmcLayout::AcrossPartitions, n).ok_or(AbError::Sizes {
        boot0: b0,
        boot1: b1,
    })?;
    let mut pair = Pair([boot0, boot1]);
    let own_sit = BootPartition::BOTH.map(|p| emmc::own_sit(&mut pair, original, p));
    let rules = Rules::of(fuses);
    let rom_start = crate::media::with_shim(&mut pair, original, fuses, |hw, mem| {
        emmc::predict_start(hw, original, rules, active, false, mem.window)
    });
    let view = ViewDevice {
        view: RefCell::new(emmc::AcrossPartitions {
            parts: &mut pair,
            active,
        }),
        block_size: boot0.logical_block_size(),
    };
    let media = MediaState::read(&view, &board, fuses)?;
    Ok(AbState {
        active,
        config,
        part_size: n,
        media,
        own_sit,
        rom_start,
    })
}

/// `/dev/mmcblkNboot0` and `boot1` as boot-core reads boot partitions.
struct Pair<'a>([&'a dyn BlockDevice; 2]);

impl BootPartitionRead for Pair<'_> {
    fn partition_blocks(&self) -> u64 {
        self.0[0].size() / SECTOR_SIZE
    }

    fn read_partition(
        &mut self,
        partition: emmc::BootPartition,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), MediaError> {
        let dev = self.0[partition.index()];
        lba.checked_mul(SECTOR_SIZE)
            .ok_or(MediaError::OutOfRange {
                lba,
                len: buf.len(),
            })
            .and_then(|at| {
                dev.read_at(at, buf).map_err(|_| MediaError::OutOfRange {
                    lba,
                    len: buf.len(),
                })
            })
    }
}

/// A boot-core virtual device read as a [`BlockDevice`] (read-only; accesses widened to
/// whole sectors).
struct ViewDevice<V> {
    view: RefCell<V>,
    block_size: u32,
}

impl<V: BlockRead> BlockDevice for ViewDevice<V> {
    fn size(&self) -> u64 {
        self.view.borrow().block_count() * SECTOR_SIZE
    }

    fn logical_block_size(&self) -> u32 {
        self.block_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        checked_range(offset, buf.len(), self.size())?;
        if buf.is_empty() {
            return Ok(());
        }
        let first = offset / SECTOR_SIZE;
        let end = (offset + buf.len() as u64).div_ceil(SECTOR_SIZE);
        let mut sectors = vec![0u8; ((end - first) * SECTOR_SIZE) as usize];
        self.view
            .borrow_mut()
            .read_blocks(first, &mut sectors)
            .map_err(|e| io::Error::other(format!("reading the A/B view: {e:?}")))?;
        let from = (offset - first * SECTOR_SIZE) as usize;
        buf.copy_from_slice(&sectors[from..from + buf.len()]);
        Ok(())
    }

    fn write_at(&mut self, _: u64, _: &[u8]) -> io::Result<()> {
        Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            "the A/B view is read-only",
        ))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The two boot partitions and EXT_CSD, addressed as the virtual device of the plan: offsets
/// below N go to the partition that was active when the plan was made, the others to the other
/// one, whatever switches the plan makes on the way. The implied SIT is never written: sector
/// 0x41 of either partition is only ever cleared (zeros), so no partition carries a table.
///
/// `force_ro` of a partition (when its path is given) is lowered at its first write and put back
/// before any switch, by [`AbDevice::finish`], and on drop: it is never left lowered across a
/// switch or after the run.
pub struct AbDevice<D, E> {
    parts: [D; 2],
    ext_csd: E,
    /// The partition that was active when the plan was made.
    base: BootPartition,
    sit_offset: u64,
    force_ro: [Option<PathBuf>; 2],
    guards: [Option<ForceRoGuard>; 2],
}

impl<D: BlockDevice, E: ExtCsdAccess> AbDevice<D, E> {
    /// The device over `boot0`, `boot1` (equal sizes, checked by [`ab_state`]) for a plan made
    /// with `base` active.
    pub fn new(boot0: D, boot1: D, ext_csd: E, base: BootPartition, board: &Board) -> Self {
        AbDevice {
            parts: [boot0, boot1],
            ext_csd,
            base,
            sit_offset: board.media.sit_offset(),
            force_ro: [None, None],
            guards: [None, None],
        }
    }

    /// Lowers `force_ro` of each partition at these paths for its writes.
    pub fn with_force_ro(mut self, force_ro: [Option<PathBuf>; 2]) -> Self {
        self.force_ro = force_ro;
        self
    }

    /// The partitions, as `[boot0, boot1]`.
    pub fn parts(&self) -> &[D; 2] {
        &self.parts
    }

    /// EXT_CSD.
    pub fn ext_csd(&mut self) -> &mut E {
        &mut self.ext_csd
    }

    /// Reads EXT_CSD[179] and the two partitions ([`ab_state`]), and addresses later accesses
    /// as the virtual device of that state.
    pub fn read_state(&mut self, board: &Board, fuses: &Fuses) -> Result<AbState, AbError> {
        let config = super::read_partition_config(&mut self.ext_csd)?;
        let st = ab_state(&self.parts[0], &self.parts[1], config, board, fuses)?;
        self.base = st.active;
        Ok(st)
    }

    /// Puts every lowered `force_ro` back, reporting the first failure.
    pub fn finish(&mut self) -> io::Result<()> {
        let mut first = Ok(());
        for g in &mut self.guards {
            if let Some(g) = g.take()
                && let Err(e) = g.restore()
                && first.is_ok()
            {
                first = Err(e);
            }
        }
        first
    }

    /// `(partition, local offset)` of a virtual access that must lie within one partition.
    fn map(&self, offset: u64, len: usize) -> io::Result<(BootPartition, u64)> {
        let n = self.parts[0].size();
        checked_range(offset, len, 2 * n)?;
        let (part, local) = if offset < n {
            (self.base, offset)
        } else {
            (self.base.other(), offset - n)
        };
        if local + len as u64 > n {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("access {offset:#x}+{len:#x} spans both boot partitions"),
            ));
        }
        Ok((part, local))
    }
}

impl<D: BlockDevice, E: ExtCsdAccess> BlockDevice for AbDevice<D, E> {
    fn size(&self) -> u64 {
        self.parts[0].size() * 2
    }

    fn logical_block_size(&self) -> u32 {
        self.parts[0].logical_block_size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (p, local) = self.map(offset, buf.len())?;
        self.parts[p.index()].read_at(local, buf)
    }

    fn read_back_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let (p, local) = self.map(offset, buf.len())?;
        self.parts[p.index()].read_back_at(local, buf)
    }

    fn write_at(&mut self, offset: u64, data: &[u8]) -> io::Result<()> {
        let (p, local) = self.map(offset, data.len())?;
        let clears = local == self.sit_offset
            && data.len() as u64 == SECTOR_SIZE
            && data.iter().all(|&b| b == 0);
        if local < self.sit_offset + SECTOR_SIZE
            && self.sit_offset < local + data.len() as u64
            && !clears
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the SIT of the A/B layout is implied: sector 0x41 of a boot partition is only \
                 ever cleared",
            ));
        }
        let i = p.index();
        if self.guards[i].is_none()
            && let Some(path) = &self.force_ro[i]
        {
            self.guards[i] = Some(ForceRoGuard::lower(path).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot lower {} for the write: {e}", path.display()),
                )
            })?);
        }
        self.parts[i].write_at(local, data)
    }

    fn flush(&mut self) -> io::Result<()> {
        for p in &mut self.parts {
            p.flush()?;
        }
        Ok(())
    }

    fn switch_boot_partition(&mut self, to: BootPartition) -> io::Result<()> {
        // Writes are over (flushed and read back by the plan): write protection is back first.
        self.finish()?;
        let done = switch_boot_partition(&mut self.ext_csd, to).map_err(io::Error::other)?;
        // The kernel rewrites PARTITION_CONFIG (its cached copy, access bits changed) whenever
        // it switches the card to another partition; a kernel whose cache missed our write puts
        // the old BOOT_PARTITION_ENABLE back then. Make it switch (a cache-bypassing read of
        // each boot partition) and read the register once more.
        let mut sector = vec![0u8; self.logical_block_size().max(512) as usize];
        for p in &self.parts {
            p.read_back_at(0, &mut sector)?;
        }
        let again = super::read_partition_config(&mut self.ext_csd)?;
        if again.enabled_partition() != Some(to) {
            return Err(io::Error::other(super::SwitchError::NotTaken {
                wrote: done.after,
                read: again,
            }));
        }
        Ok(())
    }
}

impl<D, E> Drop for AbDevice<D, E> {
    fn drop(&mut self) {
        // ForceRoGuard's own drop restores and reports.
        for g in &mut self.guards {
            drop(g.take());
        }
    }
}

fn refused_medium(e: AbError) -> RunError {
    match e {
        AbError::Io(e) => RunError::Read(e),
        other => RunError::Refused(Refusal::NotAbMedium(other.to_string())),
    }
}

/// Checks `image`, reads the layout (b) medium, plans the update for `running`
/// ([`super::ab_plan::plan_ab_update`]) and executes it, switch included.
#[allow(clippy::too_many_arguments)]
pub fn update<D: BlockDevice, E: ExtCsdAccess>(
    dev: &mut AbDevice<D, E>,
    board: &Board,
    fuses: &Fuses,
    image: Vec<u8>,
    running: impl Into<Running>,
    options: &ExecOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, RunError> {
    let image = NewImage::check(image, board, fuses).map_err(RunError::Refused)?;
    let state = dev.read_state(board, fuses).map_err(refused_medium)?;
    let plan = super::ab_plan::plan_ab_update(&state, &image, running, board)
        .map_err(RunError::Refused)?;
    run(dev, plan, options, progress)
}

/// Reads the layout (b) medium, plans the sync for `running`
/// ([`super::ab_plan::plan_ab_sync`]) and executes it.
pub fn sync<D: BlockDevice, E: ExtCsdAccess>(
    dev: &mut AbDevice<D, E>,
    board: &Board,
    fuses: &Fuses,
    running: impl Into<Running>,
    options: &ExecOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, RunError> {
    let state = dev.read_state(board, fuses).map_err(refused_medium)?;
    let plan = super::ab_plan::plan_ab_sync(&state, running, board).map_err(RunError::Refused)?;
    run(dev, plan, options, progress)
}

fn run<D: BlockDevice, E: ExtCsdAccess>(
    dev: &mut AbDevice<D, E>,
    plan: Plan,
    options: &ExecOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, RunError> {
    let result = execute(dev, &plan, options, progress);
    // force_ro back whatever happened; a failure to restore is reported after a failed step.
    let restored = dev.finish();
    let summary = result.map_err(RunError::Exec)?;
    restored.map_err(RunError::Read)?;
    Ok(Outcome { plan, summary })
}
