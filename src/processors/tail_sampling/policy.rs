//! Sampling policies: compiled from config once, evaluated on a whole
//! buffered trace, and combined into one decision the way the Collector's
//! `tailsamplingprocessor` does.
//!
//! How decisions combine (Collector `processor.go` `makeDecision`, and the
//! README's policy descriptions):
//! - every top-level policy is evaluated, in order (unless
//!   `sample_on_first_match`, which stops at the first `Sampled`), so stateful
//!   policies such as `rate_limiting` see every trace, as in the Collector;
//! - a `drop` policy that matches wins over everything: the trace is dropped;
//! - else an inverted match (`InvertNotSampled`) vetoes: the trace is dropped;
//! - else any `Sampled` keeps it, attributed to the FIRST policy that sampled;
//! - else an `InvertSampled` keeps it, but only when no policy said `NotSampled`;
//! - else it is dropped.
//!
//! What a kept trace records as its probability (`ot=th`): the trace is kept
//! when any sampling policy keeps it, so its inclusion probability is the
//! largest of theirs. A deterministic match (status, latency, attributes...)
//! gives 1 (`th:0`); a trace kept only by a rate limit (`rate_limiting`,
//! `composite`) or by `probabilistic` (which, as the Collector, hashes the
//! salt and trace ID with FNV-64a rather than reading OpenTelemetry
//! randomness, so a `th` would contradict the trace's own randomness) has no
//! known probability, so `th` is removed, as the OpenTelemetry sampling spec
//! asks of non-consistent samplers (its adjusted count is unknown rather
//! than wrong).
//!
//! Rate limits are the Collector's: `rate_limiting` is a token bucket
//! (`golang.org/x/time/rate` semantics, burst `burst_capacity`, default twice
//! the rate) and `composite` counts spans per sub-policy per second; both are
//! shared by every worker instance of the processor ([`SharedState`]).

use super::config::{PolicyConfig, TailSamplingConfig};
use crate::processors::sampling::Threshold;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use regex::Regex;
use std::any::Any;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The probability a keep decision was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prob {
    Known(Threshold),
    /// Rate-limited: the adjusted count cannot be known.
    Unknown,
}

impl Prob {
    const ONE: Prob = Prob::Known(Threshold::ALWAYS_SAMPLE);

    /// The threshold as saved with a kept decision; `None`: unknown.
    pub fn threshold_value(self) -> Option<u64> {
        match self {
            Prob::Known(t) => Some(t.value()),
            Prob::Unknown => None,
        }
    }

    /// The probability of "kept by either": the larger probability (smaller
    /// threshold); a known probability 1 beats an unknown one.
    fn either(self, other: Prob) -> Prob {
        match (self, other) {
            (Prob::Known(a), Prob::Known(b)) => Prob::Known(a.min(b)),
            (Prob::Known(t), Prob::Unknown) | (Prob::Unknown, Prob::Known(t)) if t == Threshold::ALWAYS_SAMPLE => {
                Prob::ONE
            }
            _ => Prob::Unknown,
        }
    }

    /// The probability of "kept by both" when independent: unknown wins,
    /// else the larger threshold (a conservative lower bound would need the
    /// product; sub-policies of `and` are usually one probabilistic plus
    /// deterministic filters, where this is exact).
    fn both(self, other: Prob) -> Prob {
        match (self, other) {
            (Prob::Known(a), Prob::Known(b)) => Prob::Known(a.max(b)),
            _ => Prob::Unknown,
        }
    }
}

/// One policy's verdict, the Collector's `sampling.Decision`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Sampled(Prob),
    NotSampled,
    /// An inverted match that did not match: keep unless someone objects.
    InvertSampled,
    /// An inverted match that matched: a veto.
    InvertNotSampled,
    /// A `drop` policy matched: wins over everything.
    Dropped,
}

impl Decision {
    pub fn label(self) -> &'static str {
        match self {
            Decision::Sampled(_) | Decision::InvertSampled => "true",
            _ => "false",
        }
    }
}

/// What the trace gets: kept by policy `policy` with probability `prob`, or
/// not kept (`policy` is the vetoing policy, if one vetoed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    pub keep: bool,
    pub policy: Option<usize>,
    pub prob: Prob,
}

/// One bit per attribute or `trace_state` leaf policy (numbered by
/// [`compile_all`]): whether any span (or its resource) of the trace matched.
/// The first 64 live inline; more (rare) spill to the heap.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Flags {
    lo: u64,
    hi: Vec<u64>,
}

impl Flags {
    pub fn get(&self, i: usize) -> bool {
        match i.checked_sub(64) {
            None => self.lo & (1 << i) != 0,
            Some(j) => self.hi.get(j / 64).is_some_and(|w| w & (1 << (j % 64)) != 0),
        }
    }

    pub fn set(&mut self, i: usize) {
        match i.checked_sub(64) {
            None => self.lo |= 1 << i,
            Some(j) => {
                if self.hi.len() <= j / 64 {
                    self.hi.resize(j / 64 + 1, 0);
                }
                self.hi[j / 64] |= 1 << (j % 64);
            }
        }
    }

    pub fn union(&mut self, other: &Flags) {
        self.lo |= other.lo;
        if self.hi.len() < other.hi.len() {
            self.hi.resize(other.hi.len(), 0);
        }
        for (a, b) in self.hi.iter_mut().zip(&other.hi) {
            *a |= b;
        }
    }

    /// Heap bytes held (0 unless more than 64 flag policies).
    pub fn heap_bytes(&self) -> usize {
        self.hi.capacity() * std::mem::size_of::<u64>()
    }
}

/// Everything the policies need to decide on a trace, gathered span by span
/// as the trace arrives, so its spans can be buffered encoded and never
/// looked at again until the trace is kept.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Facts {
    /// Spans seen.
    pub spans: u64,
    /// Earliest start and latest end over the spans so far (0: none yet).
    start: u64,
    end: u64,
    /// Bit `c` set when some span had status code `c` (0 UNSET, 1 OK, 2 ERROR).
    status: u8,
    /// Some span had the W3C "sampled" trace flag (bit 0 of `flags`).
    sampled_flag: bool,
    /// The trace's size as the Collector's `bytes_limiting` estimates it
    /// (counted only when such a policy is configured).
    pub size: u64,
    /// Per attribute/`trace_state` leaf: whether it matched.
    pub flags: Flags,
}

/// An attribute value as the policies read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AttrValue<'a> {
    Str(&'a str),
    Int(i64),
    Double(f64),
    Bool(bool),
    /// Bytes, arrays, maps or no value: no attribute policy matches them.
    Other,
}

/// A span's or a resource's attributes, decoded or still on the wire.
pub trait Attrs {
    /// Whether some attribute named `key` has a value for which `pred` holds.
    fn any_with_key(&self, key: &str, pred: &mut dyn FnMut(AttrValue<'_>) -> bool) -> bool;
}

impl Attrs for Vec<KeyValue> {
    fn any_with_key(&self, key: &str, pred: &mut dyn FnMut(AttrValue<'_>) -> bool) -> bool {
        self.iter().any(|kv| kv.key == key && pred(value_of(kv)))
    }
}

fn value_of(kv: &KeyValue) -> AttrValue<'_> {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => AttrValue::Str(s),
        Some(any_value::Value::IntValue(i)) => AttrValue::Int(*i),
        Some(any_value::Value::DoubleValue(d)) => AttrValue::Double(*d),
        Some(any_value::Value::BoolValue(b)) => AttrValue::Bool(*b),
        _ => AttrValue::Other,
    }
}

/// What one span tells the policies, from a decoded `Span` or its bytes.
pub struct SpanFacts<'a> {
    pub start: u64,
    pub end: u64,
    pub status_code: i32,
    /// The span's `flags` (W3C trace flags in the low byte).
    pub flags: u32,
    pub trace_state: &'a str,
    pub attributes: &'a dyn Attrs,
}

