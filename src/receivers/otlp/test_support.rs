//! Test harness: a receiver on 127.0.0.1:0 feeding a recording sink, sample
//! requests, and small raw HTTP/1.1 and gRPC clients.

use super::config::{GrpcServerConfig, HttpServerConfig, OtlpReceiverConfig, Protocols};
use crate::data::{Batch, Payload, Signal};
use crate::receivers::{BatchSink, ReceiverContext, ReceiverOutput, Refusal, RunningReceiver};
use crate::telemetry::Registry;
use bytes::Bytes;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

pub const RECEIVER_ID: &str = "otlp";

#[derive(Default)]
pub struct Sink {
    batches: Mutex<Vec<Batch>>,
    refusing: AtomicBool,
    signals: Vec<Signal>,
    /// Time each offer takes, to hold a request in flight.
    delay: std::time::Duration,
    /// Like a pipeline with a persistent queue: each offer hands out a
    /// completion handle, completed with this outcome 50 ms later.
    durable: Mutex<Option<bool>>,
    /// Says it forwards encoded batches, as a pass-through pipeline does.
    takes_encoded: bool,
    /// Offers that came still encoded.
    pub encoded_offers: std::sync::atomic::AtomicUsize,
    /// Like a memory limiter's headroom: requests estimated above it are refused.
    headroom: Mutex<Option<u64>>,
    /// The decoded size of every request admitted or refused, as estimated.
    pub estimates: Mutex<Vec<u64>>,
}

impl Sink {
    pub fn recording() -> Arc<Sink> {
        Arc::new(Sink { signals: Signal::ALL.to_vec(), ..Default::default() })
    }

    /// A sink standing for a pass-through pipeline: receivers hand it checked bytes.
    pub fn pass_through() -> Arc<Sink> {
        Arc::new(Sink { signals: Signal::ALL.to_vec(), takes_encoded: true, ..Default::default() })
    }

    pub fn traces_only() -> Arc<Sink> {
        Arc::new(Sink { signals: vec![Signal::Traces], ..Default::default() })
    }

    pub fn slow(delay: std::time::Duration) -> Arc<Sink> {
        Arc::new(Sink { signals: Signal::ALL.to_vec(), delay, ..Default::default() })
    }

    /// Makes every offer wait for a (simulated) write to disk with this outcome.
    pub fn durable(&self, stored: bool) {
        *self.durable.lock().unwrap() = Some(stored);
    }

    pub fn headroom(&self, bytes: Option<u64>) {
        *self.headroom.lock().unwrap() = bytes;
    }

    pub fn refuse(&self, on: bool) {
        self.refusing.store(on, Ordering::SeqCst);
    }

    pub fn batches(&self) -> Vec<Batch> {
        self.batches.lock().unwrap().clone()
    }
}

impl BatchSink for Sink {
    fn offer(&self, batch: Payload) -> Result<(), Refusal> {
        std::thread::sleep(self.delay);
        if self.refusing.load(Ordering::SeqCst) {
            return Err(Refusal::PipelineFull);
        }
        if matches!(batch, Payload::Encoded(_)) {
            self.encoded_offers.fetch_add(1, Ordering::SeqCst);
        }
        self.batches.lock().unwrap().push(batch.into_decoded().expect("checked payloads decode"));
        Ok(())
    }

    fn takes_encoded(&self) -> bool {
        self.takes_encoded
    }

    fn admit(&self, estimate: crate::data::estimate::Estimate) -> Result<(), Refusal> {
        let decoded_bytes = estimate.decoded_bytes;
        self.estimates.lock().unwrap().push(decoded_bytes);
        if self.headroom.lock().unwrap().is_some_and(|h| decoded_bytes > h) {
            return Err(Refusal::MemoryHeadroom);
        }
        if self.refusing.load(Ordering::SeqCst) {
            return Err(Refusal::PipelineFull);
        }
        Ok(())
    }

