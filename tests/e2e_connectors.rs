//! Connectors end to end: the OpenTelemetry Python SDK sends spans to
//! sluice; `count` and `spanmetrics` connectors turn them into metrics on a
//! metrics pipeline exported by sluice's `prometheus` exporter, scraped over
//! HTTP; a `forward` connector copies them to a second traces pipeline. The
//! values asserted are counted from what the script sends.

mod common;

use common::*;
use std::time::Duration;

/// 30 server spans of service `checkout`: span `i` has route `/a` when
/// `i % 3 == 0` (10 spans) else `/b` (20 spans), one event when `i % 5 == 0`
/// (6 events), status ERROR when `i % 10 == 9` (3 spans: i = 9, 19, 29), and
/// lasts exactly `i + 1` milliseconds (start and end given to the SDK).
const SEND_SPANS: &str = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
import time

provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("e2e-connectors")
start = time.time_ns()
for i in range(30):
    span = tracer.start_span("op", kind=SpanKind.SERVER, start_time=start,
                             attributes={"http.route": "/a" if i % 3 == 0 else "/b"})
    if i % 5 == 0:
        span.add_event("retry")
    if i % 10 == 9:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=start + (i + 1) * 1_000_000)
provider.shutdown()
"#;

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn python_sdk_spans_are_counted_into_prometheus_and_forwarded() {
    let py = python();
    let dir = temp_dir();
    let ports = Ports::pick();
    let page = format!("127.0.0.1:{}", free_port());
    let copy = dir.path().join("copy.jsonl");
    let exporters = format!("  prometheus:\n    endpoint: {page}\n  file:\n    path: {}\n", copy.display());
    let connectors = "  count:
    spans:
      e2e.spans.by.route:
        description: spans per route
        attributes:
          - key: http.route
  forward:
  spanmetrics:
    metrics_flush_interval: 1s
    dimensions:
      - name: http.route
";
    let pipelines = [
        pipeline("traces", &["otlp"], &[], &["count", "forward", "spanmetrics"], &[]),
        pipeline("traces/copy", &["forward"], &[], &["file"], &[]),
        pipeline("metrics/counts", &["count", "spanmetrics"], &[], &["prometheus"], &[]),
    ]
    .concat();
    let config = config_with(
        ports,
        Sections { exporters: &exporters, connectors, pipelines: &pipelines, ..Sections::default() },
    );
    std::fs::write(dir.path().join("copy.jsonl"), "").unwrap();
    let agent = Agent::start(dir.path(), &config, ports);

    let script = dir.path().join("send_spans.py");
    std::fs::write(&script, SEND_SPANS).unwrap();
    let out = std::process::Command::new(&py).arg(&script).arg(agent.grpc_endpoint()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The count connector's metrics, scraped: 10 spans on /a, 20 on /b, and
    // the default span event count (6), under the resource's job.
    let value = |name: &str, labels: &[(&str, &str)]| {
        let (status, text) = http_get(&page, "/metrics").ok()?;
        (status == 200).then(|| metric_value(&text, name, labels)).flatten()
    };
    let ready = wait_until("the counts on the prometheus page", Duration::from_secs(15), || {
        value("e2e_spans_by_route_total", &[("http_route", "/b")]) == Some(20.0)
            && value("trace_span_event_count_total", &[]) == Some(6.0)
    });
    assert!(ready, "page:\n{:?}\nlog:\n{}", http_get(&page, "/metrics"), agent.log());
    assert_eq!(value("e2e_spans_by_route_total", &[("http_route", "/a"), ("job", "checkout")]), Some(10.0));
    assert_eq!(value("e2e_spans_by_route_total", &[("http_route", "/b"), ("job", "checkout")]), Some(20.0));
    assert_eq!(value("trace_span_event_count_total", &[("job", "checkout")]), Some(6.0));
    // The written `spans` section replaces the default span count.
    assert_eq!(value("trace_span_count_total", &[]), None);

    // spanmetrics, under the Collector's Prometheus names. Calls: route /b has
    // 20 spans, of which i = 19 and 29 are errors (2); /a has 10, i = 9 is
    // its error (1).
    let calls = "traces_span_metrics_calls_total";
    let series = |route: &'static str, status: &'static str| {
        [
            ("service_name", "checkout"),
            ("span_name", "op"),
            ("span_kind", "SPAN_KIND_SERVER"),
            ("status_code", status),
            ("http_route", route),
        ]
    };
    let ready = wait_until("spanmetrics on the page", Duration::from_secs(15), || {
        value(calls, &series("/b", "STATUS_CODE_UNSET")) == Some(18.0)
    });
    assert!(ready, "page:\n{:?}\nlog:\n{}", http_get(&page, "/metrics"), agent.log());
    assert_eq!(value(calls, &series("/b", "STATUS_CODE_ERROR")), Some(2.0));
    assert_eq!(value(calls, &series("/a", "STATUS_CODE_UNSET")), Some(9.0));
    assert_eq!(value(calls, &series("/a", "STATUS_CODE_ERROR")), Some(1.0));
    // Durations of route /a: i = 0, 3, ..., 27 last 1, 4, 7, ..., 28 ms; the
    // error is i = 9 (10 ms). Unset ones: 1, 4, 7, 13, 16, 19, 22, 25, 28 ms.
    // Default buckets 2, 4, 6, 8, 10, 50 ms (inclusive upper bounds, cumulative
    // in Prometheus): le=2: 1; le=4: 2; le=6: 2; le=8: 3; le=10: 3; le=50: 9.
    let duration = "traces_span_metrics_duration_milliseconds_bucket";
    let bucket = |le: &'static str| {
        let [a, b, c, d, e] = series("/a", "STATUS_CODE_UNSET");
        value(duration, &[a, b, c, d, e, ("le", le)])
    };
    for (le, want) in [("2", 1.0), ("4", 2.0), ("6", 2.0), ("8", 3.0), ("10", 3.0), ("50", 9.0), ("+Inf", 9.0)] {
        assert_eq!(bucket(le), Some(want), "le={le}");
    }
    assert_eq!(
        value("traces_span_metrics_duration_milliseconds_sum", &series("/a", "STATUS_CODE_UNSET")),
        Some(135.0) // 1 + 4 + 7 + 13 + 16 + 19 + 22 + 25 + 28
    );
    assert_eq!(value("traces_span_metrics_duration_milliseconds_count", &series("/a", "STATUS_CODE_ERROR")), Some(1.0));

    // The forward connector's copy reached the file exporter: all 30 spans.
    let sent = |e: &str| agent.metric("otelcol_exporter_sent_spans_total", &[("exporter", e)]);
    assert!(wait_until("the forwarded spans", Duration::from_secs(10), || sent("file") == 30.0), "{}", agent.log());

    // What each connector took and emitted (count: 30 spans in, at least
    // 2 + 1 data points out: two routes and the event count, per batch).
    let c = |name: &str, labels: &[(&str, &str)]| agent.metric(name, labels);
    assert_eq!(c("otelcol_connector_incoming_items_total", &[("connector", "count"), ("otel_signal", "traces")]), 30.0);
    assert_eq!(
        c("otelcol_connector_incoming_items_total", &[("connector", "forward"), ("otel_signal", "traces")]),
        30.0
    );
    assert_eq!(
        c("otelcol_connector_outgoing_items_total", &[("connector", "forward"), ("otel_signal", "traces")]),
        30.0
    );
    let emitted = c("otelcol_connector_outgoing_items_total", &[("connector", "count"), ("otel_signal", "metrics")]);
    assert!(emitted >= 3.0, "count emitted {emitted} data points");
    assert_eq!(c("otelcol_connector_dropped_items_total", &[]), 0.0);
    agent.stop();
}

