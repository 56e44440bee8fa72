//! Builds the running agent from a validated config and runs it.
//!
//! Each pipeline is a bounded `crossbeam-channel` (its *door*) drained by
//! worker threads, each running its own instance of the processor chain; the
//! chain's output fans out to every exporter's sending queue as one shared
//! `Arc<Batch>`. Receivers offer to doors without blocking; a full door or an
//! active memory limit refuses the batch, and the receiver tells the client to
//! retry.
//!
//! When a pipeline feeds an exporter whose sending queue is persistent, the
//! door hands each batch to a worker with a completion handle; the worker
//! completes it once the chain has run and every resulting batch is in every
//! exporter queue (the persistent ones having written it), and the receiver
//! answers the client only then. Other pipelines pass no handle and nobody waits.
//!
//! Shutdown order: receivers stop accepting and finish in-flight requests;
//! doors close and workers drain their channel and flush their processors;
//! sending queues close and exporters drain them; all within
//! `service.shutdown_timeout`.

mod agent;
pub mod chain;
mod connector;
mod parts;
mod plan;
pub mod shard;

pub use agent::{start, ReloadError, ReloadSummary, RunningAgent, ShutdownReport};

use crate::config::ComponentId;
use crate::data::{Payload, Signal};
use crate::exporters::otlp_common::SendingQueueConfig;
use crate::processors::memory_limiter::MemoryGate;
use crate::queue::persistent::{queue_dir_name, PersistentOptions, PersistentQueue, DEFAULT_SEGMENT_BYTES};
use crate::queue::storage_config::FileStorageConfig;
use crate::queue::{PushOutcome, ResultWaiter, SendingQueue};
use crate::receivers::{self, AckSender, Acks, BatchSink, Refusal};
use crate::service::AgentConfig;
use crate::telemetry::{self, ExporterMetrics, ProcessorMetrics, Registry};
use chain::ProcessorChain;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tracing::info;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Receiver(#[from] receivers::ReceiverError),
    #[error("exporters::{id}: {message}")]
    Exporter { id: String, message: String },
    #[error("processors::{id}: {message}")]
    Processor { id: String, message: String },
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind { what: &'static str, addr: String, source: std::io::Error },
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
    #[error("{0}")]
    Other(String),
}

/// A batch on its way to a worker, with the handle to complete once it is
/// in every exporter queue (only for pipelines with a persistent queue).
struct Work {
    batch: Payload,
    ack: Option<AckSender>,
}

/// How batches reach a pipeline's workers.
enum DoorInput {
    /// One bounded channel all workers pull from.
    Shared(Sender<Work>),
    /// One channel per worker; items are routed by the key of the
    /// pipeline's keyed processor. The channels are unbounded: `queued` is
    /// the bound, reserved for a whole split request at once, so a request
    /// is accepted or refused whole.
    Sharded { txs: Vec<Sender<Work>>, queued: Arc<AtomicUsize>, capacity: usize, route: shard::Route },
}

/// The entry of a pipeline, handed to receivers.
struct PipelineDoor {
    input: DoorInput,
    closed: AtomicBool,
    /// Offers between their check of `closed` and their send; closing waits
    /// for none to be left, so nothing lands in a channel nobody drains.
    inflight: AtomicUsize,
    /// The pipeline that replaced this one in a config reload: offers that
    /// reach this door once it is closed go there instead of being refused.
    successor: std::sync::OnceLock<Arc<PipelineDoor>>,
    limiters: Vec<(MemoryGate, ProcessorMetrics)>,
    /// Some exporter of this pipeline has a persistent queue: receivers wait for it.
    durable: bool,
    /// The chain takes encoded batches (it forwards them, or its first
    /// processor reads them as received): receivers check, not decode.
    pass_through: bool,
    decode_failures: telemetry::Counter,
}

/// An offer in progress at a door; see `PipelineDoor::inflight`.
struct Entered<'a>(&'a AtomicUsize);

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PipelineDoor {
    fn new(
        input: DoorInput,
        limiters: Vec<(MemoryGate, ProcessorMetrics)>,
        durable: bool,
        pass_through: bool,
        decode_failures: telemetry::Counter,
    ) -> Self {
        PipelineDoor {
            input,
            closed: AtomicBool::new(false),
            inflight: AtomicUsize::new(0),
            successor: std::sync::OnceLock::new(),
            limiters,
            durable,
            pass_through,
            decode_failures,
        }
    }

    /// Marks an offer in progress; `None` once the door is closed.
    fn enter(&self) -> Option<Entered<'_>> {
        // SeqCst pairs with `close`: either this offer sees the door closed,
        // or `close` sees the offer in progress and waits for it.
        self.inflight.fetch_add(1, Ordering::SeqCst);
        let entered = Entered(&self.inflight);
        (!self.closed.load(Ordering::SeqCst)).then_some(entered)
    }

    /// Stops taking batches (later offers go to `successor`, or are refused
    /// as shutting down) and returns once no offer is still sending.
    fn close(&self, successor: Option<Arc<PipelineDoor>>) {
        if let Some(next) = successor {
            let _ = self.successor.set(next);
        }
        self.closed.store(true, Ordering::SeqCst);
        // An offer holds no lock and never blocks, so this wait is short.
        while self.inflight.load(Ordering::SeqCst) != 0 {
            std::thread::yield_now();
        }
    }

    /// The refusal of the memory limiters, if any; `items` is counted
    /// against the limiter that refuses.
    fn check(&self, items: impl FnOnce() -> usize) -> Result<(), Refusal> {
        if let Some((_, metrics)) = self.limiters.iter().find(|(gate, _)| gate.refusing()) {
            metrics.refused.add(items() as u64);
            return Err(Refusal::MemoryLimit);
        }
        Ok(())
    }
}

