//! `ubootctl` on eMMC boot partitions (README "eMMC layouts"): the enabled-partition check of
//! layout (a), `update` / `sync` of the A/B layout (b) (`--emmc-ab`), and the `emmc` section of
//! `status`.

use std::path::{Path, PathBuf};

use boards::Board;
use boot_core::policy::Slot;
use serde::Serialize;
use ubootctl::blockdev::{BlockDevice, FileDevice, OpenError};
use ubootctl::emmc::ab::{AbDevice, AbState};
use ubootctl::emmc::ab_plan::{plan_ab_sync, plan_ab_update};
use ubootctl::emmc::{self, BootPartition, ExtCsdAccess, PartitionConfig};
use ubootctl::media::{CopyState, MediaState};
use ubootctl::plan::{self, Plan};
use ubootctl::storage_lock::{self, LockRoots, StorageGuard};
use ubootctl::sysblock;

use crate::cli_update::{self, Common, EmmcOptions, lock_failure, running_slot};
use crate::exit::Failure;
use crate::output::outln;

/// `mmcblk2boot1` -> (`mmcblk2`, boot1).
fn split_boot_name(name: &str) -> Option<(&str, BootPartition)> {
    if !sysblock::is_boot_partition_name(name) {
        return None;
    }
    let cut = name.rfind("boot")?;
    let part = match &name[cut..] {
        "boot0" => BootPartition::Boot0,
        "boot1" => BootPartition::Boot1,
        _ => return None,
    };
    Some((&name[..cut], part))
}

/// The main device of the eMMC a boot partition `name` belongs to: `/dev/mmcblkN`.
fn main_device(name: &str) -> PathBuf {
    PathBuf::from("/dev").join(split_boot_name(name).map_or(name, |(m, _)| m))
}

/// Reads EXT_CSD[179] of the eMMC whose main device is `main`.
fn read_config(main: &Path, opts: &EmmcOptions) -> Result<PartitionConfig, Failure> {
    let mut e = opts
        .ext_csd(main)
        .map_err(|e| ext_csd_failure(main, &e.to_string()))?;
    emmc::read_partition_config(&mut *e).map_err(|e| ext_csd_failure(main, &e.to_string()))
}

fn ext_csd_failure(main: &Path, e: &str) -> Failure {
    Failure::Usage(format!(
        "cannot read EXT_CSD of {} (needed to know which boot partition the ROM reads; \
         MMC_IOC_CMD needs root), nothing written: {e}",
        main.display()
    ))
}

/// Layout (a): the boot partition `name` given as `--device` must be the one EXT_CSD[179]
/// enables; the ROM never reads the other (the worse of the two readings, imx8m-facts.md).
pub(crate) fn check_enabled(device: &Path, name: &str, opts: &EmmcOptions) -> Result<(), Failure> {
    let Some((main_name, part)) = split_boot_name(name) else {
        return Ok(());
    };
    let main = main_device(name);
    let pc = read_config(&main, opts)?;
    if pc.enabled_partition() == Some(part) {
        return Ok(());
    }
    let fix = match pc.enabled_partition() {
        Some(p) => format!(
            "write /dev/{main_name}{p} (the enabled one), or use --emmc-ab --device {} for the \
             A/B layout, where the disabled partition is the one written",
            main.display()
        ),
        None => format!(
            "write the user area ({}) instead, or enable {part} first",
            main.display()
        ),
    };
    Err(Failure::Refused(format!(
        "refused, nothing written: {} ({part}) is not the boot partition the ROM reads: \
         EXT_CSD[179] = {pc}; {fix}",
        device.display()
    )))
}

/// The user area of an eMMC (a device with `boot0` next to it) is only what the ROM reads when
/// EXT_CSD[179] enables no boot partition.
pub(crate) fn check_user_area(device: &Path, opts: &EmmcOptions) -> Result<(), Failure> {
    if !emmc::boot_partition_path(device, BootPartition::Boot0).exists() {
        return Ok(());
    }
    let pc = read_config(device, opts)?;
    match pc.enabled_partition() {
        None => Ok(()),
        Some(p) => Err(Failure::Refused(format!(
            "refused, nothing written: {} is the user area of an eMMC whose ROM boots from {p} \
             (EXT_CSD[179] = {pc}); write {} (layout (a)) or use --emmc-ab (layout (b))",
            device.display(),
            emmc::boot_partition_path(device, p).display()
        ))),
    }
}

/// The eMMC of layout (b), checked, locked and opened.
struct AbTarget {
    _locks: Vec<StorageGuard>,
    dev: AbDevice<FileDevice, Box<dyn ExtCsdAccess>>,
    paths: [PathBuf; 2],
}

