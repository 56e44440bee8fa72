use super::*;
use crate::queue::Sizer;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use std::sync::Arc;
use std::time::Duration;

/// A batch of `n` spans whose span IDs carry `id`, so order and identity can be checked.
fn spans(id: u32, n: usize) -> Payload {
    Payload::Decoded(Batch::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![7; 16],
                        span_id: [id.to_le_bytes(), (i as u32).to_le_bytes()].concat(),
                        name: "x".repeat(50),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }))
}

fn id_of(b: &Payload) -> u32 {
    match b.clone().into_decoded().unwrap() {
        Batch::Traces(r) => {
            u32::from_le_bytes(r.resource_spans[0].scope_spans[0].spans[0].span_id[..4].try_into().unwrap())
        }
        _ => panic!("not traces"),
    }
}

fn opts(dir: &Path) -> PersistentOptions {
    PersistentOptions {
        dir: dir.to_path_buf(),
        fsync: false,
        capacity: 1000,
        sizer: Sizer::Requests,
        max_bytes: 64 << 20,
        segment_bytes: DEFAULT_SEGMENT_BYTES,
        policy: FullQueuePolicy::Block,
        name: "test".into(),
    }
}

fn open(o: PersistentOptions) -> (PersistentQueue, PersistentQueueMetrics, Counter) {
    let m = PersistentQueueMetrics::default();
    let failed = Counter::default();
    (PersistentQueue::open(o, m.clone(), failed.clone()).unwrap(), m, failed)
}

/// Pops everything ready now, acking each; returns the batch ids.
fn drain(q: &PersistentQueue) -> Vec<u32> {
    let mut out = Vec::new();
    while let Some((b, t)) = q.try_pop() {
        out.push(id_of(&b));
        q.ack(t);
    }
    out
}

fn seg_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wal"))
        .collect();
    v.sort();
    v
}

#[test]
fn round_trip_in_order() {
    for fsync in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let (q, m, _) = open(PersistentOptions { fsync, ..opts(dir.path()) });
        let sent: Vec<Payload> = (0..20).map(|i| spans(i, 3)).collect();
        for b in &sent {
            assert_eq!(q.push(b), PersistentPush::Queued);
        }
        assert_eq!(q.len(), 20);
        for b in &sent {
            let (got, t) = q.try_pop().unwrap();
            assert_eq!(got.item_count(), b.item_count());
            assert_eq!(
                got.into_decoded().unwrap(),
                b.clone().into_decoded().unwrap(),
                "a record comes back exactly as written"
            );
            q.ack(t);
        }
        assert!(q.try_pop().is_none());
        assert_eq!(m.fsyncs.get() > 0, fsync, "fsync: {fsync}");
        assert!(m.bytes_on_disk.get() > 0);
    }
}

#[test]
fn reopen_replays_only_unacked_records() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (q, _, _) = open(opts(dir.path()));
        for i in 0..10 {
            q.push(&spans(i, 2));
        }
        // Deliver 0..4; pop 4 but crash before its ack.
        for _ in 0..4 {
            let (_, t) = q.try_pop().unwrap();
            q.ack(t);
        }
        let _in_flight = q.try_pop().unwrap();
    }
    let (q, m, _) = open(opts(dir.path()));
    assert_eq!(m.replayed.get(), 6);
    assert_eq!(m.redelivered.get(), 1, "record 4 was being sent at the crash: it may arrive twice");
    assert_eq!(q.len(), 6);
    q.push(&spans(100, 1));
    assert_eq!(drain(&q), vec![4, 5, 6, 7, 8, 9, 100], "replayed records first, in order, then new ones");
    drop(q);
    let (q, m, _) = open(opts(dir.path()));
    assert_eq!(m.replayed.get(), 0);
    assert_eq!(m.redelivered.get(), 0, "everything taken was acknowledged");
    assert!(q.try_pop().is_none());
    assert!(seg_files(dir.path()).is_empty(), "a fully delivered queue leaves no segment behind");
}