impl<'a> SpanFacts<'a> {
    pub fn of(span: &'a Span) -> SpanFacts<'a> {
        SpanFacts {
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
            status_code: span.status.as_ref().map_or(0, |st| st.code),
            flags: span.flags,
            trace_state: &span.trace_state,
            attributes: &span.attributes,
        }
    }
}

impl Facts {
    /// Records one span of trace `trace_id`. The resource's matches are
    /// recorded separately ([`Facts::flags`] `union` the resource's flags).
    pub fn observe(&mut self, trace_id: &[u8; 16], span: &Span, policies: &[Policy]) {
        self.observe_facts(trace_id, &SpanFacts::of(span), policies);
    }

    /// [`Facts::observe`] for a span read however it came.
    pub fn observe_facts(&mut self, _trace_id: &[u8; 16], span: &SpanFacts, policies: &[Policy]) {
        // As the Collector's latency policy: a 0 minimum or maximum counts
        // as "none yet".
        if self.start == 0 || span.start < self.start {
            self.start = span.start;
        }
        if self.end == 0 || span.end > self.end {
            self.end = span.end;
        }
        self.spans += 1;
        if let Ok(c @ 0..=2) = u8::try_from(span.status_code) {
            self.status |= 1 << c;
        }
        self.sampled_flag |= span.flags & 0x01 != 0;
        let running_ms = duration_ms(self.start, self.end);
        for p in policies {
            p.observe_span(span, running_ms, &mut self.flags);
        }
    }

    /// Heap bytes held beyond the struct.
    pub fn heap_bytes(&self) -> usize {
        self.flags.heap_bytes()
    }
}

/// Whole milliseconds from `start` to `end` (Unix nanoseconds), as Go's
/// `end.AsTime().Sub(start.AsTime()).Milliseconds()`: a signed duration,
/// saturated to 64 bits, truncated toward zero.
fn duration_ms(start: u64, end: u64) -> i64 {
    let ns = (i128::from(end as i64) - i128::from(start as i64)).clamp(i128::from(i64::MIN), i128::from(i64::MAX));
    (ns / 1_000_000) as i64
}

/// A value's size as the Collector's `bytes_limiting` estimates it: string
/// and bytes their length, int and double 8, bool 1, maps their keys and
/// values, arrays their values, an empty value 0.
pub fn value_size(v: Option<&AnyValue>) -> u64 {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.len() as u64,
        Some(any_value::Value::IntValue(_) | any_value::Value::DoubleValue(_)) => 8,
        Some(any_value::Value::BoolValue(_)) => 1,
        Some(any_value::Value::BytesValue(b)) => b.len() as u64,
        Some(any_value::Value::KvlistValue(m)) => attributes_size(&m.values),
        Some(any_value::Value::ArrayValue(a)) => a.values.iter().map(|v| value_size(Some(v))).sum(),
        // Empty, or a profiles-only string-table index the Collector's pdata
        // does not have.
        _ => 0,
    }
}

/// Keys and values of `attrs`, as the Collector's `bytes_limiting` counts them.
pub fn attributes_size(attrs: &[KeyValue]) -> u64 {
    attrs.iter().map(|kv| kv.key.len() as u64 + value_size(kv.value.as_ref())).sum()
}

/// A span's size as the Collector's `calculateSpanSize`: 68 bytes of fixed
/// fields, name, tracestate, status message and attributes; 12 bytes, name
/// and attributes per event; 28 bytes, tracestate and attributes per link.
pub fn span_size(span: &Span) -> u64 {
    let mut size = 68 + span.name.len() + span.trace_state.len();
    size += span.status.as_ref().map_or(0, |s| s.message.len());
    let mut size = size as u64 + attributes_size(&span.attributes);
    for e in &span.events {
        size += 12 + e.name.len() as u64 + attributes_size(&e.attributes);
    }
    for l in &span.links {
        size += 28 + l.trace_state.len() as u64 + attributes_size(&l.attributes);
    }
    size
}

/// A resource's size as the Collector's `calculateResourceSize`.
pub fn resource_size(resource: Option<&Resource>) -> u64 {
    4 + resource.map_or(0, |r| attributes_size(&r.attributes))
}

/// A scope's size as the Collector's `calculateScopeSize`.
pub fn scope_size(scope: Option<&InstrumentationScope>) -> u64 {
    4 + scope.map_or(0, |s| (s.name.len() + s.version.len()) as u64 + attributes_size(&s.attributes))
}

/// The value of member `key` of a tracestate as the Collector's
/// `trace_state` policy reads it, with the OpenTelemetry Go SDK's
/// `trace.ParseTraceState`: members split at `,`, only exactly empty ones
/// skipped, spaces trimmed left of a key and right of a value, W3C keys and
/// values, no duplicate key, at most 32 members; any fault and nothing is
/// read. (Not the sampler's parser: the SDK does not look inside `ot`.)
pub fn sdk_tracestate_get<'a>(raw: &'a str, key: &str) -> Option<&'a str> {
    use crate::processors::sampling::tracestate::{valid_w3c_key, valid_w3c_value};
    let mut found = None;
    let mut seen: Vec<&str> = Vec::new();
    for member in raw.split(',').filter(|m| !m.is_empty()) {
        let (k, v) = member.split_once('=')?;
        let k = k.trim_start_matches([' ', '\t']);
        let v = v.trim_end_matches([' ', '\t']);
        let key_ok = match k.split_once('@') {
            Some((tenant, system)) => tenant.len() <= 241 && system.len() <= 14,
            None => k.len() <= 256,
        };
        if !key_ok || !valid_w3c_key(k) || !valid_w3c_value(v) || seen.contains(&k) || seen.len() == 32 {
            return None;
        }
        seen.push(k);
        if k == key {
            found = Some(v);
        }
    }
    found
}

/// The attribute keys `policies` (and their sub-policies) read, each once:
/// a span's other attributes cannot change a decision.
pub fn attribute_keys(policies: &[Policy]) -> Vec<Vec<u8>> {
    fn walk(p: &Policy, keys: &mut Vec<Vec<u8>>) {
        match &p.kind {
            Kind::StringAttribute { key, .. }
            | Kind::NumericAttribute { key, .. }
            | Kind::BooleanAttribute { key, .. }
                if !keys.iter().any(|k| k == key.as_bytes()) =>
            {
                keys.push(key.as_bytes().to_vec());
            }
            Kind::And(subs) | Kind::Drop(subs) => subs.iter().for_each(|s| walk(s, keys)),
            Kind::Composite { subs, .. } => subs.iter().for_each(|s| walk(&s.policy, keys)),
            Kind::Not(sub) => walk(sub, keys),
            _ => {}
        }
    }
    let mut keys = Vec::new();
    policies.iter().for_each(|p| walk(p, &mut keys));
    keys
}

