//! The `prometheusremotewrite` and `prometheus` exporters against a real
//! Prometheus (2.42): what the OpenTelemetry Python SDK records arrives under
//! the Collector's names, labels and values, whether pushed (remote write)
//! or scraped; and a real 400 (a sample older than the TSDB head accepts) is
//! a counted permanent failure after which sluice keeps exporting.

mod common;

use common::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Prometheus, and sluice with otlp → batch → prometheusremotewrite to it.
fn setup(prom_bin: &Path, dir: &Path) -> (PrometheusServer, Agent) {
    let prom = PrometheusServer::start(prom_bin, dir, "[]");
    let ports = Ports::pick();
    let exporters = format!(
        "  prometheusremotewrite:\n    endpoint: {}\n    timeout: 10s\n    external_labels:\n      cluster: e2e\n{FAST_RETRY}\n",
        prom.write_url()
    );
    let config = agent_config(ports, FAST_BATCH, &exporters, &["metrics"], &["batch"], &["prometheusremotewrite"], &[]);
    let agent = Agent::start(dir, &config, ports);
    (prom, agent)
}

const EXPORTER: (&str, &str) = ("exporter", "prometheusremotewrite");

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, prometheus): bash .ci/run"]
fn python_sdk_metrics_arrive_in_prometheus_with_collector_names() {
    let py = python();
    let prom_bin = prometheus();
    let dir = temp_dir();
    let (prom, agent) = setup(&prom_bin, dir.path());

    let args = ["--signal", "metrics", "--protocol", "grpc", "--endpoint", &agent.grpc_endpoint(), "--count", "3"];
    send_python(&py, &args);

    // Counter: sum over k in 0..=i of (k+1), for i = 2.
    let requests = r#"e2e_requests_total{route="/r/2"}"#;
    let got = prom.wait_value(requests, Duration::from_secs(20));
    assert_eq!(got, Some(6.0), "sluice log:\n{}", agent.log());
    let (labels, _) = prom.query(requests).remove(0);
    let labels: Vec<(String, String)> = labels.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())).collect();
    let want: Vec<(String, String)> = [
        ("__name__", "e2e_requests_total"),
        ("cluster", "e2e"),
        ("instance", "instance-1"),
        ("job", "sluice-e2e-python"),
        ("method", "POST"),
        ("otel_scope_name", "sluice.e2e"),
        ("otel_scope_version", "1.2.3"),
        ("route", "/r/2"),
        ("shard", "2"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels, want, "exact labels of the counter series");

    // The others, per route i: counter (i+1)(i+2)/2; up-down counter i+1;
    // histogram of 1.5(k+1)+i for k in 0..=i; gauge 20.5+i.
    let checks: &[(&str, f64)] = &[
        (r#"e2e_requests_total{route="/r/0",method="POST",shard="0"}"#, 1.0),
        (r#"e2e_requests_total{route="/r/1",method="GET",shard="1"}"#, 3.0),
        (r#"e2e_inflight{route="/r/2"}"#, 3.0),
        (r#"e2e_inflight{route="/r/0"}"#, 1.0),
        (r#"e2e_temperature_celsius{route="/r/1"}"#, 21.5),
        (r#"e2e_latency_milliseconds_count{route="/r/2"}"#, 3.0),
        (r#"e2e_latency_milliseconds_sum{route="/r/2"}"#, 15.0),
        (r#"e2e_latency_milliseconds_bucket{route="/r/2",le="0"}"#, 0.0),
        // 3.5, 5 and 6.5: bounds are inclusive.
        (r#"e2e_latency_milliseconds_bucket{route="/r/2",le="5"}"#, 2.0),
        (r#"e2e_latency_milliseconds_bucket{route="/r/2",le="10"}"#, 3.0),
        (r#"e2e_latency_milliseconds_bucket{route="/r/2",le="+Inf"}"#, 3.0),
        (r#"e2e_latency_milliseconds_sum{route="/r/1"}"#, 6.5),
    ];
    for (q, want) in checks {
        assert_eq!(prom.wait_value(q, Duration::from_secs(5)), Some(*want), "{q}");
    }
    // No OTLP-style or unsuffixed names leak through.
    assert!(prom.query(r#"{__name__=~"e2e_requests|e2e_latency|e2e_temperature"}"#).is_empty());

    // target_info: one series for the SDK's resource, its attributes as labels.
    let info = prom.query(r#"target_info{job="sluice-e2e-python"}"#);
    assert_eq!(info.len(), 1, "{info:?}");
    let (labels, value) = &info[0];
    assert_eq!(*value, 1.0);
    for (k, v) in [
        ("instance", "instance-1"),
        ("deployment_environment", "e2e"),
        ("host_cpu_count", "2"),
        ("telemetry_sdk_language", "python"),
        ("cluster", "e2e"),
    ] {
        assert_eq!(labels.get(k).and_then(|v| v.as_str()), Some(v), "target_info {k}: {labels:?}");
    }
    assert!(!labels.contains_key("service_name"), "service.name is job, not a label: {labels:?}");

    // sluice's own count agrees: 3 routes x 4 instruments.
    assert!(
        wait_until("sent_metric_points to reach 12", Duration::from_secs(5), || {
            agent.metric("otelcol_exporter_sent_metric_points_total", &[EXPORTER]) >= 12.0
        }),
        "{}",
        agent.metrics()
    );
    assert_eq!(agent.metric("otelcol_exporter_send_failed_metric_points_total", &[EXPORTER]), 0.0);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, prometheus): bash .ci/run"]
fn prometheus_400_is_a_counted_permanent_failure_and_sluice_keeps_serving() {
    let py = python();
    let prom_bin = prometheus();
    let dir = temp_dir();
    let (prom, agent) = setup(&prom_bin, dir.path());
    let send_gauge = |name: &str, value: &str, age: &str| {
        let o = Command::new(&py)
            .arg(peers_dir().join("send_gauge.py"))
            .args(["--endpoint", &agent.http_endpoint(), "--name", name, "--value", value, "--age-seconds", age])
            .output()
            .expect("run send_gauge.py");
        assert!(o.status.success(), "send_gauge.py: {}", String::from_utf8_lossy(&o.stderr));
    };

    // An empty head takes any timestamp, so give it a recent sample first.
    send_gauge("e2e.before", "7", "0");
    assert_eq!(prom.wait_value(r#"e2e_before{job="sluice-e2e-old"}"#, Duration::from_secs(15)), Some(7.0));

    // Three hours old: behind the head's window, so Prometheus answers 400 "out of bounds".
    send_gauge("e2e.old", "1", "10800");
    assert!(
        wait_until("the 400 to be counted", Duration::from_secs(15), || {
            agent.metric("otelcol_exporter_send_failed_metric_points_total", &[EXPORTER]) >= 1.0
        }),
        "{}\nlog:\n{}",
        agent.metrics(),
        agent.log()
    );
    assert_eq!(agent.metric("sluice_exporter_prometheus_rejected_requests_total", &[EXPORTER]), 1.0);
    assert_eq!(agent.metric("sluice_exporter_retries_total", &[EXPORTER]), 0.0, "a 400 is not retried");
    let log = agent.log();
    assert!(log.contains("out of bounds"), "Prometheus's message is in the log:\n{log}");
    assert!(prom.query("e2e_old").is_empty());

    // The exporter still works.
    send_gauge("e2e.fresh", "42", "0");
    assert_eq!(prom.wait_value(r#"e2e_fresh{job="sluice-e2e-old"}"#, Duration::from_secs(15)), Some(42.0));
    assert!(
        wait_until("the fresh point to be counted as sent", Duration::from_secs(5), || {
            agent.metric("otelcol_exporter_sent_metric_points_total", &[EXPORTER]) >= 2.0
        }),
        "{}",
        agent.metrics()
    );
    assert_eq!(agent.metric("otelcol_exporter_send_failed_metric_points_total", &[EXPORTER]), 1.0);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, prometheus, promtool): bash .ci/run"]
fn prometheus_scrapes_the_python_sdk_metrics_from_sluice() {
    let py = python();
    let prom_bin = prometheus();
    let promtool = promtool();
    let dir = temp_dir();
    let page = format!("127.0.0.1:{}", free_port());
    let prom = PrometheusServer::scraping(&prom_bin, dir.path(), &page);
    let ports = Ports::pick();
    let exporters = format!("  prometheus:\n    endpoint: {page}\n    const_labels:\n      cluster: e2e\n");
    let config = agent_config(ports, FAST_BATCH, &exporters, &["metrics"], &["batch"], &["prometheus"], &[]);
    let agent = Agent::start(dir.path(), &config, ports);

    let args = ["--signal", "metrics", "--protocol", "http", "--endpoint", &agent.http_endpoint(), "--count", "3"];
    send_python(&py, &args);

    let q = r#"e2e_requests_total{route="/r/2",job="sluice-e2e-python",instance="instance-1",cluster="e2e"}"#;
    assert_eq!(prom.wait_value(q, Duration::from_secs(20)), Some(6.0), "sluice log:\n{}", agent.log());
    let checks: &[(&str, f64)] = &[
        (r#"e2e_inflight{route="/r/1",method="GET",shard="1"}"#, 2.0),
        (r#"e2e_temperature_celsius{route="/r/0"}"#, 20.5),
        (r#"e2e_latency_milliseconds_bucket{route="/r/2",le="5"}"#, 2.0),
        (r#"e2e_latency_milliseconds_bucket{route="/r/2",le="+Inf"}"#, 3.0),
        (r#"e2e_latency_milliseconds_sum{route="/r/2"}"#, 15.0),
        (r#"e2e_latency_milliseconds_count{route="/r/2"}"#, 3.0),
        (r#"target_info{job="sluice-e2e-python",deployment_environment="e2e",host_cpu_count="2"}"#, 1.0),
        // Prometheus's own view of the target: the page scraped fine.
        (r#"up{job="sluice"}"#, 1.0),
    ];
    for (q, want) in checks {
        assert_eq!(prom.wait_value(q, Duration::from_secs(10)), Some(*want), "{q}");
    }

    // The page itself parses for promtool, whose only lint is the one the
    // specification decides against: `milliseconds` is kept, not converted to seconds.
    let (status, text) = http_get(&page, "/metrics").unwrap();
    assert_eq!(status, 200);
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let o = child.wait_with_output().unwrap();
    let lint = String::from_utf8_lossy(&o.stderr).to_string() + &String::from_utf8_lossy(&o.stdout);
    let other: Vec<&str> =
        lint.lines().filter(|l| !l.trim().is_empty() && !l.contains("use base unit \"seconds\"")).collect();
    assert!(other.is_empty() && o.status.code() != Some(1), "promtool check metrics: {lint}\n{text}");
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, prometheus): bash .ci/run"]
fn python_sdk_delta_is_refused_by_default_and_summed_when_converting() {
    let py = python();
    let prom_bin = prometheus();
    let dir = temp_dir();
    let prom = PrometheusServer::start(&prom_bin, dir.path(), "[]");
    let ports = Ports::pick();
    let url = prom.write_url();
    let exporters = format!(
        "  prometheusremotewrite/plain:\n    endpoint: {url}\n    external_labels: {{mode: plain}}\n{FAST_RETRY}\n\
         \x20 prometheusremotewrite/delta:\n    endpoint: {url}\n    external_labels: {{mode: delta}}\n    \
         delta_to_cumulative: {{enabled: true}}\n{FAST_RETRY}\n"
    );
    let both = ["prometheusremotewrite/plain", "prometheusremotewrite/delta"];
    let config = agent_config(ports, FAST_BATCH, &exporters, &["metrics"], &["batch"], &both, &[]);
    let agent = Agent::start(dir.path(), &config, ports);
    let args = [
        "--signal",
        "metrics",
        "--protocol",
        "grpc",
        "--endpoint",
        &agent.grpc_endpoint(),
        "--count",
        "3",
        "--temporality",
        "delta",
    ];
    let value = |q: &str| prom.query(q).first().map(|r| r.1);
    let wait_for = |q: &str, want: f64| {
        let ok = wait_until(&format!("{q} == {want}"), Duration::from_secs(20), || value(q) == Some(want));
        assert!(ok, "{q}: {:?}\nsluice log:\n{}", value(q), agent.log());
    };

    // Two SDK processes, each one delta of 6 for route /r/2: the converter sums them.
    send_python(&py, &args);
    wait_for(r#"e2e_requests_total{mode="delta",route="/r/2"}"#, 6.0);
    send_python(&py, &args);
    wait_for(r#"e2e_requests_total{mode="delta",route="/r/2"}"#, 12.0);
    wait_for(r#"e2e_latency_milliseconds_count{mode="delta",route="/r/2"}"#, 6.0);
    wait_for(r#"e2e_latency_milliseconds_bucket{mode="delta",route="/r/2",le="5"}"#, 4.0);

    // Without conversion the counter and histogram points are refused and
    // counted; the up-down counter and gauge (not delta) still arrive.
    wait_for(r#"e2e_inflight{mode="plain",route="/r/2"}"#, 3.0);
    assert!(prom.query(r#"{mode="plain",__name__=~"e2e_requests.*|e2e_latency.*"}"#).is_empty());
    let plain = ("exporter", "prometheusremotewrite/plain");
    let reason = ("reason", "delta_temporality");
    assert!(
        wait_until("12 delta points counted", Duration::from_secs(5), || {
            agent.metric("sluice_exporter_prometheus_dropped_points_total", &[plain, reason]) == 12.0
        }),
        "{}",
        agent.metrics()
    );
    assert_eq!(agent.metric("otelcol_exporter_send_failed_metric_points_total", &[plain]), 12.0);
    let delta = ("exporter", "prometheusremotewrite/delta");
    assert_eq!(agent.metric("sluice_exporter_prometheus_dropped_points_total", &[delta]), 0.0);
    assert_eq!(agent.metric("sluice_exporter_prometheus_delta_series", &[delta]), 6.0, "3 counters + 3 histograms");
    agent.stop();
}
