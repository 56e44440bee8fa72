//! Splitting one batch by the routes: each route, in table order, moves
//! what it matches out of what is left (whole resources, or single items
//! with a copy of their resource and scope); the rest goes to the default.

use super::{emit, owned, Route};
use crate::config::PipelineId;
use crate::connectors::{Connector, Emitted, Now};
use crate::data::{Batch, Payload};
use crate::ottl::context::{metric_type_of, PointMut};
use crate::ottl::{ContextKind, ErrorMode, EvalCtx, EvalError};
use crate::telemetry::RoutingMetrics;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric, ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans};
use std::sync::Arc;

pub(super) struct Router {
    pub id: String,
    pub routes: Arc<[Route]>,
    pub default: Arc<[PipelineId]>,
    pub error_mode: ErrorMode,
    pub metrics: RoutingMetrics,
}

/// Moves the items `matches` holds for out of `items`, keeping the order of both.
fn split<T>(items: &mut Vec<T>, mut matches: impl FnMut(&mut T) -> bool) -> Vec<T> {
    let mut moved = Vec::new();
    let mut kept = Vec::with_capacity(items.len());
    for mut item in items.drain(..) {
        if matches(&mut item) {
            moved.push(item);
        } else {
            kept.push(item);
        }
    }
    *items = kept;
    moved
}

/// The outcome of one route's conditions over a batch.
struct Eval<'r> {
    route: &'r Route,
    mode: ErrorMode,
    errors: u64,
    first: Option<EvalError>,
    /// `propagate` met an error: the batch is dropped.
    failed: bool,
}

impl Eval<'_> {
    fn test(&mut self, ctx: &EvalCtx) -> bool {
        if self.failed {
            return false;
        }
        let Some(cond) = &self.route.condition else { return true };
        match cond.eval(ctx) {
            Ok(m) => m,
            Err(e) => {
                self.errors += 1;
                if self.first.is_none() {
                    self.first = Some(e);
                }
                self.failed = self.mode == ErrorMode::Propagate;
                false
            }
        }
    }
}

impl Router {
    /// Counts a route's errors; `Err` when the batch must be dropped.
    fn settle(&self, i: usize, eval: Eval) -> Result<(), String> {
        if eval.errors > 0 {
            if let Some(c) = self.metrics.errors.get(i) {
                c.add(eval.errors);
            }
        }
        match (eval.first, self.error_mode) {
            (Some(e), ErrorMode::Propagate) => Err(format!(
                "connectors::{}: route {i} ({:?}) failed: {e}; the batch is dropped (error_mode: propagate)",
                self.id, eval.route.text
            )),
            (Some(e), ErrorMode::Ignore) => {
                tracing::warn!(connector = %self.id, route = i, error = %e, errors = eval.errors,
                    "a route's condition failed; the items go on to the next route");
                Ok(())
            }
            _ => Ok(()),
        }
    }

    fn routed(&self, i: usize, batch: Batch, out: &mut Vec<Emitted>) {
        if let Some(c) = self.metrics.routed.get(i) {
            c.add(batch.item_count() as u64);
        }
        emit(out, &self.routes[i].pipelines, batch);
    }

    fn rest(&self, batch: Batch, out: &mut Vec<Emitted>) {
        let n = batch.item_count() as u64;
        if n == 0 {
            return;
        }
        if self.default.is_empty() {
            self.metrics.unrouted.add(n);
        } else {
            self.metrics.defaulted.add(n);
            emit(out, &self.default, batch);
        }
    }

