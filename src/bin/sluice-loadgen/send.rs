//! `send`: drives OTLP/gRPC or OTLP/HTTP at a fixed rate or flat out and
//! reports what the client saw: requests ok / refused / failed, items/s and
//! latency percentiles.
//!
//! Refused means the server asked to be retried later: gRPC UNAVAILABLE or
//! RESOURCE_EXHAUSTED, HTTP 503 or 429. Refused requests are not resent (the
//! count is the point), but the sender that was refused backs off as an
//! OTLP exporter must: it waits `--refused-backoff-ms` before its next
//! request, doubling with each refusal in a row up to 64 times that, so an
//! overloaded server is not also flooded with requests it must refuse. Latency is measured per successful request, from
//! just before it is written to when its response has arrived; in rate mode
//! a request waits for its scheduled time first, and that wait is not counted.
//!
//! `--compression` compresses each request with any codec the Collector's
//! exporters send, framed as they frame it (gRPC messages are compressed
//! and flagged here, not by tonic, which has no snappy).

use crate::body::{Body, Shape, Signal};
use crate::histogram::Histogram;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use sluice::exporters::otlp_common::compression::{Compression, CompressionParams, Encoder, Transport};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::codegen::Service;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Protocol {
    Grpc,
    Http,
}

#[derive(Debug, clap::Args)]
pub struct SendArgs {
    /// gRPC: `http://HOST:PORT` (or `HOST:PORT`); HTTP: `http://HOST:PORT`, to which `/v1/<signal>` is added
    /// unless a path is given.
    #[arg(long)]
    pub endpoint: String,
    #[arg(long, value_enum, default_value = "grpc")]
    pub protocol: Protocol,
    #[arg(long, value_enum, default_value = "traces")]
    pub signal: Signal,
    /// gRPC: HTTP/2 connections. HTTP: the pool holds up to connections × concurrency HTTP/1.1 connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 2)]
    pub concurrency: usize,
    /// Requests per second in total; 0 sends flat out.
    #[arg(long, default_value_t = 0.0)]
    pub rate: f64,
    /// Stop after this many seconds (default 10 unless --requests is given).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Stop after this many requests.
    #[arg(long)]
    pub requests: Option<u64>,
    /// Spans (metric points, log records) per request.
    #[arg(long, alias = "items-per-request", default_value_t = 1000)]
    pub spans_per_request: usize,
    /// Attributes per item: up to 10 realistic HTTP ones, then `extra.N` strings.
    #[arg(long, default_value_t = 10)]
    pub attributes: usize,
    /// Bytes of each extra attribute's string value (attributes beyond the first 10).
    #[arg(long, default_value_t = 32)]
    pub attribute_size: usize,
    /// Spans per trace (trace fan-out).
    #[arg(long, default_value_t = 10)]
    pub spans_per_trace: usize,
    /// Share of spans (or log records) with status ERROR.
    #[arg(long, default_value_t = 0.0)]
    pub error_ratio: f64,
    /// Share of spans lasting 6 s (above a 5 s latency policy).
    #[arg(long, default_value_t = 0.0)]
    pub slow_ratio: f64,
    /// Metrics and logs: distinct user.id / request_id values cycled through; 0 = always new.
    #[arg(long, default_value_t = 0)]
    pub cardinality: u64,
    /// Compress each request with this codec, as the Collector's exporters
    /// do (gRPC: gzip, zstd, snappy; HTTP: also zlib, deflate,
    /// x-snappy-framed, lz4), at the Collector's default level.
    #[arg(long, value_enum, default_value = "none")]
    pub compression: Codec,
    /// Short for `--compression gzip`.
    #[arg(long, conflicts_with = "compression")]
    pub gzip: bool,
    /// Runtime worker threads (default: the CPUs this process may run on).
    #[arg(long)]
    pub threads: Option<usize>,
    /// First wait after a refused request, in milliseconds (0: none); it
    /// doubles with each refusal in a row, up to 64 times this.
    #[arg(long, default_value_t = 5)]
    pub refused_backoff_ms: u64,
}

/// The request compressions the sender offers: every codec the Collector's
/// OTLP exporters send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Codec {
    None,
    Gzip,
    Zstd,
    Snappy,
    Zlib,
    Deflate,
    #[value(name = "x-snappy-framed")]
    SnappyFramed,
    Lz4,
}

impl Codec {
    fn compression(self) -> Compression {
        match self {
            Codec::None => Compression::None,
            Codec::Gzip => Compression::Gzip,
            Codec::Zstd => Compression::Zstd,
            Codec::Snappy => Compression::Snappy,
            Codec::Zlib => Compression::Zlib,
            Codec::Deflate => Compression::Deflate,
            Codec::SnappyFramed => Compression::SnappyFramed,
            Codec::Lz4 => Compression::Lz4,
        }
    }
}

/// What a request is compressed with: the codec, the transport it frames
/// for (snappy is a block over HTTP, the framing format over gRPC) and the
/// encoder at the Collector's default level for that codec.
#[derive(Clone, Copy)]
struct Packing {
    transport: Transport,
    encoder: Option<Encoder>,
}

