//! Builds the running agent from a validated config and runs it.
//!
//! Each pipeline is a bounded `crossbeam-channel` (its *door*) drained by
//! worker threads, each running its own instance of the processor chain; the
//! chain's output fans out to every exporter's sending queue as one shared
//! `Arc<Batch>`. Receivers offer to doors without blocking; a full door or an
//! active memory limit refuses the batch, and the receiver tells the client to
//! retry.
//!
//! When a pipeline feeds an exporter whose sending queue is persistent, the
//! door hands each batch to a worker with a completion handle; the worker
//! completes it once the chain has run and every resulting batch is in every
//! exporter queue (the persistent ones having written it), and the receiver
//! answers the client only then. Other pipelines pass no handle and nobody waits.
//!
//! Shutdown order: receivers stop accepting and finish in-flight requests;
//! doors close and workers drain their channel and flush their processors;
//! sending queues close and exporters drain them; all within
//! `service.shutdown_timeout`.

pub mod chain;
pub mod shard;

use crate::config::{
    AgentConfig, ComponentId, ExporterConfig, ExtensionConfig, PipelineId, ProcessorConfig, ReceiverConfig,
};
use crate::data::{Payload, Signal};
use crate::exporters::otlp_common::{RetryConfig, SendingQueueConfig};
use crate::exporters::runner::ExporterRunner;
use crate::exporters::{self, Exporter};
use crate::processors::memory_limiter::{MemoryGate, MemoryLimits};
use crate::processors::ProcessorContext;
use crate::queue::persistent::{queue_dir_name, PersistentOptions, PersistentQueue, DEFAULT_SEGMENT_BYTES};
use crate::queue::storage_config::FileStorageConfig;
use crate::queue::{PushOutcome, SendingQueue};
use crate::receivers::{self, AckSender, Acks, BatchSink, ReceiverContext, ReceiverOutput, Refusal};
use crate::telemetry::{self, health::HealthState, ExporterMetrics, ProcessorMetrics, Registry};
use chain::ProcessorChain;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{error, info, warn};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Receiver(#[from] receivers::ReceiverError),
    #[error("exporters::{id}: {message}")]
    Exporter { id: String, message: String },
    #[error("processors::{id}: {message}")]
    Processor { id: String, message: String },
    #[error("cannot listen on {what} {addr}: {source}")]
    Bind { what: &'static str, addr: String, source: std::io::Error },
    #[error("cannot start worker thread: {0}")]
    Thread(std::io::Error),
}

/// A memory limiter shared by every pipeline that lists it.
struct MemoryLimiter {
    id: String,
    gate: MemoryGate,
}

/// A batch on its way to a worker, with the handle to complete once it is
/// in every exporter queue (only for pipelines with a persistent queue).
struct Work {
    batch: Payload,
    ack: Option<AckSender>,
}

/// How batches reach a pipeline's workers.
enum DoorInput {
    /// One bounded channel all workers pull from.
    Shared(Sender<Work>),
    /// One channel per worker; items are routed by the key of the
    /// pipeline's keyed processor. The channels are unbounded: `queued` is
    /// the bound, reserved for a whole split request at once, so a request
    /// is accepted or refused whole.
    Sharded { txs: Vec<Sender<Work>>, queued: Arc<AtomicUsize>, capacity: usize, route: shard::Route },
}

/// The entry of a pipeline, handed to receivers.
struct PipelineDoor {
    input: DoorInput,
    closed: AtomicBool,
    limiters: Vec<(MemoryGate, ProcessorMetrics)>,
    /// Some exporter of this pipeline has a persistent queue: receivers wait for it.
    durable: bool,
    /// The chain forwards encoded batches: receivers need not decode.
    pass_through: bool,
    decode_failures: telemetry::Counter,
}

impl PipelineDoor {
    /// The refusal that applies now, if any; `items` is counted against the
    /// memory limiter that refuses.
    fn check(&self, items: impl FnOnce() -> usize) -> Result<(), Refusal> {
        if self.closed.load(Ordering::Relaxed) {
            return Err(Refusal::ShuttingDown);
        }
        if let Some((_, metrics)) = self.limiters.iter().find(|(gate, _)| gate.refusing()) {
            metrics.refused.add(items() as u64);
            return Err(Refusal::MemoryLimit);
        }
        Ok(())
    }
}

impl BatchSink for PipelineDoor {
    fn ready(&self, items: &dyn Fn() -> usize) -> Result<(), Refusal> {
        self.check(items)?;
        let full = match &self.input {
            DoorInput::Shared(tx) => tx.is_full(),
            DoorInput::Sharded { queued, capacity, .. } => queued.load(Ordering::Relaxed) >= *capacity,
        };
        if full {
            return Err(Refusal::PipelineFull);
        }
        Ok(())
    }

    fn offer(&self, batch: Payload) -> Result<(), Refusal> {
        self.send(batch, None)
    }

    fn takes_encoded(&self) -> bool {
        self.pass_through
    }

    fn offer_acked(&self, batch: Payload, acks: &mut Acks) -> Result<(), Refusal> {
        if self.durable {
            self.send(batch, Some(acks))
        } else {
            self.send(batch, None)
        }
    }
}

impl PipelineDoor {
    fn send(&self, batch: Payload, mut acks: Option<&mut Acks>) -> Result<(), Refusal> {
        self.check(|| batch.item_count())?;
        let mut ack = || acks.as_deref_mut().map(Acks::expect);
        match &self.input {
            DoorInput::Shared(tx) => match tx.try_send(Work { batch, ack: ack() }) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(_)) => Err(Refusal::PipelineFull),
                Err(TrySendError::Disconnected(_)) => Err(Refusal::ShuttingDown),
            },
            DoorInput::Sharded { txs, queued, capacity, route } => {
                // Routing looks inside: a keyed pipeline is never pass-through,
                // so receivers hand it decoded batches and this decodes nothing.
                let batch = match batch.into_decoded() {
                    Ok(b) => b,
                    Err(e) => {
                        self.decode_failures.inc();
                        tracing::error!(error = %e, "cannot decode a checked batch; dropping it");
                        return Ok(());
                    }
                };
                let parts = route.split(batch, txs.len());
                let n = parts.len();
                if queued.fetch_add(n, Ordering::AcqRel) + n > *capacity {
                    queued.fetch_sub(n, Ordering::AcqRel);
                    return Err(Refusal::PipelineFull);
                }
                for (shard, part) in parts {
                    if txs[shard].send(Work { batch: Payload::Decoded(part), ack: ack() }).is_err() {
                        return Err(Refusal::ShuttingDown);
                    }
                }
                Ok(())
            }
        }
    }
}