#[test]
fn delivered_segments_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let (q, m, _) = open(PersistentOptions { segment_bytes: 1000, ..opts(dir.path()) });
    for i in 0..30 {
        q.push(&spans(i, 2));
    }
    let files = seg_files(dir.path());
    assert!(files.len() >= 5, "small segments roll: {files:?}");
    let disk: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
    assert_eq!(m.bytes_on_disk.get() as u64, disk);
    // Out-of-order acks: hold the first record, deliver the rest.
    let (_, first) = q.try_pop().unwrap();
    let rest = drain(&q);
    assert_eq!(rest.len(), 29);
    let left = seg_files(dir.path());
    assert_eq!(left.len(), 2, "only the segment pinned by the held record and the open one remain: {left:?}");
    q.ack(first);
    assert_eq!(seg_files(dir.path()).len(), 1, "the open segment stays until it rolls");
    q.push(&spans(99, 2)); // fits in the open segment or rolls it; either way nothing delivered is pinned
    assert_eq!(drain(&q), vec![99]);
    drop(q);
    let (_, m, _) = open(PersistentOptions { segment_bytes: 1000, ..opts(dir.path()) });
    assert_eq!(m.bytes_on_disk.get(), 0);
    assert!(seg_files(dir.path()).is_empty());
}

#[test]
fn byte_bound_drop_newest_counts() {
    let dir = tempfile::tempdir().unwrap();
    let one = HEADER_LEN + encode_payload(&spans(0, 4)).len() as u64;
    let (q, _, failed) =
        open(PersistentOptions { max_bytes: one * 3, policy: FullQueuePolicy::DropNewest, ..opts(dir.path()) });
    for i in 0..3 {
        assert_eq!(q.push(&spans(i, 4)), PersistentPush::Queued);
    }
    assert_eq!(q.push(&spans(3, 4)), PersistentPush::Dropped);
    assert_eq!(failed.get(), 4, "the dropped batch's items count as enqueue_failed");
    // Popped but not acked still holds its bytes.
    let (_, t) = q.try_pop().unwrap();
    assert_eq!(q.push(&spans(4, 4)), PersistentPush::Dropped);
    q.ack(t);
    assert_eq!(q.push(&spans(5, 4)), PersistentPush::Queued);
    assert_eq!(drain(&q), vec![1, 2, 5]);
}

#[test]
fn byte_bound_block_waits_for_an_ack() {
    let dir = tempfile::tempdir().unwrap();
    let one = HEADER_LEN + encode_payload(&spans(0, 4)).len() as u64;
    let (q, _, failed) = open(PersistentOptions { max_bytes: one * 2, ..opts(dir.path()) });
    let q = Arc::new(q);
    q.push(&spans(0, 4));
    q.push(&spans(1, 4));
    let q2 = q.clone();
    let pusher = std::thread::spawn(move || q2.push(&spans(2, 4)));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!pusher.is_finished(), "push must wait while the queue is full");
    let (_, t) = q.try_pop().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    assert!(!pusher.is_finished(), "a record in flight still holds its room");
    q.ack(t);
    assert_eq!(pusher.join().unwrap(), PersistentPush::Queued);
    assert_eq!(failed.get(), 0);
    assert_eq!(drain(&q), vec![1, 2]);
}

#[test]
fn batch_bound_block_wakes_on_a_pop() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(PersistentOptions { capacity: 1, ..opts(dir.path()) });
    let q = Arc::new(q);
    q.push(&spans(0, 1));
    let q2 = q.clone();
    let pusher = std::thread::spawn(move || q2.push(&spans(1, 1)));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!pusher.is_finished());
    // Popped, never acked (a consumer stuck retrying): the batch bound has room again.
    let _in_flight = q.try_pop().unwrap();
    assert_eq!(pusher.join().unwrap(), PersistentPush::Queued);
}

