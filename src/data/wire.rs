//! Counting items in an OTLP protobuf message without decoding it, and
//! finding its top-level entries: walks of the wire format that allocate
//! nothing. Used to count what is refused under overload (where a full decode
//! would spend the CPU the agent is short of) and to count and cut batches
//! that stay encoded on the pass-through path.
//!
//! The walks are lenient: they stop quietly at the first malformed byte. On a
//! request that passed [`super::check::check_request`] they count exactly what
//! a decode would.

use crate::data::Signal;

#[inline]
fn varint(buf: &mut &[u8]) -> Option<u64> {
    // Tags and most lengths are one byte.
    if let Some((&b, rest)) = buf.split_first() {
        if b < 0x80 {
            *buf = rest;
            return Some(u64::from(b));
        }
    }
    varint_long(buf)
}

#[cold]
fn varint_long(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    let mut shift = 0;
    while shift < 64 {
        let (&b, rest) = buf.split_first()?;
        *buf = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
        shift += 7;
    }
    None
}

/// Calls `f` on the body of each length-delimited field numbered `field`.
/// Stops quietly at the first malformed byte.
fn each_field(mut msg: &[u8], field: u64, f: &mut dyn FnMut(&[u8])) {
    while !msg.is_empty() {
        let Some(key) = varint(&mut msg) else { return };
        let skipped = match key & 7 {
            0 => varint(&mut msg).map(|_| msg),
            1 => msg.get(8..),
            2 => varint(&mut msg).and_then(|len| {
                let len = usize::try_from(len).ok()?;
                let body = msg.get(..len)?;
                if key >> 3 == field {
                    f(body);
                }
                msg.get(len..)
            }),
            5 => msg.get(4..),
            _ => None,
        };
        match skipped {
            Some(rest) => msg = rest,
            None => return,
        }
    }
}

fn count_path(msg: &[u8], path: &[u64]) -> usize {
    match path.split_first() {
        None => 1,
        Some((field, rest)) => {
            let mut n = 0;
            each_field(msg, *field, &mut |body| n += count_path(body, rest));
            n
        }
    }
}

/// Spans, metric data points or log records in an export request's protobuf.
pub fn count_items(signal: Signal, msg: &[u8]) -> usize {
    match signal {
        // resource_spans(1) → scope_spans(2) → spans(2)
        Signal::Traces => count_path(msg, &[1, 2, 2]),
        // resource_logs(1) → scope_logs(2) → log_records(2)
        Signal::Logs => count_path(msg, &[1, 2, 2]),
        // resource_metrics(1) → scope_metrics(2) → metrics(2) → one of
        // gauge(5) sum(7) histogram(9) exponential_histogram(10) summary(11) → data_points(1)
        Signal::Metrics => {
            let mut n = 0;
            each_field(msg, 1, &mut |rm| n += resource_items(Signal::Metrics, rm));
            n
        }
    }
}

/// Items of one top-level entry (ResourceSpans, ResourceMetrics, ResourceLogs).
pub fn resource_items(signal: Signal, entry: &[u8]) -> usize {
    match signal {
        Signal::Traces | Signal::Logs => count_path(entry, &[2, 2]),
        Signal::Metrics => {
            let mut n = 0;
            each_field(entry, 2, &mut |sm| each_field(sm, 2, &mut |metric| n += metric_points(metric)));
            n
        }
    }
}

/// Data points of one Metric. `data` is a oneof: as in a decode, a later
/// field of another variant replaces the earlier one, the same variant merges.
fn metric_points(mut msg: &[u8]) -> usize {
    let mut data: Option<(u64, usize)> = None;
    while !msg.is_empty() {
        let Some(key) = varint(&mut msg) else { break };
        let rest = match key & 7 {
            0 => varint(&mut msg).map(|_| msg),
            1 => msg.get(8..),
            2 => varint(&mut msg).and_then(|len| {
                let len = usize::try_from(len).ok()?;
                let body = msg.get(..len)?;
                let tag = key >> 3;
                // gauge(5) sum(7) histogram(9) exponential_histogram(10) summary(11) → data_points(1)
                if matches!(tag, 5 | 7 | 9 | 10 | 11) {
                    let points = count_path(body, &[1]);
                    data = match data {
                        Some((t, n)) if t == tag => Some((t, n + points)),
                        _ => Some((tag, points)),
                    };
                }
                msg.get(len..)
            }),
            5 => msg.get(4..),
            _ => None,
        };
        match rest {
            Some(rest) => msg = rest,
            None => break,
        }
    }
    data.map_or(0, |(_, n)| n)
}

/// One top-level entry of an export request: `range` covers its key, length
/// and body within the message, so slicing there keeps a valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub range: std::ops::Range<usize>,
    pub items: usize,
}

