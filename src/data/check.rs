//! A validating walk of OTLP export requests in their protobuf form, for the
//! pass-through path: a request that passes can be forwarded as bytes.
//!
//! Guarantee: [`check_request`] accepts exactly the messages that prost
//! decodes into the `opentelemetry-proto` types *and* that pass the
//! receiver's ID checks (16-byte trace IDs and 8-byte span IDs on spans;
//! empty or well-sized IDs on log records). So a request that passes decodes
//! without error wherever it is decoded later (an exporter that needs the
//! structs, the sharded door of a keyed pipeline), and one that fails is
//! answered INVALID_ARGUMENT / 400 just as a full decode would have.
//! The differential test below holds the walk to prost's verdict on
//! thousands of mutated requests.
//!
//! It allocates nothing on success: strings are checked as UTF-8 in place,
//! unknown fields are skipped as prost skips them (groups included), and the
//! nesting limit is prost's (100 levels).

use super::Signal;
use std::fmt;

/// prost's recursion limit: messages nested deeper fail to decode.
pub(super) const RECURSION_LIMIT: u32 = 100;

/// Why a request is not a valid export request. Boxed: every step of the
/// walk passes a `Result` of it along, so it is one word wide.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireError(Box<WhereAndWhat>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct WhereAndWhat {
    /// Where, outermost first: `resource_spans[0]`, `scope_spans[1]`, `spans[3]`, `name`.
    path: Vec<String>,
    problem: Problem,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    Truncated,
    InvalidVarint,
    InvalidKey,
    InvalidWireType {
        found: u8,
        expected: u8,
    },
    UnexpectedEndGroup,
    RecursionLimit,
    NotUtf8,
    PackedLength,
    /// Boxed, so that the `Result`s of the walk's every step stay small.
    Id(Box<BadId>),
}

/// An ID field of the wrong length.
#[derive(Debug, Clone, PartialEq, Eq)]
struct BadId {
    field: &'static str,
    expected: &'static str,
    got: usize,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.0.path.join(".");
        if let Problem::Id(id) = &self.0.problem {
            let BadId { field, expected, got } = **id;
            // The same words as the receiver's check of decoded requests.
            return write!(f, "{path}: {field} must be {expected}, got {got}");
        }
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        match &self.0.problem {
            Problem::Truncated => f.write_str("buffer underflow (a length runs past the end of its message)"),
            Problem::InvalidVarint => f.write_str("invalid varint"),
            Problem::InvalidKey => f.write_str("invalid field key"),
            Problem::InvalidWireType { found, expected } => {
                write!(f, "invalid wire type {found} (expected {expected})")
            }
            Problem::UnexpectedEndGroup => f.write_str("unexpected end group tag"),
            Problem::RecursionLimit => f.write_str("recursion limit reached"),
            Problem::NotUtf8 => f.write_str("invalid string value: data is not UTF-8 encoded"),
            Problem::PackedLength => f.write_str("packed field length does not match its elements"),
            Problem::Id(_) => unreachable!("written above"),
        }
    }
}

impl std::error::Error for WireError {}

impl WireError {
    /// An ID of the wrong length, rather than bytes that do not decode.
    pub fn is_bad_id(&self) -> bool {
        matches!(self.0.problem, Problem::Id(_))
    }

    fn new(problem: Problem) -> WireError {
        WireError(Box::new(WhereAndWhat { path: Vec::new(), problem }))
    }

    /// Adds the enclosing field, as the error travels out of a nested message.
    fn within(mut self, segment: String) -> WireError {
        self.0.path.insert(0, segment);
        self
    }
}

/// The OTLP messages the walk knows, each with its field table below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Msg {
    ExportTraces,
    ResourceSpans,
    ScopeSpans,
    Span,
    Event,
    Link,
    Status,
    ExportMetrics,
    ResourceMetrics,
    ScopeMetrics,
    Metric,
    /// Gauge and Summary: data_points only.
    Points(PointKind),
    /// Sum, Histogram, ExponentialHistogram: data_points and temporality (+ is_monotonic).
    TemporalPoints(PointKind),
    NumberDataPoint,
    HistogramDataPoint,
    ExpHistogramDataPoint,
    Buckets,
    SummaryDataPoint,
    ValueAtQuantile,
    Exemplar,
    ExportLogs,
    ResourceLogs,
    ScopeLogs,
    LogRecord,
    Resource,
    Scope,
    EntityRef,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PointKind {
    Number,
    Histogram,
    ExpHistogram,
    Summary,
}

