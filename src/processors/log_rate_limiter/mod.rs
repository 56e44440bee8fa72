//! The `log_rate_limiter` processor (logs): keeps at most `rate` records per
//! second per key, with bursts of `burst`, and tells what it suppressed.
//!
//! Guarantees:
//! - A key is the configured `key_fields` of a record (resource and record
//!   attributes, severity, body template; see `template`). Each key has a
//!   GCRA limiter timed by the `now` argument only, never the wall clock.
//! - Records at or above `exempt_severity` are always kept and use no budget.
//! - Nothing is lost without trace: every suppressed record is counted in
//!   `otelcol_processor_dropped_log_records_total` and in exactly one summary
//!   record, emitted at the end of the `summary_interval` in which it was
//!   suppressed (or by `flush`). Intervals are aligned on the first `now`.
//! - Re-weighting: a record's weight is its `sluice.rate_limit.weight`
//!   attribute, 1 when absent. Kept records are passed on unchanged (weight
//!   1, or the weight an upstream limiter gave them); a summary record's
//!   weight is the total weight of the records it stands for. So the sum of
//!   weights over what leaves the processor equals the sum over what entered
//!   it, and a backend counts `sum(coalesce(weight, 1))`.
//! - Summary timestamps (`sluice.rate_limit.first_suppressed`,
//!   `last_suppressed`) are the earliest and latest record times (time, else
//!   observed time) of the suppressed records, as unix nanoseconds (int); 0
//!   when no suppressed record carried a time.
//! - State is bounded: at most `max_keys` keys (split across workers). A new
//!   key when full first evicts every idle key (bucket refilled, no pending
//!   summary: forgetting it changes no decision); if none is idle its records
//!   share one catch-all key. Both are counted.
//!
//! With several workers the pipeline routes records by their key fields
//! (see [`route_fields`]), so all records of a key meet in one instance and
//! `rate` and `burst` hold exactly; `max_keys`, a memory bound, is split
//! across the instances. Keys are identified by a 64-bit
//! //! xxh3 of their field values; a collision merges two keys' budgets.

pub mod config;
pub mod template;

use super::{Processor, ProcessorContext};
use crate::config::describe::SettingsType;
use crate::data::Batch;
use crate::telemetry::LogRateLimiterMetrics;
use config::{severity_number, KeyField, LogRateLimiterConfig};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::processors::{ProcessorFactory, ProcessorSpec, StateKey};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "log_rate_limiter",
        aliases: &[],
        signals: &[crate::data::Signal::Logs],
        description: "keeps at most a rate of log records per key (service, severity, body template), with summaries",
        example: "",
    },
    settings: SettingsType::of::<LogRateLimiterConfig>(),
    compile: |input| {
        let cfg: LogRateLimiterConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then_some(())?;
        Some(std::sync::Arc::new(cfg))
    },
};

impl ProcessorSpec for LogRateLimiterConfig {
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(LogRateLimiter::new(self, ctx)))
    }

    fn state_key(&self) -> StateKey {
        StateKey::LogFields(route_fields(self))
    }
}

pub const ATTR_SUPPRESSED: &str = "sluice.rate_limit.suppressed";
pub const ATTR_KEY: &str = "sluice.rate_limit.key";
pub const ATTR_FIRST: &str = "sluice.rate_limit.first_suppressed";
pub const ATTR_LAST: &str = "sluice.rate_limit.last_suppressed";
pub const ATTR_WEIGHT: &str = "sluice.rate_limit.weight";
/// The key text of the catch-all key.
pub const OVERFLOW_KEY_TEXT: &str = "<overflow>";

/// What was suppressed under one key since its last summary.
#[derive(Debug)]
struct Pending {
    count: u64,
    weight: u64,
    first_ts: u64,
    last_ts: u64,
    severity_number: i32,
    severity_text: String,
    resource: Option<Resource>,
    resource_schema_url: String,
    scope: Option<InstrumentationScope>,
    scope_schema_url: String,
}

#[derive(Debug)]
struct KeyState {
    /// GCRA theoretical arrival time, in nanoseconds since `epoch`.
    tat_ns: u64,
    /// The key's fields as text, for summaries.
    text: Box<str>,
    pending: Option<Box<Pending>>,
}

