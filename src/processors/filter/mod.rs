//! The `filter` processor (traces, metrics, logs): drops spans, metric data
//! points and log records by the Collector's legacy `include`/`exclude`
//! match blocks (see `config`), plus span events by `span_events`, or by
//! the Collector's OTTL conditions (see `ottl`; not both for one signal).
//!
//! Guarantees:
//! - An item is kept when it matches `include` (if given) and does not match
//!   `exclude` (if given). The decision is a pure function of the item, its
//!   scope and its resource: no state, no clock.
//! - Scopes and resources left empty by dropping are removed, and so are
//!   metrics left without data points; a batch left empty is not passed on.
//! - Every dropped item is counted in `otelcol_processor_dropped_spans_total`,
//!   `_metric_points_total` or `_log_records_total` (a metric dropped whole
//!   counts its data points); dropped span events in
//!   `sluice_filter_span_events_dropped_total`.
//! - Patterns are compiled once, when the processor is built; matching
//!   allocates nothing.

pub mod config;
pub mod matcher;
pub mod ottl;

use super::{Processor, ProcessorContext};
use crate::config::describe::SettingsType;
use crate::data::{Batch, Signal};
use crate::telemetry::FilterMetrics;
use config::FilterConfig;
use matcher::{Compiled, SpanView};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, Metric};
use std::time::Instant;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::processors::{ProcessorFactory, ProcessorSpec};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "filter",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "drops spans, span events, metric data points and log records by OTTL conditions or include/exclude match blocks",
        example: "error_mode: ignore\ntraces:\n  span:\n    - 'attributes[\"http.route\"] == \"/health\"'\nmetrics:\n  metric:\n    - 'name == \"debug.heartbeat\"'\nlogs:\n  log_record:\n    - 'severity_number < SEVERITY_NUMBER_INFO'\n",
    },
    settings: SettingsType::of::<FilterConfig>(),
    compile: |input| {
        let cfg: FilterConfig = input.typed()?;
        let (compiled, mut errors) = matcher::compile(&cfg);
        let (conditions, ottl_errors) = ottl::compile(&cfg);
        errors.extend(ottl_errors);
        let mut c = input.checker();
        for e in &errors {
            c.error_at(&e.path, e.message.clone(), e.hint.clone());
        }
        errors.is_empty().then(|| {
            std::sync::Arc::new(FilterSpec {
                config: cfg,
                compiled: std::sync::Arc::new(compiled),
                ottl: std::sync::Arc::new(conditions),
            }) as _
        })
    },
};

/// The filter's compiled match blocks, shared by its workers.
#[derive(Debug)]
pub struct FilterSpec {
    config: FilterConfig,
    compiled: std::sync::Arc<Compiled>,
    ottl: std::sync::Arc<ottl::OttlConditions>,
}

impl FilterSpec {
    /// The settings it was compiled from.
    pub fn config(&self) -> &FilterConfig {
        &self.config
    }
}

impl PartialEq for FilterSpec {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl ProcessorSpec for FilterSpec {
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(FilterProcessor::from_compiled(self.compiled.clone(), self.ottl.clone(), ctx)))
    }
}

pub struct FilterProcessor {
    m: std::sync::Arc<Compiled>,
    ottl: std::sync::Arc<ottl::OttlConditions>,
    metrics: FilterMetrics,
    ottl_metrics: crate::telemetry::OttlMetrics,
    clock: crate::ottl::walk::WallClock,
    id: String,
}

impl FilterProcessor {
    /// Compiles `cfg` on its own (tests and benches): the first error, if any.
    pub fn new(cfg: &FilterConfig, ctx: &ProcessorContext) -> Result<Self, String> {
        let (m, mut errors) = matcher::compile(cfg);
        let (conditions, ottl_errors) = ottl::compile(cfg);
        errors.extend(ottl_errors);
        match errors.into_iter().next() {
            Some(e) => Err(e.message),
            None => Ok(Self::from_compiled(std::sync::Arc::new(m), std::sync::Arc::new(conditions), ctx)),
        }
    }

    pub fn from_compiled(
        m: std::sync::Arc<Compiled>,
        ottl: std::sync::Arc<ottl::OttlConditions>,
        ctx: &ProcessorContext,
    ) -> Self {
        FilterProcessor {
            m,
            ottl,
            metrics: FilterMetrics::new(&ctx.registry, &ctx.id, ctx.signal),
            ottl_metrics: crate::telemetry::OttlMetrics::new(&ctx.registry, &ctx.id, ctx.signal),
            clock: crate::ottl::walk::WallClock::new(),
            id: ctx.id.clone(),
        }
    }

