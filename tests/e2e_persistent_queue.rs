//! The persistent sending queue end to end: a real gRPC client that records
//! which requests sluice acknowledged, `kill -9`, restarts on the same
//! directory, a backend outage, a torn segment tail. The promise checked is
//! DESIGN point 6: every span of every acknowledged request reaches the
//! backend, whatever happens to the agent in between.

mod common;

use common::*;
use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CONSUMERS: usize = 2;

/// sluice with a `file_storage` queue in `storage`, exporting traces over
/// gRPC to 127.0.0.1:`backend_port` (which may not listen yet).
fn config(ports: Ports, storage: &Path, backend_port: u16, fsync: bool, extra_queue: &str) -> String {
    format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
  file_storage:
    directory: {dir}
    fsync: {fsync}
exporters:
  otlp:
    endpoint: 127.0.0.1:{backend_port}
    tls:
      insecure: true
    timeout: 5s
    retry_on_failure:
      initial_interval: 100ms
      max_interval: 500ms
      max_elapsed_time: 0s
    sending_queue:
      storage: file_storage
      num_consumers: {CONSUMERS}
{extra_queue}
service:
  extensions: [health_check, file_storage]
  shutdown_timeout: 2s
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [otlp]
",
        grpc = ports.grpc,
        health = ports.health,
        metrics = ports.metrics,
        dir = storage.display(),
    )
}

/// Runs tests/peers/send_acked.py in the background (killed on drop).
fn spawn_sender(py: &Path, endpoint: &str, out: &Path, args: &[&str]) -> PeerChild {
    PeerChild::spawn(
        Command::new(py)
            .arg(peers_dir().join("send_acked.py"))
            .args(["--endpoint", endpoint, "--out"])
            .arg(out)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit()),
    )
    .expect("start send_acked.py")
}

/// (acknowledged request numbers, all request numbers) in the sender's log.
fn acked_requests(out: &Path) -> (HashSet<u64>, usize) {
    let text = fs::read_to_string(out).unwrap_or_default();
    let mut ok = HashSet::new();
    let mut all = 0;
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        all += 1;
        if v["ok"].as_bool() == Some(true) {
            ok.insert(v["request"].as_u64().unwrap());
        }
    }
    (ok, all)
}

/// The span IDs the sender used for request `i` (see send_acked.py).
fn span_ids(run: u16, i: u64, spans: u16) -> impl Iterator<Item = String> {
    (0..spans).map(move |j| format!("{run:04x}{:08x}{j:04x}", i as u32))
}

/// How many times each span ID arrived, from the reference receiver's
/// accepted requests (a string scan: the file can be large).
fn received_spans(out: &Path) -> HashMap<String, u32> {
    let text = fs::read_to_string(out).unwrap_or_default();
    let mut seen = HashMap::new();
    const KEY: &str = "\"span_id\": \"";
    for line in text.lines().filter(|l| l.contains("\"status\": \"accepted\"")) {
        let mut rest = line;
        while let Some(at) = rest.find(KEY) {
            rest = &rest[at + KEY.len()..];
            let end = rest.find('"').unwrap();
            *seen.entry(rest[..end].to_string()).or_insert(0) += 1;
            rest = &rest[end..];
        }
    }
    seen
}

