use super::config::DeltaToCumulativeConfig;
use super::*;
use crate::config::Duration as CfgDuration;
use crate::telemetry::metrics::Registry;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use crate::data::fixtures::kv;
use crate::exporters::test_server::{Answer, Seen};

async fn serve(answers: Vec<Answer>) -> (SocketAddr, Arc<Mutex<Vec<Seen>>>) {
    crate::exporters::test_server::serve(answers, 204).await
}

/// The remote write request a backend got: snappy-decoded, then protobuf.
fn request(s: &Seen) -> WriteRequest {
    let raw = snap::raw::Decoder::new().decompress_vec(&s.body).expect("snappy block format");
    WriteRequest::decode(raw.as_slice()).expect("prometheus.WriteRequest")
}

fn config(endpoint: String) -> PrometheusRemoteWriteConfig {
    serde_json::from_value(serde_json::json!({"endpoint": endpoint, "timeout": "5s"})).unwrap()
}

fn exporter(cfg: &PrometheusRemoteWriteConfig) -> (PrometheusRemoteWriteExporter, Registry) {
    let reg = Registry::new();
    let m = PrometheusExporterMetrics::new(&reg, "prometheusremotewrite");
    (PrometheusRemoteWriteExporter::new(cfg, "prometheusremotewrite", m).unwrap(), reg)
}

const T0: u64 = 1_700_000_000_000_000_000;

fn number(route: &str, t: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("http.route", route)],
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn batch(metrics: Vec<Metric>) -> Batch {
    Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api"), kv("service.instance.id", "i-1"), kv("host.name", "h")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            schema_url: String::new(),
        }],
    })
}

fn counter(temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: "http.requests".into(),
        unit: "{request}".into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn label<'a>(ts: &'a TimeSeries, name: &str) -> Option<&'a str> {
    ts.labels.iter().find(|l| l.name == name).map(|l| l.value.as_str())
}

#[tokio::test]
async fn sends_snappy_protobuf_with_remote_write_headers() {
    let (addr, seen) = serve(vec![]).await;
    let mut cfg = config(format!("http://{addr}/api/v1/write"));
    cfg.external_labels = BTreeMap::from([("cluster".into(), "eu".into())]);
    let (exp, _reg) = exporter(&cfg);
    let b = batch(vec![counter(
        AggregationTemporality::Cumulative,
        vec![number("/b", T0 + 1_000_000_000, 4.0), number("/a", T0, 1.0), number("/a", T0 + 2_000_000_000, 3.0)],
    )]);
    assert_eq!(exp.export(&b).await.unwrap(), ExportOutcome::default());

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    let s = &seen[0];
    assert_eq!(s.path, "/api/v1/write");
    assert_eq!(s.headers["content-encoding"], "snappy");
    assert_eq!(s.headers["content-type"], "application/x-protobuf");
    assert_eq!(s.headers["x-prometheus-remote-write-version"], "0.1.0");
    assert!(s.headers["user-agent"].to_str().unwrap().starts_with("sluice/"));
    let series = &request(s).timeseries;
    assert_eq!(series.len(), 3, "two routes and target_info: {series:?}");
    for ts in series {
        assert!(ts.labels.windows(2).all(|w| w[0].name < w[1].name), "labels sorted: {:?}", ts.labels);
        assert!(ts.samples.windows(2).all(|w| w[0].timestamp < w[1].timestamp), "samples in order: {:?}", ts.samples);
        assert_eq!(label(ts, "cluster"), Some("eu"));
    }
    let a = series.iter().find(|t| label(t, "http_route") == Some("/a")).unwrap();
    assert_eq!(label(a, "__name__"), Some("http_requests_total"));
    assert_eq!(label(a, "job"), Some("api"));
    assert_eq!(label(a, "instance"), Some("i-1"));
    let samples: Vec<(i64, f64)> = a.samples.iter().map(|s| (s.timestamp, s.value)).collect();
    assert_eq!(samples, vec![(1_700_000_000_000, 1.0), (1_700_000_002_000, 3.0)]);
    let info = series.iter().find(|t| label(t, "__name__") == Some("target_info")).unwrap();
    assert_eq!(label(info, "host_name"), Some("h"));
    assert!(request(s).metadata.is_empty(), "metadata only with send_metadata");
}

