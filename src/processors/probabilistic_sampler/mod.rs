//! The `probabilistic_sampler` processor (traces and logs), deciding as the
//! Collector's contrib `probabilisticsamplerprocessor` does, item by item.
//!
//! Guarantees:
//! - `hash_seed` mode keeps exactly the spans and records the Collector keeps
//!   for the same seed and percentage (FNV-1a 32 of the little-endian seed and
//!   the trace ID, low 14 bits below `uint32(float32(pct) * 163.84)`), so a
//!   fleet mixing sluice and Collectors agrees trace by trace. Like the
//!   Collector, a kept span gets `ot=rv:..;th:..` (the hash spread into 56
//!   bits of randomness exactly as the Collector does, see
//!   [`randomness_from_hash`]), a kept record `sampling.randomness`, and an
//!   item that already carries `th` or `rv` is unusable input, left as it is.
//! - Thresholds at low and high probabilities are the Collector's
//!   ([`Threshold::from_probability`]): precision grows with leading `0`s and
//!   `f`s, so a tiny probability is never turned into "sample nothing".
//! - Tracestates are validated as the Collector validates them (see
//!   `sampling::tracestate`); an all-zero trace ID has no randomness.
//! - `proportional` and `equalizing` follow OTEP 235: randomness from `rv`,
//!   else the low 56 bits of the trace ID; the threshold written is only ever
//!   raised, so downstream adjusted counts stay right.
//! - Unusable input (malformed tracestate or sampling attributes, missing
//!   randomness, a `th` the randomness contradicts) is dropped when
//!   `fail_closed` (the default) and kept otherwise; each drop is counted.
//! - Decisions are per item and deterministic, so the spans of one trace agree
//!   without shared state; the processor is not keyed by trace.

pub mod config;

use super::sampling::{Randomness, Threshold, W3cTraceState, MAX_ADJUSTED_COUNT, MIN_PROBABILITY};
use super::{Processor, ProcessorContext};
use crate::config::describe::SettingsType;
use crate::data::Batch;
use crate::telemetry::{Counter, ProcessorMetrics};
use config::{ProbabilisticSamplerConfig, SamplerMode};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::fmt::Write as _;
use std::time::Instant;

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::processors::{ProcessorFactory, ProcessorSpec};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "probabilistic_sampler",
        aliases: &[],
        signals: &[crate::data::Signal::Traces, crate::data::Signal::Logs],
        description: "keeps a percentage of traces or logs (hash_seed, proportional or equalizing)",
        example: "sampling_percentage: 10\n",
    },
    settings: SettingsType::of::<ProbabilisticSamplerConfig>(),
    compile: |input| {
        let cfg: ProbabilisticSamplerConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then_some(())?;
        Some(std::sync::Arc::new(cfg))
    },
};

impl ProcessorSpec for ProbabilisticSamplerConfig {
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(ProbabilisticSampler::new(self, ctx)))
    }
}

/// The hash buckets of `hash_seed` mode: 14 bits.
const HASH_BUCKETS_LG2: u32 = 14;
const HASH_BUCKETS: u32 = 1 << HASH_BUCKETS_LG2;
const HASH_BUCKET_MASK: u32 = HASH_BUCKETS - 1;
/// The randomness that every threshold but "never" keeps; stands in where an
/// item has none, so fail-open and priority decisions still keep it.
const ALL_PROBABILITIES: u64 = MAX_ADJUSTED_COUNT - 1;

/// Span attribute (OpenTracing convention) that forces a decision.
const SPAN_PRIORITY_ATTRIBUTE: &str = "sampling.priority";
/// Log record attributes that carry OTEP 235 `th` and `rv` (as the Collector).
const LOG_THRESHOLD_ATTRIBUTE: &str = "sampling.threshold";
const LOG_RANDOMNESS_ATTRIBUTE: &str = "sampling.randomness";

/// FNV-1a 32-bit over the seed's 4 little-endian bytes, then `data`: the
/// Collector's `computeHash`.
pub fn fnv1a32(seed: u32, data: &[u8]) -> u32 {
    const OFFSET: u32 = 0x811c_9dc5;
    const PRIME: u32 = 0x0100_0193;
    let mut h = OFFSET;
    for b in seed.to_le_bytes().iter().chain(data) {
        h ^= u32::from(*b);
        h = h.wrapping_mul(PRIME);
    }
    h
}

/// The Collector's percentage scaling: the product is taken in float32 and
/// truncated, not rounded, and that is kept so decisions match bit for bit.
pub fn scaled_sample_rate(percentage: f32) -> u32 {
    (percentage * 163.84f32) as u32
}

