//! The `tail_sampling` processor: buffers each trace's spans, decides once
//! per trace with the configured policies, and sends on the kept traces
//! whole, regrouped under their original resource and scope.
//!
//! Guarantees:
//! - every buffered trace gets a decision: at its deadline (`decision_wait`
//!   after its first span, or `decision_wait_after_root_received` after its
//!   root span if that is sooner), EARLY when `num_traces` or `max_memory_mib`
//!   (each divided by `workers`) would be exceeded (oldest first, counted by
//!   reason), or at `flush`. Nothing is dropped undecided;
//! - with `storage`, reaching `max_memory_mib` moves the spans of the oldest
//!   trace that has any in memory to the spill store (`spill.rs`) instead;
//!   only when the store refuses (`max_disk_mib`, or a failed write) is the
//!   oldest trace decided early. A kept trace's spilled spans are read back
//!   and sent on with the rest, in arrival order;
//! - with `storage`, the decisions are saved (`saved.rs`): those made since
//!   the last save are appended every `decision_save_interval` (so
//!   `kill -9` loses at most one interval of decisions) and at `flush`. The
//!   saved caches are read before the instance first processes anything,
//!   once for all the processor's instances, each keeping the entries the
//!   pipeline routes to it; a pipeline that replaces another on a reload
//!   starts processing only once the one it replaces has flushed and saved
//!   (`pipeline/agent.rs`), so it reads that one's last decisions.
//! - accounted bytes stay under this instance's share of `max_memory_mib`
//!   whenever `process`/`tick` return;
//! - spans arriving after the decision follow it while the trace ID is in the
//!   bounded kept/dropped decision caches;
//! - kept spans carry `sampling.policy` (the policy that kept the trace) and
//!   their probability in `tracestate` `ot=th` (see `policy.rs`).
//!
//! Memory: a buffered span is kept protobuf-encoded (length-delimited) in
//! one growable buffer per trace, with the resource/scope of each run of
//! spans. A request that comes in still encoded (receivers check instead of
//! decoding when this is the first processor that looks at the data) is
//! never decoded: each span's bytes are copied into its trace's buffer as
//! received, and only the fields the policies read are picked from them
//! (`wire.rs`); resources are decoded once per request, for the attribute
//! policies. Kept spans go on encoded too: marked in their bytes and
//! regrouped under their resource and scope (`emit.rs`), so a pipeline of
//! tail_sampling and batch decodes nothing. What the policies need
//! (span count, time range, status codes, attribute and tracestate matches,
//! randomness) is gathered into the trace's [`policy::Facts`] as each span
//! arrives, so deciding never looks at the spans. Accounting counts the
//! buffers' capacity plus a fixed per-trace overhead.
//!
//! I/O: only with `storage`, and never in deciding: one file write per
//! spilled trace (when memory is full), one read per spilled record of a
//! kept trace, the saved decisions read before the first batch, and one
//! append (or, rarely, a rewrite) of the decisions per save interval. The facts the
//! policies decide on never leave memory.
//!
//! The pipeline routes every span of a trace to the same instance
//! (`StateKey::TraceId`), so per-trace state here is plain, unlocked,
//! single-threaded. Only the rate limits of `rate_limiting` and `composite`
//! are shared by the processor's instances (one small mutex each, taken once
//! per decided trace), because the Collector limits the processor as a whole.
//! Timers are never a scan: `decision_wait` is one duration and time only
//! moves forward, so traces reach their deadline in arrival order and the
//! arrival queue is the timer queue; only deadlines that a root span
//! shortened (`decision_wait_after_root_received`) go to a min-heap. Both
//! delete lazily: an entry whose trace was decided already is skipped.

pub mod cache;
pub mod config;
mod emit;
pub mod policy;
mod saved;
pub mod spill;
mod wire;

#[cfg(test)]
mod spill_tests;
#[cfg(test)]
mod tests;

use super::{Processor, ProcessorContext};
use crate::config::describe::SettingsType;
use crate::data::wire::{fields, WireValue};
use crate::data::{Batch, EncodedBatch, Payload, Signal};
use crate::telemetry::{ProcessorMetrics, TailSamplingMetrics, TailSamplingPolicyMetrics};
use cache::{DecisionCache, TraceIdMap};
use config::TailSamplingConfig;
use emit::{KeptSpans, TsCache};
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use policy::{Decision, Facts, Flags, Outcome, Policy, Prob, TraceView};
use prost::Message;
use std::cmp::Reverse;
use std::collections::hash_map::Entry;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::processors::{DataForm, ProcessorFactory, ProcessorSpec, StateKey};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "tail_sampling",
        aliases: &[],
        signals: &[Signal::Traces],
        description: "keeps whole traces chosen by policies once they are complete, within a memory bound",
        example: "policies:\n  - name: errors\n    type: status_code\n    status_code: {status_codes: [ERROR]}\n",
    },
    settings: SettingsType::of::<TailSamplingConfig>(),
    compile: |input| {
        let cfg: TailSamplingConfig = input.typed()?;
        let mut policies = Vec::new();
        input.check(|c| policies = config::validate(c, &cfg)).then_some(())?;
        Some(Arc::new(TailSamplingSpec { config: cfg, policies: Arc::new(policies) }))
    },
};

/// A `tail_sampling` config with its policies compiled once, at load: each
/// worker instance is made from them with its processor's shared state.
pub struct TailSamplingSpec {
    config: TailSamplingConfig,
    policies: Arc<Vec<Policy>>,
}

impl std::fmt::Debug for TailSamplingSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.config.fmt(f)
    }
}

impl PartialEq for TailSamplingSpec {
    fn eq(&self, other: &Self) -> bool {
        self.config == other.config
    }
}

impl ProcessorSpec for TailSamplingSpec {
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(TailSamplingProcessor::from_compiled(&self.config, &self.policies, ctx)))
    }

    /// Per-trace buffers and decision caches.
    fn state_key(&self) -> StateKey {
        StateKey::TraceId
    }

    /// Spans are buffered as received and kept ones sent on encoded.
    fn data_form(&self) -> DataForm {
        DataForm::Either
    }

    fn holds_data(&self) -> bool {
        true
    }

    fn extension_references(&self) -> Vec<crate::extensions::ExtensionReference<'_>> {
        match &self.config.storage {
            Some(id) => vec![(&["storage"], id.as_str(), crate::extensions::ExtensionUse::Storage)],
            None => Vec::new(),
        }
    }
}

/// The span attribute naming the policy that kept a trace.
pub const POLICY_ATTRIBUTE: &str = "sampling.policy";

/// A resource shared by every buffered span that came with it.
pub struct ResourceGroup {
    /// The encoded `Resource`; `None` when the request had none.
    resource: Option<Vec<u8>>,
    schema_url: Vec<u8>,
    /// The attribute policies its attributes match.
    matches: Flags,
    /// Its encoded size, charged with each of its scopes.
    bytes: usize,
    /// Its size as `bytes_limiting` counts it; None when no policy needs it.
    size: Option<u64>,
}

