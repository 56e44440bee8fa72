//! Visits the items of one context in a decoded request, each with its
//! [`EvalCtx`], and removes those the visitor says to drop. This is what
//! every consumer of the engine (transform, filter, routing) shares.
//!
//! Guarantee: items are visited in order; an item above (resource, scope)
//! is shared by the items beneath it, so a change a statement makes to it
//! is seen by the next item; dropping an item drops what it holds. Empty
//! scopes and resources are left for the caller to prune.

use super::context::{metric_type_of, ContextKind, EvalCtx, PointMut};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::metrics::v1::metric::Data;

/// What the visitor says of an item.
pub type Visit<'f> = &'f mut dyn FnMut(&mut EvalCtx) -> bool;

/// Visits every item of `kind` (resource, scope, span or spanevent); the
/// visitor returns whether to keep it.
pub fn traces(req: &mut ExportTraceServiceRequest, kind: ContextKind, now: i64, f: Visit) {
    match kind {
        ContextKind::Resource => req.resource_spans.retain_mut(|rs| {
            f(&mut EvalCtx { resource: Some(&mut rs.resource), now_unix_nanos: now, ..Default::default() })
        }),
        _ => {
            for rs in &mut req.resource_spans {
                let res = &mut rs.resource;
                if kind == ContextKind::Scope {
                    rs.scope_spans.retain_mut(|ss| {
                        f(&mut EvalCtx {
                            resource: Some(&mut *res),
                            scope: Some(&mut ss.scope),
                            now_unix_nanos: now,
                            ..Default::default()
                        })
                    });
                    continue;
                }
                for ss in &mut rs.scope_spans {
                    let scope = &mut ss.scope;
                    if kind == ContextKind::Span {
                        ss.spans.retain_mut(|span| {
                            f(&mut EvalCtx {
                                resource: Some(&mut *res),
                                scope: Some(&mut *scope),
                                span: Some(span),
                                now_unix_nanos: now,
                                ..Default::default()
                            })
                        });
                        continue;
                    }
                    for span in &mut ss.spans {
                        let mut events = std::mem::take(&mut span.events);
                        events.retain_mut(|e| {
                            f(&mut EvalCtx {
                                resource: Some(&mut *res),
                                scope: Some(&mut *scope),
                                span: Some(&mut *span),
                                event: Some(e),
                                now_unix_nanos: now,
                                ..Default::default()
                            })
                        });
                        span.events = events;
                    }
                }
            }
        }
    }
}

/// As [`traces`], for resource, scope, metric and datapoint.
pub fn metrics(req: &mut ExportMetricsServiceRequest, kind: ContextKind, now: i64, f: Visit) {
    if kind == ContextKind::Resource {
        return req.resource_metrics.retain_mut(|rm| {
            f(&mut EvalCtx { resource: Some(&mut rm.resource), now_unix_nanos: now, ..Default::default() })
        });
    }
    for rm in &mut req.resource_metrics {
        let res = &mut rm.resource;
        if kind == ContextKind::Scope {
            rm.scope_metrics.retain_mut(|sm| {
                f(&mut EvalCtx {
                    resource: Some(&mut *res),
                    scope: Some(&mut sm.scope),
                    now_unix_nanos: now,
                    ..Default::default()
                })
            });
            continue;
        }
        for sm in &mut rm.scope_metrics {
            let scope = &mut sm.scope;
            if kind == ContextKind::Metric {
                sm.metrics.retain_mut(|m| {
                    f(&mut EvalCtx {
                        resource: Some(&mut *res),
                        scope: Some(&mut *scope),
                        metric: Some(m),
                        now_unix_nanos: now,
                        ..Default::default()
                    })
                });
                continue;
            }
            for metric in &mut sm.metrics {
                let metric_type = Some(metric_type_of(metric));
                let mut data = metric.data.take();
                macro_rules! points {
                    ($points:expr, $variant:ident) => {
                        $points.retain_mut(|p| {
                            f(&mut EvalCtx {
                                resource: Some(&mut *res),
                                scope: Some(&mut *scope),
                                metric: Some(&mut *metric),
                                metric_type,
                                point: Some(PointMut::$variant(p)),
                                now_unix_nanos: now,
                                ..Default::default()
                            })
                        })
                    };
                }
                match &mut data {
                    Some(Data::Gauge(g)) => points!(g.data_points, Number),
                    Some(Data::Sum(s)) => points!(s.data_points, Number),
                    Some(Data::Histogram(h)) => points!(h.data_points, Histogram),
                    Some(Data::ExponentialHistogram(h)) => points!(h.data_points, ExpHistogram),
                    Some(Data::Summary(s)) => points!(s.data_points, Summary),
                    None => {}
                }
                metric.data = data;
            }
        }
    }
}

/// As [`traces`], for resource, scope and log.
pub fn logs(req: &mut ExportLogsServiceRequest, kind: ContextKind, now: i64, f: Visit) {
    if kind == ContextKind::Resource {
        return req.resource_logs.retain_mut(|rl| {
            f(&mut EvalCtx { resource: Some(&mut rl.resource), now_unix_nanos: now, ..Default::default() })
        });
    }
    for rl in &mut req.resource_logs {
        let res = &mut rl.resource;
        if kind == ContextKind::Scope {
            rl.scope_logs.retain_mut(|sl| {
                f(&mut EvalCtx {
                    resource: Some(&mut *res),
                    scope: Some(&mut sl.scope),
                    now_unix_nanos: now,
                    ..Default::default()
                })
            });
            continue;
        }
        for sl in &mut rl.scope_logs {
            let scope = &mut sl.scope;
            sl.log_records.retain_mut(|r| {
                f(&mut EvalCtx {
                    resource: Some(&mut *res),
                    scope: Some(&mut *scope),
                    log: Some(r),
                    now_unix_nanos: now,
                    ..Default::default()
                })
            });
        }
    }
}

/// Wall-clock time for `Now()` without reading the clock per batch: the
/// pair read once when a processor is built, advanced by the monotonic
/// time the processor is given.
#[derive(Debug, Clone, Copy)]
pub struct WallClock {
    at: std::time::Instant,
    unix_nanos: i64,
}

impl WallClock {
    pub fn new() -> Self {
        let unix_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(i64::MAX as u128) as i64);
        WallClock { at: std::time::Instant::now(), unix_nanos }
    }

    pub fn unix_nanos(&self, now: std::time::Instant) -> i64 {
        let since = now.saturating_duration_since(self.at).as_nanos().min(i64::MAX as u128) as i64;
        self.unix_nanos.saturating_add(since)
    }
}

impl Default for WallClock {
    fn default() -> Self {
        Self::new()
    }
}
