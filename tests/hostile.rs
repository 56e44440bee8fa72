//! Hostile clients against a running sluice (the debug binary), each attack
//! bounded in count and time and on loopback only: with `memory_limiter` at
//! 256 MiB the agent's peak resident memory (VmHWM of the child) stays under
//! 768 MiB, it stays up, and it answers a normal export afterwards. The
//! figures in README "Hostile input" come from
//! `cargo test --test hostile -- --nocapture --test-threads 1`.

mod common;

use common::*;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use prost::Message;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

const PEAK_BOUND_MIB: u64 = 768;

/// Counts the heap this thread holds and its peak, for measuring what a
/// decode costs in this process (the attacks above measure the child).
mod thread_heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static LIVE: Cell<i64> = const { Cell::new(0) };
        static PEAK: Cell<i64> = const { Cell::new(0) };
    }

    fn add(n: i64) {
        // try_with: no counting while a thread's locals are torn down.
        let _ = LIVE.try_with(|l| {
            let v = l.get() + n;
            l.set(v);
            let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
        });
    }

    struct Counting;

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            add(l.size() as i64);
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            add(-(l.size() as i64));
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
            add(new as i64 - l.size() as i64);
            unsafe { System.realloc(p, l, new) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;

    /// Runs `f` on this thread: what it returns, the most heap it held
    /// above what the thread held before, and how much more (or, having
    /// freed what it was given, less) it left held.
    pub fn measure<T>(f: impl FnOnce() -> T) -> (T, u64, i64) {
        let base = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(base));
        let out = f();
        let peak = PEAK.with(Cell::get) - base;
        let left = LIVE.with(Cell::get) - base;
        (out, peak.max(0) as u64, left)
    }
}

/// The attacks take turns: each measures latency or the machine's limits,
/// which another attack running beside it on a 2-core machine would skew.
static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// An agent with memory_limiter at 256 MiB in front of a nop exporter, for logs.
fn agent(dir: &Path, extra_receiver: &str, extensions: &str) -> Agent {
    let ports = Ports::pick();
    let processors = "  memory_limiter:\n    check_interval: 100ms\n    limit_mib: 256\n  batch:";
    let mut config = agent_config(ports, processors, "  nop:", &["logs"], &["memory_limiter", "batch"], &["nop"], &[]);
    if !extra_receiver.is_empty() {
        config = config.replace(
            &format!("      http:\n        endpoint: 127.0.0.1:{}\n", ports.http),
            &format!("      http:\n        endpoint: 127.0.0.1:{}\n{extra_receiver}", ports.http),
        );
    }
    if !extensions.is_empty() {
        config = config.replace("extensions:\n", &format!("extensions:\n{extensions}"));
        config = config.replace("  extensions: [health_check]", "  extensions: [health_check, basicauth]");
    }
    Agent::start(dir, &config, ports)
}

fn report(attack: &str, agent: &Agent, took: Duration) {
    let peak = agent.peak_rss_mib();
    eprintln!("hostile: {attack}: peak RSS {peak} MiB, attack took {:.1}s", took.as_secs_f64());
    assert!(peak < PEAK_BOUND_MIB, "{attack}: peak RSS {peak} MiB\n{}", agent.log());
}

