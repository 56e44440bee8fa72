//! What tracking costs the allocator: live heap bytes per tracked series in
//! `cardinality_limiter` and per tracked key in `log_rate_limiter`, counted by
//! a global allocator, against what the limiter reports about itself
//! (`sluice_cardinality_limiter_memory_bytes`). The figures in BENCHMARKS.md
//! come from `cargo test --release --test volume_memory -- --nocapture`.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use opentelemetry_proto::tonic::resource::v1::Resource;
use sluice::data::{Batch, Signal};
use sluice::processors::cardinality_limiter::{config::CardinalityLimiterConfig, CardinalityLimiter};
use sluice::processors::log_rate_limiter::{config::LogRateLimiterConfig, LogRateLimiter};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::sync::Mutex;
use std::time::Instant;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
#[path = "../benches/support/metric_data.rs"]
mod metric_data;

/// The tests share the counter: they take turns.
static TURN: Mutex<()> = Mutex::new(());

const TRACKED: usize = 100_000;
const BATCH: usize = 1000;

fn s(key: &str, v: String) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }),
        ..Default::default()
    }
}

fn ctx(id: &str, signal: Signal, registry: &Registry) -> ProcessorContext {
    ProcessorContext {
        id: id.into(),
        signal,
        registry: registry.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    }
}

/// 1000 points of one counter, one series per user from `first`.
fn points(first: usize, temporality: AggregationTemporality) -> Batch {
    Batch::Metrics(metric_data::user_counter(temporality, first, BATCH))
}

/// Live heap bytes the processor holds per tracked item after `feed` ran
/// `TRACKED / BATCH` batches through it (its output dropped at once).
fn bytes_per_item(p: &mut dyn Processor, batch: impl Fn(usize) -> Batch) -> f64 {
    let now = Instant::now();
    let mut out = Vec::new();
    // Warm-up: the first batch sizes scratch buffers and registers metrics.
    p.process(batch(10 * TRACKED), now, &mut out);
    out.clear();
    let before = counting_alloc::live();
    for b in 0..TRACKED / BATCH {
        let input = batch(b * BATCH);
        p.process(input, now, &mut out);
        out.clear();
    }
    let grown = counting_alloc::live() - before;
    grown as f64 / TRACKED as f64
}

#[test]
fn a_tracked_series_costs_under_64_bytes_and_the_limiter_reports_it_within_2x() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::new();
    let cfg = CardinalityLimiterConfig { default_limit: 1_000_000, max_series: 1_000_000, ..Default::default() };
    let mut l = CardinalityLimiter::new(&cfg, &ctx("cardinality_limiter", Signal::Metrics, &registry));
    let per_series = bytes_per_item(&mut l, |first| points(first, AggregationTemporality::Delta));
    assert_eq!(l.tracked_series(), TRACKED + BATCH);
    let reported = registry.value("sluice_cardinality_limiter_memory_bytes", &[("processor", "cardinality_limiter")]);
    let reported_per_series = reported.expect("memory gauge") / (TRACKED + BATCH) as f64;
    println!(
        "cardinality_limiter: {per_series:.1} live heap bytes per admitted series; reports {reported_per_series:.1}"
    );
    assert!(per_series < 64.0, "{per_series:.1} bytes per series");
    let ratio = reported_per_series / per_series;
    assert!((0.5..=2.0).contains(&ratio), "reported {reported_per_series:.1} vs live {per_series:.1} bytes per series");
}

#[test]
fn a_cumulative_series_folded_into_overflow_costs_under_256_bytes() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::new();
    // Over the limit, a cumulative series keeps its last value so that only
    // its gains are folded: the most a series costs.
    let cfg = CardinalityLimiterConfig { default_limit: 1, max_series: 1_000_000, ..Default::default() };
    let mut l = CardinalityLimiter::new(&cfg, &ctx("cardinality_limiter", Signal::Metrics, &registry));
    let per_series = bytes_per_item(&mut l, |first| points(first, AggregationTemporality::Cumulative));
    let reported = registry.value("sluice_cardinality_limiter_memory_bytes", &[("processor", "cardinality_limiter")]);
    let reported_per_series = reported.expect("memory gauge") / l.tracked_series() as f64;
    println!(
        "cardinality_limiter: {per_series:.1} live heap bytes per folded cumulative series; reports {reported_per_series:.1}"
    );
    assert!(per_series < 256.0, "{per_series:.1} bytes per folded series");
    let ratio = reported_per_series / per_series;
    assert!((0.5..=2.0).contains(&ratio), "reported {reported_per_series:.1} vs live {per_series:.1} bytes per series");
}

/// 1000 records of 1000 keys from `first`: the key is the `user` attribute.
fn records(first: usize) -> Batch {
    let log_records = (first..first + BATCH)
        .map(|i| LogRecord {
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue { value: Some(any_value::Value::StringValue(format!("login failed for user {i}"))) }),
            attributes: vec![s("user", format!("user-{i}"))],
            ..Default::default()
        })
        .collect();
    Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource { attributes: vec![s("service.name", "shop".into())], ..Default::default() }),
            scope_logs: vec![ScopeLogs { log_records, ..Default::default() }],
            ..Default::default()
        }],
    })
}

#[test]
fn a_tracked_log_key_costs_under_160_bytes() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let registry = Registry::new();
    let cfg = LogRateLimiterConfig {
        key_fields: vec!["resource.service.name".into(), "attributes.user".into()],
        max_keys: 1_000_000,
        ..Default::default()
    };
    let mut l = LogRateLimiter::new(&cfg, &ctx("log_rate_limiter", Signal::Logs, &registry));
    let per_key = bytes_per_item(&mut l, records);
    assert_eq!(l.keys_tracked(), TRACKED + BATCH);
    println!("log_rate_limiter: {per_key:.1} live heap bytes per tracked key (key text ~40 bytes)");
    assert!(per_key < 160.0, "{per_key:.1} bytes per key");
}
