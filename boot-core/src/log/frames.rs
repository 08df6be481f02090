//! The defmt form of the shim's failure details ([`Text`]): the facts of each `Display` as
//! numbers and interned names, so the firmware links no `core::fmt` (issue 16). The text build
//! and the host (ubootctl) print the `Display` wording.

use defmt::{Format, Formatter, write};
use imx_hab::{ErrorKind, ParseError};

use super::Text;
use crate::examine::{Failure, Fault};
use crate::platform::MediaError;

impl Format for Text<'_, ParseError> {
    fn format(&self, f: Formatter<'_>) {
        let e = self.0;
        write!(
            f,
            "{=str} {=str} at {=u64:#x}: ",
            e.structure.name(),
            e.field,
            e.offset
        );
        match e.kind {
            ErrorKind::Truncated { needed, available } => write!(
                f,
                "truncated, needs {=u64:#x} bytes, {=u64:#x} available",
                needed, available
            ),
            ErrorKind::Mismatch { found, expected } => {
                write!(f, "found {=u64:#x}, expected {=u64:#x}", found, expected)
            }
            ErrorKind::OutOfRange { found, min, max } => write!(
                f,
                "{=u64:#x} outside {=u64:#x}..={=u64:#x}",
                found, min, max
            ),
            ErrorKind::NotZero { found } => write!(f, "{=u64:#x} is not zero", found),
            ErrorKind::Zero => write!(f, "zero"),
            ErrorKind::UnknownCommand { tag } => write!(f, "unknown command tag {=u8:#x}", tag),
            ErrorKind::Der => write!(f, "bad DER"),
            ErrorKind::Invalid(what) => write!(f, "{=str}", what),
            _ => write!(f, "invalid"),
        }
    }
}

impl Format for Text<'_, MediaError> {
    fn format(&self, f: Formatter<'_>) {
        match *self.0 {
            MediaError::NoCard => write!(f, "no card"),
            MediaError::Timeout {
                command,
                waiting_for,
                int_status,
            } => write!(
                f,
                "CMD{=u8}: timed out waiting for {=str}, INT_STATUS {=u32:#x}",
                command, waiting_for, int_status
            ),
            MediaError::Command {
                command,
                int_status,
            } => write!(
                f,
                "CMD{=u8} failed: INT_STATUS {=u32:#x}",
                command, int_status
            ),
            MediaError::Card {
                command,
                response,
                what,
            } => write!(
                f,
                "CMD{=u8} response {=u32:#x}: {=str}",
                command, response, what
            ),
            MediaError::OutOfRange { lba, len } => write!(
                f,
                "read of {=usize:#x} bytes at block {=u64:#x} outside the medium",
                len, lba
            ),
        }
    }
}

impl Format for Text<'_, Failure> {
    fn format(&self, f: Formatter<'_>) {
        let part = self.0.part.name();
        match &self.0.fault {
            Fault::Read(m) => write!(f, "{=str}: read error: {}", part, Text(m)),
            Fault::Parse(e) => write!(f, "{=str}: {}", part, Text(e)),
            Fault::TooLarge { needed, available } => write!(
                f,
                "{=str}: needs {=u64:#x} bytes from the copy's start, {=u64:#x} are available",
                part, needed, available
            ),
            Fault::LoadAddress { load, len, window } => write!(
                f,
                "{=str}: signed for {=u64:#x}+{=u64:#x}, outside the board's FIT window \
                 {=u64:#x}..{=u64:#x}",
                part,
                load,
                len,
                window.start,
                window.end()
            ),
            Fault::Rollback { epoch, minimum } => write!(
                f,
                "{=str}: authentic, but its security epoch {=u32} is below the minimum {=u32} \
                 in the rollback fuses",
                part, epoch, minimum
            ),
            // The rest (not signed, not authentic, algorithm, handoff, and any later class):
            // the HAB-style event the cell records for it.
            _ => {
                let e = self.0.event();
                write!(
                    f,
                    "{=str}: HAB status {=u8:#x}, reason {=u8:#x}, context {=u8:#x}, engine \
                     {=u8:#x}",
                    part, e.status, e.reason, e.context, e.engine
                )
            }
        }
    }
}

impl Format for crate::boot::handoff::LoadLines<'_> {
    fn format(&self, f: Formatter<'_>) {
        for c in self.copies {
            write!(
                f,
                "load {=str} {=u64:#x}+{=u64:#x} -> {=u64:#x}\n",
                c.name.as_str(),
                self.blob + c.src_offset,
                c.len,
                c.dest
            );
        }
    }
}

impl Format for Text<'_, core::panic::PanicInfo<'_>> {
    fn format(&self, f: Formatter<'_>) {
        let msg = self.0.message().as_str().unwrap_or("(formatted message)");
        match self.0.location() {
            Some(l) => write!(f, "{=str}:{=u32}: {=str}", l.file(), l.line(), msg),
            None => write!(f, "{=str}", msg),
        }
    }
}