#[test]
fn items_sizer_bounds_by_items_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let o = || PersistentOptions {
        capacity: 10,
        sizer: Sizer::Items,
        policy: FullQueuePolicy::DropNewest,
        ..opts(dir.path())
    };
    {
        let (q, _, failed) = open(o());
        assert_eq!(q.push(&spans(0, 4)), PersistentPush::Queued);
        assert_eq!(q.push(&spans(1, 6)), PersistentPush::Queued);
        assert_eq!((q.size(), q.len()), (10, 2));
        assert_eq!(q.push(&spans(2, 1)), PersistentPush::Dropped, "10 items of 10: full");
        assert_eq!(q.push(&spans(3, 11)), PersistentPush::TooLarge, "never fits");
        assert_eq!(failed.get(), 12);
        // A pop gives the record's items back.
        let (b, t) = q.try_pop().unwrap();
        assert_eq!(b.item_count(), 4);
        q.ack(t);
        assert_eq!(q.size(), 6);
    }
    // The replay counts the items of what waits again.
    let (q, _, _) = open(o());
    assert_eq!((q.size(), q.len()), (6, 1));
    assert_eq!(q.push(&spans(4, 5)), PersistentPush::Dropped);
    assert_eq!(q.push(&spans(5, 4)), PersistentPush::Queued);
    assert_eq!(drain(&q), vec![1, 5]);
    assert_eq!(q.size(), 0);
}

#[test]
fn bytes_sizer_bounds_by_protobuf_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let one = encode_payload(&spans(0, 4)).len() as u64 - 1;
    let (q, _, _) = open(PersistentOptions {
        capacity: one * 2,
        sizer: Sizer::Bytes,
        policy: FullQueuePolicy::DropNewest,
        ..opts(dir.path())
    });
    assert_eq!(q.push(&spans(0, 4)), PersistentPush::Queued);
    assert_eq!(q.push(&spans(1, 4)), PersistentPush::Queued);
    assert_eq!(q.size(), one * 2);
    assert_eq!(q.push(&spans(2, 4)), PersistentPush::Dropped);
}

#[test]
fn batch_count_bound_applies_too() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(PersistentOptions { capacity: 2, policy: FullQueuePolicy::DropNewest, ..opts(dir.path()) });
    assert_eq!(q.push(&spans(0, 1)), PersistentPush::Queued);
    assert_eq!(q.push(&spans(1, 1)), PersistentPush::Queued);
    assert_eq!(q.push(&spans(2, 1)), PersistentPush::Dropped);
}

#[test]
fn torn_tail_is_detected_and_earlier_records_delivered() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (q, _, _) = open(opts(dir.path()));
        for i in 0..5 {
            q.push(&spans(i, 3));
        }
    }
    let seg = seg_files(dir.path()).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 7).unwrap(); // the last record loses its last 7 bytes
    drop(f);
    let (q, m, _) = open(opts(dir.path()));
    assert_eq!(m.corrupt_records.get(), 1);
    assert!(m.corrupt_bytes.get() > 0);
    assert_eq!(m.replayed.get(), 4);
    assert_eq!(drain(&q), vec![0, 1, 2, 3]);
    drop(q);
    let (_, m, _) = open(opts(dir.path()));
    assert_eq!(m.corrupt_records.get(), 0, "the torn tail was cut off and is not reported twice");
}

#[test]
fn flipped_byte_in_a_middle_record_skips_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let record = HEADER_LEN + encode_payload(&spans(0, 3)).len() as u64;
    {
        // Two records per segment: records 0,1 | 2,3 | 4,5
        let (q, _, _) = open(PersistentOptions { segment_bytes: record * 2, ..opts(dir.path()) });
        for i in 0..6 {
            q.push(&spans(i, 3));
        }
    }
    let files = seg_files(dir.path());
    assert_eq!(files.len(), 3);
    // Flip a payload byte of record 2 (the first of the middle segment).
    let mut raw = fs::read(&files[1]).unwrap();
    raw[HEADER_LEN as usize + 10] ^= 0xff;
    fs::write(&files[1], raw).unwrap();
    let (q, m, _) = open(opts(dir.path()));
    assert_eq!(m.corrupt_records.get(), 1);
    assert_eq!(m.corrupt_bytes.get(), record, "only the bad record is skipped");
    assert_eq!(drain(&q), vec![0, 1, 3, 4, 5], "the record after the bad one, and later segments, are delivered");
}

