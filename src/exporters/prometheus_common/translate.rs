//! OTLP metrics to Prometheus series, as the Collector's translator does.
//!
//! Guarantees: every series's labels are valid, unique and sorted by name;
//! samples of a series are in time order (one per timestamp); each skipped
//! data point is counted in [`Dropped`] under its reason; the delta converter
//! holds at most `max_series` series and forgets those idle for `ttl`.
//!
//! Bounds ([`PointLimits`]): a point is checked before any of its series is
//! made, so a hostile point costs nothing past its check. A histogram with
//! more than `max_histogram_buckets` buckets (a summary with more
//! quantiles), a series with more than `max_labels_per_series` labels or a
//! label value longer than `max_label_value_length` bytes drops the whole
//! point (counted by reason, never half rendered); so does a point whose
//! series would take one batch's output past `max_batch_bytes` (estimated
//! bytes held: text of the series lines plus bookkeeping).

use super::naming::{metric_name, sanitize_label, unit_words, NameKind};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, HistogramDataPoint, NumberDataPoint,
};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xxhash_rust::xxh3::Xxh3;

/// Prometheus's staleness marker: a NaN with this exact bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// The OTLP data point flag "no recorded value".
const FLAG_NO_RECORDED_VALUE: u32 = 1;

pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// Name/value pairs sorted by name, `__name__` included.
pub type Labels = Vec<(String, String)>;

/// How the delta→cumulative converter is bounded.
#[derive(Debug, Clone, PartialEq)]
pub struct DeltaOptions {
    pub max_series: usize,
    pub ttl: Duration,
}

/// Bounds on what one data point (and one batch) may turn into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PointLimits {
    /// Buckets of one histogram point (`explicit_bounds` + 1), and quantiles
    /// of one summary point, at most. Default 1024.
    pub max_histogram_buckets: usize,
    /// Labels of one series, `__name__` and `le`/`quantile` included, at most. Default 128.
    pub max_labels_per_series: usize,
    /// Bytes of one label value, at most. Default 4096.
    pub max_label_value_length: usize,
    /// Estimated bytes of the series one batch translates to, at most. Default 64 MiB.
    pub max_batch_bytes: usize,
}

pub const DEFAULT_MAX_HISTOGRAM_BUCKETS: usize = 1024;
pub const DEFAULT_MAX_LABELS_PER_SERIES: usize = 128;
pub const DEFAULT_MAX_LABEL_VALUE_LENGTH: usize = 4096;
pub const DEFAULT_MAX_BATCH_BYTES: usize = 64 << 20;

