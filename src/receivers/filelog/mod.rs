//! The `filelog` receiver: follows log files (Kubernetes container logs under
//! /var/log/pods above all) and sends each entry as a log record.
//!
//! Guarantees:
//! - nothing read is dropped because the pipelines are full: a refused batch
//!   is offered again with backoff (each retry counted in
//!   `sluice_filelog_offer_retries_total`, its records in the receiver's
//!   refused counter) and reading waits meanwhile;
//! - with `storage`, a file's offset is written to the checkpoint only after
//!   every entry before it was accepted by the pipelines (and written by every
//!   persistent sending queue), after each accepted batch; a restart resumes
//!   there, so nothing is skipped and at most the last batch (read, accepted,
//!   not yet checkpointed when the agent died) is sent twice. Without
//!   persistent sending queues, what the pipelines accepted but had not
//!   exported when the agent was killed is lost, as for any receiver;
//! - rotation by rename, copytruncate, new and deleted files: see [`files`];
//! - bounds: files open (`max_concurrent_files`), bytes per file per poll
//!   ([`files::READ_CHUNK`]), entry size (`max_log_size`), and records per
//!   offer: at most [`MAX_BATCH_RECORDS`] records or about
//!   [`MAX_BATCH_BYTES`] of bodies (the Collector has no setting for this).
//!
//! The reading runs on its own thread (file I/O blocks); it offers batches
//! to the pipelines like any receiver and stops when shutdown is requested.

pub mod checkpoint;
pub mod config;
pub mod container;
pub mod files;
pub mod glob;
pub mod reader;

use super::{ReceiverContext, ReceiverError, ReceiverFactory, ReceiverSpec, Refusal, RunningReceiver};
use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::data::{Batch, Payload, Signal};
use crate::extensions::{ExtensionReference, ExtensionUse};
use crate::queue::storage_config::FileStorageConfig;
use crate::telemetry::{FilelogMetrics, ReceiverMetrics};
use checkpoint::CheckpointStore;
use config::FilelogReceiverConfig;
use container::{Format, PodMetadata};
use files::FileSet;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use reader::{Entry, ReaderSettings};
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::watch;

