//! One worker's processor chain: the output of each processor is the input of
//! the next, and what a timer releases in processor `i` still runs through
//! processors `i+1..`.
//!
//! A chain is one of two kinds, chosen when the pipeline is built:
//! - `Decoded`: processors that look inside the data. A payload still
//!   encoded is decoded just before the first processor that needs it so (a
//!   failure is counted, never silent); processors that read requests as
//!   received (`Processor::takes_encoded`: tail_sampling, batch) get it
//!   encoded, and may hand on encoded payloads of their own.
//! - `PassThrough`: the pipeline's processors never look inside (the memory
//!   limiter acts at the door, `batch` only groups) and every exporter sends
//!   OTLP protobuf, so payloads stay encoded from receiver to exporter and
//!   `batch` groups them by appending bytes.

use crate::data::{EncodedBatch, Payload};
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
                run_from(processors, 0, vec![payload], now, out, decode_failures);
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
            ProcessorChain::Decoded { processors, decode_failures } => {
                for i in 0..processors.len() {
                    if processors[i].next_deadline().is_some_and(|d| d <= now) {
                        let mut released = Vec::new();
                        processors[i].tick_payload(now, &mut released);
                        run_from(processors, i + 1, released, now, out, decode_failures);
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
            ProcessorChain::Decoded { processors, decode_failures } => {
                for i in 0..processors.len() {
                    let mut released = Vec::new();
                    processors[i].flush_payload(&mut released);
                    run_from(processors, i + 1, released, now, out, decode_failures);
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

/// Runs `current` through `processors[start..]`. A payload still encoded is
/// decoded just before the first processor that neither reads requests as
/// received nor hands them on unchanged; a decode failure is counted.
fn run_from(
    processors: &mut [Box<dyn Processor>],
    start: usize,
    mut current: Vec<Payload>,
    now: Instant,
    out: &mut Vec<Payload>,
    decode_failures: &Counter,
) {
    for p in &mut processors[start..] {
        if current.is_empty() {
            return;
        }
        let mut next = Vec::with_capacity(current.len());
        for payload in current {
            let payload = match payload {
                Payload::Encoded(e) if !p.takes_encoded() && !p.passes_unchanged() => match e.decode() {
                    Ok(b) => Payload::Decoded(b),
                    Err(e) => {
                        decode_failures.inc();
                        tracing::error!(error = %e, "cannot decode a checked batch; dropping it");
                        continue;
                    }
                },
                payload => payload,
            };
            p.process_payload(payload, now, &mut next);
        }
        current = next;
    }
    out.extend(current);
}
