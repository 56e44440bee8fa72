//! The `batch` processor: groups items into batches of `send_batch_size`, sends
//! a partial batch once it has waited `timeout`, and never sends one above
//! `send_batch_max_size`. Same semantics and defaults as the Collector's.

pub mod config;

/// Cutting and appending batches (decoded or still encoded) by item count.
pub use crate::data::cut::Batchable;
pub use crate::data::split;

use super::Processor;
use crate::config::describe::SettingsType;
use crate::data::{Batch, EncodedBatch, Payload, Signal};
use crate::telemetry::{BatchMetrics, Registry};
use config::BatchConfig;
use std::time::{Duration, Instant};

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::processors::{DataForm, ProcessorFactory, ProcessorSpec};

pub static FACTORY: ProcessorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Processor,
        name: "batch",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "groups items into batches by size and time",
        example: "",
    },
    settings: SettingsType::of::<BatchConfig>(),
    compile: |input| {
        let cfg: BatchConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then_some(())?;
        Some(std::sync::Arc::new(cfg))
    },
};

impl ProcessorSpec for BatchConfig {
    fn build(&self, ctx: &crate::processors::ProcessorContext) -> Result<Box<dyn Processor>, String> {
        Ok(Box::new(BatchStage::new(self, ctx.signal, &ctx.id, &ctx.registry)))
    }

    /// Encoded payloads are batched by appending their bytes.
    fn data_form(&self) -> DataForm {
        DataForm::Either
    }

    fn holds_data(&self) -> bool {
        true
    }
}

pub struct BatchProcessor<B: Batchable = Batch> {
    send_batch_size: usize,
    send_batch_max_size: usize,
    timeout: Duration,
    pending: B,
    pending_items: usize,
    deadline: Option<Instant>,
    metrics: BatchMetrics,
}

impl<B: Batchable> BatchProcessor<B> {
    pub fn new(cfg: &BatchConfig, signal: Signal, id: &str, registry: &Registry) -> Self {
        BatchProcessor {
            send_batch_size: cfg.send_batch_size,
            send_batch_max_size: cfg.send_batch_max_size,
            timeout: cfg.timeout.get(),
            pending: B::empty(signal),
            pending_items: 0,
            deadline: None,
            metrics: BatchMetrics::new(registry, id),
        }
    }

    /// Removes the first `n` items of the pending batch.
    fn take_front(&mut self, n: usize) -> B {
        let taken = self.pending.take_front(n);
        self.pending_items -= taken.items().min(self.pending_items);
        taken
    }

    fn take_all(&mut self) -> B {
        let signal = self.pending.signal();
        self.pending_items = 0;
        std::mem::replace(&mut self.pending, B::empty(signal))
    }

    /// Emits the whole pending batch, in pieces no larger than the max size.
    fn emit_all(&mut self, out: &mut Vec<B>) {
        while self.pending_items > 0 {
            let batch = if self.send_batch_max_size > 0 && self.pending_items > self.send_batch_max_size {
                self.take_front(self.send_batch_max_size)
            } else {
                self.take_all()
            };
            self.emit(batch, out);
        }
        if self.pending_items == 0 && !self.pending.is_empty() {
            // Resources or scopes with no items left: pass them on as the Collector does.
            let rest = self.take_all();
            out.push(rest);
        }
        self.deadline = None;
    }

    fn emit(&mut self, batch: B, out: &mut Vec<B>) {
        self.metrics.batch_send_size.observe(batch.items() as f64);
        out.push(batch);
    }

