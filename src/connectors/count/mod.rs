//! The `count` connector: counts spans, span events, metrics, data points
//! and log records and emits the counts as metrics, as the Collector's
//! `countconnector` does (traces, metrics or logs to metrics).
//!
//! Each count is a monotonic delta `Sum` of integers per batch and resource:
//! the resource's attributes are kept, the scope is the Collector's
//! (`github.com/open-telemetry/opentelemetry-collector-contrib/connector/countconnector`),
//! one data point per distinct set of the configured `attributes` (looked up
//! on the item, then its scope, then its resource, else the attribute's
//! `default_value`; an item that lacks one is not counted), stamped with the
//! earliest and latest timestamps of the counted items (the time of the call
//! when they have none). A section left out counts with the Collector's
//! default metric; a section written counts only what it names.
//!
//! A metric with OTTL `conditions` counts an item when any of them holds
//! for it (no conditions: every item), each compiled in its section's
//! context (`span`, `spanevent`, `metric`, `datapoint`, `log`). As in the
//! Collector, a condition that fails on an item fails the whole batch: no
//! counts are emitted for it, and the runtime counts it as dropped
//! (`otelcol_connector_dropped_items_total`) and logs why.
//!
//! Guarantee: the counts are exact for every batch; the connector keeps no
//! state between batches, so its memory is bounded by one batch.
//! `attributes[].any_depth` is refused at load.

use crate::config::component::{Checker, CollectorOnly, ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::connectors::{Connector, ConnectorContext, ConnectorFactory, ConnectorSpec, Now};
use crate::data::{Batch, Payload, Signal};
use crate::ottl::walk;
use crate::ottl::{Condition, ContextKind, EvalCtx, Limits};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::BTreeMap;
use std::sync::Arc;

pub static FACTORY: ConnectorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Connector,
        name: "count",
        aliases: &[],
        signals: &[Signal::Traces, Signal::Metrics, Signal::Logs],
        description: "counts spans, span events, metrics, data points and log records into metrics",
        example: "",
    },
    settings: SettingsType::of::<CountConfig>(),
    compile: |input| {
        let cfg: CountConfig = input.typed()?;
        let mut compiled = None;
        input.check(|c| compiled = Some(cfg.compile(c))).then_some(())?;
        compiled.map(|c| Arc::new(c) as _)
    },
};

/// The Collector's default metrics, used for a section left out.
pub const DEFAULT_SPANS: (&str, &str) = ("trace.span.count", "The number of spans observed.");
pub const DEFAULT_SPAN_EVENTS: (&str, &str) = ("trace.span.event.count", "The number of span events observed.");
pub const DEFAULT_METRICS: (&str, &str) = ("metric.count", "The number of metrics observed.");
pub const DEFAULT_DATA_POINTS: (&str, &str) = ("metric.datapoint.count", "The number of data points observed.");
pub const DEFAULT_LOGS: (&str, &str) = ("log.record.count", "The number of log records observed.");

/// The instrumentation scope of what the connector emits: the Collector's.
pub const SCOPE_NAME: &str = "github.com/open-telemetry/opentelemetry-collector-contrib/connector/countconnector";

/// `connectors::count`: one map of metric name → settings per kind of item.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CountConfig {
    /// Metrics counting spans, by metric name; absent: `trace.span.count`.
    #[serde(default)]
    pub spans: Option<BTreeMap<String, MetricInfo>>,
    /// Metrics counting span events, by metric name; absent: `trace.span.event.count`.
    #[serde(default)]
    pub spanevents: Option<BTreeMap<String, MetricInfo>>,
    /// Metrics counting metrics, by metric name; absent: `metric.count`.
    #[serde(default)]
    pub metrics: Option<BTreeMap<String, MetricInfo>>,
    /// Metrics counting data points, by metric name; absent: `metric.datapoint.count`.
    #[serde(default)]
    pub datapoints: Option<BTreeMap<String, MetricInfo>>,
    /// Metrics counting log records, by metric name; absent: `log.record.count`.
    #[serde(default)]
    pub logs: Option<BTreeMap<String, MetricInfo>>,
}

/// One count metric.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MetricInfo {
    /// The count metric's description.
    #[serde(default)]
    pub description: String,
    /// OTTL conditions: an item is counted when any holds (none: every item).
    #[serde(default)]
    pub conditions: Vec<String>,
    /// A separate count per distinct set of these attributes' values.
    #[serde(default)]
    pub attributes: Vec<AttributeConfig>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AttributeConfig {
    /// Attribute looked up on the item, then its scope, then its resource.
    pub key: String,
    /// Counted under this value when the item has no such attribute; an
    /// empty one (the default) means such items are not counted.
    #[serde(default)]
    pub default_value: String,
    /// Not supported by sluice: refused at load.
    #[serde(default)]
    pub any_depth: Option<CollectorOnly>,
}