fn logs(n: usize, body: bool) -> ExportLogsServiceRequest {
    let record = |i: usize| LogRecord {
        body: body.then(|| AnyValue { value: Some(any_value::Value::StringValue(format!("line {i}"))) }),
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs { log_records: (0..n).map(record).collect(), ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// The protobuf of an export request of `n` empty log records, written by
/// hand (prost in a debug build takes seconds for millions of records).
fn empty_records(n: usize) -> Vec<u8> {
    fn wrap(tag: u8, body: Vec<u8>) -> Vec<u8> {
        let mut out = vec![tag];
        let mut len = body.len() as u64;
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                out.push(b);
                break;
            }
            out.push(b | 0x80);
        }
        out.extend_from_slice(&body);
        out
    }
    // ScopeLogs.log_records (2), ResourceLogs.scope_logs (2), request.resource_logs (1).
    let records = [0x12u8, 0x00].repeat(n);
    wrap(0x0a, wrap(0x12, records))
}

/// A gRPC client that sends a message's bytes as they are.
#[derive(Clone, Copy)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = ();
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> RawCodec {
        RawCodec
    }
    fn decoder(&mut self) -> RawCodec {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: bytes::Bytes, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        bytes::BufMut::put_slice(dst, &item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = ();
    type Error = tonic::Status;
    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        let n = bytes::Buf::remaining(src);
        bytes::Buf::advance(src, n);
        Ok(Some(()))
    }
}

async fn export_raw(endpoint: &str, message: bytes::Bytes) -> Result<(), tonic::Status> {
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{endpoint}")).unwrap().connect().await.unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.unwrap();
    let path = http::uri::PathAndQuery::from_static("/opentelemetry.proto.collector.logs.v1.LogsService/Export");
    grpc.unary(tonic::Request::new(message), path, RawCodec).await.map(|_| ())
}

fn gzip(b: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(b).unwrap();
    enc.finish().unwrap()
}

/// POST over HTTP/1.1; the status code (0 when the connection failed).
fn post(addr: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else { return 0 };
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut head =
        format!("POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    if s.write_all(head.as_bytes()).and_then(|_| s.write_all(body)).is_err() {
        return 0;
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    String::from_utf8_lossy(&raw).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// A normal export over both transports is taken.
fn normal_export_works(agent: &Agent) {
    let http = format!("127.0.0.1:{}", agent.ports.http);
    let t = Instant::now();
    let code = post(&http, "/v1/logs", &[("content-type", "application/x-protobuf")], &logs(10, true).encode_to_vec());
    assert_eq!(code, 200, "normal HTTP export after the attack\n{}", agent.log());
    let grpc = format!("http://{}", agent.grpc_endpoint());
    runtime().block_on(async {
        let mut client = LogsServiceClient::connect(grpc).await.unwrap();
        client.export(logs(10, true)).await.unwrap();
    });
    assert!(t.elapsed() < Duration::from_secs(5), "normal exports took {:?}", t.elapsed());
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// 4 MiB of empty log records over gRPC (2M records, 368 MB decoded), and
/// 20 MiB of them over HTTP sent as 20 KB of gzip, protobuf and JSON: each
/// refused from a walk of its bytes (RESOURCE_EXHAUSTED / 413), never decoded.
#[test]
fn decoding_bombs_are_refused_from_the_walk() {
    let _turn = turn();
    let dir = temp_dir();
    let agent = agent(dir.path(), "", "");
    let t = Instant::now();
    let grpc_body = bytes::Bytes::from(empty_records(2_000_000));
    assert!(grpc_body.len() <= 4 << 20);
    assert_eq!(
        ExportLogsServiceRequest::decode(&empty_records(3)[..]).unwrap(),
        logs(3, false),
        "the hand-written protobuf is what prost writes"
    );
    runtime().block_on(async {
        for _ in 0..2 {
            let e = export_raw(&agent.grpc_endpoint(), grpc_body.clone()).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}\n{}", agent.log());
        }
    });
    let http = format!("127.0.0.1:{}", agent.ports.http);
    let pb = gzip(&empty_records(10_000_000));
    let json = {
        let mut j = String::from("{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{}");
        j.push_str(&",{}".repeat(6_000_000));
        j.push_str("]}]}]}");
        gzip(j.as_bytes())
    };
    eprintln!("hostile: bodies: protobuf bomb {} bytes gzipped, JSON bomb {} bytes gzipped", pb.len(), json.len());
    for (ct, body) in [("application/x-protobuf", &pb), ("application/json", &json)] {
        let code = post(&http, "/v1/logs", &[("content-type", ct), ("content-encoding", "gzip")], body);
        assert_eq!(code, 413, "{ct}");
    }
    let took = t.elapsed();
    let refused = agent.metric("sluice_receiver_refused_requests_total", &[("reason", "decoded_too_large")]);
    assert_eq!(refused, 4.0);
    // Items counted from the walk: 2 x 2M, 10M, 6M + 1.
    assert_eq!(agent.metric("otelcol_receiver_refused_log_records_total", &[]), 2.0 * 2e6 + 1e7 + 6e6 + 1.0);
    report("decoding bombs (2 gRPC 4 MiB, HTTP gzip 20 MiB protobuf and JSON)", &agent, took);
    normal_export_works(&agent);
    agent.stop();
}

/// Below the decoded-size cap but beyond what the memory limiter has left:
/// refused retryably by the pipeline's door before decoding.
#[test]
fn a_request_the_memory_limiter_has_no_room_for_is_refused_before_decoding() {
    let _turn = turn();
    let dir = temp_dir();
    let ports = Ports::pick();
    let processors =
        "  memory_limiter:\n    check_interval: 100ms\n    limit_mib: 96\n    spike_limit_mib: 16\n  batch:";
    let config = agent_config(ports, processors, "  nop:", &["logs"], &["memory_limiter", "batch"], &["nop"], &[]);
    let agent = Agent::start(dir.path(), &config, ports);
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    // 500k empty records: 1 MB on the wire, 92 MB decoded: under the 128 MiB
    // cap, over 96 MiB less what the agent already holds.
    let body = bytes::Bytes::from(empty_records(500_000));
    let e = runtime().block_on(export_raw(&agent.grpc_endpoint(), body)).unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert_eq!(agent.metric("sluice_receiver_refused_requests_total", &[("reason", "memory_headroom")]), 1.0);
    assert_eq!(
        agent.metric("otelcol_processor_refused_log_records_total", &[("processor", "memory_limiter")]),
        500_000.0
    );
    report("a 92 MB-decoded request with 96 MiB memory_limiter", &agent, t.elapsed());
    normal_export_works(&agent);
    agent.stop();
}

/// 40 HTTP/1.1 clients each declare 20 MiB and send 1 MiB of it, then stall.
#[test]
fn stalled_bodies_are_bounded_by_the_bytes_in_flight() {
    let _turn = turn();
    let dir = temp_dir();
    let agent = agent(dir.path(), "        limits:\n          body_timeout: 3s\n", "");
    let http = format!("127.0.0.1:{}", agent.ports.http);
    let t = Instant::now();
    let mut stalled = Vec::new();
    let mut refused_at_once = 0;
    for _ in 0..40 {
        let mut s = TcpStream::connect(&http).unwrap();
        let head = format!(
            "POST /v1/logs HTTP/1.1\r\nHost: x\r\ncontent-type: application/x-protobuf\r\ncontent-length: {}\r\n\r\n",
            20 << 20
        );
        s.write_all(head.as_bytes()).unwrap();
        let _ = s.write_all(&vec![0x0a; 1 << 20]);
        stalled.push(s);
    }
    // Those over the budget are answered 503 at once; the rest are cut at the body timeout.
    for s in &mut stalled {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = [0u8; 12];
        if s.read(&mut buf).is_ok_and(|n| n >= 12 && &buf[9..12] == b"503") {
            refused_at_once += 1;
        }
    }
    let took = t.elapsed();
    eprintln!("hostile: stalled bodies: {refused_at_once} of 40 refused at once (bytes in flight)");
    assert!(refused_at_once >= 30, "{refused_at_once}");
    assert!(agent.metric("sluice_receiver_refused_requests_total", &[("reason", "body_timeout")]) >= 1.0);
    report("40 stalled 20 MiB HTTP bodies", &agent, took);
    drop(stalled);
    normal_export_works(&agent);
    agent.stop();
}

/// A request body that sends `first` and then nothing, forever.
struct Stalls(Option<bytes::Bytes>);

impl hyper::body::Body for Stalls {
    type Data = bytes::Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, Self::Error>>> {
        match self.get_mut().0.take() {
            Some(b) => std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(b)))),
            None => std::task::Poll::Pending,
        }
    }
}

