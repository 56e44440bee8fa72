//! The `cardinality_limiter` processor (metrics): bounds the distinct series
//! (data-point attribute sets) of each metric.
//!
//! Guarantees:
//! - A metric, identified by its resource's attributes, its scope and its
//!   name, passes at most its limit of distinct series (a series is an xxh3
//!   fingerprint of its sorted attribute set) plus one overflow series; the
//!   limit is `metrics[].limit` or `default_limit`, names in `exclude` pass
//!   unlimited. Keying by resource too keeps one noisy service from using up
//!   the slots of every other service that reports the same metric.
//! - Over the limit, `overflow` folds the point into the one series whose only
//!   attribute is `otel.metric.overflow=true`, as the OpenTelemetry SDK does,
//!   so totals stay correct: deltas add up; cumulative series are folded by
//!   their gains since their last point (a reset counts its whole new value),
//!   so the overflow series is itself a correct cumulative total; gauges keep
//!   the latest value; histograms merge when their bounds are equal (a point
//!   with other bounds is dropped and counted); exponential histograms merge
//!   after downscaling to the coarser scale; summaries add count and sum and
//!   carry no quantiles (quantiles of different series cannot be merged).
//!   `drop_attributes` removes the configured keys and re-aggregates the
//!   points that become identical within the batch (a reduced series is
//!   itself subject to the limit); `drop` drops the point. Every folded or
//!   dropped point is counted.
//! - A series not seen for `series_ttl` frees its slot at `tick`. Memory is
//!   bounded by `max_series` tracked series (limited series plus the
//!   cumulative series folded into an overflow series); a new series beyond
//!   it is treated as over its limit, and counted; points of a metric not yet
//!   tracked are then dropped (reason `max_series`), as its table would pass
//!   the bound.
//! - A folded cumulative series stays folded until it expires, even when a
//!   slot frees, so its gains are never counted both in the overflow series
//!   and on its own. An admitted series that expires and comes back over the
//!   limit is folded with its whole value: the backend sees its old series go
//!   stale while the overflow series takes it over.
//! - With several workers the pipeline routes each metric name to one
//!   worker (see `StateKey::MetricName`), so every limit holds exactly.
//!   `max_series`, a memory bound, is split across the workers' instances.
//! - No lock on the hot path: state is per instance; the per-attribute
//!   cardinality gauges are registered and set only at `tick`.

pub mod agg;
pub mod config;
mod hll;
#[cfg(test)]
mod tests;

use crate::config::describe::SettingsType;
use crate::data::Batch;
use crate::processors::{Processor, ProcessorContext};
use crate::telemetry::{CardinalityLimiterMetrics, Counter, Gauge, Registry};
use agg::{Agg, ExpAgg, HistAgg};
use config::{CardinalityLimiterConfig, LimitAction};
use hll::HyperLogLog;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, AggregationTemporality, ExponentialHistogramDataPoint, HistogramDataPoint,
    NumberDataPoint, SummaryDataPoint,
};
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{Duration, Instant};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed, Xxh3};

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::processors::{ProcessorFactory, ProcessorSpec, StateKey};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "cardinality_limiter",
        aliases: &[],
        signals: &[crate::data::Signal::Metrics],
        description: "bounds distinct series per metric, folding the excess into an overflow series",
        example: "",
    },
    settings: SettingsType::of::<CardinalityLimiterConfig>(),
    compile: |input| {
        let cfg: CardinalityLimiterConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then_some(())?;
        Some(std::sync::Arc::new(cfg))
    },
};

impl ProcessorSpec for CardinalityLimiterConfig {
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(CardinalityLimiter::new(self, ctx)))
    }

    /// Series tables are per resource, scope and metric name; the name
    /// alone is cheap to route by and keeps each table on one worker.
    fn state_key(&self) -> StateKey {
        StateKey::MetricName
    }
}