    /// Runs the OTTL conditions: false when the batch is to be dropped
    /// whole (a failure under `error_mode: propagate`).
    fn filter_ottl(&self, batch: &mut Batch, now: Instant) -> bool {
        let o = &self.ottl;
        let relevant = match batch {
            Batch::Traces(_) => !o.span.is_empty() || !o.spanevent.is_empty(),
            Batch::Metrics(_) => !o.metric.is_empty() || !o.datapoint.is_empty(),
            Batch::Logs(_) => !o.log_record.is_empty(),
        };
        if !relevant {
            return true;
        }
        let now = self.clock.unix_nanos(now);
        let before = batch.item_count();
        let mut out = ottl::Outcome::default();
        match batch {
            Batch::Traces(r) => o.traces(r, now, &mut out),
            Batch::Metrics(r) => o.metrics(r, now, &mut out),
            Batch::Logs(r) => o.logs(r, now, &mut out),
        }
        if out.errors > 0 {
            self.ottl_metrics.errors.add(out.errors);
            if let Some(e) = &out.first {
                tracing::warn!(processor = %self.id, errors = out.errors, error = %e, "OTTL conditions failed");
            }
        }
        if out.events_dropped > 0 {
            self.metrics.span_events_dropped.add(out.events_dropped);
        }
        let after = batch.item_count();
        if out.propagate {
            self.ottl_metrics.batches_dropped.inc();
            self.metrics.processor.dropped.add(before as u64);
            return false;
        }
        self.metrics.processor.dropped.add(before.saturating_sub(after) as u64);
        true
    }

    /// Whether this instance would change anything for `signal`.
    pub fn acts_on(&self, signal: Signal) -> bool {
        let m = &self.m;
        (match signal {
            Signal::Traces => {
                m.span_include.is_some()
                    || m.span_exclude.is_some()
                    || m.event_include.is_some()
                    || m.event_exclude.is_some()
            }
            Signal::Metrics => m.metric_include.is_some() || m.metric_exclude.is_some(),
            Signal::Logs => m.log_include.is_some() || m.log_exclude.is_some(),
        }) || !self.ottl.is_empty()
    }

    fn keep_span(&self, v: &SpanView<'_>) -> bool {
        self.m.span_include.as_ref().is_none_or(|i| i.is_match(v))
            && !self.m.span_exclude.as_ref().is_some_and(|e| e.is_match(v))
    }

    fn keep_event(&self, name: &str, attrs: &[KeyValue]) -> bool {
        self.m.event_include.as_ref().is_none_or(|i| i.is_match(name, attrs))
            && !self.m.event_exclude.as_ref().is_some_and(|e| e.is_match(name, attrs))
    }

    fn filter_traces(&self, req: &mut opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest) {
        let (mut spans_dropped, mut events_dropped) = (0u64, 0u64);
        let filter_spans = self.m.span_include.is_some() || self.m.span_exclude.is_some();
        let filter_events = self.m.event_include.is_some() || self.m.event_exclude.is_some();
        for rs in &mut req.resource_spans {
            let resource = rs.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            for ss in &mut rs.scope_spans {
                let scope = ss.scope.as_ref();
                if filter_spans {
                    ss.spans.retain(|s| {
                        let v = SpanView {
                            resource,
                            scope,
                            name: &s.name,
                            kind: s.kind,
                            status: s.status.as_ref().map_or(0, |st| st.code),
                            attributes: &s.attributes,
                        };
                        let keep = self.keep_span(&v);
                        spans_dropped += u64::from(!keep);
                        keep
                    });
                }
                if filter_events {
                    for s in &mut ss.spans {
                        let before = s.events.len();
                        s.events.retain(|e| self.keep_event(&e.name, &e.attributes));
                        let n = (before - s.events.len()) as u64;
                        // The Collector counts events dropped from a span the way the SDK does.
                        s.dropped_events_count = s.dropped_events_count.saturating_add(n as u32);
                        events_dropped += n;
                    }
                }
            }
        }
        if spans_dropped > 0 {
            crate::data::prune_empty_traces(req);
            self.metrics.processor.dropped.add(spans_dropped);
        }
        if events_dropped > 0 {
            self.metrics.span_events_dropped.add(events_dropped);
        }
    }

