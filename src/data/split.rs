//! Merging and splitting OTLP requests by item count, keeping each item under
//! its own resource and scope.

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};

/// Takes up to `n` items from the front of a list of resources, two levels
/// deep (resource → scope → items).
macro_rules! split_two_level {
    ($resources:expr, $n:expr, $Res:ident, $Scope:ident, $scopes:ident, $items:ident) => {{
        let resources: &mut Vec<$Res> = $resources;
        let mut remaining: usize = $n;
        let mut taken: Vec<$Res> = Vec::new();
        let mut whole = 0;
        for rs in resources.iter() {
            let count: usize = rs.$scopes.iter().map(|s| s.$items.len()).sum();
            if count > remaining {
                break;
            }
            remaining -= count;
            whole += 1;
        }
        taken.extend(resources.drain(..whole));
        if remaining > 0 && !resources.is_empty() {
            let rs = &mut resources[0];
            let mut part =
                $Res { resource: rs.resource.clone(), schema_url: rs.schema_url.clone(), $scopes: Vec::new() };
            let mut whole_scopes = 0;
            for ss in rs.$scopes.iter() {
                if ss.$items.len() > remaining {
                    break;
                }
                remaining -= ss.$items.len();
                whole_scopes += 1;
            }
            part.$scopes.extend(rs.$scopes.drain(..whole_scopes));
            if remaining > 0 {
                let ss = &mut rs.$scopes[0];
                let head: Vec<_> = ss.$items.drain(..remaining).collect();
                part.$scopes.push($Scope { scope: ss.scope.clone(), schema_url: ss.schema_url.clone(), $items: head });
            }
            taken.push(part);
        }
        taken
    }};
}

pub fn split_traces(req: &mut ExportTraceServiceRequest, n: usize) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: split_two_level!(&mut req.resource_spans, n, ResourceSpans, ScopeSpans, scope_spans, spans),
    }
}

pub fn split_logs(req: &mut ExportLogsServiceRequest, n: usize) -> ExportLogsServiceRequest {
    ExportLogsServiceRequest {
        resource_logs: split_two_level!(&mut req.resource_logs, n, ResourceLogs, ScopeLogs, scope_logs, log_records),
    }
}

fn metric_points(m: &Metric) -> usize {
    crate::data::metric_point_count(m.data.as_ref())
}

/// Moves the first `n` data points of `m` into a new metric with the same
/// name, description, unit and temporality.
fn split_metric(m: &mut Metric, n: usize) -> Metric {
    let data = m.data.as_mut().map(|d| match d {
        Data::Gauge(g) => Data::Gauge(opentelemetry_proto::tonic::metrics::v1::Gauge {
            data_points: g.data_points.drain(..n).collect(),
        }),
        Data::Sum(s) => Data::Sum(opentelemetry_proto::tonic::metrics::v1::Sum {
            data_points: s.data_points.drain(..n).collect(),
            aggregation_temporality: s.aggregation_temporality,
            is_monotonic: s.is_monotonic,
        }),
        Data::Histogram(h) => Data::Histogram(opentelemetry_proto::tonic::metrics::v1::Histogram {
            data_points: h.data_points.drain(..n).collect(),
            aggregation_temporality: h.aggregation_temporality,
        }),
        Data::ExponentialHistogram(h) => {
            Data::ExponentialHistogram(opentelemetry_proto::tonic::metrics::v1::ExponentialHistogram {
                data_points: h.data_points.drain(..n).collect(),
                aggregation_temporality: h.aggregation_temporality,
            })
        }
        Data::Summary(s) => Data::Summary(opentelemetry_proto::tonic::metrics::v1::Summary {
            data_points: s.data_points.drain(..n).collect(),
        }),
    });
    Metric {
        name: m.name.clone(),
        description: m.description.clone(),
        unit: m.unit.clone(),
        metadata: m.metadata.clone(),
        data,
    }
}

pub fn split_metrics(req: &mut ExportMetricsServiceRequest, n: usize) -> ExportMetricsServiceRequest {
    let mut remaining = n;
    let mut taken: Vec<ResourceMetrics> = Vec::new();
    while remaining > 0 && !req.resource_metrics.is_empty() {
        let rm_count: usize =
            req.resource_metrics[0].scope_metrics.iter().flat_map(|s| s.metrics.iter()).map(metric_points).sum();
        if rm_count <= remaining {
            remaining -= rm_count;
            taken.push(req.resource_metrics.remove(0));
            continue;
        }
        let rm = &mut req.resource_metrics[0];
        let mut part = ResourceMetrics {
            resource: rm.resource.clone(),
            schema_url: rm.schema_url.clone(),
            scope_metrics: Vec::new(),
        };
        while remaining > 0 {
            let sm = &mut rm.scope_metrics[0];
            let sm_count: usize = sm.metrics.iter().map(metric_points).sum();
            if sm_count <= remaining {
                remaining -= sm_count;
                part.scope_metrics.push(rm.scope_metrics.remove(0));
                continue;
            }
            let mut scope_part =
                ScopeMetrics { scope: sm.scope.clone(), schema_url: sm.schema_url.clone(), metrics: Vec::new() };
            while remaining > 0 {
                let points = metric_points(&sm.metrics[0]);
                if points <= remaining {
                    remaining -= points;
                    scope_part.metrics.push(sm.metrics.remove(0));
                } else {
                    scope_part.metrics.push(split_metric(&mut sm.metrics[0], remaining));
                    remaining = 0;
                }
            }
            part.scope_metrics.push(scope_part);
        }
        taken.push(part);
    }
    ExportMetricsServiceRequest { resource_metrics: taken }
}

