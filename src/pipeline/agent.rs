//! The running agent: started from a config, reloaded with another one, shut
//! down.
//!
//! A reload compares the new config with the running one part by part and
//! touches only what changed. Its guarantees:
//!
//! - **All or nothing at start-up of parts.** Every new or changed queue,
//!   exporter, memory limiter and pipeline is started before anything running
//!   is touched; if one cannot start (a missing TLS file, a persistent queue
//!   directory that cannot be opened) the reload changes nothing and says why.
//!   Receivers and the agent's own servers bind last; one that cannot bind
//!   keeps (or goes back to) its previous settings and the reload reports it.
//! - **Unchanged parts keep their state.** A pipeline whose processors, their
//!   settings, the `file_storage` directories they keep files in, `workers`
//!   and `channel_capacity` are unchanged keeps its
//!   threads and processor state (tail-sampling buffers, limiter tables), even
//!   when its receivers or exporters change. An exporter whose queue settings
//!   are unchanged keeps its queue, and what waits in it is sent with the new
//!   settings. A receiver whose settings are unchanged keeps its listeners.
//! - **Nothing accepted is lost.** A replaced pipeline's door forwards what
//!   still reaches it to its replacement; its workers drain their input and
//!   flush their processors into the queues they fed, and only then are
//!   replaced queues closed; their consumers send what they hold before they
//!   end. Kept pipelines pause between two batches while the queues they feed
//!   are swapped.

use super::connector::{self, ConnectorHandle, ConnectorKey};
use super::parts::{
    self, pipeline_outlets, queue_storage, start_consumers, start_limiter, start_pipeline, start_receiver,
    start_server, wanted_servers, ExporterHandle, LimiterHandle, PipelineHandle, ReceiverHandle, ServerHandle,
};
use super::plan::{used_limiters, ExporterStep, ListenerStep, ReloadPlan, RunningView};
use super::{Control, PipelineDoor, StartError};
use crate::config::{ComponentId, PipelineId};
use crate::data::Signal;
use crate::exporters::runner::Consumers;
use crate::processors::memory_limiter::MemoryGate;
use crate::processors::ProcessorSpec;
use crate::queue::SendingQueue;
use crate::receivers::ReceiverOutput;
use crate::service::{AgentConfig, PipelineConfig};
use crate::telemetry::{self, health::HealthState, Registry};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tracing::{error, warn};

/// What `start` returns: the agent, running.
pub struct RunningAgent {
    pub registry: Registry,
    pub health: HealthState,
    /// Where each listener actually bound: ("receiver otlp grpc", addr), ("metrics", addr), ...
    pub endpoints: Vec<(String, SocketAddr)>,
    /// The config running now; `None` until the first one is applied.
    config: Option<AgentConfig>,
    limiters: BTreeMap<ComponentId, LimiterHandle>,
    exporters: BTreeMap<(ComponentId, Signal), ExporterHandle>,
    pipelines: BTreeMap<PipelineId, PipelineHandle>,
    receivers: BTreeMap<ComponentId, ReceiverHandle>,
    connectors: BTreeMap<ConnectorKey, ConnectorHandle>,
    servers: BTreeMap<String, ServerHandle>,
    /// Replaced exporters still sending what they hold; awaited at shutdown.
    retiring: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

/// What a reload did, part by part (`pipelines::traces`, `exporters::otlp (traces)`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadSummary {
    /// Parts left running as they were.
    pub kept: usize,
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub removed: Vec<String>,
    /// Changed settings a running part cannot take; they apply at the next start.
    pub needs_restart: Vec<String>,
}

impl ReloadSummary {
    /// The new config means what the running one does.
    pub fn unchanged(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty() && self.needs_restart.is_empty()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// A new part could not start; nothing changed.
    #[error("{0}")]
    NotApplied(StartError),
    /// The new config runs, except for the parts named, which kept their
    /// previous settings or could not start.
    #[error("{}", .0.join("; "))]
    Partial(Vec<String>),
}

/// How a shutdown ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Everything drained in time.
    pub clean: bool,
    /// Batches still queued when the timeout expired.
    pub abandoned_batches: usize,
}