/// How a known field is encoded.
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    /// int32/64, uint32/64, sint32, bool, enum: wire type 0.
    Varint,
    /// fixed64, sfixed64, double: wire type 1.
    I64,
    /// fixed32: wire type 5.
    I32,
    Bytes,
    Str,
    Message(Msg),
    /// repeated fixed64/double: wire type 1, or packed in wire type 2.
    RepeatedI64,
    /// repeated uint64: wire type 0, or packed in wire type 2.
    RepeatedVarint,
}

/// The field table: kind and name of each known field, as in the OTLP protos
/// (opentelemetry-proto 1.x). Unknown fields are skipped.
#[inline(always)] // in each walk's loop, as when only one walk used it
pub(super) fn field(msg: Msg, tag: u32) -> Option<(Kind, &'static str)> {
    use Kind::*;
    use Msg as M;
    let f = match (msg, tag) {
        (M::ExportTraces, 1) => (Message(M::ResourceSpans), "resource_spans"),
        (M::ResourceSpans, 1) => (Message(M::Resource), "resource"),
        (M::ResourceSpans, 2) => (Message(M::ScopeSpans), "scope_spans"),
        (M::ResourceSpans | M::ScopeSpans | M::ResourceMetrics | M::ScopeMetrics, 3) => (Str, "schema_url"),
        (M::ResourceLogs | M::ScopeLogs, 3) => (Str, "schema_url"),
        (M::ScopeSpans | M::ScopeMetrics | M::ScopeLogs, 1) => (Message(M::Scope), "scope"),
        (M::ScopeSpans, 2) => (Message(M::Span), "spans"),
        (M::Span, 1) => (Bytes, "trace_id"),
        (M::Span, 2) => (Bytes, "span_id"),
        (M::Span, 3) => (Str, "trace_state"),
        (M::Span, 4) => (Bytes, "parent_span_id"),
        (M::Span, 5) => (Str, "name"),
        (M::Span, 6) => (Varint, "kind"),
        (M::Span, 7) => (I64, "start_time_unix_nano"),
        (M::Span, 8) => (I64, "end_time_unix_nano"),
        (M::Span, 9) => (Message(M::KeyValue), "attributes"),
        (M::Span, 10) => (Varint, "dropped_attributes_count"),
        (M::Span, 11) => (Message(M::Event), "events"),
        (M::Span, 12) => (Varint, "dropped_events_count"),
        (M::Span, 13) => (Message(M::Link), "links"),
        (M::Span, 14) => (Varint, "dropped_links_count"),
        (M::Span, 15) => (Message(M::Status), "status"),
        (M::Span, 16) => (I32, "flags"),
        (M::Event, 1) => (I64, "time_unix_nano"),
        (M::Event, 2) => (Str, "name"),
        (M::Event, 3) => (Message(M::KeyValue), "attributes"),
        (M::Event, 4) => (Varint, "dropped_attributes_count"),
        (M::Link, 1) => (Bytes, "trace_id"),
        (M::Link, 2) => (Bytes, "span_id"),
        (M::Link, 3) => (Str, "trace_state"),
        (M::Link, 4) => (Message(M::KeyValue), "attributes"),
        (M::Link, 5) => (Varint, "dropped_attributes_count"),
        (M::Link, 6) => (I32, "flags"),
        (M::Status, 2) => (Str, "message"),
        (M::Status, 3) => (Varint, "code"),

        (M::ExportMetrics, 1) => (Message(M::ResourceMetrics), "resource_metrics"),
        (M::ResourceMetrics, 1) => (Message(M::Resource), "resource"),
        (M::ResourceMetrics, 2) => (Message(M::ScopeMetrics), "scope_metrics"),
        (M::ScopeMetrics, 2) => (Message(M::Metric), "metrics"),
        (M::Metric, 1) => (Str, "name"),
        (M::Metric, 2) => (Str, "description"),
        (M::Metric, 3) => (Str, "unit"),
        (M::Metric, 5) => (Message(M::Points(PointKind::Number)), "gauge"),
        (M::Metric, 7) => (Message(M::TemporalPoints(PointKind::Number)), "sum"),
        (M::Metric, 9) => (Message(M::TemporalPoints(PointKind::Histogram)), "histogram"),
        (M::Metric, 10) => (Message(M::TemporalPoints(PointKind::ExpHistogram)), "exponential_histogram"),
        (M::Metric, 11) => (Message(M::Points(PointKind::Summary)), "summary"),
        (M::Metric, 12) => (Message(M::KeyValue), "metadata"),
        (M::Points(k) | M::TemporalPoints(k), 1) => (Message(point_msg(k)), "data_points"),
        (M::TemporalPoints(_), 2) => (Varint, "aggregation_temporality"),
        (M::TemporalPoints(PointKind::Number), 3) => (Varint, "is_monotonic"),
        (M::NumberDataPoint, 2 | 3) | (M::HistogramDataPoint, 2 | 3) => (I64, time_name(tag)),
        (M::ExpHistogramDataPoint, 2 | 3) | (M::SummaryDataPoint, 2 | 3) => (I64, time_name(tag)),
        (M::NumberDataPoint, 4) => (I64, "as_double"),
        (M::NumberDataPoint, 5) => (Message(M::Exemplar), "exemplars"),
        (M::NumberDataPoint, 6) => (I64, "as_int"),
        (M::NumberDataPoint, 7) => (Message(M::KeyValue), "attributes"),
        (M::NumberDataPoint, 8) => (Varint, "flags"),
        (M::HistogramDataPoint, 4) => (I64, "count"),
        (M::HistogramDataPoint, 5) => (I64, "sum"),
        (M::HistogramDataPoint, 6) => (RepeatedI64, "bucket_counts"),
        (M::HistogramDataPoint, 7) => (RepeatedI64, "explicit_bounds"),
        (M::HistogramDataPoint, 8) => (Message(M::Exemplar), "exemplars"),
        (M::HistogramDataPoint, 9) => (Message(M::KeyValue), "attributes"),
        (M::HistogramDataPoint, 10) => (Varint, "flags"),
        (M::HistogramDataPoint, 11) => (I64, "min"),
        (M::HistogramDataPoint, 12) => (I64, "max"),
        (M::ExpHistogramDataPoint, 1) => (Message(M::KeyValue), "attributes"),
        (M::ExpHistogramDataPoint, 4) => (I64, "count"),
        (M::ExpHistogramDataPoint, 5) => (I64, "sum"),
        (M::ExpHistogramDataPoint, 6) => (Varint, "scale"),
        (M::ExpHistogramDataPoint, 7) => (I64, "zero_count"),
        (M::ExpHistogramDataPoint, 8) => (Message(M::Buckets), "positive"),
        (M::ExpHistogramDataPoint, 9) => (Message(M::Buckets), "negative"),
        (M::ExpHistogramDataPoint, 10) => (Varint, "flags"),
        (M::ExpHistogramDataPoint, 11) => (Message(M::Exemplar), "exemplars"),
        (M::ExpHistogramDataPoint, 12) => (I64, "min"),
        (M::ExpHistogramDataPoint, 13) => (I64, "max"),
        (M::ExpHistogramDataPoint, 14) => (I64, "zero_threshold"),
        (M::Buckets, 1) => (Varint, "offset"),
        (M::Buckets, 2) => (RepeatedVarint, "bucket_counts"),
        (M::SummaryDataPoint, 4) => (I64, "count"),
        (M::SummaryDataPoint, 5) => (I64, "sum"),
        (M::SummaryDataPoint, 6) => (Message(M::ValueAtQuantile), "quantile_values"),
        (M::SummaryDataPoint, 7) => (Message(M::KeyValue), "attributes"),
        (M::SummaryDataPoint, 8) => (Varint, "flags"),
        (M::ValueAtQuantile, 1) => (I64, "quantile"),
        (M::ValueAtQuantile, 2) => (I64, "value"),
        (M::Exemplar, 2) => (I64, "time_unix_nano"),
        (M::Exemplar, 3) => (I64, "as_double"),
        (M::Exemplar, 4) => (Bytes, "span_id"),
        (M::Exemplar, 5) => (Bytes, "trace_id"),
        (M::Exemplar, 6) => (I64, "as_int"),
        (M::Exemplar, 7) => (Message(M::KeyValue), "filtered_attributes"),

        (M::ExportLogs, 1) => (Message(M::ResourceLogs), "resource_logs"),
        (M::ResourceLogs, 1) => (Message(M::Resource), "resource"),
        (M::ResourceLogs, 2) => (Message(M::ScopeLogs), "scope_logs"),
        (M::ScopeLogs, 2) => (Message(M::LogRecord), "log_records"),
        (M::LogRecord, 1) => (I64, "time_unix_nano"),
        (M::LogRecord, 2) => (Varint, "severity_number"),
        (M::LogRecord, 3) => (Str, "severity_text"),
        (M::LogRecord, 5) => (Message(M::AnyValue), "body"),
        (M::LogRecord, 6) => (Message(M::KeyValue), "attributes"),
        (M::LogRecord, 7) => (Varint, "dropped_attributes_count"),
        (M::LogRecord, 8) => (I32, "flags"),
        (M::LogRecord, 9) => (Bytes, "trace_id"),
        (M::LogRecord, 10) => (Bytes, "span_id"),
        (M::LogRecord, 11) => (I64, "observed_time_unix_nano"),
        (M::LogRecord, 12) => (Str, "event_name"),

        (M::Resource, 1) => (Message(M::KeyValue), "attributes"),
        (M::Resource, 2) => (Varint, "dropped_attributes_count"),
        (M::Resource, 3) => (Message(M::EntityRef), "entity_refs"),
        (M::Scope, 1) => (Str, "name"),
        (M::Scope, 2) => (Str, "version"),
        (M::Scope, 3) => (Message(M::KeyValue), "attributes"),
        (M::Scope, 4) => (Varint, "dropped_attributes_count"),
        (M::EntityRef, 1) => (Str, "schema_url"),
        (M::EntityRef, 2) => (Str, "type"),
        // repeated string: each occurrence is one element.
        (M::EntityRef, 3) => (Str, "id_keys"),
        (M::EntityRef, 4) => (Str, "description_keys"),
        (M::KeyValue, 1) => (Str, "key"),
        (M::KeyValue, 2) => (Message(M::AnyValue), "value"),
        (M::KeyValue, 3) => (Varint, "key_strindex"),
        (M::AnyValue, 1) => (Str, "string_value"),
        (M::AnyValue, 2) => (Varint, "bool_value"),
        (M::AnyValue, 3) => (Varint, "int_value"),
        (M::AnyValue, 4) => (I64, "double_value"),
        (M::AnyValue, 5) => (Message(M::ArrayValue), "array_value"),
        (M::AnyValue, 6) => (Message(M::KeyValueList), "kvlist_value"),
        (M::AnyValue, 7) => (Bytes, "bytes_value"),
        (M::AnyValue, 8) => (Varint, "string_value_strindex"),
        (M::ArrayValue, 1) => (Message(M::AnyValue), "values"),
        (M::KeyValueList, 1) => (Message(M::KeyValue), "values"),
        _ => return None,
    };
    Some(f)
}

