//! The persistent sending queue: a write-ahead log of batches in segment
//! files, so that what a receiver acknowledged survives `kill -9` and
//! restarts, and an exporter's outage is absorbed on disk, not in memory.
//!
//! # Layout
//!
//! One directory per queue (exporter ID + signal) holds:
//! - `seg-<first seq, 20 digits>.wal`: records
//!   `[len u32 LE][crc32 u32 LE][seq u64 LE][payload: len bytes]`, where the
//!   payload is a signal tag byte and the batch as its OTLP
//!   `Export*ServiceRequest` protobuf, and the CRC (IEEE, `crc32fast`) covers
//!   the payload, then the seq. A segment is closed once it passes the
//!   segment size; the next record starts a new one.
//! - `acks.log`: the seq (u64 LE) of every delivered record, appended after
//!   the exporter is done with it, and the seq with the top bit set of every
//!   record handed to a consumer ("taken"). Rewritten at start with only the
//!   acks of live segments.
//! - `LOCK`: an exclusive `flock`, so two agents never share a queue.
//!
//! # Guarantees
//!
//! - `push` returns `Queued` only once the record is written to its segment
//!   (and, with `fsync: true`, synced to the device). A process crash
//!   (`kill -9`) loses nothing written; with `fsync: false` a machine crash
//!   can lose what the kernel had not yet written back.
//! - Records are handed to consumers in seq order; at start, undelivered
//!   records of every segment are handed out before new ones.
//! - At-least-once: a record is acknowledged after its send ends (sent, or
//!   counted as failed). A crash between the end of a send and the ack write
//!   delivers that record again after restart: at most one duplicate per
//!   consumer (each consumer has one record in flight). Such records, taken
//!   but not acknowledged when the agent stopped, are counted at the next
//!   start (`sluice_queue_redelivered_records_total`): each may arrive twice.
//!   With `fsync: false` a machine crash can also lose unsynced acks, so more
//!   records can repeat than are counted.
//! - A record that fails its check (bad CRC, implausible length) is skipped
//!   and the replay goes on at the next record that checks: the next record
//!   is looked for where the bad one's length says it starts and, when it is
//!   not there (the length itself was hit), by scanning forward for a header
//!   carrying one of the next seqs whose CRC matches (records of a segment
//!   have consecutive seqs). The records lost (by the seq gap) and the bytes
//!   skipped are counted (`sluice_queue_corrupt_records_total`,
//!   `..._corrupt_bytes_total`) and logged with the file and offset. Only a
//!   torn tail, where no record after the bad one checks, ends a segment's
//!   replay; it is cut off. A segment is never cut where a record after the
//!   cut still checks. The skipped bytes stay in the file (good records are
//!   never rewritten), so each start counts them again until the segment is
//!   delivered and deleted. Reading a length never allocates more than the
//!   file holds.
//! - Bounds: at most `capacity` of records waiting to be handed out,
//!   measured by the sizer (records, their items, or their protobuf bytes),
//!   and at most `max_bytes` of undelivered records. A full queue waits for
//!   room (`block`) or refuses the batch (`drop_newest`, counted as
//!   `enqueue_failed`); a batch larger than either bound is refused at once. The files can exceed `max_bytes` by delivered records
//!   that share a segment with an undelivered one: at most one segment per
//!   record in flight. A segment whose records are all delivered is deleted.
//! - Memory: batches live on disk; in memory there is one set of acked seqs
//!   per live segment, the size of each record waiting, and the batches
//!   consumers are sending.
//!
//! Writes, reads and acks take one lock; the fsync of a push or an ack runs
//! after it is released, so threads that sync at once share the device's
//! commit (group commit). With `fsync: true` one thread's rate is still
//! bounded by the device's sync latency. Opening
//! reads every segment once to check it, so start-up time grows with the
//! backlog on disk.

use super::{FullQueuePolicy, Sizer};
use crate::data::check::check_request;
use crate::data::{Batch, EncodedBatch, Payload, Signal};
use crate::telemetry::{Counter, PersistentQueueMetrics};
use prost::Message;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use tracing::{error, warn};

/// Bytes before a record's payload: len, crc, seq.
pub const HEADER_LEN: u64 = 16;
/// A length above this is taken as corruption rather than a record.
const MAX_RECORD: u64 = 1 << 30;
/// Default size at which a segment is closed.
pub const DEFAULT_SEGMENT_BYTES: u64 = 16 << 20;
const ACKS_FILE: &str = "acks.log";
/// Set in an `acks.log` entry that records a hand-out, not a delivery.
const TAKEN: u64 = 1 << 63;

