//! Builds the running agent from a validated config and runs it.
//!
//! Each pipeline is a `crossbeam-channel` (its *door*), bounded in bytes or
//! in batches by `channel_capacity` (see [`Fill`]), drained by
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
use crate::data::estimate::Estimate;
use crate::data::{Payload, Signal};
use crate::exporters::otlp_common::SendingQueueConfig;
use crate::processors::memory_limiter::MemoryGate;
use crate::queue::persistent::{queue_dir_name, PersistentOptions, PersistentQueue, DEFAULT_SEGMENT_BYTES};
use crate::queue::storage_config::FileStorageConfig;
use crate::queue::{PushOutcome, ResultWaiter, SendingQueue};
use crate::receivers::{self, AckSender, Acks, BatchSink, Refusal};
use crate::service::{AgentConfig, ChannelCapacity};
use crate::telemetry::{self, ExporterMetrics, ProcessorMetrics, Registry};
use chain::ProcessorChain;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
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
/// in every exporter queue (only for pipelines with a persistent queue),
/// and the bytes of the input's [`Fill`] it holds until a worker takes it.
struct Work {
    batch: Payload,
    ack: Option<AckSender>,
    bytes: u64,
}

/// What a pipeline's input holds against its bound (`channel_capacity`):
/// batches and bytes. A batch's bytes are its decoded size (the receiver's
/// estimate, or [`crate::data::heap::batch_bytes`]) or, kept encoded, its
/// length. One atomic update per batch in and one out.
///
/// Under a byte bound, a batch is taken while the bytes already waiting
/// plus its own stay within the bound, or when nothing waits: a batch
/// larger than the whole bound passes alone (the receivers' per-request
/// cap, `limits.max_decoded_size_mib`, and the memory limiter's headroom
/// bound it), so no request is refused for ever, and what waits never
/// exceeds the bound or one batch.
pub(crate) struct Fill {
    capacity: ChannelCapacity,
    /// Batches waiting; kept only where it is the bound or the gauge needs
    /// it (sharded inputs; a shared channel knows its own length).
    batches: AtomicUsize,
    bytes: AtomicU64,
    refused_batches: telemetry::Counter,
    refused_bytes: telemetry::Counter,
}

impl Fill {
    fn new(capacity: ChannelCapacity, registry: &Registry, pipeline: &str) -> Fill {
        let (refused_batches, refused_bytes) = telemetry::pipeline_queue_refusals(registry, pipeline);
        Fill { capacity, batches: AtomicUsize::new(0), bytes: AtomicU64::new(0), refused_batches, refused_bytes }
    }

    /// Whether an offer of `bytes` would be refused now (a hint, asked
    /// before decoding; counted when it refuses).
    fn full(&self, bytes: u64, batches_now: impl FnOnce() -> (usize, usize)) -> bool {
        let full = match self.capacity {
            ChannelCapacity::Bytes(cap) => {
                let used = self.bytes.load(Ordering::Relaxed);
                used != 0 && used.saturating_add(bytes) > cap
            }
            ChannelCapacity::Batches(_) => {
                let (waiting, cap) = batches_now();
                waiting >= cap
            }
        };
        if full {
            self.refused(self.capacity);
        }
        full
    }

    fn refused(&self, bound: ChannelCapacity) {
        match bound {
            ChannelCapacity::Batches(_) => self.refused_batches.inc(),
            ChannelCapacity::Bytes(_) => self.refused_bytes.inc(),
        }
    }

    /// Takes room for `parts` batches of `bytes` in all, whole or not at
    /// all. `count_batches`: this input keeps the batch count (sharded).
    fn take(&self, parts: usize, bytes: u64, count_batches: bool) -> Result<(), Refusal> {
        match self.capacity {
            ChannelCapacity::Bytes(cap) => {
                let fits = |used: u64| (used == 0 || used.saturating_add(bytes) <= cap).then(|| used + bytes);
                if self.bytes.fetch_update(Ordering::AcqRel, Ordering::Acquire, fits).is_err() {
                    self.refused(self.capacity);
                    return Err(Refusal::PipelineFull);
                }
            }
            ChannelCapacity::Batches(cap) => {
                if count_batches && self.batches.fetch_add(parts, Ordering::AcqRel) + parts > cap {
                    self.batches.fetch_sub(parts, Ordering::AcqRel);
                    self.refused(self.capacity);
                    return Err(Refusal::PipelineFull);
                }
                self.bytes.fetch_add(bytes, Ordering::AcqRel);
                return Ok(());
            }
        }
        if count_batches {
            self.batches.fetch_add(parts, Ordering::AcqRel);
        }
        Ok(())
    }