impl KeyState {
    fn new(text: Box<str>, now_ns: u64) -> Self {
        KeyState { tat_ns: now_ns, text, pending: None }
    }

    /// Idle: its bucket is full again and it owes no summary, so a fresh
    /// state would decide the same.
    fn idle(&self, now_ns: u64) -> bool {
        self.pending.is_none() && self.tat_ns <= now_ns
    }
}

/// Where a record of one resource and scope came from, for summaries.
struct Origin<'a> {
    resource: &'a Option<Resource>,
    resource_schema_url: &'a str,
    scope: &'a Option<InstrumentationScope>,
    scope_schema_url: &'a str,
}

/// The xxh3 of a record's values of `fields` (the record's key when
/// `fields` are the configured key fields). Scratch buffers are reused.
pub fn route_hash(
    fields: &[KeyField],
    resource: &Option<Resource>,
    r: &LogRecord,
    buf: &mut Vec<u8>,
    body_scratch: &mut Vec<u8>,
) -> u64 {
    buf.clear();
    for field in fields {
        match field {
            KeyField::Resource(a) => write_any(buf, find_attr(resource.as_ref().map(|r| &r.attributes[..]), a)),
            KeyField::Attribute(a) => write_any(buf, find_attr(Some(&r.attributes), a)),
            KeyField::SeverityText => write_bytes(buf, r.severity_text.as_bytes()),
            KeyField::SeverityNumber => buf.extend_from_slice(&r.severity_number.to_le_bytes()),
            KeyField::BodyTemplate => {
                let fp = template::fingerprint(r.body.as_ref(), body_scratch);
                buf.extend_from_slice(&fp.to_le_bytes());
            }
        }
    }
    xxhash_rust::xxh3::xxh3_64(buf)
}

/// The key fields a pipeline routes records by: all of them but the body
/// template, which is costly to compute twice, unless it is the only one.
/// Records of one key agree on every subset of its fields, so they still
/// meet in one worker.
pub fn route_fields(cfg: &LogRateLimiterConfig) -> Vec<KeyField> {
    let fields = cfg.parsed_key_fields();
    let cheap: Vec<KeyField> = fields.iter().filter(|f| **f != KeyField::BodyTemplate).cloned().collect();
    if cheap.is_empty() {
        fields
    } else {
        cheap
    }
}

pub struct LogRateLimiter {
    fields: Vec<KeyField>,
    floor: Option<i32>,
    /// GCRA emission interval: nanoseconds per record at this instance's rate.
    emission_ns: u64,
    /// GCRA tolerance: how far the arrival time may run ahead of now, (burst - 1) emissions.
    tolerance_ns: u64,
    max_keys: usize,
    summary_interval: Duration,
    /// The first `now` seen; times are kept as nanoseconds since it.
    epoch: Option<Instant>,
    /// When pending summaries are due; None while none is pending.
    next_summary: Option<Instant>,
    keys: HashMap<u64, KeyState, xxhash_rust::xxh3::Xxh3Builder>,
    overflow: KeyState,
    /// Keys (in `keys`) with a pending summary, in order of first suppression.
    pending: Vec<u64>,
    /// No eviction sweep before this time: the last one found no idle key
    /// and none can become idle earlier.
    next_sweep_ns: u64,
    key_scratch: Vec<u8>,
    body_scratch: Vec<u8>,
    metrics: LogRateLimiterMetrics,
}

impl LogRateLimiter {
    pub fn new(cfg: &LogRateLimiterConfig, ctx: &ProcessorContext) -> Self {
        let workers = ctx.workers.max(1);
        let (rate, burst) = (cfg.rate, cfg.burst.max(1));
        // Validation refuses rate <= 0 and NaN; should one get here, the
        // float-to-int cast saturates (NaN gives 1 ns: no limit), never panics.
        let emission_ns = ((1e9 / rate) as u64).max(1);
        LogRateLimiter {
            fields: cfg.parsed_key_fields(),
            floor: cfg.exempt_floor(),
            emission_ns,
            tolerance_ns: emission_ns.saturating_mul(burst - 1),
            max_keys: (cfg.max_keys / workers).max(1),
            summary_interval: cfg.summary_interval.get().max(Duration::from_millis(1)),
            epoch: None,
            next_summary: None,
            keys: HashMap::default(),
            overflow: KeyState::new(OVERFLOW_KEY_TEXT.into(), 0),
            pending: Vec::new(),
            next_sweep_ns: 0,
            key_scratch: Vec::new(),
            body_scratch: Vec::new(),
            metrics: LogRateLimiterMetrics::new(&ctx.registry, &ctx.id),
        }
    }