    fn filter_metrics(
        &self,
        req: &mut opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest,
    ) {
        let (inc, exc) = (self.m.metric_include.as_ref(), self.m.metric_exclude.as_ref());
        if inc.is_none() && exc.is_none() {
            return;
        }
        let mut dropped = 0u64;
        for rm in &mut req.resource_metrics {
            let resource = rm.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            for sm in &mut rm.scope_metrics {
                sm.metrics.retain_mut(|metric| {
                    let before = point_count(metric);
                    // Metric-level answers: None when the block needs each point.
                    let inc_m = inc.map(|i| i.metric_matches(resource, &metric.name));
                    let exc_m = exc.map(|e| e.metric_matches(resource, &metric.name));
                    let inc_per_point = inc.is_some_and(|i| i.per_point()) && inc_m == Some(true);
                    let exc_per_point = exc.is_some_and(|e| e.per_point()) && exc_m == Some(true);
                    if !inc_per_point && !exc_per_point {
                        let keep = inc_m != Some(false) && exc_m != Some(true);
                        if !keep {
                            dropped += before as u64;
                        }
                        return keep;
                    }
                    if inc_m == Some(false) {
                        dropped += before as u64;
                        return false;
                    }
                    // Here the include (if any) matched at metric level, and
                    // at least one block decides point by point.
                    let keep_point = |attrs: &[KeyValue]| {
                        let included = !inc_per_point || inc.is_some_and(|i| i.point_matches(attrs));
                        let excluded = match exc {
                            Some(e) if exc_per_point => e.point_matches(attrs),
                            Some(_) => exc_m == Some(true),
                            None => false,
                        };
                        included && !excluded
                    };
                    retain_points(metric, keep_point);
                    let after = point_count(metric);
                    dropped += (before - after) as u64;
                    // A metric that had points and lost them all goes too.
                    after > 0 || before == 0
                });
            }
        }
        if dropped > 0 {
            crate::data::prune_empty_metrics(req);
            self.metrics.processor.dropped.add(dropped);
        }
    }

    fn filter_logs(&self, req: &mut opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest) {
        let (inc, exc) = (self.m.log_include.as_ref(), self.m.log_exclude.as_ref());
        if inc.is_none() && exc.is_none() {
            return;
        }
        let mut dropped = 0u64;
        for rl in &mut req.resource_logs {
            let resource = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
            for sl in &mut rl.scope_logs {
                sl.log_records.retain(|r| {
                    let keep =
                        inc.is_none_or(|i| i.is_match(resource, r)) && !exc.is_some_and(|e| e.is_match(resource, r));
                    dropped += u64::from(!keep);
                    keep
                });
            }
        }
        if dropped > 0 {
            crate::data::prune_empty_logs(req);
            self.metrics.processor.dropped.add(dropped);
        }
    }
}

fn point_count(m: &Metric) -> usize {
    match &m.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}

fn retain_points(m: &mut Metric, keep: impl Fn(&[KeyValue]) -> bool) {
    match &mut m.data {
        Some(Data::Gauge(g)) => g.data_points.retain(|p| keep(&p.attributes)),
        Some(Data::Sum(s)) => s.data_points.retain(|p| keep(&p.attributes)),
        Some(Data::Histogram(h)) => h.data_points.retain(|p| keep(&p.attributes)),
        Some(Data::ExponentialHistogram(h)) => h.data_points.retain(|p| keep(&p.attributes)),
        Some(Data::Summary(s)) => s.data_points.retain(|p| keep(&p.attributes)),
        None => {}
    }
}

impl Processor for FilterProcessor {
    fn process(&mut self, mut batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        if !self.filter_ottl(&mut batch, now) {
            return;
        }
        let empty = match &mut batch {
            Batch::Traces(req) => {
                self.filter_traces(req);
                req.resource_spans.is_empty()
            }
            Batch::Metrics(req) => {
                self.filter_metrics(req);
                req.resource_metrics.is_empty()
            }
            Batch::Logs(req) => {
                self.filter_logs(req);
                req.resource_logs.is_empty()
            }
        };
        if !empty {
            out.push(batch);
        }
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod ottl_tests;
