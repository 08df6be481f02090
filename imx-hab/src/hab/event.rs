//! HAB event records (`DB | len | ver | status reason context engine | data`): decoding of what
//! the ROM's `report_event` returns (imx8m-facts.md §4.3), and the rule that turns a recorded
//! `report_status` answer plus its events into "authentic or not" (design.md §5).
//!
//! Record layout (big-endian, like every HAB structure):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 1 | tag `0xDB` ([`crate::codes::TAG_EVT`]) |
//! | 1 | 2 | length of the whole record, header included (BE) |
//! | 3 | 1 | version, `0x4x` |
//! | 4 | 1 | status ([`super::codes::status`]) |
//! | 5 | 1 | reason ([`super::codes::reason`]) |
//! | 6 | 1 | context ([`super::codes::context`]) |
//! | 7 | 1 | engine ([`crate::codes::engine_name`]) |
//! | 8 | len − 8 | data: with context COMMAND or AUT_DAT, the failing CSF command |
//!
//! # The verdict rule
//!
//! An image is authentic only if the status is SUCCESS **and no event has a status other than
//! SUCCESS**. This holds on an open part too, where the ROM lets a bad image through and only
//! logs the failure. Events with status WARNING count as failures, whatever their reason: an
//! open part logs the checks a closed part would fail as warnings, and telling a harmless
//! warning from a failing check is not something this crate can do reliably, so it does not try
//! (a known case: some i.MX 6/7 ROMs log an RNG self-test WARNING that U-Boot and barebox
//! ignore; if an i.MX 8M part logs it too, every image is rejected, which fails safe).
//! A record that cannot be decoded also counts as a failure.

use core::fmt;

use super::codes::{self, context, status};
use super::{EventSummary, RomFailure};
use crate::codes::{TAG_EVT, command_name, engine_name};

/// Length of the fixed part of an event record (tag, length, version, four codes).
pub const EVENT_HEADER_LEN: usize = 8;

/// Why bytes are not a HAB event record. Every variant names the field and its byte offset
/// from the start of the record ([`EventError::field`], [`EventError::offset`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventError {
    /// The input ends before the record does.
    Truncated {
        /// The field that is cut off (`header` or `data`).
        field: &'static str,
        /// Offset of that field.
        offset: usize,
        /// Bytes the record needs from its start.
        needed: usize,
        /// Bytes there are.
        available: usize,
    },
    /// Byte 0 is not the event tag `0xDB`.
    Tag {
        /// The byte found.
        found: u8,
    },
    /// The length field is smaller than the 8-byte header.
    LengthTooShort {
        /// The length field.
        found: u16,
    },
    /// The length field is not the number of bytes given ([`EventRecord::parse`] wants exactly
    /// one record).
    LengthMismatch {
        /// The length field.
        found: u16,
        /// Bytes given.
        available: usize,
    },
    /// The version byte is not `0x4x` (HAB 4).
    Version {
        /// The byte found.
        found: u8,
    },
}

impl EventError {
    /// The field that is wrong.
    pub const fn field(&self) -> &'static str {
        match self {
            EventError::Truncated { field, .. } => field,
            EventError::Tag { .. } => "tag",
            EventError::LengthTooShort { .. } | EventError::LengthMismatch { .. } => "len",
            EventError::Version { .. } => "ver",
        }
    }

    /// Byte offset of that field from the start of the record.
    pub const fn offset(&self) -> usize {
        match self {
            EventError::Truncated { offset, .. } => *offset,
            EventError::Tag { .. } => 0,
            EventError::LengthTooShort { .. } | EventError::LengthMismatch { .. } => 1,
            EventError::Version { .. } => 3,
        }
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HAB event record at offset {:#x}: field `{}` ",
            self.offset(),
            self.field()
        )?;
        match *self {
            EventError::Truncated {
                needed, available, ..
            } => write!(
                f,
                "truncated: {needed:#x} bytes needed, {available:#x} available from the start of the record"
            ),
            EventError::Tag { found } => write!(f, "is {found:#04x}, expected {TAG_EVT:#04x}"),
            EventError::LengthTooShort { found } => write!(
                f,
                "is {found:#x}, smaller than the {EVENT_HEADER_LEN:#x}-byte header"
            ),
            EventError::LengthMismatch { found, available } => write!(
                f,
                "is {found:#x}, but {available:#x} bytes were given for the record"
            ),
            EventError::Version { found } => write!(f, "is {found:#04x}, expected 0x4X"),
        }
    }
}

