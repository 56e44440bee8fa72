//! `SpillStore`: where `tail_sampling` moves the spans of its oldest traces
//! when its memory bound is reached, so they are still decided at their
//! `decision_wait` with every span (see `storage` in the processor's config).
//!
//! The store is a directory of append-only segment files of framed records
//! (`[len u32][crc32 u32][trace ID 16][spans u32][body]`, little endian,
//! the crc over everything after it). The processor keeps each record's
//! place ([`SpillRef`]); reading one back checks its length, checksum and
//! trace ID. A record is released once its trace is decided; a segment
//! whose records are all released (and that is not being written) is
//! deleted.
//!
//! Guarantees:
//! - bounded: at most `max_bytes` of unreleased records, and at most twice
//!   that in files (released records share a segment with unreleased ones
//!   until the segment empties); an append beyond either is refused with
//!   [`SpillError::Full`] and nothing is written;
//! - one writer per directory: each store holds an exclusive `flock` on its
//!   directory's `LOCK` file (released by the kernel on any exit, `kill -9`
//!   included), so two instances never share segments, and a directory
//!   whose lock can be taken was left by a process that is gone;
//! - what such a directory holds (traces a killed process never decided)
//!   is deleted at open and reported in [`Opened`], never read as live;
//! - a record that fails its checks reads as [`ReadError::Corrupt`], never
//!   a panic, whatever the file holds.
//!
//! I/O is plain synchronous `std::fs` (one `write` per spilled trace, one
//! positioned read per spilled record of a kept trace); the store never
//! fsyncs, because its content is worthless after the process ends.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Bytes of a record before its body.
pub const HEADER: usize = 4 + 4 + 16 + 4;

/// Where a spilled record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpillRef {
    segment: u32,
    offset: u64,
    /// The whole record, header included.
    len: u32,
    /// Spans in it (counted as lost if it cannot be read back).
    pub spans: u32,
}

