//! Admission before decoding, end to end on both transports: the decoded
//! size cap, the memory headroom, bytes in flight and the body deadline.

use super::test_support::*;
use crate::data::check::check_and_estimate;
use crate::data::Signal;
use crate::rpc::RpcStatus;
use http::StatusCode;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use std::io::Write;
use std::time::{Duration, Instant};

const PB: &str = "application/x-protobuf";

/// `n` empty log records: 2 bytes each on the wire, a whole `LogRecord` decoded.
fn empty_logs(n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default(); n], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b).unwrap();
    enc.finish().unwrap()
}

async fn channel(h: &Harness) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{}", h.grpc_addr())).unwrap().connect().await.unwrap()
}

#[tokio::test]
async fn over_the_decoded_cap_is_refused_from_the_walk_without_decoding() {
    let h = Harness::start_with(Sink::recording(), |c| {
        c.protocols.http.as_mut().unwrap().limits.max_decoded_size_mib = 1;
        c.protocols.grpc.as_mut().unwrap().limits.max_decoded_size_mib = 1;
    })
    .await;
    // 100k empty records: 200 kB on the wire, some 20 MB decoded; 200 bytes gzipped.
    let req = empty_logs(100_000);
    let plain = req.encode_to_vec();
    let estimate = check_and_estimate(Signal::Logs, &plain).unwrap();
    assert!(estimate.decoded_bytes > 10 << 20, "{estimate:?}");
    let body = gzip(&plain);
    assert!(body.len() < 2000, "{}", body.len());
    let r = post(h.http_addr(), "/v1/logs", &[("content-type", PB), ("content-encoding", "gzip")], body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let st = RpcStatus::decode(&r.body[..]).unwrap();
    assert_eq!(st.code, tonic::Code::ResourceExhausted as i32);
    assert_eq!(
        st.message,
        format!(
            "request would take {} bytes once decoded, more than the limit of 1048576 bytes",
            estimate.decoded_bytes
        )
    );
    assert_eq!(h.refused("http", Signal::Logs), 100_000, "items counted from the walk");
    assert_eq!(h.refused_requests("http", "decoded_too_large"), 1);

    let mut client = LogsServiceClient::new(channel(&h).await);
    let e = client.export(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::ResourceExhausted);
    assert!(e.message().ends_with("more than the limit of 1048576 bytes"), "{}", e.message());
    assert_eq!(h.refused("grpc", Signal::Logs), 100_000);
    assert_eq!(h.refused_requests("grpc", "decoded_too_large"), 1);
    assert!(h.sink.batches().is_empty());
    assert!(h.sink.estimates.lock().unwrap().is_empty(), "refused before the pipelines were asked");
    // A normal request still goes through.
    client.export(logs(3)).await.unwrap();
    assert_eq!(h.sink.batches().len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn over_the_memory_headroom_is_a_retryable_refusal_counted_from_the_walk() {
    let h = Harness::start(Sink::recording()).await;
    h.sink.headroom(Some(1 << 20));
    let req = empty_logs(50_000);
    let headers = [("content-type", PB), ("content-encoding", "gzip")];
    let r = post(h.http_addr(), "/v1/logs", &headers, gzip(&req.encode_to_vec())).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(h.refused("http", Signal::Logs), 50_000);
    assert_eq!(h.refused_requests("http", "memory_headroom"), 1);
    // JSON: the streaming pass counts its items and sizes it.
    let json = serde_json::to_vec(&empty_logs(20_000)).unwrap();
    let r = post(h.http_addr(), "/v1/logs", &[("content-type", "application/json")], json).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(h.refused("http", Signal::Logs), 70_000);

    let mut client = LogsServiceClient::new(channel(&h).await);
    let e = client.export(req).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable);
    assert_eq!(h.refused("grpc", Signal::Logs), 50_000);
    assert_eq!(h.refused_requests("grpc", "memory_headroom"), 1);
    assert!(h.sink.batches().is_empty());
    // Within the headroom: taken.
    client.export(logs(10)).await.unwrap();
    let r = post(h.http_addr(), "/v1/logs", &[("content-type", PB)], logs(5).encode_to_vec()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(h.accepted("grpc", Signal::Logs) + h.accepted("http", Signal::Logs), 15);
    h.stop().await;
}

#[tokio::test]
async fn json_nested_past_the_limit_is_400_before_parsing() {
    let h = Harness::start(Sink::recording()).await;
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    let r = post(h.http_addr(), "/v1/logs", &[("content-type", "application/json")], deep.into_bytes()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.text().contains("nested deeper than"), "{}", r.text());
    assert_eq!(h.malformed("http", Signal::Logs), 1);
    h.stop().await;
}

#[tokio::test]
async fn a_declared_length_over_the_bytes_in_flight_is_refused_before_reading() {
    let h = Harness::start_with(Sink::recording(), |c| {
        let http = c.protocols.http.as_mut().unwrap();
        http.max_request_body_size = 1 << 20;
        http.limits.max_bytes_in_flight_mib = 1;
    })
    .await;
    // Two requests at once, each most of the budget: one of them is refused.
    let body = vec![0u8; 700 << 10];
    let addr = h.http_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // A client that declares 700 KiB and sends a little, then waits.
    let stalled = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head =
            format!("POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: {PB}\r\ncontent-length: {}\r\n\r\n", 700 << 10);
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(&[0u8; 10]).await.unwrap();
        let _ = rx.await;
        drop(s);
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = post(addr, "/v1/logs", &[("content-type", PB)], body).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.text());
    assert_eq!(r.header("retry-after").as_deref(), Some("1"));
    assert_eq!(h.refused_requests("http", "bytes_in_flight"), 1);
    tx.send(()).unwrap();
    stalled.await.unwrap();
    // The stalled client's bytes are given back once it is gone.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = post(addr, "/v1/logs", &[("content-type", PB)], logs(2).encode_to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    h.stop().await;
}

#[tokio::test]
async fn a_body_not_sent_in_time_is_cut_and_its_bytes_given_back() {
    let h = Harness::start_with(Sink::recording(), |c| {
        c.protocols.http.as_mut().unwrap().limits.body_timeout = crate::config::Duration::from_millis(300);
    })
    .await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(h.http_addr()).await.unwrap();
    let head = format!("POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: {PB}\r\ncontent-length: 1000\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(&[0u8; 999]).await.unwrap();
    let started = Instant::now();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer[..n]);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(h.refused_requests("http", "body_timeout"), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_decode_does_not_hold_up_other_clients() {
    let h = Harness::start(Sink::recording()).await;
    // Some 15 MB of log records to decode, sent gzipped.
    let big = gzip(&logs(150_000).encode_to_vec());
    let addr = h.http_addr();
    let heavy: Vec<_> = (0..2)
        .map(|_| {
            let big = big.clone();
            tokio::spawn(async move {
                post(addr, "/v1/logs", &[("content-type", PB), ("content-encoding", "gzip")], big).await
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        let r = post(addr, "/v1/traces", &[("content-type", PB)], traces(1).encode_to_vec()).await;
        assert_eq!(r.status, StatusCode::OK);
        worst = worst.max(t.elapsed());
    }
    for t in heavy {
        assert_eq!(t.await.unwrap().status, StatusCode::OK);
    }
    assert!(worst < Duration::from_millis(500), "a small export took {worst:?} next to two large ones");
    h.stop().await;
}

/// Whether the server closed this connection within `within`.
async fn closed_by_server(s: &mut tokio::net::TcpStream, within: Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 256];
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline.into(), s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            // A GOAWAY or an answer: keep reading until the close.
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_handshake_timeout() {
    let h = Harness::start_with(Sink::recording(), |c| {
        c.protocols.grpc.as_mut().unwrap().limits.handshake_timeout = crate::config::Duration::from_millis(300);
        c.protocols.http.as_mut().unwrap().limits.handshake_timeout = crate::config::Duration::from_millis(300);
    })
    .await;
    for (transport, addr) in [("grpc", h.grpc_addr()), ("http", h.http_addr())] {
        let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = Instant::now();
        assert!(closed_by_server(&mut silent, Duration::from_secs(3)).await, "{transport}");
        assert!(started.elapsed() >= Duration::from_millis(250), "{transport}: {:?}", started.elapsed());
        assert_eq!(h.closed_connections(transport, "handshake_timeout"), 1, "{transport}");
    }
    // A connection that sends its request in time is served as usual.
    let mut client = LogsServiceClient::new(channel(&h).await);
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.export(logs(1)).await.unwrap();
    h.stop().await;
}

#[tokio::test]
async fn at_the_connection_limit_the_connection_idle_longest_is_closed() {
    let h = Harness::start_with(Sink::recording(), |c| {
        c.protocols.http.as_mut().unwrap().limits.max_connections = 3;
    })
    .await;
    let addr = h.http_addr();
    let mut idle = Vec::new();
    for _ in 0..3 {
        idle.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = post(addr, "/v1/logs", &[("content-type", PB)], logs(2).encode_to_vec()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(h.closed_connections("http", "connection_limit"), 1);
    assert!(closed_by_server(&mut idle[0], Duration::from_secs(2)).await, "the oldest idle connection was closed");
    assert!(!closed_by_server(&mut idle[2], Duration::from_millis(200)).await, "the newest is kept");
    h.stop().await;
}

#[tokio::test]
async fn json_nests_exactly_as_deep_as_protobuf() {
    use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, ArrayValue};
    // A log body of arrays in arrays, `levels` deep.
    let nested = |levels: usize| {
        let mut v = AnyValue { value: Some(Value::StringValue("x".into())) };
        for _ in 0..levels {
            v = AnyValue { value: Some(Value::ArrayValue(ArrayValue { values: vec![v] })) };
        }
        let mut req = logs(1);
        req.resource_logs[0].scope_logs[0].log_records[0].body = Some(v);
        req
    };
    let deepest =
        (1..200).take_while(|l| ExportLogsServiceRequest::decode(&nested(*l).encode_to_vec()[..]).is_ok()).last();
    let deepest = deepest.unwrap();
    assert!(deepest > 40, "{deepest}");
    let h = Harness::start(Sink::recording()).await;
    let json = |l| serde_json::to_vec(&nested(l)).unwrap();
    let r = post(h.http_addr(), "/v1/logs", &[("content-type", "application/json")], json(deepest)).await;
    assert_eq!(r.status, StatusCode::OK, "{deepest} levels: {}", r.text());
    let r = post(h.http_addr(), "/v1/logs", &[("content-type", "application/json")], json(deepest + 1)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{} levels", deepest + 1);
    let r = post(h.http_addr(), "/v1/logs", &[("content-type", PB)], nested(deepest + 1).encode_to_vec()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(h.sink.batches(), vec![crate::data::Batch::Logs(nested(deepest))]);
    h.stop().await;
}

/// A request with both is refused 400 (RFC 9112 §6.1 allows it; a
/// request-smuggling vector) before its body is read, counted, and the
/// connection closed after the answer, so nothing smuggled behind the body
/// is read either.
#[tokio::test]
async fn content_length_with_transfer_encoding_is_400_and_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let h = Harness::start(Sink::recording()).await;
    let mut s = tokio::net::TcpStream::connect(h.http_addr()).await.unwrap();
    let body = logs(1).encode_to_vec();
    // The Content-Length claims 5 bytes: were it used, the rest would be read as a second request.
    let mut req = format!(
        "POST /v1/logs HTTP/1.1\r\nhost: x\r\ncontent-type: {PB}\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    req.extend_from_slice(b"\r\n0\r\n\r\n");
    s.write_all(&req).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut answer)).await.unwrap().unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("both Content-Length and Transfer-Encoding"), "{text}");
    assert!(text.contains("connection: close"), "{text}");
    assert_eq!(text.matches("HTTP/1.1").count(), 1, "{text}");
    assert!(h.sink.batches().is_empty());
    assert_eq!(h.refused_requests("http", "ambiguous_framing"), 1);
    h.stop().await;
}

#[tokio::test]
async fn grpc_content_type_and_message_count_are_checked() {
    let h = Harness::start(Sink::recording()).await;
    let path = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    let frame = |m: &[u8]| {
        let mut f = vec![0u8];
        f.extend_from_slice(&(m.len() as u32).to_be_bytes());
        f.extend_from_slice(m);
        f
    };
    let one = frame(&logs(1).encode_to_vec());
    let r = post_h2c(h.grpc_addr(), path, "text/plain", one.clone()).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.text());
    let mut two = one.clone();
    two.extend_from_slice(&one);
    let r = post_h2c(h.grpc_addr(), path, "application/grpc", two).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.header("grpc-status").as_deref(), Some("3"), "INVALID_ARGUMENT");
    assert!(h.sink.batches().is_empty());
    assert_eq!(h.malformed("grpc", Signal::Logs), 2);
    let r = post_h2c(h.grpc_addr(), path, "application/grpc+proto", one).await;
    assert_eq!((r.status, r.header("grpc-status")), (StatusCode::OK, None), "not trailers-only: no error");
    assert_eq!(h.sink.batches().len(), 1);
    h.stop().await;
}

#[test]
fn limits_are_checked_at_validation_with_their_path_and_line() {
    let yaml = "receivers:
  otlp:
    protocols:
      grpc:
        limits:
          max_decoded_size_mib: 0
          max_connections: 0
      http:
        limits:
          max_bytes_in_flight_mib: 1
          handshake_timeout: 0s
          max_concurrent_decodes: 5000
exporters:
  debug:
service:
  pipelines:
    logs: {receivers: [otlp], exporters: [debug]}
";
    let errors = crate::service::load::load_with_memory(yaml, &|_| None, Some(1 << 33)).unwrap_err().to_string();
    for (path, line, needle) in [
        ("grpc::limits::max_decoded_size_mib", 6, "max_decoded_size_mib must be between 1 and 1048576, got 0"),
        ("grpc::limits::max_connections", 7, "max_connections must be between 1 and 1048576, got 0"),
        (
            "http::limits::max_bytes_in_flight_mib",
            10,
            "is below the largest request the listener takes (20971520 bytes)",
        ),
        ("http::limits::handshake_timeout", 11, "handshake_timeout must be above 0"),
        ("http::limits::max_concurrent_decodes", 12, "max_concurrent_decodes must be at most 1024, got 5000"),
    ] {
        let wanted = format!("receivers::otlp::protocols::{path} (line {line}): ");
        let found = errors.lines().find(|l| l.contains(&wanted));
        assert!(found.is_some_and(|l| l.contains(needle)), "{path}: {needle}\n{errors}");
    }
}
