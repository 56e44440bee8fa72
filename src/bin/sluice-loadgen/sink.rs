//! `sink`: accepts OTLP over gRPC and/or HTTP and counts, costing far less
//! than the agent it measures.
//!
//! By default the items of each request (spans, metric data points, log
//! records) are counted by a walk of the wire format that does not decode
//! them: enough to count exactly. `--no-decode` counts only requests and
//! bytes: the I/O ceiling, the most a receiver on this machine could take.
//! It prints its totals as one JSON line on SIGTERM/SIGINT or after
//! `--idle-exit` seconds without a request (and writes them to `--report`).
//!
//! It reads every codec a Collector's OTLP receivers read, with sluice's
//! own receiver code (gRPC: gzip, zstd, snappy; HTTP: also zlib, deflate,
//! x-snappy-framed, lz4), bodies up to 256 MiB compressed or not.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Frame;
use sluice::receivers::otlp::decode::{inflate, Compression};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct SinkArgs {
    /// Listen for OTLP/gRPC here (e.g. 127.0.0.1:4317).
    #[arg(long)]
    pub grpc: Option<SocketAddr>,
    /// Listen for OTLP/HTTP here (e.g. 127.0.0.1:4318): POST /v1/traces, /v1/metrics, /v1/logs (protobuf).
    #[arg(long)]
    pub http: Option<SocketAddr>,
    /// Count requests and bytes only; do not decode.
    #[arg(long)]
    pub no_decode: bool,
    /// Exit after this many seconds without a request (once one has come).
    #[arg(long)]
    pub idle_exit: Option<f64>,
    /// Also write the totals to this file.
    #[arg(long)]
    pub report: Option<std::path::PathBuf>,
    /// Largest HTTP/2 frame the sink lets a client send, in KiB. 1024 is
    /// what a sluice gateway allows; 16 is the protocol's default, which
    /// grpc-go servers (Tempo, Jaeger, the Collector) keep.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(16..=16383))]
    pub max_frame_kib: u32,
    /// Refuse every Nth request (gRPC UNAVAILABLE, HTTP 503 with Retry-After), to test clients' handling.
    #[arg(long, default_value_t = 0)]
    pub refuse_every: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Traces,
    Metrics,
    Logs,
}

/// Items in one encoded export request: a walk of the wire format that
/// allocates nothing and does not look inside the items (sluice's own
/// lenient counter; exact on a well-formed request). A decode here would
/// make the sink, which shares a core with the sender, the bottleneck of
/// the run it measures.
fn count_items(kind: Kind, body: &[u8]) -> u64 {
    let signal = match kind {
        Kind::Traces => sluice::data::Signal::Traces,
        Kind::Metrics => sluice::data::Signal::Metrics,
        Kind::Logs => sluice::data::Signal::Logs,
    };
    sluice::data::wire::count_items(signal, body) as u64
}

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    refused: AtomicU64,
    bytes: AtomicU64,
    items: [AtomicU64; 3],
    first_ns: AtomicU64,
    last_ns: AtomicU64,
    /// When the last request arrived, refused or not: for --idle-exit.
    seen_ns: AtomicU64,
    /// Requests seen, refused or not: decides which to refuse.
    arrivals: AtomicU64,
}

struct State {
    counts: Counts,
    start: Instant,
    decode: bool,
    refuse_every: u64,
}

enum Verdict {
    Accepted,
    Refused,
    Bad(String),
}

impl State {
    /// Counts one request's body (already decompressed).
    fn take(&self, kind: Kind, body: Bytes) -> Verdict {
        let arrival = self.counts.arrivals.fetch_add(1, Ordering::Relaxed) + 1;
        self.counts.seen_ns.store(self.start.elapsed().as_nanos() as u64, Ordering::Relaxed);
        if self.refuse_every > 0 && arrival.is_multiple_of(self.refuse_every) {
            self.counts.refused.fetch_add(1, Ordering::Relaxed);
            return Verdict::Refused;
        }
        let len = body.len() as u64;
        if self.decode {
            let n = count_items(kind, &body);
            if n == 0 && !body.is_empty() {
                return Verdict::Bad("no items in a non-empty request (malformed?)".into());
            }
            self.counts.items[kind as usize].fetch_add(n, Ordering::Relaxed);
        }
        let now = self.start.elapsed().as_nanos() as u64;
        let _ = self.counts.first_ns.compare_exchange(0, now, Ordering::Relaxed, Ordering::Relaxed);
        self.counts.last_ns.store(now, Ordering::Relaxed);
        self.counts.bytes.fetch_add(len, Ordering::Relaxed);
        self.counts.requests.fetch_add(1, Ordering::Relaxed);
        Verdict::Accepted
    }