/// 1000 records in one segment, one payload byte flipped in the middle.
fn thousand_records_in_one_segment(dir: &Path) -> (PathBuf, u64) {
    let record = HEADER_LEN + encode_payload(&spans(0, 1)).len() as u64;
    {
        let (q, _, _) = open(PersistentOptions { capacity: 2000, ..opts(dir) });
        for i in 0..1000 {
            assert_eq!(q.push(&spans(i, 1)), PersistentPush::Queued);
        }
    }
    let files = seg_files(dir);
    assert_eq!(files.len(), 1, "one segment");
    (files[0].clone(), record)
}

#[test]
fn one_flipped_payload_byte_in_a_1000_record_segment_loses_one_record() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, record) = thousand_records_in_one_segment(dir.path());
    let mut raw = fs::read(&seg).unwrap();
    let len = raw.len();
    assert_eq!(len as u64, record * 1000);
    raw[(record * 500 + HEADER_LEN + 20) as usize] ^= 0x01; // record 500's payload; its length is intact
    fs::write(&seg, &raw).unwrap();

    let (q, m, _) = open(PersistentOptions { capacity: 2000, ..opts(dir.path()) });
    assert_eq!(m.corrupt_records.get(), 1);
    assert_eq!(m.corrupt_bytes.get(), record);
    assert_eq!(m.replayed.get(), 999);
    assert_eq!(fs::metadata(&seg).unwrap().len(), len as u64, "the segment is not truncated");
    let got = drain(&q);
    assert_eq!(got, (0..1000).filter(|i| *i != 500).collect::<Vec<_>>());
    drop(q);
    // Every good record acknowledged: the segment is deleted at the next start.
    let (q, m, _) = open(PersistentOptions { capacity: 2000, ..opts(dir.path()) });
    assert_eq!(m.replayed.get(), 0);
    assert!(q.is_empty());
    assert!(seg_files(dir.path()).is_empty(), "a segment with only delivered records and a corrupt one is deleted");
}

#[test]
fn a_garbage_length_in_the_middle_resyncs_at_the_next_record_that_checks() {
    for garbage in [u32::MAX, (1 << 30) - 1, 5, 0] {
        let dir = tempfile::tempdir().unwrap();
        let (seg, record) = thousand_records_in_one_segment(dir.path());
        let mut raw = fs::read(&seg).unwrap();
        let len = raw.len();
        let at = (record * 300) as usize; // record 300's length field
        raw[at..at + 4].copy_from_slice(&garbage.to_le_bytes());
        fs::write(&seg, &raw).unwrap();

        let (q, m, _) = open(PersistentOptions { capacity: 2000, ..opts(dir.path()) });
        assert_eq!(m.corrupt_records.get(), 1, "length {garbage}");
        assert_eq!(m.corrupt_bytes.get(), record, "length {garbage}");
        assert_eq!(fs::metadata(&seg).unwrap().len(), len as u64, "length {garbage}: not truncated");
        assert_eq!(drain(&q), (0..1000).filter(|i| *i != 300).collect::<Vec<_>>(), "length {garbage}");
    }
}

#[test]
fn a_smashed_stretch_of_several_records_is_counted_by_their_seqs() {
    let dir = tempfile::tempdir().unwrap();
    let (seg, record) = thousand_records_in_one_segment(dir.path());
    let mut raw = fs::read(&seg).unwrap();
    // Records 100..103 overwritten from the middle of 100 to the middle of 103.
    let from = (record * 100 + record / 2) as usize;
    let to = (record * 103 + record / 2) as usize;
    raw[from..to].fill(0xAB);
    fs::write(&seg, &raw).unwrap();

    let (q, m, _) = open(PersistentOptions { capacity: 2000, ..opts(dir.path()) });
    assert_eq!(m.corrupt_records.get(), 4, "records 100, 101, 102 and 103");
    assert_eq!(m.corrupt_bytes.get(), record * 4);
    assert_eq!(drain(&q), (0..1000).filter(|i| !(100..104).contains(i)).collect::<Vec<_>>());
}

