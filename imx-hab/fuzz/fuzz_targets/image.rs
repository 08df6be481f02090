//! Fuzzes `Image::parse` (flash.bin / signed FIT / bare FIT detection) with the AN12900 layout.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::image(data));
