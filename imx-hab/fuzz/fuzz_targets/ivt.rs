//! Fuzzes `Ivt::parse` and every IVT accessor.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::ivt(data));