/// Crafted payloads full of headers that look like the next record make a
/// resync give up within its budget; the rest of the segment is then left
/// on disk (a record after it may still check), not cut off.
#[test]
fn a_resync_that_spends_its_budget_ends_the_replay_without_cutting() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (q, _, _) = open(opts(dir.path()));
        for i in 0..3 {
            q.push(&spans(i, 1));
        }
    }
    let seg = seg_files(dir.path()).pop().unwrap();
    let raw = fs::read(&seg).unwrap();
    let record = HEADER_LEN as usize + encode_payload(&spans(0, 1)).len();
    let first_seq = u64::from_le_bytes(raw[8..16].try_into().unwrap());
    // Record 0, then 4 MiB of garbage (its first bytes a header of absurd length),
    // sown with fake headers of record 1's seq and a 3 MiB length, then records 1 and 2.
    let mut garbage = vec![0xEEu8; 4 << 20];
    for k in 1..8 {
        let at = k * 1000;
        garbage[at..at + 4].copy_from_slice(&(3u32 << 20).to_le_bytes());
        garbage[at + 4..at + 8].copy_from_slice(&0u32.to_le_bytes());
        garbage[at + 8..at + 16].copy_from_slice(&(first_seq + 1).to_le_bytes());
    }
    let crafted = [&raw[..record], &garbage[..], &raw[record..]].concat();
    fs::write(&seg, &crafted).unwrap();

    let (q, m, _) = open(opts(dir.path()));
    assert_eq!(m.corrupt_records.get(), 1);
    assert_eq!(drain(&q), vec![0]);
    assert_eq!(fs::metadata(&seg).unwrap().len(), crafted.len() as u64, "not cut: records after it may check");
    // New records get seqs past any the unread rest could carry, and are delivered.
    assert_eq!(q.push(&spans(9, 1)), PersistentPush::Queued);
    assert_eq!(drain(&q), vec![9]);
}

#[test]
fn bad_header_length_is_corruption_not_a_huge_allocation() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (q, _, _) = open(opts(dir.path()));
        q.push(&spans(0, 1));
        q.push(&spans(1, 1));
    }
    let seg = seg_files(dir.path()).pop().unwrap();
    let mut raw = fs::read(&seg).unwrap();
    let record = HEADER_LEN as usize + encode_payload(&spans(0, 1)).len();
    raw[record..record + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    fs::write(&seg, raw).unwrap();
    let (q, m, _) = open(opts(dir.path()));
    assert_eq!(m.corrupt_records.get(), 1);
    assert_eq!(drain(&q), vec![0]);
    assert_eq!(fs::metadata(&seg).unwrap().len(), record as u64, "the last record is a torn tail: cut off");
}

#[test]
fn pop_waits_for_push_and_close_ends_it() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(opts(dir.path()));
    let q = Arc::new(q);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let q2 = q.clone();
        let consumer = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some((b, t)) = q2.pop().await {
                got.push(id_of(&b));
                q2.ack(t);
            }
            got
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        let q3 = q.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..50 {
                q3.push(&spans(i, 1));
            }
            q3.close();
        })
        .await
        .unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), consumer).await.unwrap().unwrap();
        assert_eq!(got, (0..50).collect::<Vec<_>>());
    });
    assert_eq!(q.push(&spans(1, 1)), PersistentPush::Closed);
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_q, _, _) = open(opts(dir.path()));
    let second = PersistentQueue::open(opts(dir.path()), PersistentQueueMetrics::default(), Counter::default());
    assert!(matches!(second, Err(OpenError::Locked { .. })));
}

#[test]
fn ack_log_is_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let (q, _, _) = open(PersistentOptions { segment_bytes: 4096, ..opts(dir.path()) });
    for round in 0..200u32 {
        for i in 0..1000 {
            q.push(&spans(round * 1000 + i, 1));
        }
        drain(&q);
    }
    let acks = fs::metadata(dir.path().join(ACKS_FILE)).unwrap().len();
    assert!(acks <= (1 << 20) + 8, "ack log stays bounded: {acks} bytes");
}

#[test]
fn queue_dir_names_do_not_collide() {
    assert_eq!(queue_dir_name("otlp", Signal::Traces), "exporter_otlp_traces");
    assert_ne!(queue_dir_name("otlp/a", Signal::Logs), queue_dir_name("otlp_a", Signal::Logs));
    assert!(!queue_dir_name("otlp/../x", Signal::Logs).contains('/'));
}
