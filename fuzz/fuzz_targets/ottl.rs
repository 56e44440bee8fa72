//! Any bytes as OTTL: compiling answers Ok or an error, and running what
//! compiled answers Ok or an error; nothing panics or runs away.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzz_targets::ottl(data));