/// The attribute of the overflow series, as the OpenTelemetry SDK names it.
pub const OVERFLOW_ATTRIBUTE: &str = "otel.metric.overflow";
/// Attribute keys whose distinct values are estimated, per metric.
const MAX_HLL_KEYS: usize = 16;
/// Keys exported in the attribute cardinality gauge, per overflowed metric.
const TOP_KEYS: usize = 3;
/// Bytes of one tracked series: a 24-byte map slot (fingerprint, last seen)
/// plus its control byte, at the table's 44-87% load (measured: 32 at 77%,
/// `tests/volume_memory.rs`).
const SERIES_BYTES: usize = 48;
/// Rough bytes of one metric's table beyond its series.
const METRIC_BYTES: usize = 256;

/// Fingerprints are already xxh3 hashes; hashing them again is wasted work.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// How a metric's points combine over time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Gauge,
    Delta,
    Cumulative { monotonic: bool },
}

fn kind_of(temporality: i32, monotonic: bool) -> Kind {
    if temporality == AggregationTemporality::Delta as i32 {
        Kind::Delta
    } else {
        // Unspecified temporality is read as cumulative, the safer reading:
        // folding by gains never double counts.
        Kind::Cumulative { monotonic }
    }
}

/// The cumulative series of one metric folded into its overflow series.
struct CumulativeOverflow {
    /// Each folded series' last value and when it was seen.
    last: IdMap<(Agg, Instant)>,
    /// The overflow series' value: the sum of every folded series' gains.
    total: Option<Agg>,
    start: u64,
}

struct MetricState {
    name: String,
    limit: usize,
    series: IdMap<Instant>,
    overflow: Option<CumulativeOverflow>,
    hll: Vec<(String, HyperLogLog)>,
    overflowed: bool,
    gauges: Vec<(String, Gauge)>,
    last_seen: Instant,
}

/// Everything but the per-metric tables, so both can be borrowed at once.
struct Shared {
    action: LimitAction,
    drop_keys: Vec<String>,
    max_series: usize,
    /// Series plus folded cumulative series, across metrics.
    tracked: usize,
    hll_count: usize,
    /// Bytes of the last values of folded cumulative series.
    folded_bytes: usize,
    m: CardinalityLimiterMetrics,
    scratch: Vec<u64>,
}

pub struct CardinalityLimiter {
    id: String,
    registry: Registry,
    default_limit: usize,
    overrides: HashMap<String, usize>,
    exclude: HashSet<String>,
    ttl: Duration,
    sweep_every: Duration,
    next_sweep: Option<Instant>,
    metrics: IdMap<MetricState>,
    shared: Shared,
    reported_series: i64,
    reported_bytes: i64,
}

/// A configured bound as a count: at least 1 (validation refuses less).
fn bound(value: i64) -> usize {
    usize::try_from(value).unwrap_or(1).max(1)
}

impl CardinalityLimiter {
    pub fn new(cfg: &CardinalityLimiterConfig, ctx: &ProcessorContext) -> Self {
        let ttl = cfg.series_ttl.get().max(Duration::from_millis(1));
        CardinalityLimiter {
            id: ctx.id.clone(),
            registry: ctx.registry.clone(),
            default_limit: bound(cfg.default_limit),
            overrides: cfg.metrics.iter().map(|m| (m.name.clone(), bound(m.limit))).collect(),
            exclude: cfg.exclude.iter().cloned().collect(),
            ttl,
            // Sweeping a few times per TTL frees a slot at most a quarter TTL late.
            sweep_every: (ttl / 4).clamp(Duration::from_millis(1), Duration::from_secs(60)),
            next_sweep: None,
            metrics: IdMap::default(),
            shared: Shared {
                action: cfg.resolved_action(),
                drop_keys: cfg.drop_attributes.clone(),
                // Each worker owns its share of the memory bound, rounded up.
                max_series: bound(cfg.max_series).div_ceil(ctx.workers.max(1)),
                tracked: 0,
                hll_count: 0,
                folded_bytes: 0,
                m: CardinalityLimiterMetrics::new(&ctx.registry, &ctx.id),
                scratch: Vec::new(),
            },
            reported_series: 0,
            reported_bytes: 0,
        }
    }

