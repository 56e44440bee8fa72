//! Kept spans, sent on as protobuf bytes: a kept span is copied from its
//! trace's buffer with `sampling.policy` and its `tracestate` rewritten in
//! the bytes, and the spans waiting to go are grouped back under their
//! resource and scope into one encoded export request. Nothing is decoded.
//!
//! Guarantees:
//! - a marked span decodes to the span as received with its first
//!   `sampling.policy` attribute set to the policy (in place; later ones
//!   removed) or, if it had none, one added after its attributes; and its
//!   `trace_state` replaced by the rewritten one (see [`TsCache`]). Every
//!   other field keeps its bytes and order;
//! - the request holds every pushed span once, under the resource and
//!   scope it came with, resources and scopes in first-seen order;
//! - the bytes come from checked requests or from prost, so the batch
//!   decodes (the [`EncodedBatch::checked`] guarantee).

use super::policy::Prob;
use super::{ResourceGroup, ScopeGroup, POLICY_ATTRIBUTE};
use crate::data::wire::{field_len, fields, key_value_key, put_bytes_field, put_len_header, WireValue};
use crate::data::{EncodedBatch, Signal};
use crate::processors::sampling::tracestate::{record_threshold, W3cTraceState};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use prost::Message;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

/// The encoded `KeyValue` a span kept by `policy` carries.
pub fn policy_attribute(policy: &str) -> Vec<u8> {
    KeyValue {
        key: POLICY_ATTRIBUTE.to_string(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(policy.to_string())) }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// The last tracestate rewritten and its result: spans of one trace nearly
/// always carry the same tracestate, so it is parsed once per trace.
#[derive(Default)]
pub struct TsCache {
    input: Option<Vec<u8>>,
    output: Vec<u8>,
}

impl TsCache {
    /// `tracestate` with the kept probability recorded in `ot=th`; with an
    /// unknown probability, `th` removed so no one computes a wrong count.
    /// A malformed tracestate is left as it came rather than guessed at.
    fn rewrite(&mut self, input: &[u8], prob: Prob) -> &[u8] {
        if self.input.as_deref() != Some(input) {
            let rewritten = std::str::from_utf8(input).ok().and_then(|ts| match prob {
                Prob::Known(th) => record_threshold(ts, th).ok(),
                Prob::Unknown => W3cTraceState::parse(ts).ok().and_then(|mut w| {
                    let mut ot = w.ot().ok()?;
                    ot.threshold = None;
                    w.set_ot(&ot);
                    Some(w.to_string())
                }),
            });
            self.output = rewritten.map_or_else(|| input.to_vec(), String::into_bytes);
            self.input = Some(input.to_vec());
        }
        &self.output
    }
}

/// A field of a span that marking replaces.
#[derive(Clone, Copy, PartialEq)]
enum Replaced {
    TraceState,
    PolicyAttribute,
}

/// Kept spans waiting to be sent: each marked and framed as an entry of
/// `ScopeSpans.spans` (key, length, span) in `buf`, in runs of one scope.
#[derive(Default)]
pub struct KeptSpans {
    buf: Vec<u8>,
    /// Each run's scope and where it starts in `buf`; it ends where the
    /// next starts.
    runs: Vec<(Arc<ScopeGroup>, usize)>,
    spans: usize,
    /// Fields being replaced in the span being marked (reused).
    replaced: Vec<(Range<usize>, Replaced)>,
}

impl KeptSpans {
    /// Adds `span` (its protobuf bytes) from `scope`, marked with the
    /// encoded `sampling.policy` attribute `policy` and probability `prob`.
    pub fn push(&mut self, scope: &Arc<ScopeGroup>, span: &[u8], policy: &[u8], prob: Prob, ts: &mut TsCache) {
        if self.runs.last().is_none_or(|(s, _)| !Arc::ptr_eq(s, scope)) {
            self.runs.push((scope.clone(), self.buf.len()));
        }
        self.spans += 1;
        self.replaced.clear();
        let mut trace_state: &[u8] = &[];
        let mut walk = fields(span);
        loop {
            let start = span.len() - walk.rest().len();
            let Some((field, value)) = walk.next() else { break };
            let end = span.len() - walk.rest().len();
            match (field, value) {
                (3, WireValue::Bytes(b)) => {
                    trace_state = b;
                    self.replaced.push((start..end, Replaced::TraceState));
                }
                (9, WireValue::Bytes(kv)) if key_value_key(kv) == POLICY_ATTRIBUTE.as_bytes() => {
                    self.replaced.push((start..end, Replaced::PolicyAttribute));
                }
                _ => {}
            }
        }
        let trace_state = ts.rewrite(trace_state, prob);
        let removed: usize = self.replaced.iter().map(|(r, _)| r.len()).sum();
        let added =
            if trace_state.is_empty() { 0 } else { field_len(3, trace_state.len()) } + field_len(9, policy.len());
        let len = span.len() - removed + added;
        self.buf.reserve(field_len(2, len));
        put_len_header(&mut self.buf, 2, len);
        let (mut at, mut ts_done, mut policy_done) = (0, false, false);
        for (range, what) in &self.replaced {
            self.buf.extend_from_slice(&span[at..range.start]);
            match what {
                Replaced::TraceState if !ts_done => {
                    ts_done = true;
                    if !trace_state.is_empty() {
                        put_bytes_field(&mut self.buf, 3, trace_state);
                    }
                }
                Replaced::PolicyAttribute if !policy_done => {
                    policy_done = true;
                    put_bytes_field(&mut self.buf, 9, policy);
                }
                _ => {}
            }
            at = range.end;
        }
        self.buf.extend_from_slice(&span[at..]);
        if !ts_done && !trace_state.is_empty() {
            put_bytes_field(&mut self.buf, 3, trace_state);
        }
        if !policy_done {
            put_bytes_field(&mut self.buf, 9, policy);
        }
    }

    /// The spans pushed since the last call, as one export request.
    pub fn take(&mut self) -> Option<EncodedBatch> {
        if self.spans == 0 {
            return None;
        }
        // Runs of one scope, and scopes of one resource, grouped in
        // first-seen order; groups are told apart by address (each holds
        // an `Arc`, so no address is reused while this runs).
        let mut scope_index: HashMap<*const ScopeGroup, usize> = HashMap::new();
        let mut resource_index: HashMap<*const ResourceGroup, usize> = HashMap::new();
        let mut scopes: Vec<(&Arc<ScopeGroup>, Vec<Range<usize>>)> = Vec::new();
        let mut resources: Vec<(&Arc<ResourceGroup>, Vec<usize>)> = Vec::new();
        for (i, (scope, start)) in self.runs.iter().enumerate() {
            let end = self.runs.get(i + 1).map_or(self.buf.len(), |r| r.1);
            let si = *scope_index.entry(Arc::as_ptr(scope)).or_insert_with(|| {
                let ri = *resource_index.entry(Arc::as_ptr(&scope.resource)).or_insert_with(|| {
                    resources.push((&scope.resource, Vec::new()));
                    resources.len() - 1
                });
                resources[ri].1.push(scopes.len());
                scopes.push((scope, Vec::new()));
                scopes.len() - 1
            });
            scopes[si].1.push(*start..end);
        }
        let scope_lens: Vec<usize> = scopes
            .iter()
            .map(|(s, runs)| {
                opt_field_len(1, s.scope.as_deref())
                    + runs.iter().map(Range::len).sum::<usize>()
                    + nonempty_field_len(3, &s.schema_url)
            })
            .collect();
        let resource_lens: Vec<usize> = resources
            .iter()
            .map(|(r, members)| {
                opt_field_len(1, r.resource.as_deref())
                    + members.iter().map(|&si| field_len(2, scope_lens[si])).sum::<usize>()
                    + nonempty_field_len(3, &r.schema_url)
            })
            .collect();
        let mut out = Vec::with_capacity(resource_lens.iter().map(|&l| field_len(1, l)).sum());
        for ((resource, members), &len) in resources.iter().zip(&resource_lens) {
            put_len_header(&mut out, 1, len);
            if let Some(r) = &resource.resource {
                put_bytes_field(&mut out, 1, r);
            }
            for &si in members {
                let (scope, runs) = &scopes[si];
                put_len_header(&mut out, 2, scope_lens[si]);
                if let Some(s) = &scope.scope {
                    put_bytes_field(&mut out, 1, s);
                }
                for run in runs {
                    out.extend_from_slice(&self.buf[run.clone()]);
                }
                if !scope.schema_url.is_empty() {
                    put_bytes_field(&mut out, 3, &scope.schema_url);
                }
            }
            if !resource.schema_url.is_empty() {
                put_bytes_field(&mut out, 3, &resource.schema_url);
            }
        }
        let batch = EncodedBatch::checked(Signal::Traces, out.into(), self.spans);
        self.runs.clear();
        self.spans = 0;
        // Keep the buffer for the next emission unless one burst made it large.
        if self.buf.capacity() > 8 << 20 {
            self.buf = Vec::new();
        } else {
            self.buf.clear();
        }
        Some(batch)
    }
}

fn opt_field_len(field: u64, body: Option<&[u8]>) -> usize {
    body.map_or(0, |b| field_len(field, b.len()))
}

fn nonempty_field_len(field: u64, body: &[u8]) -> usize {
    if body.is_empty() {
        0
    } else {
        field_len(field, body.len())
    }
}
