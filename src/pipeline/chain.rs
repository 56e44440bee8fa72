//! One worker's processor chain: the output of each processor is the input of
//! the next, and what a timer releases in processor `i` still runs through
//! processors `i+1..`.
//!
//! A chain is one of two kinds, chosen when the pipeline is built:
//! - `Decoded`: processors that look inside the data. A payload that comes in
//!   still encoded is decoded first (a failure is counted, never silent),
//!   unless the first processor that does anything reads requests as
//!   received (`Processor::takes_encoded`: tail_sampling), which gets it so.
//! - `PassThrough`: the pipeline's processors never look inside (the memory
//!   limiter acts at the door, `batch` only groups) and every exporter sends
//!   OTLP protobuf, so payloads stay encoded from receiver to exporter and
//!   `batch` groups them by appending bytes.

use crate::data::{Batch, EncodedBatch, Payload};
use crate::processors::batch::EncodedBatchProcessor;
use crate::processors::Processor;
use crate::telemetry::Counter;
use std::time::Instant;

pub enum ProcessorChain {
    Decoded { processors: Vec<Box<dyn Processor>>, decode_failures: Counter },
    PassThrough { batch: Option<EncodedBatchProcessor> },
}

impl ProcessorChain {
    pub fn decoded(processors: Vec<Box<dyn Processor>>, decode_failures: Counter) -> Self {
        ProcessorChain::Decoded { processors, decode_failures }
    }

    pub fn pass_through(batch: Option<EncodedBatchProcessor>) -> Self {
        ProcessorChain::PassThrough { batch }
    }

    pub fn process(&mut self, payload: Payload, now: Instant, out: &mut Vec<Payload>) {
        match self {
            ProcessorChain::Decoded { processors, decode_failures } => {
                // A processor that reads requests as received (tail_sampling)
                // gets them encoded, past any that only hand batches on.
                let reader =
                    processors.iter().position(|p| !p.passes_unchanged()).filter(|&i| processors[i].takes_encoded());
                let payload = match (payload, reader) {
                    (Payload::Encoded(encoded), Some(i)) => {
                        let mut next = Vec::new();
                        processors[i].process_encoded(encoded, now, &mut next);
                        run_from(processors, i + 1, next, now, out);
                        return;
                    }
                    (payload, _) => payload,
                };
                let batch = match payload.into_decoded() {
                    Ok(b) => b,
                    Err(e) => {
                        decode_failures.inc();
                        tracing::error!(error = %e, "cannot decode a checked batch; dropping it");
                        return;
                    }
                };
                run_from(processors, 0, vec![batch], now, out);
            }
            ProcessorChain::PassThrough { batch: None } => out.push(Payload::Encoded(payload.into_encoded())),
            ProcessorChain::PassThrough { batch: Some(b) } => {
                let mut released: Vec<EncodedBatch> = Vec::new();
                b.add(payload.into_encoded(), now, &mut released);
                out.extend(released.into_iter().map(Payload::Encoded));
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        match self {
            ProcessorChain::Decoded { processors, .. } => processors.iter().filter_map(|p| p.next_deadline()).min(),
            ProcessorChain::PassThrough { batch } => batch.as_ref().and_then(|b| b.deadline()),
        }
    }

    /// Runs every timer that is due.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Payload>) {
        match self {
            ProcessorChain::Decoded { processors, .. } => {
                for i in 0..processors.len() {
                    if processors[i].next_deadline().is_some_and(|d| d <= now) {
                        let mut released = Vec::new();
                        processors[i].tick(now, &mut released);
                        run_from(processors, i + 1, released, now, out);
                    }
                }
            }
            ProcessorChain::PassThrough { batch: Some(b) } => {
                let mut released = Vec::new();
                b.on_tick(now, &mut released);
                out.extend(released.into_iter().map(Payload::Encoded));
            }
            ProcessorChain::PassThrough { batch: None } => {}
        }
    }

    /// Empties every processor in order, so what processor `i` flushes is
    /// still seen (and flushed) by the processors after it.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Payload>) {
        match self {
            ProcessorChain::Decoded { processors, .. } => {
                for i in 0..processors.len() {
                    let mut released = Vec::new();
                    processors[i].flush(&mut released);
                    run_from(processors, i + 1, released, now, out);
                }
            }
            ProcessorChain::PassThrough { batch: Some(b) } => {
                let mut released = Vec::new();
                b.drain(&mut released);
                out.extend(released.into_iter().map(Payload::Encoded));
            }
            ProcessorChain::PassThrough { batch: None } => {}
        }
    }
}

fn run_from(
    processors: &mut [Box<dyn Processor>],
    start: usize,
    mut current: Vec<Batch>,
    now: Instant,
    out: &mut Vec<Payload>,
) {
    for p in &mut processors[start..] {
        if current.is_empty() {
            return;
        }
        let mut next = Vec::with_capacity(current.len());
        for batch in current {
            p.process(batch, now, &mut next);
        }
        current = next;
    }
    out.extend(current.into_iter().map(Payload::Decoded));
}
