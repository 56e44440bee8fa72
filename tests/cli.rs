//! The command line as a user meets it: --version, components, validate, and
//! a run of the embedded default config that stops cleanly on SIGTERM.

mod common;

use common::PeerChild;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn sluice() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
}

fn write_config(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

#[test]
fn version_names_the_binary() {
    let out = sluice().arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("sluice {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn components_lists_every_builtin_with_aliases() {
    let out = sluice().arg("components").output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "receivers:",
        "otlp (alias otlp_grpc) [traces, metrics, logs]",
        "processors:",
        "batch",
        "memory_limiter",
        "exporters:",
        "otlphttp (alias otlp_http)",
        "prometheusremotewrite (alias prometheus_remote_write) [metrics]",
        "filelog (alias file_log) [logs]",
        "prometheus [metrics]",
        "debug",
        "file",
        "nop [traces, metrics, logs]",
        "extensions:",
        "health_check",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
}

#[test]
fn components_type_prints_its_settings_and_schema() {
    let out = sluice().args(["components", "batch"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("processor batch: "), "{text}");
    let row = |field: &str| -> Vec<String> {
        let line =
            text.lines().find(|l| l.split_whitespace().next() == Some(field)).unwrap_or_else(|| panic!("{text}"));
        line.split_whitespace().map(str::to_string).collect()
    };
    assert_eq!(row("send_batch_size")[..3], ["send_batch_size", "integer", "8192"]);
    assert_eq!(row("timeout")[..3], ["timeout", "duration", "200ms"]);

    let out = sluice().args(["components", "otlphttp", "--schema"]).output().unwrap();
    assert!(out.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(schema["properties"]["encoding"]["default"], "proto", "{schema}");
    assert_eq!(schema["additionalProperties"], false, "{schema}");

    let out = sluice().args(["components", "tail_sampler"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        "sluice: no component type \"tail_sampler\"; did you mean \"tail_sampling\"?"
    );
}

#[test]
fn print_config_prints_the_merged_config_with_defaults_and_secrets_redacted() {
    let base = write_config(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:14317\n\
         exporters:\n  otlp:\n    endpoint: ${env:SLUICE_TEST_BACKEND}\n    headers: {api-key: k3y}\n\
         service:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [otlp]}\n",
    );
    let out = sluice()
        .arg("print-config")
        .arg("--config")
        .arg(base.path())
        .args(["--config", "yaml:exporters::otlp::timeout: 7s", "--set", "exporters::otlp::compression=zstd"])
        .env("SLUICE_TEST_BACKEND", "tempo:4317")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "        endpoint: 127.0.0.1:14317\n",
        "    endpoint: tempo:4317\n",
        "    timeout: 7s\n",
        "    compression: zstd\n",
        "      api-key: \"[REDACTED]\"\n",
        "      initial_interval: 5s\n",
        "      queue_size: 1000\n",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    assert!(!text.contains("k3y"), "{text}");

    let unredacted = sluice()
        .args(["print-config", "--mode", "unredacted", "--config"])
        .arg(base.path())
        .env("SLUICE_TEST_BACKEND", "tempo:4317")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&unredacted.stdout).contains("      api-key: k3y\n"));

    // An invalid config prints its errors, as validate does, and nothing else.
    let bad = sluice()
        .args(["print-config", "--config"])
        .arg(base.path())
        .args(["--set", "exporters::otlp::timeout=soon"])
        .env("SLUICE_TEST_BACKEND", "tempo:4317")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    assert!(bad.stdout.is_empty());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("exporters::otlp::timeout"), "{err}");
}

/// The channel bound each pipeline runs with is printed, also when the
/// config leaves it out: the default follows the pipeline's memory limiter.
#[test]
fn print_config_shows_each_pipelines_channel_capacity() {
    let cfg = write_config(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:14317\n\
         processors:\n  memory_limiter:\n    check_interval: 1s\n    limit_mib: 100\n    spike_limit_mib: 20\n\
         exporters:\n  nop:\n\
         service:\n  pipelines:\n\
         \x20   traces: {receivers: [otlp], processors: [memory_limiter], exporters: [nop]}\n\
         \x20   logs: {receivers: [otlp], exporters: [nop]}\n\
         \x20   metrics: {receivers: [otlp], exporters: [nop], channel_capacity: 256}\n",
    );
    let out = sluice().args(["print-config", "--config"]).arg(cfg.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    let capacity_of = |pipeline: &str| {
        let at = text.find(&format!("    {pipeline}:\n")).unwrap_or_else(|| panic!("no {pipeline} in:\n{text}"));
        let rest = &text[at..];
        let line = rest.lines().find(|l| l.trim_start().starts_with("channel_capacity:")).unwrap();
        line.trim().trim_start_matches("channel_capacity:").trim().to_string()
    };
    // Half the limiter's 20 MiB spike limit; the default 64 MiB without one; as set.
    assert_eq!(capacity_of("traces"), "10MiB", "{text}");
    assert_eq!(capacity_of("logs"), "64MiB", "{text}");
    assert_eq!(capacity_of("metrics"), "256", "{text}");
}

#[test]
fn validate_accepts_the_embedded_default_config() {
    let out = sluice().arg("validate").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "embedded default config: valid (3 pipelines)");
}

#[test]
fn validate_reports_every_error_with_path_and_hint() {
    let cfg = write_config(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n\
         exporters:\n  otlp/tempo:\n    endpoint: tempo:4317\n    retry_on_failure:\n      max_intervall: 30s\n\
         service:\n  pipelines:\n    traces:\n      receivers: [otlp]\n      exporters: [otlp/tempoo]\n",
    );
    let out = sluice().args(["validate", "--config"]).arg(cfg.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("2 errors"), "{err}");
    assert!(err.contains("exporters::otlp/tempo::retry_on_failure::max_intervall (line 10)"), "{err}");
    assert!(err.contains("did you mean \"max_interval\""), "{err}");
    assert!(err.contains("service::pipelines::traces::exporters"), "{err}");
    assert!(err.contains("otlp/tempo"), "{err}");
}

#[test]
fn run_refuses_an_invalid_config_before_starting() {
    let cfg = write_config("receivers:\n  otlpp:\n");
    let out = sluice().arg("--config").arg(cfg.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("receivers::otlpp"), "{err}");
    assert!(err.contains("did you mean \"otlp\""), "{err}");
}

fn http_get(addr: &str, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let code = buf.split_whitespace().nth(1)?.parse().ok()?;
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    Some((code, body))
}

/// The README's first command: the embedded default config on its fixed
/// ports. SIGTERM must drain and exit 0.
#[test]
fn default_config_runs_and_stops_cleanly_on_sigterm() {
    // Killed on drop: a failed assertion must not leave it on the fixed ports.
    // The README's SLUICE_LOG example adds to the configured level.
    let mut child = PeerChild::spawn(
        sluice().env("SLUICE_LOG", "sluice::exporters=debug").stdout(Stdio::null()).stderr(Stdio::piped()),
    )
    .unwrap();
    let start = Instant::now();
    let mut ready = None;
    while start.elapsed() < Duration::from_secs(20) {
        if let Some((200, body)) = http_get("127.0.0.1:13133", "/health/ready") {
            ready = Some(body);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ready_body = ready.unwrap_or_else(|| {
        let _ = child.kill();
        let mut err = String::new();
        child.stderr.take().unwrap().read_to_string(&mut err).ok();
        panic!("agent never became ready; its log:\n{err}");
    });
    assert!(ready_body.contains("\"status\":\"ready\""), "{ready_body}");
    let (code, status) = http_get("127.0.0.1:13133", "/").unwrap();
    assert_eq!(code, 200);
    assert!(status.contains("Server available"), "{status}");
    let (code, metrics) = http_get("127.0.0.1:8888", "/metrics").unwrap();
    assert_eq!(code, 200);
    assert!(metrics.contains("otelcol_process_cpu_seconds_total"), "{metrics}");
    // The Collector's identity labels, on every series.
    let cpu = metrics.lines().find(|l| l.starts_with("otelcol_process_cpu_seconds_total")).unwrap();
    assert!(cpu.contains("service_name=\"sluice\""), "{cpu}");
    assert!(cpu.contains(&format!("service_version=\"{}\"", env!("CARGO_PKG_VERSION"))), "{cpu}");
    let id = cpu.split("service_instance_id=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default();
    assert!(id.len() == 36 && id.as_bytes()[14] == b'4', "a version-4 UUID: {cpu}");
    for port in [4317, 4318] {
        assert!(TcpStream::connect(("127.0.0.1", port)).is_ok(), "nothing listening on {port}");
    }
    child.signal(libc::SIGTERM);
    let status = child.wait().unwrap();
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert_eq!(status.code(), Some(0), "log:\n{err}");
    assert!(err.contains("shutdown complete"), "log:\n{err}");
    // Info lines stay with SLUICE_LOG set; a pipe gets no colour codes; the
    // start-up log says where everything listens and sends.
    assert!(err.contains("sluice started"), "log:\n{err}");
    assert!(!err.contains('\u{1b}'), "ANSI codes into a pipe:\n{err}");
    assert!(err.contains("self-metrics served at http://127.0.0.1:8888/metrics"), "log:\n{err}");
    assert!(err.contains("health served at http://127.0.0.1:13133/health/ready"), "log:\n{err}");
    assert!(err.contains("receiver listening") && err.contains("127.0.0.1:4317"), "log:\n{err}");
    assert!(err.contains("exporter started") && err.contains("destination=the agent's log"), "log:\n{err}");
}

/// The Collector's command line: several `--config` sources merged, `--set`
/// on top, and every mistake of a component in one run.
#[test]
fn validate_merges_configs_and_applies_set() {
    let base = write_config(
        "receivers:\n  otlp:\n    protocols:\n      grpc:\n        endpoint: 127.0.0.1:4317\n\
         exporters:\n  debug:\nservice:\n  pipelines:\n    traces: {receivers: [otlp], exporters: [debug]}\n",
    );
    let over = write_config("processors:\n  batch:\nservice:\n  pipelines:\n    traces:\n      processors: [batch]\n");
    let (base_path, over_path) = (base.path().display().to_string(), over.path().display().to_string());
    let out = sluice()
        .args(["validate", "--config", &base_path, "--config", &over_path])
        .args(["--set", "processors::batch::timeout=2s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(stdout.trim(), format!("{base_path} + {over_path}: valid (1 pipelines)"));

    // A bad --set value: the error names its path; three mistakes in one
    // component are three errors.
    let out = sluice()
        .args(["validate", "--config", &base_path, "--config", &over_path])
        .args(["--set", "processors::batch::timeout=soon"])
        .args(["--set", "processors::batch::send_batch_size=many"])
        .args(["--set", "processors::batch::send_batch_max_sise=10"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("invalid configuration: 3 errors"), "{stderr}");
    assert!(stderr.contains("processors::batch::timeout: "), "{stderr}");
    assert!(stderr.contains("processors::batch::send_batch_size: expected a whole number"), "{stderr}");
    assert!(
        stderr.contains("processors::batch::send_batch_max_sise: unknown field \"send_batch_max_sise\"; hint: did you mean \"send_batch_max_size\"?"),
        "{stderr}"
    );
}