/// How a persistent queue is opened.
#[derive(Debug, Clone)]
pub struct PersistentOptions {
    pub dir: PathBuf,
    /// fsync every record and ack before it counts as written.
    pub fsync: bool,
    /// What `capacity` counts (requests, items or bytes).
    pub sizer: Sizer,
    /// Records waiting to be handed out, at most, measured by `sizer`.
    pub capacity: u64,
    /// Bytes of undelivered records (headers included), at most.
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub policy: FullQueuePolicy,
    /// Exporter and signal, for log lines.
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PersistentPush {
    Queued,
    Dropped,
    Closed,
    /// Writing failed (disk full, I/O error); nothing of the batch is on disk.
    Failed,
    /// Larger than the whole queue (`capacity` by the sizer, or the byte
    /// bound): it could never fit, so it is refused without waiting.
    TooLarge,
}

/// A record handed to a consumer; give it back to [`PersistentQueue::ack`].
#[derive(Debug)]
pub struct Ticket {
    seq: u64,
    bytes: u64,
}

struct Segment {
    first_seq: u64,
    path: PathBuf,
    /// Bytes of whole records in the file.
    len: u64,
    records: u64,
    /// Records read by consumers (or skipped as acked at replay), and the last one's seq.
    popped: u64,
    last_popped: u64,
    acked: HashSet<u64>,
    /// Corrupt stretches found at start: offset of the bad record -> offset
    /// of the next record that checked. The reader jumps over them.
    holes: BTreeMap<u64, u64>,
    /// Sizes (by the queue's sizer) of the records not yet handed out, in
    /// order: what a pop or a lost rest gives back to the bound.
    sizes: VecDeque<u64>,
}

impl Segment {
    /// A segment with nothing read or written yet.
    fn empty(first_seq: u64, path: PathBuf) -> Segment {
        Segment {
            first_seq,
            path,
            len: 0,
            records: 0,
            popped: 0,
            last_popped: 0,
            acked: HashSet::new(),
            holes: BTreeMap::new(),
            sizes: VecDeque::new(),
        }
    }

    fn done(&self) -> bool {
        self.acked.len() as u64 >= self.records
    }
}

struct State {
    /// Ascending by first seq; the last one is written to.
    segments: VecDeque<Segment>,
    /// Shared so that fsync can run after the lock is released.
    writer: Option<Arc<File>>,
    next_seq: u64,
    /// Read position: segment (by first seq) and byte offset.
    read_seg: u64,
    read_off: u64,
    reader: Option<(u64, File)>,
    /// Written, not yet handed out.
    pending: usize,
    /// Their size by the queue's sizer.
    pending_size: u64,
    /// Bytes of records not yet acknowledged.
    unacked_bytes: u64,
    acks: Arc<File>,
    acks_len: u64,
    closed: bool,
}

pub struct PersistentQueue {
    opts: PersistentOptions,
    state: Mutex<State>,
    room: Condvar,
    available: tokio::sync::Notify,
    metrics: PersistentQueueMetrics,
    enqueue_failed: Counter,
    _lock: File,
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot use queue directory {dir}: {source}")]
    Io { dir: String, source: io::Error },
    #[error("queue directory {dir} is in use by another process")]
    Locked { dir: String },
}

fn segment_name(first_seq: u64) -> String {
    format!("seg-{first_seq:020}.wal")
}

fn signal_tag(signal: Signal) -> u8 {
    match signal {
        Signal::Traces => 1,
        Signal::Metrics => 2,
        Signal::Logs => 3,
    }
}

/// The payload of a record: signal tag, then the protobuf.
pub fn encode_payload(payload: &Payload) -> Vec<u8> {
    match payload {
        Payload::Decoded(batch) => {
            let mut buf = Vec::with_capacity(1 + batch.encoded_len());
            buf.push(signal_tag(batch.signal()));
            let _ = match batch {
                Batch::Traces(r) => r.encode(&mut buf),
                Batch::Metrics(r) => r.encode(&mut buf),
                Batch::Logs(r) => r.encode(&mut buf),
            };
            buf
        }
        Payload::Encoded(e) => {
            let mut buf = Vec::with_capacity(1 + e.encoded_len());
            buf.push(signal_tag(e.signal()));
            e.write_to(&mut buf);
            buf
        }
    }
}

/// A record's size by `sizer`: 1, its items, or its protobuf bytes (the
/// payload less its signal tag). Items are counted by checking the bytes,
/// as a receiver checks a request; a record that does not check counts 1.
fn record_size(sizer: Sizer, payload: &[u8]) -> u64 {
    match sizer {
        Sizer::Requests => 1,
        Sizer::Bytes => payload.len().saturating_sub(1) as u64,
        Sizer::Items => match decode_payload(payload.to_vec()) {
            Ok(p) => p.item_count() as u64,
            Err(_) => 1,
        },
    }
}

/// A record's batch, still encoded: checked as a receiver checks a request
/// (so an exporter that needs it decoded can decode it) but not decoded.
pub fn decode_payload(payload: Vec<u8>) -> Result<Payload, String> {
    let signal = match payload.first() {
        None => return Err("empty payload".into()),
        Some(1) => Signal::Traces,
        Some(2) => Signal::Metrics,
        Some(3) => Signal::Logs,
        Some(t) => return Err(format!("unknown signal tag {t}")),
    };
    let body = bytes::Bytes::from(payload).slice(1..);
    let items = check_request(signal, &body).map_err(|e| e.to_string())?;
    Ok(Payload::Encoded(EncodedBatch::checked(signal, body, items)))
}

fn crc_of(payload: &[u8], seq: u64) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(payload);
    h.update(&seq.to_le_bytes());
    h.finalize()
}

