//! The files one receiver follows: which paths match, which open file is
//! which across renames, truncation and restarts, and how far each was read.
//!
//! Guarantees:
//! - a file is known by its device and inode while it is open, and by its
//!   fingerprint (first `fingerprint_size` bytes) across restarts and copies,
//!   so a file renamed to a path that still matches is not read twice;
//! - a file renamed or deleted away is read to its end through the handle
//!   already open, then closed (rename rotation loses nothing);
//! - a file whose size drops below the read offset, or whose first bytes
//!   change, was truncated (copytruncate): it is read again from 0;
//! - at most `max_concurrent_files` are open; a file over the limit waits for
//!   a later poll and the wait is counted. To make room, files read to their
//!   end are closed ("parked" with their offset) and opened again only once
//!   they grow, so every matching file is read even when there are more than
//!   the limit.

use super::checkpoint::{decode_fingerprint, encode_fingerprint, FileOffset};
use super::glob::Glob;
use super::reader::{Entry, FileReader, ReaderSettings};
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Most bytes read from one file in one poll; a file with more left makes
/// the next poll start at once, so one busy file cannot hold back the others for long.
pub const READ_CHUNK: usize = 1 << 20;

/// Counts of what happened to files, for the receiver's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileEvents {
    pub rotations: u64,
    pub open_limit_hits: u64,
    pub read_errors: u64,
}

#[derive(Debug)]
pub struct TrackedFile {
    /// Stable for the life of this entry; batches refer to files by it.
    pub key: u64,
    pub path: PathBuf,
    file: File,
    dev: u64,
    ino: u64,
    fingerprint: Vec<u8>,
    /// Next byte to read.
    offset: u64,
    /// Bytes before this were accepted by the pipelines.
    pub committed: u64,
    last_size: u64,
    reader: FileReader,
    /// No longer at a matched path (renamed away, replaced or deleted).
    rotated: bool,
    /// Polls that found this rotated file at its end; it is closed after one.
    polls_at_end: u32,
    /// Another file took its path (counted as a rotation once).
    replaced: bool,
    /// Polls in a row that found nothing new.
    idle_polls: u32,
}

/// A file closed to make room under `max_concurrent_files`, read and accepted up to `offset`.
#[derive(Debug)]
struct Parked {
    path: PathBuf,
    dev: u64,
    ino: u64,
    fingerprint: Vec<u8>,
    offset: u64,
}

impl TrackedFile {
    pub fn checkpoint(&self) -> FileOffset {
        FileOffset {
            fingerprint: encode_fingerprint(&self.fingerprint),
            offset: self.committed,
            path: self.path.display().to_string(),
        }
    }
}

pub struct FileSet {
    include: Vec<Glob>,
    exclude: Vec<Glob>,
    fingerprint_size: usize,
    max_open: usize,
    start_at_beginning: bool,
    pub settings: ReaderSettings,
    pub files: Vec<TrackedFile>,
    parked: Vec<Parked>,
    /// Offsets loaded from the checkpoint, used for files first seen after a restart.
    saved: Vec<(Vec<u8>, u64)>,
    polled: bool,
    next_key: u64,
    pub events: FileEvents,
}

fn starts_with(fp: &[u8], known: &[u8]) -> bool {
    !known.is_empty() && fp.len() >= known.len() && fp[..known.len()] == *known
}

/// The first `n` bytes of `file` (fewer when it is shorter).
fn read_prefix(file: &File, n: usize) -> std::io::Result<Vec<u8>> {
    let mut buf = vec![0u8; n];
    let mut got = 0;
    while got < n {
        match file.read_at(&mut buf[got..], got as u64)? {
            0 => break,
            k => got += k,
        }
    }
    buf.truncate(got);
    Ok(buf)
}

impl FileSet {
    pub fn new(
        include: Vec<Glob>,
        exclude: Vec<Glob>,
        fingerprint_size: usize,
        max_open: usize,
        start_at_beginning: bool,
        settings: ReaderSettings,
        saved: &[FileOffset],
    ) -> FileSet {
        FileSet {
            include,
            exclude,
            fingerprint_size: fingerprint_size.max(1),
            max_open: max_open.max(1),
            start_at_beginning,
            settings,
            files: Vec::new(),
            parked: Vec::new(),
            saved: saved.iter().filter_map(|s| Some((decode_fingerprint(&s.fingerprint)?, s.offset))).collect(),
            polled: false,
            next_key: 0,
            events: FileEvents::default(),
        }
    }

    /// Paths that match `include` and no `exclude`.
    fn matching(&self) -> Vec<PathBuf> {
        let mut paths: Vec<PathBuf> = self.include.iter().flat_map(|g| g.expand()).collect();
        paths.sort();
        paths.dedup();
        paths.retain(|p| !self.exclude.iter().any(|g| g.matches(p)));
        paths
    }

