//! `spanmetrics` against hand-computed series: the Collector's names,
//! dimensions, default buckets (2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000,
//! 1400, 2000, 5000, 10000, 15000 ms, inclusive upper bounds), temporality,
//! expiration, the series limit, exemplars, span events and the exponential
//! histogram.

use super::*;
use crate::config::node;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Status};
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
    (SpanMetricsState::new(compile(yaml).unwrap(), m), reg)
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

/// A sum's points as (attributes as text, integer value).
fn int_points(points: &[NumberDataPoint]) -> Vec<(Vec<String>, i64)> {
    points
        .iter()
        .map(|p| {
            let Some(number_data_point::Value::AsInt(n)) = p.value else { panic!("not an integer point: {p:?}") };
            (attrs_text(&p.attributes), n)
        })
        .collect()
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
    let got = int_points(&calls.data_points);
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
    let got: Vec<(Vec<String>, i64)> = int_points(&c.data_points)
        .into_iter()
        .map(|(attrs, n)| (attrs.into_iter().filter(|a| a.starts_with("user") || a.starts_with("otel")).collect(), n))
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
        "dimensions:\n  - name: span.kind\nexclude_dimensions: [http.method]\nmetrics_flush_interval: 0s\nhistogram:\n  explicit:\n    buckets: [10ms, 5ms]\ncalls_dimensions: []\n",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        vec![
            "connectors::spanmetrics::calls_dimensions (line 8): the Collector has `calls_dimensions`; sluice does not support it (yet); hint: remove `calls_dimensions`; the README lists what sluice reads of each component",
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

/// A span of `ms` milliseconds with trace ID `[t; 16]` and span ID `[t; 8]`.
fn traced(t: u8, code: StatusCode, ms: f64) -> Span {
    Span { trace_id: vec![t; 16], span_id: vec![t; 8], ..span("op", SpanKind::Server, code, ms, vec![]) }
}

#[test]
fn exemplars_carry_trace_and_span_ids_bounded_per_point_and_cleared_at_each_flush() {
    let (mut m, reg) = state("exemplars:\n  enabled: true\n  max_per_data_point: 2\n");
    let base = Instant::now();
    let mut out = Vec::new();
    // Three spans of one series: the third finds the point full (counted);
    // a span with an all-zero trace ID gets no exemplar, as in the Collector.
    let spans = vec![
        traced(1, StatusCode::Unset, 3.0),
        traced(0, StatusCode::Unset, 5.0),
        traced(2, StatusCode::Unset, 7.0),
        traced(3, StatusCode::Unset, 9.0),
    ];
    m.consume(&batch(vec![s("service.name", "a")], spans), at(base, 0), &mut out);
    m.tick(at(base, 60), &mut out);
    let sm = &metrics_of(&out).resource_metrics[0].scope_metrics[0];
    let Some(metric::Data::Sum(calls)) = &sm.metrics[0].data else { panic!() };
    let Some(metric::Data::Histogram(h)) = &sm.metrics[1].data else { panic!() };
    let want = |t: u8, ms: f64| Exemplar {
        time_unix_nano: 65_000_000_000, // the flush's time
        trace_id: vec![t; 16],
        span_id: vec![t; 8],
        value: Some(exemplar::Value::AsDouble(ms)), // the span's duration in the histogram's unit
        ..Default::default()
    };
    assert_eq!(calls.data_points[0].exemplars, vec![want(1, 3.0), want(2, 7.0)]);
    assert_eq!(h.data_points[0].exemplars, vec![want(1, 3.0), want(2, 7.0)]);
    assert_eq!(calls.data_points[0].value, Some(number_data_point::Value::AsInt(4)));
    assert!(reg.render().contains("sluice_connector_spanmetrics_dropped_exemplars_total{connector=\"spanmetrics\"} 1"));

    // Cumulative: the counts stay, the exemplars were those of the last interval.
    out.clear();
    m.tick(at(base, 120), &mut out);
    let sm = &metrics_of(&out).resource_metrics[0].scope_metrics[0];
    let Some(metric::Data::Sum(calls)) = &sm.metrics[0].data else { panic!() };
    assert!(calls.data_points[0].exemplars.is_empty());
    assert_eq!(calls.data_points[0].value, Some(number_data_point::Value::AsInt(4)));
    out.clear();
    m.consume(&batch(vec![s("service.name", "a")], vec![traced(4, StatusCode::Unset, 1.0)]), at(base, 130), &mut out);
    m.tick(at(base, 180), &mut out);
    let sm = &metrics_of(&out).resource_metrics[0].scope_metrics[0];
    let Some(metric::Data::Sum(calls)) = &sm.metrics[0].data else { panic!() };
    assert_eq!(calls.data_points[0].exemplars.len(), 1);
    assert_eq!(calls.data_points[0].exemplars[0].trace_id, vec![4; 16]);

    // Off by default; on with no limit given: sluice's bound of 100.
    assert_eq!(compile("").unwrap().exemplars, None);
    assert_eq!(compile("exemplars:\n  enabled: true\n").unwrap().exemplars, Some(DEFAULT_MAX_EXEMPLARS));
}

#[test]
fn span_events_are_counted_by_the_spans_dimensions_and_the_events_own() {
    let (mut m, _) = state(
        "dimensions:\n  - name: host.name\n  - name: http.route\nevents:\n  enabled: true\n  dimensions:\n    - name: exception.type\n",
    );
    let base = Instant::now();
    let event =
        |ty: &str| Event { name: "exception".into(), attributes: vec![s("exception.type", ty)], ..Default::default() };
    let mut a = span("GET /a", SpanKind::Server, StatusCode::Error, 2.0, vec![s("http.route", "/a")]);
    a.events = vec![event("IOError"), event("Timeout"), event("IOError")];
    let mut b = span("GET /a", SpanKind::Server, StatusCode::Error, 3.0, vec![s("http.route", "/a")]);
    b.events = vec![event("Timeout")];
    // The span's own attribute wins over its event's.
    let mut c = span(
        "GET /a",
        SpanKind::Server,
        StatusCode::Error,
        3.0,
        vec![s("http.route", "/a"), s("exception.type", "Span")],
    );
    c.events = vec![event("IOError")];
    let plain = span("GET /a", SpanKind::Server, StatusCode::Error, 3.0, vec![s("http.route", "/a")]);
    let mut out = Vec::new();
    m.consume(&batch(vec![s("service.name", "a"), s("host.name", "h1")], vec![a, b, c, plain]), at(base, 0), &mut out);
    m.tick(at(base, 60), &mut out);
    let sm = &metrics_of(&out).resource_metrics[0].scope_metrics[0];
    let names: Vec<&str> = sm.metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["traces.span.metrics.calls", "traces.span.metrics.duration", "traces.span.metrics.events"]);
    let Some(metric::Data::Sum(events)) = &sm.metrics[2].data else { panic!() };
    assert!(events.is_monotonic);
    let got = int_points(&events.data_points);
    // The dimensions are looked up on the span, then on the event: the
    // resource's host.name is not seen, as in the Collector (it copies the
    // event's attributes over the resource's).
    let labels = |ty: &str| {
        vec![
            "service.name=a".to_string(),
            "span.name=GET /a".into(),
            "span.kind=SPAN_KIND_SERVER".into(),
            "status.code=STATUS_CODE_ERROR".into(),
            "http.route=/a".into(),
            format!("exception.type={ty}"),
        ]
    };
    assert_eq!(got, vec![(labels("IOError"), 2), (labels("Timeout"), 2), (labels("Span"), 1)]);
    // The calls keep their own dimensions (host.name from the resource), not the events'.
    let Some(metric::Data::Sum(calls)) = &sm.metrics[0].data else { panic!() };
    assert_eq!(calls.data_points.len(), 1);
    assert!(attrs_text(&calls.data_points[0].attributes).contains(&"host.name=h1".to_string()));
    assert_eq!(calls.data_points[0].value, Some(number_data_point::Value::AsInt(4)));
}

#[test]
fn exponential_histogram_buckets_and_scale_as_the_go_aggregator() {
    // One value of 3 ms at the starting scale 20: bucket floor(log2(3) * 2^20)
    // = floor(1.5849625007 * 1048576) = 1661953.
    let (mut m, _) = state("histogram:\n  exponential:\n    max_size: 160\n");
    let base = Instant::now();
    let mut out = Vec::new();
    let one = |m: &mut SpanMetricsState, spans: Vec<Span>, out: &mut Vec<Batch>| {
        out.clear();
        m.consume(&batch(vec![s("service.name", "a")], spans), at(base, 0), out);
        m.flush(at(base, 1), out);
        let sm = &metrics_of(out).resource_metrics[0].scope_metrics[0];
        assert_eq!(sm.metrics[1].name, "traces.span.metrics.duration");
        assert_eq!(sm.metrics[1].unit, "ms");
        let Some(metric::Data::ExponentialHistogram(h)) = &sm.metrics[1].data else { panic!("not exponential") };
        assert_eq!(h.aggregation_temporality, AggregationTemporality::Cumulative as i32);
        h.data_points[0].clone()
    };
    let p = one(&mut m, vec![traced(1, StatusCode::Unset, 3.0)], &mut out);
    assert_eq!((p.scale, p.count, p.sum, p.min, p.max), (20, 1, Some(3.0), Some(3.0), Some(3.0)));
    let pos = p.positive.unwrap();
    assert_eq!((pos.offset, pos.bucket_counts), (1_661_953, vec![1]));

    // 1 ms and 4 ms: powers of two are exact, bucket (2^e << scale) - 1, so
    // at scale 20 they are -1 and 2^21 - 1: 2^21 + 1 buckets, over 160.
    // Halving c times gives (2^(21-c) - 1) - (-1) = 2^(21-c), below 160 first at
    // c = 14: scale 6, buckets -1 and (2 << 6) - 1 = 127, 129 counters.
    let (mut m, _) = state("histogram:\n  exponential:\n    max_size: 160\n");
    let p = one(&mut m, vec![traced(1, StatusCode::Unset, 1.0), traced(2, StatusCode::Unset, 4.0)], &mut out);
    assert_eq!((p.scale, p.count, p.zero_count, p.sum), (6, 2, 0, Some(5.0)));
    let pos = p.positive.unwrap();
    let mut want = vec![0u64; 129];
    want[0] = 1;
    want[128] = 1;
    assert_eq!((pos.offset, pos.bucket_counts), (-1, want));

    // max_size 4: 1, 16 and 3 ms. 1 and 16 (2^4) at scale 20: -1 and
    // (4 << 20) - 1; the span 2^22 halves to 2 only after 21 steps: scale -1,
    // where bucket = (exponent - 1 if exact) >> 1: 1 -> -1 >> 1 = -1, 16 -> 3 >> 1 = 1,
    // 3 (exponent 1, not exact) -> 1 >> 1 = 0. Zero durations count apart.
    let (mut m, _) = state("histogram:\n  exponential:\n    max_size: 4\n");
    let mut zero = traced(4, StatusCode::Unset, 0.0);
    zero.end_time_unix_nano = zero.start_time_unix_nano;
    let spans = vec![
        traced(1, StatusCode::Unset, 1.0),
        traced(2, StatusCode::Unset, 16.0),
        traced(3, StatusCode::Unset, 3.0),
        zero,
    ];
    let p = one(&mut m, spans, &mut out);
    assert_eq!((p.scale, p.count, p.zero_count, p.sum, p.min, p.max), (-1, 4, 1, Some(20.0), Some(0.0), Some(16.0)));
    let pos = p.positive.unwrap();
    assert_eq!((pos.offset, pos.bucket_counts), (-1, vec![1, 1, 1]));

    // Only zeros: scale 0, as the Go aggregator reports it.
    let (mut m, _) = state("histogram:\n  exponential: {}\n");
    assert_eq!(compile("histogram:\n  exponential: {}\n").unwrap().exponential, Some(160));
    let mut zero = traced(4, StatusCode::Unset, 0.0);
    zero.end_time_unix_nano = zero.start_time_unix_nano;
    let p = one(&mut m, vec![zero], &mut out);
    assert_eq!((p.scale, p.count, p.zero_count), (0, 1, 1));
    assert!(p.positive.unwrap().bucket_counts.is_empty());
}

#[test]
fn exponential_buckets_never_exceed_max_size() {
    let mut h = exponential::ExponentialHistogram::new(8);
    // Durations from 1 ns to 10^6 s, in ms.
    let mut v = 1e-6;
    while v < 1e9 {
        h.record(v);
        v *= 1.7;
    }
    let mut dp = ExponentialHistogramDataPoint::default();
    h.fill(&mut dp);
    let pos = dp.positive.unwrap();
    assert!(pos.bucket_counts.len() <= 8, "{} buckets", pos.bucket_counts.len());
    assert_eq!(pos.bucket_counts.iter().sum::<u64>(), dp.count);
    // Each value lies in (base^index, base^(index+1)] of the final scale.
    let base = 2f64.powf(2f64.powi(-dp.scale));
    let lowest = base.powi(pos.offset);
    assert!(1e-6 > lowest && 1e-6 <= lowest * base, "1e-6 in ({lowest}, {}]", lowest * base);
}

#[test]
fn exemplars_events_and_exponential_settings_are_checked() {
    let errors = compile(
        "histogram:\n  explicit:\n    buckets: [1ms]\n  exponential:\n    max_size: 1\nexemplars:\n  enabled: true\n  max_per_data_point: 0\nevents:\n  enabled: true\n",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        vec![
            "connectors::spanmetrics::histogram (line 1): use either `explicit` or `exponential` buckets histogram",
            "connectors::spanmetrics::histogram::exponential::max_size (line 5): max_size must be between 2 and 16384 (0: the default, 160); hint: e.g. max_size: 160",
            "connectors::spanmetrics::exemplars::max_per_data_point (line 8): max_per_data_point must be between 1 and 10000; hint: leave it out for 100",
            "connectors::spanmetrics::events::dimensions (line 9): failed validating event dimensions: no dimensions configured for events; hint: e.g. dimensions: [{name: exception.type}]",
        ]
    );
    let errors = compile("events:\n  enabled: true\n  dimensions:\n    - name: span.name\n").unwrap_err();
    assert_eq!(
        errors,
        vec!["connectors::spanmetrics::events::dimensions::0::name (line 4): failed validating event dimensions: duplicate dimension name span.name"]
    );
    // Disabled events need no dimensions, as in the Collector.
    assert_eq!(compile("events:\n  enabled: false\n").unwrap().event_dimensions, None);
}
