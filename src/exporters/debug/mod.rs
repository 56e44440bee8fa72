//! The `debug` exporter: writes batches to the agent's log (target
//! `sluice::debug`), as the Collector's debug exporter does.
//!
//! Guarantees: it never fails an export; it logs at most `sampling_initial`
//! batches per second and then one in `sampling_thereafter` (the Collector's
//! zap sampler), so a busy pipeline cannot flood the log. Formatting is in
//! pure functions returning strings.

pub mod config;

use crate::config::component::{ComponentKind, ComponentMeta, Factory, ALL_SIGNALS};
use crate::config::describe::SettingsType;
use crate::data::{data_point_count, log_record_count, metric_point_count, span_count, Batch, Signal};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::Registry;
use config::{DebugExporterConfig, Verbosity};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, number_data_point, Metric};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::Span;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "debug",
        aliases: &[],
        signals: ALL_SIGNALS,
        description: "writes a summary or the contents of each batch to the agent's log",
        example: "",
    },
    settings: SettingsType::of::<DebugExporterConfig>(),
    compile: |input| {
        let cfg: DebugExporterConfig = input.typed()?;
        Some(std::sync::Arc::new(cfg))
    },
};

impl ExporterSpec for DebugExporterConfig {
    fn destination(&self, _signal: Signal) -> String {
        "the agent's log".to_string()
    }

    fn start(&self, id: &str, signal: Signal, _registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        Ok(runner::start(DebugExporter::new(self, signal, id)?, parts))
    }
}

pub struct DebugExporter {
    id: String,
    verbosity: Verbosity,
    sampler: Mutex<Sampler>,
}

impl DebugExporter {
    pub fn new(cfg: &DebugExporterConfig, _signal: Signal, id: &str) -> Result<Self, String> {
        Ok(DebugExporter {
            id: id.to_string(),
            verbosity: cfg.verbosity,
            sampler: Mutex::new(Sampler::new(cfg.sampling_initial, cfg.sampling_thereafter)),
        })
    }
}

impl Exporter for DebugExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let allowed = self.sampler.lock().unwrap_or_else(|e| e.into_inner()).allow(Instant::now());
        if !allowed {
            return Ok(ExportOutcome::default());
        }
        tracing::info!(target: "sluice::debug", "{}", summary(&self.id, batch));
        match self.verbosity {
            Verbosity::Basic => {}
            Verbosity::Normal => {
                for line in normal_lines(batch) {
                    tracing::info!(target: "sluice::debug", "{line}");
                }
            }
            Verbosity::Detailed => tracing::info!(target: "sluice::debug", "{}", detailed(batch)),
        }
        Ok(ExportOutcome::default())
    }
}

/// zap's sampler: per one-second tick, the first `initial` pass, then every
/// `thereafter`-th (0 drops all after the initial ones).
#[derive(Debug)]
pub struct Sampler {
    initial: u64,
    thereafter: u64,
    tick_start: Option<Instant>,
    seen: u64,
}

impl Sampler {
    pub fn new(initial: u64, thereafter: u64) -> Self {
        Sampler { initial, thereafter, tick_start: None, seen: 0 }
    }

    pub fn allow(&mut self, now: Instant) -> bool {
        match self.tick_start {
            Some(start) if now.saturating_duration_since(start) < Duration::from_secs(1) => {}
            _ => {
                self.tick_start = Some(now);
                self.seen = 0;
            }
        }
        self.seen += 1;
        self.seen <= self.initial || (self.thereafter > 0 && (self.seen - self.initial).is_multiple_of(self.thereafter))
    }
}

/// The `basic` line: counts per batch.
pub fn summary(id: &str, batch: &Batch) -> String {
    match batch {
        Batch::Traces(r) => {
            format!("exporter={id} data_type=traces resource_spans={} spans={}", r.resource_spans.len(), span_count(r))
        }
        Batch::Metrics(r) => format!(
            "exporter={id} data_type=metrics resource_metrics={} metrics={} data_points={}",
            r.resource_metrics.len(),
            r.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).map(|sm| sm.metrics.len()).sum::<usize>(),
            data_point_count(r)
        ),
        Batch::Logs(r) => format!(
            "exporter={id} data_type=logs resource_logs={} log_records={}",
            r.resource_logs.len(),
            log_record_count(r)
        ),
    }
}

