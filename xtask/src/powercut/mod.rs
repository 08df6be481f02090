//! `cargo xtask powercut-compare` (issue 13): one power-cut sweep applied to four writers of the
//! boot area, side by side, from three starting states, scored by the shim's own judgement.
//!
//! Each writer runs for real on an 8 MiB SD image (qemu-imx8mp layout: SIT at 0x8200, primary at
//! 0x8400, secondary at 0x208400) under `strace -f -y -xx`, which records every write call to
//! the image with its bytes ([`trace`]). The sweep then replays the calls on the starting bytes:
//! the state after a cut following the k-th write call is the starting state plus the first k
//! calls, for every k (a write call that was issued is taken as having reached the medium; the
//! flushes do not matter to this model). Each state is scored by `ubootctl::media::MediaState`,
//! the shim's boot flow (`boot_core::boot::run`) over those bytes: whether anything boots, and
//! whether every copy that can boot (the primary when authentic, the secondary when authentic
//! behind a valid SIT) holds an image that was never booted (the image the device was running
//! is the only one known to boot). Before the sweep, the replay of all calls must give the very
//! bytes the writer left in the file.

mod trace;
mod writers;

use std::path::PathBuf;

use boot_core::policy::Slot;
use imx_hab::hab::Fuses;
use imx_hab::sign::Pki;
use ubootctl::blockdev::MemDevice;
use ubootctl::media::MediaState;

pub use writers::Writer;

use crate::{Context, Result, bail};

/// The board whose layout the disk follows.
const BOARD: &str = "qemu-imx8mp";
/// Size of the SD image.
const DISK: usize = 8 << 20;
/// Load address of the test FITs (the qemu-imx8mp FIT window).
const FIT_LOAD: u32 = 0x4400_0000;
/// Entry of the test SPLs.
const SPL_ENTRY: u32 = 0x7E_1000;

/// A starting state of the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// Both copies hold the running image v1 behind a valid SIT; slot 1 booted.
    Healthy,
    /// The primary's FIT is corrupt (one byte), its IVT intact; slot 2 booted v1.
    FitCorrupt,
    /// The primary's IVT (its first 32 bytes) is zeroed, as `ubootctl`'s invalidation leaves
    /// it; slot 2 booted v1.
    IvtZeroed,
    /// The primary's whole first 512-byte block is zeroed; slot 2 booted v1.
    FirstBlockZeroed,
}

impl Start {
    /// All three, in table order.
    pub const ALL: [Start; 4] = [
        Start::Healthy,
        Start::FitCorrupt,
        Start::IvtZeroed,
        Start::FirstBlockZeroed,
    ];

    /// The table's name.
    pub fn name(self) -> &'static str {
        match self {
            Start::Healthy => "healthy",
            Start::FitCorrupt => "primary FIT corrupt, IVT intact",
            Start::IvtZeroed => "primary IVT zeroed",
            Start::FirstBlockZeroed => "primary first 512 bytes zeroed",
        }
    }
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct Row {
    /// The writer.
    pub writer: Writer,
    /// The starting state.
    pub start: Start,
    /// Write calls to the device (cut points: after each one).
    pub cut_points: usize,
    /// Cut points judged (all of them, or a sample with `quick`).
    pub judged: usize,
    /// Real power cuts (SIGKILL at the k-th write call) whose device bytes matched the replay.
    pub real_cuts: usize,
    /// Judged states in which nothing boots.
    pub no_bootable: usize,
    /// Judged states in which something boots, but every bootable copy holds an image that
    /// was never booted.
    pub only_never_booted: usize,
}

/// Options of the comparison.
#[derive(Debug, Clone)]
pub struct Options {
    /// Scratch directory.
    pub out: PathBuf,
    /// Judge a sample of the cut points (every one near the start and end of the run, and
    /// about 200 spread over it) instead of all of them.
    pub quick: bool,
    /// The `ubootctl` binary.
    pub ubootctl: PathBuf,
}

