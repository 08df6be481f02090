//! Fuzzes `Csf::parse`, its commands, the records they point to and `extent()`; also `Record::parse` at an offset taken from the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::csf(data));
