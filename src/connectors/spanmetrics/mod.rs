//! The `spanmetrics` connector: request, error and duration (R.E.D.) metrics
//! from spans, as the Collector's spanmetricsconnector computes them.
//!
//! Per resource (its attributes, or those named in
//! `resource_metrics_key_attributes`, make the key), one series per distinct
//! `service.name`, `span.name`, `span.kind`, `status.code` (less the
//! `exclude_dimensions`) and configured `dimensions` (looked up on the span,
//! then its resource, else the dimension's `default`, else left out):
//! `{namespace}.calls`, a monotonic sum of spans, and `{namespace}.duration`,
//! an explicit-bucket histogram of `end - start` (0 when the end is not after
//! the start) in `unit` (ms or s). Spans whose resource has no `service.name`
//! are not counted, as in the Collector. Every `metrics_flush_interval` the
//! series are emitted: cumulative (the default) keeps them, with the start
//! time of their first span, and drops a resource not seen for
//! `metrics_expiration`; delta emits what came since the last flush, each
//! point starting where the series' last one ended.
//!
//! Guarantee: memory is bounded. A resource holds at most
//! `aggregation_cardinality_limit` series (0, the Collector's "no limit", is
//! sluice's bound of [`DEFAULT_SERIES_LIMIT`]); past it, spans go to one
//! series with the attribute `otel.metric.overflow=true` and are counted in
//! `sluice_connector_spanmetrics_overflow_spans_total`. At most
//! `resource_metrics_cache_size` resources are kept; a new one evicts the one
//! seen least recently (counted in
//! `sluice_connector_spanmetrics_evicted_resources_total`). The connector never
//! reads the clock: time comes in as [`Now`].

use crate::config::component::{Checker, CollectorOnly, ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::config::Duration;
use crate::connectors::{Connector, ConnectorContext, ConnectorFactory, ConnectorSpec, Now};
use crate::data::{Batch, Signal};
use crate::telemetry::{Counter, SpanMetricsMetrics};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint,
    ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

pub static FACTORY: ConnectorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Connector,
        name: "spanmetrics",
        aliases: &[],
        signals: &[Signal::Traces],
        description: "R.E.D. metrics from spans: calls and a duration histogram per service, span name, kind, status",
        example: "",
    },
    settings: SettingsType::of::<SpanMetricsConfig>(),
    compile: |input| {
        let cfg: SpanMetricsConfig = input.typed()?;
        let mut compiled = None;
        input.check(|c| compiled = cfg.compile(c)).then_some(())?;
        compiled.map(|c| Arc::new(c) as _)
    },
};

/// The Collector's default buckets, in milliseconds.
pub const DEFAULT_BUCKETS_MS: &[f64] =
    &[2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0, 10_000.0, 15_000.0];
/// Series per resource when `aggregation_cardinality_limit` is 0.
pub const DEFAULT_SERIES_LIMIT: usize = 10_000;
/// Most explicit buckets.
pub const MAX_BUCKETS: usize = 1_000;
/// Most configured dimensions.
pub const MAX_DIMENSIONS: usize = 64;
pub const DEFAULT_NAMESPACE: &str = "traces.span.metrics";
pub const SCOPE_NAME: &str = "spanmetricsconnector";
const OVERFLOW_KEY: &str = "otel.metric.overflow";
const RESERVED: [&str; 4] = ["service.name", "span.name", "span.kind", "status.code"];

#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DimensionConfig {
    /// Span or resource attribute that becomes a label.
    pub name: String,
    /// Its value when a span lacks it; absent: such spans get no such label.
    #[serde(default)]
    pub default: Option<String>,
}

#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq, Default)]
pub enum Temporality {
    #[default]
    #[serde(rename = "AGGREGATION_TEMPORALITY_CUMULATIVE")]
    Cumulative,
    #[serde(rename = "AGGREGATION_TEMPORALITY_DELTA")]
    Delta,
}

#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq, Default)]
pub enum Unit {
    #[default]
    #[serde(rename = "ms")]
    Milliseconds,
    #[serde(rename = "s")]
    Seconds,
}

