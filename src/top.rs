//! `sluice top`: a terminal view of a running agent, read from its
//! `/metrics` page, like `vector top`. One row per component with items in
//! and out per second, refusals, drops and failures per second, and queue
//! fill; one row per pipeline with its input channel's fill.
//!
//! Guarantees: it only reads the page (any sluice, local or remote); a
//! counter that went backwards (the agent restarted) counts from zero; a
//! page that cannot be fetched shows the error and is tried again at the
//! next refresh; the page read is bounded (16 MiB, 5 s).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// Most bytes of a `/metrics` page read.
const MAX_PAGE_BYTES: u64 = 16 << 20;

/// One series of a Prometheus text page, the service labels left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parses the Prometheus text format (0.0.4): comments skipped, labels
/// unescaped; a line that does not parse is skipped.
pub fn parse(text: &str) -> Vec<Series> {
    text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Series> {
    let (name, rest) = match line.find('{') {
        Some(i) => (&line[..i], &line[i..]),
        None => line.split_once(' ')?,
    };
    let mut labels = BTreeMap::new();
    let rest = if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = None;
        loop {
            // key
            while chars.peek().is_some_and(|(_, c)| *c == ',' || *c == ' ') {
                chars.next();
            }
            match chars.peek() {
                Some((i, '}')) => {
                    end = Some(*i);
                    break;
                }
                None => break,
                _ => {}
            }
            let mut key = String::new();
            for (_, c) in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            if chars.next().map(|(_, c)| c) != Some('"') {
                return None;
            }
            let mut value = String::new();
            let mut escaped = false;
            for (_, c) in chars.by_ref() {
                match (escaped, c) {
                    (false, '\\') => escaped = true,
                    (false, '"') => break,
                    (true, 'n') => {
                        value.push('\n');
                        escaped = false;
                    }
                    (_, c) => {
                        value.push(c);
                        escaped = false;
                    }
                }
            }
            labels.insert(key.trim().to_string(), value);
        }
        &body[end? + 1..]
    } else {
        rest
    };
    let value_text = rest.split_whitespace().next()?;
    let value = match value_text {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    for service_label in ["service_name", "service_instance_id", "service_version"] {
        labels.remove(service_label);
    }
    Some(Series { name: name.to_string(), labels, value })
}

/// A page read at one time.
#[derive(Debug, Clone)]
pub struct Sample {
    pub at: Instant,
    pub series: Vec<Series>,
}

impl Sample {
    /// Sum of the series named `name` (any of `names`) whose label `label`
    /// is `value`.
    fn sum(&self, names: &[&str], label: &str, value: &str) -> Option<f64> {
        let mut found = false;
        let mut total = 0.0;
        for s in &self.series {
            if names.contains(&s.name.as_str()) && s.labels.get(label).map(String::as_str) == Some(value) {
                found = true;
                total += s.value;
            }
        }
        found.then_some(total)
    }

    /// Whether a series named `name` whose label `label` is `value` has
    /// label `unit_label` set to `bytes`.
    fn in_bytes(&self, name: &str, label: &str, value: &str, unit_label: &str) -> bool {
        self.series.iter().any(|s| {
            s.name == name
                && s.labels.get(label).map(String::as_str) == Some(value)
                && s.labels.get(unit_label).map(String::as_str) == Some("bytes")
        })
    }

    fn one(&self, name: &str) -> Option<f64> {
        self.series.iter().find(|s| s.name == name).map(|s| s.value)
    }

    /// The values of `label` on series named with `prefix`.
    fn ids(&self, prefix: &str, label: &str) -> BTreeSet<String> {
        self.series.iter().filter(|s| s.name.starts_with(prefix)).filter_map(|s| s.labels.get(label).cloned()).collect()
    }
}

/// Where each component is used, from the agent's config: (kind, id) →
/// pipelines.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub pipelines: BTreeMap<(Kind, String), Vec<String>>,
    pub pipeline_ids: Vec<String>,
}

impl Layout {
    /// Records that pipeline `pipeline` uses `ids` of `kind`.
    pub fn add(&mut self, pipeline: &str, kind: Kind, ids: &[String]) {
        if !self.pipeline_ids.iter().any(|p| p == pipeline) {
            self.pipeline_ids.push(pipeline.to_string());
        }
        for id in ids {
            let used_in = self.pipelines.entry((kind, id.clone())).or_default();
            if !used_in.iter().any(|p| p == pipeline) {
                used_in.push(pipeline.to_string());
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Receiver,
    Processor,
    Exporter,
    Connector,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Receiver => "receiver",
            Kind::Processor => "processor",
            Kind::Exporter => "exporter",
            Kind::Connector => "connector",
        }
    }

    /// The label naming a component of this kind in self-metrics.
    fn label(self) -> &'static str {
        self.word()
    }
}

