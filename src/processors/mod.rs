//! Processors: synchronous state machines that sit between receivers and
//! exporters. They never do I/O and never read the clock; time comes in as an
//! argument, so each one is tested and benchmarked without a runtime.
//!
//! A pipeline runs its processors as one chain on each of its worker threads;
//! each worker owns its own instance of every processor, so a processor's
//! state is never shared between threads. A keyed processor declares its
//! [`StateKey`] and the pipeline routes each key to one worker.

pub mod attributes;
pub mod batch;
pub mod cardinality_limiter;
pub mod filter;
pub mod head_sampler;
pub mod log_rate_limiter;
pub mod memory_limiter;
pub mod probabilistic_sampler;
pub mod resource;
pub mod sampling;
pub mod tail_sampling;

use crate::config::{ComponentId, ProcessorConfig};
use crate::data::{Batch, Payload, Signal};
use crate::telemetry::Registry;
use std::time::Instant;

pub trait Processor: Send {
    /// Takes one batch; pushes what should go on (now or never) to `out`.
    fn process(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>);

    /// Called at or after `next_deadline`; emits what timers release.
    fn tick(&mut self, _now: Instant, _out: &mut Vec<Batch>) {}

    /// The earliest time `tick` has work to do, if any.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Emits everything held, at shutdown.
    fn flush(&mut self, _out: &mut Vec<Batch>) {}

    /// Whether [`Processor::process_payload`] reads a request as received,
    /// so the pipeline need not decode it first.
    fn takes_encoded(&self) -> bool {
        false
    }

    /// The form the pipeline calls: takes a payload, decoded or still
    /// encoded, and pushes payloads of either kind. The chain decodes a
    /// payload first unless the processor `takes_encoded` or
    /// `passes_unchanged`. The default hands an encoded payload on when the
    /// processor passes batches unchanged, and otherwise runs `process` (on
    /// an encoded payload: after decoding it, which cannot fail on a checked
    /// request, and is logged if it does).
    fn process_payload(&mut self, payload: Payload, now: Instant, out: &mut Vec<Payload>) {
        let batch = match payload {
            Payload::Encoded(e) if self.passes_unchanged() => return out.push(Payload::Encoded(e)),
            Payload::Encoded(e) => match e.decode() {
                Ok(b) => b,
                Err(e) => return tracing::error!(error = %e, "cannot decode a checked batch; dropping it"),
            },
            Payload::Decoded(b) => b,
        };
        let mut next = Vec::new();
        self.process(batch, now, &mut next);
        out.extend(next.into_iter().map(Payload::Decoded));
    }

    /// `tick` for the pipeline: what it releases, as payloads.
    fn tick_payload(&mut self, now: Instant, out: &mut Vec<Payload>) {
        let mut next = Vec::new();
        self.tick(now, &mut next);
        out.extend(next.into_iter().map(Payload::Decoded));
    }

    /// `flush` for the pipeline: what it held, as payloads.
    fn flush_payload(&mut self, out: &mut Vec<Payload>) {
        let mut next = Vec::new();
        self.flush(&mut next);
        out.extend(next.into_iter().map(Payload::Decoded));
    }

    /// Whether the processor hands every batch on unchanged (a memory
    /// limiter inside the chain): an encoded request may pass it encoded.
    fn passes_unchanged(&self) -> bool {
        false
    }
}

/// What a processor instance is built with.
#[derive(Clone)]
pub struct ProcessorContext {
    /// The component ID, the `processor` label of its metrics.
    pub id: String,
    pub signal: Signal,
    pub registry: Registry,
    /// This instance's worker, in `0..workers`. When any processor of a
    /// pipeline is keyed by trace ID, the pipeline routes every span of a
    /// trace to the same worker (by xxh3 of the trace ID), so per-trace state
    /// never needs a lock; a bound configured for the whole processor is
    /// split across the `workers` instances.
    pub worker: usize,
    pub workers: usize,
}

/// What a processor keeps per-key state by. A pipeline with several workers
/// routes every item of one key to the same worker (by xxh3 of the key), so
/// per-key state needs no lock and per-key limits hold exactly.
#[derive(Debug, Clone, PartialEq)]
pub enum StateKey {
    /// Nothing per key: any worker may take any item.
    None,
    /// Spans, by trace ID.
    TraceId,
    /// Metrics, by name.
    MetricName,
    /// Log records, by these fields (a part of the record's key: any
    /// function of a key's fields keeps all records of that key together).
    LogFields(Vec<log_rate_limiter::config::KeyField>),
}

/// The key a processor's state is kept by.
pub fn state_key(config: &ProcessorConfig) -> StateKey {
    match config {
        // Their decision is a pure function of each item.
        ProcessorConfig::Batch(_)
        | ProcessorConfig::MemoryLimiter(_)
        | ProcessorConfig::ProbabilisticSampler(_)
        | ProcessorConfig::Filter(_)
        | ProcessorConfig::Attributes(_)
        | ProcessorConfig::Resource(_) => StateKey::None,
        // Decision caches and per-trace buffers.
        ProcessorConfig::HeadSampler(_) | ProcessorConfig::TailSampling(_) => StateKey::TraceId,
        // Series tables are per resource, scope and metric name; the name
        // alone is cheap to route by and keeps each table on one worker.
        ProcessorConfig::CardinalityLimiter(_) => StateKey::MetricName,
        ProcessorConfig::LogRateLimiter(c) => StateKey::LogFields(log_rate_limiter::route_fields(c)),
    }
}

/// Builds one instance of a processor for one worker of a pipeline.
pub fn build(id: &ComponentId, config: &ProcessorConfig, ctx: &ProcessorContext) -> Box<dyn Processor> {
    let _ = id;
    match config {
        ProcessorConfig::Batch(c) => Box::new(batch::BatchStage::new(c, ctx.signal, &ctx.id, &ctx.registry)),
        // The memory limiter acts at the pipeline's door (see `MemoryGate`);
        // inside the chain it passes data through.
        ProcessorConfig::MemoryLimiter(_) => Box::new(PassThrough),
        ProcessorConfig::HeadSampler(c) => Box::new(head_sampler::HeadSampler::new(c, ctx)),
        ProcessorConfig::ProbabilisticSampler(c) => Box::new(probabilistic_sampler::ProbabilisticSampler::new(c, ctx)),
        ProcessorConfig::TailSampling(c) => Box::new(tail_sampling::TailSamplingProcessor::new(c, ctx)),
        ProcessorConfig::CardinalityLimiter(c) => Box::new(cardinality_limiter::CardinalityLimiter::new(c, ctx)),
        ProcessorConfig::LogRateLimiter(c) => Box::new(log_rate_limiter::LogRateLimiter::new(c, ctx)),
        ProcessorConfig::Filter(c) => Box::new(filter::FilterProcessor::new(c, ctx)),
        ProcessorConfig::Attributes(c) => Box::new(attributes::AttributesProcessor::new(c, ctx)),
        ProcessorConfig::Resource(c) => Box::new(resource::ResourceProcessor::new(c, ctx)),
    }
}

/// A processor that hands every batch on unchanged.
pub struct PassThrough;

impl Processor for PassThrough {
    fn process(&mut self, batch: Batch, _now: Instant, out: &mut Vec<Batch>) {
        out.push(batch);
    }

    fn passes_unchanged(&self) -> bool {
        true
    }
}
