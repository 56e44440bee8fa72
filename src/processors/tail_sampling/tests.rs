//! Behaviour of the tail sampler on whole workloads: completeness of kept
//! traces, rates, late spans, memory bounds, timers, policy semantics and
//! config errors.

use super::config::TailSamplingConfig;
use super::*;
use crate::data::Signal;
use crate::service::load::load_agent_config;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Status};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::HashMap;

const SPANS_PER_TRACE: u64 = 5;

fn trace_id(n: u64) -> Vec<u8> {
    xxhash_rust::xxh3::xxh3_128(&n.to_le_bytes()).to_be_bytes().to_vec()
}

/// Span `i` of trace `n`: span 0 is the root; `error` marks the last span,
/// `slow` stretches the root to 2s (else 100ms).
fn span(n: u64, i: u64, error: bool, slow: bool) -> Span {
    let start = 1_700_000_000_000_000_000 + n * 1000;
    let dur = if i == 0 && slow { 2_000_000_000 } else { 100_000_000 };
    Span {
        trace_id: trace_id(n),
        span_id: (n * 100 + i + 1).to_be_bytes().to_vec(),
        parent_span_id: if i == 0 { vec![] } else { (n * 100 + 1).to_be_bytes().to_vec() },
        name: format!("op-{i}"),
        start_time_unix_nano: start,
        end_time_unix_nano: start + dur,
        status: Some(Status { code: if error && i == SPANS_PER_TRACE - 1 { 2 } else { 0 }, ..Default::default() }),
        ..Default::default()
    }
}

fn batch(spans: Vec<Span>) -> Batch {
    let resource = Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("svc".into())) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    })
}

fn cfg(json: &str) -> TailSamplingConfig {
    serde_json::from_str(json).expect("config")
}

fn ctx(reg: &Registry) -> ProcessorContext {
    ProcessorContext {
        id: "tail_sampling".into(),
        signal: Signal::Traces,
        registry: reg.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    }
}

fn build(json: &str) -> (TailSamplingProcessor, Registry) {
    let reg = Registry::new();
    let c = cfg(json);
    let (_, errors) = policy::compile_all(&c);
    assert!(errors.is_empty(), "{errors:?}");
    (TailSamplingProcessor::new(&c, &ctx(&reg)), reg)
}

/// Output spans by trace ID, checking resource and scope survived.
fn collect(out: Vec<Batch>) -> HashMap<Vec<u8>, Vec<Span>> {
    let mut m: HashMap<Vec<u8>, Vec<Span>> = HashMap::new();
    for b in out {
        let Batch::Traces(r) = b else { panic!("not traces") };
        for rs in r.resource_spans {
            assert!(rs.resource.as_ref().is_some_and(|r| r.attributes[0].key == "service.name"));
            for ss in rs.scope_spans {
                assert_eq!(ss.scope.as_ref().map(|s| s.name.as_str()), Some("lib"));
                for s in ss.spans {
                    m.entry(s.trace_id.clone()).or_default().push(s);
                }
            }
        }
    }
    m
}

fn attr<'a>(s: &'a Span, key: &str) -> Option<&'a str> {
    s.attributes.iter().find(|kv| kv.key == key).and_then(policy_str)
}

fn policy_str(kv: &KeyValue) -> Option<&str> {
    match kv.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s),
        _ => None,
    }
}

const MAIN_POLICIES: &str = r#"[
    {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
    {"name": "slow", "type": "latency", "latency": {"threshold_ms": 1000}},
    {"name": "rest", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}}
]"#;

#[test]
fn out_of_order_traces_keep_errors_and_slow_whole_and_sample_the_rest_at_rate() {
    let (mut p, reg) = build(&format!(r#"{{"decision_wait": "10s", "policies": {MAIN_POLICIES}}}"#));
    let traces = 10_000u64;
    let kind = |n: u64| (n.is_multiple_of(20), n % 20 == 1); // 5% errors, 5% slow
    let mut spans: Vec<Span> =
        (0..traces).flat_map(|n| (0..SPANS_PER_TRACE).map(move |i| span(n, i, kind(n).0, kind(n).1))).collect();
    spans.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
    let t0 = Instant::now();
    let mut out = Vec::new();
    for (k, chunk) in spans.chunks(1000).enumerate() {
        p.process(batch(chunk.to_vec()), t0 + Duration::from_millis(k as u64 * 10), &mut out);
    }
    assert!(out.is_empty(), "nothing is decided before decision_wait");
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(10)));
    p.tick(t0 + Duration::from_secs(11), &mut out);
    assert_eq!(p.traces_in_memory(), 0);
    assert_eq!(p.accounted_bytes(), 0);
    let kept = collect(out);
    let mut rest_kept = 0u64;
    for n in 0..traces {
        let (err, slow) = kind(n);
        let got = kept.get(&trace_id(n));
        if err || slow {
            let spans = got.unwrap_or_else(|| panic!("trace {n} must be kept"));
            assert_eq!(spans.len() as u64, SPANS_PER_TRACE, "trace {n} must be complete");
            let want = if err { "errors" } else { "slow" };
            assert!(spans.iter().all(|s| attr(s, POLICY_ATTRIBUTE) == Some(want) && s.trace_state == "ot=th:0"));
        } else if let Some(spans) = got {
            rest_kept += 1;
            assert_eq!(spans.len() as u64, SPANS_PER_TRACE);
            // Kept by the Collector's FNV hash, not by OpenTelemetry
            // randomness: no `th` is claimed.
            assert!(spans.iter().all(|s| attr(s, POLICY_ATTRIBUTE) == Some("rest") && s.trace_state.is_empty()));
        }
    }
    let rest = traces - traces / 10;
    let (mean, sigma) = (rest as f64 * 0.1, (rest as f64 * 0.1 * 0.9).sqrt());
    assert!(
        (rest_kept as f64 - mean).abs() <= 3.0 * sigma,
        "kept {rest_kept} of {rest}, expected {mean}±{}",
        3.0 * sigma
    );
    let dropped = reg.value("otelcol_processor_dropped_spans_total", &[("processor", "tail_sampling")]).unwrap();
    assert_eq!(dropped as u64, (rest - rest_kept) * SPANS_PER_TRACE);
    let kept_errors = reg
        .value(
            "sluice_tail_sampling_decisions_total",
            &[("processor", "tail_sampling"), ("policy", "errors"), ("outcome", "kept")],
        )
        .unwrap();
    assert_eq!(kept_errors as u64, traces / 20);
}

#[test]
fn late_spans_follow_the_decision() {
    let (mut p, reg) = build(
        r#"{"decision_wait": "5s", "policies": [
            {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}]}"#,
    );
    let t0 = Instant::now();
    let mut out = Vec::new();
    // Trace 0 has an error in its first part; trace 1 does not.
    p.process(batch(vec![span(0, 4, true, false), span(1, 0, false, false)]), t0, &mut out);
    p.tick(t0 + Duration::from_secs(6), &mut out);
    assert_eq!(collect(std::mem::take(&mut out)).len(), 1);
    p.process(batch(vec![span(0, 1, false, false), span(1, 1, true, false)]), t0 + Duration::from_secs(7), &mut out);
    let late = collect(out);
    assert_eq!(late.len(), 1, "the late span of the kept trace passes, the dropped one's does not");
    let s = &late[&trace_id(0)][0];
    assert_eq!(attr(s, POLICY_ATTRIBUTE), Some("errors"));
    assert_eq!(s.trace_state, "ot=th:0");
    assert_eq!(p.traces_in_memory(), 0, "late spans start no new trace");
    let v = |outcome| {
        reg.value("sluice_tail_sampling_late_spans_total", &[("processor", "tail_sampling"), ("outcome", outcome)])
    };
    assert_eq!((v("kept"), v("dropped")), (Some(1.0), Some(1.0)));
}