    /// Keys tracked by this instance (not counting the catch-all).
    pub fn keys_tracked(&self) -> usize {
        self.keys.len()
    }

    fn now_ns(&mut self, now: Instant) -> u64 {
        let epoch = *self.epoch.get_or_insert(now);
        u64::try_from(now.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The end of the summary interval that `now` falls in.
    fn interval_end(&self, now: Instant) -> Instant {
        let epoch = self.epoch.unwrap_or(now);
        let every = self.summary_interval.as_nanos().max(1);
        let k = now.saturating_duration_since(epoch).as_nanos() / every + 1;
        let end = u64::try_from(k * every).unwrap_or(u64::MAX);
        // An interval too long for `Instant` (an absurd config) ends at once
        // rather than panicking.
        epoch.checked_add(Duration::from_nanos(end)).or_else(|| now.checked_add(self.summary_interval)).unwrap_or(now)
    }

    fn is_exempt(&self, r: &LogRecord) -> bool {
        let Some(floor) = self.floor else { return false };
        record_severity(r) >= floor
    }

    /// The key of a record, as its xxh3.
    fn key_hash(&mut self, resource: &Option<Resource>, r: &LogRecord) -> u64 {
        route_hash(&self.fields, resource, r, &mut self.key_scratch, &mut self.body_scratch)
    }

    fn key_text(&self, resource: &Option<Resource>, r: &LogRecord) -> String {
        let mut s = String::new();
        for (i, field) in self.fields.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            match field {
                KeyField::Resource(a) => {
                    let _ = write!(s, "resource.{a}=");
                    render_any(&mut s, find_attr(resource.as_ref().map(|r| &r.attributes[..]), a));
                }
                KeyField::Attribute(a) => {
                    let _ = write!(s, "attributes.{a}=");
                    render_any(&mut s, find_attr(Some(&r.attributes), a));
                }
                KeyField::SeverityText => {
                    let _ = write!(s, "severity_text={}", r.severity_text);
                }
                KeyField::SeverityNumber => {
                    let _ = write!(s, "severity_number={}", r.severity_number);
                }
                KeyField::BodyTemplate => {
                    s.push_str("body_template=");
                    template::render_body(r.body.as_ref(), &mut s);
                }
            }
        }
        s
    }

    /// Evicts every idle key; true when room was made.
    fn sweep(&mut self, now_ns: u64) -> bool {
        if now_ns < self.next_sweep_ns {
            return false;
        }
        let before = self.keys.len();
        let mut earliest = u64::MAX;
        self.keys.retain(|_, k| {
            if k.idle(now_ns) {
                return false;
            }
            if k.pending.is_none() {
                earliest = earliest.min(k.tat_ns);
            }
            true
        });
        let evicted = before - self.keys.len();
        if evicted == 0 {
            // Keys owing a summary wait for it; the rest become idle at their TAT.
            self.next_sweep_ns = earliest;
            return false;
        }
        self.metrics.keys_evicted.add(evicted as u64);
        self.metrics.keys.add(-(evicted as i64));
        true
    }

    /// Whether a record is kept; a suppressed one is noted for its summary.
    fn admit(&mut self, origin: &Origin<'_>, r: &LogRecord, now: Instant, now_ns: u64) -> bool {
        if self.is_exempt(r) {
            return true;
        }
        let hash = self.key_hash(origin.resource, r);
        let tracked = self.keys.contains_key(&hash)
            || ((self.keys.len() < self.max_keys || self.sweep(now_ns)) && {
                let text = self.key_text(origin.resource, r).into_boxed_str();
                self.keys.insert(hash, KeyState::new(text, now_ns));
                self.metrics.keys.add(1);
                true
            });
        let state = match tracked.then(|| self.keys.get_mut(&hash)).flatten() {
            Some(s) => s,
            None => {
                self.metrics.key_overflow.inc();
                &mut self.overflow
            }
        };
        // GCRA: admit while the arrival time runs at most `tolerance` ahead.
        let tat = state.tat_ns.max(now_ns);
        if tat - now_ns <= self.tolerance_ns {
            state.tat_ns = tat.saturating_add(self.emission_ns);
            return true;
        }
        let first = state.pending.is_none();
        note_suppressed(&mut state.pending, origin, r);
        if first {
            if tracked {
                self.pending.push(hash);
            }
            if self.next_summary.is_none() {
                self.next_summary = Some(self.interval_end(now));
            }
        }
        false
    }

    fn emit_summaries(&mut self, out: &mut Vec<Batch>) {
        let mut req = ExportLogsServiceRequest::default();
        for hash in self.pending.drain(..) {
            if let Some(k) = self.keys.get_mut(&hash) {
                if let Some(p) = k.pending.take() {
                    req.resource_logs.push(summary(&k.text, *p));
                }
            }
        }
        if let Some(p) = self.overflow.pending.take() {
            req.resource_logs.push(summary(&self.overflow.text, *p));
        }
        self.next_summary = None;
        // Keys that owed a summary may be idle now.
        self.next_sweep_ns = 0;
        if !req.resource_logs.is_empty() {
            self.metrics.summaries.add(req.resource_logs.len() as u64);
            out.push(Batch::Logs(req));
        }
    }
}

impl Drop for LogRateLimiter {
    fn drop(&mut self) {
        // The gauge is shared by all workers' instances; take back our share.
        self.metrics.keys.add(-(self.keys.len() as i64));
    }
}

impl Processor for LogRateLimiter {
    fn process(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        let Batch::Logs(mut req) = batch else {
            out.push(batch);
            return;
        };
        // Summaries due before this batch go first, so they stay in time order.
        if self.next_summary.is_some_and(|d| now >= d) {
            self.emit_summaries(out);
        }
        let now_ns = self.now_ns(now);
        let mut dropped = 0u64;
        for rl in req.resource_logs.iter_mut() {
            for sl in rl.scope_logs.iter_mut() {
                let origin = Origin {
                    resource: &rl.resource,
                    resource_schema_url: &rl.schema_url,
                    scope: &sl.scope,
                    scope_schema_url: &sl.schema_url,
                };
                sl.log_records.retain(|r| {
                    let keep = self.admit(&origin, r, now, now_ns);
                    dropped += u64::from(!keep);
                    keep
                });
            }
        }
        if dropped > 0 {
            crate::data::prune_empty_logs(&mut req);
            self.metrics.processor.dropped.add(dropped);
        }
        if !req.resource_logs.is_empty() {
            out.push(Batch::Logs(req));
        }
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Batch>) {
        if self.next_summary.is_some_and(|d| now >= d) {
            self.emit_summaries(out);
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.next_summary
    }

    fn flush(&mut self, out: &mut Vec<Batch>) {
        self.emit_summaries(out);
    }
}

/// A record's severity number; a record with only a text gets the number its
/// text names (`WARN` is 13), else 0.
fn record_severity(r: &LogRecord) -> i32 {
    if r.severity_number > 0 {
        r.severity_number
    } else {
        severity_number(&r.severity_text).unwrap_or(0)
    }
}

fn record_time(r: &LogRecord) -> u64 {
    if r.time_unix_nano != 0 {
        r.time_unix_nano
    } else {
        r.observed_time_unix_nano
    }
}

/// The weight a record already carries from an upstream limiter, else 1.
fn record_weight(r: &LogRecord) -> u64 {
    match find_attr(Some(&r.attributes), ATTR_WEIGHT).and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::IntValue(w)) if *w > 0 => *w as u64,
        _ => 1,
    }
}

