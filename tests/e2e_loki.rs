//! End to end for the `loki` exporter: the OpenTelemetry Python SDK sends
//! logs to sluice (otlp receiver → batch → loki exporter), which pushes them
//! to tests/peers/loki_receiver.py, a reference Loki push receiver that
//! decodes snappy with `cramjam` and `logproto.PushRequest` with
//! `google.protobuf` (or Loki's JSON). No Loki server runs here, so this
//! checks the wire format and Loki's answers as Loki gives them.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The timestamps send_otlp.py gives log record i: BASE + i ms.
const BASE_NS: u64 = 1_700_000_000_000_000_000;
const LEVELS: [&str; 4] = ["debug", "info", "warn", "error"];

/// The Python venv, with cramjam for the receiver.
fn loki_python() -> PathBuf {
    let py = python();
    let ok = Command::new(&py)
        .args(["-c", "import cramjam"])
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        peer_missing("cramjam (in .venv-peers)", ".venv-peers/bin/pip install -r tests/peers/requirements.txt");
    }
    py
}

struct LokiReceiver {
    /// Killed on drop.
    _child: PeerChild,
    port: u16,
    out: PathBuf,
    log_path: PathBuf,
}

impl LokiReceiver {
    fn start(py: &Path, dir: &Path, args: &[&str]) -> LokiReceiver {
        let peer = start_peer(py, dir, "loki_receiver.py", "loki.jsonl", "loki_receiver.log", args);
        let port = peer.port("http=");
        let PeerProcess { child, out, log_path, .. } = peer;
        LokiReceiver { _child: child, port, out, log_path }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn stats(&self) -> Value {
        let (status, body) = http_get(&format!("127.0.0.1:{}", self.port), "/stats").expect("GET /stats");
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn stat(&self, key: &str) -> u64 {
        self.stats()[key].as_u64().unwrap_or(0)
    }

    /// Every push it got, in order.
    fn pushes(&self) -> Vec<Value> {
        received_requests(&self.out)
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

/// sluice with one logs pipeline `otlp → batch → loki`; `extra` is more
/// YAML at the exporter's level.
fn start_agent(dir: &Path, recv: &LokiReceiver, extra: &str) -> Agent {
    let ports = Ports::pick();
    let exporter = format!("  loki:\n    endpoint: {}\n    timeout: 10s\n{FAST_RETRY}\n{extra}", recv.url());
    let config = agent_config(ports, FAST_BATCH, &exporter, &["logs"], &["batch"], &["loki"], &[]);
    Agent::start(dir, &config, ports)
}

fn send_logs(py: &Path, agent: &Agent, count: usize, batch: usize, service: &str) {
    let (count, batch) = (count.to_string(), batch.to_string());
    let endpoint = agent.http_endpoint();
    let args = [
        "--signal",
        "logs",
        "--protocol",
        "http",
        "--endpoint",
        &endpoint,
        "--count",
        &count,
        "--batch-size",
        &batch,
        "--service-name",
        service,
    ];
    send_python(py, &args);
}

/// The index send_otlp.py wrote into `log line {i}: something happened`.
fn line_index(line: &str) -> u64 {
    line.strip_prefix("log line ")
        .and_then(|r| r.split(':').next())
        .and_then(|i| i.parse().ok())
        .unwrap_or_else(|| panic!("unexpected line {line:?}"))
}

/// Checks every accepted push against send_otlp.py's workload of `count`
/// records and returns the distinct stream label strings.
fn check_workload(recv: &LokiReceiver, count: u64, service: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut streams = BTreeSet::new();
    for push in recv.pushes().iter().filter(|p| p["status"] == 204) {
        assert_eq!(push["tenant"], "team-e2e", "X-Scope-OrgID");
        for stream in push["streams"].as_array().unwrap() {
            let labels = &stream["label_map"];
            assert_eq!(labels["service_name"], service, "{stream}");
            assert_eq!(labels["service_instance_id"], "instance-1", "{stream}");
            assert_eq!(labels["deployment_environment"], "e2e", "{stream}");
            let level = labels["level"].as_str().unwrap();
            streams.insert(stream["labels"].as_str().unwrap().to_string());
            let mut last = 0;
            for entry in stream["entries"].as_array().unwrap() {
                let line = entry["line"].as_str().unwrap();
                let i = line_index(line);
                let ts = entry["ts"].as_u64().unwrap();
                assert_eq!(ts, BASE_NS + i * 1_000_000, "{line}");
                assert!(ts >= last, "entries of a stream out of order: {stream}");
                last = ts;
                assert_eq!(level, LEVELS[i as usize % 4], "{line}");
                let sm = &entry["structured_metadata"];
                assert_eq!(sm["item_index"], i.to_string(), "{entry}");
                assert_eq!(sm["item_label"], format!("label-{}", i % 7), "{entry}");
                assert_eq!(sm["item_tags"], format!(r#"["t{}","common"]"#, i % 3), "{entry}");
                assert_eq!(sm["host_cpu_count"], "2", "{entry}");
                assert_eq!(sm["scope_name"], "sluice.e2e", "{entry}");
                for (id, len) in [("trace_id", 32), ("span_id", 16)] {
                    let v = sm[id].as_str().unwrap_or_else(|| panic!("no {id}: {entry}"));
                    assert!(v.len() == len && v.bytes().all(|b| b.is_ascii_hexdigit()), "{id}: {v}");
                }
                assert!(seen.insert(i), "record {i} arrived twice");
            }
        }
    }
    assert_eq!(seen.len() as u64, count, "records that arrived: {seen:?}");
    streams
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK with cramjam): bash .ci/run"]
fn python_logs_to_loki_snappy_protobuf() {
    let py = loki_python();
    let dir = temp_dir();
    let recv = LokiReceiver::start(&py, dir.path(), &["--quiet"]);
    let agent = start_agent(dir.path(), &recv, "    tenant_id: team-e2e");
    send_logs(&py, &agent, 25, 10, "e2e-loki");
    assert!(
        wait_until("25 entries at the Loki receiver", Duration::from_secs(15), || recv.stat("entries_accepted") >= 25),
        "got {}\nsluice log:\n{}\nreceiver log:\n{}",
        recv.stats(),
        agent.log(),
        recv.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(recv.stat("entries_accepted"), 25);
    let pushes = recv.pushes();
    assert!(pushes.iter().all(|p| p["encoding"] == "protobuf" && p["gzip"] == false), "{pushes:?}");
    let streams = check_workload(&recv, 25, "e2e-loki");
    // One stream per level: the labels differ only there.
    let levels: BTreeSet<String> =
        streams.iter().map(|s| s.split("level=\"").nth(1).unwrap().split('"').next().unwrap().to_string()).collect();
    assert_eq!(levels, LEVELS.iter().map(|s| s.to_string()).collect());
    assert_eq!(agent.metric("otelcol_exporter_sent_log_records_total", &[("exporter", "loki")]), 25.0);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK with cramjam): bash .ci/run"]
fn loki_429_is_retried_after_retry_after_and_arrives_once() {
    let py = loki_python();
    let dir = temp_dir();
    let recv = LokiReceiver::start(
        &py,
        dir.path(),
        &["--quiet", "--fail-first", "1", "--fail-status", "429", "--retry-after", "1"],
    );
    let agent = start_agent(dir.path(), &recv, "    tenant_id: team-e2e");
    send_logs(&py, &agent, 8, 8, "e2e-loki-429");
    assert!(
        wait_until("8 entries after a 429", Duration::from_secs(15), || recv.stat("entries_accepted") >= 8),
        "got {}\nsluice log:\n{}",
        recv.stats(),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    let pushes = recv.pushes();
    assert_eq!(pushes[0]["status"], 429);
    assert_eq!(recv.stat("requests"), recv.stat("requests_accepted") + 1, "{pushes:?}");
    check_workload(&recv, 8, "e2e-loki-429");
    let rejected =
        |reason| agent.metric("sluice_exporter_loki_rejected_total", &[("exporter", "loki"), ("reason", reason)]);
    assert_eq!(rejected("rate_limited"), 1.0);
    assert!(agent.metric("sluice_exporter_retries_total", &[("exporter", "loki")]) >= 1.0);
    assert_eq!(agent.metric("otelcol_exporter_send_failed_log_records_total", &[("exporter", "loki")]), 0.0);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK with cramjam): bash .ci/run"]
fn loki_400_is_counted_by_reason_and_not_retried() {
    let py = loki_python();
    let dir = temp_dir();
    let message = "entry for stream '{service_name=\"e2e\"}' has timestamp too old: 2023-11-14T22:13:20Z, \
                   oldest acceptable timestamp is: 2026-11-14T00:00:00Z";
    let recv = LokiReceiver::start(
        &py,
        dir.path(),
        &["--quiet", "--fail-first", "1", "--fail-status", "400", "--fail-message", message],
    );
    let agent = start_agent(dir.path(), &recv, "    tenant_id: team-e2e");
    let failed = || agent.metric("otelcol_exporter_send_failed_log_records_total", &[("exporter", "loki")]);
    send_logs(&py, &agent, 5, 5, "e2e-loki-400");
    assert!(
        wait_until("the 400 to be counted as failed", Duration::from_secs(15), || failed() >= 5.0),
        "sluice log:\n{}",
        agent.log()
    );
    // Time for a retry, were there one.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(recv.stat("requests"), 1, "a 400 must not be retried: {:?}", recv.pushes());
    assert_eq!(failed(), 5.0);
    let rejected =
        |reason| agent.metric("sluice_exporter_loki_rejected_total", &[("exporter", "loki"), ("reason", reason)]);
    assert_eq!(rejected("too_old"), 1.0);
    assert_eq!(rejected("other"), 0.0);
    assert!(agent.log().contains("timestamp too old"), "Loki's message is logged:\n{}", agent.log());

    // The next batch goes through.
    send_logs(&py, &agent, 5, 5, "e2e-loki-400");
    assert!(wait_until("5 entries after the 400", Duration::from_secs(15), || recv.stat("entries_accepted") >= 5));
    check_workload(&recv, 5, "e2e-loki-400");
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK with cramjam): bash .ci/run"]
fn loki_json_encoding_with_gzip_and_json_lines() {
    let py = loki_python();
    let dir = temp_dir();
    let recv = LokiReceiver::start(&py, dir.path(), &["--quiet"]);
    let agent = start_agent(
        dir.path(),
        &recv,
        "    tenant_id: team-e2e\n    encoding: json\n    compression: gzip\n    format: json",
    );
    send_logs(&py, &agent, 12, 12, "e2e-loki-json");
    assert!(
        wait_until("12 JSON entries", Duration::from_secs(15), || recv.stat("entries_accepted") >= 12),
        "got {}\nsluice log:\n{}\nreceiver log:\n{}",
        recv.stats(),
        agent.log(),
        recv.log()
    );
    let pushes = recv.pushes();
    assert!(pushes.iter().all(|p| p["encoding"] == "json" && p["gzip"] == true), "{pushes:?}");
    let mut bodies = BTreeMap::new();
    for push in &pushes {
        for stream in push["streams"].as_array().unwrap() {
            assert_eq!(stream["label_map"]["service_name"], "e2e-loki-json");
            for entry in stream["entries"].as_array().unwrap() {
                let line: Value = serde_json::from_str(entry["line"].as_str().unwrap()).unwrap();
                let body = line["body"].as_str().unwrap().to_string();
                assert_eq!(line["attributes"]["item.index"], line_index(&body));
                assert_eq!(line["resources"]["service.name"], "e2e-loki-json");
                assert_eq!(line["traceid"].as_str().unwrap().len(), 32);
                assert!(entry["structured_metadata"]["trace_id"].is_string(), "{entry}");
                bodies.insert(line_index(&body), entry["ts"].as_u64().unwrap());
            }
        }
    }
    assert_eq!(bodies.len(), 12);
    assert!(bodies.iter().all(|(i, ts)| *ts == BASE_NS + i * 1_000_000), "{bodies:?}");
    agent.stop();
}

/// The example config stays valid, and `components` lists the exporter as logs only.
#[test]
fn example_config_validates_and_components_lists_loki() {
    let out = Command::new(sluice_bin())
        .args(["validate", "--config"])
        .arg(repo_root().join("config/loki.yaml"))
        .env_remove("LOKI_URL")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let out = Command::new(sluice_bin()).arg("components").output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.lines().any(|l| l.contains("loki") && l.contains("[logs]")), "{text}");
}
