//! Match blocks compiled once at build: strings to compare or one
//! `RegexSet` per list, names resolved to numbers. Matching borrows the item
//! and allocates nothing.

use super::config::*;
use crate::config::suggest::did_you_mean;
use crate::processors::log_rate_limiter::config::severity_number;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, AnyValue, InstrumentationScope, KeyValue};
use regex::{Regex, RegexSet};

/// A config problem, placed by its path below the processor.
#[derive(Debug, Clone, PartialEq)]
pub struct CompileError {
    pub path: Vec<String>,
    pub message: String,
    pub hint: Option<String>,
}

pub const MATCH_TYPES: &[&str] = &["strict", "regexp"];
pub const ERROR_MODES: &[&str] = &["ignore", "silent", "propagate"];
pub const SPAN_KINDS: &[(&str, i32)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
];
pub const STATUS_CODES: &[(&str, i32)] = &[("STATUS_CODE_UNSET", 0), ("STATUS_CODE_OK", 1), ("STATUS_CODE_ERROR", 2)];

/// Any of a list of strings.
#[derive(Debug)]
pub enum Strings {
    Strict(Vec<String>),
    Regexp(RegexSet),
}

impl Strings {
    pub fn is_match(&self, s: &str) -> bool {
        match self {
            Strings::Strict(v) => v.iter().any(|x| x == s),
            Strings::Regexp(set) => set.is_match(s),
        }
    }
}

#[derive(Debug)]
enum ValueMatch {
    Present,
    Equal(AttrValue),
    Regexp(Regex),
}

#[derive(Debug)]
pub struct Attribute {
    key: String,
    value: ValueMatch,
}

/// True when every matcher finds its attribute.
pub fn all_attributes(matchers: &[Attribute], attrs: &[KeyValue]) -> bool {
    matchers.iter().all(|m| {
        let Some(kv) = attrs.iter().find(|kv| kv.key == m.key) else { return false };
        let v = kv.value.as_ref().and_then(|v| v.value.as_ref());
        match (&m.value, v) {
            (ValueMatch::Present, _) => true,
            (ValueMatch::Equal(want), Some(v)) => equal(want, v),
            (ValueMatch::Regexp(re), Some(Value::StringValue(s))) => re.is_match(s),
            _ => false,
        }
    })
}

fn equal(want: &AttrValue, got: &Value) -> bool {
    match (want, got) {
        (AttrValue::String(a), Value::StringValue(b)) => a == b,
        (AttrValue::Int(a), Value::IntValue(b)) => a == b,
        (AttrValue::Double(a), Value::DoubleValue(b)) => a == b,
        (AttrValue::Bool(a), Value::BoolValue(b)) => a == b,
        _ => false,
    }
}

pub fn string_attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attrs.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()? {
        Value::StringValue(s) => Some(s),
        _ => None,
    }
}

#[derive(Debug)]
pub struct Library {
    name: Strings,
    version: Option<Strings>,
}

#[derive(Debug, Default)]
pub struct SpanMatcher {
    pub services: Option<Strings>,
    pub span_names: Option<Strings>,
    pub span_kinds: Vec<i32>,
    pub status_codes: Vec<i32>,
    pub attributes: Vec<Attribute>,
    pub resources: Vec<Attribute>,
    pub libraries: Vec<Library>,
}

/// What a span is matched against.
pub struct SpanView<'a> {
    pub resource: &'a [KeyValue],
    pub scope: Option<&'a InstrumentationScope>,
    pub name: &'a str,
    pub kind: i32,
    pub status: i32,
    pub attributes: &'a [KeyValue],
}

