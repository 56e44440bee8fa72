//! What buffering costs the allocator: live heap bytes per buffered span in
//! `tail_sampling`, counted by a global allocator, against the spans'
//! protobuf encoded size and against what the processor accounts.

use sluice::data::{Batch, Signal};
use sluice::processors::tail_sampling::{config::TailSamplingConfig, TailSamplingProcessor};
use sluice::processors::{Processor, ProcessorContext};
use sluice::telemetry::Registry;
use std::time::Instant;

#[path = "../benches/support/trace_data.rs"]
mod trace_data;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;

#[test]
fn live_heap_per_buffered_span_is_at_most_one_and_a_half_times_its_encoded_size() {
    let cfg: TailSamplingConfig = serde_json::from_str(
        r#"{"decision_wait": "10s", "policies": [
            {"name": "errors", "type": "status_code", "status_code": {"status_codes": ["ERROR"]}},
            {"name": "route", "type": "string_attribute", "string_attribute": {"key": "http.route", "values": ["/api/v1/items/7"]}},
            {"name": "rest", "type": "probabilistic", "probabilistic": {"sampling_percentage": 10}}
        ]}"#,
    )
    .expect("config");
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
    let mut p = TailSamplingProcessor::new(&cfg, &ctx);
    let mut out = Vec::with_capacity(1);
    let before = counting_alloc::live();
    // 1000 traces of 10 spans with 10 attributes each.
    let req = trace_data::trace_request(10_000);
    let spans = 10_000f64;
    let encoded: usize = req
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(prost::Message::encoded_len)
        .sum();
    let encoded = encoded as f64 / spans;
    // The request is consumed: what stays allocated is what the processor holds.
    p.process(Batch::Traces(req), Instant::now(), &mut out);
    let live = (counting_alloc::live() - before) as f64 / spans;
    assert!(out.is_empty());
    assert_eq!(p.traces_in_memory(), 1000);
    let accounted = p.accounted_bytes() as f64 / spans;
    eprintln!("per buffered span: live heap {live:.0} bytes, accounted {accounted:.0}, encoded {encoded:.0}");
    assert!(live <= 1.5 * encoded, "live heap {live:.0} bytes per span vs {encoded:.0} encoded");
    assert!(live <= accounted, "accounting ({accounted:.0}) under the live heap ({live:.0})");
    drop(p);
}