/// The `normal` lines: one per span, data point or log record.
pub fn normal_lines(batch: &Batch) -> Vec<String> {
    let mut out = Vec::new();
    match batch {
        Batch::Traces(r) => {
            for span in r.resource_spans.iter().flat_map(|rs| &rs.scope_spans).flat_map(|ss| &ss.spans) {
                out.push(span_line(span));
            }
        }
        Batch::Metrics(r) => {
            for metric in r.resource_metrics.iter().flat_map(|rm| &rm.scope_metrics).flat_map(|sm| &sm.metrics) {
                out.extend(metric_lines(metric));
            }
        }
        Batch::Logs(r) => {
            for log in r.resource_logs.iter().flat_map(|rl| &rl.scope_logs).flat_map(|sl| &sl.log_records) {
                out.push(log_line(log));
            }
        }
    }
    out
}

fn span_line(span: &Span) -> String {
    let duration = Duration::from_nanos(span.end_time_unix_nano.saturating_sub(span.start_time_unix_nano));
    let mut line = format!(
        "span {:?} trace_id={} span_id={} parent_span_id={} duration={duration:?}",
        span.name,
        hex(&span.trace_id),
        hex(&span.span_id),
        hex(&span.parent_span_id)
    );
    push_attributes(&mut line, &span.attributes);
    line
}

fn metric_lines(metric: &Metric) -> Vec<String> {
    let mut out = Vec::with_capacity(metric_point_count(metric.data.as_ref()));
    let mut push = |value: String, attrs: &[KeyValue]| {
        let mut line = format!("metric {:?} {value}", metric.name);
        push_attributes(&mut line, attrs);
        out.push(line);
    };
    match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.iter().for_each(|p| push(number(&p.value), &p.attributes)),
        Some(Data::Sum(s)) => s.data_points.iter().for_each(|p| push(number(&p.value), &p.attributes)),
        Some(Data::Histogram(h)) => {
            h.data_points.iter().for_each(|p| push(format!("count={} sum={}", p.count, opt_f64(p.sum)), &p.attributes))
        }
        Some(Data::ExponentialHistogram(h)) => h
            .data_points
            .iter()
            .for_each(|p| push(format!("count={} sum={} scale={}", p.count, opt_f64(p.sum), p.scale), &p.attributes)),
        Some(Data::Summary(s)) => {
            s.data_points.iter().for_each(|p| push(format!("count={} sum={}", p.count, p.sum), &p.attributes))
        }
        None => {}
    }
    out
}

fn log_line(log: &LogRecord) -> String {
    let severity = if log.severity_text.is_empty() { severity_name(log.severity_number) } else { &log.severity_text };
    let mut line = format!("log severity={severity} body={}", log.body.as_ref().map_or(String::new(), any_value));
    if !log.trace_id.is_empty() {
        let _ = write!(line, " trace_id={} span_id={}", hex(&log.trace_id), hex(&log.span_id));
    }
    push_attributes(&mut line, &log.attributes);
    line
}

