//! The `head_sampler` processor (traces): sampling for agents that cannot hold
//! traces in memory. The first span seen of a trace decides for the whole
//! trace; later spans follow that decision from a bounded `DecisionCache`.
//!
//! What it guarantees:
//! - A decision is consistent: the trace's randomness (`rv` in the `ot`
//!   tracestate, else the low 56 bits of the trace ID) is compared with the
//!   threshold of the probability applied, so every agent that applies the
//!   same probability to a trace decides the same way.
//! - Every kept span carries `ot=th:...` for the probability applied (`th:0`
//!   for always-keep), so counts can be re-weighted downstream.
//! - Traces whose first span has error status (`keep_errors`) or matches an
//!   `always_keep` rule are kept; all others are sampled so the kept traces
//!   per second approach `traces_per_second` (see `keys` for the allocation).
//! - Memory is bounded: `decision_cache_size` decisions and `max_keys` keys,
//!   each split evenly across the pipeline's workers. The pipeline routes
//!   every span of a trace to one worker (`StateKey::TraceId`), and a trace's
//!   worker is a hash of its ID, so each worker sees about `1/workers` of each
//!   key's traces and applies `1/workers` of the goal.
//! - A span whose trace's decision was evicted is decided again as if it were
//!   the first: with an unchanged probability the outcome is the same (the
//!   randomness is the trace's), but an always-keep rule that matched only the
//!   first span no longer applies, and the trace is counted twice for its key.
//! - Spans whose trace ID is not 16 bytes have no randomness: they are kept
//!   without `th` and counted, never dropped silently.
//! - Nothing on input panics; the processor holds no lock.

pub mod cache;
pub mod config;
pub mod keys;

use super::sampling::{tracestate, Randomness, Threshold, W3cTraceState};
use super::{Processor, ProcessorContext};
use crate::config::describe::SettingsType;
use crate::data::Batch;
use crate::telemetry::{HeadSamplerMetrics, ProcessorMetrics};
use cache::{DecisionCache, Inserted};
use config::{AttributeRule, HeadSamplerConfig, KeyConfig};
use keys::KeyRates;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{status::StatusCode, Span};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::processors::{ProcessorFactory, ProcessorSpec, StateKey};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "head_sampler",
        aliases: &[],
        signals: &[crate::data::Signal::Traces],
        description: "keeps traces on their first span toward a traces/s goal per key, errors always",
        example: "traces_per_second: 100\n",
    },
    settings: SettingsType::of::<HeadSamplerConfig>(),
    compile: |input| {
        let cfg: HeadSamplerConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then_some(())?;
        Some(std::sync::Arc::new(cfg))
    },
};

impl ProcessorSpec for HeadSamplerConfig {
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(HeadSampler::new(self, ctx)))
    }

    /// Decision caches are per trace.
    fn state_key(&self) -> StateKey {
        StateKey::TraceId
    }
}

/// Separates key fields, so ("a b", "c") and ("a", "b c") are different keys.
const KEY_SEPARATOR: char = '\u{1f}';

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decision {
    keep: bool,
    threshold: Threshold,
}

enum Matcher {
    Values(Vec<String>),
    Regex(regex::Regex),
    /// A rule whose regex does not compile; validation rejects such configs,
    /// so this only keeps `build` infallible.
    Never,
}

struct Rule {
    key: String,
    matcher: Matcher,
}

impl Rule {
    fn compile(r: &AttributeRule) -> Rule {
        let matcher = match &r.regex {
            Some(re) => regex::Regex::new(re).map_or(Matcher::Never, Matcher::Regex),
            None => Matcher::Values(r.values.clone()),
        };
        Rule { key: r.key.clone(), matcher }
    }

    fn matches(&self, attrs: &[KeyValue], scratch: &mut String) -> bool {
        let Some(v) = attrs.iter().find(|kv| kv.key == self.key).and_then(|kv| kv.value.as_ref()) else {
            return false;
        };
        let Some(s) = value_str(v, scratch) else { return false };
        match &self.matcher {
            Matcher::Values(values) => values.iter().any(|x| x == s),
            Matcher::Regex(re) => re.is_match(s),
            Matcher::Never => false,
        }
    }
}