    /// Series tracked by this instance (limited plus folded cumulative).
    pub fn tracked_series(&self) -> usize {
        self.shared.tracked
    }

    fn report(&mut self) {
        let series = self.shared.tracked as i64;
        let bytes = (self.shared.tracked * SERIES_BYTES
            + self.shared.hll_count * (HyperLogLog::BYTES + 32)
            + self.shared.folded_bytes
            + self.metrics.len() * METRIC_BYTES) as i64;
        self.shared.m.series.add(series - self.reported_series);
        self.shared.m.memory_bytes.add(bytes - self.reported_bytes);
        self.reported_series = series;
        self.reported_bytes = bytes;
    }

    fn sweep(&mut self, now: Instant) {
        let ttl = self.ttl;
        let alive = |seen: Instant| now.saturating_duration_since(seen) < ttl;
        let shared = &mut self.shared;
        self.metrics.retain(|_, st| {
            let before = st.series.len();
            st.series.retain(|_, seen| alive(*seen));
            shared.tracked -= before - st.series.len();
            if let Some(ov) = &mut st.overflow {
                let before = ov.last.len();
                // A folded series that stops keeps its gains in the total.
                ov.last.retain(|_, (last, seen)| {
                    let keep = alive(*seen);
                    if !keep {
                        shared.folded_bytes = shared.folded_bytes.saturating_sub(last.bytes());
                    }
                    keep
                });
                shared.tracked -= before - ov.last.len();
            }
            let keep = !st.series.is_empty()
                || st.overflow.as_ref().is_some_and(|o| !o.last.is_empty())
                || alive(st.last_seen);
            if !keep {
                shared.hll_count -= st.hll.len();
                for (_, g) in &st.gauges {
                    g.set(0);
                }
            }
            keep
        });
    }

    /// Sets the attribute cardinality gauges of metrics that overflowed.
    fn publish_attribute_cardinality(&mut self) {
        for st in self.metrics.values_mut() {
            if !st.overflowed {
                continue;
            }
            let mut top: Vec<(f64, &str)> = st.hll.iter().map(|(k, h)| (h.estimate(), k.as_str())).collect();
            top.sort_by(|a, b| b.0.total_cmp(&a.0));
            top.truncate(TOP_KEYS);
            for (estimate, key) in top {
                let gauge = match st.gauges.iter().find(|(k, _)| k == key) {
                    Some((_, g)) => g.clone(),
                    None => {
                        let g =
                            CardinalityLimiterMetrics::attribute_cardinality(&self.registry, &self.id, &st.name, key);
                        st.gauges.push((key.to_string(), g.clone()));
                        g
                    }
                };
                gauge.set(estimate.round() as i64);
            }
        }
    }

    fn limit_of(&self, name: &str) -> usize {
        self.overrides.get(name).copied().unwrap_or(self.default_limit)
    }
}

