//! The hot path without sockets: decode an OTLP/gRPC trace request of 1000
//! spans (10 attributes each), run it through the `batch` processor, encode
//! the batch for export. Run with `cargo bench --bench hot_path`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
#[path = "support/trace_data.rs"]
mod trace_data;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use sluice::config::Duration;
use sluice::data::{Batch, EncodedBatch, Signal};
use sluice::processors::batch::{config::BatchConfig, BatchProcessor, BatchStage};
use sluice::processors::Processor;
use sluice::telemetry::Registry;
use std::time::Instant;
use trace_data::trace_request;

fn bench_hot_path(c: &mut Criterion) {
    let request = trace_request(1000);
    let wire = request.encode_to_vec();
    let registry = Registry::new();
    let cfg = BatchConfig {
        send_batch_size: 8192,
        send_batch_max_size: 0,
        timeout: Duration::from_millis(200),
        ..Default::default()
    };

    let mut group = c.benchmark_group("traces_1000_spans");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("decode", |b| b.iter(|| ExportTraceServiceRequest::decode(wire.as_slice()).unwrap()));
    group.bench_function("encode", |b| {
        let mut buf = Vec::with_capacity(wire.len());
        b.iter(|| {
            buf.clear();
            request.encode(&mut buf).unwrap();
        })
    });
    group.bench_function("decode_batch_encode", |b| {
        let mut processor = BatchStage::new(&cfg, Signal::Traces, "batch", &registry);
        let mut out = Vec::new();
        let mut buf = Vec::with_capacity(wire.len() * 9);
        b.iter_batched(
            || (),
            |_| {
                let decoded = ExportTraceServiceRequest::decode(wire.as_slice()).unwrap();
                processor.process(Batch::Traces(decoded), Instant::now(), &mut out);
                // Every ninth request fills a batch of 8192 spans and is encoded.
                for batch in out.drain(..) {
                    if let Batch::Traces(r) = batch {
                        buf.clear();
                        r.encode(&mut buf).unwrap();
                    }
                }
            },
            BatchSize::SmallInput,
        )
    });
    // The pass-through path: check instead of decode, batch by appending bytes.
    group.bench_function("check", |b| {
        b.iter(|| sluice::data::check::check_request(Signal::Traces, wire.as_slice()).unwrap())
    });
    // What the receivers run on a request they keep encoded: the check and
    // the decoded-size estimate admission needs, in one walk.
    group.bench_function("check_and_estimate", |b| {
        b.iter(|| sluice::data::check::check_and_estimate(Signal::Traces, wire.as_slice()).unwrap())
    });
    let wire_bytes = bytes::Bytes::from(wire.clone());
    group.bench_function("check_batch_passthrough", |b| {
        let mut processor: BatchProcessor<EncodedBatch> = BatchProcessor::new(&cfg, Signal::Traces, "batch", &registry);
        let mut out = Vec::new();
        let mut buf = Vec::with_capacity(wire.len() * 9);
        b.iter(|| {
            let items = sluice::data::check::check_request(Signal::Traces, &wire_bytes).unwrap();
            processor.add(EncodedBatch::checked(Signal::Traces, wire_bytes.clone(), items), Instant::now(), &mut out);
            for batch in out.drain(..) {
                buf.clear();
                batch.write_to(&mut buf);
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench_hot_path);
criterion_main!(benches);