#[test]
fn memory_bound_decides_oldest_early_and_keeps_errors() {
    let (mut p, reg) = build(&format!(
        r#"{{"decision_wait": "30s", "max_memory_mib": 1, "decision_cache": {{"sampled_cache_size": 0, "non_sampled_cache_size": 0}},
            "policies": {MAIN_POLICIES}}}"#
    ));
    let traces = 20_000u64;
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut offered = 0usize;
    for chunk in (0..traces).collect::<Vec<_>>().chunks(200) {
        let spans: Vec<Span> = chunk
            .iter()
            .flat_map(|&n| (0..SPANS_PER_TRACE).map(move |i| span(n, i, n.is_multiple_of(20), false)))
            .collect();
        offered += spans.iter().map(span_bytes).sum::<usize>();
        p.process(batch(spans), t0, &mut out);
        assert!(p.accounted_bytes() <= 1 << 20, "accounted {} over the bound", p.accounted_bytes());
    }
    assert!(offered > 10 << 20, "the test offers far more than the bound ({offered})");
    p.flush(&mut out);
    assert_eq!(p.traces_in_memory(), 0);
    let early = reg
        .value("sluice_tail_sampling_early_decisions_total", &[("processor", "tail_sampling"), ("reason", "memory")])
        .unwrap();
    assert!(early > 1000.0, "early decisions {early}");
    let g = |s| {
        reg.value(
            "otelcol_processor_tail_sampling_global_count_traces_sampled_total",
            &[("processor", "tail_sampling"), ("sampled", s)],
        )
        .unwrap_or(0.0)
    };
    assert_eq!((g("true") + g("false")) as u64, traces, "every trace got exactly one decision");
    let kept = collect(out);
    for n in (0..traces).step_by(20) {
        assert_eq!(kept.get(&trace_id(n)).map(Vec::len), Some(SPANS_PER_TRACE as usize), "error trace {n}");
    }
    assert_eq!(reg.value("sluice_tail_sampling_bytes_in_memory", &[("processor", "tail_sampling")]), Some(0.0));
}

#[test]
fn num_traces_bound_decides_early() {
    let (mut p, reg) = build(r#"{"num_traces": 10, "policies": [{"name": "all", "type": "always_sample"}]}"#);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process(batch((0..25).map(|n| span(n, 0, false, false)).collect()), t0, &mut out);
    assert_eq!(p.traces_in_memory(), 10);
    assert_eq!(collect(out).len(), 15);
    let early = reg.value(
        "sluice_tail_sampling_early_decisions_total",
        &[("processor", "tail_sampling"), ("reason", "num_traces")],
    );
    assert_eq!(early, Some(15.0));
}

#[test]
fn root_span_shortens_the_wait() {
    let (mut p, _) = build(
        r#"{"decision_wait": "30s", "decision_wait_after_root_received": "2s",
            "policies": [{"name": "all", "type": "always_sample"}]}"#,
    );
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process(batch(vec![span(1, 1, false, false), span(2, 1, false, false)]), t0, &mut out);
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(30)));
    p.process(batch(vec![span(1, 0, false, false)]), t0 + Duration::from_secs(1), &mut out);
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(3)));
    p.tick(t0 + Duration::from_secs(3), &mut out);
    let got = collect(std::mem::take(&mut out));
    assert_eq!(got.len(), 1);
    assert_eq!(got[&trace_id(1)].len(), 2);
    assert_eq!(p.traces_in_memory(), 1, "the trace without a root still waits");
    p.flush(&mut out);
    assert_eq!(collect(out).len(), 1, "flush decides what is left");
}

/// Decides one trace (spans 0..5 of trace `n` with `attrs` on the root)
/// with `policies` and returns the policy name that kept it, if kept.
fn decide_with(policies: &str, attrs: Vec<KeyValue>, first_match: bool) -> Option<String> {
    let (mut p, _) = build(&format!(r#"{{"sample_on_first_match": {first_match}, "policies": {policies}}}"#));
    let mut spans: Vec<Span> = (0..SPANS_PER_TRACE).map(|i| span(3, i, false, false)).collect();
    spans[0].attributes = attrs;
    let mut out = Vec::new();
    p.process(batch(spans), Instant::now(), &mut out);
    p.flush(&mut out);
    let kept = collect(out);
    kept.get(&trace_id(3)).map(|s| attr(&s[0], POLICY_ATTRIBUTE).unwrap_or_default().to_string())
}

fn kv_str(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    }
}

#[test]
fn decision_semantics_match_the_collector() {
    let always = r#"{"name": "all", "type": "always_sample"}"#;
    let never = r#"{"name": "never", "type": "probabilistic", "probabilistic": {"sampling_percentage": 0}}"#;
    let inv = r#"{"name": "not-health", "type": "string_attribute",
        "string_attribute": {"key": "http.route", "values": ["/health.*"], "enabled_regex_matching": true, "invert_match": true}}"#;
    let health = || vec![kv_str("http.route", "/healthz")];
    let api = || vec![kv_str("http.route", "/api")];
    // An inverted match that matches vetoes even an always_sample.
    assert_eq!(decide_with(&format!("[{always}, {inv}]"), health(), false), None);
    // ... unless sample_on_first_match stopped before it.
    assert_eq!(decide_with(&format!("[{always}, {inv}]"), health(), true).as_deref(), Some("all"));
    // An inverted non-match keeps, attributed to the inverted policy...
    assert_eq!(decide_with(&format!("[{inv}]"), api(), false).as_deref(), Some("not-health"));
    // ... but not when another policy said NotSampled.
    assert_eq!(decide_with(&format!("[{inv}, {never}]"), api(), false), None);
    // Two policies sample: the first one is credited.
    let errs_or_api =
        r#"{"name": "api", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/api"]}}"#;
    assert_eq!(decide_with(&format!("[{errs_or_api}, {always}]"), api(), false).as_deref(), Some("api"));
    assert_eq!(decide_with(&format!("[{always}, {errs_or_api}]"), api(), false).as_deref(), Some("all"));
    // drop wins over everything.
    let drop = r#"{"name": "drop-health", "type": "drop", "drop": {"drop_sub_policy": [
        {"name": "h", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/healthz"]}}]}}"#;
    assert_eq!(decide_with(&format!("[{always}, {drop}]"), health(), false), None);
    assert_eq!(decide_with(&format!("[{always}, {drop}]"), api(), false).as_deref(), Some("all"));
    // and: every sub-policy must sample.
    let and = r#"{"name": "api-and-small", "type": "and", "and": {"and_sub_policy": [
        {"name": "a", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/api"]}},
        {"name": "b", "type": "span_count", "span_count": {"min_spans": 2, "max_spans": 5}}]}}"#;
    assert_eq!(decide_with(&format!("[{and}]"), api(), false).as_deref(), Some("api-and-small"));
    assert_eq!(decide_with(&format!("[{and}]"), health(), false), None);
    // numeric and boolean attributes.
    let num = r#"{"name": "big", "type": "numeric_attribute", "numeric_attribute": {"key": "n", "min_value": 10}}"#;
    let int = |v| KeyValue {
        key: "n".into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(v)) }),
        ..Default::default()
    };
    assert_eq!(decide_with(&format!("[{num}]"), vec![int(12)], false).as_deref(), Some("big"));
    assert_eq!(decide_with(&format!("[{num}]"), vec![int(2)], false), None);
}

#[test]
fn composite_keeps_within_its_rate_and_records_unknown_probability() {
    let (mut p, _) = build(
        r#"{"policies": [{"name": "c", "type": "composite", "composite": {
            "max_total_spans_per_second": 12, "policy_order": ["all"],
            "composite_sub_policy": [{"name": "all", "type": "always_sample"}],
            "rate_allocation": [{"policy": "all", "percent": 100}]}}]}"#,
    );
    let t0 = Instant::now();
    let mut out = Vec::new();
    let mut spans: Vec<Span> =
        (0..10).flat_map(|n| (0..SPANS_PER_TRACE).map(move |i| span(n, i, false, false))).collect();
    spans.iter_mut().for_each(|s| s.trace_state = "ot=th:8".into());
    p.process(batch(spans), t0, &mut out);
    p.flush(&mut out);
    let kept = collect(out);
    assert_eq!(kept.len(), 2, "12 spans per second allow two 5-span traces");
    assert!(kept.values().flatten().all(|s| s.trace_state.is_empty()), "rate-limited keeps drop th");
}