impl ResourceGroup {
    fn new(policies: &[Policy], resource: Option<Resource>, schema_url: String) -> Arc<ResourceGroup> {
        let matches =
            resource.as_ref().map_or_else(Flags::default, |r| policy::resource_flags(policies, &r.attributes));
        let size = policies.iter().any(Policy::needs_size).then(|| policy::resource_size(resource.as_ref()));
        let resource = resource.map(|r| r.encode_to_vec());
        Self::with_matches(resource, schema_url.into_bytes(), matches, size)
    }

    /// A resource as received: `resource` is the concatenation of every
    /// occurrence of the field (which decodes as their merge).
    fn from_wire(policies: &[Policy], resource: Option<Vec<u8>>, schema_url: &[u8]) -> Arc<ResourceGroup> {
        // The request was checked: the resource decodes.
        let decoded = resource.as_deref().and_then(|r| Resource::decode(r).ok());
        let matches = decoded.as_ref().map_or_else(Flags::default, |r| policy::resource_flags(policies, &r.attributes));
        let size = policies.iter().any(Policy::needs_size).then(|| policy::resource_size(decoded.as_ref()));
        Self::with_matches(resource, schema_url.to_vec(), matches, size)
    }

    fn with_matches(
        resource: Option<Vec<u8>>,
        schema_url: Vec<u8>,
        matches: Flags,
        size: Option<u64>,
    ) -> Arc<ResourceGroup> {
        let bytes = resource.as_ref().map_or(0, Vec::len) + schema_url.len();
        Arc::new(ResourceGroup { resource, schema_url, matches, bytes, size })
    }
}

/// A scope (and its resource) shared by every buffered span that came with it.
pub struct ScopeGroup {
    resource: Arc<ResourceGroup>,
    /// The encoded `InstrumentationScope`; `None` when the request had none.
    scope: Option<Vec<u8>>,
    schema_url: Vec<u8>,
    /// Encoded size of resource and scope, charged once per trace that uses them.
    bytes: usize,
    /// Its size as `bytes_limiting` counts it (when the resource's is counted).
    size: u64,
}

impl ScopeGroup {
    fn new(resource: &Arc<ResourceGroup>, scope: Option<Vec<u8>>, schema_url: Vec<u8>) -> Arc<ScopeGroup> {
        let bytes =
            resource.bytes + scope.as_ref().map_or(0, Vec::len) + schema_url.len() + std::mem::size_of::<ScopeGroup>();
        let size = match resource.size {
            Some(_) => policy::scope_size(
                scope
                    .as_deref()
                    .and_then(|s| opentelemetry_proto::tonic::common::v1::InstrumentationScope::decode(s).ok())
                    .as_ref(),
            ),
            None => 0,
        };
        Arc::new(ScopeGroup { resource: resource.clone(), scope, schema_url, bytes, size })
    }
}

/// What buffering a span cost in the design that kept spans decoded (the
/// `Span` struct, its attributes, events and links as Rust structs); the
/// encoded buffer costs about `encoded_len` instead.
#[cfg(test)]
fn span_bytes(s: &Span) -> usize {
    use opentelemetry_proto::tonic::common::v1::KeyValue;
    use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
    s.encoded_len()
        + std::mem::size_of::<Span>()
        + std::mem::size_of::<Arc<ScopeGroup>>()
        + s.attributes.len() * std::mem::size_of::<KeyValue>()
        + s.events.len() * std::mem::size_of::<Event>()
        + s.events.iter().map(|e| e.attributes.len() * std::mem::size_of::<KeyValue>()).sum::<usize>()
        + s.links.len() * std::mem::size_of::<Link>()
}

/// Fixed cost of one buffered trace: its entry and key in the table (with
/// the table's spare capacity, up to 2x), its arrival-queue entry and up to
/// one deadline-heap entry.
const TRACE_OVERHEAD: usize = 2 * (std::mem::size_of::<TraceEntry>() + 16 + 8)
    + std::mem::size_of::<Reverse<(Instant, u64, [u8; 16])>>()
    + std::mem::size_of::<(Instant, u64, [u8; 16])>();

/// Where the spans of one resource/scope start in a trace's buffer.
type Group = (Arc<ScopeGroup>, usize);

struct TraceEntry {
    /// The trace's spans, each protobuf-encoded with a length prefix, in
    /// arrival order: one allocation per trace, none per span.
    buf: Vec<u8>,
    /// The scope of `buf[start..]` up to the next group's start.
    groups: Vec<Group>,
    /// What the policies will decide on.
    facts: Facts,
    bytes: usize,
    arrival_seq: u64,
    /// The live deadline-heap entry; older ones are stale.
    deadline_seq: u64,
    deadline: Instant,
    root_seen: bool,
    /// Records of this trace's earlier spans in the spill store, oldest
    /// first; `buf` holds only what came after the last one.
    spilled: Vec<spill::SpillRef>,
}

impl TraceEntry {
    /// Accounted bytes but for the resource/scope of each group (charged
    /// on top, to every trace that uses it): the fixed overhead and the
    /// capacity of the buffers.
    fn heap_cost(&self) -> usize {
        TRACE_OVERHEAD
            + self.buf.capacity()
            + self.groups.capacity() * std::mem::size_of::<Group>()
            + self.facts.heap_bytes()
            + self.spilled.capacity() * std::mem::size_of::<spill::SpillRef>()
    }

    /// The buffered spans as the body of an `ExportTraceServiceRequest`
    /// (one `ResourceSpans` per group), and how many there are: what a
    /// spill record holds, read back by `ingest_encoded`'s reader.
    fn spill_body(&self) -> (Vec<u8>, u32) {
        use prost::encoding::{encode_varint, WireType};
        fn field(out: &mut Vec<u8>, tag: u32, bytes: &[u8]) {
            prost::encoding::encode_key(tag, WireType::LengthDelimited, out);
            encode_varint(bytes.len() as u64, out);
            out.extend_from_slice(bytes);
        }
        let mut out = Vec::with_capacity(self.buf.len() + self.groups.len() * 256 + 64);
        let mut spans = 0u32;
        let (mut ss, mut rs) = (Vec::new(), Vec::new());
        for (i, (scope, start)) in self.groups.iter().enumerate() {
            let end = self.groups.get(i + 1).map_or(self.buf.len(), |g| g.1);
            let mut rest = self.buf.get(*start..end).unwrap_or_default();
            ss.clear();
            if let Some(sc) = &scope.scope {
                field(&mut ss, 1, sc);
            }
            // `buf` holds whole length-delimited spans: each becomes field 2.
            while let Ok(len) = prost::encoding::decode_varint(&mut rest) {
                let Some((span, after)) = usize::try_from(len).ok().and_then(|l| rest.split_at_checked(l)) else {
                    break;
                };
                field(&mut ss, 2, span);
                rest = after;
                spans += 1;
            }
            if !scope.schema_url.is_empty() {
                field(&mut ss, 3, &scope.schema_url);
            }
            rs.clear();
            if let Some(r) = &scope.resource.resource {
                field(&mut rs, 1, r);
            }
            field(&mut rs, 2, &ss);
            if !scope.resource.schema_url.is_empty() {
                field(&mut rs, 3, &scope.resource.schema_url);
            }
            field(&mut out, 1, &rs);
        }
        (out, spans)
    }