#[tokio::test]
async fn send_metadata_describes_each_family_once() {
    let (addr, seen) = serve(vec![]).await;
    let mut cfg = config(format!("http://{addr}/api/v1/write"));
    cfg.send_metadata = true;
    let (exp, _reg) = exporter(&cfg);
    let latency = Metric {
        name: "http.server.duration".into(),
        unit: "ms".into(),
        description: "Time to answer".into(),
        data: Some(Data::Gauge(Gauge { data_points: vec![number("/a", T0, 12.0), number("/b", T0, 7.0)] })),
        ..Default::default()
    };
    let mut requests = counter(AggregationTemporality::Cumulative, vec![number("/a", T0, 1.0), number("/b", T0, 2.0)]);
    requests.description = "Requests served".into();
    assert_eq!(exp.export(&batch(vec![requests, latency])).await.unwrap(), ExportOutcome::default());
    let seen = seen.lock().unwrap();
    let mut metadata: Vec<(i32, String, String, String)> =
        request(&seen[0]).metadata.into_iter().map(|m| (m.r#type, m.metric_family_name, m.help, m.unit)).collect();
    metadata.sort();
    assert_eq!(
        metadata,
        vec![
            (1, "http_requests_total".into(), "Requests served".into(), String::new()),
            (2, "http_server_duration_milliseconds".into(), "Time to answer".into(), "milliseconds".into()),
            (2, "target_info".into(), "Target metadata".into(), String::new()),
        ]
    );
}

#[tokio::test]
async fn recording_rule_names_keep_their_colons() {
    // What the slo connector emits: gauges named as Sloth's recording rules.
    let (addr, seen) = serve(vec![]).await;
    let (exp, _reg) = exporter(&config(format!("http://{addr}/api/v1/write")));
    let gauge = |name: &str| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge { data_points: vec![number("/a", T0, 0.1)] })),
        ..Default::default()
    };
    let names = ["slo:sli_error:ratio_rate5m", "slo:period_error_budget_remaining:ratio", "sloth_slo_info"];
    exp.export(&batch(names.iter().map(|n| gauge(n)).collect())).await.unwrap();
    let seen = seen.lock().unwrap();
    let mut sent: Vec<String> =
        request(&seen[0]).timeseries.iter().filter_map(|t| label(t, "__name__").map(str::to_string)).collect();
    sent.sort();
    assert_eq!(
        sent,
        vec!["slo:period_error_budget_remaining:ratio", "slo:sli_error:ratio_rate5m", "sloth_slo_info", "target_info"]
    );
}

#[tokio::test]
async fn large_requests_are_split() {
    let (addr, seen) = serve(vec![]).await;
    let mut cfg = config(format!("http://{addr}/api/v1/write"));
    cfg.max_batch_size_bytes = 300;
    let (exp, _reg) = exporter(&cfg);
    let points = (0..20).map(|i| number(&format!("/route/{i}"), T0, i as f64)).collect();
    let b = batch(vec![counter(AggregationTemporality::Cumulative, points)]);
    exp.export(&b).await.unwrap();
    let seen = seen.lock().unwrap();
    assert!(seen.len() > 1, "{} requests", seen.len());
    let total: usize = seen.iter().map(|s| request(s).timeseries.len()).sum();
    assert_eq!(total, 21, "20 series and target_info, each sent once");
    for s in seen.iter() {
        assert!(request(s).encoded_len() <= 300, "{}", request(s).encoded_len());
    }
}

#[test]
fn build_requests_puts_an_oversized_series_alone() {
    let t = Translator::new(TranslateOptions { add_metric_suffixes: true, ..Default::default() });
    let Batch::Metrics(req) = batch(vec![counter(
        AggregationTemporality::Cumulative,
        vec![number(&"x".repeat(500), T0, 1.0), number("/a", T0, 1.0)],
    )]) else {
        unreachable!()
    };
    let (set, _) = t.translate(&req, std::time::Instant::now());
    let reqs = build_requests(set, 100, false);
    assert_eq!(reqs.len(), 2);
    assert!(reqs.iter().all(|r| r.timeseries.len() == 1));
}