impl Default for PointLimits {
    fn default() -> Self {
        PointLimits {
            max_histogram_buckets: DEFAULT_MAX_HISTOGRAM_BUCKETS,
            max_labels_per_series: DEFAULT_MAX_LABELS_PER_SERIES,
            max_label_value_length: DEFAULT_MAX_LABEL_VALUE_LENGTH,
            max_batch_bytes: DEFAULT_MAX_BATCH_BYTES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct TranslateOptions {
    pub add_metric_suffixes: bool,
    pub namespace: String,
    /// Every resource attribute on every series (else they go on `target_info` only).
    pub resource_to_telemetry: bool,
    pub target_info: bool,
    /// Added to every series unless the series already has the label.
    pub external_labels: BTreeMap<String, String>,
    /// Convert delta sums and histograms; `None` drops them.
    pub delta: Option<DeltaOptions>,
    pub limits: PointLimits,
}

/// Data points left out, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Delta sums and histograms while conversion is off.
    pub delta_temporality: u64,
    /// Exponential histograms, and points of metrics without data.
    pub unsupported_type: u64,
    /// Delta points of new series once the converter holds `max_series`.
    pub max_series: u64,
    /// Delta points older than one already added to their series: adding
    /// them would give Prometheus an out-of-order sample.
    pub out_of_order: u64,
    /// Histogram points with more than `max_histogram_buckets` buckets, and
    /// summary points with more quantiles.
    pub too_many_buckets: u64,
    /// Points whose series would have more than `max_labels_per_series` labels.
    pub too_many_labels: u64,
    /// Points with a label value longer than `max_label_value_length`.
    pub label_value_too_long: u64,
    /// Points whose series would take the batch's output past `max_batch_bytes`.
    pub batch_too_large: u64,
}

impl Dropped {
    pub fn total(&self) -> u64 {
        self.delta_temporality
            + self.unsupported_type
            + self.max_series
            + self.out_of_order
            + self.too_many_buckets
            + self.too_many_labels
            + self.label_value_too_long
            + self.batch_too_large
    }

    /// The counts above a bound, as `reason count` pairs for messages.
    pub fn describe(&self) -> String {
        let parts = [
            ("delta temporality (delta_to_cumulative.enabled: true converts them)", self.delta_temporality),
            ("unsupported type", self.unsupported_type),
            ("delta series limit", self.max_series),
            ("delta out of order", self.out_of_order),
            ("too many buckets (max_histogram_buckets)", self.too_many_buckets),
            ("too many labels (max_labels_per_series)", self.too_many_labels),
            ("label value too long (max_label_value_length)", self.label_value_too_long),
            ("batch too large (max_batch_bytes)", self.batch_too_large),
        ];
        let parts: Vec<String> = parts.iter().filter(|(_, n)| *n > 0).map(|(r, n)| format!("{r} {n}")).collect();
        parts.join(", ")
    }
}

/// Bytes a series's line takes in the text format: name, labels with their
/// values escaped, a value and a timestamp.
pub fn line_bytes(labels: &Labels) -> usize {
    let mut n = 2 + 1 + 24 + 21 + 1; // braces, space, value, timestamp, newline
    for (k, v) in labels {
        if k == "__name__" {
            n += v.len();
        } else {
            n += k.len() + 4 + escaped_len(v);
        }
    }
    n
}

/// Length of a label value once `\\`, `"` and newlines are escaped.
pub fn escaped_len(v: &str) -> usize {
    v.len() + v.bytes().filter(|b| matches!(b, b'\\' | b'"' | b'\n')).count()
}

/// Bytes held for one series beyond its line's text: the label strings'
/// and the map's bookkeeping.
fn held_bytes(labels: &Labels) -> usize {
    line_bytes(labels) + 96 + 48 * labels.len()
}

/// A Prometheus metric family's type, for `# TYPE` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyType {
    Counter,
    Gauge,
    Histogram,
    Summary,
}

impl FamilyType {
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyType::Counter => "counter",
            FamilyType::Gauge => "gauge",
            FamilyType::Histogram => "histogram",
            FamilyType::Summary => "summary",
        }
    }
}

/// The family a series belongs to: `x` for `x_bucket`, `x_sum` and `x_count`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Family {
    pub name: String,
    pub kind: FamilyType,
    pub help: String,
    /// The Prometheus unit (`seconds`, `bytes`), empty when none.
    pub unit: String,
}

/// Series of one translation, keyed by their labels.
#[derive(Debug, Default)]
pub struct SeriesSet {
    series: BTreeMap<Labels, (Arc<Family>, BTreeMap<i64, f64>)>,
    /// Estimated bytes held by the series ([`held_bytes`]).
    bytes: usize,
    /// The family of the series being added.
    current: Option<Arc<Family>>,
}

impl SeriesSet {
    /// Starts the family of the series added next; `otlp_unit` is the
    /// metric's UCUM unit.
    fn begin_family(&mut self, name: &str, kind: FamilyType, help: &str, otlp_unit: &str) {
        let unit = unit_words(otlp_unit).join("_");
        self.current = Some(Arc::new(Family { name: name.to_string(), kind, help: help.to_string(), unit }));
    }

