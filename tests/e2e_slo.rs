//! The `slo` connector end to end: the OpenTelemetry Python SDK sends spans
//! to sluice; the connector's series reach sluice's `prometheus` exporter
//! page under Sloth's names (colons kept), its alert changes reach a `file`
//! exporter as log records, and its counters survive `kill -9` through a
//! `file_storage` extension.
//!
//! The arithmetic: 1000 server spans of `checkout`, every 10th (i % 10 == 0)
//! with status ERROR, give an error ratio of 100 / 1000 = 0.1; objective 99
//! leaves an error budget of (100 - 99) / 100 = 0.01, so the burn rate is
//! 0.1 / 0.01 = 10 and the period's budget remaining 1 - 10 = -9. A burn
//! rate of 10 fires the page (6h and 30m above 6) and the ticket (1d and 2h
//! above 3). After a restart, 1000 more spans without errors make the
//! period's ratio 100 / 2000 = 0.05 (burn rate 5) only if the first 1000
//! were kept.

mod common;

use common::*;
use std::time::Duration;

/// `argv[2]` server spans of `checkout`; every 10th an error when `argv[3]` is "errors".
const SEND_SPANS: &str = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode

provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
tracer = provider.get_tracer("e2e-slo")
for i in range(int(sys.argv[2])):
    span = tracer.start_span("POST /checkout", kind=SpanKind.SERVER)
    if sys.argv[3] == "errors" and i % 10 == 0:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
# A client span and another service's span: not events of the SLO.
tracer.start_span("GET /stock", kind=SpanKind.CLIENT).end()
provider.shutdown()
other = TracerProvider(resource=Resource.create({"service.name": "cart"}))
other.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True)))
s = other.get_tracer("e2e-slo").start_span("GET /cart", kind=SpanKind.SERVER)
s.set_status(Status(StatusCode.ERROR))
s.end()
other.shutdown()
"#;

fn config(ports: &Ports, page: &str, storage: &str, alerts: &str) -> String {
    let exporters =
        format!("  prometheus:\n    endpoint: {page}\n  file:\n    path: {alerts}\n    flush_interval: 100ms\n");
    let connectors = "  slo:
    metrics_flush_interval: 1s
    storage: file_storage
    slos:
      - name: availability
        service: checkout
        objective: 99
";
    let extensions = format!("  file_storage:\n    directory: {storage}\n");
    let pipelines = [
        pipeline("traces", &["otlp"], &[], &["slo"], &[]),
        pipeline("metrics", &["slo"], &[], &["prometheus"], &[]),
        pipeline("logs", &["slo"], &[], &["file"], &[]),
    ]
    .concat();
    config_with(
        *ports,
        Sections {
            exporters: &exporters,
            connectors,
            extensions: &extensions,
            extension_ids: &["file_storage"],
            pipelines: &pipelines,
            ..Sections::default()
        },
    )
}

const SLOTH: [(&str, &str); 3] =
    [("sloth_id", "checkout-availability"), ("sloth_service", "checkout"), ("sloth_slo", "availability")];

fn send(py: &std::path::Path, script: &std::path::Path, agent: &Agent, n: u32, errors: bool) {
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(agent.grpc_endpoint())
        .arg(n.to_string())
        .arg(if errors { "errors" } else { "good" })
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn python_sdk_spans_give_sloth_series_alert_logs_and_survive_kill_9() {
    let py = python();
    let dir = temp_dir();
    let storage = dir.path().join("storage");
    let alerts = dir.path().join("alerts.jsonl");
    let script = dir.path().join("send_spans.py");
    std::fs::write(&script, SEND_SPANS).unwrap();

    let ports = Ports::pick();
    let page = format!("127.0.0.1:{}", free_port());
    let text = config(&ports, &page, &storage.display().to_string(), &alerts.display().to_string());
    let mut agent = Agent::start(dir.path(), &text, ports);
    send(&py, &script, &agent, 1000, true);

    let value = |page: &str, name: &str, extra: &[(&str, &str)]| {
        let (status, text) = http_get(page, "/metrics").ok()?;
        let labels: Vec<(&str, &str)> = SLOTH.iter().copied().chain(extra.iter().copied()).collect();
        (status == 200).then(|| metric_value(&text, name, &labels)).flatten()
    };
    let ready = wait_until("the SLO series on the prometheus page", Duration::from_secs(20), || {
        value(&page, "slo:sli_error:ratio_rate30d", &[("sloth_window", "30d")]) == Some(0.1)
    });
    assert!(ready, "page:\n{:?}\nlog:\n{}", http_get(&page, "/metrics"), agent.log());
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        let name = format!("slo:sli_error:ratio_rate{w}");
        assert_eq!(value(&page, &name, &[("sloth_window", w)]), Some(0.1), "{name}");
    }
    assert_eq!(value(&page, "slo:objective:ratio", &[]), Some(0.99));
    assert_eq!(value(&page, "slo:error_budget:ratio", &[]), Some(0.01));
    assert_eq!(value(&page, "slo:time_period:days", &[]), Some(30.0));
    assert_eq!(value(&page, "slo:current_burn_rate:ratio", &[]), Some(10.0));
    assert_eq!(value(&page, "slo:period_burn_rate:ratio", &[]), Some(10.0));
    assert_eq!(value(&page, "slo:period_error_budget_remaining:ratio", &[]), Some(-9.0));
    assert_eq!(value(&page, "sloth_slo_info", &[("sloth_objective", "99")]), Some(1.0));
    let (_, body) = http_get(&page, "/metrics").unwrap();
    let firing =
        |sev: &str| metric_value(&body, "sluice_slo_alert_firing", &[("slo", "availability"), ("severity", sev)]);
    assert_eq!((firing("page"), firing("ticket")), (Some(1.0), Some(1.0)));
    assert!(!body.contains("slo_sli_error"), "a colon was replaced:\n{body}");

    // One log record per alert that started firing.
    let fired = wait_until("the alert log records", Duration::from_secs(10), || {
        std::fs::read_to_string(&alerts).is_ok_and(|t| t.matches("\"firing\"").count() == 2)
    });
    let logs = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert!(fired, "{logs}\n{}", agent.log());
    assert!(logs.contains("SLO availability of checkout page alert firing"), "{logs}");

    // kill -9: the counters saved at the last flush survive.
    agent.kill9();
    let ports = Ports::pick();
    let page = format!("127.0.0.1:{}", free_port());
    let text = config(&ports, &page, &storage.display().to_string(), &alerts.display().to_string());
    let agent = Agent::start(dir.path(), &text, ports);
    send(&py, &script, &agent, 1000, false);
    let ready = wait_until("the period counters after the restart", Duration::from_secs(20), || {
        value(&page, "slo:sli_error:ratio_rate30d", &[("sloth_window", "30d")]) == Some(0.05)
    });
    assert!(ready, "page:\n{:?}\nlog:\n{}", http_get(&page, "/metrics"), agent.log());
    assert_eq!(value(&page, "slo:period_burn_rate:ratio", &[]), Some(5.0)); // 0.05 / 0.01
                                                                            // The alerts were saved as firing: no second "firing" record after the restart.
    std::thread::sleep(Duration::from_millis(1500));
    let logs = std::fs::read_to_string(&alerts).unwrap_or_default();
    assert_eq!(logs.matches("\"firing\"").count(), 2, "{logs}");
    assert_eq!(agent.metric("sluice_connector_slo_storage_errors_total", &[]), 0.0);
    agent.stop();
}