impl Packing {
    fn new(codec: Codec, protocol: Protocol) -> anyhow::Result<Packing> {
        let transport = match protocol {
            Protocol::Grpc => Transport::Grpc,
            Protocol::Http => Transport::Http,
        };
        anyhow::ensure!(
            codec.compression().available_over(transport),
            "--compression {:?} is an HTTP codec; over gRPC use gzip, zstd or snappy",
            codec.compression().name()
        );
        // Level 6 for the deflate family, the Collector's default (and zlib's).
        let params = CompressionParams { level: -1 };
        Ok(Packing { transport, encoder: Encoder::new(codec.compression(), &params, transport) })
    }

    /// The body as sent: over gRPC, the length-prefixed message (flagged
    /// compressed when it is); over HTTP, the (compressed) protobuf.
    fn pack(&self, message: &[u8]) -> Bytes {
        let mut out = Vec::with_capacity(message.len() + 5);
        if self.transport == Transport::Grpc {
            out.extend_from_slice(&[u8::from(self.encoder.is_some()), 0, 0, 0, 0]);
        }
        let mut out = match &self.encoder {
            Some(enc) => enc.compress(&[message], out, self.transport).expect("in-memory compression"),
            None => {
                out.extend_from_slice(message);
                out
            }
        };
        if self.transport == Transport::Grpc {
            let len = u32::try_from(out.len() - 5).expect("a request under 4 GiB");
            out[1..5].copy_from_slice(&len.to_be_bytes());
        }
        out.into()
    }

    /// The `grpc-encoding` / `Content-Encoding` header, if compressed.
    fn encoding(&self) -> Option<&'static str> {
        self.encoder.map(|e| e.compression().name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Refused,
    Failed,
}

/// What one sender task saw.
#[derive(Default)]
struct TaskReport {
    ok: u64,
    refused: u64,
    failed: u64,
    latency: Histogram,
    first_error: Option<String>,
}

enum Client {
    Grpc { channel: tonic::transport::Channel, path: &'static str, encoding: Option<&'static str> },
    Http { client: Box<HttpClient>, uri: http::Uri, encoding: Option<&'static str> },
}

type HttpClient = hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

impl Client {
    async fn send(&mut self, body: Bytes) -> (Outcome, Option<String>) {
        match self {
            Client::Grpc { channel, path, encoding } => {
                let mut req = http::Request::new(tonic::body::Body::new(Full::new(body)));
                *req.method_mut() = http::Method::POST;
                *req.uri_mut() = http::Uri::from_static(path);
                let headers = req.headers_mut();
                headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/grpc"));
                headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
                if let Some(encoding) = encoding {
                    headers.insert("grpc-encoding", http::HeaderValue::from_static(encoding));
                }
                if let Err(e) = std::future::poll_fn(|cx| channel.poll_ready(cx)).await {
                    return (Outcome::Failed, Some(format!("connection: {e}")));
                }
                let status = match channel.call(req).await {
                    Err(e) => tonic::Status::from_error(Box::new(e)),
                    // A trailers-only answer carries its status in the headers.
                    Ok(resp) => match tonic::Status::from_header_map(resp.headers()) {
                        Some(status) => status,
                        None => match resp.into_body().collect().await {
                            Ok(answer) => answer
                                .trailers()
                                .and_then(tonic::Status::from_header_map)
                                .unwrap_or_else(|| tonic::Status::internal("an answer without grpc-status")),
                            Err(e) => tonic::Status::internal(format!("reading the answer: {e}")),
                        },
                    },
                };
                match status.code() {
                    tonic::Code::Ok => (Outcome::Ok, None),
                    tonic::Code::Unavailable | tonic::Code::ResourceExhausted => (Outcome::Refused, None),
                    code => (Outcome::Failed, Some(format!("gRPC {code:?}: {}", status.message()))),
                }
            }
            Client::Http { client, uri, encoding } => {
                let mut req = http::Request::post(uri.clone()).header("content-type", "application/x-protobuf");
                if let Some(encoding) = encoding {
                    req = req.header("content-encoding", *encoding);
                }
                let req = req.body(Full::new(body)).expect("valid request");
                match client.request(req).await {
                    Ok(resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.into_body().collect().await;
                        match status {
                            200..=299 => (Outcome::Ok, None),
                            429 | 503 => (Outcome::Refused, None),
                            s => (Outcome::Failed, Some(format!("HTTP {s}"))),
                        }
                    }
                    Err(e) => (Outcome::Failed, Some(format!("HTTP: {e}"))),
                }
            }
        }
    }
}

fn grpc_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    }
}

pub fn run(args: SendArgs) -> anyhow::Result<()> {
    let threads = args.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads.max(1)).enable_all().build()?;
    let report = rt.block_on(send(args))?;
    println!("{report}");
    Ok(())
}

