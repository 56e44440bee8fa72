//! The running parts of an agent, each started and stopped on its own so a
//! config reload can keep some and replace others: exporter queues and their
//! consumers, memory limiters, pipelines (door and workers), receivers, and
//! the agent's own HTTP servers.
//!
//! Starting a part never touches a running one. Stopping is split in two
//! where a reload needs it: a pipeline's door closes (forwarding to its
//! successor) before its workers drain; an exporter's consumers can stop
//! while its queue lives on for the consumers that replace them.

use super::chain::{ProcessorChain, Stage};
use super::{
    forwards_encoded, open_persistent_queue, shard, worker_loop, Control, DoorInput, Fill, PipelineDoor, StartError,
    Work,
};
use crate::config::{ComponentId, PipelineId};
use crate::data::Signal;
use crate::exporters::runner::{Consumers, RunnerParts};
use crate::exporters::ExporterSpec;
use crate::extensions::ExtensionSpec;
use crate::processors::memory_limiter::MemoryGate;
use crate::processors::{DataForm, ProcessorContext, ProcessorSpec};
use crate::queue::storage_config::FileStorageConfig;
use crate::queue::SendingQueue;
use crate::receivers::ReceiverSpec;
use crate::receivers::{BatchSink, ReceiverContext, ReceiverOutput};
use crate::service::{AgentConfig, ChannelCapacity, PipelineConfig};
use crate::telemetry::{self, health::HealthState, ExporterMetrics, ProcessorMetrics, Registry};
use crossbeam_channel::Sender;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// The `file_storage` extension an exporter's sending queue lives in, if it
/// is persistent. Validation made sure the ID names one.
pub(super) fn queue_storage<'a>(
    cfg: &Arc<dyn ExporterSpec>,
    extensions: &'a BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
) -> Option<&'a FileStorageConfig> {
    let (queue_cfg, _) = cfg.sending();
    file_storage(queue_cfg.storage.as_deref().filter(|_| queue_cfg.enabled)?, extensions)
}

/// The `file_storage` extension with this ID, if it is one.
fn file_storage<'a>(
    id: &str,
    extensions: &'a BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
) -> Option<&'a FileStorageConfig> {
    extensions.get(&ComponentId::parse(id).ok()?)?.storage()
}

/// The `file_storage` extension a processor names as its `storage`, if any.
fn processor_storage<'a>(
    spec: &Arc<dyn ProcessorSpec>,
    extensions: &'a BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
) -> Option<&'a FileStorageConfig> {
    named_storage(&spec.extension_references(), extensions)
}

/// The `file_storage` extension a component's references name as its
/// storage, if any: a reload compares it, so that a component whose own
/// settings are unchanged is started again when its directory moved.
pub(super) fn named_storage<'a>(
    refs: &[crate::extensions::ExtensionReference<'_>],
    extensions: &'a BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
) -> Option<&'a FileStorageConfig> {
    let (_, name, _) = refs.iter().find(|(_, _, u)| *u == crate::extensions::ExtensionUse::Storage)?;
    file_storage(name, extensions)
}

/// The directory a processor keeps its files in, under the `file_storage`
/// extension it names: `processor_<id>_<pipeline>`, every byte that is not
/// `[A-Za-z0-9_-]` written as `%XX` (as queue directories), so two
/// processors or pipelines never share one. Validation made sure the ID
/// names a storage extension.
fn processor_storage_dir(
    spec: &Arc<dyn ProcessorSpec>,
    id: &ComponentId,
    pid: &PipelineId,
    extensions: &BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
) -> Option<std::path::PathBuf> {
    let fs = processor_storage(spec, extensions)?;
    let mut dir = String::from("processor_");
    for (i, part) in [id.to_string(), pid.to_string()].iter().enumerate() {
        if i > 0 {
            dir.push('_');
        }
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
                dir.push(b as char);
            } else {
                dir.push_str(&format!("%{b:02X}"));
            }
        }
    }
    Some(std::path::Path::new(&fs.directory).join(dir))
}

/// What decides whether a reload can keep an exporter's queue: a memory
/// queue's size, sizer, policy and wait_for_result, or a persistent queue's directory (its other
/// settings apply at the next start; the reload says so).
#[derive(Debug, PartialEq)]
pub(super) enum QueueIdentity {
    Memory {
        capacity: u64,
        sizer: crate::queue::Sizer,
        policy: crate::exporters::otlp_common::FullQueuePolicy,
        wait_for_result: bool,
    },
    Disk {
        directory: String,
    },
}

