//! The decision caches on disk, so that spans arriving after a restart (a
//! rolling update, a reload that replaces the pipeline, or `kill -9`) follow
//! the decisions made before it.
//!
//! Format: the magic `SLTSDC1\n`, then frames `[len u32][crc32 u32][kind u8]
//! [payload]` (little endian, the crc over kind and payload): one frame of
//! policy names, then frames of kept entries (trace ID, policy index,
//! probability) and of dropped entries (trace ID), oldest first so that a
//! reader that inserts them in order rebuilds the caches' eviction order.
//!
//! Each instance keeps one file, as a [`Journal`]: the decisions made since
//! the last save are appended to it as frames (one write and one fdatasync
//! per save), and the file is rewritten whole from the caches (a snapshot)
//! when the appended entries would outnumber what the caches hold, when the
//! file is not as this journal left it, and at the first save after a start.
//! A decision is written at most twice per snapshot period: once appended,
//! once in the snapshot that replaces the appends, so the cost per decision
//! is bounded, and the file holds at most the snapshot plus as many entries
//! again.
//!
//! Guarantees:
//! - a snapshot replaces the file whole (written beside it, synced,
//!   renamed): a crash while writing leaves the previous file;
//! - an append that a crash cuts short leaves a torn last frame, which the
//!   reader counts and stops at: only the decisions of that save are lost;
//! - reading never panics and never trusts a length: a frame that fails its
//!   checksum is skipped and counted, a length past the file's end (a torn
//!   or truncated file) ends the file and is counted, a file with a wrong
//!   magic or over `max_bytes` is skipped whole and counted.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"SLTSDC1\n";
const NAMES: u8 = 0;
const KEPT: u8 = 1;
const DROPPED: u8 = 2;
/// Entries per frame: a damaged frame loses at most this many.
const PER_FRAME: usize = 4096;
/// Kept entry: trace ID, policy index (u16::MAX: none), probability tag, threshold.
pub const KEPT_LEN: usize = 16 + 2 + 1 + 8;
/// Dropped entry: trace ID.
pub const DROPPED_LEN: usize = 16;
/// The policy index of a kept entry whose policy is unknown.
pub const NO_POLICY: u16 = u16::MAX;

/// One kept decision: the policy that kept it (by name: indexes change with
/// the config) and its threshold (`None`: rate limited, unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct KeptEntry {
    pub id: [u8; 16],
    pub policy: Option<String>,
    pub threshold: Option<u64>,
}

#[derive(Debug, Default, PartialEq)]
pub struct Loaded {
    pub kept: Vec<KeptEntry>,
    pub dropped: Vec<[u8; 16]>,
    /// Frames (or whole files) that failed a check and were skipped.
    pub corrupt: u64,
}

/// Encodes a kept entry (policy: an index into the names of the file).
pub fn encode_kept(out: &mut Vec<u8>, id: &[u8; 16], policy: u16, threshold: Option<u64>) {
    out.extend_from_slice(id);
    out.extend_from_slice(&policy.to_le_bytes());
    out.push(u8::from(threshold.is_some()));
    out.extend_from_slice(&threshold.unwrap_or(0).to_le_bytes());
}

/// A whole file: `names`, then the encoded kept entries, then the dropped.
pub fn snapshot_bytes(names: &[String], kept: &[u8], dropped: &[u8]) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(64 + kept.len() + dropped.len() + names.iter().map(|n| n.len() + 2).sum::<usize>());
    out.extend_from_slice(MAGIC);
    let names = &names[..names.len().min(usize::from(NO_POLICY))];
    let mut name_bytes = (names.len() as u16).to_le_bytes().to_vec();
    for n in names {
        let b = &n.as_bytes()[..n.len().min(usize::from(u16::MAX))];
        name_bytes.extend_from_slice(&(b.len() as u16).to_le_bytes());
        name_bytes.extend_from_slice(b);
    }
    frame(&mut out, NAMES, &name_bytes);
    entry_frames(&mut out, kept, dropped);
    out
}

/// Frames of encoded entries, at most [`PER_FRAME`] entries each.
fn entry_frames(out: &mut Vec<u8>, kept: &[u8], dropped: &[u8]) {
    for chunk in kept.chunks(PER_FRAME * KEPT_LEN) {
        frame(out, KEPT, chunk);
    }
    for chunk in dropped.chunks(PER_FRAME * DROPPED_LEN) {
        frame(out, DROPPED, chunk);
    }
}

