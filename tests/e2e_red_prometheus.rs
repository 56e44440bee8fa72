//! `spanmetrics` and `slo` into a real Prometheus: the OpenTelemetry Python
//! SDK sends known traffic to sluice, whose `prometheus` exporter page is
//! scraped every second by Prometheus (2.42, started by the test); what
//! Prometheus stores, read back through its query API, is what the
//! Collector's spanmetrics and Sloth's recording rules would have given.
//!
//! The traffic: 1000 server spans `POST /checkout` of service `checkout`.
//! Span `i` is an error when `i % 10 == 0` (100 spans) and lasts
//! `[1, 10, 75, 300][i % 4]` milliseconds (start and end given to the SDK).
//! An error has an even `i`, so `i % 4` is 0 (i % 20 == 0: 50 spans) or 2
//! (50 spans); each residue has 250 spans in all. So:
//!
//! | residue | duration | unset | error |
//! |---------|----------|-------|-------|
//! | 0       | 1 ms     | 200   | 50    |
//! | 1       | 10 ms    | 250   | 0     |
//! | 2       | 75 ms    | 200   | 50    |
//! | 3       | 300 ms   | 250   | 0     |
//!
//! The Collector's default buckets (2, 4, 6, 8, 10, 50, 100, 200, 400, …
//! ms) are inclusive upper bounds and cumulative in Prometheus: unset
//! `le=2..8`: 200, `le=10`: 200 + 250 = 450 (10 ms sits on the bound),
//! `le=50`: 450, `le=100`: 650, `le=200`: 650, `le=400` and above: 900;
//! error `le=2..50`: 50, `le=100` and above: 100. Sums: unset
//! 200·1 + 250·10 + 200·75 + 250·300 = 92 700 ms, error 50·1 + 50·75 = 3 800 ms.
//!
//! The SLOs: `availability` (bad = status ERROR, objective 99) sees an
//! error ratio of 100 / 1000 = 0.1 in every window; its budget is
//! (100 − 99) / 100 = 0.01, so both burn rates are 0.1 / 0.01 = 10 and the
//! period's budget remaining 1 − 10 = −9. `latency` (bad = longer than
//! 100 ms, objective 95) sees the 250 spans of 300 ms: 250 / 1000 = 0.25,
//! budget 0.05, burn rate 0.25 / 0.05 = 5, remaining 1 − 5 = −4.

mod common;

use common::*;
use std::time::Duration;

const SEND_SPANS: &str = r#"
import sys
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.trace import SpanKind, Status, StatusCode
import time

provider = TracerProvider(resource=Resource.create({"service.name": "checkout"}))
provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=sys.argv[1], insecure=True),
                                               max_queue_size=4096))
tracer = provider.get_tracer("e2e-red")
durations_ms = [1, 10, 75, 300]
start = time.time_ns()
for i in range(1000):
    span = tracer.start_span("POST /checkout", kind=SpanKind.SERVER, start_time=start)
    if i % 10 == 0:
        span.set_status(Status(StatusCode.ERROR))
    span.end(end_time=start + durations_ms[i % 4] * 1_000_000)