pub(super) fn queue_identity(cfg: &Arc<dyn ExporterSpec>, storage: Option<&FileStorageConfig>) -> QueueIdentity {
    let (q, _) = cfg.sending();
    match storage {
        Some(fs) => QueueIdentity::Disk { directory: fs.directory.clone() },
        None => QueueIdentity::Memory {
            capacity: if q.enabled { q.queue_size.max(1) } else { 1 },
            sizer: if q.enabled { q.queue_sizer() } else { crate::queue::Sizer::Requests },
            policy: q.policy(),
            wait_for_result: q.enabled && q.wait_for_result,
        },
    }
}

/// Opens an exporter's sending queue (in memory, or on disk and replayed).
pub(super) fn open_queue(
    id: &ComponentId,
    cfg: &Arc<dyn ExporterSpec>,
    signal: Signal,
    extensions: &BTreeMap<ComponentId, Arc<dyn ExtensionSpec>>,
    registry: &Registry,
) -> Result<Arc<SendingQueue>, StartError> {
    let name = id.to_string();
    let (queue_cfg, _) = cfg.sending();
    let metrics = ExporterMetrics::new(registry, &name, signal);
    // A disabled queue still needs one slot to hand batches to the sender.
    let (capacity, sizer) = if queue_cfg.enabled {
        (queue_cfg.queue_size, queue_cfg.queue_sizer())
    } else {
        (1, crate::queue::Sizer::Requests)
    };
    let queue = match queue_storage(cfg, extensions) {
        Some(fs) => Arc::new(open_persistent_queue(fs, &name, signal, capacity, &queue_cfg, &metrics, registry)?),
        None => {
            let counters = crate::queue::QueueCounters {
                enqueue_failed: metrics.enqueue_failed.clone(),
                too_large: metrics.queue_too_large.clone(),
            };
            let queue = SendingQueue::new(capacity, sizer, queue_cfg.policy(), counters);
            Arc::new(if queue_cfg.enabled && queue_cfg.wait_for_result { queue.waiting_for_result() } else { queue })
        }
    };
    Ok(queue)
}

/// Points the queue gauges of an exporter instance at `queue`.
pub(super) fn register_queue_gauges(registry: &Registry, id: &ComponentId, signal: Signal, queue: &Arc<SendingQueue>) {
    let q = queue.clone();
    let (capacity, sizer) = (queue.capacity(), queue.sizer().as_str());
    telemetry::register_queue_gauges(registry, &id.to_string(), signal, capacity, sizer, move || q.size() as f64);
}

/// Builds the exporter and starts its consumers on `queue`.
pub(super) fn start_consumers(
    id: &ComponentId,
    cfg: &Arc<dyn ExporterSpec>,
    signal: Signal,
    queue: Arc<SendingQueue>,
    registry: &Registry,
    health: &HealthState,
    failure_summary_interval: std::time::Duration,
) -> Result<Consumers, StartError> {
    let name = id.to_string();
    let (queue_cfg, retry) = cfg.sending();
    let destination = cfg.destination(signal);
    let parts = RunnerParts {
        queue,
        consumers: if queue_cfg.enabled { queue_cfg.num_consumers } else { 1 },
        retry,
        metrics: ExporterMetrics::new(registry, &name, signal),
        health: health.exporter(&name),
        name: format!("{name} ({signal})"),
        destination: destination.clone(),
        failure_summary_interval,
        batch: queue_cfg.batch_settings().map(|b| (b, telemetry::QueueBatchMetrics::new(registry, &name, signal))),
    };
    let consumers = cfg
        .start(&name, signal, registry, parts)
        .map_err(|message| StartError::Exporter { id: name.clone(), message })?;
    info!(exporter = %name, %signal, %destination, "exporter started");
    Ok(consumers)
}

/// One exporter instance for one signal: its queue and its consumers.
pub(super) struct ExporterHandle {
    pub config: Arc<dyn ExporterSpec>,
    pub storage: Option<FileStorageConfig>,
    pub queue: Arc<SendingQueue>,
    pub consumers: Consumers,
}

