use super::config::{CardinalityLimiterConfig, MetricLimit};
use super::*;
use crate::data::fixtures::kv;
use crate::data::Signal;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::{
    exponential_histogram_data_point::Buckets, metric, ExponentialHistogram, Gauge as OtlpGauge, Histogram, Metric,
    ResourceMetrics, ScopeMetrics, Sum, Summary,
};
use opentelemetry_proto::tonic::resource::v1::Resource;

const DELTA: i32 = AggregationTemporality::Delta as i32;
const CUMULATIVE: i32 = AggregationTemporality::Cumulative as i32;

fn limiter(cfg: &CardinalityLimiterConfig) -> (CardinalityLimiter, Registry) {
    let registry = Registry::new();
    let ctx = ProcessorContext {
        id: "cardinality_limiter".to_string(),
        signal: Signal::Metrics,
        registry: registry.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    (CardinalityLimiter::new(cfg, &ctx), registry)
}

fn cfg(limit: i64) -> CardinalityLimiterConfig {
    CardinalityLimiterConfig { default_limit: limit, ..Default::default() }
}

fn s(key: &str, v: &str) -> KeyValue {
    kv(key, any_value::Value::StringValue(v.to_string()))
}

fn user(i: usize) -> Vec<KeyValue> {
    vec![s("http.route", "/checkout"), s("user_id", &format!("user-{i}"))]
}

fn request(metrics: Vec<Metric>) -> Batch {
    Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![s("service.name", "shop")], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics { metrics, ..Default::default() }],
            ..Default::default()
        }],
    })
}

fn metric(name: &str, data: metric::Data) -> Metric {
    Metric { name: name.to_string(), data: Some(data), ..Default::default() }
}

fn number(attributes: Vec<KeyValue>, value: i64, time: u64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: 1,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsInt(value)),
        ..Default::default()
    }
}

fn sum(name: &str, temporality: i32, points: Vec<NumberDataPoint>) -> Metric {
    metric(
        name,
        metric::Data::Sum(Sum { data_points: points, aggregation_temporality: temporality, is_monotonic: true }),
    )
}

fn run(l: &mut CardinalityLimiter, batch: Batch, now: Instant) -> Vec<Metric> {
    let mut out = Vec::new();
    l.process(batch, now, &mut out);
    out.into_iter()
        .flat_map(|b| match b {
            Batch::Metrics(r) => r.resource_metrics,
            _ => Vec::new(),
        })
        .flat_map(|rm| rm.scope_metrics)
        .flat_map(|sm| sm.metrics)
        .collect()
}

fn numbers(metrics: &[Metric]) -> Vec<NumberDataPoint> {
    metrics
        .iter()
        .flat_map(|m| match &m.data {
            Some(metric::Data::Sum(s)) => s.data_points.clone(),
            Some(metric::Data::Gauge(g)) => g.data_points.clone(),
            _ => Vec::new(),
        })
        .collect()
}

fn int(p: &NumberDataPoint) -> i64 {
    match p.value {
        Some(number_data_point::Value::AsInt(i)) => i,
        Some(number_data_point::Value::AsDouble(f)) => f as i64,
        None => 0,
    }
}

fn is_overflow(attrs: &[KeyValue]) -> bool {
    attrs.len() == 1 && attrs[0].key == OVERFLOW_ATTRIBUTE
}

fn value(reg: &Registry, name: &str) -> f64 {
    reg.value(name, &[("processor", "cardinality_limiter")]).unwrap_or(0.0)
}

#[test]
fn delta_counter_of_10000_users_leaves_100_series_and_the_overflow_with_the_same_total() {
    let (mut l, reg) = limiter(&cfg(100));
    let points: Vec<_> = (0..10_000).map(|i| number(user(i), (i % 7) as i64 + 1, 10)).collect();
    let total_in: i64 = points.iter().map(int).sum();
    let out = numbers(&run(&mut l, request(vec![sum("requests", DELTA, points)]), Instant::now()));
    assert_eq!(out.len(), 101);
    assert_eq!(out.iter().filter(|p| is_overflow(&p.attributes)).count(), 1);
    assert_eq!(out.iter().map(int).sum::<i64>(), total_in);
    assert_eq!(value(&reg, "sluice_cardinality_limiter_overflowed_points_total"), 9_900.0);
    assert_eq!(value(&reg, "sluice_cardinality_limiter_series"), 100.0);
    assert!(value(&reg, "sluice_cardinality_limiter_memory_bytes") > 0.0);
}

