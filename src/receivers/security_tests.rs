//! The `otlp` receiver's listeners with TLS, mTLS, authenticators and
//! connection limits, driven by real TLS, gRPC and HTTP clients.

use super::otlp::config::{GrpcServerConfig, HttpServerConfig, OtlpReceiverConfig, Protocols};
use super::otlp::test_support::{logs, post, traces, Sink};
use super::tls::test_certs::{make, TestPki};
use super::tls::TlsServerConfig;
use super::{ReceiverContext, ReceiverOutput, RunningReceiver};
use crate::config::{ComponentId, Duration};
use crate::data::Signal;
use crate::extensions::auth::config::{AuthSettings, BearerTokenAuthConfig};
use crate::extensions::ExtensionSpec;
use crate::telemetry::Registry;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::{
    logs::v1::logs_service_client::LogsServiceClient, trace::v1::trace_service_client::TraceServiceClient,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Running {
    sink: Arc<Sink>,
    registry: Registry,
    running: RunningReceiver,
    _stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    fn addr(&self, transport: &str) -> SocketAddr {
        self.running.endpoints.iter().find(|(t, _)| *t == transport).map(|(_, a)| *a).unwrap()
    }

    fn count(&self, name: &str, transport: &str, reason: Option<&str>) -> u64 {
        let mut labels = vec![("receiver", "otlp"), ("transport", transport)];
        if let Some(r) = reason {
            labels.push(("reason", r));
        }
        self.registry.value(name, &labels).unwrap_or(0.0) as u64
    }
}

fn protocols() -> Protocols {
    Protocols {
        grpc: Some(GrpcServerConfig { endpoint: "127.0.0.1:0".into(), ..Default::default() }),
        http: Some(HttpServerConfig { endpoint: "127.0.0.1:0".into(), ..Default::default() }),
    }
}

async fn start(protocols: Protocols, extensions: BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>) -> Running {
    let sink = Sink::recording();
    let mut output = ReceiverOutput::default();
    for s in Signal::ALL {
        output.add(s, sink.clone());
    }
    let registry = Registry::new();
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = ReceiverContext {
        id: "otlp".into(),
        output,
        registry: registry.clone(),
        shutdown,
        extensions: Arc::new(extensions),
    };
    let running = super::otlp::start(&OtlpReceiverConfig { protocols }, ctx).await.unwrap();
    Running { sink, registry, running, _stop: stop }
}

fn tls(pki: &TestPki, mtls: bool) -> Option<TlsServerConfig> {
    Some(TlsServerConfig {
        cert_file: Some(pki.server_cert_file.clone()),
        key_file: Some(pki.server_key_file.clone()),
        client_ca_file: mtls.then(|| pki.ca_file.clone()),
        ..Default::default()
    })
}

async fn grpc_channel(addr: SocketAddr, pki: &TestPki, client_cert: bool) -> Result<tonic::transport::Channel, String> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&pki.ca_pem)).domain_name("localhost");
    if client_cert {
        let cert = std::fs::read(&pki.client_cert_file).unwrap();
        let key = std::fs::read(&pki.client_key_file).unwrap();
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    let endpoint = tonic::transport::Endpoint::from_shared(format!("https://localhost:{}", addr.port()))
        .unwrap()
        .tls_config(tls)
        .map_err(|e| e.to_string())?;
    endpoint.connect().await.map_err(|e| format!("{e:?}"))
}

/// A TLS client for HTTP/1.1: the status, `WWW-Authenticate` and body of one POST.
async fn https_post(
    addr: SocketAddr,
    pki: &TestPki,
    client_cert: bool,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Result<(http::StatusCode, Option<String>, Bytes), String> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(rustls_pemfile::certs(&mut pki.ca_pem.as_bytes()).next().unwrap().unwrap()).unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut cfg = if client_cert {
        let pem = std::fs::read(&pki.client_cert_file).unwrap();
        let certs = rustls_pemfile::certs(&mut pem.as_slice()).collect::<Result<Vec<_>, _>>().unwrap();
        let key =
            rustls_pemfile::private_key(&mut std::fs::read(&pki.client_key_file).unwrap().as_slice()).unwrap().unwrap();
        builder.with_client_auth_cert(certs, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = tokio::net::TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp).await.map_err(|e| e.to_string())?;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut req = http::Request::post("/v1/traces").header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = send.send_request(req.body(Full::new(Bytes::from(body))).unwrap()).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    let challenge = resp.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string());
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok((status, challenge, body))
}