/// The flags that resource attributes `attrs` set for `policies`; OR-ed into
/// a trace's flags once per resource group its spans came with.
pub fn resource_flags(policies: &[Policy], attrs: &dyn Attrs) -> Flags {
    let mut flags = Flags::default();
    for p in policies {
        p.observe_attributes(attrs, &mut flags);
    }
    flags
}

/// The conditions of one `ottl_condition` policy.
#[derive(Debug)]
pub struct OttlPolicy {
    pub span: Vec<crate::ottl::Condition>,
    pub spanevent: Vec<crate::ottl::Condition>,
    pub error_mode: crate::ottl::ErrorMode,
}

impl OttlPolicy {
    /// Whether a condition holds for the span (in `ctx`) or one of its
    /// events; failures are counted in `errors`.
    fn matches(&self, ctx: &mut crate::ottl::EvalCtx, errors: &mut u64) -> bool {
        use crate::ottl::ErrorMode;
        for c in &self.span {
            match c.eval(ctx) {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    *errors += 1;
                    if self.error_mode == ErrorMode::Ignore {
                        tracing::debug!(error = %e, "ottl_condition failed on a span");
                    }
                    if self.error_mode == ErrorMode::Propagate {
                        return false;
                    }
                }
            }
        }
        if self.spanevent.is_empty() {
            return false;
        }
        let Some(span) = ctx.span.as_deref_mut() else { return false };
        let mut events = std::mem::take(&mut span.events);
        let mut found = false;
        'events: for e in &mut events {
            let ev = crate::ottl::EvalCtx {
                resource: ctx.resource.as_deref_mut(),
                scope: ctx.scope.as_deref_mut(),
                span: ctx.span.as_deref_mut(),
                event: Some(e),
                ..Default::default()
            };
            for c in &self.spanevent {
                match c.eval(&ev) {
                    Ok(true) => {
                        found = true;
                        break 'events;
                    }
                    Ok(false) => {}
                    Err(_) => {
                        *errors += 1;
                        if self.error_mode == ErrorMode::Propagate {
                            break 'events;
                        }
                    }
                }
            }
        }
        if let Some(span) = ctx.span.as_deref_mut() {
            span.events = events;
        }
        found
    }
}

/// Whether any policy (or sub-policy) is an `ottl_condition`: spans must
/// then be decoded to be observed.
pub fn has_ottl(policies: &[Policy]) -> bool {
    fn walk(p: &Policy) -> bool {
        match &p.kind {
            Kind::Ottl { .. } => true,
            Kind::And(subs) | Kind::Drop(subs) => subs.iter().any(walk),
            Kind::Composite { subs, .. } => subs.iter().any(|s| walk(&s.policy)),
            Kind::Not(sub) => walk(sub),
            _ => false,
        }
    }
    policies.iter().any(walk)
}

/// Sets the flags of the `ottl_condition` policies one span (with its
/// resource and scope in `ctx`) meets; returns the conditions that failed.
pub fn observe_ottl(policies: &[Policy], ctx: &mut crate::ottl::EvalCtx, flags: &mut Flags) -> u64 {
    fn walk(p: &Policy, ctx: &mut crate::ottl::EvalCtx, flags: &mut Flags, errors: &mut u64) {
        match &p.kind {
            Kind::Ottl { conditions, flag } if !flags.get(*flag) && conditions.matches(ctx, errors) => flags.set(*flag),
            Kind::And(subs) | Kind::Drop(subs) => subs.iter().for_each(|s| walk(s, ctx, flags, errors)),
            Kind::Composite { subs, .. } => subs.iter().for_each(|s| walk(&s.policy, ctx, flags, errors)),
            Kind::Not(sub) => walk(sub, ctx, flags, errors),
            _ => {}
        }
    }
    let mut errors = 0;
    policies.iter().for_each(|p| walk(p, ctx, flags, &mut errors));
    errors
}

/// A trace as policies see it.
pub struct TraceView<'a> {
    pub trace_id: &'a [u8; 16],
    pub facts: &'a Facts,
    /// When the decision is made: the clock of rate limits.
    pub now: Instant,
}

pub struct Policy {
    pub name: String,
    kind: Kind,
}

#[derive(Clone)]
enum Matcher {
    /// A few values: compared one by one (lengths first), cheaper than hashing.
    ExactFew(Vec<String>),
    Exact(HashSet<String>),
    Regex(Vec<Regex>),
}

impl Matcher {
    /// Values up to which a list beats a hash set.
    const FEW: usize = 8;

    fn exact(values: &[String]) -> Matcher {
        if values.len() <= Self::FEW {
            Matcher::ExactFew(values.to_vec())
        } else {
            Matcher::Exact(values.iter().cloned().collect())
        }
    }

    fn matches(&self, s: &str) -> bool {
        match self {
            Matcher::ExactFew(values) => values.iter().any(|v| v == s),
            Matcher::Exact(set) => set.contains(s),
            Matcher::Regex(res) => res.iter().any(|r| r.is_match(s)),
        }
    }
}

/// A token bucket as Go's `golang.org/x/time/rate.Limiter` with `AllowN`,
/// which the Collector's `rate_limiting` uses: it starts full, refills
/// continuously at `rate` tokens per second up to `burst`, and a request for
/// `n` tokens passes when `n <= burst` and the bucket, refilled up to now,
/// holds `n` (a deficit too small to wait a whole nanosecond for counts as
/// none, as in Go). A refused request takes nothing.
#[derive(Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: u64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    pub fn new(rate: u64, burst: u64) -> TokenBucket {
        TokenBucket { rate: rate as f64, burst, tokens: 0.0, last: None }
    }

    /// A full bucket of the same rate and burst.
    fn fresh(&self) -> TokenBucket {
        TokenBucket { rate: self.rate, burst: self.burst, tokens: 0.0, last: None }
    }

    pub fn allow_n(&mut self, now: Instant, n: u64) -> bool {
        // Refill: a bucket never used is full (Go's zero `last` is long ago).
        let tokens = match self.last {
            None => self.burst as f64,
            Some(last) => {
                let elapsed = now.saturating_duration_since(last);
                // Go's Duration.Seconds(): whole seconds plus nanoseconds / 1e9.
                let secs = elapsed.as_secs() as f64 + f64::from(elapsed.subsec_nanos()) / 1e9;
                (self.tokens + secs * self.rate).min(self.burst as f64)
            }
        };
        let left = tokens - n as f64;
        let wait_ns = if left < 0.0 { (-left / self.rate) * 1e9 } else { 0.0 };
        // Go truncates the wait to whole nanoseconds (an infinite or huge wait
        // never passes).
        let waits = wait_ns >= 1.0;
        if n > self.burst || waits {
            return false;
        }
        self.tokens = left;
        self.last = Some(now);
        true
    }
}

/// State of a `composite` policy shared by the processor's workers: spans
/// kept per sub-policy in the current one-second window.
#[derive(Debug, Default)]
pub struct CompositeState {
    epoch: Option<Instant>,
    second: u64,
    sampled: Vec<u64>,
}

struct CompositeSub {
    policy: Policy,
    /// Spans per second allocated to this sub-policy.
    allocated: u64,
}

