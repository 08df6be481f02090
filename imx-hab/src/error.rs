//! One error vocabulary for every parser: which structure, which field, which byte offset, why.

use core::fmt;

/// The structure a parse error was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Structure {
    /// Image Vector Table.
    Ivt,
    /// Boot data (start, size, plugin) referenced by an IVT.
    BootData,
    /// Secondary Image Table.
    Sit,
    /// CSF header.
    CsfHeader,
    /// A CSF command.
    CsfCommand,
    /// An SRK table record (`D7` … `40`).
    SrkTable,
    /// A public-key record inside the SRK table.
    SrkKey,
    /// An X.509 certificate record (`D7`).
    Certificate,
    /// A CMS signature record (`D8`).
    Signature,
    /// The FIT (flattened device tree) itself.
    Fit,
    /// An image node of a FIT.
    FitImage,
    /// The configuration of a FIT.
    FitConfig,
    /// A flash.bin container.
    FlashBin,
    /// A whole input file.
    Image,
}

impl Structure {
    /// Human-readable name.
    pub const fn name(self) -> &'static str {
        match self {
            Structure::Ivt => "IVT",
            Structure::BootData => "boot data",
            Structure::Sit => "secondary image table",
            Structure::CsfHeader => "CSF header",
            Structure::CsfCommand => "CSF command",
            Structure::SrkTable => "SRK table",
            Structure::SrkKey => "SRK key record",
            Structure::Certificate => "certificate record",
            Structure::Signature => "signature record",
            Structure::Fit => "FIT",
            Structure::FitImage => "FIT image",
            Structure::FitConfig => "FIT configuration",
            Structure::FlashBin => "flash.bin",
            Structure::Image => "image",
        }
    }
}

/// Why a field was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The input ends before the field does.
    Truncated {
        /// Bytes the field needs from its offset.
        needed: u64,
        /// Bytes there are from its offset.
        available: u64,
    },
    /// A fixed value (tag, magic, length) differs.
    Mismatch {
        /// Value found.
        found: u64,
        /// Value required.
        expected: u64,
    },
    /// A value is outside what is allowed.
    OutOfRange {
        /// Value found.
        found: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// A reserved field is not zero.
    NotZero {
        /// Value found.
        found: u64,
    },
    /// A field that must be non-zero is zero.
    Zero,
    /// A CSF command tag this parser does not know (never skipped).
    UnknownCommand {
        /// The tag byte.
        tag: u8,
    },
    /// Malformed DER inside a certificate or signature.
    Der,
    /// Anything else, as a short sentence fragment.
    Invalid(&'static str),
}

/// A parse failure: where and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// Structure being parsed.
    pub structure: Structure,
    /// Field being parsed (`tag`, `length`, `self`, …).
    pub field: &'static str,
    /// Byte offset of the field from the start of the input the caller passed.
    pub offset: u64,
    /// What is wrong.
    pub kind: ErrorKind,
}

impl ParseError {
    /// A new error.
    pub const fn new(
        structure: Structure,
        field: &'static str,
        offset: u64,
        kind: ErrorKind,
    ) -> Self {
        ParseError {
            structure,
            field,
            offset,
            kind,
        }
    }

    /// The same error with its offset moved by `base` (for a structure nested at `base`).
    #[must_use]
    pub const fn shifted(mut self, base: u64) -> Self {
        self.offset = self.offset.saturating_add(base);
        self
    }

    pub(crate) const fn truncated(
        structure: Structure,
        field: &'static str,
        offset: u64,
        needed: u64,
        available: u64,
    ) -> Self {
        Self::new(
            structure,
            field,
            offset,
            ErrorKind::Truncated { needed, available },
        )
    }

    pub(crate) const fn mismatch(
        structure: Structure,
        field: &'static str,
        offset: u64,
        found: u64,
        expected: u64,
    ) -> Self {
        Self::new(
            structure,
            field,
            offset,
            ErrorKind::Mismatch { found, expected },
        )
    }

    pub(crate) const fn invalid(
        structure: Structure,
        field: &'static str,
        offset: u64,
        why: &'static str,
    ) -> Self {
        Self::new(structure, field, offset, ErrorKind::Invalid(why))
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ErrorKind::Truncated { needed, available } => {
                write!(
                    f,
                    "truncated: {needed:#x} bytes needed, {available:#x} available from the start of the structure"
                )
            }
            ErrorKind::Mismatch { found, expected } => {
                write!(f, "is {found:#x}, expected {expected:#x}")
            }
            ErrorKind::OutOfRange { found, min, max } => {
                write!(f, "is {found:#x}, allowed {min:#x}..={max:#x}")
            }
            ErrorKind::NotZero { found } => write!(f, "is {found:#x}, must be 0"),
            ErrorKind::Zero => f.write_str("is 0, must not be"),
            ErrorKind::UnknownCommand { tag } => write!(f, "has unknown command tag {tag:#04x}"),
            ErrorKind::Der => f.write_str("is not well-formed DER"),
            ErrorKind::Invalid(why) => f.write_str(why),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at offset {:#x}: field `{}` {}",
            self.structure.name(),
            self.offset,
            self.field,
            self.kind
        )
    }
}

impl core::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_structure_field_offset_and_reason() {
        let e = ParseError::mismatch(Structure::Ivt, "tag", 0x10, 0, 0xD1).shifted(0x56000);
        assert_eq!(
            e.to_string(),
            "IVT at offset 0x56010: field `tag` is 0x0, expected 0xd1"
        );
    }
}