fn load_errors(policies: &str) -> Vec<String> {
    let yaml = format!(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n\
         processors:\n  tail_sampling:\n    policies:\n{policies}\
         exporters:\n  debug:\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      processors: [tail_sampling]\n      exporters: [debug]\n"
    );
    match load_agent_config(&yaml, &|_| None) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(|e| format!("{} @{}: {}", e.path, e.line.unwrap_or(0), e.message)).collect(),
    }
}

#[test]
fn config_errors_name_the_policy_path() {
    let ok = "      - {name: a, type: always_sample}\n";
    assert_eq!(load_errors(ok), Vec::<String>::new());
    let errs = load_errors(&format!(
        "{ok}      - {{name: b, type: always_sample}}\n      - name: c\n        type: sometimes_sample\n"
    ));
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(errs[0].starts_with("processors::tail_sampling::policies::2::type @12:"), "{errs:?}");
    assert!(errs[0].contains("unknown policy type \"sometimes_sample\""));

    let errs = load_errors(
        "      - name: re\n        type: string_attribute\n        string_attribute: {key: k, values: [\"(\"], enabled_regex_matching: true}\n",
    );
    assert!(
        errs.len() == 1 && errs[0].starts_with("processors::tail_sampling::policies::0::string_attribute::values::0"),
        "{errs:?}"
    );
    assert!(errs[0].contains("invalid regular expression"));

    let errs = load_errors(
        "      - name: p\n        type: probabilistic\n        probabilistic: {sampling_percentage: 150}\n",
    );
    assert!(
        errs.len() == 1
            && errs[0].starts_with("processors::tail_sampling::policies::0::probabilistic::sampling_percentage"),
        "{errs:?}"
    );

    let errs = load_errors(
        "      - name: a\n        type: and\n        and: {and_sub_policy: [{name: x, type: composite}]}\n",
    );
    assert!(
        errs.len() == 1 && errs[0].starts_with("processors::tail_sampling::policies::0::and::and_sub_policy::0::type"),
        "{errs:?}"
    );
}

