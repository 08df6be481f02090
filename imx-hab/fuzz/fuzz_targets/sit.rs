//! Fuzzes `Sit::parse` and `Sit::validate`: the first 24 bytes are the device size, the primary
//! length and the copy length (little-endian u64 each), the rest is the table.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::sit(data));