/// Stateful policy parts (rate limits, composite budgets) shared by every
/// worker instance of one processor: the Collector has one instance of each
/// policy per processor, so its limits are per processor, not per worker.
/// Each instance compiles the same config in the same order, so the n-th
/// stateful part of every instance is the same object.
#[derive(Default)]
pub struct SharedState {
    slots: Mutex<Vec<Arc<dyn Any + Send + Sync>>>,
}

impl SharedState {
    fn slot<T: Any + Send + Sync>(&self, i: usize, make: impl FnOnce() -> T) -> Arc<T> {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(existing) = slots.get(i).and_then(|a| Arc::clone(a).downcast::<T>().ok()) {
            return existing;
        }
        let made = Arc::new(make());
        if i < slots.len() {
            slots[i] = made.clone();
        } else {
            slots.push(made.clone());
        }
        made
    }
}

/// Hands out the shared parts of one compile in order.
struct Shared<'a> {
    state: &'a SharedState,
    next: usize,
}

impl Shared<'_> {
    fn take<T: Any + Send + Sync>(&mut self, make: impl FnOnce() -> T) -> Arc<T> {
        let i = self.next;
        self.next += 1;
        self.state.slot(i, make)
    }
}

enum Kind {
    AlwaysSample,
    /// Whole milliseconds; `flag` is set when, after some span, the spans
    /// seen so far lasted within the bounds.
    Latency {
        lower_ms: i64,
        upper_ms: i64,
        flag: usize,
    },
    StatusCode {
        codes: [bool; 3],
    },
    StringAttribute {
        key: String,
        matcher: Matcher,
        invert: bool,
        flag: usize,
    },
    NumericAttribute {
        key: String,
        min: Option<f64>,
        max: Option<f64>,
        invert: bool,
        flag: usize,
    },
    BooleanAttribute {
        key: String,
        value: bool,
        invert: bool,
        flag: usize,
    },
    /// OTTL conditions, decided span by span as the spans come.
    Ottl {
        conditions: Arc<OttlPolicy>,
        flag: usize,
    },
    /// FNV-64a of salt and trace ID at most `threshold`.
    Probabilistic {
        threshold: u64,
        salt: Vec<u8>,
    },
    RateLimiting(Arc<Mutex<TokenBucket>>),
    SpanCount {
        min: u64,
        max: u64,
    },
    TraceState {
        key: String,
        values: HashSet<String>,
        flag: usize,
    },
    And(Vec<Policy>),
    Drop(Vec<Policy>),
    Not(Box<Policy>),
    /// Some span has the "sampled" trace flag.
    TraceFlags,
    /// A token bucket of trace bytes (the Collector's size estimate).
    BytesLimiting(Arc<Mutex<TokenBucket>>),
    Composite {
        max_total: u64,
        state: Arc<Mutex<CompositeState>>,
        subs: Vec<CompositeSub>,
    },
}

/// A config problem at `path` (segments below the processor's path).
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyError {
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

/// The Collector's salt when `hash_salt` is empty.
pub const DEFAULT_HASH_SALT: &str = "default-hash-seed";

/// FNV-64a over `salt` then `trace_id`: the Collector's `hashTraceID`.
pub fn fnv1a64(salt: &[u8], trace_id: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in salt.iter().chain(trace_id) {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// `MaxUint64 × ratio` as the Collector's `calculateThreshold` computes it:
/// a `big.Float` of 64-bit mantissa (MaxUint64 exactly) multiplied by the
/// float64 `ratio`, the product rounded to 64 significant bits (to nearest,
/// ties to even), then truncated to an integer (0 below 0, MaxUint64 above).
pub fn hash_threshold(ratio: f64) -> u64 {
    if ratio.is_nan() || ratio <= 0.0 {
        return 0;
    }
    if ratio.is_infinite() {
        return u64::MAX;
    }
    // ratio = m * 2^e exactly.
    let bits = ratio.to_bits();
    let biased = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1 << 52) - 1);
    let (m, e) = if biased == 0 { (frac, -1074) } else { (frac | (1 << 52), biased - 1075) };
    // Exact product P * 2^e with P < 2^117, rounded to 64 significant bits.
    let product = u128::from(u64::MAX) * u128::from(m);
    let bit_len = 128 - product.leading_zeros() as i32;
    let (mut q, mut shift) = (product, 0i32);
    if bit_len > 64 {
        shift = bit_len - 64;
        q = product >> shift;
        let rem = product & ((1u128 << shift) - 1);
        let half = 1u128 << (shift - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q += 1;
        }
    }
    // The value is q * 2^(shift + e); keep its integer part.
    let exp = shift + e;
    if exp >= 0 {
        if exp >= 64 || q.leading_zeros() < exp as u32 + 64 {
            return u64::MAX;
        }
        u64::try_from(q << exp).unwrap_or(u64::MAX)
    } else if exp <= -128 {
        0
    } else {
        u64::try_from(q >> (-exp)).unwrap_or(u64::MAX)
    }
}

const BASIC_TYPES: &[&str] = &[
    "always_sample",
    "latency",
    "status_code",
    "string_attribute",
    "numeric_attribute",
    "boolean_attribute",
    "probabilistic",
    "rate_limiting",
    "span_count",
    "trace_state",
    "trace_flags",
    "bytes_limiting",
    "ottl_condition",
];

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Top,
    CompositeSub,
    /// Inside `and` or `drop`.
    Leaf,
}

impl Level {
    fn allowed(self) -> Vec<&'static str> {
        let mut v = BASIC_TYPES.to_vec();
        match self {
            Level::Top => v.extend(["and", "composite", "drop", "not"]),
            Level::CompositeSub => v.push("and"),
            Level::Leaf => {}
        }
        v
    }
}

/// Compiles every policy of a config, once, when the config is loaded: the
/// template each worker instance is made from with [`instantiate`]. Errors
/// name the path.
pub fn compile_all(cfg: &TailSamplingConfig) -> (Vec<Policy>, Vec<PolicyError>) {
    let shared = SharedState::default();
    let mut shared = Shared { state: &shared, next: 0 };
    let mut errors = Vec::new();
    let mut policies = Vec::new();
    if cfg.policies.is_empty() {
        errors.push(PolicyError {
            path: vec!["policies".into()],
            message: "at least one policy is required".into(),
            hint: Some("e.g. `- {name: errors, type: status_code, status_code: {status_codes: [ERROR]}}`".into()),
        });
    }
    let path = vec!["policies".to_string()];
    check_names(&cfg.policies, &path, &mut errors);
    for (i, p) in cfg.policies.iter().enumerate() {
        if let Some(p) = compile(p, &seg(&path, i), Level::Top, &mut shared, &mut errors) {
            policies.push(p);
        }
    }
    let mut next = 0;
    for p in &mut policies {
        p.number_flags(&mut next);
    }
    (policies, errors)
}

/// The policies of one worker instance, made from the compiled `template`:
/// everything but the stateful parts (rate limits, composite budgets) is
/// shared with the template; those come from `shared`, so every instance
/// made with the same `shared` limits the processor as a whole.
pub fn instantiate(template: &[Policy], shared: &SharedState) -> Vec<Policy> {
    let mut shared = Shared { state: shared, next: 0 };
    template.iter().map(|p| p.instance(&mut shared)).collect()
}

