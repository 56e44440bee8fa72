//! The `count` connector against hand-counted batches: every expected value
//! below is counted from the input as the Collector's countconnector does.

use super::*;
use crate::config::node;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, Histogram, HistogramDataPoint};
use opentelemetry_proto::tonic::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span};
use std::time::Instant;

fn compile(yaml: &str) -> Result<Count, Vec<String>> {
    let node = node::parse(yaml).unwrap().unwrap_or(node::Node { line: 1, value: node::Value::Map(Vec::new()) });
    let mut errors = Vec::new();
    let mut input = crate::config::component::ComponentInput {
        node: &node,
        path: "connectors::count",
        env: Default::default(),
        errors: &mut errors,
    };
    match (FACTORY.compile)(&mut input) {
        Some(c) => Ok(c.downcast_ref::<Count>().unwrap().clone()),
        None => Err(errors.iter().map(ToString::to_string).collect()),
    }
}

fn s(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    }
}

fn i(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(v)) }),
        ..Default::default()
    }
}

fn now() -> Now {
    Now { instant: Instant::now(), unix_nanos: 9_000 }
}

fn span(name: &str, start: u64, end: u64, attrs: Vec<KeyValue>, events: usize) -> Span {
    Span {
        name: name.into(),
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: attrs,
        events: (0..events)
            .map(|k| Event { name: "e".into(), time_unix_nano: start + 1 + k as u64, ..Default::default() })
            .collect(),
        ..Default::default()
    }
}

fn traces(resources: Vec<(Vec<KeyValue>, Vec<Span>)>) -> Batch {
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: resources
            .into_iter()
            .map(|(attrs, spans)| ResourceSpans {
                resource: Some(Resource { attributes: attrs, ..Default::default() }),
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    })
}

/// (metric name, [(attributes as "k=v" strings, count, start, end)]) per resource.
type Seen = Vec<Vec<(String, Vec<(Vec<String>, i64, u64, u64)>)>>;

fn seen(out: &[Batch]) -> Seen {
    assert_eq!(out.len(), 1, "one metrics batch per batch counted");
    let Batch::Metrics(req) = &out[0] else { panic!("not metrics") };
    req.resource_metrics
        .iter()
        .map(|rm| {
            assert_eq!(rm.scope_metrics.len(), 1);
            let sm = &rm.scope_metrics[0];
            assert_eq!(sm.scope.as_ref().unwrap().name, SCOPE_NAME);
            sm.metrics
                .iter()
                .map(|m| {
                    let Some(metric::Data::Sum(sum)) = &m.data else { panic!("not a sum") };
                    assert!(sum.is_monotonic);
                    assert_eq!(sum.aggregation_temporality, AggregationTemporality::Delta as i32);
                    let points = sum
                        .data_points
                        .iter()
                        .map(|p| {
                            let attrs = p
                                .attributes
                                .iter()
                                .map(|kv| match &kv.value.as_ref().unwrap().value {
                                    Some(any_value::Value::StringValue(v)) => format!("{}={v}", kv.key),
                                    Some(any_value::Value::IntValue(v)) => format!("{}={v}i", kv.key),
                                    other => format!("{}={other:?}", kv.key),
                                })
                                .collect();
                            let Some(number_data_point::Value::AsInt(n)) = p.value else { panic!("not an int") };
                            (attrs, n, p.start_time_unix_nano, p.time_unix_nano)
                        })
                        .collect();
                    (m.name.clone(), points)
                })
                .collect()
        })
        .collect()
}

#[test]
fn default_counts_of_spans_and_span_events_per_resource() {
    let mut c = compile("").unwrap();
    let batch = traces(vec![
        (vec![s("service.name", "a")], vec![span("x", 100, 200, vec![], 2), span("y", 50, 300, vec![], 0)]),
        (vec![s("service.name", "b")], vec![span("z", 10, 20, vec![], 1)]),
        (vec![s("service.name", "empty")], vec![]),
    ]);
    let mut out = Vec::new();
    c.consume(&batch, now(), &mut out);
    // Resource a: 2 spans (timestamps 50..300), 2 events (at 101 and 102).
    // Resource b: 1 span (10..20), 1 event (at 11). The empty resource emits nothing.
    assert_eq!(
        seen(&out),
        vec![
            vec![
                ("trace.span.count".to_string(), vec![(vec![], 2, 50, 300)]),
                ("trace.span.event.count".to_string(), vec![(vec![], 2, 101, 102)]),
            ],
            vec![
                ("trace.span.count".to_string(), vec![(vec![], 1, 10, 20)]),
                ("trace.span.event.count".to_string(), vec![(vec![], 1, 11, 11)]),
            ],
        ]
    );
    let Batch::Metrics(req) = &out[0] else { unreachable!() };
    assert_eq!(req.resource_metrics[0].resource.as_ref().unwrap().attributes, vec![s("service.name", "a")]);
    assert_eq!(req.resource_metrics[0].scope_metrics[0].metrics[0].description, "The number of spans observed.");
}

