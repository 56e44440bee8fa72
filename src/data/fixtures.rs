//! Builders of OTLP data for tests, benchmarks and the load generator: one
//! place that knows how to write a span, a log record or a metric point, so
//! a test says only what matters to it and changes to the model are made once.
//!
//! Guarantees: every builder gives a valid item (IDs of the right length,
//! `end >= start`, a resource with `service.name`); fields a builder does not
//! take are their protobuf defaults, so a test changes them with struct
//! update syntax: `Span { kind: 2, ..span(1, 1, "GET /") }`.

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

/// A value an attribute can be built from: strings, integers, doubles,
/// bools, or an OTLP value as it is.
pub trait IntoAnyValue {
    fn into_any_value(self) -> Option<AnyValue>;
}

impl IntoAnyValue for &str {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::StringValue(self.to_string()).into_any_value()
    }
}

impl IntoAnyValue for String {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::StringValue(self).into_any_value()
    }
}

impl IntoAnyValue for &String {
    fn into_any_value(self) -> Option<AnyValue> {
        self.as_str().into_any_value()
    }
}

impl IntoAnyValue for i64 {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::IntValue(self).into_any_value()
    }
}

impl IntoAnyValue for i32 {
    fn into_any_value(self) -> Option<AnyValue> {
        i64::from(self).into_any_value()
    }
}

impl IntoAnyValue for f64 {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::DoubleValue(self).into_any_value()
    }
}

impl IntoAnyValue for bool {
    fn into_any_value(self) -> Option<AnyValue> {
        any_value::Value::BoolValue(self).into_any_value()
    }
}

impl IntoAnyValue for any_value::Value {
    fn into_any_value(self) -> Option<AnyValue> {
        Some(AnyValue { value: Some(self) })
    }
}

impl IntoAnyValue for AnyValue {
    fn into_any_value(self) -> Option<AnyValue> {
        Some(self)
    }
}

impl IntoAnyValue for Option<AnyValue> {
    fn into_any_value(self) -> Option<AnyValue> {
        self
    }
}

/// A seeded xorshift64 generator, for tests that try many cases and must
/// replay them exactly (not for anything that needs good randomness).
pub fn xorshift64(mut seed: u64) -> impl FnMut() -> u64 {
    move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    }
}

/// One attribute.
pub fn kv(key: &str, value: impl IntoAnyValue) -> KeyValue {
    KeyValue { key: key.to_string(), value: value.into_any_value(), ..Default::default() }
}

/// A resource with `service.name` and the given attributes after it.
pub fn resource(service: &str, attributes: Vec<KeyValue>) -> Resource {
    let mut all = vec![kv("service.name", service)];
    all.extend(attributes);
    Resource { attributes: all, ..Default::default() }
}

/// A 16-byte trace ID, big-endian.
pub fn trace_id(n: u128) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// An 8-byte span ID, big-endian.
pub fn span_id(n: u64) -> Vec<u8> {
    n.to_be_bytes().to_vec()
}

/// Nanoseconds every builder's times start from (2026-01-01T00:00:00Z), so
/// times in tests are recent but fixed.
pub const EPOCH_NANOS: u64 = 1_767_225_600_000_000_000;

/// A root span of trace `trace`, ID `span`, lasting 1 ms.
pub fn span(trace: u128, span: u64, name: &str) -> Span {
    Span {
        trace_id: trace_id(trace),
        span_id: span_id(span),
        name: name.to_string(),
        kind: 2, // SPAN_KIND_SERVER
        start_time_unix_nano: EPOCH_NANOS,
        end_time_unix_nano: EPOCH_NANOS + 1_000_000,
        ..Default::default()
    }
}

/// One export request of `spans` from `service`.
pub fn traces(service: &str, spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource(service, Vec::new())),
            scope_spans: vec![ScopeSpans { scope: Some(scope()), spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope { name: "sluice-fixtures".to_string(), ..Default::default() }
}

/// A log record with a string body, observed at [`EPOCH_NANOS`].
pub fn log_record(body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: EPOCH_NANOS,
        observed_time_unix_nano: EPOCH_NANOS,
        body: body.into_any_value(),
        ..Default::default()
    }
}

/// One export request of `records` from `service`.
pub fn logs(service: &str, records: Vec<LogRecord>) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource(service, Vec::new())),
            scope_logs: vec![ScopeLogs { scope: Some(scope()), log_records: records, ..Default::default() }],
            ..Default::default()
        }],
    }
}

/// A double data point with attributes, at [`EPOCH_NANOS`].
pub fn point(value: f64, attributes: Vec<KeyValue>) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: EPOCH_NANOS,
        time_unix_nano: EPOCH_NANOS + 1_000_000_000,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

/// A gauge.
pub fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Gauge(Gauge { data_points: points })),
        ..Default::default()
    }
}

/// A monotonic cumulative sum (a counter).
pub fn counter(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.to_string(),
        data: Some(metric::Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

/// One export request of `metrics` from `service`.
pub fn metrics(service: &str, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(resource(service, Vec::new())),
            scope_metrics: vec![ScopeMetrics { scope: Some(scope()), metrics, ..Default::default() }],
            ..Default::default()
        }],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_give_valid_items_with_what_was_asked() {
        let req = traces("checkout", vec![Span { status: None, ..span(7, 3, "GET /cart") }]);
        let rs = &req.resource_spans[0];
        assert_eq!(rs.resource.as_ref().unwrap().attributes[0], kv("service.name", "checkout"));
        let s = &rs.scope_spans[0].spans[0];
        assert_eq!((s.trace_id.len(), s.span_id.len()), (16, 8));
        assert_eq!(s.trace_id[15], 7);
        assert!(s.end_time_unix_nano > s.start_time_unix_nano);
        let wire = prost::Message::encode_to_vec(&req);
        assert_eq!(crate::data::check::check_request(crate::data::Signal::Traces, &wire), Ok(1));

        let req = logs("api", vec![log_record("hello")]);
        assert_eq!(req.resource_logs[0].scope_logs[0].log_records[0].body, "hello".into_any_value());

        let req = metrics("api", vec![counter("requests", vec![point(2.0, vec![kv("code", 200)])])]);
        let m = &req.resource_metrics[0].scope_metrics[0].metrics[0];
        assert!(matches!(&m.data, Some(metric::Data::Sum(s)) if s.is_monotonic && s.data_points.len() == 1));
    }

    #[test]
    fn kv_takes_every_kind_of_value() {
        assert_eq!(kv("a", 5).value, Some(AnyValue { value: Some(any_value::Value::IntValue(5)) }));
        assert_eq!(kv("a", 1.5).value, Some(AnyValue { value: Some(any_value::Value::DoubleValue(1.5)) }));
        assert_eq!(kv("a", true).value, Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }));
        assert_eq!(kv("a", None::<AnyValue>).value, None);
    }
}