pub(super) fn point_msg(kind: PointKind) -> Msg {
    match kind {
        PointKind::Number => Msg::NumberDataPoint,
        PointKind::Histogram => Msg::HistogramDataPoint,
        PointKind::ExpHistogram => Msg::ExpHistogramDataPoint,
        PointKind::Summary => Msg::SummaryDataPoint,
    }
}

fn time_name(tag: u32) -> &'static str {
    if tag == 2 {
        "start_time_unix_nano"
    } else {
        "time_unix_nano"
    }
}

/// Checks a whole `Export{Trace,Metrics,Logs}ServiceRequest` and returns its
/// item count (spans, data points as the Collector counts them, log records).
pub fn check_request(signal: Signal, message: &[u8]) -> Result<usize, WireError> {
    let msg = request_msg(signal);
    let mut walk = Walk { items: 0, bytes: 0 };
    walk.message(msg, message, RECURSION_LIMIT)?;
    Ok(walk.items)
}

/// The message an export request of `signal` is.
pub(super) fn request_msg(signal: Signal) -> Msg {
    match signal {
        Signal::Traces => Msg::ExportTraces,
        Signal::Metrics => Msg::ExportMetrics,
        Signal::Logs => Msg::ExportLogs,
    }
}

/// [`check_request`] and the size model of [`super::estimate`] in one walk:
/// the item count and the decoded size of a request that checks (kept
/// encoded: its `encoded_bytes` are the message's). The size counts a plain
/// attribute (a key and a scalar) at its encoded length, at least what it
/// holds decoded, so it is never below the model's exact sum.
pub fn check_and_estimate(signal: Signal, message: &[u8]) -> Result<super::estimate::Estimate, WireError> {
    let msg = request_msg(signal);
    let mut walk = Walk { items: 0, bytes: super::estimate::element_bytes(msg, "") };
    walk.message(msg, message, RECURSION_LIMIT)?;
    Ok(super::estimate::Estimate { items: walk.items, decoded_bytes: walk.bytes, encoded_bytes: message.len() as u64 })
}