    /// The buffered spans' bytes, each with its scope.
    fn spans(&self) -> impl Iterator<Item = (&Arc<ScopeGroup>, &[u8])> + '_ {
        self.groups.iter().enumerate().flat_map(move |(i, (scope, start))| {
            let end = self.groups.get(i + 1).map_or(self.buf.len(), |g| g.1);
            let mut rest = self.buf.get(*start..end).unwrap_or_default();
            // The buffer holds only what `append` wrote: whole length-delimited spans.
            std::iter::from_fn(move || {
                let len = prost::encoding::decode_varint(&mut rest).ok()?;
                let (span, after) = rest.split_at_checked(usize::try_from(len).ok()?)?;
                rest = after;
                Some((scope, span))
            })
        })
    }
}

/// The allocation size an allocator such as mimalloc rounds `n` up to:
/// size classes a quarter of a power of two apart. Growing to exactly that
/// wastes nothing the allocator would not waste anyway.
fn size_class(n: usize) -> usize {
    if n <= 64 {
        return n.next_multiple_of(16).max(16);
    }
    let top = usize::BITS - 1 - n.leading_zeros();
    n.next_multiple_of(1 << (top - 2))
}

/// Makes room for `need` more bytes, growing to the next size class that
/// also holds the bytes `coming` says this trace has in the request being
/// buffered (0 if unknown; asked only when the buffer must grow). Each
/// growth is at least an eighth, so copies stay amortized O(1) per byte;
/// spare capacity stays under a quarter, or goes to bytes on their way
/// (one growth per trace and request: the first span of the request that
/// does not fit makes room for all of them).
fn reserve_in_class(buf: &mut Vec<u8>, need: usize, coming: impl FnOnce() -> usize) {
    if buf.capacity() - buf.len() < need {
        let target = size_class(buf.len() + need.max(coming()));
        buf.reserve_exact(target - buf.len());
    }
}

/// Appends `span` length-delimited to `buf` (see [`reserve_in_class`]).
fn append(buf: &mut Vec<u8>, span: &Span) {
    let len = span.encoded_len();
    reserve_in_class(buf, len + prost::length_delimiter_len(len), || 0);
    // `encode_length_delimited` would compute `encoded_len` a second time:
    // one more walk of every attribute of the span.
    prost::encoding::encode_varint(len as u64, buf);
    span.encode_raw(buf);
}

/// Appends an encoded span, as received, length-delimited to `buf` (see
/// [`reserve_in_class`] for `coming`).
fn append_bytes(buf: &mut Vec<u8>, span: &[u8], coming: impl FnOnce() -> usize) {
    reserve_in_class(buf, delimited_len(span), coming);
    prost::encoding::encode_varint(span.len() as u64, buf);
    buf.extend_from_slice(span);
}

/// A span's bytes with their length prefix.
fn delimited_len(span: &[u8]) -> usize {
    span.len() + prost::length_delimiter_len(span.len())
}

/// A span to buffer: decoded, or its bytes as received.
enum SpanIn<'a> {
    Decoded(Span),
    Wire(wire::WireSpan<'a>),
}

impl SpanIn<'_> {
    fn trace_id(&self) -> &[u8] {
        match self {
            SpanIn::Decoded(s) => &s.trace_id,
            SpanIn::Wire(w) => w.trace_id,
        }
    }

    fn is_root(&self) -> bool {
        match self {
            SpanIn::Decoded(s) => s.parent_span_id.is_empty(),
            SpanIn::Wire(w) => w.parent_span_id.is_empty(),
        }
    }

    /// The span's protobuf bytes (a decoded span is encoded into `scratch`).
    fn encoded<'s>(&'s self, scratch: &'s mut Vec<u8>) -> &'s [u8] {
        match self {
            SpanIn::Decoded(s) => {
                scratch.clear();
                s.encode_raw(scratch);
                scratch
            }
            SpanIn::Wire(w) => w.bytes,
        }
    }
}

/// What a kept trace's late spans get.
#[derive(Clone, Copy)]
struct Kept {
    policy: usize,
    prob: Prob,
}

#[derive(Clone, Copy)]
enum Early {
    Memory,
    NumTraces,
    Disk,
    SpillFailed,
}

/// Where the oldest traces' spans go when memory is full (`storage`).
struct Spill {
    store: spill::SpillStore,
    /// Traces with spans in memory, oldest first, with their arrival seq:
    /// the order they are spilled in. Entries of traces decided or spilled
    /// since are skipped when popped, and dropped by `compact`.
    candidates: VecDeque<(u64, [u8; 16])>,
    /// A failed write was logged (once per instance).
    warned: bool,
}

enum SpillOutcome {
    Spilled,
    /// No trace has spans in memory.
    Nothing,
    Full,
    Failed,
}

pub struct TailSamplingProcessor {
    policies: Vec<Policy>,
    /// What the processor's worker instances share (rate limits, the saved decisions read once).
    shared: Arc<ProcessorShared>,
    policy_metrics: Vec<TailSamplingPolicyMetrics>,
    no_policy_metrics: TailSamplingPolicyMetrics,
    first_match: bool,
    drop_pending_on_shutdown: bool,
    block_on_overflow: bool,
    decision_wait: Duration,
    after_root: Option<Duration>,
    max_traces: usize,
    max_bytes: usize,
    traces: TraceIdMap<TraceEntry>,
    /// Deadlines a root span shortened.
    deadlines: BinaryHeap<Reverse<(Instant, u64, [u8; 16])>>,
    /// Every trace in arrival order with its `decision_wait` deadline
    /// (so in deadline order too) and its arrival seq.
    arrivals: VecDeque<(Instant, u64, [u8; 16])>,
    seq: u64,
    bytes: usize,
    published: (i64, i64, i64),
    sampled_cache: DecisionCache<Kept>,
    dropped_cache: DecisionCache<()>,
    epoch: Option<Instant>,
    last_now: Option<Instant>,
    /// Kept spans not yet sent on.
    kept: KeptSpans,
    /// The encoded `sampling.policy` attribute of each policy.
    policy_attributes: Vec<Vec<u8>>,
    /// Where a decoded late span is encoded before it is marked.
    scratch: Vec<u8>,
    /// The attribute keys the policies read (the rest are not looked at).
    attribute_keys: wire::AttributeKeys,
    /// Bytes each trace has in the request being buffered.
    coming: TraceIdMap<usize>,
    metrics: TailSamplingMetrics,
    processor_metrics: ProcessorMetrics,
    /// Present when some policy is an `ottl_condition`.
    ottl: Option<OttlState>,
    /// Present with `storage`.
    spill: Option<Spill>,
    /// Where the decisions are saved (with `storage`).
    journal: Option<saved::Journal>,
    /// The saved decisions are still to be read (before the first batch).
    restore_from: Option<std::path::PathBuf>,
    /// Largest saved-decision file read at start.
    max_saved_file: u64,
    save_interval: Duration,
    /// When the decisions made since the last save are due to be written.
    next_save: Option<Instant>,
    /// Policy names, for saving kept decisions by name.
    policy_names: Vec<String>,
    worker: usize,
    workers: usize,
}

