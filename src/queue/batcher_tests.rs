use super::*;
use crate::data::{Batch, EncodedBatch};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::sync::Arc;

fn spans(n: usize) -> Batch {
    let span = Span { name: "op".into(), trace_id: vec![1; 16], span_id: vec![2; 8], ..Default::default() };
    Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans: vec![span; n], ..Default::default() }],
            ..Default::default()
        }],
    })
}

fn items(min: u64, max: u64) -> BatchSettings {
    BatchSettings { flush_timeout: Duration::from_millis(200), min_size: min, max_size: max, sizer: Sizer::Items }
}

fn counts<T>(out: &[Flush<T>]) -> Vec<usize> {
    out.iter().map(|f| f.batch.item_count()).collect()
}

#[test]
fn the_defaults_are_the_collectors() {
    // exporterhelper NewDefaultQueueConfig: batch flush_timeout 200ms,
    // min_size 8192, max_size 0 (no maximum), sizer items.
    assert_eq!(BatchSettings::DEFAULT.flush_timeout, Duration::from_millis(200));
    assert_eq!(BatchSettings::DEFAULT.min_size, 8192);
    assert_eq!(BatchSettings::DEFAULT.max_size, 0);
    assert_eq!(BatchSettings::DEFAULT.sizer, Sizer::Items);
}

#[test]
fn merges_until_min_size() {
    let mut b = Batcher::new(items(10, 0));
    let t0 = Instant::now();
    assert!(b.add(spans(4).into(), (), t0).is_empty());
    assert!(b.add(spans(4).into(), (), t0).is_empty());
    let out = b.add(spans(4).into(), (), t0);
    assert_eq!(counts(&out), vec![12]);
    assert_eq!(out[0].trigger, Trigger::Size);
    assert!(!out[0].cut);
    assert_eq!(b.deadline(), None);
    assert_eq!(b.pending_items(), 0);
}

#[test]
fn splits_at_max_size_and_keeps_a_small_rest() {
    let mut b = Batcher::new(items(10, 15));
    let t0 = Instant::now();
    // 37 = 15 + 15 + 7; 7 < min_size waits.
    let out = b.add(spans(37).into(), (), t0);
    assert_eq!(counts(&out), vec![15, 15]);
    assert!(out.iter().all(|f| f.cut && f.trigger == Trigger::Size));
    assert_eq!(b.pending_items(), 7);
    assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(200)));
    // 7 + 20 = 27 = 15 + 12; 12 >= min_size goes too.
    let t1 = t0 + Duration::from_millis(50);
    let out = b.add(spans(20).into(), (), t1);
    assert_eq!(counts(&out), vec![15, 12]);
    assert_eq!((out[0].cut, out[1].cut), (true, false));
    assert_eq!(b.deadline(), None);
}

#[test]
fn flushes_after_flush_timeout_from_the_batch_start() {
    let mut b = Batcher::new(items(100, 0));
    let t0 = Instant::now();
    b.add(spans(3).into(), (), t0);
    // Merging into a waiting batch does not move its deadline.
    b.add(spans(3).into(), (), t0 + Duration::from_millis(150));
    assert_eq!(b.deadline(), Some(t0 + Duration::from_millis(200)));
    assert!(b.tick(t0 + Duration::from_millis(199)).is_none());
    let f = b.tick(t0 + Duration::from_millis(200)).expect("due");
    assert_eq!((f.batch.item_count(), f.trigger), (6, Trigger::Timeout));
    assert_eq!(b.deadline(), None);
    assert!(b.tick(t0 + Duration::from_secs(5)).is_none());
}

#[test]
fn a_rest_left_after_a_send_starts_a_new_deadline() {
    let mut b = Batcher::new(items(10, 10));
    let t0 = Instant::now();
    b.add(spans(2).into(), (), t0);
    let t1 = t0 + Duration::from_millis(150);
    // 2 + 13 = 15: 10 go, the 5 left are a new batch started at t1.
    assert_eq!(counts(&b.add(spans(13).into(), (), t1)), vec![10]);
    assert_eq!(b.deadline(), Some(t1 + Duration::from_millis(200)));
}

#[test]
fn min_size_zero_sends_every_batch_at_once_but_cut() {
    let mut b = Batcher::new(items(0, 4));
    let out = b.add(spans(9).into(), (), Instant::now());
    assert_eq!(counts(&out), vec![4, 4, 1]);
    assert_eq!(b.deadline(), None);
}