impl Unit {
    fn nanos(self) -> f64 {
        match self {
            Unit::Milliseconds => 1e6,
            Unit::Seconds => 1e9,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Unit::Milliseconds => "ms",
            Unit::Seconds => "s",
        }
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ExplicitConfig {
    /// Bucket bounds as durations; absent: the Collector's default buckets.
    #[serde(default)]
    pub buckets: Option<Vec<Duration>>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HistogramConfig {
    /// Emit no duration histogram, only calls.
    pub disable: bool,
    /// Unit of the duration histogram: `ms` or `s`.
    pub unit: Unit,
    /// Explicit bucket bounds.
    pub explicit: Option<ExplicitConfig>,
    pub exponential: Option<CollectorOnly>,
    pub dimensions: Option<CollectorOnly>,
}

/// `connectors::spanmetrics`: the Collector's fields and defaults.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SpanMetricsConfig {
    /// Labels beyond service.name, span.name, span.kind and status.code.
    pub dimensions: Vec<DimensionConfig>,
    pub calls_dimensions: Option<CollectorOnly>,
    /// Default labels to leave out.
    pub exclude_dimensions: Vec<String>,
    /// Deprecated in the Collector for `aggregation_cardinality_limit`;
    /// accepted and checked, with no effect (the series limit bounds memory).
    pub dimensions_cache_size: Option<i64>,
    /// Resources whose series are kept; beyond it the least recently seen is evicted (counted).
    pub resource_metrics_cache_size: usize,
    /// Resource attributes that tell resources apart; empty: all of them.
    pub resource_metrics_key_attributes: Vec<String>,
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE` or `AGGREGATION_TEMPORALITY_DELTA`.
    pub aggregation_temporality: Temporality,
    /// The duration histogram.
    pub histogram: HistogramConfig,
    /// How often the series are emitted.
    pub metrics_flush_interval: Duration,
    /// Series not updated for this long are forgotten; 0: never.
    pub metrics_expiration: Duration,
    /// Accepted: sluice keeps each delta series' last timestamp with the series.
    pub metric_timestamp_cache_size: Option<i64>,
    /// Prefix of the metric names (`traces.span.metrics`).
    pub namespace: String,
    pub exemplars: Option<CollectorOnly>,
    pub events: Option<CollectorOnly>,
    /// Instrumentation scope names kept apart: spans of these scopes make series of their own scope.
    pub include_instrumentation_scope: Vec<String>,
    /// Series per resource; beyond it spans go to one overflow series (counted); 0: 10000 (the
    /// Collector: no limit).
    pub aggregation_cardinality_limit: usize,
    /// Copy the span's resource attributes onto the output resource (as the current Collector);
    /// default false.
    pub add_resource_attributes: bool,
    pub enable_metrics_sampling_method: Option<CollectorOnly>,
    pub transformations: Option<CollectorOnly>,
}

impl Default for SpanMetricsConfig {
    fn default() -> Self {
        SpanMetricsConfig {
            dimensions: Vec::new(),
            calls_dimensions: None,
            exclude_dimensions: Vec::new(),
            dimensions_cache_size: None,
            resource_metrics_cache_size: 1000,
            resource_metrics_key_attributes: Vec::new(),
            aggregation_temporality: Temporality::Cumulative,
            histogram: HistogramConfig::default(),
            metrics_flush_interval: Duration::from_secs(60),
            metrics_expiration: Duration::from_secs(0),
            metric_timestamp_cache_size: None,
            namespace: DEFAULT_NAMESPACE.to_string(),
            exemplars: None,
            events: None,
            include_instrumentation_scope: Vec::new(),
            aggregation_cardinality_limit: 0,
            add_resource_attributes: false,
            enable_metrics_sampling_method: None,
            transformations: None,
        }
    }
}

/// The compiled connector.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanMetrics {
    pub dimensions: Vec<(String, Option<String>)>,
    /// Which of service.name, span.name, span.kind, status.code are kept.
    pub reserved: [bool; 4],
    pub key_attributes: Vec<String>,
    pub temporality: Temporality,
    /// `None`: histogram disabled.
    pub buckets: Option<Vec<f64>>,
    pub unit: Unit,
    pub flush_interval: std::time::Duration,
    pub expiration: std::time::Duration,
    pub calls_name: String,
    pub duration_name: String,
    pub series_limit: usize,
    pub resource_limit: usize,
    pub add_resource_attributes: bool,
    pub include_scope: Vec<String>,
}

impl SpanMetricsConfig {
    fn compile(&self, c: &mut Checker) -> Option<SpanMetrics> {
        let mut seen: Vec<&str> = RESERVED.to_vec();
        for (i, d) in self.dimensions.iter().enumerate() {
            let at = ["dimensions".to_string(), i.to_string(), "name".to_string()];
            if d.name.is_empty() {
                c.error_at(&at, "a dimension needs a name", Some("e.g. - name: http.method".into()));
            } else if seen.contains(&d.name.as_str()) {
                c.error_at(&at, format!("duplicate dimension name {}", d.name), None);
            }
            seen.push(&d.name);
        }
        if self.dimensions.len() > MAX_DIMENSIONS {
            c.error(&["dimensions"], format!("at most {MAX_DIMENSIONS} dimensions"), None);
        }
        for (i, d) in self.exclude_dimensions.iter().enumerate() {
            if !RESERVED.contains(&d.as_str()) {
                c.error_at(
                    &["exclude_dimensions".to_string(), i.to_string()],
                    format!("\"{d}\" is not a default dimension"),
                    Some(format!("exclude_dimensions takes {}", RESERVED.join(", "))),
                );
            }
        }
        if self.dimensions_cache_size.is_some_and(|n| n <= 0) {
            c.error(
                &["dimensions_cache_size"],
                "invalid cache size: the maximum number of the items in the cache should be positive",
                None,
            );
        }
        if self.resource_metrics_cache_size == 0 {
            c.error(&["resource_metrics_cache_size"], "resource_metrics_cache_size must be at least 1", None);
        }
        if self.metrics_flush_interval.is_zero() {
            c.error(&["metrics_flush_interval"], "metrics_flush_interval must be above zero", Some("e.g. 60s"));
        }
        if self.aggregation_temporality == Temporality::Delta
            && self.metric_timestamp_cache_size.is_some_and(|n| n <= 0)
        {
            c.error(
                &["metric_timestamp_cache_size"],
                "invalid delta timestamp cache size: it should be positive",
                None,
            );
        }
        let unit = self.histogram.unit;
        let buckets = match self.histogram.explicit.as_ref().and_then(|e| e.buckets.as_ref()) {
            Some(b) => {
                let v: Vec<f64> = b.iter().map(|d| d.get().as_nanos() as f64 / unit.nanos()).collect();
                if v.len() > MAX_BUCKETS {
                    c.error(&["histogram", "explicit", "buckets"], format!("at most {MAX_BUCKETS} buckets"), None);
                }
                if v.windows(2).any(|w| w[0] >= w[1]) {
                    c.error(
                        &["histogram", "explicit", "buckets"],
                        "buckets must be in increasing order, each once",
                        Some("e.g. [2ms, 4ms, 6ms]"),
                    );
                }
                v
            }
            None => DEFAULT_BUCKETS_MS.iter().map(|ms| ms * 1e6 / unit.nanos()).collect(),
        };
        let name = |n: &str| if self.namespace.is_empty() { n.to_string() } else { format!("{}.{n}", self.namespace) };
        Some(SpanMetrics {
            dimensions: self.dimensions.iter().map(|d| (d.name.clone(), d.default.clone())).collect(),
            reserved: RESERVED.map(|r| !self.exclude_dimensions.iter().any(|e| e == r)),
            key_attributes: self.resource_metrics_key_attributes.clone(),
            temporality: self.aggregation_temporality,
            buckets: (!self.histogram.disable).then_some(buckets),
            unit,
            flush_interval: self.metrics_flush_interval.get(),
            expiration: self.metrics_expiration.get(),
            calls_name: name("calls"),
            duration_name: name("duration"),
            series_limit: if self.aggregation_cardinality_limit == 0 {
                DEFAULT_SERIES_LIMIT
            } else {
                self.aggregation_cardinality_limit
            },
            resource_limit: self.resource_metrics_cache_size.max(1),
            add_resource_attributes: self.add_resource_attributes,
            include_scope: self.include_instrumentation_scope.clone(),
        })
    }
}

const PAIRS: &[(Signal, Signal)] = &[(Signal::Traces, Signal::Metrics)];

impl ConnectorSpec for SpanMetrics {
    fn pairs(&self) -> &'static [(Signal, Signal)] {
        PAIRS
    }

    fn build(&self, ctx: &ConnectorContext) -> Result<Box<dyn Connector>, String> {
        let m = SpanMetricsMetrics::new(&ctx.registry, &ctx.id);
        Ok(Box::new(SpanMetricsState::new(self.clone(), m.overflow_spans, m.evicted_resources)))
    }
}

/// One series: its attributes, its start time and what it has counted.
struct Series {
    attributes: Vec<KeyValue>,
    start: u64,
    calls: u64,
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
}

struct ResourceState {
    attributes: Vec<KeyValue>,
    series: HashMap<Vec<u8>, Series>,
    /// Keys in the order their series were made (the order they are emitted).
    order: Vec<Vec<u8>>,
    last_seen: Instant,
}

/// The running connector.
pub struct SpanMetricsState {
    cfg: SpanMetrics,
    resources: HashMap<Vec<u8>, ResourceState>,
    resource_order: Vec<Vec<u8>>,
    /// Delta: where each series' next point starts (the last flush's time).
    last_flush: HashMap<(Vec<u8>, Vec<u8>), u64>,
    next_flush: Option<Instant>,
    overflow_spans: Counter,
    evicted_resources: Counter,
}

fn str_value(s: &str) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(s.to_string())) }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue { key: k.to_string(), value: Some(v), ..Default::default() }
}

/// The value as the Collector's `AsString` writes it, for keys.
fn key_text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

impl SpanMetricsState {
    pub fn new(cfg: SpanMetrics, overflow_spans: Counter, evicted_resources: Counter) -> Self {
        SpanMetricsState {
            cfg,
            resources: HashMap::new(),
            resource_order: Vec::new(),
            last_flush: HashMap::new(),
            next_flush: None,
            overflow_spans,
            evicted_resources,
        }
    }

    fn resource_key(&self, attrs: &[KeyValue]) -> Vec<u8> {
        let mut key = Vec::new();
        let mut kept: Vec<&KeyValue> = attrs
            .iter()
            .filter(|kv| self.cfg.key_attributes.is_empty() || self.cfg.key_attributes.contains(&kv.key))
            .collect();
        kept.sort_by(|a, b| a.key.cmp(&b.key));
        for kv in kept {
            key.extend_from_slice(kv.key.as_bytes());
            key.push(0);
            key.extend_from_slice(key_text(kv.value.as_ref().unwrap_or(&AnyValue::default())).as_bytes());
            key.push(0);
        }
        key
    }

    /// Makes the resource's state if new (evicting the one seen least
    /// recently when full) and marks it seen.
    fn resource(&mut self, key: Vec<u8>, attrs: &[KeyValue], now: Instant) {
        if !self.resources.contains_key(&key) {
            if self.resources.len() >= self.cfg.resource_limit {
                let oldest = self.resources.iter().min_by_key(|(_, r)| r.last_seen).map(|(k, _)| k.clone());
                if let Some(old) = oldest {
                    self.resources.remove(&old);
                    self.resource_order.retain(|k| *k != old);
                    self.last_flush.retain(|(r, _), _| *r != old);
                    self.evicted_resources.inc();
                }
            }
            self.resource_order.push(key.clone());
            self.resources.insert(
                key.clone(),
                ResourceState { attributes: attrs.to_vec(), series: HashMap::new(), order: Vec::new(), last_seen: now },
            );
        }
        if let Some(r) = self.resources.get_mut(&key) {
            r.last_seen = now;
        }
    }

    fn emit(&mut self, now: Now, out: &mut Vec<Batch>) {
        let cfg = &self.cfg;
        let temporality = match cfg.temporality {
            Temporality::Cumulative => AggregationTemporality::Cumulative,
            Temporality::Delta => AggregationTemporality::Delta,
        } as i32;
        let mut resources = Vec::new();
        for rkey in &self.resource_order {
            let Some(r) = self.resources.get(rkey) else { continue };
            if r.series.is_empty() {
                continue;
            }
            let mut calls = Vec::with_capacity(r.order.len());
            let mut durations = Vec::with_capacity(r.order.len());
            for skey in &r.order {
                let Some(s) = r.series.get(skey) else { continue };
                let start = match cfg.temporality {
                    Temporality::Cumulative => s.start,
                    Temporality::Delta => {
                        self.last_flush.get(&(rkey.clone(), skey.clone())).copied().unwrap_or(s.start)
                    }
                };
                calls.push(NumberDataPoint {
                    attributes: s.attributes.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: now.unix_nanos,
                    value: Some(number_data_point::Value::AsInt(i64::try_from(s.calls).unwrap_or(i64::MAX))),
                    ..Default::default()
                });
                if let Some(bounds) = &cfg.buckets {
                    durations.push(HistogramDataPoint {
                        attributes: s.attributes.clone(),
                        start_time_unix_nano: start,
                        time_unix_nano: now.unix_nanos,
                        count: s.count,
                        sum: Some(s.sum),
                        bucket_counts: s.buckets.clone(),
                        explicit_bounds: bounds.clone(),
                        ..Default::default()
                    });
                }
            }
            let mut metrics = vec![Metric {
                name: cfg.calls_name.clone(),
                data: Some(metric::Data::Sum(Sum {
                    data_points: calls,
                    aggregation_temporality: temporality,
                    is_monotonic: true,
                })),
                ..Default::default()
            }];
            if cfg.buckets.is_some() {
                metrics.push(Metric {
                    name: cfg.duration_name.clone(),
                    unit: cfg.unit.as_str().to_string(),
                    data: Some(metric::Data::Histogram(Histogram {
                        data_points: durations,
                        aggregation_temporality: temporality,
                    })),
                    ..Default::default()
                });
            }
            resources.push(ResourceMetrics {
                resource: Some(Resource {
                    attributes: if cfg.add_resource_attributes { r.attributes.clone() } else { Vec::new() },
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope { name: SCOPE_NAME.to_string(), ..Default::default() }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            });
        }
        if !resources.is_empty() {
            out.push(Batch::Metrics(ExportMetricsServiceRequest { resource_metrics: resources }));
        }
        match cfg.temporality {
            Temporality::Delta => {
                for rkey in &self.resource_order {
                    if let Some(r) = self.resources.get(rkey) {
                        for skey in &r.order {
                            self.last_flush.insert((rkey.clone(), skey.clone()), now.unix_nanos);
                        }
                    }
                }
                // The timestamps are bounded like the series they belong to.
                let bound = cfg.series_limit.saturating_mul(cfg.resource_limit).min(1_000_000);
                if self.last_flush.len() > bound {
                    self.last_flush.clear();
                }
                self.resources.clear();
                self.resource_order.clear();
            }
            Temporality::Cumulative if !cfg.expiration.is_zero() => {
                let expiration = cfg.expiration;
                self.resources.retain(|_, r| now.instant.saturating_duration_since(r.last_seen) < expiration);
                let resources = &self.resources;
                self.resource_order.retain(|k| resources.contains_key(k));
            }
            Temporality::Cumulative => {}
        }
    }
}

impl Connector for SpanMetricsState {
    fn consume(&mut self, batch: &Batch, now: Now, _out: &mut Vec<Batch>) {
        let Batch::Traces(req) = batch else { return };
        if self.next_flush.is_none() {
            self.next_flush = Some(now.instant + self.cfg.flush_interval);
        }
        let mut key = Vec::with_capacity(128);
        for rs in &req.resource_spans {
            let rattrs: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| &r.attributes);
            let Some(service) = find(rattrs, "service.name").map(key_text) else { continue };
            let rkey = self.resource_key(rattrs);
            self.resource(rkey.clone(), rattrs, now.instant);
            let Self { cfg, resources, overflow_spans, .. } = self;
            let Some(r) = resources.get_mut(&rkey) else { continue };
            let unit = cfg.unit.nanos();
            for ss in &rs.scope_spans {
                let scope = ss.scope.as_ref().filter(|s| !s.name.is_empty() && cfg.include_scope.contains(&s.name));
                for span in &ss.spans {
                    let duration = if span.end_time_unix_nano > span.start_time_unix_nano {
                        (span.end_time_unix_nano - span.start_time_unix_nano) as f64 / unit
                    } else {
                        0.0
                    };
                    let kind = SpanKind::try_from(span.kind).map_or("", |k| k.as_str_name());
                    let code = span.status.as_ref().map_or(0, |s| s.code);
                    let status = StatusCode::try_from(code).map_or("", |c| c.as_str_name());
                    let reserved: [&str; 4] = [&service, &span.name, kind, status];
                    let dimension = |name: &str, default: &Option<String>| -> Option<AnyValue> {
                        find(&span.attributes, name)
                            .or_else(|| find(rattrs, name))
                            .cloned()
                            .or_else(|| default.as_deref().map(str_value))
                    };
                    // The key first: the attributes are built only for a new series.
                    key.clear();
                    for (value, keep) in reserved.iter().zip(cfg.reserved) {
                        if keep {
                            key.extend_from_slice(value.as_bytes());
                            key.push(0);
                        }
                    }
                    for (name, default) in &cfg.dimensions {
                        match find(&span.attributes, name).or_else(|| find(rattrs, name)) {
                            Some(v) => key.extend_from_slice(key_text(v).as_bytes()),
                            None => match default {
                                Some(d) => key.extend_from_slice(d.as_bytes()),
                                None => {
                                    key.push(2); // absent: distinct from any value
                                    continue;
                                }
                            },
                        }
                        key.push(0);
                    }
                    if let Some(s) = scope {
                        key.extend_from_slice(s.name.as_bytes());
                        key.push(1);
                        key.extend_from_slice(s.version.as_bytes());
                    }
                    let mut overflow = false;
                    if !r.series.contains_key(&key) && r.series.len() + 1 >= cfg.series_limit {
                        // The limit counts the overflow series itself.
                        overflow_spans.inc();
                        overflow = true;
                        key.clear();
                        key.extend_from_slice(b"\xff\xffoverflow");
                    }
                    let series = match r.series.get_mut(&key) {
                        Some(s) => s,
                        None => {
                            let attributes = if overflow {
                                vec![kv(OVERFLOW_KEY, AnyValue { value: Some(any_value::Value::BoolValue(true)) })]
                            } else {
                                let mut a = Vec::with_capacity(4 + cfg.dimensions.len());
                                for ((name, value), keep) in RESERVED.iter().zip(reserved).zip(cfg.reserved) {
                                    if keep {
                                        a.push(kv(name, str_value(value)));
                                    }
                                }
                                for (name, default) in &cfg.dimensions {
                                    if let Some(v) = dimension(name, default) {
                                        a.push(kv(name, v));
                                    }
                                }
                                if let Some(s) = scope {
                                    a.push(kv("span.instrumentation.scope.name", str_value(&s.name)));
                                    if !s.version.is_empty() {
                                        a.push(kv("span.instrumentation.scope.version", str_value(&s.version)));
                                    }
                                }
                                a
                            };
                            r.order.push(key.clone());
                            let buckets = cfg.buckets.as_ref().map_or(0, |b| b.len() + 1);
                            r.series.entry(key.clone()).or_insert(Series {
                                attributes,
                                start: now.unix_nanos,
                                calls: 0,
                                count: 0,
                                sum: 0.0,
                                buckets: vec![0; buckets],
                            })
                        }
                    };
                    series.calls += 1;
                    if let Some(bounds) = &cfg.buckets {
                        series.count += 1;
                        series.sum += duration;
                        // The first bound at or above the value: bounds are inclusive upper limits.
                        let i = bounds.partition_point(|b| *b < duration);
                        series.buckets[i] += 1;
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.next_flush
    }

    fn tick(&mut self, now: Now, out: &mut Vec<Batch>) {
        let Some(due) = self.next_flush else { return };
        if now.instant < due {
            return;
        }
        self.emit(now, out);
        let mut next = due + self.cfg.flush_interval;
        if next <= now.instant {
            next = now.instant + self.cfg.flush_interval;
        }
        self.next_flush = Some(next);
    }

    fn flush(&mut self, now: Now, out: &mut Vec<Batch>) {
        self.emit(now, out);
    }
}

#[cfg(test)]
mod tests;
