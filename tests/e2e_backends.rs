//! The shipped backend configs, run as written: `config/jaeger.yaml`
//! (`otlp` over gRPC to Jaeger's 4317) and `config/tempo.yaml` (`otlphttp`
//! to Tempo's 4318 with `X-Scope-OrgID`). A reference OTLP receiver stands in
//! for the backend (neither Jaeger nor Tempo can be installed here; both
//! ingest plain OTLP, which is what the receiver decodes). Only the listen
//! addresses and the backend's address are rewritten for the test's ports.

mod common;

use common::*;
use std::time::Duration;

/// The example config with its listeners on the test's ports and `backend`
/// (the text of the `${env:...}` default it replaces) pointing at `target`.
fn example(file: &str, ports: Ports, replace: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(repo_root().join(file)).expect("example config");
    for (from, to) in [
        ("127.0.0.1:4317", format!("127.0.0.1:{}", ports.grpc)),
        ("127.0.0.1:4318", format!("127.0.0.1:{}", ports.http)),
        ("127.0.0.1:13133", format!("127.0.0.1:{}", ports.health)),
        ("127.0.0.1:8888", format!("127.0.0.1:{}", ports.metrics)),
    ]
    .iter()
    .chain(replace.iter().map(|(f, t)| (*f, t.clone())).collect::<Vec<_>>().iter())
    {
        assert!(text.contains(from), "{file} no longer contains {from}");
        text = text.replace(from, to);
    }
    text
}

/// Sends `count` spans with the Python SDK and waits until the reference
/// receiver has them all; compares them item by item.
fn send_and_compare(py: &std::path::Path, dir: &std::path::Path, agent: &Agent, recv: &RefReceiver, count: &str) {
    let expect = dir.join("expect.json");
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
            count,
            "--expect-file",
            expect.to_str().unwrap(),
        ],
    );
    let n = expected_count(&expect);
    assert!(
        recv.wait_items("traces", n, Duration::from_secs(15)),
        "the backend got {} of {n} spans\n{}",
        recv.accepted_items("traces"),
        agent.log()
    );
    std::thread::sleep(Duration::from_millis(300));
    assert_received(py, &[&expect], &recv.out, &[], &agent.log());
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn jaeger_example_config_delivers_python_spans_over_otlp_grpc() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let config = example("config/jaeger.yaml", ports, &[("jaeger-collector:4317", recv.grpc_addr())]);
    let agent = Agent::start(dir.path(), &config, ports);
    send_and_compare(&py, dir.path(), &agent, &recv, "30");
    let reqs = received_requests(&recv.out);
    assert!(reqs.iter().all(|r| r["transport"] == "grpc"), "Jaeger gets OTLP over gRPC");
    agent.stop();
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn tempo_example_config_delivers_python_spans_with_the_tenant_header() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let config = example(
        "config/tempo.yaml",
        ports,
        &[
            ("http://tempo-distributor:4318", recv.http_url()),
            ("${env:TEMPO_TENANT:-single-tenant}", "team-a".to_string()),
        ],
    );
    let agent = Agent::start(dir.path(), &config, ports);
    send_and_compare(&py, dir.path(), &agent, &recv, "30");
    let reqs = received_requests(&recv.out);
    assert!(!reqs.is_empty());
    for r in &reqs {
        assert_eq!(r["transport"], "http", "Tempo gets OTLP over HTTP");
        assert_eq!(r["gzip"], true, "the example compresses with gzip");
        assert_eq!(r["headers"]["x-scope-orgid"], "team-a", "multi-tenant Tempo needs the tenant on every request");
    }
    agent.stop();
}
