//! Passes the board's linker script to the firmware link (aarch64-unknown-none only).

fn main() {
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    println!("cargo:rerun-if-changed=../linker");
    if target_os == "none" {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../linker");
        println!("cargo:rustc-link-search={}", dir.display());
        println!("cargo:rustc-link-arg-bins=-Tqemu-imx8mp.ld");
    }
}
