use super::*;
use crate::data::Signal;
use crate::processors::attributes::tests::{actions_of, attrs, V};
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

fn processor(yaml: &str) -> ResourceProcessor {
    let ctx = ProcessorContext {
        id: "resource".into(),
        signal: Signal::Logs,
        registry: Registry::new(),
        worker: 0,
        workers: 1,
        shared: Default::default(),
        storage_dir: None,
    };
    ResourceProcessor::new(&ResourceConfig { attributes: actions_of(yaml) }, &ctx).unwrap()
}

const ACTIONS: &str = "- {key: deployment.environment, value: prod, action: upsert}\n\
                       - {key: host.name, action: delete}\n\
                       - {key: service.id, from_attribute: service.name, action: insert}";

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: attrs(&[
            ("service.name", V::S("api")),
            ("host.name", V::S("h1")),
            ("deployment.environment", V::S("dev")),
        ]),
        ..Default::default()
    })
}

fn expected() -> Option<Resource> {
    Some(Resource {
        attributes: attrs(&[
            ("service.name", V::S("api")),
            ("deployment.environment", V::S("prod")),
            ("service.id", V::S("api")),
        ]),
        ..Default::default()
    })
}

fn one(p: &mut ResourceProcessor, b: Batch) -> Batch {
    let mut out = Vec::new();
    p.process(b, Instant::now(), &mut out);
    out.pop().unwrap()
}

#[test]
fn resource_attributes_of_traces_are_acted_on_and_spans_are_not() {
    let mut p = processor(ACTIONS);
    let span = Span { attributes: attrs(&[("host.name", V::S("h"))]), ..Default::default() };
    let b = Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource(),
            scope_spans: vec![ScopeSpans { spans: vec![span.clone()], ..Default::default() }],
            ..Default::default()
        }],
    });
    let Batch::Traces(r) = one(&mut p, b) else { panic!() };
    assert_eq!(r.resource_spans[0].resource, expected());
    assert_eq!(r.resource_spans[0].scope_spans[0].spans[0], span);
}

#[test]
fn resource_attributes_of_logs_and_metrics_are_acted_on() {
    let mut p = processor(ACTIONS);
    let b = Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![
            ResourceLogs {
                resource: resource(),
                scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default()], ..Default::default() }],
                ..Default::default()
            },
            ResourceLogs { resource: resource(), ..Default::default() },
        ],
    });
    let Batch::Logs(r) = one(&mut p, b) else { panic!() };
    assert_eq!(r.resource_logs[0].resource, expected());
    assert_eq!(r.resource_logs[1].resource, expected());
    let b = Batch::Metrics(ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics { resource: resource(), ..Default::default() }],
    });
    let Batch::Metrics(r) = one(&mut p, b) else { panic!() };
    assert_eq!(r.resource_metrics[0].resource, expected());
}

#[test]
fn an_absent_resource_is_acted_on_as_an_empty_one() {
    let mut p = processor("- {key: k, value: 1, action: upsert}");
    let b = Batch::Logs(ExportLogsServiceRequest { resource_logs: vec![ResourceLogs::default()] });
    let Batch::Logs(r) = one(&mut p, b) else { panic!() };
    assert_eq!(
        r.resource_logs[0].resource,
        Some(Resource { attributes: attrs(&[("k", V::I(1))]), ..Default::default() })
    );
}