impl SpillRef {
    /// The record's bytes on disk.
    pub fn len(&self) -> u64 {
        u64::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[derive(Debug)]
pub enum SpillError {
    /// The store's bound would be passed: nothing was written.
    Full,
    /// Writing failed (disk full, permissions): nothing usable was written.
    Io(io::Error),
}

#[derive(Debug)]
pub enum ReadError {
    Io(io::Error),
    /// Length, checksum or trace ID do not match what was written.
    Corrupt,
}

struct Segment {
    file: File,
    path: PathBuf,
    size: u64,
    /// Unreleased records.
    live: u32,
}

/// What opening a store found in its directory.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Opened {
    /// Segment files a gone process left (deleted).
    pub stale_files: u64,
    pub stale_bytes: u64,
}

pub struct SpillStore {
    dir: PathBuf,
    _lock: File,
    /// By segment number; numbers only grow.
    segments: std::collections::BTreeMap<u32, Segment>,
    active: Option<u32>,
    next_segment: u32,
    segment_bytes: u64,
    max_bytes: u64,
    live_bytes: u64,
    file_bytes: u64,
}

const LOCK: &str = "LOCK";
const SEGMENT_PREFIX: &str = "spill-";

impl SpillStore {
    /// Opens a store in the first directory `base/spill-<k>` (k = 0, 1, ...)
    /// that no live store holds, emptying it of what a gone process left.
    /// `max_bytes` bounds unreleased records; segments are cut at
    /// `segment_bytes` (a record larger than that gets a segment of its own).
    pub fn open(base: &Path, max_bytes: u64, segment_bytes: u64) -> io::Result<(SpillStore, Opened)> {
        fs::create_dir_all(base)?;
        for k in 0..1024u32 {
            let dir = base.join(format!("spill-{k}"));
            fs::create_dir_all(&dir)?;
            let lock = OpenOptions::new().create(true).truncate(false).write(true).open(dir.join(LOCK))?;
            // SAFETY: flock on a descriptor we own; released when the process ends, even on kill -9.
            if unsafe { libc::flock(std::os::fd::AsRawFd::as_raw_fd(&lock), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                continue; // another instance (of this process or another) holds it
            }
            let mut opened = Opened::default();
            for e in fs::read_dir(&dir)? {
                let e = e?;
                if e.file_name().to_string_lossy().starts_with(SEGMENT_PREFIX) {
                    opened.stale_files += 1;
                    opened.stale_bytes += e.metadata().map_or(0, |m| m.len());
                    fs::remove_file(e.path())?;
                }
            }
            let store = SpillStore {
                dir,
                _lock: lock,
                segments: Default::default(),
                active: None,
                next_segment: 0,
                segment_bytes: segment_bytes.max(1),
                max_bytes,
                live_bytes: 0,
                file_bytes: 0,
            };
            return Ok((store, opened));
        }
        Err(io::Error::other(format!("{}: 1024 spill directories are all in use", base.display())))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of unreleased records.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    /// Bytes in segment files (released records included).
    pub fn file_bytes(&self) -> u64 {
        self.file_bytes
    }

    /// Whether a record of `body` bytes would be refused as [`SpillError::Full`].
    pub fn would_refuse(&self, body: usize) -> bool {
        let len = (HEADER + body) as u64;
        self.live_bytes + len > self.max_bytes || self.file_bytes + len > self.max_bytes.saturating_mul(2)
    }

    /// Writes one record: `body` holds `spans` spans of trace `id`.
    pub fn append(&mut self, id: &[u8; 16], spans: u32, body: &[u8]) -> Result<SpillRef, SpillError> {
        let len = HEADER + body.len();
        let Ok(len32) = u32::try_from(len) else { return Err(SpillError::Full) };
        if self.would_refuse(body.len()) {
            return Err(SpillError::Full);
        }
        let mut record = Vec::with_capacity(len);
        record.extend_from_slice(&len32.to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(id);
        record.extend_from_slice(&spans.to_le_bytes());
        record.extend_from_slice(body);
        let crc = crc32fast::hash(&record[8..]);
        record[4..8].copy_from_slice(&crc.to_le_bytes());

        let number = match self.active {
            Some(n)
                if self.segments.get(&n).is_some_and(|s| s.size + len as u64 <= self.segment_bytes || s.size == 0) =>
            {
                n
            }
            _ => self.new_segment().map_err(SpillError::Io)?,
        };
        let Some(seg) = self.segments.get_mut(&number) else {
            return Err(SpillError::Io(io::Error::other("no segment")));
        };
        let offset = seg.size;
        if let Err(e) = seg.file.write_all(&record) {
            // A partial record is never referenced; the segment is retired
            // so nothing is written after it.
            let _ = seg.file.set_len(offset);
            self.active = None;
            self.delete_if_empty(number);
            return Err(SpillError::Io(e));
        }
        seg.size += len as u64;
        seg.live += 1;
        self.live_bytes += len as u64;
        self.file_bytes += len as u64;
        Ok(SpillRef { segment: number, offset, len: len32, spans })
    }

    fn new_segment(&mut self) -> io::Result<u32> {
        if let Some(old) = self.active.take() {
            self.delete_if_empty(old);
        }
        let number = self.next_segment;
        self.next_segment += 1;
        let path = self.dir.join(format!("{SEGMENT_PREFIX}{number:08}"));
        let file = OpenOptions::new().create(true).truncate(true).read(true).write(true).open(&path)?;
        self.segments.insert(number, Segment { file, path, size: 0, live: 0 });
        self.active = Some(number);
        Ok(number)
    }

    /// The body of the record `r` of trace `id`, checked. Does not release it.
    pub fn read(&self, r: &SpillRef, id: &[u8; 16]) -> Result<Vec<u8>, ReadError> {
        let seg = self.segments.get(&r.segment).ok_or(ReadError::Corrupt)?;
        let len = r.len as usize;
        if len < HEADER || r.offset + r.len() > seg.size {
            return Err(ReadError::Corrupt);
        }
        let mut record = vec![0u8; len];
        seg.file.read_exact_at(&mut record, r.offset).map_err(ReadError::Io)?;
        let stored_len = u32::from_le_bytes([record[0], record[1], record[2], record[3]]);
        let crc = u32::from_le_bytes([record[4], record[5], record[6], record[7]]);
        if stored_len != r.len || crc32fast::hash(&record[8..]) != crc || record[8..24] != id[..] {
            return Err(ReadError::Corrupt);
        }
        record.drain(..HEADER);
        Ok(record)
    }

    /// Forgets the record `r` (its trace is decided).
    pub fn release(&mut self, r: &SpillRef) {
        let Some(seg) = self.segments.get_mut(&r.segment) else { return };
        seg.live = seg.live.saturating_sub(1);
        self.live_bytes = self.live_bytes.saturating_sub(r.len());
        if Some(r.segment) != self.active {
            self.delete_if_empty(r.segment);
        } else if seg.live == 0 {
            // Reuse the active segment from its start rather than keep released bytes.
            if seg.file.set_len(0).is_ok() {
                self.file_bytes = self.file_bytes.saturating_sub(seg.size);
                seg.size = 0;
            }
        }
    }

    fn delete_if_empty(&mut self, number: u32) {
        if self.segments.get(&number).is_some_and(|s| s.live == 0) {
            if let Some(seg) = self.segments.remove(&number) {
                self.file_bytes = self.file_bytes.saturating_sub(seg.size);
                drop(seg.file);
                let _ = fs::remove_file(&seg.path);
            }
        }
    }

    /// Deletes every segment (at shutdown, once every trace is decided).
    pub fn clear(&mut self) {
        for (_, seg) in std::mem::take(&mut self.segments) {
            drop(seg.file);
            let _ = fs::remove_file(&seg.path);
        }
        self.active = None;
        self.live_bytes = 0;
        self.file_bytes = 0;
    }

    #[cfg(test)]
    fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.values().map(|s| s.path.clone()).collect()
    }
}

impl Drop for SpillStore {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_segments_are_deleted_once_released() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, opened) = SpillStore::open(dir.path(), 1 << 20, 100).unwrap();
        assert_eq!(opened, Opened::default());
        let a = s.append(&[1; 16], 3, b"first body").unwrap();
        let b = s.append(&[2; 16], 1, &[7u8; 90]).unwrap(); // does not fit the 100-byte segment: a new one
        assert_eq!(s.segment_paths().len(), 2);
        assert_eq!(s.read(&a, &[1; 16]).unwrap(), b"first body");
        assert_eq!(s.read(&b, &[2; 16]).unwrap(), vec![7u8; 90]);
        assert_eq!(a.spans, 3);
        assert_eq!(s.live_bytes(), (2 * HEADER + 10 + 90) as u64);
        let first = s.segment_paths()[0].clone();
        s.release(&a);
        assert!(!first.exists(), "a released, inactive segment is deleted");
        assert_eq!(s.file_bytes(), (HEADER + 90) as u64);
        s.release(&b);
        assert_eq!((s.live_bytes(), s.file_bytes()), (0, 0), "the active segment restarts when empty");
    }