/// One exporter instance for one signal, with its queue and consumer tasks.
struct StartedExporter {
    queue: Arc<SendingQueue>,
    /// Ends once the queue is drained and the exporter shut down.
    task: JoinHandle<()>,
}

struct RunningPipeline {
    id: PipelineId,
    door: Arc<PipelineDoor>,
    stop_tx: Sender<()>,
    workers: Vec<std::thread::JoinHandle<()>>,
}

/// What `start` returns: the agent, running.
pub struct RunningAgent {
    pub registry: Registry,
    pub health: HealthState,
    /// Where each listener actually bound: ("receiver otlp grpc", addr), ("metrics", addr), ...
    pub endpoints: Vec<(String, SocketAddr)>,
    shutdown_tx: watch::Sender<bool>,
    receiver_tasks: Vec<JoinHandle<()>>,
    pipelines: Vec<RunningPipeline>,
    exporters: BTreeMap<(ComponentId, Signal), StartedExporter>,
    server_tasks: Vec<JoinHandle<()>>,
    limiter_tasks: Vec<JoinHandle<()>>,
    shutdown_timeout: Duration,
}

fn queue_and_retry(cfg: &ExporterConfig) -> (SendingQueueConfig, RetryConfig) {
    match cfg {
        ExporterConfig::Otlp(c) => (c.sending_queue.clone(), c.retry_on_failure.clone()),
        ExporterConfig::OtlpHttp(c) => (c.sending_queue.clone(), c.retry_on_failure.clone()),
        ExporterConfig::Loki(c) => (c.sending_queue.clone(), c.retry_on_failure.clone()),
        ExporterConfig::LoadBalancing(c) => {
            (c.protocol.otlp.sending_queue.clone(), c.protocol.otlp.retry_on_failure.clone())
        }
        ExporterConfig::PrometheusRemoteWrite(c) => {
            let mut q = c.queue();
            // Running totals need their deltas in arrival order.
            if c.delta_to_cumulative.enabled {
                q.num_consumers = 1;
            }
            (q, c.retry_on_failure.clone())
        }
        // Local sinks (a file, a log, a scrape page, nowhere): one writer in order, nothing to retry.
        ExporterConfig::Debug(_) | ExporterConfig::File(_) | ExporterConfig::Prometheus(_) | ExporterConfig::Nop(_) => {
            (
                SendingQueueConfig { num_consumers: 1, ..SendingQueueConfig::default() },
                RetryConfig { enabled: false, ..RetryConfig::default() },
            )
        }
    }
}

