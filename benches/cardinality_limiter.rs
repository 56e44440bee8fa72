//! Cardinality limiter throughput on batches of 1000 data points, in data
//! points/s: series already admitted, a delta counter overflowing, a
//! cumulative counter overflowing (folded by gains) and `drop_attributes`.
//! Run with `cargo bench --bench cardinality_limiter`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::AggregationTemporality;
use sluice::data::{Batch, Signal};
use sluice::processors::cardinality_limiter::{config::CardinalityLimiterConfig, CardinalityLimiter};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::Instant;

#[path = "support/metric_data.rs"]
mod metric_data;

const POINTS: usize = 1000;

/// 1000 points of one counter, one per user (from `first`), three attributes each.
fn request(temporality: AggregationTemporality, first: usize) -> ExportMetricsServiceRequest {
    metric_data::user_counter(temporality, first, POINTS)
}

fn bench_cardinality_limiter(c: &mut Criterion) {
    let mut group = c.benchmark_group("cardinality_limiter_1000_points");
    group.throughput(Throughput::Elements(POINTS as u64));
    let cases: [(&str, i64, &str, AggregationTemporality); 4] = [
        ("admitted", 2000, "overflow", AggregationTemporality::Delta),
        ("overflow_delta", 100, "overflow", AggregationTemporality::Delta),
        ("overflow_cumulative", 100, "overflow", AggregationTemporality::Cumulative),
        ("drop_attributes", 100, "drop_attributes", AggregationTemporality::Delta),
    ];
    for (name, limit, action, temporality) in cases {
        let cfg = CardinalityLimiterConfig {
            default_limit: limit,
            action: action.to_string(),
            drop_attributes: vec!["user_id".to_string()],
            ..Default::default()
        };
        let ctx = ProcessorContext {
            id: "cardinality_limiter".to_string(),
            signal: Signal::Metrics,
            registry: Registry::new(),
            worker: 0,
            workers: 1,
            shared: Default::default(),
            storage_dir: None,
        };
        let mut limiter = CardinalityLimiter::new(&cfg, &ctx);
        let req = request(temporality, 0);
        let mut out = Vec::with_capacity(1);
        // Warm the tables so the measurement is the steady state.
        limiter.process(Batch::Metrics(req.clone()), Instant::now(), &mut out);
        group.bench_function(name, |b| {
            b.iter_batched(
                || Batch::Metrics(req.clone()),
                |batch| {
                    out.clear();
                    limiter.process(batch, Instant::now(), &mut out);
                },
                BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_cardinality_limiter);
criterion_main!(benches);