provider.shutdown()
"#;

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, prometheus): bash .ci/run"]
fn python_sdk_spans_give_red_and_slo_series_in_a_real_prometheus() {
    let py = python();
    let prom_bin = prometheus();
    let dir = temp_dir();
    let page = format!("127.0.0.1:{}", free_port());
    let prom = PrometheusServer::scraping(&prom_bin, dir.path(), &page);

    let ports = Ports::pick();
    let exporters = format!("  prometheus:\n    endpoint: {page}\n");
    let connectors = "  spanmetrics:
    metrics_flush_interval: 1s
  slo:
    metrics_flush_interval: 1s
    slos:
      - name: availability
        service: checkout
        objective: 99
      - name: latency
        service: checkout
        objective: 95
        bad:
          status_codes: []
          latency_above: 100ms
";
    let pipelines = [
        pipeline("traces", &["otlp"], &[], &["spanmetrics", "slo"], &[]),
        pipeline("metrics", &["spanmetrics", "slo"], &[], &["prometheus"], &[]),
    ]
    .concat();
    let config = config_with(
        ports,
        Sections { exporters: &exporters, connectors, pipelines: &pipelines, ..Sections::default() },
    );
    let agent = Agent::start(dir.path(), &config, ports);

    let script = dir.path().join("send_spans.py");
    std::fs::write(&script, SEND_SPANS).unwrap();
    let out = std::process::Command::new(&py).arg(&script).arg(agent.grpc_endpoint()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // The last scrape holds all 1000 spans once the unset calls reach 900.
    let series = r#"service_name="checkout",span_name="POST /checkout",span_kind="SPAN_KIND_SERVER""#;
    let calls = |status: &str| format!(r#"traces_span_metrics_calls_total{{{series},status_code="{status}"}}"#);
    let all_in = wait_until("900 unset calls in prometheus", Duration::from_secs(30), || {
        prom.query(&calls("STATUS_CODE_UNSET")).first().map(|r| r.1) == Some(900.0)
    });
    assert!(all_in, "{:?}\nsluice log:\n{}", prom.query("traces_span_metrics_calls_total"), agent.log());
    let value = |q: &str| prom.wait_value(q, Duration::from_secs(10));
    assert_eq!(value(&calls("STATUS_CODE_ERROR")), Some(100.0));
    assert_eq!(value(&format!("sum(traces_span_metrics_calls_total{{{series}}})")), Some(1000.0));
    // Exactly these two series: no status OK, no overflow series.
    assert_eq!(prom.query("traces_span_metrics_calls_total").len(), 2);

    // The duration histogram, bucket by bucket (see the module doc).
    let bucket = |status: &str, le: &str| {
        format!(r#"traces_span_metrics_duration_milliseconds_bucket{{{series},status_code="{status}",le="{le}"}}"#)
    };
    let unset = [
        ("2", 200.0),
        ("4", 200.0),
        ("6", 200.0),
        ("8", 200.0),
        ("10", 450.0),
        ("50", 450.0),
        ("100", 650.0),
        ("200", 650.0),
        ("400", 900.0),
        ("800", 900.0),
        ("15000", 900.0),
        ("+Inf", 900.0),
    ];
    for (le, want) in unset {
        assert_eq!(value(&bucket("STATUS_CODE_UNSET", le)), Some(want), "unset le={le}");
    }
    for (le, want) in [("2", 50.0), ("50", 50.0), ("100", 100.0), ("+Inf", 100.0)] {
        assert_eq!(value(&bucket("STATUS_CODE_ERROR", le)), Some(want), "error le={le}");
    }
    // 16 bounds and +Inf, per status.
    let buckets = prom.query(r#"traces_span_metrics_duration_milliseconds_bucket{status_code="STATUS_CODE_UNSET"}"#);
    assert_eq!(buckets.len(), 17, "{buckets:?}");
    let sum =
        |status: &str| format!(r#"traces_span_metrics_duration_milliseconds_sum{{{series},status_code="{status}"}}"#);
    assert_eq!(value(&sum("STATUS_CODE_UNSET")), Some(92_700.0));
    assert_eq!(value(&sum("STATUS_CODE_ERROR")), Some(3_800.0));
    let count =
        |status: &str| format!(r#"traces_span_metrics_duration_milliseconds_count{{{series},status_code="{status}"}}"#);
    assert_eq!(value(&count("STATUS_CODE_ERROR")), Some(100.0));

    // The SLO series, `:` kept in their names, with Sloth's labels.
    let slo = |name: &str, slo: &str, extra: &str| {
        format!(r#"{{__name__="{name}",sloth_id="checkout-{slo}",sloth_service="checkout",sloth_slo="{slo}"{extra}}}"#)
    };
    let wanted = [("availability", 0.1, 0.99, 0.01, 10.0, -9.0), ("latency", 0.25, 0.95, 0.05, 5.0, -4.0)];
    for (name, ratio, objective, budget, burn, remaining) in wanted {
        for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
            let q = slo(&format!("slo:sli_error:ratio_rate{w}"), name, &format!(r#",sloth_window="{w}""#));
            assert_eq!(value(&q), Some(ratio), "{q}");
        }
        assert_eq!(value(&slo("slo:objective:ratio", name, "")), Some(objective), "{name}");
        assert_eq!(value(&slo("slo:error_budget:ratio", name, "")), Some(budget), "{name}");
        assert_eq!(value(&slo("slo:time_period:days", name, "")), Some(30.0), "{name}");
        assert_eq!(value(&slo("slo:current_burn_rate:ratio", name, "")), Some(burn), "{name}");
        assert_eq!(value(&slo("slo:period_burn_rate:ratio", name, "")), Some(burn), "{name}");
        assert_eq!(value(&slo("slo:period_error_budget_remaining:ratio", name, "")), Some(remaining), "{name}");
        assert_eq!(value(&slo("sloth_slo_info", name, "")), Some(1.0), "{name}");
        // The series join as Sloth's alert rules join them: the 1h ratio over the budget.
        let joined = format!(
            "{} / ignoring(sloth_window) {}",
            slo("slo:sli_error:ratio_rate1h", name, ""),
            slo("slo:error_budget:ratio", name, "")
        );
        assert_eq!(value(&joined), Some(burn), "{joined}");
    }
    // No colon was rewritten on the way.
    assert!(prom.query(r#"{__name__=~"slo_.*"}"#).is_empty());
    // Burn rate 10 fires page (1h/5m above 14.4: no; 6h/30m above 6: yes)
    // and ticket (above 3); burn rate 5 fires only the ticket (above 3, not 6).
    let firing = |slo: &str, sev: &str| value(&format!(r#"sluice_slo_alert_firing{{slo="{slo}",severity="{sev}"}}"#));
    assert_eq!((firing("availability", "page"), firing("availability", "ticket")), (Some(1.0), Some(1.0)));
    assert_eq!((firing("latency", "page"), firing("latency", "ticket")), (Some(0.0), Some(1.0)));

    assert_eq!(value(r#"up{job="sluice"}"#), Some(1.0));
    assert_eq!(agent.metric("sluice_connector_spanmetrics_overflow_spans_total", &[]), 0.0);
    assert_eq!(agent.metric("otelcol_connector_dropped_items_total", &[]), 0.0);
    agent.stop();
}
