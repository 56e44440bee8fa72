//! OTTL throughput in spans/s on 1000-span batches: a 3-statement
//! `transform` and a 2-condition `filter`, as the issue sizes them.
//! Run with `cargo bench --bench ottl`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sluice::data::fixtures::kv;
use sluice::data::{Batch, Signal};
use sluice::processors::filter::config::{FilterConfig, TraceConditions};
use sluice::processors::filter::FilterProcessor;
use sluice::processors::transform::config::{StatementsEntry, TransformConfig};
use sluice::processors::transform::TransformProcessor;
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::Instant;

/// 1000 spans over 10 services, 4 attributes each; one in ten a health check.
fn spans() -> ExportTraceServiceRequest {
    let resource_spans = (0..10)
        .map(|s| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", format!("service-{s}")), kv("host.name", format!("h{s}"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..100)
                    .map(|i| Span {
                        name: if i % 10 == 0 { "GET /health".into() } else { format!("GET /api/{}", i % 7) },
                        kind: 2,
                        attributes: vec![
                            kv("http.method", "GET"),
                            kv("http.route", format!("/api/{}", i % 7)),
                            kv("user", format!("u{i}")),
                            kv("net.peer.name", format!("peer-{}", i % 13)),
                        ],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest { resource_spans }
}

fn ctx(id: &str) -> ProcessorContext {
    ProcessorContext {
        id: id.into(),
        signal: Signal::Traces,
        registry: Registry::new(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("ottl_1000_spans");
    group.throughput(Throughput::Elements(1000));
    let transform = TransformConfig {
        trace_statements: [
            r#"set(span.attributes["env"], "prod") where resource.attributes["service.name"] == "service-3""#,
            r#"replace_pattern(span.attributes["http.route"], "^/api/([0-9]+)$", "/api/{id}")"#,
            r#"delete_key(span.attributes, "user")"#,
        ]
        .iter()
        .map(|s| StatementsEntry::Flat(s.to_string()))
        .collect(),
        ..Default::default()
    };
    let filter = FilterConfig {
        error_mode: Some("ignore".into()),
        traces: TraceConditions {
            span: Some(vec![
                r#"name == "GET /health""#.into(),
                r#"attributes["http.route"] == "/api/3" and resource.attributes["service.name"] == "service-1""#.into(),
            ]),
            spanevent: None,
        },
        ..Default::default()
    };
    let mut procs: Vec<(&str, Box<dyn Processor>)> = vec![
        // What the harness costs: the batch handed on and dropped.
        ("pass_through_baseline", Box::new(sluice::processors::PassThrough)),
        ("transform_3_statements", Box::new(TransformProcessor::from_config(&transform, &ctx("transform")).unwrap())),
        ("filter_2_conditions", Box::new(FilterProcessor::new(&filter, &ctx("filter")).unwrap())),
    ];
    let batch = Batch::Traces(spans());
    for (name, p) in procs.iter_mut() {
        let now = Instant::now();
        let mut out = Vec::new();
        group.bench_function(*name, |b| {
            b.iter_batched(
                || batch.clone(),
                |batch| {
                    out.clear();
                    p.process(batch, now, &mut out);
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
