//! The shim's console as lines: defmt frames decoded with the ELF's table (`defmt-decoder`), or
//! text (issue 16).
//!
//! One UART carries the shim's log and then the next stage's text (test payload, Linux
//! stand-in, U-Boot, Linux). With a defmt table the bytes are rzCOBS frames, each ended by a
//! zero byte, until the shim's last frame: its handoff line or a halt line. Everything after
//! that is text, until a zero byte: the lone delimiter defmt's encoder sends before the shim's
//! first frame of each boot (`spl_shim::hw::log`). An ELF without a `.defmt` table (the
//! `text-log` build, test firmware) is read as text from the start.
//!
//! Decoded lines read `<seconds> <LEVEL> shim: <line>`, e.g.
//! `0.004 INFO  shim: slot 1 handoff to 0x40200000 (payload) at EL3`, so a text build's
//! `shim: <line>` line is the tail of the decoded one. A frame whose message holds several
//! lines gives one decoded line each, with the frame's timestamp and level.

use std::path::Path;

use defmt_decoder::Table;

use crate::{Context, Result};

/// The message of the shim's handoff line (`spl-shim`'s `handoff`); the shim's last frame.
pub const HANDOFF_MARK: &str = " handoff to ";
/// Messages after which the shim halts: its last frame too.
pub const HALT_MARKS: &[&str] = &["nothing bootable", "board error", "panic: ", "halted"];

/// Reads a UART byte stream as lines.
#[derive(Debug)]
pub struct Console {
    table: Option<Table>,
    /// Bytes not yet ending a frame or a line.
    pending: Vec<u8>,
    /// Still in the shim's defmt frames.
    in_frames: bool,
    /// Whether the shim's last line (handoff or halt) was seen.
    shim_done: bool,
    total: u64,
    /// Where the shim's first log began (its delimiter), when it was read as text before.
    shim_start: Option<u64>,
    shim_bytes: Option<u64>,
    frames: u64,
}

impl Console {
    /// A console for the firmware `elf`: defmt if it has a `.defmt` table, else text.
    pub fn for_elf(elf: &Path) -> Result<Self> {
        let bytes = std::fs::read(elf).with_context(|| format!("cannot read {}", elf.display()))?;
        let table = Table::parse(&bytes)
            .map_err(|e| crate::Error::msg(format!("{}: defmt table: {e}", elf.display())))?;
        Ok(Self::new(table))
    }

    /// A text console.
    pub fn text() -> Self {
        Self::new(None)
    }

    /// The same console reading text until the shim's first delimiter: in the simulation the
    /// ROM model prints text lines before it starts the shim (design.md §5.1), which then sends
    /// defmt's lone delimiter before its first frame.
    pub fn text_first(mut self) -> Self {
        self.in_frames = false;
        self
    }

    fn new(table: Option<Table>) -> Self {
        Console {
            in_frames: table.is_some(),
            table,
            pending: Vec::new(),
            shim_done: false,
            total: 0,
            shim_start: None,
            shim_bytes: None,
            frames: 0,
        }
    }

    /// Whether the stream is decoded as defmt (the ELF has a table).
    pub fn is_defmt(&self) -> bool {
        self.table.is_some()
    }

    /// Frames decoded so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// Bytes received so far.
    pub fn total_bytes(&self) -> u64 {
        self.total
    }

    /// Bytes of the shim's log in the first boot: from its first delimiter (after the ROM
    /// model's text, [`Console::text_first`]) or, in text, from the start of its first
    /// `shim: ` line, to the end of its handoff or halt line/frame, or to everything so far
    /// when neither was seen.
    pub fn shim_bytes(&self) -> u64 {
        self.shim_bytes.unwrap_or(self.total) - self.shim_start.unwrap_or(0)
    }