/// A running memory limiter: one gate, shared by every pipeline that lists it.
pub(super) struct LimiterHandle {
    pub config: Arc<dyn ProcessorSpec>,
    pub gate: MemoryGate,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl LimiterHandle {
    pub fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
}

/// Starts the checker of a `memory_limiter`.
pub(super) fn start_limiter(id: &ComponentId, cfg: &Arc<dyn ProcessorSpec>) -> Option<LimiterHandle> {
    let admission = cfg.admission()?;
    let limits = admission.limits;
    let gate = MemoryGate::default();
    let (g, interval, name) = (gate.clone(), admission.check_interval, id.to_string());
    info!(processor = %name, limit_mib = limits.hard >> 20, soft_limit_mib = limits.soft >> 20, "memory limiter active");
    let (stop, mut stop_rx) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = stop_rx.wait_for(|v| *v) => break,
            }
            let used = telemetry::process::rss_bytes();
            if g.update(&limits, used) {
                telemetry::process::MEMORY_REFUSING.store(g.refusing(), Ordering::Relaxed);
                if g.refusing() {
                    warn!(processor = %name, used_mib = used >> 20, soft_limit_mib = limits.soft >> 20, "memory above soft limit; refusing data");
                } else {
                    info!(processor = %name, used_mib = used >> 20, "memory below soft limit; accepting data again");
                }
            }
        }
    });
    Some(LimiterHandle { config: cfg.clone(), gate, stop, task })
}

/// What decides whether a reload can keep a pipeline's workers and the
/// state of its processors: its processors and their settings, the
/// `file_storage` each keeps its files in (a processor naming the same
/// extension whose directory moved is started again there), its worker and
/// channel sizes, and the two properties its exporters give it.
#[derive(Debug, PartialEq)]
pub(super) struct PipelineShape {
    processors: Vec<(ComponentId, Option<Arc<dyn ProcessorSpec>>)>,
    storages: Vec<Option<FileStorageConfig>>,
    workers: usize,
    channel_capacity: ChannelCapacity,
    /// No processor needs the decoded form and every exporter sends OTLP
    /// protobuf: requests go from receiver to exporter as received.
    pass_through: bool,
    /// The first processor that looks inside reads requests as received (or
    /// none looks inside): receivers check requests and do not decode them.
    reads_encoded: bool,
    /// Some exporter must decode what it sends: the chain decodes its output.
    decode_output: bool,
    durable: bool,
}

impl PipelineShape {
    pub fn of(config: &AgentConfig, p: &PipelineConfig) -> PipelineShape {
        let processors: Vec<(ComponentId, Option<Arc<dyn ProcessorSpec>>)> = p
            .processors
            .iter()
            .filter_map(|s| ComponentId::parse(s).ok())
            .map(|id| {
                let cfg = config.processors.get(&id).cloned();
                (id, cfg)
            })
            .collect();
        let forms: Vec<DataForm> =
            processors.iter().map(|(_, c)| c.as_ref().map_or(DataForm::Decoded, |c| c.data_form())).collect();
        let reads_encoded = forms.iter().find(|f| **f != DataForm::Untouched).is_none_or(|f| *f == DataForm::Either);
        let exporters_take_encoded = forwards_encoded(config, &p.exporters);
        // Receivers wait for a persistent queue's write, or for the export
        // result of a queue with `wait_for_result`.
        let durable = p.exporters.iter().filter_map(|e| ComponentId::parse(e).ok()).any(|eid| {
            config.exporters.get(&eid).is_some_and(|c| {
                let (q, _) = c.sending();
                queue_storage(c, &config.extensions).is_some() || (q.enabled && q.wait_for_result)
            })
        });
        let channel_capacity = ChannelCapacity::of(config, p);
        let storages = processors
            .iter()
            .map(|(_, spec)| spec.as_ref().and_then(|spec| processor_storage(spec, &config.extensions)).cloned())
            .collect();
        PipelineShape {
            processors,
            storages,
            workers: p.workers.max(1),
            channel_capacity,
            pass_through: exporters_take_encoded && forms.iter().all(|f| *f != DataForm::Decoded),
            reads_encoded,
            decode_output: !exporters_take_encoded,
            durable,
        }
    }
}