/// 60 gRPC streams (3 connections of 20) each announcing a 4 MiB message,
/// sending 1 MiB of it and stalling.
#[test]
fn stalled_grpc_messages_are_cut_at_the_body_timeout() {
    let _turn = turn();
    let dir = temp_dir();
    let ports = Ports::pick();
    let processors = "  memory_limiter:\n    check_interval: 100ms\n    limit_mib: 256\n  batch:";
    let config = agent_config(ports, processors, "  nop:", &["logs"], &["memory_limiter", "batch"], &["nop"], &[])
        .replace(
            &format!("      grpc:\n        endpoint: 127.0.0.1:{}\n", ports.grpc),
            &format!(
                "      grpc:\n        endpoint: 127.0.0.1:{}\n        limits:\n          body_timeout: 3s\n",
                ports.grpc
            ),
        );
    let agent = Agent::start(dir.path(), &config, ports);
    let t = Instant::now();
    let statuses = runtime().block_on(async {
        let mut pending = Vec::new();
        for _ in 0..3 {
            let stream = tokio::net::TcpStream::connect(agent.grpc_endpoint()).await.unwrap();
            let (sender, conn) = hyper::client::conn::http2::handshake(
                hyper_util::rt::TokioExecutor::new(),
                hyper_util::rt::TokioIo::new(stream),
            )
            .await
            .unwrap();
            tokio::spawn(conn);
            for _ in 0..20 {
                let mut first = vec![0u8];
                first.extend_from_slice(&(4u32 << 20).to_be_bytes());
                first.extend_from_slice(&vec![0x0a; 1 << 20]);
                let req = http::Request::post(format!(
                    "http://{}/opentelemetry.proto.collector.logs.v1.LogsService/Export",
                    agent.grpc_endpoint()
                ))
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Stalls(Some(first.into())))
                .unwrap();
                let mut sender = sender.clone();
                pending.push(tokio::spawn(async move {
                    sender.ready().await.unwrap();
                    let resp = sender.send_request(req).await.unwrap();
                    resp.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_string())
                }));
            }
        }
        let mut statuses = Vec::new();
        for p in pending {
            statuses.push(tokio::time::timeout(Duration::from_secs(10), p).await.expect("answered").unwrap());
        }
        statuses
    });
    let took = t.elapsed();
    // DEADLINE_EXCEEDED (4), or UNAVAILABLE (14) for those over the bytes in flight.
    assert!(statuses.iter().all(|s| matches!(s.as_deref(), Some("4") | Some("14"))), "{statuses:?}");
    let cut = agent.metric("sluice_receiver_refused_requests_total", &[("reason", "body_timeout")]);
    eprintln!("hostile: stalled gRPC messages: {cut} of 60 cut at the body timeout");
    assert!(cut >= 30.0, "{cut}");
    report("60 stalled 4 MiB gRPC messages", &agent, took);
    normal_export_works(&agent);
    agent.stop();
}

