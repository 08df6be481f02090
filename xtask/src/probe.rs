//! `cargo xtask run --board B --probe`: the shim loaded into on-chip RAM (its image in TCM on the
//! 8M Mini, where the ROM would put it; BSS and stack in OCRAM) over a debug probe with the
//! `probe-rs` library, started on core 0, and its defmt log streamed from the board's console
//! UART ([`crate::console`]). The chip comes from a probe-rs chip description under
//! `boards/probe-rs/` (probe-rs has no i.MX 8M target; docs/crates.md §6).
//!
//! Only the offline parts are tested here (description, memory map, no probe): nobody has run
//! it against a board yet.

use std::io::Read;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use probe_rs_target::{ChipFamily, MemoryRegion};

use crate::{Context, Error, Result, workspace_root};

/// Boards with a chip description: (board, file under the workspace root, chip variant).
pub const CHIPS: &[(&str, &str, &str)] =
    &[("imx8mm-evk", "boards/probe-rs/MIMX8MM.yaml", "MIMX8MM6")];

/// Why `run --probe` did not start the shim. [`ProbeError::exit_code`]: 2 for usage and
/// environment errors (no probe, unknown board, unreadable files), 1 when the probe or the
/// target failed.
#[derive(Debug)]
pub enum ProbeError {
    /// Bad arguments or nothing to talk to.
    Usage(String),
    /// The probe, the target or the serial port failed.
    Failed(String),
}

impl ProbeError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            ProbeError::Usage(_) => 2,
            ProbeError::Failed(_) => 1,
        }
    }
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Usage(m) | ProbeError::Failed(m) => f.write_str(m),
        }
    }
}

/// The chip description of `board`: its path and the variant to attach to.
pub fn chip_for(board: &str) -> Option<(PathBuf, &'static str)> {
    CHIPS
        .iter()
        .find(|(b, _, _)| *b == board)
        .map(|(_, file, variant)| (workspace_root().join(file), *variant))
}

/// Parses a chip description with probe-rs's own types and its own validation
/// (`ChipFamily::validate`: cores, core access options, memory regions).
pub fn parse_family(yaml: &str) -> Result<ChipFamily> {
    let family: ChipFamily =
        yaml_serde::from_str(yaml).map_err(|e| Error::msg(format!("chip description: {e}")))?;
    family
        .validate()
        .map_err(|e| Error::msg(format!("chip description {}: {e}", family.name)))?;
    Ok(family)
}

/// The RAM regions of `variant` in `family`, by name.
pub fn ram_regions(family: &ChipFamily, variant: &str) -> Result<Vec<(String, Range<u64>)>> {
    let chip = family
        .variants
        .iter()
        .find(|c| c.name == variant)
        .ok_or_else(|| Error::msg(format!("{} has no variant {variant}", family.name)))?;
    Ok(chip
        .memory_map
        .iter()
        .filter_map(|r| match r {
            MemoryRegion::Ram(r) => Some((r.name.clone().unwrap_or_default(), r.range.clone())),
            _ => None,
        })
        .collect())
}

/// Checks the description's OCRAM and DRAM against the boards crate's memory map of `board`.
pub fn check_memory_map(family: &ChipFamily, variant: &str, board: &boards::Board) -> Result<()> {
    let regions = ram_regions(family, variant)?;
    let m = &board.memory;
    for (name, want) in [("OCRAM", m.ocram), ("DRAM", m.dram)] {
        let want = want.start..want.end();
        match regions.iter().find(|(n, _)| n == name) {
            Some((_, got)) if *got == want => {}
            Some((_, got)) => {
                return Err(Error::msg(format!(
                    "{variant} {name} is {got:#x?}, the boards crate says {want:#x?} ({})",
                    board.name
                )));
            }
            None => return Err(Error::msg(format!("{variant} has no {name} region"))),
        }
    }
    Ok(())
}

/// On-chip RAM regions: what a probe can load before DRAM is initialised.
pub const ON_CHIP: &[&str] = &["TCM", "OCRAM"];

/// Checks that every segment lies inside one on-chip RAM region ([`ON_CHIP`]) of `variant`.
pub fn check_on_chip(family: &ChipFamily, variant: &str, segments: &[Segment]) -> Result<()> {
    let regions = ram_regions(family, variant)?;
    for (addr, bytes) in segments {
        let end = addr.saturating_add(bytes.len() as u64);
        let inside = regions
            .iter()
            .any(|(name, r)| ON_CHIP.contains(&name.as_str()) && r.start <= *addr && end <= r.end);
        if !inside {
            return Err(Error::msg(format!(
                "segment {addr:#x}..{end:#x} is not in on-chip RAM ({})",
                ON_CHIP.join(", ")
            )));
        }
    }
    Ok(())
}

/// What to run.
#[derive(Debug, Clone)]
pub struct ProbeRun {
    /// Board name (`boards` crate).
    pub board: String,
    /// The shim ELF.
    pub elf: PathBuf,
    /// The board's console UART on this host (e.g. `/dev/ttyUSB0`).
    pub serial: PathBuf,
    /// How long to stream the log.
    pub duration: Duration,
}