/// Writes `path` anew: names, then kept entries, then dropped, each in the order given.
#[cfg(test)]
pub fn write(path: &Path, kept: &[KeptEntry], dropped: &[[u8; 16]]) -> io::Result<()> {
    let mut names: Vec<String> = Vec::new();
    let mut kept_bytes = Vec::with_capacity(kept.len() * KEPT_LEN);
    for k in kept {
        let index = match k.policy.as_deref() {
            Some(n) => match names.iter().position(|x| x == n) {
                Some(i) => i as u16,
                None if names.len() < usize::from(NO_POLICY) => {
                    names.push(n.to_string());
                    (names.len() - 1) as u16
                }
                None => NO_POLICY,
            },
            None => NO_POLICY,
        };
        encode_kept(&mut kept_bytes, &k.id, index, k.threshold);
    }
    let dropped_bytes = dropped.concat();
    crate::extensions::file_storage::replace_file(path, &snapshot_bytes(&names, &kept_bytes, &dropped_bytes), true)
}

/// How a [`Journal::save`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    /// Nothing was pending.
    Nothing,
    /// The pending entries were appended.
    Appended,
    /// The file was rewritten whole from the caches.
    Snapshot,
}

/// One instance's decision file and the decisions not yet in it.
pub struct Journal {
    path: PathBuf,
    /// Encoded kept entries made since the last save.
    kept: Vec<u8>,
    /// Encoded dropped entries made since the last save.
    dropped: Vec<u8>,
    /// Entries appended to the file since its last snapshot.
    appended: usize,
    /// Pending plus appended entries beyond which the next save is a snapshot.
    compact_after: usize,
    /// The next save rewrites the file whole (nothing is recorded meanwhile:
    /// the snapshot is taken from the caches).
    snapshot: bool,
    /// The file as this journal left it (inode, length): a file that is
    /// not (written by another instance, removed) gets a snapshot.
    left: Option<(u64, u64)>,
}

