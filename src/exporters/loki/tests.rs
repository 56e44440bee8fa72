use super::config::*;
use super::*;
use crate::config::Duration as CfgDuration;
use crate::telemetry::metrics::Registry;
use opentelemetry_proto::tonic::common::v1::{ArrayValue, InstrumentationScope};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::data::fixtures::kv;
use crate::exporters::test_server::{Answer, Seen};

async fn serve(answers: Vec<Answer>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    crate::exporters::test_server::serve(answers, 204).await
}

fn config(endpoint: &str) -> LokiExporterConfig {
    LokiExporterConfig {
        endpoint: Some(endpoint.to_string()),
        tenant_id: None,
        auth: LokiAuth::default(),
        tls: Default::default(),
        headers: BTreeMap::new(),
        encoding: LokiEncoding::Protobuf,
        compression: LokiCompression::None,
        format: LokiLineFormat::Text,
        labels: LabelsConfig::default(),
        max_labels: DEFAULT_MAX_LABELS,
        timeout: CfgDuration::from_secs(5),
        sending_queue: Default::default(),
        retry_on_failure: Default::default(),
        default_labels_enabled: None,
    }
}

fn s(v: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) })
}

fn record(ts: u64, sev: &str, body: &str, attrs: Vec<KeyValue>) -> LogRecord {
    LogRecord { time_unix_nano: ts, severity_text: sev.into(), body: s(body), attributes: attrs, ..Default::default() }
}