fn note_suppressed(pending: &mut Option<Box<Pending>>, origin: &Origin<'_>, r: &LogRecord) {
    let ts = record_time(r);
    let severity = record_severity(r);
    let weight = record_weight(r);
    match pending {
        Some(p) => {
            p.count += 1;
            p.weight = p.weight.saturating_add(weight);
            if ts != 0 {
                p.first_ts = if p.first_ts == 0 { ts } else { p.first_ts.min(ts) };
                p.last_ts = p.last_ts.max(ts);
            }
            if severity > p.severity_number {
                p.severity_number = severity;
                p.severity_text.clone_from(&r.severity_text);
            }
        }
        None => {
            *pending = Some(Box::new(Pending {
                count: 1,
                weight,
                first_ts: ts,
                last_ts: ts,
                severity_number: severity,
                severity_text: r.severity_text.clone(),
                resource: origin.resource.clone(),
                resource_schema_url: origin.resource_schema_url.to_string(),
                scope: origin.scope.clone(),
                scope_schema_url: origin.scope_schema_url.to_string(),
            }))
        }
    }
}

fn int_attr(key: &str, v: u64) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(i64::try_from(v).unwrap_or(i64::MAX))) }),
        ..Default::default()
    }
}

/// The summary record of one key, under the resource and scope of its first
/// suppressed record.
fn summary(key_text: &str, p: Pending) -> ResourceLogs {
    let record = LogRecord {
        time_unix_nano: p.last_ts,
        observed_time_unix_nano: p.last_ts,
        severity_number: p.severity_number,
        severity_text: p.severity_text,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!("{} similar records suppressed", p.count))),
        }),
        attributes: vec![
            int_attr(ATTR_SUPPRESSED, p.count),
            KeyValue {
                key: ATTR_KEY.to_string(),
                value: Some(AnyValue { value: Some(any_value::Value::StringValue(key_text.to_string())) }),
                ..Default::default()
            },
            int_attr(ATTR_FIRST, p.first_ts),
            int_attr(ATTR_LAST, p.last_ts),
            int_attr(ATTR_WEIGHT, p.weight),
        ],
        ..Default::default()
    };
    ResourceLogs {
        resource: p.resource,
        scope_logs: vec![ScopeLogs { scope: p.scope, log_records: vec![record], schema_url: p.scope_schema_url }],
        schema_url: p.resource_schema_url,
    }
}

