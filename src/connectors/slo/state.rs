//! The running `slo` connector: counts events into each SLO's windows,
//! emits the series (metrics instance) or the alert changes (logs
//! instance) at every flush, and saves the counters when it has storage.

use super::store::{Document, SavedSlo, SloStore};
use super::window::{Counts, Ring};
use super::{Severity, Slo, SloConnector, WINDOWS};
use crate::connectors::{Connector, Now};
use crate::data::{Batch, Payload, Signal};
use crate::ottl::{Condition, EvalCtx, EvalError};
use crate::telemetry::SloMetrics;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs, SeverityNumber};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point, Gauge, Metric, NumberDataPoint};
use opentelemetry_proto::tonic::metrics::v1::{ResourceMetrics, ScopeMetrics};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::Instant;

/// The instrumentation scope of what the connector emits.
pub const SCOPE_NAME: &str = "sluice/slo";
/// The gauge of alert states.
pub const FIRING_METRIC: &str = "sluice_slo_alert_firing";

/// One SLO's counters and alert states.
struct SloCounters {
    slo: Arc<Slo>,
    /// The alert windows ([`WINDOWS`]) then the period.
    rings: Vec<Ring>,
    /// Events counted in this batch, not yet in the rings.
    pending: Counts,
    /// Per alert of `slo.alerts`: firing now.
    firing: Vec<bool>,
}

/// Bytes of counters for one SLO (see the README's memory table).
pub fn slo_memory(window_buckets: usize, period_buckets: usize) -> usize {
    let day = 86_400_000_000_000;
    let windows: usize = WINDOWS.iter().map(|_| Ring::new(day, window_buckets).memory()).sum();
    std::mem::size_of::<SloCounters>() + windows + Ring::new(day, period_buckets).memory()
}

/// What the classifier reads of a span.
#[derive(Clone, Copy)]
struct SpanFacts {
    start: u64,
    end: u64,
    kind: i32,
    code: i32,
}

impl SpanFacts {
    fn of(span: &Span) -> SpanFacts {
        SpanFacts {
            start: span.start_time_unix_nano,
            end: span.end_time_unix_nano,
            kind: span.kind,
            code: span.status.as_ref().map_or(0, |s| s.code),
        }
    }
}

/// The running connector (one per signal pair it feeds).
pub struct SloState {
    slos: Vec<SloCounters>,
    to: Signal,
    flush: crate::connectors::FlushClock,
    metrics: SloMetrics,
    store: Option<SloStore>,
}

fn str_value(s: &str) -> AnyValue {
    AnyValue { value: Some(any_value::Value::StringValue(s.to_string())) }
}

fn kv(k: &str, v: AnyValue) -> KeyValue {
    KeyValue { key: k.to_string(), value: Some(v), ..Default::default() }
}

fn skv(k: &str, v: &str) -> KeyValue {
    kv(k, str_value(v))
}

fn dkv(k: &str, v: f64) -> KeyValue {
    kv(k, AnyValue { value: Some(any_value::Value::DoubleValue(v)) })
}

impl SloState {
    /// The counters of `cfg`'s SLOs, restored from `store` when it holds
    /// them (an SLO whose windows changed starts over).
    pub fn new(cfg: &SloConnector, to: Signal, metrics: SloMetrics, store: Option<SloStore>) -> Result<Self, String> {
        let saved = match &store {
            Some(s) => s.load()?,
            None => Document::default(),
        };
        let mut slos = Vec::with_capacity(cfg.slos.len());
        for slo in &cfg.slos {
            let mut rings: Vec<Ring> =
                WINDOWS.iter().map(|(_, secs)| Ring::new(secs * 1_000_000_000, cfg.window_buckets)).collect();
            let period = u64::try_from(slo.period.as_nanos()).unwrap_or(u64::MAX);
            rings.push(Ring::new(period, cfg.period_buckets));
            let mut firing = vec![false; slo.alerts.len()];
            if let Some(s) = saved.slos.get(&slo.id) {
                if s.rings.len() == rings.len() {
                    for (ring, back) in rings.iter_mut().zip(&s.rings) {
                        if !ring.restore(back) {
                            tracing::warn!(slo = %slo.id, "SLO windows changed since the counters were saved; that window starts over");
                        }
                    }
                }
                for (f, alert) in firing.iter_mut().zip(&slo.alerts) {
                    *f = s.firing.iter().any(|n| n == alert.severity.as_str());
                }
            }
            slos.push(SloCounters { slo: slo.clone(), rings, pending: Counts::default(), firing });
        }
        Ok(SloState { slos, to, flush: crate::connectors::FlushClock::new(cfg.flush_interval), metrics, store })
    }