/// Most log records in one offer to the pipelines.
pub const MAX_BATCH_RECORDS: usize = 100;
pub static FACTORY: ReceiverFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Receiver,
        name: "filelog",
        aliases: &["file_log"],
        signals: &[Signal::Logs],
        description: "follows log files (Kubernetes container logs: CRI, Docker), with checkpoints in file_storage",
        example: "include: [/var/log/pods/*/*/*.log]\noperators: [{type: container}]\n",
    },
    settings: SettingsType::of::<FilelogReceiverConfig>(),
    compile: |input| {
        // Operator types first: an unknown operator's own fields would
        // otherwise be reported as unknown fields.
        input.check(config::filelog_operator_types).then_some(())?;
        let cfg: FilelogReceiverConfig = input.typed()?;
        input.check(|c| config::filelog_receiver(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ReceiverSpec for FilelogReceiverConfig {
    fn extension_references(&self) -> Vec<ExtensionReference<'_>> {
        self.storage.as_deref().map(|s| (&["storage"][..], s, ExtensionUse::Storage)).into_iter().collect()
    }

    fn start(&self, ctx: ReceiverContext) -> super::StartFuture<'_> {
        Box::pin(async move {
            // Validation made sure `storage` names a file_storage extension.
            let storage = self
                .storage
                .as_deref()
                .and_then(|s| crate::config::ComponentId::parse(s).ok())
                .and_then(|id| ctx.extensions.get(&id).cloned());
            start(self, storage.as_deref().and_then(|e| e.storage()), ctx).await
        })
    }
}

/// An offer is closed once its bodies reach this many bytes.
pub const MAX_BATCH_BYTES: usize = 1 << 20;
/// First wait after a refusal; doubled up to [`MAX_RETRY_BACKOFF`].
const FIRST_RETRY_BACKOFF: Duration = Duration::from_millis(20);
const MAX_RETRY_BACKOFF: Duration = Duration::from_secs(1);

/// Checks what `validate` cannot (the glob syntax, the checkpoint file) and
/// starts the reading thread. `storage` is the extension `cfg.storage` names.
pub async fn start(
    cfg: &FilelogReceiverConfig,
    storage: Option<&FileStorageConfig>,
    ctx: ReceiverContext,
) -> Result<RunningReceiver, ReceiverError> {
    let invalid = |message: String| ReceiverError::Invalid { receiver: ctx.id.clone(), message };
    let globs = |patterns: &[String]| -> Result<Vec<glob::Glob>, ReceiverError> {
        patterns.iter().map(|p| glob::Glob::new(p).map_err(|e| invalid(format!("pattern \"{p}\": {e}")))).collect()
    };
    let (include, exclude) = (globs(&cfg.include)?, globs(&cfg.exclude)?);
    let regex = |p: &Option<String>| p.as_deref().map(regex::Regex::new).transpose();
    let multiline = cfg.multiline.clone().unwrap_or_default();
    let max_log_size = cfg.max_log_size.0.min(usize::MAX as u64) as usize;
    let settings = ReaderSettings {
        max_log_size,
        max_join_size: match cfg.container().and_then(|o| o.max_log_size) {
            Some(m) if m.0 > 0 => m.0.min(usize::MAX as u64) as usize,
            _ => max_log_size,
        },
        container: cfg.container().map(|o| Format::from_config(o.format.as_deref())),
        line_start: regex(&multiline.line_start_pattern).map_err(|e| invalid(e.to_string()))?,
        line_end: regex(&multiline.line_end_pattern).map_err(|e| invalid(e.to_string()))?,
        force_flush_period: cfg.force_flush_period.get(),
    };
    let store = storage.map(|s| CheckpointStore::new(std::path::Path::new(&s.directory), &ctx.id, s.fsync));
    let saved = match &store {
        Some(s) => s.load().map_err(invalid)?,
        None => Vec::new(),
    };
    if let Some(s) = &store {
        tracing::info!(receiver = %ctx.id, checkpoint = %s.path().display(), files = saved.len(), "filelog checkpoint loaded");
    }
    let set = FileSet::new(
        include,
        exclude,
        cfg.fingerprint_size.0.min(usize::MAX as u64) as usize,
        cfg.max_concurrent_files,
        cfg.start_at_beginning(),
        settings,
        &saved,
    );
    let tailer = Tailer {
        set,
        store,
        output: ctx.output.clone(),
        receiver: ReceiverMetrics::new(&ctx.registry, &ctx.id, "file", Signal::Logs),
        metrics: FilelogMetrics::new(&ctx.registry, &ctx.id),
        durable_ack_failures: crate::telemetry::durable_ack_failures(&ctx.registry, &ctx.id, "file"),
        shutdown: ctx.shutdown.clone(),
        poll_interval: cfg.poll_interval.get().max(Duration::from_millis(1)),
        include_file_name: cfg.include_file_name,
        include_file_path: cfg.include_file_path,
        pod_metadata: cfg.container().is_some_and(|o| o.add_metadata_from_filepath),
        attributes: cfg.attributes.iter().map(|(k, v)| kv(k, v)).collect(),
        resource: cfg.resource.iter().map(|(k, v)| kv(k, v)).collect(),
        dirty: false,
    };
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let name = format!("sluice-{}", ctx.id);
    std::thread::Builder::new()
        .name(name)
        .spawn(move || {
            let _done = done_tx; // Dropped when the thread ends, even by a panic.
            tailer.run();
        })
        .map_err(|e| invalid(format!("cannot start the reading thread: {e}")))?;
    let task = tokio::spawn(async move {
        let _ = done_rx.await;
    });
    Ok(RunningReceiver { endpoints: Vec::new(), tasks: vec![task] })
}

/// Records of one batch being built, grouped by file, with each file's
/// offset to commit once the batch is accepted.
#[derive(Default)]
struct Pending {
    resources: Vec<(u64, u64, ResourceLogs)>,
    records: usize,
    bytes: usize,
}

struct Tailer {
    set: FileSet,
    store: Option<CheckpointStore>,
    output: super::ReceiverOutput,
    receiver: ReceiverMetrics,
    metrics: FilelogMetrics,
    durable_ack_failures: crate::telemetry::Counter,
    shutdown: watch::Receiver<bool>,
    poll_interval: Duration,
    include_file_name: bool,
    include_file_path: bool,
    pod_metadata: bool,
    /// `attributes` and `resource`: added to every record and resource.
    attributes: Vec<KeyValue>,
    resource: Vec<KeyValue>,
    /// Offsets changed since the checkpoint was last written.
    dirty: bool,
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_string())) }),
        ..Default::default()
    }
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// Why a poll ended early.
struct Stopped;

