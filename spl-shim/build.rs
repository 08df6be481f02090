//! Passes the shim firmware its linker script (aarch64-unknown-none only).
//!
//! The board comes from the crate feature (`imx8mm-evk`, else `qemu-imx8mp`); its script in
//! `linker/` defines the memory regions and includes the shared `sections.ld`. The test
//! firmware's binaries get theirs from `test-firmware/build.rs`.

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo:rerun-if-changed=../linker");
    if target_os != "none" {
        return;
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
}
