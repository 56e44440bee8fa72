//! `spanmetrics` against hand-computed series: the Collector's names,
//! dimensions, default buckets (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000,
//! 1400, 2000, 5000, 10000, 15000 ms, inclusive upper bounds), temporality,
//! expiration and the series limit.

use super::*;
use crate::config::node;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use std::time::Duration as StdDuration;

fn compile(yaml: &str) -> Result<SpanMetrics, Vec<String>> {
    let node = node::parse(yaml).unwrap().unwrap_or(node::Node { line: 1, value: node::Value::Map(Vec::new()) });
    let mut errors = Vec::new();
    let mut input = crate::config::component::ComponentInput {
        node: &node,
        path: "connectors::spanmetrics",
        env: Default::default(),
        errors: &mut errors,
    };
    match (FACTORY.compile)(&mut input) {
        Some(c) => Ok(c.downcast_ref::<SpanMetrics>().unwrap().clone()),
        None => Err(errors.iter().map(ToString::to_string).collect()),
    }
}

fn state(yaml: &str) -> (SpanMetricsState, Registry) {
    let reg = Registry::new();
    let m = SpanMetricsMetrics::new(&reg, "spanmetrics");
    (SpanMetricsState::new(compile(yaml).unwrap(), m.overflow_spans, m.evicted_resources), reg)
}

fn s(k: &str, v: &str) -> KeyValue {
    kv(k, str_value(v))
}

/// A span of `ms` milliseconds.
fn span(name: &str, kind: SpanKind, code: StatusCode, ms: f64, attrs: Vec<KeyValue>) -> Span {
    let start = 1_000_000_000u64;
    Span {
        name: name.into(),
        kind: kind as i32,
        start_time_unix_nano: start,
        end_time_unix_nano: start + (ms * 1e6) as u64,
        status: Some(Status { code: code as i32, ..Default::default() }),
        attributes: attrs,
        ..Default::default()
    }
}

fn batch(resource: Vec<KeyValue>, spans: Vec<Span>) -> Batch {
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    })
}

fn at(base: Instant, secs: u64) -> Now {
    Now { instant: base + StdDuration::from_secs(secs), unix_nanos: 5_000_000_000 + secs * 1_000_000_000 }
}

fn metrics_of(out: &[Batch]) -> &ExportMetricsServiceRequest {
    assert_eq!(out.len(), 1, "one batch per flush");
    let Batch::Metrics(m) = &out[0] else { panic!("not metrics") };
    m
}

fn attrs_text(a: &[KeyValue]) -> Vec<String> {
    a.iter().map(|kv| format!("{}={}", kv.key, key_text(kv.value.as_ref().unwrap()))).collect()
}

#[test]
fn the_collectors_defaults() {
    let c = compile("").unwrap();
    assert_eq!(c.calls_name, "traces.span.metrics.calls");
    assert_eq!(c.duration_name, "traces.span.metrics.duration");
    assert_eq!(c.buckets.as_deref(), Some(DEFAULT_BUCKETS_MS));
    assert_eq!(c.flush_interval, StdDuration::from_secs(60));
    assert_eq!(c.temporality, Temporality::Cumulative);
    assert_eq!(c.unit, Unit::Milliseconds);
    // In seconds the default buckets are the same durations.
    let c = compile("histogram:\n  unit: s\n").unwrap();
    assert_eq!(c.buckets.as_ref().unwrap()[0], 0.002);
    assert_eq!(c.buckets.as_ref().unwrap()[15], 15.0);
    let c = compile("namespace: \"\"\nhistogram:\n  explicit:\n    buckets: [100us, 1ms, 250ms]\n").unwrap();
    assert_eq!(c.calls_name, "calls");
    assert_eq!(c.buckets, Some(vec![0.1, 1.0, 250.0]));
}