struct Walk {
    items: usize,
    /// The decoded size as [`super::estimate`] models it, for
    /// [`check_and_estimate`]: one walk instead of two. Always summed (a
    /// few adds per field cost less than branching on whether it is wanted).
    bytes: u64,
}

/// The IDs a span or log record carried (the last occurrence wins, as in a decode).
#[derive(Default)]
struct Ids {
    trace: usize,
    span: usize,
    parent: usize,
}

#[inline(always)]
fn varint(buf: &mut &[u8]) -> Result<u64, Problem> {
    if let Some(&b) = buf.first() {
        if b < 0x80 {
            *buf = &buf[1..];
            return Ok(u64::from(b));
        }
    }
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            // A tenth byte may only carry the top bit of a u64 (prost and protobuf-go agree).
            if i == 9 && b >= 0x02 {
                return Err(Problem::InvalidVarint);
            }
            *buf = &buf[i + 1..];
            return Ok(value);
        }
    }
    Err(Problem::InvalidVarint)
}

#[inline(always)]
fn take<'a>(buf: &mut &'a [u8], len: u64) -> Result<&'a [u8], Problem> {
    let len = usize::try_from(len).map_err(|_| Problem::Truncated)?;
    if len > buf.len() {
        return Err(Problem::Truncated);
    }
    let (head, rest) = buf.split_at(len);
    *buf = rest;
    Ok(head)
}

