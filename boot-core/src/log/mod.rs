//! The shim's console log: one macro, [`shim_log!`](crate::shim_log), and one format string per
//! message for both encodings (docs/design.md §5, issue 16).
//!
//! - **defmt** (`cfg(defmt_log)`: feature `defmt`, not `text-log`, `target_os = "none"`): the
//!   format string is interned in the ELF's `.defmt` table and only its index, a timestamp and
//!   the arguments go over the UART; the harness decodes the frames with the ELF.
//! - **text** (every host build, and the firmware's `text-log` feature): `shim: ` and the
//!   formatted message as a line on the flow's console.
//!
//! Format strings use defmt's typed parameters (`{=u8}`, `{=u32}`, `{=u64:#x}`, `{=str}`,
//! `{=istr}`), which cost only the value on the wire; the text build turns them into `{}` and
//! `{:#x}` ([`text_format!`]). `{}` (an argument's `Format`/`Display`, [`Text`]) works too
//! but sends a type tag first. A message may hold several lines (`\n`): one frame, one
//! timestamp, and every line reads `shim: ...` in both builds. Lines that are always printed
//! together go in one message: each frame costs its index, timestamp and delimiter.
//! Names fixed at compile time are [`Name`]s ([`name!`](crate::name)): 2 bytes on the wire
//! instead of the text.

use core::fmt;

/// A failure detail: its [`fmt::Display`] in the text build; in the defmt build the same facts
/// as numbers and interned names (`log/frames.rs`), so the firmware links no `core::fmt`
/// formatting at all. Implemented for the shim's failures, parse, medium and panic reports.
pub struct Text<'a, T: ?Sized>(pub &'a T);

impl<T: fmt::Display + ?Sized> fmt::Display for Text<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(defmt_log)]
mod frames;

/// Whether this build of boot-core logs defmt frames (`cfg(defmt_log)`). The firmware checks at
/// compile time that it agrees with its own logger, so no message is dropped into an unused
/// text console.
pub const DEFMT: bool = cfg!(defmt_log);

/// Logs one message at `level` (`info`, `warn` or `error`): a defmt frame, or the text line
/// `shim: <message>` on `console` (a [`fmt::Write`]). See the module documentation.
#[cfg(defmt_log)]
#[macro_export]
macro_rules! shim_log {
    ($level:ident, $console:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {{
        let _ = &$console;
        ::defmt::$level!($fmt $(, $arg)*);
    }};
}

/// Logs one message at `level` (`info`, `warn` or `error`): a defmt frame, or the text line
/// `shim: <message>` on `console` (a [`fmt::Write`]). See the module documentation.
#[cfg(not(defmt_log))]
#[macro_export]
macro_rules! shim_log {
    ($level:ident, $console:expr, $fmt:literal $(, $arg:expr)* $(,)?) => {{
        #[allow(unused_imports)]
        use ::core::fmt::Write as _;
        let _ = ::core::writeln!($console, $crate::log::text_format!($fmt) $(, $arg)*);
    }};
}

#[doc(hidden)]
pub use boot_core_macros::text_format;

/// A name fixed at compile time, for a `{=istr}` parameter: interned in the ELF's defmt table
/// (its 2-byte index goes over the UART), the text itself in the text build. Made by
/// [`name!`](crate::name).
#[cfg(defmt_log)]
pub type Name = defmt::Str;

/// A name fixed at compile time, for a `{=istr}` parameter: interned in the ELF's defmt table
/// (its 2-byte index goes over the UART), the text itself in the text build. Made by
/// [`name!`](crate::name).
#[cfg(not(defmt_log))]
pub type Name = &'static str;

/// The [`Name`] of a string literal.
#[cfg(defmt_log)]
#[macro_export]
macro_rules! name {
    ($s:literal) => {
        ::defmt::intern!($s)
    };
}

/// The [`Name`] of a string literal.
#[cfg(not(defmt_log))]
#[macro_export]
macro_rules! name {
    ($s:literal) => {
        $s
    };
}

/// Implements `name()` (the `&'static str`, for the host tools and the cell's vocabulary) and
/// `log_name()` (the same as a [`Name`], for the shim's log) of a fieldless enum from one
/// table, so the two cannot drift apart.
#[macro_export]
macro_rules! names {
    ($(#[$m:meta])* $ty:ident { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $ty {
            $(#[$m])*
            pub const fn name(self) -> &'static str {
                match self {
                    $($ty::$variant => $s),+
                }
            }

            /// [`name`](Self::name) for the shim's log (`{=istr}`): interned in the defmt build.
            pub fn log_name(self) -> $crate::log::Name {
                match self {
                    $($ty::$variant => $crate::name!($s)),+
                }
            }
        }
    };
}