#[test]
fn attributes_group_counts_from_item_then_scope_then_resource_else_default() {
    let mut c = compile(
        "spans:\n  by.env:\n    description: spans per env\n    attributes:\n      - key: env\n        default_value: none\n  by.code:\n    attributes:\n      - key: code\n",
    )
    .unwrap();
    let batch = traces(vec![(
        vec![s("env", "from-resource")],
        vec![
            span("1", 1, 2, vec![s("env", "prod"), i("code", 200)], 0),
            span("2", 1, 2, vec![s("env", "prod"), i("code", 500)], 0),
            span("3", 1, 2, vec![s("env", "dev"), i("code", 200)], 0),
            span("4", 1, 2, vec![], 0),
        ],
    )]);
    let mut out = Vec::new();
    c.consume(&batch, now(), &mut out);
    // by.code: spans 1 and 3 have code 200, span 2 has 500, span 4 has none (no default): not counted.
    // by.env: prod twice, dev once, span 4 takes the resource's env. No span events section default
    // is emitted for events since there are none.
    assert_eq!(
        seen(&out),
        vec![vec![
            ("by.code".to_string(), vec![(vec!["code=200i".into()], 2, 1, 2), (vec!["code=500i".into()], 1, 1, 2)]),
            (
                "by.env".to_string(),
                vec![
                    (vec!["env=prod".into()], 2, 1, 2),
                    (vec!["env=dev".into()], 1, 1, 2),
                    (vec!["env=from-resource".into()], 1, 1, 2),
                ]
            ),
        ]]
    );
    // Without the resource's env, span 4 is counted under the default value.
    let batch = traces(vec![(vec![], vec![span("4", 1, 2, vec![], 0)])]);
    let mut out = Vec::new();
    c.consume(&batch, now(), &mut out);
    assert_eq!(seen(&out), vec![vec![("by.env".to_string(), vec![(vec!["env=none".into()], 1, 1, 2)])]]);
}

#[test]
fn metrics_and_data_points_of_every_type_are_counted() {
    let mut c = compile("").unwrap();
    let gauge = Metric {
        name: "g".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![
                NumberDataPoint { time_unix_nano: 5, ..Default::default() },
                NumberDataPoint { time_unix_nano: 7, ..Default::default() },
            ],
        })),
        ..Default::default()
    };
    let hist = Metric {
        name: "h".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint { time_unix_nano: 6, ..Default::default() }; 3],
            aggregation_temporality: 2,
        })),
        ..Default::default()
    };
    let empty = Metric { name: "nothing".into(), ..Default::default() };
    let batch = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics: vec![gauge, hist, empty], ..Default::default() }],
            ..Default::default()
        }],
    });
    let mut out = Vec::new();
    c.consume(&batch, now(), &mut out);
    // 3 metrics (no timestamps: the time of the call, 9000), 2 + 3 data points (5..7).
    assert_eq!(
        seen(&out),
        vec![vec![
            ("metric.count".to_string(), vec![(vec![], 3, 9_000, 9_000)]),
            ("metric.datapoint.count".to_string(), vec![(vec![], 5, 5, 7)]),
        ]]
    );
}

