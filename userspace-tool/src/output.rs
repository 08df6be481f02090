//! Standard output with handled errors.
//!
//! `println!` panics when standard output is gone (a closed pipe: `ubootctl update ... --json |
//! head -1`), which would end the process with 101 in the middle of whatever it was doing. Every
//! line goes through [`write`] instead: the first error is recorded and later output is dropped.
//! What happens next is up to the caller: [`crate::cli_update`] stops an update at its next stop
//! point (never in the middle of a copy, see `ubootctl::exec::Progress::stop`), and `main` turns
//! a recorded error into exit 2 (I/O error) once the command is done.

use std::fmt;
use std::io::{self, Write};
use std::sync::Mutex;

/// The first error writing to standard output, if any.
static FAILURE: Mutex<Option<io::Error>> = Mutex::new(None);

/// Writes `args` to standard output and flushes it, unless a previous write failed; a failure
/// is recorded, not returned.
pub fn write(args: fmt::Arguments<'_>) {
    let mut failure = FAILURE.lock().unwrap_or_else(|p| p.into_inner());
    if failure.is_some() {
        return;
    }
    let mut out = io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        *failure = Some(e);
    }
}

/// Whether a write to standard output has failed.
pub fn failed() -> bool {
    FAILURE.lock().unwrap_or_else(|p| p.into_inner()).is_some()
}

/// The recorded failure, taken (for the final report).
pub fn take_failure() -> Option<io::Error> {
    FAILURE.lock().unwrap_or_else(|p| p.into_inner()).take()
}

/// `print!` through [`write`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!($($arg)*))
    };
}

/// `println!` through [`write`].
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::write(format_args!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {out, outln};