/// The top-level entries (field 1) of an export request, in order. Fields
/// other than 1 are not expected at the top level and are skipped.
pub fn entries(signal: Signal, message: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut rest = message;
    while !rest.is_empty() {
        let start = message.len() - rest.len();
        let Some(key) = varint(&mut rest) else { break };
        let next = match key & 7 {
            0 => varint(&mut rest).map(|_| rest),
            1 => rest.get(8..),
            2 => varint(&mut rest).and_then(|len| {
                let len = usize::try_from(len).ok()?;
                let body = rest.get(..len)?;
                if key >> 3 == 1 {
                    let end = message.len() - rest.len() + len;
                    out.push(Entry { range: start..end, items: resource_items(signal, body) });
                }
                rest.get(len..)
            }),
            5 => rest.get(4..),
            _ => None,
        };
        match next {
            Some(r) => rest = r,
            None => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::metrics::v1::{
        metric::Data, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    };
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    #[test]
    fn counts_match_a_full_decode() {
        let traces = ExportTraceServiceRequest {
            resource_spans: vec![
                ResourceSpans {
                    scope_spans: vec![
                        ScopeSpans {
                            spans: vec![Span { name: "a".into(), ..Default::default() }; 3],
                            ..Default::default()
                        },
                        ScopeSpans { spans: vec![Span::default(); 2], ..Default::default() },
                    ],
                    ..Default::default()
                },
                ResourceSpans {
                    scope_spans: vec![ScopeSpans { spans: vec![Span::default(); 4], ..Default::default() }],
                    ..Default::default()
                },
            ],
        };
        assert_eq!(count_items(Signal::Traces, &traces.encode_to_vec()), 9);
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default(); 5], ..Default::default() }],
                ..Default::default()
            }],
        };
        assert_eq!(count_items(Signal::Logs, &logs.encode_to_vec()), 5);
        let metric = |data| Metric { name: "m".into(), data: Some(data), ..Default::default() };
        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![
                        metric(Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default(); 2] })),
                        metric(Data::Sum(Sum {
                            data_points: vec![NumberDataPoint::default(); 3],
                            ..Default::default()
                        })),
                        metric(Data::Histogram(Histogram {
                            data_points: vec![HistogramDataPoint::default(); 4],
                            ..Default::default()
                        })),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let batch = Batch::Metrics(metrics.clone());
        assert_eq!(count_items(Signal::Metrics, &metrics.encode_to_vec()), batch.item_count());
    }

    #[test]
    fn garbage_counts_what_it_can_without_panicking() {
        assert_eq!(count_items(Signal::Traces, &[]), 0);
        assert_eq!(count_items(Signal::Traces, &[0x0a, 0xff, 0xff]), 0);
        for len in 0..64u8 {
            let junk: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37) ^ 0x0a).collect();
            let _ = count_items(Signal::Metrics, &junk);
        }
    }

    #[test]
    fn a_key_value_key_is_the_one_a_decode_sees() {
        use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
        let kv = |k: &str, v: Option<&str>| {
            KeyValue {
                key: k.into(),
                value: v.map(|v| AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
                ..Default::default()
            }
            .encode_to_vec()
        };
        let long = "k".repeat(300);
        let mut cases = vec![
            kv("http.route", Some("/x")),
            kv("http.route", None),
            kv(&long, Some(&"v".repeat(200))),
            kv("", Some("v")),
            Vec::new(),
        ];
        // Value before key; a later key wins; a trailing unknown field.
        let mut swapped = kv("", Some("v"));
        swapped.extend(kv("late", None));
        cases.push(swapped);
        let mut twice = kv("first", Some("v"));
        twice.extend(kv("second", None));
        cases.push(twice);
        let mut extra = kv("key", Some("v"));
        extra.extend([0x18, 0x01]);
        cases.push(extra);
        for bytes in &cases {
            let want = KeyValue::decode(bytes.as_slice()).unwrap().key;
            assert_eq!(key_value_key(bytes), want.as_bytes(), "{bytes:?}");
        }
        // Cut short: no panic, and what a walk would say.
        let whole = kv("http.route", Some("/x"));
        for n in 0..whole.len() {
            assert_eq!(key_value_key(&whole[..n]), last_bytes_field(&whole[..n], 1));
        }
    }
}

/// The value of one field as the wire carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireValue<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

/// The fields of one message, in wire order: `(field number, value)`.
/// Groups (deprecated, never used by OTLP) are skipped whole, as a decode
/// skips them. Like the other walks here, it stops quietly at the first
/// malformed byte.
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: &'a [u8],
}

