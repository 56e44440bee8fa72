//! Turning request bytes into a validated [`Batch`]: plain functions with no
//! I/O, so fuzz targets and tests call them directly.
//!
//! Guarantee: no input makes these functions panic, and no input makes them
//! allocate more than `limit` bytes of decompressed body (zip bombs stop at the
//! limit with [`DecodeError::TooLarge`]).

use super::validate::{validate, ValidationError};
use crate::data::check::{check_request, WireError};
use crate::data::{Batch, EncodedBatch, Payload, Signal};
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use prost::Message;
use std::io::Read;

/// How an OTLP/HTTP body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Protobuf,
    Json,
}

impl Format {
    /// Parses a `Content-Type` value, ignoring parameters such as `charset`.
    pub fn from_content_type(value: &str) -> Option<Format> {
        let media = value.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/x-protobuf") {
            Some(Format::Protobuf)
        } else if media.eq_ignore_ascii_case("application/json") {
            Some(Format::Json)
        } else {
            None
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Protobuf => "application/x-protobuf",
            Format::Json => "application/json",
        }
    }
}

/// A request body compression: every `Content-Encoding` the Collector's
/// OTLP/HTTP receiver accepts by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Identity,
    Gzip,
    Zstd,
    /// `zlib` and `deflate`: both a zlib stream, as the Collector reads them.
    Zlib,
    /// `snappy`: the block format, or the framing format when the body starts
    /// with its stream identifier (older Collectors sent that), as the Collector.
    Snappy,
    /// `x-snappy-framed`: snappy's framing format.
    SnappyFramed,
    /// `lz4`: the LZ4 frame format.
    Lz4,
}

impl Compression {
    /// Parses a `Content-Encoding` value; absent or empty means identity.
    pub fn from_content_encoding(value: Option<&str>) -> Option<Compression> {
        let v = value.unwrap_or("").trim();
        if v.is_empty() || v.eq_ignore_ascii_case("identity") {
            Some(Compression::Identity)
        } else if v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip") {
            Some(Compression::Gzip)
        } else if v.eq_ignore_ascii_case("zstd") {
            Some(Compression::Zstd)
        } else if v.eq_ignore_ascii_case("zlib") || v.eq_ignore_ascii_case("deflate") {
            Some(Compression::Zlib)
        } else if v.eq_ignore_ascii_case("snappy") {
            Some(Compression::Snappy)
        } else if v.eq_ignore_ascii_case("x-snappy-framed") {
            Some(Compression::SnappyFramed)
        } else if v.eq_ignore_ascii_case("lz4") {
            Some(Compression::Lz4)
        } else {
            None
        }
    }
}