impl Journal {
    /// A journal of `path` whose first save is a snapshot; `compact_after`
    /// is what the caches hold (appends beyond it are rewritten whole).
    pub fn new(path: PathBuf, compact_after: usize) -> Journal {
        Journal {
            path,
            kept: Vec::new(),
            dropped: Vec::new(),
            appended: 0,
            compact_after: compact_after.max(1),
            snapshot: true,
            left: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn pending(&self) -> usize {
        self.kept.len() / KEPT_LEN + self.dropped.len() / DROPPED_LEN
    }

    /// Whether a save would write anything.
    pub fn has_pending(&self) -> bool {
        self.snapshot || self.pending() > 0
    }

    /// Records a kept decision (policy: the instance's policy index).
    pub fn kept(&mut self, id: &[u8; 16], policy: u16, threshold: Option<u64>) {
        if !self.snapshot {
            encode_kept(&mut self.kept, id, policy, threshold);
            self.bound();
        }
    }

    /// Records a dropped decision.
    pub fn dropped(&mut self, id: &[u8; 16]) {
        if !self.snapshot {
            self.dropped.extend_from_slice(id);
            self.bound();
        }
    }

    /// More pending than the caches hold: the caches are the smaller record.
    fn bound(&mut self) {
        if self.appended + self.pending() > self.compact_after {
            self.kept = Vec::new();
            self.dropped = Vec::new();
            self.snapshot = true;
        }
    }

    /// Writes what is pending: appended to the file, or, when a snapshot is
    /// due, the whole file from `caches` (the encoded kept and dropped
    /// entries, oldest first) and `names`. On an error nothing pending is
    /// kept and the next save is a snapshot.
    pub fn save(&mut self, names: &[String], caches: impl FnOnce() -> (Vec<u8>, Vec<u8>)) -> io::Result<Saved> {
        if !self.has_pending() {
            return Ok(Saved::Nothing);
        }
        let found = fs::metadata(&self.path).ok().map(|m| file_key(&m));
        let result = if self.snapshot || found.is_none() || found != self.left {
            let (kept, dropped) = caches();
            let bytes = snapshot_bytes(names, &kept, &dropped);
            crate::extensions::file_storage::replace_file(&self.path, &bytes, true).map(|()| {
                self.appended = 0;
                Saved::Snapshot
            })
        } else {
            let mut bytes = Vec::with_capacity(self.kept.len() + self.dropped.len() + 64);
            entry_frames(&mut bytes, &self.kept, &self.dropped);
            append(&self.path, &bytes).map(|()| {
                self.appended += self.pending();
                Saved::Appended
            })
        };
        self.kept.clear();
        self.dropped.clear();
        match result {
            Ok(how) => {
                self.snapshot = false;
                self.left = fs::metadata(&self.path).ok().map(|m| file_key(&m));
                Ok(how)
            }
            Err(e) => {
                self.snapshot = true;
                self.left = None;
                Err(e)
            }
        }
    }
}

fn file_key(m: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.ino(), m.len())
}

/// Appends `bytes` to the file and syncs its data.
fn append(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = fs::OpenOptions::new().append(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_data()
}

fn frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let len = (1 + payload.len()) as u32;
    let mut h = crc32fast::Hasher::new();
    h.update(&[kind]);
    h.update(payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&h.finalize().to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
}

/// Reads `path`; a missing file is empty. Only an I/O error opening or
/// reading it is an error; damage is counted in [`Loaded::corrupt`].
pub fn read(path: &Path, max_bytes: u64) -> io::Result<Loaded> {
    let mut loaded = Loaded::default();
    let size = match fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(loaded),
        Err(e) => return Err(e),
    };
    if size > max_bytes {
        loaded.corrupt += 1;
        return Ok(loaded);
    }
    let raw = fs::read(path)?;
    let Some(mut rest) = raw.strip_prefix(MAGIC.as_slice()) else {
        loaded.corrupt += 1;
        return Ok(loaded);
    };
    let mut names: Vec<String> = Vec::new();
    while !rest.is_empty() {
        let Some((head, after)) = rest.split_first_chunk::<8>() else {
            loaded.corrupt += 1; // torn header
            break;
        };
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        let Some((body, next)) = after.split_at_checked(len) else {
            loaded.corrupt += 1; // truncated: nothing after it can be trusted
            break;
        };
        rest = next;
        let Some((&kind, payload)) = body.split_first() else {
            loaded.corrupt += 1;
            continue;
        };
        if crc32fast::hash(body) != crc {
            loaded.corrupt += 1;
            continue;
        }
        match kind {
            NAMES => match read_names(payload) {
                Some(n) => names = n,
                None => loaded.corrupt += 1,
            },
            KEPT if payload.len().is_multiple_of(KEPT_LEN) => {
                for e in payload.chunks_exact(KEPT_LEN) {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(&e[..16]);
                    let index = u16::from_le_bytes([e[16], e[17]]);
                    let mut t = [0u8; 8];
                    t.copy_from_slice(&e[19..27]);
                    loaded.kept.push(KeptEntry {
                        id,
                        policy: names.get(usize::from(index)).cloned(),
                        threshold: (e[18] == 1).then_some(u64::from_le_bytes(t)),
                    });
                }
            }
            DROPPED if payload.len().is_multiple_of(16) => {
                for e in payload.chunks_exact(16) {
                    let mut id = [0u8; 16];
                    id.copy_from_slice(e);
                    loaded.dropped.push(id);
                }
            }
            _ => loaded.corrupt += 1,
        }
    }
    Ok(loaded)
}

fn read_names(mut p: &[u8]) -> Option<Vec<String>> {
    let (count, rest) = p.split_first_chunk::<2>()?;
    p = rest;
    let mut names = Vec::new();
    for _ in 0..u16::from_le_bytes(*count) {
        let (len, rest) = p.split_first_chunk::<2>()?;
        let (name, rest) = rest.split_at_checked(usize::from(u16::from_le_bytes(*len)))?;
        names.push(String::from_utf8_lossy(name).into_owned());
        p = rest;
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Vec<KeptEntry>, Vec<[u8; 16]>) {
        let kept = (0..5000u32)
            .map(|i| {
                let mut id = [0u8; 16];
                id[..4].copy_from_slice(&i.to_le_bytes());
                KeptEntry {
                    id,
                    policy: Some(if i % 2 == 0 { "errors" } else { "slow" }.to_string()),
                    threshold: (i % 3 != 0).then_some(u64::from(i) * 7),
                }
            })
            .collect();
        let dropped = (0..9000u32)
            .map(|i| {
                let mut id = [0xFFu8; 16];
                id[..4].copy_from_slice(&i.to_le_bytes());
                id
            })
            .collect();
        (kept, dropped)
    }

    #[test]
    fn round_trips_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions-0");
        let (kept, dropped) = sample();
        write(&path, &kept, &dropped).unwrap();
        let loaded = read(&path, 1 << 30).unwrap();
        assert_eq!(loaded.kept, kept);
        assert_eq!(loaded.dropped, dropped);
        assert_eq!(loaded.corrupt, 0);
        assert!(!path.with_extension("tmp").exists());
        assert_eq!(read(&dir.path().join("absent"), 1 << 30).unwrap(), Loaded::default());
    }