    /// Takes one batch; pushes what is ready to `out`.
    pub fn add(&mut self, batch: B, now: Instant, out: &mut Vec<B>) {
        let items = batch.items();
        if items == 0 {
            return;
        }
        self.pending_items += items;
        self.pending.append(batch);
        if self.timeout.is_zero() {
            self.emit_all(out);
            return;
        }
        let mut sent = false;
        while self.pending_items >= self.send_batch_size.max(1) {
            let n = if self.send_batch_max_size > 0 {
                self.send_batch_max_size.min(self.pending_items)
            } else {
                self.pending_items
            };
            let batch = if n == self.pending_items { self.take_all() } else { self.take_front(n) };
            self.metrics.size_trigger_send.inc();
            self.emit(batch, out);
            sent = true;
        }
        if self.pending_items == 0 {
            self.deadline = None;
        } else if sent || self.deadline.is_none() {
            self.deadline = Some(now + self.timeout);
        }
    }

    /// Sends the pending batch once its timeout has passed.
    pub fn on_tick(&mut self, now: Instant, out: &mut Vec<B>) {
        if let Some(deadline) = self.deadline {
            if now >= deadline && self.pending_items > 0 {
                self.metrics.timeout_trigger_send.inc();
                self.emit_all(out);
            }
        }
    }

    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Sends everything pending.
    pub fn drain(&mut self, out: &mut Vec<B>) {
        self.emit_all(out);
    }
}

/// The `batch` processor inside a processor chain: batches decoded payloads
/// as decoded and encoded ones (from a processor that hands requests on as
/// received, such as tail_sampling) as encoded, so neither is converted.
/// A pipeline carries one kind in practice; each kind has its own pending
/// batch and timer, and both count in the same metrics.
pub struct BatchStage {
    decoded: BatchProcessor<Batch>,
    encoded: BatchProcessor<EncodedBatch>,
}

impl BatchStage {
    pub fn new(cfg: &BatchConfig, signal: Signal, id: &str, registry: &Registry) -> Self {
        BatchStage {
            decoded: BatchProcessor::new(cfg, signal, id, registry),
            encoded: BatchProcessor::new(cfg, signal, id, registry),
        }
    }
}

impl Processor for BatchStage {
    fn process(&mut self, batch: Batch, now: Instant, out: &mut Vec<Batch>) {
        self.decoded.add(batch, now, out);
    }

    fn tick(&mut self, now: Instant, out: &mut Vec<Batch>) {
        self.decoded.on_tick(now, out);
    }

    fn next_deadline(&self) -> Option<Instant> {
        [self.decoded.deadline(), self.encoded.deadline()].into_iter().flatten().min()
    }

    fn flush(&mut self, out: &mut Vec<Batch>) {
        self.decoded.drain(out);
    }

    fn process_payload(&mut self, payload: Payload, now: Instant, out: &mut Vec<Payload>) {
        match payload {
            Payload::Decoded(b) => {
                let mut next = Vec::new();
                self.decoded.add(b, now, &mut next);
                out.extend(next.into_iter().map(Payload::Decoded));
            }
            Payload::Encoded(e) => {
                let mut next = Vec::new();
                self.encoded.add(e, now, &mut next);
                out.extend(next.into_iter().map(Payload::Encoded));
            }
        }
    }

    fn tick_payload(&mut self, now: Instant, out: &mut Vec<Payload>) {
        let (mut decoded, mut encoded) = (Vec::new(), Vec::new());
        self.decoded.on_tick(now, &mut decoded);
        self.encoded.on_tick(now, &mut encoded);
        out.extend(decoded.into_iter().map(Payload::Decoded).chain(encoded.into_iter().map(Payload::Encoded)));
    }

    fn flush_payload(&mut self, out: &mut Vec<Payload>) {
        let (mut decoded, mut encoded) = (Vec::new(), Vec::new());
        self.decoded.drain(&mut decoded);
        self.encoded.drain(&mut encoded);
        out.extend(decoded.into_iter().map(Payload::Decoded).chain(encoded.into_iter().map(Payload::Encoded)));
    }
}

