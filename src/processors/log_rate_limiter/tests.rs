use super::config::{severity_number, LogRateLimiterConfig};
use super::*;
use crate::data::Signal;
use crate::telemetry::Registry;
use opentelemetry_proto::tonic::logs::v1::{ResourceLogs, ScopeLogs};

const ID: &str = "log_rate_limiter";

fn limiter(cfg: &LogRateLimiterConfig, workers: usize) -> (LogRateLimiter, Registry) {
    let registry = Registry::new();
    let ctx = ProcessorContext {
        id: ID.to_string(),
        signal: Signal::Logs,
        registry: registry.clone(),
        worker: 0,
        workers,
        shared: Default::default(),
        storage_dir: None,
    };
    (LogRateLimiter::new(cfg, &ctx), registry)
}

fn metric(reg: &Registry, name: &str) -> f64 {
    reg.value(name, &[("processor", ID)]).unwrap_or(0.0)
}

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(s.to_string())) })
}

fn record(severity: i32, text: &str, body: &str) -> LogRecord {
    LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        severity_number: severity,
        severity_text: text.to_string(),
        body: string(body),
        ..Default::default()
    }
}

fn info(body: &str) -> LogRecord {
    record(9, "INFO", body)
}

fn batch(service: &str, records: Vec<LogRecord>) -> Batch {
    let resource = Resource {
        attributes: vec![KeyValue { key: "service.name".into(), value: string(service), ..Default::default() }],
        ..Default::default()
    };
    Batch::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource),
            scope_logs: vec![ScopeLogs { log_records: records, ..Default::default() }],
            ..Default::default()
        }],
    })
}

/// (service, record) for every record of the batches.
fn records(out: &[Batch]) -> Vec<(String, &LogRecord)> {
    let mut v = Vec::new();
    for b in out {
        let Batch::Logs(req) = b else { continue };
        for rl in &req.resource_logs {
            let service = rl
                .resource
                .as_ref()
                .and_then(|r| find_attr(Some(&r.attributes), "service.name"))
                .map(|v| {
                    let mut s = String::new();
                    render_any(&mut s, Some(v));
                    s
                })
                .unwrap_or_default();
            for sl in &rl.scope_logs {
                v.extend(sl.log_records.iter().map(|r| (service.clone(), r)));
            }
        }
    }
    v
}

fn int(r: &LogRecord, key: &str) -> Option<i64> {
    match find_attr(Some(&r.attributes), key)?.value.as_ref()? {
        any_value::Value::IntValue(i) => Some(*i),
        _ => None,
    }
}

fn is_summary(r: &LogRecord) -> bool {
    int(r, ATTR_SUPPRESSED).is_some()
}

fn weight(r: &LogRecord) -> i64 {
    int(r, ATTR_WEIGHT).unwrap_or(1)
}

#[test]
fn flood_of_one_key_is_limited_with_one_summary() {
    let (mut p, reg) = limiter(&LogRateLimiterConfig::default(), 1);
    let t0 = Instant::now();
    let mut out = Vec::new();
    // 10,000 records of one key over one second, in 100 batches of 100; one
    // ERROR among them; another service's records in between.
    for i in 0..100u32 {
        let now = t0 + Duration::from_millis(u64::from(i) * 10);
        let mut recs: Vec<LogRecord> = (0..100).map(|n| info(&format!("user {} failed", i * 100 + n))).collect();
        if i == 50 {
            recs[7] = record(17, "ERROR", "user 5007 failed");
        }
        p.process(batch("checkout", recs), now, &mut out);
        p.process(batch("payments", vec![info("user 1 failed")]), now, &mut out);
    }
    let all = records(&out);
    let flood_kept = all.iter().filter(|(s, r)| s == "checkout" && r.severity_number == 9).count();
    assert!((100..=200).contains(&flood_kept), "kept {flood_kept}");
    assert_eq!(all.iter().filter(|(_, r)| r.severity_number == 17).count(), 1, "the ERROR is kept");
    assert_eq!(all.iter().filter(|(s, _)| s == "payments").count(), 100, "another key is unaffected");
    assert!(!all.iter().any(|(_, r)| is_summary(r)));
    let suppressed = 9_999 - flood_kept;
    assert_eq!(metric(&reg, "otelcol_processor_dropped_log_records_total"), suppressed as f64);

    // The summary is due at the end of the 10s interval, not before.
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(10)));
    let mut summaries = Vec::new();
    p.tick(t0 + Duration::from_secs(9), &mut summaries);
    assert!(summaries.is_empty());
    p.tick(t0 + Duration::from_secs(10), &mut summaries);
    let s = records(&summaries);
    assert_eq!(s.len(), 1, "exactly one summary");
    let (service, r) = &s[0];
    assert_eq!(service, "checkout", "under the first suppressed record's resource");
    assert_eq!(int(r, ATTR_SUPPRESSED), Some(suppressed as i64));
    assert_eq!(r.body, string(&format!("{suppressed} similar records suppressed")));
    assert_eq!(r.severity_number, 9);
    assert_eq!(int(r, ATTR_FIRST), Some(1_700_000_000_000_000_000));
    assert_eq!(int(r, ATTR_LAST), Some(1_700_000_000_000_000_000));
    let key = find_attr(Some(&r.attributes), ATTR_KEY).cloned();
    assert_eq!(key, string("resource.service.name=checkout, severity_text=INFO, body_template=user <*> failed"));
    assert_eq!(metric(&reg, "sluice_log_rate_limiter_summaries_emitted_total"), 1.0);
    assert_eq!(p.next_deadline(), None);
    let mut more = Vec::new();
    p.flush(&mut more);
    assert!(more.is_empty(), "nothing is summarised twice");

    // Weights re-weight what left the processor to what entered it.
    let total: i64 = all.iter().chain(s.iter()).map(|(_, r)| weight(r)).sum();
    assert_eq!(total, 10_000 + 100);
}