/// One count metric, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDef {
    pub name: String,
    pub description: String,
    pub attributes: Vec<(String, Option<String>)>,
    /// Empty: every item counts.
    pub conditions: Conditions,
}

/// A metric's compiled OTTL conditions; two are the same settings when
/// their texts are.
#[derive(Debug, Clone, Default)]
pub struct Conditions {
    texts: Vec<String>,
    compiled: Arc<[Condition]>,
}

impl PartialEq for Conditions {
    fn eq(&self, other: &Self) -> bool {
        self.texts == other.texts
    }
}

impl Conditions {
    pub fn is_empty(&self) -> bool {
        self.compiled.is_empty()
    }

    /// Whether any condition holds for the item.
    fn any(&self, ctx: &EvalCtx) -> Result<bool, String> {
        for c in self.compiled.iter() {
            if c.eval(ctx).map_err(|e| e.0)? {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// The compiled `count` connector: the metrics of each kind of item.
#[derive(Debug, Clone, PartialEq)]
pub struct Count {
    pub spans: Vec<MetricDef>,
    pub span_events: Vec<MetricDef>,
    pub metrics: Vec<MetricDef>,
    pub data_points: Vec<MetricDef>,
    pub logs: Vec<MetricDef>,
}

impl CountConfig {
    fn compile(&self, c: &mut Checker) -> Count {
        let section = |c: &mut Checker,
                       field: &'static str,
                       given: &Option<BTreeMap<String, MetricInfo>>,
                       default: (&str, &str),
                       attributes_allowed: bool,
                       context: ContextKind| {
            let Some(given) = given else {
                return vec![MetricDef {
                    name: default.0.to_string(),
                    description: default.1.to_string(),
                    attributes: Vec::new(),
                    conditions: Conditions::default(),
                }];
            };
            let mut defs = Vec::new();
            for (name, info) in given {
                if name.trim().is_empty() {
                    c.error(
                        &[field],
                        format!("{field}: metric name missing"),
                        Some("name each count, e.g. my.span.count:"),
                    );
                    continue;
                }
                if !attributes_allowed && !info.attributes.is_empty() {
                    c.error_at(
                        &[field.to_string(), name.clone(), "attributes".to_string()],
                        format!(
                            "{field} cannot be counted by attributes (a metric has none; the Collector refuses it too)"
                        ),
                        Some("count data points by attributes under datapoints".to_string()),
                    );
                    continue;
                }
                let mut compiled = Vec::new();
                for (i, text) in info.conditions.iter().enumerate() {
                    match Condition::compile_in(text, context, false, Limits::default()) {
                        Ok(cond) => compiled.push(cond),
                        Err(e) => c.error_at(
                            &[field.to_string(), name.clone(), "conditions".to_string(), i.to_string()],
                            e.to_string(),
                            e.hint.clone(),
                        ),
                    }
                }
                let conditions = Conditions { texts: info.conditions.clone(), compiled: compiled.into() };
                let mut attributes = Vec::new();
                for (i, a) in info.attributes.iter().enumerate() {
                    if a.key.is_empty() {
                        c.error_at(
                            &[
                                field.to_string(),
                                name.clone(),
                                "attributes".to_string(),
                                i.to_string(),
                                "key".to_string(),
                            ],
                            "attribute key missing",
                            Some("e.g. - key: env".to_string()),
                        );
                    }
                    attributes.push((a.key.clone(), Some(a.default_value.clone()).filter(|d| !d.is_empty())));
                }
                defs.push(MetricDef {
                    name: name.clone(),
                    description: info.description.clone(),
                    attributes,
                    conditions,
                });
            }
            defs
        };
        Count {
            spans: section(c, "spans", &self.spans, DEFAULT_SPANS, true, ContextKind::Span),
            span_events: section(c, "spanevents", &self.spanevents, DEFAULT_SPAN_EVENTS, true, ContextKind::SpanEvent),
            metrics: section(c, "metrics", &self.metrics, DEFAULT_METRICS, false, ContextKind::Metric),
            data_points: section(c, "datapoints", &self.datapoints, DEFAULT_DATA_POINTS, true, ContextKind::DataPoint),
            logs: section(c, "logs", &self.logs, DEFAULT_LOGS, true, ContextKind::Log),
        }
    }
}

const PAIRS: &[(Signal, Signal)] =
    &[(Signal::Traces, Signal::Metrics), (Signal::Metrics, Signal::Metrics), (Signal::Logs, Signal::Metrics)];

impl ConnectorSpec for Count {
    fn pairs(&self) -> &'static [(Signal, Signal)] {
        PAIRS
    }

    fn build(&self, _ctx: &ConnectorContext) -> Result<Box<dyn Connector>, String> {
        Ok(Box::new(self.clone()))
    }
}

/// An attribute value as counted: ints and doubles keep their type, anything
/// else is counted as its string form.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Str(String),
    Int(i64),
    Double(f64),
}

impl Key {
    fn of(v: &AnyValue) -> Key {
        match &v.value {
            Some(any_value::Value::IntValue(i)) => Key::Int(*i),
            Some(any_value::Value::DoubleValue(d)) => Key::Double(*d),
            Some(any_value::Value::StringValue(s)) => Key::Str(s.clone()),
            Some(any_value::Value::BoolValue(b)) => Key::Str(b.to_string()),
            _ => Key::Str(String::new()),
        }
    }

    fn value(&self) -> AnyValue {
        AnyValue {
            value: Some(match self {
                Key::Str(s) => any_value::Value::StringValue(s.clone()),
                Key::Int(i) => any_value::Value::IntValue(*i),
                Key::Double(d) => any_value::Value::DoubleValue(*d),
            }),
        }
    }
}

fn lookup<'a>(key: &str, levels: [&'a [KeyValue]; 3]) -> Option<&'a AnyValue> {
    levels.into_iter().find_map(|attrs| attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()))
}

