//! Receivers: async servers that decode client requests into batches and offer
//! them to every pipeline that lists the receiver.
//!
//! Guarantee: a receiver either hands a request's data to all of its pipelines
//! and answers success, or answers the client with a retryable error (gRPC
//! UNAVAILABLE, HTTP 503 with Retry-After) and counts the items as refused. It
//! holds no unbounded buffer of its own. A request is admitted on what a walk
//! of its bytes says it will cost decoded ([`ReceiverOutput::admit`]), before
//! it is decoded.

pub mod filelog;
pub mod h1_framing;
pub mod h2_pings;
pub mod listener;
pub mod otlp;
pub mod tls;

#[cfg(test)]
mod security_tests;

use crate::config::component::{Factory, SameSettings};
use crate::data::{Payload, Signal};
use crate::extensions::{ExtensionReference, ExtensionSpec};
use crate::telemetry::Registry;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

/// How a receiver type is loaded: see [`crate::config::component`].
pub type ReceiverFactory = Factory<dyn ReceiverSpec>;

/// What starting a receiver returns.
pub type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<RunningReceiver, ReceiverError>> + Send + 'a>>;

/// A receiver's compiled settings. Built only from a [`ReceiverFactory`]'s
/// `compile`.
pub trait ReceiverSpec: SameSettings + Send + Sync + std::fmt::Debug {
    /// The extensions it names (authenticators, checkpoint storage).
    fn extension_references(&self) -> Vec<ExtensionReference<'_>> {
        Vec::new()
    }

    /// Files it reads once at start (TLS certificates and keys): a reload
    /// that finds one changed restarts it.
    fn files(&self) -> Vec<String> {
        Vec::new()
    }

    /// Binds its listeners (or starts its readers) feeding `ctx.output`.
    fn start(&self, ctx: ReceiverContext) -> StartFuture<'_>;
}

crate::config::component::compiled_form!(dyn ReceiverSpec);

/// Why a pipeline could not take a batch. Each is temporary: the client should retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the pipeline is full; retry later")]
    PipelineFull,
    #[error("memory usage is above the configured limit; retry later")]
    MemoryLimit,
    #[error("the agent is shutting down; retry later")]
    ShuttingDown,
    /// Not written to a persistent queue, or (`wait_for_result`) not
    /// exported, in time.
    #[error("the data could not be written to the persistent queue or exported in time; retry later")]
    NotPersisted,
    #[error("the request would not fit in memory below the configured limit once decoded; retry later")]
    MemoryHeadroom,
}

/// How long a receiver waits for a batch to reach every persistent queue
/// before it tells the client to retry.
pub const DURABLE_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Completed by a pipeline worker once the batch it came with went through
/// the processors and every resulting batch is in every exporter queue:
/// `true` when every persistent queue wrote it.
pub type AckSender = tokio::sync::oneshot::Sender<bool>;

/// What a receiver waits for before answering when a pipeline writes to a
/// persistent queue. Empty (no allocation) for pipelines that do not.
#[derive(Default)]
pub struct Acks(Vec<tokio::sync::oneshot::Receiver<bool>>);

impl Acks {
    /// A new completion handle whose outcome this set waits for.
    pub fn expect(&mut self) -> AckSender {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.0.push(rx);
        tx
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Waits for every handle; a failed, dropped or late one is `NotPersisted`.
    pub async fn wait(self, timeout: std::time::Duration) -> Result<(), Refusal> {
        let all = async {
            for rx in self.0 {
                if rx.await != Ok(true) {
                    return Err(Refusal::NotPersisted);
                }
            }
            Ok(())
        };
        tokio::time::timeout(timeout, all).await.unwrap_or(Err(Refusal::NotPersisted))
    }
}

/// The entry of one pipeline, as a receiver sees it.
pub trait BatchSink: Send + Sync {
    /// Takes the batch or refuses it without blocking.
    fn offer(&self, batch: Payload) -> Result<(), Refusal>;

    /// Whether this pipeline forwards batches as received bytes, so the
    /// receiver may hand them on checked but not decoded.
    fn takes_encoded(&self) -> bool {
        false
    }

    /// As `offer`; a sink that answers only once the batch is on disk adds
    /// a handle to `acks` for the receiver to wait on.
    fn offer_acked(&self, batch: Payload, _acks: &mut Acks) -> Result<(), Refusal> {
        self.offer(batch)
    }

    /// As `offer_acked`, for a batch whose decoded size the receiver knows
    /// from its walk of the request (`decoded_bytes`; 0: not known): a sink
    /// bounded in bytes counts that instead of measuring the batch again.
    fn offer_sized(&self, batch: Payload, _decoded_bytes: u64, acks: &mut Acks) -> Result<(), Refusal> {
        self.offer_acked(batch, acks)
    }

    /// Whether `offer` would refuse right now, asked before decoding. A pass
    /// here is a hint, not a promise: `offer` may still refuse. `items` gives
    /// the request's item count, for a sink that counts what it refuses.
    fn ready(&self, _items: &dyn Fn() -> usize) -> Result<(), Refusal> {
        Ok(())
    }