#[test]
fn due_summaries_go_out_before_the_next_batch() {
    let cfg = LogRateLimiterConfig {
        rate: 1.0,
        burst: 1,
        summary_interval: crate::config::Duration::from_secs(1),
        ..Default::default()
    };
    let (mut p, _) = limiter(&cfg, 1);
    let t0 = Instant::now();
    let mut out = Vec::new();
    p.process(batch("a", vec![info("x"), info("x"), info("x")]), t0, &mut out);
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(1)));
    // A batch after the deadline, with no tick in between: the summary of the
    // earlier interval comes first, then the batch (its record kept: refilled).
    let mut out = Vec::new();
    p.process(batch("a", vec![info("x")]), t0 + Duration::from_millis(2500), &mut out);
    let all = records(&out);
    assert_eq!(all.len(), 2);
    assert_eq!(int(all[0].1, ATTR_SUPPRESSED), Some(2));
    assert!(!is_summary(all[1].1));
    assert_eq!(p.next_deadline(), None);
    // A suppression now is due at the end of the interval it falls in (3s).
    p.process(batch("a", vec![info("x")]), t0 + Duration::from_millis(2600), &mut out);
    assert_eq!(p.next_deadline(), Some(t0 + Duration::from_secs(3)));
}

#[test]
fn absurd_intervals_do_not_panic() {
    let cfg = LogRateLimiterConfig {
        rate: 1.0,
        burst: 1,
        summary_interval: crate::config::Duration(Duration::from_secs(u64::MAX)),
        ..Default::default()
    };
    let (mut p, _) = limiter(&cfg, 1);
    let mut out = Vec::new();
    p.process(batch("a", vec![info("x"), info("x")]), Instant::now(), &mut out);
    assert!(p.next_deadline().is_some());
}

#[test]
fn a_worker_enforces_the_whole_burst_and_its_share_of_max_keys() {
    // The pipeline routes each key to one worker, so one instance of four
    // keeps the whole burst; only max_keys is divided.
    let (mut p, _) = limiter(&LogRateLimiterConfig::default(), 4);
    let mut out = Vec::new();
    p.process(batch("a", (0..1000).map(|_| info("x")).collect()), Instant::now(), &mut out);
    assert_eq!(records(&out).len(), 100);
    assert_eq!(p.max_keys, 2500);
}

#[test]
fn body_templates_group_variable_tokens_only() {
    let cfg = LogRateLimiterConfig { rate: 1.0, burst: 1, ..Default::default() };
    let (mut p, _) = limiter(&cfg, 1);
    let now = Instant::now();
    let mut out = Vec::new();
    p.process(batch("a", vec![info("user 17 failed"), info("user 42 failed")]), now, &mut out);
    assert_eq!(records(&out).len(), 1, "one key");
    let (mut p, _) = limiter(&cfg, 1);
    let mut out = Vec::new();
    p.process(batch("a", vec![info("user 17 failed"), info("disk full")]), now, &mut out);
    assert_eq!(records(&out).len(), 2, "two keys");
}

