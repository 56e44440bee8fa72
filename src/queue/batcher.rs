//! The sending queue's batcher (`sending_queue.batch`): merges the batches a
//! queue hands out until they reach `min_size` or the oldest has waited
//! `flush_timeout`, and cuts them at `max_size`. The Collector's
//! `exporterhelper` algorithm (`partitionBatcher` with `MergeSplit`):
//!
//! - an incoming batch is appended to the pending one; while the result is
//!   larger than `max_size` (when `max_size` > 0) its first `max_size` is sent;
//! - what is left is sent when it reaches `min_size`, else it stays pending;
//! - a pending batch is sent once `flush_timeout` has passed since it was
//!   started (a batch left over after a send starts anew; merging into a
//!   waiting batch does not move its deadline);
//! - sizes are counted by the batch sizer: items, or the bytes of the OTLP
//!   protobuf export request.
//!
//! Pure and synchronous: time is an argument. Each incoming batch carries a
//! ticket (`T`); every flush carries a clone of the ticket of each batch that
//! gave it items, so a batch cut in two is acknowledged once both parts are
//! sent. One deliberate difference: a single item larger than a bytes
//! `max_size` is sent alone (and counted) where the Collector drops it.

use super::{payload_bytes, Sizer};
use crate::data::cut::Batchable;
use crate::data::Payload;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The settings of `sending_queue.batch`, resolved (sizer inherited, defaults filled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    pub flush_timeout: Duration,
    pub min_size: u64,
    /// 0: no maximum.
    pub max_size: u64,
    /// `Items` or `Bytes` (validation refuses `Requests`).
    pub sizer: Sizer,
}

impl BatchSettings {
    /// The Collector's defaults (`NewDefaultQueueConfig`): 200ms, 8192 items, no maximum.
    pub const DEFAULT: BatchSettings =
        BatchSettings { flush_timeout: Duration::from_millis(200), min_size: 8192, max_size: 0, sizer: Sizer::Items };
}

/// Why a batch was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// It reached `min_size`, or was cut at `max_size`.
    Size,
    /// Its `flush_timeout` passed.
    Timeout,
    /// The consumers stop or the queue closed: everything pending goes.
    Drain,
}

/// One batch to send, with the tickets of the batches it took items from.
#[derive(Debug)]
pub struct Flush<T> {
    pub batch: Payload,
    pub tickets: Vec<T>,
    pub trigger: Trigger,
    /// Cut at `max_size` from a larger pending batch.
    pub cut: bool,
    /// A single item larger than `max_size` (bytes), sent alone.
    pub oversized: bool,
}

pub struct Batcher<T> {
    settings: BatchSettings,
    pending: Option<Payload>,
    /// Size of `pending` by the batch sizer (protobuf sizes add up: an
    /// export request holds only its repeated resource field).
    pending_size: u64,
    /// Tickets of the batches in `pending`, in order, with the items each still has there.
    tickets: VecDeque<(T, usize)>,
    deadline: Option<Instant>,
}

impl<T: Clone> Batcher<T> {
    pub fn new(settings: BatchSettings) -> Self {
        Batcher { settings, pending: None, pending_size: 0, tickets: VecDeque::new(), deadline: None }
    }

    pub fn settings(&self) -> BatchSettings {
        self.settings
    }

    fn size(&self, batch: &Payload) -> u64 {
        match self.settings.sizer {
            Sizer::Bytes => payload_bytes(batch),
            // `Requests` is refused by validation; count items if it gets here.
            Sizer::Items | Sizer::Requests => batch.item_count() as u64,
        }
    }

    /// Takes one batch handed out by the queue; returns what is ready to send.
    pub fn add(&mut self, batch: Payload, ticket: T, now: Instant) -> Vec<Flush<T>> {
        let items = batch.item_count();
        self.pending_size += self.size(&batch);
        self.pending = Some(match self.pending.take() {
            None => batch,
            Some(p) => merge(p, batch),
        });
        self.tickets.push_back((ticket, items));
        let mut out = Vec::new();
        let max = self.settings.max_size;
        while max > 0 && self.pending_size > max {
            out.push(self.cut(max));
        }
        if self.pending.is_some() && self.pending_size >= self.settings.min_size {
            out.push(self.take_all(Trigger::Size));
        }
        if self.pending.is_none() {
            self.deadline = None;
        } else if !out.is_empty() || self.deadline.is_none() {
            self.deadline = Some(now + self.settings.flush_timeout);
        }
        out
    }