impl PipelineShape {
    /// How requests travel, in the operator's words (the start-up log).
    fn data_path(&self) -> &'static str {
        match (self.pass_through, self.reads_encoded) {
            (true, _) => "forwarded as received, never decoded",
            (false, true) => "checked on arrival, decoded only where a processor or exporter needs it",
            (false, false) => "decoded on arrival (a processor needs the decoded form)",
        }
    }
}

/// The exporter instances a pipeline feeds, in its `exporters` order.
pub(super) fn pipeline_outlets(pid: &PipelineId, p: &PipelineConfig) -> Vec<(ComponentId, Signal)> {
    p.exporters.iter().filter_map(|e| ComponentId::parse(e).ok()).map(|eid| (eid, pid.signal)).collect()
}

/// A running pipeline: its door and its worker threads.
pub(super) struct PipelineHandle {
    pub shape: PipelineShape,
    pub door: Arc<PipelineDoor>,
    pub controls: Vec<Sender<Control>>,
    pub workers: Vec<std::thread::JoinHandle<()>>,
    /// The queues its workers push to now.
    pub queues: Vec<Arc<SendingQueue>>,
    /// What its input holds: the door's fill, and the shared channel (whose
    /// length is the batch count of a shared input).
    fill: (Arc<Fill>, Option<crossbeam_channel::Receiver<Work>>),
    /// Present while its workers wait to take their first batch (see
    /// [`PipelineHandle::release`]).
    hold: Option<(Sender<()>, usize)>,
}

impl PipelineHandle {
    /// Points the pipeline's gauges at this instance.
    pub fn register_gauges(&self, registry: &Registry, pid: &PipelineId) {
        let (fill, shared_rx) = self.fill.clone();
        let batches = {
            let fill = fill.clone();
            move || match &shared_rx {
                Some(rx) => rx.len() as f64,
                None => fill.batches.load(Ordering::Relaxed) as f64,
            }
        };
        let bytes = move || fill.bytes() as f64;
        let (capacity, in_bytes) = match self.shape.channel_capacity {
            ChannelCapacity::Batches(n) => (n as f64, false),
            ChannelCapacity::Bytes(b) => (b as f64, true),
        };
        telemetry::register_pipeline_gauges(registry, &pid.to_string(), capacity, in_bytes, batches, bytes);
    }

    /// Lets the workers take their first batch. A pipeline whose processors
    /// keep state in a storage directory is started held: on a reload, the
    /// pipeline it replaces uses the same directory until its workers have
    /// flushed, so the agent releases this one only then (or the workers go
    /// on by themselves after `service.shutdown_timeout`, with a warning).
    pub fn release(&mut self) {
        if let Some((tx, workers)) = self.hold.take() {
            for _ in 0..workers {
                let _ = tx.send(());
            }
        }
    }

    /// Ends a pipeline that never took a batch (a reload that gave up): its
    /// workers end without running their processors, so they write nothing
    /// to the storage the running pipeline uses.
    pub fn abandon(mut self) -> Vec<std::thread::JoinHandle<()>> {
        self.hold = None;
        self.retire(None)
    }

    /// Closes the door (later offers go to `successor`) and tells the workers
    /// to drain and flush; returns the threads to join.
    pub fn retire(mut self, successor: Option<Arc<PipelineDoor>>) -> Vec<std::thread::JoinHandle<()>> {
        self.release();
        self.door.close(successor);
        for c in &self.controls {
            let _ = c.send(Control::Stop);
        }
        self.workers
    }
}

