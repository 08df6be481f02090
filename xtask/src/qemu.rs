//! Runs the QEMU contract (issue 4 item 6) and watches it: UART2 on stdout line by line (the
//! shim's defmt frames decoded with its ELF, [`crate::console`]), a hard timeout, marker lines,
//! the boot cell read over QMP.
//!
//! ```text
//! qemu-system-aarch64 -M imx8mp-evk -m 1G -smp 1 -display none -serial null -serial stdio
//!   -semihosting-config enable=on,target=native
//!   -device loader,file=fuses.bin,addr=0x900000,force-raw=on
//!   -device loader,file=ROM-MODEL.elf,cpu-num=0 -drive if=sd,bus=1,file=disk.img,format=raw
//!   -qmp unix:PATH,server=on,wait=off [extra args]
//! ```
//!
//! QEMU starts the ROM model (`test-firmware`'s `rom-model`, design.md §5.1) at every reset: it
//! loads the SPL the card holds and starts it, so the shim always runs from the card's bytes.
//! When no SPL can be started the model prints [`ROM_SERIAL_DOWNLOAD`] and stops
//! ([`SimOutcome::serial_download`]).
//!
//! A guest that ends through semihosting takes QEMU with it, and memory cannot be read after
//! that. To get both the cell and the UART, wait for a marker line the guest prints *before* it
//! exits ([`Qemu::wait_for_marker`]), pause the VM and read the cell ([`Qemu::read_cell`]); the
//! guest should leave some time (≥ 100 ms) between that line and its exit, or wait for ever.
//! [`Stop`] packages the usual sequences for [`run`].

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::qmp::Qmp;
use crate::{Context, Error, Result, bail};

/// Oldest QEMU with `imx8mp-evk`.
pub const MIN_QEMU_VERSION: (u32, u32) = (9, 2);
/// Where `fuses.bin` is loaded (boards `FuseSource::SimulatedBlock`).
pub const FUSES_ADDR: u64 = 0x0090_0000;
/// The boot cell (boards `qemu_imx8mp::BOARD.cell_addr`).
pub const CELL_ADDR: u64 = boards::qemu_imx8mp::BOARD.cell_addr;
/// Bytes of the cell.
pub const CELL_SIZE: usize = boot_core::cell::CELL_SIZE;
/// Default hard timeout of a run.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What to do when QEMU does not run.
pub const INSTALL_HINT: &str = "every QEMU run uses our QEMU 10.0.2 build \
    (target/thirdparty/qemu, built by `cargo xtask qemu` and on first use; its build \
    dependencies come from .ci/setup); XTASK_QEMU names another binary";

/// The QEMU binary to run: `$XTASK_QEMU` if set, else our build
/// ([`crate::thirdparty::qemu::binary`]; [`check_qemu`] builds it when it is missing).
pub fn qemu_binary() -> PathBuf {
    std::env::var_os("XTASK_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(crate::thirdparty::qemu::binary)
}

/// Parses `QEMU emulator version 10.0.2 (...)` into (10, 0, 2).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let rest = text.split("version").nth(1)?.trim_start();
    let v: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((
        parts.next()??,
        parts.next()??,
        parts.next().flatten().unwrap_or(0),
    ))
}

