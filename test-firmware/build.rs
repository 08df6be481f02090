//! Passes each test firmware binary its linker script (aarch64-unknown-none only), as
//! `spl-shim/build.rs` does for the shim.
//!
//! The driver self-test and the SHA bench run where the shim runs: the board's script in
//! `linker/` (`imx8mm-evk.ld` with the `imx8mm-evk` feature, else `qemu-imx8mp.ld`). The
//! simulation's payloads are linked where U-Boot proper runs. Every script includes the shared
//! `sections.ld`, whose entry is `spl_shim::arch`'s `_start`.

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
    // Test firmware that runs from the board's SHIM region, like the shim.
    for bin in ["hw-selftest", "sha-bench"] {
        println!("cargo:rustc-link-arg-bin={bin}=-T{board_script}");
    }
    // The simulation's stand-ins for bl31/U-Boot, linked where U-Boot proper runs.
    println!("cargo:rustc-link-arg-bin=test-payload=-Ttest-payload.ld");
    println!("cargo:rustc-link-arg-bin=linux-stand-in=-Tlinux-stand-in.ld");
    // The simulation's boot ROM model, in the top of DRAM (boards::qemu_imx8mp::ROM_MODEL).
    println!("cargo:rustc-link-arg-bin=rom-model=-Trom-model.ld");
}