#[inline(always)]
fn key(buf: &mut &[u8]) -> Result<(u32, u8), Problem> {
    // Tags up to 15 fit one byte: every field of the OTLP messages.
    if let Some(&b) = buf.first() {
        if b < 0x80 {
            *buf = &buf[1..];
            let (tag, wire_type) = (u32::from(b >> 3), b & 7);
            if tag == 0 || wire_type > 5 {
                return Err(Problem::InvalidKey);
            }
            return Ok((tag, wire_type));
        }
    }
    let key = varint(buf)?;
    if key > u64::from(u32::MAX) {
        return Err(Problem::InvalidKey);
    }
    let wire_type = (key & 7) as u8;
    if wire_type > 5 {
        return Err(Problem::InvalidKey);
    }
    let tag = (key >> 3) as u32;
    if tag == 0 {
        return Err(Problem::InvalidKey);
    }
    Ok((tag, wire_type))
}

/// Skips a field no table names, as prost does: the budget is the caller's
/// remaining nesting depth, and groups nest.
fn skip(buf: &mut &[u8], tag: u32, wire_type: u8, budget: u32) -> Result<(), Problem> {
    if budget == 0 {
        return Err(Problem::RecursionLimit);
    }
    match wire_type {
        0 => {
            varint(buf)?;
        }
        1 => {
            take(buf, 8)?;
        }
        5 => {
            take(buf, 4)?;
        }
        2 => {
            let len = varint(buf)?;
            take(buf, len)?;
        }
        3 => loop {
            let (inner_tag, inner_type) = key(buf)?;
            if inner_type == 4 {
                if inner_tag != tag {
                    return Err(Problem::UnexpectedEndGroup);
                }
                break;
            }
            skip(buf, inner_tag, inner_type, budget - 1)?;
        },
        _ => return Err(Problem::UnexpectedEndGroup),
    }
    Ok(())
}

fn expect(found: u8, expected: u8) -> Result<(), Problem> {
    if found == expected {
        Ok(())
    } else {
        Err(Problem::InvalidWireType { found, expected })
    }
}

