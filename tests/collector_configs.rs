//! Real Collector configs: for each supported component, a file under
//! `tests/collector_configs/` that uses every field its Collector README
//! documents must validate (`sluice::service::load` and `sluice validate`),
//! and the Collector fields sluice does not implement are refused by name.
//! Each of them, and each YAML example in the README, also starts.

mod common;

use common::{sluice_bin, Ports};
use std::path::PathBuf;
use std::process::Command;

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/collector_configs")
}

/// Every config file, except the one of refused fields.
fn accepted_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("collector_only.yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    files
}

fn env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

#[test]
fn every_collector_config_validates() {
    let mut failed = Vec::new();
    for file in accepted_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        if let Err(errors) = sluice::service::load(&text, &env) {
            failed.push(format!("{}:\n{errors}", file.display()));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn sluice_validate_accepts_every_collector_config() {
    for file in accepted_files() {
        let out = Command::new(sluice_bin()).args(["validate", "--config"]).arg(&file).output().unwrap();
        assert!(
            out.status.success(),
            "sluice validate {}:\n{}{}",
            file.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn collector_fields_sluice_lacks_are_refused_by_name() {
    let text = std::fs::read_to_string(dir().join("collector_only.yaml")).unwrap();
    let errors = sluice::service::load(&text, &env).expect_err("collector_only.yaml must not validate");
    let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    let expected = [
        ("receivers::otlp/metadata::protocols::grpc::include_metadata", "`include_metadata: true`"),
        ("receivers::otlp::protocols::http::auth::request_params", "`request_params`"),
        ("exporters::otlp::authority", "`authority`"),
        ("exporters::otlp::auth", "`auth`"),
        ("exporters::otlp::tls::curve_preferences", "`curve_preferences`"),
        ("exporters::otlp::sending_queue::batch::partition", "`partition`"),
        ("exporters::otlphttp::proxy_url", "`proxy_url`"),
        ("extensions::health_check::response_body", "`response_body`"),
        ("extensions::file_storage::recreate", "`recreate`"),
        ("receivers::filelog::include_file_name_resolved", "`include_file_name_resolved`"),
        ("receivers::filelog::delete_after_read", "`delete_after_read`"),
        ("receivers::filelog/expr::resource::service.name", "`EXPR(...)`"),
        ("exporters::prometheusremotewrite::wal", "`wal`"),
        (
            "exporters::prometheusremotewrite/created::export_created_metric::enabled",
            "`export_created_metric: {enabled: true}`",
        ),
        ("exporters::prometheus::tls", "`tls`"),
        ("exporters::file::compression", "`compression`"),
        ("exporters::loki::default_labels_enabled", "`default_labels_enabled`"),
        ("processors::attributes/kinds::include::span_kinds", "`span_kinds`"),
        ("exporters::loadbalancing::routing_attributes", "`routing_attributes`"),
    ];
    // lz4 is an HTTP codec, over gRPC neither the Collector nor sluice has it.
    assert!(
        shown.iter().any(|e| e.starts_with("exporters::otlp/queue::compression (line ")
            && e.contains("compression \"lz4\" is not available over gRPC")),
        "{shown:#?}"
    );
    for (path, field) in expected {
        let want = format!("the Collector has {field}; sluice does not support it (yet)");
        assert!(
            shown.iter().any(|e| e.starts_with(&format!("{path} (line ")) && e.contains(&want)),
            "no error \"{want}\" at {path}:\n{shown:#?}"
        );
    }
    assert_eq!(shown.len(), expected.len() + 1, "only those errors (and the lz4 one): {shown:#?}");
    assert!(!shown.iter().any(|e| e.contains("unknown field")), "{shown:#?}");
}

#[test]
fn sampling_percentage_infinity_is_refused_as_in_the_collector() {
    let text = "receivers:\n  otlp:\n    protocols:\n      grpc:\nprocessors:\n  probabilistic_sampler:\n    \
                sampling_percentage: +.Inf\nexporters:\n  nop:\nservice:\n  pipelines:\n    traces:\n      \
                receivers: [otlp]\n      processors: [probabilistic_sampler]\n      exporters: [nop]\n";
    let errors = sluice::service::load(text, &env).expect_err("+.Inf must be refused");
    let shown = errors.to_string();
    assert!(shown.contains("processors::probabilistic_sampler::sampling_percentage (line 7)"), "{shown}");
}

/// The OTLP receiver file, with every connection setting, runs: the agent
/// starts, a CORS preflight is answered, and OTLP/HTTP is taken on the path
/// written without its leading '/'.
#[test]
fn the_agent_starts_on_the_receiver_config_and_honours_it() {
    let tmp = tempfile::tempdir().unwrap();
    let ports = Ports::pick();
    let text = std::fs::read_to_string(dir().join("otlp_receiver.yaml"))
        .unwrap()
        .replace("${env:SLUICE_GRPC_PORT:-4317}", &ports.grpc.to_string())
        .replace("${env:SLUICE_HTTP_PORT:-4318}", &ports.http.to_string())
        .replace("${env:SLUICE_HEALTH_PORT:-13133}", &ports.health.to_string())
        .replace("${env:SLUICE_METRICS_PORT:-8888}", &ports.metrics.to_string());
    let agent = common::Agent::start(tmp.path(), &text, ports);
    let http = format!("127.0.0.1:{}", ports.http);
    let (status, head) = raw_http(
        &http,
        "OPTIONS /traces HTTP/1.1\r\nHost: x\r\nOrigin: https://app.test.com\r\n\
         Access-Control-Request-Method: POST\r\nAccess-Control-Request-Headers: content-type, exampleheader\r\n\
         Connection: close\r\n\r\n",
    );
    assert_eq!(status, 204, "{head}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("access-control-allow-origin: https://app.test.com"), "{head}");
    assert!(head.contains("access-control-max-age: 7200"), "{head}");
    assert!(head.contains("x-served-by: sluice"), "{head}");
    let (status, head) = raw_http(
        &http,
        "POST /traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\n{}",
    );
    assert_eq!(status, 200, "{head}");
    agent.stop();
}

/// Sends a raw HTTP/1.1 request; returns the status and the whole answer.
fn raw_http(addr: &str, request: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, answer)
}

/// `sluice print-config` writes every component's settings with defaults
/// filled in; read back, that is the same config, component for component.
#[test]
fn print_config_of_every_collector_config_loads_back_to_the_same_config() {
    for file in accepted_files() {
        let sources = sluice::service::ConfigSources { configs: vec![file.display().to_string()], sets: Vec::new() };
        let printed = sluice::service::catalog::effective_config(&sources, false)
            .unwrap_or_else(|e| panic!("print-config {}:\n{e}", file.display()));
        let mut original = sluice::service::load_sources(&sources).unwrap();
        // print-config states each pipeline's channel bound, the default included.
        let bounds: Vec<_> = original
            .service
            .pipelines
            .iter()
            .map(|(id, p)| (id.clone(), sluice::service::ChannelCapacity::of(&original, p)))
            .collect();
        for (id, bound) in bounds {
            original.service.pipelines.get_mut(&id).unwrap().channel_capacity = Some(bound);
        }
        let again = sluice::service::load(&printed, &env)
            .unwrap_or_else(|e| panic!("{} printed as\n{printed}\ndoes not load:\n{e}", file.display()));
        for (id, spec) in &original.receivers {
            assert!(again.receivers.get(id) == Some(spec), "{}: receiver {id} differs:\n{printed}", file.display());
        }
        for (id, spec) in &original.processors {
            assert!(again.processors.get(id) == Some(spec), "{}: processor {id} differs:\n{printed}", file.display());
        }
        for (id, spec) in &original.exporters {
            assert!(again.exporters.get(id) == Some(spec), "{}: exporter {id} differs:\n{printed}", file.display());
        }
        for (id, spec) in &original.extensions {
            assert!(again.extensions.get(id) == Some(spec), "{}: extension {id} differs:\n{printed}", file.display());
        }
        assert_eq!(again.service, original.service, "{}:\n{printed}", file.display());
        assert!(again == original, "{}", file.display());
    }
}

/// Every accepted Collector config also runs: with its listening ports moved
/// to free ones, its files and directories moved into a temp dir and its
/// certificate paths pointing at certificates made here, the agent starts,
/// serves its self-metrics and exits 0 on SIGTERM.
#[test]
fn every_collector_config_starts_serves_and_stops() {
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = common::make_pki(pki_dir.path());
    let ca_pem = std::fs::read_to_string(&pki.ca).unwrap();
    let mut failed = Vec::new();
    for file in accepted_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let text = text
            .replace("/var/lib/mycert.pem", &pki.ca)
            .replace("/var/lib/client.pem", &pki.client_cert)
            .replace("/var/lib/client-key.pem", &pki.client_key)
            .replace("cert_file: certfile", &format!("cert_file: {}", pki.client_cert))
            .replace("key_file: keyfile", &format!("key_file: {}", pki.client_key))
            .replace(
                "        -----BEGIN CERTIFICATE-----\n        MIIBxx==\n        -----END CERTIFICATE-----\n",
                &ca_pem.lines().map(|l| format!("        {l}\n")).collect::<String>(),
            );
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        if let Err(e) = run_briefly(&name, &[text.as_str()]) {
            failed.push(e);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// Every YAML example in the README, merged over a config that defines the
/// components the examples name without defining (`otlp`, `batch`,
/// `otlp/tempo`, ...) and with the files it names made here, loads and runs.
#[test]
fn every_readme_example_loads_and_runs() {
    const BASE: &str = "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n      \
                        http:\n        endpoint: 127.0.0.1:4318\nprocessors:\n  batch:\n  memory_limiter:\n    \
                        limit_mib: 512\n    check_interval: 1s\n  tail_sampling:\n    policies: [{name: errors, \
                        type: status_code, status_code: {status_codes: [ERROR]}}]\nexporters:\n  nop:\n  otlp:\n    \
                        endpoint: tempo:4317\n  otlp/tempo:\n    endpoint: tempo:4317\n  prometheus:\n    \
                        endpoint: 127.0.0.1:8889\nservice:\n  pipelines:\n    traces/base:\n      \
                        receivers: [otlp]\n      exporters: [nop]\n";
    let readme = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let env_re = regex::Regex::new(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}").unwrap();
    let mut blocks = Vec::new();
    let mut lines = readme.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        if line.trim() == "```yaml" {
            let text: Vec<&str> = lines.by_ref().map(|(_, l)| l).take_while(|l| l.trim() != "```").collect();
            blocks.push((n + 1, text.join("\n") + "\n"));
        }
    }
    assert!(blocks.len() >= 10, "{} yaml blocks in README.md", blocks.len());
    let tmp = tempfile::tempdir().unwrap();
    // The files the examples name under /etc, made here.
    let pki = common::make_pki(tmp.path());
    let htpasswd = tmp.path().join("htpasswd");
    std::fs::write(&htpasswd, "reader:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n").unwrap();
    let files = [
        ("/etc/sluice/tls/server.pem", pki.server_cert.as_str()),
        ("/etc/sluice/tls/server-key.pem", pki.server_key.as_str()),
        ("/etc/sluice/tls/clients-ca.pem", pki.ca.as_str()),
        ("/etc/ssl/ca.pem", pki.ca.as_str()),
        ("/etc/sluice/htpasswd", htpasswd.to_str().unwrap()),
    ];
    let mut failed = Vec::new();
    for (line, text) in &blocks {
        let mut text = env_re.replace_all(text, "example-$1").into_owned();
        for (from, to) in files {
            text = text.replace(from, to);
        }
        let (base_path, example_path) = (tmp.path().join("base.yaml"), tmp.path().join("example.yaml"));
        std::fs::write(&base_path, BASE).unwrap();
        std::fs::write(&example_path, &text).unwrap();
        let sources = sluice::service::ConfigSources {
            configs: vec![base_path.display().to_string(), example_path.display().to_string()],
            sets: Vec::new(),
        };
        if let Err(e) = sluice::service::load_sources(&sources) {
            failed.push(format!("README.md line {line}: the example does not load:\n{e}\n{text}"));
            continue;
        }
        if let Err(e) = run_briefly(&format!("README.md line {line}"), &[BASE, &text]) {
            failed.push(e);
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

/// Runs sluice on `configs` (merged in order) with listening ports moved to
/// free ones (`${env:X:-default}` taking its default first) and
/// `/tmp/sluice-collector-configs` and `/var/lib/sluice` moved into a temp
/// dir: it must start, answer GET /metrics and exit 0 on SIGTERM.
fn run_briefly(name: &str, configs: &[&str]) -> Result<(), String> {
    use common::{free_port, http_get, wait_until, PeerChild};
    use std::collections::HashMap;
    use std::time::Duration;

    let port_re = regex::Regex::new(r"\b(127\.0\.0\.1|localhost|0\.0\.0\.0):(\d{2,5})\b").unwrap();
    let env_default_re = regex::Regex::new(r"\$\{env:[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let mut moved: HashMap<String, u16> = HashMap::new();
    let mut cmd = Command::new(sluice_bin());
    let mut shown = String::new();
    for (i, text) in configs.iter().enumerate() {
        let text = env_default_re.replace_all(text, "$1").into_owned();
        let text = port_re
            .replace_all(&text, |c: &regex::Captures| {
                let port = *moved.entry(c[2].to_string()).or_insert_with(free_port);
                format!("{}:{port}", &c[1])
            })
            .into_owned();
        let dir = tmp.path().to_str().unwrap();
        let text = text.replace("/tmp/sluice-collector-configs", dir).replace("/var/lib/sluice", dir);
        let path = tmp.path().join(format!("config-{i}.yaml"));
        std::fs::write(&path, &text).unwrap();
        cmd.arg("--config").arg(&path);
        shown.push_str(&text);
    }
    let metrics_port = match moved.get("8888") {
        Some(p) => *p,
        None => {
            let p = free_port();
            cmd.args(["--set", &format!("service::telemetry::metrics::address=127.0.0.1:{p}")]);
            p
        }
    };
    let log_path = tmp.path().join("sluice.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut agent =
        PeerChild::spawn(cmd.stdin(std::process::Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log)).unwrap();
    let read_log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    wait_until(&format!("{name} to start"), Duration::from_secs(20), || {
        read_log().contains("sluice started") || matches!(agent.try_wait(), Ok(Some(_)))
    });
    if !read_log().contains("sluice started") {
        return Err(format!("{name} did not start:\n{}\nconfig:\n{shown}", read_log()));
    }
    match http_get(&format!("127.0.0.1:{metrics_port}"), "/metrics") {
        Ok((200, body)) if body.contains("otelcol_") => {}
        other => return Err(format!("{name}: GET /metrics answered {other:?}")),
    }
    match agent.terminate(Duration::from_secs(20)) {
        Some(status) if status.success() => Ok(()),
        other => Err(format!("{name}: SIGTERM ended it as {other:?}:\n{}", read_log())),
    }
}

/// The Collector's README writes a header no HTTP/2 peer takes; the
/// Collector starts and fails every export with it, sluice refuses it at
/// start with the path and a hint.
#[test]
fn an_invalid_exporter_header_name_is_refused_at_start() {
    for (exporter, endpoint) in [("otlp", "backend:4317"), ("otlphttp", "http://backend:4318")] {
        let text = format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  {exporter}:\n    endpoint: {endpoint}\n    \
             headers:\n      \"can you have a . here?\": \"F0000000\"\n      good-one: \"x\\ny\"\nservice:\n  pipelines:\n    \
             traces:\n      receivers: [otlp]\n      exporters: [{exporter}]\n"
        );
        let shown = sluice::service::load(&text, &env).expect_err("must be refused").to_string();
        assert!(
            shown.contains(&format!("exporters::{exporter}::headers (line 8)"))
                && shown.contains("\"can you have a . here?\" is not a valid header name")
                && shown.contains("e.g. x-scope-orgid"),
            "{shown}"
        );
        assert!(
            shown.contains(&format!("exporters::{exporter}::headers::good-one"))
                && shown.contains("the value of \"good-one\" is not a valid header value"),
            "{shown}"
        );
    }
}
