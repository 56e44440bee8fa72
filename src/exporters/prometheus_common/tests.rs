use super::*;
use crate::data::fixtures::kv;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, summary_data_point::ValueAtQuantile, AggregationTemporality, ExponentialHistogram,
    ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum, Summary, SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const T0: u64 = 1_700_000_000_000_000_000;
const T0_MS: i64 = 1_700_000_000_000;

fn s(k: &str, v: &str) -> KeyValue {
    kv(k, any_value::Value::StringValue(v.into()))
}

fn request(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> ExportMetricsServiceRequest {
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: resource, ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope { name: "lib".into(), version: "1.2".into(), ..Default::default() }),
                metrics,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

fn service() -> Vec<KeyValue> {
    vec![s("service.name", "api"), s("service.instance.id", "i-1"), s("deployment.environment", "prod")]
}

fn point(attrs: Vec<KeyValue>, t: u64, v: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes: attrs,
        time_unix_nano: t,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    }
}

fn metric(name: &str, unit: &str, data: Data) -> Metric {
    Metric { name: name.into(), unit: unit.into(), data: Some(data), ..Default::default() }
}

fn sum(monotonic: bool, temporality: AggregationTemporality, points: Vec<NumberDataPoint>) -> Data {
    Data::Sum(Sum { data_points: points, aggregation_temporality: temporality as i32, is_monotonic: monotonic })
}

fn hist_point(t: u64, count: u64, sum: f64, bounds: &[f64], buckets: &[u64]) -> HistogramDataPoint {
    HistogramDataPoint {
        attributes: vec![s("route", "/a")],
        time_unix_nano: t,
        count,
        sum: Some(sum),
        explicit_bounds: bounds.to_vec(),
        bucket_counts: buckets.to_vec(),
        ..Default::default()
    }
}

fn opts() -> TranslateOptions {
    TranslateOptions { add_metric_suffixes: true, target_info: true, ..Default::default() }
}

fn base<'a>(name: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut l = vec![
        ("__name__", name),
        ("job", "api"),
        ("instance", "i-1"),
        ("otel_scope_name", "lib"),
        ("otel_scope_version", "1.2"),
    ];
    l.extend_from_slice(extra);
    l
}

fn translate(o: TranslateOptions, req: &ExportMetricsServiceRequest) -> (SeriesSet, Dropped) {
    Translator::new(o).translate(req, Instant::now())
}

#[test]
fn monotonic_sum_is_a_counter_with_total() {
    let req = request(
        service(),
        vec![metric(
            "http.requests",
            "{request}",
            sum(true, AggregationTemporality::Cumulative, vec![point(vec![s("http.method", "GET")], T0, 7.0)]),
        )],
    );
    let (set, dropped) = translate(opts(), &req);
    assert_eq!(dropped, Dropped::default());
    let labels = base("http_requests_total", &[("http_method", "GET")]);
    assert_eq!(set.get(&labels), Some(vec![(T0_MS, 7.0)]), "{:?}", set.labels().collect::<Vec<_>>());
}

#[test]
fn non_monotonic_sum_and_gauge_are_gauges() {
    let req = request(
        service(),
        vec![
            metric(
                "queue.depth",
                "{item}",
                sum(false, AggregationTemporality::Cumulative, vec![point(vec![], T0, -3.0)]),
            ),
            metric(
                "cpu.utilization",
                "1",
                Data::Gauge(Gauge {
                    data_points: vec![NumberDataPoint {
                        time_unix_nano: T0,
                        value: Some(number_data_point::Value::AsInt(1)),
                        ..Default::default()
                    }],
                }),
            ),
        ],
    );
    let (set, _) = translate(opts(), &req);
    assert_eq!(set.get(&base("queue_depth", &[])), Some(vec![(T0_MS, -3.0)]));
    assert_eq!(set.get(&base("cpu_utilization_ratio", &[])), Some(vec![(T0_MS, 1.0)]));
}