#[test]
fn a_batch_cut_in_two_is_acknowledged_by_both_parts() {
    let mut b = Batcher::new(items(5, 5));
    let t0 = Instant::now();
    let (a, c) = (Arc::new("a"), Arc::new("c"));
    assert!(b.add(spans(3).into(), a.clone(), t0).is_empty());
    let out = b.add(spans(4).into(), c.clone(), t0);
    assert_eq!(counts(&out), vec![5]);
    let names: Vec<&str> = out[0].tickets.iter().map(|t| **t).collect();
    assert_eq!(names, vec!["a", "c"]);
    drop(out);
    assert_eq!(Arc::strong_count(&a), 1, "a is all sent");
    assert_eq!(Arc::strong_count(&c), 2, "2 items of c still wait");
    let rest = b.drain().expect("pending");
    assert_eq!((rest.batch.item_count(), rest.trigger), (2, Trigger::Drain));
    assert_eq!(rest.tickets.len(), 1);
    drop(rest);
    assert_eq!(Arc::strong_count(&c), 1);
}

#[test]
fn bytes_sizer_cuts_at_the_protobuf_size() {
    let three = payload_bytes(&spans(3).into());
    let settings =
        BatchSettings { flush_timeout: Duration::from_millis(200), min_size: 0, max_size: three, sizer: Sizer::Bytes };
    let mut b = Batcher::new(settings);
    let out = b.add(spans(10).into(), (), Instant::now());
    assert_eq!(counts(&out), vec![3, 3, 3, 1]);
    assert!(out.iter().all(|f| payload_bytes(&f.batch) <= three && !f.oversized));

    // Many cuts of a large batch, decoded and encoded alike: 5000 = 714 × 7 + 2.
    let seven = payload_bytes(&spans(7).into());
    for batch in [Payload::from(spans(5000)), Payload::Encoded(EncodedBatch::encode(&spans(5000)))] {
        let settings = BatchSettings { max_size: seven, ..settings };
        let mut b = Batcher::new(settings);
        let out = b.add(batch, (), Instant::now());
        assert_eq!(out.len(), 715);
        assert!(out[..714].iter().all(|f| f.batch.item_count() == 7 && payload_bytes(&f.batch) == seven));
        assert_eq!(out[714].batch.item_count(), 2);
    }
}

#[test]
fn bytes_min_size_merges_by_bytes() {
    let one = payload_bytes(&spans(1).into());
    let settings = BatchSettings {
        flush_timeout: Duration::from_millis(200),
        min_size: one * 3,
        max_size: 0,
        sizer: Sizer::Bytes,
    };
    let mut b = Batcher::new(settings);
    let t0 = Instant::now();
    assert!(b.add(spans(1).into(), (), t0).is_empty());
    assert!(b.add(spans(1).into(), (), t0).is_empty());
    assert_eq!(counts(&b.add(spans(1).into(), (), t0)), vec![3]);
}

#[test]
fn an_item_above_a_bytes_max_goes_alone() {
    let settings =
        BatchSettings { flush_timeout: Duration::from_millis(200), min_size: 0, max_size: 10, sizer: Sizer::Bytes };
    let mut b = Batcher::new(settings);
    let out = b.add(spans(2).into(), (), Instant::now());
    assert_eq!(counts(&out), vec![1, 1]);
    assert!(out.iter().all(|f| f.oversized));
}

#[test]
fn encoded_and_decoded_batches_merge_encoded() {
    let mut b = Batcher::new(items(8, 0));
    let t0 = Instant::now();
    assert!(b.add(Payload::Encoded(EncodedBatch::encode(&spans(4))), (), t0).is_empty());
    let out = b.add(spans(4).into(), (), t0);
    assert!(matches!(out.as_slice(), [f] if matches!(&f.batch, Payload::Encoded(e) if e.item_count() == 8)));
}

#[test]
fn encoded_batches_are_cut_exactly() {
    let mut b = Batcher::new(items(1000, 6));
    let t0 = Instant::now();
    let out = b.add(Payload::Encoded(EncodedBatch::encode(&spans(20))), (), t0);
    assert_eq!(counts(&out), vec![6, 6, 6]);
    assert_eq!(b.drain().map(|f| f.batch.item_count()), Some(2));
}