impl BatchSink for PipelineDoor {
    fn ready(&self, items: &dyn Fn() -> usize) -> Result<(), Refusal> {
        self.admit(items, 0)
    }

    /// The memory limiters also claim `decoded_bytes` of their headroom
    /// below the hard limit, so a request that would take memory past it is
    /// refused before it is decoded.
    fn admit(&self, items: &dyn Fn() -> usize, decoded_bytes: u64) -> Result<(), Refusal> {
        let Some(_entered) = self.enter() else {
            return match self.successor.get() {
                Some(next) => next.admit(items, decoded_bytes),
                None => Err(Refusal::ShuttingDown),
            };
        };
        self.check(items)?;
        if decoded_bytes > 0 {
            if let Some((_, metrics)) = self.limiters.iter().find(|(gate, _)| !gate.claim(decoded_bytes)) {
                metrics.refused.add(items() as u64);
                return Err(Refusal::MemoryHeadroom);
            }
        }
        let full = match &self.input {
            DoorInput::Shared(tx) => tx.is_full(),
            DoorInput::Sharded { queued, capacity, .. } => queued.load(Ordering::Relaxed) >= *capacity,
        };
        if full {
            return Err(Refusal::PipelineFull);
        }
        Ok(())
    }

    fn offer(&self, batch: Payload) -> Result<(), Refusal> {
        self.send(batch, None)
    }

    fn takes_encoded(&self) -> bool {
        self.pass_through
    }

    fn offer_acked(&self, batch: Payload, acks: &mut Acks) -> Result<(), Refusal> {
        self.send(batch, Some(acks))
    }
}