#[test]
fn cumulative_counter_overflow_is_the_sum_of_latest_values_over_rounds() {
    let (mut l, _) = limiter(&cfg(100));
    let now = Instant::now();
    let mut latest = std::collections::HashMap::new();
    for round in 1..=3u64 {
        let points: Vec<_> = (0..10_000).map(|i| number(user(i), (i as i64 % 5 + 1) * round as i64, round)).collect();
        let total_in: i64 = points.iter().map(int).sum();
        let out = numbers(&run(&mut l, request(vec![sum("bytes", CUMULATIVE, points)]), now));
        assert_eq!(out.len(), 101, "round {round}");
        for p in &out {
            latest.insert(fingerprint(&p.attributes, &mut Vec::new()), int(p));
        }
        // Cumulative: the latest value of every series out adds up to the latest in.
        assert_eq!(latest.values().sum::<i64>(), total_in, "round {round}");
        let overflow = out.iter().find(|p| is_overflow(&p.attributes)).expect("overflow point");
        assert_eq!(overflow.time_unix_nano, round);
    }
    // A folded series that resets counts its new value; the total never goes down.
    let reset = vec![number(user(5_000), 1, 4)];
    let before = latest[&fingerprint(&overflow_attributes(), &mut Vec::new())];
    let out = numbers(&run(&mut l, request(vec![sum("bytes", CUMULATIVE, reset)]), now));
    assert_eq!(int(&out[0]), before + 1);
}

fn histogram(attributes: Vec<KeyValue>, values: &[f64], temporality_time: u64) -> HistogramDataPoint {
    let bounds = vec![1.0, 10.0, 100.0];
    let mut buckets = vec![0u64; 4];
    for v in values {
        buckets[bounds.iter().position(|b| v <= b).unwrap_or(3)] += 1;
    }
    HistogramDataPoint {
        attributes,
        time_unix_nano: temporality_time,
        count: values.len() as u64,
        sum: Some(values.iter().sum()),
        bucket_counts: buckets,
        explicit_bounds: bounds,
        min: values.iter().copied().reduce(f64::min),
        max: values.iter().copied().reduce(f64::max),
        ..Default::default()
    }
}

fn histograms(metrics: &[Metric]) -> Vec<HistogramDataPoint> {
    metrics
        .iter()
        .flat_map(|m| match &m.data {
            Some(metric::Data::Histogram(h)) => h.data_points.clone(),
            _ => Vec::new(),
        })
        .collect()
}

#[test]
fn histograms_merge_counts_sums_and_buckets() {
    for temporality in [DELTA, CUMULATIVE] {
        let (mut l, _) = limiter(&cfg(100));
        let points: Vec<_> = (0..10_000).map(|i| histogram(user(i), &[0.5, (i % 200) as f64], 1)).collect();
        let (count_in, sum_in) =
            (points.iter().map(|p| p.count).sum::<u64>(), points.iter().map(|p| p.sum.unwrap_or(0.0)).sum::<f64>());
        let mut buckets_in = [0u64; 4];
        for p in &points {
            for (b, c) in buckets_in.iter_mut().zip(&p.bucket_counts) {
                *b += c;
            }
        }
        let m = metric(
            "latency",
            metric::Data::Histogram(Histogram { data_points: points, aggregation_temporality: temporality }),
        );
        let out = histograms(&run(&mut l, request(vec![m]), Instant::now()));
        assert_eq!(out.len(), 101);
        assert_eq!(out.iter().map(|p| p.count).sum::<u64>(), count_in);
        assert!((out.iter().map(|p| p.sum.unwrap_or(0.0)).sum::<f64>() - sum_in).abs() < 1e-6);
        let mut buckets_out = [0u64; 4];
        for p in &out {
            for (b, c) in buckets_out.iter_mut().zip(&p.bucket_counts) {
                *b += c;
            }
        }
        assert_eq!(buckets_out, buckets_in);
        let overflow = out.iter().find(|p| is_overflow(&p.attributes)).expect("overflow");
        assert_eq!((overflow.min, overflow.max), (Some(0.0), Some(199.0)));
    }
}