/// What `ottl_condition` policies need beside the spans: the decoded
/// resource and scope of the spans being buffered (decoded once per scope
/// group, not per span) and the error counter.
struct OttlState {
    last: Option<(Arc<ScopeGroup>, Option<Resource>, Option<InstrumentationScope>)>,
    metrics: crate::telemetry::OttlMetrics,
}

impl OttlState {
    fn observe(&mut self, group: &Arc<ScopeGroup>, span: &mut Span, policies: &[Policy], flags: &mut Flags) {
        if !matches!(&self.last, Some((g, _, _)) if Arc::ptr_eq(g, group)) {
            // The request was checked: resource and scope decode.
            let resource = group.resource.resource.as_deref().and_then(|b| Resource::decode(b).ok());
            let scope = group.scope.as_deref().and_then(|b| InstrumentationScope::decode(b).ok());
            self.last = Some((group.clone(), resource, scope));
        }
        let Some((_, resource, scope)) = self.last.as_mut() else { return };
        let mut ctx = crate::ottl::EvalCtx {
            resource: Some(resource),
            scope: Some(scope),
            span: Some(span),
            ..Default::default()
        };
        let errors = policy::observe_ottl(policies, &mut ctx, flags);
        if errors > 0 {
            self.metrics.errors.add(errors);
        }
    }
}

impl TailSamplingProcessor {
    /// Compiles `cfg` on its own (tests and benches); a policy that does not
    /// compile is left out (the config loader refuses such a config).
    pub fn new(cfg: &TailSamplingConfig, ctx: &ProcessorContext) -> Self {
        Self::from_compiled(cfg, &policy::compile_all(cfg).0, ctx)
    }

    /// One worker instance of the policies compiled at load. Rate limits and
    /// composite budgets are shared by all worker instances.
    pub fn from_compiled(cfg: &TailSamplingConfig, template: &[Policy], ctx: &ProcessorContext) -> Self {
        let workers = ctx.workers.max(1);
        let shared = shared_state(ctx);
        let policies = policy::instantiate(template, &shared.policy);
        let policies_ref = policy::has_ottl(&policies);
        let policy_metrics =
            policies.iter().map(|p| TailSamplingMetrics::policy(&ctx.registry, &ctx.id, &p.name)).collect();
        let max_traces = (cfg.num_traces as usize).div_ceil(workers).max(1);
        let wait_secs = cfg.decision_wait.get().as_secs().max(1) as usize;
        let expected = (cfg.expected_new_traces_per_sec as usize).saturating_mul(wait_secs) / workers;
        let policy_names = policies.iter().map(|p| p.name.clone()).collect();
        let mut p = TailSamplingProcessor {
            spill: None,
            journal: None,
            restore_from: None,
            max_saved_file: 0,
            save_interval: cfg.decision_save_interval.get(),
            next_save: None,
            policy_names,
            worker: ctx.worker,
            workers,
            shared,
            policy_attributes: policies.iter().map(|p| emit::policy_attribute(&p.name)).collect(),
            attribute_keys: wire::AttributeKeys::new(policy::attribute_keys(&policies)),
            policies,
            policy_metrics,
            no_policy_metrics: TailSamplingMetrics::policy(&ctx.registry, &ctx.id, ""),
            first_match: cfg.sample_on_first_match,
            drop_pending_on_shutdown: cfg.drop_pending_traces_on_shutdown,
            block_on_overflow: cfg.block_on_overflow,
            decision_wait: cfg.decision_wait.get(),
            after_root: cfg.decision_wait_after_root_received.map(|d| d.get()),
            max_traces,
            max_bytes: (cfg.max_memory_mib.saturating_mul(1 << 20) as usize / workers).max(1),
            traces: TraceIdMap::with_capacity_and_hasher(expected.min(max_traces), Default::default()),
            deadlines: BinaryHeap::new(),
            arrivals: VecDeque::new(),
            seq: 0,
            bytes: 0,
            published: (0, 0, 0),
            sampled_cache: DecisionCache::new(cfg.decision_cache.sampled_cache_size.div_ceil(workers)),
            dropped_cache: DecisionCache::new(cfg.decision_cache.non_sampled_cache_size.div_ceil(workers)),
            epoch: None,
            last_now: None,
            kept: KeptSpans::default(),
            scratch: Vec::new(),
            coming: TraceIdMap::default(),
            metrics: TailSamplingMetrics::new(&ctx.registry, &ctx.id),
            processor_metrics: ProcessorMetrics::new(&ctx.registry, &ctx.id, ctx.signal),
            ottl: policies_ref.then(|| OttlState {
                last: None,
                metrics: crate::telemetry::OttlMetrics::new(&ctx.registry, &ctx.id, ctx.signal),
            }),
        };
        if let Some(dir) = &ctx.storage_dir {
            p.open_storage(cfg, dir);
        }
        p
    }

    /// Opens this instance's spill store and its decision journal (the
    /// saved decisions are read later, before the first batch: see
    /// [`Self::restore_saved`]). Runs once, when the pipeline starts (not
    /// on the data path). A store that does not open is logged and counted,
    /// and the instance runs without (deciding early at `max_memory_mib`).
    fn open_storage(&mut self, cfg: &TailSamplingConfig, dir: &std::path::Path) {
        let max_disk = (cfg.max_disk_mib.saturating_mul(1 << 20) / self.workers as u64).max(1);
        // Segments small enough that released space is given back often.
        let segment = (max_disk / 8).clamp(64 << 10, 16 << 20);
        match spill::SpillStore::open(dir, max_disk, segment) {
            Ok((store, opened)) => {
                if opened.stale_files > 0 {
                    self.metrics.spill_stale_bytes.add(opened.stale_bytes);
                    tracing::warn!(dir = %store.dir().display(), files = opened.stale_files, bytes = opened.stale_bytes,
                        "tail_sampling: deleted spilled spans of traces a stopped process never decided");
                }
                self.spill = Some(Spill { store, candidates: VecDeque::new(), warned: false });
            }
            Err(e) => {
                self.metrics.storage_errors.inc();
                tracing::error!(dir = %dir.display(), error = %e,
                    "tail_sampling: cannot open the spill storage; traces are decided early at max_memory_mib");
            }
        }
        let total = cfg.decision_cache.sampled_cache_size as u64 + cfg.decision_cache.non_sampled_cache_size as u64;
        // A file holds a snapshot of the caches and at most as many entries
        // again appended (see `saved.rs`), 27 bytes an entry at most.
        self.max_saved_file = total.saturating_mul(2 * saved::KEPT_LEN as u64).saturating_add(16 << 20);
        let here = self.sampled_cache.capacity() + self.dropped_cache.capacity();
        self.journal = Some(saved::Journal::new(dir.join(format!("decisions-{}", self.worker)), here));
        self.restore_from = Some(dir.to_path_buf());
    }

