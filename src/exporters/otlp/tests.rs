use super::*;
use crate::config::Duration as CfgDuration;
use crate::exporters::otlp_common::{Compression, TlsClientConfig};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tonic::codec::CompressionEncoding;

type Answer = Result<ExportTraceServiceResponse, Status>;

/// A trace receiver that records what arrives and answers from a script
/// (then success once the script is used up).
#[derive(Clone, Default)]
struct Recorder {
    seen: Arc<Mutex<Vec<(MetadataMap, ExportTraceServiceRequest)>>>,
    answers: Arc<Mutex<VecDeque<Answer>>>,
}

#[tonic::async_trait]
impl TraceService for Recorder {
    async fn export(
        &self,
        req: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, Status> {
        let md = req.metadata().clone();
        self.seen.lock().unwrap().push((md, req.into_inner()));
        let answer = self.answers.lock().unwrap().pop_front();
        answer.unwrap_or_else(|| Ok(Default::default())).map(tonic::Response::new)
    }
}

async fn serve(answers: Vec<Answer>) -> (SocketAddr, Recorder) {
    let rec = Recorder { answers: Arc::new(Mutex::new(answers.into())), ..Default::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let svc = TraceServiceServer::new(rec.clone())
        .accept_compressed(CompressionEncoding::Gzip)
        .accept_compressed(CompressionEncoding::Zstd);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(svc)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    (addr, rec)
}

fn config(endpoint: String) -> OtlpExporterConfig {
    OtlpExporterConfig {
        endpoint,
        tls: TlsClientConfig { insecure: true, ..Default::default() },
        headers: BTreeMap::new(),
        compression: Compression::Gzip,
        compression_params: Default::default(),
        timeout: CfgDuration::from_secs(5),
        ..Default::default()
    }
}

pub(crate) fn traces(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![1; 16],
            span_id: vec![(i as u8).wrapping_add(1); 8],
            name: format!("span-{i}"),
            start_time_unix_nano: 1_000,
            end_time_unix_nano: 2_000,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[test]
fn endpoints_parse_as_the_collector_does() {
    let t = Target::parse("collector:4317", false).unwrap();
    assert_eq!(t, Target { host: "collector".into(), port: 4317, tls: true });
    assert!(!Target::parse("collector:4317", true).unwrap().tls);
    assert!(!Target::parse("http://collector:4317", false).unwrap().tls);
    assert!(Target::parse("https://collector", true).unwrap().tls);
    assert_eq!(Target::parse("https://collector", false).unwrap().port, 443);
    assert_eq!(Target::parse("[::1]:4317", true).unwrap().host, "::1");
    assert!(Target::parse("unix:///tmp/s", false).is_err());
}

#[test]
fn statuses_are_classified_per_the_spec() {
    let retryable = |s: Status| matches!(classify_status(&s, "x"), ExportError::Retryable { .. });
    for code in
        [Code::Cancelled, Code::DeadlineExceeded, Code::Aborted, Code::OutOfRange, Code::Unavailable, Code::DataLoss]
    {
        assert!(retryable(Status::new(code, "")), "{code:?}");
    }
    for code in [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied, Code::Unimplemented] {
        assert!(!retryable(Status::new(code, "")), "{code:?}");
    }
    assert!(!retryable(Status::new(Code::ResourceExhausted, "no hint")));
    let details = rpc::status_with_retry_info(8, "slow down", Duration::from_secs(3));
    match classify_status(&Status::with_details(Code::ResourceExhausted, "slow down", details.into()), "x") {
        ExportError::Retryable { retry_after, .. } => assert_eq!(retry_after, Some(Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
}

#[test]
fn constructor_reports_bad_headers_and_tls_files_without_network() {
    let mut cfg = config("collector.invalid:4317".into());
    cfg.headers.insert("bad header".into(), "v".into());
    assert!(OtlpExporter::new(&cfg, Signal::Traces, "otlp").err().unwrap().contains("bad header"));
    assert!(OtlpExporter::new(&config("collector.invalid:4317".into()), Signal::Traces, "otlp").is_ok());
    let mut cfg = config("https://collector.invalid:4317".into());
    cfg.tls.ca_file = Some("/nonexistent/ca.pem".into());
    let err = OtlpExporter::new(&cfg, Signal::Traces, "otlp").err().unwrap();
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn sends_gzip_with_metadata_and_the_same_content() {
    let (addr, rec) = serve(vec![]).await;
    let mut cfg = config(format!("http://{addr}"));
    cfg.headers.insert("X-Tenant".into(), "acme".into());
    let exp = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
    let req = traces(3);
    let outcome = exp.export(&Batch::Traces(req.clone())).await.unwrap();
    assert_eq!(outcome, ExportOutcome::default());
    let seen = rec.seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].1, req);
    assert_eq!(seen[0].0.get("x-tenant").unwrap(), "acme");
    assert_eq!(seen[0].0.get("grpc-encoding").unwrap(), "gzip");
}

#[tokio::test]
async fn zstd_and_no_compression() {
    let (addr, rec) = serve(vec![]).await;
    for (compression, expected) in [(Compression::Zstd, Some("zstd")), (Compression::None, None)] {
        let mut cfg = config(format!("{addr}"));
        cfg.compression = compression;
        let exp = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
        exp.export(&Batch::Traces(traces(1))).await.unwrap();
        let seen = rec.seen.lock().unwrap();
        let enc = seen.last().unwrap().0.get("grpc-encoding").map(|v| v.to_str().unwrap().to_string());
        assert_eq!(enc.as_deref(), expected);
    }
}

#[tokio::test]
async fn server_statuses_map_to_outcomes() {
    let details = rpc::status_with_retry_info(14, "busy", Duration::from_millis(2500));
    let (addr, _rec) = serve(vec![
        Err(Status::with_details(Code::Unavailable, "busy", details.into())),
        Err(Status::invalid_argument("bad span")),
        Ok(ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess { rejected_spans: 2, error_message: "too old".into() }),
        }),
    ])
    .await;
    let exp = OtlpExporter::new(&config(format!("http://{addr}")), Signal::Traces, "otlp").unwrap();
    let batch = Batch::Traces(traces(3));
    match exp.export(&batch).await {
        Err(ExportError::Retryable { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_millis(2500))),
        other => panic!("{other:?}"),
    }
    match exp.export(&batch).await {
        Err(ExportError::Permanent { message }) => assert!(message.contains("bad span"), "{message}"),
        other => panic!("{other:?}"),
    }
    let outcome = exp.export(&batch).await.unwrap();
    assert_eq!(outcome, ExportOutcome { rejected: 2, message: Some("too old".into()) });
}

#[tokio::test]
async fn refused_connection_is_retryable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut cfg = config(format!("http://{addr}"));
    cfg.timeout = CfgDuration::from_secs(2);
    let exp = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
    let err = exp.export(&Batch::Traces(traces(1))).await.unwrap_err();
    assert!(matches!(err, ExportError::Retryable { .. }), "{err:?}");
}

const TESTDATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/exporters/otlp_common/testdata");

fn testdata(name: &str) -> String {
    format!("{TESTDATA}/{name}")
}

/// A TLS trace receiver with the test server certificate (localhost,
/// backend.test, 127.0.0.1), optionally requiring a client certificate.
async fn serve_tls(require_client_cert: bool) -> (SocketAddr, Recorder) {
    use tonic::transport::{Certificate, Identity, ServerTlsConfig};
    let rec = Recorder::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let cert = std::fs::read(testdata("server.pem")).unwrap();
    let key = std::fs::read(testdata("server.key")).unwrap();
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if require_client_cert {
        tls = tls.client_ca_root(Certificate::from_pem(std::fs::read(testdata("ca.pem")).unwrap()));
    }
    let server = tonic::transport::Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(TraceServiceServer::new(rec.clone()).accept_compressed(CompressionEncoding::Gzip));
    tokio::spawn(server.serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)));
    (addr, rec)
}