/// Waits until every span of every acknowledged request arrived; returns the
/// missing ones (empty on success) and the duplicates.
fn wait_for_acked_spans(
    recv: &RefReceiver,
    expected: &HashSet<String>,
    timeout: Duration,
) -> (Vec<String>, HashMap<String, u32>) {
    let deadline = Instant::now() + timeout;
    loop {
        let seen = received_spans(&recv.out);
        let missing: Vec<String> = expected.iter().filter(|s| !seen.contains_key(*s)).cloned().collect();
        if missing.is_empty() || Instant::now() > deadline {
            let dups = seen.into_iter().filter(|(_, n)| *n > 1).collect();
            return (missing, dups);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix("VmRSS:")).and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn segments(storage: &Path) -> Vec<PathBuf> {
    let dir = storage.join("exporter_otlp_traces");
    let mut v: Vec<PathBuf> = fs::read_dir(&dir)
        .map(|r| {
            r.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "wal")).collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn kill_9_under_load_loses_no_acknowledged_span() {
    let py = python();
    let tmp = temp_dir();
    let storage = tmp.path().join("queue");
    let backend_port = free_port();
    let ports = Ports::pick();
    let cfg = config(ports, &storage, backend_port, true, "");
    let mut agent = Agent::start(tmp.path(), &cfg, ports);
    let sent = tmp.path().join("sent.jsonl");
    const SPANS: u16 = 10;
    const REQUESTS: u64 = 400;
    let mut sender = spawn_sender(
        &py,
        &agent.grpc_endpoint(),
        &sent,
        &["--requests", "400", "--spans", "10", "--run", "7", "--interval", "0.005", "--retry-seconds", "20"],
    );
    assert!(
        wait_until("150 acknowledged requests", Duration::from_secs(60), || acked_requests(&sent).0.len() >= 150),
        "sender made no progress\n{}",
        agent.log()
    );
    // The crash: no drain, no flush.
    agent.kill9();
    let acked_at_crash = acked_requests(&sent).0.len();
    std::thread::sleep(Duration::from_millis(300));
    let agent = Agent::start(tmp.path(), &cfg, ports);
    let replayed = agent.metric("sluice_queue_replayed_records_total", &[]);
    assert!(replayed >= acked_at_crash as f64, "replayed {replayed} records, {acked_at_crash} requests were acked");
    let status = sender.wait().unwrap();
    assert!(status.success(), "send_acked.py failed: {status}");
    let (acked, total) = acked_requests(&sent);
    assert_eq!(total as u64, REQUESTS);
    assert!(acked.len() as u64 >= REQUESTS - 20, "only {} of {REQUESTS} requests acknowledged", acked.len());

    // The backend comes up only now: everything acknowledged is on disk.
    let recv = RefReceiver::start(&py, tmp.path(), &["--quiet", "--grpc-port", &backend_port.to_string()]);
    let expected: HashSet<String> = acked.iter().flat_map(|i| span_ids(7, *i, SPANS)).collect();
    let (missing, dups) = wait_for_acked_spans(&recv, &expected, Duration::from_secs(90));
    assert!(
        missing.is_empty(),
        "{} acknowledged spans never arrived (e.g. {:?})\n{}",
        missing.len(),
        &missing[..missing.len().min(5)],
        agent.log()
    );
    // Nothing was delivered before the crash, so the queue repeats nothing
    // here; the bound in general is one batch per consumer, plus the one
    // request the sender retries because the crash cut off its answer.
    let dup_spans: u32 = dups.values().map(|n| n - 1).sum();
    assert!(dup_spans as usize <= (CONSUMERS + 1) * SPANS as usize, "{dup_spans} duplicate spans: {dups:?}");
    assert_eq!(agent.metric("sluice_queue_corrupt_records_total", &[]), 0.0);
    assert!(agent.metric("sluice_queue_fsyncs_total", &[]) > 0.0);
    eprintln!(
        "crash test: {} acked requests, {acked_at_crash} at the crash, {replayed} records replayed, {dup_spans} duplicate spans",
        acked.len()
    );
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn delivered_records_repeat_at_most_once_per_consumer_after_a_crash() {
    let py = python();
    let tmp = temp_dir();
    let storage = tmp.path().join("queue");
    let recv = RefReceiver::start(&py, tmp.path(), &["--quiet"]);
    let ports = Ports::pick();
    let cfg = config(ports, &storage, recv.grpc_port, false, "");
    let mut agent = Agent::start(tmp.path(), &cfg, ports);
    let sent = tmp.path().join("sent.jsonl");
    let mut sender = spawn_sender(
        &py,
        &agent.grpc_endpoint(),
        &sent,
        &["--requests", "300", "--spans", "5", "--run", "9", "--interval", "0.002", "--retry-seconds", "20"],
    );
    assert!(wait_until("100 acked", Duration::from_secs(60), || acked_requests(&sent).0.len() >= 100));
    agent.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let agent = Agent::start(tmp.path(), &cfg, ports);
    assert!(sender.wait().unwrap().success());
    let (acked, _) = acked_requests(&sent);
    let expected: HashSet<String> = acked.iter().flat_map(|i| span_ids(9, *i, 5)).collect();
    let (missing, dups) = wait_for_acked_spans(&recv, &expected, Duration::from_secs(60));
    assert!(missing.is_empty(), "{} acknowledged spans lost\n{}", missing.len(), agent.log());
    let dup_spans: u32 = dups.values().map(|n| n - 1).sum();
    // Two sources of repeats, each bounded: the queue redelivers at most one
    // batch per consumer (counted), and the sender, which sends one request
    // at a time, retries the one request whose answer the crash cut off.
    // That request was already on disk, and perhaps already delivered, so it
    // can arrive twice without the queue counting it.
    const CLIENT_RETRY_SPANS: usize = 5;
    assert!(
        dup_spans as usize <= CONSUMERS * 5 + CLIENT_RETRY_SPANS,
        "{dup_spans} duplicate spans (bound: one batch per consumer and one retried request)"
    );
    // Every other batch that arrived twice was counted as possibly redelivered
    // (a batch is one request of 5 spans: no batch processor here).
    let redelivered = agent.metric("sluice_queue_redelivered_records_total", &[]);
    assert!(redelivered <= CONSUMERS as f64, "{redelivered} redelivered: at most one batch in flight per consumer");
    assert!(
        dup_spans as usize <= redelivered as usize * 5 + CLIENT_RETRY_SPANS,
        "{dup_spans} duplicate spans but {redelivered} batches counted as redelivered"
    );
    eprintln!("healthy-backend crash: {} acked, {dup_spans} duplicate spans, {redelivered} redelivered", acked.len());
    agent.stop();
}

/// The backend is down for OUTAGE_SECS (60; `SLUICE_TEST_OUTAGE_SECS`
/// shortens it while developing) under steady load, then comes back.
#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn a_long_outage_is_absorbed_on_disk_with_bounded_memory() {
    let py = python();
    let outage: f64 = std::env::var("SLUICE_TEST_OUTAGE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(60.0);
    let tmp = temp_dir();
    let storage = tmp.path().join("queue");
    let backend_port = free_port();
    let ports = Ports::pick();
    // A batch bound far above what the outage produces: only the disk holds it.
    let cfg = config(ports, &storage, backend_port, false, "      queue_size: 1000000\n      max_size_mib: 2048");
    let agent = Agent::start(tmp.path(), &cfg, ports);
    let pid = agent.pid().unwrap();
    let sent = tmp.path().join("sent.jsonl");
    let mut sender = spawn_sender(
        &py,
        &agent.grpc_endpoint(),
        &sent,
        &[
            "--requests",
            "100000000",
            "--duration",
            &(outage + 5.0).to_string(),
            "--spans",
            "10",
            "--pad",
            "1000",
            "--interval",
            "0.01",
            "--run",
            "3",
            "--retry-seconds",
            "20",
        ],
    );
    let start = Instant::now();
    let rss_start = vm_rss_kib(pid).unwrap();
    let mut rss_max = rss_start;
    while start.elapsed() < Duration::from_secs_f64(outage) {
        std::thread::sleep(Duration::from_secs(1));
        rss_max = rss_max.max(vm_rss_kib(pid).unwrap_or(0));
    }
    let disk = agent.metric("sluice_queue_disk_bytes", &[]);
    let recv = RefReceiver::start(&py, tmp.path(), &["--quiet", "--grpc-port", &backend_port.to_string()]);
    assert!(sender.wait().unwrap().success());
    let (acked, total) = acked_requests(&sent);
    let expected: HashSet<String> = acked.iter().flat_map(|i| span_ids(3, *i, 10)).collect();
    let (missing, _) = wait_for_acked_spans(&recv, &expected, Duration::from_secs(240));
    rss_max = rss_max.max(vm_rss_kib(pid).unwrap_or(0));
    eprintln!(
        "outage {outage}s: {} of {total} requests acked, {:.1} MiB on disk at the end of the outage, RSS {} -> max {} MiB",
        acked.len(),
        disk / 1048576.0,
        rss_start / 1024,
        rss_max / 1024
    );
    assert!(missing.is_empty(), "{} acknowledged spans lost\n{}", missing.len(), agent.log());
    assert!(acked.len() > 100, "too little load to mean anything: {} requests", acked.len());
    assert!(disk > 1e6, "the outage should have queued data on disk: {disk} bytes");
    // Data is on disk, not in memory: the RSS stays far below what was queued.
    assert!(rss_max < 150 * 1024, "RSS reached {} MiB with {:.0} MiB queued on disk", rss_max / 1024, disk / 1048576.0);
    assert_eq!(agent.metric("otelcol_exporter_enqueue_failed_spans_total", &[]), 0.0);
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, promtool): bash .ci/run"]
fn a_torn_segment_tail_is_counted_and_earlier_records_delivered() {
    let py = python();
    let tmp = temp_dir();
    let storage = tmp.path().join("queue");
    let backend_port = free_port();
    let ports = Ports::pick();
    let cfg = config(ports, &storage, backend_port, false, "");
    let mut agent = Agent::start(tmp.path(), &cfg, ports);
    let sent = tmp.path().join("sent.jsonl");
    let status = spawn_sender(&py, &agent.grpc_endpoint(), &sent, &["--requests", "20", "--spans", "4", "--run", "5"])
        .wait()
        .unwrap();
    assert!(status.success());
    let (acked, _) = acked_requests(&sent);
    assert_eq!(acked.len(), 20, "every request is acknowledged while the disk takes it");
    // Stop: the backend is down, so the queue stays on disk.
    agent.terminate(Duration::from_secs(20));
    let segs = segments(&storage);
    assert_eq!(segs.len(), 1, "{segs:?}");
    let len = fs::metadata(&segs[0]).unwrap().len();
    let f = fs::OpenOptions::new().write(true).open(&segs[0]).unwrap();
    f.set_len(len - 10).unwrap(); // the last record is cut short, as by a torn write
    drop(f);

    let recv = RefReceiver::start(&py, tmp.path(), &["--quiet", "--grpc-port", &backend_port.to_string()]);
    let agent = Agent::start(tmp.path(), &cfg, ports);
    assert_eq!(agent.metric("sluice_queue_corrupt_records_total", &[]), 1.0);
    assert!(agent.metric("sluice_queue_corrupt_bytes_total", &[]) > 0.0);
    // Requests are one record each, in order: all but the last survive.
    let expected: HashSet<String> = (0..19).flat_map(|i| span_ids(5, i, 4)).collect();
    let (missing, _) = wait_for_acked_spans(&recv, &expected, Duration::from_secs(30));
    assert!(missing.is_empty(), "records before the torn one were lost: {missing:?}\n{}", agent.log());
    std::thread::sleep(Duration::from_millis(500));
    let seen = received_spans(&recv.out);
    assert!(span_ids(5, 19, 4).all(|s| !seen.contains_key(&s)), "the torn record cannot be delivered");
    assert!(agent.log().contains("corrupt record in persistent queue"), "{}", agent.log());
    promtool_check(&promtool(), &agent.metrics());
    agent.stop();
}

#[test]
fn example_config_validates() {
    let tmp = temp_dir();
    let out = Command::new(sluice_bin())
        .args(["validate", "--config"])
        .arg(repo_root().join("config/persistent-queue.yaml"))
        .env("SLUICE_QUEUE_DIR", tmp.path().join("q"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!tmp.path().join("q").exists(), "validate creates nothing");
}