const RECEIVER_ACCEPTED: &[&str] = &[
    "otelcol_receiver_accepted_spans_total",
    "otelcol_receiver_accepted_metric_points_total",
    "otelcol_receiver_accepted_log_records_total",
];
const RECEIVER_REFUSED: &[&str] = &[
    "otelcol_receiver_refused_spans_total",
    "otelcol_receiver_refused_metric_points_total",
    "otelcol_receiver_refused_log_records_total",
];
const PROCESSOR_IN: &[&str] = &["otelcol_processor_incoming_items_total"];
const PROCESSOR_OUT: &[&str] = &["otelcol_processor_outgoing_items_total"];
const PROCESSOR_REFUSED: &[&str] = &[
    "otelcol_processor_refused_spans_total",
    "otelcol_processor_refused_metric_points_total",
    "otelcol_processor_refused_log_records_total",
];
const PROCESSOR_DROPPED: &[&str] = &[
    "otelcol_processor_dropped_spans_total",
    "otelcol_processor_dropped_metric_points_total",
    "otelcol_processor_dropped_log_records_total",
];
const EXPORTER_SENT: &[&str] = &[
    "otelcol_exporter_sent_spans_total",
    "otelcol_exporter_sent_metric_points_total",
    "otelcol_exporter_sent_log_records_total",
];
const EXPORTER_FAILED: &[&str] = &[
    "otelcol_exporter_send_failed_spans_total",
    "otelcol_exporter_send_failed_metric_points_total",
    "otelcol_exporter_send_failed_log_records_total",
    "otelcol_exporter_enqueue_failed_spans_total",
    "otelcol_exporter_enqueue_failed_metric_points_total",
    "otelcol_exporter_enqueue_failed_log_records_total",
];

/// One row of the view.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub kind: &'static str,
    pub id: String,
    pub pipelines: String,
    pub in_rate: Option<f64>,
    pub out_rate: Option<f64>,
    pub refused_rate: Option<f64>,
    pub dropped_rate: Option<f64>,
    pub queue: Option<Queue>,
}

/// What waits in a queue and its capacity, counted in batches (requests,
/// items) or in bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Queue {
    pub size: f64,
    pub capacity: f64,
    pub in_bytes: bool,
}

impl Queue {
    fn new(size: Option<f64>, capacity: Option<f64>, in_bytes: bool) -> Option<Queue> {
        Some(Queue { size: size?, capacity: capacity?, in_bytes })
    }

    /// `3/1024 (0%)`, or `12.5MiB/64.0MiB (20%)` for a queue bounded in bytes.
    fn cell(&self) -> String {
        let amount = |v: f64| if self.in_bytes { human_bytes(v) } else { format!("{v:.0}") };
        if self.capacity > 0.0 {
            format!("{}/{} ({:.0}%)", amount(self.size), amount(self.capacity), self.size / self.capacity * 100.0)
        } else {
            amount(self.size)
        }
    }
}

/// Bytes as a person reads them: `512B`, `12.0KiB`, `64.0MiB`, `1.50GiB`.
pub fn human_bytes(v: f64) -> String {
    const KIB: f64 = 1024.0;
    if v < KIB {
        format!("{v:.0}B")
    } else if v < KIB * KIB {
        format!("{:.1}KiB", v / KIB)
    } else if v < KIB * KIB * KIB {
        format!("{:.1}MiB", v / (KIB * KIB))
    } else {
        format!("{:.2}GiB", v / (KIB * KIB * KIB))
    }
}

fn rate(prev: &Sample, cur: &Sample, names: &[&str], label: &str, id: &str) -> Option<f64> {
    let now = cur.sum(names, label, id)?;
    let before = prev.sum(names, label, id).unwrap_or(0.0);
    let secs = cur.at.saturating_duration_since(prev.at).as_secs_f64();
    if secs <= 0.0 {
        return Some(0.0);
    }
    // A counter that went backwards: the agent restarted; count from zero.
    let delta = if now >= before { now - before } else { now };
    Some(delta / secs)
}