#[test]
fn histogram_with_other_bounds_is_dropped_and_counted() {
    let (mut l, reg) = limiter(&cfg(1));
    let mut odd = histogram(user(2), &[3.0], 1);
    odd.explicit_bounds = vec![5.0];
    odd.bucket_counts = vec![1, 0];
    let points = vec![histogram(user(0), &[1.0], 1), histogram(user(1), &[1.0], 1), odd];
    let m =
        metric("latency", metric::Data::Histogram(Histogram { data_points: points, aggregation_temporality: DELTA }));
    let out = histograms(&run(&mut l, request(vec![m]), Instant::now()));
    assert_eq!(out.len(), 2);
    assert_eq!(
        reg.value(
            "sluice_cardinality_limiter_dropped_points_total",
            &[("processor", "cardinality_limiter"), ("reason", "incompatible")]
        ),
        Some(1.0)
    );
}

#[test]
fn gauges_keep_the_latest_value() {
    let (mut l, _) = limiter(&cfg(1));
    let points = vec![number(user(0), 5, 10), number(user(1), 7, 30), number(user(2), 9, 20)];
    let m = metric("temperature", metric::Data::Gauge(OtlpGauge { data_points: points }));
    let out = numbers(&run(&mut l, request(vec![m]), Instant::now()));
    let overflow = out.iter().find(|p| is_overflow(&p.attributes)).expect("overflow");
    assert_eq!((int(overflow), overflow.time_unix_nano), (7, 30));
}

#[test]
fn exponential_histograms_and_summaries_fold() {
    let (mut l, _) = limiter(&cfg(1));
    let exp = |i: usize, scale: i32| ExponentialHistogramDataPoint {
        attributes: user(i),
        count: 3,
        sum: Some(3.0),
        scale,
        zero_count: 1,
        positive: Some(Buckets { offset: 0, bucket_counts: vec![1, 1] }),
        ..Default::default()
    };
    let m = metric(
        "sizes",
        metric::Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![exp(0, 2), exp(1, 2), exp(2, 1)],
            aggregation_temporality: DELTA,
        }),
    );
    let summary = |i: usize| SummaryDataPoint { attributes: user(i), count: 4, sum: 10.0, ..Default::default() };
    let sm = metric("rpc", metric::Data::Summary(Summary { data_points: (0..3).map(summary).collect() }));
    let out = run(&mut l, request(vec![m, sm]), Instant::now());
    let Some(metric::Data::ExponentialHistogram(h)) = &out[0].data else { panic!("exp") };
    let o = h.data_points.iter().find(|p| is_overflow(&p.attributes)).expect("overflow");
    assert_eq!((o.count, o.zero_count, o.scale), (6, 2, 1));
    assert_eq!(o.positive.as_ref().map(|b| b.bucket_counts.iter().sum::<u64>()), Some(4));
    let Some(metric::Data::Summary(s)) = &out[1].data else { panic!("summary") };
    let o = s.data_points.iter().find(|p| is_overflow(&p.attributes)).expect("overflow");
    assert_eq!((o.count, o.sum, o.quantile_values.len()), (8, 20.0, 0));
}

#[test]
fn series_ttl_frees_slots() {
    let c = CardinalityLimiterConfig { series_ttl: crate::config::Duration::from_secs(60), ..cfg(2) };
    let (mut l, reg) = limiter(&c);
    let t0 = Instant::now();
    let batch = |ids: &[usize]| request(vec![sum("c", DELTA, ids.iter().map(|i| number(user(*i), 1, 1)).collect())]);
    let out = numbers(&run(&mut l, batch(&[0, 1, 2]), t0));
    assert!(out.iter().any(|p| is_overflow(&p.attributes)));
    // Series 1 is kept alive; series 0 is not.
    run(&mut l, batch(&[1]), t0 + Duration::from_secs(40));
    let deadline = l.next_deadline().expect("deadline");
    assert!(deadline <= t0 + Duration::from_secs(60));
    l.tick(t0 + Duration::from_secs(70), &mut Vec::new());
    assert_eq!(l.tracked_series(), 1);
    assert_eq!(value(&reg, "sluice_cardinality_limiter_series"), 1.0);
    let out = numbers(&run(&mut l, batch(&[3]), t0 + Duration::from_secs(71)));
    assert_eq!(out.len(), 1);
    assert!(!is_overflow(&out[0].attributes));
}