/// The hash as 56-bit randomness, laid out as the Collector's
/// `randomnessFromBytes` does, so that `R >= (16384 - scaled) << 42` holds
/// exactly when `hash & 0x3fff < scaled`: with `bucket = hash & 0x3fff` and
/// `x = hash >> 18` (the hash's top 14 bits; the Collector calls them the
/// "unused 18" but shifts by `32 - 14`),
/// `R = (16383 - bucket) << 42 | (x ^ (x << 10)) << 14 | bucket`.
pub fn randomness_from_hash(hash: u32) -> Randomness {
    let bucket = u64::from(hash & HASH_BUCKET_MASK);
    let rprime14 = u64::from(HASH_BUCKETS) - 1 - bucket;
    let x = u64::from(hash >> (32 - HASH_BUCKETS_LG2));
    let mixed = x ^ (x << 10);
    Randomness::from_value((rprime14 << 42) | (mixed << 14) | bucket)
}

/// The rejection threshold of `hash_seed` mode; None keeps nothing.
pub fn hash_threshold(percentage: f32) -> Option<Threshold> {
    let scaled = scaled_sample_rate(percentage).min(HASH_BUCKETS);
    if scaled == 0 {
        return None;
    }
    Threshold::from_value(u64::from(HASH_BUCKETS - scaled) << 42)
}

/// A threshold for probability `p` (the Collector's
/// `ProbabilityToThresholdWithPrecision`); None ("never") below what 56
/// bits can express or outside (0, 1].
fn probability_threshold(p: f64, precision: usize) -> Option<Threshold> {
    Threshold::from_probability(p, precision)
}

/// How the configured percentage turns an incoming threshold into the one
/// applied; None means never sample.
#[derive(Debug, Clone, Copy)]
enum Decider {
    Never,
    Hash { seed: u32, threshold: Threshold },
    Equalizing { threshold: Threshold },
    Proportional { ratio: f64, precision: usize },
}

impl Decider {
    fn new(cfg: &ProbabilisticSamplerConfig) -> Decider {
        // The Collector takes percentages above 100 as 100; validation refuses
        // them, but building must not fail.
        let pct = if cfg.sampling_percentage.is_nan() { 0.0 } else { cfg.sampling_percentage.clamp(0.0, 100.0) };
        if pct == 0.0 {
            return Decider::Never;
        }
        let precision = cfg.sampling_precision.clamp(1, 14) as usize;
        // The Collector holds the percentage as float32; widen that value, as
        // it does, so thresholds at full precision match too.
        let ratio = (f64::from(pct as f32) / 100.0).max(MIN_PROBABILITY);
        match cfg.resolved_mode() {
            SamplerMode::HashSeed => match hash_threshold(pct as f32) {
                Some(threshold) => Decider::Hash { seed: cfg.hash_seed, threshold },
                None => Decider::Never,
            },
            SamplerMode::Equalizing => match probability_threshold(ratio, precision) {
                Some(threshold) => Decider::Equalizing { threshold },
                None => Decider::Never,
            },
            SamplerMode::Proportional => Decider::Proportional { ratio, precision },
        }
    }

    fn decide(&self, incoming: Option<Threshold>) -> Option<Threshold> {
        match *self {
            Decider::Never => None,
            Decider::Hash { threshold, .. } => Some(threshold),
            Decider::Equalizing { threshold } => Some(incoming.map_or(threshold, |t| t.max(threshold))),
            Decider::Proportional { ratio, precision } => {
                let incoming_p = incoming.map_or(1.0, Threshold::probability);
                probability_threshold(incoming_p * ratio, precision)
            }
        }
    }
}

/// The outcome for one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Keep,
    Drop,
    /// Dropped because its sampling input was unusable (`fail_closed`).
    DropUnusable,
}

/// `th` and `rv` found on an item; `write_rv` is the randomness `hash_seed`
/// mode adds to a kept item.
#[derive(Debug, Default)]
struct Carrier {
    threshold: Option<Threshold>,
    randomness: Option<Randomness>,
    write_rv: Option<Randomness>,
}

/// What a decision produced before it is written back.
struct Decision {
    verdict: Verdict,
    /// The threshold to record on a kept item with a usable carrier.
    record: Option<Threshold>,
}

