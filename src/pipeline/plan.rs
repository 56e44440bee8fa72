//! A config reload as a plan: which parts to keep, start anew, hand a new
//! exporter, restart or stop, decided from what runs and the next config
//! alone.
//!
//! Guarantee: planning touches nothing. [`ReloadPlan::between`] reads a
//! [`RunningView`] (the settings each running part was started with) and the
//! next config, does no I/O and starts nothing; `agent.rs` carries the plan
//! out. So every decision a reload makes is a table-driven unit test.

use super::connector::{connector_instances, ConnectorKey};
use super::parts::{named_storage, pipeline_outlets, queue_identity, queue_storage, PipelineShape, ReceiverShape};
use crate::config::{ComponentId, PipelineId};
use crate::connectors::ConnectorSpec;
use crate::data::Signal;
use crate::exporters::ExporterSpec;
use crate::processors::ProcessorSpec;
use crate::queue::storage_config::FileStorageConfig;
use crate::service::{AgentConfig, LogEncoding};
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a reload does with one exporter instance (an exporter for one signal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExporterStep {
    Keep,
    /// Same queue, new exporter settings: new consumers take over the queue.
    NewConsumers,
    /// A new queue (its settings changed); the old one drains to the old exporter.
    Replace,
    Add,
}

/// What a reload does with a receiver, or with one of the agent's servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerStep {
    Keep,
    /// Stopped, then started with the new settings (ports may move between
    /// receivers, so every stop comes before every start).
    Restart,
    Start,
    Stop,
}

/// A running exporter instance's settings: the exporter's and its queue's storage.
pub type RunningExporter<'a> = (&'a Arc<dyn ExporterSpec>, Option<&'a FileStorageConfig>);

/// The settings the running parts were started with.
#[derive(Default)]
pub struct RunningView<'a> {
    pub exporters: BTreeMap<(ComponentId, Signal), RunningExporter<'a>>,
    pub limiters: BTreeMap<ComponentId, &'a Arc<dyn ProcessorSpec>>,
    pub pipelines: BTreeMap<PipelineId, &'a PipelineShape>,
    pub receivers: BTreeMap<ComponentId, &'a ReceiverShape>,
    /// Each running connector, and the `file_storage` it keeps files in.
    pub connectors: BTreeMap<ConnectorKey, (&'a Arc<dyn ConnectorSpec>, Option<&'a FileStorageConfig>)>,
    /// Server name (`metrics`, `extension health_check`) → its settings.
    pub servers: BTreeMap<String, String>,
    /// `None` before the first config runs.
    pub logs_encoding: Option<LogEncoding>,
}

/// Everything a reload will do.
#[derive(Debug, Default, PartialEq)]
pub struct ReloadPlan {
    /// Every exporter instance of the next config.
    pub exporters: BTreeMap<(ComponentId, Signal), ExporterStep>,
    /// Running exporter instances the next config does not have.
    pub exporters_removed: Vec<(ComponentId, Signal)>,
    /// The memory limiters some pipeline of the next config lists: kept (true) or started.
    pub limiters: BTreeMap<ComponentId, bool>,
    /// Running limiters to stop: no pipeline uses them, or a new one replaces them.
    pub limiters_stopped: Vec<ComponentId>,
    /// Every pipeline of the next config: kept (true) or started.
    pub pipelines: BTreeMap<PipelineId, bool>,
    /// Running pipelines to retire: replaced (`Some`: their successor) or removed.
    pub pipelines_retired: Vec<(PipelineId, bool)>,
    pub receivers: BTreeMap<ComponentId, ListenerStep>,
    /// Every connector instance of the next config: kept (true, with its
    /// state) or started.
    pub connectors: BTreeMap<ConnectorKey, bool>,
    /// Running connector instances to retire: replaced or removed. Each
    /// drains what it holds into the pipelines it feeds first.
    pub connectors_retired: Vec<ConnectorKey>,
    pub servers: BTreeMap<String, ListenerStep>,
    /// Changed settings a running part cannot take; they apply at the next start.
    pub needs_restart: Vec<String>,
}

