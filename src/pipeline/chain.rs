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
use crate::telemetry::{Counter, ProcessorItemMetrics};
use std::time::Instant;

/// One processor of the chain: the form it reads, itself, and its item counts.
pub struct Stage {
    pub form: DataForm,
    pub processor: Box<dyn Processor>,
    pub items: ProcessorItemMetrics,
}

pub struct ProcessorChain {
    processors: Vec<Stage>,
    /// Some exporter fed by the chain sends what it must decode first: the
    /// chain's output is decoded here, on the worker, not in the exporter.
    decode_output: bool,
    decode_failures: Counter,
}

impl ProcessorChain {
    pub fn new(processors: Vec<Stage>, decode_output: bool, decode_failures: Counter) -> Self {
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
        self.processors.iter().filter_map(|s| s.processor.next_deadline()).min()
    }

    /// Runs every timer that is due.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<Payload>) {
        let start = out.len();
        for i in 0..self.processors.len() {
            if self.processors[i].processor.next_deadline().is_some_and(|d| d <= now) {
                let mut released = Vec::new();
                self.processors[i].processor.tick_payload(now, &mut released);
                count(&self.processors[i].items.outgoing, &released);
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
            self.processors[i].processor.flush_payload(&mut released);
            count(&self.processors[i].items.outgoing, &released);
            run_from(&mut self.processors, i + 1, released, now, out, &self.decode_failures);
        }
        self.decode_from(out, start);
    }
}

/// Runs `current` through `processors[start..]`, decoding a payload still
/// encoded just before the first processor that reads decoded data.
fn run_from(
    processors: &mut [Stage],
    start: usize,
    mut current: Vec<Payload>,
    now: Instant,
    out: &mut Vec<Payload>,
    decode_failures: &Counter,
) {
    for stage in &mut processors[start..] {
        if current.is_empty() {
            return;
        }
        count(&stage.items.incoming, &current);
        if stage.form == DataForm::Untouched {
            count(&stage.items.outgoing, &current);
            continue;
        }
        let (form, p) = (stage.form, &mut stage.processor);
        let mut next = Vec::with_capacity(current.len());
        for payload in current {
            let payload = match payload {
                Payload::Encoded(e) if form == DataForm::Decoded => match e.decode() {
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
        count(&stage.items.outgoing, &next);
        current = next;
    }
    out.extend(current);
}

fn count(counter: &Counter, payloads: &[Payload]) {
    let items: usize = payloads.iter().map(Payload::item_count).sum();
    if items > 0 {
        counter.add(items as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Batch, Signal};
    use crate::telemetry::Registry;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn spans(n: usize) -> Payload {
        Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![Span::default(); n], ..Default::default() }],
                ..Default::default()
            }],
        }))
    }

    /// Keeps the first `keep` spans of every batch.
    struct KeepFirst(usize);

    impl Processor for KeepFirst {
        fn process(&mut self, mut batch: Batch, _now: Instant, out: &mut Vec<Batch>) {
            if let Batch::Traces(r) = &mut batch {
                r.resource_spans[0].scope_spans[0].spans.truncate(self.0);
            }
            out.push(batch);
        }
    }

    #[test]
    fn every_processor_counts_the_items_it_takes_and_passes_on() {
        let reg = Registry::new();
        let stage = |id: &str, form, processor: Box<dyn Processor>| Stage {
            form,
            processor,
            items: ProcessorItemMetrics::new(&reg, id, Signal::Traces),
        };
        let mut chain = ProcessorChain::new(
            vec![
                stage("memory_limiter", DataForm::Untouched, Box::new(crate::processors::PassThrough)),
                stage("filter", DataForm::Decoded, Box::new(KeepFirst(3))),
            ],
            false,
            Counter::default(),
        );
        let mut out = Vec::new();
        chain.process(spans(10), Instant::now(), &mut out);
        chain.process(spans(2), Instant::now(), &mut out);
        assert_eq!(out.iter().map(Payload::item_count).sum::<usize>(), 5);
        let value = |name: &str, processor: &str| {
            reg.value(name, &[("processor", processor), ("otel_signal", "traces")]).unwrap_or(-1.0)
        };
        assert_eq!(value("otelcol_processor_incoming_items_total", "memory_limiter"), 12.0);
        assert_eq!(value("otelcol_processor_outgoing_items_total", "memory_limiter"), 12.0);
        assert_eq!(value("otelcol_processor_incoming_items_total", "filter"), 12.0);
        assert_eq!(value("otelcol_processor_outgoing_items_total", "filter"), 5.0);
    }
}
