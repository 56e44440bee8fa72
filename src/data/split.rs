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
}
