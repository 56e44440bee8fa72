//! The metric request the cardinality limiter's bench and memory test share.

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

fn s(key: &str, v: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }),
        ..Default::default()
    }
}

/// `n` points of one counter, one series per user from `first`, with the
/// three attributes of a typical HTTP server metric.
pub fn user_counter(temporality: AggregationTemporality, first: usize, n: usize) -> ExportMetricsServiceRequest {
    let points = (first..first + n)
        .map(|i| NumberDataPoint {
            attributes: vec![
                s("http.route", format!("/api/{}", i % 20)),
                s("http.method", "GET".into()),
                s("user_id", format!("user-{i}")),
            ],
            start_time_unix_nano: 1,
            time_unix_nano: 2,
            value: Some(number_data_point::Value::AsInt(i as i64)),
            ..Default::default()
        })
        .collect();
    let sum = Sum { data_points: points, aggregation_temporality: temporality as i32, is_monotonic: true };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![s("service.name", "shop".into())], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: "http.server.requests".into(),
                    data: Some(metric::Data::Sum(sum)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