#[test]
fn tail_sampling_is_keyed_by_trace_and_traces_only() {
    let c = spec(r#"{"policies": [{"name": "all", "type": "always_sample"}]}"#);
    assert!(crate::processors::ProcessorSpec::state_key(&c) == crate::processors::StateKey::TraceId);
    let ty = crate::components::find(crate::config::ComponentKind::Processor, "tail_sampling").unwrap();
    assert_eq!(ty.signals, &[Signal::Traces]);
}

#[path = "../../../benches/support/trace_data.rs"]
mod trace_data;

/// The bench's ten policies, every kind that gathers facts at ingest.
const BENCH_POLICIES: &str = r#"[
    {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
    {"name": "slow", "type": "latency", "latency": {"threshold_ms": 500}},
    {"name": "route", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/api/v1/items/7"]}},
    {"name": "re", "type": "string_attribute", "string_attribute": {"key": "server.address", "values": ["^payments\\..*"], "enabled_regex_matching": true}},
    {"name": "big", "type": "numeric_attribute", "numeric_attribute": {"key": "http.response.status_code", "min_value": 500}},
    {"name": "retry", "type": "boolean_attribute", "boolean_attribute": {"key": "retry", "value": true}},
    {"name": "wide", "type": "span_count", "span_count": {"min_spans": 50}},
    {"name": "ts", "type": "trace_state", "trace_state": {"key": "vendor", "values": ["keep"]}},
    {"name": "limit", "type": "rate_limiting", "rate_limiting": {"spans_per_second": 1000000}},
    {"name": "rest", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}}
]"#;

#[test]
fn buffered_spans_cost_at_most_one_and_a_half_times_their_encoded_size() {
    let (mut p, _) = build(&format!(r#"{{"decision_wait": "10s", "policies": {BENCH_POLICIES}}}"#));
    // 1000 traces of 10 spans with 10 attributes each, as the load test sends.
    let req = trace_data::trace_request(10_000);
    let spans: Vec<&Span> = req.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans).collect();
    let encoded = spans.iter().map(|s| s.encoded_len()).sum::<usize>() as f64 / spans.len() as f64;
    let n = spans.len() as f64;
    let mut out = Vec::new();
    p.process(Batch::Traces(req.clone()), Instant::now(), &mut out);
    assert!(out.is_empty());
    assert_eq!(p.traces_in_memory(), 1000);
    let per_span = p.accounted_bytes() as f64 / n;
    eprintln!("accounted {per_span:.0} bytes per buffered span, encoded {encoded:.0} ({:.2}x)", per_span / encoded);
    assert!(per_span <= 1.5 * encoded, "accounted {per_span:.0} bytes per span vs {encoded:.0} encoded");
    // Every span comes back as it went in, but for the policy attribute and `th`.
    let (mut p, _) = build(r#"{"decision_wait": "10s", "policies": [{"name": "all", "type": "always_sample"}]}"#);
    p.process(Batch::Traces(req.clone()), Instant::now(), &mut out);
    p.flush(&mut out);
    let Some(Batch::Traces(got)) = out.pop() else { panic!("nothing kept") };
    let mut got_spans: Vec<Span> =
        got.resource_spans.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans).collect();
    for s in &mut got_spans {
        assert_eq!(s.attributes.pop().map(|kv| kv.key), Some(POLICY_ATTRIBUTE.to_string()));
        assert_eq!(std::mem::take(&mut s.trace_state), "ot=th:0");
    }
    let mut want: Vec<Span> = spans.into_iter().cloned().collect();
    want.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    got_spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
    assert!(want == got_spans, "kept spans differ from the spans sent");
}

/// A trace whose spans come in two batches, each with its own resource:
/// facts from both batches (resource attributes included) count.
#[test]
fn facts_gather_across_batches_resources_and_tracestates() {
    let decide = |policies: &str, second: Span, second_resource: Vec<KeyValue>| -> Option<String> {
        let (mut p, _) = build(&format!(r#"{{"decision_wait": "10s", "policies": {policies}}}"#));
        let t0 = Instant::now();
        let mut out = Vec::new();
        p.process(batch(vec![span(3, 0, false, false), span(3, 1, false, false)]), t0, &mut out);
        let mut b = batch(vec![second]);
        if let Batch::Traces(r) = &mut b {
            if let Some(res) = r.resource_spans[0].resource.as_mut() {
                res.attributes.extend(second_resource);
            }
        }
        p.process(b, t0 + Duration::from_secs(1), &mut out);
        p.tick(t0 + Duration::from_secs(11), &mut out);
        let kept = collect(out);
        let spans = kept.get(&trace_id(3))?;
        assert_eq!(spans.len(), 3, "a kept trace is whole");
        Some(attr(&spans[0], POLICY_ATTRIBUTE).unwrap_or_default().to_string())
    };
    let plain = || span(3, 2, false, false);
    let region =
        r#"[{"name": "eu", "type": "string_attribute", "string_attribute": {"key": "region", "values": ["eu"]}}]"#;
    assert_eq!(decide(region, plain(), vec![kv_str("region", "eu")]).as_deref(), Some("eu"));
    assert_eq!(decide(region, plain(), vec![kv_str("region", "us")]), None);
    let inv = r#"[{"name": "not-eu", "type": "string_attribute", "string_attribute": {"key": "region", "values": ["eu"], "invert_match": true}}]"#;
    // One matching span anywhere vetoes an inverted match.
    let mut eu = plain();
    eu.attributes.push(kv_str("region", "eu"));
    assert_eq!(decide(inv, eu, vec![]), None);
    assert_eq!(decide(inv, plain(), vec![]).as_deref(), Some("not-eu"));
    let ts = r#"[{"name": "ts", "type": "trace_state", "trace_state": {"key": "vendor", "values": ["keep"]}}]"#;
    let mut tagged = plain();
    tagged.trace_state = "vendor=keep".into();
    assert_eq!(decide(ts, tagged, vec![]).as_deref(), Some("ts"));
    assert_eq!(decide(ts, plain(), vec![]), None);
    // The latest end over both batches makes the trace slow; an error in the
    // second batch is seen.
    let slow = r#"[{"name": "slow", "type": "latency", "latency": {"threshold_ms": 1000}}]"#;
    let mut late = plain();
    late.end_time_unix_nano += 5_000_000_000;
    assert_eq!(decide(slow, late, vec![]).as_deref(), Some("slow"));
    assert_eq!(decide(slow, plain(), vec![]), None);
    let errors = r#"[{"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}]"#;
    assert_eq!(decide(errors, span(3, SPANS_PER_TRACE - 1, true, false), vec![]).as_deref(), Some("errors"));
    assert_eq!(decide(errors, plain(), vec![]), None);
    // As the Collector, `probabilistic` hashes the trace ID: an `rv` in a
    // span's tracestate changes nothing.
    let half = r#"[{"name": "half", "type": "probabilistic", "probabilistic": {"sampling_percentage": 50}}]"#;
    let with_rv = |rv: &str| {
        let mut s = plain();
        s.trace_state = format!("ot=rv:{rv}");
        s
    };
    assert_eq!(decide(half, with_rv("ffffffffffffff"), vec![]), decide(half, with_rv("00000000000000"), vec![]));
}

// --- Requests read as received (process_payload) --------------------------

/// A span with random attributes of every kind, a random status, tracestate
/// and parent, sometimes with fields repeated (a later one wins in a decode).
fn random_span(rng: &mut rand::rngs::StdRng, n: u64) -> Span {
    use rand::Rng;
    let value = |rng: &mut rand::rngs::StdRng| -> any_value::Value {
        match rng.random_range(0..5) {
            0 => any_value::Value::StringValue(
                ["/api/v1/items/7", "/admin/x", "GET", "ok"][rng.random_range(0..4)].into(),
            ),
            1 => any_value::Value::IntValue(rng.random_range(400..600)),
            2 => any_value::Value::DoubleValue(rng.random_range(0.0..1000.0)),
            3 => any_value::Value::BoolValue(rng.random()),
            _ => any_value::Value::BytesValue(vec![1, 2, 3]),
        }
    };
    let keys = ["http.route", "http.response.status_code", "retry", "other", "db.system"];
    let attributes = (0..rng.random_range(0..8))
        .map(|_| KeyValue {
            key: keys[rng.random_range(0..keys.len())].into(),
            value: Some(AnyValue { value: Some(value(rng)) }),
            ..Default::default()
        })
        .collect();
    let start = 1_700_000_000_000_000_000 + rng.random_range(0..10_000_000_000u64);
    Span {
        trace_id: trace_id(n),
        span_id: rng.random::<u64>().to_be_bytes().to_vec(),
        parent_span_id: if rng.random_bool(0.3) { vec![] } else { rng.random::<u64>().to_be_bytes().to_vec() },
        trace_state: ["", "debug=1", "ot=rv:0123456789abcd", "a=b,debug=0"][rng.random_range(0..4)].into(),
        flags: [0, 1, 0x100, 0x301][rng.random_range(0..4)],
        name: "op".into(),
        start_time_unix_nano: start,
        end_time_unix_nano: start + rng.random_range(0..8_000_000_000u64),
        attributes,
        status: Some(Status { code: rng.random_range(0..3), ..Default::default() }),
        ..Default::default()
    }
}

#[test]
fn a_span_read_on_the_wire_gives_the_policies_what_its_decode_gives() {
    use super::wire::WireSpan;
    use policy::{AttrValue, Attrs};
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for n in 0..2000 {
        let span = random_span(&mut rng, n);
        let mut bytes = span.encode_to_vec();
        // Repeated scalar and status fields: the last one wins in a decode.
        if n % 5 == 0 {
            let later = Span {
                start_time_unix_nano: span.start_time_unix_nano + 1,
                status: Some(Status { code: 1, ..Default::default() }),
                trace_state: "debug=1".into(),
                ..Default::default()
            };
            bytes.extend(later.encode_to_vec());
        }
        let decoded = Span::decode(bytes.as_slice()).unwrap();
        let keys = super::wire::AttributeKeys::new(
            ["http.route", "http.response.status_code", "retry", "other", "db.system"]
                .iter()
                .map(|k| k.as_bytes().to_vec())
                .collect(),
        );
        let wire = WireSpan::read(&bytes, &keys);
        assert_eq!(wire.trace_id, decoded.trace_id.as_slice());
        assert_eq!(wire.parent_span_id, decoded.parent_span_id.as_slice());
        let (w, d) = (wire.facts(), policy::SpanFacts::of(&decoded));
        assert_eq!((w.start, w.end, w.status_code, w.trace_state), (d.start, d.end, d.status_code, d.trace_state));
        for key in ["http.route", "http.response.status_code", "retry", "other", "db.system", "missing"] {
            let collect = |a: &dyn Attrs| {
                let mut seen: Vec<String> = Vec::new();
                a.any_with_key(key, &mut |v: AttrValue| {
                    seen.push(format!("{v:?}"));
                    false
                });
                seen
            };
            assert_eq!(collect(w.attributes), collect(d.attributes), "span {n}, key {key}");
        }
    }
}

/// The same requests through `process` (decoded) and `process_payload`
/// (as received) give the same kept spans, in the same order, and the same
/// decisions.
#[test]
fn buffering_requests_as_received_decides_and_emits_as_decoding_them() {
    let policies = r#"{"decision_wait": "1s", "policies": [
        {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
        {"name": "slow", "type": "latency", "latency": {"threshold_ms": 5000}},
        {"name": "route", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/api/v1/items/7"]}},
        {"name": "admin", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["^/admin/.*"], "enabled_regex_matching": true}},
        {"name": "5xx", "type": "numeric_attribute", "numeric_attribute": {"key": "http.response.status_code", "min_value": 500, "max_value": 599}},
        {"name": "retried", "type": "boolean_attribute", "boolean_attribute": {"key": "retry", "value": true}},
        {"name": "debug", "type": "trace_state", "trace_state": {"key": "debug", "values": ["1"]}},
        {"name": "some", "type": "probabilistic", "probabilistic": {"sampling_percentage": 1}},
        {"name": "bytes", "type": "bytes_limiting", "bytes_limiting": {"bytes_per_second": 300}}
    ]}"#;
    let (mut decoded, reg_d) = build(policies);
    let (mut encoded, reg_e) = build(policies);
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let t0 = Instant::now();
    let (mut out_d, mut out_e) = (Vec::new(), Vec::new());
    for round in 0..40u64 {
        // Traces spread over rounds (ID round * 3 + i % 40): most get spans from several requests.
        let spans: Vec<Span> = (0..50).map(|i| random_span(&mut rng, round * 3 + i % 40)).collect();
        let req = batch(spans);
        let now = t0 + Duration::from_millis(round * 100);
        let enc = crate::data::EncodedBatch::encode(&req);
        decoded.process(req, now, &mut out_d);
        let mut payloads = Vec::new();
        encoded.process_payload(Payload::Encoded(enc), now, &mut payloads);
        assert!(payloads.iter().all(|p| matches!(p, Payload::Encoded(_))), "kept spans go on encoded");
        decoded_into(payloads, &mut out_e);
        assert_eq!(decoded.accounted_bytes() > 0, encoded.accounted_bytes() > 0);
        assert_eq!(decoded.traces_in_memory(), encoded.traces_in_memory());
    }
    fn decoded_into(payloads: Vec<Payload>, out: &mut Vec<Batch>) {
        out.extend(payloads.into_iter().map(|p| p.into_decoded().expect("kept spans decode")));
    }
    decoded.tick(t0 + Duration::from_secs(10), &mut out_d);
    encoded.tick(t0 + Duration::from_secs(10), &mut out_e);
    decoded.flush(&mut out_d);
    encoded.flush(&mut out_e);
    let spans = |out: &[Batch]| -> Vec<Span> {
        out.iter()
            .flat_map(|b| match b {
                Batch::Traces(r) => r.resource_spans.clone(),
                _ => vec![],
            })
            .flat_map(|rs| rs.scope_spans)
            .flat_map(|ss| ss.spans)
            .collect()
    };
    let (kept_d, kept_e) = (spans(&out_d), spans(&out_e));
    let dropped = |r: &Registry| {
        r.value(
            "otelcol_processor_tail_sampling_global_count_traces_sampled_total",
            &[("processor", "tail_sampling"), ("sampled", "false")],
        )
    };
    // Trace sizes (bytes_limiting) are the same read either way.
    let by_bytes = |r: &Registry, sampled: &str| {
        r.value(
            "otelcol_processor_tail_sampling_count_traces_sampled_total",
            &[("processor", "tail_sampling"), ("policy", "bytes"), ("sampled", sampled)],
        )
    };
    assert!(by_bytes(&reg_d, "true").unwrap_or(0.0) > 0.0 && by_bytes(&reg_d, "false").unwrap_or(0.0) > 0.0);
    assert_eq!(
        (by_bytes(&reg_d, "true"), by_bytes(&reg_d, "false")),
        (by_bytes(&reg_e, "true"), by_bytes(&reg_e, "false"))
    );
    assert!(dropped(&reg_d).unwrap_or(0.0) > 0.0 && !kept_d.is_empty(), "a mix is kept and dropped");
    assert_eq!(kept_d, kept_e);
    assert_eq!(out_d, out_e, "same resources and scopes around them");
    assert_eq!(dropped(&reg_d), dropped(&reg_e));
}

/// Kept spans are marked in their bytes. Decoded, each is the span as it
/// came with `sampling.policy` set (the first such attribute in place, later
/// ones removed, else one added last) and its tracestate rewritten; the
/// request groups them under their resource and scope in first-seen order.
#[test]
fn kept_spans_marked_in_their_bytes_decode_as_marked_spans() {
    use super::emit::{policy_attribute, KeptSpans, TsCache};
    use crate::processors::sampling::tracestate::record_threshold;
    use crate::processors::sampling::Threshold;
    use rand::Rng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let resource = |name: &str| Resource {
        attributes: vec![KeyValue {
            key: "service.name".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(name.into())) }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let scope = |name: &str| InstrumentationScope { name: name.into(), ..Default::default() };
    let (ra, rb) = (
        ResourceGroup::new(&[], Some(resource("a")), "https://r".into()),
        ResourceGroup::new(&[], None, String::new()),
    );
    let groups = [
        ScopeGroup::new(&ra, Some(scope("a1").encode_to_vec()), b"https://s".to_vec()),
        ScopeGroup::new(&rb, None, Vec::new()),
        ScopeGroup::new(&ra, Some(scope("a2").encode_to_vec()), Vec::new()),
    ];
    let policy_kv = |name: &str| KeyValue {
        key: POLICY_ATTRIBUTE.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(name.into())) }),
        ..Default::default()
    };
    let th = Threshold::from_probability(0.25, 4).unwrap();
    let mut kept = KeptSpans::default();
    let mut want: Vec<(usize, Span)> = Vec::new();
    for n in 0..300 {
        let mut span = random_span(&mut rng, n);
        // Some spans already carry the attribute, once or twice, anywhere.
        for _ in 0..rng.random_range(0..3u8) {
            let at = rng.random_range(0..=span.attributes.len());
            span.attributes.insert(at, policy_kv("upstream"));
        }
        let mut bytes = span.encode_to_vec();
        if n % 7 == 0 {
            // A repeated tracestate: the last one is the span's.
            bytes.extend(
                Span { trace_state: "debug=1,ot=rv:abcdef01234567".into(), ..Default::default() }.encode_to_vec(),
            );
        }
        let received = Span::decode(bytes.as_slice()).unwrap();
        let (policy, prob) = if n % 2 == 0 { ("errors", Prob::Known(th)) } else { ("capped", Prob::Unknown) };
        let g = rng.random_range(0..groups.len());
        kept.push(&groups[g], &bytes, &policy_attribute(policy), prob, &mut TsCache::default());

        let mut marked = received.clone();
        match marked.attributes.iter().position(|kv| kv.key == POLICY_ATTRIBUTE) {
            Some(i) => {
                marked.attributes[i] = policy_kv(policy);
                let mut seen = 0;
                marked.attributes.retain(|kv| {
                    kv.key != POLICY_ATTRIBUTE || {
                        seen += 1;
                        seen == 1
                    }
                });
            }
            None => marked.attributes.push(policy_kv(policy)),
        }
        marked.trace_state = match prob {
            Prob::Known(th) => record_threshold(&received.trace_state, th).unwrap_or(received.trace_state.clone()),
            Prob::Unknown => {
                let mut w =
                    crate::processors::sampling::tracestate::W3cTraceState::parse(&received.trace_state).unwrap();
                let mut ot = w.ot().unwrap();
                ot.threshold = None;
                w.set_ot(&ot);
                w.to_string()
            }
        };
        want.push((g, marked));
    }
    let batch = kept.take().expect("spans were pushed");
    assert!(kept.take().is_none(), "taken once");
    assert_eq!(batch.item_count(), 300);
    let Batch::Traces(got) = batch.decode().unwrap() else { panic!("traces") };
    // Expected grouping: resources a (scopes a1, a2 in first-seen order) and
    // b, in the order their first span came.
    let first = |gs: &[usize]| want.iter().position(|(g, _)| gs.contains(g)).unwrap();
    let spans_of = |g: usize| want.iter().filter(|(x, _)| *x == g).map(|(_, s)| s.clone()).collect::<Vec<_>>();
    let scope_spans = |g: usize, s: Option<InstrumentationScope>, url: &str| ScopeSpans {
        scope: s,
        spans: spans_of(g),
        schema_url: url.into(),
    };
    let mut a_scopes = vec![
        (first(&[0]), scope_spans(0, Some(scope("a1")), "https://s")),
        (first(&[2]), scope_spans(2, Some(scope("a2")), "")),
    ];
    a_scopes.sort_by_key(|(i, _)| *i);
    let mut resources = vec![
        (
            first(&[0, 2]),
            ResourceSpans {
                resource: Some(resource("a")),
                scope_spans: a_scopes.into_iter().map(|(_, s)| s).collect(),
                schema_url: "https://r".into(),
            },
        ),
        (
            first(&[1]),
            ResourceSpans { resource: None, scope_spans: vec![scope_spans(1, None, "")], schema_url: String::new() },
        ),
    ];
    resources.sort_by_key(|(i, _)| *i);
    let expected = ExportTraceServiceRequest { resource_spans: resources.into_iter().map(|(_, r)| r).collect() };
    assert_eq!(got, expected);
}

// --- Collector parity (issue 17): probabilistic, rate_limiting, composite, latency

/// FNV-64a written out: offset basis 14695981039346656037, prime
/// 1099511628211, over the salt's bytes then the trace ID's.
fn fnv64_by_hand(salt: &str, id: &[u8]) -> u64 {
    let mut h: u64 = 14_695_981_039_346_656_037;
    for b in salt.as_bytes().iter().chain(id) {
        h ^= *b as u64;
        h = h.wrapping_mul(1_099_511_628_211);
    }
    h
}

/// A config compiled as the loader does: policies once, for every instance.
fn spec(json: &str) -> TailSamplingSpec {
    let config = cfg(json);
    let (policies, errors) = policy::compile_all(&config);
    assert!(errors.is_empty(), "{errors:?}");
    TailSamplingSpec { config, policies: Arc::new(policies) }
}

/// Worker `worker` of `workers` instances of one processor in one pipeline,
/// built from one compiled `spec` as the pipeline builds them: they share
/// `slot`, as the pipeline gives them one.
fn build_worker(
    spec: &TailSamplingSpec,
    id: &str,
    worker: usize,
    workers: usize,
    slot: &crate::processors::SharedSlot,
) -> TailSamplingProcessor {
    let reg = Registry::new();
    let ctx = ProcessorContext {
        id: id.into(),
        signal: Signal::Traces,
        registry: reg,
        worker,
        workers,
        shared: slot.clone(),
        storage_dir: None,
    };
    TailSamplingProcessor::from_compiled(&spec.config, &spec.policies, &ctx)
}

/// One-span traces `from..to` (no root, so only flush or the wait decides them).
fn one_span_traces(from: u64, to: u64) -> Vec<Span> {
    (from..to).map(|n| span(n, 1, false, false)).collect()
}

/// Decides everything `p` holds at `now` and returns the kept trace IDs.
fn decide_all_at(p: &mut TailSamplingProcessor, spans: Vec<Span>, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    p.process(batch(spans), now, &mut out);
    p.flush(&mut out);
    collect(out).into_keys().collect()
}

#[test]
fn probabilistic_hashes_salt_and_trace_id_as_the_collector() {
    // MaxUint64 × ratio, rounded to a 64-bit mantissa and truncated, computed
    // with exact fractions in Python (see the report of issue 17).
    let thresholds = [
        (10.0, 1_844_674_407_370_955_263u64),
        (1.0, 184_467_440_737_095_519),
        (33.3, 6_142_765_776_545_279_999),
        (50.0, 9_223_372_036_854_775_807),
        (0.01, 1_844_674_407_370_955),
        (100.0, u64::MAX),
        (25.0, 4_611_686_018_427_387_903),
        (12.5, 2_305_843_009_213_693_951),
        (99.9, 18_428_297_329_635_844_095),
        (0.0, 0),
    ];
    for (pct, want) in thresholds {
        assert_eq!(policy::hash_threshold(pct / 100.0), want, "{pct}%");
    }
    // The default salt is the Collector's.
    let id = hex_id("a19253e584432d195d7991e9420e58e6");
    assert_eq!(fnv64_by_hand("default-hash-seed", &id), 0x1cae_de0a_f079_239b);
    assert_eq!(policy::fnv1a64(b"default-hash-seed", &id), 0x1cae_de0a_f079_239b);

    // Decision tables: 2000 traces per salt and percentage.
    for salt in ["", "tier-2"] {
        for (pct, threshold) in thresholds {
            let json = format!(
                r#"{{"policies": [{{"name": "p", "type": "probabilistic",
                    "probabilistic": {{"hash_salt": "{salt}", "sampling_percentage": {pct}}}}}]}}"#
            );
            let (mut p, _) = build(&json);
            let spans = one_span_traces(0, 2000);
            let salted = if salt.is_empty() { "default-hash-seed" } else { salt };
            let mut want: Vec<Vec<u8>> = spans
                .iter()
                .filter(|s| fnv64_by_hand(salted, &s.trace_id) <= threshold)
                .map(|s| s.trace_id.clone())
                .collect();
            let mut got = decide_all_at(&mut p, spans, Instant::now());
            want.sort();
            got.sort();
            assert_eq!(got, want, "salt {salt:?} {pct}%");
        }
    }
}