pub struct ProbabilisticSampler {
    decider: Decider,
    fail_closed: bool,
    precision: usize,
    logs_by_trace_id: bool,
    from_attribute: String,
    sampling_priority: String,
    metrics: ProcessorMetrics,
    unusable: Counter,
    /// Reused for attribute values hashed as text, so the hot path does not allocate.
    scratch: Vec<u8>,
}

impl ProbabilisticSampler {
    pub fn new(cfg: &ProbabilisticSamplerConfig, ctx: &ProcessorContext) -> Self {
        let metrics = crate::telemetry::ProbabilisticSamplerMetrics::new(&ctx.registry, &ctx.id, ctx.signal);
        ProbabilisticSampler {
            decider: Decider::new(cfg),
            fail_closed: cfg.fail_closed,
            precision: cfg.sampling_precision.clamp(1, 14) as usize,
            logs_by_trace_id: cfg.logs_by_trace_id(),
            from_attribute: cfg.from_attribute.clone(),
            sampling_priority: cfg.sampling_priority.clone(),
            metrics: metrics.processor,
            unusable: metrics.unusable_input,
            scratch: Vec::new(),
        }
    }

    /// The common decision of the Collector's `commonShouldSampleLogic`:
    /// unusable input gives never/always by `fail_closed`, else the mode
    /// decides; then a priority may override; then randomness is compared.
    /// `carrier_th` is the item's `th` slot when its sampling input could be
    /// read and may be written back.
    fn decide(
        &self,
        rnd: Option<Randomness>,
        mut carrier_th: Option<&mut Option<Threshold>>,
        mut unusable: bool,
        priority: Option<Option<Threshold>>,
    ) -> Decision {
        if !unusable {
            match rnd {
                None => unusable = true,
                Some(r) => {
                    // A threshold the randomness contradicts is a lie: clear it
                    // (as OTEP 235 says) and treat the input as unusable.
                    if let Some(th) = carrier_th.as_deref_mut() {
                        if th.is_some_and(|t| !t.should_sample(r)) {
                            *th = None;
                            unusable = true;
                        }
                    }
                }
            }
        }
        let mut threshold = if unusable {
            if self.fail_closed {
                None
            } else {
                Some(Threshold::ALWAYS_SAMPLE)
            }
        } else {
            self.decider.decide(carrier_th.as_deref().copied().flatten())
        };
        if let Some(p) = priority {
            threshold = p;
        }
        let r = rnd.unwrap_or(Randomness::from_value(ALL_PROBABILITIES));
        let kept = threshold.is_some_and(|t| t.should_sample(r));
        let verdict = match (kept, unusable) {
            (true, _) => Verdict::Keep,
            (false, true) if priority.is_none() => Verdict::DropUnusable,
            (false, _) => Verdict::Drop,
        };
        let record = if kept && carrier_th.is_some() { threshold } else { None };
        Decision { verdict, record }
    }

    /// Randomness, carrier and unusability of a span, as the Collector's
    /// `randomnessFromSpan` of each mode. An all-zero (or absent) trace ID
    /// has no randomness in every mode.
    fn span_input(&self, span: &Span) -> (Option<Randomness>, Option<W3cTraceState>, bool) {
        let (ts, err) = W3cTraceState::parse_partial(&span.trace_state);
        let id: Option<&[u8]> =
            (span.trace_id.len() == 16 && span.trace_id.iter().any(|b| *b != 0)).then_some(&span.trace_id);
        match self.decider {
            Decider::Hash { seed, .. } => {
                let rnd = id.map(|id| randomness_from_hash(fnv1a32(seed, id)));
                if err.is_some() {
                    return (rnd, None, true);
                }
                let ot = ts.ot().unwrap_or_default();
                // An item already in consistent sampling must be left alone:
                // the Collector reports it and writes nothing back.
                if ot.randomness.is_some() || ot.threshold.is_some() {
                    return (rnd, None, true);
                }
                let mut ts = ts;
                // As the Collector, the randomness is set before the decision;
                // missing randomness stands as "all probabilities" and is
                // written only if the item is kept anyway (fail open).
                ts.ot_mut().randomness = Some(rnd.unwrap_or(Randomness::from_value(ALL_PROBABILITIES)));
                (rnd, Some(ts), false)
            }
            // Nothing is kept unless a priority or fail-open says so; the
            // Collector keeps the carrier even when parsing failed, with what
            // could be read.
            Decider::Never => (Some(Randomness::from_value(ALL_PROBABILITIES)), Some(ts), err.is_some()),
            Decider::Equalizing { .. } | Decider::Proportional { .. } => {
                if err.is_some() {
                    return (None, None, true);
                }
                let rnd = ts.ot().ok().and_then(|ot| ot.randomness).or_else(|| id.and_then(Randomness::from_trace_id));
                (rnd, Some(ts), false)
            }
        }
    }