/// Starts everything the config describes. On error, what was started is stopped.
pub async fn start(config: &AgentConfig) -> Result<RunningAgent, StartError> {
    let registry = Registry::new();
    registry.set_const_labels(telemetry::service_labels());
    telemetry::register_process_metrics(&registry);
    let mut agent = RunningAgent {
        registry,
        health: HealthState::new(),
        endpoints: Vec::new(),
        config: None,
        limiters: BTreeMap::new(),
        exporters: BTreeMap::new(),
        pipelines: BTreeMap::new(),
        receivers: BTreeMap::new(),
        connectors: BTreeMap::new(),
        servers: BTreeMap::new(),
        retiring: Vec::new(),
        shutdown_timeout: config.service.shutdown_timeout,
    };
    match agent.apply(config, true).await {
        Ok(_) => {
            agent.health.set_started();
            Ok(agent)
        }
        Err(e) => {
            agent.shutdown().await;
            Err(match e {
                ReloadError::NotApplied(e) => e,
                ReloadError::Partial(errors) => StartError::Other(errors.join("; ")),
            })
        }
    }
}

fn same_queues(a: &[Arc<SendingQueue>], b: &[Arc<SendingQueue>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y))
}

fn connector_name((id, from, to): &ConnectorKey) -> String {
    format!("connectors::{id} ({from} to {to})")
}

fn exporter_name(id: &ComponentId, signal: Signal) -> String {
    format!("exporters::{id} ({signal})")
}

/// Waits for worker threads without blocking the runtime; whether all ended cleanly.
async fn join_workers(threads: Vec<std::thread::JoinHandle<()>>) -> bool {
    if threads.is_empty() {
        return true;
    }
    tokio::task::spawn_blocking(move || {
        // Join every thread, even after one panicked.
        let joined: Vec<bool> = threads.into_iter().map(|t| t.join().is_ok()).collect();
        joined.into_iter().all(|ok| ok)
    })
    .await
    .unwrap_or(false)
}

/// A kept pipeline whose workers wait for the queues they feed next.
struct PausedPipeline {
    pid: PipelineId,
    resumes: Vec<crossbeam_channel::Sender<Vec<Arc<SendingQueue>>>>,
    queues: Vec<Arc<SendingQueue>>,
}

/// The parts a reload started before touching anything running.
#[derive(Default)]
struct Started {
    limiters: BTreeMap<ComponentId, LimiterHandle>,
    queues: BTreeMap<(ComponentId, Signal), Arc<SendingQueue>>,
    consumers: BTreeMap<(ComponentId, Signal), Consumers>,
    pipelines: BTreeMap<PipelineId, PipelineHandle>,
    connectors: BTreeMap<ConnectorKey, ConnectorHandle>,
}

impl Started {
    /// Stops what was started; none of it has seen data.
    async fn undo(self) {
        for (_, p) in self.pipelines {
            join_workers(p.abandon()).await;
        }
        for (_, c) in self.connectors {
            let _ = c.retire().await;
        }
        for (key, c) in self.consumers {
            // A new queue closes; a kept queue stays for the running consumers.
            if let Some(q) = self.queues.get(&key) {
                q.close();
            }
            let _ = c.stop().await;
        }
        for (_, l) in self.limiters {
            l.stop();
        }
    }
}

