//! The trace request the hot-path bench and the load generator share.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue { key: key.to_string(), value: Some(AnyValue { value: Some(value) }), ..Default::default() }
}

/// A request shaped like a busy service's: one resource, one scope, `n` spans
/// with 10 attributes of mixed types.
pub fn trace_request(n: usize) -> ExportTraceServiceRequest {
    let spans = (0..n)
        .map(|i| {
            let mut trace_id = [0u8; 16];
            trace_id[..8].copy_from_slice(&(i as u64 / 10).to_be_bytes());
            trace_id[8..].copy_from_slice(&0x5eed_u64.to_be_bytes());
            Span {
                trace_id: trace_id.to_vec(),
                span_id: (i as u64 + 1).to_be_bytes().to_vec(),
                parent_span_id: if i % 10 == 0 { vec![] } else { (i as u64).to_be_bytes().to_vec() },
                name: format!("GET /api/v1/items/{}", i % 50),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1000,
                end_time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1000 + 250_000,
                attributes: vec![
                    kv("http.request.method", any_value::Value::StringValue("GET".into())),
                    kv("http.route", any_value::Value::StringValue(format!("/api/v1/items/{}", i % 50))),
                    kv("http.response.status_code", any_value::Value::IntValue(200)),
                    kv("url.scheme", any_value::Value::StringValue("https".into())),
                    kv("server.address", any_value::Value::StringValue("items.internal".into())),
                    kv("server.port", any_value::Value::IntValue(8443)),
                    kv("user_agent.original", any_value::Value::StringValue("Mozilla/5.0 (X11; Linux x86_64)".into())),
                    kv("net.peer.ip", any_value::Value::StringValue("10.1.2.3".into())),
                    kv("retry", any_value::Value::BoolValue(false)),
                    kv("payload.ratio", any_value::Value::DoubleValue(0.75)),
                ],
                status: Some(Status::default()),
                ..Default::default()
            }
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", any_value::Value::StringValue("items".into())),
                    kv("k8s.pod.name", any_value::Value::StringValue("items-7d9f-abcde".into())),
                ],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry.instrumentation.flask".into(),
                    version: "0.48b0".into(),
                    ..Default::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}