    fn sample_span(&mut self, span: &mut Span) -> Verdict {
        let (rnd, mut carrier, unusable) = self.span_input(span);
        let priority = span_priority(&span.attributes);
        let d = self.decide(rnd, carrier.as_mut().map(|ts| &mut ts.ot_mut().threshold), unusable, priority);
        if d.verdict == Verdict::Keep {
            if let (Some(th), Some(mut ts)) = (d.record, carrier) {
                // Not raised: the incoming `th` stays byte for byte.
                ts.ot_mut().update_threshold(th);
                span.trace_state = ts.to_string();
            }
        }
        d.verdict
    }

    /// Randomness and carrier for a log record, by mode: `parsed` is the
    /// record's `th`/`rv` or None when they are malformed; `hash_input` the
    /// bytes `hash_seed` mode hashes; `trace_randomness` the OTEP 235 fallback.
    fn log_input(
        &self,
        parsed: Option<Carrier>,
        hash_input: Option<&[u8]>,
        trace_randomness: Option<Randomness>,
    ) -> (Option<Randomness>, Option<Carrier>, bool) {
        match self.decider {
            Decider::Hash { seed, .. } => {
                let rnd = hash_input.map(|b| randomness_from_hash(fnv1a32(seed, b)));
                match parsed {
                    None => (rnd, None, true),
                    Some(mut c) => {
                        // An item already in consistent sampling must be left
                        // alone; the Collector reports it as an error and
                        // writes nothing back.
                        if c.randomness.is_some() || c.threshold.is_some() {
                            return (rnd, None, true);
                        }
                        c.write_rv = rnd;
                        (rnd, Some(c), false)
                    }
                }
            }
            // Nothing is kept unless a priority says so; no randomness needed.
            Decider::Never => {
                let unusable = parsed.is_none();
                (Some(Randomness::from_value(ALL_PROBABILITIES)), parsed, unusable)
            }
            Decider::Equalizing { .. } | Decider::Proportional { .. } => match parsed {
                None => (None, None, true),
                Some(c) => (c.randomness.or(trace_randomness), Some(c), false),
            },
        }
    }

    fn sample_log(&mut self, rec: &mut LogRecord) -> Verdict {
        let parsed = log_carrier(&rec.attributes);
        let trace_id: Option<&[u8]> =
            (rec.trace_id.len() == 16 && rec.trace_id.iter().any(|b| *b != 0)).then_some(&rec.trace_id);
        let trace_randomness = trace_id.and_then(Randomness::from_trace_id);
        let mut hash_input = if self.logs_by_trace_id { trace_id } else { None };
        if hash_input.is_none() && !self.from_attribute.is_empty() {
            if let Some(v) = find_attribute(&rec.attributes, &self.from_attribute) {
                if value_bytes(v, &mut self.scratch) {
                    hash_input = Some(&self.scratch);
                }
            }
        }
        let (rnd, mut carrier, unusable) = match self.decider {
            Decider::Hash { .. } => self.log_input(parsed, hash_input, None),
            _ => self.log_input(parsed, None, trace_randomness),
        };
        let priority = self.log_priority(&rec.attributes);
        let d = self.decide(rnd, carrier.as_mut().map(|c| &mut c.threshold), unusable, priority);
        if d.verdict == Verdict::Keep {
            if let (Some(th), Some(c)) = (d.record, carrier) {
                // Only raise: an existing higher threshold stays as it came.
                if c.threshold.is_none_or(|old| old <= th) {
                    put_str(&mut rec.attributes, LOG_THRESHOLD_ATTRIBUTE, threshold_hex(th));
                }
                if let Some(rv) = c.write_rv {
                    put_str(&mut rec.attributes, LOG_RANDOMNESS_ATTRIBUTE, format!("{:014x}", rv.value()));
                }
            }
        }
        d.verdict
    }

    /// Logs: a numeric `sampling_priority` attribute is a percentage that
    /// replaces the decision's threshold, when it is a valid probability.
    fn log_priority(&self, attrs: &[KeyValue]) -> Option<Option<Threshold>> {
        if self.sampling_priority.is_empty() {
            return None;
        }
        let p = match find_attribute(attrs, &self.sampling_priority)? {
            any_value::Value::DoubleValue(d) => *d / 100.0,
            any_value::Value::IntValue(i) => *i as f64 / 100.0,
            _ => return None,
        };
        if p == 0.0 {
            return None;
        }
        probability_threshold(p, self.precision).map(Some)
    }
}

