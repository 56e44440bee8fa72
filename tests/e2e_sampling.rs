//! Sampling end to end: the OpenTelemetry Python SDK sends a mix of normal,
//! slow and failing traces (tests/peers/send_sampling_mix.py) through sluice
//! with two workers, so spans of one trace arrive out of order, in several
//! requests, and are routed by trace ID. What reaches the reference receiver
//! is checked trace by trace.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// Spans received, by trace ID.
fn received_by_trace(out: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut traces: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let text = std::fs::read_to_string(out).unwrap_or_default();
    for line in text.lines() {
        let req: Value = serde_json::from_str(line).unwrap();
        if req["status"] != "accepted" {
            continue;
        }
        for item in req["items"].as_array().unwrap() {
            traces.entry(item["trace_id"].as_str().unwrap().to_string()).or_default().push(item.clone());
        }
    }
    traces
}

fn send_mix(py: &Path, dir: &Path, agent: &Agent, name: &str, extra: &[&str]) -> BTreeMap<String, Value> {
    let manifest = dir.join(format!("{name}.json"));
    let mut cmd = std::process::Command::new(py);
    cmd.arg(peers_dir().join("send_sampling_mix.py"))
        .args(["--endpoint", &agent.grpc_endpoint(), "--manifest"])
        .arg(&manifest)
        .args(extra);
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "sender failed:\n{}\n{}", String::from_utf8_lossy(&out.stderr), agent.log());
    serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap()
}