    fn add(&mut self, labels: Labels, ts_ms: i64, value: f64) {
        let family = self.current.clone().unwrap_or_else(|| {
            let name = labels.iter().find(|(k, _)| k == "__name__").map_or("", |(_, v)| v.as_str());
            Arc::new(Family {
                name: name.to_string(),
                kind: FamilyType::Gauge,
                help: String::new(),
                unit: String::new(),
            })
        });
        match self.series.entry(labels) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                e.get_mut().1.insert(ts_ms, value);
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                self.bytes += held_bytes(e.key());
                e.insert((family, BTreeMap::new())).1.insert(ts_ms, value);
            }
        }
    }

    /// Estimated bytes held by the series so far.
    pub fn held_bytes(&self) -> usize {
        self.bytes
    }

    /// Each series's family, labels and samples in time order.
    pub fn into_family_series(self) -> impl Iterator<Item = (Arc<Family>, Labels, Vec<(i64, f64)>)> {
        self.series.into_iter().map(|(l, (f, s))| (f, l, s.into_iter().collect()))
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Each series's labels and its samples `(timestamp ms, value)` in time order.
    pub fn into_series(self) -> impl Iterator<Item = (Labels, Vec<(i64, f64)>)> {
        self.series.into_iter().map(|(l, (_, s))| (l, s.into_iter().collect()))
    }

    /// The samples of the series with exactly these labels (`__name__` included), for tests.
    pub fn get(&self, labels: &[(&str, &str)]) -> Option<Vec<(i64, f64)>> {
        let mut key: Labels = labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        key.sort();
        self.series.get(&key).map(|(_, s)| s.iter().map(|(t, v)| (*t, *v)).collect())
    }

    /// Every series's labels, for tests and diagnostics.
    pub fn labels(&self) -> impl Iterator<Item = &Labels> {
        self.series.keys()
    }
}

pub struct Translator {
    opts: TranslateOptions,
    external: Vec<(String, String)>,
    delta: Option<Mutex<DeltaState>>,
}

#[derive(Debug, Clone)]
enum Acc {
    Number(f64),
    Hist { count: u64, sum: f64, bounds: Vec<f64>, buckets: Vec<u64> },
}

struct DeltaEntry {
    /// Time of the last point added, so a re-sent (retried) batch adds nothing twice.
    last_ns: u64,
    last_seen: Instant,
    acc: Acc,
}

struct DeltaState {
    opts: DeltaOptions,
    entries: HashMap<u64, DeltaEntry>,
    last_sweep: Option<Instant>,
}

impl DeltaState {
    fn sweep(&mut self, now: Instant) {
        let every = (self.opts.ttl / 4).max(Duration::from_secs(1));
        if self.last_sweep.is_some_and(|t| now.duration_since(t) < every) {
            return;
        }
        self.last_sweep = Some(now);
        let ttl = self.opts.ttl;
        self.entries.retain(|_, e| now.duration_since(e.last_seen) < ttl);
    }

    /// Adds a delta point to its running total. A point at the time of the
    /// last one added is a re-sent batch: the total is repeated, not grown.
    fn accumulate(&mut self, key: u64, ns: u64, delta: Acc, now: Instant) -> Accumulated {
        let full = self.entries.len() >= self.opts.max_series;
        let entry = match self.entries.get_mut(&key) {
            Some(e) => e,
            None if full => return Accumulated::Full,
            None => {
                let e = DeltaEntry { last_ns: ns, last_seen: now, acc: delta };
                return Accumulated::Total(self.entries.entry(key).or_insert(e).acc.clone());
            }
        };
        entry.last_seen = now;
        if ns < entry.last_ns {
            return Accumulated::Older;
        }
        if ns == entry.last_ns {
            return Accumulated::Total(entry.acc.clone());
        }
        entry.last_ns = ns;
        match (&mut entry.acc, delta) {
            (Acc::Number(total), Acc::Number(d)) => *total += d,
            (Acc::Hist { count, sum, bounds, buckets }, Acc::Hist { count: dc, sum: ds, bounds: db, buckets: dbk })
                if *bounds == db && buckets.len() == dbk.len() =>
            {
                *count += dc;
                *sum += ds;
                for (b, d) in buckets.iter_mut().zip(dbk) {
                    *b += d;
                }
            }
            // The shape changed (new bucket bounds): start over from this point.
            (acc, d) => *acc = d,
        }
        Accumulated::Total(entry.acc.clone())
    }
}

enum Accumulated {
    Total(Acc),
    /// Older than the series's last point.
    Older,
    /// A new series while the table holds `max_series`.
    Full,
}

/// An attribute value as label text.
fn value_text(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::BytesValue(b)) => b.iter().map(|x| format!("{x:02x}")).collect(),
        Some(any_value::Value::ArrayValue(a)) => {
            let items: Vec<String> = a.values.iter().map(|v| value_text(Some(v))).collect();
            format!("[{}]", items.join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => {
            let items: Vec<String> =
                kv.values.iter().map(|kv| format!("{}:{}", kv.key, value_text(kv.value.as_ref()))).collect();
            format!("{{{}}}", items.join(","))
        }
        // A dictionary index (profiles only) has no text of its own here.
        Some(_) | None => String::new(),
    }
}

