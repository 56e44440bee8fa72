//! Routing items to the worker that owns their key, so keyed processors
//! keep exact per-key state without locks: spans by trace ID, metrics by
//! name, log records by (a part of) the log rate limiter's key. Every item
//! of one key lands in the same shard, whatever request it came in.

use crate::data::wire::{field_len, fields, last_bytes_field, put_bytes_field, put_len_header, WireValue};
use crate::data::{Batch, EncodedBatch, Signal};
use crate::processors::log_rate_limiter::config::KeyField;
use crate::processors::log_rate_limiter::route_hash;
use crate::processors::StateKey;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use xxhash_rust::xxh3::xxh3_64;

/// The shard of a trace ID among `shards`.
pub fn shard_of(trace_id: &[u8], shards: usize) -> usize {
    // The one definition processors rely on for their saved state.
    crate::processors::trace_worker(trace_id, shards)
}

fn of_hash(hash: u64, shards: usize) -> usize {
    (hash % shards.max(1) as u64) as usize
}

/// How a sharded pipeline routes: the key of its first keyed processor.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    TraceId,
    MetricName,
    LogFields(Vec<KeyField>),
}

impl Route {
    pub fn of(key: StateKey) -> Option<Route> {
        match key {
            StateKey::None => None,
            StateKey::TraceId => Some(Route::TraceId),
            StateKey::MetricName => Some(Route::MetricName),
            StateKey::LogFields(f) => Some(Route::LogFields(f)),
        }
    }

    /// Splits a batch into one batch per shard that has items. A batch of a
    /// signal this route does not key goes whole to shard 0.
    pub fn split(&self, batch: Batch, shards: usize) -> Vec<(usize, Batch)> {
        if shards <= 1 {
            return vec![(0, batch)];
        }
        match (self, batch) {
            (Route::TraceId, Batch::Traces(r)) => {
                split_by_trace(r, shards).into_iter().map(|(i, r)| (i, Batch::Traces(r))).collect()
            }
            (Route::MetricName, Batch::Metrics(r)) => split_metrics(r, shards, |_, m| xxh3_64(m.name.as_bytes()))
                .into_iter()
                .map(|(i, r)| (i, Batch::Metrics(r)))
                .collect(),
            (Route::LogFields(fields), Batch::Logs(r)) => {
                let (mut key, mut body) = (Vec::new(), Vec::new());
                split_logs(r, shards, |res, rec| route_hash(fields, res, rec, &mut key, &mut body))
                    .into_iter()
                    .map(|(i, r)| (i, Batch::Logs(r)))
                    .collect()
            }
            (_, other) => vec![(0, other)],
        }
    }
}

/// Splits a request by the shard of each item's hash, keeping each item
/// under (a copy of) its resource and scope. Items are moved, not copied.
macro_rules! splitter {
    ($name:ident, $req:ty, $rfield:ident, $rtype:ident, $sfield:ident, $stype:ident, $items:ident, $item:ty) => {
        pub fn $name(
            req: $req,
            shards: usize,
            mut hash: impl FnMut(&Option<opentelemetry_proto::tonic::resource::v1::Resource>, &$item) -> u64,
        ) -> Vec<(usize, $req)> {
            if shards <= 1 {
                return vec![(0, req)];
            }
            let mut parts: Vec<Option<$req>> = (0..shards).map(|_| None).collect();
            for rs in req.$rfield {
                // Per shard: the index of this resource's entry in that shard's request.
                let mut resource_slot: Vec<Option<usize>> = vec![None; shards];
                for ss in rs.$sfield {
                    let mut scope_slot: Vec<Option<usize>> = vec![None; shards];
                    for item in ss.$items {
                        let shard = of_hash(hash(&rs.resource, &item), shards);
                        let part = parts[shard].get_or_insert_with(Default::default);
                        let r = *resource_slot[shard].get_or_insert_with(|| {
                            part.$rfield.push($rtype {
                                resource: rs.resource.clone(),
                                $sfield: Vec::new(),
                                schema_url: rs.schema_url.clone(),
                            });
                            part.$rfield.len() - 1
                        });
                        let scopes = &mut part.$rfield[r].$sfield;
                        let s = *scope_slot[shard].get_or_insert_with(|| {
                            scopes.push($stype {
                                scope: ss.scope.clone(),
                                $items: Vec::new(),
                                schema_url: ss.schema_url.clone(),
                            });
                            scopes.len() - 1
                        });
                        scopes[s].$items.push(item);
                    }
                }
            }
            parts.into_iter().enumerate().filter_map(|(i, p)| p.map(|p| (i, p))).collect()
        }
    };
}

