//! End to end with the OpenTelemetry Python SDK against secured receivers:
//! TLS, mTLS and bearer tokens on both OTLP/gRPC and OTLP/HTTP, and HTTP Basic
//! against a bcrypt htpasswd entry, through a real
//! sluice to the reference receiver. Refused requests must be refused as the
//! client sees them (UNAUTHENTICATED, 401), counted, and harmless: the next
//! authorized request still goes through, and exactly the accepted items arrive.
//!
//! Certificates are made at test time (rcgen); no key is kept in the repository.

mod common;

use common::*;
use std::process::Output;
use std::time::Duration;

const TOKEN: &str = "e2e-token-4f9c2a";

fn stderr(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
#[ignore = "needs peers (Python OpenTelemetry SDK): bash .ci/run"]
fn tls_mtls_bearer_and_basic_auth_with_the_python_sdk() {
    let py = python();
    let dir = temp_dir();
    let pki = make_pki(dir.path());
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let (secure_grpc, secure_http, basic_http) = (free_port(), free_port(), free_port());
    // As `htpasswd -B` writes it.
    let bcrypt_line = format!("alice:{}", bcrypt::hash("wonderland", 4).unwrap().replacen("$2b$", "$2y$", 1));
    let tls = |mtls: bool| {
        let ca = if mtls { format!("\n          client_ca_file: {}", pki.ca) } else { String::new() };
        format!("        tls:\n          cert_file: {}\n          key_file: {}{ca}\n", pki.server_cert, pki.server_key)
    };
    let auth = "        auth:\n          authenticator: bearertokenauth\n";
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
{tls_only}      http:
        endpoint: 127.0.0.1:{http}
{tls_only}  otlp/secure:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{secure_grpc}
{mtls}{auth}      http:
        endpoint: 127.0.0.1:{secure_http}
{mtls}{auth}  otlp/basic:
    protocols:
      http:
        endpoint: 127.0.0.1:{basic_http}
        auth:
          authenticator: basicauth
processors:
{FAST_BATCH}
exporters:
{exporter}
extensions:
  health_check:
    endpoint: 127.0.0.1:{health}
  bearertokenauth:
    filename: {token_file}
  basicauth:
    htpasswd:
      inline: \"{bcrypt_line}\"
service:
  extensions: [health_check, bearertokenauth, basicauth]
  telemetry:
    metrics:
      address: 127.0.0.1:{metrics}
  pipelines:
    traces:
      receivers: [otlp, otlp/secure, otlp/basic]
      processors: [batch]
      exporters: [otlp]
",
        grpc = ports.grpc,
        http = ports.http,
        health = ports.health,
        metrics = ports.metrics,
        tls_only = tls(false),
        mtls = tls(true),
        exporter = exporter_yaml("otlp", &recv, ""),
        token_file = token_file.display(),
    );
    let agent = Agent::start(dir.path(), &config, ports);
    let bearer = format!("authorization=Bearer {TOKEN}");
    let grpc_tls = format!("127.0.0.1:{}", ports.grpc);
    let http_tls = format!("https://127.0.0.1:{}", ports.http);
    let grpc_secure = format!("127.0.0.1:{secure_grpc}");
    let http_secure = format!("https://127.0.0.1:{secure_http}");
    let client = ["--client-cert", pki.client_cert.as_str(), "--client-key", pki.client_key.as_str()];
    let send = |protocol: &str, endpoint: &str, count: &str, extra: &[&str]| -> Output {
        let mut args = vec![
            "--signal",
            "traces",
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--count",
            count,
            "--timeout",
            "3",
            "--ca",
            &pki.ca,
        ];
        args.extend_from_slice(extra);
        run_python_sender(&py, &args)
    };
    let ok = |o: Output, what: &str| {
        assert!(o.status.success(), "{what} failed:\n{}\nsluice log:\n{}", stderr(&o), agent.log())
    };
    let mut expected = 0u64;
    let mut arrived = |n: u64, what: &str| {
        expected += n;
        assert!(
            recv.wait_items("traces", expected, Duration::from_secs(15)),
            "after {what}: {} of {expected} spans arrived\nsluice log:\n{}",
            recv.accepted_items("traces"),
            agent.log()
        );
    };

    // TLS (server certificate only) on both transports.
    ok(send("grpc", &grpc_tls, "6", &[]), "gRPC over TLS");
    arrived(6, "gRPC over TLS");
    ok(send("http", &http_tls, "5", &[]), "HTTP over TLS");
    arrived(5, "HTTP over TLS");

    // mTLS plus a bearer token.
    let mut authorized: Vec<&str> = client.to_vec();
    authorized.extend(["--header", bearer.as_str()]);
    ok(send("grpc", &grpc_secure, "7", &authorized), "gRPC with mTLS and a token");
    arrived(7, "gRPC with mTLS and a token");
    ok(send("http", &http_secure, "4", &authorized), "HTTP with mTLS and a token");
    arrived(4, "HTTP with mTLS and a token");

    // No token: the client sees UNAUTHENTICATED / 401, nothing arrives.
    let o = send("grpc", &grpc_secure, "3", &client);
    assert!(!o.status.success(), "gRPC without a token was accepted");
    assert!(
        stderr(&o).contains("StatusCode.UNAUTHENTICATED"),
        "gRPC client did not see UNAUTHENTICATED:\n{}",
        stderr(&o)
    );
    let mut wrong: Vec<&str> = client.to_vec();
    wrong.extend(["--header", "authorization=Bearer not-the-token"]);
    let o = send("http", &http_secure, "3", &wrong);
    assert!(!o.status.success(), "HTTP with a wrong token was accepted");
    assert!(stderr(&o).contains("code: 401"), "HTTP client did not see 401:\n{}", stderr(&o));

    // mTLS without a client certificate: the handshake fails, and is counted.
    let o = send("grpc", &grpc_secure, "2", &["--header", bearer.as_str(), "--timeout", "1"]);
    assert!(!o.status.success(), "gRPC without a client certificate was accepted");

    // HTTP Basic against a bcrypt htpasswd entry, over plain HTTP.
    let basic_url = format!("http://127.0.0.1:{basic_http}");
    let basic = |user_password: &str| {
        use base64::Engine as _;
        format!("authorization=Basic {}", base64::engine::general_purpose::STANDARD.encode(user_password))
    };
    let (good, bad) = (basic("alice:wonderland"), basic("alice:looking-glass"));
    let plain = |header: &str| {
        let args = ["--signal", "traces", "--protocol", "http", "--endpoint", &basic_url, "--count", "4"];
        let mut args = args.to_vec();
        args.extend(["--timeout", "3", "--header", header]);
        run_python_sender(&py, &args)
    };
    ok(plain(&good), "HTTP with Basic credentials");
    arrived(4, "HTTP with Basic credentials");
    let o = plain(&bad);
    assert!(!o.status.success(), "a wrong Basic password was accepted");
    assert!(stderr(&o).contains("code: 401"), "HTTP client did not see 401:\n{}", stderr(&o));

    // The listener still serves the authorized client.
    ok(send("grpc", &grpc_secure, "3", &authorized), "gRPC with mTLS and a token, after the refusals");
    arrived(3, "the authorized request after the refusals");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(recv.accepted_items("traces"), 29, "exactly the accepted spans arrive");
    assert_eq!(agent.metric("otelcol_receiver_accepted_spans_total", &[]), 29.0);

    let failures = |transport, reason| {
        agent.metric(
            "sluice_receiver_auth_failures_total",
            &[("receiver", "otlp/secure"), ("transport", transport), ("reason", reason)],
        )
    };
    assert_eq!(failures("grpc", "missing_credentials"), 1.0);
    assert_eq!(failures("http", "invalid_credentials"), 1.0);
    let basic_failures = agent.metric(
        "sluice_receiver_auth_failures_total",
        &[("receiver", "otlp/basic"), ("transport", "http"), ("reason", "invalid_credentials")],
    );
    assert_eq!(basic_failures, 1.0);
    assert_eq!(agent.metric("sluice_receiver_auth_failures_total", &[]), 3.0);
    let handshakes = agent
        .metric("sluice_receiver_tls_handshake_failures_total", &[("receiver", "otlp/secure"), ("transport", "grpc")]);
    assert!(handshakes >= 1.0, "handshake failures counted: {handshakes}");
    assert_eq!(agent.metric("sluice_receiver_malformed_requests_total", &[]), 0.0);
    agent.stop();
}

