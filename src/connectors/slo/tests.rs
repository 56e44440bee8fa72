//! The `slo` connector on a fixed clock, with the arithmetic written out.
//!
//! Objective 99 (percent of good events) leaves an error budget of
//! (100 - 99) / 100 = 0.01. 1000 server spans of which every 10th is an
//! error give an error ratio of 100 / 1000 = 0.1 in every window that holds
//! them, and a burn rate of 0.1 / 0.01 = 10. With the workbook's thresholds
//! (page: 1h and 5m above 14.4, or 6h and 30m above 6; ticket: 1d and 2h
//! above 3, or 3d and 6h above 1) a burn rate of 10 fires the page through
//! its slow pair (6h, 30m) and the ticket through both pairs. With the
//! default 60 buckets a window of W holds an event until W after the start
//! of the bucket (of W/60) it fell in: sent at a time aligned on every
//! bucket width, the 30m window lets go of it at exactly 30m, the 6h
//! window at exactly 6h. So the page resolves at 30m (the 5m and 30m
//! windows are empty) and the ticket at 6h (the 2h and 6h windows are).

use super::state::FIRING_METRIC;
use super::*;
use crate::config::node;
use crate::connectors::{Connector, ConnectorContext, Now};
use crate::data::Batch;
use crate::extensions::ExtensionSpec;
use crate::queue::storage_config::FileStorageConfig;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, ResourceSpans, ScopeSpans, Span, Status};
use std::collections::BTreeMap;
use std::time::{Duration as StdDuration, Instant};

fn compile(yaml: &str) -> Result<SloConnector, Vec<String>> {
    let node = node::parse(yaml).unwrap().unwrap_or(node::Node { line: 1, value: node::Value::Map(Vec::new()) });
    let mut errors = Vec::new();
    let mut input = crate::config::component::ComponentInput {
        node: &node,
        path: "connectors::slo",
        env: Default::default(),
        errors: &mut errors,
    };
    match (FACTORY.compile)(&mut input) {
        Some(c) => Ok(c.downcast_ref::<SloConnector>().unwrap().clone()),
        None => Err(errors.iter().map(ToString::to_string).collect()),
    }
}

const CHECKOUT: &str = "
metrics_flush_interval: 15s
slos:
  - name: availability
    service: checkout
    objective: 99
";

fn ctx(
    to: Signal,
    reg: &Registry,
    extensions: BTreeMap<crate::config::ComponentId, Arc<dyn ExtensionSpec>>,
) -> ConnectorContext {
    ConnectorContext {
        id: "slo".into(),
        from: Signal::Traces,
        to,
        registry: reg.clone(),
        extensions: Arc::new(extensions),
    }
}

fn build(yaml: &str, to: Signal) -> (Box<dyn Connector>, Registry) {
    let reg = Registry::new();
    let c = compile(yaml).unwrap().build(&ctx(to, &reg, BTreeMap::new())).unwrap();
    (c, reg)
}

/// A day boundary: a multiple of every bucket width (5 s ... 4320 s, 3600 s).
const T0: u64 = 19_675 * 86_400;

fn at(base: Instant, secs: u64) -> Now {
    Now { instant: base + StdDuration::from_secs(secs), unix_nanos: (T0 + secs) * 1_000_000_000 }
}

fn span(kind: i32, code: StatusCode, ms: u64) -> Span {
    let start = T0 * 1_000_000_000;
    Span {
        name: "GET /checkout".into(),
        kind,
        start_time_unix_nano: start,
        end_time_unix_nano: start + ms * 1_000_000,
        status: Some(Status { code: code as i32, ..Default::default() }),
        ..Default::default()
    }
}

fn batch(service: &str, spans: Vec<Span>) -> Batch {
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue(service.into())) }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    })
}