fn seg(path: &[String], s: impl ToString) -> Vec<String> {
    let mut p = path.to_vec();
    p.push(s.to_string());
    p
}

fn err(errors: &mut Vec<PolicyError>, path: Vec<String>, message: impl Into<String>, hint: Option<&str>) {
    errors.push(PolicyError { path, message: message.into(), hint: hint.map(str::to_string) });
}

fn check_names(list: &[PolicyConfig], path: &[String], errors: &mut Vec<PolicyError>) {
    let mut seen = HashSet::new();
    for (i, p) in list.iter().enumerate() {
        if p.name.trim().is_empty() {
            err(errors, seg(&seg(path, i), "name"), "policy name must not be empty", Some("it labels metrics"));
        } else if !seen.insert(p.name.as_str()) {
            err(errors, seg(&seg(path, i), "name"), format!("duplicate policy name \"{}\"", p.name), None);
        }
    }
}

fn compile(
    cfg: &PolicyConfig,
    path: &[String],
    level: Level,
    shared: &mut Shared,
    errors: &mut Vec<PolicyError>,
) -> Option<Policy> {
    let allowed = level.allowed();
    let ty = cfg.policy_type.as_str();
    if !allowed.contains(&ty) {
        let list = allowed.join(", ");
        let message = if ty.is_empty() {
            "policy type is missing".to_string()
        } else if BASIC_TYPES.contains(&ty) || ["and", "composite", "drop", "not"].contains(&ty) {
            format!("policy type \"{ty}\" cannot be nested here")
        } else {
            format!("unknown policy type \"{ty}\"")
        };
        let hint = match crate::config::suggest::did_you_mean(ty, allowed.iter().copied()) {
            Some(h) => format!("{h} (allowed here: {list})"),
            None => format!("allowed here: {list}"),
        };
        err(errors, seg(path, "type"), message, Some(&hint));
        return None;
    }
    let before = errors.len();
    // The block named by `type`; missing blocks are errors except for
    // always_sample, which has none.
    macro_rules! block {
        ($field:ident) => {
            match &cfg.$field {
                Some(b) => b,
                None => {
                    err(
                        errors,
                        seg(path, stringify!($field)),
                        format!("policy of type {ty} needs a `{}:` block", stringify!($field)),
                        None,
                    );
                    return None;
                }
            }
        };
    }
    let kind = match ty {
        "always_sample" => Kind::AlwaysSample,
        "trace_flags" => Kind::TraceFlags,
        "bytes_limiting" => {
            let b = block!(bytes_limiting);
            if b.bytes_per_second == 0 {
                err(
                    errors,
                    seg(&seg(path, "bytes_limiting"), "bytes_per_second"),
                    "bytes_per_second must be above 0",
                    None,
                );
            }
            // As the Collector: 0 means twice the rate.
            let burst = if b.burst_capacity > 0 { b.burst_capacity } else { b.bytes_per_second.saturating_mul(2) };
            let rate = b.bytes_per_second;
            Kind::BytesLimiting(shared.take(|| Mutex::new(TokenBucket::new(rate, burst))))
        }
        "not" => {
            let b = block!(not);
            let p = seg(&seg(path, "not"), "not_sub_policy");
            let Some(sub) = b.not_sub_policy.as_deref() else {
                err(
                    errors,
                    p,
                    "a `not_sub_policy:` is required",
                    Some("one policy, e.g. {name: ok, type: status_code, ...}"),
                );
                return None;
            };
            Kind::Not(Box::new(compile(sub, &p, Level::Leaf, shared, errors)?))
        }
        "latency" => {
            let b = block!(latency);
            if b.upper_threshold_ms != 0 && b.upper_threshold_ms < b.threshold_ms {
                err(
                    errors,
                    seg(&seg(path, "latency"), "upper_threshold_ms"),
                    format!(
                        "upper_threshold_ms ({}) must be 0 or at least threshold_ms ({})",
                        b.upper_threshold_ms, b.threshold_ms
                    ),
                    None,
                );
            }
            Kind::Latency {
                lower_ms: i64::try_from(b.threshold_ms).unwrap_or(i64::MAX),
                upper_ms: i64::try_from(b.upper_threshold_ms).unwrap_or(i64::MAX),
                flag: 0,
            }
        }
        "status_code" => {
            let b = block!(status_code);
            let mut codes = [false; 3];
            if b.status_codes.is_empty() {
                err(errors, seg(&seg(path, "status_code"), "status_codes"), "status_codes must not be empty", None);
            }
            for (i, c) in b.status_codes.iter().enumerate() {
                match c.as_str() {
                    "UNSET" => codes[0] = true,
                    "OK" => codes[1] = true,
                    "ERROR" => codes[2] = true,
                    _ => err(
                        errors,
                        seg(&seg(&seg(path, "status_code"), "status_codes"), i),
                        format!("unknown status code \"{c}\""),
                        Some("one of OK, ERROR, UNSET"),
                    ),
                }
            }
            Kind::StatusCode { codes }
        }
        "string_attribute" => {
            let b = block!(string_attribute);
            let p = seg(path, "string_attribute");
            if b.key.is_empty() {
                err(errors, seg(&p, "key"), "key must not be empty", None);
            }
            let matcher = if b.enabled_regex_matching {
                let mut res = Vec::new();
                for (i, v) in b.values.iter().enumerate() {
                    match Regex::new(v) {
                        Ok(r) => res.push(r),
                        Err(e) => err(
                            errors,
                            seg(&seg(&p, "values"), i),
                            format!("invalid regular expression \"{v}\": {}", first_line(&e.to_string())),
                            Some("regex crate syntax; escape special characters with \\\\"),
                        ),
                    }
                }
                Matcher::Regex(res)
            } else {
                Matcher::exact(&b.values)
            };
            Kind::StringAttribute { key: b.key.clone(), matcher, invert: b.invert_match, flag: 0 }
        }
        "numeric_attribute" => {
            let b = block!(numeric_attribute);
            let p = seg(path, "numeric_attribute");
            if b.key.is_empty() {
                err(errors, seg(&p, "key"), "key must not be empty", None);
            }
            if b.min_value.is_none() && b.max_value.is_none() {
                err(errors, p.clone(), "set min_value, max_value or both", None);
            }
            if let (Some(lo), Some(hi)) = (b.min_value, b.max_value) {
                if lo > hi || lo.is_nan() || hi.is_nan() {
                    err(
                        errors,
                        seg(&p, "max_value"),
                        format!("max_value ({hi}) must be at least min_value ({lo})"),
                        None,
                    );
                }
            }
            Kind::NumericAttribute {
                key: b.key.clone(),
                min: b.min_value,
                max: b.max_value,
                invert: b.invert_match,
                flag: 0,
            }
        }
        "ottl_condition" => {
            let b = block!(ottl_condition);
            let at = seg(path, "ottl_condition");
            if b.span.is_empty() && b.spanevent.is_empty() {
                err(
                    errors,
                    at.clone(),
                    "ottl_condition needs at least one span or spanevent condition",
                    Some("e.g. span: ['attributes[\"http.status_code\"] >= 500']"),
                );
            }
            let mut compile_list = |field: &str, list: &[String], ctx: crate::ottl::ContextKind| {
                let mut out = Vec::new();
                for (i, text) in list.iter().enumerate() {
                    match crate::ottl::Condition::compile_in(text, ctx, false, crate::ottl::Limits::default()) {
                        Ok(c) => out.push(c),
                        Err(e) => errors.push(PolicyError {
                            path: seg(&seg(&at, field), i),
                            message: e.to_string(),
                            hint: e.hint.clone(),
                        }),
                    }
                }
                out
            };
            let span = compile_list("span", &b.span, crate::ottl::ContextKind::Span);
            let spanevent = compile_list("spanevent", &b.spanevent, crate::ottl::ContextKind::SpanEvent);
            Kind::Ottl { conditions: Arc::new(OttlPolicy { span, spanevent, error_mode: b.error_mode }), flag: 0 }
        }
        "boolean_attribute" => {
            let b = block!(boolean_attribute);
            if b.key.is_empty() {
                err(errors, seg(&seg(path, "boolean_attribute"), "key"), "key must not be empty", None);
            }
            Kind::BooleanAttribute { key: b.key.clone(), value: b.value, invert: b.invert_match, flag: 0 }
        }
        "probabilistic" => {
            let b = block!(probabilistic);
            let pct = b.sampling_percentage;
            if !(0.0..=100.0).contains(&pct) {
                err(
                    errors,
                    seg(&seg(path, "probabilistic"), "sampling_percentage"),
                    format!("sampling_percentage {pct} must be between 0 and 100"),
                    Some("a percentage, e.g. 10 for one trace in ten"),
                );
            }
            let salt = if b.hash_salt.is_empty() { DEFAULT_HASH_SALT } else { b.hash_salt.as_str() };
            Kind::Probabilistic { threshold: hash_threshold(pct / 100.0), salt: salt.as_bytes().to_vec() }
        }
        "rate_limiting" => {
            let b = block!(rate_limiting);
            if b.spans_per_second == 0 {
                err(
                    errors,
                    seg(&seg(path, "rate_limiting"), "spans_per_second"),
                    "spans_per_second must be above 0",
                    None,
                );
            }
            // As the Collector: 0 means twice the rate.
            let burst = if b.burst_capacity > 0 { b.burst_capacity } else { b.spans_per_second.saturating_mul(2) };
            let rate = b.spans_per_second;
            Kind::RateLimiting(shared.take(|| Mutex::new(TokenBucket::new(rate, burst))))
        }
        "span_count" => {
            let b = block!(span_count);
            if b.max_spans != 0 && b.max_spans < b.min_spans {
                err(
                    errors,
                    seg(&seg(path, "span_count"), "max_spans"),
                    format!("max_spans ({}) must be 0 or at least min_spans ({})", b.max_spans, b.min_spans),
                    None,
                );
            }
            Kind::SpanCount { min: b.min_spans, max: b.max_spans }
        }
        "trace_state" => {
            let b = block!(trace_state);
            if b.key.is_empty() {
                err(errors, seg(&seg(path, "trace_state"), "key"), "key must not be empty", None);
            }
            // As the Collector: empty values, and pairs too long for a
            // tracestate member, can never match.
            let values = b.values.iter().filter(|v| !v.is_empty() && b.key.len() + v.len() < 256).cloned().collect();
            Kind::TraceState { key: b.key.clone(), values, flag: 0 }
        }
        "and" => {
            let b = block!(and);
            let p = seg(&seg(path, "and"), "and_sub_policy");
            Kind::And(compile_subs(&b.and_sub_policy, &p, Level::Leaf, shared, errors))
        }
        "drop" => {
            let b = block!(drop);
            let p = seg(&seg(path, "drop"), "drop_sub_policy");
            Kind::Drop(compile_subs(&b.drop_sub_policy, &p, Level::Leaf, shared, errors))
        }
        "composite" => {
            let b = block!(composite);
            let p = seg(path, "composite");
            compile_composite(b, &p, shared, errors)
        }
        _ => return None,
    };
    (errors.len() == before).then(|| Policy { name: cfg.name.clone(), kind })
}

