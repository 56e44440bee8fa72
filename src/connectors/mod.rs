//! Connectors: a connector is an exporter of one pipeline and a receiver of
//! another, as in the Collector's `connectors:` section. What one pipeline
//! hands it (spans, metrics, logs) it turns into data for the pipelines that
//! list it as a receiver: the same data (`forward`), or metrics computed from
//! it (`count`).
//!
//! Like processors, connectors are synchronous state machines: they never do
//! I/O and never read the clock; the time comes in as an argument ([`Now`]),
//! so each is tested without a runtime. The pipeline (`pipeline/connector.rs`)
//! runs one instance per connector and signal pair behind a bounded queue,
//! and hands what it emits to every pipeline that receives from it.
//!
//! Guarantee: a connector only ever emits batches of the signal its pair
//! names (`to`), and every item it takes or emits is counted
//! (`otelcol_connector_incoming_items_total`,
//! `otelcol_connector_outgoing_items_total`).

pub mod count;
pub mod forward;
pub mod routing;
pub mod slo;
pub mod spanmetrics;

use crate::config::component::{Factory, SameSettings};
use crate::config::{ComponentId, ConfigError, PipelineId};
use crate::data::{Batch, Payload, Signal};
use crate::extensions::{ExtensionReference, ExtensionSpec};
use crate::telemetry::Registry;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// Which of the pipelines a connector feeds take an emitted batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Every pipeline that lists the connector as a receiver.
    All,
    /// Only these (a `routing` route); validation made sure each of them
    /// lists the connector as a receiver.
    Only(Arc<[PipelineId]>),
}

/// One batch a connector emits and where it goes.
#[derive(Debug, Clone)]
pub struct Emitted {
    pub targets: Targets,
    pub payload: Payload,
}

impl Emitted {
    pub fn to_all(payload: Payload) -> Emitted {
        Emitted { targets: Targets::All, payload }
    }
}

/// How the config joins one connector to pipelines, for
/// [`ConnectorSpec::check_joins`].
#[derive(Debug, Clone, Copy)]
pub struct Joins<'a> {
    /// The pipelines that list it among their exporters.
    pub exporters: &'a [PipelineId],
    /// The pipelines that list it among their receivers.
    pub receivers: &'a [PipelineId],
    /// Every pipeline of the config.
    pub pipelines: &'a [PipelineId],
}

/// The time a connector is called at: a monotonic instant for its timers and
/// the wall clock (Unix nanoseconds) for the timestamps of what it emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    pub instant: Instant,
    pub unix_nanos: u64,
}

impl Now {
    /// The current time, for the runtime (tests give their own).
    pub fn current() -> Now {
        let unix_nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
        Now { instant: Instant::now(), unix_nanos }
    }
}

/// A connector's flush timer: armed by the first data, then due every
/// `interval`, on the grid of the first due time unless a tick came more
/// than an interval late (then an interval after that tick).
#[derive(Debug, Clone, Copy)]
pub struct FlushClock {
    interval: std::time::Duration,
    next: Option<Instant>,
}

impl FlushClock {
    pub fn new(interval: std::time::Duration) -> FlushClock {
        FlushClock { interval, next: None }
    }

    /// Starts the timer at the first data; later calls change nothing.
    pub fn arm(&mut self, now: Instant) {
        if self.next.is_none() {
            self.next = Some(now + self.interval);
        }
    }

    /// When the next flush is due; `None` before the first data.
    pub fn next(&self) -> Option<Instant> {
        self.next
    }

    /// Whether a flush is due at `now`; when it is, the next one is scheduled.
    pub fn due(&mut self, now: Instant) -> bool {
        let Some(due) = self.next else { return false };
        if now < due {
            return false;
        }
        let mut next = due + self.interval;
        if next <= now {
            next = now + self.interval;
        }
        self.next = Some(next);
        true
    }
}

/// One running connector for one signal pair.
pub trait Connector: Send {
    /// Takes one batch of the `from` signal; pushes what it emits now (of
    /// the `to` signal) to `out`.
    fn consume(&mut self, batch: &Batch, now: Now, out: &mut Vec<Batch>);