impl RunningAgent {
    /// The address a listener bound, by the name in `endpoints`.
    pub fn endpoint(&self, name: &str) -> Option<SocketAddr> {
        self.endpoints.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Applies `next` (already validated) in place of the running config.
    pub async fn reload(&mut self, next: &AgentConfig) -> Result<ReloadSummary, ReloadError> {
        self.apply(next, false).await
    }

    /// Moves the agent from its running config (none at start) to `next`.
    /// With `strict` (start-up) the first error of any part is returned.
    async fn apply(&mut self, next: &AgentConfig, strict: bool) -> Result<ReloadSummary, ReloadError> {
        let mut summary = ReloadSummary::default();
        let next_receivers = parts::routed_receivers(next);
        let next_servers = wanted_servers(next);
        let plan = {
            let view = RunningView {
                exporters: self.exporters.iter().map(|(k, h)| (k.clone(), (&h.config, h.storage.as_ref()))).collect(),
                limiters: self.limiters.iter().map(|(id, l)| (id.clone(), &l.config)).collect(),
                pipelines: self.pipelines.iter().map(|(pid, h)| (pid.clone(), &h.shape)).collect(),
                receivers: self.receivers.iter().map(|(rid, h)| (rid.clone(), &h.shape)).collect(),
                connectors: self
                    .connectors
                    .iter()
                    .map(|(k, h)| {
                        let storage = self
                            .config
                            .as_ref()
                            .and_then(|c| parts::named_storage(&h.config.extension_references(), &c.extensions));
                        (k.clone(), (&h.config, storage))
                    })
                    .collect(),
                servers: self.servers.iter().map(|(name, s)| (name.clone(), s.settings.clone())).collect(),
                logs_encoding: self.config.as_ref().map(|c| c.service.telemetry.logs.encoding),
            };
            ReloadPlan::between(&view, next, &next_receivers, &next_servers)
        };
        summary.needs_restart.extend(plan.needs_restart.iter().cloned());
        let exporter_steps = &plan.exporters;
        let pipeline_kept = &plan.pipelines;
        let next_limiters: BTreeMap<ComponentId, &Arc<dyn ProcessorSpec>> =
            used_limiters(next).into_iter().filter(|(id, _)| plan.limiters.get(id) == Some(&false)).collect();

        // Start every new part before touching a running one.
        let mut started = Started::default();
        if let Err(e) = self.start_connectors(next, &plan.connectors, &mut started) {
            started.undo().await;
            return Err(ReloadError::NotApplied(e));
        }
        if let Err(e) = self.start_parts(next, exporter_steps, &next_limiters, pipeline_kept, &mut started).await {
            started.undo().await;
            return Err(ReloadError::NotApplied(e));
        }
        let mut errors: Vec<String> = Vec::new();

        // Kept pipelines whose queues change pause between two batches.
        let mut paused: Vec<PausedPipeline> = Vec::new();
        for (pid, p) in &next.service.pipelines {
            if !pipeline_kept[pid] {
                continue;
            }
            let want = self.queues_of(next, pid, p, &started);
            let handle = &self.pipelines[pid];
            if same_queues(&handle.queues, &want) {
                continue;
            }
            let mut resumes = Vec::new();
            let mut confirmations = Vec::new();
            for control in &handle.controls {
                let (paused_tx, paused_rx) = tokio::sync::oneshot::channel();
                let (resume_tx, resume_rx) = crossbeam_channel::bounded(1);
                if control.send(Control::Pause { paused: paused_tx, resume: resume_rx }).is_ok() {
                    confirmations.push(paused_rx);
                    resumes.push(resume_tx);
                }
            }
            for c in confirmations {
                let _ = c.await;
            }
            paused.push(PausedPipeline { pid: pid.clone(), resumes, queues: want });
        }

        // Route every receiver to the pipelines of the new config.
        let mut doors: BTreeMap<PipelineId, Arc<PipelineDoor>> = BTreeMap::new();
        for pid in next.service.pipelines.keys() {
            let door = match started.pipelines.get(pid) {
                Some(h) => h.door.clone(),
                None => self.pipelines[pid].door.clone(),
            };
            doors.insert(pid.clone(), door);
        }
        // Connectors feed the pipelines of the new config (a replaced
        // instance drains there too; a removed one into the doors it knew,
        // which forward to their successors).
        for (key, h) in self.connectors.iter().chain(started.connectors.iter()) {
            if plan.connectors.contains_key(key) {
                h.output.route(next, key, &doors);
            }
        }
        let outputs = parts::receiver_outputs(next, &doors);
        for (rid, handle) in &self.receivers {
            if let Some(output) = outputs.get(rid) {
                handle.output.replace_with(output);
            }
        }

        // Retire replaced and removed pipelines: they drain into the queues
        // they fed. In feeding order: a retired connector drains into a
        // pipeline it feeds before that pipeline retires, once every
        // pipeline that feeds the connector has drained into it.
        let old = self.config.clone();
        let mut retired: Vec<&PipelineId> = plan.pipelines_retired.iter().map(|(pid, _)| pid).collect();
        if let Some(old) = &old {
            let order = connector::feeding_order(old);
            retired.sort_by_key(|pid| order.iter().position(|p| p == *pid));
        }
        let mut draining = Vec::new();
        for pid in retired {
            let feeding: Vec<ConnectorKey> = old
                .as_ref()
                .map(|o| connector::feeding(o, pid))
                .unwrap_or_default()
                .into_iter()
                .filter(|k| plan.connectors_retired.contains(k) && self.connectors.contains_key(k))
                .collect();
            if !feeding.is_empty() {
                for (pid, threads) in draining.drain(..) {
                    if !join_workers(threads).await {
                        error!(pipeline = %pid, "a pipeline worker panicked while draining");
                    }
                    if let Some(h) = started.pipelines.get_mut(&pid) {
                        h.release();
                    }
                }
                for key in feeding {
                    if let Some(h) = self.connectors.remove(&key) {
                        let _ = h.retire().await;
                        if !plan.connectors.contains_key(&key) {
                            summary.removed.push(connector_name(&key));
                        }
                    }
                }
            }
            let Some(handle) = self.pipelines.remove(pid) else { continue };
            let pid = pid.clone();
            let successor = doors.get(&pid).cloned();
            if successor.is_some() {
                summary.replaced.push(format!("pipelines::{pid}"));
            } else {
                summary.removed.push(format!("pipelines::{pid}"));
                telemetry::unregister_pipeline_gauges(&self.registry, &pid.to_string());
            }
            draining.push((pid, handle.retire(successor)));
        }
        // A replacement takes its first batch once the pipeline it replaces
        // has flushed: what that one saved to a storage is what it reads.
        for (pid, threads) in draining {
            if !join_workers(threads).await {
                error!(pipeline = %pid, "a pipeline worker panicked while draining");
            }
            if let Some(h) = started.pipelines.get_mut(&pid) {
                h.release();
            }
        }
        for PausedPipeline { pid, resumes, queues: want } in paused {
            for r in resumes {
                let _ = r.send(want.clone());
            }
            if let Some(h) = self.pipelines.get_mut(&pid) {
                h.queues = want;
            }
        }
        for (pid, mut handle) in std::mem::take(&mut started.pipelines) {
            handle.release();
            handle.register_gauges(&self.registry, &pid);
            if !self.pipelines.contains_key(&pid) && !summary.replaced.contains(&format!("pipelines::{pid}")) {
                summary.added.push(format!("pipelines::{pid}"));
            }
            self.pipelines.insert(pid, handle);
        }
        summary.kept += pipeline_kept.values().filter(|k| **k).count();

        // Connectors: no pipeline pushes to a retired instance's queue any more.
        for key in &plan.connectors_retired {
            let Some(h) = self.connectors.remove(key) else { continue };
            self.retiring.push(h.retire());
            if !plan.connectors.contains_key(key) {
                summary.removed.push(connector_name(key));
            }
        }
        for (key, h) in std::mem::take(&mut started.connectors) {
            let replaced = plan.connectors_retired.contains(&key);
            summary.added.extend((!replaced).then(|| connector_name(&key)));
            summary.replaced.extend(replaced.then(|| connector_name(&key)));
            self.connectors.insert(key, h);
        }
        summary.kept += plan.connectors.values().filter(|k| **k).count();

        // Exporters: no pipeline pushes to a replaced queue any more.
        for key in &plan.exporters_removed {
            let Some(h) = self.exporters.remove(key) else { continue };
            h.queue.close();
            self.retiring.push(h.consumers.task);
            telemetry::unregister_queue_gauges(&self.registry, &key.0.to_string(), key.1);
            summary.removed.push(exporter_name(&key.0, key.1));
        }
        for (key, step) in exporter_steps {
            let name = exporter_name(&key.0, key.1);
            let cfg = &next.exporters[&key.0];
            let storage = queue_storage(cfg, &next.extensions).cloned();
            match step {
                ExporterStep::Keep => summary.kept += 1,
                ExporterStep::NewConsumers => {
                    let Some(consumers) = started.consumers.remove(key) else { continue };
                    if let Some(h) = self.exporters.get_mut(key) {
                        let old = std::mem::replace(&mut h.consumers, consumers);
                        self.retiring.push(old.stop());
                        h.config = cfg.clone();
                        h.storage = storage;
                    }
                    summary.replaced.push(name);
                }
                ExporterStep::Replace | ExporterStep::Add => {
                    let (Some(queue), Some(consumers)) = (started.queues.remove(key), started.consumers.remove(key))
                    else {
                        continue;
                    };
                    parts::register_queue_gauges(&self.registry, &key.0, key.1, &queue);
                    let handle = ExporterHandle { config: cfg.clone(), storage, queue, consumers };
                    if let Some(old) = self.exporters.insert(key.clone(), handle) {
                        old.queue.close();
                        self.retiring.push(old.consumers.task);
                        summary.replaced.push(name);
                    } else {
                        summary.added.push(name);
                    }
                }
            }
        }

        // Receivers: stop the removed and changed ones (ports may move between
        // receivers), then start the changed and new ones.
        let mut restart: BTreeMap<ComponentId, ReceiverHandle> = BTreeMap::new();
        for (rid, step) in &plan.receivers {
            match step {
                ListenerStep::Keep => summary.kept += 1,
                ListenerStep::Start => {}
                ListenerStep::Restart => {
                    if let Some(handle) = self.receivers.remove(rid) {
                        restart.insert(rid.clone(), handle);
                    }
                }
                ListenerStep::Stop => {
                    let Some(handle) = self.receivers.remove(rid) else { continue };
                    self.stop_receiver(handle).await;
                    self.health.forget_receiver(&rid.to_string());
                    summary.removed.push(format!("receivers::{rid}"));
                }
            }
        }
        let mut previous: BTreeMap<ComponentId, (ReceiverOutput, std::sync::Arc<dyn crate::receivers::ReceiverSpec>)> =
            BTreeMap::new();
        for (rid, handle) in restart {
            previous.insert(rid.clone(), (handle.output.clone(), handle.shape.config().clone()));
            self.stop_receiver(handle).await;
        }
        for (rid, output) in &outputs {
            if self.receivers.contains_key(rid) {
                continue;
            }
            let Some(cfg) = next.receivers.get(rid) else { continue };
            match start_receiver(rid, cfg, next, output.clone(), &self.registry, &self.health).await {
                Ok(handle) => {
                    let what = format!("receivers::{rid}");
                    if previous.contains_key(rid) {
                        summary.replaced.push(what);
                    } else {
                        summary.added.push(what);
                    }
                    self.receivers.insert(rid.clone(), handle);
                }
                Err(e) if strict => return Err(ReloadError::NotApplied(e)),
                Err(e) => {
                    let old_config = self.config.clone();
                    let restored = match (previous.get(rid), old_config) {
                        (Some((_, old_cfg)), Some(old)) => {
                            start_receiver(rid, old_cfg, &old, output.clone(), &self.registry, &self.health).await.ok()
                        }
                        _ => None,
                    };
                    match restored {
                        Some(handle) => {
                            errors.push(format!("{e}; receivers::{rid} keeps its previous settings"));
                            self.receivers.insert(rid.clone(), handle);
                        }
                        None => errors.push(format!("{e}; receivers::{rid} is not running")),
                    }
                }
            }
        }

        // Memory limiters no pipeline uses any more, or replaced.
        for id in &plan.limiters_stopped {
            if let Some(l) = self.limiters.remove(id) {
                l.stop();
            }
            if !plan.limiters.contains_key(id) {
                summary.removed.push(format!("processors::{id}"));
            }
        }
        for (id, l) in std::mem::take(&mut started.limiters) {
            self.limiters.insert(id, l);
        }

        // The agent's own servers.
        for (name, step) in &plan.servers {
            if matches!(step, ListenerStep::Restart | ListenerStep::Stop) {
                if let Some(s) = self.servers.remove(name) {
                    let _ = s.stop().await;
                }
                if *step == ListenerStep::Stop {
                    summary.removed.push(name.clone());
                }
            }
        }
        for name in next_servers.keys() {
            if self.servers.contains_key(name) {
                summary.kept += 1;
                continue;
            }
            match start_server(name, next, &self.registry, &self.health).await {
                Ok(s) => {
                    if self.config.is_some() {
                        summary.replaced.push(name.clone());
                    }
                    self.servers.insert(name.clone(), s);
                }
                Err(e) if strict => return Err(ReloadError::NotApplied(e)),
                Err(e) => {
                    let restored = match &self.config {
                        Some(old) if wanted_servers(old).contains_key(name) => {
                            start_server(name, old, &self.registry, &self.health).await.ok()
                        }
                        _ => None,
                    };
                    match restored {
                        Some(s) => {
                            errors.push(format!("{e}; {name} keeps its previous settings"));
                            self.servers.insert(name.clone(), s);
                        }
                        None => errors.push(format!("{e}; {name} is not running")),
                    }
                }
            }
        }

        self.shutdown_timeout = next.service.shutdown_timeout;
        self.config = Some(next.clone());
        self.endpoints = self
            .servers
            .iter()
            .map(|(name, s)| (name.clone(), s.addr))
            .chain(self.receivers.iter().flat_map(|(rid, r)| {
                r.endpoints.iter().map(move |(transport, addr)| (format!("receiver {rid} {transport}"), *addr))
            }))
            .collect();
        self.retiring.retain(|t| !t.is_finished());
        if errors.is_empty() {
            Ok(summary)
        } else {
            Err(ReloadError::Partial(errors))
        }
    }

    /// Starts the connector instances the plan does not keep.
    fn start_connectors(
        &self,
        next: &AgentConfig,
        steps: &BTreeMap<ConnectorKey, bool>,
        started: &mut Started,
    ) -> Result<(), StartError> {
        let specs = connector::connector_instances(next);
        for (key, kept) in steps {
            if *kept {
                continue;
            }
            let Some(spec) = specs.get(key) else { continue };
            let handle = connector::start_connector(key, spec, &self.registry, &next.extensions)?;
            started.connectors.insert(key.clone(), handle);
        }
        Ok(())
    }

    /// Starts the limiters, queues, consumers and pipelines the plan needs.
    async fn start_parts(
        &self,
        next: &AgentConfig,
        exporter_steps: &BTreeMap<(ComponentId, Signal), ExporterStep>,
        next_limiters: &BTreeMap<ComponentId, &Arc<dyn ProcessorSpec>>,
        pipeline_kept: &BTreeMap<PipelineId, bool>,
        started: &mut Started,
    ) -> Result<(), StartError> {
        for (id, cfg) in next_limiters {
            if self.limiters.get(id).is_some_and(|l| l.config.as_ref() == cfg.as_ref()) {
                continue;
            }
            if let Some(l) = start_limiter(id, cfg) {
                started.limiters.insert(id.clone(), l);
            }
        }
        for (key, step) in exporter_steps {
            let cfg = &next.exporters[&key.0];
            let queue = match step {
                ExporterStep::Keep => continue,
                ExporterStep::NewConsumers => self.exporters[key].queue.clone(),
                ExporterStep::Replace | ExporterStep::Add => {
                    let q = parts::open_queue(&key.0, cfg, key.1, &next.extensions, &self.registry)?;
                    started.queues.insert(key.clone(), q.clone());
                    q
                }
            };
            let interval = next.service.telemetry.logs.failure_summary_interval.get();
            let consumers = start_consumers(&key.0, cfg, key.1, queue, &self.registry, &self.health, interval)?;
            started.consumers.insert(key.clone(), consumers);
        }
        let gates: BTreeMap<ComponentId, MemoryGate> = self
            .limiters
            .iter()
            .map(|(id, l)| (id.clone(), l.gate.clone()))
            .chain(started.limiters.iter().map(|(id, l)| (id.clone(), l.gate.clone())))
            .collect();
        for (pid, p) in &next.service.pipelines {
            if pipeline_kept[pid] {
                continue;
            }
            let queues = self.queues_of(next, pid, p, started);
            let handle = start_pipeline(pid, p, next, &gates, queues, &self.registry)?;
            started.pipelines.insert(pid.clone(), handle);
        }
        Ok(())
    }

    /// The queues pipeline `pid` of the new config feeds: those the reload
    /// opened, else the running exporters'.
    fn queues_of(
        &self,
        next: &AgentConfig,
        pid: &PipelineId,
        p: &PipelineConfig,
        started: &Started,
    ) -> Vec<Arc<SendingQueue>> {
        let exporters = pipeline_outlets(pid, p).into_iter().filter_map(|k| {
            started.queues.get(&k).cloned().or_else(|| self.exporters.get(&k).map(|h| h.queue.clone()))
        });
        let connectors = connector::pipeline_connectors(next, pid)
            .into_iter()
            .filter_map(|k| started.connectors.get(&k).or_else(|| self.connectors.get(&k)).map(|h| h.queue.clone()));
        exporters.chain(connectors).collect()
    }

    /// Stops a receiver and waits, within the shutdown timeout, for its open requests.
    async fn stop_receiver(&self, handle: ReceiverHandle) {
        let tasks = handle.stop();
        let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        let all = async {
            for t in tasks {
                let _ = t.await;
            }
        };
        if tokio::time::timeout(self.shutdown_timeout, all).await.is_err() {
            warn!(timeout = ?self.shutdown_timeout, "a replaced receiver still had open requests; closing them");
            for a in aborts {
                a.abort();
            }
        }
    }

    /// Stops accepting, drains pipelines and queues within the shutdown timeout.
    pub async fn shutdown(mut self) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let persistent = self.exporters.values().any(|e| e.queue.is_persistent());
        let queues: Vec<Arc<SendingQueue>> = self.exporters.values().map(|e| e.queue.clone()).collect();
        self.health.set_shutting_down();
        let receivers = std::mem::take(&mut self.receivers);
        let mut pipelines = std::mem::take(&mut self.pipelines);
        let exporters = std::mem::take(&mut self.exporters);
        let mut connectors = std::mem::take(&mut self.connectors);
        let retiring = std::mem::take(&mut self.retiring);
        let config = self.config.clone();
        let drain = async move {
            let tasks: Vec<JoinHandle<()>> = receivers.into_values().flat_map(|r| r.stop()).collect();
            for t in tasks {
                let _ = t.await;
            }
            // Pipelines that feed others through connectors stop first, and a
            // connector stops once every pipeline that feeds it has, so what
            // they hold reaches the pipelines downstream before those stop.
            let order = config.as_ref().map(connector::feeding_order).unwrap_or_default();
            let mut threads = Vec::new();
            for pid in order {
                if let Some(c) = &config {
                    for key in connector::feeding(c, &pid) {
                        if let Some(h) = connectors.remove(&key) {
                            let _ = h.retire().await;
                        }
                    }
                }
                if let Some(p) = pipelines.remove(&pid) {
                    if connectors.is_empty() && config.as_ref().is_some_and(|c| c.connectors.is_empty()) {
                        threads.push((pid, p.retire(None)));
                    } else if !join_workers(p.retire(None)).await {
                        error!(pipeline = %pid, "a pipeline worker panicked during shutdown");
                    }
                }
            }
            for (pid, p) in pipelines {
                threads.push((pid, p.retire(None)));
            }
            for (_, h) in connectors {
                let _ = h.retire().await;
            }
            for (pid, t) in threads {
                if !join_workers(t).await {
                    error!(pipeline = %pid, "a pipeline worker panicked during shutdown");
                }
            }
            for e in exporters.values() {
                e.queue.close();
            }
            for (_, e) in exporters {
                let _ = e.consumers.task.await;
            }
            for t in retiring {
                let _ = t.await;
            }
        };
        let report = match tokio::time::timeout_at(deadline, drain).await {
            Ok(()) => ShutdownReport { clean: true, abandoned_batches: 0 },
            Err(_) => {
                let on_disk: usize = queues.iter().filter(|q| q.is_persistent()).map(|q| q.len()).sum();
                let lost: usize = queues.iter().filter(|q| !q.is_persistent()).map(|q| q.len()).sum();
                if persistent {
                    warn!(timeout = ?self.shutdown_timeout, lost_batches = lost, batches_kept_on_disk = on_disk, "shutdown timed out before every queue drained; what persistent queues hold stays on disk for the next start, the rest is lost");
                } else {
                    error!(timeout = ?self.shutdown_timeout, lost_batches = lost, "shutdown timed out before every queue drained; the batches still queued are lost");
                }
                ShutdownReport { clean: false, abandoned_batches: lost }
            }
        };
        for signal in [Signal::Traces, Signal::Metrics, Signal::Logs] {
            let t = telemetry::SignalTotals::of(&self.registry, signal);
            if !t.is_empty() {
                tracing::info!(
                    %signal,
                    accepted = t.accepted as u64,
                    refused = t.refused as u64,
                    dropped_by_processors = t.dropped_by_processors as u64,
                    sent = t.sent as u64,
                    send_failed = t.send_failed as u64,
                    "shutdown totals"
                );
            }
        }
        for (_, s) in std::mem::take(&mut self.servers) {
            s.stop().abort();
        }
        for (_, l) in std::mem::take(&mut self.limiters) {
            l.stop();
        }
        report
    }
}

#[cfg(test)]
#[path = "agent_tests.rs"]
mod tests;
