//! The `spanmetrics` connector: request, error and duration (R.E.D.) metrics
//! from spans, as the Collector's spanmetricsconnector computes them.
//!
//! Per resource (its attributes, or those named in
//! `resource_metrics_key_attributes`, make the key), one series per distinct
//! `service.name`, `span.name`, `span.kind`, `status.code` (less the
//! `exclude_dimensions`) and configured `dimensions` (looked up on the span,
//! then its resource, else the dimension's `default`, else left out):
//! `{namespace}.calls`, a monotonic sum of spans, and `{namespace}.duration`,
//! an explicit-bucket (or, with `histogram.exponential`, a base-2
//! exponential: see `exponential.rs`) histogram of `end - start` (0 when the
//! end is not after the start) in `unit` (ms or s); with `events.enabled`,
//! `{namespace}.events` counts span events per the span's dimensions plus
//! `events.dimensions` (looked up on the span, then the event); with
//! `exemplars.enabled`, each point carries the trace and span IDs and
//! durations of the spans since the last flush. Spans whose resource has no
//! `service.name` are not counted, as in the Collector. Every `metrics_flush_interval` the
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
//! `sluice_connector_spanmetrics_evicted_resources_total`). Event series have
//! the same limit apart; a point holds at most `max_per_data_point`
//! exemplars (more are counted in
//! `sluice_connector_spanmetrics_dropped_exemplars_total`); an exponential
//! histogram at most `max_size` buckets. The connector never reads the
//! clock: time comes in as [`Now`].

use crate::config::component::{Checker, CollectorOnly, ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::config::Duration;
use crate::connectors::{Connector, ConnectorContext, ConnectorFactory, ConnectorSpec, Now};
use crate::data::{Batch, Signal};
use crate::telemetry::{Counter, SpanMetricsMetrics};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    exemplar, metric, number_data_point, AggregationTemporality, Exemplar, ExponentialHistogram,
    ExponentialHistogramDataPoint, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
    ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::SpanKind, status::StatusCode, Span};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

