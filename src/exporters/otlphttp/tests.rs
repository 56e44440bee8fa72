use super::*;
use crate::config::Duration as CfgDuration;
use crate::exporters::otlp::tests::traces;
use crate::exporters::otlp_common::{Compression, TlsClientConfig};
use crate::telemetry::metrics::Registry;
use bytes::Bytes;
use http::Method;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use std::collections::BTreeMap;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use crate::exporters::test_server::{Answer, Seen};

async fn serve(answers: Vec<Answer>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    crate::exporters::test_server::serve(answers, 200).await
}

fn config(endpoint: String) -> OtlpHttpExporterConfig {
    OtlpHttpExporterConfig {
        endpoint: Some(endpoint),
        traces_endpoint: None,
        metrics_endpoint: None,
        logs_endpoint: None,
        tls: TlsClientConfig::default(),
        headers: BTreeMap::new(),
        compression: Compression::Gzip,
        compression_params: Default::default(),
        encoding: HttpEncoding::Proto,
        timeout: CfgDuration::from_secs(5),
        ..Default::default()
    }
}

fn gunzip(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(b).read_to_end(&mut out).unwrap();
    out
}

#[test]
fn urls_per_signal() {
    let mut cfg = config("http://h:4318/".into());
    assert_eq!(signal_url(&cfg, Signal::Traces).unwrap(), "http://h:4318/v1/traces");
    assert_eq!(signal_url(&cfg, Signal::Logs).unwrap(), "http://h:4318/v1/logs");
    cfg.metrics_endpoint = Some("https://m/custom".into());
    assert_eq!(signal_url(&cfg, Signal::Metrics).unwrap(), "https://m/custom");
    cfg.endpoint = None;
    assert!(signal_url(&cfg, Signal::Traces).is_err());
    cfg.traces_endpoint = Some("h:4318".into());
    assert!(signal_url(&cfg, Signal::Traces).unwrap_err().contains("http://"));
}

#[test]
fn constructor_needs_no_runtime_and_reports_tls_files() {
    assert!(OtlpHttpExporter::new(&config("http://collector.invalid:4318".into()), Signal::Logs, "otlphttp").is_ok());
    let mut cfg = config("https://collector.invalid:4318".into());
    cfg.tls.ca_file = Some("/nonexistent/ca.pem".into());
    let err = OtlpHttpExporter::new(&cfg, Signal::Logs, "otlphttp").err().unwrap();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn retry_after_accepts_seconds_and_dates() {
    let now = UNIX_EPOCH + Duration::from_secs(784_111_770);
    assert_eq!(retry_after("2", now), Some(Duration::from_secs(2)));
    assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now), Some(Duration::from_secs(7)));
    assert_eq!(retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
    assert_eq!(retry_after("soon", now), None);
}