#[test]
fn histogram_has_cumulative_buckets_inf_sum_and_count() {
    let req = request(
        service(),
        vec![metric(
            "http.duration",
            "ms",
            Data::Histogram(Histogram {
                data_points: vec![hist_point(T0, 6, 42.5, &[5.0, 10.5], &[1, 2, 3])],
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
            }),
        )],
    );
    let (set, _) = translate(opts(), &req);
    let r = [("route", "/a")];
    assert_eq!(set.get(&base("http_duration_milliseconds_sum", &r)), Some(vec![(T0_MS, 42.5)]));
    assert_eq!(set.get(&base("http_duration_milliseconds_count", &r)), Some(vec![(T0_MS, 6.0)]));
    let bucket = |le| set.get(&base("http_duration_milliseconds_bucket", &[("route", "/a"), ("le", le)]));
    assert_eq!(bucket("5"), Some(vec![(T0_MS, 1.0)]));
    assert_eq!(bucket("10.5"), Some(vec![(T0_MS, 3.0)]));
    assert_eq!(bucket("+Inf"), Some(vec![(T0_MS, 6.0)]));
}

#[test]
fn summary_has_quantiles_sum_and_count() {
    let req = request(
        service(),
        vec![metric(
            "rpc.latency",
            "s",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T0,
                    count: 10,
                    sum: 2.5,
                    quantile_values: vec![
                        ValueAtQuantile { quantile: 0.5, value: 0.2 },
                        ValueAtQuantile { quantile: 0.99, value: 0.9 },
                    ],
                    ..Default::default()
                }],
            }),
        )],
    );
    let (set, _) = translate(opts(), &req);
    assert_eq!(set.get(&base("rpc_latency_seconds", &[("quantile", "0.5")])), Some(vec![(T0_MS, 0.2)]));
    assert_eq!(set.get(&base("rpc_latency_seconds", &[("quantile", "0.99")])), Some(vec![(T0_MS, 0.9)]));
    assert_eq!(set.get(&base("rpc_latency_seconds_sum", &[])), Some(vec![(T0_MS, 2.5)]));
    assert_eq!(set.get(&base("rpc_latency_seconds_count", &[])), Some(vec![(T0_MS, 10.0)]));
}

#[test]
fn target_info_job_instance_and_resource_to_telemetry() {
    let mut res = service();
    res.push(s("service.namespace", "shop"));
    let req =
        request(res, vec![metric("up.time", "s", Data::Gauge(Gauge { data_points: vec![point(vec![], T0, 1.0)] }))]);
    let (set, _) = translate(opts(), &req);
    let info = set.get(&[
        ("__name__", "target_info"),
        ("job", "shop/api"),
        ("instance", "i-1"),
        ("deployment_environment", "prod"),
    ]);
    assert_eq!(info, Some(vec![(T0_MS, 1.0)]));
    let l = [
        ("__name__", "up_time_seconds"),
        ("job", "shop/api"),
        ("instance", "i-1"),
        ("otel_scope_name", "lib"),
        ("otel_scope_version", "1.2"),
    ];
    assert!(set.get(&l).is_some(), "{:?}", set.labels().collect::<Vec<_>>());
    assert_eq!(set.len(), 2);

    let mut o = opts();
    o.resource_to_telemetry = true;
    let (set, _) = translate(o, &req);
    assert_eq!(set.len(), 1, "no target_info when every series carries the resource");
    let labels = set.labels().next().unwrap();
    assert!(labels.contains(&("deployment_environment".into(), "prod".into())), "{labels:?}");
    assert!(labels.contains(&("service_name".into(), "api".into())), "{labels:?}");

    let mut o = opts();
    o.target_info = false;
    assert_eq!(translate(o, &req).0.len(), 1);
}

#[test]
fn external_labels_and_sanitised_attributes() {
    let attrs = vec![
        s("http.method", "GET"),
        kv("2xx", any_value::Value::IntValue(5)),
        kv("ok", any_value::Value::BoolValue(true)),
        s("a.b", "1"),
        s("a_b", "2"),
        s("cluster", "mine"),
    ];
    let req =
        request(service(), vec![metric("g", "", Data::Gauge(Gauge { data_points: vec![point(attrs, T0, 1.0)] }))]);
    let mut o = opts();
    o.external_labels = BTreeMap::from([("cluster".into(), "eu-1".into()), ("region".into(), "west".into())]);
    let (set, _) = translate(o, &req);
    let l = base(
        "g",
        &[
            ("http_method", "GET"),
            ("key_2xx", "5"),
            ("ok", "true"),
            ("a_b", "1;2"),
            ("cluster", "mine"),
            ("region", "west"),
        ],
    );
    assert!(set.get(&l).is_some(), "{:?}", set.labels().collect::<Vec<_>>());
    let info = set.labels().find(|l| l.iter().any(|(k, v)| k == "__name__" && v == "target_info")).unwrap();
    assert!(info.contains(&("cluster".into(), "eu-1".into())), "{info:?}");
    // Sorted by name, unique.
    for labels in set.labels() {
        assert!(labels.windows(2).all(|w| w[0].0 < w[1].0), "{labels:?}");
    }
}