#[test]
fn exemption_follows_severity_number_or_text() {
    let cfg = LogRateLimiterConfig { rate: 1.0, burst: 1, exempt_severity: "warn".into(), ..Default::default() };
    let (mut p, _) = limiter(&cfg, 1);
    let mut out = Vec::new();
    let recs = vec![info("a"), info("a"), record(13, "", "a"), record(0, "WARNING", "a"), record(0, "Fatal", "a")];
    p.process(batch("a", recs), Instant::now(), &mut out);
    assert_eq!(records(&out).len(), 4);

    let cfg = LogRateLimiterConfig { rate: 1.0, burst: 1, exempt_severity: "NONE".into(), ..Default::default() };
    let (mut p, _) = limiter(&cfg, 1);
    let mut out = Vec::new();
    p.process(batch("a", vec![record(21, "FATAL", "a"), record(21, "FATAL", "a")]), Instant::now(), &mut out);
    assert_eq!(records(&out).len(), 1);
}

#[test]
fn rate_refills_with_time_from_now() {
    let cfg = LogRateLimiterConfig { rate: 10.0, burst: 1, ..Default::default() };
    let (mut p, _) = limiter(&cfg, 1);
    let t0 = Instant::now();
    let mut out = Vec::new();
    for ms in [0, 50, 100, 150, 200] {
        p.process(batch("a", vec![info("x")]), t0 + Duration::from_millis(ms), &mut out);
    }
    assert_eq!(records(&out).len(), 3, "one per 100ms");
}

#[test]
fn max_keys_evicts_idle_keys_then_overflows() {
    let cfg = LogRateLimiterConfig {
        rate: 1.0,
        burst: 1,
        max_keys: 2,
        key_fields: vec!["attributes.k".into()],
        ..Default::default()
    };
    let (mut p, reg) = limiter(&cfg, 1);
    let rec = |k: &str| {
        let mut r = info("x");
        r.attributes.push(KeyValue { key: "k".into(), value: string(k), ..Default::default() });
        r
    };
    let t0 = Instant::now();
    let mut out = Vec::new();
    // a and b fill the table; c and d share the catch-all key, which keeps one.
    p.process(batch("s", vec![rec("a"), rec("b"), rec("c"), rec("d")]), t0, &mut out);
    assert_eq!(records(&out).len(), 3);
    assert_eq!(p.keys_tracked(), 2);
    assert_eq!(metric(&reg, "sluice_log_rate_limiter_key_overflow_total"), 2.0);
    assert_eq!(metric(&reg, "sluice_log_rate_limiter_keys_evicted_total"), 0.0);
    assert_eq!(metric(&reg, "sluice_log_rate_limiter_keys"), 2.0);
    // Two seconds later a and b are idle: a new key evicts them.
    let mut out = Vec::new();
    p.process(batch("s", vec![rec("e")]), t0 + Duration::from_secs(2), &mut out);
    assert_eq!(records(&out).len(), 1);
    assert_eq!(metric(&reg, "sluice_log_rate_limiter_keys_evicted_total"), 2.0);
    assert_eq!(metric(&reg, "sluice_log_rate_limiter_keys"), 1.0);
    // The catch-all key's suppressions are summarised too.
    let mut out = Vec::new();
    p.flush(&mut out);
    let s = records(&out);
    assert_eq!(s.len(), 1);
    assert_eq!(find_attr(Some(&s[0].1.attributes), ATTR_KEY).cloned(), string(OVERFLOW_KEY_TEXT));
    assert_eq!(int(s[0].1, ATTR_SUPPRESSED), Some(1));
    drop(p);
    assert_eq!(metric(&reg, "sluice_log_rate_limiter_keys"), 0.0);
}

#[test]
fn summaries_carry_upstream_weights_and_highest_severity() {
    let cfg =
        LogRateLimiterConfig { rate: 1.0, burst: 1, key_fields: vec!["body_template".into()], ..Default::default() };
    let (mut p, _) = limiter(&cfg, 1);
    let mut heavy = record(13, "WARN", "x");
    heavy.attributes.push(KeyValue {
        key: ATTR_WEIGHT.into(),
        value: Some(AnyValue { value: Some(any_value::Value::IntValue(5)) }),
        ..Default::default()
    });
    let mut out = Vec::new();
    p.process(batch("a", vec![info("x"), info("x"), heavy]), Instant::now(), &mut out);
    p.flush(&mut out);
    let all = records(&out);
    let summary = all.iter().find(|(_, r)| is_summary(r)).map(|(_, r)| *r).unwrap_or_else(|| panic!("no summary"));
    assert_eq!(int(summary, ATTR_SUPPRESSED), Some(2));
    assert_eq!(weight(summary), 6);
    assert_eq!((summary.severity_number, summary.severity_text.as_str()), (13, "WARN"));
    assert_eq!(all.iter().map(|(_, r)| weight(r)).sum::<i64>(), 1 + 1 + 5);
}

