//! Running connectors: one instance per connector and signal pair, fed by a
//! bounded queue that the exporting pipelines' workers push to (as they push
//! to an exporter's sending queue), and handing what it emits to the doors of
//! every pipeline of its `to` signal that lists it as a receiver, or only
//! of those an emitted batch names (`Targets::Only`, a `routing` route).
//!
//! Guarantees: nothing is dropped while the agent runs. The queue blocks the
//! exporting pipeline's workers when full (so their door fills and clients
//! are told to retry), and a receiving pipeline that is full or over its
//! memory limit is waited for, batch by batch. Only what reaches a pipeline
//! that is shutting down with no successor, or a batch that does not decode,
//! is lost, and it is counted (`otelcol_connector_dropped_items_total`).
//! Validation refuses cycles, so waiting on a receiving pipeline never waits
//! on itself.

use super::{PipelineDoor, StartError};
use crate::config::{ComponentId, PipelineId};
use crate::connectors::{ConnectorContext, ConnectorSpec, Emitted, Now, Targets};
use crate::data::{Payload, Signal};
use crate::queue::{FullQueuePolicy, SendingQueue};
use crate::receivers::{BatchSink, Refusal};
use crate::service::AgentConfig;
use crate::telemetry::{ConnectorMetrics, Registry};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;

/// One connector instance: the connector and the signals it joins.
pub type ConnectorKey = (ComponentId, Signal, Signal);

/// Batches a connector's queue holds before the exporting pipelines wait.
pub const CONNECTOR_QUEUE_BATCHES: usize = 64;

/// How long a connector waits before offering again to a full pipeline.
const RETRY_PAUSE: Duration = Duration::from_millis(5);

fn names_connector(list: &[String], cid: &ComponentId) -> bool {
    list.iter().any(|n| ComponentId::parse(n).as_ref() == Ok(cid))
}

/// The connector instances a config runs: for each connector, each signal
/// pair it connects between a pipeline that exports to it and one that
/// receives from it.
pub(super) fn connector_instances(config: &AgentConfig) -> BTreeMap<ConnectorKey, Arc<dyn ConnectorSpec>> {
    let mut out = BTreeMap::new();
    for (cid, spec) in &config.connectors {
        let pipelines = &config.service.pipelines;
        let from: BTreeSet<Signal> =
            pipelines.iter().filter(|(_, p)| names_connector(&p.exporters, cid)).map(|(pid, _)| pid.signal).collect();
        let to: BTreeSet<Signal> =
            pipelines.iter().filter(|(_, p)| names_connector(&p.receivers, cid)).map(|(pid, _)| pid.signal).collect();
        for &(f, t) in spec.pairs() {
            if from.contains(&f) && to.contains(&t) {
                out.insert((cid.clone(), f, t), spec.clone());
            }
        }
    }
    out
}

/// The connector instances pipeline `pid` exports to.
pub(super) fn pipeline_connectors(config: &AgentConfig, pid: &PipelineId) -> Vec<ConnectorKey> {
    let Some(p) = config.service.pipelines.get(pid) else { return Vec::new() };
    connector_instances(config)
        .into_keys()
        .filter(|(cid, from, _)| *from == pid.signal && names_connector(&p.exporters, cid))
        .collect()
}

/// The doors of the pipelines instance `key` feeds.
fn doors_of(
    config: &AgentConfig,
    key: &ConnectorKey,
    doors: &BTreeMap<PipelineId, Arc<PipelineDoor>>,
) -> Vec<(PipelineId, Arc<PipelineDoor>)> {
    config
        .service
        .pipelines
        .iter()
        .filter(|(pid, p)| pid.signal == key.2 && names_connector(&p.receivers, &key.0))
        .filter_map(|(pid, _)| doors.get(pid).map(|d| (pid.clone(), d.clone())))
        .collect()
}

/// The doors a connector instance feeds, by pipeline.
type Doors = Vec<(PipelineId, Arc<PipelineDoor>)>;

/// Where a connector instance hands what it emits; a reload swaps it.
#[derive(Clone, Default)]
pub(super) struct ConnectorOutput(Arc<RwLock<Doors>>);

impl ConnectorOutput {
    pub fn set(&self, doors: Doors) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = doors;
    }

    /// Points it at the pipelines of `config` that receive from `key`.
    pub fn route(&self, config: &AgentConfig, key: &ConnectorKey, doors: &BTreeMap<PipelineId, Arc<PipelineDoor>>) {
        self.set(doors_of(config, key, doors));
    }

    /// The doors of the pipelines `targets` names among those fed now.
    fn doors(&self, targets: &Targets) -> Vec<Arc<PipelineDoor>> {
        let all = self.0.read().unwrap_or_else(|e| e.into_inner());
        match targets {
            Targets::All => all.iter().map(|(_, d)| d.clone()).collect(),
            Targets::Only(pids) => all.iter().filter(|(p, _)| pids.contains(p)).map(|(_, d)| d.clone()).collect(),
        }
    }
}

/// A running connector instance.
pub(super) struct ConnectorHandle {
    pub config: Arc<dyn ConnectorSpec>,
    pub queue: Arc<SendingQueue>,
    pub output: ConnectorOutput,
    pub task: JoinHandle<()>,
}

impl ConnectorHandle {
    /// No more input: the task consumes what is queued, flushes the
    /// connector and ends; await the returned task.
    pub fn retire(self) -> JoinHandle<()> {
        self.queue.close();
        self.task
    }
}