    /// As `ready`, for a request whose walk gave `estimate`: a sink with a
    /// memory limit also claims its `decoded_bytes` of its headroom, or
    /// refuses ([`Refusal::MemoryHeadroom`]); a sink bounded in bytes
    /// refuses one it has no room for (as it would wait: encoded or decoded).
    fn admit(&self, estimate: crate::data::estimate::Estimate) -> Result<(), Refusal> {
        self.ready(&|| estimate.items)
    }
}

/// The pipelines a receiver feeds, by signal.
#[derive(Clone, Default)]
struct Routes {
    sinks: [Vec<Arc<dyn BatchSink>>; 3],
}

/// The pipelines a receiver feeds. Clones share one route table, which a
/// config reload swaps as a whole ([`ReceiverOutput::replace_with`]) while
/// the receiver keeps running; each request reads the table once.
#[derive(Clone, Default)]
pub struct ReceiverOutput {
    routes: Arc<std::sync::RwLock<Arc<Routes>>>,
}

fn slot(signal: Signal) -> usize {
    match signal {
        Signal::Traces => 0,
        Signal::Metrics => 1,
        Signal::Logs => 2,
    }
}

impl ReceiverOutput {
    fn routes(&self) -> Arc<Routes> {
        self.routes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn add(&mut self, signal: Signal, sink: Arc<dyn BatchSink>) {
        let mut routes = self.routes.write().unwrap_or_else(|e| e.into_inner());
        Arc::make_mut(&mut routes).sinks[slot(signal)].push(sink);
    }

    /// From now on, every clone of this output feeds the pipelines of `next`.
    pub fn replace_with(&self, next: &ReceiverOutput) {
        let routes = next.routes();
        *self.routes.write().unwrap_or_else(|e| e.into_inner()) = routes;
    }

    /// The signals some pipeline takes from the receiver.
    pub fn signals(&self) -> Vec<Signal> {
        let routes = self.routes();
        [Signal::Traces, Signal::Metrics, Signal::Logs]
            .into_iter()
            .filter(|s| !routes.sinks[slot(*s)].is_empty())
            .collect()
    }

    /// Whether any pipeline of this signal takes data from the receiver.
    pub fn accepts(&self, signal: Signal) -> bool {
        !self.routes().sinks[slot(signal)].is_empty()
    }

    /// Whether every pipeline of this signal forwards encoded batches: then
    /// a receiver checks a protobuf request instead of decoding it.
    pub fn takes_encoded(&self, signal: Signal) -> bool {
        let routes = self.routes();
        let sinks = &routes.sinks[slot(signal)];
        !sinks.is_empty() && sinks.iter().all(|s| s.takes_encoded())
    }

    /// Whether every pipeline of this signal would take data now. On refusal
    /// returns the request's item count (computed once, and only then).
    pub fn ready(&self, signal: Signal, count: impl FnOnce() -> usize) -> Result<(), (Refusal, usize)> {
        let count = std::cell::Cell::new(Some(count));
        let cached = std::cell::OnceCell::new();
        let items = || *cached.get_or_init(|| count.take().map_or(0, |f| f()));
        for sink in &self.routes().sinks[slot(signal)] {
            if let Err(refusal) = sink.ready(&items) {
                return Err((refusal, items()));
            }
        }
        Ok(())
    }

    /// As [`ReceiverOutput::ready`], for a request whose items and decoded
    /// size are known from a walk of its bytes: every pipeline of the
    /// signal claims room for it, or the first refusal is returned.
    pub fn admit(&self, signal: Signal, estimate: crate::data::estimate::Estimate) -> Result<(), Refusal> {
        for sink in &self.routes().sinks[slot(signal)] {
            sink.admit(estimate)?;
        }
        Ok(())
    }

    /// Offers the batch to every pipeline of its signal (a copy to all but the
    /// last). Fails with the first refusal. The answer to the client waits
    /// for the returned acks (empty unless a pipeline has a persistent queue).
    pub fn offer(&self, batch: Payload) -> Result<Acks, Refusal> {
        self.offer_sized(batch, 0)
    }

    /// As [`ReceiverOutput::offer`], for a batch of `decoded_bytes` once
    /// decoded (the walk's estimate; 0: not known, the sink measures it).
    pub fn offer_sized(&self, batch: Payload, decoded_bytes: u64) -> Result<Acks, Refusal> {
        let mut acks = Acks::default();
        let routes = self.routes();
        let sinks = &routes.sinks[slot(batch.signal())];
        let Some((last, rest)) = sinks.split_last() else {
            return Ok(acks);
        };
        for sink in rest {
            sink.offer_sized(batch.clone(), decoded_bytes, &mut acks)?;
        }
        last.offer_sized(batch, decoded_bytes, &mut acks)?;
        Ok(acks)
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
    /// Every configured extension, where a receiver finds the authenticator its `auth:` names.
    pub extensions: Arc<std::collections::BTreeMap<crate::config::ComponentId, Arc<dyn ExtensionSpec>>>,
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