const PB: &str = "application/x-protobuf";

fn encoded(n: usize) -> Vec<u8> {
    prost::Message::encode_to_vec(&traces(n))
}

#[tokio::test]
async fn tls_and_mtls_on_both_listeners() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make(dir.path());
    let mut p = protocols();
    p.grpc.as_mut().unwrap().tls = tls(&pki, true);
    p.http.as_mut().unwrap().tls = tls(&pki, false);
    let r = start(p, BTreeMap::new()).await;

    // gRPC with mTLS: a client certificate is required.
    let ch = grpc_channel(r.addr("grpc"), &pki, true).await.unwrap();
    TraceServiceClient::new(ch).export(traces(3)).await.unwrap();
    let without_cert = match grpc_channel(r.addr("grpc"), &pki, false).await {
        Ok(ch) => TraceServiceClient::new(ch).export(traces(1)).await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    assert!(without_cert.is_err(), "a client without a certificate was served");
    // A plain-text client does not get in either.
    let plain = tonic::transport::Endpoint::from_shared(format!("http://{}", r.addr("grpc"))).unwrap();
    let plain_result = match plain.connect().await {
        Ok(ch) => LogsServiceClient::new(ch).export(logs(1)).await.map(|_| ()).map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    assert!(plain_result.is_err());

    // HTTP with TLS, no client certificate needed.
    let (status, _, _) = https_post(r.addr("http"), &pki, false, &[("content-type", PB)], encoded(2)).await.unwrap();
    assert_eq!(status, http::StatusCode::OK);
    // A plain-text HTTP client fails the handshake.
    let plain = post(r.addr("http"), "/v1/traces", &[("content-type", PB)], encoded(1));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), tokio::spawn(plain)).await;

    assert_eq!(r.sink.batches().iter().map(|b| b.item_count()).sum::<usize>(), 5);
    assert!(r.count("sluice_receiver_tls_handshake_failures_total", "grpc", None) >= 2);
    assert_eq!(r.count("sluice_receiver_tls_handshake_failures_total", "http", None), 1);
    // The listeners still serve after the failed handshakes.
    let ch = grpc_channel(r.addr("grpc"), &pki, true).await.unwrap();
    TraceServiceClient::new(ch).export(traces(1)).await.unwrap();
    let (status, _, _) = https_post(r.addr("http"), &pki, true, &[("content-type", PB)], encoded(1)).await.unwrap();
    assert_eq!(status, http::StatusCode::OK);
    assert_eq!(r.sink.batches().iter().map(|b| b.item_count()).sum::<usize>(), 7);
}

fn bearer_extensions() -> BTreeMap<ComponentId, Arc<dyn ExtensionSpec>> {
    let cfg = BearerTokenAuthConfig { token: Some("s3cret".into()), ..Default::default() };
    BTreeMap::from([(ComponentId::parse("bearertokenauth").unwrap(), Arc::new(cfg) as Arc<dyn ExtensionSpec>)])
}