#[test]
fn statuses_are_classified_per_the_spec() {
    let h = HeaderMap::new();
    let now = SystemTime::now();
    for code in [429u16, 502, 503, 504] {
        let r = classify_response(StatusCode::from_u16(code).unwrap(), &h, b"", Signal::Traces, now);
        assert!(matches!(r, Err(ExportError::Retryable { retry_after: None, .. })), "{code}");
    }
    for code in [400u16, 401, 403, 404, 413, 500] {
        let r = classify_response(StatusCode::from_u16(code).unwrap(), &h, b"nope", Signal::Traces, now);
        assert!(matches!(r, Err(ExportError::Permanent { .. })), "{code}");
    }
    let long = "x".repeat(5000);
    match classify_response(StatusCode::BAD_REQUEST, &h, long.as_bytes(), Signal::Logs, now) {
        Err(ExportError::Permanent { message }) => assert!(message.len() < 600, "{}", message.len()),
        other => panic!("{other:?}"),
    }
    assert_eq!(classify_response(StatusCode::ACCEPTED, &h, b"\xff", Signal::Metrics, now), Ok(Default::default()));
    let mut json = HeaderMap::new();
    json.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    let body = br#"{"partialSuccess":{"rejectedLogRecords":"4","errorMessage":"quota"}}"#;
    assert_eq!(
        classify_response(StatusCode::OK, &json, body, Signal::Logs, now),
        Ok(ExportOutcome { rejected: 4, message: Some("quota".into()) })
    );
    let body = br#"{"code":3,"message":"bad attribute","details":[]}"#;
    match classify_response(StatusCode::BAD_REQUEST, &json, body, Signal::Logs, now) {
        Err(ExportError::Permanent { message }) => assert_eq!(message, "HTTP 400 Bad Request: bad attribute"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn posts_gzip_protobuf_with_headers() {
    let (addr, seen) = serve(vec![]).await;
    let mut cfg = config(format!("http://{addr}/"));
    cfg.headers.insert("X-Tenant".into(), "acme".into());
    let exp = OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").unwrap();
    let req = traces(2);
    assert_eq!(exp.export(&Batch::Traces(req.clone())).await, Ok(ExportOutcome::default()));
    let seen = seen.lock().unwrap();
    let s = &seen[0];
    assert_eq!(s.method, Method::POST);
    assert_eq!(s.path, "/v1/traces");
    assert_eq!(s.headers["content-type"], "application/x-protobuf");
    assert_eq!(s.headers["content-encoding"], "gzip");
    assert_eq!(s.headers["x-tenant"], "acme");
    assert!(s.headers["user-agent"].to_str().unwrap().starts_with("sluice/"));
    assert_eq!(ExportTraceServiceRequest::decode(gunzip(&s.body).as_slice()).unwrap(), req);
}

#[tokio::test]
async fn json_encoding_with_zstd() {
    let partial = serde_json::json!({"partialSuccess": {"rejectedSpans": 1, "errorMessage": "dup"}});
    let (addr, seen) =
        serve(vec![(200, vec![("content-type", "application/json".into())], partial.to_string().into_bytes())]).await;
    let mut cfg = config(format!("http://{addr}"));
    cfg.encoding = HttpEncoding::Json;
    cfg.compression = Compression::Zstd;
    let exp = OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").unwrap();
    let req = traces(1);
    let outcome = exp.export(&Batch::Traces(req.clone())).await.unwrap();
    assert_eq!(outcome, ExportOutcome { rejected: 1, message: Some("dup".into()) });
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].headers["content-type"], "application/json");
    assert_eq!(seen[0].headers["content-encoding"], "zstd");
    let body = zstd::decode_all(seen[0].body.as_slice()).unwrap();
    let text = String::from_utf8(body.clone()).unwrap();
    assert!(text.contains("\"traceId\":\"01010101010101010101010101010101\""), "{text}");
    assert_eq!(serde_json::from_slice::<ExportTraceServiceRequest>(&body).unwrap(), req);
}

#[tokio::test]
async fn answers_map_to_outcomes() {
    let status = rpc::RpcStatus { code: 3, message: "span name too long".into(), details: vec![] };
    let partial = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess { rejected_spans: 2, error_message: "old".into() }),
    };
    let proto = || ("content-type", "application/x-protobuf".to_string());
    let (addr, _seen) = serve(vec![
        (503, vec![("retry-after", "2".into())], vec![]),
        (400, vec![proto()], status.encode_to_vec()),
        (200, vec![proto()], partial.encode_to_vec()),
    ])
    .await;
    let mut cfg = config(format!("http://{addr}"));
    cfg.compression = Compression::None;
    let exp = OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").unwrap();
    let batch = Batch::Traces(traces(3));
    match exp.export(&batch).await {
        Err(ExportError::Retryable { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(2))),
        other => panic!("{other:?}"),
    }
    match exp.export(&batch).await {
        Err(ExportError::Permanent { message }) => {
            assert!(message.contains("400") && message.contains("span name too long"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(exp.export(&batch).await, Ok(ExportOutcome { rejected: 2, message: Some("old".into()) }));
}

#[tokio::test]
async fn network_errors_and_timeouts_are_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let exp = OtlpHttpExporter::new(&config(format!("http://{addr}")), Signal::Traces, "otlphttp").unwrap();
    let err = exp.export(&Batch::Traces(traces(1))).await.unwrap_err();
    assert!(matches!(err, ExportError::Retryable { .. }), "{err:?}");

    // Accepts but never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut cfg = config(format!("http://{}", silent.local_addr().unwrap()));
    cfg.timeout = CfgDuration(Duration::from_millis(200));
    let exp = OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").unwrap();
    let err = exp.export(&Batch::Traces(traces(1))).await.unwrap_err();
    assert!(matches!(err, ExportError::Retryable { .. }), "{err:?}");
    drop(silent);
}

#[tokio::test]
async fn runner_retries_503_then_counts_sent() {
    let (addr, seen) = serve(vec![(503, vec![], vec![]), (503, vec![], vec![])]).await;
    let exp = OtlpHttpExporter::new(&config(format!("http://{addr}")), Signal::Traces, "otlphttp").unwrap();
    let reg = Registry::new();
    let runner = crate::exporters::test_server::fast_retry_runner(exp, &reg, "otlphttp", Signal::Traces);
    runner.send_with_retry(&Batch::Traces(traces(3)).into(), &mut tokio::sync::watch::channel(false).1).await;
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(reg.value("otelcol_exporter_sent_spans_total", &[("exporter", "otlphttp")]), Some(3.0));
    assert_eq!(
        reg.value("sluice_exporter_retries_total", &[("exporter", "otlphttp"), ("data_type", "traces")]),
        Some(2.0)
    );
    assert_eq!(reg.value("otelcol_exporter_send_failed_spans_total", &[("exporter", "otlphttp")]), Some(0.0));
}

#[tokio::test]
async fn https_with_ca_file_and_skip_verify() {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/exporters/otlp_common/testdata");
    let certs: Vec<CertificateDer<'static>> =
        rustls_pemfile::certs(&mut std::fs::read(format!("{dir}/server.pem")).unwrap().as_slice())
            .collect::<Result<_, _>>()
            .unwrap();
    let key: PrivateKeyDer<'static> =
        rustls_pemfile::private_key(&mut std::fs::read(format!("{dir}/server.key")).unwrap().as_slice())
            .unwrap()
            .unwrap();
    let mut server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    server.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(Mutex::new(0usize));
    let hits2 = hits.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let hits = hits2.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let svc = service_fn(move |_req: http::Request<Incoming>| {
                    *hits.lock().unwrap() += 1;
                    async { Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(Bytes::new()))) }
                });
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(tls), svc).await;
            });
        }
    });
    let ca = TlsClientConfig { ca_file: Some(format!("{dir}/ca.pem")), ..Default::default() };
    let skip = TlsClientConfig { insecure_skip_verify: true, ..Default::default() };
    let renamed = TlsClientConfig { server_name_override: Some("backend.test".into()), ..ca.clone() };
    for (i, (host, tls)) in
        [("localhost", ca.clone()), ("127.0.0.1", skip), ("127.0.0.1", renamed)].into_iter().enumerate()
    {
        let mut cfg = config(format!("https://{host}:{port}"));
        cfg.tls = tls;
        let exp = OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").unwrap();
        assert_eq!(exp.export(&Batch::Traces(traces(1))).await, Ok(ExportOutcome::default()), "case {i}");
    }
    assert_eq!(*hits.lock().unwrap(), 3);
    let mut cfg = config(format!("https://127.0.0.1:{port}"));
    cfg.tls = TlsClientConfig { server_name_override: Some("other.test".into()), ..ca };
    let exp = OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").unwrap();
    let err = exp.export(&Batch::Traces(traces(1))).await.unwrap_err();
    assert!(matches!(err, ExportError::Retryable { .. }), "{err:?}");
}