impl ReloadPlan {
    /// The plan from `running` to `next`. `next_receivers` are the shapes
    /// of the receivers the next config routes to (computed by the caller,
    /// which reads the files they name).
    pub fn between(
        running: &RunningView<'_>,
        next: &AgentConfig,
        next_receivers: &BTreeMap<ComponentId, ReceiverShape>,
        next_servers: &BTreeMap<String, String>,
    ) -> ReloadPlan {
        let mut plan = ReloadPlan::default();

        for (pid, p) in &next.service.pipelines {
            for key in pipeline_outlets(pid, p) {
                let Some(cfg) = next.exporters.get(&key.0) else { continue };
                let storage = queue_storage(cfg, &next.extensions);
                let step = match running.exporters.get(&key) {
                    None => ExporterStep::Add,
                    Some((old, old_storage)) if old.as_ref() == cfg.as_ref() && *old_storage == storage => {
                        ExporterStep::Keep
                    }
                    Some((old, old_storage)) if queue_identity(old, *old_storage) == queue_identity(cfg, storage) => {
                        if storage.is_some()
                            && persistent_settings(old, *old_storage) != persistent_settings(cfg, storage)
                        {
                            plan.needs_restart.push(format!(
                                "exporters::{}::sending_queue (a persistent queue's size, policy and fsync change at the next start)",
                                key.0
                            ));
                        }
                        ExporterStep::NewConsumers
                    }
                    Some(_) => ExporterStep::Replace,
                };
                plan.exporters.insert(key, step);
            }
        }
        plan.exporters_removed =
            running.exporters.keys().filter(|k| !plan.exporters.contains_key(*k)).cloned().collect();

        let next_limiters = used_limiters(next);
        for (id, cfg) in &next_limiters {
            let kept = running.limiters.get(id).is_some_and(|l| l.as_ref() == cfg.as_ref());
            plan.limiters.insert(id.clone(), kept);
        }
        plan.limiters_stopped =
            running.limiters.keys().filter(|id| plan.limiters.get(*id) != Some(&true)).cloned().collect();

        for (pid, p) in &next.service.pipelines {
            let shape = PipelineShape::of(next, p);
            let limiters_kept = p
                .processors
                .iter()
                .filter_map(|s| ComponentId::parse(s).ok())
                .all(|id| plan.limiters.get(&id).copied().unwrap_or(true));
            let kept = running.pipelines.get(pid).is_some_and(|s| **s == shape) && limiters_kept;
            plan.pipelines.insert(pid.clone(), kept);
        }
        plan.pipelines_retired = running
            .pipelines
            .keys()
            .filter(|pid| plan.pipelines.get(*pid) != Some(&true))
            .map(|pid| (pid.clone(), plan.pipelines.contains_key(pid)))
            .collect();

        for (rid, shape) in &running.receivers {
            let step = match next_receivers.get(rid) {
                Some(next_shape) if next_shape == *shape => ListenerStep::Keep,
                Some(_) => ListenerStep::Restart,
                None => ListenerStep::Stop,
            };
            plan.receivers.insert(rid.clone(), step);
        }
        for rid in next_receivers.keys() {
            plan.receivers.entry(rid.clone()).or_insert(ListenerStep::Start);
        }

        for (key, cfg) in connector_instances(next) {
            let storage = named_storage(&cfg.extension_references(), &next.extensions);
            let kept = running
                .connectors
                .get(&key)
                .is_some_and(|(c, running_storage)| c.as_ref() == cfg.as_ref() && *running_storage == storage);
            plan.connectors.insert(key, kept);
        }
        plan.connectors_retired =
            running.connectors.keys().filter(|k| plan.connectors.get(*k) != Some(&true)).cloned().collect();

        for (name, settings) in &running.servers {
            let step = match next_servers.get(name) {
                Some(s) if s == settings => ListenerStep::Keep,
                Some(_) => ListenerStep::Restart,
                None => ListenerStep::Stop,
            };
            plan.servers.insert(name.clone(), step);
        }
        for name in next_servers.keys() {
            plan.servers.entry(name.clone()).or_insert(ListenerStep::Start);
        }

        // The level is the command line's to change (it owns the log filter).
        if running.logs_encoding.is_some_and(|e| e != next.service.telemetry.logs.encoding) {
            plan.needs_restart.push("service::telemetry::logs::encoding".to_string());
        }
        plan
    }
}

/// The memory limiters some pipeline of `config` lists.
pub(super) fn used_limiters(config: &AgentConfig) -> BTreeMap<ComponentId, &Arc<dyn ProcessorSpec>> {
    config
        .service
        .pipelines
        .values()
        .flat_map(|p| &p.processors)
        .filter_map(|s| ComponentId::parse(s).ok())
        .filter_map(|id| config.processors.get(&id).filter(|c| c.admission().is_some()).map(|c| (id, c)))
        .collect()
}

/// The settings of a persistent queue that only a restart changes.
fn persistent_settings(
    cfg: &Arc<dyn ExporterSpec>,
    storage: Option<&FileStorageConfig>,
) -> (u64, crate::queue::Sizer, u64, crate::queue::FullQueuePolicy, Option<bool>) {
    let (q, _) = cfg.sending();
    (q.queue_size, q.queue_sizer(), q.max_size_mib, q.policy(), storage.map(|s| s.fsync))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
