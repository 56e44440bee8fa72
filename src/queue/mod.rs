//! The sending queue in front of each exporter: bounded, filled by pipeline
//! worker threads (sync) and drained by the exporter's consumers (async).
//! In memory (an `async-channel`), or on disk ([`persistent`]) when the
//! exporter's `sending_queue.storage` names a `file_storage` extension.
//!
//! Guarantee: a batch pushed is either delivered to a consumer or counted as
//! `enqueue_failed`. With the `block` policy nothing is ever dropped: a full
//! queue makes the pushing worker wait, which fills the pipeline's input, which
//! makes receivers refuse clients with retryable errors. A consumer hands each
//! batch back with [`SendingQueue::done`] once its send has ended; only then
//! does a persistent queue forget it.

pub mod persistent;
pub mod storage_config;

use crate::data::Payload;
use crate::telemetry::Counter;
use persistent::{PersistentPush, PersistentQueue, Ticket};
use std::sync::Arc;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// The queue was full and the policy is `drop_newest`; the batch is counted and gone.
    Dropped,
    /// The queue is closed (shutdown); the batch is counted and gone.
    Closed,
    /// A persistent queue could not write it (disk full, I/O error); counted and gone.
    Failed,
}

/// A batch handed to a consumer; give it back to [`SendingQueue::done`].
pub struct Popped {
    pub batch: Arc<Payload>,
    ticket: Option<Ticket>,
}

enum Store {
    Memory {
        tx: async_channel::Sender<Arc<Payload>>,
        rx: async_channel::Receiver<Arc<Payload>>,
        policy: FullQueuePolicy,
    },
    Disk(Box<PersistentQueue>),
}

pub struct SendingQueue {
    store: Store,
    capacity: usize,
    enqueue_failed: Counter,
}

impl SendingQueue {
    /// An in-memory queue; `capacity` is in batches and at least 1.
    pub fn new(capacity: usize, policy: FullQueuePolicy, enqueue_failed: Counter) -> Self {
        let capacity = capacity.max(1);
        let (tx, rx) = async_channel::bounded(capacity);
        SendingQueue { store: Store::Memory { tx, rx, policy }, capacity, enqueue_failed }
    }

    /// A queue on disk (already opened and replayed).
    pub fn persistent(queue: PersistentQueue) -> Self {
        let capacity = queue.capacity();
        SendingQueue { store: Store::Disk(Box::new(queue)), capacity, enqueue_failed: Counter::default() }
    }

    /// Whether a pushed batch is on disk once `push` returns `Queued`.
    pub fn is_persistent(&self) -> bool {
        matches!(self.store, Store::Disk(_))
    }

    /// Called from a pipeline worker thread; may block under the `block` policy.
    pub fn push(&self, batch: Arc<Payload>) -> PushOutcome {
        let (tx, policy) = match &self.store {
            Store::Memory { tx, policy, .. } => (tx, *policy),
            // The persistent queue counts its own failures.
            Store::Disk(q) => {
                return match q.push(&batch) {
                    PersistentPush::Queued => PushOutcome::Queued,
                    PersistentPush::Dropped => PushOutcome::Dropped,
                    PersistentPush::Closed => PushOutcome::Closed,
                    PersistentPush::Failed => PushOutcome::Failed,
                }
            }
        };
        let items = batch.item_count() as u64;
        let result = match policy {
            FullQueuePolicy::Block => tx.send_blocking(batch).map_err(|_| PushOutcome::Closed),
            FullQueuePolicy::DropNewest => tx.try_send(batch).map_err(|e| match e {
                async_channel::TrySendError::Full(_) => PushOutcome::Dropped,
                async_channel::TrySendError::Closed(_) => PushOutcome::Closed,
            }),
        };
        match result {
            Ok(()) => PushOutcome::Queued,
            Err(outcome) => {
                self.enqueue_failed.add(items);
                outcome
            }
        }
    }

    /// The next batch; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<Popped> {
        match &self.store {
            Store::Memory { rx, .. } => rx.recv().await.ok().map(|batch| Popped { batch, ticket: None }),
            Store::Disk(q) => q.pop().await.map(|(b, t)| Popped { batch: Arc::new(b), ticket: Some(t) }),
        }
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
        let items = popped.batch.item_count() as u64;
        match &self.store {
            Store::Memory { tx, .. } => {
                if tx.send(popped.batch).await.is_err() {
                    self.enqueue_failed.add(items);
                }
            }
            Store::Disk(q) => {
                // Written again at the tail, then the old record is forgotten.
                // A push may wait for room; keep it off the async workers where the runtime allows.
                let multi_thread = tokio::runtime::Handle::try_current()
                    .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
                let outcome = if multi_thread {
                    tokio::task::block_in_place(|| q.push(&popped.batch))
                } else {
                    q.push(&popped.batch)
                };
                if outcome == PersistentPush::Queued {
                    if let Some(t) = popped.ticket {
                        q.ack(t);
                    }
                }
            }
        }
    }

    /// No more pushes; consumers drain what is left and then stop.
    pub fn close(&self) {
        match &self.store {
            Store::Memory { tx, .. } => {
                tx.close();
            }
            Store::Disk(q) => q.close(),
        }
    }

    /// Batches waiting for a consumer.
    pub fn len(&self) -> usize {
        match &self.store {
            Store::Memory { rx, .. } => rx.len(),
            Store::Disk(q) => q.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.capacity
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

    #[test]
    fn drop_newest_counts_items_that_did_not_fit() {
        let failed = Counter::default();
        let q = SendingQueue::new(2, FullQueuePolicy::DropNewest, failed.clone());
        assert_eq!(q.push(spans(3)), PushOutcome::Queued);
        assert_eq!(q.push(spans(3)), PushOutcome::Queued);
        assert_eq!(q.push(spans(5)), PushOutcome::Dropped);
        assert_eq!(failed.get(), 5);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn closed_queue_drains_then_ends() {
        let q = SendingQueue::new(4, FullQueuePolicy::Block, Counter::default());
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
        let q = Arc::new(SendingQueue::new(1, FullQueuePolicy::Block, Counter::default()));
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
        let q = SendingQueue::new(2, FullQueuePolicy::Block, failed.clone());
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
            max_batches: 10,
            max_bytes: 1 << 20,
            segment_bytes: persistent::DEFAULT_SEGMENT_BYTES,
            policy: FullQueuePolicy::Block,
            name: "test".into(),
        };
        let open = || {
            SendingQueue::persistent(
                PersistentQueue::open(opts(), PersistentQueueMetrics::default(), Counter::default()).unwrap(),
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
