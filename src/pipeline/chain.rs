//! One worker's processor chain: the output of each processor is the input of
//! the next, and what a timer releases in processor `i` still runs through
//! processors `i+1..`.
//!
//! Guarantee: a payload reaches each processor in a form it reads. One still
//! encoded (as the receiver checked it) stays encoded through processors that
//! read either form ([`DataForm::Either`]: `batch` appends bytes,
//! `tail_sampling` buffers spans as received) or never look inside
//! ([`DataForm::Untouched`]), and is decoded once, just before the first
//! processor that reads [`DataForm::Decoded`]; a decode failure is counted,
//! never silent. A chain of processors that never need the decoded form
//! forwards the received bytes from receiver to exporter.

use crate::data::Payload;
use crate::processors::{DataForm, Processor};
use crate::telemetry::Counter;
use std::time::Instant;

pub struct ProcessorChain {
    processors: Vec<(DataForm, Box<dyn Processor>)>,
    /// Some exporter fed by the chain sends what it must decode first: the
    /// chain's output is decoded here, on the worker, not in the exporter.
    decode_output: bool,
    decode_failures: Counter,
}

impl ProcessorChain {
    pub fn new(processors: Vec<(DataForm, Box<dyn Processor>)>, decode_output: bool, decode_failures: Counter) -> Self {
        ProcessorChain { processors, decode_output, decode_failures }
    }

    pub fn process(&mut self, payload: Payload, now: Instant, out: &mut Vec<Payload>) {
        let start = out.len();
        run_from(&mut self.processors, 0, vec![payload], now, out, &self.decode_failures);
        self.decode_from(out, start);
    }

    /// Decodes the output from `start` on, when the exporters need it so.
    fn decode_from(&self, out: &mut Vec<Payload>, start: usize) {
        if !self.decode_output || out[start..].iter().all(|p| matches!(p, Payload::Decoded(_))) {
            return;
        }
        let tail: Vec<Payload> = out.drain(start..).collect();
        for payload in tail {
            match payload.into_decoded() {
                Ok(b) => out.push(Payload::Decoded(b)),
                Err(e) => {
                    self.decode_failures.inc();
                    tracing::error!(error = %e, "cannot decode a checked batch; dropping it");
                }
            }
        }
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.processors.iter().filter_map(|(_, p)| p.next_deadline()).min()
    }

    /// Runs every timer that is due.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Payload>) {
        let start = out.len();
        for i in 0..self.processors.len() {
            if self.processors[i].1.next_deadline().is_some_and(|d| d <= now) {
                let mut released = Vec::new();
                self.processors[i].1.tick_payload(now, &mut released);
                run_from(&mut self.processors, i + 1, released, now, out, &self.decode_failures);
            }
        }
        self.decode_from(out, start);
    }

    /// Empties every processor in order, so what processor `i` flushes is
    /// still seen (and flushed) by the processors after it.
    pub fn flush(&mut self, now: Instant, out: &mut Vec<Payload>) {
        let start = out.len();
        for i in 0..self.processors.len() {
            let mut released = Vec::new();
            self.processors[i].1.flush_payload(&mut released);
            run_from(&mut self.processors, i + 1, released, now, out, &self.decode_failures);
        }
        self.decode_from(out, start);
    }
}

/// Runs `current` through `processors[start..]`, decoding a payload still
/// encoded just before the first processor that reads decoded data.
fn run_from(
    processors: &mut [(DataForm, Box<dyn Processor>)],
    start: usize,
    mut current: Vec<Payload>,
    now: Instant,
    out: &mut Vec<Payload>,
    decode_failures: &Counter,
) {
    for (form, p) in &mut processors[start..] {
        if current.is_empty() {
            return;
        }
        if *form == DataForm::Untouched {
            continue;
        }
        let mut next = Vec::with_capacity(current.len());
        for payload in current {
            let payload = match payload {
                Payload::Encoded(e) if *form == DataForm::Decoded => match e.decode() {
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
