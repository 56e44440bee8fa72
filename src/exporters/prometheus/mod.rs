//! The `prometheus` exporter: a `/metrics` page in the Prometheus text format
//! (0.0.4) that Prometheus scrapes, holding the latest value of each series.
//!
//! Guarantees: names and labels are those of `prometheusremotewrite`
//! ([`crate::exporters::prometheus_common`]); delta sums and histograms are
//! accumulated (bounded by `MAX_DELTA_SERIES`, counted when hit); a series not
//! updated for `metric_expiration` leaves the page; a point flagged "no
//! recorded value" removes its series at once; an older point never replaces
//! a newer one. The listener is bound when the exporter is built, so a busy
//! port is a start error.
//!
//! Bounds: points over the [`PointLimits`](crate::exporters::prometheus_common::PointLimits)
//! are dropped before translation makes their series; the page holds at most
//! `max_page_bytes` of series lines (`# HELP`/`# TYPE` lines included): the
//! new series of a metric that would pass it are refused together and
//! counted (`sluice_exporter_prometheus_refused_series_total{reason="page_full"}`),
//! while series already on the page keep being updated. Memory held is thus
//! bounded by the page bound (times the bookkeeping per line).

pub mod config;

use crate::config::component::{ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::data::Batch;
use crate::data::Signal;
use crate::exporters::prometheus_common::{
    count_dropped, escaped_len, line_bytes, stale_nan, DeltaOptions, Family, Labels, TranslateOptions, Translator,
};
use crate::exporters::runner::{self, Consumers, RunnerParts};
use crate::exporters::{ExportError, ExportOutcome, Exporter};
use crate::exporters::{ExporterFactory, ExporterSpec};
use crate::telemetry::PrometheusExporterMetrics;
use crate::telemetry::Registry;
use bytes::Bytes;
use config::PrometheusExporterConfig;
use http_body_util::Full;
use hyper::body::Incoming;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;

pub static FACTORY: ExporterFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Exporter,
        name: "prometheus",
        aliases: &[],
        signals: &[Signal::Metrics],
        description: "serves the latest value of each series on a /metrics page for Prometheus to scrape",
        example: "endpoint: 127.0.0.1:8889\n",
    },
    settings: SettingsType::of::<PrometheusExporterConfig>(),
    compile: |input| {
        let cfg: PrometheusExporterConfig = input.typed()?;
        input.check(|c| config::validate(c, &cfg)).then(|| std::sync::Arc::new(cfg) as _)
    },
};

impl ExporterSpec for PrometheusExporterConfig {
    fn destination(&self, _signal: Signal) -> String {
        format!("a scrape page at http://{}/metrics", self.endpoint)
    }

    fn start(&self, id: &str, _signal: Signal, registry: &Registry, parts: RunnerParts) -> Result<Consumers, String> {
        let m = crate::telemetry::PrometheusExporterMetrics::new(registry, id);
        Ok(runner::start(PrometheusExporter::new(self, id, m)?, parts))
    }
}

/// Delta series whose running totals the page keeps.
pub const MAX_DELTA_SERIES: usize = 100_000;
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

struct Stored {
    family: Arc<Family>,
    ts_ms: i64,
    value: f64,
    updated: Instant,
}

type FamilyLine<'a> = (&'a Labels, &'a Stored);
/// A series not yet on the page: family, labels, timestamp (ms), value.
type NewSeries = (Arc<Family>, Labels, i64, f64);

/// The latest sample of every series on the page.
pub struct MetricStore {
    series: HashMap<Labels, Stored>,
    expiration: Duration,
    send_timestamps: bool,
    /// Bytes of the page's lines at most (an upper bound of each line).
    max_page_bytes: usize,
    page_bytes: usize,
    /// Per family name: its series, the bytes of its `# HELP`/`# TYPE`
    /// lines, and the family those lines are written from (the one charged).
    families: HashMap<String, (usize, usize, Arc<Family>)>,
}

/// Bytes of a family's `# HELP` and `# TYPE` lines.
fn header_bytes(family: &Family) -> usize {
    let help = if family.help.is_empty() { family.name.len() } else { escaped_len(&family.help) };
    2 * family.name.len() + help + 30
}

impl MetricStore {
    pub fn new(expiration: Duration, send_timestamps: bool) -> Self {
        Self::bounded(expiration, send_timestamps, usize::MAX)
    }