fn push_threshold_hex(s: &mut String, th: Threshold) {
    if th.value() == 0 {
        s.push('0');
        return;
    }
    let _ = write!(s, "{:014x}", th.value());
    while s.ends_with('0') {
        s.pop();
    }
}

fn threshold_hex(th: Threshold) -> String {
    let mut s = String::with_capacity(14);
    push_threshold_hex(&mut s, th);
    s
}

/// The OpenTracing `sampling.priority` of a span: 0 never, above 0 always,
/// else (negative, absent, unparsable) no override.
fn span_priority(attrs: &[KeyValue]) -> Option<Option<Threshold>> {
    let v = match find_attribute(attrs, SPAN_PRIORITY_ATTRIBUTE)? {
        any_value::Value::IntValue(i) => *i as f64,
        any_value::Value::DoubleValue(d) => *d,
        any_value::Value::StringValue(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    if v == 0.0 {
        Some(None)
    } else if v > 0.0 {
        Some(Some(Threshold::ALWAYS_SAMPLE))
    } else {
        None
    }
}

fn find_attribute<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()).and_then(|v| v.value.as_ref())
}

/// The bytes the Collector hashes for an attribute value, into `out`: strings
/// and bytes as they are, ints and bools as text. False for an empty value or
/// a type not handled here (doubles, arrays, maps).
fn value_bytes(v: &any_value::Value, out: &mut Vec<u8>) -> bool {
    use std::io::Write as _;
    out.clear();
    match v {
        any_value::Value::StringValue(s) => out.extend_from_slice(s.as_bytes()),
        any_value::Value::BytesValue(b) => out.extend_from_slice(b),
        any_value::Value::IntValue(i) => {
            let _ = write!(out, "{i}");
        }
        any_value::Value::BoolValue(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        _ => return false,
    }
    !out.is_empty()
}

/// A record's `sampling.threshold` / `sampling.randomness` string attributes;
/// None when either is malformed.
fn log_carrier(attrs: &[KeyValue]) -> Option<Carrier> {
    let mut c = Carrier::default();
    for kv in attrs {
        let Some(any_value::Value::StringValue(s)) = kv.value.as_ref().and_then(|v| v.value.as_ref()) else {
            continue;
        };
        if s.is_empty() {
            continue;
        }
        match kv.key.as_str() {
            LOG_THRESHOLD_ATTRIBUTE => c.threshold = Some(Threshold::parse_hex(s)?),
            LOG_RANDOMNESS_ATTRIBUTE => c.randomness = Some(Randomness::parse_hex(s)?),
            _ => {}
        }
    }
    Some(c)
}

fn put_str(attrs: &mut Vec<KeyValue>, key: &str, value: String) {
    let v = Some(AnyValue { value: Some(any_value::Value::StringValue(value)) });
    match attrs.iter_mut().find(|kv| kv.key == key) {
        Some(kv) => kv.value = v,
        None => attrs.push(KeyValue { key: key.to_string(), value: v, ..Default::default() }),
    }
}

impl Processor for ProbabilisticSampler {
    fn process(&mut self, mut batch: Batch, _now: Instant, out: &mut Vec<Batch>) {
        let (mut dropped, mut unusable) = (0u64, 0u64);
        let mut count = |v: Verdict| {
            match v {
                Verdict::Keep => return true,
                Verdict::Drop => dropped += 1,
                Verdict::DropUnusable => {
                    dropped += 1;
                    unusable += 1;
                }
            }
            false
        };
        match &mut batch {
            Batch::Traces(req) => {
                for rs in &mut req.resource_spans {
                    for ss in &mut rs.scope_spans {
                        ss.spans.retain_mut(|s| count(self.sample_span(s)));
                    }
                }
                crate::data::prune_empty_traces(req);
            }
            Batch::Logs(req) => {
                for rl in &mut req.resource_logs {
                    for sl in &mut rl.scope_logs {
                        sl.log_records.retain_mut(|r| count(self.sample_log(r)));
                    }
                }
                crate::data::prune_empty_logs(req);
            }
            // Not a signal this processor is configured for; pass it on.
            Batch::Metrics(_) => {}
        }
        self.metrics.dropped.add(dropped);
        self.unusable.add(unusable);
        // As the Collector, an emptied batch goes no further.
        if !batch.is_empty() {
            out.push(batch);
        }
    }
}

#[cfg(test)]
mod tests;