#[tokio::test]
async fn tls_with_ca_file_server_name_override_and_skip_verify() {
    let (addr, rec) = serve_tls(false).await;
    let port = addr.port();
    let ca = Some(testdata("ca.pem"));
    let cases: Vec<(String, TlsClientConfig)> = vec![
        (format!("https://localhost:{port}"), TlsClientConfig { ca_file: ca.clone(), ..Default::default() }),
        // Bare host:port is TLS by default, verified against the IP SAN.
        (format!("127.0.0.1:{port}"), TlsClientConfig { ca_file: ca.clone(), ..Default::default() }),
        (
            format!("https://127.0.0.1:{port}"),
            TlsClientConfig {
                ca_file: ca.clone(),
                server_name_override: Some("backend.test".into()),
                ..Default::default()
            },
        ),
        (format!("https://127.0.0.1:{port}"), TlsClientConfig { insecure_skip_verify: true, ..Default::default() }),
    ];
    for (i, (endpoint, tls)) in cases.into_iter().enumerate() {
        let mut cfg = config(endpoint.clone());
        cfg.tls = tls;
        let exp = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
        let outcome = exp.export(&Batch::Traces(traces(1))).await;
        assert_eq!(outcome, Ok(ExportOutcome::default()), "case {i}: {endpoint}");
        assert_eq!(rec.seen.lock().unwrap().len(), i + 1);
    }

    // A name the certificate does not carry fails the handshake: retryable,
    // as every connection failure.
    let mut cfg = config(format!("https://127.0.0.1:{port}"));
    cfg.tls = TlsClientConfig { ca_file: ca, server_name_override: Some("other.test".into()), ..Default::default() };
    cfg.timeout = CfgDuration::from_secs(2);
    let exp = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
    let err = exp.export(&Batch::Traces(traces(1))).await.unwrap_err();
    assert!(matches!(err, ExportError::Retryable { .. }), "{err:?}");
}