#[test]
fn a_folded_cumulative_series_stays_folded_when_a_slot_frees() {
    let c = CardinalityLimiterConfig { series_ttl: crate::config::Duration::from_secs(60), ..cfg(1) };
    let (mut l, _) = limiter(&c);
    let t0 = Instant::now();
    let batch = |ids: &[usize], v: i64| {
        request(vec![sum("c", CUMULATIVE, ids.iter().map(|i| number(user(*i), v, v as u64)).collect())])
    };
    run(&mut l, batch(&[0, 1], 10), t0);
    // Series 0 expires, freeing the slot; series 1 keeps being folded.
    run(&mut l, batch(&[1], 20), t0 + Duration::from_secs(50));
    l.tick(t0 + Duration::from_secs(70), &mut Vec::new());
    let out = numbers(&run(&mut l, batch(&[1], 30), t0 + Duration::from_secs(71)));
    assert_eq!(out.len(), 1);
    assert!(is_overflow(&out[0].attributes));
    assert_eq!(int(&out[0]), 30);
}

#[test]
fn new_metrics_past_max_series_are_dropped_and_counted() {
    let (mut l, reg) = limiter(&CardinalityLimiterConfig { max_series: 2, ..cfg(10) });
    let batch = |name: &str| request(vec![sum(name, DELTA, (0..2).map(|i| number(user(i), 1, 1)).collect())]);
    assert_eq!(numbers(&run(&mut l, batch("a"), Instant::now())).len(), 2);
    assert!(run(&mut l, batch("b"), Instant::now()).is_empty());
    assert_eq!(
        reg.value(
            "sluice_cardinality_limiter_dropped_points_total",
            &[("processor", "cardinality_limiter"), ("reason", "max_series")]
        ),
        Some(2.0)
    );
}

#[test]
fn exclude_and_per_metric_limits() {
    let c = CardinalityLimiterConfig {
        metrics: vec![MetricLimit { name: "small".into(), limit: 5 }],
        exclude: vec!["up".into()],
        ..cfg(50)
    };
    let (mut l, _) = limiter(&c);
    let points = || (0..100).map(|i| number(user(i), 1, 1)).collect::<Vec<_>>();
    let out = run(
        &mut l,
        request(vec![sum("small", DELTA, points()), sum("up", DELTA, points()), sum("other", DELTA, points())]),
        Instant::now(),
    );
    let lens: Vec<(String, usize)> =
        out.iter().map(|m| (m.name.clone(), numbers(std::slice::from_ref(m)).len())).collect();
    assert_eq!(lens, vec![("small".into(), 6), ("up".into(), 100), ("other".into(), 51)]);
}

#[test]
fn limits_are_per_resource() {
    let (mut l, _) = limiter(&cfg(10));
    let mut batch = request(vec![sum("c", DELTA, (0..10).map(|i| number(user(i), 1, 1)).collect())]);
    if let Batch::Metrics(r) = &mut batch {
        let mut other = r.resource_metrics[0].clone();
        other.resource = Some(Resource { attributes: vec![s("service.name", "cart")], ..Default::default() });
        r.resource_metrics.push(other);
    }
    let out = numbers(&run(&mut l, batch, Instant::now()));
    assert_eq!(out.len(), 20);
    assert!(!out.iter().any(|p| is_overflow(&p.attributes)));
}

#[test]
fn drop_attributes_reaggregates_points_that_become_identical() {
    let c = CardinalityLimiterConfig {
        action: "drop_attributes".into(),
        drop_attributes: vec!["user_id".into()],
        ..cfg(1)
    };
    let (mut l, reg) = limiter(&c);
    let points = (0..5).map(|i| number(user(i), i as i64 + 1, 1)).collect();
    let out = numbers(&run(&mut l, request(vec![sum("c", DELTA, points)]), Instant::now()));
    // user-0 keeps its slot (the limit is 1); the other four lose user_id and
    // become one point with their total, which itself needs a slot.
    assert_eq!(out.len(), 1);
    assert_eq!(value(&reg, "sluice_cardinality_limiter_attributes_dropped_points_total"), 4.0);

    // Once the reduced series holds a slot, later points fold into it.
    let (mut l, reg) = limiter(&CardinalityLimiterConfig { default_limit: 2, ..c });
    let first = vec![number(vec![s("http.route", "/checkout")], 1, 1), number(user(0), 1, 1)];
    assert_eq!(numbers(&run(&mut l, request(vec![sum("c", DELTA, first)]), Instant::now())).len(), 2);
    let points = (1..5).map(|i| number(user(i), i as i64, 2)).collect();
    let out = numbers(&run(&mut l, request(vec![sum("c", DELTA, points)]), Instant::now()));
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].attributes, vec![s("http.route", "/checkout")]);
    assert_eq!(int(&out[0]), 1 + 2 + 3 + 4);
    assert_eq!(value(&reg, "otelcol_processor_dropped_metric_points_total"), 0.0);
}