/// Everything an exporter's runner needs besides the exporter itself.
struct RunnerParts {
    queue: Arc<SendingQueue>,
    consumers: usize,
    retry: RetryConfig,
    metrics: ExporterMetrics,
    health: telemetry::health::ComponentHealth,
    name: String,
}

impl RunnerParts {
    /// Spawns the consumers; the returned task ends once they have drained
    /// the closed queue and the exporter has shut down.
    fn spawn<E: Exporter>(self, exporter: E) -> JoinHandle<()> {
        let exporter = Arc::new(exporter);
        let RunnerParts { queue, consumers, retry, metrics, health, name } = self;
        let runner = Arc::new(ExporterRunner { exporter: exporter.clone(), queue, retry, metrics, health, name });
        let consumers = runner.spawn(consumers);
        tokio::spawn(async move {
            for c in consumers {
                let _ = c.await;
            }
            exporter.shutdown().await;
        })
    }
}

fn start_exporter(
    id: &ComponentId,
    cfg: &ExporterConfig,
    signal: Signal,
    extensions: &BTreeMap<ComponentId, ExtensionConfig>,
    registry: &Registry,
    health: &HealthState,
) -> Result<StartedExporter, StartError> {
    let name = id.to_string();
    let (queue_cfg, retry) = queue_and_retry(cfg);
    let metrics = ExporterMetrics::new(registry, &name, signal);
    // A disabled queue still needs one slot to hand batches to the sender.
    let (capacity, consumers) =
        if queue_cfg.enabled { (queue_cfg.queue_size, queue_cfg.num_consumers) } else { (1, 1) };
    // Validation made sure a storage ID names a file_storage extension.
    let storage =
        queue_cfg.storage.as_deref().filter(|_| queue_cfg.enabled).and_then(|s| ComponentId::parse(s).ok()).and_then(
            |sid| match extensions.get(&sid) {
                Some(ExtensionConfig::FileStorage(fs)) => Some(fs),
                _ => None,
            },
        );
    let queue = match storage {
        Some(fs) => Arc::new(open_persistent_queue(fs, &name, signal, capacity, &queue_cfg, &metrics, registry)?),
        None => Arc::new(SendingQueue::new(capacity, queue_cfg.policy(), metrics.enqueue_failed.clone())),
    };
    let q = queue.clone();
    telemetry::register_queue_gauges(registry, &name, signal, queue.capacity(), move || q.len() as f64);
    let parts = RunnerParts {
        queue: queue.clone(),
        consumers,
        retry,
        metrics,
        health: health.exporter(&name),
        name: format!("{name} ({signal})"),
    };
    let err = |message: String| StartError::Exporter { id: name.clone(), message };
    let task = match cfg {
        ExporterConfig::Otlp(c) => parts.spawn(exporters::otlp::OtlpExporter::new(c, signal, &name).map_err(err)?),
        ExporterConfig::OtlpHttp(c) => {
            parts.spawn(exporters::otlphttp::OtlpHttpExporter::new(c, signal, &name).map_err(err)?)
        }
        ExporterConfig::Loki(c) => {
            let loki_metrics = telemetry::LokiExporterMetrics::new(registry, &name);
            parts.spawn(exporters::loki::LokiExporter::new(c, &name, loki_metrics).map_err(err)?)
        }
        ExporterConfig::LoadBalancing(c) => {
            let m = telemetry::LoadBalancerMetrics::new(registry, &name, signal);
            parts.spawn(exporters::loadbalancing::LoadBalancingExporter::new(c, signal, &name, m).map_err(err)?)
        }
        ExporterConfig::PrometheusRemoteWrite(c) => {
            let m = telemetry::PrometheusExporterMetrics::new(registry, &name);
            parts.spawn(exporters::prometheusremotewrite::PrometheusRemoteWriteExporter::new(c, &name, m).map_err(err)?)
        }
        ExporterConfig::Prometheus(c) => {
            let m = telemetry::PrometheusExporterMetrics::new(registry, &name);
            parts.spawn(exporters::prometheus::PrometheusExporter::new(c, &name, m).map_err(err)?)
        }
        ExporterConfig::Debug(c) => parts.spawn(exporters::debug::DebugExporter::new(c, signal, &name).map_err(err)?),
        ExporterConfig::File(c) => parts.spawn(exporters::file::FileExporter::new(c, signal, &name).map_err(err)?),
        ExporterConfig::Nop(c) => parts.spawn(exporters::nop::NopExporter::new(c)),
    };
    Ok(StartedExporter { queue, task })
}