impl SpanMatcher {
    pub fn is_match(&self, s: &SpanView<'_>) -> bool {
        if let Some(m) = &self.services {
            if !string_attr(s.resource, "service.name").is_some_and(|n| m.is_match(n)) {
                return false;
            }
        }
        if self.span_names.as_ref().is_some_and(|m| !m.is_match(s.name)) {
            return false;
        }
        if !self.span_kinds.is_empty() && !self.span_kinds.contains(&s.kind) {
            return false;
        }
        if !self.status_codes.is_empty() && !self.status_codes.contains(&s.status) {
            return false;
        }
        if !self.libraries.is_empty() {
            let (name, version) = s.scope.map_or(("", ""), |sc| (sc.name.as_str(), sc.version.as_str()));
            let any = self
                .libraries
                .iter()
                .any(|l| l.name.is_match(name) && l.version.as_ref().is_none_or(|v| v.is_match(version)));
            if !any {
                return false;
            }
        }
        all_attributes(&self.resources, s.resource) && all_attributes(&self.attributes, s.attributes)
    }
}

#[derive(Debug)]
pub struct EventMatcher {
    pub names: Option<Strings>,
    pub attributes: Vec<Attribute>,
}

impl EventMatcher {
    pub fn is_match(&self, name: &str, attrs: &[KeyValue]) -> bool {
        self.names.as_ref().is_none_or(|m| m.is_match(name)) && all_attributes(&self.attributes, attrs)
    }
}

#[derive(Debug)]
pub struct MetricMatcher {
    pub metric_names: Option<Strings>,
    pub resource_attributes: Vec<Attribute>,
    pub datapoint_attributes: Vec<Attribute>,
}

impl MetricMatcher {
    /// The metric-level part: name and resource.
    pub fn metric_matches(&self, resource: &[KeyValue], name: &str) -> bool {
        self.metric_names.as_ref().is_none_or(|m| m.is_match(name))
            && all_attributes(&self.resource_attributes, resource)
    }

    /// Whether the block looks at data points at all.
    pub fn per_point(&self) -> bool {
        !self.datapoint_attributes.is_empty()
    }

    pub fn point_matches(&self, attrs: &[KeyValue]) -> bool {
        all_attributes(&self.datapoint_attributes, attrs)
    }
}

#[derive(Debug)]
pub struct SeverityFloor {
    pub min: i32,
    pub match_undefined: bool,
}

#[derive(Debug)]
pub struct LogMatcher {
    pub resource_attributes: Vec<Attribute>,
    pub record_attributes: Vec<Attribute>,
    pub severity_texts: Option<Strings>,
    pub severity_number: Option<SeverityFloor>,
    pub bodies: Option<Strings>,
}

impl LogMatcher {
    pub fn is_match(&self, resource: &[KeyValue], r: &opentelemetry_proto::tonic::logs::v1::LogRecord) -> bool {
        if self.severity_texts.as_ref().is_some_and(|m| !m.is_match(&r.severity_text)) {
            return false;
        }
        if let Some(f) = &self.severity_number {
            let ok = if r.severity_number == 0 { f.match_undefined } else { r.severity_number >= f.min };
            if !ok {
                return false;
            }
        }
        if let Some(m) = &self.bodies {
            let body = match r.body.as_ref().and_then(|b: &AnyValue| b.value.as_ref()) {
                Some(Value::StringValue(s)) => Some(s.as_str()),
                _ => None,
            };
            if !body.is_some_and(|b| m.is_match(b)) {
                return false;
            }
        }
        all_attributes(&self.resource_attributes, resource) && all_attributes(&self.record_attributes, &r.attributes)
    }
}

/// Everything the processor matches with; a block with errors is left out.
#[derive(Debug, Default)]
pub struct Compiled {
    pub span_include: Option<SpanMatcher>,
    pub span_exclude: Option<SpanMatcher>,
    pub event_include: Option<EventMatcher>,
    pub event_exclude: Option<EventMatcher>,
    pub metric_include: Option<MetricMatcher>,
    pub metric_exclude: Option<MetricMatcher>,
    pub log_include: Option<LogMatcher>,
    pub log_exclude: Option<LogMatcher>,
}