splitter!(
    split_traces,
    ExportTraceServiceRequest,
    resource_spans,
    ResourceSpans,
    scope_spans,
    ScopeSpans,
    spans,
    opentelemetry_proto::tonic::trace::v1::Span
);
splitter!(
    split_metrics,
    ExportMetricsServiceRequest,
    resource_metrics,
    ResourceMetrics,
    scope_metrics,
    ScopeMetrics,
    metrics,
    opentelemetry_proto::tonic::metrics::v1::Metric
);
splitter!(
    split_logs,
    ExportLogsServiceRequest,
    resource_logs,
    ResourceLogs,
    scope_logs,
    ScopeLogs,
    log_records,
    opentelemetry_proto::tonic::logs::v1::LogRecord
);

/// One `ScopeSpans` of a request being split: its own fields and its spans by shard.
struct ScopeParts<'a> {
    head: Vec<(u64, &'a [u8])>,
    spans: Vec<Vec<&'a [u8]>>,
}

impl ScopeParts<'_> {
    /// Body length of this scope's part in `shard` (0: no spans there).
    fn body_len(&self, shard: usize) -> usize {
        if self.spans[shard].is_empty() {
            return 0;
        }
        let head: usize = self.head.iter().map(|(f, b)| field_len(*f, b.len())).sum();
        head + self.spans[shard].iter().map(|s| field_len(2, s.len())).sum::<usize>()
    }
}

/// Spans of a checked, still encoded trace request split by trace ID, as
/// [`split_by_trace`] splits a decoded one: the same shards, and each part
/// keeps its spans' resource and scope. Spans, resources and scopes are
/// copied once, as received; nothing is decoded. Empty parts are left out.
pub fn split_encoded_by_trace(batch: &EncodedBatch, shards: usize) -> Vec<(usize, EncodedBatch)> {
    let mut parts: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); shards];
    for chunk in batch.chunks() {
        for (field, value) in fields(chunk) {
            let (1, WireValue::Bytes(rs)) = (field, value) else { continue };
            // resource(1) and schema_url(3) go with every part; scope_spans(2) are split.
            let mut head: Vec<(u64, &[u8])> = Vec::new();
            let mut scopes: Vec<ScopeParts> = Vec::new();
            for (f, v) in fields(rs) {
                match (f, v) {
                    (2, WireValue::Bytes(ss)) => {
                        let mut scope = ScopeParts { head: Vec::new(), spans: vec![Vec::new(); shards] };
                        for (f, v) in fields(ss) {
                            match (f, v) {
                                (2, WireValue::Bytes(span)) => {
                                    scope.spans[shard_of(last_bytes_field(span, 1), shards)].push(span)
                                }
                                (1 | 3, WireValue::Bytes(b)) => scope.head.push((f, b)),
                                _ => {}
                            }
                        }
                        scopes.push(scope);
                    }
                    (1 | 3, WireValue::Bytes(b)) => head.push((f, b)),
                    _ => {}
                }
            }
            let head_len: usize = head.iter().map(|(f, b)| field_len(*f, b.len())).sum();
            for (shard, (out, items)) in parts.iter_mut().enumerate() {
                let scope_lens: Vec<usize> = scopes.iter().map(|s| s.body_len(shard)).collect();
                if scope_lens.iter().all(|l| *l == 0) {
                    continue;
                }
                let body: usize =
                    head_len + scope_lens.iter().filter(|l| **l > 0).map(|l| field_len(2, *l)).sum::<usize>();
                out.reserve(field_len(1, body));
                put_len_header(out, 1, body);
                for (f, b) in &head {
                    put_bytes_field(out, *f, b);
                }
                for (scope, len) in scopes.iter().zip(&scope_lens).filter(|(_, l)| **l > 0) {
                    put_len_header(out, 2, *len);
                    for (f, b) in &scope.head {
                        put_bytes_field(out, *f, b);
                    }
                    for span in &scope.spans[shard] {
                        put_bytes_field(out, 2, span);
                    }
                    *items += scope.spans[shard].len();
                }
            }
        }
    }
    parts
        .into_iter()
        .enumerate()
        .filter(|(_, (_, items))| *items > 0)
        .map(|(i, (bytes, items))| (i, EncodedBatch::checked(Signal::Traces, bytes.into(), items)))
        .collect()
}