/// Checks that `qemu` runs and is at least [`MIN_QEMU_VERSION`]; returns its version. Our
/// build ([`qemu_binary`] without `XTASK_QEMU`) is built first, once, if needed.
pub fn check_qemu(qemu: &Path) -> Result<(u32, u32, u32)> {
    if std::env::var_os("XTASK_QEMU").is_none() && qemu == crate::thirdparty::qemu::binary() {
        crate::thirdparty::qemu::ensure()?;
    }
    let out = Command::new(qemu)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error::msg(format!(
                "cannot run {}: {e}; {INSTALL_HINT}",
                qemu.display()
            ))
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let Some(v) = parse_version(&text) else {
        bail!(
            "cannot read the version of {} from {text:?}; {INSTALL_HINT}",
            qemu.display()
        );
    };
    if (v.0, v.1) < MIN_QEMU_VERSION {
        bail!(
            "{} is QEMU {}.{}.{}, older than {}.{}; {INSTALL_HINT}",
            qemu.display(),
            v.0,
            v.1,
            v.2,
            MIN_QEMU_VERSION.0,
            MIN_QEMU_VERSION.1
        );
    }
    Ok(v)
}

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// The QEMU binary ([`qemu_binary`]).
    pub qemu: PathBuf,
    /// The firmware QEMU starts at every reset (`-device loader,file=ROM.elf,cpu-num=0`): the
    /// ROM model, which loads the SPL from the card; the harness's own self-tests pass other
    /// firmware.
    pub rom: PathBuf,
    /// The shim ELF whose defmt table decodes its log frames ([`crate::console`]); QEMU does
    /// not load it (the ROM model starts the SPL from the card). `None`: the UART is text.
    pub log_elf: Option<PathBuf>,
    /// The 64-byte fuse block (loaded at 0x900000).
    pub fuses: PathBuf,
    /// The SD image (`-drive if=sd,bus=1`). QEMU writes through to it: pass a copy.
    pub disk: PathBuf,
    /// The eMMC on uSDHC3 ([`crate::emmc::EmmcAttach`]), if attached; the SD card stays on
    /// bus 1.
    pub emmc: Option<crate::emmc::EmmcAttach>,
    /// `-m` (the contract: `1G`).
    pub memory: String,
    /// Arguments appended after the contract (more `-device loader`, `-d unimp`, …).
    pub extra_args: Vec<String>,
    /// Echo each UART line live to stdout with this prefix (the demo), or not at all.
    pub echo: Option<String>,
    /// Hard limit for the whole run.
    pub timeout: Duration,
}