/// The `detailed` text: every field of every item, one per line, nested by indentation.
pub fn detailed(batch: &Batch) -> String {
    let mut s = String::new();
    match batch {
        Batch::Traces(r) => {
            for (i, rs) in r.resource_spans.iter().enumerate() {
                let _ = writeln!(s, "ResourceSpans #{i}");
                resource(&mut s, rs.resource.as_ref(), &rs.schema_url);
                for (j, ss) in rs.scope_spans.iter().enumerate() {
                    let _ = writeln!(s, "ScopeSpans #{j}");
                    scope(&mut s, ss.scope.as_ref(), &ss.schema_url);
                    for (k, span) in ss.spans.iter().enumerate() {
                        let _ = writeln!(s, "Span #{k}");
                        detailed_span(&mut s, span);
                    }
                }
            }
        }
        Batch::Metrics(r) => {
            for (i, rm) in r.resource_metrics.iter().enumerate() {
                let _ = writeln!(s, "ResourceMetrics #{i}");
                resource(&mut s, rm.resource.as_ref(), &rm.schema_url);
                for (j, sm) in rm.scope_metrics.iter().enumerate() {
                    let _ = writeln!(s, "ScopeMetrics #{j}");
                    scope(&mut s, sm.scope.as_ref(), &sm.schema_url);
                    for (k, metric) in sm.metrics.iter().enumerate() {
                        let _ = writeln!(s, "Metric #{k}");
                        detailed_metric(&mut s, metric);
                    }
                }
            }
        }
        Batch::Logs(r) => {
            for (i, rl) in r.resource_logs.iter().enumerate() {
                let _ = writeln!(s, "ResourceLog #{i}");
                resource(&mut s, rl.resource.as_ref(), &rl.schema_url);
                for (j, sl) in rl.scope_logs.iter().enumerate() {
                    let _ = writeln!(s, "ScopeLogs #{j}");
                    scope(&mut s, sl.scope.as_ref(), &sl.schema_url);
                    for (k, log) in sl.log_records.iter().enumerate() {
                        let _ = writeln!(s, "LogRecord #{k}");
                        detailed_log(&mut s, log);
                    }
                }
            }
        }
    }
    s
}

fn resource(s: &mut String, r: Option<&Resource>, schema_url: &str) {
    let _ = writeln!(s, "Resource SchemaURL: {schema_url}");
    if let Some(r) = r {
        attributes_block(s, "Resource attributes", &r.attributes, "");
    }
}

fn scope(s: &mut String, scope: Option<&InstrumentationScope>, schema_url: &str) {
    let _ = writeln!(s, "ScopeSpans SchemaURL: {schema_url}");
    if let Some(sc) = scope {
        let _ = writeln!(s, "InstrumentationScope {} {}", sc.name, sc.version);
        attributes_block(s, "InstrumentationScope attributes", &sc.attributes, "");
    }
}

fn attributes_block(s: &mut String, title: &str, attrs: &[KeyValue], indent: &str) {
    if attrs.is_empty() {
        return;
    }
    let _ = writeln!(s, "{indent}{title}:");
    for kv in attrs {
        let _ = writeln!(s, "{indent}     -> {}: {}", kv.key, kv.value.as_ref().map_or("Empty()".into(), typed_value));
    }
}

fn detailed_span(s: &mut String, span: &Span) {
    let _ = writeln!(s, "    Trace ID       : {}", hex(&span.trace_id));
    let _ = writeln!(s, "    Parent ID      : {}", hex(&span.parent_span_id));
    let _ = writeln!(s, "    ID             : {}", hex(&span.span_id));
    let _ = writeln!(s, "    Name           : {}", span.name);
    let _ = writeln!(s, "    Kind           : {}", span_kind(span.kind));
    let _ = writeln!(s, "    TraceState     : {}", span.trace_state);
    let _ = writeln!(s, "    Flags          : {}", span.flags);
    let _ = writeln!(s, "    Start time     : {}", span.start_time_unix_nano);
    let _ = writeln!(s, "    End time       : {}", span.end_time_unix_nano);
    let (code, message) = span.status.as_ref().map_or((0, ""), |st| (st.code, st.message.as_str()));
    let _ = writeln!(s, "    Status code    : {}", status_code(code));
    let _ = writeln!(s, "    Status message : {message}");
    attributes_block(s, "Attributes", &span.attributes, "    ");
    if !span.events.is_empty() {
        let _ = writeln!(s, "    Events:");
        for (i, e) in span.events.iter().enumerate() {
            let _ = writeln!(s, "    SpanEvent #{i}");
            let _ = writeln!(s, "     -> Name: {}", e.name);
            let _ = writeln!(s, "     -> Timestamp: {}", e.time_unix_nano);
            let _ = writeln!(s, "     -> DroppedAttributesCount: {}", e.dropped_attributes_count);
            attributes_block(s, "     -> Attributes", &e.attributes, "    ");
        }
    }
    if !span.links.is_empty() {
        let _ = writeln!(s, "    Links:");
        for (i, l) in span.links.iter().enumerate() {
            let _ = writeln!(s, "    SpanLink #{i}");
            let _ = writeln!(s, "     -> Trace ID: {}", hex(&l.trace_id));
            let _ = writeln!(s, "     -> ID: {}", hex(&l.span_id));
            let _ = writeln!(s, "     -> TraceState: {}", l.trace_state);
            let _ = writeln!(s, "     -> DroppedAttributesCount: {}", l.dropped_attributes_count);
            attributes_block(s, "     -> Attributes", &l.attributes, "    ");
        }
    }
}

