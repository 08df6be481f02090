//! A minimal QMP client over a Unix socket (docs/qemu-imx8mp.md §8): handshake, commands,
//! physical memory reads through `pmemsave`, `stop`/`cont`/`quit`.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Context, Error, Result, bail};

/// How long one QMP command may take before the client gives up.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected QMP session (capabilities negotiated).
#[derive(Debug)]
pub struct Qmp {
    writer: UnixStream,
    reader: BufReader<UnixStream>,
    /// Asynchronous events received so far (`{"event": ..., "data": ...}`), in order.
    pub events: Vec<Value>,
}

impl Qmp {
    /// Connects to `socket` and negotiates capabilities. Retries the connection until
    /// `deadline` while `alive()` says QEMU is still running (it creates the socket during
    /// start-up).
    pub fn connect(
        socket: &Path,
        deadline: Instant,
        mut alive: impl FnMut() -> bool,
    ) -> Result<Self> {
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(s) => break s,
                Err(e) => {
                    if Instant::now() >= deadline || !alive() {
                        return Err(Error::from(e)
                            .context(format!("connecting to QMP at {}", socket.display())));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        };
        stream.set_read_timeout(Some(COMMAND_TIMEOUT))?;
        let reader = BufReader::new(stream.try_clone()?);
        let mut qmp = Qmp {
            writer: stream,
            reader,
            events: Vec::new(),
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            bail!("unexpected QMP greeting: {greeting}");
        }
        qmp.execute("qmp_capabilities", None)?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value> {
        let mut line = String::new();
        let n = self
            .reader
            .read_line(&mut line)
            .context("reading from QMP")?;
        if n == 0 {
            bail!("QMP connection closed (QEMU exited)");
        }
        serde_json::from_str(&line)
            .map_err(|e| Error::msg(format!("bad QMP message {line:?}: {e}")))
    }

    /// Runs `command` with optional `arguments` and returns its `return` value; skips (and
    /// records) events received meanwhile.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let mut msg = json!({ "execute": command });
        if let Some(a) = arguments {
            msg["arguments"] = a;
        }
        let mut text = msg.to_string();
        text.push('\n');
        self.writer
            .write_all(text.as_bytes())
            .with_context(|| format!("sending QMP {command}"))?;
        loop {
            let m = self.read_message()?;
            if let Some(r) = m.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = m.get("error") {
                bail!("QMP {command} failed: {e}");
            }
            if m.get("event").is_some() {
                self.events.push(m);
            }
        }
    }

    /// Pauses the guest (`stop`).
    pub fn stop(&mut self) -> Result<()> {
        self.execute("stop", None).map(drop)
    }

    /// Resumes the guest (`cont`).
    pub fn cont(&mut self) -> Result<()> {
        self.execute("cont", None).map(drop)
    }

    /// Resets the machine (`system_reset`; RAM is kept, loader blobs are re-applied).
    pub fn system_reset(&mut self) -> Result<()> {
        self.execute("system_reset", None).map(drop)
    }

    /// Asks QEMU to quit. The connection may close before the reply arrives: that is success.
    pub fn quit(&mut self) -> Result<()> {
        match self.execute("quit", None) {
            Ok(_) => Ok(()),
            Err(e) if e.message().contains("closed") || e.message().contains("reading") => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Runs a human monitor command (e.g. `xp /16wx 0x901000`) and returns its output.
    pub fn hmp(&mut self, command_line: &str) -> Result<String> {
        let r = self.execute(
            "human-monitor-command",
            Some(json!({ "command-line": command_line })),
        )?;
        Ok(r.as_str().unwrap_or_default().to_string())
    }

    /// Reads `len` bytes of guest physical memory at `addr` (`pmemsave` to a temporary file).
    pub fn read_physical(&mut self, addr: u64, len: usize) -> Result<Vec<u8>> {
        let tmp = tempfile::Builder::new()
            .prefix("xtask-pmem")
            .tempfile()
            .context("temporary file for pmemsave")?;
        let path = tmp
            .path()
            .to_str()
            .ok_or_else(|| Error::msg("non-UTF-8 temp path"))?;
        self.execute(
            "pmemsave",
            Some(json!({ "val": addr, "size": len, "filename": path })),
        )?;
        let data = std::fs::read(tmp.path())?;
        if data.len() != len {
            bail!("pmemsave wrote {} bytes, expected {len}", data.len());
        }
        Ok(data)
    }
}