fn hex_id(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn rate_limiting_is_one_token_bucket_per_processor() {
    let limit = r#"{"policies": [{"name": "rl", "type": "rate_limiting", "rate_limiting": {"spans_per_second": 10}}]}"#;
    let t0 = Instant::now();
    // 10 spans/s, burst 2 × 10: 20 of 30 one-span traces decided at once.
    let (mut p, _) = build(limit);
    assert_eq!(decide_all_at(&mut p, one_span_traces(0, 30), t0).len(), 20);
    // The bucket refills continuously: 0.5 s later, 5 more.
    assert_eq!(decide_all_at(&mut p, one_span_traces(100, 130), t0 + Duration::from_millis(500)).len(), 5);
    // Never above the burst, however long it was idle.
    assert_eq!(decide_all_at(&mut p, one_span_traces(200, 260), t0 + Duration::from_secs(60)).len(), 20);

    // burst_capacity set: that many at once; a trace larger than the burst
    // never passes.
    let burst = r#"{"policies": [{"name": "rl", "type": "rate_limiting",
        "rate_limiting": {"spans_per_second": 10, "burst_capacity": 5}}]}"#;
    let (mut p, _) = build(burst);
    assert_eq!(decide_all_at(&mut p, one_span_traces(0, 30), t0).len(), 5);
    let big: Vec<Span> = (0..6).map(|i| span(500, i, false, false)).collect();
    assert!(decide_all_at(&mut p, big, t0 + Duration::from_secs(60)).is_empty());

    // Shared by the processor's workers, not split between them: two
    // instances of one processor keep 20 of 2 × 15 together.
    let compiled = spec(limit);
    let slot = crate::processors::SharedSlot::default();
    let w0 = &mut build_worker(&compiled, "tail_sampling/rl_shared", 0, 2, &slot);
    let w1 = &mut build_worker(&compiled, "tail_sampling/rl_shared", 1, 2, &slot);
    let kept =
        decide_all_at(w0, one_span_traces(0, 15), t0).len() + decide_all_at(w1, one_span_traces(15, 30), t0).len();
    assert_eq!(kept, 20);
    // The same compiled config in another pipeline (another slot) has a
    // bucket of its own, as each Collector pipeline has its own processor.
    let other = &mut build_worker(&compiled, "tail_sampling/rl_shared", 0, 1, &Default::default());
    assert_eq!(decide_all_at(other, one_span_traces(30, 60), t0).len(), 20);
}