/// The counts of one kind of item within one resource.
struct Counter<'d> {
    defs: &'d [MetricDef],
    /// Per metric: (attribute values, count), in first-seen order.
    counts: Vec<Vec<(Vec<Key>, u64)>>,
    start: u64,
    end: u64,
}

impl<'d> Counter<'d> {
    fn new(defs: &'d [MetricDef]) -> Self {
        Counter { defs, counts: vec![Vec::new(); defs.len()], start: 0, end: 0 }
    }

    fn timestamp(&mut self, t: u64) {
        if t == 0 {
            return;
        }
        if self.start == 0 {
            (self.start, self.end) = (t, t);
        } else {
            self.start = self.start.min(t);
            self.end = self.end.max(t);
        }
    }

    /// Counts one item; `verdict`: which metrics its conditions let count
    /// it (see [`Verdicts`]).
    fn update(&mut self, levels: [&[KeyValue]; 3], verdict: Option<&[bool]>) {
        for (i, (def, counts)) in self.defs.iter().zip(&mut self.counts).enumerate() {
            if verdict.is_some_and(|v| !v.get(i).copied().unwrap_or(true)) {
                continue;
            }
            let mut keys = Vec::with_capacity(def.attributes.len());
            for (key, default) in &def.attributes {
                match (lookup(key, levels), default) {
                    (Some(v), _) => keys.push(Key::of(v)),
                    (None, Some(d)) => keys.push(Key::Str(d.clone())),
                    (None, None) => break,
                }
            }
            if keys.len() != def.attributes.len() {
                continue;
            }
            match counts.iter_mut().find(|(k, _)| *k == keys) {
                Some((_, n)) => *n += 1,
                None => counts.push((keys, 1)),
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.counts.iter().all(Vec::is_empty)
    }

    fn emit(self, now: Now, out: &mut Vec<Metric>) {
        let (start, end) = if self.start != 0 { (self.start, self.end) } else { (now.unix_nanos, now.unix_nanos) };
        for (def, counts) in self.defs.iter().zip(self.counts) {
            if counts.is_empty() {
                continue;
            }
            let data_points = counts
                .into_iter()
                .map(|(keys, n)| NumberDataPoint {
                    attributes: def
                        .attributes
                        .iter()
                        .zip(keys)
                        .map(|((k, _), v)| KeyValue { key: k.clone(), value: Some(v.value()), ..Default::default() })
                        .collect(),
                    start_time_unix_nano: start,
                    time_unix_nano: end,
                    value: Some(number_data_point::Value::AsInt(i64::try_from(n).unwrap_or(i64::MAX))),
                    ..Default::default()
                })
                .collect();
            out.push(Metric {
                name: def.name.clone(),
                description: def.description.clone(),
                data: Some(metric::Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: AggregationTemporality::Delta as i32,
                    is_monotonic: true,
                })),
                ..Default::default()
            });
        }
    }
}