#[test]
fn log_records_are_counted_and_a_written_section_replaces_the_default() {
    let mut c = compile("logs:\n  my.log.count:\n    attributes:\n      - key: level\n").unwrap();
    let record = |level: Option<&str>, t: u64| LogRecord {
        time_unix_nano: t,
        attributes: level.map(|l| vec![s("level", l)]).unwrap_or_default(),
        ..Default::default()
    };
    let batch = Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![
                    record(Some("error"), 3),
                    record(Some("info"), 0),
                    record(Some("error"), 8),
                    record(None, 4),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let mut out = Vec::new();
    c.consume(&batch, now(), &mut out);
    // No log.record.count: the section names its own metric. Timestamps 3..8 (0 is none).
    assert_eq!(
        seen(&out),
        vec![vec![(
            "my.log.count".to_string(),
            vec![(vec!["level=error".into()], 2, 3, 8), (vec!["level=info".into()], 1, 3, 8)]
        )]]
    );
    assert_eq!(compile("").unwrap().logs[0].name, "log.record.count");
}

#[test]
fn nothing_counted_emits_nothing() {
    let mut c = compile("spans:\n  only.prod:\n    attributes:\n      - key: env\n").unwrap();
    let mut out = Vec::new();
    c.consume(&traces(vec![(vec![], vec![span("x", 1, 2, vec![], 0)])]), now(), &mut out);
    assert!(out.is_empty());
}

#[test]
fn conditions_count_an_item_when_any_holds() {
    // The Collector's countconnector: the conditions of one metric are ORed;
    // a metric with none counts every item. Spans: "a" (kind server, env
    // prod), "b" (kind client, env dev), "c" (kind server, env dev).
    let mut c = compile(
        "spans:\n  server.or.prod:\n    conditions:\n      - kind == SPAN_KIND_SERVER\n      - attributes[\"env\"] == \"prod\"\n  prod:\n    conditions:\n      - attributes[\"env\"] == \"prod\"\n  all:\n    description: every span\nspanevents:\n  named.e:\n    conditions:\n      - name == \"e\" and span.name == \"b\"\n",
    )
    .unwrap();
    let mut a = span("a", 1, 2, vec![s("env", "prod")], 0);
    a.kind = 2;
    let mut b = span("b", 1, 2, vec![s("env", "dev")], 2);
    b.kind = 3;
    let mut c_span = span("c", 1, 2, vec![s("env", "dev")], 1);
    c_span.kind = 2;
    let batch = traces(vec![(vec![], vec![a, b, c_span])]);
    let mut out = Vec::new();
    let mut payloads = Vec::new();
    c.consume_payload(&Payload::Decoded(batch.clone()), now(), &mut payloads).unwrap();
    c.consume(&batch, now(), &mut out);
    assert_eq!(payloads.len(), 1);
    // server.or.prod: a (both), c (server) = 2; prod: a = 1; all: 3.
    // named.e: the 2 events of span b (c's event is of span c) = 2.
    assert_eq!(
        seen(&out),
        vec![vec![
            ("all".to_string(), vec![(vec![], 3, 1, 2)]),
            ("prod".to_string(), vec![(vec![], 1, 1, 2)]),
            ("server.or.prod".to_string(), vec![(vec![], 2, 1, 2)]),
            ("named.e".to_string(), vec![(vec![], 2, 2, 3)]),
        ]]
    );
}

#[test]
fn conditions_of_metrics_data_points_and_logs() {
    let mut c = compile(
        "metrics:\n  gauges:\n    conditions: [type == METRIC_DATA_TYPE_GAUGE]\ndatapoints:\n  big:\n    conditions: [value_double > 10.0]\n    attributes:\n      - key: host\n",
    )
    .unwrap();
    let point = |v: f64, host: &str| NumberDataPoint {
        time_unix_nano: 5,
        value: Some(number_data_point::Value::AsDouble(v)),
        attributes: vec![s("host", host)],
        ..Default::default()
    };
    let gauge = Metric {
        name: "g".into(),
        data: Some(metric::Data::Gauge(Gauge {
            data_points: vec![point(1.0, "h1"), point(11.0, "h1"), point(20.0, "h2")],
        })),
        ..Default::default()
    };
    let sum = Metric {
        name: "s".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![point(5.0, "h3")],
            aggregation_temporality: 2,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let batch = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics { metrics: vec![gauge, sum], ..Default::default() }],
            ..Default::default()
        }],
    });
    let mut out = Vec::new();
    c.consume(&batch, now(), &mut out);
    // gauges: 1 of the 2 metrics. big: the points 11 (h1) and 20 (h2), not
    // 1 (h1) nor the sum's 5 (h3).
    assert_eq!(
        seen(&out),
        vec![vec![
            ("gauges".to_string(), vec![(vec![], 1, 9_000, 9_000)]),
            ("big".to_string(), vec![(vec!["host=h1".into()], 1, 5, 5), (vec!["host=h2".into()], 1, 5, 5)]),
        ]]
    );

    let mut c = compile("logs:\n  errors:\n    conditions: ['severity_number >= SEVERITY_NUMBER_ERROR']\n").unwrap();
    let record = |sev: i32| LogRecord { severity_number: sev, time_unix_nano: 3, ..Default::default() };
    let batch = Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![record(17), record(9), record(21)], ..Default::default() }],
            ..Default::default()
        }],
    });
    let mut out = Vec::new();
    c.consume(&batch, now(), &mut out);
    // ERROR is 17: records of severity 17 and 21.
    assert_eq!(seen(&out), vec![vec![("errors".to_string(), vec![(vec![], 2, 3, 3)])]]);
}

#[test]
fn a_failing_condition_fails_the_batch_and_a_bad_one_is_refused() {
    let mut c = compile("spans:\n  n:\n    conditions: ['attributes[\"n\"] + 1 > 2']\n").unwrap();
    let batch =
        traces(vec![(vec![], vec![span("a", 1, 2, vec![i("n", 5)], 0), span("b", 1, 2, vec![s("n", "x")], 0)])]);
    let mut out = Vec::new();
    let err = c.consume_payload(&Payload::Decoded(batch), now(), &mut out).unwrap_err();
    assert!(err.contains("a count condition failed") && err.contains("metric \"n\""), "{err}");
    assert!(out.is_empty(), "nothing is counted for the batch, as in the Collector");

    let e = compile("spans:\n  n:\n    conditions:\n      - nmae == \"x\"\n").unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(
        e[0].starts_with("connectors::count::spans::n::conditions::0 (line 4): in \"nmae == \\\"x\\\"\" at column 1:"),
        "{e:?}"
    );
    let e = compile("logs:\n  n:\n    attributes:\n      - key: a\n        any_depth: true\n").unwrap_err();
    assert_eq!(e.len(), 1);
    assert!(e[0].contains("the Collector has `any_depth`; sluice does not support it (yet)"), "{e:?}");
}