    /// Reads the saved decisions, once for all the processor's instances
    /// (the first to get here reads every file), and inserts those routed
    /// to this one. Runs before the instance's first batch, tick or flush:
    /// after the pipeline this one replaces (if any) has saved.
    fn restore_saved(&mut self) {
        let Some(dir) = self.restore_from.take() else { return };
        let loaded = self.shared.saved_decisions(self.workers, || {
            let mut all = saved::Loaded::default();
            let files = match std::fs::read_dir(&dir) {
                Ok(rd) => rd
                    .filter_map(Result::ok)
                    .filter(|e| {
                        let n = e.file_name();
                        let n = n.to_string_lossy();
                        n.starts_with("decisions-") && !n.ends_with(".tmp")
                    })
                    .map(|e| e.path())
                    .collect::<Vec<_>>(),
                Err(_) => Vec::new(),
            };
            for path in files {
                match saved::read(&path, self.max_saved_file) {
                    Ok(loaded) => {
                        if loaded.corrupt > 0 {
                            self.metrics.restore_corrupt.add(loaded.corrupt);
                            tracing::warn!(file = %path.display(), damaged = loaded.corrupt,
                                "tail_sampling: skipped damaged parts of a saved decision file");
                        }
                        all.kept.extend(loaded.kept);
                        all.dropped.extend(loaded.dropped);
                    }
                    Err(e) => {
                        self.metrics.storage_errors.inc();
                        tracing::warn!(file = %path.display(), error = %e, "tail_sampling: cannot read saved decisions");
                    }
                }
            }
            all
        });
        if let Some(loaded) = loaded {
            self.restore(&loaded);
        }
    }

    /// Inserts the saved decisions that route to this instance.
    fn restore(&mut self, loaded: &saved::Loaded) {
        let mine = |id: &[u8; 16]| super::trace_worker(id, self.workers) == self.worker;
        let (mut kept, mut dropped) = (0, 0);
        for k in loaded.kept.iter().filter(|k| mine(&k.id)) {
            let policy =
                k.policy.as_deref().and_then(|n| self.policy_names.iter().position(|p| p == n)).unwrap_or(usize::MAX);
            let prob = k
                .threshold
                .and_then(crate::processors::sampling::Threshold::from_value)
                .map_or(Prob::Unknown, Prob::Known);
            self.sampled_cache.insert(k.id, Kept { policy, prob });
            kept += 1;
        }
        for id in loaded.dropped.iter().filter(|id| mine(id)) {
            self.dropped_cache.insert(*id, ());
            dropped += 1;
        }
        self.metrics.restored_sampled.add(kept);
        self.metrics.restored_not_sampled.add(dropped);
    }

    /// Writes the decisions made since the last save (or the whole caches,
    /// when the journal says so) to the storage. A failed save is counted
    /// and, on a timer (`now`), tried again one interval later.
    fn save_decisions(&mut self, now: Option<Instant>) {
        self.next_save = None;
        let Some(journal) = self.journal.as_mut() else { return };
        let (sampled, dropped, names) = (&self.sampled_cache, &self.dropped_cache, &self.policy_names);
        let caches = || {
            let mut kept = Vec::with_capacity(sampled.len() * saved::KEPT_LEN);
            for (id, k) in sampled.iter() {
                saved::encode_kept(&mut kept, id, policy_index(k.policy), k.prob.threshold_value());
            }
            let mut gone = Vec::with_capacity(dropped.len() * saved::DROPPED_LEN);
            for (id, ()) in dropped.iter() {
                gone.extend_from_slice(id);
            }
            (kept, gone)
        };
        match journal.save(names, caches) {
            Ok(saved::Saved::Nothing) => {}
            Ok(saved::Saved::Appended) => self.metrics.decision_saves_appended.inc(),
            Ok(saved::Saved::Snapshot) => self.metrics.decision_saves_snapshot.inc(),
            Err(e) => {
                self.metrics.decision_saves_failed.inc();
                self.next_save = now.map(|n| n + self.save_interval);
                tracing::error!(file = %journal.path().display(), error = %e,
                    "tail_sampling: cannot save the decision caches; late spans after a restart may be decided anew");
            }
        }
    }

