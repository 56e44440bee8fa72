//! The `file` exporter: appends batches to a file as OTLP JSON lines (one
//! export request per line, the standard OTLP JSON encoding) or as
//! length-prefixed protobuf (4-byte big-endian length, then the message).
//!
//! Guarantees: a batch is written whole under one lock, so two batches never
//! interleave; buffered data is flushed at least every `flush_interval` and on
//! `shutdown()` (of the last instance using the file, since instances naming
//! the same path share one writer); the directory must exist (it is not created) and the file is
//! opened at construction, so a bad path fails before the pipeline starts.
//! With `rotation`, the file is renamed to `<stem>-<timestamp>.<ext>` before a
//! write would take it past `max_megabytes`, and old backups are pruned by
//! count (`max_backups`) and age (`max_days`).

pub mod config;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::data::{Batch, Signal};
use crate::exporters::otlp_common::civil;
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::Registry;
use config::{FileExporterConfig, FileFormat, RotationConfig};
use prost::Message;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::sync::Mutex;

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "file",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "writes OTLP JSON lines to a file, rotated by size",
        example: "path: /var/lib/sluice/export.json\n",
    },
    settings: SettingsType::of::<FileExporterConfig>(),
    compile: |input| {
        let cfg: FileExporterConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExporterSpec for FileExporterConfig {
    fn destination(&self, _signal: Signal) -> String {
        format!("the file {}", self.path)
    }

    fn start(&self, id: &str, signal: Signal, _registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        Ok(runner::start(FileExporter::new(self, signal, id)?, parts))
    }
}

const BUFFER_BYTES: usize = 256 * 1024;

pub struct FileExporter {
    shared: Arc<SharedFile>,
    format: FileFormat,
    flush_interval: Duration,
    /// The periodic flusher is started on the first export, because the
    /// constructor may run outside the runtime.
    flusher: std::sync::OnceLock<tokio::task::JoinHandle<()>>,
    /// This instance's `shutdown()` has run; the file may stay open for others.
    closed: AtomicBool,
}

/// One open file, shared by every exporter instance that names the same path
/// (one per signal of a component, as the Collector shares its file exporter):
/// separate buffers appending to one file could split each other's lines.
struct SharedFile {
    writer: Mutex<Writer>,
    format: FileFormat,
    /// Instances not yet shut down; the file is closed when the last one is.
    users: AtomicUsize,
}

struct Writer {
    path: PathBuf,
    /// `None` once closed.
    file: Option<BufWriter<tokio::fs::File>>,
    size: u64,
    dirty: bool,
    rotation: Option<RotationConfig>,
}

static OPEN_FILES: LazyLock<std::sync::Mutex<HashMap<PathBuf, Weak<SharedFile>>>> = LazyLock::new(Default::default);

impl FileExporter {
    pub fn new(cfg: &FileExporterConfig, _signal: Signal, id: &str) -> Result<Self, String> {
        let path = PathBuf::from(&cfg.path);
        if cfg.path.is_empty() {
            return Err(format!("{id}: path is empty"));
        }
        let (file, size) = open(&path).map_err(|e| format!("{id}: {e}"))?;
        // The file exists now, so it has a canonical name to share it under.
        let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        let mut open_files = OPEN_FILES.lock().unwrap_or_else(|e| e.into_inner());
        let shared = match open_files.get(&key).and_then(Weak::upgrade) {
            Some(shared) if shared.users.load(Ordering::SeqCst) > 0 => {
                if shared.format != cfg.format {
                    return Err(format!("{id}: {} is already written in another format", path.display()));
                }
                shared.users.fetch_add(1, Ordering::SeqCst);
                shared
            }
            _ => {
                let shared = Arc::new(SharedFile {
                    writer: Mutex::new(Writer {
                        path,
                        file: Some(file),
                        size,
                        dirty: false,
                        rotation: cfg.rotation.clone(),
                    }),
                    format: cfg.format,
                    users: AtomicUsize::new(1),
                });
                open_files.insert(key, Arc::downgrade(&shared));
                shared
            }
        };
        Ok(FileExporter {
            shared,
            format: cfg.format,
            flush_interval: cfg.flush_interval.get(),
            flusher: std::sync::OnceLock::new(),
            closed: AtomicBool::new(false),
        })
    }

    fn start_flusher(&self) {
        if self.flush_interval.is_zero() {
            return;
        }
        let interval = self.flush_interval;
        let shared: Weak<SharedFile> = Arc::downgrade(&self.shared);
        self.flusher.get_or_init(|| {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    let Some(shared) = shared.upgrade() else { return };
                    let mut w = shared.writer.lock().await;
                    if w.file.is_none() {
                        return;
                    }
                    if let Err(e) = w.flush().await {
                        tracing::warn!(path = %w.path.display(), error = %e, "file exporter: flush failed");
                    }
                }
            })
        });
    }
}

