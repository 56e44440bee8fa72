//! Config hot reload end to end: a real sluice process re-reads its config on
//! SIGHUP (or, with `--watch-config`, when the file's content changes) while
//! the OpenTelemetry Python SDK sends to it and the reference receiver takes
//! what it exports. What is checked is what a user relies on:
//!
//! * reloads under load lose and duplicate nothing, and the new config takes
//!   effect;
//! * an invalid file is refused with the error `sluice validate` prints, the
//!   running config keeps serving, and the refusal is counted;
//! * a pipeline whose processors did not change keeps its tail-sampling
//!   buffers across a reload;
//! * an exporter whose sending queue did not change keeps its queue, and the
//!   batches in it go to the new endpoint;
//! * a receiver whose endpoint changed moves to the new port.

mod common;

use common::*;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const LAST_RELOAD_OK: &str = "sluice_config_last_reload_successful";
const RELOAD_FAILED: &str = "config reload failed; the running config stays";

/// The gauge's value; None when the agent does not report it at all (a
/// missing gauge must not pass for a 0).
fn last_reload_successful(agent: &Agent) -> Option<f64> {
    metric_value(&agent.metrics(), LAST_RELOAD_OK, &[])
}

/// Lines of the (uncoloured) log at `level` that contain `text`.
fn log_lines(agent: &Agent, level: &str, text: &str) -> Vec<String> {
    agent
        .log_plain()
        .lines()
        .filter(|l| l.contains(text) && l.split_whitespace().any(|w| w == level))
        .map(str::to_string)
        .collect()
}

fn port_accepts(port: u16) -> bool {
    TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(500)).is_ok()
}

/// Sends `count` spans with send_otlp.py to the agent's gRPC port; returns the expect file.
fn send_spans(py: &Path, dir: &Path, agent: &Agent, name: &str, count: u32, seed: u32) -> std::path::PathBuf {
    let expect = dir.join(format!("expect-{name}.json"));
    send_python(
        py,
        &[
            "--signal",
            "traces",
            "--protocol",
            "grpc",
            "--endpoint",
            &agent.grpc_endpoint(),
            "--count",
            &count.to_string(),
            "--batch-size",
            "10",
            "--seed",
            &seed.to_string(),
            "--service-name",
            &format!("reload-{name}"),
            "--expect-file",
            expect.to_str().unwrap(),
        ],
    );
    expect
}

