//! See `sluice::fuzz_targets::otlp_http_decompress`.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzz_targets::otlp_http_decompress(data));
