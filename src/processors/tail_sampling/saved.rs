//! The decision caches on disk: written by each `tail_sampling` instance at
//! shutdown and read at start, so that spans arriving after a restart (or a
//! rolling update) follow the decisions made before it.
//!
//! Format: the magic `SLTSDC1\n`, then frames `[len u32][crc32 u32][kind u8]
//! [payload]` (little endian, the crc over kind and payload): one frame of
//! policy names, then frames of kept entries (trace ID, policy index,
//! probability) and of dropped entries (trace ID), oldest first so that a
//! reader that inserts them in order rebuilds the caches' eviction order.
//!
//! Guarantees:
//! - a file is replaced whole (written beside it, synced, renamed): a crash
//!   while writing leaves the previous file;
//! - reading never panics and never trusts a length: a frame that fails its
//!   checksum is skipped and counted, a length past the file's end (a torn
//!   or truncated file) ends the file and is counted, a file with a wrong
//!   magic or over `max_bytes` is skipped whole and counted.

use std::fs;
use std::io;
use std::path::Path;

const MAGIC: &[u8; 8] = b"SLTSDC1\n";
const NAMES: u8 = 0;
const KEPT: u8 = 1;
const DROPPED: u8 = 2;
/// Entries per frame: a damaged frame loses at most this many.
const PER_FRAME: usize = 4096;
/// Kept entry: trace ID, policy index (u16::MAX: none), probability tag, threshold.
const KEPT_LEN: usize = 16 + 2 + 1 + 8;

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

/// Writes `path` anew: names, then kept entries, then dropped, each in the order given.
pub fn write(path: &Path, kept: &[KeptEntry], dropped: &[[u8; 16]]) -> io::Result<()> {
    let mut names: Vec<&str> = Vec::new();
    let mut out = MAGIC.to_vec();
    let mut kept_bytes = Vec::with_capacity(kept.len() * KEPT_LEN);
    for k in kept {
        let index = match k.policy.as_deref() {
            Some(n) => match names.iter().position(|x| *x == n) {
                Some(i) => i as u16,
                None if names.len() < usize::from(u16::MAX) => {
                    names.push(n);
                    (names.len() - 1) as u16
                }
                None => u16::MAX,
            },
            None => u16::MAX,
        };
        kept_bytes.extend_from_slice(&k.id);
        kept_bytes.extend_from_slice(&index.to_le_bytes());
        kept_bytes.push(u8::from(k.threshold.is_some()));
        kept_bytes.extend_from_slice(&k.threshold.unwrap_or(0).to_le_bytes());
    }
    let mut name_bytes = (names.len() as u16).to_le_bytes().to_vec();
    for n in &names {
        let b = &n.as_bytes()[..n.len().min(usize::from(u16::MAX))];
        name_bytes.extend_from_slice(&(b.len() as u16).to_le_bytes());
        name_bytes.extend_from_slice(b);
    }
    frame(&mut out, NAMES, &name_bytes);
    for chunk in kept_bytes.chunks(PER_FRAME * KEPT_LEN) {
        frame(&mut out, KEPT, chunk);
    }
    for chunk in dropped.chunks(PER_FRAME) {
        frame(&mut out, DROPPED, &chunk.concat());
    }
    crate::extensions::file_storage::replace_file(path, &out, true)
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
}