/// Waits until the reference receiver accepted `n` spans, lets a duplicate
/// (if any) arrive, and asserts it got exactly `n`.
fn assert_exactly_received(recv: &RefReceiver, agent: &Agent, n: u64) {
    assert!(
        recv.wait_items("traces", n, Duration::from_secs(20)),
        "the reference receiver got {} of {n} spans\nsluice log:\n{}",
        recv.accepted_items("traces"),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(recv.accepted_items("traces"), n, "more spans arrived than were sent\nsluice log:\n{}", agent.log());
}

// ---------------------------------------------------------------------------

/// Generation `gen` of the config of `reload_under_load_loses_nothing`:
/// 0: otlp → batch → otlp; 1: an attributes processor inserts
/// `reload.generation`; 2: the batch processor's size and timeout change;
/// 3: the exporter's compression changes (gzip, the default, to none).
fn generation_config(ports: Ports, recv: &RefReceiver, generation: u64) -> String {
    let batch = if generation >= 2 {
        "  batch:\n    timeout: 50ms\n    send_batch_size: 30"
    } else {
        "  batch:\n    timeout: 200ms\n    send_batch_size: 100"
    };
    let attributes =
        "  attributes:\n    actions:\n      - key: reload.generation\n        value: \"1\"\n        action: insert";
    let (processors_yaml, processors): (String, &[&str]) = if generation >= 1 {
        (format!("{attributes}\n{batch}"), &["attributes", "batch"])
    } else {
        (batch.to_string(), &["batch"])
    };
    let exporter_extra = if generation >= 3 { "    compression: none" } else { "" };
    agent_config(
        ports,
        &processors_yaml,
        &exporter_yaml("otlp", recv, exporter_extra),
        &["traces"],
        processors,
        &["otlp"],
        &[],
    )
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn reload_under_load_loses_nothing() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let mut agent = Agent::start(dir.path(), &generation_config(ports, &recv, 0), ports);

    let stop = dir.path().join("stop");
    let sent = dir.path().join("sent.json");
    let sender_log = dir.path().join("paced.log");
    let mut sender = PeerChild::spawn(
        Command::new(&py)
            .arg(peers_dir().join("send_paced.py"))
            .args(["--endpoint", &agent.grpc_endpoint(), "--rate", "200", "--round", "10", "--batch-size", "20"])
            .arg("--stop-file")
            .arg(&stop)
            .arg("--out")
            .arg(&sent)
            .stdin(Stdio::null())
            .stdout(File::create(dir.path().join("paced.out")).unwrap())
            .stderr(File::create(&sender_log).unwrap()),
    )
    .unwrap();
    assert!(
        recv.wait_items("traces", 1, Duration::from_secs(20)),
        "no span arrived before the first reload\nsender:\n{}\nsluice log:\n{}",
        fs::read_to_string(&sender_log).unwrap_or_default(),
        agent.log()
    );

    // Three reloads while the SDK keeps sending; after each one spans must
    // keep arriving before the next.
    for generation in 1..=3 {
        agent.rewrite_config(&generation_config(ports, &recv, generation));
        agent.sighup();
        agent.wait_reloads("success", generation, Duration::from_secs(15));
        let before = recv.accepted_items("traces");
        assert!(
            wait_until("spans to keep arriving after the reload", Duration::from_secs(10), || {
                recv.accepted_items("traces") > before
            }),
            "no span arrived after reload {generation}\nsluice log:\n{}",
            agent.log()
        );
    }
    fs::write(&stop, "").unwrap();
    let status = sender.wait_timeout(Duration::from_secs(60));
    let sender_text = fs::read_to_string(&sender_log).unwrap_or_default();
    assert!(status.success(), "send_paced.py failed ({status}); an export failed:\n{sender_text}");

    let sent: Value = serde_json::from_str(&fs::read_to_string(&sent).unwrap()).unwrap();
    let n = sent["count"].as_u64().unwrap();
    assert!(n >= 100, "the sender made only {n} spans");
    assert_exactly_received(&recv, &agent, n);

    let items = received_items(&recv.out);
    let mut by_name: BTreeMap<String, u32> = BTreeMap::new();
    for item in &items {
        *by_name.entry(item["name"].as_str().unwrap().to_string()).or_default() += 1;
    }
    let expected: BTreeSet<String> =
        sent["names"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().into()).collect();
    let missing: Vec<&String> = expected.iter().filter(|name| !by_name.contains_key(*name)).collect();
    let repeated: Vec<(&String, &u32)> = by_name.iter().filter(|(_, c)| **c > 1).collect();
    let unexpected: Vec<&String> = by_name.keys().filter(|name| !expected.contains(*name)).collect();
    assert!(
        missing.is_empty() && repeated.is_empty() && unexpected.is_empty(),
        "lost {} spans (e.g. {:?}), {} arrived more than once (e.g. {:?}), {} unexpected (e.g. {:?})",
        missing.len(),
        &missing[..missing.len().min(5)],
        repeated.len(),
        &repeated[..repeated.len().min(5)],
        unexpected.len(),
        &unexpected[..unexpected.len().min(5)]
    );
    let span_ids: HashSet<&str> = items.iter().map(|i| i["span_id"].as_str().unwrap()).collect();
    assert_eq!(span_ids.len() as u64, n, "span IDs are not unique across what arrived");

    // Spans before the first reload lack the attribute; later ones carry it.
    let generation_of = |i: &Value| i["attributes"]["reload.generation"]["string"].as_str().map(str::to_string);
    let tagged = items.iter().filter(|i| generation_of(i).as_deref() == Some("1")).count();
    assert!(tagged > 0, "no span carries reload.generation: the attributes processor of reload 1 never ran");
    assert!(tagged < items.len(), "every span carries reload.generation, even those sent before reload 1");

    assert_eq!(agent.reloads("success"), 3.0);
    assert_eq!(agent.reloads("failure"), 0.0);
    assert_eq!(last_reload_successful(&agent), Some(1.0));
    assert_eq!(agent.metric("otelcol_receiver_accepted_spans_total", &[]), n as f64);
    assert_eq!(agent.metric("otelcol_exporter_send_failed_spans_total", &[]), 0.0);
    let reloaded = log_lines(&agent, "INFO", "config reloaded");
    assert_eq!(reloaded.len(), 3, "one INFO `config reloaded` line per reload:\n{reloaded:#?}");
    agent.stop();
}

// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn invalid_config_keeps_the_running_one() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let config_with_batch = |batch: &str| {
        agent_config(ports, batch, &exporter_yaml("otlp", &recv, ""), &["traces"], &["batch"], &["otlp"], &[])
    };
    let good = config_with_batch(FAST_BATCH);
    let mut agent = Agent::start(dir.path(), &good, ports);

    // Invalid: a negative batch size.
    let bad = config_with_batch(&FAST_BATCH.replace("send_batch_size: 512", "send_batch_size: -5"));
    let bad_line = bad.lines().position(|l| l.contains("send_batch_size: -5")).unwrap() + 1;
    agent.rewrite_config(&bad);
    agent.sighup();
    agent.wait_reloads("failure", 1, Duration::from_secs(15));

    // The log says why, with the very errors `sluice validate` reports.
    let validate = Command::new(sluice_bin()).args(["validate", "--config"]).arg(&agent.config_path).output().unwrap();
    assert!(!validate.status.success(), "sluice validate accepted the invalid file");
    let validate_err = String::from_utf8_lossy(&validate.stderr).to_string();
    let errors: Vec<&str> =
        validate_err.lines().filter_map(|l| l.trim_start().strip_prefix("* ")).map(str::trim).collect();
    assert!(!errors.is_empty(), "sluice validate printed no `* error` line:\n{validate_err}");
    let log = agent.log_plain();
    let at = log.find(RELOAD_FAILED).unwrap_or_else(|| panic!("no `{RELOAD_FAILED}` in the log:\n{log}"));
    let marker_line =
        log[..at].rsplit('\n').next().unwrap_or_default().to_string() + log[at..].lines().next().unwrap_or_default();
    assert!(marker_line.split_whitespace().any(|w| w == "ERROR"), "not an ERROR line: {marker_line}");
    let after = &log[at..];
    let path_and_line = format!("processors::batch::send_batch_size (line {bad_line})");
    assert!(after.contains(&path_and_line), "the reload error lacks `{path_and_line}`:\n{after}");
    for e in &errors {
        assert!(after.contains(e), "the reload error lacks what `sluice validate` prints: {e:?}\nlog:\n{after}");
    }
    assert_eq!(agent.reloads("failure"), 1.0);
    assert_eq!(agent.reloads("success"), 0.0);
    assert_eq!(last_reload_successful(&agent), Some(0.0));

    // The running config still serves.
    let first = send_spans(&py, dir.path(), &agent, "after-failure", 30, 1);
    assert_exactly_received(&recv, &agent, 30);
    assert_received(&py, &[&first], &recv.out, &[], &agent.log());

    // Fixed (and different from the running config): applied.
    let fixed = config_with_batch(&FAST_BATCH.replace("send_batch_size: 512", "send_batch_size: 256"));
    agent.rewrite_config(&fixed);
    agent.sighup();
    agent.wait_reloads("success", 1, Duration::from_secs(15));
    assert_eq!(agent.reloads("failure"), 1.0);
    assert_eq!(last_reload_successful(&agent), Some(1.0));
    assert_eq!(log_lines(&agent, "INFO", "config reloaded").len(), 1, "{}", agent.log_plain());
    let second = send_spans(&py, dir.path(), &agent, "after-fix", 30, 2);
    assert_exactly_received(&recv, &agent, 60);
    assert_received(&py, &[&first, &second], &recv.out, &[], &agent.log());

    // Same meaning, different bytes: nothing to apply, still a success.
    agent.rewrite_config(&format!("# the same config with a comment\n{fixed}"));
    agent.sighup();
    agent.wait_reloads("success", 2, Duration::from_secs(15));
    assert_eq!(log_lines(&agent, "INFO", "config unchanged").len(), 1, "{}", agent.log_plain());
    assert_eq!(log_lines(&agent, "INFO", "config reloaded").len(), 1, "an unchanged file was applied");
    assert_eq!(agent.reloads("failure"), 1.0);
    assert_eq!(last_reload_successful(&agent), Some(1.0));
    agent.stop();
}

// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn tail_sampling_buffers_survive_a_reload() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    // Decisions come 6 s after a trace's first span: time enough for the
    // reload between the two halves.
    let processors = "  tail_sampling:
    decision_wait: 6s
    num_traces: 1000
    policies:
      - name: everything
        type: always_sample";
    let before = agent_config(
        ports,
        processors,
        &exporter_yaml("otlp", &recv, ""),
        &["traces"],
        &["tail_sampling"],
        &["otlp"],
        &["workers: 2"],
    );
    // What changes does not touch the traces pipeline: the exporter's
    // timeout, and a new logs pipeline.
    assert!(before.contains("    timeout: 10s\n"));
    let after = before.replace("    timeout: 10s\n", "    timeout: 5s\n")
        + "    logs:\n      receivers: [otlp]\n      exporters: [otlp]\n";
    let mut agent = Agent::start(dir.path(), &before, ports);

    const TRACES: u64 = 6;
    const SPANS: u64 = 6;
    let manifest_path = dir.path().join("manifest.json");
    let mut sender = PeerChild::spawn(
        Command::new(&py)
            .arg(peers_dir().join("send_trace_halves.py"))
            .args(["--endpoint", &agent.grpc_endpoint()])
            .args(["--traces", &TRACES.to_string(), "--spans", &SPANS.to_string()])
            .arg("--manifest")
            .arg(&manifest_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(dir.path().join("halves.log")).unwrap()),
    )
    .unwrap();
    let mut sender_out = BufReader::new(sender.stdout.take().unwrap());
    let mut line = String::new();
    sender_out.read_line(&mut line).unwrap();
    let first_half: u64 = line
        .strip_prefix("FIRST_HALF_SENT spans=")
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("send_trace_halves.py said {line:?}"));
    assert_eq!(first_half, TRACES * ((SPANS - 1) / 2));
    assert!(
        wait_until("the first halves to be accepted", Duration::from_secs(5), || {
            agent.metric("otelcol_receiver_accepted_spans_total", &[]) >= first_half as f64
        }),
        "{}",
        agent.metrics()
    );

    agent.rewrite_config(&after);
    agent.sighup();
    agent.wait_reloads("success", 1, Duration::from_secs(4));
    // A pipeline that was replaced would have flushed its buffers to the
    // exporter by now; a kept one holds every trace until its decision.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(recv.accepted_items("traces"), 0, "spans left the tail sampler before its decision: it was flushed");
    assert_eq!(agent.metric("sluice_tail_sampling_traces_in_memory", &[]), TRACES as f64, "{}", agent.metrics());

    sender.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let status = sender.wait_timeout(Duration::from_secs(30));
    assert!(status.success(), "send_trace_halves.py failed ({status}):\n{line}");
    let manifest: BTreeMap<String, Value> = serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert_eq!(manifest.len() as u64, TRACES);

    assert_exactly_received(&recv, &agent, TRACES * SPANS);
    // Every trace whole, and in one export request: it was decided once, from one buffer.
    let mut requests_of: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let mut spans_of: BTreeMap<String, u64> = BTreeMap::new();
    for req in received_requests(&recv.out).iter().filter(|r| r["status"] == "accepted") {
        for item in req["items"].as_array().unwrap() {
            let trace = item["trace_id"].as_str().unwrap().to_string();
            requests_of.entry(trace.clone()).or_default().insert(req["seq"].as_u64().unwrap());
            *spans_of.entry(trace).or_default() += 1;
        }
    }
    for trace in manifest.keys() {
        assert_eq!(spans_of.get(trace).copied().unwrap_or(0), SPANS, "trace {trace} did not arrive whole");
        let requests = &requests_of[trace];
        assert_eq!(requests.len(), 1, "trace {trace} arrived split over requests {requests:?}");
    }
    assert_eq!(agent.metric("sluice_tail_sampling_late_spans_total", &[]), 0.0, "{}", agent.metrics());
    assert_eq!(agent.reloads("success"), 1.0);
    assert_eq!(agent.reloads("failure"), 0.0);
    agent.stop();
}

// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn replaced_exporter_sends_what_its_queue_held() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    // One consumer, so while it retries the other batches wait in the queue;
    // retries go on long after the test ends, so nothing is given up on.
    let exporter_to = |endpoint: &str| {
        format!(
            "  otlp:
    endpoint: {endpoint}
    tls:
      insecure: true
    timeout: 2s
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 120s
    sending_queue:
      num_consumers: 1
      queue_size: 100"
        )
    };
    let config_to = |endpoint: &str| {
        agent_config(
            ports,
            "  batch:\n    timeout: 100ms\n    send_batch_size: 10",
            &exporter_to(endpoint),
            &["traces"],
            &["batch"],
            &["otlp"],
            &[],
        )
    };
    let dead = format!("127.0.0.1:{}", free_port());
    let mut agent = Agent::start(dir.path(), &config_to(&dead), ports);

    let expect = send_spans(&py, dir.path(), &agent, "queued", 60, 3);
    let spans = expected_count(&expect);
    let queued = |agent: &Agent| agent.metric("otelcol_exporter_queue_size", &[("exporter", "otlp")]);
    assert!(
        wait_until("batches waiting in the queue and retries", Duration::from_secs(10), || {
            queued(&agent) >= 1.0 && agent.metric("sluice_exporter_retries_total", &[("exporter", "otlp")]) >= 1.0
        }),
        "{}",
        agent.metrics()
    );
    assert_eq!(recv.accepted_items("traces"), 0);

    // Same sending_queue, new endpoint: the live reference receiver.
    agent.rewrite_config(&config_to(&recv.grpc_addr()));
    agent.sighup();
    agent.wait_reloads("success", 1, Duration::from_secs(15));
    assert_exactly_received(&recv, &agent, spans);
    assert_received(&py, &[&expect], &recv.out, &[], &agent.log());
    assert!(wait_until("the queue to empty", Duration::from_secs(5), || queued(&agent) == 0.0), "{}", agent.metrics());
    assert_eq!(agent.metric("otelcol_exporter_send_failed_spans_total", &[]), 0.0, "{}", agent.metrics());
    assert_eq!(agent.metric("otelcol_exporter_enqueue_failed_spans_total", &[]), 0.0, "{}", agent.metrics());
    assert_eq!(agent.reloads("failure"), 0.0);
    agent.stop();
}

