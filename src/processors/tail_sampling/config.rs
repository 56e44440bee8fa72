//! Configuration of the `tail_sampling` processor: the Collector's fields and
//! defaults (`decision_wait`, `num_traces`, `expected_new_traces_per_sec`,
//! `decision_cache`, `sample_on_first_match`,
//! `drop_pending_traces_on_shutdown`, `block_on_overflow`, `policies`), plus
//! sluice's bounds (`max_memory_mib`, `decision_wait_after_root_received`)
//! and spill storage (`storage`, `max_disk_mib`, `decision_save_interval`).
//!
//! Policies are read as one shape (`name`, `type`, one block per type) so a
//! wrong `type` is reported by [`super::policy::compile`] at its YAML path
//! (`policies::2::type`) instead of as an opaque serde enum error.

use crate::config::component::Checker;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TailSamplingConfig {
    /// Wait after a trace's first span before deciding. Default 30s (as the Collector).
    pub decision_wait: Duration,
    /// Once the root span (empty parent_span_id) arrives, decide after this
    /// shorter wait instead. Default: unset (always wait `decision_wait`).
    pub decision_wait_after_root_received: Option<Duration>,
    /// Traces held in memory, for the whole processor (split across workers).
    /// Beyond it the oldest are decided early. Default 50000 (as the Collector).
    pub num_traces: u64,
    /// Sizing hint for the trace table. Default 0 (as the Collector).
    pub expected_new_traces_per_sec: u64,
    /// Bytes of buffered spans, in MiB, for the whole processor (split across
    /// workers). Beyond it the oldest traces are decided early. Default 256.
    pub max_memory_mib: u64,
    /// Trace IDs remembered after a decision so late spans follow it.
    pub decision_cache: DecisionCacheConfig,
    /// Evaluated in order; see `policy.rs` for how their decisions combine.
    pub policies: Vec<PolicyConfig>,
    /// Stop evaluating at the first policy that samples (the Collector's
    /// `sample_on_first_match`). Default false: every policy is evaluated,
    /// so a later drop or inverted match can still veto.
    pub sample_on_first_match: bool,
    /// At shutdown, drop the traces still waiting instead of deciding them
    /// on the spans they have so far (the Collector's field). Default false.
    pub drop_pending_traces_on_shutdown: bool,
    /// The Collector blocks ingest when `num_traces` is reached, until
    /// traces are decided at their `decision_wait`, rather than evicting the
    /// oldest. sluice cannot hold a request back inside a processor; with
    /// this set, reaching `num_traces` decides nothing early: every trace
    /// waits its full `decision_wait`, and only `max_memory_mib` bounds the
    /// buffer (decided early beyond it, as always). Default false.
    pub block_on_overflow: bool,
    /// A `file_storage` extension: when `max_memory_mib` is reached, the
    /// oldest traces' spans move there (bounded by `max_disk_mib`) and are
    /// still decided at their `decision_wait` with every span; the decision
    /// caches are written there at shutdown and read at start. Default:
    /// unset (traces are decided early at `max_memory_mib`; caches are lost
    /// on restart).
    pub storage: Option<String>,
    /// Bytes of spilled spans on disk, in MiB, for the whole processor
    /// (split across workers). Beyond it the oldest traces are decided
    /// early. Default 1024; used only with `storage`.
    pub max_disk_mib: u64,
    /// How often the decisions made since the last save are appended to
    /// `storage` (and at shutdown): a `kill -9` loses at most this much of
    /// them. From 100ms to 10m. Default 5s; used only with `storage`.
    pub decision_save_interval: Duration,
}

impl Default for TailSamplingConfig {
    fn default() -> Self {
        TailSamplingConfig {
            decision_wait: Duration::from_secs(30),
            decision_wait_after_root_received: None,
            num_traces: 50_000,
            expected_new_traces_per_sec: 0,
            max_memory_mib: 256,
            decision_cache: DecisionCacheConfig::default(),
            policies: Vec::new(),
            sample_on_first_match: false,
            drop_pending_traces_on_shutdown: false,
            block_on_overflow: false,
            storage: None,
            max_disk_mib: 1024,
            decision_save_interval: Duration::from_secs(5),
        }
    }
}

/// Trace IDs remembered after a decision so late spans follow it.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DecisionCacheConfig {
    /// Kept-decision entries (whole processor). Default 100000. The Collector
    /// defaults to 0 (off); sluice keeps one on because late spans that start
    /// a second, differently decided trace are a reported Collector problem.
    /// An entry costs about 64 bytes. 0 turns the cache off.
    pub sampled_cache_size: usize,
    /// Dropped-decision entries (whole processor). Default 100000; 0 is off.
    pub non_sampled_cache_size: usize,
}