fn request(resources: Vec<(Vec<KeyValue>, Vec<LogRecord>)>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: resources
            .into_iter()
            .map(|(attrs, records)| ResourceLogs {
                resource: Some(Resource { attributes: attrs, ..Default::default() }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope { name: "lib".into(), ..Default::default() }),
                    log_records: records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

fn metrics() -> (Registry, LokiExporterMetrics) {
    let reg = Registry::new();
    let m = LokiExporterMetrics::new(&reg, "loki");
    (reg, m)
}

fn unsnappy(b: &[u8]) -> PushRequest {
    PushRequest::decode(snap::raw::Decoder::new().decompress_vec(b).unwrap().as_slice()).unwrap()
}

#[test]
fn push_url_accepts_base_or_full_url() {
    assert_eq!(push_url("http://loki:3100"), "http://loki:3100/loki/api/v1/push");
    assert_eq!(push_url("http://loki:3100/"), "http://loki:3100/loki/api/v1/push");
    assert_eq!(push_url("https://l/loki/api/v1/push"), "https://l/loki/api/v1/push");
    assert_eq!(push_url("https://l/prefix"), "https://l/prefix/loki/api/v1/push");
}

#[test]
fn names_are_sanitized_to_loki_rules() {
    assert_eq!(sanitize_name("service.name"), "service_name");
    assert_eq!(sanitize_name("k8s.pod-name/x"), "k8s_pod_name_x");
    assert_eq!(sanitize_name("3d"), "_3d");
    assert_eq!(sanitize_name("héllo"), "h_llo");
    assert_eq!(sanitize_name(""), "_");
    assert_eq!(sanitize_name("ok_Name9"), "ok_Name9");
}

#[test]
fn labels_are_sorted_and_escaped() {
    let labels = vec![
        ("service_name".to_string(), "a\"b\\c\nd".to_string()),
        ("level".to_string(), "info".to_string()),
        ("cloud_region".to_string(), "eu".to_string()),
    ];
    assert_eq!(render_labels(&labels), r#"{cloud_region="eu", level="info", service_name="a\"b\\c\nd"}"#);
    assert_eq!(render_labels(&[]), "{}");
}

#[test]
fn severity_becomes_level() {
    let mut r = LogRecord { severity_text: "WARN".into(), severity_number: 17, ..Default::default() };
    assert_eq!(level(&r).as_deref(), Some("warn"));
    r.severity_text.clear();
    for (n, want) in [(1, "trace"), (5, "debug"), (9, "info"), (12, "info"), (13, "warn"), (17, "error"), (24, "fatal")]
    {
        r.severity_number = n;
        assert_eq!(level(&r).as_deref(), Some(want), "{n}");
    }
    r.severity_number = 0;
    assert_eq!(level(&r), None);
}

#[test]
fn records_group_into_streams_sorted_by_time() {
    let res_a = vec![kv("service.name", s("api")), kv("k8s.pod.name", s("p1")), kv("host.name", s("h1"))];
    let res_b = vec![kv("host.name", s("h2"))];
    let req = request(vec![
        (
            res_a.clone(),
            vec![
                record(30, "INFO", "third", vec![]),
                record(10, "INFO", "first", vec![]),
                record(20, "ERROR", "err", vec![]),
                record(10, "INFO", "first-again", vec![]),
            ],
        ),
        (res_b, vec![record(5, "", "no service", vec![])]),
        (res_a, vec![record(15, "info", "second", vec![])]),
    ]);
    let builder = StreamBuilder::new(&config("http://x"));
    let streams = builder.streams(&req, 99);
    let labels: Vec<&str> = streams.iter().map(|s| s.labels.as_str()).collect();
    assert_eq!(
        labels,
        [
            r#"{k8s_pod_name="p1", level="info", service_name="api"}"#,
            r#"{k8s_pod_name="p1", level="error", service_name="api"}"#,
            r#"{service_name="unknown_service"}"#,
        ]
    );
    let lines: Vec<&str> = streams[0].entries.iter().map(|e| e.line.as_str()).collect();
    // Sorted by timestamp, stable for equal ones, across resources.
    assert_eq!(lines, ["first", "first-again", "second", "third"]);
    assert_eq!(streams.iter().map(|s| s.entries.len()).sum::<usize>(), 6);
    // Not a label: resource attributes go to structured metadata.
    let sm = &streams[0].entries[0].structured_metadata;
    assert!(sm.contains(&("host_name".into(), "h1".into())), "{sm:?}");
    assert!(sm.contains(&("scope_name".into(), "lib".into())), "{sm:?}");
    assert!(!sm.iter().any(|(k, _)| k == "service_name" || k == "k8s_pod_name"), "{sm:?}");
}

#[test]
fn structured_metadata_has_attributes_and_ids() {
    let mut r =
        record(0, "", "", vec![kv("http.status", Some(AnyValue { value: Some(any_value::Value::IntValue(500)) }))]);
    r.observed_time_unix_nano = 7;
    r.trace_id = vec![0xab; 16];
    r.span_id = vec![0x01; 8];
    r.attributes.push(kv(
        "tags",
        Some(AnyValue {
            value: Some(any_value::Value::ArrayValue(ArrayValue { values: vec![s("a").unwrap(), s("b").unwrap()] })),
        }),
    ));
    let req = request(vec![(vec![kv("service.name", s("svc"))], vec![r])]);
    let streams = StreamBuilder::new(&config("http://x")).streams(&req, 99);
    let e = &streams[0].entries[0];
    assert_eq!(e.timestamp_ns, 7, "observed time when time is unset");
    assert_eq!(e.line, "");
    let sm: BTreeMap<_, _> = e.structured_metadata.iter().cloned().collect();
    assert_eq!(sm["http_status"], "500");
    assert_eq!(sm["tags"], r#"["a","b"]"#);
    assert_eq!(sm["trace_id"], "ab".repeat(16));
    assert_eq!(sm["span_id"], "01".repeat(8));
    assert_eq!(streams[0].labels, r#"{service_name="svc"}"#);

    let req = request(vec![(vec![], vec![LogRecord::default()])]);
    assert_eq!(StreamBuilder::new(&config("http://x")).streams(&req, 99)[0].entries[0].timestamp_ns, 99);
}

#[test]
fn configured_labels_and_max_labels() {
    let mut cfg = config("http://x");
    cfg.labels = LabelsConfig { resource: Some(vec!["host.name".into()]), attributes: vec!["http.method".into()] };
    cfg.max_labels = 3;
    let res = vec![kv("service.name", s("svc")), kv("host.name", s("h")), kv("k8s.pod.name", s("p"))];
    let r = record(1, "info", "x", vec![kv("http.method", s("GET")), kv("user", s("u"))]);
    let streams = StreamBuilder::new(&cfg).streams(&request(vec![(res, vec![r])]), 0);
    // service_name, level, host_name fit; http_method is over max_labels.
    assert_eq!(streams[0].labels, r#"{host_name="h", level="info", service_name="svc"}"#);
    let sm: BTreeMap<_, _> = streams[0].entries[0].structured_metadata.iter().cloned().collect();
    assert_eq!(sm["http_method"], "GET");
    assert_eq!(sm["k8s_pod_name"], "p", "not configured, so metadata");
    assert_eq!(sm["user"], "u");
}

#[test]
fn a_taken_label_name_or_empty_value_is_no_label() {
    let mut cfg = config("http://x");
    cfg.labels.attributes = vec!["k8s.pod.name".into(), "empty".into()];
    let res = vec![kv("k8s.pod.name", s("from-resource")), kv("cloud.region", s(""))];
    let r = record(1, "", "x", vec![kv("k8s.pod.name", s("from-record")), kv("empty", s(""))]);
    let streams = StreamBuilder::new(&cfg).streams(&request(vec![(res, vec![r])]), 0);
    assert_eq!(streams[0].labels, r#"{k8s_pod_name="from-resource", service_name="unknown_service"}"#);
    let sm = &streams[0].entries[0].structured_metadata;
    assert!(sm.contains(&("k8s_pod_name".into(), "from-record".into())), "{sm:?}");
}

#[test]
fn body_types_and_json_format() {
    let mut r = record(1, "INFO", "", vec![kv("k", s("v"))]);
    r.body = Some(AnyValue { value: Some(any_value::Value::IntValue(42)) });
    r.trace_id = vec![1; 16];
    let req = request(vec![(vec![kv("service.name", s("svc"))], vec![r])]);
    let mut cfg = config("http://x");
    assert_eq!(StreamBuilder::new(&cfg).streams(&req, 0)[0].entries[0].line, "42");
    cfg.format = LokiLineFormat::Json;
    let line = StreamBuilder::new(&cfg).streams(&req, 0)[0].entries[0].line.clone();
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["body"], 42);
    assert_eq!(v["attributes"]["k"], "v");
    assert_eq!(v["resources"]["service.name"], "svc");
    assert_eq!(v["traceid"], "01".repeat(16));
    assert_eq!(v["severity"], "INFO");
}

#[test]
fn json_push_body() {
    let req = request(vec![(
        vec![kv("service.name", s("svc"))],
        vec![record(2_000_000_001, "info", "b", vec![kv("a", s("1"))]), record(1, "info", "a", vec![])],
    )]);
    let streams = StreamBuilder::new(&config("http://x")).streams(&req, 0);
    let v: serde_json::Value = serde_json::from_slice(&encode_json(&streams)).unwrap();
    let st = &v["streams"][0];
    assert_eq!(st["stream"], serde_json::json!({"service_name": "svc", "level": "info"}));
    assert_eq!(st["values"][0][0], "1");
    assert_eq!(st["values"][0][1], "a");
    assert_eq!(st["values"][1][0], "2000000001");
    assert_eq!(st["values"][1][2]["a"], "1");
}

#[test]
fn statuses_are_classified() {
    let h = HeaderMap::new();
    let now = SystemTime::now();
    assert_eq!(classify_response(StatusCode::NO_CONTENT, &h, b"", now), Ok(ExportOutcome::default()));
    for code in [429u16, 500, 502, 503, 504] {
        let r = classify_response(StatusCode::from_u16(code).unwrap(), &h, b"", now);
        assert!(matches!(r, Err(ExportError::Retryable { .. })), "{code}");
    }
    for code in [400u16, 401, 404, 413] {
        let r = classify_response(StatusCode::from_u16(code).unwrap(), &h, b"entry out of order", now);
        match r {
            Err(ExportError::Permanent { message }) => assert!(message.contains("entry out of order"), "{message}"),
            other => panic!("{code}: {other:?}"),
        }
    }
    let mut retry = HeaderMap::new();
    retry.insert(http::header::RETRY_AFTER, HeaderValue::from_static("3"));
    match classify_response(StatusCode::TOO_MANY_REQUESTS, &retry, b"", now) {
        Err(ExportError::Retryable { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn reject_reasons_from_loki_messages() {
    let bad = StatusCode::BAD_REQUEST;
    let cases = [
        ("entry with timestamp 2024-01-01 ignored, reason: 'entry out of order' for stream: {a=\"b\"}", "out_of_order"),
        ("entry for stream '{a=\"b\"}' has timestamp too old: 2020-01-01, oldest acceptable timestamp is: 2024-01-01", "too_old"),
        ("entry too far behind, entry timestamp is: x, oldest acceptable timestamp is: y", "too_old"),
        ("Max entry size '256' bytes exceeded for stream '{a=\"b\"}' while adding an entry with length '300' bytes", "line_too_long"),
        ("Per stream rate limit exceeded (limit: 3MB/sec)", "rate_limited"),
        ("error parsing labels", "other"),
    ];
    for (body, want) in cases {
        assert_eq!(reject_reason(bad, body), want, "{body}");
    }
    assert_eq!(reject_reason(StatusCode::TOO_MANY_REQUESTS, ""), "rate_limited");
}

#[test]
fn basic_auth_is_base64() {
    assert_eq!(base64(b""), "");
    assert_eq!(base64(b"f"), "Zg==");
    assert_eq!(base64(b"fo"), "Zm8=");
    assert_eq!(base64(b"foo"), "Zm9v");
    assert_eq!(base64(b"Aladdin:open sesame"), "QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
}

#[tokio::test]
async fn posts_snappy_protobuf_with_tenant_and_auth() {
    let (addr, seen) = serve(vec![]).await;
    let mut cfg = config(&format!("http://{addr}"));
    cfg.tenant_id = Some("acme".into());
    cfg.auth.basic = Some(BasicAuth { username: "u".into(), password: "p".into() });
    cfg.headers.insert("X-Extra".into(), "1".into());
    let (_reg, m) = metrics();
    let exp = LokiExporter::new(&cfg, "loki", m).unwrap();
    let req = request(vec![(
        vec![kv("service.name", s("svc"))],
        vec![record(2_000_000_005, "info", "later", vec![]), record(1_000_000_000, "info", "earlier", vec![])],
    )]);
    assert_eq!(exp.export(&Batch::Logs(req)).await, Ok(ExportOutcome::default()));
    let seen = seen.lock().unwrap();
    let s0 = &seen[0];
    assert_eq!(s0.path, "/loki/api/v1/push");
    assert_eq!(s0.headers["content-type"], "application/x-protobuf");
    assert_eq!(s0.headers["x-scope-orgid"], "acme");
    assert_eq!(s0.headers["authorization"], format!("Basic {}", base64(b"u:p")));
    assert_eq!(s0.headers["x-extra"], "1");
    assert!(s0.headers.get("content-encoding").is_none());
    let push = unsnappy(&s0.body);
    assert_eq!(push.streams.len(), 1);
    assert_eq!(push.streams[0].labels, r#"{level="info", service_name="svc"}"#);
    let e = &push.streams[0].entries;
    assert_eq!(e[0].line, "earlier");
    assert_eq!(e[0].timestamp, Some(Timestamp { seconds: 1, nanos: 0 }));
    assert_eq!(e[1].timestamp, Some(Timestamp { seconds: 2, nanos: 5 }));
    assert!(e[0].structured_metadata.contains(&LabelPairAdapter { name: "scope_name".into(), value: "lib".into() }));
}

#[tokio::test]
async fn json_gzip_with_bearer_to_full_push_url() {
    let (addr, seen) = serve(vec![]).await;
    let mut cfg = config(&format!("http://{addr}/loki/api/v1/push"));
    cfg.encoding = LokiEncoding::Json;
    cfg.compression = LokiCompression::Gzip;
    cfg.auth.bearer_token = Some("tok".into());
    let (_reg, m) = metrics();
    let exp = LokiExporter::new(&cfg, "loki", m).unwrap();
    let req = request(vec![(vec![], vec![record(5, "debug", "hello", vec![])])]);
    exp.export(&Batch::Logs(req)).await.unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].path, "/loki/api/v1/push");
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(seen[0].headers["content-encoding"], "gzip");
    assert_eq!(seen[0].headers["authorization"], "Bearer tok");
    let mut body = Vec::new();
    flate2::read::GzDecoder::new(seen[0].body.as_slice()).read_to_end(&mut body).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["streams"][0]["stream"]["service_name"], "unknown_service");
    assert_eq!(v["streams"][0]["stream"]["level"], "debug");
    assert_eq!(v["streams"][0]["values"][0], serde_json::json!(["5", "hello", {"scope_name": "lib"}]));
}

#[tokio::test]
async fn rejections_are_counted_by_reason() {
    let (addr, _seen) = serve(vec![
        (400, vec![], b"entry out of order".to_vec()),
        (429, vec![("retry-after", "1".into())], b"Ingestion rate limit exceeded".to_vec()),
        (500, vec![], b"boom".to_vec()),
    ])
    .await;
    let (reg, m) = metrics();
    let exp = LokiExporter::new(&config(&format!("http://{addr}")), "loki", m).unwrap();
    let batch = Batch::Logs(request(vec![(vec![], vec![record(1, "", "x", vec![])])]));
    match exp.export(&batch).await {
        Err(ExportError::Permanent { message }) => assert!(message.contains("entry out of order"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(exp.export(&batch).await, Err(ExportError::Retryable { retry_after: Some(_), .. })));
    assert!(matches!(exp.export(&batch).await, Err(ExportError::Retryable { .. })));
    let value = |reason| reg.value("sluice_exporter_loki_rejected_total", &[("exporter", "loki"), ("reason", reason)]);
    assert_eq!(value("out_of_order"), Some(1.0));
    assert_eq!(value("rate_limited"), Some(1.0));
    assert_eq!(value("other"), Some(0.0), "a 5xx is no rejection");
}

#[tokio::test]
async fn runner_retries_429_then_counts_sent() {
    let (addr, seen) = serve(vec![(429, vec![], vec![]), (503, vec![], vec![])]).await;
    let (reg, m) = metrics();
    let exp = LokiExporter::new(&config(&format!("http://{addr}")), "loki", m).unwrap();
    let runner = crate::exporters::test_server::fast_retry_runner(exp, &reg, "loki", crate::data::Signal::Logs);
    let records = (0..3).map(|i| record(i, "info", "x", vec![])).collect();
    runner
        .send_with_retry(
            &Batch::Logs(request(vec![(vec![], records)])).into(),
            &mut tokio::sync::watch::channel(false).1,
        )
        .await;
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(reg.value("otelcol_exporter_sent_log_records_total", &[("exporter", "loki")]), Some(3.0));
    assert_eq!(reg.value("sluice_exporter_retries_total", &[("exporter", "loki"), ("data_type", "logs")]), Some(2.0));
}

#[test]
fn constructor_needs_no_network() {
    let (_r, m) = metrics();
    assert!(LokiExporter::new(&config("http://loki.invalid:3100"), "loki", m.clone()).is_ok());
    let mut cfg = config("loki:3100");
    assert!(LokiExporter::new(&cfg, "loki", m.clone()).err().unwrap().contains("http://"));
    cfg.endpoint = None;
    assert!(LokiExporter::new(&cfg, "loki", m).err().unwrap().contains("endpoint"));
}

fn loki_yaml(body: &str) -> String {
    format!(
        "receivers:\n  otlp:\n    protocols:\n      http:\n        endpoint: 127.0.0.1:4318\nexporters:\n  loki:\n{body}\n\
         service:\n  pipelines:\n    logs:\n      receivers: [otlp]\n      exporters: [loki]\n"
    )
}

fn config_errors(body: &str) -> Vec<crate::config::error::ConfigError> {
    match crate::service::load(&loki_yaml(body), &|k| (k == "LOKI_TOKEN").then(|| "secret".to_string())) {
        Ok(_) => vec![],
        Err(e) => e.0,
    }
}

#[test]
fn config_loads_with_env_credentials() {
    let text = loki_yaml(
        "    endpoint: http://loki:3100\n    tenant_id: team-a\n    encoding: json\n    compression: gzip\n\
         \x20   format: json\n    auth:\n      bearer_token: ${env:LOKI_TOKEN}\n    labels:\n      resource: [service.name, host.name]\n\
         \x20     attributes: [http.method]\n    max_labels: 5\n",
    );
    let cfg = crate::service::load(&text, &|k| (k == "LOKI_TOKEN").then(|| "secret".to_string())).unwrap();
    let id = crate::config::ComponentId::parse("loki").unwrap();
    let Some(c) = cfg.exporters.get(&id).and_then(|e| e.downcast_ref::<LokiExporterConfig>()) else { panic!("loki") };
    assert_eq!(c.auth.bearer_token.as_deref(), Some("secret"));
    assert_eq!(c.encoding, LokiEncoding::Json);
    assert_eq!(c.compression, LokiCompression::Gzip);
    assert_eq!(c.format, LokiLineFormat::Json);
    assert_eq!(c.max_labels, 5);
    assert_eq!(c.resource_labels(), ["service.name", "host.name"]);
    assert_eq!(c.tenant_id.as_deref(), Some("team-a"));
    assert!(config_errors("    endpoint: http://loki:3100/loki/api/v1/push").is_empty());
}

#[test]
fn config_errors_have_paths_and_hints() {
    let cases: &[(&str, &str, &str)] = &[
        ("    tenant_id: a", "exporters::loki::endpoint", "required"),
        ("    endpoint: loki:3100", "exporters::loki::endpoint", "http://"),
        ("    endpoint: http://l\n    max_labels: 0", "exporters::loki::max_labels", "at least 1"),
        (
            "    endpoint: http://l\n    auth:\n      basic: {username: u, password: p}\n      bearer_token: t",
            "exporters::loki::auth",
            "both",
        ),
        (
            "    endpoint: http://l\n    labels:\n      resource: [a.b, a_b]",
            "exporters::loki::labels::resource::1",
            "both become the label a_b",
        ),
        (
            "    endpoint: http://l\n    labels:\n      attributes: [__name]",
            "exporters::loki::labels::attributes::0",
            "reserved",
        ),
        ("    endpoint: http://l\n    compression: gzip", "exporters::loki::compression", "json"),
    ];
    for (body, path, text) in cases {
        let errors = config_errors(body);
        assert!(
            errors.iter().any(|e| e.path == *path && e.message.contains(text) && e.line.is_some()),
            "{body}: {errors:#?}"
        );
    }
    let errors = config_errors("    endpoint: http://l\n    labelz: {}");
    assert!(errors.iter().any(|e| e.message.contains("labelz")), "{errors:#?}");
}

#[test]
fn loki_is_logs_only() {
    let text = loki_yaml("    endpoint: http://l").replace("    logs:\n", "    traces:\n");
    let errors = crate::service::load(&text, &|_| None).unwrap_err().0;
    assert!(errors.iter().any(|e| e.message.contains("loki")), "{errors:#?}");
}