/// Builds the connector and starts its task, with no pipeline to feed yet
/// (`output.route` sets them before any data can come).
pub(super) fn start_connector(
    key: &ConnectorKey,
    spec: &Arc<dyn ConnectorSpec>,
    registry: &Registry,
    extensions: &BTreeMap<ComponentId, Arc<dyn crate::extensions::ExtensionSpec>>,
) -> Result<ConnectorHandle, StartError> {
    let (cid, from, to) = key;
    let name = cid.to_string();
    let ctx = ConnectorContext {
        id: name.clone(),
        from: *from,
        to: *to,
        registry: registry.clone(),
        extensions: Arc::new(extensions.clone()),
    };
    let connector = spec
        .build(&ctx)
        .map_err(|message| StartError::Other(format!("connectors::{name} ({from} to {to}): {message}")))?;
    let metrics = ConnectorMetrics::new(registry, &name, *from, *to);
    // Counted in batches, so no batch is ever too large for it.
    let counters =
        crate::queue::QueueCounters { enqueue_failed: metrics.incoming_dropped.clone(), too_large: Default::default() };
    let queue = Arc::new(SendingQueue::new(
        CONNECTOR_QUEUE_BATCHES as u64,
        crate::queue::Sizer::Requests,
        FullQueuePolicy::Block,
        counters,
    ));
    let output = ConnectorOutput::default();
    let task = tokio::spawn(run(connector, queue.clone(), output.clone(), metrics));
    tracing::info!(connector = %name, %from, %to, "connector started");
    Ok(ConnectorHandle { config: spec.clone(), queue, output, task })
}

async fn run(
    mut connector: Box<dyn crate::connectors::Connector>,
    queue: Arc<SendingQueue>,
    output: ConnectorOutput,
    metrics: ConnectorMetrics,
) {
    let mut out: Vec<Emitted> = Vec::new();
    loop {
        let popped = match connector.next_deadline() {
            Some(deadline) => {
                tokio::select! {
                    p = queue.pop() => p,
                    () = tokio::time::sleep_until(deadline.into()) => {
                        let mut batches = Vec::new();
                        connector.tick(Now::current(), &mut batches);
                        out.extend(batches.into_iter().map(|b| Emitted::to_all(Payload::Decoded(b))));
                        deliver(&output, &mut out, &metrics).await;
                        continue;
                    }
                }
            }
            None => queue.pop().await,
        };
        let Some(popped) = popped else { break };
        metrics.incoming.add(popped.batch.item_count() as u64);
        if let Err(e) = connector.consume_routed(&popped.batch, Now::current(), &mut out) {
            metrics.incoming_dropped.add(popped.batch.item_count() as u64);
            tracing::error!(error = %e, "a connector could not read a batch; dropping it");
        }
        queue.done(popped);
        deliver(&output, &mut out, &metrics).await;
    }
    let mut batches = Vec::new();
    connector.flush(Now::current(), &mut batches);
    out.extend(batches.into_iter().map(|b| Emitted::to_all(Payload::Decoded(b))));
    deliver(&output, &mut out, &metrics).await;
}

/// Offers each batch to the receiving pipelines it is for, waiting for a
/// full one.
async fn deliver(output: &ConnectorOutput, out: &mut Vec<Emitted>, metrics: &ConnectorMetrics) {
    for Emitted { targets, payload: batch } in out.drain(..) {
        if batch.is_empty() {
            continue;
        }
        let items = batch.item_count() as u64;
        metrics.outgoing.add(items);
        let doors = output.doors(&targets);
        if doors.is_empty() {
            metrics.outgoing_dropped.add(items);
            continue;
        }
        for door in doors {
            loop {
                match door.offer(batch.clone()) {
                    Ok(()) => break,
                    Err(Refusal::PipelineFull | Refusal::MemoryLimit) => tokio::time::sleep(RETRY_PAUSE).await,
                    Err(_) => {
                        metrics.outgoing_dropped.add(items);
                        break;
                    }
                }
            }
        }
    }
}

/// The pipelines of `config` in an order where every pipeline comes after
/// those that feed it through connectors (validation refused cycles; a
/// pipeline left in one would come last).
pub(super) fn feeding_order(config: &AgentConfig) -> Vec<PipelineId> {
    let instances = connector_instances(config);
    let pipelines = &config.service.pipelines;
    // pipeline -> the pipelines that feed it
    let mut fed_by: BTreeMap<&PipelineId, BTreeSet<&PipelineId>> = BTreeMap::new();
    for (cid, from, to) in instances.keys() {
        for (dst, _) in pipelines.iter().filter(|(d, q)| d.signal == *to && names_connector(&q.receivers, cid)) {
            for (src, _) in pipelines.iter().filter(|(s, p)| s.signal == *from && names_connector(&p.exporters, cid)) {
                fed_by.entry(dst).or_default().insert(src);
            }
        }
    }
    let mut order: Vec<PipelineId> = Vec::new();
    let mut placed: BTreeSet<&PipelineId> = BTreeSet::new();
    while placed.len() < pipelines.len() {
        let ready: Vec<&PipelineId> = pipelines
            .keys()
            .filter(|p| !placed.contains(p))
            .filter(|p| fed_by.get(p).is_none_or(|srcs| srcs.iter().all(|s| placed.contains(s))))
            .collect();
        if ready.is_empty() {
            order.extend(pipelines.keys().filter(|p| !placed.contains(p)).cloned());
            break;
        }
        for p in ready {
            placed.insert(p);
            order.push(p.clone());
        }
    }
    order
}

/// The connector instances that feed pipeline `pid`.
pub(super) fn feeding(config: &AgentConfig, pid: &PipelineId) -> Vec<ConnectorKey> {
    let Some(p) = config.service.pipelines.get(pid) else { return Vec::new() };
    connector_instances(config)
        .into_keys()
        .filter(|(cid, _, to)| *to == pid.signal && names_connector(&p.receivers, cid))
        .collect()
}
