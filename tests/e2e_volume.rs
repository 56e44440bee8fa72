//! Volume control end to end with the OpenTelemetry Python SDK: a service
//! emitting high-cardinality metrics through `cardinality_limiter`, and a noisy
//! log stream through `log_rate_limiter`, checked at the reference receiver.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::Duration;

fn int_value(item: &Value) -> i64 {
    item["value"]["int"].as_i64().unwrap_or_else(|| panic!("not an int point: {item}"))
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn cardinality_limiter_bounds_series_and_keeps_totals() {
    let py = python();
    let dir = temp_dir();
    let processors = "  cardinality_limiter:\n    default_limit: 10\n  batch:\n    timeout: 100ms";
    let (recv, agent) = agent_to_reference(
        &py,
        dir.path(),
        processors,
        &["metrics"],
        &["cardinality_limiter", "batch"],
        // Several workers: the pipeline routes each metric to one of them,
        // so the limit still holds exactly.
        &["workers: 4"],
    );
    // 40 routes: 40 series of each of a counter, an up-down counter, a histogram, a gauge.
    let expect = dir.path().join("expect.json");
    send_python(
        &py,
        &[
            "--signal",
            "metrics",
            "--protocol",
            "grpc",
            "--endpoint",
            &agent.grpc_endpoint(),
            "--count",
            "40",
            "--expect-file",
            expect.to_str().unwrap(),
        ],
    );
    assert!(
        wait_until("points exported", Duration::from_secs(10), || agent
            .metric("otelcol_exporter_sent_metric_points_total", &[])
            > 0.0),
        "{}",
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    agent.stop();

    let sent = expected_items(&expect);
    let got = received_items(&recv.out);
    for name in ["e2e.requests", "e2e.inflight", "e2e.latency", "e2e.temperature"] {
        let out: Vec<&Value> = got.iter().filter(|i| i["name"] == name).collect();
        let series: BTreeSet<String> = out.iter().map(|i| i["attributes"].to_string()).collect();
        assert_eq!(series.len(), 11, "{name}: limit 10 + the overflow series");
        let overflow: Vec<&&Value> =
            out.iter().filter(|i| i["attributes"]["otel.metric.overflow"]["bool"] == true).collect();
        assert_eq!(overflow.len(), 1, "{name}: exactly one overflow point expected, got {overflow:?}");
    }
    // Sums add up: the counter's and up-down counter's totals, the histogram's counts.
    for name in ["e2e.requests", "e2e.inflight"] {
        let sum_in: i64 = sent.iter().filter(|i| i["name"] == name).map(int_value).sum();
        let sum_out: i64 = got.iter().filter(|i| i["name"] == name).map(int_value).sum();
        assert_eq!(sum_out, sum_in, "{name}: total changed through the limiter");
    }
    let count = |items: &[Value]| -> u64 {
        items.iter().filter(|i| i["name"] == "e2e.latency").map(|i| i["count"].as_u64().unwrap()).sum()
    };
    assert_eq!(count(&got), count(&sent), "histogram counts changed through the limiter");
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn log_rate_limiter_keeps_errors_and_summarises_what_it_suppressed() {
    let py = python();
    let dir = temp_dir();
    let processors = "  log_rate_limiter:
    key_fields: [resource.service.name, body_template]
    rate: 5
    burst: 5
    exempt_severity: ERROR
    summary_interval: 1s
  batch:
    timeout: 100ms";
    let (recv, agent) =
        agent_to_reference(&py, dir.path(), processors, &["logs"], &["log_rate_limiter", "batch"], &["workers: 4"]);
    // 400 records "log line N: something happened", one in four ERROR.
    send_python(
        &py,
        &["--signal", "logs", "--protocol", "http", "--endpoint", &agent.http_endpoint(), "--count", "400"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    agent.stop();

    let got = received_items(&recv.out);
    let is_summary = |i: &&Value| i["attributes"]["sluice.rate_limit.suppressed"]["int"].is_i64();
    let summaries: Vec<&Value> = got.iter().filter(is_summary).collect();
    let records: Vec<&Value> = got.iter().filter(|i| !is_summary(i)).collect();
    let errors = records.iter().filter(|i| i["severity_text"] == "ERROR").count();
    assert_eq!(errors, 100, "every ERROR record must pass the limiter");
    let kept_other = records.len() - errors;
    assert!((5..=30).contains(&kept_other), "kept {kept_other} non-error records at 5/s with burst 5");
    assert!(!summaries.is_empty(), "no summary record for the suppressed records");
    let suppressed: i64 =
        summaries.iter().map(|s| s["attributes"]["sluice.rate_limit.suppressed"]["int"].as_i64().unwrap()).sum();
    assert_eq!(suppressed as usize + kept_other, 300, "summaries must account for every suppressed record");
    for s in &summaries {
        assert!(s["body"]["string"].as_str().unwrap().contains("suppressed"), "{s}");
        assert!(s["attributes"]["sluice.rate_limit.key"]["string"].as_str().unwrap().contains("log line <*>"), "{s}");
    }
}
