//! Fuzzes `CmsSignature::parse` and formatting of its signer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| imx_hab_fuzz::cms(data));