    /// Matches the globs: follows renames, notices replaced and new files,
    /// and opens new ones (within the open-file bound).
    pub fn discover(&mut self) {
        let found: Vec<(PathBuf, std::fs::Metadata)> =
            self.matching().into_iter().filter_map(|p| std::fs::metadata(&p).ok().map(|m| (p, m))).collect();
        for (path, meta) in &found {
            for f in &mut self.files {
                if f.path == *path && (f.dev, f.ino) != (meta.dev(), meta.ino()) && !f.replaced {
                    // Another file now has this path: the one we had was renamed or deleted.
                    tracing::debug!(path = %path.display(), "file replaced at its path (rotation)");
                    f.replaced = true;
                    self.events.rotations += 1;
                }
            }
        }
        for f in &mut self.files {
            f.rotated = true;
        }
        // Parked files no longer matched are forgotten: they were renamed away or deleted.
        self.parked.retain(|p| found.iter().any(|(_, m)| (m.dev(), m.ino()) == (p.dev, p.ino)));
        let mut deferred = Vec::new();
        for (path, meta) in found {
            if !self.consider(&path, &meta) {
                deferred.push((path, meta));
            }
        }
        if !deferred.is_empty() {
            self.park_idle(deferred.len());
            for (path, meta) in deferred {
                if !self.consider(&path, &meta) {
                    self.events.open_limit_hits += 1;
                }
            }
        }
        self.polled = true;
        // The checkpoint's offsets served the files present at start; later files are new.
        self.saved.clear();
    }

