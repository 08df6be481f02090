//! Fuzzes `Certificate::parse` and formatting of its names and key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::x509(data));
