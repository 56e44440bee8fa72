//! The one data model that flows through sluice: OTLP export requests as
//! decoded by prost. There is no second internal model, so a batch is decoded
//! once at the receiver and encoded once at the exporter.

use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use opentelemetry_proto::tonic::metrics::v1::metric::Data as MetricData;
use std::fmt;

pub mod check;
pub mod cut;
mod cut_encoded;
pub mod encoded;
pub mod estimate;
pub mod fixtures;
pub mod heap;
pub mod split;
pub mod wire;

pub use encoded::{EncodedBatch, Payload};

/// The three telemetry signals a pipeline can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    /// The name used in `service.pipelines` keys (`traces`, `metrics`, `logs`).
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// The unit the Collector's self-metrics count for this signal.
    pub fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "metric_points",
            Signal::Logs => "log_records",
        }
    }

    pub fn parse(s: &str) -> Option<Signal> {
        match s {
            "traces" => Some(Signal::Traces),
            "metrics" => Some(Signal::Metrics),
            "logs" => Some(Signal::Logs),
            _ => None,
        }
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One unit of work: a whole OTLP export request of one signal.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    Traces(ExportTraceServiceRequest),
    Metrics(ExportMetricsServiceRequest),
    Logs(ExportLogsServiceRequest),
}

impl Batch {
    pub fn signal(&self) -> Signal {
        match self {
            Batch::Traces(_) => Signal::Traces,
            Batch::Metrics(_) => Signal::Metrics,
            Batch::Logs(_) => Signal::Logs,
        }
    }

    /// Spans, metric data points or log records in the batch: the unit every
    /// accepted/refused/sent counter uses.
    pub fn item_count(&self) -> usize {
        match self {
            Batch::Traces(r) => span_count(r),
            Batch::Metrics(r) => data_point_count(r),
            Batch::Logs(r) => log_record_count(r),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Batch::Traces(r) => r.resource_spans.is_empty(),
            Batch::Metrics(r) => r.resource_metrics.is_empty(),
            Batch::Logs(r) => r.resource_logs.is_empty(),
        }
    }

    /// An empty batch of the given signal.
    pub fn empty(signal: Signal) -> Batch {
        match signal {
            Signal::Traces => Batch::Traces(Default::default()),
            Signal::Metrics => Batch::Metrics(Default::default()),
            Signal::Logs => Batch::Logs(Default::default()),
        }
    }

    /// Size of the protobuf encoding, used for memory accounting.
    pub fn encoded_len(&self) -> usize {
        use prost::Message;
        match self {
            Batch::Traces(r) => r.encoded_len(),
            Batch::Metrics(r) => r.encoded_len(),
            Batch::Logs(r) => r.encoded_len(),
        }
    }
}

/// Drops scopes left without spans, then resources left without scopes.
pub fn prune_empty_traces(r: &mut ExportTraceServiceRequest) {
    for rs in &mut r.resource_spans {
        rs.scope_spans.retain(|ss| !ss.spans.is_empty());
    }
    r.resource_spans.retain(|rs| !rs.scope_spans.is_empty());
}

/// Drops scopes left without metrics, then resources left without scopes.
pub fn prune_empty_metrics(r: &mut ExportMetricsServiceRequest) {
    for rm in &mut r.resource_metrics {
        rm.scope_metrics.retain(|sm| !sm.metrics.is_empty());
    }
    r.resource_metrics.retain(|rm| !rm.scope_metrics.is_empty());
}

/// Drops scopes left without log records, then resources left without scopes.
pub fn prune_empty_logs(r: &mut ExportLogsServiceRequest) {
    for rl in &mut r.resource_logs {
        rl.scope_logs.retain(|sl| !sl.log_records.is_empty());
    }
    r.resource_logs.retain(|rl| !rl.scope_logs.is_empty());
}

pub fn span_count(r: &ExportTraceServiceRequest) -> usize {
    r.resource_spans.iter().flat_map(|rs| rs.scope_spans.iter()).map(|ss| ss.spans.len()).sum()
}

pub fn log_record_count(r: &ExportLogsServiceRequest) -> usize {
    r.resource_logs.iter().flat_map(|rl| rl.scope_logs.iter()).map(|sl| sl.log_records.len()).sum()
}

pub fn data_point_count(r: &ExportMetricsServiceRequest) -> usize {
    r.resource_metrics
        .iter()
        .flat_map(|rm| rm.scope_metrics.iter())
        .flat_map(|sm| sm.metrics.iter())
        .map(|m| metric_point_count(m.data.as_ref()))
        .sum()
}

/// Data points of one metric, as the Collector counts them (a histogram or
/// summary point counts once).
pub fn metric_point_count(data: Option<&MetricData>) -> usize {
    match data {
        Some(MetricData::Gauge(g)) => g.data_points.len(),
        Some(MetricData::Sum(s)) => s.data_points.len(),
        Some(MetricData::Histogram(h)) => h.data_points.len(),
        Some(MetricData::ExponentialHistogram(h)) => h.data_points.len(),
        Some(MetricData::Summary(s)) => s.data_points.len(),
        None => 0,
    }
}