/// One record read back from a segment.
enum ReadRecord {
    Ok {
        seq: u64,
        payload: Vec<u8>,
        size: u64,
    },
    /// End of the file.
    End,
    /// Bad header, bad CRC, or cut short; why, and the record's size when its
    /// length was plausible and fits in the file (it may still be the part hit).
    Corrupt {
        why: String,
        size: Option<u64>,
    },
}

fn corrupt(why: String) -> io::Result<ReadRecord> {
    Ok(ReadRecord::Corrupt { why, size: None })
}

fn read_record(file: &File, offset: u64, file_len: u64) -> io::Result<ReadRecord> {
    if offset >= file_len {
        return Ok(ReadRecord::End);
    }
    if file_len - offset < HEADER_LEN {
        return corrupt(format!("record header cut short ({} of {HEADER_LEN} bytes)", file_len - offset));
    }
    let mut head = [0u8; HEADER_LEN as usize];
    file.read_exact_at(&mut head, offset)?;
    let len = u32::from_le_bytes(head[0..4].try_into().unwrap()) as u64;
    let crc = u32::from_le_bytes(head[4..8].try_into().unwrap());
    let seq = u64::from_le_bytes(head[8..16].try_into().unwrap());
    if len == 0 || len > MAX_RECORD {
        return corrupt(format!("implausible record length {len}"));
    }
    // Checked before allocating: a length is never trusted past the file's end.
    if file_len - offset - HEADER_LEN < len {
        return corrupt(format!("record cut short ({} of {len} payload bytes)", file_len - offset - HEADER_LEN));
    }
    let mut payload = vec![0u8; len as usize];
    file.read_exact_at(&mut payload, offset + HEADER_LEN)?;
    if crc_of(&payload, seq) != crc {
        return Ok(ReadRecord::Corrupt { why: "checksum mismatch".into(), size: Some(HEADER_LEN + len) });
    }
    Ok(ReadRecord::Ok { seq, payload, size: HEADER_LEN + len })
}

/// Where a replay goes on after a corrupt record.
enum Resync {
    /// At this offset, whose record carries this seq.
    At(u64, u64),
    /// No record after the bad one checks: a torn tail, cut off.
    TornTail,
    /// The scan spent its budget on candidates that did not check (only
    /// crafted payloads can do that): the segment's replay ends here, but
    /// the file is not cut, since a later record may still check; it is
    /// deleted like any other once the records read from it are delivered.
    GaveUp,
}