fn resource_metrics(resource: Option<&Resource>, metrics: Vec<Metric>) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource.map(|r| r.attributes.clone()).unwrap_or_default(),
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(InstrumentationScope { name: SCOPE_NAME.to_string(), ..Default::default() }),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn attrs(r: Option<&Resource>) -> &[KeyValue] {
    r.map_or(&[], |r| &r.attributes)
}

fn scope_attrs(s: Option<&InstrumentationScope>) -> &[KeyValue] {
    s.map_or(&[], |s| &s.attributes)
}

/// What the conditions of one kind's metrics say of each item, in the
/// order the OTTL walker visits items (the order the counting loops take
/// them): one flag per metric per item.
struct Verdicts {
    flags: Vec<bool>,
    width: usize,
    next: usize,
}

impl Verdicts {
    /// Evaluates the conditions of `defs` on every item of `kind` in `batch`
    /// (a copy: the walker takes it mutably); `None` when no metric has any.
    /// The first failing condition fails the batch, as in the Collector.
    fn of(defs: &[MetricDef], kind: ContextKind, batch: &mut Batch, now: i64) -> Result<Option<Verdicts>, String> {
        if defs.iter().all(|d| d.conditions.is_empty()) {
            return Ok(None);
        }
        let mut flags = Vec::new();
        let mut failed: Option<String> = None;
        let mut visit = |ctx: &mut EvalCtx| {
            for d in defs {
                if d.conditions.is_empty() {
                    flags.push(true);
                    continue;
                }
                match d.conditions.any(ctx) {
                    Ok(m) => flags.push(m),
                    Err(e) => {
                        failed.get_or_insert(format!("metric {:?}: {e}", d.name));
                        flags.push(false);
                    }
                }
            }
            true
        };
        match batch {
            Batch::Traces(req) => walk::traces(req, kind, now, &mut visit),
            Batch::Metrics(req) => walk::metrics(req, kind, now, &mut visit),
            Batch::Logs(req) => walk::logs(req, kind, now, &mut visit),
        }
        match failed {
            Some(e) => Err(format!("a count condition failed, so the batch is not counted: {e}")),
            None => Ok(Some(Verdicts { flags, width: defs.len(), next: 0 })),
        }
    }

    /// The flags of the next item.
    fn take(this: &mut Option<Verdicts>) -> Option<&[bool]> {
        let v = this.as_mut()?;
        let at = v.next;
        v.next += v.width;
        v.flags.get(at..at + v.width)
    }
}

impl Count {
    fn has_conditions(&self) -> bool {
        [&self.spans, &self.span_events, &self.metrics, &self.data_points, &self.logs]
            .iter()
            .any(|defs| defs.iter().any(|d| !d.conditions.is_empty()))
    }

    /// The verdicts of the two kinds of item a batch of this signal holds.
    fn verdicts(&self, batch: &Batch, now: Now) -> Result<(Option<Verdicts>, Option<Verdicts>), String> {
        if !self.has_conditions() {
            return Ok((None, None));
        }
        let now = i64::try_from(now.unix_nanos).unwrap_or(i64::MAX);
        let mut copy = batch.clone();
        let (a, b) = match batch {
            Batch::Traces(_) => (
                Verdicts::of(&self.spans, ContextKind::Span, &mut copy, now)?,
                Verdicts::of(&self.span_events, ContextKind::SpanEvent, &mut copy, now)?,
            ),
            Batch::Metrics(_) => (
                Verdicts::of(&self.metrics, ContextKind::Metric, &mut copy, now)?,
                Verdicts::of(&self.data_points, ContextKind::DataPoint, &mut copy, now)?,
            ),
            Batch::Logs(_) => (Verdicts::of(&self.logs, ContextKind::Log, &mut copy, now)?, None),
        };
        Ok((a, b))
    }