/// A loadable segment: physical address and bytes.
pub type Segment = (u64, Vec<u8>);

/// The loadable segments of `elf` and its entry point.
pub fn load_segments(elf: &Path) -> Result<(Vec<Segment>, u64)> {
    use object::{Object, ObjectSegment};
    let data = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
    let file = object::File::parse(&*data)
        .map_err(|e| Error::msg(format!("{} is not an ELF file: {e}", elf.display())))?;
    let mut out = Vec::new();
    for seg in file.segments() {
        let bytes = seg
            .data()
            .map_err(|e| Error::msg(format!("{}: segment: {e}", elf.display())))?;
        if !bytes.is_empty() {
            out.push((seg.address(), bytes.to_vec()));
        }
    }
    Ok((out, file.entry()))
}

/// Loads and starts the shim over the first probe found, then prints its decoded log.
pub fn run(opts: &ProbeRun) -> std::result::Result<(), ProbeError> {
    use probe_rs::probe::list::Lister;
    use probe_rs::{MemoryInterface, Permissions};
    let usage = |m: String| ProbeError::Usage(m);
    let failed = |m: String| ProbeError::Failed(m);
    let board = boards::by_name(&opts.board)
        .ok_or_else(|| usage(format!("unknown board `{}`", opts.board)))?;
    let (path, variant) = chip_for(&opts.board).ok_or_else(|| {
        let known: Vec<&str> = CHIPS.iter().map(|c| c.0).collect();
        usage(format!(
            "no probe-rs chip description for board `{}` (boards with one: {})",
            opts.board,
            known.join(", ")
        ))
    })?;
    let yaml = std::fs::read_to_string(&path)
        .map_err(|e| usage(format!("cannot read {}: {e}", path.display())))?;
    parse_family(&yaml)
        .and_then(|f| check_memory_map(&f, variant, board))
        .map_err(|e| usage(e.to_string()))?;
    let (segments, entry) = load_segments(&opts.elf).map_err(|e| usage(e.to_string()))?;
    let family = parse_family(&yaml).map_err(|e| usage(e.to_string()))?;
    check_on_chip(&family, variant, &segments)
        .map_err(|e| usage(format!("{}: {e}", opts.elf.display())))?;
    let probes = Lister::new().list_all();
    let Some(info) = probes.first() else {
        return Err(usage(
            "no debug probe found: connect a JTAG probe that probe-rs drives (J-Link, \
             CMSIS-DAP v2, FTDI) to the board's JTAG header, check its USB permissions (udev \
             rules), then run again (README: bring-up over JTAG)"
                .to_string(),
        ));
    };
    eprintln!("xtask: probe {info}");
    let probe = info
        .open()
        .map_err(|e| failed(format!("cannot open probe {info}: {e}")))?;
    let mut registry = probe_rs::config::Registry::new();
    registry
        .add_target_family_from_yaml(&yaml)
        .map_err(|e| usage(format!("{}: {e}", path.display())))?;
    let mut session = probe
        .attach_with_registry(variant, Permissions::default(), &registry)
        .map_err(|e| failed(format!("cannot attach to {variant}: {e}")))?;
    let mut core = session
        .core(0)
        .map_err(|e| failed(format!("core 0: {e}")))?;
    core.halt(Duration::from_millis(500))
        .map_err(|e| failed(format!("cannot halt core 0: {e}")))?;
    for (addr, bytes) in &segments {
        core.write_8(*addr, bytes).map_err(|e| {
            failed(format!(
                "writing {:#x} bytes at {addr:#x}: {e}",
                bytes.len()
            ))
        })?;
    }
    let pc = core.program_counter();
    core.write_core_reg(pc, entry)
        .map_err(|e| failed(format!("setting the PC to {entry:#x}: {e}")))?;
    core.run()
        .map_err(|e| failed(format!("cannot start core 0: {e}")))?;
    eprintln!(
        "xtask: shim loaded ({} segments), core 0 started at {entry:#x}; log from {}:",
        segments.len(),
        opts.serial.display()
    );
    stream(&opts.elf, &opts.serial, opts.duration).map_err(|e| failed(e.to_string()))
}

/// Prints the decoded log read from the serial port `tty` (115200 8N1, raw) for `duration`.
fn stream(elf: &Path, tty: &Path, duration: Duration) -> Result<()> {
    let status = std::process::Command::new("stty")
        .arg("-F")
        .arg(tty)
        .args(["115200", "raw", "-echo", "min", "0", "time", "1"])
        .status()
        .context("running stty")?;
    if !status.success() {
        return Err(Error::msg(format!("stty cannot set up {}", tty.display())));
    }
    let mut port =
        std::fs::File::open(tty).with_context(|| format!("cannot open {}", tty.display()))?;
    let mut console = crate::console::Console::for_elf(elf)?;
    let end = Instant::now() + duration;
    let mut buf = [0u8; 256];
    while Instant::now() < end {
        let n = port
            .read(&mut buf)
            .with_context(|| format!("reading {}", tty.display()))?;
        for line in console.feed(&buf[..n]) {
            println!("{line}");
        }
    }
    Ok(())
}