impl Default for DecisionCacheConfig {
    fn default() -> Self {
        DecisionCacheConfig { sampled_cache_size: 100_000, non_sampled_cache_size: 100_000 }
    }
}

/// One policy as written: `name`, `type`, and the block named by `type`.
/// Sub-policies (`and`, `composite`, `drop`, `not`) use the same shape;
/// which types may nest where is checked when compiling (as the Collector:
/// `not` takes one basic policy and appears only at the top; `trace_flags`
/// has no block).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The policy's name, in the `sampling.policy` attribute and self-metrics.
    pub name: String,
    /// Which policy: the name of the block below that configures it (`latency`, `status_code`,
    /// `and`, ...).
    #[serde(rename = "type")]
    pub policy_type: String,
    /// Keep traces by duration.
    pub latency: Option<LatencyConfig>,
    /// Keep traces with a span of one of these status codes.
    pub status_code: Option<StatusCodeConfig>,
    /// Keep traces with a span or resource attribute equal to (or matching) one of the values.
    pub string_attribute: Option<StringAttributeConfig>,
    /// Keep traces with a numeric span or resource attribute in a range.
    pub numeric_attribute: Option<NumericAttributeConfig>,
    /// Keep traces with a boolean span or resource attribute of this value.
    pub boolean_attribute: Option<BooleanAttributeConfig>,
    /// Keep a percentage of traces by trace ID hash.
    pub probabilistic: Option<ProbabilisticConfig>,
    /// Keep traces up to a rate of spans per second.
    pub rate_limiting: Option<RateLimitingConfig>,
    /// Keep traces up to a rate of bytes per second.
    pub bytes_limiting: Option<BytesLimitingConfig>,
    /// Keep traces by their number of spans.
    pub span_count: Option<SpanCountConfig>,
    /// Keep traces with a span whose W3C tracestate has this key with one of the values.
    pub trace_state: Option<TraceStateConfig>,
    /// Keep traces every sub-policy keeps.
    #[serde(rename = "and")]
    pub and: Option<AndConfig>,
    /// Sub-policies sharing a spans-per-second budget by allocation.
    pub composite: Option<CompositeConfig>,
    /// Drop traces every sub-policy matches, whatever the other policies decide.
    pub drop: Option<DropConfig>,
    /// Invert one sub-policy.
    pub not: Option<NotConfig>,
    pub ottl_condition: Option<OttlConditionConfig>,
}

