//! `log_rate_limiter` throughput in log records/s on 1000-record batches:
//! a flood of few keys (most records suppressed) and many keys (most kept).
//! Run with `cargo bench --bench log_rate_limiter`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use sluice::data::{Batch, Signal};
use sluice::processors::log_rate_limiter::{config::LogRateLimiterConfig, LogRateLimiter};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::{Duration, Instant};

fn string(s: String) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(s)) })
}

/// 1000 records over 10 services, `templates` body templates each with varying numbers.
fn request(templates: usize) -> ExportLogsServiceRequest {
    let resource_logs = (0..10)
        .map(|s| ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: string(format!("service-{s}")),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: (0..100)
                    .map(|i| LogRecord {
                        time_unix_nano: 1_700_000_000_000_000_000 + i,
                        severity_number: if i % 50 == 0 { 17 } else { 9 },
                        severity_text: if i % 50 == 0 { "ERROR".into() } else { "INFO".into() },
                        body: string(format!(
                            "request {} for user {} failed in template {} after {}ms",
                            i * 7919,
                            i,
                            i as usize % templates,
                            i % 13
                        )),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportLogsServiceRequest { resource_logs }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("log_rate_limiter_1000_records");
    group.throughput(Throughput::Elements(1000));
    for (name, templates) in [("flood_10_keys", 1), ("spread_1000_keys", 100)] {
        let req = request(templates);
        let ctx = ProcessorContext {
            id: "log_rate_limiter".into(),
            signal: Signal::Logs,
            registry: Registry::new(),
            worker: 0,
            workers: 1,
            shared: Default::default(),
            storage_dir: None,
        };
        let mut p = LogRateLimiter::new(&LogRateLimiterConfig::default(), &ctx);
        let t0 = Instant::now();
        let mut step = 0u64;
        let mut out = Vec::new();
        group.bench_function(name, |b| {
            b.iter_batched(
                || Batch::Logs(req.clone()),
                |batch| {
                    // Each batch 1ms after the last: a steady 1M records/s.
                    step += 1;
                    let now = t0 + Duration::from_millis(step);
                    out.clear();
                    p.process(batch, now, &mut out);
                    if p.next_deadline().is_some_and(|d| now >= d) {
                        p.tick(now, &mut out);
                    }
                    out.len()
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
