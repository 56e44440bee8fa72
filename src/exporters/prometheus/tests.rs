use super::*;
use crate::data::fixtures::kv;
use crate::telemetry::metrics::Registry;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint, Metric,
    NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

const T0: u64 = 1_700_000_000_000_000_000;

fn number(route: &str, t: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: vec![kv("route", route)],
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![kv("service.name", "api"), kv("host.name", "h")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            schema_url: String::new(),
        }],
    }
}

fn counter(temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: "http.requests".into(),
        description: "Requests \\ handled.\nSecond line".into(),
        unit: "{request}".into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    }
}

fn histogram() -> Metric {
    Metric {
        name: "latency".into(),
        unit: "s".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0,
                count: 3,
                sum: Some(1.5),
                explicit_bounds: vec![0.5, 1.0],
                bucket_counts: vec![1, 1, 1],
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    }
}

fn config(extra: serde_json::Value) -> PrometheusExporterConfig {
    let mut v = serde_json::json!({"endpoint": "127.0.0.1:0"});
    v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    serde_json::from_value(v).unwrap()
}

fn page(exp: &PrometheusExporter) -> String {
    exp.store.lock().unwrap().render(Instant::now())
}

fn exporter(cfg: &PrometheusExporterConfig) -> (PrometheusExporter, Registry) {
    let reg = Registry::new();
    let m = PrometheusExporterMetrics::new(&reg, "prometheus");
    (PrometheusExporter::new(cfg, "prometheus", m).unwrap(), reg)
}

#[tokio::test]
async fn renders_families_with_help_type_and_escaped_labels() {
    let (exp, _reg) = exporter(&config(serde_json::json!({"const_labels": {"cluster": "eu"}})));
    let req =
        request(vec![counter(AggregationTemporality::Cumulative, vec![number("/a\"b\\c", T0, 7.0)]), histogram()]);
    exp.export(&Batch::Metrics(req)).await.unwrap();
    let text = page(&exp);
    let want = [
        "# HELP http_requests_total Requests \\\\ handled.\\nSecond line",
        "# TYPE http_requests_total counter",
        "http_requests_total{cluster=\"eu\",job=\"api\",route=\"/a\\\"b\\\\c\"} 7",
        "# TYPE latency_seconds histogram",
        "latency_seconds_bucket{cluster=\"eu\",job=\"api\",le=\"0.5\"} 1",
        "latency_seconds_bucket{cluster=\"eu\",job=\"api\",le=\"1\"} 2",
        "latency_seconds_bucket{cluster=\"eu\",job=\"api\",le=\"+Inf\"} 3",
        "latency_seconds_sum{cluster=\"eu\",job=\"api\"} 1.5",
        "latency_seconds_count{cluster=\"eu\",job=\"api\"} 3",
        "# TYPE target_info gauge",
        "target_info{cluster=\"eu\",host_name=\"h\",job=\"api\"} 1",
    ];
    for line in want {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in:\n{text}");
    }
    // One HELP and TYPE per family, before its samples.
    assert_eq!(text.matches("# TYPE latency_seconds ").count(), 1, "{text}");
    assert!(
        !text.contains("latency_seconds_bucket{")
            || text.find("# TYPE latency_seconds").unwrap() < text.find("latency_seconds_bucket{").unwrap()
    );
}

#[tokio::test]
async fn latest_value_wins_stale_removes_and_old_series_expire() {
    let (exp, _reg) = exporter(&config(serde_json::json!({"metric_expiration": "1m", "send_timestamps": true})));
    let send = |points| Batch::Metrics(request(vec![counter(AggregationTemporality::Cumulative, points)]));
    exp.export(&send(vec![number("/a", T0 + 2_000_000_000, 5.0)])).await.unwrap();
    exp.export(&send(vec![number("/a", T0, 1.0)])).await.unwrap();
    assert!(page(&exp).contains("http_requests_total{job=\"api\",route=\"/a\"} 5 1700000002000"), "{}", page(&exp));
    let mut stale = number("/a", T0 + 3_000_000_000, 0.0);
    stale.flags = 1;
    exp.export(&send(vec![stale])).await.unwrap();
    assert!(!page(&exp).contains("route=\"/a\""), "{}", page(&exp));

    exp.export(&send(vec![number("/b", T0, 1.0)])).await.unwrap();
    let mut store = exp.store.lock().unwrap();
    assert!(store.render(Instant::now()).contains("route=\"/b\""));
    assert!(store.render(Instant::now() + Duration::from_secs(61)).is_empty());
    assert!(store.is_empty());
}

