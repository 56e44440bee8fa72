//! The agent's own metrics: a registry of counters, gauges and histograms
//! rendered in the Prometheus text format.
//!
//! Handles are created once, when a component is built, and are plain atomics
//! afterwards: recording a value on the hot path takes no lock and no lookup.
//! The registry's lock is only taken to register a series and to render.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// A monotonically increasing count.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.add(1);
    }
    pub fn add(&self, n: u64) {
        if n > 0 {
            self.0.fetch_add(n, Ordering::Relaxed);
        }
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicI64>);

impl Gauge {
    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn add(&self, v: i64) {
        self.0.fetch_add(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug)]
struct HistogramCells {
    bounds: Vec<f64>,
    /// One cell per bound plus the +Inf cell; not cumulative.
    buckets: Vec<AtomicU64>,
    count: AtomicU64,
    /// Sum in nanounits (value * 1e9) so it can be an integer atomic.
    sum_nanos: AtomicU64,
}

/// A distribution of observed values with fixed bucket bounds.
#[derive(Clone, Debug)]
pub struct Histogram(Arc<HistogramCells>);

impl Histogram {
    fn new(bounds: &[f64]) -> Self {
        Histogram(Arc::new(HistogramCells {
            bounds: bounds.to_vec(),
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_nanos: AtomicU64::new(0),
        }))
    }