/// Builds a pipeline's door and starts its workers, feeding `queues`.
pub(super) fn start_pipeline(
    pid: &PipelineId,
    p: &PipelineConfig,
    config: &AgentConfig,
    gates: &BTreeMap<ComponentId, MemoryGate>,
    queues: Vec<Arc<SendingQueue>>,
    registry: &Registry,
) -> Result<PipelineHandle, StartError> {
    let signal = pid.signal;
    let shape = PipelineShape::of(config, p);
    let (workers_n, capacity) = (shape.workers, shape.channel_capacity);
    let specs: Vec<(ComponentId, Arc<dyn ProcessorSpec>)> =
        shape.processors.iter().filter_map(|(id, c)| Some((id.clone(), c.clone()?))).collect();
    // Routed by the key of the first keyed processor; a second keyed
    // processor with another key (rare) sees its keys spread over workers.
    let route = specs.iter().find_map(|(_, c)| shard::Route::of(c.state_key())).filter(|_| workers_n > 1);
    let fill = Arc::new(Fill::new(capacity, registry, &pid.to_string()));
    let (input, worker_rxs, sharded) = if let Some(route) = route {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers_n).map(|_| crossbeam_channel::unbounded::<Work>()).unzip();
        (DoorInput::Sharded { txs, route }, rxs, true)
    } else {
        // Slots are allocated at start: a count bound is the channel's own;
        // a byte bound is the fill's, on a channel that allocates as it grows.
        let (tx, rx) = match capacity {
            ChannelCapacity::Batches(n) => crossbeam_channel::bounded::<Work>(n),
            ChannelCapacity::Bytes(_) => crossbeam_channel::unbounded::<Work>(),
        };
        (DoorInput::Shared(tx), vec![rx; workers_n], false)
    };
    let door_limiters = specs
        .iter()
        .filter_map(|(id, _)| gates.get(id).map(|g| (id, g)))
        .map(|(id, g)| (g.clone(), ProcessorMetrics::new(registry, &id.to_string(), signal)))
        .collect();
    let fill_view = (fill.clone(), (!sharded).then(|| worker_rxs[0].clone()));
    if shape.durable {
        let holding: Vec<String> = specs.iter().filter(|(_, c)| c.holds_data()).map(|(id, _)| id.to_string()).collect();
        if !holding.is_empty() {
            warn!(pipeline = %pid, processors = %holding.join(", "), "this pipeline writes to a persistent queue (or waits for export results) after processors that hold data; clients are answered when the processor takes a batch, before it is on disk or sent, so a crash can lose what the processor holds");
        }
    }
    let decode_failures = telemetry::pipeline_decode_failures(registry, &pid.to_string());
    info!(pipeline = %pid, workers = shape.workers, channel_capacity = %capacity, data = shape.data_path(), "pipeline built");
    let door = Arc::new(PipelineDoor::new(
        input,
        fill.clone(),
        door_limiters,
        shape.durable,
        shape.reads_encoded,
        decode_failures.clone(),
    ));
    let mut workers = Vec::new();
    let mut controls: Vec<Sender<Control>> = Vec::new();
    let slots: Vec<crate::processors::SharedSlot> = specs.iter().map(|_| Default::default()).collect();
    let keeps_files = specs.iter().any(|(id, spec)| processor_storage_dir(spec, id, pid, &config.extensions).is_some());
    let (hold_tx, hold_rx) = crossbeam_channel::bounded::<()>(workers_n);
    let hold_limit = config.service.shutdown_timeout;
    for (w, worker_rx) in worker_rxs.iter().enumerate() {
        let mut processors = Vec::with_capacity(specs.len());
        for ((id, spec), shared) in specs.iter().zip(&slots) {
            let ctx = ProcessorContext {
                storage_dir: processor_storage_dir(spec, id, pid, &config.extensions),
                id: id.to_string(),
                signal,
                registry: registry.clone(),
                worker: w,
                workers: workers_n,
                shared: shared.clone(),
            };
            let built = spec.build(&ctx).map_err(|message| StartError::Processor { id: id.to_string(), message });
            match built {
                Ok(p) => processors.push(Stage {
                    form: spec.data_form(),
                    processor: p,
                    items: telemetry::ProcessorItemMetrics::new(registry, &id.to_string(), signal),
                }),
                Err(e) => {
                    for c in &controls {
                        let _ = c.send(Control::Stop);
                    }
                    return Err(e);
                }
            }
        }
        let chain = ProcessorChain::new(processors, shape.decode_output, decode_failures.clone());
        let (control_tx, control_rx) = crossbeam_channel::bounded::<Control>(1);
        let (rx, fill, queues) = (worker_rx.clone(), fill.clone(), queues.clone());
        let hold = keeps_files.then(|| (hold_rx.clone(), hold_limit, pid.to_string()));
        let spawned = std::thread::Builder::new()
            .name(format!("sluice-{pid}-{w}"))
            .spawn(move || worker_loop(chain, rx, fill, sharded, control_rx, queues, hold));
        match spawned {
            Ok(handle) => {
                workers.push(handle);
                controls.push(control_tx);
            }
            Err(e) => {
                // Stop the workers already running; they have seen nothing.
                for c in &controls {
                    let _ = c.send(Control::Stop);
                }
                return Err(StartError::Thread(e));
            }
        }
    }
    let hold = keeps_files.then_some((hold_tx, workers_n));
    Ok(PipelineHandle { shape, door, controls, workers, queues, fill: fill_view, hold })
}