    fn offer_acked(&self, batch: Payload, acks: &mut crate::receivers::Acks) -> Result<(), Refusal> {
        self.offer(batch)?;
        if let Some(stored) = *self.durable.lock().unwrap() {
            let done = acks.expect();
            std::thread::spawn(move || {
                std::thread::sleep(std::time::Duration::from_millis(50));
                let _ = done.send(stored);
            });
        }
        Ok(())
    }
}

pub struct Harness {
    pub sink: Arc<Sink>,
    registry: Registry,
    running: RunningReceiver,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Harness {
    pub async fn start(sink: Arc<Sink>) -> Harness {
        Self::start_with(sink, |_| {}).await
    }

    pub async fn start_with(sink: Arc<Sink>, tweak: impl FnOnce(&mut OtlpReceiverConfig)) -> Harness {
        let mut cfg = OtlpReceiverConfig {
            protocols: Protocols {
                grpc: Some(GrpcServerConfig { endpoint: "127.0.0.1:0".into(), ..Default::default() }),
                http: Some(HttpServerConfig { endpoint: "127.0.0.1:0".into(), ..Default::default() }),
            },
        };
        tweak(&mut cfg);
        let mut output = ReceiverOutput::default();
        for s in &sink.signals {
            output.add(*s, sink.clone());
        }
        let registry = Registry::new();
        let (stop, shutdown) = tokio::sync::watch::channel(false);
        let ctx = ReceiverContext {
            id: RECEIVER_ID.into(),
            output,
            registry: registry.clone(),
            shutdown,
            extensions: Default::default(),
        };
        let running = super::start(&cfg, ctx).await.unwrap();
        Harness { sink, registry, running, stop }
    }

    fn addr(&self, transport: &str) -> SocketAddr {
        self.running.endpoints.iter().find(|(t, _)| *t == transport).map(|(_, a)| *a).unwrap()
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.addr("grpc")
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.addr("http")
    }

    pub fn durable_ack_failures(&self, transport: &str) -> u64 {
        self.counter(
            "sluice_receiver_durable_ack_failures_total",
            &[("receiver", RECEIVER_ID), ("transport", transport)],
        )
    }

    fn counter(&self, name: &str, labels: &[(&'static str, &str)]) -> u64 {
        self.registry.value(name, labels).unwrap_or(0.0) as u64
    }

    pub fn accepted(&self, transport: &str, signal: Signal) -> u64 {
        let name = format!("otelcol_receiver_accepted_{}_total", signal.item_name());
        self.counter(&name, &[("receiver", RECEIVER_ID), ("transport", transport)])
    }

    pub fn refused(&self, transport: &str, signal: Signal) -> u64 {
        let name = format!("otelcol_receiver_refused_{}_total", signal.item_name());
        self.counter(&name, &[("receiver", RECEIVER_ID), ("transport", transport)])
    }

    pub fn malformed(&self, transport: &str, signal: Signal) -> u64 {
        self.counter(
            "sluice_receiver_malformed_requests_total",
            &[("receiver", RECEIVER_ID), ("transport", transport), ("data_type", signal.as_str())],
        )
    }

    pub fn refused_requests(&self, transport: &str, reason: &str) -> u64 {
        self.counter(
            "sluice_receiver_refused_requests_total",
            &[("receiver", RECEIVER_ID), ("transport", transport), ("reason", reason)],
        )
    }

    pub fn closed_connections(&self, transport: &str, reason: &str) -> u64 {
        self.counter(
            "sluice_receiver_connections_closed_total",
            &[("receiver", RECEIVER_ID), ("transport", transport), ("reason", reason)],
        )
    }

    /// Requests shutdown and checks that every server task ends.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        for t in self.running.tasks {
            tokio::time::timeout(std::time::Duration::from_secs(5), t).await.expect("server did not stop").unwrap();
        }
    }
}

fn kv(key: &str, v: any_value::Value) -> KeyValue {
    KeyValue { key: key.into(), value: Some(AnyValue { value: Some(v) }), ..Default::default() }
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: vec![kv("service.name", any_value::Value::StringValue("svc".into()))],
        ..Default::default()
    })
}