mod exponential;
use exponential::ExponentialHistogram as ExpoHistogram;

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
/// Exemplars per data point and flush when `max_per_data_point` is not given.
pub const DEFAULT_MAX_EXEMPLARS: usize = 100;
/// The largest `max_per_data_point` accepted.
pub const MAX_EXEMPLARS: usize = 10_000;
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
pub struct ExponentialConfig {
    /// Most buckets (the Collector's default: 160; 0 means the default).
    pub max_size: i64,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ExemplarsConfig {
    /// Attach each span's trace and span ID and duration to its data points.
    pub enabled: bool,
    /// Most exemplars per data point and flush; absent: 100 (the Collector: no limit).
    pub max_per_data_point: Option<i64>,
}

#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EventsConfig {
    /// Count span events in `{namespace}.events`.
    pub enabled: bool,
    /// Labels of the events metric beyond the span's (looked up on the span, then the event).
    pub dimensions: Vec<DimensionConfig>,
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
    /// A base-2 exponential histogram instead of explicit buckets.
    pub exponential: Option<ExponentialConfig>,
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
    /// Exemplars (trace and span IDs, duration) on the calls, duration and events points.
    pub exemplars: ExemplarsConfig,
    /// Counts of span events, by the span's dimensions and the events' own.
    pub events: EventsConfig,
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
            exemplars: ExemplarsConfig::default(),
            events: EventsConfig::default(),
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
    /// Explicit bounds; `None`: no explicit histogram (disabled, or exponential).
    pub buckets: Option<Vec<f64>>,
    /// Exponential histogram of at most this many buckets, instead of explicit.
    pub exponential: Option<u32>,
    /// Most exemplars per data point and flush; `None`: exemplars off.
    pub exemplars: Option<usize>,
    /// The events metric's dimensions beyond `dimensions`; `None`: events off.
    pub event_dimensions: Option<Vec<(String, Option<String>)>>,
    pub events_name: String,
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
        if let Some(e) = &self.histogram.exponential {
            if self.histogram.explicit.is_some() {
                c.error(&["histogram"], "use either `explicit` or `exponential` buckets histogram", None);
            }
            let min = i64::from(exponential::MIN_MAX_SIZE);
            let max = i64::from(exponential::MAX_MAX_SIZE);
            if e.max_size != 0 && !(min..=max).contains(&e.max_size) {
                c.error(
                    &["histogram", "exponential", "max_size"],
                    format!("max_size must be between {min} and {max} (0: the default, 160)"),
                    Some("e.g. max_size: 160"),
                );
            }
        }
        if let Some(n) = self.exemplars.max_per_data_point {
            if !(1..=MAX_EXEMPLARS as i64).contains(&n) {
                c.error(
                    &["exemplars", "max_per_data_point"],
                    format!("max_per_data_point must be between 1 and {MAX_EXEMPLARS}"),
                    Some(&format!("leave it out for {DEFAULT_MAX_EXEMPLARS}")),
                );
            }
        }
        if self.events.enabled {
            if self.events.dimensions.is_empty() {
                c.error(
                    &["events", "dimensions"],
                    "failed validating event dimensions: no dimensions configured for events",
                    Some("e.g. dimensions: [{name: exception.type}]"),
                );
            }
            let mut seen: Vec<&str> = RESERVED.to_vec();
            for (i, d) in self.events.dimensions.iter().enumerate() {
                let at = ["events".to_string(), "dimensions".to_string(), i.to_string(), "name".to_string()];
                if d.name.is_empty() {
                    c.error_at(&at, "a dimension needs a name", Some("e.g. - name: exception.type".into()));
                } else if seen.contains(&d.name.as_str()) {
                    c.error_at(
                        &at,
                        format!("failed validating event dimensions: duplicate dimension name {}", d.name),
                        None,
                    );
                }
                seen.push(&d.name);
            }
            if self.events.dimensions.len() > MAX_DIMENSIONS {
                c.error(&["events", "dimensions"], format!("at most {MAX_DIMENSIONS} dimensions"), None);
            }
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
            buckets: (!self.histogram.disable && self.histogram.exponential.is_none()).then_some(buckets),
            exponential: match &self.histogram.exponential {
                Some(e) if !self.histogram.disable => Some(if e.max_size == 0 {
                    exponential::DEFAULT_MAX_SIZE
                } else {
                    u32::try_from(e.max_size).unwrap_or(exponential::DEFAULT_MAX_SIZE)
                }),
                _ => None,
            },
            exemplars: self.exemplars.enabled.then(|| {
                self.exemplars
                    .max_per_data_point
                    .map_or(DEFAULT_MAX_EXEMPLARS, |n| n.clamp(1, MAX_EXEMPLARS as i64) as usize)
            }),
            event_dimensions: self
                .events
                .enabled
                .then(|| self.events.dimensions.iter().map(|d| (d.name.clone(), d.default.clone())).collect()),
            events_name: name("events"),
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
        Ok(Box::new(SpanMetricsState::new(self.clone(), m)))
    }
}

/// One exemplar: the span's trace and span IDs and its duration.
#[derive(Debug, Clone, PartialEq)]
struct SpanExemplar {
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    value: f64,
}

/// What a series has recorded of its spans' durations.
enum Durations {
    /// Histogram disabled, or an events series.
    None,
    Explicit {
        count: u64,
        sum: f64,
        buckets: Vec<u64>,
    },
    Exponential(ExpoHistogram),
}

/// One series: its attributes, its start time and what it has counted
/// (spans for a calls series, span events for an events series).
struct Series {
    attributes: Vec<KeyValue>,
    start: u64,
    calls: u64,
    durations: Durations,
    /// Since the last flush; at most the configured number.
    exemplars: Vec<SpanExemplar>,
}

/// The series of one resource.
#[derive(Default)]
struct SeriesTable {
    series: HashMap<Vec<u8>, Series>,
    /// Keys in the order their series were made (the order they are emitted).
    order: Vec<Vec<u8>>,
}

impl SeriesTable {
    /// The series of `key`, made (with `attributes()`) if new; past `limit`
    /// series a new key goes to the overflow series instead, counted.
    fn entry(
        &mut self,
        key: &mut Vec<u8>,
        limit: usize,
        overflow: &Counter,
        attributes: impl FnOnce() -> Vec<KeyValue>,
        start: u64,
        durations: impl FnOnce() -> Durations,
    ) -> Option<&mut Series> {
        if !self.series.contains_key(key.as_slice()) {
            let attributes = if self.series.len() + 1 >= limit {
                // The limit counts the overflow series itself.
                overflow.inc();
                key.clear();
                key.extend_from_slice(OVERFLOW_SERIES);
                vec![kv(OVERFLOW_KEY, AnyValue { value: Some(any_value::Value::BoolValue(true)) })]
            } else {
                attributes()
            };
            if !self.series.contains_key(key.as_slice()) {
                self.order.push(key.clone());
                self.series.insert(
                    key.clone(),
                    Series { attributes, start, calls: 0, durations: durations(), exemplars: Vec::new() },
                );
            }
        }
        self.series.get_mut(key.as_slice())
    }

