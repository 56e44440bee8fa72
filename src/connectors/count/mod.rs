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
//! Guarantee: the counts are exact for every batch; the connector keeps no
//! state between batches, so its memory is bounded by one batch. OTTL
//! `conditions` are refused at load ("sluice does not support it (yet)").

use crate::config::component::{Checker, CollectorOnly, ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::connectors::{Connector, ConnectorContext, ConnectorFactory, ConnectorSpec, Now};
use crate::data::{Batch, Signal};
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
    /// OTTL conditions: not supported yet.
    #[serde(default)]
    pub conditions: Option<CollectorOnly>,
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
    #[serde(default)]
    pub any_depth: Option<CollectorOnly>,
}

/// One count metric, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricDef {
    pub name: String,
    pub description: String,
    pub attributes: Vec<(String, Option<String>)>,
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
                       attributes_allowed: bool| {
            let Some(given) = given else {
                return vec![MetricDef {
                    name: default.0.to_string(),
                    description: default.1.to_string(),
                    attributes: Vec::new(),
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
                defs.push(MetricDef { name: name.clone(), description: info.description.clone(), attributes });
            }
            defs
        };
        Count {
            spans: section(c, "spans", &self.spans, DEFAULT_SPANS, true),
            span_events: section(c, "spanevents", &self.spanevents, DEFAULT_SPAN_EVENTS, true),
            metrics: section(c, "metrics", &self.metrics, DEFAULT_METRICS, false),
            data_points: section(c, "datapoints", &self.datapoints, DEFAULT_DATA_POINTS, true),
            logs: section(c, "logs", &self.logs, DEFAULT_LOGS, true),
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

    fn update(&mut self, levels: [&[KeyValue]; 3]) {
        for (def, counts) in self.defs.iter().zip(&mut self.counts) {
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

impl Connector for Count {
    fn consume(&mut self, batch: &Batch, now: Now, out: &mut Vec<Batch>) {
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
                            spans.update([&span.attributes, scope, resource]);
                            for event in &span.events {
                                events.timestamp(event.time_unix_nano);
                                events.update([&event.attributes, scope, resource]);
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
                            metrics.update([&[], scope, resource]);
                            for_each_point(m, |t, point_attrs| {
                                points.timestamp(t);
                                points.update([point_attrs, scope, resource]);
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
                            records.update([&r.attributes, scope, resource]);
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