    #[test]
    fn a_flipped_byte_loses_one_frame_and_is_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let (kept, dropped) = sample();
        write(&path, &kept, &dropped).unwrap();
        let mut raw = fs::read(&path).unwrap();
        // Frames: names, kept (4096), kept (904), dropped (4096), dropped (4096), dropped (808).
        // A byte inside the last frame's payload:
        let last = raw.len() - 5;
        raw[last] ^= 1;
        fs::write(&path, &raw).unwrap();
        let loaded = read(&path, 1 << 30).unwrap();
        assert_eq!(loaded.corrupt, 1);
        assert_eq!(loaded.kept.len(), 5000);
        assert_eq!(loaded.dropped, dropped[..8192].to_vec());
    }

    #[test]
    fn truncated_garbage_and_oversized_files_are_counted_never_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d");
        let (kept, dropped) = sample();
        write(&path, &kept, &dropped).unwrap();
        let raw = fs::read(&path).unwrap();
        // Cut inside the second kept frame: the first kept frame survives.
        let first_kept_end = 8 + (8 + 1 + 2 + 2 + 6 + 2 + 4) + (8 + 1 + 4096 * KEPT_LEN);
        fs::write(&path, &raw[..first_kept_end + 100]).unwrap();
        let loaded = read(&path, 1 << 30).unwrap();
        assert_eq!((loaded.kept.len(), loaded.dropped.len(), loaded.corrupt), (4096, 0, 1));
        // Every prefix reads without panicking.
        for cut in (0..raw.len()).step_by(997) {
            fs::write(&path, &raw[..cut]).unwrap();
            let _ = read(&path, 1 << 30).unwrap();
        }
        fs::write(&path, b"not a decisions file").unwrap();
        assert_eq!(read(&path, 1 << 30).unwrap().corrupt, 1);
        write(&path, &kept, &dropped).unwrap();
        let over = read(&path, 100).unwrap();
        assert_eq!((over.kept.len(), over.corrupt), (0, 1), "over max_bytes: skipped whole");
        // A frame length of 4 GiB: ends the file, counted.
        let mut huge = MAGIC.to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        fs::write(&path, &huge).unwrap();
        assert_eq!(read(&path, 1 << 30).unwrap().corrupt, 1);
    }

    fn id(n: u32) -> [u8; 16] {
        let mut id = [0xABu8; 16];
        id[..4].copy_from_slice(&n.to_le_bytes());
        id
    }

    /// A journal's file read back: kept IDs (first byte pairs) and dropped IDs, in order.
    fn ids(path: &Path) -> (Vec<u32>, Vec<u32>, u64) {
        let l = read(path, 1 << 30).unwrap();
        let n = |id: &[u8; 16]| u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
        (l.kept.iter().map(|k| n(&k.id)).collect(), l.dropped.iter().map(n).collect(), l.corrupt)
    }

    #[test]
    fn a_journal_appends_what_was_decided_since_the_last_save_and_rewrites_whole_only_when_due() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions-0");
        let names = vec!["errors".to_string(), "slow".to_string()];
        // The caches as the processor would hand them for a snapshot.
        let cache = |kept: &[u32], dropped: &[u32]| {
            let mut k = Vec::new();
            for n in kept {
                encode_kept(&mut k, &id(*n), 1, Some(u64::from(*n)));
            }
            (k, dropped.iter().flat_map(|n| id(*n)).collect::<Vec<u8>>())
        };
        let mut j = Journal::new(path.clone(), 10);
        assert!(j.has_pending(), "the first save after a start is a snapshot");
        // Recorded while a snapshot is due: the snapshot has them (from the caches).
        j.kept(&id(1), 1, Some(1));
        assert_eq!(j.save(&names, || cache(&[1], &[])).unwrap(), Saved::Snapshot);
        assert_eq!(ids(&path), (vec![1], vec![], 0));
        assert_eq!(j.save(&names, || unreachable!()).unwrap(), Saved::Nothing);
        j.kept(&id(2), 0, None);
        j.dropped(&id(3));
        j.dropped(&id(4));
        let before = fs::metadata(&path).unwrap().len();
        assert_eq!(j.save(&names, || unreachable!("appends need no snapshot")).unwrap(), Saved::Appended);
        // One frame of 1 kept entry, one of 2 dropped: header 8 + kind 1 each.
        assert_eq!(fs::metadata(&path).unwrap().len() - before, (9 + KEPT_LEN as u64) + (9 + 2 * 16));
        let l = read(&path, 1 << 30).unwrap();
        assert_eq!(l.kept[1], KeptEntry { id: id(2), policy: Some("errors".into()), threshold: None });
        assert_eq!(l.kept[0], KeptEntry { id: id(1), policy: Some("slow".into()), threshold: Some(1) });
        assert_eq!(ids(&path), (vec![1, 2], vec![3, 4], 0));
        // 3 appended so far; 7 more fit (10 = what the caches hold), the 8th does not.
        for n in 5..12 {
            j.dropped(&id(n));
        }
        assert_eq!(j.save(&names, || unreachable!()).unwrap(), Saved::Appended);
        assert_eq!(ids(&path).1, (3..12).collect::<Vec<_>>());
        j.dropped(&id(12));
        // Over the bound: the pending entries are given up for a snapshot of the caches.
        assert_eq!(j.save(&names, || cache(&[2], &[8, 9, 10, 11, 12])).unwrap(), Saved::Snapshot);
        assert_eq!(ids(&path), (vec![2], vec![8, 9, 10, 11, 12], 0));
        // Someone else wrote the file (a replaced instance's last save): rewritten whole.
        write(&path, &[], &[id(99)]).unwrap();
        j.dropped(&id(13));
        assert_eq!(j.save(&names, || cache(&[2], &[12, 13])).unwrap(), Saved::Snapshot);
        assert_eq!(ids(&path), (vec![2], vec![12, 13], 0));
        // Removed: rewritten whole too.
        fs::remove_file(&path).unwrap();
        j.dropped(&id(14));
        assert_eq!(j.save(&names, || cache(&[], &[14])).unwrap(), Saved::Snapshot);
        assert_eq!(ids(&path), (vec![], vec![14], 0));
    }

    #[test]
    fn an_append_cut_short_loses_only_that_save_and_a_failed_save_makes_the_next_a_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("decisions-0");
        let mut j = Journal::new(path.clone(), 1000);
        j.save(&[], || (Vec::new(), Vec::new())).unwrap();
        j.dropped(&id(1));
        j.save(&[], || unreachable!()).unwrap();
        let good = fs::metadata(&path).unwrap().len();
        j.dropped(&id(2));
        j.dropped(&id(3));
        j.save(&[], || unreachable!()).unwrap();
        // kill -9 in the middle of the last append's write:
        let raw = fs::read(&path).unwrap();
        fs::write(&path, &raw[..good as usize + 20]).unwrap();
        assert_eq!(ids(&path), (vec![], vec![1], 1), "the torn frame is counted, the earlier saves read");
        // A save that cannot write (its directory is gone) fails, and the
        // next one rewrites the file whole from the caches.
        let gone = dir.path().join("gone");
        let mut j = Journal::new(gone.join("d"), 1000);
        j.save(&[], || (Vec::new(), Vec::new())).unwrap();
        fs::remove_dir_all(&gone).unwrap();
        fs::write(&gone, b"a file where the directory was").unwrap();
        j.dropped(&id(5));
        assert!(j.save(&[], || (Vec::new(), id(5).to_vec())).is_err());
        fs::remove_file(&gone).unwrap();
        assert!(j.has_pending(), "a failed save leaves a snapshot due");
        assert_eq!(j.save(&[], || (Vec::new(), id(5).to_vec())).unwrap(), Saved::Snapshot);
        assert_eq!(ids(&gone.join("d")), (vec![], vec![5], 0));
    }
}