// ---------------------------------------------------------------------------

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn watch_config_moves_a_receiver() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let config_for = |ports: Ports| {
        agent_config(ports, FAST_BATCH, &exporter_yaml("otlp", &recv, ""), &["traces"], &["batch"], &["otlp"], &[])
    };
    let mut agent = Agent::start_with_args(dir.path(), &config_for(ports), ports, &["--watch-config"]);
    let old = ports.grpc;
    assert!(port_accepts(old));

    // An unchanged file is not reloaded (the watcher checks every second).
    std::thread::sleep(Duration::from_millis(2200));
    assert_eq!(agent.reloads("success") + agent.reloads("failure"), 0.0, "the unchanged file was reloaded");

    let moved = Ports { grpc: free_port(), ..ports };
    agent.rewrite_config(&config_for(moved));
    agent.wait_reloads("success", 1, Duration::from_secs(10));
    assert!(
        wait_until("the old gRPC port to refuse connections", Duration::from_secs(10), || !port_accepts(old)),
        "sluice still listens on the old port {old}\nlog:\n{}",
        agent.log()
    );
    assert!(
        wait_until("the new gRPC port to accept connections", Duration::from_secs(10), || port_accepts(moved.grpc)),
        "sluice does not listen on the new port {}\nlog:\n{}",
        moved.grpc,
        agent.log()
    );
    agent.ports = moved;
    let expect = send_spans(&py, dir.path(), &agent, "moved", 30, 4);
    assert_exactly_received(&recv, &agent, 30);
    assert_received(&py, &[&expect], &recv.out, &[], &agent.log());

    // Polling goes on without reloading the now unchanged file again.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(agent.reloads("success"), 1.0);
    assert_eq!(agent.reloads("failure"), 0.0);
    assert_eq!(last_reload_successful(&agent), Some(1.0));
    agent.stop();
}