/// Why a request could not become a batch. Each maps to one HTTP status and
/// one gRPC code; none is retryable.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unsupported content type {0:?}; use application/x-protobuf or application/json")]
    UnsupportedContentType(String),
    #[error(
        "unsupported content encoding {0:?}; use gzip, zstd, zlib, deflate, snappy, x-snappy-framed, lz4 or identity"
    )]
    UnsupportedEncoding(String),
    #[error("request body larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("cannot decompress {encoding} body: {message}")]
    Decompress { encoding: &'static str, message: String },
    #[error("cannot decode protobuf {message_type}: {source}")]
    Protobuf { message_type: &'static str, source: prost::DecodeError },
    #[error("cannot decode JSON {message_type}: {message}")]
    Json { message_type: &'static str, message: String },
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// Found by the check of the pass-through path, which reports the same
    /// problems as a decode (`Protobuf`) and the ID checks (`Invalid`).
    #[error("{}", wire_message(message_type, source))]
    Wire { message_type: &'static str, source: WireError },
}

fn wire_message(message_type: &str, source: &WireError) -> String {
    if source.is_bad_id() {
        source.to_string()
    } else {
        format!("cannot decode protobuf {message_type}: {source}")
    }
}

impl DecodeError {
    /// The OTLP/HTTP status for this error.
    pub fn http_status(&self) -> http::StatusCode {
        use http::StatusCode;
        match self {
            DecodeError::UnsupportedContentType(_) | DecodeError::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            DecodeError::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The gRPC status for this error.
    pub fn grpc_status(&self) -> tonic::Status {
        match self {
            DecodeError::TooLarge { .. } => tonic::Status::resource_exhausted(self.to_string()),
            _ => tonic::Status::invalid_argument(self.to_string()),
        }
    }
}

fn message_type(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "ExportTraceServiceRequest",
        Signal::Metrics => "ExportMetricsServiceRequest",
        Signal::Logs => "ExportLogsServiceRequest",
    }
}

/// Checks one gRPC message (already unframed and decompressed by the
/// transport): decoded and validated, or (`encoded`) checked and kept as bytes.
pub fn grpc_payload(signal: Signal, message: &Bytes, encoded: bool) -> Result<Payload, DecodeError> {
    if encoded {
        checked(signal, message.clone())
    } else {
        decode_grpc(signal, message).map(Payload::Decoded)
    }
}

fn checked(signal: Signal, message: Bytes) -> Result<Payload, DecodeError> {
    let items = check_request(signal, &message)
        .map_err(|source| DecodeError::Wire { message_type: message_type(signal), source })?;
    Ok(Payload::Encoded(EncodedBatch::checked(signal, message, items)))
}

/// As [`decode_body`]; with `encoded`, a protobuf body is checked and kept
/// as bytes (a JSON body is always decoded).
pub fn body_payload(
    signal: Signal,
    format: Format,
    compression: Compression,
    body: Bytes,
    limit: usize,
    encoded: bool,
) -> Result<Payload, DecodeError> {
    if !encoded || format != Format::Protobuf {
        return decode_body(signal, format, compression, &body, limit).map(Payload::Decoded);
    }
    if body.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    let plain = match compression {
        Compression::Identity => body,
        _ => inflate(compression, &body, limit)?.into(),
    };
    checked(signal, plain)
}

/// The bounds [`prepare`] holds a request to.
#[derive(Debug, Clone, Copy)]
pub struct RequestLimits {
    /// Bytes of the body as received and after decompression.
    pub max_plain: usize,
    /// Bytes the request may hold once decoded, as estimated from its bytes.
    pub max_decoded: u64,
}

/// How deep the objects of a JSON body may nest: as deep as prost lets
/// the messages of the same request in protobuf nest (its recursion limit of
/// 100 below the request itself), each object being one message.
pub const JSON_OBJECT_DEPTH_LIMIT: usize = 101;
/// Arrays and objects together: an array sits between two objects at most.
pub const JSON_DEPTH_LIMIT: usize = 2 * JSON_OBJECT_DEPTH_LIMIT + 1;

/// Why [`prepare`] did not turn a request into a payload.
#[derive(Debug, thiserror::Error)]
pub enum Rejection {
    /// The request is malformed (or its body too large): not retryable.
    #[error(transparent)]
    Malformed(#[from] DecodeError),
    /// It would hold more than `limit` bytes once decoded: not retryable.
    #[error("request would take {estimate} bytes once decoded, more than the limit of {limit} bytes")]
    DecodedTooLarge { estimate: u64, limit: u64, items: usize },
    /// A pipeline refused it for now (its items counted by the refuser): retryable.
    #[error("{0}")]
    Refused(crate::receivers::Refusal),
}

/// The whole path from a received body to a payload a pipeline takes,
/// with no I/O, so it runs on a blocking thread: decompress within
/// `max_plain`, walk the bytes for the item count and the decoded size
/// (protobuf: [`crate::data::check::check_and_estimate`], which also refuses
/// a malformed request; JSON: a streaming pass), refuse a request over
/// `max_decoded`, ask `admit` (the pipelines' memory headroom) and only then
/// decode, or keep the checked bytes (`encoded`, protobuf).
pub fn prepare(
    signal: Signal,
    format: Format,
    compression: Compression,
    body: Bytes,
    limits: RequestLimits,
    encoded: bool,
    admit: impl FnOnce(crate::data::estimate::Estimate) -> Result<(), crate::receivers::Refusal>,
) -> Result<Payload, Rejection> {
    if body.len() > limits.max_plain {
        return Err(DecodeError::TooLarge { limit: limits.max_plain }.into());
    }
    let plain: Bytes = match compression {
        Compression::Identity => body,
        _ => {
            let inflated = inflate(compression, &body, limits.max_plain)?;
            drop(body);
            inflated.into()
        }
    };
    // Protobuf: one walk checks the request as a decode and `validate` would
    // and sizes it, so a malformed one is refused before anything is
    // allocated for it. A payload kept encoded waits as its bytes; a decoded
    // one as its decoded size (`encoded_bytes` 0).
    if format == Format::Protobuf {
        let checked = crate::data::check::check_and_estimate(signal, &plain)
            .map_err(|source| DecodeError::Wire { message_type: message_type(signal), source })?;
        let estimate = if encoded { checked } else { crate::data::estimate::Estimate { encoded_bytes: 0, ..checked } };
        if estimate.decoded_bytes > limits.max_decoded {
            return Err(Rejection::DecodedTooLarge {
                estimate: estimate.decoded_bytes,
                limit: limits.max_decoded,
                items: estimate.items,
            });
        }
        admit(estimate).map_err(Rejection::Refused)?;
        return Ok(if encoded {
            Payload::Encoded(EncodedBatch::checked(signal, plain, estimate.items))
        } else {
            Payload::Decoded(decode_grpc(signal, &plain)?)
        });
    }
    // JSON: a streaming pass sizes it; the decode checks it.
    let scan = super::json::scan(&plain, JSON_DEPTH_LIMIT);
    if scan.depth > JSON_DEPTH_LIMIT || scan.object_depth > JSON_OBJECT_DEPTH_LIMIT {
        return Err(DecodeError::Json {
            message_type: message_type(signal),
            message: format!(
                "nested deeper than protobuf allows ({JSON_OBJECT_DEPTH_LIMIT} objects, \
                 {JSON_DEPTH_LIMIT} arrays and objects)"
            ),
        }
        .into());
    }
    let estimate = scan.estimate;
    if estimate.decoded_bytes > limits.max_decoded {
        return Err(Rejection::DecodedTooLarge {
            estimate: estimate.decoded_bytes,
            limit: limits.max_decoded,
            items: estimate.items,
        });
    }
    admit(estimate).map_err(Rejection::Refused)?;
    let batch = decode_json_nested(signal, &plain, true)?;
    validate(&batch).map_err(DecodeError::from)?;
    Ok(Payload::Decoded(batch))
}

/// Decodes one gRPC message (already unframed and decompressed by the
/// transport) and validates it.
pub fn decode_grpc(signal: Signal, message: &[u8]) -> Result<Batch, DecodeError> {
    let batch = decode_protobuf(signal, message)?;
    validate(&batch)?;
    Ok(batch)
}

/// Decodes an OTLP/HTTP request body as the transport received it:
/// checks the content type and encoding, decompresses within `limit` bytes,
/// decodes protobuf or JSON and validates.
pub fn decode_http(
    signal: Signal,
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Batch, DecodeError> {
    let ct = content_type.unwrap_or("");
    let format = Format::from_content_type(ct).ok_or_else(|| DecodeError::UnsupportedContentType(ct.into()))?;
    let compression = Compression::from_content_encoding(content_encoding)
        .ok_or_else(|| DecodeError::UnsupportedEncoding(content_encoding.unwrap_or("").into()))?;
    decode_body(signal, format, compression, body, limit)
}

/// [`decode_http`] after the headers were parsed.
pub fn decode_body(
    signal: Signal,
    format: Format,
    compression: Compression,
    body: &[u8],
    limit: usize,
) -> Result<Batch, DecodeError> {
    if body.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    let inflated;
    let plain: &[u8] = match compression {
        Compression::Identity => body,
        _ => {
            inflated = inflate(compression, body, limit)?;
            &inflated
        }
    };
    let batch = match format {
        Format::Protobuf => decode_protobuf(signal, plain)?,
        Format::Json => decode_json(signal, plain)?,
    };
    validate(&batch)?;
    Ok(batch)
}

/// The first bytes of every snappy framing-format stream.
const SNAPPY_STREAM_IDENTIFIER: &[u8] = b"\xff\x06\x00\x00sNaPpY";

/// Decompresses a body within `limit` bytes: streams stop reading one byte
/// past the limit, a snappy block is refused from the length it declares.
pub fn inflate(compression: Compression, body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    match compression {
        Compression::Identity => Ok(body.to_vec()),
        Compression::Gzip => read_limited(flate2::read::MultiGzDecoder::new(body), limit, "gzip"),
        Compression::Zstd => {
            let dec = zstd::stream::read::Decoder::new(body)
                .map_err(|e| DecodeError::Decompress { encoding: "zstd", message: e.to_string() })?;
            read_limited(dec, limit, "zstd")
        }
        Compression::Zlib => read_limited(flate2::read::ZlibDecoder::new(body), limit, "zlib"),
        Compression::Snappy if body.starts_with(SNAPPY_STREAM_IDENTIFIER) => {
            read_limited(snap::read::FrameDecoder::new(body), limit, "snappy")
        }
        Compression::Snappy => snappy_block(body, limit),
        Compression::SnappyFramed => read_limited(snap::read::FrameDecoder::new(body), limit, "x-snappy-framed"),
        Compression::Lz4 => read_limited(lz4_flex::frame::FrameDecoder::new(body), limit, "lz4"),
    }
}

/// A snappy block starts with its decompressed length: a block that claims
/// more than `limit` is refused before anything is allocated.
fn snappy_block(body: &[u8], limit: usize) -> Result<Vec<u8>, DecodeError> {
    let err = |e: snap::Error| DecodeError::Decompress { encoding: "snappy", message: e.to_string() };
    if snap::raw::decompress_len(body).map_err(err)? > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    snap::raw::Decoder::new().decompress_vec(body).map_err(err)
}

/// Reads at most `limit` bytes; one byte more means the body is too large.
fn read_limited(reader: impl Read, limit: usize, encoding: &'static str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader.take(cap).read_to_end(&mut out).map_err(|e| DecodeError::Decompress { encoding, message: e.to_string() })?;
    if out.len() > limit {
        return Err(DecodeError::TooLarge { limit });
    }
    Ok(out)
}

fn decode_protobuf(signal: Signal, bytes: &[u8]) -> Result<Batch, DecodeError> {
    let err = |source| DecodeError::Protobuf { message_type: message_type(signal), source };
    Ok(match signal {
        Signal::Traces => Batch::Traces(ExportTraceServiceRequest::decode(bytes).map_err(err)?),
        Signal::Metrics => Batch::Metrics(ExportMetricsServiceRequest::decode(bytes).map_err(err)?),
        Signal::Logs => Batch::Logs(ExportLogsServiceRequest::decode(bytes).map_err(err)?),
    })
}

/// OTLP JSON as SDKs send it, through opentelemetry-proto's serde support
/// (lowerCamelCase keys, hex IDs, 64-bit integers as strings or numbers,
/// enums as integers, unknown keys ignored), after [`super::json::normalize`]
/// has filled the gaps of that support; the tests below pin both down.
fn decode_json(signal: Signal, bytes: &[u8]) -> Result<Batch, DecodeError> {
    decode_json_nested(signal, bytes, false)
}

/// `depth_checked`: [`prepare`]'s walk has bounded the body's nesting to
/// protobuf's, past serde_json's own limit of 128 (arrays counted).
fn decode_json_nested(signal: Signal, bytes: &[u8], depth_checked: bool) -> Result<Batch, DecodeError> {
    let err = |e: serde_json::Error| DecodeError::Json { message_type: message_type(signal), message: e.to_string() };
    let mut value = if depth_checked {
        let mut de = serde_json::Deserializer::from_slice(bytes);
        de.disable_recursion_limit();
        let v = <serde_json::Value as serde::Deserialize>::deserialize(&mut de).map_err(err)?;
        de.end().map_err(err)?;
        v
    } else {
        serde_json::from_slice(bytes).map_err(err)?
    };
    super::json::normalize(&mut value);
    Ok(match signal {
        Signal::Traces => Batch::Traces(serde_json::from_value(value).map_err(err)?),
        Signal::Metrics => Batch::Metrics(serde_json::from_value(value).map_err(err)?),
        Signal::Logs => Batch::Logs(serde_json::from_value(value).map_err(err)?),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::any_value::Value;
    use opentelemetry_proto::tonic::metrics::v1::metric::Data;
    use opentelemetry_proto::tonic::metrics::v1::number_data_point::Value as NumValue;
    use std::io::Write;

    const LIMIT: usize = 1 << 20;

    fn json(signal: Signal, s: &str) -> Result<Batch, DecodeError> {
        decode_http(signal, Some("application/json; charset=utf-8"), None, s.as_bytes(), LIMIT)
    }

    // Shaped like opentelemetry-proto/examples/trace.json, plus an unknown key.
    const TRACE_JSON: &str = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeSpans": [{
          "scope": {"name": "my.library", "version": "1.0.0",
                    "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "some scope attribute"}}]},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "parentSpanId": "EEE19B7EC3C1B173",
            "name": "I'm a server span",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": "1544712661000000000",
            "kind": 2,
            "someFutureField": {"x": 1},
            "attributes": [
              {"key": "my.span.attr", "value": {"stringValue": "some value"}},
              {"key": "count", "value": {"intValue": "5"}},
              {"key": "ok", "value": {"boolValue": true}}
            ],
            "status": {"code": 1}
          }]
        }]
      }]
    }"#;

    #[test]
    fn json_traces_as_sdks_send_them() {
        let Batch::Traces(r) = json(Signal::Traces, TRACE_JSON).unwrap() else { panic!("not traces") };
        let span = &r.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            span.trace_id,
            vec![0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c]
        );
        assert_eq!(span.span_id, vec![0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74]);
        assert_eq!(span.parent_span_id.len(), 8);
        assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(span.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(span.kind, 2);
        assert_eq!(span.name, "I'm a server span");
        assert_eq!(span.attributes[1].value.as_ref().unwrap().value, Some(Value::IntValue(5)));
        assert_eq!(span.attributes[2].value.as_ref().unwrap().value, Some(Value::BoolValue(true)));
        assert_eq!(span.status.as_ref().unwrap().code, 1);
        assert_eq!(r.resource_spans[0].scope_spans[0].scope.as_ref().unwrap().version, "1.0.0");
    }

    // Shaped like opentelemetry-proto/examples/metrics.json.
    const METRICS_JSON: &str = r#"{
      "resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeMetrics": [{
          "scope": {"name": "my.library", "version": "1.0.0"},
          "metrics": [
            {"name": "my.counter", "unit": "1", "description": "I am a Counter",
             "sum": {"aggregationTemporality": 1, "isMonotonic": true,
                     "dataPoints": [{"asDouble": 5, "startTimeUnixNano": "1544712660300000000",
                                     "timeUnixNano": "1544712660300000000",
                                     "attributes": [{"key": "my.counter.attr", "value": {"stringValue": "some value"}}]}]}},
            {"name": "my.gauge", "unit": "1", "description": "I am a Gauge",
             "gauge": {"dataPoints": [{"asInt": "10", "timeUnixNano": "1544712660300000000"}]}},
            {"name": "my.histogram", "unit": "1", "description": "I am a Histogram",
             "histogram": {"aggregationTemporality": 1,
                           "dataPoints": [{"startTimeUnixNano": "1544712660300000000", "timeUnixNano": "1544712660300000000",
                                           "count": "2", "sum": 2, "bucketCounts": ["1", "1"], "explicitBounds": [1],
                                           "min": 0, "max": 2}]}}
          ]
        }]
      }]
    }"#;

    #[test]
    fn json_metrics_gauge_sum_histogram() {
        let batch = json(Signal::Metrics, METRICS_JSON).unwrap();
        assert_eq!(batch.item_count(), 3);
        let Batch::Metrics(r) = batch else { panic!("not metrics") };
        let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
        let Some(Data::Sum(sum)) = &metrics[0].data else { panic!("not a sum: {:?}", metrics[0].data) };
        assert_eq!(sum.aggregation_temporality, 1);
        assert!(sum.is_monotonic);
        assert_eq!(sum.data_points[0].value, Some(NumValue::AsDouble(5.0)));
        assert_eq!(sum.data_points[0].time_unix_nano, 1_544_712_660_300_000_000);
        let Some(Data::Gauge(gauge)) = &metrics[1].data else { panic!("not a gauge") };
        assert_eq!(gauge.data_points[0].value, Some(NumValue::AsInt(10)));
        let Some(Data::Histogram(h)) = &metrics[2].data else { panic!("not a histogram") };
        let p = &h.data_points[0];
        assert_eq!((p.count, p.sum, p.min, p.max), (2, Some(2.0), Some(0.0), Some(2.0)));
        assert_eq!(p.bucket_counts, vec![1, 1]);
        assert_eq!(p.explicit_bounds, vec![1.0]);
    }

    // Shaped like opentelemetry-proto/examples/logs.json.
    const LOGS_JSON: &str = r#"{
      "resourceLogs": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "my.service"}}]},
        "scopeLogs": [{
          "scope": {"name": "my.library", "version": "1.0.0"},
          "logRecords": [{
            "timeUnixNano": "1544712660300000000",
            "observedTimeUnixNano": "1544712660300000000",
            "severityNumber": 10,
            "severityText": "Information",
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "EEE19B7EC3C1B174",
            "body": {"stringValue": "Example log record"},
            "attributes": [
              {"key": "string.attribute", "value": {"stringValue": "some string"}},
              {"key": "boolean.attribute", "value": {"boolValue": true}},
              {"key": "int.attribute", "value": {"intValue": "10"}},
              {"key": "double.attribute", "value": {"doubleValue": 637.704}},
              {"key": "array.attribute", "value": {"arrayValue": {"values": [{"stringValue": "many"}, {"stringValue": "values"}]}}},
              {"key": "map.attribute", "value": {"kvlistValue": {"values": [{"key": "some.map.key", "value": {"stringValue": "some value"}}]}}}
            ]
          }]
        }]
      }]
    }"#;

    #[test]
    fn json_logs() {
        let Batch::Logs(r) = json(Signal::Logs, LOGS_JSON).unwrap() else { panic!("not logs") };
        let rec = &r.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.severity_number, 10);
        assert_eq!(rec.severity_text, "Information");
        assert_eq!(rec.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(rec.trace_id.len(), 16);
        assert_eq!(rec.span_id.len(), 8);
        assert_eq!(rec.body.as_ref().unwrap().value, Some(Value::StringValue("Example log record".into())));
        assert_eq!(rec.attributes[2].value.as_ref().unwrap().value, Some(Value::IntValue(10)));
        assert_eq!(rec.attributes[3].value.as_ref().unwrap().value, Some(Value::DoubleValue(637.704)));
        let Some(Value::ArrayValue(a)) = &rec.attributes[4].value.as_ref().unwrap().value else { panic!("array") };
        assert_eq!(a.values.len(), 2);
        let Some(Value::KvlistValue(m)) = &rec.attributes[5].value.as_ref().unwrap().value else { panic!("kvlist") };
        assert_eq!(m.values[0].key, "some.map.key");
    }

    #[test]
    fn json_snake_case_and_enum_names_are_not_lost() {
        let snake = r#"{"resource_logs": [{"scope_logs": [{"log_records": [{
            "time_unix_nano": 1544712660300000000, "severity_number": "SEVERITY_NUMBER_ERROR",
            "trace_id": "5B8EFFF798038103D269B633813FC60C", "span_id": null,
            "body": {"string_value": "boom"}}]}]}]}"#;
        let Batch::Logs(r) = json(Signal::Logs, snake).unwrap() else { panic!("not logs") };
        let rec = &r.resource_logs[0].scope_logs[0].log_records[0];
        assert_eq!(rec.severity_number, 17);
        assert_eq!(rec.time_unix_nano, 1_544_712_660_300_000_000);
        assert_eq!(rec.trace_id.len(), 16);
        assert!(rec.span_id.is_empty());
        assert_eq!(rec.body.as_ref().unwrap().value, Some(Value::StringValue("boom".into())));
        let named = TRACE_JSON.replace("\"kind\": 2", "\"kind\": \"SPAN_KIND_SERVER\"");
        let Batch::Traces(t) = json(Signal::Traces, &named).unwrap() else { panic!("not traces") };
        assert_eq!(t.resource_spans[0].scope_spans[0].spans[0].kind, 2);
    }

    #[test]
    fn json_int_value_as_number() {
        let numeric = TRACE_JSON.replace("{\"intValue\": \"5\"}", "{\"intValue\": 5}");
        let Batch::Traces(r) = json(Signal::Traces, &numeric).unwrap() else { panic!("not traces") };
        let span = &r.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.attributes[1].value.as_ref().unwrap().value, Some(Value::IntValue(5)));
    }

    #[test]
    fn json_errors_are_decode_errors() {
        assert!(matches!(json(Signal::Traces, "{not json"), Err(DecodeError::Json { .. })));
        let bad_hex = TRACE_JSON.replace("EEE19B7EC3C1B174", "ZZZ");
        assert!(matches!(json(Signal::Traces, &bad_hex), Err(DecodeError::Json { .. })));
        let short = TRACE_JSON.replace("5B8EFFF798038103D269B633813FC60C", "5B8EFFF798");
        assert_eq!(
            json(Signal::Traces, &short).unwrap_err().to_string(),
            "resource_spans[0].scope_spans[0].spans[0]: trace_id must be 16 bytes, got 5"
        );
    }

    #[test]
    fn content_type_and_encoding() {
        assert_eq!(Format::from_content_type("application/x-protobuf"), Some(Format::Protobuf));
        assert_eq!(Format::from_content_type("Application/JSON ; charset=utf-8"), Some(Format::Json));
        assert_eq!(Format::from_content_type("text/plain"), None);
        let e = decode_http(Signal::Traces, Some("text/plain"), None, b"", LIMIT).unwrap_err();
        assert_eq!(e.http_status(), 415);
        let e = decode_http(Signal::Traces, Some("application/json"), Some("br"), b"{}", LIMIT).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported content encoding \"br\"; use gzip, zstd, zlib, deflate, snappy, x-snappy-framed, lz4 or identity"
        );
        assert_eq!(e.http_status(), 415);
    }

    /// `plain` compressed as a client would send it with `encoding`.
    pub(crate) fn compressed(encoding: &str, plain: &[u8]) -> Vec<u8> {
        use crate::exporters::otlp_common::{Compression as C, CompressionParams, Encoder, Transport};
        let (c, transport) = match encoding {
            "gzip" => (C::Gzip, Transport::Http),
            "zstd" => (C::Zstd, Transport::Http),
            "zlib" => (C::Zlib, Transport::Http),
            "deflate" => (C::Deflate, Transport::Http),
            "snappy" => (C::Snappy, Transport::Http),
            // What older Collectors sent as `snappy` over HTTP (and gRPC sends).
            "snappy-framed" => (C::Snappy, Transport::Grpc),
            "x-snappy-framed" => (C::SnappyFramed, Transport::Http),
            "lz4" => (C::Lz4, Transport::Http),
            other => panic!("{other}"),
        };
        let enc = Encoder::new(c, &CompressionParams { level: 9 }, transport).unwrap();
        enc.compress(&[plain], Vec::new(), transport).unwrap()
    }

    /// Every accepted encoding, with the `Content-Encoding` that names it.
    pub(crate) const ENCODINGS: &[(&str, &str)] = &[
        ("gzip", "gzip"),
        ("zstd", "zstd"),
        ("zlib", "zlib"),
        ("deflate", "deflate"),
        ("snappy", "snappy"),
        ("snappy-framed", "snappy"),
        ("x-snappy-framed", "x-snappy-framed"),
        ("lz4", "lz4"),
    ];

    #[test]
    fn every_encoding_decodes() {
        let Batch::Traces(r) = json(Signal::Traces, TRACE_JSON).unwrap() else { unreachable!() };
        let proto = r.encode_to_vec();
        for (codec, ce) in ENCODINGS {
            let body = compressed(codec, &proto);
            let b = decode_http(Signal::Traces, Some("application/x-protobuf"), Some(ce), &body, LIMIT).unwrap();
            assert_eq!(b, Batch::Traces(r.clone()), "{codec}");
        }
    }

    #[test]
    fn zip_bomb_stops_at_the_limit() {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 4 * LIMIT]).unwrap();
        let bomb = enc.finish().unwrap();
        assert!(bomb.len() < LIMIT);
        let e = decode_http(Signal::Traces, Some("application/x-protobuf"), Some("gzip"), &bomb, LIMIT).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge { limit: LIMIT }), "{e:?}");
        let zbomb = zstd::encode_all(&vec![0u8; 4 * LIMIT][..], 3).unwrap();
        let e = decode_http(Signal::Traces, Some("application/x-protobuf"), Some("zstd"), &zbomb, LIMIT).unwrap_err();
        assert!(matches!(e, DecodeError::TooLarge { .. }), "{e:?}");
    }

    #[test]
    fn a_bomb_of_every_encoding_stops_at_the_limit() {
        let zeros = vec![0u8; 4 * LIMIT];
        for (codec, ce) in ENCODINGS {
            let bomb = compressed(codec, &zeros);
            assert!(bomb.len() < LIMIT, "{codec}: {}", bomb.len());
            for ct in ["application/x-protobuf", "application/json"] {
                let e = decode_http(Signal::Traces, Some(ct), Some(ce), &bomb, LIMIT).unwrap_err();
                assert!(matches!(e, DecodeError::TooLarge { limit: LIMIT }), "{codec}: {e:?}");
                assert_eq!(e.http_status(), 413);
            }
            let e = body_payload(
                Signal::Logs,
                Format::Protobuf,
                Compression::from_content_encoding(Some(ce)).unwrap(),
                bomb.into(),
                LIMIT,
                true,
            )
            .unwrap_err();
            assert!(matches!(e, DecodeError::TooLarge { limit: LIMIT }), "{codec}: {e:?}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        // A cheap stand-in for the fuzzer: truncations and bit flips of valid inputs.
        let proto = {
            let Batch::Traces(r) = json(Signal::Traces, TRACE_JSON).unwrap() else { unreachable!() };
            r.encode_to_vec()
        };
        let gz = {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(&proto).unwrap();
            enc.finish().unwrap()
        };
        for input in [&proto[..], &gz[..], TRACE_JSON.as_bytes(), METRICS_JSON.as_bytes()] {
            for cut in 0..input.len() {
                let mut v = input[..cut].to_vec();
                if let Some(b) = v.last_mut() {
                    *b ^= 0x5a;
                }
                for signal in Signal::ALL {
                    let _ = decode_grpc(signal, &v);
                    for ce in ["gzip", "zstd", "zlib", "snappy", "x-snappy-framed", "lz4", "identity"] {
                        let _ = decode_http(signal, Some("application/x-protobuf"), Some(ce), &v, LIMIT);
                    }
                    for (ct, ce) in [("application/x-protobuf", "gzip"), ("application/json", "identity")] {
                        let _ = decode_http(signal, Some(ct), Some(ce), &v, LIMIT);
                    }
                }
            }
        }
    }
}
