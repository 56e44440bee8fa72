//! The persistent sending queue: write rate (push of one batch: encode,
//! append, fsync per policy) and replay rate (open a directory of undelivered
//! records, then pop and ack them all), with `fsync` off and on.
//! Throughput is in bytes of records; batches/s is 1 / time per batch. The
//! 4-thread write shows the group commit of concurrent pushes.
//! Run with `cargo bench --bench persistent_queue`.

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sluice::data::Batch;
use sluice::exporters::otlp_common::FullQueuePolicy;
use sluice::queue::persistent::{
    encode_payload, PersistentOptions, PersistentQueue, DEFAULT_SEGMENT_BYTES, HEADER_LEN,
};
use sluice::telemetry::{Counter, PersistentQueueMetrics};
use std::path::Path;
use std::time::{Duration, Instant};

/// 100 spans with a few attributes: about 20 KB encoded.
fn batch() -> Batch {
    let kv = |k: &str, v: String| KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(v)) }),
        ..Default::default()
    };
    let spans = (0..100u64)
        .map(|i| Span {
            trace_id: (i / 10).to_be_bytes().repeat(2),
            span_id: i.to_be_bytes().to_vec(),
            name: format!("GET /api/v1/items/{}", i % 13),
            start_time_unix_nano: 1_700_000_000_000_000_000 + i,
            end_time_unix_nano: 1_700_000_000_000_500_000 + i,
            attributes: vec![
                kv("http.method", "GET".into()),
                kv("http.route", format!("/api/v1/items/{}", i % 13)),
                kv("user.agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36".into()),
            ],
            ..Default::default()
        })
        .collect();
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    })
}

fn open(dir: &Path, fsync: bool) -> PersistentQueue {
    let opts = PersistentOptions {
        dir: dir.to_path_buf(),
        fsync,
        capacity: u64::MAX,
        sizer: sluice::queue::Sizer::Requests,
        max_bytes: u64::MAX,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        policy: FullQueuePolicy::Block,
        name: "bench".into(),
    };
    PersistentQueue::open(opts, PersistentQueueMetrics::default(), Counter::default()).unwrap()
}

fn drain(q: &PersistentQueue) -> usize {
    let mut n = 0;
    while let Some((_, t)) = q.try_pop() {
        q.ack(t);
        n += 1;
    }
    n
}

fn bench(c: &mut Criterion) {
    let b = sluice::data::Payload::Decoded(batch());
    let record = HEADER_LEN + encode_payload(&b).len() as u64;
    let mut g = c.benchmark_group("persistent_queue");
    g.throughput(Throughput::Bytes(record));
    for fsync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path(), fsync);
        g.bench_function(format!("write fsync={fsync}"), |bench| {
            bench.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    q.push(&b);
                }
                let took = start.elapsed();
                drain(&q);
                took
            })
        });
    }
    // Several pipeline workers pushing at once share their fsyncs (group commit).
    const THREADS: u64 = 4;
    {
        let dir = tempfile::tempdir().unwrap();
        let q = open(dir.path(), true);
        g.bench_function(format!("write fsync=true {THREADS} threads"), |bench| {
            bench.iter_custom(|iters| {
                let per_thread = iters.div_ceil(THREADS);
                let start = Instant::now();
                std::thread::scope(|sc| {
                    for _ in 0..THREADS {
                        sc.spawn(|| {
                            for _ in 0..per_thread {
                                q.push(&b);
                            }
                        });
                    }
                });
                let took = start.elapsed();
                drain(&q);
                // Time per batch: the threads pushed per_thread * THREADS of them.
                took.mul_f64(iters as f64 / (per_thread * THREADS) as f64)
            })
        });
    }
    // Replay: open a queue left with REPLAY undelivered records, pop and ack them all.
    const REPLAY: u64 = 500;
    g.throughput(Throughput::Bytes(record * REPLAY));
    for fsync in [false, true] {
        g.bench_function(format!("replay {REPLAY} batches fsync={fsync}"), |bench| {
            bench.iter_custom(|iters| {
                let mut took = Duration::ZERO;
                for _ in 0..iters {
                    let dir = tempfile::tempdir().unwrap();
                    {
                        let q = open(dir.path(), false);
                        for _ in 0..REPLAY {
                            q.push(&b);
                        }
                    }
                    let start = Instant::now();
                    let q = open(dir.path(), fsync);
                    assert_eq!(drain(&q) as u64, REPLAY);
                    took += start.elapsed();
                }
                took
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = bench
}
criterion_main!(benches);