/// Bytes of a length-delimited field of `len` bytes (every OTLP field on
/// the way down to an item has a one-byte tag).
fn ld(len: usize) -> usize {
    1 + prost::encoding::encoded_len_varint(len as u64) + len
}

/// How many leading items of `batch` fit in an export request of at most
/// `max` bytes once cut off by [`crate::data::cut::Batchable::take_front`]
/// (which keeps each item under a copy of its resource and scope, and of
/// its metric for data points). One pass over the items that fit, without
/// copying: the size of the open resource, scope (and metric) is carried
/// along as their length prefixes grow. 0 when the first item alone is
/// larger.
pub fn items_within_bytes(batch: &crate::data::Batch, max: usize) -> usize {
    use crate::data::Batch;
    match batch {
        Batch::Traces(r) => two_level_within!(r.resource_spans, scope_spans, spans, max),
        Batch::Logs(r) => two_level_within!(r.resource_logs, scope_logs, log_records, max),
        Batch::Metrics(r) => metrics_within(r, max),
    }
}

/// Bytes of an optional message field plus a string field: what a resource
/// or a scope entry holds besides its children.
fn base<M: prost::Message>(msg: &Option<M>, schema_url: &str) -> usize {
    msg.as_ref().map_or(0, |m| ld(m.encoded_len())) + if schema_url.is_empty() { 0 } else { ld(schema_url.len()) }
}

/// Walks resource → scope → items, stopping at the first item that does not
/// fit. A cut that ends a scope also takes the empty scopes after it, and,
/// when those end the resource, the empty resources after that (as
/// `split_two_level!` takes every unit whose count fits).
macro_rules! two_level_within {
    ($resources:expr, $scopes:ident, $items:ident, $max:expr) => {{
        use prost::Message;
        let resources = &$resources;
        let (mut closed, mut n) = (0usize, 0usize);
        'walk: for (ri, rs) in resources.iter().enumerate() {
            let rs_base = base(&rs.resource, &rs.schema_url);
            let mut closed_scopes = 0usize;
            for (si, ss) in rs.$scopes.iter().enumerate() {
                let ss_base = base(&ss.scope, &ss.schema_url);
                let mut items_len = 0usize;
                for (ii, item) in ss.$items.iter().enumerate() {
                    items_len += ld(item.encoded_len());
                    let mut open = closed_scopes + ld(ss_base + items_len);
                    let mut after = 0usize;
                    if ii + 1 == ss.$items.len() {
                        let mut ends_resource = true;
                        for next in &rs.$scopes[si + 1..] {
                            if !next.$items.is_empty() {
                                ends_resource = false;
                                break;
                            }
                            open += ld(next.encoded_len());
                        }
                        if ends_resource {
                            after = resources[ri + 1..]
                                .iter()
                                .take_while(|r| r.$scopes.iter().all(|s| s.$items.is_empty()))
                                .map(|r| ld(r.encoded_len()))
                                .sum();
                        }
                    }
                    if closed + ld(rs_base + open) + after > $max {
                        break 'walk;
                    }
                    n += 1;
                }
                closed_scopes += ld(ss_base + items_len);
            }
            closed += ld(rs_base + closed_scopes);
        }
        n
    }};
}
use two_level_within;

