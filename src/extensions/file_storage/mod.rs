//! The `file_storage` extension: a directory where persistent sending queues
//! and `filelog` checkpoints keep their files, and [`replace_file`], the
//! whole-or-nothing file write every saved state uses.

use super::{ExtensionFactory, ExtensionSpec, ExtensionUse};
use crate::config::component::{Checker, CollectorOnly, ComponentKind, ComponentMeta, Factory};
use crate::config::describe::SettingsType;
use crate::config::Duration;
use crate::queue::storage_config::{file_storage, FileStorageConfig};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub static FACTORY: ExtensionFactory = Factory {
    meta: ComponentMeta {
        kind: ComponentKind::Extension,
        name: "file_storage",
        aliases: &[],
        signals: &[],
        description: "a directory for persistent sending queues (sending_queue.storage)",
        example: "directory: /var/lib/sluice/storage\n",
    },
    settings: SettingsType::of::<FileStorageSettings>(),
    compile: |input| {
        let cfg: FileStorageSettings = input.typed()?;
        let storage = FileStorageConfig { directory: cfg.directory.clone(), fsync: cfg.fsync };
        input
            .check(|c| {
                file_storage(c, &storage);
                cfg.check(c);
            })
            .then(|| Arc::new(storage) as _)
    },
};

/// The extension's settings, field for field the Collector's `file_storage`.
/// sluice uses `directory` and `fsync`; the rest is accepted and checked,
/// and changes nothing, for the reasons on each field.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileStorageSettings {
    /// Directory holding the data (created if missing).
    pub directory: String,
    /// fsync every write: no loss on power failure, at a cost in throughput.
    #[serde(default)]
    pub fsync: bool,
    /// The Collector's wait for its database lock. sluice's queue files have
    /// one writer each, so there is no lock to wait for.
    #[serde(default)]
    pub timeout: Option<Duration>,
    /// The Collector compacts its bbolt database. sluice's queue segments
    /// are deleted as soon as they are delivered, so there is nothing to
    /// compact.
    #[serde(default)]
    pub compaction: Option<CompactionSettings>,
    /// sluice always creates a missing directory (with its parents).
    #[serde(default)]
    pub create_directory: Option<bool>,
    /// Octal permissions of a created directory (e.g. "0750"); checked,
    /// the directory is created with the process's umask.
    #[serde(default)]
    pub directory_permissions: Option<String>,
    /// Not implemented: deleting the stored data at start.
    #[serde(default)]
    pub recreate: Option<CollectorOnly>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct CompactionSettings {
    /// Accepted: queue segments are deleted once delivered, nothing to compact.
    pub directory: Option<String>,
    /// Accepted: nothing to compact.
    pub on_start: bool,
    /// Accepted: nothing to compact.
    pub on_rebound: bool,
    /// Accepted: nothing to compact.
    pub rebound_needed_threshold_mib: u64,
    /// Accepted: nothing to compact.
    pub rebound_trigger_threshold_mib: u64,
    /// Accepted: nothing to compact.
    pub max_transaction_size: u64,
    /// Accepted: nothing to compact.
    pub check_interval: Option<Duration>,
    /// Accepted: nothing to compact.
    pub cleanup_on_start: bool,
}

impl FileStorageSettings {
    fn check(&self, c: &mut Checker) {
        if let Some(p) = &self.directory_permissions {
            let digits = p.strip_prefix("0o").unwrap_or(p);
            if digits.is_empty() || u32::from_str_radix(digits, 8).map_or(true, |m| m > 0o7777) {
                c.error(
                    &["directory_permissions"],
                    format!("directory_permissions \"{p}\" is not an octal mode"),
                    Some("e.g. \"0750\""),
                );
            }
        }
        if self.timeout.is_some_and(|t| t.is_zero()) {
            c.error(&["timeout"], "timeout must be above zero", Some("e.g. 1s, the Collector's default"));
        }
    }
}

impl ExtensionSpec for FileStorageConfig {
    fn provides(&self) -> Option<ExtensionUse> {
        Some(ExtensionUse::Storage)
    }

    fn storage(&self) -> Option<&FileStorageConfig> {
        Some(self)
    }
}

/// Replaces the file at `path` with `bytes` whole or not at all: written
/// beside it (`.tmp`), renamed over it, its directory created if missing.
/// With `fsync` the data and then the rename are synced, so the new content
/// survives a power loss once this returns.
pub fn replace_file(path: &std::path::Path, bytes: &[u8], fsync: bool) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        if fsync {
            f.sync_all()?;
        }
    }
    std::fs::rename(&tmp, path)?;
    if fsync {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
