//! Fuzzes `Fit::parse`, `images()`, `data()`, `default_config()` and `loadables()`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::fit(data));
