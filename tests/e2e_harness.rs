//! Checks the end-to-end harness itself, without sluice: the real SDKs send
//! straight to the reference receiver and the comparison must match. When an
//! e2e test through sluice fails, this one passing says the fault is sluice's,
//! not the harness's.
//!
//! The same for the load harness (`sluice-loadgen`, driven by
//! `benches/e2e.sh`): its sender and sink must agree on exact counts,
//! refusals must be counted as such, and the `nop` exporter the benchmarks use
//! must count what it discards.

mod common;

use common::*;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn python_sdk_direct_to_reference_receiver_matches() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let mut expects = vec![];
    for (signal, protocol, gzip) in [("traces", "grpc", false), ("metrics", "http", true), ("logs", "grpc", true)] {
        let expect = dir.path().join(format!("expect-{signal}.json"));
        let endpoint = if protocol == "grpc" { recv.grpc_addr() } else { recv.http_url() };
        let mut args = vec![
            "--signal",
            signal,
            "--protocol",
            protocol,
            "--endpoint",
            &endpoint,
            "--count",
            "12",
            "--batch-size",
            "5",
            "--expect-file",
            expect.to_str().unwrap(),
        ];
        if gzip {
            args.push("--gzip");
        }
        send_python(&py, &args);
        assert!(recv.wait_items(signal, expected_count(&expect), Duration::from_secs(5)));
        expects.push(expect);
    }
    let paths: Vec<&std::path::Path> = expects.iter().map(|p| p.as_path()).collect();
    assert_received(&py, &paths, &recv.out, &[], "");
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK, Node OpenTelemetry SDK): bash .ci/run"]
fn node_sdk_direct_to_reference_receiver_matches() {
    let py = python();
    let node = node();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let expect = dir.path().join("expect.json");
    send_node(&node, &["--endpoint", &recv.http_url(), "--count", "10", "--expect-file", expect.to_str().unwrap()]);
    assert!(recv.wait_items("traces", 10, Duration::from_secs(5)));
    assert_received(&py, &[&expect], &recv.out, &[], "");
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn reference_receiver_fault_injection_is_seen_by_the_sdk() {
    let py = python();
    let dir = temp_dir();
    // RetryInfo of 0.1 s keeps the SDK's retries short.
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet", "--fail-first", "2", "--retry-after", "0.1"]);
    let out = send_python(
        &py,
        &["--signal", "traces", "--protocol", "grpc", "--endpoint", &recv.grpc_addr(), "--count", "6"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Transient error StatusCode.UNAVAILABLE"), "{stderr}");
    let stats = recv.stats();
    assert_eq!(stats["requests_rejected"], 2, "{stats}");
    assert_eq!(stats["items_accepted"]["traces"], 6, "{stats}");

    // A permanent error makes the sender exit non-zero.
    let dir2 = temp_dir();
    let recv2 =
        RefReceiver::start(&py, dir2.path(), &["--quiet", "--fail-first", "1", "--fail-code", "invalid_argument"]);
    let o = run_python_sender(
        &py,
        &["--signal", "logs", "--protocol", "grpc", "--endpoint", &recv2.grpc_addr(), "--count", "3"],
    );
    assert!(!o.status.success());
    assert_eq!(recv2.stats()["requests"], 1);
}

// ---------------------------------------------------------------------------
// sluice-loadgen

fn loadgen() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice-loadgen"))
}

/// `sluice-loadgen send ARGS`, which must succeed; its JSON report.
fn send(args: &[&str]) -> serde_json::Value {
    let out = loadgen().arg("send").args(args).output().unwrap();
    assert!(out.status.success(), "send {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A running `sluice-loadgen sink` on fresh gRPC and HTTP ports; killed on drop.
struct Sink {
    child: Option<Child>,
    grpc: String,
    http: String,
}

impl Sink {
    fn start(dir: &Path, extra: &[&str]) -> Sink {
        let (grpc, http) = (format!("127.0.0.1:{}", free_port()), format!("127.0.0.1:{}", free_port()));
        let child = loadgen()
            .args(["sink", "--grpc", &grpc, "--http", &http])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("sink.log")).unwrap())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(&grpc).is_err() || TcpStream::connect(&http).is_err() {
            assert!(Instant::now() < deadline, "sink did not listen on {grpc} and {http}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Sink { child: Some(child), grpc, http: format!("http://{http}") }
    }

    /// SIGTERM; the totals it prints.
    fn stop(mut self) -> serde_json::Value {
        let child = self.child.take().unwrap();
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        unsafe {
            libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
        }
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "sink exited with {}", out.status);
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn loadgen_send_and_sink_agree_on_exact_counts() {
    let dir = temp_dir();
    let sink = Sink::start(dir.path(), &[]);
    let traces = send(&[
        "--endpoint",
        &sink.grpc,
        "--requests",
        "25",
        "--spans-per-request",
        "40",
        "--connections",
        "2",
        "--concurrency",
        "3",
        "--spans-per-trace",
        "5",
        "--error-ratio",
        "0.1",
        "--slow-ratio",
        "0.05",
        "--attributes",
        "14",
        "--attribute-size",
        "64",
    ]);
    assert_eq!(traces["requests_ok"], 25, "{traces}");
    assert_eq!(traces["items_sent"], 1000, "{traces}");
    assert_eq!(traces["requests_refused"], 0);
    assert_eq!(traces["requests_failed"], 0);
    for field in ["latency_p50_ms", "latency_p90_ms", "latency_p99_ms", "latency_max_ms", "items_per_second"] {
        assert!(traces[field].as_f64().unwrap() > 0.0, "{field} in {traces}");
    }
    assert!(traces["latency_p50_ms"].as_f64() <= traces["latency_p99_ms"].as_f64());
    let metrics = send(&[
        "--endpoint",
        &sink.http,
        "--protocol",
        "http",
        "--signal",
        "metrics",
        "--requests",
        "10",
        "--spans-per-request",
        "30",
        "--gzip",
    ]);
    assert_eq!(metrics["items_sent"], 300, "{metrics}");
    let logs =
        send(&["--endpoint", &sink.grpc, "--signal", "logs", "--requests", "7", "--spans-per-request", "20", "--gzip"]);
    assert_eq!(logs["items_sent"], 140, "{logs}");
    let got = sink.stop();
    assert_eq!(got["spans"], 1000, "{got}");
    assert_eq!(got["metric_points"], 300, "{got}");
    assert_eq!(got["log_records"], 140, "{got}");
    assert_eq!(got["requests"], 42, "{got}");
}

#[test]
fn loadgen_counts_refusals_as_refused() {
    let dir = temp_dir();
    // Every third request is refused: gRPC UNAVAILABLE, then HTTP 503.
    let sink = Sink::start(dir.path(), &["--refuse-every", "3"]);
    let grpc = send(&["--endpoint", &sink.grpc, "--requests", "30", "--spans-per-request", "10"]);
    assert_eq!((grpc["requests_ok"].as_u64(), grpc["requests_refused"].as_u64()), (Some(20), Some(10)), "{grpc}");
    assert_eq!(grpc["requests_failed"], 0, "{grpc}");
    assert_eq!(grpc["items_sent"], 200, "{grpc}");
    let http = send(&["--endpoint", &sink.http, "--protocol", "http", "--requests", "30", "--spans-per-request", "10"]);
    assert_eq!((http["requests_ok"].as_u64(), http["requests_refused"].as_u64()), (Some(20), Some(10)), "{http}");
    assert_eq!(http["requests_failed"], 0, "{http}");
    let got = sink.stop();
    assert_eq!(got["spans"], 400, "{got}");
    assert_eq!(got["requests_refused"], 20, "{got}");
}

#[test]
fn loadgen_sink_without_decoding_counts_bytes() {
    let dir = temp_dir();
    let sink = Sink::start(dir.path(), &["--no-decode"]);
    let sent = send(&["--endpoint", &sink.grpc, "--requests", "20", "--rate", "200", "--spans-per-request", "50"]);
    let ok = sent["requests_ok"].as_u64().unwrap();
    assert_eq!(ok, 20, "{sent}");
    let got = sink.stop();
    assert_eq!(got["decoded"], false);
    assert_eq!(got["items"], 0);
    assert_eq!(got["requests"], ok);
    assert_eq!(got["bytes"], ok * sent["request_bytes"].as_u64().unwrap(), "{got} {sent}");
}

#[test]
fn agent_with_nop_exporter_counts_sent_items() {
    let dir = temp_dir();
    let ports = Ports::pick();
    let config = agent_config(ports, "", "  nop:", &["traces", "logs"], &[], &["nop"], &[]);
    let agent = Agent::start(dir.path(), &config, ports);
    let traces = send(&["--endpoint", &agent.grpc_endpoint(), "--requests", "12", "--spans-per-request", "50"]);
    assert_eq!(traces["items_sent"], 600, "{traces}");
    let logs = send(&[
        "--endpoint",
        &agent.http_endpoint(),
        "--protocol",
        "http",
        "--signal",
        "logs",
        "--requests",
        "5",
        "--spans-per-request",
        "20",
    ]);
    assert_eq!(logs["items_sent"], 100, "{logs}");
    assert!(wait_until("nop to count 600 spans and 100 log records", Duration::from_secs(10), || {
        agent.metric("otelcol_exporter_sent_spans_total", &[("exporter", "nop")]) == 600.0
            && agent.metric("otelcol_exporter_sent_log_records_total", &[("exporter", "nop")]) == 100.0
    }));
    assert_eq!(agent.metric("otelcol_exporter_send_failed_spans_total", &[]), 0.0);
    agent.stop();
}

/// Every codec a Collector's OTLP exporters send, in both directions: the
/// load generator sends each one (as a Collector-style client) to sluice's
/// receivers, and one sluice exporter per codec sends everything on to the
/// sink, which reads each codec as a Collector's receiver would. The sink's
/// span count is exact only if every request of every codec arrived whole.
#[test]
fn every_codec_round_trips_through_sluice() {
    const GRPC: &[&str] = &["none", "gzip", "zstd", "snappy"];
    const HTTP: &[&str] = &["none", "gzip", "zstd", "snappy", "zlib", "deflate", "x-snappy-framed", "lz4"];
    let dir = temp_dir();
    let sink = Sink::start(dir.path(), &[]);
    let ports = Ports::pick();
    let mut exporters_yaml = String::new();
    let mut exporters = vec![];
    for (kind, codecs, endpoint) in
        [("otlp", GRPC, format!("http://{}", sink.grpc)), ("otlphttp", HTTP, sink.http.clone())]
    {
        for codec in codecs {
            let name = format!("{kind}/{codec}");
            exporters_yaml.push_str(&format!(
                "  {name}:\n    endpoint: {endpoint}\n    compression: {codec}\n    tls:\n      insecure: true\n"
            ));
            exporters.push(name);
        }
    }
    let exporters: Vec<&str> = exporters.iter().map(String::as_str).collect();
    let config = agent_config(ports, "", &exporters_yaml, &["traces"], &[], &exporters, &[]);
    let agent = Agent::start(dir.path(), &config, ports);
    let mut sent = 0;
    for (protocol, codecs, endpoint) in [("grpc", GRPC, agent.grpc_endpoint()), ("http", HTTP, agent.http_endpoint())] {
        for codec in codecs {
            let report = send(&[
                "--endpoint",
                &endpoint,
                "--protocol",
                protocol,
                "--compression",
                codec,
                "--requests",
                "3",
                "--spans-per-request",
                "20",
            ]);
            assert_eq!(report["requests_ok"], 3, "{protocol} {codec}: {report}");
            assert_eq!(report["compression"], *codec, "{report}");
            sent += 60;
        }
    }
    assert_eq!(agent.metric("otelcol_receiver_accepted_spans_total", &[]), f64::from(sent));
    let expected = f64::from(sent) * exporters.len() as f64;
    assert!(wait_until("every exporter to send every span", Duration::from_secs(20), || {
        agent.metric("otelcol_exporter_sent_spans_total", &[]) == expected
    }));
    assert_eq!(agent.metric("otelcol_exporter_send_failed_spans_total", &[]), 0.0);
    agent.stop();
    let got = sink.stop();
    assert_eq!(got["spans"].as_f64(), Some(expected), "{got}");
}

#[test]
fn loadgen_refuses_an_http_codec_over_grpc() {
    let out = loadgen()
        .args(["send", "--endpoint", "127.0.0.1:1", "--compression", "lz4", "--requests", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("\"lz4\" is an HTTP codec; over gRPC use gzip, zstd or snappy"), "{stderr}");
}
