//! A gRPC Export message: the pass-through check must agree with a full decode.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| sluice::fuzz_targets::otlp_check(data));
