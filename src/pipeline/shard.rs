//! Routing spans to the worker that owns their trace: `xxh3(trace_id) % n`.
//! Every span of a trace lands in the same shard, whatever request it came
//! in, so trace-keyed processors keep their state without locks.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

/// The shard of a trace ID among `shards`.
pub fn shard_of(trace_id: &[u8], shards: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(trace_id) % shards.max(1) as u64) as usize
}

/// Splits a request into one request per shard that has spans, keeping each
/// span under (a copy of) its resource and scope. Spans are moved, not copied.
pub fn split_by_trace(req: ExportTraceServiceRequest, shards: usize) -> Vec<(usize, ExportTraceServiceRequest)> {
    if shards <= 1 {
        return vec![(0, req)];
    }
    let mut parts: Vec<Option<ExportTraceServiceRequest>> = (0..shards).map(|_| None).collect();
    for rs in req.resource_spans {
        // Per shard: the index of this resource's ResourceSpans in that shard's request.
        let mut resource_slot: Vec<Option<usize>> = vec![None; shards];
        for ss in rs.scope_spans {
            let mut scope_slot: Vec<Option<usize>> = vec![None; shards];
            for span in ss.spans {
                let shard = shard_of(&span.trace_id, shards);
                let part = parts[shard].get_or_insert_with(Default::default);
                let r = *resource_slot[shard].get_or_insert_with(|| {
                    part.resource_spans.push(ResourceSpans {
                        resource: rs.resource.clone(),
                        scope_spans: Vec::new(),
                        schema_url: rs.schema_url.clone(),
                    });
                    part.resource_spans.len() - 1
                });
                let scopes = &mut part.resource_spans[r].scope_spans;
                let s = *scope_slot[shard].get_or_insert_with(|| {
                    scopes.push(ScopeSpans {
                        scope: ss.scope.clone(),
                        spans: Vec::new(),
                        schema_url: ss.schema_url.clone(),
                    });
                    scopes.len() - 1
                });
                scopes[s].spans.push(span);
            }
        }
    }
    parts.into_iter().enumerate().filter_map(|(i, p)| p.map(|p| (i, p))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::span_count;
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn span(trace: u8, n: u8) -> Span {
        Span { trace_id: vec![trace; 16], span_id: vec![n; 8], name: format!("t{trace}s{n}"), ..Default::default() }
    }

    #[test]
    fn every_span_of_a_trace_goes_to_one_shard_with_its_resource_and_scope() {
        let req = ExportTraceServiceRequest {
            resource_spans: (0..3u8)
                .map(|r| ResourceSpans {
                    resource: Some(Resource { dropped_attributes_count: r as u32, ..Default::default() }),
                    scope_spans: vec![ScopeSpans {
                        scope: Some(InstrumentationScope { name: format!("scope{r}"), ..Default::default() }),
                        spans: (0..40u8).map(|i| span(i % 10, i)).collect(),
                        schema_url: String::new(),
                    }],
                    schema_url: String::new(),
                })
                .collect(),
        };
        let parts = split_by_trace(req, 4);
        assert!(parts.len() > 1, "10 traces over 4 shards should use several shards");
        assert_eq!(parts.iter().map(|(_, p)| span_count(p)).sum::<usize>(), 120);
        for (shard, part) in &parts {
            for rs in &part.resource_spans {
                let r = rs.resource.as_ref().unwrap().dropped_attributes_count;
                for ss in &rs.scope_spans {
                    assert_eq!(ss.scope.as_ref().unwrap().name, format!("scope{r}"));
                    for s in &ss.spans {
                        assert_eq!(shard_of(&s.trace_id, 4), *shard);
                    }
                }
            }
        }
    }

    #[test]
    fn one_shard_is_the_request_itself() {
        let req = ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![span(1, 1), span(2, 2)], ..Default::default() }],
                ..Default::default()
            }],
        };
        let parts = split_by_trace(req.clone(), 1);
        assert_eq!(parts, vec![(0, req)]);
    }
}
