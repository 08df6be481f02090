//! The boot medium BOOT_CFG names (boards `BootCfg`; docs/design.md §5.5): the SD card on the
//! board's boot uSDHC, or the eMMC on its eMMC uSDHC with its EXT_CSD\[179\]; and the boot flow
//! over it, each read servicing the watchdog.

use boards::{Board, BootCfg, BootDevice, EmmcLayout};
use boot_core::boot::{self, Hardware, Memory, Outcome};
use boot_core::cell::RomInfo;
use boot_core::emmc::{self, BootEnable, BootPartition, BootPartitionRead};
use boot_core::examine::Rules;
use boot_core::platform::{BlockRead, MediaError, WatchdogService};
use imx_hab::hab::Authenticator;

use super::timer::GenericTimer;
use super::usdhc::Usdhc;
use super::usdhc::emmc::{Emmc, EmmcInfo};
use super::watchdog::Watchdog;

/// Where the images are read from.
#[derive(Debug)]
pub enum Medium {
    /// The SD card (design.md §4 layout on its user area).
    Sd(Usdhc),
    /// The eMMC's boot partitions, in `layout`, `enabled` as EXT_CSD\[179\] names it.
    EmmcBoot {
        /// The device.
        emmc: Emmc,
        /// Layout (a) or (b).
        layout: EmmcLayout,
        /// BOOT_PARTITION_ENABLE.
        enabled: BootPartition,
    },
    /// The eMMC's user area (BOOT_PARTITION_ENABLE 0 or 7): the SD card's layout on it.
    EmmcUser(Emmc),
}

/// Why no medium could be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenError {
    /// BOOT_CFG names a device class this firmware does not boot (bits \[15:12\]).
    UnsupportedDevice(u32),
    /// BOOT_CFG sets bits the simulation does not define (the word, the bits).
    UndefinedBootCfg(u32, u32),
    /// BOOT_CFG names the eMMC but the board has none.
    NoEmmc,
    /// The controller or the card failed.
    Media(MediaError),
    /// EXT_CSD\[179\] BOOT_PARTITION_ENABLE holds a reserved value (3 to 6).
    ReservedBootEnable(u8),
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::UnsupportedDevice(v) => {
                write!(f, "BOOT_CFG boot device {v:#x} is not supported")
            }
            OpenError::UndefinedBootCfg(w, b) => write!(
                f,
                "BOOT_CFG {w:#010x} sets bits {b:#010x} the simulation does not define"
            ),
            OpenError::NoEmmc => f.write_str("BOOT_CFG selects eMMC but the board has none"),
            OpenError::Media(e) => write!(f, "{e}"),
            OpenError::ReservedBootEnable(v) => {
                write!(f, "EXT_CSD[179] BOOT_PARTITION_ENABLE {v} is reserved")
            }
        }
    }
}

/// What was opened, for the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opened {
    /// An SD card of this many blocks, SDHC (`true`) or SDSC.
    Sd {
        /// Blocks.
        blocks: u64,
        /// Block addressing.
        sdhc: bool,
    },
    /// An eMMC.
    Emmc(EmmcInfo),
}

/// Opens the medium `cfg` names on `board`: initialises its controller and card.
pub fn open(board: &Board, cfg: BootCfg) -> Result<(Medium, Opened), OpenError> {
    if cfg.undefined_bits() != 0 {
        return Err(OpenError::UndefinedBootCfg(cfg.0, cfg.undefined_bits()));
    }
    match cfg.device().map_err(OpenError::UnsupportedDevice)? {
        BootDevice::Sd => {
            // SAFETY: the board's boot uSDHC (boards::Board::boot_usdhc); the caller opens
            // the medium once and drives no other handle on that controller.
            let mut sd = unsafe { Usdhc::from_base(board.boot_usdhc.base) };
            let c = sd.init().map_err(OpenError::Media)?;
            let opened = Opened::Sd {
                blocks: c.blocks,
                sdhc: c.kind == super::usdhc::CardKind::Sdhc,
            };
            Ok((Medium::Sd(sd), opened))
        }
        BootDevice::Emmc(layout) => {
            let host = board.emmc.ok_or(OpenError::NoEmmc)?;
            // SAFETY: the board's eMMC uSDHC (boards::Board::emmc, uSDHC3 0x30B60000); as
            // above, one handle.
            let mut emmc = unsafe { Emmc::from_base(host.base) };
            let info = emmc.init().map_err(OpenError::Media)?;
            let medium = match info.partition_config.enabled() {
                BootEnable::Partition(enabled) => Medium::EmmcBoot {
                    emmc,
                    layout,
                    enabled,
                },
                BootEnable::None | BootEnable::User => Medium::EmmcUser(emmc),
                BootEnable::Reserved(v) => return Err(OpenError::ReservedBootEnable(v)),
            };
            Ok((medium, Opened::Emmc(info)))
        }
    }
}

/// A block device whose every read first services the watchdog.
struct Serviced<'a> {
    disk: &'a mut dyn BlockRead,
    wdog: &'a mut Watchdog,
}

impl BlockRead for Serviced<'_> {
    fn block_count(&self) -> u64 {
        self.disk.block_count()
    }

    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MediaError> {
        self.wdog.service();
        self.disk.read_blocks(lba, buf)
    }
}

/// Boot partitions whose every read first services the watchdog.
struct ServicedParts<'a> {
    emmc: &'a mut Emmc,
    wdog: &'a mut Watchdog,
}

impl BootPartitionRead for ServicedParts<'_> {
    fn partition_blocks(&self) -> u64 {
        self.emmc.partition_blocks()
    }

    fn read_partition(
        &mut self,
        partition: BootPartition,
        lba: u64,
        buf: &mut [u8],
    ) -> Result<(), MediaError> {
        self.wdog.service();
        self.emmc.read_partition(partition, lba, buf)
    }
}

/// The flow's own service calls: the reads service the real watchdog.
struct NoService;

impl WatchdogService for NoService {
    fn service(&mut self) {}
}

/// Runs the boot flow over `medium`: [`boot::run`] for an SD card or the eMMC user area,
/// [`emmc::run`] for the boot partitions (the one judgement either way).
#[allow(clippy::too_many_arguments)]
pub fn run<A: Authenticator>(
    board: &Board,
    medium: &mut Medium,
    wdog: &mut Watchdog,
    hab: &mut A,
    clock: &GenericTimer,
    console: &mut dyn core::fmt::Write,
    rules: Rules,
    mem: Memory<'_>,
    rom: RomInfo,
) -> Outcome {
    match medium {
        Medium::Sd(sd) => {
            let mut disk = Serviced { disk: sd, wdog };
            let mut hw = Hardware {
                disk: &mut disk as &mut dyn BlockRead,
                hab,
                clock,
                watchdog: &mut NoService,
                console,
            };
            boot::run(board, rules, &mut hw, mem, rom)
        }
        Medium::EmmcUser(emmc) => {
            let mut user = emmc.user();
            let mut disk = Serviced {
                disk: &mut user,
                wdog,
            };
            let mut hw = Hardware {
                disk: &mut disk as &mut dyn BlockRead,
                hab,
                clock,
                watchdog: &mut NoService,
                console,
            };
            boot::run(board, rules, &mut hw, mem, rom)
        }
        Medium::EmmcBoot {
            emmc,
            layout,
            enabled,
        } => {
            let mut parts = ServicedParts { emmc, wdog };
            let mut hw = Hardware {
                disk: &mut parts,
                hab,
                clock,
                watchdog: &mut NoService,
                console,
            };
            emmc::run(board, rules, *layout, *enabled, &mut hw, mem, rom)
        }
    }
}