    fn totals(&self) -> serde_json::Value {
        let c = &self.counts;
        let items: Vec<u64> = c.items.iter().map(|a| a.load(Ordering::Relaxed)).collect();
        let total: u64 = items.iter().sum();
        let requests = c.requests.load(Ordering::Relaxed);
        let secs = c.last_ns.load(Ordering::Relaxed).saturating_sub(c.first_ns.load(Ordering::Relaxed)) as f64 / 1e9;
        let rate = |n: u64| if secs > 0.0 { (n as f64 / secs).round() } else { 0.0 };
        serde_json::json!({
            "decoded": self.decode,
            "requests": requests,
            "requests_refused": c.refused.load(Ordering::Relaxed),
            "bytes": c.bytes.load(Ordering::Relaxed),
            "spans": items[0],
            "metric_points": items[1],
            "log_records": items[2],
            "items": total,
            "active_seconds": (secs * 1000.0).round() / 1000.0,
            "items_per_second": rate(total),
            "requests_per_second": rate(requests),
        })
    }
}

/// The largest request body the sink reads, compressed or not.
const MAX_BODY: usize = 256 << 20;

/// A gRPC answer: an empty message (the encoding of every empty
/// Export*ServiceResponse) and `grpc-status: 0` in the trailers.
struct GrpcOk {
    message: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl hyper::body::Body for GrpcOk {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(message) = this.message.take() {
            return Poll::Ready(Some(Ok(Frame::data(message))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

type GrpcResponse = http::Response<GrpcOk>;

fn grpc_answer(code: tonic::Code, message: &str) -> GrpcResponse {
    let builder = http::Response::builder().header("content-type", "application/grpc");
    if code == tonic::Code::Ok {
        let mut trailers = http::HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        let body = GrpcOk { message: Some(Bytes::from_static(&[0; 5])), trailers: Some(trailers) };
        return builder.body(body).expect("valid response");
    }
    // Trailers-only: the status in the headers, no body.
    let message = http::HeaderValue::from_str(&message.replace(|c: char| !c.is_ascii_graphic(), " "))
        .unwrap_or(http::HeaderValue::from_static("error"));
    builder
        .header("grpc-status", (code as i32).to_string())
        .header("grpc-message", message)
        .body(GrpcOk { message: None, trailers: None })
        .expect("valid response")
}

/// The one message of a gRPC request body, decompressed (when decoding)
/// with its `grpc-encoding`: every codec a Collector's exporter sends.
fn grpc_message(body: &[u8], encoding: &str, decode: bool) -> Result<Bytes, String> {
    let Some((&[flag, a, b, c, d], rest)) = body.split_first_chunk::<5>() else {
        return Err("no gRPC message in the body".into());
    };
    let message = rest.get(..u32::from_be_bytes([a, b, c, d]) as usize).ok_or("gRPC message truncated")?;
    if flag == 0 || !decode {
        return Ok(Bytes::copy_from_slice(message));
    }
    let codec = Compression::from_content_encoding(Some(encoding))
        .filter(|c| *c != Compression::Identity)
        .ok_or_else(|| format!("compressed message with grpc-encoding {encoding:?}"))?;
    inflate(codec, message, MAX_BODY).map(Bytes::from).map_err(|e| e.to_string())
}

fn grpc_kind(path: &str) -> Option<Kind> {
    match path {
        "/opentelemetry.proto.collector.trace.v1.TraceService/Export" => Some(Kind::Traces),
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export" => Some(Kind::Metrics),
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export" => Some(Kind::Logs),
        _ => None,
    }
}

fn http_kind(path: &str) -> Option<Kind> {
    match path {
        "/v1/traces" => Some(Kind::Traces),
        "/v1/metrics" => Some(Kind::Metrics),
        "/v1/logs" => Some(Kind::Logs),
        _ => None,
    }
}

async fn grpc_call(state: Arc<State>, req: http::Request<hyper::body::Incoming>) -> Result<GrpcResponse, Infallible> {
    let Some(kind) = grpc_kind(req.uri().path()) else {
        return Ok(grpc_answer(tonic::Code::Unimplemented, "unknown method"));
    };
    let encoding = req.headers().get("grpc-encoding").and_then(|v| v.to_str().ok()).unwrap_or("identity").to_string();
    let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Ok(grpc_answer(tonic::Code::ResourceExhausted, &e.to_string())),
    };
    let message = match grpc_message(&body, &encoding, state.decode) {
        Ok(m) => m,
        Err(e) => return Ok(grpc_answer(tonic::Code::InvalidArgument, &e)),
    };
    Ok(match state.take(kind, message) {
        Verdict::Accepted => grpc_answer(tonic::Code::Ok, ""),
        Verdict::Refused => grpc_answer(tonic::Code::Unavailable, "sink refuses this request (--refuse-every)"),
        Verdict::Bad(e) => grpc_answer(tonic::Code::InvalidArgument, &e),
    })
}

fn respond(status: u16, body: &'static [u8]) -> http::Response<Full<Bytes>> {
    let mut b = http::Response::builder().status(status).header("content-type", "application/x-protobuf");
    if status == 503 {
        b = b.header("retry-after", "1");
    }
    b.body(Full::new(Bytes::from_static(body))).expect("valid response")
}

async fn http_call(
    state: Arc<State>,
    req: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    let Some(kind) = http_kind(req.uri().path()) else { return Ok(respond(404, b"not found")) };
    if req.method() != http::Method::POST {
        return Ok(respond(405, b"POST only"));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    if header("content-type").contains("json") {
        return Ok(respond(415, b"protobuf only"));
    }
    let encoding = header("content-encoding");
    let Some(codec) = Compression::from_content_encoding(Some(&encoding)) else {
        return Ok(respond(415, b"unknown content-encoding"));
    };
    let Ok(body) = Limited::new(req.into_body(), MAX_BODY).collect().await.map(|b| b.to_bytes()) else {
        return Ok(respond(400, b"body"));
    };
    let body = match codec {
        Compression::Identity => body,
        _ if !state.decode => body,
        _ => match inflate(codec, &body, MAX_BODY) {
            Ok(plain) => Bytes::from(plain),
            Err(_) => return Ok(respond(400, b"cannot decompress")),
        },
    };
    Ok(match state.take(kind, body) {
        Verdict::Accepted => respond(200, b""),
        Verdict::Refused => respond(503, b""),
        Verdict::Bad(_) => respond(400, b"bad protobuf"),
    })
}

/// HTTP/2 flow-control windows far above hyper's 1 MiB default. The sink
/// shares a core with a load generator running flat out, so it is often not
/// scheduled for a while; with small windows an exporter sending 3 MiB
/// batches on several streams of one connection would stall waiting for
/// WINDOW_UPDATEs, and the run would measure the sink, not the agent.
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 64 << 20;

pub fn run(args: SinkArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.grpc.is_some() || args.http.is_some(), "give --grpc ADDR and/or --http ADDR");
    // One thread: the sink must cost little and stay on the core it is pinned to.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let state = Arc::new(State {
        counts: Counts::default(),
        start: Instant::now(),
        decode: !args.no_decode,
        refuse_every: args.refuse_every,
    });
    rt.block_on(serve(&args, state.clone()))?;
    let totals = state.totals().to_string();
    println!("{totals}");
    if let Some(path) = &args.report {
        std::fs::write(path, format!("{totals}\n"))?;
    }
    Ok(())
}

async fn serve(args: &SinkArgs, state: Arc<State>) -> anyhow::Result<()> {
    let grpc = match args.grpc {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    let http = match args.http {
        Some(a) => Some(tokio::net::TcpListener::bind(a).await?),
        None => None,
    };
    for (name, l) in [("grpc", &grpc), ("http", &http)] {
        if let Some(l) = l {
            eprintln!("sluice-loadgen sink: {name} listening on {}", l.local_addr()?);
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let idle = args.idle_exit.map(Duration::from_secs_f64);
    let max_frame = args.max_frame_kib << 10;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            Some(Ok((stream, _))) = accept(&grpc) => {
                let state = state.clone();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| grpc_call(state.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
                        .initial_stream_window_size(STREAM_WINDOW)
                        .initial_connection_window_size(CONNECTION_WINDOW)
                        .max_frame_size(max_frame)
                        .serve_connection(io, service)
                        .await;
                });
            }
            Some(Ok((stream, _))) = accept(&http) => {
                let state = state.clone();
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| http_call(state.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
                    builder
                        .http2()
                        .initial_stream_window_size(STREAM_WINDOW)
                        .initial_connection_window_size(CONNECTION_WINDOW)
                        .max_frame_size(max_frame);
                    let _ = builder.serve_connection(io, service)
                        .await;
                });
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = tick.tick() => {
                let last = state.counts.seen_ns.load(Ordering::Relaxed);
                if let Some(idle) = idle {
                    let now = state.start.elapsed().as_nanos() as u64;
                    if last > 0 && now.saturating_sub(last) > idle.as_nanos() as u64 {
                        break;
                    }
                }
            }
        }
    }
    Ok(())
}

/// Accepts on `listener`, or never resolves when there is none.
async fn accept(
    listener: &Option<tokio::net::TcpListener>,
) -> Option<std::io::Result<(tokio::net::TcpStream, SocketAddr)>> {
    match listener {
        Some(l) => Some(l.accept().await),
        None => std::future::pending().await,
    }
}