/// 1100 silent connections to the gRPC port under a 1024-descriptor limit.
#[test]
fn idle_connections_cannot_exhaust_descriptors() {
    let _turn = turn();
    raise_own_descriptor_limit();
    let dir = temp_dir();
    let ports = Ports::pick();
    let processors = "  memory_limiter:\n    check_interval: 100ms\n    limit_mib: 256\n  batch:";
    let config = agent_config(ports, processors, "  nop:", &["logs"], &["memory_limiter", "batch"], &["nop"], &[]);
    let agent = start_with_nofile(dir.path(), &config, ports, 1024);
    let t = Instant::now();
    let mut idle = Vec::new();
    for _ in 0..1100 {
        match TcpStream::connect(agent.grpc_endpoint()) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connect: {e}"),
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    runtime().block_on(async {
        let export = async {
            let mut client = LogsServiceClient::connect(format!("http://{}", agent.grpc_endpoint())).await.unwrap();
            client.export(logs(10, true)).await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(5), export).await.expect("export answered within 5s");
    });
    let answered = started.elapsed();
    eprintln!("hostile: 1100 idle gRPC connections, 1024 descriptors: a new export answered in {answered:?}");
    assert!(agent.metric("sluice_receiver_accept_errors_total", &[]) >= 1.0, "the limit was reached");
    report("1100 idle gRPC connections under a 1024-descriptor limit", &agent, t.elapsed());
    drop(idle);
    normal_export_works(&agent);
    agent.stop();
}

/// 8 clients send bad basicauth passwords while one authenticated client exports.
#[test]
fn bad_passwords_do_not_slow_authenticated_clients() {
    let _turn = turn();
    let dir = temp_dir();
    let hash = bcrypt::hash("right", 10).unwrap();
    let extension = format!("  basicauth:\n    htpasswd:\n      inline: \"alice:{hash}\"\n");
    let agent = agent(dir.path(), "        auth:\n          authenticator: basicauth\n", &extension);
    let http = format!("127.0.0.1:{}", agent.ports.http);
    use base64::Engine as _;
    let header = |p: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("alice:{p}")));
    let good = header("right");
    let body = logs(10, true).encode_to_vec();
    let ok =
        |h: &str| post(&http, "/v1/logs", &[("content-type", "application/x-protobuf"), ("authorization", h)], &body);
    assert_eq!(ok(&good), 200);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attackers: Vec<_> = (0..8)
        .map(|i| {
            let (stop, http, bad) = (stop.clone(), http.clone(), header(&format!("wrong{i}")));
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    post(
                        &http,
                        "/v1/logs",
                        &[("content-type", "application/x-protobuf"), ("authorization", &bad)],
                        b"",
                    );
                    n += 1;
                }
                n
            })
        })
        .collect();
    let t = Instant::now();
    let mut times = Vec::new();
    while t.elapsed() < Duration::from_secs(4) {
        let s = Instant::now();
        assert_eq!(ok(&good), 200);
        times.push(s.elapsed());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let attempts: usize = attackers.into_iter().map(|a| a.join().unwrap()).sum();
    times.sort();
    let p99 = times[times.len() * 99 / 100];
    eprintln!(
        "hostile: basicauth: {attempts} bad-password requests, authenticated p99 {p99:?} over {} exports",
        times.len()
    );
    assert!(p99 < Duration::from_millis(50), "authenticated p99 {p99:?}");
    assert!(agent.metric("sluice_receiver_auth_failures_total", &[("reason", "throttled")]) > 0.0);
    report("8 clients with bad basicauth passwords", &agent, t.elapsed());
    agent.stop();
}