    fn clear_exemplars(&mut self) {
        for s in self.series.values_mut() {
            s.exemplars.clear();
        }
    }
}

struct ResourceState {
    attributes: Vec<KeyValue>,
    spans: SeriesTable,
    events: SeriesTable,
    last_seen: Instant,
}

/// The running connector.
pub struct SpanMetricsState {
    cfg: SpanMetrics,
    resources: HashMap<Vec<u8>, ResourceState>,
    resource_order: Vec<Vec<u8>>,
    /// Delta: where each series' next point starts (the last flush's time).
    last_flush: HashMap<(Vec<u8>, Vec<u8>), u64>,
    flush: crate::connectors::FlushClock,
    overflow_spans: Counter,
    evicted_resources: Counter,
    dropped_exemplars: Counter,
}

const OVERFLOW_SERIES: &[u8] = b"\xff\xffoverflow";
/// First byte of an events series' key: an events series never shares a
/// delta timestamp with a calls series.
const EVENT_KEY: u8 = 3;

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

/// A dimension's part of a series key: the value found, else its default,
/// else a marker distinct from any value.
fn push_dimension(key: &mut Vec<u8>, found: Option<&AnyValue>, default: &Option<String>) {
    match (found, default) {
        (Some(v), _) => key.extend_from_slice(key_text(v).as_bytes()),
        (None, Some(d)) => key.extend_from_slice(d.as_bytes()),
        (None, None) => key.push(2),
    }
    key.push(0);
}

/// Attaches an exemplar of `span` unless exemplars are off, the span has no
/// trace ID (as the Collector) or the point is full (counted).
fn add_exemplar(exemplars: &mut Vec<SpanExemplar>, limit: Option<usize>, span: &Span, value: f64, dropped: &Counter) {
    let Some(limit) = limit else { return };
    if span.trace_id.iter().all(|b| *b == 0) {
        return;
    }
    if exemplars.len() >= limit {
        dropped.inc();
        return;
    }
    exemplars.push(SpanExemplar { trace_id: span.trace_id.clone(), span_id: span.span_id.clone(), value });
}

fn exemplars_out(exemplars: &[SpanExemplar], time: u64) -> Vec<Exemplar> {
    exemplars
        .iter()
        .map(|e| Exemplar {
            time_unix_nano: time,
            trace_id: e.trace_id.clone(),
            span_id: e.span_id.clone(),
            value: Some(exemplar::Value::AsDouble(e.value)),
            ..Default::default()
        })
        .collect()
}

