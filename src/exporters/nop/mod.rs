//! The `nop` exporter: accepts every batch and discards it, as the
//! Collector's `nop` exporter does.
//!
//! It exists to measure the agent's own cost: with `nop` at the end of a
//! pipeline, a load run's CPU and memory are receiving, processing and
//! queueing only, with no encoding, network or backend. The runner still
//! counts what it was handed as sent (`otelcol_exporter_sent_*`), so a run
//! can check that every item got through. It never fails.

pub mod config;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::data::Signal;
use crate::data::{Batch, EncodedBatch};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::Registry;
use config::NopExporterConfig;

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "nop",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "accepts and discards every batch, counted as sent (to measure the agent's own cost)",
        example: "",
    },
    settings: SettingsType::of::<NopExporterConfig>(),
    compile: |input| {
        let cfg: NopExporterConfig = input.typed()?;
        Some(std::sync::Arc::new(cfg))
    },
};

impl ExporterSpec for NopExporterConfig {
    fn destination(&self, _signal: Signal) -> String {
        "nowhere: items are counted as sent and dropped".to_string()
    }

    fn forwards_encoded(&self) -> bool {
        true
    }

    fn start(&self, _id: &str, _signal: Signal, _registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        Ok(runner::start(NopExporter::new(self), parts))
    }
}

#[derive(Debug, Default)]
pub struct NopExporter;

impl NopExporter {
    pub fn new(_cfg: &NopExporterConfig) -> Self {
        NopExporter
    }
}

impl Exporter for NopExporter {
    async fn export(&self, _batch: &Batch) -> Result<ExportOutcome, ExportError> {
        Ok(ExportOutcome::default())
    }

    async fn export_encoded(&self, _batch: &EncodedBatch) -> Result<ExportOutcome, ExportError> {
        Ok(ExportOutcome::default())
    }
}

#[cfg(test)]
mod tests;