#[test]
fn bad_certificate_fails_start_with_the_yaml_path() {
    let dir = temp_dir();
    let pki = make_pki(dir.path());
    let config = format!(
        "receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
        tls:
          cert_file: {}
          key_file: {}
exporters:
  debug:
service:
  pipelines:
    traces: {{receivers: [otlp], exporters: [debug]}}
",
        pki.server_cert, pki.client_key
    );
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, config).unwrap();
    let o = std::process::Command::new(sluice_bin()).arg("--config").arg(&path).output().unwrap();
    assert!(!o.status.success());
    let text = stderr(&o);
    assert!(
        text.contains("receivers::otlp::protocols::grpc::tls::key_file (line 8): the private key does not belong to the certificate in cert_file"),
        "{text}"
    );
    assert!(text.contains("hint: key_file must hold the private key of the first certificate in cert_file"), "{text}");
}

/// Runs tests/peers/grpc_keepalive.py: a grpcio channel pinging every
/// `keepalive_ms` for `seconds`, then one export; returns its JSON answer.
fn hold_pinging_channel(py: &std::path::Path, endpoint: &str, keepalive_ms: u32, seconds: f64) -> serde_json::Value {
    let o = std::process::Command::new(py)
        .arg(peers_dir().join("grpc_keepalive.py"))
        .args(["--endpoint", endpoint, "--keepalive-ms", &keepalive_ms.to_string(), "--seconds", &seconds.to_string()])
        .output()
        .expect("run grpc_keepalive.py");
    assert!(o.status.success(), "grpc_keepalive.py failed:\n{}", stderr(&o));
    serde_json::from_slice(o.stdout.trim_ascii()).unwrap_or_else(|e| panic!("{e}: {}", stderr(&o)))
}