/// The rows for two samples of the page: every component of the layout and
/// every one the page names, then the pipelines.
pub fn rows(layout: &Layout, prev: &Sample, cur: &Sample) -> Vec<Row> {
    let mut ids: BTreeSet<(Kind, String)> = layout.pipelines.keys().cloned().collect();
    for (kind, prefix) in [
        (Kind::Receiver, "otelcol_receiver_"),
        (Kind::Processor, "otelcol_processor_"),
        (Kind::Exporter, "otelcol_exporter_"),
        (Kind::Connector, "otelcol_connector_"),
    ] {
        ids.extend(cur.ids(prefix, kind.label()).into_iter().map(|id| (kind, id)));
    }
    let mut out = Vec::new();
    for (kind, id) in ids {
        let pipelines = layout.pipelines.get(&(kind, id.clone())).map(|p| p.join(",")).unwrap_or_else(|| "-".into());
        let label = kind.label();
        let r = |names: &[&str]| rate(prev, cur, names, label, &id);
        let row = match kind {
            Kind::Receiver => Row {
                kind: kind.word(),
                id: id.clone(),
                pipelines,
                in_rate: r(RECEIVER_ACCEPTED),
                out_rate: None,
                refused_rate: r(RECEIVER_REFUSED),
                dropped_rate: None,
                queue: None,
            },
            Kind::Processor => Row {
                kind: kind.word(),
                id: id.clone(),
                pipelines,
                in_rate: r(PROCESSOR_IN),
                out_rate: r(PROCESSOR_OUT),
                refused_rate: r(PROCESSOR_REFUSED),
                dropped_rate: r(PROCESSOR_DROPPED),
                queue: None,
            },
            Kind::Connector => Row {
                kind: kind.word(),
                id: id.clone(),
                pipelines,
                in_rate: r(&["otelcol_connector_incoming_items_total"]),
                out_rate: r(&["otelcol_connector_outgoing_items_total"]),
                refused_rate: None,
                dropped_rate: r(&["otelcol_connector_dropped_items_total"]),
                queue: None,
            },
            Kind::Exporter => {
                let size = cur.sum(&["otelcol_exporter_queue_size"], label, &id);
                let capacity = cur.sum(&["otelcol_exporter_queue_capacity"], label, &id);
                let in_bytes = cur.in_bytes("sluice_exporter_queue_sizer", label, &id, "sizer");
                Row {
                    kind: kind.word(),
                    id: id.clone(),
                    pipelines,
                    in_rate: None,
                    out_rate: r(EXPORTER_SENT),
                    refused_rate: None,
                    dropped_rate: r(EXPORTER_FAILED),
                    queue: Queue::new(size, capacity, in_bytes),
                }
            }
        };
        out.push(row);
    }
    let mut pipelines: BTreeSet<String> = layout.pipeline_ids.iter().cloned().collect();
    pipelines.extend(cur.ids("sluice_pipeline_queue_", "pipeline"));
    for p in pipelines {
        let size = cur.sum(&["sluice_pipeline_queue_size"], "pipeline", &p);
        let capacity = cur.sum(&["sluice_pipeline_queue_capacity"], "pipeline", &p);
        let in_bytes = cur.in_bytes("sluice_pipeline_queue_capacity", "pipeline", &p, "unit");
        out.push(Row {
            kind: "pipeline",
            id: p.clone(),
            pipelines: p,
            in_rate: None,
            out_rate: None,
            refused_rate: None,
            dropped_rate: None,
            queue: Queue::new(size, capacity, in_bytes),
        });
    }
    out
}

/// A rate as a person reads it: `0`, `950`, `12.3k`, `1.45M`.
pub fn human(v: f64) -> String {
    if v < 0.5 {
        "0".to_string()
    } else if v < 1_000.0 {
        format!("{v:.0}")
    } else if v < 1_000_000.0 {
        format!("{:.1}k", v / 1_000.0)
    } else {
        format!("{:.2}M", v / 1_000_000.0)
    }
}

fn cell(v: Option<f64>) -> String {
    v.map(human).unwrap_or_else(|| "-".to_string())
}

