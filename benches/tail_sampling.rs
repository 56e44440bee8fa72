//! Spans per second through `tail_sampling` with ten policies, on batches of
//! 1000 spans (100 traces of 10 spans): buffering, deciding at the deadline
//! and regrouping the kept spans (encoded), for a request as received and
//! for one decoded; and 20,000 spans (2,000 traces) buffered in memory or,
//! with `storage` and `max_memory_mib: 2`, mostly spilled to disk and read
//! back when kept. Run with `cargo bench --bench tail_sampling`.

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

/// 2,000 ten-span traces in 20 requests of 1,000 spans, buffered and
/// decided: all in memory, or with the spill store active (`max_memory_mib:
/// 2`, so most spans are written to disk and, as every trace is kept here,
/// all read back: the worst case).
/// Prints the bytes per buffered span in memory and on disk once.
fn bench_spill(c: &mut Criterion) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    let all = trace_request(20_000);
    let mut requests = Vec::new();
    for rs in &all.resource_spans {
        for ss in &rs.scope_spans {
            for chunk in ss.spans.chunks(1000) {
                let mut r = rs.clone();
                let mut s = ss.clone();
                s.spans = chunk.to_vec();
                r.scope_spans = vec![s];
                let req = ExportTraceServiceRequest { resource_spans: vec![r] };
                requests.push(Payload::Encoded(EncodedBatch::encode(&Batch::Traces(req))));
            }
        }
    }
    let base: TailSamplingConfig = serde_json::from_str(CONFIG).expect("bench config");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut group = c.benchmark_group("tail_sampling_20000_spans_buffered");
    group.throughput(Throughput::Elements(20_000));
    for (name, spill) in [("in_memory", false), ("spill_active", true)] {
        let mut cfg = base.clone();
        if spill {
            // Room for every trace's facts (under 1 KiB each), not their spans.
            cfg.max_memory_mib = 2;
            cfg.storage = Some("file_storage".into());
        }
        let registry = Registry::new();
        let ctx = ProcessorContext {
            id: "tail_sampling".into(),
            signal: Signal::Traces,
            registry: registry.clone(),
            worker: 0,
            workers: 1,
            shared: Default::default(),
            storage_dir: spill.then(|| dir.path().to_path_buf()),
        };
        let t0 = Instant::now();
        {
            // One run outside the timing, for the sizes.
            let mut p = TailSamplingProcessor::new(&cfg, &ctx);
            let mut out = Vec::new();
            for r in &requests {
                p.process_payload(r.clone(), t0, &mut out);
            }
            let m = |n: &str| registry.value(n, &[("processor", "tail_sampling")]).unwrap_or(0.0);
            let spilled = m("sluice_tail_sampling_spilled_spans_total");
            let traces = m("sluice_tail_sampling_traces_in_memory");
            let early = "sluice_tail_sampling_early_decisions_total";
            eprintln!(
                "{name}: {:.0} accounted bytes in memory per buffered trace ({traces} traces, {:.0} of 20000 spans \
                 in memory), {:.0} bytes on disk per spilled span ({spilled} spans spilled), early decisions {}",
                m("sluice_tail_sampling_bytes_in_memory") / traces,
                20_000.0 - spilled,
                if spilled > 0.0 { m("sluice_tail_sampling_bytes_on_disk") / spilled } else { 0.0 },
                registry.value(early, &[("processor", "tail_sampling"), ("reason", "memory")]).unwrap_or(0.0),
            );
        }
        group.bench_function(name, |b| {
            b.iter_batched(
                || (TailSamplingProcessor::new(&cfg, &ctx), requests.clone()),
                |(mut p, requests)| {
                    let mut out = Vec::new();
                    for r in requests {
                        p.process_payload(r, t0, &mut out);
                    }
                    p.tick_payload(t0 + Duration::from_secs(11), &mut out);
                    out
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

criterion_group!(benches, bench_tail_sampling, bench_spill);
criterion_main!(benches);