impl Processor for CardinalityLimiter {
    fn process(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        let Batch::Metrics(mut req) = batch else {
            out.push(batch);
            return;
        };
        if self.next_sweep.is_none() {
            self.next_sweep = Some(now + self.sweep_every);
        }
        for rm in &mut req.resource_metrics {
            let resource = rm.resource.as_ref().map_or(0, |r| fingerprint(&r.attributes, &mut self.shared.scratch));
            for sm in &mut rm.scope_metrics {
                let scope = sm
                    .scope
                    .as_ref()
                    .map_or(0, |s| xxh3_64_with_seed(s.version.as_bytes(), xxh3_64(s.name.as_bytes())));
                for metric in &mut sm.metrics {
                    if self.exclude.contains(&metric.name) {
                        continue;
                    }
                    let Some(data) = metric.data.as_mut() else { continue };
                    let key = xxh3_64_with_seed(metric.name.as_bytes(), resource ^ scope.rotate_left(17));
                    let limit = self.limit_of(&metric.name);
                    if !self.metrics.contains_key(&key) && self.shared.tracked >= self.shared.max_series {
                        // A new metric's table would pass the memory bound.
                        let n = crate::data::metric_point_count(Some(data)) as u64;
                        self.shared.m.max_series_reached.inc();
                        self.shared.m.dropped_max_series.add(n);
                        self.shared.m.processor.dropped.add(n);
                        metric.data = None;
                        continue;
                    }
                    let st = self.metrics.entry(key).or_insert_with(|| MetricState {
                        name: metric.name.clone(),
                        limit,
                        series: IdMap::default(),
                        overflow: None,
                        hll: Vec::new(),
                        overflowed: false,
                        gauges: Vec::new(),
                        last_seen: now,
                    });
                    st.last_seen = now;
                    let sh = &mut self.shared;
                    match data {
                        Data::Gauge(g) => limit_points(sh, st, &mut g.data_points, Kind::Gauge, now),
                        Data::Sum(s) => {
                            let kind = kind_of(s.aggregation_temporality, s.is_monotonic);
                            limit_points(sh, st, &mut s.data_points, kind, now)
                        }
                        Data::Histogram(h) => {
                            let kind = kind_of(h.aggregation_temporality, true);
                            limit_points(sh, st, &mut h.data_points, kind, now)
                        }
                        Data::ExponentialHistogram(h) => {
                            let kind = kind_of(h.aggregation_temporality, true);
                            limit_points(sh, st, &mut h.data_points, kind, now)
                        }
                        // Summaries are cumulative by definition.
                        Data::Summary(s) => {
                            limit_points(sh, st, &mut s.data_points, Kind::Cumulative { monotonic: true }, now)
                        }
                    }
                }
                sm.metrics.retain(|m| crate::data::metric_point_count(m.data.as_ref()) > 0);
            }
        }
        crate::data::prune_empty_metrics(&mut req);
        self.report();
        if !req.resource_metrics.is_empty() {
            out.push(Batch::Metrics(req));
        }
    }

    fn tick(&mut self, now: Instant, _out: &mut Vec<Batch>) {
        if self.next_sweep.is_some_and(|t| now >= t) {
            self.sweep(now);
            self.next_sweep = Some(now + self.sweep_every);
        }
        self.publish_attribute_cardinality();
        self.report();
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.next_sweep
    }
}

/// Hash of an attribute value, typed so that `1` and `"1"` differ.
fn value_hash(v: Option<&AnyValue>) -> u64 {
    use any_value::Value as V;
    match v.and_then(|v| v.value.as_ref()) {
        Some(V::StringValue(s)) => xxh3_64_with_seed(s.as_bytes(), 1),
        Some(V::BoolValue(b)) => xxh3_64_with_seed(&[u8::from(*b)], 2),
        Some(V::IntValue(i)) => xxh3_64_with_seed(&i.to_le_bytes(), 3),
        Some(V::DoubleValue(d)) => xxh3_64_with_seed(&d.to_bits().to_le_bytes(), 4),
        Some(V::BytesValue(b)) => xxh3_64_with_seed(b, 5),
        Some(other) => {
            let any = AnyValue { value: Some(other.clone()) };
            xxh3_64_with_seed(&prost::Message::encode_to_vec(&any), 6)
        }
        None => 0,
    }
}

/// The xxh3 fingerprint of a sorted attribute set; calls `each` with every
/// key and value hash on the way.
fn fingerprint_with(attrs: &[KeyValue], scratch: &mut Vec<u64>, mut each: impl FnMut(&str, u64)) -> u64 {
    scratch.clear();
    for kv in attrs {
        let vh = value_hash(kv.value.as_ref());
        each(&kv.key, vh);
        scratch.push(xxh3_64_with_seed(kv.key.as_bytes(), vh));
    }
    // Sorting the per-attribute hashes makes the fingerprint independent of order.
    scratch.sort_unstable();
    let mut h = Xxh3::new();
    for x in scratch.iter() {
        h.update(&x.to_le_bytes());
    }
    h.digest()
}

fn fingerprint(attrs: &[KeyValue], scratch: &mut Vec<u64>) -> u64 {
    fingerprint_with(attrs, scratch, |_, _| {})
}