impl core::error::Error for EventError {}

/// One HAB event record, borrowed from the buffer `report_event` filled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRecord<'a> {
    /// HAB status ([`super::codes::status`]).
    pub status: u8,
    /// Reason ([`super::codes::reason`]).
    pub reason: u8,
    /// Context ([`super::codes::context`]).
    pub context: u8,
    /// Engine ([`crate::codes::engine_name`]).
    pub engine: u8,
    /// The bytes after the 8-byte header (the failing command for context COMMAND / AUT_DAT).
    pub data: &'a [u8],
    /// The version byte (`0x4x`).
    pub version: u8,
}

impl<'a> EventRecord<'a> {
    /// Parses `bytes` as exactly one event record: its length field must equal `bytes.len()`.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EventError> {
        let (record, rest) = Self::parse_prefix(bytes)?;
        if !rest.is_empty() {
            return Err(EventError::LengthMismatch {
                found: record.record_len() as u16,
                available: bytes.len(),
            });
        }
        Ok(record)
    }

    /// Parses the event record at the start of `bytes` and returns it with the bytes after it
    /// (for logs of concatenated records).
    pub fn parse_prefix(bytes: &'a [u8]) -> Result<(Self, &'a [u8]), EventError> {
        if let Some(&tag) = bytes.first()
            && tag != TAG_EVT
        {
            return Err(EventError::Tag { found: tag });
        }
        let Some(header) = bytes.first_chunk::<EVENT_HEADER_LEN>() else {
            return Err(EventError::Truncated {
                field: "header",
                offset: 0,
                needed: EVENT_HEADER_LEN,
                available: bytes.len(),
            });
        };
        let len = u16::from_be_bytes([header[1], header[2]]);
        if usize::from(len) < EVENT_HEADER_LEN {
            return Err(EventError::LengthTooShort { found: len });
        }
        let version = header[3];
        if version & 0xF0 != 0x40 {
            return Err(EventError::Version { found: version });
        }
        let Some((record, rest)) = bytes.split_at_checked(usize::from(len)) else {
            return Err(EventError::Truncated {
                field: "data",
                offset: EVENT_HEADER_LEN,
                needed: len.into(),
                available: bytes.len(),
            });
        };
        Ok((
            EventRecord {
                status: header[4],
                reason: header[5],
                context: header[6],
                engine: header[7],
                data: &record[EVENT_HEADER_LEN..],
                version,
            },
            rest,
        ))
    }

    /// Length of the whole record, header included (its length field).
    pub const fn record_len(&self) -> usize {
        EVENT_HEADER_LEN + self.data.len()
    }

    /// The four codes.
    pub const fn summary(&self) -> EventSummary {
        EventSummary {
            status: self.status,
            reason: self.reason,
            context: self.context,
            engine: self.engine,
        }
    }

    /// Whether the event is a failure: any status other than SUCCESS, WARNING included (see the
    /// module documentation).
    pub const fn is_failure(&self) -> bool {
        self.status != status::SUCCESS
    }

    /// The CSF command the event is about: for context COMMAND or AUT_DAT, when the data starts
    /// with a known command tag whose big-endian length (at least 4) fits in the data. Returns
    /// the command's bytes; byte 0 is its tag.
    pub fn command(&self) -> Option<&'a [u8]> {
        if self.context != context::COMMAND && self.context != context::AUT_DAT {
            return None;
        }
        let [tag, hi, lo, ..] = *self.data else {
            return None;
        };
        command_name(tag)?;
        let len = usize::from(u16::from_be_bytes([hi, lo]));
        if len < 4 {
            return None;
        }
        self.data.get(..len)
    }
}

/// Writes `NAME (0xvv)`, or `unknown <what> (0xvv)`.
fn named(f: &mut fmt::Formatter<'_>, name: Option<&str>, what: &str, v: u8) -> fmt::Result {
    match name {
        Some(n) => write!(f, "{n} ({v:#04x})"),
        None => write!(f, "unknown {what} ({v:#04x})"),
    }
}

