//! `ubootctl update` and `ubootctl sync`: the AN12900 rule (design.md §7) on a real device,
//! with a dry run, progress on a terminal and JSON event lines.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use boards::Board;
use boot_core::cell::SlotWord;
use boot_core::policy::Slot;
use imx_hab::hab::Fuses;
use serde_json::json;
use ubootctl::blockdev::{FileDevice, OpenError};
use ubootctl::emmc::{ExtCsdAccess, FileExtCsd, IoctlExtCsd};
use ubootctl::exec::{self, Event, ExecErrorKind, ExecOptions, Progress, RunError};
use ubootctl::media::{self, MediaState, Medium};
use ubootctl::plan::{self, Plan, Running};
use ubootctl::storage_lock::{self, LockError, LockRoots, StorageGuard};
use ubootctl::sysblock::{self, ForceRoGuard, SysRoots};

use crate::cell_source;
use crate::exit::Failure;
use crate::output::{self, out, outln};

/// Options shared by `update` and `sync`.
pub struct Common<'a> {
    /// Boot medium.
    pub device: &'a Path,
    /// Board.
    pub board: &'static Board,
    /// Fuse values.
    pub fuses: Fuses,
    /// Running slot named on the command line.
    pub running: Option<u8>,
    /// Physical memory source for the cell.
    pub mem: &'a Path,
    /// Plan only.
    pub dry_run: bool,
    /// JSON event lines.
    pub json: bool,
    /// Where sysfs and procfs are (fake trees in tests).
    pub roots: SysRoots,
    /// The directory of the per-storage lock files.
    pub lock_dir: &'a Path,
    /// For tests only: a pause after every step's announcement, before its I/O, so that a test
    /// can send a signal, close the output or cut the power in the middle of a copy.
    pub step_delay: Option<Duration>,
    /// The eMMC layout and the EXT_CSD source.
    pub emmc: EmmcOptions,
}

/// How an eMMC is addressed.
#[derive(Debug, Clone, Default)]
pub struct EmmcOptions {
    /// Layout (b): A/B across boot0/boot1 (`--emmc-ab`).
    pub ab: bool,
    /// For tests: a file standing for EXT_CSD (`--test-ext-csd`).
    pub test_ext_csd: Option<PathBuf>,
}

impl EmmcOptions {
    /// EXT_CSD of the eMMC whose main device is `main` (`/dev/mmcblkN`).
    pub fn ext_csd(&self, main: &Path) -> std::io::Result<Box<dyn ExtCsdAccess>> {
        Ok(match &self.test_ext_csd {
            Some(f) => Box::new(FileExtCsd(f.clone())),
            None => Box::new(IoctlExtCsd::open(main)?),
        })
    }
}

/// The running slot: `--running` when given, else the cell's slot when its boot record is
/// valid. A cell without a valid record is never guessed from.
pub(crate) fn running_slot(c: &Common<'_>) -> Result<(Running, String), Failure> {
    let given = match c.running {
        None => None,
        Some(1) => Some(Slot::Primary),
        Some(2) => Some(Slot::Secondary),
        Some(n) => {
            return Err(Failure::Usage(format!(
                "--running {n}: the running slot is 1 or 2"
            )));
        }
    };
    cell_source::check(c.mem).map_err(Failure::Usage)?;
    let at = format!(
        "boot record at {:#x} in {}",
        c.board.cell_addr,
        c.mem.display()
    );
    let cell = cell_source::read(c.mem, c.board.cell_addr);
    let recorded = match &cell {
        Ok(cell) => match (&cell.slot, &cell.record) {
            (SlotWord::Booted(slot), Ok(r)) => Some((*slot, r.booted)),
            _ => None,
        },
        Err(_) => None,
    };
    match (given, recorded) {
        // A valid record is the truth; --running may only repeat it.
        (Some(g), Some((r, _))) if g != r => Err(Failure::Usage(format!(
            "--running {} contradicts the valid {at}, which says slot {}: refusing to guess; \
             drop --running",
            g as u32, r as u32
        ))),
        (_, Some((slot, booted))) => {
            if booted.is_none() {
                // Said on stderr so that --json output stays one document per line.
                let _ = writeln!(
                    std::io::stderr(),
                    "ubootctl: note: the {at} is version 1 (an older shim): it names the slot \
                     that booted, not the image; the slot rule applies alone"
                );
            }
            Ok((
                Running {
                    slot: Some(slot),
                    booted,
                },
                at,
            ))
        }
        (Some(g), None) => Ok((Some(g).into(), "--running".into())),
        (None, None) => Ok((
            Running::default(),
            match cell {
                Ok(cell) => match (&cell.slot, &cell.record) {
                    (_, Err(e)) => format!("no boot record at {:#x} ({e})", c.board.cell_addr),
                    (slot, Ok(_)) => format!("the boot record says nothing was booted ({slot:?})"),
                },
                Err(e) => e,
            },
        )),
    }
}