/// Binomial bound: |kept - n p| <= 3 sigma (+1 for rounding).
fn within_3_sigma(kept: usize, n: usize, p: f64) -> bool {
    let mean = n as f64 * p;
    let sigma = (n as f64 * p * (1.0 - p)).sqrt();
    (kept as f64 - mean).abs() <= 3.0 * sigma + 1.0
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn head_sampler_keeps_whole_traces_and_every_error_trace() {
    let py = python();
    let dir = temp_dir();
    let processors =
        "  head_sampler:\n    traces_per_second: 20\n    adjustment_interval: 1s\n  batch:\n    timeout: 100ms";
    let (recv, agent) =
        agent_to_reference(&py, dir.path(), processors, &["traces"], &["head_sampler", "batch"], &["workers: 2"]);
    // A first round teaches the sampler the key's rate; the second is sampled.
    let warmup =
        send_mix(&py, dir.path(), &agent, "warmup", &["--traces", "400", "--seed", "1", "--error-on-first-child"]);
    std::thread::sleep(Duration::from_millis(2500));
    let manifest =
        send_mix(&py, dir.path(), &agent, "mix", &["--traces", "400", "--seed", "2", "--error-on-first-child"]);
    let total_spans: u64 = manifest.values().chain(warmup.values()).map(|t| t["spans"].as_u64().unwrap()).sum();
    assert!(
        wait_until("every span decided", Duration::from_secs(10), || {
            agent.metric("otelcol_exporter_sent_spans_total", &[])
                + agent.metric("otelcol_processor_dropped_spans_total", &[])
                >= total_spans as f64
        }),
        "{}",
        agent.metrics()
    );
    agent.stop();

    let got = received_by_trace(&recv.out);
    let (mut kept_normal, mut normal) = (0, 0);
    for (trace, info) in &manifest {
        let spans = got.get(trace).map_or(0, Vec::len) as u64;
        let want = info["spans"].as_u64().unwrap();
        assert!(spans == 0 || spans == want, "trace {trace} arrived partly: {spans} of {want} spans");
        match info["kind"].as_str().unwrap() {
            "error" => {
                assert_eq!(spans, want, "error trace {trace} was not kept whole");
                for s in &got[trace] {
                    assert!(s["trace_state"].as_str().unwrap().contains("ot=th:0"), "{s}");
                }
            }
            _ => {
                normal += 1;
                if spans > 0 {
                    kept_normal += 1;
                    // Sampled down: the recorded threshold is not "keep all".
                    let ts = got[trace][0]["trace_state"].as_str().unwrap().to_string();
                    assert!(ts.starts_with("ot=th:") && ts != "ot=th:0", "trace {trace} trace_state {ts:?}");
                }
            }
        }
    }
    assert!(kept_normal > 0 && kept_normal < normal, "kept {kept_normal} of {normal} normal traces");
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn probabilistic_sampler_keeps_a_consistent_share_and_records_th() {
    let py = python();
    let dir = temp_dir();
    let processors =
        "  probabilistic_sampler:\n    mode: proportional\n    sampling_percentage: 25\n  batch:\n    timeout: 100ms";
    let (recv, agent) =
        agent_to_reference(&py, dir.path(), processors, &["traces"], &["probabilistic_sampler", "batch"], &[]);
    let manifest = send_mix(&py, dir.path(), &agent, "mix", &["--traces", "800", "--error-every", "1000000"]);
    let total: u64 = manifest.values().map(|t| t["spans"].as_u64().unwrap()).sum();
    assert!(
        wait_until("every span decided", Duration::from_secs(10), || {
            agent.metric("otelcol_exporter_sent_spans_total", &[])
                + agent.metric("otelcol_processor_dropped_spans_total", &[("processor", "probabilistic_sampler")])
                >= total as f64
        }),
        "{}",
        agent.metrics()
    );
    agent.stop();

    let got = received_by_trace(&recv.out);
    let mut kept = 0;
    for (trace, info) in &manifest {
        let Some(spans) = got.get(trace) else { continue };
        kept += 1;
        assert_eq!(spans.len() as u64, info["spans"].as_u64().unwrap(), "trace {trace} arrived partly");
        for s in spans {
            assert_eq!(s["trace_state"], "ot=th:c", "25% is th:c: {s}");
        }
    }
    assert!(within_3_sigma(kept, manifest.len(), 0.25), "kept {kept} of {} traces at 25%", manifest.len());
}

/// The end-to-end check: every failing and every slow trace is kept
/// whole and says which policy kept it; the rest are kept at 20% ± 3 sigma,
/// whole, without a `th` (their keep is the Collector's hash, not consistent
/// probability sampling).
#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn tail_sampling_keeps_error_and_slow_traces_whole_and_samples_the_rest() {
    let py = python();
    let dir = temp_dir();
    let processors = "  tail_sampling:
    decision_wait: 2s
    num_traces: 5000
    policies:
      - name: errors
        type: status_code
        status_code:
          status_codes: [ERROR]
      - name: slow
        type: latency
        latency:
          threshold_ms: 1000
      - name: some-of-the-rest
        type: probabilistic
        probabilistic:
          sampling_percentage: 20
  batch:
    timeout: 100ms";
    let (recv, agent) =
        agent_to_reference(&py, dir.path(), processors, &["traces"], &["tail_sampling", "batch"], &["workers: 2"]);
    // tail_sampling buffers spans as received: the receivers check, the two
    // workers get requests split by trace ID still encoded.
    assert!(agent.log_plain().contains("data=\"forwarded as received, never decoded\""), "{}", agent.log_plain());
    let manifest = send_mix(&py, dir.path(), &agent, "mix", &["--traces", "600"]);
    let total: u64 = manifest.values().map(|t| t["spans"].as_u64().unwrap()).sum();
    // Decisions come decision_wait after each trace's first span.
    assert!(
        wait_until("every trace decided", Duration::from_secs(15), || {
            agent.metric("otelcol_exporter_sent_spans_total", &[])
                + agent.metric("otelcol_processor_dropped_spans_total", &[("processor", "tail_sampling")])
                >= total as f64
        }),
        "{}",
        agent.metrics()
    );
    agent.stop();

    let got = received_by_trace(&recv.out);
    let (mut normal, mut kept_normal) = (0, 0);
    for (trace, info) in &manifest {
        let want = info["spans"].as_u64().unwrap();
        let spans = got.get(trace).map(Vec::as_slice).unwrap_or_default();
        assert!(
            spans.is_empty() || spans.len() as u64 == want,
            "trace {trace} arrived partly: {} of {want}",
            spans.len()
        );
        let policy_of = |s: &Value| s["attributes"]["sampling.policy"]["string"].as_str().map(str::to_string);
        match info["kind"].as_str().unwrap() {
            "error" => {
                assert_eq!(spans.len() as u64, want, "error trace {trace} not kept whole");
                assert!(spans.iter().all(|s| policy_of(s).as_deref() == Some("errors")), "{spans:?}");
                assert!(spans.iter().all(|s| s["trace_state"] == "ot=th:0"), "{spans:?}");
            }
            "slow" => {
                assert_eq!(spans.len() as u64, want, "slow trace {trace} not kept whole");
                assert!(spans.iter().all(|s| policy_of(s).as_deref() == Some("slow")), "{spans:?}");
            }
            _ => {
                normal += 1;
                if !spans.is_empty() {
                    kept_normal += 1;
                    assert!(spans.iter().all(|s| policy_of(s).as_deref() == Some("some-of-the-rest")), "{spans:?}");
                    // `probabilistic` hashes the trace ID as the Collector
                    // (FNV-64a), which is not OpenTelemetry randomness, so
                    // no threshold is claimed for these traces.
                    let ts = spans[0]["trace_state"].as_str().unwrap();
                    assert!(!ts.contains("th:"), "a hashed 20% keep must not claim a threshold: {ts}");
                }
            }
        }
    }
    assert!(within_3_sigma(kept_normal, normal, 0.20), "kept {kept_normal} of {normal} normal traces at 20%");
}
