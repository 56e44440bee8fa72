//! The filter's OTTL form (`traces.span`, `traces.spanevent`,
//! `metrics.metric`, `metrics.datapoint`, `logs.log_record`): an item that
//! meets any of its context's conditions is dropped, as in the Collector's
//! filterprocessor. Spans are decided before their events, metrics before
//! their data points; a metric left without data points is dropped too.
//!
//! A condition that fails on an item counts in `sluice_ottl_errors_total`;
//! under `ignore` and `silent` it counts as not met (the item stays), under
//! `propagate` the whole batch is dropped and counted.

use super::config::FilterConfig;
use super::matcher::CompileError;
use crate::data::metric_point_count;
use crate::ottl::walk;
use crate::ottl::{Condition, ContextKind, ErrorMode, EvalCtx, EvalError, Limits};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

#[derive(Debug, Default)]
pub struct OttlConditions {
    pub span: Vec<Condition>,
    pub spanevent: Vec<Condition>,
    pub metric: Vec<Condition>,
    pub datapoint: Vec<Condition>,
    pub log_record: Vec<Condition>,
    pub error_mode: ErrorMode,
}

impl OttlConditions {
    pub fn is_empty(&self) -> bool {
        self.span.is_empty()
            && self.spanevent.is_empty()
            && self.metric.is_empty()
            && self.datapoint.is_empty()
            && self.log_record.is_empty()
    }
}

/// Compiles the OTTL conditions of `cfg`, and checks that no signal has
/// both them and legacy blocks.
pub fn compile(cfg: &FilterConfig) -> (OttlConditions, Vec<CompileError>) {
    let mut out = OttlConditions {
        error_mode: cfg.error_mode.as_deref().and_then(ErrorMode::parse).unwrap_or_default(),
        ..Default::default()
    };
    let mut errors = Vec::new();
    let mut one = |field: [&str; 2], list: &Option<Vec<String>>, ctx: ContextKind, into: &mut Vec<Condition>| {
        for (i, text) in list.iter().flatten().enumerate() {
            match Condition::compile_in(text, ctx, false, Limits::default()) {
                Ok(c) => into.push(c),
                Err(e) => errors.push(CompileError {
                    path: vec![field[0].into(), field[1].into(), i.to_string()],
                    message: e.to_string(),
                    hint: e.hint.clone(),
                }),
            }
        }
    };
    one(["traces", "span"], &cfg.traces.span, ContextKind::Span, &mut out.span);
    one(["traces", "spanevent"], &cfg.traces.spanevent, ContextKind::SpanEvent, &mut out.spanevent);
    one(["metrics", "metric"], &cfg.metrics.metric, ContextKind::Metric, &mut out.metric);
    one(["metrics", "datapoint"], &cfg.metrics.datapoint, ContextKind::DataPoint, &mut out.datapoint);
    one(["logs", "log_record"], &cfg.logs.log_record, ContextKind::Log, &mut out.log_record);
    let conflict = |path: &str, what: &str| CompileError {
        path: vec![path.to_string()],
        message: format!("cannot use ottl conditions and include/exclude for {what} at the same time"),
        hint: Some("write the include/exclude blocks as OTTL conditions, or keep only the legacy blocks".into()),
    };
    if (cfg.traces.span.is_some() || cfg.traces.spanevent.is_some())
        && (cfg.spans.include.is_some() || cfg.spans.exclude.is_some())
    {
        errors.push(conflict("traces", "spans"));
    }
    if (cfg.metrics.metric.is_some() || cfg.metrics.datapoint.is_some())
        && (cfg.metrics.include.is_some() || cfg.metrics.exclude.is_some())
    {
        errors.push(conflict("metrics", "metrics"));
    }
    if cfg.logs.log_record.is_some() && (cfg.logs.include.is_some() || cfg.logs.exclude.is_some()) {
        errors.push(conflict("logs", "logs"));
    }
    (out, errors)
}

/// What running conditions over a batch came to.
#[derive(Default, Debug)]
pub struct Outcome {
    pub errors: u64,
    pub first: Option<EvalError>,
    pub propagate: bool,
    /// Span events dropped from kept spans.
    pub events_dropped: u64,
}

/// Whether any condition holds for the item (the item is dropped).
fn any(conds: &[Condition], mode: ErrorMode, ctx: &EvalCtx, out: &mut Outcome) -> bool {
    if out.propagate {
        return false;
    }
    for c in conds {
        match c.eval(ctx) {
            Ok(true) => return true,
            Ok(false) => {}
            Err(e) => {
                out.errors += 1;
                if mode != ErrorMode::Silent && out.first.is_none() {
                    out.first = Some(e);
                }
                if mode == ErrorMode::Propagate {
                    out.propagate = true;
                    return false;
                }
            }
        }
    }
    false
}

impl OttlConditions {
    pub fn traces(&self, req: &mut ExportTraceServiceRequest, now: i64, out: &mut Outcome) {
        let mode = self.error_mode;
        if !self.span.is_empty() {
            walk::traces(req, ContextKind::Span, now, &mut |ctx| !any(&self.span, mode, ctx, out));
        }
        if !self.spanevent.is_empty() && !out.propagate {
            let mut dropped = 0u64;
            walk::traces(req, ContextKind::SpanEvent, now, &mut |ctx| {
                let drop = any(&self.spanevent, mode, ctx, out);
                if drop {
                    dropped += 1;
                    if let Some(span) = ctx.span.as_deref_mut() {
                        span.dropped_events_count = span.dropped_events_count.saturating_add(1);
                    }
                }
                !drop
            });
            out.events_dropped += dropped;
        }
        crate::data::prune_empty_traces(req);
    }

    pub fn metrics(&self, req: &mut ExportMetricsServiceRequest, now: i64, out: &mut Outcome) {
        let mode = self.error_mode;
        if !self.metric.is_empty() {
            walk::metrics(req, ContextKind::Metric, now, &mut |ctx| !any(&self.metric, mode, ctx, out));
        }
        if !self.datapoint.is_empty() && !out.propagate {
            walk::metrics(req, ContextKind::DataPoint, now, &mut |ctx| !any(&self.datapoint, mode, ctx, out));
            // A metric whose points all went goes too.
            for rm in &mut req.resource_metrics {
                for sm in &mut rm.scope_metrics {
                    sm.metrics.retain(|m| metric_point_count(m.data.as_ref()) > 0 || m.data.is_none());
                }
            }
        }
        crate::data::prune_empty_metrics(req);
    }

    pub fn logs(&self, req: &mut ExportLogsServiceRequest, now: i64, out: &mut Outcome) {
        if !self.log_record.is_empty() {
            let mode = self.error_mode;
            walk::logs(req, ContextKind::Log, now, &mut |ctx| !any(&self.log_record, mode, ctx, out));
        }
        crate::data::prune_empty_logs(req);
    }
}