async fn send(args: SendArgs) -> anyhow::Result<serde_json::Value> {
    let shape = Shape {
        items: args.spans_per_request,
        attributes: args.attributes,
        attribute_size: args.attribute_size,
        spans_per_trace: args.spans_per_trace,
        error_ratio: args.error_ratio,
        slow_ratio: args.slow_ratio,
        cardinality: args.cardinality,
    };
    let body = Arc::new(Body::build(args.signal, &shape));
    let max_requests = args.requests.unwrap_or(u64::MAX);
    let duration = match (args.duration, args.requests) {
        (Some(d), _) => Some(Duration::from_secs_f64(d)),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(10)),
    };
    let workers = args.connections.max(1) * args.concurrency.max(1);
    let codec = if args.gzip { Codec::Gzip } else { args.compression };
    let packing = Packing::new(codec, args.protocol)?;
    let encoding = packing.encoding();

    // One client per worker; gRPC workers of one connection share its channel.
    let mut clients = Vec::with_capacity(workers);
    match args.protocol {
        Protocol::Grpc => {
            let endpoint =
                if args.endpoint.contains("://") { args.endpoint.clone() } else { format!("http://{}", args.endpoint) };
            let path = grpc_path(args.signal);
            for _ in 0..args.connections.max(1) {
                let channel = tonic::transport::Endpoint::from_shared(endpoint.clone())?
                    .connect()
                    .await
                    .map_err(|e| anyhow::anyhow!("cannot connect to {endpoint}: {e}"))?;
                for _ in 0..args.concurrency.max(1) {
                    clients.push(Client::Grpc { channel: channel.clone(), path, encoding });
                }
            }
        }
        Protocol::Http => {
            let mut uri: http::Uri = args.endpoint.parse()?;
            if uri.path() == "/" || uri.path().is_empty() {
                uri = format!("{}/v1/{}", args.endpoint.trim_end_matches('/'), args.signal.name()).parse()?;
            }
            let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_max_idle_per_host(workers)
                .build_http();
            for _ in 0..workers {
                clients.push(Client::Http { client: Box::new(client.clone()), uri: uri.clone(), encoding });
            }
        }
    }

    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = duration.map(|d| start + d);
    let interval = (args.rate > 0.0).then(|| Duration::from_secs_f64(1.0 / args.rate));
    let first_backoff = Duration::from_millis(args.refused_backoff_ms);
    let mut tasks = Vec::with_capacity(workers);
    for mut client in clients {
        let (body, next) = (body.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut report = TaskReport::default();
            let mut buf = body.encoded.clone();
            let mut backoff = first_backoff;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= max_requests || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if let Some(interval) = interval {
                    let at = start + interval.mul_f64(n as f64);
                    if deadline.is_some_and(|d| at >= d) {
                        break;
                    }
                    tokio::time::sleep_until(at.into()).await;
                }
                body.patch(&mut buf, n);
                let payload = packing.pack(&buf);
                let t0 = Instant::now();
                let (outcome, error) = client.send(payload).await;
                match outcome {
                    Outcome::Ok => {
                        report.ok += 1;
                        report.latency.record(t0.elapsed().as_micros() as u64);
                        backoff = first_backoff;
                    }
                    Outcome::Refused => {
                        report.refused += 1;
                        if !backoff.is_zero() {
                            tokio::time::sleep(backoff).await;
                            backoff = (backoff * 2).min(first_backoff * 64);
                        }
                    }
                    Outcome::Failed => {
                        report.failed += 1;
                        if report.first_error.is_none() {
                            report.first_error = error;
                        }
                        // A dead endpoint must not turn into a busy loop.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            report
        }));
    }
    let mut total = TaskReport::default();
    for t in tasks {
        let r = t.await?;
        total.ok += r.ok;
        total.refused += r.refused;
        total.failed += r.failed;
        total.latency.merge(&r.latency);
        if total.first_error.is_none() {
            total.first_error = r.first_error;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    if let Some(e) = &total.first_error {
        eprintln!("sluice-loadgen: {} requests failed; first error: {e}", total.failed);
    }
    let items = body.items as u64;
    let ms = |us: u64| us as f64 / 1000.0;
    Ok(serde_json::json!({
        "signal": args.signal.name(),
        "protocol": match args.protocol { Protocol::Grpc => "grpc", Protocol::Http => "http" },
        "compression": encoding.unwrap_or("none"),
        "connections": args.connections,
        "concurrency": args.concurrency,
        "refused_backoff_ms": args.refused_backoff_ms,
        "rate": args.rate,
        "items_per_request": items,
        "request_bytes": body.encoded.len(),
        "requests_ok": total.ok,
        "requests_refused": total.refused,
        "requests_failed": total.failed,
        "items_sent": total.ok * items,
        "items_refused": total.refused * items,
        "seconds": (secs * 1000.0).round() / 1000.0,
        "items_per_second": ((total.ok * items) as f64 / secs).round(),
        "requests_per_second": (total.ok as f64 / secs * 10.0).round() / 10.0,
        "latency_samples": total.latency.count(),
        "latency_p50_ms": ms(total.latency.quantile(0.50)),
        "latency_p90_ms": ms(total.latency.quantile(0.90)),
        "latency_p99_ms": ms(total.latency.quantile(0.99)),
        "latency_max_ms": ms(total.latency.max()),
        "latency_mean_ms": total.latency.mean().round() / 1000.0,
    }))
}