fn open_ab(c: &Common<'_>) -> Result<AbTarget, Failure> {
    let main = c.device;
    let id = sysblock::identify(main, &c.roots).map_err(|e| Failure::io("open", main, e))?;
    if id.is_boot_partition() {
        return Err(Failure::Usage(format!(
            "--emmc-ab takes the eMMC itself as --device (/dev/mmcblkN), not the boot partition {}",
            main.display()
        )));
    }
    if let Ok(Err(why @ sysblock::Unsafe::Partition { .. })) =
        sysblock::check_writable(&id, &c.roots)
    {
        return Err(Failure::Refused(format!("refused, nothing written: {why}")));
    }
    let board = ubootctl::media::board_for(c.board, ubootctl::media::Medium::BootPartition)
        .ok_or_else(|| {
            Failure::Refused(format!(
                "refused, nothing written: where the ROM reads a boot partition is not known for board {}",
                c.board.name
            ))
        })?;
    let paths = BootPartition::BOTH.map(|p| emmc::boot_partition_path(main, p));
    let roots = LockRoots::new(c.roots.clone(), c.lock_dir);
    let mut locks = Vec::new();
    let mut devs = Vec::new();
    let mut force_ro = [None, None];
    for (i, path) in paths.iter().enumerate() {
        let pid = sysblock::identify(path, &c.roots).map_err(|e| Failure::io("open", path, e))?;
        match sysblock::check_writable(&pid, &c.roots) {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                return Err(Failure::Refused(format!("refused, nothing written: {why}")));
            }
            Err(e) => return Err(Failure::Usage(format!("{}: {e}", path.display()))),
        }
        force_ro[i] = pid.force_ro_path(&c.roots);
        locks.push(
            if c.dry_run {
                storage_lock::lock_shared(path, &roots)
            } else {
                storage_lock::lock(path, &roots)
            }
            .map_err(lock_failure)?,
        );
        let open = if c.dry_run {
            FileDevice::open_read_only
        } else {
            FileDevice::open
        };
        devs.push(open(path).map_err(|e| match e {
            OpenError::Busy { .. } | OpenError::InUse { .. } => {
                Failure::Refused(format!("refused, nothing written: {e}"))
            }
            other => Failure::Usage(other.to_string()),
        })?);
    }
    let ext = c
        .emmc
        .ext_csd(main)
        .map_err(|e| ext_csd_failure(main, &e.to_string()))?;
    let b1 = devs.pop().expect("two partitions");
    let b0 = devs.pop().expect("two partitions");
    let dev = AbDevice::new(b0, b1, ext, BootPartition::Boot0, &board).with_force_ro(force_ro);
    Ok(AbTarget {
        _locks: locks,
        dev,
        paths,
    })
}

fn read_state(t: &mut AbTarget, c: &Common<'_>) -> Result<AbState, Failure> {
    t.dev.read_state(c.board, &c.fuses).map_err(|e| match e {
        emmc::ab::AbError::Io(e) => Failure::Usage(format!(
            "cannot read the boot partitions, nothing written: {e}"
        )),
        other => Failure::Refused(format!("refused, nothing written: {other}")),
    })
}

fn refused(r: plan::Refusal) -> Failure {
    Failure::Refused(format!("refused, nothing written: {r}"))
}

/// `ubootctl update IMAGE --emmc-ab --device /dev/mmcblkN`.
pub fn update_ab(image_path: &Path, c: &Common<'_>) -> Result<(), Failure> {
    let image = crate::image_file::read_image(image_path, &c.board.media)?;
    let mut t = open_ab(c)?;
    let (running, why) = running_slot(c)?;
    if running.slot.is_none() && running.booted.is_none() {
        return Err(Failure::Refused(format!(
            "refused, nothing written: the running slot is unknown ({why}); name it with --running 1|2"
        )));
    }
    let new = plan::NewImage::check(image, c.board, &c.fuses).map_err(refused)?;
    let state = read_state(&mut t, c)?;
    let p = plan_ab_update(&state, &new, running, c.board).map_err(refused)?;
    run_plan(t, &state, p, c, &why)
}

/// `ubootctl sync --emmc-ab --device /dev/mmcblkN`.
pub fn sync_ab(c: &Common<'_>) -> Result<(), Failure> {
    let mut t = open_ab(c)?;
    let (running, why) = running_slot(c)?;
    let state = read_state(&mut t, c)?;
    let p = plan_ab_sync(&state, running, c.board).map_err(refused)?;
    run_plan(t, &state, p, c, &why)
}