/// Attributes as sanitised labels; names that collide after sanitising get
/// their values joined with `;` in the order of the original names, as the
/// Collector does.
fn attribute_labels<'a>(attrs: impl Iterator<Item = &'a KeyValue>, out: &mut BTreeMap<String, String>) {
    let mut sorted: Vec<&KeyValue> = attrs.collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut fresh: BTreeMap<String, String> = BTreeMap::new();
    for kv in sorted {
        let name = sanitize_label(&kv.key);
        if name.is_empty() {
            continue;
        }
        let value = value_text(kv.value.as_ref());
        match fresh.get_mut(&name) {
            Some(v) => {
                v.push(';');
                v.push_str(&value);
            }
            None => {
                fresh.insert(name, value);
            }
        }
    }
    out.extend(fresh);
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// `job` and `instance` of a resource, as the specification derives them.
fn job_instance(attrs: &[KeyValue]) -> (Option<String>, Option<String>) {
    let job = attr(attrs, SERVICE_NAME).map(|name| match attr(attrs, SERVICE_NAMESPACE) {
        Some(ns) if !value_text(Some(ns)).is_empty() => format!("{}/{}", value_text(Some(ns)), value_text(Some(name))),
        _ => value_text(Some(name)),
    });
    let instance = attr(attrs, SERVICE_INSTANCE_ID).map(|v| value_text(Some(v)));
    (job, instance)
}

fn ms(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

fn le_text(bound: f64) -> String {
    if bound == f64::INFINITY {
        "+Inf".into()
    } else {
        format!("{bound}")
    }
}

fn number_value(p: &NumberDataPoint) -> Option<f64> {
    match p.value {
        Some(number_data_point::Value::AsDouble(d)) => Some(d),
        Some(number_data_point::Value::AsInt(i)) => Some(i as f64),
        None => None,
    }
}

fn is_stale(flags: u32) -> bool {
    flags & FLAG_NO_RECORDED_VALUE != 0
}

/// Labels of one series: the point's, then the scope's and resource's, with
/// the metric name last so nothing overrides it.
struct LabelBase<'a> {
    common: BTreeMap<String, String>,
    /// Only where the series has no label of the same name.
    external: &'a [(String, String)],
}

impl LabelBase<'_> {
    fn series(&self, name: &str, point_attrs: &[KeyValue], extra: Option<(&str, String)>) -> Labels {
        let mut labels = BTreeMap::new();
        attribute_labels(point_attrs.iter(), &mut labels);
        for (k, v) in &self.common {
            labels.insert(k.clone(), v.clone());
        }
        for (k, v) in self.external {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        if let Some((k, v)) = extra {
            labels.insert(k.to_string(), v);
        }
        labels.insert("__name__".to_string(), name.to_string());
        labels.into_iter().filter(|(_, v)| !v.is_empty()).collect()
    }
}

struct Hist<'a> {
    count: u64,
    sum: Option<f64>,
    bounds: &'a [f64],
    buckets: &'a [u64],
}

impl Translator {
    pub fn new(opts: TranslateOptions) -> Self {
        let external = opts.external_labels.iter().map(|(k, v)| (sanitize_label(k), v.clone())).collect();
        let delta =
            opts.delta.clone().map(|d| Mutex::new(DeltaState { opts: d, entries: HashMap::new(), last_sweep: None }));
        Translator { opts, external, delta }
    }

    /// Series the delta converter holds now.
    pub fn delta_series(&self) -> usize {
        self.delta.as_ref().map_or(0, |d| d.lock().unwrap_or_else(|p| p.into_inner()).entries.len())
    }

