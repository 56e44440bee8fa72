//! The `slo` connector (sluice's own): service level objectives computed
//! from spans, emitted as the series Sloth's recording rules produce, with
//! the standard multi-window multi-burn-rate alerts evaluated in the agent.
//!
//! An SLO counts the spans of one service (`service.name` of the resource)
//! of the configured kinds that pass its optional OTTL `condition`; a span is
//! bad when its status is one of `bad.status_codes` or it lasted longer than
//! `bad.latency_above`. Every `metrics_flush_interval` the metrics instance
//! (traces to metrics) emits, per SLO, Sloth's series with Sloth's names and
//! labels (`sloth_id`, `sloth_service`, `sloth_slo`, `sloth_window`):
//! `slo:sli_error:ratio_rate{5m,30m,1h,2h,6h,1d,3d,<period>}`,
//! `slo:objective:ratio`, `slo:error_budget:ratio`, `slo:time_period:days`,
//! `slo:current_burn_rate:ratio`, `slo:period_burn_rate:ratio`,
//! `slo:period_error_budget_remaining:ratio`, `sloth_slo_info`, and the gauge
//! `sluice_slo_alert_firing{slo,severity}`. The logs instance (traces to
//! logs) emits one log record each time an alert starts or stops firing.
//!
//! Guarantee: memory per SLO is fixed by `window_buckets` and
//! `period_buckets` (see [`Slo::memory`]), whatever the traffic. Spans that
//! end before they start are counted in no SLO and counted as skipped. The
//! connector never reads the clock (time comes in as [`Now`]); with
//! `storage` it writes its counters to the extension's directory at every
//! flush, so a restart (`kill -9` included) loses at most one flush
//! interval of counts.

mod state;
mod store;
mod window;

#[cfg(test)]
mod tests;

use crate::config::component::{Checker, ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::config::Duration;
use crate::connectors::{ConnectorContext, ConnectorFactory, ConnectorSpec};
use crate::data::Signal;
use crate::extensions::{ExtensionReference, ExtensionUse};
use crate::ottl::{Condition, ContextKind, Limits};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub use state::SloState;

pub static FACTORY: ConnectorFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Connector,
        name: "slo",
        aliases: &[],
        signals: &[Signal::Traces],
        description: "SLOs from spans: Sloth's recording-rule series and multi-window burn-rate alerts (as logs)",
        example: "slos:\n  - name: availability\n    service: checkout\n    objective: 99.9\n",
    },
    settings: SettingsType::of::<SloConnectorConfig>(),
    compile: |input| {
        let cfg: SloConnectorConfig = input.typed()?;
        let mut compiled = None;
        input.check(|c| compiled = cfg.compile(c)).then_some(())?;
        compiled.map(|c| Arc::new(c) as _)
    },
};

/// Most SLOs in one connector.
pub const MAX_SLOS: usize = 1_000;
/// Bounds of `window_buckets` and `period_buckets`.
pub const MIN_BUCKETS: usize = 2;
pub const MAX_BUCKETS: usize = 10_000;
/// The alert windows, as Sloth names them, in seconds.
pub const WINDOWS: [(&str, u64); 7] =
    [("5m", 300), ("30m", 1800), ("1h", 3600), ("2h", 7200), ("6h", 21_600), ("1d", 86_400), ("3d", 259_200)];
/// The longest period accepted.
pub const MAX_PERIOD_DAYS: u64 = 400;

/// `connectors::slo`.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SloConnectorConfig {
    /// How often the series are emitted (and, with `storage`, the counters saved), as in spanmetrics.
    pub metrics_flush_interval: Duration,
    /// ID of a `file_storage` extension where the counters are saved, so they survive a restart.
    pub storage: Option<String>,
    /// Buckets of each alert window (5m to 3d); a window moves in steps of its length / this.
    pub window_buckets: usize,
    /// Buckets of the period window; the period moves in steps of its length / this.
    pub period_buckets: usize,
    /// The objectives.
    pub slos: Vec<SloConfig>,
}

impl Default for SloConnectorConfig {
    fn default() -> Self {
        SloConnectorConfig {
            metrics_flush_interval: Duration::from_secs(15),
            storage: None,
            window_buckets: 60,
            period_buckets: 720,
            slos: Vec::new(),
        }
    }
}

/// One service level objective.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SloConfig {
    /// Name of the SLO: the `sloth_slo` label.
    pub name: String,
    /// `service.name` of the resources whose spans count: the `sloth_service` label.
    pub service: String,
    /// Kinds of the spans that are events: server, client, producer, consumer, internal, unspecified.
    #[serde(default = "default_kinds")]
    pub span_kinds: Vec<SpanKindName>,
    /// OTTL condition on the span (span context); only spans for which it is true count.
    #[serde(default)]
    pub condition: Option<String>,
    /// Objective in percent of good events, above 0 and below 100 (e.g. 99.9).
    pub objective: f64,
    /// Period of the objective, e.g. 30d or 4w (units s, m, h, d, w).
    #[serde(default = "default_period")]
    pub period: String,
    /// When an event is bad.
    #[serde(default)]
    pub bad: BadConfig,
    /// Burn-rate alerts.
    #[serde(default)]
    pub alerting: AlertingConfig,
}

