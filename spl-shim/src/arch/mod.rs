//! The architecture facade (`target_os = "none"` only): the reset entry, the exception vectors
//! and the fatal-exception handler of every firmware binary, linked in from this library.
//!
//! A binary that depends on `spl-shim` gets them by linking with one of the scripts in
//! `linker/`: they name `_start` as the ELF entry, so the linker takes the entry code (and with
//! it the vector table and the handler) from this library. The binary defines, once,
//! `#[unsafe(no_mangle)] extern "C" fn shim_main() -> !`, which the entry calls on the boot
//! core with the stack set up and BSS zeroed, and may stop the core with [`halt`].

#[cfg(target_arch = "aarch64")]
mod aarch64;

#[cfg(target_arch = "aarch64")]
pub use aarch64::halt;
