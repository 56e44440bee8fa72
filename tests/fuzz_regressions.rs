//! Replays every input the fuzzers found (`fuzz/regressions/<target>/*`) and
//! every seed (`fuzz/seeds/<target>/*`) through the same entry points the
//! fuzz targets call, so a crash once found stays fixed.

use sluice::fuzz_targets as entry;
use std::path::Path;

/// Runs `f` on each file for `target`; returns how many were replayed.
fn replay(target: &str, f: fn(&[u8])) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["regressions", "seeds"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir).join(target)) else { continue };
        for path in entries.flatten().map(|e| e.path()) {
            if !path.is_file() || path.file_name().is_some_and(|n| n == ".gitkeep") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| f(&data));
            assert!(outcome.is_ok(), "{target} panicked on {}", path.display());
            replayed += 1;
        }
    }
    replayed
}

#[test]
fn config_load_inputs_do_not_panic() {
    assert!(replay("config_load", entry::config_load) > 0, "no seeds for config_load");
}

#[test]
fn otlp_grpc_inputs_do_not_panic() {
    assert!(replay("otlp_grpc", entry::otlp_grpc) > 0, "no seeds for otlp_grpc");
}

#[test]
fn otlp_http_protobuf_inputs_do_not_panic() {
    assert!(replay("otlp_http_protobuf", entry::otlp_http_protobuf) > 0, "no seeds for otlp_http_protobuf");
}

#[test]
fn otlp_http_json_inputs_do_not_panic() {
    assert!(replay("otlp_http_json", entry::otlp_http_json) > 0, "no seeds for otlp_http_json");
}

#[test]
fn otlp_http_gzip_inputs_do_not_panic() {
    assert!(replay("otlp_http_gzip", entry::otlp_http_gzip) > 0, "no seeds for otlp_http_gzip");
}

#[test]
fn otlp_http_decompress_inputs_do_not_panic() {
    assert!(replay("otlp_http_decompress", entry::otlp_http_decompress) > 0, "no seeds for otlp_http_decompress");
}

#[test]
fn otlp_check_agrees_with_decode_on_every_input() {
    // The otlp_grpc corpus is the right input: the same gRPC messages.
    assert!(replay("otlp_grpc", entry::otlp_check) > 0, "no seeds for otlp_grpc");
}

#[test]
fn ottl_inputs_do_not_panic() {
    assert!(replay("ottl", entry::ottl) > 0, "no seeds for ottl");
}