    /// Removes the decision files of workers that no longer exist (they
    /// were read at start; their entries are in this run's files now).
    fn remove_stale_decision_files(&self) {
        let Some(dir) = self.journal.as_ref().and_then(|j| j.path().parent()) else { return };
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name();
            let n = name.to_string_lossy();
            let stale =
                n.strip_prefix("decisions-").and_then(|w| w.parse::<usize>().ok()).is_some_and(|w| w >= self.workers);
            if stale {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }

    /// Moves the spans in memory of the oldest trace that has any to the
    /// spill store.
    fn spill_oldest(&mut self) -> SpillOutcome {
        let Some(sp) = self.spill.as_mut() else { return SpillOutcome::Nothing };
        while let Some((seq, id)) = sp.candidates.pop_front() {
            let Some(entry) = self.traces.get_mut(&id) else { continue };
            if entry.arrival_seq != seq || entry.buf.is_empty() {
                continue;
            }
            let (body, spans) = entry.spill_body();
            match sp.store.append(&id, spans, &body) {
                Ok(r) => {
                    entry.spilled.push(r);
                    entry.buf = Vec::new();
                    entry.groups = Vec::new();
                    let old = entry.bytes;
                    entry.bytes = entry.heap_cost();
                    self.bytes = (self.bytes + entry.bytes).saturating_sub(old);
                    self.metrics.spilled_traces.inc();
                    self.metrics.spilled_spans.add(u64::from(spans));
                    return SpillOutcome::Spilled;
                }
                Err(spill::SpillError::Full) => {
                    sp.candidates.push_front((seq, id));
                    return SpillOutcome::Full;
                }
                Err(spill::SpillError::Io(e)) => {
                    sp.candidates.push_front((seq, id));
                    if !sp.warned {
                        sp.warned = true;
                        tracing::error!(dir = %sp.store.dir().display(), error = %e,
                            "tail_sampling: cannot write to the spill storage; deciding the oldest traces early");
                    }
                    return SpillOutcome::Failed;
                }
            }
        }
        SpillOutcome::Nothing
    }

    /// Accounted bytes of buffered spans in this instance.
    pub fn accounted_bytes(&self) -> usize {
        self.bytes
    }

    pub fn traces_in_memory(&self) -> usize {
        self.traces.len()
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn ingest(&mut self, scope: &Arc<ScopeGroup>, span: Span, now: Instant) {
        self.ingest_span(scope, SpanIn::Decoded(span), now);
    }

    fn ingest_span(&mut self, scope: &Arc<ScopeGroup>, span: SpanIn<'_>, now: Instant) {
        let id = trace_key(span.trace_id());
        let is_root = span.is_root();
        let root_seq = if is_root && self.after_root.is_some() { self.next_seq() } else { 0 };
        // One lookup for a span of a trace already buffered (most spans).
        let entry = match self.traces.entry(id) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                if let Some(k) = self.sampled_cache.get(&id).copied() {
                    self.metrics.cache_hit_sampled.inc();
                    self.metrics.late_kept.inc();
                    let policy = self.policy_attributes.get(k.policy).map_or(&[][..], Vec::as_slice);
                    let bytes = span.encoded(&mut self.scratch);
                    self.kept.push(scope, bytes, policy, k.prob, &mut TsCache::default());
                    return;
                }
                if self.dropped_cache.get(&id).is_some() {
                    self.metrics.cache_hit_not_sampled.inc();
                    self.metrics.late_dropped.inc();
                    self.processor_metrics.dropped.inc();
                    return;
                }
                self.metrics.cache_miss.inc();
                self.seq += 1;
                let arrival = self.seq;
                let deadline = now + self.decision_wait;
                self.arrivals.push_back((deadline, arrival, id));
                self.bytes += TRACE_OVERHEAD;
                if let Some(sp) = self.spill.as_mut() {
                    sp.candidates.push_back((arrival, id));
                }
                v.insert(TraceEntry {
                    buf: Vec::new(),
                    groups: Vec::new(),
                    facts: Facts::default(),
                    bytes: TRACE_OVERHEAD,
                    arrival_seq: arrival,
                    deadline_seq: arrival,
                    deadline,
                    root_seen: false,
                    spilled: Vec::new(),
                })
            }
        };
        if entry.buf.is_empty() && !entry.spilled.is_empty() {
            // Spilled before: its new spans may be spilled in turn.
            if let Some(sp) = self.spill.as_mut() {
                sp.candidates.push_back((entry.arrival_seq, id));
            }
        }
        let before = entry.heap_cost();
        let mut cost = 0;
        if entry.groups.last().is_none_or(|(g, _)| !Arc::ptr_eq(g, scope)) {
            // `bytes_limiting` sizes as the Collector's copy of the trace:
            // each request's resource once, each of its scopes once.
            if let Some(rsize) = scope.resource.size {
                let new_resource = entry.groups.last().is_none_or(|(g, _)| !Arc::ptr_eq(&g.resource, &scope.resource));
                entry.facts.size += scope.size + if new_resource { rsize } else { 0 };
            }
            entry.groups.push((scope.clone(), entry.buf.len()));
            entry.facts.flags.union(&scope.resource.matches);
            cost += scope.bytes;
        }
        let sized = scope.resource.size.is_some();
        match span {
            SpanIn::Decoded(mut span) => {
                if sized {
                    entry.facts.size += policy::span_size(&span);
                }
                entry.facts.observe(&id, &span, &self.policies);
                if let Some(o) = self.ottl.as_mut() {
                    o.observe(scope, &mut span, &self.policies, &mut entry.facts.flags);
                }
                append(&mut entry.buf, &span);
            }
            SpanIn::Wire(w) => {
                if sized {
                    // The request was checked: the span decodes.
                    entry.facts.size += Span::decode(w.bytes).map_or(0, |s| policy::span_size(&s));
                }
                entry.facts.observe_facts(&id, &w.facts(), &self.policies);
                if let Some(o) = self.ottl.as_mut() {
                    // Only for `ottl_condition` policies: they read any field.
                    if let Ok(mut decoded) = Span::decode(w.bytes) {
                        o.observe(scope, &mut decoded, &self.policies, &mut entry.facts.flags);
                    }
                }
                append_bytes(&mut entry.buf, w.bytes, || self.coming.get(&id).copied().unwrap_or(0));
            }
        }
        // Buffers only grow while the trace is buffered.
        cost += entry.heap_cost().saturating_sub(before);
        entry.bytes += cost;
        self.bytes += cost;
        if let (true, false, Some(after)) = (is_root, entry.root_seen, self.after_root) {
            entry.root_seen = true;
            let d = now + after;
            if d < entry.deadline {
                entry.deadline = d;
                entry.deadline_seq = root_seq;
                self.deadlines.push(Reverse((d, root_seq, id)));
            }
        }
        self.enforce_bounds(now);
    }

    /// Reads one encoded `ResourceSpans`: its scopes go to `groups`, its
    /// spans (with the index of their scope in `groups`) to `spans`.
    fn read_resource_spans<'a>(
        &self,
        rs: &'a [u8],
        groups: &mut Vec<Arc<ScopeGroup>>,
        spans: &mut Vec<(usize, &'a [u8])>,
    ) {
        let mut resource: Option<Vec<u8>> = None;
        let mut schema_url: &[u8] = &[];
        let mut scopes: Vec<&[u8]> = Vec::new();
        for (field, value) in fields(rs) {
            match (field, value) {
                // Repeated occurrences of a message field merge, as their
                // concatenation decodes.
                (1, WireValue::Bytes(r)) => resource.get_or_insert_with(Vec::new).extend_from_slice(r),
                (2, WireValue::Bytes(ss)) => scopes.push(ss),
                (3, WireValue::Bytes(u)) => schema_url = u,
                _ => {}
            }
        }
        let resource = ResourceGroup::from_wire(&self.policies, resource, schema_url);
        for ss in scopes {
            let mut scope: Option<Vec<u8>> = None;
            let mut scope_schema: &[u8] = &[];
            for (field, value) in fields(ss) {
                match (field, value) {
                    (1, WireValue::Bytes(sc)) => scope.get_or_insert_with(Vec::new).extend_from_slice(sc),
                    (2, WireValue::Bytes(span)) => spans.push((groups.len(), span)),
                    (3, WireValue::Bytes(u)) => scope_schema = u,
                    _ => {}
                }
            }
            groups.push(ScopeGroup::new(&resource, scope, scope_schema.to_vec()));
        }
    }

    /// Whether an arrival-queue entry still stands for its trace (the trace
    /// was not decided, early or by a shortened deadline, since).
    fn arrival_is_live(&self, seq: u64, id: &[u8; 16]) -> bool {
        self.traces.get(id).is_some_and(|t| t.arrival_seq == seq)
    }

    fn enforce_bounds(&mut self, now: Instant) {
        // block_on_overflow: every trace waits its decision_wait; only the
        // memory bound decides early.
        while !self.block_on_overflow && self.traces.len() > self.max_traces {
            if !self.decide_oldest(now, Early::NumTraces) {
                break;
            }
        }
        while self.bytes > self.max_bytes {
            // With storage, the oldest traces' spans move to disk; only when
            // that cannot be done is a trace decided before its time.
            let why = match self.spill_oldest() {
                SpillOutcome::Spilled => continue,
                SpillOutcome::Nothing => Early::Memory,
                SpillOutcome::Full => Early::Disk,
                SpillOutcome::Failed => Early::SpillFailed,
            };
            if !self.decide_oldest(now, why) {
                break;
            }
        }
    }

    fn decide_oldest(&mut self, now: Instant, why: Early) -> bool {
        while let Some((_, seq, id)) = self.arrivals.pop_front() {
            if self.arrival_is_live(seq, &id) {
                match why {
                    Early::Memory => self.metrics.early_memory.inc(),
                    Early::NumTraces => self.metrics.early_num_traces.inc(),
                    Early::Disk => self.metrics.early_disk.inc(),
                    Early::SpillFailed => self.metrics.early_spill_failed.inc(),
                }
                self.decide(id, now);
                return true;
            }
        }
        false
    }

