//! The software HAB4 verifier.

use crate::ParseError;

/// Why the software verifier rejected an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyError {
    /// The image or its CSF is malformed.
    Parse(ParseError),
}

impl VerifyError {
    /// The HAB-style event for this failure.
    pub fn event(&self) -> super::EventSummary {
        super::EventSummary { status: super::codes::status::FAILURE, reason: 0, context: 0, engine: 0 }
    }
}

impl core::fmt::Display for VerifyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            VerifyError::Parse(e) => e.fmt(f),
        }
    }
}