/// The target, checked and opened.
pub(crate) struct Target {
    /// Held for the whole command: one lock per storage (the disk under a partition, the file
    /// under a loop device and the other way round).
    _lock: StorageGuard,
    pub(crate) dev: FileDevice,
    /// The board with the media layout of the target's medium.
    pub(crate) board: Board,
    /// `force_ro` of an eMMC boot partition.
    force_ro: Option<PathBuf>,
}

/// Refuses a partition and a device in use (exit 1), then opens the device (locked, claimed
/// exclusively) and picks the layout of its medium.
pub(crate) fn open(c: &Common<'_>) -> Result<Target, Failure> {
    let device = c.device;
    let id = sysblock::identify(device, &c.roots).map_err(|e| Failure::io("open", device, e))?;
    match sysblock::check_writable(&id, &c.roots) {
        Ok(Ok(())) => {}
        Ok(Err(why)) => return Err(Failure::Refused(format!("refused, nothing written: {why}"))),
        Err(e) => return Err(Failure::Usage(format!("{}: {e}", device.display()))),
    }
    let force_ro = id.force_ro_path(&c.roots);
    if id.is_boot_partition()
        && let Some(name) = &id.name
    {
        crate::cli_emmc::check_enabled(device, name, &c.emmc)?;
    } else {
        crate::cli_emmc::check_user_area(device, &c.emmc)?;
    }
    let medium = if id.is_boot_partition() {
        Medium::BootPartition
    } else {
        Medium::UserArea
    };
    let board = media::board_for(c.board, medium).ok_or_else(|| {
        Failure::Refused(format!(
            "refused, nothing written: {} is an eMMC boot partition, and where the ROM reads a boot partition is not known for board {}",
            device.display(),
            c.board.name
        ))
    })?;
    // A dry run writes nothing: it shares the lock and opens read-only, so that it never
    // blocks or is blocked by another dry run or a status.
    let roots = LockRoots::new(c.roots.clone(), c.lock_dir);
    let lock = if c.dry_run {
        storage_lock::lock_shared(device, &roots)
    } else {
        storage_lock::lock(device, &roots)
    }
    .map_err(lock_failure)?;
    let open = if c.dry_run {
        FileDevice::open_read_only
    } else {
        FileDevice::open
    };
    let dev = open(device).map_err(|e| match e {
        OpenError::Busy { .. } => Failure::Refused(format!(
            "refused, nothing written: {e}: another process holds the device lock"
        )),
        OpenError::InUse { .. } => Failure::Refused(format!("refused, nothing written: {e}")),
        other => Failure::Usage(other.to_string()),
    })?;
    // Layout (a): the AN12900 layout with the largest table whose two slots fit the partition
    // (boot-core's `emmc::board_for`, as the shim reads it).
    let board = if medium == Medium::BootPartition {
        use ubootctl::blockdev::BlockDevice;
        boot_core::emmc::board_for(&board, boards::EmmcLayout::InOnePartition, dev.size())
            .ok_or_else(|| {
                Failure::Refused(format!(
                    "refused, nothing written: {} ({:#x} bytes) cannot hold two copies of the \
                     AN12900 layout; use the A/B layout (--emmc-ab --device /dev/mmcblkN)",
                    device.display(),
                    dev.size()
                ))
            })?
    } else {
        board
    };
    Ok(Target {
        _lock: lock,
        dev,
        board,
        force_ro,
    })
}