    fn decide(&mut self, id: [u8; 16], now: Instant) {
        let Some(entry) = self.traces.remove(&id) else { return };
        self.bytes = self.bytes.saturating_sub(entry.bytes);
        let view = TraceView { trace_id: &id, facts: &entry.facts, now };
        let pm = &self.policy_metrics;
        let outcome: Outcome = policy::decide(&mut self.policies, self.first_match, &view, |i, d: Decision| {
            if let Some(m) = pm.get(i) {
                match d.label() {
                    "true" => m.evaluated_sampled.inc(),
                    _ => m.evaluated_not_sampled.inc(),
                }
            }
        });
        let m = outcome.policy.and_then(|i| self.policy_metrics.get(i)).unwrap_or(&self.no_policy_metrics);
        if outcome.keep {
            m.decided_kept.inc();
            self.metrics.global_sampled.inc();
            let policy = outcome.policy.unwrap_or(0);
            let evicted = self.sampled_cache.insert(id, Kept { policy, prob: outcome.prob });
            self.metrics.cache_evicted_sampled.add(evicted);
            if self.sampled_cache.capacity() > 0 {
                if let Some(j) = self.journal.as_mut() {
                    j.kept(&id, policy_index(policy), outcome.prob.threshold_value());
                    self.next_save.get_or_insert(now + self.save_interval);
                }
            }
            if !entry.spilled.is_empty() {
                self.emit_spilled(&id, &entry.spilled, policy, outcome.prob);
            }
            let attribute = self.policy_attributes.get(policy).map_or(&[][..], Vec::as_slice);
            let mut ts = TsCache::default();
            for (scope, span) in entry.spans() {
                self.kept.push(scope, span, attribute, outcome.prob, &mut ts);
            }
        } else {
            m.decided_dropped.inc();
            self.metrics.global_not_sampled.inc();
            self.processor_metrics.dropped.add(entry.facts.spans);
            let evicted = self.dropped_cache.insert(id, ());
            self.metrics.cache_evicted_not_sampled.add(evicted);
            if self.dropped_cache.capacity() > 0 {
                if let Some(j) = self.journal.as_mut() {
                    j.dropped(&id);
                    self.next_save.get_or_insert(now + self.save_interval);
                }
            }
        }
        if let Some(sp) = self.spill.as_mut() {
            for r in &entry.spilled {
                sp.store.release(r);
            }
        }
    }

    /// Reads a kept trace's spilled records back and sends their spans on,
    /// before the spans still in memory (they came first). A record that
    /// cannot be read loses its spans, counted and logged.
    fn emit_spilled(&mut self, id: &[u8; 16], refs: &[spill::SpillRef], policy: usize, prob: Prob) {
        let Some(sp) = self.spill.as_ref() else { return };
        let bodies: Vec<_> = refs.iter().map(|r| (r.spans, sp.store.read(r, id))).collect();
        let attribute = self.policy_attributes.get(policy).cloned().unwrap_or_default();
        let mut ts = TsCache::default();
        for (spans, body) in bodies {
            let body = match body {
                Ok(b) => b,
                Err(e) => {
                    self.metrics.spill_read_lost_spans.add(u64::from(spans));
                    self.processor_metrics.dropped.add(u64::from(spans));
                    tracing::error!(error = ?e, spans, "tail_sampling: a spilled part of a kept trace cannot be read back; its spans are lost");
                    continue;
                }
            };
            let mut groups: Vec<Arc<ScopeGroup>> = Vec::new();
            let mut found: Vec<(usize, &[u8])> = Vec::new();
            for (field, value) in fields(&body) {
                if let (1, WireValue::Bytes(rs)) = (field, value) {
                    self.read_resource_spans(rs, &mut groups, &mut found);
                }
            }
            for (g, span) in found {
                self.kept.push(&groups[g], span, &attribute, prob, &mut ts);
            }
        }
    }

    /// Drops stale heap entries once they outnumber live traces, so early
    /// decisions cannot grow the heap without bound. (The arrival queue
    /// needs no such care: each trace has one entry, popped at its deadline
    /// or by an early decision.)
    fn compact(&mut self) {
        let live = self.traces.len();
        if self.deadlines.len() > 2 * live + 1024 {
            let traces = &self.traces;
            self.deadlines.retain(|Reverse((_, seq, id))| traces.get(id).is_some_and(|t| t.deadline_seq == *seq));
        }
        if let Some(sp) = self.spill.as_mut() {
            if sp.candidates.len() > 2 * live + 1024 {
                let traces = &self.traces;
                sp.candidates
                    .retain(|(seq, id)| traces.get(id).is_some_and(|t| t.arrival_seq == *seq && !t.buf.is_empty()));
            }
        }
    }

    fn emit(&mut self, out: &mut Vec<Payload>) {
        self.compact();
        let (traces, bytes) = (self.traces.len() as i64, self.bytes as i64);
        let disk = self.spill.as_ref().map_or(0, |s| s.store.file_bytes() as i64);
        self.metrics.traces_in_memory.add(traces - self.published.0);
        self.metrics.bytes_in_memory.add(bytes - self.published.1);
        self.metrics.bytes_on_disk.add(disk - self.published.2);
        self.published = (traces, bytes, disk);
        out.extend(self.kept.take().map(Payload::Encoded));
    }

    /// Buffers the spans of a decoded request.
    fn ingest_request(&mut self, batch: Batch, now: Instant) {
        let Batch::Traces(req) = batch else { return };
        for rs in req.resource_spans {
            let resource = ResourceGroup::new(&self.policies, rs.resource, rs.schema_url);
            for ss in rs.scope_spans {
                let scope = ScopeGroup::new(&resource, ss.scope.map(|s| s.encode_to_vec()), ss.schema_url.into_bytes());
                for span in ss.spans {
                    self.ingest(&scope, span, now);
                }
            }
        }
    }

    /// Buffers the spans of a checked request, as received: each span's
    /// bytes are copied into its trace's buffer, and only the fields the
    /// policies read are looked at.
    fn ingest_encoded(&mut self, batch: &EncodedBatch, now: Instant) {
        let mut groups: Vec<Arc<ScopeGroup>> = Vec::new();
        let mut spans: Vec<(usize, &[u8])> = Vec::new();
        for chunk in batch.chunks() {
            for (field, value) in fields(chunk) {
                if let (1, WireValue::Bytes(rs)) = (field, value) {
                    self.read_resource_spans(rs, &mut groups, &mut spans);
                }
            }
        }
        // What each trace has in this request, so its buffer grows once for
        // the request rather than span by span.
        self.coming.clear();
        for (_, span) in &spans {
            if let Some(id) = wire::peek_trace_id(span) {
                *self.coming.entry(id).or_default() += delimited_len(span);
            }
        }
        for (group, span) in spans {
            self.ingest_span(&groups[group], SpanIn::Wire(wire::WireSpan::read(span, &self.attribute_keys)), now);
        }
        // Keep the table for the next request unless one request made it large.
        if self.coming.capacity() > 4096 {
            self.coming = TraceIdMap::default();
        }
    }
}

/// What the worker instances of one processor in one pipeline share, kept
/// in the context's slot: the rate limits and budgets of the policies
/// ([`policy::SharedState`]) and the saved decisions, read once for all.
#[derive(Default)]
pub struct ProcessorShared {
    policy: policy::SharedState,
    saved: std::sync::Mutex<SavedRead>,
}