impl SpanMetricsState {
    pub fn new(cfg: SpanMetrics, m: SpanMetricsMetrics) -> Self {
        let flush = crate::connectors::FlushClock::new(cfg.flush_interval);
        SpanMetricsState {
            cfg,
            resources: HashMap::new(),
            resource_order: Vec::new(),
            last_flush: HashMap::new(),
            flush,
            overflow_spans: m.overflow_spans,
            evicted_resources: m.evicted_resources,
            dropped_exemplars: m.dropped_exemplars,
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
                ResourceState {
                    attributes: attrs.to_vec(),
                    spans: SeriesTable::default(),
                    events: SeriesTable::default(),
                    last_seen: now,
                },
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
        let time = now.unix_nanos;
        let mut resources = Vec::new();
        for rkey in &self.resource_order {
            let Some(r) = self.resources.get(rkey) else { continue };
            if r.spans.series.is_empty() {
                continue;
            }
            let start_of = |skey: &Vec<u8>, s: &Series| match cfg.temporality {
                Temporality::Cumulative => s.start,
                Temporality::Delta => self.last_flush.get(&(rkey.clone(), skey.clone())).copied().unwrap_or(s.start),
            };
            let mut calls = Vec::with_capacity(r.spans.order.len());
            let mut explicit = Vec::new();
            let mut exponential = Vec::new();
            for skey in &r.spans.order {
                let Some(s) = r.spans.series.get(skey) else { continue };
                let start = start_of(skey, s);
                calls.push(NumberDataPoint {
                    attributes: s.attributes.clone(),
                    start_time_unix_nano: start,
                    time_unix_nano: time,
                    value: Some(number_data_point::Value::AsInt(i64::try_from(s.calls).unwrap_or(i64::MAX))),
                    exemplars: exemplars_out(&s.exemplars, time),
                    ..Default::default()
                });
                match &s.durations {
                    Durations::Explicit { count, sum, buckets } => explicit.push(HistogramDataPoint {
                        attributes: s.attributes.clone(),
                        start_time_unix_nano: start,
                        time_unix_nano: time,
                        count: *count,
                        sum: Some(*sum),
                        bucket_counts: buckets.clone(),
                        explicit_bounds: cfg.buckets.clone().unwrap_or_default(),
                        exemplars: exemplars_out(&s.exemplars, time),
                        ..Default::default()
                    }),
                    Durations::Exponential(h) => {
                        let mut dp = ExponentialHistogramDataPoint {
                            attributes: s.attributes.clone(),
                            start_time_unix_nano: start,
                            time_unix_nano: time,
                            exemplars: exemplars_out(&s.exemplars, time),
                            ..Default::default()
                        };
                        h.fill(&mut dp);
                        exponential.push(dp);
                    }
                    Durations::None => {}
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
                        data_points: explicit,
                        aggregation_temporality: temporality,
                    })),
                    ..Default::default()
                });
            } else if cfg.exponential.is_some() {
                metrics.push(Metric {
                    name: cfg.duration_name.clone(),
                    unit: cfg.unit.as_str().to_string(),
                    data: Some(metric::Data::ExponentialHistogram(ExponentialHistogram {
                        data_points: exponential,
                        aggregation_temporality: temporality,
                    })),
                    ..Default::default()
                });
            }
            if cfg.event_dimensions.is_some() {
                // As the Collector: the metric is there, empty when no span had events.
                let points = r
                    .events
                    .order
                    .iter()
                    .filter_map(|ekey| {
                        let s = r.events.series.get(ekey)?;
                        Some(NumberDataPoint {
                            attributes: s.attributes.clone(),
                            start_time_unix_nano: start_of(ekey, s),
                            time_unix_nano: time,
                            value: Some(number_data_point::Value::AsInt(i64::try_from(s.calls).unwrap_or(i64::MAX))),
                            exemplars: exemplars_out(&s.exemplars, time),
                            ..Default::default()
                        })
                    })
                    .collect();
                metrics.push(Metric {
                    name: cfg.events_name.clone(),
                    data: Some(metric::Data::Sum(Sum {
                        data_points: points,
                        aggregation_temporality: temporality,
                        is_monotonic: true,
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
                        for skey in r.spans.order.iter().chain(&r.events.order) {
                            self.last_flush.insert((rkey.clone(), skey.clone()), time);
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
            Temporality::Cumulative => {
                // Exemplars belong to the spans since the last flush only.
                if cfg.exemplars.is_some() {
                    for r in self.resources.values_mut() {
                        r.spans.clear_exemplars();
                        r.events.clear_exemplars();
                    }
                }
                if !cfg.expiration.is_zero() {
                    let expiration = cfg.expiration;
                    self.resources.retain(|_, r| now.instant.saturating_duration_since(r.last_seen) < expiration);
                    let resources = &self.resources;
                    self.resource_order.retain(|k| resources.contains_key(k));
                }
            }
        }
    }
}

impl Connector for SpanMetricsState {
    fn consume(&mut self, batch: &Batch, now: Now, _out: &mut Vec<Batch>) {
        let Batch::Traces(req) = batch else { return };
        self.flush.arm(now.instant);
        let mut key = Vec::with_capacity(128);
        for rs in &req.resource_spans {
            let rattrs: &[KeyValue] = rs.resource.as_ref().map_or(&[], |r| &r.attributes);
            let Some(service) = find(rattrs, "service.name").map(key_text) else { continue };
            let rkey = self.resource_key(rattrs);
            self.resource(rkey.clone(), rattrs, now.instant);
            let Self { cfg, resources, overflow_spans, dropped_exemplars, .. } = self;
            let Some(r) = resources.get_mut(&rkey) else { continue };
            let unit = cfg.unit.nanos();
            let new_durations = || match (&cfg.buckets, cfg.exponential) {
                (Some(bounds), _) => Durations::Explicit { count: 0, sum: 0.0, buckets: vec![0; bounds.len() + 1] },
                (None, Some(max_size)) => Durations::Exponential(ExpoHistogram::new(max_size)),
                (None, None) => Durations::None,
            };
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
                    // The series' attributes, built only for a new series.
                    // `lookup` finds a dimension's value (the span's, then
                    // the resource's or, for events, the event's).
                    let attributes = |dims: &mut dyn Iterator<Item = &(String, Option<String>)>,
                                      lookup: &dyn Fn(&str) -> Option<AnyValue>| {
                        let mut a = Vec::with_capacity(4 + cfg.dimensions.len());
                        for ((name, value), keep) in RESERVED.iter().zip(reserved).zip(cfg.reserved) {
                            if keep {
                                a.push(kv(name, str_value(value)));
                            }
                        }
                        for (name, default) in dims {
                            if a.iter().any(|kv: &KeyValue| kv.key == *name) {
                                continue;
                            }
                            if let Some(v) = lookup(name).or_else(|| default.as_deref().map(str_value)) {
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
                    let reserved_key = |key: &mut Vec<u8>| {
                        for (value, keep) in reserved.iter().zip(cfg.reserved) {
                            if keep {
                                key.extend_from_slice(value.as_bytes());
                                key.push(0);
                            }
                        }
                    };
                    let scope_key = |key: &mut Vec<u8>| {
                        if let Some(s) = scope {
                            key.extend_from_slice(s.name.as_bytes());
                            key.push(1);
                            key.extend_from_slice(s.version.as_bytes());
                        }
                    };

                    key.clear();
                    reserved_key(&mut key);
                    for (name, default) in &cfg.dimensions {
                        push_dimension(&mut key, find(&span.attributes, name).or_else(|| find(rattrs, name)), default);
                    }
                    scope_key(&mut key);
                    let span_lookup = |name: &str| find(&span.attributes, name).or_else(|| find(rattrs, name)).cloned();
                    let series = r.spans.entry(
                        &mut key,
                        cfg.series_limit,
                        overflow_spans,
                        || attributes(&mut cfg.dimensions.iter(), &span_lookup),
                        now.unix_nanos,
                        new_durations,
                    );
                    let Some(series) = series else { continue };
                    series.calls += 1;
                    match &mut series.durations {
                        Durations::Explicit { count, sum, buckets } => {
                            *count += 1;
                            *sum += duration;
                            if let Some(bounds) = &cfg.buckets {
                                // The first bound at or above the value: bounds are inclusive upper limits.
                                let i = bounds.partition_point(|b| *b < duration);
                                if let Some(b) = buckets.get_mut(i) {
                                    *b += 1;
                                }
                            }
                        }
                        Durations::Exponential(h) => h.record(duration),
                        Durations::None => {}
                    }
                    add_exemplar(&mut series.exemplars, cfg.exemplars, span, duration, dropped_exemplars);

                    let Some(event_dims) = &cfg.event_dimensions else { continue };
                    for event in &span.events {
                        // As the Collector: a dimension is looked up on the
                        // span, then on the event (not on the resource).
                        let found = |name: &str| find(&span.attributes, name).or_else(|| find(&event.attributes, name));
                        key.clear();
                        key.push(EVENT_KEY);
                        reserved_key(&mut key);
                        for (name, default) in cfg.dimensions.iter().chain(event_dims) {
                            push_dimension(&mut key, found(name), default);
                        }
                        scope_key(&mut key);
                        let event_lookup = |name: &str| found(name).cloned();
                        let series = r.events.entry(
                            &mut key,
                            cfg.series_limit,
                            overflow_spans,
                            || attributes(&mut cfg.dimensions.iter().chain(event_dims), &event_lookup),
                            now.unix_nanos,
                            || Durations::None,
                        );
                        let Some(series) = series else { continue };
                        series.calls += 1;
                        add_exemplar(&mut series.exemplars, cfg.exemplars, span, duration, dropped_exemplars);
                    }
                }
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.flush.next()
    }

    fn tick(&mut self, now: Now, out: &mut Vec<Batch>) {
        if self.flush.due(now.instant) {
            self.emit(now, out);
        }
    }

    fn flush(&mut self, now: Now, out: &mut Vec<Batch>) {
        self.emit(now, out);
    }
}

#[cfg(test)]
mod tests;
