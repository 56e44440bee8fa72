use super::*;
use crate::data::fixtures::kv;
use crate::exporters::otlp::tests::traces;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{Gauge, NumberDataPoint, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};

fn metrics() -> ExportMetricsServiceRequest {
    let point = |v: f64| NumberDataPoint {
        value: Some(number_data_point::Value::AsDouble(v)),
        attributes: vec![kv("host", any_value::Value::StringValue("a".into()))],
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "cpu".into(),
                    data: Some(Data::Gauge(Gauge { data_points: vec![point(0.5), point(1.5)] })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn logs() -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    severity_number: 17,
                    body: Some(AnyValue { value: Some(any_value::Value::StringValue("disk full".into())) }),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

#[test]
fn basic_summaries_count_like_the_collector() {
    assert_eq!(summary("debug", &Batch::Traces(traces(3))), "exporter=debug data_type=traces resource_spans=1 spans=3");
    assert_eq!(
        summary("debug/x", &Batch::Metrics(metrics())),
        "exporter=debug/x data_type=metrics resource_metrics=1 metrics=1 data_points=2"
    );
    assert_eq!(summary("debug", &Batch::Logs(logs())), "exporter=debug data_type=logs resource_logs=1 log_records=1");
}

#[test]
fn normal_lines_one_per_item() {
    let lines = normal_lines(&Batch::Traces(traces(2)));
    assert_eq!(lines.len(), 2);
    assert_eq!(
        lines[0],
        "span \"span-0\" trace_id=01010101010101010101010101010101 span_id=0101010101010101 parent_span_id= duration=1µs"
    );
    assert_eq!(
        normal_lines(&Batch::Metrics(metrics())),
        vec!["metric \"cpu\" value=0.5 host=\"a\"", "metric \"cpu\" value=1.5 host=\"a\""]
    );
    assert_eq!(normal_lines(&Batch::Logs(logs())), vec!["log severity=ERROR body=\"disk full\""]);
}

#[test]
fn detailed_shows_attributes_events_and_links() {
    let mut req = traces(1);
    let rs = &mut req.resource_spans[0];
    rs.resource = Some(Resource {
        attributes: vec![kv("service.name", any_value::Value::StringValue("shop".into()))],
        ..Default::default()
    });
    let span = &mut rs.scope_spans[0].spans[0];
    span.attributes.push(kv("http.status_code", any_value::Value::IntValue(500)));
    span.events.push(Event { name: "exception".into(), ..Default::default() });
    span.links.push(Link { trace_id: vec![0xab; 16], span_id: vec![0xcd; 8], ..Default::default() });
    let text = detailed(&Batch::Traces(req));
    for needle in [
        "-> service.name: Str(shop)",
        "-> http.status_code: Int(500)",
        "-> Name: exception",
        "-> Trace ID: abababababababababababababababab",
        "Name           : span-0",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in\n{text}");
    }
    assert!(detailed(&Batch::Metrics(metrics())).contains("Value: value=1.5"));
    assert!(detailed(&Batch::Logs(logs())).contains("Body: Str(disk full)"));
}

#[test]
fn sampler_is_zaps() {
    let mut s = Sampler::new(2, 3);
    let t0 = Instant::now();
    let passed: Vec<bool> = (0..8).map(|_| s.allow(t0)).collect();
    assert_eq!(passed, vec![true, true, false, false, true, false, false, true]);
    assert!(s.allow(t0 + Duration::from_secs(1)), "a new tick starts over");
    let mut none_after = Sampler::new(1, 0);
    assert!(none_after.allow(t0));
    assert!(!none_after.allow(t0));
}

#[tokio::test]
async fn export_never_fails() {
    let exp = DebugExporter::new(
        &DebugExporterConfig { verbosity: Verbosity::Detailed, ..Default::default() },
        Signal::Traces,
        "debug",
    )
    .unwrap();
    assert_eq!(exp.export(&Batch::Traces(traces(2))).await, Ok(ExportOutcome::default()));
}
