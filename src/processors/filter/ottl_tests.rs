//! The filter's OTTL form, with the examples of the Collector's
//! filterprocessor README.

use super::*;
use crate::config::ComponentId;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value as Av, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    Histogram, HistogramDataPoint, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::Event, ResourceSpans, ScopeSpans, Span};

const ID: &str = "filter/ottl";

fn load(body: &str, signal: &str) -> Result<std::sync::Arc<dyn ProcessorSpec>, crate::config::ConfigErrors> {
    let text = format!(
        "receivers:\n  otlp:\n    protocols: {{grpc: }}\nprocessors:\n  {ID}:\n{body}\
         exporters:\n  debug:\nservice:\n  pipelines:\n    {signal}: {{receivers: [otlp], processors: [{ID}], exporters: [debug]}}\n"
    );
    let cfg = crate::service::load::load_agent_config(&text, &|_| None)?;
    Ok(cfg.processors.get(&ComponentId::parse(ID).unwrap()).unwrap().clone())
}

fn processor(body: &str, signal: Signal) -> (Box<dyn Processor>, Registry) {
    let spec = load(body, signal.as_str()).unwrap_or_else(|e| panic!("{e}"));
    let registry = Registry::new();
    let ctx = ProcessorContext {
        id: ID.into(),
        signal,
        registry: registry.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    (spec.build(&ctx).unwrap(), registry)
}

fn run(p: &mut Box<dyn Processor>, b: Batch) -> Vec<Batch> {
    let mut out = Vec::new();
    p.process(b, Instant::now(), &mut out);
    out
}

fn av(v: Av) -> Option<AnyValue> {
    Some(AnyValue { value: Some(v) })
}
fn kv(k: &str, v: Av) -> KeyValue {
    KeyValue { key: k.into(), value: av(v), ..Default::default() }
}
fn s(v: &str) -> Av {
    Av::StringValue(v.into())
}

fn span(name: &str, attrs: Vec<KeyValue>, events: Vec<Event>) -> Span {
    Span { name: name.into(), attributes: attrs, events, ..Default::default() }
}

fn event(name: &str, attrs: Vec<KeyValue>) -> Event {
    Event { name: name.into(), attributes: attrs, ..Default::default() }
}

fn value(reg: &Registry, name: &str) -> f64 {
    reg.value(name, &[("processor", ID)]).unwrap_or(0.0)
}

#[test]
fn readme_trace_conditions_drop_spans_and_events() {
    let (mut p, reg) = processor(
        r#"    error_mode: ignore
    traces:
      span:
        - 'attributes["container.name"] == "app_container_1"'
        - 'resource.attributes["host.name"] == "localhost"'
        - 'name == "app_3"'
      spanevent:
        - 'attributes["grpc"] == true'
        - 'IsMatch(name, ".*grpc.*")'
"#,
        Signal::Traces,
    );
    let rs = |host: &str, spans: Vec<Span>| ResourceSpans {
        resource: Some(Resource { attributes: vec![kv("host.name", s(host))], ..Default::default() }),
        scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
        ..Default::default()
    };
    let batch = Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![
            rs("localhost", vec![span("a", vec![], vec![]), span("b", vec![], vec![])]),
            rs(
                "web-1",
                vec![
                    span("app_3", vec![], vec![]),
                    span("c", vec![kv("container.name", s("app_container_1"))], vec![]),
                    span(
                        "kept",
                        vec![kv("container.name", s("app_container_2"))],
                        vec![
                            event("grpc.call", vec![]),
                            event("e", vec![kv("grpc", Av::BoolValue(true))]),
                            event("e", vec![kv("grpc", s("true"))]),
                        ],
                    ),
                ],
            ),
        ],
    });
    let out = run(&mut p, batch);
    let Batch::Traces(r) = &out[0] else { panic!() };
    // The localhost resource lost every span, so it went.
    assert_eq!(r.resource_spans.len(), 1);
    let spans = &r.resource_spans[0].scope_spans[0].spans;
    assert_eq!(spans.len(), 1);
    assert_eq!(spans[0].name, "kept");
    // Only the event whose grpc attribute is the string "true" stays.
    assert_eq!(spans[0].events.len(), 1);
    assert_eq!(spans[0].dropped_events_count, 2);
    assert_eq!(value(&reg, "otelcol_processor_dropped_spans_total"), 4.0);
    assert_eq!(value(&reg, "sluice_filter_span_events_dropped_total"), 2.0);
}

