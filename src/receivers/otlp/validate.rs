//! Structural checks a decoded request must pass before it enters a pipeline,
//! shared by the gRPC and HTTP transports.
//!
//! Guarantee: every span that passes has a 16-byte trace ID, an 8-byte span ID
//! and an empty or 8-byte parent span ID; every log record an empty or 16-byte
//! trace ID and an empty or 8-byte span ID. Processors shard and hash by these
//! IDs, so a request with a malformed one is rejected whole, naming the item.

use crate::data::Batch;
use opentelemetry_proto::tonic::collector::{logs::v1::ExportLogsServiceRequest, trace::v1::ExportTraceServiceRequest};

/// The first malformed item found, with its position in the request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {field} must be {expected}, got {got}")]
pub struct ValidationError {
    /// e.g. `resource_spans[0].scope_spans[0].spans[3]`
    pub path: String,
    pub field: &'static str,
    pub expected: &'static str,
    /// Length in bytes of the value found.
    pub got: usize,
}

pub fn validate(batch: &Batch) -> Result<(), ValidationError> {
    match batch {
        Batch::Traces(r) => validate_traces(r),
        // Metric exemplars carry IDs too, but nothing downstream keys on them.
        Batch::Metrics(_) => Ok(()),
        Batch::Logs(r) => validate_logs(r),
    }
}

fn check(
    ok: bool,
    path: impl FnOnce() -> String,
    field: &'static str,
    expected: &'static str,
    got: usize,
) -> Result<(), ValidationError> {
    if ok {
        Ok(())
    } else {
        Err(ValidationError { path: path(), field, expected, got })
    }
}

pub fn validate_traces(r: &ExportTraceServiceRequest) -> Result<(), ValidationError> {
    for (i, rs) in r.resource_spans.iter().enumerate() {
        for (j, ss) in rs.scope_spans.iter().enumerate() {
            for (k, span) in ss.spans.iter().enumerate() {
                let path = || format!("resource_spans[{i}].scope_spans[{j}].spans[{k}]");
                check(span.trace_id.len() == 16, path, "trace_id", "16 bytes", span.trace_id.len())?;
                check(span.span_id.len() == 8, path, "span_id", "8 bytes", span.span_id.len())?;
                let p = span.parent_span_id.len();
                check(p == 0 || p == 8, path, "parent_span_id", "empty or 8 bytes", p)?;
            }
        }
    }
    Ok(())
}

pub fn validate_logs(r: &ExportLogsServiceRequest) -> Result<(), ValidationError> {
    for (i, rl) in r.resource_logs.iter().enumerate() {
        for (j, sl) in rl.scope_logs.iter().enumerate() {
            for (k, rec) in sl.log_records.iter().enumerate() {
                let path = || format!("resource_logs[{i}].scope_logs[{j}].log_records[{k}]");
                let t = rec.trace_id.len();
                check(t == 0 || t == 16, path, "trace_id", "empty or 16 bytes", t)?;
                let s = rec.span_id.len();
                check(s == 0 || s == 8, path, "span_id", "empty or 8 bytes", s)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn span(trace: usize, span: usize, parent: usize) -> Span {
        Span { trace_id: vec![1; trace], span_id: vec![2; span], parent_span_id: vec![3; parent], ..Default::default() }
    }

    fn traces(spans: Vec<Span>) -> Batch {
        Batch::Traces(ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        })
    }

    #[test]
    fn good_spans_pass() {
        assert_eq!(validate(&traces(vec![span(16, 8, 0), span(16, 8, 8)])), Ok(()));
    }

    #[test]
    fn names_the_offending_span() {
        let b = traces(vec![span(16, 8, 0), span(16, 8, 0), span(16, 8, 0), span(5, 8, 0)]);
        let err = validate(&b).unwrap_err();
        assert_eq!(err.to_string(), "resource_spans[0].scope_spans[0].spans[3]: trace_id must be 16 bytes, got 5");
        let err = validate(&traces(vec![span(16, 0, 0)])).unwrap_err();
        assert_eq!(err.to_string(), "resource_spans[0].scope_spans[0].spans[0]: span_id must be 8 bytes, got 0");
        let err = validate(&traces(vec![span(16, 8, 4)])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource_spans[0].scope_spans[0].spans[0]: parent_span_id must be empty or 8 bytes, got 4"
        );
    }

    #[test]
    fn log_ids_are_optional_but_sized() {
        let logs = |t: usize, s: usize| {
            Batch::Logs(ExportLogsServiceRequest {
                resource_logs: vec![ResourceLogs {
                    scope_logs: vec![ScopeLogs {
                        log_records: vec![LogRecord {
                            trace_id: vec![0; t],
                            span_id: vec![0; s],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            })
        };
        assert_eq!(validate(&logs(0, 0)), Ok(()));
        assert_eq!(validate(&logs(16, 8)), Ok(()));
        assert_eq!(
            validate(&logs(3, 0)).unwrap_err().to_string(),
            "resource_logs[0].scope_logs[0].log_records[0]: trace_id must be empty or 16 bytes, got 3"
        );
        assert_eq!(
            validate(&logs(16, 9)).unwrap_err().to_string(),
            "resource_logs[0].scope_logs[0].log_records[0]: span_id must be empty or 8 bytes, got 9"
        );
    }
}