/// The pass-through form: the same processor over batches that stay encoded.
pub type EncodedBatchProcessor = BatchProcessor<EncodedBatch>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration as CfgDuration;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn spans(n: usize) -> Batch {
        Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![Span::default(); n], ..Default::default() }],
                ..Default::default()
            }],
        })
    }

    fn processor(size: usize, max: usize, timeout_ms: u64) -> (BatchStage, Registry) {
        let reg = Registry::new();
        let cfg = BatchConfig {
            send_batch_size: size,
            send_batch_max_size: max,
            timeout: CfgDuration::from_millis(timeout_ms),
            ..Default::default()
        };
        (BatchStage::new(&cfg, Signal::Traces, "batch", &reg), reg)
    }

    fn counts(out: &[Batch]) -> Vec<usize> {
        out.iter().map(Batch::item_count).collect()
    }

    #[test]
    fn sends_when_size_is_reached() {
        let (mut p, reg) = processor(10, 0, 200);
        let t0 = Instant::now();
        let mut out = Vec::new();
        p.process(spans(4), t0, &mut out);
        p.process(spans(4), t0, &mut out);
        assert!(out.is_empty());
        p.process(spans(4), t0, &mut out);
        assert_eq!(counts(&out), vec![12]);
        assert_eq!(p.next_deadline(), None);
        assert_eq!(
            reg.value("otelcol_processor_batch_batch_size_trigger_send_total", &[("processor", "batch")]),
            Some(1.0)
        );
    }

    #[test]
    fn sends_a_partial_batch_after_the_timeout() {
        let (mut p, reg) = processor(100, 0, 200);
        let t0 = Instant::now();
        let mut out = Vec::new();
        p.process(spans(3), t0, &mut out);
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_millis(200)));
        p.tick(t0 + Duration::from_millis(199), &mut out);
        assert!(out.is_empty());
        p.tick(t0 + Duration::from_millis(200), &mut out);
        assert_eq!(counts(&out), vec![3]);
        assert_eq!(
            reg.value("otelcol_processor_batch_timeout_trigger_send_total", &[("processor", "batch")]),
            Some(1.0)
        );
    }

    #[test]
    fn never_exceeds_the_max_size() {
        let (mut p, _) = processor(10, 15, 200);
        let t0 = Instant::now();
        let mut out = Vec::new();
        p.process(spans(37), t0, &mut out);
        assert_eq!(counts(&out), vec![15, 15]);
        out.clear();
        p.flush(&mut out);
        assert_eq!(counts(&out), vec![7]);
    }

    #[test]
    fn encoded_payloads_are_batched_encoded_and_decoded_ones_decoded() {
        let (mut p, _) = processor(10, 0, 200);
        let t0 = Instant::now();
        let encoded = |n| Payload::Encoded(EncodedBatch::encode(&spans(n)));
        let mut out = Vec::new();
        p.process_payload(encoded(4), t0, &mut out);
        p.process_payload(Payload::Decoded(spans(3)), t0, &mut out);
        assert!(out.is_empty());
        p.process_payload(encoded(7), t0, &mut out);
        // The encoded 11 reached send_batch_size; the decoded 3 wait.
        assert!(matches!(out.as_slice(), [Payload::Encoded(e)] if e.item_count() == 11), "{out:?}");
        assert_eq!(p.next_deadline(), Some(t0 + Duration::from_millis(200)));
        out.clear();
        p.tick_payload(t0 + Duration::from_millis(200), &mut out);
        assert!(matches!(out.as_slice(), [Payload::Decoded(b)] if b.item_count() == 3), "{out:?}");
        out.clear();
        p.process_payload(encoded(2), t0, &mut out);
        p.flush_payload(&mut out);
        assert!(matches!(out.as_slice(), [Payload::Encoded(e)] if e.item_count() == 2), "{out:?}");
    }

    #[test]
    fn zero_timeout_sends_at_once_but_splits() {
        let (mut p, _) = processor(8192, 4, 0);
        let mut out = Vec::new();
        p.process(spans(9), Instant::now(), &mut out);
        assert_eq!(counts(&out), vec![4, 4, 1]);
    }
}
