//! What each exporter spends turning one batch into a request body, in
//! items/s: OTLP protobuf (the `otlp` exporter's gRPC payload and
//! `otlphttp`'s default) plain and gzip, OTLP JSON, Loki push (labels,
//! streams, protobuf + snappy, or JSON), and Prometheus remote write
//! (translation to series, protobuf + snappy), and the `prometheus` scrape
//! page (translation into its store, then the text page). No network.
//! Run with `cargo bench --bench exporters_encode`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use sluice::data::{Batch, Signal};
use sluice::exporters::loki::config::LokiExporterConfig;
use sluice::exporters::loki::LokiExporter;
use sluice::exporters::otlphttp::config::OtlpHttpExporterConfig;
use sluice::exporters::otlphttp::OtlpHttpExporter;
use sluice::exporters::prometheus::MetricStore;
use sluice::exporters::prometheus_common::Translator;
use sluice::exporters::prometheusremotewrite::config::PrometheusRemoteWriteConfig;
use sluice::exporters::prometheusremotewrite::{build_requests, encode, translate_options};
use sluice::telemetry::{LokiExporterMetrics, Registry};
use std::hint::black_box;
use std::time::Instant;

#[path = "support/trace_data.rs"]
mod trace_data;

const ITEMS: usize = 1000;

fn s(key: &str, v: impl Into<String>) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v.into())) }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            s("service.name", service),
            s("service.namespace", "shop"),
            s("k8s.namespace.name", "prod"),
            s("k8s.pod.name", format!("{service}-7d9f8-abcde")),
            s("host.name", "node-17"),
        ],
        ..Default::default()
    })
}

/// 1000 log records from 4 services, 4 severities, 3 attributes each.
fn logs() -> ExportLogsServiceRequest {
    let severities = [(9, "INFO"), (13, "WARN"), (17, "ERROR"), (5, "DEBUG")];
    ExportLogsServiceRequest {
        resource_logs: (0..4)
            .map(|svc| ResourceLogs {
                resource: resource(&format!("svc-{svc}")),
                scope_logs: vec![ScopeLogs {
                    log_records: (0..ITEMS / 4)
                        .map(|i| {
                            let (n, t) = severities[i % 4];
                            LogRecord {
                                time_unix_nano: 1_700_000_000_000_000_000 + i as u64 * 1_000_000,
                                severity_number: n,
                                severity_text: t.into(),
                                body: Some(AnyValue {
                                    value: Some(any_value::Value::StringValue(format!(
                                        "request {i} for /api/v1/items/{} took {} ms",
                                        i % 50,
                                        i % 300
                                    ))),
                                }),
                                attributes: vec![
                                    s("http.route", format!("/api/v1/items/{}", i % 50)),
                                    s("user.id", format!("user-{i}")),
                                    s("thread.name", "worker-3"),
                                ],
                                trace_id: vec![7; 16],
                                span_id: vec![3; 8],
                                ..Default::default()
                            }
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// 1000 data points: 500 counter series and 500 histogram series (10 buckets).
fn metrics() -> ExportMetricsServiceRequest {
    let attrs = |i: usize| vec![s("http.route", format!("/api/v1/items/{}", i % 50)), s("pod", format!("p{}", i / 50))];
    let counter = Metric {
        name: "http.server.requests".into(),
        unit: "{request}".into(),
        data: Some(metric::Data::Sum(Sum {
            data_points: (0..ITEMS / 2)
                .map(|i| NumberDataPoint {
                    attributes: attrs(i),
                    start_time_unix_nano: 1_700_000_000_000_000_000,
                    time_unix_nano: 1_700_000_060_000_000_000,
                    value: Some(number_data_point::Value::AsInt(i as i64 * 7)),
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let histogram = Metric {
        name: "http.server.request.duration".into(),
        unit: "s".into(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: (0..ITEMS / 2)
                .map(|i| HistogramDataPoint {
                    attributes: attrs(i),
                    start_time_unix_nano: 1_700_000_000_000_000_000,
                    time_unix_nano: 1_700_000_060_000_000_000,
                    count: 100,
                    sum: Some(12.5),
                    bucket_counts: vec![10; 10],
                    explicit_bounds: vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5],
                    ..Default::default()
                })
                .collect(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("checkout"),
            scope_metrics: vec![ScopeMetrics { metrics: vec![counter, histogram], ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn otlphttp(compression: &str, encoding: &str) -> OtlpHttpExporter {
    let cfg: OtlpHttpExporterConfig = serde_json::from_value(serde_json::json!({
        "endpoint": "http://127.0.0.1:4318", "compression": compression, "encoding": encoding
    }))
    .expect("otlphttp config");
    OtlpHttpExporter::new(&cfg, Signal::Traces, "otlphttp").expect("otlphttp")
}

fn bench_encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("exporter_encode_1000_items");
    group.throughput(Throughput::Elements(ITEMS as u64));

    let traces = Batch::Traces(trace_data::trace_request(ITEMS));
    for (name, compression, encoding) in [
        ("otlp_proto_spans", "none", "proto"),
        ("otlp_proto_gzip_spans", "gzip", "proto"),
        ("otlp_json_spans", "none", "json"),
    ] {
        let e = otlphttp(compression, encoding);
        group.bench_function(name, |b| b.iter(|| black_box(e.body(&traces).expect("body"))));
    }

    let registry = Registry::new();
    let log_req = logs();
    for (name, encoding) in [("loki_protobuf_snappy_records", "protobuf"), ("loki_json_records", "json")] {
        let cfg: LokiExporterConfig = serde_json::from_value(serde_json::json!({
            "endpoint": "http://127.0.0.1:3100", "encoding": encoding
        }))
        .expect("loki config");
        let e = LokiExporter::new(&cfg, "loki", LokiExporterMetrics::new(&registry, "loki")).expect("loki");
        group.bench_function(name, |b| b.iter(|| black_box(e.body(&log_req).expect("body"))));
    }

    let metric_req = metrics();
    let cfg: PrometheusRemoteWriteConfig =
        serde_json::from_value(serde_json::json!({"endpoint": "http://127.0.0.1:9090/api/v1/write"}))
            .expect("prometheusremotewrite config");
    let translator = Translator::new(translate_options(&cfg));
    group.bench_function("prometheusremotewrite_points", |b| {
        b.iter(|| {
            let (set, _) = translator.translate(&metric_req, Instant::now());
            for req in build_requests(set, cfg.max_batch_size_bytes, false) {
                black_box(encode(&req).expect("snappy"));
            }
        })
    });
    // The scrape exporter: translate a batch into its store, then render the page.
    let mut store = MetricStore::new(std::time::Duration::from_secs(300), false);
    group.bench_function("prometheus_scrape_points", |b| {
        b.iter(|| {
            let now = Instant::now();
            let (set, _) = translator.translate(&metric_req, now);
            store.update(set, now);
            black_box(store.render(now));
        })
    });
    group.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
