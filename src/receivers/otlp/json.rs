//! An adapter between OTLP/JSON as clients may send it and what
//! opentelemetry-proto's serde derive accepts.
//!
//! The crate's derive covers the OTLP/JSON encoding proper (lowerCamelCase
//! keys, hex trace/span IDs, 64-bit integers as strings, unknown keys
//! ignored). The protobuf JSON mapping that OTLP/JSON builds on also lets a
//! client send the original snake_case field names, enum values by name and
//! `null` for a default; the Collector accepts all three. Without this pass a
//! snake_case request would decode as *empty* (every key unknown) and be
//! answered 200 with its data silently gone, so keys are rewritten first.

use opentelemetry_proto::tonic::logs::v1::SeverityNumber;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use serde_json::Value;

/// Rewrites, in place: snake_case keys to lowerCamelCase, enum names to
/// their numbers, and drops `null` members. Recursion depth is bounded by
/// serde_json's parse limit (128).
pub(super) fn normalize(value: &mut Value) {
    match value {
        Value::Array(items) => items.iter_mut().for_each(normalize),
        Value::Object(map) => {
            if map.iter().any(|(k, v)| k.contains('_') || v.is_null()) {
                let old = std::mem::take(map);
                for (key, v) in old {
                    if v.is_null() {
                        continue;
                    }
                    let key = if key.contains('_') { lower_camel(&key) } else { key };
                    map.insert(key, v);
                }
            }
            for (key, v) in map.iter_mut() {
                match v {
                    Value::String(name) => {
                        if let Some(n) = enum_number(key, name) {
                            *v = Value::from(n);
                        }
                    }
                    other => normalize(other),
                }
            }
        }
        _ => {}
    }
}

fn lower_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The number of an enum value sent by name, for the enum fields of the
/// trace, metrics and logs requests.
fn enum_number(key: &str, name: &str) -> Option<i32> {
    match key {
        "kind" => SpanKind::from_str_name(name).map(|e| e as i32),
        "code" => StatusCode::from_str_name(name).map(|e| e as i32),
        "aggregationTemporality" => AggregationTemporality::from_str_name(name).map(|e| e as i32),
        "severityNumber" => SeverityNumber::from_str_name(name).map(|e| e as i32),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn snake_keys_enum_names_and_nulls() {
        let mut v = json!({
            "resource_spans": [{
                "scope_spans": [{"spans": [{
                    "trace_id": "ab", "kind": "SPAN_KIND_CLIENT", "status": {"code": "STATUS_CODE_ERROR"},
                    "attributes": null,
                    "events": [{"name": "kind", "attributes": [{"key": "kind", "value": {"string_value": "SPAN_KIND_CLIENT"}}]}]
                }]}]
            }]
        });
        normalize(&mut v);
        assert_eq!(
            v,
            json!({
                "resourceSpans": [{
                    "scopeSpans": [{"spans": [{
                        "traceId": "ab", "kind": 3, "status": {"code": 2},
                        "events": [{"name": "kind", "attributes": [{"key": "kind", "value": {"stringValue": "SPAN_KIND_CLIENT"}}]}]
                    }]}]
                }]
            })
        );
    }

    #[test]
    fn metric_and_log_enums() {
        let mut v = json!({"aggregationTemporality": "AGGREGATION_TEMPORALITY_DELTA", "severityNumber": "SEVERITY_NUMBER_WARN",
                           "kind": "NOT_A_KIND"});
        normalize(&mut v);
        assert_eq!(v, json!({"aggregationTemporality": 1, "severityNumber": 13, "kind": "NOT_A_KIND"}));
    }

    #[test]
    fn camel_case() {
        assert_eq!(lower_camel("resource_spans"), "resourceSpans");
        assert_eq!(lower_camel("time_unix_nano"), "timeUnixNano");
        assert_eq!(lower_camel("_x__y_"), "xY");
    }
}

/// What a walk of an OTLP/JSON body finds before it is parsed: its items,
/// the bytes parsing it will hold, and how deep it nests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct JsonScan {
    pub estimate: crate::data::estimate::Estimate,
    /// Deepest nesting of arrays and objects together.
    pub depth: usize,
    /// Deepest nesting of objects alone: each object is one protobuf message.
    pub object_depth: usize,
}

/// The heap of serde_json's `Vec<Value>` for an array of `n` values: the
/// capacity `Vec` grows to by pushing (4, then doubling).
fn vec_heap(n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        n.max(4).next_power_of_two() * std::mem::size_of::<Value>() as u64
    }
}

/// The heap of serde_json's map (`IndexMap<String, Value>`) for an object
/// of `n` members: hashbrown's index table (buckets a power of two, at most
/// 7/8 full, 3 of 4 when small; a `usize` and a control byte each, plus a
/// group of 16 control bytes), and the entry vector, which indexmap grows
/// to the table's capacity (a hash, a key `String` and a `Value` each).
fn map_heap(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    let buckets = if n < 4 { 4 } else { (n * 8).div_ceil(7).next_power_of_two() };
    let capacity = if buckets == 4 { 3 } else { buckets / 8 * 7 };
    let entry = (8 + std::mem::size_of::<String>() + std::mem::size_of::<Value>()) as u64;
    buckets * 9 + 16 + capacity * entry
}