    /// The form the runtime calls: the payload as the pipeline handed it,
    /// encoded or decoded. The default decodes it (a failure is an error the
    /// runtime counts) and runs `consume`.
    fn consume_payload(&mut self, payload: &Payload, now: Now, out: &mut Vec<Payload>) -> Result<(), String> {
        let mut next = Vec::new();
        match payload {
            Payload::Decoded(b) => self.consume(b, now, &mut next),
            Payload::Encoded(e) => {
                let b = e.decode().map_err(|e| format!("cannot decode a checked batch: {e}"))?;
                self.consume(&b, now, &mut next);
            }
        }
        out.extend(next.into_iter().map(Payload::Decoded));
        Ok(())
    }

    /// The form the runtime calls: as `consume_payload`, with where each
    /// emitted batch goes. The default sends everything to every pipeline
    /// the connector feeds; an error drops the batch (the runtime counts it
    /// in `otelcol_connector_dropped_items_total` and logs the message).
    fn consume_routed(&mut self, payload: &Payload, now: Now, out: &mut Vec<Emitted>) -> Result<(), String> {
        let mut next = Vec::new();
        let result = self.consume_payload(payload, now, &mut next);
        out.extend(next.into_iter().map(Emitted::to_all));
        result
    }

    /// The earliest time `tick` has work to do, if any.
    fn next_deadline(&self) -> Option<Instant> {
        None
    }

    /// Called at or after `next_deadline`; emits what timers release.
    fn tick(&mut self, _now: Now, _out: &mut Vec<Batch>) {}

    /// Emits everything held, at shutdown or when a reload replaces it.
    fn flush(&mut self, _now: Now, _out: &mut Vec<Batch>) {}
}

/// What a connector instance is built with.
#[derive(Clone)]
pub struct ConnectorContext {
    /// The component ID, the `connector` label of its metrics.
    pub id: String,
    /// The signal of the pipelines it exports from.
    pub from: Signal,
    /// The signal of the pipelines it feeds.
    pub to: Signal,
    pub registry: Registry,
    /// Every configured extension, where a connector finds the storage its
    /// settings name ([`ConnectorSpec::extension_references`]).
    pub extensions: Arc<BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>>,
}

/// A connector's compiled settings: everything checked, ready to build.
/// Built only from a [`ConnectorFactory`]'s `compile`.
pub trait ConnectorSpec: SameSettings + Send + Sync + std::fmt::Debug {
    /// The (exporter pipeline signal, receiver pipeline signal) pairs this
    /// connector type joins, as the Collector's "Supported Pipeline Types"
    /// table gives them.
    fn pairs(&self) -> &'static [(Signal, Signal)];

    /// The extensions it names (a `storage`), checked at load like a
    /// receiver's.
    fn extension_references(&self) -> Vec<ExtensionReference<'_>> {
        Vec::new()
    }

    /// One instance for one signal pair (one of `pairs`).
    fn build(&self, ctx: &ConnectorContext) -> Result<Box<dyn Connector>, String>;

    /// Checks the settings against how the config joins the connector to
    /// pipelines, once every pipeline is read (e.g. `routing`: every route
    /// names a pipeline that receives from it). Runs only when the joins
    /// themselves are right; each error carries its YAML path and line.
    fn check_joins(&self, _joins: &Joins) -> Vec<ConfigError> {
        Vec::new()
    }
}

crate::config::component::compiled_form!(dyn ConnectorSpec);

/// How a connector type is loaded: see [`crate::config::component`].
pub type ConnectorFactory = Factory<dyn ConnectorSpec>;

/// The pairs `pairs` joins, written for an error message: "traces to metrics, logs to metrics".
pub fn describe_pairs(pairs: &[(Signal, Signal)]) -> String {
    pairs.iter().map(|(a, b)| format!("{a} to {b}")).collect::<Vec<_>>().join(", ")
}