impl Walk {
    /// Walks the fields of one message whose body is `body`. `budget` is how
    /// many more levels of nested messages prost would still enter.
    fn message(&mut self, msg: Msg, body: &[u8], budget: u32) -> Result<(), WireError> {
        // The messages a request is mostly made of get their own copy of the
        // loop, with their field table folded into it. None of them nests in
        // itself, so each adds at most one frame to a chain of nested
        // messages: deep nesting (values in values) runs through the shared copy.
        match msg {
            Msg::Span => self.span(body, budget),
            Msg::LogRecord => self.log_record(body, budget),
            Msg::NumberDataPoint => self.number_point(body, budget),
            _ => self.fields(msg, body, budget),
        }
    }

    #[inline(never)]
    fn span(&mut self, body: &[u8], budget: u32) -> Result<(), WireError> {
        self.fields(Msg::Span, body, budget)
    }

    #[inline(never)]
    fn log_record(&mut self, body: &[u8], budget: u32) -> Result<(), WireError> {
        self.fields(Msg::LogRecord, body, budget)
    }

    #[inline(never)]
    fn number_point(&mut self, body: &[u8], budget: u32) -> Result<(), WireError> {
        self.fields(Msg::NumberDataPoint, body, budget)
    }

    /// [`Walk::message`]'s loop, inlined into a copy per message type above.
    /// Debug builds keep it (and the attribute path) out of line: there,
    /// everything inlined keeps its own stack slots, and 100 nested
    /// messages' frames would not fit a test thread's stack.
    #[cfg_attr(not(debug_assertions), inline(always))]
    fn fields(&mut self, msg: Msg, body: &[u8], budget: u32) -> Result<(), WireError> {
        let mut buf = body;
        let mut ids = Ids::default();
        // Metric.data is a oneof: a later variant replaces an earlier one, the same variant merges.
        let mut data: Option<(u32, usize)> = None;
        while !buf.is_empty() {
            let field_start = buf;
            let (tag, wire_type) = key(&mut buf).map_err(WireError::new)?;
            let Some((kind, name)) = field(msg, tag) else {
                skip(&mut buf, tag, wire_type, budget).map_err(WireError::new)?;
                continue;
            };
            let at = |p: Problem| WireError::new(p).within(name.to_string());
            match kind {
                Kind::Varint => {
                    expect(wire_type, 0).map_err(at)?;
                    varint(&mut buf).map_err(at)?;
                }
                Kind::I64 => {
                    expect(wire_type, 1).map_err(at)?;
                    take(&mut buf, 8).map_err(at)?;
                }
                Kind::I32 => {
                    expect(wire_type, 5).map_err(at)?;
                    take(&mut buf, 4).map_err(at)?;
                }
                Kind::Bytes | Kind::Str => {
                    expect(wire_type, 2).map_err(at)?;
                    let len = varint(&mut buf).map_err(at)?;
                    let value = take(&mut buf, len).map_err(at)?;
                    if matches!(kind, Kind::Str) && !is_utf8(value) {
                        return Err(at(Problem::NotUtf8));
                    }
                    self.bytes += super::estimate::string_bytes(msg, tag, value.len());
                    match (msg, tag) {
                        (Msg::Span, 1) | (Msg::LogRecord, 9) => ids.trace = value.len(),
                        (Msg::Span, 2) | (Msg::LogRecord, 10) => ids.span = value.len(),
                        (Msg::Span, 4) => ids.parent = value.len(),
                        _ => {}
                    }
                }
                Kind::RepeatedI64 => match wire_type {
                    1 => {
                        take(&mut buf, 8).map_err(at)?;
                        self.bytes += 8;
                    }
                    2 => {
                        let len = varint(&mut buf).map_err(at)?;
                        let packed = take(&mut buf, len).map_err(at)?.len();
                        if packed % 8 != 0 {
                            return Err(at(Problem::PackedLength));
                        }
                        self.bytes += packed as u64;
                    }
                    other => return Err(at(Problem::InvalidWireType { found: other, expected: 1 })),
                },
                Kind::RepeatedVarint => match wire_type {
                    0 => {
                        varint(&mut buf).map_err(at)?;
                        self.bytes += 8;
                    }
                    2 => {
                        let len = varint(&mut buf).map_err(at)?;
                        let mut packed = take(&mut buf, len).map_err(at)?;
                        while !packed.is_empty() {
                            // A varint cut by the end of the packed run is an error either way.
                            varint(&mut packed).map_err(|_| at(Problem::PackedLength))?;
                            self.bytes += 8;
                        }
                    }
                    other => return Err(at(Problem::InvalidWireType { found: other, expected: 0 })),
                },
                Kind::Message(child) => {
                    expect(wire_type, 2).map_err(at)?;
                    if budget == 0 {
                        return Err(at(Problem::RecursionLimit));
                    }
                    let len = varint(&mut buf).map_err(at)?;
                    let value = take(&mut buf, len).map_err(at)?;
                    // Attributes are most of a request: the plain ones take a
                    // quick path that accepts only what the full walk would.
                    if child == Msg::KeyValue && budget >= 2 && plain_key_value(value) {
                        // Its struct, and its key and a string or bytes
                        // value: at most its body.
                        self.bytes += super::estimate::KEY_VALUE_BYTES + value.len() as u64;
                        continue;
                    }
                    self.bytes += super::estimate::element_bytes(child, name);
                    let before = self.items;
                    let counted = self.message(child, value, budget - 1);
                    if let Err(e) = counted {
                        let index = occurrences(body, field_start, tag);
                        return Err(e.within(segment(msg, name, index)));
                    }
                    match child {
                        Msg::Span | Msg::LogRecord => self.items += 1,
                        Msg::Points(_) | Msg::TemporalPoints(_) => {
                            let points = self.items - before;
                            self.items = before;
                            data = match data {
                                Some((t, n)) if t == tag => Some((t, n + points)),
                                _ => Some((tag, points)),
                            };
                        }
                        _ => {}
                    }
                }
            }
        }
        match msg {
            Msg::Span => {
                check_id("trace_id", ids.trace == 16, "16 bytes", ids.trace)?;
                check_id("span_id", ids.span == 8, "8 bytes", ids.span)?;
                check_id("parent_span_id", ids.parent == 0 || ids.parent == 8, "empty or 8 bytes", ids.parent)?;
            }
            Msg::LogRecord => {
                check_id("trace_id", ids.trace == 0 || ids.trace == 16, "empty or 16 bytes", ids.trace)?;
                check_id("span_id", ids.span == 0 || ids.span == 8, "empty or 8 bytes", ids.span)?;
            }
            _ => {}
        }
        if let Some((_, points)) = data {
            self.items += points;
        }
        // Each data point counts once, histograms and summaries included.
        if matches!(
            msg,
            Msg::NumberDataPoint | Msg::HistogramDataPoint | Msg::ExpHistogramDataPoint | Msg::SummaryDataPoint
        ) {
            self.items += 1;
        }
        Ok(())
    }
}