    /// Gives back what [`Fill::take`] took.
    fn give(&self, parts: usize, bytes: u64, count_batches: bool) {
        self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        if count_batches {
            self.batches.fetch_sub(parts, Ordering::AcqRel);
        }
    }

    /// Bytes waiting now.
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// How batches reach a pipeline's workers.
enum DoorInput {
    /// One channel all workers pull from: bounded by slots under a count
    /// capacity, unbounded (the [`Fill`] is the bound) under a byte one.
    Shared(Sender<Work>),
    /// One channel per worker; items are routed by the key of the
    /// pipeline's keyed processor. The channels are unbounded: the
    /// [`Fill`] is the bound, taken for a whole split request at once, so
    /// a request is accepted or refused whole.
    Sharded { txs: Vec<Sender<Work>>, route: shard::Route },
}

/// The entry of a pipeline, handed to receivers.
struct PipelineDoor {
    input: DoorInput,
    fill: Arc<Fill>,
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
        fill: Arc<Fill>,
        limiters: Vec<(MemoryGate, ProcessorMetrics)>,
        durable: bool,
        pass_through: bool,
        decode_failures: telemetry::Counter,
    ) -> Self {
        PipelineDoor {
            input,
            fill,
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
        self.admit_request(items, Estimate::default())
    }

    /// The memory limiters also claim `decoded_bytes` of their headroom
    /// below the hard limit, so a request that would take memory past it is
    /// refused before it is decoded; a byte-bounded channel without room for
    /// what the request would wait as refuses it before it is decoded (or,
    /// kept encoded, split by trace).
    fn admit(&self, estimate: Estimate) -> Result<(), Refusal> {
        self.admit_request(&|| estimate.items, estimate)
    }

    fn takes_encoded(&self) -> bool {
        self.pass_through
    }

    fn offer(&self, batch: Payload) -> Result<(), Refusal> {
        self.send(batch, 0, None)
    }

    fn offer_acked(&self, batch: Payload, acks: &mut Acks) -> Result<(), Refusal> {
        self.send(batch, 0, Some(acks))
    }

    fn offer_sized(&self, batch: Payload, decoded_bytes: u64, acks: &mut Acks) -> Result<(), Refusal> {
        self.send(batch, decoded_bytes, Some(acks))
    }
}

impl PipelineDoor {
    /// [`BatchSink::admit`], with the item count asked for only when something refuses.
    fn admit_request(&self, items: &dyn Fn() -> usize, estimate: Estimate) -> Result<(), Refusal> {
        let Some(_entered) = self.enter() else {
            return match self.successor.get() {
                Some(next) => next.admit_request(items, estimate),
                None => Err(Refusal::ShuttingDown),
            };
        };
        self.check(items)?;
        let decoded_bytes = estimate.decoded_bytes;
        if decoded_bytes > 0 {
            if let Some((_, metrics)) = self.limiters.iter().find(|(gate, _)| !gate.claim(decoded_bytes)) {
                metrics.refused.add(items() as u64);
                return Err(Refusal::MemoryHeadroom);
            }
        }
        // What the batch will wait as: its bytes when it stays encoded,
        // else its decoded size (as `waiting_bytes` counts it on send).
        let waiting = match (estimate.encoded_bytes, decoded_bytes) {
            (0, 0) => 0,
            (0, decoded) => decoded + std::mem::size_of::<Work>() as u64,
            (encoded, _) => encoded + std::mem::size_of::<Work>() as u64,
        };
        let full = self.fill.full(waiting, || match &self.input {
            DoorInput::Shared(tx) => (tx.len(), tx.capacity().unwrap_or(usize::MAX)),
            DoorInput::Sharded { .. } => match self.fill.capacity {
                ChannelCapacity::Batches(cap) => (self.fill.batches.load(Ordering::Relaxed), cap),
                ChannelCapacity::Bytes(_) => (0, usize::MAX),
            },
        });
        if full {
            return Err(Refusal::PipelineFull);
        }
        Ok(())
    }
}

/// The bytes a batch holds while it waits: as received for a batch kept
/// encoded, else its decoded size (`decoded_bytes` when a receiver's walk
/// gave it, measured otherwise).
fn waiting_bytes(batch: &Payload, decoded_bytes: u64) -> u64 {
    let bytes = match batch {
        Payload::Encoded(e) => e.encoded_len() as u64,
        Payload::Decoded(_) if decoded_bytes > 0 => decoded_bytes,
        Payload::Decoded(b) => crate::data::heap::batch_bytes(b),
    };
    bytes + std::mem::size_of::<Work>() as u64
}

impl PipelineDoor {
    /// `acks` is where a durable pipeline registers its completion handles;
    /// `decoded_bytes` the receiver's estimate of the batch (0: not known).
    fn send(&self, batch: Payload, decoded_bytes: u64, acks: Option<&mut Acks>) -> Result<(), Refusal> {
        let Some(_entered) = self.enter() else {
            return match self.successor.get() {
                Some(next) => next.send(batch, decoded_bytes, acks),
                None => Err(Refusal::ShuttingDown),
            };
        };
        let mut acks = acks.filter(|_| self.durable);
        self.check(|| batch.item_count())?;
        let mut ack = || acks.as_deref_mut().map(Acks::expect);
        let bytes = waiting_bytes(&batch, decoded_bytes);
        match &self.input {
            DoorInput::Shared(tx) => {
                self.fill.take(1, bytes, false)?;
                match tx.try_send(Work { batch, ack: ack(), bytes }) {
                    Ok(()) => Ok(()),
                    Err(TrySendError::Full(_)) => {
                        self.fill.give(1, bytes, false);
                        self.fill.refused(self.fill.capacity);
                        Err(Refusal::PipelineFull)
                    }
                    Err(TrySendError::Disconnected(_)) => {
                        self.fill.give(1, bytes, false);
                        Err(Refusal::ShuttingDown)
                    }
                }
            }
            DoorInput::Sharded { txs, route } => {
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
                // Each part holds its share of the request's bytes, by items.
                let n = parts.len();
                let items: usize = parts.iter().map(|(_, p)| p.item_count()).sum::<usize>().max(1);
                let shares: Vec<u64> = parts
                    .iter()
                    .map(|(_, p)| match p {
                        Payload::Encoded(e) => e.encoded_len() as u64 + std::mem::size_of::<Work>() as u64,
                        Payload::Decoded(_) => {
                            (u128::from(bytes) * p.item_count() as u128 / items as u128) as u64
                                + std::mem::size_of::<Work>() as u64
                        }
                    })
                    .collect();
                self.fill.take(n, shares.iter().sum(), true)?;
                for ((shard, part), bytes) in parts.into_iter().zip(shares) {
                    if txs[shard].send(Work { batch: part, ack: ack(), bytes }).is_err() {
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

/// Runs one worker until stopped. `fill` is its input's, given back as
/// batches are taken (`sharded`: with the batch count). With `hold`, the
/// worker first waits for its pipeline's release (see
/// `PipelineHandle::release`), at most the given time, and ends at once if
/// the pipeline is abandoned.
fn worker_loop(
    mut chain: ProcessorChain,
    rx: Receiver<Work>,
    fill: Arc<Fill>,
    sharded: bool,
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
    let release = |bytes: u64| fill.give(1, bytes, sharded);
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
                    release(work.bytes);
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
        release(work.bytes);
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

    fn sharded_door(workers: usize, capacity: usize) -> (PipelineDoor, Vec<Receiver<Work>>, Arc<Fill>) {
        sharded_door_of(workers, ChannelCapacity::Batches(capacity))
    }

    fn sharded_door_of(workers: usize, capacity: ChannelCapacity) -> (PipelineDoor, Vec<Receiver<Work>>, Arc<Fill>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| crossbeam_channel::unbounded::<Work>()).unzip();
        let fill = Arc::new(Fill::new(capacity, &Registry::default(), "traces"));
        let door = PipelineDoor::new(
            DoorInput::Sharded { txs, route: shard::Route::TraceId },
            fill.clone(),
            Vec::new(),
            false,
            false,
            telemetry::Counter::default(),
        );
        (door, rxs, fill)
    }

    /// A door on one shared channel, as `start_pipeline` builds it.
    fn shared_door(capacity: ChannelCapacity, registry: &Registry) -> (PipelineDoor, Receiver<Work>, Arc<Fill>) {
        let (tx, rx) = match capacity {
            ChannelCapacity::Batches(n) => crossbeam_channel::bounded::<Work>(n),
            ChannelCapacity::Bytes(_) => crossbeam_channel::unbounded::<Work>(),
        };
        let fill = Arc::new(Fill::new(capacity, registry, "traces"));
        let door = PipelineDoor::new(
            DoorInput::Shared(tx),
            fill.clone(),
            Vec::new(),
            false,
            false,
            telemetry::Counter::default(),
        );
        (door, rx, fill)
    }

    /// A request kept encoded, of about `len` bytes: one span with a name of that length.
    fn encoded(len: usize) -> Payload {
        let Payload::Decoded(Batch::Traces(mut req)) = traces(&[1]) else { unreachable!() };
        req.resource_spans[0].scope_spans[0].spans[0].name = "x".repeat(len);
        Payload::Encoded(crate::data::encoded::EncodedBatch::encode(&Batch::Traces(req)))
    }

    fn work_bytes(payload: &Payload) -> u64 {
        waiting_bytes(payload, 0)
    }

    /// Under a byte bound the door takes batches while what waits plus the
    /// new one fits; a batch over the whole bound passes only into an empty
    /// channel; each refusal is counted under `bound="bytes"`, and a
    /// worker taking a batch gives its bytes back.
    #[test]
    fn a_byte_bound_admits_while_the_bytes_fit_and_a_large_batch_alone() {
        let registry = Registry::default();
        let (door, rx, fill) = shared_door(ChannelCapacity::Bytes(100_000), &registry);
        let one = work_bytes(&encoded(30_000));
        assert!((30_000..31_000).contains(&one), "{one}");
        for _ in 0..3 {
            door.offer(encoded(30_000)).unwrap();
        }
        assert_eq!(fill.bytes(), 3 * one);
        // 3 × 30 KB wait: a fourth would pass 100 KB.
        assert_eq!(door.offer(encoded(30_000)), Err(Refusal::PipelineFull));
        assert_eq!(fill.bytes(), 3 * one, "a refusal takes nothing");
        assert_eq!(door.ready(&|| 1), Ok(()), "encoded offers are told by what waits: 90 KB < 100 KB");
        door.offer(encoded(5_000)).unwrap();
        let refused =
            |bound| registry.value("sluice_pipeline_queue_refused_total", &[("pipeline", "traces"), ("bound", bound)]);
        assert_eq!((refused("bytes"), refused("batches")), (Some(1.0), Some(0.0)));
        // Drained, as a worker does: every byte is given back.
        while let Ok(work) = rx.try_recv() {
            fill.give(1, work.bytes, false);
        }
        assert_eq!(fill.bytes(), 0);
        // A batch larger than the whole bound passes into the empty channel
        // (the receivers' cap bounds it), and nothing passes beside it.
        door.offer(encoded(250_000)).unwrap();
        assert!(fill.bytes() > 250_000);
        assert_eq!(door.offer(encoded(10)), Err(Refusal::PipelineFull));
        assert_eq!(door.ready(&|| 1), Err(Refusal::PipelineFull));
        assert_eq!(refused("bytes"), Some(3.0));
    }

    /// A decoded batch holds what the receiver's walk estimated; without an
    /// estimate (a connector's output) the door measures it.
    #[test]
    fn decoded_batches_count_the_estimate_or_their_measured_size() {
        let registry = Registry::default();
        let (door, rx, fill) = shared_door(ChannelCapacity::Bytes(1 << 20), &registry);
        let mut acks = Acks::default();
        door.offer_sized(traces(&[1, 2, 3]), 123_456, &mut acks).unwrap();
        assert_eq!(fill.bytes(), 123_456 + std::mem::size_of::<Work>() as u64);
        // The door asks before decoding with the estimate: 1 MiB cannot take 1 MiB more.
        let decoded = |decoded_bytes| Estimate { items: 1000, decoded_bytes, encoded_bytes: 0 };
        assert_eq!(door.admit(decoded(1 << 20)), Err(Refusal::PipelineFull));
        assert_eq!(door.admit(decoded(512 << 10)), Ok(()));
        let work = rx.try_recv().unwrap();
        fill.give(1, work.bytes, false);
        let batch = traces(&[1, 2, 3]);
        let Payload::Decoded(b) = &batch else { unreachable!() };
        let measured = crate::data::heap::batch_bytes(b);
        door.offer(batch).unwrap();
        assert_eq!(fill.bytes(), measured + std::mem::size_of::<Work>() as u64);
    }

    /// A request that will stay encoded is asked about as the bytes it will
    /// wait as, before it is split or sent: a full byte bound refuses it
    /// from the walk alone (it used to pass the question and be refused
    /// only on send, after a tail-sampling pipeline had split it by trace).
    #[test]
    fn encoded_requests_are_refused_at_admission_by_their_size() {
        let registry = Registry::default();
        let (door, _rx, fill) = shared_door(ChannelCapacity::Bytes(1 << 20), &registry);
        door.offer(encoded(600_000)).unwrap();
        let kept = |encoded_bytes| Estimate { items: 1000, decoded_bytes: 4 * encoded_bytes, encoded_bytes };
        assert_eq!(door.admit(kept(500_000)), Err(Refusal::PipelineFull));
        assert_eq!(door.admit(kept(400_000)), Ok(()));
        // What waits is the encoded size, not the decoded estimate: 400 KB
        // fits although it would be 1.6 MB decoded.
        assert!(fill.bytes() + 400_000 <= 1 << 20);
    }

    /// A count bound behaves as before sizes were accepted, counted under
    /// `bound="batches"`; the bytes gauge follows what waits all the same.
    #[test]
    fn a_count_bound_refuses_the_slot_past_it_and_still_tracks_bytes() {
        let registry = Registry::default();
        let (door, rx, fill) = shared_door(ChannelCapacity::Batches(2), &registry);
        door.offer(encoded(1000)).unwrap();
        door.offer(encoded(1000)).unwrap();
        assert_eq!(door.offer(encoded(10)), Err(Refusal::PipelineFull));
        assert_eq!(door.ready(&|| 1), Err(Refusal::PipelineFull));
        let refused =
            registry.value("sluice_pipeline_queue_refused_total", &[("pipeline", "traces"), ("bound", "batches")]);
        assert_eq!(refused, Some(2.0));
        assert_eq!(fill.bytes(), 2 * work_bytes(&encoded(1000)));
        let work = rx.try_recv().unwrap();
        fill.give(1, work.bytes, false);
        door.offer(encoded(10)).unwrap();
    }

    /// A sharded door takes a split request's bytes whole or not at all.
    #[test]
    fn a_sharded_byte_bound_takes_a_request_whole() {
        let (door, rxs, fill) = sharded_door_of(4, ChannelCapacity::Bytes(1_000_000));
        let ids: Vec<u8> = (0..40).collect();
        let mut acks = Acks::default();
        door.offer_sized(traces(&ids), 600_000, &mut acks).unwrap();
        let taken = fill.bytes();
        assert!((600_000..600_000 + 4 * 200).contains(&taken), "{taken}");
        assert_eq!(fill.batches.load(Ordering::Relaxed), 4);
        assert_eq!(door.offer_sized(traces(&ids), 600_000, &mut acks), Err(Refusal::PipelineFull));
        assert!(rxs.iter().map(|rx| rx.len()).sum::<usize>() == 4, "the refused request left nothing behind");
        let given: u64 = rxs.iter().flat_map(|rx| rx.try_iter()).map(|w| w.bytes).sum();
        assert_eq!(given, taken, "the parts' shares add up to what was taken");
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
        assert!(queued.batches.load(Ordering::Relaxed) >= 2, "reservations are released by workers, not by the door");
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
        assert_eq!((queued.batches.load(Ordering::Relaxed), queued.bytes()), (0, 0));
        assert!(rxs.iter().all(|rx| rx.is_empty()), "a refused request must leave nothing behind");
        door.offer(traces(&[7])).unwrap();
        assert_eq!(queued.batches.load(Ordering::Relaxed), 1);
        assert_eq!(door.ready(&|| 1), Ok(()));
    }
}
