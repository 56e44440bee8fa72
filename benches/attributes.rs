//! `attributes` processor throughput in spans/s on 1000-span batches of 10
//! attributes each: a cheap action list (insert, update, delete by key) and
//! a regex-heavy one (delete by pattern, extract, hash, convert); and the
//! `resource` processor on 100 resources of 10 spans each (its cost is per
//! resource, not per span).
//! Run with `cargo bench --bench attributes`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sluice::data::fixtures::kv;
use sluice::data::{Batch, Signal};
use sluice::processors::attributes::{config::AttributesConfig, AttributesProcessor};
use sluice::processors::resource::{config::ResourceConfig, ResourceProcessor};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::Instant;

fn request() -> ExportTraceServiceRequest {
    let spans = (0..1000)
        .map(|i| Span {
            name: format!("GET /api/v1/users/{}", i % 50),
            attributes: vec![
                kv("http.method", Value::StringValue("GET".into())),
                kv("http.url", Value::StringValue(format!("https://api.example.com/v1/users/{i}"))),
                kv("http.status_code", Value::StringValue("200".into())),
                kv("user.id", Value::StringValue(format!("user-{i}"))),
                kv("user.email", Value::StringValue(format!("u{i}@example.com"))),
                kv("net.peer.port", Value::IntValue(443)),
                kv("db.statement", Value::StringValue("SELECT * FROM users WHERE id = ?".into())),
                kv("retry", Value::BoolValue(false)),
                kv("tmp.debug", Value::StringValue("x".into())),
                kv("tmp.trace", Value::StringValue("y".into())),
            ],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn bench(c: &mut Criterion) {
    let configs = [
        (
            "insert_update_delete",
            serde_json::json!({"actions": [
                {"key": "env", "value": "production", "action": "insert"},
                {"key": "retry", "value": true, "action": "update"},
                {"key": "db.statement", "action": "delete"},
            ]}),
        ),
        (
            "pattern_extract_hash_convert",
            serde_json::json!({"actions": [
                {"pattern": "^tmp\\.", "action": "delete"},
                {"key": "http.url", "pattern": "^https://(?P<http_host>[^/]+)/(?P<api_version>v\\d+)/", "action": "extract"},
                {"key": "user.email", "action": "hash"},
                {"key": "http.status_code", "action": "convert", "converted_type": "int"},
            ]}),
        ),
    ];
    let req = request();
    let mut group = c.benchmark_group("attributes_1000_spans");
    group.throughput(Throughput::Elements(1000));
    for (name, cfg) in configs {
        let cfg: AttributesConfig = serde_json::from_value(cfg).unwrap();
        let ctx = ProcessorContext {
            id: "attributes".into(),
            signal: Signal::Traces,
            registry: Registry::new(),
            worker: 0,
            workers: 1,
            shared: Default::default(),
            storage_dir: None,
        };
        let mut p = AttributesProcessor::new(&cfg, &ctx).unwrap();
        let now = Instant::now();
        group.bench_function(name, |b| {
            b.iter_batched(
                || (Batch::Traces(req.clone()), Vec::with_capacity(1)),
                |(batch, mut out)| {
                    p.process(batch, now, &mut out);
                    // Returned, so criterion drops the batch outside the timing:
                    // what is measured is the actions, not freeing 1000 spans.
                    out
                },
                BatchSize::SmallInput,
            )
        });
    }

    // resource: 100 resources of 10 spans, each with 5 resource attributes.
    let mut spans = req.resource_spans[0].scope_spans[0].spans.clone().into_iter();
    let per_resource = ExportTraceServiceRequest {
        resource_spans: (0..100)
            .map(|r| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", Value::StringValue(format!("svc-{r}"))),
                        kv("service.version", Value::StringValue("1.2.3".into())),
                        kv("host.name", Value::StringValue(format!("node-{}", r % 7))),
                        kv("process.pid", Value::IntValue(1000 + r)),
                        kv("telemetry.sdk.name", Value::StringValue("opentelemetry".into())),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans { spans: spans.by_ref().take(10).collect(), ..Default::default() }],
                ..Default::default()
            })
            .collect(),
    };
    let cfg: ResourceConfig = serde_json::from_value(serde_json::json!({"attributes": [
        {"key": "k8s.cluster.name", "value": "prod-eu", "action": "upsert"},
        {"key": "process.pid", "action": "delete"},
        {"key": "host.name", "action": "hash"},
    ]}))
    .unwrap();
    let ctx = ProcessorContext {
        id: "resource".into(),
        signal: Signal::Traces,
        registry: Registry::new(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    let mut p = ResourceProcessor::new(&cfg, &ctx).unwrap();
    let now = Instant::now();
    group.bench_function("resource_upsert_delete_hash_100_resources", |b| {
        b.iter_batched(
            || (Batch::Traces(per_resource.clone()), Vec::with_capacity(1)),
            |(batch, mut out)| {
                p.process(batch, now, &mut out);
                out
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