#[test]
fn no_recorded_value_becomes_stale_nan() {
    let mut p = point(vec![], T0, 5.0);
    p.flags = 1;
    let mut h = hist_point(T0, 0, 0.0, &[1.0], &[0, 0]);
    h.flags = 1;
    let req = request(
        service(),
        vec![
            metric("g", "", Data::Gauge(Gauge { data_points: vec![p] })),
            metric(
                "h",
                "",
                Data::Histogram(Histogram {
                    data_points: vec![h],
                    aggregation_temporality: AggregationTemporality::Cumulative as i32,
                }),
            ),
        ],
    );
    let (set, _) = translate(opts(), &req);
    let v = set.get(&base("g", &[])).unwrap();
    assert_eq!(v[0].1.to_bits(), STALE_NAN_BITS);
    let v = set.get(&base("h_bucket", &[("route", "/a"), ("le", "+Inf")])).unwrap();
    assert_eq!(v[0].1.to_bits(), STALE_NAN_BITS);
    assert_eq!(stale_nan().to_bits(), 0x7ff0000000000002);
}

#[test]
fn samples_of_a_series_are_merged_in_time_order() {
    let req = request(
        service(),
        vec![metric(
            "g",
            "",
            Data::Gauge(Gauge {
                data_points: vec![
                    point(vec![], T0 + 2_000_000_000, 3.0),
                    point(vec![], T0, 1.0),
                    point(vec![], T0 + 1_000_000_000, 2.0),
                ],
            }),
        )],
    );
    let (set, _) = translate(opts(), &req);
    assert_eq!(set.get(&base("g", &[])), Some(vec![(T0_MS, 1.0), (T0_MS + 1000, 2.0), (T0_MS + 2000, 3.0)]));
}

fn delta_req(t: u64, v: f64) -> ExportMetricsServiceRequest {
    request(
        service(),
        vec![
            metric("c", "", sum(true, AggregationTemporality::Delta, vec![point(vec![s("k", "v")], t, v)])),
            metric(
                "h",
                "s",
                Data::Histogram(Histogram {
                    data_points: vec![hist_point(t, 2, v, &[1.0], &[1, 1])],
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                }),
            ),
        ],
    )
}

#[test]
fn delta_is_dropped_and_counted_by_default() {
    let mut req = delta_req(T0, 1.0);
    req.resource_metrics[0].scope_metrics[0].metrics.push(metric(
        "e",
        "",
        Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![ExponentialHistogramDataPoint::default()],
            aggregation_temporality: 2,
        }),
    ));
    let (set, dropped) = translate(opts(), &req);
    assert_eq!(dropped, Dropped { delta_temporality: 2, unsupported_type: 1, ..Default::default() });
    assert_eq!(dropped.total(), 3);
    // Nothing is left, not even a target_info for the dropped points.
    assert_eq!(set.len(), 0);
}