/// The string form of a scalar attribute value; None for arrays, maps, bytes.
fn value_str<'a>(v: &'a AnyValue, scratch: &'a mut String) -> Option<&'a str> {
    scratch.clear();
    match v.value.as_ref()? {
        any_value::Value::StringValue(s) => return Some(s.as_str()),
        any_value::Value::BoolValue(b) => write!(scratch, "{b}").ok()?,
        any_value::Value::IntValue(i) => write!(scratch, "{i}").ok()?,
        any_value::Value::DoubleValue(d) => write!(scratch, "{d}").ok()?,
        _ => return None,
    }
    Some(scratch.as_str())
}

pub struct HeadSampler {
    goal_per_second: f64,
    interval: Duration,
    keep_errors: bool,
    rules: Vec<Rule>,
    key: KeyConfig,
    precision: usize,
    rates: KeyRates,
    cache: DecisionCache<Decision>,
    /// When the current adjustment interval started; None until the first batch.
    interval_start: Option<Instant>,
    key_buf: String,
    scratch: String,
    metrics: HeadSamplerMetrics,
    processor_metrics: ProcessorMetrics,
}

impl HeadSampler {
    pub fn new(cfg: &HeadSamplerConfig, ctx: &ProcessorContext) -> Self {
        let workers = ctx.workers.max(1);
        let metrics = HeadSamplerMetrics::new(&ctx.registry, &ctx.id);
        HeadSampler {
            goal_per_second: cfg.traces_per_second / workers as f64,
            interval: cfg.adjustment_interval.get().max(Duration::from_millis(1)),
            keep_errors: cfg.keep_errors,
            rules: cfg.always_keep.iter().map(Rule::compile).collect(),
            key: cfg.key.clone(),
            precision: cfg.sampling_precision,
            rates: KeyRates::new(cfg.max_keys.div_ceil(workers), cfg.ema_weight),
            cache: DecisionCache::new(cfg.decision_cache_size.div_ceil(workers)),
            interval_start: None,
            key_buf: String::new(),
            scratch: String::new(),
            metrics,
            processor_metrics: ProcessorMetrics::new(&ctx.registry, &ctx.id, ctx.signal),
        }
    }

    /// The probability the next new trace of this key would get.
    pub fn key_probability(&self, key: &str) -> f64 {
        self.rates.probability(key)
    }

    /// Decisions held now, for tests of the bound.
    pub fn cached_decisions(&self) -> usize {
        self.cache.len()
    }

    fn adjust_if_due(&mut self, now: Instant) {
        let Some(start) = self.interval_start else {
            self.interval_start = Some(now);
            return;
        };
        let elapsed = now.saturating_duration_since(start);
        if elapsed < self.interval {
            return;
        }
        // The budget covers the time that actually passed, so a late tick
        // neither starves nor floods the keys.
        let forgotten = self.rates.adjust(self.goal_per_second * elapsed.as_secs_f64());
        self.metrics.keys.add(-(forgotten as i64));
        self.interval_start = Some(now);
    }

    fn decide(&mut self, resource: Option<&Resource>, span: &Span) -> Decision {
        let resource_attrs: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
        let is_error = span.status.as_ref().is_some_and(|s| s.code == StatusCode::Error as i32);
        if (self.keep_errors && is_error)
            || self
                .rules
                .iter()
                .any(|r| r.matches(&span.attributes, &mut self.scratch) || r.matches(resource_attrs, &mut self.scratch))
        {
            self.metrics.sampled_always_keep.inc();
            return Decision { keep: true, threshold: Threshold::ALWAYS_SAMPLE };
        }

        self.build_key(resource_attrs, span);
        let counted = self.rates.count(&self.key_buf);
        if counted.added {
            self.metrics.keys.add(1);
        }
        if counted.overflowed {
            self.metrics.key_overflow.inc();
        }
        let threshold =
            Threshold::from_probability(counted.probability, self.precision).unwrap_or(Threshold::ALWAYS_SAMPLE);
        let keep = randomness(span).is_none_or(|r| threshold.should_sample(r));
        if keep {
            self.metrics.sampled_probabilistic.inc();
        } else {
            self.metrics.dropped_probabilistic.inc();
        }
        Decision { keep, threshold }
    }