/// One screen: a header with the process's state, then the table.
pub fn frame(url: &str, layout: &Layout, prev: &Sample, cur: &Sample) -> String {
    let mut out = String::new();
    let uptime = cur.one("otelcol_process_uptime_seconds_total").unwrap_or(0.0);
    let rss = cur.one("otelcol_process_memory_rss_bytes").unwrap_or(0.0);
    let cpu = match (prev.one("otelcol_process_cpu_seconds_total"), cur.one("otelcol_process_cpu_seconds_total")) {
        (Some(a), Some(b)) => {
            let secs = cur.at.saturating_duration_since(prev.at).as_secs_f64();
            if secs > 0.0 && b >= a {
                format!("{:.0}%", (b - a) / secs * 100.0)
            } else {
                "-".to_string()
            }
        }
        _ => "-".to_string(),
    };
    let limiter = match cur.one("sluice_memory_limiter_refusing") {
        Some(v) if v > 0.0 => "REFUSING",
        Some(_) => "ok",
        None => "-",
    };
    out.push_str(&format!(
        "sluice top  {url}  up {}  rss {:.0} MiB  cpu {cpu}  memory limiter {limiter}\n\n",
        crate::config::Duration::from_secs(uptime as u64),
        rss / (1 << 20) as f64
    ));
    let rows = rows(layout, prev, cur);
    let headers = ["KIND", "ID", "PIPELINES", "IN/s", "OUT/s", "REFUSED/s", "DROPPED/s", "QUEUE"];
    let table: Vec<[String; 8]> = rows
        .iter()
        .map(|r| {
            let queue = r.queue.map_or_else(|| "-".to_string(), |q| q.cell());
            [
                r.kind.to_string(),
                r.id.clone(),
                r.pipelines.clone(),
                cell(r.in_rate),
                cell(r.out_rate),
                cell(r.refused_rate),
                cell(r.dropped_rate),
                queue,
            ]
        })
        .collect();
    let mut widths = headers.map(str::len);
    for row in &table {
        for (w, c) in widths.iter_mut().zip(row) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (c, w)) in cells.iter().zip(widths).enumerate() {
            // Text columns left-aligned, numbers right-aligned.
            if i < 3 {
                text.push_str(&format!("{c:<w$}  "));
            } else {
                text.push_str(&format!("{c:>w$}  "));
            }
        }
        text.trim_end().to_string() + "\n"
    };
    out.push_str(&line(&headers.map(str::to_string)));
    for row in &table {
        out.push_str(&line(row));
    }
    out
}

/// `http://host:port/path` → (host:port, path).
pub fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url.strip_prefix("http://").ok_or_else(|| format!("{url}: only http:// URLs are read"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/metrics"),
    };
    if authority.is_empty() {
        return Err(format!("{url}: no host"));
    }
    Ok((authority.to_string(), path.to_string()))
}

/// Reads the page with a plain HTTP/1.0 GET (the server closes the
/// connection after the body), bounded in time and size.
pub fn fetch(url: &str) -> Result<String, String> {
    let (authority, path) = split_url(url)?;
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&authority)
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    let timeout = Duration::from_secs(5);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("{url}: {e}"))?;
    stream.set_read_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(timeout)).map_err(|e| e.to_string())?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/plain\r\n\r\n")
        .map_err(|e| format!("{url}: {e}"))?;
    let mut body = Vec::new();
    stream.take(MAX_PAGE_BYTES).read_to_end(&mut body).map_err(|e| format!("{url}: {e}"))?;
    let text = String::from_utf8_lossy(&body);
    let (head, page) = text.split_once("\r\n\r\n").ok_or_else(|| format!("{url}: not an HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        return Err(format!("{url}: {status}"));
    }
    Ok(page.to_string())
}

/// Draws a frame every `interval` until interrupted, or once (after one
/// interval, so rates have two samples) when `once`.
pub fn run(url: &str, layout: &Layout, interval: Duration, once: bool) -> Result<(), String> {
    let sample = || fetch(url).map(|text| Sample { at: Instant::now(), series: parse(&text) });
    let mut prev = sample()?;
    loop {
        std::thread::sleep(interval);
        let cur = match sample() {
            Ok(s) => s,
            Err(e) if !once => {
                print!("\x1b[H\x1b[2Jsluice top  {url}\n\ncannot read the page: {e}\n");
                let _ = std::io::stdout().flush();
                continue;
            }
            Err(e) => return Err(e),
        };
        let text = frame(url, layout, &prev, &cur);
        if once {
            print!("{text}");
            return Ok(());
        }
        // Home and clear, then the frame: a terminal redraws in place.
        print!("\x1b[H\x1b[2J{text}");
        let _ = std::io::stdout().flush();
        prev = cur;
    }
}

#[cfg(test)]
#[path = "top_tests.rs"]
mod tests;
