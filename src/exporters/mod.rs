//! Exporters: async clients that send batches to a backend.
//!
//! Each exporter is driven by a [`runner`]: it pulls from the exporter's
//! sending queue, retries retryable failures with exponential backoff and
//! jitter (honouring the server's Retry-After / RetryInfo), and counts every
//! item as sent or failed.

pub mod debug;
pub mod file;
pub mod http_sender;
pub mod loadbalancing;
pub mod loki;
pub mod nop;
pub mod otlp;
pub mod otlp_common;
pub mod otlphttp;
pub mod prometheus;
pub mod prometheus_common;
pub mod prometheusremotewrite;
pub mod runner;
#[cfg(test)]
pub mod test_server;

use crate::config::ExporterConfig;
use crate::data::{Batch, EncodedBatch};
use std::future::Future;
use std::time::Duration;

/// How one send attempt failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExportError {
    /// Worth trying again; `retry_after` is the server's requested wait, if any.
    #[error("{message} (retryable)")]
    Retryable { message: String, retry_after: Option<Duration> },
    /// Will fail the same way again; the data is dropped and counted.
    #[error("{message} (permanent)")]
    Permanent { message: String },
}

/// A successful send. `rejected` counts items the backend refused in an OTLP
/// partial success; they are not retried, as the spec says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportOutcome {
    pub rejected: u64,
    pub message: Option<String>,
}

pub trait Exporter: Send + Sync + 'static {
    /// Sends one batch, one attempt: retrying is the runner's job.
    fn export(&self, batch: &Batch) -> impl Future<Output = Result<ExportOutcome, ExportError>> + Send;

    /// Sends a batch that is still encoded (the pass-through path). An
    /// exporter that sends OTLP protobuf overrides this to send the bytes as
    /// they are; the default decodes and calls [`Exporter::export`].
    fn export_encoded(&self, batch: &EncodedBatch) -> impl Future<Output = Result<ExportOutcome, ExportError>> + Send {
        async move {
            match batch.decode() {
                Ok(decoded) => self.export(&decoded).await,
                Err(e) => Err(ExportError::Permanent { message: format!("cannot decode a queued batch: {e}") }),
            }
        }
    }

    /// Flushes and closes; called once after the queue is drained.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Whether an exporter sends batches as OTLP protobuf, so a pipeline whose
/// processors do not look inside the data can hand it bytes as received.
pub fn forwards_encoded(cfg: &ExporterConfig) -> bool {
    match cfg {
        ExporterConfig::Otlp(_) | ExporterConfig::Nop(_) => true,
        ExporterConfig::OtlpHttp(c) => c.encoding == otlphttp::config::HttpEncoding::Proto,
        _ => false,
    }
}
