//! The ROM's choice, the shim's flow and the prediction on eMMC boot partitions, each the
//! existing one ([`crate::rom::choose`], [`crate::boot::run`]) over the view of
//! [`super::OnePartition`] or [`super::AcrossPartitions`].

use boards::{Board, EmmcLayout, MediaLayout, SECTOR_SIZE, SlotRule};
use imx_hab::hab::Authenticator;

use super::{AcrossPartitions, BootPartition, BootPartitionRead, OnePartition, board_for};
use crate::boot::{self, Hardware, Memory, Outcome};
use crate::cell::{RomInfo, RomLog, SitReport, SitStatus};
use crate::examine::{Context, Rules};
use crate::platform::{BlockRead, Clock, WatchdogService};
use crate::policy::Slot;
use crate::rom::{self, RomStart};

/// The SPL the ROM starts on eMMC: from which boot partition, and as which copy its log says
/// (0x50 primary, 0x51 secondary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmmcStart {
    /// The partition the SPL was read from.
    pub partition: BootPartition,
    /// The copy the ROM logs.
    pub slot: Slot,
}

impl EmmcStart {
    /// Whether this start contradicts `layout` with `enabled` named by EXT_CSD\[179\]: under
    /// layout (b) the ROM started the secondary the enabled partition's own SIT names (a
    /// stale layout (a) table, e.g. a factory image), an SPL that is neither copy 1 nor
    /// copy 2. The shim then judges that partition as layout (a) ([`run`]); `ubootctl`
    /// refuses to call such a device healthy or to update it as layout (b) before the table
    /// is cleared ([`own_sit`]).
    pub fn stale_sit(&self, layout: EmmcLayout, enabled: BootPartition) -> bool {
        layout == EmmcLayout::AcrossPartitions
            && self.partition == enabled
            && self.slot == Slot::Secondary
    }
}

/// The enabled-partition SIT of `partition` judged as layout (a) would (the one
/// [`boot::judge_sit`] over the partition alone): `Valid` means the ROM, with
/// PERSIST_SECONDARY_BOOT set, starts the secondary it names in that partition, whatever the
/// layout. Under layout (b) sector 0x41 of each partition must hold no valid SIT; `ubootctl`
/// reports one and clears it in the partition it writes.
pub fn own_sit<P: BootPartitionRead>(
    parts: &mut P,
    board: &Board,
    partition: BootPartition,
) -> SitReport {
    let bytes = parts.partition_blocks().saturating_mul(SECTOR_SIZE);
    let judged = judged_board(board, EmmcLayout::InOnePartition, bytes);
    let mut dev = OnePartition { parts, partition };
    let mut sector = [0u8; SECTOR_SIZE as usize];
    if dev
        .read_blocks(judged.media.sit_sector, &mut sector)
        .is_err()
    {
        return SitReport {
            status: SitStatus::Unreadable,
            first_sector: 0,
        };
    }
    boot::judge_sit(&sector, &judged.media, bytes).0
}

/// [`rom::choose`] on eMMC: the start, with `copy_offset` inside [`EmmcRomStart::partition`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmmcRomStart {
    /// What the ROM does ([`RomStart`]); a `Boot`'s `copy_offset` is inside `partition`.
    pub start: RomStart,
    /// The partition read last: the enabled one, or the other after a cross-partition fallback.
    pub partition: BootPartition,
}

impl EmmcRomStart {
    /// The SPL started, if any.
    pub fn started(&self) -> Option<EmmcStart> {
        match self.start {
            RomStart::Boot { slot, .. } => Some(EmmcStart {
                partition: self.partition,
                slot,
            }),
            _ => None,
        }
    }
}

/// The board the one judgement uses for `layout` ([`board_for`]); on partitions too small for
/// `layout`, slots of 0 bytes, so that every copy is refused as too large for its slot.
fn judged_board(board: &Board, layout: EmmcLayout, partition_bytes: u64) -> Board {
    board_for(board, layout, partition_bytes).unwrap_or(Board {
        media: MediaLayout {
            standard_first_sector: 0,
            slots: SlotRule::Fixed,
            ..board.media
        },
        ..*board
    })
}

