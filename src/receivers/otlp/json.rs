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