impl Drop for FileExporter {
    fn drop(&mut self) {
        if let Some(h) = self.flusher.get() {
            h.abort();
        }
    }
}

/// One record as it goes into the file.
pub fn encode_record(batch: &Batch, format: FileFormat) -> Result<Vec<u8>, String> {
    match format {
        FileFormat::Json => {
            let mut line = match batch {
                Batch::Traces(r) => serde_json::to_vec(r),
                Batch::Metrics(r) => serde_json::to_vec(r),
                Batch::Logs(r) => serde_json::to_vec(r),
            }
            .map_err(|e| format!("JSON encoding: {e}"))?;
            line.push(b'\n');
            Ok(line)
        }
        FileFormat::Proto => {
            let len = batch.encoded_len();
            let len32 = u32::try_from(len).map_err(|_| format!("batch of {len} bytes is too large for a record"))?;
            let mut buf = Vec::with_capacity(4 + len);
            buf.extend_from_slice(&len32.to_be_bytes());
            match batch {
                Batch::Traces(r) => r.encode_raw(&mut buf),
                Batch::Metrics(r) => r.encode_raw(&mut buf),
                Batch::Logs(r) => r.encode_raw(&mut buf),
            }
            Ok(buf)
        }
    }
}

impl Exporter for FileExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let record = encode_record(batch, self.format).map_err(|message| ExportError::Permanent { message })?;
        self.start_flusher();
        let mut w = self.shared.writer.lock().await;
        let path = w.path.display().to_string();
        let retryable =
            |e: std::io::Error| ExportError::Retryable { message: format!("{path}: {e}"), retry_after: None };
        if w.file.is_none() || self.closed.load(Ordering::SeqCst) {
            return Err(ExportError::Permanent { message: format!("{path}: the file exporter is shut down") });
        }
        if w.needs_rotation(record.len() as u64) {
            w.rotate().await.map_err(retryable)?;
        }
        let Some(file) = w.file.as_mut() else {
            return Err(ExportError::Permanent { message: format!("{path}: the file exporter is shut down") });
        };
        file.write_all(&record).await.map_err(retryable)?;
        w.size += record.len() as u64;
        w.dirty = true;
        if self.flush_interval.is_zero() {
            w.flush().await.map_err(retryable)?;
        }
        Ok(ExportOutcome::default())
    }

    async fn shutdown(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut w = self.shared.writer.lock().await;
        if let Err(e) = w.flush().await {
            tracing::warn!(path = %w.path.display(), error = %e, "file exporter: final flush failed");
        }
        if self.shared.users.fetch_sub(1, Ordering::SeqCst) == 1 {
            if let Some(mut file) = w.file.take() {
                let _ = file.shutdown().await;
            }
        }
        if let Some(h) = self.flusher.get() {
            h.abort();
        }
    }
}

fn open(path: &Path) -> Result<(BufWriter<tokio::fs::File>, u64), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.is_dir() {
            return Err(format!("directory {} of path {} does not exist", dir.display(), path.display()));
        }
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    Ok((BufWriter::with_capacity(BUFFER_BYTES, tokio::fs::File::from_std(file)), size))
}

impl Writer {
    async fn flush(&mut self) -> std::io::Result<()> {
        if let (true, Some(file)) = (self.dirty, self.file.as_mut()) {
            file.flush().await?;
            self.dirty = false;
        }
        Ok(())
    }

    fn needs_rotation(&self, incoming: u64) -> bool {
        match &self.rotation {
            // A record larger than the limit still goes into a fresh file.
            Some(r) => self.size > 0 && self.size + incoming > r.max_megabytes.saturating_mul(1 << 20),
            None => false,
        }
    }