    /// Counts one batch; an error (a failing condition) emits nothing.
    fn count(&self, batch: &Batch, now: Now, out: &mut Vec<Batch>) -> Result<(), String> {
        let (mut first, mut second) = self.verdicts(batch, now)?;
        let mut resources = Vec::new();
        match batch {
            Batch::Traces(req) => {
                for rs in &req.resource_spans {
                    let resource = attrs(rs.resource.as_ref());
                    let (mut spans, mut events) = (Counter::new(&self.spans), Counter::new(&self.span_events));
                    for ss in &rs.scope_spans {
                        let scope = scope_attrs(ss.scope.as_ref());
                        for span in &ss.spans {
                            spans.timestamp(span.start_time_unix_nano);
                            spans.timestamp(span.end_time_unix_nano);
                            spans.update([&span.attributes, scope, resource], Verdicts::take(&mut first));
                            for event in &span.events {
                                events.timestamp(event.time_unix_nano);
                                events.update([&event.attributes, scope, resource], Verdicts::take(&mut second));
                            }
                        }
                    }
                    if spans.is_empty() && events.is_empty() {
                        continue;
                    }
                    let mut metrics = Vec::new();
                    spans.emit(now, &mut metrics);
                    events.emit(now, &mut metrics);
                    resources.push(resource_metrics(rs.resource.as_ref(), metrics));
                }
            }
            Batch::Metrics(req) => {
                for rm in &req.resource_metrics {
                    let resource = attrs(rm.resource.as_ref());
                    let (mut metrics, mut points) = (Counter::new(&self.metrics), Counter::new(&self.data_points));
                    for sm in &rm.scope_metrics {
                        let scope = scope_attrs(sm.scope.as_ref());
                        for m in &sm.metrics {
                            metrics.update([&[], scope, resource], Verdicts::take(&mut first));
                            for_each_point(m, |t, point_attrs| {
                                points.timestamp(t);
                                points.update([point_attrs, scope, resource], Verdicts::take(&mut second));
                            });
                        }
                    }
                    if metrics.is_empty() && points.is_empty() {
                        continue;
                    }
                    let mut out_metrics = Vec::new();
                    metrics.emit(now, &mut out_metrics);
                    points.emit(now, &mut out_metrics);
                    resources.push(resource_metrics(rm.resource.as_ref(), out_metrics));
                }
            }
            Batch::Logs(req) => {
                for rl in &req.resource_logs {
                    let resource = attrs(rl.resource.as_ref());
                    let mut records = Counter::new(&self.logs);
                    for sl in &rl.scope_logs {
                        let scope = scope_attrs(sl.scope.as_ref());
                        for r in &sl.log_records {
                            records.timestamp(r.time_unix_nano);
                            records.update([&r.attributes, scope, resource], Verdicts::take(&mut first));
                        }
                    }
                    if records.is_empty() {
                        continue;
                    }
                    let mut metrics = Vec::new();
                    records.emit(now, &mut metrics);
                    resources.push(resource_metrics(rl.resource.as_ref(), metrics));
                }
            }
        }
        if !resources.is_empty() {
            out.push(Batch::Metrics(ExportMetricsServiceRequest { resource_metrics: resources }));
        }
        Ok(())
    }
}

impl Connector for Count {
    fn consume(&mut self, batch: &Batch, now: Now, out: &mut Vec<Batch>) {
        // A failing condition emits nothing; `consume_payload` (what the
        // runtime calls) reports it.
        let _ = self.count(batch, now, out);
    }

    fn consume_payload(&mut self, payload: &Payload, now: Now, out: &mut Vec<Payload>) -> Result<(), String> {
        let mut next = Vec::new();
        match payload {
            Payload::Decoded(b) => self.count(b, now, &mut next)?,
            Payload::Encoded(e) => {
                let b = e.decode().map_err(|e| format!("cannot decode a checked batch: {e}"))?;
                self.count(&b, now, &mut next)?;
            }
        }
        out.extend(next.into_iter().map(Payload::Decoded));
        Ok(())
    }
}

/// Calls `f` with the timestamp and attributes of every data point of `m`.
fn for_each_point(m: &Metric, mut f: impl FnMut(u64, &[KeyValue])) {
    match &m.data {
        Some(metric::Data::Gauge(g)) => g.data_points.iter().for_each(|p| f(p.time_unix_nano, &p.attributes)),
        Some(metric::Data::Sum(s)) => s.data_points.iter().for_each(|p| f(p.time_unix_nano, &p.attributes)),
        Some(metric::Data::Histogram(h)) => h.data_points.iter().for_each(|p| f(p.time_unix_nano, &p.attributes)),
        Some(metric::Data::ExponentialHistogram(h)) => {
            h.data_points.iter().for_each(|p| f(p.time_unix_nano, &p.attributes))
        }
        Some(metric::Data::Summary(s)) => s.data_points.iter().for_each(|p| f(p.time_unix_nano, &p.attributes)),
        None => {}
    }
}

#[cfg(test)]
mod tests;
