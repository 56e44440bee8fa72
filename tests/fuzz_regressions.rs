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

/// The `ottl` seeds are worth fuzzing from only if they compile in the
/// context and form their first byte names (the Collector's README
/// examples; `fuzz/ottl_seeds.py`). The one group that must not compile is
/// the Collector README's own example of a group that cannot be parsed
/// (`convert_sum_to_gauge` beside a `datapoint` path).
#[test]
fn ottl_seeds_compile_where_their_first_byte_says() {
    use entry::{OttlForm, OttlInput};
    use sluice::ottl::{compile::infer_group, Condition, Limits, Statement};
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/ottl");
    let (mut total, mut failed) = (0, Vec::new());
    for path in std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()) {
        let data = std::fs::read(&path).unwrap();
        let input = OttlInput::read(&data).expect("a seed is a context byte and UTF-8 text");
        let (ctx, text, allowed) = (input.context, input.text, OttlInput::allowed(input.signal));
        let limits = Limits::default();
        let lines: Vec<&str> = text.lines().collect();
        let statement = lines[0].starts_with(|c: char| c.is_ascii_lowercase()) && lines[0].contains('(');
        for line in &lines {
            total += 1;
            let result = match input.form {
                OttlForm::Flat if statement => infer_group(&lines, &[], allowed, limits)
                    .map_err(|(_, e)| e)
                    .and_then(|c| Statement::compile_in(line, c, true, limits).map(|_| ())),
                OttlForm::Flat => infer_group(&[], &lines, allowed, limits)
                    .map_err(|(_, e)| e)
                    .and_then(|c| Condition::compile_in(line, c, true, limits).map(|_| ())),
                OttlForm::Statements => Statement::compile_in(line, ctx, false, limits).map(|_| ()),
                OttlForm::Conditions => Condition::compile_in(line, ctx, false, limits).map(|_| ()),
            };
            if let Err(e) = result {
                failed.push(format!("{}: {e}", path.file_name().unwrap().to_string_lossy()));
            }
        }
    }
    eprintln!("{} of {total} seed texts compile; failing:\n{}", total - failed.len(), failed.join("\n"));
    assert!(
        failed.iter().all(|f| f.contains("convert_sum_to_gauge") && f.contains("metric context only")),
        "seeds that do not compile:\n{}",
        failed.join("\n")
    );
    assert!(total > 150, "{total} seed texts");
}