/// Builds the `ubootctl` binary (debug profile) and returns its path.
pub fn build_ubootctl() -> Result<PathBuf> {
    let o = crate::firmware::cargo()
        .args(["build", "-p", "ubootctl", "--bin", "ubootctl"])
        .output()
        .context("cannot run cargo build -p ubootctl")?;
    if !o.status.success() {
        bail!(
            "cargo build -p ubootctl failed:\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(crate::workspace_root().join("target/debug/ubootctl"))
}

/// The images and fuses of the comparison.
struct Images {
    v1: Vec<u8>,
    v2: Vec<u8>,
    fuses: Fuses,
    board: &'static boards::Board,
    v1_identity: [u8; 32],
}

fn images() -> Images {
    let board = boards::by_name(BOARD).expect("the board exists");
    let pki: &Pki = test_images::pki("powercut-compare");
    let version = |v: u8| {
        let code: Vec<u8> = (0..0x30000usize)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(v))
            .collect();
        let spl = test_images::signed_spl(SPL_ENTRY - 0x40, &code, pki, &test_images::options());
        let fit = test_images::signed(&test_images::standard_fit(v), FIT_LOAD, pki);
        test_images::flash_bin(&spl, board.media.fit_offset, &fit)
    };
    let fuses = Fuses {
        sec_config: Fuses::SEC_CONFIG_CLOSED,
        ..Fuses::open_with(pki.srk_hash().expect("the SRK hash"))
    };
    let v1 = version(1);
    let v1_identity =
        boot_core::examine::flash_bin_identity(&v1, board.media.fit_offset).expect("a flash.bin");
    Images {
        v1,
        v2: version(2),
        fuses,
        board,
        v1_identity,
    }
}

/// The starting bytes of the device.
fn start_disk(img: &Images, start: Start) -> Result<Vec<u8>> {
    let m = &img.board.media;
    let mut disk = vec![0u8; DISK];
    let sit = imx_hab::sit::build_sector(m.standard_first_sector);
    let put = |disk: &mut Vec<u8>, at: u64, b: &[u8]| {
        disk[at as usize..at as usize + b.len()].copy_from_slice(b)
    };
    put(&mut disk, m.sit_offset(), &sit);
    put(&mut disk, m.primary_offset(), &img.v1);
    put(
        &mut disk,
        ubootctl::media::standard_secondary_offset(m),
        &img.v1,
    );
    let p = m.primary_offset() as usize;
    match start {
        Start::Healthy => {}
        // A byte of the FIT's image data, well after its header: the FIT still parses, its
        // signature fails.
        Start::FitCorrupt => disk[p + m.fit_offset as usize + 0x2000] ^= 0x5A,
        Start::IvtZeroed => disk[p..p + 32].fill(0),
        Start::FirstBlockZeroed => disk[p..p + 512].fill(0),
    }
    // The state must be what it says.
    let st = judge(&disk, img)?;
    let expect_slot = if start == Start::Healthy {
        Slot::Primary
    } else {
        Slot::Secondary
    };
    if st.slot != Some(expect_slot) {
        bail!("{}: the shim would boot {:?}", start.name(), st.slot);
    }
    Ok(disk)
}

/// What the shim's judgement says of one state.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Judged {
    /// The slot the next boot takes.
    slot: Option<Slot>,
    /// The identities of the copies that can boot (primary, then secondary behind a valid SIT).
    bootable: Vec<[u8; 32]>,
}

fn judge(disk: &[u8], img: &Images) -> Result<Judged> {
    let dev = MemDevice::from_bytes(disk.to_vec());
    let st = MediaState::read(&dev, img.board, &img.fuses)
        .map_err(|e| crate::Error::msg(format!("judging a state: {e}")))?;
    let mut bootable = Vec::new();
    if let Ok(i) = &st.primary.judgement {
        bootable.push(i.identity);
    }
    if st.fallback_ok()
        && let Ok(i) = &st.secondary.judgement
    {
        bootable.push(i.identity);
    }
    Ok(Judged {
        slot: st.decision().slot,
        bootable,
    })
}

/// Which cut points to judge: all, or with `quick` the first and last 16 and about 200 spread
/// evenly.
fn cut_points(n: usize, quick: bool) -> Vec<usize> {
    if !quick || n <= 232 {
        return (1..=n).collect();
    }
    let stride = n.div_ceil(200);
    (1..=n)
        .filter(|k| *k <= 16 || *k > n - 16 || k % stride == 0)
        .collect()
}

