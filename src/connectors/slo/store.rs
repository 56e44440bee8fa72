//! The SLO counters kept in a `file_storage` extension's directory: one
//! JSON file per connector instance, `slo-<connector id>-<signal>.json`,
//! replaced atomically (temporary file, optional fsync, rename, optional
//! fsync of the directory): after a crash it holds the previous or the new
//! counters, never a mix.

use super::window::SavedRing;
use crate::data::Signal;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// What one SLO keeps across a restart.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SavedSlo {
    /// The alert windows then the period window.
    pub rings: Vec<SavedRing>,
    /// Severities firing when saved (`page`, `ticket`).
    pub firing: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Document {
    pub version: u32,
    /// By `sloth_id`.
    pub slos: BTreeMap<String, SavedSlo>,
}

#[derive(Debug)]
pub struct SloStore {
    path: PathBuf,
    fsync: bool,
}

impl SloStore {
    pub fn new(directory: &Path, connector: &str, to: Signal, fsync: bool) -> SloStore {
        let name: String = connector
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' })
            .collect();
        SloStore { path: directory.join(format!("slo-{name}-{to}.json")), fsync }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved counters; empty when there are none yet. A file that
    /// cannot be read or parsed is an error: starting over silently would
    /// forget a period's errors.
    pub fn load(&self) -> Result<Document, String> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice::<Document>(&bytes).map_err(|e| {
                format!(
                    "SLO counters file {} is not valid ({e}); move it away to start the counters over",
                    self.path.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Document { version: 1, ..Default::default() }),
            Err(e) => Err(format!("cannot read SLO counters file {}: {e}", self.path.display())),
        }
    }

    pub fn save(&self, doc: &Document) -> std::io::Result<()> {
        let bytes = serde_json::to_vec(doc).map_err(std::io::Error::other)?;
        crate::extensions::file_storage::replace_file(&self.path, &bytes, self.fsync)
    }
}