#[tokio::test]
async fn bearer_token_on_both_transports() {
    let mut p = protocols();
    let auth = Some(AuthSettings { authenticator: "bearertokenauth".into(), request_params: None });
    p.grpc.as_mut().unwrap().auth = auth.clone();
    p.http.as_mut().unwrap().auth = auth;
    let r = start(p, bearer_extensions()).await;

    let ch =
        tonic::transport::Endpoint::from_shared(format!("http://{}", r.addr("grpc"))).unwrap().connect().await.unwrap();
    let mut client = TraceServiceClient::new(ch);
    let err = client.export(traces(2)).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    assert_eq!(err.message(), "missing or empty authorization header");
    let mut wrong = tonic::Request::new(traces(2));
    wrong.metadata_mut().insert("authorization", "Bearer nope".parse().unwrap());
    assert_eq!(client.export(wrong).await.unwrap_err().code(), tonic::Code::Unauthenticated);
    let mut right = tonic::Request::new(traces(2));
    right.metadata_mut().insert("authorization", "Bearer s3cret".parse().unwrap());
    client.export(right).await.unwrap();

    // HTTP: 401 with a challenge; a garbage body is not even looked at.
    let a = post(r.addr("http"), "/v1/traces", &[("content-type", PB)], b"not protobuf".to_vec()).await;
    assert_eq!(a.status, http::StatusCode::UNAUTHORIZED);
    assert_eq!(a.header("www-authenticate").as_deref(), Some("Bearer realm=\"sluice\""));
    let st: crate::rpc::RpcStatus = prost::Message::decode(&a.body[..]).unwrap();
    assert_eq!((st.code, st.message.as_str()), (16, "missing or empty authorization header"));
    let a =
        post(r.addr("http"), "/v1/traces", &[("content-type", PB), ("authorization", "Basic czNjcmV0")], encoded(1))
            .await;
    assert_eq!(a.status, http::StatusCode::UNAUTHORIZED);
    let a = post(r.addr("http"), "/v1/traces", &[("content-type", PB), ("authorization", "Bearer s3cret")], encoded(3))
        .await;
    assert_eq!(a.status, http::StatusCode::OK);

    assert_eq!(r.sink.batches().iter().map(|b| b.item_count()).sum::<usize>(), 5);
    let fails = |t, reason| r.count("sluice_receiver_auth_failures_total", t, Some(reason));
    assert_eq!(fails("grpc", "missing_credentials"), 1);
    assert_eq!(fails("grpc", "invalid_credentials"), 1);
    assert_eq!(fails("http", "missing_credentials"), 1);
    assert_eq!(fails("http", "malformed_credentials"), 1);
    let malformed = r.registry.value(
        "sluice_receiver_malformed_requests_total",
        &[("receiver", "otlp"), ("transport", "http"), ("data_type", "traces")],
    );
    assert_eq!(malformed, Some(0.0), "the refused body was decoded");
}

#[tokio::test]
async fn unknown_authenticator_fails_start_with_its_path() {
    let mut p = protocols();
    p.grpc.as_mut().unwrap().auth = Some(AuthSettings { authenticator: "basicauth".into(), request_params: None });
    let (_stop, shutdown) = tokio::sync::watch::channel(false);
    let ctx = ReceiverContext {
        id: "otlp".into(),
        output: ReceiverOutput::default(),
        registry: Registry::new(),
        shutdown,
        extensions: Arc::new(bearer_extensions()),
    };
    let Err(e) = super::otlp::start(&OtlpReceiverConfig { protocols: p }, ctx).await else { panic!("started") };
    assert_eq!(
        e.to_string(),
        "otlp: receivers::otlp::protocols::grpc::auth::authenticator: undefined extension \"basicauth\""
    );
}

/// Reads the server's first HTTP/2 SETTINGS frame after sending the client preface.
async fn server_max_concurrent_streams(addr: SocketAddr) -> Option<u32> {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00").await.unwrap();
    let mut head = [0u8; 9];
    s.read_exact(&mut head).await.unwrap();
    assert_eq!(head[3], 4, "first frame is not SETTINGS");
    let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
    let mut payload = vec![0u8; len];
    s.read_exact(&mut payload).await.unwrap();
    payload
        .chunks(6)
        .find(|c| u16::from_be_bytes([c[0], c[1]]) == 3)
        .map(|c| u32::from_be_bytes([c[2], c[3], c[4], c[5]]))
}

#[tokio::test]
async fn max_concurrent_streams_is_advertised() {
    let mut p = protocols();
    p.grpc.as_mut().unwrap().max_concurrent_streams = 7;
    p.http.as_mut().unwrap().max_concurrent_streams = 9;
    let r = start(p, BTreeMap::new()).await;
    assert_eq!(server_max_concurrent_streams(r.addr("grpc")).await, Some(7));
    assert_eq!(server_max_concurrent_streams(r.addr("http")).await, Some(9));
    // Unset: hyper's own bound, not unlimited.
    let r = start(protocols(), BTreeMap::new()).await;
    assert_eq!(server_max_concurrent_streams(r.addr("http")).await, Some(200));
}