    /// Follows, skips or opens the file found at `path`. False when it
    /// should be opened but `max_concurrent_files` are open.
    fn consider(&mut self, path: &Path, meta: &std::fs::Metadata) -> bool {
        let (dev, ino, size) = (meta.dev(), meta.ino(), meta.len());
        if let Some(f) = self.files.iter_mut().find(|f| f.dev == dev && f.ino == ino) {
            f.path = path.to_path_buf();
            f.rotated = false;
            return true;
        }
        let parked = self.parked.iter().position(|p| p.dev == dev && p.ino == ino);
        if let Some(i) = parked {
            self.parked[i].path = path.to_path_buf();
            if size == self.parked[i].offset {
                return true; // Nothing new: it stays closed.
            }
        }
        if size == 0 {
            return true; // Nothing to fingerprint yet; it counts as new when data arrives.
        }
        if self.files.len() >= self.max_open {
            return false;
        }
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot open log file");
                self.events.read_errors += 1;
                return true;
            }
        };
        let Ok(fingerprint) = read_prefix(&file, self.fingerprint_size) else {
            self.events.read_errors += 1;
            return true;
        };
        let reopened = parked.map(|i| self.parked.remove(i));
        let known = match reopened {
            Some(p) if starts_with(&fingerprint, &p.fingerprint) => Some(p.offset),
            Some(_) => {
                // Rewritten from the start while it was closed (copytruncate).
                self.events.rotations += 1;
                Some(0)
            }
            None => self
                .files
                .iter()
                .find(|f| starts_with(&fingerprint, &f.fingerprint))
                .map(|f| f.committed)
                .or_else(|| self.parked.iter().find(|p| starts_with(&fingerprint, &p.fingerprint)).map(|p| p.offset))
                .or_else(|| self.saved.iter().find(|(fp, _)| starts_with(&fingerprint, fp)).map(|(_, o)| *o)),
        };
        let start = match known {
            // Reopened, a copy of a file already read, or a file known from the checkpoint.
            Some(o) if o <= size => o,
            Some(_) => 0,
            None if !self.polled && !self.start_at_beginning => size,
            None => 0,
        };
        self.files.push(TrackedFile {
            key: self.next_key,
            path: path.to_path_buf(),
            file,
            dev,
            ino,
            fingerprint,
            offset: start,
            committed: start,
            last_size: size,
            reader: FileReader::new(start),
            rotated: false,
            polls_at_end: 0,
            replaced: false,
            idle_polls: 0,
        });
        self.next_key += 1;
        true
    }

    /// Closes up to `n` files that were read to their end with everything
    /// accepted, the longest idle first, so waiting files can be opened at the next poll.
    fn park_idle(&mut self, n: usize) {
        let mut idle: Vec<(u32, u64)> = self
            .files
            .iter()
            .filter(|f| !f.rotated && !f.reader.has_pending() && f.offset == f.last_size && f.committed == f.offset)
            .map(|f| (f.idle_polls, f.key))
            .collect();
        idle.sort_by(|a, b| b.cmp(a));
        for (_, key) in idle.into_iter().take(n) {
            if let Some(i) = self.files.iter().position(|f| f.key == key) {
                let f = self.files.remove(i);
                self.parked.push(Parked {
                    path: f.path,
                    dev: f.dev,
                    ino: f.ino,
                    fingerprint: f.fingerprint,
                    offset: f.offset,
                });
            }
        }
    }

    /// Reads up to [`READ_CHUNK`] new bytes of the file at `idx` into
    /// entries. Returns whether the file has more to read now.
    pub fn read(&mut self, idx: usize, now: Instant, out: &mut Vec<Entry>) -> bool {
        let fp_size = self.fingerprint_size;
        let settings = &self.settings;
        let f = &mut self.files[idx];
        let size = match f.file.metadata() {
            Ok(m) => m.len(),
            Err(_) => {
                self.events.read_errors += 1;
                return false;
            }
        };
        if size != f.last_size || size < f.offset {
            let truncated = size < f.offset
                || read_prefix(&f.file, f.fingerprint.len().min(size as usize))
                    .is_ok_and(|p| p.len() == f.fingerprint.len().min(size as usize) && !f.fingerprint.starts_with(&p));
            if truncated {
                tracing::debug!(path = %f.path.display(), size, offset = f.offset, "file truncated (copytruncate); reading it again from the start");
                self.events.rotations += 1;
                f.offset = 0;
                f.committed = 0;
                f.reader = FileReader::new(0);
                f.fingerprint.clear();
            }
            if f.fingerprint.len() < fp_size {
                if let Ok(p) = read_prefix(&f.file, fp_size) {
                    f.fingerprint = p;
                }
            }
            f.last_size = size;
        }
        let want = (size.saturating_sub(f.offset)).min(READ_CHUNK as u64) as usize;
        if want > 0 {
            let mut buf = vec![0u8; want];
            match f.file.read_at(&mut buf, f.offset) {
                Ok(n) => {
                    f.reader.push(settings, &buf[..n], now, out);
                    f.offset += n as u64;
                }
                Err(e) => {
                    tracing::warn!(path = %f.path.display(), error = %e, "cannot read log file");
                    self.events.read_errors += 1;
                    return false;
                }
            }
            f.polls_at_end = 0;
            f.idle_polls = 0;
        } else {
            f.idle_polls = f.idle_polls.saturating_add(1);
            if f.rotated {
                f.polls_at_end += 1;
            }
        }
        if f.rotated && f.offset >= size && f.polls_at_end >= 1 {
            // Its writer has moved on: whatever waits is all there will be.
            f.reader.flush(settings, out);
        } else {
            f.reader.flush_if_idle(settings, now, out);
        }
        f.offset < size
    }

    /// Counts of the readers (truncated entries, unparsed lines), taken and reset.
    pub fn take_reader_counts(&mut self) -> (u64, u64) {
        let mut t = (0, 0);
        for f in &mut self.files {
            t.0 += std::mem::take(&mut f.reader.counts.truncated);
            t.1 += std::mem::take(&mut f.reader.counts.unparsed);
        }
        t
    }

    /// Closes rotated files that were read to the end and whose entries were
    /// all accepted. Returns whether any was closed.
    pub fn close_finished(&mut self) -> bool {
        let before = self.files.len();
        self.files.retain(|f| {
            !(f.rotated && f.polls_at_end >= 2 && !f.reader.has_pending() && f.committed >= f.offset.min(f.last_size))
        });
        self.files.len() != before
    }

    pub fn mark_committed(&mut self, key: u64, resume: u64) -> bool {
        match self.files.iter_mut().find(|f| f.key == key) {
            Some(f) if resume > f.committed => {
                f.committed = resume;
                true
            }
            _ => false,
        }
    }

    pub fn path_of(&self, key: u64) -> Option<&Path> {
        self.files.iter().find(|f| f.key == key).map(|f| f.path.as_path())
    }

    pub fn checkpoints(&self) -> Vec<FileOffset> {
        let parked = self.parked.iter().map(|p| FileOffset {
            fingerprint: encode_fingerprint(&p.fingerprint),
            offset: p.offset,
            path: p.path.display().to_string(),
        });
        self.files.iter().filter(|f| !f.fingerprint.is_empty()).map(TrackedFile::checkpoint).chain(parked).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn set(dir: &Path, beginning: bool, saved: &[FileOffset]) -> FileSet {
        let settings = ReaderSettings {
            max_log_size: 1 << 20,
            max_join_size: 1 << 20,
            container: None,
            line_start: None,
            line_end: None,
            force_flush_period: Duration::from_millis(500),
        };
        let g = Glob::new(&format!("{}/*.log", dir.display())).unwrap();
        FileSet::new(vec![g], vec![], 16, 8, beginning, settings, saved)
    }

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
    }

    /// One poll: discover, read every file, accept everything; the bodies read.
    fn poll(s: &mut FileSet) -> Vec<String> {
        s.discover();
        let mut bodies = Vec::new();
        for i in 0..s.files.len() {
            let mut out = Vec::new();
            while s.read(i, Instant::now(), &mut out) {}
            let key = s.files[i].key;
            for e in out {
                s.mark_committed(key, e.resume);
                bodies.push(e.body);
            }
        }
        s.close_finished();
        bodies
    }

    #[test]
    fn start_at_end_skips_old_lines_but_new_files_are_read_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.log");
        append(&a, "old line one\nold line two\n");
        let mut s = set(dir.path(), false, &[]);
        assert!(poll(&mut s).is_empty());
        append(&a, "new\n");
        append(&dir.path().join("b.log"), "b first\n");
        assert_eq!(poll(&mut s), ["new", "b first"]);
        let mut s = set(dir.path(), true, &[]);
        assert_eq!(poll(&mut s).len(), 4);
    }

    #[test]
    fn rename_rotation_finishes_the_old_file_and_reads_the_new_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("app.log");
        append(&a, "line 0 of the first file\n");
        let mut s = set(dir.path(), true, &[]);
        assert_eq!(poll(&mut s), ["line 0 of the first file"]);
        append(&a, "line 1 written before rename\n");
        // Renamed to a name that still matches the glob, then a new file at the old path.
        std::fs::rename(&a, dir.path().join("app.1.log")).unwrap();
        append(&a, "line 2 in the new file\n");
        let mut got = poll(&mut s);
        got.sort();
        assert_eq!(got, ["line 1 written before rename", "line 2 in the new file"]);
        assert_eq!(s.events.rotations, 1);
        // Renamed away out of the glob: still finished through the open handle.
        append(&a, "line 3\n");
        std::fs::rename(&a, dir.path().join("app.log.old")).unwrap();
        assert_eq!(poll(&mut s), ["line 3"]);
        assert!(poll(&mut s).is_empty());
        assert!(poll(&mut s).is_empty());
        assert_eq!(s.files.len(), 1, "the file renamed away is closed; app.1.log stays");
    }

    #[test]
    fn copytruncate_is_read_again_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("app.log");
        append(&a, "first line, long enough\nsecond\n");
        let mut s = set(dir.path(), true, &[]);
        assert_eq!(poll(&mut s).len(), 2);
        // The copy keeps the old name space out of the glob; the original is truncated in place.
        std::fs::copy(&a, dir.path().join("app.log.1")).unwrap();
        std::fs::OpenOptions::new().write(true).open(&a).unwrap().set_len(0).unwrap();
        append(&a, "after\n");
        assert_eq!(poll(&mut s), ["after"]);
        assert_eq!(s.events.rotations, 1);
        // Truncated and rewritten past the old offset before the poll: the first bytes changed.
        std::fs::write(&a, "a different beginning that is longer than before\n").unwrap();
        assert_eq!(poll(&mut s), ["a different beginning that is longer than before"]);
        assert_eq!(s.events.rotations, 2);
    }

    #[test]
    fn a_copy_that_still_matches_is_not_read_twice_and_checkpoints_resume() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("app.log");
        append(&a, "fingerprinted first line\nsecond\n");
        let mut s = set(dir.path(), true, &[]);
        assert_eq!(poll(&mut s).len(), 2);
        std::fs::copy(&a, dir.path().join("copy.log")).unwrap();
        assert!(poll(&mut s).is_empty(), "same fingerprint: starts at the offset already read");
        let saved = s.checkpoints();
        append(&a, "third\n");
        // A restart with start_at: end resumes at the checkpoint, so "third" is not skipped.
        let mut s = set(dir.path(), false, &saved);
        assert_eq!(poll(&mut s), ["third"]);
    }

    #[test]
    fn the_open_file_bound_is_counted_and_later_files_wait() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..10 {
            append(&dir.path().join(format!("{i:02}.log")), &format!("file {i}\n"));
        }
        let mut s = set(dir.path(), true, &[]);
        assert_eq!(poll(&mut s).len(), 8);
        assert_eq!(s.events.open_limit_hits, 2);
        // Files read to their end are closed to make room: the two waiting ones are read next.
        let mut got = poll(&mut s);
        got.sort();
        assert_eq!(got, ["file 8", "file 9"]);
        assert_eq!(s.files.len(), 8);
        // A closed file that grows is opened again where it was left.
        let closed =
            (0..10).map(|i| dir.path().join(format!("{i:02}.log"))).find(|p| !s.files.iter().any(|f| f.path == *p));
        let closed = closed.expect("some file is closed");
        append(&closed, "more\n");
        let mut got = Vec::new();
        for _ in 0..4 {
            got.extend(poll(&mut s));
        }
        assert_eq!(got, ["more"]);
        assert_eq!(s.checkpoints().len(), 10, "closed files keep their offsets in the checkpoint");
    }
}