    pub fn translate(&self, req: &ExportMetricsServiceRequest, now: Instant) -> (SeriesSet, Dropped) {
        let mut out = SeriesSet::default();
        let mut dropped = Dropped::default();
        let mut delta = self.delta.as_ref().map(|d| d.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(d) = delta.as_mut() {
            d.sweep(now);
        }
        for rm in &req.resource_metrics {
            let rattrs: &[KeyValue] = rm.resource.as_ref().map_or(&[], |r| &r.attributes);
            let (job, instance) = job_instance(rattrs);
            let mut resource_labels = BTreeMap::new();
            if self.opts.resource_to_telemetry {
                attribute_labels(rattrs.iter(), &mut resource_labels);
            }
            let mut latest_ns = 0u64;
            for sm in &rm.scope_metrics {
                let mut common = resource_labels.clone();
                if let Some(scope) = &sm.scope {
                    if !scope.name.is_empty() {
                        common.insert("otel_scope_name".into(), scope.name.clone());
                    }
                    if !scope.version.is_empty() {
                        common.insert("otel_scope_version".into(), scope.version.clone());
                    }
                }
                if let Some(j) = &job {
                    common.insert("job".into(), j.clone());
                }
                if let Some(i) = &instance {
                    common.insert("instance".into(), i.clone());
                }
                let base = LabelBase { common, external: &self.external };
                for m in &sm.metrics {
                    let Some(data) = &m.data else {
                        continue;
                    };
                    let o = &self.opts;
                    let name = |kind| metric_name(&m.name, &m.unit, kind, o.add_metric_suffixes, &o.namespace);
                    match data {
                        Data::Gauge(g) => {
                            let name = name(NameKind::Gauge);
                            out.begin_family(&name, FamilyType::Gauge, &m.description, &m.unit);
                            for p in &g.data_points {
                                let Some(labels) = self.admit(&out, &mut dropped, &base, &name, &p.attributes, 1, 0)
                                else {
                                    continue;
                                };
                                latest_ns = latest_ns.max(p.time_unix_nano);
                                number(&mut out, labels, p);
                            }
                        }
                        Data::Sum(s) => {
                            let kind = if s.is_monotonic { NameKind::Counter } else { NameKind::Gauge };
                            let name = name(kind);
                            let ftype = if s.is_monotonic { FamilyType::Counter } else { FamilyType::Gauge };
                            out.begin_family(&name, ftype, &m.description, &m.unit);
                            let is_delta = s.aggregation_temporality == AggregationTemporality::Delta as i32;
                            for p in &s.data_points {
                                let Some(labels) = self.admit(&out, &mut dropped, &base, &name, &p.attributes, 1, 0)
                                else {
                                    continue;
                                };
                                // Dropped points do not make a target_info of their own.
                                if !is_delta || is_stale(p.flags) || delta.is_some() {
                                    latest_ns = latest_ns.max(p.time_unix_nano);
                                }
                                if !is_delta || is_stale(p.flags) {
                                    number(&mut out, labels, p);
                                    continue;
                                }
                                let Some(state) = delta.as_mut() else {
                                    dropped.delta_temporality += 1;
                                    continue;
                                };
                                let value = number_value(p).unwrap_or(0.0);
                                match state.accumulate(series_key(&labels), p.time_unix_nano, Acc::Number(value), now) {
                                    Accumulated::Total(Acc::Number(total)) => {
                                        out.add(labels, ms(p.time_unix_nano), total)
                                    }
                                    Accumulated::Total(_) => {}
                                    Accumulated::Older => dropped.out_of_order += 1,
                                    Accumulated::Full => dropped.max_series += 1,
                                }
                            }
                        }
                        Data::Histogram(h) => {
                            let name = name(NameKind::Other);
                            out.begin_family(&name, FamilyType::Histogram, &m.description, &m.unit);
                            let is_delta = h.aggregation_temporality == AggregationTemporality::Delta as i32;
                            for p in &h.data_points {
                                let buckets = p.explicit_bounds.len().saturating_add(1).max(p.bucket_counts.len());
                                if buckets > self.opts.limits.max_histogram_buckets {
                                    dropped.too_many_buckets += 1;
                                    continue;
                                }
                                // _bucket per bound and +Inf, _sum and _count; the le label.
                                let series = p.explicit_bounds.len() + 3;
                                let probe = format!("{name}_bucket");
                                if self.admit(&out, &mut dropped, &base, &probe, &p.attributes, series, 1).is_none() {
                                    continue;
                                }
                                if !is_delta || is_stale(p.flags) || delta.is_some() {
                                    latest_ns = latest_ns.max(p.time_unix_nano);
                                }
                                if !is_delta || is_stale(p.flags) {
                                    self.histogram(&mut out, &base, &name, p, hist_of(p));
                                    continue;
                                }
                                let Some(state) = delta.as_mut() else {
                                    dropped.delta_temporality += 1;
                                    continue;
                                };
                                let key = series_key(&base.series(&name, &p.attributes, None));
                                let d = Acc::Hist {
                                    count: p.count,
                                    sum: p.sum.unwrap_or(0.0),
                                    bounds: p.explicit_bounds.clone(),
                                    buckets: p.bucket_counts.clone(),
                                };
                                match state.accumulate(key, p.time_unix_nano, d, now) {
                                    Accumulated::Total(Acc::Hist { count, sum, bounds, buckets }) => {
                                        let h = Hist { count, sum: Some(sum), bounds: &bounds, buckets: &buckets };
                                        self.histogram(&mut out, &base, &name, p, h)
                                    }
                                    Accumulated::Total(_) => {}
                                    Accumulated::Older => dropped.out_of_order += 1,
                                    Accumulated::Full => dropped.max_series += 1,
                                }
                            }
                        }
                        Data::Summary(s) => {
                            let name = name(NameKind::Other);
                            out.begin_family(&name, FamilyType::Summary, &m.description, &m.unit);
                            for p in &s.data_points {
                                if p.quantile_values.len() > self.opts.limits.max_histogram_buckets {
                                    dropped.too_many_buckets += 1;
                                    continue;
                                }
                                let series = p.quantile_values.len() + 2;
                                let probe = format!("{name}_count");
                                if self.admit(&out, &mut dropped, &base, &probe, &p.attributes, series, 1).is_none() {
                                    continue;
                                }
                                latest_ns = latest_ns.max(p.time_unix_nano);
                                let ts = ms(p.time_unix_nano);
                                let stale = is_stale(p.flags);
                                let v = |x: f64| if stale { stale_nan() } else { x };
                                for q in &p.quantile_values {
                                    let labels =
                                        base.series(&name, &p.attributes, Some(("quantile", le_text(q.quantile))));
                                    out.add(labels, ts, v(q.value));
                                }
                                out.add(base.series(&format!("{name}_sum"), &p.attributes, None), ts, v(p.sum));
                                out.add(
                                    base.series(&format!("{name}_count"), &p.attributes, None),
                                    ts,
                                    v(p.count as f64),
                                );
                            }
                        }
                        Data::ExponentialHistogram(h) => dropped.unsupported_type += h.data_points.len() as u64,
                    }
                }
            }
            if self.opts.target_info && !self.opts.resource_to_telemetry && latest_ns > 0 {
                self.target_info(&mut out, rattrs, job, instance, latest_ns);
            }
        }
        (out, dropped)
    }

    /// Whether a point may make its `series` series (each with `extra`
    /// labels beyond its attributes and the common ones): checked against the
    /// limits before any series is made; a refusal is counted in `dropped`.
    /// Admitted, the labels of its series named `probe` (for a number point,
    /// its one series, so they are built once).
    #[allow(clippy::too_many_arguments)]
    fn admit(
        &self,
        out: &SeriesSet,
        dropped: &mut Dropped,
        base: &LabelBase<'_>,
        probe: &str,
        attrs: &[KeyValue],
        series: usize,
        extra: usize,
    ) -> Option<Labels> {
        let limits = &self.opts.limits;
        // A raw value longer than the bound is refused before it is copied.
        let too_long = |v: Option<&AnyValue>| match v.and_then(|v| v.value.as_ref()) {
            Some(any_value::Value::StringValue(s)) => s.len() > limits.max_label_value_length,
            Some(any_value::Value::BytesValue(b)) => b.len().saturating_mul(2) > limits.max_label_value_length,
            _ => false,
        };
        if attrs.iter().any(|kv| too_long(kv.value.as_ref())) {
            dropped.label_value_too_long += 1;
            return None;
        }
        // Labels every series of the scope has (resource, scope, job, instance),
        // checked without copying them.
        let common = base.common.values().filter(|v| !v.is_empty());
        if common.clone().count() + 1 + extra > limits.max_labels_per_series {
            dropped.too_many_labels += 1;
            return None;
        }
        if common.clone().any(|v| v.len() > limits.max_label_value_length) {
            dropped.label_value_too_long += 1;
            return None;
        }
        let labels = base.series(probe, attrs, None);
        if labels.len() + extra > limits.max_labels_per_series {
            dropped.too_many_labels += 1;
            return None;
        }
        if labels.iter().any(|(k, v)| k != "__name__" && v.len() > limits.max_label_value_length) {
            dropped.label_value_too_long += 1;
            return None;
        }
        // Each series: these labels, plus an `le`/`quantile` of up to 24 bytes.
        let per_series = held_bytes(&labels) + extra * (48 + 4 + 2 + 24);
        let cost = per_series.saturating_mul(series);
        if out.held_bytes().saturating_add(cost) > limits.max_batch_bytes {
            dropped.batch_too_large += 1;
            return None;
        }
        Some(labels)
    }

    fn histogram(&self, out: &mut SeriesSet, base: &LabelBase<'_>, name: &str, p: &HistogramDataPoint, h: Hist) {
        let ts = ms(p.time_unix_nano);
        let stale = is_stale(p.flags);
        let v = |x: f64| if stale { stale_nan() } else { x };
        if let Some(sum) = h.sum {
            out.add(base.series(&format!("{name}_sum"), &p.attributes, None), ts, v(sum));
        }
        out.add(base.series(&format!("{name}_count"), &p.attributes, None), ts, v(h.count as f64));
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        for (i, bound) in h.bounds.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            let labels = base.series(&bucket, &p.attributes, Some(("le", le_text(*bound))));
            out.add(labels, ts, v(cumulative as f64));
        }
        out.add(base.series(&bucket, &p.attributes, Some(("le", "+Inf".into()))), ts, v(h.count as f64));
    }