#[test]
fn readme_metric_conditions_drop_metrics_and_points() {
    let (mut p, reg) = processor(
        r#"    error_mode: ignore
    metrics:
      metric:
        - 'name == "my.metric" and resource.attributes["my_label"] == "abc123"'
        - 'type == METRIC_DATA_TYPE_HISTOGRAM'
      datapoint:
        - 'metric.type == METRIC_DATA_TYPE_SUMMARY'
        - 'resource.attributes["service.name"] == "my_service_name"'
        - 'attributes["drop"] == true'
"#,
        Signal::Metrics,
    );
    let number = |attrs: Vec<KeyValue>| NumberDataPoint { attributes: attrs, ..Default::default() };
    let batch = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![kv("my_label", s("abc123"))], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    Metric {
                        name: "my.metric".into(),
                        data: Some(Data::Sum(Sum { data_points: vec![number(vec![])], ..Default::default() })),
                        ..Default::default()
                    },
                    Metric {
                        name: "h".into(),
                        data: Some(Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint::default(), HistogramDataPoint::default()],
                            ..Default::default()
                        })),
                        ..Default::default()
                    },
                    Metric {
                        name: "s".into(),
                        data: Some(Data::Summary(Summary { data_points: vec![SummaryDataPoint::default()] })),
                        ..Default::default()
                    },
                    Metric {
                        name: "kept".into(),
                        data: Some(Data::Sum(Sum {
                            data_points: vec![number(vec![kv("drop", Av::BoolValue(true))]), number(vec![])],
                            ..Default::default()
                        })),
                        ..Default::default()
                    },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let out = run(&mut p, batch);
    let Batch::Metrics(r) = &out[0] else { panic!() };
    let ms = &r.resource_metrics[0].scope_metrics[0].metrics;
    let names: Vec<&str> = ms.iter().map(|m| m.name.as_str()).collect();
    // my.metric and the histogram by metric conditions; the summary lost its only point.
    assert_eq!(names, ["kept"]);
    assert_eq!(crate::data::metric_point_count(ms[0].data.as_ref()), 1);
    assert_eq!(value(&reg, "otelcol_processor_dropped_metric_points_total"), 5.0);
}

#[test]
fn readme_log_conditions_and_error_modes() {
    let body = r#"    logs:
      log_record:
        - 'IsMatch(body, ".*password.*")'
        - 'severity_number < SEVERITY_NUMBER_WARN'
        - 'Substring(body, 0, 20) == "x"'
"#;
    let batch = || {
        let rec = |b: &str, sev: i32| LogRecord { body: av(s(b)), severity_number: sev, ..Default::default() };
        Batch::Logs(ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![
                        rec("my password is x", 17),
                        rec("debug line", 5),
                        rec("short", 17),
                        rec("a long enough error body", 17),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        })
    };
    for mode in ["ignore", "silent"] {
        let (mut p, reg) = processor(&format!("    error_mode: {mode}\n{body}"), Signal::Logs);
        let out = run(&mut p, batch());
        let Batch::Logs(r) = &out[0] else { panic!() };
        let bodies: Vec<_> = r.resource_logs[0].scope_logs[0].log_records.iter().map(|l| l.body.clone()).collect();
        // "short" fails Substring: the failure counts as not met, so it stays.
        assert_eq!(bodies, [av(s("short")), av(s("a long enough error body"))], "{mode}");
        assert_eq!(value(&reg, "otelcol_processor_dropped_log_records_total"), 2.0);
        assert_eq!(reg.value("sluice_ottl_errors_total", &[("processor", ID), ("otel_signal", "logs")]), Some(1.0));
    }
    // The Collector's default, propagate: the batch goes, counted.
    let (mut p, reg) = processor(body, Signal::Logs);
    assert!(run(&mut p, batch()).is_empty());
    assert_eq!(value(&reg, "otelcol_processor_dropped_log_records_total"), 4.0);
    assert_eq!(
        reg.value("sluice_ottl_batches_dropped_total", &[("processor", ID), ("otel_signal", "logs")]),
        Some(1.0)
    );
}

#[test]
fn ottl_and_legacy_for_one_signal_is_an_error() {
    let errors = load(
        r#"    traces:
      span:
        - 'name == "x"'
    spans:
      exclude:
        match_type: strict
        span_names: [x]
    logs:
      log_record:
        - 'nme == "x"'
"#,
        "traces",
    )
    .unwrap_err();
    let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert!(
        shown.iter().any(|e| e.starts_with("processors::filter/ottl::traces (line 6): cannot use ottl conditions and include/exclude for spans at the same time")),
        "{shown:#?}"
    );
    assert!(
        shown.iter().any(|e| e.starts_with("processors::filter/ottl::logs::log_record::0 (line 15): ")
            && e.contains("unknown path `nme` in the log context")),
        "{shown:#?}"
    );
}

#[test]
fn readme_has_attr_on_datapoint() {
    let (mut p, _) = processor(
        r#"    metrics:
      metric:
        - 'HasAttrKeyOnDatapoint("http.method")'
        - 'HasAttrOnDatapoint("env", "dev")'
"#,
        Signal::Metrics,
    );
    let metric = |name: &str, attrs: Vec<KeyValue>| Metric {
        name: name.into(),
        data: Some(Data::Sum(Sum {
            data_points: vec![NumberDataPoint::default(), NumberDataPoint { attributes: attrs, ..Default::default() }],
            ..Default::default()
        })),
        ..Default::default()
    };
    let batch = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![
                    metric("a", vec![kv("http.method", s("GET"))]),
                    metric("b", vec![kv("env", s("dev"))]),
                    metric("c", vec![kv("env", s("prod"))]),
                ],
                ..Default::default()
            }],
            ..Default::default()
        }],
    });
    let out = run(&mut p, batch);
    let Batch::Metrics(r) = &out[0] else { panic!() };
    let names: Vec<&str> = r.resource_metrics[0].scope_metrics[0].metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["c"]);
    let e = load("    logs:\n      log_record:\n        - 'HasAttrKeyOnDatapoint(\"k\")'\n", "logs").unwrap_err();
    assert!(e.to_string().contains("runs in the metric context only"), "{e}");
}