impl Tailer {
    fn run(mut self) {
        let rt = match tokio::runtime::Builder::new_current_thread().enable_time().build() {
            Ok(rt) => rt,
            Err(e) => {
                tracing::error!(error = %e, "filelog: cannot build its runtime; not reading");
                return;
            }
        };
        tracing::info!(files = self.set.files.len(), "filelog receiver started");
        loop {
            if *self.shutdown.borrow() {
                break;
            }
            let more = match self.poll(&rt) {
                Ok(more) => more,
                Err(Stopped) => break,
            };
            if !more {
                let mut stop = self.shutdown.clone();
                let interval = self.poll_interval;
                rt.block_on(async move {
                    tokio::select! {
                        _ = tokio::time::sleep(interval) => {}
                        _ = stop.wait_for(|s| *s) => {}
                    }
                });
            }
        }
        self.save_checkpoint();
    }

    /// One pass over the files. Returns whether some file has more to read now.
    fn poll(&mut self, rt: &tokio::runtime::Runtime) -> Result<bool, Stopped> {
        self.set.discover();
        let mut more = false;
        let mut batch = Pending::default();
        let mut entries = Vec::new();
        for i in 0..self.set.files.len() {
            entries.clear();
            more |= self.set.read(i, Instant::now(), &mut entries);
            if entries.is_empty() {
                continue;
            }
            let key = self.set.files[i].key;
            let mut rest = entries.drain(..).peekable();
            while rest.peek().is_some() {
                self.fill(&mut batch, key, &mut rest);
                if batch.records >= MAX_BATCH_RECORDS || batch.bytes >= MAX_BATCH_BYTES {
                    self.deliver(std::mem::take(&mut batch), rt)?;
                }
            }
        }
        if batch.records > 0 {
            self.deliver(batch, rt)?;
        }
        let (truncated, unparsed) = self.set.take_reader_counts();
        self.metrics.truncated_entries.add(truncated);
        self.metrics.unparsed_lines.add(unparsed);
        let ev = std::mem::take(&mut self.set.events);
        self.metrics.rotations.add(ev.rotations);
        self.metrics.open_file_limit_hits.add(ev.open_limit_hits);
        self.metrics.read_errors.add(ev.read_errors);
        self.dirty |= self.set.close_finished();
        self.metrics.files_watched.set(self.set.files.len() as i64);
        // New files' start offsets, truncations, closed files: keep the checkpoint current.
        if self.dirty {
            self.save_checkpoint();
        }
        Ok(more)
    }

    /// Moves entries of file `key` into the batch until it is full.
    fn fill(&self, batch: &mut Pending, key: u64, entries: &mut std::iter::Peekable<std::vec::Drain<'_, Entry>>) {
        let path = self.set.path_of(key).map(|p| p.to_path_buf()).unwrap_or_default();
        if batch.resources.last().is_none_or(|(k, _, _)| *k != key) {
            let mut attributes = self.resource.clone();
            if self.pod_metadata {
                if let Some(m) = PodMetadata::from_path(&path) {
                    attributes.extend(m.attributes().iter().map(|(k, v)| kv(k, v)));
                }
            }
            let rl = ResourceLogs {
                resource: Some(Resource { attributes, ..Default::default() }),
                scope_logs: vec![ScopeLogs::default()],
                ..Default::default()
            };
            batch.resources.push((key, 0, rl));
        }
        let observed = unix_nanos(SystemTime::now());
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let path_text = path.display().to_string();
        let (_, resume, rl) = batch.resources.last_mut().expect("pushed above");
        while batch.records < MAX_BATCH_RECORDS && batch.bytes < MAX_BATCH_BYTES {
            let Some(e) = entries.next() else { break };
            let mut attributes = Vec::with_capacity(4 + self.attributes.len());
            attributes.extend(self.attributes.iter().cloned());
            if self.include_file_name {
                attributes.push(kv("log.file.name", &file_name));
            }
            if self.include_file_path {
                attributes.push(kv("log.file.path", &path_text));
            }
            if let Some(s) = e.stream {
                attributes.push(kv("log.iostream", s.as_str()));
            }
            if let Some(t) = &e.logtag {
                attributes.push(kv("logtag", t));
            }
            batch.bytes += e.body.len();
            batch.records += 1;
            *resume = e.resume;
            rl.scope_logs[0].log_records.push(LogRecord {
                time_unix_nano: e.time_unix_nano,
                observed_time_unix_nano: observed,
                body: Some(AnyValue { value: Some(any_value::Value::StringValue(e.body)) }),
                attributes,
                ..Default::default()
            });
        }
    }