impl fmt::Display for EventRecord<'_> {
    /// `HAB_FAILURE (0x33): HAB_INV_SIGNATURE (0x18) in HAB_CTX_COMMAND (0xc0), engine
    /// HAB_ENG_ANY (0x00); command Authenticate Data (0xca), 0x14 bytes`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        named(f, codes::status_name(self.status), "status", self.status)?;
        f.write_str(": ")?;
        named(f, codes::reason_name(self.reason), "reason", self.reason)?;
        f.write_str(" in ")?;
        named(
            f,
            codes::context_name(self.context),
            "context",
            self.context,
        )?;
        f.write_str(", engine ")?;
        named(f, engine_name(self.engine), "engine", self.engine)?;
        match self.command() {
            Some(cmd) => {
                f.write_str("; command ")?;
                named(f, command_name(cmd[0]), "command", cmd[0])?;
                write!(f, ", {:#x} bytes", cmd.len())
            }
            None if self.data.is_empty() => Ok(()),
            None => write!(f, "; {:#x} data bytes", self.data.len()),
        }
    }
}

/// The first event whose status is not SUCCESS, in the order given (the ROM's log order).
pub fn first_failure<'a>(
    records: impl IntoIterator<Item = EventRecord<'a>>,
) -> Option<EventSummary> {
    records
        .into_iter()
        .find(EventRecord::is_failure)
        .map(|r| r.summary())
}

/// A running count of the events of one authentication, kept without storing them (the ROM
/// binding walks `report_event` one record at a time through a single buffer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventTally {
    /// Events seen, malformed ones included.
    pub events: u32,
    /// The first event whose status is not SUCCESS.
    pub first_failure: Option<EventSummary>,
    /// Records that could not be decoded (each one counts as a failure).
    pub malformed: u32,
}

impl EventTally {
    /// No events yet.
    pub const fn new() -> Self {
        EventTally {
            events: 0,
            first_failure: None,
            malformed: 0,
        }
    }

    /// Adds a decoded event.
    pub fn record(&mut self, event: &EventRecord<'_>) {
        self.events = self.events.saturating_add(1);
        if self.first_failure.is_none() && event.is_failure() {
            self.first_failure = Some(event.summary());
        }
    }

    /// Adds a record that could not be decoded (or an event that could not be read).
    pub fn record_malformed(&mut self) {
        self.events = self.events.saturating_add(1);
        self.malformed = self.malformed.saturating_add(1);
    }

    /// Whether any event counted is a failure.
    pub const fn has_failure(&self) -> bool {
        self.first_failure.is_some() || self.malformed != 0
    }

    /// Applies the verdict rule (module documentation) to `status` (from `report_status` or the
    /// failing ROM call), `config`, `state` and the events counted.
    ///
    /// On failure [`RomFailure::status`] is `status` when it is not SUCCESS, otherwise the
    /// status of the first failing event (FAILURE when only malformed records failed).
    pub fn verdict(&self, status: u8, config: u8, state: u8) -> Result<(), RomFailure> {
        if status == status::SUCCESS && !self.has_failure() {
            return Ok(());
        }
        let status = if status != status::SUCCESS {
            status
        } else {
            self.first_failure.map_or(status::FAILURE, |e| e.status)
        };
        Err(RomFailure {
            status,
            config,
            state,
            first_failure: self.first_failure,
            events: self.events,
        })
    }
}

