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
pub mod transform;

use crate::config::component::{Factory, SameSettings};
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

    /// The form the chain calls: takes a payload, decoded or still
    /// encoded, and pushes payloads of either kind. The chain decodes a
    /// payload first for a processor whose spec reads [`DataForm::Decoded`],
    /// so a decoded-only processor implements `process`, `tick` and `flush`
    /// and nothing else. The default runs `process` (on an encoded payload,
    /// which only a direct caller hands it: after decoding it).
    fn process_payload(&mut self, payload: Payload, now: Instant, out: &mut Vec<Payload>) {
        let batch = match payload {
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
    /// One slot per processor per pipeline, the same for all its workers:
    /// where instances keep what they share (a rate limit for the whole
    /// processor). The first instance built fills it.
    pub shared: SharedSlot,
    /// A directory of its own in the `file_storage` extension the processor
    /// names in [`ProcessorSpec::extension_references`] (one per processor
    /// and pipeline; worker instances share it), `None` when it names none.
    pub storage_dir: Option<std::path::PathBuf>,
}

/// See [`ProcessorContext::shared`].
pub type SharedSlot = std::sync::Arc<std::sync::OnceLock<std::sync::Arc<dyn std::any::Any + Send + Sync>>>;

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

/// How a processor type is loaded: see [`crate::config::component`].
pub type ProcessorFactory = Factory<dyn ProcessorSpec>;

/// The form of data a processor reads; the chain adapts to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataForm {
    /// The decoded prost types: a payload still encoded is decoded just
    /// before it (once, a failure counted).
    Decoded,
    /// Requests as received or decoded, whichever comes
    /// ([`Processor::process_payload`]); it hands on either form.
    Either,
    /// It never looks inside: payloads pass it in the form they have (a
    /// memory limiter, which acts at the pipeline's door).
    Untouched,
}

/// A processor's compiled settings: everything checked, ready to build one
/// instance per worker. Built only from a [`ProcessorFactory`]'s `compile`.
pub trait ProcessorSpec: SameSettings + Send + Sync + std::fmt::Debug {
    /// One instance for one worker of a pipeline.
    fn build(&self, ctx: &ProcessorContext) -> Result<Box<dyn Processor>, String>;

    /// What its state is kept by; the pipeline routes items by it.
    fn state_key(&self) -> StateKey {
        StateKey::None
    }

    fn data_form(&self) -> DataForm {
        DataForm::Decoded
    }

    /// Refusal at the pipeline's door while memory is high: the limits of a
    /// memory limiter, which the pipeline checks before a request is taken.
    fn admission(&self) -> Option<&memory_limiter::Admission> {
        None
    }

    /// Whether it holds items across batches (a batcher, a tail sampler):
    /// what it holds is not yet on disk when a client is answered.
    fn holds_data(&self) -> bool {
        false
    }

    /// The extensions it names (a `storage`): the loader checks each is
    /// defined, of the right kind and started.
    fn extension_references(&self) -> Vec<crate::extensions::ExtensionReference<'_>> {
        Vec::new()
    }
}

/// The worker among `workers` that a pipeline routes trace `trace_id` to
/// (xxh3 of the ID): what a processor keyed by [`StateKey::TraceId`] needs
/// to know which of its saved per-trace state is its own.
pub fn trace_worker(trace_id: &[u8], workers: usize) -> usize {
    (xxhash_rust::xxh3::xxh3_64(trace_id) % workers.max(1) as u64) as usize
}

crate::config::component::compiled_form!(dyn ProcessorSpec);

/// A processor that hands every batch on unchanged.
pub struct PassThrough;

impl Processor for PassThrough {
    fn process(&mut self, batch: Batch, _now: Instant, out: &mut Vec<Batch>) {
        out.push(batch);
    }

    fn process_payload(&mut self, payload: Payload, _now: Instant, out: &mut Vec<Payload>) {
        out.push(payload);
    }
}