pub fn fields(message: &[u8]) -> Fields<'_> {
    Fields { rest: message }
}

impl<'a> Fields<'a> {
    /// What is left to walk: the message's length minus this is the offset
    /// of the next field.
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

/// The bytes of length-delimited field `field` of a message; the last
/// occurrence wins, as in a decode of a string or bytes field. Empty when
/// absent.
pub fn last_bytes_field(message: &[u8], field: u64) -> &[u8] {
    let mut last: &[u8] = &[];
    for (f, v) in fields(message) {
        if let (true, WireValue::Bytes(b)) = (f == field, v) {
            last = b;
        }
    }
    last
}

/// Appends the key and length of field `field` (length-delimited) to `out`.
pub fn put_len_header(out: &mut Vec<u8>, field: u64, len: usize) {
    prost::encoding::encode_key(field as u32, prost::encoding::WireType::LengthDelimited, out);
    prost::encoding::encode_varint(len as u64, out);
}

/// Appends field `field` (length-delimited) holding `body` to `out`.
pub fn put_bytes_field(out: &mut Vec<u8>, field: u64, body: &[u8]) {
    put_len_header(out, field, body.len());
    out.extend_from_slice(body);
}

/// Bytes of a length-delimited field with a body of `len` bytes.
pub fn field_len(field: u64, len: usize) -> usize {
    prost::encoding::key_len(field as u32) + prost::length_delimiter_len(len) + len
}

/// The key of an encoded `KeyValue` (field 1; the last occurrence wins, as
/// in a decode). The usual layout, key then value and nothing else, is read
/// without a general walk.
pub fn key_value_key(kv: &[u8]) -> &[u8] {
    let mut rest = kv;
    if let Some((&0x0a, after)) = rest.split_first() {
        rest = after;
        if let Some(key) = varint(&mut rest).and_then(|l| usize::try_from(l).ok()).and_then(|l| rest.get(..l)) {
            rest = &rest[key.len()..];
            if rest.is_empty() {
                return key;
            }
            if let Some((&0x12, after)) = rest.split_first() {
                let mut value = after;
                if varint(&mut value).and_then(|l| usize::try_from(l).ok()) == Some(value.len()) {
                    return key;
                }
            }
        }
    }
    last_bytes_field(kv, 1)
}

/// Skips past the end-group of the group just started; false when malformed.
fn skip_group(buf: &mut &[u8], field: u64) -> bool {
    let mut depth = 0usize;
    loop {
        let Some(key) = varint(buf) else { return false };
        let ok = match key & 7 {
            0 => varint(buf).is_some(),
            1 => buf.get(8..).map(|r| *buf = r).is_some(),
            2 => varint(buf)
                .and_then(|len| usize::try_from(len).ok())
                .and_then(|len| buf.get(len..))
                .map(|r| *buf = r)
                .is_some(),
            3 => {
                depth += 1;
                true
            }
            4 if depth == 0 => return key >> 3 == field,
            4 => {
                depth -= 1;
                true
            }
            5 => buf.get(4..).map(|r| *buf = r).is_some(),
            _ => false,
        };
        if !ok {
            return false;
        }
    }
}

/// A value of wire type `wire_type` (varint, fixed64, length-delimited or
/// fixed32) from the front of `buf`; `None` for other types or when it is
/// cut short.
#[inline(always)]
fn value<'a>(wire_type: u64, buf: &mut &'a [u8]) -> Option<WireValue<'a>> {
    match wire_type {
        0 => varint(buf).map(WireValue::Varint),
        1 => {
            let (b, r) = buf.split_first_chunk::<8>()?;
            *buf = r;
            Some(WireValue::Fixed64(u64::from_le_bytes(*b)))
        }
        2 => {
            let len = usize::try_from(varint(buf)?).ok()?;
            let (body, r) = buf.split_at_checked(len)?;
            *buf = r;
            Some(WireValue::Bytes(body))
        }
        5 => {
            let (b, r) = buf.split_first_chunk::<4>()?;
            *buf = r;
            Some(WireValue::Fixed32(u32::from_le_bytes(*b)))
        }
        _ => None,
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = (u64, WireValue<'a>);

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let mut buf = self.rest;
            // Some(None): a group, skipped; None: the end, or malformed.
            let parsed = varint(&mut buf).and_then(|key| match key & 7 {
                3 => skip_group(&mut buf, key >> 3).then_some(None),
                wire_type => value(wire_type, &mut buf).map(|v| Some((key >> 3, v))),
            });
            match parsed {
                Some(Some(field)) => {
                    self.rest = buf;
                    return Some(field);
                }
                Some(None) => self.rest = buf,
                None => {
                    self.rest = &[];
                    return None;
                }
            }
        }
    }
}