/// After a corrupt record at `bad`: where the next record that checks and
/// carries a seq from `expected` on starts. First where the bad record's
/// length says the next one starts (the common case: a flipped payload
/// byte); else by scanning forward byte by byte for a header whose seq is
/// one the bytes skipped can account for (records of a segment have
/// consecutive seqs and take at least `HEADER_LEN + 1` bytes each), whose
/// length fits and whose CRC matches. The CRC work of one scan is bounded by
/// twice the bytes after `bad` (plus 1 MiB), so crafted payloads cannot make
/// it quadratic.
fn resync(file: &File, bad: u64, size: Option<u64>, file_len: u64, expected: u64) -> io::Result<Resync> {
    // The most seqs the bytes from `bad` to `at` can hold.
    let seq_fits = |seq: u64, at: u64| seq >= expected && seq - expected <= (at - bad) / (HEADER_LEN + 1);
    if let Some(size) = size {
        if let ReadRecord::Ok { seq, .. } = read_record(file, bad + size, file_len)? {
            if seq_fits(seq, bad + size) {
                return Ok(Resync::At(bad + size, seq));
            }
        }
    }
    const CHUNK: usize = 64 << 10;
    let mut budget = (file_len - bad).saturating_mul(2).saturating_add(1 << 20);
    let mut buf = vec![0u8; CHUNK + HEADER_LEN as usize];
    let mut start = bad + 1;
    while start + HEADER_LEN <= file_len {
        let n = ((file_len - start) as usize).min(buf.len());
        file.read_exact_at(&mut buf[..n], start)?;
        // Headers starting in this chunk; the overlap covers one cut at its end.
        let last = n.saturating_sub(HEADER_LEN as usize);
        for i in 0..=last.min(CHUNK - 1) {
            let at = start + i as u64;
            let seq = u64::from_le_bytes(buf[i + 8..i + 16].try_into().unwrap());
            if !seq_fits(seq, at) {
                continue;
            }
            let len = u32::from_le_bytes(buf[i..i + 4].try_into().unwrap()) as u64;
            if len == 0 || len > MAX_RECORD || len > file_len - at - HEADER_LEN {
                continue;
            }
            if budget < len {
                return Ok(Resync::GaveUp);
            }
            budget -= len;
            if let ReadRecord::Ok { seq, .. } = read_record(file, at, file_len)? {
                return Ok(Resync::At(at, seq));
            }
        }
        start += CHUNK as u64;
    }
    Ok(Resync::TornTail)
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

impl PersistentQueue {
    /// Opens (creating if needed) the queue in `opts.dir` and replays what
    /// earlier runs left undelivered.
    pub fn open(
        opts: PersistentOptions,
        metrics: PersistentQueueMetrics,
        enqueue_failed: Counter,
    ) -> Result<PersistentQueue, OpenError> {
        let dir = opts.dir.clone();
        let io_err = |source: io::Error| OpenError::Io { dir: dir.display().to_string(), source };
        fs::create_dir_all(&dir).map_err(io_err)?;
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("LOCK")).map_err(io_err)?;
        // SAFETY: flock on a descriptor we own; released when the process ends, even on kill -9.
        if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(OpenError::Locked { dir: dir.display().to_string() });
        }

        // Acks of earlier runs; a cut-short last entry is ignored (that record repeats).
        let mut acked_before = HashSet::new();
        let mut taken_before = HashSet::new();
        let mut max_seq = 0u64;
        match File::open(dir.join(ACKS_FILE)) {
            Ok(mut f) => {
                let mut raw = Vec::new();
                f.read_to_end(&mut raw).map_err(io_err)?;
                for chunk in raw.chunks_exact(8) {
                    let entry = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                    if entry & TAKEN != 0 {
                        taken_before.insert(entry & !TAKEN);
                    } else {
                        acked_before.insert(entry);
                        max_seq = max_seq.max(entry);
                    }
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(e)),
        }

        let mut names: Vec<(u64, PathBuf)> = fs::read_dir(&dir)
            .map_err(io_err)?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = name.strip_prefix("seg-")?.strip_suffix(".wal")?.parse().ok()?;
                Some((seq, e.path()))
            })
            .collect();
        names.sort();

        let mut segments = VecDeque::new();
        let mut pending = 0usize;
        let mut pending_size = 0u64;
        let mut redelivered = 0u64;
        let mut unacked_bytes = 0u64;
        let mut disk = 0u64;
        for (first_seq, path) in names {
            max_seq = max_seq.max(first_seq);
            let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_err)?;
            let file_len = file.metadata().map_err(io_err)?.len();
            let mut seg = Segment::empty(first_seq, path);
            // Records of a segment carry consecutive seqs from its first.
            let mut expected = first_seq;
            loop {
                match read_record(&file, seg.len, file_len).map_err(io_err)? {
                    ReadRecord::End => break,
                    ReadRecord::Ok { seq, size, payload } => {
                        seg.records += 1;
                        seg.len += size;
                        max_seq = max_seq.max(seq);
                        expected = seq.saturating_add(1);
                        if acked_before.contains(&seq) {
                            seg.acked.insert(seq);
                        } else {
                            pending += 1;
                            let sized = record_size(opts.sizer, &payload);
                            seg.sizes.push_back(sized);
                            pending_size += sized;
                            redelivered += u64::from(taken_before.contains(&seq));
                            unacked_bytes += size;
                        }
                    }
                    ReadRecord::Corrupt { why, size } => {
                        match resync(&file, seg.len, size, file_len, expected).map_err(io_err)? {
                            Resync::At(next, seq) => {
                                let skipped = next - seg.len;
                                let lost = seq.saturating_sub(expected).max(1);
                                warn!(
                                    queue = %opts.name,
                                    file = %seg.path.display(),
                                    offset = seg.len,
                                    skipped_bytes = skipped,
                                    lost_records = lost,
                                    "corrupt record in persistent queue ({why}); skipped, replay goes on at offset {next}"
                                );
                                metrics.corrupt_records.add(lost);
                                metrics.corrupt_bytes.add(skipped);
                                seg.holes.insert(seg.len, next);
                                seg.len = next;
                                expected = seq;
                            }
                            end => {
                                let skipped = file_len - seg.len;
                                let torn = matches!(end, Resync::TornTail);
                                warn!(
                                    queue = %opts.name,
                                    file = %seg.path.display(),
                                    offset = seg.len,
                                    skipped_bytes = skipped,
                                    "corrupt record in persistent queue ({why}) and {}; replay of this segment ends here",
                                    if torn { "no record after it checks (torn tail)" } else { "no record found after it within the scan's budget" }
                                );
                                metrics.corrupt_records.inc();
                                metrics.corrupt_bytes.add(skipped);
                                if torn {
                                    // Nothing after the cut checks: cut it off so the next start does not report it again.
                                    file.set_len(seg.len).map_err(io_err)?;
                                } else {
                                    // Records may follow, unread: new seqs start past any they can carry.
                                    let room = (file_len - seg.len) / (HEADER_LEN + 1);
                                    max_seq = max_seq.max(expected.saturating_add(room));
                                }
                                break;
                            }
                        }
                    }
                }
            }
            if seg.done() {
                fs::remove_file(&seg.path).map_err(io_err)?;
                continue;
            }
            disk += seg.len;
            segments.push_back(seg);
        }
        metrics.replayed.add(pending as u64);
        metrics.redelivered.add(redelivered);
        if redelivered > 0 {
            warn!(
                queue = %opts.name,
                records = redelivered,
                "batches were being sent when the agent stopped; they are sent again and may arrive twice"
            );
        }
        metrics.bytes_on_disk.set(disk as i64);
        if pending > 0 {
            warn!(queue = %opts.name, records = pending, bytes = unacked_bytes, "replaying undelivered batches from disk");
        }

        // Rewrite the ack log with only the acks of live segments.
        let live: Vec<u64> = segments.iter().flat_map(|s| s.acked.iter().copied()).collect();
        let acks = Self::write_acks(&dir, &live, opts.fsync).map_err(io_err)?;
        let read_seg = segments.front().map_or(0, |s| s.first_seq);
        let state = State {
            segments,
            writer: None,
            next_seq: max_seq + 1,
            read_seg,
            read_off: 0,
            reader: None,
            pending,
            pending_size,
            unacked_bytes,
            acks_len: live.len() as u64 * 8,
            acks: Arc::new(acks),
            closed: false,
        };
        Ok(PersistentQueue {
            opts,
            state: Mutex::new(state),
            room: Condvar::new(),
            available: tokio::sync::Notify::new(),
            metrics,
            enqueue_failed,
            _lock: lock,
        })
    }

    /// Writes `acks.log` anew (via a temporary file and rename) and returns it open for appending.
    fn write_acks(dir: &Path, seqs: &[u64], fsync: bool) -> io::Result<File> {
        let tmp = dir.join("acks.log.tmp");
        let mut f = File::create(&tmp)?;
        let mut buf = Vec::with_capacity(seqs.len() * 8);
        for s in seqs {
            buf.extend_from_slice(&s.to_le_bytes());
        }
        f.write_all(&buf)?;
        if fsync {
            f.sync_data()?;
        }
        fs::rename(&tmp, dir.join(ACKS_FILE))?;
        if fsync {
            sync_dir(dir)?;
        }
        OpenOptions::new().append(true).open(dir.join(ACKS_FILE))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sync(&self, f: &File) -> io::Result<()> {
        if self.opts.fsync {
            self.metrics.fsyncs.inc();
            f.sync_data()?;
        }
        Ok(())
    }

    /// Appends the batch; from a pipeline worker thread, may block under the
    /// `block` policy. Failures are counted as `enqueue_failed`.
    pub fn push(&self, batch: &Payload) -> PersistentPush {
        let outcome = self.push_inner(batch);
        if outcome != PersistentPush::Queued {
            self.enqueue_failed.add(batch.item_count() as u64);
        }
        outcome
    }

    fn push_inner(&self, batch: &Payload) -> PersistentPush {
        let payload = encode_payload(batch);
        let size = HEADER_LEN + payload.len() as u64;
        let sized = match self.opts.sizer {
            Sizer::Requests => 1,
            Sizer::Items => batch.item_count() as u64,
            Sizer::Bytes => payload.len() as u64 - 1,
        };
        if size > self.opts.max_bytes || payload.len() as u64 > MAX_RECORD || sized > self.opts.capacity {
            warn!(queue = %self.opts.name, bytes = size, max_bytes = self.opts.max_bytes, size = sized, capacity = self.opts.capacity, sizer = self.opts.sizer.as_str(), "batch larger than the whole persistent queue; refusing it");
            return PersistentPush::TooLarge;
        }
        let mut st = self.lock();
        loop {
            if st.closed {
                return PersistentPush::Closed;
            }
            let full = st.pending_size + sized > self.opts.capacity || st.unacked_bytes + size > self.opts.max_bytes;
            if !full {
                break;
            }
            match self.opts.policy {
                FullQueuePolicy::DropNewest => return PersistentPush::Dropped,
                FullQueuePolicy::Block => st = self.room.wait(st).unwrap_or_else(|p| p.into_inner()),
            }
        }
        let segment = match self.append(&mut st, &payload, size, sized) {
            Ok(f) => f,
            Err(e) => {
                error!(queue = %self.opts.name, error = %e, "cannot write to the persistent queue");
                return PersistentPush::Failed;
            }
        };
        drop(st);
        self.available.notify_one();
        // Synced outside the lock, so pushes and acks of other threads that
        // sync at the same time share one journal commit (group commit).
        if let Err(e) = self.sync(&segment) {
            // The record is written but maybe not durable: refuse, the client retries.
            error!(queue = %self.opts.name, error = %e, "cannot sync the persistent queue");
            return PersistentPush::Failed;
        }
        PersistentPush::Queued
    }

    /// Writes the record (not synced); returns the segment's file to sync.
    fn append(&self, st: &mut State, payload: &[u8], size: u64, sized: u64) -> io::Result<Arc<File>> {
        let roll = match st.segments.back() {
            None => true,
            Some(last) => st.writer.is_none() || (last.len > 0 && last.len + size > self.opts.segment_bytes),
        };
        if roll {
            self.roll(st)?;
        }
        let seq = st.next_seq;
        let mut rec = Vec::with_capacity(size as usize);
        rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        rec.extend_from_slice(&crc_of(payload, seq).to_le_bytes());
        rec.extend_from_slice(&seq.to_le_bytes());
        rec.extend_from_slice(payload);
        let seg_len = st.segments.back().map_or(0, |s| s.len);
        let writer = Arc::clone(st.writer.as_ref().expect("rolled"));
        if let Err(e) = (&*writer).write_all(&rec) {
            // Leave no partial record behind for the reader or the next start.
            let _ = writer.set_len(seg_len);
            return Err(e);
        }
        let seg = st.segments.back_mut().expect("rolled");
        seg.len += size;
        seg.records += 1;
        seg.sizes.push_back(sized);
        st.next_seq += 1;
        st.pending += 1;
        st.pending_size += sized;
        st.unacked_bytes += size;
        self.metrics.bytes_on_disk.add(size as i64);
        Ok(writer)
    }

    /// Starts a new segment at the next seq; deletes the closed one if it is all delivered.
    fn roll(&self, st: &mut State) -> io::Result<()> {
        let first_seq = st.next_seq;
        let path = self.opts.dir.join(segment_name(first_seq));
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        // A file of this name can only be a leftover with no whole record.
        file.set_len(0)?;
        if self.opts.fsync {
            self.metrics.fsyncs.inc();
            sync_dir(&self.opts.dir)?;
        }
        st.writer = Some(Arc::new(file));
        if st.segments.back().is_some_and(|s| s.records == 0) {
            // Never written to: the new segment starts at the same seq and reuses the file.
            st.segments.pop_back();
        } else if st.segments.back().is_some_and(Segment::done) {
            let closed = st.segments.pop_back().expect("checked");
            self.delete_segment(st, closed);
        }
        st.segments.push_back(Segment::empty(first_seq, path));
        Ok(())
    }

    fn delete_segment(&self, st: &mut State, seg: Segment) {
        if let Err(e) = fs::remove_file(&seg.path) {
            warn!(queue = %self.opts.name, file = %seg.path.display(), error = %e, "cannot delete a delivered segment");
        }
        self.metrics.bytes_on_disk.add(-(seg.len as i64));
        if st.reader.as_ref().is_some_and(|(s, _)| *s == seg.first_seq) {
            st.reader = None;
        }
    }

    /// The next undelivered record, if one is ready: its batch and ticket.
    pub fn try_pop(&self) -> Option<(Payload, Ticket)> {
        loop {
            let (seq, payload, size) = {
                let mut st = self.lock();
                self.next_record(&mut st)?
            };
            // A pop frees room under the batch bound.
            self.room.notify_all();
            match decode_payload(payload) {
                Ok(batch) => return Some((batch, Ticket { seq, bytes: size })),
                Err(e) => {
                    // The CRC matched, so the bytes are what was written; nothing to retry.
                    error!(queue = %self.opts.name, seq, error = %e, "cannot decode a record of the persistent queue; skipping it");
                    self.metrics.corrupt_records.inc();
                    self.ack(Ticket { seq, bytes: size });
                }
            }
        }
    }

    fn next_record(&self, st: &mut State) -> Option<(u64, Vec<u8>, u64)> {
        loop {
            if st.pending == 0 {
                return None;
            }
            // The segment being read; it may have been deleted (all delivered).
            let read_seg = st.read_seg;
            let idx = st.segments.iter().position(|s| s.first_seq >= read_seg)?;
            if st.segments[idx].first_seq != read_seg {
                st.read_seg = st.segments[idx].first_seq;
                st.read_off = 0;
            }
            let is_last = idx + 1 == st.segments.len();
            let (first_seq, len) = (st.segments[idx].first_seq, st.segments[idx].len);
            if st.read_off >= len {
                if is_last {
                    return None;
                }
                st.read_seg = st.segments[idx + 1].first_seq;
                st.read_off = 0;
                continue;
            }
            if st.reader.as_ref().is_none_or(|(s, _)| *s != first_seq) {
                match File::open(&st.segments[idx].path) {
                    Ok(f) => st.reader = Some((first_seq, f)),
                    Err(e) => {
                        self.abandon_rest(st, idx, &format!("cannot open: {e}"));
                        continue;
                    }
                }
            }
            if let Some(&next) = st.segments[idx].holes.get(&st.read_off) {
                // Found corrupt at start and counted then.
                st.read_off = next;
                continue;
            }
            let file = &st.reader.as_ref().expect("opened").1;
            match read_record(file, st.read_off, len) {
                Ok(ReadRecord::Ok { seq, payload, size }) => {
                    st.read_off += size;
                    let seg = &mut st.segments[idx];
                    seg.popped += 1;
                    seg.last_popped = seq;
                    if seg.acked.contains(&seq) {
                        continue; // delivered before a restart
                    }
                    let sized = seg.sizes.pop_front().unwrap_or(0);
                    st.pending -= 1;
                    st.pending_size = st.pending_size.saturating_sub(sized);
                    // Not synced: a lost marker only undercounts redeliveries.
                    if let Err(e) = (&*st.acks).write_all(&(seq | TAKEN).to_le_bytes()) {
                        warn!(queue = %self.opts.name, error = %e, "cannot write to the ack log");
                    }
                    st.acks_len += 8;
                    return Some((seq, payload, size));
                }
                Ok(ReadRecord::End) => {
                    st.read_off = len;
                }
                Ok(ReadRecord::Corrupt { why, .. }) => self.abandon_rest(st, idx, &why),
                Err(e) => self.abandon_rest(st, idx, &e.to_string()),
            }
        }
    }

    /// A segment went bad after it was checked at start: its unread records are lost.
    fn abandon_rest(&self, st: &mut State, idx: usize, why: &str) {
        let seg = &mut st.segments[idx];
        // Unread records acked before a restart are not lost: they were delivered.
        let unread_acked = seg.acked.iter().filter(|s| **s > seg.last_popped).count() as u64;
        let lost = (seg.records - seg.popped).saturating_sub(unread_acked);
        error!(queue = %self.opts.name, file = %seg.path.display(), offset = st.read_off, lost_records = lost, "persistent queue segment unreadable ({why}); skipping its rest");
        self.metrics.corrupt_records.inc();
        self.metrics.corrupt_bytes.add(seg.len.saturating_sub(st.read_off));
        let lost_size: u64 = seg.sizes.drain(..).sum();
        seg.records = seg.popped + unread_acked;
        st.pending = st.pending.saturating_sub(lost as usize);
        st.pending_size = st.pending_size.saturating_sub(lost_size);
        st.read_off = seg.len;
    }

    /// Waits for the next record; `None` once the queue is closed and nothing is left to hand out.
    pub async fn pop(&self) -> Option<(Payload, Ticket)> {
        loop {
            let notified = self.available.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(r) = self.try_pop() {
                return Some(r);
            }
            if self.lock().closed {
                return None;
            }
            notified.await;
        }
    }

    /// The consumer is done with the record (sent, or counted as failed).
    pub fn ack(&self, ticket: Ticket) {
        let mut st = self.lock();
        let Some(idx) = st.segments.iter().rposition(|s| s.first_seq <= ticket.seq) else { return };
        if !st.segments[idx].acked.insert(ticket.seq) {
            return;
        }
        st.unacked_bytes = st.unacked_bytes.saturating_sub(ticket.bytes);
        if let Err(e) = (&*st.acks).write_all(&ticket.seq.to_le_bytes()) {
            // The record will be delivered again after a restart.
            warn!(queue = %self.opts.name, error = %e, "cannot write to the ack log");
        }
        let acks = Arc::clone(&st.acks);
        st.acks_len += 8;
        let is_last = idx + 1 == st.segments.len();
        if st.segments[idx].done() && !is_last {
            let seg = st.segments.remove(idx).expect("index in range");
            self.delete_segment(&mut st, seg);
        }
        // Keep the ack log small: rewrite it once most of it is about deleted segments.
        let live: usize = st.segments.iter().map(|s| s.acked.len()).sum();
        if st.acks_len > (1 << 20) && st.acks_len > 4 * 8 * live as u64 {
            let seqs: Vec<u64> = st.segments.iter().flat_map(|s| s.acked.iter().copied()).collect();
            match Self::write_acks(&self.opts.dir, &seqs, self.opts.fsync) {
                Ok(f) => {
                    st.acks = Arc::new(f);
                    st.acks_len = seqs.len() as u64 * 8;
                }
                Err(e) => warn!(queue = %self.opts.name, error = %e, "cannot compact the ack log"),
            }
        }
        drop(st);
        self.room.notify_all();
        // Outside the lock: concurrent acks share one sync.
        if let Err(e) = self.sync(&acks) {
            warn!(queue = %self.opts.name, error = %e, "cannot sync the ack log");
        }
    }

    /// No more pushes; consumers hand out what is left and then stop.
    /// Undelivered records stay on disk for the next start.
    pub fn close(&self) {
        self.lock().closed = true;
        self.room.notify_all();
        self.available.notify_waiters();
    }

    /// Records waiting to be handed out.
    pub fn len(&self) -> usize {
        self.lock().pending
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bound of what waits to be handed out, by the sizer.
    pub fn capacity(&self) -> u64 {
        self.opts.capacity
    }

    /// What waits to be handed out, by the sizer.
    pub fn size(&self) -> u64 {
        self.lock().pending_size
    }

    /// Bytes of undelivered records.
    pub fn unacked_bytes(&self) -> u64 {
        self.lock().unacked_bytes
    }

    /// Segment files present now (first seqs), for tests.
    pub fn segment_files(&self) -> Vec<PathBuf> {
        self.lock().segments.iter().map(|s| s.path.clone()).collect()
    }
}

/// A queue's directory name under the storage directory: exporter ID and
/// signal, with every byte that is not `[A-Za-z0-9_-]` written as `%XX`, so
/// two IDs never share a directory.
pub fn queue_dir_name(exporter: &str, signal: Signal) -> String {
    let mut out = String::from("exporter_");
    for b in exporter.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out.push('_');
    out.push_str(signal.as_str());
    out
}

#[cfg(test)]
#[path = "persistent_tests.rs"]
mod tests;
