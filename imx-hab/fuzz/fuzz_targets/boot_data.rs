//! Fuzzes `BootData::parse` and its accessors.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::boot_data(data));