/// The files a receiver reads once at start (TLS certificates and keys,
/// token and htpasswd files): a reload that finds one changed restarts the
/// receiver, so SIGHUP after a certificate rotation serves the new one.
fn receiver_files(cfg: &Arc<dyn ReceiverSpec>, extensions: &[(String, Option<Arc<dyn ExtensionSpec>>)]) -> Vec<String> {
    let mut files = cfg.files();
    for ext in extensions.iter().filter_map(|(_, e)| e.as_ref()) {
        files.extend(ext.files());
    }
    files
}

/// What decides whether a reload can keep a receiver running: its settings,
/// those of the extensions it uses, the content of the files it read, and
/// the signals pipelines take from it (a gRPC server registers a service
/// per signal).
#[derive(Debug)]
pub(super) struct ReceiverShape {
    config: Arc<dyn ReceiverSpec>,
    extensions: Vec<(String, Option<Arc<dyn ExtensionSpec>>)>,
    /// Path and a hash of its content (`None` when it cannot be read).
    files: Vec<(String, Option<u64>)>,
    signals: Vec<Signal>,
}

impl PartialEq for ReceiverShape {
    fn eq(&self, other: &Self) -> bool {
        self.config.as_ref() == other.config.as_ref()
            && self.extensions == other.extensions
            && self.files == other.files
            && self.signals == other.signals
    }
}

impl ReceiverShape {
    pub fn config(&self) -> &Arc<dyn ReceiverSpec> {
        &self.config
    }

    pub fn of(cfg: &Arc<dyn ReceiverSpec>, config: &AgentConfig, signals: Vec<Signal>) -> ReceiverShape {
        let extensions: Vec<(String, Option<Arc<dyn ExtensionSpec>>)> = cfg
            .extension_references()
            .into_iter()
            .map(|(_, id, _)| {
                let ext = ComponentId::parse(id).ok().and_then(|eid| config.extensions.get(&eid).cloned());
                (id.to_string(), ext)
            })
            .collect();
        let files = receiver_files(cfg, &extensions)
            .into_iter()
            .map(|path| {
                let hash = std::fs::read(&path).ok().map(|bytes| xxhash_rust::xxh3::xxh3_64(&bytes));
                (path, hash)
            })
            .collect();
        ReceiverShape { config: cfg.clone(), extensions, files, signals }
    }
}

/// The signals pipelines take from receiver `rid`, in the order `ReceiverOutput::signals` gives.
pub(super) fn receiver_signals(config: &AgentConfig, rid: &ComponentId) -> Vec<Signal> {
    let fed: BTreeSet<Signal> = config
        .service
        .pipelines
        .iter()
        .filter(|(_, p)| p.receivers.iter().any(|r| ComponentId::parse(r).as_ref() == Ok(rid)))
        .map(|(pid, _)| pid.signal)
        .collect();
    [Signal::Traces, Signal::Metrics, Signal::Logs].into_iter().filter(|s| fed.contains(s)).collect()
}

/// The receivers some pipeline of `config` takes from, with the shape each
/// would start with (reading the files they name, to hash them).
pub(super) fn routed_receivers(config: &AgentConfig) -> BTreeMap<ComponentId, ReceiverShape> {
    config
        .receivers
        .iter()
        .filter(|(rid, _)| {
            config
                .service
                .pipelines
                .values()
                .any(|p| p.receivers.iter().any(|r| ComponentId::parse(r).as_ref() == Ok(*rid)))
        })
        .map(|(rid, cfg)| (rid.clone(), ReceiverShape::of(cfg, config, receiver_signals(config, rid))))
        .collect()
}