    fn build_key(&mut self, resource_attrs: &[KeyValue], span: &Span) {
        let buf = &mut self.key_buf;
        buf.clear();
        let mut push = |attrs: &[KeyValue], name: &str, buf: &mut String| {
            if let Some(v) = attrs.iter().find(|kv| kv.key == name).and_then(|kv| kv.value.as_ref()) {
                if let Some(s) = value_str(v, &mut self.scratch) {
                    buf.push_str(s);
                }
            }
            buf.push(KEY_SEPARATOR);
        };
        for name in &self.key.resource_attributes {
            push(resource_attrs, name, buf);
        }
        if self.key.span_name {
            buf.push_str(&span.name);
            buf.push(KEY_SEPARATOR);
        }
        for name in &self.key.span_attributes {
            push(&span.attributes, name, buf);
        }
    }

    /// Applies the trace's decision to one span; false drops it.
    fn sample_span(&mut self, resource: Option<&Resource>, span: &mut Span) -> bool {
        let Ok(trace): Result<[u8; 16], _> = span.trace_id.as_slice().try_into() else {
            self.metrics.sampled_invalid_trace_id.inc();
            return true;
        };
        let decision = match self.cache.get(&trace) {
            Some(d) => {
                self.metrics.cache_hits.inc();
                d
            }
            None => {
                self.metrics.cache_misses.inc();
                let d = self.decide(resource, span);
                if self.cache.insert(trace, d) == Inserted::Evicted {
                    self.metrics.cache_evictions.inc();
                }
                d
            }
        };
        if decision.keep {
            span.trace_state = with_threshold(&span.trace_state, decision.threshold);
        }
        decision.keep
    }
}

/// The randomness of a span: `rv` when its tracestate carries one, else its
/// trace ID's. A malformed tracestate falls back to the trace ID.
fn randomness(span: &Span) -> Option<Randomness> {
    if !span.trace_state.is_empty() {
        if let Ok(ot) = W3cTraceState::parse(&span.trace_state).and_then(|ts| ts.ot()) {
            return tracestate::randomness_of(&span.trace_id, &ot);
        }
    }
    Randomness::from_trace_id(&span.trace_id)
}

/// The tracestate with `th` recorded; a malformed one is replaced, as W3C
/// asks of a tracestate that cannot be parsed.
fn with_threshold(trace_state: &str, th: Threshold) -> String {
    if !trace_state.is_empty() {
        if let Ok(s) = tracestate::record_threshold(trace_state, th) {
            return s;
        }
    }
    format!("ot=th:{}", th.to_hex())
}

impl Processor for HeadSampler {
    fn process(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        self.adjust_if_due(now);
        let Batch::Traces(mut req) = batch else {
            // A traces-only processor; another signal is passed on untouched.
            out.push(batch);
            return;
        };
        let mut dropped = 0u64;
        for rs in &mut req.resource_spans {
            let resource = rs.resource.as_ref();
            for ss in &mut rs.scope_spans {
                ss.spans.retain_mut(|span| {
                    let keep = self.sample_span(resource, span);
                    dropped += u64::from(!keep);
                    keep
                });
            }
        }
        crate::data::prune_empty_traces(&mut req);
        self.processor_metrics.dropped.add(dropped);
        if !req.resource_spans.is_empty() {
            out.push(Batch::Traces(req));
        }
    }

    fn tick(&mut self, now: Instant, _out: &mut Vec<Batch>) {
        self.adjust_if_due(now);
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.interval_start.map(|s| s + self.interval)
    }
}

impl Drop for HeadSampler {
    /// The keys gauge is shared by every worker's instance; an instance that
    /// goes away (reload, shutdown) takes its keys with it.
    fn drop(&mut self) {
        self.metrics.keys.add(-(self.rates.len() as i64));
    }
}

#[cfg(test)]
mod tests;