impl SimConfig {
    /// The contract with these files, no echo, [`DEFAULT_TIMEOUT`].
    pub fn new(
        rom: impl Into<PathBuf>,
        fuses: impl Into<PathBuf>,
        disk: impl Into<PathBuf>,
    ) -> Self {
        SimConfig {
            qemu: qemu_binary(),
            rom: rom.into(),
            log_elf: None,
            fuses: fuses.into(),
            disk: disk.into(),
            emmc: None,
            memory: "1G".into(),
            extra_args: Vec::new(),
            echo: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The command-line arguments (without the binary) with the QMP socket at `qmp_socket`.
    pub fn args(&self, qmp_socket: &Path) -> Vec<String> {
        // QEMU option values escape a comma by doubling it.
        let p = |path: &Path| path.display().to_string().replace(',', ",,");
        let mut a = machine_args(&self.memory);
        a.push("-device".into());
        a.push(format!(
            "loader,file={},addr={FUSES_ADDR:#x},force-raw=on",
            p(&self.fuses)
        ));
        a.push("-device".into());
        a.push(format!("loader,file={},cpu-num=0", p(&self.rom)));
        a.push("-drive".into());
        a.push(format!("if=sd,bus=1,file={},format=raw", p(&self.disk)));
        if let Some(e) = &self.emmc {
            a.extend(e.args());
        }
        a.push("-qmp".into());
        a.push(format!("unix:{},server=on,wait=off", p(qmp_socket)));
        a.extend(self.extra_args.iter().cloned());
        a
    }
}

/// The machine part of the simulation contract, shared by every run of a firmware image:
/// `-M imx8mp-evk -m MEMORY -smp 1 -display none -serial null -serial stdio
/// -semihosting-config enable=on,target=native` (UART2 on stdio, docs/qemu-imx8mp.md §3, §7).
pub fn machine_args(memory: &str) -> Vec<String> {
    [
        "-M",
        "imx8mp-evk",
        "-m",
        memory,
        "-smp",
        "1",
        "-display",
        "none",
        "-serial",
        "null",
        "-serial",
        "stdio",
        "-semihosting-config",
        "enable=on,target=native",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimOutcome {
    /// QEMU's exit status, if it exited on its own (semihosting exit code, power-off…); `None`
    /// when the harness had to quit or kill it.
    pub exit_status: Option<ExitStatus>,
    /// Everything UART2 printed, lines joined with `\n` (CR removed); the shim's defmt frames
    /// decoded ([`crate::console`]).
    pub uart: String,
    /// What the bytes on UART2 were.
    pub uart_stats: UartStats,
    /// What QEMU wrote to stderr.
    pub stderr: String,
    /// The cell bytes, if they could be read over QMP.
    pub cell: Option<[u8; CELL_SIZE]>,
    /// Whether the hard timeout expired.
    pub timed_out: bool,
    /// Whether the marker (if any) was seen.
    pub marker_seen: bool,
    /// Wall-clock time from start to the end of the run.
    pub wall: Duration,
}

impl SimOutcome {
    /// Whether the ROM model found no SPL it could start: the ROM's serial-download outcome.
    pub fn serial_download(&self) -> bool {
        self.uart_has(ROM_SERIAL_DOWNLOAD)
    }

    /// The exit code, if QEMU exited on its own with one.
    pub fn exit_code(&self) -> Option<i32> {
        self.exit_status.and_then(|s| s.code())
    }

    /// Whether UART2 printed a line containing `text`.
    pub fn uart_has(&self, text: &str) -> bool {
        self.uart.lines().any(|l| l.contains(text))
    }

    /// The shim's decoded defmt lines ([`crate::console::decoded`]), in order.
    pub fn shim_lines(&self) -> Vec<crate::console::Decoded<'_>> {
        self.uart
            .lines()
            .filter_map(crate::console::decoded)
            .collect()
    }

    /// Whether the shim logged a decoded defmt line at `level` (`INFO`, `WARN`, `ERROR`) whose
    /// message starts with `message`.
    pub fn shim_logged(&self, level: &str, message: &str) -> bool {
        self.shim_lines()
            .iter()
            .any(|d| d.level == level && d.message.starts_with(message))
    }

    /// The cell decoded (`boot_core::cell::decode`), if it was read.
    pub fn decoded_cell(&self) -> Option<boot_core::cell::Cell> {
        self.cell.and_then(|c| boot_core::cell::decode(&c).ok())
    }

    /// The cell's slot word (word 0), if the cell was read.
    pub fn slot_word(&self) -> Option<u32> {
        self.cell
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
    }
}

/// Bytes and frames on UART2 ([`crate::console::Console`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UartStats {
    /// Whether the shim's log was decoded as defmt (its ELF has a table).
    pub defmt: bool,
    /// defmt frames decoded.
    pub frames: u64,
    /// Every byte received.
    pub total_bytes: u64,
    /// Bytes of the shim's log (through its handoff or halt line).
    pub shim_bytes: u64,
}

/// What [`Qemu::wait_for_marker`] ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkerWait {
    /// A line containing the marker: the whole line.
    Seen(String),
    /// QEMU exited first.
    Exited,
    /// The run's deadline passed.
    TimedOut,
}

/// A running QEMU under the contract.
#[derive(Debug)]
pub struct Qemu {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    uart: Arc<Mutex<String>>,
    stats: Arc<Mutex<UartStats>>,
    stderr: Arc<Mutex<String>>,
    qmp: Option<Qmp>,
    qmp_socket: PathBuf,
    _dir: tempfile::TempDir,
    started: Instant,
    deadline: Instant,
    exit_status: Option<ExitStatus>,
    timed_out: bool,
}

impl Qemu {
    /// Checks the QEMU version, checks the files exist, starts QEMU and connects QMP.
    pub fn start(config: &SimConfig) -> Result<Self> {
        check_qemu(&config.qemu)?;
        for (what, p) in [
            ("ROM model ELF", &config.rom),
            ("fuse block", &config.fuses),
            ("disk image", &config.disk),
        ] {
            if !p.is_file() {
                bail!("{what} {} does not exist", p.display());
            }
        }
        let dir = tempfile::Builder::new()
            .prefix("xtask-qemu")
            .tempdir()
            .context("temporary directory for the QMP socket")?;
        let qmp_socket = dir.path().join("qmp.sock");
        // The ROM model's text comes first; the shim's frames follow its delimiter.
        let mut console = match &config.log_elf {
            Some(elf) => crate::console::Console::for_elf(elf)?.text_first(),
            None => crate::console::Console::text(),
        };
        let mut cmd = Command::new(&config.qemu);
        cmd.args(config.args(&qmp_socket))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .with_context(|| format!("starting {}", config.qemu.display()))?;
        let uart = Arc::new(Mutex::new(String::new()));
        let stats = Arc::new(Mutex::new(UartStats::default()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, lines) = channel();
        let out = child.stdout.take().expect("piped stdout");
        let (u, st, echo) = (Arc::clone(&uart), Arc::clone(&stats), config.echo.clone());
        std::thread::spawn(move || {
            let mut r = out;
            let mut buf = [0u8; 4096];
            loop {
                let n = r.read(&mut buf).unwrap_or(0);
                let lines = if n == 0 {
                    console.finish().into_iter().collect()
                } else {
                    console.feed(&buf[..n])
                };
                if let Ok(mut s) = st.lock() {
                    *s = UartStats {
                        defmt: console.is_defmt(),
                        frames: console.frames(),
                        total_bytes: console.total_bytes(),
                        shim_bytes: console.shim_bytes(),
                    };
                }
                for line in lines {
                    if let Some(prefix) = &echo {
                        println!("{prefix}{line}");
                    }
                    if let Ok(mut s) = u.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                    if tx.send(line).is_err() {
                        // Nobody listens any more; keep collecting the log.
                    }
                }
                if n == 0 {
                    break;
                }
            }
        });
        let err = child.stderr.take().expect("piped stderr");
        let e = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(err).read_to_string(&mut text);
            if let Ok(mut s) = e.lock() {
                s.push_str(&text);
            }
        });
        let stdin = child.stdin.take();
        let mut q = Qemu {
            child,
            stdin,
            lines,
            uart,
            stats,
            stderr,
            qmp: None,
            qmp_socket,
            _dir: dir,
            started,
            deadline: started + config.timeout,
            exit_status: None,
            timed_out: false,
        };
        q.connect_qmp();
        if q.qmp.is_none() && q.poll_exit().is_some() {
            std::thread::sleep(Duration::from_millis(50));
            let err = q.stderr();
            if !err.trim().is_empty() {
                bail!("QEMU exited at start: {}", err.trim());
            }
        }
        Ok(q)
    }