/// Whether `body` is a KeyValue holding a key and, at most, one scalar value
/// (string, bool, int, double, bytes), encoded canonically. `true` means the
/// full walk would accept it; `false` means the full walk decides.
#[cfg_attr(not(debug_assertions), inline(always))]
fn plain_key_value(body: &[u8]) -> bool {
    // Keys and values under 128 bytes, their lengths one byte each: most
    // attributes, in fewer steps.
    if let [0x0a, key_len @ 0..=0x7f, rest @ ..] = body {
        let key_len = usize::from(*key_len);
        if let Some((k, rest)) = rest.split_at_checked(key_len) {
            match rest {
                [] => return is_utf8(k),
                [0x12, value_len @ 0..=0x7f, v @ ..] if usize::from(*value_len) == v.len() => {
                    let text: &[u8] = match v {
                        [] => &[],
                        [0x0a, text_len @ 0..=0x7f, text @ ..] if usize::from(*text_len) == text.len() => text,
                        [0x3a, bytes_len @ 0..=0x7f, bytes @ ..] if usize::from(*bytes_len) == bytes.len() => &[],
                        [0x10 | 0x18 | 0x40, number @ ..] if number.len() <= 10 => {
                            let mut number = number;
                            if varint(&mut number).is_err() || !number.is_empty() {
                                return false;
                            }
                            &[]
                        }
                        [0x21, double @ ..] if double.len() == 8 => &[],
                        _ => return plain_key_value_slow(body),
                    };
                    return is_ascii(high_bits(k) | high_bits(text)) || (is_utf8(k) && is_utf8(text));
                }
                _ => {}
            }
        }
    }
    plain_key_value_slow(body)
}