#[test]
fn delta_to_cumulative_keeps_running_totals() {
    let mut o = opts();
    o.delta = Some(DeltaOptions { max_series: 10, ttl: Duration::from_secs(60) });
    let t = Translator::new(o);
    let now = Instant::now();
    let (set, dropped) = t.translate(&delta_req(T0, 2.0), now);
    assert_eq!(dropped, Dropped::default());
    assert_eq!(set.get(&base("c_total", &[("k", "v")])), Some(vec![(T0_MS, 2.0)]));
    let (set, _) = t.translate(&delta_req(T0 + 1_000_000_000, 3.0), now);
    assert_eq!(set.get(&base("c_total", &[("k", "v")])), Some(vec![(T0_MS + 1000, 5.0)]));
    assert_eq!(set.get(&base("h_seconds_count", &[("route", "/a")])), Some(vec![(T0_MS + 1000, 4.0)]));
    assert_eq!(set.get(&base("h_seconds_sum", &[("route", "/a")])), Some(vec![(T0_MS + 1000, 5.0)]));
    assert_eq!(set.get(&base("h_seconds_bucket", &[("route", "/a"), ("le", "1")])), Some(vec![(T0_MS + 1000, 2.0)]));
    // A retried batch (same timestamps) adds nothing twice.
    let (set, _) = t.translate(&delta_req(T0 + 1_000_000_000, 3.0), now);
    assert_eq!(set.get(&base("c_total", &[("k", "v")])), Some(vec![(T0_MS + 1000, 5.0)]));
    assert_eq!(t.delta_series(), 2);
    // An older point is not added: Prometheus would refuse it as out of order.
    let (set, dropped) = t.translate(&delta_req(T0 + 500_000_000, 3.0), now);
    assert_eq!(dropped.out_of_order, 2);
    assert_eq!(set.get(&base("c_total", &[("k", "v")])), None);
    // After the TTL the series is forgotten and starts over.
    let later = now + Duration::from_secs(61);
    let (set, _) = t.translate(&delta_req(T0 + 2_000_000_000, 1.0), later);
    assert_eq!(set.get(&base("c_total", &[("k", "v")])), Some(vec![(T0_MS + 2000, 1.0)]));
}

#[test]
fn delta_converter_is_bounded_by_max_series() {
    let mut o = opts();
    o.delta = Some(DeltaOptions { max_series: 1, ttl: Duration::from_secs(60) });
    let t = Translator::new(o);
    let (set, dropped) = t.translate(&delta_req(T0, 1.0), Instant::now());
    assert_eq!(dropped.max_series, 1, "the histogram is the second series");
    assert!(set.get(&base("c_total", &[("k", "v")])).is_some());
    assert_eq!(t.delta_series(), 1);
}

#[test]
fn suffixes_can_be_turned_off_and_namespaced() {
    let req = request(
        service(),
        vec![metric(
            "http.requests",
            "ms",
            sum(true, AggregationTemporality::Cumulative, vec![point(vec![], T0, 1.0)]),
        )],
    );
    let mut o = opts();
    o.add_metric_suffixes = false;
    o.namespace = "app".into();
    let (set, _) = translate(o, &req);
    assert!(set.get(&base("app_http_requests", &[])).is_some(), "{:?}", set.labels().collect::<Vec<_>>());
    assert!(set
        .get(&[
            ("__name__", "app_target_info"),
            ("job", "api"),
            ("instance", "i-1"),
            ("deployment_environment", "prod")
        ])
        .is_some());
}

