//! Batches that stay in their wire form: the pass-through path.
//!
//! An export request's only field is its repeated list of resource entries,
//! so two encoded requests written one after the other are the encoding of
//! one request holding both lists. An [`EncodedBatch`] is such a sequence of
//! encoded requests (each a cheap `Bytes` slice of a received body), so
//! batching appends slices and sending writes them out: nothing is decoded or
//! re-encoded between the receiver and the wire.
//!
//! Guarantee: every chunk of an `EncodedBatch` passed
//! [`check_request`](super::check::check_request) (or was encoded from a
//! decoded batch), so [`EncodedBatch::decode`] succeeds, and `item_count` is
//! what a decode would count.

use super::{Batch, Signal};
use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::{
    logs::v1::ExportLogsServiceRequest, metrics::v1::ExportMetricsServiceRequest, trace::v1::ExportTraceServiceRequest,
};
use prost::Message;

#[derive(Debug, Clone, PartialEq)]
pub struct EncodedBatch {
    signal: Signal,
    items: usize,
    len: usize,
    /// Encoded export requests; their concatenation is the batch.
    chunks: Vec<Bytes>,
}

impl EncodedBatch {
    pub fn empty(signal: Signal) -> EncodedBatch {
        EncodedBatch { signal, items: 0, len: 0, chunks: Vec::new() }
    }

    /// A request that passed `check_request`, which counted `items` in it.
    pub fn checked(signal: Signal, message: Bytes, items: usize) -> EncodedBatch {
        let mut batch = EncodedBatch::empty(signal);
        batch.push_chunk(message, items);
        batch
    }

    /// Encodes a decoded batch, for a pipeline that forwards bytes.
    pub fn encode(batch: &Batch) -> EncodedBatch {
        let bytes = match batch {
            Batch::Traces(r) => r.encode_to_vec(),
            Batch::Metrics(r) => r.encode_to_vec(),
            Batch::Logs(r) => r.encode_to_vec(),
        };
        EncodedBatch::checked(batch.signal(), bytes.into(), batch.item_count())
    }

    pub fn signal(&self) -> Signal {
        self.signal
    }

    pub fn item_count(&self) -> usize {
        self.items
    }

    /// Bytes of the whole encoded request.
    pub fn encoded_len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// Adds a piece of encoded request holding `items` items at the end.
    pub fn push_chunk(&mut self, chunk: Bytes, items: usize) {
        if chunk.is_empty() {
            return;
        }
        self.items += items;
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    /// Removes the first chunk and returns it with its share of the items
    /// (`items` tells it, as the caller counted them).
    pub fn pop_front_chunk(&mut self, items: usize) -> Option<Bytes> {
        if self.chunks.is_empty() {
            return None;
        }
        let chunk = self.chunks.remove(0);
        self.items = self.items.saturating_sub(items);
        self.len -= chunk.len();
        Some(chunk)
    }

    /// Puts a chunk back at the front.
    pub fn push_front_chunk(&mut self, chunk: Bytes, items: usize) {
        if chunk.is_empty() {
            return;
        }
        self.items += items;
        self.len += chunk.len();
        self.chunks.insert(0, chunk);
    }

    /// Appends another batch of the same signal.
    pub fn append(&mut self, other: EncodedBatch) {
        debug_assert_eq!(self.signal, other.signal);
        self.items += other.items;
        self.len += other.len;
        self.chunks.extend(other.chunks);
    }

    /// The whole request as one buffer (no copy when it is one chunk).
    pub fn to_bytes(&self) -> Bytes {
        match self.chunks.as_slice() {
            [] => Bytes::new(),
            [one] => one.clone(),
            many => {
                let mut buf = Vec::with_capacity(self.len);
                for c in many {
                    buf.extend_from_slice(c);
                }
                buf.into()
            }
        }
    }

    /// Writes the whole request into `buf`.
    pub fn write_to(&self, buf: &mut impl BufMut) {
        for c in &self.chunks {
            buf.put_slice(c);
        }
    }

    /// Decodes into the prost types, for a component that needs them.
    pub fn decode(&self) -> Result<Batch, prost::DecodeError> {
        let bytes = self.to_bytes();
        Ok(match self.signal {
            Signal::Traces => Batch::Traces(ExportTraceServiceRequest::decode(bytes)?),
            Signal::Metrics => Batch::Metrics(ExportMetricsServiceRequest::decode(bytes)?),
            Signal::Logs => Batch::Logs(ExportLogsServiceRequest::decode(bytes)?),
        })
    }
}

/// What flows from receivers to exporters: a decoded batch, or one still in
/// its wire form on a pipeline whose components do not look inside.
#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    Decoded(Batch),
    Encoded(EncodedBatch),
}

impl Payload {
    pub fn signal(&self) -> Signal {
        match self {
            Payload::Decoded(b) => b.signal(),
            Payload::Encoded(e) => e.signal(),
        }
    }

    pub fn item_count(&self) -> usize {
        match self {
            Payload::Decoded(b) => b.item_count(),
            Payload::Encoded(e) => e.item_count(),
        }
    }

    pub fn is_empty(&self) -> bool {
        match self {
            Payload::Decoded(b) => b.is_empty(),
            Payload::Encoded(e) => e.is_empty(),
        }
    }

    /// The decoded batch, decoding it if needed.
    pub fn into_decoded(self) -> Result<Batch, prost::DecodeError> {
        match self {
            Payload::Decoded(b) => Ok(b),
            Payload::Encoded(e) => e.decode(),
        }
    }

    /// The encoded batch, encoding it if needed.
    pub fn into_encoded(self) -> EncodedBatch {
        match self {
            Payload::Decoded(b) => EncodedBatch::encode(&b),
            Payload::Encoded(e) => e,
        }
    }
}

impl From<Batch> for Payload {
    fn from(batch: Batch) -> Payload {
        Payload::Decoded(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    fn traces(names: &[&str]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: names
                        .iter()
                        .map(|n| Span {
                            name: n.to_string(),
                            trace_id: vec![1; 16],
                            span_id: vec![2; 8],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn appended_requests_decode_as_one_request_with_both_lists() {
        let a = traces(&["a", "b"]);
        let b = traces(&["c"]);
        let mut batch = EncodedBatch::checked(Signal::Traces, a.encode_to_vec().into(), 2);
        batch.append(EncodedBatch::encode(&Batch::Traces(b.clone())));
        assert_eq!(batch.item_count(), 3);
        assert_eq!(batch.chunks().len(), 2);
        assert_eq!(batch.encoded_len(), a.encoded_len() + b.encoded_len());
        let Batch::Traces(decoded) = batch.decode().unwrap() else { panic!("signal") };
        let mut want = a;
        want.resource_spans.extend(b.resource_spans);
        assert_eq!(decoded, want);
        let mut written = Vec::new();
        batch.write_to(&mut written);
        assert_eq!(written, batch.to_bytes());
    }

    #[test]
    fn payload_converts_both_ways_without_losing_items() {
        let decoded = Payload::from(Batch::Traces(traces(&["x", "y", "z"])));
        assert_eq!(decoded.item_count(), 3);
        let encoded = Payload::Encoded(decoded.clone().into_encoded());
        assert_eq!(encoded.item_count(), 3);
        assert_eq!(encoded.clone().into_decoded().unwrap(), decoded.clone().into_decoded().unwrap());
        assert!(Payload::Encoded(EncodedBatch::empty(Signal::Logs)).is_empty());
    }
}
