//! Appending batches and cutting them by item count, decoded or still
//! encoded ([`super::cut_encoded`]): what the `batch` processor and the
//! sending queue's batcher share. Guarantee: `take_front(n)` returns exactly
//! `n` items (or all there are), in order, each under its own resource and
//! scope.

use super::{split, Batch, Signal};

/// What can be gathered and cut: decoded batches, or batches still encoded
/// on the pass-through path (see [`super::cut_encoded`]).
pub trait Batchable: Sized {
    fn empty(signal: Signal) -> Self;
    fn signal(&self) -> Signal;
    fn items(&self) -> usize;
    fn is_empty(&self) -> bool;
    /// Appends a batch of the same signal.
    fn append(&mut self, other: Self);
    /// Removes and returns the first `n` items (all, if there are fewer).
    fn take_front(&mut self, n: usize) -> Self;
}

impl Batchable for Batch {
    fn empty(signal: Signal) -> Self {
        Batch::empty(signal)
    }

    fn signal(&self) -> Signal {
        Batch::signal(self)
    }

    fn items(&self) -> usize {
        self.item_count()
    }

    fn is_empty(&self) -> bool {
        Batch::is_empty(self)
    }

    fn append(&mut self, other: Self) {
        match (self, other) {
            (Batch::Traces(p), Batch::Traces(b)) => p.resource_spans.extend(b.resource_spans),
            (Batch::Metrics(p), Batch::Metrics(b)) => p.resource_metrics.extend(b.resource_metrics),
            (Batch::Logs(p), Batch::Logs(b)) => p.resource_logs.extend(b.resource_logs),
            // A pipeline carries one signal, so this cannot happen.
            (p, other) => debug_assert!(false, "batch of {} appended to {}", other.signal(), p.signal()),
        }
    }

    fn take_front(&mut self, n: usize) -> Self {
        match self {
            Batch::Traces(p) => Batch::Traces(split::split_traces(p, n)),
            Batch::Metrics(p) => Batch::Metrics(split::split_metrics(p, n)),
            Batch::Logs(p) => Batch::Logs(split::split_logs(p, n)),
        }
    }
}
