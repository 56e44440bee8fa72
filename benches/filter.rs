//! `filter` throughput in items/s on 1000-item batches: spans by strict names
//! and attributes, log records by regexp bodies and severity.
//! Run with `cargo bench --bench filter`.

// The binary runs on mimalloc; measure what it runs.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sluice::data::fixtures::kv;
use sluice::data::{Batch, Signal};
use sluice::processors::filter::config::*;
use sluice::processors::filter::FilterProcessor;
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::Instant;

fn string(s: String) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(s)) })
}

fn resource(s: usize) -> Option<Resource> {
    Some(Resource { attributes: vec![kv("service.name", format!("service-{s}"))], ..Default::default() })
}

/// 1000 spans over 10 services; one in ten is a health check.
fn spans() -> ExportTraceServiceRequest {
    let resource_spans = (0..10)
        .map(|s| ResourceSpans {
            resource: resource(s),
            scope_spans: vec![ScopeSpans {
                spans: (0..100)
                    .map(|i| Span {
                        name: if i % 10 == 0 { "GET /health".into() } else { format!("GET /api/{}", i % 7) },
                        attributes: vec![kv("http.route", format!("/api/{}", i % 7)), kv("user", format!("u{i}"))],
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

/// 1000 records over 10 services, INFO and DEBUG, one in five a health check.
fn logs() -> ExportLogsServiceRequest {
    let resource_logs = (0..10)
        .map(|s| ResourceLogs {
            resource: resource(s),
            scope_logs: vec![ScopeLogs {
                log_records: (0..100)
                    .map(|i| LogRecord {
                        severity_number: if i % 2 == 0 { 9 } else { 5 },
                        body: string(if i % 5 == 0 {
                            format!("GET /health 200 in {i}ms")
                        } else {
                            format!("request {} for user {i} done", i * 7919)
                        }),
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

fn ctx(signal: Signal) -> ProcessorContext {
    ProcessorContext {
        id: "filter".into(),
        signal,
        registry: Registry::new(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    }
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("filter_1000_items");
    group.throughput(Throughput::Elements(1000));
    let span_cfg = FilterConfig {
        spans: SpanFilters {
            exclude: Some(Box::new(SpanMatch {
                match_type: Some("strict".into()),
                span_names: vec!["GET /health".into(), "GET /ready".into()],
                ..Default::default()
            })),
            include: Some(Box::new(SpanMatch {
                match_type: Some("strict".into()),
                attributes: vec![AttributeMatch { key: "http.route".into(), value: None }],
                ..Default::default()
            })),
            ..Default::default()
        },
        ..Default::default()
    };
    let log_cfg = FilterConfig {
        logs: LogFilters {
            include: Some(Box::new(LogMatch {
                match_type: Some("regexp".into()),
                severity_number: Some(SeverityMatch { min: "INFO".into(), match_undefined: false }),
                ..Default::default()
            })),
            exclude: Some(Box::new(LogMatch {
                match_type: Some("regexp".into()),
                bodies: vec!["^GET /(health|ready) ".into()],
                ..Default::default()
            })),
            ..Default::default()
        },
        ..Default::default()
    };
    let cases = [
        ("spans_strict", span_cfg, Signal::Traces, Batch::Traces(spans())),
        ("logs_regexp", log_cfg, Signal::Logs, Batch::Logs(logs())),
    ];
    for (name, cfg, signal, batch) in cases {
        let mut p = FilterProcessor::new(&cfg, &ctx(signal)).unwrap();
        let now = Instant::now();
        let mut out = Vec::new();
        group.bench_function(name, |b| {
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