fn observe(hll: &mut Vec<(String, HyperLogLog)>, hll_count: &mut usize, key: &str, vh: u64) {
    if let Some((_, h)) = hll.iter_mut().find(|(k, _)| k == key) {
        h.add(vh);
    } else if hll.len() < MAX_HLL_KEYS {
        let mut h = HyperLogLog::default();
        h.add(vh);
        hll.push((key.to_string(), h));
        *hll_count += 1;
    }
}

fn drop_point(m: &CardinalityLimiterMetrics, reason: &Counter) {
    reason.inc();
    m.processor.dropped.inc();
}

fn overflow_attributes() -> Vec<KeyValue> {
    vec![KeyValue {
        key: OVERFLOW_ATTRIBUTE.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::BoolValue(true)) }),
        ..Default::default()
    }]
}

/// Admits a series if it is known or there is room; false when it is over
/// its metric's limit or the memory bound.
fn admit(sh: &mut Shared, st: &mut MetricState, fp: u64, now: Instant) -> bool {
    if let Some(seen) = st.series.get_mut(&fp) {
        *seen = now;
        return true;
    }
    if st.series.len() >= st.limit {
        return false;
    }
    if sh.tracked >= sh.max_series {
        sh.m.max_series_reached.inc();
        return false;
    }
    st.series.insert(fp, now);
    sh.tracked += 1;
    true
}

/// A point folded or merged so far: its value, earliest start, latest time.
struct Folded {
    agg: Agg,
    start: u64,
    time: u64,
}

fn limit_points<P: LimitedPoint>(sh: &mut Shared, st: &mut MetricState, points: &mut Vec<P>, kind: Kind, now: Instant) {
    let mut folded: Option<Folded> = None;
    let mut cumulative_time: Option<u64> = None;
    let mut stripped: Vec<P> = Vec::new();
    points.retain_mut(|p| {
        let (hll, hll_count) = (&mut st.hll, &mut sh.hll_count);
        let fp = fingerprint_with(p.attributes(), &mut sh.scratch, |k, vh| observe(hll, hll_count, k, vh));
        // A cumulative series once folded stays folded while it is tracked:
        // reported on its own as well, its gains would count twice.
        let folded_before = st.overflow.as_ref().is_some_and(|o| o.last.contains_key(&fp));
        if !folded_before && admit(sh, st, fp, now) {
            return true;
        }
        st.overflowed = true;
        match sh.action {
            LimitAction::Drop => drop_point(&sh.m, &sh.m.dropped_limit),
            LimitAction::DropAttributes => {
                p.attributes_mut().retain(|kv| !sh.drop_keys.contains(&kv.key));
                sh.m.attributes_dropped.inc();
                stripped.push(std::mem::take(p));
            }
            LimitAction::Overflow => match kind {
                Kind::Cumulative { monotonic } => {
                    if fold_cumulative(sh, st, p, fp, monotonic, now) {
                        cumulative_time = cumulative_time.max(Some(p.times().1));
                    }
                }
                Kind::Gauge | Kind::Delta => fold(sh, &mut folded, p, kind),
            },
        }
        false
    });
    if let Some(f) = folded {
        points.push(P::from_agg(&f.agg, overflow_attributes(), f.start, f.time));
    }
    if let (Some(time), Some(ov)) = (cumulative_time, &st.overflow) {
        if let Some(total) = &ov.total {
            points.push(P::from_agg(total, overflow_attributes(), ov.start, time));
        }
    }
    if !stripped.is_empty() {
        reaggregate(sh, st, points, stripped, kind, now);
    }
}

