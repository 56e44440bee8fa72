//! The request a sender repeats: built and encoded once, then patched in
//! place before each send so that every request carries new trace IDs (tail
//! sampling sees new traces) or new series keys (the cardinality limiter sees
//! new series), without re-encoding.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, status, ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use sluice::data::fixtures::kv;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }
}

/// What one request holds.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Spans, metric points or log records per request.
    pub items: usize,
    /// Attributes per item: up to 10 realistic ones (HTTP server span
    /// attributes, the shape of the criterion benches), then `extra.N`
    /// strings of `attribute_size` bytes.
    pub attributes: usize,
    pub attribute_size: usize,
    /// Spans per trace (fan-out); each trace is a chain root → child → ...
    pub spans_per_trace: usize,
    /// Share of spans with status ERROR (and HTTP 500).
    pub error_ratio: f64,
    /// Share of spans lasting 6 s instead of 250 µs.
    pub slow_ratio: f64,
    /// Metrics and logs: distinct `user.id` / `request_id` values cycled
    /// through across requests; 0 makes every value new.
    pub cardinality: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PatchKind {
    /// The low 8 bytes of a trace ID.
    TraceId,
    /// A 16-character hex string (an attribute value or part of a log body).
    Hex16,
}

#[derive(Debug, Clone, Copy)]
struct Patch {
    offset: usize,
    /// Trace number within the request (TraceId) or item number (Hex16).
    index: u64,
    kind: PatchKind,
}

/// An encoded request and where to patch it.
#[derive(Debug, Clone)]
pub struct Body {
    pub encoded: Vec<u8>,
    pub items: usize,
    patches: Vec<Patch>,
    cardinality: u64,
}

/// A 64-bit mix with no fixed point at 0: request numbers become IDs.
pub fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// True for `ratio` of the indices, spread evenly (exactly floor(n * ratio) of 0..n).
pub fn picked(i: usize, ratio: f64) -> bool {
    ((i + 1) as f64 * ratio).floor() > (i as f64 * ratio).floor()
}

/// Marks in the trace ID's low half and in hex placeholders, found again in
/// the encoding to know where to patch.
const TRACE_MARKER: u64 = 0x5eed_5eed_5eed_5eed;
const HEX_MARKER: &[u8; 3] = b"ZQX";

fn hex_placeholder(i: usize) -> String {
    format!("ZQX{i:013}")
}

fn write_hex16(dst: &mut [u8], v: u64) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (k, b) in dst[..16].iter_mut().enumerate() {
        *b = DIGITS[((v >> (60 - 4 * k)) & 0xf) as usize];
    }
}

impl Body {
    pub fn build(signal: Signal, shape: &Shape) -> Body {
        let encoded = match signal {
            Signal::Traces => traces(shape).encode_to_vec(),
            Signal::Metrics => metrics(shape).encode_to_vec(),
            Signal::Logs => logs(shape).encode_to_vec(),
        };
        let mut patches = Vec::new();
        let marker = TRACE_MARKER.to_be_bytes();
        let mut i = 0;
        while i + 16 <= encoded.len() {
            if signal == Signal::Traces && i >= 8 && encoded[i..i + 8] == marker {
                let t = u64::from_be_bytes(encoded[i - 8..i].try_into().unwrap());
                patches.push(Patch { offset: i, index: t, kind: PatchKind::TraceId });
                i += 8;
            } else if &encoded[i..i + 3] == HEX_MARKER && encoded[i + 3..i + 16].iter().all(u8::is_ascii_digit) {
                let n: u64 = std::str::from_utf8(&encoded[i + 3..i + 16]).unwrap().parse().unwrap();
                patches.push(Patch { offset: i, index: n, kind: PatchKind::Hex16 });
                i += 16;
            } else {
                i += 1;
            }
        }
        assert_eq!(patches.len(), shape.items, "every item must carry exactly one patchable field");
        Body { encoded, items: shape.items, patches, cardinality: shape.cardinality }
    }

    /// Rewrites `buf` (a copy of `encoded`) for request number `request`.
    pub fn patch(&self, buf: &mut [u8], request: u64) {
        for p in &self.patches {
            match p.kind {
                PatchKind::TraceId => {
                    let id = splitmix64(request << 20 | p.index);
                    buf[p.offset..p.offset + 8].copy_from_slice(&id.to_be_bytes());
                }
                PatchKind::Hex16 => {
                    let key = if self.cardinality > 0 {
                        (request * self.items as u64 + p.index) % self.cardinality
                    } else {
                        request << 20 | p.index
                    };
                    write_hex16(&mut buf[p.offset..], splitmix64(key));
                }
            }
        }
    }
}

fn string(s: impl Into<String>) -> any_value::Value {
    any_value::Value::StringValue(s.into())
}

/// The item's attributes: the first `n` of the 10 realistic ones, then extras.
fn attributes(shape: &Shape, i: usize, error: bool) -> Vec<KeyValue> {
    let realistic = [
        kv("http.request.method", string("GET")),
        kv("http.route", string(format!("/api/v1/items/{}", i % 50))),
        kv("http.response.status_code", any_value::Value::IntValue(if error { 500 } else { 200 })),
        kv("url.scheme", string("https")),
        kv("server.address", string("items.internal")),
        kv("server.port", any_value::Value::IntValue(8443)),
        kv("user_agent.original", string("Mozilla/5.0 (X11; Linux x86_64)")),
        kv("net.peer.ip", string("10.1.2.3")),
        kv("retry", any_value::Value::BoolValue(false)),
        kv("payload.ratio", any_value::Value::DoubleValue(0.75)),
    ];
    let mut out: Vec<KeyValue> = realistic.into_iter().take(shape.attributes).collect();
    for k in out.len()..shape.attributes {
        let value: String = (0..shape.attribute_size).map(|j| (b'a' + ((i + j + k) % 26) as u8) as char).collect();
        out.push(kv(&format!("extra.{k}"), string(value)));
    }
    out
}