fn first_line(s: &str) -> String {
    s.lines().rfind(|l| !l.trim().is_empty()).unwrap_or(s).trim().to_string()
}

fn compile_subs(
    list: &[PolicyConfig],
    path: &[String],
    level: Level,
    shared: &mut Shared,
    errors: &mut Vec<PolicyError>,
) -> Vec<Policy> {
    if list.is_empty() {
        err(errors, path.to_vec(), "at least one sub-policy is required", None);
    }
    check_names(list, path, errors);
    list.iter().enumerate().filter_map(|(i, p)| compile(p, &seg(path, i), level, shared, errors)).collect()
}

fn compile_composite(
    b: &super::config::CompositeConfig,
    path: &[String],
    shared: &mut Shared,
    errors: &mut Vec<PolicyError>,
) -> Kind {
    if b.max_total_spans_per_second == 0 {
        err(errors, seg(path, "max_total_spans_per_second"), "max_total_spans_per_second must be above 0", None);
    }
    let sub_path = seg(path, "composite_sub_policy");
    let compiled = compile_subs(&b.composite_sub_policy, &sub_path, Level::CompositeSub, shared, errors);
    let mut total_pct = 0.0;
    for (i, a) in b.rate_allocation.iter().enumerate() {
        let ap = seg(&seg(path, "rate_allocation"), i);
        if !b.composite_sub_policy.iter().any(|p| p.name == a.policy) {
            err(errors, seg(&ap, "policy"), format!("rate_allocation names unknown sub-policy \"{}\"", a.policy), None);
        }
        if !(0.0..=100.0).contains(&a.percent) {
            err(errors, seg(&ap, "percent"), format!("percent {} must be between 0 and 100", a.percent), None);
        }
        total_pct += a.percent;
    }
    if total_pct > 100.0 {
        err(errors, seg(path, "rate_allocation"), format!("rate allocations add up to {total_pct}%, above 100%"), None);
    }
    for (i, name) in b.policy_order.iter().enumerate() {
        if !b.composite_sub_policy.iter().any(|p| &p.name == name) {
            err(
                errors,
                seg(&seg(path, "policy_order"), i),
                format!("policy_order names unknown sub-policy \"{name}\""),
                None,
            );
        }
    }
    // As the Collector's `getRateAllocationMap`: a listed percent above 0
    // is that share of the total, 0 an equal share (total / number of
    // sub-policies); a later entry for the same policy wins; a sub-policy
    // not listed gets 0 and so never keeps a trace. Truncated to whole spans.
    let max_total = b.max_total_spans_per_second;
    let equal_share = max_total as f64 / b.composite_sub_policy.len().max(1) as f64;
    let allocation = |name: &str| -> u64 {
        match b.rate_allocation.iter().rev().find(|a| a.policy == name) {
            Some(a) if a.percent > 0.0 => (a.percent / 100.0 * max_total as f64) as u64,
            Some(_) => equal_share as u64,
            None => 0,
        }
    };
    let mut by_name: Vec<Option<Policy>> = compiled.into_iter().map(Some).collect();
    let order: Vec<String> = if b.policy_order.is_empty() {
        b.composite_sub_policy.iter().map(|p| p.name.clone()).collect()
    } else {
        b.policy_order.clone()
    };
    let mut subs = Vec::new();
    for name in &order {
        let Some(slot) = by_name.iter_mut().find(|p| p.as_ref().is_some_and(|p| &p.name == name)) else { continue };
        let Some(policy) = slot.take() else { continue };
        subs.push(CompositeSub { allocated: allocation(name), policy });
    }
    let state = shared.take(|| Mutex::new(CompositeState::default()));
    Kind::Composite { max_total, state, subs }
}