impl PipelineDoor {
    /// `acks` is where a durable pipeline registers its completion handles.
    fn send(&self, batch: Payload, acks: Option<&mut Acks>) -> Result<(), Refusal> {
        let Some(_entered) = self.enter() else {
            return match self.successor.get() {
                Some(next) => next.send(batch, acks),
                None => Err(Refusal::ShuttingDown),
            };
        };
        let mut acks = acks.filter(|_| self.durable);
        self.check(|| batch.item_count())?;
        let mut ack = || acks.as_deref_mut().map(Acks::expect);
        match &self.input {
            DoorInput::Shared(tx) => match tx.try_send(Work { batch, ack: ack() }) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(Refusal::PipelineFull),
                Err(TrySendError::Disconnected(_)) => Err(Refusal::ShuttingDown),
            },
            DoorInput::Sharded { txs, queued, capacity, route } => {
                // A pipeline whose processors read requests as received
                // (tail_sampling) gets them encoded and splits them so; other
                // keyed pipelines get decoded batches and this decodes nothing.
                let parts: Vec<(usize, Payload)> = match batch {
                    Payload::Encoded(e) if *route == shard::Route::TraceId => {
                        shard::split_encoded_by_trace(&e, txs.len())
                            .into_iter()
                            .map(|(i, part)| (i, Payload::Encoded(part)))
                            .collect()
                    }
                    batch => match batch.into_decoded() {
                        Ok(b) => route.split(b, txs.len()).into_iter().map(|(i, b)| (i, Payload::Decoded(b))).collect(),
                        Err(e) => {
                            self.decode_failures.inc();
                            tracing::error!(error = %e, "cannot decode a checked batch; dropping it");
                            return Ok(());
                        }
                    },
                };
                let n = parts.len();
                if queued.fetch_add(n, Ordering::AcqRel) + n > *capacity {
                    queued.fetch_sub(n, Ordering::AcqRel);
                    return Err(Refusal::PipelineFull);
                }
                for (shard, part) in parts {
                    if txs[shard].send(Work { batch: part, ack: ack() }).is_err() {
                        return Err(Refusal::ShuttingDown);
                    }
                }
                Ok(())
            }
        }
    }
}

fn open_persistent_queue(
    storage: &FileStorageConfig,
    name: &str,
    signal: Signal,
    capacity: u64,
    queue_cfg: &SendingQueueConfig,
    metrics: &ExporterMetrics,
    registry: &Registry,
) -> Result<SendingQueue, StartError> {
    let dir = std::path::Path::new(&storage.directory).join(queue_dir_name(name, signal));
    let opts = PersistentOptions {
        dir,
        fsync: storage.fsync,
        capacity: capacity.max(1),
        sizer: queue_cfg.queue_sizer(),
        max_bytes: queue_cfg.max_size_mib.max(1).saturating_mul(1 << 20),
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        policy: queue_cfg.policy(),
        name: format!("{name} ({signal})"),
    };
    let queue_metrics = telemetry::PersistentQueueMetrics::new(registry, name, signal);
    let queue = PersistentQueue::open(opts, queue_metrics, metrics.enqueue_failed.clone())
        .map_err(|e| StartError::Exporter { id: name.to_string(), message: e.to_string() })?;
    info!(exporter = %name, %signal, directory = %storage.directory, fsync = storage.fsync, pending = queue.len(), "persistent sending queue open");
    Ok(SendingQueue::persistent(queue, queue_cfg.queue_sizer(), metrics.queue_too_large.clone()))
}

/// What the agent tells a running worker, between two batches.
enum Control {
    /// Drain what the door admitted, flush the processors, end.
    Stop,
    /// Push to no exporter queue until the next set of queues arrives on
    /// `resume`: a config reload swaps the queues a kept pipeline feeds
    /// without stopping its processors. `paused` confirms the worker holds
    /// no batch for the old queues any more.
    Pause { paused: tokio::sync::oneshot::Sender<()>, resume: Receiver<Vec<Arc<SendingQueue>>> },
}

/// Hands each batch to every queue; whether every persistent queue took
/// every batch. A queue that waits for results carries `waiter` to the send.
fn fan_out(out: &mut Vec<Payload>, queues: &[Arc<SendingQueue>], waiter: Option<&Arc<ResultWaiter>>) -> bool {
    let mut stored = true;
    for batch in out.drain(..) {
        if batch.is_empty() {
            continue;
        }
        let shared = Arc::new(batch);
        for q in queues {
            let waiting = waiter.filter(|_| q.waits_for_result()).cloned();
            let outcome = q.push_waiting(shared.clone(), waiting);
            stored &= outcome == PushOutcome::Queued || !q.is_persistent();
        }
    }
    stored
}

