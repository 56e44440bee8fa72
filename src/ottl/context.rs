//! The contexts statements run in (one resource, scope, span, span event,
//! metric, data point or log record at a time), the paths each offers, and
//! how a path reads and writes the decoded OTLP item.

use super::value::{any_or_empty, hex, unhex, Value};
use super::{eval_err, EvalError};
use opentelemetry_proto::tonic::common::v1::{
    any_value::Value as Av, AnyValue, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::metrics::v1::{
    metric::Data, number_data_point, ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    SummaryDataPoint,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{span::Event, Span, Status};
use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContextKind {
    Resource,
    Scope,
    Span,
    SpanEvent,
    Metric,
    DataPoint,
    Log,
}

impl ContextKind {
    pub fn parse(s: &str) -> Option<ContextKind> {
        Some(match s {
            "resource" => ContextKind::Resource,
            "scope" | "instrumentation_scope" => ContextKind::Scope,
            "span" => ContextKind::Span,
            "spanevent" => ContextKind::SpanEvent,
            "metric" => ContextKind::Metric,
            "datapoint" => ContextKind::DataPoint,
            "log" => ContextKind::Log,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ContextKind::Resource => "resource",
            ContextKind::Scope => "scope",
            ContextKind::Span => "span",
            ContextKind::SpanEvent => "spanevent",
            ContextKind::Metric => "metric",
            ContextKind::DataPoint => "datapoint",
            ContextKind::Log => "log",
        }
    }

    /// The contexts whose paths a statement of this context may read.
    pub fn reaches(self, other: ContextKind) -> bool {
        use ContextKind::*;
        match self {
            Resource => other == Resource,
            Scope => matches!(other, Resource | Scope),
            Span => matches!(other, Resource | Scope | Span),
            SpanEvent => matches!(other, Resource | Scope | Span | SpanEvent),
            Metric => matches!(other, Resource | Scope | Metric),
            DataPoint => matches!(other, Resource | Scope | Metric | DataPoint),
            Log => matches!(other, Resource | Scope | Log),
        }
    }
}

/// A data point of any metric type.
pub enum PointMut<'a> {
    Number(&'a mut NumberDataPoint),
    Histogram(&'a mut HistogramDataPoint),
    ExpHistogram(&'a mut ExponentialHistogramDataPoint),
    Summary(&'a mut SummaryDataPoint),
}

/// What one run of a statement sees. The walker that fills it owns the
/// batch; the parts above the item (resource, scope) are shared by the
/// items beneath them, so a change to them is seen by the next item.
#[derive(Default)]
pub struct EvalCtx<'a> {
    pub resource: Option<&'a mut Option<Resource>>,
    pub scope: Option<&'a mut Option<InstrumentationScope>>,
    pub span: Option<&'a mut Span>,
    pub event: Option<&'a mut Event>,
    pub metric: Option<&'a mut Metric>,
    /// In the data point context the metric's data is taken out while its
    /// points are visited: its type as it was.
    pub metric_type: Option<i64>,
    pub point: Option<PointMut<'a>>,
    pub log: Option<&'a mut LogRecord>,
    /// `cache`: a map for one item's statements.
    pub cache: Vec<KeyValue>,
    /// Wall-clock time for `Now()`, in Unix nanoseconds (given, never read).
    pub now_unix_nanos: i64,
}

/// One field a path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    ResourceAttributes,
    ResourceDroppedAttributesCount,
    ScopeName,
    ScopeVersion,
    ScopeAttributes,
    ScopeDroppedAttributesCount,
    SpanTraceId,
    SpanTraceIdString,
    SpanId,
    SpanIdString,
    SpanParentSpanId,
    SpanParentSpanIdString,
    SpanTraceState,
    SpanName,
    SpanKind,
    SpanKindString,
    SpanKindDeprecatedString,
    SpanStartTimeUnixNano,
    SpanEndTimeUnixNano,
    SpanStartTime,
    SpanEndTime,
    SpanAttributes,
    SpanDroppedAttributesCount,
    SpanDroppedEventsCount,
    SpanDroppedLinksCount,
    SpanStatusCode,
    SpanStatusMessage,
    SpanFlags,
    EventName,
    EventTimeUnixNano,
    EventTime,
    EventAttributes,
    EventDroppedAttributesCount,
    MetricName,
    MetricDescription,
    MetricUnit,
    MetricType,
    MetricAggregationTemporality,
    MetricIsMonotonic,
    PointAttributes,
    PointStartTimeUnixNano,
    PointTimeUnixNano,
    PointStartTime,
    PointTime,
    PointValueDouble,
    PointValueInt,
    PointFlags,
    PointCount,
    PointSum,
    LogTimeUnixNano,
    LogObservedTimeUnixNano,
    LogTime,
    LogObservedTime,
    LogSeverityNumber,
    LogSeverityText,
    LogBody,
    LogBodyString,
    LogAttributes,
    LogDroppedAttributesCount,
    LogFlags,
    LogTraceId,
    LogTraceIdString,
    LogSpanId,
    LogSpanIdString,
    LogEventName,
    Cache,
}

/// The paths of each context, as written after the context's name.
pub fn fields_of(ctx: ContextKind) -> &'static [(&'static str, Field)] {
    use Field::*;
    match ctx {
        ContextKind::Resource => {
            &[("attributes", ResourceAttributes), ("dropped_attributes_count", ResourceDroppedAttributesCount)]
        }
        ContextKind::Scope => &[
            ("name", ScopeName),
            ("version", ScopeVersion),
            ("attributes", ScopeAttributes),
            ("dropped_attributes_count", ScopeDroppedAttributesCount),
        ],
        ContextKind::Span => &[
            ("trace_id", SpanTraceId),
            ("trace_id.string", SpanTraceIdString),
            ("span_id", SpanId),
            ("span_id.string", SpanIdString),
            ("parent_span_id", SpanParentSpanId),
            ("parent_span_id.string", SpanParentSpanIdString),
            ("trace_state", SpanTraceState),
            ("name", SpanName),
            ("kind", SpanKind),
            ("kind.string", SpanKindString),
            ("kind.deprecated_string", SpanKindDeprecatedString),
            ("start_time_unix_nano", SpanStartTimeUnixNano),
            ("end_time_unix_nano", SpanEndTimeUnixNano),
            ("start_time", SpanStartTime),
            ("end_time", SpanEndTime),
            ("attributes", SpanAttributes),
            ("dropped_attributes_count", SpanDroppedAttributesCount),
            ("dropped_events_count", SpanDroppedEventsCount),
            ("dropped_links_count", SpanDroppedLinksCount),
            ("status.code", SpanStatusCode),
            ("status.message", SpanStatusMessage),
            ("flags", SpanFlags),
        ],
        ContextKind::SpanEvent => &[
            ("name", EventName),
            ("time_unix_nano", EventTimeUnixNano),
            ("time", EventTime),
            ("attributes", EventAttributes),
            ("dropped_attributes_count", EventDroppedAttributesCount),
        ],
        ContextKind::Metric => &[
            ("name", MetricName),
            ("description", MetricDescription),
            ("unit", MetricUnit),
            ("type", MetricType),
            ("aggregation_temporality", MetricAggregationTemporality),
            ("is_monotonic", MetricIsMonotonic),
        ],
        ContextKind::DataPoint => &[
            ("attributes", PointAttributes),
            ("start_time_unix_nano", PointStartTimeUnixNano),
            ("time_unix_nano", PointTimeUnixNano),
            ("start_time", PointStartTime),
            ("time", PointTime),
            ("value_double", PointValueDouble),
            ("value_int", PointValueInt),
            ("flags", PointFlags),
            ("count", PointCount),
            ("sum", PointSum),
        ],
        ContextKind::Log => &[
            ("time_unix_nano", LogTimeUnixNano),
            ("observed_time_unix_nano", LogObservedTimeUnixNano),
            ("time", LogTime),
            ("observed_time", LogObservedTime),
            ("severity_number", LogSeverityNumber),
            ("severity_text", LogSeverityText),
            ("body", LogBody),
            ("body.string", LogBodyString),
            ("attributes", LogAttributes),
            ("dropped_attributes_count", LogDroppedAttributesCount),
            ("flags", LogFlags),
            ("trace_id", LogTraceId),
            ("trace_id.string", LogTraceIdString),
            ("span_id", LogSpanId),
            ("span_id.string", LogSpanIdString),
            ("event_name", LogEventName),
        ],
    }
}

impl Field {
    /// Whether `[key]` may follow it.
    pub fn indexable(self) -> bool {
        use Field::*;
        matches!(
            self,
            ResourceAttributes
                | ScopeAttributes
                | SpanAttributes
                | EventAttributes
                | PointAttributes
                | LogAttributes
                | LogBody
                | Cache
        )
    }
}

/// A key of a path, evaluated.
pub enum KeyVal<'k> {
    Str(Cow<'k, str>),
    Int(i64),
}

const SPAN_KIND_STRINGS: [&str; 6] = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"];
const SPAN_KIND_DEPRECATED: [&str; 6] = [
    "SPAN_KIND_UNSPECIFIED",
    "SPAN_KIND_INTERNAL",
    "SPAN_KIND_SERVER",
    "SPAN_KIND_CLIENT",
    "SPAN_KIND_PRODUCER",
    "SPAN_KIND_CONSUMER",
];

fn id_hex(b: &[u8]) -> Value<'static> {
    // The Collector prints an empty ID as the empty string.
    if b.iter().all(|x| *x == 0) {
        Value::string(String::new())
    } else {
        Value::string(hex(b))
    }
}

fn u64v(n: u64) -> Value<'static> {
    Value::Int(n.min(i64::MAX as u64) as i64)
}

fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Int(i) if *i >= 0 => Some(*i as u64),
        Value::Time(t) if *t >= 0 => Some(*t as u64),
        _ => None,
    }
}

fn attrs_value(a: &[KeyValue]) -> Value<'_> {
    Value::Map(Cow::Borrowed(a))
}

pub fn metric_type_of(m: &Metric) -> i64 {
    match &m.data {
        None => 0,
        Some(Data::Gauge(_)) => 1,
        Some(Data::Sum(_)) => 2,
        Some(Data::Histogram(_)) => 3,
        Some(Data::ExponentialHistogram(_)) => 4,
        Some(Data::Summary(_)) => 5,
    }
}

impl<'a> EvalCtx<'a> {
    fn res(&self) -> Option<&Resource> {
        self.resource.as_deref().and_then(|r| r.as_ref())
    }
    fn scope_ref(&self) -> Option<&InstrumentationScope> {
        self.scope.as_deref().and_then(|s| s.as_ref())
    }

    fn missing<T>(what: &str) -> Result<T, EvalError> {
        eval_err(format!("no {what} in this context"))
    }

    /// Reads a field (without keys).
    pub fn get(&self, f: Field) -> Result<Value<'_>, EvalError> {
        use Field::*;
        Ok(match f {
            ResourceAttributes => attrs_value(self.res().map_or(&[][..], |r| &r.attributes)),
            ResourceDroppedAttributesCount => Value::Int(self.res().map_or(0, |r| r.dropped_attributes_count as i64)),
            ScopeName => Value::str(self.scope_ref().map_or("", |s| &s.name)),
            ScopeVersion => Value::str(self.scope_ref().map_or("", |s| &s.version)),
            ScopeAttributes => attrs_value(self.scope_ref().map_or(&[][..], |s| &s.attributes)),
            ScopeDroppedAttributesCount => {
                Value::Int(self.scope_ref().map_or(0, |s| s.dropped_attributes_count as i64))
            }
            Cache => attrs_value(&self.cache),
            SpanTraceId
            | SpanTraceIdString
            | SpanId
            | SpanIdString
            | SpanParentSpanId
            | SpanParentSpanIdString
            | SpanTraceState
            | SpanName
            | SpanKind
            | SpanKindString
            | SpanKindDeprecatedString
            | SpanStartTimeUnixNano
            | SpanEndTimeUnixNano
            | SpanStartTime
            | SpanEndTime
            | SpanAttributes
            | SpanDroppedAttributesCount
            | SpanDroppedEventsCount
            | SpanDroppedLinksCount
            | SpanStatusCode
            | SpanStatusMessage
            | SpanFlags => {
                let Some(s) = self.span.as_deref() else { return Self::missing("span") };
                match f {
                    SpanTraceId => Value::Bytes(Cow::Borrowed(&s.trace_id)),
                    SpanTraceIdString => id_hex(&s.trace_id),
                    SpanId => Value::Bytes(Cow::Borrowed(&s.span_id)),
                    SpanIdString => id_hex(&s.span_id),
                    SpanParentSpanId => Value::Bytes(Cow::Borrowed(&s.parent_span_id)),
                    SpanParentSpanIdString => id_hex(&s.parent_span_id),
                    SpanTraceState => Value::str(&s.trace_state),
                    SpanName => Value::str(&s.name),
                    SpanKind => Value::Int(s.kind as i64),
                    SpanKindString => Value::str(SPAN_KIND_STRINGS.get(s.kind as usize).copied().unwrap_or("")),
                    SpanKindDeprecatedString => {
                        Value::str(SPAN_KIND_DEPRECATED.get(s.kind as usize).copied().unwrap_or(""))
                    }
                    SpanStartTimeUnixNano => u64v(s.start_time_unix_nano),
                    SpanEndTimeUnixNano => u64v(s.end_time_unix_nano),
                    SpanStartTime => Value::Time(s.start_time_unix_nano.min(i64::MAX as u64) as i64),
                    SpanEndTime => Value::Time(s.end_time_unix_nano.min(i64::MAX as u64) as i64),
                    SpanAttributes => attrs_value(&s.attributes),
                    SpanDroppedAttributesCount => Value::Int(s.dropped_attributes_count as i64),
                    SpanDroppedEventsCount => Value::Int(s.dropped_events_count as i64),
                    SpanDroppedLinksCount => Value::Int(s.dropped_links_count as i64),
                    SpanStatusCode => Value::Int(s.status.as_ref().map_or(0, |st| st.code as i64)),
                    SpanStatusMessage => Value::str(s.status.as_ref().map_or("", |st| &st.message)),
                    _ => Value::Int(s.flags as i64),
                }
            }
            EventName | EventTimeUnixNano | EventTime | EventAttributes | EventDroppedAttributesCount => {
                let Some(e) = self.event.as_deref() else { return Self::missing("span event") };
                match f {
                    EventName => Value::str(&e.name),
                    EventTimeUnixNano => u64v(e.time_unix_nano),
                    EventTime => Value::Time(e.time_unix_nano.min(i64::MAX as u64) as i64),
                    EventAttributes => attrs_value(&e.attributes),
                    _ => Value::Int(e.dropped_attributes_count as i64),
                }
            }
            MetricName
            | MetricDescription
            | MetricUnit
            | MetricType
            | MetricAggregationTemporality
            | MetricIsMonotonic => {
                let Some(m) = self.metric.as_deref() else { return Self::missing("metric") };
                match f {
                    MetricName => Value::str(&m.name),
                    MetricDescription => Value::str(&m.description),
                    MetricUnit => Value::str(&m.unit),
                    MetricType => Value::Int(self.metric_type.unwrap_or_else(|| metric_type_of(m))),
                    MetricAggregationTemporality => Value::Int(match &m.data {
                        Some(Data::Sum(s)) => s.aggregation_temporality as i64,
                        Some(Data::Histogram(h)) => h.aggregation_temporality as i64,
                        Some(Data::ExponentialHistogram(h)) => h.aggregation_temporality as i64,
                        _ => 0,
                    }),
                    _ => Value::Bool(matches!(&m.data, Some(Data::Sum(s)) if s.is_monotonic)),
                }
            }
            PointAttributes
            | PointStartTimeUnixNano
            | PointTimeUnixNano
            | PointStartTime
            | PointTime
            | PointValueDouble
            | PointValueInt
            | PointFlags
            | PointCount
            | PointSum => {
                let Some(p) = self.point.as_ref() else { return Self::missing("data point") };
                let (attrs, start, time, flags) = match p {
                    PointMut::Number(p) => (&p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags),
                    PointMut::Histogram(p) => (&p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags),
                    PointMut::ExpHistogram(p) => (&p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags),
                    PointMut::Summary(p) => (&p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags),
                };
                match f {
                    PointAttributes => attrs_value(attrs),
                    PointStartTimeUnixNano => u64v(start),
                    PointTimeUnixNano => u64v(time),
                    PointStartTime => Value::Time(start.min(i64::MAX as u64) as i64),
                    PointTime => Value::Time(time.min(i64::MAX as u64) as i64),
                    PointFlags => Value::Int(flags as i64),
                    PointValueDouble => match p {
                        PointMut::Number(n) => match n.value {
                            Some(number_data_point::Value::AsDouble(d)) => Value::Double(d),
                            _ => Value::Double(0.0),
                        },
                        _ => Value::Nil,
                    },
                    PointValueInt => match p {
                        PointMut::Number(n) => match n.value {
                            Some(number_data_point::Value::AsInt(i)) => Value::Int(i),
                            _ => Value::Int(0),
                        },
                        _ => Value::Nil,
                    },
                    PointCount => match p {
                        PointMut::Histogram(h) => u64v(h.count),
                        PointMut::ExpHistogram(h) => u64v(h.count),
                        PointMut::Summary(s) => u64v(s.count),
                        PointMut::Number(_) => Value::Nil,
                    },
                    _ => match p {
                        PointMut::Histogram(h) => Value::Double(h.sum.unwrap_or(0.0)),
                        PointMut::ExpHistogram(h) => Value::Double(h.sum.unwrap_or(0.0)),
                        PointMut::Summary(s) => Value::Double(s.sum),
                        PointMut::Number(_) => Value::Nil,
                    },
                }
            }
            LogTimeUnixNano
            | LogObservedTimeUnixNano
            | LogTime
            | LogObservedTime
            | LogSeverityNumber
            | LogSeverityText
            | LogBody
            | LogBodyString
            | LogAttributes
            | LogDroppedAttributesCount
            | LogFlags
            | LogTraceId
            | LogTraceIdString
            | LogSpanId
            | LogSpanIdString
            | LogEventName => {
                let Some(l) = self.log.as_deref() else { return Self::missing("log record") };
                match f {
                    LogTimeUnixNano => u64v(l.time_unix_nano),
                    LogObservedTimeUnixNano => u64v(l.observed_time_unix_nano),
                    LogTime => Value::Time(l.time_unix_nano.min(i64::MAX as u64) as i64),
                    LogObservedTime => Value::Time(l.observed_time_unix_nano.min(i64::MAX as u64) as i64),
                    LogSeverityNumber => Value::Int(l.severity_number as i64),
                    LogSeverityText => Value::str(&l.severity_text),
                    LogBody => Value::from_any_opt(l.body.as_ref()),
                    LogBodyString => match Value::from_any_opt(l.body.as_ref()) {
                        Value::Nil => Value::str(""),
                        v => Value::string(v.to_string_like().map(|s| s.into_owned()).unwrap_or_default()),
                    },
                    LogAttributes => attrs_value(&l.attributes),
                    LogDroppedAttributesCount => Value::Int(l.dropped_attributes_count as i64),
                    LogFlags => Value::Int(l.flags as i64),
                    LogTraceId => Value::Bytes(Cow::Borrowed(&l.trace_id)),
                    LogTraceIdString => id_hex(&l.trace_id),
                    LogSpanId => Value::Bytes(Cow::Borrowed(&l.span_id)),
                    LogSpanIdString => id_hex(&l.span_id),
                    _ => Value::str(&l.event_name),
                }
            }
        })
    }

    /// The value of `key` in an attribute map that exists (nothing is
    /// created: a missing resource, scope or key is `None`).
    pub fn attribute_mut(&mut self, f: Field, key: &str) -> Option<&mut AnyValue> {
        use Field::*;
        let map = match f {
            ResourceAttributes => &mut self.resource.as_deref_mut()?.as_mut()?.attributes,
            ScopeAttributes => &mut self.scope.as_deref_mut()?.as_mut()?.attributes,
            LogBody => return None,
            _ => self.map_mut(f)?,
        };
        map.iter_mut().find(|kv| kv.key == key)?.value.as_mut()
    }

    /// The attribute map a field is, created where missing (a resource or
    /// scope that was absent). `None` for a field that is not a map.
    pub fn map_mut(&mut self, f: Field) -> Option<&mut Vec<KeyValue>> {
        use Field::*;
        Some(match f {
            ResourceAttributes => &mut self.resource.as_deref_mut()?.get_or_insert_with(Default::default).attributes,
            ScopeAttributes => &mut self.scope.as_deref_mut()?.get_or_insert_with(Default::default).attributes,
            SpanAttributes => &mut self.span.as_deref_mut()?.attributes,
            EventAttributes => &mut self.event.as_deref_mut()?.attributes,
            PointAttributes => match self.point.as_mut()? {
                PointMut::Number(p) => &mut p.attributes,
                PointMut::Histogram(p) => &mut p.attributes,
                PointMut::ExpHistogram(p) => &mut p.attributes,
                PointMut::Summary(p) => &mut p.attributes,
            },
            LogAttributes => &mut self.log.as_deref_mut()?.attributes,
            Cache => &mut self.cache,
            LogBody => {
                let body = self.log.as_deref_mut()?.body.get_or_insert(AnyValue { value: None });
                match &mut body.value {
                    Some(Av::KvlistValue(m)) => &mut m.values,
                    _ => return None,
                }
            }
            _ => return None,
        })
    }

    /// The value slot at `field[keys...]` (keys non-empty), created along
    /// the way when `create` (maps are made for missing string keys; list
    /// indexes must exist).
    pub fn slot_mut(&mut self, f: Field, keys: &[KeyVal], create: bool) -> Result<Option<&mut AnyValue>, EvalError> {
        let Some((first, rest)) = keys.split_first() else { return eval_err("a path without keys has no slot") };
        let mut cur: &mut AnyValue = if f == Field::LogBody {
            let Some(l) = self.log.as_deref_mut() else { return Self::missing("log record") };
            l.body.get_or_insert(AnyValue { value: None })
        } else {
            let Some(map) = self.map_mut(f) else { return eval_err("the path is not a map") };
            let KeyVal::Str(k) = first else { return eval_err("a map is indexed by a string key") };
            match map.iter().position(|kv| kv.key == *k) {
                Some(i) => map[i].value.get_or_insert(AnyValue { value: None }),
                None if create => {
                    map.push(KeyValue {
                        key: k.to_string(),
                        value: Some(AnyValue { value: None }),
                        ..Default::default()
                    });
                    map.last_mut().and_then(|kv| kv.value.as_mut()).expect("just pushed")
                }
                None => return Ok(None),
            }
        };
        let keys = if f == Field::LogBody { keys } else { rest };
        for k in keys {
            cur = match (k, &mut cur.value) {
                (KeyVal::Str(k), Some(Av::KvlistValue(m))) => match m.values.iter().position(|kv| kv.key == *k) {
                    Some(i) => m.values[i].value.get_or_insert(AnyValue { value: None }),
                    None if create => {
                        m.values.push(KeyValue {
                            key: k.to_string(),
                            value: Some(AnyValue { value: None }),
                            ..Default::default()
                        });
                        m.values.last_mut().and_then(|kv| kv.value.as_mut()).expect("just pushed")
                    }
                    None => return Ok(None),
                },
                (KeyVal::Str(k), v @ None) if create => {
                    *v = Some(Av::KvlistValue(KeyValueList {
                        values: vec![KeyValue {
                            key: k.to_string(),
                            value: Some(AnyValue { value: None }),
                            ..Default::default()
                        }],
                    }));
                    match v {
                        Some(Av::KvlistValue(m)) => m.values[0].value.as_mut().expect("just made"),
                        _ => unreachable!("just made a map"),
                    }
                }
                (KeyVal::Int(i), Some(Av::ArrayValue(a))) => {
                    let len = a.values.len();
                    match usize::try_from(*i).ok().and_then(|i| a.values.get_mut(i)) {
                        Some(v) => v,
                        None => return eval_err(format!("index {i} out of range for a list of {len}")),
                    }
                }
                (KeyVal::Int(_), _) => return eval_err("only a list is indexed by an integer"),
                (KeyVal::Str(_), None) => return Ok(None),
                (KeyVal::Str(_), _) => return eval_err("only a map is indexed by a string"),
            };
        }
        Ok(Some(cur))
    }

    /// Writes a field (without keys). A value of a type the field cannot
    /// hold changes nothing, as in the Collector.
    pub fn set(&mut self, f: Field, v: Value<'static>) -> Result<(), EvalError> {
        use Field::*;
        let ss = |v: &Value| match v {
            Value::Str(s) => Some(s.to_string()),
            _ => None,
        };
        let int = |v: &Value| match v {
            Value::Int(i) => Some(*i),
            _ => None,
        };
        let id = |v: &Value, len: usize| match v {
            Value::Bytes(b) if b.len() == len => Some(b.to_vec()),
            _ => None,
        };
        let id_str = |v: &Value, len: usize| match v {
            Value::Str(s) => unhex(s).filter(|b| b.len() == len),
            _ => None,
        };
        macro_rules! put {
            ($target:expr, $val:expr) => {
                if let Some(x) = $val {
                    $target = x;
                }
            };
        }
        match f {
            ResourceAttributes | ScopeAttributes | SpanAttributes | EventAttributes | PointAttributes
            | LogAttributes | Cache => {
                if let Value::Map(m) = v {
                    if let Some(map) = self.map_mut(f) {
                        *map = m.into_owned();
                    }
                }
            }
            ResourceDroppedAttributesCount => {
                if let (Some(r), Some(i)) = (self.resource.as_deref_mut(), int(&v)) {
                    r.get_or_insert_with(Default::default).dropped_attributes_count = i as u32;
                }
            }
            ScopeName | ScopeVersion | ScopeDroppedAttributesCount => {
                let Some(s) = self.scope.as_deref_mut() else { return Self::missing("scope") };
                let s = s.get_or_insert_with(Default::default);
                match f {
                    ScopeName => put!(s.name, ss(&v)),
                    ScopeVersion => put!(s.version, ss(&v)),
                    _ => put!(s.dropped_attributes_count, int(&v).map(|i| i as u32)),
                }
            }
            SpanTraceId
            | SpanTraceIdString
            | SpanId
            | SpanIdString
            | SpanParentSpanId
            | SpanParentSpanIdString
            | SpanTraceState
            | SpanName
            | SpanKind
            | SpanKindString
            | SpanKindDeprecatedString
            | SpanStartTimeUnixNano
            | SpanEndTimeUnixNano
            | SpanStartTime
            | SpanEndTime
            | SpanDroppedAttributesCount
            | SpanDroppedEventsCount
            | SpanDroppedLinksCount
            | SpanStatusCode
            | SpanStatusMessage
            | SpanFlags => {
                let Some(s) = self.span.as_deref_mut() else { return Self::missing("span") };
                match f {
                    SpanTraceId => put!(s.trace_id, id(&v, 16)),
                    SpanTraceIdString => put!(s.trace_id, id_str(&v, 16)),
                    SpanId => put!(s.span_id, id(&v, 8)),
                    SpanIdString => put!(s.span_id, id_str(&v, 8)),
                    SpanParentSpanId => put!(s.parent_span_id, id(&v, 8)),
                    SpanParentSpanIdString => put!(s.parent_span_id, id_str(&v, 8)),
                    SpanTraceState => put!(s.trace_state, ss(&v)),
                    SpanName => put!(s.name, ss(&v)),
                    SpanKind => put!(s.kind, int(&v).map(|i| i as i32)),
                    SpanKindString => put!(
                        s.kind,
                        ss(&v).and_then(|t| SPAN_KIND_STRINGS.iter().position(|k| *k == t)).map(|i| i as i32)
                    ),
                    SpanKindDeprecatedString => put!(
                        s.kind,
                        ss(&v).and_then(|t| SPAN_KIND_DEPRECATED.iter().position(|k| *k == t)).map(|i| i as i32)
                    ),
                    SpanStartTimeUnixNano | SpanStartTime => put!(s.start_time_unix_nano, as_u64(&v)),
                    SpanEndTimeUnixNano | SpanEndTime => put!(s.end_time_unix_nano, as_u64(&v)),
                    SpanDroppedAttributesCount => put!(s.dropped_attributes_count, int(&v).map(|i| i as u32)),
                    SpanDroppedEventsCount => put!(s.dropped_events_count, int(&v).map(|i| i as u32)),
                    SpanDroppedLinksCount => put!(s.dropped_links_count, int(&v).map(|i| i as u32)),
                    SpanStatusCode => {
                        if let Some(i) = int(&v) {
                            s.status.get_or_insert_with(Status::default).code = i as i32;
                        }
                    }
                    SpanStatusMessage => {
                        if let Some(m) = ss(&v) {
                            s.status.get_or_insert_with(Status::default).message = m;
                        }
                    }
                    _ => put!(s.flags, int(&v).map(|i| i as u32)),
                }
            }
            EventName | EventTimeUnixNano | EventTime | EventDroppedAttributesCount => {
                let Some(e) = self.event.as_deref_mut() else { return Self::missing("span event") };
                match f {
                    EventName => put!(e.name, ss(&v)),
                    EventTimeUnixNano | EventTime => put!(e.time_unix_nano, as_u64(&v)),
                    _ => put!(e.dropped_attributes_count, int(&v).map(|i| i as u32)),
                }
            }
            MetricName
            | MetricDescription
            | MetricUnit
            | MetricType
            | MetricAggregationTemporality
            | MetricIsMonotonic => {
                let Some(m) = self.metric.as_deref_mut() else { return Self::missing("metric") };
                match f {
                    MetricName => put!(m.name, ss(&v)),
                    MetricDescription => put!(m.description, ss(&v)),
                    MetricUnit => put!(m.unit, ss(&v)),
                    MetricAggregationTemporality => {
                        if let Some(t) = int(&v) {
                            match &mut m.data {
                                Some(Data::Sum(s)) => s.aggregation_temporality = t as i32,
                                Some(Data::Histogram(h)) => h.aggregation_temporality = t as i32,
                                Some(Data::ExponentialHistogram(h)) => h.aggregation_temporality = t as i32,
                                _ => {}
                            }
                        }
                    }
                    MetricIsMonotonic => {
                        if let (Value::Bool(b), Some(Data::Sum(s))) = (&v, &mut m.data) {
                            s.is_monotonic = *b;
                        }
                    }
                    _ => return eval_err("metric.type cannot be set; use the convert_* functions"),
                }
            }
            PointStartTimeUnixNano
            | PointTimeUnixNano
            | PointStartTime
            | PointTime
            | PointValueDouble
            | PointValueInt
            | PointFlags
            | PointCount
            | PointSum => {
                let Some(p) = self.point.as_mut() else { return Self::missing("data point") };
                match (f, p) {
                    (PointValueDouble, PointMut::Number(n)) => {
                        if let Value::Double(d) = v {
                            n.value = Some(number_data_point::Value::AsDouble(d));
                        }
                    }
                    (PointValueInt, PointMut::Number(n)) => {
                        if let Value::Int(i) = v {
                            n.value = Some(number_data_point::Value::AsInt(i));
                        }
                    }
                    (PointStartTimeUnixNano | PointStartTime, p) => {
                        if let Some(t) = as_u64(&v) {
                            *match p {
                                PointMut::Number(p) => &mut p.start_time_unix_nano,
                                PointMut::Histogram(p) => &mut p.start_time_unix_nano,
                                PointMut::ExpHistogram(p) => &mut p.start_time_unix_nano,
                                PointMut::Summary(p) => &mut p.start_time_unix_nano,
                            } = t;
                        }
                    }
                    (PointTimeUnixNano | PointTime, p) => {
                        if let Some(t) = as_u64(&v) {
                            *match p {
                                PointMut::Number(p) => &mut p.time_unix_nano,
                                PointMut::Histogram(p) => &mut p.time_unix_nano,
                                PointMut::ExpHistogram(p) => &mut p.time_unix_nano,
                                PointMut::Summary(p) => &mut p.time_unix_nano,
                            } = t;
                        }
                    }
                    (PointFlags, p) => {
                        if let Some(i) = int(&v) {
                            *match p {
                                PointMut::Number(p) => &mut p.flags,
                                PointMut::Histogram(p) => &mut p.flags,
                                PointMut::ExpHistogram(p) => &mut p.flags,
                                PointMut::Summary(p) => &mut p.flags,
                            } = i as u32;
                        }
                    }
                    (PointCount, PointMut::Histogram(h)) => put!(h.count, as_u64(&v)),
                    (PointCount, PointMut::ExpHistogram(h)) => put!(h.count, as_u64(&v)),
                    (PointCount, PointMut::Summary(s)) => put!(s.count, as_u64(&v)),
                    (PointSum, PointMut::Histogram(h)) => {
                        if let Value::Double(d) = v {
                            h.sum = Some(d)
                        }
                    }
                    (PointSum, PointMut::ExpHistogram(h)) => {
                        if let Value::Double(d) = v {
                            h.sum = Some(d)
                        }
                    }
                    (PointSum, PointMut::Summary(s)) => {
                        if let Value::Double(d) = v {
                            s.sum = d
                        }
                    }
                    _ => {}
                }
            }
            LogTimeUnixNano
            | LogObservedTimeUnixNano
            | LogTime
            | LogObservedTime
            | LogSeverityNumber
            | LogSeverityText
            | LogBody
            | LogBodyString
            | LogDroppedAttributesCount
            | LogFlags
            | LogTraceId
            | LogTraceIdString
            | LogSpanId
            | LogSpanIdString
            | LogEventName => {
                let Some(l) = self.log.as_deref_mut() else { return Self::missing("log record") };
                match f {
                    LogTimeUnixNano | LogTime => put!(l.time_unix_nano, as_u64(&v)),
                    LogObservedTimeUnixNano | LogObservedTime => put!(l.observed_time_unix_nano, as_u64(&v)),
                    LogSeverityNumber => put!(l.severity_number, int(&v).map(|i| i as i32)),
                    LogSeverityText => put!(l.severity_text, ss(&v)),
                    LogBody => l.body = Some(any_or_empty(v)),
                    LogBodyString => {
                        if let Some(s) = ss(&v) {
                            l.body = Some(AnyValue { value: Some(Av::StringValue(s)) });
                        }
                    }
                    LogDroppedAttributesCount => put!(l.dropped_attributes_count, int(&v).map(|i| i as u32)),
                    LogFlags => put!(l.flags, int(&v).map(|i| i as u32)),
                    LogTraceId => put!(l.trace_id, id(&v, 16)),
                    LogTraceIdString => put!(l.trace_id, id_str(&v, 16)),
                    LogSpanId => put!(l.span_id, id(&v, 8)),
                    LogSpanIdString => put!(l.span_id, id_str(&v, 8)),
                    _ => put!(l.event_name, ss(&v)),
                }
            }
        }
        Ok(())
    }
}