#[test]
fn token_bucket_follows_go_rate_limiter() {
    let t0 = Instant::now();
    let mut b = policy::TokenBucket::new(3, 3);
    assert!(b.allow_n(t0, 3), "starts full");
    assert!(!b.allow_n(t0, 1), "empty");
    // 1/3 s later one token is back.
    assert!(!b.allow_n(t0 + Duration::from_millis(333), 1));
    assert!(b.allow_n(t0 + Duration::from_millis(334), 1));
    // A refused request takes nothing; an earlier instant refills nothing.
    assert!(!b.allow_n(t0 + Duration::from_millis(334), 4), "more than the burst never passes");
    assert!(b.allow_n(t0 + Duration::from_secs(2), 3));
    assert!(!b.allow_n(t0, 1));
}

#[test]
fn composite_budgets_are_the_collectors() {
    let t0 = Instant::now();
    let composite = |alloc: &str, order: &str| {
        format!(
            r#"{{"policies": [{{"name": "c", "type": "composite", "composite": {{
                "max_total_spans_per_second": 20, "policy_order": {order},
                "composite_sub_policy": [{{"name": "a", "type": "always_sample"}}, {{"name": "b", "type": "always_sample"}}],
                "rate_allocation": {alloc}}}}}]}}"#
        )
    };
    // A sub-policy missing from rate_allocation gets nothing: "a" samples
    // first, has no budget, and the composite says no (it does not go on
    // to "b").
    let (mut p, _) = build(&composite(r#"[{"policy": "b", "percent": 50}]"#, r#"["a", "b"]"#));
    assert!(decide_all_at(&mut p, one_span_traces(0, 30), t0).is_empty());
    // percent 0 is an equal share: 20 / 2 sub-policies = 10 spans per second.
    let (mut p, _) = build(&composite(r#"[{"policy": "a", "percent": 0}]"#, r#"["a", "b"]"#));
    assert_eq!(decide_all_at(&mut p, one_span_traces(0, 30), t0).len(), 10);
    // A listed percent is that share of the total, truncated: 33% of 20 = 6.
    let (mut p, _) = build(&composite(r#"[{"policy": "a", "percent": 33}]"#, r#"["a", "b"]"#));
    assert_eq!(decide_all_at(&mut p, one_span_traces(0, 30), t0).len(), 6);
    // The window is one second: the next second allows 6 more.
    assert_eq!(decide_all_at(&mut p, one_span_traces(100, 130), t0 + Duration::from_millis(1000)).len(), 6);
    // Budgets are per processor: two workers together keep 10, not 20.
    let json = composite(r#"[{"policy": "a", "percent": 50}]"#, r#"["a", "b"]"#);
    let slot = crate::processors::SharedSlot::default();
    let compiled = spec(&json);
    let w0 = &mut build_worker(&compiled, "tail_sampling/composite_shared", 0, 2, &slot);
    let w1 = &mut build_worker(&compiled, "tail_sampling/composite_shared", 1, 2, &slot);
    let kept =
        decide_all_at(w0, one_span_traces(0, 15), t0).len() + decide_all_at(w1, one_span_traces(15, 30), t0).len();
    assert_eq!(kept, 10);
}

/// A span of trace `n` from `start_ms` to `end_ms` (fractional ms allowed).
fn timed_span(n: u64, i: u64, start_ms: f64, end_ms: f64) -> Span {
    let base = 1_700_000_000_000_000_000u64;
    let mut s = span(n, i, false, false);
    s.start_time_unix_nano = base + (start_ms * 1e6) as u64;
    s.end_time_unix_nano = base + (end_ms * 1e6) as u64;
    s
}

#[test]
fn latency_counts_whole_milliseconds_span_by_span() {
    let t0 = Instant::now();
    let latency = |lower: u64, upper: u64| {
        format!(
            r#"{{"policies": [{{"name": "l", "type": "latency", "latency": {{"threshold_ms": {lower}, "upper_threshold_ms": {upper}}}}}]}}"#
        )
    };
    let kept = |json: &str, spans: Vec<Span>| {
        let (mut p, _) = build(json);
        !decide_all_at(&mut p, spans, t0).is_empty()
    };
    // With an upper bound: whole milliseconds, strictly above the lower one.
    let window = latency(100, 200);
    assert!(!kept(&window, vec![timed_span(1, 0, 0.0, 100.0)]), "100 ms");
    assert!(!kept(&window, vec![timed_span(1, 0, 0.0, 100.9)]), "100.9 ms is 100 whole ms");
    assert!(kept(&window, vec![timed_span(1, 0, 0.0, 101.0)]), "101 ms");
    assert!(kept(&window, vec![timed_span(1, 0, 0.0, 200.5)]), "200.5 ms is 200 whole ms");
    assert!(!kept(&window, vec![timed_span(1, 0, 0.0, 201.0)]), "201 ms");
    // Without one: at least the threshold.
    let open = latency(100, 0);
    assert!(kept(&open, vec![timed_span(1, 0, 0.0, 100.0)]), "100 ms");
    assert!(!kept(&open, vec![timed_span(1, 0, 0.0, 99.9)]), "99.9 ms");
    // Span by span: the spans so far lasting 150 ms keep the trace even
    // though a later span stretches it to 500 ms; the other order does not.
    assert!(kept(&window, vec![timed_span(1, 0, 0.0, 150.0), timed_span(1, 1, 0.0, 500.0)]));
    assert!(!kept(&window, vec![timed_span(1, 1, 0.0, 500.0), timed_span(1, 0, 0.0, 150.0)]));
}

// --- The Collector's trace_flags, not, bytes_limiting and shutdown/overflow fields

fn with_flags(mut s: Span, flags: u32) -> Span {
    s.flags = flags;
    s
}

#[test]
fn trace_flags_keeps_traces_with_a_sampled_span() {
    let json = r#"{"policies": [{"name": "f", "type": "trace_flags"}]}"#;
    let t0 = Instant::now();
    // Bit 0 of the flags' low byte, on any span of the trace.
    for (flags, keep) in [(0u32, false), (1, true), (0x100, false), (0x301, true), (2, false)] {
        let (mut p, _) = build(json);
        let spans = vec![span(1, 0, false, false), with_flags(span(1, 1, false, false), flags)];
        assert_eq!(decide_all_at(&mut p, spans, t0).len() == 1, keep, "flags {flags:#x}");
    }
    // Read the same from spans buffered as received.
    let (mut p, _) = build(json);
    let req = batch(vec![with_flags(span(1, 0, false, false), 0x301)]);
    let mut out = Vec::new();
    p.process_payload(Payload::Encoded(crate::data::EncodedBatch::encode(&req)), t0, &mut out);
    p.flush_payload(&mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn not_inverts_its_sub_policy() {
    let not_errors = r#"[{"name": "ok", "type": "not", "not": {"not_sub_policy":
        {"name": "err", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}}}}]"#;
    let (mut p, _) = build(&format!(r#"{{"policies": {not_errors}}}"#));
    let mut spans: Vec<Span> = (0..SPANS_PER_TRACE).map(|i| span(1, i, false, false)).collect();
    spans.extend((0..SPANS_PER_TRACE).map(|i| span(2, i, true, false)));
    let mut out = Vec::new();
    p.process(batch(spans), Instant::now(), &mut out);
    p.flush(&mut out);
    let kept = collect(out);
    assert_eq!(kept.keys().cloned().collect::<Vec<_>>(), vec![trace_id(1)], "the error trace is not kept");
    // A deterministic keep: probability 1.
    assert!(kept[&trace_id(1)].iter().all(|s| s.trace_state == "ot=th:0"));
    // The inverse of a hashed keep has no known probability.
    let not_hashed = r#"{"policies": [{"name": "rest", "type": "not", "not": {"not_sub_policy":
        {"name": "p", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}}}}]}"#;
    let (mut p, _) = build(not_hashed);
    let spans = one_span_traces(0, 200);
    let want =
        spans.iter().filter(|s| fnv64_by_hand("default-hash-seed", &s.trace_id) > 1_844_674_407_370_955_263).count();
    assert_eq!(decide_all_at(&mut p, spans, Instant::now()).len(), want);

    // Config: exactly one basic sub-policy, and `not` only at the top.
    let errs = load_errors("      - {name: n, type: not, not: {}}\n");
    assert!(
        errs.len() == 1 && errs[0].starts_with("processors::tail_sampling::policies::0::not::not_sub_policy"),
        "{errs:?}"
    );
    let errs = load_errors(
        "      - {name: n, type: not, not: {not_sub_policy: {name: a, type: and, and: {and_sub_policy: []}}}}\n",
    );
    assert!(errs.len() == 1 && errs[0].contains("cannot be nested here"), "{errs:?}");
    let errs =
        load_errors("      - name: a\n        type: and\n        and: {and_sub_policy: [{name: x, type: not}]}\n");
    assert!(errs.len() == 1 && errs[0].contains("cannot be nested here"), "{errs:?}");
    assert!(load_errors("      - {name: f, type: trace_flags}\n").is_empty());
}

#[test]
fn bytes_limiting_counts_bytes_as_the_collector() {
    // One-span trace as the Collector sizes it: the span 68 fixed bytes +
    // name "op-1" (4); the resource 4 + "service.name" (12) + "svc" (3); the
    // scope 4 + name "lib" (3).
    let one = 68 + 4 + (4 + 12 + 3) + (4 + 3);
    assert_eq!(one, 98);
    let json =
        r#"{"policies": [{"name": "b", "type": "bytes_limiting", "bytes_limiting": {"bytes_per_second": 1000}}]}"#;
    let t0 = Instant::now();
    // Burst twice the rate: 2000 bytes hold 20 such traces.
    let (mut p, _) = build(json);
    assert_eq!(decide_all_at(&mut p, one_span_traces(0, 30), t0).len(), 2000 / one);
    // The same trace in two requests carries its resource and scope twice.
    let (mut p, _) = build(
        r#"{"policies": [{"name": "b", "type": "bytes_limiting", "bytes_limiting": {"bytes_per_second": 1, "burst_capacity": 195}}]}"#,
    );
    let mut out = Vec::new();
    p.process(batch(vec![span(1, 1, false, false)]), t0, &mut out);
    p.process(batch(vec![span(1, 2, false, false)]), t0, &mut out);
    p.flush(&mut out);
    assert!(collect(out).is_empty(), "2 x 98 = 196 bytes, above a 195-byte burst");
    // Attributes, events and links as the Collector counts them.
    let mut s = span(1, 1, false, false);
    s.attributes = vec![kv_str("k", "vv")];
    s.attributes.push(KeyValue {
        key: "n".into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(7)) }),
        ..Default::default()
    });
    s.events.push(opentelemetry_proto::tonic::trace::v1::span::Event { name: "ev".into(), ..Default::default() });
    s.links.push(opentelemetry_proto::tonic::trace::v1::span::Link { trace_state: "a=b".into(), ..Default::default() });
    assert_eq!(policy::span_size(&s), 68 + 4 + (1 + 2) + (1 + 8) + (12 + 2) + (28 + 3));
}