fn run_plan(
    mut t: AbTarget,
    state: &AbState,
    p: Plan,
    c: &Common<'_>,
    why: &str,
) -> Result<(), Failure> {
    let why = format!(
        "{why}; EXT_CSD[179] = {}, copy 1 = {} ({}), copy 2 = {} ({})",
        state.config,
        state.active,
        t.paths[state.active.index()].display(),
        state.active.other(),
        t.paths[state.active.other().index()].display()
    );
    if c.dry_run {
        return cli_update::print_plan(&p, c, &why);
    }
    let result = cli_update::execute_on(&mut t.dev, None, &p, c);
    // force_ro of both partitions back, whatever happened (AbDevice lowers it per write).
    let restored = t.dev.finish();
    result?;
    restored.map_err(|e| Failure::io("restore force_ro of", c.device, e))
}

/// The `emmc` section of `status`.
#[derive(Debug, Serialize)]
pub struct EmmcStatus {
    /// `a` (AN12900 in the enabled boot partition), `b` (A/B across boot0/boot1) or `user`
    /// (the copies are in the user area).
    pub layout: &'static str,
    /// EXT_CSD[179], hex; absent when it could not be read.
    pub partition_config: Option<String>,
    /// Why it could not be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition_config_error: Option<String>,
    /// BOOT_ACK.
    pub boot_ack: Option<bool>,
    /// BOOT_PARTITION_ENABLE: `boot0`, `boot1`, `user area`, `not enabled`, `reserved (N)`.
    pub boot_from: Option<String>,
    /// PARTITION_ACCESS (0 user, 1 boot0, 2 boot1, ...).
    pub access: Option<u8>,
    /// Both boot partitions: the copy at 0x8400 of each.
    pub partitions: Vec<BootPartStatus>,
    /// Layout (b): each boot partition holding a valid SIT of its own (a stale layout (a)
    /// table the ROM follows when the enabled partition's SPL fails), as a sentence.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One boot partition in `status`.
#[derive(Debug, Serialize)]
pub struct BootPartStatus {
    /// `boot0` / `boot1`.
    pub name: &'static str,
    /// Its device path.
    pub device: String,
    /// Whether EXT_CSD[179] enables it.
    pub enabled: bool,
    /// The copy at 0x8400, judged alone (`null` when the partition cannot be read).
    pub copy: Option<crate::cli_status::CopyStatus>,
    /// Why it cannot be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What `status` reads on an eMMC: EXT_CSD[179], both boot partitions and, for layout (b), the
/// view to report the copies over.
pub struct EmmcFacts {
    /// The section.
    pub status: EmmcStatus,
    /// Layout (b): the state of the view (copy 1 = the enabled partition's).
    pub ab: Option<AbState>,
}

/// The eMMC behind `device` (a boot partition, the eMMC itself with `--emmc-ab`, or an eMMC user
/// area next to `boot0`), or `None` when `device` is no eMMC.
pub fn emmc_facts(
    device: &Path,
    board: &Board,
    fuses: &imx_hab::hab::Fuses,
    opts: &EmmcOptions,
) -> Result<Option<EmmcFacts>, Failure> {
    let name = device
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (main, layout) = match split_boot_name(&name) {
        Some(_) => (emmc::main_device_of(device).unwrap_or_default(), "a"),
        None if opts.ab => (device.to_owned(), "b"),
        None if emmc::boot_partition_path(device, BootPartition::Boot0).exists() => {
            (device.to_owned(), "user")
        }
        None => return Ok(None),
    };
    let ext_main = if layout == "a" {
        main_device(&name)
    } else {
        main.clone()
    };
    let pc = opts
        .ext_csd(&ext_main)
        .and_then(|mut e| emmc::read_partition_config(&mut *e));
    let mut parts = Vec::new();
    let mut devs = Vec::new();
    let mut _locks = Vec::new();
    for p in BootPartition::BOTH {
        let path = emmc::boot_partition_path(&main, p);
        // Not read half-written by an A/B update (which locks each partition).
        if path.exists() {
            _locks.push(
                storage_lock::lock_shared(&path, &LockRoots::default()).map_err(|e| match e {
                    storage_lock::LockError::Busy { .. } => Failure::Refused(format!(
                        "refused: the state cannot be read while another run writes it: {e}"
                    )),
                    other => Failure::Usage(format!("cannot read a consistent state: {other}")),
                })?,
            );
        }
        let dev = FileDevice::open_read_only(&path);
        let copy = dev.as_ref().ok().and_then(|d| {
            CopyState::read(d, board, fuses, Slot::Primary, board.media.primary_offset()).ok()
        });
        parts.push(BootPartStatus {
            name: p.name(),
            device: path.display().to_string(),
            enabled: pc.as_ref().ok().and_then(|c| c.enabled_partition()) == Some(p),
            copy: copy.as_ref().map(crate::cli_status::copy_status),
            error: dev.as_ref().err().map(|e| e.to_string()),
        });
        devs.push(dev);
    }
    let ab = match (layout, &pc, &devs[..]) {
        ("b", Ok(pc), [Ok(b0), Ok(b1)]) => Some(
            emmc::ab::ab_state(b0 as &dyn BlockDevice, b1, *pc, board, fuses).map_err(|e| {
                Failure::Refused(format!("refused: {} is no A/B eMMC: {e}", device.display()))
            })?,
        ),
        ("b", Err(e), _) => return Err(ext_csd_failure(&main, &e.to_string())),
        ("b", _, _) => {
            return Err(Failure::Usage(format!(
                "cannot read the boot partitions of {}",
                device.display()
            )));
        }
        _ => None,
    };
    let warnings = ab
        .iter()
        .flat_map(|ab| {
            ab.stale_sits().into_iter().map(|(p, first)| {
                format!(
                    "{p}{} holds a valid SIT of its own (firstSectorNumber {first:#x}, a stale \
                     layout (a) table): if its SPL at 0x8400 fails, the ROM starts that table's \
                     secondary, which the A/B layout does not pair; the next update or sync \
                     that writes or enables {p} clears it",
                    if p == ab.active { " (enabled)" } else { "" }
                )
            })
        })
        .collect();
    let ok = pc.as_ref().ok();
    Ok(Some(EmmcFacts {
        status: EmmcStatus {
            layout,
            partition_config: ok.map(|c| format!("{:#04x}", c.0)),
            partition_config_error: pc.as_ref().err().map(|e| e.to_string()),
            boot_ack: ok.map(|c| c.boot_ack()),
            boot_from: ok.map(|c| c.enabled().to_string()),
            access: ok.map(|c| c.access()),
            partitions: parts,
            warnings,
        },
        ab,
    }))
}

/// The media state `status` reports over: the view's for layout (b), else the device's.
pub fn state_for_status(
    facts: Option<&EmmcFacts>,
    dev: &FileDevice,
    board: &Board,
    fuses: &imx_hab::hab::Fuses,
) -> std::io::Result<MediaState> {
    match facts.and_then(|f| f.ab.as_ref()) {
        Some(ab) => Ok(ab.media.clone()),
        None => MediaState::read(dev, board, fuses),
    }
}

/// The advice of `status` for an eMMC: layout (a) in a boot partition too small for both slots
/// (no re-partitioning helps), and the A/B commands with their option.
pub fn adjust_actions(
    actions: Vec<String>,
    facts: Option<&EmmcFacts>,
    state: &MediaState,
    board: &Board,
) -> Vec<String> {
    let needed = state.secondary.offset + ubootctl::media::slot_bytes(&board.media);
    if facts.is_some_and(|f| f.status.layout == "a") && state.device_size < needed {
        return vec![format!(
            "the AN12900 layout needs {needed:#x} bytes and this boot partition has {:#x}: \
             use the A/B layout across boot0/boot1 (`ubootctl update IMAGE --emmc-ab --device \
             /dev/mmcblkN`) or an eMMC with larger boot partitions",
            state.device_size
        )];
    }
    let Some(ab) = facts.and_then(|f| f.ab.as_ref()) else {
        return actions;
    };
    if let Err(why) = ubootctl::emmc::ab_plan::check_stale(ab) {
        return vec![why.to_string()];
    }
    actions
        .into_iter()
        .map(|a| {
            a.replace("`ubootctl sync`", "`ubootctl sync --emmc-ab`")
                .replace("`ubootctl update IMAGE", "`ubootctl update IMAGE --emmc-ab")
        })
        .collect()
}

/// The text lines of the `emmc` section; `copy` formats a copy as the status table does.
pub fn print_status(e: &EmmcStatus, copy: &dyn Fn(&crate::cli_status::CopyStatus) -> String) {
    match (&e.partition_config, &e.partition_config_error) {
        (Some(pc), _) => outln!(
            "EXT_CSD[179] {pc}: BOOT_ACK {}, boot from {}, access {} (layout {})",
            u8::from(e.boot_ack == Some(true)),
            e.boot_from.as_deref().unwrap_or("?"),
            e.access.unwrap_or(0),
            e.layout
        ),
        (None, err) => outln!(
            "EXT_CSD[179] not read: {}",
            err.as_deref().unwrap_or("unknown error")
        ),
    }
    for p in &e.partitions {
        let what = match (&p.copy, &p.error) {
            (Some(c), _) => copy(c),
            (None, Some(err)) => format!("not read: {err}"),
            (None, None) => "not read".into(),
        };
        let enabled = if p.enabled {
            " (enabled)"
        } else {
            "          "
        };
        outln!("  {}{enabled} {what}", p.name);
    }
    for w in &e.warnings {
        outln!("  warning: {w}");
    }
}
