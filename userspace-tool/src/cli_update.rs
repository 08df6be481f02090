//! `ubootctl update` and `ubootctl sync`: the AN12900 rule (design.md §7) on a real device,
//! with a dry run, progress on a terminal and JSON event lines.

use std::io::IsTerminal;
use std::path::Path;

use boards::Board;
use imx_hab::hab::Fuses;
use serde_json::json;
use spl_shim::cell::SlotWord;
use spl_shim::policy::Slot;
use ubootctl::blockdev::{FileDevice, OpenError};
use ubootctl::exec::{self, Event, ExecOptions, RunError};
use ubootctl::media::MediaState;
use ubootctl::plan::{self, Plan};

use crate::cell_source;
use crate::exit::Failure;

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
}

/// The running slot: `--running` when given, else the cell's slot when its boot record is
/// valid. A cell without a valid record is never guessed from.
fn running_slot(c: &Common<'_>) -> Result<(Option<Slot>, String), Failure> {
    match c.running {
        Some(1) => return Ok((Some(Slot::Primary), "named with --running".into())),
        Some(2) => return Ok((Some(Slot::Secondary), "named with --running".into())),
        Some(n) => {
            return Err(Failure::Usage(format!(
                "--running {n}: the running slot is 1 or 2"
            )));
        }
        None => {}
    }
    match cell_source::read(c.mem, c.board.cell_addr) {
        Ok(cell) => match (&cell.slot, &cell.record) {
            (SlotWord::Booted(slot), Ok(_)) => Ok((
                Some(*slot),
                format!(
                    "boot record at {:#x} in {}",
                    c.board.cell_addr,
                    c.mem.display()
                ),
            )),
            (_, Err(e)) => Ok((
                None,
                format!("no boot record at {:#x} ({e})", c.board.cell_addr),
            )),
            (slot, Ok(_)) => Ok((
                None,
                format!("the boot record says nothing was booted ({slot:?})"),
            )),
        },
        Err(e) => Ok((None, e)),
    }
}

fn open(device: &Path) -> Result<FileDevice, Failure> {
    FileDevice::open(device).map_err(|e| match e {
        OpenError::Busy { .. } => {
            Failure::Usage(format!("{e}: another process holds the device lock"))
        }
        other => Failure::Usage(other.to_string()),
    })
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

/// Progress as JSON lines, a bar on a terminal, or nothing.
fn progress(json: bool) -> Box<dyn FnMut(&Event<'_>)> {
    if json {
        return Box::new(|e: &Event<'_>| {
            let v = match e {
                Event::Start { steps, total_bytes } => {
                    json!({"event": "start", "steps": steps, "total_bytes": total_bytes})
                }
                Event::Step { index, step } => {
                    json!({"event": "step", "index": index, "action": step.summary(), "reason": step.reason})
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
            println!("{v}");
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

/// `ubootctl update IMAGE --device DEV`.
pub fn update(image_path: &Path, c: &Common<'_>) -> Result<(), Failure> {
    let image = std::fs::read(image_path).map_err(|e| Failure::io("read", image_path, e))?;
    let mut dev = open(c.device)?;
    let (running, why) = running_slot(c)?;
    if running.is_none() {
        return Err(Failure::Refused(format!(
            "refused, nothing written: the running slot is unknown ({why}); name it with --running 1|2"
        )));
    }
    if c.dry_run {
        let new = plan::NewImage::check(image, c.board, &c.fuses)
            .map_err(|r| run_error(RunError::Refused(r)))?;
        let state =
            MediaState::read(&dev, c.board, &c.fuses).map_err(|e| run_error(RunError::Read(e)))?;
        let p = plan::plan_update(&state, &new, running, c.board)
            .map_err(|r| run_error(RunError::Refused(r)))?;
        return print_plan(&p, c, &why);
    }
    let mut prog = progress(c.json);
    let out = exec::update(
        &mut dev,
        c.board,
        &c.fuses,
        image,
        running,
        &ExecOptions::default(),
        &mut prog,
    )
    .map_err(run_error)?;
    finish(&out.plan, out.summary.bytes_written, c)
}

/// `ubootctl sync --device DEV`.
pub fn sync(c: &Common<'_>) -> Result<(), Failure> {
    let mut dev = open(c.device)?;
    let (running, why) = running_slot(c)?;
    if c.dry_run {
        let state =
            MediaState::read(&dev, c.board, &c.fuses).map_err(|e| run_error(RunError::Read(e)))?;
        let p = plan::plan_sync(&state, running, c.board)
            .map_err(|r| run_error(RunError::Refused(r)))?;
        return print_plan(&p, c, &why);
    }
    let mut prog = progress(c.json);
    let out = exec::sync(
        &mut dev,
        c.board,
        &c.fuses,
        running,
        &ExecOptions::default(),
        &mut prog,
    )
    .map_err(run_error)?;
    finish(&out.plan, out.summary.bytes_written, c)
}

fn print_plan(p: &Plan, c: &Common<'_>, why: &str) -> Result<(), Failure> {
    if c.json {
        println!(
            "{}",
            json!({"event": "plan", "dry_run": true, "running_from": why, "plan": plan_json(p)})
        );
    } else {
        println!(
            "dry run on {} (running slot from {why}); nothing is written:",
            c.device.display()
        );
        print!("{p}");
    }
    Ok(())
}

fn finish(p: &Plan, written: u64, c: &Common<'_>) -> Result<(), Failure> {
    if c.json {
        println!(
            "{}",
            json!({"event": "result", "installed": true, "bytes_written": written, "plan": plan_json(p)})
        );
    } else if p.is_noop() {
        println!("{}: already installed; nothing written", c.device.display());
        for n in &p.notes {
            println!("  {n}");
        }
    } else {
        println!(
            "{}: done, {} steps, {written} bytes written and read back",
            c.device.display(),
            p.steps.len()
        );
    }
    Ok(())
}