/// 1000 server spans, every 10th an error.
fn thousand() -> Batch {
    let spans = (0..1000).map(|i| span(2, if i % 10 == 0 { StatusCode::Error } else { StatusCode::Ok }, 10)).collect();
    batch("checkout", spans)
}

/// One point: metric name, sorted labels, value.
type Point = (String, Vec<(String, String)>, f64);

/// Every point emitted.
fn points(out: &[Batch]) -> Vec<Point> {
    let mut all = Vec::new();
    for b in out {
        let Batch::Metrics(m) = b else { continue };
        for rm in &m.resource_metrics {
            for sm in &rm.scope_metrics {
                for metric in &sm.metrics {
                    let Some(metric::Data::Gauge(g)) = &metric.data else { panic!("{} is not a gauge", metric.name) };
                    assert!(metric.unit.is_empty(), "no unit: a unit would add a suffix in Prometheus");
                    for p in &g.data_points {
                        let mut labels: Vec<(String, String)> = p
                            .attributes
                            .iter()
                            .map(|kv| {
                                let Some(any_value::Value::StringValue(v)) =
                                    kv.value.as_ref().and_then(|v| v.value.as_ref())
                                else {
                                    panic!("label {} is not a string", kv.key)
                                };
                                (kv.key.clone(), v.clone())
                            })
                            .collect();
                        labels.sort();
                        let Some(number_data_point::Value::AsDouble(v)) = p.value else { panic!("not a double") };
                        all.push((metric.name.clone(), labels, v));
                    }
                }
            }
        }
    }
    all
}

fn value(out: &[Batch], name: &str) -> Option<f64> {
    let found: Vec<f64> = points(out).into_iter().filter(|(n, _, _)| n == name).map(|(_, _, v)| v).collect();
    assert!(found.len() <= 1, "{name}: {found:?}");
    found.first().copied()
}

fn firing(out: &[Batch], severity: &str) -> f64 {
    points(out)
        .into_iter()
        .find(|(n, l, _)| n == FIRING_METRIC && l.iter().any(|(k, v)| k == "severity" && v == severity))
        .map(|(_, _, v)| v)
        .unwrap()
}

fn tick(c: &mut Box<dyn Connector>, now: Now) -> Vec<Batch> {
    let mut out = Vec::new();
    c.tick(now, &mut out);
    out
}

#[test]
fn sloth_series_with_the_arithmetic() {
    let (mut c, _) = build(CHECKOUT, Signal::Metrics);
    let base = Instant::now();
    let mut out = Vec::new();
    c.consume(&thousand(), at(base, 0), &mut out);
    assert!(out.is_empty(), "nothing before the first flush");
    assert_eq!(c.next_deadline(), Some(base + StdDuration::from_secs(15)));
    let out = tick(&mut c, at(base, 15));
    let all = points(&out);
    let sloth = |window: Option<&str>| {
        let mut l = vec![
            ("sloth_id".to_string(), "checkout-availability".to_string()),
            ("sloth_service".to_string(), "checkout".to_string()),
            ("sloth_slo".to_string(), "availability".to_string()),
        ];
        if let Some(w) = window {
            l.push(("sloth_window".to_string(), w.to_string()));
        }
        l.sort();
        l
    };
    // Every window holds the 1000 spans: 100 / 1000 = 0.1.
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        let name = format!("slo:sli_error:ratio_rate{w}");
        assert!(all.contains(&(name.clone(), sloth(Some(w)), 0.1)), "{name} in {all:?}");
    }
    let meta = |name: &str, v: f64| assert!(all.contains(&(name.to_string(), sloth(None), v)), "{name}={v} in {all:?}");
    meta("slo:objective:ratio", 0.99);
    meta("slo:error_budget:ratio", 0.01); // (100 - 99) / 100
    meta("slo:time_period:days", 30.0);
    meta("slo:current_burn_rate:ratio", 10.0); // 0.1 / 0.01
    meta("slo:period_burn_rate:ratio", 10.0);
    meta("slo:period_error_budget_remaining:ratio", -9.0); // 1 - 10: the budget is spent nine times over
    let info = all.iter().find(|(n, _, _)| n == "sloth_slo_info").unwrap();
    assert_eq!(info.2, 1.0);
    assert!(info.1.contains(&("sloth_objective".to_string(), "99".to_string())));
    // Burn rate 10: the page fires through 6h and 30m (10 > 6, not > 14.4), the ticket through both pairs.
    assert_eq!(firing(&out, "page"), 1.0);
    assert_eq!(firing(&out, "ticket"), 1.0);
}

