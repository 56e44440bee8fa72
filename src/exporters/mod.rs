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

use crate::config::component::{Factory, SameSettings};
use crate::data::{Batch, EncodedBatch, Signal};
use crate::telemetry::Registry;
use otlp_common::{RetryConfig, SendingQueueConfig};
use runner::{Consumers, RunnerParts};
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

/// How an exporter type is loaded: see [`crate::config::component`].
pub type ExporterFactory = Factory<dyn ExporterSpec>;

/// Why an exporter cannot take a pipeline of some signal (a per-signal
/// setting it lacks); reported at the exporter's field.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalProblem {
    /// The field under the exporter, or `None` for the exporter itself.
    pub field: Option<&'static str>,
    pub message: String,
    pub hint: String,
}

/// An exporter's compiled settings. Built only from an
/// [`ExporterFactory`]'s `compile`.
pub trait ExporterSpec: SameSettings + Send + Sync + std::fmt::Debug {
    /// Its sending queue and retry policy (the shared settings). Exporters
    /// that write locally have one consumer and nothing to retry.
    fn sending(&self) -> (SendingQueueConfig, RetryConfig) {
        (
            SendingQueueConfig { num_consumers: 1, ..SendingQueueConfig::default() },
            RetryConfig { enabled: false, ..RetryConfig::default() },
        )
    }

    /// Whether it sends OTLP protobuf, so it can be handed requests as received.
    fn forwards_encoded(&self) -> bool {
        false
    }

    /// Where it sends `signal`, in plain words for the start-up log.
    fn destination(&self, signal: Signal) -> String;

    /// Whether it can take a pipeline of `signal`.
    fn check_signal(&self, _signal: Signal) -> Result<(), SignalProblem> {
        Ok(())
    }

    /// Builds the exporter for one signal and starts its consumers.
    fn start(&self, id: &str, signal: Signal, registry: &Registry, parts: RunnerParts) -> Result<Consumers, String>;
}

crate::config::component::compiled_form!(dyn ExporterSpec);