/// Whether the server closed the connection within `within`.
async fn closed_within(s: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn slow_headers_and_idle_connections_are_closed() {
    let mut p = protocols();
    let h = p.http.as_mut().unwrap();
    h.read_header_timeout = Duration::from_millis(400);
    h.idle_timeout = Duration::from_millis(600);
    p.grpc.as_mut().unwrap().keepalive = Some(super::otlp::config::GrpcKeepalive {
        server_parameters: Some(super::otlp::config::KeepaliveServerParameters {
            max_connection_idle: Some(Duration::from_millis(600)),
            ..Default::default()
        }),
        ..Default::default()
    });
    let r = start(p, BTreeMap::new()).await;
    let started = std::time::Instant::now();
    // Slowloris: a request line and half a header, then nothing.
    let mut slow = tokio::net::TcpStream::connect(r.addr("http")).await.unwrap();
    slow.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty").await.unwrap();
    assert!(closed_within(&mut slow, std::time::Duration::from_secs(5)).await, "slow client kept its connection");
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // Connections that send nothing at all, on either listener.
    let mut idle_http = tokio::net::TcpStream::connect(r.addr("http")).await.unwrap();
    let mut idle_grpc = tokio::net::TcpStream::connect(r.addr("grpc")).await.unwrap();
    assert!(closed_within(&mut idle_http, std::time::Duration::from_secs(5)).await);
    assert!(closed_within(&mut idle_grpc, std::time::Duration::from_secs(5)).await);
    let timeouts = |t| {
        r.count("sluice_receiver_connections_timed_out_total", t, Some("read_header_timeout"))
            + r.count("sluice_receiver_connections_timed_out_total", t, Some("idle_timeout"))
    };
    assert_eq!(timeouts("http"), 2);
    assert_eq!(r.count("sluice_receiver_connections_timed_out_total", "grpc", Some("idle_timeout")), 1);
    // A normal request on a fresh connection is unaffected.
    let a = post(r.addr("http"), "/v1/traces", &[("content-type", PB)], encoded(1)).await;
    assert_eq!(a.status, http::StatusCode::OK);
}

#[tokio::test]
async fn cors_preflights_need_no_credentials_but_requests_do() {
    let mut p = protocols();
    p.grpc = None;
    let h = p.http.as_mut().unwrap();
    h.auth = Some(AuthSettings { authenticator: "bearertokenauth".into(), request_params: None });
    h.cors = Some(super::otlp::config::CorsConfig {
        allowed_origins: vec!["https://app.example".into()],
        ..Default::default()
    });
    let r = start(p, bearer_extensions()).await;
    let pre = super::otlp::test_support::request(
        r.addr("http"),
        "OPTIONS",
        "/v1/traces",
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "authorization, content-type"),
        ],
        Vec::new(),
    )
    .await;
    assert_eq!(pre.status, http::StatusCode::NO_CONTENT);
    assert_eq!(pre.header("access-control-allow-origin").as_deref(), None, "authorization is not an allowed header");
    let pre = super::otlp::test_support::request(
        r.addr("http"),
        "OPTIONS",
        "/v1/traces",
        &[("origin", "https://app.example"), ("access-control-request-method", "POST")],
        Vec::new(),
    )
    .await;
    assert_eq!(pre.status, http::StatusCode::NO_CONTENT);
    assert_eq!(pre.header("access-control-allow-origin").as_deref(), Some("https://app.example"));
    // Not a preflight (no Access-Control-Request-Method): credentials needed.
    let a = super::otlp::test_support::request(
        r.addr("http"),
        "OPTIONS",
        "/v1/traces",
        &[("origin", "https://app.example")],
        Vec::new(),
    )
    .await;
    assert_eq!(a.status, http::StatusCode::UNAUTHORIZED);
    let a = post(r.addr("http"), "/v1/traces", &[("content-type", PB), ("origin", "https://app.example")], encoded(1))
        .await;
    assert_eq!(a.status, http::StatusCode::UNAUTHORIZED);
    assert!(r.sink.batches().is_empty());
}