#[test]
fn calls_and_duration_buckets_per_service_span_kind_and_status() {
    let (mut m, _) = state("dimensions:\n  - name: http.method\n    default: GET\n  - name: http.route\n");
    let base = Instant::now();
    let server = SpanKind::Server;
    let spans = vec![
        // 3 OK spans of /a: 2 ms (bucket le=2), 4 ms (le=4), 3 ms (le=4).
        span("GET /a", server, StatusCode::Ok, 2.0, vec![s("http.route", "/a")]),
        span("GET /a", server, StatusCode::Ok, 4.0, vec![s("http.route", "/a")]),
        span("GET /a", server, StatusCode::Ok, 3.0, vec![s("http.route", "/a")]),
        // 1 error of /a, 20000 ms: the +Inf bucket; POST from the span.
        span("GET /a", server, StatusCode::Error, 20_000.0, vec![s("http.route", "/a"), s("http.method", "POST")]),
        // No route: the dimension is left out.
        span("health", SpanKind::Internal, StatusCode::Unset, 0.5, vec![]),
    ];
    let mut out = Vec::new();
    m.consume(&batch(vec![s("service.name", "checkout"), s("host.name", "h1")], spans), at(base, 0), &mut out);
    assert!(out.is_empty(), "nothing before the flush interval");
    m.tick(at(base, 59), &mut out);
    assert!(out.is_empty());
    m.tick(at(base, 60), &mut out);
    let req = metrics_of(&out);
    assert_eq!(req.resource_metrics.len(), 1);
    let rm = &req.resource_metrics[0];
    // The newest Collector leaves the resource's attributes out unless add_resource_attributes.
    assert!(rm.resource.as_ref().unwrap().attributes.is_empty());
    let sm = &rm.scope_metrics[0];
    assert_eq!(sm.scope.as_ref().unwrap().name, "spanmetricsconnector");
    let Some(metric::Data::Sum(calls)) = &sm.metrics[0].data else { panic!() };
    assert_eq!(sm.metrics[0].name, "traces.span.metrics.calls");
    assert!(calls.is_monotonic);
    assert_eq!(calls.aggregation_temporality, AggregationTemporality::Cumulative as i32);
    let got: Vec<(Vec<String>, i64)> = calls
        .data_points
        .iter()
        .map(|p| {
            let Some(number_data_point::Value::AsInt(n)) = p.value else { panic!() };
            (attrs_text(&p.attributes), n)
        })
        .collect();
    let ok = |code: &str, method: &str| {
        vec![
            "service.name=checkout".to_string(),
            "span.name=GET /a".into(),
            "span.kind=SPAN_KIND_SERVER".into(),
            format!("status.code={code}"),
            format!("http.method={method}"),
            "http.route=/a".into(),
        ]
    };
    let health = vec![
        "service.name=checkout".to_string(),
        "span.name=health".into(),
        "span.kind=SPAN_KIND_INTERNAL".into(),
        "status.code=STATUS_CODE_UNSET".into(),
        "http.method=GET".into(),
    ];
    assert_eq!(got, vec![(ok("STATUS_CODE_OK", "GET"), 3), (ok("STATUS_CODE_ERROR", "POST"), 1), (health, 1)]);
    assert!(calls.data_points.iter().all(|p| p.start_time_unix_nano == 5_000_000_000));
    assert!(calls.data_points.iter().all(|p| p.time_unix_nano == 65_000_000_000));

    let Some(metric::Data::Histogram(h)) = &sm.metrics[1].data else { panic!() };
    assert_eq!(sm.metrics[1].name, "traces.span.metrics.duration");
    assert_eq!(sm.metrics[1].unit, "ms");
    let p = &h.data_points[0];
    assert_eq!(p.explicit_bounds, DEFAULT_BUCKETS_MS);
    assert_eq!((p.count, p.sum), (3, Some(9.0)));
    let mut want = vec![0u64; 17];
    want[0] = 1; // 2 ms: le=2
    want[1] = 2; // 3 and 4 ms: le=4
    assert_eq!(p.bucket_counts, want);
    let mut want = vec![0u64; 17];
    want[16] = 1; // 20 s: above 15 s, the +Inf bucket
    assert_eq!(h.data_points[1].bucket_counts, want);
    let mut want = vec![0u64; 17];
    want[0] = 1; // 0.5 ms
    assert_eq!(h.data_points[2].bucket_counts, want);

    // Cumulative: the next flush repeats the totals, plus what came since.
    out.clear();
    m.consume(
        &batch(
            vec![s("service.name", "checkout")],
            vec![span("health", SpanKind::Internal, StatusCode::Unset, 1.0, vec![])],
        ),
        at(base, 70),
        &mut out,
    );
    m.tick(at(base, 120), &mut out);
    let req = metrics_of(&out);
    // Another resource (no host.name): its own series.
    assert_eq!(req.resource_metrics.len(), 2);
    let Some(metric::Data::Sum(calls)) = &req.resource_metrics[0].scope_metrics[0].metrics[0].data else { panic!() };
    assert_eq!(calls.data_points.len(), 3);
}