#[test]
fn status_classification() {
    let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
    let h = HeaderMap::new();
    assert!(classify(StatusCode::NO_CONTENT, &h, b"", now).is_ok());
    assert!(classify(StatusCode::OK, &h, b"", now).is_ok());
    let body = b"out of bounds\n";
    match classify(StatusCode::BAD_REQUEST, &h, body, now) {
        Err(ExportError::Permanent { message }) => {
            assert!(message.contains("400") && message.contains("out of bounds"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    let mut h429 = HeaderMap::new();
    h429.insert(http::header::RETRY_AFTER, HeaderValue::from_static("7"));
    assert_eq!(
        classify(StatusCode::TOO_MANY_REQUESTS, &h429, b"slow down", now),
        Err(ExportError::Retryable {
            message: "HTTP 429 Too Many Requests: slow down".into(),
            retry_after: Some(Duration::from_secs(7))
        })
    );
    for code in [500u16, 502, 503, 504] {
        let r = classify(StatusCode::from_u16(code).unwrap(), &h, b"", now);
        assert!(matches!(r, Err(ExportError::Retryable { .. })), "{code}: {r:?}");
    }
    assert!(matches!(classify(StatusCode::NOT_FOUND, &h, b"", now), Err(ExportError::Permanent { .. })));
}

#[tokio::test]
async fn a_400_is_permanent_and_counted() {
    let (addr, _seen) = serve(vec![(400, vec![], b"out of order sample".to_vec())]).await;
    let (exp, reg) = exporter(&config(format!("http://{addr}/api/v1/write")));
    let b = batch(vec![counter(AggregationTemporality::Cumulative, vec![number("/a", T0, 1.0)])]);
    match exp.export(&b).await {
        Err(ExportError::Permanent { message }) => assert!(message.contains("out of order sample"), "{message}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        reg.value("sluice_exporter_prometheus_rejected_requests_total", &[("exporter", "prometheusremotewrite")]),
        Some(1.0)
    );
    // The next batch goes through.
    assert!(exp.export(&b).await.is_ok());
}

#[tokio::test]
async fn a_503_is_retryable_with_retry_after() {
    let (addr, _seen) = serve(vec![(503, vec![("retry-after", "3".into())], b"busy".to_vec())]).await;
    let (exp, _reg) = exporter(&config(format!("http://{addr}/api/v1/write")));
    let b = batch(vec![counter(AggregationTemporality::Cumulative, vec![number("/a", T0, 1.0)])]);
    match exp.export(&b).await {
        Err(ExportError::Retryable { retry_after, .. }) => assert_eq!(retry_after, Some(Duration::from_secs(3))),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn delta_points_are_rejected_and_counted_unless_converted() {
    let (addr, seen) = serve(vec![]).await;
    let cfg = config(format!("http://{addr}/api/v1/write"));
    let (exp, reg) = exporter(&cfg);
    let b = batch(vec![
        counter(AggregationTemporality::Delta, vec![number("/a", T0, 1.0)]),
        Metric {
            name: "g".into(),
            data: Some(Data::Gauge(Gauge { data_points: vec![number("/a", T0, 2.0)] })),
            ..Default::default()
        },
    ]);
    let out = exp.export(&b).await.unwrap();
    assert_eq!(out.rejected, 1);
    assert!(out.message.unwrap().contains("delta temporality (delta_to_cumulative.enabled: true converts them) 1"));
    let labels = [("exporter", "prometheusremotewrite"), ("reason", "delta_temporality")];
    assert_eq!(reg.value("sluice_exporter_prometheus_dropped_points_total", &labels), Some(1.0));
    assert!(!request(&seen.lock().unwrap()[0])
        .timeseries
        .iter()
        .any(|t| label(t, "__name__") == Some("http_requests_total")));

    // A batch of nothing but delta points is a permanent failure, not an empty send.
    let only_delta = batch(vec![counter(AggregationTemporality::Delta, vec![number("/a", T0, 1.0)])]);
    assert!(matches!(exp.export(&only_delta).await, Err(ExportError::Permanent { .. })));

    let mut cfg = cfg;
    cfg.delta_to_cumulative = DeltaToCumulativeConfig { enabled: true, ..Default::default() };
    let (exp, _reg) = exporter(&cfg);
    for (i, v) in [(0u64, 1.0), (1, 2.0)] {
        let b = batch(vec![counter(AggregationTemporality::Delta, vec![number("/a", T0 + i * 1_000_000_000, v)])]);
        assert_eq!(exp.export(&b).await.unwrap(), ExportOutcome::default());
    }
    let seen = seen.lock().unwrap();
    let last = request(seen.last().unwrap());
    let c = last.timeseries.iter().find(|t| label(t, "__name__") == Some("http_requests_total")).unwrap();
    assert_eq!(c.samples[0].value, 3.0);
}

#[test]
fn config_defaults_and_collector_fields() {
    let cfg: PrometheusRemoteWriteConfig = serde_json::from_value(serde_json::json!({
        "endpoint": "http://p:9090/api/v1/write",
        "resource_to_telemetry_conversion": {"enabled": true},
        "remote_write_queue": {"queue_size": 7, "num_consumers": 2},
    }))
    .unwrap();
    assert_eq!(cfg.timeout, CfgDuration::from_secs(5));
    assert_eq!(cfg.max_batch_size_bytes, 3_000_000);
    assert!(cfg.add_metric_suffixes);
    assert!(cfg.target_info.on());
    assert!(cfg.resource_to_telemetry_conversion.on());
    assert!(!cfg.delta_to_cumulative.enabled);
    let q = cfg.queue();
    assert_eq!((q.enabled, q.queue_size, q.num_consumers), (true, 7, 2));
    let bad = serde_json::json!({"endpoint": "x", "bogus": 1});
    assert!(serde_json::from_value::<PrometheusRemoteWriteConfig>(bad).is_err());
}

#[tokio::test]
async fn a_point_over_the_limits_is_dropped_counted_and_never_sent() {
    use opentelemetry_proto::tonic::metrics::v1::{Histogram, HistogramDataPoint};
    let (addr, seen) = serve(vec![]).await;
    let (exp, reg) = exporter(&config(format!("http://{addr}/api/v1/write")));
    let huge = Metric {
        name: "huge".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0,
                count: 1,
                explicit_bounds: (0..200_000).map(f64::from).collect(),
                bucket_counts: vec![0; 200_001],
                attributes: (0..30).map(|i| kv(&format!("a{i}"), "v")).collect(),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    let long = counter(AggregationTemporality::Cumulative, vec![number(&"x".repeat(5000), T0, 1.0)]);
    let ok = counter(AggregationTemporality::Cumulative, vec![number("/a", T0, 1.0)]);
    let out = exp.export(&batch(vec![huge, long, ok])).await.unwrap();
    assert_eq!(out.rejected, 2);
    let msg = out.message.unwrap();
    assert!(msg.contains("max_histogram_buckets") && msg.contains("max_label_value_length"), "{msg}");
    let reason = |r| {
        reg.value(
            "sluice_exporter_prometheus_dropped_points_total",
            &[("exporter", "prometheusremotewrite"), ("reason", r)],
        )
    };
    assert_eq!(reason("too_many_buckets"), Some(1.0));
    assert_eq!(reason("label_value_too_long"), Some(1.0));
    let sent = request(&seen.lock().unwrap()[0]);
    assert_eq!(sent.timeseries.len(), 2, "the good counter and target_info");
    assert!(sent.timeseries.iter().all(|t| label(t, "__name__") != Some("huge_bucket")));
}

#[test]
fn limits_and_queue_bounds_are_validated_at_their_paths() {
    let yaml = |body: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  prometheusremotewrite:\n    \
             endpoint: http://p:9090/api/v1/write\n{body}service:\n  pipelines:\n    metrics:\n      \
             receivers: [otlp]\n      exporters: [prometheusremotewrite]\n"
        )
    };
    assert!(crate::service::load(&yaml("    limits: {max_histogram_buckets: 64}\n"), &|_| None).is_ok());
    for (body, path, needle) in [
        (
            "    limits: {max_labels_per_series: 0}\n",
            "exporters::prometheusremotewrite::limits::max_labels_per_series",
            "the default is 128",
        ),
        (
            "    remote_write_queue: {queue_size: 1000000000}\n",
            "exporters::prometheusremotewrite::remote_write_queue::queue_size",
            "bound of 1000000",
        ),
    ] {
        let errs = crate::service::load(&yaml(body), &|_| None).unwrap_err();
        assert_eq!(errs.0.len(), 1, "one error, at the field written: {errs}");
        let e = &errs.0[0];
        assert_eq!(e.path, path, "{errs}");
        assert!(e.to_string().contains(needle), "{e}");
    }
}
