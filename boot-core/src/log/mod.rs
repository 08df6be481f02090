//! The shim's console log: one macro, [`shim_log!`](crate::shim_log), and one format string per
//! message for both encodings (docs/design.md §5, issue 16).
//!
//! - **defmt** (`cfg(defmt_log)`: feature `defmt`, not `text-log`, `target_os = "none"`): the
//!   format string is interned in the ELF's `.defmt` table and only its index, a timestamp and
//!   the arguments go over the UART; the harness decodes the frames with the ELF.
//! - **text** (every host build, and the firmware's `text-log` feature): `shim: ` and the
//!   formatted message as a line on the flow's console.
//!
//! Format strings therefore stay in the subset both understand: positional `{}` and `{:#x}`.
//! Arguments are `&str`, integers, or [`Text`] for a value shown through its `Display`.

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
        let _ = ::core::writeln!($console, ::core::concat!("shim: ", $fmt) $(, $arg)*);
    }};
}