/// Answers a receiver once the batch is in every queue (and, for queues
/// that wait for results, once every part of it is sent): `stored` false
/// fails it at once, else it completes when the last queued part ends.
fn answer(ack: Option<crate::receivers::AckSender>, out: &mut Vec<Payload>, queues: &[Arc<SendingQueue>]) {
    let waiter = ack.map(ResultWaiter::new);
    if !fan_out(out, queues, waiter.as_ref()) {
        if let Some(w) = &waiter {
            w.fail();
        }
    }
}

/// Runs one worker until stopped. `reserved` is the sharded door's count of
/// queued batches, released as batches are taken. With `hold`, the worker
/// first waits for its pipeline's release (see `PipelineHandle::release`),
/// at most the given time, and ends at once if the pipeline is abandoned.
fn worker_loop(
    mut chain: ProcessorChain,
    rx: Receiver<Work>,
    reserved: Option<Arc<AtomicUsize>>,
    control: Receiver<Control>,
    mut queues: Vec<Arc<SendingQueue>>,
    hold: Option<(Receiver<()>, std::time::Duration, String)>,
) {
    if let Some((release, limit, pid)) = hold {
        match release.recv_timeout(limit) {
            Ok(()) => {}
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                tracing::warn!(pipeline = %pid, waited = ?limit, "the pipeline this one replaces has not drained; starting anyway (its processors' files may miss its last saves)");
            }
            // Given up before it started: nothing was routed to it.
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
    }
    let release = || {
        if let Some(r) = &reserved {
            r.fetch_sub(1, Ordering::AcqRel);
        }
    };
    let mut out: Vec<Payload> = Vec::new();
    loop {
        let deadline = chain.next_deadline();
        let mut sel = crossbeam_channel::Select::new();
        let data_idx = sel.recv(&rx);
        let control_idx = sel.recv(&control);
        let ready = match deadline {
            Some(d) => sel.select_deadline(d).ok(),
            None => Some(sel.select()),
        };
        let mut ack = None;
        match ready {
            None => chain.tick(Instant::now(), &mut out),
            Some(op) if op.index() == data_idx => match op.recv(&rx) {
                Ok(work) => {
                    release();
                    ack = work.ack;
                    chain.process(work.batch, Instant::now(), &mut out)
                }
                Err(_) => break,
            },
            Some(op) => {
                debug_assert_eq!(op.index(), control_idx);
                match op.recv(&control) {
                    Ok(Control::Pause { paused, resume }) => {
                        let _ = paused.send(());
                        // A reload that gave up sends nothing: keep the old queues.
                        if let Ok(next) = resume.recv() {
                            queues = next;
                        }
                        continue;
                    }
                    Ok(Control::Stop) | Err(_) => break,
                }
            }
        }
        answer(ack, &mut out, &queues);
    }
    // Drain what was admitted before the door closed, then empty the processors.
    let now = Instant::now();
    while let Ok(work) = rx.try_recv() {
        release();
        chain.process(work.batch, now, &mut out);
        answer(work.ack, &mut out, &queues);
    }
    chain.flush(now, &mut out);
    fan_out(&mut out, &queues, None);
}