#[tokio::test]
async fn grpc_connections_are_aged_out() {
    let mut p = protocols();
    p.grpc.as_mut().unwrap().keepalive = Some(super::otlp::config::GrpcKeepalive {
        server_parameters: Some(super::otlp::config::KeepaliveServerParameters {
            max_connection_age: Some(Duration::from_millis(300)),
            max_connection_age_grace: Some(Duration::from_millis(300)),
            ..Default::default()
        }),
        ..Default::default()
    });
    let r = start(p, BTreeMap::new()).await;
    let started = std::time::Instant::now();
    // No idle timeout is set: only its age closes this connection.
    let mut conn = tokio::net::TcpStream::connect(r.addr("grpc")).await.unwrap();
    conn.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
    assert!(closed_within(&mut conn, std::time::Duration::from_secs(5)).await, "an aged connection stayed open");
    assert!(started.elapsed() >= std::time::Duration::from_millis(250), "closed before its age");
}

#[tokio::test]
async fn default_config_listens_on_loopback_only() {
    let cfg = crate::service::load::load_agent_config(crate::service::DEFAULT_CONFIG, &|_| None).unwrap();
    let otlp = cfg.receivers.values().next().unwrap();
    let Some(otlp) = otlp.downcast_ref::<OtlpReceiverConfig>() else { panic!("not otlp") };
    let grpc = otlp.protocols.grpc.as_ref().unwrap();
    let http = otlp.protocols.http.as_ref().unwrap();
    assert_eq!((grpc.endpoint.as_str(), http.endpoint.as_str()), ("127.0.0.1:4317", "127.0.0.1:4318"));
    // Bound like the default (same host, any free port): reachable on loopback only.
    let mut p = protocols();
    p.grpc.as_mut().unwrap().endpoint = grpc.endpoint.replace(":4317", ":0");
    p.http.as_mut().unwrap().endpoint = http.endpoint.replace(":4318", ":0");
    let r = start(p, BTreeMap::new()).await;
    for t in ["grpc", "http"] {
        let addr = r.addr(t);
        assert!(addr.ip().is_loopback(), "{t} bound {addr}");
        if let Some(ip) = non_loopback_ip() {
            let other = SocketAddr::new(ip, addr.port());
            assert!(tokio::net::TcpStream::connect(other).await.is_err(), "{t} reachable on {other}");
        }
    }
}

/// An address of this machine other than loopback, if it has one.
fn non_loopback_ip() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("10.255.255.255:9").ok()?;
    Some(s.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback() && !ip.is_unspecified())
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_off_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make(dir.path());
    let mut p = protocols();
    let h = p.http.as_mut().unwrap();
    h.tls = tls(&pki, false);
    h.read_header_timeout = Duration::from_millis(300);
    let r = start(p, BTreeMap::new()).await;
    // Connects, then never sends a ClientHello.
    let mut stalled = tokio::net::TcpStream::connect(r.addr("http")).await.unwrap();
    assert!(closed_within(&mut stalled, std::time::Duration::from_secs(3)).await, "stalled handshake kept open");
    assert_eq!(r.count("sluice_receiver_tls_handshake_failures_total", "http", None), 1);
    let (status, _, _) = https_post(r.addr("http"), &pki, false, &[("content-type", PB)], encoded(1)).await.unwrap();
    assert_eq!(status, http::StatusCode::OK);
}

/// An HTTP/2 frame as raw bytes.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes()[1..].to_vec();
    f.extend_from_slice(&[kind, flags]);
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// What a raw HTTP/2 client saw from the server: PING ACKs, and the
/// GOAWAY's error code and debug data if one came before the end (or `within`).
async fn read_pongs_and_goaway(
    s: &mut tokio::net::TcpStream,
    within: std::time::Duration,
) -> (usize, Option<(u32, Vec<u8>)>) {
    let deadline = tokio::time::Instant::now() + within;
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => bytes.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    let (mut pongs, mut goaway, mut at) = (0, None, 0);
    while at + 9 <= bytes.len() {
        let len = u32::from_be_bytes([0, bytes[at], bytes[at + 1], bytes[at + 2]]) as usize;
        let (kind, flags) = (bytes[at + 3], bytes[at + 4]);
        let Some(payload) = bytes.get(at + 9..at + 9 + len) else { break };
        match kind {
            0x6 if flags & 1 == 1 => pongs += 1,
            0x7 => goaway = Some((u32::from_be_bytes(payload[4..8].try_into().unwrap()), payload[8..].to_vec())),
            _ => {}
        }
        at += 9 + len;
    }
    (pongs, goaway)
}