fn context<'b>(board: &'b Board, rules: Rules, shim: &'b [boards::Region]) -> Context<'b> {
    Context {
        board,
        security: rules.security,
        rollback: rules.rollback,
        slot_bytes: board.media.slot_size(board.media.standard_first_sector),
        shim,
    }
}

/// The ROM model's choice on eMMC at one reset (docs/design.md §5.5; the ROM does not know the
/// layout): PERSIST_SECONDARY_BOOT clear, the enabled partition's SPL at 0x8400, else set the
/// bit and warm reset; set, the SIT inside the enabled partition and its secondary (layout
/// (a)); when that SIT is not valid and `cross_fallback` (the disputed ROM behaviour,
/// imx8m-facts.md §3.8), the other boot partition's SPL at 0x8400, logged as the secondary.
/// Anything else is serial download. The SPL is read into the start of `buf`.
#[allow(clippy::too_many_arguments)]
pub fn choose<P, A, C, W>(
    hw: &mut Hardware<'_, P, A, C, W>,
    board: &Board,
    rules: Rules,
    enabled: BootPartition,
    cross_fallback: bool,
    buf: &mut [u8],
    persist: bool,
) -> EmmcRomStart
where
    P: BootPartitionRead,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let bytes = hw.disk.partition_blocks().saturating_mul(SECTOR_SIZE);
    let in_partition = judged_board(board, EmmcLayout::InOnePartition, bytes);
    let start = over_view(hw, EmmcLayout::InOnePartition, enabled, |h| {
        rom::choose(h, &context(&in_partition, rules, &[]), buf, persist)
    });
    let sit_invalid = matches!(
        start,
        RomStart::SerialDownload { sit, .. } if sit != SitStatus::Valid
    );
    if !(persist && cross_fallback && sit_invalid) {
        return EmmcRomStart {
            start,
            partition: enabled,
        };
    }
    let across = judged_board(board, EmmcLayout::AcrossPartitions, bytes);
    let mut start = over_view(hw, EmmcLayout::AcrossPartitions, enabled, |h| {
        rom::choose(h, &context(&across, rules, &[]), buf, true)
    });
    if let RomStart::Boot { copy_offset, .. } = &mut start {
        *copy_offset = copy_offset.saturating_sub(bytes);
    }
    EmmcRomStart {
        start,
        partition: enabled.other(),
    }
}

/// The SPL the ROM starts from a cold reset on eMMC, through its warm reset; `None` = serial
/// download.
pub fn predict_start<P, A, C, W>(
    hw: &mut Hardware<'_, P, A, C, W>,
    board: &Board,
    rules: Rules,
    enabled: BootPartition,
    cross_fallback: bool,
    buf: &mut [u8],
) -> Option<EmmcStart>
where
    P: BootPartitionRead,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let mut persist = false;
    loop {
        let r = choose(hw, board, rules, enabled, cross_fallback, buf, persist);
        match r.start {
            RomStart::Boot { .. } => return r.started(),
            RomStart::WarmResetToSecondary { .. } if !persist => persist = true,
            _ => return None,
        }
    }
}