#[test]
fn spans_without_a_service_name_and_inverted_times_are_handled_as_the_collector() {
    let (mut m, _) = state("");
    let base = Instant::now();
    let mut bad = span("x", SpanKind::Server, StatusCode::Ok, 0.0, vec![]);
    bad.end_time_unix_nano = bad.start_time_unix_nano - 5;
    let mut out = Vec::new();
    m.consume(&batch(vec![], vec![span("lost", SpanKind::Server, StatusCode::Ok, 1.0, vec![])]), at(base, 0), &mut out);
    m.consume(&batch(vec![s("service.name", "a")], vec![bad]), at(base, 0), &mut out);
    m.flush(at(base, 1), &mut out);
    let req = metrics_of(&out);
    assert_eq!(req.resource_metrics.len(), 1, "the span with no service.name is not counted");
    let Some(metric::Data::Histogram(h)) = &req.resource_metrics[0].scope_metrics[0].metrics[1].data else { panic!() };
    assert_eq!((h.data_points[0].count, h.data_points[0].sum), (1, Some(0.0)), "end before start counts as 0");
}

#[test]
fn delta_emits_what_came_since_the_last_flush_and_chains_start_times() {
    let (mut m, _) = state("aggregation_temporality: AGGREGATION_TEMPORALITY_DELTA\nmetrics_flush_interval: 10s\nexclude_dimensions: [span.kind, status.code]\n");
    let base = Instant::now();
    let one =
        || batch(vec![s("service.name", "a")], vec![span("op", SpanKind::Client, StatusCode::Error, 1.0, vec![])]);
    let mut out = Vec::new();
    m.consume(&one(), at(base, 0), &mut out);
    m.consume(&one(), at(base, 1), &mut out);
    m.tick(at(base, 10), &mut out);
    let points = |out: &[Batch]| {
        let req = metrics_of(out);
        let Some(metric::Data::Sum(c)) = &req.resource_metrics[0].scope_metrics[0].metrics[0].data else { panic!() };
        assert_eq!(c.aggregation_temporality, AggregationTemporality::Delta as i32);
        c.data_points
            .iter()
            .map(|p| {
                let Some(number_data_point::Value::AsInt(n)) = p.value else { panic!() };
                (attrs_text(&p.attributes), n, p.start_time_unix_nano, p.time_unix_nano)
            })
            .collect::<Vec<_>>()
    };
    let attrs = vec!["service.name=a".to_string(), "span.name=op".into()];
    assert_eq!(points(&out), vec![(attrs.clone(), 2, 5_000_000_000, 15_000_000_000)]);
    out.clear();
    m.tick(at(base, 20), &mut out);
    assert!(out.is_empty(), "nothing came: nothing emitted");
    m.consume(&one(), at(base, 25), &mut out);
    m.tick(at(base, 30), &mut out);
    // One span, starting where the last point ended.
    assert_eq!(points(&out), vec![(attrs, 1, 15_000_000_000, 35_000_000_000)]);
}