/// Decides a recorded `report_status` answer (`status`, `config`, `state`) and the events
/// `report_event` returned for it: authentic only if `status` is SUCCESS and no event is a
/// failure, whatever the configuration (an open part included).
pub fn status_verdict(
    status: u8,
    config: u8,
    state: u8,
    events: &[EventRecord<'_>],
) -> Result<(), RomFailure> {
    let mut tally = EventTally::new();
    for e in events {
        tally.record(e);
    }
    tally.verdict(status, config, state)
}

#[cfg(test)]
mod tests {
    use super::super::codes::{config, reason, state};
    use super::*;
    use crate::codes::{CMD_AUT_DAT, ENG_CAAM};

    /// HAB4 API RM example as imx8m-facts.md §4.3 quotes it. Its context byte is 0x0C (no HAB
    /// context has that value; the recording below has 0xC0 = COMMAND at the same place).
    const RM_EXAMPLE: [u8; 28] = [
        0xdb, 0x00, 0x1c, 0x41, 0x33, 0x18, 0x0c, 0x00, 0xca, 0x00, 0x14, 0x00, 0x02, 0xc5, 0x00,
        0x00, 0x00, 0x00, 0x07, 0x40, 0x77, 0x80, 0x04, 0x00, 0x00, 0x02, 0x9c, 0x00,
    ];

    /// Recorded `hab_status` of an open i.MX 6Q (config 0xF0, state 0x66) whose U-Boot had two
    /// bytes changed after signing: event 1, INV_SIGNATURE on an Authenticate Data command.
    const RECORDED_COMMAND: [u8; 28] = [
        0xdb, 0x00, 0x1c, 0x41, 0x33, 0x18, 0xc0, 0x00, 0xca, 0x00, 0x14, 0x00, 0x02, 0xc5, 0x1d,
        0x00, 0x00, 0x00, 0x16, 0x3c, 0x17, 0x7f, 0xf4, 0x00, 0x00, 0x08, 0x5c, 0x00,
    ];

    /// The same recording, event 2: INV_ASSERTION in context ASSERT.
    const RECORDED_ASSERT: [u8; 20] = [
        0xdb, 0x00, 0x14, 0x41, 0x33, 0x0c, 0xa0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x17, 0x7f, 0xf4,
        0x00, 0x00, 0x00, 0x00, 0x20,
    ];

    /// A WARNING event (ENG_FAIL logged by `entry` for the CAAM), the kind an open part logs.
    const WARNING_ENTRY: [u8; 8] = [0xdb, 0x00, 0x08, 0x43, 0x69, 0x30, 0xe1, 0x1d];

    /// A SUCCESS event.
    const SUCCESS_EVENT: [u8; 8] = [0xdb, 0x00, 0x08, 0x43, 0xf0, 0x00, 0x0a, 0x00];

    #[test]
    fn rm_example_decodes_byte_for_byte() {
        let e = EventRecord::parse(&RM_EXAMPLE).unwrap();
        assert_eq!(e.version, 0x41);
        assert_eq!(e.status, status::FAILURE);
        assert_eq!(e.reason, reason::INV_SIGNATURE);
        assert_eq!(e.context, 0x0c);
        assert_eq!(e.engine, 0x00);
        assert_eq!(e.record_len(), 0x1c);
        assert_eq!(e.data, &RM_EXAMPLE[8..]);
        assert_eq!(e.data[0], CMD_AUT_DAT);
        assert!(e.is_failure());
        // Context 0x0C is neither COMMAND nor AUT_DAT: the data is not decoded as a command.
        assert_eq!(e.command(), None);
        assert_eq!(
            e.summary(),
            EventSummary {
                status: 0x33,
                reason: 0x18,
                context: 0x0c,
                engine: 0x00
            }
        );
        assert_eq!(
            e.to_string(),
            "HAB_FAILURE (0x33): HAB_INV_SIGNATURE (0x18) in unknown context (0x0c), \
             engine HAB_ENG_ANY (0x00); 0x14 data bytes"
        );
    }

    #[test]
    fn recorded_command_event_decodes_the_authenticate_data_command() {
        let e = EventRecord::parse(&RECORDED_COMMAND).unwrap();
        assert_eq!(
            (e.status, e.reason, e.context, e.engine),
            (status::FAILURE, reason::INV_SIGNATURE, context::COMMAND, 0)
        );
        let cmd = e.command().unwrap();
        assert_eq!(cmd.len(), 0x14);
        assert_eq!(cmd[0], CMD_AUT_DAT);
        // key 2, CMS, CAAM; block 0x177ff400 + 0x85c00.
        assert_eq!(&cmd[4..8], &[0x02, 0xc5, 0x1d, 0x00]);
        assert_eq!(
            &cmd[12..20],
            &[0x17, 0x7f, 0xf4, 0x00, 0x00, 0x08, 0x5c, 0x00]
        );
        assert_eq!(
            e.to_string(),
            "HAB_FAILURE (0x33): HAB_INV_SIGNATURE (0x18) in HAB_CTX_COMMAND (0xc0), \
             engine HAB_ENG_ANY (0x00); command Authenticate Data (0xca), 0x14 bytes"
        );
    }

    #[test]
    fn recorded_assert_event_has_no_command() {
        let e = EventRecord::parse(&RECORDED_ASSERT).unwrap();
        assert_eq!(
            (e.status, e.reason, e.context),
            (status::FAILURE, reason::INV_ASSERTION, context::ASSERT)
        );
        assert_eq!(e.data.len(), 12);
        assert_eq!(e.command(), None);
        assert!(
            e.to_string()
                .contains("HAB_INV_ASSERTION (0x0c) in HAB_CTX_ASSERT (0xa0)")
        );
    }

    #[test]
    fn recorded_open_part_failure_is_not_authentic_even_with_success_status() {
        let events = [
            EventRecord::parse(&RECORDED_COMMAND).unwrap(),
            EventRecord::parse(&RECORDED_ASSERT).unwrap(),
        ];
        let f =
            status_verdict(status::SUCCESS, config::OPEN, state::NONSECURE, &events).unwrap_err();
        assert_eq!(f.status, status::FAILURE);
        assert_eq!((f.config, f.state), (config::OPEN, state::NONSECURE));
        assert_eq!(f.first_failure, Some(events[0].summary()));
        assert_eq!(f.events, 2);
    }

    #[test]
    fn warning_event_on_open_part_is_not_authentic() {
        let w = EventRecord::parse(&WARNING_ENTRY).unwrap();
        assert_eq!(
            (w.status, w.reason, w.context, w.engine),
            (status::WARNING, reason::ENG_FAIL, context::ENTRY, ENG_CAAM)
        );
        assert!(w.is_failure());
        assert_eq!(
            w.to_string(),
            "HAB_WARNING (0x69): HAB_ENG_FAIL (0x30) in HAB_CTX_ENTRY (0xe1), engine HAB_ENG_CAAM (0x1d)"
        );
        for st in [status::SUCCESS, status::WARNING] {
            let f = status_verdict(st, config::OPEN, state::NONSECURE, &[w]).unwrap_err();
            assert_eq!(f.status, status::WARNING);
            assert_eq!(f.first_failure, Some(w.summary()));
            assert_eq!(f.events, 1);
        }
    }

    #[test]
    fn empty_list_with_success_is_authentic() {
        assert_eq!(
            status_verdict(status::SUCCESS, config::CLOSED, state::TRUSTED, &[]),
            Ok(())
        );
    }

    #[test]
    fn open_nonsecure_without_events_is_authentic() {
        assert_eq!(state::NONSECURE, 0x66);
        assert_eq!(
            status_verdict(status::SUCCESS, config::OPEN, state::NONSECURE, &[]),
            Ok(())
        );
    }

    #[test]
    fn success_events_alone_are_authentic() {
        let s = EventRecord::parse(&SUCCESS_EVENT).unwrap();
        assert!(!s.is_failure());
        assert_eq!(
            status_verdict(status::SUCCESS, config::CLOSED, state::TRUSTED, &[s, s]),
            Ok(())
        );
    }

    #[test]
    fn non_success_status_without_events_is_not_authentic() {
        let f = status_verdict(status::FAILURE, config::CLOSED, state::FAIL_SOFT, &[]).unwrap_err();
        assert_eq!(
            f,
            RomFailure {
                status: status::FAILURE,
                config: config::CLOSED,
                state: state::FAIL_SOFT,
                first_failure: None,
                events: 0
            }
        );
    }

    #[test]
    fn first_failure_skips_success_events() {
        let records = [
            EventRecord::parse(&SUCCESS_EVENT).unwrap(),
            EventRecord::parse(&WARNING_ENTRY).unwrap(),
            EventRecord::parse(&RECORDED_COMMAND).unwrap(),
        ];
        assert_eq!(first_failure(records), Some(records[1].summary()));
        assert_eq!(first_failure(records[..1].iter().copied()), None);
        assert_eq!(first_failure([]), None);
    }

    #[test]
    fn malformed_record_counts_as_failure() {
        let mut t = EventTally::new();
        t.record(&EventRecord::parse(&SUCCESS_EVENT).unwrap());
        t.record_malformed();
        let f = t
            .verdict(status::SUCCESS, config::OPEN, state::NONSECURE)
            .unwrap_err();
        assert_eq!(
            (f.status, f.first_failure, f.events),
            (status::FAILURE, None, 2)
        );
    }

    #[test]
    fn truncated_record() {
        assert_eq!(
            EventRecord::parse(&RECORDED_COMMAND[..16]),
            Err(EventError::Truncated {
                field: "data",
                offset: 8,
                needed: 0x1c,
                available: 16
            })
        );
        let e = EventRecord::parse(&RECORDED_COMMAND[..5]).unwrap_err();
        assert_eq!(
            e,
            EventError::Truncated {
                field: "header",
                offset: 0,
                needed: 8,
                available: 5
            }
        );
        assert_eq!(
            e.to_string(),
            "HAB event record at offset 0x0: field `header` truncated: 0x8 bytes needed, \
             0x5 available from the start of the record"
        );
        assert!(EventRecord::parse(&[]).is_err());
    }

    #[test]
    fn wrong_tag() {
        let mut b = RECORDED_ASSERT;
        b[0] = 0xd4;
        let e = EventRecord::parse(&b).unwrap_err();
        assert_eq!(e, EventError::Tag { found: 0xd4 });
        assert_eq!((e.field(), e.offset()), ("tag", 0));
        assert_eq!(
            e.to_string(),
            "HAB event record at offset 0x0: field `tag` is 0xd4, expected 0xdb"
        );
        // Checked even when the rest is missing.
        assert_eq!(
            EventRecord::parse(&[0x00]),
            Err(EventError::Tag { found: 0x00 })
        );
    }

    #[test]
    fn length_mismatch() {
        // Length field says 0x14, 0x1c bytes given.
        let mut b = RECORDED_COMMAND;
        b[2] = 0x14;
        let e = EventRecord::parse(&b).unwrap_err();
        assert_eq!(
            e,
            EventError::LengthMismatch {
                found: 0x14,
                available: 0x1c
            }
        );
        assert_eq!((e.field(), e.offset()), ("len", 1));
        assert_eq!(
            e.to_string(),
            "HAB event record at offset 0x1: field `len` is 0x14, but 0x1c bytes were given for the record"
        );
        // Below the header size.
        let mut b = WARNING_ENTRY;
        b[2] = 0x07;
        assert_eq!(
            EventRecord::parse(&b),
            Err(EventError::LengthTooShort { found: 7 })
        );
    }

    #[test]
    fn wrong_version() {
        let mut b = WARNING_ENTRY;
        b[3] = 0x31;
        let e = EventRecord::parse(&b).unwrap_err();
        assert_eq!(e, EventError::Version { found: 0x31 });
        assert_eq!((e.field(), e.offset()), ("ver", 3));
    }

    #[test]
    fn parse_prefix_walks_concatenated_records() {
        let mut log = [0u8; 28 + 20 + 8];
        log[..28].copy_from_slice(&RECORDED_COMMAND);
        log[28..48].copy_from_slice(&RECORDED_ASSERT);
        log[48..].copy_from_slice(&WARNING_ENTRY);
        let mut rest = &log[..];
        let mut contexts = [0u8; 3];
        for c in &mut contexts {
            let (e, r) = EventRecord::parse_prefix(rest).unwrap();
            *c = e.context;
            rest = r;
        }
        assert!(rest.is_empty());
        assert_eq!(
            contexts,
            [context::COMMAND, context::ASSERT, context::ENTRY]
        );
    }

    #[test]
    fn command_needs_a_fitting_known_command() {
        let mut b = RECORDED_COMMAND;
        b[10] = 0x20; // command length beyond the data
        assert_eq!(EventRecord::parse(&b).unwrap().command(), None);
        let mut b = RECORDED_COMMAND;
        b[8] = 0x55; // unknown tag
        assert_eq!(EventRecord::parse(&b).unwrap().command(), None);
        let mut b = RECORDED_COMMAND;
        b[6] = context::AUT_DAT;
        assert_eq!(
            EventRecord::parse(&b).unwrap().command().map(<[u8]>::len),
            Some(0x14)
        );
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64)
        ) {
            if let Ok(e) = EventRecord::parse(&bytes) {
                proptest::prop_assert_eq!(e.record_len(), bytes.len());
                let _ = e.command();
                let _ = e.to_string();
            }
            if let Ok((e, rest)) = EventRecord::parse_prefix(&bytes) {
                proptest::prop_assert_eq!(e.record_len() + rest.len(), bytes.len());
            }
        }
    }
}