    fn traces(&self, mut rest: ExportTraceServiceRequest, now: i64, out: &mut Vec<Emitted>) -> Result<(), String> {
        let mut sent = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            if rest.resource_spans.is_empty() {
                break;
            }
            let mut eval = Eval { route, mode: self.error_mode, errors: 0, first: None, failed: false };
            let mut matched: Vec<ResourceSpans> = Vec::new();
            if route.context == ContextKind::Resource {
                matched = split(&mut rest.resource_spans, |rs| {
                    eval.test(&EvalCtx { resource: Some(&mut rs.resource), now_unix_nanos: now, ..Default::default() })
                });
            } else {
                for rs in &mut rest.resource_spans {
                    let ResourceSpans { resource, scope_spans, schema_url } = rs;
                    let mut scopes = Vec::new();
                    for ss in scope_spans.iter_mut() {
                        let ScopeSpans { scope, spans, schema_url: scope_schema } = ss;
                        let moved = split(spans, |span| {
                            eval.test(&EvalCtx {
                                resource: Some(&mut *resource),
                                scope: Some(&mut *scope),
                                span: Some(span),
                                now_unix_nanos: now,
                                ..Default::default()
                            })
                        });
                        if !moved.is_empty() {
                            scopes.push(ScopeSpans {
                                scope: scope.clone(),
                                spans: moved,
                                schema_url: scope_schema.clone(),
                            });
                        }
                    }
                    scope_spans.retain(|ss| !ss.spans.is_empty());
                    if !scopes.is_empty() {
                        matched.push(ResourceSpans {
                            resource: resource.clone(),
                            scope_spans: scopes,
                            schema_url: schema_url.clone(),
                        });
                    }
                }
                rest.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
            }
            self.settle(i, eval)?;
            if !matched.is_empty() {
                sent.push((i, Batch::Traces(ExportTraceServiceRequest { resource_spans: matched })));
            }
        }
        for (i, b) in sent {
            self.routed(i, b, out);
        }
        self.rest(Batch::Traces(rest), out);
        Ok(())
    }

    fn logs(&self, mut rest: ExportLogsServiceRequest, now: i64, out: &mut Vec<Emitted>) -> Result<(), String> {
        let mut sent = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            if rest.resource_logs.is_empty() {
                break;
            }
            let mut eval = Eval { route, mode: self.error_mode, errors: 0, first: None, failed: false };
            let mut matched: Vec<ResourceLogs> = Vec::new();
            if route.context == ContextKind::Resource {
                matched = split(&mut rest.resource_logs, |rl| {
                    eval.test(&EvalCtx { resource: Some(&mut rl.resource), now_unix_nanos: now, ..Default::default() })
                });
            } else {
                for rl in &mut rest.resource_logs {
                    let ResourceLogs { resource, scope_logs, schema_url } = rl;
                    let mut scopes = Vec::new();
                    for sl in scope_logs.iter_mut() {
                        let ScopeLogs { scope, log_records, schema_url: scope_schema } = sl;
                        let moved = split(log_records, |r| {
                            eval.test(&EvalCtx {
                                resource: Some(&mut *resource),
                                scope: Some(&mut *scope),
                                log: Some(r),
                                now_unix_nanos: now,
                                ..Default::default()
                            })
                        });
                        if !moved.is_empty() {
                            scopes.push(ScopeLogs {
                                scope: scope.clone(),
                                log_records: moved,
                                schema_url: scope_schema.clone(),
                            });
                        }
                    }
                    scope_logs.retain(|sl| !sl.log_records.is_empty());
                    if !scopes.is_empty() {
                        matched.push(ResourceLogs {
                            resource: resource.clone(),
                            scope_logs: scopes,
                            schema_url: schema_url.clone(),
                        });
                    }
                }
                rest.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
            }
            self.settle(i, eval)?;
            if !matched.is_empty() {
                sent.push((i, Batch::Logs(ExportLogsServiceRequest { resource_logs: matched })));
            }
        }
        for (i, b) in sent {
            self.routed(i, b, out);
        }
        self.rest(Batch::Logs(rest), out);
        Ok(())
    }

    fn metrics(&self, mut rest: ExportMetricsServiceRequest, now: i64, out: &mut Vec<Emitted>) -> Result<(), String> {
        let mut sent = Vec::new();
        for (i, route) in self.routes.iter().enumerate() {
            if rest.resource_metrics.is_empty() {
                break;
            }
            let mut eval = Eval { route, mode: self.error_mode, errors: 0, first: None, failed: false };
            let mut matched: Vec<ResourceMetrics> = Vec::new();
            if route.context == ContextKind::Resource {
                matched = split(&mut rest.resource_metrics, |rm| {
                    eval.test(&EvalCtx { resource: Some(&mut rm.resource), now_unix_nanos: now, ..Default::default() })
                });
            } else {
                let points = route.context == ContextKind::DataPoint;
                for rm in &mut rest.resource_metrics {
                    let ResourceMetrics { resource, scope_metrics, schema_url } = rm;
                    let mut scopes = Vec::new();
                    for sm in scope_metrics.iter_mut() {
                        let ScopeMetrics { scope, metrics, schema_url: scope_schema } = sm;
                        let moved = if points {
                            let mut moved = Vec::new();
                            for metric in metrics.iter_mut() {
                                if let Some(m) = split_points(metric, &mut |metric, metric_type, point| {
                                    eval.test(&EvalCtx {
                                        resource: Some(&mut *resource),
                                        scope: Some(&mut *scope),
                                        metric: Some(metric),
                                        metric_type: Some(metric_type),
                                        point: Some(point),
                                        now_unix_nanos: now,
                                        ..Default::default()
                                    })
                                }) {
                                    moved.push(m);
                                }
                            }
                            metrics.retain(has_points);
                            moved
                        } else {
                            split(metrics, |m| {
                                eval.test(&EvalCtx {
                                    resource: Some(&mut *resource),
                                    scope: Some(&mut *scope),
                                    metric: Some(m),
                                    now_unix_nanos: now,
                                    ..Default::default()
                                })
                            })
                        };
                        if !moved.is_empty() {
                            scopes.push(ScopeMetrics {
                                scope: scope.clone(),
                                metrics: moved,
                                schema_url: scope_schema.clone(),
                            });
                        }
                    }
                    scope_metrics.retain(|sm| !sm.metrics.is_empty());
                    if !scopes.is_empty() {
                        matched.push(ResourceMetrics {
                            resource: resource.clone(),
                            scope_metrics: scopes,
                            schema_url: schema_url.clone(),
                        });
                    }
                }
                rest.resource_metrics.retain(|rm| !rm.scope_metrics.is_empty());
            }
            self.settle(i, eval)?;
            if !matched.is_empty() {
                sent.push((i, Batch::Metrics(ExportMetricsServiceRequest { resource_metrics: matched })));
            }
        }
        for (i, b) in sent {
            self.routed(i, b, out);
        }
        self.rest(Batch::Metrics(rest), out);
        Ok(())
    }
}

