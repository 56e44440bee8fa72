//! Configuration of the `file` exporter.

use crate::config::component::Checker;
use crate::config::Duration;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, JsonSchema, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    /// OTLP JSON, one export request object per line.
    #[default]
    Json,
    /// OTLP protobuf, each message preceded by its length (4 bytes, big endian).
    Proto,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileExporterConfig {
    /// File to write (created if missing; appended to).
    pub path: String,
    /// `json` (OTLP JSON, one batch a line) or `proto` (length-prefixed OTLP protobuf).
    #[serde(default)]
    pub format: FileFormat,
    /// Rotate when the file reaches a size; absent means never rotate.
    #[serde(default)]
    pub rotation: Option<RotationConfig>,
    /// How often buffered writes are flushed to the file. Default 1s.
    #[serde(default = "default_flush_interval")]
    pub flush_interval: Duration,
    /// Not implemented: compressed output, appending to an existing file,
    /// encoding extensions, one file per resource attribute, directory
    /// creation settings.
    #[serde(default)]
    pub compression: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub append: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub encoding: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub group_by: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub create_directory: Option<crate::config::component::CollectorOnly>,
    #[serde(default)]
    pub directory_permissions: Option<crate::config::component::CollectorOnly>,
}

fn default_flush_interval() -> Duration {
    Duration::from_secs(1)
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RotationConfig {
    /// Size at which the file is rotated, in MiB. Default 100.
    pub max_megabytes: u64,
    /// Rotated files older than this many days are removed; 0 keeps them. Default 0.
    pub max_days: u64,
    /// Rotated files kept; 0 keeps all. Default 100.
    pub max_backups: u64,
    /// Name rotated files with local time instead of UTC.
    pub localtime: bool,
}

impl Default for RotationConfig {
    fn default() -> Self {
        RotationConfig { max_megabytes: 100, max_days: 0, max_backups: 100, localtime: false }
    }
}

pub fn validate(c: &mut Checker, cfg: &FileExporterConfig) {
    if cfg.path.trim().is_empty() {
        c.error(&["path"], "path must not be empty", Some("e.g. /var/lib/sluice/export.jsonl"));
    }
}
