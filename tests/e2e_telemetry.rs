//! sluice's own /metrics: valid Prometheus exposition (`promtool check
//! metrics`) whose Collector-named counters agree with what a real client sent.

mod common;

use common::*;
use std::time::Duration;

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, promtool): bash .ci/run"]
fn metrics_endpoint_passes_promtool_and_counts_spans() {
    let py = python();
    let promtool = promtool();
    let dir = temp_dir();
    let (recv, agent) = agent_to_reference(&py, dir.path(), FAST_BATCH, &["traces"], &["batch"], &[]);

    send_python(
        &py,
        &[
            "--signal",
            "traces",
            "--protocol",
            "grpc",
            "--endpoint",
            &agent.grpc_endpoint(),
            "--count",
            "45",
            "--batch-size",
            "10",
        ],
    );
    assert!(recv.wait_items("traces", 45, Duration::from_secs(15)), "sluice log:\n{}", agent.log());
    assert!(
        wait_until("exporter sent_spans to reach 45", Duration::from_secs(5), || {
            agent.metric("otelcol_exporter_sent_spans_total", &[]) >= 45.0
        }),
        "{}",
        agent.metrics()
    );

    let text = agent.metrics();
    promtool_check(&promtool, &text);
    assert_eq!(metric_value(&text, "otelcol_receiver_accepted_spans_total", &[]), Some(45.0), "{text}");
    assert_eq!(metric_value(&text, "otelcol_receiver_refused_spans_total", &[]).unwrap_or(0.0), 0.0, "{text}");
    assert_eq!(metric_value(&text, "otelcol_exporter_sent_spans_total", &[]), Some(45.0), "{text}");
    agent.stop();
}

/// The parser the tests rely on, checked on its own (runs without peers).
#[test]
fn metric_value_parses_prometheus_text() {
    let text = "# HELP x_total Things.\n# TYPE x_total counter\n\
                x_total{receiver=\"otlp\",transport=\"grpc\"} 3\n\
                x_total{receiver=\"otlp\",transport=\"http\"} 4\n\
                y{a=\"q\\\"uote\"} 1.5\nz 7\n";
    assert_eq!(metric_value(text, "x_total", &[]), Some(7.0));
    assert_eq!(metric_value(text, "x_total", &[("transport", "http")]), Some(4.0));
    assert_eq!(metric_value(text, "y", &[("a", "q\"uote")]), Some(1.5));
    assert_eq!(metric_value(text, "z", &[]), Some(7.0));
    assert_eq!(metric_value(text, "missing", &[]), None);
}