#[test]
fn drop_counts_every_dropped_point() {
    let (mut l, reg) = limiter(&CardinalityLimiterConfig { action: "drop".into(), ..cfg(10) });
    let points = (0..30).map(|i| number(user(i), 1, 1)).collect();
    let out = numbers(&run(&mut l, request(vec![sum("c", DELTA, points)]), Instant::now()));
    assert_eq!(out.len(), 10);
    assert_eq!(value(&reg, "otelcol_processor_dropped_metric_points_total"), 20.0);
    assert_eq!(
        reg.value(
            "sluice_cardinality_limiter_dropped_points_total",
            &[("processor", "cardinality_limiter"), ("reason", "limit")]
        ),
        Some(20.0)
    );
}

#[test]
fn max_series_bounds_memory_and_is_counted() {
    let (mut l, reg) = limiter(&CardinalityLimiterConfig { max_series: 15, ..cfg(10) });
    let batch = |name: &str| request(vec![sum(name, DELTA, (0..20).map(|i| number(user(i), 1, 1)).collect())]);
    run(&mut l, batch("a"), Instant::now());
    let out = numbers(&run(&mut l, batch("b"), Instant::now()));
    assert_eq!(out.len(), 6); // 5 slots left, then overflow
    assert_eq!(l.tracked_series(), 15);
    assert!(value(&reg, "sluice_cardinality_limiter_max_series_reached_total") >= 1.0);
}

#[test]
fn attribute_cardinality_gauge_names_the_keys_of_overflowed_metrics() {
    let (mut l, reg) = limiter(&cfg(100));
    let points = (0..1000).map(|i| number(user(i), 1, 1)).collect();
    let now = Instant::now();
    run(&mut l, request(vec![sum("requests", DELTA, points), sum("calm", DELTA, vec![number(user(0), 1, 1)])]), now);
    l.tick(now, &mut Vec::new());
    let g = |metric: &str, attribute: &str| {
        reg.value(
            crate::telemetry::CARDINALITY_LIMITER_ATTRIBUTE_CARDINALITY,
            &[("processor", "cardinality_limiter"), ("metric", metric), ("attribute", attribute)],
        )
    };
    let users = g("requests", "user_id").expect("user_id gauge");
    assert!((users - 1000.0).abs() < 100.0, "{users}");
    assert_eq!(g("requests", "http.route"), Some(1.0));
    assert_eq!(g("calm", "user_id"), None);
}