#[tokio::test]
async fn delta_sums_are_accumulated() {
    let (exp, _reg) = exporter(&config(serde_json::json!({})));
    for (i, v) in [(0u64, 2.0), (1, 3.0)] {
        let req = request(vec![counter(AggregationTemporality::Delta, vec![number("/a", T0 + i * 1_000_000_000, v)])]);
        assert_eq!(exp.export(&Batch::Metrics(req)).await.unwrap(), ExportOutcome::default());
    }
    assert!(page(&exp).contains("http_requests_total{job=\"api\",route=\"/a\"} 5\n"), "{}", page(&exp));
}

#[tokio::test]
async fn serves_the_page_over_http() {
    let (exp, _reg) = exporter(&config(serde_json::json!({})));
    let g = Metric {
        name: "temp".into(),
        unit: "Cel".into(),
        data: Some(Data::Gauge(Gauge { data_points: vec![number("/a", T0, 21.5)] })),
        ..Default::default()
    };
    exp.export(&Batch::Metrics(request(vec![g]))).await.unwrap();
    let addr = exp.local_addr();
    let body = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        write!(s, "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    })
    .await
    .unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
    assert!(body.to_ascii_lowercase().contains("content-type: text/plain; version=0.0.4"), "{body}");
    assert!(body.contains("temp_celsius{job=\"api\",route=\"/a\"} 21.5"), "{body}");
    exp.shutdown().await;
}

#[test]
fn a_busy_port_is_a_start_error() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let _g = rt.enter();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = config(serde_json::json!({"endpoint": taken.local_addr().unwrap().to_string()}));
    let reg = Registry::new();
    let err =
        PrometheusExporter::new(&cfg, "prometheus", PrometheusExporterMetrics::new(&reg, "prometheus")).err().unwrap();
    assert!(err.contains("cannot listen"), "{err}");
}