#[test]
fn alerts_fire_and_resolve_at_the_right_times_with_a_log_record_each() {
    let (mut m, _) = build(CHECKOUT, Signal::Metrics);
    let (mut l, _) = build(CHECKOUT, Signal::Logs);
    let base = Instant::now();
    for c in [&mut m, &mut l] {
        c.consume(&thousand(), at(base, 0), &mut Vec::new());
    }
    let logs = |out: &[Batch]| -> Vec<(String, String, String)> {
        out.iter()
            .flat_map(|b| match b {
                Batch::Logs(r) => r.resource_logs[0].scope_logs[0].log_records.clone(),
                _ => panic!("the logs instance emits logs only"),
            })
            .map(|r| {
                let attr = |k: &str| {
                    r.attributes
                        .iter()
                        .find(|kv| kv.key == k)
                        .and_then(|kv| kv.value.as_ref())
                        .map(|v| match &v.value {
                            Some(any_value::Value::StringValue(s)) => s.clone(),
                            Some(any_value::Value::DoubleValue(d)) => d.to_string(),
                            _ => String::new(),
                        })
                        .unwrap_or_default()
                };
                (attr("slo.severity"), attr("slo.alert.state"), attr("slo.burn_rate.30m"))
            })
            .collect()
    };
    // 15 s: both fire.
    let out = tick(&mut l, at(base, 15));
    assert_eq!(
        logs(&out),
        vec![("page".into(), "firing".into(), "10".into()), ("ticket".into(), "firing".into(), String::new())]
    );
    let Batch::Logs(r) = &out[0] else { unreachable!() };
    let body = r.resource_logs[0].scope_logs[0].log_records[0].body.clone().unwrap();
    let Some(any_value::Value::StringValue(body)) = body.value else { panic!() };
    assert!(body.contains("availability of checkout page alert firing"), "{body}");
    assert!(body.contains("6h 10.0000 and 30m 10.0000 (threshold 6)"), "{body}");
    let out = tick(&mut m, at(base, 15));
    assert_eq!((firing(&out, "page"), firing(&out, "ticket")), (1.0, 1.0));
    // Nothing changes until the 30m window lets go of the spans (ticks come every 15 s).
    assert!(tick(&mut l, at(base, 1785)).is_empty());
    let out = tick(&mut m, at(base, 1785));
    assert_eq!(value(&out, "slo:sli_error:ratio_rate30m"), Some(0.1));
    assert_eq!(value(&out, "slo:sli_error:ratio_rate5m"), None, "empty since 300 s: no ratio, as 0/0 in Prometheus");
    assert_eq!(value(&out, "slo:current_burn_rate:ratio"), None);
    assert_eq!(firing(&out, "page"), 1.0);
    // 30m: the page resolves, the ticket still fires (3d and 6h: 10 > 1).
    assert_eq!(logs(&tick(&mut l, at(base, 1800))), vec![("page".into(), "resolved".into(), String::new())]);
    let out = tick(&mut m, at(base, 1800));
    assert_eq!((firing(&out, "page"), firing(&out, "ticket")), (0.0, 1.0));
    assert!(tick(&mut l, at(base, 21_585)).is_empty());
    // 6h: the ticket resolves.
    assert_eq!(logs(&tick(&mut l, at(base, 21_600))), vec![("ticket".into(), "resolved".into(), String::new())]);
    let out = tick(&mut m, at(base, 21_600));
    assert_eq!((firing(&out, "page"), firing(&out, "ticket")), (0.0, 0.0));
    // The period still holds them: 30d ratio 0.1, 9 budgets spent.
    assert_eq!(value(&out, "slo:sli_error:ratio_rate30d"), Some(0.1));
    assert_eq!(value(&out, "slo:period_error_budget_remaining:ratio"), Some(-9.0));
}