/// Whether a pipeline can keep batches encoded from receiver to exporter: its
/// processors never look inside the data (`memory_limiter` acts at the door,
/// one `batch` only groups) and every exporter sends OTLP protobuf.
/// Whether every exporter of a pipeline sends OTLP protobuf, so it can be
/// handed requests as received.
fn forwards_encoded(config: &AgentConfig, exporters: &[String]) -> bool {
    exporters.iter().all(|e| {
        ComponentId::parse(e).ok().and_then(|id| config.exporters.get(&id)).is_some_and(|c| c.forwards_encoded())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use std::time::Duration;

    fn traces(ids: &[u8]) -> Payload {
        Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: ids
                        .iter()
                        .map(|i| Span { trace_id: vec![*i; 16], span_id: vec![1; 8], ..Default::default() })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    }

    fn sharded_door(workers: usize, capacity: usize) -> (PipelineDoor, Vec<Receiver<Work>>, Arc<AtomicUsize>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| crossbeam_channel::unbounded::<Work>()).unzip();
        let queued = Arc::new(AtomicUsize::new(0));
        let door = PipelineDoor::new(
            DoorInput::Sharded { txs, queued: queued.clone(), capacity, route: shard::Route::TraceId },
            Vec::new(),
            false,
            false,
            telemetry::Counter::default(),
        );
        (door, rxs, queued)
    }

    #[test]
    fn sharded_door_sends_each_trace_to_its_worker() {
        let (door, rxs, queued) = sharded_door(3, 100);
        let ids: Vec<u8> = (0..30).collect();
        door.offer(traces(&ids)).unwrap();
        door.offer(traces(&ids)).unwrap();
        let mut total = 0;
        for (w, rx) in rxs.iter().enumerate() {
            while let Ok(Work { batch: Payload::Decoded(Batch::Traces(req)), .. }) = rx.try_recv() {
                for span in req.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                    assert_eq!(shard::shard_of(&span.trace_id, 3), w);
                    total += 1;
                }
            }
        }
        assert_eq!(total, 60);
        assert!(queued.load(Ordering::Relaxed) >= 2, "reservations are released by workers, not by the door");
    }

    #[test]
    fn only_a_durable_door_hands_out_completion_handles() {
        let (mut door, rxs, _) = sharded_door(2, 100);
        let mut acks = Acks::default();
        door.offer_acked(traces(&[1, 2, 3]), &mut acks).unwrap();
        assert!(acks.is_empty(), "a pipeline without a persistent queue makes nobody wait");
        door.durable = true;
        door.offer_acked(traces(&[1, 2, 3, 4, 5, 6]), &mut acks).unwrap();
        let parts: Vec<Work> = rxs.iter().flat_map(|rx| rx.try_iter()).filter(|w| w.ack.is_some()).collect();
        assert_eq!(parts.len(), 2, "one handle per worker the request was split over");
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap().ack.unwrap();
        let second = parts.next().unwrap().ack.unwrap();
        first.send(true).unwrap();
        second.send(false).unwrap();
        assert_eq!(rt.block_on(acks.wait(Duration::from_secs(1))), Err(Refusal::NotPersisted));
        // A handle dropped (worker gone) or never completed is a failure too.
        let mut acks = Acks::default();
        drop(acks.expect());
        assert_eq!(rt.block_on(acks.wait(Duration::from_secs(1))), Err(Refusal::NotPersisted));
        let mut acks = Acks::default();
        let _pending = acks.expect();
        assert_eq!(rt.block_on(acks.wait(Duration::from_millis(20))), Err(Refusal::NotPersisted));
        let mut acks = Acks::default();
        acks.expect().send(true).unwrap();
        assert_eq!(rt.block_on(acks.wait(Duration::from_secs(1))), Ok(()));
    }

    #[test]
    fn sharded_door_accepts_or_refuses_a_request_whole() {
        let (door, rxs, queued) = sharded_door(4, 3);
        let ids: Vec<u8> = (0..40).collect();
        // 40 traces over 4 shards need 4 slots; only 3 exist.
        assert_eq!(door.offer(traces(&ids)), Err(Refusal::PipelineFull));
        assert_eq!(queued.load(Ordering::Relaxed), 0);
        assert!(rxs.iter().all(|rx| rx.is_empty()), "a refused request must leave nothing behind");
        door.offer(traces(&[7])).unwrap();
        assert_eq!(queued.load(Ordering::Relaxed), 1);
        assert_eq!(door.ready(&|| 1), Ok(()));
    }
}