/// The shim's flow on eMMC: [`boot::run`] over the enabled partition (layout (a), with
/// [`super::board_for`]'s media layout) or over the virtual device active ‖ inactive (layout
/// (b)), with the pairing rule on the ROM's log as everywhere: under layout (b) copy 1 is the
/// `enabled` partition's, copy 2 the other's, so a ROM that fell back to the other partition
/// (log 0x51) has its SPL paired with that partition's FIT. Except: under layout (b) a log
/// 0x51 while the enabled partition holds a valid SIT of its own ([`own_sit`]) means the ROM
/// started that table's secondary (it reads the enabled partition's SIT before any fallback),
/// so the flow judges the enabled partition as layout (a), pairing that SPL with its own FIT
/// ([`EmmcStart::stale_sit`]; docs/design.md §5.5).
pub fn run<P, A, C, W>(
    board: &Board,
    rules: Rules,
    layout: EmmcLayout,
    enabled: BootPartition,
    hw: &mut Hardware<'_, P, A, C, W>,
    mem: Memory<'_>,
    rom: RomInfo,
) -> Outcome
where
    P: BootPartitionRead,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let bytes = hw.disk.partition_blocks().saturating_mul(SECTOR_SIZE);
    if board_for(board, layout, bytes).is_none() {
        crate::shim_log!(
            error,
            hw.console,
            "eMMC layout ({=str}): boot partitions of {=u64:#x} bytes hold no slot reaching the FIT at {=u64:#x}",
            layout.name(),
            bytes,
            board.media.fit_offset
        );
    }
    if layout == EmmcLayout::AcrossPartitions && rom.started() == Some(Slot::Secondary) {
        let own = own_sit(&mut *hw.disk, board, enabled);
        if own.status == SitStatus::Valid {
            crate::shim_log!(
                warn,
                hw.console,
                "eMMC layout (b): the ROM started the secondary of {=str}'s own SIT (firstSectorNumber {=u32:#x}, a stale layout (a) table): {=str} judged as layout (a)",
                enabled.name(),
                own.first_sector,
                enabled.name()
            );
            return run(
                board,
                rules,
                EmmcLayout::InOnePartition,
                enabled,
                hw,
                mem,
                rom,
            );
        }
    }
    let judged = judged_board(board, layout, bytes);
    over_view(hw, layout, enabled, |h| {
        boot::run(&judged, rules, h, mem, rom)
    })
}

/// Runs `f` on `hw`'s backend and console over the block device of `layout`'s view of the boot
/// partitions ([`OnePartition`] of `enabled`, or [`AcrossPartitions`] with `enabled` active).
/// Both views are one type to `f`, `&mut dyn BlockRead`, so the flow is compiled once (the
/// shim's size budget).
fn over_view<P, A, C, W, R>(
    hw: &mut Hardware<'_, P, A, C, W>,
    layout: EmmcLayout,
    enabled: BootPartition,
    f: impl for<'h> FnOnce(&mut Hardware<'h, dyn BlockRead + 'h, A, C, W>) -> R,
) -> R
where
    P: BootPartitionRead,
{
    let (mut one, mut across);
    let disk: &mut dyn BlockRead = match layout {
        EmmcLayout::InOnePartition => {
            one = OnePartition {
                parts: &mut *hw.disk,
                partition: enabled,
            };
            &mut one
        }
        EmmcLayout::AcrossPartitions => {
            across = AcrossPartitions {
                parts: &mut *hw.disk,
                active: enabled,
            };
            &mut across
        }
    };
    f(&mut Hardware {
        disk,
        hab: &mut *hw.hab,
        clock: hw.clock,
        watchdog: &mut *hw.watchdog,
        console: &mut *hw.console,
    })
}

/// The next boot from a cold start on eMMC, as the ROM and then the shim decide it
/// ([`predict_start`], then [`run`] with the ROM information that start leaves), for a ROM
/// that does or does not (`cross_fallback`) fall back to the other boot partition. `ubootctl`
/// predicts with `cross_fallback = false`, the worse case (docs/design.md §5.5), and refuses
/// a start that contradicts the layout ([`EmmcStart::stale_sit`]). Returns the start and the
/// flow's outcome; `None` when the ROM starts no SPL (serial download: no shim
/// runs, whatever the other partition holds, so the device does not boot).
#[allow(clippy::too_many_arguments)]
pub fn predict<P, A, C, W>(
    board: &Board,
    rules: Rules,
    layout: EmmcLayout,
    enabled: BootPartition,
    cross_fallback: bool,
    hw: &mut Hardware<'_, P, A, C, W>,
    mem: Memory<'_>,
) -> Option<(EmmcStart, Outcome)>
where
    P: BootPartitionRead,
    A: Authenticator,
    C: Clock,
    W: WatchdogService,
{
    let started = predict_start(hw, board, rules, enabled, cross_fallback, &mut *mem.window)?;
    let rom = RomInfo {
        log: match started.slot {
            Slot::Primary => RomLog::PrimaryBoot,
            Slot::Secondary => RomLog::SecondaryBoot,
        },
        ..RomInfo::UNKNOWN
    };
    Some((started, run(board, rules, layout, enabled, hw, mem, rom)))
}