fn open_persistent_queue(
    storage: &FileStorageConfig,
    name: &str,
    signal: Signal,
    capacity: usize,
    queue_cfg: &SendingQueueConfig,
    metrics: &ExporterMetrics,
    registry: &Registry,
) -> Result<SendingQueue, StartError> {
    let dir = std::path::Path::new(&storage.directory).join(queue_dir_name(name, signal));
    let opts = PersistentOptions {
        dir,
        fsync: storage.fsync,
        max_batches: capacity.max(1),
        max_bytes: queue_cfg.max_size_mib.max(1).saturating_mul(1 << 20),
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        policy: queue_cfg.policy(),
        name: format!("{name} ({signal})"),
    };
    let queue_metrics = telemetry::PersistentQueueMetrics::new(registry, name, signal);
    let queue = PersistentQueue::open(opts, queue_metrics, metrics.enqueue_failed.clone())
        .map_err(|e| StartError::Exporter { id: name.to_string(), message: e.to_string() })?;
    info!(exporter = %name, %signal, directory = %storage.directory, fsync = storage.fsync, pending = queue.len(), "persistent sending queue open");
    Ok(SendingQueue::persistent(queue))
}

/// Runs one worker until stopped. `reserved` is the sharded door's count of
/// queued batches, released as batches are taken.
fn worker_loop(
    mut chain: ProcessorChain,
    rx: Receiver<Work>,
    reserved: Option<Arc<AtomicUsize>>,
    stop_rx: Receiver<()>,
    queues: Vec<Arc<SendingQueue>>,
) {
    let release = || {
        if let Some(r) = &reserved {
            r.fetch_sub(1, Ordering::AcqRel);
        }
    };
    let mut out: Vec<Payload> = Vec::new();
    // Whether every persistent queue took every batch.
    let fan_out = |out: &mut Vec<Payload>| -> bool {
        let mut stored = true;
        for batch in out.drain(..) {
            if batch.is_empty() {
                continue;
            }
            let shared = Arc::new(batch);
            for q in &queues {
                let outcome = q.push(shared.clone());
                stored &= outcome == PushOutcome::Queued || !q.is_persistent();
            }
        }
        stored
    };
    loop {
        let deadline = chain.next_deadline();
        let mut sel = crossbeam_channel::Select::new();
        let data_idx = sel.recv(&rx);
        let stop_idx = sel.recv(&stop_rx);
        let ready = match deadline {
            Some(d) => sel.select_deadline(d).ok(),
            None => Some(sel.select()),
        };
        let mut ack = None;
        match ready {
            None => chain.tick(Instant::now(), &mut out),
            Some(op) if op.index() == data_idx => match op.recv(&rx) {
                Ok(work) => {
                    release();
                    ack = work.ack;
                    chain.process(work.batch, Instant::now(), &mut out)
                }
                Err(_) => break,
            },
            Some(op) => {
                debug_assert_eq!(op.index(), stop_idx);
                let _ = op.recv(&stop_rx);
                break;
            }
        }
        let stored = fan_out(&mut out);
        if let Some(a) = ack {
            let _ = a.send(stored);
        }
    }
    // Drain what was admitted before the door closed, then empty the processors.
    let now = Instant::now();
    while let Ok(work) = rx.try_recv() {
        release();
        chain.process(work.batch, now, &mut out);
        if let Some(a) = work.ack {
            let _ = a.send(fan_out(&mut out));
        }
    }
    chain.flush(now, &mut out);
    fan_out(&mut out);
}

