//! Build, image and simulation tooling for imx-redundant-boot, shared by `cargo xtask`, the QEMU
//! scenario tests and the demo.
//!
//! | module | what it holds |
//! |---|---|
//! | [`firmware`] | `cargo build` of the firmware (the shim, the test payload), ELF → flat binary, a hand-assembled placeholder payload |
//! | [`pki`] | the test PKI (generate from a seed or load a `cst`-layout directory) and the simulated 64-byte fuse block |
//! | [`fit`] | FIT building (embedded data) and HAB signing at the FIT window |
//! | [`flash_bin`] | the signed shim as an imx8mimage-style SPL, and flash.bin = SPL ‖ pad ‖ signed FIT |
//! | [`disk`] | SD card images (SIT, primary, secondary; design.md §4) and corruption helpers |
//! | [`qemu`] | the QEMU contract command, UART capture, markers, timeouts |
//! | [`figures`] | firmware figures measured in QEMU: boot time split, SHA-256 backends |
//! | [`qmp`] | a minimal QMP client (stop, pmemsave, quit) |
//! | [`sim`] | the simulation images: the sim FIT (payload + blob carrying the version), whole disks |
//! | [`demo`] | `cargo xtask demo`: the mission end to end, narrated and checked |
//! | [`e2e`] | `cargo xtask e2e`: the issue-6 scenarios on the shim → stand-in → Linux chain (boot, update, fallback, power cut) |
//! | [`powercut`] | `cargo xtask powercut-compare`: one power-cut sweep over `ubootctl update`, RAUC's `boot-raw-fallback`, `rauc install` through the hook and AN12900's `dd`s, traced with strace and scored by the shim's judgement |
//! | [`e2e_chain`] | the e2e scenarios on the real chain: images, card, boot observation (banners, cell, time split) |
//! | [`chain`] | the real boot chain (issue 17): the NXP-layout FIT (U-Boot, its DT, BL31 as the entry), the SD card with a boot partition (DOS table, ext4 by `mke2fs -d`, `boot.scr`) |
//! | [`thirdparty`] | TF-A BL31 and U-Boot proper from Debian bookworm's source packages (hash-checked), our QEMU patches from `patches/`, cached under `target/thirdparty` |
//! | [`linux`] | the e2e Linux side: Debian arm64 kernel + patched EVK DTB + modules cached by `apt-get download`, static musl `ubootctl`, busybox initramfs, QEMU `-kernel` runs, the smoke check |
//!
//! Everything here is host-only and uses **test keys only** (see `imx_hab::sign`).

use std::fmt;
use std::path::{Path, PathBuf};

pub mod chain;
pub mod console;
pub mod demo;
pub mod disk;
pub mod e2e;
pub mod e2e_chain;
pub mod e2e_emmc;
pub mod e2e_rollback;
pub mod emmc;
pub mod figures;
pub mod firmware;
pub mod fit;
pub mod flash_bin;
pub mod linux;
pub mod pki;
pub mod powercut;
pub mod probe;
pub mod qemu;
pub mod qmp;
pub mod sim;
pub mod thirdparty;

/// The workspace root (the directory holding the workspace `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// An error of the tooling: one human-readable message (with the cause folded in).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(String);

impl Error {
    /// An error with this message.
    pub fn msg(message: impl Into<String>) -> Self {
        Error(message.into())
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.0
    }

    /// Prefixes the message with what was being done.
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error(format!("{what}: {}", self.0))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error(e.to_string())
    }
}

impl From<imx_hab::sign::SignError> for Error {
    fn from(e: imx_hab::sign::SignError) -> Self {
        Error(format!("signing: {e}"))
    }
}

impl From<imx_hab::ParseError> for Error {
    fn from(e: imx_hab::ParseError) -> Self {
        Error(format!("parse: {e}"))
    }
}

/// Result of the tooling.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds context to the error of a `Result` whose error converts into [`Error`].
pub trait Context<T> {
    /// Prefixes the error with `what`.
    fn context(self, what: impl fmt::Display) -> Result<T>;
    /// Prefixes the error with what `f` returns (computed only on error).
    fn with_context<D: fmt::Display>(self, f: impl FnOnce() -> D) -> Result<T>;
}

impl<T, E: Into<Error>> Context<T> for std::result::Result<T, E> {
    fn context(self, what: impl fmt::Display) -> Result<T> {
        self.map_err(|e| e.into().context(what))
    }

    fn with_context<D: fmt::Display>(self, f: impl FnOnce() -> D) -> Result<T> {
        self.map_err(|e| e.into().context(f()))
    }
}

/// Returns early with an [`Error`] built like `format!`.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::Error::msg(format!($($arg)*)))
    };
}
