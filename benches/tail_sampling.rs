//! Spans per second through `tail_sampling` with ten policies, on batches of
//! 1000 spans (100 traces of 10 spans): buffering, deciding at the deadline
//! and regrouping the kept spans (encoded), for a request as received and
//! for one decoded. Run with `cargo bench --bench tail_sampling`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
#[path = "support/trace_data.rs"]
mod trace_data;

use sluice::data::{Batch, EncodedBatch, Payload, Signal};
use sluice::processors::tail_sampling::{config::TailSamplingConfig, TailSamplingProcessor};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::{Duration, Instant};
use trace_data::trace_request;

const CONFIG: &str = r#"{
  "decision_wait": "10s",
  "policies": [
    {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
    {"name": "slow", "type": "latency", "latency": {"threshold_ms": 500}},
    {"name": "route", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/api/v1/items/7"]}},
    {"name": "re", "type": "string_attribute", "string_attribute": {"key": "server.address", "values": ["^payments\\..*"], "enabled_regex_matching": true}},
    {"name": "big", "type": "numeric_attribute", "numeric_attribute": {"key": "http.response.status_code", "min_value": 500}},
    {"name": "retry", "type": "boolean_attribute", "boolean_attribute": {"key": "retry", "value": true}},
    {"name": "wide", "type": "span_count", "span_count": {"min_spans": 50}},
    {"name": "ts", "type": "trace_state", "trace_state": {"key": "vendor", "values": ["keep"]}},
    {"name": "limit", "type": "rate_limiting", "rate_limiting": {"spans_per_second": 1000000}},
    {"name": "rest", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}}
  ]
}"#;

fn bench_tail_sampling(c: &mut Criterion) {
    let cfg: TailSamplingConfig = serde_json::from_str(CONFIG).expect("bench config");
    let request = trace_request(1000);
    let registry = Registry::new();
    let ctx = ProcessorContext {
        id: "tail_sampling".into(),
        signal: Signal::Traces,
        registry: registry.clone(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    let mut group = c.benchmark_group("tail_sampling_1000_spans");
    group.throughput(Throughput::Elements(1000));
    // As the pipeline runs it: the request as received (checked, not
    // decoded) in, kept spans out still encoded.
    let encoded = EncodedBatch::encode(&Batch::Traces(request.clone()));
    for (name, input) in
        [("as_received", Payload::Encoded(encoded)), ("decoded", Payload::Decoded(Batch::Traces(request.clone())))]
    {
        group.bench_function(name, |b| {
            let t0 = Instant::now();
            b.iter_batched(
                || (TailSamplingProcessor::new(&cfg, &ctx), input.clone()),
                |(mut p, payload)| {
                    let mut out = Vec::new();
                    p.process_payload(payload, t0, &mut out);
                    p.tick_payload(t0 + Duration::from_secs(11), &mut out);
                    out
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_tail_sampling);
criterion_main!(benches);