#[test]
fn pending_traces_are_dropped_on_shutdown_when_asked() {
    let (mut p, reg) =
        build(r#"{"drop_pending_traces_on_shutdown": true, "policies": [{"name": "a", "type": "always_sample"}]}"#);
    let mut out = Vec::new();
    p.process(batch(one_span_traces(0, 7)), Instant::now(), &mut out);
    p.flush(&mut out);
    assert!(out.is_empty());
    assert_eq!(p.traces_in_memory(), 0);
    assert_eq!(p.accounted_bytes(), 0);
    assert_eq!(reg.value("otelcol_processor_dropped_spans_total", &[("processor", "tail_sampling")]), Some(7.0));
    // Default: decided on what they have.
    let (mut p, _) = build(r#"{"policies": [{"name": "a", "type": "always_sample"}]}"#);
    assert_eq!(decide_all_at(&mut p, one_span_traces(0, 7), Instant::now()).len(), 7);
}

#[test]
fn block_on_overflow_decides_nothing_early_for_num_traces() {
    let policies = r#""policies": [{"name": "a", "type": "always_sample"}]"#;
    let mut out = Vec::new();
    let (mut p, _) = build(&format!(r#"{{"num_traces": 10, {policies}}}"#));
    p.process(batch(one_span_traces(0, 30)), Instant::now(), &mut out);
    assert_eq!(p.traces_in_memory(), 10);
    let (mut p, _) = build(&format!(r#"{{"num_traces": 10, "block_on_overflow": true, {policies}}}"#));
    let mut out = Vec::new();
    p.process(batch(one_span_traces(0, 30)), Instant::now(), &mut out);
    assert_eq!(p.traces_in_memory(), 30);
    assert!(out.is_empty());
}

#[test]
fn trace_state_policy_reads_tracestates_as_the_go_sdk() {
    use policy::sdk_tracestate_get as get;
    // The SDK does not look inside `ot`.
    assert_eq!(get("ot=th:zz,debug=1", "debug"), Some("1"));
    assert_eq!(get("debug=1 ,ot=rv:x", "debug"), Some("1"));
    // Only exactly empty members are skipped; duplicates, bad keys and more
    // than 32 members make the whole tracestate unreadable.
    assert_eq!(get("debug=1,,a=b", "debug"), Some("1"));
    assert_eq!(get(" ,debug=1", "debug"), None);
    assert_eq!(get("debug=1,debug=2", "debug"), None);
    assert_eq!(get("Debug=1,debug=2", "debug"), None);
    let members = |n: usize| (0..n).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",") + ",debug=1";
    assert_eq!(get(&members(31), "debug"), Some("1"));
    assert_eq!(get(&members(32), "debug"), None);
    // Through the policy.
    let ts = r#"[{"name": "ts", "type": "trace_state", "trace_state": {"key": "debug", "values": ["1"]}}]"#;
    let (mut p, _) = build(&format!(r#"{{"policies": {ts}}}"#));
    let mut s = span(1, 1, false, false);
    s.trace_state = "ot=th:zz,debug=1".into();
    assert_eq!(decide_all_at(&mut p, vec![s], Instant::now()).len(), 1);
}

/// The Collector's `ottl_condition` policy: a trace is kept whole when one
/// span meets a `span` condition or one span event a `spanevent` one,
/// read from decoded requests and from requests as received alike.
#[test]
fn ottl_condition_keeps_whole_traces_decoded_or_as_received() {
    let policies = r#"{"decision_wait": "1s", "policies": [
        {"name": "ottl", "type": "ottl_condition", "ottl_condition": {
            "error_mode": "ignore",
            "span": ["name == \"op-3\" and attributes[\"tier\"] == \"gold\"",
                     "resource.attributes[\"service.name\"] == \"nope\"",
                     "Substring(name, 0, 100) == \"x\""],
            "spanevent": ["name == \"exception\""]
        }}
    ]}"#;
    let gold = |n: u64| n.is_multiple_of(4);
    let excepted = |n: u64| n % 4 == 1;
    let make = |n: u64| -> Vec<Span> {
        (0..SPANS_PER_TRACE)
            .map(|i| {
                let mut s = span(n, i, false, false);
                if i == 3 && gold(n) {
                    s.attributes.push(KeyValue {
                        key: "tier".into(),
                        value: Some(AnyValue { value: Some(any_value::Value::StringValue("gold".into())) }),
                        ..Default::default()
                    });
                }
                if i == 1 && excepted(n) {
                    s.events.push(opentelemetry_proto::tonic::trace::v1::span::Event {
                        name: "exception".into(),
                        ..Default::default()
                    });
                }
                s
            })
            .collect()
    };
    for as_received in [false, true] {
        let (mut p, reg) = build(policies);
        let t0 = Instant::now();
        let mut out = Vec::new();
        let req = batch((0..20).flat_map(make).collect());
        if as_received {
            let mut payloads = Vec::new();
            p.process_payload(Payload::Encoded(crate::data::EncodedBatch::encode(&req)), t0, &mut payloads);
            let mut rest = Vec::new();
            p.tick_payload(t0 + Duration::from_secs(2), &mut rest);
            payloads.extend(rest);
            let mut flushed = Vec::new();
            p.flush_payload(&mut flushed);
            payloads.extend(flushed);
            out.extend(payloads.into_iter().map(|x| x.into_decoded().unwrap()));
        } else {
            p.process(req, t0, &mut out);
            p.tick(t0 + Duration::from_secs(2), &mut out);
        }
        let kept = collect(out);
        for n in 0..20 {
            let want = gold(n) || excepted(n);
            assert_eq!(kept.get(&trace_id(n)).map(Vec::len), want.then_some(SPANS_PER_TRACE as usize), "trace {n}");
        }
        // Substring past the end fails on every span it is reached for; once
        // a trace matched, its later spans are not looked at. 10 plain
        // traces: 5 failures each; 5 gold (op-3 matched before Substring):
        // spans 0-2, 3 each; 5 with the event on span 1 (after Substring
        // failed there): spans 0-1, 2 each.
        let errors =
            reg.value("sluice_ottl_errors_total", &[("processor", "tail_sampling"), ("otel_signal", "traces")]);
        assert_eq!(errors, Some((10 * 5 + 5 * 3 + 5 * 2) as f64), "as received: {as_received}");
    }
}

#[test]
fn ottl_condition_errors_are_config_errors() {
    let text = r#"receivers:
  otlp:
    protocols: {grpc: }
processors:
  tail_sampling:
    policies:
      - name: ottl
        type: ottl_condition
        ottl_condition:
          error_mode: ignore
          span:
            - 'atributes["k"] == "v"'
      - name: empty
        type: ottl_condition
        ottl_condition: {}
exporters:
  debug:
service:
  pipelines:
    traces: {receivers: [otlp], processors: [tail_sampling], exporters: [debug]}
"#;
    let errors = load_agent_config(text, &|_| None).unwrap_err();
    let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("processors::tail_sampling::policies::0::ottl_condition::span::0 (line 12): ")
                && e.contains("unknown path `atributes`")
                && e.ends_with("hint: did you mean \"attributes\"?")),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|e| e.starts_with(
            "processors::tail_sampling::policies::1::ottl_condition (line 15): ottl_condition needs at least one"
        )),
        "{shown:#?}"
    );
}