fn wide_histogram(bounds: usize, attrs: usize) -> Metric {
    Metric {
        name: "huge".into(),
        unit: "s".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![HistogramDataPoint {
                time_unix_nano: T0,
                count: 1,
                sum: Some(1.0),
                explicit_bounds: (0..bounds).map(|i| i as f64).collect(),
                bucket_counts: vec![0; bounds + 1],
                attributes: (0..attrs).map(|i| kv(&format!("attr_{i}"), format!("value-{i}"))).collect(),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    }
}

fn dropped(reg: &Registry, reason: &str) -> Option<f64> {
    reg.value("sluice_exporter_prometheus_dropped_points_total", &[("exporter", "prometheus"), ("reason", reason)])
}

/// Issue 16: one 3.2 MB point with 200k explicit_bounds x 30 attributes made
/// the page retain 954 MB. It is now dropped before translation and counted.
#[tokio::test]
async fn a_point_with_200k_bounds_is_dropped_counted_and_never_rendered() {
    let (exp, reg) = exporter(&config(serde_json::json!({})));
    let req = request(vec![wide_histogram(200_000, 30), histogram()]);
    let out = exp.export(&Batch::Metrics(req)).await.unwrap();
    assert_eq!(out.rejected, 1);
    assert!(out.message.as_deref().unwrap_or("").contains("max_histogram_buckets"), "{out:?}");
    assert_eq!(dropped(&reg, "too_many_buckets"), Some(1.0));
    let store = exp.store.lock().unwrap();
    // What is retained: the normal histogram's 5 series and target_info.
    assert_eq!(store.len(), 6);
    assert!(store.page_bytes() < 4096, "{} bytes", store.page_bytes());
    drop(store);
    let text = page(&exp);
    assert!(!text.contains("huge"), "{text}");
    assert!(text.contains("latency_seconds_bucket{job=\"api\",le=\"1\"} 2\n"), "{text}");
}

#[tokio::test]
async fn the_page_is_bounded_new_series_refused_and_counted_old_ones_updated() {
    let (exp, reg) = exporter(&config(serde_json::json!({"max_page_bytes": 4096})));
    let send = |points| Batch::Metrics(request(vec![counter(AggregationTemporality::Cumulative, points)]));
    let points = (0..200).map(|i| number(&format!("/route/{i}"), T0, 1.0)).collect();
    let out = exp.export(&send(points)).await.unwrap();
    assert!(out.message.as_deref().unwrap_or("").contains("max_page_bytes"), "{out:?}");
    let refused = reg
        .value(
            "sluice_exporter_prometheus_refused_series_total",
            &[("exporter", "prometheus"), ("reason", "page_full")],
        )
        .unwrap();
    assert_eq!(refused, 200.0, "the family's new series are taken or refused together");

    // Room for a few: those land; then single new series until the page is full.
    let points: Vec<_> = (0..20).map(|i| number(&format!("/r{i}"), T0, 1.0)).collect();
    exp.export(&send(points)).await.unwrap();
    assert_eq!(exp.store.lock().unwrap().len(), 20 + 1, "20 series and target_info");
    let mut i = 0;
    while reg
        .value(
            "sluice_exporter_prometheus_refused_series_total",
            &[("exporter", "prometheus"), ("reason", "page_full")],
        )
        .unwrap()
        == 200.0
    {
        exp.export(&send(vec![number(&format!("/more/{i}"), T0, 1.0)])).await.unwrap();
        i += 1;
        assert!(i < 1000, "the page never filled");
    }
    // Full: an existing series is still updated.
    exp.export(&send(vec![number("/r0", T0 + 1_000_000_000, 9.0)])).await.unwrap();
    let text = page(&exp);
    assert!(text.len() <= 4096, "{} bytes", text.len());
    assert!(text.contains("route=\"/r0\"} 9\n"), "{text}");
    let store = exp.store.lock().unwrap();
    assert!(store.page_bytes() <= 4096);
    assert!(text.len() <= store.page_bytes(), "the estimate bounds the page: {} > {}", text.len(), store.page_bytes());
}

#[test]
fn limits_have_defaults_and_are_validated() {
    let cfg = config(serde_json::json!({}));
    assert_eq!(cfg.max_page_bytes, 16 << 20);
    assert_eq!(cfg.limits, crate::exporters::prometheus_common::PointLimits::default());
    let yaml = |body: &str| {
        format!(
            "receivers:\n  otlp:\n    protocols:\n      grpc:\nexporters:\n  prometheus:\n    endpoint: 127.0.0.1:0\n{body}\
             service:\n  pipelines:\n    metrics:\n      receivers: [otlp]\n      exporters: [prometheus]\n"
        )
    };
    assert!(crate::service::load(&yaml(""), &|_| None).is_ok());
    for (body, path, needle) in [
        ("    max_page_bytes: 10\n", "exporters::prometheus::max_page_bytes", "max_page_bytes must be from 4096"),
        (
            "    limits:\n      max_histogram_buckets: 0\n",
            "exporters::prometheus::limits::max_histogram_buckets",
            "the default is 1024",
        ),
        (
            "    limits:\n      max_label_value_length: 99999999999\n",
            "exporters::prometheus::limits::max_label_value_length",
            "must be from 1 to",
        ),
    ] {
        let errs = crate::service::load(&yaml(body), &|_| None).unwrap_err();
        let e = errs.0.iter().find(|e| e.path == path).unwrap_or_else(|| panic!("no error at {path}: {errs}"));
        assert!(e.to_string().contains(needle), "{e}");
    }
}

#[tokio::test]
async fn a_longer_help_in_a_later_batch_does_not_grow_the_page_past_its_bound() {
    let (exp, _reg) = exporter(&config(serde_json::json!({"max_page_bytes": 4096})));
    let with_help = |help: &str, route: &str| {
        let mut m = counter(AggregationTemporality::Cumulative, vec![number(route, T0, 1.0)]);
        m.description = help.into();
        Batch::Metrics(request(vec![m]))
    };
    exp.export(&with_help("short", "/a")).await.unwrap();
    exp.export(&with_help(&"long help ".repeat(300), "/b")).await.unwrap();
    let text = page(&exp);
    let store = exp.store.lock().unwrap();
    assert!(text.len() <= store.page_bytes() && store.page_bytes() <= 4096, "{} / {}", text.len(), store.page_bytes());
    assert!(text.contains("# HELP http_requests_total short\n"), "{text}");
    assert!(text.contains("route=\"/b\""), "{text}");
}