/// Spans of three services, each from its own SDK provider: `checkout`
/// sends 7 spans `op` and one `health`, `billing` 4 spans `op`, `other` 2.
const SEND_SERVICES: &str = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

for service, ops, health in [("checkout", 7, 1), ("billing", 4, 0), ("other", 2, 0)]:
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
    tracer = provider.get_tracer("e2e-routing")
    for i in range(ops):
        tracer.start_span("op").end()
    for i in range(health):
        tracer.start_span("health").end()
    provider.shutdown()
"#;

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn python_sdk_spans_are_routed_by_service_to_their_pipelines() {
    let py = python();
    let dir = temp_dir();
    let ports = Ports::pick();
    let file = |name: &str| dir.path().join(format!("{name}.jsonl"));
    let exporters: String = ["health", "checkout", "billing", "other"]
        .iter()
        .map(|name| format!("  file/{name}:\n    path: {}\n", file(name).display()))
        .collect();
    let connectors = "  routing:
    default_pipelines: [traces/other]
    table:
      - context: span
        condition: name == \"health\"
        pipelines: [traces/health]
      - condition: attributes[\"service.name\"] == \"checkout\"
        pipelines: [traces/checkout]
      - statement: route() where attributes[\"service.name\"] == \"billing\"
        pipelines: [traces/billing]
";
    let mut pipelines = pipeline("traces/in", &["otlp"], &[], &["routing"], &[]);
    for name in ["health", "checkout", "billing", "other"] {
        pipelines += &pipeline(&format!("traces/{name}"), &["routing"], &[], &[&format!("file/{name}")], &[]);
    }
    let config = config_with(
        ports,
        Sections { exporters: &exporters, connectors, pipelines: &pipelines, ..Sections::default() },
    );
    let agent = Agent::start(dir.path(), &config, ports);

    let script = dir.path().join("send_services.py");
    std::fs::write(&script, SEND_SERVICES).unwrap();
    let out = std::process::Command::new(&py).arg(&script).arg(agent.grpc_endpoint()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // First match wins: checkout's health span goes to traces/health only;
    // the rest of checkout (7) and billing (4) to their pipelines; other
    // matches no route (2, the default).
    let sent = |e: &str| agent.metric("otelcol_exporter_sent_spans_total", &[("exporter", e)]);
    let all_sent = || sent("file/health") + sent("file/checkout") + sent("file/billing") + sent("file/other");
    assert!(wait_until("the routed spans", Duration::from_secs(15), || all_sent() == 14.0), "{}", agent.log());
    assert_eq!(sent("file/health"), 1.0);
    assert_eq!(sent("file/checkout"), 7.0);
    assert_eq!(sent("file/billing"), 4.0);
    assert_eq!(sent("file/other"), 2.0);
    // Each file holds its service's spans only.
    let text = |name: &str| std::fs::read_to_string(file(name)).unwrap_or_default();
    assert!(text("billing").contains("\"billing\"") && !text("billing").contains("\"checkout\""));
    assert!(text("other").contains("\"other\"") && !text("other").contains("\"billing\""));
    assert!(text("health").contains("\"health\"") && !text("health").contains("\"op\""));

    let routed = |route: &str| {
        agent.metric(
            "sluice_connector_routing_routed_items_total",
            &[("connector", "routing"), ("otel_signal", "traces"), ("route", route)],
        )
    };
    assert_eq!((routed("0"), routed("1"), routed("2"), routed("default")), (1.0, 7.0, 4.0, 2.0));
    assert_eq!(agent.metric("sluice_connector_routing_unrouted_items_total", &[]), 0.0);
    assert_eq!(agent.metric("sluice_connector_routing_errors_total", &[]), 0.0);
    assert_eq!(
        agent.metric("otelcol_connector_incoming_items_total", &[("connector", "routing"), ("otel_signal", "traces")]),
        14.0
    );
    assert_eq!(agent.metric("otelcol_connector_dropped_items_total", &[]), 0.0);
    agent.stop();
}

/// Three server spans of `checkout` named `op`, lasting 1, 4 and 4 ms; the
/// first has two `exception` events of type IOError, the second one of type
/// Timeout. Prints each span's trace and span ID (hex) as JSON.
const SEND_EVENTS: &str = r#"
import json, sys, time
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind

provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("e2e-events")
start = time.time_ns()
ids = []
for ms, events in [(1, ["IOError", "IOError"]), (4, ["Timeout"]), (4, [])]:
    span = tracer.start_span("op", kind=SpanKind.SERVER, start_time=start)
    for e in events:
        span.add_event("exception", {"exception.type": e})
    ctx = span.get_span_context()
    ids.append(["%032x" % ctx.trace_id, "%016x" % ctx.span_id])
    span.end(end_time=start + ms * 1_000_000)
provider.shutdown()
print(json.dumps(ids))
"#;

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn python_sdk_spans_give_exemplars_event_counts_and_an_exponential_histogram() {
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point::Value};

    let py = python();
    let dir = temp_dir();
    let ports = Ports::pick();
    let out = dir.path().join("metrics.jsonl");
    let exporters = format!("  file:\n    path: {}\n    flush_interval: 100ms\n", out.display());
    let connectors = "  spanmetrics:
    metrics_flush_interval: 1s
    histogram:
      exponential:
        max_size: 160
    exemplars:
      enabled: true
      max_per_data_point: 2
    events:
      enabled: true
      dimensions:
        - name: exception.type
";
    let pipelines = [
        pipeline("traces", &["otlp"], &[], &["spanmetrics"], &[]),
        pipeline("metrics", &["spanmetrics"], &[], &["file"], &[]),
    ]
    .concat();
    let config = config_with(
        ports,
        Sections { exporters: &exporters, connectors, pipelines: &pipelines, ..Sections::default() },
    );
    let agent = Agent::start(dir.path(), &config, ports);

    let script = dir.path().join("send_events.py");
    std::fs::write(&script, SEND_EVENTS).unwrap();
    let sent = std::process::Command::new(&py).arg(&script).arg(agent.grpc_endpoint()).output().unwrap();
    assert!(sent.status.success(), "{}", String::from_utf8_lossy(&sent.stderr));
    let ids: Vec<[String; 2]> = serde_json::from_slice(&sent.stdout).unwrap();

    // The first flush after the spans arrived: counts and this interval's exemplars.
    let first = || -> Option<ExportMetricsServiceRequest> {
        let text = std::fs::read_to_string(&out).ok()?;
        text.lines().find_map(|l| serde_json::from_str(l).ok())
    };
    assert!(
        wait_until("a spanmetrics flush in the file", Duration::from_secs(15), || first().is_some()),
        "{}",
        agent.log()
    );
    let req = first().unwrap();
    let metrics = &req.resource_metrics[0].scope_metrics[0].metrics;
    let names: Vec<&str> = metrics.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["traces.span.metrics.calls", "traces.span.metrics.duration", "traces.span.metrics.events"]);

    // Calls: one series of 3 spans; exemplars of the first two (the limit), the SDK's IDs.
    let Some(Data::Sum(calls)) = &metrics[0].data else { panic!("calls: {:?}", metrics[0]) };
    assert_eq!(calls.data_points.len(), 1);
    assert_eq!(calls.data_points[0].value, Some(Value::AsInt(3)));
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    let exemplars: Vec<[String; 2]> =
        calls.data_points[0].exemplars.iter().map(|e| [hex(&e.trace_id), hex(&e.span_id)]).collect();
    assert_eq!(exemplars, ids[..2]);
    let values: Vec<f64> = calls.data_points[0]
        .exemplars
        .iter()
        .map(|e| match e.value {
            Some(opentelemetry_proto::tonic::metrics::v1::exemplar::Value::AsDouble(v)) => v,
            _ => f64::NAN,
        })
        .collect();
    assert_eq!(values, [1.0, 4.0], "each exemplar carries its span's duration in ms");

    // Exponential histogram: 1 ms and 4 ms are -1 and (2 << 20) - 1 at scale 20,
    // 2^21 + 1 buckets apart; 14 halvings bring them under 160: scale 6,
    // buckets -1 and (2 << 6) - 1 = 127, so offset -1 and 129 counters.
    let Some(Data::ExponentialHistogram(h)) = &metrics[1].data else { panic!("duration: {:?}", metrics[1]) };
    let p = &h.data_points[0];
    assert_eq!((p.count, p.sum, p.min, p.max, p.scale, p.zero_count), (3, Some(9.0), Some(1.0), Some(4.0), 6, 0));
    let pos = p.positive.as_ref().unwrap();
    let mut want = vec![0u64; 129];
    want[0] = 1;
    want[128] = 2;
    assert_eq!((pos.offset, &pos.bucket_counts), (-1, &want));

    // Events: IOError twice (one span), Timeout once.
    let Some(Data::Sum(events)) = &metrics[2].data else { panic!("events: {:?}", metrics[2]) };
    let by_type: Vec<(String, Option<Value>)> = events
        .data_points
        .iter()
        .map(|p| {
            let ty = p.attributes.iter().find(|kv| kv.key == "exception.type").map(|kv| format!("{:?}", kv.value));
            (ty.unwrap_or_default(), p.value)
        })
        .collect();
    assert_eq!(by_type.len(), 2, "{by_type:?}");
    assert!(by_type[0].0.contains("IOError") && by_type[0].1 == Some(Value::AsInt(2)), "{by_type:?}");
    assert!(by_type[1].0.contains("Timeout") && by_type[1].1 == Some(Value::AsInt(1)), "{by_type:?}");
    assert_eq!(agent.metric("sluice_connector_spanmetrics_dropped_exemplars_total", &[]), 1.0);
    agent.stop();
}
