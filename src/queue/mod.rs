//! The sending queue in front of each exporter: bounded, filled by pipeline
//! worker threads (sync) and drained by the exporter's consumers (async).
//! In memory, or on disk ([`persistent`]) when the exporter's
//! `sending_queue.storage` names a `file_storage` extension.
//!
//! The bound (`queue_size`) is measured by the [`Sizer`], as the Collector's
//! `sending_queue.sizer`: requests (each batch counts 1), items (spans, data
//! points, log records) or bytes (the batch's OTLP protobuf size). It bounds
//! what waits for a consumer; what consumers hold is bounded by their number.
//!
//! Guarantee: a batch pushed is either delivered to a consumer or counted as
//! `enqueue_failed`. With the `block` policy nothing is dropped for room: a
//! full queue makes the pushing worker wait, which fills the pipeline's input,
//! which makes receivers refuse clients with retryable errors. A batch larger
//! than the whole queue can never fit and is refused at once under either
//! policy (counted as `enqueue_failed` and `sluice_exporter_queue_too_large_total`).
//! A consumer hands each batch back with [`SendingQueue::done`] once its send
//! has ended; only then does a persistent queue forget it.

pub mod batcher;
pub mod persistent;
pub mod storage_config;

use crate::data::Payload;
use crate::telemetry::Counter;
use persistent::{PersistentPush, PersistentQueue, Ticket};
use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
/// What a full sending queue does with one more batch.
pub enum FullQueuePolicy {
    /// Wait for room: the pipeline stops pulling, its input fills, and
    /// receivers answer clients with retryable errors. Nothing is dropped.
    #[default]
    Block,
    /// Drop the batch that does not fit and count it as enqueue_failed.
    DropNewest,
}

/// What a queue's bound (and a batcher's sizes) count: the Collector's `sizer`.
#[derive(Debug, Clone, Copy, serde::Deserialize, serde::Serialize, schemars::JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Sizer {
    /// Batches as they leave the pipeline; each counts 1.
    #[default]
    Requests,
    /// Spans, metric data points, log records.
    Items,
    /// Bytes of the batch as an OTLP protobuf export request.
    Bytes,
}

impl Sizer {
    /// The size of one batch.
    pub fn size_of(self, batch: &Payload) -> u64 {
        match self {
            Sizer::Requests => 1,
            Sizer::Items => batch.item_count() as u64,
            Sizer::Bytes => payload_bytes(batch),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sizer::Requests => "requests",
            Sizer::Items => "items",
            Sizer::Bytes => "bytes",
        }
    }
}