fn detailed_metric(s: &mut String, m: &Metric) {
    let _ = writeln!(s, "Descriptor:");
    let _ = writeln!(s, "     -> Name: {}", m.name);
    let _ = writeln!(s, "     -> Description: {}", m.description);
    let _ = writeln!(s, "     -> Unit: {}", m.unit);
    let kind = match &m.data {
        Some(Data::Gauge(_)) => "Gauge",
        Some(Data::Sum(_)) => "Sum",
        Some(Data::Histogram(_)) => "Histogram",
        Some(Data::ExponentialHistogram(_)) => "ExponentialHistogram",
        Some(Data::Summary(_)) => "Summary",
        None => "Empty",
    };
    let _ = writeln!(s, "     -> DataType: {kind}");
    attributes_block(s, "Metadata", &m.metadata, "");
    let point = |s: &mut String, i: usize, attrs: &[KeyValue], start: u64, time: u64| {
        let _ = writeln!(s, "DataPoint #{i}");
        attributes_block(s, "Data point attributes", attrs, "");
        let _ = writeln!(s, "StartTimestamp: {start}");
        let _ = writeln!(s, "Timestamp: {time}");
    };
    match &m.data {
        Some(Data::Gauge(g)) => {
            for (i, p) in g.data_points.iter().enumerate() {
                point(s, i, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                let _ = writeln!(s, "Value: {}", number(&p.value));
            }
        }
        Some(Data::Sum(sum)) => {
            let _ = writeln!(s, "     -> IsMonotonic: {}", sum.is_monotonic);
            let _ = writeln!(s, "     -> AggregationTemporality: {}", sum.aggregation_temporality);
            for (i, p) in sum.data_points.iter().enumerate() {
                point(s, i, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                let _ = writeln!(s, "Value: {}", number(&p.value));
            }
        }
        Some(Data::Histogram(h)) => {
            let _ = writeln!(s, "     -> AggregationTemporality: {}", h.aggregation_temporality);
            for (i, p) in h.data_points.iter().enumerate() {
                point(s, i, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                let _ = writeln!(s, "Count: {}", p.count);
                let _ = writeln!(s, "Sum: {}", opt_f64(p.sum));
                let _ = writeln!(s, "Min: {}", opt_f64(p.min));
                let _ = writeln!(s, "Max: {}", opt_f64(p.max));
                for (b, bound) in p.explicit_bounds.iter().enumerate() {
                    let _ = writeln!(s, "ExplicitBounds #{b}: {bound}");
                }
                for (b, count) in p.bucket_counts.iter().enumerate() {
                    let _ = writeln!(s, "Buckets #{b}, Count: {count}");
                }
            }
        }
        Some(Data::ExponentialHistogram(h)) => {
            let _ = writeln!(s, "     -> AggregationTemporality: {}", h.aggregation_temporality);
            for (i, p) in h.data_points.iter().enumerate() {
                point(s, i, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                let _ = writeln!(s, "Count: {}", p.count);
                let _ = writeln!(s, "Sum: {}", opt_f64(p.sum));
                let _ = writeln!(s, "Scale: {}", p.scale);
                let _ = writeln!(s, "ZeroCount: {}", p.zero_count);
                if let Some(pos) = &p.positive {
                    let _ = writeln!(s, "Positive offset {} counts {:?}", pos.offset, pos.bucket_counts);
                }
                if let Some(neg) = &p.negative {
                    let _ = writeln!(s, "Negative offset {} counts {:?}", neg.offset, neg.bucket_counts);
                }
            }
        }
        Some(Data::Summary(sm)) => {
            for (i, p) in sm.data_points.iter().enumerate() {
                point(s, i, &p.attributes, p.start_time_unix_nano, p.time_unix_nano);
                let _ = writeln!(s, "Count: {}", p.count);
                let _ = writeln!(s, "Sum: {}", p.sum);
                for (q, qv) in p.quantile_values.iter().enumerate() {
                    let _ = writeln!(s, "QuantileValue #{q}: Quantile {}, Value {}", qv.quantile, qv.value);
                }
            }
        }
        None => {}
    }
}

fn detailed_log(s: &mut String, log: &LogRecord) {
    let _ = writeln!(s, "ObservedTimestamp: {}", log.observed_time_unix_nano);
    let _ = writeln!(s, "Timestamp: {}", log.time_unix_nano);
    let _ = writeln!(s, "SeverityText: {}", log.severity_text);
    let _ = writeln!(s, "SeverityNumber: {}({})", severity_name(log.severity_number), log.severity_number);
    let _ = writeln!(s, "EventName: {}", log.event_name);
    let _ = writeln!(s, "Body: {}", log.body.as_ref().map_or("Empty()".into(), typed_value));
    attributes_block(s, "Attributes", &log.attributes, "");
    let _ = writeln!(s, "Trace ID: {}", hex(&log.trace_id));
    let _ = writeln!(s, "Span ID: {}", hex(&log.span_id));
    let _ = writeln!(s, "Flags: {}", log.flags);
}

fn push_attributes(line: &mut String, attrs: &[KeyValue]) {
    for kv in attrs {
        let _ = write!(line, " {}={}", kv.key, kv.value.as_ref().map_or(String::new(), any_value));
    }
}

/// A value as written in `normal` lines: strings quoted, containers inline.
pub fn any_value(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => format!("{s:?}"),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BytesValue(b)) => hex(b),
        Some(any_value::Value::ArrayValue(a)) => {
            format!("[{}]", a.values.iter().map(any_value).collect::<Vec<_>>().join(","))
        }
        Some(any_value::Value::KvlistValue(kv)) => format!(
            "{{{}}}",
            kv.values
                .iter()
                .map(|kv| format!("{}:{}", kv.key, kv.value.as_ref().map_or(String::new(), any_value)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        Some(any_value::Value::StringValueStrindex(i)) => format!("strindex({i})"),
        None => String::new(),
    }
}

/// A value as written in `detailed` output, with its type, as the Collector.
fn typed_value(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => format!("Str({s})"),
        Some(any_value::Value::BoolValue(b)) => format!("Bool({b})"),
        Some(any_value::Value::IntValue(i)) => format!("Int({i})"),
        Some(any_value::Value::DoubleValue(d)) => format!("Double({d})"),
        Some(any_value::Value::BytesValue(b)) => format!("Bytes({})", hex(b)),
        Some(any_value::Value::ArrayValue(_)) => format!("Slice({})", any_value(v)),
        Some(any_value::Value::KvlistValue(_)) => format!("Map({})", any_value(v)),
        Some(any_value::Value::StringValueStrindex(i)) => format!("StrIndex({i})"),
        None => "Empty()".to_string(),
    }
}

fn number(v: &Option<number_data_point::Value>) -> String {
    match v {
        Some(number_data_point::Value::AsDouble(d)) => format!("value={d}"),
        Some(number_data_point::Value::AsInt(i)) => format!("value={i}"),
        None => "value=".to_string(),
    }
}

fn opt_f64(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

fn span_kind(kind: i32) -> &'static str {
    match kind {
        1 => "Internal",
        2 => "Server",
        3 => "Client",
        4 => "Producer",
        5 => "Consumer",
        _ => "Unspecified",
    }
}

fn status_code(code: i32) -> &'static str {
    match code {
        1 => "Ok",
        2 => "Error",
        _ => "Unset",
    }
}

fn severity_name(n: i32) -> &'static str {
    match n {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

#[cfg(test)]
mod tests;