#[test]
#[ignore = "needs peers (Python grpcio, with the OpenTelemetry SDK): bash .ci/run"]
fn keepalive_enforcement_policy_with_grpcio() {
    let py = python();
    let dir = temp_dir();
    let recv = RefReceiver::start(&py, dir.path(), &["--quiet"]);
    let ports = Ports::pick();
    let strict_port = free_port();
    let config =
        agent_config(ports, FAST_BATCH, &exporter_yaml("otlp", &recv, ""), &["traces"], &["batch"], &["otlp"], &[]);
    // C-core pings at most once a second; `otlp` lets it, `otlp/strict`
    // (3 s) does not.
    let policy = |min_time: &str| {
        format!("        keepalive:\n          enforcement_policy:\n            min_time: {min_time}\n            permit_without_stream: true\n")
    };
    let grpc_line = format!("        endpoint: 127.0.0.1:{}\n", ports.grpc);
    let strict = format!(
        "  otlp/strict:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:{strict_port}\n{}",
        policy("3s")
    );
    assert!(config.contains(&grpc_line) && config.contains("receivers: [otlp]"));
    let config = config
        .replacen(&grpc_line, &format!("{grpc_line}{}", policy("500ms")), 1)
        .replacen("processors:\n", &format!("{strict}processors:\n"), 1)
        .replacen("receivers: [otlp]", "receivers: [otlp, otlp/strict]", 1);
    let agent = Agent::start(dir.path(), &config, ports);
    let too_many_pings = |receiver: &str| {
        agent.metric(
            "sluice_receiver_connections_closed_total",
            &[("receiver", receiver), ("transport", "grpc"), ("reason", "too_many_pings")],
        )
    };

    // Within the policy: a ping a second for 3 s, no call in flight (permitted).
    let within = hold_pinging_channel(&py, &agent.grpc_endpoint(), 1000, 3.0);
    assert_eq!(within["export_ok"], true, "{within}\nsluice log:\n{}", agent.log());
    assert_eq!(too_many_pings("otlp"), 0.0, "a client within the policy was closed");

    // The same client against a 3 s minimum: its third early ping closes
    // the connection with GOAWAY too_many_pings; C-core reconnects, and its
    // export still goes through.
    let flooding = hold_pinging_channel(&py, &format!("127.0.0.1:{strict_port}"), 1000, 4.5);
    assert_eq!(flooding["export_ok"], true, "{flooding}\nsluice log:\n{}", agent.log());
    assert!(
        too_many_pings("otlp/strict") >= 1.0,
        "no connection closed for too many pings\nsluice log:\n{}",
        agent.log()
    );
    assert!(
        recv.wait_items("traces", 2, Duration::from_secs(15)),
        "{} of 2 spans arrived\nsluice log:\n{}",
        recv.accepted_items("traces"),
        agent.log()
    );
    agent.stop();
}
