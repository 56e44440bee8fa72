//! Read offsets kept in the `file_storage` extension's directory, so a
//! restarted agent resumes where the pipelines last accepted data.
//!
//! One JSON file per receiver, `filelog-<receiver id>.json`, replaced
//! atomically (temporary file, optional fsync, rename, optional fsync of the
//! directory): after a crash the file holds either the previous or the new
//! offsets, never a mix. Files are known by their fingerprint (first bytes),
//! not their path, so a renamed file keeps its offset.

use base64::Engine;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileOffset {
    /// Base64 of the file's first bytes (up to `fingerprint_size`).
    pub fingerprint: String,
    /// Bytes before this offset were accepted by every pipeline.
    pub offset: u64,
    /// Where the file was last seen; informational.
    pub path: String,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Document {
    version: u32,
    files: Vec<FileOffset>,
}

pub fn encode_fingerprint(fp: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(fp)
}

pub fn decode_fingerprint(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[derive(Debug)]
pub struct CheckpointStore {
    path: PathBuf,
    fsync: bool,
}

impl CheckpointStore {
    pub fn new(directory: &Path, receiver: &str, fsync: bool) -> CheckpointStore {
        let name: String =
            receiver.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect();
        CheckpointStore { path: directory.join(format!("filelog-{name}.json")), fsync }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved offsets; empty when there are none yet. A file that cannot
    /// be read or parsed is an error: silently starting over could skip or repeat data.
    pub fn load(&self) -> Result<Vec<FileOffset>, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<Document>(&bytes)
                .map(|d| d.files)
                .map_err(|e| format!("checkpoint file {} is not valid: {e}", self.path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(format!("cannot read checkpoint file {}: {e}", self.path.display())),
        }
    }

    /// Replaces the saved offsets with `files`.
    pub fn save(&self, files: &[FileOffset]) -> std::io::Result<()> {
        let doc = Document { version: 1, files: files.to_vec() };
        let bytes = serde_json::to_vec(&doc).map_err(std::io::Error::other)?;
        crate::extensions::file_storage::replace_file(&self.path, &bytes, self.fsync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_replaces_and_load_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path(), "filelog/pods", true);
        assert_eq!(store.path().file_name().unwrap(), "filelog-filelog_pods.json");
        assert_eq!(store.load().unwrap(), vec![]);
        let a = FileOffset { fingerprint: encode_fingerprint(b"abc"), offset: 3, path: "/x".into() };
        store.save(std::slice::from_ref(&a)).unwrap();
        let b = FileOffset { offset: 9, ..a.clone() };
        store.save(std::slice::from_ref(&b)).unwrap();
        assert_eq!(store.load().unwrap(), vec![b]);
        assert_eq!(decode_fingerprint(&a.fingerprint).unwrap(), b"abc");
        assert!(!dir.path().join("filelog-filelog_pods.json.tmp").exists());
    }

    #[test]
    fn a_corrupt_checkpoint_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::new(dir.path(), "filelog", false);
        std::fs::write(store.path(), b"{\"version\":1,\"fil").unwrap();
        assert!(store.load().unwrap_err().contains("is not valid"));
    }
}