/// Compiles a config; every problem found is returned, each at its path.
pub fn compile(cfg: &FilterConfig) -> (Compiled, Vec<CompileError>) {
    let mut c = Ctx { errors: Vec::new(), path: Vec::new() };
    if let Some(mode) = &cfg.error_mode {
        if !ERROR_MODES.contains(&mode.as_str()) {
            c.at(&["error_mode"], |c| c.unknown("error_mode", mode, ERROR_MODES.iter().copied()));
        }
    }
    let any = cfg.spans.include.is_some()
        || cfg.spans.exclude.is_some()
        || cfg.spans.span_events.include.is_some()
        || cfg.spans.span_events.exclude.is_some()
        || cfg.metrics.include.is_some()
        || cfg.metrics.exclude.is_some()
        || cfg.logs.include.is_some()
        || cfg.logs.exclude.is_some()
        || cfg.traces.span.is_some()
        || cfg.traces.spanevent.is_some()
        || cfg.metrics.metric.is_some()
        || cfg.metrics.datapoint.is_some()
        || cfg.logs.log_record.is_some();
    if !any {
        c.error(
            "the filter has no conditions and no include or exclude block, so it would keep everything",
            Some("add e.g. traces: {span: ['name == \"health\"']}, or spans: {exclude: {match_type: strict, span_names: [health]}}"),
        );
    }
    let out = Compiled {
        span_include: c.at(&["spans", "include"], |c| cfg.spans.include.as_ref().and_then(|m| c.span(m))),
        span_exclude: c.at(&["spans", "exclude"], |c| cfg.spans.exclude.as_ref().and_then(|m| c.span(m))),
        event_include: c.at(&["spans", "span_events", "include"], |c| {
            cfg.spans.span_events.include.as_ref().and_then(|m| c.event(m))
        }),
        event_exclude: c.at(&["spans", "span_events", "exclude"], |c| {
            cfg.spans.span_events.exclude.as_ref().and_then(|m| c.event(m))
        }),
        metric_include: c.at(&["metrics", "include"], |c| cfg.metrics.include.as_ref().and_then(|m| c.metric(m))),
        metric_exclude: c.at(&["metrics", "exclude"], |c| cfg.metrics.exclude.as_ref().and_then(|m| c.metric(m))),
        log_include: c.at(&["logs", "include"], |c| cfg.logs.include.as_ref().and_then(|m| c.log(m))),
        log_exclude: c.at(&["logs", "exclude"], |c| cfg.logs.exclude.as_ref().and_then(|m| c.log(m))),
    };
    (out, c.errors)
}

struct Ctx {
    errors: Vec<CompileError>,
    path: Vec<String>,
}

impl Ctx {
    fn at<T>(&mut self, sub: &[&str], f: impl FnOnce(&mut Ctx) -> T) -> T {
        let n = self.path.len();
        self.path.extend(sub.iter().map(|s| s.to_string()));
        let r = f(self);
        self.path.truncate(n);
        r
    }

    fn error(&mut self, message: impl Into<String>, hint: Option<&str>) {
        self.errors.push(CompileError {
            path: self.path.clone(),
            message: message.into(),
            hint: hint.map(str::to_string),
        });
    }