/// A running receiver.
pub(super) struct ReceiverHandle {
    pub shape: ReceiverShape,
    /// Shared with the receiver: swapping its routes redirects it.
    pub output: ReceiverOutput,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    pub endpoints: Vec<(&'static str, SocketAddr)>,
}

impl ReceiverHandle {
    /// Stops accepting; the returned tasks end once open requests finish.
    pub fn stop(self) -> Vec<JoinHandle<()>> {
        let _ = self.stop.send(true);
        self.tasks
    }
}

/// Binds and starts a receiver feeding `output`.
pub(super) async fn start_receiver(
    rid: &ComponentId,
    cfg: &Arc<dyn ReceiverSpec>,
    config: &AgentConfig,
    output: ReceiverOutput,
    registry: &Registry,
    health: &HealthState,
) -> Result<ReceiverHandle, StartError> {
    let name = rid.to_string();
    health.expect_receiver(&name);
    let (stop, stop_rx) = watch::channel(false);
    let shape = ReceiverShape::of(cfg, config, output.signals());
    let ctx = ReceiverContext {
        id: name.clone(),
        output: output.clone(),
        registry: registry.clone(),
        shutdown: stop_rx,
        extensions: Arc::new(config.extensions.clone()),
    };
    let running = cfg.start(ctx).await?;
    for (transport, addr) in &running.endpoints {
        info!(receiver = %name, transport, %addr, "receiver listening");
    }
    health.receiver_bound(&name);
    Ok(ReceiverHandle { shape, output, stop, tasks: running.tasks, endpoints: running.endpoints })
}

/// One of the agent's own HTTP servers (`/metrics`, a `health_check`).
pub(super) struct ServerHandle {
    /// The settings it was started with, to tell whether a reload changes it.
    pub settings: String,
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl ServerHandle {
    pub fn stop(self) -> JoinHandle<()> {
        let _ = self.stop.send(true);
        self.task
    }
}

/// The servers a config asks for: endpoint name → settings.
pub(super) fn wanted_servers(config: &AgentConfig) -> BTreeMap<String, String> {
    let mut wanted = BTreeMap::new();
    let metrics = &config.service.telemetry.metrics;
    let endpoint = metrics.endpoint();
    if !endpoint.is_empty() && metrics.level != crate::service::MetricsLevel::None {
        wanted.insert("metrics".to_string(), endpoint);
    }
    for ext_id in &config.service.extensions {
        if let Some(c) = config.extensions.get(ext_id).and_then(|e| e.health_server()) {
            wanted.insert(format!("extension {ext_id}"), format!("{c:?}"));
        }
    }
    wanted
}

/// Starts the server `name` of `config` (a key of [`wanted_servers`]).
pub(super) async fn start_server(
    name: &str,
    config: &AgentConfig,
    registry: &Registry,
    health: &HealthState,
) -> Result<ServerHandle, StartError> {
    let (stop, stop_rx) = watch::channel(false);
    let settings = wanted_servers(config).remove(name).unwrap_or_default();
    let (addr, task) = if name == "metrics" {
        let address = &config.service.telemetry.metrics.endpoint();
        telemetry::server::serve_metrics(address, registry.clone(), stop_rx).await.map_err(|source| {
            StartError::Bind { what: "service::telemetry::metrics::address", addr: address.clone(), source }
        })?
    } else {
        let c = config
            .service
            .extensions
            .iter()
            .filter(|id| format!("extension {id}") == name)
            .find_map(|id| config.extensions.get(id).and_then(|e| e.health_server()))
            .ok_or_else(|| StartError::Other(format!("no server named {name} in the config")))?;
        telemetry::server::serve_health(c, health.clone(), stop_rx).await.map_err(|source| StartError::Bind {
            what: "extensions::health_check::endpoint",
            addr: c.endpoint.clone(),
            source,
        })?
    };
    if name == "metrics" {
        info!(%addr, "self-metrics served at http://{addr}/metrics");
    } else {
        info!(extension = name.trim_start_matches("extension "), %addr, "health served at http://{addr}/health/ready");
    }
    Ok(ServerHandle { settings, addr, stop, task })
}

/// Builds the route table of every receiver from the pipelines' doors.
pub(super) fn receiver_outputs(
    config: &AgentConfig,
    doors: &BTreeMap<PipelineId, Arc<PipelineDoor>>,
) -> BTreeMap<ComponentId, ReceiverOutput> {
    let mut outputs: BTreeMap<ComponentId, ReceiverOutput> = BTreeMap::new();
    for (pid, p) in &config.service.pipelines {
        let Some(door) = doors.get(pid) else { continue };
        for r in &p.receivers {
            if let Ok(rid) = ComponentId::parse(r) {
                outputs.entry(rid).or_default().add(pid.signal, door.clone() as Arc<dyn BatchSink>);
            }
        }
    }
    outputs
}