fn default_kinds() -> Vec<SpanKindName> {
    vec![SpanKindName::Server]
}

fn default_period() -> String {
    "30d".to_string()
}

/// A span kind, as the OTLP enum without its prefix.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SpanKindName {
    Unspecified,
    Internal,
    Server,
    Client,
    Producer,
    Consumer,
}

impl SpanKindName {
    /// The OTLP `span.kind` value.
    fn code(self) -> i32 {
        match self {
            SpanKindName::Unspecified => 0,
            SpanKindName::Internal => 1,
            SpanKindName::Server => 2,
            SpanKindName::Client => 3,
            SpanKindName::Producer => 4,
            SpanKindName::Consumer => 5,
        }
    }
}

/// A span status code.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq)]
pub enum StatusName {
    #[serde(rename = "UNSET", alias = "STATUS_CODE_UNSET", alias = "Unset")]
    Unset,
    #[serde(rename = "OK", alias = "STATUS_CODE_OK", alias = "Ok")]
    Ok,
    #[serde(rename = "ERROR", alias = "STATUS_CODE_ERROR", alias = "Error")]
    Error,
}

impl StatusName {
    fn code(self) -> i32 {
        match self {
            StatusName::Unset => 0,
            StatusName::Ok => 1,
            StatusName::Error => 2,
        }
    }
}

/// An event is bad when any of these holds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BadConfig {
    /// Span status codes that make an event bad: UNSET, OK, ERROR.
    pub status_codes: Vec<StatusName>,
    /// A span that lasts longer than this is bad (a latency SLO).
    pub latency_above: Option<Duration>,
}

impl Default for BadConfig {
    fn default() -> Self {
        BadConfig { status_codes: vec![StatusName::Error], latency_above: None }
    }
}

/// The multi-window multi-burn-rate alerts (Google SRE workbook, as Sloth writes them).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// Page: 1h and 5m burn rates above `quick`, or 6h and 30m above `slow`.
    pub page: SeverityConfig,
    /// Ticket: 1d and 2h burn rates above `quick`, or 3d and 6h above `slow`.
    pub ticket: SeverityConfig,
}

/// Thresholds of one alert severity; absent values take the workbook's (for a 30-day period).
#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SeverityConfig {
    /// Evaluate no alert of this severity.
    pub disable: bool,
    /// Burn rate of the quick pair of windows (page 14.4, ticket 3).
    pub quick: Option<f64>,
    /// Burn rate of the slow pair of windows (page 6, ticket 1).
    pub slow: Option<f64>,
}

/// Alert severities.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Page,
    Ticket,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        }
    }

    /// Indexes into [`WINDOWS`]: (quick long, quick short, slow long, slow short).
    pub fn windows(self) -> [usize; 4] {
        match self {
            Severity::Page => [2, 0, 4, 1],   // 1h & 5m, 6h & 30m
            Severity::Ticket => [5, 3, 6, 4], // 1d & 2h, 3d & 6h
        }
    }

    fn defaults(self) -> (f64, f64) {
        match self {
            Severity::Page => (14.4, 6.0),
            Severity::Ticket => (3.0, 1.0),
        }
    }
}

/// One alert, compiled.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub severity: Severity,
    pub quick: f64,
    pub slow: f64,
}

/// One SLO, compiled.
#[derive(Debug)]
pub struct Slo {
    pub name: String,
    pub service: String,
    /// `{service}-{name}`, Sloth's ID.
    pub id: String,
    /// Bit `1 << kind` for each kind that counts.
    pub kinds: u8,
    pub condition: Option<Condition>,
    /// Percent.
    pub objective: f64,
    pub period: std::time::Duration,
    /// The period as a window name (`30d`).
    pub period_name: String,
    /// Bit `1 << code` for each bad status code.
    pub bad_codes: u8,
    pub latency_above_nanos: Option<u64>,
    pub alerts: Vec<Alert>,
}

impl PartialEq for Slo {
    fn eq(&self, o: &Slo) -> bool {
        self.name == o.name
            && self.service == o.service
            && self.kinds == o.kinds
            && self.condition.as_ref().map(|c| &c.text) == o.condition.as_ref().map(|c| &c.text)
            && self.objective.to_bits() == o.objective.to_bits()
            && self.period == o.period
            && self.bad_codes == o.bad_codes
            && self.latency_above_nanos == o.latency_above_nanos
            && self.alerts == o.alerts
    }
}

