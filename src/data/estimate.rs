//! What an OTLP export request will cost once decoded, read from its
//! protobuf bytes without decoding them: the receivers' admission decides
//! on this before any decode allocates.
//!
//! Decoding multiplies memory: an empty log record is 2 bytes on the wire and
//! a `LogRecord` struct of well over 100 bytes once decoded, so the wire size
//! says little about what a request costs. The model: every element of a
//! repeated message field adds the size of the prost struct it becomes, and
//! every string, bytes value and packed number list the heap it takes. The
//! receivers sum it in the walk that checks a request
//! ([`super::check::check_and_estimate`]), which counts a plain attribute by
//! its encoded body: a few bytes more than it holds, never less.
//!
//! `estimate_request` (tests only) sums the same model exactly, in a
//! lenient walk of its own: it is the reference the check walk's figure is
//! held to, and it is itself held to the bytes the decoded structs and their
//! heap hold (the growth slack of `Vec`s aside; tests below).

use super::check::Msg;
#[cfg(test)]
use super::{
    check::{field, Kind, RECURSION_LIMIT},
    Signal,
};
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::logs::v1 as logs;
use opentelemetry_proto::tonic::metrics::v1 as metrics;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1 as trace;
use std::mem::size_of;

/// Items (spans, data points, log records) and the bytes the decoded request would hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Estimate {
    pub items: usize,
    pub decoded_bytes: u64,
    /// The request's protobuf bytes, when it is kept encoded (what it then
    /// waits as in a pipeline); 0 when it will be decoded.
    pub encoded_bytes: u64,
}

/// Walks an `Export{Trace,Metrics,Logs}ServiceRequest`'s protobuf bytes:
/// the model summed exactly, for tests to hold the check walk's figure to.
#[cfg(test)]
pub fn estimate_request(signal: Signal, message: &[u8]) -> Estimate {
    let (msg, top) = match signal {
        Signal::Traces => (Msg::ExportTraces, size_of::<ExportTraceServiceRequest>()),
        Signal::Metrics => (Msg::ExportMetrics, size_of::<ExportMetricsServiceRequest>()),
        Signal::Logs => (Msg::ExportLogs, size_of::<ExportLogsServiceRequest>()),
    };
    let mut walk = Walk { items: 0, bytes: top as u64 };
    walk.message(msg, message, RECURSION_LIMIT);
    Estimate { items: walk.items, decoded_bytes: walk.bytes, encoded_bytes: 0 }
}

/// What an attribute (a repeated `KeyValue`) adds once decoded besides its strings.
pub(super) const KEY_VALUE_BYTES: u64 = size_of::<common::KeyValue>() as u64;

/// The size of the struct a message decodes into; 0 for the messages that
/// live inline in their parent (`Gauge`, `Sum`, ... in `Metric`'s oneof).
#[inline(always)]
fn struct_size(msg: Msg) -> usize {
    match msg {
        Msg::ExportTraces => size_of::<ExportTraceServiceRequest>(),
        Msg::ResourceSpans => size_of::<trace::ResourceSpans>(),
        Msg::ScopeSpans => size_of::<trace::ScopeSpans>(),
        Msg::Span => size_of::<trace::Span>(),
        Msg::Event => size_of::<trace::span::Event>(),
        Msg::Link => size_of::<trace::span::Link>(),
        Msg::Status => size_of::<trace::Status>(),
        Msg::ExportMetrics => size_of::<ExportMetricsServiceRequest>(),
        Msg::ResourceMetrics => size_of::<metrics::ResourceMetrics>(),
        Msg::ScopeMetrics => size_of::<metrics::ScopeMetrics>(),
        Msg::Metric => size_of::<metrics::Metric>(),
        Msg::Points(_) | Msg::TemporalPoints(_) => 0,
        Msg::NumberDataPoint => size_of::<metrics::NumberDataPoint>(),
        Msg::HistogramDataPoint => size_of::<metrics::HistogramDataPoint>(),
        Msg::ExpHistogramDataPoint => size_of::<metrics::ExponentialHistogramDataPoint>(),
        Msg::Buckets => size_of::<metrics::exponential_histogram_data_point::Buckets>(),
        Msg::SummaryDataPoint => size_of::<metrics::SummaryDataPoint>(),
        Msg::ValueAtQuantile => size_of::<metrics::summary_data_point::ValueAtQuantile>(),
        Msg::Exemplar => size_of::<metrics::Exemplar>(),
        Msg::ExportLogs => size_of::<ExportLogsServiceRequest>(),
        Msg::ResourceLogs => size_of::<logs::ResourceLogs>(),
        Msg::ScopeLogs => size_of::<logs::ScopeLogs>(),
        Msg::LogRecord => size_of::<logs::LogRecord>(),
        Msg::Resource => size_of::<Resource>(),
        Msg::Scope => size_of::<common::InstrumentationScope>(),
        Msg::EntityRef => size_of::<common::EntityRef>(),
        Msg::KeyValue => size_of::<common::KeyValue>(),
        Msg::AnyValue => size_of::<common::AnyValue>(),
        Msg::ArrayValue => size_of::<common::ArrayValue>(),
        Msg::KeyValueList => size_of::<common::KeyValueList>(),
    }
}