#[tokio::test]
async fn mutual_tls_sends_the_client_certificate() {
    let (addr, rec) = serve_tls(true).await;
    let tls = TlsClientConfig { ca_file: Some(testdata("ca.pem")), ..Default::default() };
    let mut cfg = config(format!("https://localhost:{}", addr.port()));
    cfg.tls = tls.clone();
    cfg.timeout = CfgDuration::from_secs(2);
    let without = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
    assert!(without.export(&Batch::Traces(traces(1))).await.is_err());
    cfg.tls =
        TlsClientConfig { cert_file: Some(testdata("server.pem")), key_file: Some(testdata("server.key")), ..tls };
    let with = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
    assert_eq!(with.export(&Batch::Traces(traces(1))).await, Ok(ExportOutcome::default()));
    assert_eq!(rec.seen.lock().unwrap().len(), 1);
}

/// An h2c server answering every call with a response compressed as grpc-go
/// answers: in the request's own `grpc-encoding`, whatever the client accepts.
async fn answering_in_kind(partial: ExportTraceServiceResponse) -> SocketAddr {
    use http_body_util::BodyExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let partial = partial.clone();
            let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let partial = partial.clone();
                async move {
                    let encoding = req.headers().get("grpc-encoding").unwrap().to_str().unwrap().to_string();
                    let _ = req.into_body().collect().await;
                    let c = match encoding.as_str() {
                        "gzip" => Compression::Gzip,
                        "zstd" => Compression::Zstd,
                        _ => Compression::Snappy,
                    };
                    let enc = crate::exporters::otlp_common::Encoder::new(c, &Default::default(), Transport::Grpc);
                    let framed = crate::exporters::otlp_common::Encoder::compress(
                        &enc.unwrap(),
                        &[partial.encode_to_vec()],
                        vec![1, 0, 0, 0, 0],
                        Transport::Grpc,
                    )
                    .unwrap();
                    let mut framed = framed;
                    let len = (framed.len() - 5) as u32;
                    framed[1..5].copy_from_slice(&len.to_be_bytes());
                    let mut trailers = http::HeaderMap::new();
                    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                    let body = http_body_util::Full::new(bytes::Bytes::from(framed))
                        .map_err(|never| match never {})
                        .with_trailers(async move { Some(Ok::<_, std::convert::Infallible>(trailers)) });
                    let resp = http::Response::builder()
                        .header("content-type", "application/grpc")
                        .header("grpc-encoding", encoding)
                        .body(body)
                        .unwrap();
                    Ok::<_, std::convert::Infallible>(resp)
                }
            });
            tokio::spawn(
                hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), svc),
            );
        }
    });
    addr
}

#[tokio::test]
async fn answers_compressed_in_the_requests_codec_are_read() {
    let partial = ExportTraceServiceResponse {
        partial_success: Some(ExportTracePartialSuccess { rejected_spans: 1, error_message: "one too old".into() }),
    };
    let addr = answering_in_kind(partial).await;
    for compression in [Compression::Gzip, Compression::Zstd, Compression::Snappy] {
        let mut cfg = config(format!("http://{addr}"));
        cfg.compression = compression;
        let exp = OtlpExporter::new(&cfg, Signal::Traces, "otlp").unwrap();
        let outcome = exp.export(&Batch::Traces(traces(2))).await.unwrap();
        assert_eq!(outcome.rejected, 1, "{compression:?}");
        assert_eq!(outcome.message.as_deref(), Some("one too old"), "{compression:?}");
    }
}