/// Whether a pipeline can keep batches encoded from receiver to exporter: its
/// processors never look inside the data (`memory_limiter` acts at the door,
/// one `batch` only groups) and every exporter sends OTLP protobuf.
fn forwards_encoded(config: &AgentConfig, processors: &[ComponentId], exporters: &[String]) -> bool {
    let mut batches = 0;
    let processors_ok = processors.iter().all(|id| match config.processors.get(id) {
        Some(ProcessorConfig::MemoryLimiter(_)) => true,
        Some(ProcessorConfig::Batch(_)) => {
            batches += 1;
            batches == 1
        }
        _ => false,
    });
    processors_ok
        && exporters.iter().all(|e| {
            ComponentId::parse(e).ok().and_then(|id| config.exporters.get(&id)).is_some_and(exporters::forwards_encoded)
        })
}

/// Starts everything the config describes. On error, what was started is stopped.
pub async fn start(config: &AgentConfig) -> Result<RunningAgent, StartError> {
    let registry = Registry::new();
    telemetry::register_process_metrics(&registry);
    let health = HealthState::new();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut endpoints = Vec::new();
    let mut server_tasks = Vec::new();

    let metrics_cfg = &config.service.telemetry.metrics;
    if !metrics_cfg.address.is_empty() && metrics_cfg.level != crate::config::MetricsLevel::None {
        let (addr, task) =
            telemetry::server::serve_metrics(&metrics_cfg.address, registry.clone(), shutdown_rx.clone())
                .await
                .map_err(|source| StartError::Bind {
                    what: "service::telemetry::metrics::address",
                    addr: metrics_cfg.address.clone(),
                    source,
                })?;
        endpoints.push(("metrics".to_string(), addr));
        server_tasks.push(task);
    }
    for ext_id in &config.service.extensions {
        if let Some(ExtensionConfig::HealthCheck(c)) = config.extensions.get(ext_id) {
            let (addr, task) =
                telemetry::server::serve_health(c, health.clone(), shutdown_rx.clone()).await.map_err(|source| {
                    StartError::Bind { what: "extensions::health_check::endpoint", addr: c.endpoint.clone(), source }
                })?;
            endpoints.push((format!("extension {ext_id}"), addr));
            server_tasks.push(task);
        }
    }

    // Memory limiters: one gate and one checker per limiter ID.
    let mut limiters: BTreeMap<ComponentId, MemoryLimiter> = BTreeMap::new();
    let mut limiter_tasks = Vec::new();
    for (id, cfg) in &config.processors {
        let ProcessorConfig::MemoryLimiter(c) = cfg else { continue };
        let used_anywhere = config
            .service
            .pipelines
            .values()
            .any(|p| p.processors.iter().any(|x| ComponentId::parse(x).as_ref() == Ok(id)));
        if !used_anywhere {
            continue;
        }
        let limits = MemoryLimits::resolve(c, telemetry::process::total_memory_bytes())
            .map_err(|message| StartError::Processor { id: id.to_string(), message })?;
        let gate = MemoryGate::default();
        let (g, interval, name) = (gate.clone(), c.check_interval.get(), id.to_string());
        info!(processor = %name, limit_mib = limits.hard >> 20, soft_limit_mib = limits.soft >> 20, "memory limiter active");
        let mut stop = shutdown_rx.clone();
        limiter_tasks.push(tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stop.wait_for(|v| *v) => break,
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
        }));
        limiters.insert(id.clone(), MemoryLimiter { id: id.to_string(), gate });
    }

    // Exporters: one instance and queue per (exporter, signal).
    let mut started_exporters: BTreeMap<(ComponentId, Signal), StartedExporter> = BTreeMap::new();
    for (pid, p) in &config.service.pipelines {
        for e in &p.exporters {
            let Ok(eid) = ComponentId::parse(e) else { continue };
            let key = (eid.clone(), pid.signal);
            if started_exporters.contains_key(&key) {
                continue;
            }
            let Some(cfg) = config.exporters.get(&eid) else { continue };
            started_exporters
                .insert(key, start_exporter(&eid, cfg, pid.signal, &config.extensions, &registry, &health)?);
        }
    }

    // Pipelines.
    let mut pipelines = Vec::new();
    let mut outputs: BTreeMap<ComponentId, ReceiverOutput> = BTreeMap::new();
    for (pid, p) in &config.service.pipelines {
        let signal = pid.signal;
        let workers_n = p.workers.max(1);
        let capacity = p.channel_capacity.max(1);
        let (stop_tx, stop_rx) = crossbeam_channel::bounded::<()>(workers_n);
        let proc_ids: Vec<ComponentId> = p.processors.iter().filter_map(|s| ComponentId::parse(s).ok()).collect();
        // Routed by the key of the first keyed processor; a second keyed
        // processor with another key (rare) sees its keys spread over workers.
        let route = proc_ids
            .iter()
            .filter_map(|id| config.processors.get(id))
            .find_map(|c| shard::Route::of(crate::processors::state_key(c)))
            .filter(|_| workers_n > 1);
        let (input, worker_rxs, reserved) = if let Some(route) = route {
            let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers_n).map(|_| crossbeam_channel::unbounded::<Work>()).unzip();
            let queued = Arc::new(AtomicUsize::new(0));
            (DoorInput::Sharded { txs, queued: queued.clone(), capacity, route }, rxs, Some(queued))
        } else {
            let (tx, rx) = crossbeam_channel::bounded::<Work>(capacity);
            (DoorInput::Shared(tx), vec![rx; workers_n], None)
        };
        let door_limiters = proc_ids
            .iter()
            .filter_map(|id| limiters.get(id))
            .map(|l| (l.gate.clone(), ProcessorMetrics::new(&registry, &l.id, signal)))
            .collect();
        let (queued, first_rx) = (reserved.clone(), worker_rxs[0].clone());
        telemetry::register_pipeline_gauges(&registry, &pid.to_string(), capacity, move || match &queued {
            Some(q) => q.load(Ordering::Relaxed) as f64,
            None => first_rx.len() as f64,
        });
        let queues: Vec<Arc<SendingQueue>> = p
            .exporters
            .iter()
            .filter_map(|e| ComponentId::parse(e).ok())
            .filter_map(|eid| started_exporters.get(&(eid, signal)).map(|s| s.queue.clone()))
            .collect();
        let durable = queues.iter().any(|q| q.is_persistent());
        if durable {
            let holding: Vec<&ComponentId> = proc_ids
                .iter()
                .filter(|id| {
                    matches!(
                        config.processors.get(id),
                        Some(ProcessorConfig::Batch(_) | ProcessorConfig::TailSampling(_))
                    )
                })
                .collect();
            if !holding.is_empty() {
                let names: Vec<String> = holding.iter().map(|id| id.to_string()).collect();
                warn!(pipeline = %pid, processors = %names.join(", "), "this pipeline writes to a persistent queue after processors that hold data; clients are answered when the processor takes a batch, before it is on disk, so a crash can lose what the processor holds");
            }
        }
        let pass_through = forwards_encoded(config, &proc_ids, &p.exporters);
        let decode_failures = telemetry::pipeline_decode_failures(&registry, &pid.to_string());
        info!(pipeline = %pid, pass_through, "pipeline built");
        let door = Arc::new(PipelineDoor {
            input,
            closed: AtomicBool::new(false),
            limiters: door_limiters,
            durable,
            pass_through,
            decode_failures: decode_failures.clone(),
        });
        let mut workers = Vec::new();
        for (w, worker_rx) in worker_rxs.iter().enumerate() {
            let chain = if pass_through {
                let batch = proc_ids.iter().find_map(|id| match config.processors.get(id) {
                    Some(ProcessorConfig::Batch(c)) => Some(crate::processors::batch::EncodedBatchProcessor::new(
                        c,
                        signal,
                        &id.to_string(),
                        &registry,
                    )),
                    _ => None,
                });
                ProcessorChain::pass_through(batch)
            } else {
                ProcessorChain::decoded(
                    proc_ids
                        .iter()
                        .filter_map(|id| {
                            let ctx = ProcessorContext {
                                id: id.to_string(),
                                signal,
                                registry: registry.clone(),
                                worker: w,
                                workers: workers_n,
                            };
                            config.processors.get(id).map(|c| crate::processors::build(id, c, &ctx))
                        })
                        .collect(),
                    decode_failures.clone(),
                )
            };
            let (rx, reserved, stop_rx, queues) =
                (worker_rx.clone(), reserved.clone(), stop_rx.clone(), queues.clone());
            let handle = std::thread::Builder::new()
                .name(format!("sluice-{pid}-{w}"))
                .spawn(move || worker_loop(chain, rx, reserved, stop_rx, queues))
                .map_err(StartError::Thread)?;
            workers.push(handle);
        }
        for r in &p.receivers {
            if let Ok(rid) = ComponentId::parse(r) {
                outputs.entry(rid).or_default().add(signal, door.clone() as Arc<dyn BatchSink>);
            }
        }
        pipelines.push(RunningPipeline { id: pid.clone(), door, stop_tx, workers });
    }

    // Receivers last, so nothing is accepted before its pipeline runs.
    let mut receiver_tasks = Vec::new();
    for (rid, output) in outputs {
        let Some(cfg) = config.receivers.get(&rid) else { continue };
        let name = rid.to_string();
        health.expect_receiver(&name);
        let ctx = ReceiverContext {
            id: name.clone(),
            output,
            registry: registry.clone(),
            shutdown: shutdown_rx.clone(),
            extensions: Arc::new(config.extensions.clone()),
        };
        let running = match cfg {
            ReceiverConfig::Otlp(c) => receivers::otlp::start(c, ctx).await?,
            ReceiverConfig::Filelog(c) => {
                // Validation made sure `storage` names a file_storage extension.
                let storage =
                    c.storage.as_deref().and_then(|s| ComponentId::parse(s).ok()).and_then(|sid| {
                        match config.extensions.get(&sid) {
                            Some(ExtensionConfig::FileStorage(fs)) => Some(fs),
                            _ => None,
                        }
                    });
                receivers::filelog::start(c, storage, ctx).await?
            }
        };
        for (transport, addr) in running.endpoints {
            info!(receiver = %name, transport, %addr, "receiver listening");
            endpoints.push((format!("receiver {name} {transport}"), addr));
        }
        health.receiver_bound(&name);
        receiver_tasks.extend(running.tasks);
    }
    health.set_started();

    Ok(RunningAgent {
        registry,
        health,
        endpoints,
        shutdown_tx,
        receiver_tasks,
        pipelines,
        exporters: started_exporters,
        server_tasks,
        limiter_tasks,
        shutdown_timeout: config.service.shutdown_timeout,
    })
}