/// The saved decisions of a processor's instances, read by the first one
/// that needs them (reading once, before any instance writes, means no
/// instance reads a file another has rewritten already).
#[derive(Default)]
enum SavedRead {
    #[default]
    Unread,
    /// Read; `left` instances have still to take their share.
    Read { loaded: Arc<saved::Loaded>, left: usize },
    /// Every instance took its share; the memory is given back.
    Done,
}

impl ProcessorShared {
    /// The saved decisions (read with `read` by the first caller of the
    /// `instances`), or `None` once every instance took them.
    fn saved_decisions(&self, instances: usize, read: impl FnOnce() -> saved::Loaded) -> Option<Arc<saved::Loaded>> {
        let mut state = self.saved.lock().unwrap_or_else(|e| e.into_inner());
        if matches!(*state, SavedRead::Unread) {
            *state = SavedRead::Read { loaded: Arc::new(read()), left: instances.max(1) };
        }
        match &mut *state {
            SavedRead::Read { loaded, left } => {
                let loaded = loaded.clone();
                *left -= 1;
                if *left == 0 {
                    *state = SavedRead::Done;
                }
                Some(loaded)
            }
            _ => None,
        }
    }
}

/// The state shared by the worker instances of one processor in one
/// pipeline, kept in the context's slot.
fn shared_state(ctx: &ProcessorContext) -> Arc<ProcessorShared> {
    let any = ctx.shared.get_or_init(|| Arc::new(ProcessorShared::default())).clone();
    // Only this processor fills its slot; another type there would be a
    // pipeline bug, and a private state keeps this instance working.
    any.downcast::<ProcessorShared>().unwrap_or_default()
}

/// A policy index as saved (`saved::NO_POLICY` when it does not fit).
fn policy_index(policy: usize) -> u16 {
    u16::try_from(policy).ok().filter(|i| *i != saved::NO_POLICY).unwrap_or(saved::NO_POLICY)
}

/// The batches of `payloads`, decoded: the `Batch` form of the processor's
/// output, for callers that want it so.
fn decoded(payloads: Vec<Payload>, out: &mut Vec<Batch>) {
    for p in payloads {
        match p.into_decoded() {
            Ok(b) => out.push(b),
            // What `emit` writes decodes (see `emit.rs`); cannot happen.
            Err(e) => tracing::error!(error = %e, "cannot decode kept spans; dropping them"),
        }
    }
}

/// Trace IDs are 16 bytes; a malformed one is padded or cut to 16 so it
/// still groups (with others equally malformed) instead of being refused.
fn trace_key(id: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 16];
    let n = id.len().min(16);
    k[..n].copy_from_slice(&id[..n]);
    k
}

impl Processor for TailSamplingProcessor {
    fn process(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        let mut payloads = Vec::new();
        self.process_payload(Payload::Decoded(batch), now, &mut payloads);
        decoded(payloads, out);
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Batch>) {
        let mut payloads = Vec::new();
        self.tick_payload(now, &mut payloads);
        decoded(payloads, out);
    }

    fn flush(&mut self, out: &mut Vec<Batch>) {
        let mut payloads = Vec::new();
        self.flush_payload(&mut payloads);
        decoded(payloads, out);
    }

    /// Buffers a request's spans, decoded or as received, and sends on what
    /// deadlines that passed meanwhile release, encoded. tail_sampling is
    /// registered for traces only; anything else is handed on as it came.
    fn process_payload(&mut self, payload: Payload, now: Instant, out: &mut Vec<Payload>) {
        if payload.signal() != Signal::Traces {
            return out.push(payload);
        }
        self.epoch.get_or_insert(now);
        self.restore_saved();
        match payload {
            Payload::Decoded(batch) => self.ingest_request(batch, now),
            Payload::Encoded(batch) => self.ingest_encoded(&batch, now),
        }
        // Deadlines that passed while this batch came in are honoured now.
        self.tick_inner(now);
        self.emit(out);
    }

    fn tick_payload(&mut self, now: Instant, out: &mut Vec<Payload>) {
        self.restore_saved();
        self.tick_inner(now);
        self.emit(out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        let queued = self.arrivals.front().map(|(d, _, _)| *d);
        let shortened = self.deadlines.peek().map(|Reverse((d, _, _))| *d);
        queued.into_iter().chain(shortened).chain(self.next_save).min()
    }

    fn flush_payload(&mut self, out: &mut Vec<Payload>) {
        self.restore_saved();
        self.flush_inner(out);
        // Every trace is decided (or dropped): nothing spilled is needed.
        if let Some(sp) = self.spill.as_mut() {
            sp.store.clear();
            sp.candidates.clear();
        }
        self.emit(out);
        self.save_decisions(None);
        if self.worker == 0 {
            self.remove_stale_decision_files();
        }
    }
}

impl TailSamplingProcessor {
    fn flush_inner(&mut self, out: &mut Vec<Payload>) {
        // Processors never read the clock: shutdown decisions are stamped with
        // the last time seen (it only picks the rate-limit window).
        let Some(now) = self.last_now else { return self.emit(out) };
        if self.drop_pending_on_shutdown {
            // As the Collector's drop_pending_traces_on_shutdown: what is
            // still waiting is dropped undecided (and counted as dropped).
            let spans: u64 = self.traces.values().map(|t| t.facts.spans).sum();
            self.processor_metrics.dropped.add(spans);
            self.traces.clear();
            self.arrivals.clear();
            self.deadlines.clear();
            self.bytes = 0;
            return self.emit(out);
        }
        while let Some((_, seq, id)) = self.arrivals.pop_front() {
            if self.arrival_is_live(seq, &id) {
                self.decide(id, now);
            }
        }
        // Anything not reachable through the queue (cannot happen) still gets a decision.
        let rest: Vec<[u8; 16]> = self.traces.keys().copied().collect();
        for id in rest {
            self.decide(id, now);
        }
        self.deadlines.clear();
        self.emit(out);
    }
}

impl TailSamplingProcessor {
    fn tick_inner(&mut self, now: Instant) {
        self.last_now = Some(self.last_now.map_or(now, |l| l.max(now)));
        loop {
            let queued = self.arrivals.front().map(|(d, _, _)| *d).filter(|d| *d <= now);
            let shortened = self.deadlines.peek().map(|Reverse((d, _, _))| *d).filter(|d| *d <= now);
            // The earlier of the two first; a trace decided already is skipped.
            match (queued, shortened) {
                (Some(q), s) if s.is_none_or(|s| q <= s) => {
                    let Some((_, seq, id)) = self.arrivals.pop_front() else { break };
                    if self.arrival_is_live(seq, &id) {
                        self.decide(id, now);
                    }
                }
                (_, Some(_)) => {
                    let Some(Reverse((_, seq, id))) = self.deadlines.pop() else { break };
                    if self.traces.get(&id).is_some_and(|t| t.deadline_seq == seq) {
                        self.decide(id, now);
                    }
                }
                _ => break,
            }
        }
        if self.next_save.is_some_and(|d| d <= now) {
            self.save_decisions(Some(now));
        }
    }
}