/// Keys whose array elements are the items the Collector counts.
const ITEM_KEYS: &[&[u8]] = &[b"spans", b"logRecords", b"log_records", b"dataPoints", b"data_points"];

/// Walks a JSON body once, allocating nothing but a stack bounded by
/// `max_depth` arrays and objects (the walk stops there: the body is
/// refused for nesting).
///
/// The estimate covers both forms a JSON request passes through, which are
/// alive together while the request is decoded:
/// - the `serde_json::Value` tree: the text of every key and string, and
///   each container's heap as serde_json grows it: an array's `Vec<Value>`
///   (capacity 4, doubling), an object's map (`preserve_order` is on, so an
///   `IndexMap`: a hash-index table of 4, 8, 16... buckets and an entry
///   vector as long as the table holds, each entry a hash, a key and a
///   `Value`);
/// - the prost structs built from it: an item's struct for each span,
///   record or point, a `KeyValue` for any other object, the strings again.
///
/// Measured against the heap decoding really takes (tests/hostile.rs,
/// `json_decoded_size_estimate_is_within_a_factor_of_the_real_cost`), it is
/// at least the peak and at most 1.5 times it (`JSON_ESTIMATE_FACTOR`
/// there) for requests shaped as SDKs send them: never below, because the admission it
/// feeds must not let a small body grow past the memory limit.
pub(super) fn scan(body: &[u8], max_depth: usize) -> JsonScan {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use std::mem::size_of;
    const SLOT: u64 = size_of::<Value>() as u64;
    let item = [
        size_of::<opentelemetry_proto::tonic::trace::v1::Span>(),
        size_of::<opentelemetry_proto::tonic::logs::v1::LogRecord>(),
        size_of::<opentelemetry_proto::tonic::metrics::v1::HistogramDataPoint>(),
        size_of::<opentelemetry_proto::tonic::metrics::v1::ExponentialHistogramDataPoint>(),
    ]
    .into_iter()
    .max()
    .unwrap_or(0) as u64;
    let object = size_of::<KeyValue>() as u64;

    let mut scan = JsonScan::default();
    // The top-level value's own slot.
    let (mut items, mut bytes) = (0usize, SLOT);
    // One entry per open container: (is an array, its elements are items,
    // its elements or members so far).
    let mut stack: Vec<(bool, bool, u64)> = Vec::new();
    let mut key_is_item = false;
    let mut objects = 0usize;
    // Counts a value (not a key) in the container it is in.
    let counted = |stack: &mut Vec<(bool, bool, u64)>| {
        if let Some(top) = stack.last_mut() {
            if top.0 {
                top.2 += 1;
            }
        }
    };
    let mut i = 0;
    while i < body.len() {
        match body[i] {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while j < body.len() && body[j] != b'"' {
                    j += if body[j] == b'\\' { 2 } else { 1 };
                }
                let text = &body[start..j.min(body.len())];
                i = j + 1;
                while i < body.len() && body[i].is_ascii_whitespace() {
                    i += 1;
                }
                if body.get(i) == Some(&b':') {
                    bytes += text.len() as u64;
                    key_is_item = ITEM_KEYS.contains(&text);
                    if let Some(top) = stack.last_mut() {
                        top.2 += 1;
                    }
                } else {
                    // Once in the tree, once in the struct built from it.
                    bytes += 2 * text.len() as u64;
                    counted(&mut stack);
                }
                continue;
            }
            b'{' | b'[' => {
                let array = body[i] == b'[';
                counted(&mut stack);
                if !array {
                    let in_items = stack.last().is_some_and(|&(a, items, _)| a && items);
                    if in_items {
                        items += 1;
                    }
                    bytes += if in_items { item } else { object };
                }
                stack.push((array, array && key_is_item, 0));
                key_is_item = false;
                scan.depth = scan.depth.max(stack.len());
                if !array {
                    objects += 1;
                    scan.object_depth = scan.object_depth.max(objects);
                }
                if stack.len() > max_depth {
                    break;
                }
            }
            b'}' | b']' => {
                if let Some((array, _, n)) = stack.pop() {
                    if array {
                        bytes += vec_heap(n);
                    } else {
                        bytes += map_heap(n);
                        objects -= 1;
                    }
                }
            }
            b',' | b':' => {}
            c if c.is_ascii_whitespace() => {}
            _ => {
                counted(&mut stack);
                while i < body.len() && !matches!(body[i], b',' | b']' | b'}' | b'"' | b'{' | b'[') {
                    i += 1;
                }
                continue;
            }
        }
        i += 1;
    }
    // Containers left open (a truncated body) as if closed there.
    for (array, _, n) in stack {
        bytes += if array { vec_heap(n) } else { map_heap(n) };
    }
    scan.estimate = crate::data::estimate::Estimate { items, decoded_bytes: bytes, encoded_bytes: 0 };
    scan
}