#[test]
fn a_fast_burn_pages_through_the_quick_pair() {
    // 20% errors at objective 99: burn rate 0.2 / 0.01 = 20 > 14.4 on 1h and 5m.
    let yaml = "slos: [{name: a, service: checkout, objective: 99, alerting: {ticket: {disable: true}}}]";
    let (mut l, _) = build(yaml, Signal::Logs);
    let base = Instant::now();
    let spans = (0..1000).map(|i| span(2, if i % 5 == 0 { StatusCode::Error } else { StatusCode::Ok }, 1)).collect();
    l.consume(&batch("checkout", spans), at(base, 0), &mut Vec::new());
    let out = tick(&mut l, at(base, 15));
    let Batch::Logs(r) = &out[0] else { panic!() };
    let records = &r.resource_logs[0].scope_logs[0].log_records;
    assert_eq!(records.len(), 1, "the ticket is disabled");
    let burn_1h = records[0].attributes.iter().find(|kv| kv.key == "slo.burn_rate.1h").unwrap();
    assert_eq!(burn_1h.value.as_ref().unwrap().value, Some(any_value::Value::DoubleValue(20.0)));
}

#[test]
fn kinds_services_latency_and_conditions_choose_the_events() {
    let yaml = r#"
slos:
  - name: latency
    service: checkout
    objective: 90
    span_kinds: [server, consumer]
    condition: 'attributes["http.route"] == "/pay"'
    bad: {status_codes: [], latency_above: 300ms}
"#;
    let base = Instant::now();
    let routed = |mut s: Span, route: &str| {
        s.attributes.push(KeyValue {
            key: "http.route".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(route.into())) }),
            ..Default::default()
        });
        s
    };
    let spans = vec![
        routed(span(2, StatusCode::Error, 100), "/pay"), // good: errors are not bad here
        routed(span(2, StatusCode::Ok, 301), "/pay"),    // bad: 301 ms > 300 ms
        routed(span(5, StatusCode::Ok, 300), "/pay"),    // good: 300 ms is not above 300 ms
        routed(span(3, StatusCode::Ok, 900), "/pay"),    // client: not an event
        routed(span(2, StatusCode::Ok, 900), "/cart"),   // condition false
        span(2, StatusCode::Ok, 900),                    // no route: condition false
    ];
    // Decoded (conditions on copies) and encoded (decoded in place) alike.
    for encoded in [false, true] {
        let (mut c, _) = build(yaml, Signal::Metrics);
        for (service, secs) in [("checkout", 0), ("other", 1)] {
            let b = batch(service, spans.clone());
            if encoded {
                let p = crate::data::Payload::Encoded(crate::data::EncodedBatch::encode(&b));
                c.consume_payload(&p, at(base, secs), &mut Vec::new()).unwrap();
            } else {
                c.consume(&b, at(base, secs), &mut Vec::new());
            }
        }
        let out = tick(&mut c, at(base, 15));
        // 1 bad of 3 events.
        assert_eq!(value(&out, "slo:sli_error:ratio_rate5m"), Some(1.0 / 3.0), "encoded: {encoded}");
        // budget (100 - 90) / 100 = 0.1; burn (1/3) / 0.1.
        assert_eq!(value(&out, "slo:current_burn_rate:ratio"), Some((1.0 / 3.0) / 0.1));
    }
}