impl Slo {
    /// Sloth's `slo:objective:ratio`.
    pub fn objective_ratio(&self) -> f64 {
        self.objective / 100.0
    }

    /// Sloth's `slo:error_budget:ratio`: the bad events the objective allows, as a ratio.
    pub fn error_budget(&self) -> f64 {
        (100.0 - self.objective) / 100.0
    }
}

/// The compiled connector.
#[derive(Debug, Clone, PartialEq)]
pub struct SloConnector {
    pub flush_interval: std::time::Duration,
    pub storage: Option<String>,
    pub window_buckets: usize,
    pub period_buckets: usize,
    pub slos: Vec<Arc<Slo>>,
}

/// Bytes of counters one SLO holds with these bucket counts (its seven alert
/// windows and its period window), as stated in the README.
pub fn memory_per_slo(window_buckets: usize, period_buckets: usize) -> usize {
    state::slo_memory(window_buckets, period_buckets)
}

/// A Prometheus-style duration: a sequence of numbers with units s, m, h,
/// d, w (`30d`, `4w`, `1d12h`); a Go duration (`720h`) reads the same.
pub fn parse_period(s: &str) -> Result<std::time::Duration, String> {
    let mut total: u64 = 0;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty period".into());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(format!("invalid period \"{s}\": expected a whole number, e.g. 30d"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| format!("invalid period \"{s}\": number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len());
        let secs = match &rest[..unit_len] {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 604_800,
            "" => return Err(format!("invalid period \"{s}\": missing unit (use s, m, h, d or w)")),
            other => return Err(format!("invalid period \"{s}\": unknown unit \"{other}\" (use s, m, h, d or w)")),
        };
        total = n.checked_mul(secs).and_then(|v| total.checked_add(v)).ok_or("period too large")?;
        rest = &rest[unit_len..];
    }
    Ok(std::time::Duration::from_secs(total))
}

/// A period written as Prometheus writes a range: the largest unit it is a
/// whole number of (`30d`, `36h`).
pub fn period_name(d: std::time::Duration) -> String {
    let s = d.as_secs();
    for (unit, secs) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if s.is_multiple_of(secs) {
            return format!("{}{unit}", s / secs);
        }
    }
    format!("{s}s")
}