/// How a shutdown ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Everything drained in time.
    pub clean: bool,
    /// Batches still queued when the timeout expired.
    pub abandoned_batches: usize,
}

impl RunningAgent {
    /// The address a listener bound, by the name in `endpoints`.
    pub fn endpoint(&self, name: &str) -> Option<SocketAddr> {
        self.endpoints.iter().find(|(n, _)| n == name).map(|(_, a)| *a)
    }

    /// Stops accepting, drains pipelines and queues within the shutdown timeout.
    pub async fn shutdown(self) -> ShutdownReport {
        let deadline = tokio::time::Instant::now() + self.shutdown_timeout;
        let persistent = self.exporters.values().any(|e| e.queue.is_persistent());
        self.health.set_shutting_down();
        let _ = self.shutdown_tx.send(true);
        let drain = async {
            for t in self.receiver_tasks {
                let _ = t.await;
            }
            for p in &self.pipelines {
                p.door.closed.store(true, Ordering::Relaxed);
                for _ in 0..p.workers.len() {
                    let _ = p.stop_tx.try_send(());
                }
            }
            for p in self.pipelines {
                let id = p.id.to_string();
                let joined = tokio::task::spawn_blocking(move || p.workers.into_iter().all(|w| w.join().is_ok())).await;
                if !matches!(joined, Ok(true)) {
                    error!(pipeline = %id, "a pipeline worker panicked during shutdown");
                }
            }
            for e in self.exporters.values() {
                e.queue.close();
            }
            let queues: Vec<Arc<SendingQueue>> = self.exporters.values().map(|e| e.queue.clone()).collect();
            for (_, e) in self.exporters {
                let _ = e.task.await;
            }
            queues
        };
        let report = match tokio::time::timeout_at(deadline, drain).await {
            Ok(_) => ShutdownReport { clean: true, abandoned_batches: 0 },
            Err(_) => {
                if persistent {
                    warn!(timeout = ?self.shutdown_timeout, "shutdown timed out before every queue drained; what persistent queues hold stays on disk for the next start, the rest is lost");
                } else {
                    error!(timeout = ?self.shutdown_timeout, "shutdown timed out before every queue drained; remaining data is lost");
                }
                ShutdownReport { clean: false, abandoned_batches: 0 }
            }
        };
        for t in self.server_tasks.into_iter().chain(self.limiter_tasks) {
            t.abort();
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Batch;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn traces(ids: &[u8]) -> Payload {
        Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: ids
                        .iter()
                        .map(|i| Span { trace_id: vec![*i; 16], span_id: vec![1; 8], ..Default::default() })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }))
    }

    fn sharded_door(workers: usize, capacity: usize) -> (PipelineDoor, Vec<Receiver<Work>>, Arc<AtomicUsize>) {
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..workers).map(|_| crossbeam_channel::unbounded::<Work>()).unzip();
        let queued = Arc::new(AtomicUsize::new(0));
        let door = PipelineDoor {
            input: DoorInput::Sharded { txs, queued: queued.clone(), capacity, route: shard::Route::TraceId },
            closed: AtomicBool::new(false),
            limiters: Vec::new(),
            durable: false,
            pass_through: false,
            decode_failures: telemetry::Counter::default(),
        };
        (door, rxs, queued)
    }

    #[test]
    fn sharded_door_sends_each_trace_to_its_worker() {
        let (door, rxs, queued) = sharded_door(3, 100);
        let ids: Vec<u8> = (0..30).collect();
        door.offer(traces(&ids)).unwrap();
        door.offer(traces(&ids)).unwrap();
        let mut total = 0;
        for (w, rx) in rxs.iter().enumerate() {
            while let Ok(Work { batch: Payload::Decoded(Batch::Traces(req)), .. }) = rx.try_recv() {
                for span in req.resource_spans.iter().flat_map(|r| &r.scope_spans).flat_map(|s| &s.spans) {
                    assert_eq!(shard::shard_of(&span.trace_id, 3), w);
                    total += 1;
                }
            }
        }
        assert_eq!(total, 60);
        assert!(queued.load(Ordering::Relaxed) >= 2, "reservations are released by workers, not by the door");
    }

    #[test]
    fn only_a_durable_door_hands_out_completion_handles() {
        let (mut door, rxs, _) = sharded_door(2, 100);
        let mut acks = Acks::default();
        door.offer_acked(traces(&[1, 2, 3]), &mut acks).unwrap();
        assert!(acks.is_empty(), "a pipeline without a persistent queue makes nobody wait");
        door.durable = true;
        door.offer_acked(traces(&[1, 2, 3, 4, 5, 6]), &mut acks).unwrap();
        let parts: Vec<Work> = rxs.iter().flat_map(|rx| rx.try_iter()).filter(|w| w.ack.is_some()).collect();
        assert_eq!(parts.len(), 2, "one handle per worker the request was split over");
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        let mut parts = parts.into_iter();
        let first = parts.next().unwrap().ack.unwrap();
        let second = parts.next().unwrap().ack.unwrap();
        first.send(true).unwrap();
        second.send(false).unwrap();
        assert_eq!(rt.block_on(acks.wait(Duration::from_secs(1))), Err(Refusal::NotPersisted));
        // A handle dropped (worker gone) or never completed is a failure too.
        let mut acks = Acks::default();
        drop(acks.expect());
        assert_eq!(rt.block_on(acks.wait(Duration::from_secs(1))), Err(Refusal::NotPersisted));
        let mut acks = Acks::default();
        let _pending = acks.expect();
        assert_eq!(rt.block_on(acks.wait(Duration::from_millis(20))), Err(Refusal::NotPersisted));
        let mut acks = Acks::default();
        acks.expect().send(true).unwrap();
        assert_eq!(rt.block_on(acks.wait(Duration::from_secs(1))), Ok(()));
    }

    #[test]
    fn sharded_door_accepts_or_refuses_a_request_whole() {
        let (door, rxs, queued) = sharded_door(4, 3);
        let ids: Vec<u8> = (0..40).collect();
        // 40 traces over 4 shards need 4 slots; only 3 exist.
        assert_eq!(door.offer(traces(&ids)), Err(Refusal::PipelineFull));
        assert_eq!(queued.load(Ordering::Relaxed), 0);
        assert!(rxs.iter().all(|rx| rx.is_empty()), "a refused request must leave nothing behind");
        door.offer(traces(&[7])).unwrap();
        assert_eq!(queued.load(Ordering::Relaxed), 1);
        assert_eq!(door.ready(&|| 1), Ok(()));
    }
}