#[test]
fn spans_that_end_before_they_start_are_skipped_and_counted() {
    let (mut c, reg) = build(CHECKOUT, Signal::Metrics);
    let base = Instant::now();
    let mut backwards = span(2, StatusCode::Error, 0);
    backwards.end_time_unix_nano = backwards.start_time_unix_nano - 1;
    let spans = vec![backwards.clone(), backwards, span(2, StatusCode::Ok, 5), span(2, StatusCode::Error, 5)];
    c.consume(&batch("checkout", spans), at(base, 0), &mut Vec::new());
    let out = tick(&mut c, at(base, 15));
    assert_eq!(value(&out, "slo:sli_error:ratio_rate5m"), Some(0.5), "1 bad of the 2 valid spans");
    let text = reg.render();
    assert!(text.contains("sluice_connector_slo_invalid_spans_total{connector=\"slo\",to=\"metrics\"} 2"), "{text}");
}

#[test]
fn objectives_of_100_and_0_are_refused_with_path_and_hint() {
    for objective in ["100", "0", "-1", "101", ".nan"] {
        let yaml = format!("slos:\n  - name: a\n    service: s\n    objective: {objective}\n");
        let errors = compile(&yaml).unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0]
                .starts_with("connectors::slo::slos::0::objective (line 4): objective must be above 0 and below 100"),
            "{errors:?}"
        );
        assert!(errors[0].contains("100 leaves no error budget"), "{errors:?}");
    }
    assert!(compile("slos:\n  - name: a\n    service: s\n    objective: 99.99\n").is_ok());
}

#[test]
fn other_mistakes_are_each_reported() {
    let yaml = r#"
metrics_flush_interval: 0s
window_buckets: 1
slos:
  - name: a
    service: s
    objective: 99
    period: 30x
  - name: a
    service: s
    objective: 99
    span_kinds: []
    condition: 'attributes["x" =='
    bad: {status_codes: []}
    alerting: {page: {quick: 0}}
"#;
    let errors = compile(yaml).unwrap_err();
    let want = [
        "connectors::slo::metrics_flush_interval (line 2): metrics_flush_interval must be above zero",
        "connectors::slo::window_buckets (line 3): window_buckets must be between 2 and 10000, not 1",
        "connectors::slo::slos::0::period (line 8): invalid period \"30x\": unknown unit \"x\"",
        "connectors::slo::slos::1::name (line 9): duplicate SLO \"a\" of service \"s\"",
        "connectors::slo::slos::1::span_kinds (line 12): span_kinds must name at least one kind",
        "connectors::slo::slos::1::bad (line 14): bad names nothing",
        "connectors::slo::slos::1::condition (line 13): ",
        "connectors::slo::slos::1::alerting::page::quick (line 15): a burn-rate threshold must be above 0, not 0",
    ];
    for w in want {
        assert!(errors.iter().any(|e| e.starts_with(w)), "{w}\nnot in {errors:#?}");
    }
    assert_eq!(errors.len(), want.len(), "{errors:#?}");
    assert!(compile("{}").unwrap_err()[0].contains("needs at least one SLO"));
}

#[test]
fn periods_read_and_name_as_prometheus_ranges() {
    assert_eq!(parse_period("30d").unwrap().as_secs(), 30 * 86_400);
    assert_eq!(parse_period("4w").unwrap().as_secs(), 28 * 86_400);
    assert_eq!(parse_period("1d12h").unwrap().as_secs(), 36 * 3600);
    assert_eq!(period_name(parse_period("4w").unwrap()), "28d");
    assert_eq!(period_name(parse_period("1d12h").unwrap()), "36h");
    // A 7d SLO gets Sloth's ratio_rate7d and 7 days.
    let (mut c, _) = build("slos: [{name: a, service: checkout, objective: 99, period: 7d}]", Signal::Metrics);
    let base = Instant::now();
    c.consume(&thousand(), at(base, 0), &mut Vec::new());
    let out = tick(&mut c, at(base, 15));
    assert_eq!(value(&out, "slo:sli_error:ratio_rate7d"), Some(0.1));
    assert_eq!(value(&out, "slo:time_period:days"), Some(7.0));
}

