//! Carries out a [`Plan`] on a [`BlockDevice`]: writes in chunks, flushes where the plan says,
//! reads every copy back from the medium and compares it by SHA-256, and stops at the first
//! error or mismatch with an error naming the step and the device offset. Progress is reported
//! through [`Progress`] (a progress bar or JSON event lines in the CLI).
//!
//! [`update`] and [`sync`] are the whole pipelines the CLI runs on a locked device: read and
//! judge the medium, check the image, plan, execute.

use std::fmt;
use std::io;

use boards::Board;
use imx_hab::hab::Fuses;
use sha2::{Digest, Sha256};

use crate::blockdev::BlockDevice;
use crate::media::MediaState;
use crate::plan::{Action, NewImage, Plan, Refusal, Region, Running, Step, plan_sync, plan_update};

/// Default bytes per `write_at` and `read_back_at` call: 1 MiB.
///
/// A [`crate::blockdev::FileDevice`] writes and reads back with `O_DIRECT`, so every call waits
/// for the device (not for a cache flush: durability points are the plan's flush steps only);
/// large calls keep the number of system calls and device requests low. The chunk size does not
/// affect safety: the body of a copy is only ever written while its IVT is zero.
pub const DEFAULT_CHUNK: usize = 1024 * 1024;

/// How to execute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOptions {
    /// Bytes per write and per read-back call; rounded down to whole logical blocks (at least
    /// one).
    pub chunk_size: usize,
}

impl Default for ExecOptions {
    fn default() -> Self {
        ExecOptions {
            chunk_size: DEFAULT_CHUNK,
        }
    }
}

/// Something that happened during execution.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// Execution starts.
    Start {
        /// Number of steps.
        steps: usize,
        /// Bytes to write plus bytes to read back.
        total_bytes: u64,
    },
    /// A step starts.
    Step {
        /// 0-based index.
        index: usize,
        /// The step.
        step: &'a Step,
    },
    /// Bytes moved within the current step (after every chunk).
    Bytes {
        /// 0-based step index.
        index: usize,
        /// Bytes done in this step.
        done: u64,
        /// Bytes of this step.
        len: u64,
    },
    /// A read-back matched.
    Verified {
        /// 0-based step index.
        index: usize,
        /// Region read back.
        region: Region,
        /// Device offset.
        offset: u64,
        /// Bytes compared.
        len: u64,
        /// Their SHA-256.
        sha256: [u8; 32],
    },
    /// Every step is done.
    Done(Summary),
}

/// Receives [`Event`]s, and may ask the execution to stop at a safe point.
pub trait Progress {
    /// Called for each event, in order.
    fn event(&mut self, event: &Event<'_>);

    /// Asked at every *stop point*: before the first step, and after each read-back, i.e.
    /// before a copy (or the SIT) is started, never between a copy's invalidation and its
    /// read-back. `Some(why)` stops the execution there with [`ExecErrorKind::Stopped`]. The
    /// default never stops.
    ///
    /// Stopping at these points only leaves the medium in a state the planner produces between
    /// two copies (the power-cut sweep covers every state, these included): the copy written
    /// last is complete and verified, the next one is untouched, and a re-run finishes the
    /// update. A request made during a copy (a signal, a closed standard output) therefore
    /// waits for that copy to be complete rather than leave it invalidated.
    fn stop(&mut self) -> Option<String> {
        None
    }
}

impl<F: FnMut(&Event<'_>)> Progress for F {
    fn event(&mut self, event: &Event<'_>) {
        self(event)
    }
}

/// Ignores every event.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn event(&mut self, _: &Event<'_>) {}
}

/// What an execution did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Summary {
    /// `write_at` calls made.
    pub write_calls: usize,
    /// Bytes written.
    pub bytes_written: u64,
    /// Bytes read back and compared.
    pub bytes_verified: u64,
    /// Boot-partition switches made (layout (b)).
    pub switches: usize,
}

/// What went wrong in a step.
#[derive(Debug)]
pub enum ExecErrorKind {
    /// The device failed.
    Io(io::Error),
    /// What was read back is not what was written.
    Mismatch {
        /// SHA-256 of what was written.
        expected: [u8; 32],
        /// SHA-256 of what was read.
        found: [u8; 32],
    },
    /// [`Progress::stop`] asked to stop at a stop point (no copy was in progress); the step
    /// named was not started.
    Stopped(String),
}

/// A step failed; the execution stopped there.
#[derive(Debug)]
pub struct ExecError {
    /// 0-based index of the failed step.
    pub step: usize,
    /// Its summary ([`Step::summary`]).
    pub summary: String,
    /// Device offset of the failure: the chunk that failed, or the first byte that differs
    /// (`None` for a failed flush).
    pub offset: Option<u64>,
    /// What went wrong.
    pub kind: ExecErrorKind,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "step {} ({}) ", self.step + 1, self.summary)?;
        let at = self
            .offset
            .map(|o| format!(" at {o:#x}"))
            .unwrap_or_default();
        match &self.kind {
            ExecErrorKind::Io(e) => write!(f, "failed{at}: {e}"),
            ExecErrorKind::Stopped(why) => write!(f, "not started: {why}"),
            ExecErrorKind::Mismatch { expected, found } => write!(
                f,
                "read back different bytes: first difference{at}; SHA-256 {} written, {} read",
                hex(expected),
                hex(found)
            ),
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ExecErrorKind::Io(e) => Some(e),
            ExecErrorKind::Mismatch { .. } | ExecErrorKind::Stopped(_) => None,
        }
    }
}