impl SloConnectorConfig {
    fn compile(&self, c: &mut Checker) -> Option<SloConnector> {
        if self.metrics_flush_interval.is_zero() {
            c.error(&["metrics_flush_interval"], "metrics_flush_interval must be above zero", Some("e.g. 15s"));
        }
        if let Some(s) = &self.storage {
            if s.trim().is_empty() {
                c.error(&["storage"], "storage must name a file_storage extension", Some("e.g. storage: file_storage"));
            }
        }
        for (field, n) in [("window_buckets", self.window_buckets), ("period_buckets", self.period_buckets)] {
            if !(MIN_BUCKETS..=MAX_BUCKETS).contains(&n) {
                c.error(
                    &[field],
                    format!("{field} must be between {MIN_BUCKETS} and {MAX_BUCKETS}, not {n}"),
                    Some("more buckets: finer windows, more memory per SLO (16 bytes a bucket)"),
                );
            }
        }
        if self.slos.is_empty() {
            c.error(
                &["slos"],
                "the slo connector needs at least one SLO",
                Some("e.g. slos: [{name: availability, service: checkout, objective: 99.9}]"),
            );
        }
        if self.slos.len() > MAX_SLOS {
            c.error(&["slos"], format!("at most {MAX_SLOS} SLOs in one connector"), Some("split them over several"));
        }
        let mut slos = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        for (i, s) in self.slos.iter().enumerate() {
            let at = |field: &str| vec!["slos".to_string(), i.to_string(), field.to_string()];
            if s.name.trim().is_empty() {
                c.error_at(&at("name"), "an SLO needs a name", Some("e.g. name: checkout-availability".into()));
            }
            if s.service.trim().is_empty() {
                c.error_at(
                    &at("service"),
                    "an SLO needs the service.name of the spans it counts",
                    Some("e.g. service: checkout".into()),
                );
            }
            let id = format!("{}-{}", s.service, s.name);
            if ids.contains(&id) {
                c.error_at(
                    &at("name"),
                    format!("duplicate SLO \"{}\" of service \"{}\"", s.name, s.service),
                    Some("each SLO of a service needs its own name".into()),
                );
            }
            ids.push(id.clone());
            if !(s.objective > 0.0 && s.objective < 100.0) {
                c.error_at(
                    &at("objective"),
                    format!(
                        "objective must be above 0 and below 100 (a percentage of good events), not {}",
                        s.objective
                    ),
                    Some("e.g. objective: 99.9; 100 leaves no error budget to burn".into()),
                );
            }
            let period = match parse_period(&s.period) {
                Ok(p) if p.as_secs() < 3600 || p.as_secs() > MAX_PERIOD_DAYS * 86_400 => {
                    c.error_at(
                        &at("period"),
                        format!("period must be between 1h and {MAX_PERIOD_DAYS}d, not {}", s.period),
                        Some("e.g. period: 30d".into()),
                    );
                    None
                }
                Ok(p) => Some(p),
                Err(e) => {
                    c.error_at(&at("period"), e, Some("e.g. period: 30d or 4w".into()));
                    None
                }
            };
            if s.span_kinds.is_empty() {
                c.error_at(&at("span_kinds"), "span_kinds must name at least one kind", Some("e.g. [server]".into()));
            }
            if s.bad.status_codes.is_empty() && s.bad.latency_above.is_none() {
                c.error_at(
                    &at("bad"),
                    "bad names nothing: no event could ever be bad",
                    Some("give status_codes (e.g. [ERROR]) or latency_above (e.g. 300ms)".into()),
                );
            }
            if s.bad.latency_above.is_some_and(|d| d.is_zero()) {
                c.error_at(
                    &[at("bad"), vec!["latency_above".into()]].concat(),
                    "latency_above must be above zero",
                    Some("e.g. 300ms".into()),
                );
            }
            let condition = match &s.condition {
                Some(text) => match Condition::compile_in(text, ContextKind::Span, false, Limits::default()) {
                    Ok(cond) => Some(cond),
                    Err(e) => {
                        c.error_at(&at("condition"), e.to_string(), e.hint.clone());
                        None
                    }
                },
                None => None,
            };
            let mut alerts = Vec::new();
            for (sev, cfg) in [(Severity::Page, &s.alerting.page), (Severity::Ticket, &s.alerting.ticket)] {
                let (dq, ds) = sev.defaults();
                let (quick, slow) = (cfg.quick.unwrap_or(dq), cfg.slow.unwrap_or(ds));
                for (field, v) in [("quick", quick), ("slow", slow)] {
                    if !(v.is_finite() && v > 0.0) {
                        c.error_at(
                            &[at("alerting"), vec![sev.as_str().into(), field.into()]].concat(),
                            format!("a burn-rate threshold must be above 0, not {v}"),
                            Some(format!("the workbook's for a 30-day period: {dq} (quick), {ds} (slow)")),
                        );
                    }
                }
                if !cfg.disable {
                    alerts.push(Alert { severity: sev, quick, slow });
                }
            }
            let Some(period) = period else { continue };
            slos.push(Arc::new(Slo {
                name: s.name.clone(),
                service: s.service.clone(),
                id,
                kinds: s.span_kinds.iter().fold(0u8, |m, k| m | (1 << k.code())),
                condition,
                objective: s.objective,
                period,
                period_name: period_name(period),
                bad_codes: s.bad.status_codes.iter().fold(0u8, |m, k| m | (1 << k.code())),
                latency_above_nanos: s.bad.latency_above.map(|d| u64::try_from(d.get().as_nanos()).unwrap_or(u64::MAX)),
                alerts,
            }));
        }
        Some(SloConnector {
            flush_interval: self.metrics_flush_interval.get(),
            storage: self.storage.clone(),
            window_buckets: self.window_buckets,
            period_buckets: self.period_buckets,
            slos,
        })
    }
}

const PAIRS: &[(Signal, Signal)] = &[(Signal::Traces, Signal::Metrics), (Signal::Traces, Signal::Logs)];

impl ConnectorSpec for SloConnector {
    fn pairs(&self) -> &'static [(Signal, Signal)] {
        PAIRS
    }

    fn extension_references(&self) -> Vec<ExtensionReference<'_>> {
        self.storage.as_deref().map(|s| (&["storage"][..], s, ExtensionUse::Storage)).into_iter().collect()
    }

    fn build(&self, ctx: &ConnectorContext) -> Result<Box<dyn crate::connectors::Connector>, String> {
        // Validation made sure `storage` names a started file_storage extension.
        let storage = match &self.storage {
            Some(name) => {
                let ext = crate::config::ComponentId::parse(name)
                    .ok()
                    .and_then(|id| ctx.extensions.get(&id).cloned())
                    .ok_or_else(|| format!("storage extension \"{name}\" is not configured"))?;
                let dir = ext.storage().ok_or_else(|| format!("extension \"{name}\" is not a file_storage"))?;
                Some(store::SloStore::new(std::path::Path::new(&dir.directory), &ctx.id, ctx.to, dir.fsync))
            }
            None => None,
        };
        let metrics = crate::telemetry::SloMetrics::new(&ctx.registry, &ctx.id, ctx.to);
        let state = SloState::new(self, ctx.to, metrics, storage)?;
        Ok(Box::new(state))
    }
}
