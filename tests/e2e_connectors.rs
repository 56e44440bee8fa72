//! Connectors end to end: the OpenTelemetry Python SDK sends spans to
//! sluice; a `count` connector turns them into metrics on a metrics
//! pipeline exported by sluice's `prometheus` exporter, scraped over HTTP;
//! a `forward` connector copies them to a second traces pipeline. The
//! values asserted are counted from what the script sends.

mod common;

use common::*;
use std::time::Duration;

/// 30 spans of service `checkout`: span `i` has route `/a` when `i % 3 == 0`
/// (10 spans) else `/b` (20 spans), and one event when `i % 5 == 0` (6 events).
const SEND_SPANS: &str = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("e2e-connectors")
for i in range(30):
    with tracer.start_as_current_span("op", attributes={"http.route": "/a" if i % 3 == 0 else "/b"}) as span:
        if i % 5 == 0:
            span.add_event("retry")
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
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
      http:
        endpoint: 127.0.0.1:{http}
exporters:
  prometheus:
    endpoint: {page}
  file:
    path: {copy}
connectors:
  count:
    spans:
      e2e.spans.by.route:
        description: spans per route
        attributes:
          - key: http.route
  forward:
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
service:
  extensions: [health_check]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [count, forward]
    traces/copy:
      receivers: [forward]
      exporters: [file]
    metrics/counts:
      receivers: [count]
      exporters: [prometheus]
",
        grpc = ports.grpc,
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
        copy = copy.display(),
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