    fn unknown<'a>(&mut self, what: &str, word: &str, names: impl Iterator<Item = &'a str> + Clone) {
        let listed = names.clone().collect::<Vec<_>>().join(", ");
        let hint = match did_you_mean(word, names) {
            Some(d) => format!("{d} ({what} is one of {listed})"),
            None => format!("{what} is one of {listed}"),
        };
        self.error(format!("unknown {what} \"{word}\""), Some(&hint));
    }

    /// The block's match type: true for regexp.
    fn match_type(&mut self, mt: &Option<String>) -> Option<bool> {
        self.at(&["match_type"], |c| match mt.as_deref() {
            Some("strict") => Some(false),
            Some("regexp") => Some(true),
            Some("expr") => {
                c.error("match_type \"expr\" is not supported", Some("use strict or regexp"));
                None
            }
            Some(other) => {
                c.unknown("match_type", other, MATCH_TYPES.iter().copied());
                None
            }
            None => {
                c.error("match_type is required", Some("match_type: strict or match_type: regexp"));
                None
            }
        })
    }

    fn strings(&mut self, field: &str, regexp: bool, list: &[String]) -> Option<Strings> {
        if list.is_empty() {
            return None;
        }
        if !regexp {
            return Some(Strings::Strict(list.to_vec()));
        }
        let mut ok = true;
        for (i, p) in list.iter().enumerate() {
            ok &= self.at(&[field, &i.to_string()], |c| c.regex(p)).is_some();
        }
        // Each pattern compiled alone above; the set of valid ones cannot fail
        // but for its size limit, which one invalid pattern already reported.
        ok.then(|| RegexSet::new(list).map(Strings::Regexp).ok()).flatten()
    }

    fn regex(&mut self, p: &str) -> Option<Regex> {
        match Regex::new(p) {
            Ok(r) => Some(r),
            Err(e) => {
                let first = e.to_string();
                let last = first.lines().last().unwrap_or("").trim();
                let detail = last.strip_prefix("error: ").unwrap_or(last);
                self.error(
                    format!("invalid regular expression \"{p}\": {detail}"),
                    Some(
                        "regexp uses the syntax of the Rust regex crate (RE2-like); escape special characters with \\",
                    ),
                );
                None
            }
        }
    }

    fn attributes(&mut self, field: &str, regexp: bool, list: &[AttributeMatch]) -> Vec<Attribute> {
        let mut out = Vec::with_capacity(list.len());
        for (i, a) in list.iter().enumerate() {
            let i = i.to_string();
            if a.key.is_empty() {
                self.at(&[field, &i, "key"], |c| c.error("key must not be empty", None));
                continue;
            }
            let value = match &a.value {
                None => ValueMatch::Present,
                Some(AttrValue::String(s)) if regexp => match self.at(&[field, &i, "value"], |c| c.regex(s)) {
                    Some(r) => ValueMatch::Regexp(r),
                    None => continue,
                },
                Some(v) if regexp => {
                    let _ = v;
                    self.at(&[field, &i, "value"], |c| {
                        c.error(
                            "under match_type: regexp a value must be a string (a pattern)",
                            Some("quote it, or use match_type: strict to compare numbers and booleans"),
                        )
                    });
                    continue;
                }
                Some(v) => ValueMatch::Equal(v.clone()),
            };
            out.push(Attribute { key: a.key.clone(), value });
        }
        out
    }

    fn names(&mut self, field: &str, what: &str, list: &[String], table: &[(&str, i32)], short: &str) -> Vec<i32> {
        let mut out = Vec::new();
        for (i, name) in list.iter().enumerate() {
            let up = name.trim().to_ascii_uppercase();
            let found = table.iter().find(|(n, _)| *n == up || n.strip_prefix(short) == Some(up.as_str()));
            match found {
                Some((_, v)) => out.push(*v),
                None => self.at(&[field, &i.to_string()], |c| c.unknown(what, name, table.iter().map(|(n, _)| *n))),
            }
        }
        out
    }

    fn empty_block(&mut self, fields: &str) {
        self.error(
            "the match block has no properties, so it would match everything",
            Some(&format!("set one of {fields}")),
        );
    }

    fn span(&mut self, m: &SpanMatch) -> Option<SpanMatcher> {
        let before = self.errors.len();
        let regexp = self.match_type(&m.match_type).unwrap_or(false);
        let mut libraries = Vec::new();
        for (i, l) in m.libraries.iter().enumerate() {
            let i = i.to_string();
            let name = self.at(&["libraries", &i], |c| c.strings("name", regexp, std::slice::from_ref(&l.name)));
            let version = l
                .version
                .as_ref()
                .and_then(|v| self.at(&["libraries", &i], |c| c.strings("version", regexp, std::slice::from_ref(v))));
            if let Some(name) = name {
                libraries.push(Library { name, version });
            }
        }
        let out = SpanMatcher {
            services: self.strings("services", regexp, &m.services),
            span_names: self.strings("span_names", regexp, &m.span_names),
            span_kinds: self.names("span_kinds", "span kind", &m.span_kinds, SPAN_KINDS, "SPAN_KIND_"),
            status_codes: self.names("status_codes", "status code", &m.status_codes, STATUS_CODES, "STATUS_CODE_"),
            attributes: self.attributes("attributes", regexp, &m.attributes),
            resources: self.attributes("resources", regexp, &m.resources),
            libraries,
        };
        if m.services.is_empty()
            && m.span_names.is_empty()
            && m.span_kinds.is_empty()
            && m.status_codes.is_empty()
            && m.attributes.is_empty()
            && m.resources.is_empty()
            && m.libraries.is_empty()
        {
            self.empty_block("services, span_names, span_kinds, status_codes, attributes, resources or libraries");
        }
        (self.errors.len() == before).then_some(out)
    }

    fn event(&mut self, m: &SpanEventMatch) -> Option<EventMatcher> {
        let before = self.errors.len();
        let regexp = self.match_type(&m.match_type).unwrap_or(false);
        let out = EventMatcher {
            names: self.strings("names", regexp, &m.names),
            attributes: self.attributes("attributes", regexp, &m.attributes),
        };
        if m.names.is_empty() && m.attributes.is_empty() {
            self.empty_block("names or attributes");
        }
        (self.errors.len() == before).then_some(out)
    }

    fn metric(&mut self, m: &MetricMatch) -> Option<MetricMatcher> {
        let before = self.errors.len();
        let regexp = self.match_type(&m.match_type).unwrap_or(false);
        let out = MetricMatcher {
            metric_names: self.strings("metric_names", regexp, &m.metric_names),
            resource_attributes: self.attributes("resource_attributes", regexp, &m.resource_attributes),
            datapoint_attributes: self.attributes("datapoint_attributes", regexp, &m.datapoint_attributes),
        };
        if m.metric_names.is_empty() && m.resource_attributes.is_empty() && m.datapoint_attributes.is_empty() {
            self.empty_block("metric_names, resource_attributes or datapoint_attributes");
        }
        (self.errors.len() == before).then_some(out)
    }

    fn log(&mut self, m: &LogMatch) -> Option<LogMatcher> {
        let before = self.errors.len();
        // As in the Collector, `severity_number` alone needs no match_type:
        // it compares numbers, never strings.
        let only_severity = m.resource_attributes.is_empty()
            && m.record_attributes.is_empty()
            && m.severity_texts.is_empty()
            && m.bodies.is_empty()
            && m.severity_number.is_some();
        let regexp = if only_severity && m.match_type.is_none() {
            false
        } else {
            self.match_type(&m.match_type).unwrap_or(false)
        };
        let severity_number = m.severity_number.as_ref().and_then(|s| {
            let min = s.min.trim();
            let n = min.parse::<i32>().ok().filter(|n| (1..=24).contains(n)).or_else(|| severity_number(min));
            match n {
                Some(min) => Some(SeverityFloor { min, match_undefined: s.match_undefined }),
                None => {
                    self.at(&["severity_number", "min"], |c| {
                        c.unknown("severity", &s.min, ["TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL"].into_iter())
                    });
                    None
                }
            }
        });
        let out = LogMatcher {
            resource_attributes: self.attributes("resource_attributes", regexp, &m.resource_attributes),
            record_attributes: self.attributes("record_attributes", regexp, &m.record_attributes),
            severity_texts: self.strings("severity_texts", regexp, &m.severity_texts),
            severity_number,
            bodies: self.strings("bodies", regexp, &m.bodies),
        };
        if m.resource_attributes.is_empty()
            && m.record_attributes.is_empty()
            && m.severity_texts.is_empty()
            && m.severity_number.is_none()
            && m.bodies.is_empty()
        {
            self.empty_block("resource_attributes, record_attributes, severity_texts, severity_number or bodies");
        }
        (self.errors.len() == before).then_some(out)
    }
}
