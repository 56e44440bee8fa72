//! Batching on the pass-through path: batches stay encoded, so appending is
//! adding a slice and cutting is slicing at resource-entry boundaries.
//!
//! Guarantee: `take_front(n)` returns exactly `n` items (or all there are),
//! as the decoded processor does. An entry that holds more items than the cut
//! needs is the only thing decoded: it is split as the decoded processor
//! splits (resource and scope kept on both sides) and re-encoded.

use super::cut::Batchable;
use super::{split, wire, Batch, EncodedBatch, Signal};
use bytes::Bytes;

impl Batchable for EncodedBatch {
    fn empty(signal: Signal) -> Self {
        EncodedBatch::empty(signal)
    }

    fn signal(&self) -> Signal {
        EncodedBatch::signal(self)
    }

    fn items(&self) -> usize {
        self.item_count()
    }

    fn is_empty(&self) -> bool {
        EncodedBatch::is_empty(self)
    }

    fn append(&mut self, other: Self) {
        EncodedBatch::append(self, other)
    }

    fn take_front(&mut self, n: usize) -> Self {
        let signal = self.signal();
        let mut front = EncodedBatch::empty(signal);
        while front.item_count() < n {
            let want = n - front.item_count();
            let Some(chunk) = self.chunks().first().cloned() else { break };
            let entries = wire::entries(signal, &chunk);
            let chunk_items: usize = entries.iter().map(|e| e.items).sum();
            let Some(chunk) = self.pop_front_chunk(chunk_items) else { break };
            if chunk_items <= want {
                front.push_chunk(chunk, chunk_items);
                continue;
            }
            // Whole entries while they fit, then the entry that straddles the cut.
            let mut cut = 0;
            let mut cut_items = 0;
            let mut straddling = None;
            for entry in &entries {
                if cut_items + entry.items <= want {
                    cut = entry.range.end;
                    cut_items += entry.items;
                    if cut_items == want {
                        break;
                    }
                } else {
                    straddling = Some(entry.clone());
                    break;
                }
            }
            front.push_chunk(chunk.slice(..cut), cut_items);
            let Some(entry) = straddling else {
                // The cut fell on an entry boundary: the rest goes back.
                self.push_front_chunk(chunk.slice(cut..), chunk_items - cut_items);
                break;
            };
            let rest = chunk.slice(entry.range.end..);
            self.push_front_chunk(rest, chunk_items - cut_items - entry.items);
            let one = chunk.slice(entry.range.clone());
            match split_entry(signal, one.clone(), want - cut_items) {
                Some((head, head_items, tail, tail_items)) => {
                    front.push_chunk(head, head_items);
                    self.push_front_chunk(tail, tail_items);
                }
                // Checked bytes always decode; if they somehow do not, keep
                // the entry whole rather than lose it (the batch runs over).
                None => front.push_chunk(one, entry.items),
            }
            break;
        }
        front
    }
}