/// The protobuf size of a batch's export request.
pub fn payload_bytes(batch: &Payload) -> u64 {
    match batch {
        Payload::Decoded(b) => b.encoded_len() as u64,
        Payload::Encoded(e) => e.encoded_len() as u64,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// The queue was full and the policy is `drop_newest`; the batch is counted and gone.
    Dropped,
    /// The batch alone is larger than the queue's capacity; counted and gone.
    TooLarge,
    /// The queue is closed (shutdown); the batch is counted and gone.
    Closed,
    /// A persistent queue could not write it (disk full, I/O error); counted and gone.
    Failed,
}

/// A batch handed to a consumer; give it back to [`SendingQueue::done`].
pub struct Popped {
    pub batch: Arc<Payload>,
    ticket: Option<Ticket>,
    /// Who waits for this batch's export result (`wait_for_result`).
    pub waiter: Option<Arc<ResultWaiter>>,
}

/// The answer a receiver waits for under `wait_for_result`: completed when
/// the last holder lets go, `true` unless some holder reported a failure
/// (an export that failed, a queue that refused a part). Each batch a
/// request became, in each waiting queue, holds it until its send ends.
pub struct ResultWaiter {
    tx: Mutex<Option<tokio::sync::oneshot::Sender<bool>>>,
    ok: std::sync::atomic::AtomicBool,
}

impl ResultWaiter {
    pub fn new(tx: tokio::sync::oneshot::Sender<bool>) -> Arc<ResultWaiter> {
        Arc::new(ResultWaiter { tx: Mutex::new(Some(tx)), ok: std::sync::atomic::AtomicBool::new(true) })
    }

    /// Some part of the request was not delivered: the answer is a failure.
    pub fn fail(&self) {
        self.ok.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for ResultWaiter {
    fn drop(&mut self) {
        if let Some(tx) = self.tx.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = tx.send(self.ok.load(std::sync::atomic::Ordering::Relaxed));
        }
    }
}

/// Acknowledges a batch the queue handed out once dropped: a batcher
/// clones it into every send that carries part of the batch, so the last
/// send to end lets a persistent queue forget the record.
pub struct Receipt {
    queue: Arc<SendingQueue>,
    ticket: Option<Ticket>,
    waiter: Option<Arc<ResultWaiter>>,
}

impl Receipt {
    /// A send that carried part of this batch failed.
    pub fn fail(&self) {
        if let Some(w) = &self.waiter {
            w.fail();
        }
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        if let (Store::Disk(q), Some(t)) = (&self.queue.store, self.ticket.take()) {
            q.ack(t);
        }
    }
}

/// A batch waiting in memory: its size by the sizer, and who waits for its result.
type Entry = (Arc<Payload>, u64, Option<Arc<ResultWaiter>>);

/// The in-memory store: an unbounded channel whose bound is kept by `used`,
/// the size (by the sizer) of what waits in it.
struct Memory {
    tx: async_channel::Sender<Entry>,
    rx: async_channel::Receiver<Entry>,
    policy: FullQueuePolicy,
    used: Mutex<u64>,
    room: Condvar,
}

enum Store {
    Memory(Memory),
    Disk(Box<PersistentQueue>),
}

/// What a queue counts when it refuses a batch.
#[derive(Clone, Debug, Default)]
pub struct QueueCounters {
    /// Items of every batch not queued (full, too large, closed, write failed).
    pub enqueue_failed: Counter,
    /// Batches refused because each alone is larger than the queue's capacity.
    pub too_large: Counter,
}

pub struct SendingQueue {
    store: Store,
    sizer: Sizer,
    capacity: u64,
    counters: QueueCounters,
    /// `wait_for_result`: pushers hand a [`ResultWaiter`] along (memory only).
    wait_for_result: bool,
}

impl SendingQueue {
    /// An in-memory queue of `capacity` (at least 1) measured by `sizer`.
    pub fn new(capacity: u64, sizer: Sizer, policy: FullQueuePolicy, counters: QueueCounters) -> Self {
        let capacity = capacity.max(1);
        let (tx, rx) = async_channel::unbounded();
        let memory = Memory { tx, rx, policy, used: Mutex::new(0), room: Condvar::new() };
        SendingQueue { store: Store::Memory(memory), sizer, capacity, counters, wait_for_result: false }
    }

    /// Makes the queue carry each pusher's [`ResultWaiter`] to the send
    /// (`wait_for_result`); only an in-memory queue does.
    pub fn waiting_for_result(mut self) -> Self {
        self.wait_for_result = matches!(self.store, Store::Memory(_));
        self
    }

    /// Whether pushers should hand their [`ResultWaiter`] along.
    pub fn waits_for_result(&self) -> bool {
        self.wait_for_result
    }

    /// A queue on disk (already opened and replayed; it counts its own
    /// `enqueue_failed`).
    pub fn persistent(queue: PersistentQueue, sizer: Sizer, too_large: Counter) -> Self {
        let capacity = queue.capacity();
        let counters = QueueCounters { enqueue_failed: Counter::default(), too_large };
        SendingQueue { store: Store::Disk(Box::new(queue)), sizer, capacity, counters, wait_for_result: false }
    }

    /// Whether a pushed batch is on disk once `push` returns `Queued`.
    pub fn is_persistent(&self) -> bool {
        matches!(self.store, Store::Disk(_))
    }

    /// Called from a pipeline worker thread; may block under the `block` policy.
    pub fn push(&self, batch: Arc<Payload>) -> PushOutcome {
        self.push_waiting(batch, None)
    }

    /// As [`push`](Self::push); `waiter` is held until the batch's send
    /// ends, and told of a failure (this refusal included).
    pub fn push_waiting(&self, batch: Arc<Payload>, waiter: Option<Arc<ResultWaiter>>) -> PushOutcome {
        let outcome = self.push_inner(batch, waiter.clone());
        if outcome != PushOutcome::Queued {
            if let Some(w) = waiter {
                w.fail();
            }
        }
        outcome
    }

    fn push_inner(&self, batch: Arc<Payload>, waiter: Option<Arc<ResultWaiter>>) -> PushOutcome {
        let m = match &self.store {
            Store::Memory(m) => m,
            // The persistent queue counts its own failures.
            Store::Disk(q) => {
                return match q.push(&batch) {
                    PersistentPush::Queued => PushOutcome::Queued,
                    PersistentPush::Dropped => PushOutcome::Dropped,
                    PersistentPush::Closed => PushOutcome::Closed,
                    PersistentPush::Failed => PushOutcome::Failed,
                    PersistentPush::TooLarge => {
                        self.counters.too_large.inc();
                        PushOutcome::TooLarge
                    }
                }
            }
        };
        let items = batch.item_count() as u64;
        let outcome = self.push_memory(m, batch, waiter);
        if outcome != PushOutcome::Queued {
            self.counters.enqueue_failed.add(items);
            if outcome == PushOutcome::TooLarge {
                self.counters.too_large.inc();
            }
        }
        outcome
    }

    fn push_memory(&self, m: &Memory, batch: Arc<Payload>, waiter: Option<Arc<ResultWaiter>>) -> PushOutcome {
        let size = self.sizer.size_of(&batch);
        if size > self.capacity {
            tracing::warn!(
                size,
                capacity = self.capacity,
                sizer = self.sizer.as_str(),
                "batch larger than the whole sending queue; refusing it"
            );
            return PushOutcome::TooLarge;
        }
        let mut used = m.used.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if m.tx.is_closed() {
                return PushOutcome::Closed;
            }
            if *used + size <= self.capacity {
                break;
            }
            match m.policy {
                FullQueuePolicy::DropNewest => return PushOutcome::Dropped,
                FullQueuePolicy::Block => used = m.room.wait(used).unwrap_or_else(|p| p.into_inner()),
            }
        }
        *used += size;
        drop(used);
        if m.tx.try_send((batch, size, waiter)).is_err() {
            self.release(m, size);
            return PushOutcome::Closed;
        }
        PushOutcome::Queued
    }

    fn release(&self, m: &Memory, size: u64) {
        let mut used = m.used.lock().unwrap_or_else(|p| p.into_inner());
        *used = used.saturating_sub(size);
        drop(used);
        m.room.notify_all();
    }

    /// The next batch; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<Popped> {
        match &self.store {
            Store::Memory(m) => {
                let (batch, size, waiter) = m.rx.recv().await.ok()?;
                self.release(m, size);
                Some(Popped { batch, ticket: None, waiter })
            }
            Store::Disk(q) => q.pop().await.map(|(b, t)| Popped { batch: Arc::new(b), ticket: Some(t), waiter: None }),
        }
    }

    /// A popped batch and the receipt that acknowledges it when dropped.
    pub fn receipt(self: &Arc<Self>, popped: Popped) -> (Arc<Payload>, Receipt) {
        (popped.batch, Receipt { queue: self.clone(), ticket: popped.ticket, waiter: popped.waiter })
    }

    /// The consumer is done with a batch: sent, or counted as failed.
    pub fn done(&self, popped: Popped) {
        if let (Store::Disk(q), Some(t)) = (&self.store, popped.ticket) {
            q.ack(t);
        }
    }

    /// Puts a batch back that a consumer took but did not finish (its
    /// exporter was replaced by a config reload while the batch waited for a
    /// retry); the queue's next consumer gets it. Waits for room rather than
    /// dropping: the consumers that replace the old ones make room.
    pub async fn requeue(&self, popped: Popped) {
        let Popped { batch, ticket, waiter } = popped;
        if self.requeue_waiting(batch, waiter).await {
            if let (Store::Disk(q), Some(t)) = (&self.store, ticket) {
                q.ack(t);
            }
        }
    }

    /// Puts a batch (or part of one, or batches merged) back at the tail;
    /// whether it is queued again. A memory queue takes it beyond its bound
    /// (it was counted in before); a persistent queue writes it anew.
    pub async fn requeue_batch(&self, batch: Arc<Payload>) -> bool {
        self.requeue_waiting(batch, None).await
    }

    async fn requeue_waiting(&self, batch: Arc<Payload>, waiter: Option<Arc<ResultWaiter>>) -> bool {
        let items = batch.item_count() as u64;
        match &self.store {
            Store::Memory(m) => {
                let size = self.sizer.size_of(&batch);
                *m.used.lock().unwrap_or_else(|p| p.into_inner()) += size;
                if let Err(e) = m.tx.send((batch, size, waiter)).await {
                    if let Some(w) = &e.0 .2 {
                        w.fail();
                    }
                    self.release(m, size);
                    self.counters.enqueue_failed.add(items);
                    return false;
                }
                true
            }
            Store::Disk(q) => {
                // Written again at the tail; the caller forgets the old record.
                // A push may wait for room; keep it off the async workers where the runtime allows.
                let multi_thread = tokio::runtime::Handle::try_current()
                    .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
                let outcome =
                    if multi_thread { tokio::task::block_in_place(|| q.push(&batch)) } else { q.push(&batch) };
                outcome == PersistentPush::Queued
            }
        }
    }

    /// No more pushes; consumers drain what is left and then stop.
    pub fn close(&self) {
        match &self.store {
            Store::Memory(m) => {
                m.tx.close();
                // Under the lock, so a pusher either sees the close or is waiting and wakes.
                let _used = m.used.lock().unwrap_or_else(|p| p.into_inner());
                m.room.notify_all();
            }
            Store::Disk(q) => q.close(),
        }
    }

    /// Batches waiting for a consumer.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Memory(m) => m.rx.len(),
            Store::Disk(q) => q.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What waits for a consumer, measured by the sizer (the Collector's
    /// `otelcol_exporter_queue_size`).
    pub fn size(&self) -> u64 {
        match &self.store {
            Store::Memory(m) => *m.used.lock().unwrap_or_else(|p| p.into_inner()),
            Store::Disk(q) => q.size(),
        }
    }

    /// The bound, measured by the sizer.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn sizer(&self) -> Sizer {
        self.sizer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Batch, Signal};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn spans(n: usize) -> Arc<Payload> {
        Arc::new(Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans: vec![Span::default(); n], ..Default::default() }],
                ..Default::default()
            }],
        })))
    }

    fn counters(failed: &Counter) -> QueueCounters {
        QueueCounters { enqueue_failed: failed.clone(), too_large: Counter::default() }
    }

    #[test]
    fn items_sizer_bounds_the_queue_by_items() {
        let failed = Counter::default();
        let too_large = Counter::default();
        let c = QueueCounters { enqueue_failed: failed.clone(), too_large: too_large.clone() };
        let q = SendingQueue::new(10, Sizer::Items, FullQueuePolicy::DropNewest, c);
        assert_eq!(q.push(spans(6)), PushOutcome::Queued);
        assert_eq!(q.push(spans(4)), PushOutcome::Queued);
        assert_eq!((q.size(), q.capacity(), q.len()), (10, 10, 2));
        // Full by items though only 2 batches wait.
        assert_eq!(q.push(spans(1)), PushOutcome::Dropped);
        // Larger than the whole queue: refused at once, counted apart.
        assert_eq!(q.push(spans(11)), PushOutcome::TooLarge);
        assert_eq!((failed.get(), too_large.get()), (12, 1));
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { q.pop().await.unwrap() });
        assert_eq!(q.size(), 4, "a pop gives its items back");
        assert_eq!(q.push(spans(6)), PushOutcome::Queued);
    }

    #[test]
    fn bytes_sizer_bounds_the_queue_by_protobuf_bytes() {
        let one = payload_bytes(&spans(5));
        let q = SendingQueue::new(one * 2, Sizer::Bytes, FullQueuePolicy::DropNewest, QueueCounters::default());
        assert_eq!(q.push(spans(5)), PushOutcome::Queued);
        assert_eq!(q.push(spans(5)), PushOutcome::Queued);
        assert_eq!(q.size(), one * 2);
        assert_eq!(q.push(spans(1)), PushOutcome::Dropped);
    }

    #[test]
    fn block_on_overflow_waits_for_items_to_leave() {
        let q = Arc::new(SendingQueue::new(5, Sizer::Items, FullQueuePolicy::Block, QueueCounters::default()));
        q.push(spans(4));
        let q2 = q.clone();
        let pusher = std::thread::spawn(move || q2.push(spans(3)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!pusher.is_finished(), "4 + 3 items do not fit in 5");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { q.pop().await.unwrap() });
        assert_eq!(pusher.join().unwrap(), PushOutcome::Queued);
        assert_eq!(q.size(), 3);
    }

    #[test]
    fn close_wakes_a_blocked_pusher() {
        let failed = Counter::default();
        let q = Arc::new(SendingQueue::new(1, Sizer::Requests, FullQueuePolicy::Block, counters(&failed)));
        q.push(spans(1));
        let q2 = q.clone();
        let pusher = std::thread::spawn(move || q2.push(spans(2)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        q.close();
        assert_eq!(pusher.join().unwrap(), PushOutcome::Closed);
        assert_eq!(failed.get(), 2);
    }

    #[test]
    fn a_result_waiter_answers_once_every_holder_is_done() {
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let q = SendingQueue::new(1, Sizer::Requests, FullQueuePolicy::DropNewest, QueueCounters::default())
            .waiting_for_result();
        assert!(q.waits_for_result());
        let waiter = ResultWaiter::new(tx);
        assert_eq!(q.push_waiting(spans(1), Some(waiter.clone())), PushOutcome::Queued);
        drop(waiter);
        assert!(rx.try_recv().is_err(), "the queued batch still holds it");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let popped = rt.block_on(q.pop()).unwrap();
        q.done(popped);
        assert_eq!(rx.try_recv(), Ok(true), "sent: the answer is a success");

        // A refusal (the queue is full) fails the answer at once.
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        q.push(spans(1));
        let waiter = ResultWaiter::new(tx);
        assert_eq!(q.push_waiting(spans(1), Some(waiter.clone())), PushOutcome::Dropped);
        drop(waiter);
        assert_eq!(rx.try_recv(), Ok(false));
    }

    #[test]
    fn drop_newest_counts_items_that_did_not_fit() {
        let failed = Counter::default();
        let q = SendingQueue::new(2, Sizer::Requests, FullQueuePolicy::DropNewest, counters(&failed));
        assert_eq!(q.push(spans(3)), PushOutcome::Queued);
        assert_eq!(q.push(spans(3)), PushOutcome::Queued);
        assert_eq!(q.push(spans(5)), PushOutcome::Dropped);
        assert_eq!(failed.get(), 5);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn closed_queue_drains_then_ends() {
        let q = SendingQueue::new(4, Sizer::Requests, FullQueuePolicy::Block, QueueCounters::default());
        q.push(spans(1));
        q.close();
        assert_eq!(q.push(spans(1)), PushOutcome::Closed);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            assert_eq!(q.pop().await.unwrap().batch.signal(), Signal::Traces);
            assert!(q.pop().await.is_none());
        });
    }

    #[test]
    fn block_policy_waits_for_room() {
        let q = Arc::new(SendingQueue::new(1, Sizer::Requests, FullQueuePolicy::Block, QueueCounters::default()));
        q.push(spans(1));
        let q2 = q.clone();
        let pusher = std::thread::spawn(move || q2.push(spans(2)));
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!pusher.is_finished(), "push must wait while the queue is full");
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { q.pop().await.unwrap() });
        assert_eq!(pusher.join().unwrap(), PushOutcome::Queued);
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_requeued_batch_goes_to_the_next_consumer() {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        let failed = Counter::default();
        let q = SendingQueue::new(2, Sizer::Requests, FullQueuePolicy::Block, counters(&failed));
        q.push(spans(1));
        q.push(spans(2));
        rt.block_on(async {
            let first = q.pop().await.unwrap();
            assert_eq!(first.batch.item_count(), 1);
            q.requeue(first).await;
            assert_eq!(q.pop().await.unwrap().batch.item_count(), 2);
            assert_eq!(q.pop().await.unwrap().batch.item_count(), 1, "the batch handed back is delivered again");
        });
        assert_eq!(failed.get(), 0);
    }

    /// Spans a persistent queue's replay check accepts (IDs of the right size).
    fn valid_spans(n: usize) -> Arc<Payload> {
        let mut batch = spans(n);
        if let Payload::Decoded(Batch::Traces(req)) = Arc::make_mut(&mut batch) {
            for span in &mut req.resource_spans[0].scope_spans[0].spans {
                span.trace_id = vec![1; 16];
                span.span_id = vec![2; 8];
            }
        }
        batch
    }

    #[test]
    fn a_requeued_record_of_a_persistent_queue_survives_a_restart_once() {
        use crate::telemetry::PersistentQueueMetrics;
        let dir = tempfile::tempdir().unwrap();
        let opts = || persistent::PersistentOptions {
            dir: dir.path().to_path_buf(),
            fsync: false,
            capacity: 10,
            sizer: Sizer::Requests,
            max_bytes: 1 << 20,
            segment_bytes: persistent::DEFAULT_SEGMENT_BYTES,
            policy: FullQueuePolicy::Block,
            name: "test".into(),
        };
        let open = || {
            SendingQueue::persistent(
                PersistentQueue::open(opts(), PersistentQueueMetrics::default(), Counter::default()).unwrap(),
                Sizer::Requests,
                Counter::default(),
            )
        };
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
        {
            let q = open();
            assert_eq!(q.push(valid_spans(3)), PushOutcome::Queued);
            rt.block_on(async {
                let popped = q.pop().await.unwrap();
                q.requeue(popped).await;
            });
            assert_eq!(q.len(), 1, "the record is waiting again");
        }
        // After a restart the record is there once: the requeued copy, not the old one too.
        let q = open();
        assert_eq!(q.len(), 1);
        rt.block_on(async {
            let popped = q.pop().await.unwrap();
            assert_eq!(popped.batch.item_count(), 3);
            q.done(popped);
        });
        assert_eq!(q.len(), 0);
    }
}
