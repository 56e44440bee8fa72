//! What a decoded batch holds in memory: the prost structs and the heap they
//! own (string and byte buffers, vectors by capacity), without encoding it.
//! The pipeline's door bounds its channel in these bytes for batches whose
//! decoded size no receiver walk gave (connectors' output, `filelog`).
//!
//! Guarantee: allocates nothing, visits each value once, and measures what
//! the receivers' walk ([`super::check::check_and_estimate`]) estimates from
//! the wire form of the same request (vectors by capacity, so never less
//! than their length).

use super::Batch;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{metric, Exemplar, Metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::mem::size_of;

/// Bytes a decoded batch holds: its structs and their heap.
pub fn batch_bytes(batch: &Batch) -> u64 {
    let bytes = match batch {
        Batch::Traces(r) => vec_of(&r.resource_spans, |rs| {
            resource(&rs.resource)
                + rs.schema_url.capacity()
                + vec_of(&rs.scope_spans, |ss| scope(&ss.scope) + ss.schema_url.capacity() + vec_of(&ss.spans, span))
        }),
        Batch::Metrics(r) => vec_of(&r.resource_metrics, |rm| {
            resource(&rm.resource)
                + rm.schema_url.capacity()
                + vec_of(&rm.scope_metrics, |sm| {
                    scope(&sm.scope) + sm.schema_url.capacity() + vec_of(&sm.metrics, metric)
                })
        }),
        Batch::Logs(r) => vec_of(&r.resource_logs, |rl| {
            resource(&rl.resource)
                + rl.schema_url.capacity()
                + vec_of(&rl.scope_logs, |sl| {
                    scope(&sl.scope) + sl.schema_url.capacity() + vec_of(&sl.log_records, log_record)
                })
        }),
    };
    (size_of::<Batch>() + bytes) as u64
}

/// A vector's buffer (by capacity) plus the heap each element owns.
fn vec_of<T>(v: &[T], heap: impl Fn(&T) -> usize) -> usize {
    // A `&[T]` from a `Vec<T>` knows only its length; decoded vectors are
    // allocated to their length, so the two agree there.
    std::mem::size_of_val(v) + v.iter().map(heap).sum::<usize>()
}

fn resource(r: &Option<Resource>) -> usize {
    r.as_ref().map_or(0, |r| {
        attributes(&r.attributes)
            + vec_of(&r.entity_refs, |e| {
                e.schema_url.capacity()
                    + e.r#type.capacity()
                    + vec_of(&e.id_keys, String::capacity)
                    + vec_of(&e.description_keys, String::capacity)
            })
    })
}

fn scope(s: &Option<InstrumentationScope>) -> usize {
    s.as_ref().map_or(0, |s| s.name.capacity() + s.version.capacity() + attributes(&s.attributes))
}

fn attributes(kvs: &[KeyValue]) -> usize {
    vec_of(kvs, |kv| kv.key.capacity() + kv.value.as_ref().map_or(0, any_value))
}

fn any_value(v: &AnyValue) -> usize {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.capacity(),
        Some(any_value::Value::BytesValue(b)) => b.capacity(),
        Some(any_value::Value::ArrayValue(a)) => vec_of(&a.values, any_value),
        Some(any_value::Value::KvlistValue(l)) => attributes(&l.values),
        _ => 0,
    }
}

fn span(s: &Span) -> usize {
    s.trace_id.capacity()
        + s.span_id.capacity()
        + s.parent_span_id.capacity()
        + s.trace_state.capacity()
        + s.name.capacity()
        + attributes(&s.attributes)
        + vec_of(&s.events, |e| e.name.capacity() + attributes(&e.attributes))
        + vec_of(&s.links, |l| {
            l.trace_id.capacity() + l.span_id.capacity() + l.trace_state.capacity() + attributes(&l.attributes)
        })
        + s.status.as_ref().map_or(0, |st| st.message.capacity())
}

