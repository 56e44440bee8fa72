//! The `head_sampler` on 1000-span batches (100 traces of 10 spans, one key
//! per span name): spans per second through `process`, with a warm decision
//! cache and key table
//! (`process`), and with new traces each batch (`process_new_traces`). Run with `cargo bench --bench samplers_head`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
#[path = "support/trace_data.rs"]
mod trace_data;

use sluice::config::Duration;
use sluice::data::{Batch, Signal};
use sluice::processors::head_sampler::{config::HeadSamplerConfig, HeadSampler};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::Instant;
use trace_data::trace_request;

fn bench_head_sampler(c: &mut Criterion) {
    let request = trace_request(1000);
    let ctx = ProcessorContext {
        id: "head_sampler".to_string(),
        signal: Signal::Traces,
        registry: Registry::new(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    let cfg = HeadSamplerConfig {
        traces_per_second: 100.0,
        adjustment_interval: Duration::from_secs(10),
        ..Default::default()
    };

    let mut group = c.benchmark_group("head_sampler_1000_spans");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("process", |b| {
        let mut sampler = HeadSampler::new(&cfg, &ctx);
        let start = Instant::now();
        let mut out = Vec::new();
        // Warm-up: fill the key table and run one adjustment, so the measured
        // batches are sampled at a settled probability.
        sampler.process(Batch::Traces(request.clone()), start, &mut out);
        sampler.tick(start + std::time::Duration::from_secs(10), &mut out);
        let now = start + std::time::Duration::from_secs(11);
        b.iter_batched(
            || Batch::Traces(request.clone()),
            |batch| {
                out.clear();
                sampler.process(batch, now, &mut out);
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("process_new_traces", |b| {
        let mut sampler = HeadSampler::new(&cfg, &ctx);
        let start = Instant::now();
        let mut out = Vec::new();
        sampler.process(Batch::Traces(request.clone()), start, &mut out);
        sampler.tick(start + std::time::Duration::from_secs(10), &mut out);
        let now = start + std::time::Duration::from_secs(11);
        let mut round = 0u64;
        b.iter_batched(
            || {
                // Fresh trace IDs each round: every trace's first span is a
                // cache miss that builds a key and decides.
                round += 1;
                let mut r = request.clone();
                for span in r
                    .resource_spans
                    .iter_mut()
                    .flat_map(|rs| rs.scope_spans.iter_mut())
                    .flat_map(|ss| ss.spans.iter_mut())
                {
                    // The support data's IDs share their low bytes (the
                    // randomness); mix them so decisions vary as in real traffic.
                    let hi = u64::from_be_bytes(span.trace_id[..8].try_into().unwrap_or_default());
                    let low = hi.wrapping_add(round << 20).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                    span.trace_id[8..].copy_from_slice(&low.to_be_bytes());
                }
                Batch::Traces(r)
            },
            |batch| {
                out.clear();
                sampler.process(batch, now, &mut out);
            },
            BatchSize::SmallInput,
        );
    });
    group.finish();
}

criterion_group!(benches, bench_head_sampler);
criterion_main!(benches);