/// Lifts this test process's own descriptor limit to its hard limit, so it
/// can hold more connections than the agent under test may.
fn raise_own_descriptor_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed in.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max.min(65536);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
    assert!(lim.rlim_cur >= 1200, "this test needs 1200 descriptors; the hard limit is {}", lim.rlim_max);
}

/// As [`Agent::start`], with the child's descriptor limit set to `nofile`.
fn start_with_nofile(dir: &Path, config: &str, ports: Ports, nofile: u64) -> Agent {
    let wrapper = dir.join("sluice-nofile.sh");
    std::fs::write(&wrapper, format!("#!/bin/sh\nulimit -n {nofile}\nexec {} \"$@\"\n", sluice_bin().display()))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    Agent::start_with_bin(dir, config, ports, &wrapper)
}

/// Sends `wire` on one HTTP/1.1 connection and reads until the agent
/// closes it; the status codes of the answers, in order, and the text.
fn raw_http(addr: &str, wire: &[u8]) -> (Vec<u16>, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(wire).unwrap();
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let codes = text.match_indices("HTTP/1.1 ").filter_map(|(i, _)| text.get(i + 9..i + 12)?.parse().ok()).collect();
    (codes, text)
}

/// A request with both Content-Length and Transfer-Encoding (RFC 9112
/// §6.1, a request-smuggling vector) is answered 400 in either header
/// order, on a fresh connection and after a normal request on a kept-alive
/// one; the connection is closed after the answer, and the request hidden
/// in its body (as a proxy framing by the length would pass it) is never
/// taken.
#[test]
fn content_length_with_transfer_encoding_is_refused() {
    let _turn = turn();
    let dir = temp_dir();
    let agent = agent(dir.path(), "", "");
    let addr = format!("127.0.0.1:{}", agent.ports.http);
    let records = logs(3, true).encode_to_vec();
    let normal = |close: bool| {
        let mut r = format!(
            "POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n{}\r\n",
            records.len(),
            if close { "Connection: close\r\n" } else { "" }
        )
        .into_bytes();
        r.extend_from_slice(&records);
        r
    };
    // The body, framed by its length, ends the chunks and hides a second request.
    let mut body = b"0\r\n\r\n".to_vec();
    body.extend_from_slice(&normal(true));
    let ambiguous = |te_first: bool| {
        let (cl, te) = (format!("Content-Length: {}\r\n", body.len()), "Transfer-Encoding: chunked\r\n".to_string());
        let framing = if te_first { te + &cl } else { cl + &te };
        let mut r =
            format!("POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\n{framing}\r\n")
                .into_bytes();
        r.extend_from_slice(&body);
        r
    };
    for te_first in [false, true] {
        let (codes, text) = raw_http(&addr, &ambiguous(te_first));
        assert_eq!(codes, vec![400], "{text}");
        assert!(text.contains("both Content-Length and Transfer-Encoding"), "{text}");
        // Kept alive: a normal request first, the ambiguous one second, a normal one after it.
        let mut wire = normal(false);
        wire.extend_from_slice(&ambiguous(te_first));
        wire.extend_from_slice(&normal(true));
        let (codes, text) = raw_http(&addr, &wire);
        assert_eq!(codes, vec![200, 400], "closed after the 400\n{text}");
    }
    assert_eq!(agent.metric("sluice_receiver_refused_requests_total", &[("reason", "ambiguous_framing")]), 4.0);
    // Only the two normal requests before the ambiguous ones were taken.
    assert_eq!(agent.metric("otelcol_receiver_accepted_log_records_total", &[("transport", "http")]), 6.0);
    // Chunked alone and length alone are served as before.
    let chunked = format!(
        "POST /v1/logs HTTP/1.1\r\nHost: a\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n{:x}\r\n",
        records.len()
    );
    let mut wire = normal(false);
    wire.extend_from_slice(chunked.as_bytes());
    wire.extend_from_slice(&records);
    wire.extend_from_slice(b"\r\n0\r\n\r\n");
    let (codes, text) = raw_http(&addr, &wire);
    assert_eq!(codes, vec![200, 200], "{text}");
    normal_export_works(&agent);
}

