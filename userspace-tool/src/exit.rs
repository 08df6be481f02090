//! The failures every subcommand reports and their exit codes (design.md §7).

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A failure of a subcommand.
#[derive(Debug)]
pub enum Failure {
    /// The input is not a valid image (exit 1).
    Invalid {
        /// File that was read.
        path: PathBuf,
        /// Why, with structure, field and offset.
        error: imx_hab::ParseError,
    },
    /// The tool refuses: the input is not acceptable (exit 1).
    Refused(String),
    /// The command line or a named input is unusable (exit 2).
    Usage(String),
    /// A termination signal stopped an update between two copies (exit 128 + the signal
    /// number: 129 SIGHUP, 130 SIGINT, 143 SIGTERM).
    Signal {
        /// The signal number.
        signal: i32,
        /// What was done and what to do.
        message: String,
    },
    /// Reading or writing failed (exit 2).
    Io {
        /// What was being done.
        what: String,
        /// The OS error.
        error: std::io::Error,
    },
}

impl Failure {
    /// Wraps an I/O error on `path`.
    pub fn io(action: &str, path: &Path, error: std::io::Error) -> Self {
        Failure::Io {
            what: format!("{action} {}", path.display()),
            error,
        }
    }

    /// Process exit code.
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::Invalid { .. } | Failure::Refused(_) => 1,
            Failure::Io { .. } | Failure::Usage(_) => 2,
            Failure::Signal { signal, .. } => u8::try_from(128 + signal).unwrap_or(2),
        })
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Invalid { path, error } => {
                write!(f, "{}: not a valid image: {error}", path.display())
            }
            Failure::Io { what, error } => write!(f, "cannot {what}: {error}"),
            Failure::Refused(why) | Failure::Usage(why) => f.write_str(why),
            Failure::Signal { message, .. } => f.write_str(message),
        }
    }
}