/// Message fields that are not repeated: prost keeps them inline in the
/// parent (an `Option<T>` or a oneof variant), so they add no element. Told
/// by the child's message type, not by comparing names: this runs for every
/// attribute of a request. Only `AnyValue` is both: one in `value` and
/// `body`, a list in an `ArrayValue`'s `values`.
#[inline(always)]
fn singular(child: Msg, name: &str) -> bool {
    match child {
        Msg::Resource
        | Msg::Scope
        | Msg::Status
        | Msg::Points(_)
        | Msg::TemporalPoints(_)
        | Msg::Buckets
        | Msg::ArrayValue
        | Msg::KeyValueList => true,
        Msg::AnyValue => name != "values",
        _ => false,
    }
}

/// What one element of a message field named `name` adds once decoded: the
/// struct it becomes, unless it lives inline in its parent. `""` names the
/// request itself.
#[inline(always)] // once per nested message of every request walked
pub(super) fn element_bytes(child: Msg, name: &str) -> u64 {
    if singular(child, name) {
        0
    } else {
        struct_size(child) as u64
    }
}

/// What a string or bytes field of `len` bytes adds once decoded.
#[inline(always)]
pub(super) fn string_bytes(msg: Msg, tag: u32, len: usize) -> u64 {
    // A repeated string (EntityRef's keys) adds a `String` per element.
    if msg == Msg::EntityRef && tag >= 3 {
        (len + size_of::<String>()) as u64
    } else {
        len as u64
    }
}

#[cfg(test)]
/// Whether an element of this field is one item as the Collector counts them.
fn is_item(msg: Msg, tag: u32) -> bool {
    matches!((msg, tag), (Msg::ScopeSpans, 2) | (Msg::ScopeLogs, 2) | (Msg::Points(_) | Msg::TemporalPoints(_), 1))
}

#[cfg(test)]
struct Walk {
    items: usize,
    bytes: u64,
}

#[cfg(test)]
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
fn take<'a>(buf: &mut &'a [u8], len: u64) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    let (head, rest) = (buf.get(..len)?, buf.get(len..)?);
    *buf = rest;
    Some(head)
}