/// [`plain_key_value`] for any length.
#[inline(never)]
fn plain_key_value_slow(body: &[u8]) -> bool {
    let mut b = body;
    if b.first() != Some(&0x0a) {
        return false;
    }
    b = &b[1..];
    let Ok(len) = varint(&mut b) else { return false };
    let Ok(k) = take(&mut b, len) else { return false };
    if b.is_empty() {
        return is_utf8(k);
    }
    if b[0] != 0x12 {
        return false;
    }
    b = &b[1..];
    let Ok(len) = varint(&mut b) else { return false };
    let Ok(mut v) = take(&mut b, len) else { return false };
    if !b.is_empty() {
        return false;
    }
    let Some((&field_key, rest)) = v.split_first() else { return is_utf8(k) };
    v = rest;
    // AnyValue's one-byte keys: the text of a string_value is checked with the key's.
    let text: &[u8] = match field_key {
        0x0a => match varint(&mut v).and_then(|n| take(&mut v, n)) {
            Ok(text) => text,
            Err(_) => return false,
        },
        0x3a => match varint(&mut v).and_then(|n| take(&mut v, n)) {
            Ok(_) => &[],
            Err(_) => return false,
        },
        0x10 | 0x18 | 0x40 => match varint(&mut v) {
            Ok(_) => &[],
            Err(_) => return false,
        },
        0x21 => match take(&mut v, 8) {
            Ok(_) => &[],
            Err(_) => return false,
        },
        _ => return false,
    };
    v.is_empty() && (is_ascii(high_bits(k) | high_bits(text)) || (is_utf8(k) && is_utf8(text)))
}

/// The OR of words covering `s`, so that the top bit of one of its bytes is
/// set exactly when `s` holds a byte over 0x7f. Whole words are loaded, the
/// last one overlapping, so a short string costs no loop over its bytes.
#[inline(always)]
fn high_bits(s: &[u8]) -> u64 {
    let n = s.len();
    let word = |i: usize| u64::from_le_bytes(s[i..i + 8].try_into().unwrap_or([0x80; 8]));
    let half = |i: usize| u64::from(u32::from_le_bytes(s[i..i + 4].try_into().unwrap_or([0x80; 4])));
    if n >= 8 {
        let mut words = s.chunks_exact(8);
        let mut high = 0u64;
        for w in &mut words {
            high |= u64::from_le_bytes(w.try_into().unwrap_or([0x80; 8]));
        }
        high | word(n - 8)
    } else if n >= 4 {
        half(0) | half(n - 4)
    } else if n > 0 {
        u64::from(s[0] | s[n / 2] | s[n - 1])
    } else {
        0
    }
}

#[inline(always)]
fn is_ascii(high_bits: u64) -> bool {
    high_bits & 0x8080_8080_8080_8080 == 0
}

/// UTF-8 validity, with a quick answer for ASCII (most telemetry strings);
/// only non-ASCII strings take the full check.
#[inline(always)]
fn is_utf8(s: &[u8]) -> bool {
    is_ascii(high_bits(s)) || std::str::from_utf8(s).is_ok()
}

fn check_id(field: &'static str, ok: bool, expected: &'static str, got: usize) -> Result<(), WireError> {
    if ok {
        Ok(())
    } else {
        Err(WireError::new(Problem::Id(Box::new(BadId { field, expected, got }))))
    }
}

/// `name[i]` for repeated message fields, `name` for singular ones.
fn segment(msg: Msg, name: &str, index: usize) -> String {
    let singular = matches!(
        (msg, name),
        (_, "resource" | "scope" | "status" | "value" | "body" | "positive" | "negative")
            | (Msg::Metric, "gauge" | "sum" | "histogram" | "exponential_histogram" | "summary")
            | (Msg::AnyValue, _)
    );
    if singular {
        name.to_string()
    } else {
        format!("{name}[{index}]")
    }
}

/// How many times field `tag` occurs in `body` before `until` (a suffix of
/// `body`): the index of the occurrence that starts there. Only runs on the
/// error path, over a prefix that already walked cleanly.
fn occurrences(body: &[u8], until: &[u8], tag: u32) -> usize {
    let end = body.len() - until.len();
    let mut buf = &body[..end];
    let mut n = 0;
    while !buf.is_empty() {
        let Ok((t, wire_type)) = key(&mut buf) else { break };
        if t == tag {
            n += 1;
        }
        if skip(&mut buf, t, wire_type, RECURSION_LIMIT).is_err() {
            break;
        }
    }
    n
}

#[cfg(test)]
mod tests;