fn find_attr<'a>(attrs: Option<&'a [KeyValue]>, key: &str) -> Option<&'a AnyValue> {
    attrs?.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref())
}

fn write_bytes(buf: &mut Vec<u8>, b: &[u8]) {
    // Length-prefixed, so adjacent fields cannot run into each other.
    buf.extend_from_slice(&(b.len() as u64).to_le_bytes());
    buf.extend_from_slice(b);
}

/// A value in the key's hashed form, tagged by type so `1` and `"1"` differ.
fn write_any(buf: &mut Vec<u8>, v: Option<&AnyValue>) {
    use any_value::Value;
    match v.and_then(|v| v.value.as_ref()) {
        None => buf.push(0),
        Some(Value::StringValue(s)) => {
            buf.push(1);
            write_bytes(buf, s.as_bytes());
        }
        Some(Value::BoolValue(b)) => buf.extend_from_slice(&[2, u8::from(*b)]),
        Some(Value::IntValue(i)) => {
            buf.push(3);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        Some(Value::DoubleValue(d)) => {
            buf.push(4);
            buf.extend_from_slice(&d.to_bits().to_le_bytes());
        }
        Some(Value::BytesValue(b)) => {
            buf.push(5);
            write_bytes(buf, b);
        }
        Some(Value::StringValueStrindex(i)) => {
            buf.push(7);
            buf.extend_from_slice(&i.to_le_bytes());
        }
        Some(other @ (Value::ArrayValue(_) | Value::KvlistValue(_))) => {
            // Rare as key values; their encoding is exact enough.
            use prost::Message;
            buf.push(6);
            let v = AnyValue { value: Some(other.clone()) };
            buf.extend_from_slice(&(v.encoded_len() as u64).to_le_bytes());
            v.encode_raw(buf);
        }
    }
}

fn render_any(s: &mut String, v: Option<&AnyValue>) {
    use any_value::Value;
    let _ = match v.and_then(|v| v.value.as_ref()) {
        None => Ok(()),
        Some(Value::StringValue(x)) => s.write_str(x),
        Some(Value::BoolValue(x)) => write!(s, "{x}"),
        Some(Value::IntValue(x)) => write!(s, "{x}"),
        Some(Value::DoubleValue(x)) => write!(s, "{x}"),
        Some(Value::BytesValue(b)) => b.iter().try_for_each(|x| write!(s, "{x:02x}")),
        Some(Value::StringValueStrindex(i)) => write!(s, "strindex({i})"),
        Some(Value::ArrayValue(_)) => s.write_str("<array>"),
        Some(Value::KvlistValue(_)) => s.write_str("<kvlist>"),
    };
}

#[cfg(test)]
mod tests;