    async fn rotate(&mut self) -> std::io::Result<()> {
        let Some(rotation) = self.rotation.clone() else { return Ok(()) };
        self.flush().await?;
        if let Some(mut file) = self.file.take() {
            file.shutdown().await?;
        }
        let mut now = SystemTime::now();
        let mut backup = backup_path(&self.path, now, rotation.localtime);
        // Two rotations within one millisecond must not overwrite a backup.
        while tokio::fs::try_exists(&backup).await.unwrap_or(false) {
            now += Duration::from_millis(1);
            backup = backup_path(&self.path, now, rotation.localtime);
        }
        let renamed = tokio::fs::rename(&self.path, &backup).await;
        // Reopen whatever happened, so a failed rename does not stop writing.
        let (file, size) = open(&self.path).map_err(std::io::Error::other)?;
        self.file = Some(file);
        self.size = size;
        renamed?;
        if let Err(e) = prune_backups(&self.path, &rotation) {
            tracing::warn!(path = %self.path.display(), error = %e, "file exporter: pruning rotated files failed");
        }
        Ok(())
    }
}

/// `<stem>-<YYYY-MM-DDTHH-MM-SS.mmm>.<ext>` next to `path`.
pub fn backup_path(path: &Path, at: SystemTime, localtime: bool) -> PathBuf {
    let (stem, ext) = stem_and_ext(path);
    let ts = timestamp(at, localtime);
    let name = match ext {
        Some(ext) => format!("{stem}-{ts}.{ext}"),
        None => format!("{stem}-{ts}"),
    };
    path.with_file_name(name)
}

fn stem_and_ext(path: &Path) -> (String, Option<String>) {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned());
    (stem, ext)
}

/// `YYYY-MM-DDTHH-MM-SS.mmm`, UTC or local time.
pub fn timestamp(at: SystemTime, localtime: bool) -> String {
    let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs() as i64 + if localtime { local_offset_secs(since.as_secs() as i64) } else { 0 };
    let (y, m, d) = civil::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}-{:02}-{:02}.{:03}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        since.subsec_millis()
    )
}

fn local_offset_secs(unix: i64) -> i64 {
    let t = unix as libc::time_t;
    // SAFETY: localtime_r writes only into `tm`, which we own.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if ok {
        tm.tm_gmtoff
    } else {
        0
    }
}

/// Removes rotated files beyond `max_backups` (oldest first) and older than `max_days`.
fn prune_backups(path: &Path, rotation: &RotationConfig) -> std::io::Result<()> {
    if rotation.max_backups == 0 && rotation.max_days == 0 {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (stem, ext) = stem_and_ext(path);
    let prefix = format!("{stem}-");
    let suffix = ext.map(|e| format!(".{e}")).unwrap_or_default();
    let mut backups: Vec<(String, PathBuf, SystemTime)> = Vec::new();
    for entry in std::fs::read_dir(&dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(ts) = name.strip_prefix(&prefix).and_then(|rest| rest.strip_suffix(suffix.as_str())) else {
            continue;
        };
        if !is_timestamp(ts) {
            continue;
        }
        let modified = entry.metadata().and_then(|m| m.modified()).unwrap_or(UNIX_EPOCH);
        backups.push((ts.to_string(), entry.path(), modified));
    }
    // Timestamps sort chronologically as text; newest first.
    backups.sort_by(|a, b| b.0.cmp(&a.0));
    let now = SystemTime::now();
    let max_age = Duration::from_secs(rotation.max_days.saturating_mul(86_400));
    for (i, (_, p, modified)) in backups.iter().enumerate() {
        let too_many = rotation.max_backups > 0 && i as u64 >= rotation.max_backups;
        let too_old = rotation.max_days > 0 && now.duration_since(*modified).unwrap_or_default() > max_age;
        if too_many || too_old {
            std::fs::remove_file(p)?;
        }
    }
    Ok(())
}

fn is_timestamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 23
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 => *c == b'-',
            10 => *c == b'T',
            19 => *c == b'.',
            _ => c.is_ascii_digit(),
        })
}

#[cfg(test)]
mod tests;