    #[test]
    fn bound_refuses_without_writing() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = SpillStore::open(dir.path(), 100, 1 << 20).unwrap();
        s.append(&[1; 16], 1, &[0; 50]).unwrap();
        assert!(matches!(s.append(&[2; 16], 1, &[0; 50]), Err(SpillError::Full)));
        assert_eq!(s.live_bytes(), (HEADER + 50) as u64);
    }

    #[test]
    fn a_damaged_record_reads_as_corrupt_never_panics() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = SpillStore::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        let r = s.append(&[1; 16], 1, b"hello spans").unwrap();
        assert!(matches!(s.read(&r, &[9; 16]), Err(ReadError::Corrupt)), "wrong trace");
        let path = s.segment_paths()[0].clone();
        let mut raw = fs::read(&path).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
        fs::write(&path, &raw).unwrap();
        assert!(matches!(s.read(&r, &[1; 16]), Err(ReadError::Corrupt)), "flipped byte");
        // Truncated under the store's feet: a short read, not a panic.
        fs::write(&path, &raw[..10]).unwrap();
        assert!(s.read(&r, &[1; 16]).is_err());
    }

    #[test]
    fn what_a_gone_process_left_is_deleted_and_counted_and_a_held_directory_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("spill-0");
        fs::create_dir_all(&stale).unwrap();
        fs::write(stale.join("spill-00000003"), [0xAB; 1234]).unwrap(); // garbage, torn
        fs::write(stale.join("spill-00000004"), []).unwrap();
        let (first, opened) = SpillStore::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(opened, Opened { stale_files: 2, stale_bytes: 1234 });
        assert_eq!(first.dir(), stale);
        assert!(!stale.join("spill-00000003").exists());
        // A second store while the first lives takes the next directory.
        let (second, _) = SpillStore::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(second.dir(), dir.path().join("spill-1"));
        drop(first);
        let (third, _) = SpillStore::open(dir.path(), 1 << 20, 1 << 20).unwrap();
        assert_eq!(third.dir(), stale, "a released directory is reused");
    }
}
