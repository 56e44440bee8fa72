//! Connector throughput in spans/s on 1000-span batches (10 services, 100
//! spans each, 10 span attributes of which 4 are configured dimensions):
//! `spanmetrics` (aggregating into existing series, the steady state),
//! `count` (spans by one attribute, and with an OTTL condition), `routing`
//! (by resource, and span by span) and `slo` (one SLO per service, bad by
//! latency; and with an OTTL condition each). Run with
//! `cargo bench --bench connectors`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[path = "support/connector_build.rs"]
mod connector_build;

use connector_build::{build, build_to};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sluice::connectors::Now;
use sluice::data::fixtures::kv;
use sluice::data::Payload;
use sluice::data::{Batch, Signal};

fn spans() -> Batch {
    let resource_spans = (0..10)
        .map(|s| ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", format!("service-{s}"))],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..100u64)
                    .map(|i| Span {
                        name: format!("GET /route/{}", i % 20),
                        kind: 2,
                        start_time_unix_nano: 1_000_000_000,
                        end_time_unix_nano: 1_000_000_000 + (i % 37) * 1_300_000,
                        attributes: (0..10).map(|a| kv(&format!("attr.{a}"), format!("v{}", (i + a) % 5))).collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .collect();
    Batch::Traces(ExportTraceServiceRequest { resource_spans })
}

fn bench(c: &mut Criterion) {
    let batch = spans();
    let mut group = c.benchmark_group("connectors");
    group.throughput(Throughput::Elements(1000));
    let mut spanmetrics = build(
        &sluice::connectors::spanmetrics::FACTORY,
        "dimensions:\n  - name: attr.0\n  - name: attr.1\n  - name: attr.2\n  - name: attr.3\n",
    );
    let mut out = Vec::new();
    group.bench_function("spanmetrics", |b| {
        b.iter(|| {
            spanmetrics.consume(&batch, Now::current(), &mut out);
            out.clear();
        })
    });
    let mut count =
        build(&sluice::connectors::count::FACTORY, "spans:\n  by.attr:\n    attributes:\n      - key: attr.0\n");
    group.bench_function("count", |b| {
        b.iter(|| {
            count.consume(&batch, Now::current(), &mut out);
            out.clear();
        })
    });
    let mut count_if = build(
        &sluice::connectors::count::FACTORY,
        "spans:\n  by.attr:\n    conditions: ['attributes[\"attr.1\"] == \"v2\" or kind == SPAN_KIND_CLIENT']\n    attributes:\n      - key: attr.0\n",
    );
    group.bench_function("count_with_condition", |b| {
        b.iter(|| {
            count_if.consume(&batch, Now::current(), &mut out);
            out.clear();
        })
    });
    // Three routes by service and a default: 10 services, so routes take
    // 1, 1 and 1 resources and the default the other 7.
    let mut by_resource = build_to(
        &sluice::connectors::routing::FACTORY,
        "table:\n  - condition: attributes[\"service.name\"] == \"service-1\"\n    pipelines: [traces/a]\n  - condition: attributes[\"service.name\"] == \"service-5\"\n    pipelines: [traces/b]\n  - statement: route() where attributes[\"service.name\"] == \"service-9\"\n    pipelines: [traces/c]\ndefault_pipelines: [traces/d]\n",
        Signal::Traces,
    );
    let payload = Payload::Decoded(batch.clone());
    let mut routed = Vec::new();
    group.bench_function("routing_resource", |b| {
        b.iter(|| {
            by_resource.consume_routed(&payload, Now::current(), &mut routed).unwrap();
            routed.clear();
        })
    });
    // Span by span: a fifth of the spans (route 0..3 of 20) match the first route.
    let mut by_span = build_to(
        &sluice::connectors::routing::FACTORY,
        "table:\n  - context: span\n    condition: name == \"GET /route/0\" or name == \"GET /route/1\" or name == \"GET /route/2\" or name == \"GET /route/3\"\n    pipelines: [traces/a]\n  - context: span\n    condition: attributes[\"attr.2\"] == \"v4\"\n    pipelines: [traces/b]\ndefault_pipelines: [traces/d]\n",
        Signal::Traces,
    );
    group.bench_function("routing_span", |b| {
        b.iter(|| {
            by_span.consume_routed(&payload, Now::current(), &mut routed).unwrap();
            routed.clear();
        })
    });
    // One SLO per service (10), every span an event of one of them.
    let slos: String = (0..10)
        .map(|s| {
            format!("  - {{name: availability, service: service-{s}, objective: 99.9, bad: {{latency_above: 30ms}}}}\n")
        })
        .collect();
    let mut slo = build(&sluice::connectors::slo::FACTORY, &format!("slos:\n{slos}"));
    group.bench_function("slo", |b| {
        b.iter(|| {
            slo.consume(&batch, Now::current(), &mut out);
            out.clear();
        })
    });
    // The same with an OTTL condition on each SLO (spans are copied to be evaluated).
    let slos: String = (0..10)
        .map(|s| {
            format!(
                "  - {{name: a, service: service-{s}, objective: 99.9, condition: 'attributes[\"attr.0\"] != \"v9\"'}}\n"
            )
        })
        .collect();
    let mut slo_condition = build(&sluice::connectors::slo::FACTORY, &format!("slos:\n{slos}"));
    group.bench_function("slo_condition", |b| {
        b.iter(|| {
            slo_condition.consume(&batch, Now::current(), &mut out);
            out.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