    /// Offers the batch until the pipelines accept it (or shutdown), then
    /// commits its files' offsets and writes the checkpoint.
    fn deliver(&mut self, batch: Pending, rt: &tokio::runtime::Runtime) -> Result<(), Stopped> {
        let commits: Vec<(u64, u64)> = batch.resources.iter().map(|(k, r, _)| (*k, *r)).collect();
        let request =
            ExportLogsServiceRequest { resource_logs: batch.resources.into_iter().map(|(_, _, rl)| rl).collect() };
        let n = batch.records as u64;
        let mut backoff = FIRST_RETRY_BACKOFF;
        loop {
            let outcome = match self.output.offer(Payload::Decoded(Batch::Logs(request.clone()))) {
                Ok(acks) if acks.is_empty() => Ok(()),
                Ok(acks) => rt.block_on(acks.wait(super::DURABLE_ACK_TIMEOUT)).inspect_err(|_| {
                    self.durable_ack_failures.inc();
                }),
                Err(r) => Err(r),
            };
            match outcome {
                Ok(()) => break,
                Err(refusal) => {
                    self.receiver.refused.add(n);
                    if refusal == Refusal::ShuttingDown || *self.shutdown.borrow() {
                        // Not committed: read again after the restart.
                        return Err(Stopped);
                    }
                    self.metrics.offer_retries.inc();
                    let mut stop = self.shutdown.clone();
                    rt.block_on(async move {
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.wait_for(|s| *s) => {}
                        }
                    });
                    backoff = (backoff * 2).min(MAX_RETRY_BACKOFF);
                }
            }
        }
        self.receiver.accepted.add(n);
        for (key, resume) in commits {
            self.dirty |= self.set.mark_committed(key, resume);
        }
        if self.dirty {
            self.save_checkpoint();
        }
        Ok(())
    }

    fn save_checkpoint(&mut self) {
        let Some(store) = &self.store else {
            self.dirty = false;
            return;
        };
        match store.save(&self.set.checkpoints()) {
            Ok(()) => self.dirty = false,
            Err(e) => {
                self.metrics.checkpoint_write_failures.inc();
                tracing::warn!(checkpoint = %store.path().display(), error = %e, "cannot write the filelog checkpoint; retrying at the next accepted batch");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receivers::{BatchSink, ReceiverOutput};
    use crate::telemetry::Registry;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    /// A pipeline entry that refuses its first `refuse` offers, then keeps the bodies.
    struct Door {
        refuse: AtomicUsize,
        bodies: Mutex<Vec<String>>,
        /// Attribute keys of the last record and of its resource.
        keys: Mutex<(Vec<String>, Vec<String>)>,
    }

    impl BatchSink for Door {
        fn offer(&self, batch: Payload) -> Result<(), Refusal> {
            if self.refuse.load(Ordering::SeqCst) > 0 {
                self.refuse.fetch_sub(1, Ordering::SeqCst);
                return Err(Refusal::PipelineFull);
            }
            let Ok(Batch::Logs(req)) = batch.into_decoded() else { panic!("not logs") };
            let mut bodies = self.bodies.lock().unwrap();
            for rl in &req.resource_logs {
                let resource = rl.resource.iter().flat_map(|r| &r.attributes).map(|a| a.key.clone()).collect();
                if let Some(r) = rl.scope_logs.iter().flat_map(|s| &s.log_records).next() {
                    *self.keys.lock().unwrap() = (r.attributes.iter().map(|a| a.key.clone()).collect(), resource);
                }
            }
            for r in req.resource_logs.iter().flat_map(|r| &r.scope_logs).flat_map(|s| &s.log_records) {
                match r.body.as_ref().and_then(|b| b.value.as_ref()) {
                    Some(any_value::Value::StringValue(s)) => bodies.push(s.clone()),
                    other => panic!("body {other:?}"),
                }
            }
            Ok(())
        }
    }

    async fn run_once(
        cfg: &FilelogReceiverConfig,
        storage: &FileStorageConfig,
        refuse: usize,
        wait: Duration,
        until: impl Fn(&Door) -> bool,
    ) -> (Arc<Door>, Registry) {
        let door = Arc::new(Door {
            refuse: AtomicUsize::new(refuse),
            bodies: Mutex::new(Vec::new()),
            keys: Mutex::new((Vec::new(), Vec::new())),
        });
        let mut output = ReceiverOutput::default();
        output.add(Signal::Logs, door.clone());
        let (stop, shutdown) = watch::channel(false);
        let registry = Registry::new();
        let ctx = ReceiverContext {
            id: "filelog".into(),
            output,
            registry: registry.clone(),
            shutdown,
            extensions: Default::default(),
        };
        let running = start(cfg, Some(storage), ctx).await.unwrap();
        let deadline = Instant::now() + wait;
        while !until(&door) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.send(true).unwrap();
        for t in running.tasks {
            t.await.unwrap();
        }
        (door, registry)
    }

    #[tokio::test]
    async fn refused_batches_are_retried_and_only_accepted_offsets_are_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("app.log");
        let lines: Vec<String> = (0..250).map(|i| format!("entry number {i:04}")).collect();
        std::fs::write(&log, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
        let storage = FileStorageConfig { directory: dir.path().join("storage").display().to_string(), fsync: true };
        let cfg = FilelogReceiverConfig {
            include: vec![format!("{}/*.log", dir.path().display())],
            start_at: "beginning".into(),
            poll_interval: crate::config::duration::Duration::from_millis(20),
            ..Default::default()
        };

        // The pipeline refuses everything: nothing is checkpointed, so nothing is lost.
        let (door, reg) = run_once(&cfg, &storage, usize::MAX, Duration::from_millis(500), |_| false).await;
        assert!(door.bodies.lock().unwrap().is_empty());
        let labels: &[(&str, &str)] = &[("receiver", "filelog"), ("transport", "file")];
        assert!(reg.value("otelcol_receiver_refused_log_records_total", labels).unwrap() >= 100.0);
        assert!(reg.value("sluice_filelog_offer_retries_total", &[("receiver", "filelog")]).unwrap() >= 1.0);
        let saved = CheckpointStore::new(std::path::Path::new(&storage.directory), "filelog", true).load().unwrap();
        assert_eq!(saved.iter().map(|s| s.offset).collect::<Vec<_>>(), [0]);

        // Restarted, with three refusals: every line arrives once, in order.
        let (door, reg) =
            run_once(&cfg, &storage, 3, Duration::from_secs(10), |d| d.bodies.lock().unwrap().len() >= 250).await;
        assert_eq!(*door.bodies.lock().unwrap(), lines);
        assert_eq!(reg.value("sluice_filelog_offer_retries_total", &[("receiver", "filelog")]), Some(3.0));
        assert_eq!(reg.value("otelcol_receiver_refused_log_records_total", labels), Some(300.0));
        assert_eq!(reg.value("otelcol_receiver_accepted_log_records_total", labels), Some(250.0));
        let saved = CheckpointStore::new(std::path::Path::new(&storage.directory), "filelog", true).load().unwrap();
        let size = std::fs::metadata(&log).unwrap().len();
        assert_eq!(saved.iter().map(|s| s.offset).collect::<Vec<_>>(), [size]);

        // Restarted again: the checkpoint says everything was taken; nothing is sent twice.
        let (door, _) = run_once(&cfg, &storage, 0, Duration::from_millis(500), |_| false).await;
        assert!(door.bodies.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn attributes_and_resource_are_added() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.log"), "one\n").unwrap();
        let storage = FileStorageConfig { directory: dir.path().join("storage").display().to_string(), fsync: false };
        let cfg = FilelogReceiverConfig {
            include: vec![format!("{}/*.log", dir.path().display())],
            start_at: "beginning".into(),
            poll_interval: crate::config::duration::Duration::from_millis(20),
            attributes: [("team".to_string(), "core".to_string())].into(),
            resource: [("service.name".to_string(), "app".to_string())].into(),
            ..Default::default()
        };
        let (door, _) =
            run_once(&cfg, &storage, 0, Duration::from_secs(10), |d| !d.bodies.lock().unwrap().is_empty()).await;
        let (attributes, resource) = door.keys.lock().unwrap().clone();
        assert_eq!(attributes, ["team", "log.file.name"]);
        assert_eq!(resource, ["service.name"]);
    }
}
