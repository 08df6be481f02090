//! Passes the shim firmware its linker script (aarch64-unknown-none only).
//!
//! The board comes from the crate feature (`imx8mm-evk`, else `qemu-imx8mp`); its script in
//! `linker/` defines the memory regions and includes the shared `sections.ld`. The test
//! firmware's binaries get theirs from `test-firmware/build.rs`. Also sets `cfg(defmt_log)` (the
//! defmt build, not `text-log`) and links defmt's table script for it.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo:rerun-if-changed=../linker");
    // The defmt log (boot_core::log): on the bare-metal target unless `text-log`.
    println!("cargo::rustc-check-cfg=cfg(defmt_log)");
    if target_os != "none" {
        return;
    }
    let defmt = std::env::var_os("CARGO_FEATURE_TEXT_LOG").is_none();
    if defmt {
        println!("cargo::rustc-cfg=defmt_log");
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker");
    println!("cargo:rustc-link-search={}", dir.display());
    let board_script = if std::env::var_os("CARGO_FEATURE_IMX8MM_EVK").is_some() {
        "imx8mm-evk.ld"
    } else {
        "qemu-imx8mp.ld"
    };
    // The shim runs from the board's SHIM region.
    println!("cargo:rustc-link-arg-bin=spl-shim=-T{board_script}");
    // defmt's `.defmt` table (INFO section, not loaded) and its symbols; defmt's build script
    // puts the script on the link search path.
    if defmt {
        println!("cargo:rustc-link-arg-bin=spl-shim=-Tdefmt.x");
    }
}