/// The Collector's matching with `invert_match`: a match is a veto
/// (`InvertNotSampled`), no match a weak keep (`InvertSampled`).
fn matched(found: bool, invert: bool) -> Decision {
    match (found, invert) {
        (true, false) => Decision::Sampled(Prob::ONE),
        (false, false) => Decision::NotSampled,
        (true, true) => Decision::InvertNotSampled,
        (false, true) => Decision::InvertSampled,
    }
}

impl Policy {
    /// Whether the decision is a function of the trace alone (not of a hash
    /// or a rate), so a keep by its inverse has probability 1.
    fn is_deterministic(&self) -> bool {
        !matches!(self.kind, Kind::Probabilistic { .. } | Kind::RateLimiting(_) | Kind::BytesLimiting(_))
    }

    /// Whether this policy (or a sub-policy) needs trace sizes.
    pub fn needs_size(&self) -> bool {
        match &self.kind {
            Kind::BytesLimiting(_) => true,
            Kind::And(subs) | Kind::Drop(subs) => subs.iter().any(Policy::needs_size),
            Kind::Composite { subs, .. } => subs.iter().any(|s| s.policy.needs_size()),
            Kind::Not(sub) => sub.needs_size(),
            _ => false,
        }
    }

    /// Numbers this policy's (and its sub-policies') flags from `next` on.
    /// A copy for one worker instance: stateful parts taken from `shared`
    /// in the order of a depth-first walk (the same for every instance).
    fn instance(&self, shared: &mut Shared) -> Policy {
        let bucket = |b: &Arc<Mutex<TokenBucket>>, shared: &mut Shared| {
            let fresh = b.lock().unwrap_or_else(|e| e.into_inner()).fresh();
            shared.take(|| Mutex::new(fresh))
        };
        let subs = |list: &[Policy], shared: &mut Shared| list.iter().map(|p| p.instance(shared)).collect();
        let kind = match &self.kind {
            Kind::AlwaysSample => Kind::AlwaysSample,
            Kind::Latency { lower_ms, upper_ms, flag } => {
                Kind::Latency { lower_ms: *lower_ms, upper_ms: *upper_ms, flag: *flag }
            }
            Kind::StatusCode { codes } => Kind::StatusCode { codes: *codes },
            Kind::StringAttribute { key, matcher, invert, flag } => {
                Kind::StringAttribute { key: key.clone(), matcher: matcher.clone(), invert: *invert, flag: *flag }
            }
            Kind::NumericAttribute { key, min, max, invert, flag } => {
                Kind::NumericAttribute { key: key.clone(), min: *min, max: *max, invert: *invert, flag: *flag }
            }
            Kind::BooleanAttribute { key, value, invert, flag } => {
                Kind::BooleanAttribute { key: key.clone(), value: *value, invert: *invert, flag: *flag }
            }
            Kind::Ottl { conditions, flag } => Kind::Ottl { conditions: conditions.clone(), flag: *flag },
            Kind::Probabilistic { threshold, salt } => {
                Kind::Probabilistic { threshold: *threshold, salt: salt.clone() }
            }
            Kind::RateLimiting(b) => Kind::RateLimiting(bucket(b, shared)),
            Kind::SpanCount { min, max } => Kind::SpanCount { min: *min, max: *max },
            Kind::TraceState { key, values, flag } => {
                Kind::TraceState { key: key.clone(), values: values.clone(), flag: *flag }
            }
            Kind::And(list) => Kind::And(subs(list, shared)),
            Kind::Drop(list) => Kind::Drop(subs(list, shared)),
            Kind::Not(sub) => Kind::Not(Box::new(sub.instance(shared))),
            Kind::TraceFlags => Kind::TraceFlags,
            Kind::BytesLimiting(b) => Kind::BytesLimiting(bucket(b, shared)),
            Kind::Composite { max_total, subs: list, .. } => {
                let list = list
                    .iter()
                    .map(|s| CompositeSub { policy: s.policy.instance(shared), allocated: s.allocated })
                    .collect();
                let state = shared.take(|| Mutex::new(CompositeState::default()));
                Kind::Composite { max_total: *max_total, state, subs: list }
            }
        };
        Policy { name: self.name.clone(), kind }
    }

    fn number_flags(&mut self, next: &mut usize) {
        match &mut self.kind {
            Kind::StringAttribute { flag, .. }
            | Kind::NumericAttribute { flag, .. }
            | Kind::BooleanAttribute { flag, .. }
            | Kind::TraceState { flag, .. }
            | Kind::Ottl { flag, .. }
            | Kind::Latency { flag, .. } => {
                *flag = *next;
                *next += 1;
            }
            Kind::And(subs) | Kind::Drop(subs) => subs.iter_mut().for_each(|p| p.number_flags(next)),
            Kind::Composite { subs, .. } => subs.iter_mut().for_each(|s| s.policy.number_flags(next)),
            Kind::Not(sub) => sub.number_flags(next),
            _ => {}
        }
    }