    pub fn observe(&self, v: f64) {
        let cells = &*self.0;
        let idx = cells.bounds.iter().position(|b| v <= *b).unwrap_or(cells.bounds.len());
        cells.buckets[idx].fetch_add(1, Ordering::Relaxed);
        cells.count.fetch_add(1, Ordering::Relaxed);
        cells.sum_nanos.fetch_add((v.max(0.0) * 1e9) as u64, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.0.count.load(Ordering::Relaxed)
    }
}

/// Bucket bounds, in seconds, for request and export latencies.
pub const LATENCY_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

#[derive(Clone)]
enum Cell {
    Counter(Counter),
    Gauge(Gauge),
    /// A gauge whose value is read when rendering (queue lengths, RSS).
    GaugeFn(Arc<dyn Fn() -> f64 + Send + Sync>),
    CounterFn(Arc<dyn Fn() -> f64 + Send + Sync>),
    Histogram(Histogram),
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    series: Vec<(Vec<(&'static str, String)>, Cell)>,
}

/// Every series the agent reports about itself.
#[derive(Default, Clone)]
pub struct Registry {
    families: Arc<Mutex<Vec<Family>>>,
    /// Labels every series carries (the agent's identity), set once at start.
    const_labels: Arc<std::sync::OnceLock<Vec<(&'static str, String)>>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Registry")
    }
}

pub type Labels<'a> = &'a [(&'static str, &'a str)];

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Labels added to every series of the page, as the Collector's own
    /// telemetry carries `service_name`, `service_instance_id` and
    /// `service_version`. Only the first call counts.
    pub fn set_const_labels(&self, labels: Vec<(&'static str, String)>) {
        let _ = self.const_labels.set(labels);
    }

    fn register(
        &self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
        labels: Labels,
        make: impl FnOnce() -> Cell,
    ) -> Cell {
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let idx = match families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                families.push(Family { name, help, kind, series: Vec::new() });
                families.len() - 1
            }
        };
        let family = &mut families[idx];
        debug_assert_eq!(family.kind, kind, "metric {name} registered with two types");
        let owned: Vec<(&'static str, String)> = labels.iter().map(|(k, v)| (*k, v.to_string())).collect();
        if let Some((_, cell)) = family.series.iter().find(|(l, _)| *l == owned) {
            return cell.clone();
        }
        let cell = make();
        family.series.push((owned, cell.clone()));
        cell
    }

    /// The counter with this name and labels; registering twice returns the same one.
    pub fn counter(&self, name: &'static str, help: &'static str, labels: Labels) -> Counter {
        match self.register(name, help, "counter", labels, || Cell::Counter(Counter::default())) {
            Cell::Counter(c) => c,
            _ => Counter::default(),
        }
    }

    pub fn gauge(&self, name: &'static str, help: &'static str, labels: Labels) -> Gauge {
        match self.register(name, help, "gauge", labels, || Cell::Gauge(Gauge::default())) {
            Cell::Gauge(g) => g,
            _ => Gauge::default(),
        }
    }

    /// A gauge whose value is computed by `f` at each scrape. Registering the
    /// same series again replaces the function: a component rebuilt by a
    /// config reload reports its new state, not the one it replaced.
    pub fn gauge_fn(
        &self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        f: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        let f: Arc<dyn Fn() -> f64 + Send + Sync> = Arc::new(f);
        self.register(name, help, "gauge", labels, || Cell::GaugeFn(f.clone()));
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(family) = families.iter_mut().find(|fam| fam.name == name) {
            for (l, cell) in family.series.iter_mut() {
                if same_labels(l, labels) {
                    *cell = Cell::GaugeFn(f.clone());
                }
            }
        }
    }

    /// Forgets a series, so a component removed by a config reload no longer
    /// reports (gauges of its queue would otherwise keep it alive).
    pub fn remove(&self, name: &str, labels: Labels) {
        let mut families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(family) = families.iter_mut().find(|f| f.name == name) {
            family.series.retain(|(l, _)| !same_labels(l, labels));
        }
    }

    /// A counter whose value is computed by `f` at each scrape (CPU seconds).
    pub fn counter_fn(
        &self,
        name: &'static str,
        help: &'static str,
        labels: Labels,
        f: impl Fn() -> f64 + Send + Sync + 'static,
    ) {
        self.register(name, help, "counter", labels, || Cell::CounterFn(Arc::new(f)));
    }

    pub fn histogram(&self, name: &'static str, help: &'static str, labels: Labels, bounds: &[f64]) -> Histogram {
        match self.register(name, help, "histogram", labels, || Cell::Histogram(Histogram::new(bounds))) {
            Cell::Histogram(h) => h,
            _ => Histogram::new(bounds),
        }
    }

    /// The current value of a counter or gauge series, for tests and health checks.
    pub fn value(&self, name: &str, labels: Labels) -> Option<f64> {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let family = families.iter().find(|f| f.name == name)?;
        let (_, cell) = family.series.iter().find(|(l, _)| same_labels(l, labels))?;
        Some(match cell {
            Cell::Counter(c) => c.get() as f64,
            Cell::Gauge(g) => g.get() as f64,
            Cell::GaugeFn(f) | Cell::CounterFn(f) => f(),
            Cell::Histogram(h) => h.count() as f64,
        })
    }

    /// The sum of every series of a counter or gauge family (0 when it has none).
    pub fn sum(&self, name: &str) -> f64 {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let Some(family) = families.iter().find(|f| f.name == name) else { return 0.0 };
        family
            .series
            .iter()
            .map(|(_, cell)| match cell {
                Cell::Counter(c) => c.get() as f64,
                Cell::Gauge(g) => g.get() as f64,
                Cell::GaugeFn(f) | Cell::CounterFn(f) => f(),
                Cell::Histogram(h) => h.count() as f64,
            })
            .sum()
    }

    /// The Prometheus text exposition (format 0.0.4) of every series.
    pub fn render(&self) -> String {
        let families = self.families.lock().unwrap_or_else(|e| e.into_inner());
        let constant: &[(&'static str, String)] = self.const_labels.get().map_or(&[], Vec::as_slice);
        let mut out = String::with_capacity(8192);
        let mut with_const = Vec::new();
        for family in families.iter() {
            if family.series.is_empty() {
                continue;
            }
            let _ = writeln!(out, "# HELP {} {}", family.name, escape_help(family.help));
            let _ = writeln!(out, "# TYPE {} {}", family.name, family.kind);
            for (own, cell) in &family.series {
                let labels: &[(&'static str, String)] = if constant.is_empty() {
                    own
                } else {
                    with_const.clear();
                    with_const.extend(own.iter().cloned());
                    with_const.extend(constant.iter().filter(|(k, _)| !own.iter().any(|(ok, _)| ok == k)).cloned());
                    &with_const
                };
                match cell {
                    Cell::Counter(c) => write_sample(&mut out, family.name, "", labels, None, c.get() as f64),
                    Cell::Gauge(g) => write_sample(&mut out, family.name, "", labels, None, g.get() as f64),
                    Cell::GaugeFn(f) | Cell::CounterFn(f) => write_sample(&mut out, family.name, "", labels, None, f()),
                    Cell::Histogram(h) => {
                        let cells = &*h.0;
                        let mut cumulative = 0u64;
                        for (i, bound) in cells.bounds.iter().enumerate() {
                            cumulative += cells.buckets[i].load(Ordering::Relaxed);
                            write_sample(
                                &mut out,
                                family.name,
                                "_bucket",
                                labels,
                                Some(&format_float(*bound)),
                                cumulative as f64,
                            );
                        }
                        cumulative += cells.buckets[cells.bounds.len()].load(Ordering::Relaxed);
                        write_sample(&mut out, family.name, "_bucket", labels, Some("+Inf"), cumulative as f64);
                        let sum = cells.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
                        write_sample(&mut out, family.name, "_sum", labels, None, sum);
                        write_sample(&mut out, family.name, "_count", labels, None, cumulative as f64);
                    }
                }
            }
        }
        out
    }
}

/// Whether a stored series has exactly these labels, in any order.
fn same_labels(stored: &[(&'static str, String)], labels: Labels) -> bool {
    stored.len() == labels.len() && labels.iter().all(|(k, v)| stored.iter().any(|(sk, sv)| sk == k && sv == v))
}

fn write_sample(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(&'static str, String)],
    le: Option<&str>,
    value: f64,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        for (k, v) in labels {
            if !first {
                out.push(',');
            }
            first = false;
            let _ = write!(out, "{k}=\"{}\"", escape_label(v));
        }
        if let Some(le) = le {
            if !first {
                out.push(',');
            }
            let _ = write!(out, "le=\"{le}\"");
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(&format_float(value));
    out.push('\n');
}

fn format_float(v: f64) -> String {
    if v.is_infinite() {
        if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else if v.is_nan() {
        "NaN".into()
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_carries_the_constant_labels() {
        let reg = Registry::new();
        reg.counter("x_total", "Things.", &[("receiver", "otlp")]).inc();
        reg.gauge("up", "Up.", &[]).set(1);
        reg.set_const_labels(vec![("service_name", "sluice".into()), ("service_version", "1.2.3".into())]);
        let text = reg.render();
        assert!(
            text.contains("x_total{receiver=\"otlp\",service_name=\"sluice\",service_version=\"1.2.3\"} 1"),
            "{text}"
        );
        assert!(text.contains("up{service_name=\"sluice\",service_version=\"1.2.3\"} 1"), "{text}");
    }

    #[test]
    fn renders_counters_gauges_and_histograms() {
        let reg = Registry::new();
        let c = reg.counter("x_total", "Things.", &[("receiver", "otlp"), ("transport", "grpc")]);
        c.add(3);
        reg.counter("x_total", "Things.", &[("receiver", "otlp"), ("transport", "grpc")]).inc();
        reg.gauge("q", "Queue.", &[]).set(7);
        let h = reg.histogram("lat_seconds", "Latency.", &[("exporter", "otlp")], &[0.1, 1.0]);
        h.observe(0.05);
        h.observe(0.5);
        h.observe(5.0);
        let text = reg.render();
        assert!(text.contains("# TYPE x_total counter\nx_total{receiver=\"otlp\",transport=\"grpc\"} 4\n"), "{text}");
        assert!(text.contains("q 7\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{exporter=\"otlp\",le=\"0.1\"} 1\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{exporter=\"otlp\",le=\"1\"} 2\n"), "{text}");
        assert!(text.contains("lat_seconds_bucket{exporter=\"otlp\",le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("lat_seconds_count{exporter=\"otlp\"} 3\n"), "{text}");
        assert_eq!(reg.value("x_total", &[("transport", "grpc"), ("receiver", "otlp")]), Some(4.0));
    }

    #[test]
    fn label_values_are_escaped() {
        let reg = Registry::new();
        reg.counter("y_total", "Y.", &[("exporter", "a\"b\\c")]).inc();
        assert!(reg.render().contains("y_total{exporter=\"a\\\"b\\\\c\"} 1"));
    }

    #[test]
    fn a_gauge_function_registered_again_replaces_the_old_one_and_remove_forgets_it() {
        let reg = Registry::new();
        reg.gauge_fn("q", "Q.", &[("exporter", "otlp")], || 1.0);
        reg.gauge_fn("q", "Q.", &[("exporter", "otlp")], || 2.0);
        assert_eq!(reg.value("q", &[("exporter", "otlp")]), Some(2.0));
        assert_eq!(reg.render().matches("q{").count(), 1, "one series, not two");
        reg.remove("q", &[("exporter", "otlp")]);
        assert_eq!(reg.value("q", &[("exporter", "otlp")]), None);
        assert!(!reg.render().contains("q{"));
    }
}
