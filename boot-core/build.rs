//! Sets `cfg(defmt_log)` when the shim's log goes out as defmt frames: feature `defmt`, not
//! `text-log`, and a bare-metal target (host builds, ubootctl and the tests, always print text;
//! see `src/log.rs`).

fn main() {
    println!("cargo::rustc-check-cfg=cfg(defmt_log)");
    let bare_metal = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "none");
    let defmt = std::env::var_os("CARGO_FEATURE_DEFMT").is_some();
    let text = std::env::var_os("CARGO_FEATURE_TEXT_LOG").is_some();
    if bare_metal && defmt && !text {
        println!("cargo::rustc-cfg=defmt_log");
    }
}