/// Opens the target to read it only (`commit`): a partition is refused as for the writers, but
/// a device in use (a mounted root file system on the same disk) is fine, as for `status`; the
/// storage lock is shared, so no writer changes the copies meanwhile.
pub(crate) fn open_to_read(c: &Common<'_>) -> Result<Target, Failure> {
    let device = c.device;
    let id = sysblock::identify(device, &c.roots).map_err(|e| Failure::io("open", device, e))?;
    if let Ok(Err(why @ sysblock::Unsafe::Partition { .. })) =
        sysblock::check_writable(&id, &c.roots)
    {
        return Err(Failure::Refused(format!("refused, nothing burned: {why}")));
    }
    if id.is_boot_partition() {
        // On boot partitions the ROM's own fallback is the other boot partition, which a
        // commit would have to judge too before burning.
        return Err(Failure::Refused(format!(
            "refused, nothing burned: {} is an eMMC boot partition; the ROM falls back to the \
             other boot partition, which commit does not judge yet, so it could stop booting",
            device.display()
        )));
    }
    let board = media::board_for(c.board, Medium::UserArea)
        .ok_or_else(|| Failure::Usage(format!("board {} has no user-area layout", c.board.name)))?;
    let roots = LockRoots::new(c.roots.clone(), c.lock_dir);
    let lock = storage_lock::lock_shared(device, &roots).map_err(lock_failure)?;
    let dev = FileDevice::open_read_only(device).map_err(|e| Failure::Usage(e.to_string()))?;
    Ok(Target {
        _lock: lock,
        dev,
        board,
        force_ro: None,
    })
}

/// A lock that could not be taken: another `ubootctl` on the same storage is a refusal
/// (exit 1, nothing written); anything else is an I/O or usage error (exit 2).
pub fn lock_failure(e: LockError) -> Failure {
    match e {
        LockError::Busy { .. } => Failure::Refused(format!("refused, nothing written: {e}")),
        other => Failure::Usage(other.to_string()),
    }
}

/// Lowers `force_ro` of a boot partition for the writes (nothing for other targets); the guard
/// puts it back when dropped.
fn unlock(force_ro: Option<&Path>, json: bool) -> Result<Option<ForceRoGuard>, Failure> {
    let Some(path) = force_ro else {
        return Ok(None);
    };
    let g = ForceRoGuard::lower(path).map_err(|e| {
        Failure::Usage(format!(
            "cannot make the boot partition writable through {} (nothing written): {e}",
            path.display()
        ))
    })?;
    if json {
        outln!(
            "{}",
            json!({"event": "force_ro", "path": path, "previous": g.previous(), "value": "0"})
        );
    }
    Ok(Some(g))
}

/// Puts `force_ro` back and says so; a failure to restore is an error (exit 2).
fn relock(guard: Option<ForceRoGuard>, json: bool) -> Result<(), Failure> {
    let Some(g) = guard else {
        return Ok(());
    };
    let (path, previous) = (g.path().to_owned(), g.previous().to_owned());
    g.restore()
        .map_err(|e| Failure::io(&format!("restore {previous} to"), &path, e))?;
    if json {
        outln!(
            "{}",
            json!({"event": "force_ro", "path": path, "value": previous, "restored": true})
        );
    }
    Ok(())
}

/// `force_ro` as it reads now, for the JSON step events of a boot partition.
fn read_force_ro(path: &Path) -> serde_json::Value {
    std::fs::read_to_string(path).map_or(serde_json::Value::Null, |s| json!(s.trim()))
}