#[test]
fn the_series_limit_sends_new_series_to_one_overflow_series_and_counts_them() {
    let (mut m, reg) = state("aggregation_cardinality_limit: 3\ndimensions:\n  - name: user\n");
    let base = Instant::now();
    let spans: Vec<Span> =
        (0..10).map(|i| span("op", SpanKind::Server, StatusCode::Ok, 1.0, vec![s("user", &format!("u{i}"))])).collect();
    let mut out = Vec::new();
    m.consume(&batch(vec![s("service.name", "a")], spans), at(base, 0), &mut out);
    m.flush(at(base, 1), &mut out);
    let req = metrics_of(&out);
    let Some(metric::Data::Sum(c)) = &req.resource_metrics[0].scope_metrics[0].metrics[0].data else { panic!() };
    // The limit (3) counts the overflow series: u0, u1, then 8 spans in overflow.
    let got: Vec<(Vec<String>, i64)> = c
        .data_points
        .iter()
        .map(|p| {
            let Some(number_data_point::Value::AsInt(n)) = p.value else { panic!() };
            (
                attrs_text(&p.attributes)
                    .into_iter()
                    .filter(|a| a.starts_with("user") || a.starts_with("otel"))
                    .collect(),
                n,
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (vec!["user=u0".to_string()], 1),
            (vec!["user=u1".to_string()], 1),
            (vec!["otel.metric.overflow=true".to_string()], 8)
        ]
    );
    let text = reg.render();
    assert!(text.contains("sluice_connector_spanmetrics_overflow_spans_total{connector=\"spanmetrics\"} 8"), "{text}");
}

#[test]
fn cumulative_series_expire_when_their_resource_is_not_seen() {
    let (mut m, _) = state("metrics_flush_interval: 10s\nmetrics_expiration: 15s\n");
    let base = Instant::now();
    let mut out = Vec::new();
    let one = |svc: &str| {
        batch(vec![s("service.name", svc)], vec![span("op", SpanKind::Server, StatusCode::Ok, 1.0, vec![])])
    };
    m.consume(&one("a"), at(base, 0), &mut out);
    m.consume(&one("b"), at(base, 8), &mut out);
    m.tick(at(base, 10), &mut out);
    assert_eq!(metrics_of(&out).resource_metrics.len(), 2);
    out.clear();
    // At 20 s, a was last seen 20 s ago (>= 15 s): emitted once more, then
    // gone (the Collector builds the metrics, then expires).
    m.tick(at(base, 20), &mut out);
    assert_eq!(metrics_of(&out).resource_metrics.len(), 2);
    out.clear();
    // At 30 s, b (last seen 22 s ago) goes the same way.
    m.tick(at(base, 30), &mut out);
    assert_eq!(metrics_of(&out).resource_metrics.len(), 1);
    out.clear();
    m.tick(at(base, 40), &mut out);
    assert!(out.is_empty(), "both expired");
}

#[test]
fn resources_are_bounded_and_the_least_recently_seen_is_evicted() {
    let (mut m, reg) = state("resource_metrics_cache_size: 2\n");
    let base = Instant::now();
    let mut out = Vec::new();
    for (i, svc) in ["a", "b", "c"].iter().enumerate() {
        let b = batch(vec![s("service.name", svc)], vec![span("op", SpanKind::Server, StatusCode::Ok, 1.0, vec![])]);
        m.consume(&b, at(base, i as u64), &mut out);
    }
    m.flush(at(base, 5), &mut out);
    let req = metrics_of(&out);
    let services: Vec<String> = req
        .resource_metrics
        .iter()
        .map(|rm| {
            let Some(metric::Data::Sum(c)) = &rm.scope_metrics[0].metrics[0].data else { panic!() };
            key_text(find(&c.data_points[0].attributes, "service.name").unwrap())
        })
        .collect();
    assert_eq!(services, ["b", "c"]);
    assert!(reg.render().contains("sluice_connector_spanmetrics_evicted_resources_total{connector=\"spanmetrics\"} 1"));
}

#[test]
fn settings_are_checked_with_the_collectors_messages() {
    let errors = compile(
        "dimensions:\n  - name: span.kind\nexclude_dimensions: [http.method]\nmetrics_flush_interval: 0s\nhistogram:\n  explicit:\n    buckets: [10ms, 5ms]\nexemplars:\n  enabled: true\n",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        vec![
            "connectors::spanmetrics::exemplars (line 8): the Collector has `exemplars`; sluice does not support it (yet); hint: remove `exemplars`; the README lists what sluice reads of each component",
        ]
    );
    let errors = compile(
        "dimensions:\n  - name: span.kind\nexclude_dimensions: [http.method]\nmetrics_flush_interval: 0s\nhistogram:\n  explicit:\n    buckets: [10ms, 5ms]\n",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        vec![
            "connectors::spanmetrics::dimensions::0::name (line 2): duplicate dimension name span.kind",
            "connectors::spanmetrics::exclude_dimensions::0 (line 3): \"http.method\" is not a default dimension; hint: exclude_dimensions takes service.name, span.name, span.kind, status.code",
            "connectors::spanmetrics::metrics_flush_interval (line 4): metrics_flush_interval must be above zero; hint: e.g. 60s",
            "connectors::spanmetrics::histogram::explicit::buckets (line 7): buckets must be in increasing order, each once; hint: e.g. [2ms, 4ms, 6ms]",
        ]
    );
}