/// The Collector's `ottl_condition` policy: the trace is sampled when some
/// span meets one of `span`, or some span event one of `spanevent`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct OttlConditionConfig {
    /// What a condition that fails on a span does: `ignore`/`silent` count
    /// it as not met and go on, `propagate` (the Collector's default) stops
    /// this policy's look at the span. Every failure is counted.
    pub error_mode: crate::ottl::ErrorMode,
    /// OTTL conditions on spans; the trace is kept when a span meets any.
    pub span: Vec<String>,
    /// OTTL conditions on span events; the trace is kept when an event meets any.
    pub spanevent: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct LatencyConfig {
    /// Keep traces lasting at least this many whole milliseconds (earliest
    /// start to latest end, truncated to whole milliseconds, as the Collector).
    pub threshold_ms: u64,
    /// If above 0, keep traces lasting more than `threshold_ms` and at most
    /// this many whole milliseconds, checked span by span as the spans came
    /// in (as the Collector: a trace is kept once the spans seen so far fall
    /// in the window). Default 0.
    pub upper_threshold_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StatusCodeConfig {
    /// Any of `OK`, `ERROR`, `UNSET`.
    pub status_codes: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct StringAttributeConfig {
    /// Attribute key.
    pub key: String,
    /// Values to match; any may match.
    pub values: Vec<String>,
    /// Treat `values` as regular expressions (regex crate syntax, anchored
    /// as written). Default false.
    pub enabled_regex_matching: bool,
    /// Accepted for compatibility; sluice's regexes run in linear time and
    /// cache nothing. Default 0.
    pub cache_max_size: usize,
    /// Keep traces that do NOT match instead.
    pub invert_match: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NumericAttributeConfig {
    /// Attribute key.
    pub key: String,
    /// Lowest value matched (inclusive); absent: no lower bound.
    pub min_value: Option<f64>,
    /// Highest value matched (inclusive); absent: no upper bound.
    pub max_value: Option<f64>,
    /// Keep traces that do NOT match instead.
    pub invert_match: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BooleanAttributeConfig {
    /// Attribute key.
    pub key: String,
    /// The value to match.
    pub value: bool,
    /// Keep traces that do NOT match instead.
    pub invert_match: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ProbabilisticConfig {
    /// Salt hashed before the trace ID (FNV-64a, as the Collector), so tiers
    /// with different salts decide independently. Empty: the Collector's
    /// default salt `"default-hash-seed"`.
    pub hash_salt: String,
    /// In `[0, 100]`.
    pub sampling_percentage: f64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitingConfig {
    /// Spans kept per second by this policy, for the whole processor: the
    /// refill rate of a token bucket shared by all of the processor's workers.
    pub spans_per_second: u64,
    /// Spans the bucket holds (the largest burst). Default 0: twice
    /// `spans_per_second`, as the Collector. A trace with more spans than
    /// this is never kept by the policy.
    pub burst_capacity: u64,
}

/// The Collector's `bytes_limiting`: a token bucket of trace bytes (as the
/// Collector estimates a trace's size), shared by the whole processor.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BytesLimitingConfig {
    /// Refill rate, bytes per second.
    pub bytes_per_second: u64,
    /// Bytes the bucket holds. Default 0: twice `bytes_per_second`.
    pub burst_capacity: u64,
}

/// The Collector's `not`: inverts one sub-policy (sampled becomes not
/// sampled and the other way round; inverted and drop decisions pass).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NotConfig {
    /// The policy to invert.
    pub not_sub_policy: Option<Box<PolicyConfig>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SpanCountConfig {
    /// Fewest spans a kept trace has.
    pub min_spans: u64,
    /// 0: no upper bound. Default 0.
    pub max_spans: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct TraceStateConfig {
    /// tracestate key.
    pub key: String,
    /// Values to match; any may match.
    pub values: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AndConfig {
    /// Policies that must all keep the trace.
    pub and_sub_policy: Vec<PolicyConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct DropConfig {
    /// Policies that must all match for the trace to be dropped.
    pub drop_sub_policy: Vec<PolicyConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CompositeConfig {
    /// Spans per second any one sub-policy may keep (whole processor); as
    /// the Collector, each sub-policy's count within the second is checked
    /// against it and against the sub-policy's own allocation.
    pub max_total_spans_per_second: u64,
    /// Names of `composite_sub_policy` entries in evaluation order; empty:
    /// the order they are listed in.
    pub policy_order: Vec<String>,
    /// The sub-policies; the first that keeps the trace within its budget decides.
    pub composite_sub_policy: Vec<PolicyConfig>,
    /// Share of `max_total_spans_per_second` per sub-policy, in percent, as
    /// the Collector: `percent: 0` gives an equal share of the total
    /// (total / number of sub-policies); a sub-policy missing from the list
    /// gets nothing (it can never keep a trace).
    pub rate_allocation: Vec<RateAllocationConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RateAllocationConfig {
    /// Name of a `composite_sub_policy` entry.
    pub policy: String,
    /// Its share of `max_total_spans_per_second`, in percent.
    pub percent: f64,
}

/// Checks `cfg` and compiles its policies: the template every worker
/// instance is made from (complete only when no error was reported).
pub fn validate(c: &mut Checker, cfg: &TailSamplingConfig) -> Vec<crate::processors::tail_sampling::policy::Policy> {
    if cfg.decision_wait.is_zero() {
        c.error(&["decision_wait"], "decision_wait must be above zero", Some("e.g. 30s"));
    }
    if let Some(d) = cfg.decision_wait_after_root_received {
        if d > cfg.decision_wait {
            c.error(
                &["decision_wait_after_root_received"],
                "decision_wait_after_root_received must not be longer than decision_wait",
                Some("it shortens the wait once the root span is in"),
            );
        }
    }
    if cfg.num_traces == 0 {
        c.error(&["num_traces"], "num_traces must be above 0", Some("e.g. 50000"));
    }
    if cfg.max_memory_mib == 0 {
        c.error(&["max_memory_mib"], "max_memory_mib must be above 0", Some("e.g. 256"));
    }
    if cfg.storage.is_some() && cfg.max_disk_mib == 0 {
        c.error(
            &["max_disk_mib"],
            "max_disk_mib must be above 0 when storage is set",
            Some("e.g. 1024; or leave storage out to decide early at max_memory_mib"),
        );
    }
    let interval = cfg.decision_save_interval.get();
    if interval < std::time::Duration::from_millis(100) || interval > std::time::Duration::from_secs(600) {
        c.error(
            &["decision_save_interval"],
            format!("decision_save_interval must be from 100ms to 10m, not {}", cfg.decision_save_interval),
            Some("e.g. 5s: a kill -9 loses at most this much of the decisions"),
        );
    }
    let (policies, errors) = crate::processors::tail_sampling::policy::compile_all(cfg);
    for e in errors {
        c.error_at(&e.path, e.message, e.hint);
    }
    policies
}