    /// Sets the flags of attribute policies that match one of `attrs` (a
    /// span's or a resource's attributes: the Collector looks at both).
    fn observe_attributes(&self, attrs: &dyn Attrs, flags: &mut Flags) {
        match &self.kind {
            Kind::StringAttribute { key, matcher, flag, .. }
                if !flags.get(*flag)
                    && attrs.any_with_key(key, &mut |v| matches!(v, AttrValue::Str(s) if matcher.matches(s))) =>
            {
                flags.set(*flag)
            }
            Kind::NumericAttribute { key, min, max, flag, .. }
                if !flags.get(*flag)
                    && attrs.any_with_key(key, &mut |v| {
                        let n = match v {
                            AttrValue::Int(i) => i as f64,
                            AttrValue::Double(d) => d,
                            _ => return false,
                        };
                        min.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m)
                    }) =>
            {
                flags.set(*flag)
            }
            Kind::BooleanAttribute { key, value, flag, .. }
                if !flags.get(*flag) && attrs.any_with_key(key, &mut |v| v == AttrValue::Bool(*value)) =>
            {
                flags.set(*flag)
            }
            Kind::And(subs) | Kind::Drop(subs) => subs.iter().for_each(|p| p.observe_attributes(attrs, flags)),
            Kind::Composite { subs, .. } => subs.iter().for_each(|s| s.policy.observe_attributes(attrs, flags)),
            Kind::Not(sub) => sub.observe_attributes(attrs, flags),
            _ => {}
        }
    }

    /// Sets the flags this policy (and its sub-policies) derive from one
    /// span; `running_ms` is how long the trace's spans so far last.
    fn observe_span(&self, span: &SpanFacts, running_ms: i64, flags: &mut Flags) {
        match &self.kind {
            // The Collector's latency check, span by span as they came: whole
            // milliseconds, `>=` without an upper bound, else a window open
            // below and closed above.
            Kind::Latency { lower_ms, upper_ms, flag } if !flags.get(*flag) => {
                let within = if *upper_ms == 0 {
                    running_ms >= *lower_ms
                } else {
                    *lower_ms < running_ms && running_ms <= *upper_ms
                };
                if within {
                    flags.set(*flag);
                }
            }
            Kind::StringAttribute { .. } | Kind::NumericAttribute { .. } | Kind::BooleanAttribute { .. } => {
                self.observe_attributes(span.attributes, flags)
            }
            Kind::TraceState { key, values, flag }
                if !flags.get(*flag)
                    && !span.trace_state.is_empty()
                    && sdk_tracestate_get(span.trace_state, key).is_some_and(|v| values.contains(v)) =>
            {
                flags.set(*flag)
            }
            Kind::And(subs) | Kind::Drop(subs) => subs.iter().for_each(|p| p.observe_span(span, running_ms, flags)),
            Kind::Composite { subs, .. } => subs.iter().for_each(|s| s.policy.observe_span(span, running_ms, flags)),
            Kind::Not(sub) => sub.observe_span(span, running_ms, flags),
            _ => {}
        }
    }

    pub fn evaluate(&mut self, t: &TraceView) -> Decision {
        match &mut self.kind {
            Kind::AlwaysSample => Decision::Sampled(Prob::ONE),
            Kind::Latency { flag, .. } => matched(t.facts.flags.get(*flag), false),
            Kind::StatusCode { codes } => {
                let found = codes.iter().enumerate().any(|(c, &want)| want && t.facts.status & (1 << c) != 0);
                matched(found, false)
            }
            Kind::StringAttribute { invert, flag, .. }
            | Kind::NumericAttribute { invert, flag, .. }
            | Kind::BooleanAttribute { invert, flag, .. } => matched(t.facts.flags.get(*flag), *invert),
            Kind::Ottl { flag, .. } => matched(t.facts.flags.get(*flag), false),
            Kind::Probabilistic { threshold, salt } => {
                // The FNV hash is not OpenTelemetry randomness, so the kept
                // trace's adjusted count cannot be written as `th`.
                if fnv1a64(salt, t.trace_id) <= *threshold {
                    Decision::Sampled(Prob::Unknown)
                } else {
                    Decision::NotSampled
                }
            }
            Kind::RateLimiting(bucket) => {
                let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
                if bucket.allow_n(t.now, t.facts.spans) {
                    Decision::Sampled(Prob::Unknown)
                } else {
                    Decision::NotSampled
                }
            }
            Kind::TraceFlags => matched(t.facts.sampled_flag, false),
            Kind::BytesLimiting(bucket) => {
                let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
                if bucket.allow_n(t.now, t.facts.size) {
                    Decision::Sampled(Prob::Unknown)
                } else {
                    Decision::NotSampled
                }
            }
            Kind::Not(sub) => {
                // Collector `not`: sampled and not sampled swap; inverted
                // and drop decisions pass through.
                let deterministic = sub.is_deterministic();
                match sub.evaluate(t) {
                    Decision::Sampled(_) => Decision::NotSampled,
                    Decision::NotSampled if deterministic => Decision::Sampled(Prob::ONE),
                    Decision::NotSampled => Decision::Sampled(Prob::Unknown),
                    other => other,
                }
            }
            Kind::SpanCount { min, max } => {
                let n = t.facts.spans;
                matched(n >= *min && (*max == 0 || n <= *max), false)
            }
            Kind::TraceState { flag, .. } => matched(t.facts.flags.get(*flag), false),
            Kind::And(subs) => {
                // Collector `and`: any NotSampled/InvertNotSampled is a no.
                let mut prob = Prob::ONE;
                for p in subs.iter_mut() {
                    match p.evaluate(t) {
                        Decision::Sampled(q) => prob = prob.both(q),
                        Decision::InvertSampled => {}
                        _ => return Decision::NotSampled,
                    }
                }
                Decision::Sampled(prob)
            }
            Kind::Drop(subs) => {
                // Collector `drop`: drops when every sub-policy matches.
                for p in subs.iter_mut() {
                    match p.evaluate(t) {
                        Decision::Sampled(_) | Decision::InvertSampled => {}
                        _ => return Decision::NotSampled,
                    }
                }
                Decision::Dropped
            }
            Kind::Composite { max_total, state, subs } => {
                let n = t.facts.spans;
                // Collector `composite`: the first sub-policy (in policy_order)
                // that samples decides: kept if the spans it kept this second
                // plus this trace's stay within its allocation and within
                // `max_total_spans_per_second`, else not kept.
                for (i, sub) in subs.iter_mut().enumerate() {
                    match sub.policy.evaluate(t) {
                        Decision::Sampled(_) | Decision::InvertSampled => {
                            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
                            st.roll(t.now, i + 1);
                            let after = st.sampled[i].saturating_add(n);
                            if after <= sub.allocated && after <= *max_total {
                                st.sampled[i] = after;
                                return Decision::Sampled(Prob::Unknown);
                            }
                            return Decision::NotSampled;
                        }
                        _ => {}
                    }
                }
                Decision::NotSampled
            }
        }
    }
}

impl CompositeState {
    /// Starts a new one-second window (counts back to 0) when `now` is in
    /// a later second than the last one, counted from the first decision.
    fn roll(&mut self, now: Instant, len: usize) {
        let epoch = *self.epoch.get_or_insert(now);
        let second = now.saturating_duration_since(epoch).as_secs();
        if second != self.second {
            self.second = second;
            self.sampled.iter_mut().for_each(|c| *c = 0);
        }
        if self.sampled.len() < len {
            self.sampled.resize(len, 0);
        }
    }
}

/// Evaluates the policies on one trace and combines their decisions.
/// `on_eval(i, d)` sees each policy's own decision (for metrics).
pub fn decide(
    policies: &mut [Policy],
    first_match: bool,
    t: &TraceView,
    mut on_eval: impl FnMut(usize, Decision),
) -> Outcome {
    let mut first_sampled = None;
    let mut first_invert_sampled = None;
    let mut first_veto = None;
    let mut first_drop = None;
    let mut any_not_sampled = false;
    let mut prob: Option<Prob> = None;
    for (i, p) in policies.iter_mut().enumerate() {
        let d = p.evaluate(t);
        on_eval(i, d);
        match d {
            Decision::Sampled(q) => {
                first_sampled.get_or_insert(i);
                prob = Some(prob.map_or(q, |p| p.either(q)));
                if first_match {
                    break;
                }
            }
            Decision::NotSampled => any_not_sampled = true,
            Decision::InvertSampled => {
                first_invert_sampled.get_or_insert(i);
            }
            Decision::InvertNotSampled => {
                first_veto.get_or_insert(i);
            }
            Decision::Dropped => {
                first_drop.get_or_insert(i);
            }
        }
    }
    let no = |policy| Outcome { keep: false, policy, prob: Prob::ONE };
    if first_drop.is_some() {
        return no(first_drop);
    }
    if first_veto.is_some() {
        return no(first_veto);
    }
    if let Some(i) = first_sampled {
        return Outcome { keep: true, policy: Some(i), prob: prob.unwrap_or(Prob::ONE) };
    }
    if let (Some(i), false) = (first_invert_sampled, any_not_sampled) {
        return Outcome { keep: true, policy: Some(i), prob: Prob::ONE };
    }
    no(None)
}