    /// One `target_info` per resource: its attributes other than those that
    /// make `job` and `instance`, value 1, at the resource's latest point.
    fn target_info(
        &self,
        out: &mut SeriesSet,
        rattrs: &[KeyValue],
        job: Option<String>,
        instance: Option<String>,
        latest_ns: u64,
    ) {
        let identifying = [SERVICE_NAME, SERVICE_NAMESPACE, SERVICE_INSTANCE_ID];
        let others = rattrs.iter().filter(|kv| !identifying.contains(&kv.key.as_str()));
        let mut labels = BTreeMap::new();
        attribute_labels(others, &mut labels);
        if labels.is_empty() {
            return;
        }
        if let Some(j) = job {
            labels.insert("job".into(), j);
        }
        if let Some(i) = instance {
            labels.insert("instance".into(), i);
        }
        for (k, v) in &self.external {
            labels.entry(k.clone()).or_insert_with(|| v.clone());
        }
        let name = if self.opts.namespace.is_empty() {
            "target_info".to_string()
        } else {
            format!("{}_target_info", sanitize_label(&self.opts.namespace))
        };
        out.begin_family(&name, FamilyType::Gauge, "Target metadata", "");
        labels.insert("__name__".into(), name);
        out.add(labels.into_iter().filter(|(_, v)| !v.is_empty()).collect(), ms(latest_ns), 1.0);
    }
}

/// A number point's sample on its series (`labels`, built by the admission check).
fn number(out: &mut SeriesSet, labels: Labels, p: &NumberDataPoint) {
    let value = if is_stale(p.flags) {
        stale_nan()
    } else {
        match number_value(p) {
            Some(v) => v,
            None => return,
        }
    };
    out.add(labels, ms(p.time_unix_nano), value);
}

fn hist_of(p: &HistogramDataPoint) -> Hist<'_> {
    Hist { count: p.count, sum: p.sum, bounds: &p.explicit_bounds, buckets: &p.bucket_counts }
}

/// xxh3 of the sorted labels, `__name__` included: the converter's series key.
fn series_key(labels: &Labels) -> u64 {
    let mut h = Xxh3::new();
    for (k, v) in labels {
        h.update(k.as_bytes());
        h.update(&[0xff]);
        h.update(v.as_bytes());
        h.update(&[0xfe]);
    }
    h.digest()
}