/// Opens an HTTP/2 connection (preface, empty SETTINGS) and sends `pings`
/// PINGs `every` apart.
async fn pinging_connection(addr: SocketAddr, pings: usize, every: std::time::Duration) -> tokio::net::TcpStream {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut hello = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    hello.extend(h2_frame(0x4, 0, 0, &[]));
    s.write_all(&hello).await.unwrap();
    for i in 0..pings {
        if i > 0 {
            tokio::time::sleep(every).await;
        }
        // A failed write is the server having closed already.
        if s.write_all(&h2_frame(0x6, 0, 0, &[i as u8; 8])).await.is_err() {
            break;
        }
    }
    s
}

#[tokio::test]
async fn clients_pinging_too_often_are_sent_goaway_too_many_pings() {
    let mut p = protocols();
    p.grpc.as_mut().unwrap().keepalive = Some(super::otlp::config::GrpcKeepalive {
        enforcement_policy: Some(super::otlp::config::KeepaliveEnforcementPolicy {
            min_time: Some(Duration::from_millis(200)),
            permit_without_stream: true,
        }),
        ..Default::default()
    });
    let r = start(p, BTreeMap::new()).await;
    let closed = || r.count("sluice_receiver_connections_closed_total", "grpc", Some("too_many_pings"));
    let within = std::time::Duration::from_secs(3);

    // Four pings at once: the first is free, the next three are strikes.
    let mut flood = pinging_connection(r.addr("grpc"), 4, std::time::Duration::ZERO).await;
    let (_, goaway) = read_pongs_and_goaway(&mut flood, within).await;
    assert_eq!(goaway, Some((0xb, b"too_many_pings".to_vec())), "ENHANCE_YOUR_CALM expected");
    assert_eq!(closed(), 1);

    // Paced at the policy's minimum and a little more: every ping answered, no GOAWAY.
    let mut paced = pinging_connection(r.addr("grpc"), 5, std::time::Duration::from_millis(250)).await;
    let (pongs, goaway) = read_pongs_and_goaway(&mut paced, std::time::Duration::from_millis(500)).await;
    assert_eq!((pongs, goaway), (5, None));
    assert_eq!(closed(), 1);

    // The agent keeps serving.
    let ch =
        tonic::transport::Endpoint::from_shared(format!("http://{}", r.addr("grpc"))).unwrap().connect().await.unwrap();
    TraceServiceClient::new(ch).export(traces(2)).await.unwrap();
    assert_eq!(r.sink.batches().len(), 1);
}

#[tokio::test]
async fn by_default_a_client_may_not_ping_an_idle_connection_often() {
    // No keepalive settings: grpc-go's policy, 5 min with a stream open and
    // 2 h without one.
    let r = start(protocols(), BTreeMap::new()).await;
    let mut idle = pinging_connection(r.addr("grpc"), 4, std::time::Duration::from_millis(20)).await;
    let (pongs, goaway) = read_pongs_and_goaway(&mut idle, std::time::Duration::from_secs(3)).await;
    assert_eq!(goaway, Some((0xb, b"too_many_pings".to_vec())));
    assert!(pongs <= 3, "the ping that closes is not answered: {pongs}");
    assert_eq!(r.count("sluice_receiver_connections_closed_total", "grpc", Some("too_many_pings")), 1);
    // Three pings are within the strikes allowed.
    let mut three = pinging_connection(r.addr("grpc"), 3, std::time::Duration::from_millis(20)).await;
    let (pongs, goaway) = read_pongs_and_goaway(&mut three, std::time::Duration::from_millis(500)).await;
    assert_eq!((pongs, goaway), (3, None));
}