#[test]
fn memory_per_slo_is_fixed_by_the_bucket_counts() {
    // 7 windows of 60 buckets and a period of 720, 16 bytes a bucket, plus fixed fields.
    let m = memory_per_slo(60, 720);
    assert!(m >= (7 * 60 + 720) * 16, "{m}");
    assert!(m < (7 * 60 + 720) * 16 + 1024, "{m}");
}

#[test]
fn with_storage_a_restart_continues_the_period_counters() {
    let dir = tempfile::tempdir().unwrap();
    let storage = FileStorageConfig { directory: dir.path().display().to_string(), fsync: true };
    let mut extensions: BTreeMap<crate::config::ComponentId, Arc<dyn ExtensionSpec>> = BTreeMap::new();
    extensions.insert(crate::config::ComponentId::parse("file_storage").unwrap(), Arc::new(storage));
    let yaml = format!("storage: file_storage\n{CHECKOUT}");
    let cfg = compile(&yaml).unwrap();
    let base = Instant::now();
    {
        let reg = Registry::new();
        let mut c = cfg.build(&ctx(Signal::Metrics, &reg, extensions.clone())).unwrap();
        c.consume(&thousand(), at(base, 0), &mut Vec::new());
        tick(&mut c, at(base, 15)); // saved at the flush
                                    // Counted after the last flush and lost with the process (as after kill -9).
        c.consume(&thousand(), at(base, 20), &mut Vec::new());
    }
    assert!(dir.path().join("slo-slo-metrics.json").exists());
    // An hour later: 1000 good spans more.
    let reg = Registry::new();
    let mut c = cfg.build(&ctx(Signal::Metrics, &reg, extensions)).unwrap();
    let later = base + StdDuration::from_secs(3600);
    let now = |s: u64| Now { instant: later + StdDuration::from_secs(s), unix_nanos: (T0 + 3600 + s) * 1_000_000_000 };
    let good = batch("checkout", (0..1000).map(|_| span(2, StatusCode::Ok, 1)).collect());
    c.consume(&good, now(0), &mut Vec::new());
    let out = tick(&mut c, now(15));
    // The period holds the saved 1000 (100 bad) and the new 1000: 100 / 2000.
    assert_eq!(value(&out, "slo:sli_error:ratio_rate30d"), Some(0.05));
    assert_eq!(value(&out, "slo:period_burn_rate:ratio"), Some(0.05 / 0.01));
    // The 1h window let go of the saved spans (sent 3600 s ago): only the new ones.
    assert_eq!(value(&out, "slo:sli_error:ratio_rate1h"), Some(0.0));
    // The page was firing when saved and is still firing (6h and 30m? 30m holds only good spans: resolved).
    assert_eq!(firing(&out, "page"), 0.0);
    assert_eq!(firing(&out, "ticket"), 1.0, "3d: 0.05 / 0.01 = 5 > 1 and 6h: 5 > 1");
}

#[test]
fn a_corrupt_counters_file_fails_the_start_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("slo-slo-logs.json"), b"{\"version\":1,\"sl").unwrap();
    let storage = FileStorageConfig { directory: dir.path().display().to_string(), fsync: false };
    let mut extensions: BTreeMap<crate::config::ComponentId, Arc<dyn ExtensionSpec>> = BTreeMap::new();
    extensions.insert(crate::config::ComponentId::parse("file_storage").unwrap(), Arc::new(storage));
    let cfg = compile(&format!("storage: file_storage\n{CHECKOUT}")).unwrap();
    let err = cfg.build(&ctx(Signal::Logs, &Registry::new(), extensions)).err().unwrap();
    assert!(err.contains("slo-slo-logs.json is not valid"), "{err}");
}