    /// Connects QMP if not yet connected and QEMU still runs (best effort).
    fn connect_qmp(&mut self) {
        if self.qmp.is_some() {
            return;
        }
        let deadline = (Instant::now() + Duration::from_secs(10)).min(self.deadline);
        let child = &mut self.child;
        let mut alive = || matches!(child.try_wait(), Ok(None));
        self.qmp = Qmp::connect(&self.qmp_socket, deadline, &mut alive).ok();
    }

    fn poll_exit(&mut self) -> Option<ExitStatus> {
        if self.exit_status.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.exit_status = Some(s);
        }
        self.exit_status
    }

    /// Whether QEMU has exited.
    pub fn has_exited(&mut self) -> bool {
        self.poll_exit().is_some()
    }

    /// UART2 output so far.
    pub fn uart(&self) -> String {
        self.uart.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Bytes and frames on UART2 so far.
    pub fn uart_stats(&self) -> UartStats {
        self.stats.lock().map(|s| *s).unwrap_or_default()
    }

    /// QEMU's stderr so far (complete once it exited).
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Time since start.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Waits until a UART line contains `marker`, QEMU exits, or the deadline passes. Every
    /// line is looked at once: lines printed before the call count unless an earlier wait
    /// already went past them (so after a reset, waiting again finds the next occurrence).
    pub fn wait_for_marker(&mut self, marker: &str) -> MarkerWait {
        self.wait_for_any(&[marker]).1
    }

    /// Waits until a UART line contains one of `markers`, QEMU exits, or the deadline passes;
    /// returns the index of the marker seen (with [`MarkerWait::Seen`]). Lines are consumed as
    /// in [`Qemu::wait_for_marker`].
    pub fn wait_for_any(&mut self, markers: &[&str]) -> (Option<usize>, MarkerWait) {
        let find = |line: &str| markers.iter().position(|m| line.contains(m));
        // Lines already queued first, so that the first marker in order wins.
        while let Ok(line) = self.lines.try_recv() {
            if let Some(i) = find(&line) {
                return (Some(i), MarkerWait::Seen(line));
            }
        }
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                self.timed_out = true;
                return (None, MarkerWait::TimedOut);
            }
            match self
                .lines
                .recv_timeout((self.deadline - now).min(Duration::from_millis(100)))
            {
                Ok(line) => {
                    if let Some(i) = find(&line) {
                        return (Some(i), MarkerWait::Seen(line));
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    // stdout closed and every line consumed: QEMU is gone. Reap it.
                    let until = Instant::now() + Duration::from_secs(5);
                    while self.poll_exit().is_none() && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    return (None, MarkerWait::Exited);
                }
            }
        }
    }

    /// Sends bytes to UART2's receiver (QEMU's stdin), e.g. the key the test payload waits
    /// for before it exits.
    pub fn send_uart(&mut self, bytes: &[u8]) -> Result<()> {
        let stdin = self
            .stdin
            .as_mut()
            .ok_or_else(|| Error::msg("QEMU's stdin is closed"))?;
        stdin.write_all(bytes)?;
        stdin.flush()?;
        Ok(())
    }

    /// Waits until QEMU exits or the deadline passes; returns the exit status if it exited.
    pub fn wait_exit(&mut self) -> Option<ExitStatus> {
        loop {
            if let Some(s) = self.poll_exit() {
                return Some(s);
            }
            let now = Instant::now();
            if now >= self.deadline {
                self.timed_out = true;
                return None;
            }
            match self
                .lines
                .recv_timeout((self.deadline - now).min(Duration::from_millis(50)))
            {
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }

    fn qmp(&mut self) -> Result<&mut Qmp> {
        if self.poll_exit().is_some() {
            bail!("QEMU has exited: guest memory can no longer be read");
        }
        self.connect_qmp();
        self.qmp
            .as_mut()
            .ok_or_else(|| Error::msg("no QMP connection to QEMU"))
    }

    /// Pauses the guest (QMP `stop`): it cannot exit while memory is read.
    pub fn pause(&mut self) -> Result<()> {
        self.qmp()?.stop()
    }

    /// Resumes a paused guest (QMP `cont`).
    pub fn resume(&mut self) -> Result<()> {
        self.qmp()?.cont()
    }

    /// Reads guest physical memory.
    pub fn read_memory(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        self.qmp()?.read_physical(addr, len)
    }

    /// Pauses the guest and reads the cell at [`CELL_ADDR`]. The guest stays paused
    /// ([`Qemu::resume`] to continue).
    pub fn read_cell(&mut self) -> Result<[u8; CELL_SIZE]> {
        self.pause()?;
        let bytes = self.read_memory(CELL_ADDR, CELL_SIZE)?;
        let mut cell = [0u8; CELL_SIZE];
        cell.copy_from_slice(&bytes);
        Ok(cell)
    }

    /// Direct access to the QMP session (events, HMP, reset).
    pub fn qmp_session(&mut self) -> Result<&mut Qmp> {
        self.qmp()
    }

    /// Ends the run: asks QEMU to quit over QMP if it still runs (kills it if that fails), reaps
    /// it and collects the outcome. `cell` is whatever the caller read before.
    pub fn finish(mut self, cell: Option<[u8; CELL_SIZE]>, marker_seen: bool) -> SimOutcome {
        let exited_by_itself = self.poll_exit();
        if exited_by_itself.is_none() {
            if let Some(q) = self.qmp.as_mut() {
                let _ = q.quit();
            }
            let until = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if self.child.try_wait().ok().flatten().is_none() {
                let _ = self.child.kill();
                let _ = self.child.wait();
            }
        }
        let wall = self.started.elapsed();
        // Let the reader threads drain the pipes.
        let until = Instant::now() + Duration::from_secs(2);
        while Instant::now() < until {
            match self.lines.recv_timeout(Duration::from_millis(20)) {
                Err(RecvTimeoutError::Disconnected) => break,
                _ => continue,
            }
        }
        std::thread::sleep(Duration::from_millis(20));
        SimOutcome {
            exit_status: exited_by_itself,
            uart: self.uart(),
            uart_stats: self.uart_stats(),
            stderr: self.stderr(),
            cell,
            timed_out: self.timed_out,
            marker_seen,
            wall,
        }
    }
}

impl Drop for Qemu {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// When [`run`] stops and reads the cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stop {
    /// Run until QEMU exits on its own. On timeout the cell is read and QEMU is quit; after
    /// an exit there is no cell.
    Exit,
    /// Run until a UART line contains the marker, then pause, read the cell and quit. On
    /// timeout the cell is read too; if QEMU exits first there is no cell.
    Marker(String),
    /// As [`Stop::Marker`], then resume the guest and wait for QEMU to exit (both the cell and
    /// the exit code, if the guest leaves time between the marker and its exit).
    MarkerThenExit(String),
    /// The simulation's boot: wait for the test payload's [`PAYLOAD_READY`] line or one of the
    /// shim's [`SHIM_HALT_MARKERS`]. On the payload line: pause, read the cell, resume, send a
    /// key ([`Qemu::send_uart`]) and wait for the payload's semihosting exit (exit code = the
    /// slot it read). On a halt line or a timeout: read the cell and quit.
    Boot,
}

/// The line the test payload prints when it waits for a key before exiting.
pub const PAYLOAD_READY: &str = "payload: press a key to exit";
/// The ROM model's line when no SPL can be started (the ROM's serial-download fallback).
pub const ROM_SERIAL_DOWNLOAD: &str = "rom: serial download";
/// Lines after which the shim (or the ROM model before it) stops without handing off.
pub const SHIM_HALT_MARKERS: &[&str] = &[
    "shim: nothing bootable",
    "shim: panic",
    "shim: board error",
    ROM_SERIAL_DOWNLOAD,
    "rom: panic",
];

/// Runs the contract once (see [`Stop`]).
pub fn run(config: &SimConfig, stop: &Stop) -> Result<SimOutcome> {
    let mut q = Qemu::start(config)?;
    let (cell, seen) = match stop {
        Stop::Exit => match q.wait_exit() {
            Some(_) => (None, false),
            None => (q.read_cell().ok(), false),
        },
        Stop::Marker(m) => match q.wait_for_marker(m) {
            MarkerWait::Seen(_) => (q.read_cell().ok(), true),
            MarkerWait::TimedOut => (q.read_cell().ok(), false),
            MarkerWait::Exited => (None, false),
        },
        Stop::MarkerThenExit(m) => match q.wait_for_marker(m) {
            MarkerWait::Seen(_) => {
                let cell = q.read_cell().ok();
                if cell.is_some() {
                    q.resume()?;
                }
                q.wait_exit();
                (cell, true)
            }
            MarkerWait::TimedOut => (q.read_cell().ok(), false),
            MarkerWait::Exited => (None, false),
        },
        Stop::Boot => {
            let mut markers = vec![PAYLOAD_READY];
            markers.extend_from_slice(SHIM_HALT_MARKERS);
            match q.wait_for_any(&markers) {
                (Some(0), MarkerWait::Seen(_)) => {
                    let cell = q.read_cell().ok();
                    if cell.is_some() {
                        q.resume()?;
                    }
                    q.send_uart(b"x")?;
                    q.wait_exit();
                    (cell, true)
                }
                (_, MarkerWait::Seen(_)) => (q.read_cell().ok(), true),
                (_, MarkerWait::TimedOut) => (q.read_cell().ok(), false),
                (_, MarkerWait::Exited) => (None, false),
            }
        }
    };
    Ok(q.finish(cell, seen))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firmware::{FlatImage, PlaceholderEnd, flat_to_elf, placeholder_payload};

    #[test]
    fn versions() {
        assert_eq!(
            parse_version("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n"),
            Some((10, 0, 2))
        );
        assert_eq!(parse_version("QEMU emulator version 9.2"), Some((9, 2, 0)));
        assert_eq!(parse_version("nonsense"), None);
        let e = check_qemu(Path::new("/nonexistent/qemu-system-aarch64")).unwrap_err();
        assert!(e.message().contains("cargo xtask qemu"), "{e}");
    }

    #[test]
    fn contract_arguments() {
        let c = SimConfig::new("/t/rom-model", "/t/fuses.bin", "/t/a,b.img");
        let a = c.args(Path::new("/s/q.sock")).join(" ");
        assert_eq!(
            a,
            "-M imx8mp-evk -m 1G -smp 1 -display none -serial null -serial stdio \
             -semihosting-config enable=on,target=native \
             -device loader,file=/t/fuses.bin,addr=0x900000,force-raw=on \
             -device loader,file=/t/rom-model,cpu-num=0 \
             -drive if=sd,bus=1,file=/t/a,,b.img,format=raw \
             -qmp unix:/s/q.sock,server=on,wait=off"
        );
    }

    /// Files for a run of a placeholder "shim" (no real shim needed): returns the config.
    fn placeholder_run(dir: &Path, end: PlaceholderEnd) -> Option<SimConfig> {
        // CI installs QEMU (.ci/run): a missing one is a failure, not a skip.
        if let Err(e) = check_qemu(&qemu_binary()) {
            panic!("{e}");
        }
        let code = placeholder_payload("xtask qemu self-test: hello", end);
        let elf = dir.join("p.elf");
        std::fs::write(
            &elf,
            flat_to_elf(&FlatImage {
                load_addr: 0x0092_0000,
                entry: 0x0092_0000,
                bytes: code,
            }),
        )
        .unwrap();
        let fuses = dir.join("fuses.bin");
        std::fs::write(&fuses, [0xA5u8; 64]).unwrap();
        let disk = dir.join("sd.img");
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(1 << 20)
            .unwrap();
        let mut c = SimConfig::new(elf, fuses, disk);
        // Plant a recognisable cell word.
        c.extra_args = vec![
            "-device".into(),
            format!("loader,addr={CELL_ADDR:#x},data=0x12345678,data-len=4"),
        ];
        c.timeout = Duration::from_secs(20);
        Some(c)
    }

    #[test]
    fn marker_then_cell_over_qmp() {
        let dir = tempfile::tempdir().unwrap();
        let Some(c) = placeholder_run(dir.path(), PlaceholderEnd::Wait) else {
            return;
        };
        let out = run(&c, &Stop::Marker("self-test: hello".into())).unwrap();
        assert!(out.marker_seen, "{out:?}");
        assert!(out.uart_has("xtask qemu self-test: hello"));
        assert_eq!(out.slot_word(), Some(0x1234_5678));
        assert!(!out.timed_out);
        assert_eq!(out.exit_status, None);
    }

    #[test]
    fn semihosting_exit_code_and_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let Some(c) = placeholder_run(dir.path(), PlaceholderEnd::Exit(42)) else {
            return;
        };
        let out = run(&c, &Stop::Exit).unwrap();
        assert_eq!(out.exit_code(), Some(42), "{out:?}");
        assert!(out.uart_has("hello"));
        assert_eq!(out.cell, None);

        let Some(mut c) = placeholder_run(dir.path(), PlaceholderEnd::Wait) else {
            return;
        };
        c.timeout = Duration::from_secs(2);
        let out = run(&c, &Stop::Exit).unwrap();
        assert!(out.timed_out);
        assert_eq!(out.slot_word(), Some(0x1234_5678));
        assert!(out.wall < Duration::from_secs(10));
    }
}