/// As `two_level_within`, one level deeper: resource → scope → metric →
/// its data (gauge, sum, ...) → data points.
fn metrics_within(r: &ExportMetricsServiceRequest, max: usize) -> usize {
    use opentelemetry_proto::tonic::metrics::v1::{AggregationTemporality, Sum};
    use prost::Message;
    // Bytes of a metric's data message without its points: the fields
    // split_metric copies (temporality, monotonic).
    let data_base = |d: &Data| -> usize {
        let temporality = |t: i32| {
            if t == AggregationTemporality::Unspecified as i32 {
                0
            } else {
                1 + prost::encoding::encoded_len_varint(t as u64)
            }
        };
        match d {
            Data::Gauge(_) | Data::Summary(_) => 0,
            Data::Sum(Sum { aggregation_temporality, is_monotonic, .. }) => {
                temporality(*aggregation_temporality) + if *is_monotonic { 2 } else { 0 }
            }
            Data::Histogram(h) => temporality(h.aggregation_temporality),
            Data::ExponentialHistogram(h) => temporality(h.aggregation_temporality),
        }
    };
    let point = |d: &Data, i: usize| -> Option<usize> {
        Some(ld(match d {
            Data::Gauge(g) => g.data_points.get(i)?.encoded_len(),
            Data::Sum(s) => s.data_points.get(i)?.encoded_len(),
            Data::Histogram(h) => h.data_points.get(i)?.encoded_len(),
            Data::ExponentialHistogram(h) => h.data_points.get(i)?.encoded_len(),
            Data::Summary(s) => s.data_points.get(i)?.encoded_len(),
        }))
    };
    let str_field = |v: &str| if v.is_empty() { 0 } else { ld(v.len()) };
    let (mut closed, mut n) = (0usize, 0usize);
    for rm in &r.resource_metrics {
        let rm_base = base(&rm.resource, &rm.schema_url);
        let mut closed_scopes = 0usize;
        for (smi, sm) in rm.scope_metrics.iter().enumerate() {
            let sm_base = base(&sm.scope, &sm.schema_url);
            let mut closed_metrics = 0usize;
            for (mi, m) in sm.metrics.iter().enumerate() {
                let m_base = str_field(&m.name)
                    + str_field(&m.description)
                    + str_field(&m.unit)
                    + m.metadata.iter().map(|kv| ld(kv.encoded_len())).sum::<usize>();
                let Some(d) = &m.data else {
                    closed_metrics += ld(m_base);
                    continue;
                };
                let d_base = data_base(d);
                let mut items_len = 0usize;
                let mut i = 0;
                while let Some(p) = point(d, i) {
                    items_len += p;
                    let mut metrics_part = closed_metrics + ld(m_base + ld(d_base + items_len));
                    let mut scopes_part = closed_scopes;
                    if point(d, i + 1).is_none() {
                        // The cut ends this metric: split_metrics takes the
                        // scope whole (its empty metrics after this one too)
                        // when nothing else in it has points, and the resource
                        // whole likewise.
                        let rest_of_scope = &sm.metrics[mi + 1..];
                        if rest_of_scope.iter().all(|m| crate::data::metric_point_count(m.data.as_ref()) == 0) {
                            metrics_part += rest_of_scope.iter().map(|m| ld(m.encoded_len())).sum::<usize>();
                            let rest_of_resource = &rm.scope_metrics[smi + 1..];
                            if rest_of_resource
                                .iter()
                                .flat_map(|s| &s.metrics)
                                .all(|m| crate::data::metric_point_count(m.data.as_ref()) == 0)
                            {
                                scopes_part += rest_of_resource.iter().map(|s| ld(s.encoded_len())).sum::<usize>();
                            }
                        }
                    }
                    if closed + ld(rm_base + scopes_part + ld(sm_base + metrics_part)) > max {
                        return n;
                    }
                    n += 1;
                    i += 1;
                }
                closed_metrics += ld(m_base + ld(d_base + items_len));
            }
            closed_scopes += ld(sm_base + closed_metrics);
        }
        closed += ld(rm_base + closed_scopes);
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{data_point_count, log_record_count, span_count};
    use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
    use opentelemetry_proto::tonic::logs::v1::LogRecord;
    use opentelemetry_proto::tonic::metrics::v1::{Gauge, NumberDataPoint};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::Span;

    fn traces(shape: &[&[usize]]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: shape
                .iter()
                .enumerate()
                .map(|(r, scopes)| ResourceSpans {
                    resource: Some(Resource { dropped_attributes_count: r as u32, ..Default::default() }),
                    scope_spans: scopes
                        .iter()
                        .enumerate()
                        .map(|(s, n)| ScopeSpans {
                            scope: Some(InstrumentationScope { name: format!("s{s}"), ..Default::default() }),
                            spans: (0..*n)
                                .map(|i| Span { name: format!("r{r}s{s}i{i}"), ..Default::default() })
                                .collect(),
                            schema_url: String::new(),
                        })
                        .collect(),
                    schema_url: String::new(),
                })
                .collect(),
        }
    }

    fn names(req: &ExportTraceServiceRequest) -> Vec<String> {
        req.resource_spans
            .iter()
            .flat_map(|r| r.scope_spans.iter())
            .flat_map(|s| s.spans.iter())
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn split_keeps_order_resource_and_scope() {
        let mut req = traces(&[&[2, 3], &[4]]);
        let all = names(&req);
        let head = split_traces(&mut req, 4);
        assert_eq!(span_count(&head), 4);
        assert_eq!(span_count(&req), 5);
        assert_eq!(head.resource_spans.len(), 1);
        assert_eq!(head.resource_spans[0].scope_spans[1].scope.as_ref().unwrap().name, "s1");
        assert_eq!(req.resource_spans[0].scope_spans[0].scope.as_ref().unwrap().name, "s1");
        let mut rejoined = names(&head);
        rejoined.extend(names(&req));
        assert_eq!(rejoined, all);
        let rest = split_traces(&mut req, 100);
        assert_eq!(span_count(&rest), 5);
        assert!(req.resource_spans.is_empty());
        assert_eq!(rest.resource_spans[1].resource.as_ref().unwrap().dropped_attributes_count, 1);
    }

    #[test]
    fn split_logs_by_count() {
        let mut req = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs { log_records: vec![LogRecord::default(); 7], ..Default::default() }],
                ..Default::default()
            }],
        };
        let head = split_logs(&mut req, 3);
        assert_eq!((log_record_count(&head), log_record_count(&req)), (3, 4));
    }

    #[test]
    fn split_metrics_splits_inside_a_metric() {
        let metric = Metric {
            name: "m".into(),
            unit: "1".into(),
            data: Some(Data::Gauge(Gauge { data_points: vec![NumberDataPoint::default(); 5] })),
            ..Default::default()
        };
        let mut req = ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics { metrics: vec![metric.clone(), metric], ..Default::default() }],
                ..Default::default()
            }],
        };
        let head = split_metrics(&mut req, 7);
        assert_eq!((data_point_count(&head), data_point_count(&req)), (7, 3));
        let m = &head.resource_metrics[0].scope_metrics[0].metrics;
        assert_eq!(m.len(), 2);
        assert_eq!(m[1].name, "m");
        assert_eq!(m[1].unit, "1");
    }

    /// `items_within_bytes` finds what a search over real cuts finds: the
    /// most leading items whose cut-off request is at most `max` bytes.
    #[test]
    fn items_within_bytes_matches_the_encoded_size_of_real_cuts() {
        use crate::data::cut::Batchable;
        use crate::data::Batch;
        use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
        use opentelemetry_proto::tonic::metrics::v1::{Histogram, HistogramDataPoint, Sum};
        let attr = |i: usize| KeyValue {
            key: "k".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("v".repeat(i % 7))) }),
            ..Default::default()
        };
        let mut traces = traces(&[&[2, 3, 0], &[0], &[40], &[1, 0, 5], &[0]]);
        traces.resource_spans[1].schema_url = "https://example.com/schema".into();
        let logs = ExportLogsServiceRequest {
            resource_logs: (0..3)
                .map(|r| ResourceLogs {
                    scope_logs: (0..2)
                        .map(|s| ScopeLogs {
                            log_records: (0..(r * 3 + s + 1))
                                .map(|i| LogRecord { attributes: vec![attr(i)], ..Default::default() })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        };
        let gauge = |n: usize| Metric {
            name: "gauge".into(),
            unit: "1".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: (0..n)
                    .map(|i| NumberDataPoint { attributes: vec![attr(i)], ..Default::default() })
                    .collect(),
            })),
            ..Default::default()
        };
        let sum = Metric {
            name: "sum".into(),
            description: "a sum".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![NumberDataPoint::default(); 9],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let histogram = Metric {
            name: "h".into(),
            data: Some(Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint { bucket_counts: vec![1, 2, 3], ..Default::default() }; 6],
                aggregation_temporality: 1,
            })),
            ..Default::default()
        };
        let metrics = ExportMetricsServiceRequest {
            resource_metrics: vec![
                ResourceMetrics {
                    scope_metrics: vec![
                        ScopeMetrics {
                            metrics: vec![gauge(4), sum.clone(), Metric { name: "empty".into(), ..Default::default() }],
                            ..Default::default()
                        },
                        ScopeMetrics::default(),
                    ],
                    ..Default::default()
                },
                ResourceMetrics {
                    resource: Some(Resource { attributes: vec![attr(3)], ..Default::default() }),
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![histogram, gauge(30), sum],
                        ..Default::default()
                    }],
                    ..Default::default()
                },
            ],
        };
        for batch in [Batch::Traces(traces), Batch::Logs(logs), Batch::Metrics(metrics)] {
            let total = batch.item_count();
            let size = |n: usize| batch.clone().take_front(n).encoded_len();
            for max in (0..=batch.encoded_len() + 10).step_by(7) {
                let brute = (0..=total).take_while(|&n| size(n) <= max).last().unwrap_or(0);
                assert_eq!(items_within_bytes(&batch, max), brute, "{} max {max}", batch.signal());
            }
        }
    }
}
