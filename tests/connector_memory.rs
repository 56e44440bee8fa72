//! What the connectors' state costs the allocator: live heap bytes per
//! `spanmetrics` series and per `slo` SLO, counted by a global allocator.
//! The figures in BENCHMARKS.md and README come from
//! `cargo test --release --test connector_memory -- --nocapture`.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sluice::connectors::Now;
use sluice::data::fixtures::kv;
use sluice::data::Batch;
use std::sync::Mutex;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[path = "../benches/support/connector_build.rs"]
mod connector_build;
use connector_build::build;

/// The tests share the counter: they take turns.
static TURN: Mutex<()> = Mutex::new(());

const SERIES: usize = 100_000;
const BATCH: usize = 1000;

/// 1000 server spans of service `checkout`, span `i` named `GET /items/{i}`
/// (a series of its own) with a route and a method, lasting 3 ms.
fn spans(first: usize) -> Batch {
    let spans = (first..first + BATCH)
        .map(|i| Span {
            trace_id: vec![1; 16],
            span_id: vec![2; 8],
            name: format!("GET /items/{i}"),
            kind: 2,
            start_time_unix_nano: 1_000_000_000,
            end_time_unix_nano: 1_003_000_000,
            attributes: vec![kv("http.route", format!("/items/{i}")), kv("http.request.method", "GET")],
            ..Default::default()
        })
        .collect();
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource { attributes: vec![kv("service.name", "checkout")], ..Default::default() }),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    })
}

/// Live heap bytes per series after 100,000 distinct series went in (no flush).
fn bytes_per_series(yaml: &str) -> f64 {
    let mut c = build(&sluice::connectors::spanmetrics::FACTORY, yaml);
    let now = Now::current();
    let mut out = Vec::new();
    // Warm-up: the first batch sizes scratch buffers and the resource.
    c.consume(&spans(10 * SERIES), now, &mut out);
    let before = counting_alloc::live();
    for b in 0..SERIES / BATCH {
        let input = spans(b * BATCH);
        c.consume(&input, now, &mut out);
    }
    assert!(out.is_empty());
    let grown = counting_alloc::live() - before;
    grown as f64 / SERIES as f64
}

const DIMENSIONS: &str =
    "aggregation_cardinality_limit: 200000\ndimensions: [{name: http.route}, {name: http.request.method}]\n";

#[test]
fn a_spanmetrics_series_costs_under_1280_bytes_with_explicit_buckets() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let per_series = bytes_per_series(DIMENSIONS);
    println!("spanmetrics: {per_series:.0} live heap bytes per series (6 labels, 16 default buckets)");
    assert!(per_series < 1280.0, "{per_series:.0} bytes per series");
}

#[test]
fn a_spanmetrics_series_with_exemplars_and_an_exponential_histogram_stays_bounded() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    // One span per series: one exemplar each; one bucket of the exponential histogram.
    let yaml = format!("{DIMENSIONS}exemplars: {{enabled: true}}\nhistogram: {{exponential: {{max_size: 160}}}}\n");
    let per_series = bytes_per_series(&yaml);
    println!("spanmetrics: {per_series:.0} live heap bytes per series (exponential histogram, one exemplar)");
    assert!(per_series < 1600.0, "{per_series:.0} bytes per series");
}

#[test]
fn an_slo_costs_what_the_readme_states() {
    let _turn = TURN.lock().unwrap_or_else(|e| e.into_inner());
    let slos: String =
        (0..1000).map(|i| format!("  - {{name: slo-{i}, service: svc-{i}, objective: 99.9}}\n")).collect();
    let before = counting_alloc::live();
    let c = build(&sluice::connectors::slo::FACTORY, &format!("slos:\n{slos}"));
    let per_slo = (counting_alloc::live() - before) as f64 / 1000.0;
    println!("slo: {per_slo:.0} live heap bytes per SLO (default 60 window buckets, 720 period buckets)");
    // The counters alone are (7 x 60 + 720) x 16 = 18,240 bytes; README states about 18.6 KB.
    assert!((18_240.0..24_000.0).contains(&per_slo), "{per_slo:.0} bytes per SLO");
    drop(c);
}