/// OTLP/JSON requests shaped as the JavaScript SDK's OTLP/HTTP exporter
/// sends them (the SDK that speaks JSON): a resource with the SDK's
/// attributes, spans with eight attributes, log records with a body and
/// four attributes, sums and histograms with attributed points.
fn sdk_like_json(signal: sluice::data::Signal, n: usize) -> String {
    use sluice::data::Signal;
    let kv = |k: &str, v: &str| format!(r#"{{"key":"{k}","value":{{"stringValue":"{v}"}}}}"#);
    let kvi = |k: &str, v: i64| format!(r#"{{"key":"{k}","value":{{"intValue":"{v}"}}}}"#);
    let resource = format!(
        r#""resource":{{"attributes":[{},{},{},{},{},{},{}],"droppedAttributesCount":0}}"#,
        kv("service.name", "checkout"),
        kv("telemetry.sdk.language", "nodejs"),
        kv("telemetry.sdk.name", "opentelemetry"),
        kv("telemetry.sdk.version", "1.30.1"),
        kv("host.name", "checkout-7d9f8c6b5-x2x9q"),
        kvi("process.pid", 4242),
        kv("process.runtime.name", "nodejs"),
    );
    let scope = r#""scope":{"name":"@opentelemetry/instrumentation-http","version":"0.57.1"}"#;
    let items: Vec<String> = (0..n)
        .map(|i| match signal {
            Signal::Traces => format!(
                r#"{{"traceId":"5b8efff798038103d269b633813f{i:04x}","spanId":"eee19b7ec3c1{i:04x}","parentSpanId":"eee19b7ec3c1b173","name":"GET /api/users/:id","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","attributes":[{},{},{},{},{},{},{},{}],"droppedAttributesCount":0,"events":[],"droppedEventsCount":0,"status":{{"code":0}},"links":[],"droppedLinksCount":0}}"#,
                kv("http.request.method", "GET"),
                kv("url.full", &format!("http://checkout:8080/api/users/{i}")),
                kv("url.path", &format!("/api/users/{i}")),
                kv("http.route", "/api/users/:id"),
                kvi("http.response.status_code", 200),
                kv("server.address", "checkout"),
                kvi("server.port", 8080),
                kv("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64)"),
            ),
            Signal::Logs => format!(
                r#"{{"timeUnixNano":"1544712660000000000","observedTimeUnixNano":"1544712660000000001","severityNumber":9,"severityText":"INFO","body":{{"stringValue":"user {i} fetched their basket in 12 ms"}},"attributes":[{},{},{},{}],"droppedAttributesCount":0,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"}}"#,
                kv("code.function", "fetchBasket"),
                kv("code.filepath", "/app/src/basket.js"),
                kvi("code.lineno", 120),
                kv("user.id", &format!("u-{i}")),
            ),
            Signal::Metrics => {
                let point = format!(
                    r#""attributes":[{},{},{}],"startTimeUnixNano":"1544712660000000000","timeUnixNano":"1544712661000000000""#,
                    kv("http.request.method", "GET"),
                    kv("http.route", &format!("/api/route/{i}")),
                    kvi("http.response.status_code", 200),
                );
                format!(
                    r#"{{"name":"http.server.request.count.{i}","unit":"1","sum":{{"dataPoints":[{{{point},"asInt":"{i}"}}],"aggregationTemporality":2,"isMonotonic":true}}}},{{"name":"http.server.duration.{i}","unit":"ms","histogram":{{"dataPoints":[{{{point},"count":"12","sum":340.5,"bucketCounts":["0","2","5","3","1","1","0"],"explicitBounds":[0,5,10,25,50,75],"min":1.5,"max":90.1}}],"aggregationTemporality":2}}}}"#
                )
            }
        })
        .collect();
    let (outer, inner, key) = match signal {
        Signal::Traces => ("resourceSpans", "scopeSpans", "spans"),
        Signal::Logs => ("resourceLogs", "scopeLogs", "logRecords"),
        Signal::Metrics => ("resourceMetrics", "scopeMetrics", "metrics"),
    };
    format!(r#"{{"{outer}":[{{{resource},"{inner}":[{{{scope},"{key}":[{}]}}]}}]}}"#, items.join(","))
}

/// The decoded-size estimate of an OTLP/JSON request against what
/// decoding it really takes on the heap: it is the admission's figure for
/// the memory limiter's headroom, so it must not be below the peak, and not
/// so far above it that requests that fit are refused as over the limit.
/// Measured here with an allocator that counts this thread's heap.
#[test]
fn json_decoded_size_estimate_is_within_a_factor_of_the_real_cost() {
    use sluice::data::Signal;
    use sluice::receivers::otlp::decode::{prepare, RequestLimits};
    use sluice::receivers::otlp::{Compression, Format};
    let limits = RequestLimits { max_plain: 64 << 20, max_decoded: 1 << 40 };
    let mut failures = Vec::new();
    for signal in Signal::ALL {
        for n in [10, 500] {
            // Exactly as long as its text, so that freeing it frees `wire` bytes.
            let body = bytes::Bytes::copy_from_slice(sdk_like_json(signal, n).as_bytes());
            let wire = body.len();
            let mut estimate = None;
            let (payload, peak, left) = thread_heap::measure(|| {
                prepare(signal, Format::Json, Compression::Identity, body, limits, false, |e| {
                    estimate = Some(e);
                    Ok(())
                })
            });
            let payload = payload.expect("an SDK-like request decodes");
            let items = payload.item_count();
            // The body (held before) was freed once decoded.
            let held = left + wire as i64;
            let e = estimate.expect("admission was asked");
            assert_eq!(e.items, items, "{signal:?}");
            let ratio = e.decoded_bytes as f64 / peak as f64;
            eprintln!(
                "json estimate: {signal:?} {items} items, {wire} bytes of JSON: estimate {} bytes, \
                 peak while decoding {peak}, held after {held}: {ratio:.2}x the peak",
                e.decoded_bytes
            );
            assert!(e.decoded_bytes as i64 >= held, "{signal:?}: below what the decoded request holds");
            drop(payload);
            if !(1.0..=JSON_ESTIMATE_FACTOR).contains(&ratio) {
                failures.push(format!("{signal:?} x{n}: estimate {} is {ratio:.2}x the peak {peak}", e.decoded_bytes));
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// How far above the real peak the JSON estimate may be (the figure
/// src/receivers/otlp/json.rs states).
const JSON_ESTIMATE_FACTOR: f64 = 1.5;

/// 200 gRPC connections each sending 64 KiB of HTTP/2 PINGs (3,640 pings)
/// with the default keepalive policy: each is closed with GOAWAY
/// ENHANCE_YOUR_CALM "too_many_pings" after its fourth ping, as grpc-go
/// closes it, instead of being answered ping for ping.
#[test]
fn ping_floods_are_closed_with_too_many_pings() {
    let _turn = turn();
    let dir = temp_dir();
    let agent = agent(dir.path(), "", "");
    let t = Instant::now();
    let mut flood = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0".to_vec();
    let ping = b"\0\0\x08\x06\0\0\0\0\0\x01\x02\x03\x04\x05\x06\x07\x08";
    flood.extend(ping.repeat(64 * 1024 / ping.len()));
    let goaway = b"\0\0\x16\x07\0\0\0\0\0\0\0\0\0\0\0\0\x0btoo_many_pings";
    let (mut told, mut closed) = (0, 0);
    for _ in 0..200 {
        let mut s = TcpStream::connect(agent.grpc_endpoint()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        // The agent may close before all of it is written.
        let _ = s.write_all(&flood);
        let mut got = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(n) => got.extend_from_slice(&buf[..n]),
                // A reset: the agent closed with pings still unread.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    closed += 1;
                    break;
                }
                Err(e) => panic!("the agent kept a flooding connection open: {e}"),
            }
        }
        told += usize::from(got.windows(goaway.len()).any(|w| w == goaway));
        // At most the three pings before the closing one are answered.
        let pongs = got.windows(ping.len()).filter(|w| w[3] == 0x06 && w[4] == 0x01).count();
        assert!(pongs <= 3, "{pongs} pings answered");
    }
    eprintln!("hostile: 200 ping floods: {told} saw GOAWAY too_many_pings, {closed} closed");
    assert_eq!(closed, 200);
    assert!(told >= 150, "GOAWAY seen on {told} of 200 connections");
    let counted = agent
        .metric("sluice_receiver_connections_closed_total", &[("transport", "grpc"), ("reason", "too_many_pings")]);
    assert_eq!(counted, 200.0);
    report("200 gRPC connections flooding PINGs", &agent, t.elapsed());
    normal_export_works(&agent);
    agent.stop();
}