/// Executes `plan` on `dev`.
pub fn execute<D: BlockDevice + ?Sized>(
    dev: &mut D,
    plan: &Plan,
    options: &ExecOptions,
    progress: &mut dyn Progress,
) -> Result<Summary, ExecError> {
    let bs = dev.logical_block_size().max(1) as usize;
    let chunk = (options.chunk_size / bs).max(1) * bs;
    let total_bytes = plan
        .steps
        .iter()
        .map(|s| match &s.action {
            Action::Write { data, .. } => data.len() as u64,
            Action::Verify { expected, .. } => expected.len() as u64,
            Action::Flush | Action::Switch { .. } => 0,
        })
        .sum();
    progress.event(&Event::Start {
        steps: plan.steps.len(),
        total_bytes,
    });
    let mut summary = Summary::default();
    // A copy (or the SIT) is "open" from its first write to its read-back: no stop in between.
    let mut open = false;
    for (index, step) in plan.steps.iter().enumerate() {
        let fail = |offset, kind| ExecError {
            step: index,
            summary: step.summary(),
            offset,
            kind,
        };
        if !open && let Some(why) = progress.stop() {
            return Err(fail(None, ExecErrorKind::Stopped(why)));
        }
        progress.event(&Event::Step { index, step });
        match &step.action {
            Action::Write { offset, data, .. } => {
                open = true;
                let mut done = 0;
                for piece in data.chunks(chunk) {
                    let at = offset + done as u64;
                    dev.write_at(at, piece)
                        .map_err(|e| fail(Some(at), ExecErrorKind::Io(e)))?;
                    summary.write_calls += 1;
                    done += piece.len();
                    progress.event(&Event::Bytes {
                        index,
                        done: done as u64,
                        len: data.len() as u64,
                    });
                }
                summary.bytes_written += data.len() as u64;
            }
            Action::Flush => dev.flush().map_err(|e| fail(None, ExecErrorKind::Io(e)))?,
            // One CMD6, then EXT_CSD[179] read back (`emmc::switch_boot_partition`).
            Action::Switch { part, .. } => {
                dev.switch_boot_partition(*part)
                    .map_err(|e| fail(None, ExecErrorKind::Io(e)))?;
                summary.switches += 1;
            }
            Action::Verify {
                region,
                offset,
                expected,
            } => {
                let mut read = vec![0u8; expected.len()];
                let mut hasher = Sha256::new();
                let mut done = 0;
                for piece in read.chunks_mut(chunk) {
                    let at = offset + done as u64;
                    dev.read_back_at(at, piece)
                        .map_err(|e| fail(Some(at), ExecErrorKind::Io(e)))?;
                    hasher.update(&*piece);
                    done += piece.len();
                    progress.event(&Event::Bytes {
                        index,
                        done: done as u64,
                        len: expected.len() as u64,
                    });
                }
                let found: [u8; 32] = hasher.finalize().into();
                let wanted: [u8; 32] = Sha256::digest(&expected[..]).into();
                if found != wanted {
                    let first = read
                        .iter()
                        .zip(expected.iter())
                        .position(|(a, b)| a != b)
                        .unwrap_or(0);
                    return Err(fail(
                        Some(offset + first as u64),
                        ExecErrorKind::Mismatch {
                            expected: wanted,
                            found,
                        },
                    ));
                }
                summary.bytes_verified += expected.len() as u64;
                open = false;
                progress.event(&Event::Verified {
                    index,
                    region: *region,
                    offset: *offset,
                    len: expected.len() as u64,
                    sha256: found,
                });
            }
        }
    }
    progress.event(&Event::Done(summary));
    Ok(summary)
}

/// Why [`update`] or [`sync`] did not complete.
#[derive(Debug)]
pub enum RunError {
    /// Refused before anything was written.
    Refused(Refusal),
    /// Reading the medium before planning failed; nothing was written.
    Read(io::Error),
    /// Execution stopped at a step.
    Exec(ExecError),
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Refused(r) => write!(f, "refused: {r}"),
            RunError::Read(e) => write!(f, "cannot read the device: {e}"),
            RunError::Exec(e) => write!(f, "update stopped: {e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// What [`update`] or [`sync`] did.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The plan that was executed.
    pub plan: Plan,
    /// What executing it did (all zero for a plan with nothing to do).
    pub summary: Summary,
}

/// Checks `image`, reads the medium, plans the update for `running` and executes it.
pub fn update<D: BlockDevice + ?Sized>(
    dev: &mut D,
    board: &Board,
    fuses: &Fuses,
    image: Vec<u8>,
    running: impl Into<Running>,
    options: &ExecOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, RunError> {
    let image = NewImage::check(image, board, fuses).map_err(RunError::Refused)?;
    let state = MediaState::read(&*dev, board, fuses).map_err(RunError::Read)?;
    let plan = plan_update(&state, &image, running, board).map_err(RunError::Refused)?;
    let summary = execute(dev, &plan, options, progress).map_err(RunError::Exec)?;
    Ok(Outcome { plan, summary })
}

/// Reads the medium, plans the sync for `running` and executes it.
pub fn sync<D: BlockDevice + ?Sized>(
    dev: &mut D,
    board: &Board,
    fuses: &Fuses,
    running: impl Into<Running>,
    options: &ExecOptions,
    progress: &mut dyn Progress,
) -> Result<Outcome, RunError> {
    let state = MediaState::read(&*dev, board, fuses).map_err(RunError::Read)?;
    let plan = plan_sync(&state, running, board).map_err(RunError::Refused)?;
    let summary = execute(dev, &plan, options, progress).map_err(RunError::Exec)?;
    Ok(Outcome { plan, summary })
}