    /// Takes `bytes` and returns the lines they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        for &b in bytes {
            self.total += 1;
            self.pending.push(b);
            if self.in_frames {
                if b == 0 {
                    let frame = std::mem::take(&mut self.pending);
                    if frame.len() == 1 {
                        // An empty frame: a lone delimiter (line noise, a UART reset) is no log.
                        continue;
                    }
                    for line in self.decode(&frame) {
                        self.note_shim_line(&line);
                        lines.push(line);
                    }
                    if self.shim_done {
                        self.in_frames = false;
                    }
                }
            } else if b == 0 && self.table.is_some() {
                // The shim (re)starts after a reset: a lone delimiter comes before its first
                // frame; the text before it is the previous stage's last (partial) line.
                self.pending.pop();
                let raw = std::mem::take(&mut self.pending);
                let line = String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if !line.is_empty() {
                    lines.push(line);
                }
                if self.shim_start.is_none() {
                    self.shim_start = Some(self.total - 1);
                }
                self.in_frames = true;
                self.shim_done = false;
            } else if b == b'\n' {
                let raw = std::mem::take(&mut self.pending);
                let line = String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                if self.table.is_none() && line.contains("shim: ") {
                    // The text build's log begins with its first line (not the ROM model's).
                    if self.shim_start.is_none() {
                        self.shim_start = Some(self.total - raw.len() as u64);
                    }
                    self.note_shim_line(&line);
                }
                lines.push(line);
            }
        }
        lines
    }

    /// The unterminated rest (a partial text line, or an incomplete frame shown as such).
    pub fn finish(&mut self) -> Option<String> {
        if self.pending.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.pending);
        Some(if self.in_frames {
            format!("xtask: incomplete defmt frame: {}", hex(&rest))
        } else {
            String::from_utf8_lossy(&rest)
                .trim_end_matches(['\n', '\r'])
                .to_string()
        })
    }

    fn note_shim_line(&mut self, line: &str) {
        if self.shim_done {
            return;
        }
        let msg = line.split_once("shim: ").map_or("", |(_, m)| m);
        if msg.contains(HANDOFF_MARK) || HALT_MARKS.iter().any(|m| msg.starts_with(m)) {
            self.shim_done = true;
            self.shim_bytes = Some(self.total);
        }
    }

    /// One frame (with its zero byte) as lines.
    fn decode(&mut self, frame: &[u8]) -> Vec<String> {
        let Some(table) = &self.table else {
            return Vec::new();
        };
        let mut d = table.new_stream_decoder();
        d.received(frame);
        match d.decode() {
            Ok(f) => {
                self.frames += 1;
                let ts = f
                    .display_timestamp()
                    .map_or_else(String::new, |t| t.to_string());
                let level = f.level().map_or("-", |l| l.as_str()).to_ascii_uppercase();
                f.display_message()
                    .to_string()
                    .split('\n')
                    .map(|line| format!("{ts} {level:<5} shim: {line}"))
                    .collect()
            }
            Err(e) => vec![format!(
                "xtask: undecodable defmt frame ({e}): {}",
                hex(frame)
            )],
        }
    }
}

/// A decoded line taken apart: `<seconds> <LEVEL> shim: <message>`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decoded<'a> {
    /// The frame's timestamp (generic timer, millisecond resolution).
    pub seconds: f64,
    /// `INFO`, `WARN`, `ERROR`, …
    pub level: &'a str,
    /// The message after `shim: `.
    pub message: &'a str,
}

/// Takes a decoded defmt line apart; `None` for text lines (the next stage's, or a text build).
pub fn decoded(line: &str) -> Option<Decoded<'_>> {
    let (ts, rest) = line.split_once(' ')?;
    let seconds = ts.parse().ok()?;
    let (level, message) = rest.trim_start().split_once(' ')?;
    let message = message.trim_start().strip_prefix("shim: ")?;
    Some(Decoded {
        seconds,
        level,
        message,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_and_shim_bytes() {
        let mut c = Console::text();
        let shim: &[u8] = b"shim: a\r\nshim: slot 1 handoff to 0x40200000 (payload) at EL3\r\n";
        let mut lines = c.feed(shim);
        lines.extend(c.feed(b"payload: hi\r\npart"));
        assert_eq!(
            lines,
            [
                "shim: a",
                "shim: slot 1 handoff to 0x40200000 (payload) at EL3",
                "payload: hi"
            ]
        );
        assert_eq!(c.shim_bytes(), shim.len() as u64);
        assert_eq!(c.total_bytes(), shim.len() as u64 + 17);
        assert_eq!(c.finish().as_deref(), Some("part"));
        assert!(!c.is_defmt());
    }

    #[test]
    fn decoded_lines_are_taken_apart() {
        let d = decoded("0.004213 INFO  shim: slot 1 handoff to 0x40200000").unwrap();
        assert_eq!(d.level, "INFO");
        assert_eq!(d.message, "slot 1 handoff to 0x40200000");
        assert!((d.seconds - 0.004213).abs() < 1e-9);
        assert_eq!(decoded("shim: slot 1 handoff"), None);
        assert_eq!(decoded("payload: version 1 slot 1 EL3"), None);
    }

    #[test]
    fn the_rom_models_text_is_not_the_shims() {
        let mut c = Console::text();
        let shim: &[u8] = b"shim: a\r\nshim: slot 1 handoff to 0x40200000 (payload) at EL3\r\n";
        c.feed(b"rom: starting the primary SPL\r\n");
        c.feed(shim);
        c.feed(b"payload: hi\r\n");
        assert_eq!(c.shim_bytes(), shim.len() as u64);
    }

    #[test]
    fn no_handoff_counts_everything() {
        let mut c = Console::text();
        c.feed(b"shim: x\n");
        assert_eq!(c.shim_bytes(), 8);
    }
}
