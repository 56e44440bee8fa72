//! Receivers: async servers that decode client requests into batches and offer
//! them to every pipeline that lists the receiver.
//!
//! Guarantee: a receiver either hands a request's data to all of its pipelines
//! and answers success, or answers the client with a retryable error (gRPC
//! UNAVAILABLE, HTTP 503 with Retry-After) and counts the items as refused. It
//! holds no unbounded buffer of its own.

pub mod otlp;

use crate::data::{Batch, Signal};
use crate::telemetry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;

/// Why a pipeline could not take a batch. Each is temporary: the client should retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the pipeline is full; retry later")]
    PipelineFull,
    #[error("memory usage is above the configured limit; retry later")]
    MemoryLimit,
    #[error("the agent is shutting down; retry later")]
    ShuttingDown,
}

/// The entry of one pipeline, as a receiver sees it.
pub trait BatchSink: Send + Sync {
    /// Takes the batch or refuses it without blocking.
    fn offer(&self, batch: Batch) -> Result<(), Refusal>;

    /// Whether `offer` would refuse right now, asked before decoding. A pass
    /// here is a hint, not a promise: `offer` may still refuse. `items` gives
    /// the request's item count, for a sink that counts what it refuses.
    fn ready(&self, _items: &dyn Fn() -> usize) -> Result<(), Refusal> {
        Ok(())
    }
}

/// The pipelines a receiver feeds, by signal.
#[derive(Clone, Default)]
pub struct ReceiverOutput {
    sinks: [Vec<Arc<dyn BatchSink>>; 3],
}

fn slot(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl ReceiverOutput {
    pub fn add(&mut self, signal: Signal, sink: Arc<dyn BatchSink>) {
        self.sinks[slot(signal)].push(sink);
    }

    /// Whether any pipeline of this signal takes data from the receiver.
    pub fn accepts(&self, signal: Signal) -> bool {
        !self.sinks[slot(signal)].is_empty()
    }

    /// Whether every pipeline of this signal would take data now. On refusal
    /// returns the request's item count (computed once, and only then).
    pub fn ready(&self, signal: Signal, count: impl FnOnce() -> usize) -> Result<(), (Refusal, usize)> {
        let count = std::cell::Cell::new(Some(count));
        let cached = std::cell::OnceCell::new();
        let items = || *cached.get_or_init(|| count.take().map_or(0, |f| f()));
        for sink in &self.sinks[slot(signal)] {
            if let Err(refusal) = sink.ready(&items) {
                return Err((refusal, items()));
            }
        }
        Ok(())
    }

    /// Offers the batch to every pipeline of its signal (a copy to all but the
    /// last). Fails with the first refusal.
    pub fn offer(&self, batch: Batch) -> Result<(), Refusal> {
        let sinks = &self.sinks[slot(batch.signal())];
        let Some((last, rest)) = sinks.split_last() else {
            return Ok(());
        };
        for sink in rest {
            sink.offer(batch.clone())?;
        }
        last.offer(batch)
    }
}

/// What a receiver gets when it is started.
#[derive(Clone)]
pub struct ReceiverContext {
    /// The component ID, used as the `receiver` label of its metrics.
    pub id: String,
    pub output: ReceiverOutput,
    pub registry: Registry,
    /// Turns true when the agent stops accepting data.
    pub shutdown: tokio::sync::watch::Receiver<bool>,
}

/// A receiver whose listeners are bound.
pub struct RunningReceiver {
    /// (transport, address actually bound), e.g. ("grpc", 127.0.0.1:4317).
    pub endpoints: Vec<(&'static str, SocketAddr)>,
    /// Server tasks; they end after shutdown turns true and open requests finish.
    pub tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    #[error("{receiver}: cannot listen on {endpoint}: {source}")]
    Bind { receiver: String, endpoint: String, source: std::io::Error },
    #[error("{receiver}: {message}")]
    Invalid { receiver: String, message: String },
}