#[test]
fn fingerprint_ignores_attribute_order_and_types_values() {
    let mut scratch = Vec::new();
    let a = fingerprint(&[s("a", "1"), s("b", "2")], &mut scratch);
    let b = fingerprint(&[s("b", "2"), s("a", "1")], &mut scratch);
    let c = fingerprint(&[s("a", "1"), kv("b", any_value::Value::IntValue(2))], &mut scratch);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn other_signals_and_empty_points_pass_without_panic() {
    let (mut l, _) = limiter(&cfg(1));
    let mut out = Vec::new();
    l.process(Batch::empty(Signal::Traces), Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
    let m = Metric { name: "nodata".into(), data: None, ..Default::default() };
    let weird = number(vec![], 0, 0);
    let out = run(&mut l, request(vec![m, sum("c", 0, vec![weird.clone(), weird])]), Instant::now());
    assert_eq!(out.len(), 1, "a metric without data points is not passed on");
}

fn load(body: &str) -> Result<crate::service::AgentConfig, crate::config::ConfigErrors> {
    let text = format!(
        "receivers:\n  otlp:\n    protocols: {{grpc: }}\nprocessors:\n  cardinality_limiter:\n{body}\
         exporters:\n  debug:\nservice:\n  pipelines:\n    metrics: {{receivers: [otlp], processors: [cardinality_limiter], exporters: [debug]}}\n"
    );
    crate::service::load::load_agent_config(&text, &|_| None)
}

#[test]
fn config_loads_with_defaults_and_the_issue_example() {
    let body = "    default_limit: 2000\n    action: overflow\n    drop_attributes: [user_id]\n    series_ttl: 10m\n    metrics:\n      - name: http.server.duration\n        limit: 500\n    exclude: [up]\n";
    let cfg = load(body).unwrap_or_else(|e| panic!("{e}"));
    let id = crate::config::ComponentId::parse("cardinality_limiter").expect("id");
    let Some(c) = cfg.processors.get(&id).and_then(|p| p.downcast_ref::<CardinalityLimiterConfig>()) else {
        panic!("not a cardinality_limiter config");
    };
    assert_eq!(c.metrics, vec![MetricLimit { name: "http.server.duration".into(), limit: 500 }]);
    assert_eq!(c.series_ttl, crate::config::Duration::from_secs(600));
    assert_eq!(c.max_series, 1_000_000);
    assert!(load("").is_ok());
    let traces = "receivers:\n  otlp:\n    protocols: {grpc: }\nprocessors:\n  cardinality_limiter:\nexporters:\n  debug:\nservice:\n  pipelines:\n    traces: {receivers: [otlp], processors: [cardinality_limiter], exporters: [debug]}\n";
    assert!(crate::service::load::load_agent_config(traces, &|_| None).is_err());
}

#[test]
fn config_errors_carry_path_line_and_hint() {
    let cases: &[(&str, &str, usize, &str)] = &[
        ("    default_limit: -5\n", "processors::cardinality_limiter::default_limit", 6, "must be at least 1; hint:"),
        ("    default_limit: 0\n", "processors::cardinality_limiter::default_limit", 6, "must be at least 1"),
        ("    action: overflo\n", "processors::cardinality_limiter::action", 6, "did you mean \"overflow\"?"),
        (
            "    action: explode\n",
            "processors::cardinality_limiter::action",
            6,
            "actions are overflow, drop_attributes, drop",
        ),
        (
            "    action: drop_attributes\n",
            "processors::cardinality_limiter::drop_attributes",
            5,
            "must name at least one attribute key",
        ),
        (
            "    metrics:\n      - name: x\n        limit: 0\n",
            "processors::cardinality_limiter::metrics::0::limit",
            8,
            "limit 0 of metric \"x\" must be at least 1",
        ),
        ("    max_series: 0\n", "processors::cardinality_limiter::max_series", 6, "must be at least 1"),
        ("    series_ttl: 0s\n", "processors::cardinality_limiter::series_ttl", 6, "above zero"),
    ];
    for (body, path, line, needle) in cases {
        let errs = load(body).expect_err(body);
        let rendered = errs.to_string();
        let e = errs.0.iter().find(|e| e.path == *path).unwrap_or_else(|| panic!("no error at {path}: {rendered}"));
        assert_eq!(e.line, Some(*line), "{rendered}");
        assert!(e.to_string().contains(needle), "wanted {needle:?} in {e}");
    }
    assert!(load("    limit: 5\n").is_err(), "unknown fields are refused");
}

#[test]
fn a_worker_enforces_the_whole_limit_and_its_share_of_max_series() {
    // The pipeline routes each metric name to one worker, so one instance of
    // four passes the metric's whole limit; only max_series is divided.
    let registry = Registry::new();
    let ctx = ProcessorContext {
        id: "cardinality_limiter".to_string(),
        signal: Signal::Metrics,
        registry: registry.clone(),
        worker: 1,
        workers: 4,
        shared: Default::default(),
        storage_dir: None,
    };
    let mut l = CardinalityLimiter::new(&cfg(100), &ctx);
    let points = (0..1000).map(|i| number(user(i), 1, 1)).collect();
    let out = numbers(&run(&mut l, request(vec![sum("c", CUMULATIVE, points)]), Instant::now()));
    assert_eq!(out.len(), 101);
    let overflow = out.last().expect("overflow");
    assert_eq!(overflow.attributes, vec![kv(OVERFLOW_ATTRIBUTE, any_value::Value::BoolValue(true))]);
    assert_eq!(out.iter().map(int).sum::<i64>(), 1000);

    let small = CardinalityLimiterConfig { max_series: 40, ..cfg(100) };
    let mut l = CardinalityLimiter::new(&small, &ctx);
    let points = (0..1000).map(|i| number(user(i), 1, 1)).collect();
    let out = numbers(&run(&mut l, request(vec![sum("c", DELTA, points)]), Instant::now()));
    assert_eq!(out.len(), 11, "40 / 4 workers = 10 series, plus the overflow series");
}