/// Replays `writes` on `start` and judges the state after each cut point of `ks` (sorted),
/// on two threads.
fn sweep(
    start: &[u8],
    writes: &[trace::Write],
    ks: &[usize],
    img: &Images,
) -> Result<(usize, usize)> {
    let half = ks.len() / 2;
    let parts = [&ks[..half], &ks[half..]];
    let results: Vec<Result<(usize, usize)>> = std::thread::scope(|s| {
        let handles: Vec<_> = parts
            .iter()
            .map(|part| {
                s.spawn(move || {
                    let mut disk = start.to_vec();
                    let mut applied = 0;
                    let (mut none, mut never) = (0, 0);
                    for &k in part.iter() {
                        while applied < k {
                            apply(&mut disk, &writes[applied])?;
                            applied += 1;
                        }
                        let j = judge(&disk, img)?;
                        if j.slot.is_none() {
                            none += 1;
                        } else if !j.bootable.contains(&img.v1_identity) {
                            never += 1;
                        }
                    }
                    Ok((none, never))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(crate::Error::msg("a sweep thread panicked")))
            })
            .collect()
    });
    let mut total = (0, 0);
    for r in results {
        let (a, b) = r?;
        total.0 += a;
        total.1 += b;
    }
    Ok(total)
}

fn apply(disk: &mut [u8], w: &trace::Write) -> Result<()> {
    let end = w.offset as usize + w.data.len();
    if end > disk.len() {
        // A file grows when written past its end; the device does not: refuse.
        bail!(
            "a write at {:#x}+{:#x} is past the device end",
            w.offset,
            w.data.len()
        );
    }
    disk[w.offset as usize..end].copy_from_slice(&w.data);
    Ok(())
}

/// Runs the comparison: every writer from every starting state. Needs root (RAUC mounts its
/// bundles), strace, rauc, dbus-run-session, openssl.
pub fn run(opts: &Options) -> Result<Vec<Row>> {
    let img = images();
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let dir = std::fs::canonicalize(&opts.out)?;
    let work = writers::Work {
        dir,
        ubootctl: std::fs::canonicalize(&opts.ubootctl)
            .with_context(|| format!("no ubootctl at {}", opts.ubootctl.display()))?,
    };
    writers::prepare(&work, &img.v2, BOARD)?;
    std::fs::write(work.dir.join("srk.bin"), img.fuses.srk_hash)?;
    let mut rows = Vec::new();
    for start in Start::ALL {
        let disk = start_disk(&img, start)?;
        // The boot cell the shim leaves after booting this disk, for ubootctl's running slot.
        let dev = MemDevice::from_bytes(disk.clone());
        let record = MediaState::read(&dev, img.board, &img.fuses)
            .map_err(|e| crate::Error::msg(e.to_string()))?
            .outcome
            .record;
        let mut mem = vec![0u8; img.board.cell_addr as usize];
        mem.extend_from_slice(&record.encode());
        std::fs::write(work.dir.join("mem.bin"), mem)?;
        for writer in Writer::ALL {
            std::fs::write(work.disk(), &disk)?;
            let writes = writers::trace_writer(&work, writer)
                .map_err(|e| e.context(format!("{} from {}", writer.name(), start.name())))?;
            let after = std::fs::read(work.disk())?;
            let mut replay = disk.clone();
            for w in &writes {
                apply(&mut replay, w)?;
            }
            if replay != after {
                bail!(
                    "{} from {}: replaying the {} traced write calls does not give the bytes the writer left",
                    writer.name(),
                    start.name(),
                    writes.len()
                );
            }
            let real_cuts = real_cuts(&work, writer, &disk, &writes, opts.quick)
                .map_err(|e| e.context(format!("{} from {}", writer.name(), start.name())))?;
            let ks = cut_points(writes.len(), opts.quick);
            let (no_bootable, only_never_booted) = sweep(&disk, &writes, &ks, &img)?;
            let row = Row {
                writer,
                start,
                cut_points: writes.len(),
                judged: ks.len(),
                real_cuts,
                no_bootable,
                only_never_booted,
            };
            eprintln!(
                "powercut-compare: {:<32} {:<32} {:>5} cut points ({} judged, {} cut for real): {} with no bootable copy, {} with only a never-booted one",
                writer.name(),
                start.name(),
                row.cut_points,
                row.judged,
                row.real_cuts,
                row.no_bootable,
                row.only_never_booted
            );
            rows.push(row);
        }
    }
    Ok(rows)
}

/// Checks the replay against real power cuts: the writer killed (SIGKILL, by strace's syscall
/// injection) on entering its k-th write call must leave exactly the starting bytes plus the
/// first k - 1 recorded calls. AN12900's `dd`s are two processes, whose calls strace counts
/// separately: they are cut inside the first `dd` only.
fn real_cuts(
    work: &writers::Work,
    writer: Writer,
    start: &[u8],
    writes: &[trace::Write],
    quick: bool,
) -> Result<usize> {
    let n = match writer {
        Writer::An12900Dd => writes.len().min(2048),
        _ => writes.len(),
    };
    let mut ks = vec![n.div_ceil(2).max(1)];
    if !quick {
        ks.extend([1, n]);
        ks.dedup();
    }
    for &k in &ks {
        std::fs::write(work.disk(), start)?;
        writers::cut_writer(work, writer, k)?;
        let after = std::fs::read(work.disk())?;
        let mut replay = start.to_vec();
        for w in &writes[..k - 1] {
            apply(&mut replay, w)?;
        }
        if after != replay {
            bail!(
                "a real power cut at write call {k} left other bytes than the replay of {} calls",
                k - 1
            );
        }
    }
    Ok(ks.len())
}

/// The table, as Markdown.
pub fn table(rows: &[Row]) -> String {
    let mut s = String::from(
        "| writer | starting state | cut points | no bootable copy | only bootable copy never booted |\n|---|---|---:|---:|---:|\n",
    );
    for r in rows {
        let sampled = if r.judged < r.cut_points {
            format!(" ({} judged)", r.judged)
        } else {
            String::new()
        };
        s.push_str(&format!(
            "| {} | {} | {}{sampled} | {} | {} |\n",
            r.writer.name(),
            r.start.name(),
            r.cut_points,
            r.no_bootable,
            r.only_never_booted
        ));
    }
    s
}