/// Folds a delta or gauge point into the batch's overflow point.
fn fold<P: LimitedPoint>(sh: &Shared, folded: &mut Option<Folded>, p: &P, kind: Kind) {
    let (start, time) = p.times();
    match folded {
        None => *folded = Some(Folded { agg: p.agg(), start, time }),
        Some(f) if kind == Kind::Gauge => {
            if time >= f.time {
                *f = Folded { agg: p.agg(), start, time };
            }
        }
        Some(f) => {
            if !f.agg.add(&p.agg()) {
                drop_point(&sh.m, &sh.m.dropped_incompatible);
                return;
            }
            f.start = f.start.min(start);
            f.time = f.time.max(time);
        }
    }
    sh.m.overflowed.inc();
}

/// Folds a cumulative point by its gain since the series' last point; false
/// when it was dropped instead.
fn fold_cumulative<P: LimitedPoint>(
    sh: &mut Shared,
    st: &mut MetricState,
    p: &P,
    fp: u64,
    monotonic: bool,
    now: Instant,
) -> bool {
    let (start, _) = p.times();
    let cur = p.agg();
    let ov = st.overflow.get_or_insert_with(|| CumulativeOverflow { last: IdMap::default(), total: None, start });
    let known = ov.last.get(&fp);
    if known.is_none() && sh.tracked >= sh.max_series {
        sh.m.max_series_reached.inc();
        drop_point(&sh.m, &sh.m.dropped_max_series);
        return false;
    }
    let gain = match known {
        Some((prev, _)) => cur.since(prev, monotonic).unwrap_or_else(|| cur.clone()),
        None => cur.clone(),
    };
    let merged = match &mut ov.total {
        Some(total) => total.add(&gain),
        None => {
            ov.total = Some(gain);
            true
        }
    };
    if !merged {
        drop_point(&sh.m, &sh.m.dropped_incompatible);
        return false;
    }
    sh.folded_bytes += cur.bytes();
    match ov.last.insert(fp, (cur, now)) {
        Some((old, _)) => sh.folded_bytes = sh.folded_bytes.saturating_sub(old.bytes()),
        None => sh.tracked += 1,
    }
    sh.m.overflowed.inc();
    true
}

/// Merges points whose attribute sets became identical once the
/// `drop_attributes` keys were removed, then admits the reduced series.
fn reaggregate<P: LimitedPoint>(
    sh: &mut Shared,
    st: &mut MetricState,
    points: &mut Vec<P>,
    stripped: Vec<P>,
    kind: Kind,
    now: Instant,
) {
    let mut merged: Vec<(u64, P, Option<Folded>)> = Vec::with_capacity(stripped.len());
    let mut index: IdMap<usize> = IdMap::default();
    for p in stripped {
        let fp = fingerprint(p.attributes(), &mut sh.scratch);
        let Some(&i) = index.get(&fp) else {
            index.insert(fp, merged.len());
            merged.push((fp, p, None));
            continue;
        };
        let Some((_, first, acc)) = merged.get_mut(i) else { continue };
        let f = acc.get_or_insert_with(|| {
            let (start, time) = first.times();
            Folded { agg: first.agg(), start, time }
        });
        let (start, time) = p.times();
        if kind == Kind::Gauge {
            if time >= f.time {
                *f = Folded { agg: p.agg(), start, time };
            }
        } else if f.agg.add(&p.agg()) {
            f.start = f.start.min(start);
            f.time = f.time.max(time);
        } else {
            drop_point(&sh.m, &sh.m.dropped_incompatible);
        }
    }
    for (fp, mut p, acc) in merged {
        if !admit(sh, st, fp, now) {
            drop_point(&sh.m, &sh.m.dropped_limit);
            continue;
        }
        if let Some(f) = acc {
            let attrs = std::mem::take(p.attributes_mut());
            p = P::from_agg(&f.agg, attrs, f.start, f.time);
        }
        points.push(p);
    }
}

/// A data point the limiter can fingerprint, fold and rebuild.
trait LimitedPoint: Default {
    fn attributes(&self) -> &[KeyValue];
    fn attributes_mut(&mut self) -> &mut Vec<KeyValue>;
    /// Start and observation times, in Unix nanoseconds.
    fn times(&self) -> (u64, u64);
    fn agg(&self) -> Agg;
    /// A point carrying `agg`; a value of another kind gives an empty point.
    fn from_agg(agg: &Agg, attributes: Vec<KeyValue>, start: u64, time: u64) -> Self;
}