    pub fn bounded(expiration: Duration, send_timestamps: bool, max_page_bytes: usize) -> Self {
        MetricStore {
            series: HashMap::new(),
            expiration,
            send_timestamps,
            max_page_bytes,
            page_bytes: 0,
            families: HashMap::new(),
        }
    }

    /// Bytes the page's lines take at most.
    pub fn page_bytes(&self) -> usize {
        self.page_bytes
    }

    fn forget(&mut self, labels: &Labels, family: &Family) {
        self.page_bytes = self.page_bytes.saturating_sub(line_bytes(labels));
        if let Some(f) = self.families.get_mut(&family.name) {
            f.0 = f.0.saturating_sub(1);
            if f.0 == 0 {
                self.page_bytes = self.page_bytes.saturating_sub(f.1);
                self.families.remove(&family.name);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Takes the latest sample of each series; returns the new series
    /// refused because the page would pass `max_page_bytes`. The new series
    /// of one family in one batch are taken or refused together, so a
    /// histogram point is never half on the page.
    pub fn update(&mut self, set: crate::exporters::prometheus_common::SeriesSet, now: Instant) -> u64 {
        let mut fresh: BTreeMap<String, Vec<NewSeries>> = BTreeMap::new();
        for (family, labels, samples) in set.into_family_series() {
            let Some(&(ts_ms, value)) = samples.last() else { continue };
            if value.to_bits() == stale_nan().to_bits() {
                if let Some(old) = self.series.remove(&labels) {
                    self.forget(&labels, &old.family);
                }
                continue;
            }
            match self.series.get_mut(&labels) {
                Some(s) if s.ts_ms > ts_ms => {}
                Some(s) if s.family.name == family.name => {
                    *s = Stored { family, ts_ms, value, updated: now };
                }
                Some(_) | None => {
                    if let Some(old) = self.series.remove(&labels) {
                        self.forget(&labels, &old.family);
                    }
                    fresh.entry(family.name.clone()).or_default().push((family, labels, ts_ms, value));
                }
            }
        }
        let mut refused = 0u64;
        for (name, group) in fresh {
            let (header, first) = match self.families.get(&name) {
                Some(_) => (0, None),
                None => (header_bytes(&group[0].0), Some(group[0].0.clone())),
            };
            let lines: usize = group.iter().map(|(_, l, _, _)| line_bytes(l)).sum();
            if self.page_bytes.saturating_add(header + lines) > self.max_page_bytes {
                refused += group.len() as u64;
                continue;
            }
            self.page_bytes += header + lines;
            if let Some(family) = first {
                self.families.insert(name.clone(), (0, header, family));
            }
            if let Some(f) = self.families.get_mut(&name) {
                f.0 += group.len();
            }
            for (family, labels, ts_ms, value) in group {
                self.series.insert(labels, Stored { family, ts_ms, value, updated: now });
            }
        }
        refused
    }

    fn expire(&mut self, now: Instant) {
        let exp = self.expiration;
        let old: Vec<Labels> =
            self.series.iter().filter(|(_, s)| now.duration_since(s.updated) >= exp).map(|(l, _)| l.clone()).collect();
        for labels in old {
            if let Some(s) = self.series.remove(&labels) {
                self.forget(&labels, &s.family);
            }
        }
    }

    /// The page: one `# HELP` and `# TYPE` per family, then its series.
    pub fn render(&mut self, now: Instant) -> String {
        self.expire(now);
        let mut families: BTreeMap<&str, (&Family, Vec<FamilyLine>)> = BTreeMap::new();
        for (labels, s) in &self.series {
            // The header is written from the family charged for it, so the page stays within its bound.
            let family = self.families.get(&s.family.name).map_or(&*s.family, |f| &*f.2);
            families.entry(s.family.name.as_str()).or_insert_with(|| (family, Vec::new())).1.push((labels, s));
        }
        let mut out = String::new();
        for (name, (family, mut series)) in families {
            series.sort_by(|a, b| a.0.cmp(b.0));
            let help = if family.help.is_empty() { name.to_string() } else { escape_help(&family.help) };
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {}", family.kind.as_str());
            for (labels, s) in series {
                let metric = labels.iter().find(|(k, _)| k == "__name__").map_or(name, |(_, v)| v.as_str());
                out.push_str(metric);
                let mut first = true;
                for (k, v) in labels.iter().filter(|(k, _)| k != "__name__") {
                    out.push(if first { '{' } else { ',' });
                    first = false;
                    let _ = write!(out, "{k}=\"{}\"", escape_value(v));
                }
                if !first {
                    out.push('}');
                }
                let _ = write!(out, " {}", format_value(s.value));
                if self.send_timestamps {
                    let _ = write!(out, " {}", s.ts_ms);
                }
                out.push('\n');
            }
        }
        out
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Display writes 1e300 with all its digits: keep a line's value within 24 bytes.
        let text = format!("{v}");
        if text.len() > 24 {
            format!("{v:e}")
        } else {
            text
        }
    }
}

pub struct PrometheusExporter {
    translator: Translator,
    store: Arc<Mutex<MetricStore>>,
    metrics: PrometheusExporterMetrics,
    server: Mutex<Option<JoinHandle<()>>>,
    addr: std::net::SocketAddr,
}

impl PrometheusExporter {
    /// Binds `endpoint` and starts serving `/metrics`; needs a tokio runtime.
    pub fn new(cfg: &PrometheusExporterConfig, id: &str, metrics: PrometheusExporterMetrics) -> Result<Self, String> {
        let listener = std::net::TcpListener::bind(&cfg.endpoint)
            .map_err(|e| format!("{id}: cannot listen on {}: {e}", cfg.endpoint))?;
        let addr = listener.local_addr().map_err(|e| format!("{id}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("{id}: {e}"))?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| format!("{id}: {e}"))?;
        let translator = Translator::new(TranslateOptions {
            add_metric_suffixes: cfg.add_metric_suffixes,
            namespace: cfg.namespace.clone(),
            resource_to_telemetry: cfg.resource_to_telemetry_conversion.on(),
            target_info: true,
            external_labels: cfg.const_labels.clone(),
            delta: Some(DeltaOptions { max_series: MAX_DELTA_SERIES, ttl: cfg.metric_expiration.get() }),
            limits: cfg.limits,
        });
        let store = Arc::new(Mutex::new(MetricStore::bounded(
            cfg.metric_expiration.get(),
            cfg.send_timestamps,
            cfg.max_page_bytes,
        )));
        let server = tokio::spawn(serve(listener, store.clone()));
        Ok(PrometheusExporter { translator, store, metrics, server: Mutex::new(Some(server)), addr })
    }

    /// Where the page is served (the bound port when the endpoint said `:0`).
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.addr
    }
}

/// The scrape page, within the bounds of the agent's page servers
/// (connections, header and connection timeouts: [`crate::telemetry::server::serve_pages`]).
async fn serve(listener: tokio::net::TcpListener, store: Arc<Mutex<MetricStore>>) {
    let page = move |req: http::Request<Incoming>| {
        let store = store.clone();
        async move {
            let resp = if req.uri().path() == "/metrics" {
                let page = store.lock().unwrap_or_else(|p| p.into_inner()).render(Instant::now());
                http::Response::builder()
                    .header(http::header::CONTENT_TYPE, CONTENT_TYPE)
                    .body(Full::new(Bytes::from(page)))
            } else {
                http::Response::builder().status(404).body(Full::new(Bytes::from_static(b"try /metrics\n")))
            };
            resp.unwrap_or_default()
        }
    };
    crate::telemetry::server::serve_pages(listener, page, None).await;
}

impl Exporter for PrometheusExporter {
    async fn export(&self, batch: &Batch) -> Result<ExportOutcome, ExportError> {
        let Batch::Metrics(req) = batch else {
            return Err(ExportError::Permanent { message: "the prometheus exporter takes metrics only".into() });
        };
        let now = Instant::now();
        let (set, dropped) = self.translator.translate(req, now);
        count_dropped(&self.metrics, &dropped);
        self.metrics.delta_series.set(self.translator.delta_series() as i64);
        let (refused, page_bytes) = {
            let mut store = self.store.lock().unwrap_or_else(|p| p.into_inner());
            let refused = store.update(set, now);
            (refused, store.page_bytes())
        };
        self.metrics.refused_series_page_full.add(refused);
        self.metrics.page_bytes.set(page_bytes as i64);
        let mut message = (dropped.total() > 0)
            .then(|| format!("{} data points not translatable ({})", dropped.total(), dropped.describe()));
        if refused > 0 {
            let m = message.get_or_insert_with(String::new);
            if !m.is_empty() {
                m.push_str("; ");
            }
            m.push_str(&format!("{refused} new series refused: the page holds max_page_bytes"));
        }
        Ok(ExportOutcome { rejected: dropped.total(), message })
    }

    async fn shutdown(&self) {
        if let Some(task) = self.server.lock().unwrap_or_else(|p| p.into_inner()).take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests;