fn plan_json(plan: &Plan) -> serde_json::Value {
    json!({
        "running": plan.running as u32,
        "steps": plan.steps.iter().map(|s| json!({"action": s.summary(), "reason": s.reason})).collect::<Vec<_>>(),
        "notes": plan.notes,
        "bytes_written": plan.bytes_written(),
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Progress as JSON lines, a bar on a terminal, or nothing. On a boot partition each JSON
/// step event carries `force_ro` as read at that moment.
fn progress(json: bool, force_ro: Option<PathBuf>) -> Box<dyn FnMut(&Event<'_>)> {
    if json {
        return Box::new(move |e: &Event<'_>| {
            let v = match e {
                Event::Start { steps, total_bytes } => {
                    json!({"event": "start", "steps": steps, "total_bytes": total_bytes})
                }
                Event::Step { index, step } => {
                    let mut v = json!({"event": "step", "index": index, "action": step.summary(), "reason": step.reason});
                    if let Some(p) = &force_ro {
                        v["force_ro"] = read_force_ro(p);
                    }
                    v
                }
                Event::Bytes { index, done, len } => {
                    json!({"event": "bytes", "index": index, "done": done, "len": len})
                }
                Event::Verified {
                    index,
                    region,
                    offset,
                    len,
                    sha256,
                } => json!({
                    "event": "verified", "index": index, "region": region.to_string(), "offset": offset, "len": len, "sha256": hex(sha256)
                }),
                Event::Done(s) => {
                    json!({"event": "done", "bytes_written": s.bytes_written, "bytes_verified": s.bytes_verified})
                }
            };
            outln!("{v}");
        });
    }
    if !std::io::stderr().is_terminal() {
        return Box::new(|_: &Event<'_>| {});
    }
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut base = 0u64;
    let mut last = 0u64;
    Box::new(move |e: &Event<'_>| match e {
        Event::Start { total_bytes, .. } => bar.set_length(*total_bytes),
        Event::Step { step, .. } => {
            base += last;
            last = 0;
            bar.set_message(step.summary());
        }
        Event::Bytes { done, .. } => {
            last = *done;
            bar.set_position(base + done);
        }
        Event::Verified { .. } => {}
        Event::Done(_) => bar.finish_and_clear(),
    })
}

fn run_error(e: RunError) -> Failure {
    match e {
        RunError::Refused(r) => Failure::Refused(format!("refused, nothing written: {r}")),
        RunError::Read(e) => {
            Failure::Usage(format!("cannot read the boot medium, nothing written: {e}"))
        }
        RunError::Exec(e) => Failure::Usage(format!(
            "stopped: {e}. The device still boots (every step keeps one authentic copy); run the same command again"
        )),
    }
}

/// The termination signal received during the run (0: none), set by the handlers of
/// [`defer_signals`].
static SIGNAL: AtomicUsize = AtomicUsize::new(0);

/// The signals deferred while writing: an interrupt from the terminal, a termination request,
/// a hang-up.
const DEFERRED_SIGNALS: [(i32, &str); 3] = [
    (signal_hook::consts::SIGINT, "SIGINT"),
    (signal_hook::consts::SIGTERM, "SIGTERM"),
    (signal_hook::consts::SIGHUP, "SIGHUP"),
];

/// Replaces the default action of [`DEFERRED_SIGNALS`] (end the process at once, leaving
/// `force_ro` lowered and possibly a copy invalidated) by a flag: the execution sees it at its
/// next stop point (after the copy in progress is complete and verified), stops there,
/// `force_ro` is restored and the process exits with 128 + the signal number.
fn defer_signals() -> Result<(), Failure> {
    for (sig, name) in DEFERRED_SIGNALS {
        signal_hook::flag::register_usize(sig, &SIGNAL, sig as usize).map_err(|e| {
            Failure::Usage(format!(
                "cannot install a handler for {name}, nothing written: {e}"
            ))
        })?;
    }
    Ok(())
}

/// The signal received so far, if any.
fn signal_received() -> Option<(i32, &'static str)> {
    let sig = SIGNAL.load(Ordering::SeqCst);
    (sig != 0).then(|| {
        let name = DEFERRED_SIGNALS
            .iter()
            .find(|(s, _)| *s as usize == sig)
            .map_or("a signal", |(_, n)| n);
        (sig as i32, name)
    })
}

/// What the executor reports to and asks of the command line.
struct Run {
    report: Box<dyn FnMut(&Event<'_>)>,
    step_delay: Option<Duration>,
}

impl Progress for Run {
    fn event(&mut self, event: &Event<'_>) {
        (self.report)(event);
        // After the step is announced and before it runs: a test that acts on the announcement
        // (a signal, a power cut) lands before the step's I/O.
        if let (Event::Step { .. }, Some(d)) = (event, self.step_delay) {
            std::thread::sleep(d);
        }
    }

    /// A signal or a failed write to standard output stops the run, but only here, between
    /// copies. Both are requests about the process, not about the medium: stopping at once
    /// could leave a copy invalidated (safe, the fallback boots, but the device is degraded
    /// until a re-run) and, for a signal's default action, `force_ro` lowered. A copy takes
    /// well under a second on any medium, so the request waits for it; output meanwhile is
    /// dropped ([`output::write`]).
    fn stop(&mut self) -> Option<String> {
        if let Some((_, name)) = signal_received() {
            return Some(format!("{name} received"));
        }
        output::failed().then(|| "standard output is closed".into())
    }
}

/// Carries out `plan` on the target: `force_ro` lowered for the writes (when there are any)
/// and restored on every way out, progress reported, termination signals deferred to the end
/// of the copy in progress.
fn execute(t: &mut Target, p: &Plan, c: &Common<'_>) -> Result<(), Failure> {
    let force_ro = t.force_ro.clone();
    execute_on(&mut t.dev, force_ro, p, c)
}

/// [`execute`] on any device: `force_ro` (when given) lowered around the whole run; a device
/// that guards its own partitions (layout (b)) passes `None`.
pub(crate) fn execute_on(
    dev: &mut dyn ubootctl::blockdev::BlockDevice,
    force_ro: Option<PathBuf>,
    p: &Plan,
    c: &Common<'_>,
) -> Result<(), Failure> {
    // A plan without writes (already installed) leaves force_ro alone.
    let guard = if p.is_noop() {
        None
    } else {
        defer_signals()?;
        unlock(force_ro.as_deref(), c.json)?
    };
    let mut run = Run {
        report: progress(c.json, force_ro),
        step_delay: c.step_delay,
    };
    let result = exec::execute(dev, p, &ExecOptions::default(), &mut run);
    drop(run);
    // Restored before anything else is reported, success or not.
    let relocked = relock(guard, c.json);
    let summary = match result {
        Ok(summary) => summary,
        Err(e) if matches!(e.kind, ExecErrorKind::Stopped(_)) => {
            relocked?;
            let after = format!(
                "stopped before step {} ({}): the copies written so far are complete and verified, \
                 the device boots; run the same command again to finish",
                e.step + 1,
                e.summary
            );
            return Err(match (signal_received(), output::take_failure()) {
                (Some((sig, name)), _) => Failure::Signal {
                    signal: sig,
                    message: format!("{name} received; {after}"),
                },
                (None, Some(error)) => Failure::Io {
                    what: format!("write to standard output ({after})"),
                    error,
                },
                (None, None) => Failure::Usage(after),
            });
        }
        Err(e) => return Err(run_error(RunError::Exec(e))),
    };
    relocked?;
    if let Some((_, name)) = signal_received() {
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!(
                "ubootctl: {name} received while the last copy was being written; it was completed\n"
            ),
        );
    }
    finish(p, summary.bytes_written, c)
}

/// `ubootctl update IMAGE --device DEV`.
pub fn update(image_path: &Path, c: &Common<'_>) -> Result<(), Failure> {
    if c.emmc.ab {
        return crate::cli_emmc::update_ab(image_path, c);
    }
    let image = crate::image_file::read_image(image_path, &c.board.media)?;
    let mut t = open(c)?;
    let (running, why) = running_slot(c)?;
    if running.slot.is_none() {
        return Err(Failure::Refused(format!(
            "refused, nothing written: the running slot is unknown ({why}); name it with --running 1|2"
        )));
    }
    let new = plan::NewImage::check(image, &t.board, &c.fuses)
        .map_err(|r| run_error(RunError::Refused(r)))?;
    let state =
        MediaState::read(&t.dev, &t.board, &c.fuses).map_err(|e| run_error(RunError::Read(e)))?;
    let p = plan::plan_update(&state, &new, running, &t.board)
        .map_err(|r| run_error(RunError::Refused(r)))?;
    if c.dry_run {
        return print_plan(&p, c, &why);
    }
    execute(&mut t, &p, c)
}

/// `ubootctl sync --device DEV`.
pub fn sync(c: &Common<'_>) -> Result<(), Failure> {
    if c.emmc.ab {
        return crate::cli_emmc::sync_ab(c);
    }
    let mut t = open(c)?;
    let (running, why) = running_slot(c)?;
    let state =
        MediaState::read(&t.dev, &t.board, &c.fuses).map_err(|e| run_error(RunError::Read(e)))?;
    let p =
        plan::plan_sync(&state, running, &t.board).map_err(|r| run_error(RunError::Refused(r)))?;
    if c.dry_run {
        return print_plan(&p, c, &why);
    }
    execute(&mut t, &p, c)
}

pub(crate) fn print_plan(p: &Plan, c: &Common<'_>, why: &str) -> Result<(), Failure> {
    if c.json {
        outln!(
            "{}",
            json!({"event": "plan", "dry_run": true, "running_from": why, "plan": plan_json(p)})
        );
    } else {
        outln!(
            "dry run on {} (running slot from {why}); nothing is written:",
            c.device.display()
        );
        out!("{p}");
    }
    Ok(())
}

fn finish(p: &Plan, written: u64, c: &Common<'_>) -> Result<(), Failure> {
    if c.json {
        outln!(
            "{}",
            json!({"event": "result", "installed": true, "bytes_written": written, "plan": plan_json(p)})
        );
    } else if p.is_noop() {
        outln!("{}: already installed; nothing written", c.device.display());
        for n in &p.notes {
            outln!("  {n}");
        }
    } else {
        // Which copies were rewritten, in plan order (each one verified by its read-back).
        let mut regions: Vec<String> = Vec::new();
        for s in &p.steps {
            if let plan::Action::Verify { region, .. } = &s.action {
                let r = region.to_string();
                if !regions.contains(&r) {
                    regions.push(r);
                }
            }
        }
        if p.steps.iter().any(|s| {
            matches!(
                s.action,
                plan::Action::Write {
                    region: plan::Region::Sit,
                    ..
                }
            )
        }) && !regions.iter().any(|r| r == "SIT")
        {
            regions.push("SIT".into());
        }
        let switched: Vec<String> = p
            .steps
            .iter()
            .filter_map(|s| match s.action {
                plan::Action::Switch { part, .. } => Some(part.to_string()),
                _ => None,
            })
            .collect();
        let switched = if switched.is_empty() {
            String::new()
        } else {
            format!(
                "; EXT_CSD[179] switched to {} and read back",
                switched.join(", then ")
            )
        };
        outln!(
            "{}: done, wrote {} ({written} bytes in {} steps), each read back and compared by SHA-256{switched}",
            c.device.display(),
            regions.join(", then "),
            p.steps.len()
        );
    }
    Ok(())
}
