//! Any bytes as a config file: the loader answers Ok or a list of errors.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzz_targets::config_load(data));