/// Enums the grammar knows, by name.
pub const ENUMS: &[(&str, i64)] = &[
    ("SPAN_KIND_UNSPECIFIED", 0),
    ("SPAN_KIND_INTERNAL", 1),
    ("SPAN_KIND_SERVER", 2),
    ("SPAN_KIND_CLIENT", 3),
    ("SPAN_KIND_PRODUCER", 4),
    ("SPAN_KIND_CONSUMER", 5),
    ("STATUS_CODE_UNSET", 0),
    ("STATUS_CODE_OK", 1),
    ("STATUS_CODE_ERROR", 2),
    ("SEVERITY_NUMBER_UNSPECIFIED", 0),
    ("SEVERITY_NUMBER_TRACE", 1),
    ("SEVERITY_NUMBER_TRACE2", 2),
    ("SEVERITY_NUMBER_TRACE3", 3),
    ("SEVERITY_NUMBER_TRACE4", 4),
    ("SEVERITY_NUMBER_DEBUG", 5),
    ("SEVERITY_NUMBER_DEBUG2", 6),
    ("SEVERITY_NUMBER_DEBUG3", 7),
    ("SEVERITY_NUMBER_DEBUG4", 8),
    ("SEVERITY_NUMBER_INFO", 9),
    ("SEVERITY_NUMBER_INFO2", 10),
    ("SEVERITY_NUMBER_INFO3", 11),
    ("SEVERITY_NUMBER_INFO4", 12),
    ("SEVERITY_NUMBER_WARN", 13),
    ("SEVERITY_NUMBER_WARN2", 14),
    ("SEVERITY_NUMBER_WARN3", 15),
    ("SEVERITY_NUMBER_WARN4", 16),
    ("SEVERITY_NUMBER_ERROR", 17),
    ("SEVERITY_NUMBER_ERROR2", 18),
    ("SEVERITY_NUMBER_ERROR3", 19),
    ("SEVERITY_NUMBER_ERROR4", 20),
    ("SEVERITY_NUMBER_FATAL", 21),
    ("SEVERITY_NUMBER_FATAL2", 22),
    ("SEVERITY_NUMBER_FATAL3", 23),
    ("SEVERITY_NUMBER_FATAL4", 24),
    ("METRIC_DATA_TYPE_NONE", 0),
    ("METRIC_DATA_TYPE_GAUGE", 1),
    ("METRIC_DATA_TYPE_SUM", 2),
    ("METRIC_DATA_TYPE_HISTOGRAM", 3),
    ("METRIC_DATA_TYPE_EXPONENTIAL_HISTOGRAM", 4),
    ("METRIC_DATA_TYPE_SUMMARY", 5),
    ("AGGREGATION_TEMPORALITY_UNSPECIFIED", 0),
    ("AGGREGATION_TEMPORALITY_DELTA", 1),
    ("AGGREGATION_TEMPORALITY_CUMULATIVE", 2),
    ("FLAG_NONE", 0),
    ("FLAG_NO_RECORDED_VALUE", 1),
];
