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

use crate::data::Batch;
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

    /// Flushes and closes; called once after the queue is drained.
    fn shutdown(&self) -> impl Future<Output = ()> + Send {
        async {}
    }
}