pub fn traces(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| Span {
            trace_id: vec![0xab; 16],
            span_id: vec![i as u8 + 1; 8],
            parent_span_id: if i == 0 { vec![] } else { vec![1; 8] },
            name: format!("span-{i}"),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_000_100_000_000,
            attributes: vec![kv("n", any_value::Value::IntValue(i as i64))],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// A gauge, a sum and a histogram with one point each.
pub fn metrics() -> ExportMetricsServiceRequest {
    let point = |v| NumberDataPoint {
        time_unix_nano: 1_700_000_000_000_000_000,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let metrics = vec![
        Metric {
            name: "g".into(),
            data: Some(metric::Data::Gauge(Gauge { data_points: vec![point(1.5)] })),
            ..Default::default()
        },
        Metric {
            name: "s".into(),
            data: Some(metric::Data::Sum(Sum {
                data_points: vec![point(7.0)],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        Metric {
            name: "h".into(),
            data: Some(metric::Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint {
                    count: 3,
                    sum: Some(6.0),
                    bucket_counts: vec![1, 2],
                    explicit_bounds: vec![2.0],
                    ..Default::default()
                }],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource(),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

pub fn logs(n: usize) -> ExportLogsServiceRequest {
    let log_records = (0..n)
        .map(|i| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000,
            severity_number: 9,
            body: Some(AnyValue { value: Some(any_value::Value::StringValue(format!("log {i}"))) }),
            trace_id: if i % 2 == 0 { vec![] } else { vec![3; 16] },
            span_id: if i % 2 == 0 { vec![] } else { vec![4; 8] },
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// A request body sent as the given chunks; its size is unknown to hyper,
/// so without a Content-Length header it goes out chunked.
struct Chunks(VecDeque<Bytes>);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.0.pop_front().map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

pub struct Answer {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_string())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// POST over h2c with prior knowledge, as gRPC-less HTTP/2 clients do.
pub async fn post_h2c(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", content_type)
        .body(Chunks(vec![Bytes::from(body)].into()))
        .unwrap();
    let (parts, body) = sender.send_request(req).await.unwrap().into_parts();
    Answer { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

async fn send_http1(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    chunks: Vec<Bytes>,
    content_length: Option<usize>,
) -> Answer {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::builder().method(method).uri(path).header("host", addr.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(len) = content_length {
        req = req.header("content-length", len);
    }
    let resp = sender.send_request(req.body(Chunks(chunks.into())).unwrap()).await.unwrap();
    let (parts, body) = resp.into_parts();
    Answer { status: parts.status, headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

pub async fn request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    let len = body.len();
    send_http1(addr, method, path, headers, vec![Bytes::from(body)], Some(len)).await
}

pub async fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Answer {
    request(addr, "POST", path, headers, body).await
}

/// POST with `Transfer-Encoding: chunked` and no Content-Length, as the Node SDK sends.
pub async fn post_chunked(addr: SocketAddr, path: &str, content_type: &str, body: Vec<u8>) -> Answer {
    let chunks = body.chunks(100).map(Bytes::copy_from_slice).collect();
    send_http1(addr, "POST", path, &[("content-type", content_type)], chunks, None).await
}

/// Sends one uncompressed gRPC message as raw bytes and returns the answer's
/// (grpc-status, grpc-message).
/// With `encoding`, the message is flagged compressed and sent as is.
pub async fn raw_grpc(addr: SocketAddr, path: &str, message: &[u8], encoding: Option<&str>) -> (i32, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let mut framed = vec![u8::from(encoding.is_some())];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    if let Some(e) = encoding {
        req = req.header("grpc-encoding", e);
    }
    let req = req.body(Chunks(vec![Bytes::from(framed)].into())).unwrap();
    let resp = sender.send_request(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let status = match tonic::Status::from_header_map(&parts.headers) {
        Some(s) => s,
        None => {
            let trailers = body.collect().await.unwrap().trailers().cloned().unwrap_or_default();
            tonic::Status::from_header_map(&trailers).expect("no grpc-status")
        }
    };
    (status.code() as i32, status.message().to_string())
}
