//! Fuzzes `SrkTable::parse`, `keys()` and `hash()`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::srk_table(data));