/// Whether a metric still has data points (a metric with no data at all
/// counts as having none).
fn has_points(m: &Metric) -> bool {
    match &m.data {
        Some(Data::Gauge(g)) => !g.data_points.is_empty(),
        Some(Data::Sum(s)) => !s.data_points.is_empty(),
        Some(Data::Histogram(h)) => !h.data_points.is_empty(),
        Some(Data::ExponentialHistogram(h)) => !h.data_points.is_empty(),
        Some(Data::Summary(s)) => !s.data_points.is_empty(),
        None => false,
    }
}

/// Moves the data points of `metric` that `matches` holds for into a copy
/// of the metric (name, unit, type, temporality), which it returns when
/// any moved. The metric's data is taken out while its points are tested,
/// as the walker does: the context sees the metric's type as it was.
fn split_points(metric: &mut Metric, matches: &mut dyn FnMut(&mut Metric, i64, PointMut) -> bool) -> Option<Metric> {
    let metric_type = metric_type_of(metric);
    let mut data = metric.data.take();
    macro_rules! points {
        ($d:expr, $variant:ident, $wrap:path) => {{
            let moved = split(&mut $d.data_points, |p| matches(metric, metric_type, PointMut::$variant(p)));
            if moved.is_empty() {
                None
            } else {
                let mut shell = std::mem::take(&mut $d.data_points);
                let copy = {
                    let mut c = $d.clone();
                    c.data_points = moved;
                    c
                };
                std::mem::swap(&mut $d.data_points, &mut shell);
                Some($wrap(copy))
            }
        }};
    }
    let moved = match &mut data {
        Some(Data::Gauge(g)) => points!(g, Number, Data::Gauge),
        Some(Data::Sum(s)) => points!(s, Number, Data::Sum),
        Some(Data::Histogram(h)) => points!(h, Histogram, Data::Histogram),
        Some(Data::ExponentialHistogram(h)) => points!(h, ExpHistogram, Data::ExponentialHistogram),
        Some(Data::Summary(s)) => points!(s, Summary, Data::Summary),
        None => None,
    };
    metric.data = data;
    moved.map(|d| Metric {
        name: metric.name.clone(),
        description: metric.description.clone(),
        unit: metric.unit.clone(),
        metadata: metric.metadata.clone(),
        data: Some(d),
    })
}

impl Connector for Router {
    fn consume(&mut self, batch: &Batch, now: Now, out: &mut Vec<Batch>) {
        let mut emitted = Vec::new();
        // The plain form cannot say where a batch goes; the runtime calls
        // `consume_routed`. Kept for callers that only count.
        let _ = self.consume_routed(&Payload::Decoded(batch.clone()), now, &mut emitted);
        out.extend(emitted.into_iter().filter_map(|e| e.payload.into_decoded().ok()));
    }

    fn consume_routed(&mut self, payload: &Payload, now: Now, out: &mut Vec<Emitted>) -> Result<(), String> {
        let batch = owned(payload)?;
        let now = i64::try_from(now.unix_nanos).unwrap_or(i64::MAX);
        // Nothing is emitted unless the whole batch was routed: `propagate`
        // drops it whole, as the Collector returns its error before sending.
        let mut next = Vec::new();
        match batch {
            Batch::Traces(req) => self.traces(req, now, &mut next)?,
            Batch::Metrics(req) => self.metrics(req, now, &mut next)?,
            Batch::Logs(req) => self.logs(req, now, &mut next)?,
        }
        out.extend(next);
        Ok(())
    }
}
