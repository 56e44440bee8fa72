//! Sampler throughput on 1000-span batches: spans/s for each mode of the
//! `probabilistic_sampler`. Run with `cargo bench --bench samplers`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
#[path = "support/trace_data.rs"]
mod trace_data;

use sluice::data::{Batch, Signal};
use sluice::processors::probabilistic_sampler::{config::ProbabilisticSamplerConfig, ProbabilisticSampler};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::Instant;
use trace_data::trace_request;

fn bench_samplers(c: &mut Criterion) {
    // The shared request's trace IDs share their low 8 bytes; give each trace
    // distinct randomness so every mode keeps its share and writes tracestate.
    let mut request = trace_request(1000);
    for span in
        request.resource_spans.iter_mut().flat_map(|r| r.scope_spans.iter_mut()).flat_map(|s| s.spans.iter_mut())
    {
        let trace = u64::from_be_bytes(span.trace_id[..8].try_into().unwrap_or([0; 8]));
        let mut x = trace.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        x ^= x >> 29;
        span.trace_id[8..].copy_from_slice(&x.to_be_bytes());
    }
    let mut group = c.benchmark_group("probabilistic_sampler_1000_spans");
    group.throughput(Throughput::Elements(1000));
    for mode in ["hash_seed", "proportional", "equalizing"] {
        for pct in [10.0, 50.0] {
            let cfg = ProbabilisticSamplerConfig {
                sampling_percentage: pct,
                mode: Some(mode.to_string()),
                ..Default::default()
            };
            let ctx = ProcessorContext {
                id: "probabilistic_sampler".to_string(),
                signal: Signal::Traces,
                registry: Registry::new(),
                worker: 0,
                workers: 1,
                shared: Default::default(),
                storage_dir: None,
            };
            let mut sampler = ProbabilisticSampler::new(&cfg, &ctx);
            let mut out = Vec::with_capacity(1);
            group.bench_function(format!("{mode}_{pct}pct"), |b| {
                b.iter_batched(
                    || Batch::Traces(request.clone()),
                    |batch| {
                        out.clear();
                        sampler.process(batch, Instant::now(), &mut out);
                    },
                    BatchSize::LargeInput,
                )
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_samplers);
criterion_main!(benches);