/// A histogram point with `bounds` explicit bounds and `attrs` attributes.
fn wide_histogram(bounds: usize, attrs: usize) -> Metric {
    let mut p = hist_point(T0, 1, 1.0, &[], &[]);
    p.explicit_bounds = (0..bounds).map(|i| i as f64).collect();
    p.bucket_counts = vec![0; bounds + 1];
    p.attributes = (0..attrs).map(|i| s(&format!("attr_{i}"), &format!("value-{i}"))).collect();
    metric(
        "huge",
        "s",
        Data::Histogram(Histogram {
            data_points: vec![p],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )
}

fn normal_histogram() -> Metric {
    metric(
        "latency",
        "s",
        Data::Histogram(Histogram {
            data_points: vec![hist_point(T0, 3, 1.5, &[0.5, 1.0], &[1, 1, 1])],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        }),
    )
}

#[test]
fn a_histogram_of_200k_bounds_is_dropped_before_any_series_is_made() {
    let req = request(service(), vec![wide_histogram(200_000, 30), normal_histogram()]);
    let (set, dropped) = translate(opts(), &req);
    assert_eq!(dropped, Dropped { too_many_buckets: 1, ..Default::default() });
    // The normal histogram: 2 bounds + +Inf, _sum, _count; and target_info.
    assert_eq!(set.len(), 6, "{:?}", set.labels().collect::<Vec<_>>());
    assert!(set.labels().all(|l| !l.iter().any(|(_, v)| v.starts_with("huge"))));
    assert!(set.held_bytes() < 8 << 10, "{} bytes held", set.held_bytes());
    assert_eq!(
        set.get(&base("latency_seconds_bucket", &[("le", "1"), ("route", "/a")])),
        Some(vec![(T0_MS, 2.0)]),
        "a normal histogram is translated as before"
    );
}

#[test]
fn the_bucket_bound_is_inclusive_and_configurable() {
    let limits =
        |n| TranslateOptions { limits: PointLimits { max_histogram_buckets: n, ..Default::default() }, ..opts() };
    // 9 bounds are 10 buckets.
    let req = request(service(), vec![wide_histogram(9, 1)]);
    assert_eq!(translate(limits(10), &req).1, Dropped::default());
    assert_eq!(translate(limits(9), &req).1, Dropped { too_many_buckets: 1, ..Default::default() });
    assert_eq!(PointLimits::default().max_histogram_buckets, 1024);
}

#[test]
fn too_many_labels_or_a_long_label_value_drops_the_point() {
    let gauge = |attrs: Vec<KeyValue>| metric("g", "", Data::Gauge(Gauge { data_points: vec![point(attrs, T0, 1.0)] }));
    let many: Vec<KeyValue> = (0..200).map(|i| s(&format!("a{i}"), "v")).collect();
    let long = vec![s("big", &"x".repeat(5000))];
    let ok = vec![s("route", "/a")];
    let req = request(service(), vec![gauge(many), gauge(long), gauge(ok)]);
    let (set, dropped) = translate(opts(), &req);
    assert_eq!(dropped, Dropped { too_many_labels: 1, label_value_too_long: 1, ..Default::default() });
    assert_eq!(set.get(&base("g", &[("route", "/a")])), Some(vec![(T0_MS, 1.0)]));

    // Resource labels count too (resource_to_telemetry), and are checked without copying per point.
    let big_resource: Vec<KeyValue> = service().into_iter().chain([s("blob", &"y".repeat(5000))]).collect();
    let req = request(big_resource, vec![gauge(vec![s("route", "/a")])]);
    let o = TranslateOptions { resource_to_telemetry: true, ..opts() };
    assert_eq!(translate(o, &req).1, Dropped { label_value_too_long: 1, ..Default::default() });
}

#[test]
fn one_batch_translates_to_at_most_max_batch_bytes() {
    let gauge = |i: usize| {
        metric("g", "", Data::Gauge(Gauge { data_points: vec![point(vec![s("i", &i.to_string())], T0, 1.0)] }))
    };
    let req = request(service(), (0..1000).map(gauge).collect());
    let o = TranslateOptions { limits: PointLimits { max_batch_bytes: 64 << 10, ..Default::default() }, ..opts() };
    let (set, dropped) = translate(o, &req);
    // The points' series within the bound; target_info (one per resource) comes on top.
    assert!(set.held_bytes() <= (64 << 10) + 1024, "{}", set.held_bytes());
    assert!(dropped.batch_too_large > 0 && dropped.batch_too_large < 1000, "{dropped:?}");
    assert_eq!(set.len() as u64 + dropped.batch_too_large, 1000 + 1, "every point is kept or counted (+ target_info)");
}

#[test]
fn a_summary_with_too_many_quantiles_is_dropped() {
    let summary = |n: usize| {
        metric(
            "rpc.latency",
            "s",
            Data::Summary(Summary {
                data_points: vec![SummaryDataPoint {
                    time_unix_nano: T0,
                    count: 1,
                    quantile_values: (0..n)
                        .map(|i| ValueAtQuantile { quantile: i as f64 / n as f64, value: 1.0 })
                        .collect(),
                    ..Default::default()
                }],
            }),
        )
    };
    let req = request(service(), vec![summary(200_000)]);
    let (set, dropped) = translate(opts(), &req);
    assert_eq!(dropped, Dropped { too_many_buckets: 1, ..Default::default() });
    assert!(set.is_empty());
    let req = request(service(), vec![summary(1024)]);
    assert_eq!(translate(opts(), &req).1, Dropped::default());
}