    /// The SLOs of a resource's service, or none.
    fn of_service(&self, resource: Option<&Resource>) -> SmallVec<[usize; 4]> {
        let mut out = SmallVec::new();
        let attrs: &[KeyValue] = resource.map_or(&[], |r| &r.attributes);
        let service = attrs.iter().find(|kv| kv.key == "service.name").and_then(|kv| kv.value.as_ref());
        let Some(any_value::Value::StringValue(service)) = service.and_then(|v| v.value.as_ref()) else { return out };
        for (i, s) in self.slos.iter().enumerate() {
            if s.slo.service == *service {
                out.push(i);
            }
        }
        out
    }

    /// Counts one span into the pending counts of the SLOs in `of_service`
    /// it is an event of; `eval` evaluates an SLO's condition on it.
    fn span(
        &mut self,
        of_service: &[usize],
        span: SpanFacts,
        eval: &mut dyn FnMut(&Condition) -> Result<bool, EvalError>,
    ) {
        if span.end < span.start {
            self.metrics.invalid_spans.inc();
            return;
        }
        let kind_bit = 1u8.checked_shl(span.kind as u32).unwrap_or(0);
        let code_bit = 1u8.checked_shl(span.code as u32).unwrap_or(0);
        let duration = span.end - span.start;
        for &i in of_service {
            let s = &mut self.slos[i];
            if s.slo.kinds & kind_bit == 0 {
                continue;
            }
            if let Some(cond) = &s.slo.condition {
                match eval(cond) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        self.metrics.condition_errors.inc();
                        tracing::debug!(slo = %s.slo.id, error = %e, "SLO condition failed on a span");
                        continue;
                    }
                }
            }
            let bad =
                s.slo.bad_codes & code_bit != 0 || s.slo.latency_above_nanos.is_some_and(|limit| duration > limit);
            s.pending.total += 1;
            s.pending.bad += u64::from(bad);
        }
    }

    /// Counts the spans of a request the connector may not change: a
    /// condition is evaluated on copies (made only for spans it applies to).
    fn count(&mut self, req: &ExportTraceServiceRequest, now: Now) {
        let now_unix_nanos = i64::try_from(now.unix_nanos).unwrap_or(i64::MAX);
        for rs in &req.resource_spans {
            let of_service = self.of_service(rs.resource.as_ref());
            if of_service.is_empty() {
                continue;
            }
            let mut resource = None;
            for ss in &rs.scope_spans {
                let mut scope = None;
                for span in &ss.spans {
                    let mut eval = |cond: &Condition| {
                        let r = resource.get_or_insert_with(|| rs.resource.clone());
                        let sc = scope.get_or_insert_with(|| ss.scope.clone());
                        let mut copy = span.clone();
                        let ctx = EvalCtx {
                            resource: Some(r),
                            scope: Some(sc),
                            span: Some(&mut copy),
                            now_unix_nanos,
                            ..Default::default()
                        };
                        cond.eval(&ctx)
                    };
                    self.span(&of_service, SpanFacts::of(span), &mut eval);
                }
            }
        }
    }

    /// Counts the spans of a request the connector owns: conditions are
    /// evaluated in place, with no copy.
    fn count_owned(&mut self, req: &mut ExportTraceServiceRequest, now: Now) {
        let now_unix_nanos = i64::try_from(now.unix_nanos).unwrap_or(i64::MAX);
        for rs in &mut req.resource_spans {
            let of_service = self.of_service(rs.resource.as_ref());
            if of_service.is_empty() {
                continue;
            }
            let ResourceSpans { resource, scope_spans, .. } = rs;
            for ss in scope_spans {
                let ScopeSpans { scope, spans, .. } = ss;
                for span in spans.iter_mut() {
                    // Read before the condition borrows the span mutably.
                    let facts = SpanFacts::of(span);
                    let mut eval = |cond: &Condition| {
                        let ctx = EvalCtx {
                            resource: Some(&mut *resource),
                            scope: Some(&mut *scope),
                            span: Some(&mut *span),
                            now_unix_nanos,
                            ..Default::default()
                        };
                        cond.eval(&ctx)
                    };
                    self.span(&of_service, facts, &mut eval);
                }
            }
        }
    }

    /// Moves every window to `now` and adds the pending counts.
    fn settle(&mut self, now: Now) {
        for s in &mut self.slos {
            let pending = std::mem::take(&mut s.pending);
            for ring in &mut s.rings {
                ring.advance(now.unix_nanos);
                if pending.total > 0 {
                    ring.add(pending);
                }
            }
        }
    }

    /// Evaluates the alerts, emits the series or the changes, saves.
    fn flush_now(&mut self, now: Now, out: &mut Vec<Batch>) {
        self.settle(now);
        let mut changes: Vec<(usize, usize)> = Vec::new();
        for (i, s) in self.slos.iter_mut().enumerate() {
            let sums: Vec<Counts> = s.rings.iter().map(Ring::sum).collect();
            let budget = s.slo.error_budget();
            // Sloth's expression: ratio > factor * budget, on both windows of a pair.
            let above = |w: usize, factor: f64| sums[w].ratio().is_some_and(|r| r > factor * budget);
            for (a, alert) in s.slo.alerts.iter().enumerate() {
                let [ql, qs, sl, ss] = alert.severity.windows();
                let now_firing = (above(ql, alert.quick) && above(qs, alert.quick))
                    || (above(sl, alert.slow) && above(ss, alert.slow));
                if now_firing != s.firing[a] {
                    s.firing[a] = now_firing;
                    changes.push((i, a));
                }
            }
        }
        match self.to {
            Signal::Metrics => out.push(Batch::Metrics(self.series(now))),
            Signal::Logs if !changes.is_empty() => out.push(Batch::Logs(self.alert_logs(&changes, now))),
            _ => {}
        }
        self.save();
    }

    fn save(&self) {
        let Some(store) = &self.store else { return };
        let mut doc = Document { version: 1, ..Default::default() };
        for s in &self.slos {
            let firing = s
                .slo
                .alerts
                .iter()
                .zip(&s.firing)
                .filter(|(_, f)| **f)
                .map(|(a, _)| a.severity.as_str().to_string())
                .collect();
            doc.slos.insert(s.slo.id.clone(), SavedSlo { rings: s.rings.iter().map(Ring::save).collect(), firing });
        }
        if let Err(e) = store.save(&doc) {
            self.metrics.storage_errors.inc();
            tracing::error!(path = %store.path().display(), error = %e, "cannot save the SLO counters");
        }
    }

    /// Sloth's series for every SLO, and the alert gauge.
    fn series(&self, now: Now) -> ExportMetricsServiceRequest {
        let mut metrics: Vec<Metric> = Vec::new();
        let mut push = |name: &str, attributes: Vec<KeyValue>, value: f64| {
            let point = NumberDataPoint {
                attributes,
                time_unix_nano: now.unix_nanos,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            };
            match metrics.iter_mut().find(|m| m.name == name) {
                Some(Metric { data: Some(metric::Data::Gauge(g)), .. }) => g.data_points.push(point),
                _ => metrics.push(Metric {
                    name: name.to_string(),
                    data: Some(metric::Data::Gauge(Gauge { data_points: vec![point] })),
                    ..Default::default()
                }),
            }
        };
        for s in &self.slos {
            let slo = &s.slo;
            let labels =
                || vec![skv("sloth_id", &slo.id), skv("sloth_service", &slo.service), skv("sloth_slo", &slo.name)];
            let with_window = |w: &str| {
                let mut l = labels();
                l.push(skv("sloth_window", w));
                l
            };
            let budget = slo.error_budget();
            let names = WINDOWS.iter().map(|(n, _)| *n).chain(std::iter::once(slo.period_name.as_str()));
            let mut ratios = Vec::with_capacity(s.rings.len());
            for (ring, window) in s.rings.iter().zip(names) {
                let ratio = ring.sum().ratio();
                if let Some(r) = ratio {
                    push(&format!("slo:sli_error:ratio_rate{window}"), with_window(window), r);
                }
                ratios.push(ratio);
            }
            push("slo:objective:ratio", labels(), slo.objective_ratio());
            push("slo:error_budget:ratio", labels(), budget);
            push("slo:time_period:days", labels(), slo.period.as_secs_f64() / 86_400.0);
            if let Some(r) = ratios[0] {
                push("slo:current_burn_rate:ratio", labels(), r / budget);
            }
            if let Some(r) = ratios[WINDOWS.len()] {
                push("slo:period_burn_rate:ratio", labels(), r / budget);
                push("slo:period_error_budget_remaining:ratio", labels(), 1.0 - r / budget);
            }
            let mut info = labels();
            info.push(skv("sloth_objective", &slo.objective.to_string()));
            info.push(skv("sloth_mode", "sluice-connector"));
            info.push(skv("sloth_spec", "sluice/slo"));
            info.push(skv("sloth_version", env!("CARGO_PKG_VERSION")));
            push("sloth_slo_info", info, 1.0);
            for (alert, firing) in slo.alerts.iter().zip(&s.firing) {
                let l = vec![skv("slo", &slo.name), skv("severity", alert.severity.as_str())];
                push(FIRING_METRIC, l, if *firing { 1.0 } else { 0.0 });
            }
        }
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource::default()),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    metrics,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    /// One log record per alert that started or stopped firing.
    fn alert_logs(&self, changes: &[(usize, usize)], now: Now) -> ExportLogsServiceRequest {
        let mut records = Vec::with_capacity(changes.len());
        for &(i, a) in changes {
            let s = &self.slos[i];
            let slo = &s.slo;
            let alert = &slo.alerts[a];
            let firing = s.firing[a];
            let budget = slo.error_budget();
            let [ql, qs, sl, ss] = alert.severity.windows();
            let burn = |w: usize| s.rings[w].sum().ratio().map(|r| r / budget);
            let show = |w: usize| burn(w).map_or("no data".to_string(), |b| format!("{b:.4}"));
            let state = if firing { "firing" } else { "resolved" };
            let body = format!(
                "SLO {} of {} {} alert {state}: burn rates {} {} and {} {} (threshold {}), {} {} and {} {} (threshold {})",
                slo.name,
                slo.service,
                alert.severity.as_str(),
                WINDOWS[ql].0,
                show(ql),
                WINDOWS[qs].0,
                show(qs),
                alert.quick,
                WINDOWS[sl].0,
                show(sl),
                WINDOWS[ss].0,
                show(ss),
                alert.slow,
            );
            let (severity_number, severity_text) = match (firing, alert.severity) {
                (true, Severity::Page) => (SeverityNumber::Error, "ERROR"),
                (true, Severity::Ticket) => (SeverityNumber::Warn, "WARN"),
                (false, _) => (SeverityNumber::Info, "INFO"),
            };
            let mut attributes = vec![
                skv("sloth_id", &slo.id),
                skv("sloth_service", &slo.service),
                skv("sloth_slo", &slo.name),
                skv("slo.severity", alert.severity.as_str()),
                skv("slo.alert.state", state),
                dkv("slo.objective", slo.objective),
                dkv("slo.burn_rate.threshold.quick", alert.quick),
                dkv("slo.burn_rate.threshold.slow", alert.slow),
            ];
            for w in [ql, qs, sl, ss] {
                if let Some(b) = burn(w) {
                    attributes.push(dkv(&format!("slo.burn_rate.{}", WINDOWS[w].0), b));
                }
            }
            records.push(LogRecord {
                time_unix_nano: now.unix_nanos,
                observed_time_unix_nano: now.unix_nanos,
                severity_number: severity_number as i32,
                severity_text: severity_text.to_string(),
                body: Some(str_value(&body)),
                attributes,
                ..Default::default()
            });
        }
        ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                resource: Some(Resource { attributes: vec![skv("service.name", "sluice")], ..Default::default() }),
                scope_logs: vec![ScopeLogs {
                    scope: Some(InstrumentationScope {
                        name: SCOPE_NAME.to_string(),
                        version: env!("CARGO_PKG_VERSION").to_string(),
                        ..Default::default()
                    }),
                    log_records: records,
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }
}

impl Connector for SloState {
    fn consume(&mut self, batch: &Batch, now: Now, _out: &mut Vec<Batch>) {
        let Batch::Traces(req) = batch else { return };
        self.flush.arm(now.instant);
        self.count(req, now);
        self.settle(now);
    }

    /// An encoded batch is decoded into a request the connector owns, so its
    /// conditions need no copies.
    fn consume_payload(&mut self, payload: &Payload, now: Now, out: &mut Vec<Payload>) -> Result<(), String> {
        match payload {
            Payload::Decoded(b) => {
                let mut next = Vec::new();
                self.consume(b, now, &mut next);
                out.extend(next.into_iter().map(Payload::Decoded));
            }
            Payload::Encoded(e) => {
                let decoded = e.decode().map_err(|e| format!("cannot decode a checked batch: {e}"))?;
                let Batch::Traces(mut req) = decoded else { return Ok(()) };
                self.flush.arm(now.instant);
                self.count_owned(&mut req, now);
                self.settle(now);
            }
        }
        Ok(())
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.flush.next()
    }

    fn tick(&mut self, now: Now, out: &mut Vec<Batch>) {
        if self.flush.due(now.instant) {
            self.flush_now(now, out);
        }
    }

    fn flush(&mut self, now: Now, out: &mut Vec<Batch>) {
        if self.flush.next().is_some() {
            self.flush_now(now, out);
        }
    }
}