/// The accessors every OTLP data point type implements the same way.
macro_rules! point_fields {
    () => {
        fn attributes(&self) -> &[KeyValue] {
            &self.attributes
        }
        fn attributes_mut(&mut self) -> &mut Vec<KeyValue> {
            &mut self.attributes
        }
        fn times(&self) -> (u64, u64) {
            (self.start_time_unix_nano, self.time_unix_nano)
        }
    };
}

impl LimitedPoint for NumberDataPoint {
    point_fields!();
    fn agg(&self) -> Agg {
        match self.value {
            Some(number_data_point::Value::AsInt(i)) => Agg::Number { f: i as f64, i, int: true },
            Some(number_data_point::Value::AsDouble(f)) => Agg::Number { f, i: f as i64, int: false },
            None => Agg::Number { f: 0.0, i: 0, int: true },
        }
    }
    fn from_agg(agg: &Agg, attributes: Vec<KeyValue>, start: u64, time: u64) -> Self {
        let value = match agg {
            Agg::Number { i, int: true, .. } => Some(number_data_point::Value::AsInt(*i)),
            Agg::Number { f, .. } => Some(number_data_point::Value::AsDouble(*f)),
            _ => None,
        };
        NumberDataPoint { attributes, start_time_unix_nano: start, time_unix_nano: time, value, ..Default::default() }
    }
}

impl LimitedPoint for HistogramDataPoint {
    point_fields!();
    fn agg(&self) -> Agg {
        Agg::Hist(HistAgg {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            bounds: self.explicit_bounds.clone(),
            buckets: self.bucket_counts.clone(),
        })
    }
    fn from_agg(agg: &Agg, attributes: Vec<KeyValue>, start: u64, time: u64) -> Self {
        let mut p =
            HistogramDataPoint { attributes, start_time_unix_nano: start, time_unix_nano: time, ..Default::default() };
        if let Agg::Hist(h) = agg {
            p.count = h.count;
            p.sum = h.sum;
            p.min = h.min;
            p.max = h.max;
            p.explicit_bounds = h.bounds.clone();
            p.bucket_counts = h.buckets.clone();
        }
        p
    }
}

impl LimitedPoint for ExponentialHistogramDataPoint {
    point_fields!();
    fn agg(&self) -> Agg {
        Agg::Exp(ExpAgg {
            count: self.count,
            sum: self.sum,
            min: self.min,
            max: self.max,
            scale: self.scale,
            zero_count: self.zero_count,
            zero_threshold: self.zero_threshold,
            positive: self.positive.clone().unwrap_or_default(),
            negative: self.negative.clone().unwrap_or_default(),
        })
    }
    fn from_agg(agg: &Agg, attributes: Vec<KeyValue>, start: u64, time: u64) -> Self {
        let mut p = ExponentialHistogramDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: time,
            ..Default::default()
        };
        if let Agg::Exp(e) = agg {
            p.count = e.count;
            p.sum = e.sum;
            p.min = e.min;
            p.max = e.max;
            p.scale = e.scale;
            p.zero_count = e.zero_count;
            p.zero_threshold = e.zero_threshold;
            p.positive = Some(e.positive.clone());
            p.negative = Some(e.negative.clone());
        }
        p
    }
}

impl LimitedPoint for SummaryDataPoint {
    point_fields!();
    fn agg(&self) -> Agg {
        Agg::Summary { count: self.count, sum: self.sum }
    }
    fn from_agg(agg: &Agg, attributes: Vec<KeyValue>, start: u64, time: u64) -> Self {
        let (count, sum) = match agg {
            Agg::Summary { count, sum } => (*count, *sum),
            _ => (0, 0.0),
        };
        // Quantiles of different series cannot be merged, so none are sent.
        SummaryDataPoint {
            attributes,
            start_time_unix_nano: start,
            time_unix_nano: time,
            count,
            sum,
            ..Default::default()
        }
    }
}