/// Splits one encoded resource entry (a request holding just it) after
/// `n` items: (head, its items, tail, its items).
fn split_entry(signal: Signal, one: Bytes, n: usize) -> Option<(Bytes, usize, Bytes, usize)> {
    let mut batch = EncodedBatch::checked(signal, one, 0).decode().ok()?;
    let head = match &mut batch {
        Batch::Traces(r) => Batch::Traces(split::split_traces(r, n)),
        Batch::Metrics(r) => Batch::Metrics(split::split_metrics(r, n)),
        Batch::Logs(r) => Batch::Logs(split::split_logs(r, n)),
    };
    let head = EncodedBatch::encode(&head);
    let tail = EncodedBatch::encode(&batch);
    Some((head.to_bytes(), head.item_count(), tail.to_bytes(), tail.item_count()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Duration as CfgDuration;
    use crate::data::check::check_request;
    use crate::processors::batch::config::BatchConfig;
    use crate::processors::batch::BatchProcessor;
    use crate::telemetry::Registry;
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;
    use std::time::Instant;

    /// A request of `resources` resources × `scopes` scopes × `spans` spans,
    /// span names numbered from `first`.
    fn request(first: usize, resources: usize, scopes: usize, spans: usize) -> ExportTraceServiceRequest {
        let mut n = first;
        let mut next = || {
            n += 1;
            Span { name: format!("s{}", n - 1), trace_id: vec![1; 16], span_id: vec![2; 8], ..Default::default() }
        };
        ExportTraceServiceRequest {
            resource_spans: (0..resources)
                .map(|_| ResourceSpans {
                    scope_spans: (0..scopes)
                        .map(|_| ScopeSpans { spans: (0..spans).map(|_| next()).collect(), ..Default::default() })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
        }
    }

    fn encoded(req: &ExportTraceServiceRequest) -> EncodedBatch {
        let bytes = req.encode_to_vec();
        let items = check_request(Signal::Traces, &bytes).unwrap();
        EncodedBatch::checked(Signal::Traces, bytes.into(), items)
    }

    fn names(batch: &EncodedBatch) -> Vec<String> {
        let Batch::Traces(r) = batch.decode().unwrap() else { panic!("signal") };
        r.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| &ss.spans)
            .map(|s| s.name.clone())
            .collect()
    }

    #[test]
    fn cuts_give_exact_counts_in_order_across_chunks_and_entries() {
        // 3 requests of 2 resources × 2 scopes × 3 spans = 12 spans each.
        for cut in [1, 3, 5, 6, 7, 12, 13, 20, 36, 40] {
            let mut pending = EncodedBatch::empty(Signal::Traces);
            for i in 0..3 {
                pending.append(encoded(&request(i * 12, 2, 2, 3)));
            }
            let mut seen = Vec::new();
            while pending.item_count() > 0 {
                let before = pending.item_count();
                let front = pending.take_front(cut);
                assert_eq!(front.item_count(), cut.min(before), "cut {cut}");
                assert_eq!(pending.item_count(), before - front.item_count());
                // Each piece is a valid request whose count is what it claims.
                assert_eq!(check_request(Signal::Traces, &front.to_bytes()), Ok(front.item_count()));
                seen.extend(names(&front));
            }
            let want: Vec<String> = (0..36).map(|i| format!("s{i}")).collect();
            assert_eq!(seen, want, "cut {cut}");
            assert!(pending.is_empty());
        }
    }

    #[test]
    fn encoded_processor_emits_the_same_batch_sizes_as_the_decoded_one() {
        let cfg = BatchConfig {
            send_batch_size: 50,
            send_batch_max_size: 70,
            timeout: CfgDuration::from_millis(200),
            ..Default::default()
        };
        let mut decoded: BatchProcessor<Batch> = BatchProcessor::new(&cfg, Signal::Traces, "batch", &Registry::new());
        let mut encoded_p: BatchProcessor<EncodedBatch> =
            BatchProcessor::new(&cfg, Signal::Traces, "batch", &Registry::new());
        let now = Instant::now();
        let (mut out_d, mut out_e) = (Vec::new(), Vec::new());
        for i in 0..9 {
            let req = request(i * 24, 2, 3, 4);
            decoded.add(Batch::Traces(req.clone()), now, &mut out_d);
            encoded_p.add(encoded(&req), now, &mut out_e);
        }
        decoded.drain(&mut out_d);
        encoded_p.drain(&mut out_e);
        let sizes_d: Vec<usize> = out_d.iter().map(Batch::item_count).collect();
        let sizes_e: Vec<usize> = out_e.iter().map(EncodedBatch::item_count).collect();
        assert_eq!(sizes_e, sizes_d);
        assert!(sizes_e.iter().all(|&n| n <= 70), "{sizes_e:?}");
        for (d, e) in out_d.iter().zip(&out_e) {
            assert_eq!(&e.decode().unwrap(), d);
        }
    }
}