    /// Sends the pending batch once its deadline has passed.
    pub fn tick(&mut self, now: Instant) -> Option<Flush<T>> {
        if self.deadline.is_some_and(|d| now >= d) && self.pending.is_some() {
            self.deadline = None;
            return Some(self.take_all(Trigger::Timeout));
        }
        None
    }

    /// When the pending batch is due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Everything pending, now.
    pub fn drain(&mut self) -> Option<Flush<T>> {
        self.deadline = None;
        self.pending.is_some().then(|| self.take_all(Trigger::Drain))
    }

    /// Items pending.
    pub fn pending_items(&self) -> usize {
        self.pending.as_ref().map_or(0, Payload::item_count)
    }

    fn take_all(&mut self, trigger: Trigger) -> Flush<T> {
        let batch = self.pending.take().expect("checked by the caller");
        self.pending_size = 0;
        let tickets = self.tickets.drain(..).map(|(t, _)| t).collect();
        Flush { batch, tickets, trigger, cut: false, oversized: false }
    }

    /// Cuts the first `max` (by the sizer) off the pending batch.
    fn cut(&mut self, max: u64) -> Flush<T> {
        let total = self.pending_items();
        let (front, oversized) = match self.settings.sizer {
            Sizer::Bytes => cut_bytes(self.pending.as_mut().expect("larger than max, so present"), max),
            Sizer::Items | Sizer::Requests => {
                let n = max.min(total as u64) as usize;
                (take_front(self.pending.as_mut().expect("larger than max, so present"), n), false)
            }
        };
        let n = front.item_count();
        if n >= total {
            // All of it (one oversized item): the pending batch is gone.
            self.pending = None;
            self.pending_size = 0;
            let tickets = self.tickets.drain(..).map(|(t, _)| t).collect();
            return Flush { batch: front, tickets, trigger: Trigger::Size, cut: false, oversized };
        }
        self.pending_size = self.size(self.pending.as_ref().expect("rest"));
        Flush { batch: front, tickets: self.take_tickets(n), trigger: Trigger::Size, cut: true, oversized }
    }

    /// The tickets of the first `n` items; a batch cut in two keeps its ticket on both sides.
    fn take_tickets(&mut self, mut n: usize) -> Vec<T> {
        let mut out = Vec::new();
        while let Some((t, k)) = self.tickets.front_mut() {
            if *k <= n {
                n -= *k;
                out.push(t.clone());
                self.tickets.pop_front();
                continue;
            }
            if n > 0 {
                out.push(t.clone());
                *k -= n;
            }
            break;
        }
        out
    }
}

/// Appends `b` to `a`; when one is encoded and the other not, both end encoded.
fn merge(a: Payload, b: Payload) -> Payload {
    match (a, b) {
        (Payload::Decoded(mut a), Payload::Decoded(b)) => {
            a.append(b);
            Payload::Decoded(a)
        }
        (a, b) => {
            let mut a = a.into_encoded();
            a.append(b.into_encoded());
            Payload::Encoded(a)
        }
    }
}

fn take_front(p: &mut Payload, n: usize) -> Payload {
    match p {
        Payload::Decoded(b) => Payload::Decoded(Batchable::take_front(b, n)),
        Payload::Encoded(e) => Payload::Encoded(Batchable::take_front(e, n)),
    }
}

/// Cuts off the most leading items whose export request is at most `max`
/// bytes (at least one item: an item above `max` goes alone, `true`). An
/// encoded batch is decoded first (the bytes sizer is the Collector's "least
/// performant option" too); the count comes from one pass over the items
/// that fit ([`crate::data::split::items_within_bytes`]).
fn cut_bytes(pending: &mut Payload, max: u64) -> (Payload, bool) {
    if let Payload::Encoded(e) = pending {
        match e.decode() {
            Ok(b) => *pending = Payload::Decoded(b),
            // Checked bytes always decode; if not, cut by items rather than lose them.
            Err(_) => return (take_front(pending, 1), false),
        }
    }
    let Payload::Decoded(b) = pending else { unreachable!("decoded above") };
    let n = crate::data::split::items_within_bytes(b, usize::try_from(max).unwrap_or(usize::MAX));
    (take_front(pending, n.max(1)), n == 0)
}

#[cfg(test)]
#[path = "batcher_tests.rs"]
mod tests;