fn log_record(r: &LogRecord) -> usize {
    r.severity_text.capacity()
        + r.body.as_ref().map_or(0, any_value)
        + attributes(&r.attributes)
        + r.trace_id.capacity()
        + r.span_id.capacity()
        + r.event_name.capacity()
}

fn exemplars(e: &[Exemplar]) -> usize {
    vec_of(e, |e| attributes(&e.filtered_attributes) + e.span_id.capacity() + e.trace_id.capacity())
}

fn metric(m: &Metric) -> usize {
    let points = match &m.data {
        Some(metric::Data::Gauge(g)) => vec_of(&g.data_points, |p| attributes(&p.attributes) + exemplars(&p.exemplars)),
        Some(metric::Data::Sum(s)) => vec_of(&s.data_points, |p| attributes(&p.attributes) + exemplars(&p.exemplars)),
        Some(metric::Data::Histogram(h)) => vec_of(&h.data_points, |p| {
            attributes(&p.attributes)
                + exemplars(&p.exemplars)
                + p.bucket_counts.capacity() * size_of::<u64>()
                + p.explicit_bounds.capacity() * size_of::<f64>()
        }),
        Some(metric::Data::ExponentialHistogram(h)) => vec_of(&h.data_points, |p| {
            let buckets = |b: &Option<_>| {
                b.as_ref().map_or(
                    0,
                    |b: &opentelemetry_proto::tonic::metrics::v1::exponential_histogram_data_point::Buckets| {
                        b.bucket_counts.capacity() * size_of::<u64>()
                    },
                )
            };
            attributes(&p.attributes) + exemplars(&p.exemplars) + buckets(&p.positive) + buckets(&p.negative)
        }),
        Some(metric::Data::Summary(s)) => {
            vec_of(&s.data_points, |p| attributes(&p.attributes) + std::mem::size_of_val(p.quantile_values.as_slice()))
        }
        None => 0,
    };
    m.name.capacity() + m.description.capacity() + m.unit.capacity() + attributes(&m.metadata) + points
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::check::check_and_estimate;
    use crate::data::Signal;
    use prost::Message;

    /// The door measures decoded batches with this walk and receivers with
    /// the wire walk: both must say about the same of the same request.
    #[test]
    fn agrees_with_the_wire_estimate_of_the_same_request() {
        use crate::data::fixtures::{gauge, kv, log_record, logs, metrics, point, span, traces};
        let spans = (0..200u64)
            .map(|i| {
                let mut s = span(u128::from(i / 10), i, "GET /api/items");
                s.attributes = (0..10).map(|a| kv(&format!("attribute.{a}"), format!("value-{i}-{a}"))).collect();
                s
            })
            .collect();
        let records = (0..500).map(|i| log_record(&format!("line {i} of the log"))).collect();
        let points = (0..300).map(|i| point(f64::from(i), vec![kv("user", format!("user-{i}"))])).collect();
        for (signal, batch) in [
            (Signal::Traces, Batch::Traces(traces("checkout", spans))),
            (Signal::Logs, Batch::Logs(logs("checkout", records))),
            (Signal::Metrics, Batch::Metrics(metrics("checkout", vec![gauge("requests", points)]))),
        ] {
            let wire = match &batch {
                Batch::Traces(r) => r.encode_to_vec(),
                Batch::Metrics(r) => r.encode_to_vec(),
                Batch::Logs(r) => r.encode_to_vec(),
            };
            let estimate = check_and_estimate(signal, &wire).unwrap().decoded_bytes as f64;
            let measured = batch_bytes(&batch) as f64;
            let ratio = measured / estimate;
            assert!((0.8..1.25).contains(&ratio), "{signal}: walked {measured}, estimated {estimate}");
            // Decoded is larger than the wire form, as the reason for both walks.
            assert!(measured > wire.len() as f64, "{signal}");
        }
    }
}
