//! Processors: synchronous state machines that sit between receivers and
//! exporters. They never do I/O and never read the clock; time comes in as an
//! argument, so each one is tested and benchmarked without a runtime.
//!
//! A pipeline runs its processors as one chain on each of its worker threads;
//! each worker owns its own instance of every processor, so a processor's
//! state is never shared between threads.

pub mod batch;
pub mod memory_limiter;

use crate::config::{ComponentId, ProcessorConfig};
use crate::data::{Batch, Signal};
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
}

/// Builds one instance of a processor for one worker of a pipeline.
pub fn build(id: &ComponentId, config: &ProcessorConfig, signal: Signal, registry: &Registry) -> Box<dyn Processor> {
    let name = id.to_string();
    match config {
        ProcessorConfig::Batch(c) => Box::new(batch::BatchProcessor::new(c, signal, &name, registry)),
        // The memory limiter acts at the pipeline's door (see `MemoryGate`);
        // inside the chain it passes data through.
        ProcessorConfig::MemoryLimiter(_) => Box::new(PassThrough),
    }
}

/// A processor that hands every batch on unchanged.
pub struct PassThrough;

impl Processor for PassThrough {
    fn process(&mut self, batch: Batch, _now: Instant, out: &mut Vec<Batch>) {
        out.push(batch);
    }
}