#[test]
fn other_signals_and_empty_batches_pass() {
    let (mut p, _) = limiter(&LogRateLimiterConfig::default(), 1);
    let mut out = Vec::new();
    p.process(Batch::empty(Signal::Traces), Instant::now(), &mut out);
    p.process(Batch::Logs(Default::default()), Instant::now(), &mut out);
    assert_eq!(out.len(), 1);
}

#[test]
fn severity_names() {
    assert_eq!(severity_number("ERROR"), Some(17));
    assert_eq!(severity_number("error3"), Some(19));
    assert_eq!(severity_number("Warning"), Some(13));
    assert_eq!(severity_number("TRACE4"), Some(4));
    assert_eq!(severity_number("2"), None);
    assert_eq!(severity_number("ERROR5"), None);
    assert_eq!(severity_number(""), None);
}

fn load_processor(body: &str) -> Result<crate::service::AgentConfig, crate::config::ConfigErrors> {
    let text = format!(
        "receivers:\n  otlp:\n    protocols: {{grpc: }}\nprocessors:\n  log_rate_limiter:\n{body}\
         exporters:\n  debug:\nservice:\n  pipelines:\n    logs: {{receivers: [otlp], processors: [log_rate_limiter], exporters: [debug]}}\n"
    );
    crate::service::load::load_agent_config(&text, &|_| None)
}

#[test]
fn config_loads_with_defaults() {
    let cfg = load_processor("    rate: 50\n    summary_interval: 30s\n").unwrap();
    let id = crate::config::ComponentId::parse(ID).unwrap();
    let Some(c) = cfg.processors.get(&id).and_then(|p| p.downcast_ref::<LogRateLimiterConfig>()) else {
        panic!("not a log_rate_limiter config");
    };
    assert_eq!(c.rate, 50.0);
    assert_eq!(c.burst, 100);
    assert_eq!(c.max_keys, 10_000);
    assert_eq!(c.exempt_floor(), Some(17));
    assert_eq!(c.summary_interval.get(), Duration::from_secs(30));
    assert_eq!(c.parsed_key_fields().len(), 3);
    assert!(load_processor("    rates: 5\n").is_err(), "unknown fields are refused");
}

#[test]
fn config_errors_carry_path_line_and_hint() {
    let cases: &[(&str, &str, usize, &str)] = &[
        ("    rate: 0\n", "processors::log_rate_limiter::rate", 6, "rate 0 must be a number above 0; hint:"),
        ("    rate: -3\n", "processors::log_rate_limiter::rate", 6, "must be a number above 0"),
        (
            "    burst: 10\n    key_fields: [resource.service.name, span.name]\n",
            "processors::log_rate_limiter::key_fields::1",
            7,
            "unknown key field \"span.name\"; hint: a key field is resource.<attribute>",
        ),
        (
            "    key_fields:\n      - attributes.\n",
            "processors::log_rate_limiter::key_fields::0",
            7,
            "unknown key field",
        ),
        (
            "    exempt_severity: SEVERE\n",
            "processors::log_rate_limiter::exempt_severity",
            6,
            "unknown severity \"SEVERE\"; hint: severities are TRACE, DEBUG, INFO, WARN, ERROR, FATAL, NONE",
        ),
        ("    max_keys: 0\n", "processors::log_rate_limiter::max_keys", 6, "max_keys must be at least 1"),
        ("    burst: 0\n", "processors::log_rate_limiter::burst", 6, "burst must be at least 1"),
        ("    summary_interval: 0s\n", "processors::log_rate_limiter::summary_interval", 6, "above zero"),
    ];
    for (body, path, line, needle) in cases {
        let errs = load_processor(body).expect_err(body);
        let rendered = errs.to_string();
        let e = errs.0.iter().find(|e| e.path == *path).unwrap_or_else(|| panic!("no error at {path}: {rendered}"));
        assert_eq!(e.line, Some(*line), "{rendered}");
        assert!(e.to_string().contains(needle), "wanted {needle:?} in {e}");
    }
}