#[cfg(test)]
/// Skips a group (wire type 3) up to its end; `None` when malformed or too deep.
fn skip_group(buf: &mut &[u8], tag: u64, budget: u32) -> Option<()> {
    if budget == 0 {
        return None;
    }
    loop {
        let key = varint(buf)?;
        match key & 7 {
            0 => {
                varint(buf)?;
            }
            1 => {
                take(buf, 8)?;
            }
            2 => {
                let len = varint(buf)?;
                take(buf, len)?;
            }
            3 => skip_group(buf, key >> 3, budget - 1)?,
            4 if key >> 3 == tag => return Some(()),
            5 => {
                take(buf, 4)?;
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
impl Walk {
    fn message(&mut self, msg: Msg, mut buf: &[u8], budget: u32) {
        if budget == 0 {
            return;
        }
        while !buf.is_empty() {
            let Some(key) = varint(&mut buf) else { return };
            let tag = u32::try_from(key >> 3).unwrap_or(0);
            let known = field(msg, tag);
            let ok = match key & 7 {
                0 => {
                    let v = varint(&mut buf);
                    if matches!(known, Some((Kind::RepeatedVarint, _))) {
                        self.bytes += 8;
                    }
                    v.is_some()
                }
                1 => {
                    if matches!(known, Some((Kind::RepeatedI64, _))) {
                        self.bytes += 8;
                    }
                    take(&mut buf, 8).is_some()
                }
                5 => take(&mut buf, 4).is_some(),
                3 => skip_group(&mut buf, key >> 3, budget - 1).is_some(),
                2 => {
                    let Some(body) = varint(&mut buf).and_then(|len| take(&mut buf, len)) else { return };
                    self.field(msg, tag, known, body, budget);
                    true
                }
                _ => false,
            };
            if !ok {
                return;
            }
        }
    }

    fn field(&mut self, msg: Msg, tag: u32, known: Option<(Kind, &'static str)>, body: &[u8], budget: u32) {
        let Some((kind, name)) = known else { return };
        let len = body.len() as u64;
        match kind {
            Kind::Message(child) => {
                if !singular(child, name) {
                    self.bytes += struct_size(child) as u64;
                }
                if is_item(msg, tag) {
                    self.items += 1;
                }
                self.message(child, body, budget - 1);
            }
            // A repeated string (EntityRef's keys) adds a `String` per element.
            Kind::Str if msg == Msg::EntityRef && tag >= 3 => self.bytes += len + size_of::<String>() as u64,
            Kind::Str | Kind::Bytes | Kind::RepeatedI64 => self.bytes += len,
            Kind::RepeatedVarint => self.bytes += 8 * body.iter().filter(|b| **b < 0x80).count() as u64,
            Kind::Varint | Kind::I64 | Kind::I32 => {}
        }
    }
}

#[cfg(test)]
mod tests {
    /// Every message field of the table is singular exactly when its name
    /// is one of the OTLP protos' non-repeated message fields.
    #[test]
    fn singular_fields_are_the_protos_non_repeated_ones() {
        use super::super::check::PointKind;
        const NON_REPEATED: &[&str] = &[
            "resource",
            "scope",
            "status",
            "gauge",
            "sum",
            "histogram",
            "exponential_histogram",
            "summary",
            "positive",
            "negative",
            "body",
            "value",
            "array_value",
            "kvlist_value",
        ];
        let kinds = [PointKind::Number, PointKind::Histogram, PointKind::ExpHistogram, PointKind::Summary];
        let mut msgs = vec![
            Msg::ExportTraces,
            Msg::ResourceSpans,
            Msg::ScopeSpans,
            Msg::Span,
            Msg::Event,
            Msg::Link,
            Msg::Status,
            Msg::ExportMetrics,
            Msg::ResourceMetrics,
            Msg::ScopeMetrics,
            Msg::Metric,
            Msg::NumberDataPoint,
            Msg::HistogramDataPoint,
            Msg::ExpHistogramDataPoint,
            Msg::Buckets,
            Msg::SummaryDataPoint,
            Msg::ValueAtQuantile,
            Msg::Exemplar,
            Msg::ExportLogs,
            Msg::ResourceLogs,
            Msg::ScopeLogs,
            Msg::LogRecord,
            Msg::Resource,
            Msg::Scope,
            Msg::EntityRef,
            Msg::KeyValue,
            Msg::AnyValue,
            Msg::ArrayValue,
            Msg::KeyValueList,
        ];
        msgs.extend(kinds.iter().flat_map(|k| [Msg::Points(*k), Msg::TemporalPoints(*k)]));
        let mut seen = 0;
        for msg in msgs {
            for tag in 1..32 {
                if let Some((Kind::Message(child), name)) = field(msg, tag) {
                    assert_eq!(super::singular(child, name), NON_REPEATED.contains(&name), "{msg:?}.{name}");
                    seen += 1;
                }
            }
        }
        assert!(seen >= 40, "{seen} message fields");
    }

    use super::*;
    use crate::data::Batch;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use prost::Message;

    /// The heap and struct bytes a decoded batch actually holds, counted
    /// from the structs with exact capacities (what the estimate models).
    fn held(batch: &Batch) -> u64 {
        fn kvs(a: &[KeyValue]) -> u64 {
            a.iter()
                .map(|kv| size_of::<KeyValue>() as u64 + kv.key.len() as u64 + kv.value.as_ref().map_or(0, any))
                .sum()
        }
        fn any(v: &AnyValue) -> u64 {
            match &v.value {
                Some(any_value::Value::StringValue(s)) => s.len() as u64,
                Some(any_value::Value::BytesValue(b)) => b.len() as u64,
                Some(any_value::Value::ArrayValue(a)) => {
                    a.values.iter().map(|v| size_of::<AnyValue>() as u64 + any(v)).sum()
                }
                Some(any_value::Value::KvlistValue(l)) => kvs(&l.values),
                _ => 0,
            }
        }
        match batch {
            Batch::Logs(r) => {
                let mut n = size_of::<ExportLogsServiceRequest>() as u64;
                for rl in &r.resource_logs {
                    n += size_of::<logs::ResourceLogs>() as u64 + rl.schema_url.len() as u64;
                    n += rl.resource.as_ref().map_or(0, |r| kvs(&r.attributes));
                    for sl in &rl.scope_logs {
                        n += size_of::<logs::ScopeLogs>() as u64;
                        for lr in &sl.log_records {
                            n += size_of::<logs::LogRecord>() as u64 + kvs(&lr.attributes);
                            n += (lr.severity_text.len() + lr.trace_id.len() + lr.span_id.len()) as u64;
                            n += lr.body.as_ref().map_or(0, any);
                        }
                    }
                }
                n
            }
            Batch::Traces(r) => {
                let mut n = size_of::<ExportTraceServiceRequest>() as u64;
                for rs in &r.resource_spans {
                    n += size_of::<trace::ResourceSpans>() as u64;
                    n += rs.resource.as_ref().map_or(0, |r| kvs(&r.attributes));
                    for ss in &rs.scope_spans {
                        n += size_of::<trace::ScopeSpans>() as u64;
                        n += ss.scope.as_ref().map_or(0, |s| (s.name.len() + s.version.len()) as u64);
                        for s in &ss.spans {
                            n += size_of::<trace::Span>() as u64 + kvs(&s.attributes);
                            n += (s.trace_id.len() + s.span_id.len() + s.parent_span_id.len() + s.name.len()) as u64;
                        }
                    }
                }
                n
            }
            Batch::Metrics(_) => unreachable!(),
        }
    }

    fn empty_logs(n: usize) -> ExportLogsServiceRequest {
        ExportLogsServiceRequest {
            resource_logs: vec![logs::ResourceLogs {
                scope_logs: vec![logs::ScopeLogs {
                    log_records: vec![logs::LogRecord::default(); n],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn empty_log_records_cost_their_struct_not_their_two_bytes() {
        let req = empty_logs(10_000);
        let wire = req.encode_to_vec();
        // The checking walk sizes it as well, and knows it stays encoded.
        assert_eq!(
            crate::data::check::check_and_estimate(Signal::Logs, &wire).unwrap(),
            Estimate { encoded_bytes: wire.len() as u64, ..estimate_request(Signal::Logs, &wire) }
        );
        let bytes = req.encode_to_vec();
        // 2 bytes a record on the wire (tag, zero length), plus the envelope.
        assert!(bytes.len() < 20_010, "{}", bytes.len());
        let e = estimate_request(Signal::Logs, &bytes);
        assert_eq!(e.items, 10_000);
        assert_eq!(e.decoded_bytes, held(&Batch::Logs(req)));
        assert!(e.decoded_bytes > 10_000 * 100, "{e:?}");
    }

    #[test]
    fn an_sdk_like_request_is_estimated_exactly() {
        let attr = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
            ..Default::default()
        };
        let spans = (0..50)
            .map(|i| trace::Span {
                trace_id: vec![0xab; 16],
                span_id: vec![i as u8 + 1; 8],
                name: format!("span-{i}"),
                kind: 2,
                start_time_unix_nano: 1,
                end_time_unix_nano: 2,
                attributes: vec![attr("http.route", "/api/v1/users/{id}"), attr("http.method", "GET")],
                ..Default::default()
            })
            .collect();
        let req = ExportTraceServiceRequest {
            resource_spans: vec![trace::ResourceSpans {
                resource: Some(Resource { attributes: vec![attr("service.name", "checkout")], ..Default::default() }),
                scope_spans: vec![trace::ScopeSpans {
                    scope: Some(common::InstrumentationScope { name: "lib".into(), ..Default::default() }),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = req.encode_to_vec();
        let e = estimate_request(Signal::Traces, &bytes);
        assert_eq!(e.items, 50);
        let exact = held(&Batch::Traces(req));
        assert_eq!(e.decoded_bytes, exact);
        // The one-walk form (check and size) never says less, and counts
        // each plain attribute by its encoded body: a few bytes more each.
        let both = crate::data::check::check_and_estimate(Signal::Traces, &bytes).unwrap();
        assert_eq!(both.items, 50);
        assert!(both.decoded_bytes >= exact, "{both:?} < {exact}");
        assert!(both.decoded_bytes <= exact + 101 * 8, "{both:?} vs {exact}: 101 attributes, a few bytes each");
    }

    #[test]
    fn metrics_items_are_data_points_and_packed_lists_count() {
        // A histogram point with 100k bounds holds 800 kB of f64s.
        let h = metrics::HistogramDataPoint {
            explicit_bounds: vec![1.0; 100_000],
            bucket_counts: vec![1; 100_001],
            ..Default::default()
        };
        let req = ExportMetricsServiceRequest {
            resource_metrics: vec![metrics::ResourceMetrics {
                scope_metrics: vec![metrics::ScopeMetrics {
                    metrics: vec![metrics::Metric {
                        data: Some(metrics::metric::Data::Histogram(metrics::Histogram {
                            data_points: vec![h],
                            aggregation_temporality: 2,
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let bytes = req.encode_to_vec();
        let e = estimate_request(Signal::Metrics, &bytes);
        let kept = Estimate { encoded_bytes: bytes.len() as u64, ..e };
        assert_eq!(crate::data::check::check_and_estimate(Signal::Metrics, &bytes).unwrap(), kept);
        assert_eq!(e.items, 1);
        assert_eq!(e.items, crate::data::wire::count_items(Signal::Metrics, &bytes));
        assert!(e.decoded_bytes >= 1_600_008, "{e:?}");
    }

    #[test]
    fn unknown_fields_and_groups_do_not_hide_what_follows() {
        let records = empty_logs(1000).encode_to_vec();
        // An unknown group field (tag 15, start 0x7b ... end 0x7c) first, then the records.
        let mut bytes = vec![0x7b, 0x08, 0x01, 0x7c];
        bytes.extend_from_slice(&records);
        let e = estimate_request(Signal::Logs, &bytes);
        assert_eq!(e.items, 1000);
        assert_eq!(e.decoded_bytes, estimate_request(Signal::Logs, &records).decoded_bytes);
        // And prost agrees the message is valid.
        assert!(ExportLogsServiceRequest::decode(&bytes[..]).is_ok());
    }

    #[test]
    fn garbage_never_panics_and_stays_linear() {
        let base = empty_logs(3).encode_to_vec();
        for cut in 0..base.len() {
            let mut v = base[..cut].to_vec();
            if let Some(b) = v.last_mut() {
                *b ^= 0xa5;
            }
            for s in Signal::ALL {
                let _ = estimate_request(s, &v);
            }
        }
        // Nesting past prost's limit: the walk stops descending.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            let mut outer = vec![0x32];
            let mut len = deep.len() as u64;
            loop {
                let b = (len & 0x7f) as u8;
                len >>= 7;
                if len == 0 {
                    outer.push(b);
                    break;
                }
                outer.push(b | 0x80);
            }
            outer.extend_from_slice(&deep);
            deep = outer;
            if deep.len() > 1 << 16 {
                break;
            }
        }
        let _ = estimate_request(Signal::Logs, &deep);
    }
}