fn resource() -> Resource {
    Resource {
        attributes: vec![kv("service.name", string("items")), kv("k8s.pod.name", string("items-7d9f-abcde"))],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "sluice-loadgen".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn traces(shape: &Shape) -> ExportTraceServiceRequest {
    let per_trace = shape.spans_per_trace.max(1);
    let base = now_ns();
    let spans = (0..shape.items)
        .map(|i| {
            let t = (i / per_trace) as u64;
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&t.to_be_bytes());
            trace_id[8..].copy_from_slice(&TRACE_MARKER.to_be_bytes());
            let error = picked(i, shape.error_ratio);
            let duration = if picked(i, shape.slow_ratio) { 6_000_000_000 } else { 250_000 };
            let start = base + i as u64 * 1000;
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: if i % per_trace == 0 { vec![] } else { (i as u64).to_be_bytes().to_vec() },
                name: format!("GET /api/v1/items/{}", i % 50),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + duration,
                attributes: attributes(shape, i, error),
                status: Some(if error {
                    Status { code: status::StatusCode::Error as i32, message: "internal error".into() }
                } else {
                    Status::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    }
}

/// One cumulative counter whose points each carry a `user.id`: with
/// `cardinality` 0 every point of every request is a new series.
fn metrics(shape: &Shape) -> ExportMetricsServiceRequest {
    let now = now_ns();
    let points = (0..shape.items)
        .map(|i| {
            let mut attributes = attributes(shape, i, false);
            attributes.push(kv("user.id", string(hex_placeholder(i))));
            NumberDataPoint {
                attributes,
                start_time_unix_nano: now - 60_000_000_000,
                time_unix_nano: now,
                value: Some(number_data_point::Value::AsInt(i as i64 + 1)),
                ..Default::default()
            }
        })
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource()),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![Metric {
                    name: "http.server.request.count".into(),
                    unit: "{request}".into(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: points,
                        aggregation_temporality: AggregationTemporality::Cumulative as i32,
                        is_monotonic: true,
                    })),
                    ..Default::default()
                }],
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// Noisy logs: a few body templates repeated with a new request ID each, most
/// at INFO, some WARN, a share (`error_ratio`) at ERROR.
fn logs(shape: &Shape) -> ExportLogsServiceRequest {
    const TEMPLATES: [&str; 5] = [
        "GET /api/v1/items took 12 ms request_id=",
        "cache miss for key items:42 request_id=",
        "retrying upstream call attempt=2 request_id=",
        "connection reset by peer 10.1.2.3:8443 request_id=",
        "slow query on table items (250 ms) request_id=",
    ];
    let now = now_ns();
    let records = (0..shape.items)
        .map(|i| {
            let (number, text) = if picked(i, shape.error_ratio) {
                (17, "ERROR")
            } else if i % 5 == 3 {
                (13, "WARN")
            } else {
                (9, "INFO")
            };
            LogRecord {
                time_unix_nano: now + i as u64,
                observed_time_unix_nano: now + i as u64,
                severity_number: number,
                severity_text: text.into(),
                body: Some(AnyValue { value: Some(string(format!("{}{}", TEMPLATES[i % 5], hex_placeholder(i)))) }),
                attributes: attributes(shape, i, number == 17),
                ..Default::default()
            }
        })
        .collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs { scope: Some(scope()), log_records: records, schema_url: String::new() }],
            schema_url: String::new(),
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(items: usize) -> Shape {
        Shape {
            items,
            attributes: 12,
            attribute_size: 8,
            spans_per_trace: 10,
            error_ratio: 0.1,
            slow_ratio: 0.05,
            cardinality: 0,
        }
    }

    #[test]
    fn patched_traces_decode_with_new_trace_ids() {
        let body = Body::build(Signal::Traces, &shape(100));
        let mut buf = body.encoded.clone();
        body.patch(&mut buf, 7);
        let req = ExportTraceServiceRequest::decode(&buf[..]).unwrap();
        let spans = &req.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 100);
        let traces: std::collections::HashSet<_> = spans.iter().map(|s| s.trace_id.clone()).collect();
        assert_eq!(traces.len(), 10);
        assert_eq!(spans.iter().filter(|s| s.status.as_ref().unwrap().code == 2).count(), 10);
        assert_eq!(spans[0].attributes.len(), 12);
        let mut other = body.encoded.clone();
        body.patch(&mut other, 8);
        let req8 = ExportTraceServiceRequest::decode(&other[..]).unwrap();
        assert_ne!(req8.resource_spans[0].scope_spans[0].spans[0].trace_id, spans[0].trace_id);
    }

    #[test]
    fn patched_metrics_and_logs_stay_valid_utf8() {
        for signal in [Signal::Metrics, Signal::Logs] {
            let body = Body::build(signal, &shape(50));
            let mut buf = body.encoded.clone();
            body.patch(&mut buf, 3);
            match signal {
                Signal::Metrics => {
                    let r = ExportMetricsServiceRequest::decode(&buf[..]).unwrap();
                    let Some(metric::Data::Sum(s)) = &r.resource_metrics[0].scope_metrics[0].metrics[0].data else {
                        panic!()
                    };
                    let ids: std::collections::HashSet<_> =
                        s.data_points.iter().map(|p| format!("{:?}", p.attributes.last())).collect();
                    assert_eq!(ids.len(), 50);
                }
                _ => {
                    let r = ExportLogsServiceRequest::decode(&buf[..]).unwrap();
                    assert_eq!(r.resource_logs[0].scope_logs[0].log_records.len(), 50);
                }
            }
        }
    }
}