/// Spans split by trace ID.
pub fn split_by_trace(req: ExportTraceServiceRequest, shards: usize) -> Vec<(usize, ExportTraceServiceRequest)> {
    split_traces(req, shards, |_, s| xxh3_64(&s.trace_id))
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
    fn an_encoded_request_splits_into_the_parts_of_its_decode() {
        let req = ExportTraceServiceRequest {
            resource_spans: (0..3u8)
                .map(|r| ResourceSpans {
                    resource: Some(Resource { dropped_attributes_count: r as u32 + 1, ..Default::default() }),
                    scope_spans: (0..2u8)
                        .map(|sc| ScopeSpans {
                            scope: Some(InstrumentationScope { name: format!("scope{r}.{sc}"), ..Default::default() }),
                            spans: (0..30u8).map(|i| span((i * 7 + sc) % 11, i)).collect(),
                            schema_url: format!("https://scope/{sc}"),
                        })
                        .collect(),
                    schema_url: format!("https://resource/{r}"),
                })
                .collect(),
        };
        // Two chunks, as a batch of two requests would be.
        let mut encoded = EncodedBatch::encode(&Batch::Traces(req.clone()));
        encoded.append(EncodedBatch::encode(&Batch::Traces(req.clone())));
        let mut twice = req.clone();
        twice.resource_spans.extend(req.resource_spans.clone());
        for shards in [2, 3, 4] {
            let want = split_by_trace(twice.clone(), shards);
            let got = split_encoded_by_trace(&encoded, shards);
            assert_eq!(got.len(), want.len());
            for ((gi, g), (wi, w)) in got.iter().zip(&want) {
                assert_eq!(gi, wi);
                assert_eq!(g.item_count(), span_count(w));
                assert_eq!(g.decode().unwrap(), Batch::Traces(w.clone()), "shard {gi} of {shards}");
            }
        }
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

#[cfg(test)]
mod keyed_tests {
    use super::*;
    use crate::processors::log_rate_limiter::config::LogRateLimiterConfig;
    use crate::processors::log_rate_limiter::route_fields;
    use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::metrics::v1::Metric;
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn string(s: &str) -> Option<AnyValue> {
        Some(AnyValue { value: Some(any_value::Value::StringValue(s.to_string())) })
    }

    fn service(name: &str) -> Option<Resource> {
        Some(Resource {
            attributes: vec![KeyValue { key: "service.name".into(), value: string(name), ..Default::default() }],
            ..Default::default()
        })
    }

    #[test]
    fn metrics_of_one_name_meet_in_one_shard() {
        let req = ExportMetricsServiceRequest {
            resource_metrics: (0..4)
                .map(|r| ResourceMetrics {
                    resource: service(&format!("svc{r}")),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: (0..60)
                            .map(|m| Metric { name: format!("m{}", m % 30), ..Default::default() })
                            .collect(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
                .collect(),
        };
        let parts = Route::MetricName.split(Batch::Metrics(req), 3);
        assert!(parts.len() > 1);
        let mut seen = std::collections::HashMap::new();
        let mut total = 0;
        for (shard, part) in parts {
            let Batch::Metrics(part) = part else { panic!("metrics stay metrics") };
            for rm in &part.resource_metrics {
                for m in rm.scope_metrics.iter().flat_map(|s| &s.metrics) {
                    assert_eq!(*seen.entry(m.name.clone()).or_insert(shard), shard, "{} in two shards", m.name);
                    total += 1;
                }
            }
        }
        assert_eq!(total, 240);
        assert_eq!(seen.len(), 30);
    }

    fn record(severity: &str, body: &str) -> LogRecord {
        LogRecord { severity_text: severity.into(), body: string(body), ..Default::default() }
    }

    fn logs(services: &[&str], records: impl Fn() -> Vec<LogRecord>) -> Batch {
        Batch::Logs(ExportLogsServiceRequest {
            resource_logs: services
                .iter()
                .map(|s| ResourceLogs {
                    resource: service(s),
                    scope_logs: vec![ScopeLogs { log_records: records(), ..Default::default() }],
                    ..Default::default()
                })
                .collect(),
        })
    }

    /// (service, severity, body) of every record, by shard.
    fn keys_by_shard(parts: Vec<(usize, Batch)>) -> Vec<(usize, String, String, String)> {
        let mut out = Vec::new();
        for (shard, part) in parts {
            let Batch::Logs(part) = part else { panic!("logs stay logs") };
            for rl in &part.resource_logs {
                let svc = format!("{:?}", rl.resource.as_ref().unwrap().attributes[0].value);
                for r in rl.scope_logs.iter().flat_map(|s| &s.log_records) {
                    let body = format!("{:?}", r.body);
                    out.push((shard, svc.clone(), r.severity_text.clone(), body));
                }
            }
        }
        out
    }

    #[test]
    fn log_records_of_one_key_meet_in_one_shard_without_computing_templates() {
        // Default key: service, severity text, body template. Routing uses
        // the first two only.
        let fields = route_fields(&LogRateLimiterConfig::default());
        assert_eq!(fields, vec![KeyField::Resource("service.name".into()), KeyField::SeverityText]);
        let route = Route::LogFields(fields);
        let services = ["a", "b", "c", "d", "e", "f"];
        let batch = logs(&services, || {
            ["INFO", "WARN", "ERROR"]
                .iter()
                .flat_map(|s| (0..5).map(move |i| record(s, &format!("user {i}"))))
                .collect()
        });
        let keys = keys_by_shard(route.split(batch, 4));
        assert_eq!(keys.len(), 6 * 15);
        let mut owner = std::collections::HashMap::new();
        for (shard, svc, sev, _) in &keys {
            assert_eq!(*owner.entry((svc.clone(), sev.clone())).or_insert(*shard), *shard);
        }
        assert!(owner.values().collect::<std::collections::HashSet<_>>().len() > 1, "keys spread over shards");
    }

    #[test]
    fn a_key_of_the_body_template_alone_routes_by_template_and_no_key_routes_to_one_shard() {
        let only_template = LogRateLimiterConfig { key_fields: vec!["body_template".into()], ..Default::default() };
        let route = Route::LogFields(route_fields(&only_template));
        let batch =
            logs(&["a", "b", "c"], || (0..40).map(|i| record("INFO", &format!("job {i} took {i}ms"))).collect());
        let keys = keys_by_shard(route.split(batch, 4));
        assert_eq!(keys.len(), 120);
        assert!(keys.iter().all(|k| k.0 == keys[0].0), "one template, one shard");

        let no_key = LogRateLimiterConfig { key_fields: vec![], ..Default::default() };
        let route = Route::LogFields(route_fields(&no_key));
        let batch = logs(&["a", "b"], || vec![record("INFO", "x"), record("WARN", "y")]);
        assert_eq!(route.split(batch, 4).len(), 1, "an empty key is one key");
    }
}
